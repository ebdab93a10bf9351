/*  relay_selftest: the self tests of every relay worker class (the wire messages
    and the credential are librelay's, tests/relay_lib_selftest). */
#include "tests/selftest.h"
#include "relay_table.h"
#include "relay_worker.h"
#include "relay_proxy.h"
#include "relay_tcp.h"
#include "relay_wss.h"
#include "relay_service.h"

static const selftest_t s_tests [] = {
    { "relay_table", relay_table_test },
    { "relay_worker", relay_worker_test },
    { "relay_proxy", relay_proxy_test },
    { "relay_tcp", relay_tcp_test },
    { "relay_wss", relay_wss_test },
    { "relay_service", relay_service_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
