/*  tools_selftest: the self tests of the test tools' own classes (seqstat, the
    accounting of a sequenced stream), so a tool that judges other code is
    judged too. */
#include "tests/selftest.h"
#include "seqstat.h"

static const selftest_t s_tests [] = {
    { "seqstat", seqstat_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
