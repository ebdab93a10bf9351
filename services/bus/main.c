/*  bifrost-bus: the broker process. Everything it does lives in libbus/bus_broker
    (hung on the service loop by broker_service_def); this main only hands it
    to the runtime. */
#include "broker_service.h"

int
main (int argc, char **argv)
{
    return bus_service_main (&broker_service_def, argc, argv);
}
