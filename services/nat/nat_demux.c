/*  nat_demux: classify incoming datagrams by their first 4-byte word. */
#include "nat_demux.h"
#include "nat_routed.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _nat_demux_t {
    nat_demux_stats_t stats;
};

//  Types 1 .. NAT_DEMUX_DATA are the wire's, one after the other (the check
//  below takes every byte in that range as a type)
_Static_assert (NAT_DEMUX_INITIATION == 1 && NAT_DEMUX_RESPONSE == 2 && NAT_DEMUX_COOKIE == 3
                && NAT_DEMUX_DATA == 4 && NAT_DEMUX_ROUTED == 5 && NAT_DEMUX_ANNOUNCE == 6
                && NAT_DEMUX_FLOOD == 7 && NAT_DEMUX_TYPES == NAT_DEMUX_FLOOD + 1,
                "nat_demux: the wire types of schemas/wire.def changed");

static const size_t s_min_size [NAT_DEMUX_TYPES] = {
    [NAT_DEMUX_INITIATION] = WIRE_INITIATION_SIZE,
    [NAT_DEMUX_RESPONSE] = WIRE_RESPONSE_SIZE,
    [NAT_DEMUX_COOKIE] = WIRE_COOKIE_SIZE,
    [NAT_DEMUX_DATA] = WIRE_DATA_SIZE,
    [NAT_DEMUX_ROUTED] = WIRE_ROUTED_SIZE + WIRE_HEADER_SIZE,
    [NAT_DEMUX_ANNOUNCE] = WIRE_ANNOUNCE_SIZE,
    [NAT_DEMUX_FLOOD] = WIRE_FLOOD_SIZE,
};

nat_demux_t *
nat_demux_new (void)
{
    return calloc (1, sizeof (nat_demux_t));
}

