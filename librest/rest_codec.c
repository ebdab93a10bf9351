/*  rest_codec: decode, encode and free any REST body by walking its descriptor
    (see rest_codec.h). One walker for every body, so no body has a hand-written
    parser that could drift from the other end's. */
#include "rest_codec.h"
#include "bus_json.h"
#include "bus_log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

//  ---------------------------------------------------------------------------
//  String checks

static bool
s_valid_name (const char *text, size_t max, bool lower_only)
{
    size_t len = strlen (text);
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text [i];
        bool alnum = (c >= 'a' && c <= 'z') || (!lower_only && c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (lower_only ? c != '-' : (c != '-' && c != '_' && c != '.'))))
            return false;
    }
    return true;
}

//  "a.b.c.d:port", "[v6]:port" or "hostname:port", at most 64 characters
static bool
s_valid_endpoint (const char *text)
{
    size_t len = strlen (text);
    const char *colon = strrchr (text, ':');
    if (len == 0 || len > 64 || !colon || colon == text)
        return false;
    int port = 0, digits = 0;
    for (const char *p = colon + 1; *p; p++, digits++) {
        if (*p < '0' || *p > '9' || digits > 5)
            return false;
        port = port * 10 + (*p - '0');
    }
    if (digits == 0 || port < 1 || port > 65535)
        return false;
    for (const char *p = text; p < colon; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
            || c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '%'))
            return false;
    }
    return true;
}

//  A relay as the registry lists it, "name@host:port" (config relay.servers,
//  docs/relay.md): what nat will dial, so it is checked before anyone reads it
static bool
s_valid_relay (const char *text)
{
    const char *at = strchr (text, '@');
    if (!at || at == text || (size_t) (at - text) > 64)
        return false;
    char name [65];
    memcpy (name, text, (size_t) (at - text));
    name [at - text] = 0;
    return s_valid_name (name, 64, false) && s_valid_endpoint (at + 1);
}

//  "EXPIRY.MACHEX" (librelay/relay_cred.h): decimal seconds, 64 hex digits
static bool
s_valid_relay_cred (const char *text)
{
    const char *dot = strchr (text, '.');
    if (!dot || dot == text || dot - text > 20 || strlen (dot + 1) != 64)
        return false;
    for (const char *p = text; p < dot; p++)
        if (*p < '0' || *p > '9')
            return false;
    for (const char *p = dot + 1; *p; p++)
        if (!isxdigit ((unsigned char) *p))
            return false;
    return true;
}

