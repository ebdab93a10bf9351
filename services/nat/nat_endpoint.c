/*  nat_endpoint: parse, format and compare configured endpoints. */
#include "nat_endpoint.h"
#include "bus_log.h"

#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

//  Port text to number; min is 1 for peers, 0 for a bind address.
static int
s_parse_port (const char *text, unsigned min, uint16_t *port, char *err, size_t err_size)
{
    if (!*text)
        return bus_errf (err, err_size, "missing port after ':'");
    unsigned long value = 0;
    for (const char *p = text; *p; p++) {
        if (!isdigit ((unsigned char) *p))
            return bus_errf (err, err_size, "port '%.16s' is not a number", text);
        value = value * 10 + (unsigned long) (*p - '0');
        if (value > 65535)
            return bus_errf (err, err_size, "port %.16s out of range %u-65535", text, min);
    }
    if (value < min)
        return bus_errf (err, err_size, "port %lu out of range %u-65535", value, min);
    *port = (uint16_t) value;
    return 0;
}

//  A DNS name as getaddrinfo will be given it: letters, digits, '-', '_' and dots
//  between labels of 1-63 characters, 253 at most, one trailing dot allowed.
static int
s_check_name (const char *host, char *err, size_t err_size)
{
    size_t len = strlen (host);
    if (len > 253)
        return bus_errf (err, err_size, "host name longer than 253 characters");
    bool numeric = true;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) host [i];
        if (c == '.') {
            if (label == 0 && !(i == len - 1 && i > 0))
                return bus_errf (err, err_size, "empty label in host name '%s'", host);
            label = 0;
            continue;
        }
        if (!isalnum (c) && c != '-' && c != '_')
            return bus_errf (err, err_size, "invalid character '%c' in host name '%.64s'",
                           isprint (c) ? c : '?', host);
        if (!isdigit (c))
            numeric = false;
        if (++label > 63)
            return bus_errf (err, err_size, "label longer than 63 characters in host name");
    }
    //  "1.2.3" or "256.0.0.1" would reach getaddrinfo as a surprising number
    if (numeric)
        return bus_errf (err, err_size, "'%s' is not a valid IPv4 address", host);
    return 0;
}

//  Splits "host:port" / "[v6]:port" into host (no brackets) and port text.
static int
s_split (const char *text, char *host, size_t host_size, const char **port_text,
         bool *bracketed, char *err, size_t err_size)
{
    if (!text || !*text)
        return bus_errf (err, err_size, "empty endpoint");
    *bracketed = false;
    const char *host_start, *host_end, *colon;
    if (*text == '[') {
        *bracketed = true;
        host_start = text + 1;
        host_end = strchr (host_start, ']');
        if (!host_end)
            return bus_errf (err, err_size, "missing ']' after IPv6 address in '%.64s'", text);
        if (host_end [1] != ':')
            return bus_errf (err, err_size, "missing ':port' after ']' in '%.64s'", text);
        colon = host_end + 1;
    }
    else {
        colon = strrchr (text, ':');
        if (!colon)
            return bus_errf (err, err_size, "missing ':port' in '%.64s'", text);
        host_start = text;
        host_end = colon;
        if (memchr (text, ':', (size_t) (colon - text)))
            return bus_errf (err, err_size,
                "an IPv6 address needs brackets, e.g. [2001:db8::1]:51820 (got '%.64s')", text);
        if (memchr (text, ']', (size_t) (colon - text)))
            return bus_errf (err, err_size, "unexpected ']' in '%.64s'", text);
    }
    size_t len = (size_t) (host_end - host_start);
    if (len == 0)
        return bus_errf (err, err_size, "empty host in '%.64s'", text);
    if (len >= host_size)
        return bus_errf (err, err_size, "host name longer than %zu characters", host_size - 1);
    memcpy (host, host_start, len);
    host [len] = 0;
    *port_text = colon + 1;
    return 0;
}

