/*  metrics_http: a scrape's HTTP/1.1 on the bus loop (why and how: metrics_http.h). */
#include "metrics_http.h"
#include "bus_log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <pthread.h>

//  ---------------------------------------------------------------------------
//  The request head

//  The end of the head (after its blank line) in buf [0..len), or 0
static size_t
s_head_end (const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf [i] != '\n')
            continue;
        if (buf [i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && buf [i + 1] == '\r' && buf [i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

size_t
metrics_http_parse (const char *buf, size_t len, metrics_request_t *out)
{
    assert (out);
    memset (out, 0, sizeof *out);
    size_t end = s_head_end (buf, len);
    if (!end) {
        if (len < METRICS_HTTP_HEAD_MAX)
            return 0;
        out->status = 431;
        return len;
    }
    if (end > METRICS_HTTP_HEAD_MAX) {
        out->status = 431;
        return end;
    }
    //  The request line: METHOD SP TARGET SP VERSION
    size_t line = 0;
    while (line < end && buf [line] != '\r' && buf [line] != '\n')
        line++;
    const char *part [3];
    size_t part_len [3], parts = 0, at = 0;
    while (at < line && parts < 3) {
        size_t start = at;
        while (at < line && buf [at] != ' ')
            at++;
        part [parts] = buf + start;
        part_len [parts++] = at - start;
        if (at < line)
            at++;                       //  the one space
    }
    out->status = 400;
    if (parts != 3 || at != line || !part_len [0] || !part_len [1] || !part_len [2])
        return end;
    for (size_t i = 0; i < line; i++)
        if (buf [i] != ' ' && (buf [i] < 0x21 || buf [i] > 0x7e))
            return end;
    if (part_len [2] != 8 || memcmp (part [2], "HTTP/1.", 7) != 0 || (part [2][7] != '0' && part [2][7] != '1')) {
        if (part_len [2] >= 5 && memcmp (part [2], "HTTP/", 5) == 0)
            out->status = 505;
        return end;
    }
    if (part [1][0] != '/')
        return end;
    size_t path_len = 0;
    while (path_len < part_len [1] && part [1][path_len] != '?')
        path_len++;
    if (path_len >= METRICS_HTTP_PATH_MAX) {
        out->status = 414;
        return end;
    }
    memcpy (out->path, part [1], path_len);
    out->path [path_len] = 0;
    bool get = part_len [0] == 3 && memcmp (part [0], "GET", 3) == 0;
    out->head = part_len [0] == 4 && memcmp (part [0], "HEAD", 4) == 0;
    if (!get && !out->head)
        out->status = 405;
    else
        out->status = strcmp (out->path, "/metrics") == 0 ? 200 : 404;
    return end;
}

//  ---------------------------------------------------------------------------
//  The server

typedef enum { S_READING, S_WAITING, S_WRITING } s_state_t;

typedef struct {
    int fd;                             //  -1: slot free
    s_state_t state;
    bool head;                          //  a HEAD request: no body
    int64_t since;                      //  when accepted (ms)
    char in [METRICS_HTTP_HEAD_MAX];
    size_t in_size;
    char *out;                          //  malloc: the whole answer
    size_t out_size, out_sent;
    zmq_pollitem_t item;
} s_conn_t;

struct _metrics_http_t {
    bus_loop_t *loop;
    int fd;
    uint16_t port;
    zmq_pollitem_t item;
    int timer;
    metrics_http_scrape_fn *fn;
    void *arg;
    s_conn_t conns [METRICS_HTTP_CONNS];
};

static int s_conn_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg);

static void
s_close (metrics_http_t *self, s_conn_t *conn)
{
    if (conn->fd < 0)
        return;
    bus_loop_poller_end (self->loop, &conn->item);
    close (conn->fd);
    conn->fd = -1;
    free (conn->out);
    conn->out = NULL;
}

//  Watches the connection for what its state waits for
static void
s_watch (metrics_http_t *self, s_conn_t *conn, short events)
{
    bus_loop_poller_end (self->loop, &conn->item);
    conn->item = (zmq_pollitem_t) { .fd = conn->fd, .events = events };
    if (events && bus_loop_poller (self->loop, &conn->item, s_conn_ready, self))
        s_close (self, conn);
}

static const char *
s_reason (int status)
{
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 414: return "URI Too Long";
        case 431: return "Request Header Fields Too Large";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default:  return "Error";
    }
}

//  Writes what it can of the answer; closes when all is sent or the peer is gone
static void
s_flush (metrics_http_t *self, s_conn_t *conn)
{
    while (conn->out_sent < conn->out_size) {
        ssize_t n = send (conn->fd, conn->out + conn->out_sent, conn->out_size - conn->out_sent, MSG_NOSIGNAL);
        if (n > 0)
            conn->out_sent += (size_t) n;
        else
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (conn->state != S_WRITING) {
                conn->state = S_WRITING;
                s_watch (self, conn, ZMQ_POLLOUT);
            }
            return;
        }
        else
            break;
    }
    s_close (self, conn);
}

