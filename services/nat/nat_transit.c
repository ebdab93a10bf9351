/*  nat_transit: next hops, ids, and the transit budget per source. */
#include "nat_transit.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_IDS 512                       //  id -> index map: open addressing, twice the peers

typedef struct {
    uint64_t dest_id;
    uint32_t hops [NAT_TRANSIT_HOPS];
    uint8_t count;                      //  0: unreachable (or never told)
    uint8_t ttl;
    uint32_t via;                       //  our own packets: hops [0] unless it is the destination
} s_route_t;

typedef struct {
    double packets, bytes;              //  tokens
    int64_t at_ms;                      //  last refill, 0: full
    uint64_t forwarded, over_budget;
} s_bucket_t;

struct _nat_transit_t {
    bool transit;
    uint32_t pps, bps;
    uint64_t self_id;
    s_route_t routes [NAT_TRANSIT_PEERS];
    uint64_t ids [NAT_TRANSIT_PEERS];   //  by index, 0: unknown
    struct { uint64_t id; uint32_t index; } map [S_IDS];
    s_bucket_t buckets [NAT_TRANSIT_PEERS];
    nat_transit_stats_t stats;
};

nat_transit_t *
nat_transit_new (bool transit, uint32_t pps, uint32_t bps)
{
    nat_transit_t *self = (nat_transit_t *) calloc (1, sizeof (nat_transit_t));
    assert (self);
    self->transit = transit && pps && bps;
    self->pps = pps;
    self->bps = bps;
    for (size_t i = 0; i < NAT_TRANSIT_PEERS; i++)
        self->routes [i].via = NAT_TRANSIT_NONE;
    return self;
}

void
nat_transit_destroy (nat_transit_t **self_p)
{
    if (self_p && *self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

static size_t
s_slot (uint64_t id)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t) (id & (S_IDS - 1));
}

void
nat_transit_set_id (nat_transit_t *self, uint32_t index, uint64_t id)
{
    if (index >= NAT_TRANSIT_PEERS || !id || self->ids [index] == id)
        return;
    //  An index takes one id: the old one no longer names it
    if (self->ids [index]) {
        size_t s = s_slot (self->ids [index]);
        for (size_t n = 0; n < S_IDS && self->map [s].id; n++, s = (s + 1) & (S_IDS - 1))
            if (self->map [s].id == self->ids [index])
                self->map [s].index = NAT_TRANSIT_NONE;
    }
    self->ids [index] = id;
    size_t s = s_slot (id);
    for (size_t n = 0; n < S_IDS; n++, s = (s + 1) & (S_IDS - 1))
        if (!self->map [s].id || self->map [s].id == id) {
            self->map [s].id = id;
            self->map [s].index = index;
            return;
        }
}

uint32_t
nat_transit_index (const nat_transit_t *self, uint64_t id)
{
    if (!id)
        return NAT_TRANSIT_NONE;
    size_t s = s_slot (id);
    for (size_t n = 0; n < S_IDS && self->map [s].id; n++, s = (s + 1) & (S_IDS - 1))
        if (self->map [s].id == id)
            return self->map [s].index;
    return NAT_TRANSIT_NONE;
}

uint64_t
nat_transit_self_id (const nat_transit_t *self)
{
    return self->self_id;
}

