/*  bridge_link: one flow's UDP sockets, heartbeats and states (why: bridge_link.h). */
#include "bridge_link.h"
#include "bridge_flow.h"
#include "bridge_far.h"
#include "bus_clock.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_BATCH     64              //  datagrams read per wake-up at most

//  A socket per family the candidates have: IPv6's, IPv4's
enum { S_V6, S_V4, S_FAMILIES };

typedef struct {
    bridge_link_t *owner;
    zmq_pollitem_t item;            //  fd -1: no candidate of this family
    char udp_text [64];             //  what bridge_link_udp_text says for it
} s_sock_t;

struct _bridge_link_t {
    bus_loop_t *loop;
    bridge_link_fns_t fns;
    bridge_link_stats_t *stats;
    bridge_flow_t *flow;
    bridge_far_t *far;              //  the targets, then per family the source of the last valid datagram
    bridge_addr_t cand [BRIDGE_FAR_MAX];    //  the targets as given (bridge_link_retarget compares)
    int cand_count;
    const struct sockaddr_storage *public_addr;
    s_sock_t sock [S_FAMILIES];
    int first;                      //  the first candidate's family (S_V6, S_V4)
    int timer, grace_timer;
    int heartbeat_ms, timeout_ms;
    size_t max_message;
    bridge_state_t state;
    bridge_addr_t told;             //  the far end the client was last told of
    int64_t ping_ms;                //  last heartbeat sent (for the round trip)
    int rtt_ms;                     //  -1: none measured
};

//  One buffer for every link: the loop reads one datagram at a time
static uint8_t s_buffer [BRIDGE_WIRE_MAX_DATAGRAM + 1];
static uint8_t s_plain [BRIDGE_WIRE_MAX_DATAGRAM + 1];

static int
s_family (const struct sockaddr_storage *addr)
{
    return addr->ss_family == AF_INET6 ? S_V6 : S_V4;
}

static int
s_seal_send (bridge_link_t *self, int type, const uint8_t *msg, size_t size, const bridge_addr_t *to)
{
    int fd = to ? self->sock [s_family (&to->addr)].item.fd : -1;
    int n = fd >= 0 ? bridge_flow_seal (self->flow, type, msg, size, s_buffer, sizeof s_buffer) : -1;
    if (n < 0 || sendto (fd, s_buffer, (size_t) n, 0, (const struct sockaddr *) &to->addr, to->len) != n) {
        self->stats->dropped_send++;
        return -1;
    }
    self->stats->datagrams_out++;
    return 0;
}

//  HEARTBEATs: per family to its far end, or to its candidates while none is known
static void
s_heartbeat (bridge_link_t *self, int64_t now)
{
    const bridge_addr_t *to [BRIDGE_FAR_MAX];
    int n = bridge_far_heartbeats (self->far, now, to, BRIDGE_FAR_MAX);
    self->ping_ms = now;
    for (int i = 0; i < n; i++)
        s_seal_send (self, BRIDGE_WIRE_HEARTBEAT, NULL, 0, to [i]);
}

static int s_grace (bus_loop_t *loop, int timer_id, void *arg);

//  The state from the far end in use: none alive, UDP_WAITING; one,
//  UDP_ESTABLISHED, told again when it is another than the client knows (it
//  roamed, or the family changed)
static void
s_update (bridge_link_t *self, int64_t now)
{
    const bridge_addr_t *far = bridge_far_chosen (self->far, now);
    if (!far) {
        if (self->state == BRIDGE_STATE_UDP_ESTABLISHED) {
            self->state = BRIDGE_STATE_UDP_WAITING;
            self->fns.state (self->fns.arg, self->state, self->rtt_ms);
        }
    }
    else
    if (self->state != BRIDGE_STATE_UDP_ESTABLISHED || !self->told.len
    ||  !bridge_addr_same (&self->told.addr, &far->addr)) {
        self->told = *far;
        self->state = BRIDGE_STATE_UDP_ESTABLISHED;
        self->fns.state (self->fns.arg, self->state, self->rtt_ms);
    }
    //  IPv4 answered and waits for IPv6: look again when its grace ends
    int pending = bridge_far_pending_ms (self->far, now);
    if (pending > 0 && self->grace_timer < 0)
        self->grace_timer = bus_loop_timer (self->loop, (size_t) pending, 1, s_grace, self);
}

