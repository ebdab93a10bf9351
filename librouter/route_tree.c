/*  route_tree: floods along the trees of a simulated mesh (route_tree.h). */
#include "route_tree.h"
#include "route_table.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static size_t
s_node (route_sim_t *sim, uint64_t id)
{
    for (size_t n = 0; n < route_sim_nodes (sim); n++)
        if (route_sim_id (sim, n) == id)
            return n;
    assert (false);
    return 0;
}

typedef struct {
    size_t to, from;
    unsigned ttl;
} s_copy_t;

//  Sends the frame from node `at` to origin's children there but `from`
static void
s_send (route_sim_t *sim, size_t origin, size_t at, size_t from, unsigned ttl, route_tree_flood_t *out,
        s_copy_t *queue, size_t *tail, size_t cap)
{
    uint64_t children [ROUTE_TREE_NODES];
    size_t n = route_table_children (route_sim_table (sim, at), route_sim_id (sim, origin), children,
                                     ROUTE_TREE_NODES);
    assert (n <= ROUTE_TREE_NODES);
    for (size_t k = 0; k < n; k++) {
        size_t to = s_node (sim, children [k]);
        assert (to != origin && route_sim_linked (sim, at, to));
        if (to == from)
            continue;
        assert (*tail < cap);
        queue [(*tail)++] = (s_copy_t) { to, at, ttl };
        out->copies [at][to]++;
        out->total++;
    }
}

void
route_tree_flood (route_sim_t *sim, size_t origin, unsigned ttl, route_tree_flood_t *out)
{
    memset (out, 0, sizeof *out);
    assert (route_sim_nodes (sim) <= ROUTE_TREE_NODES);
    static s_copy_t queue [ROUTE_TREE_NODES * ROUTE_TREE_NODES * 4];
    const size_t cap = sizeof queue / sizeof queue [0];
    size_t head = 0, tail = 0;
    s_send (sim, origin, origin, origin, ttl, out, queue, &tail, cap);
    while (head < tail) {
        s_copy_t c = queue [head++];
        out->received [c.to]++;
        if (c.to == origin || out->delivered [c.to])
            continue;                   //  a duplicate, dropped by the window
        out->delivered [c.to] = 1;
        if (c.ttl > 1 && !route_sim_is_silent (sim, c.to))
            s_send (sim, origin, c.to, c.from, c.ttl - 1, out, queue, &tail, cap);
    }
}

unsigned
route_tree_e2e_copies (route_sim_t *sim, size_t origin, size_t hop)
{
    unsigned copies = 0;
    for (size_t n = 0; n < route_sim_nodes (sim); n++) {
        route_t route;
        if (n != origin && route_table_best (route_sim_table (sim, origin), route_sim_id (sim, n), &route)
        &&  route.next_hop == route_sim_id (sim, hop))
            copies++;
    }
    return copies;
}

//  --------------------------------------------------------------------------
//  Self test

//  Every node the origin reaches took the frame once, and no link carried
//  more than `most` copies one way; returns the copies sent
static unsigned
s_check (route_sim_t *sim, size_t origin, unsigned most)
{
    route_tree_flood_t f;
    route_tree_flood (sim, origin, 8, &f);
    for (size_t n = 0; n < route_sim_nodes (sim); n++) {
        if (n == origin || !route_sim_alive (sim, n)
        ||  !route_table_best (route_sim_table (sim, origin), route_sim_id (sim, n), NULL))
            continue;                   //  (not in the mesh)
        if (f.delivered [n] != 1)
            fprintf (stderr, "route_tree: from %zu, node %zu took %u\n", origin, n, f.delivered [n]);
        assert (f.delivered [n] == 1);
        for (size_t m = 0; m < route_sim_nodes (sim); m++)
            assert (f.copies [m][n] <= most);
    }
    return f.total;
}

static route_sim_t *
s_converged (size_t nodes, route_split_t split)
{
    route_config_t config;
    route_config_defaults (&config);
    config.split_horizon = split;
    return route_sim_new (nodes, &config);
}

static void
s_settle (route_sim_t *sim)
{
    assert (route_sim_run (sim, 30, NULL) <= 30);
    route_sim_round (sim, true);        //  a periodic dump changes nothing
    assert (route_sim_run (sim, 30, NULL) <= 30);
}

