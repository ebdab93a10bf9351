/*  nat_peer_table: peers by index, key and endpoint (see nat_peer_table.h). */
#include "nat_peer_table.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Open addressing with linear probing; a slot holds peer index + 1 (0 = empty).
//  Capacity is a power of two kept at least twice the entries, so probes stay short.
typedef struct {
    uint32_t *slots;
    size_t mask;
    size_t used;
} s_index_t;

typedef enum { S_BY_KEY, S_BY_ADDR } s_kind_t;

struct _nat_peer_table_t {
    nat_peer_t **peers;
    size_t slots, alloc, count;
    uint64_t seed;
    s_index_t by_key, by_addr;
    nat_peer_handler_t handler;
    void *handler_arg;
};

static uint64_t
s_hash_key (nat_peer_table_t *self, const uint8_t *key)
{
    nat_addr_t fake;                    //  reuse the address mixer on 16 key bytes
    nat_addr_clear (&fake);
    fake.in6.sin6_family = AF_INET6;
    fake.len = sizeof fake.in6;
    memcpy (&fake.in6.sin6_addr, key, 16);
    memcpy (&fake.in6.sin6_scope_id, key + 16, 4);
    return nat_addr_hash (&fake, self->seed);
}

static uint64_t
s_hash_of (nat_peer_table_t *self, s_kind_t kind, uint32_t index)
{
    nat_peer_t *peer = self->peers [index];
    return kind == S_BY_KEY ? s_hash_key (self, nat_peer_key (peer))
                            : nat_addr_hash (nat_peer_endpoint (peer), self->seed);
}

static s_index_t *
s_index (nat_peer_table_t *self, s_kind_t kind)
{
    return kind == S_BY_KEY ? &self->by_key : &self->by_addr;
}

static void s_insert (nat_peer_table_t *self, s_kind_t kind, uint32_t index);

static void
s_rebuild (nat_peer_table_t *self, s_kind_t kind, size_t capacity)
{
    s_index_t *ix = s_index (self, kind);
    free (ix->slots);
    ix->slots = calloc (capacity, sizeof (uint32_t));
    assert (ix->slots);
    ix->mask = capacity - 1;
    ix->used = 0;
    for (size_t i = 0; i < self->slots; i++)
        if (self->peers [i]
        &&  (kind == S_BY_KEY || nat_addr_is_set (nat_peer_endpoint (self->peers [i]))))
            s_insert (self, kind, (uint32_t) i);
}

static void
s_insert (nat_peer_table_t *self, s_kind_t kind, uint32_t index)
{
    s_index_t *ix = s_index (self, kind);
    if ((ix->used + 1) * 2 > ix->mask + 1) {
        s_rebuild (self, kind, (ix->mask + 1) * 2);
        return;                         //  the rebuild inserted it (peer already set)
    }
    size_t i = s_hash_of (self, kind, index) & ix->mask;
    while (ix->slots [i])
        i = (i + 1) & ix->mask;
    ix->slots [i] = index + 1;
    ix->used++;
}

//  Removes index, found by probing from hash; backward-shift deletion keeps every
//  other entry reachable without tombstones.
static void
s_erase (nat_peer_table_t *self, s_kind_t kind, uint32_t index, uint64_t hash)
{
    s_index_t *ix = s_index (self, kind);
    size_t i = hash & ix->mask;
    for (size_t n = 0; ix->slots [i] != index + 1; n++) {
        if (!ix->slots [i] || n > ix->mask)
            return;                     //  not indexed
        i = (i + 1) & ix->mask;
    }
    size_t j = i;
    while (true) {
        j = (j + 1) & ix->mask;
        if (!ix->slots [j])
            break;
        size_t home = s_hash_of (self, kind, ix->slots [j] - 1) & ix->mask;
        //  Move j back into the hole at i unless its home lies cyclically in (i, j]
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            ix->slots [i] = ix->slots [j];
            i = j;
        }
    }
    ix->slots [i] = 0;
    ix->used--;
}

//  The forwarding handler each peer gets
static void
s_on_keepalive (nat_peer_t *peer, void *arg)
{
    nat_peer_table_t *self = arg;
    if (self->handler.keepalive)
        self->handler.keepalive (peer, self->handler_arg);
}

static void
s_on_connect (nat_peer_t *peer, const nat_addr_t *addr, void *arg)
{
    nat_peer_table_t *self = arg;
    if (self->handler.connect)
        self->handler.connect (peer, addr, self->handler_arg);
}

static void
s_on_resolve (nat_peer_t *peer, const char *host, uint16_t port, void *arg)
{
    nat_peer_table_t *self = arg;
    if (self->handler.resolve)
        self->handler.resolve (peer, host, port, self->handler_arg);
}

