/*  bus_pipe_fd: descriptor passing over a bus_pipe (bus_pipe_share_fd). nat
    shares its UDP socket with the tunnel, which then sends its datagrams
    itself, one hop less per packet. The descriptor goes with the first message
    of every link (SCM_RIGHTS), and the receiver's copy lives as long as that
    link, so a restarted sender can bind its port again. Apart from the socket
    pipe because it has its own rules (which message carries it, what a
    foreign sender may pass, when the copy is closed) and its own test. */
#include "bus_pipe_priv.h"
#include "bus_log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

void
bus_pipe_share_fd (bus_pipe_t *self, int fd)
{
    assert (self);
    assert (self->dir == BUS_PIPE_SENDER);
    self->share_fd = fd < 0 ? -1 : fd;
    self->share_pending = self->share_fd != -1;
}

int
bus_pipe_passed_fd (bus_pipe_t *self)
{
    assert (self);
    return self->passed_fd;
}

uint64_t
bus_pipe_passed_gen (bus_pipe_t *self)
{
    assert (self);
    return self->passed_gen;
}

bool
bus_pipe_fd_carry (bus_pipe_t *self, struct msghdr *msg, char *ctrl, size_t ctrlsize)
{
    if (!self->share_pending || self->share_fd == -1)
        return false;
    assert (ctrlsize >= CMSG_SPACE (sizeof (int)));
    memset (ctrl, 0, ctrlsize);
    msg->msg_control = ctrl;
    msg->msg_controllen = CMSG_SPACE (sizeof (int));
    struct cmsghdr *cmsg = CMSG_FIRSTHDR (msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN (sizeof (int));
    memcpy (CMSG_DATA (cmsg), &self->share_fd, sizeof (int));
    return true;
}

void
bus_pipe_fd_carried (bus_pipe_t *self)
{
    self->share_pending = false;
    self->stats.fds_passed++;
}

bool
bus_pipe_fd_refused (bus_pipe_t *self, bool carried, int err)
{
    //  Our socket is open, so the caller closed the shared descriptor
    //  without calling bus_pipe_share_fd (-1) first: stop sharing it
    if (!carried || err != EBADF)
        return false;
    bus_warn ("pipe %s: shared descriptor %d is closed, no longer sharing it",
              self->name, self->share_fd);
    self->share_fd = -1;
    self->share_pending = false;
    return true;
}

void
bus_pipe_close_fd (int *fd_p)
{
    if (*fd_p != -1) {
        close (*fd_p);
        *fd_p = -1;
    }
}

//  The passed descriptor becomes fd (from conn), or none (-1); the previous one
//  is closed. Every change bumps the generation callers compare.
static void
s_set_passed (bus_pipe_t *self, int fd, int conn)
{
    bus_pipe_close_fd (&self->passed_fd);
    self->passed_fd = fd;
    self->passed_conn = fd == -1 ? -1 : conn;
    self->passed_gen++;
}

void
bus_pipe_fd_received (bus_pipe_t *self, int fd, int conn, bool valid)
{
    //  A descriptor counts only with a valid batch: a bad message changes nothing
    if (valid && fd != -1) {
        s_set_passed (self, fd, conn);
        self->stats.fds_passed++;
    }
    else
        bus_pipe_close_fd (&fd);
}

//  A sender's link ended: the descriptor it passed ends with it, so that a
//  restarted sender can bind what it shared (nat its UDP port) again.
void
bus_pipe_fd_link_ended (bus_pipe_t *self, int conn)
{
    if (self->passed_fd != -1 && self->passed_conn == conn)
        s_set_passed (self, -1, -1);
}

//  Of the descriptors that came with a message the first one is kept, every
//  other one is closed. A truncated control buffer means some were lost on the
//  way: none is kept, as if none came.
int
bus_pipe_fd_take (bus_pipe_t *self, struct msghdr *msg)
{
    int first = -1;
    for (struct cmsghdr *cmsg = CMSG_FIRSTHDR (msg); cmsg; cmsg = CMSG_NXTHDR (msg, cmsg)) {
        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (cmsg->cmsg_len - CMSG_LEN (0)) / sizeof (int);
        for (size_t j = 0; j < count; j++) {
            int fd;
            memcpy (&fd, CMSG_DATA (cmsg) + j * sizeof (int), sizeof fd);
            if (first == -1)
                first = fd;
            else
                close (fd);
        }
    }
    if ((msg->msg_flags & MSG_CTRUNC) && first != -1) {
        if (!self->ctrunc_warned)
            bus_warn ("pipe %s: a sender passed more descriptors than expected, keeping none",
                      self->name);
        self->ctrunc_warned = true;
        bus_pipe_close_fd (&first);
    }
    return first;
}

//  ---------------------------------------------------------------------------
//  Self test

//  A UDP socket bound to 127.0.0.1 on port (0: any); its port in *port_p. -1
//  when the bind fails, errno saying why.
static int
s_udp (uint16_t port, uint16_t *port_p)
{
    int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert (fd != -1);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons (port) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (bind (fd, (struct sockaddr *) &addr, sizeof addr) == -1) {
        int err = errno;
        close (fd);
        errno = err;
        return -1;
    }
    socklen_t len = sizeof addr;
    assert (getsockname (fd, (struct sockaddr *) &addr, &len) == 0);
    if (port_p)
        *port_p = ntohs (addr.sin_port);
    return fd;
}

static uint16_t
s_udp_port (int fd)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    assert (getsockname (fd, (struct sockaddr *) &addr, &len) == 0 && addr.sin_family == AF_INET);
    return ntohs (addr.sin_port);
}

