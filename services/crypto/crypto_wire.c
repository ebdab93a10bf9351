/*  crypto_wire: encode and strictly decode the tunnel's wire messages. */
#include "crypto_wire.h"
#include "bus_log.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void
crypto_wire_put32 (uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p [i] = (uint8_t) (v >> (8 * i));
}

uint32_t
crypto_wire_get32 (const uint8_t *p)
{
    return (uint32_t) p [0] | (uint32_t) p [1] << 8 | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 24;
}

void
crypto_wire_put64 (uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p [i] = (uint8_t) (v >> (8 * i));
}

uint64_t
crypto_wire_get64 (const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p [i];
    return v;
}

int
crypto_wire_type (const uint8_t *buf, size_t size, char *err, size_t errsize)
{
    if (!buf || size < WIRE_HEADER_SIZE)
        return bus_errf (err, errsize, "packet of %zu bytes is shorter than the %d-byte type header", size, WIRE_HEADER_SIZE);
    if (buf [1] || buf [2] || buf [3])
        return bus_errf (err, errsize, "reserved header bytes are not zero");
    switch (buf [0]) {
        case WIRE_INITIATION:
            if (size != WIRE_INITIATION_SIZE)
                return bus_errf (err, errsize, "handshake initiation is %zu bytes, expected %d",
                               size, WIRE_INITIATION_SIZE);
            return WIRE_INITIATION;
        case WIRE_RESPONSE:
            if (size != WIRE_RESPONSE_SIZE)
                return bus_errf (err, errsize, "handshake response is %zu bytes, expected %d",
                               size, WIRE_RESPONSE_SIZE);
            return WIRE_RESPONSE;
        case WIRE_DATA:
            if (size < WIRE_DATA_SIZE)
                return bus_errf (err, errsize, "data packet is %zu bytes, minimum is %d",
                               size, WIRE_DATA_SIZE);
            if (size > WIRE_MAX_PLAIN + WIRE_DATA_OVERHEAD)
                return bus_errf (err, errsize, "data packet is %zu bytes, maximum is %d",
                               size, WIRE_MAX_PLAIN + WIRE_DATA_OVERHEAD);
            return WIRE_DATA;
        case WIRE_ANNOUNCE:
            if (size < WIRE_ANNOUNCE_SIZE + 1)
                return bus_errf (err, errsize, "route announcement is %zu bytes, minimum is %d",
                               size, WIRE_ANNOUNCE_SIZE + 1);
            if (size > WIRE_ANNOUNCE_MAX + WIRE_DATA_OVERHEAD)
                return bus_errf (err, errsize, "route announcement is %zu bytes, maximum is %d",
                               size, WIRE_ANNOUNCE_MAX + WIRE_DATA_OVERHEAD);
            return WIRE_ANNOUNCE;
        case WIRE_FLOOD:
            if (size < WIRE_FLOOD_SIZE + 1)
                return bus_errf (err, errsize, "flood frame is %zu bytes, minimum is %d",
                               size, WIRE_FLOOD_SIZE + 1);
            if (size > WIRE_MAX_PLAIN + WIRE_DATA_OVERHEAD)
                return bus_errf (err, errsize, "flood frame is %zu bytes, maximum is %d",
                               size, WIRE_MAX_PLAIN + WIRE_DATA_OVERHEAD);
            return WIRE_FLOOD;
        default:
            return bus_errf (err, errsize, "unknown message type %u", buf [0]);
    }
}

void
crypto_wire_initiation_encode (const crypto_wire_initiation_t *msg, uint8_t out [WIRE_INITIATION_SIZE])
{
    memset (out, 0, WIRE_HEADER_SIZE);
    out [WIRE_INITIATION_TYPE] = WIRE_INITIATION;
    crypto_wire_put32 (out + WIRE_INITIATION_SENDER_INDEX, msg->sender_index);
    memcpy (out + WIRE_INITIATION_EPHEMERAL, msg->ephemeral, sizeof msg->ephemeral);
    memcpy (out + WIRE_INITIATION_ENCRYPTED_STATIC, msg->encrypted_static, sizeof msg->encrypted_static);
    memcpy (out + WIRE_INITIATION_ENCRYPTED_TIMESTAMP, msg->encrypted_timestamp, sizeof msg->encrypted_timestamp);
    memcpy (out + WIRE_INITIATION_MAC1, msg->mac1, sizeof msg->mac1);
    memcpy (out + WIRE_INITIATION_MAC2, msg->mac2, sizeof msg->mac2);
}

//  A response's mac2 is reserved (cookies answer initiations only): anything
//  but zeros means a peer speaking a protocol we do not, so it is refused
//  rather than ignored. An initiation's mac2 is nat's: the MAC under the
//  cookie of the peer's nat, written and checked there (services/nat/
//  nat_cookie_path.c, docs/nat.md "Cookie replies"); crypto passes it through.
static bool
s_is_zero (const uint8_t *p, size_t size)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < size; i++)
        acc |= p [i];
    return acc == 0;
}

