/*  bus_client: synchronous request/reply for tools and tests. */
#include "bus_client.h"
#include "bus_endpoint.h"

#include <assert.h>
#include <errno.h>
#include <sys/random.h>
#include <sys/stat.h>

struct _bus_client_t {
    zsock_t *sock;
    char identity [BUS_NAME_MAX + 1];
    uint64_t next_corr;
};

bus_client_t *
bus_client_new (const char *endpoint, const char *identity, char *err, size_t errsize)
{
    if (strncmp (endpoint, "ipc://", 6) == 0) {
        struct stat st;
        if (stat (endpoint + 6, &st) || !S_ISSOCK (st.st_mode)) {
            snprintf (err, errsize, "no socket at %s", endpoint + 6);
            return NULL;
        }
    }
    bus_client_t *self = (bus_client_t *) zmalloc (sizeof (bus_client_t));
    assert (self);
    if (identity && bus_name_valid (identity))
        snprintf (self->identity, sizeof self->identity, "%s", identity);
    else
        snprintf (self->identity, sizeof self->identity, "client-%d", (int) getpid ());
    self->sock = zsock_new (ZMQ_DEALER);
    assert (self->sock);
    zsock_set_identity (self->sock, self->identity);
    zsock_set_linger (self->sock, 0);
    zsock_set_sndtimeo (self->sock, 1000);
    if (zsock_connect (self->sock, "%s", endpoint)) {
        snprintf (err, errsize, "cannot connect to %s", endpoint);
        bus_client_destroy (&self);
        return NULL;
    }
    //  A random start keeps correlation ids of different clients apart
    if (getrandom (&self->next_corr, sizeof self->next_corr, 0) != sizeof self->next_corr)
        self->next_corr = (uint64_t) getpid () << 32;
    self->next_corr |= 1;
    return self;
}

void
bus_client_destroy (bus_client_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        zsock_destroy (&(*self_p)->sock);
        free (*self_p);
        *self_p = NULL;
    }
}

static int
s_send (bus_client_t *self, const char *to, const bus_schema_t *schema, const void *msg, uint64_t corr)
{
    char err [160];
    bus_envelope_t *env = bus_envelope_new (to, self->identity, schema->type, corr);
    int rc = bus_envelope_set_msg (env, schema, msg, err, sizeof err);
    if (rc == 0) {
        uint8_t *data;
        size_t size;
        bus_envelope_encode (env, &data, &size);
        rc = zmq_send (zsock_resolve (self->sock), data, size, 0) < 0 ? -1 : 0;
        free (data);
    }
    bus_envelope_destroy (&env);
    return rc;
}

int
bus_client_send (bus_client_t *self, const char *to, const bus_schema_t *schema, const void *msg)
{
    return s_send (self, to, schema, msg, 0);
}

bus_envelope_t *
bus_client_recv (bus_client_t *self, int timeout_ms)
{
    zmq_pollitem_t item = { zsock_resolve (self->sock), 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, timeout_ms) <= 0)
        return NULL;
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    bus_envelope_t *env = NULL;
    if (zmq_msg_recv (&frame, zsock_resolve (self->sock), ZMQ_DONTWAIT) >= 0)
        env = bus_envelope_decode ((const uint8_t *) zmq_msg_data (&frame), zmq_msg_size (&frame), NULL, 0);
    zmq_msg_close (&frame);
    return env;
}

bus_envelope_t *
bus_client_request (bus_client_t *self, const char *to, const bus_schema_t *schema,
                    const void *msg, int timeout_ms, char *err, size_t errsize)
{
    uint64_t corr = self->next_corr++;
    if (s_send (self, to, schema, msg, corr)) {
        snprintf (err, errsize, "could not send %s to %s", schema->type, to);
        return NULL;
    }
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            break;
        bus_envelope_t *reply = bus_client_recv (self, (int) left);
        if (!reply)
            continue;
        if (bus_envelope_corr (reply) != corr) {
            bus_envelope_destroy (&reply);      //  a late reply to an earlier request
            continue;
        }
        if (strcmp (bus_envelope_type (reply), "bus.error") == 0) {
            bus_error_t error;
            if (bus_envelope_get_msg (reply, &bus_error_schema, &error, err, errsize) == 0)
                snprintf (err, errsize, "%s", error.message);
            bus_envelope_destroy (&reply);
            return NULL;
        }
        return reply;
    }
    snprintf (err, errsize, "no answer within %d ms", timeout_ms);
    return NULL;
}

void
bus_client_test (bool verbose)
{
    char err [160];
    char dir [] = "/tmp/bus-client-test-XXXXXX";
    assert (mkdtemp (dir));
    char endpoint [BUS_PATH_MAX];
    assert (bus_endpoint (endpoint, sizeof endpoint, dir, "control") == 0);
    //  Nothing listening: a clear error, at once
    assert (bus_client_new (endpoint, "ctl", err, sizeof err) == NULL);
    assert (strstr (err, "no socket at"));

    //  A ROUTER that answers like bifrostd's control socket
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (zsock_bind (router, "%s", endpoint) == 0);
    bus_client_t *client = bus_client_new (endpoint, "ctl", err, sizeof err);
    assert (client);
    sup_status_t status = { .service = "" };
    //  No answer: times out with a clear message
    bus_envelope_t *reply = bus_client_request (client, "", &sup_status_schema, &status, 100, err, sizeof err);
    assert (reply == NULL && strstr (err, "no answer"));
    zmsg_t *request = zmsg_recv (router);      //  drain that first request
    zmsg_destroy (&request);

    //  Answer the next one in a thread-free way: send, then serve, then receive
    assert (bus_client_send (client, "", &sup_status_schema, &status) == 0);
    request = zmsg_recv (router);
    assert (zmsg_size (request) == 2);
    zframe_t *id = zmsg_pop (request);
    zframe_t *body = zmsg_pop (request);
    bus_envelope_t *env = bus_envelope_decode (zframe_data (body), zframe_size (body), err, sizeof err);
    assert (env && strcmp (bus_envelope_from (env), "ctl") == 0);
    bus_envelope_t *answer = bus_envelope_new ("ctl", "", "bus.error", bus_envelope_corr (env));
    bus_error_t error = { .code = 404, .message = "no such service: x" };
    assert (bus_envelope_set_msg (answer, &bus_error_schema, &error, err, sizeof err) == 0);
    uint8_t *data;
    size_t size;
    bus_envelope_encode (answer, &data, &size);
    zframe_send (&id, router, ZFRAME_MORE);
    zmq_send (zsock_resolve (router), data, size, 0);
    free (data);
    bus_envelope_t *got = bus_client_recv (client, 1000);
    assert (got && strcmp (bus_envelope_type (got), "bus.error") == 0);
    bus_envelope_destroy (&got);
    bus_envelope_destroy (&answer);
    bus_envelope_destroy (&env);
    zframe_destroy (&body);
    zmsg_destroy (&request);

    bus_client_destroy (&client);
    zsock_destroy (&router);
    char path [BUS_PATH_MAX];
    snprintf (path, sizeof path, "%s/control.ipc", dir);
    unlink (path);
    rmdir (dir);
    if (verbose)
        printf ("bus_client: ok\n");
}
