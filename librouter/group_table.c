/*  group_table: our memberships and the peers' reports (group_table.h). Small
    arrays: a node is a member of a few groups and hears tens or hundreds of
    peers. No qsort: the router runs under a seccomp filter that refuses the
    sysinfo glibc's qsort makes for arrays past 1 KB, so sorted lists are kept
    by binary search and insertion. */
#include "group_table.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    group_entry_t group;
    unsigned sources;
} s_own_t;

typedef struct {
    uint64_t id;
    uint64_t seqno;             //  the last report taken
    int64_t heard;              //  when
    uint8_t count;
    group_entry_t groups [ROUTE_WIRE_MAX_GROUPS];
} s_origin_t;

struct _group_table_t {
    s_own_t *own;               //  sorted by address
    size_t own_count, own_cap;
    s_origin_t *origins;        //  in arrival order
    size_t origins_count, origins_cap, max_origins;
    uint64_t seqno;             //  of our last report
    group_stats_t stats;
};

group_table_t *
group_table_new (size_t max_origins)
{
    group_table_t *self = (group_table_t *) calloc (1, sizeof *self);
    assert (self);
    self->max_origins = max_origins ? max_origins : 4096;
    //  Reports count on from our clock in microseconds, so a restarted
    //  router's are newer than those it sent before (as route_table's)
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    self->seqno = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
    return self;
}

void
group_table_destroy (group_table_t **self_p)
{
    assert (self_p);
    group_table_t *self = *self_p;
    if (!self)
        return;
    free (self->own);
    free (self->origins);
    free (self);
    *self_p = NULL;
}

//  The first own entry not below addr
static size_t
s_own_lower (group_table_t *self, const uint8_t *addr)
{
    size_t lo = 0, hi = self->own_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp (self->own [mid].group.addr, addr, GROUP_ADDR_SIZE) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static s_own_t *
s_own_find (group_table_t *self, const uint8_t *addr)
{
    size_t at = s_own_lower (self, addr);
    return at < self->own_count && memcmp (self->own [at].group.addr, addr, GROUP_ADDR_SIZE) == 0
         ? &self->own [at] : NULL;
}

bool
group_table_join (group_table_t *self, const uint8_t addr [GROUP_ADDR_SIZE], unsigned source)
{
    uint8_t kind = group_addr_kind (addr, NULL);
    assert (kind && source);
    s_own_t *own = s_own_find (self, addr);
    if (own) {
        own->sources |= source;
        return false;
    }
    if (self->own_count == self->own_cap) {
        self->own_cap = self->own_cap ? 2 * self->own_cap : 8;
        self->own = (s_own_t *) realloc (self->own, self->own_cap * sizeof *self->own);
        assert (self->own);
    }
    size_t at = s_own_lower (self, addr);
    memmove (self->own + at + 1, self->own + at, (self->own_count - at) * sizeof *self->own);
    memset (&self->own [at], 0, sizeof self->own [at]);
    memcpy (self->own [at].group.addr, addr, GROUP_ADDR_SIZE);
    self->own [at].group.kind = kind;
    self->own [at].sources = source;
    self->own_count++;
    return true;
}

bool
group_table_leave (group_table_t *self, const uint8_t addr [GROUP_ADDR_SIZE], unsigned source)
{
    s_own_t *own = s_own_find (self, addr);
    if (!own)
        return false;
    own->sources &= ~source;
    if (own->sources)
        return false;
    size_t at = (size_t) (own - self->own);
    memmove (self->own + at, self->own + at + 1, (self->own_count - at - 1) * sizeof *self->own);
    self->own_count--;
    return true;
}

bool
group_table_set (group_table_t *self, unsigned source, const group_entry_t *groups, size_t count)
{
    bool changed = false;
    //  Off what the source no longer holds (from the end: leave moves the tail)
    for (size_t i = self->own_count; i-- > 0; ) {
        if (!(self->own [i].sources & source))
            continue;
        bool kept = false;
        for (size_t k = 0; k < count && !kept; k++)
            kept = memcmp (groups [k].addr, self->own [i].group.addr, GROUP_ADDR_SIZE) == 0;
        if (!kept)
            changed |= group_table_leave (self, self->own [i].group.addr, source);
    }
    for (size_t k = 0; k < count; k++)
        if (group_addr_kind (groups [k].addr, NULL))
            changed |= group_table_join (self, groups [k].addr, source);
    return changed;
}

unsigned
group_table_local (group_table_t *self, const uint8_t addr [GROUP_ADDR_SIZE])
{
    s_own_t *own = s_own_find (self, addr);
    return own ? own->sources : 0;
}

size_t
group_table_own (group_table_t *self, group_entry_t *groups, size_t max)
{
    for (size_t i = 0; i < self->own_count && i < max; i++)
        groups [i] = self->own [i].group;
    return self->own_count;
}

void
group_table_report (group_table_t *self, uint64_t origin, uint8_t flags, group_msg_t *msg)
{
    msg->origin = origin;
    msg->seqno = ++self->seqno;
    msg->flags = flags;
    msg->count = 0;
    for (size_t i = 0; i < self->own_count && msg->count < ROUTE_WIRE_MAX_GROUPS; i++)
        msg->groups [msg->count++] = self->own [i].group;
}

static s_origin_t *
s_origin (group_table_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->origins_count; i++)
        if (self->origins [i].id == id)
            return &self->origins [i];
    return NULL;
}

