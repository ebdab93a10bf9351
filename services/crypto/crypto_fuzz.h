/*  crypto_fuzz: the fixed keys shared by the fuzz targets and the program that
    writes their seed corpus (crypto_corpus), so stored seeds are messages the
    targets accept all the way through, and coverage starts deep. Header-only
    because it is test scaffolding, not part of libcrypto_core. */
#ifndef CRYPTO_FUZZ_H_INCLUDED
#define CRYPTO_FUZZ_H_INCLUDED

#include "crypto_node.h"
#include <string.h>

#define CRYPTO_FUZZ_WALL    (1700000000ULL * CRYPTO_SEC)
#define CRYPTO_FUZZ_NOW     (10 * CRYPTO_SEC)
#define CRYPTO_FUZZ_INDEX_I 0x11223344U
#define CRYPTO_FUZZ_INDEX_R 0x55667788U

static inline void
crypto_fuzz_secret (uint8_t out [32], uint8_t seed)
{
    for (int i = 0; i < 32; i++)
        out [i] = (uint8_t) (seed + 7 * i);
}

static inline crypto_identity_t *
crypto_fuzz_identity (uint8_t seed)
{
    uint8_t secret [32];
    crypto_fuzz_secret (secret, seed);
    return crypto_identity_new_from_secret (secret);
}

//  The initiator's state after sending its (deterministic) initiation
static inline crypto_noise_t *
crypto_fuzz_initiator (const crypto_identity_t *ini, const crypto_identity_t *res,
                       uint8_t m1 [WIRE_INITIATION_SIZE])
{
    uint8_t e [32];
    crypto_fuzz_secret (e, 0x90);
    crypto_noise_t *noise = crypto_noise_new_initiator (ini, crypto_identity_public (res), NULL);
    crypto_noise_set_ephemeral (noise, e);
    crypto_noise_write_initiation (noise, CRYPTO_FUZZ_INDEX_I, CRYPTO_FUZZ_WALL, m1);
    return noise;
}

static inline void
crypto_fuzz_responder_ephemeral (crypto_noise_t *noise)
{
    uint8_t e [32];
    crypto_fuzz_secret (e, 0xA0);
    crypto_noise_set_ephemeral (noise, e);
}

//  Fixed transport keys: the receiving side of the data fuzzer
static inline void
crypto_fuzz_keys (crypto_keys_t *keys, bool sender)
{
    uint8_t k1 [32], k2 [32];
    crypto_fuzz_secret (k1, 0xB0);
    crypto_fuzz_secret (k2, 0xC0);
    memcpy (keys->send_key, sender ? k1 : k2, 32);
    memcpy (keys->recv_key, sender ? k2 : k1, 32);
    keys->local_index = sender ? CRYPTO_FUZZ_INDEX_I : CRYPTO_FUZZ_INDEX_R;
    keys->remote_index = sender ? CRYPTO_FUZZ_INDEX_R : CRYPTO_FUZZ_INDEX_I;
    keys->initiator = sender;
}

#endif
