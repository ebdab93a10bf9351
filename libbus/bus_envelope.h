/*  bus_envelope: the header every control message and event carries on the bus
    (to, from, type, correlation id) around a msgpack body.

    On the wire one envelope is one ZeroMQ frame holding a msgpack array
    [version=1, to, from, type, corr, body], body being the bin-wrapped msgpack map
    of the schema named by type. One frame, so the broker routes with one decode and
    a tap listener sees the whole message in one piece. */
#ifndef BUS_ENVELOPE_H_INCLUDED
#define BUS_ENVELOPE_H_INCLUDED

#include "bus_codec.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BUS_ENVELOPE_VERSION    1
#define BUS_NAME_MAX            48          //  to, from: service or instance name
#define BUS_TYPE_MAX            48          //  "sup.status.reply"
#define BUS_BODY_MAX            (512 * 1024)
#define BUS_ENVELOPE_MAX        (BUS_BODY_MAX + 256)

typedef struct _bus_envelope_t bus_envelope_t;

//  Creates an envelope with no body. to may be "" (an event). Names are truncated
//  to their maximum; use bus_name_valid to check user input first.
bus_envelope_t *bus_envelope_new (const char *to, const char *from, const char *type, uint64_t corr);
void bus_envelope_destroy (bus_envelope_t **self_p);

const char *bus_envelope_to (bus_envelope_t *self);
const char *bus_envelope_from (bus_envelope_t *self);
const char *bus_envelope_type (bus_envelope_t *self);
uint64_t bus_envelope_corr (bus_envelope_t *self);
const uint8_t *bus_envelope_body (bus_envelope_t *self, size_t *size);
void bus_envelope_set_to (bus_envelope_t *self, const char *to);
void bus_envelope_set_from (bus_envelope_t *self, const char *from);

//  Sets the body from a schema struct and the type from the schema. 0 or -1 + err.
int bus_envelope_set_msg (bus_envelope_t *self, const bus_schema_t *schema, const void *msg,
                          char *err, size_t errsize);
//  Decodes the body into msg; fails when the type is not the schema's, or the body is bad.
int bus_envelope_get_msg (bus_envelope_t *self, const bus_schema_t *schema, void *msg,
                          char *err, size_t errsize);
//  Sets a raw body (copied).
int bus_envelope_set_body (bus_envelope_t *self, const uint8_t *body, size_t size);

//  Encodes to one malloc'd buffer. 0 or -1.
int bus_envelope_encode (bus_envelope_t *self, uint8_t **data, size_t *size);
//  Decodes untrusted bytes; NULL with a clear err when anything is wrong.
bus_envelope_t *bus_envelope_decode (const uint8_t *data, size_t size, char *err, size_t errsize);

//  {"to","from","type","corr","body"} with the body decoded by its schema when the
//  type is known and valid, generically otherwise, and an "error" key if undecodable.
json_t *bus_envelope_to_json (bus_envelope_t *self);

//  True for a valid service or instance name: 1..BUS_NAME_MAX of [A-Za-z0-9._-].
bool bus_name_valid (const char *name);

void bus_envelope_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
