/*  bridge_link: one flow's UDP socket, heartbeats and states (why: bridge_link.h). */
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

struct _bridge_link_t {
    bus_loop_t *loop;
    bridge_link_fns_t fns;
    bridge_link_stats_t *stats;
    bridge_flow_t *flow;
    bridge_far_t *far;              //  the target, then the source of the last valid datagram
    zmq_pollitem_t item;
    int timer;
    int heartbeat_ms, timeout_ms;
    size_t max_message;
    bridge_state_t state;
    int64_t heard_ms;               //  last valid datagram from the target
    int64_t ping_ms;                //  last heartbeat sent (for the round trip)
    int rtt_ms;                     //  -1: none measured
    char udp_text [64];             //  bridge_link_udp_text
};

//  One buffer for every link: the loop reads one datagram at a time
static uint8_t s_buffer [BRIDGE_WIRE_MAX_DATAGRAM + 1];
static uint8_t s_plain [BRIDGE_WIRE_MAX_DATAGRAM + 1];

static int
s_seal_send (bridge_link_t *self, int type, const uint8_t *msg, size_t size, const bridge_addr_t *to)
{
    int n = to ? bridge_flow_seal (self->flow, type, msg, size, s_buffer, sizeof s_buffer) : -1;
    if (n < 0 || sendto (self->item.fd, s_buffer, (size_t) n, 0, (const struct sockaddr *) &to->addr, to->len) != n) {
        self->stats->dropped_send++;
        return -1;
    }
    self->stats->datagrams_out++;
    return 0;
}

//  A HEARTBEAT to the far end, or to every candidate while none is known
static void
s_heartbeat (bridge_link_t *self, int64_t now)
{
    const bridge_addr_t *to [BRIDGE_FAR_MAX];
    int n = bridge_far_heartbeats (self->far, now, to, BRIDGE_FAR_MAX);
    self->ping_ms = now;
    for (int i = 0; i < n; i++)
        s_seal_send (self, BRIDGE_WIRE_HEARTBEAT, NULL, 0, to [i]);
}

//  moved: the far end changed, which the client is told even in the same state
static void
s_set_state (bridge_link_t *self, bridge_state_t state, bool moved)
{
    if (self->state == state && !moved)
        return;
    self->state = state;
    self->fns.state (self->fns.arg, state, self->rtt_ms);
}

//  One valid datagram from addr: it is the far end now (authenticated, so a
//  stranger cannot move it); heartbeats answered, data delivered
static void
s_heard (bridge_link_t *self, int type, size_t size, const struct sockaddr_storage *from, socklen_t from_len)
{
    int64_t now = bus_clock_ms ();
    bool moved = bridge_far_heard (self->far, from, from_len, now);
    self->heard_ms = now;
    self->stats->datagrams_in++;
    if (type == BRIDGE_WIRE_HEARTBEAT_REPLY && self->ping_ms) {
        int64_t rtt = now - self->ping_ms;
        self->rtt_ms = rtt > 60000 ? 60000 : (int) rtt;
    }
    if (type == BRIDGE_WIRE_HEARTBEAT)
        s_seal_send (self, BRIDGE_WIRE_HEARTBEAT_REPLY, NULL, 0, bridge_far_chosen (self->far, now));
    if (type == BRIDGE_WIRE_DATA && self->fns.deliver (self->fns.arg, s_plain, size) != 0)
        self->stats->dropped_slow++;
    //  Data proves the far end as well as a heartbeat does
    s_set_state (self, BRIDGE_STATE_UDP_ESTABLISHED, moved);
}

