/*  dev_config: the values of the `device { type, name, mtu, address, mac_address }`
    group, validated one by one. The file plumbing (bus_config) belongs to the
    service's main; this class only takes strings and integers, so every check is
    testable without a file and every message says what was expected.

    dev_config_t is a plain value struct rather than an opaque class: the service
    fills it once at start, the other dev_ classes read its fields, and it owns no
    resource (nothing to destroy). dev_addr_t (an address with prefix) is shared
    by dev_netlink and dev_peermap. */
#ifndef DEV_CONFIG_H_INCLUDED
#define DEV_CONFIG_H_INCLUDED

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { DEV_TYPE_TUN = 0, DEV_TYPE_TAP = 1 } dev_type_t;

#define DEV_MTU_MIN       576
#define DEV_MTU_MAX       65535
#define DEV_MTU_DEFAULT   1420
#define DEV_MTU_MIN_IPV6  1280      //  RFC 8200: an IPv6 link carries 1280 bytes
#define DEV_NAME_DEFAULT  "bifrost0"
#define DEV_ADDR_TEXT     50        //  "ffff:...:ffff/128" plus NUL, with room

//  An IPv4 or IPv6 address with a prefix length (family AF_INET or AF_INET6;
//  IPv4 uses the first 4 bytes of addr).
typedef struct {
    int family;
    uint8_t addr [16];
    int prefix;
} dev_addr_t;

typedef struct {
    dev_type_t type;
    char name [IFNAMSIZ];
    int mtu;
    bool has_address;
    dev_addr_t address;
    bool mac_set;               //  false: derived from the node key at finish
    uint8_t mac [6];
} dev_config_t;

//  Defaults: tun, "bifrost0", MTU 1420, no address, MAC derived.
void dev_config_init (dev_config_t *self);

//  Each setter validates one value; on error it returns -1, leaves the field
//  unchanged and writes "<key>: <what was expected>" to err.
int dev_config_set_type (dev_config_t *self, const char *text, char *err, size_t errsize);
int dev_config_set_name (dev_config_t *self, const char *text, char *err, size_t errsize);
int dev_config_set_mtu (dev_config_t *self, long mtu, char *err, size_t errsize);
int dev_config_set_address (dev_config_t *self, const char *text, char *err, size_t errsize);
//  "" means derive from the node key (at finish).
int dev_config_set_mac (dev_config_t *self, const char *text, char *err, size_t errsize);
//  Cross-checks (IPv6 needs MTU >= 1280, mac_address only on tap) and derives the
//  MAC from the 32-byte node public key when none was set.
int dev_config_finish (dev_config_t *self, const uint8_t node_key [32], char *err, size_t errsize);

//  "10.100.0.1/16", "fd00::1/64"; a missing prefix means a host (/32, /128).
int dev_addr_parse (const char *text, dev_addr_t *addr, char *err, size_t errsize);
//  Formats as "addr/prefix" into text (at least DEV_ADDR_TEXT bytes).
void dev_addr_format (const dev_addr_t *addr, char *text, size_t size);
//  True if the first `prefix` bits of a and b (same family) are equal.
bool dev_addr_match (const dev_addr_t *net, int family, const uint8_t *addr);

void dev_config_test (bool verbose);
#endif
