/*  rest_codec: the one JSON codec of the registry's REST bodies, driven by the
    descriptors of rest_schema.h (schemas/rest.def).

    Decoding reads untrusted text (the registry reads clients' requests, discovery
    reads the registry's replies): the text must be one JSON object (duplicate keys
    refused, depth limited by jansson), every member is type-, size- and
    format-checked, and the result is the body's C struct. Bad input is -1 with a
    message naming the member ("'name' must be ...", or for a reply "member 'vip'
    is not ..."), never a crash; fuzz_rest feeds every body. Encoding writes the
    members in declaration order (jansson keeps insertion order), required ones
    always and optional ones when has_<name> is set, so the wire JSON is what the
    hand-written json_pack calls produced. */
#ifndef REST_CODEC_H_INCLUDED
#define REST_CODEC_H_INCLUDED

#include "rest_schema.h"
#include <jansson.h>

#define REST_TEXT_MAX (4 * 1024 * 1024)     //  a bigger body is refused unread

//  Decodes text (size bytes, no NUL needed) into out, a <schema id>_t. 0, or -1
//  with err. On 0, call rest_free (schema, out) when the body has a REST_LIST.
int rest_decode (const rest_schema_t *schema, const char *text, size_t size, void *out,
                 char *err, size_t errsize);

//  Parses text into the JSON object rest_decode would read (NULL with err), for a
//  caller that wants the raw value of a member too (discovery forwards iceServers).
json_t *rest_load (const rest_schema_t *schema, const char *text, size_t size, char *err, size_t errsize);

//  Decodes an already parsed object; dir is the direction of the enclosing body.
//  Used for a list's items one at a time (a peer list of 10,000 peers).
int rest_decode_object (const rest_schema_t *schema, rest_dir_t dir, json_t *obj, void *out,
                        char *err, size_t errsize);

//  Frees what decode allocated (REST_LIST arrays) and clears those members.
void rest_free (const rest_schema_t *schema, void *obj);

//  The JSON object of obj (json_decref it). Never NULL.
json_t *rest_encode (const rest_schema_t *schema, const void *obj);

//  A body whose one member is a REST_LIST, around items the caller encoded one by
//  one (a JSON array, consumed): a list of 10,000 peers is never held as structs,
//  and the member's name still comes from the declaration.
json_t *rest_encode_items (const rest_schema_t *schema, json_t *items);

//  The compact JSON text of obj (free it).
char *rest_encode_text (const rest_schema_t *schema, const void *obj);

//  True when text passes check (what decode verifies for a REST_STR or each
//  item of a REST_STRLIST with that check).
bool rest_check (rest_check_t check, const char *text);

//  Decodes standard base64 of exactly size bytes. 0 or -1.
int rest_base64_exact (const char *text, uint8_t *out, size_t size);

void rest_codec_test (bool verbose);
#endif