//  The same list in any order
static bool
s_same_groups (const s_origin_t *o, const group_msg_t *msg)
{
    if (o->count != msg->count)
        return false;
    for (size_t i = 0; i < msg->count; i++) {
        bool found = false;
        for (size_t k = 0; k < o->count && !found; k++)
            found = memcmp (o->groups [k].addr, msg->groups [i].addr, GROUP_ADDR_SIZE) == 0;
        if (!found)
            return false;
    }
    return true;
}

int
group_table_receive (group_table_t *self, uint64_t from, const group_msg_t *msg, int64_t now)
{
    if (msg->origin != from) {
        self->stats.impostor++;
        return -1;
    }
    s_origin_t *o = s_origin (self, from);
    if (o && msg->seqno <= o->seqno) {
        self->stats.stale++;
        return -1;
    }
    if (!o) {
        if (self->origins_count == self->max_origins) {
            self->stats.capped++;
            return -1;
        }
        if (self->origins_count == self->origins_cap) {
            self->origins_cap = self->origins_cap ? 2 * self->origins_cap : 8;
            self->origins = (s_origin_t *) realloc (self->origins, self->origins_cap * sizeof *self->origins);
            assert (self->origins);
        }
        o = &self->origins [self->origins_count++];
        memset (o, 0, sizeof *o);
        o->id = from;
    }
    bool changed = !s_same_groups (o, msg);
    o->seqno = msg->seqno;
    o->heard = now;
    o->count = msg->count;
    memcpy (o->groups, msg->groups, msg->count * sizeof msg->groups [0]);
    self->stats.reports++;
    return changed ? 1 : 0;
}

static void
s_drop (group_table_t *self, size_t i)
{
    self->origins [i] = self->origins [--self->origins_count];
}

bool
group_table_forget (group_table_t *self, uint64_t id)
{
    s_origin_t *o = s_origin (self, id);
    if (!o)
        return false;
    bool had = o->count > 0;
    s_drop (self, (size_t) (o - self->origins));
    return had;
}

size_t
group_table_expire (group_table_t *self, int64_t now, int64_t timeout)
{
    size_t gone = 0;
    for (size_t i = self->origins_count; i-- > 0; )
        if (now - self->origins [i].heard >= timeout) {
            gone += self->origins [i].count > 0;
            self->stats.expired++;
            s_drop (self, i);
        }
    return gone;
}

