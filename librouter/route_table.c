/*  route_table: candidates per destination in a sorted array (binary search,
    pointers so a destination's record never moves), neighbours in a small
    array. Every candidate a neighbour offers is kept, so losing a next hop
    costs one reselection, not a round of announcements. A path is stored as
    its middle only (the next hop and the destination are known), allocated
    just for routes of three hops or more: most routes are one or two hops. */
#include "route_table.h"
#include "route_flow.h"

#include <assert.h>
#include <malloc.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    uint64_t via;               //  the neighbour (the destination itself for a direct link)
    uint64_t *mid;              //  path between via and dest: hops - 2 ids (NULL when hops <= 2)
    int64_t updated;
    uint32_t announced;         //  the neighbour's metric to dest; 0 for a direct link
    uint8_t hops;               //  ours: the neighbour's + 1
    uint8_t flags;              //  ROUTE_WIRE_FLAG_* as announced
    bool direct;
} s_cand_t;

typedef struct {
    uint64_t id;
    s_cand_t *cands;
    uint16_t count, cap;
    bool changed;               //  since the last triggered update
    uint64_t sent_sig;          //  what the last update said: path, tier, hops (0: nothing)
    uint32_t sent_metric;
    int64_t retract_until;      //  no route: keep retracting it in dumps until then
} s_dest_t;

typedef struct {
    uint64_t id;
    uint64_t seqno;             //  the last announcement taken
    size_t routes;              //  candidates it holds here (not counting its direct link)
    int64_t updated;
    uint32_t rtt;
    route_link_t kind;
    bool fresh;                 //  new: the next triggered update gives it everything
} s_nbr_t;

struct _route_table_t {
    uint64_t self;
    route_config_t config;
    uint8_t flow_key [ROUTE_FLOW_KEY_SIZE];
    s_dest_t **dests;           //  sorted by id
    size_t ndests, dests_cap;
    s_nbr_t *nbrs;
    size_t nnbrs, nbrs_cap;
    uint64_t seqno;             //  of our last announcement
    size_t pending;             //  destinations changed since the last triggered update
    int64_t last_trigger;
    int64_t trigger_wait;
    unsigned streak;            //  updates in a row, each within twice the wait of the last
    route_stats_t stats;
    route_carry_fn *carries;    //  NULL: every destination
    void *carries_arg;
};

void
route_config_defaults (route_config_t *config)
{
    *config = (route_config_t) {
        .max_hops = 8, .route_timeout = 300000, .split_horizon = ROUTE_SPLIT_POISON,
        .relay_via_peers = true, .max_per_neighbour = 1024, .max_destinations = 4096,
        .trigger_interval = 200, .trigger_burst = 8, .trigger_max = 16000
    };
}

route_table_t *
route_table_new (uint64_t self_id, const route_config_t *config, const uint8_t *flow_key)
{
    assert (self_id);
    route_table_t *self = calloc (1, sizeof *self);
    assert (self);
    self->self = self_id;
    if (config)
        self->config = *config;
    else
        route_config_defaults (&self->config);
    assert (self->config.max_hops >= 1 && self->config.max_hops <= ROUTE_WIRE_MAX_PATH);
    assert (sodium_init () >= 0);
    if (flow_key)
        memcpy (self->flow_key, flow_key, ROUTE_FLOW_KEY_SIZE);
    else
        randombytes_buf (self->flow_key, ROUTE_FLOW_KEY_SIZE);
    //  Announcements count on from our clock in microseconds, so a restarted
    //  router's are newer than the ones it sent before (docs/routing.md)
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    self->seqno = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
    self->last_trigger = INT64_MIN / 2;
    self->trigger_wait = self->config.trigger_interval;
    return self;
}

static void
s_dest_free (s_dest_t *dest)
{
    for (size_t i = 0; i < dest->count; i++)
        free (dest->cands [i].mid);
    free (dest->cands);
    free (dest);
}

