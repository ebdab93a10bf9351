/*  nat_hs_budget: how many handshake initiations nat passes to crypto.

    An initiation is the one message that makes crypto do Diffie-Hellman work
    before it knows who sent it: anyone who knows a node's public key can compute
    a valid mac1 and send initiations as fast as the link allows. nat, which
    reads the internet, spends crypto's CPU for it, so it rations them with two
    token buckets: one per source (a nat handle: an address, or a relayed or ICE
    peer's pseudo-address), so one sender cannot take the whole budget, and one
    for all sources, so many senders together cannot either. A peer's crypto
    retries after 1 s, doubling, and hole punching sends a handful per round, so
    legitimate senders stay far below either limit. What is refused is counted.
    Pure: the clock is an argument. */
#ifndef NAT_HS_BUDGET_H_INCLUDED
#define NAT_HS_BUDGET_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Per source: a burst of 10, then 5 a second. All sources: a burst of 500
//  (every peer of a large network handshaking after a restart), then 250 a
//  second (about 4 % of a core in DH work on the 2-core test machine)
#define NAT_HS_SOURCE_BURST     10
#define NAT_HS_SOURCE_RATE      5
#define NAT_HS_GLOBAL_BURST     500
#define NAT_HS_GLOBAL_RATE      250

typedef struct {
    uint64_t allowed;
    uint64_t limited_source;        //  over its source's budget
    uint64_t limited_global;        //  over the budget of all sources
} nat_hs_budget_stats_t;

typedef struct _nat_hs_budget_t nat_hs_budget_t;

//  capacity: sources remembered, a power of two (nat_handles' capacity: a
//  handle's low bits are its slot, so sources never share one)
nat_hs_budget_t *nat_hs_budget_new (size_t capacity, uint32_t source_burst, uint32_t source_rate,
                                    uint32_t global_burst, uint32_t global_rate);
void nat_hs_budget_destroy (nat_hs_budget_t **self_p);

//  May an initiation from handle pass at now_ms? Takes a token of both buckets
//  when it may; counts a refusal when not.
bool nat_hs_budget_allow (nat_hs_budget_t *self, uint32_t handle, int64_t now_ms);

const nat_hs_budget_stats_t *nat_hs_budget_stats (const nat_hs_budget_t *self);

void nat_hs_budget_test (bool verbose);
#endif
