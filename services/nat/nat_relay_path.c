/*  nat_relay_path: the relayed path through nat, beside the direct one.

    A peer is reached through a relay while no direct path to it is confirmed:
    its endpoint is then the pseudo-address "through the relay to peer X"
    (nat_addr_set_relay), learnt like any endpoint (crypto confirms the handle
    of an authenticated datagram that came through the relay). So the peer
    table, the handles and the endpoint logic need no second code path; this file
    only unwraps relayed datagrams on the way in, frames them on the way out,
    keeps the registration at the relays fresh, and starts the handshake through
    the relay for a peer nat would not dial itself.

    Which path wins: every handshake initiation to a peer that is not up goes to
    the address being dialled AND through the relay, and the first answer wins;
    a direct path is usually the faster one when it exists at all (one hop, not
    two). Afterwards a relayed datagram never moves a peer off a direct path that
    spoke within keepalive + 5 s; a direct one always moves it off the relay,
    except for a peer kept on the relay (connection.force_relay). */
#include "nat_service_priv.h"
#include "nat_ice.h"
#include "bus_log.h"
#include "relay_stream.h"
#include "nat_relay_wss.h"
#include "nat_mapping.h"
#include "schemas/wire.h"

#include <arpa/inet.h>

#include <assert.h>
#include <errno.h>
#include <ifaddrs.h>
#include <sys/random.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

#define S_DIAL_MIN_MS   1000
#define S_DIAL_MAX_MS   8000
#define S_TCP_AFTER     2           //  REGISTERs over UDP unanswered before TCP is tried
#define S_TCP_RETRY_MS  1000        //  then 2 s, 4 s ... 30 s between connection attempts
#define S_TCP_RETRY_MAX 30000
#define S_PROBE_FIRST_MS 500        //  a relayed peer's direct candidates: after 0.5 s, 1 s, 2 s ... 60 s
#define S_PROBE_MAX_MS  60000
#define S_UDP_PROBE_MS  1000        //  on TCP, a REGISTER over UDP after 1 s, 2 s, 4 s, then every 5 s
#define S_UDP_PROBE_MAX 5000
#define S_WSS_AFTER_MS  2000        //  a TCP connect pending this long counts as failed: WSS is tried

//  ---------------------------------------------------------------------------
//  TCP to a relay

static void
s_tcp_close (nat_service_t *self, size_t i)
{
    nat_relay_tcp_t *tcp = &self->tcp [i];
    if (tcp->item.fd >= 0) {
        bus_loop_poller_end (self->loop, &tcp->item);
        close (tcp->item.fd);
        if (tcp->connected)
            bus_info ("relay %s: TCP connection closed", nat_relay_server (self->relay, i)
                      ? nat_relay_server (self->relay, i)->name : "?");
    }
    tcp->item.fd = -1;
    tcp->connected = false;
    relay_stream_destroy (&tcp->in);
}

static int s_tcp_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg);

static void
s_tcp_open (nat_service_t *self, size_t i, int64_t now)
{
    nat_relay_server_t *server = nat_relay_server (self->relay, i);
    nat_relay_tcp_t *tcp = &self->tcp [i];
    const nat_addr_t *addr = &server->endpoint.addr;
    tcp->attempt_ms = now;
    tcp->attempts++;
    int fd = socket (nat_addr_family (addr), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    int one = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect (fd, &addr->sa, addr->len) && errno != EINPROGRESS) {
        close (fd);
        return;
    }
    tcp->owner = self;
    tcp->server = i;
    tcp->item = (zmq_pollitem_t) { NULL, fd, ZMQ_POLLOUT, 0 };
    tcp->in = relay_stream_new ();
    bus_loop_poller (self->loop, &tcp->item, s_tcp_ready, tcp);
    self->counters.relay_tcp_connects++;
    bus_info ("relay %s: no answer over UDP, trying TCP", server->name);
}

static int
s_tcp_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    nat_relay_tcp_t *tcp = (nat_relay_tcp_t *) arg;
    nat_service_t *self = tcp->owner;
    nat_relay_server_t *server = nat_relay_server (self->relay, tcp->server);
    if (!server) {
        s_tcp_close (self, tcp->server);
        return 0;
    }
    if (!tcp->connected) {
        int error = 0;
        socklen_t len = sizeof error;
        getsockopt (tcp->item.fd, SOL_SOCKET, SO_ERROR, &error, &len);
        if (error || (item->revents & ZMQ_POLLERR)) {
            s_tcp_close (self, tcp->server);
            return 0;
        }
        tcp->connected = true;
        tcp->attempts = 0;
        tcp->udp_probes = 0;
        tcp->udp_probe_ms = bus_clock_ms () + S_UDP_PROBE_MS;
        bus_loop_poller_end (loop, &tcp->item);
        tcp->item.events = ZMQ_POLLIN;
        bus_loop_poller (loop, &tcp->item, s_tcp_ready, tcp);
        bus_info ("relay %s: connected over TCP", server->name);
        nat_relay_register_now (self->relay, tcp->server);
        nat_relay_path_tick (self, bus_clock_ms ());
        return 0;
    }
    int64_t now = bus_clock_ms ();
    nat_ingest_t state = { NAT_HANDLE_NONE, NULL, true };
    nat_addr_t from = server->endpoint.addr;
    tcp->reading = true;
    for (int round = 0; round < NAT_ROUNDS; round++) {
        ssize_t n = relay_stream_read (tcp->in, tcp->item.fd);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            s_tcp_close (self, tcp->server);
            break;
        }
        const uint8_t *msg;
        size_t size;
        int rc;
        while ((rc = relay_stream_next (tcp->in, &msg, &size)) == 1) {
            self->counters.relay_tcp_rx++;
            nat_datapath_ingest (self, (uint8_t *) msg, size, &from, now, &state);
        }
        if (rc < 0) {
            bus_warn ("relay %s: broken TCP stream", server->name);
            s_tcp_close (self, tcp->server);
            break;
        }
        if (n < 0)
            break;
    }
    tcp->reading = false;
    nat_datapath_ingest_end (self, &state);
    return 0;
}

static bool s_wss_send (nat_service_t *self, size_t i, const uint8_t *msg, size_t size);

//  Sends one message to relay i over its TCP connection, else over its
//  WebSocket; false when it has neither (then it goes by UDP)
static bool
s_tcp_send (nat_service_t *self, size_t i, const uint8_t *msg, size_t size)
{
    nat_relay_tcp_t *tcp = &self->tcp [i];
    if (!tcp->connected)
        return s_wss_send (self, i, msg, size);
    if (relay_stream_send (tcp->item.fd, msg, size) == 0)
        self->counters.relay_tcp_tx++;
    else
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        s_tcp_close (self, i);
    return true;                    //  a full socket drops it, like a datagram
}

