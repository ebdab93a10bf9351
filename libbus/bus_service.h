/*  bus_service: the runtime every Bifrost service process runs on.

    A service's main fills a bus_service_def_t and calls bus_service_main; the
    runtime parses the command line (-h, -v, -c FILE, -r RUN_DIR, -i INSTANCE,
    --check-config, --sandbox-check PATH), connects to the broker, registers
    its name and instance, writes READY and then heartbeats to
    BIFROST_READY_FD, answers requests with the handlers the service
    registered, delivers events it subscribed to, and re-announces its state
    after a broker restart. It stops cleanly on SIGTERM.

    Everything runs on one bus_loop, so a test can run a whole service in-process as
    an actor (bus_service_actor) and a service can add its own readers (a TUN fd, a
    data pipe) to the same loop. */
#ifndef BUS_SERVICE_H_INCLUDED
#define BUS_SERVICE_H_INCLUDED

#include <czmq.h>
#include "bus_config.h"
#include "bus_loop.h"
#include "bus_envelope.h"
#include "bus_privs.h"
#include "bus_seccomp.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BUS_HEARTBEAT_MS_DEFAULT 1000

typedef struct _bus_service_t bus_service_t;

//  A message (request or one-way) of a registered type, or an event subscribed to.
//  The envelope belongs to the runtime; reply with bus_service_reply.
typedef void (bus_handler_fn) (bus_service_t *svc, bus_envelope_t *env, void *arg);
//  A reply to bus_service_request, or NULL when the request timed out.
typedef void (bus_reply_fn) (bus_service_t *svc, bus_envelope_t *reply, void *arg);
//  Called on every (re)connection to a broker (a new broker epoch), and when another
//  service rejoins and asks for everybody's state (bus.sync): publish your state
//  here, so no one depends on a message lost while the broker or it was away.
typedef void (bus_connect_fn) (bus_service_t *svc, uint64_t epoch, void *arg);

//  Creates a service; name is the service ("relay"), instance its instance id
//  ("relay.2", or NULL for "<name>.1"), run_dir where the bus sockets live.
bus_service_t *bus_service_new (const char *name, const char *instance, const char *run_dir);
//  Destroys a service; a host's guests must be destroyed first.
void bus_service_destroy (bus_service_t **self_p);

//  A second service in the same process and thread, on host's loop: its own
//  name, broker connection, handlers and subscriptions, but no loop of its own.
//  Running the host runs it; the host alone writes READY and heartbeats to the
//  supervisor. Why: each data pipe between two processes costs a wakeup per
//  packet burst, and on a pipe between two services of one loop it costs none
//  (docs/data-plane.md, "Two services, one process"). Takes host's run
//  directory and config; NULL if host has no room (BUS_SERVICE_GUESTS_MAX).
#define BUS_SERVICE_GUESTS_MAX 3
bus_service_t *bus_service_new_guest (const char *name, bus_service_t *host);

const char *bus_service_name (bus_service_t *self);
const char *bus_service_instance (bus_service_t *self);
const char *bus_service_run_dir (bus_service_t *self);
//  The current broker epoch; 0 while not connected.
uint64_t bus_service_epoch (bus_service_t *self);
//  The loop, to add readers and timers of the service's own.
bus_loop_t *bus_service_loop (bus_service_t *self);
//  The config given with -c, or NULL.
bus_config_t *bus_service_config (bus_service_t *self);
void bus_service_set_config (bus_service_t *self, bus_config_t *config);
void bus_service_set_heartbeat (bus_service_t *self, int interval_ms);

void bus_service_handle (bus_service_t *self, const char *type, bus_handler_fn *fn, void *arg);
void bus_service_subscribe (bus_service_t *self, const char *type_prefix, bus_handler_fn *fn, void *arg);
void bus_service_on_connect (bus_service_t *self, bus_connect_fn *fn, void *arg);

//  One-way message to a service name or instance. 0, or -1 when it could not be
//  queued (broker unreachable and queue full) or the message does not encode.
int bus_service_send (bus_service_t *self, const char *to, const bus_schema_t *schema, const void *msg);
//  Request; fn is called once, with the reply or with NULL after timeout_ms.
int bus_service_request (bus_service_t *self, const char *to, const bus_schema_t *schema,
                         const void *msg, int timeout_ms, bus_reply_fn *fn, void *arg);
int bus_service_reply (bus_service_t *self, bus_envelope_t *request,
                       const bus_schema_t *schema, const void *msg);
int bus_service_reply_error (bus_service_t *self, bus_envelope_t *request, uint32_t code,
                             const char *fmt, ...) __attribute__ ((format (printf, 4, 5)));
int bus_service_publish (bus_service_t *self, const bus_schema_t *schema, const void *msg);

//  Runs the loop until SIGTERM/SIGINT or bus_service_stop. Writes READY to the
//  ready fd (if any) once the loop starts. Returns 0, or -1 on a resource failure.
int bus_service_run (bus_service_t *self);
void bus_service_stop (bus_service_t *self);
//  Ends the process's loop because the service cannot go on (device's helper
//  died): reason is logged, and bus_service_run returns -1, so the program
//  exits 1 and the supervisor restarts it.
void bus_service_fail (bus_service_t *self, const char *reason);
//  zactor body: runs the service given as args until the pipe says $TERM.
void bus_service_actor (zsock_t *pipe, void *args);

//  Registers a data pipe of the service, so that `bus.pipe.mirror` requests switch
//  its mirroring and its samples are published as `bus.pipe.sample` events (which
//  the broker copies to the tap), and a sender learns the service's loop, so it
//  hands batches over in memory to a receiver on the same loop (a guest's or
//  host's: bifrost-tunnel; bus_pipe_set_loop). The pipe stays the caller's.
struct _bus_pipe_t;
void bus_service_add_pipe (bus_service_t *self, struct _bus_pipe_t *pipe);

