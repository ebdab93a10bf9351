/*  bridge_ws_client: a real WebSocket client (libwebsockets' client) for the
    bridge's tests (tests/integration/bridge.sh, bridge_limits.sh) and its
    benchmark (bench/bridge-bench.sh; docs/bridge.md, "Testing it"). It opens
    /v0/ws/proxy with a bearer token, prints every status message as a line,
    sends binary messages and checks their echoes byte for byte, and says how
    the connection ended, so the script asserts on lines rather than on timing:

        OPEN                                the upgrade succeeded
        STATUS <STATE> <json>               a status message, strictly decoded (bridge_status)
        BADSTATUS <why>                     a text frame bridge_status refused
        STATES OK | STATES BAD <got>        the first states against --expect-states
        ECHO OK <n> <bytes>                 n messages came back intact, in order
        RATE <ms> <msg/s> <Mbit/s>          their time, first sent to last back, and rate
        RTT <median ms> <p99 ms>            their round trips (both: tests/echo_stats.h)
        ECHO BAD <why>                      one did not (or not all came back in time)
        SENT <n>                            --no-read: n messages written
        REFUSED <http status> <lws's words> the upgrade was refused (0: status unknown)
        CLOSE <code> <reason>               the bridge closed the WebSocket (1006: the
                                            connection ended without a close frame)
        END <ok|fail>                       the last line; the exit code says the same

    Message i (0-based) of N has 1 + i * (SIZE - 1) / (N - 1) bytes (SIZE when
    N = 1), sent once UDP_ESTABLISHED comes (CONNECTED with --send-now: a
    message the bridge refuses needs no far end), so 100 messages with --size
    1204 go from 1 to 1204 bytes (all SIZE with --same-size); at most
    --window (8) are in flight.
    --no-read stops reading once the flow is up and writes the messages as fast
    as the socket takes them: the slow reader of bridge_limits.sh.

    Many connections in one process, each with the state above (the lines of
    one connection are printed only when there is one):
      --url-file FILE   one connection per line (a URL each: a key each); prints
                        ESTABLISHED <n> <ms> when all n reached UDP_ESTABLISHED
                        (the benchmark's held flows)
      --flood N         N connections to --url spread evenly over one second,
                        each closed as soon as it is open; prints
                        FLOOD <n> open <o> refused <r> http429 <t> unanswered <u> slowest_ms <ms>
                        and fails when one got no answer (the rate limit's test)

    The token is read from a file (never argv) and never printed; so is the
    key, which the URL carries as the contract says. */
#include "services/bridge/bridge_status.h"
#include "tests/echo_stats.h"

#include <libwebsockets.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define S_RX_MAX    (70 * 1024)
#define S_URL_MAX   2048
#define S_CONNS_MAX 20000

//  One connection
typedef struct {
    int index;
    char url [S_URL_MAX];
    struct lws *wsi;
    bool started, open, done, failed, closing, answered;
    unsigned http;                      //  the refusal's HTTP status (0: none or unknown)
    double started_at, answered_at;
    char states [400];                  //  the states seen, comma-separated
    int states_seen;
    bool states_checked, sending, established;
    int sent, echoed;
    long long bytes;
    double hold_until, first_sent, last_echo;
    double *sent_at, *rtt;              //  per message, when --messages
    uint8_t *rx;                        //  S_RX_MAX, on the first message
    size_t rx_size;
    bool rx_binary;
    int close_code;
} s_conn_t;

static struct {
    //  options
    char auth [200];                    //  "Bearer <token>", or empty
    char expect [200];                  //  "CONNECTED,UDP_WAITING,UDP_ESTABLISHED"
    int messages, size, window, flood;
    double hold_s, timeout_s;
    int expect_close;                   //  0: none expected
    bool send_now;                      //  send once CONNECTED, not UDP_ESTABLISHED
    bool no_read;                       //  stop reading once the flow is up
    bool same_size;                     //  every message --size bytes (the benchmark)
    //  state
    struct lws_context *context;
    s_conn_t *conns;
    int count, started, done, established;
    bool quiet;                         //  more than one connection: summaries only
    double t0, deadline;
    lws_sorted_usec_list_t flood_sul;
} s;

