/*  route_msg: the route announcement's codec (schemas/route_wire.def,
    docs/routing.md). An announcement comes from a neighbour's router, which
    may be buggy or hostile, so decode checks every byte it relies on and says
    why it refused; nothing in it is trusted before that. What only the route
    table can judge (the announcer is the session's peer, the path avoids us,
    max_hops, the seqno is newer) is left to route_table.

    The structs are plain values: a route_msg_t holds at most
    ROUTE_WIRE_MAX_ROUTES entries of at most ROUTE_WIRE_MAX_PATH hops, the
    format's own bounds, so decode needs no allocation. */
#ifndef ROUTE_MSG_H_INCLUDED
#define ROUTE_MSG_H_INCLUDED

#include "schemas/route_wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  One destination as the announcer reaches it
typedef struct {
    uint64_t dest;                              //  peer id, not zero
    uint32_t metric;                            //  101 x hops .. max_metric, or ROUTE_WIRE_METRIC_RETRACTED
    uint8_t flags;                              //  ROUTE_WIRE_FLAG_RELAY | ROUTE_WIRE_FLAG_TURN
    uint8_t hops;                               //  1 .. ROUTE_WIRE_MAX_PATH
    uint64_t path [ROUTE_WIRE_MAX_PATH];        //  path [0] = the announcer; the destination excluded
} route_entry_t;

typedef struct {
    uint64_t origin;                            //  the announcer's peer id
    uint64_t seqno;
    uint16_t count;
    route_entry_t routes [ROUTE_WIRE_MAX_ROUTES];
} route_msg_t;

//  Why an announcement was refused
typedef enum {
    ROUTE_MSG_OK = 0,
    ROUTE_MSG_TOO_SHORT,        //  shorter than the header, or than its entries say
    ROUTE_MSG_TOO_LONG,         //  larger than max_size, or bytes after the last entry
    ROUTE_MSG_BAD_TYPE,         //  not an announcement, or an entry that is not a route
    ROUTE_MSG_BAD_VERSION,
    ROUTE_MSG_BAD_RESERVED,     //  a reserved field or flag bit not zero
    ROUTE_MSG_TOO_MANY,         //  count above max_routes
    ROUTE_MSG_BAD_HOPS,         //  0 or above max_path
    ROUTE_MSG_BAD_METRIC,       //  0, below 101 x hops, above max_metric (and not retracted)
    ROUTE_MSG_BAD_PEER,         //  a zero peer id (origin, destination or path)
    ROUTE_MSG_NOT_FIRST,        //  the path does not start with the announcer
    ROUTE_MSG_LOOP,             //  an id twice in the path, or the destination in it
    ROUTE_MSG_DUPLICATE,        //  one destination twice in one announcement
    ROUTE_MSG_ERRORS
} route_msg_err_t;

//  Decodes one announcement into msg (whose entries past count are left as
//  they were). Never reads past data + size.
route_msg_err_t route_msg_decode (const uint8_t *data, size_t size, route_msg_t *msg);

//  Checks msg as decode would (so a sender never emits what a receiver refuses)
route_msg_err_t route_msg_check (const route_msg_t *msg);

//  Bytes that msg's entry takes on the wire, and the whole announcement
size_t route_msg_entry_size (const route_entry_t *entry);
size_t route_msg_size (const route_msg_t *msg);

//  Encodes msg into buf; returns the size written, or 0 when msg does not pass
//  route_msg_check or does not fit cap.
size_t route_msg_encode (const route_msg_t *msg, uint8_t *buf, size_t cap);

//  "too short", "loop", ...
const char *route_msg_err_name (route_msg_err_t err);

void route_msg_test (bool verbose);

#endif
