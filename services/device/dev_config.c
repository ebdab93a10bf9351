/*  dev_config: validation of the device group's values (see dev_config.h). */
#include "dev_config.h"
#include "dev_mac.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void
s_err (char *err, size_t errsize, const char *text)
{
    if (err && errsize)
        snprintf (err, errsize, "%s", text);
}

void
dev_config_init (dev_config_t *self)
{
    memset (self, 0, sizeof *self);
    self->type = DEV_TYPE_TUN;
    snprintf (self->name, sizeof self->name, "%s", DEV_NAME_DEFAULT);
    self->mtu = DEV_MTU_DEFAULT;
}

int
dev_config_set_type (dev_config_t *self, const char *text, char *err, size_t errsize)
{
    if (text && strcmp (text, "tun") == 0)
        self->type = DEV_TYPE_TUN;
    else
    if (text && strcmp (text, "tap") == 0)
        self->type = DEV_TYPE_TAP;
    else {
        if (err && errsize)
            snprintf (err, errsize, "type: expected \"tun\" or \"tap\", got \"%s\"", text ? text : "(null)");
        return -1;
    }
    return 0;
}

//  Interface names end up in /sys/class/net/<name> and in `ip` command lines,
//  so we accept the portable set the kernel's dev_valid_name() allows, minus
//  characters that confuse shells and tools (kernel forbids '/', ':', spaces).
int
dev_config_set_name (dev_config_t *self, const char *text, char *err, size_t errsize)
{
    if (!text || !*text) {
        s_err (err, errsize, "name: expected an interface name, got an empty string");
        return -1;
    }
    size_t len = strlen (text);
    if (len >= IFNAMSIZ) {
        if (err && errsize)
            snprintf (err, errsize, "name: \"%.40s\" is %zu characters long, at most %d allowed",
                      text, len, IFNAMSIZ - 1);
        return -1;
    }
    if (strcmp (text, ".") == 0 || strcmp (text, "..") == 0) {
        s_err (err, errsize, "name: \".\" and \"..\" are not interface names");
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) text [i];
        if (!(isalnum (c) || c == '-' || c == '_' || c == '.')) {
            if (err && errsize)
                snprintf (err, errsize, "name: character '%c' at position %zu is not allowed "
                          "(use letters, digits, '-', '_' and '.')", isprint (c) ? c : '?', i + 1);
            return -1;
        }
    }
    snprintf (self->name, sizeof self->name, "%s", text);
    return 0;
}

int
dev_config_set_mtu (dev_config_t *self, long mtu, char *err, size_t errsize)
{
    if (mtu < DEV_MTU_MIN || mtu > DEV_MTU_MAX) {
        if (err && errsize)
            snprintf (err, errsize, "mtu: expected %d..%d, got %ld", DEV_MTU_MIN, DEV_MTU_MAX, mtu);
        return -1;
    }
    self->mtu = (int) mtu;
    return 0;
}

int
dev_addr_parse (const char *text, dev_addr_t *addr, char *err, size_t errsize)
{
    if (!text || !*text) {
        s_err (err, errsize, "address: expected an address with prefix such as 10.100.0.1/16, got an empty string");
        return -1;
    }
    char host [64];
    const char *slash = strchr (text, '/');
    size_t hlen = slash ? (size_t) (slash - text) : strlen (text);
    if (hlen == 0 || hlen >= sizeof host) {
        if (err && errsize)
            snprintf (err, errsize, "address: \"%.60s\" is not an IPv4 or IPv6 address", text);
        return -1;
    }
    memcpy (host, text, hlen);
    host [hlen] = 0;
    dev_addr_t a;
    memset (&a, 0, sizeof a);
    int max;
    if (inet_pton (AF_INET, host, a.addr) == 1) {
        a.family = AF_INET;
        max = 32;
    }
    else
    if (inet_pton (AF_INET6, host, a.addr) == 1) {
        a.family = AF_INET6;
        max = 128;
    }
    else {
        if (err && errsize)
            snprintf (err, errsize, "address: \"%s\" is not an IPv4 or IPv6 address", host);
        return -1;
    }
    a.prefix = max;
    if (slash) {
        const char *p = slash + 1;
        //  Digits only: strtol would accept " 16", "+16" and "16abc"
        bool digits = *p && strlen (p) <= 3;
        for (const char *q = p; *q; q++)
            if (!isdigit ((unsigned char) *q))
                digits = false;
        long prefix = digits ? strtol (p, NULL, 10) : -1;
        if (prefix < 0 || prefix > max) {
            if (err && errsize)
                snprintf (err, errsize, "address: prefix \"/%.10s\" must be a number from 0 to %d", p, max);
            return -1;
        }
        a.prefix = (int) prefix;
    }
    *addr = a;
    return 0;
}

