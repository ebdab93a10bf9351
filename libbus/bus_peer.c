/*  bus_peer: the kernel's word on who sent a bus message (see the header for why). */
#include "bus_peer.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "bus_privs.h"

//  The caller's end of the exe reader's socket, -1 when there is none
static int s_reader = -1;

//  One decimal field of at most 10 digits that fits 32 bits; *end past it
static bool
s_field (const char *text, const char **end, uint32_t *out)
{
    uint64_t value = 0;
    int digits = 0;
    while (*text >= '0' && *text <= '9' && digits < 11) {
        value = value * 10 + (uint64_t) (*text - '0');
        text++;
        digits++;
    }
    if (digits == 0 || digits > 10 || value > UINT32_MAX)
        return false;
    *out = (uint32_t) value;
    *end = text;
    return true;
}

bool
bus_peer_parse (const char *peer_address, bus_peer_t *out)
{
    if (!peer_address)
        return false;
    //  The last three ':'-separated fields; what is before them is the address
    const char *colons [3] = { NULL, NULL, NULL };
    int found = 0;
    for (const char *p = peer_address + strlen (peer_address); p > peer_address && found < 3; ) {
        p--;
        if (*p == ':')
            colons [2 - found++] = p;
    }
    if (found < 3)
        return false;
    uint32_t values [3];
    for (int i = 0; i < 3; i++) {
        const char *end;
        if (!s_field (colons [i] + 1, &end, &values [i]))
            return false;
        if (*end != (i < 2 ? ':' : 0) || (i < 2 && end != colons [i + 1]))
            return false;
    }
    if (values [2] == 0)
        return false;                   //  no process has pid 0
    out->uid = values [0];
    out->gid = values [1];
    out->pid = values [2];
    return true;
}

//  readlink of /proc/PID/exe in this process
static bool
s_exe (uint32_t pid, char *out, size_t size)
{
    char link [64];
    snprintf (link, sizeof link, "/proc/%u/exe", pid);
    ssize_t n = readlink (link, out, size - 1);
    if (n <= 0 || (size_t) n >= size - 1)
        return false;
    out [n] = 0;
    return true;
}

//  The reader's loop: a pid (4 bytes) in, its executable out ("" unreadable),
//  until the caller goes
static void
s_reader_loop (int fd)
{
    uint32_t pid;
    char exe [PATH_MAX];
    while (recv (fd, &pid, sizeof pid, 0) == (ssize_t) sizeof pid) {
        if (!s_exe (pid, exe, sizeof exe))
            exe [0] = 0;
        if (send (fd, exe, strlen (exe) + 1, MSG_NOSIGNAL) == -1)
            break;
    }
}

int
bus_peer_exe_reader (void)
{
    int pair [2];
    if (s_reader != -1)
        return 0;
    if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair))
        return -1;
    pid_t parent = getpid ();
    fflush (NULL);
    pid_t pid = fork ();
    if (pid == -1) {
        int code = errno;
        close (pair [0]);
        close (pair [1]);
        errno = code;
        return -1;
    }
    if (pid == 0) {
        //  Only its socket: not the caller's readiness pipe, sockets or files
        prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        prctl (PR_SET_NAME, "bifrost-exe-rd", 0, 0, 0);
        if (getppid () != parent)
            _exit (0);
        if (dup2 (pair [1], 3) == -1)
            _exit (1);
        for (int fd = 4; fd < 1024; fd++)
            close (fd);
        //  CAP_SYS_PTRACE and nothing else: the program of a process that
        //  holds capabilities (a service in its setup) or hides itself (the
        //  key's process, not dumpable) is readable only with it. It reads a
        //  link per pid its parent asks for, and is not dumpable itself.
        char err [200];
        if (bus_privs_drop (BUS_CAP (CAP_SYS_PTRACE), true, err, sizeof err))
            _exit (1);
        s_reader_loop (3);
        _exit (0);
    }
    close (pair [1]);
    s_reader = pair [0];
    return 0;
}

bool
bus_peer_exe (uint32_t pid, char *out, size_t size)
{
    if (s_reader == -1)
        return s_exe (pid, out, size);
    char exe [PATH_MAX];
    struct pollfd item = { s_reader, POLLIN, 0 };
    ssize_t n = -1;
    if (send (s_reader, &pid, sizeof pid, MSG_NOSIGNAL) == (ssize_t) sizeof pid
    &&  poll (&item, 1, 1000) == 1)
        n = recv (s_reader, exe, sizeof exe, 0);
    if (n <= 1 || exe [n - 1] != 0 || (size_t) n > size)
        return false;
    memcpy (out, exe, (size_t) n);
    return true;
}

bool
bus_peer_stat_parse (const char *text, uint32_t *ppid, char *comm, size_t size)
{
    //  "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so it
    //  ends at the last ')'
    const char *open = strchr (text, '(');
    const char *close = strrchr (text, ')');
    if (!open || !close || close < open || (size_t) (close - open - 1) >= size)
        return false;
    memcpy (comm, open + 1, (size_t) (close - open - 1));
    comm [close - open - 1] = 0;
    const char *p = close + 1;
    if (p [0] != ' ' || !p [1] || p [2] != ' ')
        return false;
    const char *end;
    return s_field (p + 3, &end, ppid) && (*end == ' ' || *end == 0);
}

