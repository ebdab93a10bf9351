/*  crypto_service: pipes, timers and bus handlers around crypto_node; how
    datagrams leave is crypto_send.c. */
#include "crypto_service_priv.h"
#include "route_flow.h"
#include "bus_clock.h"
#include "bus_buffer.h"
#include "node_keyproof.h"
#include "crypto_identity.h"
#include "crypto_node.h"
#include "bus_log.h"
#include "node_peers.h"
#include "bus_pipe.h"
#include "schemas/pipes.h"
#include "node_udp_tx.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sodium.h>
#include <sys/stat.h>
#include <time.h>

static const char *s_counter_names [CRYPTO_CNT_COUNTERS] = {
    "queue_full", "queue_expired", "bad_peer", "too_big", "pipe_full", "bad_batch",
    "keepalives_tx", "endpoints_sent", "routes", "bad_routes", "wire_sent", "wire_dropped",
    "routed_rx", "announces_tx", "announces_rx", "announces_dropped",
    "flood_sent", "flood_e2e", "flood_rx", "flood_forwarded", "flood_duplicates", "flood_over_budget",
    "flood_dropped"
};

static uint64_t
s_wall (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

//  --------------------------------------------------------------------------
//  Configuration

//  Checks crypto makes as the schema reads each key: what the schema cannot
//  know (a key file path fits, a psk is 32 bytes of base64, reject after
//  rekey). arg is the crypto_service_config_t being filled.
static void
s_check_key (bus_config_t *config, config_setting_t *group, config_setting_t *setting,
             const bus_cfg_key_t *key, bool refused, void *out, void *arg)
{
    crypto_service_config_t *cfg = (crypto_service_config_t *) arg;
    if (streq (key->name, "key_file")) {
        const char *key_file = ((bus_cfg_node_t *) out)->key_file;
        if (!key_file || !*key_file || strlen (key_file) >= sizeof cfg->key_file)
            bus_config_error (config, setting, "expected a path of 1..%zu characters",
                              sizeof cfg->key_file - 1);
        else
            snprintf (cfg->key_file, sizeof cfg->key_file, "%s", key_file);
    }
    else
    if (streq (key->name, "psk")) {
        const char *psk = ((bus_cfg_node_t *) out)->psk;
        size_t bin_len = 0;
        const char *end = NULL;
        if (!psk)
            ;
        else
        if (sodium_base642bin (cfg->psk, sizeof cfg->psk, psk, strlen (psk), NULL, &bin_len, &end,
                               sodium_base64_VARIANT_ORIGINAL) != 0
        ||  bin_len != 32 || end != psk + strlen (psk))
            bus_config_error (config, setting,
                              "expected 32 bytes in base64 (44 characters), e.g. from `openssl rand -base64 32`");
        else
            cfg->has_psk = true;
    }
    else
    if (streq (key->name, "reject_after_time")) {
        //  Its default follows rekey_after_time
        bus_cfg_crypto_t *c = (bus_cfg_crypto_t *) out;
        if (!setting || refused)
            c->reject_after_time_ms = c->rekey_after_time_ms + 60000;
        if (c->reject_after_time_ms <= c->rekey_after_time_ms)
            bus_config_error (config, setting, "must be longer than rekey_after_time (%lld ms)",
                              (long long) c->rekey_after_time_ms);
    }
}

void
crypto_service_check_config (bus_config_t *config, crypto_service_config_t *out)
{
    crypto_service_config_t local;
    crypto_service_config_t *cfg = out ? out : &local;
    memset (cfg, 0, sizeof *cfg);
    crypto_session_config_defaults (&cfg->session);
    snprintf (cfg->key_file, sizeof cfg->key_file, "%s", bus_cfg_node_defaults.key_file);
    bus_cfg_node_t node;
    bus_cfg_read (config, &bus_cfg_node_group, NULL, &node, 0, NULL, s_check_key, cfg);
    bus_cfg_crypto_t crypto;
    if (bus_cfg_read (config, &bus_cfg_crypto_group, NULL, &crypto, BUS_CFG_CHECK_KEYS,
                      NULL, s_check_key, cfg) == 1) {
        crypto_session_config_t *s = &cfg->session;
        if (crypto.reject_after_time_ms > crypto.rekey_after_time_ms) {
            s->rekey_after_time = (uint64_t) crypto.rekey_after_time_ms * MS;
            s->reject_after_time = (uint64_t) crypto.reject_after_time_ms * MS;
        }
        s->rekey_after_messages = (uint64_t) crypto.rekey_after_packets;
        s->rekey_after_bytes = (uint64_t) crypto.rekey_after_bytes;
    }
    //  The connection group is nat's too: read only our key, never complain about the others
    static const char *const connection_keys [] = { "keepalive_interval", NULL };
    bus_cfg_read (config, &bus_cfg_connection_group, NULL, &cfg->connection, 0, connection_keys, NULL, NULL);
    //  device's too: only whether packets are Ethernet frames (device checks the value)
    static const char *const device_keys [] = { "type", NULL };
    bus_cfg_device_t device;
    bus_cfg_read (config, &bus_cfg_device_group, NULL, &device, 0, device_keys, NULL, NULL);
    cfg->layer2 = device.type && streq (device.type, "tap");
    //  routing's too (the router's and nat's): only the flood budget
    static const char *const routing_keys [] = { "flood_packets_per_second", NULL };
    bus_cfg_routing_t routing;
    bus_cfg_read (config, &bus_cfg_routing_group, NULL, &routing, 0, routing_keys, NULL, NULL);
    cfg->flood_rate = (uint32_t) routing.flood_packets_per_second;

    cfg->peers = node_peers_load (config, &cfg->connection);
    //  An existing key file must be usable, and not be one of the peers' keys
    config_setting_t *key_setting = config ? config_lookup (bus_config_raw (config), "key_file") : NULL;
    struct stat st;
    if (config && cfg->key_file [0] && stat (cfg->key_file, &st) == 0) {
        char err [300];
        crypto_identity_t *identity = crypto_identity_load (cfg->key_file, false, err, sizeof err);
        if (!identity)
            bus_config_error (config, key_setting, "%s%s", key_setting ? "" : "key_file: ", err);
        else {
            const node_peer_t *self_peer = node_peers_find_key (cfg->peers, crypto_identity_public (identity));
            if (self_peer) {
                config_setting_t *list = config_lookup (bus_config_raw (config), "peers");
                config_setting_t *item = list ? config_setting_get_elem (list, self_peer->index) : NULL;
                bus_config_error (config, item ? config_setting_get_member (item, "public_key") : NULL,
                                  "peer '%s' has this node's own public key (%s)",
                                  self_peer->name, self_peer->public_key);
            }
        }
        crypto_identity_destroy (&identity);
    }
    if (!out)
        crypto_service_config_clear (cfg);
}

void
crypto_service_config_clear (crypto_service_config_t *self)
{
    node_peers_destroy (&self->peers);
    sodium_memzero (self->psk, sizeof self->psk);
}

//  The record of a packet just reserved in a builder, for bus_packet_grow: the
//  layout is fixed by docs/data-plane.md (8-byte record header, 16 headroom)
static bus_packet_t
s_reserved_packet (uint8_t *dst, uint32_t tag, size_t len)
{
    bus_packet_t pkt = {
        .data = dst, .len = len, .tag = tag, .flags = 0,
        .record = dst - BUS_BATCH_HEADROOM - BUS_BATCH_RECORD
    };
    return pkt;
}

//  Encrypts len bytes of plaintext for peer i into the crypto-nat batch: the
//  plaintext is written into a record's slot, the record grown over its room
//  and encrypted where it lies. plain NULL (len 0) makes a keepalive.
static bool
s_encrypt_out_type (crypto_service_t *self, int i, int type, const uint8_t *prefix, size_t prefix_len,
                    const uint8_t *plain, size_t len, uint64_t now);

//  Which of the peer's equal-cost next hops this packet's flow takes (the
//  inner 5-tuple, keyed hash, rendezvous among the hops' ids: a flow stays on
//  one path, librouter/route_flow.h), in the FLOW bits of the record just
//  built; a packet that is not IP goes the first hop's way
static void
s_flow_pick (crypto_service_t *self, const crypto_peer_state_t *peer, bus_batch_t *batch,
             const uint8_t *plain, size_t len)
{
    route_flow_t flow;
    if (route_flow_parse (plain, len, &flow) != 0)
        return;
    size_t k = route_flow_pick (route_flow_hash (&flow, self->flow_key), peer->ecmp_ids, peer->ecmp_count);
    bus_batch_set_flags (batch, (uint16_t) PIPE_FLOW_FLAGS (k));
}

static bool
s_encrypt_out (crypto_service_t *self, int i, const uint8_t *plain, size_t len, uint64_t now)
{
    return s_encrypt_out_type (self, i, WIRE_DATA, NULL, 0, plain, len, now);
}

//  The same for a message of data's layout of another type (WIRE_ANNOUNCE,
//  WIRE_FLOOD): its plaintext is prefix (a flood frame's header) then plain
static bool
s_encrypt_out_type (crypto_service_t *self, int i, int type, const uint8_t *prefix, size_t prefix_len,
                    const uint8_t *plain, size_t len, uint64_t now)
{
    size_t plain_len = len;
    len += prefix_len;
    //  Straight onto nat's socket when nat gave the peer a route
    bus_batch_t *batch = self->wire && self->peer [i].route_len ? self->out_wire : self->out_nat;
    uint8_t *dst = crypto_send_reserve (self, self->to_nat, batch, (uint32_t) i, len);
    if (!dst)
        return false;
    if (prefix_len)
        memcpy (dst, prefix, prefix_len);
    if (plain_len)
        memcpy (dst + prefix_len, plain, plain_len);
    bus_packet_t pkt = s_reserved_packet (dst, (uint32_t) i, len);
    int rc = bus_packet_grow (&pkt);
    assert (rc == 0);
    size_t wire = 0;
    rc = type == WIRE_DATA ? crypto_node_encrypt (self->node, i, pkt.data, len, pkt.len, now, &wire)
                           : crypto_node_encrypt_type (self->node, i, type, pkt.data, len, pkt.len, now, &wire);
    if (rc != CRYPTO_SESSION_OK) {
        bus_packet_shrink (&pkt);
        bus_batch_cancel (batch);
        return false;
    }
    assert (wire == pkt.len);
    crypto_peer_state_t *peer = &self->peer [i];
    //  Equal-cost next hops through other peers: the flow's pick, for nat (the
    //  one check a peer without them costs)
    if (peer->ecmp_count > 1 && batch == self->out_nat && type == WIRE_DATA && len)
        s_flow_pick (self, peer, batch, plain, len);
    peer->last_tx = now;
    if (type == WIRE_ANNOUNCE)
        self->counters [CRYPTO_CNT_ANNOUNCES_TX]++;
    else
    if (type != WIRE_DATA)
        ;                               //  flood frames: counted by the caller
    else
    if (len) {
        peer->tx_packets++;
        peer->tx_bytes += len;
    }
    else
        self->counters [CRYPTO_CNT_KEEPALIVES_TX]++;
    return true;
}

static void
s_initiate (crypto_service_t *self, int i, uint64_t now)
{
    uint8_t msg [WIRE_INITIATION_SIZE];
    if (crypto_node_initiation (self->node, i, now, s_wall (), msg) != 0)
        return;
    self->peer [i].initiated_at = now;
    uint8_t *dst = crypto_send_reserve (self, self->to_nat, self->out_nat, (uint32_t) i, sizeof msg);
    if (dst)
        memcpy (dst, msg, sizeof msg);
    bus_debug ("peer %s: handshake initiation sent", self->peer [i].conf->name);
}

//  Tells nat that peer i is at the address of handle (authenticated just now).
//  force: before a handshake response, which must go back where the initiation
//  came from. Otherwise only when the handle changed (roaming), or as a cheap
//  refresh once a second, so a restarted nat whose new handle happens to have
//  the old number still learns the address.
static void
s_endpoint (crypto_service_t *self, int i, uint32_t handle, bool force, uint64_t now)
{
    crypto_peer_state_t *peer = &self->peer [i];
    if (!force && peer->has_handle && peer->handle == handle && now - peer->endpoint_at < ENDPOINT_REFRESH)
        return;
    if (!peer->has_handle || peer->handle != handle)
        bus_debug ("peer %s: endpoint is nat handle %u", peer->conf->name, handle);
    uint8_t *dst = crypto_send_reserve (self, self->to_nat, self->out_nat, (uint32_t) i, sizeof handle);
    if (!dst)
        return;
    memcpy (dst, &handle, sizeof handle);   //  host order
    bus_batch_set_flags (self->out_nat, PIPE_FLAG_ENDPOINT);
    peer->has_handle = true;
    peer->handle = handle;
    peer->endpoint_at = now;
    self->counters [CRYPTO_CNT_ENDPOINTS]++;
}

//  --------------------------------------------------------------------------
//  Queue of packets waiting for a session

static void
s_queue_push (crypto_service_t *self, int i, const uint8_t *data, size_t len)
{
    crypto_peer_state_t *peer = &self->peer [i];
    if (peer->q_count == CRYPTO_QUEUE_MAX) {
        self->counters [CRYPTO_CNT_QUEUE_FULL]++;
        return;
    }
    bus_buffer_store (&peer->queue [(peer->q_head + peer->q_count) % CRYPTO_QUEUE_MAX], data, len, 2048);
    peer->q_count++;
}

static void
s_queue_flush (crypto_service_t *self, int i, uint64_t now)
{
    crypto_peer_state_t *peer = &self->peer [i];
    while (peer->q_count && crypto_node_can_send (self->node, i, now)) {
        bus_buffer_t *q = &peer->queue [peer->q_head];
        s_encrypt_out (self, i, q->data, q->size, now);
        peer->q_head = (peer->q_head + 1) % CRYPTO_QUEUE_MAX;
        peer->q_count--;
    }
}

static void
s_queue_drop (crypto_service_t *self, int i)
{
    crypto_peer_state_t *peer = &self->peer [i];
    self->counters [CRYPTO_CNT_QUEUE_EXPIRED] += peer->q_count;
    peer->q_head = peer->q_count = 0;
}

//  --------------------------------------------------------------------------
//  Events

static int64_t
s_age_ms (uint64_t since, uint64_t now)
{
    return since ? (int64_t) ((now - since) / MS) : -1;
}

static void
s_publish (crypto_service_t *self, int i, uint64_t now)
{
    crypto_peer_state_t *peer = &self->peer [i];
    crypto_peer_event_t event;
    memset (&event, 0, sizeof event);
    event.index = (uint32_t) i;
    snprintf (event.name, sizeof event.name, "%s", peer->conf->name);
    snprintf (event.public_key, sizeof event.public_key, "%s", peer->public_key);
    snprintf (event.state, sizeof event.state, "%s", peer->up ? "up" : "down");
    event.handshake_age_ms = s_age_ms (peer->handshake_at, now);
    bus_service_publish (self->svc, &crypto_peer_event_schema, &event);
}

//  Publishes crypto.peer when the session of peer i came up or went away
static void
s_check_state (crypto_service_t *self, int i, uint64_t now)
{
    crypto_peer_state_t *peer = &self->peer [i];
    bool up = crypto_node_can_send (self->node, i, now);
    if (up == peer->up)
        return;
    peer->up = up;
    bus_info ("peer %s (%s): session %s", peer->conf->name, peer->public_key, up ? "up" : "down");
    s_publish (self, i, now);
}

static void
s_on_connect (bus_service_t *svc, uint64_t epoch, void *arg)
{
    crypto_service_t *self = (crypto_service_t *) arg;
    uint64_t now = bus_clock_ns ();
    for (size_t i = 0; i < self->peer_count; i++) {
        //  The one who rejoined may be a restarted nat that lost the endpoints it
        //  learned from us: confirm each again with the next authenticated packet
        self->peer [i].has_handle = false;
        if (!self->peer [i].removed)
            s_publish (self, (int) i, now);
    }
}

//  --------------------------------------------------------------------------
//  Pipes

//  --------------------------------------------------------------------------
//  Broadcast and multicast along trees (docs/routing.md, "Broadcast and
//  multicast along a tree"; crypto_flood.h)

//  A flood frame of header + packet to neighbour i in its session; false when
//  there is no session or no room
static bool
s_flood_send (crypto_service_t *self, uint32_t i, const crypto_flood_header_t *header,
              const uint8_t *packet, size_t len, uint64_t now)
{
    if (i >= self->peer_count || self->peer [i].removed || !crypto_node_can_send (self->node, (int) i, now))
        return false;
    uint8_t prefix [WIRE_FLOOD_HEADER];
    crypto_flood_header_encode (header, prefix);
    return s_encrypt_out_type (self, (int) i, WIRE_FLOOD, prefix, sizeof prefix, packet, len, now);
}

//  A broadcast or multicast from the device. Before the router sent our own
//  tree (no router, no registry id): one end-to-end copy per session, as
//  always. Then: one flood frame to each child of our tree; a peer with a
//  session that the tree does not reach (neither a child nor routed through
//  peers, whose trees carry it) gets one in its own session with TTL 1,
//  delivered there and not forwarded (a copy that also came along a tree is
//  a duplicate by its sequence number).
static void
s_flood_out (crypto_service_t *self, const uint8_t *packet, size_t len, uint64_t now)
{
    if (!crypto_flood_active (self->flood)) {
        for (size_t i = 0; i < self->peer_count; i++)
            if (crypto_node_can_send (self->node, (int) i, now))
                s_encrypt_out (self, (int) i, packet, len, now);
        return;
    }
    uint32_t children [CRYPTO_FLOOD_CHILDREN];
    crypto_flood_header_t header;
    size_t count = crypto_flood_own (self->flood, &header, children, CRYPTO_FLOOD_CHILDREN);
    bool child [NODE_PEERS_MAX] = { false };
    for (size_t k = 0; k < count; k++) {
        if (children [k] < NODE_PEERS_MAX)
            child [children [k]] = true;
        if (s_flood_send (self, children [k], &header, packet, len, now))
            self->counters [CRYPTO_CNT_FLOOD_SENT]++;
    }
    header.ttl = 1;
    for (size_t i = 0; i < self->peer_count && i < NODE_PEERS_MAX; i++)
        if (!self->peer [i].routed && !child [i] && s_flood_send (self, (uint32_t) i, &header, packet, len, now))
            self->counters [CRYPTO_CNT_FLOOD_E2E]++;
}

//  A flood frame neighbour i's session authenticated (plain: its header and
//  the packet): taken once per (origin, seqno), checked against the origin's
//  addresses, delivered as the origin's (i's when the origin is unknown here),
//  and sent on to the origin's children but i, within the origin's budget
static void
s_flood_in (crypto_service_t *self, int i, const uint8_t *plain, size_t len, uint64_t now)
{
    crypto_flood_header_t header;
    uint32_t origin;
    if (crypto_flood_header_decode (plain, len, &header)) {
        self->counters [CRYPTO_CNT_FLOOD_DROPPED]++;
        return;
    }
    switch (crypto_flood_accept (self->flood, &header, &origin)) {
        case CRYPTO_FLOOD_FRESH: break;
        case CRYPTO_FLOOD_FULL: self->counters [CRYPTO_CNT_FLOOD_DROPPED]++; return;
        default: self->counters [CRYPTO_CNT_FLOOD_DUPLICATES]++; return;
    }
    const uint8_t *packet = plain + WIRE_FLOOD_HEADER;
    size_t packet_len = len - WIRE_FLOOD_HEADER;
    uint32_t tag = origin < self->peer_count && !self->peer [origin].removed ? origin : (uint32_t) i;
    if (!crypto_node_peer_allows (self->node, (int) tag, packet, packet_len)) {
        self->counters [CRYPTO_CNT_FLOOD_DROPPED]++;
        return;
    }
    uint8_t *dst = crypto_send_reserve (self, self->to_dev, self->out_dev, tag, packet_len);
    if (dst)
        memcpy (dst, packet, packet_len);
    self->counters [CRYPTO_CNT_FLOOD_RX]++;
    uint32_t children [CRYPTO_FLOOD_CHILDREN];
    size_t count = crypto_flood_forward (self->flood, &header, (uint32_t) i, now, children, CRYPTO_FLOOD_CHILDREN);
    for (size_t k = 0; k < count; k++)
        if (s_flood_send (self, children [k], &header, packet, packet_len, now))
            self->counters [CRYPTO_CNT_FLOOD_FORWARDED]++;
}

//  dev-crypto: plaintext from device, tag = destination peer or every peer
static int
s_on_device (bus_pipe_t *pipe, void *arg)
{
    crypto_service_t *self = (crypto_service_t *) arg;
    bus_batch_iter_t iter;
    int rc;
    //  A bounded number of batches per wakeup, so the other pipe gets its turn
    for (int n = 0; n < 16 && (rc = bus_pipe_recv (self->from_dev, &iter, 0)) != 0; n++) {
        if (rc < 0) {
            self->counters [CRYPTO_CNT_BAD_BATCH]++;
            bus_warn ("%s: batch rejected: %s", PIPE_DEV_CRYPTO, bus_pipe_error (self->from_dev));
            continue;
        }
        uint64_t now = bus_clock_ns ();
        bus_packet_t pkt;
        while (bus_batch_iter_next (&iter, &pkt)) {
            if (pkt.tag == PIPE_TAG_FLOOD) {
                s_flood_out (self, pkt.data, pkt.len, now);
                continue;
            }
            if (pkt.tag >= self->peer_count || self->peer [pkt.tag].removed) {
                self->counters [CRYPTO_CNT_BAD_PEER]++;
                continue;
            }
            int i = (int) pkt.tag;
            if (crypto_node_can_send (self->node, i, now))
                s_encrypt_out (self, i, pkt.data, pkt.len, now);
            else {
                //  Hold it while the handshake runs: the first ping is not lost
                s_queue_push (self, i, pkt.data, pkt.len);
                crypto_node_want_handshake (self->node, i, now);
                if (crypto_node_handshake_due (self->node, i, now))
                    s_initiate (self, i, now);
            }
        }
        crypto_send_out (self);
    }
    return 0;
}

//  A route announcement a neighbour's session carried: to the router as route.heard
static void
s_heard (crypto_service_t *self, int i, const uint8_t *data, size_t len)
{
    route_heard_t *heard = (route_heard_t *) calloc (1, sizeof (route_heard_t));
    assert (heard);
    heard->index = (uint32_t) i;
    heard->announcement_size = (uint32_t) (len < sizeof heard->announcement ? len : sizeof heard->announcement);
    memcpy (heard->announcement, data, heard->announcement_size);
    bus_service_publish (self->svc, &route_heard_schema, heard);
    free (heard);
    self->counters [CRYPTO_CNT_ANNOUNCES_RX]++;
}

//  One datagram from nat, already grown to its wire length. routed: it came
//  through other peers, as peer pkt->tag's (PIPE_FLAG_ROUTED): dropped unless
//  it authenticates as that peer's, and no endpoint is learnt from it (the
//  tag is a peer index, not a handle of nat's)
static void
s_from_wire (crypto_service_t *self, bus_packet_t *pkt, uint64_t now, bool routed)
{
    uint8_t reply [WIRE_RESPONSE_SIZE];
    crypto_rx_t rx;
    int rc = routed ? crypto_node_receive_routed (self->node, pkt->tag < self->peer_count ? (int) pkt->tag : -1,
                                                  pkt->data, pkt->len, now, reply, &rx)
                    : crypto_node_receive (self->node, pkt->data, pkt->len, now, reply, &rx);
    if (rc == CRYPTO_NODE_DROP) {
        if (rx.drop >= CRYPTO_DROP_HS_UNKNOWN_KEY && rx.drop <= CRYPTO_DROP_HS_UNEXPECTED)
            bus_debug ("handshake refused: %s", crypto_node_last_error (self->node));
        return;
    }
    int i = rx.peer;
    assert (i >= 0 && (size_t) i < self->peer_count);
    crypto_peer_state_t *peer = &self->peer [i];
    if (peer->removed) {
        crypto_node_expire (self->node, i, UINT64_MAX);     //  it left: no session with it
        return;
    }
    peer->last_rx = now;
    switch (rc) {
        case CRYPTO_NODE_REPLY: {
            //  The response goes back where the initiation came from
            if (!routed)
                s_endpoint (self, i, pkt->tag, true, now);
            peer->handshake_at = now;
            uint8_t *dst = crypto_send_reserve (self, self->to_nat, self->out_nat, (uint32_t) i, rx.reply_len);
            if (dst)
                memcpy (dst, reply, rx.reply_len);
            break;
        }
        case CRYPTO_NODE_ESTABLISHED:
            if (!routed)
                s_endpoint (self, i, pkt->tag, true, now);
            peer->handshake_at = now;
            s_queue_flush (self, i, now);
            //  Nothing queued went out: a keepalive confirms the keys to the responder
            if (crypto_node_keepalive_due (self->node, i))
                s_encrypt_out (self, i, NULL, 0, now);
            break;
        case CRYPTO_NODE_DATA: {
            if (!routed)
                s_endpoint (self, i, pkt->tag, false, now);
            bus_packet_shrink (pkt);
            assert (pkt->len == rx.plain_len);
            uint8_t *dst = crypto_send_reserve (self, self->to_dev, self->out_dev, (uint32_t) i, pkt->len);
            if (dst)
                memcpy (dst, pkt->data, pkt->len);
            peer->rx_packets++;
            peer->rx_bytes += pkt->len;
            break;
        }
        case CRYPTO_NODE_ANNOUNCE:
            if (!routed)
                s_endpoint (self, i, pkt->tag, false, now);
            s_heard (self, i, pkt->data + WIRE_DATA_HEADER, rx.plain_len);
            break;
        case CRYPTO_NODE_FLOOD:
            if (!routed)
                s_endpoint (self, i, pkt->tag, false, now);
            s_flood_in (self, i, pkt->data + WIRE_DATA_HEADER, rx.plain_len, now);
            break;
        case CRYPTO_NODE_KEEPALIVE:
            if (!routed)
                s_endpoint (self, i, pkt->tag, false, now);
            //  Answered, so the peer's nat learns its direct path still carries
            //  (nat.probe). Not when we sent lately: then the peer heard us, and
            //  a keepalive answering a keepalive never loops
            if (now - peer->last_tx >= KEEPALIVE_ANSWER_GAP && crypto_node_can_send (self->node, i, now))
                s_encrypt_out (self, i, NULL, 0, now);
            break;
        default:
            break;
    }
    //  A responder may send once the initiator used the new keys
    if (peer->q_count)
        s_queue_flush (self, i, now);
    s_check_state (self, i, now);
}

//  nat-crypto: wire datagrams, tag = nat's handle of the source address
static int
s_on_nat (bus_pipe_t *pipe, void *arg)
{
    crypto_service_t *self = (crypto_service_t *) arg;
    bus_batch_iter_t iter;
    for (int n = 0; n < 16; n++) {
        int rc = bus_pipe_recv (self->from_nat, &iter, 0);
        crypto_send_wire_check (self);            //  nat's socket may have come or gone
        if (rc == 0)
            break;
        if (rc < 0) {
            self->counters [CRYPTO_CNT_BAD_BATCH]++;
            bus_warn ("%s: batch rejected: %s", PIPE_NAT_CRYPTO, bus_pipe_error (self->from_nat));
            continue;
        }
        uint64_t now = bus_clock_ns ();
        bus_packet_t pkt;
        while (bus_batch_iter_next (&iter, &pkt)) {
            if (pkt.flags & PIPE_FLAG_ROUTE) {
                crypto_send_route (self, &pkt);
                continue;
            }
            //  nat writes the datagram over the record's room: grow to see all of it
            if (!(pkt.flags & BUS_BATCH_GROWN))
                bus_packet_grow (&pkt);
            bool routed = pkt.flags & PIPE_FLAG_ROUTED;
            if (routed)
                self->counters [CRYPTO_CNT_ROUTED_RX]++;
            s_from_wire (self, &pkt, now, routed);
        }
        crypto_send_batch (self, self->to_dev, self->out_dev);
        crypto_send_out (self);
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Timer: handshake retries, keepalives, rekey (through handshake_due), expiry

static int
s_on_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    crypto_service_t *self = (crypto_service_t *) arg;
    uint64_t now = bus_clock_ns ();
    for (size_t n = 0; n < self->peer_count; n++) {
        int i = (int) n;
        crypto_peer_state_t *peer = &self->peer [i];
        if (peer->removed)
            continue;
        if (crypto_node_expire (self->node, i, now))
            bus_debug ("peer %s: expired keys wiped", peer->conf->name);
        if (crypto_node_handshake_due (self->node, i, now))
            s_initiate (self, i, now);
        if (crypto_node_can_send (self->node, i, now)) {
            if (now - peer->last_tx >= peer->keepalive_ns || crypto_node_keepalive_due (self->node, i))
                s_encrypt_out (self, i, NULL, 0, now);
        }
        else
        if (peer->q_count && !crypto_node_handshake_wanted (self->node, i))
            s_queue_drop (self, i);     //  the handshake gave up
        s_check_state (self, i, now);
    }
    crypto_send_wire_flush (self);
    crypto_send_wire_report (self);
    crypto_send_out (self);
    return 0;
}

//  --------------------------------------------------------------------------
//  Bus handlers

static int
s_peer_by_name (crypto_service_t *self, const char *name)
{
    for (size_t i = 0; i < self->peer_count; i++)
        if (!self->peer [i].removed && streq (self->peer [i].conf->name, name))
            return (int) i;
    return -1;
}

static void
s_on_key (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    crypto_service_t *self = (crypto_service_t *) arg;
    crypto_key_t req;
    char err [200];
    if (bus_envelope_get_msg (env, &crypto_key_schema, &req, err, sizeof err)) {
        bus_service_reply_error (svc, env, 400, "%s", err);
        return;
    }
    crypto_key_reply_t reply;
    memset (&reply, 0, sizeof reply);
    if (req.peer [0]) {
        int i = s_peer_by_name (self, req.peer);
        if (i < 0) {
            bus_service_reply_error (svc, env, 404, "no peer named '%s'", req.peer);
            return;
        }
        snprintf (reply.name, sizeof reply.name, "%s", req.peer);
        snprintf (reply.public_key, sizeof reply.public_key, "%s", self->peer [i].public_key);
    }
    else
        snprintf (reply.public_key, sizeof reply.public_key, "%s", self->public_key);
    bus_service_reply (svc, env, &crypto_key_reply_schema, &reply);
}

static void
s_counter (crypto_status_reply_t *reply, const char *name, uint64_t value)
{
    if (reply->counters_count < sizeof reply->counters / sizeof reply->counters [0]) {
        crypto_counter_t *c = &reply->counters [reply->counters_count++];
        snprintf (c->name, sizeof c->name, "%s", name);
        c->value = value;
    }
}

static void
s_on_status (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    crypto_service_t *self = (crypto_service_t *) arg;
    crypto_status_t req;
    char err [200];
    if (bus_envelope_get_msg (env, &crypto_status_schema, &req, err, sizeof err)) {
        bus_service_reply_error (svc, env, 400, "%s", err);
        return;
    }
    if (req.peer [0] && s_peer_by_name (self, req.peer) < 0) {
        bus_service_reply_error (svc, env, 404, "no peer named '%s'", req.peer);
        return;
    }
    //  Big (250 peers): on the heap, once per request
    crypto_status_reply_t *reply = calloc (1, sizeof *reply);
    assert (reply);
    uint64_t now = bus_clock_ns ();
    snprintf (reply->public_key, sizeof reply->public_key, "%s", self->public_key);
    crypto_node_stats_t stats;
    crypto_node_stats (self->node, &stats);
    s_counter (reply, "rx_packets", stats.rx_packets);
    s_counter (reply, "rx_bytes", stats.rx_bytes);
    s_counter (reply, "tx_packets", stats.tx_packets - self->counters [CRYPTO_CNT_KEEPALIVES_TX]);
    s_counter (reply, "tx_bytes", stats.tx_bytes);
    s_counter (reply, "keepalives_rx", stats.keepalives_rx);
    s_counter (reply, "handshakes_initiated", stats.handshakes_initiated);
    s_counter (reply, "handshakes_responded", stats.handshakes_responded);
    s_counter (reply, "handshakes_completed", stats.handshakes_completed);
    s_counter (reply, "handshakes_crossed", stats.handshakes_crossed);
    for (int d = 0; d < CRYPTO_DROP_COUNT; d++)
        s_counter (reply, crypto_drop_name ((crypto_drop_t) d), stats.drops [d]);
    self->counters [CRYPTO_CNT_FLOOD_OVER_BUDGET] = crypto_flood_over_budget (self->flood);
    for (int c = 0; c < CRYPTO_CNT_COUNTERS; c++)
        s_counter (reply, s_counter_names [c], self->counters [c]);
    for (size_t i = 0; i < self->peer_count; i++) {
        crypto_peer_state_t *peer = &self->peer [i];
        if (peer->removed || (req.peer [0] && !streq (req.peer, peer->conf->name)))
            continue;
        crypto_status_peer_t *p = &reply->peers [reply->peers_count++];
        p->index = (uint32_t) i;
        snprintf (p->name, sizeof p->name, "%s", peer->conf->name);
        snprintf (p->public_key, sizeof p->public_key, "%s", peer->public_key);
        p->session = crypto_node_can_send (self->node, (int) i, now);
        p->handshake_age_ms = s_age_ms (peer->handshake_at, now);
        p->last_rx_ms_ago = s_age_ms (peer->last_rx, now);
        p->rx_packets = peer->rx_packets;
        p->tx_packets = peer->tx_packets;
        p->rx_bytes = peer->rx_bytes;
        p->tx_bytes = peer->tx_bytes;
        p->queued = (uint32_t) peer->q_count;
        p->sends_direct = self->wire && peer->route_len;
    }
    bus_service_reply (svc, env, &crypto_status_reply_schema, reply);
    free (reply);
}

//  nat asks for a handshake with a direct peer now
//  route.next (the router): a destination's equal-cost next hops through other
//  peers, for the flow pick above (nat keeps the table and writes the header)
static void
s_on_route_next (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    crypto_service_t *self = (crypto_service_t *) arg;
    char err [200];
    route_next_t *next = (route_next_t *) calloc (1, sizeof (route_next_t));
    assert (next);
    if (bus_envelope_get_msg (env, &route_next_schema, next, err, sizeof err) == 0 && next->index < self->peer_count) {
        crypto_peer_state_t *peer = &self->peer [next->index];
        bool routed = next->next_hops_count > 1 && next->next_hops [0].index != next->index;
        //  Reached through other peers: a broadcast gets there along a tree
        peer->routed = next->next_hops_count >= 1 && next->next_hops [0].index != next->index;
        peer->ecmp_count = 0;
        for (uint32_t k = 0; routed && k < next->next_hops_count && k < 4; k++)
            peer->ecmp_ids [peer->ecmp_count++] = next->next_hops [k].id;
    }
    free (next);
}

//  group.members (the router): an anycast address's members may answer from it
//  (crypto_anycast); a multicast group changes nothing here
static void
s_on_group_members (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    (void) svc;
    crypto_service_t *self = (crypto_service_t *) arg;
    char err [200];
    group_members_t *msg = (group_members_t *) calloc (1, sizeof (group_members_t));
    assert (msg);
    if (bus_envelope_get_msg (env, &group_members_schema, msg, err, sizeof err) == 0) {
        uint32_t members [CRYPTO_ANYCAST_MEMBERS];
        size_t count = 0;
        for (uint32_t m = 0; m < msg->members_count && count < CRYPTO_ANYCAST_MEMBERS; m++)
            members [count++] = msg->members [m].index;
        if (crypto_anycast_update (self->anycast, msg->group, msg->anycast, members, count))
            crypto_anycast_apply (self->anycast, self->node, self->peer_count);
    }
    else
        bus_warn ("group.members refused: %s", err);
    free (msg);
}

//  route.tree (the router): which neighbours an origin's flood frames go to
static void
s_on_route_tree (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    crypto_service_t *self = (crypto_service_t *) arg;
    char err [200];
    route_tree_t *tree = (route_tree_t *) calloc (1, sizeof (route_tree_t));
    assert (tree);
    if (bus_envelope_get_msg (env, &route_tree_schema, tree, err, sizeof err) == 0) {
        uint32_t children [CRYPTO_FLOOD_CHILDREN];
        size_t count = 0;
        for (uint32_t k = 0; k < tree->children_count && count < CRYPTO_FLOOD_CHILDREN; k++)
            if (tree->children [k].index < NODE_PEERS_MAX)
                children [count++] = tree->children [k].index;
        crypto_flood_set_tree (self->flood, tree->self_id, tree->origin_id, tree->origin, tree->ttl,
                               children, count);
    }
    else
        bus_warn ("route.tree: %s", err);
    free (tree);
}

//  route.announce (the router): an announcement for one neighbour, sent in its
//  session as a message of its own type; none without a session (counted: the
//  router repeats its announcements, so a lost one is repaired by the next)
static void
s_on_announce (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    crypto_service_t *self = (crypto_service_t *) arg;
    char err [200];
    route_announce_t *msg = (route_announce_t *) calloc (1, sizeof (route_announce_t));
    assert (msg);
    uint64_t now = bus_clock_ns ();
    if (bus_envelope_get_msg (env, &route_announce_schema, msg, err, sizeof err)
    ||  msg->index >= self->peer_count || self->peer [msg->index].removed
    ||  msg->announcement_size == 0 || msg->announcement_size > WIRE_ANNOUNCE_MAX
    ||  !crypto_node_can_send (self->node, (int) msg->index, now)
    ||  !s_encrypt_out_type (self, (int) msg->index, WIRE_ANNOUNCE, NULL, 0, msg->announcement,
                             msg->announcement_size, now))
        self->counters [CRYPTO_CNT_ANNOUNCES_DROPPED]++;
    else
        crypto_send_out (self);
    free (msg);
}

static void
s_on_dial (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    crypto_service_t *self = (crypto_service_t *) arg;
    nat_dial_t dial;
    char err [200];
    if (bus_envelope_get_msg (env, &nat_dial_schema, &dial, err, sizeof err)) {
        bus_warn ("nat.dial: %s", err);
        return;
    }
    if (dial.index >= self->peer_count) {
        bus_warn ("nat.dial: no peer %u (%zu configured)", dial.index, self->peer_count);
        return;
    }
    uint64_t now = bus_clock_ns ();
    crypto_peer_state_t *peer = &self->peer [dial.index];
    if (peer->initiated_at && now - peer->initiated_at < DIAL_MIN_GAP)
        return;                         //  one is on its way
    s_initiate (self, (int) dial.index, now);
    crypto_send_out (self);
}

//  nat.probe: a keepalive now, on a direct path nat found quiet
static void
s_on_probe (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    crypto_service_t *self = (crypto_service_t *) arg;
    nat_probe_t probe;
    char err [200];
    if (bus_envelope_get_msg (env, &nat_probe_schema, &probe, err, sizeof err)) {
        bus_warn ("nat.probe: %s", err);
        return;
    }
    uint64_t now = bus_clock_ns ();
    if (probe.index >= self->peer_count || self->peer [probe.index].removed
    ||  !crypto_node_can_send (self->node, (int) probe.index, now))
        return;                         //  no session: nat's dials take over
    s_encrypt_out (self, (int) probe.index, NULL, 0, now);
    crypto_send_wire_flush (self);
    crypto_send_wire_report (self);
    crypto_send_out (self);
}

//  --------------------------------------------------------------------------
//  Peers from the registry (discovery): peer.up adds or updates the peer at its
//  index, peer.down wipes its sessions and refuses it until it comes back. The
//  index is crypto_node's peer id, and crypto_node ids only grow: an index beyond
//  the end first reserves the indices in between (random keys nobody holds, or
//  the real key of a peer.down, so a returning key finds its own index).

//  Makes sure peer index exists with key; returns false (logged) when it cannot
static bool
s_dyn_place (crypto_service_t *self, uint32_t index, const uint8_t key [32], const char *name)
{
    char cause [160];
    if (index >= NODE_PEERS_MAX) {
        bus_warn ("peer %s: index %u out of range", name, index);
        return false;
    }
    if (index < self->peer_count) {
        if (crypto_node_peer_find (self->node, key) == (int) index)
            return true;
        bus_warn ("peer %s: index %u holds another key (restart crypto to reassign)", name, index);
        return false;
    }
    int existing = crypto_node_peer_find (self->node, key);
    if (existing >= 0) {
        bus_warn ("peer %s: its key is already peer %d", name, existing);
        return false;
    }
    size_t count = index + 1;
    crypto_peer_state_t *grown = realloc (self->peer, count * sizeof (crypto_peer_state_t));
    node_peer_t **dyn = realloc (self->dyn, count * sizeof (node_peer_t *));
    assert (grown && dyn);
    if (!self->dyn)
        memset (dyn, 0, self->peer_count * sizeof (node_peer_t *));
    self->peer = grown;
    self->dyn = dyn;
    for (size_t i = self->peer_count; i < count; i++) {
        uint8_t reserved [32];
        const uint8_t *k = key;
        if (i < index) {
            randombytes_buf (reserved, sizeof reserved);
            k = reserved;
        }
        int id = crypto_node_peer_add (self->node, k, cause, sizeof cause);
        assert (id == (int) i);         //  fresh random keys and a key not yet known
        memset (&self->peer [i], 0, sizeof (crypto_peer_state_t));
        self->dyn [i] = calloc (1, sizeof (node_peer_t));
        assert (self->dyn [i]);
        self->dyn [i]->index = (uint32_t) i;
        memcpy (self->dyn [i]->key, k, 32);
        crypto_key_to_base64 (k, self->peer [i].public_key);
        snprintf (self->dyn [i]->public_key, sizeof self->dyn [i]->public_key, "%s", self->peer [i].public_key);
        self->peer [i].conf = self->dyn [i];
        self->peer [i].keepalive_ns = (uint64_t) self->config.connection.keepalive_interval_ms * MS;
        self->peer [i].removed = true;
    }
    self->peer_count = count;
    return true;
}

static void
s_on_peer_event (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    crypto_service_t *self = (crypto_service_t *) arg;
    char err [200];
    uint8_t key [32];
    if (streq (bus_envelope_type (env), "peer.up")) {
        peer_up_t up;
        if (bus_envelope_get_msg (env, &peer_up_schema, &up, err, sizeof err)
        ||  crypto_key_from_base64 (up.public_key, key, err, sizeof err)) {
            bus_warn ("peer.up: %s", err);
            return;
        }
        if (up.index < self->peer_count && (!self->dyn || !self->dyn [up.index]))
            return;                     //  a static peer: the config's
        if (!s_dyn_place (self, up.index, key, up.name))
            return;
        crypto_peer_state_t *peer = &self->peer [up.index];
        node_peer_t *conf = self->dyn [up.index];
        snprintf (conf->name, sizeof conf->name, "%s", up.name);
        //  The registry's set replaces the last one: a key that came back with
        //  another virtual IP must not keep the old one (device does the same)
        crypto_node_peer_allow_clear (self->node, (int) up.index);
        for (uint32_t a = 0; a < up.allowed_ips_count; a++) {
            char cause [160];
            if (crypto_node_peer_allow (self->node, (int) up.index, up.allowed_ips [a], cause, sizeof cause))
                bus_warn ("peer %s: allowed_ips %s: %s", up.name, up.allowed_ips [a], cause);
        }
        if (peer->removed)
            bus_info ("peer %s (%s): added as index %u", up.name, peer->public_key, up.index);
        peer->removed = false;
        //  Its registry id: its flood frames are delivered as its own
        char *end = NULL;
        uint64_t id = strlen (up.peer_id) == 16 ? strtoull (up.peer_id, &end, 16) : 0;
        if (id && end && !*end)
            crypto_flood_set_id (self->flood, up.index, id);
    }
    else
    if (streq (bus_envelope_type (env), "peer.down")) {
        peer_down_t down;
        if (bus_envelope_get_msg (env, &peer_down_schema, &down, err, sizeof err)
        ||  crypto_key_from_base64 (down.public_key, key, err, sizeof err)) {
            bus_warn ("peer.down: %s", err);
            return;
        }
        if (down.index >= self->peer_count) {
            s_dyn_place (self, down.index, key, down.name);     //  reserved for its key
            return;
        }
        if (!self->dyn || !self->dyn [down.index] || self->peer [down.index].removed)
            return;
        crypto_peer_state_t *peer = &self->peer [down.index];
        bus_info ("peer %s: removed (%s), sessions wiped", down.name, down.reason);
        peer->removed = true;
        peer->route_len = 0;
        crypto_node_expire (self->node, (int) down.index, UINT64_MAX);
        s_queue_drop (self, (int) down.index);
        peer->has_handle = false;
        if (peer->up) {
            peer->up = false;
            s_publish (self, (int) down.index, bus_clock_ns ());
        }
    }
}

//  discovery asks for the registry's key proof (bifrost-keyproof-v1,
//  docs/registry-api.md). The private key never leaves crypto_identity, so the
//  shared secret comes from crypto_identity_dh and libbus/node_keyproof does the rest,
//  the same code the registry verifies with (tests/integration/discovery_e2e.sh)
static void
s_on_keyproof (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    crypto_service_t *self = (crypto_service_t *) arg;
    crypto_keyproof_t req;
    char err [200];
    uint8_t registry_key [32], nonce [64], shared [32], proof [32];
    size_t nonce_len = 0;
    const char *end = NULL;
    if (bus_envelope_get_msg (env, &crypto_keyproof_schema, &req, err, sizeof err)
    ||  crypto_key_from_base64 (req.registry_key, registry_key, err, sizeof err)) {
        bus_service_reply_error (svc, env, 400, "%s", err);
        return;
    }
    if (sodium_base642bin (nonce, sizeof nonce, req.nonce, strlen (req.nonce), NULL, &nonce_len, &end,
                           sodium_base64_VARIANT_ORIGINAL) != 0 || nonce_len == 0 || *end) {
        bus_service_reply_error (svc, env, 400, "nonce is not base64");
        return;
    }
    if (crypto_identity_dh (self->identity, registry_key, shared)) {
        bus_service_reply_error (svc, env, 400, "the registry key is a low-order point");
        return;
    }
    node_keyproof_from_shared (shared, crypto_identity_public (self->identity), registry_key,
                              req.network_id, nonce, nonce_len, proof);
    sodium_memzero (shared, sizeof shared);
    crypto_keyproof_reply_t reply;
    memset (&reply, 0, sizeof reply);
    snprintf (reply.public_key, sizeof reply.public_key, "%s", self->public_key);
    sodium_bin2base64 (reply.proof, sizeof reply.proof, proof, sizeof proof, sodium_base64_VARIANT_ORIGINAL);
    bus_service_reply (svc, env, &crypto_keyproof_reply_schema, &reply);
}

//  --------------------------------------------------------------------------

//  mkdir -p of the key file's directory, 0700 for what we create
static int
s_make_parent (const char *path, char *err, size_t errsize)
{
    char dir [256];
    snprintf (dir, sizeof dir, "%s", path);
    char *slash = strrchr (dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = 0;
    for (char *p = dir + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char saved = *p;
            *p = 0;
            if (mkdir (dir, 0700) != 0 && errno != EEXIST) {
                snprintf (err, errsize, "cannot create directory %s: %s", dir, strerror (errno));
                return -1;
            }
            *p = saved;
            if (!saved)
                break;
        }
    }
    return 0;
}

crypto_service_t *
crypto_service_new (bus_service_t *svc, crypto_service_config_t *config, char *err, size_t errsize)
{
    assert (svc && config);
    crypto_service_t *self = calloc (1, sizeof *self);
    assert (self);
    self->svc = svc;
    self->timer_id = -1;
    self->config = *config;
    config->peers = NULL;
    sodium_memzero (config->psk, sizeof config->psk);
    self->peers = self->config.peers;
    self->config.peers = NULL;
    if (s_make_parent (self->config.key_file, err, errsize))
        goto fail;
    struct stat st;
    bool created = stat (self->config.key_file, &st) != 0;
    self->identity = crypto_identity_load (self->config.key_file, true, err, errsize);
    if (!self->identity)
        goto fail;
    crypto_identity_public_base64 (self->identity, self->public_key);
    if (created)
        bus_info ("created key file %s", self->config.key_file);
    bus_info ("public key %s", self->public_key);

    self->node = crypto_node_new (self->identity, self->config.has_psk ? self->config.psk : NULL,
                                  &self->config.session);
    self->anycast = crypto_anycast_new ();
    sodium_memzero (self->config.psk, sizeof self->config.psk);
    if (!self->node) {
        snprintf (err, errsize, "libsodium failed to initialise");
        goto fail;
    }
    crypto_node_set_layer2 (self->node, self->config.layer2);
    randombytes_buf (self->flow_key, sizeof self->flow_key);
    //  Our flood frames count on from the clock in microseconds: a restarted
    //  node's are newer than the ones it sent before
    self->flood = crypto_flood_new (s_wall () / 1000, self->config.flood_rate);
    //  Peers: crypto_node ids are the config indices
    self->peer_count = node_peers_count (self->peers);
    self->peer = calloc (self->peer_count ? self->peer_count : 1, sizeof (crypto_peer_state_t));
    assert (self->peer);
    for (uint32_t i = 0; i < self->peer_count; i++) {
        const node_peer_t *conf = node_peers_get (self->peers, i);
        crypto_peer_state_t *peer = &self->peer [i];
        peer->conf = conf;
        crypto_key_to_base64 (conf->key, peer->public_key);
        peer->keepalive_ns = (uint64_t) conf->keepalive_ms * MS;     //  resolved by node_peers
        char cause [160];
        if (crypto_node_peer_add (self->node, conf->key, cause, sizeof cause) != (int) i) {
            snprintf (err, errsize, "peer '%s': %s", conf->name, cause);
            goto fail;
        }
        for (uint32_t a = 0; a < conf->allowed_count; a++) {
            char cidr [64];
            node_prefix_format (&conf->allowed [a], cidr, sizeof cidr);
            if (crypto_node_peer_allow (self->node, (int) i, cidr, cause, sizeof cause)) {
                snprintf (err, errsize, "peer '%s': allowed_ips %s: %s", conf->name, cidr, cause);
                goto fail;
            }
        }
    }

    const char *run_dir = bus_service_run_dir (svc);
    self->from_dev = bus_pipe_new (run_dir, PIPE_DEV_CRYPTO, BUS_PIPE_RECEIVER, 0);
    self->from_nat = bus_pipe_new (run_dir, PIPE_NAT_CRYPTO, BUS_PIPE_RECEIVER, 0);
    self->to_nat = bus_pipe_new (run_dir, PIPE_CRYPTO_NAT, BUS_PIPE_SENDER, 0);
    self->to_dev = bus_pipe_new (run_dir, PIPE_CRYPTO_DEV, BUS_PIPE_SENDER, 0);
    if (!self->from_dev || !self->from_nat || !self->to_nat || !self->to_dev) {
        snprintf (err, errsize, "cannot open the data pipes in %s", run_dir);
        goto fail;
    }
    self->out_nat = bus_batch_new (0);
    self->out_dev = bus_batch_new (0);
    self->out_wire = bus_batch_new (0);
    //  `bifrostctl tap --pipes` can mirror their headers (bus.pipe.mirror)
    bus_service_add_pipe (svc, self->from_dev);
    bus_service_add_pipe (svc, self->from_nat);
    bus_service_add_pipe (svc, self->to_nat);
    bus_service_add_pipe (svc, self->to_dev);

    bus_loop_t *loop = bus_service_loop (svc);
    if (bus_pipe_attach (self->from_dev, loop, s_on_device, self)
    ||  bus_pipe_attach (self->from_nat, loop, s_on_nat, self)) {
        snprintf (err, errsize, "cannot poll the data pipes");
        goto fail;
    }
    self->timer_id = bus_loop_timer (loop, CRYPTO_TICK_MS, 0, s_on_tick, self);
    bus_service_handle (svc, "crypto.key", s_on_key, self);
    bus_service_handle (svc, "crypto.status", s_on_status, self);
    bus_service_handle (svc, "nat.dial", s_on_dial, self);
    bus_service_handle (svc, "nat.probe", s_on_probe, self);
    bus_service_on_connect (svc, s_on_connect, self);
    bus_service_handle (svc, "crypto.keyproof", s_on_keyproof, self);
    bus_service_subscribe (svc, "peer.", s_on_peer_event, self);
    bus_service_subscribe (svc, "route.announce", s_on_announce, self);
    bus_service_subscribe (svc, "route.next", s_on_route_next, self);
    bus_service_subscribe (svc, "group.members", s_on_group_members, self);
    bus_service_subscribe (svc, "route.tree", s_on_route_tree, self);
    bus_info ("%zu peer(s), keepalive %lld ms, psk %s%s", self->peer_count,
              (long long) self->config.connection.keepalive_interval_ms, self->config.has_psk ? "set" : "none",
              self->config.layer2 ? ", ethernet frames (tap)" : "");
    return self;
fail:
    crypto_service_destroy (&self);
    return NULL;
}

void
crypto_service_destroy (crypto_service_t **self_p)
{
    assert (self_p);
    crypto_service_t *self = *self_p;
    if (!self)
        return;
    bus_loop_t *loop = bus_service_loop (self->svc);
    if (self->timer_id >= 0)
        bus_loop_timer_end (loop, self->timer_id);
    crypto_anycast_destroy (&self->anycast);
    bus_pipe_destroy (&self->from_dev);
    bus_pipe_destroy (&self->from_nat);
    bus_pipe_destroy (&self->to_nat);
    bus_pipe_destroy (&self->to_dev);
    bus_batch_destroy (&self->out_nat);
    bus_batch_destroy (&self->out_dev);
    bus_batch_destroy (&self->out_wire);
    node_udp_tx_destroy (&self->wire);
    for (size_t i = 0; i < self->peer_count; i++)
        for (int q = 0; q < CRYPTO_QUEUE_MAX; q++)
            bus_buffer_free (&self->peer [i].queue [q], true);   //  queued plaintext: wiped
    free (self->peer);
    for (size_t i = 0; self->dyn && i < self->peer_count; i++)
        free (self->dyn [i]);
    free (self->dyn);
    node_peers_destroy (&self->peers);
    crypto_node_destroy (&self->node);
    crypto_flood_destroy (&self->flood);
    crypto_identity_destroy (&self->identity);
    sodium_memzero (&self->config, sizeof self->config);
    free (self);
    *self_p = NULL;
}

const char *
crypto_service_public_key (crypto_service_t *self)
{
    return self->public_key;
}

//  ---------------------------------------------------------------------------
//  The service as a program part (one per process)

BUS_SERVICE_PART (crypto_service_t, crypto_service_config_t, crypto_service_check_config,
                  crypto_service_new, crypto_service_destroy, crypto_service_config_clear)

//  It parses what nat hands it: sandboxed to reading its key file, or, when
//  there is none yet, to writing the file's directory, where setup creates it
static void
s_def_sandbox (bus_config_t *config, void *arg, const char *run_dir, bus_sandbox_t *paths)
{
    const char *key_file = s_part_checked.key_file;
    struct stat st;
    if (stat (key_file, &st) == 0)
        bus_sandbox_read (paths, "%s", key_file);
    else {
        const char *slash = strrchr (key_file, '/');
        if (!slash)
            bus_sandbox_write (paths, ".");
        else
            bus_sandbox_write (paths, "%.*s", slash == key_file ? 1 : (int) (slash - key_file), key_file);
    }
}

const bus_service_def_t crypto_service_def = {
    .name = "crypto",
    .summary = "holds the node key: handshakes, encrypts and decrypts the data pipes, no network",
    BUS_SERVICE_PART_HOOKS,
    .seccomp = BUS_SECCOMP_KEYS,              //  session keys in locked memory
    .holds_key = true,
    .sandbox = s_def_sandbox,
};

//  --------------------------------------------------------------------------
//  Self test: configuration checks and the key file. The data path with real
//  processes is tests/integration/crypto_service.sh.

static size_t
s_check (const char *text, bool verbose, const char *expect)
{
    char err [300];
    bus_config_t *config = bus_config_load_string (text, "node.cfg", err, sizeof err);
    assert (config);
    crypto_service_check_config (config, NULL);
    size_t errors = bus_config_error_count (config);
    if (verbose)
        for (size_t e = 0; e < errors; e++)
            printf ("  %s\n", bus_config_error_text (config, e));
    if (expect) {
        bool found = false;
        for (size_t e = 0; e < errors; e++)
            found |= strstr (bus_config_error_text (config, e), expect) != NULL;
        assert (found);
    }
    bus_config_destroy (&config);
    return errors;
}

void
crypto_service_test (bool verbose)
{
    char dir [] = "/tmp/crypto-service-test-XXXXXX";
    assert (mkdtemp (dir));
    char key_file [200], text [2000];
    snprintf (key_file, sizeof key_file, "%s/state/sub/node.key", dir);

    //  Defaults; a full good config
    crypto_service_config_t cfg;
    crypto_service_check_config (NULL, &cfg);
    assert (streq (cfg.key_file, bus_cfg_node_defaults.key_file) && cfg.connection.keepalive_interval_ms == 25000 && !cfg.has_psk);
    crypto_service_config_clear (&cfg);
    crypto_identity_t *other = crypto_identity_new ();
    char other_key [CRYPTO_KEY_BASE64_SIZE];
    crypto_identity_public_base64 (other, other_key);
    setenv ("CRYPTO_TEST_PSK", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", 1);
    snprintf (text, sizeof text,
        "key_file = \"%s\";\npsk = \"${CRYPTO_TEST_PSK}\";\n"
        "crypto = { rekey_after_time = \"60s\"; reject_after_time = \"90s\"; rekey_after_packets = 1000; };\n"
        "connection = { keepalive_interval = \"10s\"; direct_connect = true; anything = 1; };\n"
        "device = { whatever = 1; };\n"
        "peers = ( { name = \"b\"; public_key = \"%s\"; allowed_ips = [\"10.100.0.2/32\"]; } );\n",
        key_file, other_key);
    bus_config_t *config = bus_config_load_string (text, "node.cfg", text + 1500, 500);
    assert (config);
    crypto_service_check_config (config, &cfg);
    assert (bus_config_error_count (config) == 0);
    assert (streq (cfg.key_file, key_file) && cfg.has_psk && cfg.psk [31] == 31);
    assert (cfg.connection.keepalive_interval_ms == 10000);
    assert (cfg.session.rekey_after_time == 60 * CRYPTO_SEC && cfg.session.reject_after_time == 90 * CRYPTO_SEC);
    assert (cfg.session.rekey_after_messages == 1000);
    assert (!cfg.layer2);
    crypto_service_config_clear (&cfg);
    bus_config_destroy (&config);
    //  TAP: crypto checks the addresses inside Ethernet frames
    config = bus_config_load_string ("device = { type = \"tap\"; };\n", "node.cfg", text + 1500, 500);
    assert (config);
    crypto_service_check_config (config, &cfg);
    assert (bus_config_error_count (config) == 0 && cfg.layer2);
    crypto_service_config_clear (&cfg);
    bus_config_destroy (&config);

    //  Bad values: every one reported with file and line
    assert (s_check ("psk = \"short\";\n", verbose, "node.cfg:1: psk") == 1);
    assert (s_check ("psk = \"${CRYPTO_TEST_UNSET_VAR}\";\n", verbose, "CRYPTO_TEST_UNSET_VAR") >= 1);
    assert (s_check ("\ncrypto = { rekey_after_time = \"2m\"; reject_after_time = \"1m\"; };\n",
                     verbose, "node.cfg:2: ") == 1);
    assert (s_check ("crypto = { rekey_after = \"2m\"; };\n", verbose, "rekey_after") == 1);
    assert (s_check ("crypto = { rekey_after_time = \"soon\"; };\n", verbose, "rekey_after_time") == 1);
    assert (s_check ("crypto = 5;\n", verbose, "expected a group") == 1);
    assert (s_check ("connection = { keepalive_interval = \"0s\"; };\n", verbose, "keepalive_interval") == 1);
    assert (s_check ("peers = ( { name = \"x\"; public_key = \"nope\"; } );\n", verbose, "public_key") >= 1);

    //  The key file is created at start (0600, directory 0700) and then reused
    bus_service_t *svc = bus_service_new ("crypto", NULL, dir);
    assert (svc);
    snprintf (text, sizeof text, "key_file = \"%s\";\n", key_file);
    config = bus_config_load_string (text, "node.cfg", text + 1500, 500);
    bus_service_set_config (svc, config);
    char err [300];
    crypto_service_check_config (config, &cfg);
    crypto_service_t *self = crypto_service_new (svc, &cfg, err, sizeof err);
    assert (self);
    struct stat st;
    assert (stat (key_file, &st) == 0 && (st.st_mode & 0777) == 0600);
    char parent [220];
    snprintf (parent, sizeof parent, "%s/state/sub", dir);
    assert (stat (parent, &st) == 0 && (st.st_mode & 0777) == 0700);
    char first [CRYPTO_KEY_BASE64_SIZE];
    snprintf (first, sizeof first, "%s", crypto_service_public_key (self));
    assert (strlen (first) == 44);
    crypto_service_destroy (&self);
    assert (self == NULL);
    crypto_service_check_config (config, &cfg);
    self = crypto_service_new (svc, &cfg, err, sizeof err);
    assert (self && streq (first, crypto_service_public_key (self)));
    crypto_service_destroy (&self);

    //  Our own key as a peer: --check-config says so
    snprintf (text, sizeof text, "key_file = \"%s\";\n\npeers = ( { name = \"me\"; public_key = \"%s\"; } );\n",
              key_file, first);
    assert (s_check (text, verbose, "node.cfg:3: peers.[0].public_key: peer 'me' has this node's own public key") == 1);
    //  A key file others can read is refused, by check-config and at start
    chmod (key_file, 0644);
    snprintf (text, sizeof text, "key_file = \"%s\";\n", key_file);
    assert (s_check (text, verbose, "node.cfg:1: key_file") == 1);
    crypto_service_check_config (NULL, &cfg);
    snprintf (cfg.key_file, sizeof cfg.key_file, "%s", key_file);
    assert (crypto_service_new (svc, &cfg, err, sizeof err) == NULL);
    if (verbose)
        printf ("  refused: %s\n", err);

    bus_service_destroy (&svc);
    bus_config_destroy (&config);
    crypto_identity_destroy (&other);
    unlink (key_file);
    rmdir (parent);
    snprintf (parent, sizeof parent, "%s/state", dir);
    rmdir (parent);
    char cmd [300];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert (system (cmd) == 0);
}
