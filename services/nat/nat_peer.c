/*  nat_peer: per-peer connection state and timers (see nat_peer.h for why). */
#include "nat_peer.h"
#include "nat_resolver.h"
#include "nat_udp.h"
#include "bus_config_schema.h"

#include <assert.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct _nat_peer_t {
    uint8_t key [NAT_KEY_SIZE];
    uint32_t index;
    nat_endpoint_t configured [NAT_PEER_ENDPOINTS_MAX];
    size_t configured_count;
    size_t which;               //  the configured endpoint of the last attempt
    bool direct;
    uint32_t keepalive_ms, silence_ms, backoff_min_ms, backoff_max_ms, jitter_pct;
    uint64_t rng;
    nat_peer_state_t state;
    nat_addr_t current;
    int64_t last_rx, last_tx;
    uint64_t rx_bytes, rx_packets, tx_bytes, tx_packets, keepalives, resolve_failures;
    uint32_t attempts;
    int64_t next_attempt;
    bool resolving;
    uint32_t rotate;            //  which resolved address the next dial uses
    char last_error [160];
    //  The unanswered timer (nat_peer.h): the first send larger than a
    //  keepalive after the peer was last heard (answered when <= s_heard),
    //  the probes since; routed_rx: the peer last heard through other peers
    bool fast;
    int64_t unanswered, probe_first, probe_last, routed_rx;
    int64_t settle_ms, suspect_ms, answer_ms, probe_ms;
    uint64_t fast_probes, fast_downs;
    const char *down_reason;
    nat_peer_handler_t handler;
    void *handler_arg;
};

//  xorshift64*: jitter only needs to differ between peers, not to be secret
static uint64_t
s_random (nat_peer_t *self)
{
    self->rng ^= self->rng >> 12;
    self->rng ^= self->rng << 25;
    self->rng ^= self->rng >> 27;
    return self->rng * 0x2545F4914F6CDD1DULL;
}

nat_peer_t *
nat_peer_new (const nat_peer_config_t *config, char *err, size_t err_size)
{
    nat_peer_t *self = calloc (1, sizeof *self);
    assert (self);
    if (config->public_key)
        memcpy (self->key, config->public_key, NAT_KEY_SIZE);
    //  The single endpoint first, then the list (best first)
    const char *texts [NAT_PEER_ENDPOINTS_MAX + 1];
    size_t count = 0;
    if (config->endpoint)
        texts [count++] = config->endpoint;
    for (size_t i = 0; i < config->endpoint_count && count <= NAT_PEER_ENDPOINTS_MAX; i++)
        texts [count++] = config->endpoints [i];
    if (count > NAT_PEER_ENDPOINTS_MAX) {
        snprintf (err, err_size, "more than %d endpoints", NAT_PEER_ENDPOINTS_MAX);
        free (self);
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        char why [160];
        if (nat_endpoint_parse (&self->configured [i], texts [i], why, sizeof why)) {
            snprintf (err, err_size, "endpoint %s: %s", texts [i], why);
            free (self);
            return NULL;
        }
    }
    self->configured_count = count;
    if (config->direct && !count) {
        snprintf (err, err_size, "direct = true needs an endpoint to dial");
        free (self);
        return NULL;
    }
    self->direct = config->direct;
    self->keepalive_ms = config->keepalive_ms ? config->keepalive_ms
                                              : (uint32_t) bus_cfg_connection_defaults.keepalive_interval_ms;
    self->silence_ms = config->silence_ms ? config->silence_ms : 3 * self->keepalive_ms + 5000;
    self->backoff_min_ms = config->backoff_min_ms ? config->backoff_min_ms : NAT_PEER_BACKOFF_MIN_MS;
    self->backoff_max_ms = config->backoff_max_ms ? config->backoff_max_ms : NAT_PEER_BACKOFF_MAX_MS;
    if (self->backoff_max_ms < self->backoff_min_ms)
        self->backoff_max_ms = self->backoff_min_ms;
    self->jitter_pct = config->no_jitter ? 0
                     : config->jitter_pct ? config->jitter_pct : NAT_PEER_JITTER_PCT;
    if (self->jitter_pct > 90)
        self->jitter_pct = 90;
    uint64_t key_bits;
    memcpy (&key_bits, self->key, sizeof key_bits);
    self->rng = (config->seed ^ key_bits) | 1;
    self->last_rx = self->last_tx = -1;
    self->unanswered = self->probe_first = self->probe_last = self->routed_rx = -1;
    self->fast = !config->no_fast_down;
    self->down_reason = "";
    nat_peer_set_rtt (self, -1, -1);
    self->next_attempt = NAT_PEER_NEVER;
    if (self->direct) {
        self->state = NAT_PEER_CONNECTING;
        self->next_attempt = 0;          //  at the first tick
    }
    return self;
}

