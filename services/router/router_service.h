/*  router_service: the router as a bus service (bifrost-router, issue 18,
    docs/routing.md). It owns the node's route table (router_links over
    librouter's route_table), learns its neighbours from discovery's peer.*
    and nat's nat.peer* events and, every status_interval, from nat.status
    (the path kind and RTT of each peer that is up), and answers router.route
    (the next hop towards a peer) and router.routes (the table, for
    `bifrostctl routes`) from it. It exchanges route announcements with its
    neighbours' routers through crypto (route.announce out: triggered updates
    checked every 50 ms, a full dump every route_timeout / 4; route.heard in:
    rate-limited per neighbour, decoded, refusals counted) and pushes each
    destination's equal-cost next hops to the data path (route.next) when
    they change, and all again on bus.sync or when nat or crypto reconnect.
    Groups (multicast and anycast: router_groups.h, docs/groups.md) ride on
    the same messages: group reports in route.announce / route.heard, told
    end to end to every peer that is up or routed. */
#ifndef ROUTER_SERVICE_H_INCLUDED
#define ROUTER_SERVICE_H_INCLUDED

#include "bus_service.h"
#include "bus_config_schema.h"
#include "route_table.h"
#include "group_msg.h"

#define ROUTER_NEXT_HOPS        4       //  equal-cost next hops in route.next
#define ROUTER_TRIGGER_CHECK_MS 50      //  how often triggered updates are looked for
#define ROUTER_REQUEST_DUMP_MS  5000    //  a neighbour's group request gets our whole table at most this often

typedef struct {
    bus_cfg_routing_t routing;          //  as checked
    route_config_t route;               //  the table's config, from it (and connection.relay_via_peers)
    bool transit;                       //  routing.transit: false announces nothing (carries for none)
    int status_interval_ms;             //  how often nat.status is asked (2000)
    double heard_rate;                  //  route.heard taken per neighbour and second (20)
    double heard_burst;                 //  ... at once (100: a full table of 4,096 is 72 announcements)
    group_entry_t groups [ROUTE_WIRE_MAX_GROUPS];       //  routing.groups, parsed
    size_t groups_count;
} router_service_config_t;

typedef struct _router_service_t router_service_t;

//  Reads and checks the routing group and the peer list (errors recorded on config)
void router_service_check_config (bus_config_t *config, router_service_config_t *out);
void router_service_config_clear (router_service_config_t *self);

//  Joins the service's loop; err unused (it cannot fail), for BUS_SERVICE_PART
router_service_t *router_service_new (bus_service_t *svc, router_service_config_t *config,
                                      char *err, size_t err_size);
void router_service_destroy (router_service_t **self_p);

//  The TTL a routed packet starts with (routing.max_hops)
uint32_t router_service_ttl (router_service_t *self);

//  The program: bus_service_main (&router_service_def, argc, argv)
extern const bus_service_def_t router_service_def;

void router_service_test (bool verbose);
#endif
