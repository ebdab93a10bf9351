/*  bifrost-discovery: the node's registry client. Everything lives in
    disc_service; this main checks the config, starts it on the runtime's loop,
    and on a clean stop deregisters so the other nodes drop this one at once. */
#include "disc_service.h"
#include "bus_log.h"

static disc_service_t *s_disc;

static int
s_check_config (bus_config_t *config, void *arg)
{
    disc_service_check_config (config);
    return 0;
}

static int
s_setup (bus_service_t *svc, void *arg)
{
    char err [300];
    s_disc = disc_service_new (svc, err, sizeof err);
    return bus_service_setup_done (s_disc, err);
}

static void
s_teardown (bus_service_t *svc, void *arg)
{
    if (s_disc)
        disc_service_leave (s_disc, 1000);
    disc_service_destroy (&s_disc);
}

int
main (int argc, char **argv)
{
    static const bus_service_def_t def = {
        .name = "discovery",
        .summary = "registers the node with the registry and tells the node's services about every peer",
        .check_config = s_check_config,
        .setup = s_setup,
        .teardown = s_teardown,
    };
    return bus_service_main (&def, argc, argv);
}
