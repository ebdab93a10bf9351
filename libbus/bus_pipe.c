/*  bus_pipe: the data pipes between device, crypto and nat, over AF_UNIX
    SOCK_SEQPACKET (why, and the numbers: bus_pipe.h, docs/benchmarks.md). This
    file is the socket pipe and the class's life cycle; the in-memory hand-over
    between two services on one loop (bifrost-tunnel) is bus_pipe_mem.c, the
    passing of a descriptor is bus_pipe_fd.c, their shared struct
    bus_pipe_priv.h. */
#include "bus_pipe_priv.h"
#include "bus_identity.h"
#include "bus_log.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

static bool
s_name_valid (const char *name)
{
    size_t n = name ? strlen (name) : 0;
    if (n == 0 || n > BUS_PIPE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name [i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        ||    c == '.' || c == '_' || c == '-' || c == '>'))
            return false;
    }
    return true;
}

//  The service that receives each pipe of schemas/pipes.def, the one place a
//  pipe's ends are declared: its socket lives in that service's directory
static const struct {
    const char *name, *receiver;
} s_pipes [] = {
#define BIFROST_PIPE(id, name, from, to, tag, payload, doc) { name, to },
#define BIFROST_PIPE_RECORD(id, flag, pipe, tag, payload, doc)
#define BIFROST_PIPE_TAG(id, value, pipe, doc)
#include "../schemas/pipes.def"
#undef BIFROST_PIPE
#undef BIFROST_PIPE_RECORD
#undef BIFROST_PIPE_TAG
};

const char *
bus_pipe_receiver (const char *name)
{
    for (size_t i = 0; name && i < sizeof s_pipes / sizeof s_pipes [0]; i++)
        if (strcmp (s_pipes [i].name, name) == 0)
            return s_pipes [i].receiver;
    return NULL;
}

static int
s_address (struct sockaddr_un *addr, const char *path)
{
    memset (addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    if (strlen (path) >= sizeof addr->sun_path)
        return -1;
    memcpy (addr->sun_path, path, strlen (path) + 1);
    return 0;
}

static int
s_listen (bus_pipe_t *self)
{
    struct sockaddr_un addr;
    if (s_address (&addr, self->path)) {
        bus_error ("pipe %s: %s is too long for a unix socket path", self->name, self->path);
        return -1;
    }
    self->fd = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    self->epfd = epoll_create1 (EPOLL_CLOEXEC);
    self->buf = (uint8_t *) malloc (BUS_PIPE_MSG_MAX);
    assert (self->buf);
    if (self->fd == -1 || self->epfd == -1) {
        bus_error ("pipe %s: cannot create a socket: %s", self->name, strerror (errno));
        return -1;
    }
    //  The receiving service's directory (bus_pipe_path), made by whichever
    //  of its pipes comes first; a sandboxed service's exists already, made
    //  by the runtime before it was confined (bus_service.h)
    char dir [BUS_PATH_MAX];
    snprintf (dir, sizeof dir, "%s", self->path);
    *strrchr (dir, '/') = 0;
    struct stat st;
    if (stat (dir, &st) && errno == ENOENT && mkdir (dir, 0700) && errno != EEXIST) {
        bus_error ("pipe %s: cannot create %s: %s", self->name, dir, strerror (errno));
        return -1;
    }
    //  A receiver that restarts replaces the socket file of its predecessor
    unlink (self->path);
    if (bind (self->fd, (struct sockaddr *) &addr, sizeof addr) == -1
    ||  listen (self->fd, BUS_PIPE_SENDERS_MAX) == -1) {
        bus_error ("pipe %s: cannot listen on %s: %s", self->name, self->path, strerror (errno));
        return -1;
    }
    //  Senders of the node's other uids pass the directory and connect
    //  (bus_identity.h)
    if (bus_identity_share (dir, true) || bus_identity_share (self->path, false))
        bus_warn ("pipe %s: cannot share %s with the node's group: %s", self->name, self->path, strerror (errno));
    if (stat (self->path, &st) == 0)
        self->ino = st.st_ino;
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = self->fd };
    if (epoll_ctl (self->epfd, EPOLL_CTL_ADD, self->fd, &ev) == -1) {
        bus_error ("pipe %s: epoll: %s", self->name, strerror (errno));
        return -1;
    }
    return 0;
}

//  One connect attempt, at most every BUS_PIPE_RETRY_MS (unless now is forced):
//  true when linked. Nobody listening is normal (the receiver starts later or
//  restarts), so only the changes are logged.
static bool
s_connect (bus_pipe_t *self, bool now)
{
    if (self->fd != -1)
        return true;
    int64_t t = zclock_mono ();
    if (!now && t < self->retry_at)
        return false;
    self->retry_at = t + BUS_PIPE_RETRY_MS;
    struct sockaddr_un addr;
    if (s_address (&addr, self->path))
        return false;
    int fd = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return false;
    //  The send buffer is the queue; as root ignore net.core.wmem_max (a node's
    //  daemon runs as root), else take what the kernel allows
    if (setsockopt (fd, SOL_SOCKET, SO_SNDBUFFORCE, &self->sndbuf, sizeof self->sndbuf) == -1)
        setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &self->sndbuf, sizeof self->sndbuf);
    if (connect (fd, (struct sockaddr *) &addr, sizeof addr) == -1) {
        close (fd);
        return false;
    }
    self->fd = fd;
    self->blocked = false;
    self->share_pending = self->share_fd != -1;     //  a new link: pass it again
    self->stats.connects++;
    if (self->linked_once)
        bus_info ("pipe %s: linked again", self->name);
    else
        bus_debug ("pipe %s: linked", self->name);
    self->linked_once = true;
    return true;
}

