/*  bus_privs: a service keeps only the capabilities of its row in DESIGN.md
    (why and when: bus_privs.h). */
#include "bus_privs.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

//  The calling thread's capability sets, 64 bits each
typedef struct {
    uint64_t effective, permitted, inheritable;
} s_caps_t;

static int
s_caps_get (s_caps_t *caps)
{
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data [2];
    memset (data, 0, sizeof data);
    if (syscall (SYS_capget, &header, data))
        return -1;
    caps->effective = data [0].effective | (uint64_t) data [1].effective << 32;
    caps->permitted = data [0].permitted | (uint64_t) data [1].permitted << 32;
    caps->inheritable = data [0].inheritable | (uint64_t) data [1].inheritable << 32;
    return 0;
}

static int
s_caps_set (const s_caps_t *caps)
{
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data [2] = {
        { (uint32_t) caps->effective, (uint32_t) caps->permitted, (uint32_t) caps->inheritable },
        { (uint32_t) (caps->effective >> 32), (uint32_t) (caps->permitted >> 32),
          (uint32_t) (caps->inheritable >> 32) }
    };
    return (int) syscall (SYS_capset, &header, data);
}

uint64_t
bus_privs_effective (void)
{
    s_caps_t caps;
    return s_caps_get (&caps) ? 0 : caps.effective;
}

int
bus_privs_raise (char *err, size_t errsize)
{
    s_caps_t caps;
    if (s_caps_get (&caps)) {
        snprintf (err, errsize, "cannot read the capabilities: %s", strerror (errno));
        return -1;
    }
    caps.effective = caps.permitted;
    if (s_caps_set (&caps)) {
        snprintf (err, errsize, "cannot raise the capabilities: %s", strerror (errno));
        return -1;
    }
    return 0;
}

uint64_t
bus_privs_listen_caps (int port)
{
    return port > 0 && port < 1024 ? BUS_CAP (CAP_NET_BIND_SERVICE) : 0;
}

int
bus_privs_drop (uint64_t keep, bool hide, char *err, size_t errsize)
{
    s_caps_t caps;
    if (s_caps_get (&caps)) {
        snprintf (err, errsize, "cannot read the capabilities: %s", strerror (errno));
        return -1;
    }
    //  Ambient ones would survive an exec; kernels before 4.3 have none
    if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 && errno != EINVAL) {
        snprintf (err, errsize, "cannot clear the ambient capabilities: %s", strerror (errno));
        return -1;
    }
    //  The bounding set caps what any exec could grant (root's included). Needs
    //  CAP_SETPCAP, so it goes before the sets below; a process without it
    //  (not root) has nothing there to lose that the sets below do not remove.
    if (caps.effective & BUS_CAP (CAP_SETPCAP)) {
        for (int cap = 0; cap < 64; cap++) {
            if (keep & BUS_CAP (cap))
                continue;
            int held = prctl (PR_CAPBSET_READ, cap, 0, 0, 0);
            if (held < 0)
                break;                  //  past the kernel's last capability
            if (held && prctl (PR_CAPBSET_DROP, cap, 0, 0, 0) == -1) {
                snprintf (err, errsize, "cannot drop capability %d from the bounding set: %s",
                          cap, strerror (errno));
                return -1;
            }
        }
    }
    s_caps_t kept = { caps.permitted & keep, caps.permitted & keep, 0 };
    if (s_caps_set (&kept)) {
        snprintf (err, errsize, "cannot drop capabilities: %s", strerror (errno));
        return -1;
    }
    if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
        snprintf (err, errsize, "cannot set no_new_privs: %s", strerror (errno));
        return -1;
    }
    //  (LeakSanitizer makes the process dumpable again for its check at exit)
    if (hide && prctl (PR_SET_DUMPABLE, 0, 0, 0, 0) == -1) {
        snprintf (err, errsize, "cannot make the process non-dumpable: %s", strerror (errno));
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------
//  Landlock. The headers of Debian 12 know ABI 2; newer kernels take the newer
//  fields and rights as long as we only ask for what their ABI has.

typedef struct {
    uint64_t handled_access_fs, handled_access_net, scoped;
} s_ruleset_attr_t;

#define S_FS_V1         ((1ULL << 13) - 1)  //  execute .. make_sym
#define S_FS_REFER      (1ULL << 13)        //  ABI 2
#define S_FS_TRUNCATE   (1ULL << 14)        //  ABI 3
#define S_FS_IOCTL_DEV  (1ULL << 15)        //  ABI 5
#define S_FS_FILE       (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE \
                       | LANDLOCK_ACCESS_FS_READ_FILE | S_FS_TRUNCATE | S_FS_IOCTL_DEV)
#define S_FS_READ       (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE \
                       | LANDLOCK_ACCESS_FS_READ_DIR)
#define S_SCOPE_ABSTRACT_UNIX   (1ULL << 0) //  ABI 6
#define S_SCOPE_SIGNAL          (1ULL << 1) //  ABI 6

