/*  reg_http: libwebsockets transport in a service thread (see reg_http.h). */
#include "reg_http.h"
#include "reg_ratelimit.h"
#include "reg_page.h"
#include "reg_ticket.h"
#include "bus_log.h"
#include <assert.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sodium.h>

#define PATH_MAX_LEN 512
#define BEARER_MAX 256
#define CHUNK 16384

typedef enum { S_IDLE, S_BODY, S_RESPOND } s_state_t;

//  Per connection (lws allocates and zeroes it; HTTP keep-alive reuses it).
typedef struct {
    s_state_t state;
    char method [8];
    char path [PATH_MAX_LEN];
    char bearer [BEARER_MAX];
    char *body;
    size_t body_size;
    bool too_large;
    int status;
    char *resp;
    size_t resp_size, resp_sent;
    bool headers_sent, close_after;
    const char *type;           //  Content-Type of the response (NULL: JSON)
    bool page;                  //  a status page file: its security headers
    //  WebSocket
    char network [64], peer [32];
    reg_sub_t *sub;
    bool ws;
} s_session_t;

struct _reg_http_t {
    reg_api_t *api;
    struct lws_context *context;
    struct lws_protocols protocols [2];
    reg_ratelimit_t *limit;
    size_t max_body;
    int port;
    int64_t sweep_ms;
    lws_sorted_usec_list_t sweep_sul;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    atomic_int_fast64_t last_tick_ms;
};

//  ---------------------------------------------------------------------------
//  The service thread. It alone touches lws and the api from reg_http_new to
//  reg_http_destroy; the sweep runs on an lws timer in the same thread.

static void
s_on_sweep (lws_sorted_usec_list_t *sul)
{
    reg_http_t *self = (reg_http_t *) ((char *) sul - offsetof (reg_http_t, sweep_sul));
    int64_t now = zclock_time ();
    reg_api_sweep (self->api, now);
    atomic_store (&self->last_tick_ms, now);
    lws_sul_schedule (self->context, 0, &self->sweep_sul, s_on_sweep, self->sweep_ms * LWS_US_PER_MS);
}

static void *
s_thread (void *arg)
{
    reg_http_t *self = (reg_http_t *) arg;
    lws_sul_schedule (self->context, 0, &self->sweep_sul, s_on_sweep, 1);
    while (!atomic_load (&self->stop))
        if (lws_service (self->context, 0) < 0)
            break;
    return NULL;
}

//  ---------------------------------------------------------------------------
//  Sessions

static void
s_session_reset (s_session_t *s)
{
    free (s->body);
    free (s->resp);
    s->body = NULL;
    s->resp = NULL;
    s->body_size = s->resp_size = s->resp_sent = 0;
    s->too_large = s->headers_sent = s->close_after = s->page = false;
    s->type = NULL;
    s->state = S_IDLE;
    s->bearer [0] = 0;
}

static void
s_respond_text (struct lws *wsi, s_session_t *s, int status, char *body)
{
    free (s->resp);
    s->status = status;
    s->resp = body;
    s->resp_size = body ? strlen (body) : 0;
    s->resp_sent = 0;
    s->headers_sent = false;
    s->state = S_RESPOND;
    lws_callback_on_writable (wsi);
}

static void
s_respond_error (struct lws *wsi, s_session_t *s, int status, const char *message)
{
    json_t *body = json_pack ("{s:s}", "error", message);
    s_respond_text (wsi, s, status, json_dumps (body, JSON_COMPACT));
    json_decref (body);
}

//  The client's address as the TCP connection shows it: the peer of the
//  socket, never a header a client could write (X-Forwarded-For). An IPv4
//  client of a dual-stack socket ("::ffff:192.0.2.1") is its IPv4 address,
//  so one client has one text for the rate limit and the reflexive address.
static void
s_client (struct lws *wsi, char *addr, size_t size)
{
    addr [0] = 0;
    lws_get_peer_simple (wsi, addr, size);
    if (strncasecmp (addr, "::ffff:", 7) == 0 && strchr (addr + 7, '.'))
        memmove (addr, addr + 7, strlen (addr + 7) + 1);
}

