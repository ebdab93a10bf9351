/*  bus_pipe: packet batches and the direct ZeroMQ pipes that carry them. */
#include "bus_pipe.h"
#include "bus_endpoint.h"
#include "bus_log.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  Batches up to this size are copied into the ZeroMQ message (a copy of a few
//  kB costs less than a malloc and a free in two threads); bigger ones hand their
//  buffer to ZeroMQ and the builder takes a fresh one. See docs/benchmarks.md.
#ifndef BUS_PIPE_COPY_MAX
#define BUS_PIPE_COPY_MAX  (16 * 1024)
#endif

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
    uint8_t *buf;               //  NULL after a zero-copy send; allocated on use
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
    self->buf [0] = BUS_BATCH_MAGIC;
    self->buf [1] = BUS_BATCH_VERSION;
    s_put16 (self->buf + 2, (uint16_t) self->count);
    s_put32 (self->buf + 4, (uint32_t) self->size);
    return self->buf;
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

    size_t offset = BUS_BATCH_HEADER;
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
    }
    if (offset != size)
        return bus_errf (err, errsize, "%zu bytes after the last of %u packets", size - offset, count);
    iter->base = data;
    iter->size = size;
    iter->count = count;
    iter->offset = BUS_BATCH_HEADER;
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
//  bus_pipe

struct _bus_pipe_t {
    char name [BUS_PIPE_NAME_MAX + 1];
    char endpoint [BUS_PATH_MAX];
    bus_pipe_dir_t dir;
    ino_t ino;                  //  of the socket file we bound
    zsock_t *sock;
    void *handle;               //  the libzmq socket under sock
    zmq_msg_t msg;              //  the last received batch, read in place
    bus_pipe_stats_t stats;
    char error [160];
    //  Mirroring (mirror_fn NULL when off)
    bus_pipe_mirror_fn *mirror_fn;
    void *mirror_arg;
    uint32_t mirror_every, mirror_snaplen, mirror_countdown;
    bus_pipe_sample_t *sample;
};

static bool
s_name_valid (const char *name)
{
    size_t n = name ? strlen (name) : 0;
    if (n == 0 || n > BUS_PIPE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name [i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        ||    c == '.' || c == '_' || c == '-' || c == '>'))
            return false;
    }
    return true;
}

bus_pipe_t *
bus_pipe_new (const char *run_dir, const char *name, bus_pipe_dir_t dir, int hwm)
{
    if (!s_name_valid (name)) {
        bus_error ("pipe name '%s' is not 1..%d characters of [A-Za-z0-9._>-]",
                   name ? name : "(null)", BUS_PIPE_NAME_MAX);
        return NULL;
    }
    if (dir != BUS_PIPE_RECEIVER && dir != BUS_PIPE_SENDER) {
        bus_error ("pipe %s: bad direction %d", name, (int) dir);
        return NULL;
    }
    bus_pipe_t *self = (bus_pipe_t *) calloc (1, sizeof (bus_pipe_t));
    assert (self);
    snprintf (self->name, sizeof self->name, "%s", name);
    char file [BUS_PIPE_NAME_MAX + 8];
    snprintf (file, sizeof file, "pipe-%s", name);
    run_dir = bus_run_dir (run_dir);
    if (bus_endpoint (self->endpoint, sizeof self->endpoint, run_dir, file)) {
        bus_error ("pipe %s: run directory %s is too long for a unix socket path", name, run_dir);
        free (self);
        return NULL;
    }
    self->dir = dir;
    if (hwm <= 0)
        hwm = BUS_PIPE_HWM_DEFAULT;
    zmq_msg_init (&self->msg);

    self->sock = zsock_new (dir == BUS_PIPE_RECEIVER ? ZMQ_PULL : ZMQ_PUSH);
    if (!self->sock) {
        bus_error ("pipe %s: cannot create a socket: %s", name, zmq_strerror (zmq_errno ()));
        bus_pipe_destroy (&self);
        return NULL;
    }
    self->handle = zsock_resolve (self->sock);
    zsock_set_linger (self->sock, 0);       //  packets are not worth waiting for
    if (dir == BUS_PIPE_RECEIVER) {
        zsock_set_rcvhwm (self->sock, hwm);
        zsock_set_maxmsgsize (self->sock, (int) BUS_BATCH_SIZE_MAX);
        //  A receiver that restarts replaces the socket file of its predecessor
        unlink (self->endpoint + strlen ("ipc://"));
        if (zsock_bind (self->sock, "%s", self->endpoint) == -1) {
            bus_error ("pipe %s: cannot bind %s: %s", name, self->endpoint, zmq_strerror (zmq_errno ()));
            bus_pipe_destroy (&self);
            return NULL;
        }
        struct stat st;
        if (stat (self->endpoint + strlen ("ipc://"), &st) == 0)
            self->ino = st.st_ino;
    }
    else {
        zsock_set_sndhwm (self->sock, hwm);
        //  Queue nothing for a receiver that is not there: stale packets are
        //  worse than lost ones, and the drop is counted.
        zsock_set_immediate (self->sock, 1);
        if (zsock_connect (self->sock, "%s", self->endpoint) == -1) {
            bus_error ("pipe %s: cannot connect %s: %s", name, self->endpoint, zmq_strerror (zmq_errno ()));
            bus_pipe_destroy (&self);
            return NULL;
        }
    }
    return self;
}

