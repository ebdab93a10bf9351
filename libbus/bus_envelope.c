/*  bus_envelope: encode and decode of the bus header. */
#include "bus_envelope.h"

#include <assert.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct _bus_envelope_t {
    char to [BUS_NAME_MAX + 1];
    char from [BUS_NAME_MAX + 1];
    char type [BUS_TYPE_MAX + 1];
    uint64_t corr;
    uint8_t *body;
    size_t body_size;
};

static void
s_copy (char *dest, size_t cap, const char *src)
{
    size_t n = src ? strnlen (src, cap - 1) : 0;
    memcpy (dest, src ? src : "", n);
    dest [n] = 0;
}

bus_envelope_t *
bus_envelope_new (const char *to, const char *from, const char *type, uint64_t corr)
{
    bus_envelope_t *self = (bus_envelope_t *) calloc (1, sizeof (bus_envelope_t));
    assert (self);
    s_copy (self->to, sizeof self->to, to);
    s_copy (self->from, sizeof self->from, from);
    s_copy (self->type, sizeof self->type, type);
    self->corr = corr;
    return self;
}

void
bus_envelope_destroy (bus_envelope_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->body);
        free (*self_p);
        *self_p = NULL;
    }
}

const char *bus_envelope_to (bus_envelope_t *self) { return self->to; }
const char *bus_envelope_from (bus_envelope_t *self) { return self->from; }
const char *bus_envelope_type (bus_envelope_t *self) { return self->type; }
uint64_t bus_envelope_corr (bus_envelope_t *self) { return self->corr; }
void bus_envelope_set_to (bus_envelope_t *self, const char *to) { s_copy (self->to, sizeof self->to, to); }
void bus_envelope_set_from (bus_envelope_t *self, const char *from) { s_copy (self->from, sizeof self->from, from); }

const uint8_t *
bus_envelope_body (bus_envelope_t *self, size_t *size)
{
    if (size)
        *size = self->body_size;
    return self->body;
}

int
bus_envelope_set_body (bus_envelope_t *self, const uint8_t *body, size_t size)
{
    if (size > BUS_BODY_MAX)
        return -1;
    uint8_t *copy = NULL;
    if (size) {
        copy = (uint8_t *) malloc (size);
        assert (copy);
        memcpy (copy, body, size);
    }
    free (self->body);
    self->body = copy;
    self->body_size = size;
    return 0;
}

int
bus_envelope_set_msg (bus_envelope_t *self, const bus_schema_t *schema, const void *msg,
                      char *err, size_t errsize)
{
    assert (schema->type);
    uint8_t *data;
    size_t size;
    if (bus_codec_encode (schema, msg, &data, &size, err, errsize))
        return -1;
    if (size > BUS_BODY_MAX) {
        free (data);
        snprintf (err, errsize, "%s: body of %zu bytes exceeds %d", schema->type, size, BUS_BODY_MAX);
        return -1;
    }
    free (self->body);
    self->body = data;
    self->body_size = size;
    s_copy (self->type, sizeof self->type, schema->type);
    return 0;
}

int
bus_envelope_get_msg (bus_envelope_t *self, const bus_schema_t *schema, void *msg,
                      char *err, size_t errsize)
{
    if (!schema->type || strcmp (schema->type, self->type) != 0) {
        memset (msg, 0, schema->size);
        snprintf (err, errsize, "expected type '%s', got '%s'", schema->type ? schema->type : "?", self->type);
        return -1;
    }
    return bus_codec_decode (schema, self->body, self->body_size, msg, err, errsize);
}

bool
bus_name_valid (const char *name)
{
    if (!name || !*name)
        return false;
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        if (n >= BUS_NAME_MAX)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        ||  c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

int
bus_envelope_encode (bus_envelope_t *self, uint8_t **data, size_t *size)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 6);
    msgpack_pack_uint8 (&pk, BUS_ENVELOPE_VERSION);
    const char *strs [3] = { self->to, self->from, self->type };
    for (int i = 0; i < 3; i++) {
        size_t n = strlen (strs [i]);
        msgpack_pack_str (&pk, n);
        msgpack_pack_str_body (&pk, strs [i], n);
    }
    msgpack_pack_uint64 (&pk, self->corr);
    msgpack_pack_bin (&pk, self->body_size);
    if (self->body_size)
        msgpack_pack_bin_body (&pk, self->body, self->body_size);
    *data = (uint8_t *) sbuf.data;
    *size = sbuf.size;
    return 0;
}

