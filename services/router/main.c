/*  bifrost-router: keeps the route table and answers where traffic for a
    peer goes. Everything it does lives in router_service (and its program
    part router_service_def); this main only hands it to the runtime. */
#include "router_service.h"

int
main (int argc, char **argv)
{
    return bus_service_main (&router_service_def, argc, argv);
}