int
rest_base64_exact (const char *text, uint8_t *out, size_t size)
{
    size_t len = strlen (text), bin_len = 0;
    if (len != sodium_base64_ENCODED_LEN (size, sodium_base64_VARIANT_ORIGINAL) - 1)
        return -1;
    if (sodium_base642bin (out, size, text, len, NULL, &bin_len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0
    ||  bin_len != size)
        return -1;
    return 0;
}

bool
rest_check (rest_check_t check, const char *text)
{
    switch (check) {
        case REST_ANY:
            return true;
        case REST_TEXT:
            return bus_json_printable (text);
        case REST_NAME:
            return s_valid_name (text, 64, false);
        case REST_ID:
            return s_valid_name (text, 32, true);
        case REST_HEX16:
            if (strlen (text) != 16)
                return false;
            for (size_t i = 0; i < 16; i++)
                if (!isxdigit ((unsigned char) text [i]))
                    return false;
            return true;
        case REST_B64_32: {
            uint8_t bytes [32];
            return rest_base64_exact (text, bytes, 32) == 0;
        }
        case REST_IPV4: {
            struct in_addr addr;
            return inet_pton (AF_INET, text, &addr) == 1;
        }
        case REST_ENDPOINT:
            return s_valid_endpoint (text);
        case REST_CANDIDATE: {
            size_t len = strlen (text);
            if (len == 0 || len > 200)
                return false;
            for (size_t i = 0; i < len; i++)
                if ((unsigned char) text [i] < 0x20 || (unsigned char) text [i] > 0x7e)
                    return false;
            return true;
        }
        case REST_IP: {
            struct in6_addr addr;
            return inet_pton (AF_INET, text, &addr) == 1 || inet_pton (AF_INET6, text, &addr) == 1;
        }
        case REST_RELAY:
            return s_valid_relay (text);
        case REST_RELAY_CRED:
            return s_valid_relay_cred (text);
    }
    return false;
}

//  What a check wants, for the error message
static const char *
s_check_what (rest_check_t check)
{
    switch (check) {
        case REST_TEXT:      return "printable text";
        case REST_NAME:      return "1..64 of letters, digits, '-', '_', '.'";
        case REST_ID:        return "1..32 of a-z, 0-9 and '-'";
        case REST_HEX16:     return "16 hex digits";
        case REST_B64_32:    return "the base64 of 32 bytes";
        case REST_IPV4:      return "an IPv4 address";
        case REST_ENDPOINT:  return "a valid endpoint (host:port)";
        case REST_CANDIDATE: return "a valid candidate (printable, <= 200 chars)";
        case REST_IP:        return "an IPv4 or IPv6 address";
        case REST_RELAY:     return "a relay (name@host:port)";
        case REST_RELAY_CRED:return "a relay credential (EXPIRY.MACHEX)";
        default:             return "valid";
    }
}

//  ---------------------------------------------------------------------------
//  Decoding

//  An error about member name, worded for a client (request) or a log (reply):
//  "'name' must be <what>" or "member 'name' is not <what>".
static int
s_bad (rest_dir_t dir, const char *name, const char *what, char *err, size_t errsize)
{
    return dir == REST_REPLY ? bus_errf (err, errsize, "member '%s' is not %s", name, what)
                             : bus_errf (err, errsize, "'%s' must be %s", name, what);
}

//  The bus_json flags for a member of a body going in direction dir
static int
s_flags (rest_dir_t dir, const rest_field_t *f)
{
    int flags = f->required ? BUS_JSON_REQUIRED : 0;
    if (f->check == REST_TEXT)
        flags |= BUS_JSON_PRINTABLE;
    if (dir == REST_REPLY)
        flags |= BUS_JSON_REPLY | BUS_JSON_NULL_ABSENT | BUS_JSON_PRINTABLE | (f->required ? BUS_JSON_NONEMPTY : 0);
    return flags;
}

//  0 when value is an array of at most the member's max items, else -1 with err
static int
s_array (rest_dir_t dir, const rest_field_t *f, json_t *value, const char *items, char *err, size_t errsize)
{
    if (json_is_array (value) && json_array_size (value) <= (size_t) f->max)
        return 0;
    char what [80];
    snprintf (what, sizeof what, "an array of at most %d %s", (int) f->max, items);
    return s_bad (dir, f->name, what, err, errsize);
}

static int
s_strlist (rest_dir_t dir, const rest_field_t *f, json_t *value, uint8_t *base, char *err, size_t errsize)
{
    if (s_array (dir, f, value, "strings", err, errsize))
        return -1;
    uint32_t *count = (uint32_t *) (base + f->count_offset);
    char *items = (char *) (base + f->offset);
    size_t index;
    json_t *item;
    json_array_foreach (value, index, item) {
        const char *text = json_string_value (item);
        size_t len = json_string_length (item);
        if (!text || strlen (text) != len || len > f->item_len || !rest_check (f->check, text)
        ||  (dir == REST_REPLY && !bus_json_printable (text))) {
            char detail [120];
            snprintf (detail, sizeof detail, "%s", f->check == REST_ANY ? "a string" : s_check_what (f->check));
            return dir == REST_REPLY
                ? bus_errf (err, errsize, "member '%s' item %zu is not %s", f->name, index, detail)
                : bus_errf (err, errsize, "'%s' item %zu is not %s", f->name, index, detail);
        }
        memcpy (items + index * f->item_size, text, len + 1);
        (*count)++;
    }
    return 0;
}

static int
s_json_text (rest_dir_t dir, const rest_field_t *f, json_t *value, char *out, char *err, size_t errsize)
{
    char *text = json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY);
    bool fits = text && strlen (text) <= (size_t) f->max;
    if (fits)
        memcpy (out, text, strlen (text) + 1);
    free (text);
    if (!fits)
        return dir == REST_REPLY
            ? bus_errf (err, errsize, "member '%s' is larger than %d bytes of JSON", f->name, (int) f->max)
            : bus_errf (err, errsize, "'%s' must be at most %d bytes of JSON", f->name, (int) f->max);
    return 0;
}

