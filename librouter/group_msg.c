/*  group_msg: encode and strictly decode group reports. The layout comes from
    schemas/route_wire.h only; the semantic checks live in group_msg_check,
    which decode runs on what it parsed and encode on what it is asked to
    write, as route_msg does. */
#include "group_msg.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "wire_bytes.h"

size_t
group_msg_size (const group_msg_t *msg)
{
    return ROUTE_WIRE_GROUPS_SIZE + (size_t) msg->count * ROUTE_WIRE_GROUP_SIZE;
}

group_msg_err_t
group_msg_check (const group_msg_t *msg)
{
    if (msg->origin == 0)
        return GROUP_MSG_BAD_PEER;
    if (msg->flags & ~ROUTE_WIRE_GROUPS_REQUEST)
        return GROUP_MSG_BAD_RESERVED;
    if (msg->count > ROUTE_WIRE_MAX_GROUPS)
        return GROUP_MSG_TOO_MANY;
    for (size_t i = 0; i < msg->count; i++) {
        const group_entry_t *g = &msg->groups [i];
        uint8_t kind = group_addr_kind (g->addr, NULL);
        if (!kind)
            return GROUP_MSG_BAD_ADDRESS;
        if (g->kind != kind)
            return GROUP_MSG_BAD_KIND;
        for (size_t o = 0; o < i; o++)
            if (memcmp (msg->groups [o].addr, g->addr, GROUP_ADDR_SIZE) == 0)
                return GROUP_MSG_DUPLICATE;
    }
    return GROUP_MSG_OK;
}

group_msg_err_t
group_msg_decode (const uint8_t *data, size_t size, group_msg_t *msg)
{
    if (size < ROUTE_WIRE_GROUPS_SIZE)
        return GROUP_MSG_TOO_SHORT;
    if (size > ROUTE_WIRE_MAX_SIZE)
        return GROUP_MSG_TOO_LONG;
    if (data [ROUTE_WIRE_GROUPS_TYPE] != ROUTE_WIRE_GROUPS)
        return GROUP_MSG_BAD_TYPE;
    if (data [ROUTE_WIRE_GROUPS_VERSION] != ROUTE_WIRE_VERSION)
        return GROUP_MSG_BAD_VERSION;
    if (!wire_zero (data + ROUTE_WIRE_GROUPS_RESERVED, ROUTE_WIRE_GROUPS_RESERVED_SIZE))
        return GROUP_MSG_BAD_RESERVED;
    size_t count = data [ROUTE_WIRE_GROUPS_COUNT];
    if (count > ROUTE_WIRE_MAX_GROUPS)
        return GROUP_MSG_TOO_MANY;
    size_t want = ROUTE_WIRE_GROUPS_SIZE + count * ROUTE_WIRE_GROUP_SIZE;
    if (size < want)
        return GROUP_MSG_TOO_SHORT;
    if (size > want)
        return GROUP_MSG_TOO_LONG;
    msg->count = (uint8_t) count;
    msg->flags = data [ROUTE_WIRE_GROUPS_FLAGS];
    msg->origin = wire_get (data + ROUTE_WIRE_GROUPS_ORIGIN, ROUTE_WIRE_GROUPS_ORIGIN_SIZE);
    msg->seqno = wire_get (data + ROUTE_WIRE_GROUPS_SEQNO, ROUTE_WIRE_GROUPS_SEQNO_SIZE);
    for (size_t i = 0; i < count; i++) {
        const uint8_t *p = data + ROUTE_WIRE_GROUPS_ENTRIES + i * ROUTE_WIRE_GROUP_SIZE;
        if (p [ROUTE_WIRE_GROUP_TYPE] != ROUTE_WIRE_GROUP)
            return GROUP_MSG_BAD_TYPE;
        if (!wire_zero (p + ROUTE_WIRE_GROUP_RESERVED, ROUTE_WIRE_GROUP_RESERVED_SIZE))
            return GROUP_MSG_BAD_RESERVED;
        msg->groups [i].kind = p [ROUTE_WIRE_GROUP_KIND];
        memcpy (msg->groups [i].addr, p + ROUTE_WIRE_GROUP_ADDRESS, GROUP_ADDR_SIZE);
    }
    return group_msg_check (msg);
}

