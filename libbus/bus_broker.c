/*  bus_broker: routing, load balancing, events and the tap. See bus_broker.h. */
#include "bus_broker.h"
#include "bus_endpoint.h"
#include "bus_envelope.h"
#include "bus_log.h"
#include "bus_peer.h"
#include "bus_policy.h"
#include "bus_identity.h"

#include <assert.h>
#include <limits.h>
#include <errno.h>
#include <inttypes.h>
#include <sys/random.h>

#define S_EXPIRE_HEARTBEATS 10
#define S_HOLD_MS 2000            //  how long a message waits for its sender's hello
#define S_HOLD_MAX 256           //  messages held at once, all senders

//  One live instance of a service, learned from its bus.hello
typedef struct {
    char id [BUS_NAME_MAX + 1];
    char name [BUS_NAME_MAX + 1];
    uint32_t pid;               //  the process that registered it (SO_PEERCRED)
    int64_t last_seen;
} s_instance_t;

//  What the kernel said about a message's sender (bus_peer.h)
typedef struct {
    bool known;
    bus_peer_t cred;
} s_from_t;

//  A message sent before its sender's hello. A service's dealer queues what it
//  sends while the broker is away (restarted); on reconnection that queue goes
//  out before the hello the connection event triggers, and a restarted broker,
//  knowing nobody yet, refused it (device.up, crypto.key). Held until the hello
//  of the same identity registers it, then routed in order; refused as before
//  when the hello is refused or does not come within S_HOLD_MS.
typedef struct {
    char id [BUS_NAME_MAX + 1];
    bus_envelope_t *env;
    s_from_t from;
    int64_t since;
} s_held_t;

static void
s_held_free (void **item)
{
    s_held_t *held = (s_held_t *) *item;
    if (held) {
        bus_envelope_destroy (&held->env);
        free (held);
        *item = NULL;
    }
}

struct _bus_broker_t {
    zsock_t *router;            //  bus.ipc: control messages
    zsock_t *events;            //  events.ipc: XPUB to services
    zsock_t *tap;               //  tap.ipc: XPUB mirror
    char run_dir [BUS_PATH_MAX];
    uint64_t epoch;
    int64_t started;            //  zclock_mono () at start, for bus.status's uptime
    int heartbeat_ms;
    zhashx_t *instances;        //  id -> s_instance_t
    zhashx_t *rr;               //  service name -> round-robin cursor (uint32 in a pointer-sized slot)
    bus_broker_stats_t stats;
    int expiry_timer;
    bus_loop_t *loop;
    zlistx_t *held;             //  s_held_t: messages of services before their hello
    uint32_t supervisor;        //  pid whose children may be held for (bifrostd: our parent); 0: none
    bool unchecked;             //  BIFROST_BUS_UNCHECKED=1: no sender policy (tests whose probes play services)
    const char *libexec [3];    //  where the programs of protected services live
};

static void
s_instance_free (void **item)
{
    free (*item);
    *item = NULL;
}