void
bus_pipe_destroy (bus_pipe_t **self_p)
{
    assert (self_p);
    bus_pipe_t *self = *self_p;
    if (!self)
        return;
    zmq_msg_close (&self->msg);
    zsock_destroy (&self->sock);
    //  libzmq leaves the socket file behind; remove it, but only if it is
    //  still ours and not a successor's that bound the same name meanwhile.
    struct stat st;
    if (self->dir == BUS_PIPE_RECEIVER && self->ino
    &&  stat (self->endpoint + strlen ("ipc://"), &st) == 0 && st.st_ino == self->ino)
        unlink (self->endpoint + strlen ("ipc://"));
    free (self->sample);
    free (self);
    *self_p = NULL;
}

const char *bus_pipe_name (bus_pipe_t *self) { return self->name; }
const char *bus_pipe_endpoint (bus_pipe_t *self) { return self->endpoint; }
zsock_t *bus_pipe_sock (bus_pipe_t *self) { return self->sock; }
const char *bus_pipe_error (bus_pipe_t *self) { return self->error; }

void
bus_pipe_stats (bus_pipe_t *self, bus_pipe_stats_t *stats)
{
    *stats = self->stats;
}

void
bus_pipe_set_mirror (bus_pipe_t *self, uint32_t sample, uint32_t snaplen,
                     bus_pipe_mirror_fn *fn, void *arg)
{
    if (sample == 0 || !fn) {
        self->mirror_fn = NULL;
        free (self->sample);
        self->sample = NULL;
        return;
    }
    if (!self->sample) {
        self->sample = (bus_pipe_sample_t *) calloc (1, sizeof (bus_pipe_sample_t));
        assert (self->sample);
    }
    self->mirror_every = sample;
    self->mirror_countdown = sample;
    self->mirror_snaplen = snaplen > 128 ? 128 : snaplen;
    self->mirror_arg = arg;
    self->mirror_fn = fn;
}

//  Called for every batch while mirroring is on; fills and hands out the sample
//  for every mirror_every-th. The batch is valid (built here or validated).
static void
s_mirror (bus_pipe_t *self, uint8_t *data, size_t size)
{
    if (--self->mirror_countdown > 0)
        return;
    self->mirror_countdown = self->mirror_every;
    bus_batch_iter_t iter;
    if (bus_batch_iter_init (&iter, data, size, NULL, 0))
        return;
    bus_pipe_sample_t *sample = self->sample;
    snprintf (sample->pipe, sizeof sample->pipe, "%s", self->name);
    sample->packets = iter.count;
    sample->bytes = 0;
    sample->headers_size = 0;
    bus_packet_t pkt;
    while (bus_batch_iter_next (&iter, &pkt)) {
        sample->bytes += (uint32_t) pkt.len;
        size_t snap = pkt.len < self->mirror_snaplen ? pkt.len : self->mirror_snaplen;
        if (sample->headers_size + 2 + snap <= sizeof sample->headers) {
            uint8_t *p = sample->headers + sample->headers_size;
            p [0] = (uint8_t) (snap >> 8);
            p [1] = (uint8_t) snap;
            memcpy (p + 2, pkt.data, snap);
            sample->headers_size += (uint32_t) (2 + snap);
        }
    }
    self->stats.samples++;
    self->mirror_fn (self, sample, self->mirror_arg);
}