//  The receiver went away (crashed, restarted): drop the link, look for the
//  next one at once.
static void
s_unlink (bus_pipe_t *self, int err)
{
    bus_info ("pipe %s: receiver gone (%s), dropping until it is back", self->name, strerror (err));
    close (self->fd);
    self->fd = -1;
    self->retry_at = 0;
}

bus_pipe_t *
bus_pipe_new (const char *run_dir, const char *name, bus_pipe_dir_t dir, int hwm)
{
    if (!s_name_valid (name)) {
        bus_error ("pipe name '%s' is not 1..%d characters of [A-Za-z0-9._>-]",
                   name ? name : "(null)", BUS_PIPE_NAME_MAX);
        return NULL;
    }
    if (dir != BUS_PIPE_RECEIVER && dir != BUS_PIPE_SENDER) {
        bus_error ("pipe %s: bad direction %d", name, (int) dir);
        return NULL;
    }
    bus_pipe_t *self = (bus_pipe_t *) calloc (1, sizeof (bus_pipe_t));
    assert (self);
    snprintf (self->name, sizeof self->name, "%s", name);
    self->dir = dir;
    self->fd = -1;
    self->epfd = -1;
    self->share_fd = -1;
    self->passed_fd = self->passed_conn = -1;
    char file [BUS_PATH_MAX];
    const char *receiver = bus_pipe_receiver (name);
    snprintf (file, sizeof file, "%s%spipe-%s", receiver ? receiver : "", receiver ? "/" : "", name);
    run_dir = bus_run_dir (run_dir);
    char endpoint [BUS_PATH_MAX];
    if (bus_endpoint (endpoint, sizeof endpoint, run_dir, file)) {
        bus_error ("pipe %s: run directory %s is too long for a unix socket path", name, run_dir);
        free (self);
        return NULL;
    }
    snprintf (self->path, sizeof self->path, "%s", endpoint + strlen ("ipc://"));
    if (hwm <= 0)
        hwm = BUS_PIPE_HWM_DEFAULT;
    if (hwm > 1024)
        hwm = 1024;
    //  The kernel doubles what it is given (for its bookkeeping): hwm x 64 KiB
    self->sndbuf = hwm * 32 * 1024;
    self->hwm = hwm;
    if (dir == BUS_PIPE_RECEIVER) {
        if (s_listen (self)) {
            bus_pipe_destroy (&self);
            return NULL;
        }
    }
    else
        s_connect (self, true);
    return self;
}

void
bus_pipe_destroy (bus_pipe_t **self_p)
{
    assert (self_p);
    bus_pipe_t *self = *self_p;
    if (!self)
        return;
    bus_pipe_detach (self);
    for (size_t i = 0; i < self->conn_count; i++)
        close (self->conns [i]);
    if (self->passed_fd != -1)
        close (self->passed_fd);
    if (self->fd != -1)
        close (self->fd);
    if (self->epfd != -1)
        close (self->epfd);
    //  Remove the socket file, but only if it is still ours and not a
    //  successor's that bound the same name meanwhile.
    struct stat st;
    if (self->dir == BUS_PIPE_RECEIVER && self->ino
    &&  stat (self->path, &st) == 0 && st.st_ino == self->ino)
        unlink (self->path);
    bus_pipe_mem_free (self);
    free (self->buf);
    free (self->sample);
    free (self);
    *self_p = NULL;
}

const char *bus_pipe_name (bus_pipe_t *self) { return self->name; }
const char *bus_pipe_path (bus_pipe_t *self) { return self->path; }
const char *bus_pipe_error (bus_pipe_t *self) { return self->error; }

int
bus_pipe_fd (bus_pipe_t *self)
{
    return self->dir == BUS_PIPE_RECEIVER ? self->epfd : self->fd;
}

void
bus_pipe_stats (bus_pipe_t *self, bus_pipe_stats_t *stats)
{
    *stats = self->stats;
}

static int
s_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    bus_pipe_t *self = (bus_pipe_t *) arg;
    return self->ready_fn (self, self->ready_arg);
}

int
bus_pipe_attach (bus_pipe_t *self, bus_loop_t *loop, bus_pipe_ready_fn *fn, void *arg)
{
    assert (self && loop && fn);
    assert (self->dir == BUS_PIPE_RECEIVER);
    bus_pipe_detach (self);
    self->item = (zmq_pollitem_t) { NULL, self->epfd, ZMQ_POLLIN, 0 };
    self->ready_fn = fn;
    self->ready_arg = arg;
    if (bus_loop_poller (loop, &self->item, s_ready, self) == -1)
        return -1;
    //  A poll error must not silently end the data path
    bus_loop_poller_set_tolerant (loop, &self->item);
    self->loop = loop;
    bus_pipe_mem_register (self, true);
    return 0;
}

void
bus_pipe_detach (bus_pipe_t *self)
{
    if (self->loop) {
        bus_pipe_mem_register (self, false);
        bus_loop_poller_end (self->loop, &self->item);
        self->loop = NULL;
    }
}

void
bus_pipe_set_mirror (bus_pipe_t *self, uint32_t sample, uint32_t snaplen,
                     bus_pipe_mirror_fn *fn, void *arg)
{
    if (sample == 0 || !fn) {
        self->mirror_fn = NULL;
        free (self->sample);
        self->sample = NULL;
        return;
    }
    if (!self->sample) {
        self->sample = (bus_pipe_sample_t *) calloc (1, sizeof (bus_pipe_sample_t));
        assert (self->sample);
    }
    self->mirror_every = sample;
    self->mirror_countdown = sample;
    self->mirror_snaplen = snaplen > 128 ? 128 : snaplen;
    self->mirror_arg = arg;
    self->mirror_fn = fn;
}

