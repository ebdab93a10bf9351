/*  nat_demux: the first look at every datagram from the internet. nat holds no keys,
    so it cannot authenticate anything; what it can do cheaply is refuse what is not
    even shaped like a Bifrost message before it costs a trip to crypto. Every
    message starts with one type byte and three zero bytes; data messages carry the
    receiver's 4-byte little-endian session index. The types, minimum sizes and that
    offset come from schemas/wire.def, the one declaration crypto encodes and
    decodes with too (nat may not include crypto's headers), so they follow the
    wire format if it changes. */
#ifndef NAT_DEMUX_H_INCLUDED
#define NAT_DEMUX_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "schemas/wire.h"

//  A datagram's class is its wire type (0: dropped); the minimum size of each
//  is WIRE_<TYPE>_SIZE
typedef enum {
    NAT_DEMUX_DROP = 0,
    NAT_DEMUX_INITIATION = WIRE_INITIATION,     //  handshake initiation
    NAT_DEMUX_RESPONSE = WIRE_RESPONSE,         //  handshake response
    NAT_DEMUX_COOKIE = WIRE_COOKIE,             //  cookie reply (under load)
    NAT_DEMUX_DATA = WIRE_DATA,                 //  transport data (or keepalive)
    NAT_DEMUX_ROUTED = WIRE_ROUTED,             //  a routing header and the message it carries (nat_routed.h)
    NAT_DEMUX_ANNOUNCE = WIRE_ANNOUNCE,         //  a route announcement in a session (shaped as data)
    NAT_DEMUX_FLOOD = WIRE_FLOOD,               //  a broadcast relayed along a tree, in a session (shaped as data)
    NAT_DEMUX_TYPES = 8                         //  the highest type + 1
} nat_demux_type_t;

//  Why a datagram was dropped
typedef enum {
    NAT_DEMUX_OK = 0,
    NAT_DEMUX_TOO_SHORT,            //  shorter than 4 bytes, or than its type's minimum
    NAT_DEMUX_BAD_TYPE,             //  type byte not 1-7
    NAT_DEMUX_BAD_RESERVED,         //  bytes 1-3 not zero
    NAT_DEMUX_BAD_ROUTED,           //  a routing header nat_routed_decode refuses (its reason: nat_routed.h)
    NAT_DEMUX_REASONS = 5
} nat_demux_reason_t;

typedef struct {
    uint64_t accepted [NAT_DEMUX_TYPES];     //  index = nat_demux_type_t (0 unused)
    uint64_t dropped [NAT_DEMUX_REASONS];    //  index = nat_demux_reason_t (0 unused)
} nat_demux_stats_t;

typedef struct _nat_demux_t nat_demux_t;

nat_demux_t *nat_demux_new (void);
void nat_demux_destroy (nat_demux_t **self_p);

//  Classifies one datagram and counts it. For NAT_DEMUX_DATA, _ANNOUNCE and _FLOOD, *receiver gets the
//  receiver index (when receiver is not NULL). Returns NAT_DEMUX_DROP for anything
//  that must not reach crypto.
nat_demux_type_t nat_demux_classify (nat_demux_t *self, const uint8_t *data, size_t size,
                                     uint32_t *receiver);

//  The same check without counting; reason (if not NULL) says why it dropped.
nat_demux_type_t nat_demux_check (const uint8_t *data, size_t size, uint32_t *receiver,
                                  nat_demux_reason_t *reason);

const nat_demux_stats_t *nat_demux_stats (nat_demux_t *self);
uint64_t nat_demux_dropped_total (nat_demux_t *self);

//  "initiation", "response", "cookie", "data", "routed", "announce", "flood", "drop"; and reason names
const char *nat_demux_type_name (nat_demux_type_t type);
const char *nat_demux_reason_name (nat_demux_reason_t reason);

void nat_demux_test (bool verbose);
#endif
