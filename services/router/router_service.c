/*  router_service: bifrost-router's service and program part (router_service.h).
    The handlers only decode and encode: what an event means for the table is
    router_links' (tested without a bus), so this file is the bus glue, its
    config, and a self test on a real broker. */
#include "router_service.h"
#include "router_links.h"
#include "bus_clock.h"
#include "bus_log.h"
#include "node_peers.h"
#include "bus_broker.h"
#include "bus_client.h"
#include "bus_endpoint.h"

#include <assert.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _router_service_t {
    bus_service_t *svc;
    router_links_t *links;
    int timer;
    int interval;               //  ms between nat.status questions
    bool asking;                //  one question in flight at most
    int64_t asked;              //  when it was sent
};

//  ---------------------------------------------------------------------------
//  Config

void
router_service_check_config (bus_config_t *config, router_service_config_t *out)
{
    memset (out, 0, sizeof *out);
    bus_cfg_read (config, &bus_cfg_routing_group, NULL, &out->routing, BUS_CFG_CHECK_KEYS, NULL, NULL, NULL);
    route_config_defaults (&out->route);
    out->route.max_hops = (unsigned) out->routing.max_hops;
    out->route.route_timeout = out->routing.route_timeout_ms;
    out->route.split_horizon = out->routing.split_horizon ? ROUTE_SPLIT_POISON : ROUTE_SPLIT_OFF;
    out->status_interval_ms = 2000;
    //  The peer list is checked as every node service checks it (a bad one
    //  is the router's error too); the router learns its peers from the bus
    node_peers_t *peers = config ? node_peers_load (config, NULL) : NULL;
    node_peers_destroy (&peers);
}

void
router_service_config_clear (router_service_config_t *self)
{
    (void) self;                //  holds nothing allocated
}

//  ---------------------------------------------------------------------------
//  Events: the neighbours

//  discovery's peers (schemas/peer.def): peer.up names the peer's registry
//  id, peer.down withdraws it at once; peer.changed says nothing of a path
static void
s_on_peer (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    router_service_t *self = (router_service_t *) arg;
    const char *type = bus_envelope_type (env);
    char err [200] = "";
    if (streq (type, "peer.up")) {
        peer_up_t *up = (peer_up_t *) calloc (1, sizeof *up);
        assert (up);
        if (bus_envelope_get_msg (env, &peer_up_schema, up, err, sizeof err) == 0)
            router_links_peer_up (self->links, up->index, up->name, up->relay_id, bus_clock_ms ());
        free (up);
    }
    else
    if (streq (type, "peer.down")) {
        peer_down_t down;
        if (bus_envelope_get_msg (env, &peer_down_schema, &down, err, sizeof err) == 0)
            router_links_peer_down (self->links, down.index, bus_clock_ms ());
    }
    if (*err)
        bus_warn ("%s: %s", type, err);
}

//  nat's peers (schemas/nat.def): nat.peer's state and endpoint make or
//  withdraw a neighbour, nat.peer.down withdraws it at once
static void
s_on_nat_peer (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    router_service_t *self = (router_service_t *) arg;
    const char *type = bus_envelope_type (env);
    char err [200] = "";
    if (streq (type, "nat.peer")) {
        nat_peer_event_t event;
        if (bus_envelope_get_msg (env, &nat_peer_event_schema, &event, err, sizeof err) == 0)
            router_links_nat (self->links, event.index, event.name, event.state, event.endpoint, bus_clock_ms ());
    }
    else
    if (streq (type, "nat.peer.down")) {
        nat_peer_down_t down;
        if (bus_envelope_get_msg (env, &nat_peer_down_schema, &down, err, sizeof err) == 0)
            router_links_nat_down (self->links, down.index, bus_clock_ms ());
    }
    if (*err)
        bus_warn ("%s: %s", type, err);
}

