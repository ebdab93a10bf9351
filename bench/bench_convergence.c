/*  bench_convergence: how long real routers take to settle after a peer is
    lost (issue 18, docs/routing.md, docs/benchmarks.md), in milliseconds, on
    meshes of 8 and 32 nodes: the route_sim figures are in rounds, this is the
    service with its own timers (triggered updates checked every 50 ms, 200 ms
    apart, damping; the table's fallback to the candidates it holds).

    Every node is a real router_service on a broker of its own (one per node,
    in this process), with discovery, nat and crypto played by small test
    services, as in services/router/router_mesh_test.c: discovery names every
    node (node.address, peer.up), nat reports each link up with its RTT
    (nat.peer, nat.status) and a lost one at once (nat.peer.down), and the test
    crypto hands what a router publishes as route.announce for a neighbour to
    that neighbour's router as route.heard, and records every route.next with
    the time it arrived. The mesh is route_sim's plane (300 x 300, links up to
    110 ms, RTT = distance; 200 x 200 for fewer than 17 nodes), whose
    Bellman-Ford reference says what every route.next must end as; a seed per
    run (12345, 12346, ...), so each run is another mesh.

    One run: start the routers, wait until every node's route.next for every
    other has the reference metric and nothing moved for 1 s (no router sent
    8 rounds in a row at start, so none is damped), then cut every link of the busiest node at once (its neighbours' nat say
    so within 10 ms). Measured from the first nat.peer.down: until the last
    route.next that the settled state needed (every node's route to the lost
    node published unreachable, every other route at its new reference
    metric). Printed per run, then min / median / max over the runs.

    usage: bench_convergence [-n NODES]... [-r RUNS] [-v]    (default -n 8 -n 32 -r 5) */
#include "router_service.h"
#include "route_sim.h"
#include "bus_broker.h"
#include "bus_endpoint.h"
#include "bus_clock.h"
#include "bus_log.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define C_MAX       64          //  nodes at most (route_sim's limit); index 0 unused
#define C_INBOX     1024
#define C_NONE      UINT32_MAX

typedef struct {
    uint32_t index;
    uint32_t size;
    uint8_t data [ROUTE_WIRE_MAX_SIZE];
} c_heard_t;

typedef struct _c_node_t c_node_t;
typedef struct {
    size_t nodes;
    c_node_t *node;             //  [nodes + 1]
} c_mesh_t;

struct _c_node_t {
    int k;
    char name [8];
    uint64_t id;
    c_mesh_t *mesh;
    char dir [64];
    zactor_t *broker;
    bus_service_t *svc, *discovery, *nat, *crypto;
    router_service_t *router;
    zactor_t *router_actor, *discovery_actor, *nat_actor, *crypto_actor;
    uint32_t rtt_ms [C_MAX + 1];        //  0: no link to node k
    atomic_bool up [C_MAX + 1];         //  the link to node k carries
    bool said_up [C_MAX + 1];           //  what nat published last (nat's thread)
    int64_t said_at;                    //  when nat last published every link (nat's thread)
    int64_t started_at;                 //  when discovery and nat were started
    int64_t named_at;                   //  when discovery last named every node (its thread)
    _Atomic int64_t down_at;            //  when nat first published a loss, 0: none
    atomic_bool restate;                //  crypto publishes bus.state (once)
    pthread_mutex_t lock;               //  guards what follows
    c_heard_t *inbox;
    size_t inbox_count;
    route_next_t next [C_MAX + 1];
    bool next_seen [C_MAX + 1];
    int64_t next_at [C_MAX + 1];        //  when each arrived
    uint64_t next_events, announced, reports;
};

static bool s_verbose;

//  The plane's side: route_sim's 300 x 300 (bench_route) for 32 nodes and
//  more, 200 x 200 below, else 8 nodes with links up to 110 ms are a few
//  pieces (7-9 links): 10-22 links, degree 4-7, one piece
static int
s_side (size_t nodes)
{
    return nodes > 16 ? 300 : 200;
}

static void
s_hex (uint64_t id, char *out, size_t size)
{
    snprintf (out, size, "%016" PRIx64, id);
}