int
nat_transit_set_route (nat_transit_t *self, uint32_t index, uint64_t self_id, uint64_t dest_id,
                       uint32_t ttl, const uint32_t *hops, size_t count)
{
    if (index >= NAT_TRANSIT_PEERS)
        return -1;
    if (self_id)
        self->self_id = self_id;
    nat_transit_set_id (self, index, dest_id);
    s_route_t *r = &self->routes [index];
    uint32_t was = r->via;
    r->dest_id = dest_id;
    r->ttl = (uint8_t) (ttl < 1 ? 1 : ttl > WIRE_ROUTED_TTL_MAX ? WIRE_ROUTED_TTL_MAX : ttl);
    r->count = 0;
    //  In route.next's order: crypto names a flow's next hop by its position
    for (size_t i = 0; i < count && r->count < NAT_TRANSIT_HOPS; i++)
        r->hops [r->count++] = hops [i] < NAT_TRANSIT_PEERS ? hops [i] : NAT_TRANSIT_NONE;
    //  Our own packets: through the first next hop unless it is the direct
    //  link; without ids a header cannot be written, so direct then too
    r->via = r->count && r->hops [0] != index && r->hops [0] != NAT_TRANSIT_NONE
             && self->self_id && dest_id && self->self_id != dest_id
           ? r->hops [0] : NAT_TRANSIT_NONE;
    return (was == NAT_TRANSIT_NONE) != (r->via == NAT_TRANSIT_NONE);
}

uint32_t
nat_transit_via_hop (const nat_transit_t *self, uint32_t index, unsigned k, nat_routed_t *hdr)
{
    uint32_t via = nat_transit_via (self, index, hdr);
    if (via == NAT_TRANSIT_NONE || k == 0)
        return via;
    const s_route_t *r = &self->routes [index];
    //  Equal cost never mixes the direct link with routes through peers (the
    //  router ranks direct first), so a hop that is the destination is stale
    return k < r->count && r->hops [k] != NAT_TRANSIT_NONE && r->hops [k] != index ? r->hops [k] : via;
}

uint32_t
nat_transit_via (const nat_transit_t *self, uint32_t index, nat_routed_t *hdr)
{
    if (!self || index >= NAT_TRANSIT_PEERS)
        return NAT_TRANSIT_NONE;
    const s_route_t *r = &self->routes [index];
    if (r->via != NAT_TRANSIT_NONE && hdr) {
        hdr->ttl = r->ttl;
        hdr->source = self->self_id;
        hdr->dest = r->dest_id;
    }
    return r->via;
}

void
nat_transit_sent (nat_transit_t *self)
{
    self->stats.sent++;
}

//  The source's token bucket: one second of its budget at most, full at first
static bool
s_budget (nat_transit_t *self, s_bucket_t *b, size_t bytes, int64_t now)
{
    if (!b->at_ms) {
        b->packets = self->pps;
        b->bytes = self->bps;
    }
    else
    if (now > b->at_ms) {
        double s = (double) (now - b->at_ms) / 1000.0;
        b->packets += s * self->pps;
        b->bytes += s * self->bps;
        if (b->packets > self->pps)
            b->packets = self->pps;
        if (b->bytes > self->bps)
            b->bytes = self->bps;
    }
    b->at_ms = now > 0 ? now : 1;
    if (b->packets < 1 || b->bytes < (double) bytes)
        return false;
    b->packets -= 1;
    b->bytes -= (double) bytes;
    return true;
}

static nat_transit_verdict_t
s_judge (nat_transit_t *self, const nat_routed_t *hdr, uint32_t from, size_t bytes, int64_t now, uint32_t *index)
{
    if (from == NAT_TRANSIT_NONE)
        return NAT_TRANSIT_DROP_NOT_NEIGHBOUR;
    uint32_t source = nat_transit_index (self, hdr->source);
    if (self->self_id && hdr->dest == self->self_id) {
        if (source == NAT_TRANSIT_NONE)
            return NAT_TRANSIT_DROP_UNKNOWN;
        *index = source;
        return NAT_TRANSIT_DELIVER;
    }
    if (!self->transit)
        return NAT_TRANSIT_DROP_REFUSED;
    if (hdr->ttl <= 1)
        return NAT_TRANSIT_DROP_TTL;
    if (source == NAT_TRANSIT_NONE)
        return NAT_TRANSIT_DROP_UNKNOWN;
    //  A packet we sent that came back, or one naming us as its source: a loop or a forgery
    if (hdr->source == self->self_id)
        return NAT_TRANSIT_DROP_NO_ROUTE;
    uint32_t dest = nat_transit_index (self, hdr->dest);
    const s_route_t *r = dest != NAT_TRANSIT_NONE ? &self->routes [dest] : NULL;
    uint32_t next = NAT_TRANSIT_NONE;
    for (size_t i = 0; r && i < r->count && next == NAT_TRANSIT_NONE; i++)
        if (r->hops [i] != from && r->hops [i] != NAT_TRANSIT_NONE)
            next = r->hops [i];
    if (next == NAT_TRANSIT_NONE)
        return NAT_TRANSIT_DROP_NO_ROUTE;
    s_bucket_t *b = &self->buckets [source];
    if (!s_budget (self, b, bytes, now)) {
        b->over_budget++;
        return NAT_TRANSIT_DROP_BUDGET;
    }
    b->forwarded++;
    self->stats.forwarded_bytes += bytes;
    *index = next;
    return NAT_TRANSIT_FORWARD;
}

