/*  bus_pipe_priv: what the three files of bus_pipe share, and nothing else
    includes. A pipe is one class (bus_pipe.h) made of three concepts, one per
    file: the socket pipe (bus_pipe.c), the in-memory hand-over between two
    services on one loop (bus_pipe_mem.c) and the passing of a descriptor over
    the socket (bus_pipe_fd.c). Here: the struct, the steps each file offers
    the others, and the self-test helpers their tests share. */
#ifndef BUS_PIPE_PRIV_H_INCLUDED
#define BUS_PIPE_PRIV_H_INCLUDED

#include "bus_pipe.h"
#include "bus_buffer.h"
#include "bus_endpoint.h"

#include <sys/socket.h>
#include <sys/types.h>

struct _bus_pipe_t {
    char name [BUS_PIPE_NAME_MAX + 1];
    char path [BUS_PATH_MAX];           //  the socket file
    bus_pipe_dir_t dir;
    int fd;                             //  receiver: listening; sender: connected or -1
    //  Receiver
    ino_t ino;                          //  of the socket file we bound
    int epfd;                           //  the listening socket and every sender
    int conns [BUS_PIPE_SENDERS_MAX];
    size_t conn_count;
    size_t next;                        //  the sender to read first (round robin)
    //  What the last recv returned: nothing, a full batch, or a partial one
    enum { S_NONE, S_FULL, S_PARTIAL } last;
    uint8_t *buf;                       //  the last received batch
    bus_loop_t *loop;                      //  while attached
    zmq_pollitem_t item;
    bus_pipe_ready_fn *ready_fn;
    void *ready_arg;
    int hwm;                            //  batches queued before dropping
    bus_pipe_t *local_next;             //  in the list of attached receivers
    bus_buffer_t *slots;                //  batches handed over in memory: a ring of
                                        //  hwm + 1, from the first one
    size_t slot_head, slot_count;       //  the slot before head is the last delivered
    //  The descriptor a sender passed (bus_pipe_passed_fd): ours, -1 when none.
    //  It lives as long as the link that brought it, passed_conn.
    int passed_fd, passed_conn;
    uint64_t passed_gen;                //  bumped whenever passed_fd changes
    bool ctrunc_warned;
    //  Sender
    int sndbuf;                         //  bytes asked of the kernel
    bool blocked;                       //  the last send found the queue full
    bool linked_once;                   //  for logging only the changes
    int64_t retry_at;                   //  next connect attempt, monotonic ms
    bus_loop_t *sender_loop;            //  its service's loop (bus_pipe_set_loop)
    bus_pipe_t *local_peer;             //  the receiver attached to that loop, or NULL
    unsigned local_gen;                 //  s_local_gen when local_peer was looked up
    int share_fd;                       //  bus_pipe_share_fd, not ours; -1: none
    bool share_pending;                 //  the next message carries share_fd (the
                                        //  first one on each link)
    bus_pipe_stats_t stats;
    char error [160];
    //  Mirroring (mirror_fn NULL when off)
    bus_pipe_mirror_fn *mirror_fn;
    void *mirror_arg;
    uint32_t mirror_every, mirror_snaplen, mirror_countdown;
    bus_pipe_sample_t *sample;
};

//  bus_pipe.c: counts a batch of count packets as dropped.
void bus_pipe_count_drop (bus_pipe_t *self, uint32_t count);

//  bus_pipe_mem.c, the in-memory hand-over.
//  Adds a receiver attached to a loop to those senders on that loop can
//  reach in memory (on), or removes it.
void bus_pipe_mem_register (bus_pipe_t *self, bool on);
//  The receiver a sender hands batches to in memory, or NULL for the socket.
bus_pipe_t *bus_pipe_mem_peer (bus_pipe_t *self);
//  True when peer's in-memory queue has room for a batch.
bool bus_pipe_mem_writable (bus_pipe_t *peer);
//  Hands a whole batch (size bytes, header included: count packets of bytes
//  bytes) to peer, counted on self. 0, or -1 when dropped (peer's queue full).
int bus_pipe_mem_send (bus_pipe_t *self, bus_pipe_t *peer, const uint8_t *data, size_t size,
                       uint32_t count, size_t bytes);
//  The next batch handed over in memory (valid until the next call), or false
//  when none waits.
bool bus_pipe_mem_take (bus_pipe_t *self, uint8_t **data_p, size_t *size_p);
//  Frees the queue (in bus_pipe_destroy).
void bus_pipe_mem_free (bus_pipe_t *self);

//  bus_pipe_fd.c, descriptor passing.
//  Closes *fd_p if open and sets it to -1.
void bus_pipe_close_fd (int *fd_p);
//  Sender: puts the shared descriptor in msg (ctrl, CMSG_SPACE (sizeof (int))
//  bytes, is its control buffer) when this link has not carried it yet; true
//  when it did.
bool bus_pipe_fd_carry (bus_pipe_t *self, struct msghdr *msg, char *ctrl, size_t ctrlsize);
//  Sender: a message that carried the descriptor was sent.
void bus_pipe_fd_carried (bus_pipe_t *self);
//  Sender: sendmsg failed with err. True when the descriptor was at fault (the
//  caller closed it while shared): it is no longer shared, send again.
bool bus_pipe_fd_refused (bus_pipe_t *self, bool carried, int err);
//  Receiver: the descriptor that came with a message (SCM_RIGHTS), or -1.
int bus_pipe_fd_take (bus_pipe_t *self, struct msghdr *msg);
//  Receiver: fd came from the link conn with a batch that was valid (kept) or
//  not (closed).
void bus_pipe_fd_received (bus_pipe_t *self, int fd, int conn, bool valid);
//  Receiver: the link conn ended, and the descriptor it passed with it.
void bus_pipe_fd_link_ended (bus_pipe_t *self, int conn);

//  Self-test helpers (bus_pipe.c), for the tests of the three files.
//  Fills batch with count packets of len bytes, packet i of batch b.
void bus_pipe_test_fill (bus_batch_t *batch, size_t b, size_t count, size_t len);
//  Checks that iter holds packets first..first+count-1 of batch b, len bytes each.
void bus_pipe_test_check (bus_batch_iter_t *iter, size_t b, size_t first, size_t len);
//  Sends count packets of len bytes (batch b) from tx and checks that rx gets
//  them within 2 s; iter holds them.
void bus_pipe_test_pass (bus_pipe_t *tx, bus_pipe_t *rx, bus_batch_t *batch, bus_batch_iter_t *iter,
                         size_t b, size_t count, size_t len);
//  A raw SEQPACKET connection to a receiver, for what a foreign sender may do.
int bus_pipe_test_rogue (bus_pipe_t *rx);
//  What a mirror saw: calls, and the last sample.
typedef struct {
    int calls;
    bus_pipe_sample_t last;
} bus_pipe_test_mirror_seen_t;
void bus_pipe_test_on_sample (bus_pipe_t *pipe, const bus_pipe_sample_t *sample, void *arg);
//  What a receiver's handler on a loop saw; it ends the loop at 3 batches.
typedef struct {
    bus_pipe_t *rx;
    int batches;
} bus_pipe_test_loop_seen_t;
int bus_pipe_test_on_ready (bus_pipe_t *pipe, void *arg);
//  A timer that ends the loop (a test's deadline).
int bus_pipe_test_on_give_up (bus_loop_t *loop, int timer_id, void *arg);

#endif
