/*  router_groups: groups on the bus (router_groups.h). The table is
    librouter's; this file decides who is told what and when, ranks each
    group's members by our routes, publishes group.members when that ranking
    changes, answers router.group and keeps bifrostctl's joins in a file.

    Who hears our report: every peer with a registry id that nat has up or
    that the route table reaches (not only neighbours: the report travels
    end to end in the peer's own session, so a node can only ever speak for
    itself). When: a peer that becomes reachable at once (with the request
    flag: it answers with its own), our groups changing (coalesced to one
    round per 200 ms), a request, and everyone every route_timeout / 4 with
    the dump. A reachable peer whose report we still lack (its session was
    not up yet, so crypto dropped ours) is asked again after 1 s, doubling
    up to 30 s. */
#include "router_groups.h"
#include "bus_log.h"
#include "bus_endpoint.h"
#include "bus_broker.h"
#include "bus_client.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MEMBERS_MAX   64      //  group.members' list

//  What we owe a peer
typedef struct {
    uint64_t id;
    bool reachable;
    bool owed;                  //  our report is due
    bool ask;                   //  ... with the request flag
    int64_t retry_at, retry_wait;       //  asking again while its report is missing
} s_peer_t;

//  group.members as last published for a group
typedef struct {
    group_entry_t group;
    bool local;
    uint32_t nearest;
    uint32_t count;
    group_member_t members [S_MEMBERS_MAX];
} s_pub_t;

struct _router_groups_t {
    bus_service_t *svc;
    router_links_t *links;
    group_table_t *table;
    int64_t route_timeout;
    s_peer_t *peers;
    size_t peers_count, peers_cap;
    s_pub_t *pub;               //  sorted by address
    size_t pub_count;
    bool changed;               //  our groups changed since the last round
    int64_t last_round;
    char path [BUS_PATH_MAX + 16];      //  the ctl joins' file ("" without a run directory)
    int fd;                     //  ... opened in setup (-1: none)
    group_msg_t msg;
    route_announce_t *out;
    router_groups_stats_t stats;
};

//  ---------------------------------------------------------------------------
//  Reports out

static s_peer_t *
s_peer (router_groups_t *self, uint64_t id, bool make)
{
    for (size_t i = 0; i < self->peers_count; i++)
        if (self->peers [i].id == id)
            return &self->peers [i];
    if (!make)
        return NULL;
    if (self->peers_count == self->peers_cap) {
        self->peers_cap = self->peers_cap ? 2 * self->peers_cap : 16;
        self->peers = (s_peer_t *) realloc (self->peers, self->peers_cap * sizeof *self->peers);
        assert (self->peers);
    }
    s_peer_t *p = &self->peers [self->peers_count++];
    memset (p, 0, sizeof *p);
    p->id = id;
    return p;
}

bool
router_groups_reachable (router_groups_t *self, const router_peer_t *peer)
{
    return peer && peer->registry_id
        && (peer->up || route_table_best (router_links_table (self->links), peer->id, NULL));
}

//  Our report to one peer, in route.announce for crypto to carry in its session
static void
s_send (router_groups_t *self, s_peer_t *state, uint8_t flags)
{
    uint64_t self_id = router_links_self (self->links);
    const router_peer_t *p = router_links_find_id (self->links, state->id);
    if (!self_id || !p)
        return;
    group_table_report (self->table, self_id, flags, &self->msg);
    self->out->index = p->index;
    self->out->announcement_size = (uint32_t) group_msg_encode (&self->msg, self->out->announcement,
                                                                sizeof self->out->announcement);
    assert (self->out->announcement_size);      //  the table holds only usable groups
    bus_service_publish (self->svc, &route_announce_schema, self->out);
    self->stats.sent++;
    state->owed = state->ask = false;
}

//  Every report owed, and the requests repeated to peers still unheard
static void
s_send_due (router_groups_t *self, int64_t now)
{
    for (size_t i = 0; i < self->peers_count; i++) {
        s_peer_t *p = &self->peers [i];
        if (!p->reachable)
            continue;
        bool heard = group_table_heard (self->table, p->id);
        if (p->owed)
            s_send (self, p, p->ask || !heard ? ROUTE_WIRE_GROUPS_REQUEST : 0);
        else
        if (!heard && now >= p->retry_at) {
            s_send (self, p, ROUTE_WIRE_GROUPS_REQUEST);
            p->retry_wait = p->retry_wait * 2 < ROUTER_GROUPS_RETRY_MAX ? p->retry_wait * 2 : ROUTER_GROUPS_RETRY_MAX;
            p->retry_at = now + p->retry_wait;
        }
    }
}

