/*  route_table: one node's routing state (docs/routing.md). Pure logic: no
    socket, no clock of its own (every call that depends on time takes `now`
    in ms), so a test can run a whole mesh of tables in one process.

    Fed with the links nat measures (route_table_link: a neighbour's RTT and
    how it is reached) and the announcements neighbours send (route_table_
    receive, after route_msg_decode), it keeps every usable candidate per
    destination, not only the best, so when a next hop dies the next best is
    taken at once (failover without waiting for route_timeout). It answers
    the best next hop for a destination, the equal-cost set and the member a
    flow goes to, lists its routes for `bifrostctl routes`, and writes the
    announcements for each neighbour (split horizon, triggered updates with
    damping).

    Route preference, in order: a direct link; then routes through peers (one
    hop or more, ranked by metric = latency_ms + 100 x hops); then anything
    crossing a relay server; then TURN. Within a tier the lowest metric wins,
    then fewer hops, then the lower next-hop id (so every node decides alike).
    A route whose path crosses another neighbour is used only while that
    neighbour offers us the same rest of the path (a stale path is how two
    nodes switch to each other in one round and make a loop).
    What a neighbour announces is bounded: metrics and paths by the codec,
    forged paths through us and paths above max_hops refused here, and the
    number of routes one neighbour may hold capped. */
#ifndef ROUTE_TABLE_H_INCLUDED
#define ROUTE_TABLE_H_INCLUDED

#include "route_msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _route_table_t route_table_t;

//  How nat reaches a neighbour
typedef enum {
    ROUTE_LINK_DIRECT,          //  a direct UDP path (host, server-reflexive, hole punched)
    ROUTE_LINK_RELAY,           //  through a relay server
    ROUTE_LINK_TURN             //  through a TURN server
} route_link_t;

//  Preference tiers, best first
typedef enum {
    ROUTE_TIER_DIRECT,
    ROUTE_TIER_PEER,
    ROUTE_TIER_RELAY,
    ROUTE_TIER_TURN
} route_tier_t;

typedef enum {
    ROUTE_SPLIT_OFF,            //  announce every route to every neighbour
    ROUTE_SPLIT_OMIT,           //  leave out what goes through the neighbour (retract it once when it changes)
    ROUTE_SPLIT_POISON          //  announce what goes through the neighbour as retracted, every time
} route_split_t;

typedef struct {
    unsigned max_hops;          //  routing.max_hops: 1 .. ROUTE_WIRE_MAX_PATH (8)
    int64_t route_timeout;      //  routing.route_timeout, ms (300000)
    route_split_t split_horizon;        //  routing.split_horizon (OMIT)
    bool relay_via_peers;       //  connection.relay_via_peers: use peers as relays and carry for them (true)
    size_t max_per_neighbour;   //  routes one neighbour may hold here (1024)
    size_t max_destinations;    //  destinations in the table (4096)
    int64_t trigger_interval;   //  ms between triggered updates (200)
    unsigned trigger_burst;     //  updates in a row at that interval before each doubles it (8)
    int64_t trigger_max;        //  ms, the damped ceiling (16000)
} route_config_t;

//  One route as the table shows it
typedef struct {
    uint64_t dest;
    uint64_t next_hop;
    uint32_t metric;
    uint8_t hops;
    uint8_t tier;               //  route_tier_t
    uint64_t path [ROUTE_WIRE_MAX_PATH];        //  the next hop first, the destination last (hops ids)
    int64_t updated;            //  ms: when it was last heard (age = now - updated)
} route_t;

//  What the table refused or capped, since it was created
typedef struct {
    uint64_t announcements;     //  taken
    uint64_t stale;             //  announcements not newer than the last from that neighbour
    uint64_t impostor;          //  announcements whose origin is not the neighbour, or from no neighbour
    uint64_t through_us;        //  routes whose path holds this node (forged, or a loop)
    uint64_t too_long;          //  routes above max_hops, or whose metric would pass max_metric
    uint64_t capped;            //  routes dropped by max_per_neighbour or max_destinations
    uint64_t expired;           //  routes removed by route_timeout
} route_stats_t;

//  Fills config with the defaults above
void route_config_defaults (route_config_t *config);

