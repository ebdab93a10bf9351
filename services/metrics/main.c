/*  bifrost-metrics: the Prometheus text endpoint (docs/metrics.md). Everything
    it does lives in metrics_service; this main only hands it to the runtime. */
#include "metrics_service.h"

int
main (int argc, char **argv)
{
    return bus_service_main (&metrics_service_def, argc, argv);
}
