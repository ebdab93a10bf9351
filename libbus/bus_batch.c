/*  bus_batch: the packet batch builder and its validating reader. */
#include "bus_batch.h"
#include "bus_log.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t
s_align8 (size_t n)
{
    return (n + 7) & ~(size_t) 7;
}

//  Unaligned-safe host-order accessors: a received message may start anywhere.
static uint16_t s_get16 (const uint8_t *p) { uint16_t v; memcpy (&v, p, 2); return v; }
static uint32_t s_get32 (const uint8_t *p) { uint32_t v; memcpy (&v, p, 4); return v; }
static void s_put16 (uint8_t *p, uint16_t v) { memcpy (p, &v, 2); }
static void s_put32 (uint8_t *p, uint32_t v) { memcpy (p, &v, 4); }

//  ---------------------------------------------------------------------------
//  bus_batch builder

struct _bus_batch_t {
    uint8_t *buf;               //  allocated on the first reserve
    size_t capacity;
    size_t size;                //  bytes used, header included
    size_t count;
    size_t bytes;               //  payload bytes
    size_t last;                //  offset of the last record (for trim/cancel)
};

bus_batch_t *
bus_batch_new (size_t capacity)
{
    if (capacity == 0)
        capacity = BUS_BATCH_CAPACITY_DEFAULT;
    if (capacity < BUS_BATCH_HEADER + BUS_BATCH_STRIDE (0))
        capacity = BUS_BATCH_HEADER + BUS_BATCH_STRIDE (0);
    if (capacity > BUS_BATCH_SIZE_MAX)
        capacity = BUS_BATCH_SIZE_MAX;
    bus_batch_t *self = (bus_batch_t *) calloc (1, sizeof (bus_batch_t));
    assert (self);
    self->capacity = capacity;
    self->size = BUS_BATCH_HEADER;
    return self;
}

void
bus_batch_destroy (bus_batch_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->buf);
        free (*self_p);
        *self_p = NULL;
    }
}

uint8_t *
bus_batch_reserve (bus_batch_t *self, uint32_t tag, size_t len)
{
    assert (self);
    if (self->count >= BUS_BATCH_MAX || len > BUS_BATCH_PKT_MAX
    ||  self->size + BUS_BATCH_STRIDE (len) > self->capacity)
        return NULL;
    if (!self->buf) {
        self->buf = (uint8_t *) malloc (self->capacity);
        assert (self->buf);         //  resource failure: the supervisor restarts us
    }
    uint8_t *rec = self->buf + self->size;
    s_put32 (rec, tag);
    s_put16 (rec + 4, (uint16_t) len);
    s_put16 (rec + 6, 0);
    //  The room and padding leave this process: never let them carry old heap
    //  bytes to another service (40 to 47 bytes per packet)
    memset (rec + BUS_BATCH_RECORD, 0, BUS_BATCH_HEADROOM);
    size_t tail = BUS_BATCH_STRIDE (len) - BUS_BATCH_RECORD - BUS_BATCH_HEADROOM - len;
    memset (rec + BUS_BATCH_RECORD + BUS_BATCH_HEADROOM + len, 0, tail);
    self->last = self->size;
    self->size += BUS_BATCH_STRIDE (len);
    self->count++;
    self->bytes += len;
    return rec + BUS_BATCH_RECORD + BUS_BATCH_HEADROOM;
}

void
bus_batch_trim (bus_batch_t *self, size_t len)
{
    assert (self && self->count > 0);
    uint8_t *rec = self->buf + self->last;
    size_t old = s_get16 (rec + 4);
    assert (len <= old);
    s_put16 (rec + 4, (uint16_t) len);
    //  The new tailroom and padding held packet bytes: clear them (see reserve)
    uint8_t *end = rec + BUS_BATCH_RECORD + BUS_BATCH_HEADROOM + len;
    memset (end, 0, rec + BUS_BATCH_STRIDE (len) - end);
    self->size = self->last + BUS_BATCH_STRIDE (len);
    self->bytes -= old - len;
}

void
bus_batch_cancel (bus_batch_t *self)
{
    assert (self && self->count > 0);
    self->bytes -= s_get16 (self->buf + self->last + 4);
    self->size = self->last;
    self->count--;
    //  Only the last reservation can be cancelled; a second cancel would need
    //  the record before it, which we do not track.
    self->last = self->size;
}

