/*  nat_service: nat's config, peer state, bus and life cycle (see nat_service.h);
    the packet path itself is nat_datapath.c. */
#include "nat_service_priv.h"
#include "nat_portmap.h"
#include "nat_ice.h"
#include "nat_bday_path.h"
#include "bus_log.h"
#include "node_peers.h"
#include "schemas/pipes.h"
#include "bus_privs.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <sys/random.h>

#define S_SOCKBUF (4 * 1024 * 1024)

//  ---------------------------------------------------------------------------
//  Configuration

//  nat's own check of connection.listen, right after the schema read it: the
//  address must parse as a bind address (a bad one leaves the default)
static void
s_check_connection (bus_config_t *config, config_setting_t *group, config_setting_t *setting,
                    const bus_cfg_key_t *key, bool refused, void *out, void *arg)
{
    bus_cfg_connection_t *cfg = (bus_cfg_connection_t *) out;
    if (streq (key->name, "bridge_endpoint") && cfg->bridge_endpoint) {
        char why [160];
        if (nat_bridge_fwd_parse (cfg->bridge_endpoint, NULL, why, sizeof why)) {
            bus_config_error (config, setting, "%s", why);
            cfg->bridge_endpoint = NULL;
        }
        return;
    }
    if (!streq (key->name, "listen"))
        return;
    nat_addr_t addr;
    char err [160];
    if (strlen (cfg->listen) >= NAT_ENDPOINT_TEXT_MAX)
        bus_config_error (config, setting, "too long");
    else
    if (nat_endpoint_parse_bind (&addr, cfg->listen, err, sizeof err))
        bus_config_error (config, setting,
                          "%s (expected e.g. \"0.0.0.0:51820\", \"*:51820\" or \"[::]:51820\")", err);
    else
        return;
    cfg->listen = bus_cfg_connection_defaults.listen;
}

#define S_CA_MAX    (256 * 1024)

void
nat_service_check_config (bus_config_t *config, nat_service_config_t *out)
{
    nat_service_config_t cfg;
    memset (&cfg, 0, sizeof cfg);
    bus_cfg_read (config, &bus_cfg_connection_group, NULL, &cfg.connection, BUS_CFG_CHECK_KEYS,
                  NULL, s_check_connection, NULL);
    bus_cfg_read (config, &bus_cfg_routing_group, NULL, &cfg.routing, BUS_CFG_CHECK_KEYS, NULL, NULL, NULL);
    //  The peer list as every service reads it, then what only nat checks: that
    //  each endpoint really parses (node_peers only looks for a ':')
    cfg.peers = config ? node_peers_load (config, &cfg.connection) : NULL;
    config_setting_t *list = config ? config_lookup (bus_config_raw (config), "peers") : NULL;
    if (list && config_setting_is_list (list)) {
        int n = config_setting_length (list);
        for (int i = 0; i < n && i < NODE_PEERS_MAX; i++) {
            config_setting_t *peer = config_setting_get_elem (list, (unsigned) i);
            config_setting_t *endpoint = peer && config_setting_is_group (peer)
                                       ? config_setting_get_member (peer, "endpoint") : NULL;
            if (!endpoint || config_setting_type (endpoint) != CONFIG_TYPE_STRING)
                continue;
            const char *text = bus_config_value_string (config, endpoint, "");
            nat_endpoint_t parsed;
            char err [160];
            if (*text && strrchr (text, ':') && nat_endpoint_parse (&parsed, text, err, sizeof err))
                bus_config_error (config, endpoint, "%s", err);
        }
    }
    //  The peers kept on the relay, by name
    config_setting_t *forced = cfg.connection.force_relay_peers;
    int forced_n = forced && (config_setting_is_array (forced) || config_setting_is_list (forced)) ? config_setting_length (forced) : 0;
    for (int i = 0; i < forced_n; i++) {
        config_setting_t *name = config_setting_get_elem (forced, (unsigned) i);
        const char *text = config_setting_type (name) == CONFIG_TYPE_STRING ? config_setting_get_string (name) : NULL;
        if (!text || !*text || strlen (text) >= sizeof cfg.force_relay_peers [0])
            bus_config_error (config, name, "connection.force_relay_peers: expected peer names (1 to 48 characters)");
        else
        if (cfg.force_relay_count == NAT_FORCED_MAX)
            bus_config_error (config, name, "connection.force_relay_peers: at most %d names", NAT_FORCED_MAX);
        else
            snprintf (cfg.force_relay_peers [cfg.force_relay_count++], sizeof cfg.force_relay_peers [0], "%s", text);
    }
    //  The relays' CA, read now: the service is sandboxed before setup
    const char *ca = cfg.connection.relay_ca_file;
    if (config && ca && *ca) {
        FILE *file = fopen (ca, "rb");
        cfg.relay_ca = file ? (char *) calloc (1, S_CA_MAX) : NULL;
        if (file && cfg.relay_ca) {
            cfg.relay_ca_size = fread (cfg.relay_ca, 1, S_CA_MAX - 1, file);
            if (!feof (file) || !strstr (cfg.relay_ca, "-----BEGIN CERTIFICATE-----")) {
                free (cfg.relay_ca);
                cfg.relay_ca = NULL;
                errno = EINVAL;
            }
        }
        if (!cfg.relay_ca)
            bus_config_error (config, config_lookup (bus_config_raw (config), "connection.relay_ca_file"),
                              "cannot read a PEM CA certificate from %s: %s", ca,
                              strerror (errno ? errno : EINVAL));
        if (file)
            fclose (file);
    }
    const char *device = NULL;
    if (!config || !config_lookup_string (bus_config_raw (config), "device.name", &device))
        device = "bifrost0";
    snprintf (cfg.device_name, sizeof cfg.device_name, "%s", device);
    *out = cfg;
}

void
nat_service_config_clear (nat_service_config_t *self)
{
    node_peers_destroy (&self->peers);
    free (self->relay_ca);
    self->relay_ca = NULL;
    self->relay_ca_size = 0;
}

//  ---------------------------------------------------------------------------
//  Peer events

static void
s_format (const nat_addr_t *addr, char *buf, size_t size)
{
    if (nat_addr_is_set (addr))
        nat_addr_format (addr, buf, size);
    else
        *buf = 0;
}

static void
s_publish_peer (nat_service_t *self, nat_peer_t *peer)
{
    uint32_t index = nat_peer_index (peer);
    nat_peer_event_t event = { .index = index, .direct = nat_peer_direct (peer) };
    snprintf (event.name, sizeof event.name, "%s", self->info [index].name);
    snprintf (event.state, sizeof event.state, "%s", nat_peer_state_name (nat_peer_state (peer)));
    s_format (nat_peer_endpoint (peer), event.endpoint, sizeof event.endpoint);
    bus_service_publish (self->svc, &nat_peer_event_schema, &event);
}

//  ---------------------------------------------------------------------------
//  Routes for crypto: where it may send a peer's datagrams itself on our socket

//  Adds a ROUTE record for peer to the control batch when its route changed: the
//  confirmed endpoint of a peer that is up, or none (empty record), so a peer
//  being dialled or gone goes through nat again.
static void
s_route_add (nat_service_t *self, nat_peer_t *peer)
{
    uint32_t index = nat_peer_index (peer);
    nat_peer_info_t *info = &self->info [index];
    const nat_addr_t *to = nat_peer_state (peer) == NAT_PEER_UP ? nat_peer_endpoint (peer) : NULL;
    //  A destination reached through other peers has no endpoint of its own
    //  up (or only the relay's, which crypto does not send to either): crypto
    //  hands its packets (handshakes too) to nat, which writes the routing header
    bool routed = to && nat_addr_is_set (to);
    if (routed == info->routed && (!routed || nat_addr_eq (to, &info->route)))
        return;
    struct sockaddr_in6 name;
    socklen_t len = 0;
    if (routed && !nat_udp_sockaddr (self->udp, to, &name, &len))
        len = 0;                        //  not from this socket's family: through nat
    uint8_t *slot = bus_batch_reserve (self->ctl, index, len);
    if (!slot) {
        bus_pipe_send (self->to_crypto, self->ctl);     //  64 records: send, go on
        slot = bus_batch_reserve (self->ctl, index, len);
        assert (slot);
    }
    memcpy (slot, &name, len);
    bus_batch_set_flags (self->ctl, PIPE_FLAG_ROUTE);
    info->routed = routed;
    if (routed)
        info->route = *to;
    self->counters.routes++;
}

//  After a send on nat-crypto: a new link (crypto started or restarted) got our
//  socket with its first message and knows no route yet, so give it all again.
void
nat_service_routes_relink (nat_service_t *self)
{
    if (!self->config.tunnel_sends)
        return;
    bus_pipe_stats_t stats;
    bus_pipe_stats (self->to_crypto, &stats);
    if (stats.connects == self->links_seen)
        return;
    self->links_seen = stats.connects;
    for (size_t i = 0; i < self->info_count; i++)
        self->info [i].routed = false;
    for (size_t i = 0; i < nat_peer_table_slots (self->table); i++) {
        nat_peer_t *peer = nat_peer_table_at (self->table, i);
        if (peer)
            s_route_add (self, peer);
    }
    bus_pipe_send (self->to_crypto, self->ctl);
}

static void
s_route (nat_service_t *self, nat_peer_t *peer)
{
    if (!self->config.tunnel_sends || !self->ctl)
        return;
    s_route_add (self, peer);
    if (bus_batch_count (self->ctl))
        bus_pipe_send (self->to_crypto, self->ctl);
    nat_service_routes_relink (self);
}

void
nat_service_send_dial (nat_service_t *self, nat_peer_t *peer)
{
    uint32_t index = nat_peer_index (peer);
    nat_peer_status_t status;
    nat_peer_status (peer, &status);
    nat_dial_t dial = { .index = index, .attempt = status.attempts };
    snprintf (dial.name, sizeof dial.name, "%s", self->info [index].name);
    s_format (&self->info [index].dial, dial.endpoint, sizeof dial.endpoint);
    self->counters.dials++;
    self->info [index].last_dial_ms = bus_clock_ms ();
    bus_debug ("dial %s at %s (attempt %u)", dial.name, dial.endpoint, dial.attempt);
    bus_service_send (self->svc, "crypto", &nat_dial_schema, &dial);
}

static void
s_on_keepalive (nat_peer_t *peer, void *arg)
{
    //  crypto sends keepalives itself (it knows when it last sent); count only
    ((nat_service_t *) arg)->counters.keepalives++;
}

static void
s_on_connect (nat_peer_t *peer, const nat_addr_t *addr, void *arg)
{
    nat_service_t *self = (nat_service_t *) arg;
    self->info [nat_peer_index (peer)].dial = *addr;
    nat_tried_note (&self->info [nat_peer_index (peer)].tried, NAT_TRIED_DIALLED, addr, 1, bus_clock_ms ());
    //  Also while the peer is reached through others: the initiation goes
    //  both through the route and to this address (nat_datapath.c), so a
    //  direct path that opens later is found and taken
    nat_service_send_dial (self, peer);
}

