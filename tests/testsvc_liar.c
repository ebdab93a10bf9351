/*  testsvc_liar: bifrost-testsvc as a malicious router (issue 18, docs/routing.md
    "Bogus routes from a peer"; tests/integration/mesh_liar.sh). It takes the
    router's place on a node of its own, whose operator installed it as the
    node's bifrost-router (a copy under that name in the node's libexec, with
    `--liar FAKES` in the router's `args`): the supervisor starts it under the
    router's uid and the broker lets it register as `router`, as it would any
    program an operator puts there. (A link named bifrost-router elsewhere is
    not enough: a service connects while it is still root, during its setup,
    and the broker then checks that its file is the libexec's bifrost-router,
    schemas/senders.def.) So it speaks through the node's real crypto sessions: every
    `route.announce` it publishes goes to a neighbour inside that neighbour's
    session, authenticated as this node, like an honest router's. What it says:

    every second, to every peer discovery names (crypto drops what has no session):
      - itself one hop from every other peer at the least metric (101): taken,
        and the honest routers must keep their direct links and shorter paths;
      - raw bytes the codec refuses: metric 0, "negative" (0xFFFFFFFE), 100 (below
        101 per hop), a path of 17 hops;
      - one announcement of forged paths: a path through the receiver itself,
        a path naming each other peer right after the liar (to made-up
        destinations that peer never offers) and an 8-hop path (9 at the
        receiver, above max_hops);
      - an announcement whose origin is another peer (not its session's);
      - an announcement with an old sequence number;
    in the second round and every tenth after, FAKES made-up destinations one hop
    away at 101, a set of its own for each peer (ids from 1 + k x FAKES for the
    k-th: below every real id, so they sort first); in the fifth and every
    tenth after, a burst of 200 announcements at once (the receiver takes 20 a
    second, 100 at once). Rounds start once discovery has named this node and
    a peer; the early ones may find no session yet (crypto drops them).

    It forwards nothing and publishes no route.next: what it attracts is lost
    (its nat has no next hop), which is the damage a liar can do. */
#include "bus_service.h"
#include "bus_log.h"
#include "route_msg.h"
#include "testsvc.h"

#include <assert.h>
#include <inttypes.h>
#include <time.h>

#define S_PEERS 64
#define S_BURST 200

typedef struct {
    uint32_t index;
    uint64_t id;
} s_peer_t;

static size_t s_fakes;                  //  0: not a liar
static s_peer_t s_peers [S_PEERS];
static size_t s_peer_count;
static uint64_t s_self;
static uint64_t s_seqno;
static unsigned s_round;
static uint64_t s_sent, s_sent_raw;

static uint64_t
s_hex_id (const char *text)
{
    char *end = NULL;
    uint64_t id = text && *text ? strtoull (text, &end, 16) : 0;
    return end && *end == 0 ? id : 0;
}

static void
s_on_peer_up (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    peer_up_t up;
    char err [200];
    if (bus_envelope_get_msg (env, &peer_up_schema, &up, err, sizeof err))
        return;
    uint64_t id = s_hex_id (up.peer_id);
    if (!id)
        return;
    for (size_t i = 0; i < s_peer_count; i++)
        if (s_peers [i].index == up.index) {
            s_peers [i].id = id;
            return;
        }
    if (s_peer_count < S_PEERS)
        s_peers [s_peer_count++] = (s_peer_t) { up.index, id };
}

static void
s_on_address (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    node_address_t addr;
    char err [200];
    if (bus_envelope_get_msg (env, &node_address_schema, &addr, err, sizeof err) == 0 && s_hex_id (addr.peer_id))
        s_self = s_hex_id (addr.peer_id);
}

//  Bytes as they are, to one neighbour
static void
s_send_raw (bus_service_t *svc, uint32_t index, const uint8_t *bytes, size_t size)
{
    route_announce_t a = { .index = index, .announcement_size = (uint32_t) size };
    memcpy (a.announcement, bytes, size);
    bus_service_publish (svc, &route_announce_schema, &a);
    s_sent++;
}

