/*  node_udp_tx: batched UDP sends with GSO (why: node_udp_tx.h). */
#include "node_udp_tx.h"

#include <czmq.h>

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#   define UDP_SEGMENT 103
#endif

typedef union {
    char buf [CMSG_SPACE (sizeof (uint16_t))];
    struct cmsghdr align;
} s_ctrl_t;

struct _node_udp_tx_t {
    int fd;
    bool gso;                           //  the socket takes UDP_SEGMENT (and we want it)
    bool single;
    struct mmsghdr msgs [NODE_UDP_TX_BATCH];
    struct iovec iov [NODE_UDP_TX_BATCH];
    s_ctrl_t ctrl [NODE_UDP_TX_BATCH];
    size_t count [NODE_UDP_TX_BATCH];    //  datagrams in each message (GSO: several)
    size_t bytes [NODE_UDP_TX_BATCH];
    node_udp_tx_stats_t stats;
};

node_udp_tx_t *
node_udp_tx_new (int fd, bool gso)
{
    node_udp_tx_t *self = (node_udp_tx_t *) calloc (1, sizeof *self);
    assert (self);
    self->fd = fd;
    //  GSO is there when the option can be read (Linux 4.18 and later, UDP only)
    if (gso) {
        int value = 0;
        socklen_t len = sizeof value;
        self->gso = getsockopt (fd, SOL_UDP, UDP_SEGMENT, &value, &len) == 0;
    }
    return self;
}