//  nat.status: each peer's path in words and its RTT (nat measures it; no
//  event carries it)
static void
s_on_status (bus_service_t *svc, bus_envelope_t *reply, void *arg)
{
    router_service_t *self = (router_service_t *) arg;
    self->asking = false;
    if (!reply)
        return;                 //  nat is away: the events still hold
    nat_status_reply_t *status = (nat_status_reply_t *) calloc (1, sizeof *status);
    assert (status);
    char err [200];
    if (bus_envelope_get_msg (reply, &nat_status_reply_schema, status, err, sizeof err) == 0) {
        int64_t now = bus_clock_ms ();
        router_links_status_begin (self->links);
        for (uint32_t i = 0; i < status->peers_count; i++) {
            const nat_status_peer_t *p = &status->peers [i];
            router_links_status (self->links, p->index, p->name, p->state, p->endpoint, p->path, p->relay_id,
                                 p->rtt_us, self->asked, now);
        }
        router_links_status_end (self->links, self->asked, now);
    }
    else
        bus_debug ("nat.status: %s", err);
    free (status);
}

//  Every interval: routes past route_timeout expire; nat is asked for its
//  peers' paths (one question at a time), which also brings back a peer
//  whose events were missed
static int
s_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    router_service_t *self = (router_service_t *) arg;
    int64_t now = bus_clock_ms ();
    route_table_expire (router_links_table (self->links), now);
    if (!self->asking) {
        nat_status_t request = { .peer = "" };
        self->asked = now;
        self->asking = bus_service_request (self->svc, "nat", &nat_status_schema, &request, self->interval,
                                            s_on_status, self) == 0;
    }
    return 0;
}

//  ---------------------------------------------------------------------------
//  Questions

//  The peer's name, or its id in hex when the router never heard a name
static void
s_name (router_service_t *self, uint64_t id, char *out, size_t size)
{
    const router_peer_t *p = router_links_find_id (self->links, id);
    if (p && *p->name)
        snprintf (out, size, "%s", p->name);
    else
        snprintf (out, size, "%016" PRIx64, id);
}

static void
s_on_route (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    router_service_t *self = (router_service_t *) arg;
    router_route_t request;
    char err [200];
    if (bus_envelope_get_msg (env, &router_route_schema, &request, err, sizeof err)) {
        bus_service_reply_error (svc, env, 400, "%s", err);
        return;
    }
    const router_peer_t *peer = router_links_find (self->links, request.index);
    route_t route;
    if (!peer || !route_table_best (router_links_table (self->links), peer->id, &route)) {
        bus_service_reply_error (svc, env, 404, "no route to peer index %u", request.index);
        return;
    }
    const router_peer_t *next = router_links_find_id (self->links, route.next_hop);
    assert (next);              //  every next hop is a neighbour router_links made
    router_route_reply_t reply = { .index = request.index, .next_hop = next->index, .hops = route.hops,
                                   .metric = route.metric };
    snprintf (reply.path, sizeof reply.path, "%s", route_tier_name ((route_tier_t) route.tier));
    bus_service_reply (svc, env, &router_route_reply_schema, &reply);
}

static int
s_by_index (const void *a, const void *b)
{
    uint32_t x = ((const router_routes_route_t *) a)->index, y = ((const router_routes_route_t *) b)->index;
    return x < y ? -1 : x > y;
}

