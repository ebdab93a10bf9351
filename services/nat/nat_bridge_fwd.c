/*  nat_bridge_fwd: bridge flows through nat's port, to the program that ends
    them on this host (why: nat_bridge_fwd.h). */
#include "nat_bridge_fwd.h"
#include "bus_clock.h"
#include "bus_log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_DATAGRAM_MAX 65536    //  the largest a bridge flow sends is 65,507
#define S_READS_PER_WAKEUP 64   //  one busy flow cannot starve the loop
#define S_ANSWERED_KEEP_MS 30000    //  a remote the program answered this recently keeps its socket

//  One remote (a bridge's flow socket) and the loopback socket that stands for
//  it toward the program
typedef struct {
    struct _nat_bridge_fwd_t *owner;
    zmq_pollitem_t item;        //  fd -1: free
    nat_addr_t remote;
    int64_t heard_ms;
    int64_t answered_ms;        //  the program last sent to this remote (0: never)
} s_slot_t;

struct _nat_bridge_fwd_t {
    bus_loop_t *loop;
    nat_udp_t *udp;
    nat_addr_t endpoint;
    s_slot_t slots [NAT_BRIDGE_FWD_MAX];
    nat_bridge_fwd_stats_t stats;
    uint8_t buf [S_DATAGRAM_MAX];
};

int
nat_bridge_fwd_parse (const char *endpoint, nat_addr_t *out, char *err, size_t err_size)
{
    char ip [64];
    const char *port_text;
    size_t len = strlen (endpoint);
    if (endpoint [0] == '[') {
        const char *close = strchr (endpoint, ']');
        if (!close || close [1] != ':' || (size_t) (close - endpoint - 1) >= sizeof ip) {
            snprintf (err, err_size, "expected \"[::1]:PORT\"");
            return -1;
        }
        memcpy (ip, endpoint + 1, (size_t) (close - endpoint - 1));
        ip [close - endpoint - 1] = 0;
        port_text = close + 2;
    }
    else {
        const char *colon = strrchr (endpoint, ':');
        if (!colon || (size_t) (colon - endpoint) >= sizeof ip || strchr (endpoint, ':') != colon) {
            snprintf (err, err_size, "expected \"127.0.0.1:PORT\" or \"[::1]:PORT\"");
            return -1;
        }
        memcpy (ip, endpoint, (size_t) (colon - endpoint));
        ip [colon - endpoint] = 0;
        port_text = colon + 1;
    }
    char *end;
    errno = 0;
    long port = strtol (port_text, &end, 10);
    if (len == 0 || *port_text == 0 || *end || errno || port < 1 || port > 65535) {
        snprintf (err, err_size, "a port 1..65535 expected after the address");
        return -1;
    }
    nat_addr_t addr;
    if (nat_addr_set_ip (&addr, ip, (uint16_t) port)) {
        snprintf (err, err_size, "%s is not an address literal (no names here)", ip);
        return -1;
    }
    //  Only this host: nat never hands what it reads from the internet on to
    //  another machine
    bool loopback = addr.sa.sa_family == AF_INET
                  ? (ntohl (addr.in4.sin_addr.s_addr) >> 24) == 127
                  : IN6_IS_ADDR_LOOPBACK (&addr.in6.sin6_addr)
                 || (IN6_IS_ADDR_V4MAPPED (&addr.in6.sin6_addr) && addr.in6.sin6_addr.s6_addr [12] == 127);
    if (!loopback) {
        snprintf (err, err_size, "%s is not a loopback address: the program must run on this host", ip);
        return -1;
    }
    if (out)
        *out = addr;
    return 0;
}

nat_bridge_fwd_t *
nat_bridge_fwd_new (bus_loop_t *loop, const char *endpoint, nat_udp_t *udp, char *err, size_t err_size)
{
    nat_addr_t addr;
    if (nat_bridge_fwd_parse (endpoint, &addr, err, err_size))
        return NULL;
    nat_bridge_fwd_t *self = (nat_bridge_fwd_t *) calloc (1, sizeof *self);
    assert (self);
    self->loop = loop;
    self->udp = udp;
    self->endpoint = addr;
    for (size_t i = 0; i < NAT_BRIDGE_FWD_MAX; i++) {
        self->slots [i].owner = self;
        self->slots [i].item.fd = -1;
    }
    return self;
}

