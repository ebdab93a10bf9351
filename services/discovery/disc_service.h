/*  disc_service: the discovery service of a node, on the libbus runtime.

    Registers this node with the registry (challenge, key proof from crypto, join
    token), hands the virtual address to device (`node.address`), follows the
    network's WebSocket events and publishes every peer as `peer.up`,
    `peer.changed`, `peer.down` with stable indices, heartbeats, fetches the ICE
    servers (`discovery.ice`) and refreshes them before the TURN credentials
    expire, and carries `discovery.signal` both ways. When the registry cannot be
    reached it tries again at once, then with exponential backoff (1 s .. 60 s);
    nothing is torn down meanwhile, so tunnels keep working. */
#ifndef DISC_SERVICE_H_INCLUDED
#define DISC_SERVICE_H_INCLUDED

#include "bus_service.h"
#include "disc_config.h"

typedef struct _disc_service_t disc_service_t;

//  The config check --check-config runs (records problems in config).
void disc_service_check_config (bus_config_t *config);

//  Starts on svc's loop; NULL + err on a config or resource failure.
disc_service_t *disc_service_new (bus_service_t *svc, char *err, size_t errsize);
//  Deregisters (DELETE, waiting at most timeout_ms for the registry), so peers see
//  this node leave at once rather than after its lease.
void disc_service_leave (disc_service_t *self, int timeout_ms);
void disc_service_destroy (disc_service_t **self_p);

//  "registering", "registered" or "offline"
const char *disc_service_state (disc_service_t *self);

void disc_service_test (bool verbose);
#endif