//  discovery: our id and every other node, once a second (the router takes
//  the same again without a change), from 3 s after the start: by then the
//  router has asked nat.status (every 2 s) and knows its links' RTTs, so its
//  first announcements carry them. (Before, a link counts 100 ms, and a
//  route that then improves by less than 1/8 waits for the periodic dump,
//  route_timeout / 4 = 75 s: the metrics would not all be the reference's.)
static int
s_discovery_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    c_node_t *node = (c_node_t *) arg;
    int64_t now = bus_clock_ms ();
    if (now - node->started_at < 3000 || now - node->named_at < 1000)
        return 0;
    node->named_at = now;
    node_address_t address = { .address = "10.100.0.1/16", .network_id = "bench" };
    s_hex (node->id, address.peer_id, sizeof address.peer_id);
    bus_service_publish (node->discovery, &node_address_schema, &address);
    peer_up_t *up = (peer_up_t *) calloc (1, sizeof *up);
    assert (up);
    for (size_t k = 1; k <= node->mesh->nodes; k++) {
        if ((int) k == node->k)
            continue;
        memset (up, 0, sizeof *up);
        up->index = (uint32_t) k;
        snprintf (up->name, sizeof up->name, "%s", node->mesh->node [k].name);
        snprintf (up->source, sizeof up->source, "registry");
        s_hex (node->mesh->node [k].id, up->peer_id, sizeof up->peer_id);
        bus_service_publish (node->discovery, &peer_up_schema, up);
    }
    free (up);
    return 0;
}

//  nat: a link that changed at once (checked every 10 ms), every link again
//  once a second
static int
s_nat_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    c_node_t *node = (c_node_t *) arg;
    int64_t now = bus_clock_ms ();
    bool all = now - node->said_at >= 1000;
    if (all)
        node->said_at = now;
    for (size_t k = 1; k <= node->mesh->nodes; k++) {
        if (!node->rtt_ms [k])
            continue;
        bool up = atomic_load (&node->up [k]);
        if (!all && up == node->said_up [k])
            continue;
        node->said_up [k] = up;
        if (!up) {
            nat_peer_down_t down = { .index = (uint32_t) k, .silent_ms = 2000 };
            snprintf (down.name, sizeof down.name, "%s", node->mesh->node [k].name);
            int64_t none = 0;
            atomic_compare_exchange_strong (&node->down_at, &none, bus_clock_ms ());
            bus_service_publish (node->nat, &nat_peer_down_schema, &down);
            continue;
        }
        nat_peer_event_t event = { .index = (uint32_t) k, .direct = true };
        snprintf (event.name, sizeof event.name, "%s", node->mesh->node [k].name);
        snprintf (event.state, sizeof event.state, "up");
        snprintf (event.endpoint, sizeof event.endpoint, "192.0.2.%zu:51820", k);
        bus_service_publish (node->nat, &nat_peer_event_schema, &event);
    }
    return 0;
}

static void
s_nat_status (bus_service_t *nat, bus_envelope_t *env, void *arg)
{
    c_node_t *node = (c_node_t *) arg;
    nat_status_reply_t *reply = (nat_status_reply_t *) calloc (1, sizeof *reply);
    assert (reply);
    for (size_t k = 1; k <= node->mesh->nodes; k++) {
        if (!node->rtt_ms [k])
            continue;
        nat_status_peer_t *p = &reply->peers [reply->peers_count++];
        p->index = (uint32_t) k;
        snprintf (p->name, sizeof p->name, "%s", node->mesh->node [k].name);
        bool up = atomic_load (&node->up [k]);
        snprintf (p->state, sizeof p->state, "%s", up ? "up" : "connecting");
        snprintf (p->endpoint, sizeof p->endpoint, "192.0.2.%zu:51820", k);
        snprintf (p->path, sizeof p->path, "%s", up ? "direct" : "");
        p->rtt_us = up ? (int64_t) node->rtt_ms [k] * 1000 : -1;
    }
    bus_service_reply (nat, env, &nat_status_reply_schema, reply);
    free (reply);
}