bool
group_table_heard (group_table_t *self, uint64_t origin)
{
    return s_origin (self, origin) != NULL;
}

//  Puts g into the sorted list (n entries, room for max) unless it is there;
//  returns the new count (which may pass max: then g was not stored)
static size_t
s_insert (group_entry_t *list, size_t n, size_t max, const group_entry_t *g, size_t *total)
{
    size_t stored = n < max ? n : max;
    size_t lo = 0, hi = stored;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp (list [mid].addr, g->addr, GROUP_ADDR_SIZE) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < stored && memcmp (list [lo].addr, g->addr, GROUP_ADDR_SIZE) == 0)
        return n;
    (*total)++;
    if (lo >= max)
        return n + 1;
    size_t tail = (stored < max ? stored : max - 1) - lo;
    memmove (list + lo + 1, list + lo, tail * sizeof *list);
    list [lo] = *g;
    return n + 1;
}

size_t
group_table_groups (group_table_t *self, group_entry_t *groups, size_t max)
{
    //  Counting past max needs every distinct address: a scratch list of all
    size_t cap = self->own_count;
    for (size_t i = 0; i < self->origins_count; i++)
        cap += self->origins [i].count;
    group_entry_t *all = (group_entry_t *) malloc ((cap ? cap : 1) * sizeof *all);
    assert (all);
    size_t n = 0, total = 0;
    for (size_t i = 0; i < self->own_count; i++)
        n = s_insert (all, n, cap, &self->own [i].group, &total);
    for (size_t i = 0; i < self->origins_count; i++)
        for (size_t k = 0; k < self->origins [i].count; k++)
            n = s_insert (all, n, cap, &self->origins [i].groups [k], &total);
    memcpy (groups, all, (total < max ? total : max) * sizeof *all);
    free (all);
    return total;
}

size_t
group_table_members (group_table_t *self, const uint8_t addr [GROUP_ADDR_SIZE], uint64_t *ids, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < self->origins_count; i++) {
        const s_origin_t *o = &self->origins [i];
        bool member = false;
        for (size_t k = 0; k < o->count && !member; k++)
            member = memcmp (o->groups [k].addr, addr, GROUP_ADDR_SIZE) == 0;
        if (!member)
            continue;
        //  By id: insertion (a group has few members)
        size_t stored = n < max ? n : max, at = stored;
        while (at > 0 && ids [at - 1] > o->id)
            at--;
        if (at < max) {
            size_t tail = (stored < max ? stored : max - 1) - at;
            memmove (ids + at + 1, ids + at, tail * sizeof *ids);
            ids [at] = o->id;
        }
        n++;
    }
    return n;
}

static int
s_pair_cmp (const group_pair_t *a, const group_pair_t *b)
{
    int cmp = memcmp (a->group.addr, b->group.addr, GROUP_ADDR_SIZE);
    return cmp ? cmp : a->id < b->id ? -1 : a->id > b->id;
}

//  A bottom-up merge sort (not qsort: the seccomp filter, above)
static void
s_pairs_sort (group_pair_t *pairs, size_t n)
{
    group_pair_t *tmp = (group_pair_t *) malloc ((n ? n : 1) * sizeof *tmp);
    assert (tmp);
    group_pair_t *from = pairs, *to = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                to [k++] = s_pair_cmp (&from [j], &from [i]) < 0 ? from [j++] : from [i++];
            while (i < mid)
                to [k++] = from [i++];
            while (j < hi)
                to [k++] = from [j++];
        }
        group_pair_t *swap = from;
        from = to;
        to = swap;
    }
    if (from != pairs)
        memcpy (pairs, from, n * sizeof *pairs);
    free (tmp);
}

