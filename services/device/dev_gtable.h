/*  dev_gtable: what the router says about groups (`group.members`), as the
    packet path needs it: for a multicast group, whether any peer is a member
    (a group the router knows to be empty is not flooded); for an anycast
    address, the nearest member's peer index (a packet to it goes there
    alone) and whether this node is a member itself (then the address is on
    the interface and the kernel answers it).

    What the router never mentioned is unknown: the caller does what it did
    before groups existed (flood multicast, route unicast by prefix), so a node
    without a router, or before it spoke, behaves as it always did. Broadcast,
    224.0.0.0/24 and ff02::/16 are link-local by definition (ARP-like
    discovery, mDNS, neighbour discovery...): never dropped, whatever the
    router says.

    Lookups are a binary search over a sorted array (groups are tens, changed
    rarely; the lookup runs per multicast packet, and per unicast packet only
    while some anycast address has a nearest member). */
#ifndef DEV_GTABLE_H_INCLUDED
#define DEV_GTABLE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEV_GTABLE_NO_PEER  0xFFFFFFFFu

typedef struct _dev_gtable_t dev_gtable_t;

typedef enum {
    DEV_GROUP_UNKNOWN = 0,      //  never mentioned (or link-local): as before
    DEV_GROUP_EMPTY,            //  multicast with no peer member: drop
    DEV_GROUP_FLOOD,            //  multicast with peer members: flood
    DEV_GROUP_NEAREST           //  anycast with a reachable member: *peer
} dev_group_route_t;

typedef struct {
    int family;                 //  AF_INET or AF_INET6
    uint8_t addr [16];
    bool anycast;
    bool local;                 //  this node is a member
    uint32_t nearest;           //  DEV_GTABLE_NO_PEER when none
    uint32_t members;           //  peer members
} dev_gentry_t;

//  capacity: most groups remembered; when full, a group known to be gone
//  makes room, otherwise the new one stays unknown (flooded: the safe side).
dev_gtable_t *dev_gtable_new (size_t capacity);
void dev_gtable_destroy (dev_gtable_t **self_p);

//  Parses "239.1.2.3" or "2001:db8::7" into e's family and addr; -1 if it is
//  not an address, or multicast flagged anycast, or unicast not flagged so.
int dev_gtable_parse (const char *text, bool anycast, dev_gentry_t *e);
//  Records what the router said about e's group. *old gets what was known
//  before (all zero, nearest DEV_GTABLE_NO_PEER, if nothing). -1 if full.
int dev_gtable_set (dev_gtable_t *self, const dev_gentry_t *e, dev_gentry_t *old);
//  Forgets everything (the router went away); calls fn for every anycast
//  entry that was local, so the caller can take the address off.
void dev_gtable_clear (dev_gtable_t *self, void (*fn) (const dev_gentry_t *e, void *arg), void *arg);

//  The route for a destination address (4 or 16 bytes).
dev_group_route_t dev_gtable_route (dev_gtable_t *self, int family, const uint8_t *dst, uint32_t *peer);
//  True while some anycast address has a nearest member (unicast lookups needed).
bool dev_gtable_has_anycast (dev_gtable_t *self);
size_t dev_gtable_count (dev_gtable_t *self);

void dev_gtable_test (bool verbose);
#endif
