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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
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

//  ---------------------------------------------------------------------------
//  The paths a sandbox allows

struct _bus_sandbox_t {
    size_t count;                       //  may exceed the array: then refused
    char *path [BUS_SANDBOX_PATHS_MAX];
    bool write [BUS_SANDBOX_PATHS_MAX];
};

bus_sandbox_t *
bus_sandbox_new (void)
{
    bus_sandbox_t *self = (bus_sandbox_t *) calloc (1, sizeof (bus_sandbox_t));
    assert (self);
    return self;
}

void
bus_sandbox_destroy (bus_sandbox_t **self_p)
{
    assert (self_p);
    bus_sandbox_t *self = *self_p;
    if (self) {
        for (size_t i = 0; i < self->count && i < BUS_SANDBOX_PATHS_MAX; i++)
            free (self->path [i]);
        free (self);
        *self_p = NULL;
    }
}

static void
s_sandbox_add (bus_sandbox_t *self, bool write, const char *format, va_list args)
{
    assert (self && format);
    if (self->count < BUS_SANDBOX_PATHS_MAX) {
        assert (vasprintf (&self->path [self->count], format, args) >= 0);
        self->write [self->count] = write;
    }
    self->count++;
}

void
bus_sandbox_write (bus_sandbox_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_sandbox_add (self, true, format, args);
    va_end (args);
}

void
bus_sandbox_read (bus_sandbox_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_sandbox_add (self, false, format, args);
    va_end (args);
}

size_t
bus_sandbox_size (bus_sandbox_t *self)
{
    assert (self);
    return self->count;
}

const char *
bus_sandbox_path (bus_sandbox_t *self, size_t i, bool *write)
{
    assert (self);
    if (i >= self->count || i >= BUS_SANDBOX_PATHS_MAX)
        return NULL;
    if (write)
        *write = self->write [i];
    return self->path [i];
}

//  mkdir -p path, 0700 for what it creates: a directory to write beneath must
//  exist before the rule that allows it is made
static int
s_make_dir (const char *path, char *err, size_t errsize)
{
    char dir [PATH_MAX];
    if (snprintf (dir, sizeof dir, "%s", path) >= (int) sizeof dir) {
        snprintf (err, errsize, "%.100s...: path too long", path);
        return -1;
    }
    for (char *p = dir + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char saved = *p;
            *p = 0;
            if (mkdir (dir, 0700) && errno != EEXIST) {
                snprintf (err, errsize, "cannot create directory %s: %s", dir, strerror (errno));
                return -1;
            }
            *p = saved;
            if (!saved)
                return 0;
        }
    }
}

