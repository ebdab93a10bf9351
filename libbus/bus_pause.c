/*  bus_pause: the backoff timer of a paused reader (why: bus_pause.h). */
#include "bus_pause.h"
#include <assert.h>
#include <czmq.h>

struct _bus_pause_t {
    bus_loop_t *loop;
    int max_ms;
    bus_pause_ready_fn *ready;
    bus_pause_resume_fn *resume;
    void *arg;
    int timer;                  //  while paused, else -1
    int interval_ms;
};

bus_pause_t *
bus_pause_new (bus_loop_t *loop, int max_ms, bus_pause_ready_fn *ready, bus_pause_resume_fn *resume, void *arg)
{
    assert (loop && ready && resume && max_ms >= 1);
    bus_pause_t *self = (bus_pause_t *) zmalloc (sizeof (bus_pause_t));
    self->loop = loop;
    self->max_ms = max_ms;
    self->ready = ready;
    self->resume = resume;
    self->arg = arg;
    self->timer = -1;
    return self;
}

void
bus_pause_destroy (bus_pause_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_pause_t *self = *self_p;
    if (self->timer >= 0)
        bus_loop_timer_end (self->loop, self->timer);
    free (self);
    *self_p = NULL;
}

static int
s_check (bus_loop_t *loop, int timer_id, void *arg)
{
    bus_pause_t *self = (bus_pause_t *) arg;
    self->timer = -1;
    if (self->ready (self->arg))
        return self->resume (self->arg);
    //  Still full, or the next hop is not there at all: look again, less often
    self->interval_ms = self->interval_ms * 2 > self->max_ms ? self->max_ms : self->interval_ms * 2;
    self->timer = bus_loop_timer (loop, (size_t) self->interval_ms, 1, s_check, self);
    return 0;
}

bool
bus_pause_start (bus_pause_t *self)
{
    if (self->timer >= 0)
        return false;
    self->interval_ms = 1;
    self->timer = bus_loop_timer (self->loop, 1, 1, s_check, self);
    return true;
}

bool
bus_pause_active (bus_pause_t *self)
{
    return self->timer >= 0;
}

//  ---------------------------------------------------------------------------
//  Self test: the pipe stays full for a few checks, then takes batches again

typedef struct {
    int checks;                 //  ready calls so far
    int full_for;               //  ready says no this many times
    int resumed;
    int64_t first, last;        //  when ready was first and last asked
} s_probe_t;

static bool
s_probe_ready (void *arg)
{
    s_probe_t *probe = (s_probe_t *) arg;
    probe->last = zclock_mono ();
    if (probe->checks++ == 0)
        probe->first = probe->last;
    return probe->checks > probe->full_for;
}

static int
s_probe_resume (void *arg)
{
    s_probe_t *probe = (s_probe_t *) arg;
    probe->resumed++;
    return -1;                  //  ends the test's loop
}

void
bus_pause_test (bool verbose)
{
    printf (" * bus_pause: ");
    bus_loop_t *loop = bus_loop_new ();
    assert (loop);
    s_probe_t probe = { .full_for = 5 };
    bus_pause_t *pause = bus_pause_new (loop, 4, s_probe_ready, s_probe_resume, &probe);
    assert (!bus_pause_active (pause));
    assert (bus_pause_start (pause));
    assert (!bus_pause_start (pause));          //  one pause at a time
    assert (bus_pause_active (pause));
    //  A guard, so a broken pause cannot hang the test
    int64_t start = zclock_mono ();
    bus_loop_start (loop);
    assert (zclock_mono () - start < 2000);
    //  Asked 6 times (5 no, then yes) at 1, 2, 4, 4, 4, 4 ms: the ceiling holds
    assert (probe.checks == 6 && probe.resumed == 1);
    assert (probe.last - probe.first >= 2 + 4 + 4 + 4 + 4 - 2);
    assert (!bus_pause_active (pause));
    //  A pause can be ended by destroying it while it runs
    probe = (s_probe_t) { .full_for = 1000 };
    assert (bus_pause_start (pause));
    bus_pause_destroy (&pause);
    assert (pause == NULL);
    bus_loop_destroy (&loop);
    printf ("OK\n");
}
