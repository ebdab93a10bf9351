/*  nat_hs_load: is this node under a load of handshake initiations?

    WireGuard answers initiations with cookie replies only "under load", so a
    quiet node costs a peer no extra round trip. Here load is: more than
    NAT_HS_LOAD_MAX initiations with a valid mac1 arrived in the last second
    (ten 100 ms slots, so it ends about a second after a flood does). A peer's
    crypto sends one initiation per second at most while it retries, so a
    network of a few dozen peers all handshaking at once stays below. Pure:
    the clock is an argument. */
#ifndef NAT_HS_LOAD_H_INCLUDED
#define NAT_HS_LOAD_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#define NAT_HS_LOAD_MAX     50      //  initiations a second before cookies are asked
#define NAT_HS_LOAD_SLOTS   10
#define NAT_HS_LOAD_SLOT_MS 100

typedef struct _nat_hs_load_t nat_hs_load_t;

nat_hs_load_t *nat_hs_load_new (uint32_t max);
void nat_hs_load_destroy (nat_hs_load_t **self_p);

//  One initiation with a valid mac1 at now_ms
void nat_hs_load_note (nat_hs_load_t *self, int64_t now_ms);
//  How many in the last second
uint32_t nat_hs_load_count (nat_hs_load_t *self, int64_t now_ms);
//  More than max in the last second? Each call also keeps the account of the
//  time under load
bool nat_hs_load_under (nat_hs_load_t *self, int64_t now_ms);
//  Milliseconds spent under load in all (in each episode, from the first call
//  that found it under load to the last)
uint64_t nat_hs_load_total_ms (nat_hs_load_t *self);

void nat_hs_load_test (bool verbose);
#endif
