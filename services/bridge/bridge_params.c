/*  bridge_params: parse and validate a `/v0/ws/proxy` request (bridge_params.h).
    The parameters, their sizes and the close codes are schemas/bridge.def's. */
#include "bridge_params.h"
#include "rest_codec.h"
#include "bus_log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_VALUE_MAX 215     //  the largest BRIDGE_PARAM max, target's (checked below)
#define S_TARGET_TEXT 64    //  "[" 45 "]:" 5, and a NUL

struct _bridge_params_t {
    bool allow_loopback;
    bool has_target;
    bridge_addr_t target [BRIDGE_TARGETS_MAX];
    int target_count;
    char target_text [S_TARGET_TEXT];       //  the first candidate's
    char peer [17];
    uint8_t key [BRIDGE_KEY_SIZE];
    bridge_cipher_t cipher;
    char token [BRIDGE_TOKEN_MAX + 1];
    char reason [BRIDGE_REASON_MAX + 1];
};

//  The decoded values of one query, wiped after the parse (they hold the key)
typedef struct {
    bool seen [BRIDGE_PARAM_COUNT];
    char value [BRIDGE_PARAM_COUNT][S_VALUE_MAX + 1];
} s_query_t;

bridge_params_t *
bridge_params_new (void)
{
    bridge_params_t *self = (bridge_params_t *) calloc (1, sizeof *self);
    assert (self);
    return self;
}

void
bridge_params_destroy (bridge_params_t **self_p)
{
    assert (self_p);
    bridge_params_t *self = *self_p;
    if (!self)
        return;
    sodium_memzero (self, sizeof *self);
    free (self);
    *self_p = NULL;
}

void
bridge_params_set_allow_loopback (bridge_params_t *self, bool allow)
{
    self->allow_loopback = allow;
}

//  Sets the reason and returns code
static int
s_fail (bridge_params_t *self, int code, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
static int
s_fail (bridge_params_t *self, int code, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->reason, sizeof self->reason, fmt, args);
    va_end (args);
    return code;
}

//  A stranger's text made fit to quote in a reason: printable, at most 40
//  characters ("..." after a longer one)
static const char *
s_quote (const char *text, char out [48])
{
    size_t i = 0;
    for (; text [i] && i < 40; i++)
        out [i] = (text [i] >= 0x20 && text [i] < 0x7f) ? text [i] : '?';
    strcpy (out + i, text [i] ? "..." : "");
    return out;
}

static int
s_hex (char c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

//  Percent-decodes in [0, n) into out (max bytes and a NUL). '+' stays '+' (RFC
//  3986: nothing here may hold a space, and base64 keys hold '+'). 0, -1 for a
//  bad escape, -2 when longer than max, -3 for a byte that is not printable
//  ASCII without space (decoded or not).
static int
s_decode (const char *in, size_t n, char *out, size_t max)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char) in [i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = s_hex (in [i + 1]), lo = s_hex (in [i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c <= 0x20 || c >= 0x7f)
            return -3;
        if (len == max)
            return -2;
        out [len++] = (char) c;
    }
    out [len] = 0;
    return 0;
}