//  Starts the answer: status line, headers, and body unless a HEAD
static void
s_respond (metrics_http_t *self, s_conn_t *conn, int status, const char *type, const char *body, size_t size)
{
    char head [256];
    int n = snprintf (head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                      status, s_reason (status), type, size);
    size_t body_size = conn->head ? 0 : size;
    conn->out = (char *) malloc ((size_t) n + body_size + 1);
    assert (conn->out);
    memcpy (conn->out, head, (size_t) n);
    if (body_size)
        memcpy (conn->out + n, body, body_size);
    conn->out_size = (size_t) n + body_size;
    conn->out_sent = 0;
    s_flush (self, conn);
}

static void
s_respond_status (metrics_http_t *self, s_conn_t *conn, int status)
{
    char body [160];
    int n = snprintf (body, sizeof body, "%d %s%s\n", status, s_reason (status),
                      status == 404 ? ": the metrics are at /metrics" : "");
    s_respond (self, conn, status, "text/plain; charset=utf-8", body, (size_t) n);
}

static void
s_read (metrics_http_t *self, s_conn_t *conn)
{
    ssize_t n = recv (conn->fd, conn->in + conn->in_size, sizeof conn->in - conn->in_size, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        s_close (self, conn);
        return;
    }
    if (n < 0)
        return;
    conn->in_size += (size_t) n;
    metrics_request_t request;
    if (metrics_http_parse (conn->in, conn->in_size, &request) == 0)
        return;
    conn->head = request.head;
    if (request.status != 200) {
        s_respond_status (self, conn, request.status);
        return;
    }
    conn->state = S_WAITING;
    s_watch (self, conn, 0);            //  what the client sends more is not read
    self->fn (self, self->arg);
}

static int
s_conn_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    metrics_http_t *self = (metrics_http_t *) arg;
    for (size_t i = 0; i < METRICS_HTTP_CONNS; i++) {
        s_conn_t *conn = &self->conns [i];
        if (conn->fd != item->fd)
            continue;
        if (conn->state == S_READING)
            s_read (self, conn);
        else
        if (conn->state == S_WRITING)
            s_flush (self, conn);
        break;
    }
    return 0;
}