//  A line of one connection: printed when it is the only one
static void
s_say (s_conn_t *c, const char *format, ...)
{
    (void) c;
    if (s.quiet)
        return;
    va_list args;
    va_start (args, format);
    vprintf (format, args);
    va_end (args);
}

static size_t
s_msg_size (int i)
{
    if (s.messages <= 1 || s.same_size)
        return (size_t) s.size;
    return (size_t) (1 + (long long) i * (s.size - 1) / (s.messages - 1));
}

//  Message i's bytes, from a generator seeded by i: no copy to keep
static void
s_msg_fill (int i, uint8_t *out, size_t size)
{
    uint32_t x = 2463534242u ^ (uint32_t) (i * 2654435761u);
    for (size_t k = 0; k < size; k++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out [k] = (uint8_t) x;
    }
}

//  A failed check: "<tag> <what>" on a line of its own (with the
//  connection's number when there are several)
static void
s_fail (s_conn_t *c, const char *tag, const char *what)
{
    if (s.quiet)
        printf ("%s [%d] %s\n", tag, c->index, what);
    else
        printf ("%s %s\n", tag, what);
    c->failed = true;
}

//  The first states seen, against --expect-states, once enough have come
static void
s_check_states (s_conn_t *c, bool final)
{
    if (c->states_checked || !*s.expect)
        return;
    size_t n = strlen (s.expect);
    if (strlen (c->states) >= n || final) {
        c->states_checked = true;
        if (strncmp (c->states, s.expect, n) == 0 && (c->states [n] == ',' || c->states [n] == 0))
            s_say (c, "STATES OK\n");
        else
            s_fail (c, "STATES BAD", *c->states ? c->states : "(none)");
    }
}

static void
s_status (s_conn_t *c, const char *text, size_t size)
{
    bridge_status_msg_t msg;
    char err [200];
    if (bridge_status_decode (text, size, &msg, err, sizeof err) != 0) {
        s_fail (c, "BADSTATUS", err);
        return;
    }
    bridge_state_t state = bridge_status_state (&msg);
    s_say (c, "STATUS %s %.*s\n", bridge_states [state].name, (int) size, text);
    if (c->states_seen++ < 8)
        snprintf (c->states + strlen (c->states), sizeof c->states - strlen (c->states), "%s%s",
                  *c->states ? "," : "", bridge_states [state].name);
    s_check_states (c, false);
    if (state == BRIDGE_STATE_UDP_ESTABLISHED && c->established == false && ++s.established == s.count && s.quiet)
        printf ("ESTABLISHED %d %.0f\n", s.established, (echo_stats_now () - s.t0) * 1000);
    bridge_state_t go = s.send_now ? BRIDGE_STATE_CONNECTED : BRIDGE_STATE_UDP_ESTABLISHED;
    if (state == go && !c->sending && !c->hold_until) {
        c->sending = s.messages > 0;
        if (state == BRIDGE_STATE_UDP_ESTABLISHED)
            c->established = true;
        if (s.no_read)
            lws_rx_flow_control (c->wsi, 0);
        if (c->sending) {
            c->first_sent = echo_stats_now ();
            lws_callback_on_writable (c->wsi);
        }
        else
            c->hold_until = echo_stats_now () + s.hold_s;
    }
    else if (state == BRIDGE_STATE_UDP_ESTABLISHED)
        c->established = true;
}

//  Every message came back: the totals, the rate and the round trips
static void
s_echo_done (s_conn_t *c)
{
    c->last_echo = echo_stats_now ();
    if (!s.quiet)
        echo_stats_print (c->echoed, c->bytes, c->last_echo - c->first_sent, c->rtt);
    c->hold_until = echo_stats_now () + s.hold_s;
}

