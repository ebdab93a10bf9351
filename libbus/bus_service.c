/*  bus_service: the service runtime. See bus_service.h. */
#include "bus_service.h"
#include "bus_endpoint.h"
#include "bus_log.h"
#include "bus_ready.h"
#include "bus_pipe.h"
#include "bus_privs.h"
#include "bus_identity.h"
#include "bus_seccomp.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char type [BUS_TYPE_MAX + 1];
    bus_handler_fn *fn;
    void *arg;
} s_handler_t;

typedef struct {
    bus_connect_fn *fn;
    void *arg;
} s_connect_t;

typedef struct {
    bus_service_t *svc;
    uint64_t corr;
    bus_reply_fn *fn;
    void *arg;
    int timer_id;
} s_pending_t;

struct _bus_service_t {
    char name [BUS_NAME_MAX + 1];
    char instance [BUS_NAME_MAX + 1];
    char run_dir [BUS_PATH_MAX];
    zsock_t *dealer;            //  to the broker's ROUTER
    zsock_t *sub;               //  from the broker's events XPUB
    zsock_t *monitor;           //  connection events of the dealer
    int kick_fd;                //  eventfd: look at the bus sockets again
    int announce_timer;         //  pending coalesced re-announcement, or -1
    bus_loop_t *loop;
    zlistx_t *handlers;         //  of s_handler_t, exact type match
    zlistx_t *subscriptions;    //  of s_handler_t, type prefix match
    zlistx_t *on_connect;       //  of s_connect_t
    zlistx_t *pending;          //  of s_pending_t, requests waiting for replies
    bus_pipe_t *pipes [16];     //  data pipes that can be mirrored to the tap
    size_t pipe_count;
    uint64_t next_corr;
    uint64_t epoch;             //  broker epoch, 0 = not connected
    int64_t last_welcome;
    uint32_t generation;
    int heartbeat_ms;
    int heartbeat_timer;
    int ready_fd;
    bool stopping;
    bool failed;                //  bus_service_fail: the loop ended on an error
    bus_service_t *host;        //  NULL, or the service whose loop we share
    bus_service_t *guests [BUS_SERVICE_GUESTS_MAX];
    size_t guest_count;
    bus_config_t *config;
    bus_service_stats_t stats;
};

static void s_free_item (void **item) { free (*item); *item = NULL; }

//  A service on a loop of its own, or a guest on host's loop (host not NULL)
//  Announces this instance to the broker (bus.hello); defined below
static void s_hello (bus_service_t *self);

static bus_service_t *
s_new (const char *name, const char *instance, const char *run_dir, bus_service_t *host)
{
    assert (name);
    if (!bus_name_valid (name) || (instance && !bus_name_valid (instance))) {
        bus_error ("invalid service name or instance: '%s' / '%s'", name, instance ? instance : "");
        return NULL;
    }
    bus_service_t *self = (bus_service_t *) zmalloc (sizeof (bus_service_t));
    assert (self);
    snprintf (self->name, sizeof self->name, "%s", name);
    if (instance)
        snprintf (self->instance, sizeof self->instance, "%s", instance);
    else
        snprintf (self->instance, sizeof self->instance, "%.*s.1", BUS_NAME_MAX - 3, name);
    snprintf (self->run_dir, sizeof self->run_dir, "%s", bus_run_dir (run_dir));
    self->heartbeat_ms = BUS_HEARTBEAT_MS_DEFAULT;
    self->ready_fd = -1;
    self->kick_fd = -1;
    self->handlers = zlistx_new ();
    self->subscriptions = zlistx_new ();
    self->on_connect = zlistx_new ();
    self->pending = zlistx_new ();
    zlistx_set_destructor (self->handlers, s_free_item);
    zlistx_set_destructor (self->subscriptions, s_free_item);
    zlistx_set_destructor (self->on_connect, s_free_item);
    zlistx_set_destructor (self->pending, s_free_item);
    if (getrandom (&self->next_corr, sizeof self->next_corr, 0) != sizeof self->next_corr)
        self->next_corr = ((uint64_t) getpid () << 32) ^ (uint64_t) zclock_time ();
    self->next_corr |= 1;
    //  A guest is one before it can fail: destroy must leave the host's loop alone
    self->host = host;
    self->loop = host ? host->loop : bus_loop_new ();

    char endpoint [BUS_PATH_MAX];
    self->dealer = zsock_new (ZMQ_DEALER);
    self->sub = zsock_new (ZMQ_SUB);
    assert (self->dealer && self->sub);
    zsock_set_identity (self->dealer, self->instance);
    zsock_set_linger (self->dealer, 100);
    zsock_set_linger (self->sub, 0);
    zsock_set_sndhwm (self->dealer, 10000);
    //  Reconnect quickly after a broker restart
    zsock_set_reconnect_ivl (self->dealer, 50);
    zsock_set_reconnect_ivl_max (self->dealer, 1000);
    zsock_set_reconnect_ivl (self->sub, 50);
    zsock_set_reconnect_ivl_max (self->sub, 1000);
    //  Watch the dealer's connection, so a (re)connected broker hears our hello at
    //  once instead of up to a heartbeat later (its routing table is empty until then)
    char monitor_endpoint [64];
    snprintf (monitor_endpoint, sizeof monitor_endpoint, "inproc://bus-service-monitor-%p", (void *) self);
    if (zmq_socket_monitor (zsock_resolve (self->dealer), monitor_endpoint, ZMQ_EVENT_CONNECTED) == 0) {
        self->monitor = zsock_new (ZMQ_PAIR);
        if (self->monitor && zsock_connect (self->monitor, "%s", monitor_endpoint))
            zsock_destroy (&self->monitor);
    }
    self->announce_timer = -1;
    self->heartbeat_timer = -1;
    if (bus_endpoint (endpoint, sizeof endpoint, self->run_dir, "bus")
    ||  zsock_connect (self->dealer, "%s", endpoint)
    ||  bus_endpoint (endpoint, sizeof endpoint, self->run_dir, "events")
    ||  zsock_connect (self->sub, "%s", endpoint)) {
        bus_error ("cannot connect to the bus in %s", self->run_dir);
        bus_service_destroy (&self);
        return NULL;
    }
    //  The hello first, queued before anything the setup sends: the broker
    //  lets only a registered service send what schemas/senders.def reserves
    s_hello (self);
    return self;
}

