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

    Dual stack (issue 17: "falling back to IPv4 when IPv6 fails"): a far end
    is learned per family, and heartbeats go to each family's (or, while it
    has none, to that family's candidates), so both paths are kept open and
    known. The far end in use is the IPv6 one while it is alive (heard within
    timeout_ms); the IPv4 one only when IPv6's is not, and, when there is an
    IPv6 candidate, not before grace_ms after IPv4 first answered (happy
    eyeballs: IPv6 gets a short head start, IPv4 is not kept waiting). When
    IPv6 goes quiet, IPv4 takes over at once; when it comes back, IPv6 again.
    An IPv4-mapped IPv6 source (a dual-stack socket's) counts as IPv4.

    No socket and no clock of its own: the owner sends and passes the time. */
#ifndef BRIDGE_FAR_H_INCLUDED
#define BRIDGE_FAR_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "schemas/bridge.h"

//  Candidates one flow may have (the client's `target` list)
#define BRIDGE_FAR_MAX      BRIDGE_TARGETS_MAX

typedef struct {
    struct sockaddr_storage addr;
    socklen_t len;                      //  0: none
} bridge_addr_t;

typedef struct _bridge_far_t bridge_far_t;

//  count candidates (0..BRIDGE_FAR_MAX; 0: wait to be reached), copied.
//  timeout_ms: a family's far end is alive while heard within it; grace_ms:
//  IPv4's head start for IPv6 (0: none)
bridge_far_t *bridge_far_new (const bridge_addr_t *cand, int count, int timeout_ms, int grace_ms);
void bridge_far_destroy (bridge_far_t **self_p);

//  A datagram from addr was accepted by bridge_flow_open (never call it
//  before). true if its family's far end moved (the first one, or a new
//  address); which one is in use is bridge_far_chosen's to say
bool bridge_far_heard (bridge_far_t *self, const struct sockaddr_storage *addr, socklen_t len, int64_t now_ms);

//  Where heartbeats go now: per family, its far end once learned, else its
//  candidates (IPv6 first).
//  Fills out with at most max pointers (valid until the next call); the count
int bridge_far_heartbeats (bridge_far_t *self, int64_t now_ms, const bridge_addr_t **out, int max);

//  The far end in use: IPv6's while alive, else IPv4's while alive and out of
//  its grace; NULL: none (the flow is not established)
const bridge_addr_t *bridge_far_chosen (bridge_far_t *self, int64_t now_ms);
//  Where data goes: the chosen far end, else the one heard last, else NULL
const bridge_addr_t *bridge_far_best (bridge_far_t *self, int64_t now_ms);
//  Milliseconds until IPv4's grace ends and bridge_far_chosen may change
//  without a datagram; -1: no grace running
int bridge_far_pending_ms (bridge_far_t *self, int64_t now_ms);
//  The address a status names: the best far end, else the first candidate, else NULL
const bridge_addr_t *bridge_far_shown (bridge_far_t *self, int64_t now_ms);
//  addr is the learned far end or a candidate (a refused datagram from it
//  is damage or a replay, from anywhere else a stranger's)
bool bridge_far_known (bridge_far_t *self, const struct sockaddr_storage *addr);
//  Times a family's far end moved after it was first learned
uint64_t bridge_far_changes (bridge_far_t *self);

//  Same family, address and port
bool bridge_addr_same (const struct sockaddr_storage *a, const struct sockaddr_storage *b);
//  "192.0.2.1:4000" or "[2001:db8::1]:4000" (64 bytes hold any)
void bridge_addr_text (const struct sockaddr_storage *addr, char *out, size_t size);

void bridge_far_test (bool verbose);
#endif
