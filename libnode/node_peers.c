/*  node_peers: parse and look up the static peer list. */
#include "node_peers.h"

#include <arpa/inet.h>
#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define streq(a, b) (strcmp ((a), (b)) == 0)

struct _node_peers_t {
    node_peer_t *peers;
    uint32_t count;
};

static void
s_mask (node_prefix_t *p)
{
    int bits = p->family == 4 ? 32 : 128;
    for (int i = 0; i < bits / 8; i++) {
        int keep = p->prefix - i * 8;
        if (keep >= 8)
            continue;
        p->addr [i] &= keep <= 0 ? 0 : (uint8_t) (0xff << (8 - keep));
    }
}

int
node_prefix_parse (const char *text, node_prefix_t *prefix, char *err, size_t errsize)
{
    memset (prefix, 0, sizeof *prefix);
    char buf [64];
    if (!text || strlen (text) >= sizeof buf || !*text) {
        snprintf (err, errsize, "expected an address with prefix, like 10.100.0.2/32");
        return -1;
    }
    strcpy (buf, text);
    char *slash = strchr (buf, '/');
    long bits = -1;
    if (slash) {
        *slash = 0;
        char *end;
        bits = strtol (slash + 1, &end, 10);
        if (*end || slash [1] == 0 || bits < 0) {
            snprintf (err, errsize, "'%s': the prefix length is not a number", text);
            return -1;
        }
    }
    if (inet_pton (AF_INET, buf, prefix->addr) == 1)
        prefix->family = 4;
    else
    if (inet_pton (AF_INET6, buf, prefix->addr) == 1)
        prefix->family = 6;
    else {
        snprintf (err, errsize, "'%s' is not an IPv4 or IPv6 address", buf);
        return -1;
    }
    int max = prefix->family == 4 ? 32 : 128;
    if (bits > max) {
        snprintf (err, errsize, "'%s': prefix length %ld exceeds %d", text, bits, max);
        return -1;
    }
    prefix->prefix = (uint8_t) (bits < 0 ? max : bits);
    s_mask (prefix);
    return 0;
}

bool
node_prefix_contains (const node_prefix_t *prefix, int family, const uint8_t *addr)
{
    if (family != prefix->family)
        return false;
    node_prefix_t probe = { .family = prefix->family, .prefix = prefix->prefix };
    memcpy (probe.addr, addr, family == 4 ? 4 : 16);
    s_mask (&probe);
    return memcmp (probe.addr, prefix->addr, family == 4 ? 4 : 16) == 0;
}

void
node_prefix_format (const node_prefix_t *prefix, char *buf, size_t size)
{
    char addr [INET6_ADDRSTRLEN];
    inet_ntop (prefix->family == 4 ? AF_INET : AF_INET6, prefix->addr, addr, sizeof addr);
    snprintf (buf, size, "%s/%u", addr, prefix->prefix);
}

static bool
s_overlap (const node_prefix_t *a, const node_prefix_t *b)
{
    if (a->family != b->family)
        return false;
    return a->prefix <= b->prefix ? node_prefix_contains (a, b->family, b->addr)
                                  : node_prefix_contains (b, a->family, a->addr);
}

//  Same charset as bus names (bus_name_valid), without pulling in the envelope.
static bool
s_name_valid (const char *name)
{
    size_t n = strlen (name);
    if (n == 0 || n > 48)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", name [i]))
            return false;
    return true;
}

//  The owner's checks of one peer's keys, run by bus_cfg_read as each key is
//  read (so errors come in the order of the keys): what the schema cannot
//  know, such as a name's characters or a key's base64.
typedef struct {
    node_peer_t *peer;
} s_reading_t;

