/*  sup_policy: the restart decisions of bifrostd, as pure arithmetic so they can
    be tested without processes or clocks.

    OTP semantics: a service may be restarted at most `intensity` times within
    `period`; one more and the supervisor gives up. s6 pacing: a child that died
    before READY or soon after it waits backoff_min, doubling to backoff_max; a
    child that ran long restarts at once, but never two starts within backoff_min. */
#ifndef SUP_POLICY_H_INCLUDED
#define SUP_POLICY_H_INCLUDED

#include "sup_config.h"

#define SUP_EXIT_SIGNAL(sig)    (-(int64_t) (sig))

typedef struct _sup_policy_t sup_policy_t;

//  The restart history of one service (all its instances).
sup_policy_t *sup_policy_new (void);
void sup_policy_destroy (sup_policy_t **self_p);
//  Records a restart at now_ms. Returns true when it is allowed, false when it
//  would be the (intensity + 1)-th restart within period: give up.
bool sup_policy_allow (sup_policy_t *self, const sup_limits_t *limits, int64_t now_ms);
//  Restarts counted within the period ending at now_ms.
size_t sup_policy_recent (sup_policy_t *self, const sup_limits_t *limits, int64_t now_ms);
//  Forgets the history (a manual restart gives a fresh start).
void sup_policy_reset (sup_policy_t *self);

//  Whether an exit is restarted at all. last_exit: exit code >= 0, or minus the
//  signal number. Exit 78 (permanent failure) is never restarted.
bool sup_policy_should_restart (sup_restart_type_t type, int64_t last_exit);
//  The delay before restarting one instance and the instance's next backoff.
//  ready_ms: how long it had been READY when it died (-1 if never READY);
//  since_start_ms: time since it was started; *backoff_ms carries the instance's
//  current backoff (0 = none yet) and is updated.
int64_t sup_policy_delay (const sup_limits_t *limits, int64_t ready_ms, int64_t since_start_ms,
                          int64_t *backoff_ms);
//  Describes an exit for logs and status: "exit 1", "killed by SIGKILL".
void sup_policy_describe_exit (int64_t last_exit, char *buf, size_t size);

void sup_policy_test (bool verbose);
#endif
