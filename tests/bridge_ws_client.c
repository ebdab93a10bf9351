/*  bridge_ws_client: a real WebSocket client (libwebsockets' client) for the
    bridge's end-to-end test (tests/integration/bridge.sh; docs/bridge.md,
    "Testing it"). It opens /v0/ws/proxy with a bearer token, prints every
    status message as a line, sends binary messages and checks their echoes
    byte for byte, and says how the connection ended, so the script asserts
    on lines rather than on timing:

        OPEN                                the upgrade succeeded
        STATUS <STATE> <json>               a status message, strictly decoded (bridge_status)
        BADSTATUS <why>                     a text frame bridge_status refused
        STATES OK | STATES BAD <got>        the first states against --expect-states
        ECHO OK <n> <bytes>                 n messages came back intact, in order
        ECHO BAD <why>                      one did not (or not all came back in time)
        REFUSED <http status> <lws's words> the upgrade was refused (0: status unknown)
        CLOSE <code> <reason>               the bridge closed the WebSocket
        END <ok|fail>                       the last line; the exit code says the same

    Message i (0-based) of N has 1 + i * (SIZE - 1) / (N - 1) bytes (SIZE when
    N = 1), sent once UDP_ESTABLISHED comes (CONNECTED with --send-now: a
    message the bridge refuses needs no far end), so 100 messages with --size 1204 go from 1 to 1204 bytes; at most
    8 are in flight. The token is read from a file (never argv) and never
    printed; so is the key, which the URL carries as the contract says. */
#include "services/bridge/bridge_status.h"

#include <libwebsockets.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_WINDOW    8
#define S_RX_MAX    (70 * 1024)

