/*  relay_proxy: a stream client of the relay as a UDP client on loopback (why:
    relay_proxy.h). */
#include "relay_proxy.h"
#include "relay_stream.h"
#include "bus_clock.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct _relay_proxy_conn_t {
    relay_proxy_t *owner;
    zmq_pollitem_t item;
    relay_proxy_deliver_fn *deliver;
    relay_proxy_closed_fn *closed;
    relay_proxy_flush_fn *flush;
    void *arg;
    int64_t last_ms;
    relay_proxy_conn_t *prev, *next;
};

struct _relay_proxy_t {
    bus_loop_t *loop;
    struct sockaddr_storage target;     //  the UDP relay, on loopback
    socklen_t target_len;
    uint32_t max_connections, idle_ms;
    relay_proxy_conn_t *conns;
    relay_proxy_stats_t stats;
};

relay_proxy_t *
relay_proxy_new (bus_loop_t *loop, const char *bind_ip, uint16_t udp_port,
                 uint32_t max_connections, uint32_t idle_ms)
{
    relay_proxy_t *self = (relay_proxy_t *) calloc (1, sizeof *self);
    assert (self);
    self->loop = loop;
    self->max_connections = max_connections ? max_connections : 1024;
    self->idle_ms = idle_ms;
    struct sockaddr_in *t4 = (struct sockaddr_in *) &self->target;
    struct sockaddr_in6 *t6 = (struct sockaddr_in6 *) &self->target;
    if (inet_pton (AF_INET, bind_ip, &t4->sin_addr) == 1) {
        t4->sin_family = AF_INET;
        t4->sin_port = htons (udp_port);
        //  The worker listens on this address, or on all of them
        if (t4->sin_addr.s_addr == htonl (INADDR_ANY))
            t4->sin_addr.s_addr = htonl (INADDR_LOOPBACK);
        self->target_len = sizeof *t4;
    }
    else
    if (inet_pton (AF_INET6, bind_ip, &t6->sin6_addr) == 1) {
        t6->sin6_family = AF_INET6;
        t6->sin6_port = htons (udp_port);
        if (IN6_IS_ADDR_UNSPECIFIED (&t6->sin6_addr))
            t6->sin6_addr = in6addr_loopback;
        self->target_len = sizeof *t6;
    }
    else {
        free (self);
        errno = EINVAL;
        return NULL;
    }
    return self;
}

static void
s_free (relay_proxy_conn_t *conn)
{
    relay_proxy_t *self = conn->owner;
    bus_loop_poller_end (self->loop, &conn->item);
    close (conn->item.fd);
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        self->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    self->stats.active--;
    self->stats.closed++;
    free (conn);
}

//  The proxy ends it: the transport hears of it
static void
s_end (relay_proxy_conn_t *conn)
{
    relay_proxy_closed_fn *closed = conn->closed;
    void *arg = conn->arg;
    s_free (conn);
    if (closed)
        closed (arg);
}

void
relay_proxy_destroy (relay_proxy_t **self_p)
{
    assert (self_p);
    relay_proxy_t *self = *self_p;
    if (!self)
        return;
    while (self->conns)
        s_end (self->conns);
    free (self);
    *self_p = NULL;
}

//  UDP -> client: each datagram from the relay, to the transport
static int
s_udp_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    relay_proxy_conn_t *conn = (relay_proxy_conn_t *) arg;
    relay_proxy_t *self = conn->owner;
    uint8_t buf [RELAY_STREAM_MSG_MAX + 1];
    int round;
    for (round = 0; round < 64; round++) {
        ssize_t n = recv (conn->item.fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0)
            break;
        if (n > RELAY_STREAM_MSG_MAX)
            continue;
        int rc = conn->deliver (conn->arg, buf, (size_t) n);
        if (rc == 0)
            self->stats.from_relay++;
        else
        if (rc > 0)
            self->stats.dropped++;          //  a slow reader loses datagrams, as on UDP
        else {
            s_end (conn);
            return 0;
        }
    }
    if (round && conn->flush)
        conn->flush (conn->arg);
    return 0;
}

