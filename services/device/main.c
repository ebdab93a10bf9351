/*  bifrost-device: the device service process. Everything it does lives in
    dev_service; this main only validates the config and hangs the service on
    the runtime's loop. Needs CAP_NET_ADMIN (to create the interface). */
#include "dev_service.h"
#include "bus_log.h"

static dev_service_t *s_device;

static int
s_check_config (bus_config_t *config, void *arg)
{
    dev_service_check_config (config, NULL);
    return 0;
}

static int
s_setup (bus_service_t *svc, void *arg)
{
    char err [300];
    s_device = dev_service_new (svc, err, sizeof err);
    if (!s_device) {
        bus_error ("%s", err);
        return -1;
    }
    return 0;
}

static void
s_teardown (bus_service_t *svc, void *arg)
{
    dev_service_destroy (&s_device);
}

int
main (int argc, char **argv)
{
    static const bus_service_def_t def = {
        .name = "device",
        .summary = "the TUN/TAP interface: packets to and from crypto, by destination peer",
        .check_config = s_check_config,
        .setup = s_setup,
        .teardown = s_teardown,
    };
    return bus_service_main (&def, argc, argv);
}