bool
bus_peer_stat (uint32_t pid, uint32_t *ppid, char *comm, size_t size)
{
    char path [64], text [512];
    snprintf (path, sizeof path, "/proc/%u/stat", pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return false;
    size_t n = fread (text, 1, sizeof text - 1, f);
    fclose (f);
    text [n] = 0;
    return n > 0 && bus_peer_stat_parse (text, ppid, comm, size);
}

bool
bus_peer_caps (uint32_t pid, uint64_t *caps)
{
    char path [64], line [256];
    snprintf (path, sizeof path, "/proc/%u/status", pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return false;
    bool found = false;
    while (!found && fgets (line, sizeof line, f)) {
        unsigned long long value;
        if (strncmp (line, "CapEff:", 7) == 0 && sscanf (line + 7, "%llx", &value) == 1) {
            *caps = (uint64_t) value;
            found = true;
        }
    }
    fclose (f);
    return found;
}

//  ---------------------------------------------------------------------------
//  Self test

void
bus_peer_test (bool verbose)
{
    bus_peer_t peer;
    assert (bus_peer_parse (":0:0:1234", &peer) && peer.uid == 0 && peer.gid == 0 && peer.pid == 1234);
    assert (bus_peer_parse ("/run/bifrost/bus.ipc:1000:100:42", &peer)
         && peer.uid == 1000 && peer.gid == 100 && peer.pid == 42);
    assert (bus_peer_parse (":4294967295:0:4294967295", &peer) && peer.uid == UINT32_MAX);
    //  Not credentials: an IP address, too few fields, junk, overflow, pid 0
    const char *bad [] = { "", "192.0.2.1", ":0:1234", "::", ":0:0:", ":a:0:1", ":0:0:12x",
                           ":4294967296:0:1", ":0:0:0", ":-1:0:5", ":0: 0:5", ":00000000001:0:5", NULL };
    for (int i = 0; bad [i]; i++)
        assert (!bus_peer_parse (bad [i], &peer));
    assert (!bus_peer_parse (NULL, &peer));
    //  Our own executable; a process that is not there
    char exe [PATH_MAX];
    assert (bus_peer_exe ((uint32_t) getpid (), exe, sizeof exe) && exe [0] == '/');
    assert (!bus_peer_exe (0, exe, sizeof exe));
    //  /proc/PID/stat: names with spaces and parentheses, junk
    uint32_t ppid;
    char comm [16];
    assert (bus_peer_stat_parse ("123 (bifrost-tunnel) S 77 123 123 0", &ppid, comm, sizeof comm)
         && ppid == 77 && strcmp (comm, "bifrost-tunnel") == 0);
    assert (bus_peer_stat_parse ("9 (a) b) c) R 1 9", &ppid, comm, sizeof comm) && ppid == 1 && strcmp (comm, "a) b) c") == 0);
    const char *bad_stat [] = { "", "1 bifrost S 1", "1 (x) S", "1 (x) S x", "1 (0123456789abcdefg) S 1", "1 (x)S 1", NULL };
    for (int i = 0; bad_stat [i]; i++)
        assert (!bus_peer_stat_parse (bad_stat [i], &ppid, comm, sizeof comm));
    assert (bus_peer_stat ((uint32_t) getpid (), &ppid, comm, sizeof comm) && ppid == (uint32_t) getppid ());
    uint64_t caps = 0;
    assert (bus_peer_caps ((uint32_t) getpid (), &caps));
    assert (!bus_peer_caps (0, &caps));
    //  The reader, in a child that then confines itself: it still reads the
    //  executable of its parent, which it could not itself (not under
    //  valgrind, which knows neither Landlock's calls nor whose program is whose)
    if (!getenv ("SELFTEST_VALGRIND")) {
        fflush (NULL);
        pid_t child = fork ();
        assert (child >= 0);
        if (child == 0) {
            char err [200], theirs [PATH_MAX];
            if (bus_peer_exe_reader ())
                _exit (1);
            bus_sandbox_t *paths = bus_sandbox_new ();
            int rc = bus_privs_sandbox (paths, err, sizeof err);
            bus_sandbox_destroy (&paths);
            if (rc == 0 && s_exe ((uint32_t) getppid (), theirs, sizeof theirs))
                _exit (2);              //  Landlock did not stop it: the case is void
            if (!bus_peer_exe ((uint32_t) getppid (), theirs, sizeof theirs) || strcmp (theirs, exe))
                _exit (3);
            if (bus_peer_exe (0, theirs, sizeof theirs))
                _exit (4);
            _exit (0);
        }
        int status;
        assert (waitpid (child, &status, 0) == child);
        assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    }
    if (verbose)
        printf ("  peer credentials parsed; own exe %s\n", exe);
}