relay_proxy_conn_t *
relay_proxy_open (relay_proxy_t *self, relay_proxy_deliver_fn *deliver,
                  relay_proxy_closed_fn *closed, relay_proxy_flush_fn *flush, void *arg)
{
    assert (self && deliver);
    if (self->stats.active >= self->max_connections) {
        self->stats.refused++;
        return NULL;
    }
    int udp = socket (self->target.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (udp < 0 || connect (udp, (struct sockaddr *) &self->target, self->target_len)) {
        if (udp >= 0)
            close (udp);
        self->stats.refused++;
        return NULL;
    }
    relay_proxy_conn_t *conn = (relay_proxy_conn_t *) calloc (1, sizeof *conn);
    assert (conn);
    conn->owner = self;
    conn->deliver = deliver;
    conn->closed = closed;
    conn->flush = flush;
    conn->arg = arg;
    conn->last_ms = bus_clock_ms ();
    conn->item = (zmq_pollitem_t) { NULL, udp, ZMQ_POLLIN, 0 };
    conn->next = self->conns;
    if (self->conns)
        self->conns->prev = conn;
    self->conns = conn;
    self->stats.active++;
    self->stats.accepted++;
    bus_loop_poller (self->loop, &conn->item, s_udp_ready, conn);
    return conn;
}

void
relay_proxy_to_relay (relay_proxy_conn_t *conn, const uint8_t *msg, size_t size)
{
    send (conn->item.fd, msg, size, MSG_DONTWAIT);
    conn->owner->stats.to_relay++;
    conn->last_ms = bus_clock_ms ();
}

void
relay_proxy_touch (relay_proxy_conn_t *conn)
{
    conn->last_ms = bus_clock_ms ();
}

void
relay_proxy_close (relay_proxy_conn_t **conn_p, bool broken)
{
    assert (conn_p);
    relay_proxy_conn_t *conn = *conn_p;
    if (!conn)
        return;
    if (broken)
        conn->owner->stats.broken++;
    s_free (conn);
    *conn_p = NULL;
}

void
relay_proxy_sweep (relay_proxy_t *self, int64_t now_ms)
{
    if (!self->idle_ms)
        return;
    relay_proxy_conn_t *conn = self->conns;
    while (conn) {
        relay_proxy_conn_t *next = conn->next;
        if (now_ms - conn->last_ms > (int64_t) self->idle_ms)
            s_end (conn);
        conn = next;
    }
}

const relay_proxy_stats_t *relay_proxy_stats (relay_proxy_t *self) { return &self->stats; }

//  ---------------------------------------------------------------------------
//  Self test: a UDP socket plays the relay. A message to the relay arrives as
//  one datagram from the connection's own socket; the answer reaches deliver,
//  then flush; a deliver that drops is counted; the limit refuses; the sweep
//  ends an idle connection and says so; deliver -1 ends it too.

#include <poll.h>
#include <stdio.h>

typedef struct {
    int delivered, flushed, closed;
    int answer;                         //  what deliver returns
    uint8_t last [64];
    size_t last_size;
} s_test_client_t;

static int
s_test_deliver (void *arg, const uint8_t *msg, size_t size)
{
    s_test_client_t *c = (s_test_client_t *) arg;
    c->delivered++;
    c->last_size = size < sizeof c->last ? size : sizeof c->last;
    memcpy (c->last, msg, c->last_size);
    return c->answer;
}

static void s_test_closed (void *arg) { ((s_test_client_t *) arg)->closed++; }
static void s_test_flush (void *arg) { ((s_test_client_t *) arg)->flushed++; }

static int
s_test_stop (bus_loop_t *loop, int timer_id, void *arg)
{
    return -1;
}

//  Runs the loop until the client's count of delivered reaches want (or 2 s)
static void
s_test_run (bus_loop_t *loop, s_test_client_t *c, int want)
{
    for (int i = 0; i < 200 && c->delivered < want; i++) {
        bus_loop_timer (loop, 10, 1, s_test_stop, NULL);
        bus_loop_start (loop);
    }
}

void
relay_proxy_test (bool verbose)
{
    bus_loop_t *loop = bus_loop_new ();
    int relay = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (bind (relay, (struct sockaddr *) &sa, sizeof sa) == 0);
    socklen_t len = sizeof sa;
    getsockname (relay, (struct sockaddr *) &sa, &len);
    assert (relay_proxy_new (loop, "relay.example", 1, 1, 0) == NULL);
    relay_proxy_t *self = relay_proxy_new (loop, "0.0.0.0", ntohs (sa.sin_port), 2, 200);
    assert (self);

    s_test_client_t a = { 0 }, b = { 0 }, c = { 0 };
    relay_proxy_conn_t *ca = relay_proxy_open (self, s_test_deliver, s_test_closed, s_test_flush, &a);
    relay_proxy_conn_t *cb = relay_proxy_open (self, s_test_deliver, s_test_closed, NULL, &b);
    assert (ca && cb);
    assert (relay_proxy_open (self, s_test_deliver, s_test_closed, NULL, &c) == NULL);     //  the limit
    relay_proxy_to_relay (ca, (const uint8_t *) "hello", 5);
    uint8_t buf [64];
    struct sockaddr_storage from;
    socklen_t from_len = sizeof from;
    struct pollfd p = { relay, POLLIN, 0 };
    assert (poll (&p, 1, 2000) == 1);
    assert (recvfrom (relay, buf, sizeof buf, 0, (struct sockaddr *) &from, &from_len) == 5);
    assert (memcmp (buf, "hello", 5) == 0);
    //  Answered to that socket: a's deliver, then flush
    sendto (relay, "answer", 6, 0, (struct sockaddr *) &from, from_len);
    s_test_run (loop, &a, 1);
    assert (a.delivered == 1 && a.last_size == 6 && memcmp (a.last, "answer", 6) == 0 && a.flushed == 1);
    assert (b.delivered == 0);
    //  A client that does not keep up: dropped, counted
    a.answer = 1;
    sendto (relay, "x", 1, 0, (struct sockaddr *) &from, from_len);
    s_test_run (loop, &a, 2);
    assert (relay_proxy_stats (self)->dropped == 1 && relay_proxy_stats (self)->from_relay == 1);
    //  A client that is gone: the proxy ends it and says so
    a.answer = -1;
    sendto (relay, "y", 1, 0, (struct sockaddr *) &from, from_len);
    s_test_run (loop, &a, 3);
    assert (a.closed == 1 && relay_proxy_stats (self)->active == 1);
    //  b is idle: swept after 200 ms, closed called; the transport's own close is silent
    relay_proxy_sweep (self, bus_clock_ms ());
    assert (b.closed == 0);
    relay_proxy_sweep (self, bus_clock_ms () + 201);
    assert (b.closed == 1 && relay_proxy_stats (self)->active == 0);
    relay_proxy_conn_t *cc = relay_proxy_open (self, s_test_deliver, s_test_closed, NULL, &c);
    assert (cc);
    relay_proxy_close (&cc, true);
    assert (cc == NULL && c.closed == 0 && relay_proxy_stats (self)->broken == 1);
    const relay_proxy_stats_t *s = relay_proxy_stats (self);
    if (verbose)
        printf ("relay_proxy: accepted %lu refused %lu closed %lu\n", (unsigned long) s->accepted,
                (unsigned long) s->refused, (unsigned long) s->closed);
    assert (s->accepted == 3 && s->refused == 1 && s->closed == 3 && s->to_relay == 1);
    relay_proxy_destroy (&self);
    close (relay);
    bus_loop_destroy (&loop);
}
