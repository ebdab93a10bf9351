/*  sup_server: bifrostd's engine. Each instance of each service is a small
    state machine (waiting -> starting -> ready -> backoff/stopping -> ...); events
    (child exit, pipe lines, control requests, signals) and a 50 ms tick move it.
    Everything happens on one thread, so no state is shared with anything. The
    control protocol is sup_control's; here are only the operations it asks for. */
#include "config.h"
#include "sup_server.h"
#include "bus_clock.h"
#include "sup_control.h"
#include "sup_env.h"
#include "sup_check.h"
#include "sup_policy.h"
#include "sup_proc.h"
#include "sup_sdnotify.h"
#include "bus_endpoint.h"
#include "bus_identity.h"
#include "bus_envelope.h"
#include "bus_log.h"
#include "bus_ready.h"

#include <czmq.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#define S_TICK_MS       50

typedef enum {
    S_WAITING = 0, S_STARTING, S_READY, S_BACKOFF, S_STOPPING, S_STOPPED, S_FAILED
} s_state_t;
static const char *const s_state_names [] = {
    "waiting", "starting", "ready", "backoff", "stopping", "stopped", "failed"
};

//  What happens when a stopping instance has exited.
typedef enum { S_AFTER_POLICY = 0, S_AFTER_RESTART, S_AFTER_REMOVE, S_AFTER_FAIL, S_AFTER_STOP } s_after_t;

typedef struct _s_service_t s_service_t;

typedef struct {
    s_service_t *service;
    int index;                          //  1..
    char id [SUP_NAME_MAX + 8];         //  "name.N"
    s_state_t state;
    sup_proc_t *proc;
    int poll_fd;                        //  fd registered with the loop, or -1
    int64_t started_at, ready_at, last_line_at, restart_at, stop_deadline;
    bool killed;                        //  SIGKILL already sent
    bool watched;                       //  notify = ready: READY and heartbeats expected
    s_after_t after;
    uint32_t restarts;
    int64_t last_exit;
    int64_t backoff_ms;
    char reason [121];
    char kill_reason [121];             //  why we killed it (hung, not ready)
    char last_event [100];              //  why its last process ended, for the status
    int64_t ended_at;                   //  when that process ended
} s_instance_t;

struct _s_service_t {
    char name [SUP_NAME_MAX + 1];
    const sup_service_cfg_t *cfg;       //  in the current config; NULL once removed
    sup_limits_t limits;
    int wanted;
    s_instance_t *instances [SUP_INSTANCES_MAX];
    sup_policy_t *policy;
    bool failed;
    char reason [121];
};

struct _sup_server_t {
    sup_config_t *config;
    uint32_t user_base;         //  the services' uids (bus_identity.h); 0: none
    char *config_path;
    char run_dir [BUS_PATH_MAX];
    char lock_path [BUS_PATH_MAX];
    int lock_fd;
    int signal_fd;
    sup_control_t *control;             //  the control socket and protocol
    zloop_t *loop;
    s_service_t *services [SUP_SERVICES_MAX * 2];   //  start order; removed ones after
    size_t service_count;
    int64_t started_at;
    bool stopping;                      //  the whole tree is going down
    sup_sdnotify_t *notify;             //  READY=1, STATUS=, STOPPING=1 for systemd
    int exit_code;
    const char *log_level;
};

//  ---------------------------------------------------------------------------
//  Services and instances

static s_service_t *
s_service_find (sup_server_t *self, const char *name)
{
    for (size_t i = 0; i < self->service_count; i++)
        if (strcmp (self->services [i]->name, name) == 0)
            return self->services [i];
    return NULL;
}

static s_instance_t *
s_instance_new (s_service_t *service, int index)
{
    s_instance_t *inst = (s_instance_t *) zmalloc (sizeof (s_instance_t));
    assert (inst);
    inst->service = service;
    inst->index = index;
    snprintf (inst->id, sizeof inst->id, "%s.%d", service->name, index);
    inst->state = S_WAITING;
    inst->poll_fd = -1;
    snprintf (inst->reason, sizeof inst->reason, "waiting for dependencies");
    return inst;
}