//  crypto: route.announce for a neighbour whose link carries goes to its
//  inbox as from us; route.next is recorded with its time
static void
s_crypto_event (bus_service_t *crypto, bus_envelope_t *env, void *arg)
{
    c_node_t *node = (c_node_t *) arg;
    char err [200];
    if (streq (bus_envelope_type (env), "route.announce")) {
        route_announce_t *msg = (route_announce_t *) calloc (1, sizeof *msg);
        assert (msg);
        assert (bus_envelope_get_msg (env, &route_announce_schema, msg, err, sizeof err) == 0);
        uint32_t k = msg->index;
        assert (k > 0 && k <= node->mesh->nodes);
        c_node_t *to = &node->mesh->node [k];
        bool deliver;
        pthread_mutex_lock (&node->lock);
        if (msg->announcement_size && msg->announcement [0] == ROUTE_WIRE_GROUPS) {
            //  A group report (docs/groups.md): end to end, to a node we
            //  have a route to, as crypto would through the routed session
            deliver = node->next_seen [k] && node->next [k].next_hops_count > 0;
            node->reports++;
        }
        else {
            assert (node->rtt_ms [k]);          //  announcements only to neighbours
            deliver = atomic_load (&node->up [k]) && atomic_load (&to->up [node->k]);
            node->announced++;
        }
        pthread_mutex_unlock (&node->lock);
        if (deliver) {
            pthread_mutex_lock (&to->lock);
            if (to->inbox_count < C_INBOX) {
                c_heard_t *h = &to->inbox [to->inbox_count++];
                h->index = (uint32_t) node->k;
                h->size = msg->announcement_size;
                memcpy (h->data, msg->announcement, msg->announcement_size);
            }
            pthread_mutex_unlock (&to->lock);
        }
        free (msg);
    }
    else
    if (streq (bus_envelope_type (env), "route.next")) {
        route_next_t next;
        assert (bus_envelope_get_msg (env, &route_next_schema, &next, err, sizeof err) == 0);
        assert (next.index <= node->mesh->nodes);
        int64_t now = bus_clock_ms ();
        pthread_mutex_lock (&node->lock);
        node->next [next.index] = next;
        node->next_seen [next.index] = true;
        node->next_at [next.index] = now;
        node->next_events++;
        pthread_mutex_unlock (&node->lock);
    }
}

//  crypto: what neighbours sent us, as route.heard, every 5 ms
static int
s_crypto_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    c_node_t *node = (c_node_t *) arg;
    static __thread route_heard_t heard;
    static __thread c_heard_t taken [C_INBOX];
    pthread_mutex_lock (&node->lock);
    size_t count = node->inbox_count;
    memcpy (taken, node->inbox, count * sizeof *taken);
    node->inbox_count = 0;
    pthread_mutex_unlock (&node->lock);
    for (size_t i = 0; i < count; i++) {
        heard.index = taken [i].index;
        heard.announcement_size = taken [i].size;
        memcpy (heard.announcement, taken [i].data, taken [i].size);
        bus_service_publish (node->crypto, &route_heard_schema, &heard);
    }
    if (atomic_exchange (&node->restate, false)) {
        bus_state_t state = { .epoch = 1, .generation = 2 };
        snprintf (state.instance, sizeof state.instance, "crypto.1");
        bus_service_publish (node->crypto, &bus_state_schema, &state);
    }
    return 0;
}

//  ---------------------------------------------------------------------------

static void
s_start (c_mesh_t *mesh)
{
    for (size_t k = 1; k <= mesh->nodes; k++) {
        c_node_t *node = &mesh->node [k];
        node->k = (int) k;
        snprintf (node->name, sizeof node->name, "n%zu", k);
        node->id = 0xbe00000000000000ULL + 0x1111 * k;
        node->mesh = mesh;
        pthread_mutex_init (&node->lock, NULL);
        node->inbox = (c_heard_t *) calloc (C_INBOX, sizeof *node->inbox);
        assert (node->inbox);
        snprintf (node->dir, sizeof node->dir, "/tmp/bench-convergence-XXXXXX");
        assert (mkdtemp (node->dir));
        node->broker = zactor_new (bus_broker_actor, node->dir);
        assert (node->broker);
        char err [300];
        bus_config_t *config = bus_config_load_string ("x = 1;", "bench.cfg", err, sizeof err);
        assert (config);
        router_service_config_t checked;        //  every default: the real timers
        router_service_check_config (config, &checked);
        assert (bus_config_error_count (config) == 0);
        bus_config_destroy (&config);
        node->svc = bus_service_new ("router", NULL, node->dir);
        node->crypto = bus_service_new ("crypto", NULL, node->dir);
        assert (node->svc && node->crypto);
        node->router = router_service_new (node->svc, &checked, err, sizeof err);
        assert (node->router);
        router_service_config_clear (&checked);
        bus_service_subscribe (node->crypto, "route.", s_crypto_event, node);
        bus_loop_timer (bus_service_loop (node->crypto), 5, 0, s_crypto_tick, node);
        node->router_actor = zactor_new (bus_service_actor, node->svc);
        node->crypto_actor = zactor_new (bus_service_actor, node->crypto);
    }
    //  crypto listens before anything is announced
    zclock_sleep (300);
    for (size_t k = 1; k <= mesh->nodes; k++) {
        c_node_t *node = &mesh->node [k];
        node->discovery = bus_service_new ("discovery", NULL, node->dir);
        node->nat = bus_service_new ("nat", NULL, node->dir);
        assert (node->discovery && node->nat);
        node->started_at = bus_clock_ms ();
        bus_loop_timer (bus_service_loop (node->discovery), 500, 0, s_discovery_tick, node);
        bus_loop_timer (bus_service_loop (node->nat), 10, 0, s_nat_tick, node);
        bus_service_handle (node->nat, "nat.status", s_nat_status, node);
        node->discovery_actor = zactor_new (bus_service_actor, node->discovery);
        node->nat_actor = zactor_new (bus_service_actor, node->nat);
    }
}

