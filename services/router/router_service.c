/*  router_service: bifrost-router's service and program part (router_service.h).
    The handlers only decode and encode: what an event means for the table is
    router_links' (tested without a bus), so this file is the bus glue, its
    config, and a self test on a real broker. */
#include "router_service.h"
#include "router_links.h"
#include "router_groups.h"
#include "bus_clock.h"
#include "bus_log.h"
#include "node_peers.h"
#include "bus_broker.h"
#include "bus_client.h"
#include "bus_endpoint.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert (ROUTER_NEXT_HOPS == sizeof ((route_next_t *) 0)->next_hops / sizeof (route_hop_t),
                "route.next's list holds ROUTER_NEXT_HOPS next hops");

//  What route.next last said of a destination (compared to say it again only
//  when it changed)
typedef struct {
    uint64_t dest;
    uint32_t index;
    uint8_t tier, hops, count;
    uint32_t metric;
    route_hop_t next_hops [ROUTER_NEXT_HOPS];
} s_next_t;

//  What route.tree last said of an origin
typedef struct {
    uint64_t origin;
    uint32_t index;             //  ROUTER_TREE_SELF for this node
    uint32_t count;
    route_hop_t *children;
} s_tree_t;

#define ROUTER_TREE_SELF    UINT32_MAX
#define ROUTER_TREE_MAX     (sizeof ((route_tree_t *) 0)->children / sizeof (route_hop_t))

//  A neighbour's route.heard budget (a token bucket)
typedef struct {
    uint32_t index;
    double tokens;
    int64_t at;
    int64_t dumped_at;          //  our table sent whole on its request (once per ROUTER_REQUEST_DUMP_MS)
    bool dump_owed;             //  asked again sooner: sent when the interval is over, not dropped
} s_bucket_t;

struct _router_service_t {
    bus_service_t *svc;
    router_links_t *links;
    router_groups_t *groups;    //  multicast groups and anycast (router_groups.h)
    router_service_config_t config;
    int timer;                  //  expiry and the nat.status question
    int trigger_timer;          //  triggered updates due? (50 ms)
    int dump_timer;             //  the periodic dump (route_timeout / 4)
    int resync_timer;           //  every route.next again, once (-1: none pending)
    int interval;               //  ms between nat.status questions
    bool asking;                //  one question in flight at most
    int64_t asked;              //  when it was sent
    s_next_t *next;             //  route.next as last published, by destination id
    size_t next_count;
    uint32_t unindexed;         //  destinations with no peer index (not published)
    s_tree_t *trees;            //  route.tree as last published, by origin id
    size_t trees_count;
    uint64_t trees_published;
    s_bucket_t *buckets;
    size_t buckets_count;
    route_msg_t *msg;           //  one announcement, in or out (8 KB: not on the stack)
    uint64_t announced, heard, rate_limited, not_neighbour, no_self, next_published;
    uint64_t codec [ROUTE_MSG_ERRORS];
};

//  ---------------------------------------------------------------------------
//  Config

