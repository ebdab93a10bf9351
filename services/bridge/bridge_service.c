/*  bridge_service: bifrost-bridge under bifrostd (why and how: bridge_service.h). */
#include "bridge_service.h"
#include "bus_log.h"
#include "bus_privs.h"
#include "ws_tls.h"
#include "bus_testbed.h"
#include "bus_client.h"
#include <stdatomic.h>

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _bridge_service_t {
    bus_service_t *svc;
    bridge_server_t *server;
    bridge_peers_t *peers;              //  for `peer=`, from discovery's events
    unsigned instance;                  //  N of bridge.N
    bool tls;
};

//  ---------------------------------------------------------------------------
//  Configuration

//  bridge.token: what bridge_params accepts of a client (1..128 printable, no space)
static void
s_check_token (bus_config_t *config, config_setting_t *group, const char *token)
{
    config_setting_t *setting = config_setting_get_member (group, "token");
    if (!token || !*token) {
        bus_config_error (config, setting ? setting : group, "bridge.token is required (token = \"${BRIDGE_TOKEN}\" "
                          "with pass_env = [\"BRIDGE_TOKEN\"]; e.g. openssl rand -hex 32)");
        return;
    }
    size_t len = strlen (token);
    bool printable = true;
    for (size_t i = 0; i < len; i++)
        printable &= token [i] > ' ' && token [i] < 127;
    if (len > BRIDGE_TOKEN_MAX || !printable)
        bus_config_error (config, setting, "bridge.token: expected 1..%d printable characters without space "
                          "(what a client can send)", BRIDGE_TOKEN_MAX);
}

//  bridge.tls_*: both files or neither
static void
s_check_tls (bus_config_t *config, config_setting_t *group, bridge_service_config_t *out)
{
    const char *cert = out->bridge.tls_cert, *key = out->bridge.tls_key;
    bool has_cert = cert && *cert, has_key = key && *key;
    if (has_cert != has_key) {
        bus_config_error (config, config_setting_get_member (group, has_cert ? "tls_cert" : "tls_key"),
                          "bridge.%s is set but bridge.%s is not: WebSocket over TLS needs both "
                          "(or neither: plain ws://)", has_cert ? "tls_cert" : "tls_key",
                          has_cert ? "tls_key" : "tls_cert");
        return;
    }
    if (!has_cert)
        return;
    out->tls_cert_pem = ws_tls_read_pem (cert, false, &out->tls_cert_size);
    if (!out->tls_cert_pem) {
        bus_config_error (config, config_setting_get_member (group, "tls_cert"),
                          "bridge.tls_cert: cannot read a PEM certificate from %s: %s", cert, strerror (errno));
        return;
    }
    out->tls_key_pem = ws_tls_read_pem (key, true, &out->tls_key_size);
    if (!out->tls_key_pem) {
        bus_config_error (config, config_setting_get_member (group, "tls_key"),
                          "bridge.tls_key: cannot read a PEM key from %s: %s", key, strerror (errno));
        return;
    }
    out->tls = true;
}

//  bridge.public_address: an address literal of either family, no port
static void
s_check_public (bus_config_t *config, config_setting_t *group, bridge_service_config_t *out)
{
    const char *text = out->bridge.public_address;
    if (!text || !*text)
        return;
    struct sockaddr_in *sin = (struct sockaddr_in *) &out->public_addr;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &out->public_addr;
    memset (&out->public_addr, 0, sizeof out->public_addr);
    if (inet_pton (AF_INET, text, &sin->sin_addr) == 1)
        sin->sin_family = AF_INET;
    else
    if (inet_pton (AF_INET6, text, &sin6->sin6_addr) == 1)
        sin6->sin6_family = AF_INET6;
    else {
        bus_config_error (config, config_setting_get_member (group, "public_address"),
                          "'%s' is not an address literal (e.g. \"203.0.113.10\" or "
                          "\"2001:db8::1\", without a port: each flow's port is appended)", text);
        return;
    }
    out->has_public = true;
}

