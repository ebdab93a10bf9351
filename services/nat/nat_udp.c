/*  nat_udp: one dual-stack UDP socket, batched I/O (see nat_udp.h for why). The
    sending half is node_udp_tx, shared with crypto, which sends on the same socket. */
#include "nat_udp.h"
#include "bus_clock.h"
#include "nat_endpoint.h"
#include "node_udp_tx.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_GRO
#   define UDP_GRO 104
#endif

#define NAT_UDP_GRO_MAX_SEGS 128        //  what one GRO read may hold on 6.x

typedef union {
    char buf [CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
} s_ctrl_t;

struct _nat_udp_t {
    int fd;
    int family;
    uint16_t port;
    int rcvbuf, sndbuf;
    bool gso, gro, single;
    bool drained;                       //  the last recv emptied the socket
    size_t slot_size;                   //  bytes per receive buffer
    uint8_t *rx_buf;                    //  NAT_UDP_BATCH x slot_size, allocated once
    struct mmsghdr rx_msgs [NAT_UDP_BATCH];
    struct iovec rx_iov [NAT_UDP_BATCH];
    struct sockaddr_in6 rx_names [NAT_UDP_BATCH];
    s_ctrl_t rx_ctrl [NAT_UDP_BATCH];
    nat_addr_t rx_from [NAT_UDP_BATCH];
    nat_udp_rx_t *rx_out;
    size_t rx_out_max;
    node_udp_tx_t *tx;                   //  the sending half
    bus_udp_dgram_t *tx_dgrams;         //  tx_max datagrams and destinations, grown
    struct sockaddr_in6 *tx_names;      //  only when a larger batch comes
    size_t tx_max;
    nat_udp_stats_t stats;              //  out-counters copied from tx after each send
};

//  Test hook: behave as on a host booted with ipv6.disable=1
static bool s_simulate_no_ipv6 = false;

static void
s_err (char *err, size_t err_size, const char *what, const nat_addr_t *addr)
{
    char text [NAT_ADDR_TEXT_MAX];
    if (err && err_size)
        snprintf (err, err_size, "%s %s: %s", what, nat_addr_format (addr, text, sizeof text),
                  strerror (errno));
}

//  Opens and binds one socket for addr's family; -1 with errno and err on failure.
static int
s_open (const nat_addr_t *addr, char *err, size_t err_size)
{
    int family = nat_addr_family (addr);
    if (family == AF_INET6 && s_simulate_no_ipv6) {
        errno = EAFNOSUPPORT;
        s_err (err, err_size, "cannot open UDP socket for", addr);
        return -1;
    }
    int fd = socket (family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        s_err (err, err_size, "cannot open UDP socket for", addr);
        return -1;
    }
    int zero = 0;
    if (family == AF_INET6
    &&  setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero)) {
        s_err (err, err_size, "cannot make UDP socket dual-stack for", addr);
        close (fd);
        return -1;
    }
    if (bind (fd, &addr->sa, addr->len)) {
        s_err (err, err_size, "cannot bind UDP", addr);
        int saved = errno;
        close (fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static int
s_sockopt_int (int fd, int level, int name)
{
    int value = 0;
    socklen_t len = sizeof value;
    return getsockopt (fd, level, name, &value, &len) ? -1 : value;
}

//  The batching state around an open socket (ours, or one handed to us)
static nat_udp_t *
s_wrap (int fd, int family, const nat_udp_config_t *config)
{
    nat_udp_t *self = calloc (1, sizeof *self);
    assert (self);
    self->fd = fd;
    self->family = family;
    self->single = config->single;
    self->tx = node_udp_tx_new (fd, config->gso && !config->single);
    node_udp_tx_set_single (self->tx, config->single);
    self->gso = node_udp_tx_gso (self->tx);
    self->tx_max = NAT_UDP_BATCH;
    self->tx_dgrams = calloc (self->tx_max, sizeof (bus_udp_dgram_t));
    self->tx_names = calloc (self->tx_max, sizeof (struct sockaddr_in6));
    assert (self->tx_dgrams && self->tx_names);
    struct sockaddr_in6 local;
    socklen_t local_len = sizeof local;
    nat_addr_t bound;
    if (getsockname (fd, (struct sockaddr *) &local, &local_len) == 0
    &&  nat_addr_set_sockaddr (&bound, (struct sockaddr *) &local, local_len) == 0)
        self->port = nat_addr_port (&bound);

    //  Socket buffers: the kernel caps them at net.core.[rw]mem_max; report what we got
    if (config->rcvbuf > 0)
        setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &config->rcvbuf, sizeof config->rcvbuf);
    if (config->sndbuf > 0)
        setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &config->sndbuf, sizeof config->sndbuf);
    self->rcvbuf = s_sockopt_int (fd, SOL_SOCKET, SO_RCVBUF);
    self->sndbuf = s_sockopt_int (fd, SOL_SOCKET, SO_SNDBUF);

    //  Offloads: GSO is probed by node_udp_tx; GRO is there when it can be set
    int one = 1;
    if (config->gro && !config->single)
        self->gro = setsockopt (fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;

    //  Receive buffers, allocated once. A GRO read may carry 64 KiB of segments.
    size_t max_dgram = config->max_datagram ? config->max_datagram : NAT_UDP_MAX_DATAGRAM_DEFAULT;
    self->slot_size = self->gro ? NAT_UDP_GRO_BUFFER : max_dgram;
    self->rx_buf = malloc (NAT_UDP_BATCH * self->slot_size);
    self->rx_out_max = self->gro ? NAT_UDP_BATCH * NAT_UDP_GRO_MAX_SEGS : NAT_UDP_BATCH;
    self->rx_out = calloc (self->rx_out_max, sizeof (nat_udp_rx_t));
    assert (self->rx_buf && self->rx_out);
    for (size_t i = 0; i < NAT_UDP_BATCH; i++) {
        self->rx_iov [i].iov_base = self->rx_buf + i * self->slot_size;
        self->rx_iov [i].iov_len = self->slot_size;
        struct msghdr *hdr = &self->rx_msgs [i].msg_hdr;
        hdr->msg_name = &self->rx_names [i];
        hdr->msg_iov = &self->rx_iov [i];
        hdr->msg_iovlen = 1;
    }
    return self;
}

nat_udp_t *
nat_udp_new_fd (int fd, const nat_udp_config_t *config, char *err, size_t err_size)
{
    nat_udp_config_t defaults = { 0 };
    if (!config)
        config = &defaults;
    struct sockaddr_storage local;
    socklen_t local_len = sizeof local;
    int type = 0;
    socklen_t type_len = sizeof type;
    if (fd < 0 || getsockname (fd, (struct sockaddr *) &local, &local_len)
    ||  getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &type_len) || type != SOCK_DGRAM
    ||  (local.ss_family != AF_INET && local.ss_family != AF_INET6)) {
        snprintf (err, err_size, "fd %d is not a bound UDP socket", fd);
        return NULL;
    }
    if (config->max_datagram > 65535) {
        snprintf (err, err_size, "max_datagram %zu larger than 65535", config->max_datagram);
        return NULL;
    }
    int flags = fcntl (fd, F_GETFL);
    if (flags < 0 || fcntl (fd, F_SETFL, flags | O_NONBLOCK)) {
        snprintf (err, err_size, "cannot make fd %d non-blocking: %s", fd, strerror (errno));
        return NULL;
    }
    return s_wrap (fd, local.ss_family, config);
}

nat_udp_t *
nat_udp_new (const nat_udp_config_t *config, char *err, size_t err_size)
{
    nat_udp_config_t defaults = { 0 };
    if (!config)
        config = &defaults;
    nat_addr_t bind;
    if (nat_endpoint_parse_bind (&bind, config->bind ? config->bind : "*:0", err, err_size))
        return NULL;
    if (config->max_datagram > 65535) {
        snprintf (err, err_size, "max_datagram %zu larger than 65535", config->max_datagram);
        return NULL;
    }
    //  Dual stack when bound to any address; without IPv6 on the host (no AF_INET6,
    //  or :: not bindable), the same port on IPv4 only.
    bool any6 = nat_addr_family (&bind) == AF_INET6
             && IN6_IS_ADDR_UNSPECIFIED (&bind.in6.sin6_addr);
    int fd = s_open (&bind, err, err_size);
    if (fd < 0 && any6 && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL
                        || errno == EPROTONOSUPPORT || errno == ENOPROTOOPT)) {
        uint16_t port = nat_addr_port (&bind);
        nat_addr_set_ip (&bind, "0.0.0.0", port);
        fd = s_open (&bind, err, err_size);
    }
    if (fd < 0)
        return NULL;

    return s_wrap (fd, nat_addr_family (&bind), config);
}

