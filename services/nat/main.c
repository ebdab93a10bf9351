/*  bifrost-nat: the internet-facing service. Everything it does lives in
    nat_service (UDP socket, data pipes to crypto, peer state); this main only
    checks the config and hangs the service on the runtime's loop. */
#include "nat_service.h"
#include "bus_log.h"

static nat_service_t *s_nat;

static int
s_check_config (bus_config_t *config, void *arg)
{
    nat_service_check_config (config, NULL);
    return 0;
}

static int
s_setup (bus_service_t *svc, void *arg)
{
    char err [300];
    s_nat = nat_service_new (svc, err, sizeof err);
    return bus_service_setup_done (s_nat, err);
}

static void
s_teardown (bus_service_t *svc, void *arg)
{
    nat_service_destroy (&s_nat);
}

int
main (int argc, char **argv)
{
    static const bus_service_def_t def = {
        .name = "nat",
        .summary = "the UDP socket to the internet: moves sealed datagrams between the wire and crypto",
        .check_config = s_check_config,
        .setup = s_setup,
        .teardown = s_teardown,
    };
    return bus_service_main (&def, argc, argv);
}
