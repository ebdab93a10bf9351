/*  node_keyproof: key-possession proof for registration (see node_keyproof.h). */
#include "node_keyproof.h"
#include <assert.h>
#include <sodium.h>
#include <string.h>

void
node_keyproof_from_shared (const uint8_t shared [32], const uint8_t peer_public [32], const uint8_t registry_public [32],
         const char *network_id, const uint8_t *nonce, size_t nonce_size, uint8_t proof [32])
{
    static const char label [] = "bifrost-keyproof-v1";
    uint8_t key [32];
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, sizeof key);
    crypto_generichash_update (&state, (const uint8_t *) label, sizeof label - 1);
    crypto_generichash_update (&state, shared, 32);
    crypto_generichash_update (&state, peer_public, 32);
    crypto_generichash_update (&state, registry_public, 32);
    crypto_generichash_final (&state, key, sizeof key);

    size_t id_len = strlen (network_id);
    uint8_t len [2] = { (uint8_t) (id_len >> 8), (uint8_t) id_len };
    crypto_generichash_init (&state, key, sizeof key, NODE_KEYPROOF_SIZE);
    crypto_generichash_update (&state, len, 2);
    crypto_generichash_update (&state, (const uint8_t *) network_id, id_len);
    crypto_generichash_update (&state, nonce, nonce_size);
    crypto_generichash_final (&state, proof, NODE_KEYPROOF_SIZE);
    sodium_memzero (key, sizeof key);
}

int
node_keyproof_compute (const uint8_t peer_secret [32], const uint8_t peer_public [32],
                      const uint8_t registry_public [32], const char *network_id,
                      const uint8_t *nonce, size_t nonce_size, uint8_t proof [32])
{
    uint8_t shared [32];
    if (crypto_scalarmult (shared, peer_secret, registry_public) != 0)
        return -1;
    node_keyproof_from_shared (shared, peer_public, registry_public, network_id, nonce, nonce_size, proof);
    sodium_memzero (shared, sizeof shared);
    return 0;
}

int
node_keyproof_verify (const uint8_t registry_secret [32], const uint8_t registry_public [32],
                     const uint8_t peer_public [32], const char *network_id,
                     const uint8_t *nonce, size_t nonce_size, const uint8_t proof [32])
{
    uint8_t shared [32], expect [32];
    if (crypto_scalarmult (shared, registry_secret, peer_public) != 0)
        return -1;
    node_keyproof_from_shared (shared, peer_public, registry_public, network_id, nonce, nonce_size, expect);
    sodium_memzero (shared, sizeof shared);
    return sodium_memcmp (expect, proof, 32) == 0 ? 0 : -1;
}

void
node_keyproof_test (bool verbose)
{
    assert (sodium_init () >= 0);
    uint8_t peer_pk [32], peer_sk [32], reg_pk [32], reg_sk [32], other_pk [32], other_sk [32];
    crypto_box_keypair (peer_pk, peer_sk);
    crypto_box_keypair (reg_pk, reg_sk);
    crypto_box_keypair (other_pk, other_sk);
    uint8_t nonce [32], proof [32];
    randombytes_buf (nonce, sizeof nonce);
    assert (node_keyproof_compute (peer_sk, peer_pk, reg_pk, "net1", nonce, sizeof nonce, proof) == 0);
    assert (node_keyproof_verify (reg_sk, reg_pk, peer_pk, "net1", nonce, sizeof nonce, proof) == 0);
    //  Another network, another nonce, another key, a flipped bit: refused
    assert (node_keyproof_verify (reg_sk, reg_pk, peer_pk, "net2", nonce, sizeof nonce, proof) == -1);
    nonce [0] ^= 1;
    assert (node_keyproof_verify (reg_sk, reg_pk, peer_pk, "net1", nonce, sizeof nonce, proof) == -1);
    nonce [0] ^= 1;
    assert (node_keyproof_verify (reg_sk, reg_pk, other_pk, "net1", nonce, sizeof nonce, proof) == -1);
    proof [31] ^= 0x80;
    assert (node_keyproof_verify (reg_sk, reg_pk, peer_pk, "net1", nonce, sizeof nonce, proof) == -1);
    //  Someone without peer_sk claiming peer_pk (using their own secret) fails
    assert (node_keyproof_compute (other_sk, peer_pk, reg_pk, "net1", nonce, sizeof nonce, proof) == 0);
    assert (node_keyproof_verify (reg_sk, reg_pk, peer_pk, "net1", nonce, sizeof nonce, proof) == -1);
    //  A low-order public key is refused, not accepted with an all-zero secret
    uint8_t zero [32] = { 0 };
    assert (node_keyproof_verify (reg_sk, reg_pk, zero, "net1", nonce, sizeof nonce, proof) == -1);
}
