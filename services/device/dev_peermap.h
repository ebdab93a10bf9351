/*  dev_peermap: which peer gets a packet read from the device. TUN packets are
    routed by IP destination (longest prefix match over each peer's prefixes,
    usually its /32 and /128); TAP frames by destination MAC (static entries for
    peers' known MACs plus a learning table fed by frames received from peers,
    with aging, like a switch). Broadcast and multicast flood to every peer.
    A destination no peer owns is counted and dropped, never sent anywhere: a
    VPN that floods unknown unicast leaks traffic to every member. The one
    exception is ARP (and only ARP) to an unknown unicast MAC, which floods so a
    neighbour re-validation still works after the learned entry aged out.

    Every packet is parsed defensively: anything malformed is a counted drop.
    Lookups allocate nothing; tables are sized at creation. */
#ifndef DEV_PEERMAP_H_INCLUDED
#define DEV_PEERMAP_H_INCLUDED

#include "dev_config.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _dev_peermap_t dev_peermap_t;

typedef enum {
    DEV_ROUTE_PEER = 0,         //  send to *peer
    DEV_ROUTE_FLOOD,            //  broadcast/multicast: send to every peer
    DEV_ROUTE_UNKNOWN,          //  no peer owns the destination: drop
    DEV_ROUTE_MALFORMED         //  not a well-formed packet: drop
} dev_route_t;

typedef struct {
    uint64_t peer;              //  packets routed to one peer
    uint64_t flood;             //  packets flooded
    uint64_t unknown;           //  dropped: unknown destination
    uint64_t malformed;         //  dropped: malformed packet
    uint64_t learned;           //  new MAC entries learned
    uint64_t moved;             //  learned MACs that moved to another peer
    uint64_t aged;              //  learned MACs removed after aging out
    uint64_t table_full;        //  MACs not learned because the table was full
    uint64_t spoofed;           //  frames from a peer claiming a MAC it may not
} dev_peermap_stats_t;

//  mac_capacity: most MAC entries (static + learned); age_ms: a learned entry
//  unused (no frame from its peer) for this long is forgotten.
dev_peermap_t *dev_peermap_new (size_t mac_capacity, uint64_t age_ms);
void dev_peermap_destroy (dev_peermap_t **self_p);

//  The device's own address: its subnet's broadcast floods (IPv4), and an
//  inbound frame claiming our own MAC is never learned.
void dev_peermap_set_local (dev_peermap_t *self, const dev_addr_t *address, const uint8_t mac [6]);
//  Adds a prefix owned by a peer (e.g. 10.100.0.2/32). -1 on allocation failure.
int dev_peermap_add_prefix (dev_peermap_t *self, const dev_addr_t *prefix, uint32_t peer);
//  Adds a MAC owned by a peer (its derived MAC); never ages, never re-learned
//  for another peer. -1 if the table is full or the MAC is multicast.
int dev_peermap_add_mac (dev_peermap_t *self, const uint8_t mac [6], uint32_t peer);
//  The static MAC of a peer (its derived MAC), for answering ARP/ND on its
//  behalf (an anycast address, docs/groups.md). -1 if it has none.
int dev_peermap_peer_mac (dev_peermap_t *self, uint32_t peer, uint8_t mac [6]);
//  Forgets every prefix and MAC of a peer (peer down).
void dev_peermap_remove_peer (dev_peermap_t *self, uint32_t peer);

//  Outbound, TUN: routes an IP packet.
dev_route_t dev_peermap_route_ip (dev_peermap_t *self, const uint8_t *pkt, size_t len, uint32_t *peer);
//  Outbound, TAP: routes an Ethernet frame; now_ms is a monotonic clock.
dev_route_t dev_peermap_route_eth (dev_peermap_t *self, const uint8_t *frame, size_t len,
                                   uint64_t now_ms, uint32_t *peer);
//  Inbound, TAP: a frame received from peer; learns its source MAC. Returns -1
//  (and counts) if the frame is malformed and must not be written to the TAP.
int dev_peermap_learn (dev_peermap_t *self, const uint8_t *frame, size_t len,
                       uint32_t peer, uint64_t now_ms);
//  Removes learned entries older than the aging time (also done when full).
void dev_peermap_expire (dev_peermap_t *self, uint64_t now_ms);

size_t dev_peermap_mac_count (dev_peermap_t *self);
const dev_peermap_stats_t *dev_peermap_stats (dev_peermap_t *self);

void dev_peermap_test (bool verbose);
#endif