//  Allows access (limited to handled, and to what a file can have when path is
//  not a directory) beneath path. A path that does not exist is left out.
static int
s_allow (int ruleset, const char *path, uint64_t access, uint64_t handled, char *err, size_t errsize)
{
    int fd = open (path, O_PATH | O_CLOEXEC);
    if (fd == -1) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        snprintf (err, errsize, "%s: %s", path, strerror (errno));
        return -1;
    }
    struct stat st;
    if (fstat (fd, &st) == 0 && !S_ISDIR (st.st_mode))
        access &= S_FS_FILE;
    struct landlock_path_beneath_attr rule = { .allowed_access = access & handled, .parent_fd = fd };
    int rc = (int) syscall (SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
    if (rc)
        snprintf (err, errsize, "landlock rule for %s: %s", path, strerror (errno));
    close (fd);
    return rc ? -1 : 0;
}

int
bus_privs_sandbox (const char *writable, char *err, size_t errsize)
{
    int abi = (int) syscall (SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 1) {
        snprintf (err, errsize, "Landlock is not available (%s)", strerror (errno));
        return 1;
    }
    s_ruleset_attr_t attr = { S_FS_V1, 0, 0 };
    if (abi >= 2)
        attr.handled_access_fs |= S_FS_REFER;
    if (abi >= 3)
        attr.handled_access_fs |= S_FS_TRUNCATE;
    if (abi >= 5)
        attr.handled_access_fs |= S_FS_IOCTL_DEV;
    //  Nor signals nor abstract sockets to processes outside the sandbox
    if (abi >= 6)
        attr.scoped = S_SCOPE_ABSTRACT_UNIX | S_SCOPE_SIGNAL;
    int ruleset = (int) syscall (SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    if (ruleset == -1) {
        snprintf (err, errsize, "landlock ruleset: %s", strerror (errno));
        return -1;
    }
    //  Read: programs and libraries (name service modules are loaded late), /etc
    //  with what getaddrinfo reads, wherever resolv.conf really lives, the
    //  number of CPUs, our own /proc/PID (opened through /proc/self: maps,
    //  task/, which LeakSanitizer reads at exit), and /dev/urandom, which
    //  libwebsockets opens when it makes a context (nat's and the relay's
    //  WebSocket over TLS: without it lws_create_context fails)
    const char *readable [] = { "/usr", "/lib", "/lib64", "/etc", "/run/systemd/resolve",
                                "/run/resolvconf", "/sys/devices/system/cpu", "/proc/self",
                                "/dev/urandom", NULL };
    int rc = s_allow (ruleset, writable, attr.handled_access_fs, attr.handled_access_fs, err, errsize);
    for (int i = 0; rc == 0 && readable [i]; i++)
        rc = s_allow (ruleset, readable [i], S_FS_READ, attr.handled_access_fs, err, errsize);
    char resolv [PATH_MAX];
    if (rc == 0 && realpath ("/etc/resolv.conf", resolv)) {
        char *slash = strrchr (resolv, '/');
        if (slash && slash != resolv) {
            *slash = 0;
            rc = s_allow (ruleset, resolv, S_FS_READ, attr.handled_access_fs, err, errsize);
        }
    }
    if (rc == 0 && syscall (SYS_landlock_restrict_self, ruleset, 0)) {
        snprintf (err, errsize, "landlock: %s", strerror (errno));
        rc = -1;
    }
    close (ruleset);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Self test: each case in a child process, so the test keeps what it has.

//  One case of the test, run in a child process
typedef struct {
    uint64_t keep;
    bool hide;
    const char *dir, *secret;           //  the sandbox's run directory, a file outside
} s_case_t;

//  In a child: drops to keep, then checks every set; exit status 0 when right.
static int
s_child_drop (const s_case_t *c)
{
    uint64_t keep = c->keep;
    bool hide = c->hide;
    s_caps_t before;
    assert (s_caps_get (&before) == 0);
    char err [200];
    if (bus_privs_drop (keep, hide, err, sizeof err)) {
        fprintf (stderr, "bus_privs_drop: %s\n", err);
        return 1;
    }
    s_caps_t after;
    assert (s_caps_get (&after) == 0);
    uint64_t expect = before.permitted & keep;
    if (after.effective != expect || after.permitted != expect || after.inheritable)
        return 2;
    if (bus_privs_effective () != expect)
        return 3;
    if (prctl (PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
        return 4;
    if (before.effective & BUS_CAP (CAP_SETPCAP)) {
        //  Root: the bounding set holds exactly what was kept
        for (int cap = 0; cap < 64; cap++) {
            int held = prctl (PR_CAPBSET_READ, cap, 0, 0, 0);
            if (held < 0)
                break;
            if (held != ((keep & BUS_CAP (cap)) != 0))
                return 5;
        }
        //  and what was dropped cannot be raised again
        s_caps_t raise = after;
        raise.effective |= BUS_CAP (CAP_SYS_ADMIN);
        raise.permitted |= BUS_CAP (CAP_SYS_ADMIN);
        if (!(keep & BUS_CAP (CAP_SYS_ADMIN)) && s_caps_set (&raise) == 0)
            return 6;
    }
    if (prctl (PR_GET_DUMPABLE, 0, 0, 0, 0) != (hide ? 0 : 1))
        return 7;
    return 0;
}

//  Runs fn (c) in a child process: its exit status (100: it did not exit).
static int
s_in_child (int (*fn) (const s_case_t *), const s_case_t *c)
{
    fflush (NULL);
    pid_t pid = fork ();
    assert (pid >= 0);
    if (pid == 0)
        _exit (fn (c));
    int status;
    assert (waitpid (pid, &status, 0) == pid);
    return WIFEXITED (status) ? WEXITSTATUS (status) : 100;
}

//  In a child: sandboxed to dir, it writes there, reads /etc/hosts, resolves
//  localhost, and cannot read secret (outside) or signal its parent. 0 when right.
static int
s_child_sandbox (const s_case_t *c)
{
    const char *dir = c->dir, *secret = c->secret;
    char err [300];
    int rc = bus_privs_sandbox (dir, err, sizeof err);
    if (rc == 1)
        return 0;                       //  no Landlock here: nothing to check
    if (rc) {
        fprintf (stderr, "bus_privs_sandbox: %s\n", err);
        return 10;
    }
    char path [PATH_MAX];
    snprintf (path, sizeof path, "%s/written", dir);
    int fd = open (path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd == -1 || write (fd, "x", 1) != 1)
        return 11;
    close (fd);
    if (unlink (path))
        return 12;
    fd = open ("/etc/hosts", O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return 13;
    close (fd);
    struct addrinfo *list = NULL;
    if (getaddrinfo ("localhost", "80", NULL, &list) || !list)
        return 14;
    freeaddrinfo (list);
    if (open (secret, O_RDONLY | O_CLOEXEC) != -1 || errno != EACCES)
        return 15;
    //  Its own /proc (LeakSanitizer reads task/ at exit), not another's
    fd = open ("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1)
        return 18;
    close (fd);
    snprintf (path, sizeof path, "/proc/%d/status", (int) getppid ());
    if (open (path, O_RDONLY | O_CLOEXEC) != -1 || errno != EACCES)
        return 19;
    if (open ("/tmp/bus-privs-outside", O_CREAT | O_WRONLY | O_CLOEXEC, 0600) != -1 || errno != EACCES)
        return 16;
    //  ABI 6 and later: no signal to a process outside (the parent)
    if (syscall (SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) >= 6
    &&  (kill (getppid (), 0) != -1 || errno != EPERM))
        return 17;
    return 0;
}

void
bus_privs_test (bool verbose)
{
    printf (" * bus_privs: ");
    int nnp = prctl (PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    assert (bus_privs_listen_caps (443) == BUS_CAP (CAP_NET_BIND_SERVICE));
    assert (bus_privs_listen_caps (0) == 0 && bus_privs_listen_caps (1024) == 0);
    assert (bus_privs_listen_caps (-1) == 0);
    uint64_t effective = bus_privs_effective ();
    if (verbose)
        printf ("\n   effective capabilities here: %016llx", (unsigned long long) bus_privs_effective ());
    //  Nothing kept (nat, crypto, router), not dumpable (crypto)
    assert (s_in_child (s_child_drop, &(s_case_t) { 0, true, NULL, NULL }) == 0);
    //  One kept (device: CAP_NET_ADMIN), dumpable
    assert (s_in_child (s_child_drop, &(s_case_t) { BUS_CAP (CAP_NET_ADMIN), false, NULL, NULL }) == 0);
    //  Two kept, one of which may not be held at all (not root): only what is held
    s_case_t two = { BUS_CAP (CAP_NET_ADMIN) | BUS_CAP (CAP_NET_BIND_SERVICE), true, NULL, NULL };
    assert (s_in_child (s_child_drop, &two) == 0);
    //  The sandbox (nat): only its run directory to write, and what name
    //  resolution reads; not a secret next door
    char dir [] = "/tmp/bus-privs-run-XXXXXX";
    char other [] = "/tmp/bus-privs-key-XXXXXX";
    assert (mkdtemp (dir) && mkdtemp (other));
    char secret [PATH_MAX];
    snprintf (secret, sizeof secret, "%s/node.key", other);
    FILE *file = fopen (secret, "w");
    assert (file && fputs ("secret", file) >= 0 && fclose (file) == 0);
    int failed = s_in_child (s_child_sandbox, &(s_case_t) { 0, false, dir, secret });
    if (failed)
        printf ("sandboxed child failed: %d\n", failed);
    assert (failed == 0);
    if (verbose)
        printf ("\n   Landlock ABI %d", (int) syscall (SYS_landlock_create_ruleset, NULL, 0,
                                                          LANDLOCK_CREATE_RULESET_VERSION));
    unlink (secret);
    rmdir (other);
    rmdir (dir);
    //  Here, unchanged
    assert (prctl (PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == nnp);
    assert (bus_privs_effective () == effective);
    printf ("OK\n");
}
