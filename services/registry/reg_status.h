/*  reg_status: the registry's numbers for `registry.status` (schemas/
    registry_bus.def), asked by bifrost-metrics: peers per network,
    registrations since start, WebSocket event clients. The api (the
    database, the event subscribers) belongs to reg_http's service thread
    alone, so that thread takes the numbers at most once a second, from
    reg_api_sweep, into a snapshot under a mutex; the bus handler on the
    service's loop answers from the snapshot and never touches the api. */
#ifndef REG_STATUS_H_INCLUDED
#define REG_STATUS_H_INCLUDED

#include "bus_service.h"
#include "reg_store.h"
#include "reg_events.h"

typedef struct _reg_status_t reg_status_t;

reg_status_t *reg_status_new (void);
void reg_status_destroy (reg_status_t **self_p);
//  The HTTP thread: counts registrations (one accepted)
void reg_status_registered (reg_status_t *self);
//  The HTTP thread: takes the numbers when the last take is a second old
void reg_status_take (reg_status_t *self, reg_store_t *store, reg_events_t *events, int64_t now_ms);
//  Any thread: the snapshot
void reg_status_read (reg_status_t *self, registry_status_reply_t *out);
//  Answers registry.status on svc's loop from the snapshot
void reg_status_attach (reg_status_t *self, bus_service_t *svc);

void reg_status_test (bool verbose);
#endif
