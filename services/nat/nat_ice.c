/*  nat_ice: ICE sessions with registry peers that nat reaches no other way
    (see nat_ice.h; docs/ice.md, "In nat").

    Ids and roles. libice's role rule (the lower id controls) needs one id
    per side that both agree on. nat holds neither its own public key (crypto
    does) nor, without relays, its own registry id, so each nat process draws
    a random 64-bit ICE id at start and every signal carries it ("id") and the
    addressee's ("to"). The side that starts sends ice-start with its id; the
    other opens its session for that id and answers with its credentials, and
    the first side opens its session when they arrive: one signalling round
    trip more than a protocol with known ids, and a restarted nat is told
    apart from its predecessor (new id: the old session is dropped).

    When: a registry peer (not a configured one: the registry carries the
    signals) that has been down for connection.ice_after (since it was known or
    went down), while the registry gave ICE servers and neither
    connection.force_relay nor connection.ice = false says otherwise. The other
    side starts its session on the first signal. After a failure the next try
    waits 5 s, 10 s ... 60 s.

    The path. Once libnice selects a pair, a dial goes to crypto with the
    peer's dial address set to "ice/<index>"; the data path sends what crypto
    gives for that address with ice_agent_send, and what the recv callback
    hands over is ingested with that address as its source, so crypto
    confirms it as the endpoint like a relayed one. Until the peer is up,
    every initiation for it also goes through the pair (nat_ice_copy).

    The handoff (docs/ice.md, "In nat: the socket handoff"). libnice moves a
    datagram per system call through GLib: a fifth of the static pair's TCP.
    Once the peer is up on a pair whose local end is not a TURN relay, nat
    takes the pair's socket (ice_agent_take_socket), lets libnice go
    (ice_agent_remove_peer) and carries the peer's data on it itself, with
    the batching of its main socket: a second nat_udp on the taken fd, polled
    on nat's loop, recvmmsg/sendmmsg of 64 and GSO/GRO. The session stays
    (session, selected, the pair's types: what the path description, the
    holds and the tick read); only libnice's part of it is gone. */
#include "nat_service_priv.h"
#include "nat_ice.h"
#include "nat_ice_signal.h"
#include "ice_agent.h"
#include "bus_log.h"
#include "nat_udp.h"
#include "nat_taken.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <jansson.h>
#include <net/if.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define S_GRACE_MS          10000   //  up on a better path this long: the session ends
#define S_RETRY_MS          5000    //  after a failure: 5 s, 10 s, 20 s ... 60 s
#define S_RETRY_MAX_MS      60000
#define S_ANSWER_MS         10000   //  ice-start unanswered this long: a failure
#define S_DIAL_MS           1000    //  a pair selected, the peer not up: a dial through it each second,
#define S_HANDSHAKE_MS      10000   //  for this long at most (then the session counts as failed)
#define S_TURN_MARGIN_S     60      //  a session on our TURN relay restarts this long before its credential expires
#define S_SIGNAL_MS         5000    //  discovery's answer to a signal
#define S_SIGNAL_FLIGHT     8       //  signals in flight at discovery (it takes 32 at most)
#define S_SIGNAL_QUEUE      256     //  signals waiting (more are dropped, counted as failed)
#define S_RELAY_FIRST_MS    1000    //  on TURN while the relay answers: a handshake through it after 1 s,
#define S_RELAY_EVERY_MS    5000    //  then every 5 s until it moves
#define S_START_MIN_MS      1000    //  a peer's ice-start opens a new session once a second at most
#define S_LOG_BAD_MAX       20      //  malformed signals logged, then only counted (and every 100th)

//  Who a taken socket's reads are reported to (nat_taken's rx callback)
typedef struct {
    struct _nat_ice_t *ice;
    uint32_t index;
} s_taker_t;

typedef struct {
    uint64_t remote;            //  the peer's ICE id, 0 unknown
    bool session;               //  a session in the agent, under remote
    bool waiting;               //  ice-start sent, its answer not yet here
    int64_t down_ms;            //  not up since then (0: up, or not seen yet)
    int64_t started_ms;
    int64_t better_ms;          //  up on another path since then (0: not)
    int64_t retry_ms;           //  no start before then
    uint32_t failures;
    bool selected;
    ice_cand_type_t local_type, remote_type;
    int64_t turn_expiry;        //  unix time the session's TURN credential expires (0: none)
    int64_t dial_ms;            //  last dial through the pair
    int64_t rx_ms;              //  last datagram through the pair
    int64_t selected_ms;        //  when the pair was selected
    bool carried;               //  the peer was up on this session's pair
    int64_t relay_try_ms;       //  on TURN while the relay answers: a handshake through the relay then (0: none planned)
    nat_taken_t *taken;         //  the pair's socket, ours since the handoff (NULL: data through libnice;
                                //  nat_taken.h: nat_ice_send queues, nat_ice_flush sends)
    s_taker_t taker;
    bool untakeable;            //  the handoff failed for this session: data stays in libnice
} s_peer_t;

//  A signal waiting for its turn to go to discovery
typedef struct {
    uint32_t index;
    char type [NAT_ICE_SIGNAL_TYPE_MAX];
    char data [NAT_ICE_SIGNAL_DATA_MAX + 1];
} s_queued_t;

typedef struct {
    char addr [NAT_HOST_MAX + 8];   //  "ip:port", "[ip6]:port", or "name:port" until resolved
    char user [257], pass [257];
} s_turn_t;

//  The ICE servers of a discovery.ice
typedef struct {
    char stun [NAT_HOST_MAX + 8];
    bool stun_name;                         //  stun is HOST:PORT with a name
    s_turn_t turn [ICE_AGENT_MAX_TURN];
    bool turn_name [ICE_AGENT_MAX_TURN];
    size_t turn_count;
    int64_t expiry;
} s_servers_t;

struct _nat_ice_t {
    nat_service_t *owner;
    ice_agent_t *agent;
    uint64_t id;
    s_peer_t peers [NODE_PEERS_MAX];
    //  From discovery.ice: as given, while their names are resolved, and in use
    s_servers_t given, resolving;
    uint32_t generation;        //  of the resolution (in the resolver's cookies)
    size_t unresolved;
    bool have_servers;
    char stun [NAT_HOST_MAX + 8];
    s_turn_t turn [ICE_AGENT_MAX_TURN];
    size_t turn_count;
    int64_t turn_expiry;        //  of the credentials in use now (unix time, 0: none)
    char vip [64];              //  ours, from node.address: never gathered on
    bool locals_set;
    uint32_t last_index;        //  s_index's last answer
    //  Datagrams from the recv callback, sent on to crypto after the dispatch
    nat_ingest_t ingest;
    int flush_timer;
    //  Signals out: in flight at discovery, and queued
    s_queued_t queue [S_SIGNAL_QUEUE];
    size_t queue_head, queued, in_flight;
    //  Counters (nat.status)
    uint64_t started, selected, failed, closed, turn_restarts;
    uint64_t signals_tx, signals_rx, signals_bad, signals_unknown, signals_failed;
    uint64_t rx, tx, drops;
    //  Taken sockets: queued sends (indexes of peers), and counters, with
    //  those of sockets closed since added in
    uint32_t pending [NODE_PEERS_MAX];
    size_t pending_count;
    uint64_t taken_total, taken_strangers;
    nat_udp_stats_t taken_closed;
};