static void
s_check_key (bus_config_t *config, config_setting_t *group, config_setting_t *setting,
             const bus_cfg_key_t *key, bool refused, void *out, void *arg)
{
    const bus_cfg_peer_t *in = (const bus_cfg_peer_t *) out;
    node_peer_t *peer = ((s_reading_t *) arg)->peer;
    if (streq (key->name, "name")) {
        if (!in->name)
            bus_config_error (config, group, "name: missing (every peer needs a name)");
        else
        if (!s_name_valid (in->name))
            bus_config_error (config, setting, "expected 1..48 characters of [A-Za-z0-9._-]");
        else
            snprintf (peer->name, sizeof peer->name, "%s", in->name);
    }
    else
    if (streq (key->name, "public_key")) {
        const char *text = in->public_key;
        size_t key_len = 0;
        if (!text)
            bus_config_error (config, group, "public_key: missing (the peer's `bifrostctl key`)");
        else
        if (strlen (text) >= sizeof peer->public_key
        ||  sodium_base642bin (peer->key, sizeof peer->key, text, strlen (text), NULL, &key_len, NULL,
                               sodium_base64_VARIANT_ORIGINAL) != 0
        ||  key_len != 32)
            bus_config_error (config, setting, "expected a base64 X25519 public key (44 characters)");
        else
            snprintf (peer->public_key, sizeof peer->public_key, "%s", text);
    }
    else
    if (streq (key->name, "allowed_ips") && in->allowed_ips) {
        config_setting_t *allowed = in->allowed_ips;
        bool single = config_setting_type (allowed) == CONFIG_TYPE_STRING;
        if (!single && !config_setting_is_array (allowed) && !config_setting_is_list (allowed))
            bus_config_error (config, allowed, "expected a list of addresses, like [\"10.100.0.2/32\"]");
        int n = single ? 1 : config_setting_length (allowed);
        for (int i = 0; i < n; i++) {
            config_setting_t *item = single ? allowed : config_setting_get_elem (allowed, (unsigned) i);
            const char *text = bus_config_value_string (config, item, NULL);
            char err [120];
            if (!text)
                continue;
            if (peer->allowed_count == NODE_PEER_ALLOWED_MAX)
                bus_config_error (config, item, "at most %d prefixes per peer", NODE_PEER_ALLOWED_MAX);
            else
            if (node_prefix_parse (text, &peer->allowed [peer->allowed_count], err, sizeof err))
                bus_config_error (config, item, "%s", err);
            else
                peer->allowed_count++;
        }
    }
    else
    if (streq (key->name, "endpoint")) {
        if (strlen (in->endpoint) >= sizeof peer->endpoint || (*in->endpoint && !strrchr (in->endpoint, ':')))
            bus_config_error (config, setting, "expected host:port, a.b.c.d:port or [v6]:port");
        else
            snprintf (peer->endpoint, sizeof peer->endpoint, "%s", in->endpoint);
    }
    else
    if (streq (key->name, "direct")) {
        peer->direct = in->direct;
        if (peer->direct && !*peer->endpoint)
            bus_config_error (config, setting, "direct = true needs an endpoint to connect to");
    }
}

//  Reads one peer; false (with errors recorded) when it is unusable. The
//  peer's keepalive is resolved here, once for every service: its own
//  override, else the node's connection.keepalive_interval.
static bool
s_read_peer (node_peers_t *self, bus_config_t *config, config_setting_t *group, node_peer_t *peer,
             const bus_cfg_connection_t *connection)
{
    size_t errors = bus_config_error_count (config);
    bus_cfg_peer_t in;
    s_reading_t reading = { peer };
    if (bus_cfg_read (config, &bus_cfg_peer_group, group, &in, BUS_CFG_CHECK_KEYS, NULL,
                      s_check_key, &reading) < 0)
        return false;
    peer->keepalive_ms = in.keepalive_ms > 0 ? in.keepalive_ms : connection->keepalive_interval_ms;
    config_setting_t *name_setting = config_setting_get_member (group, "name");
    config_setting_t *key_setting = config_setting_get_member (group, "public_key");

    //  Nothing may be ambiguous across peers
    for (uint32_t i = 0; i < self->count; i++) {
        const node_peer_t *other = &self->peers [i];
        if (*peer->name && strcmp (other->name, peer->name) == 0)
            bus_config_error (config, name_setting, "peer name '%s' is used twice", peer->name);
        if (*peer->public_key && memcmp (other->key, peer->key, 32) == 0)
            bus_config_error (config, key_setting, "the same public key is configured for '%s' already", other->name);
        for (uint32_t a = 0; a < peer->allowed_count; a++)
            for (uint32_t b = 0; b < other->allowed_count; b++)
                if (s_overlap (&peer->allowed [a], &other->allowed [b])) {
                    char text [64];
                    node_prefix_format (&peer->allowed [a], text, sizeof text);
                    bus_config_error (config, in.allowed_ips, "%s overlaps the allowed_ips of '%s'", text, other->name);
                }
    }
    return bus_config_error_count (config) == errors;
}

