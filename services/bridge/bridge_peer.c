/*  bridge_peer: the far end of a bridge flow (why and how: bridge_peer.h). */
#include "bridge_peer.h"
#include "bridge_far.h"
#include "bus_log.h"
#include "../../schemas/bridge_wire.h"

#include <sodium.h>
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct _bridge_peer_t {
    int fd;
    uint16_t port;
    bridge_flow_t *flow;
    bool echo;
    int interval_ms, timeout_ms;
    bridge_far_t *far;                  //  --target, then the source of the last valid datagram
    char far_text [64];
    int64_t heard_ms;                   //  when the last valid datagram came; -1: never
    int64_t next_hb_ms;                 //  when the next heartbeat is due; 0: at once
    int64_t hb_sent_ms;                 //  when the last heartbeat left, for the round trip
    int rtt_ms;                         //  of the last heartbeat answered; -1: none
    bridge_peer_data_fn *fn;
    void *arg;
    bridge_peer_stats_t stats;
    uint8_t dgram [BRIDGE_WIRE_MAX_DATAGRAM + 1];
    uint8_t plain [BRIDGE_WIRE_MAX_PLAIN];
};

bridge_peer_t *
bridge_peer_new (const bridge_peer_config_t *config, char *err, size_t errsize)
{
    assert (config);
    const char *why = bridge_flow_cipher_error (config->cipher);
    if (why) {
        bus_errf (err, errsize, "%s", why);
        return NULL;
    }
    int fd = socket (config->listen.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        bus_errf (err, errsize, "cannot open a UDP socket: %s", strerror (errno));
        return NULL;
    }
    char text [64];
    bridge_addr_text (&config->listen, text, sizeof text);
    if (bind (fd, (const struct sockaddr *) &config->listen, config->listen_len) != 0) {
        bus_errf (err, errsize, "cannot listen on %s: %s", text, strerror (errno));
        close (fd);
        return NULL;
    }
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof bound;
    getsockname (fd, (struct sockaddr *) &bound, &bound_len);
    bridge_peer_t *self = calloc (1, sizeof *self);
    assert (self);
    self->flow = bridge_flow_new (config->key, config->role, config->cipher);
    if (!self->flow) {
        bus_errf (err, errsize, "cannot make the flow (out of locked memory?)");
        close (fd);
        free (self);
        return NULL;
    }
    self->fd = fd;
    self->port = ntohs (bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &bound)->sin6_port
                                                   : ((struct sockaddr_in *) &bound)->sin_port);
    self->echo = config->echo;
    self->interval_ms = config->interval_ms > 0 ? config->interval_ms : BRIDGE_PEER_INTERVAL_MS;
    self->timeout_ms = config->timeout_ms > 0 ? config->timeout_ms : BRIDGE_PEER_TIMEOUT_MS;
    bridge_addr_t target = { .addr = config->target, .len = config->target_len };
    self->far = bridge_far_new (&target, config->target_len ? 1 : 0, self->timeout_ms, 0);
    self->heard_ms = -1;
    self->rtt_ms = -1;
    return self;
}

void
bridge_peer_destroy (bridge_peer_t **self_p)
{
    assert (self_p);
    bridge_peer_t *self = *self_p;
    if (self) {
        bridge_flow_destroy (&self->flow);      //  wipes the keys
        bridge_far_destroy (&self->far);
        close (self->fd);
        sodium_memzero (self->plain, sizeof self->plain);
        free (self);
        *self_p = NULL;
    }
}

void
bridge_peer_set_data_fn (bridge_peer_t *self, bridge_peer_data_fn *fn, void *arg)
{
    self->fn = fn;
    self->arg = arg;
}

int bridge_peer_fd (bridge_peer_t *self) { return self->fd; }
uint16_t bridge_peer_port (bridge_peer_t *self) { return self->port; }
const char *bridge_peer_far_end (bridge_peer_t *self) { return self->far_text; }
const char *bridge_peer_cipher_name (bridge_peer_t *self) { return bridge_flow_cipher_name (bridge_flow_cipher (self->flow)); }
const bridge_peer_stats_t *bridge_peer_stats (bridge_peer_t *self) { return &self->stats; }
const bridge_flow_stats_t *bridge_peer_flow_stats (bridge_peer_t *self) { return bridge_flow_stats (self->flow); }

