/*  relay_tcp: the relay for nodes whose network blocks UDP. Every worker also
    listens on TCP at the relay's port number (SO_REUSEPORT: the kernel spreads
    connections over the workers) and turns each connection into a UDP client of
    the relay on loopback: one UDP socket per connection, messages framed by
    relay_stream on the TCP side, one message per datagram on the UDP side.

    Why a proxy in front of the UDP relay instead of a second transport inside
    the worker: the worker's rules (authentication from REGISTER only, replies
    never larger than the request, limits, soft state, steering by network)
    then hold (the UDP side is relay_proxy's, shared with relay_wss) for TCP clients without a line of their own. A TCP node's
    registration lands on the worker its network is steered to, whichever
    worker accepted the connection, so it meets its UDP peers there. The cost
    is one loopback hop per message for TCP nodes only, which are the rare
    case (docs/relay.md, "TCP"). */
#ifndef RELAY_TCP_H_INCLUDED
#define RELAY_TCP_H_INCLUDED

#include "bus_loop.h"
#include "relay_proxy.h"
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef relay_proxy_stats_t relay_tcp_stats_t;

typedef struct _relay_tcp_t relay_tcp_t;

//  Listens on bind_ip:port (TCP, SO_REUSEPORT) and forwards to the UDP relay at
//  udp_port on loopback (127.0.0.1, or ::1 when bind_ip is IPv6). NULL (errno)
//  when it cannot listen.
relay_tcp_t *relay_tcp_new (bus_loop_t *loop, const char *bind_ip, uint16_t port, uint16_t udp_port,
                            uint32_t max_connections, uint32_t idle_ms);
void relay_tcp_destroy (relay_tcp_t **self_p);

//  A listening TCP socket on bind_ip:port with SO_REUSEPORT (non-blocking);
//  *ss and *len the bound address. -1 (errno) when it cannot. relay_wss
//  listens the same way.
int relay_tcp_listen (const char *bind_ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len);

//  The bound TCP port.
uint16_t relay_tcp_port (relay_tcp_t *self);

//  Ends connections idle for idle_ms (call about once a second).
void relay_tcp_sweep (relay_tcp_t *self, int64_t now_ms);

const relay_tcp_stats_t *relay_tcp_stats (relay_tcp_t *self);

void relay_tcp_test (bool verbose);

#endif
