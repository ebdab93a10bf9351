/*  reg-testclient: the key material side of a registry client for the
    integration tests and the benchmark (the shell does the HTTP with curl):
        reg-testclient keygen                          -> "<public b64> <secret b64>"
        reg-testclient proof SECRET REGKEY NETWORK NONCE -> "<proof b64>"
        reg-testclient body SECRET REGKEY NETWORK NONCE NAME [ENDPOINT]
                                                      -> the JSON body of POST .../peers
    The proof is computed by libbus/node_keyproof, the code a node's discovery
    service uses, so the tests prove the two halves agree. */
#include "node_keyproof.h"
#include <sodium.h>
#include <stdio.h>
#include <string.h>

static int
s_b64 (const char *text, uint8_t *out, size_t size)
{
    size_t len = 0;
    if (sodium_base642bin (out, size, text, strlen (text), NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL) || len != size) {
        fprintf (stderr, "reg-testclient: '%s' is not the base64 of %zu bytes\n", text, size);
        return -1;
    }
    return 0;
}

int
main (int argc, char **argv)
{
    if (sodium_init () < 0)
        return 1;
    char out [64], out2 [64];
    if (argc == 2 && strcmp (argv [1], "keygen") == 0) {
        uint8_t pk [32], sk [32];
        crypto_box_keypair (pk, sk);
        sodium_bin2base64 (out, sizeof out, pk, 32, sodium_base64_VARIANT_ORIGINAL);
        sodium_bin2base64 (out2, sizeof out2, sk, 32, sodium_base64_VARIANT_ORIGINAL);
        printf ("%s %s\n", out, out2);
        return 0;
    }
    if (argc >= 6 && (strcmp (argv [1], "proof") == 0 || strcmp (argv [1], "body") == 0)) {
        uint8_t sk [32], pk [32], reg [32], nonce [32], proof [32];
        if (s_b64 (argv [2], sk, 32) || s_b64 (argv [3], reg, 32) || s_b64 (argv [5], nonce, 32))
            return 1;
        crypto_scalarmult_base (pk, sk);
        if (node_keyproof_compute (sk, pk, reg, argv [4], nonce, 32, proof))
            return 1;
        sodium_bin2base64 (out, sizeof out, proof, 32, sodium_base64_VARIANT_ORIGINAL);
        if (strcmp (argv [1], "proof") == 0) {
            printf ("%s\n", out);
            return 0;
        }
        if (argc < 7)
            return 1;
        sodium_bin2base64 (out2, sizeof out2, pk, 32, sodium_base64_VARIANT_ORIGINAL);
        printf ("{\"public_key\":\"%s\",\"name\":\"%s\",\"nonce\":\"%s\",\"proof\":\"%s\"", out2, argv [6], argv [5], out);
        if (argc >= 8)
            printf (",\"endpoints\":[\"%s\"]", argv [7]);
        printf ("}\n");
        return 0;
    }
    fprintf (stderr, "usage: reg-testclient keygen | proof SECRET REGKEY NETWORK NONCE |"
                     " body SECRET REGKEY NETWORK NONCE NAME [ENDPOINT]\n");
    return 2;
}
