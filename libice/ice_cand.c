/*  ice_cand: strict parsing of remote ICE candidates and credentials (see the
    header for the grammar). */
#include "ice_cand.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define S_TOKENS_MAX  (10 + 2 * ICE_CAND_EXT_MAX + 1)

static const char *s_type_names [] = { "host", "srflx", "prflx", "relay" };

static int
s_fail (char *err, size_t errsize, const char *fmt, ...)
{
    if (err && errsize) {
        va_list args;
        va_start (args, fmt);
        vsnprintf (err, errsize, fmt, args);
        va_end (args);
    }
    return -1;
}

static bool
s_ice_char (char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
        || c == '+' || c == '/';
}

//  Unsigned decimal without sign, leading '+' or spaces; at most max. 0 or -1.
static int
s_number (const char *text, uint64_t max, uint64_t *value)
{
    if (!*text || strlen (text) > 10)
        return -1;
    uint64_t v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (uint64_t) (*p - '0');
    }
    if (v > max)
        return -1;
    *value = v;
    return 0;
}

//  An IP literal (no scope, no name) into its canonical text. The family, or -1.
static int
s_ip (const char *text, char *out)
{
    struct in6_addr a6;
    struct in_addr a4;
    if (strlen (text) >= ICE_CAND_ADDR_MAX)
        return -1;
    if (inet_pton (AF_INET, text, &a4) == 1) {
        inet_ntop (AF_INET, &a4, out, ICE_CAND_ADDR_MAX);
        return AF_INET;
    }
    if (inet_pton (AF_INET6, text, &a6) == 1) {
        inet_ntop (AF_INET6, &a6, out, ICE_CAND_ADDR_MAX);
        return AF_INET6;
    }
    return -1;
}

const char *
ice_cand_type_name (ice_cand_type_t type)
{
    return (unsigned) type < 4 ? s_type_names [type] : NULL;
}

