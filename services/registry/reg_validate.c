/*  reg_validate: request body validation (see reg_validate.h). */
#include "reg_validate.h"
#include "bus_json.h"
#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
reg_valid_name (const char *text)
{
    size_t len = text ? strlen (text) : 0;
    if (len == 0 || len > REG_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text [i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '-' && c != '_' && c != '.')))
            return false;
    }
    return true;
}

bool
reg_valid_id (const char *text)
{
    size_t len = text ? strlen (text) : 0;
    if (len == 0 || len > REG_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text [i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || c != '-'))
            return false;
    }
    return true;
}

int
reg_base64_exact (const char *text, uint8_t *out, size_t size)
{
    size_t len = strlen (text), bin_len = 0;
    if (len != sodium_base64_ENCODED_LEN (size, sodium_base64_VARIANT_ORIGINAL) - 1)
        return -1;
    if (sodium_base642bin (out, size, text, len, NULL, &bin_len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0
    ||  bin_len != size)
        return -1;
    return 0;
}

//  Refuses members not in allowed.
static int
s_known (json_t *root, const char *const *allowed, char *err, size_t errsize)
{
    const char *key;
    json_t *value;
    json_object_foreach (root, key, value) {
        bool ok = false;
        for (size_t i = 0; allowed [i]; i++)
            if (strcmp (key, allowed [i]) == 0)
                ok = true;
        if (!ok) {
            snprintf (err, errsize, "unknown member '%.40s'", key);
            return -1;
        }
    }
    return 0;
}

static bool
s_valid_endpoint (const char *text)
{
    //  "a.b.c.d:port" or "[v6]:port" or "hostname:port"
    size_t len = strlen (text);
    const char *colon = strrchr (text, ':');
    if (len == 0 || len > REG_ENDPOINT_LEN || !colon || colon == text)
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

static bool
s_valid_candidate (const char *text)
{
    size_t len = strlen (text);
    if (len == 0 || len > REG_CANDIDATE_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) text [i] < 0x20 || (unsigned char) text [i] > 0x7e)
            return false;
    return true;
}

//  An optional array of strings, each checked, serialized compactly into out.
static int
s_list (json_t *root, const char *name, size_t max_items, bool (*valid) (const char *),
        bool *present, char *out, size_t outsize, char *err, size_t errsize)
{
    json_t *value = json_object_get (root, name);
    *present = value != NULL;
    snprintf (out, outsize, "[]");
    if (!value)
        return 0;
    if (!json_is_array (value) || json_array_size (value) > max_items) {
        snprintf (err, errsize, "'%s' must be an array of at most %zu strings", name, max_items);
        return -1;
    }
    size_t index;
    json_t *item;
    json_array_foreach (value, index, item) {
        if (!json_is_string (item) || strlen (json_string_value (item)) != json_string_length (item)
        ||  !valid (json_string_value (item))) {
            snprintf (err, errsize, "'%s' item %zu is not a valid %s", name, index,
                      valid == s_valid_endpoint ? "endpoint (host:port)" : "candidate (printable, <= 200 chars)");
            return -1;
        }
    }
    char *text = json_dumps (value, JSON_COMPACT);
    assert (text);
    bool fits = strlen (text) < outsize;
    if (fits)
        memcpy (out, text, strlen (text) + 1);
    free (text);
    if (!fits) {
        snprintf (err, errsize, "'%s' is too long", name);
        return -1;
    }
    return 0;
}

int
reg_validate_network (const void *body, size_t size, reg_network_req_t *out, char *err, size_t errsize)
{
    static const char *const allowed [] = { "id", "name", "cidr", "settings", NULL };
    static const char *const settings_allowed [] = { "heartbeat_interval", "offline_after", "expire_after", NULL };
    memset (out, 0, sizeof *out);
    json_t *root = bus_json_object_load ((const char *) body, size, 0, err, errsize);
    if (!root)
        return -1;
    int rc = -1;
    if (s_known (root, allowed, err, errsize)
    ||  bus_json_string (root, "id", 0, out->id, REG_ID_MAX, err, errsize)
    ||  bus_json_string (root, "name", BUS_JSON_REQUIRED, out->name, REG_NAME_MAX, err, errsize)
    ||  bus_json_string (root, "cidr", 0, out->cidr, sizeof out->cidr - 1, err, errsize))
        goto done;
    if (json_object_get (root, "id") && !reg_valid_id (out->id)) {
        snprintf (err, errsize, "'id' must be 1..%d of a-z, 0-9 and '-'", REG_ID_MAX);
        goto done;
    }
    if (!reg_valid_name (out->name)) {
        snprintf (err, errsize, "'name' must be 1..%d of letters, digits, '-', '_', '.'", REG_NAME_MAX);
        goto done;
    }
    json_t *settings = json_object_get (root, "settings");
    if (settings) {
        if (!json_is_object (settings)) {
            snprintf (err, errsize, "'settings' must be an object");
            goto done;
        }
        if (s_known (settings, settings_allowed, err, errsize)
        ||  bus_json_int (settings, "heartbeat_interval", 0, 1, 86400, &out->heartbeat_s, err, errsize)
        ||  bus_json_int (settings, "offline_after", 0, 1, 7 * 86400, &out->offline_s, err, errsize)
        ||  bus_json_int (settings, "expire_after", 0, 1, 365 * 86400, &out->expire_s, err, errsize))
            goto done;
    }
    rc = 0;
done:
    json_decref (root);
    return rc;
}

int
reg_validate_peer (const void *body, size_t size, reg_peer_req_t *out, char *err, size_t errsize)
{
    static const char *const allowed [] = {
        "public_key", "name", "nonce", "proof", "endpoints", "candidates", NULL };
    memset (out, 0, sizeof *out);
    json_t *root = bus_json_object_load ((const char *) body, size, 0, err, errsize);
    if (!root)
        return -1;
    int rc = -1;
    char proof [REG_KEY_B64_MAX + 1];
    if (s_known (root, allowed, err, errsize)
    ||  bus_json_string (root, "public_key", BUS_JSON_REQUIRED, out->public_key_b64, REG_KEY_B64_MAX, err, errsize)
    ||  bus_json_string (root, "name", BUS_JSON_REQUIRED, out->name, REG_NAME_MAX, err, errsize)
    ||  bus_json_string (root, "nonce", BUS_JSON_REQUIRED, out->nonce_b64, REG_KEY_B64_MAX, err, errsize)
    ||  bus_json_string (root, "proof", BUS_JSON_REQUIRED, proof, REG_KEY_B64_MAX, err, errsize))
        goto done;
    if (reg_base64_exact (out->public_key_b64, out->public_key, 32)) {
        snprintf (err, errsize, "'public_key' must be the base64 of 32 bytes");
        goto done;
    }
    if (reg_base64_exact (out->nonce_b64, out->nonce, REG_NONCE_SIZE)) {
        snprintf (err, errsize, "'nonce' must be the base64 of %d bytes (from .../challenge)", REG_NONCE_SIZE);
        goto done;
    }
    if (reg_base64_exact (proof, out->proof, 32)) {
        snprintf (err, errsize, "'proof' must be the base64 of 32 bytes");
        goto done;
    }
    if (!reg_valid_name (out->name)) {
        snprintf (err, errsize, "'name' must be 1..%d of letters, digits, '-', '_', '.'", REG_NAME_MAX);
        goto done;
    }
    if (s_list (root, "endpoints", REG_ENDPOINTS_MAX, s_valid_endpoint, &out->has_endpoints,
                out->endpoints, sizeof out->endpoints, err, errsize)
    ||  s_list (root, "candidates", REG_CANDIDATES_MAX, s_valid_candidate, &out->has_candidates,
                out->candidates, sizeof out->candidates, err, errsize))
        goto done;
    rc = 0;
done:
    json_decref (root);
    return rc;
}

int
reg_validate_token (const void *body, size_t size, reg_token_req_t *out, char *err, size_t errsize)
{
    static const char *const allowed [] = { "ttl", "reusable", "description", NULL };
    memset (out, 0, sizeof *out);
    out->ttl_s = 86400;
    if (size == 0)
        return 0;               //  all defaults
    json_t *root = bus_json_object_load ((const char *) body, size, 0, err, errsize);
    if (!root)
        return -1;
    int rc = -1;
    if (s_known (root, allowed, err, errsize)
    ||  bus_json_int (root, "ttl", 0, 1, 365 * 86400, &out->ttl_s, err, errsize)
    ||  bus_json_string (root, "description", 0, out->description, REG_NAME_MAX, err, errsize))
        goto done;
    json_t *reusable = json_object_get (root, "reusable");
    if (reusable && !json_is_boolean (reusable)) {
        snprintf (err, errsize, "'reusable' must be true or false");
        goto done;
    }
    out->reusable = json_is_true (reusable);
    rc = 0;
done:
    json_decref (root);
    return rc;
}

int
reg_validate_heartbeat (const void *body, size_t size, reg_heartbeat_req_t *out, char *err, size_t errsize)
{
    static const char *const allowed [] = { "endpoints", "candidates", NULL };
    memset (out, 0, sizeof *out);
    snprintf (out->endpoints, sizeof out->endpoints, "[]");
    snprintf (out->candidates, sizeof out->candidates, "[]");
    if (size == 0)
        return 0;
    json_t *root = bus_json_object_load ((const char *) body, size, 0, err, errsize);
    if (!root)
        return -1;
    int rc = -1;
    if (s_known (root, allowed, err, errsize)
    ||  s_list (root, "endpoints", REG_ENDPOINTS_MAX, s_valid_endpoint, &out->has_endpoints,
                out->endpoints, sizeof out->endpoints, err, errsize)
    ||  s_list (root, "candidates", REG_CANDIDATES_MAX, s_valid_candidate, &out->has_candidates,
                out->candidates, sizeof out->candidates, err, errsize))
        goto done;
    rc = 0;
done:
    json_decref (root);
    return rc;
}

int
reg_validate_signal (const void *body, size_t size, reg_signal_req_t *out, char *err, size_t errsize)
{
    static const char *const allowed [] = { "type", "data", NULL };
    memset (out, 0, sizeof *out);
    json_t *root = bus_json_object_load ((const char *) body, size, 0, err, errsize);
    if (!root)
        return -1;
    int rc = -1;
    if (s_known (root, allowed, err, errsize)
    ||  bus_json_string (root, "type", BUS_JSON_REQUIRED, out->type, sizeof out->type - 1, err, errsize))
        goto done;
    if (!reg_valid_name (out->type)) {
        snprintf (err, errsize, "'type' must be a short name (letters, digits, '-', '_', '.')");
        goto done;
    }
    json_t *data = json_object_get (root, "data");
    if (!data) {
        snprintf (err, errsize, "'data' is required");
        goto done;
    }
    char *text = json_dumps (data, JSON_COMPACT | JSON_ENCODE_ANY);
    assert (text);
    bool fits = strlen (text) <= REG_SIGNAL_MAX;
    if (fits)
        memcpy (out->data, text, strlen (text) + 1);
    free (text);
    if (!fits) {
        snprintf (err, errsize, "'data' must be at most %d bytes of JSON", REG_SIGNAL_MAX);
        goto done;
    }
    rc = 0;
done:
    json_decref (root);
    return rc;
}

//  ---------------------------------------------------------------------------
#define S(text) text, strlen (text)

void
reg_validate_test (bool verbose)
{
    char err [200];
    reg_network_req_t net;
    assert (reg_validate_network (S ("{\"name\":\"office\"}"), &net, err, sizeof err) == 0);
    assert (strcmp (net.name, "office") == 0 && net.cidr [0] == 0 && net.id [0] == 0);
    assert (reg_validate_network (S ("{\"id\":\"home-1\",\"name\":\"Home.LAN\",\"cidr\":\"10.9.0.0/24\","
                                     "\"settings\":{\"heartbeat_interval\":1,\"offline_after\":2,\"expire_after\":3}}"),
                                  &net, err, sizeof err) == 0);
    assert (net.heartbeat_s == 1 && net.offline_s == 2 && net.expire_s == 3);
    static const char *bad_networks [] = {
        "", "{", "[]", "\"x\"", "{\"name\":1}", "{\"name\":\"\"}", "{\"name\":\"a b\"}",
        "{\"name\":\"-x\"}", "{\"name\":\"x\",\"name\":\"y\"}", "{\"name\":\"x\",\"extra\":1}",
        "{\"name\":\"x\",\"id\":\"UPPER\"}", "{\"name\":\"x\",\"cidr\":5}",
        "{\"name\":\"x\",\"settings\":[]}", "{\"name\":\"x\",\"settings\":{\"heartbeat_interval\":0}}",
        "{\"name\":\"x\",\"settings\":{\"heartbeat_interval\":1.5}}", "{\"name\":\"x\",\"settings\":{\"typo\":1}}",
        "{\"name\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
        "{\"name\":\"a\\u0000b\"}", NULL
    };
    for (int i = 0; bad_networks [i]; i++) {
        err [0] = 0;
        assert (reg_validate_network (S (bad_networks [i]), &net, err, sizeof err) == -1);
        assert (*err);
        if (verbose)
            printf ("  %s -> %s\n", bad_networks [i], err);
    }

    //  A peer: 32-byte key, nonce and proof
    uint8_t bytes [32];
    char b64 [64];
    memset (bytes, 7, sizeof bytes);
    sodium_bin2base64 (b64, sizeof b64, bytes, 32, sodium_base64_VARIANT_ORIGINAL);
    char text [1024];
    snprintf (text, sizeof text, "{\"public_key\":\"%s\",\"name\":\"n1\",\"nonce\":\"%s\",\"proof\":\"%s\","
              "\"endpoints\":[\"192.0.2.1:51820\",\"[2001:db8::1]:51820\"],\"candidates\":[\"candidate:1 1 UDP 1 192.0.2.1 5000 typ host\"]}",
              b64, b64, b64);
    reg_peer_req_t peer;
    assert (reg_validate_peer (S (text), &peer, err, sizeof err) == 0);
    assert (peer.public_key [0] == 7 && peer.has_endpoints && peer.has_candidates);
    assert (strcmp (peer.endpoints, "[\"192.0.2.1:51820\",\"[2001:db8::1]:51820\"]") == 0);
    snprintf (text, sizeof text, "{\"public_key\":\"%s\",\"name\":\"n1\",\"nonce\":\"%s\",\"proof\":\"%s\"}", b64, b64, b64);
    assert (reg_validate_peer (S (text), &peer, err, sizeof err) == 0);
    assert (strcmp (peer.endpoints, "[]") == 0 && !peer.has_endpoints);
    static const char *bad_peers [] = {
        "{\"public_key\":\"%s\",\"name\":\"n1\",\"nonce\":\"%s\"}",
        "{\"public_key\":\"AAAA\",\"name\":\"n1\",\"nonce\":\"%s\",\"proof\":\"%s\"}",
        "{\"public_key\":\"%s\",\"name\":\"n 1\",\"nonce\":\"%s\",\"proof\":\"%s\"}",
        "{\"public_key\":\"%s\",\"name\":\"n1\",\"nonce\":\"%s\",\"proof\":\"%s\",\"endpoints\":\"x\"}",
        "{\"public_key\":\"%s\",\"name\":\"n1\",\"nonce\":\"%s\",\"proof\":\"%s\",\"endpoints\":[\"1.2.3.4\"]}",
        "{\"public_key\":\"%s\",\"name\":\"n1\",\"nonce\":\"%s\",\"proof\":\"%s\",\"endpoints\":[\"1.2.3.4:0\"]}",
        "{\"public_key\":\"%s\",\"name\":\"n1\",\"nonce\":\"%s\",\"proof\":\"%s\",\"endpoints\":[1]}",
        "{\"public_key\":\"%s\",\"name\":\"n1\",\"nonce\":\"%s\",\"proof\":\"%s\",\"candidates\":[\"a\\nb\"]}",
        NULL
    };
    for (int i = 0; bad_peers [i]; i++) {
        snprintf (text, sizeof text, bad_peers [i], b64, b64, b64);
        assert (reg_validate_peer (S (text), &peer, err, sizeof err) == -1);
        if (verbose)
            printf ("  %s -> %s\n", text, err);
    }
    //  Too many endpoints
    strcpy (text, "{\"endpoints\":[");
    for (int i = 0; i < REG_ENDPOINTS_MAX + 1; i++)
        strcat (text, i ? ",\"192.0.2.1:1\"" : "\"192.0.2.1:1\"");
    strcat (text, "]}");
    reg_heartbeat_req_t hb;
    assert (reg_validate_heartbeat (S (text), &hb, err, sizeof err) == -1);
    assert (reg_validate_heartbeat (NULL, 0, &hb, err, sizeof err) == 0 && !hb.has_endpoints);
    assert (reg_validate_heartbeat (S ("{\"endpoints\":[\"192.0.2.1:1\"]}"), &hb, err, sizeof err) == 0 && hb.has_endpoints);

    reg_token_req_t token;
    assert (reg_validate_token (NULL, 0, &token, err, sizeof err) == 0 && token.ttl_s == 86400 && !token.reusable);
    assert (reg_validate_token (S ("{\"ttl\":60,\"reusable\":true}"), &token, err, sizeof err) == 0);
    assert (token.ttl_s == 60 && token.reusable);
    assert (reg_validate_token (S ("{\"ttl\":\"60\"}"), &token, err, sizeof err) == -1);
    assert (reg_validate_token (S ("{\"reusable\":1}"), &token, err, sizeof err) == -1);
    assert (reg_validate_token (S ("{\"ttl\":-5}"), &token, err, sizeof err) == -1);

    reg_signal_req_t signal;
    assert (reg_validate_signal (S ("{\"type\":\"offer\",\"data\":{\"sdp\":\"v=0\"}}"), &signal, err, sizeof err) == 0);
    assert (strcmp (signal.data, "{\"sdp\":\"v=0\"}") == 0);
    assert (reg_validate_signal (S ("{\"type\":\"offer\"}"), &signal, err, sizeof err) == -1);
    assert (reg_validate_signal (S ("{\"type\":\"of fer\",\"data\":1}"), &signal, err, sizeof err) == -1);

    //  Deep nesting is refused by the parser, not by the stack
    size_t depth = 100000;
    char *deep = (char *) malloc (depth * 2 + 1);
    memset (deep, '[', depth);
    memset (deep + depth, ']', depth);
    assert (reg_validate_signal (deep, depth * 2, &signal, err, sizeof err) == -1);
    free (deep);

    assert (reg_valid_id ("a-1") && !reg_valid_id ("-a") && !reg_valid_id ("") && !reg_valid_id ("A"));
    assert (reg_valid_name ("node_1.x") && !reg_valid_name ("node 1") && !reg_valid_name (".x"));
}
