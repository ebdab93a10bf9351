/*  bench_hops: the round-trip time of one small packet through a ring of
    processes, over bus_pipe (SOCK_SEQPACKET through a listening socket file)
    or over bare AF_UNIX SOCK_SEQPACKET socket pairs, the floor. A ping through a
    Bifrost tunnel crosses 8 data pipes (device -> crypto -> nat on each node,
    there and back): this measures what the pipes alone cost. Before bus_pipe
    left ZeroMQ the same ring took 777 us against 281 us for the pairs
    (docs/benchmarks.md).

        bench_hops [-n HOPS] [-s SECONDS] [-i INTERVAL_US] [-p BYTES] [-t pipe|service|pair] [-m]

    Process i (0 = the parent) receives on link i-1 and forwards every packet,
    re-packed into a fresh batch as a service does, on link i; the parent times
    each packet once around the ring. -i waits between packets (10000 = the
    ping of the harness, every 10 ms: the cores go idle in between, so every
    hop pays a wakeup). Both transports carry the same bus_batch, validated
    by the receiver. Every wait is bounded; children stop SECONDS + 10 s after
    start even if the parent is gone. */
#include "bus_pipe.h"
#include "bus_clock.h"

#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_HOPS  16
#define S_MAX_RTTS  1000000

//  One end of a link: a bus_pipe, or a socket of a SEQPACKET pair
typedef struct {
    bus_pipe_t *pipe;
    int fd;
    uint8_t buf [70000];
} s_link_t;

//  Waits up to timeout_ms for a batch; 1 with iter set, 0 on timeout, -1 bad
static int
s_recv (s_link_t *in, bus_batch_iter_t *iter, int timeout_ms)
{
    if (in->pipe)
        return bus_pipe_recv (in->pipe, iter, timeout_ms);
    struct pollfd pfd = { in->fd, POLLIN, 0 };
    if (poll (&pfd, 1, timeout_ms) <= 0)
        return 0;
    ssize_t n = recv (in->fd, in->buf, sizeof in->buf, 0);
    if (n <= 0)
        return -1;
    char err [100];
    return bus_batch_iter_init (iter, in->buf, (size_t) n, err, sizeof err) == 0 ? 1 : -1;
}

static int
s_send (s_link_t *out, bus_batch_t *batch)
{
    if (out->pipe)
        return bus_pipe_send (out->pipe, batch);
    ssize_t n = send (out->fd, bus_batch_data (batch), bus_batch_size (batch), 0);
    bus_batch_reset (batch);
    return n > 0 ? 0 : -1;
}

//  Re-packs what arrived into batch, as crypto or nat does, and sends it on
static void
s_forward (s_link_t *out, bus_batch_iter_t *iter, bus_batch_t *batch)
{
    bus_packet_t pkt;
    while (bus_batch_iter_next (iter, &pkt))
        bus_batch_add (batch, pkt.tag, pkt.data, pkt.len);
    s_send (out, batch);
}

//  -t service: a forwarder shaped like a Bifrost service, its pipe in a bus_loop
//  next to two idle ZeroMQ sockets polled by their ZMQ_FD (the bus DEALER and
//  SUB, as bus_service does) and a heartbeat timer, to see what the service
//  loop adds to a hop.
typedef struct {
    s_link_t *out;
    bus_batch_t *batch;
} s_hop_t;

static int
s_on_hop (bus_pipe_t *pipe, void *arg)
{
    s_hop_t *hop = (s_hop_t *) arg;
    bus_batch_iter_t iter;
    for (int n = 0; n < 16; n++) {
        int rc = bus_pipe_recv (pipe, &iter, 0);
        if (rc == 0)
            break;
        if (rc == 1)
            s_forward (hop->out, &iter, hop->batch);
    }
    return 0;
}