void
router_service_check_config (bus_config_t *config, router_service_config_t *out)
{
    memset (out, 0, sizeof *out);
    bus_cfg_read (config, &bus_cfg_routing_group, NULL, &out->routing, BUS_CFG_CHECK_KEYS, NULL, NULL, NULL);
    //  nat's group; the router reads one key of it (nat checks the rest)
    static const char *const connection_keys [] = { "relay_via_peers", NULL };
    bus_cfg_connection_t connection;
    bus_cfg_read (config, &bus_cfg_connection_group, NULL, &connection, 0, connection_keys, NULL, NULL);
    route_config_defaults (&out->route);
    out->route.max_hops = (unsigned) out->routing.max_hops;
    out->route.route_timeout = out->routing.route_timeout_ms;
    out->route.split_horizon = !out->routing.split_horizon ? ROUTE_SPLIT_OFF
                             : out->routing.poison_reverse ? ROUTE_SPLIT_POISON : ROUTE_SPLIT_OMIT;
    out->route.relay_via_peers = connection.relay_via_peers;
    out->transit = out->routing.transit;
    out->status_interval_ms = 2000;
    out->heard_rate = 20;
    out->heard_burst = 100;
    //  routing.groups: the groups joined from the start
    config_setting_t *groups = out->routing.groups;
    int groups_n = groups && (config_setting_is_array (groups) || config_setting_is_list (groups))
                 ? config_setting_length (groups) : 0;
    for (int i = 0; i < groups_n; i++) {
        config_setting_t *item = config_setting_get_elem (groups, (unsigned) i);
        const char *text = config_setting_type (item) == CONFIG_TYPE_STRING ? config_setting_get_string (item) : NULL;
        group_entry_t *g = &out->groups [out->groups_count];
        char err [200];
        if (!text)
            bus_config_error (config, item, "routing.groups: expected addresses in quotes, e.g. \"239.1.2.3\"");
        else
        if (group_addr_parse (text, g->addr, &g->kind, err, sizeof err))
            bus_config_error (config, item, "routing.groups: %s", err);
        else
        if (out->groups_count == ROUTE_WIRE_MAX_GROUPS)
            bus_config_error (config, item, "routing.groups: at most %d groups", ROUTE_WIRE_MAX_GROUPS);
        else
            out->groups_count++;
    }
    out->routing.groups = NULL;         //  (the config's, gone after the check)
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
//  route.next: each destination's next hops, to the data path

static int
s_next_cmp (const s_next_t *a, const s_next_t *b)
{
    return a->index != b->index || a->tier != b->tier || a->hops != b->hops || a->count != b->count
        || a->metric != b->metric || memcmp (a->next_hops, b->next_hops, a->count * sizeof a->next_hops [0]) != 0;
}

static int
s_by_id (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

static bool
s_has_index (const s_next_t *list, size_t count, uint32_t index)
{
    for (size_t i = 0; i < count; i++)
        if (list [i].index == index)
            return true;
    return false;
}

static void
s_next_publish (router_service_t *self, const s_next_t *next, bool reachable)
{
    route_next_t event = { .index = next->index, .ttl = router_service_ttl (self) };
    event.self_id = router_links_self (self->links);
    const router_peer_t *dest = router_links_find_id (self->links, next->dest);
    event.dest_id = dest && dest->registry_id ? next->dest : 0;
    if (reachable) {
        snprintf (event.path, sizeof event.path, "%s", route_tier_name ((route_tier_t) next->tier));
        event.hops = next->hops;
        event.metric = next->metric;
        event.next_hops_count = next->count;
        memcpy (event.next_hops, next->next_hops, next->count * sizeof next->next_hops [0]);
    }
    bus_service_publish (self->svc, &route_next_schema, &event);
    self->next_published++;
}

//  ---------------------------------------------------------------------------
//  route.tree: each origin's children here, for the data path's broadcasts

static void
s_trees_free (s_tree_t *trees, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free (trees [i].children);
    free (trees);
}

static int
s_tree_by_origin (const void *a, const void *b)
{
    uint64_t x = ((const s_tree_t *) a)->origin, y = ((const s_tree_t *) b)->origin;
    return x < y ? -1 : x > y;
}

static bool
s_tree_same (const s_tree_t *a, const s_tree_t *b)
{
    return a->index == b->index && a->count == b->count
        && (a->count == 0 || memcmp (a->children, b->children, a->count * sizeof a->children [0]) == 0);
}

static void
s_tree_publish (router_service_t *self, const s_tree_t *tree, bool empty)
{
    route_tree_t *event = (route_tree_t *) calloc (1, sizeof *event);
    assert (event);
    event->self_id = router_links_self (self->links);
    event->origin = tree->index;
    event->origin_id = tree->origin;
    event->ttl = router_service_ttl (self);
    if (!empty && tree->count) {
        event->children_count = tree->count;
        memcpy (event->children, tree->children, tree->count * sizeof tree->children [0]);
    }
    bus_service_publish (self->svc, &route_tree_schema, event);
    free (event);
    self->trees_published++;
}

//  The tree of one origin here: route_table_children, by peer index
static void
s_tree_make (router_service_t *self, uint64_t origin, uint32_t index, s_tree_t *tree)
{
    uint64_t ids [ROUTER_TREE_MAX];
    size_t n = route_table_children (router_links_table (self->links), origin, ids, ROUTER_TREE_MAX);
    n = n < ROUTER_TREE_MAX ? n : ROUTER_TREE_MAX;
    *tree = (s_tree_t) { .origin = origin, .index = index };
    tree->children = (route_hop_t *) calloc (n ? n : 1, sizeof *tree->children);
    assert (tree->children);
    for (size_t k = 0; k < n; k++) {
        const router_peer_t *p = router_links_find_id (self->links, ids [k]);
        if (!p)
            continue;           //  every neighbour is a peer router_links made
        tree->children [tree->count].index = p->index;
        tree->children [tree->count].id = p->registry_id ? p->id : 0;
        tree->count++;
    }
}

//  Compares each origin's children (ours, and every destination's with a
//  peer index) with what route.tree said last and publishes what changed
//  (all: every origin again). Nothing while this node has no registry id or
//  uses no peers (relay_via_peers false): the data path then floods end to
//  end, one copy per session. With transit off only our own tree has
//  children: we carry nothing of others'.
static void
s_sync_tree (router_service_t *self, const s_next_t *next, size_t next_count, bool all)
{
    uint64_t me = router_links_self (self->links);
    if (!me || !self->config.route.relay_via_peers) {
        s_trees_free (self->trees, self->trees_count);
        self->trees = NULL;
        self->trees_count = 0;
        return;
    }
    s_tree_t *fresh = (s_tree_t *) calloc (next_count + 1, sizeof *fresh);
    assert (fresh);
    size_t count = 0;
    s_tree_make (self, me, ROUTER_TREE_SELF, &fresh [count++]);
    for (size_t i = 0; i < next_count; i++) {
        if (self->config.transit)
            s_tree_make (self, next [i].dest, next [i].index, &fresh [count]);
        else
            fresh [count] = (s_tree_t) { .origin = next [i].dest, .index = next [i].index };
        count++;
    }
    qsort (fresh, count, sizeof *fresh, s_tree_by_origin);
    //  Gone: said once with no children
    size_t i = 0, j = 0;
    for (i = 0; i < self->trees_count; i++) {
        while (j < count && fresh [j].origin < self->trees [i].origin)
            j++;
        if (!(j < count && fresh [j].origin == self->trees [i].origin) && self->trees [i].count)
            s_tree_publish (self, &self->trees [i], true);
    }
    //  New or changed
    for (i = 0, j = 0; j < count; j++) {
        while (i < self->trees_count && self->trees [i].origin < fresh [j].origin)
            i++;
        bool same = i < self->trees_count && self->trees [i].origin == fresh [j].origin
                 && s_tree_same (&self->trees [i], &fresh [j]);
        if (all || !same)
            s_tree_publish (self, &fresh [j], false);
    }
    s_trees_free (self->trees, self->trees_count);
    self->trees = fresh;
    self->trees_count = count;
}

//  Compares the table with what route.next said last and publishes what
//  changed (all: every destination again, for a data path that restarted).
//  Both lists are sorted by destination id, so one merge walk does it.
//  A destination no peer index names (learnt from announcements only) is
//  left out and counted: the data path works by index.
static void
s_sync_next (router_service_t *self, bool all)
{
    route_table_t *table = router_links_table (self->links);
    size_t size = route_table_size (table);
    route_t *routes = (route_t *) calloc (size ? size : 1, sizeof *routes);
    s_next_t *fresh = (s_next_t *) calloc (size ? size : 1, sizeof *fresh);
    assert (routes && fresh);
    size_t n = route_table_routes (table, routes, size), count = 0;
    uint32_t unindexed = 0;
    for (size_t i = 0; i < n; i++) {
        const router_peer_t *dest = router_links_find_id (self->links, routes [i].dest);
        if (!dest) {
            unindexed++;
            continue;
        }
        s_next_t *f = &fresh [count++];
        f->dest = routes [i].dest;
        f->index = dest->index;
        f->tier = routes [i].tier;
        f->hops = routes [i].hops;
        f->metric = routes [i].metric;
        //  Best first (the table's choice), then the others by id, so a
        //  list in another order never reads as a change
        uint64_t hops [ROUTER_NEXT_HOPS];
        size_t k = route_table_equal (table, f->dest, hops, ROUTER_NEXT_HOPS);
        k = k < ROUTER_NEXT_HOPS ? k : ROUTER_NEXT_HOPS;
        qsort (hops, k, sizeof hops [0], s_by_id);     //  (32 bytes at most: glibc sorts on the stack)
        for (size_t h = 1; h < k; h++)
            if (hops [h] == routes [i].next_hop) {
                memmove (hops + 1, hops, h * sizeof hops [0]);
                hops [0] = routes [i].next_hop;
            }
        for (size_t h = 0; h < k; h++) {
            const router_peer_t *next = router_links_find_id (self->links, hops [h]);
            assert (next);      //  every next hop is a neighbour router_links made
            f->next_hops [f->count].index = next->index;
            f->next_hops [f->count].id = next->registry_id ? next->id : 0;
            f->count++;
        }
    }
    //  Gone, or moved to another index: unreachable under the old index,
    //  unless a destination of the new list holds it (a peer of the config
    //  whose local key became its registry id)
    size_t i = 0, j = 0;
    while (i < self->next_count) {
        while (j < count && fresh [j].dest < self->next [i].dest)
            j++;
        bool kept = j < count && fresh [j].dest == self->next [i].dest && fresh [j].index == self->next [i].index;
        if (!kept && !s_has_index (fresh, count, self->next [i].index))
            s_next_publish (self, &self->next [i], false);
        i++;
    }
    //  New or changed
    for (i = 0, j = 0; j < count; j++) {
        while (i < self->next_count && self->next [i].dest < fresh [j].dest)
            i++;
        bool same = i < self->next_count && self->next [i].dest == fresh [j].dest
                 && s_next_cmp (&self->next [i], &fresh [j]) == 0;
        if (all || !same)
            s_next_publish (self, &fresh [j], true);
    }
    free (self->next);
    self->next = fresh;
    self->next_count = count;
    self->unindexed = unindexed;
    free (routes);
    //  A group's nearest member follows the routes
    router_groups_sync (self->groups, all, bus_clock_ms ());
    s_sync_tree (self, self->next, self->next_count, all);
}

//  Every destination again, coalesced (nat or crypto and the bus may ask at once)
static int
s_resync (bus_loop_t *loop, int timer_id, void *arg)
{
    router_service_t *self = (router_service_t *) arg;
    self->resync_timer = -1;
    s_sync_next (self, true);
    return 0;
}

static void
s_resync_soon (router_service_t *self)
{
    if (self->resync_timer < 0)
        self->resync_timer = bus_loop_timer (bus_service_loop (self->svc), 20, 1, s_resync, self);
}

//  bus.sync (ours, through on_connect): a service rejoined the bus
static void
s_on_connect (bus_service_t *svc, uint64_t epoch, void *arg)
{
    s_resync_soon ((router_service_t *) arg);
}

static void s_announce_round (router_service_t *self, bool full, int64_t now);

//  bus.state: nat or crypto (re)connected and hold no route.next yet; crypto
//  may have missed announcements while away: the neighbours get a dump now
//  rather than at the next periodic one
static void
s_on_bus_state (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    router_service_t *self = (router_service_t *) arg;
    bus_state_t state;
    char err [200];
    if (bus_envelope_get_msg (env, &bus_state_schema, &state, err, sizeof err))
        return;
    bool nat = strncmp (state.instance, "nat", 3) == 0, crypto = strncmp (state.instance, "crypto", 6) == 0;
    bool device = strncmp (state.instance, "device", 6) == 0;  //  (group.members' other reader)
    if (nat || crypto || device)
        s_resync_soon (self);
    if (crypto) {
        s_announce_round (self, true, bus_clock_ms ());
        router_groups_dump (self->groups, bus_clock_ms ());    //  (our group reports too)
    }
}

//  ---------------------------------------------------------------------------
//  Announcements out: route.announce, one per neighbour and split list

//  One round: triggered (the changes; everything to a new neighbour) or
//  full (the periodic dump). Only neighbours with a registry id hear one
//  (a peer of the config has no id to check the announcement's origin
//  by); with transit off the round is taken and nothing sent.
//  What the table has for one neighbour (every route when full), split
static void
s_announce_to (router_service_t *self, const router_peer_t *p, bool full, route_announce_t *out)
{
    route_table_t *table = router_links_table (self->links);
    size_t cursor = 0;
    while (route_table_announce (table, p->id, full, self->msg, &cursor)) {
        out->index = p->index;
        out->announcement_size = (uint32_t) route_msg_encode (self->msg, out->announcement,
                                                              sizeof out->announcement);
        assert (out->announcement_size);    //  the table writes only what passes the codec
        bus_service_publish (self->svc, &route_announce_schema, out);
        self->announced++;
    }
}

static void
s_announce_round (router_service_t *self, bool full, int64_t now)
{
    route_table_t *table = router_links_table (self->links);
    if (!router_links_self (self->links))
        return;
    if (self->config.transit) {
        route_announce_t *out = (route_announce_t *) calloc (1, sizeof *out);
        assert (out);
        for (size_t i = 0; i < router_links_count (self->links); i++) {
            const router_peer_t *p = router_links_at (self->links, i);
            if (p->up && p->registry_id)
                s_announce_to (self, p, full, out);
        }
        free (out);
    }
    if (!full)
        route_table_updates_sent (table, now);
}

//  The whole table to each neighbour that asked for it (a group report with
//  the request flag), at most once per ROUTER_REQUEST_DUMP_MS each
static void
s_dumps_owed (router_service_t *self, int64_t now)
{
    for (size_t i = 0; i < self->buckets_count; i++) {
        s_bucket_t *b = &self->buckets [i];
        if (!b->dump_owed || now - b->dumped_at < ROUTER_REQUEST_DUMP_MS)
            continue;
        b->dump_owed = false;
        const router_peer_t *p = router_links_find (self->links, b->index);
        if (!p || !p->up || !p->registry_id || !self->config.transit)
            continue;
        b->dumped_at = now;
        route_announce_t *out = (route_announce_t *) calloc (1, sizeof *out);
        assert (out);
        s_announce_to (self, p, true, out);
        free (out);
    }
}

static int
s_trigger_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    router_service_t *self = (router_service_t *) arg;
    int64_t now = bus_clock_ms ();
    s_dumps_owed (self, now);
    if (route_table_updates_due (router_links_table (self->links), now))
        s_announce_round (self, false, now);
    router_groups_tick (self->groups, now);
    return 0;
}

static int
s_dump_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    router_service_t *self = (router_service_t *) arg;
    s_announce_round (self, true, bus_clock_ms ());
    router_groups_dump (self->groups, bus_clock_ms ());
    return 0;
}

