/*  bus_selftest: the self tests of every libbus class. */
#include "selftest.h"
#include "bus_schema.h"
#include "bus_codec.h"
#include "bus_envelope.h"

static const selftest_t s_tests [] = {
    { "bus_schema", bus_schema_test },
    { "bus_codec", bus_codec_test },
    { "bus_envelope", bus_envelope_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
