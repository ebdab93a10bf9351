/*  disc_json: registry replies and events, checked member by member (see disc_json.h). */
#include "disc_json.h"
#include "bus_json.h"
#include "bus_log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  How discovery reads the registry's strings: errors worded for a reply, null
//  as absent, printable text only (it ends up in logs), required ones not empty.
#define S_OPTIONAL (BUS_JSON_REPLY | BUS_JSON_NULL_ABSENT | BUS_JSON_PRINTABLE)
#define S_REQUIRED (S_OPTIONAL | BUS_JSON_REQUIRED | BUS_JSON_NONEMPTY)

//  Parses an object of at most DISC_JSON_MAX bytes; NULL with err for anything else
static json_t *
s_load (const char *text, size_t size, char *err, size_t errsize)
{
    if (size > DISC_JSON_MAX)
        return bus_errf (err, errsize, "reply of %zu bytes is too big", size), NULL;
    return bus_json_object_load (text, size, BUS_JSON_REPLY, err, errsize);
}

//  An integer member in 0..max into a uint32_t (left as it is when absent)
static int
s_uint (json_t *obj, const char *name, bool required, uint32_t max, uint32_t *out,
        char *err, size_t errsize)
{
    int64_t value = *out;
    int flags = BUS_JSON_REPLY | (required ? BUS_JSON_REQUIRED : 0);
    if (bus_json_int (obj, name, flags, 0, max, &value, err, errsize))
        return -1;
    *out = (uint32_t) value;
    return 0;
}

static int
s_key (const char *text, uint8_t key [32])
{
    size_t bin_len = 0;
    const char *end = NULL;
    if (strlen (text) != 44
    ||  sodium_base642bin (key, 32, text, 44, NULL, &bin_len, &end, sodium_base64_VARIANT_ORIGINAL) != 0
    ||  bin_len != 32 || end != text + 44)
        return -1;
    return 0;
}

static int
s_peer (json_t *obj, disc_peer_info_t *peer, char *err, size_t errsize)
{
    memset (peer, 0, sizeof *peer);
    if (!json_is_object (obj))
        return bus_errf (err, errsize, "a peer is not an object");
    char why [120];
    if (bus_json_string (obj, "id", S_REQUIRED, peer->id, sizeof peer->id - 1, why, sizeof why))
        return bus_errf (err, errsize, "peer: %s", why);
    for (size_t i = 0; i < 16; i++)
        if (!isxdigit ((unsigned char) peer->id [i]))
            return bus_errf (err, errsize, "peer: id '%s' is not 16 hex digits", peer->id);
    if (bus_json_string (obj, "name", S_REQUIRED, peer->name, sizeof peer->name - 1, why, sizeof why)
    ||  bus_json_string (obj, "public_key", S_REQUIRED, peer->public_key, sizeof peer->public_key - 1, why, sizeof why)
    ||  bus_json_string (obj, "vip", S_REQUIRED, peer->vip, sizeof peer->vip - 1, why, sizeof why))
        return bus_errf (err, errsize, "peer %s: %s", peer->id, why);
    if (s_key (peer->public_key, peer->key))
        return bus_errf (err, errsize, "peer %s: public_key is not 32 bytes of base64", peer->id);
    struct in_addr addr;
    if (inet_pton (AF_INET, peer->vip, &addr) != 1)
        return bus_errf (err, errsize, "peer %s: vip '%s' is not an IPv4 address", peer->id, peer->vip);
    json_t *endpoints = json_object_get (obj, "endpoints");
    if (endpoints && !json_is_array (endpoints))
        return bus_errf (err, errsize, "peer %s: endpoints is not an array", peer->id);
    size_t index;
    json_t *item;
    json_array_foreach (endpoints, index, item) {
        if (!json_is_string (item))
            return bus_errf (err, errsize, "peer %s: an endpoint is not a string", peer->id);
        const char *text = json_string_value (item);
        size_t len = json_string_length (item);
        if (len == 0 || len > DISC_ENDPOINT_LEN || strlen (text) != len || !bus_json_printable (text) || !strchr (text, ':'))
            return bus_errf (err, errsize, "peer %s: endpoint %zu is not host:port", peer->id, index);
        if (peer->endpoints_count < DISC_ENDPOINTS_MAX)
            memcpy (peer->endpoints [peer->endpoints_count++], text, len + 1);
    }
    json_t *online = json_object_get (obj, "online");
    if (online && !json_is_boolean (online))
        return bus_errf (err, errsize, "peer %s: online is not a boolean", peer->id);
    peer->online = online ? json_is_true (online) : true;
    return 0;
}