//  Reads one "name=value" of the query into q. 0 or a close code.
static int
s_pair (bridge_params_t *self, const char *pair, size_t n, s_query_t *q)
{
    const char *eq = memchr (pair, '=', n);
    char name [17], quoted [48];
    int rc = s_decode (pair, eq ? (size_t) (eq - pair) : n, name, sizeof name - 1);
    if (rc != 0)
        return s_fail (self, BRIDGE_CLOSE_BAD_PARAM, "a parameter's name is not a short printable name");
    size_t index = 0;
    while (index < BRIDGE_PARAM_COUNT && strcmp (bridge_params_table [index].name, name) != 0)
        index++;
    if (index == BRIDGE_PARAM_COUNT)
        return s_fail (self, BRIDGE_CLOSE_BAD_PARAM, "unknown parameter '%s'", s_quote (name, quoted));
    int code = index == BRIDGE_PARAM_TOKEN ? BRIDGE_CLOSE_BAD_TOKEN : BRIDGE_CLOSE_BAD_PARAM;
    if (q->seen [index])
        return s_fail (self, code, "%s: given twice", name);
    q->seen [index] = true;
    if (!eq || eq + 1 == pair + n)
        return s_fail (self, code, "%s: empty", name);
    rc = s_decode (eq + 1, (size_t) (pair + n - eq - 1), q->value [index], (size_t) bridge_params_table [index].value);
    if (rc == -1)
        return s_fail (self, code, "%s: bad percent-encoding", name);
    if (rc == -2)
        return s_fail (self, code, "%s: longer than %d bytes", name, bridge_params_table [index].value);
    if (rc == -3)
        return s_fail (self, code, "%s: holds a byte that is not printable ASCII", name);
    return 0;
}

int
bridge_params_endpoint (const char *text, struct sockaddr_storage *addr, socklen_t *len,
                        char *err, size_t errsize)
{
    char host [S_TARGET_TEXT], quoted [48];
    const char *port_text;
    memset (addr, 0, sizeof *addr);
    if (*text == '[') {
        const char *close = strchr (text, ']');
        if (!close || close [1] != ':')
            return bus_errf (err, errsize, "'%s' is not [IPv6]:port", s_quote (text, quoted));
        size_t n = (size_t) (close - text - 1);
        if (n >= sizeof host)
            return bus_errf (err, errsize, "'%s' is not an IPv6 address", s_quote (text, quoted));
        memcpy (host, text + 1, n);
        host [n] = 0;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) addr;
        if (inet_pton (AF_INET6, host, &sin6->sin6_addr) != 1)
            return bus_errf (err, errsize, "'%s' is not an IPv6 address", s_quote (host, quoted));
        sin6->sin6_family = AF_INET6;
        *len = sizeof *sin6;
        port_text = close + 2;
    }
    else {
        const char *colon = strrchr (text, ':');
        if (!colon)
            return bus_errf (err, errsize, "'%s' has no port (IPv4:port or [IPv6]:port)", s_quote (text, quoted));
        if (memchr (text, ':', (size_t) (colon - text)))
            return bus_errf (err, errsize, "an IPv6 address goes in brackets, [address]:port");
        size_t n = (size_t) (colon - text);
        if (n >= sizeof host)
            n = sizeof host - 1;
        memcpy (host, text, n);
        host [n] = 0;
        struct sockaddr_in *sin = (struct sockaddr_in *) addr;
        if (inet_pton (AF_INET, host, &sin->sin_addr) != 1) {
            bool name = false;
            for (const char *p = host; *p; p++)
                name |= isalpha ((unsigned char) *p) != 0;
            return name ? bus_errf (err, errsize, "'%s' is not an address literal: the bridge resolves no names",
                                    s_quote (host, quoted))
                        : bus_errf (err, errsize, "'%s' is not an IPv4 address", s_quote (host, quoted));
        }
        sin->sin_family = AF_INET;
        *len = sizeof *sin;
        port_text = colon + 1;
    }
    //  The port: 1..5 digits, 1..65535
    long port = 0;
    size_t digits = 0;
    for (const char *p = port_text; *p; p++, digits++) {
        if (*p < '0' || *p > '9')
            return bus_errf (err, errsize, "port '%s' is not a number", s_quote (port_text, quoted));
        if (digits < 9)
            port = port * 10 + (*p - '0');
    }
    if (digits == 0)
        return bus_errf (err, errsize, "no port after the address");
    if (digits > 5 || port < 1 || port > 65535)
        return bus_errf (err, errsize, "port %s is out of range 1..65535", s_quote (port_text, quoted));
    if (addr->ss_family == AF_INET)
        ((struct sockaddr_in *) addr)->sin_port = htons ((uint16_t) port);
    else
        ((struct sockaddr_in6 *) addr)->sin6_port = htons ((uint16_t) port);
    return 0;
}

