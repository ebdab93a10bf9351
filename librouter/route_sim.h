/*  route_sim: a mesh of route tables that talk to each other round by round,
    for the tests and the convergence figures (docs/routing.md). Every
    announcement goes through the real codec (encode, then decode) on its way,
    and a round is synchronous: every node sends its triggered update to each
    neighbour, then all are delivered. Links are symmetric with one RTT each.

    It also holds the reference the tables are checked against: the lowest
    metric between two nodes over the live links within max_hops (Bellman-Ford), and a walk
    along the next hops that finds loops and black holes. */
#ifndef ROUTE_SIM_H_INCLUDED
#define ROUTE_SIM_H_INCLUDED

#include "route_table.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _route_sim_t route_sim_t;

//  nodes (at most 64) with ids 1 .. nodes scaled to look like peer ids;
//  config NULL = defaults
route_sim_t *route_sim_new (size_t nodes, const route_config_t *config);
void route_sim_destroy (route_sim_t **self_p);

//  Node i's peer id and table
uint64_t route_sim_id (route_sim_t *self, size_t node);
route_table_t *route_sim_table (route_sim_t *self, size_t node);

//  A symmetric link of rtt_ms between a and b (both tables learn it now),
//  cut (both lose it at once), a node that dies (all its links are cut)
void route_sim_link (route_sim_t *self, size_t a, size_t b, uint32_t rtt_ms);
void route_sim_cut (route_sim_t *self, size_t a, size_t b);
void route_sim_remove (route_sim_t *self, size_t node);
//  The node announces nothing from now on (routing.transit = false, or a
//  peer with no registry id): its neighbours never learn a route through it
void route_sim_silent (route_sim_t *self, size_t node);
bool route_sim_is_silent (route_sim_t *self, size_t node);
//  True when a and b are linked now
bool route_sim_linked (route_sim_t *self, size_t a, size_t b);
size_t route_sim_nodes (route_sim_t *self);
bool route_sim_alive (route_sim_t *self, size_t node);

//  Places the nodes on a plane, at xy (nodes x 2) or pseudo-randomly from seed
//  in side x side, and links every pair at most range apart, RTT = distance
//  in ms; returns the links made
size_t route_sim_plane (route_sim_t *self, const int (*xy) [2], uint32_t seed, int side, uint32_t range);
//  The distance in ms between two placed nodes (1 at least)
uint32_t route_sim_distance (route_sim_t *self, size_t a, size_t b);
//  The node with the most links, and how many
size_t route_sim_busiest (route_sim_t *self, size_t *degree);

//  One synchronous round of triggered updates (full: of periodic dumps);
//  returns the announcements sent (0: converged)
size_t route_sim_round (route_sim_t *self, bool full);
//  Rounds until one sends nothing; returns the rounds that sent something,
//  or max_rounds + 1 when it never settled. Every round is checked for
//  loops: *loops (if not NULL) counts the rounds that left one (a black
//  hole is not a loop).
size_t route_sim_run (route_sim_t *self, size_t max_rounds, size_t *loops);

//  The lowest metric from a to b over live links in at most max_hops hops;
//  UINT32_MAX when unreachable
uint32_t route_sim_reference (route_sim_t *self, size_t a, size_t b);

//  Follows next hops from a to b: the hops taken, or ROUTE_SIM_LOOP, or
//  ROUTE_SIM_BLACK_HOLE (a node on the way has no route, or its next hop is
//  no longer linked: normal for a round while a loss spreads)
#define ROUTE_SIM_LOOP          (-1)
#define ROUTE_SIM_BLACK_HOLE    (-2)
int route_sim_walk (route_sim_t *self, size_t a, size_t b);

//  True when every live pair's route exists exactly when the pair is
//  connected, walks without a loop, and has the reference metric
bool route_sim_check (route_sim_t *self, bool verbose);

void route_sim_test (bool verbose);

#endif