//  ---------------------------------------------------------------------------
//  Announcements in: route.heard (crypto authenticated the session's peer)

static s_bucket_t *
s_bucket (router_service_t *self, uint32_t index, int64_t now)
{
    for (size_t i = 0; i < self->buckets_count; i++)
        if (self->buckets [i].index == index)
            return &self->buckets [i];
    self->buckets = (s_bucket_t *) realloc (self->buckets, (self->buckets_count + 1) * sizeof *self->buckets);
    assert (self->buckets);
    s_bucket_t *b = &self->buckets [self->buckets_count++];
    *b = (s_bucket_t) { .index = index, .tokens = self->config.heard_burst, .at = now, .dumped_at = INT64_MIN / 2 };
    return b;
}

//  A token bucket per neighbour: heard_rate a second, heard_burst at once
static bool
s_rate_ok (router_service_t *self, uint32_t index, int64_t now)
{
    s_bucket_t *b = s_bucket (self, index, now);
    b->tokens += (double) (now - b->at) * self->config.heard_rate / 1000.0;
    if (b->tokens > self->config.heard_burst)
        b->tokens = self->config.heard_burst;
    b->at = now;
    if (b->tokens < 1)
        return false;
    b->tokens -= 1;
    return true;
}

static void
s_on_heard (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    router_service_t *self = (router_service_t *) arg;
    route_heard_t *heard = (route_heard_t *) calloc (1, sizeof *heard);
    assert (heard);
    char err [200];
    int64_t now = bus_clock_ms ();
    if (bus_envelope_get_msg (env, &route_heard_schema, heard, err, sizeof err))
        bus_warn ("route.heard: %s", err);
    else {
        //  A group report (type 50) comes end to end from any peer up or
        //  routed; an announcement only from a neighbour
        const router_peer_t *from = router_links_find (self->links, heard->index);
        bool group = heard->announcement_size && heard->announcement [0] == ROUTE_WIRE_GROUPS;
        if (!router_links_self (self->links))
            self->no_self++;
        else
        if (group ? !router_groups_reachable (self->groups, from) : !from || !from->up || !from->registry_id)
            self->not_neighbour++;
        else
        if (!s_rate_ok (self, heard->index, now))
            self->rate_limited++;
        else
        if (group) {
            //  A neighbour's router that asks for our groups has just started
            //  (or just found us): it gets our whole route table too, rather
            //  than at the next dump (docs/routing.md, a restarted router)
            //  (once per ROUTER_REQUEST_DUMP_MS: a request costs the asker one
            //  report, a dump up to 72 announcements)
            //  A request inside the interval is kept and served when it is
            //  over (s_dumps_owed): a router restarted within 5 s of our
            //  last dump to it would otherwise wait for the periodic one
            s_bucket_t *b = s_bucket (self, heard->index, now);
            if (router_groups_heard (self->groups, from, heard->announcement, heard->announcement_size, now)
            &&  from->up && self->config.transit) {
                b->dump_owed = true;
                s_dumps_owed (self, now);
            }
        }
        else {
            route_msg_err_t rc = route_msg_decode (heard->announcement, heard->announcement_size, self->msg);
            if (rc != ROUTE_MSG_OK) {
                self->codec [rc]++;
                bus_debug ("route.heard from %s: refused, %s", from->name, route_msg_err_name (rc));
            }
            else
            if (route_table_receive (router_links_table (self->links), from->id, self->msg, now) >= 0) {
                self->heard++;
                s_sync_next (self, false);
            }
        }
    }
    free (heard);
}

