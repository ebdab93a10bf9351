/*  bus_loop: a service's event loop on epoll (why: bus_loop.h). */
#include "bus_loop.h"
#include "bus_log.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define S_EVENTS_MAX 64             //  ready descriptors taken per wait

typedef struct {
    zmq_pollitem_t item;
    bus_loop_fn *fn;
    void *arg;
    bool tolerant;
    bool dead;                      //  ended; freed after this turn
    bool kicked;                    //  run the handler without waiting
    int errors;                     //  in a row
} s_poller_t;

typedef struct {
    zsock_t *sock;
    bus_loop_reader_fn *fn;
    void *arg;
    bool dead;
} s_reader_t;

typedef struct {
    int id;
    size_t delay;
    size_t times;                   //  left; 0 = forever
    int64_t when;
    bus_loop_timer_fn *fn;
    void *arg;
    bool dead;
} s_timer_t;

struct _bus_loop_t {
    int epfd;
    s_poller_t **pollers;
    size_t poller_count, poller_max;
    s_timer_t **timers;
    size_t timer_count, timer_max;
    s_reader_t **readers;
    size_t reader_count, reader_max;
    bool readers_pending;           //  a reader stopped at its bound: do not wait
    bool kicks_pending;             //  a poller was kicked: do not wait
    int next_timer_id;
    bool nonstop;
    bool reap;                      //  something was ended this turn
};

bus_loop_t *
bus_loop_new (void)
{
    bus_loop_t *self = (bus_loop_t *) calloc (1, sizeof (bus_loop_t));
    assert (self);
    self->epfd = epoll_create1 (EPOLL_CLOEXEC);
    assert (self->epfd != -1);      //  out of descriptors at start: nothing to run
    self->next_timer_id = 1;
    return self;
}

//  Drops the dead items of one of the arrays below and frees them.
#define S_COMPACT(array, count) do { \
    size_t kept_ = 0; \
    for (size_t i_ = 0; i_ < (count); i_++) { \
        if ((array) [i_]->dead) \
            free ((array) [i_]); \
        else \
            (array) [kept_++] = (array) [i_]; \
    } \
    (count) = kept_; \
} while (0)

//  Frees what was ended, after the turn in which it may still have been seen.
static void
s_reap (bus_loop_t *self)
{
    S_COMPACT (self->pollers, self->poller_count);
    S_COMPACT (self->timers, self->timer_count);
    S_COMPACT (self->readers, self->reader_count);
    self->reap = false;
}

void
bus_loop_destroy (bus_loop_t **self_p)
{
    assert (self_p);
    bus_loop_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->poller_count; i++)
        self->pollers [i]->dead = true;
    for (size_t i = 0; i < self->timer_count; i++)
        self->timers [i]->dead = true;
    for (size_t i = 0; i < self->reader_count; i++)
        self->readers [i]->dead = true;
    s_reap (self);
    free (self->pollers);
    free (self->timers);
    free (self->readers);
    close (self->epfd);
    free (self);
    *self_p = NULL;
}

//  Grows an array of pointers by one slot when full.
static void *
s_grow (void *array, size_t count, size_t *max)
{
    if (count < *max)
        return array;
    *max = *max ? *max * 2 : 8;
    void *grown = realloc (array, *max * sizeof (void *));
    assert (grown);
    return grown;
}

static s_poller_t *
s_poller_find (bus_loop_t *self, int fd)
{
    for (size_t i = 0; i < self->poller_count; i++)
        if (!self->pollers [i]->dead && self->pollers [i]->item.fd == fd)
            return self->pollers [i];
    return NULL;
}

