/*  nat_routed: encode and strictly decode the routing header. */
#include "nat_routed.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

_Static_assert (WIRE_ROUTED_MESSAGE == WIRE_ROUTED_HEADER && WIRE_ROUTED_SIZE == WIRE_ROUTED_HEADER,
                "wire.def: the message follows the 20-byte routing header");

static uint64_t
s_get64 (const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p [i];
    return v;
}

static void
s_put64 (uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p [i] = (uint8_t) v;
}

//  The tunnel messages a routing header may carry, each at least its size
static bool
s_message_ok (const uint8_t *m, size_t size)
{
    if (size < WIRE_HEADER_SIZE || (m [1] | m [2] | m [3]))
        return false;
    switch (m [0]) {
        case WIRE_INITIATION: return size >= WIRE_INITIATION_SIZE;
        case WIRE_RESPONSE: return size >= WIRE_RESPONSE_SIZE;
        case WIRE_DATA: return size >= WIRE_DATA_SIZE;
        case WIRE_ANNOUNCE: return size >= WIRE_ANNOUNCE_SIZE;
        case WIRE_FLOOD: return size >= WIRE_FLOOD_SIZE;
        default: return false;
    }
}

static bool
s_header_ok (const nat_routed_t *h)
{
    return h->ttl >= 1 && h->ttl <= WIRE_ROUTED_TTL_MAX && h->source && h->dest && h->source != h->dest;
}

nat_routed_reason_t
nat_routed_decode (const uint8_t *data, size_t size, nat_routed_t *out)
{
    if (!data || size < WIRE_ROUTED_SIZE + WIRE_HEADER_SIZE)
        return NAT_ROUTED_TOO_SHORT;
    if (data [WIRE_ROUTED_TYPE] != WIRE_ROUTED)
        return NAT_ROUTED_BAD_TYPE;
    nat_routed_t h = {
        .ttl = data [WIRE_ROUTED_TTL],
        .source = s_get64 (data + WIRE_ROUTED_SOURCE),
        .dest = s_get64 (data + WIRE_ROUTED_DEST),
        .message = data + WIRE_ROUTED_MESSAGE,
        .message_size = size - WIRE_ROUTED_MESSAGE
    };
    if (h.ttl == 0 || h.ttl > WIRE_ROUTED_TTL_MAX)
        return NAT_ROUTED_BAD_TTL;
    if (data [WIRE_ROUTED_RESERVED] | data [WIRE_ROUTED_RESERVED + 1])
        return NAT_ROUTED_BAD_RESERVED;
    if (!s_header_ok (&h))
        return NAT_ROUTED_BAD_ID;
    if (!s_message_ok (h.message, h.message_size))
        return NAT_ROUTED_BAD_MESSAGE;
    if (out)
        *out = h;
    return NAT_ROUTED_OK;
}

void
nat_routed_encode_header (const nat_routed_t *hdr, uint8_t out [WIRE_ROUTED_MESSAGE])
{
    out [WIRE_ROUTED_TYPE] = WIRE_ROUTED;
    out [WIRE_ROUTED_TTL] = hdr->ttl;
    out [WIRE_ROUTED_RESERVED] = out [WIRE_ROUTED_RESERVED + 1] = 0;
    s_put64 (out + WIRE_ROUTED_SOURCE, hdr->source);
    s_put64 (out + WIRE_ROUTED_DEST, hdr->dest);
}

size_t
nat_routed_encode (const nat_routed_t *hdr, const uint8_t *message, size_t size, uint8_t *out, size_t capacity)
{
    if (!s_header_ok (hdr) || !s_message_ok (message, size) || capacity < WIRE_ROUTED_MESSAGE + size)
        return 0;
    nat_routed_encode_header (hdr, out);
    memmove (out + WIRE_ROUTED_MESSAGE, message, size);
    return WIRE_ROUTED_MESSAGE + size;
}

const char *
nat_routed_reason_name (nat_routed_reason_t reason)
{
    static const char *names [NAT_ROUTED_REASONS] = {
        "ok", "too short", "not a routing header", "bad ttl", "reserved bytes not zero", "bad peer id",
        "bad message"
    };
    return (unsigned) reason < NAT_ROUTED_REASONS ? names [reason] : "?";
}

