/*  dev_peermap: destination -> peer for TUN packets and TAP frames (see
    dev_peermap.h). Prefixes live in an array sorted longest first (a mesh has
    tens to hundreds of peers; a linear scan of one cache line per peer beats a
    trie at that size). MACs live in a dense array indexed by an open-addressing
    hash of twice its capacity; removals compact the array and rebuild the
    index, which only happens on aging sweeps and peer removal, never per
    packet. */
#include "dev_peermap.h"
#include "dev_arp.h"
#include "dev_mac.h"
#include "dev_bytes.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct {
    dev_addr_t net;
    uint32_t peer;
} s_prefix_t;

typedef struct {
    uint8_t mac [6];
    bool fixed;                 //  static: never ages, never moves
    uint32_t peer;
    uint64_t seen;              //  last frame from the peer with this source
} s_mac_t;

struct _dev_peermap_t {
    s_prefix_t *prefixes;
    size_t prefix_count, prefix_alloc;
    s_mac_t *macs;
    size_t mac_count, mac_capacity;
    int32_t *slots;             //  -1 empty, else index into macs
    size_t slot_mask;
    uint64_t age_ms;
    bool has_local;
    dev_addr_t local;
    bool has_local_mac;
    uint8_t local_mac [6];
    dev_peermap_stats_t stats;
};

dev_peermap_t *
dev_peermap_new (size_t mac_capacity, uint64_t age_ms)
{
    if (mac_capacity < 1)
        mac_capacity = 1;
    if (mac_capacity > (1u << 24))
        return NULL;
    dev_peermap_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    size_t slots = 2;
    while (slots < mac_capacity * 2)
        slots <<= 1;
    self->macs = calloc (mac_capacity, sizeof *self->macs);
    self->slots = malloc (slots * sizeof *self->slots);
    if (!self->macs || !self->slots) {
        free (self->macs);
        free (self->slots);
        free (self);
        return NULL;
    }
    memset (self->slots, 0xff, slots * sizeof *self->slots);
    self->slot_mask = slots - 1;
    self->mac_capacity = mac_capacity;
    self->age_ms = age_ms;
    return self;
}

void
dev_peermap_destroy (dev_peermap_t **self_p)
{
    if (*self_p) {
        dev_peermap_t *self = *self_p;
        free (self->prefixes);
        free (self->macs);
        free (self->slots);
        free (self);
        *self_p = NULL;
    }
}

void
dev_peermap_set_local (dev_peermap_t *self, const dev_addr_t *address, const uint8_t mac [6])
{
    self->has_local = address != NULL;
    if (address)
        self->local = *address;
    self->has_local_mac = mac != NULL;
    if (mac)
        memcpy (self->local_mac, mac, 6);
}

int
dev_peermap_add_prefix (dev_peermap_t *self, const dev_addr_t *prefix, uint32_t peer)
{
    if (self->prefix_count == self->prefix_alloc) {
        size_t alloc = self->prefix_alloc ? self->prefix_alloc * 2 : 16;
        s_prefix_t *more = realloc (self->prefixes, alloc * sizeof *more);
        if (!more)
            return -1;
        self->prefixes = more;
        self->prefix_alloc = alloc;
    }
    //  Insert after every longer-or-equal prefix: the first match is the longest
    size_t at = 0;
    while (at < self->prefix_count && self->prefixes [at].net.prefix >= prefix->prefix)
        at++;
    memmove (self->prefixes + at + 1, self->prefixes + at, (self->prefix_count - at) * sizeof *self->prefixes);
    self->prefixes [at].net = *prefix;
    self->prefixes [at].peer = peer;
    self->prefix_count++;
    return 0;
}

static size_t
s_hash (const dev_peermap_t *self, const uint8_t mac [6])
{
    uint64_t k = 0;
    memcpy (&k, mac, 6);
    return (size_t) ((k * 0x9E3779B97F4A7C15ull) >> 32) & self->slot_mask;
}

static int32_t
s_find (const dev_peermap_t *self, const uint8_t mac [6])
{
    for (size_t i = s_hash (self, mac);; i = (i + 1) & self->slot_mask) {
        int32_t at = self->slots [i];
        if (at < 0)
            return -1;
        if (memcmp (self->macs [at].mac, mac, 6) == 0)
            return at;
    }
}

