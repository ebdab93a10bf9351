/*  bridge_rate: token buckets and flow counts per address, the bucket per flow
    (why: bridge_rate.h). */
#include "bridge_rate.h"

#include <assert.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define S_SLOTS     4096            //  addresses remembered at once

typedef struct {
    uint8_t addr [16];              //  IPv4 as ::ffff:a.b.c.d; IPv6: its /64, the rest 0
    uint32_t generation;            //  0: never used
    uint32_t flows;                 //  flows open, taken in this generation
    bridge_bucket_t connects;
    bridge_bucket_t bytes;
} s_slot_t;

struct _bridge_rate_t {
    bridge_rate_config_t config;
    uint8_t hash_key [crypto_shorthash_KEYBYTES];
    uint32_t slot_count;
    uint32_t generation;            //  the last one given to a slot
    s_slot_t *slots;
};

bool
bridge_bucket_take (bridge_bucket_t *bucket, uint32_t rate, double cost, int64_t now_ms)
{
    if (rate == 0)
        return true;
    if (bucket->last_ms == 0)
        bucket->tokens = rate;
    else
    if (now_ms > bucket->last_ms) {
        bucket->tokens += (double) rate * (double) (now_ms - bucket->last_ms) / 1000.0;
        if (bucket->tokens > rate)
            bucket->tokens = rate;
    }
    bucket->last_ms = now_ms ? now_ms : 1;
    if (bucket->tokens < cost)
        return false;
    bucket->tokens -= cost;
    return true;
}

static bridge_rate_t *
s_new (const bridge_rate_config_t *config, uint32_t slot_count)
{
    if (sodium_init () < 0)
        return NULL;
    bridge_rate_t *self = (bridge_rate_t *) calloc (1, sizeof *self);
    assert (self);
    self->config = *config;
    self->slot_count = slot_count;
    self->slots = (s_slot_t *) calloc (slot_count, sizeof *self->slots);
    assert (self->slots);
    randombytes_buf (self->hash_key, sizeof self->hash_key);
    return self;
}

bridge_rate_t *
bridge_rate_new (const bridge_rate_config_t *config)
{
    return s_new (config, S_SLOTS);
}

void
bridge_rate_destroy (bridge_rate_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->slots);
        free (*self_p);
        *self_p = NULL;
    }
}

//  The client address of addr, as the table keys it
static void
s_key (const struct sockaddr_storage *addr, uint8_t ip [16])
{
    static const uint8_t mapped [12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    memset (ip, 0, 16);
    if (addr->ss_family == AF_INET) {
        memcpy (ip, mapped, sizeof mapped);
        memcpy (ip + 12, &((const struct sockaddr_in *) addr)->sin_addr, 4);
    }
    else
    if (addr->ss_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *) addr)->sin6_addr.s6_addr;
        if (memcmp (a, mapped, sizeof mapped) == 0)
            memcpy (ip, a, 16);         //  IPv4 on a dual-stack socket: the IPv4 address
        else
            memcpy (ip, a, 8);          //  the /64
    }
}

//  The slot of addr, found or taken over (create), or NULL (not found)
static s_slot_t *
s_slot (bridge_rate_t *self, const struct sockaddr_storage *addr, bool create)
{
    uint8_t ip [16];
    s_key (addr, ip);
    uint8_t hash [crypto_shorthash_BYTES];
    crypto_shorthash (hash, ip, sizeof ip, self->hash_key);
    s_slot_t *first = &self->slots [(hash [0] | (unsigned) hash [1] << 8 | (unsigned) hash [2] << 16) % self->slot_count];
    s_slot_t *second = &self->slots [(hash [3] | (unsigned) hash [4] << 8 | (unsigned) hash [5] << 16) % self->slot_count];
    if (first->generation && memcmp (first->addr, ip, sizeof ip) == 0)
        return first;
    if (second->generation && memcmp (second->addr, ip, sizeof ip) == 0)
        return second;
    if (!create)
        return NULL;
    s_slot_t *slot = first->flows == 0 || second->flows != 0 ? first : second;
    memcpy (slot->addr, ip, sizeof ip);
    if (++self->generation == 0)        //  after 2^32 takeovers: 0 means unused
        self->generation = 1;
    slot->generation = self->generation;
    slot->flows = 0;                    //  the flows of the address before: forgotten
    slot->connects = (bridge_bucket_t) { 0, 0 };
    slot->bytes = (bridge_bucket_t) { 0, 0 };
    return slot;
}

bool
bridge_rate_allow (bridge_rate_t *self, const struct sockaddr_storage *addr, int64_t now_ms)
{
    if (self->config.connects_per_second == 0)
        return true;
    return bridge_bucket_take (&s_slot (self, addr, true)->connects, self->config.connects_per_second, 1, now_ms);
}

