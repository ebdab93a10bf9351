/*  bus_identity: a service's own uid (see the header for why and when). */
#include "bus_identity.h"
#include "bus_privs.h"

#include <assert.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct {
    bool active;
    uint32_t uid, gid, base;
} s_identity;

//  The table of schemas/users.def
typedef struct {
    const char *program;
    uint32_t slot;
} s_user_t;

static const s_user_t s_users [] = {
#define BUS_USER(program, slot, doc) { program, slot },
#include "../schemas/users.def"
#undef BUS_USER
};

int64_t
bus_identity_uid_of (uint32_t base, const char *program)
{
    if (!program)
        return -1;
    const char *name = strrchr (program, '/');
    name = name ? name + 1 : program;
    for (size_t i = 0; i < sizeof s_users / sizeof s_users [0]; i++)
        if (strcmp (s_users [i].program, name) == 0)
            return (int64_t) base + s_users [i].slot;
    return -1;
}

int
bus_identity_load (char *err, size_t errsize)
{
    const char *text = getenv (BUS_IDENTITY_ENV);
    if (!text || !*text)
        return 0;
    unsigned long uid, gid, base;
    char tail;
    if (sscanf (text, "%lu:%lu:%lu%c", &uid, &gid, &base, &tail) != 3
    ||  uid == 0 || uid > 0x7fffffffUL || gid == 0 || gid > 0x7fffffffUL || base > 0x7fffffffUL) {
        snprintf (err, errsize, "%s=%.40s: expected uid:gid:base, none of them 0", BUS_IDENTITY_ENV, text);
        return -1;
    }
    bus_identity_set ((uint32_t) uid, (uint32_t) gid, (uint32_t) base);
    return 1;
}

void
bus_identity_set (uint32_t uid, uint32_t gid, uint32_t base)
{
    s_identity.active = true;
    s_identity.uid = uid;
    s_identity.gid = gid;
    s_identity.base = base;
}

bool bus_identity_active (void) { return s_identity.active; }
uint32_t bus_identity_uid (void) { return s_identity.uid; }
uint32_t bus_identity_gid (void) { return s_identity.gid; }
uint32_t bus_identity_base (void) { return s_identity.base; }

int
bus_identity_share (const char *path, bool directory)
{
    if (!s_identity.active)
        return 0;
    if (chown (path, (uid_t) -1, (gid_t) s_identity.gid))
        return -1;
    return chmod (path, directory ? 0710 : 0660);
}

int
bus_identity_join (char *err, size_t errsize)
{
    gid_t gid = (gid_t) s_identity.gid;
    if (s_identity.active && setgroups (1, &gid)) {
        snprintf (err, errsize, "cannot join group %u: %s", (unsigned) gid, strerror (errno));
        return -1;
    }
    return 0;
}

//  The switch itself, in every thread (glibc broadcasts set*id to them all)
static int
s_switch (char *err, size_t errsize)
{
    gid_t gid = (gid_t) s_identity.gid;
    uid_t uid = (uid_t) s_identity.uid;
    if (setgroups (1, &gid) || setresgid (gid, gid, gid) || setresuid (uid, uid, uid)) {
        snprintf (err, errsize, "cannot switch to uid %u, gid %u: %s", (unsigned) uid, (unsigned) gid,
                  strerror (errno));
        return -1;
    }
    uid_t r, e, s;
    if (getresuid (&r, &e, &s) || r != uid || e != uid || s != uid) {
        snprintf (err, errsize, "switched to uid %u but runs as %u/%u/%u", (unsigned) uid,
                  (unsigned) r, (unsigned) e, (unsigned) s);
        return -1;
    }
    return 0;
}

int
bus_identity_switch (char *err, size_t errsize)
{
    if (!s_identity.active || s_identity.uid == 0)
        return 0;
    return s_switch (err, errsize);
}

int
bus_identity_switch_keep (uint64_t keep, char *err, size_t errsize)
{
    if (!s_identity.active || s_identity.uid == 0)
        return bus_privs_drop (keep, true, err, errsize);
    if (prctl (PR_SET_KEEPCAPS, 1, 0, 0, 0)) {
        snprintf (err, errsize, "cannot keep capabilities across the switch: %s", strerror (errno));
        return -1;
    }
    if (s_switch (err, errsize))
        return -1;
    prctl (PR_SET_KEEPCAPS, 0, 0, 0, 0);
    //  The switch cleared the effective set; what is permitted comes back to
    //  be dropped properly (the bounding set needs CAP_SETPCAP)
    if (bus_privs_raise (err, errsize))
        return -1;
    return bus_privs_drop (keep, true, err, errsize);
}

bool
bus_identity_is (uint32_t uid, const char *program)
{
    if (!s_identity.active)
        return false;
    int64_t want = bus_identity_uid_of (s_identity.base, program);
    return want >= 0 && (uint32_t) want == uid;
}

