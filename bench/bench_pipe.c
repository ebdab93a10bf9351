/*  bench_pipe: how many packets per second one bus_pipe carries between two
    processes, for a given batch size and packet size: the ceiling of the data
    plane (DESIGN.md, STYLE.md 7). Compare it with the ZeroMQ blocks in
    ../shared/bench/blocks/, the transport bus_pipe used before.

        bench_pipe [-s SECONDS] [-b BATCH] [-p PACKET_BYTES] [-r ROUNDS] [-w] [-m]

    The parent is the sender, a forked child the receiver. The sender fills batches in place
    (bus_batch_reserve + a copy of a 1400-byte template, as a device copies from
    a TUN read) and sends with bus_pipe_send, which never blocks: when the queue
    is full the batch is dropped and counted, exactly as in a service. With -w it
    instead waits for room (poll POLLOUT), to measure the lossless rate. The
    receiver iterates every packet of every batch (reads its first and last byte)
    and measures from its first batch for SECONDS. Rates are packets received /
    receiver time; Gbit/s counts packet bytes only. -r repeats the measurement
    and reports the median round; -m prints a Markdown row.
    Every loop is bounded in time: the sender gives up SECONDS + 5 s after start. */
#include "bus_pipe.h"
#include "bus_clock.h"

#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    uint64_t packets, bytes, batches, rejected;
    double seconds;
    uint64_t sink;
} s_result_t;

static int
s_receiver (const char *dir, double seconds, int ready_fd, int result_fd)
{
    bus_pipe_t *rx = bus_pipe_new (dir, "bench", BUS_PIPE_RECEIVER, 0);
    if (!rx)
        return 1;
    if (write (ready_fd, "r", 1) != 1)
        return 1;
    s_result_t result = { 0 };
    bus_batch_iter_t iter;
    bus_packet_t pkt;
    double t0 = 0, end = bus_clock_sec () + seconds + 5, now = 0;
    while ((now = bus_clock_sec ()) < end) {
        int rc = bus_pipe_recv (rx, &iter, 100);
        if (rc == -1)
            result.rejected++;
        if (rc != 1)
            continue;
        if (t0 == 0) {
            t0 = now;
            end = t0 + seconds;
        }
        result.batches++;
        while (bus_batch_iter_next (&iter, &pkt)) {
            result.packets++;
            result.bytes += pkt.len;
            if (pkt.len)
                result.sink += pkt.data [0] + pkt.data [pkt.len - 1];
        }
    }
    result.seconds = t0 ? now - t0 : 0;
    bus_pipe_destroy (&rx);
    if (write (result_fd, &result, sizeof result) != sizeof result)
        return 1;
    return 0;
}

typedef struct {
    double pps, gbps, offered_pps, drop_pct;
    uint64_t packets, rejected;
    double seconds;
} s_round_t;

