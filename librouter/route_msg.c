/*  route_msg: encode and strictly decode route announcements. The byte layout
    comes from schemas/route_wire.h only; the semantic checks live in one
    function, route_msg_check, which decode runs on what it parsed and encode
    on what it is asked to write, so both ends apply the same rules. */
#include "route_msg.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "wire_bytes.h"

size_t
route_msg_entry_size (const route_entry_t *entry)
{
    return ROUTE_WIRE_ROUTE_SIZE + 8 * (size_t) entry->hops;
}

size_t
route_msg_size (const route_msg_t *msg)
{
    size_t size = ROUTE_WIRE_ANNOUNCE_SIZE;
    for (size_t i = 0; i < msg->count && i < ROUTE_WIRE_MAX_ROUTES; i++)
        size += route_msg_entry_size (&msg->routes [i]);
    return size;
}

static route_msg_err_t
s_check_entry (const route_msg_t *msg, const route_entry_t *e)
{
    if (e->hops == 0 || e->hops > ROUTE_WIRE_MAX_PATH)
        return ROUTE_MSG_BAD_HOPS;
    if (e->flags & ~(ROUTE_WIRE_FLAG_RELAY | ROUTE_WIRE_FLAG_TURN))
        return ROUTE_MSG_BAD_RESERVED;
    if (e->metric != ROUTE_WIRE_METRIC_RETRACTED
    &&  (e->metric < (uint32_t) ROUTE_WIRE_MIN_HOP_METRIC * e->hops || e->metric > ROUTE_WIRE_MAX_METRIC))
        return ROUTE_MSG_BAD_METRIC;
    if (e->dest == 0)
        return ROUTE_MSG_BAD_PEER;
    if (e->path [0] != msg->origin)
        return ROUTE_MSG_NOT_FIRST;
    for (size_t h = 0; h < e->hops; h++) {
        if (e->path [h] == 0)
            return ROUTE_MSG_BAD_PEER;
        if (e->path [h] == e->dest)
            return ROUTE_MSG_LOOP;
        for (size_t o = 0; o < h; o++)
            if (e->path [o] == e->path [h])
                return ROUTE_MSG_LOOP;
    }
    return ROUTE_MSG_OK;
}

route_msg_err_t
route_msg_check (const route_msg_t *msg)
{
    if (msg->origin == 0)
        return ROUTE_MSG_BAD_PEER;
    if (msg->count > ROUTE_WIRE_MAX_ROUTES)
        return ROUTE_MSG_TOO_MANY;
    for (size_t i = 0; i < msg->count; i++) {
        route_msg_err_t err = s_check_entry (msg, &msg->routes [i]);
        if (err)
            return err;
        for (size_t o = 0; o < i; o++)
            if (msg->routes [o].dest == msg->routes [i].dest)
                return ROUTE_MSG_DUPLICATE;
    }
    return route_msg_size (msg) > ROUTE_WIRE_MAX_SIZE ? ROUTE_MSG_TOO_LONG : ROUTE_MSG_OK;
}

