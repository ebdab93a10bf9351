/*  bridge_rate: the bridge's limits per client address, as token buckets and
    counts (bridge.connects_per_second, bridge.flows_per_address,
    bridge.address_bytes_per_second), and the token bucket bridge.bytes_per_second
    uses per flow.

    A client address is an IPv4 address, or an IPv6 address's /64 prefix (one
    host, one subscriber, commonly holds a whole /64: keyed by the full
    address, it would have 2^64 limits). An IPv4-mapped IPv6 address
    (::ffff:a.b.c.d, a dual-stack socket's IPv4 client) is its IPv4 address.

    Per address, a fixed table indexed by a keyed hash of the address (no
    port): memory stays bounded whatever a flood of addresses does. An address
    has two candidate slots; one that finds neither its own takes over a
    candidate holding no flow if it can, else the first (so a collision can
    only forget a limit, never refuse an innocent address for another's
    connections). The hash is keyed with a random key so a client cannot aim
    at another's slot.

    A concurrent flow holds a bridge_rate_ref_t: the slot and the slot's
    generation (bumped at each takeover). Releasing it lowers the slot's count
    only while the generation is the same, so a count is exactly the flows
    taken in this generation and still open, through any takeover. */
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

typedef struct {
    uint32_t connects_per_second;   //  connections per address and second (0: no limit)
    uint32_t flows_per_address;     //  flows open at once per address (0: no limit)
    uint32_t bytes_per_second;      //  bytes/s of all an address's flows together (0: no limit)
} bridge_rate_config_t;

//  A flow's hold on its address's slot; { 0 }: none
typedef struct {
    uint32_t slot;
    uint32_t generation;            //  0: holds nothing
} bridge_rate_ref_t;

typedef struct _bridge_rate_t bridge_rate_t;

bridge_rate_t *bridge_rate_new (const bridge_rate_config_t *config);
void bridge_rate_destroy (bridge_rate_t **self_p);
//  One connection from addr: true when within connects_per_second
bool bridge_rate_allow (bridge_rate_t *self, const struct sockaddr_storage *addr, int64_t now_ms);
//  One more flow of addr: true, with ref held, when within flows_per_address
//  (ref must hold nothing)
bool bridge_rate_flow_take (bridge_rate_t *self, const struct sockaddr_storage *addr, bridge_rate_ref_t *ref);
//  The flow ended: its count released (once: ref then holds nothing)
void bridge_rate_flow_release (bridge_rate_t *self, bridge_rate_ref_t *ref);
//  cost bytes from the flow of ref: true when within address_bytes_per_second
//  (always, once the slot was taken over: the limit is forgotten, never shared)
bool bridge_rate_flow_bytes (bridge_rate_t *self, const bridge_rate_ref_t *ref, double cost, int64_t now_ms);
//  The flows counted now for addr (tests)
uint32_t bridge_rate_flows (bridge_rate_t *self, const struct sockaddr_storage *addr);

void bridge_rate_test (bool verbose);
#endif