int
bus_batch_add (bus_batch_t *self, uint32_t tag, const void *data, size_t len)
{
    uint8_t *dest = bus_batch_reserve (self, tag, len);
    if (!dest)
        return -1;
    memcpy (dest, data, len);
    return 0;
}

void
bus_batch_set_flags (bus_batch_t *self, uint16_t flags)
{
    assert (self && self->count > 0);
    uint16_t grown = s_get16 (self->buf + self->last + 6) & BUS_BATCH_GROWN;
    s_put16 (self->buf + self->last + 6, grown | (flags & BUS_BATCH_USER_FLAGS));
}

uint8_t *
bus_batch_reserve_grown (bus_batch_t *self, uint32_t tag, size_t len)
{
    if (len < BUS_BATCH_ROOM)
        return NULL;
    uint8_t *plain = bus_batch_reserve (self, tag, len - BUS_BATCH_ROOM);
    if (!plain)
        return NULL;
    uint8_t *rec = self->buf + self->last;
    s_put16 (rec + 4, (uint16_t) len);
    s_put16 (rec + 6, BUS_BATCH_GROWN);
    self->bytes += BUS_BATCH_ROOM;
    return plain - BUS_BATCH_HEADROOM;
}

void
bus_batch_set_tag (bus_batch_t *self, uint32_t tag)
{
    assert (self && self->count > 0);
    s_put32 (self->buf + self->last, tag);
}

size_t bus_batch_count (bus_batch_t *self) { return self->count; }
bool bus_batch_full (bus_batch_t *self) { return self->count >= BUS_BATCH_MAX; }
size_t bus_batch_size (bus_batch_t *self) { return self->count ? self->size : 0; }
size_t bus_batch_bytes (bus_batch_t *self) { return self->bytes; }

//  Writes the batch header; the body is already in place.
const uint8_t *
bus_batch_data (bus_batch_t *self)
{
    if (!self->count)
        return NULL;
    bus_batch_header_write (self->buf, (uint32_t) self->count, self->size);
    return self->buf;
}

void
bus_batch_header_write (uint8_t *header, uint32_t count, size_t size)
{
    assert (count >= 1 && count <= BUS_BATCH_MAX && size <= BUS_BATCH_SIZE_MAX);
    header [0] = BUS_BATCH_MAGIC;
    header [1] = BUS_BATCH_VERSION;
    s_put16 (header + 2, (uint16_t) count);
    s_put32 (header + 4, (uint32_t) size);
}

void
bus_batch_reset (bus_batch_t *self)
{
    self->size = BUS_BATCH_HEADER;
    self->count = 0;
    self->bytes = 0;
    self->last = 0;
}

//  ---------------------------------------------------------------------------
//  bus_batch reader


int
bus_batch_iter_init (bus_batch_iter_t *iter, uint8_t *data, size_t size, char *err, size_t errsize)
{
    assert (iter);
    memset (iter, 0, sizeof *iter);
    if (!data || size < BUS_BATCH_HEADER)
        return bus_errf (err, errsize, "batch of %zu bytes is shorter than its header", size);
    if (data [0] != BUS_BATCH_MAGIC)
        return bus_errf (err, errsize, "not a batch (magic 0x%02x)", data [0]);
    if (data [1] != BUS_BATCH_VERSION)
        return bus_errf (err, errsize, "batch version %u, expected %u", data [1], BUS_BATCH_VERSION);
    uint32_t count = s_get16 (data + 2);
    uint32_t declared = s_get32 (data + 4);
    if (count == 0 || count > BUS_BATCH_MAX)
        return bus_errf (err, errsize, "batch count %u not in 1..%d", count, BUS_BATCH_MAX);
    if (declared != size)
        return bus_errf (err, errsize, "batch says %u bytes, message has %zu", declared, size);
    if (size > BUS_BATCH_SIZE_MAX)
        return bus_errf (err, errsize, "batch of %zu bytes exceeds %zu", size, (size_t) BUS_BATCH_SIZE_MAX);

    size_t offset = BUS_BATCH_HEADER, bytes = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (size - offset < BUS_BATCH_RECORD)
            return bus_errf (err, errsize, "packet %u of %u: record header past the end", i + 1, count);
        const uint8_t *rec = data + offset;
        size_t len = s_get16 (rec + 4);
        uint16_t flags = s_get16 (rec + 6);
        if (flags & ~(BUS_BATCH_GROWN | BUS_BATCH_USER_FLAGS))
            return bus_errf (err, errsize, "packet %u: unknown flags 0x%04x", i + 1, flags);
        size_t stride;
        if (flags & BUS_BATCH_GROWN) {
            if (len < BUS_BATCH_ROOM)
                return bus_errf (err, errsize, "packet %u: grown packet of %zu bytes is shorter than its room", i + 1, len);
            stride = BUS_BATCH_RECORD + s_align8 (len);
        }
        else {
            if (len > BUS_BATCH_PKT_MAX)
                return bus_errf (err, errsize, "packet %u: length %zu exceeds %d", i + 1, len, BUS_BATCH_PKT_MAX);
            stride = BUS_BATCH_STRIDE (len);
        }
        if (stride > size - offset)
            return bus_errf (err, errsize, "packet %u: length %zu runs %zu bytes past the end",
                             i + 1, len, stride - (size - offset));
        offset += stride;
        bytes += len;
    }
    if (offset != size)
        return bus_errf (err, errsize, "%zu bytes after the last of %u packets", size - offset, count);
    iter->base = data;
    iter->size = size;
    iter->count = count;
    iter->offset = BUS_BATCH_HEADER;
    iter->bytes = bytes;
    return 0;
}

