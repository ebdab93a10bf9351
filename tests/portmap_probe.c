/*  portmap_probe: drives libportmap for tests/integration/portmap_upnp.sh.

    portmap_probe map [--proto upnp|natpmp|any] [--lifetime S] [--ext-port P] [--now] [--exit] PORT
        binds UDP 0.0.0.0:PORT and prints "BOUND PORT", then "RECV ip:port TEXT"
        for every datagram that arrives, at any time. SIGUSR1 (or --now) asks for
        a mapping: "MAPPED proto ip:port lifetime S took MS" or "FAILED what:
        message took MS" (--exit: then exit). SIGHUP renews it now
        (portmap_renew): "RENEWED proto ip:port lifetime S took MS" with the
        time since the SIGHUP; renewals at half the lease print the same.
        SIGUSR2 destroys the mapping (deleted at the gateway): "DELETED took
        MS". SIGTERM: destroy and exit.
    portmap_probe stun [--lifetime S] PORT
        a STUN responder that answers every Binding request with the address it
        came from (MAPPED- and XOR-MAPPED-ADDRESS), ignoring CHANGE-REQUEST:
        miniupnpd's ext_perform_stun then sees a 1:1 NAT without filtering,
        which lets it map on a WAN address of a documentation range (it refuses
        "reserved" addresses, 203.0.113.0/24 among them, otherwise).

    Every wait is bounded; stun exits after --lifetime (default 120 s). */
#include "portmap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t s_usr1, s_usr2, s_hup, s_term;

static void
s_signal (int sig)
{
    if (sig == SIGUSR1)
        s_usr1 = 1;
    else
    if (sig == SIGUSR2)
        s_usr2 = 1;
    else
    if (sig == SIGHUP)
        s_hup = 1;
    else
        s_term = 1;
}

static int64_t
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
s_bind (int port)
{
    int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    if (fd < 0 || bind (fd, (struct sockaddr *) &a, sizeof a)) {
        fprintf (stderr, "portmap_probe: bind %d: %s\n", port, strerror (errno));
        exit (1);
    }
    return fd;
}

static void
s_usage (void)
{
    fprintf (stderr, "usage: portmap_probe map [--proto upnp|natpmp|any] [--lifetime S] [--ext-port P] [--now] [--exit] PORT\n"
                     "       portmap_probe stun [--lifetime S] PORT\n");
    exit (2);
}

static int
s_stun (int port, int lifetime)
{
    int fd = s_bind (port);
    printf ("READY %d\n", port);
    fflush (stdout);
    int64_t end = s_now () + lifetime * 1000LL;
    int answered = 0;
    while (!s_term && s_now () < end) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll (&pfd, 1, 200) <= 0)
            continue;
        uint8_t req [548], rep [64];
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        ssize_t n = recvfrom (fd, req, sizeof req, 0, (struct sockaddr *) &from, &len);
        if (n < 20 || req [0] != 0x00 || req [1] != 0x01)
            continue;
        memset (rep, 0, sizeof rep);
        rep [0] = 0x01;
        rep [1] = 0x01;                     //  Binding success response
        rep [3] = 24;                       //  two 12-byte attributes
        memcpy (rep + 4, req + 4, 16);      //  cookie and transaction id
        uint8_t *a = rep + 20;
        uint16_t p = ntohs (from.sin_port);
        uint32_t ip = ntohl (from.sin_addr.s_addr);
        a [1] = 0x01; a [3] = 8;            //  MAPPED-ADDRESS
        a [5] = 1;
        a [6] = (uint8_t) (p >> 8); a [7] = (uint8_t) p;
        a [8] = (uint8_t) (ip >> 24); a [9] = (uint8_t) (ip >> 16); a [10] = (uint8_t) (ip >> 8); a [11] = (uint8_t) ip;
        a += 12;
        a [1] = 0x20; a [3] = 8;            //  XOR-MAPPED-ADDRESS
        a [5] = 1;
        uint16_t xp = p ^ 0x2112;
        uint32_t xip = ip ^ 0x2112A442;
        a [6] = (uint8_t) (xp >> 8); a [7] = (uint8_t) xp;
        a [8] = (uint8_t) (xip >> 24); a [9] = (uint8_t) (xip >> 16); a [10] = (uint8_t) (xip >> 8); a [11] = (uint8_t) xip;
        sendto (fd, rep, 44, 0, (struct sockaddr *) &from, len);
        printf ("ANSWERED %s:%u\n", inet_ntoa (from.sin_addr), p);
        fflush (stdout);
        answered++;
    }
    close (fd);
    return 0;
}

static void
s_report (portmap_t *pm, int64_t started, const char *what)
{
    const portmap_mapping_t *m = portmap_mapping (pm);
    if (m)
        printf ("%s %s %s:%u lifetime %u took %lld%s\n", what, portmap_protocol_name (m->protocol),
                m->external_addr, m->external_port, m->lifetime_s, (long long) (s_now () - started),
                m->external_private ? " (private: another NAT above)" : "");
    else
        printf ("FAILED %s: %s took %lld\n", portmap_err_name (portmap_error_code (pm)),
                portmap_error (pm), (long long) (s_now () - started));
    fflush (stdout);
}

