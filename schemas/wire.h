/*  wire: the wire format of the tunnel (schemas/wire.def) expanded into C.

    crypto encodes and decodes these messages; nat, which holds no key and may
    include nothing of crypto's, checks their shape before a datagram costs a
    trip to crypto. Both take the numbers from here, so they follow the format
    together. Declarations only: no code, no key. schemas/wire_expand.h says
    what the expansion gives:

        WIRE_<MSG>                  the type byte, e.g. WIRE_DATA = 4
        WIRE_<MSG>_SIZE             bytes (the minimum for a message with a variable part)
        WIRE_<MSG>_<FIELD>          offset of the field (after a variable part: from its end)
        WIRE_<MSG>_<FIELD>_SIZE     its size (0: the variable part)
        WIRE_<CONST>                the other numbers of the format
        wire_messages, wire_fields, wire_consts: the declarations as tables
*/
#ifndef SCHEMAS_WIRE_H_INCLUDED
#define SCHEMAS_WIRE_H_INCLUDED

#define WIRE_EXPAND_DEF         "wire.def"
#define WIRE_EXPAND_NAME(x)     WIRE_##x
#define WIRE_EXPAND_TABLE(x)    wire_##x
#include "wire_expand.h"

enum {
    //  Derived: the data header is what comes before the ciphertext; the
    //  smallest data message (a keepalive) is all a data packet adds
    WIRE_DATA_HEADER = WIRE_DATA_CIPHERTEXT,
    WIRE_DATA_OVERHEAD = WIRE_DATA_SIZE
};

#endif
