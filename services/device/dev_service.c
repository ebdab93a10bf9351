/*  dev_service: the device process (see dev_service.h). Hot path first: TUN
    reads go straight into the slots of the outgoing batch (no per-packet
    allocation, no copy without offload), then each packet is classified in
    place and the record's tag set, or the slot given back. */
#include "dev_service.h"
#include "bus_privs.h"
#include "dev_tun.h"
#include "dev_link.h"
#include "dev_peermap.h"
#include "dev_igmp.h"
#include "dev_groups.h"
#include "dev_gtable.h"
#include "dev_arp.h"
#include "dev_gso.h"
#include "dev_mac.h"
#include "bus_log.h"
#include "node_peers.h"
#include "bus_pause.h"
#include "bus_pipe.h"
#include "schemas/pipes.h"
#include "bus_endpoint.h"

#include <sodium.h>
#include <sys/stat.h>

#define S_BATCHES_PER_WAKEUP  8     //  then let the loop serve the other sockets
#define S_RESUME_MAX_MS       50    //  backoff of the writable check while paused
#define S_KEY_RETRY_MS        10000 //  after the fallback: ask crypto again this often
#define S_GTABLE_CAPACITY     1024  //  groups the router may tell us about
#define S_ROUTER_CHECK_MS     5000  //  while it told us groups: is the router still there?

struct _dev_service_t {
    bus_service_t *svc;
    bus_loop_t *loop;
    dev_service_config_t cfg;
    node_peers_t *peers;
    uint32_t peer_count;

    dev_link_t *link;           //  the helper that holds CAP_NET_ADMIN (dev_link.h)
    dev_tun_t *tun;
    int ifindex;
    dev_peermap_t *map;
    bool up;                    //  configured and up
    bool mac_known;             //  tap: MAC set (configured, from the key, or fallback)
    bool mac_fallback;          //  tap: the MAC is the fallback, still asking crypto
    char addr_text [DEV_ADDR_TEXT];
    char mac_text [DEV_MAC_TEXT];
    bool addr_from_registry;    //  the address came with node.address (discovery)
    uint32_t dyn_limit;         //  one past the highest index of a registry peer

    bus_pipe_t *to_crypto;
    bus_pipe_t *from_crypto;
    bus_batch_t *batch;
    size_t slot_len;            //  bytes reserved per read (no offload)

    zmq_pollitem_t tun_item;
    bool polling;               //  the TUN fd is on the loop
    bus_pause_t *pause;         //  TUN reading paused while dev-crypto is full
    int key_timer;              //  tap without MAC: fallback / retry
    int64_t key_asked_ms;       //  first time we asked crypto
    int64_t key_last_ask;

    //  Offload: one super-packet at a time, split into segments
    uint8_t *frame;
    uint8_t *split;
    dev_pkt_t segs [DEV_GSO_MAX_SEGS];

    dev_pkt_t out [BUS_BATCH_MAX];

    device_status_reply_t counters;     //  the counter fields of the reply

    //  Groups (docs/groups.md): what programs here joined (IGMP/MLD snooping),
    //  and what the router says about every group (group.members)
    dev_groups_t *groups;
    dev_gtable_t *gtable;
    uint32_t query_ms;          //  general query interval (DEV_QUERY_MS)
    uint32_t response_ms;       //  the answers' deadline we ask for
    int query_timer;
    int expire_timer;
    int router_timer;
    int router_misses;          //  echoes to the router unanswered in a row
    uint64_t own_pkts;          //  written by the device itself (queries, anycast answers):
    uint64_t own_bytes;         //  not in tx_*, which is what the tunnel delivered
};

//  ---------------------------------------------------------------------------
//  Configuration

//  Records a dev_config setter's message against its setting, without the
//  "<key>: " the setter puts in front (the path already names the key).
static void
s_config_error (bus_config_t *config, config_setting_t *group, const char *key, const char *err)
{
    config_setting_t *setting = group ? config_setting_get_member (group, key) : NULL;
    size_t klen = strlen (key);
    if (strncmp (err, key, klen) == 0 && err [klen] == ':' && err [klen + 1] == ' ')
        err += klen + 2;
    bus_config_error (config, setting ? setting : group, "%s", err);
}

//  device's own checks, as the schema reads each key: dev_config's setters
//  say what they expected (an interface name's characters, an address that
//  leaves room for peers...).
static void
s_check_key (bus_config_t *config, config_setting_t *group, config_setting_t *setting,
             const bus_cfg_key_t *key, bool refused, void *out, void *arg)
{
    const bus_cfg_device_t *in = (const bus_cfg_device_t *) out;
    dev_service_config_t *cfg = (dev_service_config_t *) arg;
    char err [200];
    int rc = 0;
    if (streq (key->name, "type"))
        rc = in->type ? dev_config_set_type (&cfg->dev, in->type, err, sizeof err) : 0;
    else
    if (streq (key->name, "name"))
        rc = in->name ? dev_config_set_name (&cfg->dev, in->name, err, sizeof err) : 0;
    else
    if (streq (key->name, "mtu"))       //  range checked by dev_config, which says what it expected
        rc = setting ? dev_config_set_mtu (&cfg->dev, (long) in->mtu, err, sizeof err) : 0;
    else
    if (streq (key->name, "address"))
        rc = in->address && *in->address ? dev_config_set_address (&cfg->dev, in->address, err, sizeof err) : 0;
    else
    if (streq (key->name, "mac_address"))
        rc = in->mac_address ? dev_config_set_mac (&cfg->dev, in->mac_address, err, sizeof err) : 0;
    else
    if (streq (key->name, "offload")) {
        cfg->offload = in->offload;
        if (cfg->offload && cfg->dev.type == DEV_TYPE_TAP)
            bus_config_error (config, setting, "TSO offload works on a tun device only (type is \"tap\")");
    }
    if (rc)
        s_config_error (config, group, key->name, err);
}

void
dev_service_check_config (bus_config_t *config, dev_service_config_t *out)
{
    dev_service_config_t cfg;
    memset (&cfg, 0, sizeof cfg);
    dev_config_init (&cfg.dev);
    bus_cfg_device_t device;
    if (bus_cfg_read (config, &bus_cfg_device_group, NULL, &device, BUS_CFG_CHECK_KEYS,
                      NULL, s_check_key, &cfg) == 1) {
        //  Cross-checks; the MAC derived here from a zero key is replaced by the
        //  real one at start (mac_set stays false)
        config_setting_t *group = config_lookup (bus_config_raw (config), "device");
        static const uint8_t zero_key [32];
        char err [200];
        if (dev_config_finish (&cfg.dev, zero_key, err, sizeof err)) {
            const char *key = strncmp (err, "mtu", 3) == 0 ? "mtu" : "mac_address";
            s_config_error (config, group, key, err);
        }
    }
    //  The peers device routes to: their allowed_ips must parse
    cfg.peers = config ? node_peers_load (config, NULL) : NULL;
    *out = cfg;
}

void
dev_service_config_clear (dev_service_config_t *self)
{
    node_peers_destroy (&self->peers);
    dev_link_destroy (&self->link);
}

//  ---------------------------------------------------------------------------
//  Outbound: TUN -> dev-crypto

static void s_tun_poll (dev_service_t *self, bool on);

static bool
s_crypto_writable (void *arg)
{
    return bus_pipe_writable (((dev_service_t *) arg)->to_crypto);
}

static int
s_resume (void *arg)
{
    s_tun_poll ((dev_service_t *) arg, true);
    return 0;
}

//  Stops reading the TUN until the pipe takes batches again: 1 ms while crypto
//  drains a burst, up to 50 ms while it is away (bus_pause.h).
static void
s_pause (dev_service_t *self)
{
    s_tun_poll (self, false);
    self->counters.paused++;
    bus_pause_start (self->pause);
}

static void
s_send (dev_service_t *self)
{
    size_t count = bus_batch_count (self->batch);
    if (count == 0)
        return;
    if (bus_pipe_send (self->to_crypto, self->batch) == 0)
        self->counters.to_crypto += count;
    else {
        self->counters.drop_pipe_full += count;
        bus_batch_reset (self->batch);
    }
}

static void s_on_report (dev_service_t *self, const dev_igmp_msg_t *msg, uint64_t now_ms);

//  The IP packet in an Ethernet frame (TAP), untagged or with one 802.1Q tag
static bool
s_eth_ip (const uint8_t *frame, size_t len, const uint8_t **ip, size_t *iplen)
{
    size_t off = len >= 18 && frame [12] == 0x81 && frame [13] == 0x00 ? 16 : 12;
    if (len < off + 2)
        return false;
    uint16_t type = (uint16_t) (frame [off] << 8 | frame [off + 1]);
    if (type != 0x0800 && type != 0x86dd)
        return false;
    *ip = frame + off + 2;
    *iplen = len - off - 2;
    return true;
}

#define S_NO_OPINION  (-2)

//  Writes packets the device makes itself into the interface (queries,
//  answers for anycast addresses), counted apart from what the tunnel delivers
static void
s_write_own (dev_service_t *self, dev_pkt_t *pkts, int count)
{
    const dev_tun_stats_t *stats = dev_tun_stats (self->tun);
    uint64_t pkts_before = stats->write_pkts, bytes_before = stats->write_bytes;
    dev_tun_write_batch (self->tun, pkts, count);
    self->own_pkts += stats->write_pkts - pkts_before;
    self->own_bytes += stats->write_bytes - bytes_before;
}