//  ---------------------------------------------------------------------------

void
bus_identity_test (bool verbose)
{
    printf (" * bus_identity: ");
    //  The table: every slot once, inside the range, the group's slot free
    assert (bus_identity_uid_of (61100, "bifrost-nat") == 61105);
    assert (bus_identity_uid_of (61100, "/usr/libexec/bifrost/bifrost-nat") == 61105);
    assert (bus_identity_uid_of (61100, "bifrost-testsvc") == -1);
    assert (bus_identity_uid_of (61100, "nat") == -1);
    for (size_t i = 0; i < sizeof s_users / sizeof s_users [0]; i++) {
        assert (s_users [i].slot > 0 && s_users [i].slot < BUS_IDENTITY_SLOTS);
        for (size_t j = 0; j < i; j++)
            assert (s_users [i].slot != s_users [j].slot);
    }
    //  The environment
    char err [200];
    unsetenv (BUS_IDENTITY_ENV);
    assert (bus_identity_load (err, sizeof err) == 0 && !bus_identity_active ());
    setenv (BUS_IDENTITY_ENV, "0:61100:61100", 1);
    assert (bus_identity_load (err, sizeof err) == -1 && strstr (err, "expected uid:gid:base"));
    setenv (BUS_IDENTITY_ENV, "61105:61100:61100x", 1);
    assert (bus_identity_load (err, sizeof err) == -1);
    setenv (BUS_IDENTITY_ENV, "61105:61100:61100", 1);
    assert (bus_identity_load (err, sizeof err) == 1 && bus_identity_active ());
    assert (bus_identity_uid () == 61105 && bus_identity_gid () == 61100 && bus_identity_base () == 61100);
    assert (bus_identity_is (61105, "bifrost-nat") && !bus_identity_is (61105, "bifrost-tunnel"));
    unsetenv (BUS_IDENTITY_ENV);

    //  The switch, in a child (it is for good): no capability left, the group
    //  its only one, a root-owned file out of reach, and a shared socket
    //  directory still reachable
    if (geteuid () == 0) {
        char dir [] = "/tmp/bus-identity-test-XXXXXX";
        assert (mkdtemp (dir));
        char secret [128], shared [128];
        snprintf (secret, sizeof secret, "%s/secret", dir);
        snprintf (shared, sizeof shared, "%s/shared", dir);
        FILE *file = fopen (secret, "w");
        assert (file);
        fputs ("root only\n", file);
        fclose (file);
        assert (chmod (secret, 0600) == 0);
        assert (mkdir (shared, 0700) == 0);
        pid_t pid = fork ();
        assert (pid >= 0);
        if (pid == 0) {
            bus_identity_set (61105, 61100, 61100);
            if (bus_identity_share (dir, true) || bus_identity_share (shared, true))
                _exit (10);
            if (bus_privs_drop (BUS_CAP (CAP_SETUID) | BUS_CAP (CAP_SETGID), false, err, sizeof err))
                _exit (11);
            if (bus_identity_switch (err, sizeof err))
                _exit (12);
            if (getuid () != 61105 || getgid () != 61100 || bus_privs_effective () != 0)
                _exit (13);
            gid_t groups [4];
            if (getgroups (4, groups) != 1 || groups [0] != 61100)
                _exit (14);
            if (fopen (secret, "r") != NULL || errno != EACCES)
                _exit (15);
            struct stat st;
            if (stat (shared, &st))
                _exit (16);             //  0710 and the group: it may pass
            if (setuid (0) == 0)
                _exit (17);
            _exit (0);
        }
        int status = 0;
        assert (waitpid (pid, &status, 0) == pid);
        if (verbose)
            printf ("(switched child: %d) ", WIFEXITED (status) ? WEXITSTATUS (status) : -1);
        assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);

        //  Keeping one capability across the switch (device's helper)
        pid = fork ();
        assert (pid >= 0);
        if (pid == 0) {
            bus_identity_set (61102, 61100, 61100);
            if (bus_identity_switch_keep (BUS_CAP (CAP_NET_ADMIN), err, sizeof err)) {
                fprintf (stderr, "%s\n", err);
                _exit (20);
            }
            if (getuid () != 61102 || bus_privs_effective () != BUS_CAP (CAP_NET_ADMIN))
                _exit (21);
            if (prctl (PR_CAPBSET_READ, CAP_SETUID, 0, 0, 0) != 0)
                _exit (22);
            _exit (0);
        }
        assert (waitpid (pid, &status, 0) == pid);
        assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
        unlink (secret);
        rmdir (shared);
        rmdir (dir);
    }
    s_identity.active = false;
    printf ("OK\n");
}
