/*  fuzz_data: bytes from the internet as a data packet (or a route
    announcement in the session) for an established session (fixed keys), then
    the anti-spoofing check on data that decrypts. */
#include "crypto_fuzz.h"
#include "crypto_allowed.h"
#include "crypto_flood.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static crypto_allowed_t *allowed;
    if (!allowed) {
        allowed = crypto_allowed_new ();
        crypto_allowed_add (allowed, "10.100.0.1/32", NULL, 0);
        crypto_allowed_add (allowed, "fd00:100::/64", NULL, 0);
    }
    crypto_session_t *session = crypto_session_new (NULL);
    crypto_keys_t keys;
    crypto_fuzz_keys (&keys, false);
    crypto_session_install (session, &keys, CRYPTO_FUZZ_NOW);
    //  Decrypt works in place: give it an exact-size copy
    uint8_t *buf = malloc (size ? size : 1);
    if (buf) {
        memcpy (buf, data, size);
        size_t plain = 0;
        //  (a route announcement, type 6, goes to the router, not the device;
        //  a flood frame, type 7, has its header read, then its packet checked)
        crypto_flood_header_t flood;
        if (crypto_session_decrypt (session, buf, size, CRYPTO_FUZZ_NOW, &plain) == CRYPTO_SESSION_OK) {
            if (buf [0] == WIRE_DATA)
                crypto_allowed_packet (allowed, buf + WIRE_DATA_HEADER, plain);
            else
            if (buf [0] == WIRE_FLOOD && crypto_flood_header_decode (buf + WIRE_DATA_HEADER, plain, &flood) == 0)
                crypto_allowed_packet (allowed, buf + WIRE_DATA_HEADER + WIRE_FLOOD_HEADER, plain - WIRE_FLOOD_HEADER);
        }
        free (buf);
    }
    crypto_session_destroy (&session);
    return 0;
}