static void
s_slot_insert (dev_peermap_t *self, int32_t at)
{
    size_t i = s_hash (self, self->macs [at].mac);
    while (self->slots [i] >= 0)
        i = (i + 1) & self->slot_mask;
    self->slots [i] = at;
}

static void
s_reindex (dev_peermap_t *self)
{
    memset (self->slots, 0xff, (self->slot_mask + 1) * sizeof *self->slots);
    for (size_t i = 0; i < self->mac_count; i++)
        s_slot_insert (self, (int32_t) i);
}

static bool
s_expired (const dev_peermap_t *self, const s_mac_t *m, uint64_t now_ms)
{
    return !m->fixed && now_ms > m->seen && now_ms - m->seen > self->age_ms;
}

void
dev_peermap_expire (dev_peermap_t *self, uint64_t now_ms)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->mac_count; i++) {
        if (s_expired (self, &self->macs [i], now_ms))
            self->stats.aged++;
        else
            self->macs [kept++] = self->macs [i];
    }
    if (kept != self->mac_count) {
        self->mac_count = kept;
        s_reindex (self);
    }
}

static int
s_mac_insert (dev_peermap_t *self, const uint8_t mac [6], uint32_t peer, bool fixed, uint64_t now_ms)
{
    if (self->mac_count == self->mac_capacity)
        dev_peermap_expire (self, now_ms);
    if (self->mac_count == self->mac_capacity) {
        self->stats.table_full++;
        return -1;
    }
    s_mac_t *m = &self->macs [self->mac_count];
    memcpy (m->mac, mac, 6);
    m->fixed = fixed;
    m->peer = peer;
    m->seen = now_ms;
    s_slot_insert (self, (int32_t) self->mac_count++);
    return 0;
}

int
dev_peermap_add_mac (dev_peermap_t *self, const uint8_t mac [6], uint32_t peer)
{
    if (dev_mac_is_multicast (mac))
        return -1;
    int32_t at = s_find (self, mac);
    if (at >= 0) {
        self->macs [at].fixed = true;
        self->macs [at].peer = peer;
        return 0;
    }
    //  A static entry never ages, so "now" does not matter; 0 expires nothing new
    return s_mac_insert (self, mac, peer, true, 0);
}

int
dev_peermap_peer_mac (dev_peermap_t *self, uint32_t peer, uint8_t mac [6])
{
    for (size_t i = 0; i < self->mac_count; i++)
        if (self->macs [i].fixed && self->macs [i].peer == peer) {
            memcpy (mac, self->macs [i].mac, 6);
            return 0;
        }
    return -1;
}

void
dev_peermap_remove_peer (dev_peermap_t *self, uint32_t peer)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->prefix_count; i++)
        if (self->prefixes [i].peer != peer)
            self->prefixes [kept++] = self->prefixes [i];
    self->prefix_count = kept;
    kept = 0;
    for (size_t i = 0; i < self->mac_count; i++)
        if (self->macs [i].peer != peer)
            self->macs [kept++] = self->macs [i];
    if (kept != self->mac_count) {
        self->mac_count = kept;
        s_reindex (self);
    }
}

//  Validates an IP header of the given version against the bytes present.
//  Ethernet may pad short packets, so the IP length may be less than len.
static bool
s_ip_valid (const uint8_t *p, size_t len, int version)
{
    if (len < 1 || p [0] >> 4 != version)
        return false;
    if (version == 4) {
        if (len < 20)
            return false;
        size_t ihl = (size_t) (p [0] & 15) * 4;
        size_t total = dev_get16 (p + 2);
        return ihl >= 20 && total >= ihl && total <= len;
    }
    return len >= 40 && 40 + (size_t) dev_get16 (p + 4) <= len;
}

static dev_route_t
s_lookup_prefix (dev_peermap_t *self, int family, const uint8_t *dst, uint32_t *peer)
{
    for (size_t i = 0; i < self->prefix_count; i++)
        if (dev_addr_match (&self->prefixes [i].net, family, dst)) {
            *peer = self->prefixes [i].peer;
            return DEV_ROUTE_PEER;
        }
    return DEV_ROUTE_UNKNOWN;
}