static void
s_on_resolve (nat_peer_t *peer, const char *host, uint16_t port, void *arg)
{
    nat_service_t *self = (nat_service_t *) arg;
    if (nat_resolver_request (self->resolver, host, port, nat_peer_index (peer))) {
        char error [160];
        snprintf (error, sizeof error, "cannot resolve %s now: %s", host,
                  errno == EAGAIN ? "too many lookups in flight" : strerror (errno));
        nat_peer_resolved (peer, NULL, 0, error, bus_clock_ms ());
    }
}

static void
s_on_state (nat_peer_t *peer, nat_peer_state_t old_state, void *arg)
{
    nat_service_t *self = (nat_service_t *) arg;
    nat_peer_state_t state = nat_peer_state (peer);
    uint32_t index = nat_peer_index (peer);
    nat_peer_status_t status;
    nat_peer_status (peer, &status);
    bool unanswered = old_state == NAT_PEER_UP && strcmp (status.down_reason, "unanswered") == 0;
    bus_info ("peer %s: %s -> %s%s", self->info [index].name,
              nat_peer_state_name (old_state), nat_peer_state_name (state),
              unanswered ? " (traffic sent and probed, nothing came back: nat_peer.h, unanswered)"
              : old_state == NAT_PEER_UP && strcmp (status.down_reason, "silence") == 0 ? " (silence)" : "");
    if (unanswered)
        self->counters.fast_downs++;
    if (old_state == NAT_PEER_UP) {
        nat_peer_down_t down = { .index = index,
                                 .silent_ms = status.last_rx_ms < 0 ? -1 : bus_clock_ms () - status.last_rx_ms };
        snprintf (down.name, sizeof down.name, "%s", self->info [index].name);
        bus_service_publish (self->svc, &nat_peer_down_schema, &down);
    }
    s_route (self, peer);
    s_publish_peer (self, peer);
}

static void
s_on_endpoint (nat_peer_t *peer, const nat_addr_t *old_addr, void *arg)
{
    nat_service_t *self = (nat_service_t *) arg;
    char text [NAT_ADDR_TEXT_MAX];
    bus_info ("peer %s: endpoint %s", self->info [nat_peer_index (peer)].name,
              nat_addr_format (nat_peer_endpoint (peer), text, sizeof text));
    s_route (self, peer);
    s_publish_peer (self, peer);
}

//  Traffic to the peer went unanswered (nat_peer.h): a keepalive now, which
//  the peer's crypto answers, goes where its packets go (direct, relay, ICE,
//  through other peers)
static void
s_on_probe (nat_peer_t *peer, void *arg)
{
    nat_service_t *self = (nat_service_t *) arg;
    nat_probe_t probe = { .index = nat_peer_index (peer) };
    self->counters.fast_probes++;
    bus_service_send (self->svc, "crypto", &nat_probe_schema, &probe);
}

static const nat_peer_handler_t s_handler = {
    s_on_keepalive, s_on_connect, s_on_resolve, s_on_state, s_on_endpoint, s_on_probe
};

//  ---------------------------------------------------------------------------
//  Timers, resolver, bus

static void s_redial (nat_service_t *self);

//  The host's addresses or routes changed (nat_netwatch): direct paths are tried
//  again NAT_NETCHANGE_DELAY_MS after the first change of a burst, when DHCP
//  and the routes have settled
static int
s_netwatch_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    nat_service_t *self = (nat_service_t *) arg;
    int changes = nat_netwatch_read (self->netwatch);
    if (changes > 0)
        nat_portmap_netchange (self->portmap);      //  our address towards the gateway, at once
    if (changes > 0)
        nat_ice_netchange (self->ice);              //  the addresses ICE gathers on
    if (changes > 0 && !self->netchange_due_ms) {
        self->netchange_due_ms = bus_clock_ms () + NAT_NETCHANGE_DELAY_MS;
        bus_info ("local addresses or routes changed: direct paths are tried again in %d ms",
                  NAT_NETCHANGE_DELAY_MS);
    }
    return 0;
}

static void
s_netchange_tick (nat_service_t *self, int64_t now)
{
    if (!self->netchange_due_ms || now < self->netchange_due_ms)
        return;
    self->netchange_due_ms = 0;
    self->counters.net_changes++;
    size_t peers = nat_relay_path_reprobe (self, now);
    bus_info ("after the address or route change: probing %zu relayed peer(s) again", peers);
}

static int
s_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    nat_service_t *self = (nat_service_t *) arg;
    nat_peer_table_tick (self->table, bus_clock_ms ());
    s_redial (self);
    nat_relay_path_tick (self, bus_clock_ms ());
    nat_direct_watch_tick (self, bus_clock_ms ());
    nat_path_probe_tick (self, bus_clock_ms ());
    s_netchange_tick (self, bus_clock_ms ());
    nat_ice_tick (self->ice, bus_clock_ms ());
    nat_bday_path_tick (self->bday, bus_clock_ms ());
    nat_cookie_path_tick (self, bus_clock_ms ());
    return 0;
}

static int
s_resolver_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    nat_service_t *self = (nat_service_t *) arg;
    nat_resolver_result_t result;
    while (nat_resolver_next (self->resolver, &result)) {
        if (result.cookie >= NAT_ICE_COOKIE) {         //  STUN/TURN servers by name (nat_ice.c)
            nat_ice_resolved (self->ice, result.cookie, result.addrs, result.count);
            continue;
        }
        if (result.cookie >= NAT_RELAY_COOKIE) {
            nat_relay_path_resolved (self, result.cookie, result.addrs, result.count);
            continue;
        }
        nat_peer_t *peer = result.cookie < nat_peer_table_slots (self->table)
                         ? nat_peer_table_at (self->table, (size_t) result.cookie) : NULL;
        if (!peer)
            continue;
        if (result.count == 0)
            bus_warn ("peer %s: %s", self->info [result.cookie].name, result.message);
        nat_peer_resolved (peer, result.addrs, result.count, result.message, bus_clock_ms ());
    }
    return 0;
}

//  ---------------------------------------------------------------------------
//  Port mapping (connection.port_mapping, nat_portmap.c): the mapped address is
//  a candidate, which discovery registers first (nat.mapped, on every change
//  and when the bus asks for our state)

static void
s_publish_mapped (nat_portmap_t *portmap, void *arg)
{
    nat_service_t *self = (nat_service_t *) arg;
    nat_mapped_t msg;
    nat_portmap_event (portmap, &msg);
    bus_service_publish (self->svc, &nat_mapped_schema, &msg);
}

//  Mapped when the socket is bound: its port, and its address if it is a
//  specific IPv4 one (else the gateway forwards to the address facing it)
static void
s_portmap_open (nat_service_t *self)
{
    if (!self->config.port_mapping)
        return;
    char addr [NAT_ENDPOINT_TEXT_MAX];
    snprintf (addr, sizeof addr, "%s", self->config.listen);
    char *colon = strrchr (addr, ':');
    if (colon)
        *colon = 0;
    struct in_addr in;
    bool specific = inet_pton (AF_INET, addr, &in) == 1 && in.s_addr != htonl (INADDR_ANY);
    nat_portmap_config_t pc = {
        .local_port = nat_udp_port (self->udp),
        .local_addr = specific ? addr : NULL,
        .protocol = self->config.port_mapping_protocol,
        .lifetime_ms = self->config.port_mapping_lifetime_ms,
    };
    char err [200];
    self->portmap = nat_portmap_new (self->loop, &pc, s_publish_mapped, self, err, sizeof err);
    if (!self->portmap)
        bus_warn ("port mapping: %s", err);
}

//  A new broker, or another service (crypto) rejoined: announce every peer again
//  and repeat the dial of every peer still connecting, so nothing depends on a
//  message that was lost while the other side was away.
static void
s_on_bus_connect (bus_service_t *svc, uint64_t epoch, void *arg)
{
    nat_service_t *self = (nat_service_t *) arg;
    if (self->portmap)
        s_publish_mapped (self->portmap, self);
    for (size_t i = 0; i < nat_peer_table_slots (self->table); i++) {
        nat_peer_t *peer = nat_peer_table_at (self->table, i);
        if (!peer)
            continue;
        s_publish_peer (self, peer);
        if (nat_peer_state (peer) == NAT_PEER_CONNECTING && nat_addr_is_set (&self->info [i].dial))
            nat_service_send_dial (self, peer);
    }
}

//  The dials asked for by s_on_crypto_peer, once nat-crypto is connected: a
//  restarted crypto hears from the broker before our pipe has reconnected to
//  it, and the handshake response would be dropped (a retry of a second)
static void
s_redial (nat_service_t *self)
{
    if (!bus_pipe_writable (self->to_crypto))
        return;
    for (size_t i = 0; i < self->info_count; i++) {
        if (!self->info [i].redial)
            continue;
        self->info [i].redial = false;
        nat_peer_t *peer = i < nat_peer_table_slots (self->table) ? nat_peer_table_at (self->table, i) : NULL;
        if (peer && nat_peer_state (peer) == NAT_PEER_UP)
            nat_service_send_dial (self, peer);
    }
}

//  crypto says it has no session with a peer (it publishes its state for every
//  peer when it (re)joins the bus, and when keys expire). If the peer is up here,
//  it is sending to us with keys crypto no longer has: a restarted crypto. If
//  only the peer sends and we answer, no outbound packet would start a handshake
//  (the peer's packets are dropped as an unknown index), so dial it now: crypto
//  initiates, and the packet goes where the peer was last heard from.
static void
s_on_crypto_peer (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    nat_service_t *self = (nat_service_t *) arg;
    crypto_peer_event_t event;
    char err [200];
    if (bus_envelope_get_msg (env, &crypto_peer_event_schema, &event, err, sizeof err)) {
        bus_warn ("crypto.peer: %s", err);
        return;
    }
    nat_peer_t *peer = event.index < nat_peer_table_slots (self->table)
                     ? nat_peer_table_at (self->table, event.index) : NULL;
    if (!peer || !streq (event.state, "down") || nat_peer_state (peer) != NAT_PEER_UP
    ||  event.index >= self->info_count)
        return;
    bus_debug ("peer %s: up here but crypto has no session: dial", self->info [event.index].name);
    self->info [event.index].redial = true;
    s_redial (self);
}

static int64_t
s_ago (int64_t when, int64_t now)
{
    return when < 0 ? -1 : now - when;
}

