/*  bifrost-crypto: the key-holding service. Everything it does lives in
    crypto_service (pipes, timers, bus handlers) and crypto_node (keys, sessions);
    this main only reads the config and hangs the service on the runtime's loop. */
#include "crypto_service.h"
#include "crypto_identity.h"
#include "bus_log.h"
#include <sodium.h>

static crypto_service_t *s_service;

static int
s_check_config (bus_config_t *config, void *arg)
{
    crypto_service_check_config (config, NULL);
    return 0;
}

static int
s_setup (bus_service_t *svc, void *arg)
{
    char err [300];
    s_service = crypto_service_new (svc, err, sizeof err);
    if (!s_service) {
        bus_error ("%s", err);
        return -1;
    }
    return 0;
}

static void
s_teardown (bus_service_t *svc, void *arg)
{
    crypto_service_destroy (&s_service);
}

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
    static const bus_service_def_t def = {
        .name = "crypto",
        .summary = "holds the node key: handshakes, encrypts and decrypts the data pipes, no network",
        .check_config = s_check_config,
        .setup = s_setup,
        .teardown = s_teardown,
    };
    return bus_service_main (&def, argc, argv);
}
