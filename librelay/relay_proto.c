/*  relay_proto: encode and strict parse of the relay's messages (format: relay_proto.h). */
#include "relay_proto.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static uint64_t
s_get64 (const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p [i];
    return v;
}

static void
s_put64 (uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p [i] = (uint8_t) v;
}

static uint16_t
s_get16 (const uint8_t *p)
{
    return (uint16_t) (p [0] | (p [1] << 8));
}

static void
s_put16 (uint8_t *p, uint16_t v)
{
    p [0] = (uint8_t) v;
    p [1] = (uint8_t) (v >> 8);
}

uint64_t relay_proto_data_peer (const uint8_t *data) { return s_get64 (data + RELAY_PROTO_DATA_PEER); }
void relay_proto_data_set_peer (uint8_t *data, uint64_t peer) { s_put64 (data + RELAY_PROTO_DATA_PEER, peer); }

static uint32_t
s_get32 (const uint8_t *p)
{
    return (uint32_t) p [0] | ((uint32_t) p [1] << 8) | ((uint32_t) p [2] << 16) | ((uint32_t) p [3] << 24);
}

static void
s_put32 (uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++, v >>= 8)
        p [i] = (uint8_t) v;
}

//  The 20-byte address field, both ways
static relay_proto_err_t
s_get_addr (const uint8_t *p, relay_msg_t *msg)
{
    if (p [1] != 0)
        return RELAY_PROTO_BAD_RESERVED;
    uint16_t port = s_get16 (p + 2);
    if (p [0] == 4) {
        for (int i = 8; i < 20; i++)
            if (p [i])
                return RELAY_PROTO_BAD_ADDRESS;
        struct sockaddr_in *sin = (struct sockaddr_in *) &msg->addr;
        sin->sin_family = AF_INET;
        sin->sin_port = htons (port);
        memcpy (&sin->sin_addr, p + 4, 4);
        msg->addr_len = sizeof *sin;
        return RELAY_PROTO_OK;
    }
    if (p [0] == 6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &msg->addr;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons (port);
        memcpy (&sin6->sin6_addr, p + 4, 16);
        msg->addr_len = sizeof *sin6;
        return RELAY_PROTO_OK;
    }
    return RELAY_PROTO_BAD_ADDRESS;
}

static bool
s_put_addr (uint8_t *p, const struct sockaddr_storage *addr, socklen_t len)
{
    memset (p, 0, RELAY_PROTO_ADDR_SIZE);
    if (addr->ss_family == AF_INET && len >= sizeof (struct sockaddr_in)) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *) addr;
        p [0] = 4;
        s_put16 (p + 2, ntohs (sin->sin_port));
        memcpy (p + 4, &sin->sin_addr, 4);
        return true;
    }
    if (addr->ss_family == AF_INET6 && len >= sizeof (struct sockaddr_in6)) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) addr;
        p [0] = 6;
        s_put16 (p + 2, ntohs (sin6->sin6_port));
        memcpy (p + 4, &sin6->sin6_addr, 16);
        return true;
    }
    return false;
}

