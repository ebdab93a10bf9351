/*  reg_config: the registry's config, read once through the config schema and
    checked (reg_config.h). Moved out of the program's main so the program is
    one line and the checks have a self test of their own. */
#include "config.h"
#include "reg_config.h"
#include "reg_alloc.h"
#include "bus_config_schema.h"
#include "relay_cred.h"
#include "rest_codec.h"
#include <assert.h>
#include <sodium.h>
#include <stdlib.h>

#define REGISTRY_VERSION PACKAGE_VERSION

//  An empty string is no value
static const char *
s_set (const char *value)
{
    return value && *value ? value : NULL;
}

//  The registry's checks as the schema reads each key: addresses parse, and
//  the lease times follow heartbeat_interval unless set
static void
s_check_registry (bus_config_t *config, config_setting_t *group, config_setting_t *setting,
                  const bus_cfg_key_t *key, bool refused, void *out, void *arg)
{
    bus_cfg_registry_t *r = (bus_cfg_registry_t *) out;
    char err [200];
    if (streq (key->name, "listen")) {
        char host [128];
        int port;
        if (reg_http_parse_listen (r->listen, host, sizeof host, &port))
            bus_config_error (config, setting, "registry.listen: expected host:port or [v6]:port");
    }
    else
    if (streq (key->name, "default_cidr")) {
        uint32_t net;
        int prefix;
        if (reg_cidr_parse (r->default_cidr, &net, &prefix, err, sizeof err))
            bus_config_error (config, setting, "registry.default_cidr: %s", err);
    }
    else
    if (streq (key->name, "offline_after") && (!setting || refused))
        r->offline_after_ms = 3000 * (r->heartbeat_interval_ms / 1000);
    else
    if (streq (key->name, "expire_after") && (!setting || refused))
        r->expire_after_ms = 10000 * (r->heartbeat_interval_ms / 1000);
}

//  The relay keys the registry reads: the secret must be 64 hex digits (an
//  empty one, e.g. an empty variable, is none)
static void
s_check_relay (bus_config_t *config, config_setting_t *group, config_setting_t *setting,
               const bus_cfg_key_t *key, bool refused, void *out, void *arg)
{
    bus_cfg_relay_t *r = (bus_cfg_relay_t *) out;
    reg_config_t *checked = (reg_config_t *) arg;
    if (streq (key->name, "secret") && setting && !refused && s_set (r->secret)) {
        if (relay_cred_secret_parse (r->secret, checked->relay_secret))
            bus_config_error (config, setting, "expected 64 hex digits (32 bytes, "
                              "`openssl rand -hex 32`), got %zu characters", strlen (r->secret));
        else
            checked->api.relay.secret = checked->relay_secret;
    }
}