//  Counters for status and tests.
typedef struct {
    uint64_t sent, received, dropped, bad_input, timeouts, connects;
} bus_service_stats_t;
void bus_service_stats (bus_service_t *self, bus_service_stats_t *stats);

//  ---------------------------------------------------------------------------
//  A whole service program.
typedef struct {
    const char *name;           //  service name, e.g. "crypto"
    const char *summary;        //  one line for -h
    //  Reads and validates config (may be NULL when none given). Record problems
    //  with bus_config_error; return non-zero only for non-config failures.
    int (*check_config) (bus_config_t *config, void *arg);
    //  Registers handlers, opens what the service owns. Non-zero = cannot run (78).
    int (*setup) (bus_service_t *svc, void *arg);
    //  Releases what setup opened (may be NULL).
    void (*teardown) (bus_service_t *svc, void *arg);
    void *arg;
    //  The capabilities the service keeps (BUS_CAP bits, bus_privs.h), from its
    //  checked config (may be NULL). NULL: none. Everything else is dropped
    //  before the bus starts and setup runs.
    uint64_t (*caps) (bus_config_t *config, void *arg);
    //  Runs after check_config and before the drop, single-threaded, with
    //  every capability the process started with: starts what must keep a
    //  capability the service itself gives up (device's link helper, which
    //  alone keeps CAP_NET_ADMIN: services/device/dev_link.h). Non-zero = cannot
    //  run (78). May be NULL.
    int (*privileged) (bus_config_t *config, void *arg);
    //  The system calls it makes once it runs beyond every service's (BASE):
    //  BUS_SECCOMP_* sets of schemas/syscalls.def (bus_seccomp.h). The filter
    //  is loaded after setup, so setup is not confined by it.
    uint32_t seccomp;
    //  The service holds a secret key: the process is made non-dumpable before
    //  setup, so no core file carries the key, and a process without
    //  CAP_SYS_PTRACE cannot read its memory (ptrace, /proc/PID/mem).
    bool holds_key;
    //  What the service may reach of the file system (bus_privs_sandbox),
    //  from its checked config (may be NULL) and its run directory (the one it
    //  runs with, made and ours): the files it reads and the
    //  directories it writes beneath after the runtime confines it, before
    //  setup (so whatever setup opens must be here). It runs after the
    //  capabilities are dropped and just before the process is confined, with
    //  one thread: the moment to start what must stay outside (the broker's
    //  exe reader, bus_peer.h). The runtime adds the
    //  service's own directory, <run_dir>/<name> (where its pipes' sockets
    //  live, bus_pipe.h), and what every process reads (bus_privs.h). NULL: the
    //  process is not confined (a program of several services is confined only
    //  when each of them declares this).
    void (*sandbox) (bus_config_t *config, void *arg, const char *run_dir, bus_sandbox_t *paths);
} bus_service_def_t;

//  A def's sandbox for a service that needs nothing beyond its own directory
//  and what every process reads (nat, the relay, the router).
void bus_service_sandbox_own (bus_config_t *config, void *arg, const char *run_dir, bus_sandbox_t *paths);

//  The end of a def's setup that creates the service's object: 0 when object
//  is there, else err is logged and -1 (the runtime then exits with 78).
int bus_service_setup_done (const void *object, const char *err);

//  The glue between a def and a service class whose config is checked once
//  (schemas/config/): check_config fills a static checked config, setup hands
//  it to the class's constructor, which takes what it holds and reads nothing
//  again, and teardown destroys the object and releases the config. Expands to
//  s_part_check_config, s_part_setup and s_part_teardown for the def, and
//  s_part_checked (for a caps function). The class provides
//    void check (bus_config_t *config, config_t *out);
//    object_t *create (bus_service_t *svc, config_t *config, char *err, size_t errsize);
//    void destroy (object_t **self_p);  void clear (config_t *config);
#define BUS_SERVICE_PART(object_t, config_t, check, create, destroy, clear) \
    static object_t *s_part_object; \
    static config_t s_part_checked; \
    static int \
    s_part_check_config (bus_config_t *config, void *arg) \
    { \
        clear (&s_part_checked); \
        check (config, &s_part_checked); \
        return 0; \
    } \
    static int \
    s_part_setup (bus_service_t *svc, void *arg) \
    { \
        char err [300]; \
        s_part_object = create (svc, &s_part_checked, err, sizeof err); \
        return bus_service_setup_done (s_part_object, err); \
    } \
    static void \
    s_part_teardown (bus_service_t *svc, void *arg) \
    { \
        destroy (&s_part_object); \
        clear (&s_part_checked); \
    }

//  The def's fields BUS_SERVICE_PART made: { .name = ..., BUS_SERVICE_PART_HOOKS, ... }
#define BUS_SERVICE_PART_HOOKS \
    .check_config = s_part_check_config, .setup = s_part_setup, .teardown = s_part_teardown

//  main() of a service. Exits 0 on a clean stop, 78 on a config error, 1 otherwise.
int bus_service_main (const bus_service_def_t *def, int argc, char **argv);
//  main() of a program that runs several services in one process: defs [0]
//  hosts, the others are its guests (bus_service_new_guest). program names the
//  process (log lines, -h); setup runs in order, teardown in reverse.
int bus_service_main_group (const char *program, const char *summary,
                            const bus_service_def_t *const *defs, size_t count, int argc, char **argv);

void bus_service_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
