/*  coturn_selftest: the self tests of bifrost-coturn's classes. */
#include "tests/selftest.h"
#include "coturn_conf.h"
#include "coturn_run.h"

static const selftest_t s_tests [] = {
    { "coturn_conf", coturn_conf_test },
    { "coturn_run", coturn_run_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