static int
s_readable (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    bridge_link_t *self = (bridge_link_t *) arg;
    for (int round = 0; round < S_BATCH && self->item.fd >= 0; round++) {
        struct sockaddr_storage from;
        socklen_t from_len = sizeof from;
        ssize_t n = recvfrom (self->item.fd, s_buffer, sizeof s_buffer, MSG_DONTWAIT,
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
static int
s_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    bridge_link_t *self = (bridge_link_t *) arg;
    int64_t now = bus_clock_ms ();
    if (self->state == BRIDGE_STATE_UDP_ESTABLISHED && now - self->heard_ms >= self->timeout_ms)
        s_set_state (self, BRIDGE_STATE_UDP_WAITING, false);
    s_heartbeat (self, now);
    return 0;
}

//  The address peers reach the socket at (why: bridge_link_udp_text)
static void
s_udp_text (bridge_link_t *self, const struct sockaddr_storage *public_addr, const bridge_addr_t *toward)
{
    struct sockaddr_storage local;
    socklen_t len = sizeof local;
    if (getsockname (self->item.fd, (struct sockaddr *) &local, &len))
        return;
    uint16_t port = bridge_link_port (self);
    bool v6 = local.ss_family == AF_INET6;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &local;
    struct sockaddr_in *sin = (struct sockaddr_in *) &local;
    bool wildcard = v6 ? IN6_IS_ADDR_UNSPECIFIED (&sin6->sin6_addr) : sin->sin_addr.s_addr == htonl (INADDR_ANY);
    if (public_addr && public_addr->ss_family == local.ss_family) {
        local = *public_addr;
        wildcard = false;
    }
    if (wildcard && toward) {
        int probe = socket (local.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        len = sizeof local;
        bool ok = probe >= 0 && connect (probe, (const struct sockaddr *) &toward->addr, toward->len) == 0
               && getsockname (probe, (struct sockaddr *) &local, &len) == 0;
        if (probe >= 0)
            close (probe);
        if (!ok)
            return;
        wildcard = false;
    }
    if (wildcard)
        return;
    if (v6)
        sin6->sin6_port = htons (port);
    else
        sin->sin_port = htons (port);
    bridge_addr_text (&local, self->udp_text, sizeof self->udp_text);
}

bridge_link_t *
bridge_link_new (bus_loop_t *loop, const bridge_link_config_t *config, const bridge_link_fns_t *fns,
                 bridge_link_stats_t *stats)
{
    assert (loop && config && fns && stats && config->target_len <= sizeof (struct sockaddr_storage));
    bridge_link_t *self = (bridge_link_t *) calloc (1, sizeof *self);
    assert (self);
    self->loop = loop;
    self->fns = *fns;
    self->stats = stats;
    self->item.fd = -1;
    self->timer = -1;
    self->heartbeat_ms = config->heartbeat_ms;
    self->timeout_ms = config->timeout_ms;
    self->max_message = config->max_message;
    self->state = BRIDGE_STATE_UDP_WAITING;
    self->rtt_ms = -1;
    bridge_addr_t target = { .len = config->target_len };
    memcpy (&target.addr, config->target, config->target_len);
    self->far = bridge_far_new (&target, 1);
    self->flow = bridge_flow_new (config->key, BRIDGE_FLOW_CLIENT, config->cipher);
    if (!self->flow) {
        bridge_link_destroy (&self);
        errno = EINVAL;
        return NULL;
    }
    int fd = socket (target.addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        bridge_link_destroy (&self);
        errno = e;
        return NULL;
    }
    //  Bound now (any port), so its port is known before the first send; an
    //  IPv6 socket takes IPv6 only (no IPv4-mapped sources)
    int one = 1;
    if (target.addr.ss_family == AF_INET6)
        setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    struct sockaddr_storage any;
    memset (&any, 0, sizeof any);
    any.ss_family = target.addr.ss_family;
    if (bind (fd, (struct sockaddr *) &any, target.addr.ss_family == AF_INET6 ? sizeof (struct sockaddr_in6)
                                                                         : sizeof (struct sockaddr_in))) {
        int e = errno;
        close (fd);
        bridge_link_destroy (&self);
        errno = e;
        return NULL;
    }
    self->item = (zmq_pollitem_t) { NULL, fd, ZMQ_POLLIN, 0 };
    s_udp_text (self, config->public_addr, &target);
    self->timer = bus_loop_timer (loop, (size_t) config->heartbeat_ms, 0, s_tick, self);
    if (self->timer < 0 || bus_loop_poller (loop, &self->item, s_readable, self)) {
        bridge_link_destroy (&self);
        errno = ENOMEM;
        return NULL;
    }
    //  The first heartbeat now, not one interval later: it binds the port
    //  and starts the punching
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
    if (self->item.fd >= 0) {
        bus_loop_poller_end (self->loop, &self->item);
        close (self->item.fd);
    }
    if (self->timer >= 0)
        bus_loop_timer_end (self->loop, self->timer);
    bridge_flow_destroy (&self->flow);
    bridge_far_destroy (&self->far);
    free (self);
    *self_p = NULL;
}

int
bridge_link_send (bridge_link_t *self, const uint8_t *msg, size_t size)
{
    return s_seal_send (self, BRIDGE_WIRE_DATA, msg, size, bridge_far_chosen (self->far, bus_clock_ms ()));
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

const char *bridge_link_udp_text (const bridge_link_t *self) { return self->udp_text; }

uint16_t
bridge_link_port (const bridge_link_t *self)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname (self->item.fd, (struct sockaddr *) &ss, &len))
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
    bridge_link_config_t config = {
        .target = (struct sockaddr *) &peer_sa, .target_len = sizeof peer_sa, .key = key,
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
    bridge_flow_destroy (&far);
    bus_loop_destroy (&loop);
    close (peer);
    close (other);
}
