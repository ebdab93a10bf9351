/*  route_sim: meshes of route tables in one process. The messages of a round
    are encoded, queued, then decoded and delivered, so the codec is in the
    loop and no node sees another's reply within the round it was sent. */
#include "route_sim.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_NODES 64
#define S_NONE      UINT32_MAX

typedef struct {
    size_t from, to, size;
    uint8_t wire [ROUTE_WIRE_MAX_SIZE];
} s_wire_t;

struct _route_sim_t {
    size_t nodes;
    route_table_t *tables [S_MAX_NODES];
    bool alive [S_MAX_NODES];
    bool silent [S_MAX_NODES];
    uint32_t rtt [S_MAX_NODES][S_MAX_NODES];    //  0: no link
    int xy [S_MAX_NODES][2];                    //  where route_sim_plane put each node
    unsigned max_hops;
    int64_t now;
    s_wire_t *queue;
    size_t queued, queue_cap;
};

uint64_t
route_sim_id (route_sim_t *self, size_t node)
{
    assert (node < self->nodes);
    return 0xb1f0000000000000ULL + node + 1;
}

static size_t
s_node (route_sim_t *self, uint64_t id)
{
    size_t node = (size_t) (id - 0xb1f0000000000000ULL - 1);
    assert (node < self->nodes);
    return node;
}

route_sim_t *
route_sim_new (size_t nodes, const route_config_t *config)
{
    assert (nodes >= 1 && nodes <= S_MAX_NODES);
    route_sim_t *self = calloc (1, sizeof *self);
    assert (self);
    self->nodes = nodes;
    self->now = 1000000;
    for (size_t i = 0; i < nodes; i++) {
        uint8_t key [16] = { (uint8_t) i };
        self->tables [i] = route_table_new (route_sim_id (self, i), config, key);
        self->alive [i] = true;
    }
    self->max_hops = route_table_config (self->tables [0])->max_hops;
    return self;
}

void
route_sim_destroy (route_sim_t **self_p)
{
    assert (self_p);
    route_sim_t *self = *self_p;
    if (self) {
        for (size_t i = 0; i < self->nodes; i++)
            route_table_destroy (&self->tables [i]);
        free (self->queue);
        free (self);
        *self_p = NULL;
    }
}

route_table_t *
route_sim_table (route_sim_t *self, size_t node)
{
    assert (node < self->nodes);
    return self->tables [node];
}

void
route_sim_link (route_sim_t *self, size_t a, size_t b, uint32_t rtt_ms)
{
    assert (a < self->nodes && b < self->nodes && a != b && rtt_ms > 0);
    self->rtt [a][b] = self->rtt [b][a] = rtt_ms;
    route_table_link (self->tables [a], route_sim_id (self, b), rtt_ms, ROUTE_LINK_DIRECT, self->now);
    route_table_link (self->tables [b], route_sim_id (self, a), rtt_ms, ROUTE_LINK_DIRECT, self->now);
}

void
route_sim_cut (route_sim_t *self, size_t a, size_t b)
{
    self->rtt [a][b] = self->rtt [b][a] = 0;
    route_table_link_lost (self->tables [a], route_sim_id (self, b), self->now);
    route_table_link_lost (self->tables [b], route_sim_id (self, a), self->now);
}

void
route_sim_remove (route_sim_t *self, size_t node)
{
    for (size_t i = 0; i < self->nodes; i++)
        if (self->rtt [node][i])
            route_sim_cut (self, node, i);
    self->alive [node] = false;
}

void
route_sim_silent (route_sim_t *self, size_t node)
{
    assert (node < self->nodes);
    self->silent [node] = true;
}

bool
route_sim_is_silent (route_sim_t *self, size_t node)
{
    return node < self->nodes && self->silent [node];
}

bool
route_sim_linked (route_sim_t *self, size_t a, size_t b)
{
    return a < self->nodes && b < self->nodes && self->rtt [a][b] != 0;
}

size_t
route_sim_nodes (route_sim_t *self)
{
    return self->nodes;
}

bool
route_sim_alive (route_sim_t *self, size_t node)
{
    return node < self->nodes && self->alive [node];
}

static void
s_queue (route_sim_t *self, size_t from, size_t to, const route_msg_t *msg)
{
    if (self->queued == self->queue_cap) {
        self->queue_cap = self->queue_cap ? 2 * self->queue_cap : 64;
        self->queue = realloc (self->queue, self->queue_cap * sizeof *self->queue);
        assert (self->queue);
    }
    s_wire_t *w = &self->queue [self->queued++];
    w->from = from;
    w->to = to;
    w->size = route_msg_encode (msg, w->wire, sizeof w->wire);
    assert (w->size > 0);
}

