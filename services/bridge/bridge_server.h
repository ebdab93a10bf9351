/*  bridge_server: `/v0/ws/proxy` (docs/bridge.md): libwebsockets on the
    service's bus loop (libws/ws_loop.h says why and how), one bridge_link per
    WebSocket, all flows of the instance on one loop, no thread per client.

    Everything that can refuse a client before the upgrade does: the path, the
    connection rate of its address (429), max_flows (503), the flows its
    address holds (429), the parameters (400), the token (401) and the flows
    the token holds (429), with the reason in the response's body, so a
    client that is refused never holds a WebSocket. The token is compared in
    constant time (both hashed with BLAKE2b, then sodium_memcmp) and never
    logged. After the upgrade the bridge speaks the status messages of
    schemas/bridge.def and closes with its close codes: 4404 for a `peer=` its
    peer table does not know, 4413, 4415, 4429, 4408, 4500.

    Backpressure: the messages for one client wait in a queue of at most
    BRIDGE_SERVER_QUEUE; more datagrams for it are dropped and counted, never
    buffered without bound. */
#ifndef BRIDGE_SERVER_H_INCLUDED
#define BRIDGE_SERVER_H_INCLUDED

#include "bridge_link.h"
#include "bridge_peers.h"
#include "bus_loop.h"
#include <stdbool.h>
#include <stdint.h>

#define BRIDGE_SERVER_PATH      "/v0/ws/proxy"
#define BRIDGE_SERVER_QUEUE     64      //  binary messages waiting for one client

typedef struct {
    const char *bind_ip;
    uint16_t port;                      //  0: any (tests)
    const char *cert_pem;               //  PEM text and its length; NULL: plain ws://
    size_t cert_size;
    const char *key_pem;
    size_t key_size;
    const char *token;                  //  the one accepted token (hashed, not kept)
    size_t max_message;
    uint32_t max_flows;
    int idle_ms, heartbeat_ms, heartbeat_timeout_ms;
    uint32_t connects_per_second, bytes_per_second;
    //  Per client address (IPv4, or IPv6's /64, bridge_rate.h): flows open at
    //  once, bytes/s of them all; the one token's flows open at once (0: no limit)
    uint32_t flows_per_address, address_bytes_per_second, token_flows;
    bool allow_loopback;
    //  The address peers reach the flows at (bridge.public_address, copied), or
    //  NULL: each flow's `udp` is the address its socket sends from
    const struct sockaddr_storage *public_addr;
    //  The peers a client may name with `peer=` (bridge_peers, not owned; the
    //  service keeps it current from the bus), or NULL: every `peer=` is 4404
    bridge_peers_t *peers;
} bridge_server_config_t;

typedef struct {
    bridge_link_stats_t link;           //  datagrams, all flows
    uint32_t open, waiting, established;
    uint64_t opened, messages_in, messages_out;
    uint64_t refused_param, refused_token, refused_peer, refused_rate, refused_full, refused_other;
    uint64_t refused_address_flows, refused_token_flows;
    uint64_t closed_idle, closed_too_large, closed_text, closed_rate, closed_internal;
} bridge_server_stats_t;

typedef struct _bridge_server_t bridge_server_t;

//  Listens and serves; NULL with err when it cannot (port, certificate)
bridge_server_t *bridge_server_new (bus_loop_t *loop, const bridge_server_config_t *config,
                                    char *err, size_t err_size);
void bridge_server_destroy (bridge_server_t **self_p);

uint16_t bridge_server_port (bridge_server_t *self);
//  Serves wss:// (a certificate was given), and how many intermediate
//  certificates follow its leaf
bool bridge_server_tls (bridge_server_t *self);
int bridge_server_chain (bridge_server_t *self);
//  The counters, with open/waiting/established counted now
const bridge_server_stats_t *bridge_server_stats (bridge_server_t *self);

void bridge_server_test (bool verbose);
#endif