static void
s_binary (s_conn_t *c, const uint8_t *data, size_t size)
{
    static uint8_t want [S_RX_MAX];
    if (c->echoed >= c->sent) {
        s_fail (c, "ECHO BAD", "a binary message that is no echo");
        return;
    }
    size_t n = s_msg_size (c->echoed);
    s_msg_fill (c->echoed, want, n);
    if (size != n || memcmp (data, want, n) != 0) {
        char why [80];
        snprintf (why, sizeof why, "message %d: %zu bytes back for %zu sent, or other bytes", c->echoed, size, n);
        s_fail (c, "ECHO BAD", why);
        return;
    }
    c->rtt [c->echoed] = echo_stats_now () - c->sent_at [c->echoed];
    c->echoed++;
    c->bytes += (long long) size;
    if (c->echoed == s.messages)
        s_echo_done (c);
    else
        lws_callback_on_writable (c->wsi);
}

//  Writes the messages due: within the window, or all of them with --no-read
static int
s_write (s_conn_t *c, struct lws *wsi)
{
    static uint8_t buf [LWS_PRE + S_RX_MAX];
    if (c->sending && c->sent < s.messages && (s.no_read || c->sent - c->echoed < s.window)) {
        size_t n = s_msg_size (c->sent);
        s_msg_fill (c->sent, buf + LWS_PRE, n);
        c->sent_at [c->sent] = echo_stats_now ();
        if (lws_write (wsi, buf + LWS_PRE, n, LWS_WRITE_BINARY) < (int) n) {
            s_fail (c, "ECHO BAD", "write failed");
            return -1;
        }
        c->sent++;
        if (s.no_read && c->sent == s.messages) {
            s_say (c, "SENT %d\n", c->sent);
            c->hold_until = echo_stats_now () + s.hold_s;
        }
        //  One lws_write per callback, as lws wants: the next is asked for
        if (c->sent < s.messages && (s.no_read || c->sent - c->echoed < s.window))
            lws_callback_on_writable (wsi);
    }
    return 0;
}

//  The connection got its answer: the upgrade, or a refusal
static void
s_answered (s_conn_t *c)
{
    if (c->answered)
        return;
    c->answered = true;
    c->answered_at = echo_stats_now ();
}

static void
s_ended (s_conn_t *c)
{
    if (c->done)
        return;
    c->done = true;
    c->wsi = NULL;
    s.done++;
}

