/*  bus_codec: the generic schema codec. See bus_codec.h for why bytes are
    checked before msgpack-c unpacks them. */
#include "bus_codec.h"
#include "bus_log.h"

#include <assert.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static uint64_t
s_be (const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p [i];
    return v;
}

int
bus_codec_check (const uint8_t *data, size_t size, int max_depth, char *err, size_t errsize)
{
    //  pending[d] = items still to read in the container open at depth d
    uint64_t pending [BUS_CODEC_MAX_DEPTH + 2];
    if (max_depth > BUS_CODEC_MAX_DEPTH)
        max_depth = BUS_CODEC_MAX_DEPTH;
    if (!data || size == 0)
        return bus_errf (err, errsize, "empty msgpack");
    int depth = 0;
    pending [0] = 1;
    size_t pos = 0;
    while (depth >= 0) {
        if (pending [depth] == 0) {
            depth--;
            continue;
        }
        pending [depth]--;
        if (pos >= size)
            return bus_errf (err, errsize, "msgpack truncated at byte %zu", pos);
        uint8_t b = data [pos++];
        uint64_t skip = 0;          //  payload bytes after the header
        uint64_t children = 0;      //  items in a new container
        bool container = false;
        int lenbytes = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
            ;
        else
        if (b >= 0x80 && b <= 0x8f) { container = true; children = 2 * (uint64_t) (b & 0x0f); }
        else
        if (b >= 0x90 && b <= 0x9f) { container = true; children = b & 0x0f; }
        else
        if (b >= 0xa0 && b <= 0xbf) skip = b & 0x1f;
        else {
            switch (b) {
                case 0xc4: case 0xd9: lenbytes = 1; break;
                case 0xc5: case 0xda: lenbytes = 2; break;
                case 0xc6: case 0xdb: lenbytes = 4; break;
                case 0xc7: lenbytes = 1; skip = 1; break;
                case 0xc8: lenbytes = 2; skip = 1; break;
                case 0xc9: lenbytes = 4; skip = 1; break;
                case 0xca: skip = 4; break;
                case 0xcb: skip = 8; break;
                case 0xcc: case 0xd0: skip = 1; break;
                case 0xcd: case 0xd1: skip = 2; break;
                case 0xce: case 0xd2: skip = 4; break;
                case 0xcf: case 0xd3: skip = 8; break;
                case 0xd4: skip = 2; break;
                case 0xd5: skip = 3; break;
                case 0xd6: skip = 5; break;
                case 0xd7: skip = 9; break;
                case 0xd8: skip = 17; break;
                case 0xdc: container = true; lenbytes = 2; break;
                case 0xdd: container = true; lenbytes = 4; break;
                case 0xde: container = true; lenbytes = 2; break;
                case 0xdf: container = true; lenbytes = 4; break;
                default:
                    return bus_errf (err, errsize, "invalid msgpack byte 0x%02x at %zu", b, pos - 1);
            }
            if (lenbytes) {
                if (size - pos < (size_t) lenbytes)
                    return bus_errf (err, errsize, "msgpack length truncated at byte %zu", pos);
                uint64_t n = s_be (data + pos, lenbytes);
                pos += lenbytes;
                if (container)
                    children = (b == 0xde || b == 0xdf) ? 2 * n : n;
                else
                    skip += n;
            }
        }
        if (skip > size - pos)
            return bus_errf (err, errsize, "msgpack value of %" PRIu64 " bytes overruns the input", skip);
        pos += skip;
        if (container && children > 0) {
            //  Every item takes at least one byte: a count larger than what is left is a lie
            if (children > size - pos)
                return bus_errf (err, errsize, "msgpack container claims %" PRIu64 " items, %zu bytes left",
                               children, size - pos);
            if (depth + 1 >= max_depth)
                return bus_errf (err, errsize, "msgpack nested deeper than %d", max_depth);
            pending [++depth] = children;
        }
    }
    if (pos != size)
        return bus_errf (err, errsize, "%zu trailing bytes after msgpack object", size - pos);
    return 0;
}

