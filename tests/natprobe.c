/*  natprobe: the UDP/TCP probe of the NAT grid tests (tests/integration/natgrid_lib.sh,
    docs/testing-nat.md). libc only. Three roles:

    natprobe echo [--tcp] [--lifetime S] PORT...
        On a public host: a server on every PORT (UDP, and TCP too with --tcp). To
        each datagram it answers "SEEN ip:port TEXT", the source address and port it
        saw (the mapping a NAT made) and the datagram's text; to each TCP connection
        it writes "SEEN ip:port\n" and closes. A datagram "RELAY ip:port TEXT" makes
        it send TEXT to ip:port from the port it came in on, then answer "OK": the
        test's way to send an unsolicited packet from a given public address and port.
        Prints "READY" once every socket is bound; ends on SIGTERM/SIGINT or after
        --lifetime seconds (default 120), so it can never outlive a test for long.

    natprobe send [--from-port P] [--timeout MS] [--tcp] [--listen MS] SERVER...
        Behind a NAT: from ONE socket bound to port P (0: any) asks each SERVER
        (ip:port, one after the other) what it saw, and prints per server
        "MAPPED server ip:port" or "TIMEOUT server" (--timeout per server, default
        1000 ms, 3 tries). With --tcp each SERVER is asked over a TCP connection
        instead. With --listen MS it then prints "LISTENING" and every datagram that
        reaches the socket as "FROM ip:port TEXT" until one says "STOP" or MS pass.
        Exit 0 when every server answered, 1 when one did not.

    natprobe relay [--timeout MS] VIA TARGET TEXT
        Asks the echo server at VIA to send TEXT to TARGET (RELAY above); exit 0 when
        the server confirmed it sent, 1 otherwise.

    Every wait has a deadline; nothing loops forever. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NATPROBE_VERSION "1"
#define MAX_PORTS 16
#define MAX_SERVERS 32

static volatile sig_atomic_t s_stop = 0;
static bool s_verbose = false;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: natprobe echo [--tcp] [--lifetime S] PORT...\n"
        "       natprobe send [--from-port P] [--timeout MS] [--tcp] [--listen MS] IP:PORT...\n"
        "       natprobe relay [--timeout MS] VIA-IP:PORT TARGET-IP:PORT TEXT\n"
        "       natprobe -h | --version\n"
        "The UDP/TCP probe of the NAT grid tests (docs/testing-nat.md).\n"
        "  -v, --verbose   log every datagram to stderr (before the command)\n");
}

//  Parses "a.b.c.d:port"; false on anything else
static bool
s_parse_addr (const char *text, struct sockaddr_in *addr)
{
    char host [64];
    const char *colon = strrchr (text, ':');
    if (!colon || colon == text || (size_t) (colon - text) >= sizeof host)
        return false;
    memcpy (host, text, (size_t) (colon - text));
    host [colon - text] = 0;
    char *end;
    long port = strtol (colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535)
        return false;
    memset (addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons ((uint16_t) port);
    return inet_pton (AF_INET, host, &addr->sin_addr) == 1;
}

static const char *
s_fmt (const struct sockaddr_in *addr, char *buf, size_t size)
{
    char host [INET_ADDRSTRLEN];
    inet_ntop (AF_INET, &addr->sin_addr, host, sizeof host);
    snprintf (buf, size, "%s:%u", host, ntohs (addr->sin_port));
    return buf;
}

static bool
s_same (const struct sockaddr_in *a, const struct sockaddr_in *b)
{
    return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

static int
s_socket (int type, uint16_t port)
{
    int fd = socket (AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror ("natprobe: socket");
        return -1;
    }
    int on = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons (port) };
    if (bind (fd, (struct sockaddr *) &any, sizeof any) < 0) {
        fprintf (stderr, "natprobe: bind port %u: %s\n", port, strerror (errno));
        close (fd);
        return -1;
    }
    return fd;
}

//  Reads a port number argument; -1 when it is not one
static long
s_number (const char *text, long min, long max)
{
    char *end;
    errno = 0;
    long value = strtol (text, &end, 10);
    if (errno || *end || end == text || value < min || value > max)
        return -1;
    return value;
}

//  ---------------------------------------------------------------------------
//  echo

static void
s_echo_udp (int fd)
{
    char buf [1500], reply [1600], from_text [32];
    struct sockaddr_in from;
    socklen_t fromlen = sizeof from;
    ssize_t n = recvfrom (fd, buf, sizeof buf - 1, MSG_DONTWAIT, (struct sockaddr *) &from, &fromlen);
    if (n < 0)
        return;
    buf [n] = 0;
    s_fmt (&from, from_text, sizeof from_text);
    if (strncmp (buf, "RELAY ", 6) == 0) {
        char *target_text = buf + 6;
        char *text = strchr (target_text, ' ');
        struct sockaddr_in target;
        if (text)
            *text++ = 0;
        if (!text || !s_parse_addr (target_text, &target)) {
            sendto (fd, "BAD", 3, 0, (struct sockaddr *) &from, fromlen);
            return;
        }
        bool sent = sendto (fd, text, strlen (text), 0, (struct sockaddr *) &target, sizeof target) >= 0;
        if (s_verbose)
            fprintf (stderr, "natprobe echo: relay '%s' to %s for %s: %s\n",
                     text, target_text, from_text, sent ? "sent" : strerror (errno));
        sendto (fd, sent ? "OK" : "FAIL", sent ? 2 : 4, 0, (struct sockaddr *) &from, fromlen);
        return;
    }
    int len = snprintf (reply, sizeof reply, "SEEN %s %s", from_text, buf);
    sendto (fd, reply, (size_t) len, 0, (struct sockaddr *) &from, fromlen);
    if (s_verbose)
        fprintf (stderr, "natprobe echo: %s\n", reply);
}

static void
s_echo_tcp (int listener)
{
    struct sockaddr_in from;
    socklen_t fromlen = sizeof from;
    int fd = accept4 (listener, (struct sockaddr *) &from, &fromlen, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    char reply [64], from_text [32];
    int len = snprintf (reply, sizeof reply, "SEEN %s\n", s_fmt (&from, from_text, sizeof from_text));
    if (write (fd, reply, (size_t) len) < 0 && s_verbose)
        perror ("natprobe echo: write");
    close (fd);
}

static int
s_echo (int argc, char **argv)
{
    bool tcp = false;
    long lifetime = 120;
    int nports = 0;
    uint16_t ports [MAX_PORTS];
    for (int i = 0; i < argc; i++) {
        if (strcmp (argv [i], "--tcp") == 0)
            tcp = true;
        else
        if (strcmp (argv [i], "--lifetime") == 0 && i + 1 < argc) {
            if ((lifetime = s_number (argv [++i], 1, 86400)) < 0)
                goto usage;
        }
        else {
            long port = s_number (argv [i], 1, 65535);
            if (port < 0 || nports == MAX_PORTS)
                goto usage;
            ports [nports++] = (uint16_t) port;
        }
    }
    if (nports == 0)
        goto usage;

    struct pollfd fds [2 * MAX_PORTS];
    bool is_tcp [2 * MAX_PORTS];
    int nfds = 0;
    for (int i = 0; i < nports; i++) {
        if ((fds [nfds].fd = s_socket (SOCK_DGRAM, ports [i])) < 0)
            return 1;
        is_tcp [nfds++] = false;
        printf ("LISTEN udp %u\n", ports [i]);
        if (tcp) {
            if ((fds [nfds].fd = s_socket (SOCK_STREAM, ports [i])) < 0
            ||  listen (fds [nfds].fd, 16) < 0)
                return 1;
            is_tcp [nfds++] = true;
            printf ("LISTEN tcp %u\n", ports [i]);
        }
    }
    for (int i = 0; i < nfds; i++)
        fds [i].events = POLLIN;
    printf ("READY\n");

    int64_t deadline = s_now_ms () + lifetime * 1000;
    while (!s_stop) {
        int64_t left = deadline - s_now_ms ();
        if (left <= 0)
            break;
        int rc = poll (fds, (nfds_t) nfds, left > 1000 ? 1000 : (int) left);
        if (rc < 0 && errno != EINTR) {
            perror ("natprobe echo: poll");
            return 1;
        }
        for (int i = 0; rc > 0 && i < nfds; i++)
            if (fds [i].revents & POLLIN) {
                if (is_tcp [i])
                    s_echo_tcp (fds [i].fd);
                else
                    s_echo_udp (fds [i].fd);
            }
    }
    for (int i = 0; i < nfds; i++)
        close (fds [i].fd);
    return 0;
usage:
    s_usage (stderr);
    return 2;
}

//  ---------------------------------------------------------------------------
//  send

//  Waits up to timeout_ms for a datagram on fd; 1 with it in buf, 0 on timeout
static int
s_recv (int fd, char *buf, size_t size, struct sockaddr_in *from, int64_t deadline)
{
    while (!s_stop) {
        int64_t left = deadline - s_now_ms ();
        if (left <= 0)
            return 0;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int rc = poll (&pfd, 1, (int) left);
        if (rc < 0 && errno != EINTR)
            return 0;
        if (rc <= 0)
            continue;
        socklen_t fromlen = sizeof *from;
        ssize_t n = recvfrom (fd, buf, size - 1, MSG_DONTWAIT, (struct sockaddr *) from, &fromlen);
        if (n < 0)
            continue;
        buf [n] = 0;
        return 1;
    }
    return 0;
}

//  Asks one server over UDP; prints MAPPED or TIMEOUT
static bool
s_ask_udp (int fd, const struct sockaddr_in *server, const char *server_text, int timeout_ms, int seq)
{
    char request [32], buf [1600], from_text [32];
    snprintf (request, sizeof request, "PROBE %d", seq);
    for (int attempt = 0; attempt < 3 && !s_stop; attempt++) {
        if (sendto (fd, request, strlen (request), 0, (const struct sockaddr *) server, sizeof *server) < 0
        &&  s_verbose)
            fprintf (stderr, "natprobe send: to %s: %s\n", server_text, strerror (errno));
        int64_t deadline = s_now_ms () + timeout_ms / 3;
        struct sockaddr_in from;
        while (s_recv (fd, buf, sizeof buf, &from, deadline)) {
            //  The answer to this request, from this server: "SEEN ip:port PROBE seq"
            char mapped [64];
            if (s_same (&from, server)
            &&  sscanf (buf, "SEEN %63s", mapped) == 1
            &&  strstr (buf, request)) {
                printf ("MAPPED %s %s\n", server_text, mapped);
                return true;
            }
            //  Anything else that reaches the socket is reported, not lost
            printf ("FROM %s %s\n", s_fmt (&from, from_text, sizeof from_text), buf);
        }
    }
    printf ("TIMEOUT %s\n", server_text);
    return false;
}

//  Asks one server over TCP (from port P when set); prints MAPPED or TIMEOUT
static bool
s_ask_tcp (uint16_t from_port, const struct sockaddr_in *server, const char *server_text, int timeout_ms)
{
    int fd = s_socket (SOCK_STREAM, from_port);
    if (fd < 0)
        return false;
    fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
    int64_t deadline = s_now_ms () + timeout_ms;
    bool answered = false;
    char buf [128];
    size_t have = 0;
    if (connect (fd, (const struct sockaddr *) server, sizeof *server) < 0 && errno != EINPROGRESS)
        goto done;
    while (!s_stop && have < sizeof buf - 1) {
        int64_t left = deadline - s_now_ms ();
        if (left <= 0)
            break;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll (&pfd, 1, (int) left) <= 0)
            continue;
        ssize_t n = read (fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0)
            break;
        have += (size_t) n;
        buf [have] = 0;
        char mapped [64];
        if (strchr (buf, '\n') && sscanf (buf, "SEEN %63s", mapped) == 1) {
            printf ("MAPPED %s %s\n", server_text, mapped);
            answered = true;
            break;
        }
    }
done:
    if (!answered)
        printf ("TIMEOUT %s\n", server_text);
    close (fd);
    return answered;
}

static int
s_send (int argc, char **argv)
{
    long from_port = 0, timeout_ms = 1000, listen_ms = 0;
    bool tcp = false;
    int nservers = 0;
    struct sockaddr_in servers [MAX_SERVERS];
    const char *server_text [MAX_SERVERS];
    for (int i = 0; i < argc; i++) {
        if (strcmp (argv [i], "--from-port") == 0 && i + 1 < argc) {
            if ((from_port = s_number (argv [++i], 0, 65535)) < 0)
                goto usage;
        }
        else
        if (strcmp (argv [i], "--timeout") == 0 && i + 1 < argc) {
            if ((timeout_ms = s_number (argv [++i], 30, 60000)) < 0)
                goto usage;
        }
        else
        if (strcmp (argv [i], "--listen") == 0 && i + 1 < argc) {
            if ((listen_ms = s_number (argv [++i], 1, 60000)) < 0)
                goto usage;
        }
        else
        if (strcmp (argv [i], "--tcp") == 0)
            tcp = true;
        else {
            if (nservers == MAX_SERVERS || !s_parse_addr (argv [i], &servers [nservers]))
                goto usage;
            server_text [nservers++] = argv [i];
        }
    }
    if (nservers == 0 || (tcp && listen_ms))
        goto usage;

    int answered = 0;
    if (tcp) {
        for (int i = 0; i < nservers; i++)
            answered += s_ask_tcp ((uint16_t) from_port, &servers [i], server_text [i], (int) timeout_ms);
        return answered == nservers ? 0 : 1;
    }
    int fd = s_socket (SOCK_DGRAM, (uint16_t) from_port);
    if (fd < 0)
        return 1;
    struct sockaddr_in local;
    socklen_t locallen = sizeof local;
    char text [32], buf [1600];
    getsockname (fd, (struct sockaddr *) &local, &locallen);
    printf ("LOCAL %u\n", ntohs (local.sin_port));
    for (int i = 0; i < nservers; i++)
        answered += s_ask_udp (fd, &servers [i], server_text [i], (int) timeout_ms, i + 1);

    if (listen_ms) {
        printf ("LISTENING\n");
        int64_t deadline = s_now_ms () + listen_ms;
        struct sockaddr_in from;
        while (s_recv (fd, buf, sizeof buf, &from, deadline)) {
            printf ("FROM %s %s\n", s_fmt (&from, text, sizeof text), buf);
            //  After STOP, a 200 ms linger for a packet still on its way
            if (strcmp (buf, "STOP") == 0) {
                int64_t linger = s_now_ms () + 200;
                deadline = linger < deadline ? linger : deadline;
            }
        }
        printf ("DONE\n");
    }
    close (fd);
    return answered == nservers ? 0 : 1;
usage:
    s_usage (stderr);
    return 2;
}

//  ---------------------------------------------------------------------------
//  relay

static int
s_relay (int argc, char **argv)
{
    long timeout_ms = 1000;
    const char *args [3];
    int nargs = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp (argv [i], "--timeout") == 0 && i + 1 < argc) {
            if ((timeout_ms = s_number (argv [++i], 30, 60000)) < 0)
                goto usage;
        }
        else
        if (nargs < 3)
            args [nargs++] = argv [i];
        else
            goto usage;
    }
    struct sockaddr_in via, target;
    if (nargs != 3 || !s_parse_addr (args [0], &via) || !s_parse_addr (args [1], &target)
    ||  strchr (args [2], ' ') || strlen (args [2]) > 200)
        goto usage;
    int fd = s_socket (SOCK_DGRAM, 0);
    if (fd < 0)
        return 1;
    char request [300], buf [1600];
    snprintf (request, sizeof request, "RELAY %s %s", args [1], args [2]);
    bool confirmed = false;
    for (int attempt = 0; attempt < 3 && !confirmed && !s_stop; attempt++) {
        sendto (fd, request, strlen (request), 0, (struct sockaddr *) &via, sizeof via);
        int64_t deadline = s_now_ms () + timeout_ms / 3;
        struct sockaddr_in from;
        while (!confirmed && s_recv (fd, buf, sizeof buf, &from, deadline))
            confirmed = s_same (&from, &via) && strcmp (buf, "OK") == 0;
    }
    close (fd);
    if (!confirmed)
        fprintf (stderr, "natprobe relay: %s did not confirm\n", args [0]);
    return confirmed ? 0 : 1;
usage:
    s_usage (stderr);
    return 2;
}

int
main (int argc, char **argv)
{
    setvbuf (stdout, NULL, _IOLBF, 0);
    struct sigaction sa = { .sa_handler = s_on_signal };
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGINT, &sa, NULL);
    signal (SIGPIPE, SIG_IGN);

    int arg = 1;
    for (; arg < argc && argv [arg][0] == '-'; arg++) {
        if (strcmp (argv [arg], "-h") == 0 || strcmp (argv [arg], "--help") == 0) {
            s_usage (stdout);
            return 0;
        }
        else
        if (strcmp (argv [arg], "--version") == 0) {
            printf ("natprobe %s\n", NATPROBE_VERSION);
            return 0;
        }
        else
        if (strcmp (argv [arg], "-v") == 0 || strcmp (argv [arg], "--verbose") == 0)
            s_verbose = true;
        else {
            s_usage (stderr);
            return 2;
        }
    }
    if (arg == argc) {
        s_usage (stderr);
        return 2;
    }
    const char *command = argv [arg++];
    if (strcmp (command, "echo") == 0)
        return s_echo (argc - arg, argv + arg);
    if (strcmp (command, "send") == 0)
        return s_send (argc - arg, argv + arg);
    if (strcmp (command, "relay") == 0)
        return s_relay (argc - arg, argv + arg);
    s_usage (stderr);
    return 2;
}