//  A table for node self_id (a peer id, not zero); config NULL = defaults.
//  flow_key keys the flow hash (route_flow); NULL = a random key.
route_table_t *route_table_new (uint64_t self_id, const route_config_t *config, const uint8_t *flow_key);
void route_table_destroy (route_table_t **self_p);

//  A neighbour is up (or its RTT or path changed): rtt_ms as nat measured it
void route_table_link (route_table_t *self, uint64_t peer, uint32_t rtt_ms, route_link_t kind, int64_t now);

//  A neighbour is gone: every route through it is withdrawn at once and the
//  next best candidates take over
void route_table_link_lost (route_table_t *self, uint64_t peer, int64_t now);

//  An announcement (decoded and checked by route_msg_decode) from neighbour
//  `from`. Returns the number of entries taken, or -1 when the whole
//  announcement was refused (not from a neighbour, origin is not `from`, stale).
int route_table_receive (route_table_t *self, uint64_t from, const route_msg_t *msg, int64_t now);

//  Which destinations this node can carry traffic for: the data path forwards
//  by a peer index, which only the peers discovery names have, so a route to
//  any other is of no use to a neighbour, and passing it on would let a liar's
//  made-up destinations fill every cap along the mesh. Announcements leave out
//  the destinations `carries` refuses (they are still taken and used here).
//  NULL (the default): every destination.
typedef bool (route_carry_fn) (void *arg, uint64_t dest);
void route_table_carry (route_table_t *self, route_carry_fn *carries, void *arg);
//  `carries` now accepts dest: it goes out in the next triggered update
void route_table_touch (route_table_t *self, uint64_t dest);
//  Removes routes not heard for route_timeout; returns how many
size_t route_table_expire (route_table_t *self, int64_t now);

//  The best route to dest; false when there is none
bool route_table_best (route_table_t *self, uint64_t dest, route_t *route);

//  The next hops of equal best cost (same tier and metric), at most max;
//  returns how many there are (may be more than max)
size_t route_table_equal (route_table_t *self, uint64_t dest, uint64_t *next_hops, size_t max);

//  The next hop for a flow to dest (route_flow_hash of its 5-tuple); 0 = no route
uint64_t route_table_pick (route_table_t *self, uint64_t dest, uint64_t flow_hash);

//  The tree rooted at origin (reverse path broadcasting, docs/routing.md
//  "Broadcast and multicast along a tree"): the neighbours this node forwards
//  origin's broadcasts to, at most max, by id; returns how many there are. A
//  neighbour is a child unless it offers us a route to origin of its own:
//  with poison reverse it retracts the origin to us exactly when its path
//  crosses us, omit leaves it out, and with split horizon off its path names
//  us, which the table refuses (through_us), so in every mode a neighbour
//  whose route goes through us holds no candidate here. One that announces
//  nothing (transit off, no registry id) is a child of every origin; the
//  origin itself never is. Where origin is this node, every neighbour.
size_t route_table_children (route_table_t *self, uint64_t origin, uint64_t *children, size_t max);

//  Destinations with a route, and their best routes sorted by destination
//  (at most max; returns how many were written)
size_t route_table_size (route_table_t *self);
size_t route_table_routes (route_table_t *self, route_t *routes, size_t max);

//  The announcement for neighbour `to`: full = every route (the periodic
//  dump), else the ones changed since route_table_updates_sent (everything
//  for a neighbour that came up since then). Fills msg with
//  as many entries as fit one announcement, from *cursor on (start at 0);
//  returns the entries written, 0 when done. Call until 0; then for a
//  triggered round call route_table_updates_sent.
size_t route_table_announce (route_table_t *self, uint64_t to, bool full, route_msg_t *msg, size_t *cursor);

//  True when a triggered update should go out now (changes pending or a new
//  neighbour, and the damped interval has passed since the last)
bool route_table_updates_due (route_table_t *self, int64_t now);
//  The triggered update went to every neighbour: clear the changes
void route_table_updates_sent (route_table_t *self, int64_t now);

const route_stats_t *route_table_stats (route_table_t *self);
const route_config_t *route_table_config (route_table_t *self);

//  Bytes the table has allocated (its structures, not the allocator's overhead)
size_t route_table_memory (route_table_t *self);

//  "direct", "peer", "relay", "turn"
const char *route_tier_name (route_tier_t tier);

void route_table_test (bool verbose);

#endif
