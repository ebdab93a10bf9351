/*  group_addr: what may be a group across the mesh (docs/groups.md). A group
    is named by one IP address, kept as 16 bytes (IPv6 in network order, IPv4
    as v4-mapped ::ffff:a.b.c.d) so one codec and one table serve both
    families. A multicast address (224.0.0.0/4, ff00::/8) is a multicast
    group; a unicast address that nodes join is an anycast address. What can
    never be reached across the mesh is refused with its reason: the
    unspecified address, loopback, link-local unicast, IPv4 broadcast and
    interface-local IPv6 multicast (ff01::/16). Shared by the group report's
    codec (a peer's report) and the router (bifrostctl, the config, the
    device's list), so all three refuse alike. */
#ifndef GROUP_ADDR_H_INCLUDED
#define GROUP_ADDR_H_INCLUDED

#include "schemas/route_wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GROUP_ADDR_SIZE 16
#define GROUP_ADDR_TEXT 46              //  INET6_ADDRSTRLEN

//  Why an address is no group
typedef enum {
    GROUP_ADDR_OK = 0,
    GROUP_ADDR_SYNTAX,                  //  not an IPv4 or IPv6 address
    GROUP_ADDR_UNSPECIFIED,             //  0.0.0.0 (0.0.0.0/8), ::
    GROUP_ADDR_LOOPBACK,                //  127.0.0.0/8, ::1
    GROUP_ADDR_LINK_LOCAL,              //  169.254.0.0/16, fe80::/10
    GROUP_ADDR_BROADCAST,               //  255.255.255.255
    GROUP_ADDR_NODE_LOCAL,              //  ff01::/16, interface-local multicast
    GROUP_ADDR_ERRORS
} group_addr_err_t;

//  The kind of a usable address (ROUTE_WIRE_GROUP_MULTICAST or _ANYCAST),
//  or 0 with *why set (why may be NULL)
uint8_t group_addr_kind (const uint8_t addr [GROUP_ADDR_SIZE], group_addr_err_t *why);

//  Parses text ("239.1.2.3", "ff3e::1", "10.99.0.1"); on success fills addr
//  and *kind and returns 0, else writes a one-line reason to err and returns
//  the refusal (GROUP_ADDR_SYNTAX or why it cannot be a group)
group_addr_err_t group_addr_parse (const char *text, uint8_t addr [GROUP_ADDR_SIZE], uint8_t *kind,
                                   char *err, size_t err_size);

//  The canonical text: dotted quad for v4-mapped, else RFC 5952 IPv6
void group_addr_format (const uint8_t addr [GROUP_ADDR_SIZE], char *out, size_t size);

//  True for a v4-mapped address
bool group_addr_is_v4 (const uint8_t addr [GROUP_ADDR_SIZE]);

//  "loopback", ...
const char *group_addr_err_name (group_addr_err_t err);

void group_addr_test (bool verbose);

#endif
