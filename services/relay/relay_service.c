/*  relay_service: a relay worker under bifrostd (why and how: relay_service.h). */
#include "relay_service.h"
#include "relay_worker.h"
#include "relay_tcp.h"
#include "relay_wss.h"
#include "bus_clock.h"
#include "bus_log.h"
#include "bus_privs.h"
#include "ws_tls.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>

struct _relay_service_t {
    bus_service_t *svc;
    bus_loop_t *loop;
    relay_worker_t *worker;
    relay_tcp_t *tcp;                                   //  NULL: relay.tcp = false
    relay_wss_t *wss;                                   //  NULL: no relay.tls_cert / tls_key
    zmq_pollitem_t item;
    int timer;
    unsigned instance;                                  //  N of relay.N
    int64_t heard [RELAY_SERVICE_WORKERS_MAX + 1];      //  by instance: last announcement, 0 never
    unsigned steered;                                   //  the count attached last (0: none)
};

//  ---------------------------------------------------------------------------
//  Configuration

//  The worker's keys; servers and credential_ttl are the registry's, though a
//  worker reads credential_ttl too (it refuses credentials valid for longer)
static const char *const s_ours [] = {
    "listen", "secret", "credential_ttl", "idle_timeout", "peer_pps", "peer_bps", "peer_sessions",
    "network_pps", "network_bps", "network_sessions", "network_peers", "max_peers", "tcp", "tcp_connections",
    "tls_listen", "tls_cert", "tls_key", "gso", NULL
};

//  relay.tls_*: both files or neither
static void
s_check_tls (bus_config_t *config, config_setting_t *group, relay_service_config_t *out)
{
    const char *cert = out->relay.tls_cert, *key = out->relay.tls_key;
    bool has_cert = cert && *cert, has_key = key && *key;
    if (has_cert != has_key) {
        bus_config_error (config, config_setting_get_member (group, has_cert ? "tls_cert" : "tls_key"),
                          "relay.%s is set but relay.%s is not: WebSocket over TLS needs both "
                          "(or neither, then it is off)", has_cert ? "tls_cert" : "tls_key",
                          has_cert ? "tls_key" : "tls_cert");
        return;
    }
    if (!has_cert)
        return;
    if (ws_tls_split_listen (out->relay.tls_listen, out->tls_ip, sizeof out->tls_ip, &out->tls_port)) {
        bus_config_error (config, config_setting_get_member (group, "tls_listen"),
                          "relay.tls_listen: expected a numeric address and port, e.g. \"0.0.0.0:443\"");
        return;
    }
    out->tls_cert_pem = ws_tls_read_pem (cert, false, &out->tls_cert_size);
    if (!out->tls_cert_pem) {
        bus_config_error (config, config_setting_get_member (group, "tls_cert"),
                          "relay.tls_cert: cannot read a PEM certificate from %s: %s", cert, strerror (errno));
        return;
    }
    out->tls_key_pem = ws_tls_read_pem (key, true, &out->tls_key_size);
    if (!out->tls_key_pem) {
        bus_config_error (config, config_setting_get_member (group, "tls_key"),
                          "relay.tls_key: cannot read a PEM key from %s: %s", key, strerror (errno));
        return;
    }
    out->tls = true;
}

void
relay_service_check_config (bus_config_t *config, relay_service_config_t *out)
{
    memset (out, 0, sizeof *out);
    bus_cfg_read (config, &bus_cfg_relay_group, NULL, &out->relay, 0, s_ours, NULL, NULL);
    config_setting_t *group = config ? config_lookup (bus_config_raw (config), "relay") : NULL;
    if (!config)
        return;
    if (!group) {
        bus_config_error (config, NULL, "no relay { ... } group: a relay needs at least its secret "
                          "(relay = { secret = \"${RELAY_SECRET}\"; };)");
        return;
    }
    bus_config_check_keys (config, group, bus_cfg_relay_group.names);
    config_setting_t *secret = config_setting_get_member (group, "secret");
    if (!out->relay.secret || !*out->relay.secret)
        bus_config_error (config, group, "relay.secret is required (secret = \"${RELAY_SECRET}\", "
                          "64 hex digits: openssl rand -hex 32)");
    else
    if (relay_cred_secret_parse (out->relay.secret, out->secret))
        bus_config_error (config, secret, "relay.secret: expected 64 hex digits (openssl rand -hex 32)");
    if (ws_tls_split_listen (out->relay.listen, out->bind_ip, sizeof out->bind_ip, &out->port))
        bus_config_error (config, config_setting_get_member (group, "listen"),
                          "relay.listen: expected a numeric address and port, e.g. \"0.0.0.0:3479\" or \"[::]:3479\"");
    s_check_tls (config, group, out);
}