//  ---------------------------------------------------------------------------
//  Events: the neighbours

//  discovery's peers (schemas/peer.def): peer.up names the peer's registry
//  id, peer.down withdraws it at once; peer.changed says nothing of a path.
//  node.address names ours.
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
            router_links_peer_up (self->links, up->index, up->name, up->relay_id, up->peer_id, bus_clock_ms ());
        free (up);
    }
    else
    if (streq (type, "peer.down")) {
        peer_down_t down;
        if (bus_envelope_get_msg (env, &peer_down_schema, &down, err, sizeof err) == 0) {
            const router_peer_t *gone = router_links_find (self->links, down.index);
            if (gone && gone->registry_id)
                router_groups_forget (self->groups, gone->id, bus_clock_ms ());
            router_links_peer_down (self->links, down.index, bus_clock_ms ());
        }
    }
    else
        return;
    if (*err)
        bus_warn ("%s: %s", type, err);
    s_sync_next (self, false);
}

static void
s_on_address (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    router_service_t *self = (router_service_t *) arg;
    node_address_t msg;
    char err [200];
    if (bus_envelope_get_msg (env, &node_address_schema, &msg, err, sizeof err))
        bus_warn ("node.address: %s", err);
    else
    if (router_links_set_self (self->links, msg.peer_id, bus_clock_ms ())) {
        bus_info ("routing as %s: announcements to and from neighbours", msg.peer_id);
        s_sync_next (self, true);
    }
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
    s_sync_next (self, false);
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
        s_sync_next (self, false);
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
    if (route_table_expire (router_links_table (self->links), now))
        s_sync_next (self, false);
    router_groups_expire (self->groups, now);
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

//  The rows by index. Not qsort: glibc's asks the kernel for the machine's
//  memory (sysinfo, which the router's seccomp filter refuses) once the
//  array passes 1 KB, and two rows do. An insertion sort of positions (at
//  most 256 rows), then one copy each.
static void
s_sort_rows (router_routes_reply_t *reply)
{
    uint32_t n = reply->routes_count;
    uint16_t order [sizeof reply->routes / sizeof reply->routes [0]];
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = i;
        while (j > 0 && reply->routes [order [j - 1]].index > reply->routes [i].index) {
            order [j] = order [j - 1];
            j--;
        }
        order [j] = (uint16_t) i;
    }
    router_routes_route_t *copy = (router_routes_route_t *) malloc ((n ? n : 1) * sizeof *copy);
    assert (copy);
    memcpy (copy, reply->routes, n * sizeof *copy);
    for (uint32_t i = 0; i < n; i++)
        reply->routes [i] = copy [order [i]];
    free (copy);
}