static void
s_stop (c_mesh_t *mesh)
{
    for (size_t k = 1; k <= mesh->nodes; k++) {
        c_node_t *node = &mesh->node [k];
        zactor_destroy (&node->nat_actor);
        zactor_destroy (&node->discovery_actor);
        zactor_destroy (&node->crypto_actor);
        zactor_destroy (&node->router_actor);
    }
    for (size_t k = 1; k <= mesh->nodes; k++) {
        c_node_t *node = &mesh->node [k];
        bus_service_destroy (&node->nat);
        bus_service_destroy (&node->discovery);
        bus_service_destroy (&node->crypto);
        router_service_destroy (&node->router);
        bus_service_destroy (&node->svc);
        zactor_destroy (&node->broker);
        bus_run_dir_remove (node->dir);
        free (node->inbox);
        pthread_mutex_destroy (&node->lock);
    }
}

//  Does every live node's last route.next to every other live node have
//  the reference metric (and the lost one none)? Also the last arrival, and
//  what is wrong first (into why)
static bool
s_settled (c_mesh_t *mesh, route_sim_t *sim, int lost, int64_t *last_at, char *why, size_t why_size)
{
    *last_at = 0;
    bool ok = true;
    for (size_t a = 1; a <= mesh->nodes; a++) {
        if ((int) a == lost)
            continue;
        c_node_t *node = &mesh->node [a];
        pthread_mutex_lock (&node->lock);
        for (size_t b = 1; b <= mesh->nodes && ok; b++) {
            if (a == b)
                continue;
            uint32_t want = (int) b == lost ? C_NONE : route_sim_reference (sim, a - 1, b - 1);
            const route_next_t *next = &node->next [b];
            //  Unreachable: published so, or never reached (a mesh cut in two)
            bool good = want == C_NONE ? !node->next_seen [b] || next->next_hops_count == 0
                                       : node->next_seen [b] && next->next_hops_count >= 1 && next->metric == want;
            if (!good) {
                route_t r = { 0 };
                route_table_best (route_sim_table (sim, a - 1), route_sim_id (sim, b - 1), &r);
                snprintf (why, why_size, "n%zu -> n%zu: %s, metric %u (%u hops, through n%u), want %u (%u hops, "
                          "through n%u)", a, b,
                          !node->next_seen [b] ? "nothing yet" : next->next_hops_count ? "a route" : "unreachable",
                          next->metric, next->hops, next->next_hops_count ? next->next_hops [0].index : 0, want,
                          r.hops, r.hops ? (unsigned) (r.next_hop - route_sim_id (sim, 0) + 1) : 0);
                ok = false;
            }
            if (node->next_seen [b] && node->next_at [b] > *last_at)
                *last_at = node->next_at [b];
        }
        pthread_mutex_unlock (&node->lock);
        if (!ok)
            break;
    }
    return ok;
}