static struct {
    //  options
    char url [2048];
    char auth [200];                    //  "Bearer <token>", or empty
    char expect [200];                  //  "CONNECTED,UDP_WAITING,UDP_ESTABLISHED"
    int messages, size;
    double hold_s, timeout_s;
    int expect_close;                   //  0: none expected
    bool send_now;                      //  send once CONNECTED, not UDP_ESTABLISHED
    //  state
    struct lws *wsi;
    bool open, done, failed, closing;
    char states [400];                  //  the states seen, comma-separated
    int states_seen;
    bool states_checked, sending, established;
    int sent, echoed;
    long long bytes;
    double hold_until, deadline;
    uint8_t rx [S_RX_MAX];
    size_t rx_size;
    bool rx_binary;
    int close_code;
} s;

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t
s_msg_size (int i)
{
    if (s.messages <= 1)
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

//  A failed check: "<tag> <what>" on a line of its own
static void
s_fail (const char *tag, const char *what)
{
    printf ("%s %s\n", tag, what);
    s.failed = true;
}

//  The first states seen, against --expect-states, once enough have come
static void
s_check_states (bool final)
{
    if (s.states_checked || !*s.expect)
        return;
    size_t n = strlen (s.expect);
    if (strlen (s.states) >= n || final) {
        s.states_checked = true;
        if (strncmp (s.states, s.expect, n) == 0 && (s.states [n] == ',' || s.states [n] == 0))
            printf ("STATES OK\n");
        else
            s_fail ("STATES BAD", *s.states ? s.states : "(none)");
    }
}

static void
s_status (const char *text, size_t size)
{
    bridge_status_msg_t msg;
    char err [200];
    if (bridge_status_decode (text, size, &msg, err, sizeof err) != 0) {
        s_fail ("BADSTATUS", err);
        return;
    }
    const char *state = bridge_states [bridge_status_state (&msg)].name;
    printf ("STATUS %s %.*s\n", state, (int) size, text);
    if (s.states_seen++ < 8)
        snprintf (s.states + strlen (s.states), sizeof s.states - strlen (s.states), "%s%s",
                  *s.states ? "," : "", state);
    s_check_states (false);
    bridge_state_t go = s.send_now ? BRIDGE_STATE_CONNECTED : BRIDGE_STATE_UDP_ESTABLISHED;
    if (bridge_status_state (&msg) == go && !s.established) {
        s.established = true;
        s.sending = s.messages > 0;
        if (s.sending)
            lws_callback_on_writable (s.wsi);
        else
            s.hold_until = s_now () + s.hold_s;
    }
}

static void
s_binary (const uint8_t *data, size_t size)
{
    static uint8_t want [S_RX_MAX];
    if (s.echoed >= s.sent) {
        s_fail ("ECHO BAD", "a binary message that is no echo");
        return;
    }
    size_t n = s_msg_size (s.echoed);
    s_msg_fill (s.echoed, want, n);
    if (size != n || memcmp (data, want, n) != 0) {
        char why [80];
        snprintf (why, sizeof why, "message %d: %zu bytes back for %zu sent, or other bytes", s.echoed, size, n);
        s_fail ("ECHO BAD", why);
        return;
    }
    s.echoed++;
    s.bytes += (long long) size;
    if (s.echoed == s.messages) {
        printf ("ECHO OK %d %lld\n", s.echoed, s.bytes);
        s.hold_until = s_now () + s.hold_s;
    }
    else
        lws_callback_on_writable (s.wsi);
}

static int
s_callback (struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    switch (reason) {
        case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
            unsigned char **p = (unsigned char **) in, *end = (*p) + len;
            if (*s.auth && lws_add_http_header_by_token (wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                                         (unsigned char *) s.auth, (int) strlen (s.auth), p, end))
                return -1;
            break;
        }
        case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
            printf ("REFUSED %u %s\n", wsi ? lws_http_client_http_response (wsi) : 0,
                    in ? (const char *) in : "connection failed");
            s.done = true;
            s.wsi = NULL;
            break;
        case LWS_CALLBACK_CLIENT_ESTABLISHED:
            s.open = true;
            printf ("OPEN\n");
            lws_set_timer_usecs (wsi, 50000);
            break;
        case LWS_CALLBACK_CLIENT_RECEIVE:
            if (lws_is_first_fragment (wsi)) {
                s.rx_size = 0;
                s.rx_binary = lws_frame_is_binary (wsi);
            }
            if (s.rx_size + len > sizeof s.rx) {
                s_fail ("ECHO BAD", "a message larger than any the bridge may send");
                return -1;
            }
            memcpy (s.rx + s.rx_size, in, len);
            s.rx_size += len;
            if (lws_is_final_fragment (wsi) && lws_remaining_packet_payload (wsi) == 0) {
                if (s.rx_binary)
                    s_binary (s.rx, s.rx_size);
                else
                    s_status ((const char *) s.rx, s.rx_size);
                s.rx_size = 0;
            }
            break;
        case LWS_CALLBACK_CLIENT_WRITEABLE: {
            if (s.closing) {
                lws_close_reason (wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *) "done", 4);
                return -1;
            }
            if (!s.sending || s.sent >= s.messages || s.sent - s.echoed >= S_WINDOW)
                break;
            static uint8_t buf [LWS_PRE + S_RX_MAX];
            size_t n = s_msg_size (s.sent);
            if (n > S_RX_MAX)
                n = S_RX_MAX;
            s_msg_fill (s.sent, buf + LWS_PRE, n);
            if (lws_write (wsi, buf + LWS_PRE, n, LWS_WRITE_BINARY) < (int) n) {
                s_fail ("ECHO BAD", "write failed");
                return -1;
            }
            s.sent++;
            if (s.sent < s.messages && s.sent - s.echoed < S_WINDOW)
                lws_callback_on_writable (wsi);
            break;
        }
        case LWS_CALLBACK_TIMER:
            //  The hold ends, or the deadline: close normally
            if ((s.hold_until > 0 && s_now () >= s.hold_until) || s_now () >= s.deadline) {
                s.closing = true;
                lws_callback_on_writable (wsi);
            }
            lws_set_timer_usecs (wsi, 50000);
            break;
        case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
            const uint8_t *p = (const uint8_t *) in;
            s.close_code = len >= 2 ? (p [0] << 8 | p [1]) : 1005;
            printf ("CLOSE %d %.*s\n", s.close_code, len > 2 ? (int) len - 2 : 0, len > 2 ? (const char *) p + 2 : "");
            break;
        }
        case LWS_CALLBACK_CLIENT_CLOSED:
        case LWS_CALLBACK_WSI_DESTROY:
            if (wsi == s.wsi) {
                s.done = true;
                s.wsi = NULL;
            }
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

