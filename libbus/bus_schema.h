/*  bus_schema: the message declarations of schemas/ expanded into C.

    Every bus message is declared once (schemas/all.def). This header turns each
    declaration into a struct `<id>_t` and a descriptor `<id>_schema`; one generic
    codec (bus_codec.c) walks the descriptors to encode, decode with full validation,
    and render JSON, so no message has a hand-written codec that could drift.
*/
#ifndef BUS_SCHEMA_H_INCLUDED
#define BUS_SCHEMA_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    BUS_FT_STR = 1,     //  char name[max + 1], UTF-8, no NUL inside
    BUS_FT_BIN,         //  uint8_t name[max] + uint32_t name_size
    BUS_FT_U32,
    BUS_FT_U64,
    BUS_FT_I64,
    BUS_FT_BOOL,
    BUS_FT_F64,
    BUS_FT_STRLIST,     //  char name[max][len + 1] + uint32_t name_count
    BUS_FT_LIST         //  record_t name[max] + uint32_t name_count
} bus_ftype_t;

typedef struct _bus_schema_t bus_schema_t;

typedef struct {
    const char *name;
    bus_ftype_t type;
    size_t offset;              //  of the value in the struct
    size_t aux_offset;          //  of the size/count for BIN, STRLIST, LIST
    uint32_t max;               //  max string/bin length, or max list items
    uint32_t item_len;          //  STRLIST: max length of one string
    size_t item_size;           //  STRLIST/LIST: size of one item in the struct
    const bus_schema_t *record; //  LIST: the item's schema
    const char *doc;
} bus_field_t;

struct _bus_schema_t {
    const char *id;             //  C name, e.g. "sup_scale"
    const char *type;           //  wire type, e.g. "sup.scale"; NULL for records
    const char *doc;
    size_t size;                //  sizeof the struct
    //  The field table, terminated by an entry with name == NULL. A function, because
    //  the table is built where the struct can be named by a local typedef.
    const bus_field_t *(*fields) (void);
};

//  ---------------------------------------------------------------------------
//  Expansion 1: the structs
#define BUS_STR(n, max, doc)            char n [(max) + 1];
#define BUS_BIN(n, max, doc)            uint8_t n [max]; uint32_t n##_size;
#define BUS_U32(n, doc)                 uint32_t n;
#define BUS_U64(n, doc)                 uint64_t n;
#define BUS_I64(n, doc)                 int64_t n;
#define BUS_BOOL(n, doc)                bool n;
#define BUS_F64(n, doc)                 double n;
#define BUS_STRLIST(n, len, max, doc)   char n [max][(len) + 1]; uint32_t n##_count;
#define BUS_LIST(n, rec, max, doc)      rec##_t n [max]; uint32_t n##_count;
#define BUS_SCHEMA(id, wtype, doc, fields) \
    typedef struct { fields } id##_t; \
    extern const bus_schema_t id##_schema;
#include "../schemas/all.def"
#undef BUS_SCHEMA

//  Expansion 2: an enum so code can switch on a message kind
#define BUS_SCHEMA(id, wtype, doc, fields)  BUS_TYPE_##id,
typedef enum {
    BUS_TYPE_NONE = 0,
#include "../schemas/all.def"
    BUS_TYPE_COUNT
} bus_type_t;
#undef BUS_SCHEMA
#undef BUS_STR
#undef BUS_BIN
#undef BUS_U32
#undef BUS_U64
#undef BUS_I64
#undef BUS_BOOL
#undef BUS_F64
#undef BUS_STRLIST
#undef BUS_LIST

//  Every schema (messages and records), in declaration order.
const bus_schema_t *const *bus_schema_all (size_t *count);

//  Schema of a wire type ("sup.scale"), or NULL when the type is unknown.
const bus_schema_t *bus_schema_lookup (const char *type);

//  Writes the protocol reference (Markdown) generated from the declarations.
void bus_schema_markdown (FILE *out);

void bus_schema_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
