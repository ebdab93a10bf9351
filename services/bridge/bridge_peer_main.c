/*  bifrost-bridge-peer: the far end of a bridge flow, as a program (docs/bridge.md,
    "The peer program"). The bridge_peer class does the work; this file reads
    the options and the key file, and runs a poll loop over the socket, stdin
    and a signalfd (SIGUSR1: counters; SIGTERM, SIGINT: counters, then exit).

    Not a bus service: it runs on the far end's host, which need not run
    bifrostd, so it is installed in bin. The key comes from a file only (never
    argv, where ps shows it, nor the environment), refused unless 0600. */
#include "bridge_peer.h"
#include "bridge_params.h"
#include "bus_clock.h"
#include "bus_log.h"

#include <sodium.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define S_EXIT_CONFIG   78              //  permanent failure (docs/supervisor.md)

static void
s_usage (FILE *out, const char *prog)
{
    fprintf (out,
        "%s - the far end of a Bifrost bridge flow (WebSocket to encrypted UDP)\n\n"
        "usage: %s --listen ADDR:PORT --key-file FILE [--cipher NAME] [--target ADDR:PORT]\n"
        "       [--interval MS] [--echo] [-v] [--check-config]\n\n"
        "  -l, --listen ADDR:PORT  the UDP address to receive the flow on (IPv4:port, [IPv6]:port)\n"
        "  -k, --key-file FILE     the flow key: base64 of 32 bytes (the `key` the WebSocket\n"
        "                          client gives the bridge); the file must be mode 0600\n"
        "  -c, --cipher NAME       auto (default), aes256gcm or chacha20poly1305: as the client's\n"
        "  -t, --target ADDR:PORT  the bridge's UDP address: heartbeats go there from the start,\n"
        "                          so this side's NAT lets the bridge's datagrams in\n"
        "  -e, --echo              send every message back (tests); otherwise each message\n"
        "                          goes to stdout, and each read of stdin becomes one message\n"
        "  -i, --interval MS       heartbeat interval, 50..60000 ms\n"
        "  -v, --verbose           debug logging (dropped datagrams and why)\n"
        "      --check-config      check the options and the key file, exit 0 or 78\n"
        "  -h, --help              this text\n\n"
        "SIGUSR1 prints the counters as one JSON line on stderr; SIGTERM prints them and exits.\n"
        "Heartbeats every %d ms (--interval MS; keep it below the bridge's heartbeat_timeout);\n"
        "the far end counts as gone after %d ms of silence (\"established\" in the counters).\n",
        prog, prog, BRIDGE_PEER_INTERVAL_MS, BRIDGE_PEER_TIMEOUT_MS);
}

//  An address option through bridge_params' parser (one grammar for the bridge and its peer)
static int
s_endpoint (const char *option, const char *text, struct sockaddr_storage *addr, socklen_t *len)
{
    char err [160];
    if (bridge_params_endpoint (text, addr, len, err, sizeof err) == 0)
        return 0;
    bus_error ("--%s: %s", option, err);
    return -1;
}

static void
s_to_stdout (void *arg, const uint8_t *data, size_t size)
{
    //  One write per message; a reader that is gone ends the program (EPIPE)
    size_t done = 0;
    while (done < size) {
        ssize_t n = write (STDOUT_FILENO, data + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *(bool *) arg = true;
            return;
        }
        done += (size_t) n;
    }
}

