/*  metrics_service: bifrost-metrics under bifrostd (why and how: metrics_service.h). */
#include "metrics_service.h"
#include "metrics_http.h"
#include "metrics_render.h"
#include "bus_client.h"
#include "bus_endpoint.h"
#include "bus_log.h"
#include "bus_testbed.h"
#include "bus_rundir.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  What one request of a round asks, and where its answer goes
typedef enum { S_CRYPTO, S_NAT, S_DEVICE, S_DISCOVERY, S_BUS, S_RELAY, S_REGISTRY } s_kind_t;

typedef struct _s_round_t s_round_t;

typedef struct {
    s_round_t *round;
    s_kind_t kind;
    size_t slot;                        //  for relay and registry: the instance's slot
    char to [48];                       //  service or instance asked
} s_ask_t;

struct _s_round_t {
    metrics_service_t *owner;
    int64_t started;
    size_t pending;
    size_t asks_count;
    s_ask_t asks [6 + 2 * METRICS_INSTANCES_MAX];
    sup_status_reply_t *sup;
    crypto_status_reply_t *crypto;
    nat_status_reply_t *nat;
    device_status_reply_t *device;
    discovery_status_reply_t *discovery;
    bus_status_reply_t *bus;
    relay_status_reply_t *relay [METRICS_INSTANCES_MAX];
    registry_status_reply_t *registry [METRICS_INSTANCES_MAX];
    metrics_round_t view;
};

struct _metrics_service_t {
    bus_service_t *svc;
    metrics_http_t *http;
    int timeout_ms, cache_ms;
    s_round_t *round;                   //  the round under way, or NULL
    char *text;                         //  the last round's text
    size_t text_size;
    int64_t text_at;                    //  when it was rendered (0: never)
    uint64_t rounds;
};

//  ---------------------------------------------------------------------------
//  Configuration

void
metrics_service_check_config (bus_config_t *config, metrics_service_config_t *out)
{
    memset (out, 0, sizeof *out);
    bus_cfg_read (config, &bus_cfg_metrics_group, NULL, &out->metrics, BUS_CFG_CHECK_KEYS, NULL, NULL, NULL);
    if (!config)
        return;
    config_setting_t *group = config_lookup (bus_config_raw (config), "metrics");
    config_setting_t *at = group ? config_setting_get_member (group, "listen") : NULL;
    if (metrics_http_split_listen (out->metrics.listen, out->bind_ip, sizeof out->bind_ip, &out->port)) {
        bus_config_error (config, at ? at : group, "metrics.listen: expected a numeric address and port, "
                          "e.g. \"127.0.0.1:9475\" or \"[::1]:9475\"");
        return;
    }
    if (!metrics_http_is_loopback (out->bind_ip) && !out->metrics.allow_remote)
        bus_config_error (config, at ? at : group, "metrics.listen: %s is not a loopback address; the endpoint "
                          "has no authentication, so it listens on loopback unless metrics.allow_remote = true",
                          out->bind_ip);
}

void
metrics_service_config_clear (metrics_service_config_t *self)
{
    (void) self;                        //  nothing secret, nothing allocated
}

//  ---------------------------------------------------------------------------
//  A collection round

static void
s_round_destroy (s_round_t **round_p)
{
    s_round_t *r = *round_p;
    if (!r)
        return;
    free (r->sup);
    free (r->crypto);
    free (r->nat);
    free (r->device);
    free (r->discovery);
    free (r->bus);
    for (size_t i = 0; i < METRICS_INSTANCES_MAX; i++) {
        free (r->relay [i]);
        free (r->registry [i]);
    }
    free (r);
    *round_p = NULL;
}

//  Every answer is in: render, answer the waiting scrapes, keep the text
static void
s_round_end (metrics_service_t *self)
{
    s_round_t *r = self->round;
    metrics_round_t *v = &r->view;
    v->sup = r->sup;
    v->crypto = r->crypto;
    v->nat = r->nat;
    v->device = r->device;
    v->discovery = r->discovery;
    v->bus = r->bus;
    for (size_t i = 0; i < v->relay_count; i++)
        v->relay [i] = r->relay [i];
    for (size_t i = 0; i < v->registry_count; i++)
        v->registry [i] = r->registry [i];
    v->seconds = (zclock_mono () - r->started) / 1000.0;
    free (self->text);
    self->text = metrics_render (v, &self->text_size);
    self->text_at = zclock_mono ();
    self->rounds++;
    s_round_destroy (&self->round);
    metrics_http_answer (self->http, self->text, self->text_size);
}

