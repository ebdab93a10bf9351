/*  relay_table: one worker's peers, sessions and limits (why soft state: relay_table.h). */
#include "relay_table.h"

#include <czmq.h>

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    uint64_t network;
    uint32_t peers, sessions;
    relay_bucket_t pps, bps;
} s_net_t;

struct _relay_table_t {
    relay_limits_t limits;
    zhashx_t *by_id;            //  &peer->peer -> relay_peer_t (owned)
    zhashx_t *by_addr;          //  peer->addr_key -> relay_peer_t
    zhashx_t *nets;             //  &net->network -> s_net_t (owned)
    relay_table_stats_t stats;
};

//  Keys are 8-byte ids or 20-byte address keys, stored inside the values: no copies
static size_t
s_hash64 (const void *key)
{
    uint64_t v;
    memcpy (&v, key, 8);
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdULL;
    v ^= v >> 33;
    return (size_t) v;
}

static int
s_cmp64 (const void *a, const void *b)
{
    return memcmp (a, b, 8);
}

static size_t
s_hash_addr (const void *key)
{
    const uint8_t *k = (const uint8_t *) key;
    size_t h = 1469598103934665603ULL;
    for (int i = 0; i < 20; i++)
        h = (h ^ k [i]) * 1099511628211ULL;
    return h;
}

static int
s_cmp_addr (const void *a, const void *b)
{
    return memcmp (a, b, 20);
}

static void
s_free (void **item)
{
    free (*item);
    *item = NULL;
}

static zhashx_t *
s_map (zhashx_hash_fn *hash, zhashx_comparator_fn *cmp, bool owns)
{
    zhashx_t *map = zhashx_new ();
    assert (map);
    zhashx_set_key_hasher (map, hash);
    zhashx_set_key_comparator (map, cmp);
    zhashx_set_key_duplicator (map, NULL);
    zhashx_set_key_destructor (map, NULL);
    if (owns)
        zhashx_set_destructor (map, s_free);
    return map;
}

//  The reverse index key: family, port and address, nothing else of the sockaddr
//  (padding, flowinfo), so equal addresses always give equal keys. -1 for a family
//  the relay does not serve.
static int
s_addr_key (const struct sockaddr *addr, socklen_t len, uint8_t key [20])
{
    memset (key, 0, 20);
    if (addr->sa_family == AF_INET && len >= sizeof (struct sockaddr_in)) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *) addr;
        key [0] = 4;
        memcpy (key + 2, &sin->sin_port, 2);
        memcpy (key + 4, &sin->sin_addr, 4);
        return 0;
    }
    if (addr->sa_family == AF_INET6 && len >= sizeof (struct sockaddr_in6)) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) addr;
        key [0] = 6;
        memcpy (key + 2, &sin6->sin6_port, 2);
        memcpy (key + 4, &sin6->sin6_addr, 16);
        return 0;
    }
    return -1;
}

relay_table_t *
relay_table_new (const relay_limits_t *limits)
{
    relay_table_t *self = (relay_table_t *) calloc (1, sizeof *self);
    assert (self);
    if (limits)
        self->limits = *limits;
    if (self->limits.peer_sessions == 0 || self->limits.peer_sessions > RELAY_TABLE_SESSIONS_MAX)
        self->limits.peer_sessions = RELAY_TABLE_SESSIONS_MAX;
    self->by_id = s_map (s_hash64, s_cmp64, true);
    self->by_addr = s_map (s_hash_addr, s_cmp_addr, false);
    self->nets = s_map (s_hash64, s_cmp64, true);
    return self;
}

void
relay_table_destroy (relay_table_t **self_p)
{
    if (self_p && *self_p) {
        relay_table_t *self = *self_p;
        zhashx_destroy (&self->by_addr);
        zhashx_destroy (&self->by_id);
        zhashx_destroy (&self->nets);
        free (self);
        *self_p = NULL;
    }
}

//  Token bucket: rate per second, burst of one second. rate 0 lets all through.
static bool
s_bucket_take (relay_bucket_t *b, uint32_t rate, double amount, uint64_t now_ms)
{
    if (rate == 0)
        return true;
    if (b->last_ms == 0 && b->tokens == 0)
        b->tokens = rate;           //  a new bucket starts full
    else if (now_ms > b->last_ms) {
        b->tokens += (double) rate * (double) (now_ms - b->last_ms) / 1000.0;
        if (b->tokens > rate)
            b->tokens = rate;
    }
    b->last_ms = now_ms > b->last_ms ? now_ms : b->last_ms;
    if (b->tokens < amount)
        return false;
    b->tokens -= amount;
    return true;
}

