/*  metrics_selftest: the self tests of bifrost-metrics' classes, one line each. */
#include "tests/selftest.h"
#include "metrics_http.h"
#include "metrics_render.h"
#include "metrics_service.h"

static const selftest_t s_tests [] = {
    { "metrics_http", metrics_http_test },
    { "metrics_render", metrics_render_test },
    { "metrics_service", metrics_service_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
