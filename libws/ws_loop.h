/*  ws_loop: a libwebsockets server context served from a bus_loop, for the
    services that accept WebSocket connections on their own loop (the relay's
    WSS port, the bridge's /v0/ws/proxy).

    Why this shape (measured for the relay, docs/relay.md "WebSocket over
    TLS"): Debian's lws 4.1 has no external-poll support, so its sockets cannot
    join bus_loop, and servicing it from a timer alone adds up to a timer
    period per message. Instead the service accepts each connection itself
    (it owns the listening socket, so it counts and refuses before lws sees a
    byte), hands the descriptor to lws (ws_loop_adopt), and polls it on
    bus_loop (ws_loop_watch); when one is readable, or writable while output
    waits (ws_loop_want_out), ws_loop_service runs lws_service with a negative
    timeout, which handles what is ready without blocking. A timer keeps lws's
    own timeouts (handshakes, closes) running. Nothing crosses a thread. */
#ifndef WS_LOOP_H_INCLUDED
#define WS_LOOP_H_INCLUDED

#include "bus_loop.h"
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct lws;
struct lws_context;
struct lws_vhost;

typedef struct _ws_loop_t ws_loop_t;

//  One descriptor lws serves, polled on the loop (embed it in a connection)
typedef struct {
    ws_loop_t *owner;
    zmq_pollitem_t item;            //  fd -1: not watched
    bool want_out;
} ws_loop_fd_t;

//  Serves context from loop; tick_ms: the period of lws's own timeouts (and,
//  when the descriptors are not watched, of everything)
ws_loop_t *ws_loop_new (bus_loop_t *loop, struct lws_context *context, int tick_ms);
//  Ends the timer; the context stays the caller's
void ws_loop_destroy (ws_loop_t **self_p);

//  Handles whatever lws has ready, never blocking; reentry does nothing
void ws_loop_service (ws_loop_t *self);

//  Polls fd (readable) on the loop and services lws when it is ready
void ws_loop_watch (ws_loop_t *self, ws_loop_fd_t *fd, int sockfd);
//  Polls it for writable too, while output waits for the socket
void ws_loop_want_out (ws_loop_fd_t *fd, bool want);
void ws_loop_unwatch (ws_loop_fd_t *fd);

//  Hands an accepted socket to lws on vhost (HTTP first, TLS when the vhost
//  has it), with opaque as its user data; NULL when lws could not take it
//  (then the socket is closed)
struct lws *ws_loop_adopt (struct lws_vhost *vhost, int sockfd, void *opaque);

//  A listening TCP socket (non-blocking, SO_REUSEPORT so every instance of a
//  service listens on one port) on a numeric address; -1 with errno. ss holds
//  the bound address (the port when port was 0).
int ws_loop_listen (const char *bind_ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len);
//  The port of an address made by ws_loop_listen
uint16_t ws_loop_port (const struct sockaddr_storage *ss);

//  lws's log lines (errors and warnings) into the service's log, at debug
void ws_loop_log_to_bus (void);

#endif
