/*  reg_status: the registry's numbers for bifrost-metrics (why: reg_status.h). */
#include "reg_status.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct _reg_status_t {
    pthread_mutex_t lock;
    registry_status_reply_t snapshot;   //  under lock
    atomic_uint_fast64_t registrations;
    int64_t taken_ms;                   //  the HTTP thread's
};

reg_status_t *
reg_status_new (void)
{
    reg_status_t *self = (reg_status_t *) calloc (1, sizeof *self);
    assert (self);
    pthread_mutex_init (&self->lock, NULL);
    self->taken_ms = -1;
    return self;
}

void
reg_status_destroy (reg_status_t **self_p)
{
    assert (self_p);
    reg_status_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

void
reg_status_registered (reg_status_t *self)
{
    atomic_fetch_add (&self->registrations, 1);
}

typedef struct {
    registry_status_reply_t *out;
    reg_store_t *store;
    reg_events_t *events;
} s_take_t;

static void
s_network (const reg_network_t *network, void *arg)
{
    s_take_t *take = (s_take_t *) arg;
    registry_status_reply_t *out = take->out;
    out->networks_total++;
    if (take->events)
        out->websocket_clients += (uint32_t) reg_events_count (take->events, network->id);
    if (out->networks_count >= sizeof out->networks / sizeof out->networks [0])
        return;
    registry_status_network_t *row = &out->networks [out->networks_count++];
    snprintf (row->network, sizeof row->network, "%s", network->id);
    row->peers = (uint32_t) reg_store_peer_count (take->store, network->id);
}

void
reg_status_take (reg_status_t *self, reg_store_t *store, reg_events_t *events, int64_t now_ms)
{
    if (self->taken_ms >= 0 && now_ms - self->taken_ms < 1000)
        return;
    self->taken_ms = now_ms;
    registry_status_reply_t *fresh = (registry_status_reply_t *) calloc (1, sizeof *fresh);
    assert (fresh);
    s_take_t take = { fresh, store, events };
    reg_store_network_each (store, s_network, &take);
    //  The status pages' streams of every network count too
    if (events)
        fresh->websocket_clients += (uint32_t) reg_events_count (events, REG_EVENTS_ALL);
    pthread_mutex_lock (&self->lock);
    self->snapshot = *fresh;
    pthread_mutex_unlock (&self->lock);
    free (fresh);
}

void
reg_status_read (reg_status_t *self, registry_status_reply_t *out)
{
    pthread_mutex_lock (&self->lock);
    *out = self->snapshot;
    pthread_mutex_unlock (&self->lock);
    out->registrations = atomic_load (&self->registrations);
}

static void
s_on_status (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    registry_status_reply_t *reply = (registry_status_reply_t *) calloc (1, sizeof *reply);
    assert (reply);
    reg_status_read ((reg_status_t *) arg, reply);
    bus_service_reply (svc, env, &registry_status_reply_schema, reply);
    free (reply);
}

void
reg_status_attach (reg_status_t *self, bus_service_t *svc)
{
    bus_service_handle (svc, "registry.status", s_on_status, self);
}

//  ---------------------------------------------------------------------------
//  Self test: a real store with two networks, one peer-less; the take is
//  throttled to a second; registrations count at once

void
reg_status_test (bool verbose)
{
    char dir [] = "/tmp/reg-status-test-XXXXXX";
    assert (mkdtemp (dir));
    char path [128], err [200];
    snprintf (path, sizeof path, "%s/reg.db", dir);
    reg_store_t *store = reg_store_new (path, err, sizeof err);
    assert (store);
    reg_network_t net = { .id = "alpha", .name = "a", .cidr = "10.9.0.0/24", .heartbeat_s = 30 };
    assert (reg_store_network_insert (store, &net) == REG_STORE_OK);
    reg_status_t *self = reg_status_new ();
    registry_status_reply_t *out = (registry_status_reply_t *) calloc (1, sizeof *out);
    assert (out);
    reg_status_take (self, store, NULL, 1000);
    reg_status_read (self, out);
    assert (out->networks_total == 1 && out->networks_count == 1 && streq (out->networks [0].network, "alpha"));
    assert (out->networks [0].peers == 0 && out->registrations == 0);
    snprintf (net.id, sizeof net.id, "beta");
    assert (reg_store_network_insert (store, &net) == REG_STORE_OK);
    reg_status_take (self, store, NULL, 1500);                //  too soon
    reg_status_registered (self);
    reg_status_read (self, out);
    assert (out->networks_total == 1 && out->registrations == 1);
    reg_status_take (self, store, NULL, 2000);
    reg_status_read (self, out);
    assert (out->networks_total == 2);
    free (out);
    reg_status_destroy (&self);
    reg_store_destroy (&store);
    char cmd [160];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    assert (system (cmd) == 0);
    if (verbose)
        printf ("reg_status: ok\n");
}