size_t
group_table_pairs (group_table_t *self, group_pair_t **pairs)
{
    size_t n = 0;
    for (size_t i = 0; i < self->origins_count; i++)
        n += self->origins [i].count;
    *pairs = (group_pair_t *) malloc ((n ? n : 1) * sizeof **pairs);
    assert (*pairs);
    size_t k = 0;
    for (size_t i = 0; i < self->origins_count; i++)
        for (size_t g = 0; g < self->origins [i].count; g++) {
            (*pairs) [k].group = self->origins [i].groups [g];
            (*pairs) [k++].id = self->origins [i].id;
        }
    s_pairs_sort (*pairs, n);
    return n;
}

const group_stats_t *
group_table_stats (group_table_t *self)
{
    return &self->stats;
}

size_t
group_table_memory (group_table_t *self)
{
    return sizeof *self + self->own_cap * sizeof *self->own + self->origins_cap * sizeof *self->origins;
}

//  --------------------------------------------------------------------------
//  Self test

static group_entry_t
s_g (const char *text)
{
    group_entry_t g;
    char err [200];
    group_addr_err_t rc = group_addr_parse (text, g.addr, &g.kind, err, sizeof err);
    assert (rc == GROUP_ADDR_OK);
    return g;
}

static group_msg_t
s_report (uint64_t origin, uint64_t seqno, const char *const *groups)
{
    group_msg_t msg = { .origin = origin, .seqno = seqno };
    for (size_t i = 0; groups [i]; i++)
        msg.groups [msg.count++] = s_g (groups [i]);
    assert (group_msg_check (&msg) == GROUP_MSG_OK);
    return msg;
}