int
nat_endpoint_parse (nat_endpoint_t *self, const char *text, char *err, size_t err_size)
{
    memset (self, 0, sizeof *self);
    const char *port_text;
    bool bracketed;
    if (s_split (text, self->host, sizeof self->host, &port_text, &bracketed, err, err_size))
        return -1;
    if (s_parse_port (port_text, 1, &self->port, err, err_size))
        return -1;
    if (bracketed) {
        if (!strchr (self->host, ':') || nat_addr_set_ip (&self->addr, self->host, self->port))
            return bus_errf (err, err_size, "'%.64s' inside brackets is not an IPv6 address",
                           self->host);
        return 0;
    }
    if (nat_addr_set_ip (&self->addr, self->host, self->port) == 0)
        return 0;
    if (s_check_name (self->host, err, err_size))
        return -1;
    self->is_name = true;
    return 0;
}

int
nat_endpoint_parse_bind (nat_addr_t *addr, const char *text, char *err, size_t err_size)
{
    char host [NAT_HOST_MAX];
    const char *port_text;
    bool bracketed;
    nat_addr_clear (addr);
    if (s_split (text, host, sizeof host, &port_text, &bracketed, err, err_size))
        return -1;
    uint16_t port;
    if (s_parse_port (port_text, 0, &port, err, err_size))
        return -1;
    if (strcmp (host, "*") == 0)
        strcpy (host, "::");
    if (nat_addr_set_ip (addr, host, port))
        return bus_errf (err, err_size, "bind address '%.64s' must be a numeric IP address", host);
    return 0;
}

char *
nat_endpoint_format (const nat_endpoint_t *self, char *buf, size_t size)
{
    if (self->is_name)
        snprintf (buf, size, "%s:%u", self->host, self->port);
    else
        nat_addr_format (&self->addr, buf, size);
    return buf;
}

static size_t
s_name_len (const char *host)
{
    size_t len = strlen (host);
    return len && host [len - 1] == '.' ? len - 1 : len;
}

bool
nat_endpoint_eq (const nat_endpoint_t *a, const nat_endpoint_t *b)
{
    if (a->is_name != b->is_name || a->port != b->port)
        return false;
    if (!a->is_name)
        return nat_addr_eq (&a->addr, &b->addr);
    size_t len = s_name_len (a->host);
    return len == s_name_len (b->host) && strncasecmp (a->host, b->host, len) == 0;
}