void
router_groups_tick (router_groups_t *self, int64_t now)
{
    if (self->changed && now - self->last_round >= ROUTER_GROUPS_ROUND_MS) {
        self->changed = false;
        self->last_round = now;
        for (size_t i = 0; i < self->peers_count; i++)
            self->peers [i].owed |= self->peers [i].reachable;
    }
    s_send_due (self, now);
}

void
router_groups_dump (router_groups_t *self, int64_t now)
{
    for (size_t i = 0; i < self->peers_count; i++)
        self->peers [i].owed |= self->peers [i].reachable;
    s_send_due (self, now);
}

//  Which peers are reachable now; one that just became so is owed our report
//  and asked for its own
static void
s_reachability (router_groups_t *self, int64_t now)
{
    if (!router_links_self (self->links))
        return;
    for (size_t i = 0; i < self->peers_count; i++)
        self->peers [i].reachable = false;
    for (size_t i = 0; i < router_links_count (self->links); i++) {
        const router_peer_t *p = router_links_at (self->links, i);
        if (!router_groups_reachable (self, p))
            continue;
        s_peer_t *state = s_peer (self, p->id, true);
        if (!state->reachable && !state->retry_wait) {
            //  new (retry_wait marks one that was reachable at the last pass)
            state->owed = state->ask = true;
            state->retry_wait = ROUTER_GROUPS_RETRY_MS;
            state->retry_at = now + ROUTER_GROUPS_RETRY_MS;
        }
        state->reachable = true;
    }
    //  Gone: forgotten, so it counts as new when it comes back
    for (size_t i = self->peers_count; i-- > 0; )
        if (!self->peers [i].reachable)
            self->peers [i] = self->peers [--self->peers_count];
}

//  ---------------------------------------------------------------------------
//  group.members

static bool
s_better (const router_member_t *a, const router_member_t *b)
{
    if (a->reachable != b->reachable)
        return a->reachable;
    if (a->reachable && a->metric != b->metric)
        return a->metric < b->metric;
    return a->id < b->id;
}

//  Ranks n member ids into out (at most max)
static void
s_rank (router_groups_t *self, const uint64_t *ids, size_t n, size_t stride, router_member_t *out, size_t max)
{
    size_t stored = 0;
    route_table_t *routes = router_links_table (self->links);
    for (size_t i = 0; i < n; i++) {
        uint64_t id = *(const uint64_t *) ((const uint8_t *) ids + i * stride);
        router_member_t m = { .id = id, .index = UINT32_MAX };
        const router_peer_t *p = router_links_find_id (self->links, id);
        if (p && p->registry_id)
            m.index = p->index;
        route_t route;
        if (route_table_best (routes, id, &route)) {
            m.reachable = true;
            m.metric = route.metric;
        }
        //  Insertion by rank (a group has few members)
        size_t at = stored;
        while (at > 0 && s_better (&m, &out [at - 1]))
            at--;
        if (at < max) {
            size_t tail = (stored < max ? stored : max - 1) - at;
            memmove (out + at + 1, out + at, tail * sizeof *out);
            out [at] = m;
            if (stored < max)
                stored++;
        }
    }
}

size_t
router_groups_members (router_groups_t *self, const uint8_t addr [GROUP_ADDR_SIZE], router_member_t *out, size_t max)
{
    uint64_t ids [S_MEMBERS_MAX * 4];
    size_t total = group_table_members (self->table, addr, ids, sizeof ids / sizeof ids [0]);
    size_t n = total < sizeof ids / sizeof ids [0] ? total : sizeof ids / sizeof ids [0];
    s_rank (self, ids, n, sizeof ids [0], out, max);
    return total;
}

//  Every group known, allocated (*count of them)
static group_entry_t *
s_all_groups (router_groups_t *self, size_t *count)
{
    group_entry_t one;
    size_t total = group_table_groups (self->table, &one, 1);
    group_entry_t *all = (group_entry_t *) calloc (total ? total : 1, sizeof *all);
    assert (all);
    *count = group_table_groups (self->table, all, total);
    assert (*count == total);
    return all;
}

