/*  sup_proc: fork/exec of one child with its readiness pipe. */
#include "sup_proc.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef BIFROST_LIBEXECDIR
#define BIFROST_LIBEXECDIR "/usr/local/libexec/bifrost"
#endif

#define S_LINE_MAX  64

struct _sup_proc_t {
    pid_t pid;
    int fd;                         //  read end of the pipe, or -1
    char line [S_LINE_MAX];
    size_t line_len;
    bool discarding;                //  inside an over-long line
};

static bool
s_executable (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 && S_ISREG (st.st_mode) && access (path, X_OK) == 0;
}

int
sup_proc_resolve (const char *exec, char *path, size_t size, char *err, size_t errsize)
{
    if (strchr (exec, '/')) {
        snprintf (path, size, "%s", exec);
        if (s_executable (path))
            return 0;
        snprintf (err, errsize, "cannot execute %s: %s", exec,
                  access (path, F_OK) ? "no such file" : "not an executable file");
        return -1;
    }
    const char *dirs [2] = { getenv ("BIFROST_LIBEXEC_DIR"), BIFROST_LIBEXECDIR };
    for (int i = 0; i < 2; i++) {
        if (!dirs [i] || !*dirs [i])
            continue;
        int n = snprintf (path, size, "%s/%s", dirs [i], exec);
        if (n > 0 && (size_t) n < size && s_executable (path))
            return 0;
    }
    const char *env_path = getenv ("PATH");
    if (!env_path)
        env_path = "/usr/local/bin:/usr/bin:/bin";
    const char *p = env_path;
    while (*p) {
        const char *colon = strchr (p, ':');
        size_t len = colon ? (size_t) (colon - p) : strlen (p);
        int n = snprintf (path, size, "%.*s/%s", (int) (len ? len : 1), len ? p : ".", exec);
        if (n > 0 && (size_t) n < size && s_executable (path))
            return 0;
        p += len;
        if (*p == ':')
            p++;
    }
    snprintf (err, errsize, "cannot find %s in $BIFROST_LIBEXEC_DIR, %s or $PATH", exec, BIFROST_LIBEXECDIR);
    return -1;
}

//  In the child, between fork and exec: async-signal-safe calls only.
static void
s_child (const char *path, char *const argv [], char *const envp [], int devnull, int wfd, pid_t parent)
{
    setpgid (0, 0);
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    if (getppid () != parent)
        _exit (127);                //  bifrostd died before prctl: do not run orphaned
    if (devnull >= 0 && devnull != STDIN_FILENO)
        dup2 (devnull, STDIN_FILENO);
    if (wfd >= 0) {
        if (wfd == SUP_PROC_READY_FD)
            fcntl (wfd, F_SETFD, 0);
        else
            dup2 (wfd, SUP_PROC_READY_FD);
    }
    //  Only stdio and the pipe cross exec
    int first = wfd >= 0 ? SUP_PROC_READY_FD + 1 : SUP_PROC_READY_FD;
    close_range ((unsigned) first, ~0U, 0);
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction (sig, &sa, NULL);
    sigset_t none;
    sigemptyset (&none);
    sigprocmask (SIG_SETMASK, &none, NULL);
    execve (path, argv, envp);
    static const char msg [] = "bifrostd: exec failed\n";
    ssize_t rc = write (STDERR_FILENO, msg, sizeof msg - 1);
    (void) rc;
    _exit (127);
}

