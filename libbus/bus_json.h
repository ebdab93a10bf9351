/*  bus_json: reading members of a JSON object from untrusted text, checked one by
    one. The registry validates request bodies from clients and discovery checks
    the registry's replies with the same steps (load an object, rejecting duplicate
    keys; copy a bounded string without NUL; read an integer within bounds), so
    the steps live here once; services share code only through libbus.

    Each reader returns 0, or -1 with a message naming the member in err (err may
    be NULL). The two callers differ only in flags: what they refuse (null, control
    characters, "") and the wording, which each keeps: a client reads the
    registry's messages in HTTP 400 bodies ("'name' must be a string"), an
    operator reads discovery's in logs ("member 'name' is not a string").
    BUS_JSON_REPLY selects the second. */
#ifndef BUS_JSON_H_INCLUDED
#define BUS_JSON_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Flags for the readers, or'ed together.
enum {
    BUS_JSON_REQUIRED    = 1,   //  an absent member is an error (else *out is left as it is)
    BUS_JSON_NULL_ABSENT = 2,   //  a member set to null counts as absent (else: wrong type)
    BUS_JSON_PRINTABLE   = 4,   //  strings: no control characters (below 0x20, 0x7f)
    BUS_JSON_NONEMPTY    = 8,   //  strings: "" is an error
    BUS_JSON_REPLY       = 16   //  word errors for a reply we received, not a client's request
};

//  Parses text (size bytes, no NUL terminator needed) that must be one JSON object,
//  refusing duplicate keys. Returns the object (json_decref it), or NULL with err
//  for empty text, malformed JSON (with line and column) or any other value.
json_t *bus_json_object_load (const char *text, size_t size, int flags, char *err, size_t errsize);

//  Copies the string member name of obj, at most max bytes and without NUL, into
//  out (which holds max + 1 bytes).
int bus_json_string (json_t *obj, const char *name, int flags, char *out, size_t max, char *err, size_t errsize);

//  Reads the integer member name of obj, which must be within [min, max].
int bus_json_int (json_t *obj, const char *name, int flags, int64_t min, int64_t max, int64_t *out,
                  char *err, size_t errsize);

//  True when text has no control characters (below 0x20, 0x7f): what
//  BUS_JSON_PRINTABLE checks, for callers that check array items themselves.
bool bus_json_printable (const char *text);

void bus_json_test (bool verbose);
#endif
