/*  reg_http: the registry's HTTP(S) and WebSocket transport on libwebsockets.
    lws runs its own poll loop in one service thread, which alone touches the
    api (requests, events, and the lease sweep on an lws timer) from
    reg_http_new to reg_http_destroy. Why a thread and not the service's zloop:
    Debian's lws is built without LWS_WITH_EXTERNAL_POLL, so its fds cannot be
    handed to zloop, and driving lws_service (ctx, -1) from a zloop timer costs
    a timer period per step: 190 ms per request at 50 ms (measured), against
    about 1 ms with the thread. The service's loop checks the thread's
    liveness with reg_http_idle_ms. This class only collects bodies (bounded
    by max_body: 413), applies the rate limit per client address (429), and
    streams responses and events; what a request means is reg_api's. */
#ifndef REG_HTTP_H_INCLUDED
#define REG_HTTP_H_INCLUDED

#include <czmq.h>
#include "reg_api.h"

typedef struct {
    const char *listen;         //  "host:port", "[v6]:port"; port 0 = any
    const char *tls_cert;       //  PEM files; both or neither
    const char *tls_key;
    size_t max_body;            //  bytes (default 64 KiB)
    double rate, burst;         //  requests per second and burst per client (0 = unlimited)
    int64_t sweep_ms;           //  lease sweep period (default 250 ms)
} reg_http_config_t;

typedef struct _reg_http_t reg_http_t;

//  Listens and starts the service thread, which owns api until destroy.
//  NULL with a reason in err.
reg_http_t *reg_http_new (reg_api_t *api, const reg_http_config_t *config, char *err, size_t errsize);
void reg_http_destroy (reg_http_t **self_p);
//  The port actually bound.
int reg_http_port (reg_http_t *self);
//  Milliseconds since the service thread last ran its sweep (liveness).
int64_t reg_http_idle_ms (reg_http_t *self);

//  Parses "host:port" / "[v6]:port". 0 or -1.
int reg_http_parse_listen (const char *text, char *host, size_t host_size, int *port);

void reg_http_test (bool verbose);
#endif
