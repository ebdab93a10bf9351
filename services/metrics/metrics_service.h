/*  metrics_service: the Prometheus text endpoint as a bus service
    (bifrost-metrics, issue 19, docs/metrics.md). Off unless `metrics` is in
    the node's `services`; it listens on `metrics.listen` (loopback unless
    `metrics.allow_remote`). A scrape starts a collection round: sup.status
    from bifrostd's control socket (the one request bifrostd takes from a
    service: sup_control.c), then, at once and without blocking the loop,
    the status of crypto, nat, device, discovery, the broker, and of every
    relay.N and registry.N instance bifrostd lists. When every answer is in
    (or `metrics.timeout` passed) the numbers are rendered
    (metrics_render, names from schemas/metrics.def) and every waiting
    scrape gets the same text; a scrape within `metrics.cache` of the last
    round gets it again. Nothing is counted here: every number is a
    service's own, so a metrics restart loses nothing. */
#ifndef METRICS_SERVICE_H_INCLUDED
#define METRICS_SERVICE_H_INCLUDED

#include "bus_service.h"
#include "bus_config_schema.h"

typedef struct {
    bus_cfg_metrics_t metrics;          //  as checked
    char bind_ip [64];                  //  metrics.listen, split
    uint16_t port;
} metrics_service_config_t;

typedef struct _metrics_service_t metrics_service_t;

//  Reads and checks the metrics group (errors recorded on config)
void metrics_service_check_config (bus_config_t *config, metrics_service_config_t *out);
void metrics_service_config_clear (metrics_service_config_t *self);

//  Listens and joins the loop; NULL with err when it cannot
metrics_service_t *metrics_service_new (bus_service_t *svc, metrics_service_config_t *config,
                                        char *err, size_t err_size);
void metrics_service_destroy (metrics_service_t **self_p);
uint16_t metrics_service_port (metrics_service_t *self);

//  The program: bus_service_main (&metrics_service_def, argc, argv)
extern const bus_service_def_t metrics_service_def;

void metrics_service_test (bool verbose);
#endif
