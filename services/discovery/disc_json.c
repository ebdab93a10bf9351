/*  disc_json: registry replies and events, checked member by member (see
    disc_json.h). The bodies are declared in schemas/rest.def, the declarations the
    registry encodes them from, and decoded by librest; this file keeps what
    discovery needs from them. */
#include "disc_json.h"
#include "rest_codec.h"
#include "bus_log.h"

#include <assert.h>
#include <ctype.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Parses a reply of at most DISC_JSON_MAX bytes; NULL with err for anything else
static json_t *
s_load (const rest_schema_t *schema, const char *text, size_t size, char *err, size_t errsize)
{
    if (size > DISC_JSON_MAX)
        return bus_errf (err, errsize, "reply of %zu bytes is too big", size), NULL;
    return rest_load (schema, text, size, err, errsize);
}

//  Decodes a whole reply into out (a <schema>_t)
static int
s_decode (const rest_schema_t *schema, const char *text, size_t size, void *out, char *err, size_t errsize)
{
    json_t *root = s_load (schema, text, size, err, errsize);
    if (!root)
        return -1;
    int rc = rest_decode_object (schema, REST_REPLY, root, out, err, errsize);
    json_decref (root);
    return rc;
}

//  A decoded peer record into what discovery keeps (the first DISC_ENDPOINTS_MAX
//  endpoints: peer.up carries no more)
static void
s_peer (const rest_peer_t *in, disc_peer_info_t *peer)
{
    memset (peer, 0, sizeof *peer);
    snprintf (peer->id, sizeof peer->id, "%s", in->id);
    snprintf (peer->name, sizeof peer->name, "%s", in->name);
    snprintf (peer->public_key, sizeof peer->public_key, "%s", in->public_key);
    snprintf (peer->vip, sizeof peer->vip, "%s", in->vip);
    int rc = rest_base64_exact (in->public_key, peer->key, 32);
    assert (rc == 0);               //  the codec checked it
    for (uint32_t i = 0; i < in->endpoints_count && i < DISC_ENDPOINTS_MAX; i++)
        snprintf (peer->endpoints [peer->endpoints_count++], sizeof peer->endpoints [0], "%s", in->endpoints [i]);
    peer->online = in->has_online ? in->online : true;
}

//  A decoded relay grant into what discovery keeps (the codec checked every
//  server, the tag and the credential's form)
static void
s_relay (const rest_relay_grant_t *in, bool given, disc_relay_t *relay)
{
    memset (relay, 0, sizeof *relay);
    if (!given)
        return;
    relay->given = true;
    for (uint32_t i = 0; i < in->servers_count && i < DISC_RELAYS_MAX; i++)
        snprintf (relay->servers [relay->servers_count++], sizeof relay->servers [0], "%s", in->servers [i]);
    snprintf (relay->network, sizeof relay->network, "%s", in->network);
    snprintf (relay->credential, sizeof relay->credential, "%s", in->credential);
    relay->tls_port = in->has_tls_port ? (uint16_t) in->tls_port : 0;
}

int
disc_json_challenge (const char *text, size_t size, disc_challenge_t *out, char *err, size_t errsize)
{
    memset (out, 0, sizeof *out);
    rest_challenge_t in;
    if (s_decode (&rest_challenge_schema, text, size, &in, err, errsize))
        return -1;
    snprintf (out->nonce, sizeof out->nonce, "%s", in.nonce);
    snprintf (out->registry_key, sizeof out->registry_key, "%s", in.registry_key);
    return 0;
}

