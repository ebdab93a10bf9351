/*  relay_lib_selftest: the self tests of librelay (the relay's wire messages and
    its credential). */
#include "tests/selftest.h"
#include "relay_proto.h"
#include "relay_cred.h"
#include "relay_stream.h"

static const selftest_t s_tests [] = {
    { "relay_proto", relay_proto_test },
    { "relay_cred", relay_cred_test },
    { "relay_stream", relay_stream_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
