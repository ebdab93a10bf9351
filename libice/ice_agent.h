/*  ice_agent: ICE (RFC 8445, full, trickle) for one node and all its peers, with
    libnice doing the gathering and the connectivity checks, on the caller's loop.

    - One ice_agent per node; one ICE session per peer (one stream, one UDP
      component). Inside, each peer has a NiceAgent of its own on the one
      GMainContext: libnice's role (controlling-mode) is a property of the whole
      NiceAgent, and the role here is per peer.
    - Role: the side with the lower peer id is controlling, the other controlled
      (both sides compute the same answer from the two ids; equal ids are refused).
    - No thread: the caller polls the context's descriptors. With a bus_loop call
      ice_agent_attach once; with any other loop, before each wait call
      ice_agent_pollfds and after it ice_agent_dispatch.
    - Events (candidates to send, gathering done, state, selected pair, failure)
      are queued and handed to the callback only from dispatch (or the attached
      loop), never from inside another call of this class, so the callback may
      call anything here, including for another ice_agent.
    - Signalling: the local ufrag/pwd (ice_agent_local_credentials) and each local
      candidate (ICE_EVENT_CANDIDATE, text of ice_cand.h) go to the peer; what the
      peer sends comes back through ice_agent_set_remote_credentials,
      ice_agent_add_remote_candidate and ice_agent_end_of_candidates. All of it
      is validated (ice_cand) with a message in err; nothing from the network
      reaches libnice unchecked. Candidates that arrive before the credentials
      are kept (up to ICE_AGENT_PENDING_MAX) and added when they come.
    - Data path handoff (docs/ice.md): once both sides have their selected pair
      (regular nomination: the first is final; READY comes about 2 s later),
      ice_agent_take_socket hands out a dup of the selected local socket and the
      remote address; ice_agent_remove_peer then makes libnice close its own
      descriptor, so only the caller reads the socket, on the same 5-tuple, NAT
      mapping included. A pair whose local end is a TURN relay cannot be handed
      out (the data is wrapped in TURN): the caller then keeps the peer and moves
      data with ice_agent_send and the recv callback. */
#ifndef ICE_AGENT_H_INCLUDED
#define ICE_AGENT_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ice_cand.h"
#include "bus_loop.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ICE_AGENT_MAX_PEERS     1024
#define ICE_AGENT_PENDING_MAX   32      //  remote candidates kept until the credentials come
#define ICE_AGENT_MAX_TURN      4       //  TURN servers
#define ICE_AGENT_MAX_LOCAL     8       //  local addresses to gather on
#define ICE_AGENT_CLOSE_MS      500     //  destroy waits this long at most for TURN releases

typedef enum {
    ICE_STATE_NEW = 0,          //  before gathering
    ICE_STATE_GATHERING,
    ICE_STATE_CONNECTING,       //  checks running
    ICE_STATE_CONNECTED,        //  a pair works (maybe not the final one)
    ICE_STATE_READY,            //  checks done, pair selected: take the socket now
    ICE_STATE_FAILED,
    ICE_STATE_DISCONNECTED
} ice_state_t;

typedef enum {
    ICE_EVENT_CANDIDATE = 1,    //  text: a local candidate to send to the peer
    ICE_EVENT_GATHERING_DONE,   //  send end-of-candidates to the peer
    ICE_EVENT_STATE,            //  state changed
    ICE_EVENT_SELECTED,         //  a pair was selected (again after an update)
    ICE_EVENT_FAILED            //  every pair failed (also an ICE_EVENT_STATE)
} ice_event_type_t;

typedef struct {
    ice_event_type_t type;
    uint64_t peer;
    const char *text;                   //  CANDIDATE: the candidate line
    ice_state_t state;                  //  STATE, FAILED
    ice_cand_type_t local_type;         //  SELECTED
    ice_cand_type_t remote_type;        //  SELECTED
    const char *local;                  //  SELECTED: "ip:port" / "[ip6]:port"
    const char *remote;                 //  SELECTED: the remote end as seen by us
} ice_event_t;

typedef struct _ice_agent_t ice_agent_t;

//  An event; valid during the call only.
typedef void (ice_agent_event_fn) (ice_agent_t *self, const ice_event_t *event, void *arg);
//  A datagram that libnice received for a peer (pairs kept inside libnice: TURN).
typedef void (ice_agent_recv_fn) (ice_agent_t *self, uint64_t peer, const uint8_t *data, size_t size, void *arg);

//  own_id: this node's peer id (for the role rule).
ice_agent_t *ice_agent_new (uint64_t own_id, ice_agent_event_fn *fn, void *arg);
void ice_agent_destroy (ice_agent_t **self_p);

void ice_agent_set_recv (ice_agent_t *self, ice_agent_recv_fn *fn, void *arg);
void ice_agent_set_verbose (ice_agent_t *self, bool verbose);

//  The STUN server ("ip:port", an IP literal; NULL: none). libnice asks one STUN
//  server per session; TURN servers give a server-reflexive candidate too.
//  Applies to peers added or restarted afterwards. 0, or -1 with err.
int ice_agent_set_stun (ice_agent_t *self, const char *server, char *err, size_t errsize);
//  Adds a TURN server (UDP) with its credentials (the REST pair from
//  /client/meta: username "expiry:id", password base64 HMAC). 0 or -1 with err.
int ice_agent_add_turn (ice_agent_t *self, const char *server, const char *username,
                        const char *password, char *err, size_t errsize);