relay_proto_err_t
relay_proto_parse (const uint8_t *data, size_t size, relay_msg_t *msg)
{
    assert (msg);
    memset (msg, 0, sizeof *msg);
    if (!data || size < RELAY_PROTO_HEADER_SIZE)
        return RELAY_PROTO_TOO_SHORT;
    if (size > RELAY_PROTO_MAX_SIZE)
        return RELAY_PROTO_TOO_LONG;
    if (data [0] < RELAY_PROTO_TYPE_MIN || data [0] > RELAY_PROTO_TYPE_MAX)
        return RELAY_PROTO_BAD_TYPE;
    if (data [1] != RELAY_PROTO_VERSION)
        return RELAY_PROTO_BAD_VERSION;
    if (data [2] || data [3])
        return RELAY_PROTO_BAD_RESERVED;
    msg->type = data [0];
    //  Exact sizes for fixed messages, minimums for DATA and PING
    size_t need = 0;
    bool exact = true;
    switch (msg->type) {
        case RELAY_PROTO_REGISTER:    need = RELAY_PROTO_REGISTER_SIZE; break;
        case RELAY_PROTO_REGISTERED:  need = RELAY_PROTO_REGISTERED_SIZE; break;
        case RELAY_PROTO_ESTABLISHED: need = RELAY_PROTO_ESTABLISHED_SIZE; break;
        case RELAY_PROTO_DATA:        need = RELAY_PROTO_DATA_HEADER; exact = false; break;
        case RELAY_PROTO_PING:        need = RELAY_PROTO_PING_MIN; exact = false; break;
        case RELAY_PROTO_PONG:        need = RELAY_PROTO_PONG_SIZE; break;
        case RELAY_PROTO_ERROR:       need = RELAY_PROTO_ERROR_SIZE; break;
        default: assert (false);
    }
    if (size < need)
        return RELAY_PROTO_TOO_SHORT;
    if (exact && size != need)
        return RELAY_PROTO_BAD_SIZE;
    relay_proto_err_t err = RELAY_PROTO_OK;
    switch (msg->type) {
        case RELAY_PROTO_REGISTER:
            msg->network = s_get64 (data + 4);
            msg->peer = s_get64 (data + 12);
            msg->expiry = s_get64 (data + 20);
            msg->nonce = s_get64 (data + 28);
            memcpy (msg->mac, data + 36, RELAY_PROTO_MAC_SIZE);
            break;
        case RELAY_PROTO_REGISTERED:
            msg->peer = s_get64 (data + 4);
            msg->nonce = s_get64 (data + 12);
            err = s_get_addr (data + 20, msg);
            break;
        case RELAY_PROTO_ESTABLISHED:
            msg->peer = s_get64 (data + 4);
            err = s_get_addr (data + 12, msg);
            break;
        case RELAY_PROTO_DATA:
            msg->network = s_get32 (data + 4);
            msg->peer = s_get64 (data + 8);
            msg->payload = data + RELAY_PROTO_DATA_HEADER;
            msg->payload_size = size - RELAY_PROTO_DATA_HEADER;
            break;
        case RELAY_PROTO_PING:
            msg->network = s_get32 (data + 4);
            msg->peer = s_get64 (data + 8);
            msg->nonce = s_get64 (data + 16);
            msg->payload = data + RELAY_PROTO_PING_MIN;
            msg->payload_size = size - RELAY_PROTO_PING_MIN;
            break;
        case RELAY_PROTO_PONG:
            msg->peer = s_get64 (data + 4);
            msg->nonce = s_get64 (data + 12);
            break;
        case RELAY_PROTO_ERROR:
            msg->code = s_get16 (data + 4);
            if (data [6] || data [7])
                err = RELAY_PROTO_BAD_RESERVED;
            msg->peer = s_get64 (data + 8);
            break;
    }
    if (err != RELAY_PROTO_OK) {
        memset (msg, 0, sizeof *msg);
        return err;
    }
    return RELAY_PROTO_OK;
}