static int
s_grace (bus_loop_t *loop, int timer_id, void *arg)
{
    bridge_link_t *self = (bridge_link_t *) arg;
    self->grace_timer = -1;
    s_update (self, bus_clock_ms ());
    return 0;
}

//  One valid datagram from addr: its family's far end now (authenticated, so
//  a stranger cannot move it); heartbeats answered, data delivered
static void
s_heard (bridge_link_t *self, int type, size_t size, const struct sockaddr_storage *from, socklen_t from_len)
{
    int64_t now = bus_clock_ms ();
    bridge_far_heard (self->far, from, from_len, now);
    self->stats->datagrams_in++;
    if (type == BRIDGE_WIRE_HEARTBEAT_REPLY && self->ping_ms) {
        int64_t rtt = now - self->ping_ms;
        self->rtt_ms = rtt > 60000 ? 60000 : (int) rtt;
    }
    if (type == BRIDGE_WIRE_HEARTBEAT) {
        bridge_addr_t to = { .len = from_len };
        memcpy (&to.addr, from, from_len);
        s_seal_send (self, BRIDGE_WIRE_HEARTBEAT_REPLY, NULL, 0, &to);
    }
    if (type == BRIDGE_WIRE_DATA && self->fns.deliver (self->fns.arg, s_plain, size) != 0)
        self->stats->dropped_slow++;
    //  Data proves the far end as well as a heartbeat does
    s_update (self, now);
}

static int
s_readable (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_sock_t *sock = (s_sock_t *) arg;
    bridge_link_t *self = sock->owner;
    for (int round = 0; round < S_BATCH && sock->item.fd >= 0; round++) {
        struct sockaddr_storage from;
        socklen_t from_len = sizeof from;
        ssize_t n = recvfrom (sock->item.fd, s_buffer, sizeof s_buffer, MSG_DONTWAIT,
                              (struct sockaddr *) &from, &from_len);
        if (n < 0)
            break;
        //  Authenticated first: the source of a refused datagram moves nothing
        int type = 0;
        int size = bridge_flow_open (self->flow, s_buffer, (size_t) n, &type, s_plain, self->max_message);
        if (size < 0) {
            if (bridge_far_known (self->far, &from))
                self->stats->dropped_invalid++;
            else
                self->stats->dropped_source++;
            continue;
        }
        s_heard (self, type, (size_t) size, &from, from_len);
    }
    return 0;
}

//  Every heartbeat_interval: punch, and notice when the far end went quiet
//  (or IPv6 did, and IPv4 takes over)
static int
s_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    bridge_link_t *self = (bridge_link_t *) arg;
    int64_t now = bus_clock_ms ();
    s_update (self, now);
    s_heartbeat (self, now);
    return 0;
}

