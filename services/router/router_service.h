/*  router_service: the router as a bus service (bifrost-router, issue 18,
    docs/routing.md). It owns the node's route table (router_links over
    librouter's route_table), learns its neighbours from discovery's peer.*
    and nat's nat.peer* events and, every status_interval, from nat.status
    (the path kind and RTT of each peer that is up), and answers router.route
    (the next hop towards a peer) and router.routes (the table, for
    `bifrostctl routes`) from it. Route announcements between routers, and
    pushing next hops to the data path, are the next steps. */
#ifndef ROUTER_SERVICE_H_INCLUDED
#define ROUTER_SERVICE_H_INCLUDED

#include "bus_service.h"
#include "bus_config_schema.h"
#include "route_table.h"

typedef struct {
    bus_cfg_routing_t routing;          //  as checked
    route_config_t route;               //  the table's config, from it
    int status_interval_ms;             //  how often nat.status is asked (2000)
} router_service_config_t;

typedef struct _router_service_t router_service_t;

//  Reads and checks the routing group and the peer list (errors recorded on config)
void router_service_check_config (bus_config_t *config, router_service_config_t *out);
void router_service_config_clear (router_service_config_t *self);

//  Joins the service's loop; err unused (it cannot fail), for BUS_SERVICE_PART
router_service_t *router_service_new (bus_service_t *svc, router_service_config_t *config,
                                      char *err, size_t err_size);
void router_service_destroy (router_service_t **self_p);

//  The program: bus_service_main (&router_service_def, argc, argv)
extern const bus_service_def_t router_service_def;

void router_service_test (bool verbose);
#endif