//  A file of the status page (reg_page): to anyone, as it holds no secret;
//  what it shows comes from the routes that need the admin token
static void
s_serve_page (struct lws *wsi, s_session_t *s)
{
    const reg_page_file_t *file = reg_page_find (s->path);
    if (strcmp (s->method, "GET") != 0)
        s_respond_error (wsi, s, 405, "method not allowed (allowed: GET)");
    else
    if (!file)
        s_respond_error (wsi, s, 404, "no such file");
    else {
        char *copy = (char *) malloc (file->size + 1);
        assert (copy);
        memcpy (copy, file->data, file->size + 1);
        s_respond_text (wsi, s, 200, copy);
        s->type = file->type;
    }
    s->page = true;
}

static void
s_process (reg_http_t *self, struct lws *wsi, s_session_t *s)
{
    if (s->too_large) {
        s->close_after = true;
        char text [100];
        snprintf (text, sizeof text, "request body larger than %zu bytes", self->max_body);
        s_respond_error (wsi, s, 413, text);
        return;
    }
    char client [64];
    s_client (wsi, client, sizeof client);
    reg_request_t req = { .method = s->method, .path = s->path, .bearer = s->bearer [0] ? s->bearer : NULL,
                          .body = s->body, .body_size = s->body_size, .now_ms = zclock_time (),
                          .client = *client ? client : NULL };
    reg_response_t resp;
    reg_api_handle (self->api, &req, &resp);
    bus_debug ("%s %s -> %d", s->method, s->path, resp.status);
    s_respond_text (wsi, s, resp.status, resp.body);     //  takes the body
}

//  Writes the next part of the response; returns -1 to close.
static int
s_write_response (struct lws *wsi, s_session_t *s)
{
    uint8_t buf [LWS_PRE + CHUNK];
    uint8_t *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    if (!s->headers_sent) {
        if (lws_add_http_common_headers (wsi, (unsigned int) s->status, s->type ? s->type : "application/json",
                                         s->resp_size, &p, end))
            return -1;
        static const char *const page_headers [][2] = {
            { "content-security-policy:", REG_PAGE_CSP }, { "x-content-type-options:", "nosniff" },
            { "referrer-policy:", "no-referrer" }, { "x-frame-options:", "DENY" },
        };
        for (size_t i = 0; s->page && i < sizeof page_headers / sizeof page_headers [0]; i++)
            if (lws_add_http_header_by_name (wsi, (const uint8_t *) page_headers [i][0],
                                             (const uint8_t *) page_headers [i][1],
                                             (int) strlen (page_headers [i][1]), &p, end))
                return -1;
        //  Too many requests, or the database is locked (reg_api): both pass
        if ((s->status == 429 || s->status == 503) && lws_add_http_header_by_name (wsi, (const uint8_t *) "retry-after:",
                                                             (const uint8_t *) "1", 1, &p, end))
            return -1;
        if (lws_add_http_header_by_name (wsi, (const uint8_t *) "cache-control:",
                                         (const uint8_t *) "no-store", 8, &p, end))
            return -1;
        if (lws_finalize_write_http_header (wsi, start, &p, end))
            return -1;
        s->headers_sent = true;
        if (s->resp_size > 0) {
            lws_callback_on_writable (wsi);
            return 0;
        }
    }
    else {
        size_t left = s->resp_size - s->resp_sent;
        size_t take = left < CHUNK ? left : CHUNK;
        memcpy (start, s->resp + s->resp_sent, take);
        bool last = take == left;
        if (lws_write (wsi, start, take, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int) take)
            return -1;
        s->resp_sent += take;
        if (!last) {
            lws_callback_on_writable (wsi);
            return 0;
        }
    }
    bool close_after = s->close_after;
    s_session_reset (s);
    if (close_after)
        return -1;
    return lws_http_transaction_completed (wsi) ? -1 : 0;
}