void
nat_udp_destroy (nat_udp_t **self_p)
{
    if (self_p && *self_p) {
        nat_udp_t *self = *self_p;
        node_udp_tx_destroy (&self->tx);
        close (self->fd);
        free (self->tx_dgrams);
        free (self->tx_names);
        free (self->rx_buf);
        free (self->rx_out);
        free (self);
        *self_p = NULL;
    }
}

int nat_udp_fd (nat_udp_t *self) { return self->fd; }
int nat_udp_family (nat_udp_t *self) { return self->family; }
uint16_t nat_udp_port (nat_udp_t *self) { return self->port; }
int nat_udp_rcvbuf (nat_udp_t *self) { return self->rcvbuf; }
int nat_udp_sndbuf (nat_udp_t *self) { return self->sndbuf; }
bool nat_udp_gso (nat_udp_t *self) { return self->gso; }
bool nat_udp_gro (nat_udp_t *self) { return self->gro; }
const nat_udp_stats_t *nat_udp_stats (nat_udp_t *self) { return &self->stats; }

static bool
s_would_block (int e)
{
    return e == EAGAIN || e == EWOULDBLOCK;
}

//  Adds one received datagram (or, after GRO, its segments) to the output views.
static size_t
s_emit (nat_udp_t *self, size_t n_out, uint8_t *data, size_t len, size_t seg,
        const nat_addr_t *from)
{
    if (seg == 0 || seg > len)
        seg = len;
    size_t off = 0;
    do {
        size_t size = len - off < seg ? len - off : seg;
        if (n_out == self->rx_out_max) {
            self->stats.truncated++;        //  more segments than views: drop
            break;
        }
        self->rx_out [n_out++] = (nat_udp_rx_t) { data + off, size, from };
        self->stats.dgrams_in++;
        self->stats.bytes_in += size;
        off += size;
    } while (off < len);
    return n_out;
}