static uint64_t
s_events (c_mesh_t *mesh, uint64_t *announced)
{
    uint64_t events = 0;
    *announced = 0;
    for (size_t k = 1; k <= mesh->nodes; k++) {
        pthread_mutex_lock (&mesh->node [k].lock);
        events += mesh->node [k].next_events;
        *announced += mesh->node [k].announced;
        pthread_mutex_unlock (&mesh->node [k].lock);
    }
    return events;
}

//  Waits (limit_ms at most) until settled and quiet for quiet_ms; false on time out
static bool
s_wait_settled (c_mesh_t *mesh, route_sim_t *sim, int lost, int64_t quiet_ms, int64_t limit_ms, int64_t *last_at)
{
    char why [300] = "";
    int64_t start = bus_clock_ms ();
    while (bus_clock_ms () - start < limit_ms) {
        uint64_t announced;
        if (s_settled (mesh, sim, lost, last_at, why, sizeof why)) {
            uint64_t before = s_events (mesh, &announced);
            zclock_sleep ((int) quiet_ms);
            if (s_events (mesh, &announced) == before && s_settled (mesh, sim, lost, last_at, why, sizeof why))
                return true;
            continue;
        }
        zclock_sleep (10);
    }
    fprintf (stderr, "bench_convergence: not settled after %" PRId64 " s: %s\n", limit_ms / 1000, why);
    return false;
}

typedef struct {
    int64_t ms;                 //  first nat.peer.down -> last route.next needed
    int64_t first_ms;           //  ... -> the first route.next after it
    size_t links, degree, rounds;
    uint64_t events, announced;
} c_result_t;

//  One run on a mesh of `nodes` from seed; false when it did not settle
static bool
s_run (size_t nodes, uint32_t seed, c_result_t *result)
{
    route_sim_t *sim = route_sim_new (nodes, NULL);
    result->links = route_sim_plane (sim, NULL, seed, s_side (nodes), 110);
    size_t busiest = route_sim_busiest (sim, &result->degree);
    int lost = (int) busiest + 1;
    c_mesh_t mesh = { .nodes = nodes };
    mesh.node = (c_node_t *) calloc (nodes + 1, sizeof *mesh.node);
    assert (mesh.node);
    for (size_t a = 0; a < nodes; a++)
        for (size_t b = a + 1; b < nodes; b++)
            if (route_sim_distance (sim, a, b) <= 110) {
                uint32_t rtt = route_sim_distance (sim, a, b);
                mesh.node [a + 1].rtt_ms [b + 1] = mesh.node [b + 1].rtt_ms [a + 1] = rtt;
                atomic_store (&mesh.node [a + 1].up [b + 1], true);
                atomic_store (&mesh.node [b + 1].up [a + 1], true);
            }
    //  The synchronous simulation of the same event, for its rounds
    assert (route_sim_run (sim, 60, NULL) <= 60);
    int64_t t0 = bus_clock_ms (), last_at;
    s_start (&mesh);
    //  Every router has its id 3 to 3.5 s after the start (discovery), and
    //  drops what comes before it has ("no self id"), so the first full
    //  tables some sent were lost: crypto (re)connects, as it would, and each
    //  router sends everything again (else the periodic dump at 75 s would)
    zclock_sleep (4000);
    for (size_t k = 1; k <= nodes; k++)
        atomic_store (&mesh.node [k].restate, true);
    bool ok = s_wait_settled (&mesh, sim, 0, 1000, 90000, &last_at);
    if (ok && s_verbose) {
        //  Rounds each router sent (announcements / neighbours, about): past
        //  8 in a row its triggered updates were damped
        double most = 0;
        for (size_t k = 1; k <= nodes; k++) {
            size_t degree = 0;
            for (size_t j = 1; j <= nodes; j++)
                degree += mesh.node [k].rtt_ms [j] != 0;
            pthread_mutex_lock (&mesh.node [k].lock);
            double rounds = degree ? (double) mesh.node [k].announced / (double) degree : 0;
            pthread_mutex_unlock (&mesh.node [k].lock);
            most = rounds > most ? rounds : most;
        }
        printf ("  %zu nodes: first convergence %" PRId64 " ms after the start; at most %.1f announcements per "
                "neighbour from one router\n", nodes, last_at - t0, most);
    }
    if (ok) {
        uint64_t events0, announced0;
        events0 = s_events (&mesh, &announced0);
        int64_t cut_at = bus_clock_ms ();
        for (size_t k = 1; k <= nodes; k++)
            if (mesh.node [lost].rtt_ms [k]) {
                atomic_store (&mesh.node [lost].up [k], false);
                atomic_store (&mesh.node [k].up [lost], false);
            }
        route_sim_remove (sim, busiest);
        result->rounds = route_sim_run (sim, 60, NULL);
        ok = s_wait_settled (&mesh, sim, lost, 1000, 30000, &last_at);
        int64_t down_at = 0, first_at = 0;
        for (size_t k = 1; k <= nodes; k++) {
            int64_t at = atomic_load (&mesh.node [k].down_at);
            if (at && (!down_at || at < down_at))
                down_at = at;
        }
        for (size_t k = 1; k <= nodes; k++) {
            pthread_mutex_lock (&mesh.node [k].lock);
            for (size_t d = 1; d <= nodes; d++)
                if (mesh.node [k].next_seen [d] && mesh.node [k].next_at [d] >= down_at
                &&  (!first_at || mesh.node [k].next_at [d] < first_at))
                    first_at = mesh.node [k].next_at [d];
            pthread_mutex_unlock (&mesh.node [k].lock);
        }
        result->ms = last_at - down_at;
        result->first_ms = first_at - down_at;
        result->events = s_events (&mesh, &result->announced) - events0;
        result->announced -= announced0;
        if (s_verbose)
            printf ("  cut at %" PRId64 ", first nat.peer.down %" PRId64 " ms later\n", cut_at, down_at - cut_at);
    }
    s_stop (&mesh);
    free (mesh.node);
    route_sim_destroy (&sim);
    return ok;
}

