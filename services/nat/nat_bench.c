/*  nat_bench: datagrams per second through nat_udp over loopback, one syscall per
    datagram against recvmmsg/sendmmsg batches, with and without UDP GSO/GRO, at
    1400 B and 64 B. A sender process and a receiver process (2 cores), each mode
    for a fixed time, in a private network namespace when allowed.
    Usage: nat_bench [seconds per run, default 2]. Numbers go to docs/nat.md. */
#include "nat_udp.h"
#include "bus_clock.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *name;
    bool single, gso, gro;
} s_mode_t;

static void
s_run (const s_mode_t *mode, size_t size, double seconds)
{
    char err [200];
    nat_udp_t *rx = nat_udp_new (&(nat_udp_config_t) { .bind = "127.0.0.1:0", .rcvbuf = 4 << 20,
        .single = mode->single, .gro = mode->gro }, err, sizeof err);
    nat_udp_t *tx = nat_udp_new (&(nat_udp_config_t) { .bind = "127.0.0.1:0", .sndbuf = 4 << 20,
        .single = mode->single, .gso = mode->gso }, err, sizeof err);
    if (!rx || !tx) {
        fprintf (stderr, "nat_bench: %s\n", err);
        exit (1);
    }
    int result [2];
    if (pipe (result))
        exit (1);
    pid_t pid = fork ();
    if (pid == 0) {
        nat_udp_destroy (&tx);
        uint64_t count = 0;
        double end = bus_clock_sec () + seconds + 0.5;
        while (bus_clock_sec () < end) {
            struct pollfd pfd = { .fd = nat_udp_fd (rx), .events = POLLIN };
            if (poll (&pfd, 1, 100) <= 0)
                continue;
            nat_udp_rx_t *dgrams;
            count += nat_udp_recv (rx, &dgrams);
        }
        const nat_udp_stats_t *st = nat_udp_stats (rx);
        uint64_t out [2] = { count, st->recv_calls };
        if (write (result [1], out, sizeof out) < 0)
            _exit (1);
        _exit (0);
    }
    nat_addr_t to;
    nat_addr_set_ip (&to, "127.0.0.1", nat_udp_port (rx));
    static uint8_t payload [NAT_UDP_BATCH][1500];
    nat_udp_tx_t batch [NAT_UDP_BATCH];
    for (int i = 0; i < NAT_UDP_BATCH; i++)
        batch [i] = (nat_udp_tx_t) { payload [i], size, &to };
    usleep (100 * 1000);        //  let the receiver reach its loop (benchmark only)
    double start = bus_clock_sec (), end = start + seconds;
    while (bus_clock_sec () < end)
        for (int k = 0; k < 16; k++)
            nat_udp_send (tx, batch, NAT_UDP_BATCH);
    double elapsed = bus_clock_sec () - start;
    uint64_t out [2] = { 0, 0 };
    if (read (result [0], out, sizeof out) != sizeof out)
        fprintf (stderr, "nat_bench: no result from receiver\n");
    waitpid (pid, NULL, 0);
    const nat_udp_stats_t *st = nat_udp_stats (tx);
    printf ("| %-22s | %5zu | %10.0f | %10.0f | %8.1f | %8.1f | %7.2f |\n", mode->name, size,
            (double) st->dgrams_out / elapsed, (double) out [0] / elapsed,
            (double) st->dgrams_out / (double) (st->send_calls ? st->send_calls : 1),
            (double) out [0] / (double) (out [1] ? out [1] : 1),
            (double) out [0] * (double) size * 8 / elapsed / 1e9);
    close (result [0]);
    close (result [1]);
    nat_udp_destroy (&rx);
    nat_udp_destroy (&tx);
}

int
main (int argc, char **argv)
{
    double seconds = argc > 1 ? atof (argv [1]) : 2;
    if (seconds <= 0 || seconds > 60) {
        fprintf (stderr, "usage: nat_bench [seconds per run, 0-60]\n");
        return 1;
    }
    bool isolated = nat_udp_test_netns () == 0;
    printf ("nat_bench: %.1f s per run, %s loopback\n\n", seconds, isolated ? "private" : "host");
    static const s_mode_t modes [] = {
        { "sendto/recvfrom", true, false, false },
        { "sendmmsg/recvmmsg", false, false, false },
        { "sendmmsg+GSO/recvmmsg", false, true, false },
        { "sendmmsg+GSO/+GRO", false, true, true },
        { NULL, false, false, false }
    };
    static const size_t sizes [] = { 1400, 64 };
    printf ("| mode                   |  size |  tx dgram/s |  rx dgram/s | tx per call | rx per call | rx Gbit/s |\n");
    printf ("|---|---|---|---|---|---|---|\n");
    for (size_t s = 0; s < 2; s++)
        for (const s_mode_t *m = modes; m->name; m++)
            s_run (m, sizes [s], seconds);
    return 0;
}