node_peers_t *
node_peers_load (bus_config_t *config, const bus_cfg_connection_t *connection)
{
    if (!connection)
        connection = &bus_cfg_connection_defaults;
    node_peers_t *self = (node_peers_t *) calloc (1, sizeof (node_peers_t));
    assert (self);
    config_setting_t *list = config ? config_lookup (bus_config_raw (config), "peers") : NULL;
    if (!list)
        return self;
    if (!config_setting_is_list (list)) {
        bus_config_error (config, list, "expected a list: peers = ( { ... }, { ... } );");
        return self;
    }
    int n = config_setting_length (list);
    if (n > NODE_PEERS_MAX) {
        bus_config_error (config, list, "at most %d peers", NODE_PEERS_MAX);
        n = NODE_PEERS_MAX;
    }
    self->peers = (node_peer_t *) calloc ((size_t) (n ? n : 1), sizeof (node_peer_t));
    assert (self->peers);
    for (int i = 0; i < n; i++) {
        node_peer_t *peer = &self->peers [self->count];
        memset (peer, 0, sizeof *peer);
        peer->index = self->count;
        if (s_read_peer (self, config, config_setting_get_elem (list, (unsigned) i), peer, connection))
            self->count++;
    }
    return self;
}

void
node_peers_destroy (node_peers_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->peers);
        free (*self_p);
        *self_p = NULL;
    }
}

uint32_t node_peers_count (node_peers_t *self) { return self->count; }

const node_peer_t *
node_peers_get (node_peers_t *self, uint32_t index)
{
    return index < self->count ? &self->peers [index] : NULL;
}

const node_peer_t *
node_peers_find_key (node_peers_t *self, const uint8_t key [32])
{
    for (uint32_t i = 0; i < self->count; i++)
        if (sodium_memcmp (self->peers [i].key, key, 32) == 0)
            return &self->peers [i];
    return NULL;
}

const node_peer_t *
node_peers_route (node_peers_t *self, int family, const uint8_t *addr)
{
    const node_peer_t *best = NULL;
    int best_len = -1;
    for (uint32_t i = 0; i < self->count; i++)
        for (uint32_t a = 0; a < self->peers [i].allowed_count; a++) {
            const node_prefix_t *p = &self->peers [i].allowed [a];
            if (p->prefix > best_len && node_prefix_contains (p, family, addr)) {
                best = &self->peers [i];
                best_len = p->prefix;
            }
        }
    return best;
}