static const struct {
    enum lws_token_indexes token;
    const char *method;
} s_methods [] = {
    { WSI_TOKEN_GET_URI, "GET" }, { WSI_TOKEN_POST_URI, "POST" }, { WSI_TOKEN_PUT_URI, "PUT" },
    { WSI_TOKEN_DELETE_URI, "DELETE" }, { WSI_TOKEN_PATCH_URI, "PATCH" },
    { WSI_TOKEN_OPTIONS_URI, "OPTIONS" }, { WSI_TOKEN_HEAD_URI, "HEAD" },
};

//  The bearer token of a request: Authorization header, or ?token= for
//  WebSocket clients (browsers cannot set headers on a WebSocket).
static void
s_bearer (struct lws *wsi, s_session_t *s, bool allow_query)
{
    char auth [BEARER_MAX + 16];
    s->bearer [0] = 0;
    if (lws_hdr_copy (wsi, auth, sizeof auth, WSI_TOKEN_HTTP_AUTHORIZATION) > 0) {
        if (strncasecmp (auth, "Bearer ", 7) == 0 && strlen (auth + 7) < sizeof s->bearer)
            memcpy (s->bearer, auth + 7, strlen (auth + 7) + 1);
        else
            snprintf (s->bearer, sizeof s->bearer, "%s", "(not a usable bearer token)");
    }
    else
    if (allow_query) {
        char arg [BEARER_MAX + 8];
        const char *value = lws_get_urlarg_by_name (wsi, "token=", arg, sizeof arg);
        if (value && strlen (value) < sizeof s->bearer)
            memcpy (s->bearer, value, strlen (value) + 1);
    }
}

static bool
s_allowed (reg_http_t *self, struct lws *wsi)
{
    char addr [64];
    s_client (wsi, addr, sizeof addr);
    return reg_ratelimit_allow (self->limit, addr, zclock_time ());
}

static void
s_wake (void *handle, void *arg)
{
    lws_callback_on_writable ((struct lws *) handle);
}