void
bridge_service_check_config (bus_config_t *config, bridge_service_config_t *out)
{
    memset (out, 0, sizeof *out);
    bus_cfg_read (config, &bus_cfg_bridge_group, NULL, &out->bridge, BUS_CFG_CHECK_KEYS, NULL, NULL, NULL);
    if (!config)
        return;
    config_setting_t *group = config_lookup (bus_config_raw (config), "bridge");
    if (!group) {
        bus_config_error (config, NULL, "no bridge { ... } group: a bridge needs at least its token "
                          "(bridge = { token = \"${BRIDGE_TOKEN}\"; };)");
        return;
    }
    if (!config_setting_is_group (group))
        return;                         //  bus_cfg_read said so
    s_check_token (config, group, out->bridge.token);
    if (ws_tls_split_listen (out->bridge.listen, out->bind_ip, sizeof out->bind_ip, &out->port))
        bus_config_error (config, config_setting_get_member (group, "listen"),
                          "bridge.listen: expected a numeric address and port, e.g. \"0.0.0.0:8445\" or \"[::]:8445\"");
    if (out->bridge.heartbeat_timeout_ms <= out->bridge.heartbeat_interval_ms) {
        config_setting_t *at = config_setting_get_member (group, "heartbeat_timeout");
        bus_config_error (config, at ? at : config_setting_get_member (group, "heartbeat_interval"),
                          "bridge.heartbeat_timeout must be longer than bridge.heartbeat_interval "
                          "(at least one heartbeat must be able to arrive in it)");
    }
    s_check_public (config, group, out);
    s_check_tls (config, group, out);
}

void
bridge_service_config_clear (bridge_service_config_t *self)
{
    ws_tls_free_pem (&self->tls_key_pem, self->tls_key_size, true);
    ws_tls_free_pem (&self->tls_cert_pem, self->tls_cert_size, false);
    self->tls_key_size = self->tls_cert_size = 0;
    self->tls = false;
}

//  ---------------------------------------------------------------------------
//  The bus

static void
s_on_status (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    bridge_service_t *self = (bridge_service_t *) arg;
    bridge_bus_status_t request;
    char err [200];
    if (bus_envelope_get_msg (env, &bridge_bus_status_schema, &request, err, sizeof err)) {
        bus_service_reply_error (svc, env, 400, "%s", err);
        return;
    }
    const bridge_server_stats_t *s = bridge_server_stats (self->server);
    bridge_bus_status_reply_t reply = {
        .instance = self->instance, .port = bridge_server_port (self->server), .tls = self->tls,
        .flows_open = s->open, .flows_waiting = s->waiting, .flows_established = s->established,
        .flows_opened = s->opened,
        .datagrams_in = s->link.datagrams_in, .datagrams_out = s->link.datagrams_out,
        .messages_in = s->messages_in, .messages_out = s->messages_out,
        .dropped_source = s->link.dropped_source, .dropped_invalid = s->link.dropped_invalid,
        .dropped_slow = s->link.dropped_slow, .dropped_send = s->link.dropped_send,
        .refused_param = s->refused_param, .refused_token = s->refused_token, .refused_peer = s->refused_peer,
        .refused_rate = s->refused_rate, .refused_full = s->refused_full, .refused_other = s->refused_other,
        .refused_address_flows = s->refused_address_flows, .refused_token_flows = s->refused_token_flows,
        .closed_idle = s->closed_idle, .closed_too_large = s->closed_too_large, .closed_text = s->closed_text,
        .closed_rate = s->closed_rate, .closed_internal = s->closed_internal,
        .peers_known = (uint32_t) bridge_peers_count (self->peers),
    };
    bus_service_reply (svc, env, &bridge_bus_status_reply_schema, &reply);
}

//  A message's endpoint list (rows of stride bytes) as pointers: count of them
static size_t
s_endpoints (const char *rows, size_t stride, uint32_t count, const char **out)
{
    size_t n = 0;
    for (; n < count && n < BRIDGE_PEERS_ENDPOINTS; n++)
        out [n] = rows + n * stride;
    return n;
}