static int
s_list (rest_dir_t dir, const rest_field_t *f, json_t *value, uint8_t *base, char *err, size_t errsize)
{
    if (s_array (dir, f, value, "objects", err, errsize))
        return -1;
    size_t n = json_array_size (value);
    uint8_t *items = (uint8_t *) calloc (n ? n : 1, f->item_size);
    assert (items);
    *(void **) (base + f->offset) = items;
    uint32_t *count = (uint32_t *) (base + f->count_offset);
    for (size_t i = 0; i < n; i++) {
        char why [200];
        if (rest_decode_object (f->record, dir, json_array_get (value, i), items + i * f->item_size,
                                why, sizeof why))
            return bus_errf (err, errsize, "%s[%zu]: %s", f->name, i, why);
        (*count)++;
    }
    return 0;
}

//  One member of obj into base (the struct)
static int
s_decode_field (rest_dir_t dir, const rest_field_t *f, json_t *obj, uint8_t *base, char *err, size_t errsize)
{
    json_t *value = json_object_get (obj, f->name);
    if (value && dir == REST_REPLY && json_is_null (value))
        value = NULL;
    *(bool *) (base + f->has_offset) = value != NULL;
    if (f->type == REST_FT_STR) {
        char *out = (char *) (base + f->offset);
        if (bus_json_string (obj, f->name, s_flags (dir, f), out, (size_t) f->max, err, errsize))
            return -1;
        if (value && !rest_check (f->check, out))
            return s_bad (dir, f->name, s_check_what (f->check), err, errsize);
        return 0;
    }
    if (f->type == REST_FT_INT)
        return bus_json_int (obj, f->name, s_flags (dir, f), f->min, f->max, (int64_t *) (base + f->offset),
                             err, errsize);
    if (!value) {
        if (!f->required)
            return 0;
        return dir == REST_REPLY ? bus_errf (err, errsize, "missing member '%s'", f->name)
                                 : bus_errf (err, errsize, "'%s' is required", f->name);
    }
    switch (f->type) {
        case REST_FT_BOOL:
            if (!json_is_boolean (value))
                return s_bad (dir, f->name, "true or false", err, errsize);
            *(bool *) (base + f->offset) = json_is_true (value);
            return 0;
        case REST_FT_STRLIST:
            return s_strlist (dir, f, value, base, err, errsize);
        case REST_FT_JSON:
            return s_json_text (dir, f, value, (char *) (base + f->offset), err, errsize);
        case REST_FT_OBJ: {
            if (!json_is_object (value))
                return s_bad (dir, f->name, "an object", err, errsize);
            char why [200];
            if (rest_decode_object (f->record, dir, value, base + f->offset, why, sizeof why))
                return bus_errf (err, errsize, "%s: %s", f->name, why);
            return 0;
        }
        case REST_FT_LIST:
            return s_list (dir, f, value, base, err, errsize);
        default:
            assert (false);
            return -1;
    }
}

int
rest_decode_object (const rest_schema_t *schema, rest_dir_t dir, json_t *obj, void *out,
                    char *err, size_t errsize)
{
    assert (schema && out);
    memset (out, 0, schema->size);
    if (!json_is_object (obj))
        return dir == REST_REPLY ? bus_errf (err, errsize, "not an object")
                                 : bus_errf (err, errsize, "must be an object");
    const rest_field_t *fields = schema->fields ();
    if (dir != REST_REPLY) {
        //  A request names only declared members: a typo never passes silently
        const char *key;
        json_t *value;
        json_object_foreach (obj, key, value) {
            const rest_field_t *f = fields;
            while (f->name && strcmp (f->name, key) != 0)
                f++;
            if (!f->name)
                return bus_errf (err, errsize, "unknown member '%.40s'", key);
        }
    }
    for (const rest_field_t *f = fields; f->name; f++)
        if (s_decode_field (dir, f, obj, (uint8_t *) out, err, errsize)) {
            rest_free (schema, out);
            return -1;
        }
    return 0;
}

