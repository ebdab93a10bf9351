/*  nat_relay_wss: WebSocket over TLS to the relays (why and how: nat_relay_wss.h). */
#include "nat_relay_wss.h"
#include "bus_log.h"

#include <assert.h>
#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_FAST_MS       10              //  while a connection is being made
#define S_SLOW_MS       100             //  lws's own timeouts
#define S_MSG_MAX       2048            //  a relay datagram (relay_stream's limit)

typedef struct s_ev {
    struct s_ev *next;
    size_t slot;
    nat_relay_wss_event_t event;
    size_t size;
    uint8_t data [];
} s_ev_t;

typedef struct s_out {
    struct s_out *next;
    size_t size;
    uint8_t data [];                    //  LWS_PRE bytes of room, then the message
} s_out_t;

typedef struct {
    nat_relay_wss_t *owner;
    size_t index;
    struct lws *wsi;                    //  NULL when none
    bool active, open;
    zmq_pollitem_t item;                //  fd -1 when not polled
    bool want_out;
    s_out_t *out, **out_tail;
    size_t queued;
    uint8_t rx [S_MSG_MAX];
    size_t rx_size;
    char address [64], host [256];
    char tls_why [120];                 //  why OpenSSL refused the certificate, or empty
} s_slot_t;

struct _nat_relay_wss_t {
    bus_loop_t *loop;
    struct lws_context *context;
    nat_relay_wss_fn *fn;
    void *arg;
    s_slot_t slots [NAT_RELAY_WSS_MAX];
    s_ev_t *evs, **evs_tail;
    int fast_timer, slow_timer;
    bool servicing, delivering;
    int timer_only_ms;                  //  > 0: serviced by a timer only (BIFROST_WSS_TIMER_MS, measurements)
    int cas;                            //  CA certificates added beyond lws's first
    nat_relay_wss_stats_t stats;
};

static void
s_event (nat_relay_wss_t *self, size_t slot, nat_relay_wss_event_t event, const void *data, size_t size)
{
    s_ev_t *ev = (s_ev_t *) malloc (sizeof *ev + size + 1);
    assert (ev);
    ev->next = NULL;
    ev->slot = slot;
    ev->event = event;
    ev->size = size;
    if (size)
        memcpy (ev->data, data, size);
    ev->data [size] = 0;
    *self->evs_tail = ev;
    self->evs_tail = &ev->next;
}

static int s_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg);

static void
s_poll (s_slot_t *slot, int fd, bool want_out)
{
    nat_relay_wss_t *self = slot->owner;
    if (self->timer_only_ms)
        return;
    if (slot->item.fd >= 0) {
        if (fd == slot->item.fd && want_out == slot->want_out)
            return;
        bus_loop_poller_end (self->loop, &slot->item);
    }
    slot->item = (zmq_pollitem_t) { NULL, fd, (short) (ZMQ_POLLIN | (want_out ? ZMQ_POLLOUT : 0)), 0 };
    slot->want_out = want_out;
    if (fd >= 0)
        bus_loop_poller (self->loop, &slot->item, s_ready, slot);
}

//  The slot is done: no more polling, output dropped, CLOSED (once) when it was active
static void
s_down (s_slot_t *slot, const char *reason)
{
    nat_relay_wss_t *self = slot->owner;
    if (slot->item.fd >= 0)
        bus_loop_poller_end (self->loop, &slot->item);
    slot->item.fd = -1;
    slot->want_out = false;
    while (slot->out) {
        s_out_t *next = slot->out->next;
        free (slot->out);
        slot->out = next;
    }
    slot->out_tail = &slot->out;
    slot->queued = 0;
    if (slot->wsi)
        lws_set_opaque_user_data (slot->wsi, NULL);     //  its last callbacks are not ours
    slot->wsi = NULL;
    if (slot->active && reason)
        s_event (self, slot->index, NAT_RELAY_WSS_CLOSED, reason, strlen (reason));
    slot->active = slot->open = false;
}

static void
s_timers (nat_relay_wss_t *self);