bool
bridge_rate_flow_take (bridge_rate_t *self, const struct sockaddr_storage *addr, bridge_rate_ref_t *ref)
{
    assert (ref->generation == 0);
    if (self->config.flows_per_address == 0 && self->config.bytes_per_second == 0)
        return true;                    //  nothing to count
    s_slot_t *slot = s_slot (self, addr, true);
    if (self->config.flows_per_address && slot->flows >= self->config.flows_per_address)
        return false;
    slot->flows++;
    ref->slot = (uint32_t) (slot - self->slots);
    ref->generation = slot->generation;
    return true;
}

void
bridge_rate_flow_release (bridge_rate_t *self, bridge_rate_ref_t *ref)
{
    if (ref->generation == 0)
        return;
    s_slot_t *slot = &self->slots [ref->slot];
    if (slot->generation == ref->generation) {
        assert (slot->flows > 0);
        slot->flows--;
    }
    *ref = (bridge_rate_ref_t) { 0, 0 };
}

bool
bridge_rate_flow_bytes (bridge_rate_t *self, const bridge_rate_ref_t *ref, double cost, int64_t now_ms)
{
    if (ref->generation == 0 || self->slots [ref->slot].generation != ref->generation)
        return true;
    return bridge_bucket_take (&self->slots [ref->slot].bytes, self->config.bytes_per_second, cost, now_ms);
}

uint32_t
bridge_rate_flows (bridge_rate_t *self, const struct sockaddr_storage *addr)
{
    s_slot_t *slot = s_slot (self, addr, false);
    return slot ? slot->flows : 0;
}

//  ---------------------------------------------------------------------------
//  Self test: a burst of a second's worth, then refusals, then refill; two
//  addresses do not share a bucket, two of one /64 do; flows counted up and
//  down, also when their slot was taken over; the bytes of an address's
//  flows together; a bucket of bytes

#include <arpa/inet.h>
#include <stdio.h>