//  ---------------------------------------------------------------------------
//  Signalling out

//  discovery posts at most 32 signals to the registry at a time and refuses
//  more (503): nat keeps S_SIGNAL_FLIGHT in flight and queues the rest in
//  order (a node that starts sessions with many peers at once sends 5-10
//  signals to each)
static void s_signal_next (nat_ice_t *self);

static void
s_on_signal_reply (bus_service_t *svc, bus_envelope_t *reply, void *arg)
{
    nat_ice_t *self = (nat_ice_t *) arg;
    if (!reply || !streq (bus_envelope_type (reply), "discovery.signal.reply"))
        self->signals_failed++;
    if (self->in_flight)
        self->in_flight--;
    s_signal_next (self);
}

static void
s_signal_next (nat_ice_t *self)
{
    while (self->in_flight < S_SIGNAL_FLIGHT && self->queued) {
        s_queued_t *q = &self->queue [self->queue_head];
        self->queue_head = (self->queue_head + 1) % S_SIGNAL_QUEUE;
        self->queued--;
        discovery_signal_t *msg = (discovery_signal_t *) calloc (1, sizeof *msg);
        assert (msg);
        msg->index = q->index;
        snprintf (msg->type, sizeof msg->type, "%s", q->type);
        snprintf (msg->data, sizeof msg->data, "%s", q->data);
        if (bus_service_request (self->owner->svc, "discovery", &discovery_signal_schema, msg, S_SIGNAL_MS,
                                 s_on_signal_reply, self) == 0) {
            self->signals_tx++;
            self->in_flight++;
        }
        else
            self->signals_failed++;
        free (msg);
    }
}

static void
s_signal (nat_ice_t *self, uint32_t index, nat_ice_sig_type_t type, const char *a, const char *b)
{
    s_peer_t *p = &self->peers [index];
    nat_ice_sig_t sig = { .type = type, .id = self->id, .to = type == NAT_ICE_SIG_START ? 0 : p->remote };
    if (type == NAT_ICE_SIG_CREDS) {
        snprintf (sig.ufrag, sizeof sig.ufrag, "%s", a);
        snprintf (sig.pwd, sizeof sig.pwd, "%s", b);
    }
    if (type == NAT_ICE_SIG_CAND)
        snprintf (sig.cand, sizeof sig.cand, "%s", a);
    if (self->queued == S_SIGNAL_QUEUE) {
        self->signals_failed++;
        return;
    }
    s_queued_t *q = &self->queue [(self->queue_head + self->queued) % S_SIGNAL_QUEUE];
    q->index = index;
    if (nat_ice_signal_format (&sig, q->type, sizeof q->type, q->data, sizeof q->data)) {
        self->signals_failed++;
        return;
    }
    self->queued++;
    s_signal_next (self);
}

static void
s_send_credentials (nat_ice_t *self, uint32_t index)
{
    char ufrag [ICE_CRED_MAX + 1], pwd [ICE_CRED_MAX + 1];
    if (ice_agent_local_credentials (self->agent, self->peers [index].remote, ufrag, pwd) == 0)
        s_signal (self, index, NAT_ICE_SIG_CREDS, ufrag, pwd);
}

//  ---------------------------------------------------------------------------
//  Sessions

static const char *
s_name (nat_ice_t *self, uint32_t index)
{
    return index < self->owner->info_count ? self->owner->info [index].name : "?";
}

//  libnice gathers on every address of the host unless told which: never on
//  loopback, a point-to-point link (our TUN) or our own virtual address, or
//  ICE would find pairs through the tunnel it is meant to carry
static void
s_set_locals (nat_ice_t *self)
{
    if (self->locals_set)
        return;
    ice_agent_clear_local_addresses (self->agent);
    struct ifaddrs *list = NULL;
    if (getifaddrs (&list))
        return;
    size_t added = 0;
    for (struct ifaddrs *ifa = list; ifa && added < ICE_AGENT_MAX_LOCAL; ifa = ifa->ifa_next) {
        if (!ifa->ifa_addr || !(ifa->ifa_flags & IFF_UP) || (ifa->ifa_flags & (IFF_LOOPBACK | IFF_POINTOPOINT)))
            continue;
        int family = ifa->ifa_addr->sa_family;
        char ip [INET6_ADDRSTRLEN];
        if (family == AF_INET)
            inet_ntop (AF_INET, &((struct sockaddr_in *) ifa->ifa_addr)->sin_addr, ip, sizeof ip);
        else
        if (family == AF_INET6 && !IN6_IS_ADDR_LINKLOCAL (&((struct sockaddr_in6 *) ifa->ifa_addr)->sin6_addr))
            inet_ntop (AF_INET6, &((struct sockaddr_in6 *) ifa->ifa_addr)->sin6_addr, ip, sizeof ip);
        else
            continue;
        if (streq (ip, self->vip))
            continue;
        char err [160];
        if (ice_agent_add_local_address (self->agent, ip, err, sizeof err) == 0) {
            added++;
            bus_debug ("ice: gathering on %s (%s)", ip, ifa->ifa_name);
        }
    }
    freeifaddrs (list);
    self->locals_set = added > 0;
}

//  The taken socket closed (the session ends, or its handoff failed half way)
static void
s_untake (nat_ice_t *self, uint32_t index)
{
    nat_taken_destroy (&self->peers [index].taken, &self->taken_closed);
}

static void
s_close (nat_ice_t *self, uint32_t index, const char *why, bool bye)
{
    s_peer_t *p = &self->peers [index];
    s_untake (self, index);
    p->untakeable = false;
    if (p->session) {
        bus_info ("peer %s: ICE session closed (%s)", s_name (self, index), why);
        if (bye)
            s_signal (self, index, NAT_ICE_SIG_BYE, NULL, NULL);
        ice_agent_remove_peer (self->agent, p->remote);
        self->closed++;
    }
    p->session = p->waiting = p->selected = p->carried = false;
    p->better_ms = p->relay_try_ms = p->rx_ms = 0;
}

static void
s_failed (nat_ice_t *self, uint32_t index, int64_t now)
{
    s_peer_t *p = &self->peers [index];
    int64_t wait = (int64_t) S_RETRY_MS << (p->failures < 4 ? p->failures : 4);
    p->retry_ms = now + (wait < S_RETRY_MAX_MS ? wait : S_RETRY_MAX_MS);
    p->failures++;
    self->failed++;
}

