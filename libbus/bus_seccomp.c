/*  bus_seccomp: a seccomp allow-list per service, from schemas/syscalls.def
    (why TRAP and not KILL, and when it is loaded: bus_seccomp.h). */
#include "bus_seccomp.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "config.h"
#ifdef HAVE_VALGRIND_VALGRIND_H
#   include <valgrind/valgrind.h>
#else
#   define RUNNING_ON_VALGRIND 0
#endif

//  A sanitizer build (configure --enable-sanitizers with gcc, or clang's
//  fuzzing build) takes the SANITIZER set
#if defined (__SANITIZE_ADDRESS__)
#   define S_SANITIZER 1
#elif defined (__has_feature)
#   if __has_feature (address_sanitizer) || __has_feature (undefined_behavior_sanitizer)
#       define S_SANITIZER 1
#   endif
#endif
#ifndef S_SANITIZER
#   define S_SANITIZER 0
#endif

//  Where the trap handler sets the call's return value; elsewhere refused calls
//  fail with EPERM in the kernel, without the log line
//  and where it finds the call's first two arguments (which ioctl, which socket)
#if defined (__x86_64__)
#   define S_RETURN(uc) ((uc)->uc_mcontext.gregs [REG_RAX])
#   define S_ARG0(uc)   ((uc)->uc_mcontext.gregs [REG_RDI])
#   define S_ARG1(uc)   ((uc)->uc_mcontext.gregs [REG_RSI])
#elif defined (__aarch64__)
#   define S_RETURN(uc) ((uc)->uc_mcontext.regs [0])
#   define S_ARG0(uc)   ((uc)->uc_mcontext.regs [0])
#   define S_ARG1(uc)   ((uc)->uc_mcontext.regs [1])
#endif

//  One row of schemas/syscalls.def
typedef struct {
    uint32_t set;               //  BUS_SECCOMP_* bit
    int nr;                     //  this architecture's number; < 0: none here
    const char *name;
    int arg;                    //  -1: whatever the arguments
    uint64_t mask, value;       //  allowed when (argument arg & mask) == value
    int error;                  //  not 0: fails with this errno, silently
} s_row_t;

