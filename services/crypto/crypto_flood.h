/*  crypto_flood: broadcasts and multicasts relayed hop by hop along a tree
    rooted at their origin (docs/routing.md, "Broadcast and multicast along a
    tree"), minus the sessions and the bus.

    Why a class of its own: what the data path decides for a flood frame (is
    it new, who gets it next, is the origin within its budget) depends only on
    the trees the router pushes (`route.tree`) and on what was seen before, so
    the self test can drive every decision without a session or a socket.

    It holds, per origin (registry id): its peer index when known, the
    neighbours this node forwards its frames to (the tree's children here), a
    sliding window of the sequence numbers taken (node_replay: 1,984 behind
    the highest, any order) and a token bucket for forwarding. Our own tree
    (origin = our registry id) gives the neighbours our own floods go to and
    their sequence numbers. Nothing here is secret: the frame is encrypted
    and decrypted by the sessions of the neighbours it crosses. */
#ifndef CRYPTO_FLOOD_H_INCLUDED
#define CRYPTO_FLOOD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "schemas/wire.h"

#define CRYPTO_FLOOD_NO_PEER    UINT32_MAX      //  an origin with no peer index (or ourselves)
#define CRYPTO_FLOOD_ORIGINS    4352            //  origins tracked at most: the router's 4,096 destinations + 256
#define CRYPTO_FLOOD_CHILDREN   250             //  neighbours in one tree at most (NODE_PEERS_MAX)

//  The flood header: the first WIRE_FLOOD_HEADER bytes of the encrypted part
typedef struct {
    uint64_t origin;            //  the origin's registry id, not zero
    uint64_t seqno;             //  per origin
    uint8_t ttl;                //  1 .. WIRE_ROUTED_TTL_MAX
} crypto_flood_header_t;

//  What crypto_flood_accept decided about a frame
typedef enum {
    CRYPTO_FLOOD_FRESH = 0,     //  first time: deliver, then forward
    CRYPTO_FLOOD_DUPLICATE,     //  (origin, seqno) taken before, or too old for the window
    CRYPTO_FLOOD_OWN,           //  our own frame came back
    CRYPTO_FLOOD_FULL           //  a new origin and no room to track it: dropped
} crypto_flood_verdict_t;

typedef struct _crypto_flood_t crypto_flood_t;

//  Writes the header at plain (WIRE_FLOOD_HEADER bytes)
void crypto_flood_header_encode (const crypto_flood_header_t *header, uint8_t *plain);
//  Reads it from a decrypted flood frame of len bytes; -1 when too short (no
//  packet after it), the origin is zero, the TTL is 0 or above 16, or a
//  reserved byte is set
int crypto_flood_header_decode (const uint8_t *plain, size_t len, crypto_flood_header_t *header);

//  first_seqno: our first sequence number (the clock in microseconds, so a
//  restarted node's frames are newer than those it sent before); rate: frames
//  per second forwarded per origin (one second's worth at once; 0 = none)
crypto_flood_t *crypto_flood_new (uint64_t first_seqno, uint32_t rate);
void crypto_flood_destroy (crypto_flood_t **self_p);

//  route.tree: origin's children (peer indexes). origin_id == self_id is our
//  own tree: from then on the tree is active (crypto_flood_active).
//  origin_index CRYPTO_FLOOD_NO_PEER for ourselves. ttl is what our own
//  frames start with.
void crypto_flood_set_tree (crypto_flood_t *self, uint64_t self_id, uint64_t origin_id, uint32_t origin_index,
                            uint32_t ttl, const uint32_t *children, size_t count);
//  peer.up's registry id of a peer index (an origin's index before its tree comes)
void crypto_flood_set_id (crypto_flood_t *self, uint32_t index, uint64_t id);
//  True once the router sent our own tree: floods go along trees, else
//  (no router, no registry id) the service sends one copy per session
bool crypto_flood_active (const crypto_flood_t *self);

//  Our next flood: its header (a new sequence number) and the neighbours it
//  goes to; returns their count
size_t crypto_flood_own (crypto_flood_t *self, crypto_flood_header_t *header, uint32_t *children, size_t max);
//  True when peer is one of our own tree's children
bool crypto_flood_is_child (const crypto_flood_t *self, uint32_t peer);

//  A frame that arrived: taken at most once per (origin, seqno). On FRESH,
//  *origin_index is the origin's peer index (CRYPTO_FLOOD_NO_PEER if unknown).
crypto_flood_verdict_t crypto_flood_accept (crypto_flood_t *self, const crypto_flood_header_t *header,
                                            uint32_t *origin_index);
//  Where a fresh frame that came from neighbour `from` goes next: the
//  origin's children but `from` and the origin, while the TTL allows (it
//  arrived with 2 or more; header->ttl is taken down by one) and the
//  origin's budget holds (now in ns; over it: 0, counted). Returns the count.
size_t crypto_flood_forward (crypto_flood_t *self, crypto_flood_header_t *header, uint32_t from, uint64_t now,
                             uint32_t *children, size_t max);

//  Frames refused by the budget since start
uint64_t crypto_flood_over_budget (const crypto_flood_t *self);

void crypto_flood_test (bool verbose);
#endif
