/*  bench_registry: the registry's numbers (make bench-registry; docs/registry-api.md).
    Starts the real bifrost-registry on 127.0.0.1 with a temp database, then
      1. registrations per second: C client threads, each on a keep-alive HTTP
         connection, doing challenge + key proof + POST .../peers;
      2. event fan-out latency: 1,000 peers hold WebSockets on one network; one
         peer's heartbeat changes its endpoints and we time until each of the
         1,000 sockets has the peer.changed event (per receiver and for the last);
      3. the registry's RSS (VmRSS of the process) with 1,000 WebSockets open and
         at 10,000 registered peers.
    usage: bench_registry [PATH-TO-bifrost-registry] */
#include "node_keyproof.h"
#include "bus_clock.h"
#include <arpa/inet.h>
#include <czmq.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/wait.h>

static int s_port;
static char s_admin [] = "bench-admin-token";

static int
s_connect (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) s_port) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0) {
        close (fd);
        return -1;
    }
    int one = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

//  One HTTP/1.1 request on a keep-alive connection; the body into resp. Status or -1.
static int
s_http (int fd, const char *method, const char *path, const char *bearer, const char *body,
        char *resp, size_t resp_size)
{
    char req [4096];
    int n = snprintf (req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%sContent-Length: %zu\r\n\r\n%s",
                      method, path, bearer ? "Authorization: Bearer " : "", bearer ? bearer : "",
                      bearer ? "\r\n" : "", body ? strlen (body) : 0, body ? body : "");
    if (write (fd, req, (size_t) n) != n)
        return -1;
    char buf [65536];
    size_t have = 0;
    char *end = NULL;
    while (!end) {
        ssize_t r = read (fd, buf + have, sizeof buf - 1 - have);
        if (r <= 0)
            return -1;
        have += (size_t) r;
        buf [have] = 0;
        end = strstr (buf, "\r\n\r\n");
    }
    int status = atoi (buf + 9);
    const char *cl = strcasestr (buf, "content-length:");
    size_t length = cl ? (size_t) atol (cl + 15) : 0;
    size_t head = (size_t) (end + 4 - buf);
    //  The body may be larger than buf: keep the first resp_size bytes, count the rest
    size_t body_have = have - head, kept = body_have < resp_size - 1 ? body_have : resp_size - 1;
    memcpy (resp, buf + head, kept);
    while (body_have < length) {
        ssize_t r = read (fd, buf, sizeof buf);
        if (r <= 0)
            return -1;
        size_t take = (size_t) r;
        if (kept < resp_size - 1) {
            size_t room = resp_size - 1 - kept;
            memcpy (resp + kept, buf, take < room ? take : room);
            kept += take < room ? take : room;
        }
        body_have += take;
    }
    resp [kept] = 0;
    return status;
}

typedef struct {
    char id [32], token [80];
} s_peer_t;