//  One measurement: fork the receiver, send, collect. 0 or -1.
static int
s_round (double seconds, int batch_size, int packet, bool wait, s_round_t *out)
{
    char dir [] = "/tmp/bench-pipe-XXXXXX";
    if (!mkdtemp (dir)) {
        perror ("mkdtemp");
        return -1;
    }
    int ready [2], result [2];
    if (pipe (ready) || pipe (result)) {
        perror ("pipe");
        return -1;
    }
    pid_t child = fork ();
    if (child < 0) {
        perror ("fork");
        return -1;
    }
    if (child == 0) {
        alarm ((unsigned) seconds + 20);
        close (ready [0]);
        close (result [0]);
        _exit (s_receiver (dir, seconds, ready [1], result [1]));
    }
    close (ready [1]);
    close (result [1]);
    char c;
    if (read (ready [0], &c, 1) != 1) {
        fprintf (stderr, "bench_pipe: the receiver did not start\n");
        return -1;
    }
    close (ready [0]);

    bus_pipe_t *tx = bus_pipe_new (dir, "bench", BUS_PIPE_SENDER, 0);
    bus_batch_t *batch = bus_batch_new (BUS_BATCH_HEADER + BUS_BATCH_MAX * BUS_BATCH_STRIDE (packet));
    uint8_t *template = (uint8_t *) malloc ((size_t) packet);
    if (!tx || !batch || !template)
        return -1;
    for (int i = 0; i < packet; i++)
        template [i] = (uint8_t) i;

    //  Send until the receiver reports (it stops SECONDS after its first batch)
    struct pollfd done = { result [0], POLLIN, 0 };
    double t0 = bus_clock_sec (), end = t0 + seconds + 5;
    uint64_t offered = 0, dropped = 0, loops = 0;
    bool finished = false;
    while (!finished && bus_clock_sec () < end) {
        for (int i = 0; i < batch_size; i++)
            memcpy (bus_batch_reserve (batch, (uint32_t) i, (size_t) packet), template, (size_t) packet);
        if (wait) {
            //  Keep the batch until there is room (or the receiver is done)
            //  (bus_pipe_writable first: no system call while there is room)
            if (!bus_pipe_writable (tx))
                while (!bus_pipe_writable (tx) && poll (&done, 1, 0) == 0) {
                    struct pollfd room = { bus_pipe_fd (tx), POLLOUT, 0 };
                    poll (&room, 1, 10);
                }
        }
        offered += (uint64_t) batch_size;
        if (bus_pipe_send (tx, batch) == -1)
            dropped += (uint64_t) batch_size;
        if ((++loops & 63) == 0)
            finished = poll (&done, 1, 0) == 1;
    }
    double sent_time = bus_clock_sec () - t0;
    s_result_t r = { 0 };
    ssize_t n = read (result [0], &r, sizeof r);   //  blocks at most until the child ends
    close (result [0]);
    int status = 0;
    waitpid (child, &status, 0);
    bus_pipe_destroy (&tx);
    bus_batch_destroy (&batch);
    free (template);
    rmdir (dir);
    if (n != sizeof r || r.seconds <= 0 || !WIFEXITED (status) || WEXITSTATUS (status) != 0) {
        fprintf (stderr, "bench_pipe: the receiver got nothing or failed\n");
        return -1;
    }
    out->pps = (double) r.packets / r.seconds;
    out->gbps = (double) r.bytes * 8 / r.seconds / 1e9;
    out->offered_pps = (double) offered / sent_time;
    out->drop_pct = offered ? 100.0 * (double) dropped / (double) offered : 0;
    out->packets = r.packets;
    out->rejected = r.rejected;
    out->seconds = r.seconds;
    return 0;
}

static int
s_cmp_round (const void *a, const void *b)
{
    double x = ((const s_round_t *) a)->pps, y = ((const s_round_t *) b)->pps;
    return x < y ? -1 : x > y;
}

int
main (int argc, char **argv)
{
    double seconds = 3;
    int batch_size = 64, packet = 1400, rounds = 1;
    bool wait = false, markdown = false;
    int opt;
    while ((opt = getopt (argc, argv, "s:b:p:r:wmh")) != -1) {
        switch (opt) {
            case 's': seconds = atof (optarg); break;
            case 'b': batch_size = atoi (optarg); break;
            case 'p': packet = atoi (optarg); break;
            case 'r': rounds = atoi (optarg); break;
            case 'w': wait = true; break;
            case 'm': markdown = true; break;
            default:
                fprintf (stderr, "usage: %s [-s SECONDS] [-b BATCH 1..64] [-p PACKET_BYTES] [-r ROUNDS] [-w] [-m]\n"
                                 "  -r  repeat and report the median round (by packets/s)\n"
                                 "  -w  wait for room instead of dropping when the pipe is full\n"
                                 "  -m  print a Markdown table row\n", argv [0]);
                return opt == 'h' ? 0 : 2;
        }
    }
    if (seconds <= 0 || seconds > 60 || batch_size < 1 || batch_size > BUS_BATCH_MAX
    ||  packet < 1 || packet > 9000 || rounds < 1 || rounds > 9) {
        fprintf (stderr, "bench_pipe: seconds must be in (0, 60], batch in 1..64, "
                         "packet in 1..9000, rounds in 1..9\n");
        return 2;
    }
    s_round_t results [9];
    for (int i = 0; i < rounds; i++)
        if (s_round (seconds, batch_size, packet, wait, &results [i]))
            return 1;
    qsort (results, (size_t) rounds, sizeof results [0], s_cmp_round);
    s_round_t *r = &results [rounds / 2];
    if (markdown)
        printf ("| bus_pipe, %d B, batch %d, %s | %.0fk | %.2f | %.0f%% |\n",
                packet, batch_size, wait ? "sender waits" : "drop when full",
                r->pps / 1000, r->gbps, r->drop_pct);
    else
        printf ("bench_pipe batch=%d packet=%d B %s (median of %d): received %llu packets in %.2f s: "
                "%.0f packets/s, %.2f Gbit/s; sender offered %.0f packets/s, dropped %.1f%%, rejected %llu\n",
                batch_size, packet, wait ? "wait" : "drop", rounds,
                (unsigned long long) r->packets, r->seconds, r->pps, r->gbps,
                r->offered_pps, r->drop_pct, (unsigned long long) r->rejected);
    return 0;
}