static int
s_accept (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    metrics_http_t *self = (metrics_http_t *) arg;
    for (int round = 0; round < 16; round++) {
        int fd = accept4 (self->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        s_conn_t *conn = NULL;
        for (size_t i = 0; i < METRICS_HTTP_CONNS && !conn; i++)
            if (self->conns [i].fd < 0)
                conn = &self->conns [i];
        if (!conn) {
            const char *busy = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            if (send (fd, busy, strlen (busy), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
                bus_debug ("metrics: 503 not sent: %s", strerror (errno));
            close (fd);
            continue;
        }
        memset (conn, 0, sizeof *conn);
        conn->fd = fd;
        conn->state = S_READING;
        conn->since = zclock_mono ();
        s_watch (self, conn, ZMQ_POLLIN);
    }
    return 0;
}

//  Closes connections that sent no head, or were not answered, in time
static int
s_sweep (bus_loop_t *loop, int timer_id, void *arg)
{
    metrics_http_t *self = (metrics_http_t *) arg;
    int64_t now = zclock_mono ();
    for (size_t i = 0; i < METRICS_HTTP_CONNS; i++) {
        s_conn_t *conn = &self->conns [i];
        if (conn->fd >= 0 && now - conn->since > METRICS_HTTP_IDLE_MS) {
            if (conn->state == S_READING)
                s_respond_status (self, conn, 408);
            else
                s_close (self, conn);
        }
    }
    return 0;
}

metrics_http_t *
metrics_http_new (bus_loop_t *loop, const char *bind_ip, uint16_t port,
                  metrics_http_scrape_fn *fn, void *arg, char *err, size_t err_size)
{
    assert (loop && bind_ip && fn);
    struct sockaddr_storage ss;
    memset (&ss, 0, sizeof ss);
    struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
    socklen_t ss_len;
    if (inet_pton (AF_INET, bind_ip, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons (port);
        ss_len = sizeof *sin;
    }
    else
    if (inet_pton (AF_INET6, bind_ip, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons (port);
        ss_len = sizeof *sin6;
    }
    else {
        snprintf (err, err_size, "'%s' is not a numeric address", bind_ip);
        return NULL;
    }
    int fd = socket (ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf (err, err_size, "socket: %s", strerror (errno));
        return NULL;
    }
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind (fd, (struct sockaddr *) &ss, ss_len) || listen (fd, 64)) {
        snprintf (err, err_size, "cannot listen on %s port %u: %s", bind_ip, port, strerror (errno));
        close (fd);
        return NULL;
    }
    ss_len = sizeof ss;
    getsockname (fd, (struct sockaddr *) &ss, &ss_len);
    metrics_http_t *self = (metrics_http_t *) calloc (1, sizeof *self);
    assert (self);
    self->loop = loop;
    self->fd = fd;
    self->port = ntohs (ss.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port);
    self->fn = fn;
    self->arg = arg;
    for (size_t i = 0; i < METRICS_HTTP_CONNS; i++)
        self->conns [i].fd = -1;
    self->item = (zmq_pollitem_t) { .fd = fd, .events = ZMQ_POLLIN };
    if (bus_loop_poller (loop, &self->item, s_accept, self)) {
        snprintf (err, err_size, "cannot watch the listening socket");
        close (fd);
        free (self);
        return NULL;
    }
    self->timer = bus_loop_timer (loop, 500, 0, s_sweep, self);
    return self;
}

void
metrics_http_destroy (metrics_http_t **self_p)
{
    assert (self_p);
    metrics_http_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < METRICS_HTTP_CONNS; i++)
        s_close (self, &self->conns [i]);
    bus_loop_timer_end (self->loop, self->timer);
    bus_loop_poller_end (self->loop, &self->item);
    close (self->fd);
    free (self);
    *self_p = NULL;
}

uint16_t
metrics_http_port (metrics_http_t *self)
{
    return self->port;
}

void
metrics_http_answer (metrics_http_t *self, const char *body, size_t size)
{
    for (size_t i = 0; i < METRICS_HTTP_CONNS; i++) {
        s_conn_t *conn = &self->conns [i];
        if (conn->fd >= 0 && conn->state == S_WAITING)
            s_respond (self, conn, 200, "text/plain; version=0.0.4; charset=utf-8", body, size);
    }
}

size_t
metrics_http_waiting (metrics_http_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < METRICS_HTTP_CONNS; i++)
        n += self->conns [i].fd >= 0 && self->conns [i].state == S_WAITING;
    return n;
}

int
metrics_http_split_listen (const char *text, char *ip, size_t ip_size, uint16_t *port)
{
    if (!text || !*text)
        return -1;
    const char *colon;
    const char *host = text;
    size_t host_len;
    if (*text == '[') {
        const char *close_br = strchr (text, ']');
        if (!close_br || close_br [1] != ':')
            return -1;
        host = text + 1;
        host_len = (size_t) (close_br - host);
        colon = close_br + 1;
    }
    else {
        colon = strrchr (text, ':');
        if (!colon || memchr (text, ':', (size_t) (colon - text)))
            return -1;
        host_len = (size_t) (colon - text);
    }
    if (host_len == 0 || host_len >= ip_size)
        return -1;
    char *end;
    errno = 0;
    long p = strtol (colon + 1, &end, 10);
    if (!colon [1] || *end || errno || p < 0 || p > 65535)
        return -1;
    memcpy (ip, host, host_len);
    ip [host_len] = 0;
    unsigned char buf [16];
    if (inet_pton (*text == '[' ? AF_INET6 : AF_INET, ip, buf) != 1)
        return -1;
    *port = (uint16_t) p;
    return 0;
}

bool
metrics_http_is_loopback (const char *ip)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton (AF_INET, ip, &a4) == 1)
        return (ntohl (a4.s_addr) >> 24) == 127;
    if (inet_pton (AF_INET6, ip, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK (&a6);
    return false;
}

//  ---------------------------------------------------------------------------
//  Self test: the parser's answers; a real server on a loop, scraped through
//  a TCP socket, and a path it refuses

static int
s_test_status (const char *text)
{
    metrics_request_t r;
    size_t n = metrics_http_parse (text, strlen (text), &r);
    return n ? r.status : 0;
}

static void
s_test_scrape (metrics_http_t *http, void *arg)
{
    metrics_http_answer (http, "x 1\n", 4);
}

//  Sends req to port, reads everything the server says until it closes
static void
s_test_client (uint16_t port, const char *req, char *out, size_t out_size)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons (port) };
    sin.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (connect (fd, (struct sockaddr *) &sin, sizeof sin) == 0);
    assert (send (fd, req, strlen (req), 0) == (ssize_t) strlen (req));
    size_t got = 0;
    ssize_t n;
    while ((n = recv (fd, out + got, out_size - got - 1, 0)) > 0)
        got += (size_t) n;
    out [got] = 0;
    close (fd);
}

typedef struct {
    uint16_t port;
    char answers [3][512];
} s_test_t;

