/*  dev_netlink: configures an interface through rtnetlink (a raw NETLINK_ROUTE
    socket), the way `ip link` and `ip addr` do, without shelling out: no
    dependency on iproute2 being installed, exact errors instead of parsed
    stderr, and nothing to escape. Every request asks for an ACK and waits for
    it, so a failure is reported on the call that caused it, as
    "<what>: <strerror> (<errno name>)", readable with dev_netlink_error. */
#ifndef DEV_NETLINK_H_INCLUDED
#define DEV_NETLINK_H_INCLUDED

#include "dev_config.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _dev_netlink_t dev_netlink_t;

typedef struct {
    char name [IFNAMSIZ];
    unsigned flags;             //  IFF_UP, IFF_RUNNING, ...
    int mtu;
    uint8_t mac [6];
    bool has_mac;
} dev_link_info_t;

dev_netlink_t *dev_netlink_new (char *err, size_t errsize);
void dev_netlink_destroy (dev_netlink_t **self_p);

//  The message and errno of the last failed call.
const char *dev_netlink_error (dev_netlink_t *self);
int dev_netlink_errno (dev_netlink_t *self);

//  Every call returns 0 on success, -1 on failure (see dev_netlink_error).
//  ifindex: if_nametoindex, or dev_netlink_ifindex which reports a clear error.
int dev_netlink_ifindex (dev_netlink_t *self, const char *name);
int dev_netlink_set_up (dev_netlink_t *self, int ifindex, bool up);
int dev_netlink_set_mtu (dev_netlink_t *self, int ifindex, int mtu);
int dev_netlink_set_mac (dev_netlink_t *self, int ifindex, const uint8_t mac [6]);
//  IPv4 gets its subnet broadcast; IPv6 is added without duplicate address
//  detection (IFA_F_NODAD): the registry allocates addresses, and DAD would hold
//  the address "tentative" (unusable) for a second after every start.
int dev_netlink_addr_add (dev_netlink_t *self, int ifindex, const dev_addr_t *addr);
int dev_netlink_addr_del (dev_netlink_t *self, int ifindex, const dev_addr_t *addr);
//  A route to dst through the interface (main table, link scope); metric 0 = none.
int dev_netlink_route_add (dev_netlink_t *self, int ifindex, const dev_addr_t *dst, uint32_t metric);
int dev_netlink_route_del (dev_netlink_t *self, int ifindex, const dev_addr_t *dst);
//  Deletes an interface (a persistent one left behind by a crash, for instance).
int dev_netlink_link_del (dev_netlink_t *self, int ifindex);

//  Read-back: the link's name, flags, MTU and MAC.
int dev_netlink_link_get (dev_netlink_t *self, int ifindex, dev_link_info_t *info);
//  1 if the interface has exactly this address and prefix, 0 if not, -1 on error.
int dev_netlink_addr_has (dev_netlink_t *self, int ifindex, const dev_addr_t *addr);

void dev_netlink_test (bool verbose);
#endif
