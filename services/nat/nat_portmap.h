/*  nat_portmap: nat's own UDP port mapped on the local gateway
    (`connection.port_mapping`, issue 15), libportmap driven from nat's loop.

    libportmap does the gateway work on its worker thread; this class hangs its
    descriptor and deadlines on the service's bus_loop, turns the result into
    what the node uses (the `nat.mapped` event, the `port_mapping*` fields of
    `nat.status`), stops the mapping when the node stops, and starts it again
    when the address nat reaches the gateway from changes (a new DHCP lease, a
    new network): the old mapping points at an address we no longer have, and a
    failed one may find a gateway there. It looks when nat_netwatch says the
    addresses or routes changed, and every 5 s (nat without rtnetlink).
    docs/portmap.md has the design and the measured times. */
#ifndef NAT_PORTMAP_H_INCLUDED
#define NAT_PORTMAP_H_INCLUDED

#include "bus_loop.h"
#include "bus_service.h"

typedef struct {
    uint16_t local_port;        //  nat's bound UDP port
    const char *local_addr;     //  a specific IPv4 nat is bound to, else NULL
    const char *protocol;       //  "any", "natpmp", "upnp" (connection.port_mapping_protocol)
    int64_t lifetime_ms;        //  connection.port_mapping_lifetime
    //  For tests: the NAT-PMP gateway (NULL: the default route's), the first
    //  retry after a failure (0: libportmap's 30 s), the check of the local
    //  address (0: every 5 s)
    const char *natpmp_gateway;
    int retry_ms;
    int check_ms;
} nat_portmap_config_t;

typedef struct _nat_portmap_t nat_portmap_t;

//  The external address:port changed (made, moved, lost)
typedef void (nat_portmap_fn) (nat_portmap_t *self, void *arg);

//  Starts asking the gateway at once. NULL with a reason in err on a bad
//  config or when the worker cannot start.
nat_portmap_t *nat_portmap_new (bus_loop_t *loop, const nat_portmap_config_t *config,
                                nat_portmap_fn *on_change, void *arg, char *err, size_t err_size);
//  Deletes the mapping on the gateway (bounded: at most 1 s) and leaves the loop.
void nat_portmap_destroy (nat_portmap_t **self_p);

//  The host's addresses or routes changed (nat_netwatch): look at our address
//  now rather than at the next 5 s poll. self may be NULL.
void nat_portmap_netchange (nat_portmap_t *self);

//  The mapped address "a.b.c.d:port", "" when there is none
const char *nat_portmap_external (nat_portmap_t *self);
//  The `nat.mapped` event as it stands
void nat_portmap_event (nat_portmap_t *self, nat_mapped_t *msg);
//  Fills the port_mapping* fields of nat.status (self NULL: "off")
void nat_portmap_status (nat_portmap_t *self, nat_status_reply_t *reply);

void nat_portmap_test (bool verbose);
#endif