bool
bus_batch_iter_next (bus_batch_iter_t *iter, bus_packet_t *pkt)
{
    assert (iter && pkt);
    if (iter->index >= iter->count)
        return false;
    uint8_t *rec = iter->base + iter->offset;
    pkt->record = rec;
    pkt->tag = s_get32 (rec);
    pkt->len = s_get16 (rec + 4);
    pkt->flags = s_get16 (rec + 6);
    if (pkt->flags & BUS_BATCH_GROWN) {
        pkt->data = rec + BUS_BATCH_RECORD;
        iter->offset += BUS_BATCH_RECORD + s_align8 (pkt->len);
    }
    else {
        pkt->data = rec + BUS_BATCH_RECORD + BUS_BATCH_HEADROOM;
        iter->offset += BUS_BATCH_STRIDE (pkt->len);
    }
    iter->index++;
    return true;
}

size_t
bus_batch_iter_bytes (bus_batch_iter_t *iter)
{
    size_t bytes = 0;
    size_t offset = BUS_BATCH_HEADER;
    for (uint32_t i = 0; i < iter->count; i++) {
        const uint8_t *rec = iter->base + offset;
        size_t len = s_get16 (rec + 4);
        bytes += len;
        offset += (s_get16 (rec + 6) & BUS_BATCH_GROWN) ? BUS_BATCH_RECORD + s_align8 (len)
                                                         : BUS_BATCH_STRIDE (len);
    }
    return bytes;
}

int
bus_packet_grow (bus_packet_t *pkt)
{
    if (pkt->flags & BUS_BATCH_GROWN)
        return -1;
    pkt->flags |= BUS_BATCH_GROWN;
    pkt->len += BUS_BATCH_ROOM;
    pkt->data -= BUS_BATCH_HEADROOM;
    s_put16 (pkt->record + 4, (uint16_t) pkt->len);
    s_put16 (pkt->record + 6, pkt->flags);
    return 0;
}

int
bus_packet_shrink (bus_packet_t *pkt)
{
    if (!(pkt->flags & BUS_BATCH_GROWN) || pkt->len < BUS_BATCH_ROOM)
        return -1;
    pkt->flags &= (uint16_t) ~BUS_BATCH_GROWN;
    pkt->len -= BUS_BATCH_ROOM;
    pkt->data += BUS_BATCH_HEADROOM;
    s_put16 (pkt->record + 4, (uint16_t) pkt->len);
    s_put16 (pkt->record + 6, pkt->flags);
    return 0;
}

void
bus_packet_set_tag (bus_packet_t *pkt, uint32_t tag)
{
    pkt->tag = tag;
    s_put32 (pkt->record, tag);
}

//  ---------------------------------------------------------------------------
//  Self test