static void
s_counter (router_routes_reply_t *reply, const char *name, uint64_t value)
{
    if (!value || reply->refused_count == sizeof reply->refused / sizeof reply->refused [0])
        return;
    router_counter_t *c = &reply->refused [reply->refused_count++];
    size_t len = strlen (name) < sizeof c->name - 1 ? strlen (name) : sizeof c->name - 1;
    memcpy (c->name, name, len);
    c->name [len] = 0;
    c->value = value;
}

//  The announcements' counters: the codec's refusals, the table's, ours
static void
s_counters (router_service_t *self, router_routes_reply_t *reply)
{
    uint64_t self_id = router_links_self (self->links);
    if (self_id)
        snprintf (reply->self_id, sizeof reply->self_id, "%016" PRIx64, self_id);
    reply->announced = self->announced;
    reply->heard = self->heard;
    reply->unindexed = self->unindexed;
    for (int e = 1; e < ROUTE_MSG_ERRORS; e++)
        s_counter (reply, route_msg_err_name ((route_msg_err_t) e), self->codec [e]);
    const route_stats_t *stats = route_table_stats (router_links_table (self->links));
    s_counter (reply, "stale", stats->stale);
    s_counter (reply, "impostor", stats->impostor);
    s_counter (reply, "through us", stats->through_us);
    s_counter (reply, "too long", stats->too_long);
    s_counter (reply, "capped", stats->capped);
    s_counter (reply, "expired", stats->expired);
    s_counter (reply, "rate limited", self->rate_limited);
    s_counter (reply, "not a neighbour", self->not_neighbour);
    s_counter (reply, "no self id", self->no_self);
    //  The group reports' (docs/groups.md)
    const router_groups_stats_t *groups = router_groups_stats (self->groups);
    const group_stats_t *table = group_table_stats (router_groups_table (self->groups));
    char name [32];
    for (int e = 1; e < GROUP_MSG_ERRORS; e++) {
        snprintf (name, sizeof name, "group %s", group_msg_err_name ((group_msg_err_t) e));
        s_counter (reply, name, groups->codec [e]);
    }
    s_counter (reply, "group stale", table->stale);
    s_counter (reply, "group impostor", table->impostor);
    s_counter (reply, "group capped", table->capped);
    s_counter (reply, "group expired", table->expired);
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
        assert (next);          //  a next hop is a neighbour; a destination may be known only by id
        char name [49];
        router_links_name (self->links, r->dest, name, sizeof name);
        if (*request.peer && !streq (request.peer, name))
            continue;
        reply->total++;
        if (reply->routes_count == sizeof reply->routes / sizeof reply->routes [0])
            continue;
        router_routes_route_t *row = &reply->routes [reply->routes_count++];
        row->index = dest ? dest->index : UINT32_MAX;
        snprintf (row->name, sizeof row->name, "%s", name);
        if (!dest || dest->registry_id)
            snprintf (row->peer_id, sizeof row->peer_id, "%016" PRIx64, r->dest);
        row->next_hop = next->index;
        router_links_name (self->links, r->next_hop, row->next_hop_name, sizeof row->next_hop_name);
        row->metric = r->metric;
        row->hops = r->hops;
        snprintf (row->path, sizeof row->path, "%s", route_tier_name ((route_tier_t) r->tier));
        for (size_t h = 0; h < r->hops && h < sizeof row->via / sizeof row->via [0]; h++)
            router_links_name (self->links, r->path [h], row->via [row->via_count++], sizeof row->via [0]);
        row->rtt_ms = next->rtt_ms;
        row->age_ms = now - r->updated;
    }
    s_sort_rows (reply);
    s_counters (self, reply);
    bus_service_reply (svc, env, &router_routes_reply_schema, reply);
    free (reply);
    free (routes);
}