//  An answer (or NULL: none in time) to one request of the round
static void
s_on_reply (bus_service_t *svc, bus_envelope_t *reply, void *arg)
{
    s_ask_t *ask = (s_ask_t *) arg;
    s_round_t *r = ask->round;
    metrics_service_t *self = r->owner;
    static const struct { const bus_schema_t *schema; } schemas [] = {
        [S_CRYPTO] = { &crypto_status_reply_schema }, [S_NAT] = { &nat_status_reply_schema },
        [S_DEVICE] = { &device_status_reply_schema }, [S_DISCOVERY] = { &discovery_status_reply_schema },
        [S_BUS] = { &bus_status_reply_schema }, [S_RELAY] = { &relay_status_reply_schema },
        [S_REGISTRY] = { &registry_status_reply_schema },
    };
    const bus_schema_t *schema = schemas [ask->kind].schema;
    void *msg = NULL;
    char err [200] = "no answer";
    if (reply && strcmp (bus_envelope_type (reply), schema->type) == 0) {
        msg = calloc (1, schema->size);
        assert (msg);
        if (bus_envelope_get_msg (reply, schema, msg, err, sizeof err)) {
            free (msg);
            msg = NULL;
        }
    }
    else
    if (reply)
        snprintf (err, sizeof err, "answered %s", bus_envelope_type (reply));
    if (!msg)
        bus_debug ("%s: %s", ask->to, err);
    switch (ask->kind) {
        case S_CRYPTO:    r->crypto = (crypto_status_reply_t *) msg; break;
        case S_NAT:       r->nat = (nat_status_reply_t *) msg; break;
        case S_DEVICE:    r->device = (device_status_reply_t *) msg; break;
        case S_DISCOVERY: r->discovery = (discovery_status_reply_t *) msg; break;
        case S_BUS:       r->bus = (bus_status_reply_t *) msg; break;
        case S_RELAY:     r->relay [ask->slot] = (relay_status_reply_t *) msg; break;
        case S_REGISTRY:  r->registry [ask->slot] = (registry_status_reply_t *) msg; break;
    }
    assert (r->pending > 0);
    if (--r->pending == 0)
        s_round_end (self);
}

//  sup.status from bifrostd's control socket: a local socket and an answer in
//  well under a millisecond, so asked in line (timeout bounded by
//  metrics.timeout); NULL when bifrostd is not there (a test's service)
static sup_status_reply_t *
s_ask_sup (metrics_service_t *self)
{
    char endpoint [BUS_PATH_MAX], err [200];
    if (bus_endpoint (endpoint, sizeof endpoint, bus_service_run_dir (self->svc), "control"))
        return NULL;
    bus_client_t *client = bus_client_new (endpoint, NULL, err, sizeof err);
    if (!client)
        return NULL;
    sup_status_t request = { .service = "" };
    bus_envelope_t *reply = bus_client_request (client, "bifrostd", &sup_status_schema, &request,
                                                self->timeout_ms, err, sizeof err);
    bus_client_destroy (&client);
    sup_status_reply_t *status = NULL;
    if (reply) {
        status = (sup_status_reply_t *) calloc (1, sizeof *status);
        assert (status);
        if (bus_envelope_get_msg (reply, &sup_status_reply_schema, status, err, sizeof err)) {
            free (status);
            status = NULL;
        }
    }
    if (!status)
        bus_debug ("bifrostd: %s", err);
    bus_envelope_destroy (&reply);
    return status;
}

static void
s_ask (s_round_t *r, s_kind_t kind, size_t slot, const char *to, const bus_schema_t *schema, const void *msg)
{
    assert (r->asks_count < sizeof r->asks / sizeof r->asks [0]);
    s_ask_t *ask = &r->asks [r->asks_count++];
    *ask = (s_ask_t) { .round = r, .kind = kind, .slot = slot };
    snprintf (ask->to, sizeof ask->to, "%s", to);
    r->pending++;
    if (bus_service_request (r->owner->svc, to, schema, msg, r->owner->timeout_ms, s_on_reply, ask)) {
        r->pending--;                   //  not sent: no answer will come
        r->asks_count--;
    }
}

//  The relay and registry instances bifrostd lists (relay.1 alone without it)
static void
s_instances (s_round_t *r, const char *service, const char **names, size_t *count)
{
    *count = 0;
    if (!r->sup) {
        names [(*count)++] = strcmp (service, "relay") == 0 ? "relay.1" : "registry.1";
        return;
    }
    for (uint32_t i = 0; i < r->sup->instances_count && *count < METRICS_INSTANCES_MAX; i++) {
        const sup_instance_t *inst = &r->sup->instances [i];
        if (strcmp (inst->service, service) == 0 && strcmp (inst->state, "ready") == 0)
            names [(*count)++] = inst->instance;
    }
}