static int
s_callback (struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct lws_context *context = lws_get_context (wsi);
    reg_http_t *self = context ? (reg_http_t *) lws_context_user (context) : NULL;
    s_session_t *s = (s_session_t *) user;
    switch (reason) {
        case LWS_CALLBACK_HTTP: {
            s_session_reset (s);
            snprintf (s->method, sizeof s->method, "?");
            for (size_t i = 0; i < sizeof s_methods / sizeof s_methods [0]; i++)
                if (lws_hdr_total_length (wsi, s_methods [i].token) > 0)
                    snprintf (s->method, sizeof s->method, "%s", s_methods [i].method);
            if (strlen ((const char *) in) >= sizeof s->path) {
                s_respond_error (wsi, s, 414, "path too long");
                return 0;
            }
            snprintf (s->path, sizeof s->path, "%s", (const char *) in);
            if (!s_allowed (self, wsi)) {
                s_respond_error (wsi, s, 429, "too many requests");
                return 0;
            }
            if (reg_page_is (s->path)) {
                s_serve_page (wsi, s);
                return 0;
            }
            s_bearer (wsi, s, false);
            char length [32] = "";
            long long content_length = 0;
            if (lws_hdr_copy (wsi, length, sizeof length, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
                content_length = atoll (length);
            if (content_length < 0 || (size_t) content_length > self->max_body) {
                s->too_large = true;
                s_process (self, wsi, s);
            }
            else
            if (content_length > 0 && (strcmp (s->method, "POST") == 0 || strcmp (s->method, "PUT") == 0
                                       || strcmp (s->method, "PATCH") == 0)) {
                s->body = (char *) malloc ((size_t) content_length);
                assert (s->body);
                s->state = S_BODY;
            }
            else
                s_process (self, wsi, s);
            return 0;
        }
        case LWS_CALLBACK_HTTP_BODY:
            if (s->state != S_BODY)
                return 0;
            if (s->too_large || s->body_size + len > self->max_body) {
                s->too_large = true;
                return 0;
            }
            //  Never more than Content-Length: the buffer was sized by it
            {
                char length [32] = "";
                lws_hdr_copy (wsi, length, sizeof length, WSI_TOKEN_HTTP_CONTENT_LENGTH);
                if (s->body_size + len > (size_t) atoll (length)) {
                    s->too_large = true;
                    return 0;
                }
            }
            memcpy (s->body + s->body_size, in, len);
            s->body_size += len;
            return 0;
        case LWS_CALLBACK_HTTP_BODY_COMPLETION:
            if (s->state == S_BODY)
                s_process (self, wsi, s);
            return 0;
        case LWS_CALLBACK_HTTP_WRITEABLE:
            if (s->state != S_RESPOND)
                return 0;
            return s_write_response (wsi, s);
        case LWS_CALLBACK_CLOSED_HTTP:
        case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
            if (s)
                s_session_reset (s);
            return 0;

        //  WebSocket events
        case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
            if (!s_allowed (self, wsi))
                return 1;
            char path [PATH_MAX_LEN] = "";
            if (lws_hdr_copy (wsi, path, sizeof path, WSI_TOKEN_GET_URI) <= 0)
                return 1;
            s_bearer (wsi, s, true);
            //  The status page's one-use ticket (reg_ticket.h), never logged
            char arg [REG_TOKEN_TEXT + 8];
            const char *ticket = lws_get_urlarg_by_name (wsi, "ticket=", arg, sizeof arg);
            int status = reg_api_events_auth (self->api, path, s->bearer [0] ? s->bearer : NULL, ticket,
                                              zclock_time (), s->network, s->peer);
            s->bearer [0] = 0;
            sodium_memzero (arg, sizeof arg);
            if (status) {
                bus_debug ("websocket %s refused: %d", path, status);
                //  Its HTTP status, so a client (a browser's console, curl) sees why
                lws_return_http_status (wsi, (unsigned int) status, NULL);
                return 1;
            }
            return 0;
        }
        case LWS_CALLBACK_ESTABLISHED: {
            s->ws = true;
            s->sub = reg_events_subscribe (reg_api_events (self->api), s->network,
                                           s->peer [0] ? s->peer : NULL, wsi);
            json_t *hello = json_pack ("{s:s,s:s,s:s?}", "event", "subscribed", "network", s->network,
                                       "peer", s->peer [0] ? s->peer : NULL);
            reg_sub_push (s->sub, hello);
            json_decref (hello);
            return 0;
        }
        case LWS_CALLBACK_SERVER_WRITEABLE: {
            if (!s->sub)
                return -1;
            size_t size = 0;
            const char *msg = reg_sub_peek (s->sub, &size);
            if (!msg) {
                if (reg_sub_closing (s->sub)) {
                    lws_close_reason (wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *) "bye", 3);
                    return -1;
                }
                return 0;
            }
            uint8_t *buf = (uint8_t *) malloc (LWS_PRE + size);
            assert (buf);
            memcpy (buf + LWS_PRE, msg, size);
            int written = lws_write (wsi, buf + LWS_PRE, size, LWS_WRITE_TEXT);
            free (buf);
            if (written < (int) size)
                return -1;
            reg_sub_pop (s->sub);
            if (reg_sub_peek (s->sub, NULL) || reg_sub_closing (s->sub))
                lws_callback_on_writable (wsi);
            return 0;
        }
        case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
            return 0;           //  reg_http_destroy woke us to stop
        case LWS_CALLBACK_RECEIVE:
            return 0;           //  clients speak over REST; ignore anything sent here
        case LWS_CALLBACK_CLOSED:
            if (s && s->sub)
                reg_events_unsubscribe (reg_api_events (self->api), &s->sub);
            return 0;
        default:
            return 0;
    }
}

//  ---------------------------------------------------------------------------

static void
s_lws_log (int level, const char *line)
{
    char text [300];
    snprintf (text, sizeof text, "%s", line);
    size_t len = strlen (text);
    while (len && (text [len - 1] == '\n' || text [len - 1] == '\r'))
        text [--len] = 0;
    if (level & LLL_ERR)
        bus_warn ("lws: %s", text);
    else
        bus_debug ("lws: %s", text);
}

