/*  reg_validate: request body validation (see reg_validate.h). The bodies and
    their checks are declared in schemas/rest.def and decoded by librest, the same
    declarations discovery encodes from; this file turns them into what the store
    keeps (lists as compact JSON, keys as bytes). */
#include "reg_validate.h"
#include "rest_codec.h"
#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>

bool
reg_valid_name (const char *text)
{
    return text && rest_check (REST_NAME, text);
}

bool
reg_valid_id (const char *text)
{
    return text && rest_check (REST_ID, text);
}

int
reg_base64_exact (const char *text, uint8_t *out, size_t size)
{
    return rest_base64_exact (text, out, size);
}

//  A decoded string list as the compact JSON array the store keeps ("[]" when
//  absent), or -1 when it does not fit out.
static int
s_list_json (const char *name, const char *items, size_t item_size, uint32_t count,
             char *out, size_t outsize, char *err, size_t errsize)
{
    json_t *list = json_array ();
    for (uint32_t i = 0; i < count; i++)
        json_array_append_new (list, json_string (items + i * item_size));
    char *text = json_dumps (list, JSON_COMPACT);
    json_decref (list);
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

#define S_LIST_JSON(body, name, out, err, errsize) \
    s_list_json (#name, (body)->name [0], sizeof (body)->name [0], (body)->name##_count, \
                 out, sizeof (out), err, errsize)

//  The endpoints and candidates of a register or heartbeat request into out; 0 or -1
#define S_LISTS(in, out, err, errsize) \
    ((out)->has_endpoints = (in)->has_endpoints, (out)->has_candidates = (in)->has_candidates, \
     (S_LIST_JSON (in, endpoints, (out)->endpoints, err, errsize) \
      || S_LIST_JSON (in, candidates, (out)->candidates, err, errsize)) ? -1 : 0)

int
reg_validate_network (const void *body, size_t size, reg_network_req_t *out, char *err, size_t errsize)
{
    memset (out, 0, sizeof *out);
    rest_network_req_t in;
    if (rest_decode (&rest_network_req_schema, (const char *) body, size, &in, err, errsize))
        return -1;
    snprintf (out->id, sizeof out->id, "%s", in.id);
    snprintf (out->name, sizeof out->name, "%s", in.name);
    snprintf (out->cidr, sizeof out->cidr, "%s", in.cidr);
    out->heartbeat_s = in.settings.heartbeat_interval;
    out->offline_s = in.settings.offline_after;
    out->expire_s = in.settings.expire_after;
    return 0;
}

int
reg_validate_peer (const void *body, size_t size, reg_peer_req_t *out, char *err, size_t errsize)
{
    memset (out, 0, sizeof *out);
    rest_register_req_t in;
    if (rest_decode (&rest_register_req_schema, (const char *) body, size, &in, err, errsize))
        return -1;
    snprintf (out->public_key_b64, sizeof out->public_key_b64, "%s", in.public_key);
    snprintf (out->nonce_b64, sizeof out->nonce_b64, "%s", in.nonce);
    snprintf (out->name, sizeof out->name, "%s", in.name);
    //  The codec checked that the three are the base64 of 32 bytes
    int rc = rest_base64_exact (in.public_key, out->public_key, 32)
           | rest_base64_exact (in.nonce, out->nonce, REG_NONCE_SIZE)
           | rest_base64_exact (in.proof, out->proof, 32);
    assert (rc == 0);
    return S_LISTS (&in, out, err, errsize);
}

int
reg_validate_token (const void *body, size_t size, reg_token_req_t *out, char *err, size_t errsize)
{
    memset (out, 0, sizeof *out);
    out->ttl_s = 86400;
    if (size == 0)
        return 0;               //  all defaults
    rest_token_req_t in;
    if (rest_decode (&rest_token_req_schema, (const char *) body, size, &in, err, errsize))
        return -1;
    if (in.has_ttl)
        out->ttl_s = in.ttl;
    out->reusable = in.reusable;
    snprintf (out->description, sizeof out->description, "%s", in.description);
    return 0;
}

static int s_paths (const rest_heartbeat_req_t *in, reg_heartbeat_req_t *out, char *err, size_t errsize);

int
reg_validate_heartbeat (const void *body, size_t size, reg_heartbeat_req_t *out, char *err, size_t errsize)
{
    memset (out, 0, sizeof *out);
    snprintf (out->endpoints, sizeof out->endpoints, "[]");
    snprintf (out->candidates, sizeof out->candidates, "[]");
    if (size == 0)
        return 0;
    rest_heartbeat_req_t in;
    if (rest_decode (&rest_heartbeat_req_schema, (const char *) body, size, &in, err, errsize))
        return -1;
    int rc = S_LISTS (&in, out, err, errsize);
    if (rc == 0 && in.has_paths)
        rc = s_paths (&in, out, err, errsize);
    rest_free (&rest_heartbeat_req_schema, &in);
    return rc;
}

static bool
s_path_kind (const char *path)
{
    return strcmp (path, "direct") == 0 || strcmp (path, "relay") == 0 || strcmp (path, "turn") == 0
        || strcmp (path, "peer") == 0;
}

//  The paths of a heartbeat: what the schema cannot say (the kinds, a peer's
//  via is a peer id, one entry per peer); 0 or -1
static int
s_paths (const rest_heartbeat_req_t *in, reg_heartbeat_req_t *out, char *err, size_t errsize)
{
    assert (in->paths_count <= REG_PATHS_MAX);
    out->has_paths = true;
    out->paths_count = in->paths_count;
    for (uint32_t i = 0; i < in->paths_count; i++) {
        const rest_path_t *p = &in->paths [i];
        reg_path_t *to = &out->paths [i];
        if (!s_path_kind (p->path)) {
            snprintf (err, errsize, "'paths[%u].path' must be direct, relay, turn or peer", i);
            return -1;
        }
        if (strcmp (p->path, "peer") == 0 && !(p->has_via && rest_check (REST_HEX16, p->via))) {
            snprintf (err, errsize, "'paths[%u].via' must be the id of the first peer crossed", i);
            return -1;
        }
        for (uint32_t j = 0; j < i; j++)
            if (strcasecmp (in->paths [j].peer, p->peer) == 0) {
                snprintf (err, errsize, "'paths[%u].peer' is listed twice", i);
                return -1;
            }
        for (size_t k = 0; k < sizeof to->peer; k++)      //  ids are lower case (reg_auth_random_id)
            to->peer [k] = (char) tolower ((unsigned char) p->peer [k]);
        to->peer [sizeof to->peer - 1] = 0;
        snprintf (to->path, sizeof to->path, "%s", p->path);
        snprintf (to->via, sizeof to->via, "%s", p->has_via ? p->via : "");
        if (strcmp (p->path, "peer") == 0)
            for (char *c = to->via; *c; c++)
                *c = (char) tolower ((unsigned char) *c);
        to->rtt_ms = p->has_rtt_ms ? p->rtt_ms : -1;
    }
    return 0;
}

static bool
s_rtt_moved (int64_t a, int64_t b)
{
    if ((a < 0) != (b < 0))
        return true;
    int64_t diff = a > b ? a - b : b - a;
    int64_t base = a > b ? a : b;
    return diff > 5 && diff * 5 > base;
}

bool
reg_paths_changed (const reg_path_t *old, size_t old_count, const reg_path_t *now, size_t now_count)
{
    if (old_count != now_count)
        return true;
    for (size_t i = 0; i < now_count; i++) {
        const reg_path_t *match = NULL;
        for (size_t j = 0; j < old_count && !match; j++)
            if (strcasecmp (old [j].peer, now [i].peer) == 0)
                match = &old [j];
        if (!match || strcmp (match->path, now [i].path) || strcmp (match->via, now [i].via)
        ||  s_rtt_moved (match->rtt_ms, now [i].rtt_ms))
            return true;
    }
    return false;
}

int
reg_validate_signal (const void *body, size_t size, reg_signal_req_t *out, char *err, size_t errsize)
{
    memset (out, 0, sizeof *out);
    rest_signal_req_t in;
    if (rest_decode (&rest_signal_req_schema, (const char *) body, size, &in, err, errsize))
        return -1;
    snprintf (out->type, sizeof out->type, "%s", in.type);
    snprintf (out->data, sizeof out->data, "%s", in.data);
    return 0;
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
    assert (!hb.has_paths);
    //  Paths: the kinds, a peer path's via, one entry per peer, at most 64
    assert (reg_validate_heartbeat (S ("{\"paths\":[{\"peer\":\"00112233445566aa\",\"path\":\"direct\",\"rtt_ms\":3},"
                                       "{\"peer\":\"00112233445566bb\",\"path\":\"peer\",\"via\":\"00112233445566aa\"},"
                                       "{\"peer\":\"00112233445566cc\",\"path\":\"relay\",\"via\":\"r1\"}]}"),
                                    &hb, err, sizeof err) == 0);
    assert (hb.has_paths && hb.paths_count == 3 && hb.paths [0].rtt_ms == 3 && hb.paths [1].rtt_ms == -1);
    assert (strcmp (hb.paths [1].via, "00112233445566aa") == 0 && strcmp (hb.paths [2].path, "relay") == 0);
    assert (reg_validate_heartbeat (S ("{\"paths\":[]}"), &hb, err, sizeof err) == 0 && hb.has_paths && !hb.paths_count);
    static const char *bad_paths [] = {
        "{\"paths\":{}}", "{\"paths\":[1]}", "{\"paths\":[{\"peer\":\"00112233445566aa\"}]}",
        "{\"paths\":[{\"peer\":\"xyz\",\"path\":\"direct\"}]}",
        "{\"paths\":[{\"peer\":\"00112233445566aa\",\"path\":\"carrier-pigeon\"}]}",
        "{\"paths\":[{\"peer\":\"00112233445566aa\",\"path\":\"peer\"}]}",
        "{\"paths\":[{\"peer\":\"00112233445566aa\",\"path\":\"peer\",\"via\":\"relay1\"}]}",
        "{\"paths\":[{\"peer\":\"00112233445566aa\",\"path\":\"direct\",\"rtt_ms\":-1}]}",
        "{\"paths\":[{\"peer\":\"00112233445566aa\",\"path\":\"direct\",\"rtt_ms\":1.5}]}",
        "{\"paths\":[{\"peer\":\"00112233445566aa\",\"path\":\"direct\",\"typo\":1}]}",
        "{\"paths\":[{\"peer\":\"00112233445566aa\",\"path\":\"direct\"},{\"peer\":\"00112233445566AA\",\"path\":\"turn\"}]}",
        NULL
    };
    for (int i = 0; bad_paths [i]; i++) {
        err [0] = 0;
        assert (reg_validate_heartbeat (S (bad_paths [i]), &hb, err, sizeof err) == -1 && *err);
        if (verbose)
            printf ("  heartbeat %s -> %s\n", bad_paths [i], err);
    }
    {
        char many [8192] = "{\"paths\":[";
        for (int i = 0; i < REG_PATHS_MAX + 1; i++)
            snprintf (many + strlen (many), sizeof many - strlen (many), "%s{\"peer\":\"%016x\",\"path\":\"direct\"}",
                      i ? "," : "", i);
        strcat (many, "]}");
        assert (reg_validate_heartbeat (S (many), &hb, err, sizeof err) == -1 && strstr (err, "paths"));
    }
    reg_path_t a [2] = { { "00112233445566aa", "direct", "", 100 }, { "00112233445566bb", "relay", "r1", -1 } };
    reg_path_t b [2] = { a [1], a [0] };
    assert (!reg_paths_changed (a, 2, b, 2));           //  order does not matter
    b [1].rtt_ms = 118;
    assert (!reg_paths_changed (a, 2, b, 2));           //  jitter: 18 %
    b [1].rtt_ms = 130;
    assert (reg_paths_changed (a, 2, b, 2));            //  30 % and 30 ms
    b [1].rtt_ms = 100;
    snprintf (b [0].via, sizeof b [0].via, "r2");
    assert (reg_paths_changed (a, 2, b, 2));
    assert (reg_paths_changed (a, 2, b, 1) && reg_paths_changed (a, 1, a, 2) && !reg_paths_changed (a, 0, a, 0));
    reg_path_t c = a [0];
    c.rtt_ms = 3;
    a [0].rtt_ms = 1;
    assert (!reg_paths_changed (a, 1, &c, 1));          //  200 % but 2 ms
    c.rtt_ms = -1;
    assert (reg_paths_changed (a, 1, &c, 1));           //  no sample any more

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