static void
s_round_start (metrics_service_t *self)
{
    s_round_t *r = (s_round_t *) calloc (1, sizeof *r);
    assert (r);
    r->owner = self;
    r->started = zclock_mono ();
    self->round = r;
    r->sup = s_ask_sup (self);
    s_instances (r, "relay", r->view.relay_instance, &r->view.relay_count);
    s_instances (r, "registry", r->view.registry_instance, &r->view.registry_count);
    //  Counted as pending from the start, so that an answer arriving while
    //  the requests still go out cannot end the round early
    r->pending = 1;
    crypto_status_t crypto = { .peer = "" };
    nat_status_t nat = { .peer = "" };
    device_status_t device = { .detail = "" };
    discovery_status_t discovery = { .detail = "" };
    bus_status_t bus = { .detail = "" };
    relay_status_t relay = { .peers = false };
    registry_status_t registry = { .detail = "" };
    s_ask (r, S_CRYPTO, 0, "crypto", &crypto_status_schema, &crypto);
    s_ask (r, S_NAT, 0, "nat", &nat_status_schema, &nat);
    s_ask (r, S_DEVICE, 0, "device", &device_status_schema, &device);
    s_ask (r, S_DISCOVERY, 0, "discovery", &discovery_status_schema, &discovery);
    s_ask (r, S_BUS, 0, "bus", &bus_status_schema, &bus);
    for (size_t i = 0; i < r->view.relay_count; i++)
        s_ask (r, S_RELAY, i, r->view.relay_instance [i], &relay_status_schema, &relay);
    for (size_t i = 0; i < r->view.registry_count; i++)
        s_ask (r, S_REGISTRY, i, r->view.registry_instance [i], &registry_status_schema, &registry);
    if (--r->pending == 0)
        s_round_end (self);
}

//  A scrape: the cached text when fresh, else a round (one at a time: a
//  scrape during a round waits for it)
static void
s_on_scrape (metrics_http_t *http, void *arg)
{
    metrics_service_t *self = (metrics_service_t *) arg;
    if (self->round)
        return;
    if (self->text && self->cache_ms > 0 && zclock_mono () - self->text_at < self->cache_ms) {
        metrics_http_answer (http, self->text, self->text_size);
        return;
    }
    s_round_start (self);
}

//  ---------------------------------------------------------------------------
//  Life cycle

metrics_service_t *
metrics_service_new (bus_service_t *svc, metrics_service_config_t *config, char *err, size_t err_size)
{
    assert (svc && config);
    metrics_service_t *self = (metrics_service_t *) calloc (1, sizeof *self);
    assert (self);
    self->svc = svc;
    self->timeout_ms = (int) config->metrics.timeout_ms;
    self->cache_ms = (int) config->metrics.cache_ms;
    self->http = metrics_http_new (bus_service_loop (svc), config->bind_ip, config->port, s_on_scrape, self,
                                   err, err_size);
    if (!self->http) {
        free (self);
        return NULL;
    }
    bus_info ("metrics on http://%s%s%s:%u/metrics", strchr (config->bind_ip, ':') ? "[" : "", config->bind_ip,
              strchr (config->bind_ip, ':') ? "]" : "", metrics_http_port (self->http));
    return self;
}

void
metrics_service_destroy (metrics_service_t **self_p)
{
    assert (self_p);
    metrics_service_t *self = *self_p;
    if (!self)
        return;
    metrics_http_destroy (&self->http);
    //  A round under way: its requests' callbacks die with the service
    s_round_destroy (&self->round);
    free (self->text);
    free (self);
    *self_p = NULL;
}

uint16_t
metrics_service_port (metrics_service_t *self)
{
    return metrics_http_port (self->http);
}

BUS_SERVICE_PART (metrics_service_t, metrics_service_config_t, metrics_service_check_config,
                  metrics_service_new, metrics_service_destroy, metrics_service_config_clear)

const bus_service_def_t metrics_service_def = {
    .name = "metrics",
    .summary = "the Prometheus text endpoint: every service's numbers at /metrics",
    BUS_SERVICE_PART_HOOKS,
    .sandbox = bus_service_sandbox_own,
};

//  ---------------------------------------------------------------------------
//  Self test: the group's refusals at their line; the service on a real bus
//  (an in-process broker), crypto played by a test service, scraped over TCP

static size_t
s_test_check (const char *text, const char *expect, bool verbose)
{
    char err [300];
    bus_config_t *config = bus_config_load_string (text, "test.cfg", err, sizeof err);
    assert (config);
    metrics_service_config_t out;
    metrics_service_check_config (config, &out);
    size_t count = bus_config_error_count (config);
    bool found = !expect;
    for (size_t i = 0; i < count; i++) {
        if (verbose)
            printf ("  %s\n", bus_config_error_text (config, i));
        if (expect && strstr (bus_config_error_text (config, i), expect))
            found = true;
    }
    assert (found);
    bus_config_destroy (&config);
    return count;
}

