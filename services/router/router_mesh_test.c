/*  router_mesh_test: several real router services talking to each other (the
    self test `router_mesh`). Each node has a bus of its own (an in-process
    broker: a node's events are its own, as on real nodes) with the router and
    three test services playing discovery (node.address, peer.up), nat
    (nat.peer, nat.status with an RTT per link) and crypto. The test crypto
    carries what the router publishes as route.announce for neighbour index i
    to that neighbour's router as route.heard (from our index there), through
    a locked inbox the neighbour's crypto drains every 5 ms, and it records
    every route.next. So the announcements tested are the service's own,
    encoded, split, rate-limited and decoded, not the library's in a loop.

    Peer index k is node k on every node. Links (RTT): a-b 10 ms, b-c 10,
    a-d 30, d-c 30, c-e 5; a's discovery does not list e (but for the groups'
    test). Group reports (type 50) go end to end: the test crypto carries one
    to any node the sender has a route to, as a routed session would, and
    records group.members. */
#include "router_service.h"
#include "router_groups.h"
#include "router_mesh_test.h"
#include "bus_broker.h"
#include "bus_client.h"
#include "bus_endpoint.h"
#include "bus_clock.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define M_NODES     6           //  index 0 unused: nodes 1 .. 5 = a .. e
#define M_INBOX     512
#define M_GROUPS    4           //  group.members recorded per node

typedef struct {
    uint32_t index;
    uint32_t size;
    uint8_t data [ROUTE_WIRE_MAX_SIZE];
} m_heard_t;

typedef struct _m_node_t m_node_t;
struct _m_node_t {
    int k;
    char name [2];
    uint64_t id;
    m_node_t *mesh;             //  the array of nodes
    char dir [64];
    zactor_t *broker;
    bus_service_t *svc, *discovery, *nat, *crypto;
    router_service_t *router;
    zactor_t *router_actor, *discovery_actor, *nat_actor, *crypto_actor;
    bus_client_t *client;
    uint32_t rtt_ms [M_NODES];  //  0: no link to node k
    atomic_bool up [M_NODES];   //  nat says the link to node k is up
    bool listed [M_NODES];      //  discovery names node k
    atomic_bool restate;        //  crypto publishes bus.state again (once)
    _Atomic int64_t down_at [M_NODES];  //  when nat first said the link to node k was down
    pthread_mutex_t lock;       //  guards what follows
    m_heard_t *inbox;
    size_t inbox_count;
    route_next_t next [M_NODES + 4];
    bool next_seen [M_NODES + 4];
    int64_t next_at [M_NODES + 4];      //  when it arrived
    uint64_t next_events, announced, reports;
    group_members_t groups [M_GROUPS];  //  group.members by group, as last heard
    int64_t groups_at [M_GROUPS];
    route_tree_t tree [M_NODES + 4];    //  route.tree by origin index (0: this node's own)
    bool tree_seen [M_NODES + 4];
};

static bool s_list_all;         //  every node's discovery names every other

static void
s_hex (uint64_t id, char *out, size_t size)
{
    snprintf (out, size, "%016" PRIx64, id);
}

//  discovery: our id, and the peers it names, every 50 ms
static int
s_discovery_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    m_node_t *node = (m_node_t *) arg;
    node_address_t address = { .address = "10.100.0.1/16", .network_id = "mesh" };
    s_hex (node->id, address.peer_id, sizeof address.peer_id);
    bus_service_publish (node->discovery, &node_address_schema, &address);
    peer_up_t *up = (peer_up_t *) calloc (1, sizeof *up);
    assert (up);
    for (int k = 1; k < M_NODES; k++) {
        if (!node->listed [k])
            continue;
        memset (up, 0, sizeof *up);
        up->index = (uint32_t) k;
        snprintf (up->name, sizeof up->name, "%s", node->mesh [k].name);
        snprintf (up->source, sizeof up->source, "registry");
        s_hex (node->mesh [k].id, up->peer_id, sizeof up->peer_id);
        bus_service_publish (node->discovery, &peer_up_schema, up);
    }
    free (up);
    return 0;
}

//  nat: each link up or not, every 50 ms
static int
s_nat_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    m_node_t *node = (m_node_t *) arg;
    for (int k = 1; k < M_NODES; k++) {
        if (!node->rtt_ms [k])
            continue;
        if (!atomic_load (&node->up [k])) {
            //  nat.peer.down (the failover's trigger): when it first went
            //  out is kept, to time the router's answer
            nat_peer_down_t down = { .index = (uint32_t) k, .silent_ms = 11000 };
            snprintf (down.name, sizeof down.name, "%s", node->mesh [k].name);
            int64_t none = 0;
            atomic_compare_exchange_strong (&node->down_at [k], &none, bus_clock_ms ());
            bus_service_publish (node->nat, &nat_peer_down_schema, &down);
            continue;
        }
        atomic_store (&node->down_at [k], 0);
        nat_peer_event_t event = { .index = (uint32_t) k, .direct = true };
        snprintf (event.name, sizeof event.name, "%s", node->mesh [k].name);
        snprintf (event.state, sizeof event.state, "up");
        snprintf (event.endpoint, sizeof event.endpoint, "192.0.2.%d:51820", k);
        bus_service_publish (node->nat, &nat_peer_event_schema, &event);
    }
    return 0;
}

