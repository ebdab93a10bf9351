/*  bus_broker: the `bus` service. Routes control messages between services by
    service name (load-balanced round robin across live instances) or by instance,
    fans events out, and mirrors every message and event to the tap socket when
    somebody listens.

    Sockets (see bus_endpoint.h): ROUTER on bus.ipc with ROUTER_MANDATORY and
    ROUTER_HANDOVER (a restarted service takes its identity back at once), XPUB on
    events.ipc, XPUB on tap.ipc with XPUB_VERBOSER so the broker knows whether
    anyone is subscribed and copies nothing when nobody is.

    The broker trusts no one: `from` is overwritten with the sender's routing id,
    undecodable frames are dropped and counted, undeliverable requests are answered
    with bus.error 404. A service name is bound to the process that registered
    it (the kernel's SO_PEERCRED pid, libzmq's Peer-Address), a protected name
    to its program (bus_policy.h), and a message only some may send
    (schemas/senders.def) from anyone else is dropped and counted (`refused`),
    a request answered with bus.error 403. */
#ifndef BUS_BROKER_H_INCLUDED
#define BUS_BROKER_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include "bus_loop.h"
#include <stdint.h>

typedef struct _bus_broker_t bus_broker_t;

//  Binds the broker's sockets in run_dir. NULL (with a logged reason) on failure.
bus_broker_t *bus_broker_new (const char *run_dir);
void bus_broker_destroy (bus_broker_t **self_p);

//  Adds the broker's readers to loop (the bus service's loop).
int bus_broker_attach (bus_broker_t *self, bus_loop_t *loop);
//  The random id of this broker run, sent in every bus.welcome.
uint64_t bus_broker_epoch (bus_broker_t *self);
//  Instances expire after 10 missed hellos of this interval.
void bus_broker_set_heartbeat (bus_broker_t *self, int interval_ms);

typedef struct {
    uint64_t routed, events, tapped, dropped, bad_input, unroutable;
    uint64_t refused;           //  by the sender policy (schemas/senders.def)
    uint64_t held;              //  sent before the sender's hello, held for it
    uint32_t instances, tap_subscribers;
} bus_broker_stats_t;
void bus_broker_stats (bus_broker_t *self, bus_broker_stats_t *stats);

//  zactor body for tests: args is the run_dir string.
void bus_broker_actor (zsock_t *pipe, void *args);

void bus_broker_test (bool verbose);
#endif
