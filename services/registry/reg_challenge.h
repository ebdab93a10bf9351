/*  reg_challenge: the nonces a node signs with its key to register (the key
    proof), without a table of outstanding ones (issue 16, finding 5: a global
    table of 100,000 was filled by 84 client addresses, and every request then
    walked it). A nonce is its own record: the time it was issued, 8 random
    bytes and a MAC over both and the network id, keyed with a secret drawn at
    start; checking one is recomputing the MAC and reading the clock, so asking
    for challenges costs the registry nothing it keeps. A restart forgets the
    secret; clients simply ask again.

    What remains is the single use: a nonce whose key proof verified is spent,
    remembered until it would have expired anyway. Spent nonces live in two
    generations of one lifetime each: the older is dropped whole when a third
    begins, so nothing is ever walked. Only a verified proof spends (a new key
    needs a valid join token first, a known key its secret), each client (an
    IPv4 address, an IPv6 /64: reg_ratelimit_key) spends at most client_max
    per lifetime (registry.registrations_per_client), and all at most
    REG_CHALLENGE_SPENT_MAX. */
#ifndef REG_CHALLENGE_H_INCLUDED
#define REG_CHALLENGE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REG_CHALLENGE_TTL_MS 60000
#define REG_CHALLENGE_SIZE 32           //  the nonce, bytes
#define REG_CHALLENGE_TEXT 48           //  the nonce in base64, with its NUL
#define REG_CHALLENGE_SPENT_MAX 100000

enum {
    REG_CHALLENGE_OK = 0,
    REG_CHALLENGE_INVALID = -1,         //  not ours, another network's, or expired
    REG_CHALLENGE_SPENT = -2,           //  used already
    REG_CHALLENGE_FULL = -3,            //  this client (or everyone) spent too many: retry later
};

typedef struct _reg_challenge_t reg_challenge_t;

//  client_max: nonces a client may spend per lifetime (0: 256).
reg_challenge_t *reg_challenge_new (size_t client_max);
void reg_challenge_destroy (reg_challenge_t **self_p);

//  A fresh nonce for a network, in base64.
void reg_challenge_issue (reg_challenge_t *self, const char *network_id, int64_t now_ms,
                          char nonce_b64 [REG_CHALLENGE_TEXT]);
//  REG_CHALLENGE_OK when this process issued nonce for network_id less than
//  REG_CHALLENGE_TTL_MS ago, else REG_CHALLENGE_INVALID. Keeps nothing.
int reg_challenge_check (reg_challenge_t *self, const char *network_id,
                         const uint8_t nonce [REG_CHALLENGE_SIZE], int64_t now_ms);
//  Spends a checked nonce for the client at address client (NULL: unknown,
//  counted as one client):
//  REG_CHALLENGE_OK, REG_CHALLENGE_SPENT or REG_CHALLENGE_FULL.
int reg_challenge_spend (reg_challenge_t *self, const uint8_t nonce [REG_CHALLENGE_SIZE],
                         const char *client, int64_t now_ms);
//  Spent nonces remembered now.
size_t reg_challenge_spent (reg_challenge_t *self);

void reg_challenge_test (bool verbose);
#endif
