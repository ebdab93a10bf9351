/*  nat_resolver: turns peer host names into addresses without blocking the event
    loop. Each lookup runs getaddrinfo on a short-lived thread of its own and
    delivers its result as one datagram on a socketpair, so the loop watches one
    plain fd (zloop or GLib can poll it) and reads results when they come.

    Why not getaddrinfo_a: with SIGEV_THREAD its completion callback also runs on a
    helper thread (so we would need the same pipe anyway), gai_cancel cannot stop a
    lookup that already started (so teardown has the same problem), and musl has no
    getaddrinfo_a. A thread per lookup owns a copy of its inputs and a dup of the
    write end, so destroying the resolver with lookups in flight is safe: they finish,
    their result is refused by the closed socket, and they exit. Lookups in flight are
    capped (NAT_RESOLVER_MAX_INFLIGHT) so a config with many peers cannot spawn an
    unbounded number of threads.

    Names under .invalid (RFC 6761) fail at once without asking anybody. */
#ifndef NAT_RESOLVER_H_INCLUDED
#define NAT_RESOLVER_H_INCLUDED

#include "nat_addr.h"

#define NAT_RESOLVE_MAX_ADDRS 8
#define NAT_RESOLVER_MAX_INFLIGHT 16

typedef struct {
    uint64_t cookie;            //  the caller's tag from nat_resolver_request
    int error;                  //  0, or a getaddrinfo EAI_* code
    char message [160];         //  "cannot resolve x.invalid: Name or service not known"
    size_t count;               //  addresses found (IPv4 and IPv6, resolver's order)
    nat_addr_t addrs [NAT_RESOLVE_MAX_ADDRS];
} nat_resolver_result_t;

typedef struct _nat_resolver_t nat_resolver_t;

nat_resolver_t *nat_resolver_new (void);
void nat_resolver_destroy (nat_resolver_t **self_p);

//  Readable when a result is waiting.
int nat_resolver_fd (nat_resolver_t *self);

//  Starts resolving host (for UDP on port). 0, or -1 with errno (EAGAIN: too many
//  lookups in flight, try later; ENAMETOOLONG).
int nat_resolver_request (nat_resolver_t *self, const char *host, uint16_t port, uint64_t cookie);

//  Reads one finished lookup without blocking. true when *result was filled.
bool nat_resolver_next (nat_resolver_t *self, nat_resolver_result_t *result);

//  Lookups started and not yet read.
size_t nat_resolver_pending (nat_resolver_t *self);

void nat_resolver_test (bool verbose);
#endif