const char *
bridge_params_forbidden (const struct sockaddr_storage *addr, bool allow_loopback)
{
    if (addr->ss_family == AF_INET) {
        uint32_t a = ntohl (((const struct sockaddr_in *) addr)->sin_addr.s_addr);
        if ((a >> 24) == 0)
            return "is unspecified (0.0.0.0/8)";
        if ((a >> 24) == 127 && !allow_loopback)
            return "is a loopback address: the bridge sends to no address of its own host";
        if ((a >> 28) == 14)
            return "is multicast";
        if ((a >> 28) == 15)
            return "is reserved or broadcast";
        return NULL;
    }
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *) addr)->sin6_addr;
    if (IN6_IS_ADDR_UNSPECIFIED (a6))
        return "is unspecified (::)";
    if (IN6_IS_ADDR_LOOPBACK (a6) && !allow_loopback)
        return "is a loopback address: the bridge sends to no address of its own host";
    if (IN6_IS_ADDR_MULTICAST (a6))
        return "is multicast";
    if (IN6_IS_ADDR_LINKLOCAL (a6))
        return "is link-local: it needs an interface the client cannot name";
    if (IN6_IS_ADDR_V4MAPPED (a6) || IN6_IS_ADDR_V4COMPAT (a6))
        return "embeds an IPv4 address: write it as IPv4:port";
    return NULL;
}

//  Checks the token from the header or the query. 0 or BRIDGE_CLOSE_BAD_TOKEN.
static int
s_token (bridge_params_t *self, const char *authorization, s_query_t *q)
{
    const char *token = q->seen [BRIDGE_PARAM_TOKEN] ? q->value [BRIDGE_PARAM_TOKEN] : NULL;
    if (authorization) {
        if (token)
            return s_fail (self, BRIDGE_CLOSE_BAD_TOKEN, "token: given both in the header and in the query");
        if (strncasecmp (authorization, "Bearer ", 7) != 0)
            return s_fail (self, BRIDGE_CLOSE_BAD_TOKEN, "Authorization: not a Bearer token");
        token = authorization + 7;
    }
    if (!token)
        return s_fail (self, BRIDGE_CLOSE_BAD_TOKEN, "missing bearer token");
    size_t len = strlen (token);
    bool ok = len >= 1 && len <= BRIDGE_TOKEN_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = token [i] > 0x20 && token [i] < 0x7f;
    if (!ok)
        return s_fail (self, BRIDGE_CLOSE_BAD_TOKEN, "token: not 1..%d printable characters", BRIDGE_TOKEN_MAX);
    memcpy (self->token, token, len + 1);
    return 0;
}

//  target: 1..TARGETS_MAX candidates, comma-separated, each an allowed
//  address literal, none twice. 0 or a close code.
static int
s_targets (bridge_params_t *self, const char *text)
{
    char err [BRIDGE_REASON_MAX + 1], one [S_VALUE_MAX + 1];
    self->target_count = 0;
    for (const char *at = text; ; ) {
        const char *comma = strchr (at, ',');
        size_t n = comma ? (size_t) (comma - at) : strlen (at);
        int i = self->target_count;
        //  "target: " for one candidate (the usual), "target: candidate 2: " for a list
        char which [24] = "";
        if (i > 0 || comma)
            snprintf (which, sizeof which, "candidate %d: ", i + 1);
        if (i == BRIDGE_TARGETS_MAX)
            return s_fail (self, BRIDGE_CLOSE_BAD_PARAM, "target: more than %d candidates", BRIDGE_TARGETS_MAX);
        if (n == 0)
            return s_fail (self, BRIDGE_CLOSE_BAD_PARAM, "target: %sempty (candidates are separated by one comma)", which);
        memcpy (one, at, n);
        one [n] = 0;
        bridge_addr_t *t = &self->target [i];
        if (bridge_params_endpoint (one, &t->addr, &t->len, err, sizeof err) != 0)
            return s_fail (self, BRIDGE_CLOSE_BAD_PARAM, "target: %s%s", which, err);
        const char *why = bridge_params_forbidden (&t->addr, self->allow_loopback);
        if (why)
            return s_fail (self, BRIDGE_CLOSE_BAD_PARAM, "target: %s%s", which, why);
        for (int j = 0; j < i; j++)
            if (bridge_addr_same (&self->target [j].addr, &t->addr))
                return s_fail (self, BRIDGE_CLOSE_BAD_PARAM, "target: %sthe same as candidate %d", which, j + 1);
        self->target_count++;
        if (!comma)
            return 0;
        at = comma + 1;
    }
}

