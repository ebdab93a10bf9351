/*  group_msg: the group report's codec (schemas/route_wire.def, types 50 and
    51; docs/groups.md). A report is one node telling a peer which multicast
    groups and anycast addresses it is a member of. It comes from a peer's
    router, which may be buggy or hostile, so decode checks every byte and
    says why it refused; that the origin is the session's peer and that the
    seqno is newer is the group table's to judge (group_table_receive).

    A group_msg_t holds at most ROUTE_WIRE_MAX_GROUPS entries: decode needs no
    allocation. */
#ifndef GROUP_MSG_H_INCLUDED
#define GROUP_MSG_H_INCLUDED

#include "group_addr.h"

//  One group: its address (v4-mapped for IPv4) and kind
typedef struct {
    uint8_t addr [GROUP_ADDR_SIZE];
    uint8_t kind;                               //  ROUTE_WIRE_GROUP_MULTICAST or _ANYCAST
} group_entry_t;

typedef struct {
    uint64_t origin;                            //  the member's peer id
    uint64_t seqno;
    uint8_t flags;                              //  ROUTE_WIRE_GROUPS_REQUEST
    uint8_t count;
    group_entry_t groups [ROUTE_WIRE_MAX_GROUPS];
} group_msg_t;

typedef enum {
    GROUP_MSG_OK = 0,
    GROUP_MSG_TOO_SHORT,        //  shorter than the header, or than its entries say
    GROUP_MSG_TOO_LONG,         //  bytes after the last entry
    GROUP_MSG_BAD_TYPE,         //  not a group report, or an entry that is not a group
    GROUP_MSG_BAD_VERSION,
    GROUP_MSG_BAD_RESERVED,     //  a reserved byte or flag bit set
    GROUP_MSG_TOO_MANY,         //  count above max_groups
    GROUP_MSG_BAD_PEER,         //  a zero origin
    GROUP_MSG_BAD_ADDRESS,      //  an address that cannot be a group (group_addr_kind)
    GROUP_MSG_BAD_KIND,         //  a kind that is not the address's
    GROUP_MSG_DUPLICATE,        //  one address twice
    GROUP_MSG_ERRORS
} group_msg_err_t;

//  Decodes one report into msg. Never reads past data + size.
group_msg_err_t group_msg_decode (const uint8_t *data, size_t size, group_msg_t *msg);

//  Checks msg as decode would (a sender never emits what a receiver refuses)
group_msg_err_t group_msg_check (const group_msg_t *msg);

size_t group_msg_size (const group_msg_t *msg);

//  Encodes msg into buf; the size written, or 0 when msg does not pass
//  group_msg_check or does not fit cap
size_t group_msg_encode (const group_msg_t *msg, uint8_t *buf, size_t cap);

//  "too short", "group twice", ...
const char *group_msg_err_name (group_msg_err_t err);

void group_msg_test (bool verbose);

#endif