size_t
relay_proto_encode (const relay_msg_t *msg, uint8_t *buf, size_t cap)
{
    assert (msg && buf);
    size_t size = 0;
    switch (msg->type) {
        case RELAY_PROTO_REGISTER:    size = RELAY_PROTO_REGISTER_SIZE; break;
        case RELAY_PROTO_REGISTERED:  size = RELAY_PROTO_REGISTERED_SIZE; break;
        case RELAY_PROTO_ESTABLISHED: size = RELAY_PROTO_ESTABLISHED_SIZE; break;
        case RELAY_PROTO_DATA:        size = RELAY_PROTO_DATA_HEADER + msg->payload_size; break;
        case RELAY_PROTO_PING:        size = RELAY_PROTO_PING_MIN + msg->payload_size; break;
        case RELAY_PROTO_PONG:        size = RELAY_PROTO_PONG_SIZE; break;
        case RELAY_PROTO_ERROR:       size = RELAY_PROTO_ERROR_SIZE; break;
        default: return 0;
    }
    if (size > cap || size > RELAY_PROTO_MAX_SIZE)
        return 0;
    memset (buf, 0, size < RELAY_PROTO_PING_MIN ? size : RELAY_PROTO_PING_MIN);
    buf [0] = msg->type;
    buf [1] = RELAY_PROTO_VERSION;
    switch (msg->type) {
        case RELAY_PROTO_REGISTER:
            s_put64 (buf + 4, msg->network);
            s_put64 (buf + 12, msg->peer);
            s_put64 (buf + 20, msg->expiry);
            s_put64 (buf + 28, msg->nonce);
            memcpy (buf + 36, msg->mac, RELAY_PROTO_MAC_SIZE);
            break;
        case RELAY_PROTO_REGISTERED:
            s_put64 (buf + 4, msg->peer);
            s_put64 (buf + 12, msg->nonce);
            if (!s_put_addr (buf + 20, &msg->addr, msg->addr_len))
                return 0;
            break;
        case RELAY_PROTO_ESTABLISHED:
            s_put64 (buf + 4, msg->peer);
            if (!s_put_addr (buf + 12, &msg->addr, msg->addr_len))
                return 0;
            break;
        case RELAY_PROTO_DATA:
            s_put32 (buf + 4, (uint32_t) msg->network);
            s_put64 (buf + 8, msg->peer);
            if (msg->payload_size)
                memmove (buf + RELAY_PROTO_DATA_HEADER, msg->payload, msg->payload_size);
            break;
        case RELAY_PROTO_PING:
            s_put32 (buf + 4, (uint32_t) msg->network);
            s_put64 (buf + 8, msg->peer);
            s_put64 (buf + 16, msg->nonce);
            if (msg->payload_size && msg->payload)
                memmove (buf + RELAY_PROTO_PING_MIN, msg->payload, msg->payload_size);
            else
                memset (buf + RELAY_PROTO_PING_MIN, 0, msg->payload_size);
            break;
        case RELAY_PROTO_PONG:
            s_put64 (buf + 4, msg->peer);
            s_put64 (buf + 12, msg->nonce);
            break;
        case RELAY_PROTO_ERROR:
            s_put16 (buf + 4, msg->code);
            s_put64 (buf + 8, msg->peer);
            break;
    }
    return size;
}

const char *
relay_proto_type_name (uint8_t type)
{
    switch (type) {
        case RELAY_PROTO_REGISTER:    return "register";
        case RELAY_PROTO_REGISTERED:  return "registered";
        case RELAY_PROTO_ESTABLISHED: return "established";
        case RELAY_PROTO_DATA:        return "data";
        case RELAY_PROTO_PING:        return "ping";
        case RELAY_PROTO_PONG:        return "pong";
        case RELAY_PROTO_ERROR:       return "error";
        default:                      return "unknown";
    }
}

const char *
relay_proto_err_name (relay_proto_err_t err)
{
    static const char *names [] = {
        "ok", "too short", "bad type", "bad version", "bad reserved", "bad size",
        "bad address", "too long"
    };
    return (unsigned) err < RELAY_PROTO_ERRORS ? names [err] : "unknown";
}

//  --------------------------------------------------------------------------
//  Self test

static void
s_roundtrip (relay_msg_t *msg, size_t expect_size)
{
    uint8_t buf [256];
    size_t size = relay_proto_encode (msg, buf, sizeof buf);
    assert (size == expect_size);
    relay_msg_t back;
    assert (relay_proto_parse (buf, size, &back) == RELAY_PROTO_OK);
    assert (back.type == msg->type && back.peer == msg->peer);
    //  Every shorter prefix is refused, never read past
    for (size_t cut = 0; cut < size; cut++) {
        relay_msg_t m;
        if (msg->type == RELAY_PROTO_DATA && cut >= RELAY_PROTO_DATA_HEADER)
            continue;
        if (msg->type == RELAY_PROTO_PING && cut >= RELAY_PROTO_PING_MIN)
            continue;
        assert (relay_proto_parse (buf, cut, &m) != RELAY_PROTO_OK);
    }
    //  Fixed sizes refuse one byte more
    if (msg->type != RELAY_PROTO_DATA && msg->type != RELAY_PROTO_PING) {
        relay_msg_t m;
        buf [size] = 0;
        assert (relay_proto_parse (buf, size + 1, &m) == RELAY_PROTO_BAD_SIZE);
    }
    *msg = back;
}

