/*  reg_ratelimit: a token bucket per client address, so one client cannot
    monopolise the registry (each request costs a SQLite transaction). Buckets
    of idle clients are forgotten once they are full again, and the table is
    bounded: past max_clients, new clients share one overflow bucket, so memory
    never grows with the number of addresses an attacker can spoof. A client
    is an IPv4 address or an IPv6 /64 (issue 16, finding 5): one host is
    routinely given a whole /64, so counting its addresses would give it 2^64
    buckets. */
#ifndef REG_RATELIMIT_H_INCLUDED
#define REG_RATELIMIT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _reg_ratelimit_t reg_ratelimit_t;

//  rate: requests per second refilled; burst: bucket size. rate 0 = unlimited.
reg_ratelimit_t *reg_ratelimit_new (double rate, double burst, size_t max_clients);
void reg_ratelimit_destroy (reg_ratelimit_t **self_p);
//  True when the client of this address (reg_ratelimit_key) may make a
//  request now (and takes a token).
bool reg_ratelimit_allow (reg_ratelimit_t *self, const char *address, int64_t now_ms);
size_t reg_ratelimit_clients (reg_ratelimit_t *self);

#define REG_RATELIMIT_KEY 64
//  The client an address belongs to: an IPv4 address as it is ("::ffff:"
//  mapped ones too), an IPv6 one as its /64 ("2001:db8:1:2::/64"); text that
//  is neither, as it is (cut to size).
void reg_ratelimit_key (const char *address, char *key, size_t size);

void reg_ratelimit_test (bool verbose);
#endif