//  One group's record from its run of pairs (ids at stride bytes apart)
static void
s_pub_fill (router_groups_t *self, const group_entry_t *g, const uint64_t *ids, size_t count, size_t stride,
            s_pub_t *pub)
{
    memset (pub, 0, sizeof *pub);
    pub->group = *g;
    pub->local = group_table_local (self->table, g->addr) != 0;
    pub->nearest = UINT32_MAX;
    router_member_t ranked [S_MEMBERS_MAX];
    size_t n = count < S_MEMBERS_MAX ? count : S_MEMBERS_MAX;
    s_rank (self, ids, count, stride, ranked, S_MEMBERS_MAX);
    for (size_t i = 0; i < n; i++) {
        if (ranked [i].index == UINT32_MAX)
            continue;           //  the data path works by index (route.next does the same)
        if (ranked [i].reachable && pub->nearest == UINT32_MAX)
            pub->nearest = ranked [i].index;
        group_member_t *m = &pub->members [pub->count++];
        m->index = ranked [i].index;
        m->id = ranked [i].id;
        m->metric = ranked [i].metric;
    }
}

//  What the data path acts on: not the metrics alone (RTT jitter would
//  publish every group every few seconds), only who and in which order
static bool
s_pub_same (const s_pub_t *a, const s_pub_t *b)
{
    if (a->group.kind != b->group.kind || a->local != b->local || a->nearest != b->nearest || a->count != b->count)
        return false;
    for (uint32_t i = 0; i < a->count; i++)
        if (a->members [i].index != b->members [i].index || a->members [i].id != b->members [i].id)
            return false;
    return true;
}

static void
s_publish (router_groups_t *self, const s_pub_t *pub)
{
    group_members_t *event = (group_members_t *) calloc (1, sizeof *event);
    assert (event);
    group_addr_format (pub->group.addr, event->group, sizeof event->group);
    event->anycast = pub->group.kind == ROUTE_WIRE_GROUP_ANYCAST;
    event->local = pub->local;
    event->nearest = pub->nearest;
    event->members_count = pub->count;
    memcpy (event->members, pub->members, pub->count * sizeof pub->members [0]);
    bus_service_publish (self->svc, &group_members_schema, event);
    free (event);
}

//  Compares every group's members with what was published and publishes the
//  changes (all: every group); a group no longer known is published empty
//  once. Both lists are sorted by address: one merge walk.
static void
s_sync_members (router_groups_t *self, bool all)
{
    //  Every group with its members: the peers' pairs sorted by group, merged
    //  with our own groups (sorted too)
    group_pair_t *pairs;
    size_t npairs = group_table_pairs (self->table, &pairs);
    size_t nown = group_table_own (self->table, NULL, 0);
    group_entry_t *own = (group_entry_t *) calloc (nown + 1, sizeof *own);
    //  (distinct groups: at most npairs + nown, usually far fewer)
    size_t distinct = nown;
    for (size_t k = 0; k < npairs; k++)
        distinct += k == 0 || memcmp (pairs [k].group.addr, pairs [k - 1].group.addr, GROUP_ADDR_SIZE) != 0;
    s_pub_t *fresh = (s_pub_t *) calloc (distinct + 1, sizeof *fresh);
    assert (own && fresh);
    group_table_own (self->table, own, nown);
    size_t count = 0, p = 0, o = 0;
    while (p < npairs || o < nown) {
        int cmp = p == npairs ? 1 : o == nown ? -1 : memcmp (pairs [p].group.addr, own [o].addr, GROUP_ADDR_SIZE);
        const group_entry_t *g = cmp <= 0 ? &pairs [p].group : &own [o];
        size_t run = 0;
        while (cmp <= 0 && p + run < npairs && memcmp (pairs [p + run].group.addr, g->addr, GROUP_ADDR_SIZE) == 0)
            run++;
        s_pub_fill (self, g, run ? &pairs [p].id : NULL, run, sizeof *pairs, &fresh [count++]);
        p += run;
        o += cmp >= 0;
    }
    free (pairs);
    free (own);
    size_t i = 0, j = 0;
    while (i < self->pub_count || j < count) {
        int cmp = i == self->pub_count ? 1 : j == count ? -1
                : memcmp (self->pub [i].group.addr, fresh [j].group.addr, GROUP_ADDR_SIZE);
        if (cmp < 0) {
            s_pub_t gone = self->pub [i++];
            gone.local = false;
            gone.count = 0;
            gone.nearest = UINT32_MAX;
            s_publish (self, &gone);
        }
        else
        if (cmp > 0)
            s_publish (self, &fresh [j++]);
        else {
            if (all || !s_pub_same (&self->pub [i], &fresh [j]))
                s_publish (self, &fresh [j]);
            i++, j++;
        }
    }
    free (self->pub);
    self->pub = fresh;
    self->pub_count = count;
}

