/*  bus_pipe_mem: the in-memory hand-over of bus_pipe. Between two services on
    one loop (device and crypto in bifrost-tunnel) a sender copies each batch
    into its receiver's queue and kicks the receiver's handler: no system call,
    and the batch is handled in the same turn of the loop. It lives apart from
    the socket pipe because it is a different transport with its own queue (a
    ring of pooled buffers) and its own measured choices (below). */
#include "bus_pipe_priv.h"
#include "bus_log.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  Receivers attached to a loop, for senders on the same loop to find. Changed
//  only when a receiver is attached or detached; a sender looks again only when
//  the generation moved, so a send costs one atomic load.
static pthread_mutex_t s_local_lock = PTHREAD_MUTEX_INITIALIZER;
static bus_pipe_t *s_local_receivers;
static atomic_uint s_local_gen = 1;

void
bus_pipe_mem_register (bus_pipe_t *self, bool on)
{
    pthread_mutex_lock (&s_local_lock);
    bus_pipe_t **link = &s_local_receivers;
    while (*link && *link != self)
        link = &(*link)->local_next;
    if (on && !*link) {
        self->local_next = s_local_receivers;
        s_local_receivers = self;
    }
    else
    if (!on && *link)
        *link = self->local_next;
    atomic_fetch_add (&s_local_gen, 1);
    pthread_mutex_unlock (&s_local_lock);
}

//  The receiver of this sender's pipe on the sender's own loop, or NULL. The
//  same loop means the same thread, so its queue needs no lock.
static bus_pipe_t *
s_local_peer (bus_pipe_t *self)
{
    if (!self->sender_loop)
        return NULL;
    if (atomic_load (&s_local_gen) == self->local_gen)
        return self->local_peer;
    pthread_mutex_lock (&s_local_lock);
    bus_pipe_t *found = s_local_receivers;
    while (found && !(found->loop == self->sender_loop && streq (found->path, self->path)))
        found = found->local_next;
    if (found != self->local_peer)
        bus_debug ("pipe %s: %s", self->name, found ? "in memory (receiver on our loop)" : "over the socket");
    self->local_peer = found;
    self->local_gen = atomic_load (&s_local_gen);
    pthread_mutex_unlock (&s_local_lock);
    return found;
}

//  A shared descriptor cannot travel in memory (nor would the receiver need it,
//  being in our process), so while one is shared every batch takes the socket.
bus_pipe_t *
bus_pipe_mem_peer (bus_pipe_t *self)
{
    return self->share_fd == -1 ? s_local_peer (self) : NULL;
}

void
bus_pipe_set_loop (bus_pipe_t *self, bus_loop_t *loop)
{
    if (self->dir != BUS_PIPE_SENDER)
        return;                         //  a receiver's loop is the one it is attached to
    self->sender_loop = loop;
    self->local_gen = 0;                //  look again on the next send
    self->local_peer = NULL;
}

bool
bus_pipe_mem_writable (bus_pipe_t *peer)
{
    return peer->slot_count < (size_t) peer->hwm;
}

//  A copy into the peer's queue and a kick of its handler, instead of sendmsg,
//  epoll_wait and recvmsg (docs/data-plane.md). No split: nothing limits a
//  message here.
int
bus_pipe_mem_send (bus_pipe_t *self, bus_pipe_t *peer, const uint8_t *data, size_t size,
                   uint32_t count, size_t bytes)
{
    if (peer->slot_count == (size_t) peer->hwm) {
        bus_pipe_count_drop (self, count);
        return -1;
    }
    if (!peer->slots) {
        peer->slots = (bus_buffer_t *) calloc ((size_t) peer->hwm + 1, sizeof (bus_buffer_t));
        assert (peer->slots);
    }
    //  hwm + 1 slots for at most hwm queued: the tail never reaches the slot
    //  before head, which holds the batch the receiver is reading
    bus_buffer_store (&peer->slots [(peer->slot_head + peer->slot_count) % ((size_t) peer->hwm + 1)],
                      data, size, 64 * 1024);
    peer->slot_count++;
    self->stats.batches_sent++;
    self->stats.packets_sent += count;
    self->stats.bytes_sent += bytes;
    self->stats.batches_in_memory++;
    bus_loop_poller_kick (peer->loop, &peer->item);
    return 0;
}