void
nat_peer_destroy (nat_peer_t **self_p)
{
    if (self_p && *self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

void
nat_peer_set_handler (nat_peer_t *self, const nat_peer_handler_t *handler, void *arg)
{
    self->handler = handler ? *handler : (nat_peer_handler_t) { 0 };
    self->handler_arg = arg;
}

static void
s_set_state (nat_peer_t *self, nat_peer_state_t state)
{
    if (self->state == state)
        return;
    nat_peer_state_t old = self->state;
    self->state = state;
    if (self->handler.state)
        self->handler.state (self, old, self->handler_arg);
}

//  Delay after attempt number n (0-based): min x 2^n capped at max, less jitter
static int64_t
s_backoff (nat_peer_t *self, uint32_t n)
{
    uint64_t delay = self->backoff_max_ms;
    if (n < 32 && ((uint64_t) self->backoff_min_ms << n) < delay)
        delay = (uint64_t) self->backoff_min_ms << n;
    if (self->jitter_pct)
        delay -= delay * self->jitter_pct * (s_random (self) % 1001) / 100000;
    return (int64_t) delay;
}

static void
s_dial (nat_peer_t *self, const nat_addr_t *addr)
{
    if (self->handler.connect)
        self->handler.connect (self, addr, self->handler_arg);
}

//  One dial attempt now, and the next one planned. Several endpoints (the
//  registry's candidates: each address of the peer, best first) are tried in
//  turn, one per attempt, and the backoff grows once per round, so every
//  candidate is tried before the delays get long.
static void
s_attempt (nat_peer_t *self, int64_t now)
{
    uint32_t n = self->attempts++;
    self->which = n % self->configured_count;
    self->next_attempt = now + s_backoff (self, n / (uint32_t) self->configured_count);
    const nat_endpoint_t *endpoint = &self->configured [self->which];
    if (!endpoint->is_name)
        s_dial (self, &endpoint->addr);
    else
    if (!self->resolving) {
        //  A name is resolved again for every attempt: the peer may have moved
        self->resolving = true;
        if (self->handler.resolve)
            self->handler.resolve (self, endpoint->host, endpoint->port, self->handler_arg);
    }
}

static void
s_down (nat_peer_t *self, int64_t now, const char *reason)
{
    self->down_reason = reason;
    self->probe_first = self->probe_last = -1;
    if (self->direct) {
        self->attempts = 0;
        s_set_state (self, NAT_PEER_CONNECTING);
        s_attempt (self, now);          //  at once
    }
    else
        s_set_state (self, NAT_PEER_WAITING);
}

//  When the peer was last heard: on its own path, or through other peers
static inline int64_t
s_heard (const nat_peer_t *self)
{
    return self->last_rx > self->routed_rx ? self->last_rx : self->routed_rx;
}

void
nat_peer_set_rtt (nat_peer_t *self, int64_t srtt_us, int64_t rttvar_us)
{
    int64_t srtt = srtt_us < 0 ? 0 : srtt_us / 1000;
    int64_t rttvar = rttvar_us < 0 ? 0 : rttvar_us / 1000;
    self->suspect_ms = 4 * srtt > NAT_PEER_SUSPECT_MIN_MS ? 4 * srtt : NAT_PEER_SUSPECT_MIN_MS;
    if (self->suspect_ms > NAT_PEER_SUSPECT_MAX_MS)
        self->suspect_ms = NAT_PEER_SUSPECT_MAX_MS;
    self->settle_ms = 2 * srtt > NAT_PEER_SETTLE_MIN_MS ? 2 * srtt : NAT_PEER_SETTLE_MIN_MS;
    if (self->settle_ms > self->suspect_ms)
        self->settle_ms = self->suspect_ms;
    int64_t answer = srtt_us < 0 ? 0 : srtt + 4 * rttvar + 100;
    self->answer_ms = answer > NAT_PEER_ANSWER_MIN_MS ? answer : NAT_PEER_ANSWER_MIN_MS;
    if (self->answer_ms > NAT_PEER_ANSWER_MAX_MS)
        self->answer_ms = NAT_PEER_ANSWER_MAX_MS;
    self->probe_ms = srtt < NAT_PEER_PROBE_MIN_MS ? NAT_PEER_PROBE_MIN_MS
                   : srtt > NAT_PEER_PROBE_MAX_MS ? NAT_PEER_PROBE_MAX_MS : srtt;
}

static void
s_probe (nat_peer_t *self, int64_t now)
{
    if (self->probe_first <= s_heard (self))
        self->probe_first = now;
    self->probe_last = now;
    self->fast_probes++;
    if (self->handler.probe)
        self->handler.probe (self, self->handler_arg);
}

//  The unanswered timer's next step, NAT_PEER_NEVER when nothing is outstanding
//  (or only keepalives are). Probing: the first probe was sent after the peer
//  was last heard.
static int64_t
s_fast_deadline (nat_peer_t *self)
{
    int64_t heard = s_heard (self);
    if (!self->fast || self->unanswered <= heard)
        return NAT_PEER_NEVER;
    if (self->probe_first <= heard) {
        //  Unanswered for settle_ms, and silent for suspect_ms: the first
        //  datagram after a long quiet is probed soon, and a peer that died
        //  before we sent anything is not given a second suspect_ms
        int64_t settled = self->unanswered + self->settle_ms;
        int64_t silent = heard + self->suspect_ms;
        return settled > silent ? settled : silent;
    }
    int64_t down = self->probe_first + self->answer_ms;
    int64_t again = self->probe_last + self->probe_ms;
    return again < down ? again : down;
}

void
nat_peer_tick (nat_peer_t *self, int64_t now)
{
    if (self->state == NAT_PEER_UP) {
        if (now - self->last_rx >= self->silence_ms) {
            s_down (self, now, "silence");
            return;
        }
        if (s_fast_deadline (self) <= now) {
            if (self->probe_first > s_heard (self) && now - self->probe_first >= self->answer_ms) {
                self->fast_downs++;
                s_down (self, now, "unanswered");
                return;
            }
            s_probe (self, now);
        }
        if (now - self->last_tx >= self->keepalive_ms) {
            self->last_tx = now;        //  the keepalive is on its way
            self->keepalives++;
            if (self->handler.keepalive)
                self->handler.keepalive (self, self->handler_arg);
        }
    }
    else
    if (self->state == NAT_PEER_CONNECTING && now >= self->next_attempt)
        s_attempt (self, now);
}

int64_t
nat_peer_next_deadline (nat_peer_t *self)
{
    if (self->state == NAT_PEER_UP) {
        int64_t silence = self->last_rx + self->silence_ms;
        int64_t keepalive = self->last_tx + self->keepalive_ms;
        int64_t fast = s_fast_deadline (self);
        int64_t next = silence < keepalive ? silence : keepalive;
        return fast < next ? fast : next;
    }
    if (self->state == NAT_PEER_CONNECTING)
        return self->next_attempt;
    return NAT_PEER_NEVER;
}

void
nat_peer_confirm_endpoint (nat_peer_t *self, const nat_addr_t *addr, int64_t now)
{
    if (!nat_addr_eq (&self->current, addr)) {
        nat_addr_t old = self->current;
        self->current = *addr;
        if (self->handler.endpoint)
            self->handler.endpoint (self, &old, self->handler_arg);
    }
    self->last_rx = now;
    if (self->state != NAT_PEER_UP) {
        self->attempts = 0;
        self->next_attempt = NAT_PEER_NEVER;
        if (self->last_tx < 0)
            self->last_tx = now;
        s_set_state (self, NAT_PEER_UP);
    }
}

void
nat_peer_clear_endpoint (nat_peer_t *self)
{
    nat_addr_clear (&self->current);
}

void
nat_peer_received (nat_peer_t *self, size_t bytes, int64_t now)
{
    self->rx_packets++;
    self->rx_bytes += bytes;
    self->last_rx = now;
}

//  Sent by nat itself, now: more than a keepalive, and the first since the
//  peer was last heard, starts the unanswered timer
void
nat_peer_sent (nat_peer_t *self, size_t bytes, int64_t now)
{
    self->tx_packets++;
    self->tx_bytes += bytes;
    self->last_tx = now;
    if (bytes > NAT_PEER_KEEPALIVE_SIZE && self->unanswered <= s_heard (self))
        self->unanswered = now;
}

//  Sent through other peers: their own timers judge the hops, and this peer's
//  answers come back routed (nat_peer_heard_routed), so nothing starts here
void
nat_peer_sent_routed (nat_peer_t *self, size_t bytes, int64_t now)
{
    self->tx_packets++;
    self->tx_bytes += bytes;
    self->last_tx = now;
    self->unanswered = self->probe_first = -1;
}

void
nat_peer_heard_routed (nat_peer_t *self, int64_t now)
{
    self->routed_rx = now;
}

//  Sent by crypto on our socket in the last tick, reported now. Some of it may
//  have left before the peer's last datagram (and been answered by it), so it
//  starts the timer only when the peer was last heard before the report's
//  tick began (a one-way stream then starts it up to a report later)
void
nat_peer_sent_many (nat_peer_t *self, uint64_t packets, uint64_t bytes, int64_t now)
{
    self->tx_packets += packets;
    self->tx_bytes += bytes;
    self->last_tx = now;
    if (bytes > packets * NAT_PEER_KEEPALIVE_SIZE && self->unanswered <= s_heard (self)
    &&  now - s_heard (self) > NAT_PEER_REPORT_LAG_MS)
        self->unanswered = now;
}

void
nat_peer_resolved (nat_peer_t *self, const nat_addr_t *addrs, size_t count,
                   const char *error, int64_t now)
{
    self->resolving = false;
    if (count == 0) {
        //  Nothing to dial; the next attempt (already planned) resolves again
        self->resolve_failures++;
        snprintf (self->last_error, sizeof self->last_error, "%s",
                  error && *error ? error : "no address");
        return;
    }
    self->last_error [0] = 0;
    if (self->state == NAT_PEER_CONNECTING)
        //  Several addresses (IPv6 and IPv4, round robin DNS): a different one each try
        s_dial (self, &addrs [self->rotate++ % count]);
}

nat_peer_state_t nat_peer_state (nat_peer_t *self) { return self->state; }
const uint8_t *nat_peer_key (nat_peer_t *self) { return self->key; }
const nat_addr_t *nat_peer_endpoint (nat_peer_t *self) { return &self->current; }
bool nat_peer_direct (nat_peer_t *self) { return self->direct; }
uint32_t nat_peer_index (nat_peer_t *self) { return self->index; }
void nat_peer_set_index (nat_peer_t *self, uint32_t index) { self->index = index; }

const nat_endpoint_t *
nat_peer_configured (nat_peer_t *self)
{
    return self->configured_count ? &self->configured [self->which] : NULL;
}

int
nat_peer_set_endpoints (nat_peer_t *self, const char *const *endpoints, size_t count,
                        char *err, size_t err_size)
{
    if (count > NAT_PEER_ENDPOINTS_MAX) {
        snprintf (err, err_size, "more than %d endpoints", NAT_PEER_ENDPOINTS_MAX);
        return -1;
    }
    if (self->direct && !count) {
        snprintf (err, err_size, "direct = true needs an endpoint to dial");
        return -1;
    }
    nat_endpoint_t parsed [NAT_PEER_ENDPOINTS_MAX];
    for (size_t i = 0; i < count; i++) {
        char why [160];
        if (nat_endpoint_parse (&parsed [i], endpoints [i], why, sizeof why)) {
            snprintf (err, err_size, "endpoint %s: %s", endpoints [i], why);
            return -1;
        }
    }
    memcpy (self->configured, parsed, count * sizeof parsed [0]);
    self->configured_count = count;
    if (self->which >= count)
        self->which = 0;
    return 0;
}

const nat_endpoint_t *
nat_peer_configured_at (nat_peer_t *self, size_t i)
{
    return i < self->configured_count ? &self->configured [i] : NULL;
}

void
nat_peer_status (nat_peer_t *self, nat_peer_status_t *status)
{
    *status = (nat_peer_status_t) {
        .state = self->state, .endpoint = self->current,
        .rx_bytes = self->rx_bytes, .rx_packets = self->rx_packets,
        .tx_bytes = self->tx_bytes, .tx_packets = self->tx_packets,
        .last_rx_ms = self->last_rx, .last_tx_ms = self->last_tx,
        .attempts = self->attempts, .next_attempt_ms = self->next_attempt,
        .keepalives = self->keepalives, .resolve_failures = self->resolve_failures,
        .last_error = self->last_error,
        .unanswered_ms = self->unanswered > s_heard (self) ? self->unanswered : -1,
        .probing = self->state == NAT_PEER_UP && self->probe_first > s_heard (self),
        .fast_probes = self->fast_probes, .fast_downs = self->fast_downs,
        .down_reason = self->down_reason
    };
}

const char *
nat_peer_state_name (nat_peer_state_t state)
{
    return state == NAT_PEER_UP ? "up"
         : state == NAT_PEER_CONNECTING ? "connecting" : "waiting";
}

static const char s_b64 [] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
nat_key_to_base64 (const uint8_t key [NAT_KEY_SIZE], char out [NAT_KEY_BASE64_SIZE])
{
    size_t o = 0;
    for (size_t i = 0; i < NAT_KEY_SIZE; i += 3) {
        uint32_t v = (uint32_t) key [i] << 16;
        if (i + 1 < NAT_KEY_SIZE) v |= (uint32_t) key [i + 1] << 8;
        if (i + 2 < NAT_KEY_SIZE) v |= key [i + 2];
        out [o++] = s_b64 [v >> 18 & 63];
        out [o++] = s_b64 [v >> 12 & 63];
        out [o++] = i + 1 < NAT_KEY_SIZE ? s_b64 [v >> 6 & 63] : '=';
        out [o++] = i + 2 < NAT_KEY_SIZE ? s_b64 [v & 63] : '=';
    }
    out [o] = 0;
}

int
nat_key_from_base64 (const char *text, uint8_t key [NAT_KEY_SIZE], char *err, size_t err_size)
{
    if (!text || strlen (text) != 44 || text [43] != '=' || text [42] == '=') {
        snprintf (err, err_size, "a public key is 44 characters of base64 ending in '='");
        return -1;
    }
    uint32_t acc = 0;
    size_t bits = 0, o = 0;
    for (size_t i = 0; i < 43; i++) {
        const char *p = strchr (s_b64, text [i]);
        if (!p || !text [i]) {
            snprintf (err, err_size, "invalid base64 character at position %zu of the key", i + 1);
            return -1;
        }
        acc = acc << 6 | (uint32_t) (p - s_b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o < NAT_KEY_SIZE)
                key [o++] = (uint8_t) (acc >> bits);
        }
    }
    //  The last character carries 2 unused bits, which must be zero (canonical form)
    if (acc & ((1u << bits) - 1)) {
        snprintf (err, err_size, "public key is not canonical base64");
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Self test: a recording handler and a simulated clock

typedef struct {
    int64_t now;
    int64_t connects [64];
    nat_addr_t connect_addr [64];
    size_t n_connects;
    int64_t keepalives [64];
    size_t n_keepalives;
    int64_t resolves [64];
    size_t n_resolves;
    char host [NAT_HOST_MAX];
    uint16_t port;
    size_t n_states;
    size_t n_endpoints;
    int64_t probes [64];
    size_t n_probes;
    nat_resolver_t *resolver;   //  when set, resolve for real
} s_rec_t;

static void
s_on_keepalive (nat_peer_t *peer, void *arg)
{
    s_rec_t *rec = arg;
    if (rec->n_keepalives < 64)
        rec->keepalives [rec->n_keepalives] = rec->now;
    rec->n_keepalives++;
}

static void
s_on_connect (nat_peer_t *peer, const nat_addr_t *addr, void *arg)
{
    s_rec_t *rec = arg;
    if (rec->n_connects < 64) {
        rec->connects [rec->n_connects] = rec->now;
        rec->connect_addr [rec->n_connects] = *addr;
    }
    rec->n_connects++;
}

static void
s_on_resolve (nat_peer_t *peer, const char *host, uint16_t port, void *arg)
{
    s_rec_t *rec = arg;
    if (rec->n_resolves < 64)
        rec->resolves [rec->n_resolves] = rec->now;
    rec->n_resolves++;
    snprintf (rec->host, sizeof rec->host, "%s", host);
    rec->port = port;
    if (rec->resolver)
        assert (nat_resolver_request (rec->resolver, host, port, 1) == 0);
}

static void
s_on_state (nat_peer_t *peer, nat_peer_state_t old_state, void *arg)
{
    ((s_rec_t *) arg)->n_states++;
}

static void
s_on_endpoint (nat_peer_t *peer, const nat_addr_t *old_addr, void *arg)
{
    ((s_rec_t *) arg)->n_endpoints++;
}

static void
s_on_probe (nat_peer_t *peer, void *arg)
{
    s_rec_t *rec = arg;
    if (rec->n_probes < 64)
        rec->probes [rec->n_probes] = rec->now;
    rec->n_probes++;
}

static const nat_peer_handler_t s_rec_handler = {
    s_on_keepalive, s_on_connect, s_on_resolve, s_on_state, s_on_endpoint, s_on_probe
};

//  A fresh recording (rec cleared) and a peer of `config` reporting to it
static nat_peer_t *
s_new_peer (s_rec_t *rec, nat_peer_config_t config)
{
    memset (rec, 0, sizeof *rec);
    char err [200];
    nat_peer_t *peer = nat_peer_new (&config, err, sizeof err);
    assert (peer);
    nat_peer_set_handler (peer, &s_rec_handler, rec);
    return peer;
}

//  The same, confirmed (up) from `from` at `at` ms, the clock there: the start
//  of every unanswered-traffic case
static nat_peer_t *
s_new_peer_up (s_rec_t *rec, nat_peer_config_t config, const nat_addr_t *from, int64_t at)
{
    nat_peer_t *peer = s_new_peer (rec, config);
    rec->now = at;
    nat_peer_confirm_endpoint (peer, from, at);
    return peer;
}

//  The clock in steps of 10 ms until `until`, as the service loop's tick
//  would: `bytes` sent every send_every ms (0: nothing), and each probe
//  answered answer_after ms later (-1: never) except the first `lose` of them.
//  Returns the probes sent.
static size_t
s_simulate (nat_peer_t *peer, s_rec_t *rec, int64_t until, int64_t send_every, size_t bytes,
            int64_t answer_after, size_t lose)
{
    int64_t due [256];
    size_t n_due = 0, seen = rec->n_probes, first = rec->n_probes;
    for (; rec->now <= until; rec->now += 10) {
        for (size_t i = 0; i < n_due; i++)
            if (due [i] == rec->now) {
                nat_peer_received (peer, NAT_PEER_KEEPALIVE_SIZE, rec->now);
                due [i--] = due [--n_due];
            }
        if (send_every && rec->now % send_every == 0)
            nat_peer_sent (peer, bytes, rec->now);
        if (nat_peer_next_deadline (peer) <= rec->now)
            nat_peer_tick (peer, rec->now);
        for (; seen < rec->n_probes; seen++)
            if (answer_after >= 0 && seen - first >= lose && n_due < 256)
                due [n_due++] = rec->now + answer_after;
    }
    rec->now = until;
    return rec->n_probes - first;
}

//  Jumps the clock from deadline to deadline until `until`, as the service loop would
static void
s_run_until (nat_peer_t *peer, s_rec_t *rec, int64_t until)
{
    for (int guard = 0; guard < 100000; guard++) {
        int64_t next = nat_peer_next_deadline (peer);
        if (next > until)
            break;
        if (next > rec->now)
            rec->now = next;
        nat_peer_tick (peer, rec->now);
    }
    rec->now = until;
    nat_peer_tick (peer, rec->now);
}

static int64_t
s_wall_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Feeds real resolver results into the peer (what the service loop does)
static bool
s_pump_resolver (nat_peer_t *peer, s_rec_t *rec, int timeout_ms)
{
    nat_resolver_result_t result;
    int64_t deadline = s_wall_ms () + timeout_ms;
    while (s_wall_ms () < deadline) {
        if (nat_resolver_next (rec->resolver, &result)) {
            nat_peer_resolved (peer, result.addrs, result.count, result.message, rec->now);
            return true;
        }
        poll (&(struct pollfd) { .fd = nat_resolver_fd (rec->resolver), .events = POLLIN }, 1, 50);
    }
    return false;
}

void
nat_peer_test (bool verbose)
{
    uint8_t key [NAT_KEY_SIZE];
    for (int i = 0; i < NAT_KEY_SIZE; i++)
        key [i] = (uint8_t) (i * 7 + 1);
    char err [200];

    //  Keys round-trip through base64; bad text is refused with a reason
    char b64 [NAT_KEY_BASE64_SIZE];
    uint8_t back [NAT_KEY_SIZE];
    nat_key_to_base64 (key, b64);
    assert (strlen (b64) == 44 && b64 [43] == '=');
    assert (nat_key_from_base64 (b64, back, err, sizeof err) == 0 && memcmp (back, key, 32) == 0);
    assert (nat_key_from_base64 ("short=", back, err, sizeof err) == -1);
    char bad [NAT_KEY_BASE64_SIZE];
    strcpy (bad, b64);
    bad [5] = '*';
    assert (nat_key_from_base64 (bad, back, err, sizeof err) == -1 && strstr (err, "position 6"));
    strcpy (bad, b64);
    bad [42] = 'B';             //  sets an unused low bit
    assert (nat_key_from_base64 (bad, back, err, sizeof err) == -1 && strstr (err, "canonical"));

    //  Configuration errors
    assert (!nat_peer_new (&(nat_peer_config_t) { .public_key = key, .endpoint = "host:0", .direct = true }, err, sizeof err));
    assert (strstr (err, "endpoint host:0: port 0 out of range"));
    const char *nine [9] = { "192.0.2.1:1", "192.0.2.1:2", "192.0.2.1:3", "192.0.2.1:4", "192.0.2.1:5",
                             "192.0.2.1:6", "192.0.2.1:7", "192.0.2.1:8", "192.0.2.1:9" };
    assert (!nat_peer_new (&(nat_peer_config_t) { .public_key = key, .endpoints = nine, .endpoint_count = 9,
                                                  .direct = true }, err, sizeof err));
    assert (strstr (err, "more than 8 endpoints"));
    const char *broken [2] = { "192.0.2.1:51820", "[::1" };
    assert (!nat_peer_new (&(nat_peer_config_t) { .public_key = key, .endpoints = broken, .endpoint_count = 2,
                                                  .direct = true }, err, sizeof err));
    assert (strstr (err, "endpoint [::1:"));
    assert (!nat_peer_new (&(nat_peer_config_t) { .public_key = key, .direct = true }, err, sizeof err));
    assert (strstr (err, "needs an endpoint"));

    //  1. Direct to a numeric endpoint: at once, then 1, 2, 4 ... 60 s
    s_rec_t rec;
    nat_peer_t *peer = s_new_peer (&rec, (nat_peer_config_t) {
        .public_key = key, .endpoint = "192.0.2.1:51820", .direct = true, .no_jitter = true });
    assert (nat_peer_state (peer) == NAT_PEER_CONNECTING);
    s_run_until (peer, &rec, 10 * 60 * 1000);
    static const int64_t expect [] = { 0, 1000, 3000, 7000, 15000, 31000, 63000, 123000,
                                       183000, 243000, 303000, 363000 };
    for (size_t i = 0; i < sizeof expect / sizeof expect [0]; i++)
        assert (rec.connects [i] == expect [i]);
    assert (rec.n_connects == 15);      //  7 up to 63 s, then 123, 183 ... 543 s
    char text [NAT_ADDR_TEXT_MAX];
    assert (strcmp (nat_addr_format (&rec.connect_addr [3], text, sizeof text), "192.0.2.1:51820") == 0);
    assert (rec.n_keepalives == 0);

    //  Confirmed (from a roamed address): up, backoff reset, keepalives every 25 s
    //  when nothing else is sent, while packets keep coming in
    nat_addr_t roamed;
    nat_addr_set_ip (&roamed, "198.51.100.9", 40000);
    rec.now = 600000;
    nat_peer_confirm_endpoint (peer, &roamed, rec.now);
    assert (nat_peer_state (peer) == NAT_PEER_UP && rec.n_endpoints == 1);
    assert (nat_addr_eq (nat_peer_endpoint (peer), &roamed));
    nat_peer_status_t st;
    nat_peer_status (peer, &st);
    assert (st.attempts == 0 && st.next_attempt_ms == NAT_PEER_NEVER);
    for (int64_t t = 600000; t <= 700000; t += 10000) {
        s_run_until (peer, &rec, t);
        nat_peer_received (peer, 100, t);
    }
    assert (rec.n_keepalives == 4);
    for (int i = 0; i < 4; i++)
        assert (rec.keepalives [i] == 625000 + i * 25000);
    //  What we send postpones the keepalive (keepalive-sized here: data would
    //  start the unanswered timer, case 6)
    nat_peer_sent (peer, NAT_PEER_KEEPALIVE_SIZE, 710000);
    s_run_until (peer, &rec, 730000);
    assert (rec.n_keepalives == 4);
    s_run_until (peer, &rec, 735000);
    assert (rec.n_keepalives == 5 && rec.keepalives [4] == 735000);

    //  Silence: 80 s after the last packet in, down and dialled at once, then 1, 2 s
    size_t before = rec.n_connects;
    s_run_until (peer, &rec, 700000 + 80000 - 1);
    assert (nat_peer_state (peer) == NAT_PEER_UP);
    s_run_until (peer, &rec, 780000 + 3000);
    assert (nat_peer_state (peer) == NAT_PEER_CONNECTING);
    assert (rec.n_connects == before + 3);
    assert (rec.connects [before] == 780000 && rec.connects [before + 1] == 781000
         && rec.connects [before + 2] == 783000);
    //  The configured endpoint is dialled, not the roamed one
    assert (nat_addr_port (&rec.connect_addr [before]) == 51820);
    //  Success resets the sequence: the next silence starts again at "at once, 1 s"
    nat_peer_confirm_endpoint (peer, &roamed, 784000);
    rec.now = 784000;
    s_run_until (peer, &rec, 784000 + 80000 + 1000);
    assert (rec.n_connects == before + 5);
    assert (rec.connects [before + 3] == 864000 && rec.connects [before + 4] == 865000);
    nat_peer_status (peer, &st);
    assert (st.rx_packets == 11 && st.rx_bytes == 1100 && st.tx_packets == 1);
    assert (st.keepalives == rec.n_keepalives);
    nat_peer_destroy (&peer);
    assert (peer == NULL);

    //  1b. Several endpoints (the registry's candidates, best first): one per
    //  attempt in turn, the delay doubling once per round; the one that answers
    //  is confirmed and reported as the configured endpoint
    const char *candidates [3] = { "192.0.2.1:51820", "198.51.100.7:51820", "203.0.113.5:51820" };
    peer = s_new_peer (&rec, (nat_peer_config_t) { .public_key = key, .endpoints = candidates, .endpoint_count = 3,
                                                   .direct = true, .no_jitter = true });
    assert (nat_peer_configured_at (peer, 2) && !nat_peer_configured_at (peer, 3));
    s_run_until (peer, &rec, 9000);
    static const int64_t expect_round [] = { 0, 1000, 2000, 3000, 5000, 7000, 9000 };
    assert (rec.n_connects == 7);
    for (size_t i = 0; i < 7; i++) {
        assert (rec.connects [i] == expect_round [i]);
        assert (strcmp (nat_addr_format (&rec.connect_addr [i], text, sizeof text), candidates [i % 3]) == 0);
    }
    //  New candidates keep the state; bad ones change nothing
    const char *bad_one [1] = { "192.0.2.300:1" };
    assert (nat_peer_set_endpoints (peer, bad_one, 1, err, sizeof err) == -1 && strstr (err, "192.0.2.300"));
    assert (nat_peer_set_endpoints (peer, NULL, 0, err, sizeof err) == -1);
    const char *fresh [1] = { "192.0.2.99:4000" };
    assert (nat_peer_set_endpoints (peer, fresh, 1, err, sizeof err) == 0);
    assert (nat_peer_configured_at (peer, 0) && !nat_peer_configured_at (peer, 1));
    assert (nat_peer_state (peer) == NAT_PEER_CONNECTING);
    assert (nat_peer_set_endpoints (peer, candidates, 3, err, sizeof err) == 0);
    assert (nat_peer_configured_at (peer, 2) && !nat_peer_configured_at (peer, 3));
    s_run_until (peer, &rec, 13000);        //  the 8th attempt: the second candidate
    char configured_text [NAT_ENDPOINT_TEXT_MAX];
    assert (0 == strcmp (nat_endpoint_format (nat_peer_configured (peer), configured_text, sizeof configured_text),
                    candidates [1]));
    nat_addr_t answered;
    nat_addr_set_ip (&answered, "198.51.100.7", 51820);
    nat_peer_confirm_endpoint (peer, &answered, 13005);
    assert (nat_peer_state (peer) == NAT_PEER_UP && nat_addr_eq (nat_peer_endpoint (peer), &answered));
    nat_peer_destroy (&peer);

    //  2. No permission: never dialled, in hours, even with an endpoint configured;
    //  a peer that reached us goes back to waiting when silent
    peer = s_new_peer (&rec, (nat_peer_config_t) { .public_key = key, .endpoint = "peer.example:51820" });
    assert (nat_peer_state (peer) == NAT_PEER_WAITING);
    assert (nat_peer_next_deadline (peer) == NAT_PEER_NEVER);
    for (rec.now = 0; rec.now < 3 * 3600 * 1000; rec.now += 1000)
        nat_peer_tick (peer, rec.now);
    nat_peer_confirm_endpoint (peer, &roamed, rec.now);
    assert (nat_peer_state (peer) == NAT_PEER_UP);
    s_run_until (peer, &rec, rec.now + 3600 * 1000);
    assert (nat_peer_state (peer) == NAT_PEER_WAITING);
    assert (rec.n_connects == 0 && rec.n_resolves == 0);
    assert (rec.n_keepalives == 3);     //  at 25, 50, 75 s; silent at 80 s
    nat_peer_destroy (&peer);

    //  3. A named endpoint is resolved for every attempt; a failed lookup is retried
    //  on the backoff; a new address (DDNS) is dialled
    peer = s_new_peer (&rec, (nat_peer_config_t) { .public_key = key, .endpoint = "home.example:51820",
                                                   .direct = true, .no_jitter = true });
    nat_peer_tick (peer, 0);
    assert (rec.n_resolves == 1 && strcmp (rec.host, "home.example") == 0 && rec.port == 51820);
    nat_peer_tick (peer, 500);          //  still resolving: no second request
    assert (rec.n_resolves == 1);
    nat_peer_resolved (peer, NULL, 0, "cannot resolve home.example: timeout", 500);
    nat_peer_status (peer, &st);
    assert (st.resolve_failures == 1 && strstr (st.last_error, "timeout"));
    assert (rec.n_connects == 0);
    s_run_until (peer, &rec, 1000);
    assert (rec.n_resolves == 2 && rec.resolves [1] == 1000);
    nat_addr_t first, second;
    nat_addr_set_ip (&first, "203.0.113.5", 51820);
    nat_addr_set_ip (&second, "203.0.113.77", 51820);
    nat_peer_resolved (peer, &first, 1, NULL, 1000);
    assert (rec.n_connects == 1 && nat_addr_eq (&rec.connect_addr [0], &first));
    nat_peer_status (peer, &st);
    assert (st.last_error [0] == 0);
    s_run_until (peer, &rec, 3000);
    assert (rec.n_resolves == 3 && rec.resolves [2] == 3000);
    nat_peer_resolved (peer, &second, 1, NULL, 3000);
    assert (rec.n_connects == 2 && nat_addr_eq (&rec.connect_addr [1], &second));
    nat_peer_confirm_endpoint (peer, &second, 3100);
    assert (nat_peer_state (peer) == NAT_PEER_UP);
    //  A late answer after success dials nothing
    nat_peer_resolved (peer, &first, 1, NULL, 3200);
    assert (rec.n_connects == 2);
    nat_peer_destroy (&peer);

    //  4. Jitter: every delay within [80%, 100%] of nominal, and not all nominal
    peer = s_new_peer (&rec, (nat_peer_config_t) { key, "192.0.2.1:1", true, .seed = 99 });
    s_run_until (peer, &rec, 30 * 60 * 1000);
    bool varied = false;
    for (size_t i = 1; i < 20; i++) {
        int64_t nominal = i - 1 < 6 ? 1000 << (i - 1) : 60000;
        int64_t delay = rec.connects [i] - rec.connects [i - 1];
        assert (delay <= nominal && delay >= nominal * 8 / 10);
        varied |= delay != nominal;
    }
    assert (varied);
    nat_peer_destroy (&peer);

    //  6. Unanswered traffic (issue 18): a peer up that we send data to and
    //  that stays silent is probed after 1 s, every 100 ms, and is down 1 s
    //  after the first probe: 2 s after the first unanswered datagram
    peer = s_new_peer_up (&rec, (nat_peer_config_t) { .public_key = key }, &roamed, 1000);
    nat_peer_sent (peer, 1400, 1500);
    nat_peer_sent (peer, 1400, 1700);           //  the first unanswered one counts
    nat_peer_status (peer, &st);
    assert (st.unanswered_ms == 1500 && !st.probing);
    assert (nat_peer_next_deadline (peer) == 2000);      //  1 s after the last datagram in
    s_run_until (peer, &rec, 1999);
    assert (rec.n_probes == 0);
    s_run_until (peer, &rec, 2999);
    assert (nat_peer_state (peer) == NAT_PEER_UP && rec.n_probes == 10);
    for (size_t i = 0; i < 10; i++)
        assert (rec.probes [i] == 2000 + (int64_t) i * 100);
    nat_peer_status (peer, &st);
    assert (st.probing && st.fast_probes == 10);
    s_run_until (peer, &rec, 3000);
    assert (nat_peer_state (peer) == NAT_PEER_WAITING && rec.n_probes == 10);
    nat_peer_status (peer, &st);
    assert (st.fast_downs == 1 && strcmp (st.down_reason, "unanswered") == 0 && !st.probing);
    //  Up again: the old traffic counts as answered, nothing is probed
    nat_peer_confirm_endpoint (peer, &roamed, 4000);
    s_run_until (peer, &rec, 20000);
    assert (nat_peer_state (peer) == NAT_PEER_UP && rec.n_probes == 10);
    //  After a long quiet, a datagram unanswered for 200 ms is probed (the
    //  peer may have died meanwhile): down 1.2 s after it. One answered in
    //  time costs nothing
    nat_peer_received (peer, 100, 20000);
    nat_peer_sent (peer, 1400, 30000);
    nat_peer_received (peer, 100, 30050);
    s_run_until (peer, &rec, 31000);
    assert (rec.n_probes == 10);
    nat_peer_sent (peer, 1400, 40000);
    assert (nat_peer_next_deadline (peer) == 40200);
    s_run_until (peer, &rec, 41199);
    assert (nat_peer_state (peer) == NAT_PEER_UP && rec.n_probes == 20);
    s_run_until (peer, &rec, 41200);
    assert (nat_peer_state (peer) == NAT_PEER_WAITING);
    nat_peer_destroy (&peer);

    //  6b. An answer to a probe keeps the peer up, and probing stops until
    //  something new goes unanswered; a one-way stream (nothing comes back but
    //  the probes' answers) costs about one probe a second and stays up for
    //  minutes; so does one whose first three probes' answers are lost
    peer = s_new_peer_up (&rec, (nat_peer_config_t) { .public_key = key }, &roamed, 0);
    nat_peer_sent (peer, 200, 100);
    s_run_until (peer, &rec, 1000);
    assert (rec.n_probes == 1 && rec.probes [0] == 1000);
    nat_peer_received (peer, NAT_PEER_KEEPALIVE_SIZE, 1005);
    nat_peer_status (peer, &st);
    assert (!st.probing && st.unanswered_ms == -1);
    s_run_until (peer, &rec, 20000);
    assert (nat_peer_state (peer) == NAT_PEER_UP && rec.n_probes == 1);
    size_t probes = s_simulate (peer, &rec, 200000, 10, 1400, 10, 0);
    assert (nat_peer_state (peer) == NAT_PEER_UP);
    assert (probes >= 170 && probes <= 180);    //  one per 1.01 s
    if (verbose)
        printf ("  one-way stream, 3 minutes at a 10 ms round trip: %zu probes\n", probes);
    //  A loss burst: three probes' answers lost, the fourth answered
    nat_peer_status (peer, &st);
    uint64_t downs = st.fast_downs;
    probes = s_simulate (peer, &rec, 202000, 10, 1400, 10, 3);
    nat_peer_status (peer, &st);
    assert (nat_peer_state (peer) == NAT_PEER_UP && st.fast_downs == downs);
    assert (probes >= 4);
    nat_peer_destroy (&peer);

    //  6c. An idle peer (keepalives only, ours by the timer and crypto's
    //  reported a tick late) is never probed: down on silence at 80 s
    peer = s_new_peer_up (&rec, (nat_peer_config_t) { .public_key = key }, &roamed, 0);
    nat_peer_sent_many (peer, 1, NAT_PEER_KEEPALIVE_SIZE, 100);
    nat_peer_sent (peer, NAT_PEER_KEEPALIVE_SIZE, 400);
    nat_peer_status (peer, &st);
    assert (st.unanswered_ms == -1);
    s_simulate (peer, &rec, 79990, 0, 0, -1, 0);
    assert (nat_peer_state (peer) == NAT_PEER_UP && rec.n_probes == 0 && rec.n_keepalives == 3);
    s_run_until (peer, &rec, 80000);
    nat_peer_status (peer, &st);
    assert (nat_peer_state (peer) == NAT_PEER_WAITING && strcmp (st.down_reason, "silence") == 0);
    assert (rec.n_probes == 0 && st.fast_downs == 0);
    nat_peer_destroy (&peer);

    //  6d. crypto's SENT reports: data reported within 250 ms of the peer's
    //  last datagram may have been answered by it and starts nothing; a report
    //  later does. Data of the same report as keepalives counts
    peer = s_new_peer_up (&rec, (nat_peer_config_t) { .public_key = key }, &roamed, 0);
    nat_peer_sent_many (peer, 3, 3 * 120, 100);
    nat_peer_sent_many (peer, 3, 3 * 120, 250);
    nat_peer_status (peer, &st);
    assert (st.unanswered_ms == -1);
    nat_peer_sent_many (peer, 2, NAT_PEER_KEEPALIVE_SIZE + 120, 251);
    nat_peer_status (peer, &st);
    assert (st.unanswered_ms == 251);
    s_run_until (peer, &rec, 2251);
    assert (nat_peer_state (peer) == NAT_PEER_WAITING && rec.n_probes == 10);
    nat_peer_destroy (&peer);

    //  6e. A slow path (200 ms round trip, measured): probes every 200 ms, an
    //  answer 200 ms later keeps it up under a one-way stream; dead, it is
    //  down within the same 2 s. At 400 ms, the probing starts at 1.6 s
    peer = s_new_peer_up (&rec, (nat_peer_config_t) { .public_key = key }, &roamed, 0);
    nat_peer_set_rtt (peer, 200000, 20000);
    probes = s_simulate (peer, &rec, 120000, 20, 1400, 200, 0);
    nat_peer_status (peer, &st);
    assert (nat_peer_state (peer) == NAT_PEER_UP && st.fast_downs == 0);
    assert (probes >= 90 && probes <= 120);     //  one per 1.2 s
    if (verbose)
        printf ("  one-way stream, 2 minutes at a 200 ms round trip: %zu probes, up\n", probes);
    nat_peer_received (peer, 100, 120000);
    nat_peer_sent (peer, 1400, 120010);
    s_run_until (peer, &rec, 121999);
    assert (nat_peer_state (peer) == NAT_PEER_UP);
    nat_peer_status (peer, &st);
    assert (st.probing);
    s_run_until (peer, &rec, 122000);
    assert (nat_peer_state (peer) == NAT_PEER_WAITING);
    nat_peer_destroy (&peer);
    peer = s_new_peer_up (&rec, (nat_peer_config_t) { .public_key = key }, &roamed, 0);
    nat_peer_set_rtt (peer, 400000, 30000);
    nat_peer_sent (peer, 1400, 10);
    assert (nat_peer_next_deadline (peer) == 1600);
    probes = s_simulate (peer, &rec, 60000, 20, 1400, 400, 0);
    assert (nat_peer_state (peer) == NAT_PEER_UP && probes >= 25);

    //  A path measured absurdly slow (5 s) is capped: probing at 4 s, down 3 s
    //  later (settle capped at suspect)
    nat_peer_set_rtt (peer, 5000000, 100000);
    nat_peer_received (peer, 100, 70000);
    nat_peer_sent (peer, 1400, 70010);
    assert (nat_peer_next_deadline (peer) == 74010);
    s_run_until (peer, &rec, 77009);
    assert (nat_peer_state (peer) == NAT_PEER_UP);
    s_run_until (peer, &rec, 77010);
    assert (nat_peer_state (peer) == NAT_PEER_WAITING);
    nat_peer_destroy (&peer);

    //  6g. A peer reached through other peers: what we send it there starts
    //  nothing (the hops' timers judge the hops), and what it sends us there
    //  answers traffic sent on its own path
    peer = s_new_peer_up (&rec, (nat_peer_config_t) { .public_key = key }, &roamed, 0);
    nat_peer_sent (peer, 1400, 100);            //  on its path, then routed
    for (int64_t t = 200; t <= 10000; t += 100)
        nat_peer_sent_routed (peer, 1400, t);
    s_run_until (peer, &rec, 10000);
    nat_peer_status (peer, &st);
    assert (rec.n_probes == 0 && st.unanswered_ms == -1 && st.tx_packets == 100);
    for (int64_t t = 10000; t <= 20000; t += 100) {
        nat_peer_sent (peer, 1400, t);
        nat_peer_heard_routed (peer, t + 20);
        s_run_until (peer, &rec, t + 50);
    }
    assert (nat_peer_state (peer) == NAT_PEER_UP && rec.n_probes == 0);
    s_run_until (peer, &rec, 20100);            //  the routed answers stop
    nat_peer_sent (peer, 1400, 20100);
    s_run_until (peer, &rec, 22019);            //  2 s after the last routed answer
    assert (nat_peer_state (peer) == NAT_PEER_UP && rec.n_probes == 10);
    s_run_until (peer, &rec, 22020);
    assert (nat_peer_state (peer) == NAT_PEER_WAITING);
    nat_peer_destroy (&peer);

    //  6f. no_fast_down: only the silence timer
    peer = s_new_peer_up (&rec, (nat_peer_config_t) { .public_key = key, .no_fast_down = true }, &roamed, 0);
    s_simulate (peer, &rec, 79990, 100, 1400, -1, 0);
    assert (nat_peer_state (peer) == NAT_PEER_UP && rec.n_probes == 0);
    nat_peer_destroy (&peer);
    if (verbose)
        printf ("  unanswered traffic: down 2 s after the peer's last datagram, 10 probes\n");

    //  5. Real resolution: "localhost:port" dials 127.0.0.1; a .invalid name gives a
    //  clear error and is tried again later
    bool isolated = nat_udp_test_netns () == 0;
    memset (&rec, 0, sizeof rec);
    rec.resolver = nat_resolver_new ();
    peer = nat_peer_new (&(nat_peer_config_t) { key, "localhost:51999", true, .no_jitter = true },
                         err, sizeof err);
    nat_peer_set_handler (peer, &s_rec_handler, &rec);
    nat_peer_tick (peer, 0);
    assert (s_pump_resolver (peer, &rec, 5000));
    assert (rec.n_connects == 1);
    nat_addr_format (&rec.connect_addr [0], text, sizeof text);
    assert (strcmp (text, "127.0.0.1:51999") == 0 || strcmp (text, "[::1]:51999") == 0);
    nat_peer_destroy (&peer);

    memset (rec.connects, 0, sizeof rec.connects);
    rec.n_connects = rec.n_resolves = 0;
    rec.now = 0;
    peer = nat_peer_new (&(nat_peer_config_t) { key, "gone.bifrost.invalid:51820", true,
                                                .no_jitter = true }, err, sizeof err);
    nat_peer_set_handler (peer, &s_rec_handler, &rec);
    nat_peer_tick (peer, 0);
    assert (s_pump_resolver (peer, &rec, 5000));
    nat_peer_status (peer, &st);
    assert (rec.n_connects == 0 && st.resolve_failures == 1);
    assert (strstr (st.last_error, "cannot resolve gone.bifrost.invalid"));
    if (verbose)
        printf ("  %s (%s)\n", st.last_error, isolated ? "netns" : "host");
    s_run_until (peer, &rec, 1000);
    assert (rec.n_resolves == 2);
    assert (s_pump_resolver (peer, &rec, 5000));
    nat_peer_status (peer, &st);
    assert (st.resolve_failures == 2 && st.state == NAT_PEER_CONNECTING);
    nat_peer_destroy (&peer);
    nat_resolver_destroy (&rec.resolver);
}