nat_transit_verdict_t
nat_transit_judge (nat_transit_t *self, const nat_routed_t *hdr, uint32_t from, size_t bytes, int64_t now_ms,
                   uint32_t *index)
{
    uint32_t out = NAT_TRANSIT_NONE;
    nat_transit_verdict_t v = s_judge (self, hdr, from, bytes, now_ms, &out);
    self->stats.verdicts [v]++;
    if (index)
        *index = out;
    return v;
}

const nat_transit_stats_t *
nat_transit_stats (const nat_transit_t *self)
{
    return &self->stats;
}

void
nat_transit_source_stats (const nat_transit_t *self, uint32_t index, uint64_t *forwarded, uint64_t *over_budget)
{
    const s_bucket_t *b = index < NAT_TRANSIT_PEERS ? &self->buckets [index] : NULL;
    *forwarded = b ? b->forwarded : 0;
    *over_budget = b ? b->over_budget : 0;
}

const char *
nat_transit_verdict_name (nat_transit_verdict_t verdict)
{
    static const char *names [NAT_TRANSIT_VERDICTS] = {
        "forward", "deliver", "ttl", "budget", "refused", "no_route", "not_neighbour", "unknown"
    };
    return (unsigned) verdict < NAT_TRANSIT_VERDICTS ? names [verdict] : "?";
}

