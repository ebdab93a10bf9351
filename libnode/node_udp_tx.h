/*  node_udp_tx: the sending half of a node's UDP socket, in batches. A syscall per
    datagram is what caps most VPNs on small machines, so datagrams leave with
    sendmmsg (up to NODE_UDP_TX_BATCH messages per call) through buffers allocated
    once, and where the kernel supports it a run of equal-size datagrams to one
    destination leaves as one UDP GSO message (UDP_SEGMENT) that the kernel splits.

    Two processes send on the same socket (nat owns it, and passes the descriptor
    to crypto in bifrost-tunnel); both need exactly the same batching, GSO rules
    and error handling, so that logic lives here, once. The object does not own
    the descriptor and never blocks: on a non-blocking socket a full send buffer
    drops the rest of the call and counts it. */
#ifndef NODE_UDP_TX_H_INCLUDED
#define NODE_UDP_TX_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NODE_UDP_TX_BATCH          64    //  messages (and datagrams) per sendmmsg
#define NODE_UDP_TX_GSO_MAX_SEGS   64    //  UDP_MAX_SEGMENTS on older kernels
#define NODE_UDP_TX_GSO_MAX_BYTES  65000 //  under the 65507-byte UDP payload limit

//  One datagram to send. to is in the socket's own family (for a dual-stack
//  AF_INET6 socket an IPv4 peer is v4-mapped); NULL when the caller has no way
//  to express the destination in it: that datagram is counted in send_errors
//  and skipped. Runs are found by comparing family, port, address (and scope id
//  for IPv6), never flowinfo or padding.
typedef struct {
    const uint8_t *data;
    size_t size;
    const struct sockaddr *to;
    socklen_t to_len;
} bus_udp_dgram_t;

typedef struct {
    uint64_t dgrams_out, bytes_out;
    uint64_t send_errors;       //  refused by the kernel (unreachable, family), or no destination
    uint64_t send_dropped;      //  dropped because the send buffer was full
    uint64_t send_calls;        //  syscalls, to see the batching at work
} node_udp_tx_stats_t;

typedef struct _node_udp_tx_t node_udp_tx_t;

//  Sends on fd (not owned, never closed here). gso: use UDP_SEGMENT when the
//  socket supports it (probed once, here).
node_udp_tx_t *node_udp_tx_new (int fd, bool gso);
void node_udp_tx_destroy (node_udp_tx_t **self_p);

//  One sendto per datagram, no batching and no GSO: the baseline for
//  measurements (nat's "single" mode).
void node_udp_tx_set_single (node_udp_tx_t *self, bool single);

//  Whether GSO is in use: asked for, supported by the socket, not single.
bool node_udp_tx_gso (node_udp_tx_t *self);

//  Sends count datagrams, in order. Returns how many the kernel took; every
//  other one is counted, in send_errors or send_dropped. A full send buffer
//  (EAGAIN, ENOBUFS) drops the rest of the call; a GSO message the kernel
//  refuses (EINVAL, EIO: path MTU, no checksum offload) is sent one by one.
size_t node_udp_tx_send (node_udp_tx_t *self, const bus_udp_dgram_t *dgrams, size_t count);

//  Counters since node_udp_tx_new; the pointer stays valid and current.
const node_udp_tx_stats_t *node_udp_tx_stats (node_udp_tx_t *self);

void node_udp_tx_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