static void
s_on_status (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    nat_service_t *self = (nat_service_t *) arg;
    nat_status_t request;
    char err [200];
    if (bus_envelope_get_msg (env, &nat_status_schema, &request, err, sizeof err)) {
        bus_service_reply_error (svc, env, 400, "%s", err);
        return;
    }
    nat_status_reply_t *reply = (nat_status_reply_t *) zmalloc (sizeof (nat_status_reply_t));
    const nat_udp_stats_t *udp = nat_udp_stats (self->udp);
    const nat_demux_stats_t *demux = nat_demux_stats (self->demux);
    bus_pipe_stats_t pipe;
    bus_pipe_stats (self->from_crypto, &pipe);
    reply->listen_port = nat_udp_port (self->udp);
    reply->rx_datagrams = udp->dgrams_in;
    reply->rx_bytes = udp->bytes_in;
    reply->tx_datagrams = udp->dgrams_out;
    reply->tx_bytes = udp->bytes_out;
    reply->to_crypto = self->counters.to_crypto;
    reply->from_crypto = self->counters.from_crypto;
    reply->drop_too_short = demux->dropped [NAT_DEMUX_TOO_SHORT];
    reply->drop_bad_type = demux->dropped [NAT_DEMUX_BAD_TYPE];
    reply->drop_bad_reserved = demux->dropped [NAT_DEMUX_BAD_RESERVED];
    reply->drop_truncated = udp->truncated;
    if (self->bridge_fwd) {
        reply->bridge_in = nat_bridge_fwd_stats (self->bridge_fwd)->in;
        reply->bridge_out = nat_bridge_fwd_stats (self->bridge_fwd)->out;
    }
    reply->drop_pipe = self->counters.drop_pipe + self->counters.drop_oversize;
    reply->drop_no_endpoint = self->counters.drop_no_endpoint;
    reply->drop_bad_peer = self->counters.drop_bad_peer;
    reply->drop_stale_handle = self->counters.drop_stale_handle;
    reply->drop_send = udp->send_errors + udp->send_dropped;
    reply->bad_batches = pipe.batches_rejected;
    reply->pauses = self->counters.pauses;
    reply->direct_probes = self->counters.direct_probes;
    reply->direct_lost = self->counters.direct_lost;
    reply->net_changes = self->counters.net_changes;
    reply->rtt_probes = self->counters.rtt_probes;
    reply->fast_probes = self->counters.fast_probes;
    reply->fast_downs = self->counters.fast_downs;
    reply->handles_in_use = (uint32_t) nat_handles_count (self->handles);
    reply->handles_evicted = nat_handles_stats (self->handles)->evictions;
    const nat_hs_budget_stats_t *budget = nat_hs_budget_stats (self->hs_budget);
    reply->initiations_limited = budget->limited_source + budget->limited_global;
    nat_cookie_path_status (self, reply);
    reply->tunnel_sends = self->config.tunnel_sends;
    reply->tunnel_datagrams = self->counters.tunnel_datagrams;
    reply->tunnel_bytes = self->counters.tunnel_bytes;
    reply->routes = self->counters.routes;
    reply->bad_reports = self->counters.bad_reports;
    const nat_transit_stats_t *ts = nat_transit_stats (self->transit);
    reply->drop_bad_routed = demux->dropped [NAT_DEMUX_BAD_ROUTED];
    reply->transit = self->routing.transit && self->routing.transit_packets_per_second && self->routing.transit_bytes_per_second;
    reply->routed_sent = ts->sent;
    reply->routed_received = self->routed_received;
    reply->transit_forwarded = ts->verdicts [NAT_TRANSIT_FORWARD];
    reply->transit_forwarded_bytes = ts->forwarded_bytes;
    reply->transit_drop_ttl = ts->verdicts [NAT_TRANSIT_DROP_TTL];
    reply->transit_drop_budget = ts->verdicts [NAT_TRANSIT_DROP_BUDGET];
    reply->transit_drop_refused = ts->verdicts [NAT_TRANSIT_DROP_REFUSED];
    reply->transit_drop_no_route = ts->verdicts [NAT_TRANSIT_DROP_NO_ROUTE];
    reply->transit_drop_not_neighbour = ts->verdicts [NAT_TRANSIT_DROP_NOT_NEIGHBOUR];
    reply->transit_drop_unknown = ts->verdicts [NAT_TRANSIT_DROP_UNKNOWN];
    nat_portmap_status (self->portmap, reply);
    reply->relay_rtt_us = -1;
    int cur = nat_relay_current (self->relay);
    if (cur >= 0) {
        nat_relay_server_t *server = nat_relay_server (self->relay, (size_t) cur);
        snprintf (reply->relay, sizeof reply->relay, "%s", server->name);
        reply->relay_rtt_us = server->rtt_us;
        s_format (&server->observed, reply->relay_observed, sizeof reply->relay_observed);
        snprintf (reply->relay_transport, sizeof reply->relay_transport, "%s",
                  nat_relay_path_transport (self, (size_t) cur));
    }
    reply->relays = (uint32_t) nat_relay_count (self->relay);
    for (size_t i = 0; i < nat_relay_count (self->relay); i++)
        reply->relays_up += nat_relay_server (self->relay, i)->up;
    reply->relay_rx = self->counters.relay_rx;
    reply->relay_tx = self->counters.relay_tx;
    reply->relay_registers = self->counters.relay_registers;
    reply->drop_no_relay = self->counters.drop_no_relay;
    reply->relay_tcp_connects = self->counters.relay_tcp_connects;
    nat_relay_path_wss_stats (self, &reply->relay_wss_opens, &reply->relay_wss_opened, &reply->relay_wss_failed);
    reply->relay_wss_rx = self->counters.relay_wss_rx;
    reply->relay_wss_tx = self->counters.relay_wss_tx;
    nat_relay_path_status (self, reply);
    nat_ice_status (self->ice, reply);
    nat_bday_path_status (self->bday, reply);
    int64_t now = bus_clock_ms ();
    for (size_t i = 0; i < nat_peer_table_slots (self->table); i++) {
        nat_peer_t *peer = nat_peer_table_at (self->table, i);
        if (!peer || reply->peers_count == 250)
            continue;
        if (*request.peer && strcmp (request.peer, self->info [i].name) != 0)
            continue;
        nat_peer_status_t st;
        nat_peer_status (peer, &st);
        nat_status_peer_t *out = &reply->peers [reply->peers_count++];
        out->index = (uint32_t) i;
        snprintf (out->name, sizeof out->name, "%s", self->info [i].name);
        s_format (&st.endpoint, out->endpoint, sizeof out->endpoint);
        const nat_endpoint_t *configured = nat_peer_configured (peer);
        if (configured)
            nat_endpoint_format (configured, out->configured, sizeof out->configured);
        snprintf (out->state, sizeof out->state, "%s", nat_peer_state_name (st.state));
        out->direct = nat_peer_direct (peer);
        out->last_rx_ms_ago = s_ago (st.last_rx_ms, now);
        out->last_tx_ms_ago = s_ago (st.last_tx_ms, now);
        out->rx_bytes = st.rx_bytes;
        out->tx_bytes = st.tx_bytes;
        out->rx_packets = st.rx_packets;
        out->tx_packets = st.tx_packets;
        out->attempts = st.attempts;
        snprintf (out->last_error, sizeof out->last_error, "%s", st.last_error ? st.last_error : "");
        nat_relay_path_describe (self, peer, out->path, sizeof out->path);
        if (i < self->info_count && self->info [i].relay_id)
            snprintf (out->relay_id, sizeof out->relay_id, "%016" PRIx64, self->info [i].relay_id);
        if (i < self->info_count && nat_addr_is_set (&self->info [i].relay_seen))
            nat_addr_format (&self->info [i].relay_seen, out->relay_seen, sizeof out->relay_seen);
        if (i < self->info_count)
            nat_relay_path_peer_status (self, i, out);
        uint32_t via = nat_transit_via (self->transit, (uint32_t) i, NULL);
        if (via != NAT_TRANSIT_NONE && via < self->info_count)
            snprintf (out->routed_via, sizeof out->routed_via, "%s", self->info [via].name);
        nat_transit_source_stats (self->transit, (uint32_t) i, &out->transit_forwarded, &out->transit_over_budget);
        if (i < self->info_count) {
            nat_path_probe_peer_status (self, i, out);
            nat_path_probe_candidates (self, i, out->candidates, sizeof out->candidates);
        }
    }
    bus_service_reply (svc, env, &nat_status_reply_schema, reply);
    free (reply);
}

//  ---------------------------------------------------------------------------
//  Peers from the registry (discovery): peer.up adds the peer at its index (the
//  tag crypto puts on crypto-nat), peer.changed gives a peer that is not up new
//  endpoints, peer.down removes it. The table hands out the first free slot, so
//  to land on the index every free slot below it is held by a placeholder for a
//  moment (random keys, no endpoint: never dialled) and released right after.

static void
s_info_grow (nat_service_t *self, size_t count)
{
    if (count <= self->info_count)
        return;
    nat_peer_info_t *grown = (nat_peer_info_t *) realloc (self->info, count * sizeof (nat_peer_info_t));
    assert (grown);
    memset (grown + self->info_count, 0, (count - self->info_count) * sizeof (nat_peer_info_t));
    self->info = grown;
    self->info_count = count;
}

