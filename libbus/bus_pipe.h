/*  bus_pipe: the data plane. Packets move device <-> crypto <-> nat over direct
    Unix sockets between the two services, never through the broker, as batches
    of up to 64 packets (bus_batch.h).

    One pipe is one direction between two services. The receiver listens on an
    AF_UNIX SOCK_SEQPACKET socket at <run_dir>/<receiver>/pipe-<name>.ipc, in
    the directory of the service that receives it (schemas/pipes.def), the one
    place its sandbox lets it create files (bus_privs.h); the sender
    connects to it and sends each batch as one message. Either side can restart:
    the receiver replaces the socket file, the sender notices the broken link on
    its next send and connects again (at most every BUS_PIPE_RETRY_MS while
    nobody listens).

    Between two services on one loop (device and crypto in bifrost-tunnel) a
    batch goes over in memory instead: bus_pipe_set_loop.

    Why not ZeroMQ, which carries the control bus: a ping crosses 8 pipe hops,
    and a ZeroMQ hop wakes two I/O threads besides the two services, so 8 hops
    cost 777 us against 281 us for SEQPACKET at ping spacing (bench/bench_hops,
    docs/benchmarks.md). SEQPACKET keeps the message boundaries ZeroMQ gave us,
    and the kernel's socket buffer is the queue.

    Sends never block: when the queue (the sender's socket buffer, hwm batches of
    64 KiB) is full or no receiver listens, the batch is dropped and counted.
    Batches larger than BUS_PIPE_MSG_MAX are sent as several messages, split
    between packets, each a valid batch of its own, so the kernel never needs a
    large contiguous allocation. A received batch is validated as a whole before
    the first packet is handed out, and read in place.

    A sender can also pass one descriptor to its receiver (nat shares its UDP
    socket with the tunnel, which then sends its datagrams itself): it goes with
    the first message of every link, and the receiver's copy lives as long as
    that link. bus_pipe_share_fd. */
#ifndef BUS_PIPE_H_INCLUDED
#define BUS_PIPE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "bus_batch.h"
#include "bus_loop.h"
#include "bus_schema.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_pipe_t bus_pipe_t;

typedef enum { BUS_PIPE_RECEIVER = 1, BUS_PIPE_SENDER } bus_pipe_dir_t;

#define BUS_PIPE_HWM_DEFAULT 64         //  64 KiB batches queued before dropping
#define BUS_PIPE_NAME_MAX    48
//  The largest message on the socket. A default batch (64 packets of 1500
//  bytes, 99 KiB) is one message; only jumbo packets are split. The kernel
//  puts 68 KiB of a Unix datagram in single pages and the rest in one block,
//  so this costs at most a 60 KiB contiguous allocation per message.
#define BUS_PIPE_MSG_MAX     (128 * 1024)
#define BUS_PIPE_RETRY_MS    10         //  connect attempts while nobody listens
#define BUS_PIPE_SENDERS_MAX 8          //  connections a receiver keeps

//  Opens one end of the pipe `name` ([A-Za-z0-9._>-], e.g. "device->crypto")
//  in run_dir: the receiver listens at <run_dir>/<receiver>/pipe-<name>.ipc
//  (bus_pipe_receiver; the directory is made 0700 when missing), the sender
//  connects to it (the receiver need not exist yet). hwm: 64 KiB batches queued
//  in the sender's socket buffer before dropping (0: BUS_PIPE_HWM_DEFAULT).
//  NULL, with a logged reason, on a bad name or a failed bind.
bus_pipe_t *bus_pipe_new (const char *run_dir, const char *name, bus_pipe_dir_t dir, int hwm);
//  Detaches from the loop, closes, and removes the socket file if still ours.
void bus_pipe_destroy (bus_pipe_t **self_p);

const char *bus_pipe_name (bus_pipe_t *self);
//  The socket file, e.g. /run/bifrost/crypto/pipe-dev-crypto.ipc
const char *bus_pipe_path (bus_pipe_t *self);
//  The service that receives the pipe name, as schemas/pipes.def declares it
//  ("crypto" for "dev-crypto"), which names the directory of its socket; NULL
//  for a pipe not declared there (benchmarks, self tests), whose socket is
//  <run_dir>/pipe-<name>.ipc.
const char *bus_pipe_receiver (const char *name);
//  A receiver's descriptor is readable while bus_pipe_recv has work (a batch,
//  a new sender, a sender that left); a sender's is the connected socket, -1
//  while not connected. For poll() outside a bus_loop.
int bus_pipe_fd (bus_pipe_t *self);

//  Called from the loop while the receiver has work. It should call
//  bus_pipe_recv (timeout 0) until 0, or a few times and return to let other
//  sources in (it is called again). Return -1 to end the loop.
typedef int (bus_pipe_ready_fn) (bus_pipe_t *pipe, void *arg);
//  Hands the receiver to loop. 0, or -1 when loop refuses the descriptor.
int bus_pipe_attach (bus_pipe_t *self, bus_loop_t *loop, bus_pipe_ready_fn *fn, void *arg);
//  Takes it back (no-op when not attached).
void bus_pipe_detach (bus_pipe_t *self);

