/*  bus_endpoint: run directory and ipc endpoint names. */
#include "bus_endpoint.h"
#include "bus_identity.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

const char *
bus_run_dir (const char *explicit_dir)
{
    if (explicit_dir && *explicit_dir)
        return explicit_dir;
    const char *env = getenv ("BIFROST_RUN_DIR");
    if (env && *env)
        return env;
    return BUS_RUN_DIR_DEFAULT;
}

int
bus_endpoint (char *buf, size_t size, const char *run_dir, const char *name)
{
    struct sockaddr_un sun;
    int n = snprintf (buf, size, "ipc://%s/%s.ipc", run_dir, name);
    if (n < 0 || (size_t) n >= size || (size_t) n - 6 >= sizeof sun.sun_path)
        return -1;
    return 0;
}

//  The run directory holds the sockets of every service, so it must be ours
//  alone. It is opened without following a symlink and checked on the open
//  descriptor (no window between check and chmod): a symlink, something that is
//  not a folder, a folder of another user, or a shared one (sticky or
//  world-writable, as /tmp) is refused and left as it is. run_dir = "/tmp" once
//  turned /tmp into 0700. A missing folder is created 0700 (parents 0755).
int
bus_run_dir_secure (const char *run_dir, char *err, size_t errsize)
{
    char path [BUS_PATH_MAX];
    if (!*run_dir || strlen (run_dir) >= sizeof path) {
        snprintf (err, errsize, "run directory %.*s: expected a path of 1 to %d bytes",
                  (int) sizeof path, run_dir, (int) sizeof path - 1);
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy (path, run_dir);
    int fd = open (path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        for (char *p = path + 1; *p; p++) {
            if (*p == '/') {
                *p = 0;
                if (mkdir (path, 0755) && errno != EEXIST) {
                    snprintf (err, errsize, "run directory %s: cannot create %s: %s", run_dir, path, strerror (errno));
                    return -1;
                }
                *p = '/';
            }
        }
        if (mkdir (path, 0700) && errno != EEXIST) {
            snprintf (err, errsize, "run directory %s: cannot create it: %s", run_dir, strerror (errno));
            return -1;
        }
        fd = open (path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
        int code = errno;
        struct stat lst;
        if (code == ELOOP || (lstat (path, &lst) == 0 && S_ISLNK (lst.st_mode)))
            snprintf (err, errsize, "run directory %s is a symbolic link: refused (give the real folder)", run_dir);
        else
        if (code == ENOTDIR)
            snprintf (err, errsize, "run directory %s is not a directory", run_dir);
        else
            snprintf (err, errsize, "run directory %s: %s", run_dir, strerror (code));
        errno = code;
        return -1;
    }
    struct stat st;
    int rc = -1;
    if (fstat (fd, &st)) {
        snprintf (err, errsize, "run directory %s: %s", run_dir, strerror (errno));
    }
    else
    if (st.st_uid != geteuid ()) {
        snprintf (err, errsize, "run directory %s is not owned by uid %u (its owner is uid %u): refused",
                  run_dir, (unsigned) geteuid (), (unsigned) st.st_uid);
        errno = EPERM;
    }
    else
    if (st.st_mode & (S_ISVTX | S_IWOTH)) {
        snprintf (err, errsize, "run directory %s is a shared folder (mode %04o, sticky or world-writable): "
                  "refused, use a folder of its own such as %s/bifrost", run_dir,
                  (unsigned) (st.st_mode & 07777), run_dir);
        errno = EPERM;
    }
    else
    if (bus_identity_active () && st.st_gid != bus_identity_gid ()
    &&  fchown (fd, (uid_t) -1, (gid_t) bus_identity_gid ()))
        snprintf (err, errsize, "run directory %s: chgrp %u: %s", run_dir, (unsigned) bus_identity_gid (),
                  strerror (errno));
    else
    //  The node's services under their own uids pass through to the sockets
    //  (bus_identity.h); nobody else may even look
    if ((st.st_mode & 07777) != (bus_identity_active () ? 0710 : 0700)
    &&  fchmod (fd, bus_identity_active () ? 0710 : 0700))
        snprintf (err, errsize, "run directory %s: chmod: %s", run_dir, strerror (errno));
    else
        rc = 0;
    int code = errno;
    close (fd);
    errno = code;
    return rc;
}

int
bus_run_dir_prepare (const char *run_dir)
{
    char err [300];
    return bus_run_dir_secure (run_dir, err, sizeof err);
}

void
bus_run_dir_remove (const char *run_dir)
{
    const char *names [] = { "bus", "events", "tap", "control" };
    for (size_t i = 0; i < sizeof names / sizeof names [0]; i++) {
        char path [BUS_PATH_MAX];
        snprintf (path, sizeof path, "%s/%s.ipc", run_dir, names [i]);
        unlink (path);
    }
    //  and the services' directories, when they are empty (bus_pipe)
    DIR *dir = opendir (run_dir);
    struct dirent *entry;
    while (dir && (entry = readdir (dir))) {
        char path [BUS_PATH_MAX + 256];
        if (entry->d_type == DT_DIR && entry->d_name [0] != '.') {
            snprintf (path, sizeof path, "%s/%s", run_dir, entry->d_name);
            rmdir (path);
        }
    }
    if (dir)
        closedir (dir);
    rmdir (run_dir);
}

void
bus_endpoint_test (bool verbose)
{
    char buf [BUS_PATH_MAX];
    assert (bus_endpoint (buf, sizeof buf, "/tmp/x", "bus") == 0);
    assert (strcmp (buf, "ipc:///tmp/x/bus.ipc") == 0);
    char longdir [150];
    memset (longdir, 'a', sizeof longdir - 1);
    longdir [0] = '/';
    longdir [sizeof longdir - 1] = 0;
    assert (bus_endpoint (buf, sizeof buf, longdir, "bus") == -1);
    assert (strcmp (bus_run_dir ("/x"), "/x") == 0);
    char dir [] = "/tmp/bus-endpoint-test-XXXXXX";
    assert (mkdtemp (dir));
    char sub [100];
    snprintf (sub, sizeof sub, "%s/a/b", dir);
    assert (bus_run_dir_prepare (sub) == 0);
    struct stat st;
    assert (stat (sub, &st) == 0 && (st.st_mode & 0777) == 0700);
    //  Not safely ours: refused with a clear message, and left untouched
    char link [BUS_PATH_MAX], err [300];
    snprintf (link, sizeof link, "%s/link", dir);
    assert (symlink (sub, link) == 0);
    assert (chmod (sub, 0755) == 0);
    assert (bus_run_dir_secure (link, err, sizeof err) == -1 && strstr (err, "is a symbolic link"));
    assert (stat (sub, &st) == 0 && (st.st_mode & 0777) == 0755);
    unlink (link);
    assert (chmod (sub, 01777) == 0);
    assert (bus_run_dir_secure (sub, err, sizeof err) == -1 && strstr (err, "sticky or world-writable"));
    assert (stat (sub, &st) == 0 && (st.st_mode & 07777) == 01777);
    assert (chmod (sub, 0757) == 0);
    assert (bus_run_dir_prepare (sub) == -1 && errno == EPERM);
    if (geteuid () == 0) {
        assert (chmod (sub, 0755) == 0 && chown (sub, 65534, 65534) == 0);
        assert (bus_run_dir_secure (sub, err, sizeof err) == -1 && strstr (err, "is not owned by uid 0"));
        assert (stat (sub, &st) == 0 && (st.st_mode & 0777) == 0755);
        assert (chown (sub, 0, 0) == 0);
    }
    assert (bus_run_dir_secure ("", err, sizeof err) == -1 && strstr (err, "expected a path"));
    //  A folder of ours with a looser mode is tightened
    assert (chmod (sub, 0755) == 0);
    assert (bus_run_dir_secure (sub, err, sizeof err) == 0);
    assert (stat (sub, &st) == 0 && (st.st_mode & 07777) == 0700);
    rmdir (sub);
    snprintf (sub, sizeof sub, "%s/a", dir);
    rmdir (sub);
    rmdir (dir);
    if (verbose)
        printf ("bus_endpoint: ok\n");
}
