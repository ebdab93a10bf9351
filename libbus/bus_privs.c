/*  bus_privs: a service keeps only the capabilities of its row in DESIGN.md
    (why and when: bus_privs.h). */
#include "bus_privs.h"

#include <assert.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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
//  Self test: each case in a child process, so the test keeps what it has.

//  In a child: drops to keep, then checks every set; exit status 0 when right.
static int
s_child_drop (uint64_t keep, bool hide)
{
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

static int
s_in_child (uint64_t keep, bool hide)
{
    fflush (NULL);
    pid_t pid = fork ();
    assert (pid >= 0);
    if (pid == 0)
        _exit (s_child_drop (keep, hide));
    int status;
    assert (waitpid (pid, &status, 0) == pid);
    return WIFEXITED (status) ? WEXITSTATUS (status) : 100;
}

void
bus_privs_test (bool verbose)
{
    printf (" * bus_privs: ");
    int nnp = prctl (PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    uint64_t effective = bus_privs_effective ();
    if (verbose)
        printf ("\n   effective capabilities here: %016llx", (unsigned long long) bus_privs_effective ());
    //  Nothing kept (nat, crypto, router), not dumpable (crypto)
    assert (s_in_child (0, true) == 0);
    //  One kept (device: CAP_NET_ADMIN), dumpable
    assert (s_in_child (BUS_CAP (CAP_NET_ADMIN), false) == 0);
    //  Two kept, one of which may not be held at all (not root): only what is held
    assert (s_in_child (BUS_CAP (CAP_NET_ADMIN) | BUS_CAP (CAP_NET_BIND_SERVICE), true) == 0);
    //  Here, unchanged
    assert (prctl (PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == nnp);
    assert (bus_privs_effective () == effective);
    printf ("OK\n");
}