void
router_groups_sync (router_groups_t *self, bool all, int64_t now)
{
    s_reachability (self, now);
    s_sync_members (self, all);
}

//  ---------------------------------------------------------------------------
//  Reports in

bool
router_groups_heard (router_groups_t *self, const router_peer_t *from, const uint8_t *data, size_t size, int64_t now)
{
    group_msg_err_t rc = group_msg_decode (data, size, &self->msg);
    if (rc != GROUP_MSG_OK) {
        self->stats.codec [rc]++;
        bus_debug ("group report from %s: refused, %s", from->name, group_msg_err_name (rc));
        return false;
    }
    bool request = self->msg.flags & ROUTE_WIRE_GROUPS_REQUEST;
    unsigned count = self->msg.count;           //  (msg is ours again once we answer)
    int taken = group_table_receive (self->table, from->id, &self->msg, now);
    if (taken < 0)
        return false;
    self->stats.taken++;
    if (request) {
        //  It asked (it just started, or we just became reachable to it): at once
        s_reachability (self, now);
        s_peer_t *state = s_peer (self, from->id, false);
        if (state && state->reachable)
            s_send (self, state, 0);
    }
    if (taken > 0) {
        bus_debug ("group report from %s: %u groups", from->name, count);
        s_sync_members (self, false);
    }
    return request;
}

void
router_groups_expire (router_groups_t *self, int64_t now)
{
    if (group_table_expire (self->table, now, self->route_timeout))
        s_sync_members (self, false);
}

void
router_groups_forget (router_groups_t *self, uint64_t id, int64_t now)
{
    if (group_table_forget (self->table, id))
        s_sync_members (self, false);
}

//  ---------------------------------------------------------------------------
//  Our memberships: the device, bifrostctl (kept in a file), the config

//  The ctl joins, one address a line, padded with empty lines to the block's
//  size and written whole at offset 0 (router_groups.h: why not a rename)
static void
s_save (router_groups_t *self)
{
    if (self->fd < 0)
        return;
    size_t n = group_table_own (self->table, NULL, 0);
    group_entry_t *own = (group_entry_t *) calloc (n + 1, sizeof *own);
    char *block = (char *) malloc (ROUTER_GROUPS_FILE_SIZE);
    assert (own && block);
    group_table_own (self->table, own, n);
    memset (block, '\n', ROUTER_GROUPS_FILE_SIZE);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(group_table_local (self->table, own [i].addr) & GROUP_SOURCE_CTL))
            continue;
        char text [GROUP_ADDR_TEXT];
        group_addr_format (own [i].addr, text, sizeof text);
        size_t len = strlen (text);
        assert (at + len + 1 <= ROUTER_GROUPS_FILE_SIZE);   //  ROUTER_GROUPS_CTL_MAX lines fit
        memcpy (block + at, text, len);
        at += len + 1;
    }
    if (lseek (self->fd, 0, SEEK_SET) != 0
    ||  write (self->fd, block, ROUTER_GROUPS_FILE_SIZE) != ROUTER_GROUPS_FILE_SIZE)
        bus_warn ("cannot keep the groups joined with bifrostctl in %s: %s (a restarted router will not "
                  "join them again)", self->path, strerror (errno));
    free (block);
    free (own);
}

static void
s_load (router_groups_t *self)
{
    char *block = (char *) calloc (1, ROUTER_GROUPS_FILE_SIZE + 1);
    assert (block);
    ssize_t size = self->fd >= 0 ? read (self->fd, block, ROUTER_GROUPS_FILE_SIZE) : -1;
    size_t joined = 0;
    for (char *line = block, *next; size > 0 && line && *line; line = next) {
        next = strchr (line, '\n');
        if (next)
            *next++ = 0;
        uint8_t addr [GROUP_ADDR_SIZE], kind;
        char err [200];
        if (!*line)
            continue;
        if (group_addr_parse (line, addr, &kind, err, sizeof err))
            bus_warn ("%s: %s, skipped", self->path, err);
        else {
            group_table_join (self->table, addr, GROUP_SOURCE_CTL);
            joined++;
        }
    }
    free (block);
    if (joined)
        bus_info ("%zu group(s) joined with bifrostctl joined again (from %s)", joined, self->path);
}

