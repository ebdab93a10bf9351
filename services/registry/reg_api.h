/*  reg_api: every REST route of the registry as one function from a request
    (method, path, bearer token, body, time) to a response (status, JSON body),
    with no HTTP library in sight, so the whole API is tested in-process and the
    transport (reg_http, libwebsockets) stays a thin shell. It owns the store,
    the credentials, the address pools, the TURN config, the relay grants and
    the event fan-out, and runs the lease sweep. Routes and status codes: docs/registry-api.md. */
#ifndef REG_API_H_INCLUDED
#define REG_API_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "reg_events.h"
#include "reg_turn.h"
#include "reg_relay.h"
#include "reg_status.h"

typedef struct {
    const char *database;       //  SQLite file
    const char *admin_token;    //  NULL/"": admin routes always 401
    const char *default_cidr;   //  for networks created without one
    int64_t heartbeat_s;        //  default network settings
    int64_t offline_s;
    int64_t expire_s;
    size_t queue_max;           //  per WebSocket subscriber
    size_t registrations_max;   //  per client per minute (0: 256)
    reg_turn_config_t turn;
    reg_relay_config_t relay;
} reg_api_config_t;

typedef struct {
    const char *method;         //  "GET", "POST", "PUT", "DELETE", ...
    const char *path;           //  without the query string
    const char *bearer;         //  the Authorization: Bearer value, or NULL
    const void *body;
    size_t body_size;
    int64_t now_ms;             //  wall clock, ms since the epoch
    const char *client;         //  the client's address as the TCP connection shows it
                                //  (IPv4 or IPv6 text, no port), or NULL: unknown
} reg_request_t;

typedef struct {
    int status;
    char *body;                 //  JSON text (malloc'd) or NULL for no body
} reg_response_t;

typedef struct _reg_api_t reg_api_t;

reg_api_t *reg_api_new (const reg_api_config_t *config, char *err, size_t errsize);
void reg_api_destroy (reg_api_t **self_p);
reg_events_t *reg_api_events (reg_api_t *self);
//  The relay grants (for the log at start: reg_relay_off_reason).
reg_relay_t *reg_api_relay (reg_api_t *self);
//  Its numbers for registry.status (taken in the sweep: reg_status.h)
reg_status_t *reg_api_status (reg_api_t *self);

//  Runs one request. resp->body must be freed with reg_response_clear.
void reg_api_handle (reg_api_t *self, const reg_request_t *req, reg_response_t *resp);
void reg_response_clear (reg_response_t *resp);

//  Authorizes a WebSocket on .../networks/{id}/events, or the admin's
//  /api/v1/mesh/events (every network: network is REG_EVENTS_ALL), by bearer
//  token or by a ticket (POST /api/v1/mesh/tickets, used up here; NULL: none).
//  Returns 0 and fills network and peer ("" for an admin), or the HTTP status
//  to refuse with.
int reg_api_events_auth (reg_api_t *self, const char *path, const char *bearer, const char *ticket,
                         int64_t now_ms, char network [64], char peer [32]);

//  Marks silent peers offline and removes expired ones, with events. Returns
//  the number of peers changed.
int reg_api_sweep (reg_api_t *self, int64_t now_ms);

void reg_api_test (bool verbose);
#endif
