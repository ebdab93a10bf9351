/*  bench_route: what mesh routing costs (docs/routing.md, docs/benchmarks.md).
    Per packet on the data path: the inner 5-tuple's keyed hash and the pick
    among equal-cost next hops. Per announcement in the router: decode, and the
    route table taking it at 1,000 destinations. Convergence: rounds after the
    busiest node of a mesh on a plane leaves, at 8, 32 and 64 nodes. */
#include "route_flow.h"
#include "route_msg.h"
#include "route_sim.h"
#include "route_table.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

//  Repeats body for about a second; prints ns per run
#define S_TIME(name, body) do { \
        size_t runs = 0; double start = s_now (), took; \
        do { for (int k_ = 0; k_ < 1000; k_++) { body; } runs += 1000; } while ((took = s_now () - start) < 1.0); \
        printf ("%-52s %9.1f ns\n", name, took * 1e9 / (double) runs); \
    } while (0)

static volatile uint64_t s_sink;

int
main (void)
{
    uint8_t key [ROUTE_FLOW_KEY_SIZE] = { 1 };
    uint8_t packet [60] = { 0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 100, 0, 1, 10, 100, 0, 2, 0x9c, 0x40, 0, 22 };
    route_flow_t flow;
    uint64_t members [4] = { 0xa1, 0xb2, 0xc3, 0xd4 };
    uint64_t i = 0;
    S_TIME ("route_flow_parse + route_flow_hash (IPv4 TCP)", {
        packet [21] = (uint8_t) i++;
        route_flow_parse (packet, sizeof packet, &flow);
        s_sink = route_flow_hash (&flow, key);
    });
    S_TIME ("route_flow_pick among 2 next hops", s_sink = route_flow_pick (i++, members, 2));
    S_TIME ("route_flow_pick among 4 next hops", s_sink = route_flow_pick (i++, members, 4));

    //  A table at 1,000 destinations from 4 neighbours, as in route_table_test
    static route_msg_t msg, back;
    static uint8_t wire [ROUTE_WIRE_MAX_SIZE];
    route_table_t *t = route_table_new (0xa0, NULL, key);
    uint64_t nbrs [4] = { 0xb0, 0xc0, 0xd0, 0xe0 };
    for (size_t n = 0; n < 4; n++)
        route_table_link (t, nbrs [n], 10 + (uint32_t) n, ROUTE_LINK_DIRECT, 0);
    uint64_t seqno = 1;
    for (size_t n = 0; n < 4; n++)
        for (size_t d = 0; d < 1000; ) {
            memset (&msg, 0, sizeof msg);
            msg.origin = nbrs [n];
            msg.seqno = seqno++;
            for (; d < 1000 && msg.count < ROUTE_WIRE_MAX_ROUTES; d++) {
                route_entry_t *e = &msg.routes [msg.count];
                *e = (route_entry_t) { .dest = 0x1000 + d, .metric = 202, .hops = 2, .path = { nbrs [n], 0x900000 + d } };
                if (route_msg_size (&msg) + route_msg_entry_size (e) > ROUTE_WIRE_MAX_SIZE)
                    break;
                msg.count++;
            }
            assert (route_table_receive (t, nbrs [n], &msg, 0) == msg.count);
        }
    printf ("%-52s %9zu\n", "destinations in the table", route_table_size (t));
    //  The announcement the bench decodes and feeds: as many two-hop routes
    //  from the first neighbour as fit (42, 1,368 bytes)
    memset (&msg, 0, sizeof msg);
    msg.origin = nbrs [0];
    msg.seqno = seqno++;
    while (route_msg_size (&msg) + ROUTE_WIRE_ROUTE_SIZE + 16 <= ROUTE_WIRE_MAX_SIZE) {
        msg.routes [msg.count] = (route_entry_t) { .dest = 0x1000 + msg.count, .metric = 202, .hops = 2,
                                                   .path = { nbrs [0], 0x900000 + msg.count } };
        msg.count++;
    }
    size_t size = route_msg_encode (&msg, wire, sizeof wire);
    assert (size && route_msg_decode (wire, size, &back) == ROUTE_MSG_OK);
    printf ("%-52s %9u routes, %zu bytes\n", "announcement", msg.count, size);
    S_TIME ("route_msg_decode", s_sink = route_msg_decode (wire, size, &back));
    S_TIME ("route_table_receive (every metric moved by 1/4)", {
        back.seqno = seqno++;
        for (size_t r = 0; r < back.count; r++)
            back.routes [r].metric = seqno & 1 ? 202 : 252;
        s_sink = (uint64_t) route_table_receive (t, nbrs [0], &back, 0);
        assert (s_sink == back.count);
    });
    S_TIME ("route_table_pick (1,004 destinations)", { i++; s_sink = route_table_pick (t, 0x1000 + i % 1000, i); });
    size_t cursor = 0, messages = 0;
    double start = s_now ();
    while (route_table_announce (t, nbrs [1], true, &msg, &cursor))
        messages++;
    printf ("%-52s %9.1f us, %zu announcements\n", "route_table_announce: a full dump", (s_now () - start) * 1e6, messages);
    route_table_destroy (&t);

    //  Convergence after the busiest node leaves a mesh on a plane of 300 x 300 (links up to 110 ms)
    for (size_t nodes = 8; nodes <= 64; nodes *= nodes == 8 ? 4 : 2) {
        route_sim_t *sim = route_sim_new (nodes, NULL);
        uint32_t lcg = 12345;
        int xy [64][2];
        for (size_t n = 0; n < nodes; n++)
            for (size_t k = 0; k < 2; k++) {
                lcg = lcg * 1103515245 + 12345;
                xy [n][k] = (int) ((lcg >> 16) % 300);
            }
        size_t links = 0, busiest = 0, degree = 0;
        for (size_t a = 0; a < nodes; a++) {
            size_t deg = 0;
            for (size_t b = 0; b < nodes; b++) {
                int dx = xy [a][0] - xy [b][0], dy = xy [a][1] - xy [b][1];
                uint32_t d = 1;
                while (d * d < (uint32_t) (dx * dx + dy * dy))
                    d++;
                if (a != b && d <= 110) {
                    deg++;
                    if (a < b) {
                        route_sim_link (sim, a, b, d);
                        links++;
                    }
                }
            }
            if (deg > degree) {
                degree = deg;
                busiest = a;
            }
        }
        size_t first = route_sim_run (sim, 60, NULL), loops = 0;
        route_sim_remove (sim, busiest);
        size_t after = route_sim_run (sim, 60, &loops);
        bool ok = route_sim_check (sim, false);
        printf ("mesh of %2zu (%3zu links): converged in %zu rounds; busiest node (degree %zu) removed: %zu rounds, "
                "%zu with a loop, %s\n", nodes, links, first, degree, after, loops, ok ? "lowest metrics" : "NOT the lowest metrics");
        route_sim_destroy (&sim);
    }
    return 0;
}