int
disc_json_challenge (const char *text, size_t size, disc_challenge_t *out, char *err, size_t errsize)
{
    memset (out, 0, sizeof *out);
    json_t *root = s_load (text, size, err, errsize);
    if (!root)
        return -1;
    int rc = -1;
    uint8_t key [32];
    if (bus_json_string (root, "nonce", S_REQUIRED, out->nonce, sizeof out->nonce - 1, err, errsize)
    ||  bus_json_string (root, "registry_key", S_REQUIRED, out->registry_key, sizeof out->registry_key - 1, err, errsize))
        goto done;
    if (s_key (out->registry_key, key)) {
        bus_errf (err, errsize, "registry_key is not 32 bytes of base64");
        goto done;
    }
    rc = 0;
done:
    json_decref (root);
    return rc;
}

int
disc_json_registration (const char *text, size_t size, disc_registration_t *out, char *err, size_t errsize)
{
    memset (out, 0, sizeof *out);
    json_t *root = s_load (text, size, err, errsize);
    if (!root)
        return -1;
    int rc = -1;
    json_t *network = json_object_get (root, "network");
    if (s_peer (json_object_get (root, "peer"), &out->peer, err, errsize)
    ||  bus_json_string (root, "peer_token", S_REQUIRED, out->peer_token, sizeof out->peer_token - 1, err, errsize)
    ||  s_uint (root, "heartbeat_interval", false, 86400, &out->heartbeat_s, err, errsize))
        goto done;
    if (!json_is_object (network)) {
        bus_errf (err, errsize, "missing member 'network'");
        goto done;
    }
    if (bus_json_string (network, "id", S_REQUIRED, out->network_id, sizeof out->network_id - 1, err, errsize)
    ||  s_uint (network, "prefix", true, 32, &out->prefix, err, errsize))
        goto done;
    if (out->prefix < 1) {
        bus_errf (err, errsize, "network prefix 0");
        goto done;
    }
    rc = 0;
done:
    json_decref (root);
    return rc;
}

int
disc_json_peers (const char *text, size_t size, disc_peer_info_t **peers, size_t *count,
                 char *err, size_t errsize)
{
    *peers = NULL;
    *count = 0;
    json_t *root = s_load (text, size, err, errsize);
    if (!root)
        return -1;
    int rc = -1;
    json_t *list = json_object_get (root, "peers");
    if (!json_is_array (list)) {
        bus_errf (err, errsize, "missing array 'peers'");
        goto done;
    }
    size_t n = json_array_size (list);
    if (n > DISC_PEERS_LIST_MAX) {
        bus_errf (err, errsize, "%zu peers: more than %d", n, DISC_PEERS_LIST_MAX);
        goto done;
    }
    disc_peer_info_t *array = calloc (n ? n : 1, sizeof *array);
    assert (array);
    for (size_t i = 0; i < n; i++)
        if (s_peer (json_array_get (list, i), &array [i], err, errsize)) {
            free (array);
            goto done;
        }
    *peers = array;
    *count = n;
    rc = 0;
done:
    json_decref (root);
    return rc;
}

static const struct {
    const char *name;
    disc_event_type_t type;
} s_events [] = {
    { "subscribed", DISC_EVENT_SUBSCRIBED },
    { "peer.joined", DISC_EVENT_JOINED },
    { "peer.changed", DISC_EVENT_CHANGED },
    { "peer.left", DISC_EVENT_LEFT },
    { "signal", DISC_EVENT_SIGNAL },
    { "network.deleted", DISC_EVENT_NETWORK_DELETED },
};

