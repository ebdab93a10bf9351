/*  crypto_node: everything the crypto service does with packets, minus the bus.

    Holds this node's identity, the network PSK and the configured peers (public
    key, allowed inner source prefixes, session, handshake in flight), finds a
    peer by public key or by session index, and turns wire bytes into decisions:
    a reply to send, plaintext to deliver, or a drop counted by reason. The
    service wraps it with its bus handlers and data pipes; tests drive two nodes
    back to back in memory. Keys never leave it, it opens no socket, and time is
    a parameter (monotonic `now`, and `wall_ns` for handshake timestamps). */
#ifndef CRYPTO_NODE_H_INCLUDED
#define CRYPTO_NODE_H_INCLUDED

#include "crypto_session.h"

typedef enum {
    CRYPTO_DROP_MALFORMED = 0,          //  not a valid message
    CRYPTO_DROP_UNKNOWN_INDEX,          //  data for no session of ours
    CRYPTO_DROP_TAMPERED,               //  tag did not verify
    CRYPTO_DROP_REPLAY,                 //  counter already seen or too old
    CRYPTO_DROP_EXPIRED,                //  keys past their reject age/count
    CRYPTO_DROP_SPOOFED,                //  inner source not the peer's
    CRYPTO_DROP_HS_UNKNOWN_KEY,         //  handshake from a key not configured
    CRYPTO_DROP_HS_INVALID,             //  handshake failed mac1/AEAD/DH (tampered, wrong PSK)
    CRYPTO_DROP_HS_REPLAY,              //  handshake timestamp not newer
    CRYPTO_DROP_HS_UNEXPECTED,          //  response with no initiation outstanding
    CRYPTO_DROP_NO_KEY,                 //  outbound: no session key yet
    CRYPTO_DROP_ROUTED_SOURCE,          //  came through other peers as another peer's (routing header's source)
    CRYPTO_DROP_COUNT
} crypto_drop_t;

typedef struct {
    uint64_t rx_packets, rx_bytes;      //  delivered plaintext
    uint64_t tx_packets, tx_bytes;      //  encrypted plaintext
    uint64_t keepalives_rx;
    uint64_t handshakes_initiated, handshakes_responded, handshakes_completed;
    uint64_t handshakes_crossed;        //  ours completed while the peer's was pending
    uint64_t drops [CRYPTO_DROP_COUNT];
} crypto_node_stats_t;

//  What crypto_node_receive decided
#define CRYPTO_NODE_DROP        -1      //  rx->drop says why (counted)
#define CRYPTO_NODE_DATA         1      //  deliver rx->plain_len bytes at buf + 16
#define CRYPTO_NODE_KEEPALIVE    2      //  nothing to deliver
#define CRYPTO_NODE_REPLY        3      //  send rx->reply_len bytes of reply to the sender
#define CRYPTO_NODE_ESTABLISHED  4      //  our handshake completed: flush queued packets
                                        //  (or send a keepalive: crypto_node_keepalive_due)
#define CRYPTO_NODE_NOT_DATA     5      //  batch decrypt only: a handshake, use receive
#define CRYPTO_NODE_ANNOUNCE     6      //  a route announcement of rx->plain_len bytes at buf + 16
#define CRYPTO_NODE_FLOOD        7      //  a flood frame of rx->plain_len bytes at buf + 16 (flood header
                                        //  and packet): the packet is not checked against the sender's
                                        //  allowed addresses (it is the origin's: crypto_node_peer_allows)

typedef struct {
    int peer;                           //  peer id, -1 if unknown
    size_t plain_len;
    size_t reply_len;
    crypto_drop_t drop;
} crypto_rx_t;

//  One packet of a batch: buf has 16 bytes of headroom before the plaintext and
//  16 of tailroom after it (cap = whole buffer). Encrypt: in len = plaintext
//  length, out len = wire length; decrypt: in len = wire length, out len =
//  plaintext length at buf + 16. result = CRYPTO_SESSION_* / CRYPTO_NODE_*.
typedef struct {
    uint8_t *buf;
    size_t len;
    size_t cap;
    int peer;
    int result;
} crypto_packet_t;

typedef struct _crypto_node_t crypto_node_t;

//  identity is borrowed; psk NULL = none (32 zero bytes); config NULL = defaults
crypto_node_t *crypto_node_new (const crypto_identity_t *identity, const uint8_t *psk,
                                const crypto_session_config_t *config);
void crypto_node_destroy (crypto_node_t **self_p);
//  The plaintext is Ethernet frames (device type "tap"), not IP packets: the
//  anti-spoofing check looks inside the frame (crypto_allowed_frame)
void crypto_node_set_layer2 (crypto_node_t *self, bool layer2);

