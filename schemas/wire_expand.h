/*  wire_expand: the one expansion of a wire format's declaration (the X-macro
    language of wire.def), shared by every format so the tunnel's (wire.h) and
    the bridge flow's (bridge_wire.h) are expanded, checked and tabled alike.
    No include guard: a format's header includes it once with

        WIRE_EXPAND_DEF         the .def file, e.g. "wire.def"
        WIRE_EXPAND_NAME(x)     the constant for x, e.g. WIRE_##x
        WIRE_EXPAND_TABLE(x)    the table x, e.g. wire_##x

    and gets, for the prefix P (WIRE_, BRIDGE_WIRE_):

        P<MSG>                  the type byte
        P<MSG>_SIZE             bytes (the minimum for a message with a variable part)
        P<MSG>_<FIELD>          offset of the field (after a variable part: from its end)
        P<MSG>_<FIELD>_SIZE     its size (0: the variable part)
        P<CONST>                the other numbers of the format

    plus compile-time checks (one-byte types, fields inside their message) and
    the tables <table>messages, <table>fields, <table>consts of wire_decl_t
    (schemas/schema-doc checks what the compiler cannot: no gap, no overlap). */
#include "wire_decl.h"

#define BIFROST_WIRE_MESSAGE(id, type, size, title, doc) \
    WIRE_EXPAND_NAME (id) = (type), WIRE_EXPAND_NAME (id##_SIZE) = (size),
#define BIFROST_WIRE_FIELD(msg, id, offset, size, doc) \
    WIRE_EXPAND_NAME (msg##_##id) = (offset), WIRE_EXPAND_NAME (msg##_##id##_SIZE) = (size),
#define BIFROST_WIRE_CONST(id, value, doc)  WIRE_EXPAND_NAME (id) = (value),
enum {
#include WIRE_EXPAND_DEF
};
#undef BIFROST_WIRE_MESSAGE
#undef BIFROST_WIRE_FIELD
#undef BIFROST_WIRE_CONST

#define BIFROST_WIRE_MESSAGE(id, type, size, title, doc) \
    _Static_assert ((type) > 0 && (type) < 256, WIRE_EXPAND_DEF ": type of " #id " must be one byte");
#define BIFROST_WIRE_FIELD(msg, id, offset, size, doc) \
    _Static_assert ((offset) + (size) <= WIRE_EXPAND_NAME (msg##_SIZE), WIRE_EXPAND_DEF ": " #msg "." #id " ends past its message");
#define BIFROST_WIRE_CONST(id, value, doc)
#include WIRE_EXPAND_DEF
#undef BIFROST_WIRE_MESSAGE
#undef BIFROST_WIRE_FIELD
#undef BIFROST_WIRE_CONST

//  Static const data that a program which does not use it does not keep
#define BIFROST_WIRE_MESSAGE(id, type, size, title, doc)    { #id, NULL, type, size, title, doc },
#define BIFROST_WIRE_FIELD(msg, id, offset, size, doc)
#define BIFROST_WIRE_CONST(id, value, doc)
static const wire_decl_t WIRE_EXPAND_TABLE (messages) [] = {
#include WIRE_EXPAND_DEF
};
#undef BIFROST_WIRE_MESSAGE
#undef BIFROST_WIRE_FIELD
#define BIFROST_WIRE_MESSAGE(id, type, size, title, doc)
#define BIFROST_WIRE_FIELD(msg, id, offset, size, doc)      { #id, #msg, offset, size, NULL, doc },
static const wire_decl_t WIRE_EXPAND_TABLE (fields) [] = {
#include WIRE_EXPAND_DEF
};
#undef BIFROST_WIRE_FIELD
#undef BIFROST_WIRE_CONST
#define BIFROST_WIRE_FIELD(msg, id, offset, size, doc)
#define BIFROST_WIRE_CONST(id, value, doc)                  { #id, NULL, value, 0, NULL, doc },
static const wire_decl_t WIRE_EXPAND_TABLE (consts) [] = {
#include WIRE_EXPAND_DEF
};
#undef BIFROST_WIRE_MESSAGE
#undef BIFROST_WIRE_FIELD
#undef BIFROST_WIRE_CONST

#undef WIRE_EXPAND_DEF
#undef WIRE_EXPAND_NAME
#undef WIRE_EXPAND_TABLE
