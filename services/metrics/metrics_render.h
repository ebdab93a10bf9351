/*  metrics_render: the Prometheus text format (0.0.4) of one collection
    round, from the status replies the services gave (metrics_service).
    Every metric's name, type and help are schemas/metrics.def's; a reply
    that did not come is NULL and its metrics have no samples (their HELP
    and TYPE lines stay, and bifrost_scrape_service_up says it is missing).
    Label values are escaped as the format says (\\, \", \n). */
#ifndef METRICS_RENDER_H_INCLUDED
#define METRICS_RENDER_H_INCLUDED

#include "bus_schema.h"
#include <stdbool.h>
#include <stddef.h>

#define METRICS_INSTANCES_MAX 64        //  relay and registry instances asked per round

typedef enum {
#define BUS_METRIC(id, name, type, labels, source, help) METRIC_##id,
#include "../../schemas/metrics.def"
#undef BUS_METRIC
    METRIC_COUNT
} metrics_id_t;

//  One collection round: what came back (NULL: no answer)
typedef struct {
    const sup_status_reply_t *sup;
    const crypto_status_reply_t *crypto;
    const nat_status_reply_t *nat;
    const device_status_reply_t *device;
    const discovery_status_reply_t *discovery;
    const bus_status_reply_t *bus;
    //  relay workers and registry instances, by instance id ("relay.2")
    size_t relay_count;
    const char *relay_instance [METRICS_INSTANCES_MAX];
    const relay_status_reply_t *relay [METRICS_INSTANCES_MAX];
    size_t registry_count;
    const char *registry_instance [METRICS_INSTANCES_MAX];
    const registry_status_reply_t *registry [METRICS_INSTANCES_MAX];
    double seconds;                     //  the round's duration
} metrics_round_t;

//  The text of a round: malloc'd, zero-terminated, its length in *size
char *metrics_render (const metrics_round_t *round, size_t *size);

//  The kind of path nat reports (`direct`, `relay`, `turn`, `ice`, `none`)
const char *metrics_path_kind (const char *path);

void metrics_render_test (bool verbose);
#endif
