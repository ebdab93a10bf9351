/*  relay_tcp: TCP clients of the relay, proxied to its UDP port (why: relay_tcp.h). */
#include "relay_tcp.h"
#include "ws_loop.h"
#include "relay_stream.h"
#include "relay_proxy.h"
#include "bus_clock.h"
#include "bus_log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct s_conn {
    relay_tcp_t *owner;
    zmq_pollitem_t tcp_item;
    relay_proxy_conn_t *proxy;          //  the UDP side (relay_proxy)
    relay_stream_t *in;
} s_conn_t;

struct _relay_tcp_t {
    bus_loop_t *loop;
    zmq_pollitem_t listen_item;
    uint16_t port;
    relay_proxy_t *proxy;
};

//  Our side of a connection; the proxy's is gone already or ends here
static void
s_close (s_conn_t *conn, bool broken)
{
    relay_tcp_t *self = conn->owner;
    bus_loop_poller_end (self->loop, &conn->tcp_item);
    close (conn->tcp_item.fd);
    relay_stream_destroy (&conn->in);
    relay_proxy_close (&conn->proxy, broken);
    free (conn);
}

//  The proxy ended the connection (idle, or the client is gone)
static void
s_proxy_closed (void *arg)
{
    s_conn_t *conn = (s_conn_t *) arg;
    conn->proxy = NULL;
    s_close (conn, false);
}

//  UDP -> TCP: each datagram from the relay, framed
static int
s_deliver (void *arg, const uint8_t *msg, size_t size)
{
    s_conn_t *conn = (s_conn_t *) arg;
    if (relay_stream_send (conn->tcp_item.fd, msg, size) == 0)
        return 0;
    return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
}

//  TCP -> UDP: every whole message becomes one datagram to the relay
static int
s_tcp_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_conn_t *conn = (s_conn_t *) arg;
    for (int round = 0; round < 16; round++) {
        ssize_t n = relay_stream_read (conn->in, conn->tcp_item.fd);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            s_close (conn, false);
            return 0;
        }
        const uint8_t *msg;
        size_t size;
        int rc;
        while ((rc = relay_stream_next (conn->in, &msg, &size)) == 1)
            relay_proxy_to_relay (conn->proxy, msg, size);
        if (rc < 0) {
            s_close (conn, true);
            return 0;
        }
        relay_proxy_touch (conn->proxy);
        if (n < 0)
            break;
    }
    return 0;
}

static int
s_accept (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    relay_tcp_t *self = (relay_tcp_t *) arg;
    for (int round = 0; round < 16; round++) {
        int fd = accept4 (self->listen_item.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        s_conn_t *conn = (s_conn_t *) calloc (1, sizeof *conn);
        assert (conn);
        conn->proxy = relay_proxy_open (self->proxy, s_deliver, s_proxy_closed, NULL, conn);
        if (!conn->proxy) {
            free (conn);
            close (fd);
            continue;
        }
        int one = 1;
        setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn->owner = self;
        conn->in = relay_stream_new ();
        conn->tcp_item = (zmq_pollitem_t) { NULL, fd, ZMQ_POLLIN, 0 };
        bus_loop_poller (self->loop, &conn->tcp_item, s_tcp_ready, conn);
    }
    return 0;
}

relay_tcp_t *
relay_tcp_new (bus_loop_t *loop, const char *bind_ip, uint16_t port, uint16_t udp_port,
               uint32_t max_connections, uint32_t idle_ms)
{
    struct sockaddr_storage ss;
    socklen_t len;
    relay_tcp_t *self = (relay_tcp_t *) calloc (1, sizeof *self);
    assert (self);
    self->loop = loop;
    self->proxy = relay_proxy_new (loop, bind_ip, udp_port, max_connections, idle_ms);
    int fd = relay_tcp_listen (bind_ip, port, &ss, &len);
    if (!self->proxy || fd < 0) {
        int e = errno;
        if (fd >= 0)
            close (fd);
        relay_proxy_destroy (&self->proxy);
        free (self);
        errno = e;
        return NULL;
    }
    self->port = ntohs (ss.ss_family == AF_INET ? ((struct sockaddr_in *) &ss)->sin_port
                                                : ((struct sockaddr_in6 *) &ss)->sin6_port);
    self->listen_item = (zmq_pollitem_t) { NULL, fd, ZMQ_POLLIN, 0 };
    if (bus_loop_poller (loop, &self->listen_item, s_accept, self)) {
        close (fd);
        relay_proxy_destroy (&self->proxy);
        free (self);
        errno = EINVAL;
        return NULL;
    }
    return self;
}

int
relay_tcp_listen (const char *bind_ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    return ws_loop_listen (bind_ip, port, ss, len);
}

void
relay_tcp_destroy (relay_tcp_t **self_p)
{
    assert (self_p);
    relay_tcp_t *self = *self_p;
    if (!self)
        return;
    relay_proxy_destroy (&self->proxy);         //  ends every connection
    bus_loop_poller_end (self->loop, &self->listen_item);
    close (self->listen_item.fd);
    free (self);
    *self_p = NULL;
}

uint16_t relay_tcp_port (relay_tcp_t *self) { return self->port; }
const relay_tcp_stats_t *relay_tcp_stats (relay_tcp_t *self) { return relay_proxy_stats (self->proxy); }
void relay_tcp_sweep (relay_tcp_t *self, int64_t now_ms) { relay_proxy_sweep (self->proxy, now_ms); }

//  ---------------------------------------------------------------------------
//  Self test: a UDP socket plays the relay; a client thread connects over TCP,
//  sends framed messages, gets framed answers; bad framing disconnects; the
//  connection limit refuses; idle connections are swept.

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

typedef struct {
    uint16_t tcp_port;
    int relay_fd;
    atomic_int done;
    atomic_int ok;
} s_test_t;

static int
s_test_connect (uint16_t port)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (port) };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (connect (fd, (struct sockaddr *) &sa, sizeof sa) == 0);
    return fd;
}

