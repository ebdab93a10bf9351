/*  sup_control: bifrostd's control socket and protocol, kept apart from the
    children (sup_server) so that every request is checked by one table and
    one function: decode, find the service, check the values, refuse while
    stopping, then act. */
#include "sup_control.h"
#include "bus_endpoint.h"
#include "bus_envelope.h"
#include "bus_log.h"
#include "bus_peer.h"
#include "bus_identity.h"

#include <assert.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>

#define S_REQUEST_MAX   4096            //  bytes; the largest request is far smaller
#define S_BATCH         64              //  requests per wakeup

struct _sup_control_t {
    sup_server_t *server;               //  not ours
    zsock_t *sock;
    char path [BUS_PATH_MAX];           //  the socket file, removed at the end
    uint64_t refused;                   //  requests from a process without root's powers
};

//  A decoded request, whichever its type
typedef union {
    sup_status_t status;
    sup_scale_t scale;
    sup_restart_t restart;
    sup_stop_t stop;
} s_msg_t;

//  What one request type needs before the server is asked.
typedef struct {
    const bus_schema_t *schema;
    //  Offset of the service name in the message, or SIZE_MAX when none
    size_t service;
    bool service_optional;              //  empty means every service
    bool configured;                    //  only a service of the current config
    bool refused_while_stopping;        //  503 once bifrostd is stopping
    //  Checks the values (after the service): 0, or an error with err set
    int (*check) (const s_msg_t *msg, char *err, size_t errsize);
    //  Asks the server; fills reply (of reply_schema)
    void (*act) (sup_server_t *server, const s_msg_t *msg, void *reply);
    const bus_schema_t *reply_schema;
} s_request_t;

static int
s_check_scale (const s_msg_t *msg, char *err, size_t errsize)
{
    if (msg->scale.instances <= SUP_INSTANCES_MAX)
        return 0;
    snprintf (err, errsize, "instance count must be 0 to %d, not %u",
              SUP_INSTANCES_MAX, msg->scale.instances);
    return -1;
}

static void
s_status (sup_server_t *server, const s_msg_t *msg, void *reply)
{
    sup_server_status (server, msg->status.service, (sup_status_reply_t *) reply);
}

static void
s_scale (sup_server_t *server, const s_msg_t *msg, void *reply)
{
    sup_server_scale (server, msg->scale.service, msg->scale.instances, (sup_ok_t *) reply);
}

static void
s_restart (sup_server_t *server, const s_msg_t *msg, void *reply)
{
    sup_server_restart (server, msg->restart.service, (sup_ok_t *) reply);
}

static void
s_stop (sup_server_t *server, const s_msg_t *msg, void *reply)
{
    sup_server_stop (server, msg->stop.reason, (sup_ok_t *) reply);
}

static const s_request_t s_requests [] = {
    { &sup_status_schema, offsetof (sup_status_t, service), true, false, false,
      NULL, s_status, &sup_status_reply_schema },
    { &sup_scale_schema, offsetof (sup_scale_t, service), false, true, true,
      s_check_scale, s_scale, &sup_ok_schema },
    { &sup_restart_schema, offsetof (sup_restart_t, service), false, true, true,
      NULL, s_restart, &sup_ok_schema },
    { &sup_stop_schema, SIZE_MAX, false, false, false,
      NULL, s_stop, &sup_ok_schema },
};

