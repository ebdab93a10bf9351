/*  relay_probe: a relay client for tests and benchmarks. It plays the registry
    too: it holds the relay secret and mints its own credentials with
    relay_cred_issue, so it needs nothing but a running relay (bifrost-relay under
    bifrostd). Why a program of its own and not nat: the tests must measure the
    relay alone (gaps, loss, what an attacker gets back) with every client on its
    own socket and with timings they control; nat would add its own paths and
    timers to every number. tests/integration/relay_workers.sh and the relay
    benchmark (../shared/bench/relay/, case `custom`) use it.

    relay_probe stream --relay IP:PORT --pairs N --pps R --seconds S [--json]
        N pairs of clients, pair i in network i (the steering word of its tag is
        i, so the networks spread evenly over the workers), each client on its own
        UDP socket, REGISTER every 500 ms as the node does. A sends numbered DATA
        to B at R packets/s. Prints sent, received, lost and the longest gap
        between consecutive received packets of each pair (and the worst of all).
    relay_probe attack --relay IP:PORT [--limit-pps L]
        A victim and its partner register; then forged, expired and other-network
        REGISTERs, DATA and PING from an unregistered (spoofed, with a raw socket
        when allowed) source, DATA across networks; nothing may reach anyone. With
        --limit-pps (the relay's peer_pps) a flood must be cut to the limit.
        Exit 0 when every check holds, 1 otherwise.
    relay_probe blast --relay IP:PORT --sessions N --size B --seconds S --rate R --to-peer ID
        Registers N sending sessions, then sends DATA with B bytes of payload to
        peer ID with sendmmsg batches of 32, round robin over the sessions,
        unpaced (R = 0) or paced at R packets/s in all; prints the JSON line of
        the benchmark's `blast send`.
    relay_probe register --relay IP:PORT --peer-id ID (--from IP:PORT | --from-port P) [--once]
        Registers peer ID from that address (the benchmark's receiving side before
        `blast recv` binds the port); --once exits at the first REGISTERED,
        otherwise it refreshes every 500 ms for --seconds.

    The secret: --secret HEX, --secret-file FILE, or else $RELAY_SECRET (64 hex
    digits, as relay.secret), so a test need not put it on a command line.
    Every wait has a deadline; nothing loops forever. */
#include "relay_cred.h"
#include "relay_proto.h"
#include "seqstat.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_REGISTER_US   500000      //  REGISTER refresh, as nat does
#define S_PAIRS_MAX     256
#define S_SESSIONS_MAX  256
#define S_BATCH         32          //  sendmmsg batch of blast, as the benchmark's blast
#define S_PAYLOAD_MIN   16          //  stream DATA payload: sequence, send time
#define S_DGRAM_MAX     2048

typedef struct {
    const char *relay;
    const char *secret_hex, *secret_file;
    const char *bind_ip;
    const char *network;            //  network name the tags derive from
    const char *ready_file;
    const char *to_peer, *peer_id, *from;
    int from_port;
    int pairs, sessions, size, networks;
    double pps, seconds, rate;
    long ttl;
    long limit_pps;
    long gap_report_ms;
    bool json, once, verbose;
} s_opts_t;

static bool s_verbose = false;

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

//  ---------------------------------------------------------------------------
//  Addresses, secret, sockets

//  "a.b.c.d:port" or "[v6]:port"; false on anything else
static bool
s_parse_addr (const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    char host [64];
    const char *colon;
    memset (ss, 0, sizeof *ss);
    if (!text)
        return false;
    if (*text == '[') {
        const char *close = strchr (text, ']');
        if (!close || close [1] != ':' || (size_t) (close - text - 1) >= sizeof host)
            return false;
        memcpy (host, text + 1, (size_t) (close - text - 1));
        host [close - text - 1] = 0;
        colon = close + 1;
    }
    else {
        colon = strrchr (text, ':');
        if (!colon || (size_t) (colon - text) >= sizeof host)
            return false;
        memcpy (host, text, (size_t) (colon - text));
        host [colon - text] = 0;
    }
    char *end;
    long port = strtol (colon + 1, &end, 10);
    if (colon [1] == 0 || *end || port < 0 || port > 65535)
        return false;
    struct sockaddr_in *sin = (struct sockaddr_in *) ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) ss;
    if (inet_pton (AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons ((uint16_t) port);
        *len = sizeof *sin;
        return true;
    }
    if (inet_pton (AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons ((uint16_t) port);
        *len = sizeof *sin6;
        return true;
    }
    return false;
}

//  The secret from --secret, --secret-file or $RELAY_SECRET; false with a message
static bool
s_load_secret (const s_opts_t *o, uint8_t secret [RELAY_CRED_SECRET_SIZE])
{
    char text [256] = "";
    const char *from = "--secret";
    if (o->secret_hex)
        snprintf (text, sizeof text, "%s", o->secret_hex);
    else
    if (o->secret_file) {
        from = o->secret_file;
        FILE *file = fopen (o->secret_file, "r");
        if (!file) {
            fprintf (stderr, "relay_probe: cannot read %s: %s\n", o->secret_file, strerror (errno));
            return false;
        }
        size_t n = fread (text, 1, sizeof text - 1, file);
        fclose (file);
        text [n] = 0;
    }
    else
    if (getenv ("RELAY_SECRET")) {
        from = "$RELAY_SECRET";
        snprintf (text, sizeof text, "%s", getenv ("RELAY_SECRET"));
    }
    else {
        fprintf (stderr, "relay_probe: no secret (--secret HEX, --secret-file FILE or $RELAY_SECRET)\n");
        return false;
    }
    size_t n = strlen (text);
    while (n && (text [n - 1] == '\n' || text [n - 1] == '\r' || text [n - 1] == ' '))
        text [--n] = 0;
    int rc = relay_cred_secret_parse (text, secret);
    sodium_memzero (text, sizeof text);
    if (rc) {
        fprintf (stderr, "relay_probe: the secret from %s is not 64 hex digits\n", from);
        return false;
    }
    return true;
}

//  A UDP socket bound to ip:port (NULL: the wildcard of the relay's family),
//  connected to `to` when given; -1 with a message
static int
s_socket (const struct sockaddr_storage *relay, const char *ip, int port,
          const struct sockaddr_storage *to, socklen_t to_len, bool blocking)
{
    int fd = socket (relay->ss_family, SOCK_DGRAM | SOCK_CLOEXEC | (blocking ? 0 : SOCK_NONBLOCK), 0);
    if (fd < 0) {
        fprintf (stderr, "relay_probe: socket: %s\n", strerror (errno));
        return -1;
    }
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_storage ss;
    memset (&ss, 0, sizeof ss);
    socklen_t len;
    if (relay->ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons ((uint16_t) port);
        len = sizeof *sin;
        if (ip && inet_pton (AF_INET, ip, &sin->sin_addr) != 1) {
            fprintf (stderr, "relay_probe: bad IPv4 bind address %s\n", ip);
            close (fd);
            return -1;
        }
    }
    else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons ((uint16_t) port);
        len = sizeof *sin6;
        if (ip && inet_pton (AF_INET6, ip, &sin6->sin6_addr) != 1) {
            fprintf (stderr, "relay_probe: bad IPv6 bind address %s\n", ip);
            close (fd);
            return -1;
        }
    }
    if (bind (fd, (struct sockaddr *) &ss, len)) {
        fprintf (stderr, "relay_probe: bind: %s\n", strerror (errno));
        close (fd);
        return -1;
    }
    if (to && connect (fd, (const struct sockaddr *) to, to_len)) {
        fprintf (stderr, "relay_probe: connect: %s\n", strerror (errno));
        close (fd);
        return -1;
    }
    return fd;
}

