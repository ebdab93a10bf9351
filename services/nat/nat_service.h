/*  nat_service: the nat process's logic on a bus_service loop. It owns the one
    UDP socket and wires it to crypto through the data pipes of
    docs/packet-path.md:

        UDP -> demux -> handle for the source -> batch -> nat-crypto -> crypto
        crypto -> crypto-nat -> (ENDPOINT record: learn the peer's address)
                             -> datagram for peer i -> its endpoint -> UDP

    With connection.tunnel_sends (the default) nat also lends its socket to
    crypto: the first batch on every link of nat-crypto carries the descriptor,
    ROUTE records tell crypto where each peer that is up can be reached, and
    crypto sends its data datagrams there itself (one process hop less per
    packet), reporting them back in SENT records. Only nat ever reads the
    socket (docs/packet-path.md, "Who sends").

    and keeps the per-peer state (nat_peer_table): it asks crypto to dial direct
    peers (`nat.dial`), publishes `nat.peer` / `nat.peer.down`, and answers
    `nat.status`. A class of its own, not main's statics, so the self test can run
    the whole service in-process on a real broker. */
#ifndef NAT_SERVICE_H_INCLUDED
#define NAT_SERVICE_H_INCLUDED

#include "bus_service.h"
#include "nat_endpoint.h"
#include "node_peers.h"

//  The pipe names (PIPE_*), record flags (PIPE_FLAG_*) and tags are declared once,
//  for every service, in schemas/pipes.def (schemas/pipes.h)
#define NAT_TICK_MS          100
#define NAT_FORCED_MAX       16         //  names in connection.force_relay_peers

//  nat's config, checked once by nat_service_check_config and handed to setup
//  (nat_service_new), which reads nothing again.
typedef struct {
    bus_cfg_connection_t connection;        //  the `connection` group (schemas/config/connection.def)
    bus_cfg_routing_t routing;              //  the `routing` group: transit and its budget (docs/routing.md)
    node_peers_t *peers;                    //  the peer list; nat_service_new takes it
    char force_relay_peers [NAT_FORCED_MAX][49];    //  connection.force_relay_peers
    size_t force_relay_count;
    char *relay_ca;                         //  connection.relay_ca_file, read (nat is sandboxed later)
    size_t relay_ca_size;
    char device_name [16];                  //  device.name: the tunnel, whose address changes are ours
} nat_service_config_t;

//  Reads the `connection` group and checks the `peers` list as nat needs it
//  (endpoints parse). Problems are recorded in config with file and line. config
//  may be NULL (defaults). Release out with nat_service_config_clear unless
//  nat_service_new took it.
void nat_service_check_config (bus_config_t *config, nat_service_config_t *out);
//  Releases what a checked config holds (the peer list, the relay CA).
void nat_service_config_clear (nat_service_config_t *self);

typedef struct _nat_service_t nat_service_t;

//  Takes the checked config (its peer list becomes the service's), opens the
//  UDP socket and the pipes, registers the handlers and hangs everything on the
//  service's loop. NULL with a reason in err (the port in use...).
nat_service_t *nat_service_new (bus_service_t *svc, nat_service_config_t *config, char *err, size_t err_size);
//  Takes everything off the loop and closes the socket and the pipes.
void nat_service_destroy (nat_service_t **self_p);

//  The bound UDP port.
uint16_t nat_service_port (nat_service_t *self);

//  The service as a program (services/nat/main.c): config check, privileges
//  (none but CAP_NET_BIND_SERVICE for a port below 1024; sandboxed), setup.
extern const bus_service_def_t nat_service_def;

void nat_service_test (bool verbose);
#endif