void
relay_service_config_clear (relay_service_config_t *self)
{
    sodium_memzero (self->secret, sizeof self->secret);
    ws_tls_free_pem (&self->tls_key_pem, self->tls_key_size, true);
    ws_tls_free_pem (&self->tls_cert_pem, self->tls_cert_size, false);
    self->tls_key_size = self->tls_cert_size = 0;
    self->tls = false;
}

//  ---------------------------------------------------------------------------
//  Steering: how many workers share the port

static unsigned
s_count (relay_service_t *self, int64_t now)
{
    unsigned count = 1;                 //  ourselves
    for (unsigned i = 1; i <= RELAY_SERVICE_WORKERS_MAX; i++)
        if (i != self->instance && self->heard [i] && now - self->heard [i] <= RELAY_SERVICE_GONE_MS)
            count++;
    return count;
}

static void
s_steer (relay_service_t *self, int64_t now)
{
    unsigned count = s_count (self, now);
    if (count == self->steered)
        return;
    if (relay_worker_steer (self->worker, count) == 0) {
        bus_info ("steering the port by network over %u worker%s", count, count == 1 ? "" : "s");
        self->steered = count;
    }
    else
        bus_warn ("cannot steer the port by network (%s): sessions may split between workers",
                  strerror (errno));
}

static void
s_announce (relay_service_t *self, bool leaving)
{
    relay_worker_event_t msg = {
        .instance = self->instance, .port = relay_worker_port (self->worker),
        .workers = self->steered, .leaving = leaving,
    };
    bus_service_publish (self->svc, &relay_worker_event_schema, &msg);
}

static void
s_on_worker (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    relay_service_t *self = (relay_service_t *) arg;
    relay_worker_event_t msg;
    char err [200];
    if (bus_envelope_get_msg (env, &relay_worker_event_schema, &msg, err, sizeof err)) {
        bus_warn ("relay.worker: %s", err);
        return;
    }
    if (msg.instance == 0 || msg.instance > RELAY_SERVICE_WORKERS_MAX || msg.instance == self->instance)
        return;
    int64_t now = bus_clock_ms ();
    bool known = self->heard [msg.instance] && now - self->heard [msg.instance] <= RELAY_SERVICE_GONE_MS;
    self->heard [msg.instance] = msg.leaving ? 0 : now;
    if (known != !msg.leaving)
        s_steer (self, now);
    //  A newcomer learns of us now, not one announcement period later
    if (!known && !msg.leaving)
        s_announce (self, false);
}

//  ---------------------------------------------------------------------------
//  The loop

static int
s_readable (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    relay_worker_run_once (((relay_service_t *) arg)->worker, 0);
    return 0;
}

static int
s_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    relay_service_t *self = (relay_service_t *) arg;
    int64_t now = bus_clock_ms ();
    relay_worker_run_once (self->worker, 0);        //  also forgets idle peers, once a second
    if (self->tcp)
        relay_tcp_sweep (self->tcp, now);
    if (self->wss)
        relay_wss_sweep (self->wss, now);
    s_steer (self, now);
    s_announce (self, false);
    return 0;
}

static void
s_on_connect (bus_service_t *svc, uint64_t epoch, void *arg)
{
    s_announce ((relay_service_t *) arg, false);
}

static void
s_hex16 (uint64_t value, char out [17])
{
    snprintf (out, 17, "%016" PRIx64, value);
}

static void
s_format_addr (const struct sockaddr_storage *addr, char *out, size_t size)
{
    char ip [INET6_ADDRSTRLEN] = "?";
    if (addr->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) addr;
        inet_ntop (AF_INET, &in->sin_addr, ip, sizeof ip);
        snprintf (out, size, "%s:%u", ip, ntohs (in->sin_port));
    }
    else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) addr;
        inet_ntop (AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf (out, size, "[%s]:%u", ip, ntohs (in6->sin6_port));
    }
}

