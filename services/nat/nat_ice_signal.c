/*  nat_ice_signal: ICE signalling text from another node, checked (see the
    header). jansson reads the JSON (it is built for untrusted input and
    refuses duplicate keys here); everything after that is this file's: which
    members a type may have, and the form of each. */
#include "nat_ice_signal.h"

#include <assert.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    nat_ice_sig_type_t type;
    const char *members;        //  allowed besides "id", each between spaces
} s_types [] = {
    { "ice-start", NAT_ICE_SIG_START, " " },
    { "ice-creds", NAT_ICE_SIG_CREDS, " to ufrag pwd " },
    { "ice-cand",  NAT_ICE_SIG_CAND,  " to cand " },
    { "ice-end",   NAT_ICE_SIG_END,   " to " },
    { "ice-bye",   NAT_ICE_SIG_BYE,   " to " },
};
#define S_TYPES (sizeof s_types / sizeof s_types [0])

bool
nat_ice_signal_ours (const char *type)
{
    return type && strncmp (type, "ice-", 4) == 0;
}

//  An ICE id: exactly 16 lowercase hex digits, not all zero
static int
s_id (const char *text, uint64_t *id)
{
    if (strlen (text) != 16)
        return -1;
    uint64_t value = 0;
    for (int i = 0; i < 16; i++) {
        char c = text [i];
        int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (digit < 0)
            return -1;
        value = value << 4 | (uint64_t) digit;
    }
    if (!value)
        return -1;
    *id = value;
    return 0;
}

static int
s_fail (char *err, size_t errsize, const char *type, const char *what)
{
    snprintf (err, errsize, "%s: %s", type, what);
    return -1;
}

