/*  bridge_far: where a flow's far end is, shared by both ends of a flow (the
    bridge's bridge_link and the peer's bridge_peer), so the rule is written
    once. It roams as WireGuard does: the far end is the source of the last
    datagram the owner's bridge_flow_open accepted (authenticated with the
    flow key, not replayed). The owner calls bridge_far_heard only after that,
    so a stranger who can send to the port can neither redirect the flow nor
    make it answer: the source of a refused datagram is never looked at.

    Before anything valid came, heartbeats go to the candidates given in
    advance (the client's target; the peer's --target); once something did,
    to the learned far end only, and data goes there too. A peer behind a NAT
    that maps each destination to a new port (symmetric, CGNAT) is reached so:
    its own heartbeats toward the bridge open its NAT, the bridge learns the
    mapping from the first one, and answers there.

    No socket and no clock of its own: the owner sends and passes the time. */
#ifndef BRIDGE_FAR_H_INCLUDED
#define BRIDGE_FAR_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

//  Candidates one flow may have (the client's `target` list)
#define BRIDGE_FAR_MAX      4

typedef struct {
    struct sockaddr_storage addr;
    socklen_t len;                      //  0: none
} bridge_addr_t;

typedef struct _bridge_far_t bridge_far_t;

//  count candidates (0..BRIDGE_FAR_MAX; 0: wait to be reached), copied
bridge_far_t *bridge_far_new (const bridge_addr_t *cand, int count);
void bridge_far_destroy (bridge_far_t **self_p);

//  A datagram from addr was accepted by bridge_flow_open (never call it
//  before). true if the far end moved (the first one, or a new address)
bool bridge_far_heard (bridge_far_t *self, const struct sockaddr_storage *addr, socklen_t len, int64_t now_ms);

//  Where heartbeats go now: the learned far end, else every candidate.
//  Fills out with at most max pointers (valid until the next call); the count
int bridge_far_heartbeats (bridge_far_t *self, int64_t now_ms, const bridge_addr_t **out, int max);

//  Where data goes: the learned far end, else NULL
const bridge_addr_t *bridge_far_chosen (bridge_far_t *self, int64_t now_ms);
//  The address a status names: the far end, else the first candidate, else NULL
const bridge_addr_t *bridge_far_shown (bridge_far_t *self, int64_t now_ms);
//  addr is the learned far end or a candidate (a refused datagram from it
//  is damage or a replay, from anywhere else a stranger's)
bool bridge_far_known (bridge_far_t *self, const struct sockaddr_storage *addr);
//  Times the far end moved after it was first learned
uint64_t bridge_far_changes (bridge_far_t *self);

//  Same family, address and port
bool bridge_addr_same (const struct sockaddr_storage *a, const struct sockaddr_storage *b);
//  "192.0.2.1:4000" or "[2001:db8::1]:4000" (64 bytes hold any)
void bridge_addr_text (const struct sockaddr_storage *addr, char *out, size_t size);

void bridge_far_test (bool verbose);
#endif
