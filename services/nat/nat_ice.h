/*  nat_ice: ICE (libice on libnice) as nat's last way to a registry peer.

    nat's own socket carries the direct paths it punches itself, and the
    Bifrost relay comes second; a peer that is up on neither within
    connection.ice_after gets an ICE session (docs/ice.md, "In nat"): the
    signalling goes as discovery.signal requests through the registry and
    comes back as discovery.signal events (nat_ice_signal.h checks them), and
    the pair libnice selects (direct through the NATs, or TURN) becomes the
    peer's endpoint "ice/<index>" (nat_addr_set_ice), confirmed by crypto like
    any other. Data goes through libnice (ice_agent_send and its recv
    callback) until the peer is up on a direct pair; then nat takes the
    pair's socket from libnice and carries the data on it in batches, as on
    its own socket (nat_ice.c, "The handoff"). The session is closed once the peer has been up
    on a better path for a grace period, and a session on our TURN allocation
    is restarted before its credential expires. */
#ifndef NAT_ICE_H_INCLUDED
#define NAT_ICE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus_schema.h"         //  nat_status_reply_t
#include "nat_addr.h"

struct _nat_service_t;
typedef struct _nat_ice_t nat_ice_t;

//  Subscribes to discovery.ice, discovery.signal and node.address on the
//  service's bus; the ICE agent runs on its loop. NULL when libnice cannot be
//  set up (logged; nat runs without ICE).
nat_ice_t *nat_ice_new (struct _nat_service_t *owner);
void nat_ice_destroy (nat_ice_t **self_p);

//  Every tick: sessions to start, to close (grace), to restart (TURN
//  credential), dials through a selected pair.
void nat_ice_tick (nat_ice_t *self, int64_t now);

//  A tunnel datagram for the peer at index through its session: false when
//  there is no selected pair (counted as a drop). After the handoff (the
//  pair's socket is nat's) it is queued, not sent: data must stay valid until
//  nat_ice_flush, which the data path calls once per crypto batch.
bool nat_ice_send (nat_ice_t *self, uint32_t index, const uint8_t *data, size_t size);
//  Sends what nat_ice_send queued: one sendmmsg (or GSO send) per taken socket.
void nat_ice_flush (nat_ice_t *self);
//  nat's pause is over (crypto takes batches again): the taken sockets, no
//  longer polled while it lasted, are read again.
void nat_ice_resume (nat_ice_t *self);
//  A handshake initiation for a peer that is not up: a copy goes through its
//  selected pair too, if it has one (nothing is counted otherwise).
void nat_ice_copy (nat_ice_t *self, uint32_t index, const uint8_t *data, size_t size);

//  The host's addresses or routes changed (nat_netwatch): sessions started
//  from now on gather on the addresses there are then.
void nat_ice_netchange (nat_ice_t *self);

//  Is the peer's ICE pair direct (no TURN relay in it) and did it carry a
//  datagram from the peer in the last NAT_DIRECT_HOLD_MS? Then the relay does
//  not take the peer off it (direct, then the relay, then TURN).
bool nat_ice_holds (nat_ice_t *self, uint32_t index, int64_t now);

//  The path as bifrostctl shows it: "ice direct (srflx/srflx)", "turn
//  (relay/srflx)" (local/remote candidate types), "ice (no pair)".
void nat_ice_describe (nat_ice_t *self, uint32_t index, char *out, size_t size);

//  STUN/TURN servers given by name are resolved by nat's resolver, with
//  cookies from NAT_ICE_COOKIE up; nat_service hands their results here.
#define NAT_ICE_COOKIE (1ULL << 48)
void nat_ice_resolved (nat_ice_t *self, uint64_t cookie, const nat_addr_t *addrs, size_t count);

//  Fills the ice_* counters of nat.status.reply.
void nat_ice_status (nat_ice_t *self, nat_status_reply_t *reply);

void nat_ice_test (bool verbose);

#endif