size_t
route_sim_round (route_sim_t *self, bool full)
{
    static route_msg_t msg;
    self->queued = 0;
    for (size_t i = 0; i < self->nodes; i++) {
        if (!self->alive [i])
            continue;
        for (size_t j = 0; j < self->nodes; j++) {
            if (!self->rtt [i][j] || self->silent [i])
                continue;
            size_t cursor = 0;
            while (route_table_announce (self->tables [i], route_sim_id (self, j), full, &msg, &cursor))
                s_queue (self, i, j, &msg);
        }
        if (!full)
            route_table_updates_sent (self->tables [i], self->now);
    }
    for (size_t q = 0; q < self->queued; q++) {
        s_wire_t *w = &self->queue [q];
        assert (route_msg_decode (w->wire, w->size, &msg) == ROUTE_MSG_OK);
        route_table_receive (self->tables [w->to], route_sim_id (self, w->from), &msg, self->now);
    }
    self->now += 1000;
    return self->queued;
}

int
route_sim_walk (route_sim_t *self, size_t a, size_t b)
{
    size_t at = a;
    int hops = 0;
    while (at != b) {
        route_t route;
        if (!route_table_best (self->tables [at], route_sim_id (self, b), &route))
            return ROUTE_SIM_BLACK_HOLE;
        size_t next = s_node (self, route.next_hop);
        if (!self->rtt [at][next])
            return ROUTE_SIM_BLACK_HOLE;
        if ((size_t) hops++ >= self->nodes)
            return ROUTE_SIM_LOOP;
        at = next;
    }
    return hops;
}

size_t
route_sim_run (route_sim_t *self, size_t max_rounds, size_t *loops)
{
    for (size_t round = 0; round <= max_rounds; round++) {
        if (route_sim_round (self, false) == 0)
            return round;
        for (size_t a = 0; a < self->nodes && loops; a++)
            for (size_t b = 0; b < self->nodes; b++)
                if (a != b && self->alive [a] && self->alive [b]
                &&  route_sim_walk (self, a, b) == ROUTE_SIM_LOOP) {
                    (*loops)++;
                    a = self->nodes;    //  one per round
                    break;
                }
    }
    return max_rounds + 1;
}

//  Bellman-Ford from a, one hop more per pass, max_hops passes: the lowest
//  metric of a path the tables may use, to every node (S_NONE: none)
static void
s_reference_from (route_sim_t *self, size_t a, uint64_t dist [S_MAX_NODES])
{
    uint64_t next [S_MAX_NODES];
    size_t n = self->nodes;
    for (size_t i = 0; i < n; i++)
        dist [i] = i == a ? 0 : S_NONE;
    for (unsigned pass = 0; pass < self->max_hops; pass++) {
        memcpy (next, dist, sizeof next);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++)
                if (dist [i] != S_NONE && self->rtt [i][j] && self->alive [i] && self->alive [j]
                &&  dist [i] + self->rtt [i][j] + ROUTE_WIRE_HOP_COST < next [j])
                    next [j] = dist [i] + self->rtt [i][j] + ROUTE_WIRE_HOP_COST;
        memcpy (dist, next, sizeof next);
    }
}

uint32_t
route_sim_reference (route_sim_t *self, size_t a, size_t b)
{
    uint64_t dist [S_MAX_NODES];
    s_reference_from (self, a, dist);
    return dist [b] >= S_NONE ? S_NONE : (uint32_t) dist [b];
}

bool
route_sim_check (route_sim_t *self, bool verbose)
{
    bool ok = true;
    for (size_t a = 0; a < self->nodes; a++) {
        uint64_t dist [S_MAX_NODES];
        s_reference_from (self, a, dist);
        for (size_t b = 0; b < self->nodes; b++) {
            if (a == b || !self->alive [a] || !self->alive [b])
                continue;
            uint32_t want = dist [b] >= S_NONE ? S_NONE : (uint32_t) dist [b];
            route_t route;
            bool has = route_table_best (self->tables [a], route_sim_id (self, b), &route);
            int walk = has ? route_sim_walk (self, a, b) : -1;
            bool good = want == S_NONE ? !has : has && route.metric == want && walk == route.hops;
            if (!good && verbose)
                printf ("  route_sim: %zu -> %zu: %s metric %u hops %u walk %d, want metric %u\n", a, b,
                        has ? "route" : "no route", has ? route.metric : 0, has ? route.hops : 0, walk, want);
            ok &= good;
        }
    }
    return ok;
}