static int
s_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

int
main (int argc, char **argv)
{
    size_t sizes [8], n_sizes = 0;
    int runs = 5;
    int opt;
    while ((opt = getopt (argc, argv, "n:r:v")) != -1) {
        if (opt == 'n' && n_sizes < 8 && atoi (optarg) >= 3 && atoi (optarg) <= C_MAX)
            sizes [n_sizes++] = (size_t) atoi (optarg);
        else
        if (opt == 'r' && atoi (optarg) >= 1 && atoi (optarg) <= 50)
            runs = atoi (optarg);
        else
        if (opt == 'v')
            s_verbose = true;
        else {
            fprintf (stderr, "usage: bench_convergence [-n NODES (3..%d)]... [-r RUNS (1..50)] [-v]\n", C_MAX);
            return 2;
        }
    }
    if (!n_sizes) {
        sizes [n_sizes++] = 8;
        sizes [n_sizes++] = 32;
    }
    zsys_init ();
    zsys_set_max_sockets (0);
    bus_log_init ("bench_convergence");
    if (!s_verbose)
        bus_log_set_level (BUS_LOG_WARN);
    double load [3] = { 0 };
    for (size_t s = 0; s < n_sizes; s++) {
        int64_t ms [50], first [50];
        int done = 0;
        for (int r = 0; r < runs; r++) {
            c_result_t result = { 0 };
            uint32_t seed = 12345 + (uint32_t) r;
            if (!s_run (sizes [s], seed, &result)) {
                printf ("mesh of %2zu, seed %u: did not settle\n", sizes [s], seed);
                continue;
            }
            getloadavg (load, 3);
            printf ("mesh of %2zu, seed %u: %3zu links, busiest node (degree %2zu) lost: settled %5" PRId64
                    " ms after nat said so (first route.next %" PRId64 " ms), %3zu rounds in route_sim, "
                    "%4" PRIu64 " route.next, %4" PRIu64 " announcements; load %.1f\n", sizes [s], seed, result.links,
                    result.degree, result.ms, result.first_ms, result.rounds, result.events, result.announced, load [0]);
            fflush (stdout);
            ms [done] = result.ms;
            first [done++] = result.first_ms;
        }
        if (!done)
            continue;
        qsort (ms, (size_t) done, sizeof ms [0], s_cmp);
        qsort (first, (size_t) done, sizeof first [0], s_cmp);
        printf ("mesh of %2zu: %d runs, convergence after a peer loss min %" PRId64 " / median %" PRId64 " / max %"
                PRId64 " ms (first route.next %" PRId64 " / %" PRId64 " / %" PRId64 " ms)\n", sizes [s], done, ms [0],
                ms [done / 2], ms [done - 1], first [0], first [done / 2], first [done - 1]);
        fflush (stdout);
    }
    return 0;
}