//  The address peers reach a socket at (why: bridge_link_udp_text)
static void
s_udp_text (s_sock_t *sock, const struct sockaddr_storage *public_addr, const bridge_addr_t *toward)
{
    struct sockaddr_storage local;
    socklen_t len = sizeof local;
    if (getsockname (sock->item.fd, (struct sockaddr *) &local, &len))
        return;
    bool v6 = local.ss_family == AF_INET6;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &local;
    struct sockaddr_in *sin = (struct sockaddr_in *) &local;
    uint16_t port = v6 ? sin6->sin6_port : sin->sin_port;
    bool wildcard = v6 ? IN6_IS_ADDR_UNSPECIFIED (&sin6->sin6_addr) : sin->sin_addr.s_addr == htonl (INADDR_ANY);
    if (public_addr && public_addr->ss_family == local.ss_family) {
        local = *public_addr;
        wildcard = false;
    }
    if (wildcard) {
        int probe = socket (local.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        len = sizeof local;
        bool ok = probe >= 0 && connect (probe, (const struct sockaddr *) &toward->addr, toward->len) == 0
               && getsockname (probe, (struct sockaddr *) &local, &len) == 0;
        if (probe >= 0)
            close (probe);
        if (!ok)
            return;
    }
    if (v6)
        sin6->sin6_port = port;
    else
        sin->sin_port = port;
    bridge_addr_text (&local, sock->udp_text, sizeof sock->udp_text);
}

//  The socket of toward's family, bound to any port now, so its port is known
//  before the first send; an IPv6 one takes IPv6 only (no IPv4-mapped
//  sources: IPv4 has its own). 0, or -1 with errno
static int
s_open (bridge_link_t *self, const bridge_addr_t *toward, const struct sockaddr_storage *public_addr)
{
    s_sock_t *sock = &self->sock [s_family (&toward->addr)];
    if (sock->item.fd >= 0)
        return 0;
    int family = toward->addr.ss_family;
    int fd = socket (family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    struct sockaddr_storage any;
    memset (&any, 0, sizeof any);
    any.ss_family = (sa_family_t) family;
    if ((family == AF_INET6 && setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one))
    ||  bind (fd, (struct sockaddr *) &any, family == AF_INET6 ? sizeof (struct sockaddr_in6) : sizeof (struct sockaddr_in))) {
        int e = errno;
        close (fd);
        errno = e;
        return -1;
    }
    sock->item = (zmq_pollitem_t) { NULL, fd, ZMQ_POLLIN, 0 };
    s_udp_text (sock, public_addr, toward);
    if (bus_loop_poller (self->loop, &sock->item, s_readable, sock)) {
        close (fd);
        sock->item.fd = -1;
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

bridge_link_t *
bridge_link_new (bus_loop_t *loop, const bridge_link_config_t *config, const bridge_link_fns_t *fns,
                 bridge_link_stats_t *stats)
{
    assert (loop && config && fns && stats && config->targets);
    assert (config->target_count >= 1 && config->target_count <= BRIDGE_FAR_MAX);
    bridge_link_t *self = (bridge_link_t *) calloc (1, sizeof *self);
    assert (self);
    self->loop = loop;
    self->fns = *fns;
    self->stats = stats;
    for (int i = 0; i < S_FAMILIES; i++)
        self->sock [i] = (s_sock_t) { .owner = self, .item = { NULL, -1, 0, 0 } };
    self->timer = self->grace_timer = -1;
    self->heartbeat_ms = config->heartbeat_ms;
    self->timeout_ms = config->timeout_ms;
    self->max_message = config->max_message;
    self->state = BRIDGE_STATE_UDP_WAITING;
    self->rtt_ms = -1;
    self->first = s_family (&config->targets [0].addr);
    memcpy (self->cand, config->targets, (size_t) config->target_count * sizeof (bridge_addr_t));
    self->cand_count = config->target_count;
    self->public_addr = config->public_addr;
    self->far = bridge_far_new (config->targets, config->target_count, config->timeout_ms, BRIDGE_FAMILY_GRACE_MS);
    self->flow = bridge_flow_new (config->key, BRIDGE_FLOW_CLIENT, config->cipher);
    if (!self->flow) {
        bridge_link_destroy (&self);
        errno = EINVAL;
        return NULL;
    }
    for (int i = 0; i < config->target_count; i++)
        if (s_open (self, &config->targets [i], config->public_addr)) {
            int e = errno;
            bridge_link_destroy (&self);
            errno = e;
            return NULL;
        }
    self->timer = bus_loop_timer (loop, (size_t) config->heartbeat_ms, 0, s_tick, self);
    if (self->timer < 0) {
        bridge_link_destroy (&self);
        errno = ENOMEM;
        return NULL;
    }
    //  The first heartbeats now, not one interval later: they start the punching
    s_heartbeat (self, bus_clock_ms ());
    return self;
}

void
bridge_link_destroy (bridge_link_t **self_p)
{
    assert (self_p);
    bridge_link_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < S_FAMILIES; i++)
        if (self->sock [i].item.fd >= 0) {
            bus_loop_poller_end (self->loop, &self->sock [i].item);
            close (self->sock [i].item.fd);
        }
    if (self->timer >= 0)
        bus_loop_timer_end (self->loop, self->timer);
    if (self->grace_timer >= 0)
        bus_loop_timer_end (self->loop, self->grace_timer);
    bridge_flow_destroy (&self->flow);
    bridge_far_destroy (&self->far);
    free (self);
    *self_p = NULL;
}

int
bridge_link_retarget (bridge_link_t *self, const bridge_addr_t *targets, int count)
{
    assert (count >= 1 && count <= BRIDGE_FAR_MAX);
    int64_t now = bus_clock_ms ();
    if (bridge_far_best (self->far, now))
        return 0;               //  heard: the far end is known and roams
    bool same = count == self->cand_count;
    for (int i = 0; i < count && same; i++)
        same = bridge_addr_same (&targets [i].addr, &self->cand [i].addr);
    if (same)
        return 0;
    for (int i = 0; i < count; i++)
        if (s_open (self, &targets [i], self->public_addr))
            return -1;
    bridge_far_t *far = bridge_far_new (targets, count, self->timeout_ms, BRIDGE_FAMILY_GRACE_MS);
    bridge_far_destroy (&self->far);
    self->far = far;
    memcpy (self->cand, targets, (size_t) count * sizeof (bridge_addr_t));
    self->cand_count = count;
    self->first = s_family (&targets [0].addr);
    s_heartbeat (self, now);
    return 1;
}

int
bridge_link_send (bridge_link_t *self, const uint8_t *msg, size_t size)
{
    return s_seal_send (self, BRIDGE_WIRE_DATA, msg, size, bridge_far_best (self->far, bus_clock_ms ()));
}

bridge_state_t bridge_link_state (const bridge_link_t *self) { return self->state; }
bridge_cipher_t bridge_link_cipher (const bridge_link_t *self) { return bridge_flow_cipher (self->flow); }

void
bridge_link_far_text (bridge_link_t *self, char *out, size_t size)
{
    const bridge_addr_t *far = bridge_far_shown (self->far, bus_clock_ms ());
    if (far)
        bridge_addr_text (&far->addr, out, size);
    else
        snprintf (out, size, "%s", "");
}

//  The family in use: the far end's, else the first candidate's
static const s_sock_t *
s_sock_in_use (const bridge_link_t *self)
{
    const bridge_addr_t *far = bridge_far_best (self->far, bus_clock_ms ());
    return &self->sock [far ? s_family (&far->addr) : self->first];
}

const char *bridge_link_udp_text (const bridge_link_t *self) { return s_sock_in_use (self)->udp_text; }

uint16_t
bridge_link_port (const bridge_link_t *self)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname (s_sock_in_use (self)->item.fd, (struct sockaddr *) &ss, &len))
        return 0;
    return ntohs (ss.ss_family == AF_INET ? ((struct sockaddr_in *) &ss)->sin_port
                                          : ((struct sockaddr_in6 *) &ss)->sin6_port);
}

