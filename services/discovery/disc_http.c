/*  disc_http: HTTP(S) and WebSocket client on libwebsockets (see disc_http.h). */
#include "disc_http.h"
#include "bus_clock.h"
#include "bus_log.h"
#include <czmq.h>

#include <assert.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct _s_msg_t {
    struct _s_msg_t *next;
    disc_ws_event_t event;
    size_t size;
    char text [];
} s_msg_t;

typedef struct _s_req_t {
    struct _s_req_t *next;
    disc_http_t *owner;
    struct lws *wsi;            //  NULL once lws destroyed it
    bool is_ws;
    bool complete;              //  result known (reply, failure, timeout)
    bool reported;              //  fn called, or cancelled
    bool gone;                  //  lws is done with it: may be freed
    int64_t deadline;
    char method [8];
    char path [1024];
    char auth [300];
    uint8_t *body;              //  LWS_PRE bytes of room, then the body
    size_t body_size;
    int status;
    char *reply;
    size_t reply_size, reply_cap;
    bool overflow;
    disc_http_fn *fn;
    void *arg;
} s_req_t;

struct _disc_http_t {
    struct lws_context *context;
    char host [256];
    uint16_t port;
    bool tls;
    s_req_t *reqs;
    s_req_t *ws;                //  the WebSocket's request, or NULL
    disc_ws_fn *ws_fn;
    void *ws_arg;
    s_msg_t *msgs, **msgs_tail; //  WebSocket events waiting for disc_http_service
    char *frame;                //  fragments of the message being received
    size_t frame_size, frame_cap;
    bool servicing;
};

static void
s_complete (s_req_t *req, int status, const char *reason)
{
    if (req->complete)
        return;
    req->complete = true;
    req->status = status;
    if (reason) {
        free (req->reply);
        req->reply = strdup (reason);
        assert (req->reply);
        req->reply_size = strlen (reason);
    }
}

static void
s_push (disc_http_t *self, disc_ws_event_t event, const char *text, size_t size)
{
    s_msg_t *msg = malloc (sizeof (s_msg_t) + size + 1);
    assert (msg);
    msg->next = NULL;
    msg->event = event;
    msg->size = size;
    if (size)
        memcpy (msg->text, text, size);
    msg->text [size] = 0;
    *self->msgs_tail = msg;
    self->msgs_tail = &msg->next;
}