int
ice_cand_parse (const char *text, ice_cand_t *cand, char *err, size_t errsize)
{
    if (!text)
        return s_fail (err, errsize, "candidate: missing");
    size_t len = strnlen (text, ICE_CAND_TEXT_MAX + 1);
    if (len > ICE_CAND_TEXT_MAX)
        return s_fail (err, errsize, "candidate: longer than %d bytes", ICE_CAND_TEXT_MAX);
    //  A line may come with its line break
    while (len && (text [len - 1] == '\n' || text [len - 1] == '\r'))
        len--;
    char line [ICE_CAND_TEXT_MAX + 1];
    memcpy (line, text, len);
    line [len] = 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) line [i] < 0x20 || (unsigned char) line [i] > 0x7e)
            return s_fail (err, errsize, "candidate: byte 0x%02x at offset %zu is not printable ASCII",
                           (unsigned char) line [i], i);
    char *p = line;
    if (strncmp (p, "a=", 2) == 0)
        p += 2;
    if (strncmp (p, "candidate:", 10) != 0)
        return s_fail (err, errsize, "candidate: must start with 'candidate:'");
    p += 10;

    char *tok [S_TOKENS_MAX];
    size_t ntok = 0;
    while (*p) {
        if (*p == ' ') {
            p++;
            continue;
        }
        if (ntok == S_TOKENS_MAX)
            return s_fail (err, errsize, "candidate: more than %d fields", S_TOKENS_MAX);
        tok [ntok++] = p;
        while (*p && *p != ' ')
            p++;
        if (*p)
            *p++ = 0;
    }
    if (ntok < 8)
        return s_fail (err, errsize, "candidate: %zu fields, need at least 8 "
                       "(foundation component transport priority address port typ type)", ntok);
    memset (cand, 0, sizeof *cand);

    size_t flen = strlen (tok [0]);
    if (flen == 0 || flen > ICE_CAND_FOUNDATION_MAX)
        return s_fail (err, errsize, "candidate: foundation must have 1-%d characters", ICE_CAND_FOUNDATION_MAX);
    for (size_t i = 0; i < flen; i++)
        if (!s_ice_char (tok [0][i]))
            return s_fail (err, errsize, "candidate: invalid character '%c' in foundation", tok [0][i]);
    memcpy (cand->foundation, tok [0], flen + 1);

    uint64_t v;
    if (s_number (tok [1], 256, &v) || v == 0)
        return s_fail (err, errsize, "candidate: component '%.16s' is not a number 1-256", tok [1]);
    cand->component = (unsigned) v;
    if (strcasecmp (tok [2], "UDP") != 0)
        return s_fail (err, errsize, "candidate: transport '%.16s' not supported (UDP only)", tok [2]);
    if (s_number (tok [3], 0x7fffffff, &v) || v == 0)
        return s_fail (err, errsize, "candidate: priority '%.16s' is not a number 1-2147483647", tok [3]);
    cand->priority = (uint32_t) v;
    if (strstr (tok [4], ".local"))
        return s_fail (err, errsize, "candidate: mDNS name '%.64s' not supported (IP literals only)", tok [4]);
    cand->family = s_ip (tok [4], cand->addr);
    if (cand->family < 0)
        return s_fail (err, errsize, "candidate: address '%.64s' is not an IPv4 or IPv6 literal", tok [4]);
    if (s_number (tok [5], 65535, &v) || v == 0)
        return s_fail (err, errsize, "candidate: port '%.16s' is not a number 1-65535", tok [5]);
    cand->port = (uint16_t) v;
    if (strcmp (tok [6], "typ") != 0)
        return s_fail (err, errsize, "candidate: expected 'typ' after the port, got '%.16s'", tok [6]);
    int type = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp (tok [7], s_type_names [i]) == 0)
            type = i;
    if (type < 0)
        return s_fail (err, errsize, "candidate: unknown type '%.16s' (host, srflx, prflx, relay)", tok [7]);
    cand->type = (ice_cand_type_t) type;

    size_t i = 8;
    if (i < ntok && strcmp (tok [i], "raddr") == 0) {
        if (i + 3 >= ntok)
            return s_fail (err, errsize, "candidate: 'raddr' needs an address, 'rport' and a port");
        if (s_ip (tok [i + 1], cand->raddr) < 0)
            return s_fail (err, errsize, "candidate: related address '%.64s' is not an IP literal", tok [i + 1]);
        if (strcmp (tok [i + 2], "rport") != 0)
            return s_fail (err, errsize, "candidate: expected 'rport' after the related address");
        if (s_number (tok [i + 3], 65535, &v))
            return s_fail (err, errsize, "candidate: related port '%.16s' is not a number 0-65535", tok [i + 3]);
        cand->rport = (uint16_t) v;
        cand->has_related = true;
        i += 4;
    }
    if ((ntok - i) % 2)
        return s_fail (err, errsize, "candidate: extension '%.32s' has no value", tok [ntok - 1]);
    if ((ntok - i) / 2 > ICE_CAND_EXT_MAX)
        return s_fail (err, errsize, "candidate: more than %d extensions", ICE_CAND_EXT_MAX);
    for (; i < ntok; i += 2) {
        const char *name = tok [i];
        if (strcmp (name, "raddr") == 0 || strcmp (name, "rport") == 0 || strcmp (name, "typ") == 0)
            return s_fail (err, errsize, "candidate: '%s' out of place", name);
        if (strlen (name) > 32 || strlen (tok [i + 1]) > 64)
            return s_fail (err, errsize, "candidate: extension '%.32s' too long", name);
        for (const char *c = name; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-'))
                return s_fail (err, errsize, "candidate: invalid extension name '%.32s'", name);
    }
    return 0;
}

int
ice_cand_format (const ice_cand_t *cand, char *buf, size_t size)
{
    const char *type = ice_cand_type_name (cand->type);
    assert (type);
    int n;
    if (cand->has_related)
        n = snprintf (buf, size, "candidate:%s %u UDP %u %s %u typ %s raddr %s rport %u",
                      cand->foundation, cand->component, cand->priority, cand->addr,
                      cand->port, type, cand->raddr, cand->rport);
    else
        n = snprintf (buf, size, "candidate:%s %u UDP %u %s %u typ %s",
                      cand->foundation, cand->component, cand->priority, cand->addr, cand->port, type);
    return n < 0 || (size_t) n >= size ? -1 : n;
}