void
group_table_test (bool verbose)
{
    group_table_t *t = group_table_new (3);
    group_entry_t m = s_g ("239.1.2.3"), any = s_g ("10.99.0.1"), v6 = s_g ("ff3e::42");

    //  Our memberships: sources add up, the group stays while one holds it
    assert (group_table_join (t, m.addr, GROUP_SOURCE_CTL));
    assert (!group_table_join (t, m.addr, GROUP_SOURCE_CONFIG));
    assert (group_table_local (t, m.addr) == (GROUP_SOURCE_CTL | GROUP_SOURCE_CONFIG));
    assert (!group_table_leave (t, m.addr, GROUP_SOURCE_CTL));
    assert (group_table_local (t, m.addr) == GROUP_SOURCE_CONFIG);
    assert (!group_table_leave (t, any.addr, GROUP_SOURCE_CTL));
    //  The device's list replaces what the device held, whole
    group_entry_t device [2] = { v6, m };
    assert (group_table_set (t, GROUP_SOURCE_DEVICE, device, 2));
    assert (group_table_local (t, m.addr) == (GROUP_SOURCE_CONFIG | GROUP_SOURCE_DEVICE));
    assert (!group_table_set (t, GROUP_SOURCE_DEVICE, device, 2));
    assert (group_table_set (t, GROUP_SOURCE_DEVICE, device + 1, 1));     //  v6 left
    assert (group_table_local (t, v6.addr) == 0 && group_table_local (t, m.addr) != 0);
    assert (!group_table_set (t, GROUP_SOURCE_DEVICE, NULL, 0));          //  m still held by the config
    assert (group_table_join (t, any.addr, GROUP_SOURCE_CTL));
    group_entry_t own [4];
    assert (group_table_own (t, own, 4) == 2);
    assert (memcmp (own [0].addr, any.addr, 16) == 0 && memcmp (own [1].addr, m.addr, 16) == 0);  //  10. < 239.

    //  Our report: our groups, a newer seqno each time
    static group_msg_t r1, r2;
    group_table_report (t, 0xaa, ROUTE_WIRE_GROUPS_REQUEST, &r1);
    group_table_report (t, 0xaa, 0, &r2);
    assert (r1.count == 2 && r2.seqno == r1.seqno + 1 && r1.flags == ROUTE_WIRE_GROUPS_REQUEST && r2.flags == 0);
    assert (r1.seqno > 1700000000000000ULL && group_msg_check (&r1) == GROUP_MSG_OK);

    //  Peers' reports: freshness, impostors, the same list again
    const char *const b_groups [] = { "239.1.2.3", "10.99.0.1", NULL };
    const char *const c_groups [] = { "10.99.0.1", NULL };
    const char *const none [] = { NULL };
    group_msg_t rb = s_report (0xbb, 100, b_groups);
    assert (group_table_receive (t, 0xbb, &rb, 1000) == 1);
    assert (group_table_receive (t, 0xbb, &rb, 1000) == -1 && group_table_stats (t)->stale == 1);
    rb.seqno = 101;
    assert (group_table_receive (t, 0xbb, &rb, 1100) == 0);
    assert (group_table_receive (t, 0xcc, &rb, 1100) == -1 && group_table_stats (t)->impostor == 1);
    group_msg_t rc = s_report (0xcc, 5, c_groups);
    assert (group_table_receive (t, 0xcc, &rc, 1200) == 1);
    uint64_t ids [4];
    assert (group_table_members (t, any.addr, ids, 4) == 2 && ids [0] == 0xbb && ids [1] == 0xcc);
    assert (group_table_members (t, any.addr, ids, 1) == 2 && ids [0] == 0xbb);
    assert (group_table_members (t, m.addr, ids, 4) == 1 && ids [0] == 0xbb);
    assert (group_table_members (t, v6.addr, ids, 4) == 0);
    //  Every group once: ours and theirs
    group_entry_t all [4];
    assert (group_table_groups (t, all, 4) == 2);
    group_msg_t rc6 = s_report (0xcc, 6, (const char *const []) { "10.99.0.1", "ff3e::42", NULL });
    assert (group_table_receive (t, 0xcc, &rc6, 1300) == 1);
    assert (group_table_groups (t, all, 4) == 3 && memcmp (all [2].addr, v6.addr, 16) == 0);
    assert (group_table_groups (t, all, 1) == 3 && memcmp (all [0].addr, any.addr, 16) == 0);
    //  Every (group, member) pair, sorted by address then id
    group_pair_t *pairs;
    size_t npairs = group_table_pairs (t, &pairs);
    assert (npairs == 4);
    assert (memcmp (pairs [0].group.addr, any.addr, 16) == 0 && pairs [0].id == 0xbb && pairs [1].id == 0xcc);
    assert (memcmp (pairs [2].group.addr, m.addr, 16) == 0 && pairs [2].id == 0xbb);
    assert (memcmp (pairs [3].group.addr, v6.addr, 16) == 0 && pairs [3].id == 0xcc);
    free (pairs);
    //  A peer that leaves every group keeps its record (its seqno)
    group_msg_t rb0 = s_report (0xbb, 102, none);
    assert (group_table_receive (t, 0xbb, &rb0, 1400) == 1 && group_table_heard (t, 0xbb));
    assert (group_table_members (t, m.addr, ids, 4) == 0);
    //  The cap on origins (3 here)
    group_msg_t rd = s_report (0xdd, 1, c_groups), re = s_report (0xee, 1, c_groups);
    assert (group_table_receive (t, 0xdd, &rd, 1500) == 1);
    assert (group_table_receive (t, 0xee, &re, 1500) == -1 && group_table_stats (t)->capped == 1);
    //  Forget, expire
    assert (group_table_forget (t, 0xdd) && !group_table_forget (t, 0xdd));
    assert (group_table_expire (t, 1300 + 9999, 10000) == 0);
    assert (group_table_expire (t, 1300 + 10000, 10000) == 1);    //  cc (bb has no group)
    assert (!group_table_heard (t, 0xcc) && group_table_heard (t, 0xbb));
    assert (group_table_expire (t, 1400 + 10000, 10000) == 0 && !group_table_heard (t, 0xbb));
    assert (group_table_groups (t, all, 4) == 2);       //  ours
    if (verbose)
        printf ("  group_table: %zu bytes per origin, %zu in all now\n", sizeof (s_origin_t), group_table_memory (t));
    group_table_destroy (&t);
    assert (t == NULL);
}