size_t
group_msg_encode (const group_msg_t *msg, uint8_t *buf, size_t cap)
{
    if (group_msg_check (msg) != GROUP_MSG_OK)
        return 0;
    size_t size = group_msg_size (msg);
    if (size > cap)
        return 0;
    memset (buf, 0, size);
    buf [ROUTE_WIRE_GROUPS_TYPE] = ROUTE_WIRE_GROUPS;
    buf [ROUTE_WIRE_GROUPS_VERSION] = ROUTE_WIRE_VERSION;
    buf [ROUTE_WIRE_GROUPS_COUNT] = msg->count;
    buf [ROUTE_WIRE_GROUPS_FLAGS] = msg->flags;
    wire_put (buf + ROUTE_WIRE_GROUPS_ORIGIN, ROUTE_WIRE_GROUPS_ORIGIN_SIZE, msg->origin);
    wire_put (buf + ROUTE_WIRE_GROUPS_SEQNO, ROUTE_WIRE_GROUPS_SEQNO_SIZE, msg->seqno);
    for (size_t i = 0; i < msg->count; i++) {
        uint8_t *p = buf + ROUTE_WIRE_GROUPS_ENTRIES + i * ROUTE_WIRE_GROUP_SIZE;
        p [ROUTE_WIRE_GROUP_TYPE] = ROUTE_WIRE_GROUP;
        p [ROUTE_WIRE_GROUP_KIND] = msg->groups [i].kind;
        memcpy (p + ROUTE_WIRE_GROUP_ADDRESS, msg->groups [i].addr, GROUP_ADDR_SIZE);
    }
    return size;
}

const char *
group_msg_err_name (group_msg_err_t err)
{
    static const char *names [GROUP_MSG_ERRORS] = {
        "ok", "too short", "too long", "bad type", "bad version", "reserved bits set", "too many groups",
        "zero peer id", "bad address", "wrong kind", "group twice"
    };
    return err < GROUP_MSG_ERRORS ? names [err] : "unknown";
}

//  --------------------------------------------------------------------------
//  Self test: round trips (empty, full, both families), each semantic refusal
//  from one changed field, every prefix refused, single-byte changes each
//  refused with its own reason

static void
s_group (group_entry_t *g, const char *text)
{
    char err [200];
    group_addr_err_t rc = group_addr_parse (text, g->addr, &g->kind, err, sizeof err);
    assert (rc == GROUP_ADDR_OK);
}

