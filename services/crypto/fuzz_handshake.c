/*  fuzz_handshake: bytes from the internet as handshake messages. The first byte
    picks the role: even = an initiation read by a responder, odd = a response
    read by an initiator that has an initiation in flight. Nothing may crash,
    leak or hang, and nothing unauthenticated may complete a handshake. */
#include "crypto_fuzz.h"
#include <assert.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static uint8_t s_stamp [12];
static const uint8_t *s_known;

static uint8_t *
s_lookup (void *arg, const uint8_t key [32])
{
    return memcmp (key, s_known, 32) == 0 ? s_stamp : NULL;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static crypto_identity_t *ini, *res;
    if (!ini) {
        ini = crypto_fuzz_identity (0x10);
        res = crypto_fuzz_identity (0x50);
        s_known = crypto_identity_public (ini);
    }
    if (size < 1)
        return 0;
    char err [200];
    const uint8_t *msg = data + 1;
    size_t len = size - 1;
    crypto_wire_type (msg, len, err, sizeof err);
    if (data [0] % 2 == 0) {
        memset (s_stamp, 0, sizeof s_stamp);
        crypto_noise_t *r = crypto_noise_new_responder (res, NULL);
        crypto_fuzz_responder_ephemeral (r);
        if (crypto_noise_read_initiation (r, msg, len, s_lookup, NULL, NULL, err, sizeof err) == 0) {
            uint8_t m2 [WIRE_RESPONSE_SIZE];
            crypto_keys_t keys;
            assert (crypto_noise_write_response (r, CRYPTO_FUZZ_INDEX_R, m2, &keys) == 0);
        }
        crypto_noise_destroy (&r);
    }
    else {
        uint8_t m1 [WIRE_INITIATION_SIZE];
        crypto_noise_t *i = crypto_fuzz_initiator (ini, res, m1);
        crypto_keys_t keys;
        crypto_noise_read_response (i, msg, len, &keys, err, sizeof err);
        crypto_noise_destroy (&i);
    }
    return 0;
}