static void
s_on_state (nat_peer_t *peer, nat_peer_state_t old_state, void *arg)
{
    nat_peer_table_t *self = arg;
    if (self->handler.state)
        self->handler.state (peer, old_state, self->handler_arg);
}

static void
s_on_endpoint (nat_peer_t *peer, const nat_addr_t *old_addr, void *arg)
{
    nat_peer_table_t *self = arg;
    uint32_t index = nat_peer_index (peer);
    if (nat_addr_is_set (old_addr))
        s_erase (self, S_BY_ADDR, index, nat_addr_hash (old_addr, self->seed));
    const nat_addr_t *addr = nat_peer_endpoint (peer);
    if (nat_addr_is_set (addr)) {
        nat_peer_t *other = nat_peer_table_by_addr (self, addr);
        if (other && other != peer) {
            s_erase (self, S_BY_ADDR, nat_peer_index (other), nat_addr_hash (addr, self->seed));
            nat_peer_clear_endpoint (other);
        }
        s_insert (self, S_BY_ADDR, index);
    }
    if (self->handler.endpoint)
        self->handler.endpoint (peer, old_addr, self->handler_arg);
}

static void
s_on_probe (nat_peer_t *peer, void *arg)
{
    nat_peer_table_t *self = arg;
    if (self->handler.probe)
        self->handler.probe (peer, self->handler_arg);
}

static const nat_peer_handler_t s_table_handler = {
    s_on_keepalive, s_on_connect, s_on_resolve, s_on_state, s_on_endpoint, s_on_probe
};

nat_peer_table_t *
nat_peer_table_new (uint64_t seed)
{
    nat_peer_table_t *self = calloc (1, sizeof *self);
    assert (self);
    self->seed = seed;
    s_rebuild (self, S_BY_KEY, 16);
    s_rebuild (self, S_BY_ADDR, 16);
    return self;
}

void
nat_peer_table_destroy (nat_peer_table_t **self_p)
{
    if (self_p && *self_p) {
        nat_peer_table_t *self = *self_p;
        for (size_t i = 0; i < self->slots; i++)
            nat_peer_destroy (&self->peers [i]);
        free (self->peers);
        free (self->by_key.slots);
        free (self->by_addr.slots);
        free (self);
        *self_p = NULL;
    }
}

void
nat_peer_table_set_handler (nat_peer_table_t *self, const nat_peer_handler_t *handler, void *arg)
{
    self->handler = handler ? *handler : (nat_peer_handler_t) { 0 };
    self->handler_arg = arg;
}

int
nat_peer_table_add (nat_peer_table_t *self, nat_peer_t **peer_p, char *err, size_t err_size)
{
    nat_peer_t *peer = *peer_p;
    *peer_p = NULL;
    if (nat_peer_table_by_key (self, nat_peer_key (peer))) {
        char b64 [NAT_KEY_BASE64_SIZE];
        nat_key_to_base64 (nat_peer_key (peer), b64);
        snprintf (err, err_size, "peer %s is configured twice", b64);
        nat_peer_destroy (&peer);
        return -1;
    }
    //  Reuse the first free slot, so indices stay small and stable
    size_t index = 0;
    while (index < self->slots && self->peers [index])
        index++;
    if (index == self->alloc) {
        self->alloc = self->alloc ? self->alloc * 2 : 16;
        self->peers = realloc (self->peers, self->alloc * sizeof (nat_peer_t *));
        assert (self->peers);
    }
    if (index == self->slots)
        self->slots++;
    self->peers [index] = peer;
    self->count++;
    nat_peer_set_index (peer, (uint32_t) index);
    nat_peer_set_handler (peer, &s_table_handler, self);
    s_insert (self, S_BY_KEY, (uint32_t) index);
    if (nat_addr_is_set (nat_peer_endpoint (peer)))
        s_insert (self, S_BY_ADDR, (uint32_t) index);
    return (int) index;
}

int
nat_peer_table_remove (nat_peer_table_t *self, const uint8_t *key)
{
    nat_peer_t *peer = nat_peer_table_by_key (self, key);
    if (!peer)
        return -1;
    uint32_t index = nat_peer_index (peer);
    s_erase (self, S_BY_KEY, index, s_hash_key (self, key));
    if (nat_addr_is_set (nat_peer_endpoint (peer)))
        s_erase (self, S_BY_ADDR, index, nat_addr_hash (nat_peer_endpoint (peer), self->seed));
    nat_peer_destroy (&self->peers [index]);
    self->count--;
    while (self->slots && !self->peers [self->slots - 1])
        self->slots--;
    return 0;
}

