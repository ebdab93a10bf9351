/*  node_selftest: the self tests of every libnode class. */
#include "selftest.h"
#include "node_peers.h"
#include "node_keyproof.h"
#include "node_udp_tx.h"
#include "node_replay.h"

static const selftest_t s_tests [] = {
    { "node_peers", node_peers_test },
    { "node_keyproof", node_keyproof_test },
    { "node_udp_tx", node_udp_tx_test },
    { "node_replay", node_replay_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
