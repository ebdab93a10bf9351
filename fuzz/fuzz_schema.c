/*  fuzz_schema: every message body is decoded by the generic codec; the first byte
    picks the schema, the rest is the body. */
#include "bus_codec.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t count;
    const bus_schema_t *const *all = bus_schema_all (&count);
    const bus_schema_t *schema = all [data [0] % count];
    void *msg = malloc (schema->size);
    if (!msg)
        return 0;
    char err [200];
    if (bus_codec_decode (schema, data + 1, size - 1, msg, err, sizeof err) == 0) {
        uint8_t *out;
        size_t out_size;
        if (bus_codec_encode (schema, msg, &out, &out_size, err, sizeof err) == 0)
            free (out);
        json_decref (bus_codec_to_json (schema, msg));
    }
    json_decref (bus_codec_msgpack_to_json (data + 1, size - 1));
    free (msg);
    return 0;
}