void
group_msg_test (bool verbose)
{
    static group_msg_t msg, back, bad;
    static uint8_t buf [ROUTE_WIRE_MAX_SIZE + 64];
    const uint64_t me = 0xb4c804b23a21c6aaULL;

    memset (&msg, 0, sizeof msg);
    msg.origin = me;
    msg.seqno = 1765000000000000ULL;
    size_t n = group_msg_encode (&msg, buf, sizeof buf);
    assert (n == ROUTE_WIRE_GROUPS_SIZE && buf [0] == 0x32 && buf [1] == 1 && buf [4] == 0xaa && buf [11] == 0xb4);
    assert (group_msg_decode (buf, n, &back) == GROUP_MSG_OK && back.origin == me && back.count == 0
            && back.seqno == msg.seqno && back.flags == 0);

    //  Both families, both kinds, the request flag
    msg.count = 4;
    msg.flags = ROUTE_WIRE_GROUPS_REQUEST;
    s_group (&msg.groups [0], "239.1.2.3");
    s_group (&msg.groups [1], "10.99.0.1");
    s_group (&msg.groups [2], "ff3e::42");
    s_group (&msg.groups [3], "fd00::53");
    n = group_msg_encode (&msg, buf, sizeof buf);
    assert (n == ROUTE_WIRE_GROUPS_SIZE + 4 * ROUTE_WIRE_GROUP_SIZE);
    assert (buf [ROUTE_WIRE_GROUPS_ENTRIES] == 0x33 && buf [ROUTE_WIRE_GROUPS_ENTRIES + 1] == 1
            && buf [ROUTE_WIRE_GROUPS_ENTRIES + ROUTE_WIRE_GROUP_SIZE + 1] == 2);
    assert (buf [ROUTE_WIRE_GROUPS_ENTRIES + ROUTE_WIRE_GROUP_ADDRESS + 10] == 0xff
            && buf [ROUTE_WIRE_GROUPS_ENTRIES + ROUTE_WIRE_GROUP_ADDRESS + 12] == 239);
    memset (&back, 0xee, sizeof back);
    assert (group_msg_decode (buf, n, &back) == GROUP_MSG_OK);
    assert (back.count == 4 && back.flags == ROUTE_WIRE_GROUPS_REQUEST);
    for (size_t i = 0; i < 4; i++)
        assert (memcmp (&back.groups [i], &msg.groups [i], sizeof back.groups [i]) == 0);
    assert (group_msg_encode (&msg, buf, n - 1) == 0);

    //  The most groups, then one more
    static group_msg_t full;
    full = (group_msg_t) { .origin = me, .seqno = 7, .count = ROUTE_WIRE_MAX_GROUPS };
    for (size_t i = 0; i < full.count; i++) {
        char text [32];
        snprintf (text, sizeof text, "239.0.%zu.%zu", i / 8, i % 8 + 1);
        s_group (&full.groups [i], text);
    }
    n = group_msg_encode (&full, buf, sizeof buf);
    assert (n == 24 + 64 * 20 && n <= ROUTE_WIRE_MAX_SIZE);
    assert (group_msg_decode (buf, n, &back) == GROUP_MSG_OK && back.count == ROUTE_WIRE_MAX_GROUPS);
    full.count++;
    assert (group_msg_check (&full) == GROUP_MSG_TOO_MANY && group_msg_encode (&full, buf, sizeof buf) == 0);

    //  Semantic refusals
#define S_REFUSE(stmt, want) do { bad = msg; stmt; \
        assert (group_msg_check (&bad) == (want)); \
        assert (group_msg_encode (&bad, buf, sizeof buf) == 0); } while (0)
    S_REFUSE (bad.origin = 0, GROUP_MSG_BAD_PEER);
    S_REFUSE (bad.flags = 2, GROUP_MSG_BAD_RESERVED);
    S_REFUSE (bad.groups [0].kind = ROUTE_WIRE_GROUP_ANYCAST, GROUP_MSG_BAD_KIND);
    S_REFUSE (bad.groups [1].kind = ROUTE_WIRE_GROUP_MULTICAST, GROUP_MSG_BAD_KIND);
    S_REFUSE (bad.groups [1].kind = 0, GROUP_MSG_BAD_KIND);
    S_REFUSE (bad.groups [1].kind = 3, GROUP_MSG_BAD_KIND);
    S_REFUSE (memset (bad.groups [3].addr, 0, 16), GROUP_MSG_BAD_ADDRESS);
    S_REFUSE (bad.groups [1].addr [12] = 127, GROUP_MSG_BAD_ADDRESS);
    S_REFUSE ((bad.groups [1].addr [12] = 169, bad.groups [1].addr [13] = 254), GROUP_MSG_BAD_ADDRESS);
    S_REFUSE (memset (bad.groups [1].addr + 12, 0xff, 4), GROUP_MSG_BAD_ADDRESS);
    S_REFUSE (bad.groups [3] = bad.groups [1], GROUP_MSG_DUPLICATE);