//  challenge + proof + POST; fills peer. Returns the status.
static int
s_register (int fd, const char *net, const char *join, int index, s_peer_t *peer)
{
    char path [200], resp [8192], body [1024];
    snprintf (path, sizeof path, "/api/v1/mesh/networks/%s/challenge", net);
    if (s_http (fd, "POST", path, NULL, NULL, resp, sizeof resp) != 200)
        return -1;
    json_t *ch = json_loads (resp, 0, NULL);
    uint8_t pk [32], sk [32], rk [32], nonce [32], proof [32];
    size_t len;
    sodium_base642bin (rk, 32, json_string_value (json_object_get (ch, "registry_key")), 44, NULL, &len, NULL,
                       sodium_base64_VARIANT_ORIGINAL);
    sodium_base642bin (nonce, 32, json_string_value (json_object_get (ch, "nonce")), 44, NULL, &len, NULL,
                       sodium_base64_VARIANT_ORIGINAL);
    crypto_box_keypair (pk, sk);
    node_keyproof_compute (sk, pk, rk, net, nonce, 32, proof);
    char pk64 [48], proof64 [48];
    sodium_bin2base64 (pk64, sizeof pk64, pk, 32, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64 (proof64, sizeof proof64, proof, 32, sodium_base64_VARIANT_ORIGINAL);
    snprintf (body, sizeof body, "{\"public_key\":\"%s\",\"name\":\"peer%d\",\"nonce\":\"%s\",\"proof\":\"%s\","
              "\"endpoints\":[\"198.51.100.%d:51820\"]}", pk64, index, json_string_value (json_object_get (ch, "nonce")),
              proof64, index % 250 + 1);
    json_decref (ch);
    snprintf (path, sizeof path, "/api/v1/mesh/networks/%s/peers", net);
    int status = s_http (fd, "POST", path, join, body, resp, sizeof resp);
    if (status == 201 && peer) {
        json_t *r = json_loads (resp, 0, NULL);
        snprintf (peer->id, sizeof peer->id, "%s", json_string_value (json_object_get (json_object_get (r, "peer"), "id")));
        snprintf (peer->token, sizeof peer->token, "%s", json_string_value (json_object_get (r, "peer_token")));
        json_decref (r);
    }
    return status;
}

typedef struct {
    const char *net, *join;
    int first, count, ok;
    s_peer_t *peers;
} s_job_t;

static void *
s_register_thread (void *arg)
{
    s_job_t *job = (s_job_t *) arg;
    int fd = s_connect ();
    for (int i = 0; i < job->count && fd >= 0; i++)
        if (s_register (fd, job->net, job->join, job->first + i, job->peers ? &job->peers [job->first + i] : NULL) == 201)
            job->ok++;
    if (fd >= 0)
        close (fd);
    return NULL;
}

//  Registers count peers with `threads` parallel connections; returns per second.
static double
s_register_many (const char *net, const char *join, int first, int count, int threads, s_peer_t *peers, int *ok)
{
    s_job_t jobs [16];
    pthread_t tid [16];
    int64_t start = bus_clock_us ();
    for (int t = 0; t < threads; t++) {
        jobs [t] = (s_job_t) { net, join, first + t * (count / threads), count / threads, 0, peers };
        pthread_create (&tid [t], NULL, s_register_thread, &jobs [t]);
    }
    *ok = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join (tid [t], NULL);
        *ok += jobs [t].ok;
    }
    return (double) *ok * 1e6 / (double) (bus_clock_us () - start);
}