bool
bus_pipe_mem_take (bus_pipe_t *self, uint8_t **data_p, size_t *size_p)
{
    //  The caller is done with the batch it had: with nothing queued, start the
    //  ring over, so a pipe that rarely holds more than one batch (a ping, or a
    //  receiver that keeps up) reuses its first slot, hot in the cache, instead
    //  of walking all hwm + 1 (64 KiB or more each, allocated one by one)
    if (self->slot_count == 0) {
        self->slot_head = 0;
        return false;
    }
    //  Batches handed over in memory come first: they cost no system call, and
    //  the loop runs us only once per kick, so kick again while more wait
    bus_buffer_t *slot = &self->slots [self->slot_head];
    self->slot_head = (self->slot_head + 1) % ((size_t) self->hwm + 1);
    self->slot_count--;
    if (self->slot_count && self->loop)
        bus_loop_poller_kick (self->loop, &self->item);
    *data_p = slot->data;
    *size_p = slot->size;
    return true;
}

void
bus_pipe_mem_free (bus_pipe_t *self)
{
    if (self->slots)
        for (int i = 0; i <= self->hwm; i++)
            bus_buffer_free (&self->slots [i], false);
    free (self->slots);
    self->slots = NULL;
}

//  ---------------------------------------------------------------------------
//  Self test