//  ---------------------------------------------------------------------------
//  Encoding

static int s_encode_struct (msgpack_packer *pk, const bus_schema_t *schema, const void *msg,
                            char *err, size_t errsize);

static int
s_pack_str (msgpack_packer *pk, const char *s, uint32_t max)
{
    size_t len = strnlen (s, max);
    msgpack_pack_str (pk, len);
    if (len)
        msgpack_pack_str_body (pk, s, len);
    return 0;
}

static int
s_encode_field (msgpack_packer *pk, const bus_field_t *f, const uint8_t *base, char *err, size_t errsize)
{
    const uint8_t *p = base + f->offset;
    uint32_t n;
    switch (f->type) {
        case BUS_FT_STR:
            return s_pack_str (pk, (const char *) p, f->max);
        case BUS_FT_BIN:
            memcpy (&n, base + f->aux_offset, sizeof n);
            if (n > f->max)
                return bus_errf (err, errsize, "field '%s': %u bytes exceed %u", f->name, n, f->max);
            msgpack_pack_bin (pk, n);
            if (n)
                msgpack_pack_bin_body (pk, p, n);
            return 0;
        case BUS_FT_U32: { uint32_t v; memcpy (&v, p, sizeof v); return msgpack_pack_uint32 (pk, v); }
        case BUS_FT_U64: { uint64_t v; memcpy (&v, p, sizeof v); return msgpack_pack_uint64 (pk, v); }
        case BUS_FT_I64: { int64_t v; memcpy (&v, p, sizeof v); return msgpack_pack_int64 (pk, v); }
        case BUS_FT_F64: { double v; memcpy (&v, p, sizeof v); return msgpack_pack_double (pk, v); }
        case BUS_FT_BOOL: {
            bool v; memcpy (&v, p, sizeof v);
            return v ? msgpack_pack_true (pk) : msgpack_pack_false (pk);
        }
        case BUS_FT_STRLIST:
        case BUS_FT_LIST:
            memcpy (&n, base + f->aux_offset, sizeof n);
            if (n > f->max)
                return bus_errf (err, errsize, "field '%s': %u items exceed %u", f->name, n, f->max);
            msgpack_pack_array (pk, n);
            for (uint32_t i = 0; i < n; i++) {
                const uint8_t *item = p + i * f->item_size;
                if (f->type == BUS_FT_STRLIST)
                    s_pack_str (pk, (const char *) item, f->item_len);
                else
                if (s_encode_struct (pk, f->record, item, err, errsize))
                    return -1;
            }
            return 0;
    }
    return bus_errf (err, errsize, "field '%s': unknown kind", f->name);
}

static int
s_encode_struct (msgpack_packer *pk, const bus_schema_t *schema, const void *msg, char *err, size_t errsize)
{
    const bus_field_t *fields = schema->fields ();
    uint32_t n = 0;
    while (fields [n].name)
        n++;
    msgpack_pack_map (pk, n);
    for (const bus_field_t *f = fields; f->name; f++) {
        msgpack_pack_str (pk, strlen (f->name));
        msgpack_pack_str_body (pk, f->name, strlen (f->name));
        if (s_encode_field (pk, f, msg, err, errsize))
            return -1;
    }
    return 0;
}

int
bus_codec_encode (const bus_schema_t *schema, const void *msg,
                  uint8_t **data, size_t *size, char *err, size_t errsize)
{
    assert (schema && msg && data && size);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    if (s_encode_struct (&pk, schema, msg, err, errsize)) {
        msgpack_sbuffer_destroy (&sbuf);
        return -1;
    }
    *data = (uint8_t *) sbuf.data;      //  ownership passes to the caller
    *size = sbuf.size;
    return 0;
}

//  ---------------------------------------------------------------------------
//  Decoding