//  Tells a sender the loop its service runs on. While the pipe's receiver is
//  attached to the same loop (two services in one process: bifrost-tunnel),
//  batches go over in memory: copied into the receiver's queue (hwm batches)
//  and its handler kicked (bus_loop_poller_kick), with no system call and in
//  the same turn of the loop. Otherwise, once that receiver is detached, and
//  while a descriptor is shared (bus_pipe_share_fd), the socket as before.
//  NULL: the socket only. No-op on a receiver.
void bus_pipe_set_loop (bus_pipe_t *self, bus_loop_t *loop);

//  Shares fd with the receiver (a sender only): the first message of every link
//  carries it (SCM_RIGHTS), that is the next message if linked now and the
//  first one after every reconnect, so a restarted receiver gets it again. A
//  split batch passes it with its first message only. The pipe does not own fd:
//  the caller keeps it open while shared and closes it. -1 stops sharing (a
//  receiver keeps what it got until its link ends). While a descriptor is
//  shared, batches go over the socket even to a receiver on our loop: a
//  descriptor cannot be handed over in memory.
void bus_pipe_share_fd (bus_pipe_t *self, int fd);

//  The descriptor most recently passed by a sender whose link is still open, or
//  -1 (a receiver only). Owned by the pipe (close-on-exec): it changes, and the
//  old one is closed, only in bus_pipe_recv (a new one came, or the link that
//  brought it ended) and in bus_pipe_destroy. A descriptor that came with a
//  rejected message is closed, never kept; of several in one message only the
//  first is kept.
int bus_pipe_passed_fd (bus_pipe_t *self);
//  Bumped every time bus_pipe_passed_fd changes. Compare it after each
//  bus_pipe_recv: a change means a new descriptor came with (or before) the
//  batch, or the old one is gone; either way, stop using the old number.
uint64_t bus_pipe_passed_gen (bus_pipe_t *self);

//  Sends the batch and empties it, never blocking. 0 when sent (or empty), -1
//  when dropped: the queue is full or no receiver is connected (counted). A
//  batch split in several messages may be dropped in part, its first messages
//  delivered: the stats count exactly what was sent and what was dropped.
int bus_pipe_send (bus_pipe_t *self, bus_batch_t *batch);

//  True when a send would be queued now. A loop that reads packets from a source
//  that can wait (a TUN device) should stop reading while this is false, so the
//  kernel drops the excess instead of us filling batches only to drop them: on
//  2 cores a sender spinning on drops costs the receiver 30 to 60 % of its rate
//  (docs/benchmarks.md). No system call while sends succeed; after a failed one
//  it asks the kernel (which says writable once the queue is three quarters
//  empty), and while not connected it tries to connect.
bool bus_pipe_writable (bus_pipe_t *self);

//  Receives one batch, waiting up to timeout_ms (0: not at all, -1: forever).
//  1: a valid batch, iter is ready; it points into the pipe's buffer, valid
//     until the next recv or destroy, and its packets may be changed in place.
//  0: nothing arrived in time (or interrupted).
//  -1: a malformed batch arrived; it was discarded whole and counted, and
//      bus_pipe_error says why. Call again for the next one.
int bus_pipe_recv (bus_pipe_t *self, bus_batch_iter_t *iter, int timeout_ms);
//  Why the last batch was rejected.
const char *bus_pipe_error (bus_pipe_t *self);

//  Mirroring to the tap. The sample's headers field holds, for each packet while
//  it fits, a 2-byte length in network byte order (big-endian, like every
//  capture format a tool may turn it into) then that many bytes: the first
//  min (len, snaplen) bytes of the packet. The sample is valid during the call.
typedef void (bus_pipe_mirror_fn) (bus_pipe_t *pipe, const bus_pipe_sample_t *sample, void *arg);
//  Every sample-th batch sent or received calls fn. sample 0 or fn NULL turns
//  mirroring off; snaplen is capped at 128. Costs one branch when off.
void bus_pipe_set_mirror (bus_pipe_t *self, uint32_t sample, uint32_t snaplen,
                          bus_pipe_mirror_fn *fn, void *arg);

typedef struct {
    uint64_t batches_sent, packets_sent, bytes_sent;
    uint64_t batches_received, packets_received, bytes_received;
    uint64_t batches_dropped, packets_dropped;     //  queue full / no receiver
    uint64_t batches_rejected;                     //  malformed
    uint64_t samples;                              //  mirror callbacks made
    uint64_t connects;                             //  links made (sender) or taken (receiver)
    uint64_t batches_in_memory;                    //  of batches_sent, handed over in memory
    uint64_t fds_passed;                           //  messages that carried the shared
                                                   //  descriptor (sender), descriptors
                                                   //  kept (receiver)
} bus_pipe_stats_t;
void bus_pipe_stats (bus_pipe_t *self, bus_pipe_stats_t *stats);

void bus_pipe_test (bool verbose);
//  The self tests of the in-memory hand-over (bus_pipe_mem.c) and of
//  descriptor passing (bus_pipe_fd.c).
void bus_pipe_mem_test (bool verbose);
void bus_pipe_fd_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