static void
s_on_status (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    relay_service_t *self = (relay_service_t *) arg;
    relay_status_t request;
    char err [200];
    if (bus_envelope_get_msg (env, &relay_status_schema, &request, err, sizeof err)) {
        bus_service_reply_error (svc, env, 400, "%s", err);
        return;
    }
    const relay_worker_stats_t *s = relay_worker_stats (self->worker);
    relay_table_t *table = relay_worker_table (self->worker);
    relay_status_reply_t *reply = (relay_status_reply_t *) calloc (1, sizeof *reply);
    assert (reply);
    reply->instance = self->instance;
    reply->port = relay_worker_port (self->worker);
    reply->workers = self->steered;
    reply->peers_registered = (uint32_t) relay_table_stats (table)->peers;
    reply->rx_datagrams = s->rx_dgrams;
    reply->rx_bytes = s->rx_bytes;
    reply->registered = s->registered;
    uint64_t refused = s->table_refused;
    for (int i = 1; i < RELAY_CRED_RESULTS; i++)
        refused += s->cred_refused [i];
    reply->refused = refused;
    reply->forwarded = s->forwarded;
    reply->forwarded_bytes = s->forwarded_bytes;
    reply->limited = s->limited;
    uint64_t dropped = s->truncated + s->unknown_source + s->unknown_dest + s->bad_network_word
                     + s->expired_source + s->other_network + s->wrong_direction;
    for (int i = 1; i < RELAY_PROTO_ERRORS; i++)
        dropped += s->malformed [i];
    reply->dropped = dropped;
    reply->replies = s->replies;
    reply->established = s->established;
    if (self->tcp)
        reply->tcp_active = relay_tcp_stats (self->tcp)->active;
    if (self->wss) {
        const relay_wss_stats_t *w = relay_wss_stats (self->wss);
        reply->tls_port = relay_wss_port (self->wss);
        reply->wss_active = w->proxy.active;
        reply->wss_opened = w->opened;
        reply->wss_rejected = w->rejected;
        reply->wss_refused = w->proxy.refused;
        reply->wss_broken = w->proxy.broken;
        reply->wss_to_relay = w->proxy.to_relay;
        reply->wss_from_relay = w->proxy.from_relay;
        reply->wss_dropped = w->proxy.dropped;
    }
    if (request.peers) {
        for (relay_peer_t *peer = relay_table_first (table); peer && reply->nodes_count < 100;
             peer = relay_table_next (table)) {
            relay_status_peer_t *out = &reply->nodes [reply->nodes_count++];
            s_hex16 (peer->peer, out->peer);
            s_hex16 (peer->network, out->network);
            s_format_addr (&peer->addr, out->address, sizeof out->address);
            out->pkts_in = peer->pkts_in;
            out->bytes_in = peer->bytes_in;
            out->pkts_out = peer->pkts_out;
            out->bytes_out = peer->bytes_out;
            out->dropped = peer->drops;
        }
    }
    bus_service_reply (svc, env, &relay_status_reply_schema, reply);
    free (reply);
}

//  ---------------------------------------------------------------------------
//  Life cycle