//  The whole registry config: the defaults that are not the schema's (the
//  database under $BIFROST_STATE_DIR), then the registry, turn and relay groups
void
reg_config_check (bus_config_t *config, reg_config_t *out)
{
    memset (out, 0, sizeof *out);
    const char *state = getenv ("BIFROST_STATE_DIR");
    snprintf (out->database, sizeof out->database, "%s/registry.db", state && *state ? state : "/var/lib/bifrost");
    out->api.database = out->database;
    out->api.turn.version = REGISTRY_VERSION;
    out->http.sweep_ms = 250;
    //  Every other default is the schema's (schemas/config/registry.def, turn.def)
    bus_config_t *empty = NULL;
    if (!config) {
        char err [100];
        empty = bus_config_load_string ("", "(defaults)", err, sizeof err);
        assert (empty);
        config = empty;
    }
    config_t *raw = bus_config_raw (config);
    //  The registry group (schemas/config/registry.def); a group of another type
    //  is not ours to report (as before the schema), so the keys are checked here
    config_setting_t *group = config_lookup (raw, "registry");
    if (group)
        bus_config_check_keys (config, group, bus_cfg_registry_group.names);
    //  The turn group is declared once for us and bifrost-coturn (schemas/config/turn.def)
    config_setting_t *turn = config_lookup (raw, "turn");
    if (turn)
        bus_config_check_keys (config, turn, bus_cfg_turn_group.names);
    bus_cfg_registry_t r;
    bus_cfg_read (config, &bus_cfg_registry_group, NULL, &r, 0, NULL, s_check_registry, NULL);
    out->http.listen = r.listen;
    config_setting_t *database = config_lookup (raw, "registry.database");
    if (database && config_setting_type (database) == CONFIG_TYPE_STRING)
        snprintf (out->database, sizeof out->database, "%s", r.database);
    out->api.admin_token = s_set (r.admin_token);
    out->api.default_cidr = r.default_cidr;
    out->api.heartbeat_s = r.heartbeat_interval_ms / 1000;
    out->api.offline_s = r.offline_after_ms / 1000;
    out->api.expire_s = r.expire_after_ms / 1000;
    if (out->api.offline_s < out->api.heartbeat_s || out->api.expire_s < out->api.offline_s)
        bus_config_error (config, group, "registry: need heartbeat_interval <= offline_after <= expire_after");
    out->http.max_body = (size_t) r.max_body;
    out->http.rate = (double) r.rate_limit;
    out->http.burst = (double) r.rate_burst;
    out->api.registrations_max = (size_t) r.registrations_per_client;
    out->http.tls_cert = s_set (r.tls_cert);
    out->http.tls_key = s_set (r.tls_key);
    if (!out->http.tls_cert != !out->http.tls_key)
        bus_config_error (config, group, "registry: tls_cert and tls_key must be set together");
    out->api.queue_max = (size_t) r.event_queue;
    out->api.turn.name = r.name;
    config_setting_t *stun = r.stun_servers;
    if (stun && !config_setting_is_array (stun) && !config_setting_is_list (stun))
        bus_config_error (config, stun, "registry.stun_servers: expected a list of \"stun:host:port\" strings");
    else
    for (int i = 0; stun && i < config_setting_length (stun) && i < 8; i++) {
        const char *url = bus_config_value_string (config, config_setting_get_elem (stun, (unsigned) i), NULL);
        if (!url || strncmp (url, "stun:", 5) != 0)
            bus_config_error (config, config_setting_get_elem (stun, (unsigned) i),
                              "registry.stun_servers: each entry must start with stun:");
        else
            out->stun [i] = url;
    }
    out->api.turn.extra_stun = out->stun;

    //  TURN: the host clients use, ports, the shared secret from the environment;
    //  the keys only coturn reads are coturn's to check
    static const char *const turn_keys [] = {
        "host", "external_ip", "listening_ip", "listen_port", "tls_cert", "secret", "credential_ttl", NULL
    };
    static const char *const tls_keys [] = { "tls_port", NULL };
    bus_cfg_turn_t t, tls;
    bus_cfg_read (config, &bus_cfg_turn_group, NULL, &t, 0, turn_keys, NULL, NULL);
    const char *turn_host = s_set (t.host) ? t.host : s_set (t.external_ip) ? t.external_ip : s_set (t.listening_ip);
    out->api.turn.host = turn ? turn_host : NULL;
    out->api.turn.port = (int) t.listen_port;
    if (s_set (t.tls_cert))         //  its port counts only with a certificate
        bus_cfg_read (config, &bus_cfg_turn_group, NULL, &tls, 0, tls_keys, NULL, NULL);
    out->api.turn.tls_port = s_set (t.tls_cert) ? (int) tls.tls_port : 0;
    out->api.turn.secret = s_set (t.secret);
    out->api.turn.ttl_s = t.credential_ttl_ms / 1000;
    if (turn && !turn_host)
        bus_config_error (config, turn, "turn: set host (the name or address clients use to reach coturn)");

    //  Relays: the servers nodes get, the secret their credentials are signed
    //  with (declared once for us and the workers, schemas/config/relay.def);
    //  the keys only the workers read are theirs to check
    config_setting_t *relay = config_lookup (raw, "relay");
    if (relay)
        bus_config_check_keys (config, relay, bus_cfg_relay_group.names);
    static const char *const relay_keys [] = { "servers", "secret", "credential_ttl", "tls_listen", "tls_cert", NULL };
    bus_cfg_relay_t rl;
    bus_cfg_read (config, &bus_cfg_relay_group, NULL, &rl, 0, relay_keys, s_check_relay, out);
    out->api.relay.ttl_s = rl.credential_ttl_ms / 1000;
    out->api.relay.servers = out->relays;
    //  WebSocket over TLS: the workers serve it on tls_listen's port when they
    //  have a certificate; the nodes learn that port with their grant
    const char *colon = rl.tls_listen ? strrchr (rl.tls_listen, ':') : NULL;
    long tls_port = colon ? strtol (colon + 1, NULL, 10) : 0;
    if (rl.tls_cert && *rl.tls_cert) {
        if (tls_port < 1 || tls_port > 65535)
            bus_config_error (config, relay ? config_setting_get_member (relay, "tls_listen") : NULL,
                              "relay.tls_listen: expected address:port, e.g. \"0.0.0.0:443\"");
        else
            out->api.relay.tls_port = (uint16_t) tls_port;
    }
    config_setting_t *servers = rl.servers;
    if (servers && !config_setting_is_array (servers) && !config_setting_is_list (servers))
        bus_config_error (config, servers, "expected a list of \"name@host:port\" strings");
    else
    if (servers && config_setting_length (servers) > REG_RELAY_SERVERS_MAX)
        bus_config_error (config, servers, "at most %d relays", REG_RELAY_SERVERS_MAX);
    else
    for (int i = 0, n = 0; servers && i < config_setting_length (servers); i++) {
        config_setting_t *item = config_setting_get_elem (servers, (unsigned) i);
        const char *server = bus_config_value_string (config, item, NULL);
        if (!server || strlen (server) > 120 || !rest_check (REST_RELAY, server))
            bus_config_error (config, item, "each entry must be \"name@host:port\" "
                              "(e.g. \"relay-1@192.0.2.10:3479\")");
        else
            out->relays [n++] = server;
    }
    if (empty) {
        //  Without a file the admin token may come from the environment
        const char *token = getenv ("BIFROST_ADMIN_TOKEN");
        out->api.admin_token = token && *token ? token : NULL;
        //  (the strings read from it are the schema's defaults, not its memory)
        bus_config_destroy (&empty);
    }
}