static int
s_check_cred (const char *what, const char *value, size_t min, char *err, size_t errsize)
{
    if (!value)
        return s_fail (err, errsize, "%s: missing", what);
    size_t len = strnlen (value, ICE_CRED_MAX + 1);
    if (len < min || len > ICE_CRED_MAX)
        return s_fail (err, errsize, "%s: %s%zu characters, need %zu-%d",
                       what, len > ICE_CRED_MAX ? "more than " : "", len > ICE_CRED_MAX ? (size_t) ICE_CRED_MAX : len,
                       min, ICE_CRED_MAX);
    for (size_t i = 0; i < len; i++)
        if (!s_ice_char (value [i]))
            return s_fail (err, errsize, "%s: invalid character 0x%02x at offset %zu (A-Z a-z 0-9 + / only)",
                           what, (unsigned char) value [i], i);
    return 0;
}

int
ice_cand_check_credentials (const char *ufrag, const char *pwd, char *err, size_t errsize)
{
    if (s_check_cred ("ufrag", ufrag, ICE_UFRAG_MIN, err, errsize))
        return -1;
    return s_check_cred ("pwd", pwd, ICE_PWD_MIN, err, errsize);
}

int
ice_cand_parse_addr (const char *text, char *ip, uint16_t *port, int *family, char *err, size_t errsize)
{
    if (!text || !*text)
        return s_fail (err, errsize, "address: empty");
    char host [ICE_CAND_ADDR_MAX + 2];
    const char *colon;
    size_t hlen;
    if (text [0] == '[') {
        const char *close = strchr (text, ']');
        if (!close)
            return s_fail (err, errsize, "address: missing ']' after IPv6 address");
        if (close [1] != ':')
            return s_fail (err, errsize, "address: missing ':port' after ']'");
        hlen = (size_t) (close - text - 1);
        if (hlen >= sizeof host)
            return s_fail (err, errsize, "address: too long");
        memcpy (host, text + 1, hlen);
        host [hlen] = 0;
        colon = close + 1;
        if (!strchr (host, ':'))
            return s_fail (err, errsize, "address: brackets are for IPv6 addresses only");
    }
    else {
        colon = strrchr (text, ':');
        if (!colon)
            return s_fail (err, errsize, "address: missing ':port' in '%.64s'", text);
        hlen = (size_t) (colon - text);
        if (memchr (text, ':', hlen))
            return s_fail (err, errsize, "address: an IPv6 address needs brackets, e.g. [2001:db8::1]:3478");
        if (hlen >= sizeof host)
            return s_fail (err, errsize, "address: too long");
        memcpy (host, text, hlen);
        host [hlen] = 0;
    }
    uint64_t v;
    if (s_number (colon + 1, 65535, &v) || v == 0)
        return s_fail (err, errsize, "address: port '%.16s' is not a number 1-65535", colon + 1);
    int fam = s_ip (host, ip);
    if (fam < 0)
        return s_fail (err, errsize, "address: '%.64s' is not an IPv4 or IPv6 literal", host);
    if (fam == AF_INET && text [0] == '[')
        return s_fail (err, errsize, "address: brackets are for IPv6 addresses only");
    *port = (uint16_t) v;
    if (family)
        *family = fam;
    return 0;
}