static int
s_callback (struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    s_conn_t *c = wsi ? (s_conn_t *) lws_get_opaque_user_data (wsi) : NULL;
    if (!c)
        return 0;
    switch (reason) {
        case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
            unsigned char **p = (unsigned char **) in, *end = (*p) + len;
            if (*s.auth && lws_add_http_header_by_token (wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                                         (unsigned char *) s.auth, (int) strlen (s.auth), p, end))
                return -1;
            break;
        }
        case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
            c->http = lws_http_client_http_response (wsi);
            if (c->http)
                s_answered (c);
            s_say (c, "REFUSED %u %s\n", c->http, in ? (const char *) in : "connection failed");
            s_ended (c);
            break;
        case LWS_CALLBACK_CLIENT_ESTABLISHED:
            c->open = true;
            s_answered (c);
            s_say (c, "OPEN\n");
            if (s.flood) {
                c->closing = true;
                lws_callback_on_writable (wsi);
            }
            lws_set_timer_usecs (wsi, s.quiet ? 250000 : 50000);
            break;
        case LWS_CALLBACK_CLIENT_RECEIVE:
            if (lws_is_first_fragment (wsi)) {
                c->rx_size = 0;
                c->rx_binary = lws_frame_is_binary (wsi);
            }
            if (!c->rx)
                c->rx = (uint8_t *) malloc (S_RX_MAX);
            if (!c->rx || c->rx_size + len > S_RX_MAX) {
                s_fail (c, "ECHO BAD", "a message larger than any the bridge may send");
                return -1;
            }
            memcpy (c->rx + c->rx_size, in, len);
            c->rx_size += len;
            if (lws_is_final_fragment (wsi) && lws_remaining_packet_payload (wsi) == 0) {
                if (c->rx_binary)
                    s_binary (c, c->rx, c->rx_size);
                else
                    s_status (c, (const char *) c->rx, c->rx_size);
                c->rx_size = 0;
            }
            break;
        case LWS_CALLBACK_CLIENT_WRITEABLE:
            if (c->closing) {
                lws_close_reason (wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *) "done", 4);
                return -1;
            }
            return s_write (c, wsi);
        case LWS_CALLBACK_TIMER:
            //  The hold ends, or the deadline: close normally
            if ((c->hold_until > 0 && echo_stats_now () >= c->hold_until) || echo_stats_now () >= s.deadline) {
                c->closing = true;
                lws_callback_on_writable (wsi);
            }
            lws_set_timer_usecs (wsi, s.quiet ? 250000 : 50000);
            break;
        case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
            const uint8_t *p = (const uint8_t *) in;
            c->close_code = len >= 2 ? (p [0] << 8 | p [1]) : 1005;
            s_say (c, "CLOSE %d %.*s\n", c->close_code, len > 2 ? (int) len - 2 : 0, len > 2 ? (const char *) p + 2 : "");
            break;
        }
        case LWS_CALLBACK_CLIENT_CLOSED:
            //  Gone without a close frame (the bridge's process ended): 1006, RFC 6455 7.1.5
            if (c->open && !c->closing && !c->close_code) {
                c->close_code = 1006;
                s_say (c, "CLOSE 1006 connection lost\n");
            }
            s_ended (c);
            break;
        case LWS_CALLBACK_WSI_DESTROY:
            s_ended (c);
            break;
        default:
            break;
    }
    return 0;
}

static const struct lws_protocols s_protocols [] = {
    { "bridge-test", s_callback, 0, S_RX_MAX, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 }
};

//  Starts connection c: ws://host:port/path?query (lws_parse_uri cuts it in
//  place; the path loses its '/'); -1 when the URL is not one
static int
s_connect (s_conn_t *c)
{
    char parsed [S_URL_MAX], path [S_URL_MAX + 1];
    memcpy (parsed, c->url, sizeof parsed);
    const char *scheme, *host, *rest;
    int port = 0;
    c->started = true;
    c->started_at = echo_stats_now ();
    s.started++;
    if (lws_parse_uri (parsed, &scheme, &host, &port, &rest) || strcmp (scheme, "ws") != 0) {
        fprintf (stderr, "bridge_ws_client: a URL must be ws://HOST:PORT/PATH\n");
        s_ended (c);
        return -1;
    }
    snprintf (path, sizeof path, "/%s", rest);
    struct lws_client_connect_info ci;
    memset (&ci, 0, sizeof ci);
    ci.context = s.context;
    ci.address = host;
    ci.port = port;
    ci.path = path;
    ci.host = host;
    ci.origin = host;
    ci.protocol = NULL;                 //  the bridge names no subprotocol
    ci.local_protocol_name = s_protocols [0].name;
    ci.pwsi = &c->wsi;
    ci.opaque_user_data = c;
    if (!lws_client_connect_via_info (&ci) && !c->done) {
        s_say (c, "REFUSED 0 cannot start the connection\n");
        s_ended (c);
    }
    return 0;
}

//  --flood: the connections due by now, spread evenly over one second
static void
s_flood_next (lws_sorted_usec_list_t *sul)
{
    int due = (int) ((echo_stats_now () - s.t0) * s.count) + 1;
    while (s.started < s.count && s.started < due)
        s_connect (&s.conns [s.started]);
    if (s.started < s.count)
        lws_sul_schedule (s.context, 0, &s.flood_sul, s_flood_next, 1000);
}