static void
s_nat_status (bus_service_t *nat, bus_envelope_t *env, void *arg)
{
    m_node_t *node = (m_node_t *) arg;
    nat_status_reply_t *reply = (nat_status_reply_t *) calloc (1, sizeof *reply);
    assert (reply);
    for (int k = 1; k < M_NODES; k++) {
        if (!node->rtt_ms [k])
            continue;
        nat_status_peer_t *p = &reply->peers [reply->peers_count++];
        p->index = (uint32_t) k;
        snprintf (p->name, sizeof p->name, "%s", node->mesh [k].name);
        bool up = atomic_load (&node->up [k]);
        snprintf (p->state, sizeof p->state, "%s", up ? "up" : "connecting");
        snprintf (p->endpoint, sizeof p->endpoint, "192.0.2.%d:51820", k);
        snprintf (p->path, sizeof p->path, "%s", up ? "direct" : "");
        p->rtt_us = up ? (int64_t) node->rtt_ms [k] * 1000 : -1;
    }
    bus_service_reply (nat, env, &nat_status_reply_schema, reply);
    free (reply);
}

static void
s_inbox_put (m_node_t *node, uint32_t index, const uint8_t *data, size_t size)
{
    pthread_mutex_lock (&node->lock);
    if (node->inbox_count < M_INBOX) {
        m_heard_t *h = &node->inbox [node->inbox_count++];
        h->index = index;
        h->size = (uint32_t) size;
        memcpy (h->data, data, size);
    }
    pthread_mutex_unlock (&node->lock);
}

//  crypto: route.announce for a neighbour whose link is up goes to its inbox
//  as from us; route.next is recorded
static void
s_crypto_event (bus_service_t *crypto, bus_envelope_t *env, void *arg)
{
    m_node_t *node = (m_node_t *) arg;
    char err [200];
    if (streq (bus_envelope_type (env), "route.announce")) {
        route_announce_t *msg = (route_announce_t *) calloc (1, sizeof *msg);
        assert (msg);
        assert (bus_envelope_get_msg (env, &route_announce_schema, msg, err, sizeof err) == 0);
        uint32_t k = msg->index;
        assert (msg->announcement_size <= ROUTE_WIRE_MAX_SIZE);
        if (msg->announcement_size && msg->announcement [0] == ROUTE_WIRE_GROUPS) {
            //  A group report: end to end, to any node we have a route to
            assert (k > 0 && k < M_NODES);
            pthread_mutex_lock (&node->lock);
            //  (a node whose discovery does not name us has no session with us)
            bool routed = node->next_seen [k] && node->next [k].next_hops_count > 0 && node->mesh [k].listed [node->k];
            node->reports++;
            pthread_mutex_unlock (&node->lock);
            if (routed)
                s_inbox_put (&node->mesh [k], (uint32_t) node->k, msg->announcement, msg->announcement_size);
            free (msg);
            return;
        }
        assert (k > 0 && k < M_NODES && node->rtt_ms [k]);     //  only to neighbours
        pthread_mutex_lock (&node->lock);
        node->announced++;
        pthread_mutex_unlock (&node->lock);
        if (atomic_load (&node->up [k]) && atomic_load (&node->mesh [k].up [node->k]))
            s_inbox_put (&node->mesh [k], (uint32_t) node->k, msg->announcement, msg->announcement_size);
        free (msg);
    }
    else
    if (streq (bus_envelope_type (env), "route.next")) {
        route_next_t next;
        assert (bus_envelope_get_msg (env, &route_next_schema, &next, err, sizeof err) == 0);
        assert (next.index < M_NODES + 4);
        pthread_mutex_lock (&node->lock);
        node->next [next.index] = next;
        node->next_seen [next.index] = true;
        node->next_at [next.index] = bus_clock_ms ();
        node->next_events++;
        pthread_mutex_unlock (&node->lock);
    }
    else
    if (streq (bus_envelope_type (env), "group.members")) {
        group_members_t *members = (group_members_t *) calloc (1, sizeof *members);
        assert (members);
        assert (bus_envelope_get_msg (env, &group_members_schema, members, err, sizeof err) == 0);
        pthread_mutex_lock (&node->lock);
        size_t slot = 0;
        while (slot < M_GROUPS && *node->groups [slot].group && !streq (node->groups [slot].group, members->group))
            slot++;
        assert (slot < M_GROUPS);
        node->groups [slot] = *members;
        node->groups_at [slot] = bus_clock_ms ();
        pthread_mutex_unlock (&node->lock);
        free (members);
    }
    else
    if (streq (bus_envelope_type (env), "route.tree")) {
        route_tree_t *tree = (route_tree_t *) calloc (1, sizeof *tree);
        assert (tree);
        assert (bus_envelope_get_msg (env, &route_tree_schema, tree, err, sizeof err) == 0);
        uint32_t slot = tree->origin == UINT32_MAX ? 0 : tree->origin;
        assert (slot < M_NODES + 4 && (slot != 0 || tree->origin_id == node->id));
        assert (tree->self_id == node->id);
        pthread_mutex_lock (&node->lock);
        node->tree [slot] = *tree;
        node->tree_seen [slot] = true;
        pthread_mutex_unlock (&node->lock);
        free (tree);
    }
}