int
disc_json_registration (const char *text, size_t size, disc_registration_t *out, char *err, size_t errsize)
{
    memset (out, 0, sizeof *out);
    rest_register_reply_t *in = (rest_register_reply_t *) malloc (sizeof *in);
    assert (in);
    int rc = s_decode (&rest_register_reply_schema, text, size, in, err, errsize);
    if (rc == 0) {
        s_peer (&in->peer, &out->peer);
        snprintf (out->peer_token, sizeof out->peer_token, "%s", in->peer_token);
        snprintf (out->network_id, sizeof out->network_id, "%s", in->network.id);
        out->prefix = (uint32_t) in->network.prefix;
        //  The registry makes networks of /8 to /30 only (reg_alloc); anything
        //  else would turn the tunnel's address into a /1 route or a /32 island
        if (out->prefix < DISC_PREFIX_MIN || out->prefix > DISC_PREFIX_MAX) {
            snprintf (err, errsize, "network prefix %u: expected %d to %d, as the registry's networks",
                      out->prefix, DISC_PREFIX_MIN, DISC_PREFIX_MAX);
            rc = -1;
        }
        out->heartbeat_s = (uint32_t) in->heartbeat_interval;
        s_relay (&in->relay, in->has_relay, &out->relay);
    }
    sodium_memzero (in, sizeof *in);        //  the peer token and the relay credential
    free (in);
    return rc;
}

