/*  route_wire: the route announcement (schemas/route_wire.def) expanded into C
    by the same template as the tunnel's wire.h (schemas/wire_expand.h). The
    codec (librouter/route_msg.c) reads and writes with these numbers only, and
    schema-doc renders them into docs/routing.md. No code.

        ROUTE_WIRE_<MSG>                    the type byte, e.g. ROUTE_WIRE_ANNOUNCE = 48
        ROUTE_WIRE_<MSG>_SIZE               bytes without the variable part
        ROUTE_WIRE_<MSG>_<FIELD>[_SIZE]     offset and size of a field
        ROUTE_WIRE_<CONST>                  the other numbers of the format
        route_wire_messages, route_wire_fields, route_wire_consts: the tables
*/
#ifndef SCHEMAS_ROUTE_WIRE_H_INCLUDED
#define SCHEMAS_ROUTE_WIRE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define WIRE_EXPAND_DEF         "route_wire.def"
#define WIRE_EXPAND_NAME(x)     ROUTE_WIRE_##x
#define WIRE_EXPAND_TABLE(x)    route_wire_##x
#include "wire_expand.h"

//  The metric of a withdrawn route (0xFFFFFFFF on the wire)
#define ROUTE_WIRE_METRIC_RETRACTED UINT32_MAX

//  What the codec relies on and the declaration must keep true
_Static_assert (ROUTE_WIRE_ANNOUNCE_ROUTES == ROUTE_WIRE_ANNOUNCE_SIZE, "route_wire.def: the entries follow the header");
_Static_assert (ROUTE_WIRE_ROUTE_PATH == ROUTE_WIRE_ROUTE_SIZE, "route_wire.def: the path ends the entry");
_Static_assert (ROUTE_WIRE_ANNOUNCE_SIZE + ROUTE_WIRE_MAX_ROUTES * (ROUTE_WIRE_ROUTE_SIZE + 8) <= ROUTE_WIRE_MAX_SIZE,
                "route_wire.def: max_routes one-hop entries fit max_size");
_Static_assert (ROUTE_WIRE_ANNOUNCE_SIZE + (ROUTE_WIRE_MAX_ROUTES + 1) * (ROUTE_WIRE_ROUTE_SIZE + 8) > ROUTE_WIRE_MAX_SIZE,
                "route_wire.def: max_routes is as many as fit");
_Static_assert (ROUTE_WIRE_ANNOUNCE_SIZE + ROUTE_WIRE_ROUTE_SIZE + 8 * ROUTE_WIRE_MAX_PATH <= ROUTE_WIRE_MAX_SIZE,
                "route_wire.def: an entry of the longest path fits");
_Static_assert (ROUTE_WIRE_MIN_HOP_METRIC == 1 + ROUTE_WIRE_HOP_COST, "route_wire.def: min_hop_metric");
_Static_assert (ROUTE_WIRE_MAX_METRIC == ROUTE_WIRE_MAX_PATH * (ROUTE_WIRE_LINK_RTT_MAX + ROUTE_WIRE_HOP_COST),
                "route_wire.def: max_metric");
_Static_assert (ROUTE_WIRE_ROUTE_METRIC_SIZE == 4 && ROUTE_WIRE_ROUTE_DEST_SIZE == 8
                && ROUTE_WIRE_ANNOUNCE_SEQNO_SIZE == 8 && ROUTE_WIRE_ANNOUNCE_ORIGIN_SIZE == 8
                && ROUTE_WIRE_ANNOUNCE_COUNT_SIZE == 2, "route_wire.def: the codec's integer sizes");
_Static_assert (ROUTE_WIRE_GROUPS_ENTRIES == ROUTE_WIRE_GROUPS_SIZE, "route_wire.def: the group entries follow the header");
_Static_assert (ROUTE_WIRE_GROUPS_SIZE + ROUTE_WIRE_MAX_GROUPS * ROUTE_WIRE_GROUP_SIZE <= ROUTE_WIRE_MAX_SIZE,
                "route_wire.def: a full group report fits max_size");
_Static_assert (ROUTE_WIRE_MAX_GROUPS <= 255 && ROUTE_WIRE_GROUPS_COUNT_SIZE == 1, "route_wire.def: the group count is one byte");
_Static_assert (ROUTE_WIRE_GROUP_ADDRESS_SIZE == 16 && ROUTE_WIRE_GROUPS_ORIGIN_SIZE == 8
                && ROUTE_WIRE_GROUPS_SEQNO_SIZE == 8, "route_wire.def: the group codec's sizes");

#endif
