/*  metrics_render: one round's numbers as Prometheus text (metrics_render.h). */
#include "metrics_render.h"

#include <czmq.h>
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name, *type, *help;
} s_metrics [METRIC_COUNT] = {
#define BUS_METRIC(id, name, type, labels, source, help) { name, #type, help },
#include "../../schemas/metrics.def"
#undef BUS_METRIC
};

typedef struct {
    char *data;
    size_t size, cap;
} s_text_t;

static void
s_printf (s_text_t *t, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_printf (s_text_t *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start (ap, fmt);
        int n = vsnprintf (t->data + t->size, t->cap - t->size, fmt, ap);
        va_end (ap);
        assert (n >= 0);
        if (t->size + (size_t) n < t->cap) {
            t->size += (size_t) n;
            return;
        }
        t->cap = (t->cap + (size_t) n) * 2;
        t->data = (char *) realloc (t->data, t->cap);
        assert (t->data);
    }
}

//  A label value as the text format quotes it
static void
s_value (s_text_t *t, const char *value)
{
    for (const char *c = value; *c; c++) {
        if (*c == '\\')
            s_printf (t, "\\\\");
        else
        if (*c == '"')
            s_printf (t, "\\\"");
        else
        if (*c == '\n')
            s_printf (t, "\\n");
        else
            s_printf (t, "%c", *c);
    }
}

static void
s_header (s_text_t *t, metrics_id_t id)
{
    //  HELP text escapes \ and newline (none in ours: asserted in the test)
    s_printf (t, "# HELP %s %s\n# TYPE %s %s\n", s_metrics [id].name, s_metrics [id].help,
              s_metrics [id].name, s_metrics [id].type);
}

//  One sample: labels as name, value pairs (NULL-terminated)
static void
s_sample (s_text_t *t, metrics_id_t id, double value, ...)
{
    s_printf (t, "%s", s_metrics [id].name);
    va_list ap;
    va_start (ap, value);
    const char *label = va_arg (ap, const char *);
    for (int n = 0; label; n++) {
        s_printf (t, "%s%s=\"", n ? "," : "{", label);
        s_value (t, va_arg (ap, const char *));
        s_printf (t, "\"");
        label = va_arg (ap, const char *);
        if (!label)
            s_printf (t, "}");
    }
    va_end (ap);
    //  Whole numbers (every counter) exactly, up to 2^53; the rest with 9 digits
    if (value == (double) (int64_t) value && value < 9007199254740992.0 && value > -9007199254740992.0)
        s_printf (t, " %" PRId64 "\n", (int64_t) value);
    else
        s_printf (t, " %.9g\n", value);
}

const char *
metrics_path_kind (const char *path)
{
    if (!path || !*path)
        return "none";
    if (strncmp (path, "direct", 6) == 0)
        return "direct";
    if (strncmp (path, "relay", 5) == 0)
        return "relay";
    if (strncmp (path, "turn", 4) == 0)
        return "turn";
    if (strncmp (path, "ice", 3) == 0)
        return "ice";
    return "none";
}

//  crypto's counters that are not drops (the rest are: crypto.def names them)
static bool
s_crypto_drop (const char *name)
{
    static const char *not_drops [] = { "keepalives_tx", "endpoints_sent", "routes", "wire_sent", NULL };
    for (size_t i = 0; not_drops [i]; i++)
        if (strcmp (name, not_drops [i]) == 0)
            return false;
    return true;
}

static void
s_scrape (s_text_t *t, const metrics_round_t *r)
{
    s_header (t, METRIC_SCRAPE_UP);
    struct { const char *service; bool up; } up [] = {
        { "bifrostd", r->sup != NULL }, { "crypto", r->crypto != NULL }, { "nat", r->nat != NULL },
        { "device", r->device != NULL }, { "discovery", r->discovery != NULL }, { "bus", r->bus != NULL },
    };
    for (size_t i = 0; i < sizeof up / sizeof up [0]; i++)
        s_sample (t, METRIC_SCRAPE_UP, up [i].up, "service", up [i].service, NULL);
    for (size_t i = 0; i < r->relay_count; i++)
        s_sample (t, METRIC_SCRAPE_UP, r->relay [i] != NULL, "service", r->relay_instance [i], NULL);
    for (size_t i = 0; i < r->registry_count; i++)
        s_sample (t, METRIC_SCRAPE_UP, r->registry [i] != NULL, "service", r->registry_instance [i], NULL);
    s_header (t, METRIC_SCRAPE_SECONDS);
    s_sample (t, METRIC_SCRAPE_SECONDS, r->seconds, NULL);
}

