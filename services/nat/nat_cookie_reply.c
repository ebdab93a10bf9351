/*  nat_cookie_reply: write and read the 64-byte cookie reply (see the header). */
#include "nat_cookie_reply.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

_Static_assert (WIRE_COOKIE_ENCRYPTED_COOKIE_SIZE == NAT_HS_MAC_SIZE + crypto_aead_xchacha20poly1305_ietf_ABYTES,
                "wire.def: the encrypted cookie is a cookie and a tag");
_Static_assert (WIRE_COOKIE_NONCE_SIZE == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                "wire.def: the cookie reply's nonce is XChaCha20's");

void
nat_cookie_reply_write (uint8_t out [WIRE_COOKIE_SIZE], uint32_t receiver_index,
                        const uint8_t key [NAT_HS_KEY_SIZE], const uint8_t mac1 [NAT_HS_MAC_SIZE],
                        const uint8_t cookie [NAT_HS_MAC_SIZE])
{
    memset (out, 0, WIRE_HEADER_SIZE);
    out [WIRE_COOKIE_TYPE] = WIRE_COOKIE;
    for (int i = 0; i < 4; i++)
        out [WIRE_COOKIE_RECEIVER_INDEX + i] = (uint8_t) (receiver_index >> (8 * i));
    randombytes_buf (out + WIRE_COOKIE_NONCE, WIRE_COOKIE_NONCE_SIZE);
    unsigned long long sealed;
    crypto_aead_xchacha20poly1305_ietf_encrypt (out + WIRE_COOKIE_ENCRYPTED_COOKIE, &sealed,
                                                cookie, NAT_HS_MAC_SIZE, mac1, NAT_HS_MAC_SIZE,
                                                NULL, out + WIRE_COOKIE_NONCE, key);
    assert (sealed == WIRE_COOKIE_ENCRYPTED_COOKIE_SIZE);
}

int
nat_cookie_reply_receiver (const uint8_t *in, size_t size, uint32_t *index)
{
    if (!in || size != WIRE_COOKIE_SIZE || in [0] != WIRE_COOKIE || in [1] || in [2] || in [3])
        return -1;
    const uint8_t *p = in + WIRE_COOKIE_RECEIVER_INDEX;
    *index = (uint32_t) p [0] | (uint32_t) p [1] << 8 | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 24;
    return 0;
}

int
nat_cookie_reply_read (const uint8_t *in, size_t size, const uint8_t key [NAT_HS_KEY_SIZE],
                       const uint8_t mac1 [NAT_HS_MAC_SIZE], uint8_t cookie [NAT_HS_MAC_SIZE])
{
    uint32_t index;
    if (nat_cookie_reply_receiver (in, size, &index))
        return -1;
    unsigned long long opened;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt (cookie, &opened, NULL,
                                                    in + WIRE_COOKIE_ENCRYPTED_COOKIE, WIRE_COOKIE_ENCRYPTED_COOKIE_SIZE,
                                                    mac1, NAT_HS_MAC_SIZE, in + WIRE_COOKIE_NONCE, key)
    ||  opened != NAT_HS_MAC_SIZE)
        return -1;
    return 0;
}

//  ---------------------------------------------------------------------------
//  Self test: a round trip; another mac1 (AAD), key, a flipped byte, a wrong
//  size, type or reserved byte are refused.

void
nat_cookie_reply_test (bool verbose)
{
    uint8_t pub [32], key [32], other [32], mac1 [16], cookie [16], got [16];
    memset (pub, 0x42, sizeof pub);
    nat_hs_mac_key ("cookie--", pub, key);
    pub [0] ^= 1;
    nat_hs_mac_key ("cookie--", pub, other);
    for (int i = 0; i < 16; i++) {
        mac1 [i] = (uint8_t) (0xA0 + i);
        cookie [i] = (uint8_t) i;
    }
    uint8_t msg [WIRE_COOKIE_SIZE + 1];
    nat_cookie_reply_write (msg, 0xA1B2C3D4, key, mac1, cookie);
    assert (msg [0] == 3 && msg [1] == 0 && msg [2] == 0 && msg [3] == 0);
    assert (msg [4] == 0xD4 && msg [7] == 0xA1);
    uint32_t index = 0;
    assert (nat_cookie_reply_receiver (msg, WIRE_COOKIE_SIZE, &index) == 0 && index == 0xA1B2C3D4);
    assert (nat_cookie_reply_read (msg, WIRE_COOKIE_SIZE, key, mac1, got) == 0);
    assert (memcmp (got, cookie, 16) == 0);
    //  Two replies to the same initiation: other nonces, other bytes
    uint8_t msg2 [WIRE_COOKIE_SIZE];
    nat_cookie_reply_write (msg2, 0xA1B2C3D4, key, mac1, cookie);
    assert (memcmp (msg + WIRE_COOKIE_NONCE, msg2 + WIRE_COOKIE_NONCE, WIRE_COOKIE_NONCE_SIZE) != 0);
    //  The reply to another initiation (another mac1) does not open
    mac1 [15] ^= 1;
    assert (nat_cookie_reply_read (msg, WIRE_COOKIE_SIZE, key, mac1, got) == -1);
    mac1 [15] ^= 1;
    //  Nor under another responder's key
    assert (nat_cookie_reply_read (msg, WIRE_COOKIE_SIZE, other, mac1, got) == -1);
    //  Every byte of nonce and sealed cookie counts
    for (size_t i = WIRE_COOKIE_NONCE; i < WIRE_COOKIE_SIZE; i++) {
        msg [i] ^= 0x80;
        assert (nat_cookie_reply_read (msg, WIRE_COOKIE_SIZE, key, mac1, got) == -1);
        msg [i] ^= 0x80;
    }
    //  Shape: size, type, reserved
    assert (nat_cookie_reply_read (msg, WIRE_COOKIE_SIZE - 1, key, mac1, got) == -1);
    assert (nat_cookie_reply_read (msg, WIRE_COOKIE_SIZE + 1, key, mac1, got) == -1);
    assert (nat_cookie_reply_read (NULL, 0, key, mac1, got) == -1);
    for (int i = 0; i < 4; i++) {
        msg [i] ^= 0x10;
        assert (nat_cookie_reply_receiver (msg, WIRE_COOKIE_SIZE, &index) == -1);
        assert (nat_cookie_reply_read (msg, WIRE_COOKIE_SIZE, key, mac1, got) == -1);
        msg [i] ^= 0x10;
    }
    assert (nat_cookie_reply_read (msg, WIRE_COOKIE_SIZE, key, mac1, got) == 0);
    if (verbose)
        printf ("  round trip; other mac1, key, flipped bytes and shapes refused\n");
}