static bool
s_test_wait (int fd, int ms)
{
    struct pollfd p = { fd, POLLIN, 0 };
    return poll (&p, 1, ms) == 1;
}

static void *
s_test_client (void *arg)
{
    s_test_t *t = (s_test_t *) arg;
    int ok = 1;
    int fd = s_test_connect (t->tcp_port);
    const uint8_t hello [] = "hello relay";
    ok &= relay_stream_send (fd, hello, sizeof hello) == 0;
    //  The "relay" gets it as one datagram and answers the proxy's socket
    uint8_t buf [RELAY_STREAM_MSG_MAX];
    struct sockaddr_storage from;
    socklen_t from_len = sizeof from;
    ok &= s_test_wait (t->relay_fd, 3000);
    ssize_t n = recvfrom (t->relay_fd, buf, sizeof buf, 0, (struct sockaddr *) &from, &from_len);
    ok &= n == (ssize_t) sizeof hello && memcmp (buf, hello, sizeof hello) == 0;
    const uint8_t answer [] = "answer";
    sendto (t->relay_fd, answer, sizeof answer, 0, (struct sockaddr *) &from, from_len);
    relay_stream_t *in = relay_stream_new ();
    const uint8_t *msg;
    size_t size;
    int got = 0;
    for (int tries = 0; tries < 30 && !got; tries++) {
        if (s_test_wait (fd, 100))
            relay_stream_read (in, fd);
        got = relay_stream_next (in, &msg, &size);
    }
    ok &= got == 1 && size == sizeof answer && memcmp (msg, answer, size) == 0;
    relay_stream_destroy (&in);
    //  A zero length breaks the stream: the proxy hangs up
    uint8_t zero [2] = { 0, 0 };
    ok &= send (fd, zero, 2, 0) == 2;
    ok &= s_test_wait (fd, 3000) && recv (fd, buf, sizeof buf, 0) == 0;
    close (fd);
    //  Two connections, the limit is one: the second is closed at once
    int a = s_test_connect (t->tcp_port);
    usleep (50 * 1000);
    int b = s_test_connect (t->tcp_port);
    ok &= s_test_wait (b, 3000) && recv (b, buf, sizeof buf, 0) == 0;
    //  The first is idle: swept after idle_ms (300 ms)
    ok &= s_test_wait (a, 3000) && recv (a, buf, sizeof buf, 0) == 0;
    close (a);
    close (b);
    t->ok = ok;
    t->done = 1;
    return NULL;
}

static int
s_test_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    relay_tcp_t *self = (relay_tcp_t *) ((void **) arg) [0];
    s_test_t *t = (s_test_t *) ((void **) arg) [1];
    relay_tcp_sweep (self, bus_clock_ms ());
    return t->done ? -1 : 0;
}

static int
s_test_deadline (bus_loop_t *loop, int timer_id, void *arg)
{
    return -1;
}

void
relay_tcp_test (bool verbose)
{
    bus_loop_t *loop = bus_loop_new ();
    s_test_t t = { 0 };
    t.relay_fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (bind (t.relay_fd, (struct sockaddr *) &sa, sizeof sa) == 0);
    socklen_t len = sizeof sa;
    getsockname (t.relay_fd, (struct sockaddr *) &sa, &len);
    relay_tcp_t *self = relay_tcp_new (loop, "127.0.0.1", 0, ntohs (sa.sin_port), 1, 300);
    assert (self);
    assert (relay_tcp_new (loop, "not an address", 0, 1, 1, 0) == NULL);
    t.tcp_port = relay_tcp_port (self);
    void *args [2] = { self, &t };
    bus_loop_timer (loop, 50, 0, s_test_tick, args);
    bus_loop_timer (loop, 10000, 1, s_test_deadline, NULL);     //  whatever happens
    pthread_t thread;
    pthread_create (&thread, NULL, s_test_client, &t);
    bus_loop_start (loop);
    pthread_join (thread, NULL);
    assert (t.done && t.ok);
    const relay_tcp_stats_t *s = relay_tcp_stats (self);
    if (verbose)
        printf ("relay_tcp: accepted %lu refused %lu broken %lu closed %lu\n", (unsigned long) s->accepted,
                (unsigned long) s->refused, (unsigned long) s->broken, (unsigned long) s->closed);
    assert (s->accepted == 2 && s->refused == 1 && s->broken == 1 && s->to_relay == 1 && s->from_relay == 1);
    assert (s->active == 0);
    relay_tcp_destroy (&self);
    close (t.relay_fd);
    bus_loop_destroy (&loop);
}