json_t *
rest_load (const rest_schema_t *schema, const char *text, size_t size, char *err, size_t errsize)
{
    if (size > REST_TEXT_MAX)
        return bus_errf (err, errsize, "body of %zu bytes is too big", size), NULL;
    return bus_json_object_load (text, size, schema->dir == REST_REPLY ? BUS_JSON_REPLY : 0, err, errsize);
}

int
rest_decode (const rest_schema_t *schema, const char *text, size_t size, void *out, char *err, size_t errsize)
{
    memset (out, 0, schema->size);
    json_t *root = rest_load (schema, text, size, err, errsize);
    if (!root)
        return -1;
    int rc = rest_decode_object (schema, schema->dir, root, out, err, errsize);
    json_decref (root);
    return rc;
}

void
rest_free (const rest_schema_t *schema, void *obj)
{
    uint8_t *base = (uint8_t *) obj;
    for (const rest_field_t *f = schema->fields (); f->name; f++) {
        if (f->type == REST_FT_OBJ)
            rest_free (f->record, base + f->offset);
        else
        if (f->type == REST_FT_LIST) {
            uint8_t **items = (uint8_t **) (base + f->offset);
            uint32_t *count = (uint32_t *) (base + f->count_offset);
            for (uint32_t i = 0; *items && i < *count; i++)
                rest_free (f->record, *items + i * f->item_size);
            free (*items);
            *items = NULL;
            *count = 0;
        }
    }
}

//  ---------------------------------------------------------------------------
//  Encoding

json_t *
rest_encode (const rest_schema_t *schema, const void *obj)
{
    const uint8_t *base = (const uint8_t *) obj;
    json_t *root = json_object ();
    assert (root);
    for (const rest_field_t *f = schema->fields (); f->name; f++) {
        if (!f->required && !*(const bool *) (base + f->has_offset))
            continue;
        const void *at = base + f->offset;
        json_t *value = NULL;
        switch (f->type) {
            case REST_FT_STR:
                value = json_string ((const char *) at);
                break;
            case REST_FT_INT:
                value = json_integer ((json_int_t) *(const int64_t *) at);
                break;
            case REST_FT_BOOL:
                value = json_boolean (*(const bool *) at);
                break;
            case REST_FT_STRLIST: {
                value = json_array ();
                uint32_t count = *(const uint32_t *) (base + f->count_offset);
                for (uint32_t i = 0; i < count; i++)
                    json_array_append_new (value, json_string ((const char *) at + i * f->item_size));
                break;
            }
            case REST_FT_JSON:
                value = json_loads ((const char *) at, JSON_DECODE_ANY, NULL);
                if (!value)
                    value = json_null ();
                break;
            case REST_FT_OBJ:
                value = rest_encode (f->record, at);
                break;
            case REST_FT_LIST: {
                value = json_array ();
                const uint8_t *items = *(const uint8_t *const *) at;
                uint32_t count = *(const uint32_t *) (base + f->count_offset);
                for (uint32_t i = 0; items && i < count; i++)
                    json_array_append_new (value, rest_encode (f->record, items + i * f->item_size));
                break;
            }
        }
        json_object_set_new (root, f->name, value);
    }
    return root;
}

json_t *
rest_encode_items (const rest_schema_t *schema, json_t *items)
{
    const rest_field_t *f = schema->fields ();
    assert (f->type == REST_FT_LIST && !f [1].name && json_is_array (items));
    json_t *root = json_object ();
    assert (root);
    json_object_set_new (root, f->name, items);
    return root;
}

char *
rest_encode_text (const rest_schema_t *schema, const void *obj)
{
    json_t *root = rest_encode (schema, obj);
    char *text = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    assert (text);
    return text;
}

//  ---------------------------------------------------------------------------
//  Self test

#define S_KEY "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="
#define S_PEER "{\"id\":\"b4c804b23a21c6aa\",\"name\":\"laptop\",\"public_key\":\"" S_KEY "\"," \
               "\"vip\":\"10.100.0.1\",\"endpoints\":[\"198.51.100.7:51820\"],\"candidates\":[]," \
               "\"online\":true,\"last_seen\":1700000000000,\"created\":1700000000000}"