bus_service_t *
bus_service_new (const char *name, const char *instance, const char *run_dir)
{
    return s_new (name, instance, run_dir, NULL);
}

bus_service_t *
bus_service_new_guest (const char *name, bus_service_t *host)
{
    assert (host && !host->host);
    if (host->guest_count == BUS_SERVICE_GUESTS_MAX) {
        bus_error ("%s: no room for another service in this process", host->name);
        return NULL;
    }
    bus_service_t *self = s_new (name, NULL, host->run_dir, host);
    if (!self)
        return NULL;
    self->config = host->config;
    self->heartbeat_ms = host->heartbeat_ms;
    host->guests [host->guest_count++] = self;
    return self;
}

//  A guest leaves a loop that goes on: its descriptors and timers come off it.
static void
s_guest_leave (bus_service_t *self)
{
    bus_service_t *host = self->host;
    for (size_t i = 0; i < host->guest_count; i++)
        if (host->guests [i] == self) {
            host->guests [i] = host->guests [--host->guest_count];
            break;
        }
    int fds [4] = { self->kick_fd, zsock_fd (self->dealer), zsock_fd (self->sub),
                    self->monitor ? zsock_fd (self->monitor) : -1 };
    for (int i = 0; i < 4; i++) {
        zmq_pollitem_t item = { NULL, fds [i], ZMQ_POLLIN, 0 };
        if (fds [i] != -1)
            bus_loop_poller_end (self->loop, &item);
    }
    if (self->heartbeat_timer >= 0)
        bus_loop_timer_end (self->loop, self->heartbeat_timer);
    if (self->announce_timer >= 0)
        bus_loop_timer_end (self->loop, self->announce_timer);
    for (s_pending_t *p = (s_pending_t *) zlistx_first (self->pending); p;
         p = (s_pending_t *) zlistx_next (self->pending))
        bus_loop_timer_end (self->loop, p->timer_id);
    self->loop = NULL;
}

void
bus_service_destroy (bus_service_t **self_p)
{
    assert (self_p);
    bus_service_t *self = *self_p;
    if (self) {
        assert (self->guest_count == 0);    //  guests go first: they use our loop
        if (self->host)
            s_guest_leave (self);
        else
            bus_loop_destroy (&self->loop);
        if (self->monitor) {
            zmq_socket_monitor (zsock_resolve (self->dealer), NULL, 0);
            zsock_destroy (&self->monitor);
        }
        zsock_destroy (&self->dealer);
        zsock_destroy (&self->sub);
        if (self->kick_fd != -1)
            close (self->kick_fd);
        zlistx_destroy (&self->handlers);
        zlistx_destroy (&self->subscriptions);
        zlistx_destroy (&self->on_connect);
        zlistx_destroy (&self->pending);
        free (self);
        *self_p = NULL;
    }
}

const char *bus_service_name (bus_service_t *self) { return self->name; }
const char *bus_service_instance (bus_service_t *self) { return self->instance; }
const char *bus_service_run_dir (bus_service_t *self) { return self->run_dir; }
uint64_t bus_service_epoch (bus_service_t *self) { return self->epoch; }
bus_loop_t *bus_service_loop (bus_service_t *self) { return self->loop; }
bus_config_t *bus_service_config (bus_service_t *self) { return self->config; }
void bus_service_set_config (bus_service_t *self, bus_config_t *config) { self->config = config; }
void bus_service_set_heartbeat (bus_service_t *self, int interval_ms) { self->heartbeat_ms = interval_ms > 10 ? interval_ms : 10; }
void bus_service_stats (bus_service_t *self, bus_service_stats_t *stats) { *stats = self->stats; }

void
bus_service_handle (bus_service_t *self, const char *type, bus_handler_fn *fn, void *arg)
{
    s_handler_t *h = (s_handler_t *) zmalloc (sizeof (s_handler_t));
    snprintf (h->type, sizeof h->type, "%s", type);
    h->fn = fn;
    h->arg = arg;
    zlistx_add_end (self->handlers, h);
}

//  The loop polls the bus sockets by their ZMQ_FD, as plain descriptors, and
//  not as ZeroMQ sockets: zmq_poll asks every ZeroMQ socket in its set for its
//  events before and after each wait, two system calls each, on every wakeup,
//  and most wakeups of device, crypto and nat are data packets (a ping paid 12
//  needless system calls per service it crossed). ZMQ_FD only says "look": a
//  handler drains its socket until ZeroMQ has nothing more, and after we send
//  or subscribe, which can take a pending wakeup away, we look again.
static void
s_kick (bus_service_t *self)
{
    uint64_t one = 1;
    if (self->kick_fd != -1 && write (self->kick_fd, &one, sizeof one) != sizeof one)
        bus_debug ("bus socket wakeup: %s", strerror (errno));
}

static void
s_recheck (bus_service_t *self, zsock_t *sock)
{
    if (self->kick_fd != -1 && (zsock_events (sock) & ZMQ_POLLIN))
        s_kick (self);
}

void
bus_service_subscribe (bus_service_t *self, const char *type_prefix, bus_handler_fn *fn, void *arg)
{
    s_handler_t *h = (s_handler_t *) zmalloc (sizeof (s_handler_t));
    snprintf (h->type, sizeof h->type, "%s", type_prefix);
    h->fn = fn;
    h->arg = arg;
    zlistx_add_end (self->subscriptions, h);
    char topic [BUS_TYPE_MAX + 8];
    snprintf (topic, sizeof topic, "evt.%s", type_prefix);
    zsock_set_subscribe (self->sub, topic);
    s_recheck (self, self->sub);
}