//  Open descriptors of this process, to catch a leaked or lost one.
static int
s_fd_count (void)
{
    DIR *d = opendir ("/proc/self/fd");
    assert (d);
    int count = 0;
    struct dirent *e;
    while ((e = readdir (d)))
        if (e->d_name [0] != '.')
            count++;
    closedir (d);
    return count;
}

//  What a foreign sender may do: one message with count descriptors.
static void
s_send_fds (int sock, const void *data, size_t size, const int *fds, int count)
{
    struct iovec iov = { (void *) data, size };
    union {
        struct cmsghdr align;
        char buf [CMSG_SPACE (8 * sizeof (int))];
    } ctrl;
    memset (&ctrl, 0, sizeof ctrl);
    assert (count >= 1 && count <= 8);
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = ctrl.buf, .msg_controllen = CMSG_SPACE (count * sizeof (int))
    };
    struct cmsghdr *cmsg = CMSG_FIRSTHDR (&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN (count * sizeof (int));
    memcpy (CMSG_DATA (cmsg), fds, count * sizeof (int));
    assert (sendmsg (sock, &msg, 0) == (ssize_t) size);
}

typedef struct {
    uint16_t port;              //  of the descriptor seen, 0 before
    bool busy_while_held;       //  the port could not be bound while we held it
    bool gone;                  //  then it was closed with the link
} s_fd_seen_t;

//  The receiver in a loop, its sender a child that sent one partial batch with
//  its UDP socket and exited: the batch, then (in a later call: after a partial
//  batch recv does not read again) the end of the link.
static int
s_on_fd_ready (bus_pipe_t *pipe, void *arg)
{
    s_fd_seen_t *seen = (s_fd_seen_t *) arg;
    bus_batch_iter_t iter;
    while (bus_pipe_recv (pipe, &iter, 0) == 1) {
        int fd = bus_pipe_passed_fd (pipe);
        assert (fd >= 0 && bus_pipe_passed_gen (pipe) == 1);
        seen->port = s_udp_port (fd);
        //  The child has exited: only our copy holds the port now
        int again = s_udp (seen->port, NULL);
        seen->busy_while_held = again == -1 && errno == EADDRINUSE;
        if (again != -1)
            close (again);
    }
    if (seen->port && bus_pipe_passed_fd (pipe) == -1) {
        assert (bus_pipe_passed_gen (pipe) == 2);
        seen->gone = true;
        return -1;
    }
    return 0;
}

