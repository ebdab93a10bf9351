/*  ctl_selftest: the self tests of bifrostctl's join and leave pieces. */
#include "tests/selftest.h"
#include "ctl_http.h"
#include "ctl_join.h"

static const selftest_t s_tests [] = {
    { "ctl_http", ctl_http_test },
    { "ctl_join", ctl_join_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