//  Delivers the queued events, then DONE (outside lws: handlers may send or close)
static void
s_deliver (nat_relay_wss_t *self)
{
    if (self->delivering || !self->evs)
        return;
    self->delivering = true;
    while (self->evs) {
        s_ev_t *ev = self->evs;
        self->evs = ev->next;
        if (!self->evs)
            self->evs_tail = &self->evs;
        self->fn (self->arg, ev->slot, ev->event, ev->data, ev->size);
        free (ev);
    }
    self->fn (self->arg, 0, NAT_RELAY_WSS_DONE, NULL, 0);
    self->delivering = false;
}

static void
s_service (nat_relay_wss_t *self)
{
    if (!self->servicing) {
        self->servicing = true;
        for (int round = 0; round < 8; round++) {
            lws_service (self->context, -1);
            if (lws_service_adjust_timeout (self->context, 1, 0) != 0)
                break;
        }
        self->servicing = false;
    }
    s_timers (self);
    s_deliver (self);
}

static int
s_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_service (((s_slot_t *) arg)->owner);
    return 0;
}

static int
s_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    s_service ((nat_relay_wss_t *) arg);
    return 0;
}

//  The fast timer runs while a connection is being made
static void
s_timers (nat_relay_wss_t *self)
{
    bool making = false;
    for (size_t i = 0; i < NAT_RELAY_WSS_MAX; i++)
        making = making || (self->slots [i].active && !self->slots [i].open);
    if (making && self->fast_timer < 0 && !self->timer_only_ms)
        self->fast_timer = bus_loop_timer (self->loop, S_FAST_MS, 0, s_tick, self);
    else
    if (!making && self->fast_timer >= 0) {
        bus_loop_timer_end (self->loop, self->fast_timer);
        self->fast_timer = -1;
    }
}

//  The CA file while lws makes the context (one nat, one thread)
static const char *s_ca_pem;
static size_t s_ca_size;
static int s_ca_added;

//  lws 4.1 trusts only the first certificate of a CA PEM in memory: every
//  certificate of the file goes into OpenSSL's store here, so a file may hold
//  several roots (the first one again is refused as a duplicate, harmlessly)
static void
s_add_cas (SSL_CTX *ctx)
{
    BIO *bio = BIO_new_mem_buf (s_ca_pem, (int) s_ca_size);
    X509_STORE *store = SSL_CTX_get_cert_store (ctx);
    X509 *cert;
    while (bio && store && (cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL))) {
        if (X509_STORE_add_cert (store, cert) == 1)
            s_ca_added++;
        X509_free (cert);               //  the store keeps its own reference
    }
    ERR_clear_error ();
    BIO_free (bio);
}

static int
s_callback (struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    if (reason == LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS) {
        if (s_ca_pem && user)
            s_add_cas ((SSL_CTX *) user);
        return 0;
    }
    s_slot_t *slot = (s_slot_t *) lws_get_opaque_user_data (wsi);
    if (!slot || slot->wsi != wsi)
        return 0;
    nat_relay_wss_t *self = slot->owner;
    char why [200];
    switch (reason) {
        case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
            //  lws 4.1 says only "connect SSL err 1" for a refused certificate
            if (*slot->tls_why)
                snprintf (why, sizeof why, "the relay's certificate is refused: %s", slot->tls_why);
            else
                snprintf (why, sizeof why, "%s", in ? (const char *) in : "cannot connect");
            self->stats.failed++;
            s_down (slot, why);
            break;
        case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
            //  OpenSSL's verdict on a certificate of the chain (len: preverify_ok),
            //  kept to say why a connection failed; the verdict is not changed
            if (!len && user && !*slot->tls_why) {
                int error = X509_STORE_CTX_get_error ((X509_STORE_CTX *) user);
                snprintf (slot->tls_why, sizeof slot->tls_why, "%s", X509_verify_cert_error_string (error));
            }
            break;
        case LWS_CALLBACK_CLIENT_ESTABLISHED:
            slot->open = true;
            self->stats.opened++;
            s_poll (slot, lws_get_socket_fd (wsi), slot->out != NULL);
            s_event (self, slot->index, NAT_RELAY_WSS_OPEN, NULL, 0);
            break;
        case LWS_CALLBACK_CLIENT_RECEIVE:
            if (lws_is_first_fragment (wsi))
                slot->rx_size = 0;
            if (!lws_frame_is_binary (wsi) || slot->rx_size + len > sizeof slot->rx) {
                s_down (slot, "the relay sent a message that is not one relay datagram");
                return -1;
            }
            memcpy (slot->rx + slot->rx_size, in, len);
            slot->rx_size += len;
            if (lws_is_final_fragment (wsi) && lws_remaining_packet_payload (wsi) == 0) {
                self->stats.rx++;
                s_event (self, slot->index, NAT_RELAY_WSS_MESSAGE, slot->rx, slot->rx_size);
                slot->rx_size = 0;
            }
            break;
        case LWS_CALLBACK_CLIENT_WRITEABLE:
            while (slot->out && !lws_send_pipe_choked (wsi)) {
                s_out_t *out = slot->out;
                slot->out = out->next;
                if (!slot->out)
                    slot->out_tail = &slot->out;
                slot->queued--;
                int n = lws_write (wsi, out->data + LWS_PRE, out->size, LWS_WRITE_BINARY);
                free (out);
                if (n < 0) {
                    s_down (slot, "write failed");
                    return -1;
                }
                self->stats.tx++;
            }
            if (slot->out)
                lws_callback_on_writable (wsi);
            s_poll (slot, slot->item.fd, slot->out != NULL);
            break;
        case LWS_CALLBACK_CLIENT_CLOSED:
            s_down (slot, "closed by the relay");
            break;
        case LWS_CALLBACK_WSI_DESTROY:
            if (slot->open)
                s_down (slot, "connection lost");
            else {
                self->stats.failed++;
                s_down (slot, "connection failed");
            }
            break;
        default:
            break;
    }
    return 0;
}