//  discovery's peers (schemas/peer.def): peer.up and peer.changed set a
//  peer's endpoints, peer.down forgets it; a bad event is logged and dropped
static void
s_on_peer (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    bridge_service_t *self = (bridge_service_t *) arg;
    const char *type = bus_envelope_type (env);
    char err [200] = "";
    const char *endpoints [BRIDGE_PEERS_ENDPOINTS];
    if (strcmp (type, "peer.up") == 0) {
        peer_up_t *up = (peer_up_t *) calloc (1, sizeof *up);
        assert (up);
        if (bus_envelope_get_msg (env, &peer_up_schema, up, err, sizeof err) == 0) {
            size_t n = s_endpoints (up->endpoints [0], sizeof up->endpoints [0], up->endpoints_count, endpoints);
            if (bridge_peers_up (self->peers, up->index, up->relay_id, endpoints, n, err, sizeof err) == 0)
                bus_debug ("peer %s (%u) is %s: %zu endpoints", up->name, up->index, up->relay_id, n);
        }
        if (*err)
            bus_warn ("peer.up: %s", err);
        free (up);
    }
    else
    if (strcmp (type, "peer.changed") == 0) {
        peer_changed_t *changed = (peer_changed_t *) calloc (1, sizeof *changed);
        assert (changed);
        if (bus_envelope_get_msg (env, &peer_changed_schema, changed, err, sizeof err) == 0)
            bridge_peers_changed (self->peers, changed->index, endpoints,
                                  s_endpoints (changed->endpoints [0], sizeof changed->endpoints [0],
                                               changed->endpoints_count, endpoints));
        else
            bus_warn ("peer.changed: %s", err);
        free (changed);
    }
    else
    if (strcmp (type, "peer.down") == 0) {
        peer_down_t down;
        if (bus_envelope_get_msg (env, &peer_down_schema, &down, err, sizeof err) == 0)
            bridge_peers_down (self->peers, down.index);
        else
            bus_warn ("peer.down: %s", err);
    }
}

//  nat's view of a peer (schemas/nat.def): the endpoint it reaches the peer
//  on now, which a `peer=` flow tries first (bridge_peers_current)
static void
s_on_nat_peer (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    bridge_service_t *self = (bridge_service_t *) arg;
    if (strcmp (bus_envelope_type (env), "nat.peer") != 0)
        return;                 //  nat.peer.down: peer.down follows when it matters
    nat_peer_event_t event;
    char err [200];
    if (bus_envelope_get_msg (env, &nat_peer_event_schema, &event, err, sizeof err) == 0)
        bridge_peers_current (self->peers, event.index, event.endpoint);
    else
        bus_warn ("nat.peer: %s", err);
}

//  ---------------------------------------------------------------------------
//  Life cycle

bridge_service_t *
bridge_service_new (bus_service_t *svc, bridge_service_config_t *config, char *err, size_t err_size)
{
    assert (svc && config);
    bridge_service_t *self = (bridge_service_t *) calloc (1, sizeof *self);
    assert (self);
    self->svc = svc;
    const char *dot = strrchr (bus_service_instance (svc), '.');
    long n = dot ? strtol (dot + 1, NULL, 10) : 1;
    self->instance = n >= 1 ? (unsigned) n : 1;
    self->tls = config->tls;
    self->peers = bridge_peers_new ();
    const bus_cfg_bridge_t *b = &config->bridge;
    bridge_server_config_t sc = {
        .bind_ip = config->bind_ip, .port = config->port,
        .cert_pem = config->tls ? config->tls_cert_pem : NULL, .cert_size = config->tls_cert_size,
        .key_pem = config->tls ? config->tls_key_pem : NULL, .key_size = config->tls_key_size,
        .token = b->token, .max_message = (size_t) b->max_message, .max_flows = (uint32_t) b->max_flows,
        .idle_ms = (int) b->idle_timeout_ms, .heartbeat_ms = (int) b->heartbeat_interval_ms,
        .heartbeat_timeout_ms = (int) b->heartbeat_timeout_ms,
        .connects_per_second = (uint32_t) b->connects_per_second, .bytes_per_second = (uint32_t) b->bytes_per_second,
        .flows_per_address = (uint32_t) b->flows_per_address,
        .address_bytes_per_second = (uint32_t) b->address_bytes_per_second, .token_flows = (uint32_t) b->token_flows,
        .allow_loopback = b->allow_loopback, .public_addr = config->has_public ? &config->public_addr : NULL,
        .peers = self->peers,
    };
    //  lws keeps its own copy of the certificate and key (OpenSSL's)
    self->server = bridge_server_new (bus_service_loop (svc), &sc, err, err_size);
    bridge_service_config_clear (config);
    if (!self->server) {
        bridge_service_destroy (&self);
        return NULL;
    }
    bus_service_handle (svc, "bridge.status", s_on_status, self);
    bus_service_subscribe (svc, "peer.", s_on_peer, self);
    bus_service_subscribe (svc, "nat.peer", s_on_nat_peer, self);
    bus_info ("bridge %u serving %s://%s:%u%s (max %u flows, messages up to %zu bytes%s)", self->instance,
              self->tls ? "wss" : "ws", config->bind_ip, bridge_server_port (self->server), BRIDGE_SERVER_PATH,
              sc.max_flows, sc.max_message, sc.allow_loopback ? ", loopback targets allowed" : "");
    return self;
}

