/*  bus_ready: the child side of the readiness protocol. */
#include "bus_ready.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
bus_ready_fd (void)
{
    const char *text = getenv (BUS_READY_ENV);
    if (!text || !*text)
        return -1;
    char *end;
    long fd = strtol (text, &end, 10);
    if (*end || fd < 3 || fd > 65535)
        return -1;
    struct stat st;
    if (fstat ((int) fd, &st) || !S_ISFIFO (st.st_mode))
        return -1;
    int flags = fcntl ((int) fd, F_GETFL);
    if (flags >= 0)
        fcntl ((int) fd, F_SETFL, flags | O_NONBLOCK);
    return (int) fd;
}

static void
s_write (int fd, const char *line)
{
    if (fd < 0)
        return;
    ssize_t rc = write (fd, line, strlen (line));
    (void) rc;
}

void bus_ready_notify (int fd) { s_write (fd, BUS_READY_LINE); }
void bus_ready_heartbeat (int fd) { s_write (fd, BUS_HEARTBEAT_LINE); }

void
bus_ready_test (bool verbose)
{
    int fds [2];
    assert (pipe (fds) == 0);
    if (fds [1] < 3) {
        int moved = fcntl (fds [1], F_DUPFD, 3);
        close (fds [1]);
        fds [1] = moved;
    }
    char text [16];
    snprintf (text, sizeof text, "%d", fds [1]);
    setenv (BUS_READY_ENV, text, 1);
    int fd = bus_ready_fd ();
    assert (fd == fds [1]);
    bus_ready_notify (fd);
    bus_ready_heartbeat (fd);
    char buf [32] = { 0 };
    assert (read (fds [0], buf, sizeof buf - 1) == 9);
    assert (strcmp (buf, "READY\nHB\n") == 0);
    setenv (BUS_READY_ENV, "banana", 1);
    assert (bus_ready_fd () == -1);
    setenv (BUS_READY_ENV, "0", 1);
    assert (bus_ready_fd () == -1);
    unsetenv (BUS_READY_ENV);
    assert (bus_ready_fd () == -1);
    close (fds [0]);
    close (fds [1]);
    if (verbose)
        printf ("bus_ready: ok\n");
}
