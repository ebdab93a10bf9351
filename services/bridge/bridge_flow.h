/*  bridge_flow: one encrypted UDP flow of the bridge (issue 17): seals each
    WebSocket binary message of a client into one AEAD datagram for the peer,
    and opens the peer's datagrams, heartbeats included. The datagram is
    declared in schemas/bridge_wire.def and described in docs/bridge-wire.md
    (direction keys, nonce, receive order).

    No sockets and no bus: the caller sends and receives the bytes, so the self
    test, the fuzz target and the peer-side program use the same code. */
#ifndef BRIDGE_FLOW_H_INCLUDED
#define BRIDGE_FLOW_H_INCLUDED

#include "schemas/bridge.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _bridge_flow_t bridge_flow_t;

//  Which end: the client role (the bridge service, acting for a WebSocket
//  client) seals with the c2p key and opens with p2c; the peer role the reverse
typedef enum { BRIDGE_FLOW_CLIENT, BRIDGE_FLOW_PEER } bridge_flow_role_t;

//  The ciphers (bridge_cipher_t: AUTO = AES-256-GCM where the CPU has it,
//  else ChaCha20-Poly1305 IETF) are declared once, in schemas/bridge.def

//  Why a datagram was refused (negative returns of open and seal), each with
//  its counter in the stats: declared once here
#define BRIDGE_FLOW_REASONS(X) \
    X (SHORT,     -1, "short",     "shorter than a header and a tag, or a heartbeat that is not empty") \
    X (BAD_TYPE,  -2, "bad_type",  "type byte is no flow datagram") \
    X (RESERVED,  -3, "reserved",  "reserved bytes not zero") \
    X (TOO_OLD,   -4, "too_old",   "counter below the replay window") \
    X (REPLAYED,  -5, "replayed",  "counter already accepted") \
    X (TAMPERED,  -6, "tampered",  "tag does not verify: forged, damaged or another key") \
    X (NO_ROOM,   -7, "no_room",   "the caller's buffer is too small, or the message too big") \
    X (EXHAUSTED, -8, "exhausted", "send counter used up: the flow needs a new key")

typedef enum {
#define S_REASON(id, value, name, doc) BRIDGE_FLOW_##id = (value),
    BRIDGE_FLOW_REASONS (S_REASON)
#undef S_REASON
} bridge_flow_reason_t;
#define BRIDGE_FLOW_REASON_COUNT 8

typedef struct {
    uint64_t sealed;                    //  datagrams sealed (data and heartbeats)
    uint64_t opened;                    //  datagrams accepted
    uint64_t refused [BRIDGE_FLOW_REASON_COUNT + 1];    //  by -reason
} bridge_flow_stats_t;

//  NULL if the cipher cannot be used here (then bridge_flow_cipher_error says why)
bridge_flow_t *bridge_flow_new (const uint8_t key [32], bridge_flow_role_t role, bridge_cipher_t cipher);
void bridge_flow_destroy (bridge_flow_t **self_p);

//  NULL if cipher is usable on this CPU, else a message for the operator
const char *bridge_flow_cipher_error (bridge_cipher_t cipher);
//  "auto", "aes256gcm", "chacha20poly1305" -> cipher; -1 if unknown
int bridge_flow_cipher_parse (const char *name);
//  The cipher the flow really uses (auto resolved) and its name
bridge_cipher_t bridge_flow_cipher (const bridge_flow_t *self);
const char *bridge_flow_cipher_name (bridge_cipher_t cipher);

//  Seals len bytes as a datagram of type (BRIDGE_WIRE_DATA, _HEARTBEAT,
//  _HEARTBEAT_REPLY; heartbeats take len 0) into out: its length, or a
//  negative reason (NO_ROOM, SHORT for a heartbeat with data, EXHAUSTED)
int bridge_flow_seal (bridge_flow_t *self, int type, const uint8_t *plain, size_t len,
                      uint8_t *out, size_t outsize);
//  Opens a datagram of the other end: the plaintext's length (0 for a
//  heartbeat) with *type set, or a negative reason, counted in the stats
int bridge_flow_open (bridge_flow_t *self, const uint8_t *datagram, size_t len, int *type,
                      uint8_t *out, size_t outsize);

const bridge_flow_stats_t *bridge_flow_stats (const bridge_flow_t *self);
//  "tampered" for BRIDGE_FLOW_TAMPERED; "?" for what is no reason
const char *bridge_flow_reason_name (int reason);

void bridge_flow_test (bool verbose);
#endif