int
bus_loop_poller (bus_loop_t *self, zmq_pollitem_t *item, bus_loop_fn *fn, void *arg)
{
    assert (self && item && fn);
    if (item->socket) {
        bus_error ("bus_loop: poll ZeroMQ sockets by their ZMQ_FD");
        return -1;
    }
    if (s_poller_find (self, item->fd)) {
        bus_error ("bus_loop: descriptor %d is already watched", item->fd);
        return -1;
    }
    s_poller_t *poller = (s_poller_t *) calloc (1, sizeof (s_poller_t));
    assert (poller);
    poller->item = *item;
    poller->fn = fn;
    poller->arg = arg;
    struct epoll_event ev = { .events = 0, .data.ptr = poller };
    if (item->events & ZMQ_POLLIN)
        ev.events |= EPOLLIN;
    if (item->events & ZMQ_POLLOUT)
        ev.events |= EPOLLOUT;
    if (epoll_ctl (self->epfd, EPOLL_CTL_ADD, item->fd, &ev) == -1) {
        bus_error ("bus_loop: cannot watch descriptor %d: %s", item->fd, strerror (errno));
        free (poller);
        return -1;
    }
    self->pollers = (s_poller_t **) s_grow (self->pollers, self->poller_count, &self->poller_max);
    self->pollers [self->poller_count++] = poller;
    return 0;
}

void
bus_loop_poller_end (bus_loop_t *self, zmq_pollitem_t *item)
{
    s_poller_t *poller = s_poller_find (self, item->fd);
    if (!poller)
        return;
    //  The descriptor may be closed already: then the kernel dropped it itself
    epoll_ctl (self->epfd, EPOLL_CTL_DEL, item->fd, NULL);
    poller->dead = true;
    self->reap = true;
}

void
bus_loop_poller_set_tolerant (bus_loop_t *self, zmq_pollitem_t *item)
{
    s_poller_t *poller = s_poller_find (self, item->fd);
    if (poller)
        poller->tolerant = true;
}

void
bus_loop_poller_kick (bus_loop_t *self, zmq_pollitem_t *item)
{
    s_poller_t *poller = s_poller_find (self, item->fd);
    if (poller) {
        poller->kicked = true;
        self->kicks_pending = true;
    }
}

//  Hands every waiting message of one reader to its handler, at most 256 a turn.
static int
s_reader_drain (bus_loop_t *self, s_reader_t *reader)
{
    for (int n = 0; !reader->dead && (zsock_events (reader->sock) & ZMQ_POLLIN); n++) {
        if (n == 256) {
            self->readers_pending = true;
            return 0;
        }
        if (reader->fn (self, reader->sock, reader->arg) == -1)
            return -1;
    }
    return 0;
}

static int
s_reader_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    return s_reader_drain (loop, (s_reader_t *) arg);
}

int
bus_loop_reader (bus_loop_t *self, zsock_t *sock, bus_loop_reader_fn *fn, void *arg)
{
    assert (self && sock && fn);
    s_reader_t *reader = (s_reader_t *) calloc (1, sizeof (s_reader_t));
    assert (reader);
    reader->sock = sock;
    reader->fn = fn;
    reader->arg = arg;
    zmq_pollitem_t item = { NULL, zsock_fd (sock), ZMQ_POLLIN, 0 };
    if (bus_loop_poller (self, &item, s_reader_ready, reader)) {
        free (reader);
        return -1;
    }
    self->readers = (s_reader_t **) s_grow (self->readers, self->reader_count, &self->reader_max);
    self->readers [self->reader_count++] = reader;
    self->readers_pending = true;       //  what came before we watched
    return 0;
}

void
bus_loop_reader_end (bus_loop_t *self, zsock_t *sock)
{
    for (size_t i = 0; i < self->reader_count; i++)
        if (self->readers [i]->sock == sock && !self->readers [i]->dead) {
            self->readers [i]->dead = true;
            zmq_pollitem_t item = { NULL, zsock_fd (sock), ZMQ_POLLIN, 0 };
            bus_loop_poller_end (self, &item);
            self->reap = true;
        }
}

