/*  crypto_session: one peer's transport keys, their life cycle and the
    handshake timer, the way WireGuard keeps them.

    Up to three keypairs: `current` (we send with it), `previous` (still accepted
    on receive, so packets in flight across a rekey are not lost) and `next` (a
    responder's new keypair, which becomes current when the first packet arrives
    under it: only then do we know the initiator has it too). Packets are
    encrypted and decrypted in place in the caller's buffer with libsodium's
    `_detached` AEAD: the 16-byte header goes in front of the plaintext and the
    16-byte tag behind it, so there is no allocation per packet.

    Time is a parameter (`now`, CLOCK_MONOTONIC ns) so tests simulate hours in
    microseconds. The session only says WHEN a handshake is due; crypto_node
    runs it. Rekey is asked for after rekey_after_time (initiator of the current
    keypair only, so both sides do not rekey at once), rekey_after_messages or
    rekey_after_bytes; a keypair is refused after reject_after_time or
    reject_after_messages. Retries back off from 1 s doubling to 30 s with
    +-25% jitter and give up after 90 s until traffic asks again. */
#ifndef CRYPTO_SESSION_H_INCLUDED
#define CRYPTO_SESSION_H_INCLUDED

#include "crypto_noise.h"

#define CRYPTO_SEC  1000000000ULL

typedef struct {
    uint64_t rekey_after_time;          //  ns, default 120 s
    uint64_t reject_after_time;         //  ns, default 180 s
    uint64_t rekey_after_messages;      //  default 2^60
    uint64_t reject_after_messages;     //  default 2^64 - 2^13 - 1
    uint64_t rekey_after_bytes;         //  sent + received on one keypair; 0 = off (default)
    uint64_t retry_initial;             //  ns, default 1 s
    uint64_t retry_max;                 //  ns, default 30 s
    uint64_t retry_give_up;             //  ns, default 90 s
} crypto_session_config_t;

//  Results of encrypt/decrypt (negative = packet not processed)
#define CRYPTO_SESSION_OK           0
#define CRYPTO_SESSION_NO_KEY      -1   //  no usable sending key: handshake due, queue or drop
#define CRYPTO_SESSION_EINVAL      -2   //  buffer too small, packet too large
#define CRYPTO_SESSION_EMALFORMED  -3   //  not a valid data packet
#define CRYPTO_SESSION_EINDEX      -4   //  receiver index is not one of ours
#define CRYPTO_SESSION_EEXPIRED    -5   //  keypair past reject_after_*
#define CRYPTO_SESSION_EREPLAY     -6   //  counter seen before or too old
#define CRYPTO_SESSION_EAUTH       -7   //  tag did not verify: tampered or forged

typedef struct _crypto_session_t crypto_session_t;

void crypto_session_config_defaults (crypto_session_config_t *config);
//  config is copied; NULL = defaults
crypto_session_t *crypto_session_new (const crypto_session_config_t *config);
void crypto_session_destroy (crypto_session_t **self_p);

//  Takes the keys of a completed handshake (and wipes *keys). True when our
//  initiation crossed the peer's (both initiated at once), for a counter.
bool crypto_session_install (crypto_session_t *self, crypto_keys_t *keys, uint64_t now);
//  Plaintext at buf + WIRE_DATA_HEADER, len bytes; capacity is the whole
//  buffer (needs len + 32). On success *wire_len = len + 32 bytes at buf.
int crypto_session_encrypt (crypto_session_t *self, uint8_t *buf, size_t len, size_t capacity,
                            uint64_t now, size_t *wire_len);
//  The same for a message of another type with data's layout: WIRE_DATA, or
//  WIRE_ANNOUNCE (1 .. WIRE_ANNOUNCE_MAX bytes) or WIRE_FLOOD (more than
//  WIRE_FLOOD_HEADER bytes: the flood header and a frame); their header is
//  authenticated as associated data. Same keys, counter and replay window as data.
int crypto_session_encrypt_type (crypto_session_t *self, int type, uint8_t *buf, size_t len, size_t capacity,
                                 uint64_t now, size_t *wire_len);
//  A data packet (or announcement or flood frame: buf [0] says which) of wire_len bytes at buf; on success the plaintext is at
//  buf + WIRE_DATA_HEADER, *plain_len bytes (0 = keepalive).
int crypto_session_decrypt (crypto_session_t *self, uint8_t *buf, size_t wire_len, uint64_t now,
                            size_t *plain_len);
//  True if this session holds index as one of its keypairs' local indices
bool crypto_session_has_index (const crypto_session_t *self, uint32_t index);
//  Keypairs a session holds: current, previous, next, retired
#define CRYPTO_SESSION_SLOTS 4
//  The local indices of the keypairs held (0 for an empty slot), for the node's index map
void crypto_session_indices (const crypto_session_t *self, uint32_t out [CRYPTO_SESSION_SLOTS]);
//  Bumped whenever keypairs are installed, promoted or dropped
uint64_t crypto_session_generation (const crypto_session_t *self);

//  Handshake timer: due = a new initiation should be sent now
bool crypto_session_handshake_due (crypto_session_t *self, uint64_t now);
void crypto_session_handshake_sent (crypto_session_t *self, uint64_t now);
//  Traffic wants a handshake (no key): (re)starts the retry cycle if idle
void crypto_session_want_handshake (crypto_session_t *self, uint64_t now);
//  True once after the initiator installed new keys and has sent nothing since:
//  send a keepalive so the responder can start using them
bool crypto_session_keepalive_due (crypto_session_t *self);
//  True if a current keypair can send now
bool crypto_session_can_send (const crypto_session_t *self, uint64_t now);
//  Wipes all keys (peer removed, or reject_after_time * 3 of silence)
void crypto_session_clear (crypto_session_t *self);
//  Wipes the keypairs past reject_after_time (unusable both ways, so there is no
//  reason to keep them in memory); true if any was dropped
bool crypto_session_expire (crypto_session_t *self, uint64_t now);
//  True while a handshake is wanted (retrying) and has not given up
bool crypto_session_handshake_wanted (const crypto_session_t *self);

void crypto_session_test (bool verbose);
#endif
