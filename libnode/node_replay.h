/*  node_replay: the sliding replay window of one receiving key (RFC 6479).

    A bitmap of 2048 bits in 64-bit words plus the highest counter seen: counters
    inside the window (1984 below the highest) are accepted once each and in any
    order, so packets reordered by the network are not lost; duplicates and older
    counters are refused. Check cheaply before decrypting, update only AFTER the
    AEAD tag verified, or a forged packet could move the window. */
#ifndef NODE_REPLAY_H_INCLUDED
#define NODE_REPLAY_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#define NODE_REPLAY_BITS      2048
#define NODE_REPLAY_WINDOW    (NODE_REPLAY_BITS - 64)

typedef struct _node_replay_t node_replay_t;

node_replay_t *node_replay_new (void);
void node_replay_destroy (node_replay_t **self_p);
//  True if counter could be accepted (not seen, not too old); changes nothing
bool node_replay_check (const node_replay_t *self, uint64_t counter);
//  True if counter lies below the window (refused for age, not as a duplicate):
//  a receiver that reports why it dropped a datagram tells the two apart
bool node_replay_too_old (const node_replay_t *self, uint64_t counter);
//  Records counter; false if it was a duplicate or too old (then nothing changes)
bool node_replay_update (node_replay_t *self, uint64_t counter);

void node_replay_test (bool verbose);
#endif