//  On TCP, whether this REGISTER should go over UDP instead: a network that
//  blocked UDP for a while (or a start so busy that two answers came late)
//  must not keep a node on TCP for good. Only the REGISTER goes over UDP, not
//  both, so the relay is not told the TCP address after the UDP one; if UDP is
//  still blocked, the next refresh (500 ms) goes over TCP again.
static bool
s_udp_probe_due (nat_service_t *self, size_t i, int64_t now)
{
    nat_relay_tcp_t *tcp = &self->tcp [i];
    if (!tcp->connected || now < tcp->udp_probe_ms)
        return false;
    int64_t wait = (int64_t) S_UDP_PROBE_MS << (tcp->udp_probes < 6 ? tcp->udp_probes + 1 : 6);
    tcp->udp_probe_ms = now + (wait < S_UDP_PROBE_MAX ? wait : S_UDP_PROBE_MAX);
    tcp->udp_probes++;
    return true;
}

//  A relay that does not answer over UDP is tried over TCP, with backoff
static void
s_tcp_check (nat_service_t *self, int64_t now)
{
    for (size_t i = 0; i < nat_relay_count (self->relay); i++) {
        nat_relay_server_t *server = nat_relay_server (self->relay, i);
        nat_relay_tcp_t *tcp = &self->tcp [i];
        if (server->up || !server->resolved || tcp->item.fd >= 0 || server->registers < S_TCP_AFTER)
            continue;
        int64_t wait = tcp->attempts ? (int64_t) S_TCP_RETRY_MS << (tcp->attempts < 6 ? tcp->attempts - 1 : 5) : 0;
        if (wait > S_TCP_RETRY_MAX)
            wait = S_TCP_RETRY_MAX;
        if (tcp->attempts && now - tcp->attempt_ms < wait)
            continue;
        s_tcp_open (self, i, now);
    }
}

//  ---------------------------------------------------------------------------
//  WebSocket over TLS to a relay (nat_relay_wss): the last way, for networks
//  that let out only HTTPS. Tried when REGISTERs over UDP go unanswered and
//  TCP to the relay's port failed or has not connected within S_WSS_AFTER_MS,
//  and the registry names a WSS port; with backoff like TCP. While it is open
//  (and TCP is not), everything for that relay goes over it.

static void
s_wss_event (void *arg, size_t i, nat_relay_wss_event_t event, const uint8_t *msg, size_t size)
{
    nat_service_t *self = (nat_service_t *) arg;
    nat_relay_server_t *server = nat_relay_server (self->relay, i);
    if (event == NAT_RELAY_WSS_DONE) {
        nat_datapath_ingest_end (self, &self->wss_ingest);
        self->wss_ingest = (nat_ingest_t) { NAT_HANDLE_NONE, NULL, true };
        return;
    }
    if (!server)
        return;
    if (event == NAT_RELAY_WSS_OPEN) {
        self->wss_state [i].attempts = 0;
        bus_info ("relay %s: connected over WebSocket over TLS (port %u)", server->name, self->relay_tls_port);
        nat_relay_register_now (self->relay, i);
        nat_relay_path_tick (self, bus_clock_ms ());
    }
    else
    if (event == NAT_RELAY_WSS_MESSAGE) {
        nat_addr_t from = server->endpoint.addr;
        self->counters.relay_wss_rx++;
        nat_datapath_ingest (self, (uint8_t *) msg, size, &from, bus_clock_ms (), &self->wss_ingest);
    }
    else
    if (event == NAT_RELAY_WSS_CLOSED) {
        bool was_open = self->wss_state [i].attempts == 0;
        if (was_open) {
            bus_info ("relay %s: WebSocket over TLS closed (%s)", server->name, (const char *) msg);
            self->wss_state [i].retry = true;
        }
        else
            bus_warn ("relay %s: WebSocket over TLS failed: %s", server->name, (const char *) msg);
    }
}

static bool
s_wss_send (nat_service_t *self, size_t i, const uint8_t *msg, size_t size)
{
    if (!self->wss || !nat_relay_wss_open_now (self->wss, i))
        return false;
    if (nat_relay_wss_send (self->wss, i, msg, size) == 0)
        self->counters.relay_wss_tx++;
    return true;                    //  a full queue drops it, like a datagram
}

static void
s_wss_open (nat_service_t *self, size_t i, int64_t now)
{
    nat_relay_server_t *server = nat_relay_server (self->relay, i);
    nat_relay_wss_state_t *state = &self->wss_state [i];
    if (!self->wss) {
        char err [200];
        self->wss = nat_relay_wss_new (self->loop, self->relay_ca, self->relay_ca_size, s_wss_event, self,
                                       err, sizeof err);
        if (!self->wss) {
            bus_warn ("relay %s: %s", server->name, err);
            state->attempt_ms = now;
            state->attempts++;
            return;
        }
    }
    char address [INET6_ADDRSTRLEN] = "";
    const nat_addr_t *addr = &server->endpoint.addr;
    if (nat_addr_family (addr) == AF_INET)
        inet_ntop (AF_INET, &addr->in4.sin_addr, address, sizeof address);
    else
        inet_ntop (AF_INET6, &addr->in6.sin6_addr, address, sizeof address);
    state->attempt_ms = now;
    state->attempts++;
    state->retry = false;
    bus_info ("relay %s: no answer over UDP nor TCP, trying wss://%s:%u%s", server->name,
              server->endpoint.is_name ? server->endpoint.host : address, self->relay_tls_port, NAT_RELAY_WSS_PATH);
    nat_relay_wss_open (self->wss, i, address, server->endpoint.is_name ? server->endpoint.host : address,
                        self->relay_tls_port);
}

static void
s_wss_check (nat_service_t *self, int64_t now)
{
    if (!self->relay_tls_port)
        return;
    for (size_t i = 0; i < nat_relay_count (self->relay); i++) {
        nat_relay_server_t *server = nat_relay_server (self->relay, i);
        nat_relay_tcp_t *tcp = &self->tcp [i];
        nat_relay_wss_state_t *state = &self->wss_state [i];
        if (!server->resolved || tcp->connected || (self->wss && nat_relay_wss_active (self->wss, i)))
            continue;
        //  It was open and closed (the worker went): at once
        if (state->retry) {
            s_wss_open (self, i, now);
            continue;
        }
        if (server->up || server->registers < S_TCP_AFTER || tcp->attempts == 0)
            continue;
        bool tcp_failed = tcp->item.fd < 0 || now - tcp->attempt_ms >= S_WSS_AFTER_MS;
        if (!tcp_failed)
            continue;
        int64_t wait = state->attempts ? (int64_t) S_TCP_RETRY_MS << (state->attempts < 6 ? state->attempts - 1 : 5) : 0;
        if (wait > S_TCP_RETRY_MAX)
            wait = S_TCP_RETRY_MAX;
        if (state->attempts && now - state->attempt_ms < wait)
            continue;
        s_wss_open (self, i, now);
    }
}

