/*  fuzz_envelope: the broker decodes every frame a local process sends it; nothing
    in those bytes may crash it, leak, or allocate without bound. */
#include "bus_envelope.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char err [160];
    bus_envelope_t *env = bus_envelope_decode (data, size, err, sizeof err);
    if (env) {
        //  What decodes must re-encode, and render for the tap
        uint8_t *out;
        size_t out_size;
        if (bus_envelope_encode (env, &out, &out_size) == 0)
            free (out);
        json_t *j = bus_envelope_to_json (env);
        char *text = json_dumps (j, JSON_COMPACT);
        free (text);
        json_decref (j);
        bus_envelope_destroy (&env);
    }
    return 0;
}
