/*  crypto_noise: one Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b handshake.

    Implemented from the Noise specification (revision 34) the way WireGuard uses
    it: the initiator knows the responder's static key in advance (IK), sends its
    own static key encrypted plus a TAI64N timestamp, and the network pre-shared
    key (32 zero bytes when none is configured) is mixed in last (psk2), so a node
    without the PSK cannot complete a handshake even with valid keys. The result is
    a pair of ephemeral session keys (forward secrecy) and both session indices.

    HASH is BLAKE2b-512 (crypto_generichash), HMAC is RFC 2104 over it with a
    128-byte block, HKDF is the Noise HKDF; the AEAD is ChaCha20-Poly1305 IETF with
    the Noise nonce (4 zero bytes + 64-bit little-endian counter). Each message
    carries mac1 = BLAKE2b-128 keyed with BLAKE2b-256("mac1----" || receiver's
    static key), so a responder spends no DH on bytes from someone who does not
    even know its public key.

    An object is single use: make one per attempt, destroy it when done. */
#ifndef CRYPTO_NOISE_H_INCLUDED
#define CRYPTO_NOISE_H_INCLUDED

#include "crypto_identity.h"
#include "crypto_wire.h"

#define CRYPTO_NOISE_PROTOCOL   "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b"
#define CRYPTO_NOISE_PROLOGUE   "Bifrost v1 encrypted tunnel"

//  Results (negative = the message is refused)
#define CRYPTO_NOISE_OK          0
#define CRYPTO_NOISE_EMALFORMED -1      //  size, type, reserved bytes
#define CRYPTO_NOISE_EMAC       -2      //  mac1 wrong: not meant for us
#define CRYPTO_NOISE_EAUTH      -3      //  an AEAD tag failed: tampered or wrong PSK
#define CRYPTO_NOISE_EUNKNOWN   -4      //  initiator's static key is not configured
#define CRYPTO_NOISE_EREPLAY    -5      //  timestamp not newer than the last accepted
#define CRYPTO_NOISE_ESTATE     -6      //  call out of order
#define CRYPTO_NOISE_EDH        -7      //  low-order public key

//  What a completed handshake yields; the caller wipes it (sodium_memzero)
typedef struct {
    uint8_t send_key [32];
    uint8_t recv_key [32];
    uint32_t local_index;               //  peers put this in data packets to us
    uint32_t remote_index;              //  we put this in data packets to them
    bool initiator;
} crypto_keys_t;

//  Responder's peer lookup: for a configured static key, a pointer to that peer's
//  12-byte storage of the greatest timestamp accepted so far (updated by the
//  handshake on success); NULL if the key is not configured.
typedef uint8_t *(crypto_noise_lookup_fn) (void *arg, const uint8_t static_key [32]);

typedef struct _crypto_noise_t crypto_noise_t;

//  identity is borrowed and must outlive the handshake; psk may be NULL
crypto_noise_t *crypto_noise_new_initiator (const crypto_identity_t *identity,
                                            const uint8_t remote_static [32], const uint8_t *psk);
crypto_noise_t *crypto_noise_new_responder (const crypto_identity_t *identity, const uint8_t *psk);
void crypto_noise_destroy (crypto_noise_t **self_p);

//  Initiator: message 1. wall_ns = CLOCK_REALTIME in ns, becomes the TAI64N stamp.
int crypto_noise_write_initiation (crypto_noise_t *self, uint32_t local_index, uint64_t wall_ns,
                                   uint8_t out [WIRE_INITIATION_SIZE]);
//  Responder: consume message 1; on success the initiator's static key is in
//  remote_static (may be NULL).
int crypto_noise_read_initiation (crypto_noise_t *self, const uint8_t *msg, size_t size,
                                  crypto_noise_lookup_fn *lookup, void *arg,
                                  uint8_t *remote_static, char *err, size_t errsize);
//  Responder: message 2; completes the handshake and fills keys
int crypto_noise_write_response (crypto_noise_t *self, uint32_t local_index,
                                 uint8_t out [WIRE_RESPONSE_SIZE], crypto_keys_t *keys);
//  Initiator: consume message 2; completes the handshake and fills keys
int crypto_noise_read_response (crypto_noise_t *self, const uint8_t *msg, size_t size,
                                crypto_keys_t *keys, char *err, size_t errsize);

uint32_t crypto_noise_local_index (const crypto_noise_t *self);
//  The final handshake hash (channel binding, tests)
void crypto_noise_handshake_hash (const crypto_noise_t *self, uint8_t out [64]);
//  Tests only: use this ephemeral private key instead of a random one
void crypto_noise_set_ephemeral (crypto_noise_t *self, const uint8_t secret [32]);
//  TAI64N of a CLOCK_REALTIME value in ns (12 bytes, big-endian, compares with memcmp)
void crypto_noise_tai64n (uint64_t wall_ns, uint8_t out [12]);
//  HMAC-BLAKE2b-512 and the Noise HKDF, exposed for known-answer tests
void crypto_noise_hmac (uint8_t out [64], const uint8_t *key, size_t key_len,
                        const uint8_t *data, size_t data_len);

void crypto_noise_test (bool verbose);
#endif
