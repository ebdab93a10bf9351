/*  portmap_selftest: the self test of libportmap (port mapping through UPnP-IGD
    and NAT-PMP), against a fake NAT-PMP gateway in a private network namespace. */
#include "tests/selftest.h"
#include "portmap.h"

static const selftest_t s_tests [] = {
    { "portmap", portmap_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