void
bridge_service_destroy (bridge_service_t **self_p)
{
    assert (self_p);
    bridge_service_t *self = *self_p;
    if (!self)
        return;
    bridge_server_destroy (&self->server);
    bridge_peers_destroy (&self->peers);
    free (self);
    *self_p = NULL;
}

bridge_server_t *bridge_service_server (bridge_service_t *self) { return self->server; }

//  ---------------------------------------------------------------------------
//  The program

BUS_SERVICE_PART (bridge_service_t, bridge_service_config_t, bridge_service_check_config,
                  bridge_service_new, bridge_service_destroy, bridge_service_config_clear)

//  None, but CAP_NET_BIND_SERVICE for a port below 1024 (443), until setup bound it
static uint64_t
s_def_caps (bus_config_t *config, void *arg)
{
    return bus_privs_listen_caps (s_part_checked.port);
}

//  It reads the internet and holds its clients' flow keys, never a node key:
//  sandboxed like the relay (its TLS files were read by the config check).
//  seccomp: KEYS, since every flow's keys are in sodium_malloc memory (mlock
//  at run time); not WEBSOCKET, since its lws context is made in setup,
//  before the filter (as the relay's)
const bus_service_def_t bridge_service_def = {
    .name = "bridge",
    .summary = "bridge: WebSocket clients to encrypted, hole-punched UDP flows (/v0/ws/proxy)",
    BUS_SERVICE_PART_HOOKS,
    .seccomp = BUS_SECCOMP_KEYS,
    .caps = s_def_caps,
    .holds_key = false,
    .sandbox = bus_service_sandbox_own,
};

//  ---------------------------------------------------------------------------
//  Self test: what an operator gets wrong in the group, each at its line; the
//  defaults are schemas/bridge.def's numbers; a service on a real loop answers
//  bridge.status (the handler called as the bus would).

//  keep: the config is handed back (its strings are what out points to), else destroyed
static size_t
s_test_check_keep (const char *text, const char *expect, bridge_service_config_t *out, bool verbose,
                   bus_config_t **keep)
{
    char err [300];
    bus_config_t *config = bus_config_load_string (text, "test.cfg", err, sizeof err);
    assert (config);
    bridge_service_check_config (config, out);
    size_t count = bus_config_error_count (config);
    if (verbose)
        for (size_t i = 0; i < count; i++)
            printf ("  %s\n", bus_config_error_text (config, i));
    bool found = !expect;
    for (size_t i = 0; i < count && expect; i++)
        if (strstr (bus_config_error_text (config, i), expect))
            found = true;
    if (!found)
        printf ("expected '%s', got %zu errors\n", expect, count);
    assert (found);
    if (keep)
        *keep = config;
    else
        bus_config_destroy (&config);
    return count;
}

static size_t
s_test_check (const char *text, const char *expect, bridge_service_config_t *out, bool verbose)
{
    return s_test_check_keep (text, expect, out, verbose, NULL);
}

//  discovery's part on a real bus: what it announces, again every 50 ms until
//  the bridge shows it (the bridge may subscribe after the first). Step 0:
//  carol up (index 4); 1: carol's endpoints changed, then dave up (index 5),
//  so dave known means the change arrived (one sender: in order); 2: dave down
static atomic_int s_test_script;