static void
s_set_state (s_instance_t *inst, s_state_t state, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_set_state (s_instance_t *inst, s_state_t state, const char *fmt, ...)
{
    inst->state = state;
    if (fmt) {
        va_list ap;
        va_start (ap, fmt);
        vsnprintf (inst->reason, sizeof inst->reason, fmt, ap);
        va_end (ap);
    }
    else
        inst->reason [0] = 0;
}

//  READY; after a restart the status says what happened last, so an operator
//  who looks after the fact still sees it ("killed by SIGKILL, restarted after
//  18 ms": from the old process's end to the new one's READY)
static void
s_set_ready (s_instance_t *inst, int64_t now)
{
    if (inst->last_event [0])
        s_set_state (inst, S_READY, "%s, restarted after %lld ms", inst->last_event,
                     (long long) (now - inst->ended_at));
    else
        s_set_state (inst, S_READY, NULL);
}

//  Remembers why the process of inst ended, before it is started again.
static void
s_note_end (s_instance_t *inst, const char *why)
{
    snprintf (inst->last_event, sizeof inst->last_event, "%.99s", why);
    inst->ended_at = bus_clock_ms ();
}

static void
s_unwatch (sup_server_t *self, s_instance_t *inst)
{
    if (inst->poll_fd >= 0) {
        zmq_pollitem_t item = { NULL, inst->poll_fd, ZMQ_POLLIN, 0 };
        zloop_poller_end (self->loop, &item);
        inst->poll_fd = -1;
    }
}

static void
s_service_destroy (s_service_t **service_p)
{
    s_service_t *service = *service_p;
    for (int i = 0; i < SUP_INSTANCES_MAX; i++)
        if (service->instances [i]) {
            assert (!service->instances [i]->proc);
            free (service->instances [i]);
        }
    sup_policy_destroy (&service->policy);
    free (service);
    *service_p = NULL;
}

static bool
s_alive (s_instance_t *inst)
{
    return inst->proc != NULL;
}

//  ---------------------------------------------------------------------------
//  Starting

static int s_pipe_readable (zloop_t *loop, zmq_pollitem_t *item, void *arg);

//  The ids user_base .. + BUS_IDENTITY_SLOTS - 1 are no one else's: a user or
//  group of that id must be one of ours (bifrost-*), so an operator may name
//  them for `ps`, but a service never shares a uid with something else
static int
s_users_free (uint32_t base, char *err, size_t errsize)
{
    for (uint32_t id = base; id < base + BUS_IDENTITY_SLOTS; id++) {
        struct passwd *pw = getpwuid ((uid_t) id);
        if (pw && strncmp (pw->pw_name, "bifrost", 7) != 0) {
            snprintf (err, errsize, "user_base = %u: uid %u is the user %s: choose another user_base "
                      "(%u ids from it are the services')", base, id, pw->pw_name, BUS_IDENTITY_SLOTS);
            return -1;
        }
        struct group *gr = id == base ? getgrgid ((gid_t) id) : NULL;
        if (gr && strncmp (gr->gr_name, "bifrost", 7) != 0) {
            snprintf (err, errsize, "user_base = %u: gid %u is the group %s: choose another user_base",
                      base, id, gr->gr_name);
            return -1;
        }
    }
    return 0;
}

//  The services reach their sockets after their uid switch: every folder
//  above the run directory must let others pass (o+x), or a reconnect (to the
//  broker restarted, to a pipe's new receiver) fails with EACCES long after
//  the start. Said at once instead.
static int
s_run_dir_passable (const char *run_dir, char *err, size_t errsize)
{
    char path [BUS_PATH_MAX];
    snprintf (path, sizeof path, "%s", run_dir);
    for (char *slash = strrchr (path, '/'); slash && slash > path; slash = strrchr (path, '/')) {
        *slash = 0;
        struct stat st;
        if (stat (path, &st) == 0 && !(st.st_mode & S_IXOTH)) {
            snprintf (err, errsize, "run directory %s: the services run under their own uids (user_base) and "
                      "cannot pass %s (mode %04o): chmod o+x %s, choose another run_dir, or set user_base = 0",
                      run_dir, path, (unsigned) (st.st_mode & 07777), path);
            return -1;
        }
    }
    return 0;
}

static void
s_spawn (sup_server_t *self, s_instance_t *inst)
{
    s_service_t *service = inst->service;
    const sup_service_cfg_t *cfg = service->cfg;
    assert (cfg && !inst->proc);
    char path [1024], err [256];
    if (sup_proc_resolve (cfg->exec, path, sizeof path, err, sizeof err)) {
        bus_error ("%s: %s", inst->id, err);
        s_set_state (inst, S_FAILED, "%s", err);
        return;
    }
    //  Everything the child needs is built here, before fork
    size_t argc = 0;
    char **argv = (char **) zmalloc ((cfg->arg_count + 2) * sizeof (char *));
    assert (argv);
    argv [argc++] = (char *) path;
    for (size_t i = 0; i < cfg->arg_count; i++)
        argv [argc++] = (char *) cfg->args [i];
    argv [argc] = NULL;

    //  The child's environment: ours, then what its group names (sup_env)
    char ready_fd [16];
    snprintf (ready_fd, sizeof ready_fd, "%d", SUP_PROC_READY_FD);
    sup_env_t *env = sup_env_new ();
    if (cfg->notify == SUP_NOTIFY_READY)
        sup_env_set (env, BUS_READY_ENV, ready_fd);     //  only with a pipe there
    sup_env_set (env, "BIFROST_RUN_DIR", self->run_dir);
    sup_env_set (env, "BIFROST_SERVICE", service->name);
    sup_env_set (env, "BIFROST_INSTANCE", inst->id);
    sup_env_set (env, "BIFROST_CONFIG", self->config_path);
    sup_env_set (env, "BIFROST_LOG_LEVEL", self->log_level);
    sup_env_add_service (env, cfg);
    //  A Bifrost service program runs under its own uid after its setup
    int64_t uid = self->user_base ? bus_identity_uid_of (self->user_base, path) : -1;
    if (uid > 0) {
        char run_as [48];
        snprintf (run_as, sizeof run_as, "%lld:%u:%u", (long long) uid, self->user_base, self->user_base);
        sup_env_set (env, BUS_IDENTITY_ENV, run_as);
    }

    bool pipe = cfg->notify == SUP_NOTIFY_READY;
    int64_t now = bus_clock_ms ();
    inst->proc = sup_proc_start (path, argv, sup_env_envp (env), pipe, err, sizeof err);
    sup_env_destroy (&env);
    free (argv);
    inst->started_at = now;
    inst->last_line_at = now;
    inst->ready_at = 0;
    inst->watched = pipe;
    inst->killed = false;
    inst->after = S_AFTER_POLICY;
    inst->kill_reason [0] = 0;
    if (!inst->proc) {
        //  A resource failure (fork, pipe): try again after the backoff
        bus_error ("%s: cannot start: %s", inst->id, err);
        inst->backoff_ms = inst->backoff_ms ? inst->backoff_ms : service->limits.backoff_min_ms;
        inst->restart_at = now + inst->backoff_ms;
        s_set_state (inst, S_BACKOFF, "cannot start: %s", err);
        return;
    }
    if (pipe) {
        inst->poll_fd = sup_proc_fd (inst->proc);
        zmq_pollitem_t item = { NULL, inst->poll_fd, ZMQ_POLLIN, 0 };
        zloop_poller (self->loop, &item, s_pipe_readable, inst);
        if (inst->last_event [0])
            s_set_state (inst, S_STARTING, "%s, restarting", inst->last_event);
        else
            s_set_state (inst, S_STARTING, NULL);
        bus_info ("%s: started %s, pid %d", inst->id, path, (int) sup_proc_pid (inst->proc));
    }
    else {
        inst->ready_at = now;
        s_set_ready (inst, now);
        bus_info ("%s: started %s, pid %d (notify = none: ready when started)",
                  inst->id, path, (int) sup_proc_pid (inst->proc));
    }
}

//  True when every dependency of service is up: all its wanted instances READY
//  (or a temporary one that finished with exit 0).
static bool
s_dependencies_ready (sup_server_t *self, s_service_t *service, char *waiting_for, size_t size)
{
    const sup_service_cfg_t *cfg = service->cfg;
    for (size_t d = 0; cfg && d < cfg->depend_count; d++) {
        s_service_t *dep = s_service_find (self, cfg->depends [d]);
        if (!dep || !dep->cfg)
            continue;
        for (int i = 0; i < dep->wanted; i++) {
            s_instance_t *di = dep->instances [i];
            bool up = di && (di->state == S_READY || (di->state == S_STOPPED && di->last_exit == 0));
            if (!up) {
                snprintf (waiting_for, size, "waiting for %s%s", dep->name, dep->failed ? " (failed)" : "");
                return false;
            }
        }
    }
    return true;
}

//  ---------------------------------------------------------------------------
//  Stopping

//  Asks an instance to stop (SIGTERM to its process group, SIGKILL after
//  stop_timeout); `after` says what happens once it has exited.
static void
s_stop_instance (sup_server_t *self, s_instance_t *inst, s_after_t after, const char *why);

static void s_after_exit (sup_server_t *self, s_instance_t *inst);

static void
s_stop_instance (sup_server_t *self, s_instance_t *inst, s_after_t after, const char *why)
{
    inst->after = after;
    if (!s_alive (inst)) {
        s_after_exit (self, inst);
        return;
    }
    if (inst->state == S_STOPPING)
        return;                     //  already on its way; the new `after` applies
    bus_info ("%s: stopping pid %d (%s)", inst->id, (int) sup_proc_pid (inst->proc), why);
    sup_proc_kill (inst->proc, SIGTERM);
    inst->stop_deadline = bus_clock_ms () + inst->service->limits.stop_timeout_ms;
    s_set_state (inst, S_STOPPING, "%s", why);
}

//  The service gives up: every instance is stopped and marked failed.
static void
s_give_up (sup_server_t *self, s_service_t *service, const char *why)
{
    snprintf (service->reason, sizeof service->reason, "%.120s", why);
    if (service->limits.on_give_up == SUP_GIVE_UP_STOP_ALL && !self->stopping) {
        bus_error ("%s: %s; stopping everything (on_give_up = stop_all)", service->name, why);
        self->exit_code = 1;
        self->stopping = true;
    }
    else
        bus_error ("%s: %s; service stopped (on_give_up = stop_service)", service->name, why);
    service->failed = true;
    for (int i = 0; i < SUP_INSTANCES_MAX; i++)
        if (service->instances [i] && service->instances [i]->after != S_AFTER_REMOVE)
            s_stop_instance (self, service->instances [i], S_AFTER_FAIL, why);
}

//  What happens to an instance whose process is gone (or never ran).
static void
s_after_exit (sup_server_t *self, s_instance_t *inst)
{
    s_service_t *service = inst->service;
    s_after_t after = inst->after;
    inst->after = S_AFTER_POLICY;
    char exit_text [64];
    sup_policy_describe_exit (inst->last_exit, exit_text, sizeof exit_text);
    if (self->stopping && after != S_AFTER_REMOVE)
        after = after == S_AFTER_FAIL ? S_AFTER_FAIL : S_AFTER_STOP;
    switch (after) {
        case S_AFTER_REMOVE:
            service->instances [inst->index - 1] = NULL;
            free (inst);
            return;
        case S_AFTER_FAIL:
            s_set_state (inst, S_FAILED, "%s", service->reason);
            return;
        case S_AFTER_STOP:
            s_set_state (inst, S_STOPPED, "stopped");
            return;
        case S_AFTER_RESTART:
            if (service->cfg) {
                s_note_end (inst, inst->reason);
                inst->restarts++;
                s_spawn (self, inst);
            }
            return;
        case S_AFTER_POLICY:
            break;
    }
    //  It died on its own (or was killed as hung): the restart policy decides
    const char *why = inst->kill_reason [0] ? inst->kill_reason : exit_text;
    if (!service->cfg || service->failed) {
        s_set_state (inst, S_FAILED, "%s", service->failed ? service->reason : why);
        return;
    }
    if (inst->last_exit == BUS_EXIT_CONFIG) {
        bus_error ("%s: %s: not restarted (fix the configuration, then bifrostctl restart %s)",
                   inst->id, exit_text, service->name);
        s_set_state (inst, S_FAILED, "%s: not restarted", exit_text);
        return;
    }
    if (!sup_policy_should_restart (service->cfg->restart, inst->last_exit)) {
        bus_info ("%s: %s, not restarted (restart = %s)", inst->id, why,
                  sup_restart_name (service->cfg->restart));
        s_set_state (inst, S_STOPPED, "%s (restart = %s)", why, sup_restart_name (service->cfg->restart));
        return;
    }
    int64_t now = bus_clock_ms ();
    if (!sup_policy_allow (service->policy, &service->limits, now)) {
        char text [256];
        snprintf (text, sizeof text, "gave up: more than %d restarts within %lld ms (last: %.60s)",
                  service->limits.intensity, (long long) service->limits.period_ms, why);
        s_set_state (inst, S_FAILED, "%s", text);
        s_give_up (self, service, text);
        return;
    }
    s_note_end (inst, why);
    int64_t ready_ms = inst->ready_at ? now - inst->ready_at : -1;
    int64_t delay = sup_policy_delay (&service->limits, ready_ms, now - inst->started_at, &inst->backoff_ms);
    inst->restarts++;
    if (delay <= 0) {
        bus_info ("%s: %s, restarting now", inst->id, why);
        s_spawn (self, inst);
    }
    else {
        bus_info ("%s: %s, restarting in %lld ms", inst->id, why, (long long) delay);
        inst->restart_at = now + delay;
        s_set_state (inst, S_BACKOFF, "%s, restarting in %lld ms", why, (long long) delay);
    }
}

//  A child has exited: clean its process group, then apply what comes next.
static void
s_child_exited (sup_server_t *self, pid_t pid, int status)
{
    for (size_t s = 0; s < self->service_count; s++) {
        s_service_t *service = self->services [s];
        for (int i = 0; i < SUP_INSTANCES_MAX; i++) {
            s_instance_t *inst = service->instances [i];
            if (!inst || !inst->proc || sup_proc_pid (inst->proc) != pid)
                continue;
            //  Helpers it left in its process group go with it
            kill (-pid, SIGKILL);
            //  Read what is left in the pipe (a READY just before dying counts)
            if (inst->poll_fd >= 0 && (sup_proc_read (inst->proc) & SUP_PROC_READY)
            &&  inst->state == S_STARTING)
                inst->ready_at = bus_clock_ms ();
            s_unwatch (self, inst);
            sup_proc_destroy (&inst->proc);
            inst->last_exit = WIFEXITED (status) ? WEXITSTATUS (status)
                            : WIFSIGNALED (status) ? SUP_EXIT_SIGNAL (WTERMSIG (status)) : 0;
            char text [64];
            sup_policy_describe_exit (inst->last_exit, text, sizeof text);
            bus_info ("%s: pid %d ended: %s", inst->id, (int) pid, text);
            s_after_exit (self, inst);
            return;
        }
    }
}

//  ---------------------------------------------------------------------------
//  Scaling and restarting

static void
s_scale (sup_server_t *self, s_service_t *service, int wanted)
{
    service->wanted = wanted;
    for (int i = 0; i < SUP_INSTANCES_MAX; i++) {
        s_instance_t *inst = service->instances [i];
        if (i < wanted) {
            if (!inst)
                service->instances [i] = s_instance_new (service, i + 1);
            else
            if (inst->after == S_AFTER_REMOVE)
                inst->after = S_AFTER_RESTART;  //  was going away: comes back
        }
        else
        if (inst && inst->after != S_AFTER_REMOVE)
            s_stop_instance (self, inst, S_AFTER_REMOVE, "scaled down");
    }
}

static void
s_restart_service (sup_server_t *self, s_service_t *service, const char *why)
{
    service->failed = false;
    service->reason [0] = 0;
    sup_policy_reset (service->policy);
    for (int i = 0; i < service->wanted; i++) {
        s_instance_t *inst = service->instances [i];
        if (!inst)
            continue;
        inst->backoff_ms = 0;
        if (s_alive (inst))
            s_stop_instance (self, inst, S_AFTER_RESTART, why);
        else {
            inst->restarts += inst->state != S_WAITING;
            s_spawn (self, inst);
        }
    }
}

//  ---------------------------------------------------------------------------
//  The tick: timeouts, backoffs, dependency starts, the orderly stop

static void
s_check_instance (sup_server_t *self, s_instance_t *inst, int64_t now)
{
    s_service_t *service = inst->service;
    const sup_limits_t *limits = &service->limits;
    char text [121];
    switch (inst->state) {
        case S_WAITING:
            if (!self->stopping && service->cfg && !service->failed) {
                if (s_dependencies_ready (self, service, text, sizeof text))
                    s_spawn (self, inst);
                else
                    s_set_state (inst, S_WAITING, "%s", text);
            }
            break;
        case S_STARTING:
            if (now - inst->started_at > limits->start_timeout_ms && !inst->killed) {
                snprintf (inst->kill_reason, sizeof inst->kill_reason, "not READY within %lld ms",
                          (long long) limits->start_timeout_ms);
                bus_warn ("%s: %s, killing pid %d", inst->id, inst->kill_reason, (int) sup_proc_pid (inst->proc));
                sup_proc_kill (inst->proc, SIGKILL);
                inst->killed = true;
            }
            break;
        case S_READY:
            if (inst->watched && now - inst->last_line_at > limits->liveness_timeout_ms && !inst->killed) {
                snprintf (inst->kill_reason, sizeof inst->kill_reason, "no heartbeat for %lld ms (hung)",
                          (long long) (now - inst->last_line_at));
                bus_warn ("%s: %s, killing pid %d", inst->id, inst->kill_reason, (int) sup_proc_pid (inst->proc));
                sup_proc_kill (inst->proc, SIGKILL);
                inst->killed = true;
            }
            break;
        case S_BACKOFF:
            if (now >= inst->restart_at && !self->stopping && service->cfg && !service->failed)
                s_spawn (self, inst);
            break;
        case S_STOPPING:
            if (now > inst->stop_deadline && !inst->killed) {
                bus_warn ("%s: still running %lld ms after SIGTERM, sending SIGKILL", inst->id,
                          (long long) limits->stop_timeout_ms);
                sup_proc_kill (inst->proc, SIGKILL);
                inst->killed = true;
            }
            break;
        case S_STOPPED:
        case S_FAILED:
            break;
    }
}

//  The orderly stop: services in reverse start order, each one completely gone
//  before the one it depends on is asked to stop. Returns true when done.
static bool
s_stop_step (sup_server_t *self)
{
    for (size_t s = self->service_count; s-- > 0; ) {
        s_service_t *service = self->services [s];
        bool any = false;
        for (int i = 0; i < SUP_INSTANCES_MAX; i++) {
            s_instance_t *inst = service->instances [i];
            if (!inst)
                continue;
            if (s_alive (inst)) {
                any = true;
                if (inst->state != S_STOPPING)
                    s_stop_instance (self, inst, S_AFTER_STOP, "bifrostd is stopping");
            }
            else
            if (inst->state == S_WAITING || inst->state == S_BACKOFF)
                s_set_state (inst, S_STOPPED, "bifrostd is stopping");
        }
        if (any)
            return false;
    }
    return true;
}

//  Tells systemd how far the tree is: READY=1 once every wanted instance of
//  every configured service is up, as a dependency counts it (READY, or a
//  temporary one that finished with exit 0)
static void
s_notify_progress (sup_server_t *self)
{
    size_t ready = 0, wanted = 0;
    char waiting [300] = "";
    for (size_t s = 0; s < self->service_count; s++) {
        s_service_t *service = self->services [s];
        if (!service->cfg)
            continue;
        for (int i = 0; i < service->wanted; i++) {
            s_instance_t *inst = service->instances [i];
            wanted++;
            if (inst && (inst->state == S_READY || (inst->state == S_STOPPED && inst->last_exit == 0)))
                ready++;
            else
            if (!*waiting && inst)
                snprintf (waiting, sizeof waiting, "%s %s%s%s", inst->id, s_state_names [inst->state],
                          *inst->reason ? ": " : "", inst->reason);
        }
    }
    sup_sdnotify_progress (self->notify, ready, wanted, *waiting ? waiting : NULL);
}

static int
s_tick (zloop_t *loop, int timer_id, void *arg)
{
    sup_server_t *self = (sup_server_t *) arg;
    int64_t now = bus_clock_ms ();
    for (size_t s = 0; s < self->service_count; s++) {
        s_service_t *service = self->services [s];
        for (int i = 0; i < SUP_INSTANCES_MAX; i++)
            if (service->instances [i])
                s_check_instance (self, service->instances [i], now);
    }
    //  Services removed by a reload go once their last instance is gone
    for (size_t s = 0; s < self->service_count; ) {
        s_service_t *service = self->services [s];
        bool empty = true;
        for (int i = 0; i < SUP_INSTANCES_MAX && empty; i++)
            empty = service->instances [i] == NULL;
        if (!service->cfg && empty) {
            memmove (&self->services [s], &self->services [s + 1],
                     (self->service_count - s - 1) * sizeof (s_service_t *));
            self->service_count--;
            s_service_destroy (&service);
        }
        else
            s++;
    }
    if (self->stopping)
        sup_sdnotify_stopping (self->notify, "stopping every service");
    else
        s_notify_progress (self);
    if (self->stopping && s_stop_step (self)) {
        bus_info ("every service stopped");
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------
//  Pipes and signals

static int
s_pipe_readable (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_instance_t *inst = (s_instance_t *) arg;
    int events = sup_proc_read (inst->proc);
    int64_t now = bus_clock_ms ();
    if (events & (SUP_PROC_READY | SUP_PROC_HEARTBEAT))
        inst->last_line_at = now;
    if ((events & SUP_PROC_READY) && inst->state == S_STARTING) {
        inst->ready_at = now;
        s_set_ready (inst, now);
        bus_info ("%s: ready in %lld ms", inst->id, (long long) (now - inst->started_at));
    }
    if (events & SUP_PROC_EOF) {
        //  The child closed its end; its exit (SIGCHLD) decides what happens
        zloop_poller_end (loop, item);
        inst->poll_fd = -1;
    }
    return 0;
}

static void s_reload (sup_server_t *self);

static int
s_signal_readable (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    sup_server_t *self = (sup_server_t *) arg;
    struct signalfd_siginfo info;
    while (read (self->signal_fd, &info, sizeof info) == sizeof info) {
        switch (info.ssi_signo) {
            case SIGCHLD: {
                int status;
                pid_t pid;
                while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
                    s_child_exited (self, pid, status);
                break;
            }
            case SIGTERM:
            case SIGINT:
                if (self->stopping) {
                    bus_warn ("second %s: killing every child now", strsignal ((int) info.ssi_signo));
                    for (size_t s = 0; s < self->service_count; s++)
                        for (int i = 0; i < SUP_INSTANCES_MAX; i++)
                            if (self->services [s]->instances [i] && self->services [s]->instances [i]->proc)
                                sup_proc_kill (self->services [s]->instances [i]->proc, SIGKILL);
                }
                else
                    bus_info ("%s: stopping every service", strsignal ((int) info.ssi_signo));
                self->stopping = true;
                break;
            case SIGHUP:
                s_reload (self);
                break;
            default:
                break;
        }
    }
    //  Act at once rather than at the next tick (a restart after kill -9 is timed)
    return s_tick (loop, 0, self);
}

//  ---------------------------------------------------------------------------
//  Reload (SIGHUP): validate fully, then apply the difference

//  Logs each line of text (the errors a check printed) as an error.
static void
s_log_lines (char *text)
{
    char *line = text, *next;
    for (; line && *line; line = next) {
        next = strchr (line, '\n');
        if (next)
            *next++ = 0;
        bus_error ("%s", line);
    }
}

static void
s_reload (sup_server_t *self)
{
    bus_info ("SIGHUP: reloading %s", self->config_path);
    sup_sdnotify_reloading (self->notify);
    char *text = NULL;
    size_t size = 0;
    FILE *errors = open_memstream (&text, &size);
    assert (errors);
    sup_config_t *config = sup_config_load (self->config_path, errors);
    fclose (errors);
    if (!config) {
        s_log_lines (text);
        bus_error ("reload failed: the configuration above has errors; nothing changed");
        sup_sdnotify_reloaded (self->notify, "reload failed: the configuration has errors; still running the previous one");
        free (text);
        return;
    }
    free (text);
    //  The services' own checks, as at start: a file one of them refuses is
    //  refused as a whole, and everything keeps running on the old one
    text = NULL;
    errors = open_memstream (&text, &size);
    assert (errors);
    int refused = sup_check_services (config, self->config_path, errors);
    fclose (errors);
    //  The checks held the loop: heartbeats wait in the pipes, not lost
    int64_t now = bus_clock_ms ();
    for (size_t s = 0; s < self->service_count; s++)
        for (int i = 0; i < SUP_INSTANCES_MAX; i++)
            if (self->services [s]->instances [i])
                self->services [s]->instances [i]->last_line_at = now;
    if (refused) {
        s_log_lines (text);
        bus_error ("reload failed: %d service(s) refused %s; nothing changed, still running the previous configuration",
                   refused, self->config_path);
        sup_sdnotify_reloaded (self->notify, "reload failed: a service refused the configuration; still running the previous one");
        free (text);
        sup_config_destroy (&config);
        return;
    }
    free (text);
    const char *run_dir = sup_config_run_dir (config);
    if (run_dir && strcmp (run_dir, self->run_dir) != 0)
        bus_warn ("reload: run_dir cannot change while running (still %s)", self->run_dir);

    //  New order: services of the new config first, removed ones after
    s_service_t *order [SUP_SERVICES_MAX * 2];
    size_t count = 0;
    for (size_t i = 0; i < sup_config_service_count (config); i++) {
        const sup_service_cfg_t *cfg = sup_config_service (config, i);
        s_service_t *service = s_service_find (self, cfg->name);
        if (!service) {
            service = (s_service_t *) zmalloc (sizeof (s_service_t));
            assert (service);
            snprintf (service->name, sizeof service->name, "%s", cfg->name);
            service->policy = sup_policy_new ();
            service->cfg = cfg;
            service->limits = cfg->limits;
            bus_info ("reload: new service %s", cfg->name);
            s_scale (self, service, cfg->instances);
        }
        else {
            const sup_service_cfg_t *old = service->cfg;
            service->cfg = cfg;
            service->limits = cfg->limits;
            if (!old) {
                bus_info ("reload: service %s is back", cfg->name);
                service->failed = false;
                s_scale (self, service, cfg->instances);
            }
            else {
                if (old->instances != cfg->instances) {
                    bus_info ("reload: %s: %d -> %d instances", cfg->name, service->wanted, cfg->instances);
                    s_scale (self, service, cfg->instances);
                }
                if (!sup_service_cfg_same_command (old, cfg)) {
                    bus_info ("reload: %s: command changed, restarting", cfg->name);
                    s_restart_service (self, service, "command changed by reload");
                }
                else
                if (!sup_config_same_section (self->config, config, cfg->name)) {
                    //  Services read their sections at start only
                    bus_info ("reload: %s: its section %s changed, restarting", cfg->name, cfg->name);
                    s_restart_service (self, service, "section changed by reload");
                }
            }
        }
        order [count++] = service;
    }
    for (size_t s = 0; s < self->service_count; s++) {
        s_service_t *service = self->services [s];
        if (!sup_config_find (config, service->name)) {
            if (service->cfg)
                bus_info ("reload: service %s removed, stopping it", service->name);
            service->cfg = NULL;
            s_scale (self, service, 0);
            order [count++] = service;
        }
    }
    memcpy (self->services, order, count * sizeof (s_service_t *));
    self->service_count = count;
    sup_config_destroy (&self->config);
    self->config = config;
    bus_info ("reload: done, %zu services", sup_config_service_count (config));
    char status [80];
    snprintf (status, sizeof status, "reloaded: %zu services", sup_config_service_count (config));
    sup_sdnotify_reloaded (self->notify, status);
}

//  ---------------------------------------------------------------------------
//  What the control protocol asks (sup_control has checked the request)

static void
s_fill_instance (sup_server_t *self, s_instance_t *inst, sup_instance_t *out, int64_t now)
{
    snprintf (out->service, sizeof out->service, "%s", inst->service->name);
    snprintf (out->instance, sizeof out->instance, "%s", inst->id);
    out->pid = inst->proc ? (uint32_t) sup_proc_pid (inst->proc) : 0;
    snprintf (out->state, sizeof out->state, "%s", s_state_names [inst->state]);
    out->uptime_ms = inst->state == S_READY ? (uint64_t) (now - inst->ready_at) : 0;
    out->restarts = inst->restarts;
    out->last_exit = inst->last_exit;
    snprintf (out->reason, sizeof out->reason, "%s", inst->reason);
}

bool
sup_server_has_service (sup_server_t *self, const char *name, bool configured)
{
    s_service_t *service = s_service_find (self, name);
    return service && (service->cfg || !configured);
}

bool
sup_server_stopping (sup_server_t *self)
{
    return self->stopping;
}

void
sup_server_status (sup_server_t *self, const char *name, sup_status_reply_t *reply)
{
    int64_t now = bus_clock_ms ();
    reply->pid = (uint32_t) getpid ();
    reply->uptime_ms = (uint64_t) (now - self->started_at);
    snprintf (reply->config, sizeof reply->config, "%s", self->config_path);
    for (size_t s = 0; s < self->service_count; s++) {
        s_service_t *service = self->services [s];
        if (*name && strcmp (name, service->name) != 0)
            continue;
        for (int i = 0; i < SUP_INSTANCES_MAX; i++)
            if (service->instances [i] && reply->instances_count < 256)
                s_fill_instance (self, service->instances [i],
                                 &reply->instances [reply->instances_count++], now);
    }
}

void
sup_server_scale (sup_server_t *self, const char *name, uint32_t instances, sup_ok_t *ok)
{
    s_service_t *service = s_service_find (self, name);
    assert (service && instances <= SUP_INSTANCES_MAX);
    snprintf (ok->message, sizeof ok->message, "%s: %d -> %u instances", service->name,
              service->wanted, instances);
    bus_info ("control: %s", ok->message);
    s_scale (self, service, (int) instances);
}

void
sup_server_restart (sup_server_t *self, const char *name, sup_ok_t *ok)
{
    s_service_t *service = s_service_find (self, name);
    assert (service);
    snprintf (ok->message, sizeof ok->message, "%s: restarting %d instances", service->name, service->wanted);
    bus_info ("control: %s", ok->message);
    s_restart_service (self, service, "restart requested");
}

void
sup_server_stop (sup_server_t *self, const char *reason, sup_ok_t *ok)
{
    bus_info ("control: stop requested%s%s", *reason ? ": " : "", reason);
    snprintf (ok->message, sizeof ok->message, "stopping every service");
    self->stopping = true;
}

//  Requests, then the tick (a scale or restart is acted on at once)
static int
s_control_readable (zloop_t *loop, zsock_t *reader, void *arg)
{
    sup_server_t *self = (sup_server_t *) arg;
    sup_control_handle (self->control);
    return s_tick (loop, 0, self);
}

//  ---------------------------------------------------------------------------
//  Life cycle

void
sup_server_block_signals (void)
{
    sigset_t set;
    sigemptyset (&set);
    sigaddset (&set, SIGCHLD);
    sigaddset (&set, SIGTERM);
    sigaddset (&set, SIGINT);
    sigaddset (&set, SIGHUP);
    sigprocmask (SIG_BLOCK, &set, NULL);
    signal (SIGPIPE, SIG_IGN);
    zsys_handler_set (NULL);
}

sup_server_t *
sup_server_new (sup_config_t **config_p, const char *config_path, const char *run_dir,
                char *err, size_t errsize)
{
    assert (config_p && *config_p);
    sup_server_t *self = (sup_server_t *) zmalloc (sizeof (sup_server_t));
    assert (self);
    self->config = *config_p;
    *config_p = NULL;
    self->lock_fd = -1;
    self->signal_fd = -1;
    self->started_at = bus_clock_ms ();
    self->notify = sup_sdnotify_new ();
    char *absolute = realpath (config_path, NULL);
    self->config_path = absolute ? absolute : strdup (config_path);
    self->log_level = bus_log_level () == BUS_LOG_DEBUG ? "debug"
                    : bus_log_level () == BUS_LOG_INFO ? "info"
                    : bus_log_level () == BUS_LOG_WARN ? "warn" : "error";
    char endpoint [BUS_PATH_MAX];
    snprintf (self->run_dir, sizeof self->run_dir, "%s", run_dir);
    if (bus_endpoint (endpoint, sizeof endpoint, run_dir, "control")) {
        snprintf (err, errsize, "run directory %s: path too long for a unix socket", run_dir);
        sup_server_destroy (&self);
        return NULL;
    }
    //  The services' own uids (bus_identity.h): free ones, fixed for the run
    //  (a reload cannot change them), and the run directory their group's
    self->user_base = sup_config_user_base (self->config);
    if (self->user_base) {
        if (s_users_free (self->user_base, err, errsize)) {
            sup_server_destroy (&self);
            return NULL;
        }
        bus_identity_set (0, self->user_base, self->user_base);
    }
    if (bus_run_dir_secure (run_dir, err, errsize)
    ||  (self->user_base && s_run_dir_passable (run_dir, err, errsize))) {
        sup_server_destroy (&self);
        return NULL;
    }
    //  One bifrostd per run directory: the lock is released by the kernel when
    //  we die, so a stale lock file never blocks a restart
    snprintf (self->lock_path, sizeof self->lock_path, "%s/bifrostd.pid", run_dir);
    self->lock_fd = open (self->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (self->lock_fd < 0 || flock (self->lock_fd, LOCK_EX | LOCK_NB)) {
        snprintf (err, errsize, "another bifrostd is running with run directory %s (%s is locked)",
                  run_dir, self->lock_path);
        if (self->lock_fd >= 0)
            close (self->lock_fd);
        self->lock_fd = -1;
        self->lock_path [0] = 0;
        sup_server_destroy (&self);
        return NULL;
    }
    if (ftruncate (self->lock_fd, 0) == 0)
        dprintf (self->lock_fd, "%d\n", (int) getpid ());
    self->control = sup_control_new (self, endpoint, err, errsize);
    if (!self->control) {
        sup_server_destroy (&self);
        return NULL;
    }
    sigset_t set;
    sigemptyset (&set);
    sigaddset (&set, SIGCHLD);
    sigaddset (&set, SIGTERM);
    sigaddset (&set, SIGINT);
    sigaddset (&set, SIGHUP);
    self->signal_fd = signalfd (-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (self->signal_fd < 0) {
        snprintf (err, errsize, "signalfd: %s", strerror (errno));
        sup_server_destroy (&self);
        return NULL;
    }
    self->loop = zloop_new ();
    assert (self->loop);
    zloop_set_nonstop (self->loop, true);   //  our signals come from the signalfd
    for (size_t i = 0; i < sup_config_service_count (self->config); i++) {
        const sup_service_cfg_t *cfg = sup_config_service (self->config, i);
        s_service_t *service = (s_service_t *) zmalloc (sizeof (s_service_t));
        assert (service);
        snprintf (service->name, sizeof service->name, "%s", cfg->name);
        service->cfg = cfg;
        service->limits = cfg->limits;
        service->policy = sup_policy_new ();
        self->services [self->service_count++] = service;
        s_scale (self, service, cfg->instances);
    }
    return self;
}

void
sup_server_destroy (sup_server_t **self_p)
{
    assert (self_p);
    sup_server_t *self = *self_p;
    if (!self)
        return;
    for (size_t s = 0; s < self->service_count; s++) {
        s_service_t *service = self->services [s];
        for (int i = 0; i < SUP_INSTANCES_MAX; i++) {
            s_instance_t *inst = service->instances [i];
            if (inst && inst->proc) {
                //  Normally every child is gone by now; never leave one behind
                sup_proc_kill (inst->proc, SIGKILL);
                waitpid (sup_proc_pid (inst->proc), NULL, 0);
                s_unwatch (self, inst);
                sup_proc_destroy (&inst->proc);
            }
        }
        s_service_destroy (&self->services [s]);
    }
    zloop_destroy (&self->loop);
    sup_control_destroy (&self->control);
    if (self->signal_fd >= 0)
        close (self->signal_fd);
    if (self->lock_fd >= 0) {
        unlink (self->lock_path);
        close (self->lock_fd);
    }
    sup_config_destroy (&self->config);
    sup_sdnotify_destroy (&self->notify);
    free (self->config_path);
    free (self);
    *self_p = NULL;
}

int
sup_server_run (sup_server_t *self)
{
    zmq_pollitem_t item = { NULL, self->signal_fd, ZMQ_POLLIN, 0 };
    zloop_poller (self->loop, &item, s_signal_readable, self);
    zloop_reader (self->loop, sup_control_sock (self->control), s_control_readable, self);
    zloop_timer (self->loop, S_TICK_MS, 0, s_tick, self);
    bus_info ("bifrostd %s: %zu services, run directory %s, config %s", PACKAGE_VERSION,
              sup_config_service_count (self->config), self->run_dir, self->config_path);
    //  Start what has no dependency at once
    if (s_tick (self->loop, 0, self) == 0)
        zloop_start (self->loop);
    bus_info ("bifrostd stopped (exit %d)", self->exit_code);
    return self->exit_code;
}

//  ---------------------------------------------------------------------------
//  Self test: a real bifrostd in a forked process with shell children

//  How long a request waits for bifrostd's answer: generous, since under
//  valgrind a forked bifrostd answers in seconds, not milliseconds (make
//  memcheck sets SELFTEST_VALGRIND: there 10 s was once not enough for the
//  answer to sup.stop, with the machine otherwise idle)
#define S_TEST_WAIT_MS (getenv ("SELFTEST_VALGRIND") ? 30000 : 10000)

bus_client_t *
sup_server_fork (char *dir, const char *config_text, bool verbose, pid_t *pid_p)
{
    assert (mkdtemp (dir));
    char path [BUS_PATH_MAX];
    snprintf (path, sizeof path, "%s/t.cfg", dir);
    FILE *file = fopen (path, "w");
    assert (file);
    fputs (config_text, file);
    fclose (file);
    pid_t pid = fork ();
    assert (pid >= 0);
    if (pid == 0) {
        sup_server_block_signals ();
        if (!verbose)
            bus_log_set_level (BUS_LOG_ERROR);
        sup_config_t *config = sup_config_load (path, stderr);
        assert (config);
        char err [256];
        sup_server_t *server = sup_server_new (&config, path, dir, err, sizeof err);
        assert (server);
        int rc = sup_server_run (server);
        sup_server_destroy (&server);
        _exit (rc);
    }
    *pid_p = pid;
    char endpoint [BUS_PATH_MAX], err [256];
    assert (bus_endpoint (endpoint, sizeof endpoint, dir, "control") == 0);
    bus_client_t *client = NULL;
    for (int i = 0; i < 100 && !client; i++) {
        client = bus_client_new (endpoint, "selftest", err, sizeof err);
        if (!client)
            zclock_sleep (20);
    }
    assert (client);
    return client;
}

void
sup_server_wait_ready (bus_client_t *client, uint32_t count)
{
    sup_status_t status = { .service = "" };
    sup_status_reply_t *msg = (sup_status_reply_t *) zmalloc (sizeof (sup_status_reply_t));
    assert (msg);
    uint32_t ready = 0;
    //  Up to 20 s: 5 s was once too short in distcheck on a loaded machine
    for (int i = 0; i < 1000 && ready != count; i++) {
        char err [256];
        bus_envelope_t *reply = bus_client_request (client, "bifrostd", &sup_status_schema, &status,
                                                    S_TEST_WAIT_MS, err, sizeof err);
        assert (reply);
        assert (bus_envelope_get_msg (reply, &sup_status_reply_schema, msg, err, sizeof err) == 0);
        bus_envelope_destroy (&reply);
        ready = 0;
        for (uint32_t k = 0; k < msg->instances_count; k++)
            ready += strcmp (msg->instances [k].state, "ready") == 0;
        if (msg->instances_count != count)
            ready = 0;
        if (ready != count)
            zclock_sleep (20);
    }
    assert (ready == count);
    free (msg);
}

void
sup_server_join (const char *dir, pid_t pid)
{
    int wstatus;
    assert (waitpid (pid, &wstatus, 0) == pid);
    assert (WIFEXITED (wstatus) && WEXITSTATUS (wstatus) == 0);
    //  The control socket is gone: bifrostctl will say bifrostd is not running
    char path [BUS_PATH_MAX];
    assert (bus_endpoint (path, sizeof path, dir, "control") == 0);
    assert (access (path + 6, F_OK) != 0);
    snprintf (path, sizeof path, "%s/t.cfg", dir);
    unlink (path);
    rmdir (dir);
}

void
sup_server_test (bool verbose)
{
    char dir [] = "/tmp/sup-server-test-XXXXXX";
    pid_t pid;
    bus_client_t *client = sup_server_fork (dir, SUP_SERVER_TEST_HB ("instances = 2;", ""), verbose, &pid);
    //  Both instances become ready, and the status says whose they are
    sup_server_wait_ready (client, 2);
    sup_status_t status = { .service = "" };
    char err [256];
    bus_envelope_t *reply = bus_client_request (client, "bifrostd", &sup_status_schema, &status,
                                                S_TEST_WAIT_MS, err, sizeof err);
    assert (reply);
    sup_status_reply_t *msg = (sup_status_reply_t *) zmalloc (sizeof (sup_status_reply_t));
    assert (bus_envelope_get_msg (reply, &sup_status_reply_schema, msg, err, sizeof err) == 0);
    assert (msg->pid == (uint32_t) pid);
    free (msg);
    bus_envelope_destroy (&reply);
    //  Every request and refusal of the protocol: sup_control_test
    //  Stop: bifrostd exits 0, its control socket gone
    sup_stop_t stop = { .reason = "selftest" };
    reply = bus_client_request (client, "bifrostd", &sup_stop_schema, &stop, S_TEST_WAIT_MS, err, sizeof err);
    assert (reply);
    bus_envelope_destroy (&reply);
    bus_client_destroy (&client);
    sup_server_join (dir, pid);
    if (verbose)
        printf ("sup_server: ok\n");
}