static int
s_dyn_add (nat_service_t *self, uint32_t index, const uint8_t *key, const char *name,
           const char *const *endpoints, size_t endpoint_count, bool direct, uint64_t relay_id)
{
    //  A peer kept on the relay is never dialled directly
    bool forced = relay_id && nat_relay_path_forced (self, name);
    char perr [200];
    s_info_grow (self, (size_t) index + 1);
    uint8_t held [NODE_PEERS_MAX][NAT_KEY_SIZE];
    size_t holds = 0;
    for (uint32_t i = 0; i < index && holds < NODE_PEERS_MAX; i++) {
        if (nat_peer_table_at (self->table, i))
            continue;
        if (getrandom (held [holds], NAT_KEY_SIZE, 0) != NAT_KEY_SIZE)
            break;
        nat_peer_config_t pc = { .public_key = held [holds] };
        nat_peer_t *placeholder = nat_peer_new (&pc, perr, sizeof perr);
        if (placeholder && nat_peer_table_add (self->table, &placeholder, perr, sizeof perr) >= 0)
            holds++;
    }
    nat_peer_config_t pc = {
        .public_key = key,
        .endpoints = endpoints,
        .endpoint_count = endpoint_count,
        .direct = direct && endpoint_count && self->config.direct_connect && !forced,
        .keepalive_ms = (uint32_t) self->config.keepalive_interval_ms,
        .seed = (uint64_t) zclock_time () + index,
    };
    nat_peer_t *peer = nat_peer_new (&pc, perr, sizeof perr);
    int slot = peer ? nat_peer_table_add (self->table, &peer, perr, sizeof perr) : -1;
    for (size_t h = 0; h < holds; h++)
        nat_peer_table_remove (self->table, held [h]);
    if (slot < 0) {
        bus_warn ("peer %s: %s", name, perr);
        return -1;
    }
    if ((uint32_t) slot != index) {
        bus_warn ("peer %s: index %u is taken by another key", name, index);
        nat_peer_table_remove (self->table, key);
        return -1;
    }
    nat_peer_info_t *info = &self->info [index];
    snprintf (info->name, sizeof info->name, "%s", name);
    memset (&info->dial, 0, sizeof info->dial);
    info->relay_id = relay_id;
    info->force_relay = forced;
    info->direct_rx_ms = -1;
    info->relay_dials = info->relay_unknown = info->probes = info->predict_anchor = 0;
    info->probe_next_ms = info->probe_until_ms = 0;
    nat_addr_clear (&info->relay_seen);
    if (relay_id && nat_relay_path_seen (self, relay_id, &info->relay_seen)) {
        char text [NAT_ADDR_TEXT_MAX];
        bus_debug ("peer %s: the relay saw it at %s before it was known", info->name,
                   nat_addr_format (&info->relay_seen, text, sizeof text));
    }
    memset (&info->plan, 0, sizeof info->plan);
    info->last_dial_ms = info->watch_first_ms = info->watch_probe_ms = 0;
    nat_pathstat_reset (&info->pathstat);       //  nat_path_probe.c
    nat_addr_clear (&info->path_on);
    info->path_tx_mark = 0;                     //  the new nat_peer counts from 0
    info->tried.count = 0;
    //  The first dial below may reach crypto before crypto knows the peer (its
    //  peer.up may come a moment later), or reach the relay before the peer
    //  registered there (it is starting too): one more dial 300 ms later, so the
    //  pair does not wait for the dialler's 1 s backoff (crypto takes one dial
    //  per 250 ms)
    info->relay_retry_ms = relay_id ? bus_clock_ms () + 300 : 0;
    bus_info ("peer %s: added as index %u, endpoint %s%s%s", name, index,
              endpoint_count ? endpoints [0] : "(none)",
              endpoint_count > 1 ? " (and more)" : "", pc.direct ? ", dialling" : "");
    nat_peer_table_tick (self->table, bus_clock_ms ());
    return 0;
}

//  Does the peer dial exactly these endpoints, in this order?
static bool
s_same_endpoints (nat_peer_t *peer, const char *const *endpoints, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const nat_endpoint_t *configured = nat_peer_configured_at (peer, i);
        char text [NAT_ENDPOINT_TEXT_MAX];
        if (!configured || !streq (nat_endpoint_format (configured, text, sizeof text), endpoints [i]))
            return false;
    }
    return nat_peer_configured_at (peer, count) == NULL;
}

//  An up peer registered new candidates (a port mapping made or lost, a new
//  address): kept for the direct probes of a peer on the relay. A new best
//  one (the first: a port mapping, which discovery puts first) is the pair's
//  way out of the relay, so the probes start over from it at once; other
//  changes only join the probes' rotation (docs/portmap.md)
static void
s_new_candidates (nat_service_t *self, nat_peer_t *peer, const char *const *endpoints, size_t count)
{
    uint32_t index = nat_peer_index (peer);
    char err [200], first [NAT_ENDPOINT_TEXT_MAX] = "";
    const nat_endpoint_t *was = nat_peer_configured_at (peer, 0);
    if (was)
        nat_endpoint_format (was, first, sizeof first);
    if (nat_peer_set_endpoints (peer, endpoints, count, err, sizeof err)) {
        bus_warn ("peer %s: new endpoints refused: %s", self->info [index].name, err);
        return;
    }
    bool best = count && !streq (first, endpoints [0]);
    bool relayed = nat_addr_relay_peer (nat_peer_endpoint (peer));
    bus_info ("peer %s: new endpoints, first %s%s", self->info [index].name, count ? endpoints [0] : "(none)",
              best && relayed ? ": probing it now" : "");
    if (best && relayed && index < self->info_count) {
        self->info [index].probes = 0;
        self->info [index].probe_next_ms = bus_clock_ms ();
    }
}

static void
s_on_peer_event (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    nat_service_t *self = (nat_service_t *) arg;
    char err [200];
    const char *type = bus_envelope_type (env);
    uint32_t static_count = self->peers ? node_peers_count (self->peers) : 0;
    if (streq (type, "peer.up") || streq (type, "peer.changed")) {
        peer_up_t *up = (peer_up_t *) calloc (1, sizeof (peer_up_t));
        assert (up);
        bool is_up = streq (type, "peer.up");
        if (is_up ? bus_envelope_get_msg (env, &peer_up_schema, up, err, sizeof err) != 0 : false) {
            bus_warn ("%s: %s", type, err);
            free (up);
            return;
        }
        if (!is_up) {
            peer_changed_t changed;
            if (bus_envelope_get_msg (env, &peer_changed_schema, &changed, err, sizeof err)) {
                bus_warn ("%s: %s", type, err);
                free (up);
                return;
            }
            up->index = changed.index;
            snprintf (up->name, sizeof up->name, "%s", changed.name);
            memcpy (up->endpoints, changed.endpoints, sizeof up->endpoints);
            up->endpoints_count = changed.endpoints_count;
            up->direct = true;
        }
        //  The candidates, best first; empty strings are none
        const char *endpoints [NAT_PEER_ENDPOINTS_MAX];
        size_t endpoint_count = 0;
        for (uint32_t i = 0; i < up->endpoints_count && endpoint_count < NAT_PEER_ENDPOINTS_MAX; i++)
            if (*up->endpoints [i])
                endpoints [endpoint_count++] = up->endpoints [i];
        nat_peer_t *peer = nat_peer_table_at (self->table, up->index);
        //  The peer's id at the relays (peer.changed does not repeat it)
        uint64_t relay_id = 0;
        if (is_up && *up->relay_id && relay_cred_peer_parse (up->relay_id, &relay_id))
            bus_warn ("%s %s: bad relay_id '%s'", type, up->name, up->relay_id);
        if (!is_up && up->index < self->info_count)
            relay_id = self->info [up->index].relay_id;
        //  Its registry id names it in routing headers (nat_transit.h)
        uint64_t peer_id = 0;
        if (is_up && *up->peer_id && relay_cred_peer_parse (up->peer_id, &peer_id) == 0)
            nat_transit_set_id (self->transit, up->index, peer_id);
        uint8_t key [NAT_KEY_SIZE];
        bool have_key = is_up && nat_key_from_base64 (up->public_key, key, err, sizeof err) == 0;
        if (up->index < static_count || up->index >= NODE_PEERS_MAX || (is_up && !have_key)) {
            if (up->index >= static_count)
                bus_warn ("%s %s: bad index %u or key", type, up->name, up->index);
        }
        else
        if (!peer) {
            if (have_key)
                s_dyn_add (self, up->index, key, up->name, endpoints, endpoint_count, up->direct, relay_id);
        }
        else
        if (have_key && memcmp (nat_peer_key (peer), key, NAT_KEY_SIZE) != 0)
            bus_warn ("%s %s: index %u holds another key", type, up->name, up->index);
        else {
            //  Known: new endpoints replace the dialled ones while it is not
            //  up; an up peer roams by itself (confirmed by crypto), and keeps
            //  them as candidates for the direct probes of the relayed path
            snprintf (self->info [up->index].name, sizeof self->info [up->index].name, "%s", up->name);
            if (is_up)
                self->info [up->index].relay_id = relay_id;
            if (nat_peer_state (peer) != NAT_PEER_UP && !s_same_endpoints (peer, endpoints, endpoint_count)) {
                uint8_t copy [NAT_KEY_SIZE];
                memcpy (copy, nat_peer_key (peer), NAT_KEY_SIZE);
                nat_peer_table_remove (self->table, copy);
                s_dyn_add (self, up->index, copy, up->name, endpoints, endpoint_count, up->direct, relay_id);
            }
            else
            if (nat_peer_state (peer) == NAT_PEER_UP && !s_same_endpoints (peer, endpoints, endpoint_count))
                s_new_candidates (self, peer, endpoints, endpoint_count);
        }
        free (up);
    }
    else
    if (streq (type, "peer.down")) {
        peer_down_t down;
        if (bus_envelope_get_msg (env, &peer_down_schema, &down, err, sizeof err)) {
            bus_warn ("peer.down: %s", err);
            return;
        }
        nat_peer_t *peer = nat_peer_table_at (self->table, down.index);
        if (down.index < static_count || !peer)
            return;
        uint8_t copy [NAT_KEY_SIZE];
        memcpy (copy, nat_peer_key (peer), NAT_KEY_SIZE);
        nat_peer_table_remove (self->table, copy);
        bus_info ("peer %s: removed (%s)", down.name, down.reason);
    }
}

//  route.next (the router, docs/routing.md): where a destination's packets go.
//  A destination that moves between direct and routed gets a new ROUTE record,
//  so crypto sends it itself (direct) or hands it to nat (routed)
static void
s_on_route_next (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    nat_service_t *self = (nat_service_t *) arg;
    char err [200];
    route_next_t *next = (route_next_t *) calloc (1, sizeof (route_next_t));
    assert (next);
    if (bus_envelope_get_msg (env, &route_next_schema, next, err, sizeof err)) {
        bus_warn ("route.next: %s", err);
        free (next);
        return;
    }
    uint32_t hops [NAT_TRANSIT_HOPS];
    size_t count = 0;
    for (uint32_t i = 0; i < next->next_hops_count && count < NAT_TRANSIT_HOPS; i++) {
        if (next->next_hops [i].id && next->next_hops [i].index != next->index)
            nat_transit_set_id (self->transit, next->next_hops [i].index, next->next_hops [i].id);
        hops [count++] = next->next_hops [i].index;
    }
    int changed = nat_transit_set_route (self->transit, next->index, next->self_id, next->dest_id, next->ttl,
                                         hops, count);
    nat_peer_t *peer = nat_peer_table_at (self->table, next->index);
    if (changed < 0)
        bus_warn ("route.next: bad index %u", next->index);
    else
    if (changed && peer) {
        uint32_t via = nat_transit_via (self->transit, next->index, NULL);
        bus_info ("peer %s: %s%s", self->info [next->index].name,
                  via == NAT_TRANSIT_NONE ? "direct" : "routed through ",
                  via == NAT_TRANSIT_NONE ? "" : via < self->info_count ? self->info [via].name : "?");
        s_route (self, peer);
        //  A peer reached only through others gets its end-to-end session at
        //  once, as a direct peer is dialled at start: a broadcast (a flood
        //  goes to the peers with a session) or the first packet finds it up
        if (via != NAT_TRANSIT_NONE)
            nat_service_send_dial (self, peer);
    }
    free (next);
}

//  ---------------------------------------------------------------------------
//  Life cycle

static int
s_fail (char *err, size_t err_size, const char *what)
{
    snprintf (err, err_size, "%s", what);
    return -1;
}