//  device.groups: the groups programs joined, whole each time
static void
s_on_device_groups (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    router_groups_t *self = (router_groups_t *) arg;
    device_groups_t *msg = (device_groups_t *) calloc (1, sizeof *msg);
    group_entry_t *list = (group_entry_t *) calloc (sizeof msg->groups / sizeof msg->groups [0], sizeof *list);
    assert (msg && list);
    char err [200];
    if (bus_envelope_get_msg (env, &device_groups_schema, msg, err, sizeof err))
        bus_warn ("device.groups: %s", err);
    else {
        size_t n = 0;
        for (uint32_t i = 0; i < msg->groups_count; i++) {
            if (group_addr_parse (msg->groups [i], list [n].addr, &list [n].kind, err, sizeof err))
                bus_debug ("device.groups: %s, skipped", err);
            else
            if (list [n].kind != ROUTE_WIRE_GROUP_MULTICAST)
                bus_debug ("device.groups: %s is not multicast, skipped", msg->groups [i]);
            else
                n++;
        }
        if (group_table_set (self->table, GROUP_SOURCE_DEVICE, list, n)) {
            bus_info ("programs on this node are members of %zu multicast group(s)", n);
            self->changed = true;
            s_sync_members (self, false);
        }
    }
    free (list);
    free (msg);
}

static void
s_reply (router_groups_t *self, bus_envelope_t *env)
{
    router_group_reply_t *reply = (router_group_reply_t *) calloc (1, sizeof *reply);
    assert (reply);
    size_t count;
    group_entry_t *groups = s_all_groups (self, &count);
    reply->total = (uint32_t) count;
    const size_t rows = sizeof reply->groups / sizeof reply->groups [0];
    const size_t names = sizeof reply->groups [0].members / sizeof reply->groups [0].members [0];
    router_member_t ranked [S_MEMBERS_MAX];
    for (size_t i = 0; i < count && i < rows; i++) {
        router_group_info_t *row = &reply->groups [reply->groups_count++];
        group_addr_format (groups [i].addr, row->group, sizeof row->group);
        row->anycast = groups [i].kind == ROUTE_WIRE_GROUP_ANYCAST;
        unsigned local = group_table_local (self->table, groups [i].addr);
        snprintf (row->local, sizeof row->local, "%s%s%s%s%s",
                  local & GROUP_SOURCE_DEVICE ? "device" : "",
                  (local & GROUP_SOURCE_DEVICE) && (local & (GROUP_SOURCE_CTL | GROUP_SOURCE_CONFIG)) ? "," : "",
                  local & GROUP_SOURCE_CTL ? "ctl" : "",
                  (local & GROUP_SOURCE_CTL) && (local & GROUP_SOURCE_CONFIG) ? "," : "",
                  local & GROUP_SOURCE_CONFIG ? "config" : "");
        size_t n = router_groups_members (self, groups [i].addr, ranked, S_MEMBERS_MAX);
        n = n < S_MEMBERS_MAX ? n : S_MEMBERS_MAX;
        for (size_t k = 0; k < n && row->members_count < names; k++)
            router_links_name (self->links, ranked [k].id, row->members [row->members_count++], sizeof row->members [0]);
        if (n && ranked [0].reachable)
            router_links_name (self->links, ranked [0].id, row->nearest, sizeof row->nearest);
    }
    bus_service_reply (self->svc, env, &router_group_reply_schema, reply);
    free (groups);
    free (reply);
}

static size_t
s_ctl_count (router_groups_t *self)
{
    size_t n = group_table_own (self->table, NULL, 0), count = 0;
    group_entry_t *own = (group_entry_t *) calloc (n + 1, sizeof *own);
    assert (own);
    group_table_own (self->table, own, n);
    for (size_t i = 0; i < n; i++)
        count += (group_table_local (self->table, own [i].addr) & GROUP_SOURCE_CTL) != 0;
    free (own);
    return count;
}