//  True if s[0..len) is valid UTF-8 with no NUL and no overlong or surrogate forms.
static bool
s_utf8_valid (const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s [i];
        if (c == 0)
            return false;
        if (c < 0x80) { i++; continue; }
        int n;
        uint32_t cp;
        if ((c & 0xe0) == 0xc0)      { n = 1; cp = c & 0x1f; }
        else if ((c & 0xf0) == 0xe0) { n = 2; cp = c & 0x0f; }
        else if ((c & 0xf8) == 0xf0) { n = 3; cp = c & 0x07; }
        else return false;
        if (len - i - 1 < (size_t) n)
            return false;
        for (int k = 1; k <= n; k++) {
            if ((s [i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s [i + k] & 0x3f);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)
        ||  cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

static int s_decode_struct (const bus_schema_t *schema, const msgpack_object *obj, uint8_t *base,
                            const char *path, char *err, size_t errsize);

static int
s_decode_str (const msgpack_object *o, char *dest, uint32_t max, const char *name, char *err, size_t errsize)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return bus_errf (err, errsize, "field '%s': expected string", name);
    if (o->via.str.size > max)
        return bus_errf (err, errsize, "field '%s': string of %u bytes exceeds %u", name, o->via.str.size, max);
    if (!s_utf8_valid ((const uint8_t *) o->via.str.ptr, o->via.str.size))
        return bus_errf (err, errsize, "field '%s': not valid UTF-8 (or contains NUL)", name);
    if (o->via.str.size)
        memcpy (dest, o->via.str.ptr, o->via.str.size);
    dest [o->via.str.size] = 0;
    return 0;
}

static int
s_decode_field (const bus_field_t *f, const msgpack_object *o, uint8_t *base, char *err, size_t errsize)
{
    uint8_t *p = base + f->offset;
    switch (f->type) {
        case BUS_FT_STR:
            return s_decode_str (o, (char *) p, f->max, f->name, err, errsize);
        case BUS_FT_BIN: {
            if (o->type != MSGPACK_OBJECT_BIN)
                return bus_errf (err, errsize, "field '%s': expected binary", f->name);
            uint32_t n = o->via.bin.size;
            if (n > f->max)
                return bus_errf (err, errsize, "field '%s': %u bytes exceed %u", f->name, n, f->max);
            if (n)
                memcpy (p, o->via.bin.ptr, n);
            memcpy (base + f->aux_offset, &n, sizeof n);
            return 0;
        }
        case BUS_FT_U32:
        case BUS_FT_U64: {
            if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return bus_errf (err, errsize, "field '%s': expected unsigned integer", f->name);
            uint64_t v = o->via.u64;
            if (f->type == BUS_FT_U32) {
                if (v > UINT32_MAX)
                    return bus_errf (err, errsize, "field '%s': %" PRIu64 " exceeds uint32", f->name, v);
                uint32_t v32 = (uint32_t) v;
                memcpy (p, &v32, sizeof v32);
            }
            else
                memcpy (p, &v, sizeof v);
            return 0;
        }
        case BUS_FT_I64: {
            int64_t v;
            if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                v = o->via.i64;
            else
            if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
                v = (int64_t) o->via.u64;
            else
                return bus_errf (err, errsize, "field '%s': expected signed 64-bit integer", f->name);
            memcpy (p, &v, sizeof v);
            return 0;
        }
        case BUS_FT_F64: {
            double v;
            if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
                v = o->via.f64;
            else
            if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                v = (double) o->via.u64;
            else
            if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                v = (double) o->via.i64;
            else
                return bus_errf (err, errsize, "field '%s': expected number", f->name);
            memcpy (p, &v, sizeof v);
            return 0;
        }
        case BUS_FT_BOOL: {
            if (o->type != MSGPACK_OBJECT_BOOLEAN)
                return bus_errf (err, errsize, "field '%s': expected boolean", f->name);
            bool v = o->via.boolean;
            memcpy (p, &v, sizeof v);
            return 0;
        }
        case BUS_FT_STRLIST:
        case BUS_FT_LIST: {
            if (o->type != MSGPACK_OBJECT_ARRAY)
                return bus_errf (err, errsize, "field '%s': expected array", f->name);
            uint32_t n = o->via.array.size;
            if (n > f->max)
                return bus_errf (err, errsize, "field '%s': %u items exceed %u", f->name, n, f->max);
            for (uint32_t i = 0; i < n; i++) {
                uint8_t *item = p + i * f->item_size;
                const msgpack_object *io = &o->via.array.ptr [i];
                int rc = f->type == BUS_FT_STRLIST
                       ? s_decode_str (io, (char *) item, f->item_len, f->name, err, errsize)
                       : s_decode_struct (f->record, io, item, f->name, err, errsize);
                if (rc)
                    return -1;
            }
            memcpy (base + f->aux_offset, &n, sizeof n);
            return 0;
        }
    }
    return bus_errf (err, errsize, "field '%s': unknown kind", f->name);
}

static int
s_decode_struct (const bus_schema_t *schema, const msgpack_object *obj, uint8_t *base,
                 const char *path, char *err, size_t errsize)
{
    if (obj->type != MSGPACK_OBJECT_MAP)
        return bus_errf (err, errsize, "%s: expected a map", path);
    const msgpack_object_map *map = &obj->via.map;
    for (const bus_field_t *f = schema->fields (); f->name; f++) {
        const msgpack_object *value = NULL;
        size_t name_len = strlen (f->name);
        for (uint32_t i = 0; i < map->size; i++) {
            const msgpack_object *k = &map->ptr [i].key;
            if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == name_len
            &&  memcmp (k->via.str.ptr, f->name, name_len) == 0) {
                if (value)
                    return bus_errf (err, errsize, "%s: field '%s' appears twice", path, f->name);
                value = &map->ptr [i].val;
            }
        }
        if (!value)
            return bus_errf (err, errsize, "%s: missing field '%s'", path, f->name);
        if (s_decode_field (f, value, base, err, errsize))
            return -1;
    }
    return 0;
}

int
bus_codec_decode (const bus_schema_t *schema, const uint8_t *data, size_t size,
                  void *msg, char *err, size_t errsize)
{
    assert (schema && msg);
    memset (msg, 0, schema->size);
    if (bus_codec_check (data, size, BUS_CODEC_MAX_DEPTH, err, errsize))
        return -1;
    msgpack_unpacked result;
    msgpack_unpacked_init (&result);
    size_t off = 0;
    int rc = -1;
    if (msgpack_unpack_next (&result, (const char *) data, size, &off) != MSGPACK_UNPACK_SUCCESS)
        bus_errf (err, errsize, "%s: msgpack could not be unpacked", schema->type ? schema->type : schema->id);
    else
        rc = s_decode_struct (schema, &result.data, (uint8_t *) msg,
                              schema->type ? schema->type : schema->id, err, errsize);
    msgpack_unpacked_destroy (&result);
    if (rc)
        memset (msg, 0, schema->size);     //  never leave half-decoded state behind
    return rc;
}

//  ---------------------------------------------------------------------------
//  JSON

static json_t *
s_hex (const uint8_t *p, size_t n)
{
    char *buf = (char *) malloc (2 * n + 1);
    if (!buf)
        return json_null ();
    for (size_t i = 0; i < n; i++)
        snprintf (buf + 2 * i, 3, "%02x", p [i]);
    buf [2 * n] = 0;
    json_t *j = json_stringn (buf, 2 * n);
    free (buf);
    return j;
}

json_t *
bus_codec_to_json (const bus_schema_t *schema, const void *msg)
{
    const uint8_t *base = (const uint8_t *) msg;
    json_t *obj = json_object ();
    for (const bus_field_t *f = schema->fields (); f->name; f++) {
        const uint8_t *p = base + f->offset;
        json_t *v = NULL;
        uint32_t n;
        switch (f->type) {
            case BUS_FT_STR: v = json_stringn ((const char *) p, strnlen ((const char *) p, f->max)); break;
            case BUS_FT_BIN: memcpy (&n, base + f->aux_offset, sizeof n); v = s_hex (p, n > f->max ? f->max : n); break;
            case BUS_FT_U32: { uint32_t x; memcpy (&x, p, sizeof x); v = json_integer (x); break; }
            case BUS_FT_U64: { uint64_t x; memcpy (&x, p, sizeof x); v = json_integer ((json_int_t) x); break; }
            case BUS_FT_I64: { int64_t x; memcpy (&x, p, sizeof x); v = json_integer (x); break; }
            case BUS_FT_F64: { double x; memcpy (&x, p, sizeof x); v = json_real (x); break; }
            case BUS_FT_BOOL: { bool x; memcpy (&x, p, sizeof x); v = json_boolean (x); break; }
            case BUS_FT_STRLIST:
            case BUS_FT_LIST:
                memcpy (&n, base + f->aux_offset, sizeof n);
                if (n > f->max)
                    n = f->max;
                v = json_array ();
                for (uint32_t i = 0; i < n; i++) {
                    const uint8_t *item = p + i * f->item_size;
                    json_array_append_new (v, f->type == BUS_FT_STRLIST
                        ? json_stringn ((const char *) item, strnlen ((const char *) item, f->item_len))
                        : bus_codec_to_json (f->record, item));
                }
                break;
        }
        json_object_set_new (obj, f->name, v ? v : json_null ());
    }
    return obj;
}

static json_t *
s_object_to_json (const msgpack_object *o, int depth)
{
    if (depth > BUS_CODEC_MAX_DEPTH)
        return json_null ();
    switch (o->type) {
        case MSGPACK_OBJECT_NIL: return json_null ();
        case MSGPACK_OBJECT_BOOLEAN: return json_boolean (o->via.boolean);
        case MSGPACK_OBJECT_POSITIVE_INTEGER: return json_integer ((json_int_t) o->via.u64);
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer (o->via.i64);
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64: return json_real (o->via.f64);
        case MSGPACK_OBJECT_STR:
            if (s_utf8_valid ((const uint8_t *) o->via.str.ptr, o->via.str.size))
                return json_stringn (o->via.str.size ? o->via.str.ptr : "", o->via.str.size);
            return s_hex ((const uint8_t *) o->via.str.ptr, o->via.str.size);
        case MSGPACK_OBJECT_BIN: return s_hex ((const uint8_t *) o->via.bin.ptr, o->via.bin.size);
        case MSGPACK_OBJECT_EXT: return s_hex ((const uint8_t *) o->via.ext.ptr, o->via.ext.size);
        case MSGPACK_OBJECT_ARRAY: {
            json_t *a = json_array ();
            for (uint32_t i = 0; i < o->via.array.size; i++)
                json_array_append_new (a, s_object_to_json (&o->via.array.ptr [i], depth + 1));
            return a;
        }
        case MSGPACK_OBJECT_MAP: {
            json_t *m = json_object ();
            for (uint32_t i = 0; i < o->via.map.size; i++) {
                const msgpack_object *k = &o->via.map.ptr [i].key;
                char key [80];
                if (k->type == MSGPACK_OBJECT_STR && k->via.str.size < sizeof key
                &&  s_utf8_valid ((const uint8_t *) k->via.str.ptr, k->via.str.size)) {
                    if (k->via.str.size)
                        memcpy (key, k->via.str.ptr, k->via.str.size);
                    key [k->via.str.size] = 0;
                }
                else
                    snprintf (key, sizeof key, "#%u", i);
                json_object_set_new (m, key, s_object_to_json (&o->via.map.ptr [i].val, depth + 1));
            }
            return m;
        }
    }
    return json_null ();
}

json_t *
bus_codec_msgpack_to_json (const uint8_t *data, size_t size)
{
    if (bus_codec_check (data, size, BUS_CODEC_MAX_DEPTH, NULL, 0))
        return NULL;
    msgpack_unpacked result;
    msgpack_unpacked_init (&result);
    size_t off = 0;
    json_t *j = NULL;
    if (msgpack_unpack_next (&result, (const char *) data, size, &off) == MSGPACK_UNPACK_SUCCESS)
        j = s_object_to_json (&result.data, 0);
    msgpack_unpacked_destroy (&result);
    return j;
}

//  ---------------------------------------------------------------------------
//  Self test: round trip every schema filled with patterned values, then reject
//  truncated, oversized and wrong-typed input.

static void
s_fill (const bus_schema_t *schema, uint8_t *base, unsigned seed)
{
    for (const bus_field_t *f = schema->fields (); f->name; f++) {
        uint8_t *p = base + f->offset;
        switch (f->type) {
            case BUS_FT_STR: {
                size_t len = f->max < 5 ? f->max : 5 + seed % (f->max - 4);
                for (size_t i = 0; i < len; i++)
                    p [i] = (uint8_t) ('a' + (seed + i) % 26);
                p [len] = 0;
                break;
            }
            case BUS_FT_BIN: {
                uint32_t n = f->max;
                for (uint32_t i = 0; i < n; i++)
                    p [i] = (uint8_t) (seed * 7 + i);
                memcpy (base + f->aux_offset, &n, sizeof n);
                break;
            }
            case BUS_FT_U32: { uint32_t v = 0xfffffff0u + seed % 15; memcpy (p, &v, sizeof v); break; }
            case BUS_FT_U64: { uint64_t v = UINT64_MAX - seed; memcpy (p, &v, sizeof v); break; }
            case BUS_FT_I64: { int64_t v = INT64_MIN + seed; memcpy (p, &v, sizeof v); break; }
            case BUS_FT_F64: { double v = 1.5 * seed; memcpy (p, &v, sizeof v); break; }
            case BUS_FT_BOOL: { bool v = seed & 1; memcpy (p, &v, sizeof v); break; }
            case BUS_FT_STRLIST:
            case BUS_FT_LIST: {
                uint32_t n = f->max < 3 ? f->max : 3;
                for (uint32_t i = 0; i < n; i++) {
                    uint8_t *item = p + i * f->item_size;
                    if (f->type == BUS_FT_STRLIST)
                        snprintf ((char *) item, f->item_len + 1, "s%u", i);
                    else
                        s_fill (f->record, item, seed + i);
                }
                memcpy (base + f->aux_offset, &n, sizeof n);
                break;
            }
        }
    }
}

void
bus_codec_test (bool verbose)
{
    char err [200];
    size_t count;
    const bus_schema_t *const *all = bus_schema_all (&count);
    for (size_t i = 0; i < count; i++) {
        const bus_schema_t *s = all [i];
        uint8_t *msg = (uint8_t *) calloc (1, s->size);
        uint8_t *copy = (uint8_t *) calloc (1, s->size);
        assert (msg && copy);
        s_fill (s, msg, (unsigned) i + 1);
        uint8_t *data;
        size_t size;
        int rc = bus_codec_encode (s, msg, &data, &size, err, sizeof err);
        assert (rc == 0);
        rc = bus_codec_decode (s, data, size, copy, err, sizeof err);
        if (rc)
            fprintf (stderr, "bus_codec: %s: %s\n", s->id, err);
        assert (rc == 0);
        //  Encoding the decoded copy gives the same bytes: nothing lost or added
        uint8_t *data2;
        size_t size2;
        assert (bus_codec_encode (s, copy, &data2, &size2, err, sizeof err) == 0);
        assert (size2 == size && memcmp (data, data2, size) == 0);
        free (data2);
        //  Every truncation is rejected cleanly
        for (size_t cut = 0; cut < size; cut += (size > 64 ? size / 32 : 1)) {
            assert (bus_codec_decode (s, data, cut, copy, err, sizeof err) == -1);
            //  and a rejected decode leaves nothing behind
            for (size_t k = 0; k < s->size; k++)
                assert (copy [k] == 0);
        }
        json_t *j = bus_codec_to_json (s, msg);
        assert (j && json_object_size (j) > 0);
        json_t *g = bus_codec_msgpack_to_json (data, size);
        assert (g && json_object_size (g) == json_object_size (j));
        json_decref (g);
        json_decref (j);
        free (data);
        free (msg);
        free (copy);
    }

    //  Wrong types, oversize, bad UTF-8, duplicates, missing fields
    bus_echo_t echo;
    memset (&echo, 0, sizeof echo);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct { const char *what; int variant; } cases [] = {
        { "seq as string", 0 }, { "payload too big", 1 }, { "missing payload", 2 },
        { "duplicate seq", 3 }, { "negative seq", 4 }, { "not a map", 5 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases [0]; c++) {
        msgpack_sbuffer_init (&sb);
        msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
        int v = cases [c].variant;
        if (v == 5)
            msgpack_pack_array (&pk, 0);
        else {
            msgpack_pack_map (&pk, v == 2 ? 1 : v == 3 ? 3 : 2);
            msgpack_pack_str (&pk, 3); msgpack_pack_str_body (&pk, "seq", 3);
            if (v == 0) { msgpack_pack_str (&pk, 1); msgpack_pack_str_body (&pk, "1", 1); }
            else if (v == 4) msgpack_pack_int64 (&pk, -5);
            else msgpack_pack_uint64 (&pk, 1);
            if (v != 2) {
                msgpack_pack_str (&pk, 7); msgpack_pack_str_body (&pk, "payload", 7);
                static uint8_t big [2000];
                size_t n = v == 1 ? sizeof big : 4;
                msgpack_pack_bin (&pk, n); msgpack_pack_bin_body (&pk, big, n);
            }
            if (v == 3) { msgpack_pack_str (&pk, 3); msgpack_pack_str_body (&pk, "seq", 3); msgpack_pack_uint64 (&pk, 2); }
        }
        int rc = bus_codec_decode (&bus_echo_schema, (uint8_t *) sb.data, sb.size, &echo, err, sizeof err);
        if (verbose)
            printf ("bus_codec: %s -> %s\n", cases [c].what, err);
        assert (rc == -1 && strlen (err) > 0);
        msgpack_sbuffer_destroy (&sb);
    }
    //  Bad UTF-8 in a string field
    {
        msgpack_sbuffer_init (&sb);
        msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 1);
        msgpack_pack_str (&pk, 6); msgpack_pack_str_body (&pk, "reason", 6);
        msgpack_pack_str (&pk, 3); msgpack_pack_str_body (&pk, "a\xff" "b", 3);
        sup_stop_t stop;
        assert (bus_codec_decode (&sup_stop_schema, (uint8_t *) sb.data, sb.size, &stop, err, sizeof err) == -1);
        assert (strstr (err, "UTF-8"));
        msgpack_sbuffer_destroy (&sb);
    }
    //  Lying container counts and deep nesting are refused before msgpack-c allocates
    const uint8_t liar [] = { 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01 };
    assert (bus_codec_check (liar, sizeof liar, 8, err, sizeof err) == -1);
    const uint8_t liarmap [] = { 0xdf, 0x7f, 0xff, 0xff, 0xff };
    assert (bus_codec_check (liarmap, sizeof liarmap, 8, err, sizeof err) == -1);
    uint8_t deep [40];
    memset (deep, 0x91, sizeof deep);
    deep [sizeof deep - 1] = 0x01;
    assert (bus_codec_check (deep, sizeof deep, 8, err, sizeof err) == -1);
    assert (strstr (err, "deeper"));
    const uint8_t trailing [] = { 0x01, 0x02 };
    assert (bus_codec_check (trailing, sizeof trailing, 8, err, sizeof err) == -1);
    const uint8_t never [] = { 0xc1 };
    assert (bus_codec_check (never, 1, 8, err, sizeof err) == -1);
    const uint8_t str32 [] = { 0xdb, 0xff, 0xff, 0xff, 0xff, 'a' };
    assert (bus_codec_check (str32, sizeof str32, 8, err, sizeof err) == -1);
    assert (bus_codec_check (NULL, 0, 8, err, sizeof err) == -1);
    //  Encoding refuses counts beyond the declared bound
    bus_echo_t over;
    memset (&over, 0, sizeof over);
    over.payload_size = 5000;
    uint8_t *data;
    size_t size;
    assert (bus_codec_encode (&bus_echo_schema, &over, &data, &size, err, sizeof err) == -1);
    if (verbose)
        printf ("bus_codec: %zu schemas round-tripped\n", count);
}
