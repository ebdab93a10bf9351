/*  seqstream: a sequenced UDP stream through whatever path carries it (the
    tunnel between two nodes, in the tests), to say what a path change cost:
    lost, duplicated, reordered, and the longest pause. ping says a path works;
    only a steady numbered stream shows the packets a move from the relay to a
    direct path drops or doubles (issue 15 asks for 0 lost, 0 duplicated at
    1,000 packets/s).

        seqstream recv --bind IP:PORT [--seconds S] [--gap-report MS] [--ready FILE] [--json]
                       (JSON: seqstat's members, and start_wall_ms: the stream's
                       start in ms of the wall clock)
        seqstream send --to IP:PORT --pps R --seconds S [--size N]

    The sender numbers its datagrams and puts in each its start time (the
    monotonic clock, which every namespace shares); after the last one it sends
    an end marker with the count and the last send time, five times. The receiver ends at the marker
    (plus 500 ms for stragglers) or after --seconds, and prints what it saw
    (seqstat.h). Exit: 0 the stream was received (loss or not, the caller
    judges), 1 nothing arrived or no end marker, 2 bad arguments. */
#include "seqstat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_MAGIC         0x42534551u     //  "BSEQ"
#define S_HEADER        28              //  magic, sequence, start time, send time
#define S_END           UINT64_MAX      //  the end marker's sequence; its send time is the count
#define S_SIZE_MAX      1400
#define S_EXPECT_MAX    (16u << 20)     //  sequence numbers the receiver tracks

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
s_parse_addr (const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    char host [64];
    const char *colon = strrchr (text, ':');
    if (!colon || colon == text || (size_t) (colon - text) >= sizeof host)
        return -1;
    char *end;
    long port = strtol (colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535)
        return -1;
    memcpy (host, text, (size_t) (colon - text));
    host [colon - text] = 0;
    char *h = host;
    if (*h == '[' && h [strlen (h) - 1] == ']') {
        h [strlen (h) - 1] = 0;
        h++;
    }
    memset (ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *) ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *) ss;
    if (inet_pton (AF_INET, h, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons ((uint16_t) port);
        *len = sizeof *v4;
        return 0;
    }
    if (inet_pton (AF_INET6, h, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons ((uint16_t) port);
        *len = sizeof *v6;
        return 0;
    }
    return -1;
}

static void
s_put64 (uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p [i] = (uint8_t) v;
}

static uint64_t
s_get64 (const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p [i];
    return v;
}

static void
s_header (uint8_t *buf, uint64_t seq, int64_t start_us, uint64_t last)
{
    buf [0] = (uint8_t) (S_MAGIC >> 24);
    buf [1] = (uint8_t) (S_MAGIC >> 16);
    buf [2] = (uint8_t) (S_MAGIC >> 8);
    buf [3] = (uint8_t) S_MAGIC;
    s_put64 (buf + 4, seq);
    s_put64 (buf + 12, (uint64_t) start_us);
    s_put64 (buf + 20, last);
}

static int
s_send (const struct sockaddr_storage *to, socklen_t to_len, double pps, double seconds, int size)
{
    int fd = socket (to->ss_family, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror ("seqstream send: socket");
        return 1;
    }
    uint8_t buf [S_SIZE_MAX];
    memset (buf, 0, sizeof buf);
    int64_t period = (int64_t) (1e6 / pps);
    int64_t start = s_now_us ();
    int64_t end = start + (int64_t) (seconds * 1e6);
    int64_t next = start;
    uint64_t seq = 0, failed = 0;
    int64_t last_send = start;
    while (next < end) {
        int64_t now = s_now_us ();
        if (now < next) {
            struct timespec ts = { 0, (long) (next - now) * 1000 };
            nanosleep (&ts, NULL);
            continue;
        }
        //  Late (a busy machine): catch up at most 10 at once, then start over
        for (int k = 0; k < 10 && next <= now && next < end; k++, next += period) {
            last_send = s_now_us ();
            s_header (buf, seq, start, (uint64_t) last_send);
            if (sendto (fd, buf, (size_t) size, 0, (const struct sockaddr *) to, to_len) < 0)
                failed++;           //  a failed send is a loss like any other (no route during a change)
            seq++;
        }
        if (next <= now)
            next = now + period;
    }
    for (int i = 0; i < 5; i++) {
        s_header (buf, S_END, start, seq);
        s_put64 (buf + S_HEADER, (uint64_t) last_send);
        sendto (fd, buf, S_HEADER + 8, 0, (const struct sockaddr *) to, to_len);
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep (&ts, NULL);
    }
    fprintf (stderr, "seqstream send: %" PRIu64 " sent (%" PRIu64 " refused by the kernel)\n", seq, failed);
    close (fd);
    return 0;
}

static int
s_recv (const struct sockaddr_storage *bind_to, socklen_t bind_len, double seconds, int gap_ms,
        const char *ready, bool json)
{
    int fd = socket (bind_to->ss_family, SOCK_DGRAM, 0);
    int bufsize = 4 << 20;
    setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize);
    if (fd < 0 || bind (fd, (const struct sockaddr *) bind_to, bind_len) < 0) {
        perror ("seqstream recv: bind");
        return 1;
    }
    if (ready) {
        FILE *f = fopen (ready, "w");
        if (f)
            fclose (f);
    }
    seqstat_t *stat = seqstat_new (S_EXPECT_MAX);
    bool started = false, ended = false;
    int64_t start_wall_ms = 0;
    uint64_t foreign = 0;
    int64_t deadline = s_now_us () + (int64_t) (seconds * 1e6), stop = 0;
    for (;;) {
        int64_t now = s_now_us ();
        if (now >= deadline || (stop && now >= stop))
            break;
        int64_t until = stop ? stop : deadline;
        struct pollfd pfd = { fd, POLLIN, 0 };
        int wait = (int) ((until - now + 999) / 1000);
        if (poll (&pfd, 1, wait > 100 ? 100 : wait) <= 0)
            continue;
        uint8_t buf [2048];
        ssize_t n;
        while ((n = recv (fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
            now = s_now_us ();
            if (n < S_HEADER || s_get64 (buf) >> 32 != S_MAGIC) {
                foreign++;
                continue;
            }
            uint64_t seq = s_get64 (buf + 4);
            int64_t start = (int64_t) s_get64 (buf + 12);
            uint64_t last = s_get64 (buf + 20);
            if (!started) {
                seqstat_start (stat, start, (int64_t) gap_ms * 1000);
                //  The stream's start on the wall clock, so a caller can place
                //  an event from a log (time of day) among the gaps
                struct timespec wall;
                clock_gettime (CLOCK_REALTIME, &wall);
                start_wall_ms = ((int64_t) wall.tv_sec * 1000000 + wall.tv_nsec / 1000 - (now - start)) / 1000;
                started = true;
            }
            if (seq == S_END) {
                if (!ended && n >= S_HEADER + 8) {
                    stat->sent = last;
                    stat->last_sent_us = (int64_t) s_get64 (buf + S_HEADER);
                    ended = true;
                    stop = now + 500000;
                }
                continue;
            }
            seqstat_receive (stat, seq, now);
        }
    }
    if (!ended)                         //  no count from the sender: what we can tell
        stat->sent = stat->received ? stat->max_seq + 1 : 0;
    seqstat_finish (stat);
    if (json) {
        printf ("{\"ended\":%s,\"foreign\":%" PRIu64 ",\"start_wall_ms\":%" PRId64 ",",
                ended ? "true" : "false", foreign, start_wall_ms);
        seqstat_json_members (stat, stdout);
        printf ("}\n");
    }
    else
        printf ("seqstream: sent %" PRIu64 ", received %" PRIu64 ", lost %" PRIu64 ", duplicates %" PRIu64
                ", reordered %" PRIu64 ", worst gap %.1f ms at %" PRId64 " ms%s\n",
                stat->sent, stat->received, seqstat_lost (stat), stat->duplicates, stat->reordered,
                stat->max_gap_us / 1000.0, stat->max_gap_at_us / 1000, ended ? "" : " (no end marker)");
    int rc = stat->received && ended ? 0 : 1;
    seqstat_destroy (&stat);
    close (fd);
    return rc;
}

static int
s_usage (void)
{
    fprintf (stderr, "usage: seqstream recv --bind IP:PORT [--seconds S] [--gap-report MS] [--ready FILE] [--json]\n"
                     "       seqstream send --to IP:PORT --pps R --seconds S [--size N]\n");
    return 2;
}

int
main (int argc, char **argv)
{
    if (argc < 2)
        return s_usage ();
    const char *mode = argv [1];
    static const struct option options [] = {
        { "bind", required_argument, NULL, 'b' }, { "to", required_argument, NULL, 't' },
        { "pps", required_argument, NULL, 'p' }, { "seconds", required_argument, NULL, 's' },
        { "size", required_argument, NULL, 'z' }, { "gap-report", required_argument, NULL, 'g' },
        { "ready", required_argument, NULL, 'r' }, { "json", no_argument, NULL, 'j' },
        { NULL, 0, NULL, 0 }
    };
    const char *addr = NULL, *ready = NULL;
    double pps = 0, seconds = 30;
    int size = 64, gap_ms = 100;
    bool json = false;
    int c;
    optind = 2;
    while ((c = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (c) {
            case 'b': case 't': addr = optarg; break;
            case 'p': pps = atof (optarg); break;
            case 's': seconds = atof (optarg); break;
            case 'z': size = atoi (optarg); break;
            case 'g': gap_ms = atoi (optarg); break;
            case 'r': ready = optarg; break;
            case 'j': json = true; break;
            default: return s_usage ();
        }
    }
    struct sockaddr_storage ss;
    socklen_t len;
    if (!addr || s_parse_addr (addr, &ss, &len)) {
        fprintf (stderr, "seqstream: need --bind or --to IP:PORT\n");
        return s_usage ();
    }
    if (seconds <= 0 || seconds > 600 || gap_ms < 1) {
        fprintf (stderr, "seqstream: --seconds 0..600, --gap-report >= 1\n");
        return 2;
    }
    if (strcmp (mode, "send") == 0) {
        if (pps <= 0 || pps > 100000 || size < S_HEADER || size > S_SIZE_MAX
        ||  pps * seconds >= S_EXPECT_MAX) {
            fprintf (stderr, "seqstream send: --pps 1..100000, --size %d..%d\n", S_HEADER, S_SIZE_MAX);
            return 2;
        }
        return s_send (&ss, len, pps, seconds, size);
    }
    if (strcmp (mode, "recv") == 0)
        return s_recv (&ss, len, seconds, gap_ms, ready, json);
    return s_usage ();
}
