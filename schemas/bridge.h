/*  bridge: the WebSocket to UDP bridge's contract (schemas/bridge.def)
    expanded into C, the way wire.h expands the wire format: constants and
    tables only, no code. The status message's struct and codec come from the
    same file through librest (services/bridge/bridge_status.h).

        BRIDGE_<LIMIT>              a limit, e.g. BRIDGE_MESSAGE_MAX
        BRIDGE_PARAM_<ID>           index of a query parameter in bridge_params_table
        BRIDGE_CIPHER_<ID>          index in bridge_ciphers
        BRIDGE_STATE_<ID>           index in bridge_states
        BRIDGE_CLOSE_<ID>           the close code, e.g. BRIDGE_CLOSE_BAD_PARAM = 4400
*/
#ifndef SCHEMAS_BRIDGE_H_INCLUDED
#define SCHEMAS_BRIDGE_H_INCLUDED

#include <stddef.h>
#include "bridge_wire.h"      //  the flow datagram's header and tag, which the limits use

#include "bridge_blank.inc"
#define REST_BODY(id, dir, route, doc, fields)

#undef BRIDGE_LIMIT
#define BRIDGE_LIMIT(id, value, doc) BRIDGE_##id = (value),
enum {
#include "bridge.def"
};
#undef BRIDGE_LIMIT
#define BRIDGE_LIMIT(id, value, doc)

#undef BRIDGE_PARAM
#define BRIDGE_PARAM(id, name, max, doc) BRIDGE_PARAM_##id,
typedef enum {
#include "bridge.def"
    BRIDGE_PARAM_COUNT
} bridge_param_t;
#undef BRIDGE_PARAM
#define BRIDGE_PARAM(id, name, max, doc)

#undef BRIDGE_CIPHER
#define BRIDGE_CIPHER(id, name, doc) BRIDGE_CIPHER_##id,
typedef enum {
#include "bridge.def"
    BRIDGE_CIPHER_COUNT
} bridge_cipher_t;
#undef BRIDGE_CIPHER
#define BRIDGE_CIPHER(id, name, doc)

#undef BRIDGE_STATE
#define BRIDGE_STATE(id, doc) BRIDGE_STATE_##id,
typedef enum {
#include "bridge.def"
    BRIDGE_STATE_COUNT
} bridge_state_t;
#undef BRIDGE_STATE
#define BRIDGE_STATE(id, doc)

#undef BRIDGE_CLOSE
#define BRIDGE_CLOSE(id, code, reason, doc) BRIDGE_CLOSE_##id = (code),
enum {
#include "bridge.def"
};
#undef BRIDGE_CLOSE
#define BRIDGE_CLOSE(id, code, reason, doc)

//  The limits agree with each other (a change to one that breaks another
//  fails the build here)
_Static_assert (BRIDGE_MESSAGE_MAX == BRIDGE_IPV6_MIN_MTU - BRIDGE_UDP_IP_HEADERS - BRIDGE_FLOW_HEADER - BRIDGE_FLOW_TAG,
                "bridge.def: MESSAGE_MAX must fill the IPv6 minimum MTU exactly");
_Static_assert (BRIDGE_MESSAGE_MAX_CEILING == 65507 - BRIDGE_FLOW_HEADER - BRIDGE_FLOW_TAG,
                "bridge.def: MESSAGE_MAX_CEILING must fit the largest IPv4 UDP payload");
_Static_assert (BRIDGE_ENDPOINT_MAX == 1 + 45 + 2 + 5, "bridge.def: an endpoint is [IPv6]:port at the longest");
_Static_assert (BRIDGE_REASON_MAX == 123, "bridge.def: a close frame holds 123 bytes of reason");
//  ... and with the flow's datagram (schemas/bridge_wire.def), declared there
_Static_assert ((int) BRIDGE_FLOW_HEADER == (int) BRIDGE_WIRE_DATA_CIPHERTEXT && (int) BRIDGE_FLOW_TAG == (int) BRIDGE_WIRE_DATA_TAG_SIZE,
                "bridge.def: FLOW_HEADER and FLOW_TAG must be bridge_wire.def's");

//  The declarations as tables (static const data a program that does not use
//  it does not keep): for the parser, the docs and the tests.
typedef struct {
    const char *name;       //  "target"; a state or close: its id, "UDP_WAITING"
    int value;              //  param: max bytes; close: the code; else its index
    const char *reason;     //  close: the fixed start of its reason; else NULL
    const char *doc;
} bridge_decl_t;

#undef BRIDGE_PARAM
#define BRIDGE_PARAM(id, name, max, doc) { name, max, NULL, doc },
static const bridge_decl_t bridge_params_table [] = {
#include "bridge.def"
};
#undef BRIDGE_PARAM
#define BRIDGE_PARAM(id, name, max, doc)

#undef BRIDGE_CIPHER
#define BRIDGE_CIPHER(id, name, doc) { name, BRIDGE_CIPHER_##id, NULL, doc },
static const bridge_decl_t bridge_ciphers [] = {
#include "bridge.def"
};
#undef BRIDGE_CIPHER
#define BRIDGE_CIPHER(id, name, doc)

#undef BRIDGE_STATE
#define BRIDGE_STATE(id, doc) { #id, BRIDGE_STATE_##id, NULL, doc },
static const bridge_decl_t bridge_states [] = {
#include "bridge.def"
};
#undef BRIDGE_STATE
#define BRIDGE_STATE(id, doc)

#undef BRIDGE_CLOSE
#define BRIDGE_CLOSE(id, code, reason, doc) { #id, code, reason, doc },
static const bridge_decl_t bridge_closes [] = {
#include "bridge.def"
};
#undef BRIDGE_CLOSE
#define BRIDGE_CLOSE(id, code, reason, doc)

#undef BRIDGE_AUTH
#define BRIDGE_AUTH(id, where, doc) { #id, 0, where, doc },
static const bridge_decl_t bridge_auths [] = {
#include "bridge.def"
};

#undef BRIDGE_LIMIT
#undef BRIDGE_PARAM
#undef BRIDGE_AUTH
#undef BRIDGE_CIPHER
#undef BRIDGE_STATE
#undef BRIDGE_CLOSE
#undef REST_BODY

#define BRIDGE_COUNT(table) (sizeof (table) / sizeof ((table) [0]))

//  The fixed start of the reason of a close code ("bad parameter"), or NULL
static inline const char *
bridge_close_reason (int code)
{
    for (size_t i = 0; i < BRIDGE_COUNT (bridge_closes); i++)
        if (bridge_closes [i].value == code)
            return bridge_closes [i].reason;
    return NULL;
}
#endif