//  TAP: an ARP request or neighbour solicitation for an anycast address with
//  a nearest member is answered here with that peer's MAC (and not flooded:
//  the members would all answer, the last one winning). True if answered.
static bool
s_answer_anycast (dev_service_t *self, const uint8_t *frame, size_t len)
{
    int family;
    uint8_t target [16], mac [6], out [DEV_ARP_ANSWER_MAX];
    uint32_t peer;
    if (dev_arp_target (frame, len, &family, target)
    ||  dev_gtable_route (self->gtable, family, target, &peer) != DEV_GROUP_NEAREST
    ||  dev_peermap_peer_mac (self->map, peer, mac))
        return false;
    dev_pkt_t pkt = { out, dev_arp_answer (frame, len, mac, out, sizeof out), sizeof out };
    if (pkt.len == 0)
        return false;
    s_write_own (self, &pkt, 1);
    return true;
}

//  Groups (docs/groups.md) on top of the peer map's route: the IGMP/MLD the
//  kernel sends stay on this node (snooped for device.groups), multicast to a
//  group the router knows to be empty is dropped, and on a tun a packet to an
//  anycast address goes to its nearest member. Returns a tag, -1 (dropped,
//  counted) or S_NO_OPINION (the peer map's route stands).
static int64_t
s_classify_groups (dev_service_t *self, const uint8_t *pkt, size_t len, dev_route_t route, uint64_t now_ms)
{
    bool tap = self->cfg.dev.type == DEV_TYPE_TAP;
    if (tap && route == DEV_ROUTE_FLOOD && dev_gtable_has_anycast (self->gtable)
    &&  s_answer_anycast (self, pkt, len)) {
        self->counters.anycast++;
        return -1;
    }
    const uint8_t *ip = pkt;
    size_t iplen = len;
    if (tap && !s_eth_ip (pkt, len, &ip, &iplen))
        return S_NO_OPINION;
    int family;
    const uint8_t *dst;
    if (iplen >= 20 && ip [0] >> 4 == 4) {
        family = AF_INET;
        dst = ip + 16;
    }
    else
    if (iplen >= 40 && ip [0] >> 4 == 6) {
        family = AF_INET6;
        dst = ip + 24;
    }
    else
        return S_NO_OPINION;
    uint32_t peer = 0;
    if (route == DEV_ROUTE_FLOOD) {
        if (dev_igmp_maybe (ip, iplen)) {
            dev_igmp_msg_t msg;
            if (dev_igmp_parse (ip, iplen, &msg) != DEV_IGMP_NONE) {
                s_on_report (self, &msg, now_ms);
                return -1;
            }
        }
        if (dev_gtable_route (self->gtable, family, dst, &peer) == DEV_GROUP_EMPTY) {
            self->counters.drop_no_member++;
            return -1;
        }
        return S_NO_OPINION;
    }
    //  On a tap the kernel resolves the address first, and frames go by MAC
    if (!tap && dev_gtable_has_anycast (self->gtable)
    &&  dev_gtable_route (self->gtable, family, dst, &peer) == DEV_GROUP_NEAREST) {
        self->counters.anycast++;
        return peer;
    }
    return S_NO_OPINION;
}

//  The record tag for a packet read from the device, or -1 (dropped, counted).
static int64_t
s_classify (dev_service_t *self, const uint8_t *pkt, size_t len, uint64_t now_ms)
{
    uint32_t peer = 0;
    dev_route_t route = self->cfg.dev.type == DEV_TYPE_TAP
        ? dev_peermap_route_eth (self->map, pkt, len, now_ms, &peer)
        : dev_peermap_route_ip (self->map, pkt, len, &peer);
    self->counters.rx_packets++;
    self->counters.rx_bytes += len;
    if (route != DEV_ROUTE_MALFORMED) {
        int64_t tag = s_classify_groups (self, pkt, len, route, now_ms);
        if (tag != S_NO_OPINION)
            return tag;
    }
    switch (route) {
        case DEV_ROUTE_PEER:
            return peer;
        case DEV_ROUTE_FLOOD:
            self->counters.flooded++;
            return PIPE_TAG_FLOOD;
        case DEV_ROUTE_UNKNOWN:
            self->counters.drop_unknown++;
            return -1;
        default:
            self->counters.drop_malformed++;
            return -1;
    }
}

//  Reads into the batch until the TUN runs dry (returns 0) or the batch is
//  full (1); -1 on a read error.
static int
s_fill_plain (dev_service_t *self, uint64_t now_ms)
{
    while (true) {
        uint8_t *slot = bus_batch_reserve (self->batch, 0, self->slot_len);
        if (!slot)
            return 1;
        dev_pkt_t pkt = { slot, 0, self->slot_len };
        int n = dev_tun_read_batch (self->tun, &pkt, 1);
        if (n <= 0) {
            bus_batch_cancel (self->batch);
            return n;
        }
        bus_batch_trim (self->batch, pkt.len);
        int64_t tag = s_classify (self, slot, pkt.len, now_ms);
        if (tag < 0)
            bus_batch_cancel (self->batch);
        else {
            //  The tag is known only after the read: rewrite the record's
            bus_packet_t rec = { .data = slot, .len = pkt.len,
                                 .record = slot - BUS_BATCH_HEADROOM - BUS_BATCH_RECORD };
            bus_packet_set_tag (&rec, (uint32_t) tag);
        }
    }
}

//  Offload: one read is a super-packet; its segments are copied into the
//  batch (sent whenever it fills). Returns 0 when the TUN ran dry, 1 after
//  a batch went out (check the pipe), -1 on a read error.
static int
s_fill_offload (dev_service_t *self, uint64_t now_ms)
{
    int sent = 0;
    while (!bus_batch_full (self->batch)) {
        dev_pkt_t frame = { self->frame, 0, DEV_GSO_MAX_FRAME };
        int n = dev_tun_read_batch (self->tun, &frame, 1);
        if (n <= 0)
            return n;
        const char *why = NULL;
        int segs = dev_gso_split (frame.data, frame.len, self->split, DEV_GSO_OUT_SIZE,
                                  self->segs, DEV_GSO_MAX_SEGS, &why);
        if (segs < 0) {
            self->counters.rx_packets++;
            self->counters.drop_malformed++;
            bus_debug ("TSO frame of %zu bytes dropped: %s", frame.len, why);
            continue;
        }
        for (int i = 0; i < segs; i++) {
            int64_t tag = s_classify (self, self->segs [i].data, self->segs [i].len, now_ms);
            if (tag < 0)
                continue;
            if (bus_batch_add (self->batch, (uint32_t) tag, self->segs [i].data, self->segs [i].len)) {
                s_send (self);
                sent = 1;
                if (bus_batch_add (self->batch, (uint32_t) tag, self->segs [i].data, self->segs [i].len))
                    self->counters.drop_malformed++;        //  bigger than any batch
            }
        }
        if (sent)
            return 1;
    }
    return 1;
}

static int
s_tun_readable (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    dev_service_t *self = (dev_service_t *) arg;
    uint64_t now_ms = (uint64_t) zclock_mono ();
    for (int round = 0; round < S_BATCHES_PER_WAKEUP; round++) {
        if (!bus_pipe_writable (self->to_crypto)) {
            s_send (self);                  //  a partial batch from offload, counted
            s_pause (self);
            return 0;
        }
        int rc = self->cfg.offload ? s_fill_offload (self, now_ms) : s_fill_plain (self, now_ms);
        if (rc < 0 && errno != EAGAIN) {
            //  EIO while a tap is down, for instance: not fatal, the poll says
            //  when to try again
            bus_debug ("read from %s: %s", self->cfg.dev.name, strerror (errno));
        }
        s_send (self);
        if (rc <= 0)
            return 0;
    }
    return 0;
}

static void
s_tun_poll (dev_service_t *self, bool on)
{
    if (on == self->polling)
        return;
    if (on) {
        self->tun_item = (zmq_pollitem_t) { NULL, dev_tun_fd (self->tun), ZMQ_POLLIN, 0 };
        int rc = bus_loop_poller (self->loop, &self->tun_item, s_tun_readable, self);
        assert (rc == 0);
        bus_loop_poller_set_tolerant (self->loop, &self->tun_item);
    }
    else
        bus_loop_poller_end (self->loop, &self->tun_item);
    self->polling = on;
}

//  ---------------------------------------------------------------------------
//  Inbound: crypto-dev -> TUN

static int
s_from_crypto (bus_pipe_t *pipe, void *arg)
{
    dev_service_t *self = (dev_service_t *) arg;
    uint64_t now_ms = (uint64_t) zclock_mono ();
    bool tap = self->cfg.dev.type == DEV_TYPE_TAP;
    for (int round = 0; round < S_BATCHES_PER_WAKEUP; round++) {
        bus_batch_iter_t iter;
        int rc = bus_pipe_recv (self->from_crypto, &iter, 0);
        if (rc == 0)
            break;
        if (rc < 0) {
            self->counters.bad_batches++;
            bus_warn ("bad batch on %s: %s", PIPE_CRYPTO_DEV, bus_pipe_error (self->from_crypto));
            continue;
        }
        int count = 0;
        bus_packet_t pkt;
        while (bus_batch_iter_next (&iter, &pkt)) {
            self->counters.from_crypto++;
            if (pkt.tag >= self->peer_count && pkt.tag >= self->dyn_limit) {
                self->counters.drop_bad_peer++;
                continue;
            }
            if (tap && dev_peermap_learn (self->map, pkt.data, pkt.len, pkt.tag, now_ms)) {
                self->counters.drop_bad_frame++;
                continue;
            }
            self->out [count++] = (dev_pkt_t) { pkt.data, pkt.len, pkt.len };
        }
        if (count)
            dev_tun_write_batch (self->tun, self->out, count);
    }
    return 0;
}

