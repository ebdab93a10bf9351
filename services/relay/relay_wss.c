/*  relay_wss: WebSocket over TLS clients of the relay, proxied to its UDP port
    (why, and why on the worker's loop: relay_wss.h). */
#include "relay_wss.h"
#include "relay_tcp.h"
#include "relay_stream.h"
#include "bus_clock.h"
#include "bus_log.h"
#include "ws_loop.h"
#include "ws_tls.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_SERVICE_MS    100             //  lws's own timeouts (handshakes, closes)

typedef struct s_out {
    struct s_out *next;
    size_t size;
    uint8_t data [];                    //  LWS_PRE bytes of room, then the message
} s_out_t;

typedef struct s_conn {
    relay_wss_t *owner;
    struct lws *wsi;                    //  NULL once lws destroyed it
    ws_loop_fd_t fd;                    //  polled on the loop (fd -1: timer only)
    relay_proxy_conn_t *proxy;          //  the UDP side; NULL once ended
    bool open;                          //  the WebSocket is up
    s_out_t *out, **out_tail;
    size_t queued;
    uint8_t rx [RELAY_STREAM_MSG_MAX];  //  the message being received
    size_t rx_size;
    struct s_conn *prev, *next;
} s_conn_t;

struct _relay_wss_t {
    bus_loop_t *loop;
    struct lws_context *context;
    struct lws_vhost *vhost;
    zmq_pollitem_t listen_item;
    uint16_t port;
    relay_proxy_t *proxy;
    ws_loop_t *ws;
    s_conn_t *conns;
    s_conn_t *adopting;                 //  the connection lws is adopting now
    int timer_only_ms;                  //  > 0: serviced by a timer only (BIFROST_WSS_TIMER_MS, measurements)
    int chain;                          //  intermediate certificates sent after the leaf
    relay_wss_stats_t stats;
};

//  ---------------------------------------------------------------------------
//  The end of a connection (lws is served from the loop by libws/ws_loop)

//  lws is done with the connection: forget it (lws closes the socket)
static void
s_gone (s_conn_t *conn)
{
    relay_wss_t *self = conn->owner;
    if (!conn->open)
        self->stats.rejected++;
    ws_loop_unwatch (&conn->fd);
    relay_proxy_close (&conn->proxy, false);
    while (conn->out) {
        s_out_t *next = conn->out->next;
        free (conn->out);
        conn->out = next;
    }
    if (conn->prev)
        conn->prev->next = conn->next;
    else
    if (self->conns == conn)
        self->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    if (self->adopting == conn)
        self->adopting = NULL;
    free (conn);
}

//  ---------------------------------------------------------------------------
//  The proxy's side

//  A datagram from the relay: queued for the client (dropped when it lags)
static int
s_deliver (void *arg, const uint8_t *msg, size_t size)
{
    s_conn_t *conn = (s_conn_t *) arg;
    if (!conn->open || !conn->wsi || conn->queued >= RELAY_WSS_QUEUE)
        return 1;
    s_out_t *out = (s_out_t *) malloc (sizeof *out + LWS_PRE + size);
    assert (out);
    out->next = NULL;
    out->size = size;
    memcpy (out->data + LWS_PRE, msg, size);
    *conn->out_tail = out;
    conn->out_tail = &out->next;
    conn->queued++;
    lws_callback_on_writable (conn->wsi);
    return 0;
}

static void
s_flush (void *arg)
{
    if (!((s_conn_t *) arg)->owner->timer_only_ms)
        ws_loop_service (((s_conn_t *) arg)->owner->ws);
}