void
route_table_destroy (route_table_t **self_p)
{
    assert (self_p);
    route_table_t *self = *self_p;
    if (self) {
        for (size_t i = 0; i < self->ndests; i++)
            s_dest_free (self->dests [i]);
        free (self->dests);
        free (self->nbrs);
        free (self);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Lookups

//  Room for one more element in an array of count elements of size bytes:
//  doubles *cap (from first) when full, and returns the array
static void *
s_room (void *array, size_t count, size_t *cap, size_t first, size_t size)
{
    if (count == *cap) {
        *cap = *cap ? 2 * *cap : first;
        array = realloc (array, *cap * size);
        assert (array);
    }
    return array;
}

//  A new candidate at the end of dest's, zeroed
static s_cand_t *
s_cand_add (s_dest_t *dest)
{
    size_t cap = dest->cap;
    dest->cands = s_room (dest->cands, dest->count, &cap, 2, sizeof *dest->cands);
    dest->cap = (uint16_t) cap;
    s_cand_t *cand = &dest->cands [dest->count++];
    memset (cand, 0, sizeof *cand);
    return cand;
}

static size_t
s_dest_index (route_table_t *self, uint64_t id, bool *found)
{
    size_t lo = 0, hi = self->ndests;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (self->dests [mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < self->ndests && self->dests [lo]->id == id;
    return lo;
}

static s_dest_t *
s_dest (route_table_t *self, uint64_t id)
{
    bool found;
    size_t i = s_dest_index (self, id, &found);
    return found ? self->dests [i] : NULL;
}

//  The destination's record, created; NULL when the table is full
static s_dest_t *
s_dest_require (route_table_t *self, uint64_t id)
{
    bool found;
    size_t i = s_dest_index (self, id, &found);
    if (found)
        return self->dests [i];
    if (self->ndests >= self->config.max_destinations)
        return NULL;
    self->dests = s_room (self->dests, self->ndests, &self->dests_cap, 16, sizeof *self->dests);
    s_dest_t *dest = calloc (1, sizeof *dest);
    assert (dest);
    dest->id = id;
    memmove (self->dests + i + 1, self->dests + i, (self->ndests - i) * sizeof *self->dests);
    self->dests [i] = dest;
    self->ndests++;
    return dest;
}

static void
s_dest_remove (route_table_t *self, size_t i)
{
    s_dest_t *dest = self->dests [i];
    if (dest->changed)
        self->pending--;
    s_dest_free (dest);
    memmove (self->dests + i, self->dests + i + 1, (self->ndests - i - 1) * sizeof *self->dests);
    self->ndests--;
}

static s_nbr_t *
s_nbr (route_table_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->nnbrs; i++)
        if (self->nbrs [i].id == id)
            return &self->nbrs [i];
    return NULL;
}

static s_cand_t *
s_cand (s_dest_t *dest, uint64_t via, bool direct)
{
    for (size_t i = 0; i < dest->count; i++)
        if (dest->cands [i].via == via && dest->cands [i].direct == direct)
            return &dest->cands [i];
    return NULL;
}

//  --------------------------------------------------------------------------
//  Metric, tier, order

static uint32_t
s_link_cost (const s_nbr_t *nbr)
{
    uint32_t rtt = nbr->rtt < 1 ? 1 : nbr->rtt > ROUTE_WIRE_LINK_RTT_MAX ? ROUTE_WIRE_LINK_RTT_MAX : nbr->rtt;
    return rtt + ROUTE_WIRE_HOP_COST;
}

static uint32_t
s_metric (route_table_t *self, const s_cand_t *cand)
{
    s_nbr_t *nbr = s_nbr (self, cand->via);
    assert (nbr);       //  a candidate never outlives its neighbour
    uint64_t metric = (uint64_t) s_link_cost (nbr) + cand->announced;
    return metric > ROUTE_WIRE_MAX_METRIC ? ROUTE_WIRE_METRIC_RETRACTED : (uint32_t) metric;
}

static route_tier_t
s_tier (route_table_t *self, const s_cand_t *cand)
{
    s_nbr_t *nbr = s_nbr (self, cand->via);
    route_tier_t tier = cand->direct ? ROUTE_TIER_DIRECT : ROUTE_TIER_PEER;
    if (nbr->kind == ROUTE_LINK_TURN || (cand->flags & ROUTE_WIRE_FLAG_TURN))
        tier = ROUTE_TIER_TURN;
    else
    if (nbr->kind == ROUTE_LINK_RELAY || (cand->flags & ROUTE_WIRE_FLAG_RELAY))
        tier = ROUTE_TIER_RELAY;
    return tier;
}

//  A path through another neighbour X must be the one X itself offers us now.
//  If X has moved since (or now goes through us, and so retracted it to us),
//  the candidate describes a route that no longer exists: two neighbours that
//  each switch to the other on such stale paths in one round make a loop (the
//  churn test found one), and a liar could name our neighbours in a path they
//  never announced. Such a candidate waits until its announcer catches up.
static bool
s_consistent (route_table_t *self, s_dest_t *dest, const s_cand_t *cand)
{
    for (size_t h = 0; h + 2 < cand->hops; h++) {
        //  cand->mid [h] is hop h + 1 of the path: hops - h - 1 links from dest
        if (!s_nbr (self, cand->mid [h]))
            continue;
        const s_cand_t *theirs = s_cand (dest, cand->mid [h], false);
        if (!theirs || theirs->hops != cand->hops - h - 1)
            return false;
        for (size_t k = 0; k + 2 < theirs->hops; k++)
            if (theirs->mid [k] != cand->mid [h + 1 + k])
                return false;
    }
    return true;
}

static bool
s_usable (route_table_t *self, s_dest_t *dest, const s_cand_t *cand)
{
    return cand->hops <= self->config.max_hops && s_metric (self, cand) != ROUTE_WIRE_METRIC_RETRACTED
        && (cand->direct || (self->config.relay_via_peers && s_consistent (self, dest, cand)));
}

//  a before b: tier, metric, hops, next hop id (every node decides alike)
static int
s_compare (route_table_t *self, const s_cand_t *a, const s_cand_t *b)
{
    route_tier_t ta = s_tier (self, a), tb = s_tier (self, b);
    if (ta != tb)
        return ta < tb ? -1 : 1;
    uint32_t ma = s_metric (self, a), mb = s_metric (self, b);
    if (ma != mb)
        return ma < mb ? -1 : 1;
    if (a->hops != b->hops)
        return a->hops < b->hops ? -1 : 1;
    return a->via < b->via ? -1 : a->via > b->via;
}

static s_cand_t *
s_best (route_table_t *self, s_dest_t *dest)
{
    s_cand_t *best = NULL;
    for (size_t i = 0; i < dest->count; i++)
        if (s_usable (self, dest, &dest->cands [i]) && (!best || s_compare (self, &dest->cands [i], best) < 0))
            best = &dest->cands [i];
    return best;
}

//  The candidate's path, next hop first, destination last
static void
s_path (const s_dest_t *dest, const s_cand_t *cand, uint64_t *path)
{
    path [0] = cand->via;
    for (size_t h = 1; h + 1 < cand->hops; h++)
        path [h] = cand->mid [h - 1];
    path [cand->hops - 1] = dest->id;
}

static bool
s_path_has (const s_dest_t *dest, const s_cand_t *cand, uint64_t id)
{
    uint64_t path [ROUTE_WIRE_MAX_PATH];
    s_path (dest, cand, path);
    for (size_t h = 0; h < cand->hops; h++)
        if (path [h] == id)
            return true;
    return false;
}

//  A signature of what an update about this route says (path, tier): a
//  neighbour must hear when any of it changes, since it checks the path for
//  itself. The metric is compared apart, with a threshold.
static uint64_t
s_signature (route_table_t *self, const s_dest_t *dest, const s_cand_t *cand)
{
    uint64_t path [ROUTE_WIRE_MAX_PATH + 1];
    s_path (dest, cand, path);
    path [cand->hops] = s_tier (self, cand);
    uint8_t hash [crypto_generichash_BYTES_MIN];
    crypto_generichash (hash, sizeof hash, (const uint8_t *) path, (cand->hops + 1) * sizeof path [0], NULL, 0);
    uint64_t sig;
    memcpy (&sig, hash, sizeof sig);
    return sig | 1;     //  never 0 (= nothing said)
}

//  After any change to dest's candidates: mark it for the next triggered
//  update when what we would say about it changed enough. RTT jitter moves
//  metrics all the time; only a change of more than 1/8 triggers, the rest
//  waits for the periodic dump.
static void
s_reselect (route_table_t *self, s_dest_t *dest, int64_t now)
{
    s_cand_t *best = s_best (self, dest);
    uint64_t sig = best ? s_signature (self, dest, best) : 0;
    uint32_t metric = best ? s_metric (self, best) : 0;
    bool significant = sig != dest->sent_sig
        || (best && (uint64_t) (metric > dest->sent_metric ? metric - dest->sent_metric
                                                            : dest->sent_metric - metric) * 8 > dest->sent_metric);
    if (significant && !dest->changed) {
        dest->changed = true;
        self->pending++;
    }
    if (!best && dest->retract_until == 0)
        dest->retract_until = now + self->config.route_timeout;
    if (best)
        dest->retract_until = 0;
}

static void
s_cand_remove (route_table_t *self, s_dest_t *dest, s_cand_t *cand)
{
    if (!cand->direct) {
        s_nbr_t *nbr = s_nbr (self, cand->via);
        if (nbr)
            nbr->routes--;
    }
    free (cand->mid);
    *cand = dest->cands [--dest->count];
}

//  --------------------------------------------------------------------------
//  Input: links and announcements

void
route_table_link (route_table_t *self, uint64_t peer, uint32_t rtt_ms, route_link_t kind, int64_t now)
{
    if (peer == 0 || peer == self->self)
        return;
    s_nbr_t *nbr = s_nbr (self, peer);
    if (!nbr) {
        self->nbrs = s_room (self->nbrs, self->nnbrs, &self->nbrs_cap, 8, sizeof *self->nbrs);
        nbr = &self->nbrs [self->nnbrs++];
        *nbr = (s_nbr_t) { .id = peer, .fresh = true };
    }
    bool moved = nbr->rtt != rtt_ms || nbr->kind != kind;
    nbr->rtt = rtt_ms;
    nbr->kind = kind;
    nbr->updated = now;
    s_dest_t *dest = s_dest_require (self, peer);
    if (dest) {
        s_cand_t *cand = s_cand (dest, peer, true);
        if (!cand) {
            cand = s_cand_add (dest);
            *cand = (s_cand_t) { .via = peer, .hops = 1, .direct = true };
            moved = true;
        }
        cand->updated = now;
    }
    if (moved)          //  every route through it costs something else now
        for (size_t i = 0; i < self->ndests; i++)
            s_reselect (self, self->dests [i], now);
}

void
route_table_link_lost (route_table_t *self, uint64_t peer, int64_t now)
{
    s_nbr_t *nbr = s_nbr (self, peer);
    if (!nbr)
        return;
    for (size_t i = 0; i < self->ndests; i++) {
        s_dest_t *dest = self->dests [i];
        bool touched = false;
        for (size_t c = dest->count; c-- > 0; )
            if (dest->cands [c].via == peer) {
                s_cand_remove (self, dest, &dest->cands [c]);
                touched = true;
            }
        if (touched)
            s_reselect (self, dest, now);
    }
    *nbr = self->nbrs [--self->nnbrs];
}

static void
s_withdraw (route_table_t *self, s_dest_t *dest, uint64_t from, int64_t now)
{
    s_cand_t *cand = dest ? s_cand (dest, from, false) : NULL;
    if (cand) {
        s_cand_remove (self, dest, cand);
        s_reselect (self, dest, now);
    }
}

//  One entry of an announcement from nbr: taken (true) or not
static bool
s_take (route_table_t *self, s_nbr_t *nbr, const route_entry_t *e, int64_t now)
{
    s_dest_t *dest = s_dest (self, e->dest);
    for (size_t h = 0; h < e->hops; h++)
        if (e->path [h] == self->self) {
            //  A path through us is a loop or a forgery: it also replaces
            //  whatever this neighbour said before about the destination
            self->stats.through_us++;
            s_withdraw (self, dest, nbr->id, now);
            return false;
        }
    if (e->metric == ROUTE_WIRE_METRIC_RETRACTED) {
        s_withdraw (self, dest, nbr->id, now);
        return true;
    }
    if (e->hops + 1u > self->config.max_hops
    ||  (uint64_t) s_link_cost (nbr) + e->metric > ROUTE_WIRE_MAX_METRIC) {
        self->stats.too_long++;
        s_withdraw (self, dest, nbr->id, now);
        return false;
    }
    s_cand_t *cand = dest ? s_cand (dest, nbr->id, false) : NULL;
    if (!cand) {
        if (nbr->routes >= self->config.max_per_neighbour || !(dest = s_dest_require (self, e->dest))) {
            self->stats.capped++;
            return false;
        }
        cand = s_cand_add (dest);
        cand->via = nbr->id;
        nbr->routes++;
    }
    size_t hops = e->hops + 1u;
    if (hops != cand->hops) {
        free (cand->mid);
        cand->mid = NULL;
        if (hops > 2) {
            cand->mid = malloc ((hops - 2) * sizeof *cand->mid);
            assert (cand->mid);
        }
    }
    //  The announced path is the neighbour, then its path's rest: our middle
    for (size_t h = 1; h < e->hops; h++)
        cand->mid [h - 1] = e->path [h];
    cand->hops = (uint8_t) hops;
    cand->announced = e->metric;
    cand->flags = e->flags;
    cand->updated = now;
    s_reselect (self, dest, now);
    return true;
}

int
route_table_receive (route_table_t *self, uint64_t from, const route_msg_t *msg, int64_t now)
{
    s_nbr_t *nbr = s_nbr (self, from);
    if (!nbr || msg->origin != from) {
        self->stats.impostor++;
        return -1;
    }
    if (msg->seqno <= nbr->seqno) {
        self->stats.stale++;
        return -1;
    }
    nbr->seqno = msg->seqno;
    self->stats.announcements++;
    if (!self->config.relay_via_peers)
        return 0;
    int taken = 0;
    for (size_t i = 0; i < msg->count; i++)
        if (msg->routes [i].dest != self->self && s_take (self, nbr, &msg->routes [i], now))
            taken++;
    return taken;
}

size_t
route_table_expire (route_table_t *self, int64_t now)
{
    size_t removed = 0;
    for (size_t i = self->ndests; i-- > 0; ) {
        s_dest_t *dest = self->dests [i];
        bool touched = false;
        for (size_t c = dest->count; c-- > 0; )
            if (now - dest->cands [c].updated >= self->config.route_timeout) {
                s_cand_remove (self, dest, &dest->cands [c]);
                touched = true;
                removed++;
            }
        if (touched)
            s_reselect (self, dest, now);
        if (dest->count == 0 && !dest->changed && now >= dest->retract_until)
            s_dest_remove (self, i);
    }
    //  A neighbour nat stopped telling us about is gone
    for (size_t n = self->nnbrs; n-- > 0; )
        if (now - self->nbrs [n].updated >= self->config.route_timeout)
            route_table_link_lost (self, self->nbrs [n].id, now);
    self->stats.expired += removed;
    return removed;
}

//  --------------------------------------------------------------------------
//  Questions

static void
s_route (route_table_t *self, s_dest_t *dest, s_cand_t *cand, route_t *route)
{
    memset (route, 0, sizeof *route);
    route->dest = dest->id;
    route->next_hop = cand->via;
    route->metric = s_metric (self, cand);
    route->hops = cand->hops;
    route->tier = (uint8_t) s_tier (self, cand);
    route->updated = cand->updated;
    s_path (dest, cand, route->path);
}

bool
route_table_best (route_table_t *self, uint64_t dest_id, route_t *route)
{
    s_dest_t *dest = s_dest (self, dest_id);
    s_cand_t *best = dest ? s_best (self, dest) : NULL;
    if (best && route)
        s_route (self, dest, best, route);
    return best != NULL;
}

size_t
route_table_equal (route_table_t *self, uint64_t dest_id, uint64_t *next_hops, size_t max)
{
    s_dest_t *dest = s_dest (self, dest_id);
    s_cand_t *best = dest ? s_best (self, dest) : NULL;
    if (!best)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < dest->count; i++) {
        s_cand_t *cand = &dest->cands [i];
        if (s_usable (self, dest, cand) && s_tier (self, cand) == s_tier (self, best)
        &&  s_metric (self, cand) == s_metric (self, best)) {
            if (n < max)
                next_hops [n] = cand->via;
            n++;
        }
    }
    return n;
}

uint64_t
route_table_pick (route_table_t *self, uint64_t dest, uint64_t flow_hash)
{
    uint64_t hops [ROUTE_WIRE_MAX_ROUTES];
    size_t n = route_table_equal (self, dest, hops, ROUTE_WIRE_MAX_ROUTES);
    if (n > ROUTE_WIRE_MAX_ROUTES)
        n = ROUTE_WIRE_MAX_ROUTES;
    return n ? hops [route_flow_pick (flow_hash, hops, n)] : 0;
}

static int
s_id_cmp (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

size_t
route_table_children (route_table_t *self, uint64_t origin, uint64_t *children, size_t max)
{
    s_dest_t *dest = origin == self->self ? NULL : s_dest (self, origin);
    size_t n = 0;
    for (size_t i = 0; i < self->nnbrs; i++) {
        uint64_t id = self->nbrs [i].id;
        if (id == origin || (dest && s_cand (dest, id, false)))
            continue;
        if (n < max)
            children [n] = id;
        n++;
    }
    qsort (children, n < max ? n : max, sizeof *children, s_id_cmp);
    return n;
}

size_t
route_table_size (route_table_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->ndests; i++)
        n += s_best (self, self->dests [i]) != NULL;
    return n;
}

size_t
route_table_routes (route_table_t *self, route_t *routes, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < self->ndests && n < max; i++) {
        s_cand_t *best = s_best (self, self->dests [i]);
        if (best)
            s_route (self, self->dests [i], best, &routes [n++]);
    }
    return n;
}

//  --------------------------------------------------------------------------
//  Output: announcements

//  Entry for dest as neighbour `to` should hear it; false = leave it out
static bool
s_entry_for (route_table_t *self, s_dest_t *dest, uint64_t to, bool full, route_entry_t *e)
{
    s_nbr_t *nbr = s_nbr (self, to);
    full |= nbr && nbr->fresh;
    if (dest->id == to || (!full && !dest->changed))
        return false;
    s_cand_t *best = s_best (self, dest);
    if (!best && full && dest->retract_until == 0)
        return false;
    bool retract = !best;
    if (best && s_path_has (dest, best, to)) {
        //  Split horizon: `to` cannot use a route through itself (it would
        //  refuse it anyway); retracting tells it to drop the one it had from us
        if (self->config.split_horizon == ROUTE_SPLIT_OMIT && full)
            return false;
        retract = self->config.split_horizon != ROUTE_SPLIT_OFF;
    }
    memset (e, 0, sizeof *e);
    e->dest = dest->id;
    e->path [0] = self->self;
    if (retract) {
        e->hops = 1;
        e->metric = ROUTE_WIRE_METRIC_RETRACTED;
        return true;
    }
    uint64_t path [ROUTE_WIRE_MAX_PATH];
    s_path (dest, best, path);
    e->hops = best->hops;
    for (size_t h = 1; h < best->hops; h++)
        e->path [h] = path [h - 1];
    e->metric = s_metric (self, best);
    route_tier_t tier = s_tier (self, best);
    e->flags = tier == ROUTE_TIER_TURN ? ROUTE_WIRE_FLAG_TURN : tier == ROUTE_TIER_RELAY ? ROUTE_WIRE_FLAG_RELAY : 0;
    return true;
}

void
route_table_carry (route_table_t *self, route_carry_fn *carries, void *arg)
{
    self->carries = carries;
    self->carries_arg = arg;
}

void
route_table_touch (route_table_t *self, uint64_t dest_id)
{
    s_dest_t *dest = s_dest (self, dest_id);
    if (dest && !dest->changed) {
        dest->changed = true;
        self->pending++;
    }
}

size_t
route_table_announce (route_table_t *self, uint64_t to, bool full, route_msg_t *msg, size_t *cursor)
{
    msg->origin = self->self;
    msg->count = 0;
    if (!self->config.relay_via_peers)
        return 0;                       //  we carry nothing for others
    size_t size = ROUTE_WIRE_ANNOUNCE_SIZE;
    for (; *cursor < self->ndests && msg->count < ROUTE_WIRE_MAX_ROUTES; (*cursor)++) {
        route_entry_t *e = &msg->routes [msg->count];
        s_dest_t *dest = self->dests [*cursor];
        if ((self->carries && !self->carries (self->carries_arg, dest->id)) || !s_entry_for (self, dest, to, full, e))
            continue;
        if (size + route_msg_entry_size (e) > ROUTE_WIRE_MAX_SIZE)
            break;                      //  the next announcement starts with it
        size += route_msg_entry_size (e);
        msg->count++;
    }
    if (msg->count)
        msg->seqno = ++self->seqno;
    assert (route_msg_check (msg) == ROUTE_MSG_OK);
    return msg->count;
}

bool
route_table_updates_due (route_table_t *self, int64_t now)
{
    bool fresh = false;
    for (size_t i = 0; i < self->nnbrs; i++)
        fresh |= self->nbrs [i].fresh;
    return (self->pending > 0 || fresh) && now - self->last_trigger >= self->trigger_wait;
}

void
route_table_updates_sent (route_table_t *self, int64_t now)
{
    //  Damping: updates that follow each other (less than twice the wait
    //  apart) make a streak. The first trigger_burst go at the base interval,
    //  enough for one event to converge; after that each doubles the wait,
    //  up to trigger_max, so a flapping link costs the mesh one update per
    //  trigger_max. A calm spell ends the streak.
    if (now - self->last_trigger < 2 * self->trigger_wait)
        self->streak++;
    else
        self->streak = 0;
    self->trigger_wait = self->config.trigger_interval;
    for (unsigned i = self->config.trigger_burst; i <= self->streak && self->trigger_wait < self->config.trigger_max; i++)
        self->trigger_wait *= 2;
    if (self->trigger_wait > self->config.trigger_max)
        self->trigger_wait = self->config.trigger_max;
    self->last_trigger = now;
    for (size_t i = 0; i < self->nnbrs; i++)
        self->nbrs [i].fresh = false;
    for (size_t i = 0; i < self->ndests; i++) {
        s_dest_t *dest = self->dests [i];
        if (!dest->changed)
            continue;
        s_cand_t *best = s_best (self, dest);
        dest->sent_sig = best ? s_signature (self, dest, best) : 0;
        dest->sent_metric = best ? s_metric (self, best) : 0;
        dest->changed = false;
    }
    self->pending = 0;
}

const route_config_t *
route_table_config (route_table_t *self)
{
    return &self->config;
}

const route_stats_t *
route_table_stats (route_table_t *self)
{
    return &self->stats;
}

size_t
route_table_memory (route_table_t *self)
{
    size_t bytes = sizeof *self + self->dests_cap * sizeof *self->dests + self->nbrs_cap * sizeof *self->nbrs;
    for (size_t i = 0; i < self->ndests; i++) {
        s_dest_t *dest = self->dests [i];
        bytes += sizeof *dest + dest->cap * sizeof *dest->cands;
        for (size_t c = 0; c < dest->count; c++)
            if (dest->cands [c].mid)
                bytes += (dest->cands [c].hops - 2u) * sizeof *dest->cands [c].mid;
    }
    return bytes;
}

const char *
route_tier_name (route_tier_t tier)
{
    static const char *names [] = { "direct", "peer", "relay", "turn" };
    return tier <= ROUTE_TIER_TURN ? names [tier] : "unknown";
}

//  --------------------------------------------------------------------------
//  Self test: one table fed by hand, each rule shown to bite. Whole meshes
//  of tables talking to each other are route_sim's test.

#define A 0xa0a0a0a0a0a0a0a0ULL
#define B 0xb0b0b0b0b0b0b0b0ULL
#define C 0xc0c0c0c0c0c0c0c0ULL
#define D 0xd0d0d0d0d0d0d0d0ULL
#define E 0xe0e0e0e0e0e0e0e0ULL

//  msg from `from`: one route to dest over path (from first), metric
static void
s_one (route_msg_t *msg, uint64_t from, uint64_t seqno, uint64_t dest, uint32_t metric,
       const uint64_t *rest, size_t nrest)
{
    memset (msg, 0, sizeof *msg);
    msg->origin = from;
    msg->seqno = seqno;
    msg->count = 1;
    route_entry_t *e = &msg->routes [0];
    e->dest = dest;
    e->metric = metric;
    e->hops = (uint8_t) (1 + nrest);
    e->path [0] = from;
    for (size_t i = 0; i < nrest; i++)
        e->path [1 + i] = rest [i];
    assert (route_msg_check (msg) == ROUTE_MSG_OK);
}

//  The entry for dest in everything `t` would announce to `to`; NULL if absent
static const route_entry_t *
s_find_announced (route_table_t *t, uint64_t to, bool full, uint64_t dest, route_msg_t *msg)
{
    size_t cursor = 0;
    while (route_table_announce (t, to, full, msg, &cursor))
        for (size_t i = 0; i < msg->count; i++)
            if (msg->routes [i].dest == dest)
                return &msg->routes [i];
    return NULL;
}

//  A liar's made-up destinations (docs/routing.md, "Bogus routes from a
//  peer"; found by tests/integration/mesh_liar.sh): C takes up to
//  max_per_neighbour of them from the liar M, and must not pass them on, or D,
//  which hears everything through C, fills its cap for C with them (their ids
//  sort first) and never learns B
static uint64_t s_carried [4];
static bool
s_carries (void *arg, uint64_t dest)
{
    for (size_t i = 0; i < sizeof s_carried / sizeof s_carried [0]; i++)
        if (s_carried [i] == dest)
            return true;
    return false;
}

static void
s_test_made_up (void)
{
    const uint64_t M = 0x3030303030303030ULL;
    route_config_t config;
    route_config_defaults (&config);
    config.max_per_neighbour = 4;
    static route_msg_t msg;
    int64_t now = 1000;
    route_table_t *c = route_table_new (C, &config, NULL);
    route_table_t *d = route_table_new (D, &config, NULL);
    route_table_link (c, B, 1, ROUTE_LINK_DIRECT, now);
    route_table_link (c, M, 1, ROUTE_LINK_DIRECT, now);
    route_table_link (c, D, 1, ROUTE_LINK_DIRECT, now);
    route_table_link (d, C, 1, ROUTE_LINK_DIRECT, now);
    //  The ids discovery names at C: B, D, M (and C)
    s_carried [0] = B; s_carried [1] = D; s_carried [2] = M; s_carried [3] = C;
    route_table_carry (c, s_carries, NULL);
    memset (&msg, 0, sizeof msg);
    msg.origin = M;
    msg.seqno = 1;
    for (uint64_t i = 0; i < 10; i++)
        msg.routes [msg.count++] = (route_entry_t) { .dest = 1 + i, .metric = ROUTE_WIRE_MIN_HOP_METRIC,
                                                     .hops = 1, .path = { M } };
    assert (route_table_receive (c, M, &msg, now) == 4 && route_table_stats (c)->capped == 6);
    //  C's announcements to D: B and M, none of the made-up ones
    size_t cursor = 0, sent = 0;
    while (route_table_announce (c, D, true, &msg, &cursor)) {
        for (size_t i = 0; i < msg.count; i++)
            assert (msg.routes [i].dest == B || msg.routes [i].dest == M);
        sent += msg.count;
        assert (route_table_receive (d, C, &msg, now) == (int) msg.count);
    }
    route_t r;
    assert (sent == 2 && route_table_best (d, B, &r) && r.next_hop == C && route_table_best (d, M, &r));
    assert (route_table_size (d) == 3 && route_table_stats (d)->capped == 0);
    //  C uses them itself (a route through M to destination 1) but does not
    //  carry for them; once discovery names one, the next triggered update has it
    assert (route_table_best (c, 1, &r) && r.next_hop == M);
    route_table_updates_sent (c, now);
    assert (!route_table_updates_due (c, now + 1000));
    s_carried [3] = 1;
    route_table_touch (c, 1);
    assert (route_table_updates_due (c, now + 1000));
    assert (s_find_announced (c, D, false, 1, &msg));
    route_table_destroy (&c);
    route_table_destroy (&d);
}

void
route_table_test (bool verbose)
{
    static route_msg_t msg;
    route_t r;
    uint64_t hops [8];
    uint8_t key [ROUTE_FLOW_KEY_SIZE] = { 7 };
    int64_t now = 1000;

    //  Line A - B - C, seen from A: C through B, metric = (10 + 100) + (20 + 100)
    route_table_t *t = route_table_new (A, NULL, key);
    assert (!route_table_best (t, C, &r) && route_table_pick (t, C, 1) == 0);
    route_table_link (t, B, 10, ROUTE_LINK_DIRECT, now);
    assert (route_table_best (t, B, &r) && r.next_hop == B && r.metric == 110 && r.hops == 1
            && r.tier == ROUTE_TIER_DIRECT && r.path [0] == B);
    s_one (&msg, B, 1, C, 120, NULL, 0);
    assert (route_table_receive (t, B, &msg, now) == 1);
    assert (route_table_best (t, C, &r) && r.next_hop == B && r.metric == 230 && r.hops == 2
            && r.tier == ROUTE_TIER_PEER && r.path [0] == B && r.path [1] == C);
    assert (route_table_size (t) == 2);

    //  Freshness and identity: the same seqno again, an origin that is not
    //  the sender, a sender that is no neighbour: refused whole
    assert (route_table_receive (t, B, &msg, now) == -1 && route_table_stats (t)->stale == 1);
    s_one (&msg, D, 2, C, 120, NULL, 0);
    assert (route_table_receive (t, B, &msg, now) == -1);
    assert (route_table_receive (t, D, &msg, now) == -1 && route_table_stats (t)->impostor == 2);

    //  A direct link beats a route through a peer even when slower (a peer
    //  cannot pull away traffic we deliver ourselves); a relay server loses
    //  to a peer route, TURN to a relay
    route_table_link (t, C, 300, ROUTE_LINK_DIRECT, now);
    assert (route_table_best (t, C, &r) && r.next_hop == C && r.tier == ROUTE_TIER_DIRECT && r.metric == 400);
    route_table_link (t, C, 300, ROUTE_LINK_RELAY, now);
    assert (route_table_best (t, C, &r) && r.next_hop == B && r.tier == ROUTE_TIER_PEER);
    route_table_link_lost (t, B, now);
    assert (route_table_best (t, C, &r) && r.next_hop == C && r.tier == ROUTE_TIER_RELAY);
    assert (!route_table_best (t, B, NULL));
    route_table_link (t, D, 5, ROUTE_LINK_TURN, now);
    s_one (&msg, D, 3, C, 150, NULL, 0);
    assert (route_table_receive (t, D, &msg, now) == 1);
    assert (route_table_best (t, C, &r) && r.next_hop == C);          //  relay before TURN
    route_table_link_lost (t, C, now);
    assert (route_table_best (t, C, &r) && r.next_hop == D && r.tier == ROUTE_TIER_TURN);
    route_table_destroy (&t);
    assert (t == NULL);

    //  Equal cost: B and D both 10 ms from A and 120 from E; flows spread
    //  over both, each flow always on one; losing B moves its flows to D at once
    t = route_table_new (A, NULL, key);
    route_table_link (t, B, 10, ROUTE_LINK_DIRECT, now);
    route_table_link (t, D, 10, ROUTE_LINK_DIRECT, now);
    s_one (&msg, B, 1, E, 120, NULL, 0);
    assert (route_table_receive (t, B, &msg, now) == 1);
    s_one (&msg, D, 1, E, 120, NULL, 0);
    assert (route_table_receive (t, D, &msg, now) == 1);
    assert (route_table_equal (t, E, hops, 8) == 2);
    size_t via_b = 0;
    for (uint64_t f = 1; f <= 1000; f++) {
        uint64_t h = route_table_pick (t, E, f * 0x9e3779b97f4a7c15ULL);
        assert (h == B || h == D);
        assert (h == route_table_pick (t, E, f * 0x9e3779b97f4a7c15ULL));
        via_b += h == B;
    }
    assert (via_b > 400 && via_b < 600);
    route_table_link (t, B, 12, ROUTE_LINK_DIRECT, now);               //  no longer equal
    assert (route_table_equal (t, E, hops, 8) == 1 && hops [0] == D);
    route_table_link_lost (t, D, now);
    assert (route_table_best (t, E, &r) && r.next_hop == B && r.metric == 112 + 120);

    //  Retraction, and a path through us (forged or a loop): both withdraw
    //  what B said before about E
    s_one (&msg, B, 2, E, ROUTE_WIRE_METRIC_RETRACTED, NULL, 0);
    assert (route_table_receive (t, B, &msg, now) == 1 && !route_table_best (t, E, NULL));
    s_one (&msg, B, 3, E, 120, NULL, 0);
    assert (route_table_receive (t, B, &msg, now) == 1 && route_table_best (t, E, NULL));
    uint64_t via_us [] = { A, C };
    s_one (&msg, B, 4, E, 400, via_us, 2);
    assert (route_table_receive (t, B, &msg, now) == 0 && !route_table_best (t, E, NULL));
    assert (route_table_stats (t)->through_us == 1);

    //  max_hops: B may announce 7 hops (8 for us), not 8
    uint64_t far [7] = { 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17 };
    s_one (&msg, B, 5, E, 7 * 101, far, 6);
    assert (route_table_receive (t, B, &msg, now) == 1);
    assert (route_table_best (t, E, &r) && r.hops == 8 && r.path [7] == E && r.path [6] == 0x16);
    s_one (&msg, B, 6, E, 8 * 101, far, 7);
    assert (route_table_receive (t, B, &msg, now) == 0 && !route_table_best (t, E, NULL));
    assert (route_table_stats (t)->too_long == 1);

    //  A path through another neighbour (D) counts only while D itself
    //  offers that rest of the path: B says E is behind D, D agrees, then D
    //  moves, then D retracts; a route naming D that D never offered is unused
    route_table_link (t, D, 30, ROUTE_LINK_DIRECT, now);
    uint64_t via_d [] = { D };
    s_one (&msg, B, 8, E, 400, via_d, 1);
    assert (route_table_receive (t, B, &msg, now) == 1);
    assert (!route_table_best (t, E, NULL));             //  D has said nothing about E
    s_one (&msg, D, 10, E, 150, NULL, 0);
    assert (route_table_receive (t, D, &msg, now) == 1);
    assert (route_table_best (t, E, &r) && r.next_hop == D && route_table_equal (t, E, hops, 8) == 1);
    route_table_link (t, D, 30, ROUTE_LINK_RELAY, now);  //  D's link is worse now: B's path through D wins
    assert (route_table_best (t, E, &r) && r.next_hop == B && r.hops == 3 && r.path [1] == D);
    uint64_t moved [] = { 0x42 };
    s_one (&msg, D, 11, E, 300, moved, 1);               //  D moves: B's path through D is stale
    assert (route_table_receive (t, D, &msg, now) == 1);
    assert (route_table_best (t, E, &r) && r.next_hop == D && r.hops == 3 && r.path [1] == 0x42);
    s_one (&msg, D, 12, E, ROUTE_WIRE_METRIC_RETRACTED, NULL, 0);
    assert (route_table_receive (t, D, &msg, now) == 1);
    assert (!route_table_best (t, E, NULL));             //  nor B's, which still names D
    route_table_link_lost (t, D, now);                   //  D gone: B's path may still be true
    assert (route_table_best (t, E, &r) && r.next_hop == B && r.path [1] == D);

    //  route_timeout: B's route ages out unless B says it again; B's link
    //  too when nat stops reporting it
    s_one (&msg, B, 9, E, 120, NULL, 0);
    assert (route_table_receive (t, B, &msg, now) == 1);
    route_table_link (t, B, 12, ROUTE_LINK_DIRECT, now + 200000);
    assert (route_table_expire (t, now + 299999) == 0 && route_table_best (t, E, NULL));
    assert (route_table_expire (t, now + 300000) == 1 && !route_table_best (t, E, NULL));
    assert (route_table_best (t, B, NULL));
    route_table_expire (t, now + 500000);
    assert (!route_table_best (t, B, NULL) && route_table_size (t) == 0);
    route_table_destroy (&t);

    //  Split horizon: A reaches C through B; what does B hear about C?
    for (int mode = ROUTE_SPLIT_OFF; mode <= ROUTE_SPLIT_POISON; mode++) {
        route_config_t config;
        route_config_defaults (&config);
        config.split_horizon = mode;
        t = route_table_new (A, &config, key);
        route_table_link (t, B, 10, ROUTE_LINK_DIRECT, now);
        route_table_link (t, D, 10, ROUTE_LINK_DIRECT, now);
        route_table_updates_sent (t, now);      //  B and D had everything
        s_one (&msg, B, 1, C, 120, NULL, 0);
        assert (route_table_receive (t, B, &msg, now) == 1);
        const route_entry_t *e = s_find_announced (t, B, true, C, &msg);
        if (mode == ROUTE_SPLIT_OFF)
            assert (e && e->metric == 230 && e->hops == 2 && e->path [0] == A && e->path [1] == B);
        else
        if (mode == ROUTE_SPLIT_OMIT)
            assert (!e);
        else
            assert (e && e->metric == ROUTE_WIRE_METRIC_RETRACTED);
        //  In a triggered update every mode tells B (OFF by the path, which
        //  B refuses); D hears the route itself
        e = s_find_announced (t, B, false, C, &msg);
        assert (e && (mode == ROUTE_SPLIT_OFF ? e->path [1] == B : e->metric == ROUTE_WIRE_METRIC_RETRACTED));
        e = s_find_announced (t, D, true, C, &msg);
        assert (e && e->metric == 230 && e->path [0] == A && e->path [1] == B && msg.origin == A);
        //  B never hears about itself
        assert (!s_find_announced (t, B, true, B, &msg));
        route_table_destroy (&t);
    }

    //  Triggered updates: due at once after a change, then damped
    route_config_t config;
    route_config_defaults (&config);
    const int64_t base = config.trigger_interval;
    t = route_table_new (A, NULL, key);
    assert (!route_table_updates_due (t, now));
    route_table_link (t, B, 10, ROUTE_LINK_DIRECT, now);
    assert (route_table_updates_due (t, now));
    route_table_updates_sent (t, now);
    assert (!route_table_updates_due (t, now + 5000));
    //  RTT jitter (under 1/8) triggers nothing; a real change does
    route_table_link (t, B, 12, ROUTE_LINK_DIRECT, now + 10);
    assert (!route_table_updates_due (t, now + 5000));
    route_table_link (t, B, 60, ROUTE_LINK_DIRECT, now + 20);
    assert (!route_table_updates_due (t, now + base - 1) && route_table_updates_due (t, now + base));
    //  A flapping link: a burst of updates at the base interval (what one
    //  event needs to converge), then each one right after the last doubles
    //  the wait, up to trigger_max
    int64_t at = now + base, waits [16];
    for (int i = 0; i < 16; i++) {
        route_table_updates_sent (t, at);
        route_table_link (t, B, i % 2 ? 60 : 200, ROUTE_LINK_DIRECT, at);
        int64_t w = 0;
        while (!route_table_updates_due (t, at + w))
            w += 50;
        waits [i] = w;
        at += w;
    }
    for (int i = 0; i < 16; i++) {
        int64_t want = (int64_t) (i + 1 < (int) config.trigger_burst ? base : base << (i + 2 - config.trigger_burst));
        want = want > config.trigger_max ? config.trigger_max : want;
        if (verbose || waits [i] != want)
            printf ("  update %d after a flap: %ld ms (want %ld)\n", i, (long) waits [i], (long) want);
        assert (waits [i] == want);
    }
    assert (waits [15] == config.trigger_max);
    //  Calm again (no update for twice the wait): back to the base interval
    route_table_updates_sent (t, at);
    at += 2 * config.trigger_max;
    route_table_link (t, B, 10, ROUTE_LINK_DIRECT, at);
    route_table_updates_sent (t, at);
    route_table_link (t, B, 300, ROUTE_LINK_DIRECT, at + 10);
    assert (!route_table_updates_due (t, at + base - 1) && route_table_updates_due (t, at + base));
    route_table_destroy (&t);

    //  relay_via_peers = false: uses and offers no peer route
    route_config_defaults (&config);
    config.relay_via_peers = false;
    t = route_table_new (A, &config, key);
    route_table_link (t, B, 10, ROUTE_LINK_DIRECT, now);
    s_one (&msg, B, 1, C, 120, NULL, 0);
    assert (route_table_receive (t, B, &msg, now) == 0 && !route_table_best (t, C, NULL));
    size_t cursor = 0;
    assert (route_table_announce (t, D, true, &msg, &cursor) == 0);
    route_table_destroy (&t);

    //  Memory at 1,000 destinations: 4 neighbours each offer all of them
    //  (paths of 1 to 4 hops), announced as on the wire. route_table_memory
    //  counts what the table asked for; the heap's growth adds the allocator
    //  (glibc: 16 bytes a block, rounded to 16)
#ifdef __GLIBC__
    size_t heap = mallinfo2 ().uordblks;
#endif
    t = route_table_new (A, NULL, key);
    uint64_t nbrs [4] = { B, C, D, E };
    for (size_t n = 0; n < 4; n++)
        route_table_link (t, nbrs [n], 10 + (uint32_t) n, ROUTE_LINK_DIRECT, now);
    for (size_t n = 0; n < 4; n++)
        for (size_t i = 0, seqno = 1; i < 1000; seqno++) {
            memset (&msg, 0, sizeof msg);
            msg.origin = nbrs [n];
            msg.seqno = seqno;
            for (; i < 1000 && msg.count < ROUTE_WIRE_MAX_ROUTES; i++) {
                route_entry_t *e = &msg.routes [msg.count];
                e->dest = 0x1000 + i;
                e->hops = (uint8_t) (1 + (i + n) % 4);
                e->metric = 150 * e->hops;
                e->path [0] = nbrs [n];
                for (size_t h = 1; h < e->hops; h++)
                    e->path [h] = 0x100000 + 16 * i + h;
                if (route_msg_size (&msg) + route_msg_entry_size (e) > ROUTE_WIRE_MAX_SIZE)
                    break;
                msg.count++;
            }
            uint8_t wire [ROUTE_WIRE_MAX_SIZE];
            size_t size = route_msg_encode (&msg, wire, sizeof wire);
            static route_msg_t back;
            assert (size && route_msg_decode (wire, size, &back) == ROUTE_MSG_OK);
            assert (route_table_receive (t, nbrs [n], &back, now) == back.count);
        }
    assert (route_table_size (t) == 1004);
    size_t bytes = route_table_memory (t);
    printf ("# route_table: %zu destinations, 4 candidates each: %zu bytes (%zu per destination)",
            route_table_size (t), bytes, bytes / route_table_size (t));
#ifdef __GLIBC__
    heap = mallinfo2 ().uordblks - heap;
    if (heap)           //  0 under ASan, which has its own heap
        printf (", heap %zu bytes (%zu per destination)", heap, heap / route_table_size (t));
#endif
    printf ("\n");
    assert (bytes < 300 * 1024);
    route_table_destroy (&t);
    s_test_made_up ();
    if (verbose)
        printf ("  route_table: ok\n");
}
