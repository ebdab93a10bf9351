/*  nat_hs_budget: token buckets for handshake initiations (see the header for why). */
#include "nat_hs_budget.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

//  Tokens in thousandths, so a rate of a few a second refills smoothly per ms
typedef struct {
    int64_t tokens;
    int64_t at_ms;
} s_bucket_t;

typedef struct {
    uint32_t handle;                //  the source this slot holds (0: none yet)
    s_bucket_t bucket;
} s_source_t;

struct _nat_hs_budget_t {
    s_source_t *sources;
    size_t mask;
    int64_t source_burst, source_rate, global_burst, global_rate;     //  in thousandths
    s_bucket_t global;
    nat_hs_budget_stats_t stats;
};

nat_hs_budget_t *
nat_hs_budget_new (size_t capacity, uint32_t source_burst, uint32_t source_rate,
                   uint32_t global_burst, uint32_t global_rate)
{
    size_t size = 16;
    while (size < capacity && size < (1u << 16))
        size <<= 1;
    nat_hs_budget_t *self = calloc (1, sizeof *self);
    assert (self);
    self->sources = calloc (size, sizeof (s_source_t));
    assert (self->sources);
    self->mask = size - 1;
    self->source_burst = (int64_t) source_burst * 1000;
    self->source_rate = source_rate;
    self->global_burst = (int64_t) global_burst * 1000;
    self->global_rate = global_rate;
    self->global.tokens = self->global_burst;
    self->global.at_ms = -1;
    return self;
}

void
nat_hs_budget_destroy (nat_hs_budget_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->sources);
        free (*self_p);
        *self_p = NULL;
    }
}

//  Refills for the time since the bucket was last seen (rate per second = per
//  ms in thousandths), capped at the burst; a clock that went back refills nothing
static void
s_refill (s_bucket_t *bucket, int64_t burst, int64_t rate, int64_t now_ms)
{
    if (bucket->at_ms >= 0 && now_ms > bucket->at_ms) {
        int64_t elapsed = now_ms - bucket->at_ms;
        //  A long silence refills the whole burst (and keeps the product small)
        bucket->tokens = elapsed >= 3600000 ? burst : bucket->tokens + elapsed * rate;
        if (bucket->tokens > burst)
            bucket->tokens = burst;
    }
    if (bucket->at_ms < 0 || now_ms > bucket->at_ms)
        bucket->at_ms = now_ms;
}

bool
nat_hs_budget_allow (nat_hs_budget_t *self, uint32_t handle, int64_t now_ms)
{
    s_source_t *source = &self->sources [handle & self->mask];
    if (source->handle != handle) {
        //  A new source in this slot (or the slot's address changed): a full bucket
        source->handle = handle;
        source->bucket.tokens = self->source_burst;
        source->bucket.at_ms = now_ms;
    }
    s_refill (&source->bucket, self->source_burst, self->source_rate, now_ms);
    s_refill (&self->global, self->global_burst, self->global_rate, now_ms);
    if (source->bucket.tokens < 1000) {
        self->stats.limited_source++;
        return false;
    }
    if (self->global.tokens < 1000) {
        self->stats.limited_global++;
        return false;
    }
    source->bucket.tokens -= 1000;
    self->global.tokens -= 1000;
    self->stats.allowed++;
    return true;
}

const nat_hs_budget_stats_t *
nat_hs_budget_stats (const nat_hs_budget_t *self)
{
    return &self->stats;
}

//  ---------------------------------------------------------------------------
//  Self test: a burst then the rate per source, sources apart, the global cap
//  across sources, a recycled slot, a clock that goes back.

static int
s_allowed (nat_hs_budget_t *self, uint32_t handle, int64_t now, int tries)
{
    int n = 0;
    for (int i = 0; i < tries; i++)
        n += nat_hs_budget_allow (self, handle, now);
    return n;
}

void
nat_hs_budget_test (bool verbose)
{
    nat_hs_budget_t *self = nat_hs_budget_new (1024, 10, 5, 50, 25);
    //  One source: its burst at once, then 5 a second
    assert (s_allowed (self, 1 | 1u << 10, 1000, 100) == 10);
    assert (nat_hs_budget_stats (self)->limited_source == 90);
    assert (s_allowed (self, 1 | 1u << 10, 1199, 10) == 0);
    assert (s_allowed (self, 1 | 1u << 10, 1200, 10) == 1);
    assert (s_allowed (self, 1 | 1u << 10, 2200, 10) == 5);
    //  Another source has its own burst
    assert (s_allowed (self, 2 | 1u << 10, 2200, 100) == 10);
    //  The slot of source 1 given to another address (a new generation): full again
    assert (s_allowed (self, 1 | 2u << 10, 2200, 100) == 10);
    //  All sources: 50 at once, then 25 a second, however many sources
    nat_hs_budget_destroy (&self);
    self = nat_hs_budget_new (1024, 10, 5, 50, 25);
    int total = 0;
    for (uint32_t s = 1; s <= 100; s++)
        total += s_allowed (self, s, 5000, 3);
    assert (total == 50);
    assert (nat_hs_budget_stats (self)->limited_global == 250);
    total = 0;
    for (uint32_t s = 101; s <= 200; s++)
        total += s_allowed (self, s, 6000, 1);
    assert (total == 25);
    //  A clock that goes back refills nothing and breaks nothing
    assert (s_allowed (self, 300, 100, 5) == 0);
    assert (s_allowed (self, 300, 6040, 5) == 1);
    assert (nat_hs_budget_stats (self)->allowed == 50 + 25 + 1);
    nat_hs_budget_destroy (&self);
    assert (self == NULL);
    if (verbose)
        printf ("  per source 10 then 5/s, all sources 50 then 25/s\n");
}
