/*  bifrost-bus: the broker process. Everything it does lives in libbus/bus_broker;
    this main only hangs the broker's sockets on the service loop. */
#include "bus_broker.h"
#include "bus_log.h"
#include "bus_service.h"

static bus_broker_t *s_broker;

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

int
main (int argc, char **argv)
{
    static const bus_service_def_t def = {
        .name = "bus",
        .summary = "the message broker: routes control messages, fans out events, feeds the tap",
        .setup = s_setup,
        .teardown = s_teardown,
    };
    return bus_service_main (&def, argc, argv);
}