void
nat_endpoint_test (bool verbose)
{
    static const struct {
        const char *text;
        const char *formatted;   //  NULL: parse must fail
        bool is_name;
        const char *error;       //  a piece of the expected message
    } cases [] = {
        { "192.0.2.1:51820", "192.0.2.1:51820", false, NULL },
        { "[2001:db8::1]:51820", "[2001:db8::1]:51820", false, NULL },
        { "[::ffff:192.0.2.7]:1", "192.0.2.7:1", false, NULL },
        { "host.example:51820", "host.example:51820", true, NULL },
        { "host.example.:65535", "host.example.:65535", true, NULL },
        { "localhost:1", "localhost:1", true, NULL },
        { "a_b-c.example:9", "a_b-c.example:9", true, NULL },
        { "", NULL, false, "empty endpoint" },
        { ":51820", NULL, false, "empty host" },
        { "[]:51820", NULL, false, "empty host" },
        { "host.example", NULL, false, "missing ':port'" },
        { "host.example:", NULL, false, "missing port" },
        { "host.example:0", NULL, false, "out of range" },
        { "host.example:65536", NULL, false, "out of range" },
        { "host.example:99999999999999999999", NULL, false, "out of range" },
        { "host.example:-1", NULL, false, "not a number" },
        { "host.example:80x", NULL, false, "not a number" },
        { "[2001:db8::1:51820", NULL, false, "missing ']'" },
        { "[2001:db8::1]51820", NULL, false, "missing ':port' after ']'" },
        { "[2001:db8::1]", NULL, false, "missing ':port' after ']'" },
        { "2001:db8::1:51820", NULL, false, "needs brackets" },
        { "[192.0.2.1]:5", NULL, false, "not an IPv6 address" },
        { "[host.example]:5", NULL, false, "not an IPv6 address" },
        { "1.2.3:5", NULL, false, "not a valid IPv4" },
        { "256.1.1.1:5", NULL, false, "not a valid IPv4" },
        { "bad host:5", NULL, false, "invalid character" },
        { "a..b:5", NULL, false, "empty label" },
        { ".a:5", NULL, false, "empty label" },
        { "a]:5", NULL, false, "unexpected ']'" },
    };
    char err [160], buf [NAT_ENDPOINT_TEXT_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        nat_endpoint_t ep;
        err [0] = 0;
        int rc = nat_endpoint_parse (&ep, cases [i].text, err, sizeof err);
        if (verbose)
            printf ("  '%s' -> %s\n", cases [i].text, rc ? err : nat_endpoint_format (&ep, buf, sizeof buf));
        if (cases [i].formatted) {
            assert (rc == 0);
            assert (ep.is_name == cases [i].is_name);
            assert (strcmp (nat_endpoint_format (&ep, buf, sizeof buf), cases [i].formatted) == 0);
            assert (ep.is_name || nat_addr_is_set (&ep.addr));
        }
        else {
            assert (rc == -1);
            assert (strstr (err, cases [i].error));
        }
    }
    //  Over-long names and labels
    char name [300];
    memset (name, 'a', 280);
    strcpy (name + 280, ":1");
    assert (nat_endpoint_parse (&(nat_endpoint_t) {0}, name, err, sizeof err) == -1);
    assert (strstr (err, "longer than"));
    memset (name, 'a', 64);
    strcpy (name + 64, ".example:1");
    assert (nat_endpoint_parse (&(nat_endpoint_t) {0}, name, err, sizeof err) == -1);
    assert (strstr (err, "label longer"));
    assert (nat_endpoint_parse (&(nat_endpoint_t) {0}, NULL, err, sizeof err) == -1);

    //  Comparison
    nat_endpoint_t a, b;
    assert (nat_endpoint_parse (&a, "Host.Example:5", err, sizeof err) == 0);
    assert (nat_endpoint_parse (&b, "host.example.:5", err, sizeof err) == 0);
    assert (nat_endpoint_eq (&a, &b));
    assert (nat_endpoint_parse (&b, "host.example:6", err, sizeof err) == 0);
    assert (!nat_endpoint_eq (&a, &b));
    assert (nat_endpoint_parse (&a, "192.0.2.1:5", err, sizeof err) == 0);
    assert (nat_endpoint_parse (&b, "[::ffff:192.0.2.1]:5", err, sizeof err) == 0);
    assert (nat_endpoint_eq (&a, &b));
    assert (nat_endpoint_parse (&b, "host.example:5", err, sizeof err) == 0);
    assert (!nat_endpoint_eq (&a, &b));

    //  Bind addresses: port 0 allowed, names refused
    nat_addr_t bind;
    assert (nat_endpoint_parse_bind (&bind, "0.0.0.0:0", err, sizeof err) == 0);
    assert (nat_addr_family (&bind) == AF_INET && nat_addr_port (&bind) == 0);
    assert (nat_endpoint_parse_bind (&bind, "*:51820", err, sizeof err) == 0);
    assert (nat_addr_family (&bind) == AF_INET6 && nat_addr_port (&bind) == 51820);
    assert (nat_endpoint_parse_bind (&bind, "[::1]:0", err, sizeof err) == 0);
    assert (nat_endpoint_parse_bind (&bind, "localhost:0", err, sizeof err) == -1);
    assert (strstr (err, "numeric"));
    assert (nat_endpoint_parse_bind (&bind, "0.0.0.0:65536", err, sizeof err) == -1);
}