//  Passing a descriptor (bus_pipe_share_fd): with the first message of every
//  link, kept by the receiver while that link lasts, never in memory.
void
bus_pipe_fd_test (bool verbose)
{
    printf (" * bus_pipe_fd: ");
    char dir [] = "/tmp/bus-pipe-fd-test-XXXXXX";
    assert (mkdtemp (dir));
    bus_batch_t *batch = bus_batch_new (0);
    bus_batch_iter_t iter;
    bus_pipe_stats_t stats;
    int fds_at_start = s_fd_count ();

    bus_pipe_t *rx = bus_pipe_new (dir, "nat-crypto", BUS_PIPE_RECEIVER, 8);
    bus_pipe_t *tx = bus_pipe_new (dir, "nat-crypto", BUS_PIPE_SENDER, 0);
    assert (rx && tx);
    assert (bus_pipe_passed_fd (rx) == -1 && bus_pipe_passed_gen (rx) == 0);
    uint16_t port;
    int udp = s_udp (0, &port);
    assert (udp != -1);
    bus_pipe_share_fd (tx, udp);

    //  1. The first batch brings the socket: the same one, usable
    bus_pipe_test_pass (tx, rx, batch, &iter, 30, 2, 20);
    int fd = bus_pipe_passed_fd (rx);
    assert (fd >= 0 && fd != udp && bus_pipe_passed_gen (rx) == 1);
    assert (fcntl (fd, F_GETFD) & FD_CLOEXEC);
    assert (s_udp_port (fd) == port);
    uint16_t port2;
    int other = s_udp (0, &port2);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (port2) };
    to.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (sendto (fd, "hello", 5, 0, (struct sockaddr *) &to, sizeof to) == 5);
    struct pollfd pfd = { other, POLLIN, 0 };
    assert (poll (&pfd, 1, 2000) == 1);
    char text [16];
    struct sockaddr_in from;
    socklen_t from_len = sizeof from;
    assert (recvfrom (other, text, sizeof text, 0, (struct sockaddr *) &from, &from_len) == 5);
    assert (memcmp (text, "hello", 5) == 0 && ntohs (from.sin_port) == port);
    close (other);

    //  2. Later batches on the same link carry nothing, a split one included
    bus_pipe_test_pass (tx, rx, batch, &iter, 31, 1, 20);
    bus_batch_t *big = bus_batch_new (BUS_BATCH_HEADER + BUS_BATCH_MAX * BUS_BATCH_STRIDE (9000));
    bus_pipe_test_fill (big, 32, 64, 9000);
    assert (bus_pipe_send (tx, big) == 0);
    for (size_t got = 0; got < 64; got += iter.count)
        assert (bus_pipe_recv (rx, &iter, 2000) == 1);
    assert (bus_pipe_passed_fd (rx) == fd && bus_pipe_passed_gen (rx) == 1);
    bus_pipe_stats (tx, &stats);
    assert (stats.fds_passed == 1 && stats.batches_sent == 7);
    bus_pipe_stats (rx, &stats);
    assert (stats.fds_passed == 1);
    //  A new descriptor goes with the next message, the first of a split
    //  batch only, and replaces (closes) the receiver's old one
    int fds_before = s_fd_count ();
    uint16_t port_b;
    int udp_b = s_udp (0, &port_b);
    bus_pipe_share_fd (tx, udp_b);
    bus_pipe_test_fill (big, 33, 64, 9000);
    assert (bus_pipe_send (tx, big) == 0);
    for (size_t got = 0; got < 64; got += iter.count)
        assert (bus_pipe_recv (rx, &iter, 2000) == 1);
    fd = bus_pipe_passed_fd (rx);
    assert (fd >= 0 && s_udp_port (fd) == port_b && bus_pipe_passed_gen (rx) == 2);
    assert (s_fd_count () == fds_before + 1);       //  udp_b; the old copy closed
    bus_pipe_stats (tx, &stats);
    assert (stats.fds_passed == 2);
    bus_pipe_stats (rx, &stats);
    assert (stats.fds_passed == 2 && stats.batches_received == 12);
    bus_batch_destroy (&big);

    //  3. A receiver that restarts gets it again with the first batch after
    bus_pipe_destroy (&rx);
    rx = bus_pipe_new (dir, "nat-crypto", BUS_PIPE_RECEIVER, 8);
    assert (rx);
    bus_pipe_test_pass (tx, rx, batch, &iter, 34, 1, 20);
    fd = bus_pipe_passed_fd (rx);
    assert (fd >= 0 && s_udp_port (fd) == port_b && bus_pipe_passed_gen (rx) == 1);
    bus_pipe_stats (tx, &stats);
    assert (stats.fds_passed == 3 && stats.connects == 2);

    //  5. Several descriptors in one message: the first kept, the others
    //  closed; 6. one with a rejected message: closed, nothing changes; and
    //  more than the receiver has room for: none kept
    int rogue = bus_pipe_test_rogue (rx);
    bus_batch_add (batch, 1, "0123456789", 10);
    size_t n = bus_batch_size (batch);
    uint8_t *good = (uint8_t *) calloc (1, BUS_PIPE_MSG_MAX + 100);
    assert (good);
    memcpy (good, bus_batch_data (batch), n);
    bus_batch_reset (batch);
    assert (send (rogue, good, n, 0) == (ssize_t) n);
    assert (bus_pipe_recv (rx, &iter, 2000) == 1);  //  takes the rogue's link
    assert (bus_pipe_passed_gen (rx) == 1);
    fds_before = s_fd_count ();
    uint16_t port_r;
    int two [2] = { s_udp (0, &port_r), open ("/dev/null", O_RDONLY | O_CLOEXEC) };
    assert (two [0] != -1 && two [1] != -1);
    s_send_fds (rogue, good, n, two, 2);
    close (two [0]);
    close (two [1]);
    assert (bus_pipe_recv (rx, &iter, 2000) == 1 && iter.count == 1);
    fd = bus_pipe_passed_fd (rx);
    assert (fd >= 0 && s_udp_port (fd) == port_r && bus_pipe_passed_gen (rx) == 2);
    assert (s_fd_count () == fds_before);           //  one kept, one replaced
    int spare = open ("/dev/null", O_RDONLY | O_CLOEXEC);
    good [2] = 5;                                   //  count lies
    s_send_fds (rogue, good, n, &spare, 1);
    good [2] = 1;
    s_send_fds (rogue, good, BUS_PIPE_MSG_MAX + 100, &spare, 1);    //  too long
    assert (bus_pipe_recv (rx, &iter, 2000) == -1);
    if (verbose)
        printf ("\n   rejected with a descriptor: %s", bus_pipe_error (rx));
    assert (bus_pipe_recv (rx, &iter, 2000) == -1);
    int six [6];
    for (int i = 0; i < 6; i++)
        six [i] = spare;
    s_send_fds (rogue, good, n, six, 6);            //  MSG_CTRUNC
    assert (bus_pipe_recv (rx, &iter, 2000) == 1);
    close (spare);
    assert (bus_pipe_passed_fd (rx) == fd && bus_pipe_passed_gen (rx) == 2);
    assert (s_fd_count () == fds_before);
    bus_pipe_stats (rx, &stats);
    assert (stats.fds_passed == 2 && stats.batches_rejected == 2);
    //  The rogue leaves: what it passed is closed with its link
    close (rogue);
    for (int i = 0; i < 50 && bus_pipe_passed_fd (rx) != -1; i++)
        bus_pipe_recv (rx, &iter, 20);
    assert (bus_pipe_passed_fd (rx) == -1 && bus_pipe_passed_gen (rx) == 3);
    assert (s_fd_count () == fds_before - 3);       //  rogue, its link, its socket
    free (good);

    //  Stopped sharing: a new link carries nothing
    bus_pipe_share_fd (tx, -1);
    bus_pipe_destroy (&rx);
    rx = bus_pipe_new (dir, "nat-crypto", BUS_PIPE_RECEIVER, 8);
    assert (rx);
    bus_pipe_test_fill (batch, 35, 1, 20);
    assert (bus_pipe_send (tx, batch) == 0);
    assert (bus_pipe_recv (rx, &iter, 2000) == 1);
    assert (bus_pipe_passed_fd (rx) == -1 && bus_pipe_passed_gen (rx) == 0);
    bus_pipe_stats (tx, &stats);
    assert (stats.fds_passed == 3);
    bus_pipe_destroy (&tx);
    bus_pipe_destroy (&rx);
    close (udp);
    close (udp_b);

    //  4. The sender goes away (a child that shares its UDP socket, sends one
    //  partial batch and exits): the receiver, in a loop, closes its copy when
    //  it sees the link end, and the port can be bound again
    rx = bus_pipe_new (dir, "nat-crypto", BUS_PIPE_RECEIVER, 8);
    assert (rx);
    pid_t pid = fork ();
    assert (pid != -1);
    if (pid == 0) {
        int sock = s_udp (0, NULL);
        bus_pipe_t *child = bus_pipe_new (dir, "nat-crypto", BUS_PIPE_SENDER, 0);
        if (sock == -1 || !child)
            _exit (1);
        bus_pipe_share_fd (child, sock);
        bus_pipe_test_fill (batch, 36, 1, 20);
        _exit (bus_pipe_send (child, batch) == 0 ? 0 : 2);
    }
    int status;
    assert (waitpid (pid, &status, 0) == pid && WIFEXITED (status) && WEXITSTATUS (status) == 0);
    bus_loop_t *loop = bus_loop_new ();
    s_fd_seen_t seen = { 0 };
    assert (bus_pipe_attach (rx, loop, s_on_fd_ready, &seen) == 0);
    int give_up = bus_loop_timer (loop, 5000, 1, bus_pipe_test_on_give_up, NULL);
    int64_t t0 = zclock_mono ();
    bus_loop_start (loop);
    bus_loop_timer_end (loop, give_up);
    assert (seen.port && seen.busy_while_held && seen.gone);
    assert (zclock_mono () - t0 < 2500);
    int again = s_udp (seen.port, NULL);
    assert (again != -1);
    close (again);
    bus_pipe_detach (rx);

    //  7. Sharing turns the in-memory path off: a descriptor cannot travel in
    //  memory, so batches take the socket while one is shared
    bus_pipe_t *mtx = bus_pipe_new (dir, "nat-crypto", BUS_PIPE_SENDER, 0);
    assert (mtx);
    seen = (s_fd_seen_t) { 0 };
    assert (bus_pipe_attach (rx, loop, s_on_fd_ready, &seen) == 0);
    bus_pipe_set_loop (mtx, loop);
    bus_pipe_test_fill (batch, 37, 1, 20);
    assert (bus_pipe_send (mtx, batch) == 0);
    assert (bus_pipe_recv (rx, &iter, 0) == 1);
    bus_pipe_stats (mtx, &stats);
    assert (stats.batches_in_memory == 1);
    udp = s_udp (0, &port);
    bus_pipe_share_fd (mtx, udp);
    assert (bus_pipe_writable (mtx));
    bus_pipe_test_pass (mtx, rx, batch, &iter, 38, 1, 20);
    fd = bus_pipe_passed_fd (rx);
    assert (fd >= 0 && s_udp_port (fd) == port);
    bus_pipe_stats (mtx, &stats);
    assert (stats.batches_sent == 2 && stats.batches_in_memory == 1 && stats.fds_passed == 1);
    //  Sharing stopped: in memory again; the receiver keeps its copy while
    //  the link lasts
    bus_pipe_share_fd (mtx, -1);
    bus_pipe_test_pass (mtx, rx, batch, &iter, 39, 1, 20);
    bus_pipe_stats (mtx, &stats);
    assert (stats.batches_sent == 3 && stats.batches_in_memory == 2);
    assert (bus_pipe_passed_fd (rx) == fd);
    bus_pipe_destroy (&mtx);
    close (udp);
    bus_pipe_destroy (&rx);
    bus_loop_destroy (&loop);
    bus_batch_destroy (&batch);
    assert (s_fd_count () == fds_at_start);
    rmdir (dir);
    printf ("OK\n");
}
