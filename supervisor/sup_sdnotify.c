/*  sup_sdnotify: bifrostd's readiness, reload and stop, told to systemd through
    libsystemd's sd_notify (see sup_sdnotify.h for why and when). */
#include "sup_sdnotify.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

struct _sup_sdnotify_t {
    bool ready_sent;            //  READY=1 went out (at start, or after a reload)
    bool reloading;             //  between RELOADING=1 and the READY=1 that ends it
    bool stopping;              //  STOPPING=1 went out
    size_t ready, wanted;       //  the last numbers told
    char status [400];          //  the last STATUS= told
};

sup_sdnotify_t *
sup_sdnotify_new (void)
{
    sup_sdnotify_t *self = (sup_sdnotify_t *) calloc (1, sizeof (sup_sdnotify_t));
    assert (self);
    self->wanted = (size_t) -1;
    return self;
}

void
sup_sdnotify_destroy (sup_sdnotify_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

//  Sends state unless it repeats the last status; sd_notify does nothing
//  (returns 0) without $NOTIFY_SOCKET.
static void
s_send (sup_sdnotify_t *self, const char *state, const char *status)
{
    char text [512];
    snprintf (text, sizeof text, "%s%sSTATUS=%s", state, *state ? "\n" : "", status);
    snprintf (self->status, sizeof self->status, "%s", status);
    sd_notify (0, text);
}

void
sup_sdnotify_progress (sup_sdnotify_t *self, size_t ready, size_t wanted, const char *waiting)
{
    if (self->stopping || self->reloading)
        return;
    char status [400];
    if (ready == wanted)
        snprintf (status, sizeof status, "%zu/%zu instances ready", ready, wanted);
    else
        snprintf (status, sizeof status, "%zu/%zu instances ready; %s", ready, wanted,
                  waiting ? waiting : "starting");
    bool first = ready == wanted && !self->ready_sent;
    if (first)
        self->ready_sent = true;
    if (first || strcmp (status, self->status) != 0)
        s_send (self, first ? "READY=1" : "", status);
    self->ready = ready;
    self->wanted = wanted;
}

void
sup_sdnotify_reloading (sup_sdnotify_t *self)
{
    if (self->stopping)
        return;
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    char state [80];
    snprintf (state, sizeof state, "RELOADING=1\nMONOTONIC_USEC=%llu",
              (unsigned long long) now.tv_sec * 1000000ull + (unsigned long long) now.tv_nsec / 1000);
    self->reloading = true;
    s_send (self, state, "reloading the configuration");
}

void
sup_sdnotify_reloaded (sup_sdnotify_t *self, const char *status)
{
    if (self->stopping || !self->reloading)
        return;
    self->reloading = false;
    s_send (self, "READY=1", status);
}

void
sup_sdnotify_stopping (sup_sdnotify_t *self, const char *why)
{
    if (self->stopping)
        return;
    self->stopping = true;
    s_send (self, "STOPPING=1", why);
}

bool
sup_sdnotify_ready_sent (sup_sdnotify_t *self)
{
    return self->ready_sent;
}

//  ---------------------------------------------------------------------------
//  Self test: a datagram socket plays systemd

static void
s_expect (int fd, const char *text)
{
    char buf [512];
    ssize_t size = recv (fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    assert (size > 0);
    buf [size] = 0;
    if (strcmp (buf, text) != 0)
        fprintf (stderr, "sup_sdnotify: got '%s', expected '%s'\n", buf, text);
    assert (strcmp (buf, text) == 0);
}

static void
s_expect_none (int fd)
{
    char buf [512];
    assert (recv (fd, buf, sizeof buf, MSG_DONTWAIT) < 0);
}

void
sup_sdnotify_test (bool verbose)
{
    //  Without NOTIFY_SOCKET: nothing, and no failure
    char *saved = getenv ("NOTIFY_SOCKET") ? strdup (getenv ("NOTIFY_SOCKET")) : NULL;
    unsetenv ("NOTIFY_SOCKET");
    sup_sdnotify_t *self = sup_sdnotify_new ();
    sup_sdnotify_progress (self, 2, 2, NULL);
    assert (sup_sdnotify_ready_sent (self));
    sup_sdnotify_stopping (self, "bye");
    sup_sdnotify_destroy (&self);

    char dir [] = "/tmp/sup-sdnotify-test-XXXXXX";
    assert (mkdtemp (dir));
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf (addr.sun_path, sizeof addr.sun_path, "%s/notify", dir);
    int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert (fd >= 0);
    assert (bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0);
    setenv ("NOTIFY_SOCKET", addr.sun_path, 1);

    self = sup_sdnotify_new ();
    //  Not all ready: a status, no READY; the same numbers again: nothing
    sup_sdnotify_progress (self, 1, 3, "nat.1: waiting for tunnel");
    s_expect (fd, "STATUS=1/3 instances ready; nat.1: waiting for tunnel");
    sup_sdnotify_progress (self, 1, 3, "nat.1: waiting for tunnel");
    s_expect_none (fd);
    assert (!sup_sdnotify_ready_sent (self));
    //  All ready: READY=1 once; a restart later changes the status only
    sup_sdnotify_progress (self, 3, 3, NULL);
    s_expect (fd, "READY=1\nSTATUS=3/3 instances ready");
    assert (sup_sdnotify_ready_sent (self));
    sup_sdnotify_progress (self, 2, 3, "nat.1: backoff");
    s_expect (fd, "STATUS=2/3 instances ready; nat.1: backoff");
    sup_sdnotify_progress (self, 3, 3, NULL);
    s_expect (fd, "STATUS=3/3 instances ready");
    //  A reload: RELOADING=1 with the clock, then READY=1; progress between is quiet
    sup_sdnotify_reloading (self);
    char buf [512];
    ssize_t size = recv (fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    assert (size > 0);
    buf [size] = 0;
    assert (strncmp (buf, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
    assert (strstr (buf, "\nSTATUS=reloading the configuration"));
    sup_sdnotify_progress (self, 2, 3, "x");
    s_expect_none (fd);
    sup_sdnotify_reloaded (self, "reload: done");
    s_expect (fd, "READY=1\nSTATUS=reload: done");
    //  Stopping: once, and nothing after it
    sup_sdnotify_stopping (self, "SIGTERM: stopping every service");
    s_expect (fd, "STOPPING=1\nSTATUS=SIGTERM: stopping every service");
    sup_sdnotify_stopping (self, "again");
    sup_sdnotify_progress (self, 0, 3, NULL);
    sup_sdnotify_reloading (self);
    s_expect_none (fd);
    sup_sdnotify_destroy (&self);

    close (fd);
    unlink (addr.sun_path);
    rmdir (dir);
    if (saved) {
        setenv ("NOTIFY_SOCKET", saved, 1);
        free (saved);
    }
    else
        unsetenv ("NOTIFY_SOCKET");
    if (verbose)
        printf ("sup_sdnotify: ok\n");
}