void
nat_routed_test (bool verbose)
{
    uint8_t msg [200], out [256];
    memset (msg, 0xA5, sizeof msg);
    memset (msg, 0, 4);
    msg [0] = WIRE_DATA;
    nat_routed_t h = { .ttl = 8, .source = 0x0123456789ABCDEFULL, .dest = 0xFEDCBA9876543210ULL };

    //  Round trip, at each message type's smallest size and above
    static const struct { uint8_t type; size_t size; } kinds [] = {
        { WIRE_INITIATION, WIRE_INITIATION_SIZE }, { WIRE_RESPONSE, WIRE_RESPONSE_SIZE },
        { WIRE_DATA, WIRE_DATA_SIZE }, { WIRE_DATA, 200 }, { WIRE_ANNOUNCE, WIRE_ANNOUNCE_SIZE },
        { WIRE_FLOOD, WIRE_FLOOD_SIZE }
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds [0]; k++) {
        msg [0] = kinds [k].type;
        size_t n = nat_routed_encode (&h, msg, kinds [k].size, out, sizeof out);
        assert (n == 20 + kinds [k].size);
        nat_routed_t d;
        assert (nat_routed_decode (out, n, &d) == NAT_ROUTED_OK);
        assert (d.ttl == 8 && d.source == h.source && d.dest == h.dest);
        assert (d.message == out + 20 && d.message_size == kinds [k].size);
        assert (memcmp (d.message, msg, kinds [k].size) == 0);
        //  Little-endian ids at 4 and 12
        assert (out [4] == 0xEF && out [11] == 0x01 && out [12] == 0x10 && out [19] == 0xFE);
        //  One byte short of the carried message's size: refused
        assert (nat_routed_decode (out, n - 1, NULL) == (kinds [k].size == 200 ? NAT_ROUTED_OK : NAT_ROUTED_BAD_MESSAGE));
    }
    msg [0] = WIRE_DATA;
    size_t n = nat_routed_encode (&h, msg, 64, out, sizeof out);
    assert (n == 84);
    //  Every prefix shorter than the header and a message header
    for (size_t len = 0; len < 24; len++)
        assert (nat_routed_decode (out, len, NULL) == NAT_ROUTED_TOO_SHORT);
    assert (nat_routed_decode (NULL, 0, NULL) == NAT_ROUTED_TOO_SHORT);
    //  Each refusal from one changed byte
    struct { size_t at; uint8_t value; nat_routed_reason_t why; } bad [] = {
        { 0, WIRE_DATA, NAT_ROUTED_BAD_TYPE }, { 0, 0, NAT_ROUTED_BAD_TYPE },
        { 1, 0, NAT_ROUTED_BAD_TTL }, { 1, WIRE_ROUTED_TTL_MAX + 1, NAT_ROUTED_BAD_TTL }, { 1, 255, NAT_ROUTED_BAD_TTL },
        { 2, 1, NAT_ROUTED_BAD_RESERVED }, { 3, 0x80, NAT_ROUTED_BAD_RESERVED },
        { 20, WIRE_COOKIE, NAT_ROUTED_BAD_MESSAGE }, { 20, WIRE_ROUTED, NAT_ROUTED_BAD_MESSAGE },
        { 20, 0, NAT_ROUTED_BAD_MESSAGE }, { 20, 8, NAT_ROUTED_BAD_MESSAGE }, { 21, 1, NAT_ROUTED_BAD_MESSAGE },
        { 23, 1, NAT_ROUTED_BAD_MESSAGE },
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad [0]; k++) {
        uint8_t copy [256];
        memcpy (copy, out, n);
        copy [bad [k].at] = bad [k].value;
        assert (nat_routed_decode (copy, n, NULL) == bad [k].why);
    }
    //  TTL bounds accepted
    out [1] = 1;
    assert (nat_routed_decode (out, n, NULL) == NAT_ROUTED_OK);
    out [1] = WIRE_ROUTED_TTL_MAX;
    assert (nat_routed_decode (out, n, NULL) == NAT_ROUTED_OK);
    //  Ids: zero source, zero destination, the same
    uint8_t copy [256];
    memcpy (copy, out, n);
    memset (copy + 4, 0, 8);
    assert (nat_routed_decode (copy, n, NULL) == NAT_ROUTED_BAD_ID);
    memcpy (copy, out, n);
    memset (copy + 12, 0, 8);
    assert (nat_routed_decode (copy, n, NULL) == NAT_ROUTED_BAD_ID);
    memcpy (copy, out, n);
    memcpy (copy + 12, copy + 4, 8);
    assert (nat_routed_decode (copy, n, NULL) == NAT_ROUTED_BAD_ID);
    //  The encoder refuses what the decoder would
    nat_routed_t bad_h = h;
    bad_h.ttl = 0;
    assert (nat_routed_encode (&bad_h, msg, 64, out, sizeof out) == 0);
    bad_h = h;
    bad_h.dest = h.source;
    assert (nat_routed_encode (&bad_h, msg, 64, out, sizeof out) == 0);
    assert (nat_routed_encode (&h, msg, 64, out, 83) == 0);       //  no room
    msg [0] = WIRE_COOKIE;
    assert (nat_routed_encode (&h, msg, 64, out, sizeof out) == 0);
    //  In place: the header written in front of a message already in the buffer
    memset (out, 0, sizeof out);
    out [20] = WIRE_DATA;
    nat_routed_encode_header (&h, out);
    assert (nat_routed_decode (out, 52, NULL) == NAT_ROUTED_OK);
    assert (strcmp (nat_routed_reason_name (NAT_ROUTED_BAD_TTL), "bad ttl") == 0);
    if (verbose)
        printf ("nat_routed: ok\n");
}