bool
bridge_peer_established (bridge_peer_t *self, int64_t now_ms)
{
    return self->heard_ms >= 0 && now_ms - self->heard_ms < self->timeout_ms;
}

//  Seals one datagram of type and sends it to addr
static int
s_send (bridge_peer_t *self, int type, const uint8_t *data, size_t size,
        const struct sockaddr_storage *addr, socklen_t addr_len)
{
    int n = bridge_flow_seal (self->flow, type, data, size, self->dgram, sizeof self->dgram);
    if (n < 0)
        return -1;
    if (sendto (self->fd, self->dgram, (size_t) n, 0, (const struct sockaddr *) addr, addr_len) != n) {
        self->stats.send_errors++;
        return -1;
    }
    self->stats.datagrams_out++;
    if (type == BRIDGE_WIRE_DATA) {
        self->stats.data_out++;
        self->stats.bytes_out += size;
    }
    return 0;
}

int
bridge_peer_send (bridge_peer_t *self, const uint8_t *data, size_t size)
{
    const bridge_addr_t *far = bridge_far_best (self->far, 0);
    if (!far) {
        self->stats.no_far_end++;
        return -1;
    }
    return s_send (self, BRIDGE_WIRE_DATA, data, size, &far->addr, far->len);
}

//  One datagram from addr: opened first, then acted on
static void
s_datagram (bridge_peer_t *self, size_t len, const struct sockaddr_storage *addr, socklen_t addr_len, int64_t now_ms)
{
    self->stats.datagrams_in++;
    int type = 0;
    int n = bridge_flow_open (self->flow, self->dgram, len, &type, self->plain, sizeof self->plain);
    if (n < 0) {
        self->stats.invalid++;
        if (bus_log_level () >= BUS_LOG_DEBUG) {
            char from [64];
            bridge_addr_text (addr, from, sizeof from);
            bus_debug ("dropped a datagram from %s: %s", from, bridge_flow_reason_name (n));
        }
        return;
    }
    //  Valid: its source is the far end from now on (a NAT may have moved it)
    if (bridge_far_heard (self->far, addr, addr_len, now_ms)) {
        self->stats.far_end_changes = bridge_far_changes (self->far);
        bridge_addr_text (addr, self->far_text, sizeof self->far_text);
        bus_info ("far end is %s", self->far_text);
    }
    self->heard_ms = now_ms;
    if (type == BRIDGE_WIRE_HEARTBEAT) {
        self->stats.heartbeats_in++;
        if (s_send (self, BRIDGE_WIRE_HEARTBEAT_REPLY, NULL, 0, addr, addr_len) == 0)
            self->stats.replies_out++;
    }
    else
    if (type == BRIDGE_WIRE_HEARTBEAT_REPLY) {
        self->stats.replies_in++;
        if (self->hb_sent_ms > 0)
            self->rtt_ms = (int) (now_ms - self->hb_sent_ms);
    }
    else {
        self->stats.data_in++;
        self->stats.bytes_in += (uint64_t) n;
        if (self->echo) {
            if (s_send (self, BRIDGE_WIRE_DATA, self->plain, (size_t) n, addr, addr_len) == 0)
                self->stats.echoed++;
        }
        else
        if (self->fn)
            self->fn (self->arg, self->plain, (size_t) n);
    }
}

void
bridge_peer_recv (bridge_peer_t *self, int64_t now_ms)
{
    //  A bounded batch, so a flood cannot starve the heartbeats
    for (int i = 0; i < 256; i++) {
        struct sockaddr_storage addr;
        socklen_t addr_len = sizeof addr;
        ssize_t n = recvfrom (self->fd, self->dgram, sizeof self->dgram, 0, (struct sockaddr *) &addr, &addr_len);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                bus_debug ("recvfrom: %s", strerror (errno));     //  an ICMP error of an earlier send
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            continue;
        }
        s_datagram (self, (size_t) n, &addr, addr_len, now_ms);
    }
}

int
bridge_peer_tick (bridge_peer_t *self, int64_t now_ms)
{
    if (now_ms >= self->next_hb_ms) {
        //  Toward the far end once known, else the target (punching); none: wait
        const bridge_addr_t *to [BRIDGE_FAR_MAX];
        int n = bridge_far_heartbeats (self->far, now_ms, to, BRIDGE_FAR_MAX);
        for (int i = 0; i < n; i++)
            if (s_send (self, BRIDGE_WIRE_HEARTBEAT, NULL, 0, &to [i]->addr, to [i]->len) == 0) {
                self->stats.heartbeats_out++;
                self->hb_sent_ms = now_ms;
            }
        self->next_hb_ms = now_ms + self->interval_ms;
    }
    return (int) (self->next_hb_ms - now_ms);
}