void
reg_config_clear (reg_config_t *self)
{
    sodium_memzero (self, sizeof *self);
}

//  ---------------------------------------------------------------------------
//  Self test: defaults, a good config read as written, and each bad value
//  reported once at its own file:line.

//  Checks text; asserts the error count, and that the first error (if any)
//  holds where ("test.conf:3:") and what
static void
s_expect (const char *text, size_t errors, const char *where, const char *what, reg_config_t *out)
{
    char err [200];
    bus_config_t *config = bus_config_load_string (text, "test.conf", err, sizeof err);
    assert (config);
    reg_config_check (config, out);
    if (bus_config_error_count (config) != errors) {
        bus_config_report (config, stderr);
        assert (false);
    }
    if (where) {
        const char *line = bus_config_error_text (config, 0);
        assert (line && strstr (line, where) == line);
        assert (strstr (line, what));
    }
    bus_config_destroy (&config);
}

void
reg_config_test (bool verbose)
{
    printf (" * reg_config: ");
    reg_config_t checked;

    //  No file: the schema's defaults, lease times from the heartbeat
    setenv ("BIFROST_STATE_DIR", "/tmp/reg-config-test", 1);
    unsetenv ("BIFROST_ADMIN_TOKEN");
    reg_config_check (NULL, &checked);
    assert (streq (checked.database, "/tmp/reg-config-test/registry.db"));
    assert (checked.api.database == checked.database);
    assert (streq (checked.http.listen, "0.0.0.0:7080"));
    assert (checked.api.heartbeat_s == 30 && checked.api.offline_s == 90 && checked.api.expire_s == 300);
    assert (checked.api.admin_token == NULL);
    assert (checked.api.turn.host == NULL);
    assert (checked.api.turn.extra_stun == checked.stun && checked.stun [0] == NULL);
    assert (checked.api.registrations_max == 256);
    setenv ("BIFROST_ADMIN_TOKEN", "t0ken", 1);
    reg_config_check (NULL, &checked);
    assert (streq (checked.api.admin_token, "t0ken"));
    unsetenv ("BIFROST_ADMIN_TOKEN");

    //  A good file, read as written; the lease times follow a shorter heartbeat
    char err [200];
    bus_config_t *config = bus_config_load_string (
        "registry = {\n"
        "  listen = \"127.0.0.1:443\";\n"
        "  database = \"/tmp/x/r.db\";\n"
        "  admin_token = \"secret\";\n"
        "  heartbeat_interval = \"10s\";\n"
        "  registrations_per_client = 5000;\n"
        "  stun_servers = [ \"stun:a:3478\", \"stun:b:3478\" ];\n"
        "};\n"
        "turn = { host = \"turn.example\"; secret = \"s\"; };\n", "test.conf", err, sizeof err);
    assert (config);
    reg_config_check (config, &checked);
    assert (bus_config_error_count (config) == 0);
    assert (streq (checked.http.listen, "127.0.0.1:443"));
    assert (streq (checked.database, "/tmp/x/r.db"));
    assert (streq (checked.api.admin_token, "secret"));
    assert (checked.api.heartbeat_s == 10 && checked.api.offline_s == 30 && checked.api.expire_s == 100);
    assert (checked.api.registrations_max == 5000);
    assert (streq (checked.stun [0], "stun:a:3478") && streq (checked.stun [1], "stun:b:3478"));
    assert (checked.stun [2] == NULL);
    assert (streq (checked.api.turn.host, "turn.example"));
    assert (streq (checked.api.turn.secret, "s"));
    assert (checked.api.turn.tls_port == 0);
    assert (checked.api.relay.secret == NULL && checked.relays [0] == NULL);    //  no relay group
    bus_config_destroy (&config);
    reg_config_clear (&checked);
    assert (checked.http.listen == NULL);

    //  The relay group: servers as written, the secret as 32 bytes from the
    //  environment, the ttl; the workers' keys are not ours but are known keys
    setenv ("REG_CONFIG_TEST_RELAY_SECRET", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 1);
    config = bus_config_load_string (
        "relay = {\n"
        "  servers = [ \"relay-1@192.0.2.10:3479\", \"relay-2@relay.example.org:443\" ];\n"
        "  secret = \"${REG_CONFIG_TEST_RELAY_SECRET}\";\n"
        "  credential_ttl = \"1h\";\n"
        "  peer_pps = 1000; idle_timeout = \"10s\";\n"
        "  tls_listen = \"0.0.0.0:8443\"; tls_cert = \"/etc/relay.pem\"; tls_key = \"/etc/relay.key\";\n"
        "};\n", "test.conf", err, sizeof err);
    assert (config);
    reg_config_check (config, &checked);
    assert (bus_config_error_count (config) == 0);
    assert (checked.api.relay.tls_port == 8443);        //  the nodes learn the WSS port
    assert (checked.api.relay.secret == checked.relay_secret && checked.relay_secret [31] == 0x1f);
    assert (checked.api.relay.servers == checked.relays);
    assert (streq (checked.relays [0], "relay-1@192.0.2.10:3479") && streq (checked.relays [1], "relay-2@relay.example.org:443"));
    assert (checked.relays [2] == NULL && checked.api.relay.ttl_s == 3600);
    bus_config_destroy (&config);
    reg_config_clear (&checked);
    assert (checked.relay_secret [31] == 0);
    //  An empty secret (an empty variable) is none: relays off, not an error
    setenv ("REG_CONFIG_TEST_RELAY_SECRET", "", 1);
    config = bus_config_load_string ("relay = { servers = [ \"r@192.0.2.1:1\" ]; secret = \"${REG_CONFIG_TEST_RELAY_SECRET}\"; };",
                                     "test.conf", err, sizeof err);
    assert (config);
    reg_config_check (config, &checked);
    assert (bus_config_error_count (config) == 0 && checked.api.relay.secret == NULL);
    bus_config_destroy (&config);
    unsetenv ("REG_CONFIG_TEST_RELAY_SECRET");

    //  Bad values: each reported once at its line, none crashes
    static const struct {
        const char *text, *where, *what;
    } bad [] = {
        { "registry = {\n  listen = \"nope\";\n};\n", "test.conf:2:", "expected host:port" },
        { "registry = {\n\n  default_cidr = \"10.0.0.0/99\";\n};\n", "test.conf:3:", "registry.default_cidr" },
        { "registry = {\n  offline_after = \"5s\";\n  heartbeat_interval = \"10s\";\n};\n",
          "test.conf:1:", "heartbeat_interval <= offline_after <= expire_after" },
        { "registry = {\n  tls_cert = \"/c.pem\";\n};\n", "test.conf:1:", "tls_cert and tls_key must be set together" },
        { "registry = {\n  stun_servers = [ \"stun:a:1\",\n \"turn:b:2\" ];\n};\n",
          "test.conf:3:", "each entry must start with stun:" },
        { "registry = {\n  stun_servers = 5;\n};\n", "test.conf:2:", "registry.stun_servers" },
        { "registry = {\n  lisen = \"x\";\n};\n", "test.conf:2:", "lisen" },
        { "\nturn = {\n  secret = \"s\";\n};\n", "test.conf:2:", "turn: set host" },
        { "relay = {\n  servers = [ \"r@192.0.2.1:3479\" ];\n  secret = \"00ff\";\n};\n",
          "test.conf:3:", "relay.secret: expected 64 hex digits" },
        { "relay = {\n  secret = \"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g\";\n};\n",
          "test.conf:2:", "relay.secret: expected 64 hex digits" },
        { "relay = {\n  servers = [ \"r@192.0.2.1:3479\",\n    \"192.0.2.2:3479\" ];\n};\n",
          "test.conf:3:", "relay.servers.[1]: each entry must be" },
        { "relay = {\n  servers = \"r@192.0.2.1:3479\";\n};\n", "test.conf:2:", "relay.servers: expected a list" },
        { "relay = {\n  servers = [\"a@h:1\",\"b@h:1\",\"c@h:1\",\"d@h:1\",\"e@h:1\",\"f@h:1\",\"g@h:1\",\"h@h:1\",\"i@h:1\"];\n};\n",
          "test.conf:2:", "at most 8 relays" },
        { "relay = {\n  credential_ttl = \"1s\";\n};\n", "test.conf:2:", "credential_ttl" },
        { "relay = {\n\n  secrte = \"x\";\n};\n", "test.conf:3:", "secrte" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++)
        s_expect (bad [i].text, 1, bad [i].where, bad [i].what, &checked);
    unsetenv ("BIFROST_STATE_DIR");
    printf ("OK\n");
}
