/*  bridge_peers: the peers of the network a client may name with `peer=`
    (issue 17: "a peer of the network by id"), as discovery announces them on
    the bus (schemas/peer.def): peer.up gives a peer's index, its registry id
    (`relay_id`, 16 hex digits) and its candidate endpoints, best first;
    peer.changed new endpoints for an index; peer.down removes it. The
    registry lists the addresses a node registered (behind a NAT, its private
    one); nat's `nat.peer` adds the endpoint it reaches the peer on now, its
    NAT's mapping, which goes first. The bridge
    keeps the table (bridge_service feeds it) and a `peer=` flow takes the
    endpoints as its candidates, as a dual-stack `target` list.

    The endpoints come from the registry, not from the client, but they are
    held to the same rules as a client's target when a flow takes them
    (address literals, no loopback, multicast, ...; bridge_params): what the
    bridge sends to must never depend on whom it trusts. No bus here: the
    self test feeds it directly, bridge_service's with real events. */
#ifndef BRIDGE_PEERS_H_INCLUDED
#define BRIDGE_PEERS_H_INCLUDED

#include "bridge_far.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Endpoints kept per peer and the longest (schemas/peer.def's BUS_STRLIST)
#define BRIDGE_PEERS_ENDPOINTS      8
#define BRIDGE_PEERS_ENDPOINT_MAX   71
//  Peers one bridge keeps at most (a registry network's, with room)
#define BRIDGE_PEERS_MAX            65536

typedef struct _bridge_peers_t bridge_peers_t;

bridge_peers_t *bridge_peers_new (void);
void bridge_peers_destroy (bridge_peers_t **self_p);

//  peer.up: the peer at index is id (16 hex digits, either case; empty: not
//  reachable by id, forgotten) with endpoints, best first (empty strings
//  skipped). 0, or -1 with err (a bad id, the table full)
int bridge_peers_up (bridge_peers_t *self, uint32_t index, const char *id, const char *const *endpoints,
                     size_t count, char *err, size_t errsize);
//  peer.changed: new endpoints for the peer at index; -1 if no such peer
int bridge_peers_changed (bridge_peers_t *self, uint32_t index, const char *const *endpoints, size_t count);
//  nat.peer: the endpoint nat reaches the peer at index on now (its public
//  mapping, once a probe or the relay found it; "relay/..." or "" when none):
//  a flow's first candidate. Kept for an index peer.up has not named yet
//  (nat and discovery publish in no order). -1 when the table is full
int bridge_peers_current (bridge_peers_t *self, uint32_t index, const char *endpoint);
//  peer.down: the peer at index is gone (no-op when unknown)
void bridge_peers_down (bridge_peers_t *self, uint32_t index);

//  The candidates of id for a flow: at most max of its endpoints (best first)
//  that are address literals a target may be, none twice. Their count (0: the
//  peer has none the bridge may use), or -1: no peer has that id
int bridge_peers_find (bridge_peers_t *self, const char *id, bool allow_loopback, bridge_addr_t *out, int max);
size_t bridge_peers_count (bridge_peers_t *self);

void bridge_peers_test (bool verbose);
#endif