int
bus_loop_timer (bus_loop_t *self, size_t delay_ms, size_t times, bus_loop_timer_fn *fn, void *arg)
{
    assert (self && fn);
    s_timer_t *timer = (s_timer_t *) calloc (1, sizeof (s_timer_t));
    assert (timer);
    timer->id = self->next_timer_id++;
    if (self->next_timer_id <= 0)
        self->next_timer_id = 1;
    timer->delay = delay_ms;
    timer->times = times;
    timer->when = zclock_mono () + (int64_t) delay_ms;
    timer->fn = fn;
    timer->arg = arg;
    self->timers = (s_timer_t **) s_grow (self->timers, self->timer_count, &self->timer_max);
    self->timers [self->timer_count++] = timer;
    return timer->id;
}

int
bus_loop_timer_end (bus_loop_t *self, int timer_id)
{
    for (size_t i = 0; i < self->timer_count; i++)
        if (self->timers [i]->id == timer_id && !self->timers [i]->dead) {
            self->timers [i]->dead = true;
            self->reap = true;
        }
    return 0;
}

void
bus_loop_set_nonstop (bus_loop_t *self, bool nonstop)
{
    self->nonstop = nonstop;
}

//  Milliseconds until the next timer, -1 when there is none.
static int
s_timeout (bus_loop_t *self)
{
    if (self->readers_pending || self->kicks_pending)
        return 0;
    int64_t next = -1;
    for (size_t i = 0; i < self->timer_count; i++)
        if (!self->timers [i]->dead && (next == -1 || self->timers [i]->when < next))
            next = self->timers [i]->when;
    if (next == -1)
        return -1;
    int64_t left = next - zclock_mono ();
    return left <= 0 ? 0 : left > 60000 ? 60000 : (int) left;
}

static int
s_dispatch (bus_loop_t *self, struct epoll_event *ev)
{
    s_poller_t *poller = (s_poller_t *) ev->data.ptr;
    if (poller->dead)
        return 0;
    short revents = 0;
    if (ev->events & EPOLLIN)
        revents |= ZMQ_POLLIN;
    if (ev->events & EPOLLOUT)
        revents |= ZMQ_POLLOUT;
    if (ev->events & (EPOLLERR | EPOLLHUP))
        revents |= ZMQ_POLLERR;
    if ((revents & ZMQ_POLLERR) && !poller->tolerant) {
        bus_warn ("bus_loop: error on descriptor %d", poller->item.fd);
        //  One chance for the handler, then it would only spin: end it
        if (poller->errors++) {
            bus_loop_poller_end (self, &poller->item);
            return 0;
        }
    }
    else
        poller->errors = 0;
    poller->item.revents = revents;
    return poller->fn (self, &poller->item, poller->arg);
}

//  Runs the kicked pollers. A handler may kick another (crypto hands a batch to
//  device, which writes it out): follow such chains in this turn, a few rounds,
//  then leave the rest to the next turn, which does not wait.
static int
s_run_kicks (bus_loop_t *self)
{
    for (int round = 0; round < 8 && self->kicks_pending; round++) {
        self->kicks_pending = false;
        //  Pollers added by a handler wait for the next round
        size_t count = self->poller_count;
        for (size_t i = 0; i < count; i++) {
            s_poller_t *poller = self->pollers [i];
            if (!poller->kicked || poller->dead)
                continue;
            poller->kicked = false;
            poller->item.revents = ZMQ_POLLIN;
            if (poller->fn (self, &poller->item, poller->arg) == -1)
                return -1;
        }
    }
    return 0;
}

static int
s_run_timers (bus_loop_t *self)
{
    int64_t now = zclock_mono ();
    //  Timers added by a handler now wait for the next turn
    size_t count = self->timer_count;
    for (size_t i = 0; i < count; i++) {
        s_timer_t *timer = self->timers [i];
        if (timer->dead || timer->when > now)
            continue;
        timer->when = now + (int64_t) timer->delay;
        if (timer->times && --timer->times == 0) {
            timer->dead = true;
            self->reap = true;
        }
        if (timer->fn (self, timer->id, timer->arg) == -1)
            return -1;
    }
    return 0;
}

