/*  disc_http: the registry client's transport, HTTP(S) requests and one WebSocket,
    over libwebsockets.

    Debian's libwebsockets has no external-poll support, so its sockets cannot sit
    on the service's zloop; the service calls disc_http_service from a short zloop
    timer instead (lws_service with a negative timeout never blocks). Every result
    (a reply, a timeout, a WebSocket message or close) is delivered from
    disc_http_service, never from inside an lws callback, so a handler may start
    new requests or close the WebSocket freely.

    TLS: with https the registry's certificate is verified (chain and host name),
    against ca_file when given, else the system's CA store. */
#ifndef DISC_HTTP_H_INCLUDED
#define DISC_HTTP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DISC_HTTP_BODY_MAX  (4 * 1024 * 1024)   //  a bigger reply is an error
#define DISC_WS_MESSAGE_MAX (256 * 1024)        //  a bigger event closes the WebSocket

typedef struct _disc_http_t disc_http_t;

//  A reply: status is the HTTP status, or 0 when there was none (connection
//  refused, TLS failure, timeout: body is then the reason as text).
typedef void (disc_http_fn) (disc_http_t *http, int status, const char *body, size_t size, void *arg);

typedef enum { DISC_WS_OPEN, DISC_WS_MESSAGE, DISC_WS_CLOSED } disc_ws_event_t;
//  The WebSocket opened, got a text message, or closed (text is the reason).
typedef void (disc_ws_fn) (disc_http_t *http, disc_ws_event_t event, const char *text, size_t size, void *arg);

disc_http_t *disc_http_new (const char *host, uint16_t port, bool tls, const char *ca_file,
                            char *err, size_t errsize);
void disc_http_destroy (disc_http_t **self_p);

//  Starts a request; fn is called once from disc_http_service. bearer and body
//  may be NULL. 0, or -1 when it could not even start (fn is not called then).
int disc_http_request (disc_http_t *self, const char *method, const char *path, const char *bearer,
                       const char *body, int timeout_ms, disc_http_fn *fn, void *arg);
//  Opens the WebSocket at path (closing any open one first, without its CLOSED).
int disc_http_ws_open (disc_http_t *self, const char *path, int timeout_ms, disc_ws_fn *fn, void *arg);
//  Closes it; no more callbacks for it.
void disc_http_ws_close (disc_http_t *self);
//  True from ws_open until the CLOSED callback (or ws_close).
bool disc_http_ws_active (disc_http_t *self);
//  Forgets every request in flight (their callbacks are not called).
void disc_http_cancel_all (disc_http_t *self);

//  Does the network work that is ready and delivers results. Never blocks.
void disc_http_service (disc_http_t *self);
//  Requests in flight (the WebSocket not counted): the caller services more often.
size_t disc_http_pending (disc_http_t *self);

void disc_http_test (bool verbose);
#endif
