/*  bus_ready: readiness and liveness over an inherited file descriptor, the s6 way.

    bifrostd gives every child the write end of a pipe and its number in
    BIFROST_READY_FD. The child writes "READY\n" once when it can serve, then
    "HB\n" from its event loop every heartbeat interval. A child whose loop hangs
    (deadlock, SIGSTOP) stops writing and is killed and restarted; none of this
    depends on the broker being up. */
#ifndef BUS_READY_H_INCLUDED
#define BUS_READY_H_INCLUDED

#include <stdbool.h>

#define BUS_READY_ENV       "BIFROST_READY_FD"
#define BUS_READY_LINE      "READY\n"
#define BUS_HEARTBEAT_LINE  "HB\n"

//  The fd from the environment (validated: open, a pipe or fifo), or -1.
int bus_ready_fd (void);
//  Write READY / HB; non-blocking, errors ignored (the supervisor may be gone).
void bus_ready_notify (int fd);
void bus_ready_heartbeat (int fd);

void bus_ready_test (bool verbose);
#endif
