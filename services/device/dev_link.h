/*  dev_link: the part of device that keeps CAP_NET_ADMIN, in a helper process
    of its own, so that the process that moves packets (and, in bifrost-tunnel,
    holds the node key and reads what nat hands over from the internet) keeps
    no capability at all.

    device needs CAP_NET_ADMIN for a handful of calls: to create the TUN/TAP
    interface, set its MTU, its address (the configured one, then the
    registry's at run time), its MAC, and to bring it up. Moving packets on the
    interface's fd, and its offloads, need nothing. So before bus_service_main
    drops privileges (single-threaded, still root: the def's `privileged`
    hook), device forks this helper. The helper keeps CAP_NET_ADMIN and nothing
    else, holds no key (it is forked before crypto loads one), is not dumpable,
    reads nothing but its parent's requests on a socket pair, and acts only on
    the one interface it created: it creates it, hands its fd to the parent
    (SCM_RIGHTS) and closes its own copy, so the interface still goes away with
    the parent's fd. The parent then drops every capability. A compromised
    packet path can at worst ask for another address or MAC on its own
    interface; it cannot reconfigure the host's network. This is OpenSSH's
    privilege separation turned around: the monitor is the small side.

    Measured (docs/benchmarks.md): the packet path is the same fd in the same
    process as before, so throughput and latency do not change; the helper is
    asked a few times per run, never per packet.

    dev_link_local runs the same requests in the caller's process, for the self
    tests (which hold the capability themselves); both go through one
    function. */
#ifndef DEV_LINK_H_INCLUDED
#define DEV_LINK_H_INCLUDED

#include "dev_config.h"
#include "dev_tun.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct _dev_link_t dev_link_t;

//  Forks the helper. Call it single-threaded and with CAP_NET_ADMIN (the
//  helper keeps it; the caller drops it afterwards). The child never returns:
//  it serves until the parent closes its end or dies (PR_SET_PDEATHSIG).
//  NULL with a reason in err.
dev_link_t *dev_link_start (char *err, size_t errsize);
//  The same requests, run in this process (self tests; needs the capability).
dev_link_t *dev_link_local (void);
//  Closes the socket: the helper exits. Waits for it (a few ms at most).
void dev_link_destroy (dev_link_t **self_p);

//  The helper's pid (0 for a local link).
pid_t dev_link_pid (dev_link_t *self);
//  The socket to the helper, to watch for its end (-1 for a local link): it
//  is readable only between a request and its reply, or when the helper died.
int dev_link_fd (dev_link_t *self);
//  True when the helper is gone (call when dev_link_fd is readable outside a
//  request).
bool dev_link_gone (dev_link_t *self);

//  Creates the interface as config says (type, name, MTU, configured
//  address), replacing a tun/tap of that name left by a crashed run, with
//  DEV_TUN_OFFLOAD in flags for the vnet header and TSO; returns it open in
//  this process. Once per link. NULL with a reason in err.
dev_tun_t *dev_link_open (dev_link_t *self, const dev_config_t *config, int flags, char *err, size_t errsize);
//  Replaces the interface's address old (NULL: none) by addr.
int dev_link_set_address (dev_link_t *self, const dev_addr_t *old, const dev_addr_t *addr, char *err, size_t errsize);
//  Takes addr off the interface (an anycast address, docs/groups.md); no
//  error when it is not there.
int dev_link_del_address (dev_link_t *self, const dev_addr_t *addr, char *err, size_t errsize);
//  Sets the MAC (tap), a unicast one.
int dev_link_set_mac (dev_link_t *self, const uint8_t mac [6], char *err, size_t errsize);
//  Brings the interface up.
int dev_link_set_up (dev_link_t *self, char *err, size_t errsize);

void dev_link_test (bool verbose);
#endif