static bool
s_has_partner (const relay_peer_t *p, uint64_t other)
{
    for (uint32_t i = 0; i < p->sessions; i++)
        if (p->partners [i] == other)
            return true;
    return false;
}

static void
s_drop_partner (relay_peer_t *p, uint64_t other)
{
    for (uint32_t i = 0; i < p->sessions; i++)
        if (p->partners [i] == other) {
            p->partners [i] = p->partners [--p->sessions];
            return;
        }
}

//  Removes a peer and every session it is part of
static void
s_remove (relay_table_t *self, relay_peer_t *peer)
{
    s_net_t *net = (s_net_t *) zhashx_lookup (self->nets, &peer->network);
    assert (net);
    for (uint32_t i = 0; i < peer->sessions; i++) {
        relay_peer_t *other = (relay_peer_t *) zhashx_lookup (self->by_id, &peer->partners [i]);
        if (other)
            s_drop_partner (other, peer->peer);
        net->sessions--;
        self->stats.sessions--;
    }
    if (zhashx_lookup (self->by_addr, peer->addr_key) == peer)
        zhashx_delete (self->by_addr, peer->addr_key);
    if (--net->peers == 0) {
        zhashx_delete (self->nets, &net->network);
        self->stats.networks--;
    }
    self->stats.peers--;
    zhashx_delete (self->by_id, &peer->peer);     //  frees peer
}

relay_table_result_t
relay_table_register (relay_table_t *self, uint64_t peer_id, uint64_t network,
                      const struct sockaddr *addr, socklen_t addr_len,
                      uint64_t expiry, uint64_t now_ms, relay_peer_t **peer_p, bool *moved)
{
    assert (self && addr);
    uint8_t key [20];
    if (moved)
        *moved = false;
    if (s_addr_key (addr, addr_len, key)) {
        self->stats.refused [RELAY_TABLE_BAD_ADDRESS]++;
        return RELAY_TABLE_BAD_ADDRESS;
    }
    relay_peer_t *peer = (relay_peer_t *) zhashx_lookup (self->by_id, &peer_id);
    //  The same id in another network: a new registration of another peer (the
    //  registry's ids are random); the old one goes
    if (peer && peer->network != network) {
        s_remove (self, peer);
        peer = NULL;
    }
    if (!peer) {
        s_net_t *net = (s_net_t *) zhashx_lookup (self->nets, &network);
        if (self->limits.max_peers && self->stats.peers >= self->limits.max_peers) {
            self->stats.refused [RELAY_TABLE_FULL]++;
            return RELAY_TABLE_FULL;
        }
        if (net && self->limits.net_peers && net->peers >= self->limits.net_peers) {
            self->stats.refused [RELAY_TABLE_NET_FULL]++;
            return RELAY_TABLE_NET_FULL;
        }
        if (!net) {
            net = (s_net_t *) calloc (1, sizeof *net);
            assert (net);
            net->network = network;
            zhashx_insert (self->nets, &net->network, net);
            self->stats.networks++;
        }
        net->peers++;
        peer = (relay_peer_t *) calloc (1, sizeof *peer);
        assert (peer);
        peer->peer = peer_id;
        peer->network = network;
        zhashx_insert (self->by_id, &peer->peer, peer);
        self->stats.peers++;
    }
    else
    if (memcmp (peer->addr_key, key, sizeof key) != 0) {
        if (zhashx_lookup (self->by_addr, peer->addr_key) == peer)
            zhashx_delete (self->by_addr, peer->addr_key);
        if (moved)
            *moved = true;
        self->stats.moved++;
    }
    //  The newest registration owns the address
    relay_peer_t *holder = (relay_peer_t *) zhashx_lookup (self->by_addr, key);
    if (holder && holder != peer)
        zhashx_delete (self->by_addr, key);
    memcpy (peer->addr_key, key, sizeof key);
    memset (&peer->addr, 0, sizeof peer->addr);
    memcpy (&peer->addr, addr, addr_len < sizeof peer->addr ? addr_len : sizeof peer->addr);
    peer->addr_len = addr_len;
    if (!holder || holder != peer)
        zhashx_insert (self->by_addr, peer->addr_key, peer);
    peer->expiry = expiry;
    peer->last_ms = now_ms;
    self->stats.registered++;
    if (peer_p)
        *peer_p = peer;
    return RELAY_TABLE_OK;
}