void
nat_relay_path_wss_stats (nat_service_t *self, uint64_t *opens, uint64_t *opened, uint64_t *failed)
{
    const nat_relay_wss_stats_t *s = self->wss ? nat_relay_wss_stats (self->wss) : NULL;
    *opens = s ? s->opens : 0;
    *opened = s ? s->opened : 0;
    *failed = s ? s->failed : 0;
}

static void
s_wss_close_all (nat_service_t *self)
{
    for (size_t i = 0; i < NAT_RELAY_SERVERS_MAX; i++) {
        if (self->wss)
            nat_relay_wss_close (self->wss, i);
        self->wss_state [i] = (nat_relay_wss_state_t) { -1, 0, false };
    }
}

//  ---------------------------------------------------------------------------
//  relay.servers from discovery

static void
s_on_servers (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    nat_service_t *self = (nat_service_t *) arg;
    relay_servers_t *msg = (relay_servers_t *) calloc (1, sizeof *msg);
    assert (msg);
    char err [200];
    if (bus_envelope_get_msg (env, &relay_servers_schema, msg, err, sizeof err)) {
        bus_warn ("relay.servers: %s", err);
        free (msg);
        return;
    }
    const char *servers [NAT_RELAY_SERVERS_MAX];
    size_t count = 0;
    for (uint32_t i = 0; i < msg->servers_count && count < NAT_RELAY_SERVERS_MAX; i++)
        if (*msg->servers [i])
            servers [count++] = msg->servers [i];
    if (!self->config.relay_enabled)
        count = 0;
    size_t before = nat_relay_count (self->relay);
    //  The same relays (a renewed credential): keep the TCP connections
    bool same = count == before;
    for (size_t i = 0; same && i < count; i++) {
        nat_relay_server_t *server = nat_relay_server (self->relay, i);
        char text [NAT_RELAY_NAME_MAX + NAT_ENDPOINT_TEXT_MAX + 2];
        snprintf (text, sizeof text, "%s@", server->name);
        nat_endpoint_format (&server->endpoint, text + strlen (text), sizeof text - strlen (text));
        same = streq (text, servers [i]);
    }
    if (nat_relay_configure (self->relay, servers, count, msg->peer, msg->network, msg->credential,
                             err, sizeof err))
        bus_warn ("relay.servers refused: %s", err);
    else {
        if (!same) {
            for (size_t i = 0; i < NAT_RELAY_SERVERS_MAX; i++)
                s_tcp_close (self, i);
            nat_mapping_clear (self->mapping);
        }
        if (!same || msg->tls_port != self->relay_tls_port)
            s_wss_close_all (self);
        self->relay_tls_port = (uint16_t) (count ? msg->tls_port : 0);
        if (nat_relay_count (self->relay) != before)
            bus_info ("%zu relay%s%s", count, count == 1 ? "" : "s",
                      self->config.relay_enabled ? "" : " (connection.relay_enabled = false: none used)");
        for (size_t i = 0; i < nat_relay_count (self->relay); i++) {
            nat_relay_server_t *server = nat_relay_server (self->relay, i);
            if (!server->resolved
            &&  nat_resolver_request (self->resolver, server->endpoint.host, server->endpoint.port,
                                      NAT_RELAY_COOKIE + i))
                bus_warn ("relay %s: cannot resolve %s now", server->name, server->endpoint.host);
        }
        //  Register at once, not a tick later
        nat_relay_path_tick (self, bus_clock_ms ());
    }
    free (msg);
}

void
nat_relay_path_resolved (nat_service_t *self, uint64_t cookie, const nat_addr_t *addrs, size_t count)
{
    size_t i = (size_t) (cookie - NAT_RELAY_COOKIE);
    nat_relay_server_t *server = nat_relay_server (self->relay, i);
    if (!server)
        return;
    if (count == 0)
        bus_warn ("relay %s: cannot resolve %s", server->name, server->endpoint.host);
    nat_relay_resolved (self->relay, i, addrs, count);
}

void
nat_relay_path_open (nat_service_t *self)
{
    self->relay = nat_relay_new ();
    self->frames = calloc (BUS_BATCH_MAX, NAT_RELAY_FRAME_MAX);
    assert (self->frames);
    for (size_t i = 0; i < NAT_RELAY_SERVERS_MAX; i++) {
        self->tcp [i].item.fd = -1;
        self->tcp [i].attempt_ms = -1;
        self->wss_state [i].attempt_ms = -1;
    }
    self->wss_ingest = (nat_ingest_t) { NAT_HANDLE_NONE, NULL, true };
    self->mapping = nat_mapping_new ();
    bus_service_subscribe (self->svc, "relay.servers", s_on_servers, self);
}

void
nat_relay_path_close (nat_service_t *self)
{
    for (size_t i = 0; i < NAT_RELAY_SERVERS_MAX; i++)
        s_tcp_close (self, i);
    nat_relay_wss_destroy (&self->wss);
    free (self->relay_ca);
    self->relay_ca = NULL;
    nat_relay_destroy (&self->relay);
    nat_mapping_destroy (&self->mapping);
    free (self->frames);
    self->frames = NULL;
}

bool
nat_relay_path_forced (nat_service_t *self, const char *name)
{
    if (self->config.force_relay)
        return true;
    for (size_t i = 0; i < self->forced_count; i++)
        if (streq (self->forced [i], name))
            return true;
    return false;
}

//  ---------------------------------------------------------------------------
//  Timers: the REGISTER refresh, and dials through the relay

//  A handshake through the relay now: a peer nat does not dial itself is dialled
//  at the relay; for one it dials, the dial goes to its direct candidate as
//  before, and the datapath copies the initiation through the relay
static void
s_dial_through_relay (nat_service_t *self, nat_peer_t *peer, nat_peer_info_t *info, int64_t now)
{
    info->relay_dials++;
    info->relay_dial_ms = now;
    if (!nat_peer_direct (peer) || info->force_relay || !nat_addr_is_set (&info->dial))
        nat_addr_set_relay (&info->dial, info->relay_id);
    nat_service_send_dial (self, peer);
}

