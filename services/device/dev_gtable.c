/*  dev_gtable: the router's groups for the packet path (see dev_gtable.h). */
#include "dev_gtable.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct _dev_gtable_t {
    dev_gentry_t *entries;      //  sorted by (family, addr)
    size_t count, capacity;
    size_t anycast_nearest;     //  entries that route unicast to a peer
};

dev_gtable_t *
dev_gtable_new (size_t capacity)
{
    dev_gtable_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->entries = calloc (capacity ? capacity : 1, sizeof *self->entries);
    if (!self->entries) {
        free (self);
        return NULL;
    }
    self->capacity = capacity;
    return self;
}

void
dev_gtable_destroy (dev_gtable_t **self_p)
{
    if (*self_p) {
        free ((*self_p)->entries);
        free (*self_p);
        *self_p = NULL;
    }
}

int
dev_gtable_parse (const char *text, bool anycast, dev_gentry_t *e)
{
    memset (e, 0, sizeof *e);
    e->nearest = DEV_GTABLE_NO_PEER;
    if (inet_pton (AF_INET, text, e->addr) == 1)
        e->family = AF_INET;
    else
    if (inet_pton (AF_INET6, text, e->addr) == 1)
        e->family = AF_INET6;
    else
        return -1;
    bool multicast = e->family == AF_INET ? (e->addr [0] & 0xf0) == 0xe0 : e->addr [0] == 0xff;
    e->anycast = anycast;
    return multicast == anycast ? -1 : 0;
}

static int
s_cmp (int family, const uint8_t *addr, const dev_gentry_t *e)
{
    if (family != e->family)
        return family < e->family ? -1 : 1;
    return memcmp (addr, e->addr, family == AF_INET ? 4 : 16);
}

