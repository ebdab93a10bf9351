/*  relay_selftest: the self tests of every relay class. */
#include "tests/selftest.h"
#include "relay_proto.h"
#include "relay_cred.h"
#include "relay_table.h"
#include "relay_worker.h"

static const selftest_t s_tests [] = {
    { "relay_proto", relay_proto_test },
    { "relay_cred", relay_cred_test },
    { "relay_table", relay_table_test },
    { "relay_worker", relay_worker_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
