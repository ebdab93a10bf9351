/*  rest_expand: the two expansions of a REST_BODY declaration, shared by every
    .def file that declares JSON bodies (schemas/rest.def, schemas/bridge.def),
    so a second contract gets its structs and descriptors, and rest_codec's one
    validating codec, without a copy of these macros.

    No include guard: include it once per expansion, with REST_EXPAND set,
    around the .def file, then include it again with REST_EXPAND_END:

        #define REST_EXPAND REST_EXPAND_STRUCTS     //  or REST_EXPAND_TABLES
        #include "rest_expand.h"
        #include "../schemas/rest.def"
        #include "rest_expand.h"                    //  second time: #undefs all

    STRUCTS (in a header): `typedef struct { ... } <id>_t;` and the extern
    `<id>_schema`. TABLES (in one .c file): the descriptor `<id>_schema`. */
#define REST_EXPAND_STRUCTS 1
#define REST_EXPAND_TABLES  2

#if !defined (REST_EXPAND_OPEN)
#   define REST_EXPAND_OPEN
#   if REST_EXPAND == REST_EXPAND_STRUCTS
//  Every member has has_<name>: set by decode when the member was there, read
//  by encode to leave an optional member out.
#       define REST_STR(n, max, check, req, doc)           char n [(max) + 1]; bool has_##n;
#       define REST_INT(n, min, max, req, doc)             int64_t n; bool has_##n;
#       define REST_BOOL(n, req, doc)                      bool n; bool has_##n;
#       define REST_STRLIST(n, len, max, check, req, doc)  char n [max][(len) + 1]; uint32_t n##_count; bool has_##n;
#       define REST_JSON(n, max, req, doc)                 char n [(max) + 1]; bool has_##n;
#       define REST_OBJ(n, rec, req, doc)                  rec##_t n; bool has_##n;
#       define REST_LIST(n, rec, max, req, doc)            rec##_t *n; uint32_t n##_count; bool has_##n;
#       define REST_BODY(id, dir, route, doc, fields) \
            typedef struct { fields } id##_t; \
            extern const rest_schema_t id##_schema;
#   elif REST_EXPAND == REST_EXPAND_TABLES
//  Inside each generated function `S` is the struct, so the field macros can
//  use offsetof without knowing the body's name.
#       define REST_STR(n, mx, chk, req, doc) \
            { #n, REST_FT_STR, (req), (chk), offsetof (S, n), offsetof (S, has_##n), 0, 0, (mx), 0, 0, NULL, doc },
#       define REST_INT(n, mn, mx, req, doc) \
            { #n, REST_FT_INT, (req), REST_ANY, offsetof (S, n), offsetof (S, has_##n), 0, (mn), (mx), 0, 0, NULL, doc },
#       define REST_BOOL(n, req, doc) \
            { #n, REST_FT_BOOL, (req), REST_ANY, offsetof (S, n), offsetof (S, has_##n), 0, 0, 0, 0, 0, NULL, doc },
#       define REST_STRLIST(n, len, mx, chk, req, doc) \
            { #n, REST_FT_STRLIST, (req), (chk), offsetof (S, n), offsetof (S, has_##n), offsetof (S, n##_count), \
              0, (mx), (len), sizeof (((S *) 0)->n [0]), NULL, doc },
#       define REST_JSON(n, mx, req, doc) \
            { #n, REST_FT_JSON, (req), REST_ANY, offsetof (S, n), offsetof (S, has_##n), 0, 0, (mx), 0, 0, NULL, doc },
#       define REST_OBJ(n, rec, req, doc) \
            { #n, REST_FT_OBJ, (req), REST_ANY, offsetof (S, n), offsetof (S, has_##n), 0, 0, 0, 0, \
              sizeof (rec##_t), &rec##_schema, doc },
#       define REST_LIST(n, rec, mx, req, doc) \
            { #n, REST_FT_LIST, (req), REST_ANY, offsetof (S, n), offsetof (S, has_##n), offsetof (S, n##_count), \
              0, (mx), 0, sizeof (rec##_t), &rec##_schema, doc },
#       define REST_BODY(id, dir, route, doc, fields) \
            static const rest_field_t *s_##id##_fields (void) \
            { \
                typedef id##_t S; \
                static const rest_field_t table [] = { \
                    fields \
                    { NULL, 0, false, REST_ANY, 0, 0, 0, 0, 0, 0, 0, NULL, NULL } \
                }; \
                return table; \
            } \
            const rest_schema_t id##_schema = { #id, dir, route, doc, sizeof (id##_t), s_##id##_fields };
#   else
#       error "rest_expand.h: set REST_EXPAND to REST_EXPAND_STRUCTS or REST_EXPAND_TABLES"
#   endif
#else
#   undef REST_EXPAND_OPEN
#   undef REST_EXPAND
#   undef REST_BODY
#   undef REST_STR
#   undef REST_INT
#   undef REST_BOOL
#   undef REST_STRLIST
#   undef REST_JSON
#   undef REST_OBJ
#   undef REST_LIST
#endif