static void
s_on_routes (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    router_service_t *self = (router_service_t *) arg;
    router_routes_t request;
    char err [200];
    if (bus_envelope_get_msg (env, &router_routes_schema, &request, err, sizeof err)) {
        bus_service_reply_error (svc, env, 400, "%s", err);
        return;
    }
    route_table_t *table = router_links_table (self->links);
    size_t size = route_table_size (table);
    route_t *routes = (route_t *) calloc (size ? size : 1, sizeof *routes);
    router_routes_reply_t *reply = (router_routes_reply_t *) calloc (1, sizeof *reply);
    assert (routes && reply);
    size_t n = route_table_routes (table, routes, size);
    int64_t now = bus_clock_ms ();
    reply->neighbours = (uint32_t) router_links_up (self->links);
    for (size_t i = 0; i < n; i++) {
        const route_t *r = &routes [i];
        const router_peer_t *dest = router_links_find_id (self->links, r->dest);
        const router_peer_t *next = router_links_find_id (self->links, r->next_hop);
        assert (dest && next);  //  a route is to a peer router_links knows (no announcements yet)
        if (*request.peer && !streq (request.peer, dest->name))
            continue;
        reply->total++;
        if (reply->routes_count == sizeof reply->routes / sizeof reply->routes [0])
            continue;
        router_routes_route_t *row = &reply->routes [reply->routes_count++];
        row->index = dest->index;
        s_name (self, r->dest, row->name, sizeof row->name);
        if (dest->registry_id)
            snprintf (row->peer_id, sizeof row->peer_id, "%016" PRIx64, r->dest);
        row->next_hop = next->index;
        s_name (self, r->next_hop, row->next_hop_name, sizeof row->next_hop_name);
        row->metric = r->metric;
        row->hops = r->hops;
        snprintf (row->path, sizeof row->path, "%s", route_tier_name ((route_tier_t) r->tier));
        for (size_t h = 0; h < r->hops && h < sizeof row->via / sizeof row->via [0]; h++)
            s_name (self, r->path [h], row->via [row->via_count++], sizeof row->via [0]);
        row->rtt_ms = next->rtt_ms;
        row->age_ms = now - r->updated;
    }
    qsort (reply->routes, reply->routes_count, sizeof reply->routes [0], s_by_index);
    bus_service_reply (svc, env, &router_routes_reply_schema, reply);
    free (reply);
    free (routes);
}

//  ---------------------------------------------------------------------------
//  Life cycle

router_service_t *
router_service_new (bus_service_t *svc, router_service_config_t *config, char *err, size_t err_size)
{
    assert (svc && config);
    router_service_t *self = (router_service_t *) calloc (1, sizeof *self);
    assert (self);
    self->svc = svc;
    self->links = router_links_new (&config->route);
    self->interval = config->status_interval_ms;
    self->timer = bus_loop_timer (bus_service_loop (svc), (size_t) self->interval, 0, s_tick, self);
    bus_service_handle (svc, "router.route", s_on_route, self);
    bus_service_handle (svc, "router.routes", s_on_routes, self);
    bus_service_subscribe (svc, "peer.", s_on_peer, self);
    bus_service_subscribe (svc, "nat.peer", s_on_nat_peer, self);
    bus_info ("routing: max %u hops, routes expire after %" PRId64 " s; neighbours from nat, asked every %d ms",
              config->route.max_hops, config->route.route_timeout / 1000, self->interval);
    return self;
}

