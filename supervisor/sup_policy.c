/*  sup_policy: restart intensity, restart types and backoff. */
#include "sup_policy.h"

#include <assert.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

//  Restart times in a ring; intensity is at most 1000 (sup_config), so the ring
//  never needs more than 1001 slots.
#define S_RING  1001

struct _sup_policy_t {
    int64_t times [S_RING];
    size_t head;                //  next slot to write
    size_t count;
};

sup_policy_t *
sup_policy_new (void)
{
    sup_policy_t *self = calloc (1, sizeof *self);
    assert (self);
    return self;
}

void
sup_policy_destroy (sup_policy_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

size_t
sup_policy_recent (sup_policy_t *self, const sup_limits_t *limits, int64_t now_ms)
{
    size_t recent = 0;
    for (size_t i = 0; i < self->count; i++) {
        int64_t t = self->times [(self->head + S_RING - 1 - i) % S_RING];
        if (now_ms - t < limits->period_ms)
            recent++;
        else
            break;              //  older entries are older still
    }
    return recent;
}

bool
sup_policy_allow (sup_policy_t *self, const sup_limits_t *limits, int64_t now_ms)
{
    if (sup_policy_recent (self, limits, now_ms) >= (size_t) limits->intensity)
        return false;
    self->times [self->head] = now_ms;
    self->head = (self->head + 1) % S_RING;
    if (self->count < S_RING)
        self->count++;
    return true;
}

void
sup_policy_reset (sup_policy_t *self)
{
    self->head = self->count = 0;
}

bool
sup_policy_should_restart (sup_restart_type_t type, int64_t last_exit)
{
    if (last_exit == BUS_EXIT_CONFIG)
        return false;
    switch (type) {
        case SUP_RESTART_PERMANENT: return true;
        case SUP_RESTART_TRANSIENT: return last_exit != 0;
        case SUP_RESTART_TEMPORARY: return false;
    }
    return false;
}

int64_t
sup_policy_delay (const sup_limits_t *limits, int64_t ready_ms, int64_t since_start_ms,
                  int64_t *backoff_ms)
{
    int64_t delay;
    if (ready_ms >= 0 && ready_ms >= limits->stable_ms) {
        //  It ran long enough: at once, and the backoff starts over
        *backoff_ms = 0;
        delay = 0;
    }
    else {
        *backoff_ms = *backoff_ms ? *backoff_ms * 2 : limits->backoff_min_ms;
        if (*backoff_ms > limits->backoff_max_ms)
            *backoff_ms = limits->backoff_max_ms;
        if (*backoff_ms < limits->backoff_min_ms)
            *backoff_ms = limits->backoff_min_ms;
        delay = *backoff_ms;
    }
    //  Never two starts of the same instance closer than backoff_min
    if (since_start_ms + delay < limits->backoff_min_ms)
        delay = limits->backoff_min_ms - since_start_ms;
    return delay;
}

void
sup_policy_describe_exit (int64_t last_exit, char *buf, size_t size)
{
    if (last_exit >= 0)
        snprintf (buf, size, "exit %lld%s", (long long) last_exit,
                  last_exit == BUS_EXIT_CONFIG ? " (permanent failure)" : "");
    else {
        const char *name = sigabbrev_np ((int) -last_exit);
        if (name)
            snprintf (buf, size, "killed by SIG%s", name);
        else
            snprintf (buf, size, "killed by signal %lld", (long long) -last_exit);
    }
}

void
sup_policy_test (bool verbose)
{
    sup_limits_t limits = {
        .intensity = 3, .period_ms = 1000, .on_give_up = SUP_GIVE_UP_STOP_SERVICE,
        .backoff_min_ms = 100, .backoff_max_ms = 500, .stable_ms = 10000,
        .liveness_timeout_ms = 5000, .start_timeout_ms = 30000, .stop_timeout_ms = 5000
    };
    //  Intensity: 3 within 1 s are allowed, the 4th is not; later ones again
    sup_policy_t *self = sup_policy_new ();
    assert (sup_policy_allow (self, &limits, 0));
    assert (sup_policy_allow (self, &limits, 100));
    assert (sup_policy_allow (self, &limits, 200));
    assert (sup_policy_recent (self, &limits, 300) == 3);
    assert (!sup_policy_allow (self, &limits, 300));
    assert (sup_policy_recent (self, &limits, 1050) == 2);
    assert (sup_policy_allow (self, &limits, 1050));
    assert (!sup_policy_allow (self, &limits, 1060));
    assert (sup_policy_recent (self, &limits, 5000) == 0);
    sup_policy_reset (self);
    assert (sup_policy_recent (self, &limits, 1060) == 0);
    //  Intensity 0: no restart ever
    limits.intensity = 0;
    assert (!sup_policy_allow (self, &limits, 0));
    //  A long history wraps the ring without losing the recent count
    limits.intensity = 1000;
    limits.period_ms = 1000000;
    for (int i = 0; i < 1000; i++)
        assert (sup_policy_allow (self, &limits, i));
    assert (!sup_policy_allow (self, &limits, 1000));
    assert (sup_policy_recent (self, &limits, 1000) == 1000);
    assert (sup_policy_recent (self, &limits, 1000000 + 500) == 499);
    sup_policy_destroy (&self);
    assert (!self);

    //  Restart types
    assert (sup_policy_should_restart (SUP_RESTART_PERMANENT, 0));
    assert (sup_policy_should_restart (SUP_RESTART_PERMANENT, 1));
    assert (sup_policy_should_restart (SUP_RESTART_PERMANENT, SUP_EXIT_SIGNAL (SIGKILL)));
    assert (!sup_policy_should_restart (SUP_RESTART_PERMANENT, 78));
    assert (!sup_policy_should_restart (SUP_RESTART_TRANSIENT, 0));
    assert (sup_policy_should_restart (SUP_RESTART_TRANSIENT, 2));
    assert (sup_policy_should_restart (SUP_RESTART_TRANSIENT, SUP_EXIT_SIGNAL (SIGSEGV)));
    assert (!sup_policy_should_restart (SUP_RESTART_TRANSIENT, 78));
    assert (!sup_policy_should_restart (SUP_RESTART_TEMPORARY, 1));

    //  Backoff: doubling from min to max for a child that dies early
    limits.backoff_min_ms = 1000;
    limits.backoff_max_ms = 60000;
    int64_t backoff = 0;
    assert (sup_policy_delay (&limits, -1, 5000, &backoff) == 1000);
    assert (sup_policy_delay (&limits, -1, 5000, &backoff) == 2000);
    assert (sup_policy_delay (&limits, 3000, 5000, &backoff) == 4000);
    for (int i = 0; i < 10; i++)
        sup_policy_delay (&limits, -1, 5000, &backoff);
    assert (backoff == 60000);
    assert (sup_policy_delay (&limits, -1, 5000, &backoff) == 60000);
    //  A child that ran longer than stable_after restarts at once, backoff reset
    assert (sup_policy_delay (&limits, 20000, 20500, &backoff) == 0);
    assert (backoff == 0);
    //  ... but never two starts within backoff_min
    assert (sup_policy_delay (&limits, 10000, 10000, &backoff) == 0);
    limits.stable_ms = 0;
    assert (sup_policy_delay (&limits, 0, 300, &backoff) == 700);
    assert (sup_policy_delay (&limits, 0, 3000, &backoff) == 0);

    char text [64];
    sup_policy_describe_exit (1, text, sizeof text);
    assert (strcmp (text, "exit 1") == 0);
    sup_policy_describe_exit (78, text, sizeof text);
    assert (strcmp (text, "exit 78 (permanent failure)") == 0);
    sup_policy_describe_exit (SUP_EXIT_SIGNAL (SIGKILL), text, sizeof text);
    assert (strcmp (text, "killed by SIGKILL") == 0);
    sup_policy_describe_exit (-200, text, sizeof text);
    assert (strcmp (text, "killed by signal 200") == 0);
    if (verbose)
        printf ("sup_policy: ok\n");
}