int
main (int argc, char **argv)
{
    if (argc < 3)
        s_usage ();
    const char *mode = argv [1];
    int protocols = PORTMAP_ANY, lifetime = 0, port = -1, ext_port = 0;
    bool now = false, exit_after = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp (argv [i], "--proto") == 0 && i + 1 < argc) {
            const char *p = argv [++i];
            protocols = strcmp (p, "upnp") == 0 ? PORTMAP_UPNP
                      : strcmp (p, "natpmp") == 0 ? PORTMAP_NATPMP
                      : strcmp (p, "any") == 0 ? PORTMAP_ANY : -1;
            if (protocols < 0)
                s_usage ();
        }
        else
        if (strcmp (argv [i], "--lifetime") == 0 && i + 1 < argc)
            lifetime = atoi (argv [++i]);
        else
        if (strcmp (argv [i], "--ext-port") == 0 && i + 1 < argc)
            ext_port = atoi (argv [++i]);
        else
        if (strcmp (argv [i], "--now") == 0)
            now = true;
        else
        if (strcmp (argv [i], "--exit") == 0)
            exit_after = true;
        else
        if (argv [i][0] != '-' && port < 0)
            port = atoi (argv [i]);
        else
            s_usage ();
    }
    if (port <= 0 || port > 65535 || ext_port < 0 || ext_port > 65535)
        s_usage ();
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_signal;               //  no SA_RESTART: poll returns EINTR
    sigaction (SIGUSR1, &sa, NULL);
    sigaction (SIGUSR2, &sa, NULL);
    sigaction (SIGHUP, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGINT, &sa, NULL);
    if (strcmp (mode, "stun") == 0)
        return s_stun (port, lifetime > 0 ? lifetime : 120);
    if (strcmp (mode, "map") != 0)
        s_usage ();

    int fd = s_bind (port);
    printf ("BOUND %d\n", port);
    fflush (stdout);
    portmap_t *pm = NULL;
    int64_t started = 0, renew_asked = 0;
    bool reported = false;
    uint64_t renewals_seen = 0;
    if (now)
        s_usr1 = 1;
    while (!s_term) {
        if (s_usr1) {
            s_usr1 = 0;
            if (!pm) {
                portmap_config_t config = { .local_port = (uint16_t) port, .protocols = protocols,
                                            .lifetime_s = (uint32_t) lifetime,
                                            .external_port = (uint16_t) ext_port };
                char err [256];
                pm = portmap_new (&config, err, sizeof err);
                if (!pm) {
                    printf ("FAILED config: %s took 0\n", err);
                    fflush (stdout);
                    return 1;
                }
                started = s_now ();
                reported = false;
                portmap_start (pm, started);
            }
        }
        if (s_hup) {
            s_hup = 0;
            if (pm && portmap_state (pm) == PORTMAP_MAPPED) {
                renew_asked = s_now ();
                portmap_renew (pm, renew_asked);
            }
        }
        if (s_usr2) {
            s_usr2 = 0;
            if (pm) {
                int64_t t0 = s_now ();
                portmap_destroy (&pm);
                printf ("DELETED took %lld\n", (long long) (s_now () - t0));
                fflush (stdout);
            }
        }
        struct pollfd pfd [2] = { { .fd = fd, .events = POLLIN }, { .fd = pm ? portmap_fd (pm) : -1, .events = POLLIN } };
        int timeout = 200;
        if (pm) {
            int64_t deadline = portmap_next_deadline (pm);
            if (deadline >= 0) {
                int64_t left = deadline - s_now ();
                timeout = left < 0 ? 0 : left < timeout ? (int) left : timeout;
            }
        }
        int rc = poll (pfd, 2, timeout);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc > 0 && (pfd [0].revents & POLLIN)) {
            char buf [256];
            struct sockaddr_in from;
            socklen_t len = sizeof from;
            ssize_t n = recvfrom (fd, buf, sizeof buf - 1, 0, (struct sockaddr *) &from, &len);
            if (n >= 0) {
                while (n > 0 && (buf [n - 1] == '\n' || buf [n - 1] == '\r'))
                    n--;
                buf [n] = 0;
                printf ("RECV %s:%u %s\n", inet_ntoa (from.sin_addr), ntohs (from.sin_port), buf);
                fflush (stdout);
            }
        }
        if (pm) {
            bool changed = false;
            if (rc > 0 && (pfd [1].revents & POLLIN))
                changed |= portmap_handle (pm, s_now ());
            changed |= portmap_tick (pm, s_now ());
            portmap_state_t state = portmap_state (pm);
            uint64_t renewals;
            portmap_counters (pm, NULL, &renewals, NULL);
            if (renewals > renewals_seen) {
                renewals_seen = renewals;
                s_report (pm, renew_asked ? renew_asked : started, "RENEWED");
                renew_asked = 0;
            }
            else
            if (changed && (state == PORTMAP_MAPPED || state == PORTMAP_FAILED)) {
                s_report (pm, started, reported ? "REMAPPED" : "MAPPED");
                reported = true;
                if (exit_after)
                    break;
            }
        }
    }
    if (pm)
        portmap_destroy (&pm);
    close (fd);
    return 0;
}