static void
s_free_buffer (void *data, void *hint)
{
    free (data);
}

//  After a failed send: is there room after all? libzmq processes the
//  receiver's "I have read up to here" commands at most about once a
//  millisecond during sends, so a small queue can look full when it is not;
//  ZMQ_EVENTS processes them now. Costs nothing unless a send failed.
static bool
s_writable (bus_pipe_t *self)
{
    return zmq_errno () == EAGAIN && bus_pipe_writable (self);
}

bool
bus_pipe_writable (bus_pipe_t *self)
{
    int events = 0;
    size_t size = sizeof events;
    return zmq_getsockopt (self->handle, ZMQ_EVENTS, &events, &size) == 0
        && (events & ZMQ_POLLOUT);
}

int
bus_pipe_send (bus_pipe_t *self, bus_batch_t *batch)
{
    assert (self && batch);
    assert (self->dir == BUS_PIPE_SENDER);
    size_t count = bus_batch_count (batch);
    if (count == 0)
        return 0;
    uint8_t *data = (uint8_t *) bus_batch_data (batch);
    size_t size = batch->size;
    size_t bytes = batch->bytes;
    if (self->mirror_fn)
        s_mirror (self, data, size);

    int rc;
    if (size <= BUS_PIPE_COPY_MAX) {
        rc = zmq_send (self->handle, data, size, ZMQ_DONTWAIT);
        if (rc == -1 && s_writable (self))
            rc = zmq_send (self->handle, data, size, ZMQ_DONTWAIT);
    }
    else {
        //  Zero copy: the message takes the buffer, the builder gets a new one
        //  on its next reserve. On a drop zmq_msg_close frees the buffer.
        zmq_msg_t msg;
        rc = zmq_msg_init_data (&msg, data, size, s_free_buffer, NULL);
        assert (rc == 0);
        batch->buf = NULL;
        rc = zmq_msg_send (&msg, self->handle, ZMQ_DONTWAIT);
        if (rc == -1 && s_writable (self))
            rc = zmq_msg_send (&msg, self->handle, ZMQ_DONTWAIT);
        if (rc == -1)
            zmq_msg_close (&msg);
    }
    bus_batch_reset (batch);
    if (rc == -1) {
        self->stats.batches_dropped++;
        self->stats.packets_dropped += count;
        return -1;
    }
    self->stats.batches_sent++;
    self->stats.packets_sent += count;
    self->stats.bytes_sent += bytes;
    return 0;
}

int
bus_pipe_recv (bus_pipe_t *self, bus_batch_iter_t *iter, int timeout_ms)
{
    assert (self && iter);
    assert (self->dir == BUS_PIPE_RECEIVER);
    memset (iter, 0, sizeof *iter);
    //  Poll only when nothing is waiting: under load a batch is always there,
    //  and a poll per batch would cost a system call each
    if (zmq_msg_recv (&self->msg, self->handle, ZMQ_DONTWAIT) == -1) {
        if (timeout_ms == 0)
            return 0;
        zmq_pollitem_t item = { self->handle, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, timeout_ms) <= 0
        ||  zmq_msg_recv (&self->msg, self->handle, ZMQ_DONTWAIT) == -1)
            return 0;
    }
    //  A batch is one frame; a sender that is not a bus_pipe could send more
    if (zmq_msg_more (&self->msg)) {
        while (zmq_msg_more (&self->msg)
        &&     zmq_msg_recv (&self->msg, self->handle, ZMQ_DONTWAIT) != -1)
            ;
        snprintf (self->error, sizeof self->error, "multipart message, a batch is one frame");
        self->stats.batches_rejected++;
        bus_debug ("pipe %s: batch rejected: %s", self->name, self->error);
        return -1;
    }
    uint8_t *data = (uint8_t *) zmq_msg_data (&self->msg);
    size_t size = zmq_msg_size (&self->msg);
    if (bus_batch_iter_init (iter, data, size, self->error, sizeof self->error)) {
        self->stats.batches_rejected++;
        bus_debug ("pipe %s: batch rejected: %s", self->name, self->error);
        return -1;
    }
    self->stats.batches_received++;
    self->stats.packets_received += iter->count;
    if (self->mirror_fn)
        s_mirror (self, data, size);
    self->stats.bytes_received += bus_batch_iter_bytes (iter);
    return 1;
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

