/*  relay_wss: the relay for nodes whose network lets out nothing but HTTPS.
    Every worker listens on the TLS port (relay.tls_listen, 443 by default;
    SO_REUSEPORT like relay_tcp) and serves WebSocket over TLS at /v0/relay:
    each binary WebSocket message is one relay datagram, proxied to the
    worker's UDP port on loopback by relay_proxy exactly as relay_tcp does, so
    every rule of the worker holds for these nodes too.

    Why libwebsockets on the worker's own loop, kicked by readiness, and not a
    thread of its own: Debian's lws (4.1.6) has no external-poll support, so its
    sockets cannot simply join bus_loop, and disc_http services it from a timer,
    which for a data path adds up to one timer period per message. But the
    worker accepts the connections itself (it owns the listening socket, counts
    the limit, then hands each socket to lws with lws_adopt_descriptor_vhost),
    so it knows every descriptor: it polls each one on bus_loop and, when one is
    readable (or writable while output waits), runs lws_service with a negative
    timeout, which polls lws's descriptors without blocking and handles what is
    ready. A 100 ms timer keeps lws's own timeouts running. Nothing crosses a
    thread: no lock, no hand-over queue, no second wake-up per message, and the
    proxy's UDP sockets stay on the same loop as relay_tcp's. The cost is one
    poll over this worker's WSS descriptors per wake-up; docs/relay.md
    ("WebSocket over TLS") has the round trips measured against UDP and TCP.

    The certificate and key are read into memory by the config check (before
    the worker drops privileges and is sandboxed: a key file readable only by
    root stays that way) and handed to lws; the key's copy is wiped. lws 4.1
    loads only the first certificate of a PEM in memory: the intermediates that
    follow it in the file are added to OpenSSL's context when lws makes it, so
    a certificate from a public CA (leaf, then intermediates) verifies against
    the nodes' system store.

    A slow reader never blocks the worker: at most RELAY_WSS_QUEUE messages
    wait per connection, more are dropped and counted, like a full UDP buffer. */
#ifndef RELAY_WSS_H_INCLUDED
#define RELAY_WSS_H_INCLUDED

#include "bus_loop.h"
#include "relay_proxy.h"
#include <stdbool.h>
#include <stdint.h>

#define RELAY_WSS_PATH      "/v0/relay"
#define RELAY_WSS_QUEUE     64          //  messages waiting for one slow client
#define RELAY_WSS_PROTOCOL  "bifrost-relay"

typedef struct {
    relay_proxy_stats_t proxy;          //  connections and messages, as relay_tcp's
    uint64_t rejected;                  //  no WebSocket at /v0/relay (TLS failed, wrong path, plain HTTP)
    uint64_t opened;                    //  WebSockets opened
} relay_wss_stats_t;

typedef struct {
    const char *bind_ip;
    uint16_t port;                      //  the TLS port (0: any, for tests)
    const char *udp_ip;                 //  the worker's UDP address (relay.listen; NULL: bind_ip)
    uint16_t udp_port;
    const char *cert_pem;               //  PEM text and its length
    size_t cert_size;
    const char *key_pem;
    size_t key_size;
    uint32_t max_connections, idle_ms;
    int handshake_timeout_s;            //  a TLS or WebSocket handshake that stalls ends then (0: 10 s)
} relay_wss_config_t;

typedef struct _relay_wss_t relay_wss_t;

//  Listens and serves; NULL with err when it cannot (port, certificate, key).
relay_wss_t *relay_wss_new (bus_loop_t *loop, const relay_wss_config_t *config, char *err, size_t err_size);
void relay_wss_destroy (relay_wss_t **self_p);

uint16_t relay_wss_port (relay_wss_t *self);
//  How many intermediate certificates follow the leaf (the rest of tls_cert).
int relay_wss_chain (relay_wss_t *self);
//  Ends idle connections (about once a second).
void relay_wss_sweep (relay_wss_t *self, int64_t now_ms);
const relay_wss_stats_t *relay_wss_stats (relay_wss_t *self);

void relay_wss_test (bool verbose);

#endif