void
node_udp_tx_destroy (node_udp_tx_t **self_p)
{
    if (self_p && *self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

void node_udp_tx_set_single (node_udp_tx_t *self, bool single) { self->single = single; }
bool node_udp_tx_gso (node_udp_tx_t *self) { return self->gso && !self->single; }
const node_udp_tx_stats_t *node_udp_tx_stats (node_udp_tx_t *self) { return &self->stats; }

//  Same destination, by what the kernel routes on: family, port, address and (IPv6)
//  scope id. Padding and flowinfo are ignored, so callers need not zero them.
static bool
s_same_dest (const bus_udp_dgram_t *a, const bus_udp_dgram_t *b)
{
    if (!a->to || !b->to || a->to_len != b->to_len || a->to->sa_family != b->to->sa_family)
        return false;
    if (a->to->sa_family == AF_INET && a->to_len >= sizeof (struct sockaddr_in)) {
        const struct sockaddr_in *x = (const struct sockaddr_in *) a->to;
        const struct sockaddr_in *y = (const struct sockaddr_in *) b->to;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->to->sa_family == AF_INET6 && a->to_len >= sizeof (struct sockaddr_in6)) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *) a->to;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *) b->to;
        return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id
            && memcmp (&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return memcmp (a->to, b->to, a->to_len) == 0;
}

static bool
s_would_block (int e)
{
    return e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS;
}

//  One datagram, one syscall: the measurement baseline and the GSO fallback.
static bool
s_send_one (node_udp_tx_t *self, const void *to, socklen_t to_len, const void *data, size_t size)
{
    ssize_t r = sendto (self->fd, data, size, 0, (const struct sockaddr *) to, to_len);
    self->stats.send_calls++;
    if (r < 0) {
        if (s_would_block (errno))
            self->stats.send_dropped++;
        else
            self->stats.send_errors++;
        return false;
    }
    self->stats.dgrams_out++;
    self->stats.bytes_out += size;
    return true;
}

//  Builds at most NODE_UDP_TX_BATCH messages (of NODE_UDP_TX_BATCH datagrams in all)
//  from dgrams [*next...]; with GSO a run of datagrams to one destination, all of
//  one size but a shorter last one, shares a message. Datagrams without a
//  destination are counted as errors and skipped.
static size_t
s_build (node_udp_tx_t *self, const bus_udp_dgram_t *dgrams, size_t count, size_t *next)
{
    size_t nmsg = 0, niov = 0, i = *next;
    while (i < count && nmsg < NODE_UDP_TX_BATCH && niov < NODE_UDP_TX_BATCH) {
        const bus_udp_dgram_t *first = &dgrams [i++];
        if (!first->to) {
            self->stats.send_errors++;
            continue;
        }
        struct msghdr *hdr = &self->msgs [nmsg].msg_hdr;
        memset (hdr, 0, sizeof *hdr);
        hdr->msg_name = (void *) first->to;
        hdr->msg_namelen = first->to_len;
        hdr->msg_iov = &self->iov [niov];
        self->iov [niov++] = (struct iovec) { (void *) first->data, first->size };
        size_t segs = 1, bytes = first->size;
        while (self->gso && first->size > 0 && i < count && niov < NODE_UDP_TX_BATCH
           &&  segs < NODE_UDP_TX_GSO_MAX_SEGS
           &&  dgrams [i].size > 0 && dgrams [i].size <= first->size
           &&  bytes + dgrams [i].size <= NODE_UDP_TX_GSO_MAX_BYTES
           &&  s_same_dest (&dgrams [i], first)) {
            self->iov [niov++] = (struct iovec) { (void *) dgrams [i].data, dgrams [i].size };
            segs++;
            bytes += dgrams [i].size;
            if (dgrams [i++].size < first->size)
                break;                  //  a shorter datagram ends the run
        }
        hdr->msg_iovlen = segs;
        if (segs > 1) {
            hdr->msg_control = self->ctrl [nmsg].buf;
            hdr->msg_controllen = CMSG_SPACE (sizeof (uint16_t));
            struct cmsghdr *c = CMSG_FIRSTHDR (hdr);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN (sizeof (uint16_t));
            uint16_t gso_size = (uint16_t) first->size;
            memcpy (CMSG_DATA (c), &gso_size, sizeof gso_size);
        }
        self->count [nmsg] = segs;
        self->bytes [nmsg] = bytes;
        nmsg++;
    }
    *next = i;
    return nmsg;
}

size_t
node_udp_tx_send (node_udp_tx_t *self, const bus_udp_dgram_t *dgrams, size_t count)
{
    assert (self);
    uint64_t before = self->stats.dgrams_out;
    if (self->single) {
        for (size_t i = 0; i < count; i++) {
            if (dgrams [i].to)
                s_send_one (self, dgrams [i].to, dgrams [i].to_len, dgrams [i].data, dgrams [i].size);
            else
                self->stats.send_errors++;
        }
        return (size_t) (self->stats.dgrams_out - before);
    }
    size_t next = 0;
    while (next < count) {
        size_t nmsg = s_build (self, dgrams, count, &next);
        size_t m = 0;
        while (m < nmsg) {
            int r = sendmmsg (self->fd, self->msgs + m, (unsigned) (nmsg - m), 0);
            self->stats.send_calls++;
            if (r > 0) {
                for (size_t k = m; k < m + (size_t) r; k++) {
                    self->stats.dgrams_out += self->count [k];
                    self->stats.bytes_out += self->bytes [k];
                }
                m += (size_t) r;
                continue;
            }
            if (s_would_block (errno)) {
                //  The send buffer is full: drop the rest rather than stall the loop
                for (size_t k = m; k < nmsg; k++)
                    self->stats.send_dropped += self->count [k];
                self->stats.send_dropped += count - next;
                return (size_t) (self->stats.dgrams_out - before);
            }
            struct msghdr *hdr = &self->msgs [m].msg_hdr;
            if (self->count [m] > 1 && (errno == EINVAL || errno == EIO)) {
                //  The kernel refused this GSO run (segment over the path MTU, or a
                //  device without checksum offload): send its datagrams one by one
                for (size_t k = 0; k < hdr->msg_iovlen; k++)
                    s_send_one (self, hdr->msg_name, hdr->msg_namelen,
                                hdr->msg_iov [k].iov_base, hdr->msg_iov [k].iov_len);
            }
            else
                self->stats.send_errors += self->count [m];
            m++;
        }
    }
    return (size_t) (self->stats.dgrams_out - before);
}

//  --------------------------------------------------------------------------
//  Self test

//  A non-blocking UDP socket on 127.0.0.1 and its address.
static int
s_udp_socket (struct sockaddr_in *name)
{
    int fd = socket (AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert (fd >= 0);
    memset (name, 0, sizeof *name);
    name->sin_family = AF_INET;
    name->sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (bind (fd, (struct sockaddr *) name, sizeof *name) == 0);
    socklen_t len = sizeof *name;
    assert (getsockname (fd, (struct sockaddr *) name, &len) == 0);
    int big = 1 << 20;
    setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    return fd;
}

//  Test payloads: a 4-byte tag (stream << 16 | index), then bytes derived from it.
static void
s_fill (uint8_t *data, size_t size, uint32_t tag)
{
    assert (size >= 4);
    memcpy (data, &tag, sizeof tag);
    for (size_t b = 4; b < size; b++)
        data [b] = (uint8_t) (tag + b);
}

//  Reads (plain recv, no GRO) until want datagrams came or 3 s passed; checks that
//  each is intact and that their tags are stream << 16 | 0, 1, 2... in order, with
//  the sizes in sizes [] (or all of size sizes [0] when one_size). Returns how many.
static size_t
s_expect (int fd, size_t want, uint32_t stream, const size_t *sizes, bool one_size)
{
    static uint8_t buf [2048];
    size_t got = 0;
    int64_t deadline = zclock_mono () + 3000;
    while (got < want && zclock_mono () < deadline) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll (&pfd, 1, 100) <= 0)
            continue;
        ssize_t r;
        while (got < want && (r = recv (fd, buf, sizeof buf, 0)) >= 0) {
            size_t size = one_size ? sizes [0] : sizes [got];
            assert ((size_t) r == size);
            uint32_t tag;
            memcpy (&tag, buf, sizeof tag);
            assert (tag == (stream << 16 | (uint32_t) got));
            for (size_t b = 4; b < size; b++)
                assert (buf [b] == (uint8_t) (tag + b));
            got++;
        }
    }
    return got;
}