int
disc_json_event (const char *text, size_t size, disc_event_t *out, char *err, size_t errsize)
{
    memset (out, 0, sizeof *out);
    json_t *root = s_load (text, size, err, errsize);
    if (!root)
        return -1;
    int rc = -1;
    char name [40];
    if (bus_json_string (root, "event", S_REQUIRED, name, sizeof name - 1, err, errsize))
        goto done;
    out->type = DISC_EVENT_OTHER;
    for (size_t i = 0; i < sizeof s_events / sizeof s_events [0]; i++)
        if (strcmp (name, s_events [i].name) == 0)
            out->type = s_events [i].type;
    switch (out->type) {
        case DISC_EVENT_JOINED:
        case DISC_EVENT_CHANGED:
        case DISC_EVENT_LEFT:
            if (s_peer (json_object_get (root, "peer"), &out->peer, err, errsize)
            ||  bus_json_string (root, "reason", S_OPTIONAL, out->reason, sizeof out->reason - 1, err, errsize))
                goto done;
            break;
        case DISC_EVENT_SIGNAL: {
            if (bus_json_string (root, "from", S_REQUIRED, out->from, sizeof out->from - 1, err, errsize)
            ||  bus_json_string (root, "type", S_REQUIRED, out->signal_type, sizeof out->signal_type - 1, err, errsize))
                goto done;
            json_t *data = json_object_get (root, "data");
            if (!data) {
                bus_errf (err, errsize, "signal without data");
                goto done;
            }
            char *dump = json_dumps (data, JSON_COMPACT | JSON_ENCODE_ANY);
            if (!dump || strlen (dump) > DISC_SIGNAL_MAX) {
                free (dump);
                bus_errf (err, errsize, "signal data larger than %d bytes", DISC_SIGNAL_MAX);
                goto done;
            }
            snprintf (out->data, sizeof out->data, "%s", dump);
            free (dump);
            break;
        }
        default:
            break;
    }
    rc = 0;
done:
    json_decref (root);
    return rc;
}

int
disc_json_meta (const char *text, size_t size, disc_meta_t *out, char *err, size_t errsize)
{
    memset (out, 0, sizeof *out);
    json_t *root = s_load (text, size, err, errsize);
    if (!root)
        return -1;
    int rc = -1;
    json_t *servers = json_object_get (root, "iceServers");
    if (s_uint (root, "ttl", false, 365 * 86400, &out->ttl, err, errsize))
        goto done;
    if (servers && !json_is_array (servers)) {
        bus_errf (err, errsize, "iceServers is not an array");
        goto done;
    }
    size_t index;
    json_t *server;
    json_array_foreach (servers, index, server) {
        if (!json_is_object (server) || !json_is_array (json_object_get (server, "urls"))) {
            bus_errf (err, errsize, "iceServers[%zu] has no urls array", index);
            goto done;
        }
        if (json_object_get (server, "credential"))
            out->has_turn = true;
    }
    char *dump = servers ? json_dumps (servers, JSON_COMPACT) : strdup ("[]");
    if (!dump || strlen (dump) >= sizeof out->ice_servers) {
        free (dump);
        bus_errf (err, errsize, "iceServers larger than %zu bytes", sizeof out->ice_servers - 1);
        goto done;
    }
    snprintf (out->ice_servers, sizeof out->ice_servers, "%s", dump);
    free (dump);
    rc = 0;
done:
    json_decref (root);
    return rc;
}

uint32_t
disc_json_heartbeat (const char *text, size_t size)
{
    uint32_t value = 0;
    json_t *root = s_load (text, size, NULL, 0);
    if (root && s_uint (root, "heartbeat_interval", false, 86400, &value, NULL, 0))
        value = 0;
    json_decref (root);
    return value;
}

int
disc_json_delivered (const char *text, size_t size, uint32_t *delivered, char *err, size_t errsize)
{
    *delivered = 0;
    json_t *root = s_load (text, size, err, errsize);
    if (!root)
        return -1;
    int rc = s_uint (root, "delivered", true, UINT32_MAX, delivered, err, errsize);
    json_decref (root);
    return rc;
}

void
disc_json_error_text (const char *text, size_t size, char *out, size_t outsize)
{
    json_t *root = s_load (text, size, NULL, 0);
    if (root && outsize > 0 && bus_json_string (root, "error", S_REQUIRED, out, outsize - 1, NULL, 0) == 0) {
        json_decref (root);
        return;
    }
    json_decref (root);
    //  Not our JSON: a short, printable excerpt
    size_t n = 0;
    for (size_t i = 0; text && i < size && n + 1 < outsize && n < 80; i++)
        out [n++] = isprint ((unsigned char) text [i]) ? text [i] : '.';
    out [n] = 0;
}

//  --------------------------------------------------------------------------
//  Self test