bus_broker_t *
bus_broker_new (const char *run_dir)
{
    char endpoint [BUS_PATH_MAX];
    char err [300];
    if (bus_run_dir_secure (run_dir, err, sizeof err)) {
        bus_error ("%s", err);
        return NULL;
    }
    bus_broker_t *self = (bus_broker_t *) zmalloc (sizeof (bus_broker_t));
    assert (self);
    snprintf (self->run_dir, sizeof self->run_dir, "%s", run_dir);
    self->heartbeat_ms = 1000;
    self->started = zclock_mono ();
    //  The sender policy (schemas/senders.def) is on unless whoever started
    //  the broker turned it off: a test whose probe process plays a service
    const char *unchecked = getenv ("BIFROST_BUS_UNCHECKED");
    self->unchecked = unchecked && streq (unchecked, "1");
    if (self->unchecked)
        bus_warn ("BIFROST_BUS_UNCHECKED=1: every sender may send every message");
    self->libexec [0] = getenv ("BIFROST_LIBEXEC_DIR");
    self->libexec [1] = self->libexec [0] ? BIFROST_LIBEXECDIR : NULL;
    if (!self->libexec [0])
        self->libexec [0] = BIFROST_LIBEXECDIR;
    if (getrandom (&self->epoch, sizeof self->epoch, 0) != sizeof self->epoch || self->epoch == 0)
        self->epoch = (uint64_t) zclock_time () ^ ((uint64_t) getpid () << 40);
    self->instances = zhashx_new ();
    zhashx_set_destructor (self->instances, s_instance_free);
    self->rr = zhashx_new ();
    self->held = zlistx_new ();
    self->supervisor = (uint32_t) getppid ();
    zlistx_set_destructor (self->held, s_held_free);

    self->router = zsock_new (ZMQ_ROUTER);
    self->events = zsock_new (ZMQ_XPUB);
    self->tap = zsock_new (ZMQ_XPUB);
    assert (self->router && self->events && self->tap);
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_router_handover (self->router, 1);
    zsock_set_maxmsgsize (self->router, BUS_ENVELOPE_MAX + 64);
    zsock_set_linger (self->router, 0);
    zsock_set_linger (self->events, 0);
    zsock_set_linger (self->tap, 0);
    zsock_set_xpub_verbose (self->tap, 1);
    zsock_set_xpub_verbose (self->events, 1);
    int verboser = 1;
    zmq_setsockopt (zsock_resolve (self->tap), ZMQ_XPUB_VERBOSER, &verboser, sizeof verboser);
    //  A slow tap listener loses lines; it never slows the bus
    zsock_set_sndhwm (self->tap, 10000);

    const char *names [3] = { "bus", "events", "tap" };
    zsock_t *socks [3] = { self->router, self->events, self->tap };
    for (int i = 0; i < 3; i++) {
        if (bus_endpoint (endpoint, sizeof endpoint, run_dir, names [i])) {
            bus_error ("run directory path too long for an ipc socket: %s", run_dir);
            bus_broker_destroy (&self);
            return NULL;
        }
        //  A stale socket file from a crashed broker would make bind fail
        unlink (endpoint + 6);
        if (zsock_bind (socks [i], "%s", endpoint)) {
            bus_error ("cannot bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
            bus_broker_destroy (&self);
            return NULL;
        }
        //  The services reach it under their own uids (bus_identity.h): the
        //  group may connect, nobody else (bifrostctl is root)
        if (bus_identity_share (endpoint + 6, false))
            bus_warn ("cannot share %s with the node's group: %s", endpoint + 6, strerror (errno));
    }
    bus_info ("broker up in %s, epoch %016" PRIx64, run_dir, self->epoch);
    return self;
}

void
bus_broker_destroy (bus_broker_t **self_p)
{
    assert (self_p);
    bus_broker_t *self = *self_p;
    if (self) {
        if (self->loop)
            bus_loop_reader_end (self->loop, self->router);
        zsock_destroy (&self->router);
        zsock_destroy (&self->events);
        zsock_destroy (&self->tap);
        zhashx_destroy (&self->instances);
        zhashx_destroy (&self->rr);
        zlistx_destroy (&self->held);
        free (self);
        *self_p = NULL;
    }
}

uint64_t bus_broker_epoch (bus_broker_t *self) { return self->epoch; }
void bus_broker_set_heartbeat (bus_broker_t *self, int interval_ms) { self->heartbeat_ms = interval_ms; }

void
bus_broker_stats (bus_broker_t *self, bus_broker_stats_t *stats)
{
    *stats = self->stats;
    stats->instances = (uint32_t) zhashx_size (self->instances);
}

//  Sends [id][data] on the router. 0, or -1 with errno (EHOSTUNREACH: id unknown).
static int
s_send_to (bus_broker_t *self, const char *id, const uint8_t *data, size_t size)
{
    void *router = zsock_resolve (self->router);
    if (zmq_send (router, id, strlen (id), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    if (zmq_send (router, data, size, ZMQ_DONTWAIT) < 0)
        return -1;
    return 0;
}

static void
s_send_env (bus_broker_t *self, bus_envelope_t *env)
{
    uint8_t *data;
    size_t size;
    bus_envelope_encode (env, &data, &size);
    if (s_send_to (self, bus_envelope_to (env), data, size))
        self->stats.dropped++;
    free (data);
}

static void
s_reply_error (bus_broker_t *self, bus_envelope_t *request, uint32_t code, const char *text)
{
    if (strcmp (bus_envelope_type (request), "bus.error") == 0)
        return;                 //  never answer an error with an error
    bus_envelope_t *env = bus_envelope_new (bus_envelope_from (request), "bus", "bus.error",
                                            bus_envelope_corr (request));
    bus_error_t error = { .code = code };
    snprintf (error.message, sizeof error.message, "%s", text);
    char err [160];
    if (bus_envelope_set_msg (env, &bus_error_schema, &error, err, sizeof err) == 0)
        s_send_env (self, env);
    bus_envelope_destroy (&env);
}

//  Mirrors a message to the tap, only when somebody listens.
static void
s_tap (bus_broker_t *self, const char *kind, const char *type, const uint8_t *data, size_t size)
{
    if (self->stats.tap_subscribers == 0)
        return;
    char topic [BUS_TYPE_MAX + 8];
    int n = snprintf (topic, sizeof topic, "%s.%s", kind, type);
    void *tap = zsock_resolve (self->tap);
    if (zmq_send (tap, topic, n, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0
    &&  zmq_send (tap, data, size, ZMQ_DONTWAIT) >= 0)
        self->stats.tapped++;
}

static void
s_forget (bus_broker_t *self, const char *id)
{
    s_instance_t *inst = (s_instance_t *) zhashx_lookup (self->instances, id);
    if (inst) {
        bus_info ("instance %s is gone", id);
        zhashx_delete (self->instances, id);
    }
}

//  Picks the next live instance of service `name`, round robin, skipping `skip`.
static s_instance_t *
s_pick (bus_broker_t *self, const char *name, int attempt)
{
    //  Collect candidates in a stable order (by id) so round robin is fair
    s_instance_t *list [256];
    size_t n = 0;
    for (s_instance_t *inst = (s_instance_t *) zhashx_first (self->instances);
         inst && n < 256; inst = (s_instance_t *) zhashx_next (self->instances))
        if (strcmp (inst->name, name) == 0)
            list [n++] = inst;
    if (n == 0)
        return NULL;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp (list [j - 1]->id, list [j]->id) > 0; j--) {
            s_instance_t *t = list [j]; list [j] = list [j - 1]; list [j - 1] = t;
        }
    uintptr_t cursor = (uintptr_t) zhashx_lookup (self->rr, name);
    if (attempt == 0)
        cursor++;
    zhashx_update (self->rr, name, (void *) cursor);
    return list [(cursor + (uintptr_t) attempt) % n];
}

//  May the process behind `from` register as service `name`? A protected name
//  (schemas/senders.def) needs the kernel's word on the process and its program
//  from the libexec directory; a service in the broker's own process (a self
//  test's) is what it says it is.
static bool
s_may_register (bus_broker_t *self, const char *name, const s_from_t *from, char *why, size_t size)
{
    if (self->unchecked || !bus_policy_protected (name))
        return true;
    if (!from->known) {
        snprintf (why, size, "no peer credentials on the connection");
        return false;
    }
    if (from->cred.pid == (uint32_t) getpid ())
        return true;
    //  Under service uids (bus_identity.h) the uid the kernel reports says
    //  which program it is: no other process runs under it. (A connection
    //  made during a service's setup, still as root, goes the way below.)
    if (bus_identity_active () && from->cred.uid != 0) {
        if (bus_policy_may_register_uid (name, from->cred.uid))
            return true;
        snprintf (why, size, "pid %u runs as uid %u, not the uid of the service's program", from->cred.pid,
                  from->cred.uid);
        return false;
    }
    char exe [PATH_MAX] = "";
    if (!bus_peer_exe (from->cred.pid, exe, sizeof exe)) {
        //  It hides itself (the key's process is not dumpable): a child of
        //  bifrostd (our parent) by its command name
        uint32_t ppid = 0;
        char comm [16] = "";
        if (bus_peer_stat (from->cred.pid, &ppid, comm, sizeof comm) && ppid == (uint32_t) getppid ()
        &&  ppid != 1 && bus_policy_may_register_comm (name, comm))
            return true;
        snprintf (why, size, "pid %u hides its executable and is %s (%s)", from->cred.pid,
                  ppid == (uint32_t) getppid () ? "named otherwise" : "not bifrostd's child", comm);
        return false;
    }
    if (bus_policy_may_register (name, exe, self->libexec))
        return true;
    snprintf (why, size, "pid %u runs %.200s, not the service's program in %.200s", from->cred.pid, exe,
              self->libexec [0]);
    return false;
}

//  The sender's name for the policy: the service it registered as, when this
//  message comes from the process that registered it; "ctl" for a process of
//  root with root's powers (CAP_SYS_ADMIN effective: root's bifrostctl, never a
//  service, which dropped its capabilities for good); else "" (anyone)
static const char *
s_sender (bus_broker_t *self, const char *id, const s_from_t *from)
{
    s_instance_t *inst = (s_instance_t *) zhashx_lookup (self->instances, id);
    if (inst && from->known && inst->pid == from->cred.pid)
        return inst->name;
    uint64_t caps = 0;
    if (from->known && from->cred.uid == 0 && bus_peer_caps (from->cred.pid, &caps)
    &&  (caps & (1ULL << 21)))          //  CAP_SYS_ADMIN
        return "ctl";
    return "";
}

//  bus.status: the counters, for the operator (`bifrostctl bus`). Answered to
//  any sender, registered or not, like bus.echo: nothing in it is secret, and
//  only root and the node's group can reach bus.ipc at all.
static void
s_reply_status (bus_broker_t *self, bus_envelope_t *request)
{
    bus_broker_stats_t stats;
    bus_broker_stats (self, &stats);
    bus_status_reply_t reply = {
        .epoch = self->epoch, .uptime_ms = (uint64_t) (zclock_mono () - self->started),
        .instances = stats.instances, .routed = stats.routed, .events = stats.events,
        .tapped = stats.tapped, .dropped = stats.dropped, .unroutable = stats.unroutable,
        .bad_input = stats.bad_input, .refused = stats.refused, .held = stats.held,
        .tap_subscribers = stats.tap_subscribers
    };
    char err [160];
    bus_envelope_t *env = bus_envelope_new (bus_envelope_from (request), "bus", NULL, bus_envelope_corr (request));
    if (bus_envelope_set_msg (env, &bus_status_reply_schema, &reply, err, sizeof err) == 0)
        s_send_env (self, env);
    bus_envelope_destroy (&env);
}

static void s_dispatch (bus_broker_t *self, bus_envelope_t *env, const char *idtext, const s_from_t *peer,
                        bool may_hold);

//  Holds env if its sender looks like a supervised service before its hello:
//  not registered, and a child of bifrostd (our parent) as the kernel says.
//  Anyone else (a non-root bifrostctl, a stray process) is refused at once.
//  true: env is held (taken)
static bool
s_hold (bus_broker_t *self, bus_envelope_t *env, const char *id, const s_from_t *from)
{
    if (!from->known || self->supervisor <= 1
    ||  zhashx_lookup (self->instances, id) || zlistx_size (self->held) >= S_HOLD_MAX)
        return false;
    uint32_t ppid = 0;
    char comm [16] = "";
    if (!bus_peer_stat (from->cred.pid, &ppid, comm, sizeof comm) || ppid != self->supervisor)
        return false;
    s_held_t *held = (s_held_t *) zmalloc (sizeof (s_held_t));
    assert (held);
    snprintf (held->id, sizeof held->id, "%s", id);
    held->env = env;
    held->from = *from;
    held->since = zclock_mono ();
    zlistx_add_end (self->held, held);
    self->stats.held++;
    return true;
}

//  The hello of id was answered: what id sent before goes through the policy
//  again, now with its registration (or refusal) known; with id NULL, what
//  waited longer than S_HOLD_MS is refused. Taken off the list first: routing
//  one may answer another hello.
static void
s_release_held (bus_broker_t *self, const char *id)
{
    int64_t now = zclock_mono ();
    zlistx_t *keep = zlistx_new ();
    zlistx_t *due = zlistx_new ();
    zlistx_set_destructor (keep, s_held_free);
    s_held_t *held;
    while ((held = (s_held_t *) zlistx_detach (self->held, NULL)))
        zlistx_add_end ((id ? streq (held->id, id) : now - held->since > S_HOLD_MS) ? due : keep, held);
    zlistx_destroy (&self->held);
    self->held = keep;
    while ((held = (s_held_t *) zlistx_detach (due, NULL))) {
        bus_envelope_t *env = held->env;
        held->env = NULL;
        s_dispatch (self, env, held->id, &held->from, false);
        free (held);
    }
    zlistx_destroy (&due);
}

static void
s_handle_own (bus_broker_t *self, bus_envelope_t *env, const s_from_t *peer)
{
    char err [160];
    const char *type = bus_envelope_type (env);
    const char *from = bus_envelope_from (env);
    if (strcmp (type, "bus.hello") == 0) {
        bus_hello_t hello;
        if (bus_envelope_get_msg (env, &bus_hello_schema, &hello, err, sizeof err)) {
            self->stats.bad_input++;
            s_reply_error (self, env, 400, err);
            return;
        }
        if (strcmp (hello.instance, from) != 0 || !bus_name_valid (hello.name)) {
            self->stats.bad_input++;
            s_reply_error (self, env, 400, "bus.hello: instance must equal the socket identity");
            return;
        }
        char why [500];
        if (!s_may_register (self, hello.name, peer, why, sizeof why)) {
            self->stats.refused++;
            if (self->stats.refused <= 10 || self->stats.refused % 100 == 0)
                bus_warn ("refused %s as service %s: %s (%" PRIu64 " refused)", from, hello.name, why,
                          self->stats.refused);
            char text [200];
            snprintf (text, sizeof text, "bus.hello: this process may not register as %s", hello.name);
            s_reply_error (self, env, 403, text);
            s_release_held (self, from);
            return;
        }
        s_instance_t *inst = (s_instance_t *) zhashx_lookup (self->instances, from);
        if (!inst) {
            inst = (s_instance_t *) zmalloc (sizeof (s_instance_t));
            snprintf (inst->id, sizeof inst->id, "%s", from);
            zhashx_insert (self->instances, from, inst);
            bus_info ("instance %s of %s registered (pid %u)", from, hello.name, hello.pid);
        }
        snprintf (inst->name, sizeof inst->name, "%s", hello.name);
        inst->pid = peer->known ? peer->cred.pid : 0;
        inst->last_seen = zclock_mono ();
        bus_envelope_t *reply = bus_envelope_new (from, "bus", NULL, bus_envelope_corr (env));
        bus_welcome_t welcome = { .epoch = self->epoch, .instances = (uint32_t) zhashx_size (self->instances) };
        if (bus_envelope_set_msg (reply, &bus_welcome_schema, &welcome, err, sizeof err) == 0)
            s_send_env (self, reply);
        bus_envelope_destroy (&reply);
        s_release_held (self, from);
    }
    else
    if (strcmp (type, "bus.echo") == 0) {
        bus_envelope_t *reply = bus_envelope_new (from, "bus", type, bus_envelope_corr (env));
        size_t size;
        const uint8_t *body = bus_envelope_body (env, &size);
        bus_envelope_set_body (reply, body, size);
        s_send_env (self, reply);
        bus_envelope_destroy (&reply);
    }
    else
    if (strcmp (type, "bus.status") == 0 && bus_envelope_corr (env))
        s_reply_status (self, env);
    else
    if (bus_envelope_corr (env))
        s_reply_error (self, env, 404, "the broker has no handler for this type");
}

//  Routes one message from identity idtext (whose credentials are peer) after
//  the sender policy; takes env. may_hold: a refused message of a service that
//  has not said hello yet may wait for it (s_hold)
static void
s_dispatch (bus_broker_t *self, bus_envelope_t *env, const char *idtext, const s_from_t *peer, bool may_hold)
{
    //  ... nor says what only another may say (schemas/senders.def)
    const char *to_check = bus_envelope_to (env);
    bool event = *to_check == 0;
    //  (the sender resolved only for a type that has a rule: most have none)
    if (!self->unchecked && bus_policy_senders (bus_envelope_type (env), event)
    &&  !bus_policy_may_send (bus_envelope_type (env), event, s_sender (self, idtext, peer))) {
        if (may_hold && s_hold (self, env, idtext, peer))
            return;
        self->stats.refused++;
        if (self->stats.refused <= 10 || self->stats.refused % 100 == 0)
            bus_warn ("refused %s %s from %s (pid %u): only %s may (%" PRIu64 " refused)",
                      event ? "event" : "request", bus_envelope_type (env), idtext,
                      peer->known ? peer->cred.pid : 0,
                      bus_policy_senders (bus_envelope_type (env), event), self->stats.refused);
        if (!event && bus_envelope_corr (env))
            s_reply_error (self, env, 403, "this sender may not send this message type");
        bus_envelope_destroy (&env);
        return;
    }
    uint8_t *data;
    size_t size;
    bus_envelope_encode (env, &data, &size);
    const char *to = bus_envelope_to (env);
    if (*to == 0) {
        //  An event: fan out to subscribers and the tap
        char topic [BUS_TYPE_MAX + 8];
        int n = snprintf (topic, sizeof topic, "evt.%s", bus_envelope_type (env));
        void *events = zsock_resolve (self->events);
        if (zmq_send (events, topic, n, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0
        &&  zmq_send (events, data, size, ZMQ_DONTWAIT) >= 0)
            self->stats.events++;
        s_tap (self, "evt", bus_envelope_type (env), data, size);
    }
    else {
        s_tap (self, "ctl", bus_envelope_type (env), data, size);
        if (strcmp (to, "bus") == 0)
            s_handle_own (self, env, peer);
        else {
            //  By service name (load-balanced) first, else straight to an identity
            bool sent = false;
            for (int attempt = 0; attempt < 8 && !sent; attempt++) {
                s_instance_t *inst = s_pick (self, to, attempt);
                if (!inst)
                    break;
                if (s_send_to (self, inst->id, data, size) == 0)
                    sent = true;
                else
                if (errno == EHOSTUNREACH)
                    s_forget (self, inst->id);
                else
                    break;
            }
            if (!sent && s_send_to (self, to, data, size) == 0)
                sent = true;
            if (sent)
                self->stats.routed++;
            else {
                if (errno == EAGAIN)
                    self->stats.dropped++;
                else {
                    self->stats.unroutable++;
                    char text [120];
                    snprintf (text, sizeof text, "no such service or instance: %s", to);
                    if (bus_envelope_corr (env))
                        s_reply_error (self, env, 404, text);
                }
            }
        }
    }
    free (data);
    bus_envelope_destroy (&env);
}

static int
s_router_ready (bus_loop_t *loop, zsock_t *reader, void *arg)
{
    bus_broker_t *self = (bus_broker_t *) arg;
    void *router = zsock_resolve (reader);
    //  Drain up to a batch per wakeup so one chatty service cannot starve timers
    for (int round = 0; round < 256; round++) {
        zmq_msg_t id, body;
        zmq_msg_init (&id);
        if (zmq_msg_recv (&id, router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&id);
            break;
        }
        zmq_msg_init (&body);
        int more = zmq_msg_more (&id);
        if (!more || zmq_msg_recv (&body, router, ZMQ_DONTWAIT) < 0 || zmq_msg_more (&body)) {
            //  Not [id][envelope]: drop the rest of the message
            while (zmq_msg_more (&body) && zmq_msg_recv (&body, router, ZMQ_DONTWAIT) >= 0)
                ;
            self->stats.bad_input++;
            zmq_msg_close (&id);
            zmq_msg_close (&body);
            continue;
        }
        char idtext [BUS_NAME_MAX + 1] = "";
        size_t idlen = zmq_msg_size (&id);
        if (idlen <= BUS_NAME_MAX) {
            memcpy (idtext, zmq_msg_data (&id), idlen);
            idtext [idlen] = 0;
        }
        char err [160];
        bus_envelope_t *env = NULL;
        if (!bus_name_valid (idtext) || strlen (idtext) != idlen)
            snprintf (err, sizeof err, "sender has no valid identity (set ZMQ_ROUTING_ID)");
        else
            env = bus_envelope_decode ((const uint8_t *) zmq_msg_data (&body), zmq_msg_size (&body),
                                       err, sizeof err);
        if (!env) {
            self->stats.bad_input++;
            bus_debug ("dropped a message from %s: %s", bus_name_valid (idtext) ? idtext : "?", err);
            zmq_msg_close (&id);
            zmq_msg_close (&body);
            continue;
        }
        //  Nobody speaks for someone else on this bus
        bus_envelope_set_from (env, idtext);
        s_from_t peer = { false, { 0, 0, 0 } };
        peer.known = bus_peer_parse (zmq_msg_gets (&body, "Peer-Address"), &peer.cred);
        s_dispatch (self, env, idtext, &peer, true);
        zmq_msg_close (&id);
        zmq_msg_close (&body);
    }
    return 0;
}

//  Subscriptions to the tap arrive as messages: 1 = subscribe, 0 = unsubscribe.
static int
s_tap_ready (bus_loop_t *loop, zsock_t *reader, void *arg)
{
    bus_broker_t *self = (bus_broker_t *) arg;
    zframe_t *frame = zframe_recv (reader);
    if (frame && zframe_size (frame) > 0) {
        uint8_t kind = zframe_data (frame) [0];
        if (kind == 1)
            self->stats.tap_subscribers++;
        else
        if (kind == 0 && self->stats.tap_subscribers > 0)
            self->stats.tap_subscribers--;
    }
    zframe_destroy (&frame);
    return 0;
}

//  A subscriber (re)joined: every service subscribes to evt.bus.sync last, so when
//  that subscription arrives all of the newcomer's are in place. Ask everybody to
//  announce their state again, so the newcomer misses nothing published while it
//  was away (the slow-joiner problem of pub/sub).
static int
s_events_ready (bus_loop_t *loop, zsock_t *reader, void *arg)
{
    bus_broker_t *self = (bus_broker_t *) arg;
    zframe_t *frame = zframe_recv (reader);
    static const char topic [] = "evt.bus.sync";
    if (frame && zframe_size (frame) == sizeof topic && zframe_data (frame) [0] == 1
    &&  memcmp (zframe_data (frame) + 1, topic, sizeof topic - 1) == 0) {
        bus_envelope_t *env = bus_envelope_new ("", "bus", NULL, 0);
        bus_sync_t sync = { .instance = "bus" };
        char err [160];
        if (bus_envelope_set_msg (env, &bus_sync_schema, &sync, err, sizeof err) == 0) {
            uint8_t *data;
            size_t size;
            bus_envelope_encode (env, &data, &size);
            void *events = zsock_resolve (self->events);
            if (zmq_send (events, topic, sizeof topic - 1, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0
            &&  zmq_send (events, data, size, ZMQ_DONTWAIT) >= 0)
                self->stats.events++;
            s_tap (self, "evt", "bus.sync", data, size);
            free (data);
        }
        bus_envelope_destroy (&env);
    }
    zframe_destroy (&frame);
    return 0;
}

//  Forgets instances that missed S_EXPIRE_HEARTBEATS hellos. A vanished instance
//  is usually found sooner: ROUTER_MANDATORY refuses a send to it. The timeout is
//  for the rest, and generous, because a loaded machine delays hellos and a
//  forgotten instance means refused requests until its next hello.
static int
s_expire (bus_loop_t *loop, int timer_id, void *arg)
{
    bus_broker_t *self = (bus_broker_t *) arg;
    int64_t now = zclock_mono ();
    zlistx_t *dead = zlistx_new ();
    for (s_instance_t *inst = (s_instance_t *) zhashx_first (self->instances); inst;
         inst = (s_instance_t *) zhashx_next (self->instances))
        if (now - inst->last_seen > S_EXPIRE_HEARTBEATS * self->heartbeat_ms)
            zlistx_add_end (dead, inst->id);
    for (char *id = (char *) zlistx_first (dead); id; id = (char *) zlistx_next (dead))
        s_forget (self, id);
    zlistx_destroy (&dead);
    s_release_held (self, NULL);
    return 0;
}

int
bus_broker_attach (bus_broker_t *self, bus_loop_t *loop)
{
    self->loop = loop;
    if (bus_loop_reader (loop, self->router, s_router_ready, self)
    ||  bus_loop_reader (loop, self->tap, s_tap_ready, self)
    ||  bus_loop_reader (loop, self->events, s_events_ready, self))
        return -1;
    self->expiry_timer = bus_loop_timer (loop, (size_t) self->heartbeat_ms, 0, s_expire, self);
    return self->expiry_timer < 0 ? -1 : 0;
}

static int
s_actor_pipe (bus_loop_t *loop, zsock_t *pipe, void *arg)
{
    char *command = zstr_recv (pipe);
    int rc = command && streq (command, "$TERM") ? -1 : 0;
    if (command && streq (command, "EPOCH"))
        zsock_send (pipe, "8", bus_broker_epoch ((bus_broker_t *) arg));
    if (command && streq (command, "STATS")) {
        bus_broker_stats_t stats;
        bus_broker_stats ((bus_broker_t *) arg, &stats);
        zsock_send (pipe, "8888", stats.routed, stats.events, stats.tapped, stats.bad_input);
    }
    //  SUPERVISOR: the test's own process plays bifrostd's children
    if (command && streq (command, "SUPERVISOR"))
        ((bus_broker_t *) arg)->supervisor = (uint32_t) getppid ();
    if (command && streq (command, "REFUSED")) {
        bus_broker_stats_t stats;
        bus_broker_stats ((bus_broker_t *) arg, &stats);
        zsock_send (pipe, "8", stats.refused);
    }
    zstr_free (&command);
    return rc;
}

void
bus_broker_actor (zsock_t *pipe, void *args)
{
    bus_broker_t *self = bus_broker_new ((const char *) args);
    if (self)
        self->supervisor = 0;   //  a test's broker holds nothing unless told (SUPERVISOR)
    bus_loop_t *loop = bus_loop_new ();
    if (!self || bus_broker_attach (self, loop)) {
        zsock_signal (pipe, 1);
        bus_broker_destroy (&self);
        bus_loop_destroy (&loop);
        return;
    }
    bus_loop_reader (loop, pipe, s_actor_pipe, self);
    bus_loop_set_nonstop (loop, true);
    zsock_signal (pipe, 0);
    bus_loop_start (loop);
    bus_loop_destroy (&loop);
    self->loop = NULL;
    bus_broker_destroy (&self);
}

//  ---------------------------------------------------------------------------
//  Self test: a real broker actor on ipc in a temporary run directory, with raw
//  DEALER/SUB sockets playing services.

static zsock_t *
s_test_dealer (const char *dir, const char *id)
{
    char endpoint [BUS_PATH_MAX];
    bus_endpoint (endpoint, sizeof endpoint, dir, "bus");
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    zsock_set_identity (sock, id);
    zsock_set_rcvtimeo (sock, 2000);
    zsock_set_linger (sock, 0);
    assert (zsock_connect (sock, "%s", endpoint) == 0);
    return sock;
}

static void
s_test_send (zsock_t *sock, const char *to, const char *from, const bus_schema_t *schema, const void *msg, uint64_t corr)
{
    char err [160];
    bus_envelope_t *env = bus_envelope_new (to, from, schema->type, corr);
    assert (bus_envelope_set_msg (env, schema, msg, err, sizeof err) == 0);
    uint8_t *data;
    size_t size;
    bus_envelope_encode (env, &data, &size);
    assert (zmq_send (zsock_resolve (sock), data, size, 0) == (int) size);
    free (data);
    bus_envelope_destroy (&env);
}

static bus_envelope_t *
s_test_recv (zsock_t *sock)
{
    zframe_t *frame = zframe_recv (sock);
    if (!frame)
        return NULL;
    char err [160];
    bus_envelope_t *env = bus_envelope_decode (zframe_data (frame), zframe_size (frame), err, sizeof err);
    zframe_destroy (&frame);
    return env;
}

static void
s_test_hello (zsock_t *sock, const char *name, const char *id)
{
    bus_hello_t hello = { .pid = 1 };
    snprintf (hello.name, sizeof hello.name, "%s", name);
    snprintf (hello.instance, sizeof hello.instance, "%s", id);
    s_test_send (sock, "bus", id, &bus_hello_schema, &hello, 1);
    bus_envelope_t *welcome = s_test_recv (sock);
    assert (welcome && streq (bus_envelope_type (welcome), "bus.welcome"));
    bus_envelope_destroy (&welcome);
}

void
bus_broker_test (bool verbose)
{
    char dir [] = "/tmp/bus-broker-test-XXXXXX";
    assert (mkdtemp (dir));
    if (!verbose)
        bus_log_set_level (BUS_LOG_WARN);
    zactor_t *broker = zactor_new (bus_broker_actor, dir);
    assert (broker);

    zsock_t *a1 = s_test_dealer (dir, "a.1");
    zsock_t *a2 = s_test_dealer (dir, "a.2");
    zsock_t *c = s_test_dealer (dir, "c");
    s_test_hello (a1, "a", "a.1");
    s_test_hello (a2, "a", "a.2");

    //  A tap listener and an event subscriber
    char endpoint [BUS_PATH_MAX];
    bus_endpoint (endpoint, sizeof endpoint, dir, "tap");
    zsock_t *tap = zsock_new_sub (endpoint, "");
    bus_endpoint (endpoint, sizeof endpoint, dir, "events");
    zsock_t *sub = zsock_new_sub (endpoint, "evt.bus.state");
    zsock_set_rcvtimeo (tap, 2000);
    zsock_set_rcvtimeo (sub, 2000);
    //  Subscriptions travel asynchronously: wait until the broker counts the tap
    for (int i = 0; i < 200; i++) {
        zstr_send (broker, "STATS");
        uint64_t routed, events, tapped, bad;
        zsock_recv (broker, "8888", &routed, &events, &tapped, &bad);
        bus_echo_t probe = { .seq = 999 };
        s_test_send (c, "bus", "c", &bus_echo_schema, &probe, 5);
        bus_envelope_t *pong = s_test_recv (c);
        bus_envelope_destroy (&pong);
        zsock_set_rcvtimeo (tap, 10);
        zmsg_t *m = zmsg_recv (tap);
        zsock_set_rcvtimeo (tap, 2000);
        if (m) {
            zmsg_destroy (&m);
            break;
        }
    }
    //  Drain the tap of the probes
    zsock_set_rcvtimeo (tap, 50);
    while (true) {
        zmsg_t *m = zmsg_recv (tap);
        if (!m)
            break;
        zmsg_destroy (&m);
    }
    zsock_set_rcvtimeo (tap, 2000);

    //  Load balancing: 10 messages to "a" are split 5/5; `from` is rewritten
    for (int i = 0; i < 10; i++) {
        bus_echo_t echo = { .seq = (uint64_t) i };
        s_test_send (c, "a", "a.1", &bus_echo_schema, &echo, 0);
    }
    int got1 = 0, got2 = 0;
    zpoller_t *poller = zpoller_new (a1, a2, NULL);
    while (got1 + got2 < 10) {
        zsock_t *which = (zsock_t *) zpoller_wait (poller, 2000);
        assert (which);
        bus_envelope_t *env = s_test_recv (which);
        assert (env && streq (bus_envelope_from (env), "c"));
        if (which == a1) got1++; else got2++;
        bus_envelope_destroy (&env);
    }
    zpoller_destroy (&poller);
    if (verbose)
        printf ("bus_broker: load balanced %d / %d\n", got1, got2);
    assert (got1 == 5 && got2 == 5);

    //  The tap saw those ten as ctl.bus.echo, decodable
    for (int i = 0; i < 10; i++) {
        zmsg_t *m = zmsg_recv (tap);
        assert (m && zmsg_size (m) == 2);
        char *topic = zmsg_popstr (m);
        assert (streq (topic, "ctl.bus.echo"));
        zstr_free (&topic);
        zmsg_destroy (&m);
    }

    //  By instance: only a.2 gets it
    bus_echo_t echo = { .seq = 77 };
    s_test_send (c, "a.2", "c", &bus_echo_schema, &echo, 0);
    bus_envelope_t *env = s_test_recv (a2);
    assert (env && bus_envelope_corr (env) == 0);
    bus_envelope_destroy (&env);

    //  Unknown destination: bus.error 404 to the requester
    s_test_send (c, "nobody", "c", &bus_echo_schema, &echo, 9);
    env = s_test_recv (c);
    assert (env && streq (bus_envelope_type (env), "bus.error") && bus_envelope_corr (env) == 9);
    bus_error_t error;
    char err [160];
    assert (bus_envelope_get_msg (env, &bus_error_schema, &error, err, sizeof err) == 0);
    assert (error.code == 404);
    bus_envelope_destroy (&env);

    //  Garbage does not hurt: the broker answers the next echo
    zmq_send (zsock_resolve (c), "garbage", 7, 0);
    zmq_send (zsock_resolve (c), "\x96\x01", 2, 0);
    s_test_send (c, "bus", "c", &bus_echo_schema, &echo, 11);
    env = s_test_recv (c);
    assert (env && streq (bus_envelope_type (env), "bus.echo") && bus_envelope_corr (env) == 11);
    bus_envelope_destroy (&env);

    //  Events fan out to subscribers (with a settle loop for the subscription)
    bus_state_t state = { .instance = "c", .epoch = 1, .generation = 1 };
    zsock_set_rcvtimeo (sub, 20);
    bool got_event = false;
    for (int i = 0; i < 100 && !got_event; i++) {
        s_test_send (c, "", "c", &bus_state_schema, &state, 0);
        zmsg_t *m = zmsg_recv (sub);
        if (m) {
            char *topic = zmsg_popstr (m);
            got_event = streq (topic, "evt.bus.state");
            zstr_free (&topic);
            zmsg_destroy (&m);
        }
    }
    assert (got_event);

    //  A vanished instance is skipped: everything to "a" now reaches a.1
    zsock_destroy (&a2);
    zclock_sleep (50);          //  let the disconnect reach the broker
    for (int i = 0; i < 4; i++) {
        echo.seq = 100 + i;
        s_test_send (c, "a", "c", &bus_echo_schema, &echo, 0);
    }
    for (int i = 0; i < 4; i++) {
        env = s_test_recv (a1);
        assert (env);
        bus_envelope_destroy (&env);
    }

    //  The sender policy (schemas/senders.def). c registered as nothing: its
    //  peer.up event and its crypto.keyproof request are refused (the request
    //  with bus.error 403); a service registered as discovery (in this process:
    //  the kernel says so) may send both; a protected name is bound to the
    //  registering process, so nothing changes for c
    uint64_t refused0, refused1;
    zstr_send (broker, "REFUSED");
    zsock_recv (broker, "8", &refused0);
    peer_up_t up = { .name = "mallory" };
    s_test_send (c, "", "c", &peer_up_schema, &up, 0);
    crypto_keyproof_t proof = { .nonce = "AA==" };
    s_test_send (c, "a", "c", &crypto_keyproof_schema, &proof, 21);
    env = s_test_recv (c);
    assert (env && streq (bus_envelope_type (env), "bus.error") && bus_envelope_corr (env) == 21);
    bus_error_t refusal;
    assert (bus_envelope_get_msg (env, &bus_error_schema, &refusal, NULL, 0) == 0 && refusal.code == 403);
    bus_envelope_destroy (&env);
    zstr_send (broker, "REFUSED");
    zsock_recv (broker, "8", &refused1);
    assert (refused1 == refused0 + 2);
    zsock_t *disc = s_test_dealer (dir, "discovery.1");
    s_test_hello (disc, "discovery", "discovery.1");
    s_test_send (disc, "", "discovery.1", &peer_up_schema, &up, 0);
    s_test_send (disc, "a.1", "discovery.1", &crypto_keyproof_schema, &proof, 0);
    env = s_test_recv (a1);
    assert (env && streq (bus_envelope_type (env), "crypto.keyproof") && streq (bus_envelope_from (env), "discovery.1"));
    bus_envelope_destroy (&env);
    zstr_send (broker, "REFUSED");
    zsock_recv (broker, "8", &refused1);
    assert (refused1 == refused0 + 2);
    zsock_destroy (&disc);

    //  Before the hello (a service's queue after a broker restart): held, then
    //  routed in order once the hello registers the sender; from a sender that
    //  never says hello, refused after S_HOLD_MS (a request with 403)
    zstr_send (broker, "SUPERVISOR");
    zsock_t *late = s_test_dealer (dir, "discovery.2");
    s_test_send (late, "", "discovery.2", &peer_up_schema, &up, 0);
    s_test_send (late, "a.1", "discovery.2", &crypto_keyproof_schema, &proof, 0);
    zsock_set_rcvtimeo (a1, 300);
    env = s_test_recv (a1);
    assert (env == NULL);       //  held
    zsock_set_rcvtimeo (a1, 2000);
    s_test_hello (late, "discovery", "discovery.2");
    env = s_test_recv (a1);
    assert (env && streq (bus_envelope_type (env), "crypto.keyproof") && streq (bus_envelope_from (env), "discovery.2"));
    bus_envelope_destroy (&env);
    zstr_send (broker, "REFUSED");
    zsock_recv (broker, "8", &refused1);
    assert (refused1 == refused0 + 2);
    zsock_t *mute = s_test_dealer (dir, "mute.1");
    zsock_set_rcvtimeo (mute, S_HOLD_MS + 3000);
    s_test_send (mute, "a.1", "mute.1", &crypto_keyproof_schema, &proof, 42);
    int64_t asked = zclock_mono ();
    env = s_test_recv (mute);
    assert (env && streq (bus_envelope_type (env), "bus.error") && bus_envelope_corr (env) == 42);
    assert (zclock_mono () - asked >= S_HOLD_MS - 100);
    bus_envelope_destroy (&env);
    zstr_send (broker, "REFUSED");
    zsock_recv (broker, "8", &refused1);
    assert (refused1 == refused0 + 3);
    zsock_destroy (&mute);
    zsock_destroy (&late);

    //  bus.status: the operator sees those refusals, asked by a client that
    //  registered as nothing (bifrostctl does not register)
    bus_status_t ask = { .detail = "" };
    s_test_send (c, "bus", "c", &bus_status_schema, &ask, 31);
    env = s_test_recv (c);
    assert (env && streq (bus_envelope_type (env), "bus.status.reply") && bus_envelope_corr (env) == 31);
    bus_status_reply_t status;
    assert (bus_envelope_get_msg (env, &bus_status_reply_schema, &status, err, sizeof err) == 0);
    bus_envelope_destroy (&env);
    if (verbose)
        printf ("bus_broker: status: %u instances, refused %" PRIu64 ", routed %" PRIu64 ", bad %" PRIu64 "\n",
                status.instances, status.refused, status.routed, status.bad_input);
    assert (status.refused == refused1 && status.refused >= 3 && status.held == 3);
    uint64_t epoch;
    zstr_send (broker, "EPOCH");
    zsock_recv (broker, "8", &epoch);
    assert (status.epoch == epoch);
    assert (status.instances >= 1 && status.bad_input >= 2 && status.routed >= 15 && status.tap_subscribers == 1);

    zstr_send (broker, "STATS");
    uint64_t routed, events, tapped, bad;
    zsock_recv (broker, "8888", &routed, &events, &tapped, &bad);
    if (verbose)
        printf ("bus_broker: routed %" PRIu64 " events %" PRIu64 " tapped %" PRIu64 " bad %" PRIu64 "\n",
                routed, events, tapped, bad);
    assert (bad >= 2 && routed >= 15 && tapped >= 10);

    zsock_destroy (&sub);
    zsock_destroy (&tap);
    zsock_destroy (&a1);
    zsock_destroy (&c);
    zactor_destroy (&broker);
    bus_run_dir_remove (dir);
}
