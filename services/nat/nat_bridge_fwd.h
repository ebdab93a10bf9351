/*  nat_bridge_fwd: this node's end of a bridge flow, through nat's port
    (docs/bridge.md, "Peers by id"). A bridge that a WebSocket client asked
    for this node by `peer=` sends its flow's datagrams (schemas/bridge_wire.def,
    types 32..34) to the endpoints the registry lists for the node: nat's port,
    the one its NAT already keeps open. nat holds no flow key and reads nothing
    of them: it hands each on, unread, to the program that ends flows on this
    host (`bifrost-bridge-peer --listen 127.0.0.1:PORT`, named by
    `connection.bridge_endpoint`), from a loopback socket of its own per remote
    address. The program so sees each remote as a source of its own, and its
    roaming (only an authenticated source becomes the far end) still decides
    where its answers go; what it sends to one of those sockets leaves nat's
    port toward that socket's remote. At most NAT_BRIDGE_FWD_MAX remotes at
    once; a new one takes the place of the one heard least recently among
    those the program has not answered in the last 30 s (it answers only
    what it authenticated), so strangers cannot push a live flow out. */
#ifndef NAT_BRIDGE_FWD_H_INCLUDED
#define NAT_BRIDGE_FWD_H_INCLUDED

#include "bus_loop.h"
#include "nat_addr.h"
#include "nat_udp.h"

#include <stdbool.h>
#include <stdint.h>

#define NAT_BRIDGE_FWD_MAX 16

typedef struct {
    uint64_t in;                //  datagrams handed to the program
    uint64_t out;               //  its datagrams sent to a remote
    uint64_t remotes;           //  remotes given a socket
    uint64_t evicted;           //  remotes whose socket went to a newer one
    uint64_t refused;           //  datagrams of a new remote while every socket carried an answered flow
    uint64_t errors;            //  a socket that could not be opened, a send that failed
} nat_bridge_fwd_stats_t;

typedef struct _nat_bridge_fwd_t nat_bridge_fwd_t;

//  Checks an endpoint for connection.bridge_endpoint: a loopback address
//  literal and port ("127.0.0.1:5000", "[::1]:5000"). 0, or -1 with err.
int nat_bridge_fwd_parse (const char *endpoint, nat_addr_t *out, char *err, size_t err_size);
//  Forwards to endpoint (checked by nat_bridge_fwd_parse) and sends the
//  answers on udp; its sockets are watched on loop. NULL with err.
nat_bridge_fwd_t *nat_bridge_fwd_new (bus_loop_t *loop, const char *endpoint, nat_udp_t *udp, char *err,
                                      size_t err_size);
void nat_bridge_fwd_destroy (nat_bridge_fwd_t **self_p);
//  A bridge datagram from remote (a real UDP address) arrived on nat's port
void nat_bridge_fwd_rx (nat_bridge_fwd_t *self, const uint8_t *data, size_t size, const nat_addr_t *remote,
                        int64_t now_ms);
const nat_bridge_fwd_stats_t *nat_bridge_fwd_stats (nat_bridge_fwd_t *self);

void nat_bridge_fwd_test (bool verbose);
#endif