static void
s_slot_close (s_slot_t *slot)
{
    if (slot->item.fd < 0)
        return;
    bus_loop_poller_end (slot->owner->loop, &slot->item);
    close (slot->item.fd);
    slot->item.fd = -1;
    nat_addr_clear (&slot->remote);
}

void
nat_bridge_fwd_destroy (nat_bridge_fwd_t **self_p)
{
    assert (self_p);
    nat_bridge_fwd_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < NAT_BRIDGE_FWD_MAX; i++)
        s_slot_close (&self->slots [i]);
    free (self);
    *self_p = NULL;
}

//  The program answered on one slot's socket: out of nat's port to its remote
static int
s_slot_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_slot_t *slot = (s_slot_t *) arg;
    nat_bridge_fwd_t *self = slot->owner;
    for (int round = 0; round < S_READS_PER_WAKEUP && slot->item.fd >= 0; round++) {
        ssize_t n = recv (slot->item.fd, self->buf, sizeof self->buf, MSG_DONTWAIT);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                self->stats.errors++;       //  ECONNREFUSED: the program is not running yet
            break;
        }
        nat_udp_tx_t tx = { self->buf, (size_t) n, &slot->remote };
        slot->answered_ms = bus_clock_ms ();
        if (nat_udp_send (self->udp, &tx, 1) == 1)
            self->stats.out++;
        else
            self->stats.errors++;
    }
    return 0;
}