//  Builds a raw batch of `count` records for the malformed-input cases.
static size_t
s_raw_batch (uint8_t *buf, size_t cap, uint32_t count, const size_t *lens)
{
    size_t off = BUS_BATCH_HEADER;
    for (uint32_t i = 0; i < count; i++) {
        assert (off + BUS_BATCH_STRIDE (lens [i]) <= cap);
        memset (buf + off, 0, BUS_BATCH_STRIDE (lens [i]));
        s_put32 (buf + off, i);
        s_put16 (buf + off + 4, (uint16_t) lens [i]);
        off += BUS_BATCH_STRIDE (lens [i]);
    }
    buf [0] = BUS_BATCH_MAGIC;
    buf [1] = BUS_BATCH_VERSION;
    s_put16 (buf + 2, (uint16_t) count);
    s_put32 (buf + 4, (uint32_t) off);
    return off;
}

//  With SELFTEST_SEEDS=DIR, every batch the test builds or breaks is written
//  there: the seed corpus of fuzz/fuzz_batch (libFuzzer keeps those under 4 kB).
static void
s_seed (const uint8_t *data, size_t size)
{
    static int seq = 0;
    const char *dir = getenv ("SELFTEST_SEEDS");
    if (!dir || size > 4096)
        return;
    char path [512];
    snprintf (path, sizeof path, "%s/seed-%03d", dir, seq++);
    FILE *f = fopen (path, "wb");
    assert (f);
    assert (fwrite (data, 1, size, f) == size);
    fclose (f);
}

//  A grown reservation reads back as the same bytes, flagged grown, and shrinks
//  to what lies between its first and last 16 bytes (how crypto reads nat's
//  datagrams); tags and flags set after the reservation stick.
static void
s_test_reserve_grown (void)
{
    bus_batch_t *batch = bus_batch_new (0);
    assert (bus_batch_reserve_grown (batch, 1, BUS_BATCH_ROOM - 1) == NULL);
    uint8_t *p = bus_batch_reserve_grown (batch, 7, 100);
    assert (p);
    for (int i = 0; i < 100; i++)
        p [i] = (uint8_t) i;
    bus_batch_set_tag (batch, 9);
    bus_batch_set_flags (batch, 0x0100);
    assert (bus_batch_add (batch, 3, "plain", 5) == 0);
    assert (bus_batch_bytes (batch) == 105);
    size_t size = bus_batch_size (batch);
    uint8_t *copy = (uint8_t *) malloc (size);
    memcpy (copy, bus_batch_data (batch), size);
    bus_batch_iter_t iter;
    char err [160];
    assert (bus_batch_iter_init (&iter, copy, size, err, sizeof err) == 0);
    bus_packet_t pkt;
    assert (bus_batch_iter_next (&iter, &pkt));
    assert (pkt.tag == 9 && pkt.len == 100 && (pkt.flags & BUS_BATCH_GROWN) && (pkt.flags & 0x0100));
    for (int i = 0; i < 100; i++)
        assert (pkt.data [i] == (uint8_t) i);
    assert (bus_packet_shrink (&pkt) == 0);
    assert (pkt.len == 100 - BUS_BATCH_ROOM && pkt.data [0] == BUS_BATCH_HEADROOM);
    assert (bus_batch_iter_next (&iter, &pkt));
    assert (pkt.tag == 3 && pkt.len == 5 && memcmp (pkt.data, "plain", 5) == 0);
    assert (!bus_batch_iter_next (&iter, &pkt));
    free (copy);
    bus_batch_destroy (&batch);
}