int
crypto_wire_initiation_decode (crypto_wire_initiation_t *msg, const uint8_t *buf, size_t size,
                               char *err, size_t errsize)
{
    int type = crypto_wire_type (buf, size, err, errsize);
    if (type < 0)
        return -1;
    if (type != WIRE_INITIATION)
        return bus_errf (err, errsize, "message type %d is not a handshake initiation", type);
    msg->sender_index = crypto_wire_get32 (buf + WIRE_INITIATION_SENDER_INDEX);
    memcpy (msg->ephemeral, buf + WIRE_INITIATION_EPHEMERAL, sizeof msg->ephemeral);
    memcpy (msg->encrypted_static, buf + WIRE_INITIATION_ENCRYPTED_STATIC, sizeof msg->encrypted_static);
    memcpy (msg->encrypted_timestamp, buf + WIRE_INITIATION_ENCRYPTED_TIMESTAMP, sizeof msg->encrypted_timestamp);
    memcpy (msg->mac1, buf + WIRE_INITIATION_MAC1, sizeof msg->mac1);
    memcpy (msg->mac2, buf + WIRE_INITIATION_MAC2, sizeof msg->mac2);
    return 0;
}

void
crypto_wire_response_encode (const crypto_wire_response_t *msg, uint8_t out [WIRE_RESPONSE_SIZE])
{
    memset (out, 0, WIRE_HEADER_SIZE);
    out [WIRE_RESPONSE_TYPE] = WIRE_RESPONSE;
    crypto_wire_put32 (out + WIRE_RESPONSE_SENDER_INDEX, msg->sender_index);
    crypto_wire_put32 (out + WIRE_RESPONSE_RECEIVER_INDEX, msg->receiver_index);
    memcpy (out + WIRE_RESPONSE_EPHEMERAL, msg->ephemeral, sizeof msg->ephemeral);
    memcpy (out + WIRE_RESPONSE_ENCRYPTED_NOTHING, msg->encrypted_nothing, sizeof msg->encrypted_nothing);
    memcpy (out + WIRE_RESPONSE_MAC1, msg->mac1, sizeof msg->mac1);
    memcpy (out + WIRE_RESPONSE_MAC2, msg->mac2, sizeof msg->mac2);
}

int
crypto_wire_response_decode (crypto_wire_response_t *msg, const uint8_t *buf, size_t size,
                             char *err, size_t errsize)
{
    int type = crypto_wire_type (buf, size, err, errsize);
    if (type < 0)
        return -1;
    if (type != WIRE_RESPONSE)
        return bus_errf (err, errsize, "message type %d is not a handshake response", type);
    if (!s_is_zero (buf + WIRE_RESPONSE_MAC2, WIRE_RESPONSE_MAC2_SIZE))
        return bus_errf (err, errsize, "handshake response mac2 is not zero (cookies are not supported)");
    msg->sender_index = crypto_wire_get32 (buf + WIRE_RESPONSE_SENDER_INDEX);
    msg->receiver_index = crypto_wire_get32 (buf + WIRE_RESPONSE_RECEIVER_INDEX);
    memcpy (msg->ephemeral, buf + WIRE_RESPONSE_EPHEMERAL, sizeof msg->ephemeral);
    memcpy (msg->encrypted_nothing, buf + WIRE_RESPONSE_ENCRYPTED_NOTHING, sizeof msg->encrypted_nothing);
    memcpy (msg->mac1, buf + WIRE_RESPONSE_MAC1, sizeof msg->mac1);
    memcpy (msg->mac2, buf + WIRE_RESPONSE_MAC2, sizeof msg->mac2);
    return 0;
}

void
crypto_wire_data_header_encode (uint8_t out [WIRE_DATA_HEADER], uint32_t receiver_index, uint64_t counter)
{
    memset (out, 0, WIRE_HEADER_SIZE);
    out [WIRE_DATA_TYPE] = WIRE_DATA;
    crypto_wire_put32 (out + WIRE_DATA_RECEIVER_INDEX, receiver_index);
    crypto_wire_put64 (out + WIRE_DATA_COUNTER, counter);
}

int
crypto_wire_data_decode (crypto_wire_data_t *msg, const uint8_t *buf, size_t size, char *err, size_t errsize)
{
    int type = crypto_wire_type (buf, size, err, errsize);
    if (type < 0)
        return -1;
    //  A route announcement and a flood frame have data's layout (their
    //  header is authenticated too)
    if (type != WIRE_DATA && type != WIRE_ANNOUNCE && type != WIRE_FLOOD)
        return bus_errf (err, errsize, "message type %d is not a data packet", type);
    msg->receiver_index = crypto_wire_get32 (buf + WIRE_DATA_RECEIVER_INDEX);
    msg->counter = crypto_wire_get64 (buf + WIRE_DATA_COUNTER);
    msg->ciphertext_size = size - WIRE_DATA_HEADER;
    return 0;
}

