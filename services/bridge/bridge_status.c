/*  bridge_status: encode and strictly decode the bridge's status messages
    (bridge_status.h). The members are schemas/bridge.def's; the codec is
    librest's; what is here are the rules between members. */
#include "bridge_status.h"
#include "bridge_params.h"
#include "rest_codec.h"
#include "bus_log.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The descriptor of the body (rest_expand.h, second expansion)
#include "../../schemas/bridge_blank.inc"
#define REST_EXPAND REST_EXPAND_TABLES
#include "rest_expand.h"
#include "../../schemas/bridge.def"
#include "rest_expand.h"
#undef BRIDGE_LIMIT
#undef BRIDGE_PARAM
#undef BRIDGE_AUTH
#undef BRIDGE_CIPHER
#undef BRIDGE_STATE
#undef BRIDGE_CLOSE

void
bridge_status_set (bridge_status_msg_t *msg, bridge_state_t state)
{
    assert (state < BRIDGE_STATE_COUNT);
    memset (msg, 0, sizeof *msg);
    snprintf (msg->state, sizeof msg->state, "%s", bridge_states [state].name);
    msg->has_state = true;
}

void
bridge_status_error (bridge_status_msg_t *msg, int code, const char *detail)
{
    const char *reason = bridge_close_reason (code);
    assert (reason);
    bridge_status_set (msg, BRIDGE_STATE_ERROR);
    msg->code = code;
    msg->has_code = true;
    //  A reason longer than a close frame holds is cut (it is words for a person)
    char text [BRIDGE_REASON_MAX + 1];
    snprintf (text, sizeof text, "%s%s%.*s", reason, detail ? ": " : "", BRIDGE_REASON_MAX, detail ? detail : "");
    memcpy (msg->reason, text, sizeof text);
    msg->has_reason = true;
}

//  The index of the state named text, or BRIDGE_STATE_COUNT
static bridge_state_t
s_state (const char *text)
{
    size_t i = 0;
    while (i < BRIDGE_STATE_COUNT && strcmp (bridge_states [i].name, text) != 0)
        i++;
    return (bridge_state_t) i;
}

bridge_state_t
bridge_status_state (const bridge_status_msg_t *msg)
{
    return s_state (msg->state);
}

//  The rules between members. 0 or -1 with err.
static int
s_check (const bridge_status_msg_t *msg, char *err, size_t errsize)
{
    bridge_state_t state = msg->has_state ? s_state (msg->state) : BRIDGE_STATE_COUNT;
    if (state == BRIDGE_STATE_COUNT) {
        char states [80] = "";
        for (size_t i = 0; i < BRIDGE_STATE_COUNT; i++)
            snprintf (states + strlen (states), sizeof states - strlen (states), "%s%s",
                      i ? ", " : "", bridge_states [i].name);
        return bus_errf (err, errsize, "'state' must be one of %s", states);
    }
    bool error = state == BRIDGE_STATE_ERROR;
    if (error != msg->has_code || error != msg->has_reason)
        return bus_errf (err, errsize, error ? "an ERROR needs 'code' and 'reason'"
                                             : "'code' and 'reason' come only with ERROR");
    if (error && !bridge_close_reason ((int) msg->code))
        return bus_errf (err, errsize, "'code' %d is not a close code of the bridge", (int) msg->code);
    if (msg->has_rtt_ms && state != BRIDGE_STATE_UDP_ESTABLISHED)
        return bus_errf (err, errsize, "'rtt_ms' comes only with UDP_ESTABLISHED");
    if (msg->has_udp && error)
        return bus_errf (err, errsize, "'udp' does not come with ERROR");
    //  Both endpoints are address literals (the client hands them on as they are)
    struct { bool has; const char *name, *text; } ends [] = {
        { msg->has_target, "target", msg->target }, { msg->has_udp, "udp", msg->udp },
    };
    for (size_t i = 0; i < sizeof ends / sizeof ends [0]; i++) {
        struct sockaddr_storage addr;
        socklen_t len;
        char why [BRIDGE_REASON_MAX + 1];
        if (ends [i].has && bridge_params_endpoint (ends [i].text, &addr, &len, why, sizeof why) != 0)
            return bus_errf (err, errsize, "'%s': %s", ends [i].name, why);
    }
    if (msg->has_cipher) {
        size_t i = 0;
        while (i < BRIDGE_CIPHER_COUNT && strcmp (bridge_ciphers [i].name, msg->cipher) != 0)
            i++;
        if (i == BRIDGE_CIPHER_COUNT || i == BRIDGE_CIPHER_AUTO)
            return bus_errf (err, errsize, "'cipher' must be aes256gcm or chacha20poly1305");
    }
    return 0;
}