static int
s_open (nat_service_t *self, nat_service_config_t *config, char *err, size_t err_size)
{
    self->config = config->connection;
    self->peers = config->peers;
    config->peers = NULL;
    uint32_t count = self->peers ? node_peers_count (self->peers) : 0;
    self->info = (nat_peer_info_t *) calloc (count ? count : 1, sizeof (nat_peer_info_t));
    assert (self->info);
    self->info_count = count ? count : 1;

    uint64_t seed;
    if (getrandom (&seed, sizeof seed, 0) != sizeof seed)
        seed = (uint64_t) zclock_time () ^ (uint64_t) getpid () << 32;
    self->table = nat_peer_table_new (seed);
    nat_peer_table_set_handler (self->table, &s_handler, self);
    for (uint32_t i = 0; i < count; i++) {
        const node_peer_t *conf = node_peers_get (self->peers, i);
        nat_peer_config_t pc = {
            .public_key = conf->key,
            .endpoint = *conf->endpoint ? conf->endpoint : NULL,
            .direct = conf->direct && self->config.direct_connect,
            .keepalive_ms = (uint32_t) conf->keepalive_ms,     //  resolved by node_peers
            .seed = seed + i,
        };
        char perr [200];
        nat_peer_t *peer = nat_peer_new (&pc, perr, sizeof perr);
        if (!peer) {
            snprintf (err, err_size, "peer %s: %s", conf->name, perr);
            return -1;
        }
        snprintf (self->info [i].name, sizeof self->info [i].name, "%s", conf->name);
        int index = nat_peer_table_add (self->table, &peer, perr, sizeof perr);
        if (index < 0) {
            snprintf (err, err_size, "peer %s: %s", conf->name, perr);
            return -1;
        }
        assert ((uint32_t) index == i);     //  a fresh table fills slots in order
    }

    nat_udp_config_t uc = {
        .bind = self->config.listen, .rcvbuf = S_SOCKBUF, .sndbuf = S_SOCKBUF,
        .gso = true, .gro = true,
    };
    char uerr [200];
    //  The tunnel holds a copy of our predecessor's socket until it sees that
    //  nat's link end, which may be a moment after a restart: wait for it (1 s)
    for (int attempt = 0; attempt < 20; attempt++) {
        self->udp = nat_udp_new (&uc, uerr, sizeof uerr);
        if (self->udp || errno != EADDRINUSE || !self->config.tunnel_sends)
            break;
        zclock_sleep (50);
    }
    if (!self->udp)
        return s_fail (err, err_size, uerr);
    self->resolver = nat_resolver_new ();
    self->demux = nat_demux_new ();
    self->routing = config->routing;
    self->transit = nat_transit_new (self->routing.transit, (uint32_t) self->routing.transit_packets_per_second,
                                     (uint32_t) self->routing.transit_bytes_per_second);
    self->routed = calloc (BUS_BATCH_MAX, NAT_RELAY_FRAME_MAX);
    assert (self->routed);
    self->handles = nat_handles_new (NAT_HANDLES_DEFAULT, seed ^ 0x5bd1e995);
    self->hs_budget = nat_hs_budget_new (nat_handles_capacity (self->handles), NAT_HS_SOURCE_BURST,
                                         NAT_HS_SOURCE_RATE, NAT_HS_GLOBAL_BURST, NAT_HS_GLOBAL_RATE);
    nat_cookie_path_open (self);
    self->batch = bus_batch_new (0);
    self->ctl = bus_batch_new (BUS_BATCH_HEADER + BUS_BATCH_MAX * BUS_BATCH_STRIDE (sizeof (struct sockaddr_in6)));
    const char *run_dir = bus_service_run_dir (self->svc);
    self->from_crypto = bus_pipe_new (run_dir, PIPE_CRYPTO_NAT, BUS_PIPE_RECEIVER, 0);
    if (!self->from_crypto) {
        snprintf (err, err_size, "cannot bind pipe %s", PIPE_CRYPTO_NAT);
        return -1;
    }
    self->to_crypto = bus_pipe_new (run_dir, PIPE_NAT_CRYPTO, BUS_PIPE_SENDER, 0);
    if (!self->to_crypto) {
        snprintf (err, err_size, "cannot connect pipe %s", PIPE_NAT_CRYPTO);
        return -1;
    }
    //  `bifrostctl tap --pipes` can mirror their headers (bus.pipe.mirror)
    bus_service_add_pipe (self->svc, self->from_crypto);
    bus_service_add_pipe (self->svc, self->to_crypto);
    //  crypto sends its data datagrams itself on our socket (see the header)
    if (self->config.tunnel_sends)
        bus_pipe_share_fd (self->to_crypto, nat_udp_fd (self->udp));

    self->udp_item = (zmq_pollitem_t) { NULL, nat_udp_fd (self->udp), ZMQ_POLLIN, 0 };
    self->resolver_item = (zmq_pollitem_t) { NULL, nat_resolver_fd (self->resolver), ZMQ_POLLIN, 0 };
    if (bus_loop_poller (self->loop, &self->udp_item, nat_datapath_udp_ready, self)
    ||  bus_loop_poller (self->loop, &self->resolver_item, s_resolver_ready, self)
    ||  bus_pipe_attach (self->from_crypto, self->loop, nat_datapath_pipe_ready, self))
        return s_fail (err, err_size, "cannot add the sockets to the loop");
    self->tick_timer = bus_loop_timer (self->loop, NAT_TICK_MS, 0, s_tick, self);
    if (self->tick_timer < 0)
        return s_fail (err, err_size, "cannot add the timer to the loop");
    char nerr [200];
    self->netwatch = nat_netwatch_new (config->device_name, nerr, sizeof nerr);
    if (self->netwatch) {
        self->netwatch_item = (zmq_pollitem_t) { NULL, nat_netwatch_fd (self->netwatch), ZMQ_POLLIN, 0 };
        if (bus_loop_poller (self->loop, &self->netwatch_item, s_netwatch_ready, self))
            nat_netwatch_destroy (&self->netwatch);
    }
    else
        bus_warn ("%s: address changes will not bring direct paths back early", nerr);
    self->relay_ca = config->relay_ca;          //  ours now (nat_relay_path_close frees it)
    self->relay_ca_size = config->relay_ca_size;
    config->relay_ca = NULL;
    memcpy (self->forced, config->force_relay_peers, sizeof self->forced);
    self->forced_count = config->force_relay_count;
    nat_relay_path_open (self);
    s_portmap_open (self);
    self->ice = nat_ice_new (self);
    self->bday = nat_bday_path_new (self);
    if (self->config.bridge_endpoint) {
        char ferr [160];
        self->bridge_fwd = nat_bridge_fwd_new (self->loop, self->config.bridge_endpoint, self->udp, ferr, sizeof ferr);
        if (!self->bridge_fwd)
            return s_fail (err, err_size, ferr);
        bus_info ("bridge flows on this port go to %s", self->config.bridge_endpoint);
    }
    bus_service_handle (self->svc, "nat.status", s_on_status, self);
    bus_service_subscribe (self->svc, "peer.", s_on_peer_event, self);
    bus_service_subscribe (self->svc, "crypto.peer", s_on_crypto_peer, self);
    bus_service_subscribe (self->svc, "route.next", s_on_route_next, self);
    bus_service_on_connect (self->svc, s_on_bus_connect, self);
    bus_info ("listening on %s (port %u, %s%s%s), %u peers", self->config.listen, nat_udp_port (self->udp),
              nat_udp_family (self->udp) == AF_INET6 ? "dual stack" : "IPv4",
              nat_udp_gso (self->udp) ? ", GSO" : "", nat_udp_gro (self->udp) ? ", GRO" : "", count);
    //  Direct peers are dialled at once, not a tick later
    nat_peer_table_tick (self->table, bus_clock_ms ());
    return 0;
}

nat_service_t *
nat_service_new (bus_service_t *svc, nat_service_config_t *config, char *err, size_t err_size)
{
    assert (svc && config);
    nat_service_t *self = (nat_service_t *) calloc (1, sizeof (nat_service_t));
    assert (self);
    self->svc = svc;
    self->loop = bus_service_loop (svc);
    self->tick_timer = -1;
    self->pause = nat_datapath_pause_new (self);
    if (s_open (self, config, err, err_size))
        nat_service_destroy (&self);
    return self;
}

void
nat_service_destroy (nat_service_t **self_p)
{
    assert (self_p);
    nat_service_t *self = *self_p;
    if (!self)
        return;
    if (self->tick_timer >= 0)
        bus_loop_timer_end (self->loop, self->tick_timer);
    bus_pause_destroy (&self->pause);
    nat_portmap_destroy (&self->portmap);       //  the gateway's entry, before the socket closes
    if (self->udp)
        bus_loop_poller_end (self->loop, &self->udp_item);
    if (self->resolver)
        bus_loop_poller_end (self->loop, &self->resolver_item);
    if (self->netwatch)
        bus_loop_poller_end (self->loop, &self->netwatch_item);
    nat_netwatch_destroy (&self->netwatch);
    bus_pipe_destroy (&self->from_crypto);
    bus_pipe_destroy (&self->to_crypto);
    bus_batch_destroy (&self->batch);
    bus_batch_destroy (&self->ctl);
    nat_handles_destroy (&self->handles);
    nat_hs_budget_destroy (&self->hs_budget);
    nat_cookie_path_close (self);
    nat_demux_destroy (&self->demux);
    nat_transit_destroy (&self->transit);
    free (self->routed);
    nat_resolver_destroy (&self->resolver);
    nat_udp_destroy (&self->udp);
    nat_bday_path_destroy (&self->bday);
    nat_bridge_fwd_destroy (&self->bridge_fwd);
    nat_ice_destroy (&self->ice);
    nat_peer_table_destroy (&self->table);
    node_peers_destroy (&self->peers);
    nat_relay_path_close (self);
    free (self->info);
    free (self);
    *self_p = NULL;
}

uint16_t
nat_service_port (nat_service_t *self)
{
    return nat_udp_port (self->udp);
}

//  ---------------------------------------------------------------------------
//  The program (bifrost-nat): the runtime checks the config once, setup gets
//  what was checked.

BUS_SERVICE_PART (nat_service_t, nat_service_config_t, nat_service_check_config,
                  nat_service_new, nat_service_destroy, nat_service_config_clear)

//  None (DESIGN.md), but CAP_NET_BIND_SERVICE while the port to listen on is
//  below 1024 (connection.listen = "*:443" gets through strict firewalls)
static uint64_t
s_def_caps (bus_config_t *config, void *arg)
{
    nat_addr_t addr;
    char err [160];
    if (nat_endpoint_parse_bind (&addr, s_part_checked.connection.listen, err, sizeof err))
        return 0;
    return bus_privs_listen_caps (nat_addr_port (&addr));
}

