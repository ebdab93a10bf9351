/*  bus_loop: the event loop of a service. The part of czmq's zloop the services
    use (pollers on descriptors, timers, stop on SIGTERM or a handler's -1),
    on epoll instead of zmq_poll.

    Why not zloop: a packet on its way through a node wakes device, crypto and
    nat one after the other, and each wakeup runs one turn of the loop. zloop
    waits in zmq_poll, which first polls every item without waiting, then polls
    them all again to wait, and poll () visits every descriptor both times;
    epoll_wait hands back only the ready ones from a set the kernel keeps.
    The bus sockets are plain descriptors to the loop (their ZMQ_FD, see
    bus_service.c), so nothing here needs ZeroMQ's poller. Measured in
    docs/benchmarks.md ("Where a ping's time went with 7 wakeups").

    The handler and item shapes are zloop's, so a service reads the same:
    bus_loop_poller (loop, &item, fn, arg) with a zmq_pollitem_t whose fd is
    set (socket must be NULL), bus_loop_timer (loop, delay_ms, times, fn, arg).
    Pollers and timers may be added and ended from inside any handler. */
#ifndef BUS_LOOP_H_INCLUDED
#define BUS_LOOP_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_loop_t bus_loop_t;

//  A descriptor is ready: item->revents holds ZMQ_POLLIN / ZMQ_POLLOUT /
//  ZMQ_POLLERR (error or hangup). Return -1 to end the loop.
typedef int (bus_loop_fn) (bus_loop_t *loop, zmq_pollitem_t *item, void *arg);
//  A timer expired. Return -1 to end the loop.
typedef int (bus_loop_timer_fn) (bus_loop_t *loop, int timer_id, void *arg);

bus_loop_t *bus_loop_new (void);
void bus_loop_destroy (bus_loop_t **self_p);

//  Watches item->fd for item->events (ZMQ_POLLIN, ZMQ_POLLOUT). 0, or -1 when
//  the descriptor is bad or already watched (logged). The item is copied.
int bus_loop_poller (bus_loop_t *self, zmq_pollitem_t *item, bus_loop_fn *fn, void *arg);
//  Stops watching item->fd (no-op when not watched).
void bus_loop_poller_end (bus_loop_t *self, zmq_pollitem_t *item);
//  An error on item->fd goes to its handler every time; without this the
//  poller is ended after two errors in a row, as zloop does.
void bus_loop_poller_set_tolerant (bus_loop_t *self, zmq_pollitem_t *item);
//  Runs the handler of item->fd's poller in this turn of the loop (or the next,
//  when called after this turn's kicks ran) with ZMQ_POLLIN, whether or not the
//  descriptor is readable, and the loop does not sleep before. For work another
//  handler of the same loop handed over in memory (bus_pipe between two services
//  of one process): no system call, no wakeup. No-op when not watched.
void bus_loop_poller_kick (bus_loop_t *self, zmq_pollitem_t *item);

//  A ZeroMQ socket: fn is called once per waiting message (it should read one),
//  as zloop_reader does. Its ZMQ_FD is polled, and every turn of the loop
//  asks every reader's ZMQ_EVENTS again (ZMQ_FD alone can miss a message that
//  came in during a send): two system calls per reader per turn, so the data
//  path services use bus_service's own draining instead (bus_service.c).
typedef int (bus_loop_reader_fn) (bus_loop_t *loop, zsock_t *reader, void *arg);
int bus_loop_reader (bus_loop_t *self, zsock_t *sock, bus_loop_reader_fn *fn, void *arg);
void bus_loop_reader_end (bus_loop_t *self, zsock_t *sock);

//  Calls fn every delay_ms, times times (0: until ended). The timer id (> 0),
//  or -1.
int bus_loop_timer (bus_loop_t *self, size_t delay_ms, size_t times, bus_loop_timer_fn *fn, void *arg);
//  Ends a timer (no-op for an unknown or ended id). 0.
int bus_loop_timer_end (bus_loop_t *self, int timer_id);

//  By default the loop ends on SIGINT/SIGTERM (czmq's zsys_interrupted);
//  nonstop keeps it running (an actor that is told to stop by its pipe).
void bus_loop_set_nonstop (bus_loop_t *self, bool nonstop);

//  Runs until a handler returns -1 (returns -1) or a signal stops it (0).
int bus_loop_start (bus_loop_t *self);

void bus_loop_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