//  crypto's part: one peer, its bytes
static void
s_test_crypto_status (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    crypto_status_reply_t *reply = (crypto_status_reply_t *) calloc (1, sizeof *reply);
    assert (reply);
    reply->peers_count = 1;
    snprintf (reply->peers [0].name, sizeof reply->peers [0].name, "bob");
    reply->peers [0].rx_bytes = 4242;
    reply->peers [0].handshake_age_ms = -1;
    bus_service_reply (svc, env, &crypto_status_reply_schema, reply);
    free (reply);
}

typedef struct {
    uint16_t port;
    char answer [2][65536];
    bool joined;
    pthread_t thread;
    int64_t until;
} s_test_t;

static void
s_test_get (uint16_t port, char *out, size_t out_size)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons (port) };
    sin.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (connect (fd, (struct sockaddr *) &sin, sizeof sin) == 0);
    const char *req = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n";
    assert (send (fd, req, strlen (req), 0) == (ssize_t) strlen (req));
    size_t got = 0;
    ssize_t n;
    while (got + 1 < out_size && (n = recv (fd, out + got, out_size - got - 1, 0)) > 0)
        got += (size_t) n;
    out [got] = 0;
    close (fd);
}

static void *
s_test_thread (void *arg)
{
    s_test_t *t = (s_test_t *) arg;
    //  crypto may register after the first scrape: ask until it shows (5 s)
    for (int i = 0; i < 50; i++) {
        s_test_get (t->port, t->answer [0], sizeof t->answer [0]);
        if (strstr (t->answer [0], "bifrost_peer_rx_bytes_total{peer=\"bob\"} 4242"))
            break;
        usleep (100000);
    }
    s_test_get (t->port, t->answer [1], sizeof t->answer [1]);
    return NULL;
}

void
metrics_service_test (bool verbose)
{
    assert (s_test_check ("metrics = { listen = \"0.0.0.0:9475\"; };", "not a loopback address", verbose) == 1);
    assert (s_test_check ("metrics = { listen = \"0.0.0.0:9475\"; allow_remote = true; };", NULL, verbose) == 0);
    assert (s_test_check ("metrics = { listen = \"localhost:9475\"; };", "numeric address", verbose) == 1);
    assert (s_test_check ("metrics = {\n listen = \"[::2]:9475\"; };", "test.cfg:2", verbose) == 1);
    assert (s_test_check ("metrics = { timeout = \"20s\"; };", "timeout", verbose) >= 1);
    assert (s_test_check ("x = 1;", NULL, verbose) == 0);      //  defaults: 127.0.0.1:9475

    bus_testbed_t *bed = bus_testbed_new ("metrics-service-test");
    const char *dir = bus_testbed_dir (bed);
    bus_service_t *crypto = bus_service_new ("crypto", NULL, dir);
    assert (crypto);
    bus_service_handle (crypto, "crypto.status", s_test_crypto_status, NULL);
    zactor_t *crypto_actor = zactor_new (bus_service_actor, crypto);
    bus_service_t *svc = bus_service_new ("metrics", NULL, dir);
    assert (svc);
    metrics_service_config_t config = { .port = 0, .metrics = { .timeout_ms = 300, .cache_ms = 0 } };
    snprintf (config.bind_ip, sizeof config.bind_ip, "127.0.0.1");
    char err [200];
    metrics_service_t *self = metrics_service_new (svc, &config, err, sizeof err);
    assert (self);
    s_test_t *t = (s_test_t *) calloc (1, sizeof *t);
    assert (t);
    t->port = metrics_service_port (self);
    assert (pthread_create (&t->thread, NULL, s_test_thread, t) == 0);
    zactor_t *actor = zactor_new (bus_service_actor, svc);
    pthread_join (t->thread, NULL);
    zactor_destroy (&actor);
    if (verbose)
        printf ("%s\n", t->answer [1]);
    assert (strstr (t->answer [0], "bifrost_peer_rx_bytes_total{peer=\"bob\"} 4242\n"));
    assert (strstr (t->answer [0], "bifrost_scrape_service_up{service=\"crypto\"} 1\n"));
    //  nat is not there: asked, answered 404 by the broker, so 0 at once
    assert (strstr (t->answer [0], "bifrost_scrape_service_up{service=\"nat\"} 0\n"));
    assert (strstr (t->answer [1], "HTTP/1.1 200 OK"));
    assert (self->rounds >= 2);
    free (t);
    metrics_service_destroy (&self);
    bus_service_destroy (&svc);
    zactor_destroy (&crypto_actor);
    bus_service_destroy (&crypto);
    bus_testbed_destroy (&bed);
    if (verbose)
        printf ("metrics_service: ok\n");
}
