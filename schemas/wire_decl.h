/*  wire_decl: one row of a wire format's declaration (wire.def, bridge_wire.def)
    as data, for what walks every message, field and constant: schema-doc renders
    and checks them, the corpus generators write a seed per field. Each format's
    header (wire.h, bridge_wire.h) fills its own static tables of this type. */
#ifndef SCHEMAS_WIRE_DECL_H_INCLUDED
#define SCHEMAS_WIRE_DECL_H_INCLUDED

typedef struct {
    const char *id;         //  "INITIATION"; for a field "SENDER_INDEX", for a constant "KEY_SIZE"
    const char *message;    //  fields: the message's id; NULL otherwise
    int value;              //  message: type byte; field: offset; constant: value
    int size;               //  message: size (minimum); field: size, 0 = variable
    const char *title;      //  message: title of its section in the docs; NULL otherwise
    const char *doc;
} wire_decl_t;

#define WIRE_COUNT(table) (sizeof (table) / sizeof ((table) [0]))

#endif
