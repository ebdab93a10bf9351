/*  dev_service: the device process's logic on a bus_service loop. It owns the
    TUN/TAP interface and wires it to crypto through the data pipes of
    docs/packet-path.md:

        TUN -> read in batches (straight into the batch) -> dst -> peer index
            -> dev-crypto -> crypto
        crypto -> crypto-dev -> (tap: learn the source MAC) -> TUN

    It answers `device.status` and publishes `device.up`. When dev-crypto is
    full (or crypto is not there) it stops polling the TUN, so the kernel's
    queue drops the excess instead of us filling batches only to drop them.
    A class of its own, not main's statics, so the self test can run the whole
    service in-process, on a real broker, in a private network namespace. */
#ifndef DEV_SERVICE_H_INCLUDED
#define DEV_SERVICE_H_INCLUDED

#include "bus_service.h"
#include "dev_config.h"
#include "node_peers.h"

//  The pipe names (PIPE_*), record flags (PIPE_FLAG_*) and tags are declared once,
//  for every service, in schemas/pipes.def (schemas/pipes.h)
#define DEV_MAC_AGE_MS        300000            //  learned MACs (tap) age out
#define DEV_MAC_CAPACITY      4096
//  How long a tap device with mac_address = "" waits for crypto's public key
//  before it falls back to a MAC derived from its name and address
#define DEV_KEY_WAIT_MS       3000
//  Groups (docs/groups.md): the general query interval (IGMP's default) and
//  the deadline for the kernel's answers that the queries ask for
#define DEV_QUERY_MS          125000
#define DEV_QUERY_RESPONSE_MS 10000

//  device's config, checked once by dev_service_check_config and handed to
//  setup (dev_service_new), which reads nothing again.
typedef struct {
    dev_config_t dev;           //  type, name, mtu, address, mac_address
    bool offload;               //  tun only: IFF_VNET_HDR + TSO, split here
    node_peers_t *peers;        //  the peer list; dev_service_new takes it
    //  The helper that holds CAP_NET_ADMIN (started before the drop by the
    //  def's privileged hook); dev_service_new takes it. NULL: the requests
    //  run in this process (self tests, which hold the capability).
    struct _dev_link_t *link;
} dev_service_config_t;

//  Reads the `device` group (schemas/config/device.def) and checks `peers` as
//  device needs them. Problems are recorded in config with file and line;
//  config may be NULL (defaults). Release out with dev_service_config_clear
//  unless dev_service_new took it.
void dev_service_check_config (bus_config_t *config, dev_service_config_t *out);
//  Releases what a checked config holds (the peer list).
void dev_service_config_clear (dev_service_config_t *self);

typedef struct _dev_service_t dev_service_t;

//  Takes the checked config (its peer list becomes the service's), creates and
//  configures the interface (replacing a tun/tap of the same name left by a
//  crashed run), opens the pipes, registers the handlers and hangs everything
//  on the service's loop. NULL with a reason in err.
dev_service_t *dev_service_new (bus_service_t *svc, dev_service_config_t *config, char *err, size_t errsize);
//  Takes everything off the loop, closes the pipes and the interface (the
//  kernel removes it).
void dev_service_destroy (dev_service_t **self_p);

//  The interface name.
const char *dev_service_name (dev_service_t *self);
//  True once the interface is configured and up.
bool dev_service_up (dev_service_t *self);

//  The service as a part of a program: bifrost-device runs it alone, bifrost-tunnel
//  with the other half of the tunnel on one loop (services/tunnel/).
extern const bus_service_def_t dev_service_def;

void dev_service_test (bool verbose);
#endif
