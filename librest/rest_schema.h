/*  rest_schema: the registry's REST bodies (schemas/rest.def) expanded into C.

    The registry decodes what discovery encodes and discovery decodes what the
    registry encodes, so both ends read one declaration per body: this header turns
    each into a struct `<id>_t` and a descriptor `<id>_schema`, and rest_codec walks
    the descriptors to decode (with full validation: a bad body is an error naming
    the member, never a crash), encode and document. Renaming a member in rest.def
    renames it on both ends at once. The model is libbus/bus_schema.h.
*/
#ifndef REST_SCHEMA_H_INCLUDED
#define REST_SCHEMA_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    REST_FT_STR = 1,    //  char name[max + 1]
    REST_FT_INT,        //  int64_t name, within [min, max]
    REST_FT_BOOL,       //  bool name
    REST_FT_STRLIST,    //  char name[max][len + 1] + uint32_t name_count
    REST_FT_JSON,       //  any JSON value, kept as compact text: char name[max + 1]
    REST_FT_OBJ,        //  record_t name (a nested object)
    REST_FT_LIST        //  record_t *name (malloc'd by decode) + uint32_t name_count
} rest_ftype_t;

//  What a string (or each string of a list) must look like, checked on decode.
typedef enum {
    REST_ANY = 0,       //  any string without NUL
    REST_TEXT,          //  printable: no control characters
    REST_NAME,          //  1..64 of letters, digits, '-', '_', '.', first a letter or digit
    REST_ID,            //  1..32 of a-z, 0-9, '-', first a letter or digit
    REST_HEX16,         //  16 hex digits (peer ids)
    REST_B64_32,        //  base64 of 32 bytes (keys, nonces, proofs)
    REST_IPV4,          //  dotted IPv4 address
    REST_ENDPOINT,      //  host:port (IPv4, [IPv6] or a name; port 1..65535)
    REST_CANDIDATE,     //  printable ASCII, 1..200
    REST_IP,            //  an IPv4 or IPv6 address (no port)
    REST_RELAY,         //  a relay "name@host:port": a REST_NAME, '@', a REST_ENDPOINT
    REST_RELAY_CRED     //  a relay credential "EXPIRY.MACHEX": 1..20 digits, '.', 64 hex digits
} rest_check_t;

//  Body direction: what the decoder forgives. A request (client -> registry)
//  refuses unknown members so a typo never passes; a reply or event (registry ->
//  node) ignores them so a newer registry can add some, takes null as absent,
//  and words errors for an operator's log.
typedef enum {
    REST_RECORD = 0,    //  only nested in bodies; takes its parent's direction
    REST_REQUEST,
    REST_REPLY
} rest_dir_t;

//  Field presence
#define REST_OPT 0
#define REST_REQ 1

typedef struct _rest_schema_t rest_schema_t;

typedef struct {
    const char *name;
    rest_ftype_t type;
    bool required;
    rest_check_t check;
    size_t offset;              //  of the value in the struct
    size_t has_offset;          //  of the bool has_<name>
    size_t count_offset;        //  STRLIST, LIST: of the uint32_t <name>_count
    int64_t min, max;           //  INT: range; STR, JSON: max length; STRLIST, LIST: max items
    uint32_t item_len;          //  STRLIST: max length of one string
    size_t item_size;           //  STRLIST, LIST: size of one item
    const rest_schema_t *record;//  OBJ, LIST
    const char *doc;
} rest_field_t;

struct _rest_schema_t {
    const char *id;             //  C name, e.g. "rest_signal_req"
    rest_dir_t dir;
    const char *route;          //  e.g. "POST .../peers/{peer}/signal"; NULL for records
    const char *doc;
    size_t size;                //  sizeof the struct
    const rest_field_t *(*fields) (void);   //  terminated by name == NULL
};

//  ---------------------------------------------------------------------------
//  Expansion 1: the structs (rest_expand.h).
#define REST_EXPAND REST_EXPAND_STRUCTS
#include "rest_expand.h"
#include "../schemas/rest.def"
#include "rest_expand.h"

//  Every body and record, in declaration order.
const rest_schema_t *const *rest_schema_all (size_t *count);

//  Writes the Markdown reference of every body (docs/rest-bodies.md).
void rest_schema_markdown (FILE *out);

void rest_schema_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