//  ---------------------------------------------------------------------------
//  Bus

static void
s_fill_up (dev_service_t *self, device_up_t *up)
{
    memset (up, 0, sizeof *up);
    snprintf (up->name, sizeof up->name, "%s", self->cfg.dev.name);
    snprintf (up->type, sizeof up->type, "%s", self->cfg.dev.type == DEV_TYPE_TAP ? "tap" : "tun");
    snprintf (up->address, sizeof up->address, "%s", self->addr_text);
    snprintf (up->mac, sizeof up->mac, "%s", self->mac_text);
    up->mtu = (uint32_t) self->cfg.dev.mtu;
}

static void
s_publish_up (dev_service_t *self)
{
    if (!self->up)
        return;
    device_up_t up;
    s_fill_up (self, &up);
    bus_service_publish (self->svc, &device_up_schema, &up);
}

static void
s_on_status (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    dev_service_t *self = (dev_service_t *) arg;
    device_status_reply_t *reply = (device_status_reply_t *) malloc (sizeof *reply);
    assert (reply);
    *reply = self->counters;
    device_up_t up;
    s_fill_up (self, &up);
    memcpy (reply->name, up.name, sizeof reply->name);
    memcpy (reply->type, up.type, sizeof reply->type);
    memcpy (reply->address, up.address, sizeof reply->address);
    memcpy (reply->mac, up.mac, sizeof reply->mac);
    reply->mtu = up.mtu;
    reply->up = self->up;
    reply->offload = self->cfg.offload;
    const dev_tun_stats_t *stats = dev_tun_stats (self->tun);
    reply->tx_packets = stats->write_pkts - self->own_pkts;
    reply->tx_bytes = stats->write_bytes - self->own_bytes;
    reply->drop_write = stats->write_drops;
    reply->peers = self->peer_count;
    reply->groups = (uint32_t) dev_groups_count (self->groups);
    bus_service_reply (svc, env, &device_status_reply_schema, reply);
    free (reply);
}

//  ---------------------------------------------------------------------------
//  Groups (docs/groups.md, "The device"): IGMP/MLD snooping and the querier,
//  device.groups, and what group.members says

//  device.groups: the whole list, sorted
static void
s_publish_groups (dev_service_t *self)
{
    device_groups_t *msg = (device_groups_t *) calloc (1, sizeof *msg);
    assert (msg);
    size_t count = dev_groups_count (self->groups);
    for (size_t i = 0; i < count && i < DEV_GROUPS_MAX; i++) {
        char text [DEV_GROUPS_TEXT];
        dev_groups_text (self->groups, i, text);
        snprintf (msg->groups [i], sizeof msg->groups [i], "%.40s", text);       //  a group is at most 39
        msg->groups_count++;
    }
    bus_service_publish (self->svc, &device_groups_schema, msg);
    free (msg);
}

//  An IGMP/MLD message the kernel sent out of the interface: counted, never
//  sent to a peer; a report or leave updates the set
static void
s_on_report (dev_service_t *self, const dev_igmp_msg_t *msg, uint64_t now_ms)
{
    if (msg->kind == DEV_IGMP_MALFORMED) {
        self->counters.drop_malformed++;
        return;
    }
    self->counters.group_reports++;
    if (dev_groups_apply (self->groups, msg, now_ms)) {
        bus_debug ("%s: %zu groups joined", self->cfg.dev.name, dev_groups_count (self->groups));
        s_publish_groups (self);
    }
}

//  General queries into the interface, as a querier on a LAN would send: the
//  kernel answers with a report of every group it is a member of (Linux only
//  reports on its own at join and leave)
static void
s_send_queries (dev_service_t *self)
{
    if (!self->up)
        return;
    bool tap = self->cfg.dev.type == DEV_TYPE_TAP;
    uint8_t q4 [DEV_IGMP_QUERY_MAX], q6 [DEV_IGMP_QUERY_MAX];
    dev_pkt_t pkts [2] = {
        { q4, dev_igmp_query4 (q4, sizeof q4, tap, self->response_ms, self->query_ms / 1000), sizeof q4 },
        { q6, dev_igmp_query6 (q6, sizeof q6, tap, self->response_ms, self->query_ms / 1000), sizeof q6 }
    };
    //  A kernel without IPv6 on the interface drops the second: no harm
    s_write_own (self, pkts, 2);
}

static int
s_query_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    s_send_queries ((dev_service_t *) arg);
    return 0;
}

static int
s_expire_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    dev_service_t *self = (dev_service_t *) arg;
    if (dev_groups_expire (self->groups, (uint64_t) zclock_mono ()))
        s_publish_groups (self);
    return 0;
}

//  Puts an anycast address on the interface (this node is a member: the
//  kernel answers it) or takes it off, through the helper that holds
//  CAP_NET_ADMIN. The interface's own address is never touched.
static void
s_anycast_address (dev_service_t *self, const dev_gentry_t *e, bool add)
{
    dev_addr_t addr = { .family = e->family, .prefix = e->family == AF_INET ? 32 : 128 };
    memcpy (addr.addr, e->addr, 16);
    if (self->cfg.dev.has_address && self->cfg.dev.address.family == addr.family
    &&  memcmp (self->cfg.dev.address.addr, addr.addr, addr.family == AF_INET ? 4 : 16) == 0)
        return;
    char err [300], text [DEV_ADDR_TEXT];
    dev_addr_format (&addr, text, sizeof text);
    int rc = add ? dev_link_set_address (self->link, NULL, &addr, err, sizeof err)
                 : dev_link_del_address (self->link, &addr, err, sizeof err);
    if (rc)
        bus_error ("anycast %s: %s", text, err);
    else
        bus_info ("%s: anycast address %s %s", self->cfg.dev.name, text, add ? "added" : "removed");
}

//  TAP: the nearest member changed; the host may still have the old one's MAC
//  for the address: tell it the new one (Linux updates an entry it has)
static void
s_announce_nearest (dev_service_t *self, const dev_gentry_t *e)
{
    uint8_t mac [6], out [DEV_ARP_ANSWER_MAX];
    if (self->cfg.dev.type != DEV_TYPE_TAP || !self->up || !self->mac_known
    ||  dev_peermap_peer_mac (self->map, e->nearest, mac))
        return;
    if (e->family == AF_INET && !(self->cfg.dev.has_address && self->cfg.dev.address.family == AF_INET))
        return;                         //  an ARP reply needs our IPv4 address
    dev_pkt_t pkt = { out, dev_arp_announce (e->family, e->addr, mac, self->cfg.dev.mac,
                                             self->cfg.dev.address.addr, out, sizeof out), sizeof out };
    if (pkt.len)
        s_write_own (self, &pkt, 1);
}

static void
s_on_group_members (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    dev_service_t *self = (dev_service_t *) arg;
    group_members_t *msg = (group_members_t *) malloc (sizeof *msg);
    assert (msg);
    char err [200];
    dev_gentry_t e, old;
    if (bus_envelope_get_msg (env, &group_members_schema, msg, err, sizeof err))
        bus_warn ("group.members: %s", err);
    else
    if (dev_gtable_parse (msg->group, msg->anycast, &e))
        bus_warn ("group.members: %s is not %s address", msg->group, msg->anycast ? "a unicast (anycast)" : "a multicast");
    else {
        e.local = msg->local;
        e.nearest = msg->nearest;
        e.members = msg->members_count;
        if (dev_gtable_set (self->gtable, &e, &old))
            bus_warn ("group.members: %s not kept, %d groups known already", msg->group, S_GTABLE_CAPACITY);
        else {
            if (e.anycast && e.local != old.local)
                s_anycast_address (self, &e, e.local);
            if (e.anycast && e.nearest != old.nearest && e.nearest != DEV_GTABLE_NO_PEER)
                s_announce_nearest (self, &e);
        }
    }
    free (msg);
}

static void
s_forget_anycast (const dev_gentry_t *e, void *arg)
{
    s_anycast_address ((dev_service_t *) arg, e, false);
}

//  The router is gone (stopped, failed, or routing turned off): what it said
//  may be stale, and nobody will correct it. Forget it all: multicast floods
//  and unicast routes by prefix again, as on a node without a router; a
//  restarted router publishes again (the device's subscription asks for it
//  with bus.sync when it rejoins, the router's start publishes).
static void
s_forget_router (dev_service_t *self, const char *why)
{
    if (dev_gtable_count (self->gtable) == 0)
        return;
    bus_info ("the router %s: the groups it published are forgotten", why);
    dev_gtable_clear (self->gtable, s_forget_anycast, self);
    self->router_misses = 0;
}

static void
s_on_router_echo (bus_service_t *svc, bus_envelope_t *reply, void *arg)
{
    dev_service_t *self = (dev_service_t *) arg;
    if (reply && streq (bus_envelope_type (reply), bus_echo_schema.type))
        self->router_misses = 0;
    else
    if (reply)                          //  bus.error: no router instance (404)
        s_forget_router (self, "is gone");
    else
    if (++self->router_misses >= 2)     //  busy once may happen; twice, it is stuck
        s_forget_router (self, "does not answer");
}

//  While the router's word is in use, ask it every few seconds whether it is
//  still there (every service answers bus.echo; the broker answers 404 for
//  a service that has no instance)
static int
s_router_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    dev_service_t *self = (dev_service_t *) arg;
    if (dev_gtable_count (self->gtable) == 0)
        return 0;
    bus_echo_t *echo = (bus_echo_t *) calloc (1, sizeof *echo);
    assert (echo);
    bus_service_request (self->svc, "router", &bus_echo_schema, echo, S_ROUTER_CHECK_MS / 2, s_on_router_echo, self);
    free (echo);
    return 0;
}

