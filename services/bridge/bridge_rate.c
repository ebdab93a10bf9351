/*  bridge_rate: token buckets per address and per flow (why: bridge_rate.h). */
#include "bridge_rate.h"

#include <assert.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define S_SLOTS     4096            //  addresses remembered at once

typedef struct {
    uint8_t addr [16];              //  IPv4 as ::ffff:a.b.c.d
    bridge_bucket_t bucket;
} s_slot_t;

struct _bridge_rate_t {
    uint32_t per_second;
    uint8_t hash_key [crypto_shorthash_KEYBYTES];
    s_slot_t slots [S_SLOTS];
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

bridge_rate_t *
bridge_rate_new (uint32_t per_second)
{
    if (sodium_init () < 0)
        return NULL;
    bridge_rate_t *self = (bridge_rate_t *) calloc (1, sizeof *self);
    assert (self);
    self->per_second = per_second;
    randombytes_buf (self->hash_key, sizeof self->hash_key);
    return self;
}

void
bridge_rate_destroy (bridge_rate_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

bool
bridge_rate_allow (bridge_rate_t *self, const struct sockaddr_storage *addr, int64_t now_ms)
{
    if (self->per_second == 0)
        return true;
    uint8_t ip [16] = { 0 };
    if (addr->ss_family == AF_INET) {
        ip [10] = ip [11] = 0xff;
        memcpy (ip + 12, &((const struct sockaddr_in *) addr)->sin_addr, 4);
    }
    else
    if (addr->ss_family == AF_INET6)
        memcpy (ip, &((const struct sockaddr_in6 *) addr)->sin6_addr, 16);
    uint8_t hash [crypto_shorthash_BYTES];
    crypto_shorthash (hash, ip, sizeof ip, self->hash_key);
    s_slot_t *slot = &self->slots [(hash [0] | (unsigned) hash [1] << 8) % S_SLOTS];
    if (memcmp (slot->addr, ip, sizeof ip) != 0) {
        memcpy (slot->addr, ip, sizeof ip);
        slot->bucket = (bridge_bucket_t) { 0, 0 };
    }
    return bridge_bucket_take (&slot->bucket, self->per_second, 1, now_ms);
}

//  ---------------------------------------------------------------------------
//  Self test: a burst of a second's worth, then refusals, then refill; two
//  addresses do not share a bucket; a bucket of bytes

#include <arpa/inet.h>
#include <stdio.h>

void
bridge_rate_test (bool verbose)
{
    bridge_rate_t *self = bridge_rate_new (3);
    assert (self);
    struct sockaddr_storage a = { 0 }, b = { 0 };
    struct sockaddr_in *in = (struct sockaddr_in *) &a;
    in->sin_family = AF_INET;
    inet_pton (AF_INET, "192.0.2.1", &in->sin_addr);
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &b;
    in6->sin6_family = AF_INET6;
    inet_pton (AF_INET6, "2001:db8::1", &in6->sin6_addr);
    int64_t now = 1000000;
    for (int i = 0; i < 3; i++)
        assert (bridge_rate_allow (self, &a, now));
    assert (!bridge_rate_allow (self, &a, now));
    assert (bridge_rate_allow (self, &b, now));         //  another address
    assert (!bridge_rate_allow (self, &a, now + 100));
    assert (bridge_rate_allow (self, &a, now + 400));   //  a third of a second: one more
    assert (!bridge_rate_allow (self, &a, now + 400));
    bridge_rate_destroy (&self);
    assert (self == NULL);
    self = bridge_rate_new (0);                          //  no limit
    for (int i = 0; i < 100; i++)
        assert (bridge_rate_allow (self, &a, now));
    bridge_rate_destroy (&self);

    bridge_bucket_t bytes = { 0, 0 };
    assert (bridge_bucket_take (&bytes, 1000, 600, now));
    assert (!bridge_bucket_take (&bytes, 1000, 600, now));
    assert (bridge_bucket_take (&bytes, 1000, 600, now + 200));
    assert (bridge_bucket_take (&bytes, 0, 1e12, now));
    if (verbose)
        printf ("bridge_rate: ok\n");
}
