/*  bifrost-discovery: the node's registry client. Everything lives in
    disc_service (and its program part disc_service_def, which deregisters on
    a clean stop); this main only hands it to the runtime. */
#include "disc_service.h"

int
main (int argc, char **argv)
{
    return bus_service_main (&disc_service_def, argc, argv);
}
