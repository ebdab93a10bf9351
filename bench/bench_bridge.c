/*  bench_bridge: the UDP ends of the bridge's benchmark (bench/bridge-bench.sh,
    docs/benchmarks.md "Bridge"), made of the bridge_peer class
    (services/bridge/bridge_peer.h), so the flows are those bifrost-bridge-peer
    makes:

      bench_bridge peers --listen IP --port P --count N --url ws://HOST:PORT/v0/ws/proxy --url-file FILE
          N echoing peers on IP:P .. IP:P+N-1 in one process (bifrost-bridge-peer
          serves one flow per process: a thousand of them would measure process
          overhead, not the bridge), each with a fresh key; FILE gets one
          client URL per peer, for bridge_ws_client --url-file. Prints READY N,
          then serves until SIGTERM and prints PEERS N established E.

      bench_bridge direct --target IP:PORT --key-file FILE --messages N --size BYTES --window W
          the direct flow the bridge is compared with: this end plays the
          bridge (the client role, as bridge_peer's self test does) toward a
          bifrost-bridge-peer --echo: the same encryption, no WebSocket. Prints
          bridge_ws_client's lines, ECHO OK <n> <bytes>, RATE <ms> <msg/s>
          <Mbit/s>, RTT <median ms> <p99 ms>, and LOST <n> (UDP may lose: a
          window with nothing back for a second counts as lost). */
#include "services/bridge/bridge_peer.h"
#include "services/bridge/bridge_params.h"
#include "tests/echo_stats.h"
#include "bus_clock.h"
#include "bus_log.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define S_LOST_MS   1000

static struct {
    const char *listen, *url, *url_file, *target, *key_file;
    int port, count, messages, size, window;
} o = { .size = 1204, .window = 8, .messages = 1000 };

static int
s_endpoint (const char *text, struct sockaddr_storage *addr, socklen_t *len)
{
    char err [160];
    if (bridge_params_endpoint (text, addr, len, err, sizeof err) == 0)
        return 0;
    fprintf (stderr, "bench_bridge: %s\n", err);
    return -1;
}

//  ---------------------------------------------------------------------------
//  peers