void
dev_addr_format (const dev_addr_t *addr, char *text, size_t size)
{
    char host [INET6_ADDRSTRLEN] = "?";
    inet_ntop (addr->family, addr->addr, host, sizeof host);
    snprintf (text, size, "%s/%d", host, addr->prefix);
}

bool
dev_addr_match (const dev_addr_t *net, int family, const uint8_t *addr)
{
    if (net->family != family)
        return false;
    int bytes = net->prefix / 8, bits = net->prefix % 8;
    if (memcmp (net->addr, addr, (size_t) bytes))
        return false;
    if (bits) {
        uint8_t mask = (uint8_t) (0xff << (8 - bits));
        if ((net->addr [bytes] & mask) != (addr [bytes] & mask))
            return false;
    }
    return true;
}

int
dev_config_set_address (dev_config_t *self, const char *text, char *err, size_t errsize)
{
    dev_addr_t a;
    if (dev_addr_parse (text, &a, err, errsize))
        return -1;
    //  The device's own address needs room for peers in its subnet
    if ((a.family == AF_INET && a.prefix > 30) || (a.family == AF_INET6 && a.prefix > 126)) {
        if (err && errsize)
            snprintf (err, errsize, "address: prefix /%d leaves no room for peers "
                      "(use the network's prefix, e.g. /16 or /64)", a.prefix);
        return -1;
    }
    if (a.family == AF_INET) {
        uint32_t ip = ntohl (*(uint32_t *) a.addr);
        uint32_t mask = a.prefix ? ~0u << (32 - a.prefix) : 0;
        if ((ip & ~mask) == 0 || (ip & ~mask) == ~mask) {
            if (err && errsize)
                snprintf (err, errsize, "address: %s is the %s address of its subnet, not a host",
                          text, (ip & ~mask) == 0 ? "network" : "broadcast");
            return -1;
        }
        if ((ip >> 28) >= 14 || (ip >> 24) == 127 || (ip >> 24) == 0) {
            if (err && errsize)
                snprintf (err, errsize, "address: %s is a multicast, reserved or loopback address", text);
            return -1;
        }
    }
    else
    if (a.addr [0] == 0xff || memcmp (a.addr, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 15) == 0) {
        if (err && errsize)
            snprintf (err, errsize, "address: %s is a multicast, unspecified or loopback address", text);
        return -1;
    }
    self->address = a;
    self->has_address = true;
    return 0;
}

int
dev_config_set_mac (dev_config_t *self, const char *text, char *err, size_t errsize)
{
    if (!text || !*text) {
        self->mac_set = false;
        return 0;
    }
    uint8_t mac [6];
    char why [100];
    if (dev_mac_parse (text, mac, why, sizeof why)) {
        if (err && errsize)
            snprintf (err, errsize, "mac_address: %s", why);
        return -1;
    }
    if (mac [0] & 1) {
        if (err && errsize)
            snprintf (err, errsize, "mac_address: %s is a multicast address (lowest bit of the first byte set)", text);
        return -1;
    }
    if (memcmp (mac, "\0\0\0\0\0\0", 6) == 0) {
        s_err (err, errsize, "mac_address: 00:00:00:00:00:00 is not a usable address");
        return -1;
    }
    memcpy (self->mac, mac, 6);
    self->mac_set = true;
    return 0;
}

int
dev_config_finish (dev_config_t *self, const uint8_t node_key [32], char *err, size_t errsize)
{
    if (self->has_address && self->address.family == AF_INET6 && self->mtu < DEV_MTU_MIN_IPV6) {
        if (err && errsize)
            snprintf (err, errsize, "mtu: %d is below %d, the minimum for an IPv6 address", self->mtu, DEV_MTU_MIN_IPV6);
        return -1;
    }
    if (self->mac_set && self->type == DEV_TYPE_TUN) {
        s_err (err, errsize, "mac_address: only a tap device has a MAC address (type is \"tun\")");
        return -1;
    }
    if (!self->mac_set) {
        if (!node_key) {
            s_err (err, errsize, "mac_address: empty, and no node key to derive it from");
            return -1;
        }
        dev_mac_from_key (node_key, self->mac);
    }
    return 0;
}