//  A peer's registered candidates with an address (named ones are left to the
//  dialler), but not its relay-seen mapping: probes go to one a round, in turn
static size_t
s_candidates (nat_peer_t *peer, nat_peer_info_t *info, const nat_addr_t *out [NAT_PEER_ENDPOINTS_MAX + 1])
{
    size_t count = 0;
    for (size_t k = 0; nat_peer_direct (peer) && k < NAT_PEER_ENDPOINTS_MAX + 1; k++) {
        const nat_endpoint_t *c = nat_peer_configured_at (peer, k);
        if (!c)
            break;
        if (!c->is_name && nat_addr_is_set (&c->addr) && !nat_addr_eq (&c->addr, &info->relay_seen))
            out [count++] = &c->addr;
    }
    return count;
}

//  Port prediction (connection.port_prediction, docs/nat.md "Port prediction"):
//  which ports after the peer's seen mapping this probe also goes to. A NAT
//  that maps per destination in sequence gives the peer's probe to us one of
//  the ports after the one the relay saw; our probe to that port is the answer
//  its filter lets in. How far after depends on how many flows the peer's NAT
//  mapped since the peer registered (its own: a registry request per heartbeat,
//  probes to other peers; and those of other hosts behind it), so each round
//  sweeps the windows after the first (+W+1..+2W, +2W+1..+3W ... up to
//  S_PREDICT_SPAN ports, then from +W+1 again) on even rounds, and comes back
//  to the first on odd ones: the peer's NAT keeps its mapping toward us while
//  the peer probes us, so a sweep that passed it while the path was blocked
//  finds it again. The first window starts where a predicted port went direct
//  last time (nat_relay_path_learn_anchor), else at +1. Only from a node whose own mapping
//  is endpoint-independent (or no NAT): its legs all leave from one mapping,
//  which the peer's probes find; a node that maps per destination would spend
//  one of its own ports per leg and open nothing the peer can find. Only after
//  a round went unanswered (a cone pair is direct by then), never past 65535.
#define S_PREDICT_SPAN 256
static uint16_t
s_predict_window (nat_service_t *self, nat_peer_info_t *info, uint16_t *from)
{
    *from = 0;
    if (!self->config.port_prediction || info->probes < 1 || !self->mapping
    ||  !nat_mapping_may_predict (nat_mapping_class (self->mapping)))
        return 0;
    return nat_mapping_predict (nat_addr_port (&info->relay_seen), info->probes,
                                (uint32_t) self->config.port_prediction_window, S_PREDICT_SPAN,
                                info->predict_anchor, from);
}

//  A relayed peer goes direct at a port its relay-seen address predicted: the
//  distance is where the next rounds start (the same mapping, or one after it)
void
nat_relay_path_learn_anchor (nat_peer_info_t *info, const nat_addr_t *addr)
{
    if (!nat_addr_is_set (&info->relay_seen) || nat_addr_family (addr) != nat_addr_family (&info->relay_seen))
        return;
    uint32_t seen = nat_addr_port (&info->relay_seen), port = nat_addr_port (addr);
    nat_addr_t same = *addr;            //  the address with the seen port: the same host?
    if (nat_addr_family (&same) == AF_INET)
        same.in4.sin_port = htons ((uint16_t) seen);
    else
        same.in6.sin6_port = htons ((uint16_t) seen);
    if (nat_addr_eq (&same, &info->relay_seen) && port > seen && port - seen <= S_PREDICT_SPAN)
        info->predict_anchor = port - seen;
}

//  Up through the relay, and direct candidates known: one of them is tried 0.5 s
//  after, then after 1 s, 2 s ... 60 s (one at a time, in turn). A probe is a
//  handshake initiation to that address only; if it answers, crypto confirms
//  the direct address and the peer leaves the relay. If not, nothing is lost:
//  the session through the relay goes on.
static void
s_probe (nat_service_t *self, nat_peer_t *peer, nat_peer_info_t *info, int64_t now)
{
    const nat_addr_t *endpoint = nat_peer_endpoint (peer);
    bool relayed = nat_peer_state (peer) == NAT_PEER_UP && nat_addr_relay_peer (endpoint);
    bool punch = self->config.hole_punch && nat_addr_is_set (&info->relay_seen);
    if (!relayed || info->force_relay || !self->config.direct_connect || (!nat_peer_direct (peer) && !punch)) {
        info->probe_next_ms = 0;
        info->probes = 0;
        return;
    }
    if (!info->probe_next_ms) {
        info->probe_next_ms = now + S_PROBE_FIRST_MS;
        return;
    }
    if (now < info->probe_next_ms)
        return;
    //  crypto takes one dial per 250 ms: a probe right after another dial
    //  would be lost, so it waits for the gap
    if (info->last_dial_ms && now - info->last_dial_ms < 300) {
        info->probe_next_ms = info->last_dial_ms + 300;
        return;
    }
    const nat_addr_t *candidates [NAT_PEER_ENDPOINTS_MAX + 1];
    size_t count = s_candidates (peer, info, candidates);
    //  Hole punching: every probe also goes to the peer's public mapping as the
    //  relay saw it (ESTABLISHED), which the peer's probes toward ours open from
    //  its side: the first probe of one side opens its own NAT's filter, the
    //  other side's next probe passes it (docs/nat.md, "Hole punching")
    int64_t wait = (int64_t) S_PROBE_FIRST_MS << (info->probes < 7 ? info->probes : 7);
    info->probe_next_ms = now + (wait < S_PROBE_MAX_MS ? wait : S_PROBE_MAX_MS);
    if (!count && !punch)
        return;
    nat_probe_plan_t *plan = &info->plan;
    plan->legs_count = 0;
    plan->predict = 0;
    plan->random = 0;
    if (punch) {
        plan->legs [plan->legs_count++] = info->relay_seen;
        if (count)
            plan->legs [plan->legs_count++] = *candidates [info->probes % count];
        plan->predict = s_predict_window (self, info, &plan->predict_from);
        if (plan->predict) {
            char text [NAT_ADDR_TEXT_MAX];
            bus_log (plan->predicted ? BUS_LOG_DEBUG : BUS_LOG_INFO, "peer %s: probe round %u, also to ports %u..%u of %s (port prediction)",
                info->name, info->probes + 1, nat_addr_port (&info->relay_seen) + plan->predict_from,
                nat_addr_port (&info->relay_seen) + plan->predict_from + plan->predict - 1,
                nat_addr_format (&info->relay_seen, text, sizeof text));
        }
    }
    else
        plan->legs [plan->legs_count++] = *candidates [info->probes % count];
    info->probe_until_ms = now + 1000;
    info->probes++;
    //  What this round tries, for nat.status `candidates` (nat_tried.h)
    for (size_t k = 0; k < plan->legs_count; k++)
        nat_tried_note (&info->tried, k == 0 && punch ? NAT_TRIED_SEEN : NAT_TRIED_REGISTERED, &plan->legs [k], 1, now);
    if (plan->predict) {
        nat_addr_t first = plan->legs [0];
        uint16_t port = (uint16_t) (nat_addr_port (&first) + plan->predict_from);
        if (nat_addr_family (&first) == AF_INET)
            first.in4.sin_port = htons (port);
        else
            first.in6.sin6_port = htons (port);
        nat_tried_note (&info->tried, NAT_TRIED_PREDICTED, &first, plan->predict, now);
    }
    nat_service_send_dial (self, peer);
}