void
nat_transit_test (bool verbose)
{
    //  B (us, index-free: self id 0xB) between A (index 0, id 0xA) and C
    //  (index 1, id 0xC); D (index 2, id 0xD) another neighbour
    nat_transit_t *t = nat_transit_new (true, 10, 10000);
    uint32_t a = 0, c = 1, d = 2, idx;
    uint32_t hops_a [] = { a }, hops_c [] = { c };
    assert (nat_transit_set_route (t, a, 0xB, 0xA, 8, hops_a, 1) == 0);    //  direct: not routed
    assert (nat_transit_set_route (t, c, 0xB, 0xC, 8, hops_c, 1) == 0);
    assert (nat_transit_set_route (t, 300, 0xB, 0xE, 8, hops_c, 1) == -1);
    assert (nat_transit_self_id (t) == 0xB);
    assert (nat_transit_index (t, 0xC) == c && nat_transit_index (t, 0xA) == a);
    assert (nat_transit_index (t, 0xE) == NAT_TRANSIT_NONE && nat_transit_index (t, 0) == NAT_TRANSIT_NONE);
    assert (nat_transit_via (t, a, NULL) == NAT_TRANSIT_NONE && nat_transit_via (t, c, NULL) == NAT_TRANSIT_NONE);
    assert (nat_transit_via (t, 999, NULL) == NAT_TRANSIT_NONE && nat_transit_via (NULL, 0, NULL) == NAT_TRANSIT_NONE);

    //  A -> C through us: forwarded to C
    nat_routed_t h = { .ttl = 8, .source = 0xA, .dest = 0xC };
    assert (nat_transit_judge (t, &h, a, 100, 1000, &idx) == NAT_TRANSIT_FORWARD && idx == c);
    //  Not from a neighbour that is up
    assert (nat_transit_judge (t, &h, NAT_TRANSIT_NONE, 100, 1000, &idx) == NAT_TRANSIT_DROP_NOT_NEIGHBOUR);
    //  TTL 1 ends here; 2 goes on
    h.ttl = 1;
    assert (nat_transit_judge (t, &h, a, 100, 1000, &idx) == NAT_TRANSIT_DROP_TTL);
    h.ttl = 2;
    assert (nat_transit_judge (t, &h, a, 100, 1000, &idx) == NAT_TRANSIT_FORWARD);
    //  Never back to where it came from: C's packet to C, from C
    h = (nat_routed_t) { .ttl = 8, .source = 0xA, .dest = 0xC };
    assert (nat_transit_judge (t, &h, c, 100, 1000, &idx) == NAT_TRANSIT_DROP_NO_ROUTE);
    //  ... but another equal-cost next hop is taken then
    uint32_t hops_cd [] = { c, d };
    nat_transit_set_route (t, c, 0xB, 0xC, 8, hops_cd, 2);
    assert (nat_transit_judge (t, &h, c, 100, 1000, &idx) == NAT_TRANSIT_FORWARD && idx == d);
    //  Unknown destination, unknown source, our own id as source
    h.dest = 0xE;
    assert (nat_transit_judge (t, &h, a, 100, 1000, &idx) == NAT_TRANSIT_DROP_NO_ROUTE);
    h = (nat_routed_t) { .ttl = 8, .source = 0xF, .dest = 0xC };
    assert (nat_transit_judge (t, &h, a, 100, 1000, &idx) == NAT_TRANSIT_DROP_UNKNOWN);
    nat_transit_set_id (t, 5, 0xF);
    assert (nat_transit_judge (t, &h, a, 100, 1000, &idx) == NAT_TRANSIT_FORWARD);
    h.source = 0xB;
    assert (nat_transit_judge (t, &h, a, 100, 1000, &idx) == NAT_TRANSIT_DROP_UNKNOWN);
    //  For us: delivered as the source's
    h = (nat_routed_t) { .ttl = 1, .source = 0xC, .dest = 0xB };
    assert (nat_transit_judge (t, &h, a, 100, 1000, &idx) == NAT_TRANSIT_DELIVER && idx == c);
    h.source = 0x99;
    assert (nat_transit_judge (t, &h, a, 100, 1000, &idx) == NAT_TRANSIT_DROP_UNKNOWN);

    //  Budget: 10 packets a second per source; A spent 3 above (its own bucket)
    h = (nat_routed_t) { .ttl = 8, .source = 0xA, .dest = 0xC };
    size_t passed = 0;
    for (int i = 0; i < 20; i++)
        passed += nat_transit_judge (t, &h, a, 100, 1000, &idx) == NAT_TRANSIT_FORWARD;
    assert (passed == 10 - 3);
    uint64_t fwd, over;
    nat_transit_source_stats (t, a, &fwd, &over);
    assert (fwd == 10 && over == 13);
    //  Another source has its own budget
    h.source = 0xF;
    assert (nat_transit_judge (t, &h, a, 100, 1000, &idx) == NAT_TRANSIT_FORWARD);
    //  Half a second later: 5 more for A
    h.source = 0xA;
    passed = 0;
    for (int i = 0; i < 20; i++)
        passed += nat_transit_judge (t, &h, a, 100, 1500, &idx) == NAT_TRANSIT_FORWARD;
    assert (passed == 5);
    //  In bytes: 10000 a second, so a second later only 6 of 1500 bytes
    passed = 0;
    for (int i = 0; i < 10; i++)
        passed += nat_transit_judge (t, &h, a, 1500, 2500, &idx) == NAT_TRANSIT_FORWARD;
    assert (passed == 6);
    const nat_transit_stats_t *st = nat_transit_stats (t);
    assert (st->verdicts [NAT_TRANSIT_DROP_BUDGET] == 13 + 15 + 4);
    assert (st->verdicts [NAT_TRANSIT_DROP_TTL] == 1 && st->verdicts [NAT_TRANSIT_DELIVER] == 1);
    assert (st->verdicts [NAT_TRANSIT_DROP_NOT_NEIGHBOUR] == 1);

    //  Our own packets: C through A (a next hop that is not C)
    nat_routed_t out;
    assert (nat_transit_set_route (t, c, 0xB, 0xC, 6, hops_a, 1) == 1);
    assert (nat_transit_via (t, c, &out) == a && out.ttl == 6 && out.source == 0xB && out.dest == 0xC);
    assert (nat_transit_set_route (t, c, 0xB, 0xC, 6, hops_a, 1) == 0);      //  no change
    assert (nat_transit_set_route (t, c, 0xB, 0xC, 6, NULL, 0) == 1);        //  unreachable: not routed
    assert (nat_transit_via (t, c, &out) == NAT_TRANSIT_NONE);
    assert (nat_transit_set_route (t, c, 0xB, 0xC, 99, hops_a, 1) == 1);     //  TTL capped
    assert (nat_transit_via (t, c, &out) == a && out.ttl == WIRE_ROUTED_TTL_MAX);
    //  Equal-cost next hops: a flow's position picks one, a stale position the first
    uint32_t hops_ad [] = { a, d };
    nat_transit_set_route (t, c, 0xB, 0xC, 8, hops_ad, 2);
    assert (nat_transit_via_hop (t, c, 0, &out) == a && nat_transit_via_hop (t, c, 1, &out) == d);
    assert (nat_transit_via_hop (t, c, 3, &out) == a && out.dest == 0xC);
    uint32_t hops_ac [] = { a, c, 999 };
    nat_transit_set_route (t, c, 0xB, 0xC, 8, hops_ac, 3);
    assert (nat_transit_via_hop (t, c, 1, NULL) == a && nat_transit_via_hop (t, c, 2, NULL) == a);
    assert (nat_transit_via_hop (t, a, 1, NULL) == NAT_TRANSIT_NONE);
    //  An id that moves to another index no longer names the old one
    nat_transit_set_id (t, 7, 0xC);
    assert (nat_transit_index (t, 0xC) == 7);
    nat_transit_set_id (t, 7, 0x77);
    assert (nat_transit_index (t, 0xC) == NAT_TRANSIT_NONE && nat_transit_index (t, 0x77) == 7);
    nat_transit_destroy (&t);
    assert (t == NULL);

    //  routing.transit = false: nothing carried, still delivered to us
    t = nat_transit_new (false, 10, 10000);
    nat_transit_set_route (t, c, 0xB, 0xC, 8, hops_c, 1);
    nat_transit_set_route (t, a, 0xB, 0xA, 8, hops_a, 1);
    h = (nat_routed_t) { .ttl = 8, .source = 0xA, .dest = 0xC };
    assert (nat_transit_judge (t, &h, a, 100, 1000, &idx) == NAT_TRANSIT_DROP_REFUSED);
    h = (nat_routed_t) { .ttl = 8, .source = 0xA, .dest = 0xB };
    assert (nat_transit_judge (t, &h, a, 100, 1000, &idx) == NAT_TRANSIT_DELIVER && idx == a);
    nat_transit_destroy (&t);
    //  A budget of 0 refuses too
    t = nat_transit_new (true, 0, 10000);
    nat_transit_set_route (t, c, 0xB, 0xC, 8, hops_c, 1);
    nat_transit_set_route (t, a, 0xB, 0xA, 8, hops_a, 1);
    h = (nat_routed_t) { .ttl = 8, .source = 0xA, .dest = 0xC };
    assert (nat_transit_judge (t, &h, a, 100, 1000, &idx) == NAT_TRANSIT_DROP_REFUSED);
    assert (strcmp (nat_transit_verdict_name (NAT_TRANSIT_DROP_NOT_NEIGHBOUR), "not_neighbour") == 0);
    nat_transit_destroy (&t);
    if (verbose)
        printf ("nat_transit: ok\n");
}
