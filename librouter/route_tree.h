/*  route_tree: a broadcast flooded along the trees route_table_children gives
    each node (reverse path broadcasting, docs/routing.md "Broadcast and
    multicast along a tree"), over a route_sim mesh, one copy at a time, as
    the data path does it: a node delivers an (origin, frame) once and sends
    it on to the origin's children but the neighbour it came from; a silent
    node (route_sim_silent: transit off) forwards nothing of others'. For the
    self test and the figures of the doc: who got it, how many copies crossed
    each link. */
#ifndef ROUTE_TREE_H_INCLUDED
#define ROUTE_TREE_H_INCLUDED

#include "route_sim.h"

#define ROUTE_TREE_NODES 64

typedef struct {
    unsigned delivered [ROUTE_TREE_NODES];      //  1: the node took it (0 for the origin)
    unsigned received [ROUTE_TREE_NODES];       //  copies that reached the node (duplicates included)
    unsigned copies [ROUTE_TREE_NODES][ROUTE_TREE_NODES];  //  [from][to]
    unsigned total;                             //  copies sent in all
} route_tree_flood_t;

//  One frame from origin with the TTL ttl
void route_tree_flood (route_sim_t *sim, size_t origin, unsigned ttl, route_tree_flood_t *out);

//  Copies one end-to-end copy per destination (today's flood without a tree)
//  would put on the link origin -> hop: the destinations origin reaches through hop
unsigned route_tree_e2e_copies (route_sim_t *sim, size_t origin, size_t hop);

void route_tree_test (bool verbose);
#endif