//  msg encoded with the next sequence number (unless it has one), to one neighbour
static void
s_send (bus_service_t *svc, uint32_t index, route_msg_t *msg, uint8_t *wire)
{
    if (!msg->seqno)
        msg->seqno = ++s_seqno;
    size_t size = route_msg_encode (msg, wire, ROUTE_WIRE_MAX_SIZE);
    assert (size);
    s_send_raw (svc, index, wire, size);
}

static void
s_entry (route_msg_t *msg, uint64_t dest, uint32_t metric, uint8_t hops, const uint64_t *path)
{
    route_entry_t *e = &msg->routes [msg->count++];
    *e = (route_entry_t) { .dest = dest, .metric = metric, .hops = hops };
    memcpy (e->path, path, hops * sizeof *path);
}

//  A one-entry announcement (one hop to dest) whose metric bytes are then set
//  to what the codec refuses
static void
s_bad_metric (bus_service_t *svc, uint32_t index, uint64_t dest, uint32_t metric)
{
    static route_msg_t msg;
    uint8_t wire [ROUTE_WIRE_MAX_SIZE];
    msg = (route_msg_t) { .origin = s_self, .seqno = ++s_seqno };
    s_entry (&msg, dest, ROUTE_WIRE_MIN_HOP_METRIC, 1, &s_self);
    size_t size = route_msg_encode (&msg, wire, sizeof wire);
    assert (size);
    for (size_t b = 0; b < 4; b++)
        wire [ROUTE_WIRE_ANNOUNCE_ROUTES + ROUTE_WIRE_ROUTE_METRIC + b] = (uint8_t) (metric >> (8 * b));
    s_send_raw (svc, index, wire, size);
    s_sent_raw++;
}