static int s_on_idle (bus_loop_t *loop, zmq_pollitem_t *item, void *arg) { return 0; }
static int s_on_tick (bus_loop_t *loop, int timer_id, void *arg) { return 0; }
static int s_on_end (bus_loop_t *loop, int timer_id, void *arg) { return -1; }

static void
s_forward_in_loop (s_link_t *in, s_link_t *out, bus_batch_t *batch, int seconds)
{
    zsys_handler_set (NULL);
    bus_loop_t *loop = bus_loop_new ();
    zsock_t *dealer = zsock_new (ZMQ_DEALER), *sub = zsock_new (ZMQ_SUB);
    zmq_pollitem_t items [2] = {
        { NULL, zsock_fd (dealer), ZMQ_POLLIN, 0 }, { NULL, zsock_fd (sub), ZMQ_POLLIN, 0 }
    };
    bus_loop_poller (loop, &items [0], s_on_idle, NULL);
    bus_loop_poller (loop, &items [1], s_on_idle, NULL);
    bus_loop_timer (loop, 1000, 0, s_on_tick, NULL);
    bus_loop_timer (loop, (size_t) (seconds + 10) * 1000, 1, s_on_end, NULL);
    s_hop_t hop = { out, batch };
    bus_pipe_attach (in->pipe, loop, s_on_hop, &hop);
    bus_loop_start (loop);
    bus_pipe_detach (in->pipe);
    bus_loop_destroy (&loop);
    zsock_destroy (&dealer);
    zsock_destroy (&sub);
}

