/*  crypto_flood: origins in an array sorted by registry id (binary search,
    pointers so an origin's record never moves), each with its children, its
    window of sequence numbers (allocated with the first frame) and its
    forwarding budget. */
#include "crypto_flood.h"
#include "node_replay.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SEC   1000000000ULL
//  A sequence number this far below the highest taken is an origin that
//  restarted with its clock set back: its window starts again (71 minutes of
//  microseconds; a frame reordered by the network is never that late)
#define S_RESTART_GAP   (1ULL << 32)

typedef struct {
    uint64_t id;
    uint32_t index;             //  CRYPTO_FLOOD_NO_PEER until known
    uint32_t *children;
    size_t count;
    node_replay_t *window;      //  NULL until its first frame
    uint64_t highest;
    double tokens;
    uint64_t at;                //  ns, the bucket's last refill (0: full)
} s_origin_t;

struct _crypto_flood_t {
    s_origin_t **origins;       //  sorted by id
    size_t norigins;
    uint64_t self_id;           //  0 until our own tree came
    uint32_t *own;              //  our tree's children
    size_t own_count;
    uint8_t ttl;
    uint64_t seqno;             //  our last
    uint32_t rate;
    uint64_t over_budget;
};

static void
s_put64 (uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p [i] = (uint8_t) v;
}

static uint64_t
s_get64 (const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p [i];
    return v;
}

//  Offsets in the plaintext: the wire's, less the 16-byte header before it
#define S_ORIGIN    (WIRE_FLOOD_ORIGIN - WIRE_FLOOD_ORIGIN)
#define S_SEQNO     (WIRE_FLOOD_SEQNO - WIRE_FLOOD_ORIGIN)
#define S_TTL       (WIRE_FLOOD_TTL - WIRE_FLOOD_ORIGIN)
#define S_RESERVED  (WIRE_FLOOD_FLOOD_RESERVED - WIRE_FLOOD_ORIGIN)
_Static_assert (WIRE_FLOOD_FRAME - WIRE_FLOOD_ORIGIN == WIRE_FLOOD_HEADER
                && WIRE_FLOOD_ORIGIN == WIRE_DATA_CIPHERTEXT,
                "crypto_flood: the flood header is the first WIRE_FLOOD_HEADER bytes of the encrypted part");

void
crypto_flood_header_encode (const crypto_flood_header_t *header, uint8_t *plain)
{
    memset (plain, 0, WIRE_FLOOD_HEADER);
    s_put64 (plain + S_ORIGIN, header->origin);
    s_put64 (plain + S_SEQNO, header->seqno);
    plain [S_TTL] = header->ttl;
}

int
crypto_flood_header_decode (const uint8_t *plain, size_t len, crypto_flood_header_t *header)
{
    if (!plain || len <= WIRE_FLOOD_HEADER)
        return -1;
    header->origin = s_get64 (plain + S_ORIGIN);
    header->seqno = s_get64 (plain + S_SEQNO);
    header->ttl = plain [S_TTL];
    if (!header->origin || header->ttl == 0 || header->ttl > WIRE_ROUTED_TTL_MAX
    ||  plain [S_RESERVED] || plain [S_RESERVED + 1] || plain [S_RESERVED + 2])
        return -1;
    return 0;
}

crypto_flood_t *
crypto_flood_new (uint64_t first_seqno, uint32_t rate)
{
    crypto_flood_t *self = calloc (1, sizeof *self);
    assert (self);
    self->seqno = first_seqno;
    self->rate = rate;
    self->ttl = 8;
    return self;
}

void
crypto_flood_destroy (crypto_flood_t **self_p)
{
    assert (self_p);
    crypto_flood_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->norigins; i++) {
        free (self->origins [i]->children);
        node_replay_destroy (&self->origins [i]->window);
        free (self->origins [i]);
    }
    free (self->origins);
    free (self->own);
    free (self);
    *self_p = NULL;
}

