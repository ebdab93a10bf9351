/*  bifrost-device: the device service as a process of its own. Everything it
    does lives in dev_service (and its program part dev_service_def); this main
    only hands it to the runtime. bifrost-tunnel runs the same service with
    crypto in one process (services/tunnel/). Keeps no capability: its helper
    keeps CAP_NET_ADMIN for the interface's setup (dev_link.h). */
#include "dev_service.h"

int
main (int argc, char **argv)
{
    return bus_service_main (&dev_service_def, argc, argv);
}