void
bus_service_on_connect (bus_service_t *self, bus_connect_fn *fn, void *arg)
{
    s_connect_t *c = (s_connect_t *) zmalloc (sizeof (s_connect_t));
    c->fn = fn;
    c->arg = arg;
    zlistx_add_end (self->on_connect, c);
}

static int
s_send_envelope (bus_service_t *self, bus_envelope_t *env)
{
    uint8_t *data;
    size_t size;
    bus_envelope_encode (env, &data, &size);
    int rc = zmq_send (zsock_resolve (self->dealer), data, size, ZMQ_DONTWAIT);
    free (data);
    s_recheck (self, self->dealer);
    if (rc < 0) {
        self->stats.dropped++;
        return -1;
    }
    self->stats.sent++;
    return 0;
}

static int
s_send (bus_service_t *self, const char *to, const bus_schema_t *schema, const void *msg, uint64_t corr)
{
    char err [200];
    bus_envelope_t *env = bus_envelope_new (to, self->instance, schema->type, corr);
    int rc = bus_envelope_set_msg (env, schema, msg, err, sizeof err);
    if (rc)
        bus_error ("cannot encode %s: %s", schema->type, err);
    else
        rc = s_send_envelope (self, env);
    bus_envelope_destroy (&env);
    return rc;
}

int
bus_service_send (bus_service_t *self, const char *to, const bus_schema_t *schema, const void *msg)
{
    return s_send (self, to, schema, msg, 0);
}

int
bus_service_publish (bus_service_t *self, const bus_schema_t *schema, const void *msg)
{
    return s_send (self, "", schema, msg, 0);
}

int
bus_service_reply (bus_service_t *self, bus_envelope_t *request, const bus_schema_t *schema, const void *msg)
{
    return s_send (self, bus_envelope_from (request), schema, msg, bus_envelope_corr (request));
}

int
bus_service_reply_error (bus_service_t *self, bus_envelope_t *request, uint32_t code, const char *fmt, ...)
{
    bus_error_t error = { .code = code };
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (error.message, sizeof error.message, fmt, ap);
    va_end (ap);
    return bus_service_reply (self, request, &bus_error_schema, &error);
}

void
bus_service_add_pipe (bus_service_t *self, bus_pipe_t *pipe)
{
    if (self->pipe_count < sizeof self->pipes / sizeof self->pipes [0])
        self->pipes [self->pipe_count++] = pipe;
    bus_pipe_set_loop (pipe, self->loop);
}

//  A mirrored batch: publish its headers as an event; the broker's tap shows it.
static void
s_pipe_sample (bus_pipe_t *pipe, const bus_pipe_sample_t *sample, void *arg)
{
    bus_service_publish ((bus_service_t *) arg, &bus_pipe_sample_schema, sample);
}

//  bus.pipe.mirror: like tcpdump on the bus, on request, for every pipe we have
static void
s_pipe_mirror (bus_service_t *self, bus_envelope_t *env)
{
    bus_pipe_mirror_t request;
    char err [200];
    if (bus_envelope_get_msg (env, &bus_pipe_mirror_schema, &request, err, sizeof err)) {
        bus_service_reply_error (self, env, 400, "%s", err);
        return;
    }
    static bus_pipe_mirror_reply_t reply;
    memset (&reply, 0, sizeof reply);
    for (size_t i = 0; i < self->pipe_count; i++) {
        if (request.enable)
            bus_pipe_set_mirror (self->pipes [i], request.sample ? request.sample : 1,
                                 request.snaplen ? request.snaplen : 64, s_pipe_sample, self);
        else
            bus_pipe_set_mirror (self->pipes [i], 0, 0, NULL, NULL);
        snprintf (reply.pipes [reply.pipes_count++], sizeof reply.pipes [0], "%s",
                  bus_pipe_name (self->pipes [i]));
    }
    bus_info ("pipe mirroring %s on %u pipe(s)", request.enable ? "on" : "off", reply.pipes_count);
    bus_service_reply (self, env, &bus_pipe_mirror_reply_schema, &reply);
}

static int
s_request_timeout (bus_loop_t *loop, int timer_id, void *arg)
{
    s_pending_t *p = (s_pending_t *) arg;
    bus_service_t *self = p->svc;
    void *handle = zlistx_find (self->pending, p);
    self->stats.timeouts++;
    bus_reply_fn *fn = p->fn;
    void *fn_arg = p->arg;
    if (handle)
        zlistx_delete (self->pending, handle);
    fn (self, NULL, fn_arg);
    return self->stopping ? -1 : 0;
}

int
bus_service_request (bus_service_t *self, const char *to, const bus_schema_t *schema,
                     const void *msg, int timeout_ms, bus_reply_fn *fn, void *arg)
{
    uint64_t corr = self->next_corr++;
    if (corr == 0)
        corr = self->next_corr++;
    if (s_send (self, to, schema, msg, corr))
        return -1;
    s_pending_t *p = (s_pending_t *) zmalloc (sizeof (s_pending_t));
    p->svc = self;
    p->corr = corr;
    p->fn = fn;
    p->arg = arg;
    p->timer_id = bus_loop_timer (self->loop, (size_t) (timeout_ms > 0 ? timeout_ms : 1), 1, s_request_timeout, p);
    zlistx_add_end (self->pending, p);
    return 0;
}

static void
s_hello (bus_service_t *self)
{
    bus_hello_t hello = { .pid = (uint32_t) getpid () };
    snprintf (hello.name, sizeof hello.name, "%s", self->name);
    snprintf (hello.instance, sizeof hello.instance, "%s", self->instance);
    s_send (self, "bus", &bus_hello_schema, &hello, 0);
}

//  Publishes our state and lets the service announce its own.
static void
s_announce (bus_service_t *self)
{
    bus_state_t state = { .epoch = self->epoch, .generation = self->generation };
    snprintf (state.instance, sizeof state.instance, "%s", self->instance);
    bus_service_publish (self, &bus_state_schema, &state);
    for (s_connect_t *c = (s_connect_t *) zlistx_first (self->on_connect); c;
         c = (s_connect_t *) zlistx_next (self->on_connect))
        c->fn (self, self->epoch, c->arg);
}

