/*  rest_selftest: the self tests of every librest class. */
#include "selftest.h"
#include "rest_schema.h"
#include "rest_codec.h"

static const selftest_t s_tests [] = {
    { "rest_schema", rest_schema_test },
    { "rest_codec", rest_codec_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