//  It faces the internet: sandboxed to its own directory (the socket of
//  crypto-nat), so not even the key file is in its reach; the relays' CA was
//  read by the config check
const bus_service_def_t nat_service_def = {
    .name = "nat",
    .summary = "the UDP socket to the internet: moves sealed datagrams between the wire and crypto",
    BUS_SERVICE_PART_HOOKS,
    .seccomp = BUS_SECCOMP_NETLINK | BUS_SECCOMP_WEBSOCKET, //  nat_netwatch; a WSS relay client made at run time
    .caps = s_def_caps,
    .sandbox = bus_service_sandbox_own,
};

//  ---------------------------------------------------------------------------
//  Self test: the config checks, then the whole service in-process on a real
//  broker, with this thread playing crypto (pipes, and a bus service named
//  crypto that counts nat.dial) and a peer (a UDP socket).

#include "bus_testbed.h"
#include "bus_client.h"
#include "nat_cookie_reply.h"
#include <sodium.h>
#include "bus_endpoint.h"
#include <stdatomic.h>

static const char *s_key0 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
static const char *s_key1 = "HxAREhMUFRYXGBkaGxwdHh8AAQIDBAUGBwgJCgsMDQ4=";

//  Loads text as "test.cfg", checks it, and returns the error count; the first
//  error must contain expect (when not NULL).
static size_t
s_check (const char *text, const char *expect, bool verbose)
{
    char err [300];
    bus_config_t *config = bus_config_load_string (text, "test.cfg", err, sizeof err);
    assert (config);
    nat_service_config_t checked;
    nat_service_check_config (config, &checked);
    nat_service_config_clear (&checked);
    size_t count = bus_config_error_count (config);
    if (verbose)
        for (size_t i = 0; i < count; i++)
            printf ("  %s\n", bus_config_error_text (config, i));
    if (expect) {
        assert (count > 0);
        bool found = false;
        for (size_t i = 0; i < count; i++)
            if (strstr (bus_config_error_text (config, i), expect))
                found = true;
        if (!found)
            printf ("expected '%s' in '%s'\n", expect, bus_config_error_text (config, 0));
        assert (found);
    }
    bus_config_destroy (&config);
    return count;
}

static atomic_int s_dials;
static atomic_uint s_dial_index;
//  A registry peer (index 2) with two candidate endpoints, the first dead
static char s_dead [64], s_live [64];
static atomic_int s_dials_dead, s_dials_live, s_dials_out_of_turn;

static void
s_test_on_dial (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    nat_dial_t dial;
    char err [160];
    if (bus_envelope_get_msg (env, &nat_dial_schema, &dial, err, sizeof err) != 0)
        return;
    if (dial.index == 2) {
        //  Candidates in turn, one per attempt (a repeated attempt repeats its
        //  endpoint): attempt 1 the dead one, 2 the live one, 3 the dead one ...
        bool live = streq (dial.endpoint, s_live);
        const char *expect = (dial.attempt - 1) % 2 ? s_live : s_dead;
        if (!streq (dial.endpoint, expect))
            s_dials_out_of_turn++;
        if (live)
            s_dials_live++;
        else
            s_dials_dead++;
        return;
    }
    atomic_store (&s_dial_index, dial.index);
    s_dials++;
}

//  crypto's part of cookie replies: this node's public key (32 x 0x3C)
static void
s_test_on_key (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    uint8_t key [NAT_KEY_SIZE];
    memset (key, 0x3C, sizeof key);
    crypto_key_reply_t reply = { .name = "" };
    nat_key_to_base64 (key, reply.public_key);
    bus_service_reply (svc, env, &crypto_key_reply_schema, &reply);
}

//  An initiation as crypto writes it: sender index, random body, mac1 for the
//  receiver's key, mac2 zero
static void
s_test_initiation (uint8_t msg [WIRE_INITIATION_SIZE], uint32_t sender, const uint8_t receiver [NAT_KEY_SIZE])
{
    memset (msg, 0, WIRE_INITIATION_SIZE);
    msg [0] = WIRE_INITIATION;
    for (int i = 0; i < 4; i++)
        msg [WIRE_INITIATION_SENDER_INDEX + i] = (uint8_t) (sender >> (8 * i));
    randombytes_buf (msg + WIRE_INITIATION_EPHEMERAL, WIRE_INITIATION_MAC1 - WIRE_INITIATION_EPHEMERAL);
    uint8_t key [NAT_HS_KEY_SIZE];
    nat_hs_mac_key ("mac1----", receiver, key);
    crypto_generichash (msg + WIRE_INITIATION_MAC1, NAT_HS_MAC_SIZE, msg, WIRE_INITIATION_MAC1, key, sizeof key);
}

//  Reads nat-crypto until this datagram arrives (true) or timeout_ms passes
static bool
s_test_to_crypto (bus_pipe_t *from_nat, const uint8_t *data, size_t size, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    bus_batch_iter_t iter;
    bus_packet_t pkt;
    while (zclock_mono () < deadline)
        if (bus_pipe_recv (from_nat, &iter, 50) == 1)
            while (bus_batch_iter_next (&iter, &pkt))
                if (pkt.len == size && memcmp (pkt.data, data, size) == 0)
                    return true;
    return false;
}

//  discovery's part: a peer from the registry with two candidates, best first
static void
s_test_announce_carol (bus_service_t *svc, uint64_t epoch, void *arg)
{
    peer_up_t *up = (peer_up_t *) calloc (1, sizeof (peer_up_t));
    assert (up);
    up->index = 2;
    snprintf (up->name, sizeof up->name, "carol");
    snprintf (up->public_key, sizeof up->public_key, "%s", (const char *) arg);
    snprintf (up->endpoints [0], sizeof up->endpoints [0], "%s", s_dead);
    snprintf (up->endpoints [1], sizeof up->endpoints [1], "%s", s_live);
    up->endpoints_count = 2;
    up->direct = true;
    snprintf (up->source, sizeof up->source, "registry");
    bus_service_publish (svc, &peer_up_schema, up);
    free (up);
    //  ICE servers by name: nat resolves them (nat_ice.c)
    discovery_ice_t *ice = (discovery_ice_t *) calloc (1, sizeof (discovery_ice_t));
    assert (ice);
    snprintf (ice->ice_servers, sizeof ice->ice_servers, "[{\"urls\":[\"stun:localhost:3478\"]},"
              "{\"urls\":[\"turn:localhost:3478?transport=udp\"],\"username\":\"1900000000:x\",\"credential\":\"cA==\"}]");
    ice->ttl = 600;
    bus_service_publish (svc, &discovery_ice_schema, ice);
    free (ice);
    //  ICE signals nat must drop and count: from an index it does not know,
    //  from a configured peer (no signalling route), and a malformed one from carol
    discovery_signal_t *signal = (discovery_signal_t *) calloc (1, sizeof (discovery_signal_t));
    assert (signal);
    const struct { uint32_t index; const char *type, *data; } signals [] = {
        { 7, "ice-start", "{\"id\":\"00000000000000a1\"}" },
        { 0, "ice-start", "{\"id\":\"00000000000000a1\"}" },
        { 2, "ice-cand", "{\"id\":\"00000000000000a1\",\"to\":\"00000000000000a2\",\"cand\":\"candidate:x\"}" },
        { 2, "offer", "{}" },         //  not ICE: someone else's, not counted
    };
    for (size_t i = 0; i < sizeof signals / sizeof signals [0]; i++) {
        signal->index = signals [i].index;
        snprintf (signal->type, sizeof signal->type, "%s", signals [i].type);
        snprintf (signal->data, sizeof signal->data, "%s", signals [i].data);
        bus_service_publish (svc, &discovery_signal_schema, signal);
    }
    free (signal);
}


static bool
s_test_wait (atomic_int *value, int at_least, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (atomic_load (value) < at_least && zclock_mono () < deadline)
        zclock_sleep (10);
    return atomic_load (value) >= at_least;
}

//  Reads nat-crypto until a ROUTE for peer 0 arrives: it must point at
//  127.0.0.1:peer_port, and the socket passed with it must be nat's (nat_port).
static void
s_test_route (bus_pipe_t *from_nat, uint16_t peer_port, uint16_t nat_port)
{
    bool found = false;
    for (int attempt = 0; attempt < 20 && !found; attempt++) {
        bus_batch_iter_t iter;
        bus_packet_t pkt;
        if (bus_pipe_recv (from_nat, &iter, 100) != 1)
            continue;
        while (bus_batch_iter_next (&iter, &pkt))
            if ((pkt.flags & PIPE_FLAG_ROUTE) && pkt.tag == 0 && pkt.len) {
                struct sockaddr_in sin;
                assert (pkt.len == sizeof sin);
                memcpy (&sin, pkt.data, sizeof sin);
                assert (sin.sin_family == AF_INET && ntohs (sin.sin_port) == peer_port);
                assert (sin.sin_addr.s_addr == htonl (INADDR_LOOPBACK));
                found = true;
            }
    }
    assert (found);
    int fd = bus_pipe_passed_fd (from_nat);
    assert (fd >= 0);
    struct sockaddr_in bound;
    socklen_t len = sizeof bound;
    assert (getsockname (fd, (struct sockaddr *) &bound, &len) == 0);
    assert (ntohs (bound.sin_port) == nat_port);
}

//  Receives datagrams on udp until one arrives or timeout_ms passes.
static size_t
s_test_udp_recv (nat_udp_t *udp, nat_udp_rx_t **rx, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        size_t n = nat_udp_recv (udp, rx);
        if (n)
            return n;
        zmq_pollitem_t item = { NULL, nat_udp_fd (udp), ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, 50);
    }
    return 0;
}

static nat_status_reply_t *
s_test_status (bus_client_t *client)
{
    nat_status_t request = { .peer = "" };
    char err [200];
    bus_envelope_t *reply = bus_client_request (client, "nat", &nat_status_schema, &request, 2000, err, sizeof err);
    assert (reply);
    nat_status_reply_t *status = (nat_status_reply_t *) zmalloc (sizeof (nat_status_reply_t));
    assert (bus_envelope_get_msg (reply, &nat_status_reply_schema, status, err, sizeof err) == 0);
    bus_envelope_destroy (&reply);
    return status;
}

