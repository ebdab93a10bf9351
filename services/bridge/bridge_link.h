/*  bridge_link: the UDP side of one bridge flow (issue 17, docs/bridge.md):
    a socket per family of its targets, a bridge_flow in the client role, and the
    heartbeats that punch the hole and say whether the far end is there.

    Every heartbeat_interval it sends a HEARTBEAT to the far end (the far end
    does the same toward the bridge: the first datagrams of both open the NATs
    between them; to every target, IPv6 and IPv4, until each family answers). The far end roams as WireGuard's does (bridge_far): the
    target until something valid came, then the source of the last datagram
    bridge_flow_open accepted, so a peer behind a NAT that maps it to another
    port than the client guessed is reached at its real mapping. The first
    valid datagram makes the link UDP_ESTABLISHED; nothing valid for
    heartbeat_timeout makes it UDP_WAITING again. HEARTBEATs are answered with
    HEARTBEAT_REPLY. A datagram bridge_flow_open refuses (garbage, another
    key, replayed, tampered) is dropped and counted, from wherever it came,
    and moves nothing: its source is not even looked at but for the count.

    It knows no WebSocket: the server gives it the client's messages
    (bridge_link_send) and takes the target's (the deliver callback), so the
    state machine can be read and tested on its own. */
#ifndef BRIDGE_LINK_H_INCLUDED
#define BRIDGE_LINK_H_INCLUDED

#include "schemas/bridge.h"
#include "bridge_far.h"
#include "bus_loop.h"
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct _bridge_link_t bridge_link_t;

//  Counters every link of a server adds to (one struct per server)
typedef struct {
    uint64_t datagrams_in;          //  valid datagrams from far ends
    uint64_t datagrams_out;         //  datagrams sent to far ends
    uint64_t dropped_source;        //  refused by bridge_flow_open, from a stranger (not the far end nor a target)
    uint64_t dropped_invalid;       //  refused by bridge_flow_open, from the far end or a target
    uint64_t dropped_slow;          //  deliver refused: the client does not read
    uint64_t dropped_send;          //  the kernel would not send (or sealing failed)
} bridge_link_stats_t;

typedef struct {
    //  The link went UDP_WAITING or UDP_ESTABLISHED, or its far end moved
    //  (UDP_ESTABLISHED again; bridge_link_far_text names it) (rtt_ms: the
    //  last heartbeat's round trip, -1 when none was measured yet)
    void (*state) (void *arg, bridge_state_t state, int rtt_ms);
    //  A DATA message of the target for the client; non-zero: dropped (counted)
    int (*deliver) (void *arg, const uint8_t *msg, size_t size);
    void *arg;
} bridge_link_fns_t;

typedef struct {
    const bridge_addr_t *targets;   //  the candidates, 1..BRIDGE_TARGETS_MAX (copied)
    int target_count;
    const uint8_t *key;             //  BRIDGE_KEY_SIZE bytes, copied into the flow
    bridge_cipher_t cipher;
    int heartbeat_ms, timeout_ms;
    size_t max_message;             //  the largest DATA plaintext either way
    //  bridge.public_address (its port ignored) or NULL: what bridge_link_udp_text names
    const struct sockaddr_storage *public_addr;
} bridge_link_config_t;

//  Opens a socket per family of the targets, sends the first heartbeats,
//  starts in UDP_WAITING (the state callback is not called for it). NULL with errno (EINVAL: the cipher
//  cannot be used here).
bridge_link_t *bridge_link_new (bus_loop_t *loop, const bridge_link_config_t *config,
                                const bridge_link_fns_t *fns, bridge_link_stats_t *stats);
//  Closes the sockets; the flow's keys are wiped
void bridge_link_destroy (bridge_link_t **self_p);

//  One client message as one DATA datagram: 0, or -1 (counted in dropped_send)
int bridge_link_send (bridge_link_t *self, const uint8_t *msg, size_t size);

//  New candidates (a `peer=` flow's, when nat learnt the peer's mapping after
//  the flow opened): taken, with heartbeats at once, only while nothing valid
//  has come (afterwards the far end roams). 1: taken, 0: nothing to do (heard,
//  or the same), -1: a socket for a new family could not be opened
int bridge_link_retarget (bridge_link_t *self, const bridge_addr_t *targets, int count);
bridge_state_t bridge_link_state (const bridge_link_t *self);
bridge_cipher_t bridge_link_cipher (const bridge_link_t *self);
//  The far end for a status: the one in use (bridge_far_best), else the first
//  target ("192.0.2.1:4000", "[2001:db8::1]:4000"; 64 bytes hold it)
void bridge_link_far_text (bridge_link_t *self, char *out, size_t size);
//  The bridge's own end of the flow, for the client to hand to its peer, of
//  the family in use (the far end's, else the first target's):
//  public_addr when it is of that family, else the address the kernel picks
//  to send toward the family's first target (asked with a connect()ed probe
//  socket: nothing is sent); with the socket's port. "" when none is known
const char *bridge_link_udp_text (const bridge_link_t *self);
//  The local UDP port of the family in use (the address the far end punches toward)
uint16_t bridge_link_port (const bridge_link_t *self);

void bridge_link_test (bool verbose);
#endif