route_msg_err_t
route_msg_decode (const uint8_t *data, size_t size, route_msg_t *msg)
{
    if (size < ROUTE_WIRE_ANNOUNCE_SIZE)
        return ROUTE_MSG_TOO_SHORT;
    if (size > ROUTE_WIRE_MAX_SIZE)
        return ROUTE_MSG_TOO_LONG;
    if (data [ROUTE_WIRE_ANNOUNCE_TYPE] != ROUTE_WIRE_ANNOUNCE)
        return ROUTE_MSG_BAD_TYPE;
    if (data [ROUTE_WIRE_ANNOUNCE_VERSION] != ROUTE_WIRE_VERSION)
        return ROUTE_MSG_BAD_VERSION;
    if (!wire_zero (data + ROUTE_WIRE_ANNOUNCE_RESERVED, ROUTE_WIRE_ANNOUNCE_RESERVED_SIZE))
        return ROUTE_MSG_BAD_RESERVED;
    uint64_t count = wire_get (data + ROUTE_WIRE_ANNOUNCE_COUNT, ROUTE_WIRE_ANNOUNCE_COUNT_SIZE);
    if (count > ROUTE_WIRE_MAX_ROUTES)
        return ROUTE_MSG_TOO_MANY;
    msg->count = (uint16_t) count;
    msg->origin = wire_get (data + ROUTE_WIRE_ANNOUNCE_ORIGIN, ROUTE_WIRE_ANNOUNCE_ORIGIN_SIZE);
    msg->seqno = wire_get (data + ROUTE_WIRE_ANNOUNCE_SEQNO, ROUTE_WIRE_ANNOUNCE_SEQNO_SIZE);

    size_t at = ROUTE_WIRE_ANNOUNCE_ROUTES;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *p = data + at;
        if (size - at < ROUTE_WIRE_ROUTE_SIZE)
            return ROUTE_MSG_TOO_SHORT;
        if (p [ROUTE_WIRE_ROUTE_TYPE] != ROUTE_WIRE_ROUTE)
            return ROUTE_MSG_BAD_TYPE;
        if (!wire_zero (p + ROUTE_WIRE_ROUTE_RESERVED, ROUTE_WIRE_ROUTE_RESERVED_SIZE))
            return ROUTE_MSG_BAD_RESERVED;
        route_entry_t *e = &msg->routes [i];
        e->hops = p [ROUTE_WIRE_ROUTE_HOPS];
        if (e->hops == 0 || e->hops > ROUTE_WIRE_MAX_PATH)
            return ROUTE_MSG_BAD_HOPS;
        if (size - at < route_msg_entry_size (e))
            return ROUTE_MSG_TOO_SHORT;
        e->flags = p [ROUTE_WIRE_ROUTE_FLAGS];
        e->metric = (uint32_t) wire_get (p + ROUTE_WIRE_ROUTE_METRIC, ROUTE_WIRE_ROUTE_METRIC_SIZE);
        e->dest = wire_get (p + ROUTE_WIRE_ROUTE_DEST, ROUTE_WIRE_ROUTE_DEST_SIZE);
        for (size_t h = 0; h < e->hops; h++)
            e->path [h] = wire_get (p + ROUTE_WIRE_ROUTE_PATH + 8 * h, 8);
        at += route_msg_entry_size (e);
    }
    if (at != size)
        return ROUTE_MSG_TOO_LONG;
    return route_msg_check (msg);
}

size_t
route_msg_encode (const route_msg_t *msg, uint8_t *buf, size_t cap)
{
    if (route_msg_check (msg) != ROUTE_MSG_OK)
        return 0;
    size_t size = route_msg_size (msg);
    if (size > cap)
        return 0;
    memset (buf, 0, size);
    buf [ROUTE_WIRE_ANNOUNCE_TYPE] = ROUTE_WIRE_ANNOUNCE;
    buf [ROUTE_WIRE_ANNOUNCE_VERSION] = ROUTE_WIRE_VERSION;
    wire_put (buf + ROUTE_WIRE_ANNOUNCE_COUNT, ROUTE_WIRE_ANNOUNCE_COUNT_SIZE, msg->count);
    wire_put (buf + ROUTE_WIRE_ANNOUNCE_ORIGIN, ROUTE_WIRE_ANNOUNCE_ORIGIN_SIZE, msg->origin);
    wire_put (buf + ROUTE_WIRE_ANNOUNCE_SEQNO, ROUTE_WIRE_ANNOUNCE_SEQNO_SIZE, msg->seqno);
    size_t at = ROUTE_WIRE_ANNOUNCE_ROUTES;
    for (size_t i = 0; i < msg->count; i++) {
        const route_entry_t *e = &msg->routes [i];
        uint8_t *p = buf + at;
        p [ROUTE_WIRE_ROUTE_TYPE] = ROUTE_WIRE_ROUTE;
        p [ROUTE_WIRE_ROUTE_HOPS] = e->hops;
        p [ROUTE_WIRE_ROUTE_FLAGS] = e->flags;
        wire_put (p + ROUTE_WIRE_ROUTE_METRIC, ROUTE_WIRE_ROUTE_METRIC_SIZE, e->metric);
        wire_put (p + ROUTE_WIRE_ROUTE_DEST, ROUTE_WIRE_ROUTE_DEST_SIZE, e->dest);
        for (size_t h = 0; h < e->hops; h++)
            wire_put (p + ROUTE_WIRE_ROUTE_PATH + 8 * h, 8, e->path [h]);
        at += route_msg_entry_size (e);
    }
    assert (at == size);
    return size;
}

