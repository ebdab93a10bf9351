/*  crypto_corpus: writes the seed corpora of fuzz_handshake and fuzz_data
    (valid messages under the fixed fuzz keys, plus a few broken ones).
    Usage: crypto_corpus DIR   (writes DIR/fuzz_handshake/ and DIR/fuzz_data/) */
#include "crypto_fuzz.h"
#include "crypto_flood.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static void
s_write (const char *dir, const char *name, uint8_t role, const uint8_t *data, size_t size)
{
    char path [4096];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen (path, "wb");
    if (!f) {
        fprintf (stderr, "crypto_corpus: cannot write %s: %s\n", path, strerror (errno));
        exit (1);
    }
    if (role != 0xFF)
        fputc (role, f);
    fwrite (data, 1, size, f);
    fclose (f);
}

static uint8_t *
s_any (void *arg, const uint8_t key [32])
{
    return (uint8_t *) arg;
}

int
main (int argc, char **argv)
{
    if (argc != 2) {
        fprintf (stderr, "usage: crypto_corpus DIR\n");
        return 2;
    }
    char hs [4096], dd [4096];
    snprintf (hs, sizeof hs, "%s/fuzz_handshake", argv [1]);
    snprintf (dd, sizeof dd, "%s/fuzz_data", argv [1]);
    mkdir (argv [1], 0755);
    mkdir (hs, 0755);
    mkdir (dd, 0755);

    //  Handshake: the valid initiation and response, and damaged variants
    crypto_identity_t *ini = crypto_fuzz_identity (0x10), *res = crypto_fuzz_identity (0x50);
    uint8_t m1 [WIRE_INITIATION_SIZE], m2 [WIRE_RESPONSE_SIZE];
    crypto_noise_t *i = crypto_fuzz_initiator (ini, res, m1);
    crypto_noise_t *r = crypto_noise_new_responder (res, NULL);
    crypto_fuzz_responder_ephemeral (r);
    uint8_t stamp [12] = { 0 };
    char err [200];
    crypto_keys_t keys;
    if (crypto_noise_read_initiation (r, m1, sizeof m1, s_any, stamp, NULL, err, sizeof err)
    ||  crypto_noise_write_response (r, CRYPTO_FUZZ_INDEX_R, m2, &keys)
    ||  crypto_noise_read_response (i, m2, sizeof m2, &keys, err, sizeof err)) {
        fprintf (stderr, "crypto_corpus: handshake failed: %s\n", err);
        return 1;
    }
    s_write (hs, "initiation", 0, m1, sizeof m1);
    s_write (hs, "response", 1, m2, sizeof m2);
    s_write (hs, "initiation-short", 0, m1, sizeof m1 - 1);
    s_write (hs, "response-as-initiation", 0, m2, sizeof m2);
    s_write (hs, "initiation-as-response", 1, m1, sizeof m1);
    s_write (hs, "empty", 0, m1, 0);
    const size_t spots [] = { 0, 2, 5, 9, 45, 90, 120, 140 };
    for (size_t s = 0; s < sizeof spots / sizeof spots [0]; s++) {
        char name [64];
        uint8_t copy [WIRE_INITIATION_SIZE];
        memcpy (copy, m1, sizeof m1);
        copy [spots [s]] ^= 0x04;
        snprintf (name, sizeof name, "initiation-flip-%zu", spots [s]);
        s_write (hs, name, 2, copy, sizeof m1);
        if (spots [s] < sizeof m2) {
            memcpy (copy, m2, sizeof m2);
            copy [spots [s]] ^= 0x04;
            snprintf (name, sizeof name, "response-flip-%zu", spots [s]);
            s_write (hs, name, 3, copy, sizeof m2);
        }
    }
    //  The last byte of every field schemas/wire.def declares for the two
    //  handshake messages, flipped: each field's end is where an off-by-one in
    //  the codec would show
    for (size_t f = 0; f < WIRE_COUNT (wire_fields); f++) {
        const wire_decl_t *field = &wire_fields [f];
        bool is_init = strcmp (field->message, "INITIATION") == 0;
        if ((!is_init && strcmp (field->message, "RESPONSE")) || field->size == 0)
            continue;
        uint8_t copy [WIRE_INITIATION_SIZE];
        size_t size = is_init ? sizeof m1 : sizeof m2;
        memcpy (copy, is_init ? m1 : m2, size);
        copy [field->value + field->size - 1] ^= 0x01;
        char name [64];
        snprintf (name, sizeof name, "%s-end-of-%s", is_init ? "initiation" : "response", field->id);
        for (char *c = name; *c; c++)
            *c = *c == '_' ? '-' : (char) tolower ((unsigned char) *c);
        s_write (hs, name, is_init ? 0 : 1, copy, size);
    }
    //  A cookie reply (shaped as nat lets it through): crypto must refuse it in both roles
    uint8_t cookie [WIRE_COOKIE_SIZE] = { WIRE_COOKIE };
    s_write (hs, "cookie-as-initiation", 0, cookie, sizeof cookie);
    s_write (hs, "cookie-as-response", 1, cookie, sizeof cookie);
    crypto_noise_destroy (&i);
    crypto_noise_destroy (&r);

    //  Data: valid packets of many sizes under the fixed keys, keepalive, damage
    crypto_session_t *tx = crypto_session_new (NULL);
    crypto_fuzz_keys (&keys, true);
    crypto_session_install (tx, &keys, CRYPTO_FUZZ_NOW);
    const size_t sizes [] = { 0, 1, 20, 39, 40, 60, 100, 576, 1280, 1420 };
    uint8_t buf [1500];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes [0]; s++) {
        size_t len = sizes [s];
        memset (buf, 0, sizeof buf);
        uint8_t *p = buf + WIRE_DATA_HEADER;
        if (len >= 20 && len < 40) {
            p [0] = 0x45;
            p [12] = 10; p [13] = 100; p [14] = 0; p [15] = (uint8_t) (s % 2 ? 1 : 9);
        }
        else
        if (len >= 40) {
            p [0] = 0x60;
            p [8] = 0xfd; p [10] = 0x01; p [17] = (uint8_t) s;
        }
        size_t wire = 0;
        if (crypto_session_encrypt (tx, buf, len, sizeof buf, CRYPTO_FUZZ_NOW, &wire))
            return 1;
        char name [64];
        snprintf (name, sizeof name, "data-%zu", len);
        s_write (dd, name, 0xFF, buf, wire);
        if (len == 100) {
            buf [wire - 1] ^= 1;
            s_write (dd, "data-bad-tag", 0xFF, buf, wire);
            buf [3] = 1;
            s_write (dd, "data-reserved", 0xFF, buf, wire);
            s_write (dd, "data-short", 0xFF, buf, 31);
        }
    }
    //  Route announcements in the session (wire type 6: the header is associated data)
    const size_t announce_sizes [] = { 1, 24, 1400 };
    for (size_t s = 0; s < sizeof announce_sizes / sizeof announce_sizes [0]; s++) {
        size_t len = announce_sizes [s], wire = 0;
        memset (buf, 0x30, sizeof buf);
        if (crypto_session_encrypt_type (tx, WIRE_ANNOUNCE, buf, len, sizeof buf, CRYPTO_FUZZ_NOW, &wire))
            return 1;
        char name [64];
        snprintf (name, sizeof name, "announce-%zu", len);
        s_write (dd, name, 0xFF, buf, wire);
        if (len == 24) {
            buf [0] = WIRE_DATA;            //  an announcement relabelled data: does not open
            s_write (dd, "announce-as-data", 0xFF, buf, wire);
        }
    }
    //  Flood frames in the session (wire type 7): a flood header (origin 0xA0,
    //  seqno 7, TTL 8) and an IPv4 packet from 10.100.0.1 (the fuzz peer's
    //  address), then one with a bad header
    const size_t flood_sizes [] = { 28, 200 };
    for (size_t s = 0; s < sizeof flood_sizes / sizeof flood_sizes [0]; s++) {
        size_t len = flood_sizes [s], wire = 0;
        memset (buf, 0, sizeof buf);
        uint8_t *plain = buf + WIRE_DATA_HEADER;
        crypto_flood_header_t header = { .origin = 0xA0, .seqno = 7, .ttl = 8 };
        crypto_flood_header_encode (&header, plain);
        uint8_t *ip = plain + WIRE_FLOOD_HEADER;
        ip [0] = 0x45;
        ip [2] = (uint8_t) ((len - WIRE_FLOOD_HEADER) >> 8);
        ip [3] = (uint8_t) (len - WIRE_FLOOD_HEADER);
        ip [8] = 64;
        ip [9] = 17;
        ip [12] = 10, ip [13] = 100, ip [14] = 0, ip [15] = 1;
        ip [16] = 10, ip [17] = 100, ip [18] = 0, ip [19] = 255;
        if (s == 0)
            plain [WIRE_FLOOD_TTL - WIRE_FLOOD_ORIGIN] = 0;     //  TTL 0: refused by the header's codec
        if (crypto_session_encrypt_type (tx, WIRE_FLOOD, buf, len, sizeof buf, CRYPTO_FUZZ_NOW, &wire))
            return 1;
        char name [64];
        snprintf (name, sizeof name, s == 0 ? "flood-ttl0-%zu" : "flood-%zu", len);
        s_write (dd, name, 0xFF, buf, wire);
    }
    crypto_session_destroy (&tx);
    crypto_identity_destroy (&ini);
    crypto_identity_destroy (&res);
    printf ("crypto_corpus: seeds written to %s and %s\n", hs, dd);
    return 0;
}