static uint16_t
s_local_port (int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    getsockname (fd, (struct sockaddr *) &ss, &len);
    return ntohs (ss.ss_family == AF_INET ? ((struct sockaddr_in *) &ss)->sin_port
                                          : ((struct sockaddr_in6 *) &ss)->sin6_port);
}

//  The network tag k of a run: the high half from the name's tag, the low half
//  chosen so the steering program (a big-endian load of bytes 4..7 of every
//  client message, that is of the tag's low 4 bytes little-endian) reads k.
//  Network k then lands on worker k mod N, so k = 0..N-1 spread evenly.
static uint64_t
s_network (const char *name, uint32_t k)
{
    uint64_t tag = relay_cred_network_tag (name);
    uint32_t word = ((k & 0xff) << 24) | ((k & 0xff00) << 8) | ((k >> 8) & 0xff00) | (k >> 24);
    return (tag & 0xffffffff00000000ULL) | word;
}

static uint64_t
s_random64 (void)
{
    uint64_t value;
    randombytes_buf (&value, sizeof value);
    return value | 1;                   //  never 0
}

//  ---------------------------------------------------------------------------
//  A client: one socket, one peer id, one network

typedef struct {
    int fd;
    uint64_t peer, network;
    uint64_t expiry;                    //  of the credential it presents
    int64_t next_register_us;
    uint64_t registers, registered, established, data_rx, other_rx;
    uint64_t errors [5];                //  by ERROR code
} s_client_t;

//  Sends REGISTER with a credential minted here (mac over network, peer, expiry).
//  `present_network` is what the message claims (normally the credential's own).
static void
s_register_as (relay_cred_t *cred, int fd, const struct sockaddr_storage *to, socklen_t to_len,
               uint64_t cred_network, uint64_t present_network, uint64_t peer, uint64_t expiry,
               bool forge)
{
    relay_msg_t msg = { .type = RELAY_PROTO_REGISTER, .network = present_network, .peer = peer,
                        .expiry = expiry, .nonce = s_random64 () };
    if (forge)
        randombytes_buf (msg.mac, sizeof msg.mac);
    else
        relay_cred_issue (cred, cred_network, peer, expiry, msg.mac);
    uint8_t buf [RELAY_PROTO_REGISTER_SIZE];
    size_t size = relay_proto_encode (&msg, buf, sizeof buf);
    assert (size == RELAY_PROTO_REGISTER_SIZE);
    if (to)
        sendto (fd, buf, size, 0, (const struct sockaddr *) to, to_len);
    else
        send (fd, buf, size, 0);
}

static void
s_client_register (s_client_t *c, relay_cred_t *cred, long ttl)
{
    c->expiry = (uint64_t) time (NULL) + (uint64_t) ttl;
    s_register_as (cred, c->fd, NULL, 0, c->network, c->network, c->peer, c->expiry, false);
    c->registers++;
    c->next_register_us = s_now_us () + S_REGISTER_US;
}

//  Sends DATA of payload_size bytes (first bytes from head) to peer `to`
static ssize_t
s_client_data (s_client_t *c, uint64_t to, const void *head, size_t head_size, size_t payload_size)
{
    uint8_t buf [S_DGRAM_MAX];
    assert (payload_size + RELAY_PROTO_DATA_HEADER <= sizeof buf && head_size <= payload_size);
    uint8_t payload [S_DGRAM_MAX];
    memset (payload, 0x5a, payload_size);
    if (head_size)
        memcpy (payload, head, head_size);
    relay_msg_t msg = { .type = RELAY_PROTO_DATA, .network = c->network, .peer = to,
                        .payload = payload, .payload_size = payload_size };
    size_t size = relay_proto_encode (&msg, buf, sizeof buf);
    assert (size);
    return send (c->fd, buf, size, 0);
}

//  Handles a non-DATA datagram a client received; returns the parsed type (0: junk)
static uint8_t
s_client_control (s_client_t *c, relay_cred_t *cred, long ttl, const uint8_t *data, size_t size)
{
    relay_msg_t msg;
    if (relay_proto_parse (data, size, &msg) != RELAY_PROTO_OK) {
        c->other_rx++;
        return 0;
    }
    switch (msg.type) {
        case RELAY_PROTO_REGISTERED:
            c->registered++;
            break;
        case RELAY_PROTO_ESTABLISHED:
            c->established++;
            break;
        case RELAY_PROTO_ERROR:
            if (msg.code < 5)
                c->errors [msg.code]++;
            //  As the node: an expired registration registers again at once
            if (msg.code == RELAY_PROTO_CODE_REREGISTER)
                s_client_register (c, cred, ttl);
            break;
        case RELAY_PROTO_DATA:
            c->data_rx++;
            break;
        default:
            c->other_rx++;
    }
    return msg.type;
}