//  Forgets every TURN server: call it, then ice_agent_add_turn, to refresh the
//  credentials before they expire. Peers added or restarted afterwards use the
//  new ones; running peers keep the allocation they made (see docs/ice.md).
void ice_agent_clear_turn (ice_agent_t *self);
//  Gathers only on these local addresses (IP literals, IPv4 or IPv6); without
//  any, libnice takes every non-loopback address of the host. 0 or -1 with err.
int ice_agent_add_local_address (ice_agent_t *self, const char *ip, char *err, size_t errsize);
//  Forgets the local addresses (the host's changed: add the new ones). Peers
//  added or restarted afterwards gather on the new list.
void ice_agent_clear_local_addresses (ice_agent_t *self);

//  Starts ICE with a peer: creates its session and starts gathering. 0, or -1
//  with err (equal id, already there, too many peers, libnice refused).
int ice_agent_add_peer (ice_agent_t *self, uint64_t peer, char *err, size_t errsize);
//  Ends the session with a peer (libnice closes its sockets; a socket already
//  taken stays open in the caller's hands; TURN allocations of a session whose
//  socket was not taken are released first, in the background). No-op for an
//  unknown peer. Not from inside the recv callback.
void ice_agent_remove_peer (ice_agent_t *self, uint64_t peer);
//  ICE restart: a new session (new ufrag/pwd, gathering again, new sockets), for
//  a path that died or a local address that changed. Send the new credentials and
//  candidates again; the peer's set_remote_credentials sees them change and
//  restarts too. 0 or -1 with err.
int ice_agent_restart (ice_agent_t *self, uint64_t peer, char *err, size_t errsize);

bool ice_agent_has_peer (ice_agent_t *self, uint64_t peer);
bool ice_agent_controlling (ice_agent_t *self, uint64_t peer);
ice_state_t ice_agent_state (ice_agent_t *self, uint64_t peer);
const char *ice_state_name (ice_state_t state);

//  The local credentials to send to the peer (ufrag and pwd must hold
//  ICE_CRED_MAX + 1 bytes). 0 or -1 (unknown peer).
int ice_agent_local_credentials (ice_agent_t *self, uint64_t peer, char *ufrag, char *pwd);
//  The peer's credentials. 0 when set, 1 when they replaced different ones (the
//  peer restarted: so did we, send our new credentials and candidates), -1 with err.
int ice_agent_set_remote_credentials (ice_agent_t *self, uint64_t peer, const char *ufrag,
                                      const char *pwd, char *err, size_t errsize);
//  One remote candidate line (ice_cand.h). 0 or -1 with err (malformed, not
//  component 1, unknown peer, too many pending, refused by libnice).
int ice_agent_add_remote_candidate (ice_agent_t *self, uint64_t peer, const char *text,
                                    char *err, size_t errsize);
//  The peer's end-of-candidates. 0 or -1 (unknown peer).
int ice_agent_end_of_candidates (ice_agent_t *self, uint64_t peer);
//  The peer's public address as the relay observed it ("ip:port"), added as a
//  remote server-reflexive candidate. 0 or -1 with err.
int ice_agent_add_remote_observed (ice_agent_t *self, uint64_t peer, const char *addr,
                                   char *err, size_t errsize);
//  A port mapping made for this peer's session (UPnP-IGD, NAT-PMP, PCP): the
//  gateway forwards external ("ip:port") to our host candidate's port
//  (ice_agent_host_port). It goes out as a local server-reflexive candidate
//  (ICE_EVENT_CANDIDATE): libnice cannot add local candidates, but it answers
//  the checks the peer sends to the mapping on the host socket behind it.
int ice_agent_add_local_mapped (ice_agent_t *self, uint64_t peer, const char *external,
                                char *err, size_t errsize);
//  The port of the peer session's first host candidate of family (AF_INET or
//  AF_INET6), what a port mapping must point at. 0 when none yet.
uint16_t ice_agent_host_port (ice_agent_t *self, uint64_t peer, int family);

//  The selected pair. 0 and the types and remote address, or -1 (none yet).
int ice_agent_selected (ice_agent_t *self, uint64_t peer, ice_cand_type_t *local_type,
                        ice_cand_type_t *remote_type, struct sockaddr_storage *remote, socklen_t *remote_len);

//  Data path handoff: a dup of the selected pair's local socket (non-blocking,
//  close-on-exec, the caller owns it) in *fd and the remote address. Returns 0;
//  ICE_AGENT_RELAYED when the local end is a TURN relay (no socket to hand out:
//  keep data in libnice with ice_agent_send); -1 with err (no pair selected, not
//  READY or CONNECTED, unknown peer, dup failed). Call ice_agent_remove_peer once
//  the peer has taken its socket too: until then libnice still reads the socket
//  and hands the peer's datagrams to the recv callback. After it, libnice holds
//  no descriptor of the socket and sends nothing (keepalives are the caller's).
#define ICE_AGENT_RELAYED 1
int ice_agent_take_socket (ice_agent_t *self, uint64_t peer, int *fd,
                           struct sockaddr_storage *remote, socklen_t *remote_len, char *err, size_t errsize);

//  Sends one datagram through libnice on the selected pair. size, or -1.
int ice_agent_send (ice_agent_t *self, uint64_t peer, const void *data, size_t size);

//  Loop integration without bus_loop. ice_agent_pollfds fills up to max items
//  (fd, events) and the timeout in ms (-1: none; 0: events are waiting) and
//  returns how many items there are (when more than max, call again with more
//  room). After the wait, ice_agent_dispatch with the same items and their
//  revents runs whatever is due and delivers the events.
int ice_agent_pollfds (ice_agent_t *self, zmq_pollitem_t *items, size_t max, int *timeout_ms);
void ice_agent_dispatch (ice_agent_t *self, zmq_pollitem_t *items, size_t count);

//  Runs on loop from now on: the descriptors become pollers, the timeout a timer,
//  kept in step after every dispatch and every call. Once; 0 or -1.
int ice_agent_attach (ice_agent_t *self, bus_loop_t *loop);

void ice_agent_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