relay_service_t *
relay_service_new (bus_service_t *svc, relay_service_config_t *config, char *err, size_t err_size)
{
    assert (svc && config);
    relay_service_t *self = (relay_service_t *) calloc (1, sizeof *self);
    assert (self);
    self->svc = svc;
    self->loop = bus_service_loop (svc);
    self->timer = -1;
    const char *dot = strrchr (bus_service_instance (svc), '.');
    long n = dot ? strtol (dot + 1, NULL, 10) : 1;
    self->instance = n >= 1 && n <= RELAY_SERVICE_WORKERS_MAX ? (unsigned) n : 1;

    const bus_cfg_relay_t *r = &config->relay;
    uint64_t ttl_s = (uint64_t) r->credential_ttl_ms / 1000;
    relay_worker_config_t wc = {
        .bind_ip = config->bind_ip, .port = config->port, .secret = config->secret,
        .max_lifetime = ttl_s + 60,
        .limits = {
            .peer_pps = (uint32_t) r->peer_pps, .peer_bps = (uint32_t) r->peer_bps,
            .peer_sessions = (uint32_t) r->peer_sessions,
            .net_pps = (uint32_t) r->network_pps, .net_bps = (uint32_t) r->network_bps,
            .net_sessions = (uint32_t) r->network_sessions, .net_peers = (uint32_t) r->network_peers,
            .max_peers = (uint32_t) r->max_peers, .idle_ms = (uint32_t) r->idle_timeout_ms,
        },
        .gso = r->gso,
    };
    self->worker = relay_worker_new (&wc);
    if (self->worker && config->tls) {
        //  lws keeps its own copy of the certificate and key (OpenSSL's)
        relay_wss_config_t tc = {
            .bind_ip = config->tls_ip, .port = config->tls_port, .udp_ip = config->bind_ip, .udp_port = relay_worker_port (self->worker),
            .cert_pem = config->tls_cert_pem, .cert_size = config->tls_cert_size,
            .key_pem = config->tls_key_pem, .key_size = config->tls_key_size,
            .max_connections = (uint32_t) r->tcp_connections, .idle_ms = (uint32_t) r->idle_timeout_ms,
        };
        self->wss = relay_wss_new (self->loop, &tc, err, err_size);
        if (!self->wss) {
            relay_service_config_clear (config);
            relay_service_destroy (&self);
            return NULL;
        }
    }
    relay_service_config_clear (config);        //  the worker keeps its own copy, locked
    if (!self->worker) {
        snprintf (err, err_size, "cannot bind UDP %s port %u: %s", config->bind_ip, config->port, strerror (errno));
        relay_service_destroy (&self);
        return NULL;
    }
    if (r->tcp) {
        self->tcp = relay_tcp_new (self->loop, config->bind_ip, relay_worker_port (self->worker),
                                   relay_worker_port (self->worker), (uint32_t) r->tcp_connections,
                                   (uint32_t) r->idle_timeout_ms);
        if (!self->tcp) {
            snprintf (err, err_size, "cannot listen on TCP %s port %u: %s", config->bind_ip,
                      relay_worker_port (self->worker), strerror (errno));
            relay_service_destroy (&self);
            return NULL;
        }
    }
    self->item = (zmq_pollitem_t) { NULL, relay_worker_fd (self->worker), ZMQ_POLLIN, 0 };
    self->timer = bus_loop_timer (self->loop, RELAY_SERVICE_ANNOUNCE_MS, 0, s_tick, self);
    if (bus_loop_poller (self->loop, &self->item, s_readable, self) || self->timer < 0) {
        snprintf (err, err_size, "cannot add the socket to the loop");
        relay_service_destroy (&self);
        return NULL;
    }
    //  Alone until another worker announces itself; the others learn of us from
    //  our first announcement (on connect) and steer over one more at once
    s_steer (self, bus_clock_ms ());
    bus_service_handle (svc, "relay.status", s_on_status, self);
    bus_service_subscribe (svc, "relay.worker", s_on_worker, self);
    bus_service_on_connect (svc, s_on_connect, self);
    char wss [96] = "";
    if (self->wss)
        snprintf (wss, sizeof wss, ", WebSocket over TLS on port %u (%d intermediate certificate%s)",
                  relay_wss_port (self->wss), relay_wss_chain (self->wss), relay_wss_chain (self->wss) == 1 ? "" : "s");
    bus_info ("worker %u listening on UDP %s port %u%s%s%s", self->instance, config->bind_ip,
              relay_worker_port (self->worker), r->gso ? ", GSO" : "", self->tcp ? ", and TCP" : "", wss);
    return self;
}

void
relay_service_destroy (relay_service_t **self_p)
{
    assert (self_p);
    relay_service_t *self = *self_p;
    if (!self)
        return;
    relay_tcp_destroy (&self->tcp);
    relay_wss_destroy (&self->wss);
    if (self->worker) {
        s_announce (self, true);
        if (self->item.fd > 0)
            bus_loop_poller_end (self->loop, &self->item);
        relay_worker_destroy (&self->worker);
    }
    if (self->timer >= 0)
        bus_loop_timer_end (self->loop, self->timer);
    free (self);
    *self_p = NULL;
}

unsigned
relay_service_workers (relay_service_t *self)
{
    return self->steered;
}

//  ---------------------------------------------------------------------------
//  The program

BUS_SERVICE_PART (relay_service_t, relay_service_config_t, relay_service_check_config,
                  relay_service_new, relay_service_destroy, relay_service_config_clear)

//  None, but CAP_NET_BIND_SERVICE for a port below 1024 (the UDP one, or the
//  TLS one: 443 by default)
static uint64_t
s_def_caps (bus_config_t *config, void *arg)
{
    return bus_privs_listen_caps (s_part_checked.port)
         | (s_part_checked.tls ? bus_privs_listen_caps (s_part_checked.tls_port) : 0);
}

//  It faces the internet and holds no tunnel key: sandboxed like nat (its TLS
//  certificate and key were read by the config check)
const bus_service_def_t relay_service_def = {
    .name = "relay",
    .summary = "relay worker: forwards sealed datagrams between nodes that cannot reach each other",
    BUS_SERVICE_PART_HOOKS,
    .seccomp = BUS_SECCOMP_KEYS,              //  its TLS key in locked memory (freed at the end)
    .caps = s_def_caps,
    .sandbox = bus_service_sandbox_own,
};

//  ---------------------------------------------------------------------------
//  Self test: the config checks (what an operator gets wrong), then a worker on
//  a real bus loop: the steering count follows other workers' announcements,
//  including one that leaves and one that goes silent (kill -9).

