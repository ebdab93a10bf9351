/*  bifrost-nat: the internet-facing service. Everything it does lives in
    nat_service (UDP socket, data pipes to crypto, peer state, and its program
    part nat_service_def, which declares its privileges); this main only hands
    it to the runtime. */
#include "nat_service.h"

int
main (int argc, char **argv)
{
    return bus_service_main (&nat_service_def, argc, argv);
}