char *
bridge_status_encode (const bridge_status_msg_t *msg, char *err, size_t errsize)
{
    if (s_check (msg, err, errsize) != 0)
        return NULL;
    return rest_encode_text (&bridge_status_msg_schema, msg);
}

int
bridge_status_decode (const char *text, size_t size, bridge_status_msg_t *msg,
                      char *err, size_t errsize)
{
    memset (msg, 0, sizeof *msg);
    if (rest_decode (&bridge_status_msg_schema, text, size, msg, err, errsize) != 0
    ||  s_check (msg, err, errsize) != 0) {
        memset (msg, 0, sizeof *msg);
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------
//  Self test

#define streq(a, b) (strcmp ((a), (b)) == 0)

//  Decodes text, expects err to be want (NULL: success)
static void
s_expect (const char *text, const char *want)
{
    bridge_status_msg_t msg;
    char err [200] = "";
    int rc = bridge_status_decode (text, strlen (text), &msg, err, sizeof err);
    if ((want == NULL) != (rc == 0) || (want && !streq (err, want))) {
        fprintf (stderr, "bridge_status: %s: rc %d '%s', expected '%s'\n", text, rc, err, want ? want : "success");
        assert (false);
    }
}

void
bridge_status_test (bool verbose)
{
    if (verbose)
        printf (" * bridge_status: ");
    char err [200];

    //  Every state round-trips, as it is on the wire
    bridge_status_msg_t msg, back;
    bridge_status_set (&msg, BRIDGE_STATE_CONNECTED);
    char *text = bridge_status_encode (&msg, err, sizeof err);
    assert (text && streq (text, "{\"state\":\"CONNECTED\"}"));
    free (text);

    bridge_status_set (&msg, BRIDGE_STATE_UDP_ESTABLISHED);
    snprintf (msg.target, sizeof msg.target, "[2001:db8::1]:4000");
    msg.has_target = true;
    snprintf (msg.cipher, sizeof msg.cipher, "chacha20poly1305");
    msg.has_cipher = true;
    msg.rtt_ms = 12;
    msg.has_rtt_ms = true;
    text = bridge_status_encode (&msg, err, sizeof err);
    assert (text && streq (text, "{\"state\":\"UDP_ESTABLISHED\",\"target\":\"[2001:db8::1]:4000\","
                                  "\"cipher\":\"chacha20poly1305\",\"rtt_ms\":12}"));
    assert (bridge_status_decode (text, strlen (text), &back, err, sizeof err) == 0);
    assert (bridge_status_state (&back) == BRIDGE_STATE_UDP_ESTABLISHED);
    assert (streq (back.target, msg.target) && back.rtt_ms == 12 && !back.has_peer && !back.has_code);
    free (text);

    //  The bridge's own endpoint, which the client hands to its peer as it is
    bridge_status_set (&msg, BRIDGE_STATE_UDP_WAITING);
    snprintf (msg.udp, sizeof msg.udp, "203.0.113.10:41503");
    msg.has_udp = true;
    text = bridge_status_encode (&msg, err, sizeof err);
    assert (text && bridge_status_decode (text, strlen (text), &back, err, sizeof err) == 0);
    assert (back.has_udp && streq (back.udp, "203.0.113.10:41503") && !back.has_target);
    free (text);
    msg.state [0] = 0;
    bridge_status_error (&msg, BRIDGE_CLOSE_IDLE, NULL);
    msg.has_udp = true;
    assert (!bridge_status_encode (&msg, err, sizeof err) && streq (err, "'udp' does not come with ERROR"));

    bridge_status_error (&msg, BRIDGE_CLOSE_BAD_PARAM, "target: port 70000 is out of range 1..65535");
    text = bridge_status_encode (&msg, err, sizeof err);
    assert (text && streq (text, "{\"state\":\"ERROR\",\"code\":4400,"
                                  "\"reason\":\"bad parameter: target: port 70000 is out of range 1..65535\"}"));
    assert (bridge_status_decode (text, strlen (text), &back, err, sizeof err) == 0);
    assert (bridge_status_state (&back) == BRIDGE_STATE_ERROR && back.code == 4400);
    free (text);
    //  A long detail is cut to what a close frame holds
    char detail [300];
    memset (detail, 'x', sizeof detail - 1);
    detail [sizeof detail - 1] = 0;
    bridge_status_error (&msg, BRIDGE_CLOSE_IDLE, detail);
    assert (strlen (msg.reason) == BRIDGE_REASON_MAX);
    bridge_status_error (&msg, BRIDGE_CLOSE_IDLE, NULL);
    assert (streq (msg.reason, "idle"));

    //  Encode refuses what breaks the rules
    bridge_status_set (&msg, BRIDGE_STATE_UDP_WAITING);
    msg.has_rtt_ms = true;
    assert (!bridge_status_encode (&msg, err, sizeof err));
    assert (streq (err, "'rtt_ms' comes only with UDP_ESTABLISHED"));
    bridge_status_set (&msg, BRIDGE_STATE_UDP_WAITING);
    snprintf (msg.cipher, sizeof msg.cipher, "auto");
    msg.has_cipher = true;
    assert (!bridge_status_encode (&msg, err, sizeof err));

    //  Decode: strict
    s_expect ("{\"state\":\"UDP_WAITING\",\"target\":\"192.0.2.1:1\",\"cipher\":\"aes256gcm\"}", NULL);
    s_expect ("{\"state\":\"UDP_WAITING\",\"peer\":\"0123456789abcdef\"}", NULL);
    s_expect ("{\"state\":\"ERROR\",\"code\":4429,\"reason\":\"rate limited\"}", NULL);
    s_expect ("{\"state\":\"UDP_LOST\"}", "'state' must be one of CONNECTED, UDP_WAITING, UDP_ESTABLISHED, ERROR");
    s_expect ("{\"state\":\"connected\"}", "'state' must be one of CONNECTED, UDP_WAITING, UDP_ESTABLISHED, ERROR");
    s_expect ("{\"state\":\"CONNECTED\",\"extra\":1}", "unknown member 'extra'");
    s_expect ("{\"target\":\"192.0.2.1:1\"}", "'state' is required");
    s_expect ("{\"state\":\"ERROR\",\"code\":4400}", "an ERROR needs 'code' and 'reason'");
    s_expect ("{\"state\":\"CONNECTED\",\"code\":4400,\"reason\":\"x\"}", "'code' and 'reason' come only with ERROR");
    s_expect ("{\"state\":\"ERROR\",\"code\":4999,\"reason\":\"x\"}", "'code' 4999 is not a close code of the bridge");
    s_expect ("{\"state\":\"CONNECTED\",\"target\":\"example.com:80\"}",
              "'target': 'example.com' is not an address literal: the bridge resolves no names");
    s_expect ("{\"state\":\"CONNECTED\",\"udp\":\"[2001:db8::1]:4000\"}", NULL);
    s_expect ("{\"state\":\"CONNECTED\",\"udp\":\"bridge.example:4000\"}",
              "'udp': 'bridge.example' is not an address literal: the bridge resolves no names");
    s_expect ("{\"state\":\"UDP_WAITING\",\"udp\":\"203.0.113.10:0\"}", "'udp' must be a valid endpoint (host:port)");
    s_expect ("{\"state\":\"ERROR\",\"code\":4408,\"reason\":\"idle\",\"udp\":\"203.0.113.10:1\"}",
              "'udp' does not come with ERROR");
    s_expect ("{\"state\":\"UDP_ESTABLISHED\",\"rtt_ms\":-1}", "'rtt_ms' must be an integer from 0 to 60000");
    s_expect ("{\"state\":\"CONNECTED\",\"state\":\"ERROR\"}", "malformed JSON at line 1 column 28: duplicate object key near '\"state\"'");
    s_expect ("[]", "request body must be a JSON object");
    s_expect ("", "request body must be a JSON object");
    bridge_status_decode ("{\"state\":1}", 11, &back, err, sizeof err);
    assert (!back.has_state);

    if (verbose)
        printf ("OK\n");
}