void
router_service_destroy (router_service_t **self_p)
{
    assert (self_p);
    router_service_t *self = *self_p;
    if (!self)
        return;
    bus_loop_t *loop = bus_service_loop (self->svc);
    if (loop && self->timer >= 0)
        bus_loop_timer_end (loop, self->timer);
    router_links_destroy (&self->links);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------------
//  The program

BUS_SERVICE_PART (router_service_t, router_service_config_t, router_service_check_config,
                  router_service_new, router_service_destroy, router_service_config_clear)

//  It computes, never forwards: no socket of its own beyond the bus, so
//  nothing beyond BASE in its seccomp filter, and only its own directory
const bus_service_def_t router_service_def = {
    .name = "router",
    .summary = "routes: the next hop for each peer, from the neighbours nat reports",
    BUS_SERVICE_PART_HOOKS,
    .sandbox = bus_service_sandbox_own,
};

//  ---------------------------------------------------------------------------
//  Self test: the router on a real bus (an in-process broker), discovery and
//  nat played by two services of the test that publish their events every
//  50 ms (the router may subscribe after the first) and answer nat.status.
//  Step 0: bob (a peer of the config: no registry id) up direct; carol (index
//  4, registry id c4) up direct, 12 ms in nat.status; dave (5, d5) up through
//  the relay. Step 1: carol connecting, then nat.peer.down. Step 2: dave's
//  peer.down.

static atomic_int s_test_step;

static void
s_test_nat_peer (bus_service_t *nat, uint32_t index, const char *name, const char *state, const char *endpoint)
{
    nat_peer_event_t event = { .index = index, .direct = true };
    snprintf (event.name, sizeof event.name, "%s", name);
    snprintf (event.state, sizeof event.state, "%s", state);
    snprintf (event.endpoint, sizeof event.endpoint, "%s", endpoint);
    bus_service_publish (nat, &nat_peer_event_schema, &event);
}

static void
s_test_peer_up (bus_service_t *discovery, uint32_t index, const char *name, const char *id)
{
    peer_up_t *up = (peer_up_t *) calloc (1, sizeof *up);
    assert (up);
    up->index = index;
    snprintf (up->name, sizeof up->name, "%s", name);
    snprintf (up->relay_id, sizeof up->relay_id, "%s", id);
    snprintf (up->source, sizeof up->source, "registry");
    bus_service_publish (discovery, &peer_up_schema, up);
    free (up);
}

static int
s_test_discovery (bus_loop_t *loop, int timer_id, void *arg)
{
    bus_service_t *discovery = (bus_service_t *) arg;
    int step = atomic_load (&s_test_step);
    s_test_peer_up (discovery, 4, "carol", "00000000000000c4");
    if (step < 2)
        s_test_peer_up (discovery, 5, "dave", "00000000000000d5");
    else {
        peer_down_t down = { .index = 5 };
        snprintf (down.name, sizeof down.name, "dave");
        snprintf (down.reason, sizeof down.reason, "left");
        bus_service_publish (discovery, &peer_down_schema, &down);
    }
    return 0;
}

static int
s_test_nat (bus_loop_t *loop, int timer_id, void *arg)
{
    bus_service_t *nat = (bus_service_t *) arg;
    int step = atomic_load (&s_test_step);
    s_test_nat_peer (nat, 0, "bob", "up", "192.0.2.2:51820");
    if (step == 0)
        s_test_nat_peer (nat, 4, "carol", "up", "192.0.2.4:51820");
    else {
        s_test_nat_peer (nat, 4, "carol", "connecting", "192.0.2.4:51820");
        nat_peer_down_t down = { .index = 4, .silent_ms = 11000 };
        snprintf (down.name, sizeof down.name, "carol");
        bus_service_publish (nat, &nat_peer_down_schema, &down);
    }
    if (step < 2)
        s_test_nat_peer (nat, 5, "dave", "up", "relay/00000000000000d5");
    return 0;
}

static void
s_test_status_row (nat_status_reply_t *reply, uint32_t index, const char *name, const char *state,
                   const char *endpoint, const char *path, int64_t rtt_us)
{
    nat_status_peer_t *p = &reply->peers [reply->peers_count++];
    p->index = index;
    snprintf (p->name, sizeof p->name, "%s", name);
    snprintf (p->state, sizeof p->state, "%s", state);
    snprintf (p->endpoint, sizeof p->endpoint, "%s", endpoint);
    snprintf (p->path, sizeof p->path, "%s", path);
    p->rtt_us = rtt_us;
}

//  nat.status as nat answers it at each step
static void
s_test_on_status (bus_service_t *nat, bus_envelope_t *env, void *arg)
{
    int step = atomic_load (&s_test_step);
    nat_status_reply_t *reply = (nat_status_reply_t *) calloc (1, sizeof *reply);
    assert (reply);
    s_test_status_row (reply, 0, "bob", "up", "192.0.2.2:51820", "direct", -1);
    if (step == 0)
        s_test_status_row (reply, 4, "carol", "up", "192.0.2.4:51820", "direct", 11500);
    else
        s_test_status_row (reply, 4, "carol", "connecting", "192.0.2.4:51820", "", -1);
    if (step < 2)
        s_test_status_row (reply, 5, "dave", "up", "relay/00000000000000d5", "relay r1", 40000);
    bus_service_reply (nat, env, &nat_status_reply_schema, reply);
    free (reply);
}

//  router.routes until its rows are `want` (names:path:metric, by index,
//  joined by spaces), 5 s at most; the last answer in *got
static bool
s_test_routes (bus_client_t *client, const char *want, char *got, size_t size)
{
    router_routes_reply_t *reply = (router_routes_reply_t *) calloc (1, sizeof *reply);
    assert (reply);
    bool same = false;
    for (int attempt = 0; attempt < 250 && !same; attempt++) {
        char err [200];
        router_routes_t request = { .peer = "" };
        bus_envelope_t *env = bus_client_request (client, "router", &router_routes_schema, &request, 1000,
                                                  err, sizeof err);
        *got = 0;
        if (env && bus_envelope_get_msg (env, &router_routes_reply_schema, reply, err, sizeof err) == 0) {
            size_t len = 0;
            for (uint32_t i = 0; i < reply->routes_count && len < size; i++) {
                const router_routes_route_t *r = &reply->routes [i];
                len += (size_t) snprintf (got + len, size - len, "%s%s:%s:%u", i ? " " : "", r->name, r->path,
                                          r->metric);
            }
            same = streq (got, want) && reply->total == reply->routes_count;
        }
        bus_envelope_destroy (&env);
        if (!same)
            zclock_sleep (20);
    }
    free (reply);
    return same;
}

//  router.route for index: true with the reply, false when the router
//  refused for want of a route (any other failure fails the test)
static bool
s_test_route (bus_client_t *client, uint32_t index, router_route_reply_t *reply)
{
    char err [200];
    router_route_t request = { .index = index };
    bus_envelope_t *env = bus_client_request (client, "router", &router_route_schema, &request, 1000, err, sizeof err);
    if (!env) {
        assert (strstr (err, "no route to peer index"));
        return false;
    }
    assert (bus_envelope_get_msg (env, &router_route_reply_schema, reply, err, sizeof err) == 0);
    bus_envelope_destroy (&env);
    return true;
}

static void
s_test_bus (router_service_config_t *config, bool verbose)
{
    char dir [] = "/tmp/router-service-test-XXXXXX";
    assert (mkdtemp (dir));
    zactor_t *broker = zactor_new (bus_broker_actor, dir);
    assert (broker);
    char err [300];
    bus_service_t *svc = bus_service_new ("router", NULL, dir);
    assert (svc);
    config->status_interval_ms = 100;
    router_service_t *self = router_service_new (svc, config, err, sizeof err);
    assert (self);
    zactor_t *actor = zactor_new (bus_service_actor, svc);
    atomic_store (&s_test_step, 0);
    bus_service_t *discovery = bus_service_new ("discovery", NULL, dir);
    bus_service_t *nat = bus_service_new ("nat", NULL, dir);
    assert (discovery && nat);
    bus_loop_timer (bus_service_loop (discovery), 50, 0, s_test_discovery, discovery);
    bus_loop_timer (bus_service_loop (nat), 50, 0, s_test_nat, nat);
    bus_service_handle (nat, "nat.status", s_test_on_status, NULL);
    zactor_t *discovery_actor = zactor_new (bus_service_actor, discovery);
    zactor_t *nat_actor = zactor_new (bus_service_actor, nat);
    char endpoint [BUS_PATH_MAX];
    assert (bus_endpoint (endpoint, sizeof endpoint, dir, "bus") == 0);
    bus_client_t *client = bus_client_new (endpoint, "router-test", err, sizeof err);
    assert (client);

    //  Step 0: bob direct with no sample yet (100 + 100), carol direct at
    //  nat.status's 11.5 ms (12 + 100), dave through the relay (40 + 100)
    char got [300];
    bool same = s_test_routes (client, "bob:direct:200 carol:direct:112 dave:relay:140", got, sizeof got);
    if (!same)
        printf ("router_service: step 0, got '%s'\n", got);
    assert (same);
    router_route_reply_t reply;
    assert (s_test_route (client, 4, &reply));
    assert (reply.index == 4 && reply.next_hop == 4 && streq (reply.path, "direct") && reply.hops == 1
            && reply.metric == 112);
    assert (s_test_route (client, 5, &reply));
    assert (reply.next_hop == 5 && streq (reply.path, "relay") && reply.hops == 1 && reply.metric == 140);
    assert (s_test_route (client, 0, &reply) && streq (reply.path, "direct"));
    assert (!s_test_route (client, 9, &reply));
    //  One peer by name, with its registry id and path
    router_routes_t one = { .peer = "dave" };
    bus_envelope_t *env = bus_client_request (client, "router", &router_routes_schema, &one, 1000, err, sizeof err);
    router_routes_reply_t *table = (router_routes_reply_t *) calloc (1, sizeof *table);
    assert (table && env && bus_envelope_get_msg (env, &router_routes_reply_schema, table, err, sizeof err) == 0);
    assert (table->neighbours == 3 && table->total == 1 && table->routes_count == 1);
    const router_routes_route_t *row = &table->routes [0];
    assert (row->index == 5 && streq (row->peer_id, "00000000000000d5") && row->next_hop == 5
            && streq (row->next_hop_name, "dave") && row->via_count == 1 && streq (row->via [0], "dave")
            && row->rtt_ms == 40 && row->hops == 1 && row->age_ms >= 0 && row->age_ms < 2000);
    free (table);
    bus_envelope_destroy (&env);
    if (verbose)
        printf ("router_service: up direct and through the relay: %s\n", got);

    //  Step 1: carol down in nat: gone from the table and from router.route
    atomic_store (&s_test_step, 1);
    same = s_test_routes (client, "bob:direct:200 dave:relay:140", got, sizeof got);
    if (!same)
        printf ("router_service: step 1, got '%s'\n", got);
    assert (same);
    assert (!s_test_route (client, 4, &reply));
    //  Step 2: dave leaves the network (discovery's peer.down)
    atomic_store (&s_test_step, 2);
    same = s_test_routes (client, "bob:direct:200", got, sizeof got);
    if (!same)
        printf ("router_service: step 2, got '%s'\n", got);
    assert (same);
    assert (!s_test_route (client, 5, &reply));
    if (verbose)
        printf ("router_service: carol down, dave gone: %s\n", got);

    //  The table is the service's thread's: stop the publishers, then it
    zactor_destroy (&nat_actor);
    zactor_destroy (&discovery_actor);
    zactor_destroy (&actor);
    bus_client_destroy (&client);
    bus_service_destroy (&nat);
    bus_service_destroy (&discovery);
    router_service_destroy (&self);
    bus_service_destroy (&svc);
    zactor_destroy (&broker);
    bus_run_dir_remove (dir);
}

//  The routing group read into the table's config
static void
s_test_config (const char *text, size_t errors, router_service_config_t *out)
{
    char err [300];
    bus_config_t *config = bus_config_load_string (text, "test.cfg", err, sizeof err);
    assert (config);
    router_service_check_config (config, out);
    assert (bus_config_error_count (config) == errors);
    bus_config_destroy (&config);
}

void
router_service_test (bool verbose)
{
    //  The config's bounds and defaults are the route table's
    route_config_t defaults;
    route_config_defaults (&defaults);
    const bus_cfg_key_t *hops = bus_cfg_key (&bus_cfg_routing_group, "max_hops");
    const bus_cfg_key_t *timeout = bus_cfg_key (&bus_cfg_routing_group, "route_timeout");
    assert (hops && hops->max == ROUTE_WIRE_MAX_PATH && hops->def == defaults.max_hops);
    assert (timeout && timeout->def == defaults.route_timeout);
    router_service_config_t c;
    s_test_config ("x = 1;", 0, &c);
    assert (c.route.max_hops == 8 && c.route.route_timeout == 300000 && c.route.split_horizon == ROUTE_SPLIT_POISON);
    s_test_config ("routing = { max_hops = 3; route_timeout = \"1m\"; split_horizon = false; };", 0, &c);
    assert (c.route.max_hops == 3 && c.route.route_timeout == 60000 && c.route.split_horizon == ROUTE_SPLIT_OFF);
    s_test_config ("routing = { max_hops = 17; };", 1, &c);
    s_test_config ("routing = { max_hop = 3; };", 1, &c);
    s_test_config ("routing = 1;", 1, &c);
    s_test_config ("x = 1;", 0, &c);
    s_test_bus (&c, verbose);
    router_service_config_clear (&c);
    if (verbose)
        printf ("router_service: ok\n");
}