size_t
nat_relay_path_probe (nat_service_t *self, nat_peer_t *peer, int64_t now)
{
    nat_peer_info_t *info = &self->info [nat_peer_index (peer)];
    if (info->probe_until_ms <= now || !info->plan.legs_count)
        return 0;
    return info->plan.legs_count + info->plan.predict + info->plan.random;
}

void
nat_relay_path_probe_leg (nat_service_t *self, nat_peer_t *peer, size_t k, nat_addr_t *out)
{
    nat_peer_info_t *info = &self->info [nat_peer_index (peer)];
    nat_probe_plan_t *plan = &info->plan;
    if (k < plan->legs_count) {
        *out = plan->legs [k];
        return;
    }
    //  A guessed port (birthday, nat_bday_path.c): the next step of the walk
    if (k >= (size_t) plan->legs_count + plan->predict) {
        *out = plan->legs [0];
        uint16_t port = nat_bday_port (&info->bday, plan->random_from + (uint32_t) (k - plan->legs_count - plan->predict));
        if (nat_addr_family (out) == AF_INET)
            out->in4.sin_port = htons (port);
        else
            out->in6.sin6_port = htons (port);
        self->counters.birthday_probes++;
        return;
    }
    //  A predicted port: the seen mapping's address, the k-th port after it
    //  (s_predict_window keeps them below 65536)
    *out = plan->legs [0];
    uint16_t port = (uint16_t) (nat_addr_port (&plan->legs [0]) + plan->predict_from + (k - plan->legs_count));
    if (nat_addr_family (out) == AF_INET)
        out->in4.sin_port = htons (port);
    else
        out->in6.sin6_port = htons (port);
    self->counters.predicted++;
    self->info [nat_peer_index (peer)].plan.predicted++;
}

bool
nat_relay_path_birthday_round (nat_service_t *self, nat_peer_t *peer, uint32_t count, uint32_t from, int64_t now)
{
    nat_peer_info_t *info = &self->info [nat_peer_index (peer)];
    if (!nat_addr_is_set (&info->relay_seen))
        return true;                //  nothing to guess at: the round counts as gone
    //  crypto takes one dial per 250 ms (as s_probe)
    if (info->last_dial_ms && now - info->last_dial_ms < 300)
        return false;
    nat_probe_plan_t *plan = &info->plan;
    plan->legs [0] = info->relay_seen;
    plan->legs_count = 1;
    plan->predict = 0;
    plan->random = (uint16_t) (count < UINT16_MAX ? count : UINT16_MAX);
    plan->random_from = from;
    info->probe_until_ms = now + 1000;
    nat_tried_note (&info->tried, NAT_TRIED_SEEN, &plan->legs [0], 1, now);
    nat_service_send_dial (self, peer);
    return true;
}

//  Dials through the relay: peers nat does not dial itself, while not up (1 s,
//  2 s, 4 s, then every 8 s); a new peer, and any peer the relay did not know
//  yet, once more 300 ms later; every peer not up when a relay first answers (all = true)
static void
s_relay_dials (nat_service_t *self, int64_t now, bool all)
{
    bool relay = nat_relay_current (self->relay) >= 0;
    for (size_t i = 0; i < nat_peer_table_slots (self->table) && i < self->info_count; i++) {
        nat_peer_t *peer = nat_peer_table_at (self->table, i);
        nat_peer_info_t *info = &self->info [i];
        if (!peer || !info->relay_id)
            continue;
        s_probe (self, peer, info, now);
        if (nat_peer_state (peer) == NAT_PEER_UP) {
            info->relay_dials = info->relay_unknown = 0;
            info->relay_retry_ms = 0;
            continue;
        }
        if (!relay)
            continue;
        if (all || (info->relay_retry_ms && now >= info->relay_retry_ms)) {
            info->relay_retry_ms = 0;
            s_dial_through_relay (self, peer, info, now);
            continue;
        }
        if (nat_peer_direct (peer) && !info->force_relay)
            continue;           //  its direct dials go through the relay too (nat_datapath)
        int64_t wait = info->relay_dials == 0 ? 0 : S_DIAL_MIN_MS << (info->relay_dials - 1 < 3 ? info->relay_dials - 1 : 3);
        if (wait > S_DIAL_MAX_MS)
            wait = S_DIAL_MAX_MS;
        if (info->relay_dials && now - info->relay_dial_ms < wait)
            continue;
        s_dial_through_relay (self, peer, info, now);
    }
}

void
nat_relay_path_tick (nat_service_t *self, int64_t now)
{
    if (!self->relay || nat_relay_count (self->relay) == 0)
        return;
    uint8_t out [NAT_RELAY_SERVERS_MAX][RELAY_PROTO_REGISTER_SIZE];
    const nat_addr_t *to [NAT_RELAY_SERVERS_MAX];
    int was = nat_relay_current (self->relay);
    size_t n = nat_relay_tick (self->relay, bus_clock_us (), (uint64_t) time (NULL), out, to, NAT_RELAY_SERVERS_MAX);
    if (n) {
        nat_udp_tx_t tx [NAT_RELAY_SERVERS_MAX];
        size_t udp = 0;
        for (size_t i = 0; i < n; i++) {
            int server = nat_relay_find (self->relay, to [i]);
            if (server < 0 || s_udp_probe_due (self, (size_t) server, now)
            ||  !s_tcp_send (self, (size_t) server, out [i], RELAY_PROTO_REGISTER_SIZE))
                tx [udp++] = (nat_udp_tx_t) { out [i], RELAY_PROTO_REGISTER_SIZE, to [i] };
        }
        if (udp)
            nat_udp_send (self->udp, tx, udp);
        self->counters.relay_registers += n;
    }
    s_tcp_check (self, now);
    s_wss_check (self, now);
    int cur = nat_relay_current (self->relay);
    if (cur != was) {
        if (cur >= 0) {
            nat_relay_server_t *server = nat_relay_server (self->relay, (size_t) cur);
            bus_info ("relay %s in use (round trip %.1f ms)", server->name, server->rtt_us / 1000.0);
        }
        else
            bus_warn ("no relay answers");
    }
    s_relay_dials (self, now, cur >= 0 && was < 0);
}