//  Checks the values of q, all present ones well-formed. 0 or a close code.
static int
s_values (bridge_params_t *self, s_query_t *q)
{
    bool target = q->seen [BRIDGE_PARAM_TARGET], peer = q->seen [BRIDGE_PARAM_PEER];
    if (target && peer)
        return s_fail (self, BRIDGE_CLOSE_BAD_PARAM, "target, peer: give one of them, not both");
    if (!target && !peer)
        return s_fail (self, BRIDGE_CLOSE_BAD_PARAM, "target, peer: one of them is required");
    if (target) {
        int code = s_targets (self, q->value [BRIDGE_PARAM_TARGET]);
        if (code)
            return code;
        bridge_addr_text (&self->target [0].addr, self->target_text, sizeof self->target_text);
        self->has_target = true;
    }
    else {
        if (!rest_check (REST_HEX16, q->value [BRIDGE_PARAM_PEER]))
            return s_fail (self, BRIDGE_CLOSE_BAD_PARAM, "peer: not a peer id (16 hex digits)");
        memcpy (self->peer, q->value [BRIDGE_PARAM_PEER], sizeof self->peer);
    }
    if (!q->seen [BRIDGE_PARAM_KEY])
        return s_fail (self, BRIDGE_CLOSE_BAD_PARAM, "key: required");
    if (rest_base64_exact (q->value [BRIDGE_PARAM_KEY], self->key, BRIDGE_KEY_SIZE) != 0)
        return s_fail (self, BRIDGE_CLOSE_BAD_PARAM, "key: not the base64 of %d bytes", BRIDGE_KEY_SIZE);
    self->cipher = BRIDGE_CIPHER_AUTO;
    if (q->seen [BRIDGE_PARAM_CIPHER]) {
        size_t i = 0;
        while (i < BRIDGE_CIPHER_COUNT && strcmp (bridge_ciphers [i].name, q->value [BRIDGE_PARAM_CIPHER]) != 0)
            i++;
        if (i == BRIDGE_CIPHER_COUNT) {
            char quoted [48], choices [80] = "";
            for (size_t c = 0; c < BRIDGE_CIPHER_COUNT; c++)
                snprintf (choices + strlen (choices), sizeof choices - strlen (choices), "%s%s",
                          c ? ", " : "", bridge_ciphers [c].name);
            return s_fail (self, BRIDGE_CLOSE_BAD_PARAM, "cipher: '%s' is not one of %s",
                           s_quote (q->value [BRIDGE_PARAM_CIPHER], quoted), choices);
        }
        self->cipher = (bridge_cipher_t) i;
    }
    return 0;
}

