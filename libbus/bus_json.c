/*  bus_json: checked JSON member readers (see bus_json.h). */
#include "bus_json.h"
#include "bus_log.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

json_t *
bus_json_object_load (const char *text, size_t size, int flags, char *err, size_t errsize)
{
    bool reply = flags & BUS_JSON_REPLY;
    if (!text || size == 0) {
        if (reply)
            return bus_errf (err, errsize, "empty reply"), NULL;
        return bus_errf (err, errsize, "request body must be a JSON object"), NULL;
    }
    //  JSON_DECODE_ANY: a scalar parses, so it gets the clear "not an object"
    //  message below instead of jansson's "'[' or '{' expected".
    json_error_t jerr;
    json_t *root = json_loadb (text, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        if (reply)
            return bus_errf (err, errsize, "bad JSON at %d: %s", jerr.position, jerr.text), NULL;
        return bus_errf (err, errsize, "malformed JSON at line %d column %d: %.80s",
                         jerr.line, jerr.column, jerr.text), NULL;
    }
    if (!json_is_object (root)) {
        json_decref (root);
        if (reply)
            return bus_errf (err, errsize, "expected a JSON object"), NULL;
        return bus_errf (err, errsize, "request body must be a JSON object"), NULL;
    }
    return root;
}

//  The member, or NULL when it is absent (or null with BUS_JSON_NULL_ABSENT);
//  *rc is -1 (err set) when an absent member is required, else 0.
static json_t *
s_member (json_t *obj, const char *name, int flags, int *rc, char *err, size_t errsize)
{
    json_t *value = json_object_get (obj, name);
    *rc = 0;
    if (value && !(json_is_null (value) && (flags & BUS_JSON_NULL_ABSENT)))
        return value;
    if (flags & BUS_JSON_REQUIRED)
        *rc = (flags & BUS_JSON_REPLY) ? bus_errf (err, errsize, "missing member '%s'", name)
                                       : bus_errf (err, errsize, "'%s' is required", name);
    return NULL;
}