//  Called for every batch while mirroring is on; fills and hands out the sample
//  for every mirror_every-th. The batch is valid (built here or validated).
static void
s_mirror (bus_pipe_t *self, uint8_t *data, size_t size)
{
    if (--self->mirror_countdown > 0)
        return;
    self->mirror_countdown = self->mirror_every;
    bus_batch_iter_t iter;
    if (bus_batch_iter_init (&iter, data, size, NULL, 0))
        return;
    bus_pipe_sample_t *sample = self->sample;
    snprintf (sample->pipe, sizeof sample->pipe, "%s", self->name);
    sample->packets = iter.count;
    sample->bytes = 0;
    sample->headers_size = 0;
    bus_packet_t pkt;
    while (bus_batch_iter_next (&iter, &pkt)) {
        sample->bytes += (uint32_t) pkt.len;
        size_t snap = pkt.len < self->mirror_snaplen ? pkt.len : self->mirror_snaplen;
        if (sample->headers_size + 2 + snap <= sizeof sample->headers) {
            uint8_t *p = sample->headers + sample->headers_size;
            p [0] = (uint8_t) (snap >> 8);
            p [1] = (uint8_t) snap;
            memcpy (p + 2, pkt.data, snap);
            sample->headers_size += (uint32_t) (2 + snap);
        }
    }
    self->stats.samples++;
    self->mirror_fn (self, sample, self->mirror_arg);
}

bool
bus_pipe_writable (bus_pipe_t *self)
{
    assert (self->dir == BUS_PIPE_SENDER);
    bus_pipe_t *peer = bus_pipe_mem_peer (self);
    if (peer)
        return bus_pipe_mem_writable (peer);
    if (!s_connect (self, false))
        return false;
    if (!self->blocked)
        return true;
    struct pollfd pfd = { self->fd, POLLOUT, 0 };
    if (poll (&pfd, 1, 0) == 1) {
        if (pfd.revents & (POLLHUP | POLLERR)) {
            s_unlink (self, EPIPE);
            return s_connect (self, true);
        }
        if (pfd.revents & POLLOUT)
            self->blocked = false;
    }
    return !self->blocked;
}

//  Sends one message: the 8-byte header, then size bytes of records, and the
//  shared descriptor (SCM_RIGHTS) while the link has not carried it yet.
//  Reconnects once when the receiver was replaced; that resend is the new
//  link's first message, so it carries the descriptor too. 0, or -1 when
//  dropped (a dropped message leaves the descriptor to the next one).
static int
s_send_message (bus_pipe_t *self, const uint8_t *header, const uint8_t *records, size_t size)
{
    if (self->fd == -1 && !s_connect (self, false))
        return -1;
    struct iovec iov [2] = {
        { (void *) header, BUS_BATCH_HEADER },
        { (void *) records, size }
    };
    union {
        struct cmsghdr align;
        char buf [CMSG_SPACE (sizeof (int))];
    } ctrl;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
        bool carry = bus_pipe_fd_carry (self, &msg, ctrl.buf, sizeof ctrl.buf);
        if (sendmsg (self->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) != -1) {
            if (carry)
                bus_pipe_fd_carried (self);
            return 0;
        }
        if (errno == EAGAIN || errno == ENOBUFS || errno == ENOMEM) {
            self->blocked = true;
            return -1;
        }
        //  Too many descriptors in flight for this user (receivers not
        //  reading): drop, the link itself is fine
        if (errno == ETOOMANYREFS)
            return -1;
        if (errno == EINTR)
            continue;
        if (bus_pipe_fd_refused (self, carry, errno))
            continue;
        //  EPIPE, ECONNRESET, ECONNREFUSED: the receiver is gone; a new one
        //  may be listening already
        s_unlink (self, errno);
        if (!s_connect (self, true))
            return -1;
    }
    return -1;
}

void
bus_pipe_count_drop (bus_pipe_t *self, uint32_t count)
{
    self->stats.batches_dropped++;
    self->stats.packets_dropped += count;
}

//  Sends count records (size bytes from records) under a header of their own
//  and counts them as sent or dropped. 0, or -1 when dropped.
static int
s_send_run (bus_pipe_t *self, const uint8_t *records, size_t size, uint32_t count, size_t bytes)
{
    uint8_t header [BUS_BATCH_HEADER];
    bus_batch_header_write (header, count, BUS_BATCH_HEADER + size);
    if (s_send_message (self, header, records, size) == 0) {
        self->stats.batches_sent++;
        self->stats.packets_sent += count;
        self->stats.bytes_sent += bytes;
        return 0;
    }
    bus_pipe_count_drop (self, count);
    return -1;
}