int
main (int argc, char **argv)
{
    static const struct option options [] = {
        { "listen", required_argument, NULL, 'l' },
        { "key-file", required_argument, NULL, 'k' },
        { "cipher", required_argument, NULL, 'c' },
        { "target", required_argument, NULL, 't' },
        { "echo", no_argument, NULL, 'e' },
        { "interval", required_argument, NULL, 'i' },
        { "verbose", no_argument, NULL, 'v' },
        { "check-config", no_argument, NULL, 'C' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    bus_log_init ("bifrost-bridge-peer");
    bridge_peer_config_t config;
    memset (&config, 0, sizeof config);
    config.role = BRIDGE_FLOW_PEER;
    config.cipher = BRIDGE_CIPHER_AUTO;
    const char *listen_at = NULL, *key_file = NULL, *target = NULL;
    bool check = false, bad = false;
    int opt;
    while ((opt = getopt_long (argc, argv, "l:k:c:t:ei:vh", options, NULL)) != -1) {
        switch (opt) {
            case 'l': listen_at = optarg; break;
            case 'k': key_file = optarg; break;
            case 'c': {
                int cipher = bridge_flow_cipher_parse (optarg);
                if (cipher < 0) {
                    bus_error ("--cipher: '%s' is not auto, aes256gcm or chacha20poly1305", optarg);
                    bad = true;
                }
                else
                    config.cipher = (bridge_cipher_t) cipher;
                break;
            }
            case 't':
                target = optarg;
                bad |= s_endpoint ("target", optarg, &config.target, &config.target_len) != 0;
                break;
            case 'i': {
                char *end;
                long ms = strtol (optarg, &end, 10);
                if (end == optarg || *end || ms < 50 || ms > 60000) {
                    bus_error ("--interval: '%s' is not 50..60000 ms", optarg);
                    bad = true;
                }
                else
                    config.interval_ms = (int) ms;
                break;
            }
            case 'e': config.echo = true; break;
            case 'v': bus_log_set_level (BUS_LOG_DEBUG); break;
            case 'C': check = true; break;
            case 'h': s_usage (stdout, argv [0]); return 0;
            default:
                fprintf (stderr, "try '%s --help'\n", argv [0]);
                return S_EXIT_CONFIG;
        }
    }
    if (optind < argc) {
        //  Not echoed: it may be a key typed where it must not go
        bus_error ("unexpected argument after the options (a key goes in --key-file, never on the command line)");
        bad = true;
    }
    if (!listen_at) {
        bus_error ("--listen ADDR:PORT is required");
        bad = true;
    }
    else
        bad |= s_endpoint ("listen", listen_at, &config.listen, &config.listen_len) != 0;
    char err [300];
    if (!key_file) {
        bus_error ("--key-file FILE is required");
        bad = true;
    }
    else
    if (bridge_peer_key_load (key_file, config.key, err, sizeof err) != 0) {
        bus_error ("%s", err);
        bad = true;
    }
    const char *why = bridge_flow_cipher_error (config.cipher);
    if (why) {
        bus_error ("--cipher: %s", why);
        bad = true;
    }
    if (bad || check) {
        sodium_memzero (&config, sizeof config);
        return bad ? S_EXIT_CONFIG : 0;
    }

    bridge_peer_t *peer = bridge_peer_new (&config, err, sizeof err);
    sodium_memzero (config.key, sizeof config.key);
    if (!peer) {
        bus_error ("%s", err);
        return 1;
    }
    bool out_gone = false;
    bridge_peer_set_data_fn (peer, s_to_stdout, &out_gone);
    sigset_t mask;
    sigemptyset (&mask);
    sigaddset (&mask, SIGUSR1);
    sigaddset (&mask, SIGTERM);
    sigaddset (&mask, SIGINT);
    sigprocmask (SIG_BLOCK, &mask, NULL);
    int sfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        bus_error ("signalfd: %s", strerror (errno));
        bridge_peer_destroy (&peer);
        return 1;
    }
    signal (SIGPIPE, SIG_IGN);
    bus_info ("listening on %s (port %u), %s, %s%s%s", listen_at, bridge_peer_port (peer),
              bridge_peer_cipher_name (peer), config.echo ? "echo" : "stdin/stdout",
              target ? ", heartbeats toward " : "", target ? target : "");

    bool in_open = !config.echo, running = true;
    static uint8_t line [BRIDGE_MESSAGE_MAX];
    while (running && !out_gone) {
        int wait = bridge_peer_tick (peer, bus_clock_ms ());
        struct pollfd fds [3] = {
            { bridge_peer_fd (peer), POLLIN, 0 },
            { sfd, POLLIN, 0 },
            { in_open ? STDIN_FILENO : -1, POLLIN, 0 }
        };
        if (poll (fds, 3, wait) < 0 && errno != EINTR) {
            bus_error ("poll: %s", strerror (errno));
            break;
        }
        if (fds [0].revents)
            bridge_peer_recv (peer, bus_clock_ms ());
        if (fds [2].revents) {
            //  One read, one message: at most the default largest message
            ssize_t n = read (STDIN_FILENO, line, sizeof line);
            if (n > 0)
                bridge_peer_send (peer, line, (size_t) n);
            else
            if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                in_open = false;                //  end of input: keep serving the flow
                bus_debug ("stdin closed");
            }
        }
        if (fds [1].revents) {
            struct signalfd_siginfo info;
            while (read (sfd, &info, sizeof info) == (ssize_t) sizeof info) {
                if (info.ssi_signo == SIGUSR1)
                    bridge_peer_print_stats (peer, bus_clock_ms (), stderr);
                else
                    running = false;
            }
        }
    }
    bridge_peer_print_stats (peer, bus_clock_ms (), stderr);
    close (sfd);
    bridge_peer_destroy (&peer);
    return 0;
}
