/*  nat_resolver: getaddrinfo off the event loop (see nat_resolver.h for why). */
#include "nat_resolver.h"
#include "bus_clock.h"
#include "nat_endpoint.h"
#include "nat_udp.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct _nat_resolver_t {
    int rd;                     //  the loop reads results here
    int wr;                     //  lookups write them here (each through its own dup)
    size_t pending;
};

//  Lookup threads alive in this process (tests wait for them to end)
static atomic_int s_threads_alive;

typedef struct {
    int fd;
    uint64_t cookie;
    uint16_t port;
    char host [NAT_HOST_MAX];
} s_job_t;

static void
s_resolve (const char *host, uint16_t port, nat_resolver_result_t *result)
{
    //  No AI_ADDRCONFIG: it hides ::1 and 127.0.0.1 on hosts without a non-loopback
    //  address of that family, and the socket can send to both families anyway.
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM,
                              .ai_flags = AI_NUMERICSERV };
    char service [8];
    snprintf (service, sizeof service, "%u", port);
    struct addrinfo *list = NULL;
    int rc = getaddrinfo (host, service, &hints, &list);
    if (rc) {
        result->error = rc;
        snprintf (result->message, sizeof result->message, "cannot resolve %.80s: %s", host,
                  rc == EAI_SYSTEM ? strerror (errno) : gai_strerror (rc));
        return;
    }
    for (struct addrinfo *ai = list; ai && result->count < NAT_RESOLVE_MAX_ADDRS; ai = ai->ai_next) {
        nat_addr_t addr;
        if (nat_addr_set_sockaddr (&addr, ai->ai_addr, ai->ai_addrlen))
            continue;
        bool seen = false;
        for (size_t i = 0; i < result->count; i++)
            seen |= nat_addr_eq (&result->addrs [i], &addr);
        if (!seen)
            result->addrs [result->count++] = addr;
    }
    freeaddrinfo (list);
    if (result->count == 0) {
        result->error = EAI_NODATA;
        snprintf (result->message, sizeof result->message, "%.80s has no IPv4 or IPv6 address", host);
    }
}

//  RFC 6761 6.4: names under .invalid get a negative answer without any query
static bool
s_is_invalid_tld (const char *host)
{
    size_t len = strlen (host);
    if (len && host [len - 1] == '.')
        len--;
    return (len == 7 && strncasecmp (host, "invalid", 7) == 0)
        || (len > 7 && strncasecmp (host + len - 8, ".invalid", 8) == 0);
}

static void *
s_job_run (void *arg)
{
    s_job_t *job = arg;
    nat_resolver_result_t result = { .cookie = job->cookie };
    s_resolve (job->host, job->port, &result);
    //  Refused when the resolver was destroyed meanwhile: nothing to do then
    if (send (job->fd, &result, sizeof result, MSG_NOSIGNAL) < 0) {}
    close (job->fd);
    free (job);
    atomic_fetch_sub (&s_threads_alive, 1);
    return NULL;
}

nat_resolver_t *
nat_resolver_new (void)
{
    int sv [2];
    if (socketpair (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv))
        return NULL;
    nat_resolver_t *self = calloc (1, sizeof *self);
    assert (self);
    self->rd = sv [0];
    self->wr = sv [1];
    return self;
}

void
nat_resolver_destroy (nat_resolver_t **self_p)
{
    if (self_p && *self_p) {
        nat_resolver_t *self = *self_p;
        close (self->rd);
        close (self->wr);
        free (self);
        *self_p = NULL;
    }
}

int
nat_resolver_fd (nat_resolver_t *self)
{
    return self->rd;
}

size_t
nat_resolver_pending (nat_resolver_t *self)
{
    return self->pending;
}

