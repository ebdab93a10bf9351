/*  relay_cred: relay credentials, HMAC-SHA-256 with a shared secret (why: relay_cred.h). */
#include "relay_cred.h"

#include <sodium.h>

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_LABEL "bifrost relay v1"

struct _relay_cred_t {
    crypto_auth_hmacsha256_state base;  //  the HMAC state after the key: one key setup
    uint64_t max_lifetime;
};

relay_cred_t *
relay_cred_new (const uint8_t *secret, uint64_t max_lifetime)
{
    assert (secret);
    if (sodium_init () < 0)
        return NULL;
    //  sodium_malloc: guard pages and no swap for the keyed state
    relay_cred_t *self = (relay_cred_t *) sodium_malloc (sizeof *self);
    assert (self);
    crypto_auth_hmacsha256_init (&self->base, secret, RELAY_CRED_SECRET_SIZE);
    crypto_auth_hmacsha256_update (&self->base, (const uint8_t *) S_LABEL, strlen (S_LABEL));
    self->max_lifetime = max_lifetime;
    return self;
}

void
relay_cred_destroy (relay_cred_t **self_p)
{
    if (self_p && *self_p) {
        sodium_free (*self_p);      //  zeroes it
        *self_p = NULL;
    }
}

static void
s_put64 (uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p [i] = (uint8_t) v;
}

void
relay_cred_issue (relay_cred_t *self, uint64_t network, uint64_t peer, uint64_t expiry,
                  uint8_t mac [RELAY_CRED_MAC_SIZE])
{
    assert (self && mac);
    uint8_t fields [24];
    s_put64 (fields, network);
    s_put64 (fields + 8, peer);
    s_put64 (fields + 16, expiry);
    crypto_auth_hmacsha256_state state = self->base;
    crypto_auth_hmacsha256_update (&state, fields, sizeof fields);
    crypto_auth_hmacsha256_final (&state, mac);
    sodium_memzero (&state, sizeof state);
}

relay_cred_result_t
relay_cred_verify (relay_cred_t *self, uint64_t network, uint64_t peer, uint64_t expiry,
                   const uint8_t *mac, uint64_t now)
{
    assert (self && mac);
    if (now > expiry)
        return RELAY_CRED_EXPIRED;
    if (self->max_lifetime && expiry - now > self->max_lifetime)
        return RELAY_CRED_TOO_LONG;
    uint8_t expect [RELAY_CRED_MAC_SIZE];
    relay_cred_issue (self, network, peer, expiry, expect);
    int diff = sodium_memcmp (expect, mac, RELAY_CRED_MAC_SIZE);
    sodium_memzero (expect, sizeof expect);
    return diff == 0 ? RELAY_CRED_OK : RELAY_CRED_BAD_MAC;
}

uint64_t
relay_cred_network_tag (const char *network_id)
{
    uint8_t hash [32];
    crypto_generichash (hash, sizeof hash, (const uint8_t *) network_id, strlen (network_id), NULL, 0);
    uint64_t tag = 0;
    for (int i = 7; i >= 0; i--)
        tag = (tag << 8) | hash [i];
    return tag;
}

static int
s_hex (char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int
relay_cred_peer_parse (const char *text, uint64_t *peer)
{
    if (!text || strlen (text) != 16)
        return -1;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        int d = s_hex (text [i]);
        if (d < 0)
            return -1;
        v = (v << 4) | (uint64_t) d;
    }
    *peer = v;
    return 0;
}