//  Our session for the peer's id p->remote: added to the agent, credentials sent
static int
s_open (nat_ice_t *self, uint32_t index, int64_t now)
{
    s_peer_t *p = &self->peers [index];
    s_set_locals (self);
    char err [200];
    if (ice_agent_add_peer (self->agent, p->remote, err, sizeof err)) {
        bus_warn ("peer %s: cannot start ICE: %s", s_name (self, index), err);
        s_failed (self, index, now);
        return -1;
    }
    p->session = true;
    p->waiting = p->selected = false;
    p->started_ms = now;
    p->turn_expiry = self->turn_count ? self->turn_expiry : 0;
    self->started++;
    bus_info ("peer %s: ICE session started (%s, %zu TURN server%s)", s_name (self, index),
              ice_agent_controlling (self->agent, p->remote) ? "controlling" : "controlled",
              self->turn_count, self->turn_count == 1 ? "" : "s");
    s_send_credentials (self, index);
    return 0;
}

static uint32_t
s_index (nat_ice_t *self, uint64_t remote, bool *found)
{
    //  The recv callback asks once per datagram, and datagrams come in runs
    //  from one peer: the last answer first, then a scan of the 250 slots
    uint32_t last = self->last_index;
    if (last < NODE_PEERS_MAX && self->peers [last].session && self->peers [last].remote == remote) {
        *found = true;
        return last;
    }
    for (uint32_t i = 0; i < NODE_PEERS_MAX; i++)
        if (self->peers [i].session && self->peers [i].remote == remote) {
            *found = true;
            self->last_index = i;
            return i;
        }
    *found = false;
    return 0;
}

static void
s_dial (nat_ice_t *self, uint32_t index, int64_t now)
{
    nat_peer_t *peer = nat_peer_table_at (self->owner->table, index);
    if (!peer || nat_peer_state (peer) == NAT_PEER_UP)
        return;
    self->peers [index].dial_ms = now;
    nat_addr_set_ice (&self->owner->info [index].dial, index);
    nat_service_send_dial (self->owner, peer);
}

//  ---------------------------------------------------------------------------
//  The handoff: a direct pair's socket in nat's hands

//  What came on a taken socket (nat_taken.c reads it: from the pair's remote
//  address, into crypto's batch as from "ice/<index>", so crypto confirms the
//  same endpoint as before the handoff; anything else is counted and dropped.
//  STUN left on the socket is dropped by the demux)
static void
s_taken_rx (void *arg, size_t ingested, size_t strangers)
{
    s_taker_t *taker = (s_taker_t *) arg;
    if (ingested)
        taker->ice->peers [taker->index].rx_ms = bus_clock_ms ();
    taker->ice->taken_strangers += strangers;
}

void
nat_ice_resume (nat_ice_t *self)
{
    for (size_t i = 0; self && i < NODE_PEERS_MAX; i++)
        if (self->peers [i].taken)
            nat_taken_resume (self->peers [i].taken);
}

//  Once the peer is up on a pair whose local end is not a TURN relay: the
//  socket becomes ours, libnice lets go of it. Called from the tick, never
//  from libnice's callbacks (ice_agent_remove_peer is not allowed there), so
//  libnice has delivered everything it read; whatever arrives from now on is
//  read here. A failure leaves the session in libnice, as before.
static void
s_take (nat_ice_t *self, uint32_t index)
{
    s_peer_t *p = &self->peers [index];
    int fd = -1;
    struct sockaddr_storage remote;
    socklen_t remote_len = sizeof remote;
    char err [200];
    int rc = ice_agent_take_socket (self->agent, p->remote, &fd, &remote, &remote_len, err, sizeof err);
    if (rc == ICE_AGENT_RELAYED) {
        p->untakeable = true;
        return;
    }
    if (rc) {
        bus_debug ("peer %s: ICE socket not taken yet: %s", s_name (self, index), err);
        return;
    }
    nat_addr_t to, as;
    nat_addr_set_ice (&as, index);
    p->taker = (s_taker_t) { self, index };
    nat_udp_t *udp = NULL;
    if (nat_addr_set_sockaddr (&to, (struct sockaddr *) &remote, remote_len)) {
        snprintf (err, sizeof err, "remote address of family %d", remote.ss_family);
        close (fd);
    }
    else
        udp = nat_taken_wrap (self->owner, fd, err, sizeof err);
    if (udp) {
        p->taken = nat_taken_new (self->owner, &udp, &to, &as, s_taken_rx, &p->taker);
        if (!p->taken)
            snprintf (err, sizeof err, "cannot poll fd %d", fd);
    }
    if (!p->taken) {
        bus_warn ("peer %s: ICE socket handoff failed, data stays in libnice: %s", s_name (self, index), err);
        p->untakeable = true;
        return;
    }
    ice_agent_remove_peer (self->agent, p->remote);
    self->taken_total++;
    char text [NAT_ADDR_TEXT_MAX];
    nat_udp_t *udp_taken = nat_taken_udp (p->taken);
    bus_info ("peer %s: ICE socket taken from libnice (port %u, to %s, gso %s, gro %s)", s_name (self, index),
              nat_udp_port (udp_taken), nat_addr_format (&to, text, sizeof text),
              nat_udp_gso (udp_taken) ? "on" : "off", nat_udp_gro (udp_taken) ? "on" : "off");
}

//  One send per taken socket that has datagrams queued
void
nat_ice_flush (nat_ice_t *self)
{
    if (!self)
        return;
    for (size_t i = 0; i < self->pending_count; i++) {
        nat_taken_t *t = self->peers [self->pending [i]].taken;
        if (t)                          //  else closed since
            nat_taken_flush (t);
    }
    self->pending_count = 0;
}

//  ---------------------------------------------------------------------------
//  libice's events and datagrams

static void
s_on_event (ice_agent_t *agent, const ice_event_t *event, void *arg)
{
    nat_ice_t *self = (nat_ice_t *) arg;
    bool found;
    uint32_t index = s_index (self, event->peer, &found);
    if (!found)
        return;
    s_peer_t *p = &self->peers [index];
    int64_t now = bus_clock_ms ();
    switch (event->type) {
        case ICE_EVENT_CANDIDATE:
            s_signal (self, index, NAT_ICE_SIG_CAND, event->text, NULL);
            break;
        case ICE_EVENT_GATHERING_DONE:
            s_signal (self, index, NAT_ICE_SIG_END, NULL, NULL);
            break;
        case ICE_EVENT_STATE:
            bus_debug ("peer %s: ICE %s", s_name (self, index), ice_state_name (event->state));
            break;
        case ICE_EVENT_SELECTED:
            if (!p->selected) {
                self->selected++;
                p->selected_ms = now;
            }
            p->selected = true;
            p->failures = 0;
            p->local_type = event->local_type;
            p->remote_type = event->remote_type;
            bus_info ("peer %s: ICE pair selected after %lld ms: %s %s -> %s %s%s", s_name (self, index),
                      (long long) (now - p->started_ms),
                      ice_cand_type_name (event->local_type), event->local,
                      ice_cand_type_name (event->remote_type), event->remote,
                      event->local_type == ICE_CAND_RELAY || event->remote_type == ICE_CAND_RELAY ? " (TURN)" : "");
            s_dial (self, index, now);
            break;
        case ICE_EVENT_FAILED:
            bus_warn ("peer %s: ICE failed after %lld ms (no pair works)", s_name (self, index),
                      (long long) (now - p->started_ms));
            s_close (self, index, "failed", true);
            s_failed (self, index, now);
            break;
    }
}