void
bus_batch_test (bool verbose)
{
    s_test_reserve_grown ();
    printf (" * bus_batch: ");
    char err [160];

    //  Builder: layout, alignment, limits
    bus_batch_t *batch = bus_batch_new (0);
    assert (bus_batch_count (batch) == 0 && bus_batch_size (batch) == 0);
    uint8_t *p = bus_batch_reserve (batch, 7, 100);
    assert (p && ((uintptr_t) p & 7) == 0);
    memset (p - BUS_BATCH_HEADROOM, 0xEE, BUS_BATCH_HEADROOM);   //  room is writable
    memset (p + 100, 0xEE, BUS_BATCH_TAILROOM);
    memset (p, 0x11, 100);
    bus_batch_trim (batch, 60);
    assert (bus_batch_bytes (batch) == 60);
    assert (bus_batch_size (batch) == BUS_BATCH_HEADER + BUS_BATCH_STRIDE (60));
    assert (bus_batch_reserve (batch, 1, BUS_BATCH_PKT_MAX + 1) == NULL);
    assert (bus_batch_reserve (batch, 1, 2000));
    bus_batch_cancel (batch);
    assert (bus_batch_count (batch) == 1 && bus_batch_bytes (batch) == 60);
    for (int i = 1; i < BUS_BATCH_MAX; i++)
        assert (bus_batch_add (batch, (uint32_t) i, "x", 1) == 0);
    assert (bus_batch_full (batch));
    assert (bus_batch_reserve (batch, 1, 1) == NULL);
    bus_batch_reset (batch);
    //  Capacity: 64 packets of 1500 bytes fit the default, a 65th does not
    for (int i = 0; i < BUS_BATCH_MAX; i++)
        assert (bus_batch_reserve (batch, 0, 1500));
    bus_batch_reset (batch);
    bus_batch_t *small = bus_batch_new (BUS_BATCH_HEADER + 2 * BUS_BATCH_STRIDE (100));
    assert (bus_batch_reserve (small, 0, 100) && bus_batch_reserve (small, 0, 100));
    assert (bus_batch_reserve (small, 0, 1) == NULL);
    bus_batch_destroy (&small);

    //  Reader on a built batch, grow and shrink in place
    bus_batch_add (batch, 42, "hello", 5);
    p = bus_batch_reserve (batch, 43, 1400);
    memset (p, 0xAB, 1400);
    bus_batch_set_flags (batch, 0x0100);
    size_t size = bus_batch_size (batch);
    uint8_t *copy = (uint8_t *) malloc (size);
    memcpy (copy, bus_batch_data (batch), size);
    bus_batch_iter_t iter;
    s_seed (copy, size);
    assert (bus_batch_iter_init (&iter, copy, size, err, sizeof err) == 0);
    assert (bus_batch_iter_bytes (&iter) == 1405 && iter.bytes == 1405);
    bus_packet_t pkt;
    assert (bus_batch_iter_next (&iter, &pkt));
    assert (pkt.tag == 42 && pkt.len == 5 && memcmp (pkt.data, "hello", 5) == 0 && pkt.flags == 0);
    assert (bus_packet_shrink (&pkt) == -1);
    uint8_t *plain = pkt.data;
    assert (bus_packet_grow (&pkt) == 0);
    assert (pkt.data == plain - 16 && pkt.len == 37 && memcmp (pkt.data + 16, "hello", 5) == 0);
    assert (bus_packet_grow (&pkt) == -1);
    memcpy (pkt.data, "HEADER-HEADER-16", 16);
    memcpy (pkt.data + 21, "TAG-TAG-TAG-TAG!", 16);
    bus_packet_set_tag (&pkt, 99);
    assert (bus_batch_iter_next (&iter, &pkt));
    assert (pkt.tag == 43 && pkt.len == 1400 && pkt.flags == 0x0100 && pkt.data [1399] == 0xAB);
    assert (!bus_batch_iter_next (&iter, &pkt));
    //  The grown batch is still valid, with the same size, and shrinks back
    s_seed (copy, size);
    assert (bus_batch_iter_init (&iter, copy, size, err, sizeof err) == 0);
    assert (bus_batch_iter_next (&iter, &pkt));
    assert (pkt.tag == 99 && pkt.len == 37 && (pkt.flags & BUS_BATCH_GROWN));
    assert (memcmp (pkt.data, "HEADER-HEADER-16hello", 21) == 0);
    assert (bus_packet_shrink (&pkt) == 0 && pkt.len == 5 && memcmp (pkt.data, "hello", 5) == 0);
    free (copy);
    bus_batch_reset (batch);

    //  Seeds only: many small packets, grown packets, user flags
    for (int i = 0; i < BUS_BATCH_MAX; i++)
        memset (bus_batch_reserve (batch, (uint32_t) i * 977, (size_t) i % 21), i, (size_t) i % 21);
    s_seed (bus_batch_data (batch), bus_batch_size (batch));
    bus_batch_reset (batch);
    for (int i = 0; i < 5; i++) {
        memset (bus_batch_reserve (batch, 5, (size_t) i * 40), 'g', (size_t) i * 40);
        bus_batch_set_flags (batch, (uint16_t) (i << 8));
    }
    size = bus_batch_size (batch);
    copy = (uint8_t *) malloc (size);
    memcpy (copy, bus_batch_data (batch), size);
    assert (bus_batch_iter_init (&iter, copy, size, err, sizeof err) == 0);
    while (bus_batch_iter_next (&iter, &pkt))
        if (pkt.len % 80 == 0)
            assert (bus_packet_grow (&pkt) == 0);
    s_seed (copy, size);
    assert (bus_batch_iter_init (&iter, copy, size, err, sizeof err) == 0);
    free (copy);
    bus_batch_reset (batch);

    //  Malformed batches are rejected whole, with a reason, never read past the end
    uint8_t raw [4096];
    size_t lens [3] = { 10, 20, 30 };
    size_t n = s_raw_batch (raw, sizeof raw, 3, lens);
    s_seed (raw, n);
    assert (bus_batch_iter_init (&iter, raw, n, err, sizeof err) == 0);
    //  truncated anywhere (checked on an exact-size copy so ASan sees overruns)
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *t = (uint8_t *) malloc (cut ? cut : 1);
        memcpy (t, raw, cut);
        assert (bus_batch_iter_init (&iter, t, cut, err, sizeof err) == -1);
        free (t);
    }
    //  a truncated message whose size field agrees (the sender lied consistently)
    uint8_t *t = (uint8_t *) malloc (n - 8);
    memcpy (t, raw, n - 8);
    s_put32 (t + 4, (uint32_t) (n - 8));
    assert (bus_batch_iter_init (&iter, t, n - 8, err, sizeof err) == -1);
    if (verbose)
        printf ("\n   truncated: %s", err);
    assert (strstr (err, "past the end"));
    free (t);
    //  count lies (more, fewer, zero, too many)
    s_put16 (raw + 2, 4);
    s_seed (raw, n);
    assert (bus_batch_iter_init (&iter, raw, n, err, sizeof err) == -1 && strstr (err, "past the end"));
    s_put16 (raw + 2, 2);
    s_seed (raw, n);
    assert (bus_batch_iter_init (&iter, raw, n, err, sizeof err) == -1 && strstr (err, "after the last"));
    s_put16 (raw + 2, 0);
    s_seed (raw, n);
    assert (bus_batch_iter_init (&iter, raw, n, err, sizeof err) == -1 && strstr (err, "count"));
    s_put16 (raw + 2, 65);
    s_seed (raw, n);
    assert (bus_batch_iter_init (&iter, raw, n, err, sizeof err) == -1 && strstr (err, "count"));
    s_put16 (raw + 2, 3);
    //  a length that overruns, a size field that lies, magic, version, flags
    s_put16 (raw + BUS_BATCH_HEADER + 4, 4000);
    s_seed (raw, n);
    assert (bus_batch_iter_init (&iter, raw, n, err, sizeof err) == -1 && strstr (err, "past the end"));
    s_put16 (raw + BUS_BATCH_HEADER + 4, 65535);
    s_seed (raw, n);
    assert (bus_batch_iter_init (&iter, raw, n, err, sizeof err) == -1 && strstr (err, "exceeds"));
    s_put16 (raw + BUS_BATCH_HEADER + 4, 10);
    s_put32 (raw + 4, (uint32_t) n + 8);
    s_seed (raw, n);
    assert (bus_batch_iter_init (&iter, raw, n, err, sizeof err) == -1 && strstr (err, "says"));
    s_put32 (raw + 4, (uint32_t) n);
    raw [0] = 0;
    s_seed (raw, n);
    assert (bus_batch_iter_init (&iter, raw, n, err, sizeof err) == -1 && strstr (err, "magic"));
    raw [0] = BUS_BATCH_MAGIC;
    raw [1] = 9;
    s_seed (raw, n);
    assert (bus_batch_iter_init (&iter, raw, n, err, sizeof err) == -1 && strstr (err, "version"));
    raw [1] = BUS_BATCH_VERSION;
    s_put16 (raw + BUS_BATCH_HEADER + 6, 0x0002);
    s_seed (raw, n);
    assert (bus_batch_iter_init (&iter, raw, n, err, sizeof err) == -1 && strstr (err, "flags"));
    s_put16 (raw + BUS_BATCH_HEADER + 6, BUS_BATCH_GROWN);     //  grown, 10 < 32 bytes
    s_seed (raw, n);
    assert (bus_batch_iter_init (&iter, raw, n, err, sizeof err) == -1 && strstr (err, "room"));
    s_put16 (raw + BUS_BATCH_HEADER + 6, 0);
    s_seed (raw, n);
    assert (bus_batch_iter_init (&iter, raw, n, err, sizeof err) == 0);
    assert (bus_batch_iter_init (&iter, NULL, 0, err, sizeof err) == -1);
    bus_batch_destroy (&batch);
    printf ("OK\n");
}