#define S_CRED "1700086400.0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define S_GRANT "{\"servers\":[\"relay-1@192.0.2.10:3479\",\"relay-2@[2001:db8::2]:3479\"]," \
                "\"network\":\"8d3f0c2b9a716e54\",\"credential\":\"" S_CRED "\"}"

//  Decoding text must fail with a message containing what
static void
s_expect_error (const rest_schema_t *schema, const char *text, const char *what, bool verbose)
{
    void *out = malloc (schema->size);
    assert (out);
    char err [300] = "";
    int rc = rest_decode (schema, text, strlen (text), out, err, sizeof err);
    if (verbose || rc != -1 || !strstr (err, what))
        printf ("  %s: %s -> %s\n", schema->id, text, rc ? err : "accepted");
    fflush (stdout);
    assert (rc == -1 && strstr (err, what));
    free (out);
}

//  Decoding text and encoding the result must give text again
static void
s_round_trip (const rest_schema_t *schema, const char *text)
{
    void *out = malloc (schema->size);
    assert (out);
    char err [300] = "";
    int rc = rest_decode (schema, text, strlen (text), out, err, sizeof err);
    if (rc)
        printf ("  %s: %s -> %s\n", schema->id, text, err);
    assert (rc == 0);
    char *again = rest_encode_text (schema, out);
    if (strcmp (again, text))
        printf ("  %s:\n    in  %s\n    out %s\n", schema->id, text, again);
    assert (strcmp (again, text) == 0);
    free (again);
    rest_free (schema, out);
    free (out);
}