static dev_route_t
s_route_ip (dev_peermap_t *self, const uint8_t *pkt, size_t len, uint32_t *peer)
{
    if (len >= 1 && pkt [0] >> 4 == 4 && s_ip_valid (pkt, len, 4)) {
        const uint8_t *dst = pkt + 16;
        if ((dst [0] & 0xf0) == 0xe0 || memcmp (dst, "\xff\xff\xff\xff", 4) == 0)
            return DEV_ROUTE_FLOOD;
        if (self->has_local && self->local.family == AF_INET && self->local.prefix <= 30
        &&  dev_addr_match (&self->local, AF_INET, dst)) {
            uint32_t ip;
            memcpy (&ip, dst, 4);
            uint32_t host = ~0u >> self->local.prefix;
            if ((ntohl (ip) & host) == host)
                return DEV_ROUTE_FLOOD;         //  subnet broadcast
        }
        return s_lookup_prefix (self, AF_INET, dst, peer);
    }
    if (len >= 1 && pkt [0] >> 4 == 6 && s_ip_valid (pkt, len, 6)) {
        const uint8_t *dst = pkt + 24;
        if (dst [0] == 0xff)
            return DEV_ROUTE_FLOOD;             //  ff00::/8 multicast
        return s_lookup_prefix (self, AF_INET6, dst, peer);
    }
    return DEV_ROUTE_MALFORMED;
}

static dev_route_t
s_count (dev_peermap_t *self, dev_route_t route)
{
    switch (route) {
        case DEV_ROUTE_PEER: self->stats.peer++; break;
        case DEV_ROUTE_FLOOD: self->stats.flood++; break;
        case DEV_ROUTE_UNKNOWN: self->stats.unknown++; break;
        case DEV_ROUTE_MALFORMED: self->stats.malformed++; break;
    }
    return route;
}

dev_route_t
dev_peermap_route_ip (dev_peermap_t *self, const uint8_t *pkt, size_t len, uint32_t *peer)
{
    uint32_t ignored;
    return s_count (self, s_route_ip (self, pkt, len, peer ? peer : &ignored));
}

//  Checks the Ethernet frame and what it carries, for both directions. Sets
//  *is_arp. Other ethertypes (LLDP, IPX, ...) pass on their MACs alone.
static bool
s_frame_valid (const uint8_t *frame, size_t len, bool *is_arp)
{
    *is_arp = false;
    if (len < 14 || dev_mac_is_multicast (frame + 6))
        return false;           //  a source address is never a group address
    size_t off = 12;
    uint16_t type = dev_get16 (frame + off);
    if (type == 0x8100) {
        if (len < 18)
            return false;
        off += 4;
        type = dev_get16 (frame + off);
    }
    const uint8_t *payload = frame + off + 2;
    size_t plen = len - off - 2;
    switch (type) {
        case 0x0806: {
            dev_arp_t arp;
            *is_arp = true;
            return dev_arp_parse (frame, len, &arp, NULL) == 0;
        }
        case 0x0800: return s_ip_valid (payload, plen, 4);
        case 0x86dd: return s_ip_valid (payload, plen, 6);
        default: return true;
    }
}

dev_route_t
dev_peermap_route_eth (dev_peermap_t *self, const uint8_t *frame, size_t len, uint64_t now_ms, uint32_t *peer)
{
    bool is_arp;
    if (!s_frame_valid (frame, len, &is_arp))
        return s_count (self, DEV_ROUTE_MALFORMED);
    if (dev_mac_is_multicast (frame))
        return s_count (self, DEV_ROUTE_FLOOD);
    int32_t at = s_find (self, frame);
    if (at >= 0 && !s_expired (self, &self->macs [at], now_ms)) {
        if (peer)
            *peer = self->macs [at].peer;
        return s_count (self, DEV_ROUTE_PEER);
    }
    return s_count (self, is_arp ? DEV_ROUTE_FLOOD : DEV_ROUTE_UNKNOWN);
}