//  The deterministic content of packet i of batch b, so the receiver can check
//  every byte.
static uint8_t
s_byte (size_t b, size_t i, size_t k)
{
    return (uint8_t) (b * 31 + i * 7 + k);
}

static size_t
s_len (size_t b, size_t i)
{
    static const size_t lens [] = { 1400, 64, 0, 1, 1500, 577, 9, 1280 };
    return lens [(b + i) % (sizeof lens / sizeof lens [0])];
}

//  Sends probe batches until one arrives, so the test does not race the ipc
//  connect (the sender drops while it has no receiver, by design).
static void
s_wait_link (bus_pipe_t *tx, bus_pipe_t *rx)
{
    bus_batch_t *probe = bus_batch_new (0);
    bus_batch_iter_t iter;
    int64_t deadline = zclock_mono () + 5000;
    bool linked = false;
    while (!linked && zclock_mono () < deadline) {
        bus_batch_add (probe, 0, "probe", 5);
        bus_pipe_send (tx, probe);
        linked = bus_pipe_recv (rx, &iter, 20) == 1;
    }
    assert (linked);
    while (bus_pipe_recv (rx, &iter, 50) == 1)
        ;
    bus_batch_destroy (&probe);
}

typedef struct {
    int calls;
    bus_pipe_sample_t last;
} s_mirror_seen_t;