static int
s_announce_timer (bus_loop_t *loop, int timer_id, void *arg)
{
    bus_service_t *self = (bus_service_t *) arg;
    self->announce_timer = -1;
    s_announce (self);
    return self->stopping ? -1 : 0;
}

//  A welcome with a new epoch means a (re)connection: announce our state again.
static void
s_welcome (bus_service_t *self, bus_envelope_t *env)
{
    bus_welcome_t welcome;
    char err [160];
    if (bus_envelope_get_msg (env, &bus_welcome_schema, &welcome, err, sizeof err)) {
        self->stats.bad_input++;
        return;
    }
    self->last_welcome = zclock_mono ();
    if (welcome.epoch == self->epoch)
        return;
    self->epoch = welcome.epoch;
    self->generation++;
    self->stats.connects++;
    bus_info ("connected to broker epoch %016" PRIx64 " (connection %u)", self->epoch, self->generation);
    s_announce (self);
}

static void
s_dispatch (bus_service_t *self, bus_envelope_t *env)
{
    const char *type = bus_envelope_type (env);
    uint64_t corr = bus_envelope_corr (env);
    if (streq (type, "bus.welcome") && streq (bus_envelope_from (env), "bus")) {
        s_welcome (self, env);
        return;
    }
    //  A reply to one of our requests?
    if (corr) {
        for (s_pending_t *p = (s_pending_t *) zlistx_first (self->pending); p;
             p = (s_pending_t *) zlistx_next (self->pending)) {
            if (p->corr == corr) {
                bus_reply_fn *fn = p->fn;
                void *arg = p->arg;
                bus_loop_timer_end (self->loop, p->timer_id);
                zlistx_delete (self->pending, zlistx_cursor (self->pending));
                fn (self, env, arg);
                return;
            }
        }
    }
    for (s_handler_t *h = (s_handler_t *) zlistx_first (self->handlers); h;
         h = (s_handler_t *) zlistx_next (self->handlers)) {
        if (streq (h->type, type)) {
            h->fn (self, env, h->arg);
            return;
        }
    }
    if (streq (type, "bus.pipe.mirror")) {
        s_pipe_mirror (self, env);
        return;
    }
    if (streq (type, "bus.echo")) {
        //  Every service answers echo: liveness checks and round-trip benchmarks
        if (corr) {
            bus_envelope_t *reply = bus_envelope_new (bus_envelope_from (env), self->instance, type, corr);
            size_t size;
            const uint8_t *body = bus_envelope_body (env, &size);
            bus_envelope_set_body (reply, body, size);
            s_send_envelope (self, reply);
            bus_envelope_destroy (&reply);
        }
        return;
    }
    if (streq (type, "bus.error"))
        bus_debug ("error from %s for an expired request", bus_envelope_from (env));
    else
    if (corr)
        bus_service_reply_error (self, env, 501, "%s has no handler for %s", self->instance, type);
    else
        bus_debug ("no handler for %s from %s", type, bus_envelope_from (env));
}

static void
s_drain_dealer (bus_service_t *self)
{
    for (int round = 0; !self->stopping; round++) {
        if (round == 256) {
            s_kick (self);          //  the rest on the next turn of the loop
            break;
        }
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, zsock_resolve (self->dealer), ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&frame);
            break;
        }
        char err [160];
        bus_envelope_t *env = zmq_msg_more (&frame) ? NULL
            : bus_envelope_decode ((const uint8_t *) zmq_msg_data (&frame), zmq_msg_size (&frame), err, sizeof err);
        zmq_msg_close (&frame);
        if (!env) {
            self->stats.bad_input++;
            continue;
        }
        self->stats.received++;
        s_dispatch (self, env);
        bus_envelope_destroy (&env);
    }
}

//  One event from the broker.
static void
s_on_event (bus_service_t *self, zmsg_t *msg)
{
    if (zmsg_size (msg) != 2) {
        self->stats.bad_input++;
        zmsg_destroy (&msg);
        return;
    }
    zframe_t *topic = zmsg_first (msg);
    zframe_t *body = zmsg_next (msg);
    (void) topic;
    char err [160];
    bus_envelope_t *env = bus_envelope_decode (zframe_data (body), zframe_size (body), err, sizeof err);
    zmsg_destroy (&msg);
    if (!env) {
        self->stats.bad_input++;
        return;
    }
    self->stats.received++;
    const char *type = bus_envelope_type (env);
    if (streq (type, "bus.sync") && self->announce_timer < 0) {
        //  Coalesce: many services rejoining at once cost one announcement each
        self->announce_timer = bus_loop_timer (self->loop, 20, 1, s_announce_timer, self);
    }
    for (s_handler_t *h = (s_handler_t *) zlistx_first (self->subscriptions); h;
         h = (s_handler_t *) zlistx_next (self->subscriptions))
        if (strncmp (type, h->type, strlen (h->type)) == 0)
            h->fn (self, env, h->arg);
    bus_envelope_destroy (&env);
}

static void
s_drain_sub (bus_service_t *self)
{
    for (int round = 0; !self->stopping && (zsock_events (self->sub) & ZMQ_POLLIN); round++) {
        if (round == 256) {
            s_kick (self);
            break;
        }
        zmsg_t *msg = zmsg_recv (self->sub);
        if (msg)
            s_on_event (self, msg);
    }
}

//  Heartbeat: hello to the broker (so a restarted broker relearns us) and HB to
//  the supervisor (so a hung loop is noticed).
static int
s_heartbeat (bus_loop_t *loop, int timer_id, void *arg)
{
    bus_service_t *self = (bus_service_t *) arg;
    bus_ready_heartbeat (self->ready_fd);
    if (self->epoch && zclock_mono () - self->last_welcome > 3 * self->heartbeat_ms) {
        bus_warn ("broker silent for %d ms; waiting for it to come back", 3 * self->heartbeat_ms);
        self->epoch = 0;
    }
    s_hello (self);
    return self->stopping ? -1 : 0;
}

