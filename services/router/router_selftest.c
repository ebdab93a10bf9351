/*  router_selftest: the self tests of bifrost-router's classes, one line each. */
#include "tests/selftest.h"
#include "router_links.h"
#include "router_service.h"
#include "router_mesh_test.h"

static const selftest_t s_tests [] = {
    { "router_links", router_links_test },
    { "router_service", router_service_test },
    { "router_mesh", router_mesh_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
