/*  dev_mac: stable MAC addresses from node keys (see dev_mac.h). */
#include "dev_mac.h"

#include <assert.h>
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

//  Domain separation: the same key hashed for another purpose never yields
//  these bytes. 16 bytes = crypto_generichash_KEYBYTES_MIN.
static const uint8_t s_domain [16] = "bifrost-dev-mac1";

void
dev_mac_from_key (const uint8_t key [32], uint8_t mac [6])
{
    uint8_t hash [crypto_generichash_BYTES_MIN];
    crypto_generichash (hash, sizeof hash, key, 32, s_domain, sizeof s_domain);
    memcpy (mac, hash, 6);
    mac [0] = (uint8_t) ((mac [0] | 0x02) & ~0x01);
}

static int
s_hex (int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int
dev_mac_parse (const char *text, uint8_t mac [6], char *err, size_t errsize)
{
    if (!text || strlen (text) != 17) {
        if (err && errsize)
            snprintf (err, errsize, "\"%.40s\" is not a MAC address (expected 6 hex bytes like 02:1a:2b:3c:4d:5e)",
                      text ? text : "(null)");
        return -1;
    }
    uint8_t out [6];
    for (int i = 0; i < 6; i++) {
        int hi = s_hex (text [i * 3]), lo = s_hex (text [i * 3 + 1]);
        char sep = i < 5 ? text [i * 3 + 2] : ':';
        if (hi < 0 || lo < 0 || (sep != ':' && sep != '-')) {
            if (err && errsize)
                snprintf (err, errsize, "\"%s\" is not a MAC address: byte %d is not two hex digits "
                          "followed by ':'", text, i + 1);
            return -1;
        }
        out [i] = (uint8_t) (hi << 4 | lo);
    }
    memcpy (mac, out, 6);
    return 0;
}

void
dev_mac_format (const uint8_t mac [6], char text [DEV_MAC_TEXT])
{
    snprintf (text, DEV_MAC_TEXT, "%02x:%02x:%02x:%02x:%02x:%02x",
              mac [0], mac [1], mac [2], mac [3], mac [4], mac [5]);
}

bool
dev_mac_is_multicast (const uint8_t mac [6])
{
    return mac [0] & 1;
}

bool
dev_mac_is_broadcast (const uint8_t mac [6])
{
    return memcmp (mac, "\xff\xff\xff\xff\xff\xff", 6) == 0;
}

void
dev_mac_test (bool verbose)
{
    assert (sodium_init () >= 0);
    uint8_t key [32], mac [6], again [6], other [6];
    memset (key, 0x42, sizeof key);
    dev_mac_from_key (key, mac);
    dev_mac_from_key (key, again);
    assert (memcmp (mac, again, 6) == 0);           //  stable
    assert ((mac [0] & 0x02) && !(mac [0] & 0x01)); //  local, unicast
    key [31] ^= 1;
    dev_mac_from_key (key, other);
    assert (memcmp (mac, other, 6) != 0);           //  depends on the key
    //  Known answer, so the derivation never changes silently between versions
    //  (a change would break every peer's learned table after an upgrade)
    memset (key, 0, sizeof key);
    dev_mac_from_key (key, mac);
    char text [DEV_MAC_TEXT];
    dev_mac_format (mac, text);
    if (verbose)
        printf ("  mac for the zero key: %s\n", text);
    assert (strcmp (text, "9e:1c:77:88:6f:c8") == 0);
    //  Bits hold over many keys
    for (int i = 0; i < 256; i++) {
        key [0] = (uint8_t) i;
        dev_mac_from_key (key, mac);
        assert ((mac [0] & 3) == 2);
    }

    char err [120];
    assert (dev_mac_parse ("02:1A:2b:3c:4d:5e", mac, err, sizeof err) == 0);
    assert (memcmp (mac, "\x02\x1a\x2b\x3c\x4d\x5e", 6) == 0);
    dev_mac_format (mac, text);
    assert (strcmp (text, "02:1a:2b:3c:4d:5e") == 0);
    assert (dev_mac_parse ("02-1a-2b-3c-4d-5e", mac, err, sizeof err) == 0);
    const char *bad [] = { "", "02:1a:2b:3c:4d", "02:1a:2b:3c:4d:5e:", "02:1a:2b:3c:4d:5g",
                           "021a:2b:3c:4d:5e:", "02:1a:2b:3c:4d 5e", " 2:1a:2b:3c:4d:5e", NULL };
    for (int i = 0; bad [i]; i++) {
        memset (mac, 0xee, 6);
        err [0] = 0;
        assert (dev_mac_parse (bad [i], mac, err, sizeof err) == -1);
        assert (strstr (err, "not a MAC address"));
        assert (memcmp (mac, "\xee\xee\xee\xee\xee\xee", 6) == 0);
        if (verbose)
            printf ("  %s\n", err);
    }
    assert (dev_mac_parse (NULL, mac, err, sizeof err) == -1);
    assert (dev_mac_is_broadcast ((const uint8_t *) "\xff\xff\xff\xff\xff\xff"));
    assert (dev_mac_is_multicast ((const uint8_t *) "\xff\xff\xff\xff\xff\xff"));
    assert (dev_mac_is_multicast ((const uint8_t *) "\x33\x33\x00\x00\x00\x01"));
    assert (!dev_mac_is_multicast ((const uint8_t *) "\x02\x00\x00\x00\x00\x01"));
    assert (!dev_mac_is_broadcast ((const uint8_t *) "\x02\x00\x00\x00\x00\x01"));
}