relay_peer_t *
relay_table_by_addr (relay_table_t *self, const struct sockaddr *addr, socklen_t addr_len)
{
    uint8_t key [20];
    if (s_addr_key (addr, addr_len, key))
        return NULL;
    return (relay_peer_t *) zhashx_lookup (self->by_addr, key);
}

relay_peer_t *
relay_table_by_id (relay_table_t *self, uint64_t peer)
{
    return (relay_peer_t *) zhashx_lookup (self->by_id, &peer);
}

static relay_table_result_t
s_refuse (relay_table_t *self, relay_peer_t *src, relay_table_result_t why)
{
    src->drops++;
    self->stats.refused [why]++;
    return why;
}

relay_table_result_t
relay_table_forward (relay_table_t *self, relay_peer_t *src, relay_peer_t *dst,
                     size_t size, uint64_t now_ms, bool *new_session)
{
    assert (self && src && dst);
    if (new_session)
        *new_session = false;
    src->last_ms = now_ms;
    if (src->network != dst->network)
        return s_refuse (self, src, RELAY_TABLE_OTHER_NETWORK);
    s_net_t *net = (s_net_t *) zhashx_lookup (self->nets, &src->network);
    assert (net);
    const relay_limits_t *l = &self->limits;
    //  Peek the peer's buckets first so a refused packet costs the network nothing
    if (!s_bucket_take (&src->pps, l->peer_pps, 1, now_ms)
    ||  !s_bucket_take (&src->bps, l->peer_bps, (double) size, now_ms))
        return s_refuse (self, src, RELAY_TABLE_PEER_RATE);
    if (!s_bucket_take (&net->pps, l->net_pps, 1, now_ms)
    ||  !s_bucket_take (&net->bps, l->net_bps, (double) size, now_ms))
        return s_refuse (self, src, RELAY_TABLE_NET_RATE);
    if (src != dst && !s_has_partner (src, dst->peer)) {
        if (src->sessions >= l->peer_sessions || dst->sessions >= l->peer_sessions
        ||  (l->net_sessions && net->sessions >= l->net_sessions))
            return s_refuse (self, src, RELAY_TABLE_SESSIONS);
        src->partners [src->sessions++] = dst->peer;
        dst->partners [dst->sessions++] = src->peer;
        net->sessions++;
        self->stats.sessions++;
        if (new_session)
            *new_session = true;
    }
    src->pkts_in++;
    src->bytes_in += size;
    dst->pkts_out++;
    dst->bytes_out += size;
    return RELAY_TABLE_OK;
}

void
relay_table_touch (relay_table_t *self, relay_peer_t *peer, uint64_t now_ms)
{
    assert (self && peer);
    peer->last_ms = now_ms;
}

size_t
relay_table_expire (relay_table_t *self, uint64_t now_ms, uint64_t now_s)
{
    assert (self);
    //  Collect first: removing while iterating a zhashx is not allowed
    zlistx_t *gone = zlistx_new ();
    for (relay_peer_t *p = (relay_peer_t *) zhashx_first (self->by_id); p;
         p = (relay_peer_t *) zhashx_next (self->by_id)) {
        bool idle = self->limits.idle_ms && now_ms > p->last_ms + self->limits.idle_ms;
        bool expired = now_s > p->expiry;
        if (idle || expired) {
            zlistx_add_end (gone, p);
            if (expired)
                self->stats.expired_cred++;
            else
                self->stats.expired_idle++;
        }
    }
    size_t count = zlistx_size (gone);
    for (relay_peer_t *p = (relay_peer_t *) zlistx_first (gone); p; p = (relay_peer_t *) zlistx_next (gone))
        s_remove (self, p);
    zlistx_destroy (&gone);
    return count;
}

const relay_table_stats_t *relay_table_stats (relay_table_t *self) { return &self->stats; }

relay_peer_t *
relay_table_first (relay_table_t *self)
{
    return (relay_peer_t *) zhashx_first (self->by_id);
}

relay_peer_t *
relay_table_next (relay_table_t *self)
{
    return (relay_peer_t *) zhashx_next (self->by_id);
}

const char *
relay_table_result_name (relay_table_result_t result)
{
    static const char *names [] = {
        "ok", "table full", "network full", "other network", "peer rate", "network rate", "sessions",
        "bad address"
    };
    return (unsigned) result < RELAY_TABLE_RESULTS ? names [result] : "unknown";
}

//  --------------------------------------------------------------------------
//  Self test