int
disc_json_peers (const char *text, size_t size, disc_peer_info_t **peers, size_t *count,
                 char *err, size_t errsize)
{
    *peers = NULL;
    *count = 0;
    json_t *root = s_load (&rest_peer_list_schema, text, size, err, errsize);
    if (!root)
        return -1;
    //  One peer at a time: a list of 10,000 decoded whole would take 45 MB. The
    //  member's name and bound still come from the declaration.
    const rest_field_t *field = rest_peer_list_schema.fields ();
    int rc = -1;
    json_t *list = json_object_get (root, field->name);
    size_t n = json_array_size (list);
    if (!json_is_array (list) || n > (size_t) field->max || n > DISC_PEERS_LIST_MAX) {
        bus_errf (err, errsize, "member '%s' is not an array of at most %d peers", field->name, (int) field->max);
        goto done;
    }
    disc_peer_info_t *array = calloc (n ? n : 1, sizeof *array);
    rest_peer_t *one = malloc (sizeof *one);
    assert (array && one);
    for (size_t i = 0; i < n; i++) {
        char why [200];
        if (rest_decode_object (field->record, REST_REPLY, json_array_get (list, i), one, why, sizeof why)) {
            bus_errf (err, errsize, "%s[%zu]: %s", field->name, i, why);
            free (array);
            free (one);
            goto done;
        }
        s_peer (one, &array [i]);
    }
    free (one);
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
    json_t *root = s_load (&rest_event_schema, text, size, err, errsize);
    if (!root)
        return -1;
    int rc = -1;
    rest_event_t head;
    if (rest_decode_object (&rest_event_schema, REST_REPLY, root, &head, err, errsize))
        goto done;
    out->type = DISC_EVENT_OTHER;
    for (size_t i = 0; i < sizeof s_events / sizeof s_events [0]; i++)
        if (strcmp (head.event, s_events [i].name) == 0)
            out->type = s_events [i].type;
    switch (out->type) {
        case DISC_EVENT_JOINED:
        case DISC_EVENT_CHANGED:
        case DISC_EVENT_LEFT: {
            rest_event_peer_t *event = malloc (sizeof *event);
            assert (event);
            int failed = rest_decode_object (&rest_event_peer_schema, REST_REPLY, root, event, err, errsize);
            if (!failed) {
                s_peer (&event->peer, &out->peer);
                snprintf (out->reason, sizeof out->reason, "%s", event->reason);
            }
            free (event);
            if (failed)
                goto done;
            break;
        }
        case DISC_EVENT_SIGNAL: {
            rest_event_signal_t *event = malloc (sizeof *event);
            assert (event);
            int failed = rest_decode_object (&rest_event_signal_schema, REST_REPLY, root, event, err, errsize);
            if (!failed) {
                snprintf (out->from, sizeof out->from, "%s", event->from);
                snprintf (out->signal_type, sizeof out->signal_type, "%s", event->type);
                snprintf (out->data, sizeof out->data, "%s", event->data);
            }
            free (event);
            if (failed)
                goto done;
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
    json_t *root = s_load (&rest_meta_schema, text, size, err, errsize);
    if (!root)
        return -1;
    int rc = -1;
    rest_meta_t meta;
    if (rest_decode_object (&rest_meta_schema, REST_REPLY, root, &meta, err, errsize))
        goto done;
    out->ttl = (uint32_t) meta.ttl;
    for (uint32_t i = 0; i < meta.iceServers_count; i++)
        if (meta.iceServers [i].has_credential)
            out->has_turn = true;
    rest_free (&rest_meta_schema, &meta);
    //  The array goes on to nat as the registry wrote it (checked above)
    json_t *servers = json_object_get (root, "iceServers");
    char *dump = servers && !json_is_null (servers) ? json_dumps (servers, JSON_COMPACT) : strdup ("[]");
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

int
disc_json_heartbeat_reply (const char *text, size_t size, disc_heartbeat_t *out, char *err, size_t errsize)
{
    memset (out, 0, sizeof *out);
    rest_heartbeat_reply_t *reply = (rest_heartbeat_reply_t *) malloc (sizeof *reply);
    assert (reply);
    int rc = s_decode (&rest_heartbeat_reply_schema, text, size, reply, err, errsize);
    if (rc == 0) {
        out->heartbeat_s = (uint32_t) reply->heartbeat_interval;
        s_relay (&reply->relay, reply->has_relay, &out->relay);
    }
    sodium_memzero (reply, sizeof *reply);
    free (reply);
    return rc;
}

uint32_t
disc_json_heartbeat (const char *text, size_t size)
{
    disc_heartbeat_t reply;
    uint32_t interval = disc_json_heartbeat_reply (text, size, &reply, NULL, 0) ? 0 : reply.heartbeat_s;
    sodium_memzero (&reply, sizeof reply);
    return interval;
}

int
disc_json_delivered (const char *text, size_t size, uint32_t *delivered, char *err, size_t errsize)
{
    *delivered = 0;
    rest_signal_reply_t reply;
    if (s_decode (&rest_signal_reply_schema, text, size, &reply, err, errsize))
        return -1;
    *delivered = (uint32_t) reply.delivered;
    return 0;
}

void
disc_json_error_text (const char *text, size_t size, char *out, size_t outsize)
{
    rest_error_t reply;
    if (outsize > 0 && s_decode (&rest_error_schema, text, size, &reply, NULL, 0) == 0) {
        snprintf (out, outsize, "%s", reply.error);
        return;
    }
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
#define S_CRED "1700086400.0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define S_GRANT "{\"servers\":[\"relay-1@192.0.2.10:3479\",\"relay-2@[2001:db8::2]:3479\"]," \
                "\"network\":\"8d3f0c2b9a716e54\",\"credential\":\"" S_CRED "\",\"tls_port\":443}"

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
    assert (!reg.relay.given && reg.relay.servers_count == 0);
    text = "{\"peer\":" S_PEER ",\"peer_token\":\"bpt_xyz\",\"network\":{\"id\":\"office\",\"prefix\":33}}";
    assert (disc_json_registration (text, strlen (text), &reg, err, sizeof err) == -1 && strstr (err, "prefix"));
    //  The registry's networks are /8 to /30 (issue 16): a /31, /32 or /1 is refused
    text = "{\"peer\":" S_PEER ",\"peer_token\":\"bpt_xyz\",\"network\":{\"id\":\"office\",\"prefix\":31}}";
    assert (disc_json_registration (text, strlen (text), &reg, err, sizeof err) == -1 && strstr (err, "prefix 31"));
    text = "{\"peer\":" S_PEER ",\"peer_token\":\"bpt_xyz\",\"network\":{\"id\":\"office\",\"prefix\":7}}";
    assert (disc_json_registration (text, strlen (text), &reg, err, sizeof err) == -1 && strstr (err, "8 to 30"));
    //  The relay grant, kept as it came; a malformed one fails the reply
    text = "{\"peer\":" S_PEER ",\"peer_token\":\"bpt_xyz\",\"network\":{\"id\":\"office\",\"prefix\":16},"
           "\"relay\":" S_GRANT "}";
    assert (disc_json_registration (text, strlen (text), &reg, err, sizeof err) == 0);
    assert (reg.relay.given && reg.relay.servers_count == 2 && strcmp (reg.relay.servers [1], "relay-2@[2001:db8::2]:3479") == 0);
    assert (strcmp (reg.relay.network, "8d3f0c2b9a716e54") == 0 && strcmp (reg.relay.credential, S_CRED) == 0);
    assert (reg.relay.tls_port == 443);
    text = "{\"peer\":" S_PEER ",\"peer_token\":\"bpt_xyz\",\"network\":{\"id\":\"office\",\"prefix\":16},"
           "\"relay\":{\"servers\":[\"relay-1@192.0.2.10:3479\"],\"network\":\"8d3f0c2b9a716e54\",\"credential\":\"forged\"}}";
    assert (disc_json_registration (text, strlen (text), &reg, err, sizeof err) == -1 && strstr (err, "credential"));

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
    s_expect_event_error ("{\"event\":\"peer.joined\"}", "missing member 'peer'", verbose);
    s_expect_event_error ("{\"event\":\"peer.joined\",\"peer\":{\"id\":\"b4c804b23a21c6aa\",\"name\":\"x\","
                          "\"public_key\":\"" S_KEY "\",\"vip\":\"10.1.2.300\"}}", "not an IPv4", verbose);
    s_expect_event_error ("{\"event\":\"peer.joined\",\"peer\":{\"id\":\"b4c804b23a21c6aa\",\"name\":\"x\","
                          "\"public_key\":\"" S_KEY "\",\"vip\":\"10.1.2.3\",\"endpoints\":[\"nocolon\"]}}",
                          "host:port", verbose);
    s_expect_event_error ("{\"event\":\"peer.joined\",\"peer\":{\"id\":\"b4c804b23a21c6aa\",\"name\":\"x\\u0000y\","
                          "\"public_key\":\"" S_KEY "\",\"vip\":\"10.1.2.3\"}}", "NUL", verbose);
    s_expect_event_error ("{\"event\":\"signal\",\"from\":\"b4c804b23a21c6aa\",\"type\":\"offer\"}", "missing member 'data'", verbose);
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
    disc_heartbeat_t beat;
    assert (disc_json_heartbeat_reply (text, strlen (text), &beat, err, sizeof err) == 0 && !beat.relay.given);
    text = "{\"online\":true,\"heartbeat_interval\":30,\"relay\":" S_GRANT "}";
    assert (disc_json_heartbeat_reply (text, strlen (text), &beat, err, sizeof err) == 0);
    assert (beat.heartbeat_s == 30 && beat.relay.given && strcmp (beat.relay.credential, S_CRED) == 0);
    text = "{\"online\":true,\"relay\":{\"servers\":[\"no-port@192.0.2.1\"],\"network\":\"8d3f0c2b9a716e54\","
           "\"credential\":\"" S_CRED "\"}}";
    assert (disc_json_heartbeat_reply (text, strlen (text), &beat, err, sizeof err) == -1 && strstr (err, "servers"));
    uint32_t delivered;
    assert (disc_json_delivered ("{\"delivered\":2}", 15, &delivered, err, sizeof err) == 0 && delivered == 2);
    char msg [100];
    disc_json_error_text ("{\"error\":\"invalid token\"}", 25, msg, sizeof msg);
    assert (strcmp (msg, "invalid token") == 0);
    disc_json_error_text ("<html>\n", 7, msg, sizeof msg);
    assert (strcmp (msg, "<html>.") == 0);
}
