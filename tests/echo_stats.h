/*  echo_stats: the clock and the timing lines of the bridge's echo clients
    (tests/bridge_ws_client through the bridge, bench/bench_bridge direct),
    written once so both measure alike and bench/bridge-bench.sh reads both
    the same way:

        ECHO OK <n> <bytes>           n messages came back intact
        RATE <ms> <msg/s> <Mbit/s>    first sent to last back; Mbit/s of payload, one way
        RTT <median ms> <p99 ms>      each message's round trip */
#ifndef ECHO_STATS_H_INCLUDED
#define ECHO_STATS_H_INCLUDED

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double
echo_stats_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline int
echo_stats_cmp (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

//  The three lines for n messages (n > 0) of bytes in all, secs from the
//  first sent to the last back, rtt [n] in seconds (sorted here)
static inline void
echo_stats_print (int n, long long bytes, double secs, double *rtt)
{
    printf ("ECHO OK %d %lld\n", n, bytes);
    printf ("RATE %.1f %.0f %.2f\n", secs * 1000, n / secs, (double) bytes * 8 / secs / 1e6);
    qsort (rtt, (size_t) n, sizeof *rtt, echo_stats_cmp);
    printf ("RTT %.3f %.3f\n", rtt [n / 2] * 1000, rtt [(n * 99) / 100] * 1000);
}
#endif