//  Sets the MAC (tap) and brings the interface up; publishes device.up.
static int
s_bring_up (dev_service_t *self, char *err, size_t errsize)
{
    if (self->cfg.dev.type == DEV_TYPE_TAP) {
        if (dev_link_set_mac (self->link, self->cfg.dev.mac, err, errsize)) {
            bus_error ("%s", err);
            return -1;
        }
        dev_mac_format (self->cfg.dev.mac, self->mac_text);
        dev_peermap_set_local (self->map, self->cfg.dev.has_address ? &self->cfg.dev.address : NULL,
                               self->cfg.dev.mac);
        self->mac_known = true;
    }
    if (!self->up) {
        if (dev_link_set_up (self->link, err, errsize)) {
            bus_error ("%s", err);
            return -1;
        }
        self->up = true;
        s_tun_poll (self, true);
        //  Ask the kernel for its groups now, then every query interval
        s_send_queries (self);
        if (self->query_timer == -1)
            self->query_timer = bus_loop_timer (self->loop, self->query_ms, 0, s_query_tick, self);
    }
    bus_info ("%s up: %s%s%s, mtu %d", self->cfg.dev.name,
              self->cfg.dev.type == DEV_TYPE_TAP ? "tap" : "tun",
              *self->addr_text ? ", " : "", self->addr_text, self->cfg.dev.mtu);
    if (*self->mac_text)
        bus_info ("%s mac %s%s", self->cfg.dev.name, self->mac_text,
                  self->mac_fallback ? " (fallback: crypto's key not known yet)" : "");
    s_publish_up (self);
    return 0;
}

//  The node's public key from a crypto.key.reply (base64), or -1.
static int
s_key_from_reply (bus_envelope_t *reply, uint8_t key [32])
{
    if (strcmp (bus_envelope_type (reply), crypto_key_reply_schema.type) != 0)
        return -1;                          //  bus.error: no crypto, or it refused
    crypto_key_reply_t msg;
    char err [200];
    size_t len = 0;
    if (bus_envelope_get_msg (reply, &crypto_key_reply_schema, &msg, err, sizeof err)) {
        bus_warn ("crypto.key.reply: %s", err);
        return -1;
    }
    if (*msg.name
    ||  sodium_base642bin (key, 32, msg.public_key, strlen (msg.public_key), NULL, &len, NULL,
                           sodium_base64_VARIANT_ORIGINAL) || len != 32) {
        bus_warn ("crypto.key.reply: not this node's 32-byte base64 key");
        return -1;
    }
    return 0;
}

static void s_ask_key (dev_service_t *self);

static void
s_on_key (bus_service_t *svc, bus_envelope_t *reply, void *arg)
{
    dev_service_t *self = (dev_service_t *) arg;
    if (self->mac_known && !self->mac_fallback)
        return;                             //  an answer to an older request
    uint8_t key [32];
    if (!reply || s_key_from_reply (reply, key))
        return;                             //  the key timer decides what next
    char err [200];
    int rc = dev_config_finish (&self->cfg.dev, key, err, sizeof err);
    assert (rc == 0);                       //  checked at start
    self->mac_fallback = false;
    if (s_bring_up (self, err, sizeof err))
        bus_error ("could not set the MAC derived from the node key");
}

static void
s_ask_key (dev_service_t *self)
{
    crypto_key_t request = { .peer = "" };  //  this node's own key
    bus_service_request (self->svc, "crypto", &crypto_key_schema, &request, 1000, s_on_key, self);
}

//  Ticks while the tap's MAC is not derived from the node key: asks crypto,
//  and after DEV_KEY_WAIT_MS brings the interface up with a fallback MAC (a
//  hash of name and address: stable across restarts, unique per node) so the
//  node works without crypto; the real MAC replaces it when the key arrives.
static int
s_key_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    dev_service_t *self = (dev_service_t *) arg;
    if (self->mac_known && !self->mac_fallback) {
        bus_loop_timer_end (loop, self->key_timer);
        self->key_timer = -1;
        return 0;
    }
    int64_t now = zclock_mono ();
    if (!self->mac_known && now - self->key_asked_ms >= DEV_KEY_WAIT_MS) {
        //  A node without crypto cannot tunnel anyway; this only keeps the
        //  interface usable (and testable) meanwhile
        uint8_t seed [32];
        crypto_generichash_state state;
        crypto_generichash_init (&state, (const uint8_t *) "bifrost-dev-mac-fallback", 24, sizeof seed);
        crypto_generichash_update (&state, (const uint8_t *) self->cfg.dev.name, strlen (self->cfg.dev.name));
        crypto_generichash_update (&state, (const uint8_t *) self->addr_text, strlen (self->addr_text));
        crypto_generichash_final (&state, seed, sizeof seed);
        dev_mac_from_key (seed, self->cfg.dev.mac);
        self->mac_fallback = true;
        bus_warn ("no public key from crypto within %d ms: %s uses a MAC derived from its name "
                  "and address until it answers", DEV_KEY_WAIT_MS, self->cfg.dev.name);
        char err [200];
        if (s_bring_up (self, err, sizeof err))
            bus_error ("could not bring %s up", self->cfg.dev.name);
    }
    if (now - self->key_last_ask >= (self->mac_fallback ? S_KEY_RETRY_MS : 1000)) {
        self->key_last_ask = now;
        s_ask_key (self);
    }
    return 0;
}

static void
s_on_connect (bus_service_t *svc, uint64_t epoch, void *arg)
{
    dev_service_t *self = (dev_service_t *) arg;
    s_publish_up (self);
    s_publish_groups (self);
    if (!self->mac_known || self->mac_fallback)
        s_ask_key (self);
}

//  ---------------------------------------------------------------------------
//  Peers and our address from the registry (discovery): node.address sets the
//  interface address (unless the config has one), peer.up routes the peer's
//  allowed addresses (and its MAC on tap) to its index, peer.down forgets them.

static void
s_on_node_address (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    dev_service_t *self = (dev_service_t *) arg;
    node_address_t msg;
    char err [200];
    dev_addr_t addr;
    if (bus_envelope_get_msg (env, &node_address_schema, &msg, err, sizeof err)
    ||  dev_addr_parse (msg.address, &addr, err, sizeof err)) {
        bus_warn ("node.address: %s", err);
        return;
    }
    if (self->cfg.dev.has_address && !self->addr_from_registry) {
        if (memcmp (&addr, &self->cfg.dev.address, sizeof addr) != 0)
            bus_warn ("node.address %s ignored: device.address %s is configured", msg.address, self->addr_text);
        return;
    }
    if (self->cfg.dev.has_address && memcmp (&addr, &self->cfg.dev.address, sizeof addr) == 0)
        return;                         //  announced again
    if (dev_link_set_address (self->link, self->cfg.dev.has_address ? &self->cfg.dev.address : NULL, &addr,
                              err, sizeof err)) {
        bus_error ("node.address %s: %s", msg.address, err);
        return;
    }
    self->cfg.dev.address = addr;
    self->cfg.dev.has_address = true;
    self->addr_from_registry = true;
    dev_addr_format (&addr, self->addr_text, sizeof self->addr_text);
    dev_peermap_set_local (self->map, &self->cfg.dev.address, self->mac_known ? self->cfg.dev.mac : NULL);
    bus_info ("%s: address %s from the registry (network %s)", self->cfg.dev.name, self->addr_text, msg.network_id);
    s_publish_up (self);
}

static void
s_on_peer_event (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    dev_service_t *self = (dev_service_t *) arg;
    char err [200];
    const char *type = bus_envelope_type (env);
    if (streq (type, "peer.up")) {
        peer_up_t up;
        uint8_t key [32];
        size_t key_len = 0;
        if (bus_envelope_get_msg (env, &peer_up_schema, &up, err, sizeof err)) {
            bus_warn ("peer.up: %s", err);
            return;
        }
        if (up.index < self->peer_count || up.index >= NODE_PEERS_MAX)
            return;                     //  static peers are the config's
        dev_peermap_remove_peer (self->map, up.index);
        if (up.index >= self->dyn_limit)
            self->dyn_limit = up.index + 1;
        for (uint32_t a = 0; a < up.allowed_ips_count; a++) {
            dev_addr_t prefix;
            if (dev_addr_parse (up.allowed_ips [a], &prefix, err, sizeof err))
                bus_warn ("peer %s: allowed_ips %s: %s", up.name, up.allowed_ips [a], err);
            else
            if (dev_peermap_add_prefix (self->map, &prefix, up.index))
                bus_warn ("peer %s: allowed_ips %s not added", up.name, up.allowed_ips [a]);
        }
        if (self->cfg.dev.type == DEV_TYPE_TAP
        &&  sodium_base642bin (key, sizeof key, up.public_key, strlen (up.public_key), NULL, &key_len,
                               NULL, sodium_base64_VARIANT_ORIGINAL) == 0 && key_len == 32) {
            uint8_t mac [6];
            dev_mac_from_key (key, mac);
            if (dev_peermap_add_mac (self->map, mac, up.index))
                bus_warn ("peer %s: derived MAC not added (table full?)", up.name);
        }
        bus_debug ("peer %s: routed to index %u", up.name, up.index);
    }
    else
    if (streq (type, "peer.down")) {
        peer_down_t down;
        if (bus_envelope_get_msg (env, &peer_down_schema, &down, err, sizeof err)) {
            bus_warn ("peer.down: %s", err);
            return;
        }
        if (down.index >= self->peer_count)
            dev_peermap_remove_peer (self->map, down.index);
    }
}