//  ---------------------------------------------------------------------------
//  Self test: a link to a UDP socket of the test playing the far end with a
//  flow of the peer role, on a real loop: WAITING -> ESTABLISHED on its
//  heartbeat (answered), data both ways, a datagram from another address and
//  a replayed one dropped and counted, silence -> WAITING.

#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>

typedef struct {
    int states [8];
    int state_count;
    uint8_t got [64];
    size_t got_size;
} s_test_t;

static void
s_test_state (void *arg, bridge_state_t state, int rtt_ms)
{
    s_test_t *t = (s_test_t *) arg;
    if (t->state_count < 8)
        t->states [t->state_count++] = (int) state;
}

static int
s_test_deliver (void *arg, const uint8_t *msg, size_t size)
{
    s_test_t *t = (s_test_t *) arg;
    assert (size <= sizeof t->got);
    memcpy (t->got, msg, size);
    t->got_size = size;
    return 0;
}

static int
s_test_stop (bus_loop_t *loop, int timer_id, void *arg)
{
    return -1;
}

//  Runs the loop for ms
static void
s_test_run (bus_loop_t *loop, int ms)
{
    bus_loop_timer (loop, (size_t) ms, 1, s_test_stop, NULL);
    bus_loop_start (loop);
}

static int
s_test_socket (struct sockaddr_in *sa)
{
    int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    memset (sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (bind (fd, (struct sockaddr *) sa, sizeof *sa) == 0);
    socklen_t len = sizeof *sa;
    getsockname (fd, (struct sockaddr *) sa, &len);
    return fd;
}

//  Reads sock until the DATA msg comes (opened with far; other datagrams of
//  the flow, the bridge's heartbeats and replies, may come first)
static bool
s_test_recv_data (int sock, bridge_flow_t *far, const char *msg, size_t size)
{
    for (int i = 0; i < 8; i++) {
        uint8_t dgram [128], plain [64];
        struct pollfd p = { sock, POLLIN, 0 };
        if (poll (&p, 1, 1000) != 1)
            return false;
        ssize_t n = recv (sock, dgram, sizeof dgram, 0);
        int type = 0;
        int got = bridge_flow_open (far, dgram, (size_t) n, &type, plain, sizeof plain);
        assert (got >= 0);
        if (type == BRIDGE_WIRE_DATA)
            return (size_t) got == size && memcmp (plain, msg, size) == 0;
    }
    return false;
}

//  Dual stack: the far end on IPv6 and IPv4 loopback, one flow of the peer
//  role answering from either socket (as a dual-stack peer does)
typedef struct {
    int fd [2];                         //  S_V6, S_V4
    bridge_addr_t link [2];             //  the link's socket of each family, from its heartbeats
    bool answer [2];                    //  send a heartbeat from this family each pump
    bridge_flow_t *far;
} s_dual_t;

static int
s_dual_pump (bus_loop_t *loop, int timer_id, void *arg)
{
    s_dual_t *d = (s_dual_t *) arg;
    for (int f = 0; f < 2; f++) {
        uint8_t dgram [128];
        bridge_addr_t from = { .len = sizeof from.addr };
        ssize_t n;
        while ((n = recvfrom (d->fd [f], dgram, sizeof dgram, MSG_DONTWAIT, (struct sockaddr *) &from.addr, &from.len)) > 0) {
            int type = 0;
            if (bridge_flow_open (d->far, dgram, (size_t) n, &type, NULL, 0) >= 0)
                d->link [f] = from;
            from.len = sizeof from.addr;
        }
        if (d->answer [f] && d->link [f].len) {
            int hb = bridge_flow_seal (d->far, BRIDGE_WIRE_HEARTBEAT, NULL, 0, dgram, sizeof dgram);
            sendto (d->fd [f], dgram, (size_t) hb, 0, (struct sockaddr *) &d->link [f].addr, d->link [f].len);
        }
    }
    return 0;
}

static bool
s_test_far_is (bridge_link_t *self, const bridge_addr_t *want)
{
    char got [64], text [64];
    bridge_link_far_text (self, got, sizeof got);
    bridge_addr_text (&want->addr, text, sizeof text);
    return strcmp (got, text) == 0;
}

static void
s_test_dual (bool verbose, const uint8_t *key)
{
    s_dual_t d;
    memset (&d, 0, sizeof d);
    bridge_addr_t target [2];
    memset (target, 0, sizeof target);
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &target [S_V6].addr;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_loopback;
    target [S_V6].len = sizeof *sin6;
    d.fd [S_V6] = socket (AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (d.fd [S_V6] < 0 || bind (d.fd [S_V6], (struct sockaddr *) sin6, sizeof *sin6)) {
        printf ("bridge_link: no IPv6 loopback here (%s): the dual-stack test is skipped\n", strerror (errno));
        if (d.fd [S_V6] >= 0)
            close (d.fd [S_V6]);
        return;
    }
    getsockname (d.fd [S_V6], (struct sockaddr *) &target [S_V6].addr, &target [S_V6].len);
    d.fd [S_V4] = s_test_socket ((struct sockaddr_in *) &target [S_V4].addr);
    target [S_V4].len = sizeof (struct sockaddr_in);
    d.far = bridge_flow_new (key, BRIDGE_FLOW_PEER, BRIDGE_CIPHER_CHACHA20POLY1305);
    bus_loop_t *loop = bus_loop_new ();
    bus_loop_timer (loop, 20, 0, s_dual_pump, &d);
    s_test_t t = { 0 };
    bridge_link_stats_t stats = { 0 };
    //  The client lists IPv4 first; IPv6 is preferred all the same
    bridge_addr_t listed [2] = { target [S_V4], target [S_V6] };
    bridge_link_config_t config = {
        .targets = listed, .target_count = 2, .key = key, .cipher = BRIDGE_CIPHER_CHACHA20POLY1305,
        .heartbeat_ms = 50, .timeout_ms = 300, .max_message = 64,
    };
    bridge_link_fns_t fns = { s_test_state, s_test_deliver, &t };
    bridge_link_t *self = bridge_link_new (loop, &config, &fns, &stats);
    assert (self);
    //  Heartbeats to both families at once; only IPv4 answers: still waiting
    //  inside its grace
    d.answer [S_V4] = true;
    s_test_run (loop, BRIDGE_FAMILY_GRACE_MS / 2);
    assert (d.link [S_V6].len && d.link [S_V4].len);
    assert (t.state_count == 0 && bridge_link_state (self) == BRIDGE_STATE_UDP_WAITING);
    //  IPv6 answers within it: established on IPv6, never on IPv4
    d.answer [S_V6] = true;
    s_test_run (loop, 80);
    assert (t.state_count == 1 && t.states [0] == BRIDGE_STATE_UDP_ESTABLISHED && s_test_far_is (self, &target [S_V6]));
    assert (bridge_link_send (self, (const uint8_t *) "v6", 2) == 0);
    //  IPv6 goes quiet: IPv4 takes over within the timeout and a heartbeat,
    //  without a UDP_WAITING between (the client is told the new far end)
    d.answer [S_V6] = false;
    int64_t t0 = bus_clock_ms ();
    while (t.state_count < 2 && bus_clock_ms () - t0 < 2000)
        s_test_run (loop, 10);
    int64_t took = bus_clock_ms () - t0;
    assert (t.state_count == 2 && t.states [1] == BRIDGE_STATE_UDP_ESTABLISHED && s_test_far_is (self, &target [S_V4]));
    assert (took >= 250 && took <= 300 + 50 + 100);
    //  IPv6 back: preferred again
    d.answer [S_V6] = true;
    s_test_run (loop, 120);
    assert (t.state_count == 3 && s_test_far_is (self, &target [S_V6]));
    bridge_link_destroy (&self);

    //  Only IPv4 ever answers: taken once its grace is over
    memset (&t, 0, sizeof t);
    d.answer [S_V6] = false;
    memset (d.link, 0, sizeof d.link);
    bridge_flow_destroy (&d.far);       //  a new flow: both ends count from 0 again
    d.far = bridge_flow_new (key, BRIDGE_FLOW_PEER, BRIDGE_CIPHER_CHACHA20POLY1305);
    self = bridge_link_new (loop, &config, &fns, &stats);
    t0 = bus_clock_ms ();
    while (t.state_count < 1 && bus_clock_ms () - t0 < 2000)
        s_test_run (loop, 10);
    took = bus_clock_ms () - t0;
    assert (t.state_count == 1 && s_test_far_is (self, &target [S_V4]));
    assert (took >= BRIDGE_FAMILY_GRACE_MS && took <= BRIDGE_FAMILY_GRACE_MS + 150);
    if (verbose)
        printf ("bridge_link: dual stack: IPv4 after IPv6 went quiet, and alone after %lld ms\n", (long long) took);
    bridge_link_destroy (&self);
    bridge_flow_destroy (&d.far);
    bus_loop_destroy (&loop);
    close (d.fd [S_V6]);
    close (d.fd [S_V4]);
}

void
bridge_link_test (bool verbose)
{
    uint8_t key [BRIDGE_KEY_SIZE];
    for (size_t i = 0; i < sizeof key; i++)
        key [i] = (uint8_t) (i * 7 + 1);
    struct sockaddr_in peer_sa, other_sa;
    int peer = s_test_socket (&peer_sa), other = s_test_socket (&other_sa);
    bridge_flow_t *far = bridge_flow_new (key, BRIDGE_FLOW_PEER, BRIDGE_CIPHER_CHACHA20POLY1305);
    assert (far);
    bus_loop_t *loop = bus_loop_new ();
    s_test_t t = { 0 };
    bridge_link_stats_t stats = { 0 };
    bridge_addr_t peer_target = { .len = sizeof peer_sa };
    memcpy (&peer_target.addr, &peer_sa, sizeof peer_sa);
    bridge_link_config_t config = {
        .targets = &peer_target, .target_count = 1, .key = key,
        .cipher = BRIDGE_CIPHER_CHACHA20POLY1305, .heartbeat_ms = 50, .timeout_ms = 200, .max_message = 64,
    };
    bridge_link_fns_t fns = { s_test_state, s_test_deliver, &t };
    bridge_link_t *self = bridge_link_new (loop, &config, &fns, &stats);
    assert (self && bridge_link_state (self) == BRIDGE_STATE_UDP_WAITING);
    assert (bridge_link_cipher (self) == BRIDGE_CIPHER_CHACHA20POLY1305);
    struct sockaddr_in link_sa = { .sin_family = AF_INET, .sin_port = htons (bridge_link_port (self)) };
    link_sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    //  Its own end for the client: bound to the wildcard, so the address it
    //  sends from toward the target, with its port
    char udp [64];
    snprintf (udp, sizeof udp, "127.0.0.1:%u", bridge_link_port (self));
    assert (bridge_link_port (self) > 0 && strcmp (bridge_link_udp_text (self), udp) == 0);

    //  Its first heartbeat is already there; opened by the far end
    uint8_t dgram [128], plain [64];
    int type = 0;
    ssize_t n = recv (peer, dgram, sizeof dgram, 0);
    assert (n == BRIDGE_WIRE_HEARTBEAT_SIZE);
    assert (bridge_flow_open (far, dgram, (size_t) n, &type, plain, sizeof plain) == 0 && type == BRIDGE_WIRE_HEARTBEAT);
    //  The far end's heartbeat: established, and answered
    int hb = bridge_flow_seal (far, BRIDGE_WIRE_HEARTBEAT, NULL, 0, dgram, sizeof dgram);
    assert (sendto (peer, dgram, (size_t) hb, 0, (struct sockaddr *) &link_sa, sizeof link_sa) == hb);
    //  ... the same datagram again (replayed): dropped as invalid
    assert (sendto (peer, dgram, (size_t) hb, 0, (struct sockaddr *) &link_sa, sizeof link_sa) == hb);
    //  A stranger: garbage and a datagram of another key, dropped by source
    uint8_t other_key [BRIDGE_KEY_SIZE];
    memset (other_key, 0x5a, sizeof other_key);
    bridge_flow_t *forger = bridge_flow_new (other_key, BRIDGE_FLOW_PEER, BRIDGE_CIPHER_CHACHA20POLY1305);
    for (int i = 0; i < 10; i++)
        bridge_flow_seal (forger, BRIDGE_WIRE_HEARTBEAT, NULL, 0, dgram, sizeof dgram);
    int fn = bridge_flow_seal (forger, BRIDGE_WIRE_HEARTBEAT, NULL, 0, dgram, sizeof dgram);
    assert (sendto (other, dgram, (size_t) fn, 0, (struct sockaddr *) &link_sa, sizeof link_sa) == fn);
    assert (sendto (other, "garbage", 7, 0, (struct sockaddr *) &link_sa, sizeof link_sa) == 7);
    bridge_flow_destroy (&forger);
    //  Data from the far end
    int dn = bridge_flow_seal (far, BRIDGE_WIRE_DATA, (const uint8_t *) "from peer", 9, dgram, sizeof dgram);
    assert (sendto (peer, dgram, (size_t) dn, 0, (struct sockaddr *) &link_sa, sizeof link_sa) == dn);
    s_test_run (loop, 30);
    assert (bridge_link_state (self) == BRIDGE_STATE_UDP_ESTABLISHED);
    assert (t.state_count == 1 && t.states [0] == BRIDGE_STATE_UDP_ESTABLISHED);
    assert (t.got_size == 9 && memcmp (t.got, "from peer", 9) == 0);
    assert (stats.dropped_invalid == 1 && stats.dropped_source == 2 && stats.datagrams_in == 2);
    char text [64], want [64];
    bridge_link_far_text (self, text, sizeof text);
    snprintf (want, sizeof want, "127.0.0.1:%u", ntohs (peer_sa.sin_port));
    assert (strcmp (text, want) == 0);
    //  Data to the far end; the reply to its heartbeat came first
    assert (bridge_link_send (self, (const uint8_t *) "to peer", 7) == 0);
    assert (s_test_recv_data (peer, far, "to peer", 7));

    //  Roaming: a valid datagram from another address (a NAT that rebound)
    //  moves the far end, and the client hears of it (ESTABLISHED again, with
    //  the new address): the reply, the heartbeats and the data go there
    int hb3 = bridge_flow_seal (far, BRIDGE_WIRE_HEARTBEAT, NULL, 0, dgram, sizeof dgram);
    uint8_t copy [128];
    memcpy (copy, dgram, (size_t) hb3);
    assert (sendto (other, dgram, (size_t) hb3, 0, (struct sockaddr *) &link_sa, sizeof link_sa) == hb3);
    s_test_run (loop, 30);
    assert (t.state_count == 2 && t.states [1] == BRIDGE_STATE_UDP_ESTABLISHED);
    bridge_link_far_text (self, text, sizeof text);
    snprintf (want, sizeof want, "127.0.0.1:%u", ntohs (other_sa.sin_port));
    assert (strcmp (text, want) == 0);
    while (recv (peer, dgram, sizeof dgram, MSG_DONTWAIT) > 0)
        ;                               //  what went to the old address before
    assert (bridge_link_send (self, (const uint8_t *) "moved", 5) == 0);
    assert (s_test_recv_data (other, far, "moved", 5));
    //  Its replay from the old address moves nothing back
    assert (sendto (peer, copy, (size_t) hb3, 0, (struct sockaddr *) &link_sa, sizeof link_sa) == hb3);
    s_test_run (loop, 120);             //  two heartbeats: to the new far end only
    bridge_link_far_text (self, text, sizeof text);
    assert (strcmp (text, want) == 0 && stats.dropped_invalid == 2 && t.state_count == 2);
    assert (recv (peer, dgram, sizeof dgram, MSG_DONTWAIT) < 0);
    //  Silence: back to waiting within timeout + one interval
    s_test_run (loop, 400);
    assert (bridge_link_state (self) == BRIDGE_STATE_UDP_WAITING);
    assert (t.state_count == 3 && t.states [2] == BRIDGE_STATE_UDP_WAITING);
    if (verbose)
        printf ("bridge_link: in %lu out %lu source %lu invalid %lu\n", (unsigned long) stats.datagrams_in,
                (unsigned long) stats.datagrams_out, (unsigned long) stats.dropped_source,
                (unsigned long) stats.dropped_invalid);
    bridge_link_destroy (&self);
    assert (self == NULL);
    //  With bridge.public_address: that address, the socket's port
    struct sockaddr_storage public_addr;
    memset (&public_addr, 0, sizeof public_addr);
    public_addr.ss_family = AF_INET;
    inet_pton (AF_INET, "203.0.113.10", &((struct sockaddr_in *) &public_addr)->sin_addr);
    config.public_addr = &public_addr;
    self = bridge_link_new (loop, &config, &fns, &stats);
    snprintf (udp, sizeof udp, "203.0.113.10:%u", bridge_link_port (self));
    assert (strcmp (bridge_link_udp_text (self), udp) == 0);
    bridge_link_destroy (&self);
    config.public_addr = NULL;

    //  Retargeting (a peer= flow whose peer nat found later): while nothing
    //  came, new candidates are taken and heartbeats go there at once; the
    //  same ones again, or any once the far end is known, change nothing
    struct sockaddr_in silent_sa, late_sa;
    int silent = s_test_socket (&silent_sa), late = s_test_socket (&late_sa);
    bridge_addr_t silent_target = { .len = sizeof silent_sa }, late_target = { .len = sizeof late_sa };
    memcpy (&silent_target.addr, &silent_sa, sizeof silent_sa);
    memcpy (&late_target.addr, &late_sa, sizeof late_sa);
    config.targets = &silent_target;
    self = bridge_link_new (loop, &config, &fns, &stats);
    assert (self && recv (silent, dgram, sizeof dgram, 0) == BRIDGE_WIRE_HEARTBEAT_SIZE);
    assert (bridge_link_retarget (self, &silent_target, 1) == 0);
    assert (bridge_link_retarget (self, &late_target, 1) == 1);
    bridge_flow_t *late_far = bridge_flow_new (key, BRIDGE_FLOW_PEER, BRIDGE_CIPHER_CHACHA20POLY1305);
    n = recv (late, dgram, sizeof dgram, 0);
    assert (n == BRIDGE_WIRE_HEARTBEAT_SIZE);
    assert (bridge_flow_open (late_far, dgram, (size_t) n, &type, plain, sizeof plain) == 0);
    struct sockaddr_in late_link = { .sin_family = AF_INET, .sin_port = htons (bridge_link_port (self)) };
    late_link.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    hb = bridge_flow_seal (late_far, BRIDGE_WIRE_HEARTBEAT, NULL, 0, dgram, sizeof dgram);
    assert (sendto (late, dgram, (size_t) hb, 0, (struct sockaddr *) &late_link, sizeof late_link) == hb);
    s_test_run (loop, 30);
    assert (bridge_link_state (self) == BRIDGE_STATE_UDP_ESTABLISHED);
    assert (bridge_link_retarget (self, &silent_target, 1) == 0);
    bridge_link_far_text (self, text, sizeof text);
    snprintf (want, sizeof want, "127.0.0.1:%u", ntohs (late_sa.sin_port));
    assert (strcmp (text, want) == 0);
    bridge_link_destroy (&self);
    bridge_flow_destroy (&late_far);
    close (silent);
    close (late);

    bridge_flow_destroy (&far);
    bus_loop_destroy (&loop);
    close (peer);
    close (other);
    s_test_dual (verbose, key);
}