static bool
s_get_str (const msgpack_object *o, char *dest, size_t max, bool allow_empty, bool is_name)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > max)
        return false;
    if (!allow_empty && o->via.str.size == 0)
        return false;
    char tmp [BUS_NAME_MAX + BUS_TYPE_MAX + 2];
    assert (max < sizeof tmp);
    if (o->via.str.size)
        memcpy (tmp, o->via.str.ptr, o->via.str.size);
    tmp [o->via.str.size] = 0;
    if (strlen (tmp) != o->via.str.size)
        return false;           //  NUL inside
    if (o->via.str.size && is_name && !bus_name_valid (tmp))
        return false;
    if (!is_name) {
        for (size_t i = 0; i < o->via.str.size; i++)
            if (!bus_name_valid ((char []) { tmp [i], 0 }))
                return false;   //  types use the same safe charset
    }
    memcpy (dest, tmp, o->via.str.size + 1);
    return true;
}

bus_envelope_t *
bus_envelope_decode (const uint8_t *data, size_t size, char *err, size_t errsize)
{
    char local [160];
    if (!err) {
        err = local;
        errsize = sizeof local;
    }
    if (size > BUS_ENVELOPE_MAX) {
        snprintf (err, errsize, "envelope of %zu bytes exceeds %d", size, BUS_ENVELOPE_MAX);
        return NULL;
    }
    if (bus_codec_check (data, size, 3, err, errsize))
        return NULL;
    msgpack_unpacked result;
    msgpack_unpacked_init (&result);
    size_t off = 0;
    bus_envelope_t *self = NULL;
    if (msgpack_unpack_next (&result, (const char *) data, size, &off) != MSGPACK_UNPACK_SUCCESS) {
        snprintf (err, errsize, "envelope: msgpack could not be unpacked");
        goto done;
    }
    const msgpack_object *o = &result.data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 6) {
        snprintf (err, errsize, "envelope: expected an array of 6 items");
        goto done;
    }
    const msgpack_object *it = o->via.array.ptr;
    if (it [0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || it [0].via.u64 != BUS_ENVELOPE_VERSION) {
        snprintf (err, errsize, "envelope: unsupported version");
        goto done;
    }
    self = (bus_envelope_t *) calloc (1, sizeof (bus_envelope_t));
    assert (self);
    if (!s_get_str (&it [1], self->to, BUS_NAME_MAX, true, true)) {
        snprintf (err, errsize, "envelope: 'to' is not a valid name");
        goto fail;
    }
    if (!s_get_str (&it [2], self->from, BUS_NAME_MAX, true, true)) {
        snprintf (err, errsize, "envelope: 'from' is not a valid name");
        goto fail;
    }
    if (!s_get_str (&it [3], self->type, BUS_TYPE_MAX, false, false)) {
        snprintf (err, errsize, "envelope: 'type' is missing or not a valid type name");
        goto fail;
    }
    if (it [4].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        snprintf (err, errsize, "envelope: 'corr' is not an unsigned integer");
        goto fail;
    }
    self->corr = it [4].via.u64;
    if (it [5].type != MSGPACK_OBJECT_BIN || it [5].via.bin.size > BUS_BODY_MAX) {
        snprintf (err, errsize, "envelope: 'body' is not binary of at most %d bytes", BUS_BODY_MAX);
        goto fail;
    }
    bus_envelope_set_body (self, (const uint8_t *) it [5].via.bin.ptr, it [5].via.bin.size);
    goto done;
fail:
    bus_envelope_destroy (&self);
done:
    msgpack_unpacked_destroy (&result);
    return self;
}

json_t *
bus_envelope_to_json (bus_envelope_t *self)
{
    json_t *j = json_object ();
    json_object_set_new (j, "to", json_string (self->to));
    json_object_set_new (j, "from", json_string (self->from));
    json_object_set_new (j, "type", json_string (self->type));
    json_object_set_new (j, "corr", json_integer ((json_int_t) self->corr));
    const bus_schema_t *schema = bus_schema_lookup (self->type);
    json_t *body = NULL;
    if (schema) {
        void *msg = calloc (1, schema->size);
        assert (msg);
        char err [160];
        if (bus_codec_decode (schema, self->body, self->body_size, msg, err, sizeof err) == 0)
            body = bus_codec_to_json (schema, msg);
        else
            json_object_set_new (j, "error", json_string (err));
        free (msg);
    }
    if (!body && self->body_size)
        body = bus_codec_msgpack_to_json (self->body, self->body_size);
    json_object_set_new (j, "body", body ? body : json_null ());
    return j;
}