//  ---------------------------------------------------------------------------
//  Interface setup

//  The helper ended (killed, or it failed): the interface works on, but its
//  address could no longer follow the registry. End, so that the supervisor
//  starts the whole process again, with a new helper.
static int
s_on_link (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    dev_service_t *self = (dev_service_t *) arg;
    if (!dev_link_gone (self->link))
        return 0;
    char reason [120];
    snprintf (reason, sizeof reason, "the device-link helper (pid %d) is gone: restarting to get a new one",
              (int) dev_link_pid (self->link));
    bus_service_fail (self->svc, reason);
    return -1;
}

//  The helper creates the interface (replacing a tun/tap of our name left by
//  a crashed run), sets its MTU and configured address, and hands it over
static int
s_open_interface (dev_service_t *self, char *err, size_t errsize)
{
    int flags = self->cfg.offload ? DEV_TUN_OFFLOAD : 0;
    self->tun = dev_link_open (self->link, &self->cfg.dev, flags, err, errsize);
    if (!self->tun)
        return -1;
    self->ifindex = dev_tun_ifindex (self->tun);
    return 0;
}

//  ---------------------------------------------------------------------------

dev_service_t *
dev_service_new (bus_service_t *svc, dev_service_config_t *config, char *err, size_t errsize)
{
    assert (svc && config);
    dev_service_t *self = (dev_service_t *) calloc (1, sizeof (dev_service_t));
    assert (self);
    self->svc = svc;
    self->loop = bus_service_loop (svc);
    self->pause = bus_pause_new (self->loop, S_RESUME_MAX_MS, s_crypto_writable, s_resume, self);
    self->key_timer = -1;
    self->query_timer = -1;
    self->expire_timer = -1;
    self->router_timer = -1;
    self->cfg = *config;
    self->peers = config->peers ? config->peers : node_peers_load (NULL, NULL);
    self->cfg.peers = NULL;
    config->peers = NULL;
    self->link = config->link ? config->link : dev_link_local ();
    self->cfg.link = NULL;
    config->link = NULL;
    if (sodium_init () < 0) {
        snprintf (err, errsize, "libsodium failed to initialize");
        dev_service_destroy (&self);
        return NULL;
    }
    if (self->cfg.dev.has_address)
        dev_addr_format (&self->cfg.dev.address, self->addr_text, sizeof self->addr_text);

    //  Who owns which address (and, on tap, which MAC)
    self->peer_count = node_peers_count (self->peers);
    self->map = dev_peermap_new (DEV_MAC_CAPACITY, DEV_MAC_AGE_MS);
    assert (self->map);
    dev_peermap_set_local (self->map, self->cfg.dev.has_address ? &self->cfg.dev.address : NULL, NULL);
    for (uint32_t i = 0; i < self->peer_count; i++) {
        const node_peer_t *peer = node_peers_get (self->peers, i);
        for (uint32_t a = 0; a < peer->allowed_count; a++) {
            dev_addr_t prefix = { .family = peer->allowed [a].family == 6 ? AF_INET6 : AF_INET,
                                  .prefix = peer->allowed [a].prefix };
            memcpy (prefix.addr, peer->allowed [a].addr, 16);
            int rc = dev_peermap_add_prefix (self->map, &prefix, i);
            assert (rc == 0);
        }
        if (self->cfg.dev.type == DEV_TYPE_TAP) {
            uint8_t mac [6];
            dev_mac_from_key (peer->key, mac);
            if (dev_peermap_add_mac (self->map, mac, i))
                bus_warn ("peer %s: derived MAC not added (table full?)", peer->name);
        }
    }

    //  Groups: IGMP's query interval (125 s) and a group held for robustness 2
    //  x interval + the answers' deadline (RFC 3376 8.4: 260 s); a test may
    //  shorten the interval (BIFROST_GROUP_QUERY_MS)
    self->query_ms = DEV_QUERY_MS;
    const char *query = getenv ("BIFROST_GROUP_QUERY_MS");
    if (query && atoi (query) >= 200 && atoi (query) <= DEV_QUERY_MS)
        self->query_ms = (uint32_t) atoi (query);
    self->response_ms = self->query_ms / 2 < DEV_QUERY_RESPONSE_MS ? self->query_ms / 2 : DEV_QUERY_RESPONSE_MS;
    self->groups = dev_groups_new (DEV_GROUPS_MAX, 2ull * self->query_ms + self->response_ms);
    self->gtable = dev_gtable_new (S_GTABLE_CAPACITY);
    assert (self->groups && self->gtable);

    if (s_open_interface (self, err, errsize)) {
        dev_service_destroy (&self);
        return NULL;
    }

    //  Pipes: we receive crypto-dev, we send dev-crypto (the run directory may
    //  not exist yet in a self test; the runtime made it before the sandbox,
    //  which lets us see it but not open it)
    if (access (bus_service_run_dir (svc), F_OK) && bus_run_dir_prepare (bus_service_run_dir (svc)))
        bus_warn ("run directory %s: %s", bus_service_run_dir (svc), strerror (errno));
    self->from_crypto = bus_pipe_new (bus_service_run_dir (svc), PIPE_CRYPTO_DEV, BUS_PIPE_RECEIVER, 0);
    self->to_crypto = bus_pipe_new (bus_service_run_dir (svc), PIPE_DEV_CRYPTO, BUS_PIPE_SENDER, 0);
    if (!self->from_crypto || !self->to_crypto) {
        snprintf (err, errsize, "cannot open the data pipes in %s", bus_service_run_dir (svc));
        dev_service_destroy (&self);
        return NULL;
    }
    //  `bifrostctl tap --pipes` can mirror their headers (bus.pipe.mirror)
    bus_service_add_pipe (svc, self->from_crypto);
    bus_service_add_pipe (svc, self->to_crypto);
    size_t hdr = self->cfg.dev.type == DEV_TYPE_TAP ? 18 : 0;      //  Ethernet + 802.1Q
    self->slot_len = (size_t) self->cfg.dev.mtu + hdr;
    size_t plen = self->slot_len > 1500 ? self->slot_len : 1500;
    self->batch = bus_batch_new (BUS_BATCH_HEADER + BUS_BATCH_MAX * BUS_BATCH_STRIDE (plen));
    assert (self->batch);
    if (self->cfg.offload) {
        self->frame = (uint8_t *) malloc (DEV_GSO_MAX_FRAME);
        self->split = (uint8_t *) malloc (DEV_GSO_OUT_SIZE);
        assert (self->frame && self->split);
    }
    if (bus_pipe_attach (self->from_crypto, self->loop, s_from_crypto, self)) {
        snprintf (err, errsize, "cannot poll the data pipe %s", bus_pipe_name (self->from_crypto));
        dev_service_destroy (&self);
        return NULL;
    }

    if (dev_link_fd (self->link) >= 0) {
        zmq_pollitem_t item = { NULL, dev_link_fd (self->link), ZMQ_POLLIN, 0 };
        bus_loop_poller (self->loop, &item, s_on_link, self);
    }
    bus_service_handle (svc, "device.status", s_on_status, self);
    bus_service_on_connect (svc, s_on_connect, self);
    bus_service_subscribe (svc, "node.address", s_on_node_address, self);
    bus_service_subscribe (svc, "peer.", s_on_peer_event, self);
    bus_service_subscribe (svc, "group.members", s_on_group_members, self);
    self->router_timer = bus_loop_timer (self->loop, S_ROUTER_CHECK_MS, 0, s_router_tick, self);
    self->expire_timer = bus_loop_timer (self->loop, self->query_ms < 4000 ? self->query_ms / 4 : 1000, 0,
                                         s_expire_tick, self);

    if (self->cfg.dev.type == DEV_TYPE_TAP && !self->cfg.dev.mac_set) {
        //  The MAC comes from the node key, which only crypto has: stay down
        //  until it answers (or the fallback after DEV_KEY_WAIT_MS)
        self->key_asked_ms = zclock_mono ();
        self->key_timer = bus_loop_timer (self->loop, 250, 0, s_key_tick, self);
    }
    else
    if (s_bring_up (self, err, errsize)) {
        dev_service_destroy (&self);
        return NULL;
    }
    return self;
}

void
dev_service_destroy (dev_service_t **self_p)
{
    assert (self_p);
    dev_service_t *self = *self_p;
    if (!self)
        return;
    if (self->tun)
        s_tun_poll (self, false);
    bus_pause_destroy (&self->pause);
    if (self->key_timer != -1)
        bus_loop_timer_end (self->loop, self->key_timer);
    if (self->query_timer != -1)
        bus_loop_timer_end (self->loop, self->query_timer);
    if (self->expire_timer != -1)
        bus_loop_timer_end (self->loop, self->expire_timer);
    if (self->router_timer != -1)
        bus_loop_timer_end (self->loop, self->router_timer);
    bus_pipe_destroy (&self->from_crypto);
    bus_pipe_destroy (&self->to_crypto);
    bus_batch_destroy (&self->batch);
    //  Closing the fd removes the (non-persistent) interface
    dev_tun_destroy (&self->tun);
    if (self->link && dev_link_fd (self->link) >= 0) {
        zmq_pollitem_t item = { NULL, dev_link_fd (self->link), ZMQ_POLLIN, 0 };
        bus_loop_poller_end (self->loop, &item);
    }
    dev_link_destroy (&self->link);
    dev_peermap_destroy (&self->map);
    dev_groups_destroy (&self->groups);
    dev_gtable_destroy (&self->gtable);
    node_peers_destroy (&self->peers);
    free (self->frame);
    free (self->split);
    free (self);
    *self_p = NULL;
}

