/*  bridge_service: the bridge as a bus service (bifrost-bridge, issue 17,
    docs/bridge.md): the `bridge` config group (schemas/config/bridge.def),
    checked once, a bridge_server on the service's loop, and `bridge.status`
    on the bus (schemas/bridge_bus.def).

    Instances: bifrostd may run `instances = N` (`bifrostctl scale bridge N`).
    Every instance listens on the same port (SO_REUSEPORT: the kernel spreads
    the connections), and a flow lives wholly in the instance that accepted
    it (its WebSocket and its UDP socket), so instances share nothing and need
    not know of each other; each answers `bridge.status` for itself. */
#ifndef BRIDGE_SERVICE_H_INCLUDED
#define BRIDGE_SERVICE_H_INCLUDED

#include "bus_service.h"
#include "bus_config_schema.h"
#include "bridge_server.h"
#include "bridge_peers.h"
#include <sys/socket.h>

typedef struct {
    bus_cfg_bridge_t bridge;            //  as checked
    char bind_ip [64];                  //  bridge.listen, split
    uint16_t port;
    struct sockaddr_storage public_addr;    //  bridge.public_address (port 0), when has_public
    bool has_public;
    //  WebSocket over TLS when tls_cert and tls_key are set: both read here,
    //  before the service drops privileges and is sandboxed
    bool tls;
    char *tls_cert_pem;                 //  malloc
    size_t tls_cert_size;
    char *tls_key_pem;                  //  sodium_malloc, wiped by clear
    size_t tls_key_size;
} bridge_service_config_t;

typedef struct _bridge_service_t bridge_service_t;

//  Reads and checks the bridge group (errors recorded on config)
void bridge_service_check_config (bus_config_t *config, bridge_service_config_t *out);
void bridge_service_config_clear (bridge_service_config_t *self);

//  Listens and joins the loop; NULL with err when it cannot
bridge_service_t *bridge_service_new (bus_service_t *svc, bridge_service_config_t *config,
                                      char *err, size_t err_size);
void bridge_service_destroy (bridge_service_t **self_p);

bridge_server_t *bridge_service_server (bridge_service_t *self);

//  The program: bus_service_main (&bridge_service_def, argc, argv)
extern const bus_service_def_t bridge_service_def;

void bridge_service_test (bool verbose);
#endif
