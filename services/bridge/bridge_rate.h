/*  bridge_rate: the bridge's rate limits (bridge.connects_per_second per
    client address, bridge.bytes_per_second per flow), as token buckets.

    Per address, a fixed table indexed by a keyed hash of the address (no
    port): memory stays bounded whatever a flood of addresses does, and an
    address that lands on a slot another one used takes it over (so a
    collision can only forget a limit, never refuse an innocent address for
    another's connections). The hash is keyed with a random key so a client
    cannot aim at another's slot. */
#ifndef BRIDGE_RATE_H_INCLUDED
#define BRIDGE_RATE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

//  A bucket of rate tokens per second, holding at most a second's worth
typedef struct {
    double tokens;
    int64_t last_ms;                //  0: new (full)
} bridge_bucket_t;

//  True, and cost taken, when the bucket holds cost; rate 0: no limit
bool bridge_bucket_take (bridge_bucket_t *bucket, uint32_t rate, double cost, int64_t now_ms);

typedef struct _bridge_rate_t bridge_rate_t;

//  per_second connections per address (0: no limit)
bridge_rate_t *bridge_rate_new (uint32_t per_second);
void bridge_rate_destroy (bridge_rate_t **self_p);
//  One connection from addr: true when within the limit
bool bridge_rate_allow (bridge_rate_t *self, const struct sockaddr_storage *addr, int64_t now_ms);

void bridge_rate_test (bool verbose);
#endif