void
ice_cand_test (bool verbose)
{
    char err [160], buf [ICE_CAND_TEXT_MAX + 1];
    ice_cand_t c, c2;
    //  What libnice writes, with and without "a=", with extensions and CRLF
    assert (ice_cand_parse ("a=candidate:1 1 UDP 2013266431 192.0.2.10 50000 typ host", &c, err, sizeof err) == 0);
    assert (c.component == 1 && c.priority == 2013266431u && c.port == 50000 && c.type == ICE_CAND_HOST);
    assert (strcmp (c.addr, "192.0.2.10") == 0 && c.family == AF_INET && !c.has_related);
    assert (ice_cand_parse ("candidate:2 1 udp 1677721855 203.0.113.7 3478 typ srflx raddr 10.0.0.2 rport 50000"
                            " generation 0 network-id 1\r\n", &c, err, sizeof err) == 0);
    assert (c.type == ICE_CAND_SRFLX && c.has_related && c.rport == 50000 && strcmp (c.raddr, "10.0.0.2") == 0);
    assert (ice_cand_format (&c, buf, sizeof buf) > 0);
    assert (strcmp (buf, "candidate:2 1 UDP 1677721855 203.0.113.7 3478 typ srflx raddr 10.0.0.2 rport 50000") == 0);
    assert (ice_cand_parse (buf, &c2, err, sizeof err) == 0 && memcmp (&c, &c2, sizeof c) == 0);
    assert (ice_cand_format (&c, buf, 20) == -1);
    //  IPv6, canonicalised
    assert (ice_cand_parse ("candidate:a+/b 1 UDP 16777215 2001:DB8:0:0::1 9 typ relay raddr :: rport 0",
                            &c, err, sizeof err) == 0);
    assert (c.family == AF_INET6 && strcmp (c.addr, "2001:db8::1") == 0 && c.type == ICE_CAND_RELAY);

    //  Every mistake has its message
    struct { const char *text, *msg; } bad [] = {
        { "", "must start with 'candidate:'" },
        { "a=candidat:1 1 UDP 1 192.0.2.1 1 typ host", "must start with" },
        { "candidate:1 1 UDP 1 192.0.2.1 1 typ", "7 fields, need at least 8" },
        { "candidate:1 1 TCP 1 192.0.2.1 1 typ host", "transport 'TCP' not supported" },
        { "candidate:1 0 UDP 1 192.0.2.1 1 typ host", "component '0'" },
        { "candidate:1 257 UDP 1 192.0.2.1 1 typ host", "component '257'" },
        { "candidate:1 1 UDP 2147483648 192.0.2.1 1 typ host", "priority '2147483648'" },
        { "candidate:1 1 UDP -5 192.0.2.1 1 typ host", "priority '-5'" },
        { "candidate:1 1 UDP 99999999999999999999 192.0.2.1 1 typ host", "priority" },
        { "candidate:1 1 UDP 1 192.0.2.1 0 typ host", "port '0'" },
        { "candidate:1 1 UDP 1 192.0.2.1 65536 typ host", "port '65536'" },
        { "candidate:1 1 UDP 1 192.0.2.300 1 typ host", "address '192.0.2.300'" },
        { "candidate:1 1 UDP 1 host.example 1 typ host", "not an IPv4 or IPv6 literal" },
        { "candidate:1 1 UDP 1 1f0e6a9c-aaaa.local 1 typ host", "mDNS name" },
        { "candidate:1 1 UDP 1 fe80::1%eth0 1 typ host", "not an IPv4 or IPv6 literal" },
        { "candidate:1 1 UDP 1 192.0.2.1 1 type host", "expected 'typ'" },
        { "candidate:1 1 UDP 1 192.0.2.1 1 typ bogus", "unknown type 'bogus'" },
        { "candidate:1 1 UDP 1 192.0.2.1 1 typ srflx raddr 10.0.0.1", "'raddr' needs an address" },
        { "candidate:1 1 UDP 1 192.0.2.1 1 typ srflx raddr x rport 1", "related address 'x'" },
        { "candidate:1 1 UDP 1 192.0.2.1 1 typ srflx raddr 10.0.0.1 port 1", "expected 'rport'" },
        { "candidate:1 1 UDP 1 192.0.2.1 1 typ srflx raddr 10.0.0.1 rport 70000", "related port '70000'" },
        { "candidate:1 1 UDP 1 192.0.2.1 1 typ host generation", "extension 'generation' has no value" },
        { "candidate:1 1 UDP 1 192.0.2.1 1 typ host gen=x 0", "invalid extension name" },
        { "candidate:1 1 UDP 1 192.0.2.1 1 typ host rport 5", "'rport' out of place" },
        { "candidate:f!o 1 UDP 1 192.0.2.1 1 typ host", "invalid character '!' in foundation" },
        { "candidate:123456789012345678901234567890123 1 UDP 1 192.0.2.1 1 typ host", "foundation must have" },
        { "candidate:1 1 UDP 1 192.0.2.1 1 typ host\tx", "byte 0x09 at offset" },
        { "candidate:1 1 UDP 1 192.0.2.1 1 typ host \xc3\xa9", "byte 0xc3" },
        { "candidate:1 1 UDP 1 192.0.2.1 1 typ host a 1 b 2 c 3 d 4 e 5 f 6 g 7 h 8 i 9", "more than" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        err [0] = 0;
        int rc = ice_cand_parse (bad [i].text, &c, err, sizeof err);
        if (verbose || rc == 0 || !strstr (err, bad [i].msg))
            printf ("  '%s' -> %d '%s' (want '%s')\n", bad [i].text, rc, err, bad [i].msg);
        assert (rc == -1 && strstr (err, bad [i].msg));
    }
    char longline [ICE_CAND_TEXT_MAX + 10];
    memset (longline, 'x', sizeof longline - 1);
    longline [sizeof longline - 1] = 0;
    assert (ice_cand_parse (longline, &c, err, sizeof err) == -1 && strstr (err, "longer than"));
    assert (ice_cand_parse (NULL, &c, err, sizeof err) == -1);

    //  Credentials
    assert (ice_cand_check_credentials ("abcd", "0123456789abcdefghij+/", err, sizeof err) == 0);
    assert (ice_cand_check_credentials ("abc", "0123456789abcdefghij+/", err, sizeof err) == -1
            && strstr (err, "ufrag: 3 characters, need 4-256"));
    assert (ice_cand_check_credentials ("abcd", "short", err, sizeof err) == -1 && strstr (err, "pwd: 5 characters"));
    assert (ice_cand_check_credentials ("ab d", "0123456789abcdefghij+/", err, sizeof err) == -1
            && strstr (err, "ufrag: invalid character 0x20 at offset 2"));
    assert (ice_cand_check_credentials ("abcd", NULL, err, sizeof err) == -1 && strstr (err, "pwd: missing"));
    char longcred [300];
    memset (longcred, 'a', sizeof longcred - 1);
    longcred [sizeof longcred - 1] = 0;
    assert (ice_cand_check_credentials (longcred, longcred, err, sizeof err) == -1 && strstr (err, "more than 256"));

    //  Addresses
    char ip [ICE_CAND_ADDR_MAX];
    uint16_t port;
    int family;
    assert (ice_cand_parse_addr ("203.0.113.5:3478", ip, &port, &family, err, sizeof err) == 0);
    assert (strcmp (ip, "203.0.113.5") == 0 && port == 3478 && family == AF_INET);
    assert (ice_cand_parse_addr ("[2001:db8::0:1]:1", ip, &port, &family, err, sizeof err) == 0);
    assert (strcmp (ip, "2001:db8::1") == 0 && port == 1 && family == AF_INET6);
    const char *bad_addr [][2] = {
        { "", "empty" }, { "203.0.113.5", "missing ':port'" }, { "2001:db8::1:5", "needs brackets" },
        { "[2001:db8::1:5", "missing ']'" }, { "[2001:db8::1]5", "missing ':port' after ']'" },
        { "[192.0.2.1]:5", "brackets are for IPv6" }, { "192.0.2.1:0", "port '0'" },
        { "host.example:5", "not an IPv4 or IPv6 literal" }, { "192.0.2.1:5x", "port '5x'" },
    };
    for (size_t i = 0; i < sizeof bad_addr / sizeof bad_addr [0]; i++) {
        int rc = ice_cand_parse_addr (bad_addr [i][0], ip, &port, &family, err, sizeof err);
        if (verbose || rc == 0 || !strstr (err, bad_addr [i][1]))
            printf ("  '%s' -> %d '%s'\n", bad_addr [i][0], rc, err);
        assert (rc == -1 && strstr (err, bad_addr [i][1]));
    }
}
