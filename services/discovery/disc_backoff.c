/*  disc_backoff: reconnection delays (see disc_backoff.h). */
#include "disc_backoff.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

struct _disc_backoff_t {
    int64_t min_ms, max_ms;
    int64_t delay_ms;           //  the last delay without jitter
    uint32_t failures;
    uint64_t state;             //  xorshift64; 0 = no jitter
};

disc_backoff_t *
disc_backoff_new (int64_t min_ms, int64_t max_ms, uint64_t seed)
{
    assert (min_ms > 0 && max_ms >= min_ms);
    disc_backoff_t *self = calloc (1, sizeof *self);
    assert (self);
    self->min_ms = min_ms;
    self->max_ms = max_ms;
    self->state = seed;
    return self;
}

void
disc_backoff_destroy (disc_backoff_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

static uint64_t
s_random (disc_backoff_t *self)
{
    uint64_t x = self->state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    self->state = x;
    return x;
}

int64_t
disc_backoff_next (disc_backoff_t *self)
{
    uint32_t failures = self->failures++;
    if (failures == 0)
        return 0;
    if (failures == 1)
        self->delay_ms = self->min_ms;
    else {
        self->delay_ms *= 2;
        if (self->delay_ms > self->max_ms)
            self->delay_ms = self->max_ms;
    }
    int64_t delay = self->delay_ms;
    if (self->state) {
        int64_t jitter = delay * DISC_BACKOFF_JITTER_PCT / 100;
        if (jitter > 0)
            delay -= (int64_t) (s_random (self) % (uint64_t) (jitter + 1));
    }
    return delay;
}

void
disc_backoff_reset (disc_backoff_t *self)
{
    self->failures = 0;
    self->delay_ms = 0;
}

uint32_t
disc_backoff_failures (disc_backoff_t *self)
{
    return self->failures;
}

void
disc_backoff_test (bool verbose)
{
    disc_backoff_t *self = disc_backoff_new (DISC_BACKOFF_MIN_MS, DISC_BACKOFF_MAX_MS, 0);
    int64_t expect [] = { 0, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000 };
    for (size_t i = 0; i < sizeof expect / sizeof expect [0]; i++)
        assert (disc_backoff_next (self) == expect [i]);
    assert (disc_backoff_failures (self) == 10);
    disc_backoff_reset (self);
    assert (disc_backoff_failures (self) == 0);
    assert (disc_backoff_next (self) == 0 && disc_backoff_next (self) == 1000);
    disc_backoff_destroy (&self);
    assert (self == NULL);

    //  Jitter: never longer than the exact delay, at most 20% shorter, and not
    //  the same for two seeds
    disc_backoff_t *a = disc_backoff_new (1000, 60000, 1);
    disc_backoff_t *b = disc_backoff_new (1000, 60000, 2);
    bool differ = false;
    int64_t exact = 0;
    for (int i = 0; i < 40; i++) {
        int64_t da = disc_backoff_next (a), db = disc_backoff_next (b);
        exact = i == 0 ? 0 : i == 1 ? 1000 : exact * 2 > 60000 ? 60000 : exact * 2;
        assert (da <= exact && da >= exact - exact / 5);
        assert (db <= exact && db >= exact - exact / 5);
        differ |= da != db;
        if (verbose && i < 10)
            printf ("  attempt %d: %lld / %lld ms\n", i, (long long) da, (long long) db);
    }
    assert (differ);
    disc_backoff_destroy (&a);
    disc_backoff_destroy (&b);
}
