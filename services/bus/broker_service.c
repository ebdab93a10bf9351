/*  broker_service: bifrost-bus's program part (broker_service.h). Everything
    the broker does lives in libbus/bus_broker; this only hangs its sockets on
    the service loop. */
#include "bus_broker.h"
#include "bus_log.h"
#include "bus_peer.h"
#include "broker_service.h"

static bus_broker_t *s_broker;

//  Opens the broker's sockets in the run directory and hangs them on the
//  service loop; $BIFROST_HEARTBEAT_MS (tests) shortens its heartbeat
static int
s_setup (bus_service_t *svc, void *arg)
{
    s_broker = bus_broker_new (bus_service_run_dir (svc));
    if (!s_broker)
        return -1;
    const char *hb = getenv ("BIFROST_HEARTBEAT_MS");
    if (hb && atoi (hb) > 0)
        bus_broker_set_heartbeat (s_broker, atoi (hb));
    return bus_broker_attach (s_broker, bus_service_loop (svc));
}

static void
s_teardown (bus_service_t *svc, void *arg)
{
    bus_broker_destroy (&s_broker);
}

//  A client's program (/proc/PID/exe) Landlock hides from the broker: a
//  reader started before the drop and the sandbox (with every capability,
//  so that it can drop them all, its bounding set included) reads that
static int
s_privileged (bus_config_t *config, void *arg)
{
    if (bus_peer_exe_reader ())
        bus_warn ("cannot start the exe reader (%s): a client's program is unknown, "
                  "only bifrostd's children register protected names", strerror (errno));
    return 0;
}

//  It parses every bus message: sandboxed to the run directory, where it
//  makes bus.ipc, events.ipc and tap.ipc, and to reading /proc, where it finds
//  a client's parent, command name and capabilities for the sender policy
//  (bus_peer)
static void
s_sandbox (bus_config_t *config, void *arg, const char *run_dir, bus_sandbox_t *paths)
{
    bus_sandbox_write (paths, "%s", run_dir);
    bus_sandbox_read (paths, "/proc");
}

const bus_service_def_t broker_service_def = {
    .name = "bus",
    .summary = "the message broker: routes control messages, fans out events, feeds the tap",
    .setup = s_setup,
    .teardown = s_teardown,
    .privileged = s_privileged,
    .sandbox = s_sandbox,
    .seccomp = BUS_SECCOMP_PROC,              //  who a client is: /proc/PID/exe
};