static struct sockaddr_storage
s_addr (const char *text)
{
    struct sockaddr_storage ss;
    memset (&ss, 0, sizeof ss);
    if (strchr (text, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons (40000);
        assert (inet_pton (AF_INET6, text, &in6->sin6_addr) == 1);
    }
    else {
        struct sockaddr_in *in = (struct sockaddr_in *) &ss;
        in->sin_family = AF_INET;
        in->sin_port = htons (40001);
        assert (inet_pton (AF_INET, text, &in->sin_addr) == 1);
    }
    return ss;
}

void
bridge_rate_test (bool verbose)
{
    struct sockaddr_storage a = s_addr ("192.0.2.1"), b = s_addr ("2001:db8::1");
    struct sockaddr_storage b2 = s_addr ("2001:db8::ffff:1:2:3");        //  b's /64
    struct sockaddr_storage c = s_addr ("2001:db8:0:1::1");             //  the next /64
    struct sockaddr_storage a6 = s_addr ("::ffff:192.0.2.1");           //  a, on a dual-stack socket
    struct sockaddr_storage a2 = s_addr ("::ffff:192.0.2.2");           //  not a's: IPv4 is not grouped
    bridge_rate_config_t config = { 3, 0, 0 };
    bridge_rate_t *self = bridge_rate_new (&config);
    assert (self);
    int64_t now = 1000000;
    for (int i = 0; i < 3; i++)
        assert (bridge_rate_allow (self, &a, now));
    assert (!bridge_rate_allow (self, &a, now));
    assert (!bridge_rate_allow (self, &a6, now));       //  the same address
    assert (bridge_rate_allow (self, &a2, now));        //  another IPv4 address
    assert (bridge_rate_allow (self, &b, now));         //  another address
    assert (!bridge_rate_allow (self, &a, now + 100));
    assert (bridge_rate_allow (self, &a, now + 400));   //  a third of a second: one more
    assert (!bridge_rate_allow (self, &a, now + 400));
    //  IPv6 by its /64: b and b2 share one bucket, c has its own
    assert (bridge_rate_allow (self, &b2, now));
    assert (bridge_rate_allow (self, &b, now));
    assert (!bridge_rate_allow (self, &b2, now));
    assert (!bridge_rate_allow (self, &b, now));
    for (int i = 0; i < 3; i++)
        assert (bridge_rate_allow (self, &c, now));
    assert (!bridge_rate_allow (self, &c, now));
    bridge_rate_destroy (&self);
    assert (self == NULL);
    config.connects_per_second = 0;                     //  no limit
    self = bridge_rate_new (&config);
    for (int i = 0; i < 100; i++)
        assert (bridge_rate_allow (self, &a, now));
    bridge_rate_ref_t none = { 0, 0 };
    assert (bridge_rate_flow_take (self, &a, &none) && none.generation == 0);   //  nothing counted
    bridge_rate_destroy (&self);

    //  Flows per address: 2, counted up and down exactly, by /64
    config = (bridge_rate_config_t) { 0, 2, 0 };
    self = bridge_rate_new (&config);
    bridge_rate_ref_t r [8];
    memset (r, 0, sizeof r);
    assert (bridge_rate_flow_take (self, &b, &r [0]) && r [0].generation);
    assert (bridge_rate_flow_take (self, &b2, &r [1]));
    assert (bridge_rate_flows (self, &b) == 2 && bridge_rate_flows (self, &b2) == 2);
    assert (!bridge_rate_flow_take (self, &b, &r [2]) && r [2].generation == 0);
    assert (!bridge_rate_flow_take (self, &b2, &r [2]));
    assert (bridge_rate_flow_take (self, &c, &r [2]));  //  the next /64: its own
    assert (bridge_rate_flow_take (self, &a, &r [3]));
    assert (bridge_rate_flow_take (self, &a6, &r [4]));
    assert (!bridge_rate_flow_take (self, &a, &r [5]));
    assert (bridge_rate_flows (self, &a) == 2 && bridge_rate_flows (self, &c) == 1);
    bridge_rate_flow_release (self, &r [0]);
    assert (r [0].generation == 0 && bridge_rate_flows (self, &b) == 1);
    bridge_rate_flow_release (self, &r [0]);            //  once only
    assert (bridge_rate_flows (self, &b) == 1);
    assert (bridge_rate_flow_take (self, &b, &r [0]));
    assert (!bridge_rate_flow_take (self, &b2, &r [5]));
    for (int i = 0; i < 5; i++)
        bridge_rate_flow_release (self, &r [i]);
    assert (bridge_rate_flows (self, &a) == 0 && bridge_rate_flows (self, &b) == 0 && bridge_rate_flows (self, &c) == 0);
    bridge_rate_destroy (&self);

    //  Takeover, with one slot: every address collides
    self = s_new (&config, 1);
    memset (r, 0, sizeof r);
    assert (bridge_rate_flow_take (self, &a, &r [0]) && bridge_rate_flow_take (self, &a, &r [1]));
    assert (!bridge_rate_flow_take (self, &a, &r [2]));
    assert (bridge_rate_flow_take (self, &c, &r [2]));  //  takes the slot over: a is forgotten,
    assert (bridge_rate_flows (self, &c) == 1);         //  c is not refused for a's flows
    bridge_rate_flow_release (self, &r [0]);            //  a's flows end: c's count stays
    assert (bridge_rate_flows (self, &c) == 1);
    assert (bridge_rate_flow_take (self, &c, &r [3]) && !bridge_rate_flow_take (self, &c, &r [4]));
    bridge_rate_flow_release (self, &r [2]);
    assert (bridge_rate_flows (self, &c) == 1);
    assert (bridge_rate_flow_take (self, &a, &r [4]));  //  a again: a new generation, counted from 0
    assert (bridge_rate_flows (self, &a) == 1 && bridge_rate_flows (self, &c) == 0);
    bridge_rate_flow_release (self, &r [1]);            //  a's flow of the old generation: not this one's
    bridge_rate_flow_release (self, &r [3]);            //  c's: gone with c's generation
    assert (bridge_rate_flows (self, &a) == 1);
    assert (bridge_rate_flow_take (self, &a, &r [5]) && !bridge_rate_flow_take (self, &a, &r [6]));
    bridge_rate_flow_release (self, &r [4]);
    bridge_rate_flow_release (self, &r [5]);
    assert (bridge_rate_flows (self, &a) == 0);
    for (int i = 0; i < 8; i++)
        assert (r [i].generation == 0);
    bridge_rate_destroy (&self);

    //  The bytes of all an address's flows: 1000/s over two flows of b's /64
    config = (bridge_rate_config_t) { 0, 0, 1000 };
    self = bridge_rate_new (&config);
    memset (r, 0, sizeof r);
    assert (bridge_rate_flow_take (self, &b, &r [0]) && bridge_rate_flow_take (self, &b2, &r [1]));
    assert (bridge_rate_flow_take (self, &c, &r [2]));
    assert (bridge_rate_flow_bytes (self, &r [0], 600, now));
    assert (!bridge_rate_flow_bytes (self, &r [1], 600, now));     //  the other flow, the same address
    assert (bridge_rate_flow_bytes (self, &r [2], 600, now));      //  another /64
    assert (bridge_rate_flow_bytes (self, &r [1], 600, now + 200));
    for (int i = 0; i < 3; i++)
        bridge_rate_flow_release (self, &r [i]);
    bridge_rate_destroy (&self);

    bridge_bucket_t bytes = { 0, 0 };
    assert (bridge_bucket_take (&bytes, 1000, 600, now));
    assert (!bridge_bucket_take (&bytes, 1000, 600, now));
    assert (bridge_bucket_take (&bytes, 1000, 600, now + 200));
    assert (bridge_bucket_take (&bytes, 0, 1e12, now));
    if (verbose)
        printf ("bridge_rate: ok\n");
}