void
nat_demux_destroy (nat_demux_t **self_p)
{
    if (self_p && *self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

nat_demux_type_t
nat_demux_check (const uint8_t *data, size_t size, uint32_t *receiver,
                 nat_demux_reason_t *reason)
{
    nat_demux_reason_t why = NAT_DEMUX_OK;
    nat_demux_type_t type = NAT_DEMUX_DROP;
    if (size < WIRE_HEADER_SIZE)
        why = NAT_DEMUX_TOO_SHORT;
    else
    if (data [0] < NAT_DEMUX_INITIATION || data [0] >= NAT_DEMUX_TYPES)
        why = NAT_DEMUX_BAD_TYPE;
    else
    if (data [0] == NAT_DEMUX_ROUTED) {
        //  Byte 1 is its TTL: the whole header is checked by its codec
        nat_routed_reason_t r = nat_routed_decode (data, size, NULL);
        if (r == NAT_ROUTED_OK)
            type = NAT_DEMUX_ROUTED;
        else
            why = r == NAT_ROUTED_TOO_SHORT ? NAT_DEMUX_TOO_SHORT : NAT_DEMUX_BAD_ROUTED;
    }
    else
    if (data [1] | data [2] | data [3])
        why = NAT_DEMUX_BAD_RESERVED;
    else
    if (size < s_min_size [data [0]])
        why = NAT_DEMUX_TOO_SHORT;
    else
        type = (nat_demux_type_t) data [0];
    if ((type == NAT_DEMUX_DATA || type == NAT_DEMUX_ANNOUNCE || type == NAT_DEMUX_FLOOD) && receiver) {
        const uint8_t *p = data + WIRE_DATA_RECEIVER_INDEX;
        *receiver = (uint32_t) p [0] | (uint32_t) p [1] << 8
                  | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 24;
    }
    if (reason)
        *reason = why;
    return type;
}

nat_demux_type_t
nat_demux_classify (nat_demux_t *self, const uint8_t *data, size_t size, uint32_t *receiver)
{
    nat_demux_reason_t reason;
    nat_demux_type_t type = nat_demux_check (data, size, receiver, &reason);
    if (type == NAT_DEMUX_DROP)
        self->stats.dropped [reason]++;
    else
        self->stats.accepted [type]++;
    return type;
}

const nat_demux_stats_t *
nat_demux_stats (nat_demux_t *self)
{
    return &self->stats;
}

uint64_t
nat_demux_dropped_total (nat_demux_t *self)
{
    uint64_t total = 0;
    for (int i = 0; i < NAT_DEMUX_REASONS; i++)
        total += self->stats.dropped [i];
    return total;
}

const char *
nat_demux_type_name (nat_demux_type_t type)
{
    static const char *names [NAT_DEMUX_TYPES] = {
        "drop", "initiation", "response", "cookie", "data", "routed", "announce", "flood"
    };
    return (unsigned) type < NAT_DEMUX_TYPES ? names [type] : "drop";
}

const char *
nat_demux_reason_name (nat_demux_reason_t reason)
{
    static const char *names [NAT_DEMUX_REASONS] = {
        "ok", "too short", "unknown type", "reserved bytes not zero", "bad routing header"
    };
    return (unsigned) reason < NAT_DEMUX_REASONS ? names [reason] : "?";
}

void
nat_demux_test (bool verbose)
{
    nat_demux_t *demux = nat_demux_new ();
    assert (demux);
    uint8_t buf [256];
    memset (buf, 0xAB, sizeof buf);
    uint32_t receiver = 0;

    //  Each valid type at exactly its minimum size is accepted, one byte less is not
    static const size_t mins [] = { 0, 148, 92, 64, 32, 0, 32, 52 };
    for (int type = 1; type <= 7; type++) {
        if (type == NAT_DEMUX_ROUTED)
            continue;           //  below, with its codec
        buf [0] = (uint8_t) type;
        buf [1] = buf [2] = buf [3] = 0;
        assert (nat_demux_classify (demux, buf, mins [type], NULL) == (nat_demux_type_t) type);
        assert (nat_demux_classify (demux, buf, sizeof buf, NULL) == (nat_demux_type_t) type);
        nat_demux_reason_t reason;
        assert (nat_demux_check (buf, mins [type] - 1, NULL, &reason) == NAT_DEMUX_DROP);
        assert (reason == NAT_DEMUX_TOO_SHORT);
        assert (nat_demux_classify (demux, buf, mins [type] - 1, NULL) == NAT_DEMUX_DROP);
    }
    assert (nat_demux_stats (demux)->accepted [NAT_DEMUX_INITIATION] == 2);
    assert (nat_demux_stats (demux)->accepted [NAT_DEMUX_DATA] == 2);
    assert (nat_demux_stats (demux)->dropped [NAT_DEMUX_TOO_SHORT] == 6);

    //  The receiver index is little-endian at offset 4
    uint8_t data [32] = { 4, 0, 0, 0, 0x78, 0x56, 0x34, 0x12 };
    assert (nat_demux_classify (demux, data, sizeof data, &receiver) == NAT_DEMUX_DATA);
    assert (receiver == 0x12345678);

    //  Malformed: empty, short header, bad types, reserved bytes set
    assert (nat_demux_classify (demux, NULL, 0, &receiver) == NAT_DEMUX_DROP);
    assert (nat_demux_classify (demux, data, 3, &receiver) == NAT_DEMUX_DROP);
    nat_demux_reason_t reason;
    for (int type = 0; type < 256; type++) {
        if (type >= 1 && type <= 7)
            continue;
        buf [0] = (uint8_t) type;
        assert (nat_demux_check (buf, sizeof buf, NULL, &reason) == NAT_DEMUX_DROP);
        assert (reason == NAT_DEMUX_BAD_TYPE);
    }
    for (int i = 1; i <= 3; i++) {
        memset (data + 1, 0, 3);
        data [i] = 1;
        assert (nat_demux_check (data, sizeof data, NULL, &reason) == NAT_DEMUX_DROP);
        assert (reason == NAT_DEMUX_BAD_RESERVED);
        assert (nat_demux_classify (demux, data, sizeof data, NULL) == NAT_DEMUX_DROP);
    }
    assert (nat_demux_stats (demux)->dropped [NAT_DEMUX_BAD_RESERVED] == 3);
    assert (nat_demux_dropped_total (demux) == 6 + 2 + 3);
    //  A routing header carrying a data message; refused with the codec's checks
    uint8_t routed [20 + 32] = { WIRE_ROUTED, 8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, WIRE_DATA };
    assert (nat_demux_classify (demux, routed, sizeof routed, &receiver) == NAT_DEMUX_ROUTED);
    assert (nat_demux_check (routed, sizeof routed - 1, NULL, &reason) == NAT_DEMUX_DROP && reason == NAT_DEMUX_BAD_ROUTED);
    assert (nat_demux_check (routed, 23, NULL, &reason) == NAT_DEMUX_DROP && reason == NAT_DEMUX_TOO_SHORT);
    routed [1] = 0;
    assert (nat_demux_check (routed, sizeof routed, NULL, &reason) == NAT_DEMUX_DROP && reason == NAT_DEMUX_BAD_ROUTED);
    routed [1] = 1;
    routed [20] = WIRE_COOKIE;
    assert (nat_demux_check (routed, sizeof routed, NULL, &reason) == NAT_DEMUX_DROP && reason == NAT_DEMUX_BAD_ROUTED);
    //  An announcement gives its receiver index like data
    data [0] = WIRE_ANNOUNCE;
    memset (data + 1, 0, 3);
    assert (nat_demux_classify (demux, data, sizeof data, &receiver) == NAT_DEMUX_ANNOUNCE);
    assert (receiver == 0x12345678);
    //  So does a flood frame (a broadcast along a tree), at least 52 bytes
    uint8_t flood [WIRE_FLOOD_SIZE] = { WIRE_FLOOD, 0, 0, 0, 0x78, 0x56, 0x34, 0x12 };
    receiver = 0;
    assert (nat_demux_classify (demux, flood, sizeof flood, &receiver) == NAT_DEMUX_FLOOD);
    assert (receiver == 0x12345678);
    assert (nat_demux_check (flood, sizeof flood - 1, NULL, &reason) == NAT_DEMUX_DROP && reason == NAT_DEMUX_TOO_SHORT);
    assert (strcmp (nat_demux_type_name (NAT_DEMUX_FLOOD), "flood") == 0);
    assert (strcmp (nat_demux_type_name (NAT_DEMUX_COOKIE), "cookie") == 0);
    assert (strcmp (nat_demux_reason_name (NAT_DEMUX_BAD_TYPE), "unknown type") == 0);
    if (verbose)
        printf ("nat_demux: %llu dropped\n", (unsigned long long) nat_demux_dropped_total (demux));
    nat_demux_destroy (&demux);
    assert (demux == NULL);
}