//  Expects the setter to fail and its message to contain `what`
#define EXPECT_ERR(call, what) do { \
        err [0] = 0; \
        assert ((call) == -1); \
        if (verbose) printf ("  error: %s\n", err); \
        assert (strstr (err, what)); \
    } while (0)

void
dev_config_test (bool verbose)
{
    dev_config_t cfg;
    char err [200];
    dev_config_init (&cfg);
    assert (cfg.type == DEV_TYPE_TUN && cfg.mtu == 1420 && strcmp (cfg.name, "bifrost0") == 0);
    assert (!cfg.has_address && !cfg.mac_set);

    //  type
    assert (dev_config_set_type (&cfg, "tap", err, sizeof err) == 0 && cfg.type == DEV_TYPE_TAP);
    assert (dev_config_set_type (&cfg, "tun", err, sizeof err) == 0 && cfg.type == DEV_TYPE_TUN);
    EXPECT_ERR (dev_config_set_type (&cfg, "TUN ", err, sizeof err), "expected \"tun\" or \"tap\"");
    EXPECT_ERR (dev_config_set_type (&cfg, NULL, err, sizeof err), "expected");

    //  name
    assert (dev_config_set_name (&cfg, "bf-0_a.b", err, sizeof err) == 0 && strcmp (cfg.name, "bf-0_a.b") == 0);
    assert (dev_config_set_name (&cfg, "abcdefghijklmno", err, sizeof err) == 0);
    EXPECT_ERR (dev_config_set_name (&cfg, "abcdefghijklmnop", err, sizeof err), "at most 15");
    EXPECT_ERR (dev_config_set_name (&cfg, "", err, sizeof err), "empty");
    EXPECT_ERR (dev_config_set_name (&cfg, "a/b", err, sizeof err), "'/' at position 2");
    EXPECT_ERR (dev_config_set_name (&cfg, "a b", err, sizeof err), "' ' at position 2");
    EXPECT_ERR (dev_config_set_name (&cfg, "..", err, sizeof err), "not interface names");
    assert (strcmp (cfg.name, "abcdefghijklmno") == 0);     //  unchanged by errors

    //  mtu
    assert (dev_config_set_mtu (&cfg, 576, err, sizeof err) == 0 && cfg.mtu == 576);
    assert (dev_config_set_mtu (&cfg, 65535, err, sizeof err) == 0 && cfg.mtu == 65535);
    EXPECT_ERR (dev_config_set_mtu (&cfg, 575, err, sizeof err), "expected 576..65535, got 575");
    EXPECT_ERR (dev_config_set_mtu (&cfg, 65536, err, sizeof err), "got 65536");
    EXPECT_ERR (dev_config_set_mtu (&cfg, -1, err, sizeof err), "got -1");

    //  address
    assert (dev_config_set_address (&cfg, "10.100.0.1/16", err, sizeof err) == 0);
    assert (cfg.has_address && cfg.address.family == AF_INET && cfg.address.prefix == 16);
    assert (memcmp (cfg.address.addr, "\x0a\x64\x00\x01", 4) == 0);
    char text [DEV_ADDR_TEXT];
    dev_addr_format (&cfg.address, text, sizeof text);
    assert (strcmp (text, "10.100.0.1/16") == 0);
    assert (dev_config_set_address (&cfg, "fd00:bf::1/64", err, sizeof err) == 0);
    assert (cfg.address.family == AF_INET6 && cfg.address.prefix == 64);
    dev_addr_format (&cfg.address, text, sizeof text);
    assert (strcmp (text, "fd00:bf::1/64") == 0);
    EXPECT_ERR (dev_config_set_address (&cfg, "10.100.0.256/16", err, sizeof err), "not an IPv4 or IPv6");
    EXPECT_ERR (dev_config_set_address (&cfg, "10.100.0.1/33", err, sizeof err), "from 0 to 32");
    EXPECT_ERR (dev_config_set_address (&cfg, "10.100.0.1/", err, sizeof err), "must be a number");
    EXPECT_ERR (dev_config_set_address (&cfg, "10.100.0.1/1x", err, sizeof err), "must be a number");
    EXPECT_ERR (dev_config_set_address (&cfg, "10.100.0.1/+8", err, sizeof err), "must be a number");
    EXPECT_ERR (dev_config_set_address (&cfg, "fd00::1/129", err, sizeof err), "from 0 to 128");
    EXPECT_ERR (dev_config_set_address (&cfg, "10.100.0.0/16", err, sizeof err), "network address");
    EXPECT_ERR (dev_config_set_address (&cfg, "10.100.255.255/16", err, sizeof err), "broadcast address");
    EXPECT_ERR (dev_config_set_address (&cfg, "10.100.0.1/32", err, sizeof err), "no room for peers");
    EXPECT_ERR (dev_config_set_address (&cfg, "224.0.0.1/8", err, sizeof err), "multicast");
    EXPECT_ERR (dev_config_set_address (&cfg, "127.0.0.2/8", err, sizeof err), "loopback");
    EXPECT_ERR (dev_config_set_address (&cfg, "ff02::1/64", err, sizeof err), "multicast");
    EXPECT_ERR (dev_config_set_address (&cfg, "", err, sizeof err), "empty");
    EXPECT_ERR (dev_config_set_address (&cfg, "host.example/24", err, sizeof err), "not an IPv4 or IPv6");
    assert (cfg.address.family == AF_INET6);                  //  unchanged by errors

    dev_addr_t a;
    assert (dev_addr_parse ("192.0.2.7", &a, err, sizeof err) == 0 && a.prefix == 32);
    dev_addr_t net;
    assert (dev_addr_parse ("10.100.0.0/15", &net, err, sizeof err) == 0);
    assert (dev_addr_match (&net, AF_INET, (const uint8_t *) "\x0a\x65\xff\x01"));
    assert (!dev_addr_match (&net, AF_INET, (const uint8_t *) "\x0a\x66\x00\x01"));
    assert (!dev_addr_match (&net, AF_INET6, (const uint8_t *) "\x0a\x65\xff\x01\0\0\0\0\0\0\0\0\0\0\0\0"));
    assert (dev_addr_parse ("0.0.0.0/0", &net, err, sizeof err) == 0);
    assert (dev_addr_match (&net, AF_INET, (const uint8_t *) "\xc0\x00\x02\x01"));

    //  mac_address and finish
    uint8_t key [32];
    for (int i = 0; i < 32; i++)
        key [i] = (uint8_t) i;
    dev_config_init (&cfg);
    assert (dev_config_set_mac (&cfg, "02:11:22:33:44:55", err, sizeof err) == 0 && cfg.mac_set);
    EXPECT_ERR (dev_config_finish (&cfg, key, err, sizeof err), "only a tap device");
    assert (dev_config_set_type (&cfg, "tap", err, sizeof err) == 0);
    assert (dev_config_finish (&cfg, key, err, sizeof err) == 0);
    assert (memcmp (cfg.mac, "\x02\x11\x22\x33\x44\x55", 6) == 0);
    EXPECT_ERR (dev_config_set_mac (&cfg, "01:00:5e:00:00:01", err, sizeof err), "multicast");
    EXPECT_ERR (dev_config_set_mac (&cfg, "00:00:00:00:00:00", err, sizeof err), "not a usable");
    EXPECT_ERR (dev_config_set_mac (&cfg, "02:11:22:33:44", err, sizeof err), "mac_address: ");
    assert (dev_config_set_mac (&cfg, "", err, sizeof err) == 0 && !cfg.mac_set);
    assert (dev_config_finish (&cfg, key, err, sizeof err) == 0);
    uint8_t derived [6];
    dev_mac_from_key (key, derived);
    assert (memcmp (cfg.mac, derived, 6) == 0);
    EXPECT_ERR (dev_config_finish (&cfg, NULL, err, sizeof err), "no node key");

    dev_config_init (&cfg);
    assert (dev_config_set_address (&cfg, "fd00::1/64", err, sizeof err) == 0);
    assert (dev_config_set_mtu (&cfg, 1000, err, sizeof err) == 0);
    EXPECT_ERR (dev_config_finish (&cfg, key, err, sizeof err), "minimum for an IPv6");
    assert (dev_config_set_mtu (&cfg, 1280, err, sizeof err) == 0);
    assert (dev_config_finish (&cfg, key, err, sizeof err) == 0);
}