int
bus_pipe_send (bus_pipe_t *self, bus_batch_t *batch)
{
    assert (self && batch);
    assert (self->dir == BUS_PIPE_SENDER);
    size_t count = bus_batch_count (batch);
    if (count == 0)
        return 0;
    uint8_t *data = (uint8_t *) bus_batch_data (batch);
    size_t size = bus_batch_size (batch);
    if (self->mirror_fn)
        s_mirror (self, data, size);
    int rc = 0;
    bus_pipe_t *peer = bus_pipe_mem_peer (self);
    if (peer)
        rc = bus_pipe_mem_send (self, peer, data, size, (uint32_t) count, bus_batch_bytes (batch));
    else
    if (size <= BUS_PIPE_MSG_MAX)
        rc = s_send_run (self, data + BUS_BATCH_HEADER, size - BUS_BATCH_HEADER,
                         (uint32_t) count, bus_batch_bytes (batch));
    else {
        //  Too big for one message: runs of whole records, each under a header
        //  of its own, so each message is a valid batch. After a dropped run
        //  the rest is dropped too: order is kept.
        bus_batch_iter_t iter;
        int valid = bus_batch_iter_init (&iter, data, size, NULL, 0);
        assert (valid == 0);
        size_t start = BUS_BATCH_HEADER, end = start;
        uint32_t run_count = 0;
        size_t run_bytes = 0;
        bus_packet_t pkt;
        while (bus_batch_iter_next (&iter, &pkt)) {
            //  iter.offset is now the end of this packet's record
            if (run_count && BUS_BATCH_HEADER + iter.offset - start > BUS_PIPE_MSG_MAX) {
                if (rc == 0)
                    rc = s_send_run (self, data + start, end - start, run_count, run_bytes);
                else
                    bus_pipe_count_drop (self, run_count);
                start = end;
                run_count = 0;
                run_bytes = 0;
            }
            end = iter.offset;
            run_count++;
            run_bytes += pkt.len;
        }
        if (rc == 0)
            rc = s_send_run (self, data + start, end - start, run_count, run_bytes);
        else
            bus_pipe_count_drop (self, run_count);
    }
    bus_batch_reset (batch);
    return rc;
}