//  Adds a peer by public key; returns its id (>= 0) or -1 (duplicate, own key)
int crypto_node_peer_add (crypto_node_t *self, const uint8_t key [32], char *err, size_t errsize);
int crypto_node_peer_allow (crypto_node_t *self, int peer, const char *cidr, char *err, size_t errsize);
//  Forgets every address a peer was allowed (before a new set from discovery:
//  a key that comes back with another virtual IP must not keep its old one)
void crypto_node_peer_allow_clear (crypto_node_t *self, int peer);
//  The anycast addresses a peer may send from besides its own prefixes, while
//  the router says it is a member (crypto_anycast writes them; docs/groups.md)
void crypto_node_peer_anycast_clear (crypto_node_t *self, int peer);
int crypto_node_peer_anycast_add (crypto_node_t *self, int peer, const char *address, char *err, size_t errsize);
bool crypto_node_peer_anycast_has (const crypto_node_t *self, int peer, const uint8_t *address, int family_bytes);
int crypto_node_peer_find (const crypto_node_t *self, const uint8_t key [32]);
//  True if the packet (or Ethernet frame on TAP) of len bytes may come from
//  peer: its inner source is one of the peer's allowed addresses (a flood
//  frame's packet is checked against its origin's, not the neighbour's)
bool crypto_node_peer_allows (const crypto_node_t *self, int peer, const uint8_t *packet, size_t len);
size_t crypto_node_peer_count (const crypto_node_t *self);

//  Handshake timer of one peer, and the initiation to send when it is due
bool crypto_node_handshake_due (crypto_node_t *self, int peer, uint64_t now);
int crypto_node_initiation (crypto_node_t *self, int peer, uint64_t now, uint64_t wall_ns,
                            uint8_t out [WIRE_INITIATION_SIZE]);
bool crypto_node_keepalive_due (crypto_node_t *self, int peer);
//  True if the peer has a current keypair that can send now (the service's
//  "session up"); a responder's keys count only once the initiator used them
bool crypto_node_can_send (const crypto_node_t *self, int peer, uint64_t now);
//  Traffic waits for a session: start the handshake retry cycle if idle (the
//  service queues the packet instead of calling encrypt and counting no_key)
void crypto_node_want_handshake (crypto_node_t *self, int peer, uint64_t now);
//  True while a handshake is being retried (false once it gave up)
bool crypto_node_handshake_wanted (const crypto_node_t *self, int peer);
//  Wipes the peer's keypairs past reject_after_time and forgets their indices;
//  true if any was dropped
bool crypto_node_expire (crypto_node_t *self, int peer, uint64_t now);

//  Encrypt one packet for a peer (see crypto_session_encrypt); counts NO_KEY
int crypto_node_encrypt (crypto_node_t *self, int peer, uint8_t *buf, size_t len, size_t cap,
                         uint64_t now, size_t *wire_len);
//  The same for a message of data's layout of another type (WIRE_ANNOUNCE, WIRE_FLOOD)
int crypto_node_encrypt_type (crypto_node_t *self, int peer, int type, uint8_t *buf, size_t len, size_t cap,
                              uint64_t now, size_t *wire_len);
//  Any message from the wire; reply must hold WIRE_RESPONSE_SIZE bytes
int crypto_node_receive (crypto_node_t *self, uint8_t *buf, size_t len, uint64_t now,
                         uint8_t *reply, crypto_rx_t *rx);
//  A message that came through other peers as peer `source`'s (its routing
//  header's source, docs/routing.md): dropped (CRYPTO_DROP_ROUTED_SOURCE)
//  unless its session is that peer's, or for an initiation, unless the
//  initiator's static key is that peer's; checked before any state changes
int crypto_node_receive_routed (crypto_node_t *self, int source, uint8_t *buf, size_t len, uint64_t now,
                                uint8_t *reply, crypto_rx_t *rx);
//  Batches: return the number of packets that succeeded
size_t crypto_node_encrypt_batch (crypto_node_t *self, crypto_packet_t *packets, size_t count, uint64_t now);
size_t crypto_node_decrypt_batch (crypto_node_t *self, crypto_packet_t *packets, size_t count, uint64_t now);

void crypto_node_stats (const crypto_node_t *self, crypto_node_stats_t *stats);
const char *crypto_drop_name (crypto_drop_t drop);
//  The reason of the last refused handshake (no secrets in it), for the log
const char *crypto_node_last_error (const crypto_node_t *self);

void crypto_node_test (bool verbose);
#endif
