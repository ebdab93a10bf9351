/*  ice_selftest: the self tests of libice (the candidate parser and the ICE
    agent with real libnice on loopback). */
#include "tests/selftest.h"
#include "ice_cand.h"
#include "ice_agent.h"

static const selftest_t s_tests [] = {
    { "ice_cand", ice_cand_test },
    { "ice_agent", ice_agent_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
