/*  dev_groups: the joined groups with their expiry (see dev_groups.h). A sorted
    array: tens of groups, changed a few times a minute; the order is the
    published order. */
#include "dev_groups.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct {
    uint8_t key [17];           //  family byte (4 or 6) then the address: the sort key
    uint64_t until;             //  held until this time
} s_group_t;

struct _dev_groups_t {
    s_group_t *groups;
    size_t count, capacity;
    uint64_t hold_ms;
    dev_groups_stats_t stats;
};

dev_groups_t *
dev_groups_new (size_t capacity, uint64_t hold_ms)
{
    dev_groups_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->groups = calloc (capacity ? capacity : 1, sizeof *self->groups);
    if (!self->groups) {
        free (self);
        return NULL;
    }
    self->capacity = capacity;
    self->hold_ms = hold_ms;
    return self;
}

void
dev_groups_destroy (dev_groups_t **self_p)
{
    if (*self_p) {
        free ((*self_p)->groups);
        free (*self_p);
        *self_p = NULL;
    }
}

static void
s_key (const dev_igmp_record_t *r, uint8_t key [17])
{
    memset (key, 0, 17);
    key [0] = r->family == AF_INET ? 4 : 6;
    memcpy (key + 1, r->group, r->family == AF_INET ? 4 : 16);
}

//  All hosts (224.0.0.1) and all nodes (ff02::1): everyone is a member
static bool
s_everyone (const uint8_t key [17])
{
    static const uint8_t all4 [17] = { 4, 224, 0, 0, 1 };
    static const uint8_t all6 [17] = { 6, 0xff, 0x02, [16] = 1 };
    return memcmp (key, all4, 17) == 0 || memcmp (key, all6, 17) == 0;
}

//  Index of key, or of where it would go (*found false)
static size_t
s_find (dev_groups_t *self, const uint8_t key [17], bool *found)
{
    size_t lo = 0, hi = self->count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = memcmp (self->groups [mid].key, key, 17);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

bool
dev_groups_apply (dev_groups_t *self, const dev_igmp_msg_t *msg, uint64_t now_ms)
{
    bool changed = false;
    if (msg->kind != DEV_IGMP_REPORT)
        return false;
    for (size_t i = 0; i < msg->count; i++) {
        uint8_t key [17];
        s_key (&msg->records [i], key);
        if (s_everyone (key))
            continue;
        bool found;
        size_t at = s_find (self, key, &found);
        if (msg->records [i].join) {
            if (!found) {
                if (self->count == self->capacity) {
                    self->stats.full++;
                    continue;
                }
                memmove (self->groups + at + 1, self->groups + at, (self->count - at) * sizeof *self->groups);
                memcpy (self->groups [at].key, key, 17);
                self->count++;
                changed = true;
            }
            self->groups [at].until = now_ms + self->hold_ms;
            self->stats.joins++;
        }
        else
        if (found) {
            memmove (self->groups + at, self->groups + at + 1, (self->count - at - 1) * sizeof *self->groups);
            self->count--;
            self->stats.leaves++;
            changed = true;
        }
    }
    return changed;
}

bool
dev_groups_expire (dev_groups_t *self, uint64_t now_ms)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->count; i++) {
        if (now_ms > self->groups [i].until)
            self->stats.expired++;
        else
            self->groups [kept++] = self->groups [i];
    }
    bool changed = kept != self->count;
    self->count = kept;
    return changed;
}

bool
dev_groups_clear (dev_groups_t *self)
{
    bool changed = self->count > 0;
    self->count = 0;
    return changed;
}

size_t
dev_groups_count (dev_groups_t *self)
{
    return self->count;
}

void
dev_groups_text (dev_groups_t *self, size_t i, char *text)
{
    assert (i < self->count);
    const uint8_t *key = self->groups [i].key;
    if (!inet_ntop (key [0] == 4 ? AF_INET : AF_INET6, key + 1, text, DEV_GROUPS_TEXT))
        snprintf (text, DEV_GROUPS_TEXT, "?");
}