//  Takes new senders from the listening socket.
static void
s_accept (bus_pipe_t *self)
{
    int fd;
    while ((fd = accept4 (self->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
        if (self->conn_count == BUS_PIPE_SENDERS_MAX) {
            bus_warn ("pipe %s: more than %d senders, refusing one", self->name, BUS_PIPE_SENDERS_MAX);
            close (fd);
            continue;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
        if (epoll_ctl (self->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
            bus_warn ("pipe %s: epoll: %s", self->name, strerror (errno));
            close (fd);
            continue;
        }
        self->conns [self->conn_count++] = fd;
        self->stats.connects++;
    }
}

//  A sender's link ended: the descriptor it passed ends with it, so that a
//  restarted sender can bind what it shared (nat its UDP port) again.
static void
s_drop_sender (bus_pipe_t *self, size_t i)
{
    int conn = self->conns [i];
    bus_pipe_fd_link_ended (self, conn);
    epoll_ctl (self->epfd, EPOLL_CTL_DEL, conn, NULL);
    close (conn);
    self->conns [i] = self->conns [--self->conn_count];
}

//  Reads one message from the first sender that has one, round robin. Its size,
//  0 when none has, or -1 when the message was longer than a batch can be. A
//  descriptor that came with a message is in *fd_p (else -1), from the
//  connection *conn_p, until the batch is found valid or not.
static ssize_t
s_read (bus_pipe_t *self, int *fd_p, int *conn_p)
{
    *fd_p = -1;
    for (size_t k = 0; k < self->conn_count; ) {
        size_t i = (self->next + k) % self->conn_count;
        struct iovec iov = { self->buf, BUS_PIPE_MSG_MAX };
        //  Room for a few: a well-behaved sender passes one
        union {
            struct cmsghdr align;
            char buf [CMSG_SPACE (4 * sizeof (int))];
        } ctrl;
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1,
            .msg_control = ctrl.buf, .msg_controllen = sizeof ctrl.buf
        };
        ssize_t n = recvmsg (self->conns [i], &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        int fd = n >= 0 ? bus_pipe_fd_take (self, &msg) : -1;
        if (n > 0) {
            self->next = i + 1;
            if (msg.msg_flags & MSG_TRUNC) {
                bus_pipe_close_fd (&fd);
                snprintf (self->error, sizeof self->error,
                          "message longer than %d bytes", BUS_PIPE_MSG_MAX);
                return -1;
            }
            *fd_p = fd;
            *conn_p = self->conns [i];
            return n;
        }
        bus_pipe_close_fd (&fd);
        if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
            k++;
            continue;
        }
        //  0: the sender closed (a restart); a sender never sends an empty
        //  message, so one that does is dropped the same way
        s_drop_sender (self, i);
        if (self->conn_count)
            self->next %= self->conn_count;
    }
    return 0;
}

//  Validates a received batch (from the socket or from memory) and hands it out.
static int
s_deliver (bus_pipe_t *self, bus_batch_iter_t *iter, uint8_t *data, size_t size)
{
    if (bus_batch_iter_init (iter, data, size, self->error, sizeof self->error)) {
        self->stats.batches_rejected++;
        bus_debug ("pipe %s: batch rejected: %s", self->name, self->error);
        return -1;
    }
    self->stats.batches_received++;
    self->stats.packets_received += iter->count;
    if (self->mirror_fn)
        s_mirror (self, data, size);
    self->stats.bytes_received += iter->bytes;
    self->last = iter->count < BUS_BATCH_MAX ? S_PARTIAL : S_FULL;
    return 1;
}

int
bus_pipe_recv (bus_pipe_t *self, bus_batch_iter_t *iter, int timeout_ms)
{
    assert (self && iter);
    assert (self->dir == BUS_PIPE_RECEIVER);
    memset (iter, 0, sizeof *iter);
    //  Batches handed over in memory first (bus_pipe_mem.c: no system call)
    uint8_t *data;
    size_t size;
    if (bus_pipe_mem_take (self, &data, &size))
        return s_deliver (self, iter, data, size);
    int64_t deadline = timeout_ms > 0 ? zclock_mono () + timeout_ms : 0;
    //  A partial batch means its sender had nothing more when it sent it: most
    //  likely nothing waits behind it, so do not ask (at ping rates that read
    //  would find nothing every time). If something does wait, the descriptor
    //  is still readable and the loop calls again: one epoll_wait instead of
    //  one recvmsg, and batches under load are full.
    if (timeout_ms == 0 && self->last == S_PARTIAL) {
        self->last = S_NONE;
        return 0;
    }
    //  Read first: under load a batch is always there, and a wait per batch
    //  would cost a system call each. Three rounds are enough for timeout 0:
    //  read, take new senders, read again.
    for (int round = 0; ; round++) {
        int fd, conn;
        ssize_t n = s_read (self, &fd, &conn);
        if (n < 0) {
            self->stats.batches_rejected++;
            bus_debug ("pipe %s: batch rejected: %s", self->name, self->error);
            return -1;
        }
        if (n > 0) {
            int rc = s_deliver (self, iter, self->buf, (size_t) n);
            bus_pipe_fd_received (self, fd, conn, rc == 1);
            return rc;
        }
        //  Drained what the last wakeup brought: new senders can wait for the
        //  next call, the descriptor stays readable for them (one system call
        //  less per wakeup)
        if (timeout_ms == 0 && round == 0 && self->last != S_NONE) {
            self->last = S_NONE;
            return 0;
        }
        self->last = S_NONE;
        int wait = 0;
        if (timeout_ms < 0)
            wait = -1;
        else
        if (timeout_ms > 0) {
            int64_t left = deadline - zclock_mono ();
            wait = left > 0 ? (int) left : 0;
        }
        if (wait == 0 && round >= 2)
            return 0;
        struct epoll_event events [BUS_PIPE_SENDERS_MAX + 1];
        int ready = epoll_wait (self->epfd, events, BUS_PIPE_SENDERS_MAX + 1, wait);
        if (ready <= 0) {
            if (ready == -1 && errno != EINTR)
                bus_warn ("pipe %s: epoll_wait: %s", self->name, strerror (errno));
            return 0;               //  timed out, or interrupted
        }
        for (int i = 0; i < ready; i++)
            if (events [i].data.fd == self->fd)
                s_accept (self);
    }
}

//  ---------------------------------------------------------------------------
//  Self test

//  The deterministic content of packet i of batch b, so the receiver can check
//  every byte.
static uint8_t
s_byte (size_t b, size_t i, size_t k)
{
    return (uint8_t) (b * 31 + i * 7 + k);
}

static size_t
s_len (size_t b, size_t i)
{
    static const size_t lens [] = { 1400, 64, 0, 1, 1500, 577, 9, 1280 };
    return lens [(b + i) % (sizeof lens / sizeof lens [0])];
}

//  Sends probe batches until one arrives, so the test does not race the ipc
//  connect (the sender drops while it has no receiver, by design).
static void
s_wait_link (bus_pipe_t *tx, bus_pipe_t *rx)
{
    bus_batch_t *probe = bus_batch_new (0);
    bus_batch_iter_t iter;
    int64_t deadline = zclock_mono () + 5000;
    bool linked = false;
    while (!linked && zclock_mono () < deadline) {
        bus_batch_add (probe, 0, "probe", 5);
        bus_pipe_send (tx, probe);
        linked = bus_pipe_recv (rx, &iter, 20) == 1;
    }
    assert (linked);
    while (bus_pipe_recv (rx, &iter, 50) == 1)
        ;
    bus_batch_destroy (&probe);
}

void
bus_pipe_test_on_sample (bus_pipe_t *pipe, const bus_pipe_sample_t *sample, void *arg)
{
    bus_pipe_test_mirror_seen_t *seen = (bus_pipe_test_mirror_seen_t *) arg;
    seen->calls++;
    seen->last = *sample;
}

void
bus_pipe_test_fill (bus_batch_t *batch, size_t b, size_t count, size_t len)
{
    for (size_t i = 0; i < count; i++) {
        uint8_t *dest = bus_batch_reserve (batch, (uint32_t) (b * 1000 + i), len);
        assert (dest);
        for (size_t k = 0; k < len; k++)
            dest [k] = s_byte (b, i, k);
    }
}

void
bus_pipe_test_pass (bus_pipe_t *tx, bus_pipe_t *rx, bus_batch_t *batch, bus_batch_iter_t *iter,
                    size_t b, size_t count, size_t len)
{
    bus_pipe_test_fill (batch, b, count, len);
    assert (bus_pipe_send (tx, batch) == 0);
    assert (bus_pipe_recv (rx, iter, 2000) == 1);
    bus_pipe_test_check (iter, b, 0, len);
}

void
bus_pipe_test_check (bus_batch_iter_t *iter, size_t b, size_t first, size_t len)
{
    bus_packet_t pkt;
    size_t i = first;
    while (bus_batch_iter_next (iter, &pkt)) {
        assert (pkt.tag == b * 1000 + i && pkt.len == len);
        for (size_t k = 0; k < len; k++)
            assert (pkt.data [k] == s_byte (b, i, k));
        i++;
    }
    assert (i == first + iter->count);
}

int
bus_pipe_test_rogue (bus_pipe_t *rx)
{
    int fd = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr;
    assert (fd != -1 && s_address (&addr, bus_pipe_path (rx)) == 0);
    assert (connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0);
    return fd;
}

int
bus_pipe_test_on_ready (bus_pipe_t *pipe, void *arg)
{
    bus_pipe_test_loop_seen_t *seen = (bus_pipe_test_loop_seen_t *) arg;
    assert (pipe == seen->rx);
    bus_batch_iter_t iter;
    while (bus_pipe_recv (pipe, &iter, 0) == 1)
        seen->batches++;
    return seen->batches >= 3 ? -1 : 0;
}

int
bus_pipe_test_on_give_up (bus_loop_t *loop, int timer_id, void *arg)
{
    return -1;
}

void
bus_pipe_test (bool verbose)
{
    printf (" * bus_pipe: ");
    bus_batch_t *batch = bus_batch_new (0);
    bus_batch_iter_t iter;
    bus_packet_t pkt;
    struct stat st;

    char dir [] = "/tmp/bus-pipe-test-XXXXXX";
    assert (mkdtemp (dir));
    assert (bus_pipe_new (dir, "bad/name", BUS_PIPE_SENDER, 0) == NULL);
    assert (bus_pipe_new (dir, "", BUS_PIPE_SENDER, 0) == NULL);
    assert (bus_pipe_new (dir, "x", (bus_pipe_dir_t) 7, 0) == NULL);
    assert (bus_pipe_new ("/nonexistent/dir", "x", BUS_PIPE_RECEIVER, 0) == NULL);
    //  A sender may start before its receiver: it drops, counted, until linked
    bus_pipe_t *tx = bus_pipe_new (dir, "device->crypto", BUS_PIPE_SENDER, 16);
    assert (tx && bus_pipe_fd (tx) == -1 && !bus_pipe_writable (tx));
    bus_batch_add (batch, 0, "early", 5);
    assert (bus_pipe_send (tx, batch) == -1 && bus_batch_count (batch) == 0);
    bus_pipe_t *rx = bus_pipe_new (dir, "device->crypto", BUS_PIPE_RECEIVER, 8);
    assert (rx && bus_pipe_fd (rx) >= 0);
    assert (strstr (bus_pipe_path (rx), "/pipe-device->crypto.ipc"));
    //  A pipe of schemas/pipes.def lives in its receiver's directory, which
    //  the receiver makes, 0700 (nat's sandbox may create files there only)
    assert (bus_pipe_receiver ("crypto-nat") && streq (bus_pipe_receiver ("crypto-nat"), "nat"));
    assert (streq (bus_pipe_receiver ("crypto-dev"), "device"));
    assert (bus_pipe_receiver ("device->crypto") == NULL && bus_pipe_receiver (NULL) == NULL);
    bus_pipe_t *declared_tx = bus_pipe_new (dir, "crypto-nat", BUS_PIPE_SENDER, 0);
    bus_pipe_t *declared = bus_pipe_new (dir, "crypto-nat", BUS_PIPE_RECEIVER, 0);
    assert (declared && declared_tx);
    char expect [BUS_PATH_MAX];
    snprintf (expect, sizeof expect, "%s/nat/pipe-crypto-nat.ipc", dir);
    assert (streq (bus_pipe_path (declared), expect) && streq (bus_pipe_path (declared_tx), expect));
    assert (stat (bus_pipe_path (declared), &st) == 0 && S_ISSOCK (st.st_mode));
    snprintf (expect, sizeof expect, "%s/nat", dir);
    assert (stat (expect, &st) == 0 && S_ISDIR (st.st_mode) && (st.st_mode & 0777) == 0700);
    s_wait_link (declared_tx, declared);
    bus_pipe_destroy (&declared_tx);
    bus_pipe_destroy (&declared);
    assert (rmdir (expect) == 0);
    assert (stat (bus_pipe_path (rx), &st) == 0 && S_ISSOCK (st.st_mode));
    s_wait_link (tx, rx);
    assert (bus_pipe_fd (tx) >= 0 && bus_pipe_writable (tx));
    bus_pipe_stats_t stats0, stats;
    bus_pipe_stats (tx, &stats0);
    assert (stats0.batches_dropped >= 1 && stats0.connects == 1);

    //  Round trips: batches of 1, 16 and 64 packets of mixed sizes, every byte
    //  checked
    size_t counts [] = { 1, 16, 64, 64, 1, 16 };
    size_t sent_pkts = 0, sent_bytes = 0;
    for (size_t b = 0; b < sizeof counts / sizeof counts [0]; b++) {
        for (size_t i = 0; i < counts [b]; i++) {
            size_t len = s_len (b, i);
            uint8_t *dest = bus_batch_reserve (batch, (uint32_t) (b * 1000 + i), len);
            assert (dest);
            for (size_t k = 0; k < len; k++)
                dest [k] = s_byte (b, i, k);
            sent_bytes += len;
        }
        sent_pkts += counts [b];
        assert (bus_pipe_send (tx, batch) == 0);
        assert (bus_batch_count (batch) == 0);
        size_t i = 0;
        while (i < counts [b]) {
            assert (bus_pipe_recv (rx, &iter, 2000) == 1);
            while (bus_batch_iter_next (&iter, &pkt)) {
                assert (pkt.tag == b * 1000 + i);
                assert (pkt.len == s_len (b, i));
                for (size_t k = 0; k < pkt.len; k++)
                    assert (pkt.data [k] == s_byte (b, i, k));
                i++;
            }
        }
        assert (i == counts [b]);
    }
    bus_pipe_stats (tx, &stats);
    assert (stats.batches_sent - stats0.batches_sent >= 6);
    assert (stats.packets_sent - stats0.packets_sent == sent_pkts);
    assert (stats.bytes_sent - stats0.bytes_sent == sent_bytes);
    assert (stats.batches_dropped == stats0.batches_dropped);
    bus_pipe_stats (rx, &stats);
    assert (stats.packets_received - stats0.packets_sent == sent_pkts);
    assert (stats.bytes_received - stats0.bytes_sent == sent_bytes);
    assert (stats.batches_rejected == 0);
    //  Nothing more: recv returns 0 in time
    int64_t t0 = zclock_mono ();
    assert (bus_pipe_recv (rx, &iter, 50) == 0);
    assert (zclock_mono () - t0 < 1000);
    assert (bus_pipe_recv (rx, &iter, 0) == 0);
    //  An empty batch is not sent
    assert (bus_pipe_send (tx, batch) == 0);

    //  Big packets: 64 of 9000 bytes (576 KiB) go as messages of at most
    //  BUS_PIPE_MSG_MAX, each a valid batch, in order
    bus_batch_t *big = bus_batch_new (BUS_BATCH_HEADER + BUS_BATCH_MAX * BUS_BATCH_STRIDE (9000));
    bus_pipe_test_fill (big, 7, 64, 9000);
    bus_pipe_stats (tx, &stats0);
    assert (bus_pipe_send (tx, big) == 0);
    bus_pipe_stats (tx, &stats);
    assert (stats.batches_sent - stats0.batches_sent == 5);      //  14 packets a message
    size_t got = 0;
    while (got < 64) {
        assert (bus_pipe_recv (rx, &iter, 2000) == 1);
        assert (iter.size <= BUS_PIPE_MSG_MAX);
        size_t n = iter.count;
        bus_pipe_test_check (&iter, 7, got, 9000);
        got += n;
    }
    //  and the longest packet a batch can hold, alone
    bus_batch_destroy (&big);
    big = bus_batch_new (BUS_BATCH_HEADER + BUS_BATCH_STRIDE (BUS_BATCH_PKT_MAX));
    bus_pipe_test_fill (big, 8, 1, BUS_BATCH_PKT_MAX);
    assert (bus_pipe_send (tx, big) == 0);
    assert (bus_pipe_recv (rx, &iter, 2000) == 1 && iter.count == 1);
    bus_pipe_test_check (&iter, 8, 0, BUS_BATCH_PKT_MAX);
    bus_batch_destroy (&big);

    //  Malformed input from a foreign sender is rejected and counted, the
    //  next good batch still arrives
    bus_batch_add (batch, 1, "0123456789", 10);
    bus_batch_add (batch, 2, "abc", 3);
    size_t n = bus_batch_size (batch);
    uint8_t *good = (uint8_t *) malloc (BUS_PIPE_MSG_MAX + 100);
    memset (good, 0, BUS_PIPE_MSG_MAX + 100);
    memcpy (good, bus_batch_data (batch), n);
    bus_batch_reset (batch);
    int rogue = bus_pipe_test_rogue (rx);
    assert (send (rogue, good, n - 1, 0) == (ssize_t) n - 1);            //  truncated
    good [2] = 5;
    assert (send (rogue, good, n, 0) == (ssize_t) n);                    //  count lies
    good [2] = 2;
    assert (send (rogue, good, BUS_PIPE_MSG_MAX + 100, 0) > 0);         //  too long
    assert (send (rogue, good, n, 0) == (ssize_t) n);                    //  good
    int rejected = 0, good_seen = 0;
    for (int i = 0; i < 50 && good_seen == 0; i++) {
        int rc = bus_pipe_recv (rx, &iter, 100);
        if (rc == -1) {
            rejected++;
            if (verbose)
                printf ("\n   rejected: %s", bus_pipe_error (rx));
        }
        if (rc == 1)
            good_seen++;
    }
    assert (rejected == 3 && good_seen == 1 && iter.count == 2);
    bus_pipe_stats (rx, &stats);
    assert (stats.batches_rejected == 3);
    //  An empty message ends that sender's link, nobody else's
    assert (send (rogue, good, 0, 0) == 0);
    assert (bus_pipe_recv (rx, &iter, 100) == 0);
    close (rogue);
    free (good);
    bus_pipe_test_pass (tx, rx, batch, &iter, 9, 3, 100);

    //  Two senders into one receiver: both arrive
    bus_pipe_t *tx2 = bus_pipe_new (dir, "device->crypto", BUS_PIPE_SENDER, 0);
    assert (tx2);
    bus_pipe_test_fill (batch, 10, 2, 50);
    assert (bus_pipe_send (tx2, batch) == 0);
    bus_pipe_test_fill (batch, 11, 2, 50);
    assert (bus_pipe_send (tx, batch) == 0);
    bool seen10 = false, seen11 = false;
    for (int i = 0; i < 2; i++) {
        assert (bus_pipe_recv (rx, &iter, 2000) == 1);
        assert (bus_batch_iter_next (&iter, &pkt));
        seen10 |= pkt.tag == 10000;
        seen11 |= pkt.tag == 11000;
    }
    assert (seen10 && seen11);
    bus_pipe_destroy (&tx2);

    //  Mirroring: every 2nd batch, snaplen 4, on both sides
    bus_pipe_test_mirror_seen_t seen_tx = { 0 }, seen_rx = { 0 };
    bus_pipe_set_mirror (tx, 2, 4, bus_pipe_test_on_sample, &seen_tx);
    bus_pipe_set_mirror (rx, 1, 300, bus_pipe_test_on_sample, &seen_rx);
    for (int b = 0; b < 4; b++) {
        bus_batch_add (batch, 1, "ABCDEFGH", 8);
        bus_batch_add (batch, 2, "xy", 2);
        if (b == 3)
            bus_batch_reserve (batch, 3, 0);
        assert (bus_pipe_send (tx, batch) == 0);
        assert (bus_pipe_recv (rx, &iter, 2000) == 1);
    }
    assert (seen_tx.calls == 2 && seen_rx.calls == 4);
    assert (streq (seen_tx.last.pipe, "device->crypto"));
    assert (seen_tx.last.packets == 3 && seen_tx.last.bytes == 10);
    assert (seen_tx.last.headers_size == 2 + 4 + 2 + 2 + 2);
    assert (memcmp (seen_tx.last.headers, "\0\4ABCD\0\2xy\0\0", 12) == 0);
    //  snaplen is capped at 128; the rx side saw whole short packets
    assert (memcmp (seen_rx.last.headers, "\0\10ABCDEFGH", 10) == 0);
    //  Headers that do not fit 4096 bytes are left out, whole
    for (int i = 0; i < 64; i++)
        memset (bus_batch_reserve (batch, 0, 200), 'h', 200);
    assert (bus_pipe_send (tx, batch) == 0);
    assert (bus_pipe_recv (rx, &iter, 2000) == 1);
    assert (seen_rx.last.packets == 64 && seen_rx.last.bytes == 64 * 200);
    assert (seen_rx.last.headers_size == 31 * 130);
    bus_pipe_set_mirror (tx, 0, 0, NULL, NULL);
    bus_pipe_set_mirror (rx, 0, 0, NULL, NULL);
    bus_batch_add (batch, 1, "x", 1);
    assert (bus_pipe_send (tx, batch) == 0);
    assert (bus_pipe_recv (rx, &iter, 2000) == 1);
    assert (seen_tx.calls == 2 && seen_rx.calls == 5);
    bus_pipe_stats (rx, &stats);
    assert (stats.samples == 5);

    //  In a bus_loop: the handler runs when batches wait, and a new sender's
    //  first batch wakes it too
    bus_loop_t *loop = bus_loop_new ();
    bus_pipe_test_loop_seen_t seen = { rx, 0 };
    assert (bus_pipe_attach (rx, loop, bus_pipe_test_on_ready, &seen) == 0);
    bus_loop_timer (loop, 5000, 1, bus_pipe_test_on_give_up, NULL);
    bus_pipe_test_fill (batch, 12, 1, 10);
    assert (bus_pipe_send (tx, batch) == 0);
    bus_pipe_test_fill (batch, 12, 1, 10);
    assert (bus_pipe_send (tx, batch) == 0);
    tx2 = bus_pipe_new (dir, "device->crypto", BUS_PIPE_SENDER, 0);
    bus_pipe_test_fill (batch, 13, 1, 10);
    assert (bus_pipe_send (tx2, batch) == 0);
    bus_loop_start (loop);
    assert (seen.batches == 3);
    bus_pipe_detach (rx);
    bus_pipe_detach (rx);       //  idempotent
    bus_loop_destroy (&loop);
    bus_pipe_destroy (&tx2);

    //  Drop when full: a receiver that does not read; the sender never blocks,
    //  counts the drops, says it is not writable, and works again once the
    //  receiver reads
    bus_pipe_stats (tx, &stats0);
    t0 = zclock_mono ();
    int dropped = 0;
    for (int b = 0; b < 2000; b++) {
        for (int i = 0; i < BUS_BATCH_MAX; i++)
            memset (bus_batch_reserve (batch, 0, 1400), i, 1400);
        if (bus_pipe_send (tx, batch) == -1)
            dropped++;
    }
    int64_t elapsed = zclock_mono () - t0;
    bus_pipe_stats (tx, &stats);
    if (verbose)
        printf ("\n   2000 sends in %d ms, %d dropped", (int) elapsed, dropped);
    assert (elapsed < 3000);
    assert (dropped > 1000);
    uint64_t pkts_sent = stats.packets_sent - stats0.packets_sent;
    assert (pkts_sent + stats.packets_dropped - stats0.packets_dropped == 2000 * 64);
    assert (!bus_pipe_writable (tx));
    //  A batch split in 5 messages into the full queue: each run counted dropped
    big = bus_batch_new (BUS_BATCH_HEADER + BUS_BATCH_MAX * BUS_BATCH_STRIDE (9000));
    bus_pipe_test_fill (big, 15, 64, 9000);
    bus_pipe_stats (tx, &stats0);
    assert (bus_pipe_send (tx, big) == -1 && bus_batch_count (big) == 0);
    bus_pipe_stats (tx, &stats);
    assert (stats.batches_dropped - stats0.batches_dropped == 5);
    assert (stats.packets_dropped - stats0.packets_dropped == 64);
    assert (stats.packets_sent == stats0.packets_sent);
    bus_batch_destroy (&big);
    uint64_t drained = 0;
    while (bus_pipe_recv (rx, &iter, 200) == 1)
        drained += iter.count;
    assert (drained > 0 && drained == pkts_sent);
    assert (bus_pipe_writable (tx));

    //  A receiver that restarts: the first send after it finds the new one
    bus_pipe_destroy (&rx);
    assert (stat (bus_pipe_path (tx), &st) == -1);
    rx = bus_pipe_new (dir, "device->crypto", BUS_PIPE_RECEIVER, 8);
    assert (rx);
    bus_pipe_test_pass (tx, rx, batch, &iter, 14, 1, 20);
    bus_pipe_stats (tx, &stats);
    assert (stats.connects == 2);

    //  No receiver at all: every send drops at once, the sender does not wait
    bus_pipe_destroy (&rx);
    t0 = zclock_mono ();
    for (int b = 0; b < 200; b++) {
        bus_batch_add (batch, 0, "late", 4);
        assert (bus_pipe_send (tx, batch) == -1);
    }
    assert (zclock_mono () - t0 < 1000);
    assert (!bus_pipe_writable (tx));
    //  and it comes back without touching the sender
    rx = bus_pipe_new (dir, "device->crypto", BUS_PIPE_RECEIVER, 8);
    assert (rx);
    s_wait_link (tx, rx);

    bus_pipe_destroy (&tx);
    bus_pipe_destroy (&rx);
    bus_pipe_destroy (&rx);     //  idempotent
    bus_batch_destroy (&batch);
    rmdir (dir);
    printf ("OK\n");
}