//  The dealer (re)connected to the broker: say hello now.
static void
s_drain_monitor (bus_service_t *self)
{
    bool connected = false;
    while (self->monitor && (zsock_events (self->monitor) & ZMQ_POLLIN)) {
        zmsg_t *event = zmsg_recv (self->monitor);
        zmsg_destroy (&event);
        connected = true;
    }
    if (connected)
        s_hello (self);
}

static int
s_bus_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    bus_service_t *self = (bus_service_t *) arg;
    if (item->fd == self->kick_fd) {
        uint64_t count;
        if (read (self->kick_fd, &count, sizeof count) < 0 && errno != EAGAIN)
            bus_debug ("bus socket wakeup: %s", strerror (errno));
    }
    //  Any of them: a send on one can take the wakeup of another away
    s_drain_monitor (self);
    s_drain_dealer (self);
    s_drain_sub (self);
    return self->stopping ? -1 : 0;
}

void
bus_service_stop (bus_service_t *self)
{
    self->stopping = true;
}

void
bus_service_fail (bus_service_t *self, const char *reason)
{
    bus_service_t *root = self->host ? self->host : self;
    bus_error ("%s: %s", self->name, reason);
    root->failed = true;
    root->stopping = true;
    self->stopping = true;
}

static int
s_prepare (bus_service_t *self)
{
    if (self->kick_fd == -1)
        self->kick_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->kick_fd == -1)
        return -1;
    int fds [4] = { self->kick_fd, zsock_fd (self->dealer), zsock_fd (self->sub),
                    self->monitor ? zsock_fd (self->monitor) : -1 };
    for (int i = 0; i < 4; i++) {
        zmq_pollitem_t item = { NULL, fds [i], ZMQ_POLLIN, 0 };
        if (fds [i] != -1 && bus_loop_poller (self->loop, &item, s_bus_ready, self))
            return -1;
    }
    //  Subscribed last on purpose: subscriptions travel in order, so when the broker
    //  sees this one (and answers with bus.sync, see bus_broker.c) all of ours are in
    //  place and the re-announcements it triggers reach us
    zsock_set_subscribe (self->sub, "evt.bus.sync");
    s_kick (self);              //  whatever arrived before the loop ran
    self->heartbeat_timer = bus_loop_timer (self->loop, (size_t) self->heartbeat_ms, 0, s_heartbeat, self);
    if (self->heartbeat_timer < 0)
        return -1;
    s_hello (self);
    for (size_t i = 0; i < self->guest_count; i++)
        if (s_prepare (self->guests [i]))
            return -1;
    return 0;
}

int
bus_service_run (bus_service_t *self)
{
    if (s_prepare (self))
        return -1;
    self->ready_fd = bus_ready_fd ();
    bus_ready_notify (self->ready_fd);
    bus_loop_start (self->loop);
    return self->failed ? -1 : 0;
}

static int
s_actor_pipe (bus_loop_t *loop, zsock_t *pipe, void *arg)
{
    char *command = zstr_recv (pipe);
    int rc = (!command || streq (command, "$TERM")) ? -1 : 0;
    if (command && streq (command, "EPOCH"))
        zsock_send (pipe, "8", ((bus_service_t *) arg)->epoch);
    zstr_free (&command);
    return rc;
}

void
bus_service_actor (zsock_t *pipe, void *args)
{
    bus_service_t *self = (bus_service_t *) args;
    if (s_prepare (self)) {
        zsock_signal (pipe, 1);
        return;
    }
    bus_loop_reader (self->loop, pipe, s_actor_pipe, self);
    bus_loop_set_nonstop (self->loop, true);
    zsock_signal (pipe, 0);
    bus_loop_start (self->loop);
    bus_loop_reader_end (self->loop, pipe);
}

//  ---------------------------------------------------------------------------
//  bus_service_main

static void
s_usage (const char *program, const char *summary, const char *prog)
{
    printf ("%s - Bifrost %s service: %s\n\n"
            "usage: %s [-c FILE] [-r RUN_DIR] [-i INSTANCE] [-v] [--check-config]\n\n"
            "  -c, --config FILE     configuration file (default: $BIFROST_CONFIG)\n"
            "  -r, --run-dir DIR     run directory with the bus sockets (default: $BIFROST_RUN_DIR or %s)\n"
            "  -i, --instance ID     instance id (default: $BIFROST_INSTANCE or %s.1)\n"
            "  -v, --verbose         debug logging\n"
            "      --check-config    validate the configuration, print errors, exit 0 or 78\n"
            "      --sandbox-check PATH  confine the process as it would run, then say whether\n"
            "                        it can read the file PATH or create a file in the directory PATH\n"
            "  -h, --help            this text\n\n"
            "Normally started by bifrostd, which passes BIFROST_READY_FD for readiness.\n",
            prog, program, summary ? summary : "", prog, BUS_RUN_DIR_DEFAULT, program);
}

int
bus_service_setup_done (const void *object, const char *err)
{
    if (object)
        return 0;
    bus_error ("%s", err && *err ? err : "setup failed");
    return -1;
}

void
bus_service_sandbox_own (bus_config_t *config, void *arg, const char *run_dir, bus_sandbox_t *paths)
{
}

int
bus_service_main (const bus_service_def_t *def, int argc, char **argv)
{
    return bus_service_main_group (def->name, def->summary, &def, 1, argc, argv);
}

//  Tears down the first count services (in reverse) and destroys them, guests
//  before their host.
static void
s_group_end (bus_service_t **svcs, const bus_service_def_t *const *defs, size_t count, size_t set_up)
{
    for (size_t i = set_up; i-- > 0; )
        if (defs [i]->teardown)
            defs [i]->teardown (svcs [i], defs [i]->arg);
    for (size_t i = count; i-- > 0; )
        bus_service_destroy (&svcs [i]);
}

