/*  bridge_flow_selftest: TEMPORARY runner of bridge_flow_test for the branch
    h-bridge-b, until the lead folds bridge_flow into services/bridge's own
    bridge_selftest.c (written on a parallel branch); then this file and
    Makemodule-flow.am go. */
#include "../../tests/selftest.h"
#include "bridge_flow.h"

static const selftest_t s_tests [] = {
    { "bridge_flow", bridge_flow_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