int
bridge_params_parse (bridge_params_t *self, const char *query, size_t size, const char *authorization)
{
    bool allow_loopback = self->allow_loopback;
    sodium_memzero (self, sizeof *self);
    self->allow_loopback = allow_loopback;
    if (size > BRIDGE_QUERY_MAX)
        return s_fail (self, BRIDGE_CLOSE_BAD_PARAM, "query: longer than %d bytes", BRIDGE_QUERY_MAX);
    s_query_t *q = (s_query_t *) calloc (1, sizeof *q);
    assert (q);
    int rc = 0;
    for (size_t start = 0; query && start < size && rc == 0; ) {
        const char *amp = memchr (query + start, '&', size - start);
        size_t end = amp ? (size_t) (amp - query) : size;
        if (end > start)        //  "a=1&&b=2", a trailing '&': nothing there
            rc = s_pair (self, query + start, end - start, q);
        start = end + 1;
    }
    if (rc == 0)
        rc = s_token (self, authorization, q);
    if (rc == 0)
        rc = s_values (self, q);
    sodium_memzero (q, sizeof *q);
    free (q);
    if (rc != 0) {
        //  Nothing of a refused request is kept, but the reason
        char reason [sizeof self->reason];
        memcpy (reason, self->reason, sizeof reason);
        sodium_memzero (self, sizeof *self);
        self->allow_loopback = allow_loopback;
        memcpy (self->reason, reason, sizeof reason);
    }
    return rc;
}

const char *
bridge_params_reason (bridge_params_t *self)
{
    return self->reason;
}

bool
bridge_params_has_target (bridge_params_t *self)
{
    return self->has_target;
}

const struct sockaddr *
bridge_params_target (bridge_params_t *self, socklen_t *len)
{
    const bridge_addr_t *first = bridge_params_targets (self, NULL);
    if (first && len)
        *len = first->len;
    return first ? (const struct sockaddr *) &first->addr : NULL;
}

const bridge_addr_t *
bridge_params_targets (bridge_params_t *self, int *count)
{
    if (count)
        *count = self->has_target ? self->target_count : 0;
    return self->has_target ? self->target : NULL;
}

const char *
bridge_params_target_text (bridge_params_t *self)
{
    return self->has_target ? self->target_text : NULL;
}

const char *
bridge_params_peer (bridge_params_t *self)
{
    return self->peer [0] ? self->peer : NULL;
}

const uint8_t *
bridge_params_key (bridge_params_t *self)
{
    return self->key;
}

bridge_cipher_t
bridge_params_cipher (bridge_params_t *self)
{
    return self->cipher;
}

const char *
bridge_params_token (bridge_params_t *self)
{
    return self->token [0] ? self->token : NULL;
}

//  ---------------------------------------------------------------------------
//  Self test

_Static_assert (S_VALUE_MAX >= BRIDGE_TOKEN_MAX, "bridge_params: a value buffer holds the longest parameter");
_Static_assert (S_VALUE_MAX == BRIDGE_TARGETS_MAX * (BRIDGE_ENDPOINT_MAX + 1) - 1,
                "bridge_params: target holds TARGETS_MAX endpoints and the commas between them");

#define streq(a, b) (strcmp ((a), (b)) == 0)
#define K32 "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="     //  bytes 1..32

