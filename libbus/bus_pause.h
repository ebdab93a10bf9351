/*  bus_pause: stop reading a source while the pipe it feeds is full, and look
    again on a timer that starts at 1 ms and doubles up to a ceiling.

    Why: when the next hop cannot keep up, reading packets only to drop them
    spins the CPU the next hop needs to catch up (two cores); letting the kernel
    queue and drop costs nothing. 1 ms lets a burst drain at once, the ceiling
    keeps a reader whose peer is gone (crypto restarting) from waking 1,000 times
    a second. device (TUN -> dev-crypto) and nat (UDP -> nat-crypto) both pause
    this way; the loop lives here once. */
#ifndef BUS_PAUSE_H_INCLUDED
#define BUS_PAUSE_H_INCLUDED

#include "bus_loop.h"
#include <stdbool.h>

typedef struct _bus_pause_t bus_pause_t;

//  May the reader go on (the pipe takes batches again)?
typedef bool (bus_pause_ready_fn) (void *arg);
//  The pause is over: the reader starts reading again (re-arms its poller, reads
//  what queued up). Its return value is the timer handler's (-1 ends the loop).
typedef int (bus_pause_resume_fn) (void *arg);

bus_pause_t *bus_pause_new (bus_loop_t *loop, int max_ms, bus_pause_ready_fn *ready,
                            bus_pause_resume_fn *resume, void *arg);
void bus_pause_destroy (bus_pause_t **self_p);
//  The reader has stopped reading: check ready in 1 ms, then 2, 4 ... up to
//  max_ms, and call resume once it says yes. True when this started a pause,
//  false when one was already running.
bool bus_pause_start (bus_pause_t *self);
bool bus_pause_active (bus_pause_t *self);

void bus_pause_test (bool verbose);
#endif
