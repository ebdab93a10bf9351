/*  bus_client: a synchronous client for command-line tools and tests: connect to
    a ROUTER (the broker's bus.ipc or bifrostd's control.ipc), send one request,
    wait for its reply with a deadline. */
#ifndef BUS_CLIENT_H_INCLUDED
#define BUS_CLIENT_H_INCLUDED

#include <czmq.h>
#include "bus_envelope.h"

typedef struct _bus_client_t bus_client_t;

//  endpoint: e.g. "ipc:///run/bifrost/control.ipc"; identity: a valid bus name
//  (NULL: "client-<pid>"). Returns NULL and err when the ipc socket file does not
//  exist (nothing is listening there).
bus_client_t *bus_client_new (const char *endpoint, const char *identity, char *err, size_t errsize);
void bus_client_destroy (bus_client_t **self_p);

//  Sends a request and waits up to timeout_ms for the reply with the same corr.
//  Returns the reply (caller destroys) or NULL with err ("no answer within N ms",
//  or the text of a bus.error reply).
bus_envelope_t *bus_client_request (bus_client_t *self, const char *to, const bus_schema_t *schema,
                                    const void *msg, int timeout_ms, char *err, size_t errsize);
//  Sends without waiting.
int bus_client_send (bus_client_t *self, const char *to, const bus_schema_t *schema, const void *msg);
//  Receives the next envelope, NULL after timeout_ms.
bus_envelope_t *bus_client_recv (bus_client_t *self, int timeout_ms);

void bus_client_test (bool verbose);
#endif
