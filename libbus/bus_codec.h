/*  bus_codec: one generic msgpack codec for every schema, plus the JSON the tap
    prints. Untrusted bytes are walked and bounded (bus_codec_check) before msgpack-c
    sees them, because msgpack-c allocates a container's elements before reading them:
    a 5-byte array header would otherwise ask for gigabytes. */
#ifndef BUS_CODEC_H_INCLUDED
#define BUS_CODEC_H_INCLUDED

#include "bus_schema.h"
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BUS_CODEC_MAX_DEPTH 8

//  Checks that data is exactly one well-formed msgpack object, no deeper than
//  max_depth, whose container counts fit in the bytes that follow. 0 or -1 + err.
int bus_codec_check (const uint8_t *data, size_t size, int max_depth, char *err, size_t errsize);

//  Encodes msg, a struct described by schema, as a msgpack map. The result is
//  malloc'd; the caller frees it. Returns 0, or -1 with err when a length or count
//  in msg exceeds its declared bound.
int bus_codec_encode (const bus_schema_t *schema, const void *msg,
                      uint8_t **data, size_t *size, char *err, size_t errsize);

//  Decodes untrusted bytes into msg (zeroed first). Returns 0, or -1 with a message
//  naming the field and what was wrong. Never crashes, never allocates unboundedly.
int bus_codec_decode (const bus_schema_t *schema, const uint8_t *data, size_t size,
                      void *msg, char *err, size_t errsize);

//  JSON object of msg; binary fields are rendered as lowercase hex.
json_t *bus_codec_to_json (const bus_schema_t *schema, const void *msg);

//  JSON of arbitrary (checked) msgpack, for bodies of unknown type. NULL if invalid.
json_t *bus_codec_msgpack_to_json (const uint8_t *data, size_t size);

void bus_codec_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