void
relay_proto_test (bool verbose)
{
    if (verbose)
        printf (" * relay_proto: ");

    //  REGISTER round trip, field by field, and the documented offsets
    relay_msg_t msg = { .type = RELAY_PROTO_REGISTER, .peer = 0x1122334455667788ULL,
                        .network = 0xa1a2a3a4a5a6a7a8ULL, .expiry = 1800000000,
                        .nonce = 42 };
    memset (msg.mac, 0xab, sizeof msg.mac);
    uint8_t buf [256];
    size_t size = relay_proto_encode (&msg, buf, sizeof buf);
    assert (size == 68);
    assert (buf [0] == 8 && buf [1] == 1 && buf [2] == 0 && buf [3] == 0);
    assert (buf [4] == 0xa8 && buf [11] == 0xa1);          //  little-endian network tag
    assert (buf [12] == 0x88 && buf [19] == 0x11);         //  then the peer
    assert (buf [36] == 0xab && buf [67] == 0xab);
    s_roundtrip (&msg, 68);
    assert (msg.network == 0xa1a2a3a4a5a6a7a8ULL && msg.expiry == 1800000000 && msg.nonce == 42);
    assert (msg.mac [0] == 0xab && msg.mac [31] == 0xab);

    //  REGISTERED with IPv4 and IPv6 observed addresses
    relay_msg_t reg = { .type = RELAY_PROTO_REGISTERED, .peer = 7, .nonce = 9 };
    struct sockaddr_in *sin = (struct sockaddr_in *) &reg.addr;
    sin->sin_family = AF_INET;
    sin->sin_port = htons (51820);
    inet_pton (AF_INET, "192.0.2.1", &sin->sin_addr);
    reg.addr_len = sizeof *sin;
    size = relay_proto_encode (&reg, buf, sizeof buf);
    assert (size == 40 && size < RELAY_PROTO_REGISTER_SIZE);
    assert (buf [20] == 4 && buf [22] == (51820 & 0xff) && buf [24] == 192);
    s_roundtrip (&reg, 40);
    assert (reg.nonce == 9 && reg.addr.ss_family == AF_INET);
    assert (ntohs (((struct sockaddr_in *) &reg.addr)->sin_port) == 51820);
    //  IPv4 with junk after the 4 address bytes, and an unknown family
    relay_proto_encode (&reg, buf, sizeof buf);
    buf [30] = 1;
    relay_msg_t bad;
    assert (relay_proto_parse (buf, 40, &bad) == RELAY_PROTO_BAD_ADDRESS);
    buf [30] = 0;
    buf [20] = 5;
    assert (relay_proto_parse (buf, 40, &bad) == RELAY_PROTO_BAD_ADDRESS);
    buf [20] = 4;
    buf [21] = 1;
    assert (relay_proto_parse (buf, 40, &bad) == RELAY_PROTO_BAD_RESERVED);

    relay_msg_t est = { .type = RELAY_PROTO_ESTABLISHED, .peer = 99 };
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &est.addr;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons (4000);
    inet_pton (AF_INET6, "2001:db8::1", &sin6->sin6_addr);
    est.addr_len = sizeof *sin6;
    s_roundtrip (&est, 32);
    assert (est.addr.ss_family == AF_INET6 && est.addr_len == sizeof (struct sockaddr_in6));

    //  An address family the format cannot carry is not encoded
    relay_msg_t unix_addr = { .type = RELAY_PROTO_ESTABLISHED };
    unix_addr.addr.ss_family = AF_UNIX;
    unix_addr.addr_len = sizeof unix_addr.addr;
    assert (relay_proto_encode (&unix_addr, buf, sizeof buf) == 0);

    //  DATA: header then payload; empty payload allowed
    const uint8_t payload [] = "ciphertext";
    relay_msg_t data = { .type = RELAY_PROTO_DATA, .peer = 5, .network = 0xa5a6a7a8,
                         .payload = payload, .payload_size = sizeof payload };
    size = relay_proto_encode (&data, buf, sizeof buf);
    assert (size == 16 + sizeof payload);
    assert (buf [4] == 0xa8 && buf [7] == 0xa5 && buf [8] == 5);
    relay_msg_t got;
    assert (relay_proto_parse (buf, size, &got) == RELAY_PROTO_OK);
    assert (got.network == 0xa5a6a7a8 && relay_proto_data_peer (buf) == 5);
    assert (got.payload == buf + 16 && got.payload_size == sizeof payload);
    assert (memcmp (got.payload, payload, sizeof payload) == 0);
    relay_proto_data_set_peer (buf, 6);
    assert (relay_proto_parse (buf, size, &got) == RELAY_PROTO_OK && got.peer == 6);
    data.payload_size = 0;
    s_roundtrip (&data, 16);
    //  Does not fit
    data.payload_size = sizeof payload;
    assert (relay_proto_encode (&data, buf, 16) == 0);

    //  PING with padding; PONG never larger than the smallest PING
    relay_msg_t ping = { .type = RELAY_PROTO_PING, .peer = 3, .nonce = 77, .payload_size = 100 };
    size = relay_proto_encode (&ping, buf, sizeof buf);
    assert (size == 124);
    assert (relay_proto_parse (buf, size, &got) == RELAY_PROTO_OK);
    assert (got.nonce == 77 && got.payload_size == 100);
    relay_msg_t pong = { .type = RELAY_PROTO_PONG, .peer = 3, .nonce = 77 };
    s_roundtrip (&pong, 20);
    assert (RELAY_PROTO_PONG_SIZE <= RELAY_PROTO_PING_MIN);
    //  Every reply is no larger than the smallest message that can cause it
    assert (RELAY_PROTO_REGISTERED_SIZE <= RELAY_PROTO_REGISTER_SIZE);
    assert (RELAY_PROTO_ERROR_SIZE <= RELAY_PROTO_DATA_HEADER);

    relay_msg_t error = { .type = RELAY_PROTO_ERROR, .code = RELAY_PROTO_CODE_UNKNOWN_PEER, .peer = 8 };
    s_roundtrip (&error, 16);
    assert (error.code == RELAY_PROTO_CODE_UNKNOWN_PEER && error.peer == 8);
    relay_proto_encode (&error, buf, sizeof buf);
    buf [7] = 1;
    assert (relay_proto_parse (buf, 16, &got) == RELAY_PROTO_BAD_RESERVED);

    //  Header checks, in order
    uint8_t hdr [68] = { RELAY_PROTO_REGISTER, 1, 0, 0 };
    assert (relay_proto_parse (hdr, 3, &got) == RELAY_PROTO_TOO_SHORT);
    assert (relay_proto_parse (NULL, 0, &got) == RELAY_PROTO_TOO_SHORT);
    assert (relay_proto_parse (hdr, 67, &got) == RELAY_PROTO_TOO_SHORT);
    assert (relay_proto_parse (hdr, 68, &got) == RELAY_PROTO_OK);
    hdr [1] = 2;
    assert (relay_proto_parse (hdr, 68, &got) == RELAY_PROTO_BAD_VERSION);
    hdr [1] = 1;
    hdr [3] = 1;
    assert (relay_proto_parse (hdr, 68, &got) == RELAY_PROTO_BAD_RESERVED);
    hdr [3] = 0;
    //  No type of the tunnel (1..4), STUN (0..3) or TURN ChannelData (0x40..) parses
    for (int t = 0; t < 256; t++) {
        hdr [0] = (uint8_t) t;
        relay_proto_err_t e = relay_proto_parse (hdr, 68, &got);
        if (t < 8 || t > 14)
            assert (e == RELAY_PROTO_BAD_TYPE);
    }
    assert (strcmp (relay_proto_type_name (RELAY_PROTO_DATA), "data") == 0);
    assert (strcmp (relay_proto_type_name (0), "unknown") == 0);
    assert (strcmp (relay_proto_err_name (RELAY_PROTO_BAD_SIZE), "bad size") == 0);
    assert (strcmp (relay_proto_err_name (RELAY_PROTO_ERRORS), "unknown") == 0);

    //  Random bytes never crash and what parses re-encodes to the same bytes
    uint32_t seed = 12345;
    for (int round = 0; round < 20000; round++) {
        uint8_t rnd [80];
        size_t n = (size_t) (round % 81);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245 + 12345;
            rnd [i] = (uint8_t) (seed >> 16);
        }
        if (n > 4) {
            rnd [0] = (uint8_t) (8 + round % 7);
            rnd [1] = 1;
            rnd [2] = rnd [3] = 0;
        }
        if (relay_proto_parse (rnd, n, &got) == RELAY_PROTO_OK) {
            uint8_t again [128];
            size_t m = relay_proto_encode (&got, again, sizeof again);
            assert (m == n && memcmp (again, rnd, n) == 0);
        }
    }
    if (verbose)
        printf ("OK\n");
}
