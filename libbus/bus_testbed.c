/*  bus_testbed: an in-process bus for self tests (bus_testbed.h). */
#include "bus_testbed.h"
#include "bus_broker.h"
#include "bus_endpoint.h"
#include "bus_log.h"
#include "bus_service.h"
#include <assert.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct _bus_testbed_t {
    char dir [BUS_PATH_MAX];
    zactor_t *broker;
};

bus_testbed_t *
bus_testbed_new (const char *name)
{
    bus_testbed_t *self = (bus_testbed_t *) calloc (1, sizeof *self);
    assert (self);
    int n = snprintf (self->dir, sizeof self->dir, "/tmp/%s-XXXXXX", name);
    assert (n > 0 && (size_t) n < sizeof self->dir);
    assert (mkdtemp (self->dir));
    self->broker = zactor_new (bus_broker_actor, self->dir);
    assert (self->broker);
    return self;
}

void
bus_testbed_destroy (bus_testbed_t **self_p)
{
    assert (self_p);
    bus_testbed_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->broker);
    bus_run_dir_remove (self->dir);
    free (self);
    *self_p = NULL;
}

const char *
bus_testbed_dir (bus_testbed_t *self)
{
    assert (self);
    return self->dir;
}

bus_client_t *
bus_testbed_client (bus_testbed_t *self, const char *name)
{
    assert (self);
    char endpoint [BUS_PATH_MAX], err [300];
    assert (bus_endpoint (endpoint, sizeof endpoint, self->dir, "bus") == 0);
    bus_client_t *client = bus_client_new (endpoint, name, err, sizeof err);
    if (!client)
        fprintf (stderr, "bus_testbed_client: %s\n", err);
    assert (client);
    return client;
}

//  Self test: a service on the testbed answers a client's bus.echo through
//  the broker, and nothing of the bus is left in /tmp afterwards
void
bus_testbed_test (bool verbose)
{
    if (!verbose)
        bus_log_set_level (BUS_LOG_WARN);
    bus_testbed_t *bed = bus_testbed_new ("bus-testbed-test");
    char dir [BUS_PATH_MAX];
    snprintf (dir, sizeof dir, "%s", bus_testbed_dir (bed));
    struct stat st;
    assert (stat (dir, &st) == 0 && S_ISDIR (st.st_mode));
    bus_service_t *svc = bus_service_new ("echo", NULL, dir);
    assert (svc);
    zactor_t *actor = zactor_new (bus_service_actor, svc);
    assert (actor);
    bus_client_t *client = bus_testbed_client (bed, "testbed-test");
    char err [300];
    bus_echo_t echo = { .seq = 7 }, back;
    bus_envelope_t *env = NULL;
    for (int i = 0; i < 100 && !env; i++) {     //  until the service said hello
        env = bus_client_request (client, "echo", &bus_echo_schema, &echo, 200, err, sizeof err);
        if (!env)
            zclock_sleep (20);
    }
    assert (env);
    assert (bus_envelope_get_msg (env, &bus_echo_schema, &back, err, sizeof err) == 0 && back.seq == 7);
    bus_envelope_destroy (&env);
    bus_client_destroy (&client);
    zactor_destroy (&actor);
    bus_service_destroy (&svc);
    bus_testbed_destroy (&bed);
    assert (bed == NULL);
    bus_testbed_destroy (&bed);                 //  twice: nothing happens
    assert (stat (dir, &st) == -1);
    if (verbose)
        printf ("bus_testbed: a service answered through the broker in %s, removed after\n", dir);
}