//  Run boundaries, checked on the messages s_build makes (nothing is sent).
static void
s_test_runs (int fd, const struct sockaddr_in *d1, const struct sockaddr_in *d2)
{
    node_udp_tx_t *self = node_udp_tx_new (fd, false);
    self->gso = true;                   //  whatever the kernel says: only building
    static uint8_t data [1400];
    bus_udp_dgram_t dg [100];
    const struct sockaddr *a = (const struct sockaddr *) d1, *b = (const struct sockaddr *) d2;
    socklen_t len = sizeof *d1;
    size_t next;
#define S_DG(i, sz, to) dg [i] = (bus_udp_dgram_t) { data, (sz), (to), len }

    //  64 equal datagrams of 1000 bytes: one message
    for (size_t i = 0; i < 64; i++)
        S_DG (i, 1000, a);
    next = 0;
    assert (s_build (self, dg, 64, &next) == 1 && next == 64 && self->count [0] == 64);
    assert (self->bytes [0] == 64000);
    //  64 of 1400: the 65000-byte limit cuts the run after 46
    for (size_t i = 0; i < 64; i++)
        S_DG (i, 1400, a);
    next = 0;
    assert (s_build (self, dg, 64, &next) == 2 && self->count [0] == 46 && self->count [1] == 18);
    //  100 of 100: one call holds 64 datagrams, the rest comes next
    for (size_t i = 0; i < 100; i++)
        S_DG (i, 100, a);
    next = 0;
    assert (s_build (self, dg, 100, &next) == 1 && next == 64 && self->count [0] == 64);
    assert (s_build (self, dg, 100, &next) == 1 && next == 100 && self->count [0] == 36);
    //  A shorter datagram ends the run; a longer one does not join it
    S_DG (0, 300, a); S_DG (1, 300, a); S_DG (2, 100, a); S_DG (3, 300, a); S_DG (4, 400, a);
    next = 0;
    assert (s_build (self, dg, 5, &next) == 3);
    assert (self->count [0] == 3 && self->count [1] == 1 && self->count [2] == 1);
    assert (self->bytes [0] == 700);
    //  A change of destination ends it; empty datagrams never join one
    S_DG (0, 300, a); S_DG (1, 300, b); S_DG (2, 300, b); S_DG (3, 0, a); S_DG (4, 0, a);
    next = 0;
    assert (s_build (self, dg, 5, &next) == 4);
    assert (self->count [0] == 1 && self->count [1] == 2 && self->count [2] == 1);
    //  Padding does not tell destinations apart
    struct sockaddr_in a2 = *d1;
    memset (a2.sin_zero, 0xa5, sizeof a2.sin_zero);
    S_DG (0, 300, a); S_DG (1, 300, (const struct sockaddr *) &a2);
    next = 0;
    assert (s_build (self, dg, 2, &next) == 1 && self->count [0] == 2);
    //  IPv6: flowinfo ignored, scope id counts
    struct sockaddr_in6 x = { .sin6_family = AF_INET6, .sin6_port = htons (9) };
    x.sin6_addr.s6_addr [15] = 1;
    struct sockaddr_in6 y = x, z = x;
    y.sin6_flowinfo = htonl (7);
    z.sin6_scope_id = 2;
    dg [0] = (bus_udp_dgram_t) { data, 300, (struct sockaddr *) &x, sizeof x };
    dg [1] = (bus_udp_dgram_t) { data, 300, (struct sockaddr *) &y, sizeof y };
    dg [2] = (bus_udp_dgram_t) { data, 300, (struct sockaddr *) &z, sizeof z };
    next = 0;
    assert (s_build (self, dg, 3, &next) == 2 && self->count [0] == 2 && self->count [1] == 1);
    //  No destination: counted, skipped, and it ends the run
    S_DG (0, 300, a); S_DG (1, 300, NULL); S_DG (2, 300, a);
    next = 0;
    assert (s_build (self, dg, 3, &next) == 2 && self->count [0] == 1 && self->count [1] == 1);
    assert (self->stats.send_errors == 1);
    //  Without GSO every datagram is its own message
    self->gso = false;
    S_DG (0, 300, a); S_DG (1, 300, a); S_DG (2, 300, a);
    next = 0;
    assert (s_build (self, dg, 3, &next) == 3);
#undef S_DG
    node_udp_tx_destroy (&self);
}

