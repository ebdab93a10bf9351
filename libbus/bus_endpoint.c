/*  bus_endpoint: run directory and ipc endpoint names. */
#include "bus_endpoint.h"

#include <assert.h>
#include <errno.h>
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

int
bus_run_dir_prepare (const char *run_dir)
{
    char path [BUS_PATH_MAX];
    if (strlen (run_dir) >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy (path, run_dir);
    for (char *p = path + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir (path, 0755) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir (path, 0700) && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat (path, &st) || !S_ISDIR (st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return chmod (path, 0700);
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
    rmdir (sub);
    snprintf (sub, sizeof sub, "%s/a", dir);
    rmdir (sub);
    rmdir (dir);
    if (verbose)
        printf ("bus_endpoint: ok\n");
}
