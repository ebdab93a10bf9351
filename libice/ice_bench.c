/*  ice_bench: what a datagram costs through libnice's own data path
    (nice_agent_send, the recv callback from its GSource) against the same
    socket after the handoff (ice_agent_take_socket, then plain sendto/recvfrom),
    the measurement behind docs/ice.md's design choice. Two agents on 127.0.0.1
    in this process, driven through ice_agent_pollfds/ice_agent_dispatch (no
    bus_loop); one thread sends a burst of 32 datagrams, then reads until the
    socket runs dry, for SECONDS per mode.

        libice/ice_bench [SECONDS] [SIZE]        (default 1 s, 1400 bytes)
        libice/ice_bench --keepalive SECONDS     what libnice sends after the
                                                 other side took its socket */
#include "ice_agent.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    ice_agent_t *agent [2];
    char ufrag [2][ICE_CRED_MAX + 1], pwd [2][ICE_CRED_MAX + 1];
    bool ready [2];
    uint64_t received;
} bench_t;

static void
s_event (ice_agent_t *agent, const ice_event_t *ev, void *arg)
{
    bench_t *b = (bench_t *) arg;
    int me = agent == b->agent [0] ? 0 : 1;
    char err [160];
    if (ev->type == ICE_EVENT_CANDIDATE)
        ice_agent_add_remote_candidate (b->agent [1 - me], me + 1, ev->text, err, sizeof err);
    else if (ev->type == ICE_EVENT_GATHERING_DONE)
        ice_agent_end_of_candidates (b->agent [1 - me], me + 1);
    else if (ev->type == ICE_EVENT_STATE && ev->state == ICE_STATE_READY)
        b->ready [me] = true;
}

static void
s_recv (ice_agent_t *agent, uint64_t peer, const uint8_t *data, size_t size, void *arg)
{
    ((bench_t *) arg)->received++;
}

//  One turn of both agents' contexts, waiting at most ms
static void
s_turn (bench_t *b, int ms)
{
    zmq_pollitem_t items [2][32];
    int n [2], timeout [2];
    for (int i = 0; i < 2; i++) {
        n [i] = ice_agent_pollfds (b->agent [i], items [i], 32, &timeout [i]);
        if (n [i] > 32)
            n [i] = 32;
        if (timeout [i] >= 0 && timeout [i] < ms)
            ms = timeout [i];
    }
    zmq_pollitem_t all [64];
    memcpy (all, items [0], (size_t) n [0] * sizeof all [0]);
    memcpy (all + n [0], items [1], (size_t) n [1] * sizeof all [0]);
    zmq_poll (all, n [0] + n [1], ms);
    ice_agent_dispatch (b->agent [0], all, (size_t) n [0]);
    ice_agent_dispatch (b->agent [1], all + n [0], (size_t) n [1]);
}