void
bridge_params_test (bool verbose)
{
    if (verbose)
        printf (" * bridge_params: ");
    bridge_params_t *self = bridge_params_new ();

    //  Good requests, and what they hold
    const char *q = "target=192.0.2.1:4000&key=" K32;
    assert (bridge_params_parse (self, q, strlen (q), "Bearer bpt_abc") == 0);
    assert (streq (bridge_params_reason (self), ""));
    assert (bridge_params_has_target (self));
    assert (streq (bridge_params_target_text (self), "192.0.2.1:4000"));
    socklen_t len = 0;
    const struct sockaddr_in *sin = (const struct sockaddr_in *) bridge_params_target (self, &len);
    assert (len == sizeof *sin && sin->sin_family == AF_INET && ntohs (sin->sin_port) == 4000);
    assert (bridge_params_key (self) [0] == 1 && bridge_params_key (self) [31] == 32);
    assert (bridge_params_cipher (self) == BRIDGE_CIPHER_AUTO);
    assert (streq (bridge_params_token (self), "bpt_abc"));
    assert (bridge_params_peer (self) == NULL);

    q = "target=%5B2001%3Adb8%3A%3A01%5D%3A65535&key=AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA%3D&cipher=chacha20poly1305&token=t&";
    assert (bridge_params_parse (self, q, strlen (q), NULL) == 0);
    assert (streq (bridge_params_target_text (self), "[2001:db8::1]:65535"));
    assert (bridge_params_cipher (self) == BRIDGE_CIPHER_CHACHA20POLY1305);
    assert (streq (bridge_params_token (self), "t"));

    //  Dual stack: up to four candidates, in the client's order, the commas
    //  sent as they are or escaped
    q = "target=%5B2001%3Adb8%3A%3A1%5D%3A4000%2C192.0.2.1:4000,[2001:db8::2]:4001,198.51.100.1:1&key=" K32;
    assert (bridge_params_parse (self, q, strlen (q), "Bearer x") == 0);
    int count = 0;
    const bridge_addr_t *cand = bridge_params_targets (self, &count);
    assert (count == 4 && cand [0].addr.ss_family == AF_INET6 && cand [1].addr.ss_family == AF_INET);
    char text [64];
    bridge_addr_text (&cand [3].addr, text, sizeof text);
    assert (streq (text, "198.51.100.1:1") && streq (bridge_params_target_text (self), "[2001:db8::1]:4000"));
    assert (bridge_params_table [BRIDGE_PARAM_TARGET].value == BRIDGE_TARGETS_MAX * (BRIDGE_ENDPOINT_MAX + 1) - 1);

    q = "peer=0123456789abcdef&&key=" K32 "&cipher=aes256gcm";
    assert (bridge_params_parse (self, q, strlen (q), "bearer x") == 0);
    assert (!bridge_params_has_target (self) && !bridge_params_target (self, NULL));
    assert (streq (bridge_params_peer (self), "0123456789abcdef"));
    assert (bridge_params_cipher (self) == BRIDGE_CIPHER_AES256GCM);

    //  Loopback only when allowed
    q = "target=127.0.0.1:9&key=" K32;
    assert (bridge_params_parse (self, q, strlen (q), "Bearer x") == BRIDGE_CLOSE_BAD_PARAM);
    bridge_params_set_allow_loopback (self, true);
    assert (bridge_params_parse (self, q, strlen (q), "Bearer x") == 0);
    bridge_params_set_allow_loopback (self, false);

    //  Every refusal: its code and its reason, exactly
    struct { const char *query, *auth; int code; const char *reason; } bad [] = {
        { "target=192.0.2.1:70000&key=" K32, "Bearer x", 4400, "target: port 70000 is out of range 1..65535" },
        { "target=192.0.2.1:0&key=" K32, "Bearer x", 4400, "target: port 0 is out of range 1..65535" },
        { "target=192.0.2.1:99999999999&key=" K32, "Bearer x", 4400, "target: port 99999999999 is out of range 1..65535" },
        { "target=192.0.2.1:&key=" K32, "Bearer x", 4400, "target: no port after the address" },
        { "target=192.0.2.1:8a&key=" K32, "Bearer x", 4400, "target: port '8a' is not a number" },
        { "target=192.0.2.1&key=" K32, "Bearer x", 4400, "target: '192.0.2.1' has no port (IPv4:port or [IPv6]:port)" },
        { "target=example.com:80&key=" K32, "Bearer x", 4400,
          "target: 'example.com' is not an address literal: the bridge resolves no names" },
        { "target=1.2.3:80&key=" K32, "Bearer x", 4400, "target: '1.2.3' is not an IPv4 address" },
        { "target=2001:db8::1:80&key=" K32, "Bearer x", 4400, "target: an IPv6 address goes in brackets, [address]:port" },
        { "target=[2001:db8::1]&key=" K32, "Bearer x", 4400, "target: '[2001:db8::1]' is not [IPv6]:port" },
        { "target=[fe80::1%25eth0]:1&key=" K32, "Bearer x", 4400, "target: 'fe80::1%eth0' is not an IPv6 address" },
        { "target=[fe80::1]:1&key=" K32, "Bearer x", 4400, "target: is link-local: it needs an interface the client cannot name" },
        { "target=[::ffff:192.0.2.1]:1&key=" K32, "Bearer x", 4400, "target: embeds an IPv4 address: write it as IPv4:port" },
        { "target=0.0.0.0:1&key=" K32, "Bearer x", 4400, "target: is unspecified (0.0.0.0/8)" },
        { "target=[::]:1&key=" K32, "Bearer x", 4400, "target: is unspecified (::)" },
        { "target=224.0.0.1:1&key=" K32, "Bearer x", 4400, "target: is multicast" },
        { "target=[ff02::1]:1&key=" K32, "Bearer x", 4400, "target: is multicast" },
        { "target=255.255.255.255:1&key=" K32, "Bearer x", 4400, "target: is reserved or broadcast" },
        { "target=[::1]:1&key=" K32, "Bearer x", 4400,
          "target: is a loopback address: the bridge sends to no address of its own host" },
        { "target=192.0.2.1:1&peer=0123456789abcdef&key=" K32, "Bearer x", 4400, "target, peer: give one of them, not both" },
        { "key=" K32, "Bearer x", 4400, "target, peer: one of them is required" },
        { "peer=0123456789abcdeg&key=" K32, "Bearer x", 4400, "peer: not a peer id (16 hex digits)" },
        { "peer=0123456789abcdef0&key=" K32, "Bearer x", 4400, "peer: longer than 16 bytes" },
        { "target=192.0.2.1:1,192.0.2.2:1,192.0.2.3:1,192.0.2.4:1,192.0.2.5:1&key=" K32, "Bearer x", 4400,
          "target: more than 4 candidates" },
        { "target=192.0.2.1:1,&key=" K32, "Bearer x", 4400, "target: candidate 2: empty (candidates are separated by one comma)" },
        { "target=,192.0.2.1:1&key=" K32, "Bearer x", 4400, "target: candidate 1: empty (candidates are separated by one comma)" },
        { "target=192.0.2.1:1,example.com:80&key=" K32, "Bearer x", 4400,
          "target: candidate 2: 'example.com' is not an address literal: the bridge resolves no names" },
        { "target=[2001:db8::1]:1,[::1]:1&key=" K32, "Bearer x", 4400,
          "target: candidate 2: is a loopback address: the bridge sends to no address of its own host" },
        { "target=192.0.2.1:1,192.0.2.1:1&key=" K32, "Bearer x", 4400, "target: candidate 2: the same as candidate 1" },
        { "target=192.0.2.1:1", "Bearer x", 4400, "key: required" },
        { "target=192.0.2.1:1&key=AAAA", "Bearer x", 4400, "key: not the base64 of 32 bytes" },
        { "target=192.0.2.1:1&key=" K32 "&cipher=aes", "Bearer x", 4400,
          "cipher: 'aes' is not one of auto, aes256gcm, chacha20poly1305" },
        { "target=192.0.2.1:1&target=192.0.2.1:1&key=" K32, "Bearer x", 4400, "target: given twice" },
        { "target=192.0.2.1:1&key=" K32 "&port=1", "Bearer x", 4400, "unknown parameter 'port'" },
        { "target=192.0.2.1:1&key=" K32 "&Key=1", "Bearer x", 4400, "unknown parameter 'Key'" },
        { "target&key=" K32, "Bearer x", 4400, "target: empty" },
        { "target=&key=" K32, "Bearer x", 4400, "target: empty" },
        { "target=192.0.2.1:1%&key=" K32, "Bearer x", 4400, "target: bad percent-encoding" },
        { "target=192.0.2.1:1%4&key=" K32, "Bearer x", 4400, "target: bad percent-encoding" },
        { "target=192.0.2.1:1%zz&key=" K32, "Bearer x", 4400, "target: bad percent-encoding" },
        { "target=192.0.2.1:1%00&key=" K32, "Bearer x", 4400, "target: holds a byte that is not printable ASCII" },
        { "target=192.0.2.1:1%20&key=" K32, "Bearer x", 4400, "target: holds a byte that is not printable ASCII" },
        { "tar%00get=1", "Bearer x", 4400, "a parameter's name is not a short printable name" },
        { "target=192.0.2.1:1&key=" K32, NULL, 4401, "missing bearer token" },
        { "target=192.0.2.1:1&key=" K32, "Basic eDp5", 4401, "Authorization: not a Bearer token" },
        { "target=192.0.2.1:1&key=" K32, "Bearer ", 4401, "token: not 1..128 printable characters" },
        { "target=192.0.2.1:1&key=" K32, "Bearer a b", 4401, "token: not 1..128 printable characters" },
        { "target=192.0.2.1:1&key=" K32 "&token=x", "Bearer x", 4401, "token: given both in the header and in the query" },
        { "token=x&token=y", NULL, 4401, "token: given twice" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        int code = bridge_params_parse (self, bad [i].query, strlen (bad [i].query), bad [i].auth);
        if (code != bad [i].code || !streq (bridge_params_reason (self), bad [i].reason)) {
            fprintf (stderr, "bridge_params: '%s': %d '%s', expected %d '%s'\n", bad [i].query, code,
                    bridge_params_reason (self), bad [i].code, bad [i].reason);
            assert (false);
        }
        //  A refused request keeps nothing but its reason
        assert (!bridge_params_token (self) && !bridge_params_has_target (self) && !bridge_params_peer (self));
        assert (sodium_is_zero (bridge_params_key (self), BRIDGE_KEY_SIZE));
        assert (strlen (bridge_params_reason (self)) <= BRIDGE_REASON_MAX);
        assert (bridge_close_reason (code));
    }

    //  Bounded: a query over the limit is refused unread; a long token or a long
    //  unknown name is refused with a reason that still fits a close frame
    char big [BRIDGE_QUERY_MAX + 2];
    memset (big, 'a', sizeof big);
    assert (bridge_params_parse (self, big, sizeof big, "Bearer x") == BRIDGE_CLOSE_BAD_PARAM);
    assert (streq (bridge_params_reason (self), "query: longer than 1024 bytes"));
    char token [8 + BRIDGE_TOKEN_MAX + 2] = "Bearer ";
    memset (token + 7, 't', BRIDGE_TOKEN_MAX + 1);
    token [7 + BRIDGE_TOKEN_MAX + 1] = 0;
    q = "target=192.0.2.1:1&key=" K32;
    assert (bridge_params_parse (self, q, strlen (q), token) == BRIDGE_CLOSE_BAD_TOKEN);
    token [7 + BRIDGE_TOKEN_MAX] = 0;
    assert (bridge_params_parse (self, q, strlen (q), token) == 0);
    assert (bridge_params_parse (self, big, BRIDGE_QUERY_MAX, "Bearer x") == BRIDGE_CLOSE_BAD_PARAM);
    assert (streq (bridge_params_reason (self), "a parameter's name is not a short printable name"));
    //  Not NUL-terminated: only size bytes are read
    q = "target=192.0.2.1:1&key=" K32 "GARBAGE";
    assert (bridge_params_parse (self, q, strlen (q) - 7, "Bearer x") == 0);
    assert (bridge_params_parse (self, NULL, 0, "Bearer x") == BRIDGE_CLOSE_BAD_PARAM);

    //  The endpoint parser alone (bridge_status uses it)
    struct sockaddr_storage addr;
    char err [BRIDGE_REASON_MAX + 1];
    assert (bridge_params_endpoint ("[2001:db8::1]:1", &addr, &len, err, sizeof err) == 0);
    assert (addr.ss_family == AF_INET6 && len == sizeof (struct sockaddr_in6));
    assert (bridge_params_endpoint ("", &addr, &len, err, sizeof err) == -1);

    bridge_params_destroy (&self);
    assert (self == NULL);
    bridge_params_destroy (&self);
    if (verbose)
        printf ("OK\n");
}
