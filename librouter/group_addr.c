/*  group_addr: which addresses may name a group (group_addr.h). One function
    classifies the 16 bytes; parsing and the codec both go through it. */
#include "group_addr.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <string.h>

static const uint8_t s_v4_prefix [12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

bool
group_addr_is_v4 (const uint8_t addr [GROUP_ADDR_SIZE])
{
    return memcmp (addr, s_v4_prefix, sizeof s_v4_prefix) == 0;
}

static uint8_t
s_refuse (group_addr_err_t *why, group_addr_err_t err)
{
    if (why)
        *why = err;
    return 0;
}

uint8_t
group_addr_kind (const uint8_t addr [GROUP_ADDR_SIZE], group_addr_err_t *why)
{
    if (why)
        *why = GROUP_ADDR_OK;
    if (group_addr_is_v4 (addr)) {
        const uint8_t *v4 = addr + 12;
        if (v4 [0] == 0)
            return s_refuse (why, GROUP_ADDR_UNSPECIFIED);
        if (v4 [0] == 127)
            return s_refuse (why, GROUP_ADDR_LOOPBACK);
        if (v4 [0] == 169 && v4 [1] == 254)
            return s_refuse (why, GROUP_ADDR_LINK_LOCAL);
        if (v4 [0] == 255 && v4 [1] == 255 && v4 [2] == 255 && v4 [3] == 255)
            return s_refuse (why, GROUP_ADDR_BROADCAST);
        return (v4 [0] & 0xf0) == 0xe0 ? ROUTE_WIRE_GROUP_MULTICAST : ROUTE_WIRE_GROUP_ANYCAST;
    }
    static const uint8_t zero [GROUP_ADDR_SIZE] = { 0 };
    if (memcmp (addr, zero, 15) == 0 && addr [15] <= 1)
        return s_refuse (why, addr [15] ? GROUP_ADDR_LOOPBACK : GROUP_ADDR_UNSPECIFIED);
    if (addr [0] == 0xfe && (addr [1] & 0xc0) == 0x80)
        return s_refuse (why, GROUP_ADDR_LINK_LOCAL);
    if (addr [0] == 0xff)
        return (addr [1] & 0x0f) == 1 ? s_refuse (why, GROUP_ADDR_NODE_LOCAL) : ROUTE_WIRE_GROUP_MULTICAST;
    return ROUTE_WIRE_GROUP_ANYCAST;
}

void
group_addr_format (const uint8_t addr [GROUP_ADDR_SIZE], char *out, size_t size)
{
    char text [GROUP_ADDR_TEXT];
    const char *ok = group_addr_is_v4 (addr) ? inet_ntop (AF_INET, addr + 12, text, sizeof text)
                                             : inet_ntop (AF_INET6, addr, text, sizeof text);
    snprintf (out, size, "%s", ok ? text : "?");
}

group_addr_err_t
group_addr_parse (const char *text, uint8_t addr [GROUP_ADDR_SIZE], uint8_t *kind, char *err, size_t err_size)
{
    memset (addr, 0, GROUP_ADDR_SIZE);
    if (text && inet_pton (AF_INET, text, addr + 12) == 1)
        memcpy (addr, s_v4_prefix, sizeof s_v4_prefix);
    else
    if (!text || inet_pton (AF_INET6, text, addr) != 1) {
        snprintf (err, err_size, "'%.60s' is not an IPv4 or IPv6 address", text ? text : "");
        return GROUP_ADDR_SYNTAX;
    }
    group_addr_err_t why;
    *kind = group_addr_kind (addr, &why);
    if (!*kind) {
        static const char *reasons [GROUP_ADDR_ERRORS] = {
            "", "",
            "the unspecified address", "a loopback address", "a link-local unicast address", "the broadcast address",
            "an interface-local multicast address"
        };
        char canon [GROUP_ADDR_TEXT];
        group_addr_format (addr, canon, sizeof canon);
        snprintf (err, err_size, "%s is %s: it cannot be a group across the mesh (a multicast address, or a "
                  "unicast address for anycast)", canon, reasons [why]);
    }
    return why;
}

const char *
group_addr_err_name (group_addr_err_t err)
{
    static const char *names [GROUP_ADDR_ERRORS] = {
        "ok", "not an address", "unspecified", "loopback", "link-local", "broadcast", "interface-local"
    };
    return err < GROUP_ADDR_ERRORS ? names [err] : "unknown";
}

//  --------------------------------------------------------------------------
//  Self test: each family's multicast and anycast, each refusal, the text
//  round trip (v4-mapped written as a dotted quad)

void
group_addr_test (bool verbose)
{
    static const struct { const char *text; uint8_t kind; group_addr_err_t err; const char *canon; } cases [] = {
        { "239.1.2.3", ROUTE_WIRE_GROUP_MULTICAST, GROUP_ADDR_OK, "239.1.2.3" },
        { "224.0.0.251", ROUTE_WIRE_GROUP_MULTICAST, GROUP_ADDR_OK, "224.0.0.251" },
        { "10.99.0.1", ROUTE_WIRE_GROUP_ANYCAST, GROUP_ADDR_OK, "10.99.0.1" },
        { "::ffff:10.99.0.1", ROUTE_WIRE_GROUP_ANYCAST, GROUP_ADDR_OK, "10.99.0.1" },
        { "ff3e::1234", ROUTE_WIRE_GROUP_MULTICAST, GROUP_ADDR_OK, "ff3e::1234" },
        { "ff02::fb", ROUTE_WIRE_GROUP_MULTICAST, GROUP_ADDR_OK, "ff02::fb" },
        { "FD00:0::0:1", ROUTE_WIRE_GROUP_ANYCAST, GROUP_ADDR_OK, "fd00::1" },
        { "0.0.0.0", 0, GROUP_ADDR_UNSPECIFIED, NULL },
        { "0.1.2.3", 0, GROUP_ADDR_UNSPECIFIED, NULL },
        { "::", 0, GROUP_ADDR_UNSPECIFIED, NULL },
        { "127.0.0.1", 0, GROUP_ADDR_LOOPBACK, NULL },
        { "::1", 0, GROUP_ADDR_LOOPBACK, NULL },
        { "169.254.7.7", 0, GROUP_ADDR_LINK_LOCAL, NULL },
        { "fe80::1", 0, GROUP_ADDR_LINK_LOCAL, NULL },
        { "febf::1", 0, GROUP_ADDR_LINK_LOCAL, NULL },
        { "255.255.255.255", 0, GROUP_ADDR_BROADCAST, NULL },
        { "ff01::1", 0, GROUP_ADDR_NODE_LOCAL, NULL },
        { "239.1.2", 0, GROUP_ADDR_SYNTAX, NULL },
        { "", 0, GROUP_ADDR_SYNTAX, NULL },
        { "10.0.0.1/24", 0, GROUP_ADDR_SYNTAX, NULL },
        { "host.example", 0, GROUP_ADDR_SYNTAX, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        uint8_t addr [GROUP_ADDR_SIZE], kind = 9;
        char err [200] = "", text [GROUP_ADDR_TEXT];
        group_addr_err_t rc = group_addr_parse (cases [i].text, addr, &kind, err, sizeof err);
        if (verbose || rc != cases [i].err)
            printf ("  %s: %s %s\n", cases [i].text, group_addr_err_name (rc), err);
        assert (rc == cases [i].err);
        if (rc == GROUP_ADDR_OK) {
            assert (kind == cases [i].kind && !*err);
            group_addr_format (addr, text, sizeof text);
            assert (strcmp (text, cases [i].canon) == 0);
            assert (group_addr_is_v4 (addr) == (strchr (text, ':') == NULL));
        }
        else {
            assert (*err && (rc == GROUP_ADDR_SYNTAX || kind == 0));
            if (rc != GROUP_ADDR_SYNTAX)
                assert (strstr (err, "cannot be a group"));
        }
    }
    assert (group_addr_parse (NULL, (uint8_t [16]) { 0 }, (uint8_t [1]) { 0 }, (char [80]) { 0 }, 80) == GROUP_ADDR_SYNTAX);
    assert (strcmp (group_addr_err_name (GROUP_ADDR_ERRORS), "unknown") == 0);
}