void
node_peers_test (bool verbose)
{
    char err [160];
    node_prefix_t p;
    assert (node_prefix_parse ("10.100.0.2/16", &p, err, sizeof err) == 0);
    assert (p.family == 4 && p.prefix == 16 && p.addr [2] == 0 && p.addr [3] == 0);
    uint8_t inside [4] = { 10, 100, 7, 9 }, outside [4] = { 10, 101, 0, 1 };
    assert (node_prefix_contains (&p, 4, inside) && !node_prefix_contains (&p, 4, outside));
    assert (node_prefix_parse ("fd00::1", &p, err, sizeof err) == 0 && p.family == 6 && p.prefix == 128);
    const char *bad [] = { "10.1.2.3/33", "10.1.2.3/", "10.1.2/24", "fd00::/129", "", "x/8", "10.0.0.1/-1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++)
        assert (node_prefix_parse (bad [i], &p, err, sizeof err) == -1 && *err);

    uint8_t pk [32], sk [32];
    crypto_box_keypair (pk, sk);
    char b64 [64], b64b [64];
    sodium_bin2base64 (b64, sizeof b64, pk, 32, sodium_base64_VARIANT_ORIGINAL);
    crypto_box_keypair (pk, sk);
    sodium_bin2base64 (b64b, sizeof b64b, pk, 32, sodium_base64_VARIANT_ORIGINAL);
    char text [1024];
    snprintf (text, sizeof text,
        "peers = (\n"
        "  { name = \"b\"; public_key = \"%s\"; allowed_ips = [\"10.100.0.2/32\"];\n"
        "    endpoint = \"192.0.2.2:51820\"; direct = true; },\n"
        "  { name = \"c\"; public_key = \"%s\"; allowed_ips = \"10.100.1.0/24\"; }\n"
        ");\n", b64, b64b);
    bus_config_t *config = bus_config_load_string (text, "good.cfg", err, sizeof err);
    assert (config);
    node_peers_t *peers = node_peers_load (config, NULL);
    assert (bus_config_error_count (config) == 0);
    assert (node_peers_count (peers) == 2);
    const node_peer_t *b = node_peers_get (peers, 0);
    assert (strcmp (b->name, "b") == 0 && b->direct && b->index == 0);
    assert (node_peers_find_key (peers, pk) == node_peers_get (peers, 1));
    uint8_t to_b [4] = { 10, 100, 0, 2 }, nowhere [4] = { 10, 1, 1, 1 };
    //  No override: the node's keepalive, from the schema's default
    assert (b->keepalive_ms == bus_cfg_connection_defaults.keepalive_interval_ms);
    node_peers_destroy (&peers);
    bus_config_destroy (&config);

    //  The per-peer keepalive overrides the node's, resolved once here
    snprintf (text, sizeof text,
        "peers = (\n"
        "  { name = \"b\"; public_key = \"%s\"; keepalive = \"5s\"; },\n"
        "  { name = \"c\"; public_key = \"%s\"; }\n"
        ");\n", b64, b64b);
    config = bus_config_load_string (text, "keepalive.cfg", err, sizeof err);
    assert (config);
    bus_cfg_connection_t connection = bus_cfg_connection_defaults;
    connection.keepalive_interval_ms = 40000;
    peers = node_peers_load (config, &connection);
    assert (bus_config_error_count (config) == 0);
    assert (node_peers_get (peers, 0)->keepalive_ms == 5000);
    assert (node_peers_get (peers, 1)->keepalive_ms == 40000);
    node_peers_destroy (&peers);
    bus_config_destroy (&config);

    //  Overlap, duplicate name, bad key, direct without endpoint, unknown key: all
    //  reported with their line
    snprintf (text, sizeof text,
        "peers = (\n"
        "  { name = \"b\"; public_key = \"%s\"; allowed_ips = [\"10.100.0.2/32\"]; },\n"
        "  { name = \"b\"; public_key = \"not-base64\"; direct = true; colour = 1; },\n"
        "  { name = \"d\"; public_key = \"%s\"; allowed_ips = [\"10.100.0.0/24\"]; }\n"
        ");\n", b64, b64b);
    config = bus_config_load_string (text, "bad.cfg", err, sizeof err);
    assert (config);
    peers = node_peers_load (config, NULL);
    if (verbose)
        bus_config_report (config, stdout);
    assert (bus_config_error_count (config) >= 5);
    assert (node_peers_count (peers) == 1);
    node_peers_destroy (&peers);
    bus_config_destroy (&config);

    //  Routing: longest prefix wins
    snprintf (text, sizeof text,
        "peers = (\n"
        "  { name = \"b\"; public_key = \"%s\"; allowed_ips = [\"10.100.0.2/32\", \"fd00::2/128\"]; },\n"
        "  { name = \"c\"; public_key = \"%s\"; allowed_ips = [\"10.100.1.0/24\"]; }\n"
        ");\n", b64, b64b);
    config = bus_config_load_string (text, "route.cfg", err, sizeof err);
    peers = node_peers_load (config, NULL);
    assert (bus_config_error_count (config) == 0);
    uint8_t in_c [4] = { 10, 100, 1, 77 };
    assert (node_peers_route (peers, 4, to_b) == node_peers_get (peers, 0));
    assert (node_peers_route (peers, 4, in_c) == node_peers_get (peers, 1));
    assert (node_peers_route (peers, 4, nowhere) == NULL);
    node_peers_destroy (&peers);
    bus_config_destroy (&config);
    //  No config, no peers
    peers = node_peers_load (NULL, NULL);
    assert (node_peers_count (peers) == 0);
    node_peers_destroy (&peers);
}