void
bus_pipe_mem_test (bool verbose)
{
    printf (" * bus_pipe_mem: ");
    bus_batch_t *batch = bus_batch_new (0);
    bus_batch_t *big;
    bus_batch_iter_t iter;
    bus_pipe_stats_t stats;
    bus_pipe_test_loop_seen_t seen;
    bus_pipe_test_mirror_seen_t seen_rx;
    bus_loop_t *loop;
    int64_t t0;
    char dir [] = "/tmp/bus-pipe-mem-test-XXXXXX";
    assert (mkdtemp (dir));

    //  In memory: a sender told its loop hands batches to a receiver attached
    //  to the same loop (bifrost-tunnel), with no socket, every byte intact and
    //  in order, counted and mirrored like socket batches
    bus_pipe_t *mrx = bus_pipe_new (dir, "crypto->device", BUS_PIPE_RECEIVER, 2);
    bus_pipe_t *mtx = bus_pipe_new (dir, "crypto->device", BUS_PIPE_SENDER, 0);
    bus_pipe_t *far = bus_pipe_new (dir, "crypto->device", BUS_PIPE_SENDER, 0);
    assert (mrx && mtx && far);
    loop = bus_loop_new ();
    bus_loop_t *far_loop = bus_loop_new ();
    seen = (bus_pipe_test_loop_seen_t) { mrx, 0 };
    assert (bus_pipe_attach (mrx, loop, bus_pipe_test_on_ready, &seen) == 0);
    bus_pipe_set_loop (mrx, loop);          //  no-op on a receiver
    bus_pipe_set_loop (mtx, loop);
    bus_pipe_set_loop (far, far_loop);      //  another loop: the socket
    memset (&seen_rx, 0, sizeof seen_rx);
    bus_pipe_set_mirror (mrx, 1, 16, bus_pipe_test_on_sample, &seen_rx);
    bus_pipe_test_fill (batch, 20, 3, 30);
    assert (bus_pipe_send (mtx, batch) == 0);
    //  No split in memory: a jumbo batch (5 messages on the socket) is one
    big = bus_batch_new (BUS_BATCH_HEADER + BUS_BATCH_MAX * BUS_BATCH_STRIDE (9000));
    bus_pipe_test_fill (big, 21, 64, 9000);
    assert (bus_pipe_send (mtx, big) == 0);
    bus_batch_destroy (&big);
    //  The queue holds hwm (2) batches: not writable, the next one dropped
    assert (!bus_pipe_writable (mtx));
    bus_pipe_test_fill (batch, 22, 1, 10);
    assert (bus_pipe_send (mtx, batch) == -1);
    bus_pipe_stats (mtx, &stats);
    assert (stats.batches_sent == 2 && stats.batches_in_memory == 2 && stats.packets_sent == 67);
    assert (stats.batches_dropped == 1 && stats.packets_dropped == 1 && stats.connects == 1);
    assert (bus_pipe_recv (mrx, &iter, 0) == 1);
    bus_pipe_test_check (&iter, 20, 0, 30);
    assert (bus_pipe_writable (mtx));
    assert (bus_pipe_recv (mrx, &iter, 0) == 1 && iter.count == 64);
    bus_pipe_test_check (&iter, 21, 0, 9000);
    assert (seen_rx.calls == 2 && seen_rx.last.packets == 64);
    //  Nothing went over the socket (a partial batch, then nothing waits)
    assert (bus_pipe_recv (mrx, &iter, 0) == 0);
    bus_pipe_stats (mrx, &stats);
    assert (stats.batches_received == 2 && stats.packets_received == 67);
    assert (stats.bytes_received == 3 * 30 + 64 * 9000);
    //  A receiver that keeps up reuses the first slot: 100 batches one at a
    //  time leave one slot allocated (of the ring's 3), and each arrives intact
    for (int b = 0; b < 100; b++) {
        bus_pipe_test_fill (batch, (size_t) b, 1, 20);
        assert (bus_pipe_send (mtx, batch) == 0);
        assert (bus_pipe_recv (mrx, &iter, 0) == 1);
        bus_pipe_test_check (&iter, (size_t) b, 0, 20);
        assert (bus_pipe_recv (mrx, &iter, 0) == 0);
    }
    assert (mrx->slots [0].cap > 0 && mrx->slots [1].cap > 0 && mrx->slots [2].cap == 0);
    //  In the loop: the sends kick the handler, which runs at once (the give-up
    //  timer is 5 s away); the far sender's batch comes over the socket
    bus_pipe_set_mirror (mrx, 0, 0, NULL, NULL);
    int give_up = bus_loop_timer (loop, 5000, 1, bus_pipe_test_on_give_up, NULL);
    bus_pipe_test_pass (far, mrx, batch, &iter, 23, 2, 40);
    bus_pipe_test_fill (batch, 24, 1, 50);
    assert (bus_pipe_send (mtx, batch) == 0);
    bus_pipe_test_fill (batch, 25, 1, 50);
    assert (bus_pipe_send (mtx, batch) == 0);
    t0 = zclock_mono ();
    seen.batches = 1;                       //  the handler stops the loop at 3
    assert (bus_loop_start (loop) == -1);
    assert (seen.batches == 3 && zclock_mono () - t0 < 2500);
    bus_loop_timer_end (loop, give_up);
    bus_pipe_stats (far, &stats);
    assert (stats.batches_sent == 1 && stats.batches_in_memory == 0);
    //  Detached, the receiver is no longer in reach in memory: the socket again
    bus_pipe_detach (mrx);
    bus_pipe_test_pass (mtx, mrx, batch, &iter, 26, 1, 60);
    bus_pipe_stats (mtx, &stats);
    assert (stats.batches_sent == 105 && stats.batches_in_memory == 104);
    //  Attached again and destroyed with batches waiting: freed, the sender
    //  drops once nobody listens
    assert (bus_pipe_attach (mrx, loop, bus_pipe_test_on_ready, &seen) == 0);
    bus_pipe_test_fill (batch, 27, 1, 60);
    assert (bus_pipe_send (mtx, batch) == 0);
    bus_pipe_destroy (&mrx);
    bus_batch_add (batch, 0, "x", 1);
    assert (bus_pipe_send (mtx, batch) == -1);
    bus_pipe_destroy (&mtx);
    bus_pipe_destroy (&far);
    bus_loop_destroy (&loop);
    bus_loop_destroy (&far_loop);

    bus_batch_destroy (&batch);
    rmdir (dir);
    printf ("OK\n");
}
