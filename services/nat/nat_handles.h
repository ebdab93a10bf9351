/*  nat_handles: the small numbers nat gives crypto instead of addresses.

    nat tags every datagram it passes to crypto with a handle for its source
    address (docs/packet-path.md), and crypto hands the handle back in an ENDPOINT
    record once it has authenticated the sender. crypto never sees an address, and
    nat never trusts a source address until crypto vouches for it.

    The table is bounded (anyone on the internet can send from many addresses), so
    slots are recycled with the clock algorithm: a slot used since the hand last
    passed survives one more round. A handle encodes slot and generation, and a slot
    gets a new generation whenever it is given to another address, so a handle that
    crypto confirms after its slot was recycled is refused (it could otherwise point
    a peer's traffic at a stranger). Lookups are a seeded hash of the canonical
    address; no allocation after nat_handles_new. */
#ifndef NAT_HANDLES_H_INCLUDED
#define NAT_HANDLES_H_INCLUDED

#include "nat_addr.h"

#define NAT_HANDLES_DEFAULT 1024        //  recent source addresses remembered
#define NAT_HANDLES_MAX     (1u << 16)
#define NAT_HANDLE_NONE     0           //  never a valid handle

typedef struct _nat_handles_t nat_handles_t;

typedef struct {
    uint64_t lookups;           //  nat_handles_get calls
    uint64_t inserts;           //  addresses given a slot
    uint64_t evictions;         //  slots taken from an older address
    uint64_t stale;             //  nat_handles_addr refusals (recycled or invalid)
} nat_handles_stats_t;

//  capacity: slots, rounded up to a power of two, 16 .. NAT_HANDLES_MAX
//  (0 = NAT_HANDLES_DEFAULT); seed: for the address hash.
nat_handles_t *nat_handles_new (size_t capacity, uint64_t seed);
void nat_handles_destroy (nat_handles_t **self_p);

//  The handle of addr, giving it a slot (recycling the oldest unused one) when it
//  has none. Marks the slot as used. Never NAT_HANDLE_NONE.
uint32_t nat_handles_get (nat_handles_t *self, const nat_addr_t *addr);

//  The address of a handle, or NULL when the handle is invalid or its slot has
//  been given to another address since (counted as stale).
const nat_addr_t *nat_handles_addr (nat_handles_t *self, uint32_t handle);

//  Slots in use, and the capacity.
size_t nat_handles_count (nat_handles_t *self);
size_t nat_handles_capacity (nat_handles_t *self);
const nat_handles_stats_t *nat_handles_stats (nat_handles_t *self);

void nat_handles_test (bool verbose);
#endif
