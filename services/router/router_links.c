/*  router_links: the router's neighbours into its route table (router_links.h).
    One record per peer index heard of, in an array (a node has tens of peers,
    hundreds at most: a search by index is linear). By id there is a sorted
    index as well: route.next's comparison looks every destination and next
    hop up by id after every event, which a linear search made quadratic
    (40 ms a pass at 4,000 peers, 2 ms at 1,000). */
#include "router_links.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define streq(a, b) (strcmp ((a), (b)) == 0)

typedef struct {
    router_peer_t pub;
    char endpoint [73];         //  nat's endpoint when it was last up
    int64_t event_at;           //  when the last event about it arrived (nat's, or peer.down)
    bool listed;                //  in the nat.status reply being read
} s_peer_t;

typedef struct {
    uint64_t id;
    uint32_t pos;               //  in peers
} s_by_id_t;

struct _router_links_t {
    route_table_t *table;
    s_by_id_t *by_id;           //  one per peer, sorted by id (ids may repeat)
    size_t by_id_count;
    route_config_t config;      //  to make the table again when our id is known
    uint64_t self_id;           //  ROUTER_LINKS_SELF until router_links_set_self
    s_peer_t *peers;
    size_t count, cap;
};

//  The destinations this node carries for: the peers with a registry id
//  (nat forwards by a peer index, so a destination discovery does not name
//  cannot be carried; route_table_carry). A liar's made-up ones stop here.
static bool
s_carries (void *arg, uint64_t dest)
{
    const router_peer_t *p = router_links_find_id ((router_links_t *) arg, dest);
    return p && p->registry_id;
}

router_links_t *
router_links_new (const route_config_t *config)
{
    router_links_t *self = (router_links_t *) calloc (1, sizeof *self);
    assert (self);
    if (config)
        self->config = *config;
    else
        route_config_defaults (&self->config);
    self->self_id = ROUTER_LINKS_SELF;
    self->table = route_table_new (ROUTER_LINKS_SELF, &self->config, NULL);
    route_table_carry (self->table, s_carries, self);
    return self;
}

void
router_links_destroy (router_links_t **self_p)
{
    assert (self_p);
    router_links_t *self = *self_p;
    if (!self)
        return;
    route_table_destroy (&self->table);
    free (self->peers);
    free (self->by_id);
    free (self);
    *self_p = NULL;
}

route_table_t *router_links_table (router_links_t *self) { return self->table; }

//  ---------------------------------------------------------------------------