void
node_udp_tx_test (bool verbose)
{
    printf (" * node_udp_tx: ");
    struct sockaddr_in n1, n2, ns;
    int r1 = s_udp_socket (&n1), r2 = s_udp_socket (&n2), s = s_udp_socket (&ns);
    const struct sockaddr *to1 = (const struct sockaddr *) &n1, *to2 = (const struct sockaddr *) &n2;
    socklen_t len = sizeof n1;
    s_test_runs (s, &n1, &n2);

    node_udp_tx_t *tx = node_udp_tx_new (s, true);
    assert (tx);
    bool gso = node_udp_tx_gso (tx);
    if (verbose)
        printf ("gso %s, ", gso ? "yes" : "no");
    static uint8_t bufs [NODE_UDP_TX_BATCH][1400];
    bus_udp_dgram_t dg [NODE_UDP_TX_BATCH];

    //  64 equal datagrams to one receiver: one syscall (one GSO message), and
    //  they arrive as 64 intact datagrams, in order
    for (uint32_t i = 0; i < 64; i++) {
        s_fill (bufs [i], 1000, i);
        dg [i] = (bus_udp_dgram_t) { bufs [i], 1000, to1, len };
    }
    assert (node_udp_tx_send (tx, dg, 64) == 64);
    const node_udp_tx_stats_t *st = node_udp_tx_stats (tx);
    assert (st->send_calls == 1 && st->dgrams_out == 64 && st->bytes_out == 64000);
    assert (s_expect (r1, 64, 0, (size_t []) { 1000 }, true) == 64);

    //  Two receivers, interleaved in runs of 1 to 4: each gets its own in order
    uint32_t seq [2] = { 0, 0 };
    for (size_t i = 0; i < 64; i++) {
        int d = (i % 7) < 3;
        s_fill (bufs [i], 500, (uint32_t) (d + 1) << 16 | seq [d]++);
        dg [i] = (bus_udp_dgram_t) { bufs [i], 500, d ? to2 : to1, len };
    }
    assert (node_udp_tx_send (tx, dg, 64) == 64);
    assert (s_expect (r1, seq [0], 1, (size_t []) { 500 }, true) == seq [0]);
    assert (s_expect (r2, seq [1], 2, (size_t []) { 500 }, true) == seq [1]);

    //  A shorter datagram ends a run: sizes and order kept
    size_t sizes [] = { 300, 300, 100, 300, 300 };
    for (uint32_t i = 0; i < 5; i++) {
        s_fill (bufs [i], sizes [i], 3 << 16 | i);
        dg [i] = (bus_udp_dgram_t) { bufs [i], sizes [i], to1, len };
    }
    uint64_t calls = st->send_calls;
    assert (node_udp_tx_send (tx, dg, 5) == 5);
    assert (st->send_calls == calls + 1);
    assert (s_expect (r1, 5, 3, sizes, false) == 5);

    //  Single mode: one sendto per datagram, no GSO
    node_udp_tx_set_single (tx, true);
    assert (!node_udp_tx_gso (tx));
    for (uint32_t i = 0; i < 10; i++) {
        s_fill (bufs [i], 200, 4 << 16 | i);
        dg [i] = (bus_udp_dgram_t) { bufs [i], 200, to2, len };
    }
    calls = st->send_calls;
    assert (node_udp_tx_send (tx, dg, 10) == 10);
    assert (st->send_calls == calls + 10);
    assert (s_expect (r2, 10, 4, (size_t []) { 200 }, true) == 10);
    node_udp_tx_set_single (tx, false);
    assert (node_udp_tx_gso (tx) == gso);

    //  A destination of the wrong family, or none: counted, the rest still goes
    struct sockaddr_in6 v6 = { .sin6_family = AF_INET6, .sin6_port = n1.sin_port };
    v6.sin6_addr.s6_addr [15] = 1;
    for (uint32_t i = 0; i < 3; i++)
        s_fill (bufs [i], 100, 5 << 16 | i);
    dg [0] = (bus_udp_dgram_t) { bufs [0], 100, to1, len };
    dg [1] = (bus_udp_dgram_t) { bufs [1], 100, to1, len };
    dg [2] = (bus_udp_dgram_t) { bufs [3], 100, (struct sockaddr *) &v6, sizeof v6 };
    dg [3] = (bus_udp_dgram_t) { bufs [3], 100, NULL, 0 };
    dg [4] = (bus_udp_dgram_t) { bufs [2], 100, to1, len };
    uint64_t errors = st->send_errors;
    assert (node_udp_tx_send (tx, dg, 5) == 3);
    assert (st->send_errors == errors + 2 && st->send_dropped == 0);
    assert (s_expect (r1, 3, 5, (size_t []) { 100 }, true) == 3);
    node_udp_tx_destroy (&tx);
    assert (tx == NULL);

    //  A GSO message the kernel refuses (here: EINVAL, checksums turned off) goes
    //  out one datagram at a time
    int one = 1;
    tx = node_udp_tx_new (s, true);
    if (gso && setsockopt (s, SOL_SOCKET, SO_NO_CHECK, &one, sizeof one) == 0) {
        for (uint32_t i = 0; i < 8; i++) {
            s_fill (bufs [i], 500, 6 << 16 | i);
            dg [i] = (bus_udp_dgram_t) { bufs [i], 500, to2, len };
        }
        assert (node_udp_tx_send (tx, dg, 8) == 8);
        assert (node_udp_tx_stats (tx)->send_calls == 1 + 8);
        assert (s_expect (r2, 8, 6, (size_t []) { 500 }, true) == 8);
        if (verbose)
            printf ("gso fallback ok, ");
    }
    node_udp_tx_destroy (&tx);

    //  A full send buffer drops the rest of the call and never blocks. Loopback
    //  UDP never fills one (lo frees each datagram as it passes), so a Unix
    //  datagram socket stands in: its receiver queue is full after a few.
    int ux_rx = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int ux_tx = socket (AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert (ux_rx >= 0 && ux_tx >= 0);
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    int name_len = snprintf (un.sun_path + 1, sizeof un.sun_path - 1, "node_udp_tx_test.%d", (int) getpid ());
    socklen_t un_len = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + 1 + (size_t) name_len);
    assert (bind (ux_rx, (struct sockaddr *) &un, un_len) == 0);
    tx = node_udp_tx_new (ux_tx, true);
    assert (!node_udp_tx_gso (tx));      //  not a UDP socket
    for (size_t i = 0; i < 64; i++)
        dg [i] = (bus_udp_dgram_t) { bufs [i], 1400, (struct sockaddr *) &un, un_len };
    size_t sent = node_udp_tx_send (tx, dg, 64);
    st = node_udp_tx_stats (tx);
    assert (sent > 0 && sent < 64);
    assert (st->dgrams_out == sent && st->send_dropped == 64 - sent && st->send_errors == 0);
    assert (node_udp_tx_send (tx, dg, 64) == 0 && st->send_dropped == 128 - sent);
    if (verbose)
        printf ("%zu of 64 before the buffer was full, ", sent);
    node_udp_tx_destroy (&tx);
    close (ux_rx);
    close (ux_tx);

    close (r1);
    close (r2);
    close (s);
    printf ("OK\n");
}
