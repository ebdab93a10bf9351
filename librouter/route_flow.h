/*  route_flow: per-flow load balancing over equal-cost next hops
    (docs/routing.md, "Equal-cost paths"). A flow is the inner packet's
    5-tuple; its hash is keyed (SipHash-2-4 with a per-node random key) so a
    peer cannot aim many flows at one path, and the next hop is chosen by
    rendezvous hashing: each candidate scores hash (flow, candidate) and the
    highest wins, so when a next hop leaves only its own flows move, and a
    TCP flow stays on one path (never reordered) while the set is stable.

    The router's table (route_table_pick) and the data path use these same
    functions, so they always agree on where a flow goes. */
#ifndef ROUTE_FLOW_H_INCLUDED
#define ROUTE_FLOW_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROUTE_FLOW_KEY_SIZE 16

typedef struct {
    uint8_t src [16], dst [16];     //  IPv6, or IPv4 in the first 4 bytes (the rest zero)
    uint16_t sport, dport;          //  0 for protocols without ports, and for fragments
    uint8_t proto;                  //  IP protocol number
    uint8_t version;                //  4 or 6
} route_flow_t;

//  The 5-tuple of an IPv4 or IPv6 packet. Ports only for TCP, UDP, UDP-Lite
//  and SCTP, and never for an IPv4 fragment, so every fragment of a datagram
//  hashes alike. -1 when the bytes are not an IP packet.
int route_flow_parse (const uint8_t *packet, size_t size, route_flow_t *flow);

//  Keyed hash of a flow
uint64_t route_flow_hash (const route_flow_t *flow, const uint8_t key [ROUTE_FLOW_KEY_SIZE]);

//  Index of the member (a next hop's peer id) that the flow goes to, among
//  count (>= 1) members: the highest rendezvous score
size_t route_flow_pick (uint64_t flow_hash, const uint64_t *members, size_t count);

void route_flow_test (bool verbose);

#endif