//  A loopback socket of the endpoint's family, connected to it (so only the
//  program's datagrams reach it), watched on the loop; false when the kernel
//  refuses
static bool
s_slot_open (nat_bridge_fwd_t *self, s_slot_t *slot, const nat_addr_t *remote, int64_t now_ms)
{
    int family = self->endpoint.sa.sa_family;
    int fd = socket (family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    nat_addr_t local;
    nat_addr_set_ip (&local, family == AF_INET ? "127.0.0.1" : "::1", 0);
    if (bind (fd, &local.sa, local.len) || connect (fd, &self->endpoint.sa, self->endpoint.len)) {
        close (fd);
        return false;
    }
    slot->item = (zmq_pollitem_t) { NULL, fd, ZMQ_POLLIN, 0 };
    if (bus_loop_poller (self->loop, &slot->item, s_slot_ready, slot)) {
        close (fd);
        slot->item.fd = -1;
        return false;
    }
    slot->remote = *remote;
    slot->heard_ms = now_ms;
    slot->answered_ms = 0;
    self->stats.remotes++;
    return true;
}

//  May s make room for a new remote? Free, or not answered by the program
//  lately: the program answers only what it authenticated, so a flood of
//  strangers' datagrams from ever new sources cannot push a live flow out
static bool
s_evictable (const s_slot_t *s, int64_t now_ms)
{
    return s->item.fd < 0 || !s->answered_ms || now_ms - s->answered_ms > S_ANSWERED_KEEP_MS;
}

void
nat_bridge_fwd_rx (nat_bridge_fwd_t *self, const uint8_t *data, size_t size, const nat_addr_t *remote,
                   int64_t now_ms)
{
    s_slot_t *slot = NULL, *spare = NULL;
    for (size_t i = 0; i < NAT_BRIDGE_FWD_MAX && !slot; i++) {
        s_slot_t *s = &self->slots [i];
        if (s->item.fd >= 0 && nat_addr_eq (&s->remote, remote))
            slot = s;
        else
        if (s_evictable (s, now_ms)
        &&  (!spare || (spare->item.fd >= 0 && (s->item.fd < 0 || s->heard_ms < spare->heard_ms))))
            spare = s;
    }
    if (!slot && !spare) {
        self->stats.refused++;      //  every socket carries a flow the program answers
        return;
    }
    if (!slot) {
        if (spare->item.fd >= 0) {
            s_slot_close (spare);
            self->stats.evicted++;
        }
        if (!s_slot_open (self, spare, remote, now_ms)) {
            self->stats.errors++;
            return;
        }
        slot = spare;
    }
    slot->heard_ms = now_ms;
    if (send (slot->item.fd, data, size, MSG_DONTWAIT) == (ssize_t) size)
        self->stats.in++;
    else
        self->stats.errors++;
}

const nat_bridge_fwd_stats_t *nat_bridge_fwd_stats (nat_bridge_fwd_t *self) { return &self->stats; }

//  ---------------------------------------------------------------------------
//  Self test: nat's socket, remotes and the program as real loopback sockets

static int
s_test_udp (struct sockaddr_in *out)
{
    int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (fd >= 0 && bind (fd, (struct sockaddr *) &sa, sizeof sa) == 0);
    socklen_t len = sizeof sa;
    getsockname (fd, (struct sockaddr *) &sa, &len);
    struct timeval tv = { 1, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (out)
        *out = sa;
    return fd;
}

static int
s_test_stop (bus_loop_t *loop, int timer_id, void *arg)
{
    return -1;
}

//  Runs the loop for ms
static void
s_test_spin (bus_loop_t *loop, int ms)
{
    bus_loop_timer (loop, (size_t) ms, 1, s_test_stop, NULL);
    bus_loop_start (loop);
}

void
nat_bridge_fwd_test (bool verbose)
{
    char err [160];
    //  Only a loopback literal with a port
    static const char *bad [] = { "192.0.2.1:5000", "127.0.0.1", "127.0.0.1:0", "[::1]:70000", "localhost:5000",
                                  "[::1]5000", "", ":5000", "127.0.0.1:5x", "[2001:db8::1]:5000", "::1:5000" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        assert (nat_bridge_fwd_parse (bad [i], NULL, err, sizeof err) == -1);
        if (verbose)
            printf ("nat_bridge_fwd: %-20s refused: %s\n", bad [i], err);
    }
    assert (nat_bridge_fwd_parse ("127.0.0.1:5000", NULL, err, sizeof err) == 0);
    assert (nat_bridge_fwd_parse ("[::1]:5000", NULL, err, sizeof err) == 0);

    bus_loop_t *loop = bus_loop_new ();
    nat_udp_config_t uc = { .bind = "127.0.0.1:0" };
    nat_udp_t *udp = nat_udp_new (&uc, err, sizeof err);
    assert (udp);
    struct sockaddr_in prog_sa, r1_sa, r2_sa;
    int prog = s_test_udp (&prog_sa);
    int r1 = s_test_udp (&r1_sa);
    int r2 = s_test_udp (&r2_sa);
    char endpoint [32];
    snprintf (endpoint, sizeof endpoint, "127.0.0.1:%u", ntohs (prog_sa.sin_port));
    nat_bridge_fwd_t *self = nat_bridge_fwd_new (loop, endpoint, udp, err, sizeof err);
    assert (self);
    nat_addr_t a1, a2;
    nat_addr_set_sockaddr (&a1, (struct sockaddr *) &r1_sa, sizeof r1_sa);
    nat_addr_set_sockaddr (&a2, (struct sockaddr *) &r2_sa, sizeof r2_sa);

    //  A remote's datagram reaches the program unread, from a socket of its own
    uint8_t hb [28] = { 33 };
    int64_t t0 = bus_clock_ms ();
    nat_bridge_fwd_rx (self, hb, sizeof hb, &a1, t0);
    uint8_t got [128];
    struct sockaddr_in s1, s2, from;
    socklen_t len = sizeof s1;
    assert (recvfrom (prog, got, sizeof got, 0, (struct sockaddr *) &s1, &len) == sizeof hb && got [0] == 33);
    assert (s1.sin_port != r1_sa.sin_port && s1.sin_port != htons (nat_udp_port (udp)));
    //  ... and another remote from another
    nat_bridge_fwd_rx (self, hb, sizeof hb, &a2, t0 + 1);
    len = sizeof s2;
    assert (recvfrom (prog, got, sizeof got, 0, (struct sockaddr *) &s2, &len) == sizeof hb);
    assert (s2.sin_port != s1.sin_port);
    //  The same remote again: the same socket
    nat_bridge_fwd_rx (self, hb, 10, &a1, t0 + 2);
    len = sizeof from;
    assert (recvfrom (prog, got, sizeof got, 0, (struct sockaddr *) &from, &len) == 10 && from.sin_port == s1.sin_port);

    //  The program's answer to s1 leaves nat's port toward remote 1, not 2
    assert (sendto (prog, "reply-1", 7, 0, (struct sockaddr *) &s1, sizeof s1) == 7);
    s_test_spin (loop, 50);
    len = sizeof from;
    assert (recvfrom (r1, got, sizeof got, 0, (struct sockaddr *) &from, &len) == 7 && memcmp (got, "reply-1", 7) == 0);
    assert (ntohs (from.sin_port) == nat_udp_port (udp));
    assert (nat_bridge_fwd_stats (self)->out == 1 && nat_bridge_fwd_stats (self)->in == 3);
    //  Another local socket cannot speak through s1: it is connected to the program
    assert (sendto (r2, "forged", 6, 0, (struct sockaddr *) &s1, sizeof s1) == 6);
    s_test_spin (loop, 50);
    struct timeval short_wait = { 0, 100000 };
    setsockopt (r1, SOL_SOCKET, SO_RCVTIMEO, &short_wait, sizeof short_wait);
    assert (recv (r1, got, sizeof got, 0) == -1);
    assert (nat_bridge_fwd_stats (self)->out == 1);

    //  More remotes than slots: the one heard least recently among those the
    //  program never answered (remote 2, not remote 1) goes
    struct sockaddr_in seen [NAT_BRIDGE_FWD_MAX];
    int seen_count = 0;
    seen [seen_count++] = s1;
    for (int i = 0; i < NAT_BRIDGE_FWD_MAX - 1; i++) {
        nat_addr_t other;
        nat_addr_set_ip (&other, "198.51.100.7", (uint16_t) (4000 + i));
        nat_bridge_fwd_rx (self, hb, sizeof hb, &other, t0 + 10 + i);
        len = sizeof seen [0];
        assert (recvfrom (prog, got, sizeof got, 0, (struct sockaddr *) &seen [seen_count++], &len) == sizeof hb);
    }
    assert (nat_bridge_fwd_stats (self)->evicted == 1 && nat_bridge_fwd_stats (self)->remotes == NAT_BRIDGE_FWD_MAX + 1);
    nat_bridge_fwd_rx (self, hb, 10, &a1, t0 + 100);          //  remote 1 kept its socket
    len = sizeof from;
    assert (recvfrom (prog, got, sizeof got, 0, (struct sockaddr *) &from, &len) == 10 && from.sin_port == s1.sin_port);
    assert (nat_bridge_fwd_stats (self)->evicted == 1);
    //  The program answers every remote: no socket may go, so a new remote's
    //  datagram is refused (a flood of strangers cannot push live flows out)
    for (int i = 0; i < seen_count; i++)
        assert (sendto (prog, "a", 1, 0, (struct sockaddr *) &seen [i], sizeof seen [i]) == 1);
    s_test_spin (loop, 50);
    nat_addr_t stranger;
    nat_addr_set_ip (&stranger, "192.0.2.66", 9999);
    nat_bridge_fwd_rx (self, hb, sizeof hb, &stranger, bus_clock_ms ());
    assert (nat_bridge_fwd_stats (self)->refused == 1 && nat_bridge_fwd_stats (self)->evicted == 1);
    struct timeval brief = { 0, 100000 };
    setsockopt (prog, SOL_SOCKET, SO_RCVTIMEO, &brief, sizeof brief);
    assert (recv (prog, got, sizeof got, 0) == -1);
    //  ... until they go quiet for S_ANSWERED_KEEP_MS
    nat_bridge_fwd_rx (self, hb, sizeof hb, &stranger, bus_clock_ms () + S_ANSWERED_KEEP_MS + 1000);
    assert (nat_bridge_fwd_stats (self)->evicted == 2 && recv (prog, got, sizeof got, 0) == sizeof hb);
    if (verbose)
        printf ("nat_bridge_fwd: in %" PRIu64 ", out %" PRIu64 ", remotes %" PRIu64 ", evicted %" PRIu64 "\n",
                nat_bridge_fwd_stats (self)->in, nat_bridge_fwd_stats (self)->out,
                nat_bridge_fwd_stats (self)->remotes, nat_bridge_fwd_stats (self)->evicted);

    nat_bridge_fwd_destroy (&self);
    assert (self == NULL);
    close (prog);
    close (r1);
    close (r2);
    nat_udp_destroy (&udp);
    bus_loop_destroy (&loop);
}