size_t nat_peer_table_count (nat_peer_table_t *self) { return self->count; }
size_t nat_peer_table_slots (nat_peer_table_t *self) { return self->slots; }

nat_peer_t *
nat_peer_table_at (nat_peer_table_t *self, size_t index)
{
    return index < self->slots ? self->peers [index] : NULL;
}

nat_peer_t *
nat_peer_table_by_key (nat_peer_table_t *self, const uint8_t *key)
{
    s_index_t *ix = &self->by_key;
    for (size_t i = s_hash_key (self, key) & ix->mask; ix->slots [i]; i = (i + 1) & ix->mask) {
        nat_peer_t *peer = self->peers [ix->slots [i] - 1];
        if (memcmp (nat_peer_key (peer), key, NAT_KEY_SIZE) == 0)
            return peer;
    }
    return NULL;
}

nat_peer_t *
nat_peer_table_by_key_base64 (nat_peer_table_t *self, const char *text)
{
    uint8_t key [NAT_KEY_SIZE];
    char err [100];
    if (nat_key_from_base64 (text, key, err, sizeof err))
        return NULL;
    return nat_peer_table_by_key (self, key);
}

nat_peer_t *
nat_peer_table_by_addr (nat_peer_table_t *self, const nat_addr_t *addr)
{
    s_index_t *ix = &self->by_addr;
    for (size_t i = nat_addr_hash (addr, self->seed) & ix->mask; ix->slots [i];
         i = (i + 1) & ix->mask) {
        nat_peer_t *peer = self->peers [ix->slots [i] - 1];
        if (nat_addr_eq (nat_peer_endpoint (peer), addr))
            return peer;
    }
    return NULL;
}

void
nat_peer_table_tick (nat_peer_table_t *self, int64_t now_ms)
{
    for (size_t i = 0; i < self->slots; i++)
        if (self->peers [i] && nat_peer_next_deadline (self->peers [i]) <= now_ms)
            nat_peer_tick (self->peers [i], now_ms);
}

int64_t
nat_peer_table_next_deadline (nat_peer_table_t *self)
{
    int64_t next = NAT_PEER_NEVER;
    for (size_t i = 0; i < self->slots; i++)
        if (self->peers [i]) {
            int64_t deadline = nat_peer_next_deadline (self->peers [i]);
            if (deadline < next)
                next = deadline;
        }
    return next;
}

//  --------------------------------------------------------------------------
//  Self test

static size_t s_connects, s_endpoint_changes;

static void
s_count_connect (nat_peer_t *peer, const nat_addr_t *addr, void *arg)
{
    s_connects++;
}

static void
s_count_endpoint (nat_peer_t *peer, const nat_addr_t *old_addr, void *arg)
{
    s_endpoint_changes++;
}

static void
s_key (uint8_t *key, uint32_t n)
{
    memset (key, 0, NAT_KEY_SIZE);
    for (int i = 0; i < NAT_KEY_SIZE; i++)
        key [i] = (uint8_t) ((n * 2654435761u) >> (i % 4 * 8)) ^ (uint8_t) i;
    memcpy (key + 28, &n, 4);
}

static void
s_addr (nat_addr_t *addr, uint32_t n)
{
    char ip [64];
    if (n % 2)
        snprintf (ip, sizeof ip, "2001:db8::%x:%x", n >> 16, n & 0xffff);
    else
        snprintf (ip, sizeof ip, "198.51.100.%u", n % 250);
    assert (nat_addr_set_ip (addr, ip, (uint16_t) (1000 + n)) == 0);
}

