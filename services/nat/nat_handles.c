/*  nat_handles: bounded table of recent source addresses (see nat_handles.h). */
#include "nat_handles.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

typedef struct {
    nat_addr_t addr;
    uint32_t gen;               //  1 .. gen_max, bumped when the slot changes hands
    int32_t next;               //  next slot in the same hash bucket, -1 = end
    bool live;
    bool used;                  //  the clock's reference bit
} s_slot_t;

struct _nat_handles_t {
    s_slot_t *slots;
    int32_t *buckets;           //  head slot per bucket, -1 = empty
    size_t capacity;            //  power of two
    size_t bucket_mask;         //  2 x capacity buckets
    unsigned shift;             //  log2 (capacity): the slot bits of a handle
    uint32_t gen_max;
    size_t filled;              //  slots handed out at least once
    size_t hand;                //  the clock hand
    int32_t last;               //  slot of the previous lookup: datagrams come in runs
    uint64_t seed;
    nat_handles_stats_t stats;
};

nat_handles_t *
nat_handles_new (size_t capacity, uint64_t seed)
{
    if (capacity == 0)
        capacity = NAT_HANDLES_DEFAULT;
    if (capacity > NAT_HANDLES_MAX)
        capacity = NAT_HANDLES_MAX;
    size_t size = 16;
    unsigned shift = 4;
    while (size < capacity) {
        size <<= 1;
        shift++;
    }
    nat_handles_t *self = (nat_handles_t *) calloc (1, sizeof (nat_handles_t));
    assert (self);
    self->capacity = size;
    self->shift = shift;
    self->gen_max = (uint32_t) ((1ull << (32 - shift)) - 1);
    self->bucket_mask = 2 * size - 1;
    self->slots = (s_slot_t *) calloc (size, sizeof (s_slot_t));
    self->buckets = (int32_t *) malloc (2 * size * sizeof (int32_t));
    assert (self->slots && self->buckets);
    for (size_t i = 0; i < 2 * size; i++)
        self->buckets [i] = -1;
    for (size_t i = 0; i < size; i++) {
        self->slots [i].next = -1;
        self->slots [i].gen = 1;
    }
    self->last = -1;
    self->seed = seed;
    return self;
}

void
nat_handles_destroy (nat_handles_t **self_p)
{
    assert (self_p);
    nat_handles_t *self = *self_p;
    if (self) {
        free (self->slots);
        free (self->buckets);
        free (self);
        *self_p = NULL;
    }
}

static uint32_t
s_handle (nat_handles_t *self, int32_t slot)
{
    return self->slots [slot].gen << self->shift | (uint32_t) slot;
}

static size_t
s_bucket (nat_handles_t *self, const nat_addr_t *addr)
{
    return (size_t) nat_addr_hash (addr, self->seed) & self->bucket_mask;
}

//  Takes a slot from the address that has gone longest without use.
static int32_t
s_evict (nat_handles_t *self)
{
    //  At most one full turn clears every reference bit, so this ends
    while (self->slots [self->hand].used) {
        self->slots [self->hand].used = false;
        self->hand = (self->hand + 1) & (self->capacity - 1);
    }
    int32_t victim = (int32_t) self->hand;
    self->hand = (self->hand + 1) & (self->capacity - 1);
    s_slot_t *slot = &self->slots [victim];
    int32_t *link = &self->buckets [s_bucket (self, &slot->addr)];
    while (*link != victim) {
        assert (*link >= 0);
        link = &self->slots [*link].next;
    }
    *link = slot->next;
    slot->live = false;
    slot->gen = slot->gen == self->gen_max ? 1 : slot->gen + 1;
    self->stats.evictions++;
    return victim;
}

