/*  bus_testbed: an in-process bus for the services' self tests: a fresh run
    directory under /tmp, the broker on it (as the supervisor's bus service
    would be), clients on it, and at the end the broker stopped and what the bus
    left in the directory removed.

    Why: every service's self test runs its service on a real broker; the setup
    and teardown (mkdtemp, the broker actor, an endpoint and a client, the run
    directory's sockets and pipe directories) were written once per test. */
#ifndef BUS_TESTBED_H_INCLUDED
#define BUS_TESTBED_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include "bus_client.h"

typedef struct _bus_testbed_t bus_testbed_t;

//  A run directory /tmp/NAME-XXXXXX and a broker on it; asserts on failure
//  (a test cannot go on without its bus).
bus_testbed_t *bus_testbed_new (const char *name);
//  Stops the broker, then removes the bus's sockets and the services' empty
//  pipe directories, and the run directory when nothing else is left in it.
//  Stop the services and clients on it first.
void bus_testbed_destroy (bus_testbed_t **self_p);
//  The run directory, for bus_service_new, bus_pipe_new and the like
const char *bus_testbed_dir (bus_testbed_t *self);
//  A client of the broker named `name` (request/reply as bifrostctl does);
//  asserts on failure. The caller destroys it.
bus_client_t *bus_testbed_client (bus_testbed_t *self, const char *name);

void bus_testbed_test (bool verbose);
#endif