int
dev_peermap_learn (dev_peermap_t *self, const uint8_t *frame, size_t len, uint32_t peer, uint64_t now_ms)
{
    bool is_arp;
    if (!s_frame_valid (frame, len, &is_arp)) {
        self->stats.malformed++;
        return -1;
    }
    const uint8_t *src = frame + 6;
    if (self->has_local_mac && memcmp (src, self->local_mac, 6) == 0) {
        self->stats.spoofed++;
        return -1;
    }
    int32_t at = s_find (self, src);
    if (at >= 0) {
        s_mac_t *m = &self->macs [at];
        if (m->fixed && m->peer != peer) {
            self->stats.spoofed++;
            return -1;
        }
        if (m->peer != peer) {
            m->peer = peer;
            self->stats.moved++;
        }
        m->seen = now_ms;
        return 0;
    }
    if (s_mac_insert (self, src, peer, false, now_ms) == 0)
        self->stats.learned++;
    return 0;                   //  deliverable even if the table was full
}

size_t
dev_peermap_mac_count (dev_peermap_t *self)
{
    return self->mac_count;
}

const dev_peermap_stats_t *
dev_peermap_stats (dev_peermap_t *self)
{
    return &self->stats;
}

//  --------------------------------------------------------------------------
//  Self test

static size_t
s_ip4 (uint8_t *p, const char *dst)
{
    memset (p, 0, 28);
    p [0] = 0x45;
    p [3] = 28;
    p [8] = 64;
    p [9] = 17;
    inet_pton (AF_INET, "10.100.0.1", p + 12);
    assert (inet_pton (AF_INET, dst, p + 16) == 1);
    return 28;
}

static size_t
s_ip6 (uint8_t *p, const char *dst)
{
    memset (p, 0, 48);
    p [0] = 0x60;
    p [5] = 8;
    p [6] = 17;
    p [7] = 64;
    inet_pton (AF_INET6, "fd00::1", p + 8);
    assert (inet_pton (AF_INET6, dst, p + 24) == 1);
    return 48;
}

//  An Ethernet frame dst <- src carrying an IPv4 packet (or ARP if arp)
static size_t
s_eth (uint8_t *f, const uint8_t dst [6], const uint8_t src [6], bool arp)
{
    if (arp) {
        dev_arp_t a = { .op = DEV_ARP_REPLY, .spa = { 10, 100, 0, 2 }, .tpa = { 10, 100, 0, 1 } };
        memcpy (a.sha, src, 6);
        memcpy (a.tha, dst, 6);
        return dev_arp_build (f, 64, dst, &a);
    }
    memcpy (f, dst, 6);
    memcpy (f + 6, src, 6);
    f [12] = 0x08;
    f [13] = 0x00;
    return 14 + s_ip4 (f + 14, "10.100.0.2");
}

static void
s_addr (dev_addr_t *a, const char *text)
{
    char err [120];
    int rc = dev_addr_parse (text, a, err, sizeof err);
    assert (rc == 0);
}