static void
s_test_up (bus_service_t *discovery, uint32_t index, const char *name, const char *id, const char *endpoint)
{
    peer_up_t *up = (peer_up_t *) calloc (1, sizeof *up);
    assert (up);
    up->index = index;
    snprintf (up->name, sizeof up->name, "%s", name);
    snprintf (up->relay_id, sizeof up->relay_id, "%s", id);
    snprintf (up->endpoints [0], sizeof up->endpoints [0], "[2001:db8::c4]:51820");
    snprintf (up->endpoints [1], sizeof up->endpoints [1], "%s", endpoint);
    up->endpoints_count = 2;
    snprintf (up->source, sizeof up->source, "registry");
    bus_service_publish (discovery, &peer_up_schema, up);
    free (up);
}

static int
s_test_announce (bus_loop_t *loop, int timer_id, void *arg)
{
    bus_service_t *discovery = (bus_service_t *) arg;
    int step = atomic_load (&s_test_script);
    if (step == 0)
        s_test_up (discovery, 4, "carol", "00000000000000c4", "192.0.2.4:51820");
    else
    if (step == 1) {
        peer_changed_t changed = { .index = 4, .endpoints_count = 1 };
        snprintf (changed.name, sizeof changed.name, "carol");
        snprintf (changed.endpoints [0], sizeof changed.endpoints [0], "198.51.100.4:7000");
        bus_service_publish (discovery, &peer_changed_schema, &changed);
        s_test_up (discovery, 5, "dave", "00000000000000d5", "192.0.2.5:51820");
    }
    else {
        peer_down_t down = { .index = 5 };
        snprintf (down.name, sizeof down.name, "dave");
        snprintf (down.reason, sizeof down.reason, "left");
        bus_service_publish (discovery, &peer_down_schema, &down);
    }
    return 0;
}

//  Asks bridge.1 for its status until peers_known is want (5 s at most)
static bool
s_test_known (bus_client_t *client, uint32_t want)
{
    for (int attempt = 0; attempt < 250; attempt++) {
        char err [200];
        bridge_bus_status_t request = { .flows = false };
        bus_envelope_t *env = bus_client_request (client, "bridge.1", &bridge_bus_status_schema, &request, 1000, err, sizeof err);
        bridge_bus_status_reply_t reply;
        bool got = env && bus_envelope_get_msg (env, &bridge_bus_status_reply_schema, &reply, err, sizeof err) == 0;
        bus_envelope_destroy (&env);
        if (got && reply.peers_known == want)
            return true;
        zclock_sleep (20);
    }
    return false;
}

//  The bridge service on a real bus (an in-process broker), discovery's
//  events from another service: peer.up makes a peer known by its id, with
//  its endpoints; peer.changed moves them; peer.down forgets it
static void
s_test_bus (bridge_service_config_t *c, bool verbose)
{
    bus_testbed_t *bed = bus_testbed_new ("bridge-service-test");
    const char *dir = bus_testbed_dir (bed);
    char err [300];
    bus_service_t *svc = bus_service_new ("bridge", "bridge.1", dir);
    assert (svc);
    bus_service_set_heartbeat (svc, 100);
    bridge_service_t *self = bridge_service_new (svc, c, err, sizeof err);
    assert (self);
    zactor_t *actor = zactor_new (bus_service_actor, svc);
    atomic_store (&s_test_script, 0);
    bus_service_t *discovery = bus_service_new ("discovery", NULL, dir);
    assert (discovery);
    bus_loop_timer (bus_service_loop (discovery), 50, 0, s_test_announce, discovery);
    zactor_t *discovery_actor = zactor_new (bus_service_actor, discovery);
    bus_client_t *client = bus_testbed_client (bed, "bridge-test");

    assert (s_test_known (client, 1));
    atomic_store (&s_test_script, 1);
    assert (s_test_known (client, 2));
    atomic_store (&s_test_script, 2);
    assert (s_test_known (client, 1));
    //  The table is the service's thread's: read once it stopped (discovery
    //  first, so nothing more is published)
    zactor_destroy (&discovery_actor);
    zactor_destroy (&actor);
    bridge_addr_t cand [BRIDGE_TARGETS_MAX];
    char text [64];
    assert (bridge_peers_find (self->peers, "00000000000000C4", false, cand, BRIDGE_TARGETS_MAX) == 1);
    bridge_addr_text (&cand [0].addr, text, sizeof text);
    assert (streq (text, "198.51.100.4:7000"));
    assert (bridge_peers_find (self->peers, "00000000000000d5", false, cand, BRIDGE_TARGETS_MAX) == -1);
    if (verbose)
        printf ("bridge_service: peer.up, peer.changed and peer.down arrived over the bus\n");
    bus_client_destroy (&client);
    bus_service_destroy (&discovery);
    bridge_service_destroy (&self);
    bus_service_destroy (&svc);
    bus_testbed_destroy (&bed);
}