uint32_t
nat_handles_get (nat_handles_t *self, const nat_addr_t *addr)
{
    self->stats.lookups++;
    if (self->last >= 0) {
        s_slot_t *slot = &self->slots [self->last];
        if (slot->live && nat_addr_eq (&slot->addr, addr)) {
            slot->used = true;
            return s_handle (self, self->last);
        }
    }
    size_t bucket = s_bucket (self, addr);
    for (int32_t i = self->buckets [bucket]; i >= 0; i = self->slots [i].next) {
        if (nat_addr_eq (&self->slots [i].addr, addr)) {
            self->slots [i].used = true;
            self->last = i;
            return s_handle (self, i);
        }
    }
    int32_t index = self->filled < self->capacity ? (int32_t) self->filled++ : s_evict (self);
    s_slot_t *slot = &self->slots [index];
    slot->addr = *addr;
    slot->live = true;
    slot->used = true;
    slot->next = self->buckets [bucket];
    self->buckets [bucket] = index;
    self->last = index;
    self->stats.inserts++;
    return s_handle (self, index);
}

const nat_addr_t *
nat_handles_addr (nat_handles_t *self, uint32_t handle)
{
    uint32_t index = handle & (uint32_t) (self->capacity - 1);
    s_slot_t *slot = &self->slots [index];
    if (!slot->live || slot->gen != handle >> self->shift) {
        self->stats.stale++;
        return NULL;
    }
    return &slot->addr;
}

size_t nat_handles_count (nat_handles_t *self) { return self->filled; }
size_t nat_handles_capacity (nat_handles_t *self) { return self->capacity; }
const nat_handles_stats_t *nat_handles_stats (nat_handles_t *self) { return &self->stats; }

//  ---------------------------------------------------------------------------
//  Self test

static void
s_addr (nat_addr_t *addr, uint32_t n)
{
    //  198.51.100.0/24 and 203.0.113.0/24 style documentation addresses, many ports
    char ip [32];
    snprintf (ip, sizeof ip, "%s.%u", n & 1 ? "198.51.100" : "203.0.113", (n >> 1) & 0xff);
    assert (nat_addr_set_ip (addr, ip, (uint16_t) (1000 + (n >> 9))) == 0);
}