//  After the handoff on side 1 only: what does side 0's libnice, still running,
//  send to side 1's taken socket over seconds? (docs/ice.md, "Keepalives")
static int
s_keepalive (bench_t *b, int seconds)
{
    char err [160];
    int fd;
    struct sockaddr_storage remote;
    socklen_t rlen;
    if (ice_agent_take_socket (b->agent [1], 1, &fd, &remote, &rlen, err, sizeof err)) {
        fprintf (stderr, "ice_bench: %s\n", err);
        return 1;
    }
    ice_agent_remove_peer (b->agent [1], 1);
    int64_t start = zclock_mono (), end = start + seconds * 1000;
    unsigned count = 0;
    while (zclock_mono () < end) {
        s_turn (b, 100);
        uint8_t buf [1500];
        ssize_t n;
        while ((n = recv (fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
            count++;
            unsigned type = n >= 2 ? (unsigned) (buf [0] << 8 | buf [1]) : 0;
            printf ("%6.1f s: %zd bytes, STUN type 0x%04x%s\n", (double) (zclock_mono () - start) / 1000.0, n, type,
                    type == 0x0001 ? " (binding request)" : type == 0x0011 ? " (binding indication)"
                    : type == 0x0101 ? " (binding success)" : "");
        }
    }
    printf ("%u datagrams from side 0's libnice in %d s; side 0 state %s\n", count, seconds,
            ice_state_name (ice_agent_state (b->agent [0], 2)));
    close (fd);
    ice_agent_destroy (&b->agent [0]);
    ice_agent_destroy (&b->agent [1]);
    return 0;
}

int
main (int argc, char **argv)
{
    int keepalive = 0;
    if (argc > 2 && strcmp (argv [1], "--keepalive") == 0) {
        keepalive = atoi (argv [2]);
        argc -= 2;
        argv += 2;
    }
    int seconds = argc > 1 ? atoi (argv [1]) : 1;
    size_t size = argc > 2 ? (size_t) atoi (argv [2]) : 1400;
    if (seconds < 1 || size < 1 || size > 1500) {
        fprintf (stderr, "usage: ice_bench [SECONDS] [SIZE 1-1500]\n");
        return 2;
    }
    bench_t b;
    memset (&b, 0, sizeof b);
    char err [160];
    for (int i = 0; i < 2; i++) {
        b.agent [i] = ice_agent_new ((uint64_t) i + 1, s_event, &b);
        ice_agent_set_recv (b.agent [i], s_recv, &b);
        ice_agent_add_local_address (b.agent [i], "127.0.0.1", err, sizeof err);
    }
    for (int i = 0; i < 2; i++)
        ice_agent_add_peer (b.agent [i], (uint64_t) (2 - i), err, sizeof err);
    for (int i = 0; i < 2; i++)
        ice_agent_local_credentials (b.agent [i], (uint64_t) (2 - i), b.ufrag [i], b.pwd [i]);
    for (int i = 0; i < 2; i++)
        ice_agent_set_remote_credentials (b.agent [i], (uint64_t) (2 - i), b.ufrag [1 - i], b.pwd [1 - i], err, sizeof err);
    int64_t deadline = zclock_mono () + 10000;
    while (!(b.ready [0] && b.ready [1]) && zclock_mono () < deadline)
        s_turn (&b, 50);
    if (!(b.ready [0] && b.ready [1])) {
        fprintf (stderr, "ice_bench: not READY after 10 s\n");
        return 1;
    }
    if (keepalive > 0)
        return s_keepalive (&b, keepalive);
    uint8_t buf [1500];
    memset (buf, 0xab, sizeof buf);

    //  libnice's data path: agent 0 (peer 2) sends, agent 1 receives in its callback
    uint64_t sent = 0;
    int64_t start = zclock_mono (), end = start + seconds * 1000;
    while (zclock_mono () < end) {
        for (int k = 0; k < 32; k++)
            if (ice_agent_send (b.agent [0], 2, buf, size) == (int) size)
                sent++;
        s_turn (&b, 0);
    }
    for (int k = 0; k < 20; k++)
        s_turn (&b, 1);
    double secs = (double) (zclock_mono () - start) / 1000.0;
    printf ("libnice (nice_agent_send, recv callback) %zu B: sent %.0f/s, received %.0f/s (%.1f%% lost)\n",
            size, (double) sent / secs, (double) b.received / secs,
            sent ? 100.0 * (double) (sent - b.received) / (double) sent : 0.0);

    //  The same two sockets after the handoff
    int fd [2];
    struct sockaddr_storage remote [2];
    socklen_t rlen [2];
    for (int i = 0; i < 2; i++)
        if (ice_agent_take_socket (b.agent [i], (uint64_t) (2 - i), &fd [i], &remote [i], &rlen [i], err, sizeof err)) {
            fprintf (stderr, "ice_bench: %s\n", err);
            return 1;
        }
    ice_agent_destroy (&b.agent [0]);
    ice_agent_destroy (&b.agent [1]);
    sent = 0;
    uint64_t received = 0;
    start = zclock_mono ();
    end = start + seconds * 1000;
    while (zclock_mono () < end) {
        for (int k = 0; k < 32; k++)
            if (sendto (fd [0], buf, size, 0, (struct sockaddr *) &remote [0], rlen [0]) == (ssize_t) size)
                sent++;
        while (recv (fd [1], buf, sizeof buf, MSG_DONTWAIT) > 0)
            received++;
    }
    struct pollfd p = { .fd = fd [1], .events = POLLIN };
    while (poll (&p, 1, 20) == 1 && recv (fd [1], buf, sizeof buf, MSG_DONTWAIT) > 0)
        received++;
    secs = (double) (zclock_mono () - start) / 1000.0;
    printf ("taken socket (sendto, recv) %zu B: sent %.0f/s, received %.0f/s (%.1f%% lost)\n",
            size, (double) sent / secs, (double) received / secs,
            sent ? 100.0 * (double) (sent - received) / (double) sent : 0.0);

    //  The taken socket in batches, as nat_udp sends and reads (no GSO/GRO here)
    struct mmsghdr tx [32], rx [32];
    struct iovec txv [32], rxv [32];
    static uint8_t rxbuf [32][1500];
    memset (tx, 0, sizeof tx);
    memset (rx, 0, sizeof rx);
    for (int k = 0; k < 32; k++) {
        txv [k] = (struct iovec) { buf, size };
        tx [k].msg_hdr = (struct msghdr) { .msg_name = &remote [0], .msg_namelen = rlen [0], .msg_iov = &txv [k], .msg_iovlen = 1 };
        rxv [k] = (struct iovec) { rxbuf [k], sizeof rxbuf [k] };
        rx [k].msg_hdr = (struct msghdr) { .msg_iov = &rxv [k], .msg_iovlen = 1 };
    }
    sent = received = 0;
    start = zclock_mono ();
    end = start + seconds * 1000;
    while (zclock_mono () < end) {
        int n = sendmmsg (fd [0], tx, 32, 0);
        if (n > 0)
            sent += (uint64_t) n;
        while ((n = recvmmsg (fd [1], rx, 32, MSG_DONTWAIT, NULL)) > 0)
            received += (uint64_t) n;
    }
    while (poll (&p, 1, 20) == 1 && recv (fd [1], buf, sizeof buf, MSG_DONTWAIT) > 0)
        received++;
    secs = (double) (zclock_mono () - start) / 1000.0;
    printf ("taken socket (sendmmsg, recvmmsg of 32) %zu B: sent %.0f/s, received %.0f/s (%.1f%% lost)\n",
            size, (double) sent / secs, (double) received / secs,
            sent ? 100.0 * (double) (sent - received) / (double) sent : 0.0);
    close (fd [0]);
    close (fd [1]);
    return 0;
}