void
nat_service_test (bool verbose)
{
    if (!verbose)
        bus_log_set_level (BUS_LOG_WARN);

    //  Config: good ones, and every kind of mistake with its file and line
    char text [1024];
    assert (s_check ("", NULL, verbose) == 0);
    assert (s_check ("connection = { listen = \"0.0.0.0:51820\"; keepalive_interval = \"25s\";\n"
                     "  direct_connect = true; connect_timeout = \"30s\"; tunnel_sends = false; };\n"
                     "device = { name = \"x\"; };\n", NULL, verbose) == 0);
    s_check ("connection = {\n listen = \"1.2.3:51820\"; };\n", "test.cfg:2:", verbose);
    //  connection.relay_ca_file: read now (nat is sandboxed later), a PEM certificate
    s_check ("connection = {\n relay_ca_file = \"/nonexistent/ca.pem\"; };\n",
             "test.cfg:2: connection.relay_ca_file: cannot read a PEM CA certificate", verbose);
    s_check ("connection = {\n relay_ca_file = \"/etc/hostname\"; };\n", "cannot read a PEM CA certificate", verbose);
    {
        char ca_path [] = "/tmp/bifrost-nat-ca-XXXXXX";
        int fd = mkstemp (ca_path);
        assert (fd >= 0);
        const char pem [] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert (write (fd, pem, sizeof pem - 1) == (ssize_t) (sizeof pem - 1));
        close (fd);
        char ca_cfg [200];
        snprintf (ca_cfg, sizeof ca_cfg, "connection = { relay_ca_file = \"%s\"; };", ca_path);
        char cerr [300];
        bus_config_t *config = bus_config_load_string (ca_cfg, "test.cfg", cerr, sizeof cerr);
        nat_service_config_t checked;
        nat_service_check_config (config, &checked);
        assert (bus_config_error_count (config) == 0);
        assert (checked.relay_ca && checked.relay_ca_size == sizeof pem - 1 && memcmp (checked.relay_ca, pem, sizeof pem - 1) == 0);
        nat_service_config_clear (&checked);
        assert (checked.relay_ca == NULL);
        bus_config_destroy (&config);
        unlink (ca_path);
    }
    s_check ("connection = {\n listen = \"0.0.0.0:70000\"; };\n", "out of range", verbose);
    s_check ("connection = {\n listen = \"peer.example:1\"; };\n", "test.cfg:2:", verbose);
    s_check ("connection = {\n keepalive_intervall = \"25s\"; };\n", "test.cfg:2:", verbose);
    s_check ("connection = {\n keepalive_interval = \"25 parsecs\"; };\n", "test.cfg:2:", verbose);
    s_check ("connection = {\n direct_connect = \"maybe\"; };\n", "test.cfg:2:", verbose);
    s_check ("connection = {\n tunnel_sends = \"yes\"; };\n", "test.cfg:2:", verbose);
    s_check ("connection = {\n tunnel_sends = 1; };\n", "test.cfg:2:", verbose);
    s_check ("connection = \"fast\";\n", "test.cfg:1:", verbose);
    snprintf (text, sizeof text, "peers = (\n { name = \"a\"; public_key = \"%s\";\n"
              "   endpoint = \"[2001:db8::1:51820\"; } );\n", s_key0);
    s_check (text, "test.cfg:3:", verbose);
    snprintf (text, sizeof text, "peers = (\n { name = \"a\"; public_key = \"%s\";\n"
              "   direct = true; } );\n", s_key0);
    s_check (text, "test.cfg:3:", verbose);
    //  Several mistakes: all of them are reported, not only the first
    assert (s_check ("connection = {\n listen = \"x\";\n keepalive_interval = \"never\";\n"
                     " typo = 1; };\n", NULL, verbose) == 3);

    //  The service, in a private network namespace when allowed
    nat_udp_test_netns ();
    bus_testbed_t *bed = bus_testbed_new ("nat-service-test");
    const char *dir = bus_testbed_dir (bed);

    //  The peer: a UDP socket on loopback
    char err [300];
    nat_udp_config_t pc = { .bind = "127.0.0.1:0" };
    nat_udp_t *remote = nat_udp_new (&pc, err, sizeof err);
    assert (remote);
    snprintf (text, sizeof text,
              "connection = { listen = \"127.0.0.1:0\"; keepalive_interval = \"25s\"; };\n"
              "peers = ( { name = \"alice\"; public_key = \"%s\"; },\n"
              "          { name = \"bob\"; public_key = \"%s\"; endpoint = \"127.0.0.1:%u\"; direct = true; } );\n",
              s_key0, s_key1, nat_udp_port (remote));
    bus_config_t *config = bus_config_load_string (text, "test.cfg", err, sizeof err);
    assert (config);

    //  crypto's side: pipes and a service that counts nat.dial
    bus_pipe_t *from_nat = bus_pipe_new (dir, PIPE_NAT_CRYPTO, BUS_PIPE_RECEIVER, 0);
    bus_pipe_t *to_nat = bus_pipe_new (dir, PIPE_CRYPTO_NAT, BUS_PIPE_SENDER, 0);
    assert (from_nat && to_nat);
    bus_service_t *crypto = bus_service_new ("crypto", NULL, dir);
    assert (crypto);
    bus_service_set_heartbeat (crypto, 100);
    bus_service_handle (crypto, "nat.dial", s_test_on_dial, NULL);
    bus_service_handle (crypto, "crypto.key", s_test_on_key, NULL);
    zactor_t *crypto_actor = zactor_new (bus_service_actor, crypto);

    bus_service_t *svc = bus_service_new ("nat", NULL, dir);
    assert (svc);
    bus_service_set_heartbeat (svc, 100);
    bus_service_set_config (svc, config);
    nat_service_config_t checked;
    nat_service_check_config (config, &checked);
    assert (bus_config_error_count (config) == 0);
    nat_service_t *nat = nat_service_new (svc, &checked, err, sizeof err);
    assert (checked.peers == NULL);         //  taken
    if (!nat)
        printf ("nat_service_new: %s\n", err);
    assert (nat);
    uint16_t port = nat_service_port (nat);
    assert (port > 0);
    zactor_t *nat_actor = zactor_new (bus_service_actor, svc);
    assert (nat_actor);

    //  bob is direct: crypto is asked to dial it (again when crypto joins late)
    assert (s_test_wait (&s_dials, 1, 5000));
    assert (atomic_load (&s_dial_index) == 1);

    //  A datagram from the "peer" reaches crypto with a handle
    nat_addr_t nat_addr;
    assert (nat_addr_set_ip (&nat_addr, "127.0.0.1", port) == 0);
    uint8_t packet [64] = { 4, 0, 0, 0, 7, 0, 0, 0 };
    for (size_t i = 16; i < sizeof packet; i++)
        packet [i] = (uint8_t) i;
    nat_udp_tx_t tx = { packet, sizeof packet, &nat_addr };
    bus_batch_iter_t iter;
    bus_packet_t pkt;
    int rc = 0;
    //  nat-crypto links on its first send after the receiver listens: send until it arrives
    for (int attempt = 0; attempt < 50 && rc != 1; attempt++) {
        assert (nat_udp_send (remote, &tx, 1) == 1);
        rc = bus_pipe_recv (from_nat, &iter, 100);
    }
    assert (rc == 1);
    assert (bus_batch_iter_next (&iter, &pkt));
    assert (pkt.len == sizeof packet && memcmp (pkt.data, packet, sizeof packet) == 0);
    uint32_t handle = pkt.tag;
    assert (handle != NAT_HANDLE_NONE);

    //  Malformed datagrams never reach crypto
    uint8_t junk [40] = { 9, 0, 0, 0 };
    nat_udp_tx_t bad [3] = { { junk, sizeof junk, &nat_addr }, { junk, 3, &nat_addr },
                             { packet, 20, &nat_addr } };
    assert (nat_udp_send (remote, bad, 3) == 3);

    //  crypto confirms alice at that handle, then sends her a packet: it arrives
    //  at the peer's socket. Packets for bob go to his configured endpoint too.
    bus_batch_t *batch = bus_batch_new (0);
    uint8_t reply [100];
    memset (reply, 0xAB, sizeof reply);
    uint32_t stale = handle + (1u << 10);
    //  Our sender may not be linked yet (a failed send drops the batch)
    rc = -1;
    for (int attempt = 0; attempt < 100 && rc != 0; attempt++) {
        if (attempt)
            zclock_sleep (20);
        assert (bus_batch_add (batch, 0, reply, 30) == 0);     //  alice: no endpoint yet
        assert (bus_batch_add (batch, 0, &handle, sizeof handle) == 0);
        bus_batch_set_flags (batch, PIPE_FLAG_ENDPOINT);
        assert (bus_batch_add (batch, 0, reply, sizeof reply) == 0);
        assert (bus_batch_add (batch, 1, reply, 50) == 0);
        assert (bus_batch_add (batch, 7, reply, 50) == 0);     //  no such peer
        assert (bus_batch_add (batch, 1, &stale, sizeof stale) == 0);
        bus_batch_set_flags (batch, PIPE_FLAG_ENDPOINT);       //  refused
        rc = bus_pipe_send (to_nat, batch);
    }
    assert (rc == 0);
    nat_udp_rx_t *rx;
    size_t got = 0, n;
    size_t sizes [2] = { 0 };
    while (got < 2 && (n = s_test_udp_recv (remote, &rx, 3000)) > 0)
        for (size_t i = 0; i < n; i++, got++) {
            if (got < 2)
                sizes [got] = rx [i].size;
            assert (nat_addr_eq (rx [i].from, &nat_addr));
        }
    assert (got == 2 && sizes [0] == 100 && sizes [1] == 50);

    //  And nat.status says so
    bus_client_t *client = bus_testbed_client (bed, "nat-test");
    nat_status_reply_t *status = NULL;
    //  The junk may still be on its way: ask until the drops are counted
    for (int attempt = 0; attempt < 50; attempt++) {
        free (status);
        status = s_test_status (client);
        if (status->drop_bad_type + status->drop_too_short >= 3)
            break;
        zclock_sleep (20);
    }
    if (verbose)
        printf ("nat_service: rx %" PRIu64 " tx %" PRIu64 " to_crypto %" PRIu64 " from_crypto %" PRIu64 "\n",
                status->rx_datagrams, status->tx_datagrams, status->to_crypto, status->from_crypto);
    assert (status->listen_port == port);
    assert (status->drop_bad_type == 1 && status->drop_too_short == 2);
    assert (status->drop_bad_peer == 1 && status->drop_stale_handle == 1);
    assert (status->drop_no_endpoint == 1);
    assert (status->tx_datagrams == 2 && status->from_crypto == 6);
    assert (status->to_crypto + status->drop_pipe == status->rx_datagrams - 3);
    assert (status->peers_count == 2);
    assert (streq (status->peers [0].name, "alice") && streq (status->peers [0].state, "up"));
    assert (status->peers [0].tx_packets == 1 && status->peers [0].tx_bytes == 100);
    char expect [NAT_ADDR_TEXT_MAX];
    nat_addr_t remote_addr;
    assert (nat_addr_set_ip (&remote_addr, "127.0.0.1", nat_udp_port (remote)) == 0);
    nat_addr_format (&remote_addr, expect, sizeof expect);
    assert (streq (status->peers [0].endpoint, expect));
    assert (streq (status->peers [1].name, "bob") && streq (status->peers [1].state, "connecting"));
    assert (status->peers [1].direct && status->peers [1].tx_packets == 1);
    assert (status->tunnel_sends && status->routes >= 1);
    assert (streq (status->port_mapping, "off") && status->port_mapping_lifetime_left == -1);
    free (status);

    //  alice is up: crypto got our socket with the first batch, and a ROUTE to
    //  her endpoint in the socket's family (IPv4 here)
    s_test_route (from_nat, nat_udp_port (remote), port);
    //  crypto reports what it sent itself: alice's counters grow; a report of
    //  the wrong length is refused and counted
    assert (bus_batch_add (batch, 0, (uint64_t [2]) { 5, 600 }, 16) == 0);
    bus_batch_set_flags (batch, PIPE_FLAG_SENT);
    assert (bus_batch_add (batch, 0, reply, 3) == 0);
    bus_batch_set_flags (batch, PIPE_FLAG_SENT);
    assert (bus_pipe_send (to_nat, batch) == 0);
    for (int attempt = 0; attempt < 50; attempt++) {
        status = s_test_status (client);
        if (status->tunnel_datagrams == 5 && status->bad_reports == 1)
            break;
        free (status);
        status = NULL;
        zclock_sleep (20);
    }
    assert (status && status->tunnel_bytes == 600 && status->tx_datagrams == 2);
    assert (status->peers [0].tx_packets == 6 && status->peers [0].tx_bytes == 700);
    free (status);
    //  crypto restarts: the new one gets the socket and every route again with
    //  nat's next batch
    bus_pipe_destroy (&from_nat);
    from_nat = bus_pipe_new (dir, PIPE_NAT_CRYPTO, BUS_PIPE_RECEIVER, 0);
    assert (from_nat);
    for (int attempt = 0; attempt < 50 && bus_pipe_passed_fd (from_nat) < 0; attempt++) {
        assert (nat_udp_send (remote, &tx, 1) == 1);
        bus_pipe_recv (from_nat, &iter, 100);
    }
    s_test_route (from_nat, nat_udp_port (remote), port);

    //  A registry peer with two candidates, the first one dead: nat dials them in
    //  turn, the live one a backoff step (1 s) after the dead one
    uint8_t carol_key [NAT_KEY_SIZE];
    char carol [NAT_KEY_BASE64_SIZE];
    memset (carol_key, 0x5C, sizeof carol_key);
    nat_key_to_base64 (carol_key, carol);
    snprintf (s_dead, sizeof s_dead, "127.0.0.1:9");
    snprintf (s_live, sizeof s_live, "127.0.0.1:%u", nat_udp_port (remote));
    bus_service_t *discovery = bus_service_new ("discovery", NULL, dir);
    assert (discovery);
    bus_service_set_heartbeat (discovery, 100);
    bus_service_on_connect (discovery, s_test_announce_carol, carol);
    zactor_t *discovery_actor = zactor_new (bus_service_actor, discovery);
    assert (s_test_wait (&s_dials_live, 1, 5000));
    assert (atomic_load (&s_dials_dead) >= 1);
    assert (atomic_load (&s_dials_out_of_turn) == 0);
    //  The ICE servers it gave by name are in use, resolved, and its ICE
    //  signals were dropped and counted
    for (int attempt = 0; attempt < 100; attempt++) {
        status = s_test_status (client);
        //  (the announcement is repeated on every bus (re)connection)
        bool resolved = status->ice_turn_servers == 1 && status->ice_signals_rx >= 3;
        if (resolved && verbose)
            printf ("nat_service: ICE STUN %s\n", status->ice_stun);
        if (resolved) {
            assert (streq (status->ice_stun, "127.0.0.1:3478") || streq (status->ice_stun, "[::1]:3478"));
            assert (status->ice_signals_dropped >= 2 && status->ice_signals_bad >= 1 && status->ice_sessions == 0);
        }
        free (status);
        if (resolved)
            break;
        zclock_sleep (20);
        assert (attempt < 99);
    }
    zactor_destroy (&discovery_actor);
    bus_service_destroy (&discovery);

    //  A packet from alice's endpoint now counts as hers (so did the ones
    //  that relinked crypto above)
    status = s_test_status (client);
    uint64_t alice_rx = status->peers [0].rx_packets;
    free (status);
    assert (nat_udp_send (remote, &tx, 1) == 1);
    assert (bus_pipe_recv (from_nat, &iter, 2000) == 1);
    for (int attempt = 0; attempt < 50; attempt++) {
        status = s_test_status (client);
        bool counted = status->peers [0].rx_packets == alice_rx + 1;
        free (status);
        if (counted)
            break;
        zclock_sleep (20);
        assert (attempt < 49);
    }

    //  Cookie replies (nat_cookie_path.c). nat learned our public key from
    //  crypto.key: an initiation whose mac1 is not for it never reaches crypto
    uint8_t our_key [NAT_KEY_SIZE], alice_key [NAT_KEY_SIZE];
    memset (our_key, 0x3C, sizeof our_key);
    assert (nat_key_from_base64 (s_key0, alice_key, err, sizeof err) == 0);
    for (int attempt = 0; attempt < 100; attempt++) {
        status = s_test_status (client);
        bool known = status->mac1_checked;
        free (status);
        if (known)
            break;
        zclock_sleep (20);
        assert (attempt < 99);
    }
    uint8_t init [64][WIRE_INITIATION_SIZE];
    nat_udp_tx_t itx [64];
    s_test_initiation (init [0], 1000, alice_key);                 //  mac1 for another key
    itx [0] = (nat_udp_tx_t) { init [0], WIRE_INITIATION_SIZE, &nat_addr };
    assert (nat_udp_send (remote, itx, 1) == 1);
    //  60 with a valid mac1 at once: above 50 in a second nat is under load and
    //  answers the others with cookie replies (sealed with our key and their mac1)
    for (int i = 0; i < 60; i++) {
        s_test_initiation (init [i], 2000 + i, our_key);
        itx [i] = (nat_udp_tx_t) { init [i], WIRE_INITIATION_SIZE, &nat_addr };
    }
    assert (nat_udp_send (remote, itx, 60) == 60);
    uint8_t reply_key [NAT_HS_KEY_SIZE], cookie [NAT_HS_MAC_SIZE];
    nat_hs_mac_key ("cookie--", our_key, reply_key);
    size_t cookies = 0, opened = 0;
    while ((n = s_test_udp_recv (remote, &rx, cookies >= 10 ? 200 : 3000)) > 0)
        for (size_t i = 0; i < n; i++) {
            uint32_t index;
            if (nat_cookie_reply_receiver (rx [i].data, rx [i].size, &index))
                continue;               //  not a cookie reply
            cookies++;
            assert (index >= 2050 && index < 2060);                 //  the 51st and after
            opened += nat_cookie_reply_read (rx [i].data, rx [i].size, reply_key, init [index - 2000] + WIRE_INITIATION_MAC1, cookie) == 0;
        }
    assert (cookies == 10 && opened == 10);
    //  An initiation with mac2 under that cookie reaches crypto (after a token
    //  of its source's budget came back: 5 a second)
    zclock_sleep (250);
    s_test_initiation (init [0], 3000, our_key);
    nat_hs_mac2 (cookie, init [0], WIRE_INITIATION_MAC2, init [0] + WIRE_INITIATION_MAC2);
    itx [0] = (nat_udp_tx_t) { init [0], WIRE_INITIATION_SIZE, &nat_addr };
    assert (nat_udp_send (remote, itx, 1) == 1);
    assert (s_test_to_crypto (from_nat, init [0], WIRE_INITIATION_SIZE, 2000));
    status = s_test_status (client);
    if (verbose)
        printf ("nat_service: cookies_sent %" PRIu64 " initiations_cookie %" PRIu64 " bad_mac1 %" PRIu64 "\n",
                status->cookies_sent, status->initiations_cookie, status->initiations_bad_mac1);
    assert (status->initiations_bad_mac1 == 1 && status->cookies_sent == 10);
    assert (status->initiations_cookie == 1 && status->under_load);
    free (status);

    //  The initiator's side: crypto's initiation to alice (at the remote socket)
    //  is answered with a cookie reply; nat keeps it, never passes it to crypto,
    //  and writes mac2 into the next initiation to alice
    uint8_t out [WIRE_INITIATION_SIZE], zero [NAT_HS_MAC_SIZE] = { 0 };
    uint8_t sent [WIRE_INITIATION_SIZE];
    for (int round = 0; round < 2; round++) {
        s_test_initiation (out, 4000 + round, alice_key);
        assert (bus_batch_add (batch, 0, out, sizeof out) == 0);
        assert (bus_pipe_send (to_nat, batch) == 0);
        bool arrived = false;
        while (!arrived && (n = s_test_udp_recv (remote, &rx, 2000)) > 0)
            for (size_t i = 0; i < n; i++)
                if (rx [i].size == WIRE_INITIATION_SIZE && memcmp (rx [i].data, out, WIRE_INITIATION_MAC2) == 0) {
                    memcpy (sent, rx [i].data, sizeof sent);
                    arrived = true;
                }
        assert (arrived);
        if (round == 0) {
            assert (memcmp (sent + WIRE_INITIATION_MAC2, zero, sizeof zero) == 0);
            uint8_t alice_reply_key [NAT_HS_KEY_SIZE], cookie_reply [WIRE_COOKIE_SIZE];
            nat_hs_mac_key ("cookie--", alice_key, alice_reply_key);
            memset (cookie, 0x77, sizeof cookie);
            nat_cookie_reply_write (cookie_reply, 4000, alice_reply_key, sent + WIRE_INITIATION_MAC1, cookie);
            itx [0] = (nat_udp_tx_t) { cookie_reply, sizeof cookie_reply, &nat_addr };
            assert (nat_udp_send (remote, itx, 1) == 1);
            for (int attempt = 0; attempt < 100; attempt++) {
                status = s_test_status (client);
                bool kept = status->cookies_received == 1;
                free (status);
                if (kept)
                    break;
                zclock_sleep (20);
                assert (attempt < 99);
            }
        }
        else
            assert (nat_hs_mac2_ok (cookie, sent, WIRE_INITIATION_MAC2));
    }
    status = s_test_status (client);
    assert (status->cookies_received == 1 && status->initiations_mac2 == 1 && status->cookies_refused == 0);
    free (status);

    bus_client_destroy (&client);
    bus_batch_destroy (&batch);
    zactor_destroy (&nat_actor);
    nat_service_destroy (&nat);
    assert (nat == NULL);
    bus_service_destroy (&svc);
    bus_config_destroy (&config);
    zactor_destroy (&crypto_actor);
    bus_service_destroy (&crypto);
    bus_pipe_destroy (&from_nat);
    bus_pipe_destroy (&to_nat);
    nat_udp_destroy (&remote);
    //  Nothing of ours is left in the run directory: the broker's sockets and
    //  the receivers' directories (their sockets went with their pipes) are
    //  removed with the testbed, and then the directory itself is empty
    char run_dir [BUS_PATH_MAX];
    snprintf (run_dir, sizeof run_dir, "%s", dir);
    bus_testbed_destroy (&bed);
    assert (access (run_dir, F_OK) == -1);
}
