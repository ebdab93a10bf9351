/*  crypto_service: the crypto process's logic on a bus_service loop.

    Wraps crypto_node (keys, sessions, every send/receive decision) with the four
    data pipes of docs/packet-path.md and the bus:

        device --dev-crypto--> encrypt (or queue + handshake) --crypto-nat--> nat
        nat --nat-crypto--> handshake / decrypt + anti-spoof --crypto-dev--> device

    It tells nat where each peer is (ENDPOINT records, only for authenticated
    packets), runs the handshake retry, keepalive, rekey and key expiry timers,
    answers `crypto.key` and `crypto.status`, publishes `crypto.peer` and starts a
    handshake on `nat.dial`. A class, not main's statics, so a test can run the
    whole service in-process. It opens no network socket; the private key stays
    inside crypto_identity and is never logged.

    nat may lend it the UDP socket (it comes with a batch on nat-crypto, and
    goes when nat's link ends): then the data datagrams of every peer nat gave a
    ROUTE go out on it straight from here, one sendmmsg per batch, and SENT
    records tell nat what went. crypto never reads from that socket: input from
    the internet still reaches only nat. */
#ifndef CRYPTO_SERVICE_H_INCLUDED
#define CRYPTO_SERVICE_H_INCLUDED

#include "bus_service.h"
#include "crypto_session.h"
#include "node_peers.h"

//  The pipe names (PIPE_*), record flags (PIPE_FLAG_*) and tags are declared once,
//  for every service, in schemas/pipes.def (schemas/pipes.h)
#define CRYPTO_QUEUE_MAX        16              //  packets held per peer while its handshake runs
#define CRYPTO_TICK_MS          100

//  crypto's config, checked once by crypto_service_check_config and handed to
//  setup (crypto_service_new), which reads nothing again.
typedef struct {
    char key_file [256];
    bool has_psk;
    uint8_t psk [32];                   //  wiped by crypto_service_new after use
    crypto_session_config_t session;    //  from the `crypto` group
    bus_cfg_connection_t connection;    //  only keepalive_interval is crypto's (nat checks the rest)
    bool layer2;                        //  device.type is "tap": packets are frames
    uint32_t flood_rate;                //  routing.flood_packets_per_second: forwarding budget per origin
    node_peers_t *peers;                //  the peer list; crypto_service_new takes it
} crypto_service_config_t;

//  Reads key_file, psk, the `crypto` group, connection.keepalive_interval and
//  the peers as crypto needs them; problems are recorded in config with file
//  and line. config may be NULL (defaults); out may be NULL, else release it
//  with crypto_service_config_clear unless crypto_service_new took it. An
//  existing key file is checked (mode, format) and must not be one of the
//  peers' keys; a missing one is fine (created at start).
void crypto_service_check_config (bus_config_t *config, crypto_service_config_t *out);
//  Releases what a checked config holds (the peer list) and wipes the psk.
void crypto_service_config_clear (crypto_service_config_t *self);

typedef struct _crypto_service_t crypto_service_t;

//  Takes the checked config (its peer list becomes the service's, its psk is
//  wiped), loads or creates the key file (mode 0600, directory 0700), opens the
//  pipes, registers the handlers and the timer on the service's loop. NULL with
//  a reason in err.
crypto_service_t *crypto_service_new (bus_service_t *svc, crypto_service_config_t *config,
                                      char *err, size_t errsize);
void crypto_service_destroy (crypto_service_t **self_p);

//  This node's public key, base64 (44 characters)
const char *crypto_service_public_key (crypto_service_t *self);

//  The service as a part of a program: bifrost-crypto runs it alone, bifrost-tunnel
//  with the other half of the tunnel on one loop (services/tunnel/).
extern const bus_service_def_t crypto_service_def;

void crypto_service_test (bool verbose);
#endif