void
bus_envelope_test (bool verbose)
{
    char err [160];
    bus_envelope_t *env = bus_envelope_new ("relay.3", "nat", "bus.echo", 42);
    bus_echo_t echo = { .seq = 7, .payload_size = 3 };
    memcpy (echo.payload, "abc", 3);
    assert (bus_envelope_set_msg (env, &bus_echo_schema, &echo, err, sizeof err) == 0);
    uint8_t *data;
    size_t size;
    assert (bus_envelope_encode (env, &data, &size) == 0);
    bus_envelope_t *copy = bus_envelope_decode (data, size, err, sizeof err);
    assert (copy);
    assert (strcmp (bus_envelope_to (copy), "relay.3") == 0);
    assert (strcmp (bus_envelope_from (copy), "nat") == 0);
    assert (strcmp (bus_envelope_type (copy), "bus.echo") == 0);
    assert (bus_envelope_corr (copy) == 42);
    bus_echo_t back;
    assert (bus_envelope_get_msg (copy, &bus_echo_schema, &back, err, sizeof err) == 0);
    assert (back.seq == 7 && back.payload_size == 3 && memcmp (back.payload, "abc", 3) == 0);
    //  Asking for the wrong schema is an error, not a misread
    sup_stop_t stop;
    assert (bus_envelope_get_msg (copy, &sup_stop_schema, &stop, err, sizeof err) == -1);
    json_t *j = bus_envelope_to_json (copy);
    assert (json_integer_value (json_object_get (json_object_get (j, "body"), "seq")) == 7);
    json_decref (j);
    bus_envelope_destroy (&copy);

    //  Every truncation fails cleanly
    for (size_t cut = 0; cut < size; cut++) {
        copy = bus_envelope_decode (data, cut, err, sizeof err);
        assert (copy == NULL && strlen (err) > 0);
    }
    //  Each header field of the wrong type or content is rejected
    const char *bad_names [] = { "a b", "x/y", "", "toolong-toolong-toolong-toolong-toolong-toolong-toolong" };
    for (size_t i = 0; i < 4; i++) {
        for (int field = 1; field <= 3; field++) {
            msgpack_sbuffer sb;
            msgpack_sbuffer_init (&sb);
            msgpack_packer pk;
            msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
            msgpack_pack_array (&pk, 6);
            msgpack_pack_uint8 (&pk, 1);
            for (int k = 1; k <= 3; k++) {
                const char *s = k == field ? bad_names [i] : "ok";
                msgpack_pack_str (&pk, strlen (s));
                msgpack_pack_str_body (&pk, s, strlen (s));
            }
            msgpack_pack_uint64 (&pk, 1);
            msgpack_pack_bin (&pk, 0);
            copy = bus_envelope_decode ((uint8_t *) sb.data, sb.size, err, sizeof err);
            //  An empty to/from is allowed (events, anonymous clients); nothing else here is
            bool ok_empty = bad_names [i][0] == 0 && field != 3;
            assert ((copy != NULL) == ok_empty);
            bus_envelope_destroy (&copy);
            msgpack_sbuffer_destroy (&sb);
        }
    }
    //  Wrong version, wrong arity, corr as string, oversized input
    uint8_t bad_version [64];
    memcpy (bad_version, data, size < 64 ? size : 64);
    bad_version [1] = 2;
    assert (bus_envelope_decode (bad_version, size < 64 ? size : 64, err, sizeof err) == NULL);
    const uint8_t short_array [] = { 0x92, 0x01, 0xa0 };
    assert (bus_envelope_decode (short_array, sizeof short_array, err, sizeof err) == NULL);
    assert (bus_envelope_decode (data, BUS_ENVELOPE_MAX + 1, err, sizeof err) == NULL);
    assert (strstr (err, "exceeds"));
    free (data);
    bus_envelope_destroy (&env);

    assert (bus_name_valid ("relay.3"));
    assert (!bus_name_valid ("relay 3"));
    assert (!bus_name_valid (""));
    assert (!bus_name_valid (NULL));
    if (verbose)
        printf ("bus_envelope: ok\n");
}
