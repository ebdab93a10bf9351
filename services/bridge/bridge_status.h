/*  bridge_status: the status messages the bridge sends to a WebSocket client
    as text frames, `{"state":"UDP_ESTABLISHED","target":"192.0.2.1:4000",...}`.

    The body is declared once, in schemas/bridge.def, and expanded here through
    librest (rest_expand.h) into bridge_status_msg_t, so it is encoded and
    decoded by rest_codec, the one validating JSON codec of the tree. On top of
    the codec this class holds the rules between members that a declaration
    cannot say: the state is a declared one, `code` and `reason` come with
    ERROR and only with it, `rtt_ms` only with UDP_ESTABLISHED, a target is an
    address literal, a cipher is a real one (never `auto`). Encode refuses a
    message that breaks them (a bug of the bridge), decode refuses one that a
    client must not act on. Decode is fed untrusted text by fuzz_bridge_status:
    the test client and the page read these. */
#ifndef BRIDGE_STATUS_H_INCLUDED
#define BRIDGE_STATUS_H_INCLUDED

#include "schemas/bridge.h"
#include "rest_schema.h"

#include "../../schemas/bridge_blank.inc"
#define REST_EXPAND REST_EXPAND_STRUCTS
#include "rest_expand.h"
#include "../../schemas/bridge.def"
#include "rest_expand.h"
#undef BRIDGE_LIMIT
#undef BRIDGE_PARAM
#undef BRIDGE_AUTH
#undef BRIDGE_CIPHER
#undef BRIDGE_STATE
#undef BRIDGE_CLOSE

//  Clears msg and sets its state
void bridge_status_set (bridge_status_msg_t *msg, bridge_state_t state);

//  Clears msg and makes it the ERROR that goes before a close with code; the
//  reason is the code's declared one, then ": " and detail when detail is set
//  (cut to BRIDGE_REASON_MAX bytes). code must be a declared close code.
void bridge_status_error (bridge_status_msg_t *msg, int code, const char *detail);

//  The state of a checked msg
bridge_state_t bridge_status_state (const bridge_status_msg_t *msg);

//  The JSON text of msg (free it), or NULL with err when msg breaks the rules
char *bridge_status_encode (const bridge_status_msg_t *msg, char *err, size_t errsize);

//  Decodes text (size bytes, no NUL needed) strictly into msg. 0, or -1 with
//  err (msg is then cleared).
int bridge_status_decode (const char *text, size_t size, bridge_status_msg_t *msg,
                          char *err, size_t errsize);

void bridge_status_test (bool verbose);
#endif
