/*  bifrost-bridge: the WebSocket to UDP bridge (docs/bridge.md). Everything it
    does lives in bridge_service; this main only hands it to the runtime. */
#include "bridge_service.h"

int
main (int argc, char **argv)
{
    return bus_service_main (&bridge_service_def, argc, argv);
}
