/*  bifrost-relay: one relay worker (bifrostd runs `instances = N`). Everything it
    does lives in relay_service; this main only hands it to the runtime. */
#include "relay_service.h"

int
main (int argc, char **argv)
{
    return bus_service_main (&relay_service_def, argc, argv);
}