void
bridge_peer_print_stats (bridge_peer_t *self, int64_t now_ms, FILE *out)
{
    fprintf (out, "{\"far_end\":\"%s\",\"established\":%s,\"rtt_ms\":%d,\"cipher\":\"%s\"",
             self->far_text, bridge_peer_established (self, now_ms) ? "true" : "false", self->rtt_ms,
             bridge_flow_cipher_name (bridge_flow_cipher (self->flow)));
#define S_PRINT(name, doc) fprintf (out, ",\"" #name "\":%llu", (unsigned long long) self->stats.name);
    BRIDGE_PEER_COUNTERS (S_PRINT)
#undef S_PRINT
    const bridge_flow_stats_t *fs = bridge_flow_stats (self->flow);
    fprintf (out, ",\"refused\":{");
    for (int r = 1; r <= BRIDGE_FLOW_REASON_COUNT; r++)
        fprintf (out, "%s\"%s\":%llu", r > 1 ? "," : "", bridge_flow_reason_name (-r),
                 (unsigned long long) fs->refused [r]);
    fprintf (out, "}}\n");
    fflush (out);
}

int
bridge_peer_key_load (const char *path, uint8_t key [BRIDGE_WIRE_KEY_SIZE], char *err, size_t errsize)
{
    if (sodium_init () < 0)
        return bus_errf (err, errsize, "libsodium could not be initialised");
    int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return bus_errf (err, errsize, "cannot open key file %s: %s", path, strerror (errno));
    struct stat st;
    if (fstat (fd, &st) || !S_ISREG (st.st_mode)) {
        close (fd);
        return bus_errf (err, errsize, "key file %s is not a regular file", path);
    }
    if (st.st_mode & 077) {
        close (fd);
        return bus_errf (err, errsize, "key file %s has mode %04o: group or others can read it; "
                         "refusing it (chmod 600 %s, and make a new key: this one may be known)",
                         path, (unsigned) (st.st_mode & 07777), path);
    }
    char text [128];
    ssize_t size = read (fd, text, sizeof text);
    close (fd);
    if (size < 0)
        return bus_errf (err, errsize, "cannot read key file %s: %s", path, strerror (errno));
    size_t len = (size_t) size;
    if (len && text [len - 1] == '\n')
        len--;
    size_t bin_len = 0;
    const char *end = NULL;
    bool ok = len == 44
           && sodium_base642bin (key, BRIDGE_WIRE_KEY_SIZE, text, len, NULL, &bin_len, &end,
                                 sodium_base64_VARIANT_ORIGINAL) == 0
           && bin_len == BRIDGE_WIRE_KEY_SIZE && end == text + len;
    sodium_memzero (text, sizeof text);
    if (!ok) {
        sodium_memzero (key, BRIDGE_WIRE_KEY_SIZE);
        return bus_errf (err, errsize, "key file %s is malformed: expected the standard base64 of "
                         "32 bytes (44 characters, as the bridge's `key` parameter), then at most a newline", path);
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Self test: two instances over loopback, one in the client role playing the
//  bridge, one the echoing peer; a third socket plays a stranger

#include "bus_clock.h"
#include <poll.h>

//  Runs both instances until done (a condition) or the deadline; true if done
typedef bool (s_done_fn) (void *arg);

static bool
s_run (bridge_peer_t *a, bridge_peer_t *b, int max_ms, s_done_fn *done, void *arg)
{
    int64_t end = bus_clock_ms () + max_ms;
    while (bus_clock_ms () < end) {
        int64_t now = bus_clock_ms ();
        int wait_a = bridge_peer_tick (a, now), wait_b = bridge_peer_tick (b, now);
        if (done && done (arg))
            return true;
        int wait = wait_a < wait_b ? wait_a : wait_b;
        if (wait > 20)
            wait = 20;
        struct pollfd fds [2] = { { bridge_peer_fd (a), POLLIN, 0 }, { bridge_peer_fd (b), POLLIN, 0 } };
        poll (fds, 2, wait);
        now = bus_clock_ms ();
        if (fds [0].revents)
            bridge_peer_recv (a, now);
        if (fds [1].revents)
            bridge_peer_recv (b, now);
    }
    return done ? done (arg) : true;
}

typedef struct {
    uint8_t data [BRIDGE_MESSAGE_MAX * 4];
    size_t got, count;
} s_sink_t;

static void
s_sink (void *arg, const uint8_t *data, size_t size)
{
    s_sink_t *sink = (s_sink_t *) arg;
    assert (sink->got + size <= sizeof sink->data);
    memcpy (sink->data + sink->got, data, size);
    sink->got += size;
    sink->count++;
}

typedef struct { bridge_peer_t *a, *b; s_sink_t *sink; size_t want; } s_cond_t;
static bool s_both_heard (void *arg)
{
    s_cond_t *c = (s_cond_t *) arg;
    return bridge_peer_stats (c->a)->replies_in >= 1 && bridge_peer_stats (c->b)->replies_in >= 1;
}
static bool s_sink_full (void *arg) { s_cond_t *c = (s_cond_t *) arg; return c->sink->got >= c->want; }

static void
s_loopback (bridge_peer_config_t *config, uint16_t port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *) &config->target;
    memset (&config->target, 0, sizeof config->target);
    sin->sin_family = AF_INET;
    sin->sin_port = htons (port);
    sin->sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    config->target_len = port ? sizeof *sin : 0;
    sin = (struct sockaddr_in *) &config->listen;
    memset (&config->listen, 0, sizeof config->listen);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    config->listen_len = sizeof *sin;
}

static void
s_test_key_file (bool verbose)
{
    char dir [] = "/tmp/bridge-peer-test-XXXXXX";
    assert (mkdtemp (dir));
    char path [128], err [256];
    snprintf (path, sizeof path, "%s/key", dir);
    uint8_t key [32], want [32];
    for (int i = 0; i < 32; i++)
        want [i] = (uint8_t) i;
    const char *b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    //  (file content, mode, accepted)
    struct { const char *text; int mode; bool ok; const char *why; } cases [] = {
        { "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", 0600, true, NULL },
        { "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", 0400, true, NULL },
        { "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", 0640, false, "has mode 0640" },
        { "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", 0604, false, "has mode 0604" },
        { "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw=\n", 0600, false, "malformed" },
        { "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n", 0600, false, "malformed" },
        { "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8-\n", 0600, false, "malformed" },
        { "", 0600, false, "malformed" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        unlink (path);
        FILE *f = fopen (path, "w");
        assert (f);
        fputs (cases [i].text, f);
        fclose (f);
        assert (chmod (path, (mode_t) cases [i].mode) == 0);
        memset (key, 0xaa, sizeof key);
        err [0] = 0;
        int rc = bridge_peer_key_load (path, key, err, sizeof err);
        if (verbose)
            printf ("  key file case %zu: %s\n", i, rc ? err : "accepted");
        assert ((rc == 0) == cases [i].ok);
        if (rc == 0)
            assert (memcmp (key, want, 32) == 0);
        else {
            assert (strstr (err, cases [i].why));
            assert (!strstr (err, b64));            //  the key is never in a message
        }
    }
    unlink (path);
    assert (bridge_peer_key_load (path, key, err, sizeof err) == -1 && strstr (err, "cannot open"));
    assert (bridge_peer_key_load (dir, key, err, sizeof err) == -1 && strstr (err, "not a regular file"));
    rmdir (dir);
}

void
bridge_peer_test (bool verbose)
{
    assert (sodium_init () >= 0);
    if (!verbose)
        bus_log_set_level (BUS_LOG_WARN);   //  "far end is ..." lines: only when asked
    s_test_key_file (verbose);
    char err [256];
    uint8_t key [32];
    randombytes_buf (key, sizeof key);

    //  b: the peer, echoing, with no target: it waits to be reached
    bridge_peer_config_t config;
    memset (&config, 0, sizeof config);
    memcpy (config.key, key, sizeof key);
    config.cipher = BRIDGE_CIPHER_CHACHA20POLY1305;
    config.role = BRIDGE_FLOW_PEER;
    config.echo = true;
    config.interval_ms = 50;
    config.timeout_ms = 200;
    s_loopback (&config, 0);
    bridge_peer_t *b = bridge_peer_new (&config, err, sizeof err);
    assert (b && bridge_peer_port (b) > 0);
    assert (*bridge_peer_far_end (b) == 0 && !bridge_peer_established (b, bus_clock_ms ()));
    //  Nothing to send yet: no target and nobody heard
    assert (bridge_peer_send (b, (const uint8_t *) "x", 1) == -1 && bridge_peer_stats (b)->no_far_end == 1);
    bridge_peer_tick (b, bus_clock_ms ());
    assert (bridge_peer_stats (b)->heartbeats_out == 0);

    //  a: the bridge's end (client role), targets b
    config.role = BRIDGE_FLOW_CLIENT;
    config.echo = false;
    s_loopback (&config, bridge_peer_port (b));
    bridge_peer_t *a = bridge_peer_new (&config, err, sizeof err);
    assert (a);
    s_sink_t sink;
    memset (&sink, 0, sizeof sink);
    bridge_peer_set_data_fn (a, s_sink, &sink);

    //  Heartbeats answered both ways: b learned a's address from a's first one
    s_cond_t cond = { a, b, &sink, 0 };
    assert (s_run (a, b, 2000, s_both_heard, &cond));
    char want [64];
    snprintf (want, sizeof want, "127.0.0.1:%u", bridge_peer_port (a));
    assert (strcmp (bridge_peer_far_end (b), want) == 0);
    assert (bridge_peer_established (a, bus_clock_ms ()) && bridge_peer_established (b, bus_clock_ms ()));
    assert (bridge_peer_stats (b)->heartbeats_in >= 1 && bridge_peer_stats (b)->replies_out >= 1);

    //  Echo: every size from 1 to the default largest message, byte for byte
    static uint8_t msg [BRIDGE_MESSAGE_MAX * 4];
    randombytes_buf (msg, sizeof msg);
    size_t sizes [] = { 1, 2, 100, 1203, BRIDGE_MESSAGE_MAX };
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes [0]; i++) {
        assert (bridge_peer_send (a, msg + total, sizes [i]) == 0);
        total += sizes [i];
    }
    cond.want = total;
    assert (s_run (a, b, 2000, s_sink_full, &cond));
    assert (sink.got == total && sink.count == 5 && memcmp (sink.data, msg, total) == 0);
    assert (bridge_peer_stats (b)->echoed == 5 && bridge_peer_stats (b)->bytes_in == total);

    //  A stranger: a datagram of another key, one tampered, one replayed, and
    //  garbage, from another socket. All dropped and counted; nothing echoed,
    //  answered, or learned (the far end stays a)
    int stranger = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert (stranger >= 0);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (bridge_peer_port (b)),
                              .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    uint8_t other_key [32], dgram [128];
    randombytes_buf (other_key, sizeof other_key);
    bridge_flow_t *forger = bridge_flow_new (other_key, BRIDGE_FLOW_CLIENT, BRIDGE_CIPHER_CHACHA20POLY1305);
    bridge_flow_t *insider = bridge_flow_new (key, BRIDGE_FLOW_CLIENT, BRIDGE_CIPHER_CHACHA20POLY1305);
    //  Its counter fresh (above a's), so the tag is what refuses it
    for (int i = 0; i < 3000; i++)
        bridge_flow_seal (forger, BRIDGE_WIRE_HEARTBEAT, NULL, 0, dgram, sizeof dgram);
    int n = bridge_flow_seal (forger, BRIDGE_WIRE_HEARTBEAT, NULL, 0, dgram, sizeof dgram);
    assert (sendto (stranger, dgram, (size_t) n, 0, (struct sockaddr *) &to, sizeof to) == n);
    //  A good datagram with one bit flipped (its counter is far above a's: fresh)
    for (int i = 0; i < 5000; i++)
        bridge_flow_seal (insider, BRIDGE_WIRE_HEARTBEAT, NULL, 0, dgram, sizeof dgram);
    n = bridge_flow_seal (insider, BRIDGE_WIRE_DATA, msg, 40, dgram, sizeof dgram);
    dgram [20] ^= 1;
    assert (sendto (stranger, dgram, (size_t) n, 0, (struct sockaddr *) &to, sizeof to) == n);
    //  A replay: a's first datagram again (counter 0, seen)
    bridge_flow_t *replayer = bridge_flow_new (key, BRIDGE_FLOW_CLIENT, BRIDGE_CIPHER_CHACHA20POLY1305);
    n = bridge_flow_seal (replayer, BRIDGE_WIRE_HEARTBEAT, NULL, 0, dgram, sizeof dgram);
    assert (sendto (stranger, dgram, (size_t) n, 0, (struct sockaddr *) &to, sizeof to) == n);
    assert (sendto (stranger, "garbage", 7, 0, (struct sockaddr *) &to, sizeof to) == 7);
    bridge_peer_stats_t before = *bridge_peer_stats (b);
    uint64_t want_in = before.datagrams_in + 4;
    bool got_all = false;
    for (int i = 0; i < 100 && !got_all; i++) {
        s_run (a, b, 10, NULL, NULL);
        got_all = bridge_peer_stats (b)->datagrams_in >= want_in + 0
               && bridge_peer_stats (b)->invalid >= before.invalid + 4;
    }
    assert (got_all);
    const bridge_flow_stats_t *fs = bridge_peer_flow_stats (b);
    if (verbose)
        bridge_peer_print_stats (b, bus_clock_ms (), stdout);
    assert (fs->refused [-BRIDGE_FLOW_TAMPERED] == 2 && fs->refused [-BRIDGE_FLOW_REPLAYED] == 1
            && fs->refused [-BRIDGE_FLOW_SHORT] == 1);
    assert (strcmp (bridge_peer_far_end (b), want) == 0 && bridge_peer_stats (b)->far_end_changes == 0);
    assert (bridge_peer_stats (b)->echoed == 5);
    uint8_t nothing [64];
    assert (recv (stranger, nothing, sizeof nothing, MSG_DONTWAIT) == -1);   //  no answer to a stranger
    bridge_flow_destroy (&forger);
    bridge_flow_destroy (&replayer);

    //  A valid datagram from a new address moves the far end (a NAT rebinding)
    n = bridge_flow_seal (insider, BRIDGE_WIRE_HEARTBEAT, NULL, 0, dgram, sizeof dgram);
    assert (sendto (stranger, dgram, (size_t) n, 0, (struct sockaddr *) &to, sizeof to) == n);
    struct pollfd pfd = { stranger, POLLIN, 0 };
    bool answered = false;
    for (int i = 0; i < 100 && !answered; i++) {
        bridge_peer_recv (b, bus_clock_ms ());
        answered = poll (&pfd, 1, 10) == 1;
    }
    assert (answered && bridge_peer_stats (b)->far_end_changes == 1);
    n = (int) recv (stranger, dgram, sizeof dgram, 0);
    int type = 0;
    assert (bridge_flow_open (insider, dgram, (size_t) n, &type, NULL, 0) == 0 && type == BRIDGE_WIRE_HEARTBEAT_REPLY);
    bridge_flow_destroy (&insider);
    close (stranger);

    //  The far end falls silent: no longer established after the timeout
    int64_t t0 = bus_clock_ms ();
    while (bridge_peer_established (b, bus_clock_ms ()) && bus_clock_ms () - t0 < 2000)
        usleep (10000);
    int64_t silent = bus_clock_ms () - t0;
    assert (!bridge_peer_established (b, bus_clock_ms ()) && silent <= 400);
    if (verbose) {
        printf ("  silent for %lld ms: not established; b's counters:\n  ", (long long) silent);
        bridge_peer_print_stats (b, bus_clock_ms (), stdout);
    }
    //  The counters as JSON: one line, the reasons by name, no key
    char *text = NULL;
    size_t text_size = 0;
    FILE *mem = open_memstream (&text, &text_size);
    bridge_peer_print_stats (b, bus_clock_ms (), mem);
    fclose (mem);
    assert (strchr (text, '\n') == text + text_size - 1);
    assert (strstr (text, "\"echoed\":5,") && strstr (text, "\"tampered\":2") && strstr (text, "\"established\":false"));
    free (text);

    bridge_peer_destroy (&a);
    bridge_peer_destroy (&b);
    assert (b == NULL);
    //  A port in use is an error with the address, not a crash
    config.role = BRIDGE_FLOW_PEER;
    s_loopback (&config, 0);
    bridge_peer_t *first = bridge_peer_new (&config, err, sizeof err);
    assert (first);
    ((struct sockaddr_in *) &config.listen)->sin_port = htons (bridge_peer_port (first));
    assert (bridge_peer_new (&config, err, sizeof err) == NULL && strstr (err, "cannot listen on 127.0.0.1:"));
    bridge_peer_destroy (&first);
    sodium_memzero (&config, sizeof config);
}