uint32_t
route_sim_distance (route_sim_t *self, size_t a, size_t b)
{
    double dx = self->xy [a][0] - self->xy [b][0], dy = self->xy [a][1] - self->xy [b][1];
    double x = dx * dx + dy * dy, d;
    //  Newton's square root: no libm for this
    for (d = x > 1 ? x / 2 : 1; x > 0 && (d * d - x > 0.01 || x - d * d > 0.01); d = (d + x / d) / 2)
        ;
    return (uint32_t) (d + 0.5) + 1;
}

size_t
route_sim_plane (route_sim_t *self, const int (*xy) [2], uint32_t seed, int side, uint32_t range)
{
    for (size_t i = 0; i < self->nodes; i++)
        for (size_t k = 0; k < 2; k++) {
            seed = seed * 1103515245 + 12345;
            self->xy [i][k] = xy ? xy [i][k] : (int) ((seed >> 16) % (uint32_t) side);
        }
    size_t links = 0;
    for (size_t a = 0; a < self->nodes; a++)
        for (size_t b = a + 1; b < self->nodes; b++)
            if (route_sim_distance (self, a, b) <= range) {
                route_sim_link (self, a, b, route_sim_distance (self, a, b));
                links++;
            }
    return links;
}

size_t
route_sim_busiest (route_sim_t *self, size_t *degree)
{
    size_t busiest = 0, most = 0;
    for (size_t i = 0; i < self->nodes; i++) {
        size_t links = 0;
        for (size_t j = 0; j < self->nodes; j++)
            links += self->rtt [i][j] != 0;
        if (links > most) {
            most = links;
            busiest = i;
        }
    }
    if (degree)
        *degree = most;
    return busiest;
}

//  --------------------------------------------------------------------------
//  Self test: line, ring, meshes of 8 and 32 (nodes on a plane, RTT =
//  distance, so a direct link is also the lowest metric and the reference
//  holds), a node removed from each, and a neighbour that lies.

//  The mesh of 8: links up to 60 ms make 14
static const int s_mesh8 [8][2] = { { 0, 0 }, { 40, 10 }, { 80, 0 }, { 20, 50 },
                                    { 60, 50 }, { 100, 40 }, { 40, 90 }, { 90, 90 } };

//  Converges sim from its links, checks it against the reference; then
//  calls `between` (if any), removes `node`, converges and checks again.
//  Returns the rounds the removal took.
static size_t
s_remove_and_converge (route_sim_t *sim, size_t node, const char *name, void (*between) (route_sim_t *), bool verbose)
{
    size_t loops = 0;
    size_t rounds = route_sim_run (sim, 40, &loops);
    assert (rounds <= 40 && route_sim_check (sim, verbose));
    if (between)
        between (sim);
    size_t after = 0;
    route_sim_remove (sim, node);
    size_t removal = route_sim_run (sim, 40, &after);
    assert (removal <= 40 && route_sim_check (sim, verbose));
    printf ("# route_sim: %s: converged in %zu rounds; node %zu removed: %zu rounds, %zu with a transient loop\n",
            name, rounds, node, removal, after);
    assert (loops == 0 && after == 0);
    return removal;
}

//  Links cut, restored and re-measured at random in the mesh of 32: after
//  each event the triggered updates settle without a loop; changes of a link's
//  RTT below 1/8 wait for the periodic dump, so a few dump rounds follow
//  before the tables must hold the lowest metrics again
static void
s_test_churn (bool verbose)
{
    route_sim_t *sim = route_sim_new (32, NULL);
    route_sim_plane (sim, NULL, 777, 300, 110);
    uint32_t lcg = 777;
    assert (route_sim_run (sim, 40, NULL) <= 40 && route_sim_check (sim, verbose));
    size_t most = 0, loops = 0, dumps = 0, events = 0;
    for (size_t tries = 0; events < 60; tries++) {
        assert (tries < 10000);
        lcg = lcg * 1103515245 + 12345;
        size_t a = (lcg >> 16) % 32, b = (lcg >> 8) % 32;
        if (a == b || route_sim_distance (sim, a, b) > 110)
            continue;
        events++;
        if (sim->rtt [a][b] && (lcg & 1))
            route_sim_cut (sim, a, b);
        else            //  up again, or the same link measured anew: up to +-10 %
            route_sim_link (sim, a, b, route_sim_distance (sim, a, b) * (90 + (lcg >> 4) % 21) / 100);
        size_t rounds = route_sim_run (sim, 40, &loops);
        assert (rounds <= 40);
        most = rounds > most ? rounds : most;
        for (size_t dump = 0; dump < 8 && !route_sim_check (sim, false); dump++) {
            route_sim_round (sim, true);
            assert (route_sim_run (sim, 40, &loops) <= 40);
            dumps++;
        }
        assert (route_sim_check (sim, verbose));
    }
    printf ("# route_sim: mesh of 32, 60 random cuts, restores and RTT changes: at most %zu rounds each, "
            "%zu dump rounds in all, %zu rounds with a loop\n", most, dumps, loops);
    assert (loops == 0);
    route_sim_destroy (&sim);
}