//  The nat row of crypto's peer (same index), or NULL
static const nat_status_peer_t *
s_nat_peer (const metrics_round_t *r, uint32_t index, const char *name)
{
    if (!r->nat)
        return NULL;
    for (uint32_t i = 0; i < r->nat->peers_count; i++)
        if (r->nat->peers [i].index == index && strcmp (r->nat->peers [i].name, name) == 0)
            return &r->nat->peers [i];
    return NULL;
}

static void
s_peers (s_text_t *t, const metrics_round_t *r)
{
    const crypto_status_reply_t *c = r->crypto;
    const nat_status_reply_t *n = r->nat;
    uint32_t cn = c ? c->peers_count : 0, nn = n ? n->peers_count : 0;
#define S_EACH_CRYPTO(id, expr) \
    s_header (t, METRIC_##id); \
    for (uint32_t i = 0; i < cn; i++) { \
        const crypto_status_peer_t *p = &c->peers [i]; \
        s_sample (t, METRIC_##id, (double) (expr), "peer", p->name, NULL); \
    }
    S_EACH_CRYPTO (PEER_UP, p->session)
    S_EACH_CRYPTO (PEER_RX_BYTES, p->rx_bytes)
    S_EACH_CRYPTO (PEER_TX_BYTES, p->tx_bytes)
    S_EACH_CRYPTO (PEER_RX_PACKETS, p->rx_packets)
    S_EACH_CRYPTO (PEER_TX_PACKETS, p->tx_packets)
#undef S_EACH_CRYPTO
    s_header (t, METRIC_PEER_HANDSHAKE_AGE);
    for (uint32_t i = 0; i < cn; i++)
        if (c->peers [i].handshake_age_ms >= 0)
            s_sample (t, METRIC_PEER_HANDSHAKE_AGE, c->peers [i].handshake_age_ms / 1000.0, "peer", c->peers [i].name, NULL);
    s_header (t, METRIC_PEER_WIRE_RX_BYTES);
    for (uint32_t i = 0; i < nn; i++)
        s_sample (t, METRIC_PEER_WIRE_RX_BYTES, (double) n->peers [i].rx_bytes, "peer", n->peers [i].name, NULL);
    s_header (t, METRIC_PEER_WIRE_TX_BYTES);
    for (uint32_t i = 0; i < nn; i++)
        s_sample (t, METRIC_PEER_WIRE_TX_BYTES, (double) n->peers [i].tx_bytes, "peer", n->peers [i].name, NULL);
    static const char *kinds [] = { "direct", "relay", "turn", "ice", "none" };
    s_header (t, METRIC_PEER_PATH);
    for (uint32_t i = 0; i < nn; i++) {
        const nat_status_peer_t *p = &n->peers [i];
        const char *kind = strcmp (p->state, "up") == 0 ? metrics_path_kind (p->path) : "none";
        for (size_t k = 0; k < sizeof kinds / sizeof kinds [0]; k++)
            s_sample (t, METRIC_PEER_PATH, strcmp (kind, kinds [k]) == 0, "peer", p->name, "path", kinds [k], NULL);
    }
    s_header (t, METRIC_PEER_RTT);
    for (uint32_t i = 0; i < nn; i++)
        if (n->peers [i].rtt_samples && n->peers [i].rtt_us >= 0)
            s_sample (t, METRIC_PEER_RTT, n->peers [i].rtt_us / 1e6, "peer", n->peers [i].name, NULL);
    s_header (t, METRIC_PEER_LOSS);
    for (uint32_t i = 0; i < nn; i++)
        if (n->peers [i].loss_probes)
            s_sample (t, METRIC_PEER_LOSS, (double) n->peers [i].loss_lost / n->peers [i].loss_probes,
                      "peer", n->peers [i].name, NULL);
    (void) s_nat_peer;
}

static void
s_drops (s_text_t *t, const metrics_round_t *r)
{
    s_header (t, METRIC_DROPS);
    if (r->crypto)
        for (uint32_t i = 0; i < r->crypto->counters_count; i++)
            if (s_crypto_drop (r->crypto->counters [i].name))
                s_sample (t, METRIC_DROPS, (double) r->crypto->counters [i].value,
                          "service", "crypto", "reason", r->crypto->counters [i].name, NULL);
    const nat_status_reply_t *n = r->nat;
    if (n) {
        struct { const char *reason; uint64_t value; } d [] = {
            { "rate_limited", n->initiations_limited }, { "bad_mac1", n->initiations_bad_mac1 },
            { "too_short", n->drop_too_short }, { "bad_type", n->drop_bad_type },
            { "bad_reserved", n->drop_bad_reserved }, { "truncated", n->drop_truncated },
            { "pipe", n->drop_pipe }, { "no_endpoint", n->drop_no_endpoint }, { "bad_peer", n->drop_bad_peer },
            { "stale_handle", n->drop_stale_handle }, { "send", n->drop_send },
        };
        for (size_t i = 0; i < sizeof d / sizeof d [0]; i++)
            s_sample (t, METRIC_DROPS, (double) d [i].value, "service", "nat", "reason", d [i].reason, NULL);
    }
    const device_status_reply_t *v = r->device;
    if (v) {
        s_sample (t, METRIC_DROPS, (double) v->drop_unknown, "service", "device", "reason", "unknown", NULL);
        s_sample (t, METRIC_DROPS, (double) v->drop_malformed, "service", "device", "reason", "malformed", NULL);
        s_sample (t, METRIC_DROPS, (double) v->drop_pipe_full, "service", "device", "reason", "pipe_full", NULL);
    }
}

static void
s_services (s_text_t *t, const metrics_round_t *r)
{
    static const char *states [] = { "waiting", "starting", "ready", "backoff", "stopping", "stopped", "failed" };
    const sup_status_reply_t *s = r->sup;
    uint32_t count = s ? s->instances_count : 0;
    s_header (t, METRIC_SERVICE_RESTARTS);
    for (uint32_t i = 0; i < count; i++)
        s_sample (t, METRIC_SERVICE_RESTARTS, s->instances [i].restarts,
                  "service", s->instances [i].service, "instance", s->instances [i].instance, NULL);
    s_header (t, METRIC_SERVICE_STATE);
    for (uint32_t i = 0; i < count; i++)
        for (size_t k = 0; k < sizeof states / sizeof states [0]; k++)
            s_sample (t, METRIC_SERVICE_STATE, strcmp (s->instances [i].state, states [k]) == 0,
                      "service", s->instances [i].service, "instance", s->instances [i].instance,
                      "state", states [k], NULL);
    s_header (t, METRIC_SERVICE_UPTIME);
    for (uint32_t i = 0; i < count; i++)
        s_sample (t, METRIC_SERVICE_UPTIME, s->instances [i].uptime_ms / 1000.0,
                  "service", s->instances [i].service, "instance", s->instances [i].instance, NULL);
}

static void
s_node (s_text_t *t, const metrics_round_t *r)
{
    const discovery_status_reply_t *d = r->discovery;
    s_header (t, METRIC_DISC_REGISTERED);
    if (d)
        s_sample (t, METRIC_DISC_REGISTERED, strcmp (d->state, "registered") == 0, NULL);
    s_header (t, METRIC_DISC_PEERS);
    if (d)
        s_sample (t, METRIC_DISC_PEERS, d->peers, NULL);
    s_header (t, METRIC_DISC_REGISTRATIONS);
    if (d)
        s_sample (t, METRIC_DISC_REGISTRATIONS, (double) d->registrations, NULL);
    s_header (t, METRIC_DISC_FAILURES);
    if (d)
        s_sample (t, METRIC_DISC_FAILURES, (double) d->failures, NULL);
    const bus_status_reply_t *b = r->bus;
    s_header (t, METRIC_BUS_MESSAGES);
    if (b) {
        s_sample (t, METRIC_BUS_MESSAGES, (double) b->routed, "outcome", "routed", NULL);
        s_sample (t, METRIC_BUS_MESSAGES, (double) b->events, "outcome", "event", NULL);
        s_sample (t, METRIC_BUS_MESSAGES, (double) b->dropped, "outcome", "dropped", NULL);
        s_sample (t, METRIC_BUS_MESSAGES, (double) b->unroutable, "outcome", "unroutable", NULL);
        s_sample (t, METRIC_BUS_MESSAGES, (double) b->bad_input, "outcome", "bad_input", NULL);
        s_sample (t, METRIC_BUS_MESSAGES, (double) b->refused, "outcome", "refused", NULL);
    }
}

//  "relay.3" -> "3"
static const char *
s_worker (const char *instance)
{
    const char *dot = strrchr (instance, '.');
    return dot ? dot + 1 : instance;
}

static void
s_relays (s_text_t *t, const metrics_round_t *r)
{
#define S_EACH_RELAY(id, expr) \
    s_header (t, METRIC_##id); \
    for (size_t i = 0; i < r->relay_count; i++) { \
        const relay_status_reply_t *w = r->relay [i]; \
        if (w) \
            s_sample (t, METRIC_##id, (double) (expr), "worker", s_worker (r->relay_instance [i]), NULL); \
    }
    S_EACH_RELAY (RELAY_SESSIONS, w->peers_registered)
    S_EACH_RELAY (RELAY_RX_PACKETS, w->rx_datagrams)
    S_EACH_RELAY (RELAY_FORWARDED_PACKETS, w->forwarded)
    S_EACH_RELAY (RELAY_FORWARDED_BYTES, w->forwarded_bytes)
#undef S_EACH_RELAY
    s_header (t, METRIC_RELAY_DROPS);
    for (size_t i = 0; i < r->relay_count; i++)
        if (r->relay [i]) {
            const char *worker = s_worker (r->relay_instance [i]);
            s_sample (t, METRIC_RELAY_DROPS, (double) r->relay [i]->limited, "worker", worker, "reason", "rate_limited", NULL);
            s_sample (t, METRIC_RELAY_DROPS, (double) r->relay [i]->dropped, "worker", worker, "reason", "invalid", NULL);
        }
    s_header (t, METRIC_RELAY_REGISTRATIONS);
    for (size_t i = 0; i < r->relay_count; i++)
        if (r->relay [i]) {
            const char *worker = s_worker (r->relay_instance [i]);
            s_sample (t, METRIC_RELAY_REGISTRATIONS, (double) r->relay [i]->registered, "worker", worker, "result", "accepted", NULL);
            s_sample (t, METRIC_RELAY_REGISTRATIONS, (double) r->relay [i]->refused, "worker", worker, "result", "refused", NULL);
        }
}

//  The registry: one instance serves the database; with several, each
//  reports the same networks, so the first that answered is taken
static void
s_registry (s_text_t *t, const metrics_round_t *r)
{
    const registry_status_reply_t *g = NULL;
    for (size_t i = 0; i < r->registry_count && !g; i++)
        g = r->registry [i];
    s_header (t, METRIC_REG_PEERS);
    for (uint32_t i = 0; g && i < g->networks_count; i++)
        s_sample (t, METRIC_REG_PEERS, g->networks [i].peers, "network", g->networks [i].network, NULL);
    s_header (t, METRIC_REG_REGISTRATIONS);
    if (g)
        s_sample (t, METRIC_REG_REGISTRATIONS, (double) g->registrations, NULL);
    s_header (t, METRIC_REG_WS_CLIENTS);
    if (g)
        s_sample (t, METRIC_REG_WS_CLIENTS, g->websocket_clients, NULL);
}

char *
metrics_render (const metrics_round_t *round, size_t *size)
{
    assert (round && size);
    s_text_t t = { .cap = 16384 };
    t.data = (char *) malloc (t.cap);
    assert (t.data);
    t.data [0] = 0;
    s_scrape (&t, round);
    s_peers (&t, round);
    s_drops (&t, round);
    s_services (&t, round);
    s_node (&t, round);
    s_relays (&t, round);
    s_registry (&t, round);
    *size = t.size;
    return t.data;
}

//  ---------------------------------------------------------------------------
//  Self test: a round with every source, a round with none; names and help
//  as the format wants them (promtool checks more in tests/integration/metrics.sh)

void
metrics_render_test (bool verbose)
{
    for (size_t i = 0; i < METRIC_COUNT; i++) {
        const char *name = s_metrics [i].name;
        assert (strncmp (name, "bifrost_", 8) == 0);
        for (const char *c = name; *c; c++)
            assert ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_');
        bool total = strlen (name) > 6 && strcmp (name + strlen (name) - 6, "_total") == 0;
        assert (total == (strcmp (s_metrics [i].type, "counter") == 0));
        assert (!strchr (s_metrics [i].help, '\n') && !strchr (s_metrics [i].help, '\\'));
    }
    assert (streq (metrics_path_kind ("relay eu-1"), "relay"));
    assert (streq (metrics_path_kind ("turn (relay/host)"), "turn"));
    assert (streq (metrics_path_kind ("ice direct (srflx/host)"), "ice"));
    assert (streq (metrics_path_kind (""), "none"));

    metrics_round_t none = { .seconds = 0.001 };
    size_t size;
    char *text = metrics_render (&none, &size);
    assert (strlen (text) == size);
    assert (strstr (text, "bifrost_scrape_service_up{service=\"crypto\"} 0\n"));
    assert (strstr (text, "# TYPE bifrost_peer_rx_bytes_total counter\n"));
    free (text);

    crypto_status_reply_t *c = (crypto_status_reply_t *) calloc (1, sizeof *c);
    nat_status_reply_t *n = (nat_status_reply_t *) calloc (1, sizeof *n);
    sup_status_reply_t *s = (sup_status_reply_t *) calloc (1, sizeof *s);
    relay_status_reply_t *w = (relay_status_reply_t *) calloc (1, sizeof *w);
    assert (c && n && s && w);
    c->peers_count = 1;
    snprintf (c->peers [0].name, sizeof c->peers [0].name, "b\"x");
    c->peers [0].rx_bytes = 1234;
    c->peers [0].session = true;
    c->peers [0].handshake_age_ms = 1500;
    c->counters_count = 2;
    snprintf (c->counters [0].name, sizeof c->counters [0].name, "tampered");
    c->counters [0].value = 7;
    snprintf (c->counters [1].name, sizeof c->counters [1].name, "wire_sent");
    n->peers_count = 1;
    snprintf (n->peers [0].name, sizeof n->peers [0].name, "b\"x");
    snprintf (n->peers [0].state, sizeof n->peers [0].state, "up");
    snprintf (n->peers [0].path, sizeof n->peers [0].path, "relay eu-1");
    n->peers [0].rtt_samples = 3;
    n->peers [0].rtt_us = 2500;
    n->peers [0].loss_probes = 20;
    n->peers [0].loss_lost = 1;
    n->initiations_limited = 9;
    s->instances_count = 1;
    snprintf (s->instances [0].service, sizeof s->instances [0].service, "nat");
    snprintf (s->instances [0].instance, sizeof s->instances [0].instance, "nat.1");
    snprintf (s->instances [0].state, sizeof s->instances [0].state, "ready");
    s->instances [0].restarts = 2;
    w->peers_registered = 5;
    w->limited = 3;
    metrics_round_t all = { .crypto = c, .nat = n, .sup = s, .relay_count = 1, .seconds = 0.002 };
    all.relay [0] = w;
    all.relay_instance [0] = "relay.2";
    text = metrics_render (&all, &size);
    if (verbose)
        printf ("%s", text);
    assert (strstr (text, "bifrost_peer_rx_bytes_total{peer=\"b\\\"x\"} 1234\n"));
    assert (strstr (text, "bifrost_peer_up{peer=\"b\\\"x\"} 1\n"));
    assert (strstr (text, "bifrost_peer_handshake_age_seconds{peer=\"b\\\"x\"} 1.5\n"));
    assert (strstr (text, "bifrost_peer_path{peer=\"b\\\"x\",path=\"relay\"} 1\n"));
    assert (strstr (text, "bifrost_peer_path{peer=\"b\\\"x\",path=\"direct\"} 0\n"));
    assert (strstr (text, "bifrost_peer_rtt_seconds{peer=\"b\\\"x\"} 0.0025\n"));
    assert (strstr (text, "bifrost_peer_loss_ratio{peer=\"b\\\"x\"} 0.05\n"));
    assert (strstr (text, "bifrost_drops_total{service=\"crypto\",reason=\"tampered\"} 7\n"));
    assert (!strstr (text, "reason=\"wire_sent\""));
    assert (strstr (text, "bifrost_drops_total{service=\"nat\",reason=\"rate_limited\"} 9\n"));
    assert (strstr (text, "bifrost_service_restarts_total{service=\"nat\",instance=\"nat.1\"} 2\n"));
    assert (strstr (text, "bifrost_service_state{service=\"nat\",instance=\"nat.1\",state=\"ready\"} 1\n"));
    assert (strstr (text, "bifrost_relay_sessions{worker=\"2\"} 5\n"));
    assert (strstr (text, "bifrost_relay_drops_total{worker=\"2\",reason=\"rate_limited\"} 3\n"));
    free (text);
    free (c);
    free (n);
    free (s);
    free (w);
    if (verbose)
        printf ("metrics_render: ok\n");
}