void
dev_peermap_test (bool verbose)
{
    dev_peermap_t *map = dev_peermap_new (4, 1000);
    assert (map);
    dev_addr_t a;
    s_addr (&a, "10.100.0.1/16");
    const uint8_t me [6] = { 2, 0, 0, 0, 0, 1 };
    dev_peermap_set_local (map, &a, me);
    s_addr (&a, "10.100.0.2/32");
    assert (dev_peermap_add_prefix (map, &a, 2) == 0);
    s_addr (&a, "10.100.7.0/24");       //  peer 7 routes a subnet behind it
    assert (dev_peermap_add_prefix (map, &a, 7) == 0);
    s_addr (&a, "10.100.7.9/32");       //  ... except one host, which is peer 9
    assert (dev_peermap_add_prefix (map, &a, 9) == 0);
    s_addr (&a, "fd00::2/128");
    assert (dev_peermap_add_prefix (map, &a, 2) == 0);
    for (int i = 0; i < 40; i++) {      //  grows past the first allocation
        char text [40];
        snprintf (text, sizeof text, "10.200.%d.1/32", i);
        s_addr (&a, text);
        assert (dev_peermap_add_prefix (map, &a, (uint32_t) (100 + i)) == 0);
    }

    //  TUN: longest prefix match, flood, unknown, malformed
    uint8_t p [64];
    uint32_t peer = 0;
    struct { const char *dst; dev_route_t route; uint32_t peer; } cases [] = {
        { "10.100.0.2", DEV_ROUTE_PEER, 2 },
        { "10.100.7.1", DEV_ROUTE_PEER, 7 },
        { "10.100.7.9", DEV_ROUTE_PEER, 9 },
        { "10.200.39.1", DEV_ROUTE_PEER, 139 },
        { "10.100.0.3", DEV_ROUTE_UNKNOWN, 0 },
        { "192.0.2.1", DEV_ROUTE_UNKNOWN, 0 },
        { "255.255.255.255", DEV_ROUTE_FLOOD, 0 },
        { "10.100.255.255", DEV_ROUTE_FLOOD, 0 },      //  subnet broadcast of /16
        { "224.0.0.251", DEV_ROUTE_FLOOD, 0 },
        { "239.1.2.3", DEV_ROUTE_FLOOD, 0 },
        { "fd00::2", DEV_ROUTE_PEER, 2 },
        { "fd00::3", DEV_ROUTE_UNKNOWN, 0 },
        { "ff02::1", DEV_ROUTE_FLOOD, 0 },
        { NULL, 0, 0 }
    };
    for (int i = 0; cases [i].dst; i++) {
        size_t len = strchr (cases [i].dst, ':') ? s_ip6 (p, cases [i].dst) : s_ip4 (p, cases [i].dst);
        peer = 0;
        dev_route_t r = dev_peermap_route_ip (map, p, len, &peer);
        if (verbose)
            printf ("  %s -> route %d peer %u\n", cases [i].dst, r, peer);
        assert (r == cases [i].route);
        if (r == DEV_ROUTE_PEER)
            assert (peer == cases [i].peer);
    }
    const dev_peermap_stats_t *st = dev_peermap_stats (map);
    assert (st->peer == 5 && st->unknown == 3 && st->flood == 5 && st->malformed == 0);

    //  Malformed IP: every truncation of valid packets, and lying headers
    size_t len = s_ip4 (p, "10.100.0.2");
    for (size_t cut = 0; cut < len; cut++)
        assert (dev_peermap_route_ip (map, p, cut, &peer) == DEV_ROUTE_MALFORMED);
    p [0] = 0x44;                       //  IHL 16
    assert (dev_peermap_route_ip (map, p, len, &peer) == DEV_ROUTE_MALFORMED);
    p [0] = 0x45; p [3] = 29;           //  total length beyond the bytes
    assert (dev_peermap_route_ip (map, p, len, &peer) == DEV_ROUTE_MALFORMED);
    p [0] = 0x55;                       //  version 5
    assert (dev_peermap_route_ip (map, p, len, &peer) == DEV_ROUTE_MALFORMED);
    len = s_ip6 (p, "fd00::2");
    for (size_t cut = 0; cut < len; cut++)
        assert (dev_peermap_route_ip (map, p, cut, &peer) == DEV_ROUTE_MALFORMED);
    p [5] = 9;                          //  payload length beyond the bytes
    assert (dev_peermap_route_ip (map, p, len, &peer) == DEV_ROUTE_MALFORMED);
    assert (st->malformed == 28 + 3 + 48 + 1);

    //  TAP: static MAC, learning, aging, flood, unknown
    const uint8_t bcast [6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    const uint8_t mcast [6] = { 0x33, 0x33, 0, 0, 0, 1 };
    const uint8_t mac2 [6] = { 2, 0, 0, 0, 0, 2 }, mac3 [6] = { 2, 0, 0, 0, 0, 3 };
    const uint8_t vm [6] = { 0x52, 0x54, 0, 0, 0, 9 };     //  a VM bridged behind peer 3
    uint8_t f [64];
    uint64_t t = 5000;
    assert (dev_peermap_add_mac (map, mac2, 2) == 0);
    assert (dev_peermap_add_mac (map, mcast, 2) == -1);
    uint8_t got [6];
    assert (dev_peermap_peer_mac (map, 2, got) == 0 && memcmp (got, mac2, 6) == 0);
    assert (dev_peermap_peer_mac (map, 3, got) == -1);
    len = s_eth (f, mac2, me, false);
    assert (dev_peermap_route_eth (map, f, len, t, &peer) == DEV_ROUTE_PEER && peer == 2);
    len = s_eth (f, bcast, me, true);
    assert (dev_peermap_route_eth (map, f, len, t, &peer) == DEV_ROUTE_FLOOD);
    len = s_eth (f, mcast, me, false);
    assert (dev_peermap_route_eth (map, f, len, t, &peer) == DEV_ROUTE_FLOOD);
    uint64_t unknown = st->unknown;
    len = s_eth (f, mac3, me, false);
    assert (dev_peermap_route_eth (map, f, len, t, &peer) == DEV_ROUTE_UNKNOWN);
    assert (st->unknown == unknown + 1);
    len = s_eth (f, mac3, me, true);    //  unicast ARP to an unknown MAC floods
    assert (dev_peermap_route_eth (map, f, len, t, &peer) == DEV_ROUTE_FLOOD);

    //  Learn mac3 and the VM from peer 3's frames, then route to them
    len = s_eth (f, me, mac3, true);
    assert (dev_peermap_learn (map, f, len, 3, t) == 0);
    len = s_eth (f, bcast, vm, false);
    assert (dev_peermap_learn (map, f, len, 3, t) == 0);
    assert (st->learned == 2 && dev_peermap_mac_count (map) == 3);
    len = s_eth (f, mac3, me, false);
    assert (dev_peermap_route_eth (map, f, len, t + 1000, &peer) == DEV_ROUTE_PEER && peer == 3);
    len = s_eth (f, vm, me, false);
    assert (dev_peermap_route_eth (map, f, len, t + 1000, &peer) == DEV_ROUTE_PEER && peer == 3);
    //  The VM moves to peer 4 (live migration): learned again, counted as moved
    len = s_eth (f, bcast, vm, false);
    assert (dev_peermap_learn (map, f, len, 4, t + 500) == 0);
    assert (st->moved == 1);
    len = s_eth (f, vm, me, false);
    assert (dev_peermap_route_eth (map, f, len, t + 1000, &peer) == DEV_ROUTE_PEER && peer == 4);
    //  Aging: mac3 was last seen at t, the VM at t + 500; limit is 1000 ms
    len = s_eth (f, mac3, me, false);
    assert (dev_peermap_route_eth (map, f, len, t + 1001, &peer) == DEV_ROUTE_UNKNOWN);
    len = s_eth (f, vm, me, false);
    assert (dev_peermap_route_eth (map, f, len, t + 1001, &peer) == DEV_ROUTE_PEER);
    //  The static entry never ages
    len = s_eth (f, mac2, me, false);
    assert (dev_peermap_route_eth (map, f, len, t + 1000000, &peer) == DEV_ROUTE_PEER && peer == 2);
    dev_peermap_expire (map, t + 1001);
    assert (st->aged == 1 && dev_peermap_mac_count (map) == 2);
    //  Anti-spoofing: peer 3 may not claim peer 2's MAC nor ours
    uint64_t spoofed = st->spoofed;
    len = s_eth (f, bcast, mac2, false);
    assert (dev_peermap_learn (map, f, len, 3, t) == -1);
    len = s_eth (f, bcast, me, false);
    assert (dev_peermap_learn (map, f, len, 3, t) == -1);
    assert (st->spoofed == spoofed + 2);
    len = s_eth (f, bcast, mac2, false);
    assert (dev_peermap_learn (map, f, len, 2, t) == 0);   //  its owner may

    //  Full table: expired entries make room; live ones are never evicted
    for (uint8_t i = 10; i < 12; i++) {
        uint8_t m [6] = { 2, 0, 0, 0, 1, i };
        len = s_eth (f, bcast, m, false);
        assert (dev_peermap_learn (map, f, len, 5, t + 1200) == 0);
    }
    assert (dev_peermap_mac_count (map) == 4);
    uint8_t m12 [6] = { 2, 0, 0, 0, 1, 12 };
    len = s_eth (f, bcast, m12, false);
    assert (dev_peermap_learn (map, f, len, 5, t + 1200) == 0);    //  delivered...
    assert (st->table_full == 1);                                   //  ...not learned
    assert (dev_peermap_learn (map, f, len, 5, t + 1600) == 0);    //  VM aged: room
    assert (st->table_full == 1 && dev_peermap_mac_count (map) == 4);
    len = s_eth (f, m12, me, false);
    assert (dev_peermap_route_eth (map, f, len, t + 1600, &peer) == DEV_ROUTE_PEER && peer == 5);

    //  Peer down: its prefixes and MACs go
    dev_peermap_remove_peer (map, 5);
    assert (dev_peermap_route_eth (map, f, len, t + 1600, &peer) == DEV_ROUTE_UNKNOWN);
    dev_peermap_remove_peer (map, 2);
    len = s_ip4 (p, "10.100.0.2");
    assert (dev_peermap_route_ip (map, p, len, &peer) == DEV_ROUTE_UNKNOWN);
    len = s_eth (f, mac2, me, false);
    assert (dev_peermap_route_eth (map, f, len, t, &peer) == DEV_ROUTE_UNKNOWN);
    assert (dev_peermap_mac_count (map) == 0);

    //  Malformed frames: truncations, group source, broken ARP, broken IP inside
    uint64_t malformed = st->malformed;
    len = s_eth (f, bcast, mac3, true);
    for (size_t cut = 0; cut < len; cut++)
        assert (dev_peermap_route_eth (map, f, cut, t, &peer) == DEV_ROUTE_MALFORMED);
    assert (dev_peermap_learn (map, f, 20, 3, t) == -1);
    len = s_eth (f, mac3, mcast, false);
    assert (dev_peermap_route_eth (map, f, len, t, &peer) == DEV_ROUTE_MALFORMED);
    len = s_eth (f, mac3, me, false);
    f [14] = 0x46;                      //  IHL 24 <= total length 28: valid
    assert (dev_peermap_route_eth (map, f, len, t, &peer) == DEV_ROUTE_UNKNOWN);
    f [14] = 0x48;                      //  IHL 32 > total length 28
    assert (dev_peermap_route_eth (map, f, len, t, &peer) == DEV_ROUTE_MALFORMED);
    len = s_eth (f, mac3, me, false);
    f [12] = 0x86; f [13] = 0xdd;       //  claims IPv6, carries IPv4
    assert (dev_peermap_route_eth (map, f, len, t, &peer) == DEV_ROUTE_MALFORMED);
    assert (st->malformed == malformed + 42 + 1 + 3);
    //  Padded frame (60 bytes) and unknown ethertypes pass
    len = s_eth (f, bcast, me, false);
    memset (f + len, 0, 60 - len);
    assert (dev_peermap_route_eth (map, f, 60, t, &peer) == DEV_ROUTE_FLOOD);
    f [12] = 0x88; f [13] = 0xcc;       //  LLDP
    assert (dev_peermap_route_eth (map, f, 60, t, &peer) == DEV_ROUTE_FLOOD);
    if (verbose)
        printf ("  stats: peer %lu flood %lu unknown %lu malformed %lu learned %lu moved %lu aged %lu "
                "full %lu spoofed %lu\n", (unsigned long) st->peer, (unsigned long) st->flood,
                (unsigned long) st->unknown, (unsigned long) st->malformed, (unsigned long) st->learned,
                (unsigned long) st->moved, (unsigned long) st->aged, (unsigned long) st->table_full,
                (unsigned long) st->spoofed);
    dev_peermap_destroy (&map);
    assert (map == NULL);
    dev_peermap_destroy (&map);

    //  A big table: many learned MACs still resolve (hash with probing)
    map = dev_peermap_new (1000, 60000);
    for (int i = 0; i < 1000; i++) {
        uint8_t m [6] = { 2, 0, 0, 0, (uint8_t) (i >> 8), (uint8_t) i };
        len = s_eth (f, bcast, m, false);
        assert (dev_peermap_learn (map, f, len, (uint32_t) i, 0) == 0);
    }
    assert (dev_peermap_mac_count (map) == 1000);
    for (int i = 0; i < 1000; i++) {
        uint8_t m [6] = { 2, 0, 0, 0, (uint8_t) (i >> 8), (uint8_t) i };
        len = s_eth (f, m, me, false);
        assert (dev_peermap_route_eth (map, f, len, 1, &peer) == DEV_ROUTE_PEER && peer == (uint32_t) i);
    }
    dev_peermap_destroy (&map);
}
