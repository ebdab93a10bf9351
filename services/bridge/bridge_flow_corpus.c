/*  bridge_flow_corpus: writes the seed corpus of fuzz_bridge_flow: datagrams
    sealed by the client's end under the fixed fuzz key (both ciphers), in
    order, replayed, reordered, and broken (short, bad type, reserved set,
    a flipped tag). Usage: bridge_flow_corpus DIR  (make bridge-flow-corpus) */
#include "bridge_flow_fuzz.h"
#include "../../schemas/bridge_wire.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *s_dir;

//  One seed: flags, then the datagrams, each with its 2-byte length
static void
s_write (const char *name, uint8_t flags, uint8_t dgrams [][128], const int *lens, int count)
{
    char path [4096];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    FILE *f = fopen (path, "wb");
    if (!f) {
        fprintf (stderr, "bridge_flow_corpus: cannot write %s: %s\n", path, strerror (errno));
        exit (1);
    }
    fputc (flags, f);
    for (int i = 0; i < count; i++) {
        fputc (lens [i] & 0xFF, f);
        fputc (lens [i] >> 8, f);
        fwrite (dgrams [i], 1, (size_t) lens [i], f);
    }
    fclose (f);
}

int
main (int argc, char **argv)
{
    if (argc != 2 || sodium_init () < 0) {
        fprintf (stderr, "usage: bridge_flow_corpus DIR\n");
        return 2;
    }
    s_dir = argv [1];
    mkdir (s_dir, 0755);
    uint8_t key [32];
    bridge_fuzz_key (key);
    //  AES seeds only where the CPU has it (else the target reads them as ChaCha)
    for (uint8_t flags = 0; flags <= (crypto_aead_aes256gcm_is_available () ? 1 : 0); flags++) {
        const char *c = flags ? "aes" : "chacha";
        bridge_flow_t *client = bridge_flow_new (key, BRIDGE_FLOW_CLIENT, bridge_fuzz_cipher (flags));
        uint8_t d [4][128];
        int n [4];
        n [0] = bridge_flow_seal (client, BRIDGE_WIRE_DATA, (const uint8_t *) "hello, peer", 11, d [0], 128);
        n [1] = bridge_flow_seal (client, BRIDGE_WIRE_HEARTBEAT, NULL, 0, d [1], 128);
        n [2] = bridge_flow_seal (client, BRIDGE_WIRE_HEARTBEAT_REPLY, NULL, 0, d [2], 128);
        n [3] = bridge_flow_seal (client, BRIDGE_WIRE_DATA, NULL, 0, d [3], 128);
        char name [64];
        snprintf (name, sizeof name, "%s-in-order", c);
        s_write (name, flags, d, n, 4);
        //  Reordered and replayed
        uint8_t r [4][128];
        int rn [4] = { n [3], n [0], n [3], n [0] };
        memcpy (r [0], d [3], 128); memcpy (r [1], d [0], 128);
        memcpy (r [2], d [3], 128); memcpy (r [3], d [0], 128);
        snprintf (name, sizeof name, "%s-reordered-replayed", c);
        s_write (name, flags, r, rn, 4);
        //  Broken variants of the data datagram, one each
        const struct { const char *what; int at; uint8_t xor; int len; } broken [] = {
            { "short", 0, 0, BRIDGE_WIRE_DATA_SIZE - 1 },
            { "bad-type", BRIDGE_WIRE_DATA_TYPE, 0x40, 0 },
            { "reserved", BRIDGE_WIRE_DATA_RESERVED + 2, 0x01, 0 },
            { "counter", BRIDGE_WIRE_DATA_COUNTER + 7, 0x80, 0 },
            { "tag", -1, 0x01, 0 },
        };
        for (size_t i = 0; i < sizeof broken / sizeof broken [0]; i++) {
            uint8_t b [1][128];
            memcpy (b [0], d [0], 128);
            int len = broken [i].len ? broken [i].len : n [0];
            int at = broken [i].at < 0 ? n [0] - 1 : broken [i].at;
            b [0][at] ^= broken [i].xor;
            snprintf (name, sizeof name, "%s-%s", c, broken [i].what);
            s_write (name, flags, b, &len, 1);
        }
        bridge_flow_destroy (&client);
    }
    return 0;
}