//  ---------------------------------------------------------------------------
//  This node's mapping (nat_mapping.h): every REGISTERED over UDP is an
//  observation; one over TCP or WSS shows another flow, so that relay stops
//  counting. The local addresses are read again when an observation changed
//  (a new relay, a NAT that rebound): not on every refresh.

static void
s_mapping_locals (nat_service_t *self)
{
    nat_addr_t locals [NAT_MAPPING_LOCAL_MAX];
    size_t count = 0;
    struct ifaddrs *list = NULL;
    if (getifaddrs (&list) == 0) {
        for (struct ifaddrs *ifa = list; ifa && count < NAT_MAPPING_LOCAL_MAX; ifa = ifa->ifa_next)
            if (ifa->ifa_addr && (ifa->ifa_addr->sa_family == AF_INET || ifa->ifa_addr->sa_family == AF_INET6)
            &&  nat_addr_set_sockaddr (&locals [count], ifa->ifa_addr,
                                       ifa->ifa_addr->sa_family == AF_INET ? sizeof (struct sockaddr_in)
                                                                           : sizeof (struct sockaddr_in6)) == 0)
                count++;
        freeifaddrs (list);
    }
    nat_mapping_set_local (self->mapping, locals, count, nat_udp_port (self->udp));
}

//  Hairpinning (bifrostctl netcheck): one datagram to the address a relay
//  sees us at, each time that address changes. It comes back only through a
//  NAT that hairpins (or to a node behind none). Shaped as a relay PING so
//  that it reaches nat_relay_path_rx (the demux drops other unknown types),
//  where it is recognised by all of its 20 bytes, 16 of them random.
static void
s_hairpin_send (nat_service_t *self, const nat_addr_t *observed)
{
    uint8_t *probe = self->hairpin.probe;
    probe [0] = RELAY_PROTO_PING;
    probe [1] = RELAY_PROTO_VERSION;
    probe [2] = probe [3] = 0;
    if (getrandom (probe + 4, sizeof self->hairpin.probe - 4, 0) != (ssize_t) sizeof self->hairpin.probe - 4)
        return;
    self->hairpin.sent_ms = bus_clock_ms ();
    self->hairpin.back = false;
    nat_udp_tx_t tx = { probe, sizeof self->hairpin.probe, observed };
    nat_udp_send (self->udp, &tx, 1);
}

static bool
s_hairpin_back (nat_service_t *self, const uint8_t *data, size_t size)
{
    if (!self->hairpin.sent_ms || size != sizeof self->hairpin.probe
    ||  memcmp (data, self->hairpin.probe, size) != 0)
        return false;
    if (!self->hairpin.back)
        bus_info ("hairpinning: our own observed address reached us in %" PRId64 " ms",
                  bus_clock_ms () - self->hairpin.sent_ms);
    self->hairpin.back = true;
    return true;
}

static void
s_mapping_update (nat_service_t *self, size_t server, bool over_udp)
{
    nat_relay_server_t *s = nat_relay_server (self->relay, server);
    if (!s || !self->mapping)
        return;
    bool changed = over_udp && s->up ? nat_mapping_observe (self->mapping, &s->endpoint.addr, &s->observed)
                                     : nat_mapping_forget (self->mapping, &s->endpoint.addr);
    if (!changed)
        return;
    if (over_udp && s->up)
        s_hairpin_send (self, &s->observed);
    s_mapping_locals (self);
    nat_mapping_class_t kind = nat_mapping_class (self->mapping);
    if ((int) kind == self->mapping_class)
        return;
    self->mapping_class = (int) kind;
    if (kind == NAT_MAPPING_EDM_SEQ)
        bus_info ("this node's NAT mapping: %s (step %u, highest port %u; %zu relays)", nat_mapping_class_name (kind),
                  nat_mapping_step (self->mapping), nat_mapping_highest (self->mapping), nat_mapping_count (self->mapping));
    else
        bus_info ("this node's NAT mapping: %s (%zu relay%s)", nat_mapping_class_name (kind), nat_mapping_count (self->mapping),
                  nat_mapping_count (self->mapping) == 1 ? "" : "s");
}

//  ---------------------------------------------------------------------------
//  Datagrams

