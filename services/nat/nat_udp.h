/*  nat_udp: the one UDP socket of a node, for IPv4 and IPv6 at once, read and written
    in batches. A syscall per packet is what caps most VPNs on small machines, so
    datagrams move with recvmmsg/sendmmsg (up to NAT_UDP_BATCH per call) through
    buffers allocated once, and where the kernel supports it a run of equal-size
    datagrams to one peer leaves as one UDP GSO send (UDP_SEGMENT) and arrives as one
    GRO read (UDP_GRO) that is split here. The socket is non-blocking: a full send
    buffer drops and counts, it never stalls the loop. Its fd can be watched by any
    poller (zloop, GLib). Addresses come out canonical (see nat_addr). Sending is
    node_udp_tx's, the same code crypto uses on this socket (node_udp_tx.h). */
#ifndef NAT_UDP_H_INCLUDED
#define NAT_UDP_H_INCLUDED

#include "nat_addr.h"

#define NAT_UDP_BATCH 64                //  datagrams per recvmmsg/sendmmsg
#define NAT_UDP_MAX_DATAGRAM_DEFAULT 2048
#define NAT_UDP_GRO_BUFFER 65536        //  a GRO read can carry 64 KiB

typedef struct {
    const char *bind;           //  "*:51820", "0.0.0.0:0" (IPv4 only), "[::1]:0"...
                                //  NULL = "*:0": dual stack, ephemeral port
    int rcvbuf;                 //  SO_RCVBUF request in bytes, 0 = kernel default
    int sndbuf;                 //  SO_SNDBUF request in bytes, 0 = kernel default
    size_t max_datagram;        //  largest datagram received, 0 = default; larger
                                //  ones are dropped and counted as truncated
    bool gso;                   //  use UDP_SEGMENT on send when the kernel has it
    bool gro;                   //  use UDP_GRO on receive when the kernel has it
    bool single;                //  one syscall per datagram (for measurements only)
} nat_udp_config_t;

typedef struct {
    uint64_t dgrams_in, bytes_in;
    uint64_t dgrams_out, bytes_out;
    uint64_t send_errors;       //  datagrams the kernel refused (unreachable, family)
    uint64_t send_dropped;      //  datagrams dropped because the send buffer was full
    uint64_t truncated;         //  datagrams larger than max_datagram, dropped
    uint64_t recv_errors;
    uint64_t recv_calls, send_calls;     //  syscalls, to see the batching at work
} nat_udp_stats_t;

//  One received datagram. data points into nat_udp's buffers, valid until the
//  next nat_udp_recv.
typedef struct {
    uint8_t *data;
    size_t size;
    const nat_addr_t *from;
} nat_udp_rx_t;

//  One datagram to send.
typedef struct {
    const uint8_t *data;
    size_t size;
    const nat_addr_t *to;
} nat_udp_tx_t;

typedef struct _nat_udp_t nat_udp_t;

//  Opens and binds the socket. A dual-stack bind ("*") falls back to IPv4 only when
//  the host has no IPv6. NULL with a message in err on failure.
nat_udp_t *nat_udp_new (const nat_udp_config_t *config, char *err, size_t err_size);
//  The same batching around a UDP socket someone else opened and bound (the
//  socket of an ICE pair, taken from libnice: nat_ice.c). bind is ignored;
//  the fd is made non-blocking and, on success, owned (closed by destroy).
//  NULL with a message in err when fd is not a bound UDP socket (fd left open).
nat_udp_t *nat_udp_new_fd (int fd, const nat_udp_config_t *config, char *err, size_t err_size);
void nat_udp_destroy (nat_udp_t **self_p);

//  The fd to watch for POLLIN.
int nat_udp_fd (nat_udp_t *self);

//  AF_INET6 (dual stack unless bound to one IPv6 address) or AF_INET.
int nat_udp_family (nat_udp_t *self);

//  The bound port (the one the kernel chose for port 0).
uint16_t nat_udp_port (nat_udp_t *self);

//  The socket buffer sizes the kernel granted.
int nat_udp_rcvbuf (nat_udp_t *self);
int nat_udp_sndbuf (nat_udp_t *self);

//  Whether GSO / GRO are in use (asked for and supported).
bool nat_udp_gso (nat_udp_t *self);
bool nat_udp_gro (nat_udp_t *self);

//  Reads what is waiting, at most one batch of reads (NAT_UDP_BATCH datagrams, or
//  more when GRO coalesced them). *out points at the datagrams; returns how many,
//  0 when nothing was waiting.
size_t nat_udp_recv (nat_udp_t *self, nat_udp_rx_t **out);
//  True when the last nat_udp_recv found the socket empty before its batch was
//  full: calling again now would only return nothing (one system call saved
//  per wakeup at low rates, where latency counts).
bool nat_udp_drained (nat_udp_t *self);

//  Sends count datagrams, each to its own destination. Returns how many the kernel
//  took; the others are counted (send_errors, send_dropped). A destination the
//  socket cannot reach (IPv6 on an IPv4-only socket, unset) counts in send_errors.
size_t nat_udp_send (nat_udp_t *self, const nat_udp_tx_t *batch, size_t count);

//  to as a destination in the socket's own family (v4-mapped on a dual-stack
//  socket), for whoever else sends on this socket (crypto, through node_udp_tx).
//  False when the socket cannot reach it: IPv6 on an IPv4-only socket, or unset.
bool nat_udp_sockaddr (nat_udp_t *self, const nat_addr_t *to, struct sockaddr_in6 *name,
                       socklen_t *len);

const nat_udp_stats_t *nat_udp_stats (nat_udp_t *self);

//  For tests: a private network namespace with lo up, so tests neither see nor
//  disturb the host's traffic. 0, or -1 when not permitted (tests then use the
//  host's loopback).
int nat_udp_test_netns (void);

void nat_udp_test (bool verbose);
#endif