int
bus_privs_sandbox (bus_sandbox_t *paths, char *err, size_t errsize)
{
    assert (paths);
    if (paths->count > BUS_SANDBOX_PATHS_MAX) {
        snprintf (err, errsize, "sandbox: %zu paths, at most %d", paths->count, BUS_SANDBOX_PATHS_MAX);
        return -1;
    }
    int abi = (int) syscall (SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 1) {
        snprintf (err, errsize, "Landlock is not available (%s)", strerror (errno));
        return 1;
    }
    for (size_t i = 0; i < paths->count; i++) {
        struct stat st;
        if (paths->write [i] && stat (paths->path [i], &st) && errno == ENOENT
        &&  s_make_dir (paths->path [i], err, errsize))
            return -1;
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
    //  Read: programs and libraries (name service modules are loaded late);
    //  of /etc only what the C library, name resolution and the TLS stacks
    //  read (not /etc as a whole: the node's config, a relay's or the
    //  registry's TLS key, /etc/shadow), with the CA store (/etc/ssl/certs,
    //  whose links point into /usr/share/ca-certificates) and OpenSSL's
    //  config; wherever resolv.conf really lives; the number of CPUs; our own
    //  /proc/PID (opened through /proc/self: maps, task/, which LeakSanitizer
    //  reads at exit); and /dev/urandom, which libwebsockets opens when it makes
    //  a context (nat's, the relay's, discovery's and the registry's: without it
    //  lws_create_context fails)
    const char *readable [] = { "/usr", "/lib", "/lib64",
                                "/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/host.conf",
                                "/etc/gai.conf", "/etc/services", "/etc/protocols", "/etc/ld.so.cache",
                                "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/ssl/certs",
                                "/etc/ssl/openssl.cnf", "/run/systemd/resolve", "/run/resolvconf",
                                "/sys/devices/system/cpu", "/proc/self", "/dev/urandom", NULL };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < paths->count; i++)
        rc = s_allow (ruleset, paths->path [i], paths->write [i] ? attr.handled_access_fs : S_FS_READ,
                      attr.handled_access_fs, err, errsize);
    for (int i = 0; rc == 0 && readable [i]; i++)
        rc = s_allow (ruleset, readable [i], S_FS_READ, attr.handled_access_fs, err, errsize);
    char resolv [PATH_MAX];
    //  A resolv.conf that links elsewhere (systemd-resolved's, resolvconf's)
    //  is replaced there by rename: the directory, so the new file is read
    //  too. Not /etc itself, when it is a plain file there.
    if (rc == 0 && realpath ("/etc/resolv.conf", resolv) && strcmp (resolv, "/etc/resolv.conf")) {
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
    const char *dir;                    //  the sandbox's run directory
    const char *readable, *secret;      //  a file it may read, one beside it it may not
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

//  Binds a Unix socket at dir/name: 0, or -1 with errno
static int
s_bind (const char *dir, const char *name)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf (sun.sun_path, sizeof sun.sun_path, "%s/%s", dir, name);
    int fd = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    assert (fd != -1);
    int rc = bind (fd, (struct sockaddr *) &sun, sizeof sun);
    int code = errno;
    if (rc == 0)
        unlink (sun.sun_path);
    close (fd);
    errno = code;
    return rc;
}

//  In a child, as nat: sandboxed to write <dir>/nat (which does not exist yet)
//  and read one file. It creates files and binds its pipe's socket in
//  <dir>/nat, connects to the broker's socket in <dir>, reads its file,
//  /etc/hosts and resolves localhost, and cannot create a file or a socket in
//  <dir> itself, read the secret beside its file or another process's /proc,
//  write elsewhere, or signal its parent. 0 when right.
static int
s_child_sandbox (const s_case_t *c)
{
    const char *dir = c->dir, *secret = c->secret;
    char err [300];
    char own [PATH_MAX - 64];
    snprintf (own, sizeof own, "%s/nat", dir);
    bus_sandbox_t *paths = bus_sandbox_new ();
    bus_sandbox_write (paths, "%s", own);
    bus_sandbox_read (paths, "%s", c->readable);
    bus_sandbox_read (paths, "%s/not-there", dir);      //  left out
    assert (bus_sandbox_size (paths) == 3);
    bool writes = false;
    assert (strcmp (bus_sandbox_path (paths, 0, &writes), own) == 0 && writes);
    assert (bus_sandbox_path (paths, 1, &writes) && !writes);
    assert (bus_sandbox_path (paths, 3, &writes) == NULL);
    int rc = bus_privs_sandbox (paths, err, sizeof err);
    bus_sandbox_destroy (&paths);
    assert (paths == NULL);
    if (rc == 1)
        return 0;                       //  no Landlock here: nothing to check
    if (rc) {
        fprintf (stderr, "bus_privs_sandbox: %s\n", err);
        return 10;
    }
    char path [PATH_MAX];
    snprintf (path, sizeof path, "%s/written", own);
    int fd = open (path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd == -1 || write (fd, "x", 1) != 1)
        return 11;
    close (fd);
    if (unlink (path))
        return 12;
    if (s_bind (own, "pipe-crypto-nat.ipc"))
        return 20;
    //  Not in the run directory itself: neither a file nor a socket
    snprintf (path, sizeof path, "%s/written", dir);
    if (open (path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600) != -1 || errno != EACCES)
        return 21;
    if (s_bind (dir, "pipe-crypto-nat.ipc") != -1 || errno != EACCES)
        return 22;
    //  but it connects to a socket there (Landlock does not govern connect)
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf (sun.sun_path, sizeof sun.sun_path, "%s/bus.ipc", dir);
    fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect (fd, (struct sockaddr *) &sun, sizeof sun))
        return 23;
    close (fd);
    fd = open (c->readable, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return 24;
    close (fd);
    if (open (c->readable, O_WRONLY | O_CLOEXEC) != -1 || errno != EACCES)
        return 25;
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
    //  Of /etc, only what the C library and the TLS stacks read
    if (open ("/etc/shadow", O_RDONLY | O_CLOEXEC) != -1 || errno != EACCES)
        return 26;
    fd = open ("/etc/ssl/certs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1)
        return 27;
    close (fd);
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

//  In a child: more paths than a sandbox takes are refused, not cut short
static int
s_child_too_many (const s_case_t *c)
{
    bus_sandbox_t *paths = bus_sandbox_new ();
    for (int i = 0; i <= BUS_SANDBOX_PATHS_MAX; i++)
        bus_sandbox_read (paths, "/nonexistent/%d", i);
    char err [300];
    int rc = bus_privs_sandbox (paths, err, sizeof err);
    bus_sandbox_destroy (&paths);
    return rc == -1 && strstr (err, "paths") ? 0 : 1;
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
    assert (s_in_child (s_child_drop, &(s_case_t) { 0, true, NULL, NULL, NULL }) == 0);
    //  One kept (device: CAP_NET_ADMIN), dumpable
    assert (s_in_child (s_child_drop, &(s_case_t) { BUS_CAP (CAP_NET_ADMIN), false, NULL, NULL, NULL }) == 0);
    //  Two kept, one of which may not be held at all (not root): only what is held
    s_case_t two = { BUS_CAP (CAP_NET_ADMIN) | BUS_CAP (CAP_NET_BIND_SERVICE), true, NULL, NULL, NULL };
    assert (s_in_child (s_child_drop, &two) == 0);
    //  The sandbox (nat): only its own directory in the run directory to
    //  write, what name resolution reads, and one file; not a secret beside it
    char dir [] = "/tmp/bus-privs-run-XXXXXX";
    char other [] = "/tmp/bus-privs-key-XXXXXX";
    assert (mkdtemp (dir) && mkdtemp (other));
    char secret [PATH_MAX], readable [PATH_MAX], own [PATH_MAX];
    snprintf (secret, sizeof secret, "%s/node.key", other);
    snprintf (readable, sizeof readable, "%s/cert.pem", other);
    snprintf (own, sizeof own, "%s/nat", dir);
    FILE *file = fopen (secret, "w");
    assert (file && fputs ("secret", file) >= 0 && fclose (file) == 0);
    file = fopen (readable, "w");
    assert (file && fputs ("public", file) >= 0 && fclose (file) == 0);
    //  The broker's socket, which the child connects to
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf (sun.sun_path, sizeof sun.sun_path, "%s/bus.ipc", dir);
    int listener = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert (listener != -1 && bind (listener, (struct sockaddr *) &sun, sizeof sun) == 0);
    assert (listen (listener, 4) == 0);
    int failed = s_in_child (s_child_sandbox, &(s_case_t) { 0, false, dir, readable, secret });
    if (failed)
        printf ("sandboxed child failed: %d\n", failed);
    assert (failed == 0);
    //  (the sandbox made its directory; not where there is no Landlock, as
    //  under valgrind, which does not know its system calls)
    struct stat st;
    if (syscall (SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) >= 1)
        assert (stat (own, &st) == 0 && S_ISDIR (st.st_mode) && (st.st_mode & 0777) == 0700);
    assert (s_in_child (s_child_too_many, NULL) == 0);
    close (listener);
    unlink (sun.sun_path);
    rmdir (own);
    if (verbose)
        printf ("\n   Landlock ABI %d", (int) syscall (SYS_landlock_create_ruleset, NULL, 0,
                                                          LANDLOCK_CREATE_RULESET_VERSION));
    unlink (secret);
    unlink (readable);
    rmdir (other);
    rmdir (dir);
    //  Here, unchanged
    assert (prctl (PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == nnp);
    assert (bus_privs_effective () == effective);
    printf ("OK\n");
}
