/*  broker_service: bifrost-bus's program part (broker_service.h). Everything
    the broker does lives in libbus/bus_broker; this only hangs its sockets on
    the service loop. */
#include "bus_broker.h"
#include "bus_log.h"
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

const bus_service_def_t broker_service_def = {
    .name = "bus",
    .summary = "the message broker: routes control messages, fans out events, feeds the tap",
    .setup = s_setup,
    .teardown = s_teardown,
    .seccomp = BUS_SECCOMP_PROC,              //  who a client is: /proc/PID/exe
};