#include <stdio.h>

static size_t
s_test_check (const char *text, const char *expect, relay_service_config_t *out, bool verbose)
{
    char err [300];
    bus_config_t *config = bus_config_load_string (text, "test.cfg", err, sizeof err);
    assert (config);
    relay_service_check_config (config, out);
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
    bus_config_destroy (&config);
    return count;
}

#define S_SECRET "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

void
relay_service_test (bool verbose)
{
    relay_service_config_t c;
    assert (s_test_check ("x = 1;", "no relay { ... } group", &c, verbose) >= 1);
    assert (s_test_check ("relay = { listen = \"0.0.0.0:3479\"; };", "relay.secret is required", &c, verbose) == 1);
    assert (s_test_check ("relay = { secret = \"abc\"; };", "64 hex digits", &c, verbose) == 1);
    assert (s_test_check ("relay = { secret = \"" S_SECRET "\"; listen = \"relay.example:3479\"; };",
                          "numeric address", &c, verbose) == 1);
    assert (s_test_check ("relay = { secret = \"" S_SECRET "\"; listen = \"0.0.0.0:70000\"; };",
                          "numeric address", &c, verbose) == 1);
    assert (s_test_check ("relay = { secret = \"" S_SECRET "\"; lisen = \"0.0.0.0:1\"; };",
                          "lisen", &c, verbose) >= 1);
    assert (s_test_check ("relay = { secret = \"" S_SECRET "\"; peer_pps = -1; };", "peer_pps", &c, verbose) >= 1);
    //  TLS: both files or neither; a file that is not there; a bad tls_listen
    assert (s_test_check ("relay = { secret = \"" S_SECRET "\"; tls_cert = \"/etc/hostname\"; };",
                          "relay.tls_cert is set but relay.tls_key is not", &c, verbose) == 1);
    assert (s_test_check ("relay = { secret = \"" S_SECRET "\"; tls_key = \"/x.key\"; };",
                          "relay.tls_key is set but relay.tls_cert is not", &c, verbose) == 1);
    assert (s_test_check ("relay = { secret = \"" S_SECRET "\"; tls_cert = \"/nonexistent.pem\"; "
                          "tls_key = \"/nonexistent.key\"; };", "cannot read a PEM certificate", &c, verbose) == 1);
    assert (s_test_check ("relay = { secret = \"" S_SECRET "\"; tls_cert = \"/etc/hostname\"; "
                          "tls_key = \"/etc/hostname\"; };", "cannot read a PEM certificate", &c, verbose) == 1);
    assert (s_test_check ("relay = { secret = \"" S_SECRET "\"; tls_listen = \"host:443\"; tls_cert = \"/a\"; "
                          "tls_key = \"/b\"; };", "relay.tls_listen", &c, verbose) == 1);
    relay_service_config_clear (&c);
    //  Good: the defaults, the secret decoded, the address split
    assert (s_test_check ("relay = { secret = \"" S_SECRET "\"; listen = \"[::1]:4000\"; };", NULL, &c, verbose) == 0);
    assert (streq (c.bind_ip, "::1") && c.port == 4000 && c.secret [31] == 0x1f && c.relay.tcp);
    relay_service_config_clear (&c);
    assert (c.secret [31] == 0);

    //  Steering follows the announcements (no broker needed: the handlers are called
    //  as the bus would)
    assert (s_test_check ("relay = { secret = \"" S_SECRET "\"; listen = \"127.0.0.1:0\"; };", NULL, &c, verbose) == 0);
    bus_service_t *svc = bus_service_new ("relay", "relay.2", "/tmp/bifrost-relay-test-none");
    assert (svc);
    char err [300];
    relay_service_t *self = relay_service_new (svc, &c, err, sizeof err);
    assert (self && relay_service_workers (self) == 1);
    assert (self->tcp && relay_tcp_port (self->tcp) == relay_worker_port (self->worker));
    int64_t now = bus_clock_ms ();
    self->heard [1] = now;
    self->heard [3] = now;
    s_steer (self, now);
    assert (relay_service_workers (self) == 3);
    self->heard [3] = 0;                                        //  left
    s_steer (self, now);
    assert (relay_service_workers (self) == 2);
    s_steer (self, now + RELAY_SERVICE_GONE_MS + 1);            //  relay.1 silent: killed
    assert (relay_service_workers (self) == 1);
    relay_service_destroy (&self);
    bus_service_destroy (&svc);
    if (verbose)
        printf ("relay_service: ok\n");
}