int
relay_cred_secret_parse (const char *text, uint8_t secret [RELAY_CRED_SECRET_SIZE])
{
    if (!text || strlen (text) != 2 * RELAY_CRED_SECRET_SIZE)
        return -1;
    for (size_t i = 0; i < RELAY_CRED_SECRET_SIZE; i++) {
        int hi = s_hex (text [2 * i]), lo = s_hex (text [2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        secret [i] = (uint8_t) (hi << 4 | lo);
    }
    return 0;
}

void
relay_cred_format (uint64_t expiry, const uint8_t mac [RELAY_CRED_MAC_SIZE],
                   char text [RELAY_CRED_TEXT_MAX])
{
    int n = snprintf (text, RELAY_CRED_TEXT_MAX, "%llu.", (unsigned long long) expiry);
    sodium_bin2hex (text + n, RELAY_CRED_TEXT_MAX - (size_t) n, mac, RELAY_CRED_MAC_SIZE);
}

relay_cred_result_t
relay_cred_parse (const char *text, uint64_t *expiry, uint8_t mac [RELAY_CRED_MAC_SIZE])
{
    if (!text)
        return RELAY_CRED_MALFORMED;
    const char *dot = strchr (text, '.');
    if (!dot || dot == text || dot - text > 20)
        return RELAY_CRED_MALFORMED;
    uint64_t v = 0;
    for (const char *p = text; p < dot; p++) {
        if (*p < '0' || *p > '9')
            return RELAY_CRED_MALFORMED;
        uint64_t d = (uint64_t) (*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return RELAY_CRED_MALFORMED;
        v = v * 10 + d;
    }
    const char *hex = dot + 1;
    if (strlen (hex) != 2 * RELAY_CRED_MAC_SIZE)
        return RELAY_CRED_MALFORMED;
    size_t bin_len = 0;
    if (sodium_hex2bin (mac, RELAY_CRED_MAC_SIZE, hex, strlen (hex), NULL, &bin_len, NULL) != 0
    ||  bin_len != RELAY_CRED_MAC_SIZE)
        return RELAY_CRED_MALFORMED;
    *expiry = v;
    return RELAY_CRED_OK;
}

const char *
relay_cred_result_name (relay_cred_result_t result)
{
    static const char *names [] = { "ok", "expired", "expiry too far ahead", "bad mac", "malformed" };
    return (unsigned) result < RELAY_CRED_RESULTS ? names [result] : "unknown";
}

//  --------------------------------------------------------------------------
//  Self test

void
relay_cred_test (bool verbose)
{
    if (verbose)
        printf (" * relay_cred: ");
    uint8_t secret [RELAY_CRED_SECRET_SIZE];
    memset (secret, 0x5a, sizeof secret);
    relay_cred_t *cred = relay_cred_new (secret, 86400);
    assert (cred);

    uint64_t net = relay_cred_network_tag ("office");
    uint64_t other_net = relay_cred_network_tag ("home");
    assert (net != other_net);
    assert (net == relay_cred_network_tag ("office"));
    uint64_t peer;
    assert (relay_cred_peer_parse ("00112233aabbccdd", &peer) == 0);
    assert (peer == 0x00112233aabbccddULL);
    assert (relay_cred_peer_parse ("00112233AABBCCDD", &peer) == 0);
    assert (relay_cred_peer_parse ("00112233aabbccd", &peer) == -1);       //  15 digits
    assert (relay_cred_peer_parse ("00112233aabbccddx", &peer) == -1);
    assert (relay_cred_peer_parse ("00112233aabbccdg", &peer) == -1);
    assert (relay_cred_peer_parse (NULL, &peer) == -1);
    uint8_t parsed [RELAY_CRED_SECRET_SIZE];
    assert (relay_cred_secret_parse ("000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F", parsed) == 0);
    assert (parsed [0] == 0 && parsed [10] == 10 && parsed [31] == 0x1f);
    assert (relay_cred_secret_parse ("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1", parsed) == -1);
    assert (relay_cred_secret_parse ("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g", parsed) == -1);
    assert (relay_cred_secret_parse (NULL, parsed) == -1);

    uint64_t now = 1800000000, expiry = now + 3600;
    uint8_t mac [RELAY_CRED_MAC_SIZE];
    relay_cred_issue (cred, net, peer, expiry, mac);

    //  Known answer, computed independently with the one-shot API
    uint8_t msg [16 + 24];
    memcpy (msg, S_LABEL, 16);
    for (int i = 0; i < 8; i++) {
        msg [16 + i] = (uint8_t) (net >> (8 * i));
        msg [24 + i] = (uint8_t) (peer >> (8 * i));
        msg [32 + i] = (uint8_t) (expiry >> (8 * i));
    }
    uint8_t expect [32];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init (&st, secret, sizeof secret);
    crypto_auth_hmacsha256_update (&st, msg, sizeof msg);
    crypto_auth_hmacsha256_final (&st, expect);
    assert (memcmp (expect, mac, 32) == 0);

    //  Valid, up to and including the expiry second
    assert (relay_cred_verify (cred, net, peer, expiry, mac, now) == RELAY_CRED_OK);
    assert (relay_cred_verify (cred, net, peer, expiry, mac, expiry) == RELAY_CRED_OK);
    //  Expired
    assert (relay_cred_verify (cred, net, peer, expiry, mac, expiry + 1) == RELAY_CRED_EXPIRED);
    //  Another network, another peer, a stretched expiry: the mac does not match
    assert (relay_cred_verify (cred, other_net, peer, expiry, mac, now) == RELAY_CRED_BAD_MAC);
    assert (relay_cred_verify (cred, net, peer + 1, expiry, mac, now) == RELAY_CRED_BAD_MAC);
    assert (relay_cred_verify (cred, net, peer, expiry + 60, mac, now) == RELAY_CRED_BAD_MAC);
    //  Forged: every single flipped bit is refused
    for (int bit = 0; bit < 256; bit++) {
        uint8_t forged [32];
        memcpy (forged, mac, 32);
        forged [bit / 8] ^= (uint8_t) (1 << (bit % 8));
        assert (relay_cred_verify (cred, net, peer, expiry, forged, now) == RELAY_CRED_BAD_MAC);
    }
    //  A credential minted with another secret
    uint8_t other_secret [RELAY_CRED_SECRET_SIZE];
    memset (other_secret, 0x5b, sizeof other_secret);
    relay_cred_t *other = relay_cred_new (other_secret, 0);
    uint8_t other_mac [32];
    relay_cred_issue (other, net, peer, expiry, other_mac);
    assert (relay_cred_verify (cred, net, peer, expiry, other_mac, now) == RELAY_CRED_BAD_MAC);
    //  The same issuer without a lifetime limit accepts a far expiry; ours does not
    relay_cred_issue (other, net, peer, now + 10 * 86400, other_mac);
    assert (relay_cred_verify (other, net, peer, now + 10 * 86400, other_mac, now) == RELAY_CRED_OK);
    relay_cred_issue (cred, net, peer, now + 10 * 86400, other_mac);
    assert (relay_cred_verify (cred, net, peer, now + 10 * 86400, other_mac, now) == RELAY_CRED_TOO_LONG);
    relay_cred_destroy (&other);
    assert (other == NULL);

    //  Text form, and truncated or damaged texts
    char text [RELAY_CRED_TEXT_MAX];
    relay_cred_format (expiry, mac, text);
    assert (strlen (text) == 10 + 1 + 64);
    uint64_t back_expiry;
    uint8_t back_mac [32];
    assert (relay_cred_parse (text, &back_expiry, back_mac) == RELAY_CRED_OK);
    assert (back_expiry == expiry && memcmp (back_mac, mac, 32) == 0);
    char cut [RELAY_CRED_TEXT_MAX];
    for (size_t len = 0; len < strlen (text); len++) {
        memcpy (cut, text, len);
        cut [len] = 0;
        assert (relay_cred_parse (cut, &back_expiry, back_mac) == RELAY_CRED_MALFORMED);
    }
    assert (relay_cred_parse ("x.00", &back_expiry, back_mac) == RELAY_CRED_MALFORMED);
    assert (relay_cred_parse ("99999999999999999999.", &back_expiry, back_mac) == RELAY_CRED_MALFORMED);
    assert (relay_cred_parse (NULL, &back_expiry, back_mac) == RELAY_CRED_MALFORMED);
    snprintf (cut, sizeof cut, "%s", text);
    cut [20] = 'z';
    assert (relay_cred_parse (cut, &back_expiry, back_mac) == RELAY_CRED_MALFORMED);
    assert (strcmp (relay_cred_result_name (RELAY_CRED_EXPIRED), "expired") == 0);

    relay_cred_destroy (&cred);
    assert (cred == NULL);
    relay_cred_destroy (&cred);
    if (verbose)
        printf ("OK\n");
}