static int
s_crypto_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    m_node_t *node = (m_node_t *) arg;
    route_heard_t *heard = (route_heard_t *) calloc (1, sizeof *heard);
    assert (heard);
    pthread_mutex_lock (&node->lock);
    for (size_t i = 0; i < node->inbox_count; i++) {
        heard->index = node->inbox [i].index;
        heard->announcement_size = node->inbox [i].size;
        memcpy (heard->announcement, node->inbox [i].data, node->inbox [i].size);
        bus_service_publish (node->crypto, &route_heard_schema, heard);
    }
    node->inbox_count = 0;
    pthread_mutex_unlock (&node->lock);
    free (heard);
    if (atomic_exchange (&node->restate, false)) {
        bus_state_t state = { .epoch = 1, .generation = 2 };
        snprintf (state.instance, sizeof state.instance, "crypto.1");
        bus_service_publish (node->crypto, &bus_state_schema, &state);
    }
    return 0;
}

//  ---------------------------------------------------------------------------

static void
s_link (m_node_t *mesh, int x, int y, uint32_t rtt_ms)
{
    mesh [x].rtt_ms [y] = mesh [y].rtt_ms [x] = rtt_ms;
    atomic_store (&mesh [x].up [y], true);
    atomic_store (&mesh [y].up [x], true);
}

//  Both ends of a link up or down
static void
s_set_up (m_node_t *mesh, int x, int y, bool up)
{
    atomic_store (&mesh [x].up [y], up);
    atomic_store (&mesh [y].up [x], up);
}

static void
s_mesh_start (m_node_t *mesh, const char *const *configs)
{
    for (int k = 1; k < M_NODES; k++) {
        m_node_t *node = &mesh [k];
        node->k = k;
        node->name [0] = (char) ('a' + k - 1);
        node->id = 0x11 * (uint64_t) (k + 9);           //  a = aa, b = bb, ... e = ee
        node->mesh = mesh;
        pthread_mutex_init (&node->lock, NULL);
        node->inbox = (m_heard_t *) calloc (M_INBOX, sizeof *node->inbox);
        assert (node->inbox);
        for (int j = 1; j < M_NODES; j++)
            node->listed [j] = j != k && (s_list_all || !(k == 1 && j == 5));
    }
    for (int k = 1; k < M_NODES; k++) {
        m_node_t *node = &mesh [k];
        snprintf (node->dir, sizeof node->dir, "/tmp/router-mesh-test-XXXXXX");
        assert (mkdtemp (node->dir));
        node->broker = zactor_new (bus_broker_actor, node->dir);
        assert (node->broker);
        char err [300];
        bus_config_t *config = bus_config_load_string (configs [k] ? configs [k] : "x = 1;", "test.cfg",
                                                       err, sizeof err);
        assert (config);
        router_service_config_t checked;
        router_service_check_config (config, &checked);
        assert (bus_config_error_count (config) == 0);
        bus_config_destroy (&config);
        checked.status_interval_ms = 100;
        node->svc = bus_service_new ("router", NULL, node->dir);
        node->crypto = bus_service_new ("crypto", NULL, node->dir);
        assert (node->svc && node->crypto);
        node->router = router_service_new (node->svc, &checked, err, sizeof err);
        assert (node->router);
        bus_service_subscribe (node->crypto, "route.", s_crypto_event, node);
        bus_service_subscribe (node->crypto, "group.members", s_crypto_event, node);
        bus_loop_timer (bus_service_loop (node->crypto), 5, 0, s_crypto_tick, node);
        node->router_actor = zactor_new (bus_service_actor, node->svc);
        node->crypto_actor = zactor_new (bus_service_actor, node->crypto);
        char endpoint [BUS_PATH_MAX];
        assert (bus_endpoint (endpoint, sizeof endpoint, node->dir, "bus") == 0);
        node->client = bus_client_new (endpoint, "router-mesh-test", err, sizeof err);
        assert (node->client);
    }
    //  crypto listens before anything is announced (the first triggered
    //  update carries everything to a new neighbour; the dump repeats it)
    zclock_sleep (300);
    for (int k = 1; k < M_NODES; k++) {
        m_node_t *node = &mesh [k];
        node->discovery = bus_service_new ("discovery", NULL, node->dir);
        node->nat = bus_service_new ("nat", NULL, node->dir);
        assert (node->discovery && node->nat);
        bus_loop_timer (bus_service_loop (node->discovery), 50, 0, s_discovery_tick, node);
        bus_loop_timer (bus_service_loop (node->nat), 50, 0, s_nat_tick, node);
        bus_service_handle (node->nat, "nat.status", s_nat_status, node);
        node->discovery_actor = zactor_new (bus_service_actor, node->discovery);
        node->nat_actor = zactor_new (bus_service_actor, node->nat);
    }
}