static int
s_compare (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

int
main (int argc, char **argv)
{
    int hops = 8, seconds = 3, interval_us = 0, bytes = 84;
    bool markdown = false, via_pipe = true, as_service = false;
    int c;
    while ((c = getopt (argc, argv, "n:s:i:p:t:mh")) != -1) {
        switch (c) {
            case 'n': hops = atoi (optarg); break;
            case 's': seconds = atoi (optarg); break;
            case 'i': interval_us = atoi (optarg); break;
            case 'p': bytes = atoi (optarg); break;
            case 't':
                if (strcmp (optarg, "pipe") && strcmp (optarg, "service") && strcmp (optarg, "pair")) {
                    fprintf (stderr, "bench_hops: -t pipe, service or pair, not '%s'\n", optarg);
                    return 2;
                }
                via_pipe = strcmp (optarg, "pair") != 0;
                as_service = strcmp (optarg, "service") == 0;
                break;
            case 'm': markdown = true; break;
            default:
                fprintf (stderr, "usage: bench_hops [-n HOPS] [-s SECONDS] [-i INTERVAL_US] [-p BYTES] [-t pipe|service|pair] [-m]\n");
                return c == 'h' ? 0 : 2;
        }
    }
    if (hops < 2 || hops > S_MAX_HOPS || seconds < 1 || seconds > 600 || bytes < 1 || bytes > 1500
    ||  interval_us < 0 || interval_us > 1000000) {
        fprintf (stderr, "bench_hops: -n 2..%d, -s 1..600, -p 1..1500, -i 0..1000000\n", S_MAX_HOPS);
        return 2;
    }
    char dir [] = "/tmp/bench-hops-XXXXXX";
    if (!mkdtemp (dir)) {
        perror ("bench_hops: mkdtemp");
        return 1;
    }
    int pairs [S_MAX_HOPS][2];
    for (int i = 0; i < hops; i++)
        if (!via_pipe && socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pairs [i])) {
            perror ("bench_hops: socketpair");
            return 1;
        }
    pid_t kids [S_MAX_HOPS] = { 0 };
    int me = 0;
    for (int i = 1; i < hops; i++) {
        pid_t pid = fork ();
        if (pid == 0) {
            me = i;
            break;
        }
        kids [i] = pid;
    }
    //  Link i goes from process i to process i+1 (mod hops)
    static s_link_t in, out;
    int from = (me + hops - 1) % hops;
    char name [32];
    if (via_pipe) {
        snprintf (name, sizeof name, "hop-%d", from);
        in.pipe = bus_pipe_new (dir, name, BUS_PIPE_RECEIVER, 0);
        snprintf (name, sizeof name, "hop-%d", me);
        out.pipe = bus_pipe_new (dir, name, BUS_PIPE_SENDER, 0);
        if (!in.pipe || !out.pipe) {
            fprintf (stderr, "bench_hops: cannot open the pipes in %s\n", dir);
            return 1;
        }
    }
    else {
        in.fd = pairs [from][1];
        out.fd = pairs [me][0];
    }
    bus_batch_t *batch = bus_batch_new (0);
    double start = bus_clock_sec ();
    if (me != 0) {
        //  Forwarder
        bus_batch_iter_t iter;
        if (as_service)
            s_forward_in_loop (&in, &out, batch, seconds);
        while (!as_service && bus_clock_sec () - start < seconds + 10) {
            int rc = s_recv (&in, &iter, 200);
            if (rc == 1)
                s_forward (&out, &iter, batch);
            else
            if (rc < 0 && !via_pipe)
                break;              //  the parent closed its end
        }
        bus_batch_destroy (&batch);
        bus_pipe_destroy (&in.pipe);
        bus_pipe_destroy (&out.pipe);
        _exit (0);
    }
    //  Parent: wait until a packet makes it around (pipes connect), then time
    uint8_t packet [1500];
    memset (packet, 0x5a, sizeof packet);
    bus_batch_iter_t iter;
    bool ready = false;
    while (!ready && bus_clock_sec () - start < 5) {
        bus_batch_add (batch, 0, packet, (size_t) bytes);
        s_send (&out, batch);
        ready = s_recv (&in, &iter, 20) == 1;
    }
    double *rtt = (double *) malloc (S_MAX_RTTS * sizeof *rtt);
    size_t count = 0, lost = 0;
    double end = bus_clock_sec () + seconds;
    while (ready && bus_clock_sec () < end && count < S_MAX_RTTS) {
        if (interval_us)
            usleep ((useconds_t) interval_us);
        bus_batch_add (batch, 0, packet, (size_t) bytes);
        double t0 = bus_clock_sec ();
        s_send (&out, batch);
        if (s_recv (&in, &iter, 1000) == 1)
            rtt [count++] = (bus_clock_sec () - t0) * 1e6;
        else
            lost++;
        //  A late packet from the warm-up would be counted as a reply: drain
        while (s_recv (&in, &iter, 0) == 1)
            ;
    }
    for (int i = 1; i < hops; i++)
        kill (kids [i], SIGTERM);
    for (int i = 1; i < hops; i++)
        waitpid (kids [i], NULL, 0);
    bus_batch_destroy (&batch);
    bus_pipe_destroy (&in.pipe);
    bus_pipe_destroy (&out.pipe);
    char cmd [64];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    if (system (cmd) != 0)
        fprintf (stderr, "bench_hops: could not remove %s\n", dir);
    if (!ready || count == 0) {
        fprintf (stderr, "bench_hops: no packet came around the ring\n");
        free (rtt);
        return 1;
    }
    qsort (rtt, count, sizeof *rtt, s_compare);
    double median = rtt [count / 2], p99 = rtt [count * 99 / 100];
    const char *what = as_service ? "bus_pipe in a service loop"
                     : via_pipe ? "bus_pipe" : "SOCK_SEQPACKET pair";
    if (markdown)
        printf ("| %s, %d hops, %d B, every %d us | %.0f us | %.0f us | %.1f us | %zu |\n",
                what, hops, bytes, interval_us, median, p99, median / hops, count);
    else
        printf ("%s: %d hops, %d B, interval %d us: RTT median %.1f us, p99 %.1f us, "
                "%.1f us per hop, %zu samples, %zu lost\n",
                what, hops, bytes, interval_us, median, p99, median / hops, count, lost);
    free (rtt);
    return 0;
}
