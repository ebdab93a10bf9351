/*  router_service: the router as a bus service. It answers router.route (where
    traffic for a peer goes); this first version knows one path, direct to the
    peer, so nat and crypto already ask the question that distance-vector
    routing will answer later. router_service_def is bifrost-router's program. */
#ifndef ROUTER_SERVICE_H_INCLUDED
#define ROUTER_SERVICE_H_INCLUDED

#include "bus_service.h"

//  The program: bus_service_main (&router_service_def, argc, argv)
extern const bus_service_def_t router_service_def;

#endif