static size_t
s_recv_single (nat_udp_t *self)
{
    size_t n_out = 0;
    for (size_t i = 0; i < NAT_UDP_BATCH; i++) {
        socklen_t name_len = sizeof self->rx_names [i];
        ssize_t r = recvfrom (self->fd, self->rx_iov [i].iov_base, self->slot_size, MSG_TRUNC,
                              (struct sockaddr *) &self->rx_names [i], &name_len);
        self->stats.recv_calls++;
        if (r < 0) {
            if (!s_would_block (errno) && errno != EINTR)
                self->stats.recv_errors++;
            break;
        }
        if ((size_t) r > self->slot_size) {
            self->stats.truncated++;
            continue;
        }
        if (nat_addr_set_sockaddr (&self->rx_from [i], (struct sockaddr *) &self->rx_names [i], name_len)) {
            self->stats.recv_errors++;
            continue;
        }
        n_out = s_emit (self, n_out, self->rx_iov [i].iov_base, (size_t) r, 0, &self->rx_from [i]);
    }
    return n_out;
}

bool nat_udp_drained (nat_udp_t *self) { return self->drained; }

size_t
nat_udp_recv (nat_udp_t *self, nat_udp_rx_t **out)
{
    *out = self->rx_out;
    self->drained = false;
    if (self->single)
        return s_recv_single (self);
    for (size_t i = 0; i < NAT_UDP_BATCH; i++) {
        struct msghdr *hdr = &self->rx_msgs [i].msg_hdr;
        hdr->msg_namelen = sizeof self->rx_names [i];
        hdr->msg_control = self->gro ? self->rx_ctrl [i].buf : NULL;
        hdr->msg_controllen = self->gro ? sizeof self->rx_ctrl [i].buf : 0;
        hdr->msg_flags = 0;
    }
    int r = recvmmsg (self->fd, self->rx_msgs, NAT_UDP_BATCH, 0, NULL);
    self->stats.recv_calls++;
    //  recvmmsg stops early only when nothing more is waiting (or on an error)
    self->drained = r < NAT_UDP_BATCH;
    if (r < 0) {
        if (!s_would_block (errno) && errno != EINTR)
            self->stats.recv_errors++;
        return 0;
    }
    size_t n_out = 0;
    for (int i = 0; i < r; i++) {
        struct msghdr *hdr = &self->rx_msgs [i].msg_hdr;
        if (hdr->msg_flags & MSG_TRUNC) {
            self->stats.truncated++;
            continue;
        }
        if (nat_addr_set_sockaddr (&self->rx_from [i], hdr->msg_name, hdr->msg_namelen)) {
            self->stats.recv_errors++;
            continue;
        }
        size_t seg = 0;
        if (self->gro) {
            for (struct cmsghdr *c = CMSG_FIRSTHDR (hdr); c; c = CMSG_NXTHDR (hdr, c))
                if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
                    int value;
                    memcpy (&value, CMSG_DATA (c), sizeof value);
                    seg = value > 0 ? (size_t) value : 0;
                }
        }
        n_out = s_emit (self, n_out, self->rx_iov [i].iov_base, self->rx_msgs [i].msg_len,
                        seg, &self->rx_from [i]);
    }
    return n_out;
}

