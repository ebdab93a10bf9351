/*  bridge_peer: the far end of a bridge flow (issue 17, docs/bridge.md "The
    peer program"): one UDP socket and one bridge_flow. It answers every
    HEARTBEAT with a HEARTBEAT_REPLY, sends its own HEARTBEATs (toward a
    target given in advance, so its NAT opens a hole toward the bridge, then
    toward whoever it last heard from), and hands DATA to its owner or, in echo
    mode, sends it straight back.

    The far end's address is learned from valid datagrams only: every datagram
    goes through bridge_flow_open first, and one that is refused (forged,
    replayed, damaged) is counted and dropped without moving anything. So a
    stranger who can send to the port can neither redirect the flow nor make
    the peer answer.

    No loop of its own: the owner polls bridge_peer_fd, calls bridge_peer_recv
    when it is readable and bridge_peer_tick when its deadline comes, so
    bifrost-bridge-peer (bridge_peer_main.c) and the self test (two instances
    in one thread, one playing the bridge) drive it the same way. */
#ifndef BRIDGE_PEER_H_INCLUDED
#define BRIDGE_PEER_H_INCLUDED

#include "bridge_flow.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

typedef struct _bridge_peer_t bridge_peer_t;

typedef struct {
    struct sockaddr_storage listen;     //  the address to bind (port 0: any free port)
    socklen_t listen_len;
    struct sockaddr_storage target;     //  where to send heartbeats before anything is heard
    socklen_t target_len;               //  0: no target, wait to be reached
    uint8_t key [BRIDGE_WIRE_KEY_SIZE]; //  the flow key (copied into the flow; the caller wipes its copy)
    bridge_cipher_t cipher;
    bridge_flow_role_t role;            //  PEER for the program; CLIENT lets a test play the bridge
    bool echo;                          //  send every DATA back as DATA
    int interval_ms;                    //  0: BRIDGE_PEER_INTERVAL_MS
    int timeout_ms;                     //  0: BRIDGE_PEER_TIMEOUT_MS
} bridge_peer_config_t;

//  The peer's own heartbeat timing. The two ends need not agree: each needs
//  only the other's heartbeats to come more often than its own timeout (the
//  bridge's bridge.heartbeat_timeout, 3 s by default). So these are the
//  peer's choice, not a number of the contract: 1 s, the bridge's default
//  interval, keeps the NATs' mappings well within conntrack's 30 s
#define BRIDGE_PEER_INTERVAL_MS     1000
#define BRIDGE_PEER_TIMEOUT_MS      3000

//  The counters of bridge_peer_print_stats, declared once: (name, doc)
#define BRIDGE_PEER_COUNTERS(X) \
    X (datagrams_in,       "datagrams received, valid or not") \
    X (datagrams_out,      "datagrams sent") \
    X (heartbeats_in,      "HEARTBEATs received (each answered)") \
    X (heartbeats_out,     "HEARTBEATs sent") \
    X (replies_in,         "HEARTBEAT_REPLYs received") \
    X (replies_out,        "HEARTBEAT_REPLYs sent") \
    X (data_in,            "DATA received") \
    X (data_out,           "DATA sent (echoed or from the owner)") \
    X (bytes_in,           "bytes of DATA received (plaintext)") \
    X (bytes_out,          "bytes of DATA sent (plaintext)") \
    X (echoed,             "DATA sent back in echo mode") \
    X (invalid,            "datagrams refused by bridge_flow_open (by reason in \"refused\")") \
    X (no_far_end,         "DATA the owner gave before any far end was known: dropped") \
    X (send_errors,        "sendto failures") \
    X (far_end_changes,    "times a valid datagram came from a new address")

typedef struct {
#define S_FIELD(name, doc) uint64_t name;
    BRIDGE_PEER_COUNTERS (S_FIELD)
#undef S_FIELD
} bridge_peer_stats_t;

//  Called with the plaintext of each DATA when not in echo mode
typedef void (bridge_peer_data_fn) (void *arg, const uint8_t *data, size_t size);

//  Binds the socket and makes the flow; NULL with err set when either fails
bridge_peer_t *bridge_peer_new (const bridge_peer_config_t *config, char *err, size_t errsize);
void bridge_peer_destroy (bridge_peer_t **self_p);
void bridge_peer_set_data_fn (bridge_peer_t *self, bridge_peer_data_fn *fn, void *arg);

//  The socket to poll for input, and the port it is bound to
int bridge_peer_fd (bridge_peer_t *self);
uint16_t bridge_peer_port (bridge_peer_t *self);

//  Reads every datagram waiting (the socket is non-blocking) and acts on it
void bridge_peer_recv (bridge_peer_t *self, int64_t now_ms);
//  Sends the heartbeat that is due; returns the milliseconds until the next
int bridge_peer_tick (bridge_peer_t *self, int64_t now_ms);
//  Sends size bytes as one DATA to the far end: 0, or -1 (none known yet,
//  too big, send failed; counted)
int bridge_peer_send (bridge_peer_t *self, const uint8_t *data, size_t size);

//  Something valid heard from the far end within the timeout
bool bridge_peer_established (bridge_peer_t *self, int64_t now_ms);
//  "203.0.113.10:4500", or "" before any valid datagram
const char *bridge_peer_far_end (bridge_peer_t *self);
//  The cipher in use (auto resolved): "aes256gcm" or "chacha20poly1305"
const char *bridge_peer_cipher_name (bridge_peer_t *self);
const bridge_peer_stats_t *bridge_peer_stats (bridge_peer_t *self);
const bridge_flow_stats_t *bridge_peer_flow_stats (bridge_peer_t *self);
//  The counters as one JSON line (no key, ever), for SIGUSR1 and the exit
void bridge_peer_print_stats (bridge_peer_t *self, int64_t now_ms, FILE *out);

//  Reads a flow key from path: 44 characters of standard base64 (32 bytes),
//  optionally followed by a newline; refused unless a regular file that
//  neither group nor others can access (0600 or stricter). 0, or -1 with err
int bridge_peer_key_load (const char *path, uint8_t key [BRIDGE_WIRE_KEY_SIZE], char *err, size_t errsize);

void bridge_peer_test (bool verbose);
#endif