static void
s_on_sample (bus_pipe_t *pipe, const bus_pipe_sample_t *sample, void *arg)
{
    s_mirror_seen_t *seen = (s_mirror_seen_t *) arg;
    seen->calls++;
    seen->last = *sample;
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
bus_pipe_test (bool verbose)
{
    s_test_reserve_grown ();
    printf (" * bus_pipe: ");
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
    assert (bus_batch_iter_bytes (&iter) == 1405);
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

    //  Pipes over ipc in a private run directory
    char dir [] = "/tmp/bus-pipe-test-XXXXXX";
    assert (mkdtemp (dir));
    assert (bus_pipe_new (dir, "bad/name", BUS_PIPE_SENDER, 0) == NULL);
    assert (bus_pipe_new (dir, "", BUS_PIPE_SENDER, 0) == NULL);
    bus_pipe_t *rx = bus_pipe_new (dir, "device->crypto", BUS_PIPE_RECEIVER, 8);
    bus_pipe_t *tx = bus_pipe_new (dir, "device->crypto", BUS_PIPE_SENDER, 8);
    assert (rx && tx);
    assert (strstr (bus_pipe_endpoint (rx), "/pipe-device->crypto.ipc"));
    struct stat st;
    assert (stat (bus_pipe_endpoint (rx) + 6, &st) == 0);
    s_wait_link (tx, rx);
    bus_pipe_stats_t stats0;
    bus_pipe_stats (tx, &stats0);

    //  Round trips: batches of 1, 16 and 64 packets of mixed sizes, every byte
    //  checked; sizes cross the copy / zero-copy threshold both ways
    size_t counts [] = { 1, 16, 64, 64, 1, 16 };
    size_t sent_pkts = 0, sent_bytes = 0;
    for (size_t b = 0; b < sizeof counts / sizeof counts [0]; b++) {
        for (size_t i = 0; i < counts [b]; i++) {
            size_t len = s_len (b, i);
            uint8_t *dest = bus_batch_reserve (batch, (uint32_t) (b * 1000 + i), len);
            assert (dest);
            for (size_t k = 0; k < len; k++)
                dest [k] = s_byte (b, i, k);
            sent_bytes += len;
        }
        sent_pkts += counts [b];
        s_seed (bus_batch_data (batch), bus_batch_size (batch));
        assert (bus_pipe_send (tx, batch) == 0);
        assert (bus_batch_count (batch) == 0);
        int rc = bus_pipe_recv (rx, &iter, 2000);
        assert (rc == 1);
        assert (iter.count == counts [b]);
        size_t i = 0;
        while (bus_batch_iter_next (&iter, &pkt)) {
            assert (pkt.tag == b * 1000 + i);
            assert (pkt.len == s_len (b, i));
            for (size_t k = 0; k < pkt.len; k++)
                assert (pkt.data [k] == s_byte (b, i, k));
            i++;
        }
        assert (i == counts [b]);
    }
    bus_pipe_stats_t stats;
    bus_pipe_stats (tx, &stats);
    assert (stats.batches_sent - stats0.batches_sent == 6);
    assert (stats.packets_sent - stats0.packets_sent == sent_pkts);
    assert (stats.bytes_sent - stats0.bytes_sent == sent_bytes);
    bus_pipe_stats (rx, &stats);
    assert (stats.packets_received - stats0.packets_sent == sent_pkts);
    assert (stats.bytes_received - stats0.bytes_sent == sent_bytes);
    assert (stats.batches_rejected == 0);
    //  Nothing more: recv returns 0 in time
    int64_t t0 = zclock_mono ();
    assert (bus_pipe_recv (rx, &iter, 50) == 0);
    assert (zclock_mono () - t0 < 1000);
    //  An empty batch is not sent
    s_seed (bus_batch_data (batch), bus_batch_size (batch));
    assert (bus_pipe_send (tx, batch) == 0);

    //  Malformed input from a foreign sender is rejected and counted, the next
    //  good batch still arrives
    zsock_t *rogue = zsock_new (ZMQ_PUSH);
    assert (rogue && zsock_connect (rogue, "%s", bus_pipe_endpoint (rx)) == 0);
    zmq_send (zsock_resolve (rogue), raw, n - 1, 0);             //  truncated
    s_put16 (raw + 2, 5);
    zmq_send (zsock_resolve (rogue), raw, n, 0);                 //  count lies
    s_put16 (raw + 2, 3);
    zmq_send (zsock_resolve (rogue), raw, n, ZMQ_SNDMORE);       //  multipart
    zmq_send (zsock_resolve (rogue), raw, n, 0);
    zmq_send (zsock_resolve (rogue), raw, n, 0);                 //  good
    int rejected = 0, good = 0;
    for (int i = 0; i < 50 && good == 0; i++) {
        int rc = bus_pipe_recv (rx, &iter, 100);
        if (rc == -1) {
            rejected++;
            if (verbose)
                printf ("\n   rejected: %s", bus_pipe_error (rx));
        }
        if (rc == 1)
            good++;
    }
    assert (rejected == 3 && good == 1 && iter.count == 3);
    bus_pipe_stats (rx, &stats);
    assert (stats.batches_rejected == 3);
    zsock_destroy (&rogue);

    //  Mirroring: every 2nd batch, snaplen 4, on both sides
    s_mirror_seen_t seen_tx = { 0 }, seen_rx = { 0 };
    bus_pipe_set_mirror (tx, 2, 4, s_on_sample, &seen_tx);
    bus_pipe_set_mirror (rx, 1, 300, s_on_sample, &seen_rx);
    for (int b = 0; b < 4; b++) {
        bus_batch_add (batch, 1, "ABCDEFGH", 8);
        bus_batch_add (batch, 2, "xy", 2);
        if (b == 3)
            bus_batch_reserve (batch, 3, 0);
        s_seed (bus_batch_data (batch), bus_batch_size (batch));
        assert (bus_pipe_send (tx, batch) == 0);
        assert (bus_pipe_recv (rx, &iter, 2000) == 1);
    }
    assert (seen_tx.calls == 2 && seen_rx.calls == 4);
    assert (streq (seen_tx.last.pipe, "device->crypto"));
    assert (seen_tx.last.packets == 3 && seen_tx.last.bytes == 10);
    assert (seen_tx.last.headers_size == 2 + 4 + 2 + 2 + 2);
    assert (memcmp (seen_tx.last.headers, "\0\4ABCD\0\2xy\0\0", 12) == 0);
    //  snaplen is capped at 128; the rx side saw whole short packets
    assert (memcmp (seen_rx.last.headers, "\0\10ABCDEFGH", 10) == 0);
    //  Headers that do not fit 4096 bytes are left out, whole
    for (int i = 0; i < 64; i++)
        memset (bus_batch_reserve (batch, 0, 200), 'h', 200);
    s_seed (bus_batch_data (batch), bus_batch_size (batch));
    assert (bus_pipe_send (tx, batch) == 0);
    assert (bus_pipe_recv (rx, &iter, 2000) == 1);
    assert (seen_rx.last.packets == 64 && seen_rx.last.bytes == 64 * 200);
    assert (seen_rx.last.headers_size == 31 * 130);
    bus_pipe_set_mirror (tx, 0, 0, NULL, NULL);
    bus_pipe_set_mirror (rx, 0, 0, NULL, NULL);
    bus_batch_add (batch, 1, "x", 1);
    s_seed (bus_batch_data (batch), bus_batch_size (batch));
    assert (bus_pipe_send (tx, batch) == 0);
    assert (bus_pipe_recv (rx, &iter, 2000) == 1);
    assert (seen_tx.calls == 2 && seen_rx.calls == 5);
    bus_pipe_stats (rx, &stats);
    assert (stats.samples == 5);

    //  Drop when full: a receiver that does not read; the sender never blocks,
    //  counts the drops, and the pipe works again once the receiver reads
    bus_pipe_stats (tx, &stats0);
    t0 = zclock_mono ();
    int dropped = 0;
    for (int b = 0; b < 2000; b++) {
        for (int i = 0; i < BUS_BATCH_MAX; i++)
            memset (bus_batch_reserve (batch, 0, 1400), i, 1400);
        if (bus_pipe_send (tx, batch) == -1)
            dropped++;
    }
    int64_t elapsed = zclock_mono () - t0;
    bus_pipe_stats (tx, &stats);
    if (verbose)
        printf ("\n   2000 sends in %d ms, %d dropped", (int) elapsed, dropped);
    assert (elapsed < 3000);
    assert (dropped > 1000);
    assert (stats.batches_dropped - stats0.batches_dropped == (uint64_t) dropped);
    assert (stats.packets_dropped - stats0.packets_dropped == (uint64_t) dropped * 64);
    assert (stats.batches_sent - stats0.batches_sent == (uint64_t) (2000 - dropped));
    assert (!bus_pipe_writable (tx));
    int drained = 0;
    while (bus_pipe_recv (rx, &iter, 200) == 1)
        drained++;
    assert (drained > 0 && drained == 2000 - dropped);
    assert (bus_pipe_writable (tx));

    //  No receiver at all: the send drops at once instead of queueing
    bus_pipe_destroy (&rx);
    assert (stat (bus_pipe_endpoint (tx) + 6, &st) == -1);
    //  Until ZeroMQ notices the disconnect a send may still queue (up to the
    //  HWM); then every send drops at once instead of queueing
    int64_t deadline = zclock_mono () + 5000;
    int queued = 0;
    while (zclock_mono () < deadline) {
        bus_batch_add (batch, 0, "late", 4);
        if (bus_pipe_send (tx, batch) == -1)
            break;
        queued++;
        zclock_sleep (1);
    }
    assert (zclock_mono () < deadline && queued <= 64);
    t0 = zclock_mono ();
    for (int b = 0; b < 200; b++) {
        bus_batch_add (batch, 0, "late", 4);
        assert (bus_pipe_send (tx, batch) == -1);
    }
    assert (zclock_mono () - t0 < 1000);
    //  A restarted receiver is reconnected to without touching the sender
    rx = bus_pipe_new (dir, "device->crypto", BUS_PIPE_RECEIVER, 8);
    assert (rx);
    s_wait_link (tx, rx);

    bus_pipe_destroy (&tx);
    bus_pipe_destroy (&rx);
    bus_pipe_destroy (&rx);     //  idempotent
    bus_batch_destroy (&batch);
    rmdir (dir);
    //  Stop the ZeroMQ threads, so leak checkers see a clean exit
    zsys_shutdown ();
    printf ("OK\n");
}