const dev_groups_stats_t *
dev_groups_stats (dev_groups_t *self)
{
    return &self->stats;
}

//  ---------------------------------------------------------------------------
//  Self test

static void
s_test_record (dev_igmp_msg_t *msg, const char *group, bool join)
{
    dev_igmp_record_t *r = &msg->records [msg->count++];
    memset (r, 0, sizeof *r);
    r->family = strchr (group, ':') ? AF_INET6 : AF_INET;
    assert (inet_pton (r->family, group, r->group) == 1);
    r->join = join;
    msg->kind = DEV_IGMP_REPORT;
}

//  The set as one line "a b c"
static void
s_test_list (dev_groups_t *self, char *out, size_t size)
{
    *out = 0;
    for (size_t i = 0; i < dev_groups_count (self); i++) {
        char text [DEV_GROUPS_TEXT];
        dev_groups_text (self, i, text);
        snprintf (out + strlen (out), size - strlen (out), "%s%s", i ? " " : "", text);
    }
}

void
dev_groups_test (bool verbose)
{
    dev_groups_t *set = dev_groups_new (4, 1000);
    assert (set);
    dev_igmp_msg_t msg = { .kind = DEV_IGMP_REPORT };
    char list [300];
    //  Joins, in any order, come out sorted; all hosts/nodes are not kept
    s_test_record (&msg, "ff15::1234", true);
    s_test_record (&msg, "239.1.2.3", true);
    s_test_record (&msg, "224.0.0.1", true);
    s_test_record (&msg, "ff02::1", true);
    s_test_record (&msg, "224.0.0.251", true);
    assert (dev_groups_apply (set, &msg, 0));
    s_test_list (set, list, sizeof list);
    if (verbose)
        printf ("  groups: %s\n", list);
    assert (strcmp (list, "224.0.0.251 239.1.2.3 ff15::1234") == 0);
    //  The same report again: a refresh, no change
    assert (!dev_groups_apply (set, &msg, 600));
    //  A leave takes one off; a leave of a group not held changes nothing
    msg.count = 0;
    s_test_record (&msg, "224.0.0.251", false);
    assert (dev_groups_apply (set, &msg, 700));
    assert (!dev_groups_apply (set, &msg, 700));
    assert (dev_groups_stats (set)->leaves == 1);
    //  Expiry: 239.1.2.3 refreshed at 800, ff15::1234 last at 600
    msg.count = 0;
    s_test_record (&msg, "239.1.2.3", true);
    assert (!dev_groups_apply (set, &msg, 800));
    assert (!dev_groups_expire (set, 1600));
    assert (dev_groups_expire (set, 1601));
    s_test_list (set, list, sizeof list);
    assert (strcmp (list, "239.1.2.3") == 0);
    assert (dev_groups_expire (set, 1801) && dev_groups_count (set) == 0);
    assert (dev_groups_stats (set)->expired == 2);
    //  Full: the fifth group is counted, not kept
    msg.count = 0;
    for (int i = 0; i < 5; i++) {
        char g [20];
        snprintf (g, sizeof g, "239.0.0.%d", 10 - i);
        s_test_record (&msg, g, true);
    }
    assert (dev_groups_apply (set, &msg, 2000));
    assert (dev_groups_count (set) == 4 && dev_groups_stats (set)->full == 1);
    s_test_list (set, list, sizeof list);
    assert (strcmp (list, "239.0.0.7 239.0.0.8 239.0.0.9 239.0.0.10") == 0);
    //  Not a report: nothing applies
    msg.kind = DEV_IGMP_QUERY;
    assert (!dev_groups_apply (set, &msg, 2000));
    assert (dev_groups_clear (set) && !dev_groups_clear (set));
    dev_groups_destroy (&set);
    assert (set == NULL);
}