const char *
route_msg_err_name (route_msg_err_t err)
{
    static const char *names [ROUTE_MSG_ERRORS] = {
        "ok", "too short", "too long", "bad type", "bad version", "reserved bits set",
        "too many routes", "bad hop count", "bad metric", "zero peer id",
        "path does not start with the announcer", "loop in the path", "destination twice"
    };
    return err < ROUTE_MSG_ERRORS ? names [err] : "unknown";
}

//  --------------------------------------------------------------------------
//  Self test: round trips at the format's bounds, then each refusal from one
//  changed byte of a valid announcement (so each check is shown to bite).

static void
s_entry (route_entry_t *e, uint64_t dest, uint32_t metric, size_t hops, uint64_t first)
{
    memset (e, 0, sizeof *e);
    e->dest = dest;
    e->metric = metric;
    e->hops = (uint8_t) hops;
    for (size_t h = 0; h < hops; h++)
        e->path [h] = h ? 0x1000 + h : first;
}

static bool
s_same (const route_entry_t *a, const route_entry_t *b)
{
    return a->dest == b->dest && a->metric == b->metric && a->flags == b->flags && a->hops == b->hops
        && memcmp (a->path, b->path, a->hops * sizeof a->path [0]) == 0;
}

void
route_msg_test (bool verbose)
{
    static route_msg_t msg, back;
    static uint8_t buf [ROUTE_WIRE_MAX_SIZE + 64];
    const uint64_t me = 0xb4c804b23a21c6aaULL;

    //  Empty announcement: header only
    memset (&msg, 0, sizeof msg);
    msg.origin = me;
    msg.seqno = 1700000000000000ULL;
    size_t n = route_msg_encode (&msg, buf, sizeof buf);
    assert (n == ROUTE_WIRE_ANNOUNCE_SIZE);
    assert (buf [0] == 0x30 && buf [1] == 1);
    assert (buf [4] == 0xaa && buf [11] == 0xb4);       //  peer id as a LE u64
    assert (route_msg_decode (buf, n, &back) == ROUTE_MSG_OK);
    assert (back.origin == me && back.seqno == msg.seqno && back.count == 0);

    //  As many one-hop entries as fit, then one more refused
    msg.count = ROUTE_WIRE_MAX_ROUTES;
    for (size_t i = 0; i < msg.count; i++)
        s_entry (&msg.routes [i], 0x100 + i, ROUTE_WIRE_MIN_HOP_METRIC + (uint32_t) i, 1, me);
    msg.routes [3].metric = ROUTE_WIRE_METRIC_RETRACTED;
    msg.routes [4].flags = ROUTE_WIRE_FLAG_RELAY | ROUTE_WIRE_FLAG_TURN;
    n = route_msg_encode (&msg, buf, sizeof buf);
    assert (n == ROUTE_WIRE_ANNOUNCE_SIZE + ROUTE_WIRE_MAX_ROUTES * 24 && n <= ROUTE_WIRE_MAX_SIZE);
    memset (&back, 0xee, sizeof back);
    assert (route_msg_decode (buf, n, &back) == ROUTE_MSG_OK);
    assert (back.count == msg.count);
    for (size_t i = 0; i < msg.count; i++)
        assert (s_same (&back.routes [i], &msg.routes [i]));
    assert (route_msg_encode (&msg, buf, n - 1) == 0);  //  cap too small
    msg.count++;
    assert (route_msg_check (&msg) == ROUTE_MSG_TOO_MANY);
    assert (route_msg_encode (&msg, buf, sizeof buf) == 0);

    //  The longest path, at the largest metric
    msg.count = 1;
    s_entry (&msg.routes [0], 0x42, ROUTE_WIRE_MAX_METRIC, ROUTE_WIRE_MAX_PATH, me);
    n = route_msg_encode (&msg, buf, sizeof buf);
    assert (n == ROUTE_WIRE_ANNOUNCE_SIZE + ROUTE_WIRE_ROUTE_SIZE + 8 * ROUTE_WIRE_MAX_PATH);
    assert (route_msg_decode (buf, n, &back) == ROUTE_MSG_OK);
    assert (s_same (&back.routes [0], &msg.routes [0]));

    //  Semantic refusals, each from one valid entry changed in one way
    route_msg_t bad;
#define S_REFUSE(stmt, want) do { bad = msg; stmt; \
        assert (route_msg_check (&bad) == (want)); \
        assert (route_msg_encode (&bad, buf, sizeof buf) == 0); } while (0)
    s_entry (&msg.routes [0], 0x42, 3 * ROUTE_WIRE_MIN_HOP_METRIC, 3, me);
    assert (route_msg_check (&msg) == ROUTE_MSG_OK);
    S_REFUSE (bad.routes [0].metric = 0, ROUTE_MSG_BAD_METRIC);
    S_REFUSE (bad.routes [0].metric = 3 * ROUTE_WIRE_MIN_HOP_METRIC - 1, ROUTE_MSG_BAD_METRIC);
    S_REFUSE (bad.routes [0].metric = ROUTE_WIRE_MAX_METRIC + 1, ROUTE_MSG_BAD_METRIC);
    S_REFUSE (bad.routes [0].metric = (uint32_t) -5, ROUTE_MSG_BAD_METRIC);
    S_REFUSE (bad.routes [0].hops = 0, ROUTE_MSG_BAD_HOPS);
    S_REFUSE (bad.routes [0].hops = ROUTE_WIRE_MAX_PATH + 1, ROUTE_MSG_BAD_HOPS);
    S_REFUSE (bad.routes [0].flags = 4, ROUTE_MSG_BAD_RESERVED);
    S_REFUSE (bad.routes [0].dest = 0, ROUTE_MSG_BAD_PEER);
    S_REFUSE (bad.routes [0].path [1] = 0, ROUTE_MSG_BAD_PEER);
    S_REFUSE (bad.origin = 0, ROUTE_MSG_BAD_PEER);
    S_REFUSE (bad.routes [0].path [0] = 0x77, ROUTE_MSG_NOT_FIRST);
    S_REFUSE (bad.routes [0].path [2] = bad.routes [0].path [1], ROUTE_MSG_LOOP);
    S_REFUSE (bad.routes [0].path [2] = me, ROUTE_MSG_LOOP);
    S_REFUSE (bad.routes [0].dest = me, ROUTE_MSG_LOOP);
    S_REFUSE ((bad.count = 2, bad.routes [1] = bad.routes [0]), ROUTE_MSG_DUPLICATE);

    //  Byte-level refusals of decode
    n = route_msg_encode (&msg, buf, sizeof buf);
    assert (n > 0 && route_msg_decode (buf, n, &back) == ROUTE_MSG_OK);
    for (size_t cut = 0; cut < n; cut++)
        assert (route_msg_decode (buf, cut, &back) == ROUTE_MSG_TOO_SHORT);
    buf [n] = 0;
    assert (route_msg_decode (buf, n + 1, &back) == ROUTE_MSG_TOO_LONG);
    assert (route_msg_decode (buf, ROUTE_WIRE_MAX_SIZE + 1, &back) == ROUTE_MSG_TOO_LONG);
    static const struct { size_t at; uint8_t value; route_msg_err_t want; } flips [] = {
        { ROUTE_WIRE_ANNOUNCE_TYPE, 0x31, ROUTE_MSG_BAD_TYPE },
        { ROUTE_WIRE_ANNOUNCE_VERSION, 2, ROUTE_MSG_BAD_VERSION },
        { ROUTE_WIRE_ANNOUNCE_RESERVED + 3, 1, ROUTE_MSG_BAD_RESERVED },
        { ROUTE_WIRE_ANNOUNCE_COUNT, ROUTE_WIRE_MAX_ROUTES + 1, ROUTE_MSG_TOO_MANY },
        { ROUTE_WIRE_ANNOUNCE_COUNT, 2, ROUTE_MSG_TOO_SHORT },
        { ROUTE_WIRE_ANNOUNCE_COUNT, 0, ROUTE_MSG_TOO_LONG },
        { ROUTE_WIRE_ANNOUNCE_COUNT + 1, 1, ROUTE_MSG_TOO_MANY },
        { ROUTE_WIRE_ANNOUNCE_ROUTES + ROUTE_WIRE_ROUTE_TYPE, 0x30, ROUTE_MSG_BAD_TYPE },
        { ROUTE_WIRE_ANNOUNCE_ROUTES + ROUTE_WIRE_ROUTE_RESERVED, 1, ROUTE_MSG_BAD_RESERVED },
        { ROUTE_WIRE_ANNOUNCE_ROUTES + ROUTE_WIRE_ROUTE_FLAGS, 0x80, ROUTE_MSG_BAD_RESERVED },
        { ROUTE_WIRE_ANNOUNCE_ROUTES + ROUTE_WIRE_ROUTE_HOPS, 0, ROUTE_MSG_BAD_HOPS },
        { ROUTE_WIRE_ANNOUNCE_ROUTES + ROUTE_WIRE_ROUTE_HOPS, 4, ROUTE_MSG_TOO_SHORT },
        { ROUTE_WIRE_ANNOUNCE_ROUTES + ROUTE_WIRE_ROUTE_HOPS, 2, ROUTE_MSG_TOO_LONG },
        { ROUTE_WIRE_ANNOUNCE_ROUTES + ROUTE_WIRE_ROUTE_METRIC + 3, 0x80, ROUTE_MSG_BAD_METRIC },
        { ROUTE_WIRE_ANNOUNCE_ROUTES + ROUTE_WIRE_ROUTE_PATH, 0x00, ROUTE_MSG_NOT_FIRST },
    };
    for (size_t i = 0; i < sizeof flips / sizeof flips [0]; i++) {
        uint8_t copy [ROUTE_WIRE_MAX_SIZE];
        memcpy (copy, buf, n);
        copy [flips [i].at] = flips [i].value;
        route_msg_err_t err = route_msg_decode (copy, n, &back);
        if (verbose || err != flips [i].want)
            printf ("  flip byte %zu to 0x%02x: %s (want %s)\n", flips [i].at, flips [i].value,
                    route_msg_err_name (err), route_msg_err_name (flips [i].want));
        assert (err == flips [i].want);
    }
    assert (strcmp (route_msg_err_name (ROUTE_MSG_LOOP), "loop in the path") == 0);
    assert (strcmp (route_msg_err_name (ROUTE_MSG_ERRORS), "unknown") == 0);
    if (verbose)
        printf ("  route_msg: %d-byte header, %d-byte entries + 8 per hop, max %d\n",
                ROUTE_WIRE_ANNOUNCE_SIZE, ROUTE_WIRE_ROUTE_SIZE, ROUTE_WIRE_MAX_SIZE);
}