int
bus_loop_start (bus_loop_t *self)
{
    assert (self);
    struct epoll_event events [S_EVENTS_MAX];
    int rc = 0;
    while (rc == 0 && (self->nonstop || !zsys_interrupted)) {
        int ready = epoll_wait (self->epfd, events, S_EVENTS_MAX, s_timeout (self));
        if (ready == -1) {
            if (errno == EINTR)
                continue;
            bus_error ("bus_loop: epoll_wait: %s", strerror (errno));
            rc = -1;
            break;
        }
        for (int i = 0; i < ready && rc == 0; i++)
            rc = s_dispatch (self, &events [i]);
        if (rc == 0)
            rc = s_run_kicks (self);
        if (rc == 0)
            rc = s_run_timers (self);
        //  A send in any handler can take a reader's wakeup away: look again
        self->readers_pending = false;
        for (size_t i = 0; i < self->reader_count && rc == 0; i++)
            rc = s_reader_drain (self, self->readers [i]);
        if (self->reap)
            s_reap (self);
    }
    return rc;
}

//  ---------------------------------------------------------------------------
//  Self test

typedef struct {
    int fires [4];
    int reads;
    int pipe_read;
    int cancel_id;
} s_test_t;

static int
s_on_timer (bus_loop_t *loop, int timer_id, void *arg)
{
    s_test_t *t = (s_test_t *) arg;
    t->fires [timer_id % 4]++;
    return 0;
}

static int
s_on_cancel (bus_loop_t *loop, int timer_id, void *arg)
{
    s_test_t *t = (s_test_t *) arg;
    bus_loop_timer_end (loop, t->cancel_id);        //  ends another timer
    bus_loop_timer_end (loop, timer_id);            //  and itself
    return 0;
}

static int
s_on_readable (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_test_t *t = (s_test_t *) arg;
    assert (item->revents & ZMQ_POLLIN);
    char c;
    if (read (item->fd, &c, 1) == 1)
        t->reads++;
    if (t->reads == 3)
        bus_loop_poller_end (loop, item);           //  from inside its own handler
    return 0;
}

static int
s_on_hangup (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_test_t *t = (s_test_t *) arg;
    t->pipe_read++;
    char buf [8];
    return read (item->fd, buf, sizeof buf) == 0 ? -1 : 0;     //  end of file: stop
}

static int
s_on_stop (bus_loop_t *loop, int timer_id, void *arg)
{
    return -1;
}

typedef struct {
    zmq_pollitem_t second;
    int first_calls, second_calls;
} s_kick_test_t;

//  Kicked, not readable: hands on to the second poller by a kick
static int
s_on_kick_first (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_kick_test_t *k = (s_kick_test_t *) arg;
    assert (item->revents == ZMQ_POLLIN);
    k->first_calls++;
    bus_loop_poller_kick (loop, &k->second);
    return 0;
}

static int
s_on_kick_second (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_kick_test_t *k = (s_kick_test_t *) arg;
    k->second_calls++;
    return -1;
}