void
bridge_service_test (bool verbose)
{
    //  The config's bounds are the contract's
    const bus_cfg_key_t *max = bus_cfg_key (&bus_cfg_bridge_group, "max_message");
    assert (max && max->def == BRIDGE_MESSAGE_MAX && max->max == BRIDGE_MESSAGE_MAX_CEILING);

    bridge_service_config_t c;
    memset (&c, 0, sizeof c);
    assert (s_test_check ("x = 1;", "no bridge { ... } group", &c, verbose) >= 1);
    assert (s_test_check ("bridge = { listen = \"0.0.0.0:8445\"; };", "bridge.token is required", &c, verbose) == 1);
    assert (s_test_check ("bridge = { token = \"a b\"; };", "printable characters", &c, verbose) == 1);
    assert (s_test_check ("bridge = { token = \"t\"; listen = \"bridge.example:8445\"; };", "numeric address", &c, verbose) == 1);
    assert (s_test_check ("bridge = { token = \"t\"; tokn = 1; };", "tokn", &c, verbose) >= 1);
    assert (s_test_check ("bridge = { token = \"t\"; max_message = 70000; };", "max_message", &c, verbose) >= 1);
    assert (s_test_check ("bridge = { token = \"t\";\n heartbeat_interval = \"2s\";\n heartbeat_timeout = \"1s\"; };",
                          "test.cfg:3", &c, verbose) == 1);
    assert (s_test_check ("bridge = { token = \"t\";\n public_address = \"203.0.113.10:8445\"; };",
                          "test.cfg:2: bridge.public_address: '203.0.113.10:8445' is not an address literal", &c, verbose) == 1);
    assert (s_test_check ("bridge = { token = \"t\"; public_address = \"bridge.example\"; };",
                          "not an address literal", &c, verbose) == 1);
    assert (s_test_check ("bridge = { token = \"t\"; public_address = \"2001:db8::1\"; };", NULL, &c, verbose) == 0);
    assert (c.has_public && c.public_addr.ss_family == AF_INET6);
    assert (s_test_check ("bridge = { token = \"t\"; tls_cert = \"/etc/hostname\"; };",
                          "bridge.tls_cert is set but bridge.tls_key is not", &c, verbose) == 1);
    assert (s_test_check ("bridge = { token = \"t\"; tls_cert = \"/nonexistent.pem\"; tls_key = \"/x\"; };",
                          "cannot read a PEM certificate", &c, verbose) == 1);
    bridge_service_config_clear (&c);
    //  Good: the defaults, the address split
    bus_config_t *config = NULL;
    assert (s_test_check_keep ("bridge = { token = \"t\"; listen = \"127.0.0.1:0\"; allow_loopback = true; };",
                               NULL, &c, verbose, &config) == 0);
    assert (streq (c.bind_ip, "127.0.0.1") && c.port == 0 && c.bridge.allow_loopback);
    assert (c.bridge.max_message == BRIDGE_MESSAGE_MAX && c.bridge.heartbeat_timeout_ms == 3000 && !c.tls);

    bus_service_t *svc = bus_service_new ("bridge", "bridge.2", "/tmp/bifrost-bridge-test-none");
    assert (svc);
    char err [300];
    bridge_service_t *self = bridge_service_new (svc, &c, err, sizeof err);
    assert (self && self->instance == 2 && bridge_server_port (self->server) > 0);
    bridge_service_destroy (&self);
    assert (self == NULL);
    bus_service_destroy (&svc);
    s_test_bus (&c, verbose);
    bus_config_destroy (&config);
    if (verbose)
        printf ("bridge_service: ok\n");
}
