/*  bench_route: what mesh routing costs (docs/routing.md, docs/benchmarks.md).
    Per packet on the data path: the inner 5-tuple's keyed hash and the pick
    among equal-cost next hops. Per announcement in the router: decode, and the
    route table taking it at 1,000 destinations. Convergence: rounds after the
    busiest node of a mesh on a plane leaves, at 8, 32 and 64 nodes; and under
    churn (random cuts, restores, node losses, RTT changes of up to 20 %), how
    often a round leaves a transient loop. */
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

//  100 meshes of `nodes` on a plane (links up to range ms), 40 random events
//  each: after every event the triggered rounds, then dump rounds until the
//  tables hold the lowest metrics again
static void
s_churn (size_t nodes, uint32_t range)
{
    size_t events = 0, with_loop = 0, loop_rounds = 0, most = 0, unsettled = 0;
    for (uint32_t seed = 1; seed <= 100; seed++) {
        route_sim_t *sim = route_sim_new (nodes, NULL);
        route_sim_plane (sim, NULL, seed, 300, range);
        route_sim_run (sim, 60, NULL);
        uint32_t lcg = seed * 7919;
        for (size_t done = 0, tries = 0; done < 40 && tries < 100000; tries++) {
            lcg = lcg * 1103515245 + 12345;
            size_t a = (lcg >> 16) % nodes, b = (lcg >> 8) % nodes;
            if (a == b || route_sim_distance (sim, a, b) > range)
                continue;
            done++;
            route_t r;
            bool linked = route_table_best (route_sim_table (sim, a), route_sim_id (sim, b), &r)
                       && r.next_hop == route_sim_id (sim, b);
            if (linked && (lcg & 1))
                route_sim_cut (sim, a, b);
            else
            if (linked && (lcg & 6) == 6)
                route_sim_remove (sim, a);
            else
                route_sim_link (sim, a, b, route_sim_distance (sim, a, b) * (80 + (lcg >> 4) % 41) / 100);
            size_t loops = 0, rounds = route_sim_run (sim, 60, &loops);
            with_loop += loops > 0;
            loop_rounds += loops;
            most = rounds > most ? rounds : most;
            for (int dump = 0; dump < 10 && !route_sim_check (sim, false); dump++) {
                route_sim_round (sim, true);
                route_sim_run (sim, 60, &loop_rounds);
            }
            unsettled += !route_sim_check (sim, false);
            events++;
        }
        route_sim_destroy (&sim);
    }
    printf ("churn, %2zu nodes, links up to %3u ms: %zu events, %zu left a loop for a round (%zu rounds in all), "
            "at most %zu rounds, %zu not back to the lowest metrics\n", nodes, range, events, with_loop, loop_rounds,
            most, unsettled);
}

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
        size_t links = route_sim_plane (sim, NULL, 12345, 300, 110);
        size_t degree, busiest = route_sim_busiest (sim, &degree);
        size_t first = route_sim_run (sim, 60, NULL), loops = 0;
        route_sim_remove (sim, busiest);
        size_t after = route_sim_run (sim, 60, &loops);
        bool ok = route_sim_check (sim, false);
        printf ("mesh of %2zu (%3zu links): converged in %zu rounds; busiest node (degree %zu) removed: %zu rounds, "
                "%zu with a loop, %s\n", nodes, links, first, degree, after, loops, ok ? "lowest metrics" : "NOT the lowest metrics");
        route_sim_destroy (&sim);
    }
    s_churn (16, 110);
    s_churn (32, 110);
    s_churn (32, 70);
    return 0;
}