static void
s_mesh_stop (m_node_t *mesh)
{
    for (int k = 1; k < M_NODES; k++) {
        m_node_t *node = &mesh [k];
        zactor_destroy (&node->nat_actor);
        zactor_destroy (&node->discovery_actor);
        zactor_destroy (&node->crypto_actor);
        zactor_destroy (&node->router_actor);
    }
    for (int k = 1; k < M_NODES; k++) {
        m_node_t *node = &mesh [k];
        bus_client_destroy (&node->client);
        bus_service_destroy (&node->nat);
        bus_service_destroy (&node->discovery);
        bus_service_destroy (&node->crypto);
        router_service_destroy (&node->router);
        bus_service_destroy (&node->svc);
        zactor_destroy (&node->broker);
        char file [128];
        snprintf (file, sizeof file, "%s/router/%s", node->dir, ROUTER_GROUPS_FILE);
        unlink (file);          //  (the groups joined through router.group)
        bus_run_dir_remove (node->dir);
        free (node->inbox);
        pthread_mutex_destroy (&node->lock);
    }
}

//  node's last route.next for index
static bool
s_next (m_node_t *node, uint32_t index, route_next_t *out)
{
    pthread_mutex_lock (&node->lock);
    bool seen = node->next_seen [index];
    if (seen)
        *out = node->next [index];
    pthread_mutex_unlock (&node->lock);
    return seen;
}

//  Until node's route.next for index goes through next_hop (0: unreachable)
//  with hops and metric (0: any), 5 s at most; ms waited, -1 on time out
static int64_t
s_wait_next (m_node_t *node, uint32_t index, uint32_t next_hop, uint32_t hops, uint32_t metric, route_next_t *out)
{
    int64_t start = bus_clock_ms ();
    while (bus_clock_ms () - start < 5000) {
        if (s_next (node, index, out)) {
            bool match = next_hop ? out->next_hops_count >= 1 && out->next_hops [0].index == next_hop
                                    && (!hops || out->hops == hops) && (!metric || out->metric == metric)
                                  : out->next_hops_count == 0;
            if (match)
                return bus_clock_ms () - start;
        }
        zclock_sleep (2);
    }
    printf ("router_mesh: %s's route.next for %u: %u next hops (first %u), hops %u, metric %u\n", node->name,
            index, out->next_hops_count, out->next_hops [0].index, out->hops, out->metric);
    fflush (stdout);
    return -1;
}

//  Until node's route.tree for origin (0: its own) names exactly the children
//  (peer indexes, in order), 5 s at most
static bool
s_wait_tree (m_node_t *node, uint32_t origin, const uint32_t *children, uint32_t count)
{
    int64_t start = bus_clock_ms ();
    uint32_t got = 0, first = 0;
    while (bus_clock_ms () - start < 5000) {
        pthread_mutex_lock (&node->lock);
        bool match = node->tree_seen [origin] && node->tree [origin].children_count == count;
        got = node->tree_seen [origin] ? node->tree [origin].children_count : UINT32_MAX;
        first = got && got != UINT32_MAX ? node->tree [origin].children [0].index : 0;
        for (uint32_t k = 0; match && k < count; k++)
            match = node->tree [origin].children [k].index == children [k];
        pthread_mutex_unlock (&node->lock);
        if (match)
            return true;
        zclock_sleep (2);
    }
    printf ("router_mesh: %s's route.tree for %u: %u children (first %u)\n", node->name, origin, got, first);
    fflush (stdout);
    return false;
}

static router_routes_reply_t *
s_routes (m_node_t *node)
{
    router_routes_reply_t *reply = (router_routes_reply_t *) calloc (1, sizeof *reply);
    assert (reply);
    char err [200];
    router_routes_t request = { .peer = "" };
    bus_envelope_t *env = bus_client_request (node->client, "router", &router_routes_schema, &request, 2000,
                                              err, sizeof err);
    assert (env && bus_envelope_get_msg (env, &router_routes_reply_schema, reply, err, sizeof err) == 0);
    bus_envelope_destroy (&env);
    return reply;
}

static uint64_t
s_counter (const router_routes_reply_t *reply, const char *name)
{
    for (uint32_t i = 0; i < reply->refused_count; i++)
        if (streq (reply->refused [i].name, name))
            return reply->refused [i].value;
    return 0;
}

static const router_routes_route_t *
s_row (const router_routes_reply_t *reply, const char *name)
{
    for (uint32_t i = 0; i < reply->routes_count; i++)
        if (streq (reply->routes [i].name, name))
            return &reply->routes [i];
    return NULL;
}

static uint64_t
s_announced (m_node_t *node)
{
    pthread_mutex_lock (&node->lock);
    uint64_t n = node->announced;
    pthread_mutex_unlock (&node->lock);
    return n;
}

//  ---------------------------------------------------------------------------

