/*  bridge_wire: the datagram of a bridge flow (schemas/bridge_wire.def) expanded
    into C, by the same template as the tunnel's wire.h (schemas/wire_expand.h).
    The bridge service seals and opens with these numbers (bridge_flow), and so
    will the peer-side program: one declaration for both ends. No code, no key.

        BRIDGE_WIRE_<MSG>                   the type byte, e.g. BRIDGE_WIRE_DATA = 32
        BRIDGE_WIRE_<MSG>_SIZE              bytes (the minimum for data)
        BRIDGE_WIRE_<MSG>_<FIELD>[_SIZE]    offset and size of a field
        BRIDGE_WIRE_<CONST>                 the other numbers of the format
        bridge_wire_messages, bridge_wire_fields, bridge_wire_consts: the tables
*/
#ifndef SCHEMAS_BRIDGE_WIRE_H_INCLUDED
#define SCHEMAS_BRIDGE_WIRE_H_INCLUDED

#define WIRE_EXPAND_DEF         "bridge_wire.def"
#define WIRE_EXPAND_NAME(x)     BRIDGE_WIRE_##x
#define WIRE_EXPAND_TABLE(x)    bridge_wire_##x
#include "wire_expand.h"

//  What the code relies on and the declaration must keep true
_Static_assert (BRIDGE_WIRE_DATA_CIPHERTEXT == BRIDGE_WIRE_HEADER_SIZE, "bridge_wire.def: the ciphertext follows the header");
_Static_assert (BRIDGE_WIRE_DATA_COUNTER == BRIDGE_WIRE_HEARTBEAT_COUNTER
                && BRIDGE_WIRE_DATA_COUNTER == BRIDGE_WIRE_HEARTBEAT_REPLY_COUNTER
                && BRIDGE_WIRE_DATA_COUNTER_SIZE == 8, "bridge_wire.def: every datagram has its 64-bit counter at one place");
_Static_assert (BRIDGE_WIRE_HEARTBEAT_SIZE == BRIDGE_WIRE_DATA_SIZE
                && BRIDGE_WIRE_HEARTBEAT_REPLY_SIZE == BRIDGE_WIRE_DATA_SIZE, "bridge_wire.def: a heartbeat is an empty datagram");
_Static_assert (BRIDGE_WIRE_DATA_SIZE == BRIDGE_WIRE_HEADER_SIZE + BRIDGE_WIRE_TAG_SIZE, "bridge_wire.def: header + tag");
_Static_assert (BRIDGE_WIRE_MAX_PLAIN == BRIDGE_WIRE_MAX_DATAGRAM - BRIDGE_WIRE_DATA_SIZE, "bridge_wire.def: max_plain");
_Static_assert (BRIDGE_WIRE_NONCE_COUNTER + 8 == BRIDGE_WIRE_NONCE_SIZE, "bridge_wire.def: the counter ends the nonce");

#endif
