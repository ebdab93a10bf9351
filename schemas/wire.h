/*  wire: the wire format of the tunnel (schemas/wire.def) expanded into C.

    crypto encodes and decodes these messages; nat, which holds no key and may
    include nothing of crypto's, checks their shape before a datagram costs a
    trip to crypto. Both take the numbers from here, so they follow the format
    together. Declarations only: no code, no key.

        WIRE_<MSG>                  the type byte, e.g. WIRE_DATA = 4
        WIRE_<MSG>_SIZE             bytes (the minimum for a message with a variable part)
        WIRE_<MSG>_<FIELD>          offset of the field (after a variable part: from its end)
        WIRE_<MSG>_<FIELD>_SIZE     its size (0: the variable part)
        WIRE_<CONST>                the other numbers of the format
*/
#ifndef SCHEMAS_WIRE_H_INCLUDED
#define SCHEMAS_WIRE_H_INCLUDED

#define BIFROST_WIRE_MESSAGE(id, type, size, title, doc) \
    WIRE_##id = (type), WIRE_##id##_SIZE = (size),
#define BIFROST_WIRE_FIELD(msg, id, offset, size, doc) \
    WIRE_##msg##_##id = (offset), WIRE_##msg##_##id##_SIZE = (size),
#define BIFROST_WIRE_CONST(id, value, doc)  WIRE_##id = (value),
enum {
#include "wire.def"
    //  Derived: the data header is what comes before the ciphertext; the
    //  smallest data message (a keepalive) is all a data packet adds
    WIRE_DATA_HEADER = WIRE_DATA_CIPHERTEXT,
    WIRE_DATA_OVERHEAD = WIRE_DATA_SIZE
};
#undef BIFROST_WIRE_MESSAGE
#undef BIFROST_WIRE_FIELD
#undef BIFROST_WIRE_CONST

//  Every field lies inside its message (schemas/schema-doc also checks that the
//  fields follow each other without a gap, and fails the build if not).
#define BIFROST_WIRE_MESSAGE(id, type, size, title, doc) \
    _Static_assert ((type) > 0 && (type) < 256, "wire.def: type of " #id " must be one byte");
#define BIFROST_WIRE_FIELD(msg, id, offset, size, doc) \
    _Static_assert ((offset) + (size) <= WIRE_##msg##_SIZE, "wire.def: " #msg "." #id " ends past its message");
#define BIFROST_WIRE_CONST(id, value, doc)
#include "wire.def"
#undef BIFROST_WIRE_MESSAGE
#undef BIFROST_WIRE_FIELD
#undef BIFROST_WIRE_CONST

//  The declarations as tables, for what walks all of them (schema-doc renders
//  and checks them, crypto_corpus writes a fuzz seed per field): static const
//  data that a program which does not use it does not keep.
typedef struct {
    const char *id;         //  "INITIATION"; for a field "SENDER_INDEX", for a constant "KEY_SIZE"
    const char *message;    //  fields: the message's id; NULL otherwise
    int value;              //  message: type byte; field: offset; constant: value
    int size;               //  message: size (minimum); field: size, 0 = variable
    const char *title;      //  message: title of its section in the docs; NULL otherwise
    const char *doc;
} wire_decl_t;

#define BIFROST_WIRE_MESSAGE(id, type, size, title, doc)    { #id, NULL, type, size, title, doc },
#define BIFROST_WIRE_FIELD(msg, id, offset, size, doc)
#define BIFROST_WIRE_CONST(id, value, doc)
static const wire_decl_t wire_messages [] = {
#include "wire.def"
};
#undef BIFROST_WIRE_MESSAGE
#undef BIFROST_WIRE_FIELD
#define BIFROST_WIRE_MESSAGE(id, type, size, title, doc)
#define BIFROST_WIRE_FIELD(msg, id, offset, size, doc)      { #id, #msg, offset, size, NULL, doc },
static const wire_decl_t wire_fields [] = {
#include "wire.def"
};
#undef BIFROST_WIRE_FIELD
#undef BIFROST_WIRE_CONST
#define BIFROST_WIRE_FIELD(msg, id, offset, size, doc)
#define BIFROST_WIRE_CONST(id, value, doc)                  { #id, NULL, value, 0, NULL, doc },
static const wire_decl_t wire_consts [] = {
#include "wire.def"
};
#undef BIFROST_WIRE_MESSAGE
#undef BIFROST_WIRE_FIELD
#undef BIFROST_WIRE_CONST
#define WIRE_COUNT(table) (sizeof (table) / sizeof ((table) [0]))

#endif
