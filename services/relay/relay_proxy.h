/*  relay_proxy: the one place where a stream client of the relay (TCP in
    relay_tcp, WebSocket over TLS in relay_wss) becomes a UDP client of the
    worker's own port on loopback. Each connection gets one connected UDP
    socket; a whole message from the client is one datagram to the relay, and
    each datagram from the relay is handed to the transport (deliver) to frame
    for its client.

    Why one class for both transports: the worker's rules (authentication from
    REGISTER only, replies never larger, limits, soft state, steering by
    network) hold for stream clients only because everything they send reaches
    the UDP relay as datagrams from a socket of their own. Keeping that, the
    connection limit, the idle sweep and the counters in one file means a fix
    reaches both transports (docs/relay.md, "TCP" and "WebSocket over TLS").

    The transport owns its connection; the proxy owns the UDP side and tells
    the transport, through closed, when it ends a connection itself (idle, or
    deliver said the client is gone). */
#ifndef RELAY_PROXY_H_INCLUDED
#define RELAY_PROXY_H_INCLUDED

#include "bus_loop.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t accepted, refused, closed, broken;     //  connections: taken, over the limit, ended, bad framing
    uint64_t to_relay, from_relay, dropped;         //  messages each way; dropped (client too slow)
    uint32_t active;
} relay_proxy_stats_t;

typedef struct _relay_proxy_t relay_proxy_t;
typedef struct _relay_proxy_conn_t relay_proxy_conn_t;

//  A datagram from the relay for the client: 0 passed on, 1 dropped (the client
//  does not keep up: counted), -1 the client is gone (the proxy ends the
//  connection and calls closed).
typedef int (relay_proxy_deliver_fn) (void *arg, const uint8_t *msg, size_t size);
//  The proxy ended the connection (idle, or deliver returned -1): the transport
//  closes its side; conn is gone.
typedef void (relay_proxy_closed_fn) (void *arg);
//  After each batch of datagrams handed to deliver (optional): the transport
//  sends what it queued.
typedef void (relay_proxy_flush_fn) (void *arg);

//  Proxies to the UDP relay at udp_port on bind_ip (or loopback when bind_ip is
//  the any-address; ::1 for IPv6). NULL (errno EINVAL) for a bad address.
relay_proxy_t *relay_proxy_new (bus_loop_t *loop, const char *bind_ip, uint16_t udp_port,
                                uint32_t max_connections, uint32_t idle_ms);
//  Ends every connection (closed is called for each).
void relay_proxy_destroy (relay_proxy_t **self_p);

//  A new client: its UDP socket, polled on the loop. NULL when over the
//  limit or out of sockets (counted as refused).
relay_proxy_conn_t *relay_proxy_open (relay_proxy_t *self, relay_proxy_deliver_fn *deliver,
                                      relay_proxy_closed_fn *closed, relay_proxy_flush_fn *flush, void *arg);
//  One whole message from the client: one datagram to the relay.
void relay_proxy_to_relay (relay_proxy_conn_t *conn, const uint8_t *msg, size_t size);
//  The client did something: not idle.
void relay_proxy_touch (relay_proxy_conn_t *conn);
//  The transport ends the connection (closed is not called); broken: bad framing.
void relay_proxy_close (relay_proxy_conn_t **conn_p, bool broken);

//  Ends connections idle for idle_ms (call about once a second).
void relay_proxy_sweep (relay_proxy_t *self, int64_t now_ms);

const relay_proxy_stats_t *relay_proxy_stats (relay_proxy_t *self);

void relay_proxy_test (bool verbose);

#endif
