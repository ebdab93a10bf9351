/*  bus_clock: the monotonic clock in the units the code base counts in.

    Header only (inline), so classes that link nothing of libbus (device's core,
    the bench programs) share it too: one definition instead of a private
    s_now () in every file that needs a time. CLOCK_MONOTONIC, never the wall
    clock, so a time step (NTP, a user's date) cannot fire or starve a timer. */
#ifndef BUS_CLOCK_H_INCLUDED
#define BUS_CLOCK_H_INCLUDED

#include <stdint.h>
#include <time.h>

static inline uint64_t
bus_clock_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static inline int64_t
bus_clock_us (void)
{
    return (int64_t) (bus_clock_ns () / 1000);
}

static inline int64_t
bus_clock_ms (void)
{
    return (int64_t) (bus_clock_ns () / 1000000);
}

//  Seconds as a double, for benchmarks that divide by elapsed time
static inline double
bus_clock_sec (void)
{
    return (double) bus_clock_ns () / 1e9;
}
#endif