static const struct lws_protocols s_protocols [] = {
    { NAT_RELAY_WSS_PROTOCOL, s_callback, 0, S_MSG_MAX, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void
s_lws_log (int level, const char *line)
{
    bus_log_line (BUS_LOG_DEBUG, "libwebsockets", line);
}

nat_relay_wss_t *
nat_relay_wss_new (bus_loop_t *loop, const char *ca_pem, size_t ca_size, nat_relay_wss_fn *fn, void *arg,
                   char *err, size_t err_size)
{
    assert (loop && fn);
    nat_relay_wss_t *self = (nat_relay_wss_t *) calloc (1, sizeof *self);
    assert (self);
    self->loop = loop;
    self->fn = fn;
    self->arg = arg;
    self->evs_tail = &self->evs;
    self->fast_timer = self->slow_timer = -1;
    for (size_t i = 0; i < NAT_RELAY_WSS_MAX; i++) {
        self->slots [i].owner = self;
        self->slots [i].index = i;
        self->slots [i].item.fd = -1;
        self->slots [i].out_tail = &self->slots [i].out;
    }
    lws_set_log_level (LLL_ERR | LLL_WARN, s_lws_log);
    struct lws_context_creation_info info;
    memset (&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = s_protocols;
    info.gid = -1;
    info.uid = -1;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.timeout_secs = 5;              //  TLS and upgrade
    info.connect_timeout_secs = 5;
    if (ca_pem && ca_size) {
        info.client_ssl_ca_mem = ca_pem;
        info.client_ssl_ca_mem_len = (unsigned int) ca_size;
    }
    s_ca_pem = ca_pem;
    s_ca_size = ca_size;
    s_ca_added = 0;
    self->context = lws_create_context (&info);
    self->cas = s_ca_added;
    s_ca_pem = NULL;
    if (!self->context) {
        snprintf (err, err_size, "libwebsockets: cannot create a TLS client context%s",
                  ca_pem ? " (connection.relay_ca_file: a PEM CA certificate?)" : "");
        free (self);
        return NULL;
    }
    //  The alternative design, for measuring it (docs/relay.md): a timer only
    const char *timer_only = getenv ("BIFROST_WSS_TIMER_MS");
    self->timer_only_ms = timer_only ? atoi (timer_only) : 0;
    self->slow_timer = bus_loop_timer (loop, self->timer_only_ms > 0 ? (size_t) self->timer_only_ms : S_SLOW_MS,
                                       0, s_tick, self);
    return self;
}

void
nat_relay_wss_destroy (nat_relay_wss_t **self_p)
{
    assert (self_p);
    nat_relay_wss_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < NAT_RELAY_WSS_MAX; i++)
        nat_relay_wss_close (self, i);
    lws_context_destroy (self->context);
    if (self->fast_timer >= 0)
        bus_loop_timer_end (self->loop, self->fast_timer);
    if (self->slow_timer >= 0)
        bus_loop_timer_end (self->loop, self->slow_timer);
    while (self->evs) {
        s_ev_t *next = self->evs->next;
        free (self->evs);
        self->evs = next;
    }
    free (self);
    *self_p = NULL;
}

int
nat_relay_wss_open (nat_relay_wss_t *self, size_t index, const char *address, const char *host, uint16_t port)
{
    assert (index < NAT_RELAY_WSS_MAX);
    nat_relay_wss_close (self, index);
    s_slot_t *slot = &self->slots [index];
    snprintf (slot->address, sizeof slot->address, "%s", address);
    snprintf (slot->host, sizeof slot->host, "%s", host);
    slot->active = true;
    slot->rx_size = 0;
    slot->tls_why [0] = 0;
    self->stats.opens++;
    struct lws_client_connect_info info;
    memset (&info, 0, sizeof info);
    info.context = self->context;
    info.address = slot->address;
    info.port = port;
    info.path = NAT_RELAY_WSS_PATH;
    info.host = slot->host;
    info.origin = slot->host;
    info.protocol = NAT_RELAY_WSS_PROTOCOL;
    info.local_protocol_name = NAT_RELAY_WSS_PROTOCOL;
    info.ssl_connection = LCCSCF_USE_SSL;
    info.opaque_user_data = slot;
    info.pwsi = &slot->wsi;             //  set before any callback, so they are ours
    struct lws *wsi = lws_client_connect_via_info (&info);
    if (!wsi) {
        if (slot->active) {
            self->stats.failed++;
            slot->wsi = NULL;
            s_down (slot, "cannot start the connection");
        }
        s_timers (self);
        return -1;
    }
    s_timers (self);
    return 0;
}

void
nat_relay_wss_close (nat_relay_wss_t *self, size_t index)
{
    assert (index < NAT_RELAY_WSS_MAX);
    s_slot_t *slot = &self->slots [index];
    struct lws *wsi = slot->wsi;
    slot->active = false;               //  no CLOSED
    s_down (slot, NULL);
    if (wsi)
        lws_set_timeout (wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    //  Events of the old connection not delivered yet are dropped
    for (s_ev_t **ev = &self->evs; *ev; ) {
        if ((*ev)->slot == index) {
            s_ev_t *gone = *ev;
            *ev = gone->next;
            free (gone);
        }
        else
            ev = &(*ev)->next;
    }
    self->evs_tail = &self->evs;
    while (*self->evs_tail)
        self->evs_tail = &(*self->evs_tail)->next;
}

bool
nat_relay_wss_active (nat_relay_wss_t *self, size_t index)
{
    return index < NAT_RELAY_WSS_MAX && self->slots [index].active;
}

bool
nat_relay_wss_open_now (nat_relay_wss_t *self, size_t index)
{
    return index < NAT_RELAY_WSS_MAX && self->slots [index].open;
}

int
nat_relay_wss_send (nat_relay_wss_t *self, size_t index, const uint8_t *msg, size_t size)
{
    s_slot_t *slot = &self->slots [index];
    if (index >= NAT_RELAY_WSS_MAX || !slot->open || !slot->wsi || size > S_MSG_MAX)
        return -1;
    if (slot->queued >= NAT_RELAY_WSS_QUEUE) {
        self->stats.dropped++;          //  as a full socket buffer drops a datagram
        return -1;
    }
    s_out_t *out = (s_out_t *) malloc (sizeof *out + LWS_PRE + size);
    assert (out);
    out->next = NULL;
    out->size = size;
    memcpy (out->data + LWS_PRE, msg, size);
    *slot->out_tail = out;
    slot->out_tail = &out->next;
    slot->queued++;
    lws_callback_on_writable (slot->wsi);
    //  The socket is writable at once, almost always: the loop services lws in
    //  this turn, after the whole batch is queued
    s_poll (slot, slot->item.fd, true);
    return 0;
}

const nat_relay_wss_stats_t *nat_relay_wss_stats (nat_relay_wss_t *self) { return &self->stats; }
int nat_relay_wss_cas (nat_relay_wss_t *self) { return self->cas; }

//  ---------------------------------------------------------------------------
//  Self test: a WebSocket over TLS server of the test's own (OpenSSL and the
//  upgrade by hand, in a thread) that echoes binary messages. Trusted CA and
//  an IP SAN: OPEN, a message out and its echo in, then CLOSED when the server
//  hangs up. Another CA, another address in the certificate, a port with no
//  server: CLOSED and counted as failed, never OPEN.

#include "tests/selftest_tls.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

typedef struct {
    int listen_fd;
    uint16_t port;
    selftest_tls_t *tls;
    atomic_int served;
} s_server_t;

static bool
s_srv_read (SSL *ssl, uint8_t *buf, size_t size)
{
    size_t got = 0;
    while (got < size) {
        int r = SSL_read (ssl, buf + got, (int) (size - got));
        if (r <= 0)
            return false;
        got += (size_t) r;
    }
    return true;
}

//  One connection: TLS, the upgrade, then echo binary messages until a close frame or EOF
static void
s_srv_one (s_server_t *srv, SSL_CTX *ctx, int fd)
{
    SSL *ssl = SSL_new (ctx);
    SSL_set_fd (ssl, fd);
    if (SSL_accept (ssl) != 1)
        goto done;
    char req [2048];
    size_t got = 0;
    req [0] = 0;
    while (got < sizeof req - 1 && !strstr (req, "\r\n\r\n")) {
        int r = SSL_read (ssl, req + got, 1);
        if (r <= 0)
            goto done;
        got += (size_t) r;
        req [got] = 0;
    }
    char *key = strcasestr (req, "Sec-WebSocket-Key:");
    if (!key || !strstr (req, "GET " NAT_RELAY_WSS_PATH " "))
        goto done;
    key += 18;
    while (*key == ' ')
        key++;
    char accept_in [128];
    snprintf (accept_in, sizeof accept_in, "%.*s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", (int) strcspn (key, "\r\n"), key);
    unsigned char sha [20];
    unsigned int sha_len = 0;
    EVP_Digest (accept_in, strlen (accept_in), sha, &sha_len, EVP_sha1 (), NULL);
    char accept [64];
    EVP_EncodeBlock ((unsigned char *) accept, sha, 20);
    char reply [300];
    int n = snprintf (reply, sizeof reply, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: "
                      NAT_RELAY_WSS_PROTOCOL "\r\n\r\n", accept);
    SSL_write (ssl, reply, n);
    srv->served++;
    for (;;) {
        uint8_t head [8], mask [4], data [4096];
        if (!s_srv_read (ssl, head, 2))
            break;
        size_t size = head [1] & 0x7f;
        if (size == 126) {
            if (!s_srv_read (ssl, head + 2, 2))
                break;
            size = (size_t) head [2] << 8 | head [3];
        }
        if (size > sizeof data || !s_srv_read (ssl, mask, 4) || !s_srv_read (ssl, data, size))
            break;
        if ((head [0] & 0x0f) != 2)
            break;
        for (size_t i = 0; i < size; i++)
            data [i] ^= mask [i % 4];
        //  Unmasked, as a server sends; "bye" asks the server to hang up
        if (size == 3 && memcmp (data, "bye", 3) == 0)
            break;
        uint8_t frame [4 + 4096];
        size_t at = 0;
        frame [at++] = 0x82;
        if (size < 126)
            frame [at++] = (uint8_t) size;
        else {
            frame [at++] = 126;
            frame [at++] = (uint8_t) (size >> 8);
            frame [at++] = (uint8_t) size;
        }
        memcpy (frame + at, data, size);
        SSL_write (ssl, frame, (int) (at + size));
    }
done:
    SSL_free (ssl);
    close (fd);
}

static void *
s_srv_thread (void *arg)
{
    s_server_t *srv = (s_server_t *) arg;
    SSL_CTX *ctx = SSL_CTX_new (TLS_server_method ());
    SSL_CTX_use_certificate_chain_file (ctx, srv->tls->cert_file);     //  leaf and intermediate
    SSL_CTX_use_PrivateKey_file (ctx, srv->tls->key_file, SSL_FILETYPE_PEM);
    for (;;) {
        int fd = accept (srv->listen_fd, NULL, NULL);
        if (fd < 0)
            break;
        s_srv_one (srv, ctx, fd);
    }
    SSL_CTX_free (ctx);
    return NULL;
}

typedef struct {
    int opened, closed, messages, done;
    char reason [200];
    uint8_t last [64];
    size_t last_size;
} s_seen_t;

static void
s_test_fn (void *arg, size_t slot, nat_relay_wss_event_t event, const uint8_t *msg, size_t size)
{
    s_seen_t *seen = (s_seen_t *) arg;
    if (event == NAT_RELAY_WSS_OPEN)
        seen->opened++;
    else
    if (event == NAT_RELAY_WSS_CLOSED) {
        seen->closed++;
        snprintf (seen->reason, sizeof seen->reason, "%s", (const char *) msg);
    }
    else
    if (event == NAT_RELAY_WSS_MESSAGE) {
        seen->messages++;
        seen->last_size = size < sizeof seen->last ? size : sizeof seen->last;
        memcpy (seen->last, msg, seen->last_size);
    }
    else
        seen->done++;
}

static int
s_test_stop (bus_loop_t *loop, int timer_id, void *arg)
{
    return -1;
}

//  Runs the loop until *count reaches want, or 8 s
static void
s_test_until (bus_loop_t *loop, int *count, int want)
{
    for (int i = 0; i < 800 && *count < want; i++) {
        bus_loop_timer (loop, 10, 1, s_test_stop, NULL);
        bus_loop_start (loop);
    }
}

//  A client with the given CA file (read as nat's config check reads it)
static nat_relay_wss_t *
s_test_client (bus_loop_t *loop, const char *ca_file, s_seen_t *seen)
{
    size_t size = 0;
    char *ca = selftest_tls_slurp (ca_file, &size);
    char err [200];
    nat_relay_wss_t *self = nat_relay_wss_new (loop, ca, size, s_test_fn, seen, err, sizeof err);
    free (ca);                          //  lws keeps its own copy
    assert (self);
    return self;
}

void
nat_relay_wss_test (bool verbose)
{
    selftest_tls_t *tls = selftest_tls_new ("127.0.0.1");
    assert (tls);
    s_server_t srv = { .tls = tls };
    srv.listen_fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (bind (srv.listen_fd, (struct sockaddr *) &sa, sizeof sa) == 0 && listen (srv.listen_fd, 8) == 0);
    socklen_t len = sizeof sa;
    getsockname (srv.listen_fd, (struct sockaddr *) &sa, &len);
    srv.port = ntohs (sa.sin_port);
    pthread_t thread;
    pthread_create (&thread, NULL, s_srv_thread, &srv);
    bus_loop_t *loop = bus_loop_new ();

    //  Trusted: open, a message and its echo, the server hangs up: CLOSED
    s_seen_t seen = { 0 };
    nat_relay_wss_t *self = s_test_client (loop, selftest_tls_ca_file (tls), &seen);
    assert (nat_relay_wss_send (self, 3, (const uint8_t *) "early", 5) == -1);      //  not open
    assert (nat_relay_wss_open (self, 3, "127.0.0.1", "127.0.0.1", srv.port) == 0);
    assert (nat_relay_wss_active (self, 3) && !nat_relay_wss_open_now (self, 3));
    s_test_until (loop, &seen.opened, 1);
    if (verbose || !seen.opened)
        printf ("nat_relay_wss: opened %d closed %d (%s)\n", seen.opened, seen.closed, seen.reason);
    assert (seen.opened == 1 && seen.closed == 0 && nat_relay_wss_open_now (self, 3));
    uint8_t big [S_MSG_MAX];
    for (size_t i = 0; i < sizeof big; i++)
        big [i] = (uint8_t) (i * 7);
    assert (nat_relay_wss_send (self, 3, (const uint8_t *) "hello relay", 11) == 0);
    s_test_until (loop, &seen.messages, 1);
    assert (seen.messages == 1 && seen.last_size == 11 && memcmp (seen.last, "hello relay", 11) == 0);
    assert (nat_relay_wss_send (self, 3, big, sizeof big) == 0);
    s_test_until (loop, &seen.messages, 2);
    assert (seen.messages == 2 && memcmp (seen.last, big, seen.last_size) == 0);
    assert (nat_relay_wss_send (self, 3, big, sizeof big + 1) == -1);               //  not a datagram
    assert (nat_relay_wss_send (self, 3, (const uint8_t *) "bye", 3) == 0);
    s_test_until (loop, &seen.closed, 1);
    assert (seen.closed == 1 && !nat_relay_wss_active (self, 3) && srv.served == 1);
    const nat_relay_wss_stats_t *s = nat_relay_wss_stats (self);
    assert (s->opens == 1 && s->opened == 1 && s->failed == 0 && s->rx == 2 && s->tx == 3);
    nat_relay_wss_destroy (&self);

    //  A CA file of two roots, the right one second: trusted
    memset (&seen, 0, sizeof seen);
    self = s_test_client (loop, selftest_tls_bundle_file (tls), &seen);
    assert (nat_relay_wss_cas (self) >= 1);
    assert (nat_relay_wss_open (self, 0, "127.0.0.1", "127.0.0.1", srv.port) == 0);
    s_test_until (loop, &seen.opened, 1);
    if (verbose || !seen.opened)
        printf ("nat_relay_wss: bundle: opened %d (%s)\n", seen.opened, seen.reason);
    assert (seen.opened == 1);
    nat_relay_wss_destroy (&self);

    //  Not trusted: another CA signed nothing the server has
    memset (&seen, 0, sizeof seen);
    self = s_test_client (loop, selftest_tls_other_ca_file (tls), &seen);
    assert (nat_relay_wss_open (self, 0, "127.0.0.1", "127.0.0.1", srv.port) == 0);
    s_test_until (loop, &seen.closed, 1);
    if (verbose)
        printf ("nat_relay_wss: other CA: %s\n", seen.reason);
    assert (seen.closed == 1 && seen.opened == 0 && nat_relay_wss_stats (self)->failed == 1);
    assert (strstr (seen.reason, "certificate is refused: unable to get local issuer certificate"));
    nat_relay_wss_destroy (&self);

    //  The right CA, but the certificate is for 127.0.0.1, not the address we asked for
    memset (&seen, 0, sizeof seen);
    self = s_test_client (loop, selftest_tls_ca_file (tls), &seen);
    assert (nat_relay_wss_open (self, 0, "127.0.0.1", "192.0.2.1", srv.port) == 0);
    s_test_until (loop, &seen.closed, 1);
    if (verbose)
        printf ("nat_relay_wss: other address: %s\n", seen.reason);
    assert (seen.closed == 1 && seen.opened == 0 && nat_relay_wss_stats (self)->failed == 1);
    assert (strstr (seen.reason, "certificate is refused: IP address mismatch"));
    //  Nothing listening
    int spare = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in none = { .sin_family = AF_INET };
    none.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    bind (spare, (struct sockaddr *) &none, sizeof none);
    len = sizeof none;
    getsockname (spare, (struct sockaddr *) &none, &len);
    memset (&seen, 0, sizeof seen);
    nat_relay_wss_open (self, 1, "127.0.0.1", "127.0.0.1", ntohs (none.sin_port));
    s_test_until (loop, &seen.closed, 1);
    assert (seen.closed == 1 && seen.opened == 0 && nat_relay_wss_stats (self)->failed == 2);
    close (spare);
    //  Closing an opening connection: no event
    memset (&seen, 0, sizeof seen);
    assert (nat_relay_wss_open (self, 2, "127.0.0.1", "127.0.0.1", srv.port) == 0);
    nat_relay_wss_close (self, 2);
    for (int i = 0; i < 30; i++) {          //  300 ms: nothing
        bus_loop_timer (loop, 10, 1, s_test_stop, NULL);
        bus_loop_start (loop);
    }
    assert (seen.closed == 0 && seen.opened == 0 && !nat_relay_wss_active (self, 2));
    nat_relay_wss_destroy (&self);

    shutdown (srv.listen_fd, SHUT_RDWR);
    close (srv.listen_fd);
    pthread_join (thread, NULL);
    bus_loop_destroy (&loop);
    selftest_tls_destroy (&tls);
}
