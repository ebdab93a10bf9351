/*  fuzz_bridge_flow: datagrams from the internet into bridge_flow_open. Never
    crashes, and never accepts what the client's key did not seal: every
    datagram it accepts is checked again here with libsodium directly (the
    direction key derived by hand, docs/bridge-wire.md), an oracle apart
    from bridge_flow's code. */
#include "bridge_flow_fuzz.h"
#include "../../schemas/bridge_wire.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  True if the client's c2p key really sealed this datagram
static bool
s_genuine (bridge_cipher_t cipher, const uint8_t *d, size_t len)
{
    uint8_t key [32], c2p [32], nonce [12] = { 0 }, out [BRIDGE_WIRE_MAX_PLAIN + 1];
    bridge_fuzz_key (key);
    crypto_generichash (c2p, 32, (const uint8_t *) "bridge c2p", 10, key, 32);
    memcpy (nonce + 4, d + 4, 8);
    unsigned long long mlen;
    if (cipher == BRIDGE_CIPHER_AES256GCM)
        return crypto_aead_aes256gcm_decrypt (out, &mlen, NULL, d + 12, len - 12, d, 12, nonce, c2p) == 0;
    return crypto_aead_chacha20poly1305_ietf_decrypt (out, &mlen, NULL, d + 12, len - 12, d, 12, nonce, c2p) == 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1 || sodium_init () < 0)
        return 0;
    uint8_t key [32];
    bridge_fuzz_key (key);
    bridge_cipher_t cipher = bridge_fuzz_cipher (data [0]);
    bridge_flow_t *flow = bridge_flow_new (key, BRIDGE_FLOW_PEER, cipher);
    static uint8_t plain [BRIDGE_WIRE_MAX_PLAIN];
    size_t at = 1;
    while (at < size) {
        size_t len = size - at;
        const uint8_t *d = data + at;
        if (len >= 2 && (size_t) (d [0] | d [1] << 8) <= len - 2) {
            len = (size_t) (d [0] | d [1] << 8);
            d += 2;
        }
        //  An exact-size copy, so a read past the datagram is caught (ASan)
        uint8_t *copy = malloc (len ? len : 1);
        if (!copy)
            break;
        memcpy (copy, d, len);
        int type = 0;
        int rc = bridge_flow_open (flow, copy, len, &type, plain, sizeof plain);
        if (rc >= 0 && !s_genuine (cipher, copy, len))
            abort ();                   //  accepted a forgery
        if (rc >= 0 && (size_t) rc != len - BRIDGE_WIRE_DATA_SIZE)
            abort ();
        free (copy);
        at = (size_t) (d - data) + len;
    }
    bridge_flow_destroy (&flow);
    return 0;
}