//  --sandbox-check PATH, in the process confined as it runs: can it read the
//  file PATH, or create a file in the directory PATH? Prints one line; 0, or
//  78 when PATH is neither. So an operator (and node_privileges.sh) can ask
//  "can nat read the key?" of the real program with the real config.
static int
s_sandbox_check (const char *path)
{
    struct stat st;
    if (stat (path, &st)) {
        printf ("%s: %s\n", path, strerror (errno));
        return BUS_EXIT_CONFIG;
    }
    if (S_ISDIR (st.st_mode)) {
        char probe [PATH_MAX];
        snprintf (probe, sizeof probe, "%s/.sandbox-check-%d", path, (int) getpid ());
        int fd = open (probe, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        if (fd == -1)
            printf ("%s: create denied (%s)\n", path, strerror (errno));
        else {
            printf ("%s: create allowed\n", path);
            close (fd);
            unlink (probe);
        }
        return 0;
    }
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        printf ("%s: read denied (%s)\n", path, strerror (errno));
    else {
        printf ("%s: read allowed\n", path);
        close (fd);
    }
    return 0;
}

int
bus_service_main_group (const char *program, const char *summary,
                        const bus_service_def_t *const *defs, size_t count, int argc, char **argv)
{
    assert (program && defs && count >= 1 && count <= BUS_SERVICE_GUESTS_MAX + 1);
    static const struct option options [] = {
        { "config", required_argument, NULL, 'c' },
        { "run-dir", required_argument, NULL, 'r' },
        { "instance", required_argument, NULL, 'i' },
        { "verbose", no_argument, NULL, 'v' },
        { "check-config", no_argument, NULL, 'C' },
        { "sandbox-check", required_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *config_file = getenv ("BIFROST_CONFIG");
    const char *run_dir = NULL;
    const char *instance = getenv ("BIFROST_INSTANCE");
    const char *sandbox_check = NULL;
    bool verbose = false, check_only = false;
    int opt;
    while ((opt = getopt_long (argc, argv, "c:r:i:vh", options, NULL)) != -1) {
        switch (opt) {
            case 'c': config_file = optarg; break;
            case 'r': run_dir = optarg; break;
            case 'i': instance = optarg; break;
            case 'v': verbose = true; break;
            case 'C': check_only = true; break;
            case 'S': sandbox_check = optarg; break;
            case 'h': s_usage (program, summary, argv [0]); return 0;
            default:
                fprintf (stderr, "try '%s --help'\n", argv [0]);
                return BUS_EXIT_CONFIG;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "%s: unexpected argument '%s'\n", argv [0], argv [optind]);
        return BUS_EXIT_CONFIG;
    }
    bus_log_init (instance && *instance ? instance : program);
    if (verbose)
        bus_log_set_level (BUS_LOG_DEBUG);
    if (instance && *instance && !bus_name_valid (instance)) {
        bus_error ("invalid instance id '%s' (letters, digits, '.', '_', '-')", instance);
        return BUS_EXIT_CONFIG;
    }

    bus_config_t *config = NULL;
    if (config_file && *config_file) {
        char err [300];
        config = bus_config_load (config_file, err, sizeof err);
        if (!config) {
            fprintf (stderr, "%s\n", err);
            return BUS_EXIT_CONFIG;
        }
    }
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++)
        if (defs [i]->check_config)
            rc = defs [i]->check_config (config, defs [i]->arg);
    if (config && bus_config_report (config, stderr) > 0)
        rc = -1;
    if (check_only || rc) {
        if (check_only && rc == 0)
            printf ("%s: configuration ok\n", config_file ? config_file : "(no file)");
        bus_config_destroy (&config);
        return rc ? BUS_EXIT_CONFIG : 0;
    }

    //  Keep only what the services need (DESIGN.md, bus_privs.h): before the
    //  first ZeroMQ socket starts its I/O threads (capabilities belong to each
    //  thread), and before anything reads a key
    uint64_t keep = 0;
    bool hide = false, sandbox = true;
    for (size_t i = 0; i < count; i++) {
        if (defs [i]->caps)
            keep |= defs [i]->caps (config, defs [i]->arg);
        hide = hide || defs [i]->holds_key;
        sandbox = sandbox && defs [i]->sandbox;
    }
    //  The uid to switch to after setup (bus_identity.h); until then the
    //  process keeps what the switch needs
    char ierr [200];
    int identity = bus_identity_load (ierr, sizeof ierr);
    if (identity == -1) {
        bus_error ("%s: %s", program, ierr);
        bus_config_destroy (&config);
        return BUS_EXIT_CONFIG;
    }
    if (identity == 1) {
        keep |= BUS_CAP (CAP_SETUID) | BUS_CAP (CAP_SETGID);
        //  In the group from now on: the sockets setup makes go to it
        //  (bus_identity_share) without CAP_CHOWN
        if (bus_identity_join (ierr, sizeof ierr)) {
            bus_error ("%s: %s", program, ierr);
            bus_config_destroy (&config);
            return 1;
        }
    }
    for (size_t i = 0; i < count; i++)
        if (defs [i]->privileged && defs [i]->privileged (config, defs [i]->arg)) {
            bus_error ("%s: cannot start its privileged part; not starting", defs [i]->name);
            bus_config_destroy (&config);
            return BUS_EXIT_CONFIG;
        }
    char perr [300];
    int confined = 0;
    //  The run directory must exist, ours and 0700, before its
    //  subdirectories are made and confined to
    const char *dir = bus_run_dir (run_dir);
    if (sandbox && bus_run_dir_prepare (dir))
        bus_warn ("run directory %s: %s", dir, strerror (errno));
    int dropped = bus_privs_drop (keep, hide, perr, sizeof perr);
    if (dropped == 0 && sandbox) {
        //  Each service's own directory, and what it says it needs
        bus_sandbox_t *paths = bus_sandbox_new ();
        for (size_t i = 0; i < count; i++) {
            bus_sandbox_write (paths, "%s/%s", dir, defs [i]->name);
            defs [i]->sandbox (config, defs [i]->arg, dir, paths);
        }
        confined = bus_privs_sandbox (paths, perr, sizeof perr);
        bus_sandbox_destroy (&paths);
    }
    if (dropped || confined == -1) {
        bus_error ("%s: %s", program, perr);
        bus_config_destroy (&config);
        return 1;
    }
    if (confined == 1)
        bus_warn ("%s: %s: its file system is not confined", program, perr);
    if (sandbox_check) {
        bus_config_destroy (&config);
        return s_sandbox_check (sandbox_check);
    }
    zsys_init ();
    //  The first service owns the loop; the others are its guests on it. The
    //  instance id names the process, so only a program of one service takes it.
    bus_service_t *svcs [BUS_SERVICE_GUESTS_MAX + 1] = { NULL };
    svcs [0] = bus_service_new (defs [0]->name, count == 1 && instance && *instance ? instance : NULL, run_dir);
    if (svcs [0]) {
        bus_service_set_config (svcs [0], config);
        const char *hb = getenv ("BIFROST_HEARTBEAT_MS");
        if (hb && atoi (hb) > 0)
            bus_service_set_heartbeat (svcs [0], atoi (hb));
    }
    for (size_t i = 1; i < count && svcs [i - 1]; i++)
        svcs [i] = bus_service_new_guest (defs [i]->name, svcs [0]);
    if (!svcs [count - 1]) {
        s_group_end (svcs, defs, count, 0);
        bus_config_destroy (&config);
        return BUS_EXIT_CONFIG;
    }
    size_t set_up = 0;
    for (; set_up < count; set_up++)
        if (defs [set_up]->setup && defs [set_up]->setup (svcs [set_up], defs [set_up]->arg)) {
            bus_error ("%s: setup failed; not starting", defs [set_up]->name);
            s_group_end (svcs, defs, count, set_up);
            bus_config_destroy (&config);
            return BUS_EXIT_CONFIG;
        }
    //  Setup done (keys read, ports bound, sockets made and shared): every
    //  thread becomes the service's own uid, and keeps no capability
    if (bus_identity_switch (ierr, sizeof ierr)) {
        bus_error ("%s: %s", program, ierr);
        s_group_end (svcs, defs, count, count);
        bus_config_destroy (&config);
        return 1;
    }
    //  The runtime makes only the system calls of its lists (bus_seccomp.h):
    //  after setup opened what it owns and the switch (set*id is not on any
    //  list), before the loop reads any input
    uint32_t calls = 0;
    for (size_t i = 0; i < count; i++)
        calls |= defs [i]->seccomp;
    int filtered = bus_seccomp_apply (calls, bus_service_instance (svcs [0]), perr, sizeof perr);
    if (filtered == -1) {
        bus_error ("%s: %s", program, perr);
        s_group_end (svcs, defs, count, count);
        bus_config_destroy (&config);
        return 1;
    }
    if (filtered == 1)
        bus_warn ("%s: %s: its system calls are not confined", program, perr);
    for (size_t i = 0; i < count; i++)
        bus_info ("%s running in %s as uid %u", bus_service_instance (svcs [i]), bus_service_run_dir (svcs [i]),
                  (unsigned) getuid ());
    rc = bus_service_run (svcs [0]);
    bus_info ("%s stopping", program);
    s_group_end (svcs, defs, count, count);
    bus_config_destroy (&config);
    return rc ? 1 : 0;
}

//  ---------------------------------------------------------------------------
//  Self test: a real broker and two services as actors in one process.

#include "bus_broker.h"
#include <stdatomic.h>

typedef struct {
    atomic_int connects;
    atomic_int replies_ok;
    atomic_int errors_501;
    atomic_int timeouts;
    atomic_int events;
    atomic_int retries;
    atomic_int epochs;          //  distinct broker epochs seen by on_connect
    uint64_t last_epoch;        //  only touched by the service's thread
    bus_service_t *svc;
} s_test_state_t;

static void s_test_reply (bus_service_t *svc, bus_envelope_t *reply, void *arg);

static int
s_test_retry (bus_loop_t *loop, int timer_id, void *arg)
{
    s_test_state_t *state = (s_test_state_t *) arg;
    sup_restart_t restart = { .service = "x" };
    bus_service_request (state->svc, "alpha", &sup_restart_schema, &restart, 2000, s_test_reply, state);
    return 0;
}

static void
s_test_on_restart (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    sup_ok_t ok;
    snprintf (ok.message, sizeof ok.message, "restarted by %s", bus_service_instance (svc));
    bus_service_reply (svc, env, &sup_ok_schema, &ok);
}

static void
s_test_ignore (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
}

static void
s_test_on_state (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    s_test_state_t *state = (s_test_state_t *) arg;
    bus_state_t msg;
    char err [160];
    if (bus_envelope_get_msg (env, &bus_state_schema, &msg, err, sizeof err) == 0
    &&  streq (msg.instance, "beta.1"))
        state->events++;
}

static void
s_test_reply (bus_service_t *svc, bus_envelope_t *reply, void *arg)
{
    s_test_state_t *state = (s_test_state_t *) arg;
    if (!reply)
        state->timeouts++;
    else
    if (streq (bus_envelope_type (reply), "sup.ok"))
        state->replies_ok++;
    else
    if (streq (bus_envelope_type (reply), "bus.error")) {
        bus_error_t error;
        char err [160];
        if (bus_envelope_get_msg (reply, &bus_error_schema, &error, err, sizeof err))
            return;
        if (error.code == 501)
            state->errors_501++;
        else
        if (error.code == 404 && state->retries++ < 100) {
            //  alpha has not re-registered with a restarted broker yet: ask again,
            //  as a real service would
            bus_loop_timer (bus_service_loop (svc), 20, 1, s_test_retry, state);
        }
    }
}

//  On every connection beta asks alpha three things: one it answers, one it has
//  no handler for, and one it swallows (which must time out).
static void
s_test_on_connect (bus_service_t *svc, uint64_t epoch, void *arg)
{
    s_test_state_t *state = (s_test_state_t *) arg;
    state->connects++;
    if (epoch != state->last_epoch) {
        state->last_epoch = epoch;
        state->epochs++;
    }
    sup_restart_t restart = { .service = "x" };
    bus_service_request (svc, "alpha", &sup_restart_schema, &restart, 2000, s_test_reply, state);
    sup_scale_t scale = { .service = "x", .instances = 1 };
    bus_service_request (svc, "alpha", &sup_scale_schema, &scale, 2000, s_test_reply, state);
    sup_stop_t stop = { .reason = "test" };
    bus_service_request (svc, "alpha", &sup_stop_schema, &stop, 200, s_test_reply, state);
}

static bool
s_test_wait (atomic_int *value, int at_least, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (atomic_load (value) < at_least && zclock_mono () < deadline)
        zclock_sleep (10);
    return atomic_load (value) >= at_least;
}

void
bus_service_test (bool verbose)
{
    if (!verbose)
        bus_log_set_level (BUS_LOG_WARN);
    char dir [] = "/tmp/bus-service-test-XXXXXX";
    assert (mkdtemp (dir));
    static s_test_state_t alpha_state, beta_state;

    //  Bad names are refused, not crashed on
    assert (bus_service_new ("bad name", NULL, dir) == NULL);

    zactor_t *broker = zactor_new (bus_broker_actor, dir);
    assert (broker);
    bus_service_t *alpha = bus_service_new ("alpha", NULL, dir);
    bus_service_t *beta = bus_service_new ("beta", NULL, dir);
    assert (alpha && beta);
    assert (streq (bus_service_instance (alpha), "alpha.1"));
    bus_service_set_heartbeat (alpha, 100);
    bus_service_set_heartbeat (beta, 100);
    bus_service_handle (alpha, "sup.restart", s_test_on_restart, NULL);
    bus_service_handle (alpha, "sup.stop", s_test_ignore, NULL);
    bus_service_subscribe (alpha, "bus.state", s_test_on_state, &alpha_state);
    bus_service_on_connect (beta, s_test_on_connect, &beta_state);
    beta_state.svc = beta;
    //  gamma is a guest on alpha's loop (one thread, as in bifrost-tunnel): its
    //  own name and requests, answered by its host through the broker
    static s_test_state_t gamma_state;
    bus_service_t *gamma = bus_service_new_guest ("gamma", alpha);
    assert (gamma);
    assert (streq (bus_service_instance (gamma), "gamma.1"));
    assert (bus_service_loop (gamma) == bus_service_loop (alpha));
    assert (streq (bus_service_run_dir (gamma), bus_service_run_dir (alpha)));
    bus_service_on_connect (gamma, s_test_on_connect, &gamma_state);
    gamma_state.svc = gamma;
    //  A host has room for BUS_SERVICE_GUESTS_MAX guests, then says no
    bus_service_t *guests [BUS_SERVICE_GUESTS_MAX] = { NULL };
    for (int i = 1; i < BUS_SERVICE_GUESTS_MAX; i++)
        assert ((guests [i] = bus_service_new_guest ("extra", alpha)));
    assert (bus_service_new_guest ("extra", alpha) == NULL);
    for (int i = 1; i < BUS_SERVICE_GUESTS_MAX; i++)
        bus_service_destroy (&guests [i]);

    zactor_t *alpha_actor = zactor_new (bus_service_actor, alpha);
    //  Let alpha register before beta asks it anything
    zclock_sleep (200);
    zactor_t *beta_actor = zactor_new (bus_service_actor, beta);
    assert (s_test_wait (&beta_state.connects, 1, 3000));
    assert (s_test_wait (&beta_state.replies_ok, 1, 3000));
    assert (s_test_wait (&beta_state.errors_501, 1, 3000));
    assert (s_test_wait (&beta_state.timeouts, 1, 3000));
    assert (s_test_wait (&alpha_state.events, 1, 3000));
    assert (s_test_wait (&gamma_state.replies_ok, 1, 3000));
    assert (s_test_wait (&gamma_state.errors_501, 1, 3000));
    assert (s_test_wait (&gamma_state.timeouts, 1, 3000));

    //  Broker restart: both services notice the new epoch and re-announce
    assert (s_test_wait (&beta_state.epochs, 1, 3000));
    zactor_destroy (&broker);
    int events_before = atomic_load (&alpha_state.events);
    int replies_before = atomic_load (&beta_state.replies_ok);
    broker = zactor_new (bus_broker_actor, dir);
    assert (broker);
    int64_t t0 = zclock_mono ();
    assert (s_test_wait (&beta_state.epochs, 2, 5000));
    int64_t reconnect_ms = zclock_mono () - t0;
    //  And the re-announcement reached alpha (events work again), as did requests
    assert (s_test_wait (&alpha_state.events, events_before + 1, 3000));
    assert (s_test_wait (&beta_state.replies_ok, replies_before + 1, 3000));
    //  The guest reconnected too: its heartbeat says hello to the new broker
    assert (s_test_wait (&gamma_state.epochs, 2, 5000));
    if (verbose)
        printf ("bus_service: reconnected %" PRId64 " ms after broker restart\n", reconnect_ms);

    bus_service_stats_t stats;
    zactor_destroy (&beta_actor);
    zactor_destroy (&alpha_actor);
    bus_service_stats (beta, &stats);
    if (verbose)
        printf ("bus_service: connects %" PRIu64 " timeouts %" PRIu64 "\n", stats.connects, stats.timeouts);
    assert (stats.connects == 2 && stats.timeouts >= 1);
    bus_service_destroy (&gamma);        //  guests before their host
    bus_service_destroy (&alpha);
    bus_service_destroy (&beta);
    zactor_destroy (&broker);
    bus_run_dir_remove (dir);
}