//  Position of id in the sorted array (where it is or would go)
static size_t
s_find (const crypto_flood_t *self, uint64_t id, bool *found)
{
    size_t lo = 0, hi = self->norigins;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (self->origins [mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < self->norigins && self->origins [lo]->id == id;
    return lo;
}

static s_origin_t *
s_origin (const crypto_flood_t *self, uint64_t id)
{
    bool found;
    size_t i = s_find (self, id, &found);
    return found ? self->origins [i] : NULL;
}

//  The origin's record, made when new; NULL when the table is full
static s_origin_t *
s_require (crypto_flood_t *self, uint64_t id)
{
    bool found;
    size_t i = s_find (self, id, &found);
    if (found)
        return self->origins [i];
    if (self->norigins >= CRYPTO_FLOOD_ORIGINS)
        return NULL;
    s_origin_t **grown = realloc (self->origins, (self->norigins + 1) * sizeof *grown);
    assert (grown);
    self->origins = grown;
    memmove (self->origins + i + 1, self->origins + i, (self->norigins - i) * sizeof *grown);
    s_origin_t *o = calloc (1, sizeof *o);
    assert (o);
    o->id = id;
    o->index = CRYPTO_FLOOD_NO_PEER;
    o->tokens = self->rate;
    self->origins [i] = o;
    self->norigins++;
    return o;
}

//  Copies count children into *list (reallocated)
static void
s_children (uint32_t **list, size_t *list_count, const uint32_t *children, size_t count)
{
    if (count > CRYPTO_FLOOD_CHILDREN)
        count = CRYPTO_FLOOD_CHILDREN;
    free (*list);
    *list = NULL;
    if (count) {
        *list = malloc (count * sizeof **list);
        assert (*list);
        memcpy (*list, children, count * sizeof **list);
    }
    *list_count = count;
}

//  index now belongs to id: no other origin keeps it (a registry peer that
//  left and whose index went to another)
static void
s_claim (crypto_flood_t *self, uint32_t index, uint64_t id)
{
    for (size_t i = 0; i < self->norigins; i++)
        if (self->origins [i]->index == index && self->origins [i]->id != id)
            self->origins [i]->index = CRYPTO_FLOOD_NO_PEER;
}

void
crypto_flood_set_tree (crypto_flood_t *self, uint64_t self_id, uint64_t origin_id, uint32_t origin_index,
                       uint32_t ttl, const uint32_t *children, size_t count)
{
    if (!self_id || !origin_id)
        return;
    self->self_id = self_id;
    if (ttl >= 1 && ttl <= WIRE_ROUTED_TTL_MAX)
        self->ttl = (uint8_t) ttl;
    if (origin_id == self_id) {
        s_children (&self->own, &self->own_count, children, count);
        return;
    }
    s_origin_t *o = s_require (self, origin_id);
    if (!o)
        return;
    if (origin_index != CRYPTO_FLOOD_NO_PEER) {
        s_claim (self, origin_index, origin_id);
        o->index = origin_index;
    }
    s_children (&o->children, &o->count, children, count);
}

void
crypto_flood_set_id (crypto_flood_t *self, uint32_t index, uint64_t id)
{
    if (!id || index == CRYPTO_FLOOD_NO_PEER)
        return;
    s_claim (self, index, id);
    s_origin_t *o = s_require (self, id);
    if (o)
        o->index = index;
}

bool
crypto_flood_active (const crypto_flood_t *self)
{
    return self->self_id != 0;
}

size_t
crypto_flood_own (crypto_flood_t *self, crypto_flood_header_t *header, uint32_t *children, size_t max)
{
    header->origin = self->self_id;
    header->seqno = ++self->seqno;
    header->ttl = self->ttl;
    size_t n = self->own_count < max ? self->own_count : max;
    if (n)
        memcpy (children, self->own, n * sizeof *children);
    return n;
}

bool
crypto_flood_is_child (const crypto_flood_t *self, uint32_t peer)
{
    for (size_t i = 0; i < self->own_count; i++)
        if (self->own [i] == peer)
            return true;
    return false;
}

crypto_flood_verdict_t
crypto_flood_accept (crypto_flood_t *self, const crypto_flood_header_t *header, uint32_t *origin_index)
{
    *origin_index = CRYPTO_FLOOD_NO_PEER;
    if (self->self_id && header->origin == self->self_id)
        return CRYPTO_FLOOD_OWN;
    s_origin_t *o = s_require (self, header->origin);
    if (!o)
        return CRYPTO_FLOOD_FULL;
    if (!o->window) {
        o->window = node_replay_new ();
        assert (o->window);
    }
    else
    if (header->seqno + S_RESTART_GAP < o->highest) {
        node_replay_destroy (&o->window);
        o->window = node_replay_new ();
        assert (o->window);
        o->highest = 0;
    }
    if (!node_replay_update (o->window, header->seqno))
        return CRYPTO_FLOOD_DUPLICATE;
    if (header->seqno > o->highest)
        o->highest = header->seqno;
    *origin_index = o->index;
    return CRYPTO_FLOOD_FRESH;
}

size_t
crypto_flood_forward (crypto_flood_t *self, crypto_flood_header_t *header, uint32_t from, uint64_t now,
                      uint32_t *children, size_t max)
{
    s_origin_t *o = s_origin (self, header->origin);
    if (!o || header->ttl <= 1)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < o->count && n < max; i++)
        if (o->children [i] != from && o->children [i] != o->index)
            children [n++] = o->children [i];
    if (!n)
        return 0;
    //  The origin's budget: a token bucket of `rate` frames a second
    if (o->at)
        o->tokens += (double) (now - o->at) * self->rate / S_SEC;
    if (o->tokens > self->rate)
        o->tokens = self->rate;
    o->at = now ? now : 1;
    if (o->tokens < 1) {
        self->over_budget++;
        return 0;
    }
    o->tokens -= 1;
    header->ttl--;
    return n;
}

uint64_t
crypto_flood_over_budget (const crypto_flood_t *self)
{
    return self->over_budget;
}

//  --------------------------------------------------------------------------
//  Self test: the codec, the window, the forwarding decisions

void
crypto_flood_test (bool verbose)
{
    //  Codec: round trip, and each refusal
    uint8_t plain [64];
    memset (plain, 0xEE, sizeof plain);
    crypto_flood_header_t h = { .origin = 0x0123456789ABCDEFULL, .seqno = 1700000000000000ULL, .ttl = 8 }, d;
    crypto_flood_header_encode (&h, plain);
    assert (plain [0] == 0xEF && plain [7] == 0x01 && plain [16] == 8 && plain [17] == 0 && plain [20] == 0xEE);
    assert (crypto_flood_header_decode (plain, sizeof plain, &d) == 0);
    assert (d.origin == h.origin && d.seqno == h.seqno && d.ttl == 8);
    assert (crypto_flood_header_decode (plain, WIRE_FLOOD_HEADER, &d) == -1);      //  no packet
    assert (crypto_flood_header_decode (plain, WIRE_FLOOD_HEADER + 1, &d) == 0);
    plain [16] = 0;
    assert (crypto_flood_header_decode (plain, sizeof plain, &d) == -1);          //  TTL 0
    plain [16] = 17;
    assert (crypto_flood_header_decode (plain, sizeof plain, &d) == -1);          //  above 16
    plain [16] = 16;
    plain [18] = 1;
    assert (crypto_flood_header_decode (plain, sizeof plain, &d) == -1);          //  reserved
    plain [18] = 0;
    memset (plain, 0, 8);
    assert (crypto_flood_header_decode (plain, sizeof plain, &d) == -1);          //  origin 0

    //  Not active until our own tree comes; then our floods go to its children
    const uint64_t A = 0xA0, B = 0xB0, C = 0xC0, D = 0xD0;
    crypto_flood_t *f = crypto_flood_new (1000, 3);
    assert (!crypto_flood_active (f));
    crypto_flood_set_id (f, 2, C);                  //  peer.up: index 2 is c
    uint32_t kids [CRYPTO_FLOOD_CHILDREN];
    //  We are b in a line a - b - {c, d}: indexes a 0, d 1, c 2
    const uint32_t own [] = { 0, 1, 2 };
    crypto_flood_set_tree (f, B, B, CRYPTO_FLOOD_NO_PEER, 6, own, 3);
    assert (crypto_flood_active (f));
    assert (crypto_flood_is_child (f, 1) && !crypto_flood_is_child (f, 3));
    assert (crypto_flood_own (f, &h, kids, CRYPTO_FLOOD_CHILDREN) == 3);
    assert (h.origin == B && h.seqno == 1001 && h.ttl == 6 && kids [2] == 2);
    assert (crypto_flood_own (f, &h, kids, 2) == 2 && h.seqno == 1002);
    //  a's tree here: c and d are a's children (they reach a through us)
    const uint32_t of_a [] = { 1, 2 };
    crypto_flood_set_tree (f, B, A, 0, 6, of_a, 2);
    uint32_t origin;
    h = (crypto_flood_header_t) { .origin = A, .seqno = 500, .ttl = 6 };
    assert (crypto_flood_accept (f, &h, &origin) == CRYPTO_FLOOD_FRESH && origin == 0);
    assert (crypto_flood_forward (f, &h, 0, 1, kids, CRYPTO_FLOOD_CHILDREN) == 2);
    assert (kids [0] == 1 && kids [1] == 2 && h.ttl == 5);
    //  The same frame again (another path): a duplicate, never forwarded twice
    h.ttl = 6;
    assert (crypto_flood_accept (f, &h, &origin) == CRYPTO_FLOOD_DUPLICATE);
    //  Out of order within the window: taken once each
    h.seqno = 498;
    assert (crypto_flood_accept (f, &h, &origin) == CRYPTO_FLOOD_FRESH);
    assert (crypto_flood_accept (f, &h, &origin) == CRYPTO_FLOOD_DUPLICATE);
    h.seqno = 500 + NODE_REPLAY_WINDOW + 10;
    assert (crypto_flood_accept (f, &h, &origin) == CRYPTO_FLOOD_FRESH);
    h.seqno = 499;                                  //  now below the window
    assert (crypto_flood_accept (f, &h, &origin) == CRYPTO_FLOOD_DUPLICATE);
    //  An origin that restarted with its clock set back: its window starts again
    h.seqno = 3;
    assert (crypto_flood_accept (f, &h, &origin) == CRYPTO_FLOOD_DUPLICATE);     //  not far enough
    h.seqno = (1ULL << 40);
    assert (crypto_flood_accept (f, &h, &origin) == CRYPTO_FLOOD_FRESH);
    h.seqno = 3;
    assert (crypto_flood_accept (f, &h, &origin) == CRYPTO_FLOOD_FRESH);
    //  Our own frame, back through a loop: never taken
    h = (crypto_flood_header_t) { .origin = B, .seqno = 1001, .ttl = 5 };
    assert (crypto_flood_accept (f, &h, &origin) == CRYPTO_FLOOD_OWN);
    //  Never back to where it came from, nor to the origin
    h = (crypto_flood_header_t) { .origin = A, .seqno = 600, .ttl = 6 };
    assert (crypto_flood_accept (f, &h, &origin) == CRYPTO_FLOOD_FRESH);
    assert (crypto_flood_forward (f, &h, 2, 1, kids, CRYPTO_FLOOD_CHILDREN) == 1 && kids [0] == 1);
    const uint32_t with_origin [] = { 0, 1 };
    crypto_flood_set_tree (f, B, A, 0, 6, with_origin, 2);
    h.ttl = 6;
    assert (crypto_flood_forward (f, &h, 1, 2, kids, CRYPTO_FLOOD_CHILDREN) == 0);
    crypto_flood_set_tree (f, B, A, 0, 6, of_a, 2);
    //  TTL: a frame that arrived with 1 is delivered and goes no further
    h.ttl = 1;
    assert (crypto_flood_forward (f, &h, 0, 3, kids, CRYPTO_FLOOD_CHILDREN) == 0);
    //  The budget: 3 a second per origin here (the test's rate), one second's worth
    //  at once; refills with time
    crypto_flood_t *g = crypto_flood_new (1, 3);
    crypto_flood_set_tree (g, B, B, CRYPTO_FLOOD_NO_PEER, 8, own, 3);
    crypto_flood_set_tree (g, B, A, 0, 8, of_a, 2);
    crypto_flood_set_tree (g, B, D, 1, 8, of_a, 2);
    size_t sent = 0;
    for (int k = 0; k < 10; k++) {
        h = (crypto_flood_header_t) { .origin = A, .seqno = 100 + (uint64_t) k, .ttl = 8 };
        assert (crypto_flood_accept (g, &h, &origin) == CRYPTO_FLOOD_FRESH);
        sent += crypto_flood_forward (g, &h, 0, 1000, kids, CRYPTO_FLOOD_CHILDREN) > 0;
    }
    assert (sent == 3 && crypto_flood_over_budget (g) == 7);
    //  Another origin has a budget of its own
    h = (crypto_flood_header_t) { .origin = D, .seqno = 7, .ttl = 8 };
    assert (crypto_flood_accept (g, &h, &origin) == CRYPTO_FLOOD_FRESH && origin == 1);
    assert (crypto_flood_forward (g, &h, 1, 1000, kids, CRYPTO_FLOOD_CHILDREN) == 1 && kids [0] == 2);
    h = (crypto_flood_header_t) { .origin = A, .seqno = 200, .ttl = 8 };
    assert (crypto_flood_accept (g, &h, &origin) == CRYPTO_FLOOD_FRESH);
    assert (crypto_flood_forward (g, &h, 0, 1000 + S_SEC / 2, kids, CRYPTO_FLOOD_CHILDREN) == 2);
    //  An origin with no tree here (unknown to the router): delivered, not forwarded
    h = (crypto_flood_header_t) { .origin = 0xEE, .seqno = 1, .ttl = 8 };
    assert (crypto_flood_accept (g, &h, &origin) == CRYPTO_FLOOD_FRESH && origin == CRYPTO_FLOOD_NO_PEER);
    assert (crypto_flood_forward (g, &h, 0, 2000, kids, CRYPTO_FLOOD_CHILDREN) == 0);
    //  An index that went to another id: the old origin loses it
    crypto_flood_set_id (g, 1, 0xDD);
    h = (crypto_flood_header_t) { .origin = D, .seqno = 8, .ttl = 8 };
    assert (crypto_flood_accept (g, &h, &origin) == CRYPTO_FLOOD_FRESH && origin == CRYPTO_FLOOD_NO_PEER);
    //  The table is bounded: origins past its size are refused, not tracked
    for (uint64_t id = 1; id <= CRYPTO_FLOOD_ORIGINS + 10; id++) {
        h = (crypto_flood_header_t) { .origin = 0x1000000 + id, .seqno = 1, .ttl = 8 };
        crypto_flood_verdict_t v = crypto_flood_accept (g, &h, &origin);
        assert (v == CRYPTO_FLOOD_FRESH || v == CRYPTO_FLOOD_FULL);
    }
    h = (crypto_flood_header_t) { .origin = 0x2000000, .seqno = 1, .ttl = 8 };
    assert (crypto_flood_accept (g, &h, &origin) == CRYPTO_FLOOD_FULL);
    h = (crypto_flood_header_t) { .origin = A, .seqno = 300, .ttl = 8 };
    assert (crypto_flood_accept (g, &h, &origin) == CRYPTO_FLOOD_FRESH);       //  known ones still are
    if (verbose)
        printf ("crypto_flood: %zu origins tracked, %llu over budget\n", g->norigins,
                (unsigned long long) crypto_flood_over_budget (g));
    crypto_flood_destroy (&f);
    crypto_flood_destroy (&g);
    assert (f == NULL && g == NULL);
}