sup_proc_t *
sup_proc_start (const char *path, char *const argv [], char *const envp [], bool ready_pipe,
                char *err, size_t errsize)
{
    int fds [2] = { -1, -1 };
    if (ready_pipe && pipe2 (fds, O_CLOEXEC)) {
        snprintf (err, errsize, "pipe: %s", strerror (errno));
        return NULL;
    }
    //  The pipe must not land on the child's fixed fd by accident: keep it above
    if (ready_pipe && fds [1] < SUP_PROC_READY_FD + 1) {
        int moved = fcntl (fds [1], F_DUPFD_CLOEXEC, SUP_PROC_READY_FD + 1);
        close (fds [1]);
        fds [1] = moved;
    }
    int devnull = open ("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid == 0)
        s_child (path, argv, envp, devnull, fds [1], parent);
    int saved = errno;
    if (devnull >= 0)
        close (devnull);
    if (fds [1] >= 0)
        close (fds [1]);
    if (pid < 0) {
        if (fds [0] >= 0)
            close (fds [0]);
        snprintf (err, errsize, "fork: %s", strerror (saved));
        return NULL;
    }
    setpgid (pid, pid);             //  also here, so a kill right away reaches the group
    if (fds [0] >= 0)
        fcntl (fds [0], F_SETFL, fcntl (fds [0], F_GETFL) | O_NONBLOCK);
    sup_proc_t *self = calloc (1, sizeof *self);
    assert (self);
    self->pid = pid;
    self->fd = fds [0];
    return self;
}

void
sup_proc_destroy (sup_proc_t **self_p)
{
    assert (self_p);
    sup_proc_t *self = *self_p;
    if (!self)
        return;
    if (self->fd >= 0)
        close (self->fd);
    free (self);
    *self_p = NULL;
}

pid_t sup_proc_pid (sup_proc_t *self) { return self->pid; }
int sup_proc_fd (sup_proc_t *self) { return self->fd; }

int
sup_proc_read (sup_proc_t *self)
{
    int events = 0;
    char buf [512];
    //  Bounded: a child flooding the pipe cannot keep bifrostd here forever
    for (int round = 0; round < 16 && self->fd >= 0; round++) {
        ssize_t n = read (self->fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            close (self->fd);
            self->fd = -1;
            events |= SUP_PROC_EOF;
            break;
        }
        if (n < 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            char c = buf [i];
            if (c != '\n') {
                if (self->line_len < S_LINE_MAX - 1)
                    self->line [self->line_len++] = c;
                else
                    self->discarding = true;
                continue;
            }
            self->line [self->line_len] = 0;
            if (!self->discarding) {
                if (strcmp (self->line, "READY") == 0)
                    events |= SUP_PROC_READY;
                else
                if (strcmp (self->line, "HB") == 0)
                    events |= SUP_PROC_HEARTBEAT;
            }
            self->line_len = 0;
            self->discarding = false;
        }
    }
    return events;
}

int
sup_proc_kill (sup_proc_t *self, int sig)
{
    if (kill (-self->pid, sig) == 0)
        return 0;
    return kill (self->pid, sig);
}

//  ---------------------------------------------------------------------------
//  Self test

//  Waits for the pipe to say something, up to timeout_ms.
static int
s_wait_events (sup_proc_t *self, int timeout_ms)
{
    int events = 0;
    for (int waited = 0; waited < timeout_ms && !events; waited += 10) {
        events = sup_proc_read (self);
        if (!events)
            nanosleep (&(struct timespec) { 0, 10 * 1000 * 1000 }, NULL);
    }
    return events;
}

void
sup_proc_test (bool verbose)
{
    char path [256], err [256];
    //  Resolution
    assert (sup_proc_resolve ("/bin/sh", path, sizeof path, err, sizeof err) == 0);
    assert (strcmp (path, "/bin/sh") == 0);
    assert (sup_proc_resolve ("/nonexistent/x", path, sizeof path, err, sizeof err) == -1);
    assert (strstr (err, "no such file"));
    assert (sup_proc_resolve ("/etc/hostname", path, sizeof path, err, sizeof err) == -1
         || access ("/etc/hostname", X_OK) == 0);
    setenv ("PATH", "/nonexistent:/bin:/usr/bin", 1);
    assert (sup_proc_resolve ("sh", path, sizeof path, err, sizeof err) == 0);
    assert (strcmp (path, "/bin/sh") == 0);
    char dir [] = "/tmp/sup-proc-test-XXXXXX";
    assert (mkdtemp (dir));
    char tool [300];
    snprintf (tool, sizeof tool, "%s/sh", dir);
    assert (symlink ("/bin/sh", tool) == 0);
    setenv ("BIFROST_LIBEXEC_DIR", dir, 1);
    assert (sup_proc_resolve ("sh", path, sizeof path, err, sizeof err) == 0);
    assert (strcmp (path, tool) == 0);
    assert (sup_proc_resolve ("bifrost-no-such-program", path, sizeof path, err, sizeof err) == -1);
    assert (strstr (err, "cannot find bifrost-no-such-program"));
    unlink (tool);
    rmdir (dir);

    //  A child that becomes READY, heartbeats, sees its environment and no stray fd
    char *argv [] = { "/bin/sh", "-c",
        "test \"$BIFROST_READY_FD\" = 3 || exit 3; "
        "test -e /proc/self/fd/4 && exit 4; "
        "echo READY >&3; echo HB >&3; echo garbage >&3; exec sleep 30", NULL };
    char *envp [] = { "BIFROST_READY_FD=3", "PATH=/bin:/usr/bin", NULL };
    sup_proc_t *self = sup_proc_start ("/bin/sh", argv, envp, true, err, sizeof err);
    assert (self);
    assert (sup_proc_pid (self) > 0);
    assert (sup_proc_fd (self) >= 0);
    int events = 0;
    for (int i = 0; i < 3 && (events & (SUP_PROC_READY | SUP_PROC_HEARTBEAT))
                              != (SUP_PROC_READY | SUP_PROC_HEARTBEAT); i++)
        events |= s_wait_events (self, 2000);
    assert (events & SUP_PROC_READY);
    assert (events & SUP_PROC_HEARTBEAT);
    assert (getpgid (sup_proc_pid (self)) == sup_proc_pid (self));
    assert (sup_proc_kill (self, SIGKILL) == 0);
    int status;
    assert (waitpid (sup_proc_pid (self), &status, 0) == sup_proc_pid (self));
    assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
    assert (s_wait_events (self, 2000) & SUP_PROC_EOF);
    assert (sup_proc_fd (self) == -1);
    sup_proc_destroy (&self);
    assert (!self);

    //  Over-long lines are discarded, not buffered
    char *argv2 [] = { "/bin/sh", "-c",
        "i=0; while [ $i -lt 200 ]; do printf xxxxxxxxxx >&3; i=$((i+1)); done; echo >&3; "
        "echo READY >&3; exit 7", NULL };
    self = sup_proc_start ("/bin/sh", argv2, envp, true, err, sizeof err);
    assert (self);
    events = 0;
    for (int i = 0; i < 50 && !(events & SUP_PROC_EOF); i++)
        events |= s_wait_events (self, 200);
    assert (events & SUP_PROC_READY);
    assert (waitpid (sup_proc_pid (self), &status, 0) == sup_proc_pid (self));
    assert (WIFEXITED (status) && WEXITSTATUS (status) == 7);
    sup_proc_destroy (&self);

    //  Without a pipe: the fd is not there; a failed exec exits 127
    char *argv3 [] = { "/bin/sh", "-c", "test -e /proc/self/fd/3 && exit 3; exit 0", NULL };
    self = sup_proc_start ("/bin/sh", argv3, envp, false, err, sizeof err);
    assert (self && sup_proc_fd (self) == -1);
    assert (waitpid (sup_proc_pid (self), &status, 0) == sup_proc_pid (self));
    assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    sup_proc_destroy (&self);
    self = sup_proc_start ("/nonexistent", argv3, envp, false, err, sizeof err);
    assert (self);
    assert (waitpid (sup_proc_pid (self), &status, 0) == sup_proc_pid (self));
    assert (WIFEXITED (status) && WEXITSTATUS (status) == 127);
    sup_proc_destroy (&self);
    if (verbose)
        printf ("sup_proc: ok\n");
}