//  Before B leaves the line: A reaches C through B
static void
s_line_check (route_sim_t *sim)
{
    route_t r;
    assert (route_table_best (route_sim_table (sim, 0), route_sim_id (sim, 2), &r));
    assert (r.next_hop == route_sim_id (sim, 1) && r.hops == 2 && r.metric == 110 + 120 && r.tier == ROUTE_TIER_PEER);
    assert (r.path [0] == route_sim_id (sim, 1) && r.path [1] == route_sim_id (sim, 2));
}

static void
s_test_malicious (bool verbose)
{
    route_config_t config;
    route_config_defaults (&config);
    config.max_per_neighbour = 64;
    route_sim_t *sim = route_sim_new (8, &config);
    route_sim_plane (sim, s_mesh8, 0, 0, 60);
    assert (route_sim_run (sim, 40, NULL) <= 40 && route_sim_check (sim, verbose));

    const size_t liar = 7;
    const uint64_t m = route_sim_id (sim, liar);
    static route_msg_t msg, back;
    uint8_t wire [ROUTE_WIRE_MAX_SIZE];
    uint64_t seqno = UINT64_MAX / 2;
    size_t victims = 0;
    for (size_t n = 0; n < 8; n++) {
        if (!sim->rtt [liar][n])
            continue;
        victims++;
        route_table_t *t = sim->tables [n];
        const uint64_t me = route_sim_id (sim, n);
        //  1. Metric 0 (and a "negative" one): the codec refuses the bytes
        memset (&msg, 0, sizeof msg);
        msg = (route_msg_t) { .origin = m, .seqno = ++seqno, .count = 1 };
        msg.routes [0] = (route_entry_t) { .dest = route_sim_id (sim, 0), .metric = 101, .hops = 1, .path = { m } };
        size_t size = route_msg_encode (&msg, wire, sizeof wire);
        assert (size);
        memset (wire + ROUTE_WIRE_ANNOUNCE_ROUTES + ROUTE_WIRE_ROUTE_METRIC, 0, 4);
        assert (route_msg_decode (wire, size, &back) == ROUTE_MSG_BAD_METRIC);
        memset (wire + ROUTE_WIRE_ANNOUNCE_ROUTES + ROUTE_WIRE_ROUTE_METRIC, 0xfe, 4);
        assert (route_msg_decode (wire, size, &back) == ROUTE_MSG_BAD_METRIC);
        //  2. Itself one hop from everyone, at the least metric the codec lets through
        msg.count = 0;
        for (size_t d = 0; d < 8; d++)
            if (d != liar && d != n)
                msg.routes [msg.count++] = (route_entry_t) { .dest = route_sim_id (sim, d),
                    .metric = ROUTE_WIRE_MIN_HOP_METRIC, .hops = 1, .path = { m } };
        msg.seqno = ++seqno;
        size = route_msg_encode (&msg, wire, sizeof wire);
        assert (size && route_msg_decode (wire, size, &back) == ROUTE_MSG_OK);
        assert (route_table_receive (t, m, &back, sim->now) == 6);
        //  3. A huge table: 3,000 destinations that do not exist
        for (size_t first = 0; first < 3000; first += ROUTE_WIRE_MAX_ROUTES) {
            msg.count = 0;
            msg.seqno = ++seqno;
            for (size_t d = first; d < 3000 && msg.count < ROUTE_WIRE_MAX_ROUTES; d++)
                msg.routes [msg.count++] = (route_entry_t) { .dest = 0x7700000000000000ULL + d,
                    .metric = ROUTE_WIRE_MIN_HOP_METRIC, .hops = 1, .path = { m } };
            size = route_msg_encode (&msg, wire, sizeof wire);
            assert (size && route_msg_decode (wire, size, &back) == ROUTE_MSG_OK);
            route_table_receive (t, m, &back, sim->now);
        }
        //  4. Forged paths through the victim, 5. another node's name
        msg.count = 1;
        msg.seqno = ++seqno;
        msg.routes [0] = (route_entry_t) { .dest = route_sim_id (sim, 0) == me ? route_sim_id (sim, 1) : route_sim_id (sim, 0),
                                           .metric = 202, .hops = 2, .path = { m, me } };
        size = route_msg_encode (&msg, wire, sizeof wire);
        assert (size && route_msg_decode (wire, size, &back) == ROUTE_MSG_OK);
        assert (route_table_receive (t, m, &back, sim->now) == 0);
        msg.origin = route_sim_id (sim, 0);
        msg.routes [0].dest = route_sim_id (sim, 1);
        msg.routes [0].path [0] = msg.origin;
        msg.routes [0].path [1] = m;
        msg.seqno = ++seqno;
        size = route_msg_encode (&msg, wire, sizeof wire);
        assert (size && route_msg_decode (wire, size, &back) == ROUTE_MSG_OK);
        assert (route_table_receive (t, m, &back, sim->now) == -1);

        const route_stats_t *stats = route_table_stats (t);
        assert (stats->capped >= 3000 - 64 && stats->through_us == 1 && stats->impostor == 1);
        //  Capped: the liar holds 64 routes here, and the direct links stand
        assert (route_table_size (t) <= 7 + 64);
        static route_t routes [128];
        size_t count = route_table_routes (t, routes, 128);
        size_t via_liar = 0;
        for (size_t r = 0; r < count; r++) {
            for (size_t h = 0; h < routes [r].hops; h++)
                assert (routes [r].path [h] != me);
            via_liar += routes [r].next_hop == m;
            size_t d = routes [r].dest >> 56 == 0xb1 ? s_node (sim, routes [r].dest) : liar;
            if (d != liar && sim->rtt [n][d])
                assert (routes [r].next_hop == routes [r].dest && routes [r].tier == ROUTE_TIER_DIRECT);
        }
        if (verbose)
            printf ("  route_sim: victim %zu: %zu routes, %zu through the liar, %lu capped\n",
                    n, count, via_liar, (unsigned long) stats->capped);
    }
    assert (victims == 3);
    //  The rest of the mesh hears the victims' new choices: every honest pair
    //  still has a route without a loop (the liar forwards what it gets)
    size_t loops = 0;
    assert (route_sim_run (sim, 40, &loops) <= 40 && loops == 0);
    for (size_t a = 0; a < 7; a++)
        for (size_t b = 0; b < 7; b++)
            assert (a == b || route_sim_walk (sim, a, b) > 0);
    //  Once the liar is cut off, the mesh is back to the lowest metrics
    route_sim_remove (sim, liar);
    assert (route_sim_run (sim, 40, &loops) <= 40 && loops == 0 && route_sim_check (sim, verbose));
    for (size_t n = 0; n < 7; n++)
        assert (route_table_size (sim->tables [n]) == 6);
    route_sim_destroy (&sim);
}