//  Registers every client and waits for each one's REGISTERED; false when one
//  is not answered within timeout_ms (REGISTER repeated every 500 ms meanwhile)
static bool
s_register_all (s_client_t *clients, size_t count, relay_cred_t *cred, long ttl, int timeout_ms)
{
    for (size_t i = 0; i < count; i++) {
        clients [i].registered = 0;
        s_client_register (&clients [i], cred, ttl);
    }
    int64_t deadline = s_now_us () + (int64_t) timeout_ms * 1000;
    struct pollfd *pfd = calloc (count, sizeof *pfd);
    assert (pfd);
    bool done = false;
    while (!done && s_now_us () < deadline) {
        done = true;
        for (size_t i = 0; i < count; i++) {
            pfd [i] = (struct pollfd) { clients [i].fd, POLLIN, 0 };
            if (!clients [i].registered) {
                done = false;
                if (s_now_us () >= clients [i].next_register_us)
                    s_client_register (&clients [i], cred, ttl);
            }
        }
        if (done)
            break;
        poll (pfd, (nfds_t) count, 20);
        for (size_t i = 0; i < count; i++) {
            uint8_t buf [S_DGRAM_MAX];
            ssize_t n;
            while ((n = recv (clients [i].fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
                s_client_control (&clients [i], cred, ttl, buf, (size_t) n);
        }
    }
    free (pfd);
    return done;
}

//  ---------------------------------------------------------------------------
//  stream

typedef struct {
    s_client_t a, b;
    int64_t next_send_us;
    int64_t warm;                       //  -1: a warm-up packet came through
    seqstat_t *stat;                    //  what B received of A's stream
} s_pair_t;

//  One DATA a B client received: sequence and send time in the payload
static void
s_pair_data (s_pair_t *p, const uint8_t *data, size_t size, int64_t now)
{
    if (size < RELAY_PROTO_DATA_HEADER + S_PAYLOAD_MIN || relay_proto_data_peer (data) != p->a.peer) {
        p->b.other_rx++;
        return;
    }
    uint64_t seq;
    memcpy (&seq, data + RELAY_PROTO_DATA_HEADER, sizeof seq);
    if (seq == UINT64_MAX)
        return;                         //  a warm-up packet
    seqstat_receive (p->stat, seq, now);
}

//  Receives everything waiting on client c of pair p
static void
s_pair_drain (s_pair_t *p, s_client_t *c, relay_cred_t *cred, long ttl, bool measuring)
{
    uint8_t buf [S_DGRAM_MAX];
    for (int k = 0; k < 256; k++) {
        ssize_t n = recv (c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0)
            break;
        if (n >= 1 && buf [0] == RELAY_PROTO_DATA && c == &p->b) {
            c->data_rx++;
            if (measuring)
                s_pair_data (p, buf, (size_t) n, s_now_us ());
            else
            if ((size_t) n >= RELAY_PROTO_DATA_HEADER + 8)
                p->warm = -1;           //  warm-up: the path works
        }
        else
            s_client_control (c, cred, ttl, buf, (size_t) n);
    }
}

static void
s_json_errors (FILE *out, const uint64_t *e)
{
    fprintf (out, "{\"unknown_peer\":%" PRIu64 ",\"other_network\":%" PRIu64 ",\"limit\":%" PRIu64
             ",\"reregister\":%" PRIu64 "}", e [1], e [2], e [3], e [4]);
}

static int
s_stream (const s_opts_t *o, const struct sockaddr_storage *relay, socklen_t relay_len,
          relay_cred_t *cred)
{
    if (o->pairs < 1 || o->pairs > S_PAIRS_MAX || o->pps <= 0 || o->pps > 100000
    ||  o->seconds <= 0 || o->seconds > 600 || o->size < S_PAYLOAD_MIN
    ||  o->size > S_DGRAM_MAX - RELAY_PROTO_DATA_HEADER) {
        fprintf (stderr, "relay_probe stream: --pairs 1..%d, --pps > 0, --seconds 0..600, --size %d..%d\n",
                 S_PAIRS_MAX, S_PAYLOAD_MIN, S_DGRAM_MAX - RELAY_PROTO_DATA_HEADER);
        return 2;
    }
    char name [64];
    if (o->network)
        snprintf (name, sizeof name, "%s", o->network);
    else
        snprintf (name, sizeof name, "probe-%d-%" PRIx64, (int) getpid (), s_random64 ());
    size_t npairs = (size_t) o->pairs;
    s_pair_t *pairs = calloc (npairs, sizeof *pairs);
    assert (pairs);
    size_t expected = (size_t) (o->pps * o->seconds) + 16;
    int rc = 0;
    for (size_t i = 0; i < npairs; i++) {
        s_pair_t *p = &pairs [i];
        p->a.network = p->b.network = s_network (name, (uint32_t) i);
        p->a.peer = s_random64 ();
        p->b.peer = s_random64 ();
        p->a.fd = s_socket (relay, o->bind_ip, 0, relay, relay_len, false);
        p->b.fd = s_socket (relay, o->bind_ip, 0, relay, relay_len, false);
        if (p->a.fd < 0 || p->b.fd < 0)
            return 1;
        p->stat = seqstat_new (expected);
    }
    //  Registration, then warm-up: DATA until every B has heard its A (the path
    //  works end to end) before anything is counted
    s_client_t *all = calloc (2 * npairs, sizeof *all);
    assert (all);
    for (size_t i = 0; i < npairs; i++) {
        all [2 * i] = pairs [i].a;
        all [2 * i + 1] = pairs [i].b;
    }
    //  (10 s: once, right after a worker's restart, some clients went
    //  unanswered for more than 5 s, cause not found; the line below names them)
    bool registered = s_register_all (all, 2 * npairs, cred, o->ttl, 10000);
    for (size_t i = 0; i < npairs; i++) {
        pairs [i].a = all [2 * i];
        pairs [i].b = all [2 * i + 1];
    }
    free (all);
    if (!registered) {
        fprintf (stderr, "relay_probe stream: not every client got REGISTERED within 10 s:");
        for (size_t i = 0; i < npairs; i++)
            if (!pairs [i].a.registered || !pairs [i].b.registered)
                fprintf (stderr, " pair %zu (network %016llx:%s%s)", i, (unsigned long long) pairs [i].a.network,
                         pairs [i].a.registered ? "" : " a", pairs [i].b.registered ? "" : " b");
        fprintf (stderr, "\n");
        return 1;
    }
    struct pollfd *pfd = calloc (2 * npairs, sizeof *pfd);
    assert (pfd);
    int64_t deadline = s_now_us () + 5000000;
    size_t warm = 0;
    while (warm < npairs && s_now_us () < deadline) {
        warm = 0;
        for (size_t i = 0; i < npairs; i++) {
            s_pair_t *p = &pairs [i];
            if (p->warm == -1) {
                warm++;
                continue;
            }
            if (s_now_us () >= p->next_send_us) {
                uint64_t marker = UINT64_MAX;
                s_client_data (&p->a, p->b.peer, &marker, sizeof marker, (size_t) o->size);
                p->next_send_us = s_now_us () + 50000;
            }
            if (s_now_us () >= p->a.next_register_us)
                s_client_register (&p->a, cred, o->ttl);
            if (s_now_us () >= p->b.next_register_us)
                s_client_register (&p->b, cred, o->ttl);
        }
        for (size_t i = 0; i < npairs; i++) {
            pfd [2 * i] = (struct pollfd) { pairs [i].a.fd, POLLIN, 0 };
            pfd [2 * i + 1] = (struct pollfd) { pairs [i].b.fd, POLLIN, 0 };
        }
        poll (pfd, (nfds_t) (2 * npairs), 10);
        for (size_t i = 0; i < npairs; i++) {
            s_pair_drain (&pairs [i], &pairs [i].a, cred, o->ttl, false);
            s_pair_drain (&pairs [i], &pairs [i].b, cred, o->ttl, false);
        }
    }
    if (warm < npairs) {
        fprintf (stderr, "relay_probe stream: %zu of %zu pairs got no DATA through within 5 s\n",
                 npairs - warm, npairs);
        return 1;
    }

    //  The measured stream: each pair at pps, phases spread over one period
    int64_t period_us = (int64_t) (1e6 / o->pps);
    int64_t start_us = s_now_us ();
    int64_t end_us = start_us + (int64_t) (o->seconds * 1e6);
    int64_t report_us = o->gap_report_ms * 1000;
    for (size_t i = 0; i < npairs; i++) {
        seqstat_start (pairs [i].stat, start_us, report_us);
        pairs [i].next_send_us = start_us + period_us * (int64_t) i / (int64_t) npairs;
    }
    if (o->ready_file) {
        FILE *ready = fopen (o->ready_file, "w");
        if (ready)
            fclose (ready);
    }
    if (s_verbose)
        fprintf (stderr, "relay_probe: streaming %zu pairs at %.0f pkts/s for %.1f s\n",
                 npairs, o->pps, o->seconds);
    int64_t drain_us = 500000;          //  after the last send, what is in flight arrives
    for (;;) {
        int64_t now = s_now_us ();
        if (now >= end_us + drain_us)
            break;
        int64_t next = end_us + drain_us;
        for (size_t i = 0; i < npairs; i++) {
            s_pair_t *p = &pairs [i];
            //  Catch up at most 10 packets if the loop was late
            for (int k = 0; k < 10 && now < end_us && p->next_send_us <= now
                             && p->stat->sent < p->stat->seen_bits; k++) {
                uint64_t head [2] = { p->stat->sent, (uint64_t) now };
                s_client_data (&p->a, p->b.peer, head, sizeof head, (size_t) o->size);
                seqstat_sent (p->stat, now);     //  a failed send is a loss like any other
                p->next_send_us += period_us;
            }
            if (p->next_send_us <= now)
                p->next_send_us = now + period_us;
            if (now >= p->a.next_register_us)
                s_client_register (&p->a, cred, o->ttl);
            if (now >= p->b.next_register_us)
                s_client_register (&p->b, cred, o->ttl);
            if (now < end_us && p->next_send_us < next)
                next = p->next_send_us;
            if (p->a.next_register_us < next)
                next = p->a.next_register_us;
            if (p->b.next_register_us < next)
                next = p->b.next_register_us;
        }
        for (size_t i = 0; i < npairs; i++) {
            pfd [2 * i] = (struct pollfd) { pairs [i].a.fd, POLLIN, 0 };
            pfd [2 * i + 1] = (struct pollfd) { pairs [i].b.fd, POLLIN, 0 };
        }
        int wait_ms = (int) ((next - s_now_us () + 999) / 1000);
        poll (pfd, (nfds_t) (2 * npairs), wait_ms > 0 ? wait_ms : 0);
        for (size_t i = 0; i < npairs; i++) {
            if (pfd [2 * i].revents & POLLIN)
                s_pair_drain (&pairs [i], &pairs [i].a, cred, o->ttl, true);
            if (pfd [2 * i + 1].revents & POLLIN)
                s_pair_drain (&pairs [i], &pairs [i].b, cred, o->ttl, true);
        }
    }
    //  A pair whose last packets never came: the gap runs from its last receive to
    //  its last send (nothing at all: the whole stream)
    uint64_t sent = 0, received = 0, dups = 0, reordered = 0, registered_n = 0;
    uint64_t errors [5] = { 0 };
    int64_t worst = 0, worst_at = 0;
    size_t worst_pair = 0;
    for (size_t i = 0; i < npairs; i++) {
        s_pair_t *p = &pairs [i];
        seqstat_t *st = p->stat;
        seqstat_finish (st);
        sent += st->sent;
        received += st->received;
        dups += st->duplicates;
        reordered += st->reordered;
        registered_n += p->a.registered + p->b.registered;
        for (int k = 0; k < 5; k++)
            errors [k] += p->a.errors [k] + p->b.errors [k];
        if (st->max_gap_us > worst) {
            worst = st->max_gap_us;
            worst_at = st->max_gap_at_us;
            worst_pair = i;
        }
    }
    FILE *out = stdout;
    if (o->json) {
        fprintf (out, "{\"mode\":\"stream\",\"pairs\":%zu,\"pps\":%.0f,\"seconds\":%.3f,\"size\":%d,"
                 "\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64
                 ",\"duplicates\":%" PRIu64 ",\"reordered\":%" PRIu64 ",\"worst_gap_ms\":%.1f,"
                 "\"worst_gap_pair\":%zu,\"worst_gap_at_ms\":%" PRId64 ",\"registered\":%" PRIu64
                 ",\"errors\":",
                 npairs, o->pps, o->seconds, o->size, sent, received, sent - received, dups, reordered,
                 worst / 1000.0, worst_pair, worst_at / 1000, registered_n);
        s_json_errors (out, errors);
        fprintf (out, ",\"per_pair\":[");
        for (size_t i = 0; i < npairs; i++) {
            s_pair_t *p = &pairs [i];
            fprintf (out, "%s{\"pair\":%zu,\"network\":\"%016" PRIx64 "\",", i ? "," : "", i, p->a.network);
            seqstat_json_members (p->stat, out);
            fprintf (out, "}");
        }
        fprintf (out, "]}\n");
    }
    else {
        printf ("stream: %zu pairs at %.0f pkts/s for %.1f s: sent %" PRIu64 ", received %" PRIu64
                ", lost %" PRIu64 ", duplicates %" PRIu64 ", worst gap %.1f ms (pair %zu at %" PRId64 " ms)\n",
                npairs, o->pps, o->seconds, sent, received, sent - received, dups, worst / 1000.0,
                worst_pair, worst_at / 1000);
        for (size_t i = 0; i < npairs; i++) {
            s_pair_t *p = &pairs [i];
            printf ("  pair %2zu network %016" PRIx64 ": sent %" PRIu64 " received %" PRIu64
                    " lost %" PRIu64 " max gap %.1f ms at %" PRId64 " ms\n", i, p->a.network,
                    p->stat->sent, p->stat->received, seqstat_lost (p->stat), p->stat->max_gap_us / 1000.0,
                    p->stat->max_gap_at_us / 1000);
        }
    }
    for (size_t i = 0; i < npairs; i++) {
        close (pairs [i].a.fd);
        close (pairs [i].b.fd);
        seqstat_destroy (&pairs [i].stat);
    }
    free (pairs);
    free (pfd);
    return rc;
}

//  ---------------------------------------------------------------------------
//  attack

typedef struct {
    s_client_t *c;
    const char *name;
    int fd;
    uint64_t got;                       //  datagrams in the last s_listen
    uint64_t got_bytes_max;
    uint8_t last_type;
} s_watch_t;

//  Collects what reaches each watched socket for ms milliseconds
static void
s_listen (s_watch_t *w, size_t count, int ms)
{
    for (size_t i = 0; i < count; i++) {
        w [i].got = 0;
        w [i].got_bytes_max = 0;
        w [i].last_type = 0;
    }
    int64_t end = s_now_us () + (int64_t) ms * 1000;
    struct pollfd pfd [16];
    assert (count <= 16);
    while (s_now_us () < end) {
        for (size_t i = 0; i < count; i++)
            pfd [i] = (struct pollfd) { w [i].fd, POLLIN, 0 };
        int left = (int) ((end - s_now_us () + 999) / 1000);
        if (poll (pfd, (nfds_t) count, left > 0 ? left : 0) <= 0)
            continue;
        for (size_t i = 0; i < count; i++) {
            uint8_t buf [S_DGRAM_MAX];
            ssize_t n;
            while ((n = recv (w [i].fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
                w [i].got++;
                if ((uint64_t) n > w [i].got_bytes_max)
                    w [i].got_bytes_max = (uint64_t) n;
                w [i].last_type = buf [0];
                if (s_verbose)
                    fprintf (stderr, "relay_probe: %s got %zd bytes, type %u\n", w [i].name, n, buf [0]);
            }
        }
    }
}

static int s_checks = 0, s_failed = 0;

static void
s_check (bool ok, const char *name, const char *fmt, ...)
{
    s_checks++;
    if (!ok)
        s_failed++;
    printf ("%s - %s", ok ? "ok" : "FAILED", name);
    if (fmt && *fmt) {
        va_list args;
        va_start (args, fmt);
        printf (" (");
        vprintf (fmt, args);
        printf (")");
        va_end (args);
    }
    printf ("\n");
    fflush (stdout);
}

//  Nothing reached any watched socket but `except` (which may get ERRORs of at
//  most `except_max` bytes); prints who got what
static bool
s_silent (s_watch_t *w, size_t count, const char *except, uint64_t except_max, char *why, size_t size)
{
    bool ok = true;
    *why = 0;
    for (size_t i = 0; i < count; i++) {
        bool allowed = except && strcmp (w [i].name, except) == 0
                    && w [i].got_bytes_max <= except_max && (w [i].got == 0 || w [i].last_type == RELAY_PROTO_ERROR);
        if (w [i].got && !allowed) {
            ok = false;
            size_t used = strlen (why);
            snprintf (why + used, size - used, "%s%s got %" PRIu64 " datagram(s), last type %u",
                      used ? "; " : "", w [i].name, w [i].got, w [i].last_type);
        }
    }
    if (ok) {
        snprintf (why, size, "nothing sent to anyone");
        for (size_t i = 0; i < count; i++)
            if (w [i].got)
                snprintf (why, size, "nothing sent but %" PRIu64 " ERROR of %" PRIu64 " bytes to the %s",
                          w [i].got, w [i].got_bytes_max, w [i].name);
    }
    return ok;
}

//  A UDP datagram from a source address that is not ours (raw IPv4 socket,
//  CAP_NET_RAW): a real spoof. -1 when raw sockets are not allowed.
static int
s_spoof (const struct sockaddr_in *src, const struct sockaddr_in *dst, const uint8_t *data, size_t size)
{
    int fd = socket (AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (fd < 0)
        return -1;
    uint8_t packet [S_DGRAM_MAX + 28];
    assert (size + 28 <= sizeof packet);
    struct iphdr *ip = (struct iphdr *) packet;
    struct udphdr *udp = (struct udphdr *) (packet + sizeof *ip);
    memset (packet, 0, 28);
    ip->version = 4;
    ip->ihl = 5;
    ip->ttl = 64;
    ip->protocol = IPPROTO_UDP;
    ip->tot_len = htons ((uint16_t) (28 + size));
    ip->saddr = src->sin_addr.s_addr;
    ip->daddr = dst->sin_addr.s_addr;           //  the kernel fills id and checksum
    udp->source = src->sin_port;
    udp->dest = dst->sin_port;
    udp->len = htons ((uint16_t) (8 + size));
    udp->check = 0;                             //  none: allowed over IPv4
    memcpy (packet + 28, data, size);
    ssize_t n = sendto (fd, packet, 28 + size, 0, (const struct sockaddr *) dst, sizeof *dst);
    close (fd);
    return n == (ssize_t) (28 + size) ? 0 : -1;
}

static int
s_attack (const s_opts_t *o, const struct sockaddr_storage *relay, socklen_t relay_len,
          relay_cred_t *cred)
{
    char name [64];
    if (o->network)
        snprintf (name, sizeof name, "%s", o->network);
    else
        snprintf (name, sizeof name, "attack-%d-%" PRIx64, (int) getpid (), s_random64 ());
    //  The victim's network X and the attacker's Y: their steering words differ by
    //  12, so they share a worker for 1, 2, 3, 4 and 6 workers and the relay sees
    //  the cross-network DATA (not just an unknown peer)
    uint64_t net_x = s_network (name, 1), net_y = s_network (name, 13);
    s_client_t victim = { .peer = s_random64 (), .network = net_x };
    s_client_t partner = { .peer = s_random64 (), .network = net_x };
    s_client_t other = { .peer = s_random64 (), .network = net_y };       //  legit, other network
    victim.fd = s_socket (relay, o->bind_ip, 0, relay, relay_len, false);
    partner.fd = s_socket (relay, o->bind_ip, 0, relay, relay_len, false);
    other.fd = s_socket (relay, o->bind_ip, 0, relay, relay_len, false);
    int mallory = s_socket (relay, o->bind_ip, 0, relay, relay_len, false);   //  never registered
    int third = s_socket (relay, o->bind_ip, 0, NULL, 0, false);             //  a bystander
    if (victim.fd < 0 || partner.fd < 0 || other.fd < 0 || mallory < 0 || third < 0)
        return 1;
    s_watch_t watch [] = {
        { &victim, "victim", victim.fd, 0, 0, 0 }, { &partner, "partner", partner.fd, 0, 0, 0 },
        { &other, "other-network peer", other.fd, 0, 0, 0 }, { NULL, "attacker", mallory, 0, 0, 0 },
        { NULL, "third party", third, 0, 0, 0 },
    };
    size_t nwatch = sizeof watch / sizeof watch [0];
    char why [512];
    s_client_t regs [] = { victim, partner, other };
    bool up = s_register_all (regs, 3, cred, o->ttl, 5000);
    s_check (up, "victim, partner and a peer of another network register", NULL);
    if (!up)
        return 1;
    victim = regs [0];
    partner = regs [1];
    other = regs [2];
    s_listen (watch, nwatch, 100);

    //  The legit path works (so silence below means refusal, not a dead relay)
    s_client_data (&partner, victim.peer, "legit", 5, 32);
    s_listen (watch, nwatch, 300);
    s_check (watch [0].got >= 1, "baseline: partner -> victim DATA arrives", "victim got %" PRIu64, watch [0].got);
    s_listen (watch, nwatch, 100);      //  ESTABLISHED of the new session

    uint64_t now_s = (uint64_t) time (NULL), exp = now_s + (uint64_t) o->ttl;
    //  1. A forged mac claiming the victim's id from the attacker's address
    for (int k = 0; k < 3; k++)
        s_register_as (cred, mallory, NULL, 0, net_x, net_x, victim.peer, exp, true);
    s_listen (watch, nwatch, 300);
    s_check (s_silent (watch, nwatch, NULL, 0, why, sizeof why), "REGISTER with a forged mac: dropped, no reply", "%s", why);
    //  2. An expired credential (a correct mac over an expiry 10 s ago), for a new
    //     peer and for the victim's id
    s_register_as (cred, mallory, NULL, 0, net_x, net_x, s_random64 (), now_s - 10, false);
    s_register_as (cred, mallory, NULL, 0, net_x, net_x, victim.peer, now_s - 10, false);
    s_listen (watch, nwatch, 300);
    s_check (s_silent (watch, nwatch, NULL, 0, why, sizeof why), "REGISTER with an expired credential: dropped, no reply", "%s", why);
    //  3. A credential of network Y presented for X (as the victim and as itself)
    s_register_as (cred, mallory, NULL, 0, net_y, net_x, victim.peer, exp, false);
    s_register_as (cred, mallory, NULL, 0, net_y, net_x, other.peer, exp, false);
    s_listen (watch, nwatch, 300);
    s_check (s_silent (watch, nwatch, NULL, 0, why, sizeof why),
             "REGISTER with another network's credential: dropped, no reply", "%s", why);
    //  The victim still owns its registration: DATA goes to it, not the attacker
    s_client_data (&partner, victim.peer, "legit", 5, 32);
    s_listen (watch, nwatch, 300);
    s_check (watch [0].got == 1 && watch [3].got == 0, "the victim's registration is not taken over",
             "victim got %" PRIu64 ", attacker %" PRIu64, watch [0].got, watch [3].got);
    //  4. DATA and PING from an address nobody registered: the attacker's own, and
    //     (raw socket) a spoofed one, the third party's
    relay_msg_t data = { .type = RELAY_PROTO_DATA, .network = net_x, .peer = victim.peer,
                         .payload = (const uint8_t *) "spoofed", .payload_size = 7 };
    relay_msg_t ping = { .type = RELAY_PROTO_PING, .network = net_x, .peer = victim.peer, .nonce = 7 };
    relay_msg_t data_unknown = { .type = RELAY_PROTO_DATA, .network = net_x, .peer = s_random64 (),
                                 .payload = (const uint8_t *) "spoofed", .payload_size = 7 };
    uint8_t buf [3][128];
    size_t sizes [3] = {
        relay_proto_encode (&data, buf [0], sizeof buf [0]),
        relay_proto_encode (&ping, buf [1], sizeof buf [1]),
        relay_proto_encode (&data_unknown, buf [2], sizeof buf [2]),
    };
    for (int k = 0; k < 3; k++)
        send (mallory, buf [k], sizes [k], 0);
    s_listen (watch, nwatch, 300);
    s_check (s_silent (watch, nwatch, NULL, 0, why, sizeof why),
             "DATA/PING from an unregistered address (to the victim, to an unknown peer): nothing sent", "%s", why);
    struct sockaddr_storage third_addr;
    socklen_t third_len = sizeof third_addr;
    getsockname (third, (struct sockaddr *) &third_addr, &third_len);
    bool raw = relay->ss_family == AF_INET;
    if (raw) {
        struct sockaddr_in *src = (struct sockaddr_in *) &third_addr;
        if (src->sin_addr.s_addr == htonl (INADDR_ANY))
            src->sin_addr = ((const struct sockaddr_in *) relay)->sin_addr;
        for (int k = 0; k < 3 && raw; k++)
            raw = s_spoof (src, (const struct sockaddr_in *) relay, buf [k], sizes [k]) == 0;
    }
    if (!raw)                           //  no CAP_NET_RAW: from the bystander's own socket
        for (int k = 0; k < 3; k++)
            sendto (third, buf [k], sizes [k], 0, (const struct sockaddr *) relay, relay_len);
    s_listen (watch, nwatch, 300);
    s_check (s_silent (watch, nwatch, NULL, 0, why, sizeof why),
             raw ? "spoofed-source DATA/PING (raw socket, source = a third party): nothing sent to it or the victim"
                 : "DATA/PING from a third party's address (no raw socket): nothing sent to it or the victim",
             "%s", why);
    //  5. A peer of network Y, properly registered, sends DATA to the victim in X
    //     (its own network word, and X's)
    s_client_data (&other, victim.peer, "cross", 5, 32);
    relay_msg_t cross = { .type = RELAY_PROTO_DATA, .network = net_x, .peer = victim.peer,
                          .payload = (const uint8_t *) "cross", .payload_size = 5 };
    size_t cross_size = relay_proto_encode (&cross, buf [0], sizeof buf [0]);
    send (other.fd, buf [0], cross_size, 0);
    s_listen (watch, nwatch, 300);
    s_check (s_silent (watch, nwatch, "other-network peer", RELAY_PROTO_ERROR_SIZE, why, sizeof why),
             "DATA from a peer of another network: nothing reaches the victim (the sender may get an ERROR)",
             "%s", why);
    //  6. The rate limit: a flood of 4 x peer_pps within half a second
    if (o->limit_pps > 0) {
        long flood = 4 * o->limit_pps;
        uint64_t got = 0;
        int64_t t0 = s_now_us ();
        for (long k = 0; k < flood; k++) {
            s_client_data (&partner, victim.peer, "flood", 5, 32);
            if (k % 32 == 31) {         //  paced over 0.5 s; the victim drained meanwhile
                int64_t due = t0 + 500000 * (k + 1) / flood;
                do {
                    s_listen (watch, 1, 1);
                    got += watch [0].got;
                } while (s_now_us () < due);
            }
        }
        double secs = (double) (s_now_us () - t0) / 1e6;
        s_listen (watch, nwatch, 300);
        got += watch [0].got;
        //  One second of burst plus the refill while it lasted, with 10 % slack
        double bound = ((double) o->limit_pps * (1.0 + secs + 0.3)) * 1.1 + 8;
        s_check (got < (uint64_t) flood && got <= (uint64_t) bound,
                 "a flood over peer_pps is cut to the limit",
                 "sent %ld in %.2f s, victim got %" PRIu64 ", at most %.0f allowed", flood, secs, got, bound);
        //  Over a limit is dropped, never a crash: after a refill the path works
        s_listen (watch, nwatch, 1100);
        s_client_data (&partner, victim.peer, "after", 5, 32);
        s_listen (watch, nwatch, 300);
        s_check (watch [0].got == 1, "after the flood the path works again", "victim got %" PRIu64, watch [0].got);
    }
    printf ("attack: %d checks, %d failed\n", s_checks, s_failed);
    close (victim.fd);
    close (partner.fd);
    close (other.fd);
    close (mallory);
    close (third);
    return s_failed ? 1 : 0;
}

//  ---------------------------------------------------------------------------
//  blast and register (the benchmark)

static int
s_blast (const s_opts_t *o, const struct sockaddr_storage *relay, socklen_t relay_len,
         relay_cred_t *cred)
{
    uint64_t to;
    if (o->sessions < 1 || o->sessions > S_SESSIONS_MAX || o->size < 0
    ||  o->size > S_DGRAM_MAX - RELAY_PROTO_DATA_HEADER || o->seconds <= 0 || o->seconds > 600
    ||  o->rate < 0 || o->networks < 1 || !o->to_peer || relay_cred_peer_parse (o->to_peer, &to)) {
        fprintf (stderr, "relay_probe blast: --sessions 1..%d, --size 0..%d, --seconds 0..600, "
                 "--rate >= 0, --to-peer 16 hex digits\n", S_SESSIONS_MAX, S_DGRAM_MAX - RELAY_PROTO_DATA_HEADER);
        return 2;
    }
    const char *name = o->network ? o->network : "bench";
    size_t n = (size_t) o->sessions;
    s_client_t *clients = calloc (n, sizeof *clients);
    assert (clients);
    for (size_t i = 0; i < n; i++) {
        //  Blocking sockets for sendmmsg, as blast's; receives use MSG_DONTWAIT
        clients [i].fd = s_socket (relay, o->bind_ip, 0, relay, relay_len, true);
        if (clients [i].fd < 0)
            return 1;
        clients [i].peer = s_random64 ();
        clients [i].network = s_network (name, (uint32_t) (i % (size_t) o->networks));
    }
    if (!s_register_all (clients, n, cred, o->ttl, 5000)) {
        fprintf (stderr, "relay_probe blast: not every session got REGISTERED within 5 s\n");
        return 1;
    }
    //  One DATA per session, sent S_BATCH times per sendmmsg (as blast: the same
    //  buffer; the payload is filler)
    size_t wire = RELAY_PROTO_DATA_HEADER + (size_t) o->size;
    uint8_t (*bufs) [S_DGRAM_MAX] = calloc (n, S_DGRAM_MAX);
    struct iovec *iov = calloc (n, sizeof *iov);
    struct mmsghdr (*mm) [S_BATCH] = calloc (n, sizeof *mm);
    assert (bufs && iov && mm);
    uint8_t filler [S_DGRAM_MAX];
    memset (filler, 0xa5, sizeof filler);
    for (size_t i = 0; i < n; i++) {
        relay_msg_t msg = { .type = RELAY_PROTO_DATA, .network = clients [i].network, .peer = to,
                            .payload = filler, .payload_size = (size_t) o->size };
        size_t size = relay_proto_encode (&msg, bufs [i], S_DGRAM_MAX);
        assert (size == wire);
        iov [i] = (struct iovec) { bufs [i], wire };
        for (int j = 0; j < S_BATCH; j++) {
            memset (&mm [i][j], 0, sizeof mm [i][j]);
            mm [i][j].msg_hdr.msg_iov = &iov [i];
            mm [i][j].msg_hdr.msg_iovlen = 1;
        }
    }
    uint64_t sent = 0, errs = 0;
    double pps = o->rate;
    int64_t t0 = s_now_us (), t = t0, end = t0 + (int64_t) (o->seconds * 1e6);
    int64_t next_register = t0 + S_REGISTER_US;
    size_t i = 0;
    while (t < end) {
        if (pps > 0) {                  //  never ahead of pps * (t - t0), as blast
            int64_t due = t0 + (int64_t) ((double) sent / pps * 1e6);
            if (due > t) {
                int64_t wait = due - t < 1000 ? due - t : 1000;
                struct timespec ts = { 0, (long) wait * 1000 };
                nanosleep (&ts, NULL);
                t = s_now_us ();
                continue;
            }
        }
        int r = sendmmsg (clients [i].fd, mm [i], S_BATCH, 0);
        if (r > 0)
            sent += (uint64_t) r;
        else
            errs++;
        if (++i == n)
            i = 0;
        t = s_now_us ();
        if (t >= next_register) {       //  refresh as the node does (n x 68 bytes per 500 ms)
            for (size_t k = 0; k < n; k++) {
                s_client_register (&clients [k], cred, o->ttl);
                uint8_t junk [S_DGRAM_MAX];
                while (recv (clients [k].fd, junk, sizeof junk, MSG_DONTWAIT) > 0)
                    ;
            }
            next_register = t + S_REGISTER_US;
        }
    }
    double el = (double) (s_now_us () - t0) / 1e6;
    printf ("{\"mode\":\"send\",\"socks\":%zu,\"threads\":1,\"size\":%d,\"wire\":%zu,\"rate\":%.0f,"
            "\"sent\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"secs\":%.3f,\"pps\":%.0f}\n",
            n, o->size, wire, pps, sent, errs, el, (double) sent / el);
    for (size_t k = 0; k < n; k++)
        close (clients [k].fd);
    free (bufs);
    free (iov);
    free (mm);
    free (clients);
    return 0;
}

static int
s_register_cmd (const s_opts_t *o, const struct sockaddr_storage *relay, socklen_t relay_len,
                relay_cred_t *cred)
{
    uint64_t peer;
    if (!o->peer_id || relay_cred_peer_parse (o->peer_id, &peer) || o->networks < 1 || o->networks > 64) {
        fprintf (stderr, "relay_probe register: --peer-id expects 16 hex digits, --networks 1..64\n");
        return 2;
    }
    const char *ip = o->bind_ip;
    int port = o->from_port;
    char host [64];
    if (o->from) {
        struct sockaddr_storage ss;
        socklen_t len;
        if (!s_parse_addr (o->from, &ss, &len) || ss.ss_family != relay->ss_family) {
            fprintf (stderr, "relay_probe register: --from expects IP:PORT of the relay's family\n");
            return 2;
        }
        if (ss.ss_family == AF_INET) {
            inet_ntop (AF_INET, &((struct sockaddr_in *) &ss)->sin_addr, host, sizeof host);
            port = ntohs (((struct sockaddr_in *) &ss)->sin_port);
        }
        else {
            inet_ntop (AF_INET6, &((struct sockaddr_in6 *) &ss)->sin6_addr, host, sizeof host);
            port = ntohs (((struct sockaddr_in6 *) &ss)->sin6_port);
        }
        ip = host;
    }
    int fd = s_socket (relay, ip, port, relay, relay_len, false);
    if (fd < 0)
        return 1;
    //  One registration per network: with --networks K (K workers) the same
    //  address is known at each worker, for the K networks blast spreads over
    const char *name = o->network ? o->network : "bench";
    size_t n = (size_t) o->networks;
    s_client_t clients [64];
    memset (clients, 0, sizeof clients);
    for (size_t k = 0; k < n; k++)
        clients [k] = (s_client_t) { .fd = fd, .peer = peer, .network = s_network (name, (uint32_t) k) };
    int64_t end = s_now_us () + (int64_t) ((o->once ? 5 : o->seconds) * 1e6);
    uint64_t answers = 0;
    bool announced = false;
    while (s_now_us () < end) {
        for (size_t k = 0; k < n; k++)
            if (s_now_us () >= clients [k].next_register_us)
                s_client_register (&clients [k], cred, o->ttl);
        struct pollfd pfd = { fd, POLLIN, 0 };
        poll (&pfd, 1, 50);
        uint8_t buf [S_DGRAM_MAX];
        ssize_t got;
        while ((got = recv (fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
            if (buf [0] == RELAY_PROTO_REGISTERED)
                answers++;
        if (answers >= n && !announced) {
            printf ("registered %s from port %u in %zu network%s\n", o->peer_id, s_local_port (fd),
                    n, n == 1 ? "" : "s");
            fflush (stdout);
            announced = true;
            if (o->once)
                break;
        }
    }
    close (fd);
    if (!announced)
        fprintf (stderr, "relay_probe register: no REGISTERED from the relay\n");
    return announced ? 0 : 1;
}

//  ---------------------------------------------------------------------------

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: relay_probe stream   --relay IP:PORT --pairs N --pps R --seconds S [--size B] [--json]\n"
        "                            [--ready-file F] [--gap-report MS]\n"
        "       relay_probe attack   --relay IP:PORT [--limit-pps L]\n"
        "       relay_probe blast    --relay IP:PORT --sessions N --size B --seconds S --rate R\n"
        "                            --to-peer ID [--networks K]\n"
        "       relay_probe register --relay IP:PORT --peer-id ID (--from IP:PORT | --from-port P)\n"
        "                            [--once | --seconds S] [--networks K]\n"
        "A relay client for tests and benchmarks; it mints its own credentials.\n"
        "common: --secret HEX | --secret-file FILE (default $RELAY_SECRET), --bind IP (client\n"
        "        sockets), --network NAME (network tags derive from it), --ttl S (credential\n"
        "        lifetime, default 120), -v (log to stderr), -h\n"
        "stream: pair i is in network i (steering word i: spread over the workers);\n"
        "        --ready-file is created when the measured stream starts; gaps of at least\n"
        "        --gap-report ms (default 100) are listed per pair as [from_ms, length_ms,\n"
        "        sequence numbers skipped]\n"
        "blast/register: --networks K registers the receiver in K networks and spreads the\n"
        "        sessions over them (K = the number of workers)\n");
}

int
main (int argc, char **argv)
{
    static const struct option options [] = {
        { "relay", required_argument, NULL, 'R' },
        { "secret", required_argument, NULL, 'S' },
        { "secret-file", required_argument, NULL, 'F' },
        { "bind", required_argument, NULL, 'b' },
        { "network", required_argument, NULL, 'N' },
        { "networks", required_argument, NULL, 'K' },
        { "pairs", required_argument, NULL, 'p' },
        { "pps", required_argument, NULL, 'r' },
        { "seconds", required_argument, NULL, 's' },
        { "size", required_argument, NULL, 'z' },
        { "json", no_argument, NULL, 'j' },
        { "ready-file", required_argument, NULL, 'y' },
        { "gap-report", required_argument, NULL, 'g' },
        { "limit-pps", required_argument, NULL, 'l' },
        { "sessions", required_argument, NULL, 'n' },
        { "rate", required_argument, NULL, 'a' },
        { "to-peer", required_argument, NULL, 't' },
        { "peer-id", required_argument, NULL, 'i' },
        { "from", required_argument, NULL, 'f' },
        { "from-port", required_argument, NULL, 'P' },
        { "once", no_argument, NULL, 'o' },
        { "ttl", required_argument, NULL, 'T' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    if (argc < 2 || !strcmp (argv [1], "-h") || !strcmp (argv [1], "--help")) {
        s_usage (argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *command = argv [1];
    s_opts_t o = { .pairs = 8, .pps = 100, .seconds = 5, .size = 64, .sessions = 16,
                   .networks = 1, .ttl = 120, .gap_report_ms = 100 };
    int opt;
    optind = 2;
    while ((opt = getopt_long (argc, argv, "vh", options, NULL)) != -1) {
        switch (opt) {
            case 'R': o.relay = optarg; break;
            case 'S': o.secret_hex = optarg; break;
            case 'F': o.secret_file = optarg; break;
            case 'b': o.bind_ip = optarg; break;
            case 'N': o.network = optarg; break;
            case 'K': o.networks = atoi (optarg); break;
            case 'p': o.pairs = atoi (optarg); break;
            case 'r': o.pps = atof (optarg); break;
            case 's': o.seconds = atof (optarg); break;
            case 'z': o.size = atoi (optarg); break;
            case 'j': o.json = true; break;
            case 'y': o.ready_file = optarg; break;
            case 'g': o.gap_report_ms = atol (optarg); break;
            case 'l': o.limit_pps = atol (optarg); break;
            case 'n': o.sessions = atoi (optarg); break;
            case 'a': o.rate = atof (optarg); break;
            case 't': o.to_peer = optarg; break;
            case 'i': o.peer_id = optarg; break;
            case 'f': o.from = optarg; break;
            case 'P': o.from_port = atoi (optarg); break;
            case 'o': o.once = true; break;
            case 'T': o.ttl = atol (optarg); break;
            case 'v': s_verbose = true; break;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "relay_probe: unexpected argument '%s'\n", argv [optind]);
        return 2;
    }
    struct sockaddr_storage relay;
    socklen_t relay_len = 0;
    if (!s_parse_addr (o.relay, &relay, &relay_len)) {
        fprintf (stderr, "relay_probe: --relay expects IP:PORT, e.g. 127.0.0.1:3479\n");
        return 2;
    }
    if (o.ttl < 1 || o.ttl > 86400 * 30 || o.from_port < 0 || o.from_port > 65535) {
        fprintf (stderr, "relay_probe: --ttl 1..2592000 s, --from-port 0..65535\n");
        return 2;
    }
    if (sodium_init () < 0)
        return 1;
    uint8_t secret [RELAY_CRED_SECRET_SIZE];
    if (!s_load_secret (&o, secret))
        return 2;
    relay_cred_t *cred = relay_cred_new (secret, 0);
    sodium_memzero (secret, sizeof secret);
    assert (cred);
    int rc;
    if (!strcmp (command, "stream"))
        rc = s_stream (&o, &relay, relay_len, cred);
    else
    if (!strcmp (command, "attack"))
        rc = s_attack (&o, &relay, relay_len, cred);
    else
    if (!strcmp (command, "blast"))
        rc = s_blast (&o, &relay, relay_len, cred);
    else
    if (!strcmp (command, "register"))
        rc = s_register_cmd (&o, &relay, relay_len, cred);
    else {
        fprintf (stderr, "relay_probe: unknown command '%s' (stream, attack, blast, register)\n", command);
        rc = 2;
    }
    relay_cred_destroy (&cred);
    return rc;
}