int
reg_http_parse_listen (const char *text, char *host, size_t host_size, int *port)
{
    if (!text || !*text)
        return -1;
    const char *colon;
    if (text [0] == '[') {
        const char *close = strchr (text, ']');
        if (!close || close [1] != ':')
            return -1;
        if ((size_t) (close - text - 1) >= host_size)
            return -1;
        memcpy (host, text + 1, (size_t) (close - text - 1));
        host [close - text - 1] = 0;
        colon = close + 1;
    }
    else {
        colon = strrchr (text, ':');
        if (!colon || (size_t) (colon - text) >= host_size || strchr (text, ':') != colon)
            return -1;
        memcpy (host, text, (size_t) (colon - text));
        host [colon - text] = 0;
    }
    char *endp = NULL;
    long value = strtol (colon + 1, &endp, 10);
    if (!colon [1] || *endp || value < 0 || value > 65535)
        return -1;
    *port = (int) value;
    return 0;
}

//  Binds the address once ourselves: a clear errno for the operator ("Address
//  already in use", "Cannot assign requested address"), and lws's failing
//  create path (which leaks a little in 4.1) is only reached on a race.
static int
s_probe_bind (const char *host, int port, char *err, size_t errsize)
{
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    bool any = strcmp (host, "*") == 0 || !*host;
    if (getaddrinfo (any ? NULL : host, "0", &hints, &res) != 0 || !res) {
        snprintf (err, errsize, "listen address '%s' is not a numeric IPv4 or IPv6 address", host);
        return -1;
    }
    int fd = socket (res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (res->ai_family == AF_INET)
        ((struct sockaddr_in *) res->ai_addr)->sin_port = htons ((uint16_t) port);
    else
        ((struct sockaddr_in6 *) res->ai_addr)->sin6_port = htons ((uint16_t) port);
    int rc = fd >= 0 ? bind (fd, res->ai_addr, res->ai_addrlen) : -1;
    if (rc != 0)
        snprintf (err, errsize, "cannot listen on %s port %d: %s", host, port, strerror (errno));
    if (fd >= 0)
        close (fd);
    freeaddrinfo (res);
    return rc == 0 ? 0 : -1;
}

reg_http_t *
reg_http_new (reg_api_t *api, const reg_http_config_t *config, char *err, size_t errsize)
{
    char host [128];
    int port;
    if (reg_http_parse_listen (config->listen, host, sizeof host, &port)) {
        snprintf (err, errsize, "listen address '%s' must be host:port or [v6]:port", config->listen);
        return NULL;
    }
    if (!config->tls_cert != !config->tls_key) {
        snprintf (err, errsize, "tls_cert and tls_key must be set together");
        return NULL;
    }
    if (s_probe_bind (host, port, err, errsize))
        return NULL;
    const char *files [2] = { config->tls_cert, config->tls_key };
    for (int i = 0; i < 2; i++)
        if (files [i] && access (files [i], R_OK) != 0) {
            snprintf (err, errsize, "cannot read %s: %s", files [i], strerror (errno));
            return NULL;
        }
    reg_http_t *self = (reg_http_t *) calloc (1, sizeof *self);
    assert (self);
    self->api = api;
    self->sweep_ms = config->sweep_ms > 0 ? config->sweep_ms : 250;
    atomic_store (&self->last_tick_ms, zclock_time ());
    self->max_body = config->max_body ? config->max_body : 65536;
    self->limit = reg_ratelimit_new (config->rate, config->burst, 65536);
    reg_events_set_wake (reg_api_events (api), s_wake, self);
    self->protocols [0] = (struct lws_protocols) {
        .name = "bifrost-registry", .callback = s_callback,
        .per_session_data_size = sizeof (s_session_t), .rx_buffer_size = 0,
    };
    lws_set_log_level (LLL_ERR | LLL_WARN, s_lws_log);

    struct lws_context_creation_info info;
    memset (&info, 0, sizeof info);
    info.port = port;
    bool any = strcmp (host, "0.0.0.0") == 0 || strcmp (host, "*") == 0 || strcmp (host, "::") == 0;
    info.iface = any ? NULL : host;
    info.protocols = self->protocols;
    info.user = self;
    info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND | LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (strchr (host, '.') || strcmp (host, "0.0.0.0") == 0)
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    if (config->tls_cert) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = config->tls_cert;
        info.ssl_private_key_filepath = config->tls_key;
    }
    info.timeout_secs = 20;
    info.max_http_header_data = 4096;
    info.fd_limit_per_thread = 0;
    self->context = lws_create_context (&info);
    if (!self->context) {
        snprintf (err, errsize, "cannot listen on %s (in use, or not a local address?)", config->listen);
        reg_http_destroy (&self);
        return NULL;
    }
    struct lws_vhost *vhost = lws_get_vhost_by_name (self->context, "default");
    self->port = vhost ? lws_get_vhost_listen_port (vhost) : port;
    if (pthread_create (&self->thread, NULL, s_thread, self) != 0) {
        snprintf (err, errsize, "cannot start the service thread");
        reg_http_destroy (&self);
        return NULL;
    }
    self->started = true;
    bus_info ("listening on %s%s%s:%d (%s)", strchr (host, ':') ? "[" : "", host,
              strchr (host, ':') ? "]" : "", self->port, config->tls_cert ? "https" : "http");
    return self;
}