bool
nat_relay_path_rx (nat_service_t *self, const nat_addr_t *from, uint8_t **data, size_t *size,
                   nat_addr_t *via, int64_t now)
{
    int server = nat_relay_find (self->relay, from);
    if (server < 0) {
        if (s_hairpin_back (self, *data, *size))
            return false;
        *via = *from;           //  not from a relay: the demux drops it (and counts it)
        return true;
    }
    const uint8_t *d = *data;
    if (d [0] == RELAY_PROTO_DATA) {
        if (*size < RELAY_PROTO_DATA_HEADER || d [1] != RELAY_PROTO_VERSION || d [2] || d [3])
            return false;
        uint64_t source = relay_proto_data_peer (d);
        if (!source)
            return false;
        nat_addr_set_relay (via, source);
        *data += RELAY_PROTO_DATA_HEADER;
        *size -= RELAY_PROTO_DATA_HEADER;
        self->counters.relay_rx++;
        return true;
    }
    uint64_t peer_id = 0;
    nat_addr_t seen;
    nat_addr_clear (&seen);
    int was = nat_relay_current (self->relay);
    nat_relay_event_t event = nat_relay_receive (self->relay, server, *data, *size, bus_clock_us (), &peer_id, &seen);
    //  Answered over UDP while on TCP: UDP works again, and the relay now sends
    //  to our UDP address
    nat_relay_tcp_t *tcp = &self->tcp [server];
    if (d [0] == RELAY_PROTO_REGISTERED && tcp->connected && !tcp->reading
    &&  nat_relay_server (self->relay, (size_t) server)->up) {
        bus_info ("relay %s: answers over UDP again, leaving TCP", nat_relay_server (self->relay, (size_t) server)->name);
        self->counters.relay_tcp_left++;
        s_tcp_close (self, (size_t) server);
    }
    if (d [0] == RELAY_PROTO_REGISTERED)
        s_mapping_update (self, (size_t) server, !tcp->reading && streq (nat_relay_path_transport (self, (size_t) server), "udp"));
    if (event == NAT_RELAY_ESTABLISHED) {
        for (size_t i = 0; i < self->info_count; i++)
            if (self->info [i].relay_id == peer_id) {
                char text [NAT_ADDR_TEXT_MAX];
                if (!nat_addr_eq (&self->info [i].relay_seen, &seen))
                    bus_debug ("peer %s: the relay sees it at %s", self->info [i].name,
                               nat_addr_format (&seen, text, sizeof text));
                self->info [i].relay_seen = seen;
            }
        //  Kept for nat_relay_path_seen too: a peer not known yet, or added
        //  again by a later peer.up, still gets it (hole punching needs it, and
        //  the relay says it once per session)
        size_t k = self->seen_early_next++ % NAT_SEEN_EARLY_MAX;
        self->seen_early [k].relay_id = peer_id;
        self->seen_early [k].seen = seen;
        self->seen_early [k].at_ms = now;
    }
    //  The peer has not registered at the relay yet (it is starting too): try
    //  again soon rather than after the dialler's next backoff step
    if (event == NAT_RELAY_UNKNOWN_PEER)
        for (size_t i = 0; i < self->info_count; i++)
            if (self->info [i].relay_id == peer_id && self->info [i].relay_unknown < 10
            &&  !self->info [i].relay_retry_ms) {
                self->info [i].relay_unknown++;
                self->info [i].relay_retry_ms = now + 300;     //  crypto takes one dial per 250 ms
            }
    if (nat_relay_current (self->relay) != was && was < 0) {
        nat_relay_server_t *s = nat_relay_server (self->relay, (size_t) nat_relay_current (self->relay));
        bus_info ("relay %s in use (round trip %.1f ms)", s->name, s->rtt_us / 1000.0);
        //  Peers waiting for a relay are dialled now, not a tick later
        s_relay_dials (self, now, true);
    }
    return false;
}

bool
nat_relay_path_seen (nat_service_t *self, uint64_t relay_id, nat_addr_t *seen)
{
    int64_t now = bus_clock_ms (), best = -1;
    for (size_t k = 0; k < NAT_SEEN_EARLY_MAX; k++)
        if (self->seen_early [k].relay_id == relay_id && relay_id
        &&  now - self->seen_early [k].at_ms < NAT_SEEN_EARLY_MS && self->seen_early [k].at_ms > best) {
            best = self->seen_early [k].at_ms;
            *seen = self->seen_early [k].seen;
        }
    return best >= 0;
}

const nat_addr_t *
nat_relay_path_frame (nat_service_t *self, size_t k, uint64_t peer_id,
                      const uint8_t *data, size_t size, size_t *framed)
{
    int cur = nat_relay_current (self->relay);
    if (cur < 0) {
        self->counters.drop_no_relay++;
        return NULL;
    }
    if (size + RELAY_PROTO_DATA_HEADER > NAT_RELAY_FRAME_MAX) {
        self->counters.drop_oversize++;
        return NULL;
    }
    nat_relay_frame (self->relay, peer_id, self->frames [k]);
    memcpy (self->frames [k] + RELAY_PROTO_DATA_HEADER, data, size);
    *framed = size + RELAY_PROTO_DATA_HEADER;
    self->counters.relay_tx++;
    if (s_tcp_send (self, (size_t) cur, self->frames [k], *framed))
        return NULL;
    return &nat_relay_server (self->relay, (size_t) cur)->endpoint.addr;
}

void
nat_relay_path_describe (nat_service_t *self, nat_peer_t *peer, char *out, size_t size)
{
    const nat_addr_t *endpoint = nat_peer_endpoint (peer);
    *out = 0;
    if (nat_peer_state (peer) != NAT_PEER_UP || !nat_addr_is_set (endpoint))
        return;
    //  Through ICE: "ice direct (srflx/srflx)" or "turn (relay/srflx)" (nat_ice.c)
    uint32_t ice_index;
    if (nat_addr_ice_index (endpoint, &ice_index)) {
        nat_ice_describe (self->ice, ice_index, out, size);
        return;
    }
    if (!nat_addr_relay_peer (endpoint)) {
        snprintf (out, size, "direct");
        return;
    }
    int cur = nat_relay_current (self->relay);
    snprintf (out, size, "relay %s%s", cur >= 0 ? nat_relay_server (self->relay, (size_t) cur)->name : "(none answers)",
              cur < 0 ? "" : nat_relay_path_transport (self, (size_t) cur) [0] == 'u' ? ""
                           : nat_relay_path_transport (self, (size_t) cur) [0] == 't' ? " tcp" : " wss");
}

const char *
nat_relay_path_transport (nat_service_t *self, size_t i)
{
    if (i < NAT_RELAY_SERVERS_MAX && self->tcp [i].connected)
        return "tcp";
    if (self->wss && nat_relay_wss_open_now (self->wss, i))
        return "wss";
    return "udp";
}

void
nat_relay_path_status (nat_service_t *self, nat_status_reply_t *reply)
{
    nat_mapping_class_t kind = self->mapping ? nat_mapping_class (self->mapping) : NAT_MAPPING_UNKNOWN;
    snprintf (reply->mapping, sizeof reply->mapping, "%s", nat_mapping_class_name (kind));
    if (self->mapping) {
        reply->mapping_relays = (uint32_t) nat_mapping_count (self->mapping);
        reply->mapping_step = nat_mapping_step (self->mapping);
        reply->mapping_highest_port = nat_mapping_highest (self->mapping);
    }
    reply->predicted_probes = self->counters.predicted;
    //  netcheck: hairpinning, IPv6, what the relays cannot tell
    int64_t since = self->hairpin.sent_ms ? bus_clock_ms () - self->hairpin.sent_ms : -1;
    snprintf (reply->hairpin, sizeof reply->hairpin, "%s", self->hairpin.back ? "yes" : since < 0 ? "untested"
                                                          : since < 1000 ? "testing" : "no");
    struct ifaddrs *list = NULL;
    if (getifaddrs (&list) == 0) {
        for (struct ifaddrs *ifa = list; ifa; ifa = ifa->ifa_next)
            if (ifa->ifa_addr && ifa->ifa_addr->sa_family == AF_INET6
            &&  (((const struct sockaddr_in6 *) ifa->ifa_addr)->sin6_addr.s6_addr [0] & 0xe0) == 0x20)
                reply->ipv6_global = true;
        freeifaddrs (list);
    }
    for (size_t i = 0; self->relay && i < nat_relay_count (self->relay); i++) {
        nat_relay_server_t *server = nat_relay_server (self->relay, i);
        reply->ipv6_relay |= server->up && nat_addr_family (&server->endpoint.addr) == AF_INET6;
    }
    snprintf (reply->filtering, sizeof reply->filtering, "unknown");
    for (size_t i = 0; self->relay && i < nat_relay_count (self->relay) && reply->relay_list_count < 8; i++) {
        nat_relay_server_t *server = nat_relay_server (self->relay, i);
        nat_status_relay_t *out = &reply->relay_list [reply->relay_list_count++];
        snprintf (out->name, sizeof out->name, "%s", server->name);
        if (server->resolved)
            nat_addr_format (&server->endpoint.addr, out->address, sizeof out->address);
        out->up = server->up;
        snprintf (out->transport, sizeof out->transport, "%s", nat_relay_path_transport (self, i));
        out->rtt_us = server->rtt_us;
        if (nat_addr_is_set (&server->observed))
            nat_addr_format (&server->observed, out->observed, sizeof out->observed);
        out->registers = server->registers;
        out->answers = server->answers;
    }
}