//  The connections' URLs: --url once or --flood times, or a file's lines
static int
s_urls (const char *url, const char *file)
{
    if (file) {
        FILE *f = fopen (file, "r");
        if (!f) {
            fprintf (stderr, "bridge_ws_client: cannot read %s\n", file);
            return -1;
        }
        char line [S_URL_MAX];
        while (fgets (line, sizeof line, f) && s.count < S_CONNS_MAX) {
            line [strcspn (line, "\r\n")] = 0;
            if (!*line)
                continue;
            s.conns = (s_conn_t *) realloc (s.conns, (size_t) (s.count + 1) * sizeof *s.conns);
            memset (&s.conns [s.count], 0, sizeof *s.conns);
            snprintf (s.conns [s.count].url, S_URL_MAX, "%s", line);
            s.count++;
        }
        fclose (f);
    }
    else {
        s.count = s.flood ? s.flood : 1;
        s.conns = (s_conn_t *) calloc ((size_t) s.count, sizeof *s.conns);
        for (int i = 0; i < s.count; i++)
            snprintf (s.conns [i].url, S_URL_MAX, "%s", url);
    }
    for (int i = 0; i < s.count; i++) {
        s.conns [i].index = i;
        if (s.messages > 0) {
            s.conns [i].sent_at = (double *) calloc ((size_t) s.messages, sizeof (double));
            s.conns [i].rtt = (double *) calloc ((size_t) s.messages, sizeof (double));
        }
    }
    return s.count > 0 ? 0 : -1;
}

//  After the loop: each connection's checks; true when one failed
static bool
s_verdict (void)
{
    bool failed = false;
    int open = 0, refused = 0, http429 = 0, unanswered = 0;
    double slowest = 0;
    for (int i = 0; i < s.count; i++) {
        s_conn_t *c = &s.conns [i];
        s_check_states (c, true);
        if (s.messages > 0 && c->echoed < s.messages && !c->failed && !s.expect_close && !s.no_read) {
            char why [80];
            snprintf (why, sizeof why, "%d of %d messages came back", c->echoed, s.messages);
            s_fail (c, "ECHO BAD", why);
        }
        if (s.no_read && c->sent < s.messages)
            s_fail (c, "SENT BAD", "not every message was written");
        if (s.expect_close && c->close_code != s.expect_close) {
            char why [60];
            snprintf (why, sizeof why, "expected %d, got %d", s.expect_close, c->close_code);
            s_fail (c, "CLOSE BAD", why);
        }
        if (!c->open && !s.expect_close && !s.flood)
            c->failed = true;
        open += c->open;
        refused += !c->open && c->answered;
        http429 += c->http == 429;
        unanswered += !c->answered;
        if (c->answered && c->answered_at - c->started_at > slowest)
            slowest = c->answered_at - c->started_at;
        failed |= c->failed;
        free (c->sent_at);
        free (c->rtt);
        free (c->rx);
    }
    if (s.flood) {
        printf ("FLOOD %d open %d refused %d http429 %d unanswered %d slowest_ms %.0f\n",
                s.count, open, refused, http429, unanswered, slowest * 1000);
        failed |= unanswered > 0;
    }
    else if (s.quiet)
        printf ("CONNECTIONS %d open %d established %d failed %s\n", s.count, open, s.established,
                failed ? "yes" : "no");
    free (s.conns);
    return failed;
}

static int
s_usage (FILE *out)
{
    fprintf (out,
        "usage: bridge_ws_client (--url ws://HOST:PORT/v0/ws/proxy?QUERY | --url-file FILE)\n"
        "       [--token-file FILE] [--expect-states A,B,..] [--messages N] [--size BYTES]\n"
        "       [--window N] [--same-size] [--no-read] [--hold SECONDS] [--expect-close CODE]\n"
        "       [--send-now] [--flood N] [--timeout SECONDS]\n");
    return out == stdout ? 0 : 2;
}