bool
nat_udp_sockaddr (nat_udp_t *self, const nat_addr_t *to, struct sockaddr_in6 *name, socklen_t *len)
{
    if (!to || !nat_addr_is_set (to) || nat_addr_family (to) == AF_UNSPEC)
        return false;               //  relayed or ICE: the data path sends it
    if (self->family == AF_INET6) {
        nat_addr_to_v6 (to, name);
        *len = sizeof *name;
        return true;
    }
    if (nat_addr_family (to) != AF_INET)
        return false;
    memcpy (name, &to->in4, sizeof to->in4);
    *len = sizeof to->in4;
    return true;
}

size_t
nat_udp_send (nat_udp_t *self, const nat_udp_tx_t *batch, size_t count)
{
    if (count > self->tx_max) {
        bus_udp_dgram_t *dgrams = realloc (self->tx_dgrams, count * sizeof *dgrams);
        struct sockaddr_in6 *names = realloc (self->tx_names, count * sizeof *names);
        assert (dgrams && names);
        self->tx_dgrams = dgrams;
        self->tx_names = names;
        self->tx_max = count;
    }
    //  A destination the socket's family cannot reach goes without one: node_udp_tx
    //  counts it in send_errors, in its place in the batch
    for (size_t i = 0; i < count; i++) {
        socklen_t len = 0;
        bool ok = nat_udp_sockaddr (self, batch [i].to, &self->tx_names [i], &len);
        self->tx_dgrams [i] = (bus_udp_dgram_t) {
            batch [i].data, batch [i].size,
            ok ? (const struct sockaddr *) &self->tx_names [i] : NULL, len };
    }
    size_t sent = node_udp_tx_send (self->tx, self->tx_dgrams, count);
    const node_udp_tx_stats_t *tx = node_udp_tx_stats (self->tx);
    self->stats.dgrams_out = tx->dgrams_out;
    self->stats.bytes_out = tx->bytes_out;
    self->stats.send_errors = tx->send_errors;
    self->stats.send_dropped = tx->send_dropped;
    self->stats.send_calls = tx->send_calls;
    return sent;
}

int
nat_udp_test_netns (void)
{
    if (unshare (CLONE_NEWNET))
        return -1;
    int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct ifreq ifr;
    memset (&ifr, 0, sizeof ifr);
    strcpy (ifr.ifr_name, "lo");
    int rc = ioctl (fd, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP;
        rc = ioctl (fd, SIOCSIFFLAGS, &ifr);
    }
    close (fd);
    return rc;
}

//  --------------------------------------------------------------------------
//  Self test

