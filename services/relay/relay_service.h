/*  relay_service: one relay worker as a bus service (bifrost-relay; bifrostd runs
    `instances = N` of them). It owns a relay_worker on the shared UDP port and
    adds what a process under bifrostd needs around it: the config (the `relay`
    group, declared once in schemas/config/relay.def with the registry), the
    counters on the bus (`relay.status`), and the steering of the port by network
    over however many workers are alive now.

    Why the workers count each other over the bus instead of asking bifrostd:
    the count must follow kill -9, restarts and `bifrostctl scale` within the 1 s
    resume budget, and every worker must reach the same number. Each worker
    announces itself every 100 ms (`relay.worker`); a worker not heard for 300 ms
    is gone; a stopping one says so. Any change re-attaches the steering program
    with the new count (the last attach wins, and all workers compute the same
    count). docs/relay.md, "Workers".

    Why 100/300 ms and not 200/700: until the others count a killed worker gone,
    the program still divides by the old count, and the index it left empty (when
    it was not the last socket of the group) falls back to the kernel's 4-tuple
    hash, which can split the two peers of a network over two workers. Such a
    pair resumes only after the count drops plus one REGISTER refresh (500 ms):
    with 200/700 ms, 4 workers and a young worker killed (restart backoff 1 s),
    tests/relay_probe measured gaps of 910-930 ms in 3 of 4 runs; with 100/300 ms,
    at most 470 ms in 5 runs (the count dropped 286-366 ms after the kill). A
    late announcement (three in a row) only costs a re-steer, and the bus carries
    N announcements of 20 bytes per 100 ms. */
#ifndef RELAY_SERVICE_H_INCLUDED
#define RELAY_SERVICE_H_INCLUDED

#include "bus_service.h"
#include "bus_config_schema.h"
#include "relay_cred.h"

#define RELAY_SERVICE_WORKERS_MAX   64          //  bifrostd's instance limit
#define RELAY_SERVICE_ANNOUNCE_MS   100
#define RELAY_SERVICE_GONE_MS       300

typedef struct {
    bus_cfg_relay_t relay;                      //  as checked
    uint8_t secret [RELAY_CRED_SECRET_SIZE];    //  relay.secret, decoded
    char bind_ip [64];                          //  relay.listen, split
    uint16_t port;
    //  WebSocket over TLS (relay_wss): on when tls_cert and tls_key are set.
    //  Both files are read here, before the worker drops privileges and is
    //  sandboxed; the key lives in sodium_malloc memory and is wiped by clear
    bool tls;
    char tls_ip [64];                           //  relay.tls_listen, split
    uint16_t tls_port;
    char *tls_cert_pem;                         //  malloc
    size_t tls_cert_size;
    char *tls_key_pem;                          //  sodium_malloc
    size_t tls_key_size;
} relay_service_config_t;

typedef struct _relay_service_t relay_service_t;

//  Reads and checks the relay group (errors recorded on config)
void relay_service_check_config (bus_config_t *config, relay_service_config_t *out);
void relay_service_config_clear (relay_service_config_t *self);

//  Binds the port and joins the loop; NULL with err when it cannot.
relay_service_t *relay_service_new (bus_service_t *svc, relay_service_config_t *config,
                                    char *err, size_t err_size);
void relay_service_destroy (relay_service_t **self_p);

//  The workers it steers over now (tests).
unsigned relay_service_workers (relay_service_t *self);

//  The program: bus_service_main (&relay_service_def, argc, argv)
extern const bus_service_def_t relay_service_def;

void relay_service_test (bool verbose);

#endif
