/*  discovery_selftest: the self tests of every discovery class. */
#include "tests/selftest.h"
#include "disc_config.h"
#include "disc_backoff.h"
#include "disc_json.h"
#include "disc_peers.h"
#include "disc_paths.h"
#include "disc_http.h"
#include "disc_service.h"

static const selftest_t s_tests [] = {
    { "disc_config", disc_config_test },
    { "disc_backoff", disc_backoff_test },
    { "disc_json", disc_json_test },
    { "disc_peers", disc_peers_test },
    { "disc_paths", disc_paths_test },
    { "disc_http", disc_http_test },
    { "disc_service", disc_service_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