static struct sockaddr_in
s_v4 (const char *ip, uint16_t port)
{
    struct sockaddr_in sin;
    memset (&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons (port);
    inet_pton (AF_INET, ip, &sin.sin_addr);
    return sin;
}

#define S_ADDR(sin) ((const struct sockaddr *) &(sin)), sizeof (sin)

void
relay_table_test (bool verbose)
{
    if (verbose)
        printf (" * relay_table: ");
    relay_limits_t limits = { .peer_pps = 10, .peer_sessions = 2, .net_peers = 3,
                              .net_sessions = 2, .max_peers = 5, .idle_ms = 30000 };
    relay_table_t *table = relay_table_new (&limits);
    const relay_table_stats_t *stats = relay_table_stats (table);
    uint64_t now = 1000, now_s = 1800000000, expiry = now_s + 600;
    const uint64_t NET = 0xaaaa, NET2 = 0xbbbb;

    struct sockaddr_in a1 = s_v4 ("127.0.0.1", 1001), a2 = s_v4 ("127.0.0.1", 1002);
    struct sockaddr_in a3 = s_v4 ("127.0.0.1", 1003), a4 = s_v4 ("127.0.0.1", 1004);
    relay_peer_t *A, *B, *C, *D;
    bool moved, fresh;
    assert (relay_table_register (table, 1, NET, S_ADDR (a1), expiry, now, &A, &moved) == RELAY_TABLE_OK);
    assert (!moved && A->peer == 1 && A->network == NET);
    assert (relay_table_register (table, 2, NET, S_ADDR (a2), expiry, now, &B, &moved) == RELAY_TABLE_OK);
    assert (relay_table_register (table, 3, NET, S_ADDR (a3), expiry, now, &C, NULL) == RELAY_TABLE_OK);
    assert (stats->peers == 3 && stats->networks == 1);
    //  Per-network peer limit
    assert (relay_table_register (table, 4, NET, S_ADDR (a4), expiry, now, &D, NULL) == RELAY_TABLE_NET_FULL);
    assert (stats->refused [RELAY_TABLE_NET_FULL] == 1);
    assert (relay_table_register (table, 4, NET2, S_ADDR (a4), expiry, now, &D, NULL) == RELAY_TABLE_OK);
    assert (stats->networks == 2);

    //  Lookups: by id, by exact address (another port is another address)
    assert (relay_table_by_id (table, 2) == B);
    assert (relay_table_by_addr (table, S_ADDR (a1)) == A);
    struct sockaddr_in other_port = s_v4 ("127.0.0.1", 1009);
    assert (relay_table_by_addr (table, S_ADDR (other_port)) == NULL);
    assert (relay_table_by_id (table, 99) == NULL);

    //  Forward: a new session once, then counted
    assert (relay_table_forward (table, A, B, 100, now, &fresh) == RELAY_TABLE_OK && fresh);
    assert (relay_table_forward (table, B, A, 50, now, &fresh) == RELAY_TABLE_OK && !fresh);
    assert (A->pkts_in == 1 && A->bytes_in == 100 && B->pkts_out == 1 && B->bytes_out == 100);
    assert (A->pkts_out == 1 && A->bytes_out == 50);
    assert (stats->sessions == 1 && A->sessions == 1 && B->sessions == 1);
    //  Another network
    assert (relay_table_forward (table, A, D, 10, now, &fresh) == RELAY_TABLE_OTHER_NETWORK);
    assert (A->drops == 1 && stats->refused [RELAY_TABLE_OTHER_NETWORK] == 1);
    //  Network session limit (2): A-C makes two, B-C would be the third
    assert (relay_table_forward (table, A, C, 10, now, &fresh) == RELAY_TABLE_OK && fresh);
    assert (relay_table_forward (table, B, C, 10, now, &fresh) == RELAY_TABLE_SESSIONS);
    assert (stats->refused [RELAY_TABLE_SESSIONS] == 1);

    //  Peer rate: 10 packets/s burst; A has sent 3 already
    int passed = 0;
    for (int i = 0; i < 20; i++)
        if (relay_table_forward (table, A, B, 10, now, NULL) == RELAY_TABLE_OK)
            passed++;
    assert (passed == 10 - 2);
    assert (stats->refused [RELAY_TABLE_PEER_RATE] == 12);
    //  Half a second refills five
    passed = 0;
    for (int i = 0; i < 20; i++)
        if (relay_table_forward (table, A, B, 10, now + 500, NULL) == RELAY_TABLE_OK)
            passed++;
    assert (passed == 5);

    //  Byte rate per network
    relay_limits_t bl = { .net_bps = 1000 };
    relay_table_t *bt = relay_table_new (&bl);
    relay_peer_t *x, *y;
    relay_table_register (bt, 1, NET, S_ADDR (a1), expiry, now, &x, NULL);
    relay_table_register (bt, 2, NET, S_ADDR (a2), expiry, now, &y, NULL);
    assert (relay_table_forward (bt, x, y, 600, now, NULL) == RELAY_TABLE_OK);
    assert (relay_table_forward (bt, y, x, 600, now, NULL) == RELAY_TABLE_NET_RATE);
    assert (relay_table_forward (bt, y, x, 400, now, NULL) == RELAY_TABLE_OK);
    assert (y->drops == 1);
    relay_table_destroy (&bt);

    //  Re-register from a new address: moved, and the old address no longer maps
    struct sockaddr_in a1b = s_v4 ("127.0.0.2", 2001);
    assert (relay_table_register (table, 1, NET, S_ADDR (a1b), expiry, now, &A, &moved) == RELAY_TABLE_OK);
    assert (moved && stats->moved == 1);
    assert (relay_table_by_addr (table, S_ADDR (a1)) == NULL);
    assert (relay_table_by_addr (table, S_ADDR (a1b)) == A);
    assert (A->sessions == 2);                  //  sessions survive a move
    //  Another peer registering from A's address takes it over
    relay_table_register (table, 2, NET, S_ADDR (a1b), expiry, now, &B, &moved);
    assert (relay_table_by_addr (table, S_ADDR (a1b)) == B);
    relay_table_register (table, 2, NET, S_ADDR (a2), expiry, now, &B, &moved);
    assert (relay_table_by_addr (table, S_ADDR (a1b)) == NULL);
    relay_table_register (table, 1, NET, S_ADDR (a1b), expiry, now, &A, &moved);
    assert (relay_table_by_addr (table, S_ADDR (a1b)) == A);

    //  Idle expiry forgets C (silent), and its session with A
    relay_table_touch (table, A, now + 20000);
    relay_table_touch (table, B, now + 20000);
    relay_table_touch (table, D, now + 20000);
    assert (relay_table_expire (table, now + 31000, now_s) == 1);
    assert (relay_table_by_id (table, 3) == NULL && stats->expired_idle == 1);
    assert (A->sessions == 1 && stats->sessions == 1);
    //  Credential expiry
    relay_table_register (table, 2, NET, S_ADDR (a2), now_s + 10, now + 20000, &B, NULL);
    assert (relay_table_expire (table, now + 20000, now_s + 11) == 1);
    assert (relay_table_by_id (table, 2) == NULL && relay_table_by_addr (table, S_ADDR (a2)) == NULL);
    assert (A->sessions == 0 && stats->sessions == 0 && stats->expired_cred == 1);
    //  Table limit: 5 peers
    for (uint64_t id = 10; id < 20; id++) {
        struct sockaddr_in a = s_v4 ("127.0.0.3", (uint16_t) (3000 + id));
        relay_table_register (table, id, 0x1000 + id, S_ADDR (a), expiry, now, NULL, NULL);
    }
    assert (stats->peers == 5 && stats->refused [RELAY_TABLE_FULL] == 7);
    //  Everything expires
    assert (relay_table_expire (table, now + 100000, now_s) == 5);
    assert (stats->peers == 0 && stats->networks == 0);

    //  IPv6 and an unsupported family
    struct sockaddr_in6 v6;
    memset (&v6, 0, sizeof v6);
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons (7);
    inet_pton (AF_INET6, "::1", &v6.sin6_addr);
    assert (relay_table_register (table, 50, NET, S_ADDR (v6), expiry, now, &A, NULL) == RELAY_TABLE_OK);
    v6.sin6_flowinfo = 77;          //  not part of the address
    assert (relay_table_by_addr (table, S_ADDR (v6)) == A);
    struct sockaddr bad = { .sa_family = AF_UNIX };
    assert (relay_table_register (table, 51, NET, &bad, sizeof bad, expiry, now, NULL, NULL) == RELAY_TABLE_BAD_ADDRESS);
    assert (stats->refused [RELAY_TABLE_BAD_ADDRESS] == 1);
    assert (relay_table_by_addr (table, &bad, sizeof bad) == NULL);
    assert (strcmp (relay_table_result_name (RELAY_TABLE_SESSIONS), "sessions") == 0);

    relay_table_destroy (&table);
    assert (table == NULL);
    if (verbose)
        printf ("OK\n");
}