void
crypto_wire_test (bool verbose)
{
    char err [128];
    //  Little-endian helpers against fixed bytes
    uint8_t b [8];
    crypto_wire_put64 (b, 0x0807060504030201ULL);
    for (int i = 0; i < 8; i++)
        assert (b [i] == i + 1);
    assert (crypto_wire_get64 (b) == 0x0807060504030201ULL);
    assert (crypto_wire_get32 (b) == 0x04030201U);

    //  Initiation round trip, exact offsets
    crypto_wire_initiation_t init, init2;
    memset (&init, 0, sizeof init);
    init.sender_index = 0xA1B2C3D4;
    memset (init.ephemeral, 0x11, 32);
    memset (init.encrypted_static, 0x22, 48);
    memset (init.encrypted_timestamp, 0x33, 28);
    memset (init.mac1, 0x44, 16);
    uint8_t wire [WIRE_INITIATION_SIZE];
    crypto_wire_initiation_encode (&init, wire);
    assert (wire [0] == 1 && wire [1] == 0 && wire [4] == 0xD4 && wire [7] == 0xA1);
    assert (wire [8] == 0x11 && wire [39] == 0x11 && wire [40] == 0x22 && wire [87] == 0x22);
    assert (wire [88] == 0x33 && wire [115] == 0x33 && wire [116] == 0x44 && wire [131] == 0x44);
    assert (wire [132] == 0 && wire [147] == 0);
    assert (crypto_wire_type (wire, sizeof wire, err, sizeof err) == WIRE_INITIATION);
    assert (crypto_wire_initiation_decode (&init2, wire, sizeof wire, err, sizeof err) == 0);
    assert (memcmp (&init, &init2, sizeof init) == 0);
    //  Wrong size, reserved byte, mac2, type
    assert (crypto_wire_initiation_decode (&init2, wire, sizeof wire - 1, err, sizeof err) == -1);
    if (verbose)
        printf ("  short initiation: %s\n", err);
    assert (strstr (err, "expected 148"));
    wire [2] = 1;
    assert (crypto_wire_initiation_decode (&init2, wire, sizeof wire, err, sizeof err) == -1);
    assert (strstr (err, "reserved"));
    wire [2] = 0;
    //  A non-zero mac2 (nat's, under a cookie) is taken as it is
    memset (wire + WIRE_INITIATION_MAC2, 0x5C, WIRE_INITIATION_MAC2_SIZE);
    assert (crypto_wire_initiation_decode (&init2, wire, sizeof wire, err, sizeof err) == 0);
    assert (init2.mac2 [0] == 0x5C && init2.mac2 [15] == 0x5C);
    memset (wire + WIRE_INITIATION_MAC2, 0, WIRE_INITIATION_MAC2_SIZE);
    wire [0] = 9;
    assert (crypto_wire_type (wire, sizeof wire, err, sizeof err) == -1);
    assert (strstr (err, "unknown message type 9"));

    //  Response round trip
    crypto_wire_response_t resp, resp2;
    memset (&resp, 0, sizeof resp);
    resp.sender_index = 7;
    resp.receiver_index = 0xFFFFFFFF;
    memset (resp.ephemeral, 0x55, 32);
    memset (resp.encrypted_nothing, 0x66, 16);
    memset (resp.mac1, 0x77, 16);
    uint8_t rwire [WIRE_RESPONSE_SIZE];
    crypto_wire_response_encode (&resp, rwire);
    assert (rwire [0] == 2 && rwire [4] == 7 && rwire [8] == 0xFF && rwire [12] == 0x55);
    assert (rwire [44] == 0x66 && rwire [60] == 0x77 && rwire [91] == 0);
    assert (crypto_wire_response_decode (&resp2, rwire, sizeof rwire, err, sizeof err) == 0);
    assert (memcmp (&resp, &resp2, sizeof resp) == 0);
    assert (crypto_wire_initiation_decode (&init2, rwire, sizeof rwire, err, sizeof err) == -1);
    rwire [WIRE_RESPONSE_MAC2 + 3] = 1;         //  a response's mac2 stays reserved
    assert (crypto_wire_response_decode (&resp2, rwire, sizeof rwire, err, sizeof err) == -1);
    assert (strstr (err, "mac2"));
    rwire [WIRE_RESPONSE_MAC2 + 3] = 0;

    //  Data header: keepalive is the minimum, larger than maximum is refused
    uint8_t data [WIRE_DATA_SIZE] = { 0 };
    crypto_wire_data_header_encode (data, 0x01020304, 0x1122334455667788ULL);
    assert (data [0] == 4 && data [4] == 4 && data [8] == 0x88 && data [15] == 0x11);
    crypto_wire_data_t d;
    assert (crypto_wire_data_decode (&d, data, sizeof data, err, sizeof err) == 0);
    assert (d.receiver_index == 0x01020304 && d.counter == 0x1122334455667788ULL);
    assert (d.ciphertext_size == 16);
    assert (crypto_wire_data_decode (&d, data, sizeof data - 1, err, sizeof err) == -1);
    assert (crypto_wire_data_decode (&d, data, WIRE_MAX_PLAIN + WIRE_DATA_OVERHEAD + 1,
                                     err, sizeof err) == -1);
    assert (crypto_wire_type (NULL, 0, err, sizeof err) == -1);
    assert (crypto_wire_type (data, 3, err, sizeof err) == -1);
}