int
nat_resolver_request (nat_resolver_t *self, const char *host, uint16_t port, uint64_t cookie)
{
    if (strlen (host) >= NAT_HOST_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (self->pending >= NAT_RESOLVER_MAX_INFLIGHT) {
        errno = EAGAIN;
        return -1;
    }
    if (s_is_invalid_tld (host)) {
        nat_resolver_result_t result = { .cookie = cookie, .error = EAI_NONAME };
        snprintf (result.message, sizeof result.message,
                  "cannot resolve %.80s: .invalid names never resolve (RFC 6761)", host);
        if (send (self->wr, &result, sizeof result, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
            return -1;
        self->pending++;
        return 0;
    }
    s_job_t *job = calloc (1, sizeof *job);
    if (!job)
        return -1;
    job->cookie = cookie;
    job->port = port;
    strcpy (job->host, host);
    job->fd = fcntl (self->wr, F_DUPFD_CLOEXEC, 0);
    if (job->fd < 0) {
        free (job);
        return -1;
    }
    //  Detached, with a small stack: it only runs getaddrinfo
    pthread_attr_t attr;
    pthread_attr_init (&attr);
    pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize (&attr, 256 * 1024);
    pthread_t thread;
    atomic_fetch_add (&s_threads_alive, 1);
    int rc = pthread_create (&thread, &attr, s_job_run, job);
    pthread_attr_destroy (&attr);
    if (rc) {
        atomic_fetch_sub (&s_threads_alive, 1);
        close (job->fd);
        free (job);
        errno = rc;
        return -1;
    }
    self->pending++;
    return 0;
}

bool
nat_resolver_next (nat_resolver_t *self, nat_resolver_result_t *result)
{
    ssize_t n = recv (self->rd, result, sizeof *result, MSG_DONTWAIT);
    if (n != (ssize_t) sizeof *result)
        return false;
    if (self->pending)
        self->pending--;
    result->message [sizeof result->message - 1] = 0;
    if (result->count > NAT_RESOLVE_MAX_ADDRS)
        result->count = NAT_RESOLVE_MAX_ADDRS;
    return true;
}

//  --------------------------------------------------------------------------
//  Self test

//  Waits (with a deadline) for the next result, as an event loop would
static bool
s_wait (nat_resolver_t *self, nat_resolver_result_t *result, int timeout_ms)
{
    int64_t deadline = bus_clock_ms () + timeout_ms;
    while (bus_clock_ms () < deadline) {
        if (nat_resolver_next (self, result))
            return true;
        poll (&(struct pollfd) { .fd = nat_resolver_fd (self), .events = POLLIN }, 1, 50);
    }
    return false;
}

void
nat_resolver_test (bool verbose)
{
    //  In a private namespace nothing can leave the machine: a DNS query for a name
    //  not in /etc/hosts fails at once with "network unreachable"
    bool isolated = nat_udp_test_netns () == 0;
    nat_resolver_t *resolver = nat_resolver_new ();
    assert (resolver);
    nat_resolver_result_t result;
    assert (!nat_resolver_next (resolver, &result));

    //  localhost comes from /etc/hosts, with the port we asked for
    assert (nat_resolver_request (resolver, "localhost", 51820, 42) == 0);
    assert (nat_resolver_pending (resolver) == 1);
    assert (s_wait (resolver, &result, 5000));
    assert (nat_resolver_pending (resolver) == 0);
    assert (result.cookie == 42 && result.error == 0 && result.count >= 1);
    bool loopback = false;
    for (size_t i = 0; i < result.count; i++) {
        char text [NAT_ADDR_TEXT_MAX];
        nat_addr_format (&result.addrs [i], text, sizeof text);
        if (verbose)
            printf ("  localhost -> %s\n", text);
        assert (nat_addr_port (&result.addrs [i]) == 51820);
        loopback |= strcmp (text, "127.0.0.1:51820") == 0 || strcmp (text, "[::1]:51820") == 0;
    }
    assert (loopback);

    //  .invalid fails fast with a clear message, through the same fd
    int64_t start = bus_clock_ms ();
    assert (nat_resolver_request (resolver, "peer.bifrost.invalid", 1, 7) == 0);
    assert (s_wait (resolver, &result, 5000));
    assert (bus_clock_ms () - start < 1000);
    assert (result.cookie == 7 && result.error != 0 && result.count == 0);
    assert (strstr (result.message, "cannot resolve peer.bifrost.invalid"));
    if (verbose)
        printf ("  %s\n", result.message);
    assert (s_is_invalid_tld ("INVALID.") && s_is_invalid_tld ("a.Invalid"));
    assert (!s_is_invalid_tld ("notinvalid") && !s_is_invalid_tld ("invalid.example"));

    //  A real lookup failure through getaddrinfo, only where it cannot leave the
    //  machine: fast and with the resolver's reason
    if (isolated) {
        start = bus_clock_ms ();
        assert (nat_resolver_request (resolver, "nat-selftest.example", 1, 8) == 0);
        assert (s_wait (resolver, &result, 15000));
        assert (result.cookie == 8 && result.error != 0 && result.count == 0);
        if (verbose)
            printf ("  %s (%lld ms)\n", result.message, (long long) (bus_clock_ms () - start));
    }

    //  Bounded: no more than NAT_RESOLVER_MAX_INFLIGHT lookups at once
    for (int i = 0; i < NAT_RESOLVER_MAX_INFLIGHT; i++)
        assert (nat_resolver_request (resolver, "x.invalid", 1, (uint64_t) i) == 0);
    assert (nat_resolver_request (resolver, "localhost", 1, 99) == -1 && errno == EAGAIN);
    for (int i = 0; i < NAT_RESOLVER_MAX_INFLIGHT; i++)
        assert (s_wait (resolver, &result, 1000));
    assert (nat_resolver_pending (resolver) == 0);
    char longname [300];
    memset (longname, 'a', sizeof longname - 1);
    longname [sizeof longname - 1] = 0;
    assert (nat_resolver_request (resolver, longname, 1, 1) == -1 && errno == ENAMETOOLONG);

    //  Destroyed with a lookup in flight: the thread finishes on its own
    assert (nat_resolver_request (resolver, "localhost", 1, 5) == 0);
    nat_resolver_destroy (&resolver);
    assert (resolver == NULL);
    int64_t deadline = bus_clock_ms () + 5000;
    while (atomic_load (&s_threads_alive) > 0 && bus_clock_ms () < deadline)
        poll (NULL, 0, 10);
    assert (atomic_load (&s_threads_alive) == 0);
}
