/*  metrics_http: the smallest HTTP/1.1 server a Prometheus scrape needs, on
    the service's bus_loop (docs/metrics.md). Why not libwebsockets: Debian's
    lws cannot put its descriptors on our loop (services/registry/reg_http.h
    runs it in a thread of its own for that), and a scrape is one GET with no
    body, answered once and closed. So: accept, read the head (at most
    METRICS_HTTP_HEAD_MAX bytes, METRICS_HTTP_IDLE_MS to send it), parse it
    (metrics_http_parse: a pure function, fuzzed by fuzz_metrics_http), and
    for `GET /metrics` hand the connection to the service, which answers
    every waiting connection at once when its collection round ends; then
    `Connection: close`. Anything else gets its status (400, 404, 405, 414,
    431, 505, 503 over METRICS_HTTP_CONNS) and is closed. */
#ifndef METRICS_HTTP_H_INCLUDED
#define METRICS_HTTP_H_INCLUDED

#include "bus_loop.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_HTTP_HEAD_MAX   4096    //  bytes of request line and headers
#define METRICS_HTTP_PATH_MAX   256     //  bytes of path (longer: 414)
#define METRICS_HTTP_CONNS      32      //  connections at once (more: 503)
#define METRICS_HTTP_IDLE_MS    5000    //  to send the head, and to take the answer

//  What a request head asks
typedef struct {
    bool head;                          //  HEAD (the answer without its body)
    char path [METRICS_HTTP_PATH_MAX];  //  without the query
    int status;                         //  200 when the path is /metrics, else the status to answer
} metrics_request_t;

//  Parses the head in buf [0..len): 0 when the blank line that ends it has
//  not come yet (and len < METRICS_HTTP_HEAD_MAX), else the head's length
//  with out filled (out->status says what to answer: 200, 400, 404, 405,
//  414, 431, 505). Never reads beyond len; buf need not end with a zero.
size_t metrics_http_parse (const char *buf, size_t len, metrics_request_t *out);

typedef struct _metrics_http_t metrics_http_t;

//  A scrape came in (a connection now waits for metrics_http_answer)
typedef void (metrics_http_scrape_fn) (metrics_http_t *http, void *arg);

//  Listens on bind_ip:port (port 0: any) on loop. NULL with err.
metrics_http_t *metrics_http_new (bus_loop_t *loop, const char *bind_ip, uint16_t port,
                                  metrics_http_scrape_fn *fn, void *arg, char *err, size_t err_size);
void metrics_http_destroy (metrics_http_t **self_p);
uint16_t metrics_http_port (metrics_http_t *self);
//  Answers every connection waiting for a scrape with 200 and body (text
//  format 0.0.4).
void metrics_http_answer (metrics_http_t *self, const char *body, size_t size);
//  Connections waiting for a scrape now
size_t metrics_http_waiting (metrics_http_t *self);

//  Splits "host:port" or "[v6]:port" (numeric address): 0, or -1
int metrics_http_split_listen (const char *text, char *ip, size_t ip_size, uint16_t *port);
//  Whether ip is a loopback address (127.0.0.0/8, ::1)
bool metrics_http_is_loopback (const char *ip);

void metrics_http_test (bool verbose);
#endif
