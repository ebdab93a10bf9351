/*  nat_transit: nat's side of mesh routing (docs/routing.md, "Transit").

    Holds what the router pushes (`route.next`: per destination its next hops,
    its registry id, the TTL, this node's id) and decides, per routed packet,
    what nat does with it:
      - our own packets to a destination whose next hop is another peer go in a
        routing header (nat_routed.h) to that neighbour (nat_transit_via);
      - a routed packet that arrived for us goes to crypto as its source's;
      - one for someone else is forwarded to the next hop, only when it came
        from a neighbour that is up, with its TTL taken down, never back to the
        neighbour it came from, within a token bucket per source peer (packets
        and bytes per second: `routing.transit_*_per_second`), and not at all
        with `routing.transit = false`. Every refusal is counted by reason.
    nat holds no key: it only ever reads the 20-byte header. Pure: the clock is
    an argument, nothing here touches a socket. */
#ifndef NAT_TRANSIT_H_INCLUDED
#define NAT_TRANSIT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "nat_routed.h"

#define NAT_TRANSIT_PEERS   250             //  peer indices 0 .. 249 (NODE_PEERS_MAX)
#define NAT_TRANSIT_HOPS    4               //  equal-cost next hops kept per destination
#define NAT_TRANSIT_NONE    UINT32_MAX      //  no index

typedef enum {
    NAT_TRANSIT_FORWARD = 0,        //  to the next hop (*index)
    NAT_TRANSIT_DELIVER,            //  for us: to crypto as peer *index's
    NAT_TRANSIT_DROP_TTL,           //  its TTL ran out here
    NAT_TRANSIT_DROP_BUDGET,        //  over its source's budget
    NAT_TRANSIT_DROP_REFUSED,       //  routing.transit = false (or a budget of 0)
    NAT_TRANSIT_DROP_NO_ROUTE,      //  no next hop but the neighbour it came from, or none at all
    NAT_TRANSIT_DROP_NOT_NEIGHBOUR, //  not from the confirmed endpoint of a neighbour that is up
    NAT_TRANSIT_DROP_UNKNOWN,       //  its source (or, for us, its sender) is no peer we know
    NAT_TRANSIT_VERDICTS
} nat_transit_verdict_t;

typedef struct {
    uint64_t verdicts [NAT_TRANSIT_VERDICTS];   //  by verdict: forwarded, delivered, dropped by reason
    uint64_t forwarded_bytes;
    uint64_t sent;                              //  our own packets sent in a routing header
} nat_transit_stats_t;

typedef struct _nat_transit_t nat_transit_t;

//  transit: routing.transit; pps / bps: the budget per source (0: none carried)
nat_transit_t *nat_transit_new (bool transit, uint32_t pps, uint32_t bps);
void nat_transit_destroy (nat_transit_t **self_p);

//  route.next for destination index: this node's id, the destination's, the
//  TTL to start with, and its next hops (count 0: unreachable). A next hop
//  equal to index is the direct link. Returns true when whether the
//  destination is routed (nat_transit_via) changed. -1 for a bad index.
int nat_transit_set_route (nat_transit_t *self, uint32_t index, uint64_t self_id, uint64_t dest_id,
                           uint32_t ttl, const uint32_t *hops, size_t count);
//  A peer's registry id (peer.up's peer_id): routed packets name peers by it
void nat_transit_set_id (nat_transit_t *self, uint32_t index, uint64_t id);
//  The peer of that id, or NAT_TRANSIT_NONE
uint32_t nat_transit_index (const nat_transit_t *self, uint64_t id);
uint64_t nat_transit_self_id (const nat_transit_t *self);

//  The neighbour our own packets to index go through in a routing header, or
//  NAT_TRANSIT_NONE (direct, or no route known): the one check per packet of
//  the data path. hdr (if not NULL) gets the header to write (TTL, ids).
uint32_t nat_transit_via (const nat_transit_t *self, uint32_t index, nat_routed_t *hdr);
//  The same for a flow that crypto put on next hop k (its position in
//  route.next's list, PIPE_FLOW_HOP): that hop, or the first when k is not one
uint32_t nat_transit_via_hop (const nat_transit_t *self, uint32_t index, unsigned k, nat_routed_t *hdr);
//  Counts one of our packets sent in a routing header
void nat_transit_sent (nat_transit_t *self);

//  A routed packet (decoded header hdr, bytes in all) that arrived from
//  neighbour `from` (NAT_TRANSIT_NONE: not from the confirmed endpoint of a
//  neighbour that is up). Counts the verdict; *index gets the next hop
//  (FORWARD) or the source peer (DELIVER).
nat_transit_verdict_t nat_transit_judge (nat_transit_t *self, const nat_routed_t *hdr, uint32_t from,
                                         size_t bytes, int64_t now_ms, uint32_t *index);

const nat_transit_stats_t *nat_transit_stats (const nat_transit_t *self);
//  Per source peer: packets forwarded for it, and dropped for its budget
void nat_transit_source_stats (const nat_transit_t *self, uint32_t index, uint64_t *forwarded, uint64_t *over_budget);
//  "forward", "deliver", "ttl", "budget", "refused", "no_route", "not_neighbour", "unknown"
const char *nat_transit_verdict_name (nat_transit_verdict_t verdict);

void nat_transit_test (bool verbose);

#endif