static const s_row_t s_rows [] = {
#define BUS_SYSCALL_SET(set, doc)
#define BUS_SYSCALL(set, name, why) \
    { BUS_SECCOMP_##set, SCMP_SYS (name), #name, -1, 0, 0, 0 },
#define BUS_SYSCALL_ARG(set, name, argno, mask, value, why) \
    { BUS_SECCOMP_##set, SCMP_SYS (name), #name, argno, (uint64_t) (mask), (uint64_t) (value), 0 },
#define BUS_SYSCALL_ERRNO(set, name, error, why) \
    { BUS_SECCOMP_##set, SCMP_SYS (name), #name, -1, 0, 0, error },
#include "../schemas/syscalls.def"
#undef BUS_SYSCALL_SET
#undef BUS_SYSCALL
#undef BUS_SYSCALL_ARG
#undef BUS_SYSCALL_ERRNO
};
#define S_ROWS (sizeof s_rows / sizeof s_rows [0])

//  What the trap handler uses: all set before the filter is loaded
static atomic_uint_fast64_t s_refused;
static char s_ident [80];               //  "ident[pid]"

const char *
bus_seccomp_name (int nr)
{
    for (size_t i = 0; i < S_ROWS; i++)
        if (s_rows [i].nr == nr && nr >= 0)
            return s_rows [i].name;
    return NULL;
}

uint64_t
bus_seccomp_refused (void)
{
    return (uint64_t) atomic_load (&s_refused);
}

//  Appends text to line at *at (async-signal-safe: no stdio)
static void
s_put (char *line, size_t size, size_t *at, const char *text)
{
    while (*text && *at < size - 1)
        line [(*at)++] = *text++;
}

//  Appends number in base (10 or 16), zero-padded to width digits
static void
s_put_base (char *line, size_t size, size_t *at, uint64_t number, int width, unsigned base)
{
    char digits [24];
    int n = 0;
    do {
        digits [n++] = "0123456789abcdef" [number % base];
        number /= base;
    } while (number && n < (int) sizeof digits);
    while (n < width && n < (int) sizeof digits)
        digits [n++] = '0';
    while (n > 0 && *at < size - 1)
        line [(*at)++] = digits [--n];
}

static void
s_put_num (char *line, size_t size, size_t *at, uint64_t number, int width)
{
    s_put_base (line, size, at, number, width, 10);
}

//  SIGSYS from the filter: one line in the log's format (bus_log: UTC time,
//  level, ident[pid]), a count, and EPERM as the call's result. Only
//  async-signal-safe work: the name comes from the static table, the line goes
//  out with one write(2), which the filter allows.
static void
s_on_sigsys (int sig, siginfo_t *info, void *context)
{
    int saved_errno = errno;
    atomic_fetch_add (&s_refused, 1);
    int nr = info->si_syscall;
    const char *name = bus_seccomp_name (nr);
    char line [200];
    size_t at = 0;
    struct timespec ts = { 0, 0 };
    clock_gettime (CLOCK_REALTIME, &ts);
    uint64_t day = (uint64_t) ts.tv_sec % 86400;
    s_put_num (line, sizeof line, &at, day / 3600, 2);
    s_put (line, sizeof line, &at, ":");
    s_put_num (line, sizeof line, &at, day / 60 % 60, 2);
    s_put (line, sizeof line, &at, ":");
    s_put_num (line, sizeof line, &at, day % 60, 2);
    s_put (line, sizeof line, &at, ".");
    s_put_num (line, sizeof line, &at, (uint64_t) ts.tv_nsec / 1000000, 3);
    s_put (line, sizeof line, &at, " error ");
    s_put (line, sizeof line, &at, s_ident);
    s_put (line, sizeof line, &at, ": seccomp refused system call ");
    s_put_num (line, sizeof line, &at, nr < 0 ? 0 : (uint64_t) nr, 1);
    s_put (line, sizeof line, &at, " (");
    s_put (line, sizeof line, &at, name ? name : "not in schemas/syscalls.def");
    s_put (line, sizeof line, &at, ")");
#ifdef S_RETURN
    ucontext_t *uc = (ucontext_t *) context;
    s_put (line, sizeof line, &at, " with 0x");
    s_put_base (line, sizeof line, &at, (uint64_t) S_ARG0 (uc), 1, 16);
    s_put (line, sizeof line, &at, ", 0x");
    s_put_base (line, sizeof line, &at, (uint64_t) S_ARG1 (uc), 1, 16);
    S_RETURN (uc) = -EPERM;
#endif
    s_put (line, sizeof line, &at, ": it fails with EPERM\n");
    ssize_t written = write (STDERR_FILENO, line, at);
    (void) written;
    errno = saved_errno;
}

int
bus_seccomp_apply (uint32_t sets, const char *ident, char *err, size_t errsize)
{
    const char *mode = getenv ("BIFROST_SECCOMP");
    if (mode && strcmp (mode, "0") == 0) {
        snprintf (err, errsize, "BIFROST_SECCOMP=0: no seccomp filter");
        return 1;
    }
    bool log = mode && strcmp (mode, "log") == 0;
    if (RUNNING_ON_VALGRIND) {
        snprintf (err, errsize, "no seccomp filter under valgrind");
        return 1;
    }
    if (prctl (PR_GET_SECCOMP, 0, 0, 0, 0) == -1 && errno == EINVAL) {
        snprintf (err, errsize, "the kernel has no seccomp");
        return 1;
    }
    snprintf (s_ident, sizeof s_ident, "%s[%d]", ident ? ident : "bifrost", (int) getpid ());
    uint32_t take = sets | BUS_SECCOMP_BASE | (S_SANITIZER ? BUS_SECCOMP_SANITIZER : 0);
    take &= ~(uint32_t) BUS_SECCOMP_DENIED;
#ifdef S_RETURN
    uint32_t refuse = SCMP_ACT_TRAP;
#else
    uint32_t refuse = SCMP_ACT_ERRNO (EPERM);
#endif
    scmp_filter_ctx ctx = seccomp_init (log ? SCMP_ACT_LOG : refuse);
    if (!ctx) {
        snprintf (err, errsize, "seccomp_init failed");
        return -1;
    }
    //  Every thread (ZeroMQ's run by now); no_new_privs is set already
    int rc = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    const char *what = "TSYNC";
    for (size_t i = 0; rc == 0 && i < S_ROWS; i++) {
        const s_row_t *row = &s_rows [i];
        if (!(take & row->set) || row->nr < 0)
            continue;               //  not ours, or no such call here
        uint32_t action = row->error ? SCMP_ACT_ERRNO ((uint32_t) row->error) : SCMP_ACT_ALLOW;
        if (row->arg >= 0)
            rc = seccomp_rule_add (ctx, action, row->nr, 1,
                                   SCMP_CMP ((unsigned) row->arg, SCMP_CMP_MASKED_EQ, row->mask, row->value));
        else
            rc = seccomp_rule_add (ctx, action, row->nr, 0);
        if (rc == -EEXIST)
            rc = 0;                 //  in two sets we take
        what = row->name;
    }
    if (rc) {
        snprintf (err, errsize, "seccomp rule for %s: %s", what, strerror (-rc));
        seccomp_release (ctx);
        return -1;
    }
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_sigaction = s_on_sigsys;
    action.sa_flags = SA_SIGINFO;
    sigemptyset (&action.sa_mask);
    if (sigaction (SIGSYS, &action, NULL)) {
        snprintf (err, errsize, "SIGSYS handler: %s", strerror (errno));
        seccomp_release (ctx);
        return -1;
    }
    rc = seccomp_load (ctx);
    seccomp_release (ctx);
    if (rc) {
        snprintf (err, errsize, "seccomp_load: %s", strerror (-rc));
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------
//  Self test: the filter in a forked child, so this process keeps none.

//  /proc/self/status's "Seccomp:" value, or -1
static int
s_seccomp_mode (void)
{
    FILE *file = fopen ("/proc/self/status", "r");
    if (!file)
        return -1;
    char line [256];
    int mode = -1;
    while (fgets (line, sizeof line, file))
        if (strncmp (line, "Seccomp:", 8) == 0)
            mode = atoi (line + 8);
    fclose (file);
    return mode;
}

static void *
s_thread (void *arg)
{
    return arg;
}

//  In a child: the BASE filter; an allowed call works, refused ones fail with
//  EPERM, are counted and logged; a thread can still start. 0 when right.
static int
s_child_filter (uint32_t sets)
{
    int log [2];
    if (pipe2 (log, O_CLOEXEC | O_NONBLOCK) || dup2 (log [1], STDERR_FILENO) == -1)
        return 1;
    char err [200];
    int rc = bus_seccomp_apply (sets, "selftest", err, sizeof err);
    if (rc == 1)
        return 0;                   //  no filter here (valgrind, the kernel): nothing to check
    if (rc)
        return 2;
    if (s_seccomp_mode () != 2)
        return 3;
    if (getpid () <= 0)
        return 4;
    //  Refused: unshare (0) and execve would succeed or fail otherwise
    if (syscall (SYS_unshare, 0) != -1 || errno != EPERM)
        return 5;
    char *argv [] = { "/nonexistent/bifrost", NULL };
    if (execve (argv [0], argv, argv + 1) != -1 || errno != EPERM)
        return 6;
    if (bus_seccomp_refused () != 2)
        return 7;
    //  An argument decides: a netlink socket only with NETLINK
    int fd = socket (AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0);
    if ((sets & BUS_SECCOMP_NETLINK) ? fd < 0 : (fd != -1 || errno != EPERM))
        return 8;
    if (fd >= 0)
        close (fd);
    fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 9;
    close (fd);
    //  A thread starts (clone3 fails with ENOSYS, glibc falls back to clone);
    //  a process does not (clone without CLONE_THREAD), unless the sanitizer
    //  runtime needs it
    static int token;
    pthread_t thread;
    void *back = NULL;
    if (pthread_create (&thread, NULL, s_thread, &token) || pthread_join (thread, &back) || back != &token)
        return 10;
    pid_t pid = fork ();
    if (pid == 0)
        _exit (0);
    if (S_SANITIZER ? pid < 0 : (pid != -1 || errno != EPERM))
        return 11;
    if (pid > 0)
        waitpid (pid, NULL, 0);
    //  The log says which calls
    char text [1000];
    ssize_t size = read (log [0], text, sizeof text - 1);
    if (size <= 0)
        return 12;
    text [size] = 0;
    char expect [80];
    snprintf (expect, sizeof expect, "selftest[%d]: seccomp refused system call %d (unshare)",
              (int) getpid (), (int) SYS_unshare);
    if (!strstr (text, expect) || !strstr (text, "(execve) with 0x")
    ||  !strstr (text, ": it fails with EPERM"))
        return 13;
    return 0;
}

//  Runs s_child_filter (sets) in a child: its exit status (100: it did not exit).
static int
s_in_child (uint32_t sets, const char *env)
{
    fflush (NULL);
    pid_t pid = fork ();
    assert (pid >= 0);
    if (pid == 0) {
        if (env)
            setenv ("BIFROST_SECCOMP", env, 1);
        else
            unsetenv ("BIFROST_SECCOMP");
        //  as bus_service_main has it by then
        if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
            _exit (99);
        if (env && strcmp (env, "0") == 0) {
            char err [200];
            int before = s_seccomp_mode ();
            _exit (bus_seccomp_apply (0, "selftest", err, sizeof err) == 1 && s_seccomp_mode () == before ? 0 : 20);
        }
        _exit (s_child_filter (sets));
    }
    int status;
    assert (waitpid (pid, &status, 0) == pid);
    return WIFEXITED (status) ? WEXITSTATUS (status) : 100;
}

void
bus_seccomp_test (bool verbose)
{
    printf (" * bus_seccomp: ");
    int mode = s_seccomp_mode ();
    //  The table: every set's calls resolve, the names are found by number
    assert (bus_seccomp_name (SCMP_SYS (execve)) && strcmp (bus_seccomp_name (SCMP_SYS (execve)), "execve") == 0);
    assert (bus_seccomp_name (-1) == NULL);
    for (size_t i = 0; i < S_ROWS; i++)
        assert (s_rows [i].set && s_rows [i].name && s_rows [i].arg < 6);
    int rc = s_in_child (0, NULL);
    if (rc)
        printf ("filtered child failed: %d\n", rc);
    assert (rc == 0);
    assert (s_in_child (BUS_SECCOMP_NETLINK, NULL) == 0);
    //  The operator's off switch
    assert (s_in_child (0, "0") == 0);
    //  Here, unchanged
    assert (s_seccomp_mode () == mode);
    if (verbose)
        printf ("\n   %zu rows, sanitizer build: %d", S_ROWS, S_SANITIZER);
    printf ("OK\n");
}