bool
bus_json_printable (const char *text)
{
    for (const unsigned char *c = (const unsigned char *) text; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return false;
    return true;
}

int
bus_json_string (json_t *obj, const char *name, int flags, char *out, size_t max, char *err, size_t errsize)
{
    bool reply = flags & BUS_JSON_REPLY;
    int rc;
    json_t *value = s_member (obj, name, flags, &rc, err, errsize);
    if (!value)
        return rc;
    if (!json_is_string (value))
        return reply ? bus_errf (err, errsize, "member '%s' is not a string", name)
                     : bus_errf (err, errsize, "'%s' must be a string", name);
    size_t len = json_string_length (value);
    const char *text = json_string_value (value);
    if (len > max || strlen (text) != len)
        return reply ? bus_errf (err, errsize, "member '%s' is too long or has a NUL", name)
                     : bus_errf (err, errsize, "'%s' must be at most %zu characters without NUL", name, max);
    if ((flags & BUS_JSON_PRINTABLE) && !bus_json_printable (text))
        return reply ? bus_errf (err, errsize, "member '%s' has control characters", name)
                     : bus_errf (err, errsize, "'%s' must not contain control characters", name);
    if ((flags & BUS_JSON_NONEMPTY) && len == 0)
        return reply ? bus_errf (err, errsize, "member '%s' is empty", name)
                     : bus_errf (err, errsize, "'%s' must not be empty", name);
    memcpy (out, text, len + 1);
    return 0;
}

int
bus_json_int (json_t *obj, const char *name, int flags, int64_t min, int64_t max, int64_t *out,
              char *err, size_t errsize)
{
    int rc;
    json_t *value = s_member (obj, name, flags, &rc, err, errsize);
    if (!value)
        return rc;
    if (!json_is_integer (value) || json_integer_value (value) < min || json_integer_value (value) > max)
        return (flags & BUS_JSON_REPLY)
            ? bus_errf (err, errsize, "member '%s' is not an integer %lld..%lld", name, (long long) min, (long long) max)
            : bus_errf (err, errsize, "'%s' must be an integer from %lld to %lld", name, (long long) min, (long long) max);
    *out = json_integer_value (value);
    return 0;
}

//  --------------------------------------------------------------------------
//  Self test

//  Loads text (asserting it is an object) for the member tests.
static json_t *
s_object (const char *text)
{
    json_t *root = bus_json_object_load (text, strlen (text), 0, NULL, 0);
    assert (root);
    return root;
}

//  Asserts that loading text fails with a message containing what.
static void
s_expect_load_error (const char *text, size_t size, int flags, const char *what, bool verbose)
{
    char err [200] = "";
    json_t *root = bus_json_object_load (text, size, flags, err, sizeof err);
    if (verbose || root || !strstr (err, what))
        printf ("  load %.40s -> %s\n", text ? text : "(null)", err);
    assert (root == NULL && strstr (err, what));
}

//  Asserts that reading string member name of text fails with exactly message.
static void
s_expect_string_error (const char *text, const char *name, int flags, size_t max, const char *message, bool verbose)
{
    json_t *root = s_object (text);
    char out [16] = "untouched", err [200] = "";
    assert (max < sizeof out);
    int rc = bus_json_string (root, name, flags, out, max, err, sizeof err);
    if (verbose || rc != -1 || strcmp (err, message))
        printf ("  string %s in %s -> %s\n", name, text, err);
    assert (rc == -1 && strcmp (err, message) == 0 && strcmp (out, "untouched") == 0);
    json_decref (root);
}

//  Asserts that reading integer member name of text fails with exactly message.
static void
s_expect_int_error (const char *text, const char *name, int flags, int64_t min, int64_t max,
                    const char *message, bool verbose)
{
    json_t *root = s_object (text);
    int64_t out = 42;
    char err [200] = "";
    int rc = bus_json_int (root, name, flags, min, max, &out, err, sizeof err);
    if (verbose || rc != -1 || strcmp (err, message))
        printf ("  int %s in %s -> %s\n", name, text, err);
    assert (rc == -1 && strcmp (err, message) == 0 && out == 42);
    json_decref (root);
}

void
bus_json_test (bool verbose)
{
    //  Loading: an object, or NULL with a message in either wording
    char err [200];
    const char *text = "{\"a\":1}";
    json_t *root = bus_json_object_load (text, strlen (text), 0, err, sizeof err);
    assert (root && json_integer_value (json_object_get (root, "a")) == 1);
    json_decref (root);
    text = "{\"a\":1}trailing";
    root = bus_json_object_load (text, 7, BUS_JSON_REPLY, err, sizeof err);     //  size, not NUL, ends it
    assert (root);
    json_decref (root);
    s_expect_load_error (NULL, 0, 0, "request body must be a JSON object", verbose);
    s_expect_load_error ("{}", 0, BUS_JSON_REPLY, "empty reply", verbose);
    s_expect_load_error ("[1]", 3, 0, "request body must be a JSON object", verbose);
    s_expect_load_error ("\"x\"", 3, 0, "request body must be a JSON object", verbose);
    s_expect_load_error ("42", 2, BUS_JSON_REPLY, "expected a JSON object", verbose);
    s_expect_load_error ("{\n\"a\":", 6, 0, "malformed JSON at line 2 column 4: ", verbose);
    s_expect_load_error ("{\"a\":", 5, BUS_JSON_REPLY, "bad JSON at 5: ", verbose);
    s_expect_load_error ("{\"a\":1,\"a\":2}", 13, 0, "duplicate object key", verbose);
    s_expect_load_error ("{\"a\":1,\"a\":2}", 13, BUS_JSON_REPLY, "duplicate object key", verbose);
    assert (bus_json_object_load ("[", 1, 0, NULL, 0) == NULL);                  //  err is optional

    //  Strings: copied when valid; max is the length, out holds max + 1
    root = s_object ("{\"s\":\"abc\",\"empty\":\"\",\"none\":null,\"n\":5,\"ctl\":\"a\\tb\"}");
    char out [8];
    assert (bus_json_string (root, "s", BUS_JSON_REQUIRED, out, 3, err, sizeof err) == 0);
    assert (strcmp (out, "abc") == 0);
    strcpy (out, "keep");
    assert (bus_json_string (root, "absent", 0, out, 3, err, sizeof err) == 0 && strcmp (out, "keep") == 0);
    assert (bus_json_string (root, "none", BUS_JSON_NULL_ABSENT, out, 3, err, sizeof err) == 0);
    assert (strcmp (out, "keep") == 0);
    assert (bus_json_string (root, "empty", 0, out, 3, err, sizeof err) == 0 && strcmp (out, "") == 0);
    assert (bus_json_string (root, "ctl", 0, out, 3, err, sizeof err) == 0 && strcmp (out, "a\tb") == 0);
    assert (bus_json_string (root, "n", 0, out, 3, NULL, 0) == -1);
    json_decref (root);

    int req = BUS_JSON_REQUIRED, reply = BUS_JSON_REPLY | BUS_JSON_REQUIRED;
    s_expect_string_error ("{}", "s", req, 8, "'s' is required", verbose);
    s_expect_string_error ("{}", "s", reply, 8, "missing member 's'", verbose);
    s_expect_string_error ("{\"s\":null}", "s", reply | BUS_JSON_NULL_ABSENT, 8, "missing member 's'", verbose);
    s_expect_string_error ("{\"s\":null}", "s", req, 8, "'s' must be a string", verbose);
    s_expect_string_error ("{\"s\":5}", "s", req, 8, "'s' must be a string", verbose);
    s_expect_string_error ("{\"s\":[\"x\"]}", "s", reply, 8, "member 's' is not a string", verbose);
    s_expect_string_error ("{\"s\":\"abcd\"}", "s", req, 3, "'s' must be at most 3 characters without NUL", verbose);
    s_expect_string_error ("{\"s\":\"abcd\"}", "s", reply, 3, "member 's' is too long or has a NUL", verbose);
    //  jansson refuses \u0000 when it parses (no JSON_ALLOW_NUL), but a string
    //  built in memory can hold a NUL: the readers refuse it all the same
    s_expect_load_error ("{\"s\":\"a\\u0000b\"}", 16, 0, "malformed JSON at line 1 column", verbose);
    root = json_object ();
    json_object_set_new (root, "s", json_stringn ("a\0b", 3));
    assert (bus_json_string (root, "s", req, out, 7, err, sizeof err) == -1);
    assert (strcmp (err, "'s' must be at most 7 characters without NUL") == 0);
    assert (bus_json_string (root, "s", reply, out, 7, err, sizeof err) == -1);
    assert (strcmp (err, "member 's' is too long or has a NUL") == 0);
    json_decref (root);
    s_expect_string_error ("{\"s\":\"a\\nb\"}", "s", req | BUS_JSON_PRINTABLE, 8,
                           "'s' must not contain control characters", verbose);
    s_expect_string_error ("{\"s\":\"a\\u007fb\"}", "s", reply | BUS_JSON_PRINTABLE, 8,
                           "member 's' has control characters", verbose);
    s_expect_string_error ("{\"s\":\"\"}", "s", req | BUS_JSON_NONEMPTY, 8, "'s' must not be empty", verbose);
    s_expect_string_error ("{\"s\":\"\"}", "s", reply | BUS_JSON_NONEMPTY, 8, "member 's' is empty", verbose);

    assert (bus_json_printable ("") && bus_json_printable ("host:1 ~\xc3\xa9"));
    assert (!bus_json_printable ("a\rb") && !bus_json_printable ("\x1f") && !bus_json_printable ("\x7f"));

    //  Integers: within [min, max], absent leaves the default
    root = s_object ("{\"i\":-3,\"big\":9007199254740993,\"none\":null}");
    int64_t value = 7;
    assert (bus_json_int (root, "i", BUS_JSON_REQUIRED, -3, -3, &value, err, sizeof err) == 0 && value == -3);
    assert (bus_json_int (root, "big", 0, 0, INT64_MAX, &value, err, sizeof err) == 0 && value == 9007199254740993LL);
    value = 7;
    assert (bus_json_int (root, "absent", 0, 0, 1, &value, err, sizeof err) == 0 && value == 7);
    assert (bus_json_int (root, "none", BUS_JSON_NULL_ABSENT, 0, 1, &value, err, sizeof err) == 0 && value == 7);
    json_decref (root);
    s_expect_int_error ("{}", "i", req, 1, 9, "'i' is required", verbose);
    s_expect_int_error ("{}", "i", reply, 0, 9, "missing member 'i'", verbose);
    s_expect_int_error ("{\"i\":0}", "i", 0, 1, 86400, "'i' must be an integer from 1 to 86400", verbose);
    s_expect_int_error ("{\"i\":86401}", "i", 0, 1, 86400, "'i' must be an integer from 1 to 86400", verbose);
    s_expect_int_error ("{\"i\":-1}", "i", BUS_JSON_REPLY, 0, UINT32_MAX, "member 'i' is not an integer 0..4294967295", verbose);
    s_expect_int_error ("{\"i\":1.5}", "i", 0, 1, 86400, "'i' must be an integer from 1 to 86400", verbose);
    s_expect_int_error ("{\"i\":\"60\"}", "i", BUS_JSON_REPLY, 0, 32, "member 'i' is not an integer 0..32", verbose);
    s_expect_int_error ("{\"i\":null}", "i", 0, 0, 32, "'i' must be an integer from 0 to 32", verbose);
    s_expect_int_error ("{\"i\":true}", "i", 0, 0, 32, "'i' must be an integer from 0 to 32", verbose);
}