//  router.group: join, leave (ours, bifrostctl's), list
static void
s_on_group (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    router_groups_t *self = (router_groups_t *) arg;
    router_group_t request;
    char err [300];
    if (bus_envelope_get_msg (env, &router_group_schema, &request, err, sizeof err)) {
        bus_service_reply_error (svc, env, 400, "%s", err);
        return;
    }
    bool join = streq (request.action, "join"), leave = streq (request.action, "leave");
    if (!join && !leave && !streq (request.action, "list")) {
        bus_service_reply_error (svc, env, 400, "unknown action '%s': join, leave or list", request.action);
        return;
    }
    if (join || leave) {
        uint8_t addr [GROUP_ADDR_SIZE], kind;
        if (group_addr_parse (request.group, addr, &kind, err, sizeof err)) {
            bus_service_reply_error (svc, env, 400, "%s", err);
            return;
        }
        char text [GROUP_ADDR_TEXT];
        group_addr_format (addr, text, sizeof text);
        unsigned held = group_table_local (self->table, addr);
        if (leave && !(held & GROUP_SOURCE_CTL)) {
            bus_service_reply_error (svc, env, 404, "%s was not joined with bifrostctl group join%s", text,
                                     held & GROUP_SOURCE_CONFIG ? " (routing.groups of the config joins it)"
                                     : held & GROUP_SOURCE_DEVICE ? " (a program on this node joined it)" : "");
            return;
        }
        if (join && !(held & GROUP_SOURCE_CTL) && s_ctl_count (self) >= ROUTER_GROUPS_CTL_MAX) {
            bus_service_reply_error (svc, env, 400, "%s: at most %d groups joined with bifrostctl", text,
                                     ROUTER_GROUPS_CTL_MAX);
            return;
        }
        bool changed = join ? group_table_join (self->table, addr, GROUP_SOURCE_CTL)
                            : group_table_leave (self->table, addr, GROUP_SOURCE_CTL);
        if (join != !!(held & GROUP_SOURCE_CTL)) {
            bus_info ("bifrostctl: %s %s %s", join ? "joined" : "left", kind == ROUTE_WIRE_GROUP_ANYCAST
                      ? "anycast address" : "multicast group", text);
            s_save (self);
        }
        if (changed) {
            self->changed = true;
            s_sync_members (self, false);
        }
    }
    s_reply (self, env);
}

//  ---------------------------------------------------------------------------

router_groups_t *
router_groups_new (bus_service_t *svc, router_links_t *links, const group_entry_t *config, size_t config_count,
                   int64_t route_timeout)
{
    router_groups_t *self = (router_groups_t *) calloc (1, sizeof *self);
    assert (self);
    self->svc = svc;
    self->links = links;
    self->route_timeout = route_timeout;
    self->fd = -1;
    self->table = group_table_new (0);
    self->out = (route_announce_t *) calloc (1, sizeof *self->out);
    assert (self->out);
    self->last_round = INT64_MIN / 2;
    for (size_t i = 0; i < config_count; i++)
        group_table_join (self->table, config [i].addr, GROUP_SOURCE_CONFIG);
    //  The service's own directory: made by the runtime (before the sandbox);
    //  made here for a test's bus
    const char *run_dir = bus_service_run_dir (svc);
    if (run_dir && *run_dir) {
        char dir [BUS_PATH_MAX];
        if ((size_t) snprintf (dir, sizeof dir, "%s/router", run_dir) < sizeof dir) {
            if (mkdir (dir, 0700) && errno != EEXIST)
                bus_warn ("%s: %s", dir, strerror (errno));
            if ((size_t) snprintf (self->path, sizeof self->path, "%.*s/%s", (int) (sizeof dir - 1), dir,
                                   ROUTER_GROUPS_FILE) < sizeof self->path) {
                self->fd = open (self->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
                if (self->fd < 0)
                    bus_warn ("%s: %s: the groups joined with bifrostctl will not outlive the router",
                              self->path, strerror (errno));
            }
            s_load (self);
        }
    }
    self->changed = group_table_own (self->table, NULL, 0) > 0;
    bus_service_subscribe (svc, "device.groups", s_on_device_groups, self);
    bus_service_handle (svc, "router.group", s_on_group, self);
    return self;
}

void
router_groups_destroy (router_groups_t **self_p)
{
    assert (self_p);
    router_groups_t *self = *self_p;
    if (!self)
        return;
    if (self->fd >= 0)
        close (self->fd);
    group_table_destroy (&self->table);
    free (self->peers);
    free (self->pub);
    free (self->out);
    free (self);
    *self_p = NULL;
}

const router_groups_stats_t *router_groups_stats (router_groups_t *self) { return &self->stats; }
group_table_t *router_groups_table (router_groups_t *self) { return self->table; }