void
rest_codec_test (bool verbose)
{
    //  What the registry sends, exactly as its json_pack calls wrote it, survives
    //  decode + encode byte for byte: the declaration order is the wire order.
    s_round_trip (&rest_peer_list_schema, "{\"peers\":[" S_PEER "," S_PEER "]}");
    s_round_trip (&rest_register_reply_schema, "{\"peer\":" S_PEER ",\"peer_token\":\"bpt_xyz\",\"network\":"
                  "{\"id\":\"office\",\"name\":\"office\",\"cidr\":\"10.100.0.0/16\",\"prefix\":16},"
                  "\"heartbeat_interval\":30,\"registry_key\":\"" S_KEY "\"}");
    //  ... with the relay grant, and a peer with its reflexive address
    s_round_trip (&rest_register_reply_schema, "{\"peer\":{\"id\":\"b4c804b23a21c6aa\",\"name\":\"laptop\","
                  "\"public_key\":\"" S_KEY "\",\"vip\":\"10.100.0.1\",\"endpoints\":[],\"candidates\":[],"
                  "\"reflexive\":\"203.0.113.7\",\"online\":true},\"peer_token\":\"bpt_xyz\",\"network\":"
                  "{\"id\":\"office\",\"prefix\":16},\"relay\":" S_GRANT "}");
    s_round_trip (&rest_heartbeat_reply_schema, "{\"online\":true,\"heartbeat_interval\":30,\"relay\":" S_GRANT "}");
    s_round_trip (&rest_meta_schema, "{\"name\":\"bifrost-registry\",\"relays\":[\"relay-1@relay.example.org:3479\"]}");
    s_round_trip (&rest_peer_schema, "{\"id\":\"b4c804b23a21c6aa\",\"name\":\"x\",\"public_key\":\"" S_KEY "\","
                  "\"vip\":\"10.1.2.3\",\"reflexive\":\"2001:db8::7\"}");
    s_round_trip (&rest_challenge_schema, "{\"nonce\":\"" S_KEY "\",\"registry_key\":\"" S_KEY "\","
                  "\"expires_in\":60,\"scheme\":\"bifrost-keyproof-v1\"}");
    s_round_trip (&rest_heartbeat_reply_schema, "{\"online\":true,\"heartbeat_interval\":30}");
    s_round_trip (&rest_signal_reply_schema, "{\"delivered\":2}");
    s_round_trip (&rest_error_schema, "{\"error\":\"invalid join token\"}");
    s_round_trip (&rest_meta_schema, "{\"name\":\"bifrost-registry\",\"version\":\"0.1.0\",\"iceServers\":"
                  "[{\"urls\":[\"stun:turn.example.org:3478\"]},{\"urls\":[\"turn:turn.example.org:3478?transport=udp\"],"
                  "\"username\":\"1700086400:b4c804b23a21c6aa\",\"credential\":\"dvSdV1YGXw0TI92UauKfluPnRsc=\"}],"
                  "\"ttl\":86400}");
    s_round_trip (&rest_event_peer_schema, "{\"event\":\"peer.left\",\"network\":\"office\",\"peer\":" S_PEER
                  ",\"reason\":\"expired\"}");
    s_round_trip (&rest_event_signal_schema, "{\"event\":\"signal\",\"network\":\"office\",\"from\":\"b4c804b23a21c6aa\","
                  "\"to\":\"0000000000000001\",\"type\":\"offer\",\"data\":{\"sdp\":\"v=0\"}}");
    //  And what discovery sends
    s_round_trip (&rest_register_req_schema, "{\"public_key\":\"" S_KEY "\",\"name\":\"n1\",\"nonce\":\"" S_KEY "\","
                  "\"proof\":\"" S_KEY "\",\"endpoints\":[\"192.0.2.1:51820\",\"[2001:db8::1]:51820\"],"
                  "\"candidates\":[\"candidate:1 1 UDP 1 192.0.2.1 5000 typ host\"]}");
    s_round_trip (&rest_heartbeat_req_schema, "{\"endpoints\":[],\"candidates\":[]}");
    //  Issue 19: the paths of a heartbeat, their listing and event, the page's ticket
    s_round_trip (&rest_heartbeat_req_schema, "{\"paths\":[{\"peer\":\"b4c804b23a21c6aa\",\"path\":\"direct\","
                  "\"rtt_ms\":7},{\"peer\":\"b4c804b23a21c6ab\",\"path\":\"peer\",\"via\":\"b4c804b23a21c6aa\"}]}");
    s_round_trip (&rest_path_list_schema, "{\"paths\":[{\"from\":\"b4c804b23a21c6aa\",\"peer\":\"b4c804b23a21c6ab\","
                  "\"path\":\"relay\",\"via\":\"relay-1\",\"rtt_ms\":40,\"updated\":1700000000000}]}");
    s_round_trip (&rest_event_paths_schema, "{\"event\":\"paths.changed\",\"network\":\"office\","
                  "\"from\":\"b4c804b23a21c6aa\",\"paths\":[]}");
    s_round_trip (&rest_ticket_schema, "{\"ticket\":\"bwt_x\",\"expires_in\":30}");
    s_round_trip (&rest_signal_req_schema, "{\"type\":\"offer\",\"data\":[1,\"x\",null]}");
    s_round_trip (&rest_network_req_schema, "{\"id\":\"home-1\",\"name\":\"Home.LAN\",\"cidr\":\"10.9.0.0/24\","
                  "\"settings\":{\"heartbeat_interval\":1,\"offline_after\":2,\"expire_after\":3}}");

    //  Bad bodies: requests are strict with errors for a client; replies are
    //  lenient about what they do not know, with errors for a log
    static const struct {
        const rest_schema_t *schema;
        const char *text;
        const char *error;      //  what the message must contain
    } s_bad [] = {
        { &rest_network_req_schema,
          "{\"name\":\"x\",\"surprise\":1}", "unknown member 'surprise'" },
        { &rest_network_req_schema,
          "{\"id\":\"x\"}", "'name' is required" },
        { &rest_network_req_schema,
          "{\"name\":\"a b\"}", "'name' must be 1..64 of letters" },
        { &rest_network_req_schema,
          "{\"name\":\"x\",\"id\":\"UPPER\"}", "'id' must be 1..32" },
        { &rest_network_req_schema,
          "{\"name\":\"x\",\"settings\":[]}", "'settings' must be an object" },
        { &rest_network_req_schema,
          "{\"name\":\"x\",\"settings\":{\"typo\":1}}",
          "settings: unknown member 'typo'" },
        { &rest_network_req_schema,
          "{\"name\":\"x\",\"settings\":{\"heartbeat_interval\":0}}",
          "'heartbeat_interval' must be an integer from 1 to 86400" },
        { &rest_network_req_schema,
          "{\"name\":\"x\",\"name\":\"y\"}", "duplicate object key" },
        { &rest_network_req_schema,
          "{\"name\":\"a\\u0000b\"}", "NUL" },
        { &rest_token_req_schema,
          "{\"reusable\":1}", "'reusable' must be true or false" },
        { &rest_register_req_schema,
          "{\"public_key\":\"AAAA\",\"name\":\"n1\",\"nonce\":\"" S_KEY
          "\",\"proof\":\"" S_KEY "\"}", "'public_key' must be the base64 of 32 bytes" },
        { &rest_heartbeat_req_schema,
          "{\"endpoints\":[\"1.2.3.4\"]}",
          "'endpoints' item 0 is not a valid endpoint (host:port)" },
        { &rest_heartbeat_req_schema,
          "{\"endpoints\":\"x\"}",
          "'endpoints' must be an array of at most 16 strings" },
        { &rest_heartbeat_req_schema,
          "{\"candidates\":[\"a\\nb\"]}", "'candidates' item 0" },
        { &rest_signal_req_schema,
          "{\"type\":\"offer\"}", "'data' is required" },
        { &rest_signal_req_schema,
          "[1]", "must be a JSON object" },
        { &rest_event_peer_schema,
          "{\"event\":\"peer.joined\"}", "missing member 'peer'" },
        { &rest_event_peer_schema,
          "{\"event\":\"peer.joined\",\"peer\":{\"id\":\"b4c804b23a21c6aa\","
          "\"name\":\"x\",\"public_key\":\"" S_KEY "\",\"vip\":\"10.1.2.300\"}}",
          "peer: member 'vip' is not an IPv4 address" },
        { &rest_event_peer_schema,
          "{\"event\":\"peer.joined\",\"peer\":{\"id\":\"zz\"}}",
          "peer: member 'id' is not 16 hex digits" },
        { &rest_event_signal_schema,
          "{\"event\":\"signal\",\"from\":\"b4c804b23a21c6aa\",\"type\":\"o\"}",
          "missing member 'data'" },
        { &rest_peer_list_schema,
          "{\"peers\":[5]}", "peers[0]: not an object" },
        { &rest_peer_list_schema,
          "{\"peers\":{}}", "member 'peers' is not an array" },
        { &rest_meta_schema,
          "{\"iceServers\":[{\"url\":\"x\"}]}", "iceServers[0]: missing member 'urls'" },
        { &rest_event_schema,
          "{\"event\":", "bad JSON" },
        { &rest_heartbeat_reply_schema,
          "{\"relay\":{\"servers\":[\"192.0.2.10:3479\"],\"network\":\"8d3f0c2b9a716e54\",\"credential\":\""
          S_CRED "\"}}", "relay: member 'servers' item 0 is not a relay (name@host:port)" },
        { &rest_heartbeat_reply_schema,
          "{\"relay\":{\"servers\":[],\"network\":\"8d3f0c2b9a716e54\",\"credential\":\"1700086400.abc\"}}",
          "relay: member 'credential' is not a relay credential" },
        { &rest_register_reply_schema,
          "{\"peer\":{\"id\":\"b4c804b23a21c6aa\",\"name\":\"x\",\"public_key\":\"" S_KEY "\",\"vip\":\"10.1.2.3\","
          "\"reflexive\":\"10.1.2.3:80\"},\"peer_token\":\"bpt_x\",\"network\":{\"id\":\"o\",\"prefix\":16}}",
          "peer: member 'reflexive' is not an IPv4 or IPv6 address" },
        { &rest_meta_schema,
          "{\"relays\":[\"a b@h:1\"]}", "member 'relays' item 0 is not a relay" },
        { &rest_event_schema,
          "\"just a string\"", "expected a JSON object" },
    };
    for (size_t i = 0; i < sizeof s_bad / sizeof s_bad [0]; i++)
        s_expect_error (s_bad [i].schema, s_bad [i].text, s_bad [i].error, verbose);

    //  Unknown members and null are fine in a reply; absent optional members stay unset
    rest_event_subscribed_t sub;
    char err [300];
    const char *text = "{\"event\":\"subscribed\",\"network\":\"office\",\"peer\":null,\"new\":[1]}";
    assert (rest_decode (&rest_event_subscribed_schema, text, strlen (text), &sub, err, sizeof err) == 0);
    assert (!sub.has_peer && sub.has_network && strcmp (sub.network, "office") == 0);

    //  A list encoded item by item is the list encoded whole
    rest_peer_list_t list;
    text = "{\"peers\":[" S_PEER "," S_PEER "]}";
    assert (rest_decode (&rest_peer_list_schema, text, strlen (text), &list, err, sizeof err) == 0);
    json_t *items = json_array ();
    for (uint32_t i = 0; i < list.peers_count; i++)
        json_array_append_new (items, rest_encode (&rest_peer_schema, &list.peers [i]));
    json_t *whole = rest_encode (&rest_peer_list_schema, &list), *parts = rest_encode_items (&rest_peer_list_schema, items);
    assert (json_equal (whole, parts));
    json_decref (whole);
    json_decref (parts);
    rest_free (&rest_peer_list_schema, &list);

    //  A list is allocated by decode and freed by rest_free
    rest_meta_t meta;
    text = "{\"iceServers\":[{\"urls\":[\"stun:a:1\",\"stun:b:2\"]}]}";
    assert (rest_decode (&rest_meta_schema, text, strlen (text), &meta, err, sizeof err) == 0);
    assert (meta.iceServers_count == 1 && meta.iceServers [0].urls_count == 2 && !meta.has_ttl);
    rest_free (&rest_meta_schema, &meta);
    assert (meta.iceServers == NULL && meta.iceServers_count == 0);

    //  Deep nesting is refused by the parser, not by the stack
    size_t depth = 100000;
    char *deep = (char *) malloc (depth * 2 + 1);
    assert (deep);
    memset (deep, '[', depth);
    memset (deep + depth, ']', depth);
    rest_signal_req_t signal;
    assert (rest_decode (&rest_signal_req_schema, deep, depth * 2, &signal, err, sizeof err) == -1);
    free (deep);

    assert (rest_check (REST_ID, "a-1") && !rest_check (REST_ID, "-a") && !rest_check (REST_ID, "A"));
    assert (rest_check (REST_NAME, "node_1.x") && !rest_check (REST_NAME, "node 1") && !rest_check (REST_NAME, ".x"));
    assert (rest_check (REST_ENDPOINT, "[2001:db8::1]:1") && !rest_check (REST_ENDPOINT, "1.2.3.4:0"));
    assert (rest_check (REST_HEX16, "b4c804b23a21c6aa") && !rest_check (REST_HEX16, "b4c804b23a21c6a"));
    assert (rest_check (REST_IP, "192.0.2.1") && rest_check (REST_IP, "::1") && !rest_check (REST_IP, "192.0.2.1:1")
         && !rest_check (REST_IP, "") && !rest_check (REST_IP, "example.org"));
    assert (rest_check (REST_RELAY, "r1@192.0.2.1:3479") && rest_check (REST_RELAY, "r.1@[2001:db8::1]:443")
         && rest_check (REST_RELAY, "r1@relay.example.org:3479"));
    assert (!rest_check (REST_RELAY, "@192.0.2.1:3479") && !rest_check (REST_RELAY, "r1@192.0.2.1")
         && !rest_check (REST_RELAY, "r1@192.0.2.1:0") && !rest_check (REST_RELAY, "-r@h:1")
         && !rest_check (REST_RELAY, "192.0.2.1:3479"));
    assert (rest_check (REST_RELAY_CRED, S_CRED) && rest_check (REST_RELAY_CRED, &("0." S_CRED) [11]));
    assert (!rest_check (REST_RELAY_CRED, &S_CRED [10]) && !rest_check (REST_RELAY_CRED, "x" S_CRED)
         && !rest_check (REST_RELAY_CRED, &("123456789012345678901" S_CRED) [10])
         && !rest_check (REST_RELAY_CRED, "1.0f1e") && !rest_check (REST_RELAY_CRED, S_CRED "0"));
}
