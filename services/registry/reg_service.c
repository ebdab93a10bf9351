/*  reg_service: the registry's service class and its program part
    (reg_service.h), so bifrost-registry's main is one line. */
#include "reg_service.h"
#include "bus_log.h"
#include "bus_privs.h"
#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <sys/stat.h>

struct _reg_service_t {
    reg_api_t *api;
    reg_http_t *http;
};

//  The service thread must keep ticking; if it hangs, exit so the supervisor
//  restarts us (the loop's own heartbeats would otherwise look healthy).
static int
s_watchdog (bus_loop_t *loop, int timer_id, void *arg)
{
    reg_service_t *self = (reg_service_t *) arg;
    int64_t idle = reg_http_idle_ms (self->http);
    if (idle > 10000) {
        bus_error ("service thread stuck for %lld ms; exiting", (long long) idle);
        _exit (1);
    }
    return 0;
}

//  The entries of a NULL-terminated list
static size_t
s_count (const char *const *list)
{
    size_t n = 0;
    while (list [n])
        n++;
    return n;
}

reg_service_t *
reg_service_new (bus_service_t *svc, reg_config_t *config, char *err, size_t errsize)
{
    //  The database's folder is created private if it is missing
    char dir [512];
    snprintf (dir, sizeof dir, "%s", config->database);
    char *slash = strrchr (dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (mkdir (dir, 0700) != 0 && errno != EEXIST) {
            snprintf (err, errsize, "cannot create %s: %s", dir, strerror (errno));
            return NULL;
        }
    }
    reg_service_t *self = (reg_service_t *) zmalloc (sizeof (reg_service_t));
    assert (self);
    self->api = reg_api_new (&config->api, err, errsize);
    //  The relay secret now lives in relay_cred's locked memory only
    sodium_memzero (config->relay_secret, sizeof config->relay_secret);
    config->api.relay.secret = NULL;
    if (!self->api) {
        reg_service_destroy (&self);
        return NULL;
    }
    if (!config->api.admin_token)
        bus_warn ("no registry.admin_token: admin routes are disabled");
    if (!config->api.turn.secret)
        bus_info ("no turn.secret: /client/meta gives STUN servers only");
    reg_relay_t *relay = reg_api_relay (self->api);
    if (reg_relay_enabled (relay))
        bus_info ("relays on: %zu server(s), credentials valid for %lld s", s_count (config->relays),
                  (long long) config->api.relay.ttl_s);
    else
        bus_info ("relays off: %s", reg_relay_off_reason (relay));
    self->http = reg_http_new (self->api, &config->http, err, errsize);
    if (!self->http) {
        reg_service_destroy (&self);
        return NULL;
    }
    if (svc) {
        bus_loop_timer (bus_service_loop (svc), 1000, 0, s_watchdog, self);
        reg_status_attach (reg_api_status (self->api), svc);     //  registry.status (bifrost-metrics)
    }
    bus_info ("database %s", config->database);
    return self;
}

void
reg_service_destroy (reg_service_t **self_p)
{
    assert (self_p);
    reg_service_t *self = *self_p;
    if (self) {
        reg_http_destroy (&self->http);
        reg_api_destroy (&self->api);
        free (self);
        *self_p = NULL;
    }
}

//  ---------------------------------------------------------------------------
//  The program (bifrost-registry): the runtime checks the config once, setup
//  gets what was checked.

BUS_SERVICE_PART (reg_service_t, reg_config_t, reg_config_check,
                  reg_service_new, reg_service_destroy, reg_config_clear)

//  None (DESIGN.md), but CAP_NET_BIND_SERVICE for a port below 1024
//  (registry.listen = "0.0.0.0:443")
static uint64_t
s_def_caps (bus_config_t *config, void *arg)
{
    char host [128];
    int port;
    if (reg_http_parse_listen (s_part_checked.http.listen, host, sizeof host, &port))
        return 0;
    return bus_privs_listen_caps (port);
}

//  It faces the internet: sandboxed to the directory of its database (SQLite
//  makes its -wal, -shm and -journal files beside it) and reading its TLS
//  certificate and key
static void
s_def_sandbox (bus_config_t *config, void *arg, const char *run_dir, bus_sandbox_t *paths)
{
    const char *database = s_part_checked.database;
    const char *slash = strrchr (database, '/');
    if (!slash)
        bus_sandbox_write (paths, ".");
    else
        bus_sandbox_write (paths, "%.*s", slash == database ? 1 : (int) (slash - database), database);
    if (s_part_checked.http.tls_cert)
        bus_sandbox_read (paths, "%s", s_part_checked.http.tls_cert);
    if (s_part_checked.http.tls_key)
        bus_sandbox_read (paths, "%s", s_part_checked.http.tls_key);
}

const bus_service_def_t reg_service_def = {
    .name = "registry",
    .summary = "networks, peers, virtual IPs, join tokens, events and ICE config over HTTP(S)/WebSocket",
    BUS_SERVICE_PART_HOOKS,
    .seccomp = BUS_SECCOMP_FILES | BUS_SECCOMP_KEYS, //  its SQLite database; sodium_free of its secrets
    .caps = s_def_caps,
    .sandbox = s_def_sandbox,
};

//  ---------------------------------------------------------------------------
//  Self test: the def's privileges follow the listen port, and the service
//  opens, answers on a port of its own and closes without a bus.

void
reg_service_test (bool verbose)
{
    printf (" * reg_service: ");
    char err [300];
    bus_config_t *config = bus_config_load_string ("registry = { listen = \"127.0.0.1:443\"; };",
                                                   "test.conf", err, sizeof err);
    assert (config);
    assert (reg_service_def.check_config (config, NULL) == 0);
    assert (bus_config_error_count (config) == 0);
    assert (reg_service_def.caps (config, NULL) == BUS_CAP (CAP_NET_BIND_SERVICE));
    bus_config_destroy (&config);
    config = bus_config_load_string ("registry = { listen = \"127.0.0.1:0\"; };",
                                     "test.conf", err, sizeof err);
    assert (config);
    assert (reg_service_def.check_config (config, NULL) == 0);
    assert (reg_service_def.caps (config, NULL) == 0);

    //  A whole service on an ephemeral port, its database in a private folder
    char dir [] = "/tmp/reg-service-test-XXXXXX";
    assert (mkdtemp (dir));
    snprintf (s_part_checked.database, sizeof s_part_checked.database, "%s/db/registry.db", dir);
    reg_service_t *service = reg_service_new (NULL, &s_part_checked, err, sizeof err);
    if (!service)
        fprintf (stderr, "%s\n", err);
    assert (service);
    struct stat st;
    snprintf (err, sizeof err, "%s/db", dir);
    assert (stat (err, &st) == 0 && (st.st_mode & 0777) == 0700);
    reg_service_destroy (&service);
    reg_service_destroy (&service);
    assert (service == NULL);

    //  A database folder that cannot be created: an error, not a crash
    snprintf (s_part_checked.database, sizeof s_part_checked.database, "/proc/nope/db/registry.db");
    assert (reg_service_new (NULL, &s_part_checked, err, sizeof err) == NULL);
    assert (strstr (err, "cannot create"));
    reg_config_clear (&s_part_checked);
    bus_config_destroy (&config);
    snprintf (err, sizeof err, "rm -rf '%s'", dir);
    if (system (err) != 0)
        fprintf (stderr, "could not remove %s\n", dir);
    printf ("OK\n");
}
