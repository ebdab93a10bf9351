/*  dev_groups: the multicast groups programs on this node joined, as the
    device learns them from the IGMP/MLD reports the kernel sends out of the
    interface (dev_igmp). A report (or a query's answer) holds a group for
    hold_ms; a leave, or no report within hold_ms, takes it off. The set is what
    `device.groups` publishes, whole, sorted (IPv4 before IPv6, by address) so
    an unchanged set always gives the same list.

    224.0.0.1 and ff02::1 (all hosts, all nodes) are never kept: every host is
    a member, so they say nothing. Capacity is fixed at creation (the schema's
    list holds DEV_GROUPS_MAX); a join beyond it is counted and not kept. */
#ifndef DEV_GROUPS_H_INCLUDED
#define DEV_GROUPS_H_INCLUDED

#include "dev_igmp.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEV_GROUPS_MAX   64         //  device.groups' list (schemas/group.def)
#define DEV_GROUPS_TEXT  46         //  INET6_ADDRSTRLEN

typedef struct _dev_groups_t dev_groups_t;

typedef struct {
    uint64_t joins;             //  join records applied (new or refreshed)
    uint64_t leaves;            //  leave records that removed a group
    uint64_t expired;           //  groups removed for lack of a report
    uint64_t full;              //  joins not kept: the set was full
} dev_groups_stats_t;

dev_groups_t *dev_groups_new (size_t capacity, uint64_t hold_ms);
void dev_groups_destroy (dev_groups_t **self_p);

//  Applies a parsed report's records; true if the set changed (a group came
//  or went; a refresh is no change).
bool dev_groups_apply (dev_groups_t *self, const dev_igmp_msg_t *msg, uint64_t now_ms);
//  Removes the groups not reported for hold_ms; true if any went.
bool dev_groups_expire (dev_groups_t *self, uint64_t now_ms);
//  Forgets every group (the interface was recreated); true if any went.
bool dev_groups_clear (dev_groups_t *self);

size_t dev_groups_count (dev_groups_t *self);
//  The i-th group in order, as text (DEV_GROUPS_TEXT bytes).
void dev_groups_text (dev_groups_t *self, size_t i, char *text);
const dev_groups_stats_t *dev_groups_stats (dev_groups_t *self);

void dev_groups_test (bool verbose);
#endif
