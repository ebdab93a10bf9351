/*  fuzz_rest: every REST body's decoder; the first byte picks the body, the rest is
    the JSON text. What decodes must encode, and the encoding must decode again
    (what the registry sends, discovery must read, and back). */
#include "rest_codec.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t count;
    const rest_schema_t *const *all = rest_schema_all (&count);
    const rest_schema_t *schema = all [data [0] % count];
    void *body = malloc (schema->size), *again = malloc (schema->size);
    if (!body || !again) {
        free (body);
        free (again);
        return 0;
    }
    char err [300];
    if (rest_decode (schema, (const char *) data + 1, size - 1, body, err, sizeof err) == 0) {
        char *text = rest_encode_text (schema, body);
        int rc = rest_decode (schema, text, strlen (text), again, err, sizeof err);
        assert (rc == 0);
        rest_free (schema, again);
        free (text);
        rest_free (schema, body);
    }
    free (body);
    free (again);
    return 0;
}