void
bus_loop_test (bool verbose)
{
    printf (" * bus_loop: ");
    bus_loop_t *loop = bus_loop_new ();
    s_test_t t;
    memset (&t, 0, sizeof t);
    //  A ZeroMQ socket, a bad descriptor, a descriptor twice: refused
    zsock_t *sock = zsock_new (ZMQ_PAIR);
    zmq_pollitem_t bad = { zsock_resolve (sock), 0, ZMQ_POLLIN, 0 };
    assert (bus_loop_poller (loop, &bad, s_on_readable, &t) == -1);
    zsock_destroy (&sock);
    bad = (zmq_pollitem_t) { NULL, 9999, ZMQ_POLLIN, 0 };
    assert (bus_loop_poller (loop, &bad, s_on_readable, &t) == -1);
    int fds [2];
    assert (pipe (fds) == 0);
    zmq_pollitem_t item = { NULL, fds [0], ZMQ_POLLIN, 0 };
    assert (bus_loop_poller (loop, &item, s_on_readable, &t) == 0);
    assert (bus_loop_poller (loop, &item, s_on_readable, &t) == -1);

    //  Timers: a 10 ms one 3 times, a 20 ms one until ended, one that ends
    //  another and itself; then 100 ms of running, ended by a timer
    int three = bus_loop_timer (loop, 10, 3, s_on_timer, &t);
    int forever = bus_loop_timer (loop, 20, 0, s_on_timer, &t);
    t.cancel_id = bus_loop_timer (loop, 60, 0, s_on_timer, &t);
    bus_loop_timer (loop, 30, 1, s_on_cancel, &t);
    assert (three > 0 && forever > three);
    //  Readable descriptor: 5 bytes, the handler ends its poller after 3
    assert (write (fds [1], "abcde", 5) == 5);
    bus_loop_timer (loop, 100, 1, s_on_stop, NULL);
    int64_t start = zclock_mono ();
    assert (bus_loop_start (loop) == -1);
    int64_t took = zclock_mono () - start;
    assert (took >= 95 && took < 2000);
    assert (t.fires [three % 4] == 3);
    assert (t.fires [forever % 4] >= 3 && t.fires [forever % 4] <= 5);
    assert (t.fires [t.cancel_id % 4] == 0);        //  ended before it fired
    assert (t.reads == 3);
    //  Ended timers and pollers: a second run sees only what is left
    bus_loop_timer_end (loop, forever);
    bus_loop_timer_end (loop, forever);             //  twice: no-op
    bus_loop_timer_end (loop, 12345);               //  unknown: no-op
    item.fd = fds [0];
    bus_loop_poller_end (loop, &item);              //  already ended: no-op
    //  End of file (the writer closed) reaches the handler, which stops the loop
    assert (bus_loop_poller (loop, &item, s_on_hangup, &t) == 0);
    bus_loop_poller_set_tolerant (loop, &item);
    close (fds [1]);
    assert (bus_loop_start (loop) == -1);
    assert (t.pipe_read == 2);                      //  "de", then end of file
    bus_loop_poller_end (loop, &item);
    close (fds [0]);

    //  Kicks: the handler of a descriptor with nothing to read runs, a kick from
    //  it runs the next one in the same turn, and the loop never waits (the stop
    //  timer is 5 s away); a kick of a descriptor not watched does nothing
    int a [2], b [2];
    assert (pipe (a) == 0 && pipe (b) == 0);
    s_kick_test_t k;
    memset (&k, 0, sizeof k);
    k.second = (zmq_pollitem_t) { NULL, b [0], ZMQ_POLLIN, 0 };
    zmq_pollitem_t first = { NULL, a [0], ZMQ_POLLIN, 0 };
    assert (bus_loop_poller (loop, &first, s_on_kick_first, &k) == 0);
    assert (bus_loop_poller (loop, &k.second, s_on_kick_second, &k) == 0);
    zmq_pollitem_t unwatched = { NULL, a [1], ZMQ_POLLIN, 0 };
    bus_loop_poller_kick (loop, &unwatched);
    bus_loop_poller_kick (loop, &first);
    int stop = bus_loop_timer (loop, 5000, 1, s_on_stop, NULL);
    start = zclock_mono ();
    assert (bus_loop_start (loop) == -1);
    assert (zclock_mono () - start < 2500);
    assert (k.first_calls == 1 && k.second_calls == 1);
    //  Kicked, then ended before the turn: not run
    bus_loop_poller_kick (loop, &first);
    bus_loop_poller_end (loop, &first);
    bus_loop_timer_end (loop, stop);
    bus_loop_timer (loop, 30, 1, s_on_stop, NULL);
    assert (bus_loop_start (loop) == -1);
    assert (k.first_calls == 1 && k.second_calls == 1);
    bus_loop_poller_end (loop, &k.second);
    for (int i = 0; i < 2; i++) {
        close (a [i]);
        close (b [i]);
    }
    bus_loop_destroy (&loop);
    bus_loop_destroy (&loop);                       //  idempotent
    printf ("OK\n");
}