const char *
dev_service_name (dev_service_t *self)
{
    return self->cfg.dev.name;
}

bool
dev_service_up (dev_service_t *self)
{
    return self->up;
}

//  ---------------------------------------------------------------------------
//  The service as a program part (one per process)

BUS_SERVICE_PART (dev_service_t, dev_service_config_t, dev_service_check_config,
                  dev_service_new, dev_service_destroy, dev_service_config_clear)

//  The process keeps no capability: the helper forked here, before the drop,
//  keeps CAP_NET_ADMIN for the interface's setup and its address, MAC and
//  state at run time (dev_link.h), and nothing else
static int
s_part_privileged (bus_config_t *config, void *arg)
{
    char err [300];
    s_part_checked.link = dev_link_start (err, sizeof err);
    if (!s_part_checked.link)
        bus_error ("%s", err);
    return s_part_checked.link ? 0 : -1;
}

//  It parses what crypto hands it: sandboxed to its own directory (the
//  interface comes from the helper, which opened /dev/net/tun)
static void
s_part_sandbox (bus_config_t *config, void *arg, const char *run_dir, bus_sandbox_t *paths)
{
}

const bus_service_def_t dev_service_def = {
    .name = "device",
    .summary = "the TUN/TAP interface: packets to and from crypto, by destination peer",
    BUS_SERVICE_PART_HOOKS,
    .privileged = s_part_privileged,
    .sandbox = s_part_sandbox,
    .seccomp = BUS_SECCOMP_TUN,                //  packets on the interface's descriptor (its helper does the rest)
};

//  ---------------------------------------------------------------------------
//  Self test

#include "bus_broker.h"
#include "bus_client.h"
#include "dev_csum.h"
#include "dev_netlink.h"
#include <arpa/inet.h>
#include <sched.h>

//  Loads config text and runs the check; returns the config (errors recorded).
static bus_config_t *
s_test_config (const char *text)
{
    char err [300];
    bus_config_t *config = bus_config_load_string (text, "test.cfg", err, sizeof err);
    assert (config);
    dev_service_config_t checked;
    dev_service_check_config (config, &checked);
    dev_service_config_clear (&checked);
    return config;
}

//  True if one of the recorded errors contains what
static bool
s_test_has_error (bus_config_t *config, const char *what)
{
    for (size_t i = 0; i < bus_config_error_count (config); i++)
        if (bus_config_error_text (config, i) && strstr (bus_config_error_text (config, i), what))
            return true;
    return false;
}

//  Waits on the dev-crypto pipe for a packet whose last bytes are marker;
//  returns its tag, or -1 after timeout_ms. Other packets are skipped.
static int64_t
s_test_expect (bus_pipe_t *pipe, const char *marker, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    size_t mlen = strlen (marker);
    while (zclock_mono () < deadline) {
        bus_batch_iter_t iter;
        if (bus_pipe_recv (pipe, &iter, 100) != 1)
            continue;
        bus_packet_t pkt;
        while (bus_batch_iter_next (&iter, &pkt))
            if (pkt.len >= mlen && memcmp (pkt.data + pkt.len - mlen, marker, mlen) == 0)
                return pkt.tag;
    }
    return -1;
}

static void
s_test_send_udp (const char *dst, const char *marker, bool broadcast)
{
    int fd = socket (AF_INET, SOCK_DGRAM, 0);
    assert (fd >= 0);
    int on = 1;
    if (broadcast)
        setsockopt (fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof on);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (9) };
    inet_pton (AF_INET, dst, &to.sin_addr);
    ssize_t rc = sendto (fd, marker, strlen (marker), 0, (struct sockaddr *) &to, sizeof to);
    assert (rc == (ssize_t) strlen (marker));
    close (fd);
}

//  An IPv4/UDP packet src:9 -> dst:port with payload (UDP checksum 0 = none)
static size_t
s_test_udp_packet (uint8_t *pkt, const char *src, const char *dst, uint16_t port, const char *payload)
{
    size_t plen = strlen (payload), total = 28 + plen;
    memset (pkt, 0, 28);
    pkt [0] = 0x45;
    pkt [2] = (uint8_t) (total >> 8);
    pkt [3] = (uint8_t) total;
    pkt [8] = 64;
    pkt [9] = 17;
    inet_pton (AF_INET, src, pkt + 12);
    inet_pton (AF_INET, dst, pkt + 16);
    dev_csum_store (pkt + 10, dev_csum_fold (dev_csum_add (0, pkt, 20)));
    pkt [20] = 0;
    pkt [21] = 9;
    pkt [22] = (uint8_t) (port >> 8);
    pkt [23] = (uint8_t) port;
    pkt [24] = (uint8_t) ((8 + plen) >> 8);
    pkt [25] = (uint8_t) (8 + plen);
    memcpy (pkt + 28, payload, plen);
    return total;
}

//  A UDP datagram to a multicast group, out of the test interface
static void
s_test_send_mcast (const char *group, const char *marker)
{
    int fd = socket (AF_INET, SOCK_DGRAM, 0);
    assert (fd >= 0);
    struct in_addr ifaddr;
    inet_pton (AF_INET, "10.100.0.1", &ifaddr);
    setsockopt (fd, IPPROTO_IP, IP_MULTICAST_IF, &ifaddr, sizeof ifaddr);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (9) };
    inet_pton (AF_INET, group, &to.sin_addr);
    ssize_t rc = sendto (fd, marker, strlen (marker), 0, (struct sockaddr *) &to, sizeof to);
    assert (rc == (ssize_t) strlen (marker));
    close (fd);
}

//  A socket that joined group on the test interface (close it to leave)
static int
s_test_join_on (const char *group, const char *ifname)
{
    int fd = socket (AF_INET, SOCK_DGRAM, 0);
    assert (fd >= 0);
    struct ip_mreqn mreq = { .imr_ifindex = (int) if_nametoindex (ifname) };
    inet_pton (AF_INET, group, &mreq.imr_multiaddr);
    int rc = setsockopt (fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq);
    assert (rc == 0);
    return fd;
}

static int
s_test_join (const char *group)
{
    return s_test_join_on (group, "bftest0");
}

//  Waits for a device.groups event listing exactly want (space-separated)
static bool
s_test_groups (zsock_t *sub, const char *want, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        zsock_set_rcvtimeo (sub, 100);
        zmsg_t *msg = zmsg_recv (sub);
        if (!msg)
            continue;
        zframe_t *body = zmsg_last (msg);
        char err [200];
        bus_envelope_t *env = bus_envelope_decode (zframe_data (body), zframe_size (body), err, sizeof err);
        zmsg_destroy (&msg);
        device_groups_t *groups = (device_groups_t *) calloc (1, sizeof *groups);
        assert (groups);
        char list [600] = "";
        if (env && bus_envelope_get_msg (env, &device_groups_schema, groups, err, sizeof err) == 0)
            for (uint32_t i = 0; i < groups->groups_count; i++)
                snprintf (list + strlen (list), sizeof list - strlen (list), "%s%s", i ? " " : "", groups->groups [i]);
        free (groups);
        bus_envelope_destroy (&env);
        if (streq (list, want))
            return true;
    }
    return false;
}

//  device.status, or NULL
static device_status_reply_t *
s_test_status (bus_client_t *client)
{
    char err [200];
    device_status_t request = { .detail = "" };
    bus_envelope_t *reply = NULL;
    for (int attempt = 0; attempt < 30 && !reply; attempt++)       //  until registered
        reply = bus_client_request (client, "device", &device_status_schema, &request, 1000, err, sizeof err);
    if (!reply)
        return NULL;
    device_status_reply_t *status = (device_status_reply_t *) malloc (sizeof *status);
    assert (status);
    int rc = bus_envelope_get_msg (reply, &device_status_reply_schema, status, err, sizeof err);
    assert (rc == 0);
    bus_envelope_destroy (&reply);
    return status;
}

//  Plays the router: group.members for one group
static void
s_test_members (bus_client_t *client, const char *group, bool anycast, bool local, uint32_t nearest,
                uint32_t members)
{
    group_members_t *msg = (group_members_t *) calloc (1, sizeof *msg);
    assert (msg);
    snprintf (msg->group, sizeof msg->group, "%s", group);
    msg->anycast = anycast;
    msg->local = local;
    msg->nearest = nearest;
    msg->members_count = members;
    for (uint32_t i = 0; i < members; i++)
        msg->members [i] = (group_member_t) { .index = i, .id = 100 + i, .metric = 10 };
    int rc = bus_client_send (client, "", &group_members_schema, msg);
    assert (rc == 0);
    free (msg);
}

//  True while no IGMP packet (IPv4 protocol 2) comes out of dev-crypto for ms
static bool
s_test_no_igmp (bus_pipe_t *pipe, int ms)
{
    int64_t deadline = zclock_mono () + ms;
    while (zclock_mono () < deadline) {
        bus_batch_iter_t iter;
        if (bus_pipe_recv (pipe, &iter, 100) != 1)
            continue;
        bus_packet_t pkt;
        while (bus_batch_iter_next (&iter, &pkt))
            if (pkt.len >= 20 && pkt.data [0] >> 4 == 4 && pkt.data [9] == 2)
                return false;
    }
    return true;
}