//  The first entry of by_id not below id
static size_t
s_lower (router_links_t *self, uint64_t id)
{
    size_t lo = 0, hi = self->by_id_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->by_id [mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void
s_by_id_add (router_links_t *self, uint64_t id, uint32_t pos)
{
    size_t at = s_lower (self, id);
    //  (by_id grows with peers: room for every record)
    memmove (self->by_id + at + 1, self->by_id + at, (self->by_id_count - at) * sizeof *self->by_id);
    self->by_id [at] = (s_by_id_t) { .id = id, .pos = pos };
    self->by_id_count++;
}

static void
s_by_id_remove (router_links_t *self, uint64_t id, uint32_t pos)
{
    for (size_t at = s_lower (self, id); at < self->by_id_count && self->by_id [at].id == id; at++)
        if (self->by_id [at].pos == pos) {
            memmove (self->by_id + at, self->by_id + at + 1, (self->by_id_count - at - 1) * sizeof *self->by_id);
            self->by_id_count--;
            return;
        }
    assert (false);             //  every record is in by_id
}

static s_peer_t *
s_find (router_links_t *self, uint32_t index)
{
    for (size_t i = 0; i < self->count; i++)
        if (self->peers [i].pub.index == index)
            return &self->peers [i];
    return NULL;
}

//  The record of index, made with a local id when new; its name updated
static s_peer_t *
s_get (router_links_t *self, uint32_t index, const char *name)
{
    s_peer_t *p = s_find (self, index);
    if (!p) {
        if (self->count == self->cap) {
            self->cap = self->cap ? self->cap * 2 : 16;
            self->peers = (s_peer_t *) realloc (self->peers, self->cap * sizeof *self->peers);
            self->by_id = (s_by_id_t *) realloc (self->by_id, self->cap * sizeof *self->by_id);
            assert (self->peers && self->by_id);
        }
        p = &self->peers [self->count];
        memset (p, 0, sizeof *p);
        p->pub.index = index;
        p->pub.id = ROUTER_LINKS_LOCAL | index;
        s_by_id_add (self, p->pub.id, (uint32_t) self->count++);
    }
    if (name && *name)
        snprintf (p->pub.name, sizeof p->pub.name, "%s", name);
    return p;
}

static void
s_link (router_links_t *self, s_peer_t *p, int64_t now)
{
    route_table_link (self->table, p->pub.id, p->pub.rtt_ms ? p->pub.rtt_ms : ROUTER_LINKS_RTT_UNKNOWN,
                      p->pub.kind, now);
}

static void
s_unlink (router_links_t *self, s_peer_t *p, int64_t now)
{
    if (p->pub.up)
        route_table_link_lost (self->table, p->pub.id, now);
    p->pub.up = false;
}

//  A registry id in 16 hex digits (relay_id, or the tail of `relay/<id>`);
//  anything else leaves the id as it is. A known link moves to the new id.
static void
s_set_id (router_links_t *self, s_peer_t *p, const char *hex, int64_t now)
{
    if (!hex || strlen (hex) != 16 || strspn (hex, "0123456789abcdefABCDEF") != 16)
        return;
    uint64_t id = strtoull (hex, NULL, 16);
    if (id == 0 || id == ROUTER_LINKS_SELF || id == p->pub.id)
        return;
    bool up = p->pub.up;
    s_unlink (self, p, now);
    uint32_t pos = (uint32_t) (p - self->peers);
    s_by_id_remove (self, p->pub.id, pos);
    s_by_id_add (self, id, pos);
    p->pub.id = id;
    p->pub.registry_id = true;
    p->pub.up = up;
    if (up)
        s_link (self, p, now);
    route_table_touch (self->table, id);        //  a route to it we held is ours to announce now
}

//  nat's view of p: up (on endpoint, by path) or not. rtt_us -1 = no sample,
//  -2 = this report carries no RTT (a nat.peer event)
static void
s_update (router_links_t *self, s_peer_t *p, const char *state, const char *endpoint, const char *path,
          int64_t rtt_us, int64_t now)
{
    if (strncmp (endpoint, "relay/", 6) == 0)
        s_set_id (self, p, endpoint + 6, now);
    if (!streq (state, "up")) {
        s_unlink (self, p, now);
        return;
    }
    bool moved = !p->pub.up || !streq (endpoint, p->endpoint);
    if (*path || moved)
        p->pub.kind = router_links_kind (endpoint, path);
    //  (an ICE endpoint keeps the kind nat.status's path told until it moves)
    if (moved)
        p->pub.rtt_ms = 0;      //  another path: its RTT is still to measure
    if (rtt_us >= 0) {
        int64_t ms = (rtt_us + 999) / 1000;
        p->pub.rtt_ms = (uint32_t) (ms < 1 ? 1 : ms > ROUTE_WIRE_LINK_RTT_MAX ? ROUTE_WIRE_LINK_RTT_MAX : ms);
    }
    else
    if (rtt_us == -1)
        p->pub.rtt_ms = 0;
    snprintf (p->endpoint, sizeof p->endpoint, "%s", endpoint);
    p->pub.up = true;
    s_link (self, p, now);
}

//  ---------------------------------------------------------------------------

void
router_links_peer_up (router_links_t *self, uint32_t index, const char *name, const char *relay_id,
                      const char *peer_id, int64_t now)
{
    s_peer_t *p = s_get (self, index, name);
    s_set_id (self, p, peer_id && *peer_id ? peer_id : relay_id, now);
}

//  The table is made again with our id (route_table's own id is fixed when it
//  is made): it holds only links until then, since nothing is announced or
//  taken without our id, so the links are all there is to carry over
bool
router_links_set_self (router_links_t *self, const char *hex, int64_t now)
{
    if (!hex || strlen (hex) != 16 || strspn (hex, "0123456789abcdefABCDEF") != 16)
        return false;
    uint64_t id = strtoull (hex, NULL, 16);
    if (id == 0 || id == ROUTER_LINKS_SELF || id == self->self_id)
        return false;
    self->self_id = id;
    route_table_destroy (&self->table);
    self->table = route_table_new (id, &self->config, NULL);
    route_table_carry (self->table, s_carries, self);
    for (size_t i = 0; i < self->count; i++)
        if (self->peers [i].pub.up)
            s_link (self, &self->peers [i], now);
    return true;
}

uint64_t
router_links_self (router_links_t *self)
{
    return self->self_id == ROUTER_LINKS_SELF ? 0 : self->self_id;
}

size_t
router_links_count (router_links_t *self)
{
    return self->count;
}

const router_peer_t *
router_links_at (router_links_t *self, size_t i)
{
    return i < self->count ? &self->peers [i].pub : NULL;
}

void
router_links_peer_down (router_links_t *self, uint32_t index, int64_t now)
{
    s_peer_t *p = s_find (self, index);
    if (!p)
        return;
    s_unlink (self, p, now);
    p->event_at = now;
}

void
router_links_nat (router_links_t *self, uint32_t index, const char *name, const char *state,
                  const char *endpoint, int64_t now)
{
    s_peer_t *p = s_get (self, index, name);
    p->event_at = now;
    s_update (self, p, state, endpoint, "", -2, now);
}

void
router_links_nat_down (router_links_t *self, uint32_t index, int64_t now)
{
    s_peer_t *p = s_find (self, index);
    if (p) {
        p->event_at = now;
        s_unlink (self, p, now);
    }
}

void
router_links_status_begin (router_links_t *self)
{
    for (size_t i = 0; i < self->count; i++)
        self->peers [i].listed = false;
}

void
router_links_status (router_links_t *self, uint32_t index, const char *name, const char *state,
                     const char *endpoint, const char *path, const char *relay_id, int64_t rtt_us,
                     int64_t asked, int64_t now)
{
    s_peer_t *p = s_get (self, index, name);
    p->listed = true;
    if (p->event_at >= asked)
        return;
    s_set_id (self, p, relay_id, now);
    s_update (self, p, state, endpoint, path, rtt_us < 0 ? -1 : rtt_us, now);
}

void
router_links_status_end (router_links_t *self, int64_t asked, int64_t now)
{
    for (size_t i = 0; i < self->count; i++)
        if (!self->peers [i].listed && self->peers [i].event_at < asked)
            s_unlink (self, &self->peers [i], now);
}

size_t
router_links_up (router_links_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->count; i++)
        n += self->peers [i].pub.up;
    return n;
}

const router_peer_t *
router_links_find (router_links_t *self, uint32_t index)
{
    s_peer_t *p = s_find (self, index);
    return p ? &p->pub : NULL;
}

const router_peer_t *
router_links_find_id (router_links_t *self, uint64_t id)
{
    size_t at = s_lower (self, id);
    if (at == self->by_id_count || self->by_id [at].id != id)
        return NULL;
    //  (of peers that share an id, the first made, as a search in order found)
    uint32_t first = self->by_id [at].pos;
    for (; at < self->by_id_count && self->by_id [at].id == id; at++)
        if (self->by_id [at].pos < first)
            first = self->by_id [at].pos;
    return &self->peers [first].pub;
}

const router_peer_t *
router_links_find_name (router_links_t *self, const char *name)
{
    for (size_t i = 0; i < self->count; i++)
        if (streq (self->peers [i].pub.name, name))
            return &self->peers [i].pub;
    return NULL;
}

//  nat.status's path words first (`relay <name>`, `turn (...)`, `direct`,
//  `ice direct (...)`), else the endpoint's form (`relay/<id>` or an address)
route_link_t
router_links_kind (const char *endpoint, const char *path)
{
    if (*path)
        return strncmp (path, "relay", 5) == 0 ? ROUTE_LINK_RELAY
             : strncmp (path, "turn", 4) == 0 ? ROUTE_LINK_TURN : ROUTE_LINK_DIRECT;
    return strncmp (endpoint, "relay/", 6) == 0 ? ROUTE_LINK_RELAY : ROUTE_LINK_DIRECT;
}

//  ---------------------------------------------------------------------------
//  Self test: every source by hand, the table checked after each

//  The best route to id: its tier and metric, or false
static bool
s_best (router_links_t *self, uint64_t id, route_tier_t tier, uint32_t metric)
{
    route_t r;
    return route_table_best (self->table, id, &r) && r.tier == tier && r.metric == metric
        && r.next_hop == id && r.hops == 1;
}

void
router_links_test (bool verbose)
{
    assert (router_links_kind ("192.0.2.1:51820", "") == ROUTE_LINK_DIRECT);
    assert (router_links_kind ("[2001:db8::1]:51820", "") == ROUTE_LINK_DIRECT);
    assert (router_links_kind ("relay/00112233aabbccdd", "") == ROUTE_LINK_RELAY);
    assert (router_links_kind ("relay/00112233aabbccdd", "relay r1 tcp") == ROUTE_LINK_RELAY);
    assert (router_links_kind ("ice/3", "turn (relay/srflx)") == ROUTE_LINK_TURN);
    assert (router_links_kind ("ice/3", "ice direct (srflx/host)") == ROUTE_LINK_DIRECT);
    assert (router_links_kind ("bday/3", "") == ROUTE_LINK_DIRECT);

    route_config_t config;
    route_config_defaults (&config);
    router_links_t *self = router_links_new (&config);
    const uint64_t carol = 0xc4, dave = 0xd5;
    //  A peer of the config, up direct, no RTT yet: local id, 100 + 100
    router_links_nat (self, 4, "carol", "up", "192.0.2.4:51820", 1000);
    assert (router_links_up (self) == 1);
    assert (s_best (self, ROUTER_LINKS_LOCAL | 4, ROUTE_TIER_DIRECT, 200));
    //  discovery names it: the link moves to its registry id
    router_links_peer_up (self, 4, "carol", "", "00000000000000c4", 1001);
    assert (!route_table_best (self->table, ROUTER_LINKS_LOCAL | 4, NULL));
    assert (s_best (self, carol, ROUTE_TIER_DIRECT, 200));
    assert (router_links_find_id (self, carol) == router_links_find (self, 4));
    //  nat.status: 11.2 ms counts 12
    router_links_status (self, 4, "carol", "up", "192.0.2.4:51820", "direct", "00000000000000c4", 11200, 1002, 1002);
    assert (s_best (self, carol, ROUTE_TIER_DIRECT, 112));
    //  nat.peer again on the same endpoint keeps the RTT; a new endpoint drops it
    router_links_nat (self, 4, "carol", "up", "192.0.2.4:51820", 1003);
    assert (s_best (self, carol, ROUTE_TIER_DIRECT, 112));
    router_links_nat (self, 4, "carol", "up", "198.51.100.4:7000", 1004);
    assert (s_best (self, carol, ROUTE_TIER_DIRECT, 200));
    //  Through a relay: the id from the endpoint, relay tier
    router_links_nat (self, 5, "dave", "up", "relay/00000000000000d5", 1005);
    assert (s_best (self, dave, ROUTE_TIER_RELAY, 200));
    assert (router_links_find (self, 5)->registry_id && router_links_find (self, 5)->kind == ROUTE_LINK_RELAY);
    //  ICE through TURN: only nat.status's path says so; a nat.peer on the
    //  same endpoint keeps it
    router_links_status (self, 6, "erin", "up", "ice/6", "turn (relay/srflx)", "", 30500, 1006, 1006);
    assert (s_best (self, ROUTER_LINKS_LOCAL | 6, ROUTE_TIER_TURN, 131));
    router_links_nat (self, 6, "erin", "up", "ice/6", 1007);
    assert (s_best (self, ROUTER_LINKS_LOCAL | 6, ROUTE_TIER_TURN, 131));
    //  A bad id is ignored; an RTT beyond the wire's bound is capped
    router_links_peer_up (self, 6, "erin", "not-hex-at-all!!", "", 1008);
    assert (router_links_find (self, 6)->id == (ROUTER_LINKS_LOCAL | 6));
    router_links_status (self, 6, "erin", "up", "ice/6", "turn (relay/srflx)", "", 99000000, 1009, 1009);
    assert (s_best (self, ROUTER_LINKS_LOCAL | 6, ROUTE_TIER_TURN, ROUTE_WIRE_LINK_RTT_MAX + 100));
    assert (router_links_up (self) == 3 && route_table_size (self->table) == 3);
    assert (router_links_find_name (self, "dave")->index == 5 && !router_links_find_name (self, "zed"));
    //  Our own id from discovery: the table made again, every link in it;
    //  the same id again or a bad one changes nothing
    assert (router_links_self (self) == 0);
    assert (!router_links_set_self (self, "xyz", 1008) && !router_links_set_self (self, "0000000000000000", 1008));
    assert (router_links_set_self (self, "00000000000000a1", 1008) && router_links_self (self) == 0xa1);
    assert (!router_links_set_self (self, "00000000000000a1", 1008));
    assert (s_best (self, carol, ROUTE_TIER_DIRECT, 200) && s_best (self, dave, ROUTE_TIER_RELAY, 200));
    assert (route_table_size (self->table) == 3 && router_links_count (self) == 3);
    assert (router_links_at (self, 0)->index == 4 && !router_links_at (self, 3));
    //  peer_id wins over relay_id
    router_links_peer_up (self, 8, "frank", "00000000000000f0", "00000000000000f8", 1008);
    assert (router_links_find (self, 8)->id == 0xf8 && router_links_find (self, 8)->registry_id);

    //  Down, each way: not up in nat.peer, nat.peer.down, a status row, peer.down
    router_links_nat (self, 4, "carol", "connecting", "198.51.100.4:7000", 1010);
    assert (!route_table_best (self->table, carol, NULL));
    router_links_nat (self, 4, "carol", "up", "198.51.100.4:7000", 1011);
    assert (s_best (self, carol, ROUTE_TIER_DIRECT, 200));
    router_links_status (self, 4, "carol", "waiting", "", "", "00000000000000c4", -1, 1012, 1012);
    assert (!route_table_best (self->table, carol, NULL));
    router_links_nat_down (self, 5, 1013);
    assert (!route_table_best (self->table, dave, NULL) && router_links_find (self, 5));
    //  A status asked before that event still says up: ignored
    router_links_status (self, 5, "dave", "up", "relay/00000000000000d5", "relay r1", "00000000000000d5", 5000,
                         1013, 1014);
    assert (!route_table_best (self->table, dave, NULL));
    router_links_peer_down (self, 6, 1014);
    assert (!route_table_best (self->table, ROUTER_LINKS_LOCAL | 6, NULL) && !router_links_find (self, 6)->up);
    router_links_status (self, 6, "erin", "up", "ice/6", "turn (relay/srflx)", "", 30500, 1013, 1015);
    assert (!route_table_best (self->table, ROUTER_LINKS_LOCAL | 6, NULL));
    //  A whole status: bob listed up comes back; carol, up but not listed, is
    //  withdrawn unless an event about her came after the question
    router_links_nat (self, 4, "carol", "up", "192.0.2.4:51820", 1016);
    router_links_status_begin (self);
    router_links_status (self, 7, "bob", "up", "192.0.2.7:51820", "direct", "", 2000, 1016, 1017);
    router_links_status_end (self, 1016, 1017);
    assert (router_links_find (self, 4)->up && s_best (self, ROUTER_LINKS_LOCAL | 7, ROUTE_TIER_DIRECT, 102));
    router_links_status_begin (self);
    router_links_status (self, 7, "bob", "up", "192.0.2.7:51820", "direct", "", 2000, 1018, 1019);
    router_links_status_end (self, 1018, 1019);
    assert (!router_links_find (self, 4)->up && !route_table_best (self->table, carol, NULL));
    assert (router_links_up (self) == 1);
    router_links_nat_down (self, 7, 1020);
    route_t routes [4];
    assert (router_links_up (self) == 0 && route_table_routes (self->table, routes, 4) == 0);
    router_links_peer_down (self, 99, 1021);           //  never heard of: nothing
    assert (!router_links_find (self, 99));
    //  By id, among many: each found, a local key gone once the registry id
    //  came, two peers named by one id found as the first made
    char hex [17];
    for (uint32_t i = 100; i < 400; i++) {
        router_links_nat (self, i, "", "up", "192.0.2.9:9", 1022);
        assert (router_links_find_id (self, ROUTER_LINKS_LOCAL | i)->index == i);
        snprintf (hex, sizeof hex, "%016x", 0x5000 + (399 - i));
        router_links_peer_up (self, i, "", "", hex, 1022);
    }
    for (uint32_t i = 100; i < 400; i++) {
        assert (router_links_find_id (self, 0x5000 + (399 - i))->index == i);
        assert (!router_links_find_id (self, ROUTER_LINKS_LOCAL | i));
    }
    router_links_peer_up (self, 400, "", "", "0000000000005000", 1023);
    assert (router_links_find_id (self, 0x5000)->index == 399);
    assert (!router_links_find_id (self, 0x4fff) && !router_links_find_id (self, 0x5000 + 300));
    router_links_destroy (&self);
    assert (self == NULL);
    if (verbose)
        printf ("router_links: ok\n");
}

void
router_links_name (router_links_t *self, uint64_t id, char *out, size_t size)
{
    const router_peer_t *p = router_links_find_id (self, id);
    if (p && *p->name)
        snprintf (out, size, "%s", p->name);
    else
        snprintf (out, size, "%016" PRIx64, id);
}