static void *
s_test_thread (void *arg)
{
    s_test_t *t = (s_test_t *) arg;
    s_test_client (t->port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", t->answers [0], sizeof t->answers [0]);
    s_test_client (t->port, "GET /other HTTP/1.0\n\n", t->answers [1], sizeof t->answers [1]);
    s_test_client (t->port, "HEAD /metrics?x=1 HTTP/1.1\r\n\r\n", t->answers [2], sizeof t->answers [2]);
    return NULL;
}

//  Ends the loop once the client thread is done (or after 5 s: then the
//  asserts below fail)
typedef struct { pthread_t thread; bool joined; int64_t until; } s_test_join_t;

static int
s_test_stop (bus_loop_t *loop, int timer_id, void *arg)
{
    s_test_join_t *join = (s_test_join_t *) arg;
    if (pthread_tryjoin_np (join->thread, NULL) == 0)
        join->joined = true;
    return join->joined || zclock_mono () > join->until ? -1 : 0;
}

void
metrics_http_test (bool verbose)
{
    assert (s_test_status ("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n") == 200);
    assert (s_test_status ("GET /metrics?name[]=x HTTP/1.0\n\n") == 200);
    assert (s_test_status ("GET /metrics HTTP/1.1\r\nHost: a\r\n") == 0);        //  more to come
    assert (s_test_status ("GET / HTTP/1.1\r\n\r\n") == 404);
    assert (s_test_status ("POST /metrics HTTP/1.1\r\n\r\n") == 405);
    assert (s_test_status ("GET /metrics HTTP/2.0\r\n\r\n") == 505);
    assert (s_test_status ("GET  /metrics HTTP/1.1\r\n\r\n") == 400);
    assert (s_test_status ("GET metrics HTTP/1.1\r\n\r\n") == 400);
    assert (s_test_status ("GET /metrics\r\n\r\n") == 400);
    assert (s_test_status ("GET /met\x01rics HTTP/1.1\r\n\r\n") == 400);
    char big [METRICS_HTTP_HEAD_MAX + 10];
    memset (big, 'a', sizeof big);
    metrics_request_t r;
    assert (metrics_http_parse (big, sizeof big, &r) == sizeof big && r.status == 431);
    char longpath [600];
    snprintf (longpath, sizeof longpath, "GET /%0400d HTTP/1.1\r\n\r\n", 0);
    assert (s_test_status (longpath) == 414);

    char ip [64];
    uint16_t port;
    assert (metrics_http_split_listen ("127.0.0.1:9475", ip, sizeof ip, &port) == 0 && port == 9475);
    assert (metrics_http_split_listen ("[::1]:0", ip, sizeof ip, &port) == 0 && streq (ip, "::1"));
    assert (metrics_http_split_listen ("localhost:9475", ip, sizeof ip, &port) == -1);
    assert (metrics_http_split_listen ("::1:9475", ip, sizeof ip, &port) == -1);
    assert (metrics_http_split_listen ("127.0.0.1:70000", ip, sizeof ip, &port) == -1);
    assert (metrics_http_is_loopback ("127.0.0.53") && metrics_http_is_loopback ("::1"));
    assert (!metrics_http_is_loopback ("0.0.0.0") && !metrics_http_is_loopback ("192.0.2.1"));

    //  A real server: three clients in a thread, the loop here
    bus_loop_t *loop = bus_loop_new ();
    char err [200];
    metrics_http_t *http = metrics_http_new (loop, "127.0.0.1", 0, s_test_scrape, NULL, err, sizeof err);
    assert (http && metrics_http_port (http) > 0);
    s_test_t t = { .port = metrics_http_port (http) };
    s_test_join_t join = { .until = zclock_mono () + 5000 };
    assert (pthread_create (&join.thread, NULL, s_test_thread, &t) == 0);
    bus_loop_timer (loop, 10, 0, s_test_stop, &join);
    bus_loop_start (loop);
    if (!join.joined)
        pthread_join (join.thread, NULL);
    if (verbose)
        printf ("%s---\n%s---\n%s", t.answers [0], t.answers [1], t.answers [2]);
    assert (strstr (t.answers [0], "HTTP/1.1 200 OK\r\n") && strstr (t.answers [0], "version=0.0.4"));
    assert (strstr (t.answers [0], "\r\n\r\nx 1\n"));
    assert (strstr (t.answers [1], "HTTP/1.1 404 "));
    assert (strstr (t.answers [2], "HTTP/1.1 200 OK\r\n") && strstr (t.answers [2], "Content-Length: 4\r\n"));
    assert (!strstr (t.answers [2], "x 1"));
    metrics_http_destroy (&http);
    bus_loop_destroy (&loop);
    if (verbose)
        printf ("metrics_http: ok\n");
}
