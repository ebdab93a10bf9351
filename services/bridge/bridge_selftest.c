/*  bridge_selftest: the self tests of bifrost-bridge's classes, one line each. */
#include "tests/selftest.h"
#include "bridge_params.h"
#include "bridge_status.h"
#include "bridge_flow.h"
#include "bridge_rate.h"
#include "bridge_link.h"
#include "bridge_server.h"
#include "bridge_service.h"
#include "bridge_peer.h"
#include "bridge_far.h"
#include "bridge_peers.h"

static const selftest_t s_tests [] = {
    { "bridge_params", bridge_params_test },
    { "bridge_status", bridge_status_test },
    { "bridge_flow", bridge_flow_test },
    { "bridge_rate", bridge_rate_test },
    { "bridge_far", bridge_far_test },
    { "bridge_link", bridge_link_test },
    { "bridge_peers", bridge_peers_test },
    { "bridge_service", bridge_service_test },
    { "bridge_server", bridge_server_test },
    { "bridge_peer", bridge_peer_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