//  Every router as it is by default (max_hops 6 for the TTL)
static void
s_test_default (bool verbose)
{
    static m_node_t mesh [M_NODES];
    memset (mesh, 0, sizeof mesh);
    const char *hops6 = "routing = { max_hops = 6; route_timeout = \"10s\"; };";
    const char *const configs [M_NODES] = { NULL, hops6, hops6, hops6, hops6, hops6 };
    s_link (mesh, 1, 2, 10);
    s_link (mesh, 2, 3, 10);
    s_link (mesh, 1, 4, 30);
    s_link (mesh, 4, 3, 30);
    s_link (mesh, 3, 5, 5);
    int64_t t0 = bus_clock_ms ();
    s_mesh_start (mesh, configs);
    m_node_t *a = &mesh [1];

    //  c two hops away from a: through b (110 + 110), TTL = max_hops, ids set
    route_next_t next;
    int64_t waited = s_wait_next (a, 3, 2, 2, 220, &next);
    if (waited < 0)
        printf ("router_mesh: a's route.next for c: %u next hops, first %u, hops %u, metric %u\n",
                next.next_hops_count, next.next_hops [0].index, next.hops, next.metric);
    assert (waited >= 0);
    assert (next.next_hops_count == 1 && next.next_hops [0].id == mesh [2].id && next.ttl == 6);
    assert (next.self_id == a->id && next.dest_id == mesh [3].id && streq (next.path, "peer"));
    if (verbose)
        printf ("router_mesh: a -> c through b, metric 220, %" PRId64 " ms after the start\n", bus_clock_ms () - t0);
    //  b and d direct; e (3 hops, 110 + 110 + 105) in the table but unnamed
    //  by a's discovery: no route.next, counted, shown by its id
    assert (s_wait_next (a, 2, 2, 1, 110, &next) >= 0 && next.dest_id == mesh [2].id);
    assert (s_wait_next (a, 4, 4, 1, 130, &next) >= 0);
    //  route.tree: a's own broadcasts go to both its neighbours; a's frames
    //  at b go on to c (c reaches a through b), at c to e, at d nowhere (c
    //  offers d a route to a of its own, through b)
    const uint32_t a_own [] = { 2, 4 }, b_for_a [] = { 3 }, c_for_a [] = { 5 };
    assert (s_wait_tree (a, 0, a_own, 2) && s_wait_tree (&mesh [2], 1, b_for_a, 1));
    assert (s_wait_tree (&mesh [3], 1, c_for_a, 1) && s_wait_tree (&mesh [4], 1, NULL, 0));
    if (verbose)
        printf ("router_mesh: route.tree of a: a -> b, d; b -> c; c -> e; d -> none\n");
    router_routes_reply_t *routes = NULL;
    for (int attempt = 0; attempt < 250; attempt++) {
        free (routes);
        routes = s_routes (a);
        const router_routes_route_t *e = s_row (routes, "00000000000000ee");
        if (e && e->metric == 325)
            break;
        zclock_sleep (20);
    }
    const router_routes_route_t *row = s_row (routes, "00000000000000ee");
    if (!row || row->metric != 325)
        printf ("router_mesh: a's route to e: metric %u, hops %u\n", row ? row->metric : 0, row ? row->hops : 0);
    assert (row && row->index == UINT32_MAX && row->hops == 3 && row->metric == 325 && row->next_hop == 2);
    assert (streq (row->peer_id, "00000000000000ee") && row->via_count == 3 && streq (row->via [1], "c"));
    row = s_row (routes, "c");
    assert (row && row->index == 3 && row->hops == 2 && streq (row->next_hop_name, "b") && streq (row->path, "peer"));
    assert (routes->unindexed == 1 && streq (routes->self_id, "00000000000000aa"));
    assert (routes->announced > 0 && routes->heard > 0 && routes->neighbours == 2);
    assert (!s_next (a, 5, &next));
    free (routes);

    //  b lost (nat): c moves to d at once (30 + 100 twice); b back: back
    int64_t cut = bus_clock_ms ();
    s_set_up (mesh, 1, 2, false);
    waited = s_wait_next (a, 3, 4, 2, 260, &next);
    assert (waited >= 0 && next.next_hops [0].id == mesh [4].id);
    pthread_mutex_lock (&a->lock);
    //  From nat.peer.down; or from the cut when a nat.status reply (which
    //  says the link is down too) reached the router first
    int64_t down = atomic_load (&a->down_at [2]);
    int64_t failover = a->next_at [3] - (down && down <= a->next_at [3] ? down : cut);
    pthread_mutex_unlock (&a->lock);
    if (failover < 0 || failover >= 1000)
        printf ("router_mesh: c through d at %" PRId64 ", nat.peer.down at %" PRId64 ", cut at %" PRId64 "\n",
                a->next_at [3], down, cut);
    assert (failover >= 0 && failover < 1000);
    s_set_up (mesh, 1, 2, true);
    assert (s_wait_next (a, 3, 2, 2, 220, &next) >= 0);
    //  b and d both lost: c unreachable (an empty list); then back
    s_set_up (mesh, 1, 2, false);
    s_set_up (mesh, 1, 4, false);
    assert (s_wait_next (a, 3, 0, 0, 0, &next) >= 0 && next.hops == 0 && !*next.path);
    s_set_up (mesh, 1, 2, true);
    s_set_up (mesh, 1, 4, true);
    assert (s_wait_next (a, 3, 2, 2, 220, &next) >= 0);
    if (verbose)
        printf ("router_mesh: b lost: c through d %" PRId64 " ms after nat.peer.down went out\n", failover);

    //  crypto reconnects (bus.state): every destination again
    pthread_mutex_lock (&a->lock);
    uint64_t events = a->next_events;
    pthread_mutex_unlock (&a->lock);
    atomic_store (&a->restate, true);
    bool again = false;
    for (int attempt = 0; attempt < 250 && !again; attempt++) {
        zclock_sleep (20);
        pthread_mutex_lock (&a->lock);
        again = a->next_events >= events + 3;          //  b, c, d
        pthread_mutex_unlock (&a->lock);
    }
    assert (again);

    //  Bad input: bytes that are no announcement, one from an impostor (c's
    //  origin in b's session), one from no neighbour: refused, counted
    routes = s_routes (a);
    uint64_t too_short0 = s_counter (routes, "too short"), impostor0 = s_counter (routes, "impostor");
    uint64_t stranger0 = s_counter (routes, "not a neighbour");     //  (b's, arrived after its link went down)
    free (routes);
    uint8_t junk [3] = { 0x30, 1, 0 };
    s_inbox_put (a, 2, junk, sizeof junk);
    route_msg_t *forged = (route_msg_t *) calloc (1, sizeof *forged);
    assert (forged);
    forged->origin = mesh [3].id;
    forged->seqno = 1;
    forged->count = 1;
    forged->routes [0] = (route_entry_t) { .dest = 0x77, .metric = 500, .hops = 1, .path = { mesh [3].id } };
    uint8_t wire [ROUTE_WIRE_MAX_SIZE];
    size_t size = route_msg_encode (forged, wire, sizeof wire);
    assert (size);
    s_inbox_put (a, 2, wire, size);
    s_inbox_put (a, 5, wire, size);
    free (forged);
    bool counted = false;
    for (int attempt = 0; attempt < 250 && !counted; attempt++) {
        zclock_sleep (20);
        routes = s_routes (a);
        counted = s_counter (routes, "too short") == too_short0 + 1 && s_counter (routes, "impostor") == impostor0 + 1
               && s_counter (routes, "not a neighbour") == stranger0 + 1;
        if (!counted && attempt == 249)
            for (uint32_t i = 0; i < routes->refused_count; i++)
                printf ("router_mesh: a refused %s: %" PRIu64 "\n", routes->refused [i].name, routes->refused [i].value);
        fflush (stdout);
        free (routes);
    }
    assert (counted);
    //  The rate limit: 400 at once from b; 100 pass (the burst), the rest dropped
    for (int i = 0; i < 400; i++)
        s_inbox_put (a, 2, junk, sizeof junk);
    uint64_t limited = 0, short_ones = 0;
    for (int attempt = 0; attempt < 250 && short_ones + limited < too_short0 + 401; attempt++) {
        zclock_sleep (20);
        routes = s_routes (a);
        limited = s_counter (routes, "rate limited");
        short_ones = s_counter (routes, "too short");
        free (routes);
    }
    if (verbose)
        printf ("router_mesh: 400 announcements at once from b: %" PRIu64 " decoded, %" PRIu64 " rate limited\n",
                short_ones - too_short0 - 1, limited);
    //  (b's own announcements take from its budget too)
    short_ones -= too_short0 + 1;
    assert (short_ones + limited >= 400 && limited >= 270 && short_ones >= 90 && short_ones <= 130);
    //  ... and the mesh still routes
    assert (s_wait_next (a, 3, 2, 2, 220, &next) >= 0);
    s_mesh_stop (mesh);
}

