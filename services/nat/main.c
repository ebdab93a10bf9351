/*  bifrost-nat: the internet-facing service. Everything it does lives in
    nat_service (UDP socket, data pipes to crypto, peer state); this main only
    checks the config and hangs the service on the runtime's loop. */
#include "nat_service.h"
#include "bus_log.h"
#include "bus_privs.h"
#include "nat_endpoint.h"

static nat_service_t *s_nat;
static nat_service_config_t s_cfg;      //  as checked, for s_caps

static int
s_check_config (bus_config_t *config, void *arg)
{
    nat_service_check_config (config, &s_cfg);
    return 0;
}

static int
s_setup (bus_service_t *svc, void *arg)
{
    char err [300];
    s_nat = nat_service_new (svc, err, sizeof err);
    return bus_service_setup_done (s_nat, err);
}

//  None (DESIGN.md), but CAP_NET_BIND_SERVICE while the port to listen on is
//  below 1024 (connection.listen = "*:443" gets through strict firewalls)
static uint64_t
s_caps (bus_config_t *config, void *arg)
{
    nat_addr_t addr;
    char err [160];
    if (nat_endpoint_parse_bind (&addr, s_cfg.listen, err, sizeof err) == 0
    &&  nat_addr_port (&addr) > 0 && nat_addr_port (&addr) < 1024)
        return BUS_CAP (CAP_NET_BIND_SERVICE);
    return 0;
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
        .caps = s_caps,
        .sandboxed = true,
    };
    return bus_service_main (&def, argc, argv);
}
