/*  router_service: bifrost-router's service and program part (router_service.h).
    The peer list is loaded by check_config and released by teardown; the
    runtime runs no teardown after --check-config, so then it stays reachable
    from s_peers until the process exits (not a leak to valgrind). */
#include "bus_log.h"
#include "node_peers.h"
#include "router_service.h"

static node_peers_t *s_peers;

static int
s_check_config (bus_config_t *config, void *arg)
{
    node_peers_destroy (&s_peers);      //  a second check replaces the first
    //  The router reads the peer list only to refuse questions about unknown peers
    s_peers = node_peers_load (config, NULL);
    return 0;
}

static void
s_on_route (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    router_route_t request;
    char err [200];
    if (bus_envelope_get_msg (env, &router_route_schema, &request, err, sizeof err)) {
        bus_service_reply_error (svc, env, 400, "%s", err);
        return;
    }
    if (!node_peers_get (s_peers, request.index)) {
        bus_service_reply_error (svc, env, 404, "no peer with index %u", request.index);
        return;
    }
    router_route_reply_t reply = { .index = request.index, .next_hop = request.index, .path = "direct", .hops = 1 };
    bus_service_reply (svc, env, &router_route_reply_schema, &reply);
}

static int
s_setup (bus_service_t *svc, void *arg)
{
    bus_service_handle (svc, "router.route", s_on_route, NULL);
    bus_info ("routing %u peers directly", node_peers_count (s_peers));
    return 0;
}

static void
s_teardown (bus_service_t *svc, void *arg)
{
    node_peers_destroy (&s_peers);
}

const bus_service_def_t router_service_def = {
    .name = "router",
    .summary = "next hop for each peer (direct in this version)",
    .check_config = s_check_config,
    .setup = s_setup,
    .teardown = s_teardown,
    .sandbox = bus_service_sandbox_own,
};