static int
s_flush (bus_loop_t *loop, int timer_id, void *arg)
{
    nat_ice_t *self = (nat_ice_t *) arg;
    self->flush_timer = -1;
    nat_datapath_ingest_end (self->owner, &self->ingest);
    self->ingest = (nat_ingest_t) { NAT_HANDLE_NONE, NULL, true };
    return 0;
}

//  A datagram through the peer's pair: into the batch for crypto, which goes
//  when this dispatch of libnice is over (a timer of the loop's next turn)
static void
s_on_recv (ice_agent_t *agent, uint64_t remote, const uint8_t *data, size_t size, void *arg)
{
    nat_ice_t *self = (nat_ice_t *) arg;
    bool found;
    uint32_t index = s_index (self, remote, &found);
    if (!found || !size)
        return;
    self->rx++;
    self->peers [index].rx_ms = bus_clock_ms ();
    nat_addr_t from;
    nat_addr_set_ice (&from, index);
    nat_datapath_ingest (self->owner, (uint8_t *) data, size, &from, bus_clock_ms (), &self->ingest);
    if (self->flush_timer < 0)
        self->flush_timer = bus_loop_timer (self->owner->loop, 0, 1, s_flush, self);
    if (self->flush_timer < 0)
        s_flush (self->owner->loop, -1, self);
}

bool
nat_ice_send (nat_ice_t *self, uint32_t index, const uint8_t *data, size_t size)
{
    s_peer_t *p = self && index < NODE_PEERS_MAX ? &self->peers [index] : NULL;
    nat_taken_t *t = p ? p->taken : NULL;
    if (t) {
        //  Queued for the burst's one sendmmsg (nat_ice_flush); a full batch
        //  goes now. Listed once per flush (a peer's taken socket is listed at
        //  most once, so the list never overflows)
        if (nat_taken_queue (t, data, size))
            self->pending [self->pending_count++] = index;
        return true;
    }
    if (!p || !p->session || !p->selected || ice_agent_send (self->agent, p->remote, data, size) < 0) {
        if (self)
            self->drops++;
        return false;
    }
    self->tx++;
    return true;
}

void
nat_ice_copy (nat_ice_t *self, uint32_t index, const uint8_t *data, size_t size)
{
    if (self && index < NODE_PEERS_MAX && self->peers [index].session && self->peers [index].selected)
        nat_ice_send (self, index, data, size);
}

//  ---------------------------------------------------------------------------
//  Signalling in

static void
s_on_signal (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    nat_ice_t *self = (nat_ice_t *) arg;
    nat_service_t *owner = self->owner;
    discovery_signal_t *msg = (discovery_signal_t *) calloc (1, sizeof *msg);
    assert (msg);
    char err [300];
    if (bus_envelope_get_msg (env, &discovery_signal_schema, msg, err, sizeof err)) {
        bus_warn ("discovery.signal: %s", err);
        free (msg);
        return;
    }
    if (!nat_ice_signal_ours (msg->type)) {
        free (msg);
        return;                 //  someone else's signalling
    }
    self->signals_rx++;
    uint32_t index = msg->index;
    uint32_t static_count = owner->peers ? node_peers_count (owner->peers) : 0;
    nat_peer_t *peer = index < nat_peer_table_slots (owner->table) ? nat_peer_table_at (owner->table, index) : NULL;
    nat_ice_sig_t sig;
    if (!peer || index < static_count || index >= NODE_PEERS_MAX || index >= owner->info_count) {
        self->signals_unknown++;
        bus_debug ("ice: %s from unknown peer index %u dropped", msg->type, index);
        free (msg);
        return;
    }
    if (nat_ice_signal_parse (msg->type, msg->data, &sig, err, sizeof err)) {
        self->signals_bad++;
        if (self->signals_bad <= S_LOG_BAD_MAX || self->signals_bad % 100 == 0)
            bus_warn ("peer %s: bad ICE signal dropped (%" PRIu64 " so far): %s", s_name (self, index),
                      self->signals_bad, err);
        free (msg);
        return;
    }
    free (msg);
    s_peer_t *p = &self->peers [index];
    int64_t now = bus_clock_ms ();
    if (!owner->config.ice || nat_relay_path_forced (owner, owner->info [index].name) || !self->agent) {
        self->signals_unknown++;
        bus_debug ("peer %s: ICE signal dropped (ICE off for it)", s_name (self, index));
        return;
    }
    //  A signal for an older session of ours (we restarted since)
    if (sig.to && sig.to != self->id) {
        self->signals_unknown++;
        return;
    }
    //  A candidate, end or bye of another session than ours (late, or from
    //  a predecessor of the peer's nat): dropped. A start or credentials with
    //  another id: the peer's nat restarted, our old session is worthless
    if (p->session && p->remote != sig.id && sig.type != NAT_ICE_SIG_START && sig.type != NAT_ICE_SIG_CREDS) {
        self->signals_unknown++;
        return;
    }
    if (p->remote != sig.id && p->session)
        s_close (self, index, "the peer started a new session", false);
    //  After the handoff libnice has no session for the peer: a late
    //  candidate is of no use, new credentials mean the peer restarted its
    //  side (its TURN credential ran out): ours starts over to answer
    if (p->taken && p->remote == sig.id) {
        if (sig.type == NAT_ICE_SIG_CAND || sig.type == NAT_ICE_SIG_END) {
            self->signals_unknown++;
            return;
        }
        if (sig.type == NAT_ICE_SIG_CREDS)
            s_close (self, index, "the peer restarted it", false);
    }
    int rc;
    switch (sig.type) {
        case NAT_ICE_SIG_START:
            //  Each session gathers again and may allocate on the TURN server:
            //  a peer that starts over and over gets one a second at most
            if (p->session && p->remote == sig.id && now - p->started_ms < S_START_MIN_MS) {
                self->signals_unknown++;
                break;
            }
            if (p->session)
                s_close (self, index, "the peer starts again", false);
            p->remote = sig.id;
            s_open (self, index, now);
            break;
        case NAT_ICE_SIG_CREDS:
            p->remote = sig.id;
            if (!p->session && s_open (self, index, now))
                break;
            rc = ice_agent_set_remote_credentials (self->agent, p->remote, sig.ufrag, sig.pwd, err, sizeof err);
            if (rc < 0) {
                self->signals_bad++;
                bus_warn ("peer %s: ICE credentials refused: %s", s_name (self, index), err);
            }
            else
            if (rc == 1) {
                //  The peer restarted its session: so did libice; ours again
                p->selected = false;
                p->started_ms = now;
                bus_info ("peer %s: ICE restarted by the peer", s_name (self, index));
                s_send_credentials (self, index);
            }
            break;
        case NAT_ICE_SIG_CAND:
            if (!p->session)
                self->signals_unknown++;
            else
            if (ice_agent_add_remote_candidate (self->agent, p->remote, sig.cand, err, sizeof err)) {
                self->signals_bad++;
                bus_warn ("peer %s: ICE candidate refused: %s", s_name (self, index), err);
            }
            break;
        case NAT_ICE_SIG_END:
            if (!p->session)
                self->signals_unknown++;
            else
                ice_agent_end_of_candidates (self->agent, p->remote);
            break;
        case NAT_ICE_SIG_BYE:
            if (p->session)
                s_close (self, index, "closed by the peer", false);
            //  Not at once again: the peer closed for a reason (a better path, or a failure)
            if (p->retry_ms < now + S_RETRY_MS)
                p->retry_ms = now + S_RETRY_MS;
            break;
    }
}

