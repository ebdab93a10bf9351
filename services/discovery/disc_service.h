/*  disc_service: the discovery service of a node, on the libbus runtime.

    Registers this node with the registry (challenge, key proof from crypto, join
    token), hands the virtual address to device (`node.address`) and the relay
    grant of every registration and heartbeat to nat (`relay.servers`), follows
    the network's WebSocket events and publishes every peer as `peer.up` (with
    its relay id), `peer.changed`, `peer.down` with stable indices, heartbeats,
    fetches the ICE servers (`discovery.ice`) and refreshes them before the TURN
    credentials expire, and carries `discovery.signal` both ways. When the
    registry cannot be reached it tries again at once, then with exponential
    backoff (1 s .. 60 s);
    nothing is torn down meanwhile, so tunnels keep working. */
#ifndef DISC_SERVICE_H_INCLUDED
#define DISC_SERVICE_H_INCLUDED

#include "bus_service.h"
#include "disc_config.h"
#include "node_peers.h"

typedef struct _disc_service_t disc_service_t;

//  discovery's config, checked once by disc_service_check_config and handed
//  to setup (disc_service_new), which reads nothing again.
typedef struct {
    bool given;                         //  a config file was given
    disc_config_t disc;                 //  network_id, the discovery group, nat's port
    const char *device_name;            //  device.name (owned by the bus_config)
    node_peers_t *peers;                //  the static peers; disc_service_new takes them
} disc_service_config_t;

//  The config check --check-config runs (records problems in config). Release
//  out with disc_service_config_clear unless disc_service_new took it.
void disc_service_check_config (bus_config_t *config, disc_service_config_t *out);
void disc_service_config_clear (disc_service_config_t *self);

//  Starts on svc's loop with the checked config; NULL + err on a config or
//  resource failure.
disc_service_t *disc_service_new (bus_service_t *svc, disc_service_config_t *config, char *err, size_t errsize);
//  Deregisters (DELETE, waiting at most timeout_ms for the registry), so peers see
//  this node leave at once rather than after its lease.
void disc_service_leave (disc_service_t *self, int timeout_ms);
void disc_service_destroy (disc_service_t **self_p);

//  "registering", "registered" or "offline"
const char *disc_service_state (disc_service_t *self);

//  The service as a program (services/discovery/main.c); a clean stop
//  deregisters first, so the other nodes drop this one at once.
extern const bus_service_def_t disc_service_def;

void disc_service_test (bool verbose);
#endif