static void
s_kill (s_req_t *req)
{
    if (req->wsi)
        lws_set_timeout (req->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static bool
s_append (char **buf, size_t *size, size_t *cap, const void *data, size_t len, size_t max)
{
    if (*size + len > max)
        return false;
    if (*size + len + 1 > *cap) {
        size_t cap_new = *cap ? *cap : 4096;
        while (cap_new < *size + len + 1)
            cap_new *= 2;
        char *grown = realloc (*buf, cap_new);
        assert (grown);
        *buf = grown;
        *cap = cap_new;
    }
    memcpy (*buf + *size, data, len);
    *size += len;
    (*buf) [*size] = 0;
    return true;
}

static int
s_callback (struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    s_req_t *req = wsi ? (s_req_t *) lws_get_opaque_user_data (wsi) : NULL;
    if (!req)
        return lws_callback_http_dummy (wsi, reason, user, in, len);
    disc_http_t *self = req->owner;
    switch (reason) {
        case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
            unsigned char **p = (unsigned char **) in, *end = (*p) + len;
            if (req->auth [0]
            &&  lws_add_http_header_by_token (wsi, WSI_TOKEN_HTTP_AUTHORIZATION, (unsigned char *) req->auth,
                                              (int) strlen (req->auth), p, end))
                return -1;
            if (req->body) {
                char length [24];
                snprintf (length, sizeof length, "%zu", req->body_size);
                if (lws_add_http_header_by_token (wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                                  (unsigned char *) "application/json", 16, p, end)
                ||  lws_add_http_header_by_token (wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                                  (unsigned char *) length, (int) strlen (length), p, end))
                    return -1;
                lws_client_http_body_pending (wsi, 1);
                lws_callback_on_writable (wsi);
            }
            break;
        }
        case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
            if (req->body) {
                lws_client_http_body_pending (wsi, 0);
                if (lws_write (wsi, req->body + LWS_PRE, req->body_size, LWS_WRITE_HTTP_FINAL) != (int) req->body_size)
                    return -1;
            }
            break;
        case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
            req->status = (int) lws_http_client_http_response (wsi);
            break;
        case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
            char buffer [4096 + LWS_PRE];
            char *px = buffer + LWS_PRE;
            int lenx = sizeof buffer - LWS_PRE;
            if (lws_http_client_read (wsi, &px, &lenx) < 0)
                return -1;
            break;
        }
        case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
            if (!req->complete && !s_append (&req->reply, &req->reply_size, &req->reply_cap, in, len,
                                             DISC_HTTP_BODY_MAX)) {
                s_complete (req, 0, "reply too big");
                return -1;
            }
            break;
        case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
            if (!req->complete) {
                req->complete = true;
                if (!req->reply)
                    s_append (&req->reply, &req->reply_size, &req->reply_cap, "", 0, 1);
            }
            s_kill (req);           //  one request per connection: close it now
            break;
        case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
            char reason_text [200];
            snprintf (reason_text, sizeof reason_text, "%s", in ? (const char *) in : "connection failed");
            if (req->is_ws && req == self->ws && !req->complete)
                s_push (self, DISC_WS_CLOSED, reason_text, strlen (reason_text));
            s_complete (req, 0, reason_text);
            break;
        }
        case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
            s_complete (req, 0, req->status ? "connection closed before the reply was complete" : "connection closed");
            break;
        case LWS_CALLBACK_CLIENT_ESTABLISHED:
            if (req == self->ws) {
                req->status = 101;
                s_push (self, DISC_WS_OPEN, NULL, 0);
            }
            break;
        case LWS_CALLBACK_CLIENT_RECEIVE:
            if (req != self->ws || req->complete)
                break;
            if (!s_append (&self->frame, &self->frame_size, &self->frame_cap, in, len, DISC_WS_MESSAGE_MAX)) {
                s_push (self, DISC_WS_CLOSED, "event too big", 13);
                s_complete (req, 0, "event too big");
                return -1;
            }
            if (lws_is_final_fragment (wsi) && lws_remaining_packet_payload (wsi) == 0) {
                s_push (self, DISC_WS_MESSAGE, self->frame, self->frame_size);
                self->frame_size = 0;
            }
            break;
        case LWS_CALLBACK_CLIENT_CLOSED:
            if (req == self->ws && !req->complete)
                s_push (self, DISC_WS_CLOSED, "closed by the registry", 22);
            s_complete (req, 0, "closed");
            break;
        case LWS_CALLBACK_WSI_DESTROY:
            if (req->is_ws && req == self->ws && !req->complete)
                s_push (self, DISC_WS_CLOSED, "connection lost", 15);
            s_complete (req, 0, "connection lost");
            req->wsi = NULL;
            req->gone = true;
            lws_set_opaque_user_data (wsi, NULL);
            break;
        default:
            break;
    }
    return lws_callback_http_dummy (wsi, reason, user, in, len);
}

