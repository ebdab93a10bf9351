/*  bifrost-crypto: the key-holding service as a process of its own. Everything
    it does lives in crypto_service (pipes, timers, bus handlers, and the program
    part crypto_service_def) and crypto_node (keys, sessions); this main adds
    only --genkey. bifrost-tunnel runs the same service with device in one
    process (services/tunnel/). */
#include "crypto_service.h"
#include "crypto_identity.h"
#include "bus_log.h"
#include <sodium.h>

//  `bifrost-crypto --genkey FILE`: creates the node key (mode 0600; an existing
//  file is kept) and prints its public key, so peers can be configured before the
//  node first starts, the way `wg genkey | wg pubkey` is used.
static int
s_genkey (const char *path)
{
    if (sodium_init () < 0)
        return 1;
    char err [300];
    crypto_identity_t *identity = crypto_identity_load (path, true, err, sizeof err);
    if (!identity) {
        fprintf (stderr, "bifrost-crypto: %s\n", err);
        return 1;
    }
    char text [CRYPTO_KEY_BASE64_SIZE];
    crypto_identity_public_base64 (identity, text);
    printf ("%s\n", text);
    crypto_identity_destroy (&identity);
    return 0;
}

int
main (int argc, char **argv)
{
    if (argc == 3 && strcmp (argv [1], "--genkey") == 0)
        return s_genkey (argv [2]);
    return bus_service_main (&crypto_service_def, argc, argv);
}