//  b refuses to carry (transit = false), d uses and offers no peer route
//  (relay_via_peers = false): a reaches c through neither; b still uses
//  routes through others (to d, through a); d takes none
static void
s_test_switches (bool verbose)
{
    static m_node_t mesh [M_NODES];
    memset (mesh, 0, sizeof mesh);
    const char *fast = "routing = { route_timeout = \"10s\"; };";
    const char *const configs [M_NODES] = {
        NULL, fast, "routing = { transit = false; route_timeout = \"10s\"; };", fast,
        "routing = { route_timeout = \"10s\"; }; connection = { relay_via_peers = false; };", fast };
    s_link (mesh, 1, 2, 10);
    s_link (mesh, 2, 3, 10);
    s_link (mesh, 1, 4, 30);
    s_link (mesh, 4, 3, 30);
    s_link (mesh, 3, 5, 5);
    s_mesh_start (mesh, configs);
    m_node_t *a = &mesh [1], *b = &mesh [2], *d = &mesh [4];
    route_next_t next;
    //  b reaches d in two hops through a and c at equal cost (10 + 30 + 200):
    //  both in route.next, a first (the lower id)
    assert (s_wait_next (b, 4, 1, 2, 240, &next) >= 0);
    for (int attempt = 0; attempt < 250 && next.next_hops_count < 2; attempt++) {
        zclock_sleep (20);
        s_next (b, 4, &next);
    }
    assert (next.next_hops_count == 2 && next.next_hops [1].index == 3 && next.next_hops [1].id == mesh [3].id);
    assert (s_wait_next (b, 5, 3, 2, 215, &next) >= 0);
    //  Two dumps later (2.5 s each) a still has no route to c or e, d none to b or e
    zclock_sleep (3000);
    router_routes_reply_t *routes = s_routes (a);
    assert (!s_row (routes, "c") && !s_row (routes, "00000000000000ee") && routes->heard == 0);
    assert (s_row (routes, "b") && s_row (routes, "d") && routes->total == 2);
    free (routes);
    routes = s_routes (d);
    assert (!s_row (routes, "b") && !s_row (routes, "e") && routes->total == 2 && routes->announced == 0);
    free (routes);
    assert (s_announced (b) == 0 && s_announced (d) == 0 && s_announced (a) > 0);
    if (verbose)
        printf ("router_mesh: transit = false on b, relay_via_peers = false on d: a reaches c through "
                "neither; b reaches d through a\n");
    s_mesh_stop (mesh);
}

