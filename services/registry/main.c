/*  bifrost-registry: the registry server. Everything it does lives in
    reg_service (and its program part reg_service_def; the config is read and
    checked by reg_config); this main only hands it to the runtime. */
#include "reg_service.h"

int
main (int argc, char **argv)
{
    return bus_service_main (&reg_service_def, argc, argv);
}