int
main (int argc, char **argv)
{
    static const struct option options [] = {
        { "url", required_argument, NULL, 'u' },
        { "url-file", required_argument, NULL, 'F' },
        { "token-file", required_argument, NULL, 'T' },
        { "expect-states", required_argument, NULL, 'e' },
        { "messages", required_argument, NULL, 'n' },
        { "size", required_argument, NULL, 's' },
        { "window", required_argument, NULL, 'w' },
        { "hold", required_argument, NULL, 'H' },
        { "expect-close", required_argument, NULL, 'c' },
        { "timeout", required_argument, NULL, 't' },
        { "send-now", no_argument, NULL, 'N' },
        { "no-read", no_argument, NULL, 'R' },
        { "same-size", no_argument, NULL, 'S' },
        { "flood", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *url = NULL, *url_file = NULL;
    s.size = 1204;
    s.window = 8;
    s.timeout_s = 20;
    int opt;
    while ((opt = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
            case 'u': url = optarg; break;
            case 'F': url_file = optarg; break;
            case 'T': {
                FILE *f = fopen (optarg, "r");
                char token [160] = "";
                if (!f || !fgets (token, sizeof token, f)) {
                    fprintf (stderr, "bridge_ws_client: cannot read the token file %s\n", optarg);
                    if (f)
                        fclose (f);
                    return 2;
                }
                fclose (f);
                token [strcspn (token, "\r\n")] = 0;
                snprintf (s.auth, sizeof s.auth, "Bearer %s", token);
                break;
            }
            case 'e': snprintf (s.expect, sizeof s.expect, "%s", optarg); break;
            case 'n': s.messages = atoi (optarg); break;
            case 's': s.size = atoi (optarg); break;
            case 'w': s.window = atoi (optarg); break;
            case 'H': s.hold_s = atof (optarg); break;
            case 'c': s.expect_close = atoi (optarg); break;
            case 't': s.timeout_s = atof (optarg); break;
            case 'N': s.send_now = true; break;
            case 'R': s.no_read = true; break;
            case 'S': s.same_size = true; break;
            case 'f': s.flood = atoi (optarg); break;
            case 'h': return s_usage (stdout);
            default: return s_usage (stderr);
        }
    }
    if (!url == !url_file || (url_file && s.flood) || s.messages < 0 || s.size < 1 || s.size > S_RX_MAX
    ||  s.timeout_s <= 0 || s.window < 1 || s.flood < 0 || s.flood > S_CONNS_MAX
    ||  strlen (url ? url : "") >= S_URL_MAX)
        return s_usage (stderr);
    setvbuf (stdout, NULL, _IOLBF, 0);
    if (s_urls (url, url_file))
        return 2;
    s.quiet = s.count > 1;
    //  Many connections: as many descriptors as the hard limit allows
    struct rlimit rl;
    if (s.count > 1 && getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit (RLIMIT_NOFILE, &rl);
    }

    lws_set_log_level (LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset (&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = s_protocols;
    info.gid = -1;
    info.uid = -1;
    info.timeout_secs = 5;
    info.connect_timeout_secs = 5;
    info.max_http_header_pool = (unsigned short) (s.count < 1024 ? s.count : 1024);
    s.context = lws_create_context (&info);
    if (!s.context) {
        fprintf (stderr, "bridge_ws_client: cannot make a libwebsockets context\n");
        return 2;
    }
    s.t0 = echo_stats_now ();
    s.deadline = s.t0 + s.timeout_s;
    if (s.flood)
        s_flood_next (&s.flood_sul);
    else
        for (int i = 0; i < s.count; i++)
            if (s_connect (&s.conns [i]))
                return 2;
    while ((s.done < s.count || s.started < s.count) && echo_stats_now () < s.deadline + 2)
        lws_service (s.context, 0);
    lws_context_destroy (s.context);
    bool failed = s_verdict ();
    printf ("END %s\n", failed ? "fail" : "ok");
    return failed ? 1 : 0;
}