#define S_KEY "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="
#define S_PEER "{\"id\":\"b4c804b23a21c6aa\",\"name\":\"laptop\",\"public_key\":\"" S_KEY "\"," \
               "\"vip\":\"10.100.0.1\",\"endpoints\":[\"198.51.100.7:51820\"],\"candidates\":[]," \
               "\"online\":true,\"last_seen\":1700000000000,\"created\":1700000000000}"

static void
s_expect_event_error (const char *text, const char *what, bool verbose)
{
    disc_event_t *event = malloc (sizeof *event);
    assert (event);
    char err [200] = "";
    int rc = disc_json_event (text, strlen (text), event, err, sizeof err);
    if (verbose || rc != -1 || !strstr (err, what))
        printf ("  %s -> %s\n", text, err);
    fflush (stdout);
    assert (rc == -1 && strstr (err, what));
    free (event);
}

void
disc_json_test (bool verbose)
{
    char err [200];
    const char *text = "{\"nonce\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\",\"registry_key\":\"" S_KEY "\","
                       "\"expires_in\":60,\"scheme\":\"bifrost-keyproof-v1\"}";
    disc_challenge_t challenge;
    assert (disc_json_challenge (text, strlen (text), &challenge, err, sizeof err) == 0);
    assert (strcmp (challenge.registry_key, S_KEY) == 0 && strlen (challenge.nonce) == 44);
    text = "{\"nonce\":\"x\",\"registry_key\":\"short\"}";
    assert (disc_json_challenge (text, strlen (text), &challenge, err, sizeof err) == -1);

    text = "{\"peer\":" S_PEER ",\"peer_token\":\"bpt_xyz\",\"network\":{\"id\":\"office\",\"name\":\"office\","
           "\"cidr\":\"10.100.0.0/16\",\"prefix\":16},\"heartbeat_interval\":30,\"registry_key\":\"" S_KEY "\"}";
    disc_registration_t reg;
    assert (disc_json_registration (text, strlen (text), &reg, err, sizeof err) == 0);
    assert (strcmp (reg.peer.id, "b4c804b23a21c6aa") == 0 && strcmp (reg.peer.vip, "10.100.0.1") == 0);
    assert (reg.prefix == 16 && reg.heartbeat_s == 30 && strcmp (reg.peer_token, "bpt_xyz") == 0);
    assert (reg.peer.endpoints_count == 1 && strcmp (reg.peer.endpoints [0], "198.51.100.7:51820") == 0);
    assert (reg.peer.key [0] == 0xab && reg.peer.online);
    text = "{\"peer\":" S_PEER ",\"peer_token\":\"bpt_xyz\",\"network\":{\"id\":\"office\",\"prefix\":33}}";
    assert (disc_json_registration (text, strlen (text), &reg, err, sizeof err) == -1 && strstr (err, "prefix"));

    text = "{\"peers\":[" S_PEER "," S_PEER "]}";
    disc_peer_info_t *peers;
    size_t count;
    assert (disc_json_peers (text, strlen (text), &peers, &count, err, sizeof err) == 0 && count == 2);
    free (peers);
    text = "{\"peers\":[]}";
    assert (disc_json_peers (text, strlen (text), &peers, &count, err, sizeof err) == 0 && count == 0);
    free (peers);
    const char *bad_peers [] = {
        "{\"peers\":{}}", "{\"peers\":[5]}", "[1,2]", "{\"peers\":[{\"id\":\"zz\"}]}", "", "{\"peers\":[",
        "{\"peers\":[],\"peers\":[]}"
    };
    for (size_t i = 0; i < sizeof bad_peers / sizeof bad_peers [0]; i++) {
        assert (disc_json_peers (bad_peers [i], strlen (bad_peers [i]), &peers, &count, err, sizeof err) == -1);
        assert (peers == NULL && count == 0);
        if (verbose)
            printf ("  %s -> %s\n", bad_peers [i], err);
    }

    disc_event_t *event = malloc (sizeof *event);
    assert (event);
    text = "{\"event\":\"peer.left\",\"network\":\"office\",\"peer\":" S_PEER ",\"reason\":\"expired\"}";
    assert (disc_json_event (text, strlen (text), event, err, sizeof err) == 0);
    assert (event->type == DISC_EVENT_LEFT && strcmp (event->reason, "expired") == 0);
    text = "{\"event\":\"signal\",\"network\":\"office\",\"from\":\"b4c804b23a21c6aa\",\"to\":\"0000000000000001\","
           "\"type\":\"offer\",\"data\":{\"sdp\":\"v=0\"}}";
    assert (disc_json_event (text, strlen (text), event, err, sizeof err) == 0);
    assert (event->type == DISC_EVENT_SIGNAL && strcmp (event->data, "{\"sdp\":\"v=0\"}") == 0);
    assert (strcmp (event->signal_type, "offer") == 0);
    text = "{\"event\":\"subscribed\",\"network\":\"office\",\"peer\":null}";
    assert (disc_json_event (text, strlen (text), event, err, sizeof err) == 0 && event->type == DISC_EVENT_SUBSCRIBED);
    text = "{\"event\":\"something.new\"}";
    assert (disc_json_event (text, strlen (text), event, err, sizeof err) == 0 && event->type == DISC_EVENT_OTHER);
    free (event);
    s_expect_event_error ("{\"event\":5}", "not a string", verbose);
    s_expect_event_error ("{\"event\":\"peer.joined\"}", "not an object", verbose);
    s_expect_event_error ("{\"event\":\"peer.joined\",\"peer\":{\"id\":\"b4c804b23a21c6aa\",\"name\":\"x\","
                          "\"public_key\":\"" S_KEY "\",\"vip\":\"10.1.2.300\"}}", "not an IPv4", verbose);
    s_expect_event_error ("{\"event\":\"peer.joined\",\"peer\":{\"id\":\"b4c804b23a21c6aa\",\"name\":\"x\","
                          "\"public_key\":\"" S_KEY "\",\"vip\":\"10.1.2.3\",\"endpoints\":[\"nocolon\"]}}",
                          "host:port", verbose);
    s_expect_event_error ("{\"event\":\"peer.joined\",\"peer\":{\"id\":\"b4c804b23a21c6aa\",\"name\":\"x\\u0000y\","
                          "\"public_key\":\"" S_KEY "\",\"vip\":\"10.1.2.3\"}}", "NUL", verbose);
    s_expect_event_error ("{\"event\":\"signal\",\"from\":\"b4c804b23a21c6aa\",\"type\":\"offer\"}", "without data", verbose);
    s_expect_event_error ("{\"event\":\"peer.left\",\"peer\":{\"id\":\"b4c804b23a21c6aa\",\"name\":\"x\","
                          "\"public_key\":\"AAAA\",\"vip\":\"10.1.2.3\"}}", "32 bytes", verbose);
    s_expect_event_error ("\"just a string\"", "expected a JSON object", verbose);
    s_expect_event_error ("{\"event\":", "bad JSON", verbose);
    s_expect_event_error ("[1]", "expected a JSON object", verbose);

    disc_meta_t meta;
    text = "{\"name\":\"bifrost-registry\",\"version\":\"0.1.0\",\"ttl\":86400,\"iceServers\":[{\"urls\":"
           "[\"stun:turn.example.org:3478\"]},{\"urls\":[\"turn:turn.example.org:3478?transport=udp\"],"
           "\"username\":\"1700086400:b4c804b23a21c6aa\",\"credential\":\"dvSdV1YGXw0TI92UauKfluPnRsc=\"}]}";
    assert (disc_json_meta (text, strlen (text), &meta, err, sizeof err) == 0);
    assert (meta.ttl == 86400 && meta.has_turn && strstr (meta.ice_servers, "turn:turn.example.org"));
    text = "{\"name\":\"bifrost-registry\"}";
    assert (disc_json_meta (text, strlen (text), &meta, err, sizeof err) == 0);
    assert (meta.ttl == 0 && !meta.has_turn && strcmp (meta.ice_servers, "[]") == 0);
    text = "{\"iceServers\":[{\"url\":\"x\"}]}";
    assert (disc_json_meta (text, strlen (text), &meta, err, sizeof err) == -1);

    text = "{\"online\":true,\"heartbeat_interval\":30}";
    assert (disc_json_heartbeat (text, strlen (text)) == 30 && disc_json_heartbeat ("x", 1) == 0);
    uint32_t delivered;
    assert (disc_json_delivered ("{\"delivered\":2}", 15, &delivered, err, sizeof err) == 0 && delivered == 2);
    char msg [100];
    disc_json_error_text ("{\"error\":\"invalid token\"}", 25, msg, sizeof msg);
    assert (strcmp (msg, "invalid token") == 0);
    disc_json_error_text ("<html>\n", 7, msg, sizeof msg);
    assert (strcmp (msg, "<html>.") == 0);
}