static long
s_rss_kb (pid_t pid)
{
    char path [64], line [256];
    snprintf (path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen (path, "r");
    long kb = -1;
    while (f && fgets (line, sizeof line, f))
        if (strncmp (line, "VmRSS:", 6) == 0)
            kb = atol (line + 6);
    if (f)
        fclose (f);
    return kb;
}

//  A WebSocket: handshake, then frames read into a buffer.
typedef struct {
    int fd;
    char buf [8192];
    size_t have;
    int64_t got_us;
} s_ws_t;

static int
s_ws_open (s_ws_t *ws, const char *net, const char *token)
{
    ws->fd = s_connect ();
    if (ws->fd < 0)
        return -1;
    char req [512];
    int n = snprintf (req, sizeof req, "GET /api/v1/mesh/networks/%s/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n", net, token);
    if (write (ws->fd, req, (size_t) n) != n)
        return -1;
    ws->have = 0;
    return 0;
}

//  Reads what is there; returns the number of complete text frames consumed
//  whose payload contains `match` (all frames are consumed).
static int
s_ws_read (s_ws_t *ws, const char *match)
{
    ssize_t r = recv (ws->fd, ws->buf + ws->have, sizeof ws->buf - ws->have, MSG_DONTWAIT);
    if (r > 0)
        ws->have += (size_t) r;
    int found = 0;
    for (;;) {
        //  Skip the HTTP 101 response head first
        char *head = memmem (ws->buf, ws->have, "\r\n\r\n", 4);
        if (ws->have >= 4 && memcmp (ws->buf, "HTTP", 4) == 0) {
            if (!head)
                break;
            size_t skip = (size_t) (head + 4 - ws->buf);
            memmove (ws->buf, ws->buf + skip, ws->have - skip);
            ws->have -= skip;
            continue;
        }
        if (ws->have < 2)
            break;
        size_t len = ws->buf [1] & 127, off = 2;
        if (len == 126) {
            if (ws->have < 4)
                break;
            len = ((size_t) (uint8_t) ws->buf [2] << 8) | (uint8_t) ws->buf [3];
            off = 4;
        }
        if (ws->have < off + len)
            break;
        if (memmem (ws->buf + off, len, match, strlen (match)))
            found++;
        memmove (ws->buf, ws->buf + off + len, ws->have - off - len);
        ws->have -= off + len;
    }
    return found;
}

//  Waits until every socket has seen one frame containing match; records times.
static int
s_ws_wait_all (s_ws_t *ws, int count, const char *match, int timeout_ms)
{
    struct pollfd *pfd = (struct pollfd *) calloc ((size_t) count, sizeof *pfd);
    bool *done = (bool *) calloc ((size_t) count, sizeof *done);
    int left = count;
    int64_t deadline = bus_clock_us () + timeout_ms * 1000LL;
    while (left > 0 && bus_clock_us () < deadline) {
        int n = 0;
        int *map = (int *) calloc ((size_t) count, sizeof *map);
        for (int i = 0; i < count; i++)
            if (!done [i]) {
                pfd [n] = (struct pollfd) { .fd = ws [i].fd, .events = POLLIN };
                map [n++] = i;
            }
        if (poll (pfd, (nfds_t) n, 100) > 0) {
            int64_t now = bus_clock_us ();
            for (int j = 0; j < n; j++)
                if (pfd [j].revents) {
                    int i = map [j];
                    if (s_ws_read (&ws [i], match) > 0) {
                        ws [i].got_us = now;
                        done [i] = true;
                        left--;
                    }
                }
        }
        free (map);
    }
    free (pfd);
    free (done);
    return count - left;
}

static int
s_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

int
main (int argc, char **argv)
{
    const char *exe = argc > 1 ? argv [1] : "./services/registry/bifrost-registry";
    if (sodium_init () < 0)
        return 1;
    signal (SIGPIPE, SIG_IGN);
    char dir [] = "/tmp/bench-registry.XXXXXX";
    if (!mkdtemp (dir))
        return 1;
    //  A free port
    int probe = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    bind (probe, (struct sockaddr *) &addr, sizeof addr);
    getsockname (probe, (struct sockaddr *) &addr, &alen);
    s_port = ntohs (addr.sin_port);
    close (probe);
    char cfg [512], text [1024];
    snprintf (cfg, sizeof cfg, "%s/registry.cfg", dir);
    snprintf (text, sizeof text, "registry = { listen = \"127.0.0.1:%d\"; database = \"%s/registry.db\";"
              " admin_token = \"%s\"; rate_limit = 0; registrations_per_client = 1000000;"
              " event_queue = 100000; };\n", s_port, dir, s_admin);
    FILE *f = fopen (cfg, "w");
    fputs (text, f);
    fclose (f);
    pid_t pid = fork ();
    if (pid == 0) {
        setenv ("BIFROST_LOG_LEVEL", "warn", 1);
        char run [600];
        snprintf (run, sizeof run, "%s/run", dir);
        execl (exe, exe, "-c", cfg, "-r", run, (char *) NULL);
        perror (exe);
        _exit (127);
    }
    int fd = -1;
    for (int i = 0; i < 100 && fd < 0; i++) {
        zclock_sleep (50);
        fd = s_connect ();
    }
    if (fd < 0) {
        fprintf (stderr, "bench_registry: %s did not start\n", exe);
        return 1;
    }
    char resp [65536];
    s_http (fd, "POST", "/api/v1/mesh/networks", s_admin,
            "{\"id\":\"bench\",\"name\":\"bench\",\"cidr\":\"10.100.0.0/16\"}", resp, sizeof resp);
    s_http (fd, "POST", "/api/v1/mesh/networks/bench/tokens", s_admin, "{\"reusable\":true,\"ttl\":86400}",
            resp, sizeof resp);
    json_t *tok = json_loads (resp, 0, NULL);
    char join [80];
    snprintf (join, sizeof join, "%s", json_string_value (json_object_get (tok, "token")));
    json_decref (tok);
    long rss0 = s_rss_kb (pid);
    printf ("registry RSS at start: %ld KiB\n", rss0);

    //  1. Registrations per second (1,000 peers, 4 connections)
    enum { FAN = 1000, TOTAL = 10000 };
    s_peer_t *peers = (s_peer_t *) calloc (TOTAL, sizeof *peers);
    int ok = 0;
    double rate = s_register_many ("bench", join, 0, FAN, 4, peers, &ok);
    printf ("registrations: %d of %d in one network, %.0f per second (4 keep-alive connections,"
            " challenge + X25519 key proof + POST each)\n", ok, FAN, rate);
    int ok1 = 0;
    double rate1 = s_register_many ("bench", join, FAN, 200, 1, NULL, &ok1);
    printf ("registrations: %.0f per second on one connection (%.2f ms each)\n", rate1, 1000.0 / rate1);

    //  2. Fan-out: 1,000 WebSockets, one heartbeat changes endpoints
    s_ws_t *ws = (s_ws_t *) calloc (FAN, sizeof *ws);
    for (int i = 0; i < FAN; i++)
        s_ws_open (&ws [i], "bench", peers [i].token);
    int subscribed = s_ws_wait_all (ws, FAN, "\"subscribed\"", 20000);
    printf ("websockets subscribed: %d of %d; registry RSS %ld KiB\n", subscribed, FAN, s_rss_kb (pid));
    enum { ROUNDS = 20 };
    int64_t last [ROUNDS], all_mean [ROUNDS];
    int64_t *each = (int64_t *) calloc ((size_t) ROUNDS * FAN, sizeof *each);
    int rounds = 0;
    for (int r = 0; r < ROUNDS; r++) {
        char path [200], body [200], marker [64];
        snprintf (marker, sizeof marker, "198.51.100.%d:%d", r + 1, 40000 + r);
        snprintf (body, sizeof body, "{\"endpoints\":[\"%s\"]}", marker);
        snprintf (path, sizeof path, "/api/v1/mesh/networks/bench/peers/%s/heartbeat", peers [0].id);
        int64_t start = bus_clock_us ();
        if (s_http (fd, "PUT", path, peers [0].token, body, resp, sizeof resp) != 200)
            break;
        int got = s_ws_wait_all (ws, FAN, marker, 10000);
        if (got != FAN) {
            printf ("round %d: only %d of %d received\n", r, got, FAN);
            break;
        }
        int64_t max = 0, sum = 0;
        for (int i = 0; i < FAN; i++) {
            int64_t d = ws [i].got_us - start;
            each [rounds * FAN + i] = d;
            sum += d;
            if (d > max)
                max = d;
        }
        last [rounds] = max;
        all_mean [rounds] = sum / FAN;
        rounds++;
    }
    if (rounds > 0) {
        qsort (last, (size_t) rounds, sizeof last [0], s_cmp);
        qsort (each, (size_t) rounds * FAN, sizeof each [0], s_cmp);
        int64_t mean = 0;
        for (int r = 0; r < rounds; r++)
            mean += all_mean [r];
        printf ("fan-out to %d websockets, %d events: per receiver median %.2f ms, p99 %.2f ms, mean %.2f ms;"
                " last receiver median %.2f ms, max %.2f ms\n", FAN, rounds,
                (double) each [(size_t) rounds * FAN / 2] / 1000.0, (double) each [(size_t) rounds * FAN * 99 / 100] / 1000.0,
                (double) mean / rounds / 1000.0, (double) last [rounds / 2] / 1000.0, (double) last [rounds - 1] / 1000.0);
    }
    for (int i = 0; i < FAN; i++)
        close (ws [i].fd);
    free (ws);
    free (each);

    //  3. RSS at 10,000 peers
    int ok2 = 0;
    double rate2 = s_register_many ("bench", join, FAN + 200, TOTAL - FAN - 200, 4, NULL, &ok2);
    zclock_sleep (300);
    s_http (fd, "GET", "/api/v1/mesh/networks/bench", s_admin, NULL, resp, sizeof resp);
    json_t *net = json_loads (resp, 0, NULL);
    printf ("peers in the network: %lld (the last %d registered at %.0f per second)\n",
            (long long) json_integer_value (json_object_get (net, "peers")), ok2, rate2);
    json_decref (net);
    printf ("registry RSS at 10,000 peers: %ld KiB\n", s_rss_kb (pid));
    int64_t start = bus_clock_us ();
    int status = s_http (fd, "GET", "/api/v1/mesh/networks/bench/peers", s_admin, NULL, resp, 16);
    printf ("GET .../peers with 10,000 peers: status %d in %.1f ms\n", status, (double) (bus_clock_us () - start) / 1000.0);
    close (fd);
    free (peers);
    kill (pid, SIGTERM);
    waitpid (pid, NULL, 0);
    char cmd [700];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    if (system (cmd) != 0)
        return 1;
    return 0;
}