void
route_sim_test (bool verbose)
{
    route_t r;
    //  Line A - B - C: A reaches C through B; B removed: nothing left, no loop
    route_sim_t *sim = route_sim_new (3, NULL);
    route_sim_link (sim, 0, 1, 10);
    route_sim_link (sim, 1, 2, 20);
    s_remove_and_converge (sim, 1, "line of 3", s_line_check, verbose);
    assert (!route_table_best (route_sim_table (sim, 0), route_sim_id (sim, 2), NULL));
    assert (route_table_size (route_sim_table (sim, 0)) == 0 && route_table_size (route_sim_table (sim, 2)) == 0);
    route_sim_destroy (&sim);

    //  Count-to-infinity's classic: the end of a line of 4 dies. In every
    //  split-horizon mode, even off (the path vector alone), nobody keeps a
    //  route to it, and no round leaves a loop
    for (int mode = ROUTE_SPLIT_OFF; mode <= ROUTE_SPLIT_POISON; mode++) {
        route_config_t config;
        route_config_defaults (&config);
        config.split_horizon = mode;
        sim = route_sim_new (4, &config);
        for (size_t i = 0; i < 3; i++)
            route_sim_link (sim, i, i + 1, 10);
        size_t loops = 0;
        assert (route_sim_run (sim, 10, &loops) <= 10 && route_sim_check (sim, verbose));
        assert (route_table_best (route_sim_table (sim, 0), route_sim_id (sim, 3), &r) && r.hops == 3);
        route_sim_remove (sim, 3);
        size_t rounds = route_sim_run (sim, 10, &loops);
        assert (rounds <= 3 && loops == 0 && route_sim_check (sim, verbose));
        for (size_t i = 0; i < 3; i++)
            assert (!route_table_best (route_sim_table (sim, i), route_sim_id (sim, 3), NULL));
        if (verbose)
            printf ("  route_sim: line of 4, split horizon mode %d: the end gone everywhere in %zu rounds\n", mode, rounds);
        route_sim_destroy (&sim);
    }

    //  A fourth peer: A - B - C and A - D - C; B dies, traffic moves to D
    sim = route_sim_new (4, NULL);
    route_sim_link (sim, 0, 1, 10);
    route_sim_link (sim, 1, 2, 10);
    route_sim_link (sim, 0, 3, 30);
    route_sim_link (sim, 3, 2, 30);
    assert (route_sim_run (sim, 10, NULL) <= 10);
    assert (route_table_best (route_sim_table (sim, 0), route_sim_id (sim, 2), &r) && r.next_hop == route_sim_id (sim, 1));
    route_sim_remove (sim, 1);
    //  At once, before any announcement: A's next best was kept
    assert (route_table_best (route_sim_table (sim, 0), route_sim_id (sim, 2), &r) && r.next_hop == route_sim_id (sim, 3));
    assert (r.metric == 130 + 130);
    assert (route_sim_run (sim, 10, NULL) <= 10 && route_sim_check (sim, verbose));
    route_sim_destroy (&sim);

    //  Ring of 5 with RTTs 10 .. 50: around the short side; a link cut, then a node removed
    sim = route_sim_new (5, NULL);
    for (size_t i = 0; i < 5; i++)
        route_sim_link (sim, i, (i + 1) % 5, 10 * (uint32_t) (i + 1));
    size_t rounds = route_sim_run (sim, 20, NULL);
    assert (rounds <= 20 && route_sim_check (sim, verbose));
    printf ("# route_sim: ring of 5: converged in %zu rounds\n", rounds);
    assert (route_table_best (route_sim_table (sim, 0), route_sim_id (sim, 2), &r) && r.hops == 2 && r.metric == 230);
    assert (route_table_best (route_sim_table (sim, 0), route_sim_id (sim, 3), &r) && r.hops == 2
            && r.next_hop == route_sim_id (sim, 4) && r.metric == 150 + 140);
    route_sim_cut (sim, 0, 4);
    size_t loops = 0;
    assert (route_sim_run (sim, 20, &loops) <= 20 && loops == 0 && route_sim_check (sim, verbose));
    assert (route_table_best (route_sim_table (sim, 0), route_sim_id (sim, 4), &r) && r.hops == 4);
    route_sim_link (sim, 0, 4, 50);
    s_remove_and_converge (sim, 2, "ring of 5 (link back)", NULL, verbose);
    route_sim_destroy (&sim);

    //  Mesh of 8 on a plane (links up to 60 ms): the most central node removed
    sim = route_sim_new (8, NULL);
    size_t links = route_sim_plane (sim, s_mesh8, 0, 0, 60);
    assert (links >= 10);
    printf ("# route_sim: mesh of 8: %zu links\n", links);
    size_t rounds8 = s_remove_and_converge (sim, 4, "mesh of 8", NULL, verbose);
    assert (rounds8 <= 8);
    route_sim_destroy (&sim);

    //  Mesh of 32 (a fixed pseudo-random plane of 300 x 300, links up to 110 ms)
    sim = route_sim_new (32, NULL);
    links = route_sim_plane (sim, NULL, 12345, 300, 110);
    size_t degree, busiest = route_sim_busiest (sim, &degree);
    size_t rounds32 = s_remove_and_converge (sim, busiest, "mesh of 32", NULL, verbose);
    assert (rounds32 <= 16);
    printf ("# route_sim: mesh of 32: %zu links, node %zu of degree %zu removed\n", links, busiest, degree);
    route_sim_destroy (&sim);

    s_test_churn (verbose);
    s_test_malicious (verbose);
}
