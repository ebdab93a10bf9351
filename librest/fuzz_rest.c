/*  fuzz_rest: every REST body's decoder; the first byte picks the body, the rest is
    the JSON text. What decodes must encode, and the encoding must decode again
    (what the registry sends, discovery must read, and back). */
#include "rest_codec.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  Decodes text as body, encodes what it got and decodes that again
static void
s_decode_twice (const rest_schema_t *body, const char *text, size_t size)
{
    void *first = calloc (2, body->size);
    assert (first);
    void *second = (uint8_t *) first + body->size;
    char err [300];
    if (rest_decode (body, text, size, first, err, sizeof err) == 0) {
        char *again = rest_encode_text (body, first);
        int rc = rest_decode (body, again, strlen (again), second, err, sizeof err);
        assert (rc == 0);
        rest_free (body, second);
        rest_free (body, first);
        free (again);
    }
    free (first);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    size_t bodies;
    const rest_schema_t *const *all = rest_schema_all (&bodies);
    if (size > 0)
        s_decode_twice (all [data [0] % bodies], (const char *) data + 1, size - 1);
    return 0;
}
