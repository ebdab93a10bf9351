/*  nat_demux: the first look at every datagram from the internet. nat holds no keys,
    so it cannot authenticate anything; what it can do cheaply is refuse what is not
    even shaped like a Bifrost message before it costs a trip to crypto. The crypto
    wire format (services/crypto/crypto_wire.*, which nat may not include) starts
    every message with one type byte and three zero bytes; data messages carry the
    receiver's 4-byte little-endian session index at offset 4. The minimum sizes are
    WireGuard's and live here, in one place, so they follow the wire format if it
    changes. */
#ifndef NAT_DEMUX_H_INCLUDED
#define NAT_DEMUX_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    NAT_DEMUX_DROP = 0,
    NAT_DEMUX_INITIATION = 1,       //  handshake initiation
    NAT_DEMUX_RESPONSE = 2,         //  handshake response
    NAT_DEMUX_COOKIE = 3,           //  cookie reply (under load)
    NAT_DEMUX_DATA = 4,             //  transport data (or keepalive)
    NAT_DEMUX_TYPES = 5
} nat_demux_type_t;

//  Minimum datagram size per type (bytes)
#define NAT_WIRE_MIN_INITIATION 148
#define NAT_WIRE_MIN_RESPONSE    92
#define NAT_WIRE_MIN_COOKIE      64
#define NAT_WIRE_MIN_DATA        32     //  16 header + 16 tag: an empty keepalive
#define NAT_WIRE_RECEIVER_OFFSET  4     //  data: little-endian receiver index

//  Why a datagram was dropped
typedef enum {
    NAT_DEMUX_OK = 0,
    NAT_DEMUX_TOO_SHORT,            //  shorter than 4 bytes, or than its type's minimum
    NAT_DEMUX_BAD_TYPE,             //  type byte not 1-4
    NAT_DEMUX_BAD_RESERVED,         //  bytes 1-3 not zero
    NAT_DEMUX_REASONS = 4
} nat_demux_reason_t;

typedef struct {
    uint64_t accepted [NAT_DEMUX_TYPES];     //  index = nat_demux_type_t (0 unused)
    uint64_t dropped [NAT_DEMUX_REASONS];    //  index = nat_demux_reason_t (0 unused)
} nat_demux_stats_t;

typedef struct _nat_demux_t nat_demux_t;

nat_demux_t *nat_demux_new (void);
void nat_demux_destroy (nat_demux_t **self_p);

//  Classifies one datagram and counts it. For NAT_DEMUX_DATA, *receiver gets the
//  receiver index (when receiver is not NULL). Returns NAT_DEMUX_DROP for anything
//  that must not reach crypto.
nat_demux_type_t nat_demux_classify (nat_demux_t *self, const uint8_t *data, size_t size,
                                     uint32_t *receiver);

//  The same check without counting; reason (if not NULL) says why it dropped.
nat_demux_type_t nat_demux_check (const uint8_t *data, size_t size, uint32_t *receiver,
                                  nat_demux_reason_t *reason);

const nat_demux_stats_t *nat_demux_stats (nat_demux_t *self);
uint64_t nat_demux_dropped_total (nat_demux_t *self);

//  "initiation", "response", "cookie", "data", "drop"; and reason names
const char *nat_demux_type_name (nat_demux_type_t type);
const char *nat_demux_reason_name (nat_demux_reason_t reason);

void nat_demux_test (bool verbose);
#endif