void
reg_http_destroy (reg_http_t **self_p)
{
    reg_http_t *self = *self_p;
    if (!self)
        return;
    if (self->started) {
        atomic_store (&self->stop, true);
        lws_cancel_service (self->context);
        pthread_join (self->thread, NULL);
    }
    if (self->context)
        lws_context_destroy (self->context);     //  closes every wsi (LWS_CALLBACK_CLOSED unsubscribes)
    reg_events_set_wake (reg_api_events (self->api), NULL, NULL);
    reg_ratelimit_destroy (&self->limit);
    free (self);
    *self_p = NULL;
}

int reg_http_port (reg_http_t *self) { return self->port; }

int64_t
reg_http_idle_ms (reg_http_t *self)
{
    return zclock_time () - atomic_load (&self->last_tick_ms);
}

//  ---------------------------------------------------------------------------
//  Self test: a real server on 127.0.0.1 (any port), raw HTTP from a socket.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

//  Sends a request and returns the status of the response (-1 on no answer).
static int
s_test_request (int port, const char *request, char *body, size_t body_size)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0);
    struct timeval tv = { 5, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert (write (fd, request, strlen (request)) == (ssize_t) strlen (request));
    char buf [4096];
    size_t have = 0;
    //  Read until the whole body announced by Content-Length is there
    while (have < sizeof buf - 1) {
        ssize_t r = read (fd, buf + have, sizeof buf - 1 - have);
        if (r <= 0)
            break;
        have += (size_t) r;
        buf [have] = 0;
        char *end = strstr (buf, "\r\n\r\n");
        const char *cl = strcasestr (buf, "content-length:");
        if (end && cl && have >= (size_t) (end + 4 - buf) + (size_t) atol (cl + 15))
            break;
    }
    close (fd);
    buf [have] = 0;
    if (have < 12 || strncmp (buf, "HTTP/1.1 ", 9) != 0)
        return -1;
    char *end = strstr (buf, "\r\n\r\n");
    snprintf (body, body_size, "%s", end ? end + 4 : "");
    return atoi (buf + 9);
}

