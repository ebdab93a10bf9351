/*  router_links: the router's neighbours, as the bus tells of them, fed into
    its route_table (librouter/route_table.h). Why a class of its own: the
    events name a peer by index, nat describes a path as an endpoint string
    and the table wants a 64-bit peer id, a link kind and an RTT; keeping
    that translation here (no bus, no clock) lets the self test feed every
    case by hand and the service stay a thin layer of handlers.

    Sources, each idempotent (bus.sync repeats them in any order):
      discovery  peer.up (the peer's registry id) / peer.down (withdrawn at once)
      nat        nat.peer (state and endpoint) / nat.peer.down (withdrawn at once)
                 nat.status rows, polled: the path in words and the RTT
    A peer is a neighbour while nat says it is up: direct for an address
    (`a.b.c.d:port`, `[v6]:port`, `bday/N`, ICE `ice/N` with a direct pair),
    relay for `relay/<id>`, TURN for an ICE pair through TURN (nat.status's
    path `turn (...)`). Its metric is nat's RTT in ms (100 until nat's first
    sample) + 100 for the hop.

    Peer ids: the registry id when discovery or nat named one, else a local
    key (ROUTER_LINKS_LOCAL | index) for a peer of the config; this node is
    ROUTER_LINKS_SELF until discovery's node.address names its registry id
    (router_links_set_self: announcements need it). When a peer's id becomes
    known its link moves to it. */
#ifndef ROUTER_LINKS_H_INCLUDED
#define ROUTER_LINKS_H_INCLUDED

#include "route_table.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROUTER_LINKS_SELF       0xFFFFFFFFFFFFFFFFULL
#define ROUTER_LINKS_LOCAL      0xFFFFFFFF00000000ULL
#define ROUTER_LINKS_RTT_UNKNOWN 100            //  ms, a link's cost before nat's first sample

typedef struct _router_links_t router_links_t;

//  One neighbour or known peer, as router_links_find* show it
typedef struct {
    uint32_t index;
    char name [49];
    uint64_t id;                //  the table's key
    bool registry_id;           //  id is the registry's (else local)
    bool up;                    //  nat says up: a link in the table
    route_link_t kind;
    uint32_t rtt_ms;            //  nat's RTT, 0 = no sample yet
} router_peer_t;

router_links_t *router_links_new (const route_config_t *config);
void router_links_destroy (router_links_t **self_p);

route_table_t *router_links_table (router_links_t *self);

//  discovery: peer.up (peer_id, else relay_id: "" or 16 hex digits) and
//  peer.down (the link lost; the record kept, not up, so a nat.status row
//  asked before it cannot bring the peer back, and a returning peer keeps its
//  index and id)
void router_links_peer_up (router_links_t *self, uint32_t index, const char *name, const char *relay_id,
                           const char *peer_id, int64_t now);

//  discovery: node.address's peer_id, this node's registry id (16 hex
//  digits). The table is made again with it, the links carried over; true
//  when it changed (the table is another: nothing of the old one holds)
bool router_links_set_self (router_links_t *self, const char *peer_id, int64_t now);
//  Our registry id, 0 while unknown
uint64_t router_links_self (router_links_t *self);

//  Every peer heard of, by position (0 .. count - 1)
size_t router_links_count (router_links_t *self);
const router_peer_t *router_links_at (router_links_t *self, size_t i);
void router_links_peer_down (router_links_t *self, uint32_t index, int64_t now);

//  nat: nat.peer (state `up` makes a neighbour, anything else withdraws it)
//  and nat.peer.down
void router_links_nat (router_links_t *self, uint32_t index, const char *name, const char *state,
                       const char *endpoint, int64_t now);
void router_links_nat_down (router_links_t *self, uint32_t index, int64_t now);

//  nat.status, asked for at `asked`: begin, one call per peer's row (rtt_us
//  -1 = no sample; refreshes the link), end (a peer up here that the reply
//  did not list is withdrawn). A row older than an event about the peer
//  that arrived after the question (the reply and the events travel apart)
//  is ignored, so a peer that went down is not brought back by it.
void router_links_status_begin (router_links_t *self);
void router_links_status (router_links_t *self, uint32_t index, const char *name, const char *state,
                          const char *endpoint, const char *path, const char *relay_id, int64_t rtt_us,
                          int64_t asked, int64_t now);
void router_links_status_end (router_links_t *self, int64_t asked, int64_t now);

//  Neighbours up now
size_t router_links_up (router_links_t *self);

//  The peer with this index / table id / name; NULL when unknown
const router_peer_t *router_links_find (router_links_t *self, uint32_t index);
const router_peer_t *router_links_find_id (router_links_t *self, uint64_t id);
//  The peer's name, or its id in 16 hex digits when no name was heard
void router_links_name (router_links_t *self, uint64_t id, char *out, size_t size);
const router_peer_t *router_links_find_name (router_links_t *self, const char *name);

//  The link kind nat's endpoint and path words describe (path may be "")
route_link_t router_links_kind (const char *endpoint, const char *path);

void router_links_test (bool verbose);

#endif
