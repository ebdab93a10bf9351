/*  bifrost-registry: the registry server. The config is read and checked in
    s_check_config (every error reported with file and line, exit 78), setup
    opens the database and listens, a timer sweeps leases. The API itself is
    reg_api; the transport reg_http. */
#include "config.h"
#include "reg_alloc.h"
#include "reg_api.h"
#include "reg_http.h"
#include "bus_log.h"
#include "bus_privs.h"
#include "bus_service.h"
#include "bus_config_schema.h"
#include <assert.h>
#include <sys/stat.h>

#define REGISTRY_VERSION PACKAGE_VERSION

static struct {
    reg_api_config_t api;
    reg_http_config_t http;
    char database [512];
    const char *stun [9];
} s_opt;

static reg_api_t *s_api;
static reg_http_t *s_http;

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

static int
s_check_config (bus_config_t *config, void *arg)
{
    memset (&s_opt, 0, sizeof s_opt);
    const char *state = getenv ("BIFROST_STATE_DIR");
    snprintf (s_opt.database, sizeof s_opt.database, "%s/registry.db", state && *state ? state : "/var/lib/bifrost");
    s_opt.api.database = s_opt.database;
    s_opt.api.turn.version = REGISTRY_VERSION;
    s_opt.http.sweep_ms = 250;
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
    s_opt.http.listen = r.listen;
    config_setting_t *database = config_lookup (raw, "registry.database");
    if (database && config_setting_type (database) == CONFIG_TYPE_STRING)
        snprintf (s_opt.database, sizeof s_opt.database, "%s", r.database);
    s_opt.api.admin_token = s_set (r.admin_token);
    s_opt.api.default_cidr = r.default_cidr;
    s_opt.api.heartbeat_s = r.heartbeat_interval_ms / 1000;
    s_opt.api.offline_s = r.offline_after_ms / 1000;
    s_opt.api.expire_s = r.expire_after_ms / 1000;
    if (s_opt.api.offline_s < s_opt.api.heartbeat_s || s_opt.api.expire_s < s_opt.api.offline_s)
        bus_config_error (config, group, "registry: need heartbeat_interval <= offline_after <= expire_after");
    s_opt.http.max_body = (size_t) r.max_body;
    s_opt.http.rate = (double) r.rate_limit;
    s_opt.http.burst = (double) r.rate_burst;
    s_opt.http.tls_cert = s_set (r.tls_cert);
    s_opt.http.tls_key = s_set (r.tls_key);
    if (!s_opt.http.tls_cert != !s_opt.http.tls_key)
        bus_config_error (config, group, "registry: tls_cert and tls_key must be set together");
    s_opt.api.queue_max = (size_t) r.event_queue;
    s_opt.api.turn.name = r.name;
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
            s_opt.stun [i] = url;
    }
    s_opt.api.turn.extra_stun = s_opt.stun;

    //  TURN: the host clients use, ports, the shared secret from the environment;
    //  the keys only coturn reads are coturn's to check
    static const char *const turn_keys [] = {
        "host", "external_ip", "listening_ip", "listen_port", "tls_cert", "secret", "credential_ttl", NULL
    };
    static const char *const tls_keys [] = { "tls_port", NULL };
    bus_cfg_turn_t t, tls;
    bus_cfg_read (config, &bus_cfg_turn_group, NULL, &t, 0, turn_keys, NULL, NULL);
    const char *turn_host = s_set (t.host) ? t.host : s_set (t.external_ip) ? t.external_ip : s_set (t.listening_ip);
    s_opt.api.turn.host = turn ? turn_host : NULL;
    s_opt.api.turn.port = (int) t.listen_port;
    if (s_set (t.tls_cert))         //  its port counts only with a certificate
        bus_cfg_read (config, &bus_cfg_turn_group, NULL, &tls, 0, tls_keys, NULL, NULL);
    s_opt.api.turn.tls_port = s_set (t.tls_cert) ? (int) tls.tls_port : 0;
    s_opt.api.turn.secret = s_set (t.secret);
    s_opt.api.turn.ttl_s = t.credential_ttl_ms / 1000;
    if (turn && !turn_host)
        bus_config_error (config, turn, "turn: set host (the name or address clients use to reach coturn)");
    if (empty) {
        //  Without a file the admin token may come from the environment
        const char *token = getenv ("BIFROST_ADMIN_TOKEN");
        s_opt.api.admin_token = token && *token ? token : NULL;
        //  (the strings read from it are the schema's defaults, not its memory)
        bus_config_destroy (&empty);
    }
    return 0;
}

//  The service thread must keep ticking; if it hangs, exit so the supervisor
//  restarts us (the loop's own heartbeats would otherwise look healthy).
static int
s_watchdog (bus_loop_t *loop, int timer_id, void *arg)
{
    int64_t idle = reg_http_idle_ms (s_http);
    if (idle > 10000) {
        bus_error ("service thread stuck for %lld ms; exiting", (long long) idle);
        _exit (1);
    }
    return 0;
}

static int
s_setup (bus_service_t *svc, void *arg)
{
    char err [300];
    //  The database's folder is created private if it is missing
    char dir [512];
    snprintf (dir, sizeof dir, "%s", s_opt.database);
    char *slash = strrchr (dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (mkdir (dir, 0700) != 0 && errno != EEXIST) {
            bus_error ("cannot create %s: %s", dir, strerror (errno));
            return -1;
        }
    }
    s_api = reg_api_new (&s_opt.api, err, sizeof err);
    if (!s_api) {
        bus_error ("%s", err);
        return -1;
    }
    if (!s_opt.api.admin_token)
        bus_warn ("no registry.admin_token: admin routes are disabled");
    if (!s_opt.api.turn.secret)
        bus_info ("no turn.secret: /client/meta gives STUN servers only");
    s_http = reg_http_new (s_api, &s_opt.http, err, sizeof err);
    if (!s_http) {
        bus_error ("%s", err);
        reg_api_destroy (&s_api);
        return -1;
    }
    bus_loop_timer (bus_service_loop (svc), 1000, 0, s_watchdog, NULL);
    bus_info ("database %s", s_opt.database);
    return 0;
}

static void
s_teardown (bus_service_t *svc, void *arg)
{
    reg_http_destroy (&s_http);
    reg_api_destroy (&s_api);
}

//  None (DESIGN.md), but CAP_NET_BIND_SERVICE for a port below 1024
//  (registry.listen = "0.0.0.0:443"); s_opt is the checked config
static uint64_t
s_caps (bus_config_t *config, void *arg)
{
    char host [128];
    int port;
    if (reg_http_parse_listen (s_opt.http.listen, host, sizeof host, &port) == 0
    &&  port > 0 && port < 1024)
        return BUS_CAP (CAP_NET_BIND_SERVICE);
    return 0;
}

int
main (int argc, char **argv)
{
    static const bus_service_def_t def = {
        .name = "registry",
        .summary = "networks, peers, virtual IPs, join tokens, events and ICE config over HTTP(S)/WebSocket",
        .check_config = s_check_config,
        .setup = s_setup,
        .teardown = s_teardown,
        .caps = s_caps,
    };
    return bus_service_main (&def, argc, argv);
}
