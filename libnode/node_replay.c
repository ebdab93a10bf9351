/*  node_replay: RFC 6479 bitmap window, the same algorithm WireGuard uses. */
#include "node_replay.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORDS   (NODE_REPLAY_BITS / 64)

struct _node_replay_t {
    uint64_t last;                      //  highest counter accepted
    uint64_t bitmap [WORDS];
};

node_replay_t *
node_replay_new (void)
{
    node_replay_t *self = calloc (1, sizeof *self);
    assert (self);
    return self;
}

void
node_replay_destroy (node_replay_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

bool
node_replay_too_old (const node_replay_t *self, uint64_t counter)
{
    return counter <= self->last && self->last - counter >= NODE_REPLAY_WINDOW;
}

bool
node_replay_check (const node_replay_t *self, uint64_t counter)
{
    if (counter > self->last)
        return true;
    if (node_replay_too_old (self, counter))
        return false;
    uint64_t word = (counter >> 6) & (WORDS - 1);
    return !(self->bitmap [word] & (1ULL << (counter & 63)));
}

bool
node_replay_update (node_replay_t *self, uint64_t counter)
{
    uint64_t index = counter >> 6;
    if (counter > self->last) {
        //  Slide: clear the words between the old top and the new one
        uint64_t current = self->last >> 6;
        uint64_t diff = index - current;
        if (diff > WORDS)
            diff = WORDS;
        for (uint64_t i = 1; i <= diff; i++)
            self->bitmap [(current + i) & (WORDS - 1)] = 0;
        self->last = counter;
    }
    else
    if (self->last - counter >= NODE_REPLAY_WINDOW)
        return false;
    uint64_t bit = 1ULL << (counter & 63);
    uint64_t *word = &self->bitmap [index & (WORDS - 1)];
    if (*word & bit)
        return false;
    *word |= bit;
    return true;
}

void
node_replay_test (bool verbose)
{
    node_replay_t *r = node_replay_new ();
    //  In order, then duplicates
    for (uint64_t c = 0; c < 100; c++) {
        assert (node_replay_check (r, c));
        assert (node_replay_update (r, c));
    }
    for (uint64_t c = 0; c < 100; c++) {
        assert (!node_replay_check (r, c));
        assert (!node_replay_update (r, c));
    }
    //  Reordered inside the window: a jump ahead, then the gap filled backwards
    assert (node_replay_update (r, 1000));
    for (uint64_t c = 999; c >= 100; c--)
        assert (node_replay_update (r, c));
    assert (!node_replay_update (r, 500));
    //  Edge of the window: last - WINDOW + 1 is still in, last - WINDOW is out
    uint64_t top = 10000;
    assert (node_replay_update (r, top));
    assert (node_replay_check (r, top - NODE_REPLAY_WINDOW + 1));
    assert (node_replay_update (r, top - NODE_REPLAY_WINDOW + 1));
    assert (!node_replay_check (r, top - NODE_REPLAY_WINDOW));
    assert (node_replay_too_old (r, top - NODE_REPLAY_WINDOW));
    assert (!node_replay_too_old (r, top - NODE_REPLAY_WINDOW + 1));
    assert (!node_replay_too_old (r, top + 1));
    assert (!node_replay_update (r, top - NODE_REPLAY_WINDOW));
    //  check never changes state
    assert (node_replay_check (r, top + 5));
    assert (node_replay_check (r, top + 5));
    //  A jump much larger than the window clears everything stale
    assert (node_replay_update (r, top + 100000));
    assert (node_replay_update (r, top + 100000 - 64));
    assert (!node_replay_update (r, top));
    //  Huge counters (near 2^64) do not wrap
    assert (node_replay_update (r, UINT64_MAX - 1));
    assert (!node_replay_update (r, UINT64_MAX - 1));
    assert (node_replay_update (r, UINT64_MAX - 2));
    assert (!node_replay_update (r, 0));
    node_replay_destroy (&r);
    assert (r == NULL);

    //  Random reordering within a small span: each counter accepted exactly once
    r = node_replay_new ();
    uint64_t accepted = 0;
    srand (1);
    for (uint64_t base = 0; base < 200000; base += 256) {
        uint64_t order [256];
        for (int i = 0; i < 256; i++)
            order [i] = base + (uint64_t) i;
        for (int i = 255; i > 0; i--) {
            int j = rand () % (i + 1);
            uint64_t t = order [i]; order [i] = order [j]; order [j] = t;
        }
        for (int i = 0; i < 256; i++) {
            accepted += node_replay_update (r, order [i]);
            assert (!node_replay_update (r, order [i]));
        }
    }
    assert (accepted == 200192);
    if (verbose)
        printf ("  %llu reordered counters accepted once each\n", (unsigned long long) accepted);
    node_replay_destroy (&r);
}
