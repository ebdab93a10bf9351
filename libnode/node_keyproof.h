/*  node_keyproof: proof that a peer holds the X25519 private key of the public key
    it registers, without a signature scheme (our identity keys are X25519, not
    Ed25519). Both sides derive the same static-static Diffie-Hellman secret:
        shared = X25519 (peer_secret, registry_public)
               = X25519 (registry_secret, peer_public)
        key    = BLAKE2b-256 ("bifrost-keyproof-v1" || shared || peer_public || registry_public)
        proof  = BLAKE2b-256 keyed with key (len (network_id) || network_id || nonce)
    Only the holder of peer_secret (or of the registry's secret) can compute it;
    the nonce is a fresh single-use challenge from the registry, so a recorded
    proof cannot be replayed. The client half (compute) lives here so the node's
    discovery service and the registry share one implementation. */
#ifndef NODE_KEYPROOF_H_INCLUDED
#define NODE_KEYPROOF_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NODE_KEYPROOF_KEY_SIZE 32
#define NODE_KEYPROOF_SIZE 32

//  Client side: the proof for a challenge. 0, or -1 when a key is a low-order point.
int node_keyproof_compute (const uint8_t peer_secret [NODE_KEYPROOF_KEY_SIZE],
                          const uint8_t peer_public [NODE_KEYPROOF_KEY_SIZE],
                          const uint8_t registry_public [NODE_KEYPROOF_KEY_SIZE],
                          const char *network_id, const uint8_t *nonce, size_t nonce_size,
                          uint8_t proof [NODE_KEYPROOF_SIZE]);
//  The same from the X25519 shared secret, for a holder of the private key that
//  never hands it out (the crypto service: crypto_identity_dh gives the secret).
void node_keyproof_from_shared (const uint8_t shared [NODE_KEYPROOF_KEY_SIZE],
                               const uint8_t peer_public [NODE_KEYPROOF_KEY_SIZE],
                               const uint8_t registry_public [NODE_KEYPROOF_KEY_SIZE],
                               const char *network_id, const uint8_t *nonce, size_t nonce_size,
                               uint8_t proof [NODE_KEYPROOF_SIZE]);
//  Registry side: 0 when proof is right (constant-time compare), else -1.
int node_keyproof_verify (const uint8_t registry_secret [NODE_KEYPROOF_KEY_SIZE],
                         const uint8_t registry_public [NODE_KEYPROOF_KEY_SIZE],
                         const uint8_t peer_public [NODE_KEYPROOF_KEY_SIZE],
                         const char *network_id, const uint8_t *nonce, size_t nonce_size,
                         const uint8_t proof [NODE_KEYPROOF_SIZE]);

void node_keyproof_test (bool verbose);
#endif