//  ---------------------------------------------------------------------------
//  Life cycle

uint32_t
router_service_ttl (router_service_t *self)
{
    return self->config.route.max_hops;
}

router_service_t *
router_service_new (bus_service_t *svc, router_service_config_t *config, char *err, size_t err_size)
{
    assert (svc && config);
    router_service_t *self = (router_service_t *) calloc (1, sizeof *self);
    assert (self);
    self->svc = svc;
    self->config = *config;
    self->links = router_links_new (&config->route);
    self->groups = router_groups_new (svc, self->links, config->groups, config->groups_count,
                                      config->route.route_timeout);
    self->msg = (route_msg_t *) calloc (1, sizeof *self->msg);
    assert (self->msg);
    self->interval = config->status_interval_ms;
    bus_loop_t *loop = bus_service_loop (svc);
    self->timer = bus_loop_timer (loop, (size_t) self->interval, 0, s_tick, self);
    self->trigger_timer = bus_loop_timer (loop, ROUTER_TRIGGER_CHECK_MS, 0, s_trigger_tick, self);
    self->dump_timer = bus_loop_timer (loop, (size_t) (config->route.route_timeout / 4), 0, s_dump_tick, self);
    self->resync_timer = -1;
    bus_service_handle (svc, "router.route", s_on_route, self);
    bus_service_handle (svc, "router.routes", s_on_routes, self);
    bus_service_subscribe (svc, "peer.", s_on_peer, self);
    bus_service_subscribe (svc, "node.address", s_on_address, self);
    bus_service_subscribe (svc, "nat.peer", s_on_nat_peer, self);
    bus_service_subscribe (svc, "route.heard", s_on_heard, self);
    bus_service_subscribe (svc, "bus.state", s_on_bus_state, self);
    bus_service_on_connect (svc, s_on_connect, self);
    bus_info ("routing: max %u hops, routes expire after %" PRId64 " s, split horizon %s, %s%s; neighbours "
              "from nat, asked every %d ms",
              config->route.max_hops, config->route.route_timeout / 1000,
              config->route.split_horizon == ROUTE_SPLIT_POISON ? "by poison reverse"
              : config->route.split_horizon == ROUTE_SPLIT_OMIT ? "by omission" : "off",
              config->route.relay_via_peers ? "routes through peers" : "no routes through peers (relay_via_peers)",
              config->route.relay_via_peers && !config->transit ? ", carrying for none (transit = false)" : "",
              self->interval);
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
    if (loop) {
        bus_loop_timer_end (loop, self->timer);
        bus_loop_timer_end (loop, self->trigger_timer);
        bus_loop_timer_end (loop, self->dump_timer);
        if (self->resync_timer >= 0)
            bus_loop_timer_end (loop, self->resync_timer);
    }
    router_groups_destroy (&self->groups);
    router_links_destroy (&self->links);
    free (self->next);
    s_trees_free (self->trees, self->trees_count);
    free (self->buckets);
    free (self->msg);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------------
//  The program

BUS_SERVICE_PART (router_service_t, router_service_config_t, router_service_check_config,
                  router_service_new, router_service_destroy, router_service_config_clear)

//  It computes, never forwards: no socket of its own beyond the bus, so
//  nothing beyond BASE in its seccomp filter, and only its own directory
//  (where its groups file is opened in setup: router_groups.h)
const bus_service_def_t router_service_def = {
    .name = "router",
    .summary = "routes: the next hop for each peer, from nat's neighbours and their routers' announcements",
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
    snprintf (up->peer_id, sizeof up->peer_id, "%s", id);
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

//  route.next as the late data path heard it, by index
static pthread_mutex_t s_test_lock = PTHREAD_MUTEX_INITIALIZER;
static route_next_t s_test_next [8];

static void
s_test_on_next (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    route_next_t next;
    char err [200];
    assert (bus_envelope_get_msg (env, &route_next_schema, &next, err, sizeof err) == 0 && next.index < 8);
    pthread_mutex_lock (&s_test_lock);
    s_test_next [next.index] = next;
    pthread_mutex_unlock (&s_test_lock);
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

//  The device's multicast groups, every 50 ms (the router may subscribe late)
static int
s_test_device (bus_loop_t *loop, int timer_id, void *arg)
{
    bus_service_t *device = (bus_service_t *) arg;
    device_groups_t *msg = (device_groups_t *) calloc (1, sizeof *msg);
    assert (msg);
    const char *groups [] = { "239.5.5.5", "ff05::7", "10.1.1.1", "bad", "127.0.0.1" };
    for (size_t i = 0; i < sizeof groups / sizeof groups [0]; i++)
        snprintf (msg->groups [msg->groups_count++], sizeof msg->groups [0], "%s", groups [i]);
    bus_service_publish (device, &device_groups_schema, msg);
    free (msg);
    return 0;
}

static pthread_mutex_t s_test_groups_lock = PTHREAD_MUTEX_INITIALIZER;
static group_members_t s_test_members;
static int s_test_members_seen;

static void
s_test_on_members (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    group_members_t *msg = (group_members_t *) calloc (1, sizeof *msg);
    char err [200];
    assert (msg && bus_envelope_get_msg (env, &group_members_schema, msg, err, sizeof err) == 0);
    pthread_mutex_lock (&s_test_groups_lock);
    if (streq (msg->group, "10.77.0.1")) {
        s_test_members = *msg;
        s_test_members_seen++;
    }
    pthread_mutex_unlock (&s_test_groups_lock);
    free (msg);
}

//  router.group; the reply in *reply (may be NULL), or NULL with err
static bool
s_test_group (bus_client_t *client, const char *action, const char *group, router_group_reply_t *reply,
              char *err, size_t err_size)
{
    router_group_t request;
    memset (&request, 0, sizeof request);
    snprintf (request.action, sizeof request.action, "%s", action);
    snprintf (request.group, sizeof request.group, "%s", group);
    bus_envelope_t *env = bus_client_request (client, "router", &router_group_schema, &request, 1000, err, err_size);
    if (env && reply)
        assert (bus_envelope_get_msg (env, &router_group_reply_schema, reply, err, err_size) == 0);
    bool ok = env != NULL;
    bus_envelope_destroy (&env);
    return ok;
}

//  The groups of a reply as "group:local ..." 
static void
s_test_group_rows (const router_group_reply_t *reply, char *out, size_t size)
{
    size_t len = 0;
    *out = 0;
    for (uint32_t i = 0; i < reply->groups_count && len < size; i++)
        len += (size_t) snprintf (out + len, size - len, "%s%s:%s", i ? " " : "", reply->groups [i].group,
                                  reply->groups [i].local);
}

static void
s_test_groups (const char *dir, bus_client_t *client, router_service_config_t *config, bool verbose)
{
    router_group_reply_t *reply = (router_group_reply_t *) calloc (1, sizeof *reply);
    assert (reply);
    char err [300], rows [400];
    //  The device's list: its multicast groups (not the unicast one, not the bad ones)
    bus_service_t *device = bus_service_new ("device", NULL, dir);
    assert (device);
    bus_loop_timer (bus_service_loop (device), 50, 0, s_test_device, device);
    bus_service_subscribe (device, "group.members", s_test_on_members, NULL);
    zactor_t *device_actor = zactor_new (bus_service_actor, device);
    bool same = false;
    for (int attempt = 0; attempt < 250 && !same; attempt++) {
        assert (s_test_group (client, "list", "", reply, err, sizeof err));
        s_test_group_rows (reply, rows, sizeof rows);
        same = streq (rows, "239.5.5.5:device ff05::7:device");
        if (!same)
            zclock_sleep (20);
    }
    if (!same)
        printf ("router_service: groups '%s'\n", rows);
    assert (same);
    //  bifrostctl: join (kept in the file), refusals
    assert (s_test_group (client, "join", "10.77.0.1", reply, err, sizeof err));
    s_test_group_rows (reply, rows, sizeof rows);
    assert (streq (rows, "10.77.0.1:ctl 239.5.5.5:device ff05::7:device") && reply->total == 3
            && reply->groups [0].anycast && !reply->groups [1].anycast && !*reply->groups [0].nearest);
    assert (s_test_group (client, "join", "239.5.5.5", reply, err, sizeof err));
    assert (streq (reply->groups [1].local, "device,ctl"));
    assert (!s_test_group (client, "join", "169.254.0.9", NULL, err, sizeof err)
            && strstr (err, "169.254.0.9 is a link-local unicast address: it cannot be a group"));
    assert (!s_test_group (client, "leave", "ff05::7", NULL, err, sizeof err)
            && strstr (err, "(a program on this node joined it)"));
    char path [300], text [200] = "";
    snprintf (path, sizeof path, "%s/router/%s", dir, ROUTER_GROUPS_FILE);
    FILE *file = fopen (path, "r");
    assert (file);
    size_t n = fread (text, 1, sizeof text - 1, file);
    fclose (file);
    text [n] = 0;
    //  the lines, then empty lines to the block's size
    assert (strncmp (text, "10.77.0.1\n239.5.5.5\n\n\n", 22) == 0 && strspn (text + 20, "\n") == n - 20);
    assert (s_test_group (client, "leave", "239.5.5.5", reply, err, sizeof err));
    assert (streq (reply->groups [1].local, "device"));
    //  group.members: the anycast address is ours alone (no member peer)
    bool heard = false;
    for (int attempt = 0; attempt < 250 && !heard; attempt++) {
        pthread_mutex_lock (&s_test_groups_lock);
        heard = s_test_members_seen > 0;
        pthread_mutex_unlock (&s_test_groups_lock);
        if (!heard)
            zclock_sleep (20);
    }
    assert (heard && s_test_members.anycast && s_test_members.local && s_test_members.members_count == 0
            && s_test_members.nearest == UINT32_MAX);
    zactor_destroy (&device_actor);
    bus_service_destroy (&device);

    //  A second router on the same directory (a restart): it joins the ctl
    //  group again from the file, and the config's
    bus_service_t *svc = bus_service_new ("router", "router.2", dir);
    router_service_config_t again = *config;
    char cerr [200];
    assert (group_addr_parse ("ff3e::99", again.groups [0].addr, &again.groups [0].kind, cerr, sizeof cerr) == 0);
    again.groups_count = 1;
    router_service_t *second = router_service_new (svc, &again, err, sizeof err);
    assert (second);
    group_entry_t own [4];
    group_table_t *table = router_groups_table (second->groups);
    assert (group_table_own (table, own, 4) == 2);
    assert (group_table_local (table, own [0].addr) == GROUP_SOURCE_CTL);
    assert (group_table_local (table, own [1].addr) == GROUP_SOURCE_CONFIG);
    router_service_destroy (&second);
    bus_service_destroy (&svc);
    free (reply);
    if (verbose)
        printf ("router_service: groups of the device, bifrostctl (kept: %s) and the config\n", path);
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

    //  A data path that joins late (its subscription makes the broker say
    //  bus.sync, which the router and nat's bus.state both answer) hears
    //  every destination: bob (a peer of the config: no ids), carol and dave
    //  direct and through the relay, no id of our own
    bus_service_t *late = bus_service_new ("device", NULL, dir);
    assert (late);
    memset (s_test_next, 0, sizeof s_test_next);
    bus_service_subscribe (late, "route.next", s_test_on_next, NULL);
    zactor_t *late_actor = zactor_new (bus_service_actor, late);
    bool heard = false;
    for (int attempt = 0; attempt < 250 && !heard; attempt++) {
        zclock_sleep (20);
        pthread_mutex_lock (&s_test_lock);
        heard = s_test_next [0].ttl && s_test_next [4].ttl && s_test_next [5].ttl;
        pthread_mutex_unlock (&s_test_lock);
    }
    assert (heard);
    const route_next_t *n = s_test_next;
    assert (n [0].index == 0 && n [0].dest_id == 0 && n [0].self_id == 0 && n [0].next_hops_count == 1
            && n [0].next_hops [0].index == 0 && n [0].next_hops [0].id == 0 && n [0].ttl == 8);
    assert (n [4].dest_id == 0xc4 && n [4].next_hops [0].id == 0xc4 && streq (n [4].path, "direct")
            && n [4].hops == 1 && n [4].metric == 112);
    assert (n [5].dest_id == 0xd5 && streq (n [5].path, "relay") && n [5].metric == 140);
    zactor_destroy (&late_actor);
    bus_service_destroy (&late);

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

    //  Groups: the device's list, bifrostctl's joins (kept in a file that a
    //  restarted router reads), the config's, and group.members
    s_test_groups (dir, client, config, verbose);

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
    char file [300];
    snprintf (file, sizeof file, "%s/router/%s", dir, ROUTER_GROUPS_FILE);
    unlink (file);
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
    assert (c.transit && c.route.relay_via_peers);
    s_test_config ("routing = { poison_reverse = false; transit = false; };", 0, &c);
    assert (c.route.split_horizon == ROUTE_SPLIT_OMIT && !c.transit && c.route.relay_via_peers);
    s_test_config ("connection = { relay_via_peers = false; }; routing = { split_horizon = false; "
                   "poison_reverse = false; };", 0, &c);
    assert (!c.route.relay_via_peers && c.transit && c.route.split_horizon == ROUTE_SPLIT_OFF);
    s_test_config ("routing = { max_hops = 17; };", 1, &c);
    s_test_config ("routing = { max_hop = 3; };", 1, &c);
    s_test_config ("routing = 1;", 1, &c);
    s_test_config ("routing = { groups = ( \"239.1.2.3\", \"10.99.0.1\", \"127.0.0.1\", \"x\", 5 ); };", 3, &c);
    assert (c.groups_count == 2 && c.groups [1].kind == ROUTE_WIRE_GROUP_ANYCAST);
    s_test_config ("x = 1;", 0, &c);
    s_test_bus (&c, verbose);
    router_service_config_clear (&c);
    if (verbose)
        printf ("router_service: ok\n");
}