void
nat_handles_test (bool verbose)
{
    //  Capacity rounding and bounds
    nat_handles_t *self = nat_handles_new (0, 1);
    assert (nat_handles_capacity (self) == NAT_HANDLES_DEFAULT);
    nat_handles_destroy (&self);
    assert (self == NULL);
    self = nat_handles_new (1, 1);
    assert (nat_handles_capacity (self) == 16);
    nat_handles_destroy (&self);
    self = nat_handles_new (100, 1);
    assert (nat_handles_capacity (self) == 128);
    nat_handles_destroy (&self);
    self = nat_handles_new (1u << 30, 1);
    assert (nat_handles_capacity (self) == NAT_HANDLES_MAX);
    nat_handles_destroy (&self);

    //  The same address gets the same handle, another address another one
    self = nat_handles_new (16, 42);
    nat_addr_t a, b, c;
    assert (nat_addr_set_ip (&a, "192.0.2.1", 51820) == 0);
    assert (nat_addr_set_ip (&b, "2001:db8::1", 51820) == 0);
    assert (nat_addr_set_ip (&c, "192.0.2.1", 51821) == 0);
    uint32_t ha = nat_handles_get (self, &a);
    uint32_t hb = nat_handles_get (self, &b);
    uint32_t hc = nat_handles_get (self, &c);
    assert (ha != NAT_HANDLE_NONE && hb != NAT_HANDLE_NONE && hc != NAT_HANDLE_NONE);
    assert (ha != hb && hb != hc && ha != hc);
    assert (nat_handles_get (self, &a) == ha);
    assert (nat_handles_get (self, &b) == hb);
    assert (nat_handles_get (self, &b) == hb);      //  the run cache
    assert (nat_handles_get (self, &a) == ha);
    assert (nat_addr_eq (nat_handles_addr (self, ha), &a));
    assert (nat_addr_eq (nat_handles_addr (self, hb), &b));
    assert (nat_handles_count (self) == 3);
    //  Garbage handles are refused
    assert (nat_handles_addr (self, NAT_HANDLE_NONE) == NULL);
    assert (nat_handles_addr (self, 0xFFFFFFFF) == NULL);
    assert (nat_handles_addr (self, ha + 16) == NULL);     //  next generation of a's slot
    assert (nat_handles_addr (self, 5 | 1u << 4) == NULL); //  a slot never used
    assert (nat_handles_stats (self)->stale == 4);

    //  Fill: 13 more addresses fit without eviction
    nat_addr_t more [40];
    uint32_t handle [40];
    for (uint32_t i = 0; i < 13; i++) {
        s_addr (&more [i], i);
        handle [i] = nat_handles_get (self, &more [i]);
    }
    assert (nat_handles_count (self) == 16 && nat_handles_stats (self)->evictions == 0);
    //  Now every slot has its reference bit; touch a only, after one full sweep. The
    //  next insert clears all bits and takes slot 0 (a's). Then touch b and c: the
    //  next inserts take the untouched ones and leave b and c alone.
    nat_addr_t x;
    s_addr (&x, 100);
    uint32_t hx = nat_handles_get (self, &x);
    assert (nat_handles_stats (self)->evictions == 1);
    assert ((hx & 15) == (ha & 15));
    assert (nat_handles_addr (self, ha) == NULL);   //  a's handle is stale now
    assert (nat_addr_eq (nat_handles_addr (self, hx), &x));
    //  a comes back: a new slot and a new handle, the old one stays refused
    nat_handles_get (self, &b);
    nat_handles_get (self, &c);
    uint32_t ha2 = nat_handles_get (self, &a);
    assert (ha2 != ha && nat_addr_eq (nat_handles_addr (self, ha2), &a));
    assert (nat_handles_addr (self, ha) == NULL);
    for (uint32_t i = 13; i < 40; i++) {
        s_addr (&more [i], i);
        handle [i] = nat_handles_get (self, &more [i]);
        nat_handles_get (self, &b);
        nat_handles_get (self, &c);
    }
    //  b and c, used all the time, kept their handles
    assert (nat_handles_get (self, &b) == hb && nat_handles_get (self, &c) == hc);
    assert (nat_addr_eq (nat_handles_addr (self, hb), &b));
    //  Every handle maps to its address, or is refused; never to another address
    size_t valid = 0;
    for (uint32_t i = 0; i < 40; i++) {
        const nat_addr_t *addr = nat_handles_addr (self, handle [i]);
        if (addr) {
            assert (nat_addr_eq (addr, &more [i]));
            valid++;
        }
    }
    assert (valid > 0 && valid <= 14);
    nat_handles_destroy (&self);

    //  Churn: 100,000 addresses through 1024 slots; the table agrees with a
    //  brute-force model (each live slot's address is found by its handle, and a
    //  lookup of a present address returns its handle)
    self = nat_handles_new (1024, 7);
    uint32_t *model = (uint32_t *) calloc (200000, sizeof (uint32_t));
    assert (model);
    uint32_t seed = 12345;
    for (uint32_t round = 0; round < 100000; round++) {
        seed = seed * 1103515245 + 12345;
        uint32_t n = (seed >> 8) % 3000;            //  3000 distinct addresses
        nat_addr_t addr;
        s_addr (&addr, n);
        uint32_t h = nat_handles_get (self, &addr);
        const nat_addr_t *back = nat_handles_addr (self, h);
        assert (back && nat_addr_eq (back, &addr));
        if (model [n] && model [n] != h)
            //  It was evicted in between: the old handle must be refused now
            assert (nat_handles_addr (self, model [n]) == NULL
                 || !nat_addr_eq (nat_handles_addr (self, model [n]), &addr));
        model [n] = h;
    }
    for (uint32_t n = 0; n < 3000; n++) {
        if (!model [n])
            continue;
        const nat_addr_t *addr = nat_handles_addr (self, model [n]);
        if (addr) {
            nat_addr_t expect;
            s_addr (&expect, n);
            assert (nat_addr_eq (addr, &expect));
        }
    }
    assert (nat_handles_count (self) == 1024);
    if (verbose)
        printf ("nat_handles: %llu lookups, %llu evictions\n",
                (unsigned long long) nat_handles_stats (self)->lookups,
                (unsigned long long) nat_handles_stats (self)->evictions);
    free (model);
    nat_handles_destroy (&self);
}
