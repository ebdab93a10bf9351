/*  disc_paths: this node's paths to its peers, for the registry's status page
    (issue 19). Every heartbeat carries them (schemas/rest.def, rest_heartbeat_req
    `paths`): discovery asks the router for its route table (router.routes)
    just before the heartbeat and turns each route to a peer the registry
    named into a path: its tier (direct, relay, turn, peer), for a route
    through other peers the registry id of the first peer crossed, and the RTT
    nat measured on the first link. A pure function, so it is tested without a
    bus; a node whose router does not answer sends its heartbeat without paths
    (the registry keeps the last report). */
#ifndef DISC_PATHS_H_INCLUDED
#define DISC_PATHS_H_INCLUDED

#include "bus_schema.h"
#include "rest_schema.h"

//  The registry id of the peer with this index (the index discovery gave it in
//  peer.up), or NULL: a config peer, or one discovery does not know.
typedef const char *(disc_paths_id_fn) (uint32_t index, void *arg);

//  Fills out (at most max) from the router's reply; returns the count. A
//  route's peer is named by the router's peer_id, else by id_of (the router
//  learns registry ids only with relays). Routes to peers without a registry
//  id, to self_id, or with a tier the registry does not know are left out, and
//  so are duplicates.
size_t disc_paths_from_routes (const router_routes_reply_t *routes, const char *self_id,
                               disc_paths_id_fn *id_of, void *arg, rest_path_t *out, size_t max);

void disc_paths_test (bool verbose);
#endif
