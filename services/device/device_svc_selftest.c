/*  device_svc_selftest: the self test of dev_service, the device process's
    logic (TAP output). Separate from device_selftest because it links libbus;
    it runs the whole service on a real broker in a private network namespace. */
#include "tests/selftest.h"
#include "dev_service.h"
#include "dev_link.h"

static const selftest_t s_tests [] = {
    { "dev_link", dev_link_test },
    { "dev_service", dev_service_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