//  Receives until want datagrams arrived or the deadline passed; checks that each
//  carries its index and comes from the expected source. Returns how many.
static size_t
s_expect (nat_udp_t *rx, size_t want, size_t size, const nat_addr_t *source, bool verbose)
{
    size_t got = 0;
    int64_t deadline = bus_clock_ms () + 3000;
    while (got < want && bus_clock_ms () < deadline) {
        struct pollfd pfd = { .fd = nat_udp_fd (rx), .events = POLLIN };
        if (poll (&pfd, 1, 100) <= 0)
            continue;
        nat_udp_rx_t *dgrams;
        size_t n = nat_udp_recv (rx, &dgrams);
        for (size_t i = 0; i < n; i++) {
            assert (dgrams [i].size == size);
            uint32_t index;
            memcpy (&index, dgrams [i].data, sizeof index);
            assert (index == got);
            for (size_t b = 4; b < size; b++)
                assert (dgrams [i].data [b] == (uint8_t) (index + b));
            if (source && !nat_addr_eq (dgrams [i].from, source)) {
                char a [NAT_ADDR_TEXT_MAX], b [NAT_ADDR_TEXT_MAX];
                fprintf (stderr, "from %s, expected %s\n", nat_addr_format (dgrams [i].from, a, sizeof a),
                         nat_addr_format (source, b, sizeof b));
                assert (false);
            }
            got++;
        }
    }
    if (verbose)
        printf ("  received %zu/%zu of %zu B\n", got, want, size);
    return got;
}

//  Sends count datagrams of size bytes (index in the first 4) from tx to dest
static size_t
s_send_indexed (nat_udp_t *tx, size_t count, size_t size, const nat_addr_t *dest)
{
    static uint8_t bufs [NAT_UDP_BATCH][2000];
    nat_udp_tx_t batch [NAT_UDP_BATCH];
    assert (count <= NAT_UDP_BATCH && size <= 2000 && size >= 4);
    for (size_t i = 0; i < count; i++) {
        uint32_t index = (uint32_t) i;
        memcpy (bufs [i], &index, sizeof index);
        for (size_t b = 4; b < size; b++)
            bufs [i][b] = (uint8_t) (index + b);
        batch [i] = (nat_udp_tx_t) { bufs [i], size, dest };
    }
    return nat_udp_send (tx, batch, count);
}

static void
s_exchange (nat_udp_t *a, nat_udp_t *b, const char *ip, size_t size, bool verbose)
{
    nat_addr_t to_b, from_a;
    assert (nat_addr_set_ip (&to_b, ip, nat_udp_port (b)) == 0);
    assert (nat_addr_set_ip (&from_a, ip, nat_udp_port (a)) == 0);
    uint64_t calls = nat_udp_stats (a)->send_calls;
    assert (s_send_indexed (a, NAT_UDP_BATCH, size, &to_b) == NAT_UDP_BATCH);
    //  Batched: a handful of syscalls for 64 datagrams, not 64
    if (!nat_udp_gso (a))
        assert (nat_udp_stats (a)->send_calls - calls <= 2);
    assert (s_expect (b, NAT_UDP_BATCH, size, &from_a, verbose) == NAT_UDP_BATCH);
}

