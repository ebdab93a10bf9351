/*  router_groups: the router's half of multicast groups and anycast
    (docs/groups.md, schemas/group.def). It keeps the node's group table
    (librouter/group_table.h) fed from three sources (the device's IGMP/MLD
    view in device.groups, `bifrostctl group join|leave` through router.group,
    and routing.groups of the config), tells every peer that is up or routed
    the node's groups end to end (a group report inside route.announce, so
    crypto's session authenticates the origin), takes the peers' reports from
    route.heard, and publishes each group's members to the data path
    (group.members: nearest first by route metric; anycast goes to
    `nearest`, which moves to the next member at once when it leaves or
    becomes unreachable).

    Groups joined with bifrostctl are kept in <run_dir>/router/groups, so a
    router the supervisor restarts joins them again (they last as long as
    the run directory; standing memberships belong in routing.groups). The
    service's own directory is root's and the router runs under a uid of
    its own once set up, so the file is opened (made) in setup, still root,
    and rewritten through that descriptor: one write of a fixed-size block
    at offset 0 (lseek and write, nothing beyond the seccomp BASE list), so
    a router killed at any moment leaves the old list or the new, whole. */
#ifndef ROUTER_GROUPS_H_INCLUDED
#define ROUTER_GROUPS_H_INCLUDED

#include "bus_service.h"
#include "router_links.h"
#include "group_table.h"

#define ROUTER_GROUPS_FILE      "groups"        //  in <run_dir>/router
#define ROUTER_GROUPS_FILE_SIZE 4096            //  its block: 64 addresses of up to 39 characters a line
#define ROUTER_GROUPS_CTL_MAX   64              //  groups bifrostctl may join
#define ROUTER_GROUPS_ROUND_MS  200             //  reports from changes go out at most this often
#define ROUTER_GROUPS_RETRY_MS  1000            //  a peer whose report we lack is asked again, doubling ...
#define ROUTER_GROUPS_RETRY_MAX 30000           //  ... up to this

typedef struct _router_groups_t router_groups_t;

//  One member as the router ranks them (router_groups_members)
typedef struct {
    uint64_t id;
    uint32_t index;             //  UINT32_MAX: discovery's list does not name it
    uint32_t metric;            //  our route's, 0 when unreachable
    bool reachable;
} router_member_t;

//  config: the groups of routing.groups (may be NULL with count 0);
//  route_timeout: a peer's groups expire after it without a report
router_groups_t *router_groups_new (bus_service_t *svc, router_links_t *links, const group_entry_t *config,
                                    size_t config_count, int64_t route_timeout);
void router_groups_destroy (router_groups_t **self_p);

//  A group report from peer `from` (up or routed, with a registry id: the
//  service checked who it is and its rate). True when it was taken and
//  asked for ours (its router just started, or just found us)
bool router_groups_heard (router_groups_t *self, const router_peer_t *from, const uint8_t *data, size_t size,
                          int64_t now);

//  After anything that may change routes or peers: group.members for the
//  groups whose members or nearest changed (all: every group again), and
//  peers that became reachable are owed our report
void router_groups_sync (router_groups_t *self, bool all, int64_t now);

//  The 50 ms tick: reports owed go out (changes coalesced to one round per
//  ROUTER_GROUPS_ROUND_MS), peers whose report we lack are asked again
void router_groups_tick (router_groups_t *self, int64_t now);

//  The periodic round (route_timeout / 4): our report to every peer
void router_groups_dump (router_groups_t *self, int64_t now);

//  Reports not renewed for route_timeout expire
void router_groups_expire (router_groups_t *self, int64_t now);

//  A peer left the network (discovery's peer.down): its groups go at once
void router_groups_forget (router_groups_t *self, uint64_t id, int64_t now);

//  Whether a peer may send us a report: a registry id, and up or routed
bool router_groups_reachable (router_groups_t *self, const router_peer_t *peer);

//  The members of addr ranked: reachable by metric then id, then the
//  others by id (at most max; returns how many there are)
size_t router_groups_members (router_groups_t *self, const uint8_t addr [GROUP_ADDR_SIZE], router_member_t *out,
                              size_t max);

//  Counters for router.routes.reply: reports sent and taken, refusals
typedef struct {
    uint64_t sent, taken;
    uint64_t codec [GROUP_MSG_ERRORS];
} router_groups_stats_t;
const router_groups_stats_t *router_groups_stats (router_groups_t *self);
group_table_t *router_groups_table (router_groups_t *self);


#endif