sup_control_t *
sup_control_new (sup_server_t *server, const char *endpoint, char *err, size_t errsize)
{
    assert (server && endpoint);
    assert (strncmp (endpoint, "ipc://", 6) == 0);
    sup_control_t *self = (sup_control_t *) zmalloc (sizeof (sup_control_t));
    assert (self);
    self->server = server;
    snprintf (self->path, sizeof self->path, "%s", endpoint + 6);
    unlink (self->path);                //  stale, from a bifrostd that was killed
    self->sock = zsock_new (ZMQ_ROUTER);
    assert (self->sock);
    zsock_set_linger (self->sock, 0);
    zsock_set_maxmsgsize (self->sock, S_REQUEST_MAX);
    zsock_set_router_mandatory (self->sock, 1);
    zsock_set_sndtimeo (self->sock, 100);
    if (zsock_bind (self->sock, "%s", endpoint) < 0) {
        snprintf (err, errsize, "cannot bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        self->path [0] = 0;
        sup_control_destroy (&self);
        return NULL;
    }
    //  bifrost-metrics (its own uid) must reach the socket for sup.status;
    //  every other request stays root's (s_from_root, per message)
    if (bus_identity_share (self->path, false))
        bus_warn ("control: cannot share %s with the services' group: %s", self->path, strerror (errno));
    return self;
}

void
sup_control_destroy (sup_control_t **self_p)
{
    assert (self_p);
    sup_control_t *self = *self_p;
    if (!self)
        return;
    //  The answer to sup.stop may still sit in the socket's queue: give it a
    //  moment to leave (linger is 0 while running, so a dead client never
    //  holds bifrostd up)
    if (self->sock)
        zsock_set_linger (self->sock, 200);
    zsock_destroy (&self->sock);
    if (self->path [0])
        unlink (self->path);
    free (self);
    *self_p = NULL;
}

zsock_t *
sup_control_sock (sup_control_t *self)
{
    return self->sock;
}

//  Sends msg (of schema) as the answer to request; consumes routing.
static void
s_send_reply (sup_control_t *self, zframe_t **routing_p, bus_envelope_t *request,
              const bus_schema_t *schema, const void *msg)
{
    char err [160];
    bus_envelope_t *reply = bus_envelope_new (bus_envelope_from (request), "bifrostd", schema->type,
                                              bus_envelope_corr (request));
    if (bus_envelope_set_msg (reply, schema, msg, err, sizeof err) == 0) {
        uint8_t *data;
        size_t size;
        if (bus_envelope_encode (reply, &data, &size) == 0) {
            zmsg_t *out = zmsg_new ();
            zmsg_append (out, routing_p);
            zmsg_addmem (out, data, size);
            zmsg_send (&out, self->sock);
            free (data);
        }
    }
    else
        bus_error ("cannot encode %s: %s", schema->type, err);
    bus_envelope_destroy (&reply);
    zframe_destroy (routing_p);
}

static void
s_send_error (sup_control_t *self, zframe_t **routing_p, bus_envelope_t *request, uint32_t code,
              const char *fmt, ...) __attribute__ ((format (printf, 5, 6)));

static void
s_send_error (sup_control_t *self, zframe_t **routing_p, bus_envelope_t *request, uint32_t code,
              const char *fmt, ...)
{
    bus_error_t error = { .code = code };
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (error.message, sizeof error.message, fmt, ap);
    va_end (ap);
    s_send_reply (self, routing_p, request, &bus_error_schema, &error);
}

//  Checks one request as its table entry says, then has the server act and
//  answers; every refusal is a bus.error with its code. Consumes routing.
static void
s_handle_request (sup_control_t *self, zframe_t **routing_p, bus_envelope_t *request)
{
    const char *type = bus_envelope_type (request);
    const s_request_t *req = NULL;
    for (size_t i = 0; i < sizeof s_requests / sizeof s_requests [0] && !req; i++)
        if (strcmp (type, s_requests [i].schema->type) == 0)
            req = &s_requests [i];
    if (!req) {
        s_send_error (self, routing_p, request, 404, "bifrostd does not handle '%s'", type);
        return;
    }
    char err [200];
    s_msg_t msg;
    if (bus_envelope_get_msg (request, req->schema, &msg, err, sizeof err)) {
        s_send_error (self, routing_p, request, 400, "bad %s: %s", type, err);
        return;
    }
    const char *service = req->service == SIZE_MAX ? NULL : (const char *) &msg + req->service;
    if (service && !(req->service_optional && *service == 0)
    &&  !sup_server_has_service (self->server, service, req->configured)) {
        s_send_error (self, routing_p, request, 404, "no service named '%s'", service);
        return;
    }
    if (req->check && req->check (&msg, err, sizeof err)) {
        s_send_error (self, routing_p, request, 400, "%s", err);
        return;
    }
    if (req->refused_while_stopping && sup_server_stopping (self->server)) {
        s_send_error (self, routing_p, request, 503, "bifrostd is stopping");
        return;
    }
    //  The largest reply (sup.status.reply, 256 instances) is too big for the stack
    void *reply = zmalloc (req->reply_schema->size);
    assert (reply);
    req->act (self->server, &msg, reply);
    s_send_reply (self, routing_p, request, req->reply_schema, reply);
    free (reply);
}

//  Did root with root's powers send this (the kernel's word: SO_PEERCRED, which
//  libzmq hands on as Peer-Address)? uid 0 and CAP_SYS_ADMIN effective, which
//  root's bifrostctl has and a service, however it was attacked, never regains
static bool
s_from_root (zframe_t *body)
{
    bus_peer_t peer;
    uint64_t caps = 0;
    return bus_peer_parse (zframe_meta (body, "Peer-Address"), &peer) && peer.uid == 0
        && bus_peer_caps (peer.pid, &caps) && (caps & (1ULL << 21));
}

//  Is this sup.status from bifrost-metrics? The one read-only request a
//  service may make (docs/metrics.md: restarts and states per instance). The
//  kernel's uid says which program it is (schemas/users.def); without service
//  uids (supervisor.user_base = 0) the executable's name does (bus_peer_exe:
//  bifrostd, root, reads any /proc/PID/exe)
static bool
s_from_metrics (zframe_t *body, bus_envelope_t *request)
{
    if (strcmp (bus_envelope_type (request), "sup.status") != 0)
        return false;
    bus_peer_t peer;
    if (!bus_peer_parse (zframe_meta (body, "Peer-Address"), &peer))
        return false;
    if (bus_identity_active ())
        return bus_identity_is (peer.uid, "bifrost-metrics");
    char exe [512];
    if (!bus_peer_exe (peer.pid, exe, sizeof exe))
        return false;
    const char *base = strrchr (exe, '/');
    return strcmp (base ? base + 1 : exe, "bifrost-metrics") == 0;
}

void
sup_control_handle (sup_control_t *self)
{
    for (int n = 0; n < S_BATCH; n++) {
        zmsg_t *msg = zmsg_recv_nowait (self->sock);
        if (!msg)
            break;
        zframe_t *routing = zmsg_pop (msg);
        zframe_t *body = zmsg_pop (msg);
        char err [200];
        bus_envelope_t *request = NULL;
        if (routing && body && zmsg_size (msg) == 0)
            request = bus_envelope_decode (zframe_data (body), zframe_size (body), err, sizeof err);
        else
            snprintf (err, sizeof err, "expected [routing-id][envelope]");
        if (request && !s_from_root (body) && !s_from_metrics (body, request)) {
            //  Every service runs as root but dropped its capabilities for good:
            //  none may stop, scale or restart the others (issue 16, finding 1)
            self->refused++;
            if (self->refused <= 10 || self->refused % 100 == 0)
                bus_warn ("control: refused %s from a process without root's capabilities (%" PRIu64 " refused)",
                          bus_envelope_type (request), self->refused);
            s_send_error (self, &routing, request, 403, "only root's bifrostctl may ask bifrostd");
        }
        else
        if (request)
            s_handle_request (self, &routing, request);
        else {
            bus_warn ("control: dropped a bad request: %s", err);
            zframe_destroy (&routing);
        }
        bus_envelope_destroy (&request);
        zframe_destroy (&body);
        zmsg_destroy (&msg);
    }
}

//  ---------------------------------------------------------------------------
//  Self test: every request and every refusal, against a real bifrostd in a
//  forked process (sup_server_fork)


#define S_TEST_WAIT_MS 10000            //  generous: under valgrind answers take seconds

//  Sends msg and expects a bus.error whose text holds expected.
static void
s_expect_refused (bus_client_t *client, const bus_schema_t *schema, const void *msg, const char *expected)
{
    char err [256];
    bus_envelope_t *reply = bus_client_request (client, "bifrostd", schema, msg, S_TEST_WAIT_MS, err, sizeof err);
    assert (!reply);
    if (!strstr (err, expected))
        fprintf (stderr, "sup_control_test: expected '%s', got '%s'\n", expected, err);
    assert (strstr (err, expected));
}

//  Sends msg and expects sup.ok whose message is expected.
static void
s_expect_ok (bus_client_t *client, const bus_schema_t *schema, const void *msg, const char *expected)
{
    char err [256];
    bus_envelope_t *reply = bus_client_request (client, "bifrostd", schema, msg, S_TEST_WAIT_MS, err, sizeof err);
    assert (reply);
    sup_ok_t ok;
    assert (bus_envelope_get_msg (reply, &sup_ok_schema, &ok, err, sizeof err) == 0);
    assert (strcmp (ok.message, expected) == 0);
    bus_envelope_destroy (&reply);
}

void
sup_control_test (bool verbose)
{
    //  hb ignores SIGTERM, so a stop lasts its stop_timeout: long enough to
    //  see the 503 of a request sent while bifrostd is stopping
    char dir [] = "/tmp/sup-control-test-XXXXXX";
    pid_t pid;
    bus_client_t *client = sup_server_fork (dir, SUP_SERVER_TEST_HB ("stop_timeout = \"1s\";", "trap '' TERM; "),
                                            verbose, &pid);
    sup_server_wait_ready (client, 1);

    //  404: a type bifrostd does not handle, a service it does not know
    sup_ok_t not_a_request = { .message = "" };
    s_expect_refused (client, &sup_ok_schema, &not_a_request, "bifrostd does not handle 'sup.ok'");
    sup_status_t status = { .service = "ghost" };
    s_expect_refused (client, &sup_status_schema, &status, "no service named 'ghost'");
    sup_scale_t scale = { .service = "ghost", .instances = 1000 };
    s_expect_refused (client, &sup_scale_schema, &scale, "no service named 'ghost'");
    sup_restart_t restart = { .service = "ghost" };
    s_expect_refused (client, &sup_restart_schema, &restart, "no service named 'ghost'");
    //  400: a value out of range
    snprintf (scale.service, sizeof scale.service, "hb");
    s_expect_refused (client, &sup_scale_schema, &scale, "instance count must be 0 to 64, not 1000");

    //  Scale, restart: done, and said so
    scale.instances = 2;
    s_expect_ok (client, &sup_scale_schema, &scale, "hb: 1 -> 2 instances");
    sup_server_wait_ready (client, 2);
    snprintf (restart.service, sizeof restart.service, "hb");
    s_expect_ok (client, &sup_restart_schema, &restart, "hb: restarting 2 instances");
    sup_server_wait_ready (client, 2);

    //  Stop, then 503 for what would change the tree while it goes down
    sup_stop_t stop = { .reason = "selftest" };
    s_expect_ok (client, &sup_stop_schema, &stop, "stopping every service");
    s_expect_refused (client, &sup_restart_schema, &restart, "bifrostd is stopping");
    scale.instances = 1;
    s_expect_refused (client, &sup_scale_schema, &scale, "bifrostd is stopping");
    bus_client_destroy (&client);
    sup_server_join (dir, pid);
    if (verbose)
        printf ("sup_control: ok\n");
}