//  ---------------------------------------------------------------------------
//  Groups across the mesh

//  router.group on node (action, group): 0 answered, -1 refused (the reason
//  in s_group_err)
static char s_group_err [300];

static int
s_group (m_node_t *node, const char *action, const char *group, router_group_reply_t *reply)
{
    router_group_t request;
    memset (&request, 0, sizeof request);
    snprintf (request.action, sizeof request.action, "%s", action);
    snprintf (request.group, sizeof request.group, "%s", group);
    char err [300];
    bus_envelope_t *env = bus_client_request (node->client, "router", &router_group_schema, &request, 2000,
                                              s_group_err, sizeof s_group_err);
    if (!env)
        return -1;
    router_group_reply_t *scratch = reply ? reply : (router_group_reply_t *) calloc (1, sizeof *scratch);
    assert (scratch && bus_envelope_get_msg (env, &router_group_reply_schema, scratch, err, sizeof err) == 0);
    if (!reply)
        free (scratch);
    bus_envelope_destroy (&env);
    return 0;
}

//  node's last group.members for group
static bool
s_members (m_node_t *node, const char *group, group_members_t *out, int64_t *at)
{
    bool seen = false;
    pthread_mutex_lock (&node->lock);
    for (size_t slot = 0; slot < M_GROUPS && !seen; slot++)
        if (streq (node->groups [slot].group, group)) {
            *out = node->groups [slot];
            if (at)
                *at = node->groups_at [slot];
            seen = true;
        }
    pthread_mutex_unlock (&node->lock);
    return seen;
}

//  Until node's group.members for group says members (indexes, nearest
//  first, "" for none) and nearest (UINT32_MAX: none), 5 s at most; ms
//  waited, -1 on time out
static int64_t
s_wait_members (m_node_t *node, const char *group, const char *members, uint32_t nearest, bool local)
{
    int64_t start = bus_clock_ms ();
    static group_members_t got;
    char list [64] = "";
    while (bus_clock_ms () - start < 5000) {
        if (s_members (node, group, &got, NULL)) {
            size_t len = 0;
            list [0] = 0;
            for (uint32_t i = 0; i < got.members_count && len < sizeof list; i++)
                len += (size_t) snprintf (list + len, sizeof list - len, "%s%u", i ? " " : "", got.members [i].index);
            if (streq (list, members) && got.nearest == nearest && got.local == local)
                return bus_clock_ms () - start;
        }
        zclock_sleep (2);
    }
    printf ("router_mesh: %s's group.members for %s: '%s', nearest %u, local %d (want '%s', %u)\n", node->name,
            group, list, got.nearest, got.local, members, nearest);
    fflush (stdout);
    return -1;
}

