/*  group_table: one node's view of the groups across the mesh (docs/groups.md).
    Pure logic like route_table: no socket, no clock of its own (calls that
    depend on time take `now` in ms), so a test can drive it by hand.

    It holds the node's own memberships, each with the sources that made it
    (the device's IGMP/MLD view, bifrostctl, the config: a group stays joined
    while any source holds it), and each peer's last group report (seqno for
    freshness, when it was heard for expiry). It writes our own report and
    answers which groups exist and which peers are members of one. Who is
    nearest is the router's to say: it knows the routes. */
#ifndef GROUP_TABLE_H_INCLUDED
#define GROUP_TABLE_H_INCLUDED

#include "group_msg.h"

//  Why this node is a member (bits)
#define GROUP_SOURCE_DEVICE     1       //  a program joined (device.groups)
#define GROUP_SOURCE_CTL        2       //  bifrostctl group join
#define GROUP_SOURCE_CONFIG     4       //  routing.groups

typedef struct _group_table_t group_table_t;

typedef struct {
    uint64_t reports;           //  reports taken
    uint64_t stale;             //  not newer than the last from that origin
    uint64_t impostor;          //  origin is not the peer whose session carried it
    uint64_t capped;            //  from a new origin past max_origins, or own groups past max_groups
    uint64_t expired;           //  origins forgotten after the timeout
} group_stats_t;

//  A table that keeps the reports of at most max_origins peers (0: 4096)
group_table_t *group_table_new (size_t max_origins);
void group_table_destroy (group_table_t **self_p);

//  Our memberships. join / leave one source's hold on a group (addr must be
//  a usable group address, group_addr_kind); set replaces everything one
//  source holds (the device's list, whole each time). Each returns true when
//  the set of groups we are a member of changed (what a report says).
bool group_table_join (group_table_t *self, const uint8_t addr [GROUP_ADDR_SIZE], unsigned source);
bool group_table_leave (group_table_t *self, const uint8_t addr [GROUP_ADDR_SIZE], unsigned source);
bool group_table_set (group_table_t *self, unsigned source, const group_entry_t *groups, size_t count);

//  The sources holding our membership of addr (0: not a member)
unsigned group_table_local (group_table_t *self, const uint8_t addr [GROUP_ADDR_SIZE]);

//  Our groups, sorted by address (at most max; returns how many there are)
size_t group_table_own (group_table_t *self, group_entry_t *groups, size_t max);

//  Our report for a peer: our groups (the first max_groups by address), the
//  next seqno (from our clock in microseconds at start), flags as given
void group_table_report (group_table_t *self, uint64_t origin, uint8_t flags, group_msg_t *msg);

//  A report (decoded by group_msg_decode) that peer `from`'s session carried.
//  1: taken and the peer's groups changed; 0: taken, the same groups; -1:
//  refused (origin is not `from`: impostor; not newer: stale; capped)
int group_table_receive (group_table_t *self, uint64_t from, const group_msg_t *msg, int64_t now);

//  A peer's groups forgotten (it left the network); true when it had a report
bool group_table_forget (group_table_t *self, uint64_t id);

//  Origins not heard for timeout ms are forgotten; returns how many had groups
size_t group_table_expire (group_table_t *self, int64_t now, int64_t timeout);

//  Every group known (ours and the peers'), sorted by address, each once (at
//  most max; returns how many there are)
size_t group_table_groups (group_table_t *self, group_entry_t *groups, size_t max);

//  One (group, member) pair of the peers' reports
typedef struct {
    group_entry_t group;
    uint64_t id;
} group_pair_t;

//  Every pair, sorted by address then member id, in *pairs (allocated: the
//  caller frees it); returns how many. A pass over every group's members is
//  one sort instead of a search of every report per group (1,000 peers with
//  8 groups each: 2.5 ms a pass against 15 ms; docs/groups.md)
size_t group_table_pairs (group_table_t *self, group_pair_t **pairs);

//  The peers that are members of addr, by id (at most max; returns how many)
size_t group_table_members (group_table_t *self, const uint8_t addr [GROUP_ADDR_SIZE], uint64_t *ids, size_t max);

//  Whether origin's report was heard (a peer we know the groups of)
bool group_table_heard (group_table_t *self, uint64_t origin);

const group_stats_t *group_table_stats (group_table_t *self);

//  Bytes allocated (structures, not the allocator's overhead)
size_t group_table_memory (group_table_t *self);

void group_table_test (bool verbose);

#endif