static void
s_lie_to (bus_service_t *svc, const s_peer_t *to)
{
    static route_msg_t msg;
    uint8_t wire [ROUTE_WIRE_MAX_SIZE + 8];
    //  Itself one hop from every other peer, at the least metric
    msg = (route_msg_t) { .origin = s_self };
    for (size_t i = 0; i < s_peer_count; i++)
        if (s_peers [i].id != to->id && s_peers [i].id != s_self) {
            s_entry (&msg, s_peers [i].id, ROUTE_WIRE_MIN_HOP_METRIC, 1, &s_self);
            if (msg.count == ROUTE_WIRE_MAX_ROUTES) {
                s_send (svc, to->index, &msg, wire);
                msg = (route_msg_t) { .origin = s_self };
            }
        }
    if (msg.count)
        s_send (svc, to->index, &msg, wire);
    //  Raw bytes: metric 0, "negative", below 101 per hop; 17 hops
    s_bad_metric (svc, to->index, to->id ^ 1, 0);
    s_bad_metric (svc, to->index, to->id ^ 1, 0xFFFFFFFEu);
    s_bad_metric (svc, to->index, to->id ^ 1, ROUTE_WIRE_MIN_HOP_METRIC - 1);
    uint64_t path [ROUTE_WIRE_MAX_PATH + 1] = { s_self };
    for (size_t h = 1; h <= ROUTE_WIRE_MAX_PATH; h++)
        path [h] = 0xee00000000000000ULL + h;
    msg = (route_msg_t) { .origin = s_self, .seqno = ++s_seqno };
    s_entry (&msg, 0xee000000000000ffULL, ROUTE_WIRE_MIN_HOP_METRIC * ROUTE_WIRE_MAX_PATH, ROUTE_WIRE_MAX_PATH, path);
    size_t size = route_msg_encode (&msg, wire, sizeof wire);
    assert (size);
    wire [ROUTE_WIRE_ANNOUNCE_ROUTES + ROUTE_WIRE_ROUTE_HOPS] = ROUTE_WIRE_MAX_PATH + 1;
    for (size_t b = 0; b < 8; b++)
        wire [size + b] = (uint8_t) (path [ROUTE_WIRE_MAX_PATH] >> (8 * b));
    s_send_raw (svc, to->index, wire, size + 8);
    s_sent_raw++;
    //  Forged paths: through the receiver; naming each other peer after us
    //  (made-up destinations they never offer); 8 hops (9 at the receiver)
    msg = (route_msg_t) { .origin = s_self };
    s_entry (&msg, 0xdd00000000000001ULL, 2 * ROUTE_WIRE_MIN_HOP_METRIC, 2, (uint64_t []) { s_self, to->id });
    for (size_t i = 0; i < s_peer_count && msg.count < ROUTE_WIRE_MAX_ROUTES - 2; i++)
        if (s_peers [i].id != to->id && s_peers [i].id != s_self)
            s_entry (&msg, 0xdc00000000000000ULL + i, 2 * ROUTE_WIRE_MIN_HOP_METRIC, 2,
                     (uint64_t []) { s_self, s_peers [i].id });
    s_entry (&msg, 0xdb00000000000001ULL, 8 * ROUTE_WIRE_MIN_HOP_METRIC, 8, path);
    s_send (svc, to->index, &msg, wire);
    //  Another peer's origin in our session
    for (size_t i = 0; i < s_peer_count; i++)
        if (s_peers [i].id != to->id && s_peers [i].id != s_self) {
            msg = (route_msg_t) { .origin = s_peers [i].id };
            s_entry (&msg, 0xda00000000000001ULL, ROUTE_WIRE_MIN_HOP_METRIC, 1, &s_peers [i].id);
            s_send (svc, to->index, &msg, wire);
            break;
        }
    //  An old sequence number
    msg = (route_msg_t) { .origin = s_self, .seqno = s_seqno - 1000 };
    s_entry (&msg, 0xd900000000000001ULL, ROUTE_WIRE_MIN_HOP_METRIC, 1, &s_self);
    s_send (svc, to->index, &msg, wire);
    //  Round 2 and every tenth after: the made-up destinations, a set of its
    //  own for each neighbour (so the honest nodes behind them hear several)
    uint64_t first_id = 1 + (uint64_t) (to - s_peers) * s_fakes;
    for (size_t first = 0; s_round % 10 == 2 && first < s_fakes; first += ROUTE_WIRE_MAX_ROUTES) {
        msg = (route_msg_t) { .origin = s_self };
        for (size_t d = first; d < s_fakes && msg.count < ROUTE_WIRE_MAX_ROUTES; d++)
            s_entry (&msg, first_id + d, ROUTE_WIRE_MIN_HOP_METRIC, 1, &s_self);
        s_send (svc, to->index, &msg, wire);
    }
    //  Round 5 and every tenth after: a burst far above the receiver's rate
    for (size_t b = 0; s_round % 10 == 5 && b < S_BURST; b++) {
        msg = (route_msg_t) { .origin = s_self };
        s_entry (&msg, 0xd800000000000001ULL, ROUTE_WIRE_MIN_HOP_METRIC, 1, &s_self);
        s_send (svc, to->index, &msg, wire);
    }
}

static int
s_round_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    bus_service_t *svc = (bus_service_t *) arg;
    if (!s_self || !s_peer_count)
        return 0;
    s_round++;
    uint64_t before = s_sent;
    for (size_t i = 0; i < s_peer_count; i++)
        if (s_peers [i].id != s_self)
            s_lie_to (svc, &s_peers [i]);
    if (s_round <= 5 || s_round % 10 == 5)
        bus_info ("liar: round %u: %" PRIu64 " announcements to %zu peers (%" PRIu64 " in all, %" PRIu64
                  " raw bytes the codec refuses)", s_round, s_sent - before, s_peer_count, s_sent, s_sent_raw);
    return 0;
}

int
testsvc_liar_setup (bus_service_t *svc)
{
    if (!s_fakes)
        return 0;
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    s_seqno = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
    bus_service_subscribe (svc, "peer.up", s_on_peer_up, NULL);
    bus_service_subscribe (svc, "node.address", s_on_address, NULL);
    bus_loop_timer (bus_service_loop (svc), 1000, 0, s_round_tick, svc);
    bus_info ("liar: lying to every peer once a second, %zu made-up destinations", s_fakes);
    return 0;
}

int
testsvc_liar_option (const char *option, const char *value)
{
    if (strcmp (option, "--liar") != 0)
        return 0;
    char *end = NULL;
    unsigned long n = strtoul (value, &end, 10);
    if (!end || *end || n == 0 || n > 100000)
        return -1;
    s_fakes = n;
    return 1;
}