//  True if the test interface has addr (one of its IPv4 addresses)
static bool
s_test_has_address (const char *text)
{
    dev_addr_t addr;
    char err [200];
    int rc = dev_addr_parse (text, &addr, err, sizeof err);
    assert (rc == 0);
    dev_netlink_t *nl = dev_netlink_new (err, sizeof err);
    assert (nl);
    bool has = dev_netlink_addr_has (nl, (int) if_nametoindex ("bftest0"), &addr) == 1;
    dev_netlink_destroy (&nl);
    return has;
}

//  Groups (docs/groups.md): snooping and the querier, device.groups, and what
//  group.members does to the packet path
static void
s_test_groups_all (const char *dir, bus_pipe_t *from_dev, zsock_t *sub, zactor_t **router_actor,
                   bus_service_t **router, bool verbose)
{
    char endpoint [BUS_PATH_MAX], err [300];
    assert (bus_endpoint (endpoint, sizeof endpoint, dir, "bus") == 0);
    bus_client_t *client = bus_client_new (endpoint, NULL, err, sizeof err);
    assert (client);

    //  A program joins: the kernel's report lists it, and goes to no peer
    int member = s_test_join ("239.1.2.3");
    assert (s_test_groups (sub, "239.1.2.3", 3000));
    assert (s_test_no_igmp (from_dev, 1500));
    //  Leaving takes it off
    close (member);
    assert (s_test_groups (sub, "", 3000));
    //  The querier (every second here, groups held 2.5 s): the kernel answers
    //  each query, so the group stays listed well past its hold time
    member = s_test_join ("239.1.2.3");
    int other = s_test_join ("239.1.2.4");
    assert (s_test_groups (sub, "239.1.2.3 239.1.2.4", 3000));
    device_status_reply_t *status = s_test_status (client);
    assert (status);
    uint64_t reports = status->group_reports;
    free (status);
    zclock_sleep (6000);
    status = s_test_status (client);
    assert (status);
    if (verbose)
        printf ("  groups %u, reports %" PRIu64 " -> %" PRIu64 " over 6 s of 1 s queries\n",
                status->groups, reports, status->group_reports);
    assert (status->groups == 2 && status->group_reports >= reports + 4);
    free (status);
    close (other);
    assert (s_test_groups (sub, "239.1.2.3", 3000));

    //  The router says 239.7.7.7 has no member: not flooded, counted; a group
    //  it never mentioned, and one with a member, flood as before
    for (int i = 0; i < 30; i++) {
        s_test_members (client, "239.7.7.7", false, false, DEV_GTABLE_NO_PEER, 0);
        s_test_send_mcast ("239.7.7.7", "to-empty");
        zclock_sleep (100);
        status = s_test_status (client);
        bool dropped = status && status->drop_no_member > 0;
        free (status);
        if (dropped)
            break;
        assert (i < 29);
    }
    s_test_send_mcast ("239.8.8.8", "to-unknown");
    assert (s_test_expect (from_dev, "to-unknown", 3000) == PIPE_TAG_FLOOD);
    s_test_members (client, "239.9.9.9", false, false, DEV_GTABLE_NO_PEER, 1);
    s_test_members (client, "224.0.0.251", false, false, DEV_GTABLE_NO_PEER, 0);
    zclock_sleep (200);
    s_test_send_mcast ("239.9.9.9", "to-member");
    assert (s_test_expect (from_dev, "to-member", 3000) == PIPE_TAG_FLOOD);
    s_test_send_mcast ("224.0.0.251", "to-link-local");
    assert (s_test_expect (from_dev, "to-link-local", 3000) == PIPE_TAG_FLOOD);

    //  Anycast 10.100.0.200, nearest member peer 0: no peer owns the address,
    //  yet it goes to peer 0
    s_test_members (client, "10.100.0.200", true, false, 0, 1);
    zclock_sleep (200);
    s_test_send_udp ("10.100.0.200", "to-anycast", false);
    assert (s_test_expect (from_dev, "to-anycast", 3000) == 0);
    //  This node becomes a member of 10.100.0.201: the address is on the
    //  interface; no longer: it is off
    s_test_members (client, "10.100.0.201", true, true, DEV_GTABLE_NO_PEER, 0);
    for (int i = 0; i < 30 && !s_test_has_address ("10.100.0.201/32"); i++)
        zclock_sleep (100);
    assert (s_test_has_address ("10.100.0.201/32"));
    s_test_members (client, "10.100.0.201", true, false, DEV_GTABLE_NO_PEER, 0);
    for (int i = 0; i < 30 && s_test_has_address ("10.100.0.201/32"); i++)
        zclock_sleep (100);
    assert (!s_test_has_address ("10.100.0.201/32") && s_test_has_address ("10.100.0.1/24"));

    //  The router stops: what it said is forgotten within two checks (the
    //  anycast address goes off the interface, the empty group floods again)
    s_test_members (client, "10.100.0.201", true, true, DEV_GTABLE_NO_PEER, 0);
    for (int i = 0; i < 30 && !s_test_has_address ("10.100.0.201/32"); i++)
        zclock_sleep (100);
    assert (s_test_has_address ("10.100.0.201/32"));
    zactor_destroy (router_actor);
    bus_service_destroy (router);
    int64_t stopped = zclock_mono ();
    for (int i = 0; i < 150 && s_test_has_address ("10.100.0.201/32"); i++)
        zclock_sleep (100);
    assert (!s_test_has_address ("10.100.0.201/32"));
    if (verbose)
        printf ("  router gone: its groups forgotten after %" PRId64 " ms\n", zclock_mono () - stopped);
    s_test_send_mcast ("239.7.7.7", "to-empty-again");
    assert (s_test_expect (from_dev, "to-empty-again", 3000) == PIPE_TAG_FLOOD);
    close (member);
    bus_client_destroy (&client);
}

//  The same on a tap: IGMP inside Ethernet, the querier's frames answered,
//  and ARP for an anycast address answered with its nearest member's MAC
static void
s_test_tap_groups (const char *dir, zsock_t *sub, bool verbose)
{
    bus_config_t *config = s_test_config (
        "device = { type = \"tap\"; name = \"bftest1\"; mtu = 1400; address = \"10.100.1.1/24\";\n"
        "           mac_address = \"02:00:00:00:01:01\"; };\n"
        "peers = ( { name = \"b\"; public_key = \"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\";\n"
        "            allowed_ips = [\"10.100.1.2/32\"]; } );\n");
    assert (bus_config_error_count (config) == 0);
    bus_service_t *svc = bus_service_new ("device", NULL, dir);
    assert (svc);
    bus_service_set_config (svc, config);
    char err [300];
    dev_service_config_t checked;
    dev_service_check_config (config, &checked);
    dev_service_t *dev = dev_service_new (svc, &checked, err, sizeof err);
    assert (dev && dev_service_up (dev));
    zactor_t *actor = zactor_new (bus_service_actor, svc);
    assert (actor);
    bus_pipe_t *from_dev = bus_pipe_new (dir, PIPE_DEV_CRYPTO, BUS_PIPE_RECEIVER, 0);
    assert (from_dev);
    bus_service_t *router = bus_service_new ("router", NULL, dir);
    assert (router);
    zactor_t *router_actor = zactor_new (bus_service_actor, router);
    assert (router_actor);
    char endpoint [BUS_PATH_MAX];
    assert (bus_endpoint (endpoint, sizeof endpoint, dir, "bus") == 0);
    bus_client_t *client = bus_client_new (endpoint, NULL, err, sizeof err);
    assert (client);

    //  Snooping and the querier on Ethernet
    int member = s_test_join_on ("239.2.2.2", "bftest1");
    assert (s_test_groups (sub, "239.2.2.2", 3000));
    device_status_reply_t *status = s_test_status (client);
    assert (status);
    uint64_t reports = status->group_reports;
    free (status);
    zclock_sleep (4000);
    status = s_test_status (client);
    assert (status);
    if (verbose)
        printf ("  tap: reports %" PRIu64 " -> %" PRIu64 " over 4 s of 1 s queries\n", reports, status->group_reports);
    assert (status->groups == 1 && status->group_reports >= reports + 3);
    free (status);
    close (member);
    assert (s_test_groups (sub, "", 3000));

    //  Anycast 10.100.1.200, nearest member peer 0: the kernel's ARP request
    //  is answered with peer 0's MAC, so the datagram goes to peer 0
    uint8_t key [32], peer_mac [6];
    size_t key_len = 0;
    assert (sodium_base642bin (key, sizeof key, "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=", 44, NULL, &key_len,
                               NULL, sodium_base64_VARIANT_ORIGINAL) == 0);
    dev_mac_from_key (key, peer_mac);
    s_test_members (client, "10.100.1.200", true, false, 0, 1);
    zclock_sleep (200);
    s_test_send_udp ("10.100.1.200", "to-anycast-tap", false);
    int64_t deadline = zclock_mono () + 3000;
    bool seen = false;
    while (!seen && zclock_mono () < deadline) {
        bus_batch_iter_t iter;
        if (bus_pipe_recv (from_dev, &iter, 100) != 1)
            continue;
        bus_packet_t pkt;
        while (bus_batch_iter_next (&iter, &pkt))
            if (pkt.len > 14 && memcmp (pkt.data + pkt.len - 14, "to-anycast-tap", 14) == 0) {
                assert (pkt.tag == 0 && memcmp (pkt.data, peer_mac, 6) == 0);
                seen = true;
            }
    }
    assert (seen);
    status = s_test_status (client);
    assert (status && status->anycast >= 1);
    free (status);

    bus_client_destroy (&client);
    zactor_destroy (&router_actor);
    bus_service_destroy (&router);
    bus_pipe_destroy (&from_dev);
    zactor_destroy (&actor);
    dev_service_destroy (&dev);
    assert (if_nametoindex ("bftest1") == 0);
    bus_service_destroy (&svc);
    bus_config_destroy (&config);
}

