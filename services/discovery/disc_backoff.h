/*  disc_backoff: when to try the registry again. The first retry after a loss is
    at once (a registry restart or a dropped WebSocket is usually over by then),
    then 1 s, 2 s, 4 s ... capped at 60 s, each shortened by up to 20% of jitter so
    a thousand nodes that lost the registry together do not come back in step.
    A success resets the sequence. */
#ifndef DISC_BACKOFF_H_INCLUDED
#define DISC_BACKOFF_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#define DISC_BACKOFF_MIN_MS     1000
#define DISC_BACKOFF_MAX_MS     60000
#define DISC_BACKOFF_JITTER_PCT 20

typedef struct _disc_backoff_t disc_backoff_t;

//  seed: jitter randomness (0 = no jitter: exact delays, for tests)
disc_backoff_t *disc_backoff_new (int64_t min_ms, int64_t max_ms, uint64_t seed);
void disc_backoff_destroy (disc_backoff_t **self_p);

//  The delay before the next attempt: 0 the first time, then growing.
int64_t disc_backoff_next (disc_backoff_t *self);
//  The last attempt worked.
void disc_backoff_reset (disc_backoff_t *self);
//  Failed attempts since the last reset.
uint32_t disc_backoff_failures (disc_backoff_t *self);

void disc_backoff_test (bool verbose);
#endif