static int
s_usage (FILE *out)
{
    fprintf (out,
        "usage: bridge_ws_client --url ws://HOST:PORT/v0/ws/proxy?QUERY [--token-file FILE]\n"
        "       [--expect-states A,B,..] [--messages N] [--size BYTES] [--hold SECONDS]\n"
        "       [--expect-close CODE] [--send-now] [--timeout SECONDS]\n");
    return out == stdout ? 0 : 2;
}

int
main (int argc, char **argv)
{
    static const struct option options [] = {
        { "url", required_argument, NULL, 'u' },
        { "token-file", required_argument, NULL, 'T' },
        { "expect-states", required_argument, NULL, 'e' },
        { "messages", required_argument, NULL, 'n' },
        { "size", required_argument, NULL, 's' },
        { "hold", required_argument, NULL, 'H' },
        { "expect-close", required_argument, NULL, 'c' },
        { "timeout", required_argument, NULL, 't' },
        { "send-now", no_argument, NULL, 'N' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    s.size = 1204;
    s.timeout_s = 20;
    int opt;
    while ((opt = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
            case 'u': snprintf (s.url, sizeof s.url, "%s", optarg); break;
            case 'T': {
                FILE *f = fopen (optarg, "r");
                char token [160] = "";
                if (!f || !fgets (token, sizeof token, f)) {
                    fprintf (stderr, "bridge_ws_client: cannot read the token file %s\n", optarg);
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
            case 'H': s.hold_s = atof (optarg); break;
            case 'c': s.expect_close = atoi (optarg); break;
            case 't': s.timeout_s = atof (optarg); break;
            case 'N': s.send_now = true; break;
            case 'h': return s_usage (stdout);
            default: return s_usage (stderr);
        }
    }
    if (!*s.url || s.messages < 0 || s.size < 1 || s.size > S_RX_MAX || s.timeout_s <= 0)
        return s_usage (stderr);
    setvbuf (stdout, NULL, _IOLBF, 0);

    //  ws://host:port/path?query (lws_parse_uri cuts it in place; the path loses its '/')
    char parsed [sizeof s.url], path [sizeof s.url + 1];
    memcpy (parsed, s.url, sizeof parsed);
    const char *scheme, *host, *rest;
    int port = 0;
    if (lws_parse_uri (parsed, &scheme, &host, &port, &rest) || strcmp (scheme, "ws") != 0) {
        fprintf (stderr, "bridge_ws_client: --url must be ws://HOST:PORT/PATH\n");
        return 2;
    }
    snprintf (path, sizeof path, "/%s", rest);

    lws_set_log_level (LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset (&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = s_protocols;
    info.gid = -1;
    info.uid = -1;
    info.timeout_secs = 5;
    info.connect_timeout_secs = 5;
    struct lws_context *context = lws_create_context (&info);
    if (!context) {
        fprintf (stderr, "bridge_ws_client: cannot make a libwebsockets context\n");
        return 2;
    }
    struct lws_client_connect_info ci;
    memset (&ci, 0, sizeof ci);
    ci.context = context;
    ci.address = host;
    ci.port = port;
    ci.path = path;
    ci.host = host;
    ci.origin = host;
    ci.protocol = NULL;                 //  the bridge names no subprotocol
    ci.local_protocol_name = s_protocols [0].name;
    ci.pwsi = &s.wsi;
    s.deadline = s_now () + s.timeout_s;
    if (!lws_client_connect_via_info (&ci)) {
        printf ("REFUSED 0 cannot start the connection\n");
        s.done = true;
    }
    while (!s.done && s_now () < s.deadline + 2)
        lws_service (context, 0);
    lws_context_destroy (context);

    s_check_states (true);
    if (s.messages > 0 && s.echoed < s.messages && !s.failed && !s.expect_close) {
        char why [80];
        snprintf (why, sizeof why, "%d of %d messages came back", s.echoed, s.messages);
        s_fail ("ECHO BAD", why);
    }
    if (s.expect_close && s.close_code != s.expect_close) {
        char why [60];
        snprintf (why, sizeof why, "expected %d, got %d", s.expect_close, s.close_code);
        s_fail ("CLOSE BAD", why);
    }
    if (!s.open && !s.expect_close)
        s.failed = true;
    printf ("END %s\n", s.failed ? "fail" : "ok");
    return s.failed ? 1 : 0;
}