//  One URL for peer i: its address and its key, the key's base64 escaped
static void
s_url (FILE *out, const char *host, int port, const uint8_t *key)
{
    char b64 [sodium_base64_ENCODED_LEN (BRIDGE_WIRE_KEY_SIZE, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64 (b64, sizeof b64, key, BRIDGE_WIRE_KEY_SIZE, sodium_base64_VARIANT_ORIGINAL);
    fprintf (out, "%s?target=%s%s%s:%d&key=", o.url, strchr (host, ':') ? "[" : "", host,
             strchr (host, ':') ? "]" : "", port);
    for (const char *c = b64; *c; c++)
        if (*c == '+' || *c == '/' || *c == '=')
            fprintf (out, "%%%02X", (unsigned char) *c);
        else
            fputc (*c, out);
    fprintf (out, "&cipher=auto\n");
    sodium_memzero (b64, sizeof b64);
}

static int
s_peers (void)
{
    struct rlimit rl;
    if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit (RLIMIT_NOFILE, &rl);
    }
    FILE *urls = fopen (o.url_file, "w");
    if (!urls) {
        fprintf (stderr, "bench_bridge: cannot write %s: %s\n", o.url_file, strerror (errno));
        return 1;
    }
    bridge_peer_t **peers = (bridge_peer_t **) calloc ((size_t) o.count, sizeof *peers);
    struct pollfd *fds = (struct pollfd *) calloc ((size_t) o.count + 1, sizeof *fds);
    int rc = 0;
    for (int i = 0; i < o.count && rc == 0; i++) {
        char at [80], err [200] = "a bad address";
        snprintf (at, sizeof at, strchr (o.listen, ':') ? "[%s]:%d" : "%s:%d", o.listen, o.port + i);
        bridge_peer_config_t config;
        memset (&config, 0, sizeof config);
        config.role = BRIDGE_FLOW_PEER;
        config.cipher = BRIDGE_CIPHER_AUTO;
        config.echo = true;
        randombytes_buf (config.key, sizeof config.key);
        if (s_endpoint (at, &config.listen, &config.listen_len) == 0
        &&  (peers [i] = bridge_peer_new (&config, err, sizeof err)) != NULL) {
            s_url (urls, o.listen, o.port + i, config.key);
            fds [i] = (struct pollfd) { bridge_peer_fd (peers [i]), POLLIN, 0 };
        }
        else {
            fprintf (stderr, "bench_bridge: peer %d at %s: %s\n", i, at, peers [i] ? "" : err);
            rc = 1;
        }
        sodium_memzero (&config, sizeof config);
    }
    fclose (urls);
    sigset_t mask;
    sigemptyset (&mask);
    sigaddset (&mask, SIGTERM);
    sigaddset (&mask, SIGINT);
    sigprocmask (SIG_BLOCK, &mask, NULL);
    fds [o.count] = (struct pollfd) { signalfd (-1, &mask, SFD_CLOEXEC), POLLIN, 0 };
    if (rc == 0) {
        printf ("READY %d\n", o.count);
        fflush (stdout);
    }
    while (rc == 0 && !fds [o.count].revents) {
        int wait = 1000;
        for (int i = 0; i < o.count; i++) {
            int next = bridge_peer_tick (peers [i], bus_clock_ms ());
            wait = next < wait ? next : wait;
        }
        if (poll (fds, (nfds_t) o.count + 1, wait) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < o.count; i++)
            if (fds [i].revents)
                bridge_peer_recv (peers [i], bus_clock_ms ());
    }
    int established = 0;
    for (int i = 0; i < o.count; i++) {
        established += peers [i] && bridge_peer_established (peers [i], bus_clock_ms ());
        bridge_peer_destroy (&peers [i]);
    }
    if (rc == 0)
        printf ("PEERS %d established %d\n", o.count, established);
    close (fds [o.count].fd);
    free (fds);
    free (peers);
    return rc;
}

//  ---------------------------------------------------------------------------
//  direct

static struct {
    int received, bad;
    double *sent_at, *rtt;
    double last;
} d;

static void
s_echoed (void *arg, const uint8_t *data, size_t size)
{
    uint32_t seq;
    if (size != (size_t) o.size || size < sizeof seq) {
        d.bad++;
        return;
    }
    memcpy (&seq, data, sizeof seq);
    if (seq >= (uint32_t) o.messages || d.sent_at [seq] == 0) {
        d.bad++;
        return;
    }
    d.last = echo_stats_now ();
    d.rtt [d.received++] = d.last - d.sent_at [seq];
    d.sent_at [seq] = 0;                //  a duplicate would be bad
}

static int
s_direct (void)
{
    bridge_peer_config_t config;
    memset (&config, 0, sizeof config);
    config.role = BRIDGE_FLOW_CLIENT;
    config.cipher = BRIDGE_CIPHER_AUTO;
    char err [300];
    if (s_endpoint (o.target, &config.target, &config.target_len))
        return 1;
    //  Any port, any address of the target's family (all zero)
    config.listen.ss_family = config.target.ss_family;
    config.listen_len = config.target_len;
    if (bridge_peer_key_load (o.key_file, config.key, err, sizeof err)) {
        fprintf (stderr, "bench_bridge: %s\n", err);
        return 1;
    }
    bridge_peer_t *peer = bridge_peer_new (&config, err, sizeof err);
    sodium_memzero (&config, sizeof config);
    if (!peer) {
        fprintf (stderr, "bench_bridge: %s\n", err);
        return 1;
    }
    bridge_peer_set_data_fn (peer, s_echoed, NULL);
    d.sent_at = (double *) calloc ((size_t) o.messages, sizeof (double));
    d.rtt = (double *) calloc ((size_t) o.messages, sizeof (double));
    uint8_t *msg = (uint8_t *) calloc (1, (size_t) o.size);
    randombytes_buf (msg, (size_t) o.size);
    struct pollfd fd = { bridge_peer_fd (peer), POLLIN, 0 };
    //  Heartbeats until the echoing end answered: then it is the far end
    double until = echo_stats_now () + 5;
    while (!*bridge_peer_far_end (peer) && echo_stats_now () < until) {
        int wait = bridge_peer_tick (peer, bus_clock_ms ());
        if (poll (&fd, 1, wait < 100 ? wait : 100) > 0)
            bridge_peer_recv (peer, bus_clock_ms ());
    }
    int sent = 0, lost = 0, rc = 0;
    double first = echo_stats_now (), progress = first;
    while (*bridge_peer_far_end (peer) && d.received + lost < o.messages) {
        while (sent < o.messages && sent - d.received - lost < o.window) {
            uint32_t seq = (uint32_t) sent;
            memcpy (msg, &seq, sizeof seq);
            d.sent_at [sent] = echo_stats_now ();
            bridge_peer_send (peer, msg, (size_t) o.size);
            sent++;
        }
        int wait = bridge_peer_tick (peer, bus_clock_ms ());
        int before = d.received;
        if (poll (&fd, 1, wait < 100 ? wait : 100) > 0)
            bridge_peer_recv (peer, bus_clock_ms ());
        if (d.received > before)
            progress = echo_stats_now ();
        else if (echo_stats_now () - progress > S_LOST_MS / 1000.0) {
            for (int i = 0; i < sent; i++)
                if (d.sent_at [i] != 0) {
                    d.sent_at [i] = 0;
                    lost++;
                }
            progress = echo_stats_now ();
        }
    }
    if (d.received == 0 || d.bad) {
        printf ("ECHO BAD %d back of %d sent, %d bad%s\n", d.received, sent, d.bad,
                *bridge_peer_far_end (peer) ? "" : ": the echoing end never answered");
        rc = 1;
    }
    else {
        echo_stats_print (d.received, (long long) d.received * o.size, d.last - first, d.rtt);
        printf ("LOST %d\n", lost);
    }
    free (msg);
    free (d.sent_at);
    free (d.rtt);
    bridge_peer_destroy (&peer);
    return rc;
}

static int
s_usage (void)
{
    fprintf (stderr,
        "usage: bench_bridge peers --listen IP --port P --count N --url ws://HOST:PORT/v0/ws/proxy --url-file FILE\n"
        "       bench_bridge direct --target IP:PORT --key-file FILE [--messages N] [--size BYTES] [--window W]\n");
    return 2;
}

int
main (int argc, char **argv)
{
    static const struct option options [] = {
        { "listen", required_argument, NULL, 'l' },
        { "port", required_argument, NULL, 'p' },
        { "count", required_argument, NULL, 'c' },
        { "url", required_argument, NULL, 'u' },
        { "url-file", required_argument, NULL, 'f' },
        { "target", required_argument, NULL, 't' },
        { "key-file", required_argument, NULL, 'k' },
        { "messages", required_argument, NULL, 'n' },
        { "size", required_argument, NULL, 's' },
        { "window", required_argument, NULL, 'w' },
        { NULL, 0, NULL, 0 }
    };
    if (argc < 2 || sodium_init () < 0)
        return s_usage ();
    bus_log_init ("bench_bridge");
    const char *mode = argv [1];
    optind = 2;
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
            case 'l': o.listen = optarg; break;
            case 'p': o.port = atoi (optarg); break;
            case 'c': o.count = atoi (optarg); break;
            case 'u': o.url = optarg; break;
            case 'f': o.url_file = optarg; break;
            case 't': o.target = optarg; break;
            case 'k': o.key_file = optarg; break;
            case 'n': o.messages = atoi (optarg); break;
            case 's': o.size = atoi (optarg); break;
            case 'w': o.window = atoi (optarg); break;
            default: return s_usage ();
        }
    }
    setvbuf (stdout, NULL, _IOLBF, 0);
    if (strcmp (mode, "peers") == 0 && o.listen && o.url && o.url_file && o.count > 0
    &&  o.port > 0 && o.port + o.count <= 65536)
        return s_peers ();
    if (strcmp (mode, "direct") == 0 && o.target && o.key_file && o.messages > 0 && o.window > 0
    &&  o.size >= 4 && o.size <= BRIDGE_MESSAGE_MAX)
        return s_direct ();
    return s_usage ();
}