//  The proxy ended it (idle): lws closes the connection at its next service
static void
s_proxy_closed (void *arg)
{
    s_conn_t *conn = (s_conn_t *) arg;
    conn->proxy = NULL;
    if (conn->wsi)
        lws_set_timeout (conn->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

//  ---------------------------------------------------------------------------
//  lws

static int
s_callback (struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    if (ws_tls_chain_callback (reason, user))
        return 0;
    s_conn_t *conn = (s_conn_t *) lws_get_opaque_user_data (wsi);
    if (!conn)
        return 0;
    relay_wss_t *self = conn->owner;
    switch (reason) {
        case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
            char uri [64];
            int n = lws_hdr_copy (wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
            return n > 0 && strcmp (uri, RELAY_WSS_PATH) == 0 ? 0 : -1;
        }
        case LWS_CALLBACK_ESTABLISHED:
            conn->open = true;
            self->stats.opened++;
            if (conn->proxy)
                relay_proxy_touch (conn->proxy);
            break;
        case LWS_CALLBACK_HTTP:
            return -1;                  //  only the WebSocket is served
        case LWS_CALLBACK_RECEIVE:
            if (!conn->proxy)
                return -1;
            if (lws_is_first_fragment (wsi))
                conn->rx_size = 0;
            //  One binary message of at most one relay datagram; else the
            //  connection is broken, as a bad length on TCP
            if (!lws_frame_is_binary (wsi) || conn->rx_size + len > sizeof conn->rx) {
                relay_proxy_close (&conn->proxy, true);
                return -1;
            }
            memcpy (conn->rx + conn->rx_size, in, len);
            conn->rx_size += len;
            if (lws_is_final_fragment (wsi) && lws_remaining_packet_payload (wsi) == 0) {
                if (conn->rx_size == 0) {
                    relay_proxy_close (&conn->proxy, true);
                    return -1;
                }
                relay_proxy_to_relay (conn->proxy, conn->rx, conn->rx_size);
                conn->rx_size = 0;
            }
            break;
        case LWS_CALLBACK_SERVER_WRITEABLE:
            while (conn->out && !lws_send_pipe_choked (wsi)) {
                s_out_t *out = conn->out;
                conn->out = out->next;
                if (!conn->out)
                    conn->out_tail = &conn->out;
                conn->queued--;
                int n = lws_write (wsi, out->data + LWS_PRE, out->size, LWS_WRITE_BINARY);
                free (out);
                if (n < 0)
                    return -1;
            }
            if (conn->out)
                lws_callback_on_writable (wsi);
            ws_loop_want_out (&conn->fd, conn->out != NULL);
            break;
        case LWS_CALLBACK_WSI_DESTROY:
            conn->wsi = NULL;
            lws_set_opaque_user_data (wsi, NULL);
            s_gone (conn);
            break;
        default:
            break;
    }
    return 0;
}

static const struct lws_protocols s_protocols [] = {
    { RELAY_WSS_PROTOCOL, s_callback, 0, RELAY_STREAM_MSG_MAX, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 }
};

//  ---------------------------------------------------------------------------
//  Connections

static int
s_accept (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    relay_wss_t *self = (relay_wss_t *) arg;
    for (int round = 0; round < 16; round++) {
        int fd = accept4 (self->listen_item.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        s_conn_t *conn = (s_conn_t *) calloc (1, sizeof *conn);
        assert (conn);
        conn->owner = self;
        conn->out_tail = &conn->out;
        conn->fd.item.fd = -1;
        conn->proxy = relay_proxy_open (self->proxy, s_deliver, s_proxy_closed, s_flush, conn);
        if (!conn->proxy) {
            free (conn);
            close (fd);
            continue;
        }
        int one = 1;
        setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        //  Known before lws sees it: lws may end it inside the adoption
        conn->next = self->conns;
        if (self->conns)
            self->conns->prev = conn;
        self->conns = conn;
        if (!self->timer_only_ms)
            ws_loop_watch (self->ws, &conn->fd, fd);
        self->adopting = conn;
        struct lws *wsi = ws_loop_adopt (self->vhost, fd, conn);
        if (self->adopting == conn) {
            if (wsi)
                conn->wsi = wsi;
            else {
                conn->open = true;          //  not a rejection: we could not take it
                s_gone (conn);
            }
        }
        self->adopting = NULL;
    }
    ws_loop_service (self->ws);
    return 0;
}

relay_wss_t *
relay_wss_new (bus_loop_t *loop, const relay_wss_config_t *config, char *err, size_t err_size)
{
    assert (loop && config);
    relay_wss_t *self = (relay_wss_t *) calloc (1, sizeof *self);
    assert (self);
    self->loop = loop;
    self->listen_item.fd = -1;
    self->proxy = relay_proxy_new (loop, config->udp_ip ? config->udp_ip : config->bind_ip, config->udp_port, config->max_connections,
                                   config->idle_ms);
    if (!self->proxy) {
        snprintf (err, err_size, "relay.tls_listen: '%s' is not a numeric address", config->bind_ip);
        relay_wss_destroy (&self);
        return NULL;
    }
    ws_loop_log_to_bus ();
    struct lws_context_creation_info info;
    memset (&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.gid = -1;
    info.uid = -1;
    //  A TLS or WebSocket handshake that stalls (the self test under valgrind,
    //  where one handshake takes seconds, asks for longer)
    info.timeout_secs = config->handshake_timeout_s > 0 ? (unsigned) config->handshake_timeout_s : 10;
    self->context = lws_create_context (&info);
    if (self->context) {
        memset (&info, 0, sizeof info);
        info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
        info.vhost_name = "relay";
        info.protocols = s_protocols;
        info.gid = -1;
        info.uid = -1;
        self->vhost = ws_tls_vhost (self->context, &info, config->cert_pem, config->cert_size,
                                    config->key_pem, config->key_size, &self->chain);
    }
    if (!self->vhost) {
        snprintf (err, err_size, "relay.tls_cert, relay.tls_key: TLS cannot use them (PEM certificate and "
                  "its private key expected)");
        relay_wss_destroy (&self);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t len;
    int fd = ws_loop_listen (config->bind_ip, config->port, &ss, &len);
    if (fd < 0) {
        snprintf (err, err_size, "cannot listen on TCP %s port %u (TLS): %s", config->bind_ip, config->port,
                  strerror (errno));
        relay_wss_destroy (&self);
        return NULL;
    }
    self->port = ws_loop_port (&ss);
    self->listen_item = (zmq_pollitem_t) { NULL, fd, ZMQ_POLLIN, 0 };
    //  The alternative design, for measuring it (docs/relay.md, "WebSocket over
    //  TLS"): lws serviced from a timer only, as disc_http does
    const char *timer_only = getenv ("BIFROST_WSS_TIMER_MS");
    self->timer_only_ms = timer_only ? atoi (timer_only) : 0;
    self->ws = ws_loop_new (loop, self->context, self->timer_only_ms > 0 ? self->timer_only_ms : S_SERVICE_MS);
    if (!self->ws || bus_loop_poller (loop, &self->listen_item, s_accept, self)) {
        snprintf (err, err_size, "cannot add the TLS socket to the loop");
        relay_wss_destroy (&self);
        return NULL;
    }
    return self;
}

void
relay_wss_destroy (relay_wss_t **self_p)
{
    assert (self_p);
    relay_wss_t *self = *self_p;
    if (!self)
        return;
    if (self->listen_item.fd >= 0) {
        bus_loop_poller_end (self->loop, &self->listen_item);
        close (self->listen_item.fd);
    }
    //  lws calls WSI_DESTROY for every connection while the context goes
    if (self->context)
        lws_context_destroy (self->context);
    while (self->conns)
        s_gone (self->conns);
    ws_loop_destroy (&self->ws);
    relay_proxy_destroy (&self->proxy);
    free (self);
    *self_p = NULL;
}

uint16_t relay_wss_port (relay_wss_t *self) { return self->port; }
int relay_wss_chain (relay_wss_t *self) { return self->chain; }

void
relay_wss_sweep (relay_wss_t *self, int64_t now_ms)
{
    relay_proxy_sweep (self->proxy, now_ms);
    ws_loop_service (self->ws);
}

const relay_wss_stats_t *
relay_wss_stats (relay_wss_t *self)
{
    self->stats.proxy = *relay_proxy_stats (self->proxy);
    return &self->stats;
}

//  ---------------------------------------------------------------------------
//  Self test: a test CA, an intermediate and a certificate for 127.0.0.1 made
//  with openssl (the client trusts only the root: the chain must be sent); a
//  client of its own (OpenSSL and WebSocket framing by hand, so the server is
//  checked against an implementation that is not lws) in a thread. A UDP socket
//  plays the relay: a binary message arrives as one datagram, the answer comes
//  back as one binary message; the wrong path, plain HTTP without TLS, a text
//  message and an oversize message are refused or break the connection; the
//  limit refuses; an idle connection is swept; a client that reads nothing
//  while the relay sends 10000 datagrams does not stop another client.

#include "tests/selftest_tls.h"
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

typedef struct {
    uint16_t port;
    int relay_fd;
    const char *ca_file;
    atomic_int done;
    atomic_int ok;
    int failed_at;
} s_test_t;

//  One WebSocket client over TLS, by hand
typedef struct {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
} s_client_t;

static int
s_test_tcp (uint16_t port)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (port) };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (connect (fd, (struct sockaddr *) &sa, sizeof sa) == 0);
    return fd;
}

//  TLS (verified against the CA, IP SAN 127.0.0.1), then the upgrade at path; true when 101
static bool
s_client_open (s_client_t *c, s_test_t *t, const char *path)
{
    memset (c, 0, sizeof *c);
    c->fd = s_test_tcp (t->port);
    c->ctx = SSL_CTX_new (TLS_client_method ());
    SSL_CTX_load_verify_locations (c->ctx, t->ca_file, NULL);
    SSL_CTX_set_verify (c->ctx, SSL_VERIFY_PEER, NULL);
    c->ssl = SSL_new (c->ctx);
    X509_VERIFY_PARAM_set1_ip_asc (SSL_get0_param (c->ssl), "127.0.0.1");
    SSL_set_fd (c->ssl, c->fd);
    if (SSL_connect (c->ssl) != 1)
        return false;
    char req [400];
    int n = snprintf (req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Protocol: " RELAY_WSS_PROTOCOL "\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n", path);
    SSL_write (c->ssl, req, n);
    char reply [1024];
    size_t got = 0;
    reply [0] = 0;
    while (got < sizeof reply - 1 && !strstr (reply, "\r\n\r\n")) {
        int r = SSL_read (c->ssl, reply + got, 1);
        if (r <= 0)
            return false;
        got += (size_t) r;
        reply [got] = 0;
    }
    return strncmp (reply, "HTTP/1.1 101", 12) == 0;
}

static void
s_client_close (s_client_t *c)
{
    if (c->ssl)
        SSL_free (c->ssl);
    if (c->ctx)
        SSL_CTX_free (c->ctx);
    close (c->fd);
}

//  A masked frame (opcode 2 binary, 1 text) of size bytes
static void
s_client_send (s_client_t *c, int opcode, const uint8_t *data, size_t size)
{
    uint8_t frame [8 + 4 + 4096];
    size_t at = 0;
    frame [at++] = (uint8_t) (0x80 | opcode);
    if (size < 126)
        frame [at++] = (uint8_t) (0x80 | size);
    else {
        frame [at++] = 0x80 | 126;
        frame [at++] = (uint8_t) (size >> 8);
        frame [at++] = (uint8_t) size;
    }
    const uint8_t mask [4] = { 0x12, 0x34, 0x56, 0x78 };
    memcpy (frame + at, mask, 4);
    at += 4;
    for (size_t i = 0; i < size; i++)
        frame [at + i] = data [i] ^ mask [i % 4];
    SSL_write (c->ssl, frame, (int) (at + size));
}

static bool
s_read_exact (s_client_t *c, uint8_t *buf, size_t size)
{
    size_t got = 0;
    while (got < size) {
        int r = SSL_read (c->ssl, buf + got, (int) (size - got));
        if (r <= 0)
            return false;
        got += (size_t) r;
    }
    return true;
}

//  The self test's waits: memcheck sets SELFTEST_VALGRIND, and under valgrind
//  the TLS handshakes and the flood of the slow-client case take several times
//  longer (a 3 s wait once ran out there)
#define S_TEST_WAIT_MS (getenv ("SELFTEST_VALGRIND") ? 30000 : 3000)

//  The next frame's opcode and payload (-1: closed or failed within 3 s)
static int
s_client_recv (s_client_t *c, uint8_t *buf, size_t *size)
{
    if (!SSL_pending (c->ssl)) {
        struct pollfd p = { c->fd, POLLIN, 0 };
        if (poll (&p, 1, S_TEST_WAIT_MS) != 1)
            return -1;
    }
    uint8_t head [4];
    if (!s_read_exact (c, head, 2))
        return -1;
    size_t n = head [1] & 0x7f;
    if (n == 126) {
        if (!s_read_exact (c, head + 2, 2))
            return -1;
        n = (size_t) head [2] << 8 | head [3];
    }
    if (n > *size || !s_read_exact (c, buf, n))
        return -1;
    *size = n;
    return head [0] & 0x0f;
}

//  True when the server hangs up within 3 s (a close frame, then EOF, or EOF)
static bool
s_client_hung_up (s_client_t *c)
{
    uint8_t buf [4096];
    for (int i = 0; i < 5; i++) {
        size_t size = sizeof buf;
        int op = s_client_recv (c, buf, &size);
        if (op < 0 || op == 8)
            return true;
    }
    return false;
}

#define S_CHECK(cond) do { if (!(cond)) { t->failed_at = __LINE__; goto done; } } while (0)

static void *
s_test_client (void *arg)
{
    s_test_t *t = (s_test_t *) arg;
    uint8_t buf [4096];
    struct sockaddr_storage from;
    socklen_t from_len = sizeof from;
    s_client_t a, b, slow;
    memset (&slow, 0, sizeof slow);
    slow.fd = -1;
    //  A message is one datagram, the answer one message
    S_CHECK (s_client_open (&a, t, RELAY_WSS_PATH));
    const uint8_t hello [] = "hello relay";
    s_client_send (&a, 2, hello, sizeof hello);
    struct pollfd p = { t->relay_fd, POLLIN, 0 };
    S_CHECK (poll (&p, 1, S_TEST_WAIT_MS) == 1);
    ssize_t n = recvfrom (t->relay_fd, buf, sizeof buf, 0, (struct sockaddr *) &from, &from_len);
    S_CHECK (n == (ssize_t) sizeof hello && memcmp (buf, hello, sizeof hello) == 0);
    //  A big one (2048, the most a datagram may be), and the answers
    uint8_t big [RELAY_STREAM_MSG_MAX];
    for (size_t i = 0; i < sizeof big; i++)
        big [i] = (uint8_t) i;
    s_client_send (&a, 2, big, sizeof big);
    S_CHECK (poll (&p, 1, S_TEST_WAIT_MS) == 1);
    S_CHECK (recv (t->relay_fd, buf, sizeof buf, 0) == (ssize_t) sizeof big && memcmp (buf, big, sizeof big) == 0);
    sendto (t->relay_fd, "answer", 6, 0, (struct sockaddr *) &from, from_len);
    sendto (t->relay_fd, big, sizeof big, 0, (struct sockaddr *) &from, from_len);
    size_t size = sizeof buf;
    S_CHECK (s_client_recv (&a, buf, &size) == 2 && size == 6 && memcmp (buf, "answer", 6) == 0);
    size = sizeof buf;
    S_CHECK (s_client_recv (&a, buf, &size) == 2 && size == sizeof big && memcmp (buf, big, size) == 0);
    //  A client that reads nothing while the relay floods it: a still works
    S_CHECK (s_client_open (&slow, t, RELAY_WSS_PATH));
    s_client_send (&slow, 2, hello, sizeof hello);
    struct sockaddr_storage slow_from;
    socklen_t slow_len = sizeof slow_from;
    S_CHECK (poll (&p, 1, S_TEST_WAIT_MS) == 1);
    S_CHECK (recvfrom (t->relay_fd, buf, sizeof buf, 0, (struct sockaddr *) &slow_from, &slow_len) > 0);
    for (int i = 0; i < 10000; i++)
        sendto (t->relay_fd, big, 1400, 0, (struct sockaddr *) &slow_from, slow_len);
    sendto (t->relay_fd, "again", 5, 0, (struct sockaddr *) &from, from_len);
    size = sizeof buf;
    S_CHECK (s_client_recv (&a, buf, &size) == 2 && size == 5);
    //  A text message breaks the connection
    s_client_send (&a, 1, hello, sizeof hello);
    S_CHECK (s_client_hung_up (&a));
    s_client_close (&a);
    //  Another path: no WebSocket
    S_CHECK (!s_client_open (&b, t, "/v0/other"));
    s_client_close (&b);
    //  Plain text to the TLS port: refused
    int plain = s_test_tcp (t->port);
    S_CHECK (write (plain, "GET / HTTP/1.1\r\n\r\n", 18) == 18);
    p.fd = plain;
    S_CHECK (poll (&p, 1, S_TEST_WAIT_MS) == 1);
    close (plain);
    //  More than one datagram's worth in a message breaks it
    S_CHECK (s_client_open (&b, t, RELAY_WSS_PATH));
    s_client_send (&b, 2, big, sizeof big);
    s_client_send (&b, 0x2, big, 100);      //  fine
    uint8_t huge [RELAY_STREAM_MSG_MAX + 1] = { 0 };
    s_client_send (&b, 2, huge, sizeof huge);
    S_CHECK (s_client_hung_up (&b));
    s_client_close (&b);
    //  Idle: swept after idle_ms (1 s); the slow client first goes
    S_CHECK (s_client_open (&b, t, RELAY_WSS_PATH));
    S_CHECK (s_client_hung_up (&b));
    s_client_close (&b);
    t->ok = 1;
done:
    if (slow.fd >= 0)
        s_client_close (&slow);
    t->done = 1;
    return NULL;
}

static int
s_test_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    relay_wss_t *self = (relay_wss_t *) ((void **) arg) [0];
    s_test_t *t = (s_test_t *) ((void **) arg) [1];
    relay_wss_sweep (self, bus_clock_ms ());
    return t->done ? -1 : 0;
}

static int
s_test_deadline (bus_loop_t *loop, int timer_id, void *arg)
{
    return -1;
}

void
relay_wss_test (bool verbose)
{
    selftest_tls_t *tls = selftest_tls_new ("127.0.0.1");
    assert (tls);
    bus_loop_t *loop = bus_loop_new ();
    s_test_t t = { 0 };
    t.ca_file = selftest_tls_ca_file (tls);
    t.relay_fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (bind (t.relay_fd, (struct sockaddr *) &sa, sizeof sa) == 0);
    socklen_t len = sizeof sa;
    getsockname (t.relay_fd, (struct sockaddr *) &sa, &len);
    int rcvbuf = 64 * 1024;             //  the flood must not fill the test's own socket
    setsockopt (t.relay_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);

    char err [300];
    relay_wss_config_t config = {
        .bind_ip = "127.0.0.1", .port = 0, .udp_port = ntohs (sa.sin_port),
        .cert_pem = selftest_tls_cert (tls, &config.cert_size),
        .key_pem = selftest_tls_key (tls, &config.key_size),
        //  Under valgrind (and a fuzzer beside it) one TLS handshake took over
        //  10 s, and once the first client was still in its handshake when 1 s
        //  of idleness closed it (rejected 1): both get more room there
        .max_connections = 3, .idle_ms = getenv ("SELFTEST_VALGRIND") ? 5000 : 1000,
        .handshake_timeout_s = getenv ("SELFTEST_VALGRIND") ? 60 : 0,
    };
    //  A key that is not the certificate's, or no PEM at all: refused
    relay_wss_config_t bad = config;
    bad.key_pem = "not a key";
    bad.key_size = 9;
    assert (relay_wss_new (loop, &bad, err, sizeof err) == NULL && strstr (err, "tls_key"));
    relay_wss_t *self = relay_wss_new (loop, &config, err, sizeof err);
    if (!self)
        printf ("relay_wss_new: %s\n", err);
    assert (self);
    assert (relay_wss_chain (self) == 1);       //  the intermediate: the client trusts only the root
    t.port = relay_wss_port (self);
    void *args [2] = { self, &t };
    bus_loop_timer (loop, 50, 0, s_test_tick, args);
    bus_loop_timer (loop, 20 * S_TEST_WAIT_MS, 1, s_test_deadline, NULL);
    pthread_t thread;
    pthread_create (&thread, NULL, s_test_client, &t);
    bus_loop_start (loop);
    pthread_join (thread, NULL);
    const relay_wss_stats_t *s = relay_wss_stats (self);
    if (verbose || !t.ok || s->proxy.to_relay != 5)
        printf ("relay_wss: ok %d (failed at line %d) accepted %lu refused %lu opened %lu rejected %lu broken %lu "
                "to_relay %lu from_relay %lu dropped %lu active %u\n", (int) t.ok, t.failed_at,
                (unsigned long) s->proxy.accepted, (unsigned long) s->proxy.refused, (unsigned long) s->opened,
                (unsigned long) s->rejected, (unsigned long) s->proxy.broken, (unsigned long) s->proxy.to_relay,
                (unsigned long) s->proxy.from_relay, (unsigned long) s->proxy.dropped, s->proxy.active);
    fflush (stdout);            //  an assert below must not take the line with it
    assert (t.done && t.ok);
    //  a, slow, b (path), plain, b (huge), b (idle): two rejected (path, plain)
    assert (s->opened == 4 && s->rejected == 2 && s->proxy.broken == 2);
    assert (s->proxy.to_relay == 5);
    relay_wss_destroy (&self);
    assert (self == NULL);
    close (t.relay_fd);
    bus_loop_destroy (&loop);
    selftest_tls_destroy (&tls);
}