static const struct lws_protocols s_protocols [] = {
    { "bifrost-disc", s_callback, 0, 16384, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void
s_lws_log (int level, const char *line)
{
    bus_log_line (BUS_LOG_WARN, "libwebsockets", line);
}

disc_http_t *
disc_http_new (const char *host, uint16_t port, bool tls, const char *ca_file, char *err, size_t errsize)
{
    disc_http_t *self = calloc (1, sizeof *self);
    assert (self);
    snprintf (self->host, sizeof self->host, "%s", host);
    self->port = port;
    self->tls = tls;
    self->msgs_tail = &self->msgs;
    lws_set_log_level (LLL_ERR, s_lws_log);
    struct lws_context_creation_info info;
    memset (&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = s_protocols;
    info.gid = -1;
    info.uid = -1;
    info.timeout_secs = 10;
    info.connect_timeout_secs = 5;
    if (tls) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        if (ca_file && *ca_file)
            info.client_ssl_ca_filepath = ca_file;
    }
    self->context = lws_create_context (&info);
    if (!self->context) {
        snprintf (err, errsize, "libwebsockets: cannot create a client context%s", tls ? " (TLS, CA file?)" : "");
        free (self);
        return NULL;
    }
    return self;
}

static void
s_free_req (s_req_t *req)
{
    free (req->body);
    free (req->reply);
    free (req);
}

void
disc_http_destroy (disc_http_t **self_p)
{
    assert (self_p);
    disc_http_t *self = *self_p;
    if (!self)
        return;
    //  lws calls WSI_DESTROY for every connection while the context goes
    lws_context_destroy (self->context);
    while (self->reqs) {
        s_req_t *next = self->reqs->next;
        s_free_req (self->reqs);
        self->reqs = next;
    }
    while (self->msgs) {
        s_msg_t *next = self->msgs->next;
        free (self->msgs);
        self->msgs = next;
    }
    free (self->frame);
    free (self);
    *self_p = NULL;
}

static s_req_t *
s_start (disc_http_t *self, const char *method, const char *path, const char *bearer,
         const char *body, int timeout_ms, bool ws)
{
    if (strlen (path) >= sizeof ((s_req_t *) 0)->path || (bearer && strlen (bearer) > 250))
        return NULL;
    s_req_t *req = calloc (1, sizeof *req);
    assert (req);
    req->owner = self;
    req->is_ws = ws;
    req->deadline = bus_clock_ms () + (timeout_ms > 0 ? timeout_ms : 10000);
    snprintf (req->method, sizeof req->method, "%s", method ? method : "GET");
    snprintf (req->path, sizeof req->path, "%s", path);
    if (bearer && *bearer)
        snprintf (req->auth, sizeof req->auth, "Bearer %s", bearer);
    if (body) {
        req->body_size = strlen (body);
        req->body = malloc (LWS_PRE + req->body_size + 1);
        assert (req->body);
        memcpy (req->body + LWS_PRE, body, req->body_size + 1);
    }
    req->next = self->reqs;
    self->reqs = req;

    struct lws_client_connect_info info;
    memset (&info, 0, sizeof info);
    info.context = self->context;
    info.address = self->host;
    info.port = self->port;
    info.path = req->path;
    info.host = self->host;
    info.origin = self->host;
    info.method = ws ? NULL : req->method;
    info.local_protocol_name = s_protocols [0].name;
    info.ssl_connection = self->tls ? LCCSCF_USE_SSL : 0;
    info.ssl_connection |= LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
    info.opaque_user_data = req;
    info.pwsi = &req->wsi;
    if (!lws_client_connect_via_info (&info)) {
        //  lws may have called CONNECTION_ERROR already; either way it holds no wsi
        req->wsi = NULL;
        req->gone = true;
        s_complete (req, 0, "cannot connect");
    }
    return req;
}

int
disc_http_request (disc_http_t *self, const char *method, const char *path, const char *bearer,
                   const char *body, int timeout_ms, disc_http_fn *fn, void *arg)
{
    s_req_t *req = s_start (self, method, path, bearer, body, timeout_ms, false);
    if (!req)
        return -1;
    req->fn = fn;
    req->arg = arg;
    return 0;
}

void
disc_http_ws_close (disc_http_t *self)
{
    if (!self->ws)
        return;
    s_req_t *req = self->ws;
    self->ws = NULL;
    req->reported = true;
    s_complete (req, 0, "closed");
    s_kill (req);
    //  Events already queued for it are dropped
    while (self->msgs) {
        s_msg_t *next = self->msgs->next;
        free (self->msgs);
        self->msgs = next;
    }
    self->msgs_tail = &self->msgs;
    self->frame_size = 0;
}

int
disc_http_ws_open (disc_http_t *self, const char *path, int timeout_ms, disc_ws_fn *fn, void *arg)
{
    disc_http_ws_close (self);
    s_req_t *req = s_start (self, "GET", path, NULL, NULL, timeout_ms, true);
    if (!req)
        return -1;
    req->reported = true;               //  its events go through msgs
    self->ws = req;
    self->ws_fn = fn;
    self->ws_arg = arg;
    if (req->complete)
        s_push (self, DISC_WS_CLOSED, req->reply, req->reply_size);
    return 0;
}

bool
disc_http_ws_active (disc_http_t *self)
{
    return self->ws != NULL;
}

void
disc_http_cancel_all (disc_http_t *self)
{
    for (s_req_t *req = self->reqs; req; req = req->next)
        if (!req->is_ws && !req->reported) {
            req->reported = true;
            s_complete (req, 0, "cancelled");
            s_kill (req);
        }
}

size_t
disc_http_pending (disc_http_t *self)
{
    size_t count = 0;
    for (s_req_t *req = self->reqs; req; req = req->next)
        count += !req->is_ws && !req->reported;
    return count;
}

void
disc_http_service (disc_http_t *self)
{
    if (self->servicing)
        return;                         //  called from a handler: the outer call goes on
    self->servicing = true;
    lws_service (self->context, -1);
    int64_t now = bus_clock_ms ();
    //  Deadlines: a WebSocket must open in time; a request must finish in time
    for (s_req_t *req = self->reqs; req; req = req->next)
        if (!req->complete && now >= req->deadline && (!req->is_ws || req->status != 101)) {
            if (req->is_ws && req == self->ws)
                s_push (self, DISC_WS_CLOSED, "timed out", 9);
            s_complete (req, 0, "timed out");
            s_kill (req);
        }
    //  Results, one by one: a handler may add requests (at the head) or close the
    //  WebSocket, so the walk restarts after every callback
    bool again = true;
    while (again) {
        again = false;
        for (s_req_t *req = self->reqs; req; req = req->next)
            if (req->complete && !req->reported) {
                req->reported = true;
                if (req->fn)
                    req->fn (self, req->status, req->reply ? req->reply : "", req->reply_size, req->arg);
                again = true;
                break;
            }
        if (!again && self->msgs) {
            s_msg_t *msg = self->msgs;
            self->msgs = msg->next;
            if (!self->msgs)
                self->msgs_tail = &self->msgs;
            if (msg->event == DISC_WS_CLOSED)
                self->ws = NULL;
            if (self->ws_fn)
                self->ws_fn (self, msg->event, msg->text, msg->size, self->ws_arg);
            free (msg);
            again = true;
        }
    }
    //  Free what lws and the caller are both done with
    s_req_t **link = &self->reqs;
    while (*link) {
        s_req_t *req = *link;
        if (req->gone && req->reported && req != self->ws) {
            *link = req->next;
            s_free_req (req);
        }
        else
            link = &req->next;
    }
    self->servicing = false;
}

//  --------------------------------------------------------------------------
//  Self test: a tiny HTTP server on loopback in a thread, which answers, or
//  never answers, or is not there at all.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int listener;
    int requests;               //  how many to serve
    bool silent;                //  accept and read, never answer
    char last [2048];           //  the last request received
} s_server_t;

static void *
s_server (void *arg)
{
    s_server_t *server = (s_server_t *) arg;
    for (int n = 0; n < server->requests; n++) {
        int fd = accept (server->listener, NULL, NULL);
        if (fd < 0)
            break;
        size_t got = 0;
        //  Headers and the body (Content-Length is small in this test)
        while (got < sizeof server->last - 1) {
            ssize_t r = read (fd, server->last + got, sizeof server->last - 1 - got);
            if (r <= 0)
                break;
            got += (size_t) r;
            server->last [got] = 0;
            char *end = strstr (server->last, "\r\n\r\n");
            const char *cl = strstr (server->last, "content-length: ");
            if (!cl)
                cl = strstr (server->last, "Content-Length: ");
            size_t want = cl ? (size_t) atoi (cl + 16) : 0;
            if (end && got >= (size_t) (end + 4 - server->last) + want)
                break;
        }
        if (server->silent) {
            sleep (2);
            close (fd);
            continue;
        }
        const char *body = strstr (server->last, "POST") == server->last
                         ? "{\"error\":\"nope\"}" : "{\"peers\":[]}";
        char reply [512];
        snprintf (reply, sizeof reply, "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
                  "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                  strstr (server->last, "POST") == server->last ? "401 Unauthorized" : "200 OK",
                  strlen (body), body);
        if (write (fd, reply, strlen (reply)) < 0)
            break;
        close (fd);
    }
    return NULL;
}

typedef struct {
    int calls, status;
    char body [256];
} s_result_t;

static void
s_on_reply (disc_http_t *http, int status, const char *body, size_t size, void *arg)
{
    s_result_t *result = (s_result_t *) arg;
    result->calls++;
    result->status = status;
    snprintf (result->body, sizeof result->body, "%.*s", (int) size, body);
}

static void
s_wait (disc_http_t *http, s_result_t *result, int timeout_ms)
{
    int64_t deadline = bus_clock_ms () + timeout_ms;
    while (result->calls == 0 && bus_clock_ms () < deadline) {
        disc_http_service (http);
        usleep (2000);
    }
}

static int
s_listener (uint16_t *port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    assert (bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0);
    socklen_t alen = sizeof addr;
    assert (getsockname (fd, (struct sockaddr *) &addr, &alen) == 0);
    *port = ntohs (addr.sin_port);
    return fd;
}

void
disc_http_test (bool verbose)
{
    char err [200];
    uint16_t port;
    s_server_t server = { .requests = 2 };
    server.listener = s_listener (&port);
    assert (listen (server.listener, 8) == 0);
    pthread_t thread;
    assert (pthread_create (&thread, NULL, s_server, &server) == 0);

    disc_http_t *http = disc_http_new ("127.0.0.1", port, false, NULL, err, sizeof err);
    assert (http);
    //  GET with a token: 200 and the body
    s_result_t result = { 0 };
    assert (disc_http_request (http, "GET", "/api/v1/mesh/networks/n/peers", "bpt_secret", NULL, 3000,
                               s_on_reply, &result) == 0);
    assert (disc_http_pending (http) == 1);
    s_wait (http, &result, 3000);
    if (verbose)
        printf ("  GET: %d %s\n", result.status, result.body);
    assert (result.calls == 1 && result.status == 200 && streq (result.body, "{\"peers\":[]}"));
    assert (strstr (server.last, "GET /api/v1/mesh/networks/n/peers HTTP/1.1"));
    assert (strstr (server.last, "Bearer bpt_secret") || strstr (server.last, "bearer bpt_secret"));
    assert (disc_http_pending (http) == 0);
    //  POST with a body: the body arrives, the error status comes back
    memset (&result, 0, sizeof result);
    assert (disc_http_request (http, "POST", "/x", NULL, "{\"a\":1}", 3000, s_on_reply, &result) == 0);
    s_wait (http, &result, 3000);
    if (verbose)
        printf ("  POST: %d %s\n", result.status, result.body);
    assert (result.calls == 1 && result.status == 401 && strstr (result.body, "nope"));
    assert (strstr (server.last, "\r\n\r\n{\"a\":1}"));
    pthread_join (thread, NULL);

    //  A server that never answers: a timeout, reported once
    server.requests = 1;
    server.silent = true;
    assert (pthread_create (&thread, NULL, s_server, &server) == 0);
    memset (&result, 0, sizeof result);
    int64_t start = bus_clock_ms ();
    assert (disc_http_request (http, "GET", "/slow", NULL, NULL, 300, s_on_reply, &result) == 0);
    s_wait (http, &result, 3000);
    if (verbose)
        printf ("  silent server: %d %s after %lld ms\n", result.status, result.body, (long long) (bus_clock_ms () - start));
    assert (result.calls == 1 && result.status == 0 && streq (result.body, "timed out"));
    assert (bus_clock_ms () - start < 1500);
    pthread_join (thread, NULL);
    close (server.listener);

    //  Nobody listening: status 0 with a reason, quickly
    memset (&result, 0, sizeof result);
    assert (disc_http_request (http, "GET", "/", NULL, NULL, 3000, s_on_reply, &result) == 0);
    s_wait (http, &result, 3000);
    if (verbose)
        printf ("  refused: %d %s\n", result.status, result.body);
    assert (result.calls == 1 && result.status == 0 && *result.body);
    //  A WebSocket to nowhere: CLOSED, once
    s_wait (http, &result, 50);
    disc_http_destroy (&http);
    assert (http == NULL);
}