//  What a relayed peer's probes cannot get past, given our own mapping: the
//  second half of its reason
static const char *
s_conclusion (nat_mapping_class_t kind)
{
    switch (kind) {
        case NAT_MAPPING_EDM_RANDOM:
            return "so only a peer whose NAT filters by address alone (or no NAT) can answer, or a birthday "
                   "attempt with a peer whose NAT maps endpoint-independently (`connection.birthday`)";
        case NAT_MAPPING_EDM_SEQ:
            return "so only a peer whose NAT filters by address alone (or no NAT) can answer "
                   "(we send no predicted ports: each would use up one of ours)";
        case NAT_MAPPING_NONE:
            return "so their side drops what we send (a firewall or NAT that blocks UDP from us)";
        case NAT_MAPPING_EIM:
            return "so their NAT likely maps per destination with ports we cannot predict (or blocks UDP), "
                   "and ours filters by port (birthday attempts toward it: `connection.birthday`)";
        default:
            return "so we send no predicted ports";
    }
}

//  Why a peer up through the relay is still there, in plain words (nat.status
//  `reason`, bifrostctl peers): the rounds and where they went, our mapping
static void
s_reason (nat_service_t *self, nat_peer_t *peer, nat_peer_info_t *info, char *out, size_t size)
{
    *out = 0;
    const nat_addr_t *endpoint = nat_peer_endpoint (peer);
    if (nat_peer_state (peer) != NAT_PEER_UP || !nat_addr_relay_peer (endpoint))
        return;
    if (info->force_relay) {
        snprintf (out, size, "relayed: kept on the relay (connection.force_relay or force_relay_peers)");
        return;
    }
    if (!self->config.direct_connect) {
        snprintf (out, size, "relayed: connection.direct_connect = false, no direct path is tried");
        return;
    }
    int cur = nat_relay_current (self->relay);
    if (cur >= 0 && !streq (nat_relay_path_transport (self, (size_t) cur), "udp")) {
        snprintf (out, size, "relayed: this node reaches the relays over %s only: UDP does not get through "
                  "its network, so no direct path can", nat_relay_path_transport (self, (size_t) cur));
        return;
    }
    if (!info->plan.legs_count) {
        snprintf (out, size, info->probes || nat_addr_is_set (&info->relay_seen) || nat_peer_direct (peer)
                  ? "relayed: first direct probe due"
                  : "relayed: nothing to probe (no address of it from the relay, no direct candidate%s)",
                  self->config.hole_punch ? "" : "; connection.hole_punch = false");
        return;
    }
    //  Every address the rounds went to: the relay-seen mapping (hole punching)
    //  and the candidates taken in turn, one a round
    const nat_addr_t *tried [NAT_PEER_ENDPOINTS_MAX + 2];
    size_t n = 0;
    if (self->config.hole_punch && nat_addr_is_set (&info->relay_seen))
        tried [n++] = &info->relay_seen;
    const nat_addr_t *candidates [NAT_PEER_ENDPOINTS_MAX + 1];
    size_t count = s_candidates (peer, info, candidates);
    for (size_t k = 0; k < count && k < info->probes; k++)
        tried [n++] = candidates [k];
    char legs [200] = "", text [NAT_ADDR_TEXT_MAX], predicted [48] = "";
    for (size_t k = 0; k < n; k++) {
        size_t used = strlen (legs);
        snprintf (legs + used, sizeof legs - used, "%s%s", k == 0 ? "" : k + 1 == n ? " and " : ", ",
                  nat_addr_format (tried [k], text, sizeof text));
    }
    //  The predicted ports covered so far: the anchor's window, and one more
    //  per even round (s_predict_window)
    if (info->plan.predicted) {
        uint64_t rounds = info->probes ? info->probes - 1 : 0;
        uint64_t covered = (rounds ? 1 + rounds / 2 : 0) * (uint64_t) self->config.port_prediction_window;
        snprintf (predicted, sizeof predicted, " (+%u predicted ports)", (unsigned) (covered < S_PREDICT_SPAN ? covered : S_PREDICT_SPAN));
    }
    nat_mapping_class_t kind = self->mapping ? nat_mapping_class (self->mapping) : NAT_MAPPING_UNKNOWN;
    snprintf (out, size, "relayed: %u probe round%s to %s%s unanswered; %s, %s", info->probes,
              info->probes == 1 ? "" : "s", legs, predicted, nat_mapping_class_words (kind), s_conclusion (kind));
}

void
nat_relay_path_peer_status (nat_service_t *self, size_t index, nat_status_peer_t *out)
{
    nat_peer_info_t *info = &self->info [index];
    out->probe_rounds = info->probes;
    out->predicted_probes = info->plan.predicted;
    nat_peer_t *peer = nat_peer_table_at (self->table, index);
    if (peer && self->relay)
        s_reason (self, peer, info, out->reason, sizeof out->reason);
}

size_t
nat_relay_path_reprobe (nat_service_t *self, int64_t now)
{
    size_t count = 0;
    for (size_t i = 0; i < nat_peer_table_slots (self->table) && i < self->info_count; i++) {
        nat_peer_t *peer = nat_peer_table_at (self->table, i);
        if (!peer || !self->info [i].relay_id || nat_peer_state (peer) != NAT_PEER_UP
        ||  !nat_addr_relay_peer (nat_peer_endpoint (peer)))
            continue;
        self->info [i].probes = 0;
        self->info [i].probe_next_ms = now;     //  s_probe sends it at the next tick
        count++;
    }
    return count;
}