//  ---------------------------------------------------------------------------
//  ICE servers from the registry (discovery.ice): "stun:IP:PORT" and
//  "turn:IP:PORT[?transport=udp]"; names and TCP/TLS are not used (yet)

//  "stun:HOST:PORT" / "turn:HOST:PORT[?transport=udp]": *addr "HOST:PORT" and
//  *is_name when HOST is a name (nat resolves it: nat_ice_resolved). -1 for
//  another scheme or transport, or a malformed address.
static int
s_url (const char *url, const char *scheme, char *addr, size_t size, bool *is_name)
{
    size_t n = strlen (scheme);
    if (strncmp (url, scheme, n) != 0)
        return -1;
    const char *start = url + n;
    const char *query = strchr (start, '?');
    size_t len = query ? (size_t) (query - start) : strlen (start);
    if (query && strcmp (query, "?transport=udp") != 0)
        return -1;
    if (len >= size)
        return -1;
    memcpy (addr, start, len);
    addr [len] = 0;
    nat_endpoint_t endpoint;
    char err [160];
    if (nat_endpoint_parse (&endpoint, addr, err, sizeof err)) {
        bus_debug ("ice: %s skipped: %s", url, err);
        return -1;
    }
    *is_name = endpoint.is_name;
    return 0;
}