static dev_gentry_t *
s_find (dev_gtable_t *self, int family, const uint8_t *addr, size_t *at)
{
    size_t lo = 0, hi = self->count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = s_cmp (family, addr, &self->entries [mid]);
        if (c == 0) {
            *at = mid;
            return &self->entries [mid];
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    *at = lo;
    return NULL;
}

static bool
s_routes_unicast (const dev_gentry_t *e)
{
    return e->anycast && e->nearest != DEV_GTABLE_NO_PEER;
}

static bool
s_gone (const dev_gentry_t *e)
{
    return e->members == 0 && !e->local;
}

static void
s_remove (dev_gtable_t *self, size_t at)
{
    if (s_routes_unicast (&self->entries [at]))
        self->anycast_nearest--;
    memmove (self->entries + at, self->entries + at + 1, (self->count - at - 1) * sizeof *self->entries);
    self->count--;
}

int
dev_gtable_set (dev_gtable_t *self, const dev_gentry_t *e, dev_gentry_t *old)
{
    size_t at;
    dev_gentry_t *found = s_find (self, e->family, e->addr, &at);
    memset (old, 0, sizeof *old);
    old->nearest = DEV_GTABLE_NO_PEER;
    if (found) {
        *old = *found;
        //  An anycast address that is gone is forgotten (unicast routes as
        //  before); a multicast group that is gone stays, known empty
        if (e->anycast && s_gone (e)) {
            s_remove (self, at);
            return 0;
        }
        if (s_routes_unicast (found))
            self->anycast_nearest--;
        *found = *e;
        if (s_routes_unicast (found))
            self->anycast_nearest++;
        return 0;
    }
    if (e->anycast && s_gone (e))
        return 0;
    if (self->count == self->capacity) {
        //  Room from a group known to be gone
        size_t i = 0;
        while (i < self->count && !s_gone (&self->entries [i]))
            i++;
        if (i == self->count)
            return -1;
        s_remove (self, i);
        s_find (self, e->family, e->addr, &at);
    }
    memmove (self->entries + at + 1, self->entries + at, (self->count - at) * sizeof *self->entries);
    self->entries [at] = *e;
    self->count++;
    if (s_routes_unicast (e))
        self->anycast_nearest++;
    return 0;
}

void
dev_gtable_clear (dev_gtable_t *self, void (*fn) (const dev_gentry_t *e, void *arg), void *arg)
{
    for (size_t i = 0; i < self->count; i++)
        if (fn && self->entries [i].anycast && self->entries [i].local)
            fn (&self->entries [i], arg);
    self->count = 0;
    self->anycast_nearest = 0;
}

//  Broadcast, 224.0.0.0/24, ff02::/16: link-local, always flooded
static bool
s_link_local (int family, const uint8_t *dst)
{
    if (family == AF_INET)
        return (dst [0] == 224 && dst [1] == 0 && dst [2] == 0) || memcmp (dst, "\xff\xff\xff\xff", 4) == 0;
    return dst [0] == 0xff && dst [1] == 0x02;
}

dev_group_route_t
dev_gtable_route (dev_gtable_t *self, int family, const uint8_t *dst, uint32_t *peer)
{
    if (self->count == 0 || s_link_local (family, dst))
        return DEV_GROUP_UNKNOWN;
    size_t at;
    const dev_gentry_t *e = s_find (self, family, dst, &at);
    if (!e)
        return DEV_GROUP_UNKNOWN;
    if (e->anycast) {
        if (e->nearest == DEV_GTABLE_NO_PEER)
            return DEV_GROUP_UNKNOWN;
        *peer = e->nearest;
        return DEV_GROUP_NEAREST;
    }
    return e->members ? DEV_GROUP_FLOOD : DEV_GROUP_EMPTY;
}

bool
dev_gtable_has_anycast (dev_gtable_t *self)
{
    return self->anycast_nearest > 0;
}

size_t
dev_gtable_count (dev_gtable_t *self)
{
    return self->count;
}

//  ---------------------------------------------------------------------------
//  Self test

static int s_test_removed;

static void
s_test_on_clear (const dev_gentry_t *e, void *arg)
{
    assert (e->anycast && e->local);
    s_test_removed++;
}

static dev_group_route_t
s_test_route (dev_gtable_t *t, const char *text, uint32_t *peer)
{
    uint8_t addr [16];
    int family = strchr (text, ':') ? AF_INET6 : AF_INET;
    assert (inet_pton (family, text, addr) == 1);
    return dev_gtable_route (t, family, addr, peer);
}

void
dev_gtable_test (bool verbose)
{
    dev_gtable_t *t = dev_gtable_new (3);
    assert (t);
    dev_gentry_t e, old;
    uint32_t peer = 0;
    //  Parse: anycast must be unicast, multicast must not be flagged anycast
    assert (dev_gtable_parse ("239.1.2.3", false, &e) == 0 && e.family == AF_INET);
    assert (dev_gtable_parse ("239.1.2.3", true, &e) == -1);
    assert (dev_gtable_parse ("10.100.9.9", false, &e) == -1);
    assert (dev_gtable_parse ("fd00::99", true, &e) == 0 && e.family == AF_INET6);
    assert (dev_gtable_parse ("not-an-address", false, &e) == -1);

    //  Unknown groups (and an empty table) route as before
    assert (s_test_route (t, "239.1.2.3", &peer) == DEV_GROUP_UNKNOWN);
    //  A group with members floods; the router then says it has none: dropped
    dev_gtable_parse ("239.1.2.3", false, &e);
    e.members = 2;
    assert (dev_gtable_set (t, &e, &old) == 0 && old.members == 0);
    assert (s_test_route (t, "239.1.2.3", &peer) == DEV_GROUP_FLOOD);
    e.members = 0;
    assert (dev_gtable_set (t, &e, &old) == 0 && old.members == 2);
    assert (s_test_route (t, "239.1.2.3", &peer) == DEV_GROUP_EMPTY);
    //  Link-local groups are never dropped
    dev_gtable_parse ("224.0.0.251", false, &e);
    assert (dev_gtable_set (t, &e, &old) == 0);
    assert (s_test_route (t, "224.0.0.251", &peer) == DEV_GROUP_UNKNOWN);
    //  Anycast: local and nearest peer 4; unicast lookups on
    assert (!dev_gtable_has_anycast (t));
    dev_gtable_parse ("fd00::99", true, &e);
    e.local = true;
    e.nearest = 4;
    e.members = 1;
    assert (dev_gtable_set (t, &e, &old) == 0 && !old.local);
    assert (dev_gtable_has_anycast (t));
    assert (s_test_route (t, "fd00::99", &peer) == DEV_GROUP_NEAREST && peer == 4);
    //  Full (3): a gone multicast group makes room for a new one
    dev_gentry_t any4;
    dev_gtable_parse ("10.100.0.200", true, &any4);
    any4.nearest = 7;
    any4.members = 1;
    assert (dev_gtable_set (t, &any4, &old) == 0);
    assert (dev_gtable_count (t) == 3);
    assert (s_test_route (t, "239.1.2.3", &peer) == DEV_GROUP_EMPTY);        //  224.0.0.251 went
    assert (s_test_route (t, "10.100.0.200", &peer) == DEV_GROUP_NEAREST && peer == 7);
    dev_gtable_parse ("239.9.9.9", false, &e);
    e.members = 1;
    assert (dev_gtable_set (t, &e, &old) == 0);
    assert (s_test_route (t, "239.1.2.3", &peer) == DEV_GROUP_UNKNOWN);      //  evicted now
    dev_gtable_parse ("239.9.9.8", false, &e);
    e.members = 1;
    assert (dev_gtable_set (t, &e, &old) == -1);       //  nothing gone: stays unknown
    //  The nearest member goes: the address routes by prefix again
    any4.nearest = DEV_GTABLE_NO_PEER;
    any4.members = 0;
    assert (dev_gtable_set (t, &any4, &old) == 0 && old.nearest == 7);
    assert (s_test_route (t, "10.100.0.200", &peer) == DEV_GROUP_UNKNOWN);
    assert (dev_gtable_count (t) == 2 && dev_gtable_has_anycast (t));
    //  The router goes away: everything forgotten, local anycast handed back
    dev_gtable_clear (t, s_test_on_clear, NULL);
    assert (s_test_removed == 1 && dev_gtable_count (t) == 0 && !dev_gtable_has_anycast (t));
    assert (s_test_route (t, "fd00::99", &peer) == DEV_GROUP_UNKNOWN);
    if (verbose)
        printf ("  group table: empty dropped, unknown flooded, anycast to the nearest\n");
    dev_gtable_destroy (&t);
}