#undef S_REFUSE

    //  Byte-level refusals
    n = group_msg_encode (&msg, buf, sizeof buf);
    assert (n > 0 && group_msg_decode (buf, n, &back) == GROUP_MSG_OK);
    for (size_t cut = 0; cut < n; cut++) {
        group_msg_err_t err = group_msg_decode (buf, cut, &back);
        assert (err == GROUP_MSG_TOO_SHORT);
    }
    buf [n] = 0;
    assert (group_msg_decode (buf, n + 1, &back) == GROUP_MSG_TOO_LONG);
    assert (group_msg_decode (buf, ROUTE_WIRE_MAX_SIZE + 1, &back) == GROUP_MSG_TOO_LONG);
    const size_t e0 = ROUTE_WIRE_GROUPS_ENTRIES, e1 = e0 + ROUTE_WIRE_GROUP_SIZE;
    static const struct { size_t at; uint8_t value; group_msg_err_t want; } flips [] = {
        { ROUTE_WIRE_GROUPS_TYPE, 0x30, GROUP_MSG_BAD_TYPE },
        { ROUTE_WIRE_GROUPS_VERSION, 2, GROUP_MSG_BAD_VERSION },
        { ROUTE_WIRE_GROUPS_RESERVED + 2, 1, GROUP_MSG_BAD_RESERVED },
        { ROUTE_WIRE_GROUPS_FLAGS, 0x81, GROUP_MSG_BAD_RESERVED },
        { ROUTE_WIRE_GROUPS_COUNT, ROUTE_WIRE_MAX_GROUPS + 1, GROUP_MSG_TOO_MANY },
        { ROUTE_WIRE_GROUPS_COUNT, 5, GROUP_MSG_TOO_SHORT },
        { ROUTE_WIRE_GROUPS_COUNT, 3, GROUP_MSG_TOO_LONG },
        { ROUTE_WIRE_GROUPS_ORIGIN, 0, GROUP_MSG_OK },
        { e0 + ROUTE_WIRE_GROUP_TYPE, 0x31, GROUP_MSG_BAD_TYPE },
        { e0 + ROUTE_WIRE_GROUP_RESERVED + 1, 4, GROUP_MSG_BAD_RESERVED },
        { e0 + ROUTE_WIRE_GROUP_KIND, 2, GROUP_MSG_BAD_KIND },
        { e1 + ROUTE_WIRE_GROUP_KIND, 9, GROUP_MSG_BAD_KIND },
        { e1 + ROUTE_WIRE_GROUP_ADDRESS + 12, 127, GROUP_MSG_BAD_ADDRESS },
        { e1 + ROUTE_WIRE_GROUP_ADDRESS + 12, 11, GROUP_MSG_OK },
        { e0 + ROUTE_WIRE_GROUP_ADDRESS + 12, 10, GROUP_MSG_BAD_KIND },
    };
    for (size_t i = 0; i < sizeof flips / sizeof flips [0]; i++) {
        uint8_t copy [ROUTE_WIRE_MAX_SIZE];
        memcpy (copy, buf, n);
        copy [flips [i].at] = flips [i].value;
        group_msg_err_t err = group_msg_decode (copy, n, &back);
        if (verbose || err != flips [i].want)
            printf ("  flip byte %zu to 0x%02x: %s (want %s)\n", flips [i].at, flips [i].value,
                    group_msg_err_name (err), group_msg_err_name (flips [i].want));
        assert (err == flips [i].want);
    }
    assert (strcmp (group_msg_err_name (GROUP_MSG_DUPLICATE), "group twice") == 0);
    assert (strcmp (group_msg_err_name (GROUP_MSG_ERRORS), "unknown") == 0);
    if (verbose)
        printf ("  group_msg: %d-byte header, %d-byte entries, %d at most: %d bytes\n", ROUTE_WIRE_GROUPS_SIZE,
                ROUTE_WIRE_GROUP_SIZE, ROUTE_WIRE_MAX_GROUPS,
                ROUTE_WIRE_GROUPS_SIZE + ROUTE_WIRE_MAX_GROUPS * ROUTE_WIRE_GROUP_SIZE);
}