int
nat_ice_signal_parse (const char *type, const char *data, nat_ice_sig_t *sig,
                      char *err, size_t errsize)
{
    memset (sig, 0, sizeof *sig);
    size_t t = 0;
    while (t < S_TYPES && strcmp (s_types [t].name, type) != 0)
        t++;
    if (t == S_TYPES) {
        snprintf (err, errsize, "unknown signal type '%.32s'", type);
        return -1;
    }
    type = s_types [t].name;
    sig->type = s_types [t].type;
    size_t size = strlen (data);
    if (size > NAT_ICE_SIGNAL_DATA_MAX) {
        snprintf (err, errsize, "%s: data is %zu bytes, at most %d", type, size, NAT_ICE_SIGNAL_DATA_MAX);
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_loadb (data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf (err, errsize, "%s: not JSON: %s", type, jerr.text);
        return -1;
    }
    int rc = 0;
    bool have_id = false, have_to = false, have_ufrag = false, have_pwd = false, have_cand = false;
    if (!json_is_object (root))
        rc = s_fail (err, errsize, type, "data is not a JSON object");
    const char *key;
    json_t *value;
    json_object_foreach (json_is_object (root) ? root : NULL, key, value) {
        if (rc)
            break;
        char spaced [40];
        snprintf (spaced, sizeof spaced, " %.32s ", key);
        if (strcmp (key, "id") != 0 && (strlen (key) > 32 || !strstr (s_types [t].members, spaced))) {
            snprintf (err, errsize, "%s: unexpected member '%.32s'", type, key);
            rc = -1;
            break;
        }
        if (!json_is_string (value)) {
            snprintf (err, errsize, "%s: member '%s' is not a string", type, key);
            rc = -1;
            break;
        }
        const char *text = json_string_value (value);
        char cerr [160];
        if (strcmp (key, "id") == 0) {
            have_id = true;
            if (s_id (text, &sig->id))
                rc = s_fail (err, errsize, type, "id: expected 16 lowercase hex digits, not all zero");
        }
        else
        if (strcmp (key, "to") == 0) {
            have_to = true;
            if (s_id (text, &sig->to))
                rc = s_fail (err, errsize, type, "to: expected 16 lowercase hex digits, not all zero");
        }
        else
        if (strcmp (key, "ufrag") == 0 || strcmp (key, "pwd") == 0) {
            char *out = key [0] == 'u' ? sig->ufrag : sig->pwd;
            *(key [0] == 'u' ? &have_ufrag : &have_pwd) = true;
            if (strlen (text) > ICE_CRED_MAX) {
                snprintf (err, errsize, "%s: %s: longer than %d characters", type, key, ICE_CRED_MAX);
                rc = -1;
            }
            else
                snprintf (out, ICE_CRED_MAX + 1, "%s", text);
        }
        else {          //  cand
            have_cand = true;
            ice_cand_t cand;
            if (strlen (text) > ICE_CAND_TEXT_MAX) {
                snprintf (err, errsize, "%s: cand: longer than %d bytes", type, ICE_CAND_TEXT_MAX);
                rc = -1;
            }
            else
            //  An extension attribute may hold any byte (RFC 8839), but what we
            //  pass on must format back as written: no '"' or '\' (JSON escapes)
            if (strpbrk (text, "\"\\")) {
                snprintf (err, errsize, "%s: cand: '\"' or '\\' in a candidate line", type);
                rc = -1;
            }
            else
            if (ice_cand_parse (text, &cand, cerr, sizeof cerr)) {
                snprintf (err, errsize, "%s: %s", type, cerr);
                rc = -1;
            }
            else
                snprintf (sig->cand, sizeof sig->cand, "%s", text);
        }
    }
    //  Every member its type allows is required
    if (!rc && !have_id)
        rc = s_fail (err, errsize, type, "missing member 'id'");
    if (!rc && sig->type != NAT_ICE_SIG_START && !have_to)
        rc = s_fail (err, errsize, type, "missing member 'to'");
    if (!rc && sig->type == NAT_ICE_SIG_CREDS && (!have_ufrag || !have_pwd))
        rc = s_fail (err, errsize, type, have_ufrag ? "missing member 'pwd'" : "missing member 'ufrag'");
    if (!rc && sig->type == NAT_ICE_SIG_CREDS) {
        char cerr [160];
        if (ice_cand_check_credentials (sig->ufrag, sig->pwd, cerr, sizeof cerr)) {
            snprintf (err, errsize, "%s: %s", type, cerr);
            rc = -1;
        }
    }
    if (!rc && sig->type == NAT_ICE_SIG_CAND && !have_cand)
        rc = s_fail (err, errsize, type, "missing member 'cand'");
    if (!rc && sig->to && sig->to == sig->id)
        rc = s_fail (err, errsize, type, "id and to are the same");
    json_decref (root);
    return rc;
}

int
nat_ice_signal_format (const nat_ice_sig_t *sig, char *type, size_t typesize,
                       char *data, size_t datasize)
{
    size_t t = 0;
    while (t < S_TYPES && s_types [t].type != sig->type)
        t++;
    if (t == S_TYPES || (size_t) snprintf (type, typesize, "%s", s_types [t].name) >= typesize)
        return -1;
    //  Everything written here is ice-chars, hex or a candidate line: no
    //  character needs escaping in JSON (ice_cand's grammar has no '"' or '\')
    int n;
    switch (sig->type) {
        case NAT_ICE_SIG_START:
            n = snprintf (data, datasize, "{\"id\":\"%016" PRIx64 "\"}", sig->id);
            break;
        case NAT_ICE_SIG_CREDS:
            n = snprintf (data, datasize, "{\"id\":\"%016" PRIx64 "\",\"to\":\"%016" PRIx64 "\",\"ufrag\":\"%s\",\"pwd\":\"%s\"}",
                          sig->id, sig->to, sig->ufrag, sig->pwd);
            break;
        case NAT_ICE_SIG_CAND:
            if (strchr (sig->cand, '"') || strchr (sig->cand, '\\'))
                return -1;
            n = snprintf (data, datasize, "{\"id\":\"%016" PRIx64 "\",\"to\":\"%016" PRIx64 "\",\"cand\":\"%s\"}",
                          sig->id, sig->to, sig->cand);
            break;
        default:
            n = snprintf (data, datasize, "{\"id\":\"%016" PRIx64 "\",\"to\":\"%016" PRIx64 "\"}", sig->id, sig->to);
            break;
    }
    return n < 0 || (size_t) n >= datasize ? -1 : 0;
}

//  ---------------------------------------------------------------------------

static void
s_bad (const char *type, const char *data, const char *expect, bool verbose)
{
    nat_ice_sig_t sig;
    char err [200] = "";
    int rc = nat_ice_signal_parse (type, data, &sig, err, sizeof err);
    if (verbose)
        printf ("  %s %s -> %s\n", type, data, err);
    assert (rc == -1);
    if (!strstr (err, expect))
        printf ("nat_ice_signal: '%s' lacks '%s'\n", err, expect);
    assert (strstr (err, expect));
}

void
nat_ice_signal_test (bool verbose)
{
    printf (" * nat_ice_signal: ");
    if (verbose)
        printf ("\n");
    nat_ice_sig_t sig, back;
    char err [200], type [NAT_ICE_SIGNAL_TYPE_MAX], data [NAT_ICE_SIGNAL_DATA_MAX + 1];
    const char *A = "00000000000000a1", *B = "b4c804b23a21c6aa";
    char text [600];

    //  Good ones, in any member order and spacing, and their round trip
    snprintf (text, sizeof text, "{\"id\":\"%s\"}", A);
    assert (nat_ice_signal_parse ("ice-start", text, &sig, err, sizeof err) == 0);
    assert (sig.type == NAT_ICE_SIG_START && sig.id == 0xa1 && sig.to == 0);
    snprintf (text, sizeof text, " { \"pwd\" : \"asd88fgpdd777uzjYhagZg00\", \"ufrag\":\"8hhY\", \"to\":\"%s\",\"id\":\"%s\"}", A, B);
    assert (nat_ice_signal_parse ("ice-creds", text, &sig, err, sizeof err) == 0);
    assert (sig.id == 0xb4c804b23a21c6aaULL && sig.to == 0xa1 && strcmp (sig.ufrag, "8hhY") == 0);
    assert (nat_ice_signal_format (&sig, type, sizeof type, data, sizeof data) == 0);
    assert (strcmp (type, "ice-creds") == 0);
    assert (nat_ice_signal_parse (type, data, &back, err, sizeof err) == 0);
    assert (memcmp (&sig, &back, sizeof sig) == 0);
    snprintf (text, sizeof text, "{\"id\":\"%s\",\"to\":\"%s\",\"cand\":\"candidate:1 1 UDP 2015363327 10.8.0.2 41682 typ host\"}", A, B);
    assert (nat_ice_signal_parse ("ice-cand", text, &sig, err, sizeof err) == 0);
    assert (strstr (sig.cand, "typ host"));
    assert (nat_ice_signal_format (&sig, type, sizeof type, data, sizeof data) == 0);
    assert (nat_ice_signal_parse (type, data, &back, err, sizeof err) == 0 && memcmp (&sig, &back, sizeof sig) == 0);
    snprintf (text, sizeof text, "{\"id\":\"%s\",\"to\":\"%s\"}", A, B);
    assert (nat_ice_signal_parse ("ice-end", text, &sig, err, sizeof err) == 0 && sig.type == NAT_ICE_SIG_END);
    assert (nat_ice_signal_parse ("ice-bye", text, &sig, err, sizeof err) == 0 && sig.type == NAT_ICE_SIG_BYE);
    assert (nat_ice_signal_ours ("ice-cand") && !nat_ice_signal_ours ("offer"));

    //  Every mistake, with its message
    s_bad ("offer", "{}", "unknown signal type 'offer'", verbose);
    s_bad ("ice-start", "", "ice-start: not JSON", verbose);
    s_bad ("ice-start", "[1]", "data is not a JSON object", verbose);
    s_bad ("ice-start", "{\"id\":\"00000000000000a1\"", "not JSON", verbose);
    s_bad ("ice-start", "{}", "missing member 'id'", verbose);
    s_bad ("ice-start", "{\"id\":1}", "member 'id' is not a string", verbose);
    s_bad ("ice-start", "{\"id\":\"00000000000000A1\"}", "id: expected 16 lowercase hex", verbose);
    s_bad ("ice-start", "{\"id\":\"0000000000000000\"}", "not all zero", verbose);
    s_bad ("ice-start", "{\"id\":\"00a1\"}", "id: expected", verbose);
    s_bad ("ice-start", "{\"id\":\"00000000000000a1\",\"id\":\"00000000000000a2\"}", "not JSON", verbose);
    s_bad ("ice-start", "{\"id\":\"00000000000000a1\",\"to\":\"00000000000000a2\"}", "unexpected member 'to'", verbose);
    s_bad ("ice-end", "{\"id\":\"00000000000000a1\"}", "missing member 'to'", verbose);
    s_bad ("ice-end", "{\"id\":\"00000000000000a1\",\"to\":\"00000000000000a1\"}", "id and to are the same", verbose);
    s_bad ("ice-bye", "{\"id\":\"00000000000000a1\",\"to\":\"00000000000000a2\",\"x\":\"1\"}", "unexpected member 'x'", verbose);
    s_bad ("ice-creds", "{\"id\":\"00000000000000a1\",\"to\":\"00000000000000a2\",\"ufrag\":\"8hhY\"}", "missing member 'pwd'", verbose);
    s_bad ("ice-creds", "{\"id\":\"00000000000000a1\",\"to\":\"00000000000000a2\",\"ufrag\":\"8hh\",\"pwd\":\"asd88fgpdd777uzjYhagZg00\"}",
           "ufrag: 3 characters", verbose);
    s_bad ("ice-creds", "{\"id\":\"00000000000000a1\",\"to\":\"00000000000000a2\",\"ufrag\":\"8hhY\",\"pwd\":\"asd 8fgpdd777uzjYhagZg00\"}",
           "pwd: invalid character", verbose);
    s_bad ("ice-cand", "{\"id\":\"00000000000000a1\",\"to\":\"00000000000000a2\",\"cand\":\"candidate:1 1 TCP 2015363327 10.8.0.2 41682 typ host\"}",
           "transport 'TCP' not supported", verbose);
    s_bad ("ice-cand", "{\"id\":\"00000000000000a1\",\"to\":\"00000000000000a2\",\"cand\":\"candidate:1 1 UDP 2015363327 x.local 41682 typ host\"}",
           "ice-cand: candidate:", verbose);
    s_bad ("ice-cand", "{\"id\":\"00000000000000a1\",\"to\":\"00000000000000a2\"}", "missing member 'cand'", verbose);
    //  libFuzzer's find: an extension value with a backslash (JSON \\) parsed, then could not be written back
    s_bad ("ice-cand", "{\"id\":\"00000000000000a1\",\"to\":\"00000000000000a2\",\"cand\":\"candidate:1 1 UDP 2015363327 10.8.0.2 41682 typ host ra b\\\\c\"}",
           "in a candidate line", verbose);
    s_bad ("ice-cand", "{\"id\":\"00000000000000a1\",\"to\":\"00000000000000a2\",\"cand\":[]}", "is not a string", verbose);
    s_bad ("ice-start", "{\"id\":\"00000000000000a1\\u0000\"}", "not JSON", verbose);
    char big [NAT_ICE_SIGNAL_DATA_MAX + 40];
    memset (big, ' ', sizeof big - 1);
    big [sizeof big - 1] = 0;
    s_bad ("ice-start", big, "at most 1024", verbose);

    //  What does not fit is refused, not cut
    sig = (nat_ice_sig_t) { .type = NAT_ICE_SIG_START, .id = 1 };
    assert (nat_ice_signal_format (&sig, type, sizeof type, data, 10) == -1);
    printf ("OK\n");
}
