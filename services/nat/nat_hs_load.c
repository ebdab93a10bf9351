/*  nat_hs_load: initiations in the last second, in 100 ms slots (see the header). */
#include "nat_hs_load.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

struct _nat_hs_load_t {
    uint32_t max;
    uint32_t count [NAT_HS_LOAD_SLOTS];
    int64_t slot [NAT_HS_LOAD_SLOTS];       //  which 100 ms slot each holds (-1: none)
    int64_t under_since_ms;                 //  -1: not under load
    int64_t under_last_ms;
    uint64_t total_ms;                      //  of the episodes that ended
};

nat_hs_load_t *
nat_hs_load_new (uint32_t max)
{
    nat_hs_load_t *self = calloc (1, sizeof *self);
    assert (self);
    self->max = max;
    for (int i = 0; i < NAT_HS_LOAD_SLOTS; i++)
        self->slot [i] = -1;
    self->under_since_ms = -1;
    return self;
}

void
nat_hs_load_destroy (nat_hs_load_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

void
nat_hs_load_note (nat_hs_load_t *self, int64_t now_ms)
{
    int64_t slot = (now_ms < 0 ? 0 : now_ms) / NAT_HS_LOAD_SLOT_MS;
    size_t i = (size_t) (slot % NAT_HS_LOAD_SLOTS);
    if (self->slot [i] != slot) {
        if (self->slot [i] > slot)
            return;                     //  the clock went back: not counted
        self->slot [i] = slot;
        self->count [i] = 0;
    }
    if (self->count [i] < UINT32_MAX)
        self->count [i]++;
}

uint32_t
nat_hs_load_count (nat_hs_load_t *self, int64_t now_ms)
{
    int64_t slot = (now_ms < 0 ? 0 : now_ms) / NAT_HS_LOAD_SLOT_MS;
    uint64_t sum = 0;
    for (int i = 0; i < NAT_HS_LOAD_SLOTS; i++)
        if (self->slot [i] >= 0 && self->slot [i] <= slot && slot - self->slot [i] < NAT_HS_LOAD_SLOTS)
            sum += self->count [i];
    return sum > UINT32_MAX ? UINT32_MAX : (uint32_t) sum;
}

bool
nat_hs_load_under (nat_hs_load_t *self, int64_t now_ms)
{
    bool under = nat_hs_load_count (self, now_ms) > self->max;
    if (under) {
        if (self->under_since_ms < 0)
            self->under_since_ms = now_ms;
        if (now_ms > self->under_last_ms)
            self->under_last_ms = now_ms;
    }
    else
    if (self->under_since_ms >= 0) {
        if (self->under_last_ms > self->under_since_ms)
            self->total_ms += (uint64_t) (self->under_last_ms - self->under_since_ms);
        self->under_since_ms = -1;
    }
    return under;
}

uint64_t
nat_hs_load_total_ms (nat_hs_load_t *self)
{
    uint64_t open = self->under_since_ms >= 0 && self->under_last_ms > self->under_since_ms
                  ? (uint64_t) (self->under_last_ms - self->under_since_ms) : 0;
    return self->total_ms + open;
}

//  ---------------------------------------------------------------------------
//  Self test: the threshold, the window sliding out, slots reused, a clock
//  that goes back, the time under load.

void
nat_hs_load_test (bool verbose)
{
    nat_hs_load_t *self = nat_hs_load_new (50);
    int64_t t = 10000;
    for (int i = 0; i < 50; i++)
        nat_hs_load_note (self, t + i * 10);             //  50 over 500 ms
    assert (nat_hs_load_count (self, t + 500) == 50);
    assert (!nat_hs_load_under (self, t + 500));
    nat_hs_load_note (self, t + 500);
    assert (nat_hs_load_under (self, t + 500));          //  51 in the last second
    //  The first slot (t .. t+99: 10 of them) leaves the window at t + 1000
    assert (nat_hs_load_under (self, t + 999));
    assert (nat_hs_load_count (self, t + 1000) == 41);
    assert (!nat_hs_load_under (self, t + 1000));
    assert (nat_hs_load_total_ms (self) == 499);
    //  All gone a second after the last one
    assert (nat_hs_load_count (self, t + 1600) == 0);
    //  A slot reused ten slots later starts from zero
    nat_hs_load_note (self, t + 2000);
    assert (nat_hs_load_count (self, t + 2000) == 1);
    //  A steady 100 a second is load, 40 a second is not
    nat_hs_load_destroy (&self);
    self = nat_hs_load_new (50);
    for (int i = 0; i < 300; i++)
        nat_hs_load_note (self, 20000 + i * 10);
    assert (nat_hs_load_count (self, 22999) == 100 && nat_hs_load_under (self, 22999));
    nat_hs_load_destroy (&self);
    self = nat_hs_load_new (50);
    for (int i = 0; i < 120; i++)
        nat_hs_load_note (self, 30000 + i * 25);
    assert (nat_hs_load_count (self, 32999) == 40 && !nat_hs_load_under (self, 32999));
    //  A clock that goes back counts nothing and breaks nothing
    nat_hs_load_note (self, 100);
    assert (nat_hs_load_count (self, 100) == 0);
    nat_hs_load_note (self, -5);
    nat_hs_load_destroy (&self);
    assert (self == NULL);
    if (verbose)
        printf ("  load above 50 a second, over a sliding second\n");
}