void
nat_udp_test (bool verbose)
{
    bool isolated = nat_udp_test_netns () == 0;
    if (verbose)
        printf ("  %s\n", isolated ? "private network namespace" : "host loopback");
    char err [200];
    nat_udp_t *a = nat_udp_new (NULL, err, sizeof err);
    assert (a);
    nat_udp_t *b = nat_udp_new (&(nat_udp_config_t) { .bind = "*:0", .rcvbuf = 1 << 20,
                                                      .sndbuf = 1 << 20 }, err, sizeof err);
    assert (b);
    assert (nat_udp_family (a) == AF_INET6 && nat_udp_port (a) > 0);
    assert (nat_udp_port (a) != nat_udp_port (b));
    assert (nat_udp_rcvbuf (b) > 0 && nat_udp_sndbuf (b) > 0);

    //  Batches of 64 over IPv4 and IPv6 on one dual-stack socket, with sources;
    //  IPv4 sources come out as plain 127.0.0.1, not ::ffff:127.0.0.1
    s_exchange (a, b, "127.0.0.1", 1400, verbose);
    s_exchange (b, a, "127.0.0.1", 64, verbose);
    s_exchange (a, b, "::1", 1400, verbose);
    s_exchange (b, a, "::1", 4, verbose);
    const nat_udp_stats_t *st = nat_udp_stats (b);
    assert (st->dgrams_in == 2 * NAT_UDP_BATCH && st->bytes_in == NAT_UDP_BATCH * 2800);
    assert (st->recv_calls < 2 * NAT_UDP_BATCH);
    assert (nat_udp_stats (a)->dgrams_out == 2 * NAT_UDP_BATCH);

    //  More than a batch in one call: the destinations array grows, all arrive
    {
        static uint32_t index [NAT_UDP_BATCH + 36];
        static nat_udp_tx_t many [NAT_UDP_BATCH + 36];
        nat_addr_t to_b, from_a;
        nat_addr_set_ip (&to_b, "127.0.0.1", nat_udp_port (b));
        nat_addr_set_ip (&from_a, "127.0.0.1", nat_udp_port (a));
        for (uint32_t i = 0; i < NAT_UDP_BATCH + 36; i++) {
            index [i] = i;
            many [i] = (nat_udp_tx_t) { (const uint8_t *) &index [i], 4, &to_b };
        }
        assert (nat_udp_send (a, many, NAT_UDP_BATCH + 36) == NAT_UDP_BATCH + 36);
        assert (s_expect (b, NAT_UDP_BATCH + 36, 4, &from_a, verbose) == NAT_UDP_BATCH + 36);
    }

    //  Destinations as the socket's own sockaddr: v4-mapped on a dual-stack socket
    struct sockaddr_in6 name;
    socklen_t name_len;
    nat_addr_t v4addr, unset = { .len = 0 };
    nat_addr_set_ip (&v4addr, "192.0.2.7", 51820);
    assert (nat_udp_sockaddr (a, &v4addr, &name, &name_len));
    assert (name_len == sizeof name && name.sin6_family == AF_INET6);
    assert (IN6_IS_ADDR_V4MAPPED (&name.sin6_addr) && ntohs (name.sin6_port) == 51820);
    assert (!nat_udp_sockaddr (a, &unset, &name, &name_len));
    assert (!nat_udp_sockaddr (a, NULL, &name, &name_len));

    //  Around a socket opened elsewhere (an ICE pair's, taken from libnice):
    //  an IPv4 socket, blocking until wrapped, batches like ours; not a UDP
    //  socket, or no socket at all: a clear error, the fd left to its owner
    {
        int fd = socket (AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in lo = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
        assert (fd >= 0 && bind (fd, (struct sockaddr *) &lo, sizeof lo) == 0);
        nat_udp_t *taken = nat_udp_new_fd (fd, &(nat_udp_config_t) { .gro = true, .gso = true }, err, sizeof err);
        assert (taken && nat_udp_fd (taken) == fd && nat_udp_family (taken) == AF_INET && nat_udp_port (taken) > 0);
        assert (fcntl (fd, F_GETFL) & O_NONBLOCK);
        s_exchange (a, taken, "127.0.0.1", 1400, verbose);
        s_exchange (taken, b, "127.0.0.1", 100, verbose);
        nat_udp_destroy (&taken);
        assert (fcntl (fd, F_GETFD) < 0);                   //  closed with it
        int tcp = socket (AF_INET, SOCK_STREAM, 0);
        assert (nat_udp_new_fd (tcp, NULL, err, sizeof err) == NULL && strstr (err, "not a bound UDP socket"));
        assert (fcntl (tcp, F_GETFD) >= 0);
        close (tcp);
        assert (nat_udp_new_fd (-1, NULL, err, sizeof err) == NULL);
    }

    //  The port is taken: a clear error, no crash
    char bind [32];
    snprintf (bind, sizeof bind, "*:%u", nat_udp_port (a));
    assert (nat_udp_new (&(nat_udp_config_t) { .bind = bind }, err, sizeof err) == NULL);
    assert (strstr (err, "cannot bind UDP [::]:") && strstr (err, "in use"));
    assert (nat_udp_new (&(nat_udp_config_t) { .bind = "192.0.2.1:0" }, err, sizeof err) == NULL);
    assert (strstr (err, "192.0.2.1"));
    assert (nat_udp_new (&(nat_udp_config_t) { .bind = "nohost:1" }, err, sizeof err) == NULL);
    assert (nat_udp_new (&(nat_udp_config_t) { .max_datagram = 70000 }, err, sizeof err) == NULL);

    //  Too large for the receive buffer: dropped and counted, the next one still comes
    nat_udp_t *small = nat_udp_new (&(nat_udp_config_t) { .bind = "127.0.0.1:0",
                                                          .max_datagram = 100 }, err, sizeof err);
    assert (small && nat_udp_family (small) == AF_INET);
    nat_addr_t to_small;
    nat_addr_set_ip (&to_small, "127.0.0.1", nat_udp_port (small));
    assert (s_send_indexed (a, 1, 101, &to_small) == 1);
    assert (s_send_indexed (a, 1, 100, &to_small) == 1);
    assert (s_expect (small, 1, 100, NULL, verbose) == 1);
    assert (nat_udp_stats (small)->truncated == 1);

    //  An IPv4-only socket cannot send to IPv6: counted, the rest of the batch goes
    nat_addr_t v6dest;
    nat_addr_set_ip (&v6dest, "::1", nat_udp_port (b));
    assert (!nat_udp_sockaddr (small, &v6dest, &name, &name_len));
    assert (nat_udp_sockaddr (small, &to_small, &name, &name_len));
    assert (name_len == sizeof (struct sockaddr_in) && name.sin6_family == AF_INET);
    nat_udp_tx_t mixed [2] = { { (const uint8_t *) "abcd", 4, &v6dest },
                               { (const uint8_t *) "\0\0\0\0", 4, &to_small } };
    assert (nat_udp_send (small, mixed, 2) == 1);
    assert (nat_udp_stats (small)->send_errors == 1);
    assert (s_expect (small, 1, 4, NULL, verbose) == 1);
    nat_udp_destroy (&small);

    //  Host without IPv6: "*" falls back to an IPv4 socket on the same port rules
    s_simulate_no_ipv6 = true;
    nat_udp_t *v4 = nat_udp_new (NULL, err, sizeof err);
    s_simulate_no_ipv6 = false;
    assert (v4 && nat_udp_family (v4) == AF_INET);
    s_exchange (a, v4, "127.0.0.1", 200, verbose);
    nat_udp_destroy (&v4);

    //  One syscall per datagram (the measurement baseline) still works
    nat_udp_t *single = nat_udp_new (&(nat_udp_config_t) { .single = true }, err, sizeof err);
    assert (single);
    s_exchange (a, single, "::1", 64, verbose);
    assert (nat_udp_stats (single)->recv_calls >= NAT_UDP_BATCH);

    //  GSO send and GRO receive, when the kernel has them: 64 equal datagrams leave
    //  in one message and arrive split again, in order, with their source
    nat_udp_t *gso = nat_udp_new (&(nat_udp_config_t) { .gso = true }, err, sizeof err);
    nat_udp_t *gro = nat_udp_new (&(nat_udp_config_t) { .gro = true }, err, sizeof err);
    assert (gso && gro);
    if (verbose)
        printf ("  gso %s, gro %s\n", nat_udp_gso (gso) ? "yes" : "no", nat_udp_gro (gro) ? "yes" : "no");
    s_exchange (gso, b, "127.0.0.1", 1400, verbose);
    if (nat_udp_gso (gso))
        assert (nat_udp_stats (gso)->send_calls == 1);
    s_exchange (gso, gro, "::1", 1000, verbose);
    s_exchange (a, gro, "127.0.0.1", 64, verbose);
    //  A run with a short tail and a change of destination
    nat_addr_t to_b, to_gro;
    nat_addr_set_ip (&to_b, "::1", nat_udp_port (b));
    nat_addr_set_ip (&to_gro, "::1", nat_udp_port (gro));
    uint8_t p0 [300] = { 0 }, p1 [300] = { 1 }, p2 [100] = { 2 };
    nat_udp_tx_t runs [4] = { { p0, 300, &to_b }, { p1, 300, &to_b }, { p2, 100, &to_b },
                              { p0, 300, &to_gro } };
    assert (nat_udp_send (gso, runs, 4) == 4);
    nat_udp_rx_t *dgrams;
    size_t got = 0;
    int64_t deadline = bus_clock_ms () + 3000;
    while (got < 3 && bus_clock_ms () < deadline) {
        poll (&(struct pollfd) { .fd = nat_udp_fd (b), .events = POLLIN }, 1, 100);
        size_t n = nat_udp_recv (b, &dgrams);
        for (size_t i = 0; i < n; i++, got++)
            assert (dgrams [i].data [0] == got && dgrams [i].size == (got == 2 ? 100 : 300));
    }
    assert (got == 3);
    nat_udp_destroy (&gso);
    nat_udp_destroy (&gro);
    nat_udp_destroy (&single);
    nat_udp_destroy (&a);
    nat_udp_destroy (&b);
    assert (a == NULL);
}