//  e and d join the anycast address 10.99.0.1 (d at 130 from a, e at 325),
//  e the multicast group 239.1.2.3: a learns both from their reports, with
//  their indexes, nearest first; d leaves: e is nearest; d back, then cut
//  off (its links down): e is nearest again at once
static void
s_test_groups (bool verbose)
{
    static m_node_t mesh [M_NODES];
    memset (mesh, 0, sizeof mesh);
    s_list_all = true;
    const char *fast = "routing = { route_timeout = \"10s\"; };";
    const char *const configs [M_NODES] = { NULL, fast, fast, "routing = { route_timeout = \"10s\"; groups = "
                                            "[ \"ff3e::42\" ]; };", fast, fast };
    s_link (mesh, 1, 2, 10);
    s_link (mesh, 2, 3, 10);
    s_link (mesh, 1, 4, 30);
    s_link (mesh, 4, 3, 30);
    s_link (mesh, 3, 5, 5);
    s_mesh_start (mesh, configs);
    m_node_t *a = &mesh [1], *c = &mesh [3], *d = &mesh [4], *e = &mesh [5];
    route_next_t next;
    assert (s_wait_next (a, 5, 2, 3, 325, &next) >= 0);
    int64_t t0 = bus_clock_ms ();
    assert (s_group (e, "join", "10.99.0.1", NULL) == 0);
    assert (s_group (e, "join", "239.1.2.3", NULL) == 0);
    assert (s_group (d, "join", "10.99.0.1", NULL) == 0);
    int64_t waited = s_wait_members (a, "10.99.0.1", "4 5", 4, false);
    assert (waited >= 0);
    group_members_t got;
    assert (s_members (a, "10.99.0.1", &got, NULL) && got.anycast && got.members [0].id == d->id
            && got.members [0].metric == 130 && got.members [1].id == e->id && got.members [1].metric == 325);
    assert (s_wait_members (a, "239.1.2.3", "5", 5, false) >= 0);
    assert (s_members (a, "239.1.2.3", &got, NULL) && !got.anycast);
    //  c's standing group (routing.groups) is c's own there, and a's from c's report
    assert (s_wait_members (c, "ff3e::42", "", UINT32_MAX, true) >= 0);
    assert (s_wait_members (a, "ff3e::42", "3", 3, false) >= 0);
    if (verbose)
        printf ("router_mesh: d and e joined 10.99.0.1: a's group.members d (130) then e (325) %" PRId64
                " ms after the joins\n", bus_clock_ms () - t0);
    //  The list by name, nearest first
    router_group_reply_t *reply = (router_group_reply_t *) calloc (1, sizeof *reply);
    assert (reply && s_group (a, "list", "", reply) == 0);
    assert (reply->total == 3 && reply->groups_count == 3);
    const router_group_info_t *row = &reply->groups [0];        //  10.99.0.1 (v4-mapped sort first)
    assert (streq (row->group, "10.99.0.1") && row->anycast && streq (row->nearest, "d") && row->members_count == 2
            && streq (row->members [0], "d") && streq (row->members [1], "e") && !*row->local);
    row = &reply->groups [1];
    assert (streq (row->group, "239.1.2.3") && !row->anycast && streq (row->nearest, "e"));
    assert (streq (reply->groups [2].group, "ff3e::42") && streq (reply->groups [2].members [0], "c"));
    assert (s_group (c, "list", "", reply) == 0);
    bool config = false;
    for (uint32_t i = 0; i < reply->groups_count; i++)
        config |= streq (reply->groups [i].group, "ff3e::42") && streq (reply->groups [i].local, "config");
    assert (config);

    //  d leaves: e is the nearest; d joins again: d
    int64_t left = bus_clock_ms ();
    assert (s_group (d, "leave", "10.99.0.1", NULL) == 0);
    assert (s_wait_members (a, "10.99.0.1", "5", 5, false) >= 0);
    int64_t moved = bus_clock_ms () - left;
    assert (s_group (d, "join", "10.99.0.1", NULL) == 0);
    assert (s_wait_members (a, "10.99.0.1", "4 5", 4, false) >= 0);
    //  d cut off (both its links down): e at once, d still a member, last
    int64_t cut = bus_clock_ms ();
    s_set_up (mesh, 1, 4, false);
    s_set_up (mesh, 3, 4, false);
    assert (s_wait_members (a, "10.99.0.1", "5 4", 5, false) >= 0);
    int64_t at = 0;
    assert (s_members (a, "10.99.0.1", &got, &at) && got.members [1].metric == 0);
    //  (nat's test service says so within 50 ms, in nat.peer.down or nat.status)
    int64_t failover = at - cut;
    assert (failover >= 0 && failover < 1000);
    if (verbose)
        printf ("router_mesh: d left 10.99.0.1: e nearest on a after %" PRId64 " ms; d cut off: e nearest %" PRId64
                " ms after the links went down\n", moved, failover);
    //  Refusals: not an address, loopback, not joined here, no such action
    static const struct { const char *action, *group, *why; } refusals [] = {
        { "join", "239.1.2", "'239.1.2' is not an IPv4 or IPv6 address" },
        { "join", "127.0.0.1", "127.0.0.1 is a loopback address: it cannot be a group" },
        { "join", "0.0.0.0", "0.0.0.0 is the unspecified address" },
        { "join", "::", ":: is the unspecified address" },
        { "join", "fe80::1", "fe80::1 is a link-local unicast address" },
        { "join", "169.254.1.1", "169.254.1.1 is a link-local unicast address" },
        { "join", "255.255.255.255", "255.255.255.255 is the broadcast address" },
        { "leave", "239.9.9.9", "239.9.9.9 was not joined with bifrostctl group join" },
        { "leave", "ff3e::42", "ff3e::42 was not joined with bifrostctl group join (routing.groups of the config" },
        { "drop", "239.1.2.3", "unknown action 'drop': join, leave or list" },
    };
    for (size_t i = 0; i < sizeof refusals / sizeof refusals [0]; i++) {
        int rc = s_group (streq (refusals [i].group, "ff3e::42") ? c : a, refusals [i].action, refusals [i].group, NULL);
        if (rc != -1 || !strstr (s_group_err, refusals [i].why))
            printf ("router_mesh: %s %s: %d '%s'\n", refusals [i].action, refusals [i].group, rc, s_group_err);
        assert (rc == -1 && strstr (s_group_err, refusals [i].why));
    }
    free (reply);
    s_mesh_stop (mesh);
    s_list_all = false;
}

void
router_mesh_test (bool verbose)
{
    s_test_groups (verbose);
    s_test_default (verbose);
    s_test_switches (verbose);
    if (verbose)
        printf ("router_mesh: ok\n");
}
