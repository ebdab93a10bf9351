/*  nat_hs_mac: mac1, mac2 and the keys derived from public keys (see the header). */
#include "nat_hs_mac.h"
#include "schemas/wire.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

void
nat_hs_mac_key (const char *label, const uint8_t pub [NAT_HS_KEY_SIZE], uint8_t out [NAT_HS_KEY_SIZE])
{
    crypto_generichash_state st;
    crypto_generichash_init (&st, NULL, 0, NAT_HS_KEY_SIZE);
    crypto_generichash_update (&st, (const uint8_t *) label, 8);
    crypto_generichash_update (&st, pub, NAT_HS_KEY_SIZE);
    crypto_generichash_final (&st, out, NAT_HS_KEY_SIZE);
}

bool
nat_hs_mac1_ok (const uint8_t mac1_key [NAT_HS_KEY_SIZE], const uint8_t *msg, size_t mac1_at)
{
    uint8_t mac [NAT_HS_MAC_SIZE];
    crypto_generichash (mac, sizeof mac, msg, mac1_at, mac1_key, NAT_HS_KEY_SIZE);
    return sodium_memcmp (mac, msg + mac1_at, sizeof mac) == 0;
}

void
nat_hs_mac2 (const uint8_t cookie [NAT_HS_MAC_SIZE], const uint8_t *msg, size_t mac2_at,
             uint8_t out [NAT_HS_MAC_SIZE])
{
    crypto_generichash (out, NAT_HS_MAC_SIZE, msg, mac2_at, cookie, NAT_HS_MAC_SIZE);
}

bool
nat_hs_mac2_ok (const uint8_t cookie [NAT_HS_MAC_SIZE], const uint8_t *msg, size_t mac2_at)
{
    uint8_t mac [NAT_HS_MAC_SIZE];
    nat_hs_mac2 (cookie, msg, mac2_at, mac);
    return sodium_memcmp (mac, msg + mac2_at, sizeof mac) == 0;
}

//  ---------------------------------------------------------------------------
//  Self test: against values from Python's hashlib (an implementation of its
//  own): public key 00 01 .. 1f, message byte i = 7i mod 256, cookie 100..115.

static void
s_hex (const char *hex, uint8_t *out, size_t size)
{
    for (size_t i = 0; i < size; i++)
        assert (sscanf (hex + 2 * i, "%2hhx", &out [i]) == 1);
}

void
nat_hs_mac_test (bool verbose)
{
    uint8_t pub [32], key [32], expect [32];
    for (int i = 0; i < 32; i++)
        pub [i] = (uint8_t) i;
    uint8_t msg [WIRE_INITIATION_SIZE];
    for (int i = 0; i < WIRE_INITIATION_SIZE; i++)
        msg [i] = (uint8_t) (i * 7);
    //  mac1
    nat_hs_mac_key ("mac1----", pub, key);
    s_hex ("f9fa3b803ca12b79948213922ace1e42", msg + WIRE_INITIATION_MAC1, 16);
    assert (nat_hs_mac1_ok (key, msg, WIRE_INITIATION_MAC1));
    msg [5] ^= 1;
    assert (!nat_hs_mac1_ok (key, msg, WIRE_INITIATION_MAC1));
    msg [5] ^= 1;
    pub [0] = 1;
    uint8_t other [32];
    nat_hs_mac_key ("mac1----", pub, other);
    assert (!nat_hs_mac1_ok (other, msg, WIRE_INITIATION_MAC1));
    pub [0] = 0;
    //  The cookie key
    nat_hs_mac_key ("cookie--", pub, key);
    s_hex ("23e183f41d849970577acaafb23f2891bafd92709b873d0ae8d228560c90a648", expect, 32);
    assert (memcmp (key, expect, 32) == 0);
    //  mac2 over the message as it was (i * 7 up to mac2)
    uint8_t cookie [16];
    for (int i = 0; i < 16; i++)
        cookie [i] = (uint8_t) (100 + i);
    for (int i = 0; i < WIRE_INITIATION_SIZE; i++)
        msg [i] = (uint8_t) (i * 7);
    nat_hs_mac2 (cookie, msg, WIRE_INITIATION_MAC2, msg + WIRE_INITIATION_MAC2);
    s_hex ("e0cd73adf918977be143881943971606", expect, 16);
    assert (memcmp (msg + WIRE_INITIATION_MAC2, expect, 16) == 0);
    assert (nat_hs_mac2_ok (cookie, msg, WIRE_INITIATION_MAC2));
    cookie [3] ^= 1;
    assert (!nat_hs_mac2_ok (cookie, msg, WIRE_INITIATION_MAC2));
    if (verbose)
        printf ("  mac1, cookie key and mac2 agree with Python's hashlib\n");
}
