/*  crypto_selftest: the self tests of every crypto class (TAP, one line each). */
#include "../../tests/selftest.h"
#include "crypto_wire.h"
#include "crypto_allowed.h"
#include "crypto_identity.h"
#include "crypto_noise.h"
#include "crypto_session.h"
#include "crypto_node.h"
#include "crypto_anycast.h"
#include "crypto_flood.h"
#include "crypto_service.h"

static const selftest_t s_tests [] = {
    { "crypto_wire", crypto_wire_test },
    { "crypto_allowed", crypto_allowed_test },
    { "crypto_identity", crypto_identity_test },
    { "crypto_noise", crypto_noise_test },
    { "crypto_session", crypto_session_test },
    { "crypto_node", crypto_node_test },
    { "crypto_anycast", crypto_anycast_test },
    { "crypto_flood", crypto_flood_test },
    { "crypto_service", crypto_service_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