void
nat_peer_table_test (bool verbose)
{
    enum { N = 1000 };
    nat_peer_table_t *table = nat_peer_table_new (0x5eed);
    nat_peer_table_set_handler (table, &(nat_peer_handler_t) {
        .connect = s_count_connect, .endpoint = s_count_endpoint }, NULL);
    char err [200];
    uint8_t key [NAT_KEY_SIZE];
    for (uint32_t n = 0; n < N; n++) {
        s_key (key, n);
        bool direct = n < 10;
        nat_peer_t *peer = nat_peer_new (&(nat_peer_config_t) {
            .public_key = key, .endpoint = direct ? "192.0.2.1:51820" : NULL, .direct = direct
        }, err, sizeof err);
        assert (peer);
        assert (nat_peer_table_add (table, &peer, err, sizeof err) == (int) n);
        assert (peer == NULL);
    }
    assert (nat_peer_table_count (table) == N);

    //  A second peer with a known key is refused
    s_key (key, 7);
    nat_peer_t *dup = nat_peer_new (&(nat_peer_config_t) { .public_key = key }, err, sizeof err);
    assert (nat_peer_table_add (table, &dup, err, sizeof err) == -1 && dup == NULL);
    assert (strstr (err, "configured twice"));

    //  By key and by base64 key
    char b64 [NAT_KEY_BASE64_SIZE];
    for (uint32_t n = 0; n < N; n++) {
        s_key (key, n);
        nat_peer_t *peer = nat_peer_table_by_key (table, key);
        assert (peer && nat_peer_index (peer) == n && nat_peer_table_at (table, n) == peer);
        nat_key_to_base64 (key, b64);
        assert (nat_peer_table_by_key_base64 (table, b64) == peer);
    }
    s_key (key, N);
    assert (!nat_peer_table_by_key (table, key));
    assert (!nat_peer_table_by_key_base64 (table, "not a key"));

    //  Every peer confirmed at its own address; found by datagram source
    nat_addr_t addr;
    for (uint32_t n = 0; n < N; n++) {
        s_addr (&addr, n);
        nat_peer_confirm_endpoint (nat_peer_table_at (table, n), &addr, 1000);
    }
    assert (s_endpoint_changes == N);
    for (uint32_t n = 0; n < N; n++) {
        s_addr (&addr, n);
        assert (nat_peer_table_by_addr (table, &addr) == nat_peer_table_at (table, n));
    }
    s_addr (&addr, N + 1);
    assert (!nat_peer_table_by_addr (table, &addr));
    //  An IPv4 peer is found from the mapped form a dual-stack socket reports
    nat_addr_t mapped;
    assert (nat_addr_set_ip (&mapped, "::ffff:198.51.100.2", 1002) == 0);
    assert (nat_peer_table_by_addr (table, &mapped) == nat_peer_table_at (table, 2));

    //  Roaming: peer 5 moves; its old address no longer finds it
    nat_addr_t old5, new5;
    s_addr (&old5, 5);
    nat_addr_set_ip (&new5, "203.0.113.50", 4444);
    nat_peer_confirm_endpoint (nat_peer_table_at (table, 5), &new5, 2000);
    assert (!nat_peer_table_by_addr (table, &old5));
    assert (nat_peer_table_by_addr (table, &new5) == nat_peer_table_at (table, 5));
    //  Peer 7 is authenticated at peer 5's address: 5 loses it
    nat_peer_confirm_endpoint (nat_peer_table_at (table, 7), &new5, 3000);
    assert (nat_peer_table_by_addr (table, &new5) == nat_peer_table_at (table, 7));
    assert (!nat_addr_is_set (nat_peer_endpoint (nat_peer_table_at (table, 5))));

    //  Removing every third peer leaves every other one findable both ways
    for (uint32_t n = 0; n < N; n += 3) {
        s_key (key, n);
        assert (nat_peer_table_remove (table, key) == 0);
        assert (nat_peer_table_remove (table, key) == -1);
    }
    for (uint32_t n = 0; n < N; n++) {
        s_key (key, n);
        nat_peer_t *peer = nat_peer_table_by_key (table, key);
        assert ((peer != NULL) == (n % 3 != 0));
        if (!peer || n == 5 || n == 7)
            continue;
        s_addr (&addr, n);
        assert (nat_peer_table_by_addr (table, &addr) == peer);
    }
    assert (nat_peer_table_count (table) == N - (N + 2) / 3);
    //  The freed slot 0 is reused by the next peer
    s_key (key, N + 5);
    nat_peer_t *peer = nat_peer_new (&(nat_peer_config_t) { .public_key = key }, err, sizeof err);
    assert (nat_peer_table_add (table, &peer, err, sizeof err) == 0);

    //  Ticks reach the peers through the table handler. Everyone is up since 1 s
    //  (5 since 2 s, 7 since 3 s); silent for 80 s, the direct ones left (1, 2, 4,
    //  8, then 5 and 7) dial at once, the others wait
    int64_t next = nat_peer_table_next_deadline (table);
    assert (next == 1000 + 25000);     //  the first keepalive
    nat_peer_table_tick (table, 1000 + 80000);
    assert (s_connects == 4);
    nat_peer_table_tick (table, 3000 + 80000);
    assert (s_connects == 4 + 2 + 4);  //  and 1, 2, 4, 8 retried after 1 s
    nat_peer_status_t st;
    nat_peer_status (nat_peer_table_at (table, 1), &st);
    assert (st.state == NAT_PEER_CONNECTING && st.attempts == 2);
    nat_peer_status (nat_peer_table_at (table, 11), &st);
    assert (st.state == NAT_PEER_WAITING);
    if (verbose)
        printf ("  %zu peers, %zu slots\n", nat_peer_table_count (table), nat_peer_table_slots (table));
    nat_peer_table_destroy (&table);
    assert (table == NULL);
}