void
route_tree_test (bool verbose)
{
    static const route_split_t modes [] = { ROUTE_SPLIT_POISON, ROUTE_SPLIT_OMIT, ROUTE_SPLIT_OFF };
    static const char *names [] = { "poison", "omit", "off" };
    for (size_t m = 0; m < 3; m++) {
        //  A line of 5: from each node, one copy per link, 4 in all
        route_sim_t *sim = s_converged (5, modes [m]);
        for (size_t i = 0; i + 1 < 5; i++)
            route_sim_link (sim, i, i + 1, 10);
        s_settle (sim);
        if (verbose)
            printf ("  %s: line of 5\n", names [m]);
        for (size_t o = 0; o < 5; o++)
            assert (s_check (sim, o, 1) == 4);
        route_sim_destroy (&sim);

        //  A ring of 5 with equal links: 4 copies from every origin, and
        //  with links of 10 .. 50 ms every node still takes each frame once
        sim = s_converged (5, modes [m]);
        for (size_t i = 0; i < 5; i++)
            route_sim_link (sim, i, (i + 1) % 5, 10);
        s_settle (sim);
        for (size_t o = 0; o < 5; o++)
            assert (s_check (sim, o, 1) == 4);
        for (size_t i = 0; i < 5; i++)
            route_sim_link (sim, i, (i + 1) % 5, (uint32_t) (10 + 10 * i));
        s_settle (sim);
        unsigned total = 0;
        for (size_t o = 0; o < 5; o++)
            total += s_check (sim, o, 1);
        if (verbose)
            printf ("  %s: ring of 5 (10 .. 50 ms), %u copies for 5 floods (20 = one per member)\n",
                    names [m], total);
        route_sim_destroy (&sim);
    }

    //  a - b - {c, d, e}: one copy on a - b where end-to-end copies put 4;
    //  then a fourth path f to c, d, e; b dies: c, d, e take it through f
    enum { A, B, C, D, E, F };
    route_sim_t *sim = s_converged (6, ROUTE_SPLIT_POISON);
    route_sim_link (sim, A, B, 10);
    for (size_t n = C; n <= E; n++)
        route_sim_link (sim, B, n, 10);
    s_settle (sim);
    route_tree_flood_t f;
    route_tree_flood (sim, A, 8, &f);
    assert (f.copies [A][B] == 1 && f.total == 4 && f.delivered [C] && f.delivered [D] && f.delivered [E]);
    unsigned e2e = route_tree_e2e_copies (sim, A, B);
    assert (e2e == 4);
    if (verbose)
        printf ("  a - b - {c, d, e}: a broadcast from a puts %u copy on a - b (end to end: %u)\n",
                f.copies [A][B], e2e);
    //  c, d and e link with each other too: still one copy each
    route_sim_link (sim, C, D, 10);
    route_sim_link (sim, D, E, 10);
    s_settle (sim);
    assert (s_check (sim, A, 1) == 4 && s_check (sim, C, 1) == 4);
    route_sim_link (sim, A, F, 30);
    for (size_t n = C; n <= E; n++)
        route_sim_link (sim, F, n, 30);
    s_settle (sim);
    assert (s_check (sim, A, 1) == 5);
    route_sim_remove (sim, B);
    s_settle (sim);
    route_tree_flood (sim, A, 8, &f);
    assert (f.delivered [C] && f.delivered [D] && f.delivered [E] && f.delivered [F] && f.copies [A][F] == 1);
    assert (s_check (sim, A, 1) == 4 && s_check (sim, E, 1) == 4);
    route_sim_destroy (&sim);

    //  A silent neighbour s (transit off, or a config peer with no registry id)
    //  beside b and c of a line a - b - c: it hears a's frame from both, takes
    //  it once; its own frames reach everyone once; it forwards nothing of others'
    enum { S = 3 };
    sim = s_converged (4, ROUTE_SPLIT_POISON);
    route_sim_link (sim, A, B, 10);
    route_sim_link (sim, B, C, 10);
    route_sim_link (sim, S, B, 10);
    route_sim_link (sim, S, C, 10);
    route_sim_silent (sim, S);
    s_settle (sim);
    route_tree_flood (sim, A, 8, &f);
    assert (f.delivered [S] == 1 && f.received [S] == 2 && f.copies [A][B] == 1 && f.received [C] == 1);
    assert (s_check (sim, S, 1) == 3);
    assert (s_check (sim, C, 1) >= 3);
    //  The TTL bounds the flood: with 1 only the origin's children take it
    route_tree_flood (sim, A, 1, &f);
    assert (f.delivered [B] && !f.delivered [C]);
    route_sim_destroy (&sim);
}