void
dev_service_test (bool verbose)
{
    if (!verbose)
        bus_log_set_level (BUS_LOG_ERROR);

    //  Config: every error with file:line and what was expected
    bus_config_t *config = s_test_config (
        "device = {\n"
        "  type = \"tun\";\n"
        "  mtu = 70000;\n"
        "  nmae = \"x\";\n"
        "  name = \"a/b\";\n"
        "  address = \"10.100.0.300/24\";\n"
        "};\n");
    if (verbose)
        bus_config_report (config, stdout);
    assert (s_test_has_error (config, "test.cfg:3: device.mtu: expected 576..65535"));
    assert (s_test_has_error (config, "test.cfg:4: device.nmae: unknown setting"));
    assert (s_test_has_error (config, "test.cfg:5: device.name: "));
    assert (s_test_has_error (config, "test.cfg:6: device.address: "));
    assert (bus_config_error_count (config) == 4);
    bus_config_destroy (&config);
    config = s_test_config ("device = { type = \"tap\"; offload = true; mac_address = \"01:00:00:00:00:01\"; };");
    assert (s_test_has_error (config, "device.offload: TSO offload works on a tun device only"));
    assert (s_test_has_error (config, "device.mac_address: "));
    bus_config_destroy (&config);
    config = s_test_config ("device = { type = \"tun\"; mac_address = \"02:00:00:00:00:01\"; };");
    assert (s_test_has_error (config, "test.cfg:1: device.mac_address: only a tap device has a MAC"));
    bus_config_destroy (&config);
    config = s_test_config ("device = { mtu = 1300; address = \"fd00::1/64\"; };");
    assert (bus_config_error_count (config) == 0);
    bus_config_destroy (&config);
    config = s_test_config ("device = { mtu = 1000; address = \"fd00::1/64\"; };");
    assert (s_test_has_error (config, "device.mtu: 1000 is below 1280"));
    bus_config_destroy (&config);
    //  Other services' groups are not ours to check; peers are
    config = s_test_config ("connection = { whatever = 1; };\n"
                            "peers = ( { name = \"b\"; public_key = \"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\";\n"
                            "            allowed_ips = [\"10.100.0.300/32\"]; } );\n");
    assert (bus_config_error_count (config) == 1 && s_test_has_error (config, "test.cfg:3:"));
    bus_config_destroy (&config);

    //  The whole service on a real broker, in a private network namespace
    if (unshare (CLONE_NEWNET)) {
        fprintf (stderr, "dev_service_test: unshare (CLONE_NEWNET): %s (run as root)\n", strerror (errno));
        assert (false);
    }
    //  No IPv6 chatter (router solicitations, MLD) on the new interface
    FILE *f = fopen ("/proc/sys/net/ipv6/conf/default/disable_ipv6", "w");
    if (f) {
        fputs ("1\n", f);
        fclose (f);
    }
    char dir [] = "/tmp/dev_service_test_XXXXXX";
    assert (mkdtemp (dir));
    //  The test client publishes what the router would (group.members);
    //  queries every second so the querier is seen at work
    setenv ("BIFROST_BUS_UNCHECKED", "1", 1);
    setenv ("BIFROST_GROUP_QUERY_MS", "1000", 1);
    zactor_t *broker = zactor_new (bus_broker_actor, dir);
    assert (broker);
    char events [BUS_PATH_MAX];
    assert (bus_endpoint (events, sizeof events, dir, "events") == 0);
    zsock_t *sub = zsock_new_sub (events, "evt.device.groups");
    assert (sub);
    config = s_test_config (
        "device = { type = \"tun\"; name = \"bftest0\"; mtu = 1400; address = \"10.100.0.1/24\"; };\n"
        "peers = ( { name = \"b\"; public_key = \"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\";\n"
        "            allowed_ips = [\"10.100.0.2/32\"]; } );\n");
    assert (bus_config_error_count (config) == 0);
    bus_service_t *svc = bus_service_new ("device", NULL, dir);
    assert (svc);
    bus_service_set_config (svc, config);
    char err [300];
    dev_service_config_t checked;
    dev_service_check_config (config, &checked);
    dev_service_t *dev = dev_service_new (svc, &checked, err, sizeof err);
    if (!dev)
        fprintf (stderr, "dev_service_test: %s\n", err);
    assert (dev);
    assert (dev_service_up (dev) && streq (dev_service_name (dev), "bftest0"));
    assert (if_nametoindex ("bftest0") > 0);
    zactor_t *actor = zactor_new (bus_service_actor, svc);
    assert (actor);

    //  We play crypto
    bus_pipe_t *from_dev = bus_pipe_new (dir, PIPE_DEV_CRYPTO, BUS_PIPE_RECEIVER, 0);
    bus_pipe_t *to_dev = bus_pipe_new (dir, PIPE_CRYPTO_DEV, BUS_PIPE_SENDER, 0);
    assert (from_dev && to_dev);

    //  Outbound: to the peer -> tag 0; broadcast -> flood; no peer -> dropped
    s_test_send_udp ("10.100.0.2", "to-peer-0", false);
    assert (s_test_expect (from_dev, "to-peer-0", 3000) == 0);
    s_test_send_udp ("10.100.0.255", "to-everyone", true);
    assert (s_test_expect (from_dev, "to-everyone", 3000) == PIPE_TAG_FLOOD);
    s_test_send_udp ("10.100.0.77", "to-nobody", false);
    s_test_send_udp ("10.100.0.2", "after-nobody", false);
    assert (s_test_expect (from_dev, "after-nobody", 3000) == 0);

    //  Inbound: a packet from peer 0 reaches a socket on 10.100.0.1; one with a
    //  tag no peer has is dropped
    int fd = socket (AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons (4242) };
    inet_pton (AF_INET, "10.100.0.1", &me.sin_addr);
    assert (fd >= 0 && bind (fd, (struct sockaddr *) &me, sizeof me) == 0);
    struct timeval tv = { 3, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    uint8_t pkt [100];
    bus_batch_t *batch = bus_batch_new (0);
    size_t len = s_test_udp_packet (pkt, "10.100.0.2", "10.100.0.1", 4242, "from-bad-tag");
    bus_batch_add (batch, 7, pkt, len);
    len = s_test_udp_packet (pkt, "10.100.0.2", "10.100.0.1", 4242, "from-peer-0");
    bus_batch_add (batch, 0, pkt, len);
    assert (bus_pipe_send (to_dev, batch) == 0);
    char buf [64];
    ssize_t n = recv (fd, buf, sizeof buf, 0);
    assert (n == 11 && memcmp (buf, "from-peer-0", 11) == 0);
    close (fd);
    bus_batch_destroy (&batch);

    //  device.status counts all of it
    char endpoint [BUS_PATH_MAX];
    assert (bus_endpoint (endpoint, sizeof endpoint, dir, "bus") == 0);
    bus_client_t *client = bus_client_new (endpoint, NULL, err, sizeof err);
    assert (client);
    device_status_t request = { .detail = "" };
    bus_envelope_t *reply = NULL;
    for (int attempt = 0; attempt < 30 && !reply; attempt++)       //  until registered
        reply = bus_client_request (client, "device", &device_status_schema, &request, 1000, err, sizeof err);
    assert (reply);
    device_status_reply_t *status = (device_status_reply_t *) malloc (sizeof *status);
    assert (status);
    assert (bus_envelope_get_msg (reply, &device_status_reply_schema, status, err, sizeof err) == 0);
    if (verbose)
        printf ("  status: rx %" PRIu64 " to_crypto %" PRIu64 " flooded %" PRIu64 " unknown %" PRIu64
                " from_crypto %" PRIu64 " tx %" PRIu64 " bad_peer %" PRIu64 "\n",
                status->rx_packets, status->to_crypto, status->flooded, status->drop_unknown,
                status->from_crypto, status->tx_packets, status->drop_bad_peer);
    assert (streq (status->name, "bftest0") && streq (status->type, "tun") && status->mtu == 1400);
    assert (streq (status->address, "10.100.0.1/24") && status->up && status->peers == 1);
    assert (status->drop_unknown == 1 && status->flooded >= 1 && status->to_crypto >= 3);
    assert (status->from_crypto == 2 && status->drop_bad_peer == 1 && status->tx_packets == 1);
    free (status);
    bus_envelope_destroy (&reply);
    bus_client_destroy (&client);

    //  A router that is there (it answers bus.echo, as every service); the
    //  test client publishes what it would
    bus_service_t *router = bus_service_new ("router", NULL, dir);
    assert (router);
    zactor_t *router_actor = zactor_new (bus_service_actor, router);
    assert (router_actor);
    s_test_groups_all (dir, from_dev, sub, &router_actor, &router, verbose);

    //  Stop: the interface goes with the service
    bus_pipe_destroy (&from_dev);
    bus_pipe_destroy (&to_dev);
    zactor_destroy (&actor);
    dev_service_destroy (&dev);
    assert (if_nametoindex ("bftest0") == 0);
    bus_service_destroy (&svc);
    bus_config_destroy (&config);
    s_test_tap_groups (dir, sub, verbose);
    zsock_destroy (&sub);
    zactor_destroy (&broker);
    zsys_dir_delete ("%s", dir);    //  best effort; the sockets are gone with their owners
    rmdir (dir);
}