void
reg_http_test (bool verbose)
{
    char host [64];
    int port;
    assert (reg_http_parse_listen ("0.0.0.0:7080", host, sizeof host, &port) == 0);
    assert (strcmp (host, "0.0.0.0") == 0 && port == 7080);
    assert (reg_http_parse_listen ("[::1]:0", host, sizeof host, &port) == 0);
    assert (strcmp (host, "::1") == 0 && port == 0);
    assert (reg_http_parse_listen ("::1:80", host, sizeof host, &port) == -1);
    assert (reg_http_parse_listen ("127.0.0.1", host, sizeof host, &port) == -1);
    assert (reg_http_parse_listen ("127.0.0.1:99999", host, sizeof host, &port) == -1);
    assert (reg_http_parse_listen ("127.0.0.1:x", host, sizeof host, &port) == -1);
    assert (reg_http_parse_listen ("", host, sizeof host, &port) == -1);

    char db [] = "/tmp/reg_http_test.XXXXXX";
    int fd = mkstemp (db);
    assert (fd >= 0);
    close (fd);
    char err [300];
    reg_api_t *api = reg_api_new (&(reg_api_config_t) { .database = db, .admin_token = "adm" }, err, sizeof err);
    assert (api);
    //  Missing certificate files are a clear error
    assert (reg_http_new (api, &(reg_http_config_t) { .listen = "127.0.0.1:0", .tls_cert = "/nonexistent.pem",
                                                      .tls_key = "/nonexistent.pem" }, err, sizeof err) == NULL);
    assert (strstr (err, "/nonexistent.pem"));
    assert (reg_http_new (api, &(reg_http_config_t) { .listen = "127.0.0.1" }, err, sizeof err) == NULL);
    reg_http_t *http = reg_http_new (api, &(reg_http_config_t) {
        .listen = "127.0.0.1:0", .max_body = 2048, .rate = 1, .burst = 5 }, err, sizeof err);
    assert (http);
    port = reg_http_port (http);
    assert (port > 0);
    char body [4096], request [4096];
    assert (s_test_request (port, "GET /client/meta HTTP/1.1\r\nHost: x\r\n\r\n", body, sizeof body) == 200);
    assert (strstr (body, "\"iceServers\""));
    //  The body reaches the API; a bad token is 401 with a JSON error
    const char *json = "{\"id\":\"n1\",\"name\":\"n1\"}";
    snprintf (request, sizeof request, "POST /api/v1/mesh/networks HTTP/1.1\r\nHost: x\r\n"
              "Authorization: Bearer adm\r\nContent-Length: %zu\r\n\r\n%s", strlen (json), json);
    assert (s_test_request (port, request, body, sizeof body) == 201);
    assert (strstr (body, "\"cidr\":\"10.100.0.0/16\""));
    assert (s_test_request (port, "GET /api/v1/mesh/networks HTTP/1.1\r\nAuthorization: Basic x\r\n\r\n",
                            body, sizeof body) == 401);
    //  An announced body over max_body is refused before it is read
    assert (s_test_request (port, "POST /api/v1/mesh/networks HTTP/1.1\r\nContent-Length: 99999\r\n\r\n{",
                            body, sizeof body) == 413);
    assert (strstr (body, "\"error\""));
    //  The fifth request spends the burst of 5; the sixth is 429
    assert (s_test_request (port, "GET /client/meta HTTP/1.1\r\n\r\n", body, sizeof body) == 200);
    assert (s_test_request (port, "GET /client/meta HTTP/1.1\r\n\r\n", body, sizeof body) == 429);
    //  Same port twice: clear error
    snprintf (request, sizeof request, "127.0.0.1:%d", port);
    assert (reg_http_new (api, &(reg_http_config_t) { .listen = request }, err, sizeof err) == NULL);
    assert (strstr (err, "cannot listen"));
    reg_http_destroy (&http);
    assert (http == NULL);
    //  The status page: its files to anyone, GET only
    http = reg_http_new (api, &(reg_http_config_t) { .listen = "127.0.0.1:0" }, err, sizeof err);
    assert (http);
    port = reg_http_port (http);
    assert (s_test_request (port, "GET /admin/style.css HTTP/1.1\r\n\r\n", body, sizeof body) == 200);
    assert (strstr (body, "table"));
    assert (s_test_request (port, "GET /admin/nothing HTTP/1.1\r\n\r\n", body, sizeof body) == 404);
    assert (s_test_request (port, "POST /admin/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n", body, sizeof body) == 405);
    //  A ticket needs the admin token
    assert (s_test_request (port, "POST /api/v1/mesh/tickets HTTP/1.1\r\n\r\n", body, sizeof body) == 401);
    assert (s_test_request (port, "POST /api/v1/mesh/tickets HTTP/1.1\r\nAuthorization: Bearer adm\r\n\r\n",
                            body, sizeof body) == 201);
    assert (strstr (body, "\"ticket\":\"bwt_"));
    reg_http_destroy (&http);
    reg_api_destroy (&api);
    unlink (db);
    char side [300];
    snprintf (side, sizeof side, "%s-wal", db);
    unlink (side);
    snprintf (side, sizeof side, "%s-shm", db);
    unlink (side);
}