//  The ICE servers of an iceServers JSON array: the first STUN server, up to
//  ICE_AGENT_MAX_TURN TURN servers (UDP) with their credentials, and the
//  credential's expiry (the REST username's "expiry:", else now + ttl). 0, or
//  -1 with err when the text is not a JSON array.
static int
s_servers_parse (const char *text, uint32_t ttl, int64_t now, s_servers_t *out, char *err, size_t errsize)
{
    memset (out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loads (text, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_array (root)) {
        snprintf (err, errsize, "iceServers is not a JSON array%s%s", root ? "" : ": ", root ? "" : jerr.text);
        json_decref (root);
        return -1;
    }
    size_t i;
    json_t *server;
    json_array_foreach (root, i, server) {
        json_t *urls = json_object_get (server, "urls");
        const char *user = json_string_value (json_object_get (server, "username"));
        const char *pass = json_string_value (json_object_get (server, "credential"));
        size_t count = json_is_array (urls) ? json_array_size (urls) : json_is_string (urls) ? 1 : 0;
        for (size_t k = 0; k < count; k++) {
            const char *url = json_string_value (json_is_array (urls) ? json_array_get (urls, k) : urls);
            char addr [sizeof out->stun];
            s_turn_t *turn = &out->turn [out->turn_count];
            bool is_name;
            if (!url)
                continue;
            if (!*out->stun && s_url (url, "stun:", addr, sizeof addr, &is_name) == 0) {
                snprintf (out->stun, sizeof out->stun, "%s", addr);
                out->stun_name = is_name;
            }
            else
            if (out->turn_count < ICE_AGENT_MAX_TURN && user && pass && strlen (user) < sizeof turn->user
            &&  strlen (pass) < sizeof turn->pass && s_url (url, "turn:", addr, sizeof addr, &is_name) == 0) {
                out->turn_name [out->turn_count] = is_name;
                snprintf (turn->addr, sizeof turn->addr, "%s", addr);
                snprintf (turn->user, sizeof turn->user, "%s", user);
                snprintf (turn->pass, sizeof turn->pass, "%s", pass);
                out->turn_count++;
            }
        }
    }
    json_decref (root);
    if (out->turn_count) {
        char *end;
        long long value = strtoll (out->turn [0].user, &end, 10);
        out->expiry = end != out->turn [0].user && *end == ':' && value > 0 ? value : ttl ? now + ttl : 0;
    }
    return 0;
}

//  The servers in use from now on (names resolved, unresolved ones left out)
static void
s_apply (nat_ice_t *self, s_servers_t *servers)
{
    char err [300];
    if (servers->stun_name)
        *servers->stun = 0;
    if (ice_agent_set_stun (self->agent, *servers->stun ? servers->stun : NULL, err, sizeof err)) {
        bus_warn ("ice: STUN server %s: %s", servers->stun, err);
        *servers->stun = 0;
    }
    ice_agent_clear_turn (self->agent);
    size_t usable = 0;
    for (size_t t = 0; t < servers->turn_count; t++) {
        if (servers->turn_name [t])
            continue;
        if (ice_agent_add_turn (self->agent, servers->turn [t].addr, servers->turn [t].user, servers->turn [t].pass,
                                err, sizeof err))
            bus_warn ("ice: TURN server %s: %s", servers->turn [t].addr, err);
        else
            self->turn [usable++] = servers->turn [t];
    }
    snprintf (self->stun, sizeof self->stun, "%s", servers->stun);
    self->turn_count = usable;
    self->turn_expiry = usable ? servers->expiry : 0;
    self->have_servers = *servers->stun || usable;
    bus_info ("ice: STUN %s, %zu TURN server%s%s%s", *servers->stun ? servers->stun : "none", usable,
              usable == 1 ? "" : "s", usable ? ", first " : "", usable ? self->turn [0].addr : "");
}

//  Starts resolving the names among the servers (cookie: NAT_ICE_COOKIE, the
//  generation, the server: 0 STUN, 1.. TURN); applies them when none is left
static void
s_resolve (nat_ice_t *self)
{
    s_servers_t *r = &self->resolving;
    self->generation++;
    self->unresolved = 0;
    for (size_t k = 0; k <= r->turn_count; k++) {
        bool *is_name = k ? &r->turn_name [k - 1] : &r->stun_name;
        char *addr = k ? r->turn [k - 1].addr : r->stun;
        nat_endpoint_t endpoint;
        char err [160];
        if (!*is_name || nat_endpoint_parse (&endpoint, addr, err, sizeof err))
            continue;
        uint64_t cookie = NAT_ICE_COOKIE + ((uint64_t) (self->generation & 0xffff) << 8) + k;
        if (nat_resolver_request (self->owner->resolver, endpoint.host, endpoint.port, cookie))
            bus_warn ("ice: cannot resolve %s now: %s", endpoint.host, strerror (errno));
        else
            self->unresolved++;
    }
    if (!self->unresolved)
        s_apply (self, r);
}

void
nat_ice_resolved (nat_ice_t *self, uint64_t cookie, const nat_addr_t *addrs, size_t count)
{
    uint64_t k = (cookie - NAT_ICE_COOKIE) & 0xff;
    if (!self || ((cookie - NAT_ICE_COOKIE) >> 8) != (self->generation & 0xffff) || !self->unresolved
    ||  k > self->resolving.turn_count)
        return;                 //  of an older discovery.ice
    s_servers_t *r = &self->resolving;
    bool *is_name = k ? &r->turn_name [k - 1] : &r->stun_name;
    char *addr = k ? r->turn [k - 1].addr : r->stun;
    if (count) {
        char text [NAT_ADDR_TEXT_MAX];
        bus_debug ("ice: %s is %s", addr, nat_addr_format (&addrs [0], text, sizeof text));
        snprintf (addr, sizeof r->stun, "%s", text);
        *is_name = false;
    }
    else
        bus_warn ("ice: cannot resolve %s: server left out", addr);
    if (--self->unresolved == 0)
        s_apply (self, r);
}

static void
s_on_servers (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    nat_ice_t *self = (nat_ice_t *) arg;
    discovery_ice_t *msg = (discovery_ice_t *) calloc (1, sizeof *msg);
    assert (msg);
    char err [300];
    s_servers_t servers;
    if (bus_envelope_get_msg (env, &discovery_ice_schema, msg, err, sizeof err)
    ||  s_servers_parse (msg->ice_servers, msg->ttl, (int64_t) time (NULL), &servers, err, sizeof err)) {
        bus_warn ("discovery.ice: %s", err);
        free (msg);
        return;
    }
    free (msg);
    if (!self->agent || memcmp (&servers, &self->given, sizeof servers) == 0)
        return;                 //  the same again (bus.sync)
    self->given = servers;
    self->resolving = servers;
    s_resolve (self);
}

static void
s_on_address (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    nat_ice_t *self = (nat_ice_t *) arg;
    node_address_t msg;
    char err [200];
    if (bus_envelope_get_msg (env, &node_address_schema, &msg, err, sizeof err))
        return;
    char *slash = strchr (msg.address, '/');
    if (slash)
        *slash = 0;
    snprintf (self->vip, sizeof self->vip, "%s", msg.address);
}

//  ---------------------------------------------------------------------------
//  Every tick

//  A session whose selected pair is on our own TURN allocation, made with a
//  credential that expires within S_TURN_MARGIN_S, while a newer credential
//  is known (current_expiry): restart it on the new one. libnice refreshes the
//  allocation with the credential it was made with, which coturn refuses once
//  expired (docs/ice.md). The peer's side of such a pair (its remote
//  candidate is the relay) needs nothing.
static bool
s_turn_restart_due (const s_peer_t *p, int64_t current_expiry, int64_t wall)
{
    return p->session && p->selected && p->local_type == ICE_CAND_RELAY && p->turn_expiry
        && current_expiry > p->turn_expiry && wall >= p->turn_expiry - S_TURN_MARGIN_S;
}

void
nat_ice_tick (nat_ice_t *self, int64_t now)
{
    if (!self || !self->agent)
        return;
    nat_service_t *owner = self->owner;
    uint32_t static_count = owner->peers ? node_peers_count (owner->peers) : 0;
    size_t slots = nat_peer_table_slots (owner->table);
    int64_t wall = (int64_t) time (NULL);
    for (uint32_t i = static_count; i < NODE_PEERS_MAX; i++) {
        s_peer_t *p = &self->peers [i];
        nat_peer_t *peer = i < slots && i < owner->info_count ? nat_peer_table_at (owner->table, i) : NULL;
        if (!peer) {
            if (p->session)
                s_close (self, i, "peer gone", true);
            if (p->remote || p->down_ms)
                *p = (s_peer_t) { 0 };
            continue;
        }
        nat_peer_info_t *info = &owner->info [i];
        bool up = nat_peer_state (peer) == NAT_PEER_UP;
        const nat_addr_t *endpoint = nat_peer_endpoint (peer);
        bool on_ice = up && nat_addr_ice_index (endpoint, NULL);
        bool allowed = owner->config.ice && !info->force_relay && !nat_relay_path_forced (owner, info->name);
        if (!up && !p->down_ms)
            p->down_ms = now;
        if (up)
            p->down_ms = 0;
        //  Up on a better path (own direct, or the relay): the session ends after a while
        if ((p->session || p->waiting) && ((up && !on_ice) || !allowed)) {
            if (!p->better_ms)
                p->better_ms = now;
            if (!allowed || now - p->better_ms >= S_GRACE_MS) {
                char path [64];
                nat_relay_path_describe (owner, peer, path, sizeof path);
                s_close (self, i, allowed ? path : "ICE off for it", true);
                p->retry_ms = now + S_RETRY_MS;
            }
        }
        else
            p->better_ms = 0;
        if (p->waiting && now - p->started_ms >= S_ANSWER_MS) {
            bus_info ("peer %s: no answer to ice-start", s_name (self, i));
            p->waiting = false;
            s_failed (self, i, now);
        }
        if (!p->session && !p->waiting && !up && allowed && self->have_servers
        &&  now - p->down_ms >= (int64_t) owner->config.ice_after_ms && now >= p->retry_ms) {
            p->waiting = true;
            p->started_ms = now;
            bus_info ("peer %s: not up after %lld ms, starting ICE", s_name (self, i), (long long) (now - p->down_ms));
            s_signal (self, i, NAT_ICE_SIG_START, NULL, NULL);
        }
        //  The pair carried the peer and the peer went down (silent: a NAT
        //  mapping gone, the network changed): the session is worthless, a new
        //  one starts after ice_after like for any peer that is down
        if (on_ice)
            p->carried = true;
        if (p->session && p->carried && !up) {
            s_close (self, i, "the peer went down on it", true);
            p->retry_ms = 0;
        }
        //  A pair, but no handshake gets through it
        if (p->session && p->selected && !p->carried && !up && now - p->selected_ms >= S_HANDSHAKE_MS) {
            s_close (self, i, "no handshake through the pair", true);
            s_failed (self, i, now);
        }
        if (p->session && p->selected && !up && now - p->dial_ms >= S_DIAL_MS)
            s_dial (self, i, now);
        //  Up on a direct pair: its socket becomes ours (the handoff)
        if (on_ice && p->session && p->selected && !p->taken && !p->untakeable && p->local_type != ICE_CAND_RELAY)
            s_take (self, i);
        //  On TURN while the relay answers: the relay comes before TURN, so a
        //  handshake goes through it now and then (as a probe: nat_relay_path_probe);
        //  when the peer answers there, crypto confirms the relay and the session
        //  ends after the grace period
        bool turn = p->selected && (p->local_type == ICE_CAND_RELAY || p->remote_type == ICE_CAND_RELAY);
        if (on_ice && turn && info->relay_id && owner->relay && nat_relay_current (owner->relay) >= 0) {
            if (!p->relay_try_ms)
                p->relay_try_ms = now + S_RELAY_FIRST_MS;
            else
            if (now >= p->relay_try_ms && (!info->last_dial_ms || now - info->last_dial_ms >= 300)) {
                p->relay_try_ms = now + S_RELAY_EVERY_MS;
                info->plan = (nat_probe_plan_t) { .legs_count = 1 };
                nat_addr_set_relay (&info->plan.legs [0], info->relay_id);
                info->probe_until_ms = now + 1000;
                bus_debug ("peer %s: on TURN, the relay answers: a handshake through it", s_name (self, i));
                nat_service_send_dial (owner, peer);
            }
        }
        else {
            //  Our probe plan of one relay leg is not nat_relay_path's: gone
            //  with the reason it was made for (nat.status `reason` reads plans)
            if (p->relay_try_ms && info->plan.legs_count == 1 && nat_addr_relay_peer (&info->plan.legs [0]))
                info->plan.legs_count = 0;
            p->relay_try_ms = 0;
        }
        //  Our TURN allocation's credential runs out: a new session on the new one
        if (s_turn_restart_due (p, self->turn_expiry, wall)) {
            char err [200];
            if (ice_agent_restart (self->agent, p->remote, err, sizeof err) == 0) {
                bus_info ("peer %s: ICE restarted: its TURN credential expires in %lld s", s_name (self, i),
                          (long long) (p->turn_expiry - wall));
                self->turn_restarts++;
                p->selected = false;
                p->started_ms = now;
                p->turn_expiry = self->turn_expiry;
                s_send_credentials (self, i);
            }
        }
    }
}

//  ---------------------------------------------------------------------------

void
nat_ice_netchange (nat_ice_t *self)
{
    //  Gathered again at the next session; a running one whose path died
    //  ends when its peer goes down on it (nat_ice_tick)
    if (self && self->locals_set) {
        self->locals_set = false;
        bus_debug ("ice: local addresses changed: the next session gathers on the new ones");
    }
}

bool
nat_ice_holds (nat_ice_t *self, uint32_t index, int64_t now)
{
    s_peer_t *p = self && index < NODE_PEERS_MAX ? &self->peers [index] : NULL;
    return p && p->session && p->selected && p->local_type != ICE_CAND_RELAY && p->remote_type != ICE_CAND_RELAY
        && p->rx_ms > 0 && now - p->rx_ms < NAT_DIRECT_HOLD_MS;
}

void
nat_ice_describe (nat_ice_t *self, uint32_t index, char *out, size_t size)
{
    s_peer_t *p = self && index < NODE_PEERS_MAX ? &self->peers [index] : NULL;
    if (!p || !p->session || !p->selected) {
        snprintf (out, size, "ice (no pair)");
        return;
    }
    bool turn = p->local_type == ICE_CAND_RELAY || p->remote_type == ICE_CAND_RELAY;
    snprintf (out, size, "%s (%s/%s)", turn ? "turn" : "ice direct",
              ice_cand_type_name (p->local_type), ice_cand_type_name (p->remote_type));
}

void
nat_ice_status (nat_ice_t *self, nat_status_reply_t *reply)
{
    if (!self)
        return;
    for (size_t i = 0; i < NODE_PEERS_MAX; i++)
        reply->ice_sessions += self->peers [i].session;
    reply->ice_started = self->started;
    reply->ice_selected = self->selected;
    reply->ice_failed = self->failed;
    reply->ice_closed = self->closed;
    reply->ice_turn_restarts = self->turn_restarts;
    reply->ice_signals_tx = self->signals_tx;
    reply->ice_signals_rx = self->signals_rx;
    reply->ice_signals_bad = self->signals_bad;
    reply->ice_signals_dropped = self->signals_unknown;
    reply->ice_signals_failed = self->signals_failed;
    reply->ice_rx = self->rx;
    reply->ice_tx = self->tx;
    reply->ice_drops = self->drops;
    nat_udp_stats_t taken = self->taken_closed;
    for (size_t i = 0; i < NODE_PEERS_MAX; i++) {
        nat_taken_t *t = self->peers [i].taken;
        if (!t)
            continue;
        reply->ice_taken++;
        nat_taken_stats_add (t, &taken);
    }
    reply->ice_taken_total = self->taken_total;
    reply->ice_taken_rx = taken.dgrams_in;
    reply->ice_taken_rx_bytes = taken.bytes_in;
    reply->ice_taken_tx = taken.dgrams_out;
    reply->ice_taken_tx_bytes = taken.bytes_out;
    reply->ice_taken_drops = taken.send_errors + self->taken_strangers;
    reply->ice_turn_servers = (uint32_t) self->turn_count;
    snprintf (reply->ice_stun, sizeof reply->ice_stun, "%.*s", (int) sizeof reply->ice_stun - 1, self->stun);
}

nat_ice_t *
nat_ice_new (nat_service_t *owner)
{
    nat_ice_t *self = (nat_ice_t *) calloc (1, sizeof (nat_ice_t));
    assert (self);
    self->owner = owner;
    self->flush_timer = -1;
    self->ingest = (nat_ingest_t) { NAT_HANDLE_NONE, NULL, true };
    while (!self->id && getrandom (&self->id, sizeof self->id, 0) != sizeof self->id)
        self->id = (uint64_t) zclock_time () ^ (uint64_t) getpid () << 32;
    self->agent = ice_agent_new (self->id, s_on_event, self);
    if (!self->agent || ice_agent_attach (self->agent, owner->loop)) {
        bus_warn ("ice: cannot set up libnice: no ICE");
        ice_agent_destroy (&self->agent);
    }
    else
        ice_agent_set_recv (self->agent, s_on_recv, self);
    bus_service_subscribe (owner->svc, "discovery.ice", s_on_servers, self);
    bus_service_subscribe (owner->svc, "discovery.signal", s_on_signal, self);
    bus_service_subscribe (owner->svc, "node.address", s_on_address, self);
    bus_debug ("ice: id %016" PRIx64, self->id);
    return self;
}

void
nat_ice_destroy (nat_ice_t **self_p)
{
    assert (self_p);
    nat_ice_t *self = *self_p;
    if (!self)
        return;
    for (uint32_t i = 0; i < NODE_PEERS_MAX; i++) {
        if (self->peers [i].session && self->agent)
            s_signal (self, i, NAT_ICE_SIG_BYE, NULL, NULL);
        s_untake (self, i);
    }
    if (self->flush_timer >= 0)
        bus_loop_timer_end (self->owner->loop, self->flush_timer);
    ice_agent_destroy (&self->agent);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------------
//  Self test: what nat takes from the registry's iceServers (the sessions
//  themselves run in tests/integration/ice_turn.sh, through real NATs)

//  After the handoff: what nat_ice_send queues for a taken socket leaves only
//  at nat_ice_flush (the batching itself: nat_taken's self test), and a
//  peer without a pair counts a drop
static void
s_test_taken_batching (bool verbose)
{
    nat_udp_test_netns ();
    char err [200];
    nat_udp_t *remote = nat_udp_new (&(nat_udp_config_t) { .bind = "127.0.0.1:0" }, err, sizeof err);
    nat_udp_t *local = nat_udp_new (&(nat_udp_config_t) { .bind = "127.0.0.1:0" }, err, sizeof err);
    assert (remote && local);
    nat_ice_t *self = (nat_ice_t *) calloc (1, sizeof (nat_ice_t));
    assert (self);
    nat_addr_t to, as;
    nat_addr_set_ip (&to, "127.0.0.1", nat_udp_port (remote));
    nat_addr_set_ice (&as, 7);
    self->peers [7].session = self->peers [7].selected = true;
    self->peers [7].taken = nat_taken_new (NULL, &local, &to, &as, NULL, NULL);
    nat_udp_t *udp = nat_taken_udp (self->peers [7].taken);
    static uint8_t data [100][200];
    for (int i = 0; i < 100; i++) {
        memset (data [i], i, sizeof data [i]);
        assert (nat_ice_send (self, 7, data [i], sizeof data [i]));
    }
    //  The first 64 went when the queue was full; 36 wait for the flush
    assert (nat_udp_stats (udp)->dgrams_out == 64 && self->pending_count == 1);
    nat_ice_flush (self);
    assert (nat_udp_stats (udp)->dgrams_out == 100 && self->pending_count == 0);
    //  No pair and no session: counted as a drop, nothing queued
    assert (!nat_ice_send (self, 8, data [0], 10) && self->drops == 1);
    assert (!nat_ice_send (self, NODE_PEERS_MAX, data [0], 10) && self->drops == 2);
    //  Queued, then the session ends before the flush: the queue goes with the socket
    assert (nat_ice_send (self, 7, data [0], 10));
    nat_taken_destroy (&self->peers [7].taken, &self->taken_closed);
    nat_ice_flush (self);
    assert (self->taken_closed.dgrams_out == 100 && self->pending_count == 0);
    if (verbose)
        printf ("(taken: 100 datagrams) ");
    nat_udp_destroy (&remote);
    free (self);
}

void
nat_ice_test (bool verbose)
{
    printf (" * nat_ice: ");
    s_servers_t out;
    char err [200];
    const char *meta = "[{\"urls\":[\"stun:203.0.113.10:3478\"]},"
        "{\"urls\":[\"turn:203.0.113.10:3478?transport=udp\",\"turn:203.0.113.10:3478?transport=tcp\"],"
        "\"username\":\"1800000000:b4c804b23a21c6aa\",\"credential\":\"c2VjcmV0\"}]";
    assert (s_servers_parse (meta, 600, 1000, &out, err, sizeof err) == 0);
    assert (streq (out.stun, "203.0.113.10:3478") && out.turn_count == 1);         //  TCP skipped
    assert (streq (out.turn [0].addr, "203.0.113.10:3478") && streq (out.turn [0].pass, "c2VjcmV0"));
    assert (out.expiry == 1800000000);
    //  A username without an expiry: now + ttl; a single URL as a string; IPv6
    assert (s_servers_parse ("[{\"urls\":\"turn:[2001:db8::1]:3478\",\"username\":\"u\",\"credential\":\"p\"}]",
                             600, 1000, &out, err, sizeof err) == 0);
    assert (out.turn_count == 1 && streq (out.turn [0].addr, "[2001:db8::1]:3478") && out.expiry == 1600);
    //  Names: kept as they are, to be resolved (nat_ice_resolved)
    assert (s_servers_parse ("[{\"urls\":[\"stun:turn.example.org:3478\"]},{\"urls\":\"turn:turn.example.org:3478?transport=udp\","
                             "\"username\":\"5:x\",\"credential\":\"p\"}]", 0, 1000, &out, err, sizeof err) == 0);
    assert (streq (out.stun, "turn.example.org:3478") && out.stun_name);
    assert (out.turn_count == 1 && out.turn_name [0] && streq (out.turn [0].addr, "turn.example.org:3478"));
    //  Skipped: no port, bad names, TURN without credentials, TLS, other
    //  transports and schemes, junk of every kind
    assert (s_servers_parse ("[{\"urls\":[\"stun:203.0.113.10\",\"stun:bad_name!:3478\",\"turns:203.0.113.10:5349\","
                             "\"stun:203.0.113.10:0\",\"turn:203.0.113.10:3478?transport=udp&x=1\",\"turn:203.0.113.10:3478\",7]},"
                             "{\"urls\":{}},{\"username\":\"u\"},1,null]", 0, 1000, &out, err, sizeof err) == 0);
    assert (!*out.stun && out.turn_count == 0 && out.expiry == 0);
    assert (s_servers_parse ("[]", 0, 1000, &out, err, sizeof err) == 0 && !*out.stun && !out.turn_count);
    assert (s_servers_parse ("{\"urls\":[]}", 0, 1000, &out, err, sizeof err) == -1 && strstr (err, "not a JSON array"));
    assert (s_servers_parse ("[", 0, 1000, &out, err, sizeof err) == -1 && strstr (err, "not a JSON array: "));
    //  At most ICE_AGENT_MAX_TURN TURN servers
    char many [2000] = "[";
    for (int i = 0; i < 6; i++)
        snprintf (many + strlen (many), sizeof many - strlen (many),
                  "%s{\"urls\":\"turn:203.0.113.%d:3478\",\"username\":\"1:x\",\"credential\":\"p\"}", i ? "," : "", 10 + i);
    strcat (many, "]");
    assert (s_servers_parse (many, 0, 1000, &out, err, sizeof err) == 0);
    assert (out.turn_count == ICE_AGENT_MAX_TURN && streq (out.turn [3].addr, "203.0.113.13:3478") && out.expiry == 1);
    //  When a session on our TURN relay restarts: 60 s before its credential
    //  expires, once a newer one is known; never for the peer's relay
    s_peer_t p = { .session = true, .selected = true, .local_type = ICE_CAND_RELAY,
                   .remote_type = ICE_CAND_SRFLX, .turn_expiry = 10000 };
    assert (!s_turn_restart_due (&p, 10000, 9990));     //  no newer credential yet
    assert (!s_turn_restart_due (&p, 20000, 9939));     //  61 s left
    assert (s_turn_restart_due (&p, 20000, 9940));
    assert (s_turn_restart_due (&p, 20000, 10500));     //  late (discovery was away): at once
    p.local_type = ICE_CAND_PRFLX;
    p.remote_type = ICE_CAND_RELAY;
    assert (!s_turn_restart_due (&p, 20000, 9990));     //  the peer's allocation
    p.local_type = ICE_CAND_RELAY;
    p.selected = false;
    assert (!s_turn_restart_due (&p, 20000, 9990));     //  no pair yet (a restart is under way)
    s_test_taken_batching (verbose);
    if (verbose)
        printf ("(iceServers: 8 cases, TURN restart: 6, taken socket: 100 datagrams) ");
    printf ("OK\n");
}
