/*  crypto_node: peers, the session index map and the receive/send decisions. */
#include "crypto_node.h"
#include "bus_log.h"
#include "crypto_allowed.h"

#include <assert.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PEER_INDICES (CRYPTO_SESSION_SLOTS + 1)    //  keypairs + 1 initiation in flight

typedef struct {
    uint8_t key [32];
    uint8_t last_stamp [12];            //  greatest handshake timestamp accepted
    crypto_allowed_t *allowed;
    crypto_allowed_t *anycast;          //  anycast addresses it may answer from (crypto_anycast), NULL: none
    crypto_session_t *session;
    crypto_noise_t *pending;            //  our initiation in flight
    uint32_t pending_index;
    uint32_t indices [MAX_PEER_INDICES];    //  registered in the index map
    uint64_t generation;
} s_peer_t;

//  Open addressing map: session index -> peer id. Slots hold index 0 = empty,
//  peer -2 = deleted (index 0 is never handed out).
typedef struct {
    uint32_t index;
    int peer;
} s_slot_t;

struct _crypto_node_t {
    const crypto_identity_t *identity;
    uint8_t *psk;                       //  sodium_malloc
    crypto_session_config_t config;
    s_peer_t **peers;
    size_t peer_count;
    size_t peer_cap;
    s_slot_t *slots;
    size_t slot_cap;                    //  power of two
    size_t slot_used;                   //  live + deleted
    int lookup_peer;                    //  set by s_lookup during a handshake
    int expect_peer;                    //  a routed message's source (crypto_node_receive_routed), else -1
    bool wrong_source;                  //  s_lookup found another peer than expect_peer
    bool layer2;                        //  plaintext is Ethernet frames (TAP)
    crypto_node_stats_t stats;
    char error [200];
};

//  --------------------------------------------------------------------------
//  Index map

static size_t
s_hash (uint32_t index, size_t cap)
{
    return (size_t) ((index * 2654435761U) & (cap - 1));
}

static void s_map_put (crypto_node_t *self, uint32_t index, int peer);

static void
s_map_rebuild (crypto_node_t *self, size_t cap)
{
    s_slot_t *old = self->slots;
    size_t old_cap = self->slot_cap;
    self->slots = calloc (cap, sizeof (s_slot_t));
    assert (self->slots);
    self->slot_cap = cap;
    self->slot_used = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old [i].index && old [i].peer >= 0)
            s_map_put (self, old [i].index, old [i].peer);
    free (old);
}

static s_slot_t *
s_map_find (const crypto_node_t *self, uint32_t index)
{
    size_t i = s_hash (index, self->slot_cap);
    for (size_t n = 0; n < self->slot_cap; n++, i = (i + 1) & (self->slot_cap - 1)) {
        s_slot_t *slot = &self->slots [i];
        if (slot->index == 0 && slot->peer != -2)
            return NULL;
        if (slot->index == index && slot->peer >= 0)
            return slot;
    }
    return NULL;
}

static void
s_map_put (crypto_node_t *self, uint32_t index, int peer)
{
    if ((self->slot_used + 1) * 2 > self->slot_cap) {
        //  Grow if live entries fill a quarter, else only sweep the tombstones
        size_t live = 0;
        for (size_t i = 0; i < self->slot_cap; i++)
            live += self->slots [i].index != 0;
        s_map_rebuild (self, (live + 1) * 4 > self->slot_cap ? self->slot_cap * 2 : self->slot_cap);
    }
    size_t i = s_hash (index, self->slot_cap);
    while (self->slots [i].index != 0 || self->slots [i].peer == -2)
        i = (i + 1) & (self->slot_cap - 1);
    self->slots [i].index = index;
    self->slots [i].peer = peer;
    self->slot_used++;
}

static void
s_map_remove (crypto_node_t *self, uint32_t index)
{
    s_slot_t *slot = s_map_find (self, index);
    if (slot) {
        slot->index = 0;
        slot->peer = -2;                //  tombstone, counted in slot_used
    }
}

//  A fresh random index, unused by any session of ours
static uint32_t
s_new_index (crypto_node_t *self, int peer)
{
    uint32_t index;
    do
        index = randombytes_random ();
    while (index == 0 || s_map_find (self, index));
    s_map_put (self, index, peer);
    return index;
}

//  After a session changed its keypairs, drop the map entries of indices the
//  peer no longer holds, so stale indices cannot route packets to it
static void
s_reconcile (crypto_node_t *self, int id)
{
    s_peer_t *peer = self->peers [id];
    uint64_t gen = crypto_session_generation (peer->session);
    if (gen == peer->generation)
        return;
    peer->generation = gen;
    uint32_t keep [MAX_PEER_INDICES];
    crypto_session_indices (peer->session, keep);
    keep [CRYPTO_SESSION_SLOTS] = peer->pending ? peer->pending_index : 0;
    //  Remove what is registered but no longer kept
    for (int i = 0; i < MAX_PEER_INDICES; i++) {
        uint32_t index = peer->indices [i];
        bool kept = false;
        for (int k = 0; k < MAX_PEER_INDICES; k++)
            kept |= index && keep [k] == index;
        if (index && !kept)
            s_map_remove (self, index);
    }
    memcpy (peer->indices, keep, sizeof keep);
}

//  --------------------------------------------------------------------------

crypto_node_t *
crypto_node_new (const crypto_identity_t *identity, const uint8_t *psk, const crypto_session_config_t *config)
{
    if (sodium_init () < 0)
        return NULL;
    crypto_node_t *self = calloc (1, sizeof *self);
    assert (self);
    self->identity = identity;
    self->expect_peer = -1;
    self->psk = sodium_malloc (32);
    assert (self->psk);
    if (psk)
        memcpy (self->psk, psk, 32);
    else
        memset (self->psk, 0, 32);
    if (config)
        self->config = *config;
    else
        crypto_session_config_defaults (&self->config);
    self->slot_cap = 64;
    self->slots = calloc (self->slot_cap, sizeof (s_slot_t));
    assert (self->slots);
    return self;
}

void
crypto_node_set_layer2 (crypto_node_t *self, bool layer2)
{
    self->layer2 = layer2;
}

void
crypto_node_destroy (crypto_node_t **self_p)
{
    assert (self_p);
    crypto_node_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->peer_count; i++) {
        s_peer_t *peer = self->peers [i];
        crypto_allowed_destroy (&peer->allowed);
        if (peer->anycast)
            crypto_allowed_destroy (&peer->anycast);
        crypto_session_destroy (&peer->session);
        crypto_noise_destroy (&peer->pending);
        free (peer);
    }
    free (self->peers);
    free (self->slots);
    sodium_free (self->psk);
    free (self);
    *self_p = NULL;
}

int
crypto_node_peer_find (const crypto_node_t *self, const uint8_t key [32])
{
    for (size_t i = 0; i < self->peer_count; i++)
        if (sodium_memcmp (self->peers [i]->key, key, 32) == 0)
            return (int) i;
    return -1;
}

size_t
crypto_node_peer_count (const crypto_node_t *self)
{
    return self->peer_count;
}

int
crypto_node_peer_add (crypto_node_t *self, const uint8_t key [32], char *err, size_t errsize)
{
    char b64 [CRYPTO_KEY_BASE64_SIZE];
    crypto_key_to_base64 (key, b64);
    if (crypto_node_peer_find (self, key) >= 0)
        return bus_errf (err, errsize, "peer %s is configured twice", b64);
    if (memcmp (key, crypto_identity_public (self->identity), 32) == 0)
        return bus_errf (err, errsize, "peer %s is this node's own key", b64);
    if (self->peer_count == self->peer_cap) {
        size_t cap = self->peer_cap ? self->peer_cap * 2 : 8;
        s_peer_t **grown = realloc (self->peers, cap * sizeof *grown);
        assert (grown);
        self->peers = grown;
        self->peer_cap = cap;
    }
    s_peer_t *peer = calloc (1, sizeof *peer);
    assert (peer);
    memcpy (peer->key, key, 32);
    peer->allowed = crypto_allowed_new ();
    peer->session = crypto_session_new (&self->config);
    peer->generation = crypto_session_generation (peer->session);
    self->peers [self->peer_count] = peer;
    return (int) self->peer_count++;
}

static s_peer_t *
s_peer (const crypto_node_t *self, int id)
{
    return id >= 0 && (size_t) id < self->peer_count ? self->peers [id] : NULL;
}

static bool s_source_allowed (const crypto_node_t *self, const s_peer_t *peer, const uint8_t *inner, size_t plain);

bool
crypto_node_peer_allows (const crypto_node_t *self, int id, const uint8_t *packet, size_t len)
{
    s_peer_t *peer = s_peer (self, id);
    return peer && s_source_allowed (self, peer, packet, len);
}

int
crypto_node_peer_allow (crypto_node_t *self, int id, const char *cidr, char *err, size_t errsize)
{
    s_peer_t *peer = s_peer (self, id);
    if (!peer)
        return bus_errf (err, errsize, "no peer %d", id);
    return crypto_allowed_add (peer->allowed, cidr, err, errsize);
}

void
crypto_node_peer_allow_clear (crypto_node_t *self, int id)
{
    s_peer_t *peer = s_peer (self, id);
    if (peer)
        crypto_allowed_clear (peer->allowed);
}

void
crypto_node_peer_anycast_clear (crypto_node_t *self, int id)
{
    s_peer_t *peer = s_peer (self, id);
    if (peer && peer->anycast)
        crypto_allowed_clear (peer->anycast);
}

int
crypto_node_peer_anycast_add (crypto_node_t *self, int id, const char *address, char *err, size_t errsize)
{
    s_peer_t *peer = s_peer (self, id);
    if (!peer)
        return bus_errf (err, errsize, "no peer %d", id);
    if (!peer->anycast)
        peer->anycast = crypto_allowed_new ();
    return crypto_allowed_add (peer->anycast, address, err, errsize);
}

bool
crypto_node_peer_anycast_has (const crypto_node_t *self, int id, const uint8_t *address, int family_bytes)
{
    s_peer_t *peer = s_peer (self, id);
    return peer && peer->anycast && crypto_allowed_address (peer->anycast, address, family_bytes);
}

//  On a TAP network (a LAN), a frame may also come from an address no peer
//  owns: a lease from a DHCP server on the virtual LAN, a host bridged behind
//  the peer. What the check must keep is that no peer speaks as another (or
//  as us: the kernel drops a local source as martian), so the address must be
//  in no other peer's prefixes or anycast set. Linear in peers, and only for
//  frames the peer's own prefixes refused.
static bool
s_unclaimed_source (const crypto_node_t *self, const s_peer_t *sender, const uint8_t *frame, size_t size)
{
    uint8_t address [16];
    int family_bytes;
    if (!crypto_allowed_frame_source (frame, size, address, &family_bytes))
        return false;
    for (size_t i = 0; i < self->peer_count; i++) {
        const s_peer_t *other = self->peers [i];
        if (other == sender)
            continue;
        if (crypto_allowed_address (other->allowed, address, family_bytes)
        ||  (other->anycast && crypto_allowed_address (other->anycast, address, family_bytes)))
            return false;
    }
    return true;
}

//  The inner source check: the peer's own prefixes, then (only when that
//  fails, so the common path costs nothing more) its anycast addresses
static bool
s_source_allowed (const crypto_node_t *self, const s_peer_t *peer, const uint8_t *inner, size_t plain)
{
    if (self->layer2 ? crypto_allowed_frame (peer->allowed, inner, plain)
                     : crypto_allowed_packet (peer->allowed, inner, plain))
        return true;
    if (peer->anycast && crypto_allowed_size (peer->anycast)
    &&  (self->layer2 ? crypto_allowed_frame (peer->anycast, inner, plain)
                      : crypto_allowed_packet (peer->anycast, inner, plain)))
        return true;
    return self->layer2 && s_unclaimed_source (self, peer, inner, plain);
}

bool
crypto_node_handshake_due (crypto_node_t *self, int id, uint64_t now)
{
    s_peer_t *peer = s_peer (self, id);
    return peer && crypto_session_handshake_due (peer->session, now);
}

bool
crypto_node_keepalive_due (crypto_node_t *self, int id)
{
    s_peer_t *peer = s_peer (self, id);
    return peer && crypto_session_keepalive_due (peer->session);
}

bool
crypto_node_can_send (const crypto_node_t *self, int id, uint64_t now)
{
    s_peer_t *peer = s_peer (self, id);
    return peer && crypto_session_can_send (peer->session, now);
}

void
crypto_node_want_handshake (crypto_node_t *self, int id, uint64_t now)
{
    s_peer_t *peer = s_peer (self, id);
    if (peer)
        crypto_session_want_handshake (peer->session, now);
}

bool
crypto_node_handshake_wanted (const crypto_node_t *self, int id)
{
    s_peer_t *peer = s_peer (self, id);
    return peer && crypto_session_handshake_wanted (peer->session);
}

bool
crypto_node_expire (crypto_node_t *self, int id, uint64_t now)
{
    s_peer_t *peer = s_peer (self, id);
    if (!peer || !crypto_session_expire (peer->session, now))
        return false;
    s_reconcile (self, id);
    return true;
}

int
crypto_node_initiation (crypto_node_t *self, int id, uint64_t now, uint64_t wall_ns,
                        uint8_t out [WIRE_INITIATION_SIZE])
{
    s_peer_t *peer = s_peer (self, id);
    if (!peer)
        return -1;
    //  A new attempt replaces the one in flight; its late response is refused
    crypto_noise_destroy (&peer->pending);
    peer->pending = crypto_noise_new_initiator (self->identity, peer->key, self->psk);
    peer->pending_index = s_new_index (self, id);
    peer->generation--;                 //  force a reconcile to register it
    s_reconcile (self, id);
    if (crypto_noise_write_initiation (peer->pending, peer->pending_index, wall_ns, out) != 0) {
        crypto_noise_destroy (&peer->pending);
        return -1;
    }
    crypto_session_handshake_sent (peer->session, now);
    self->stats.handshakes_initiated++;
    return 0;
}

int
crypto_node_encrypt (crypto_node_t *self, int id, uint8_t *buf, size_t len, size_t cap,
                     uint64_t now, size_t *wire_len)
{
    s_peer_t *peer = s_peer (self, id);
    if (!peer)
        return CRYPTO_SESSION_EINVAL;
    int rc = crypto_session_encrypt (peer->session, buf, len, cap, now, wire_len);
    if (rc == CRYPTO_SESSION_OK) {
        self->stats.tx_packets++;
        self->stats.tx_bytes += len;
    }
    else
    if (rc == CRYPTO_SESSION_NO_KEY)
        self->stats.drops [CRYPTO_DROP_NO_KEY]++;
    return rc;
}

static int
s_drop (crypto_node_t *self, crypto_rx_t *rx, crypto_drop_t drop)
{
    self->stats.drops [drop]++;
    rx->drop = drop;
    return CRYPTO_NODE_DROP;
}

static uint8_t *
s_lookup (void *arg, const uint8_t static_key [32])
{
    crypto_node_t *self = (crypto_node_t *) arg;
    self->lookup_peer = crypto_node_peer_find (self, static_key);
    if (self->expect_peer >= 0 && self->lookup_peer >= 0 && self->lookup_peer != self->expect_peer) {
        self->wrong_source = true;      //  refused before any DH work on our side is kept
        self->lookup_peer = -1;
    }
    return self->lookup_peer >= 0 ? self->peers [self->lookup_peer]->last_stamp : NULL;
}

static int
s_receive_initiation (crypto_node_t *self, const uint8_t *buf, size_t len, uint64_t now,
                      uint8_t *reply, crypto_rx_t *rx)
{
    crypto_noise_t *noise = crypto_noise_new_responder (self->identity, self->psk);
    self->lookup_peer = -1;
    self->wrong_source = false;
    int rc = crypto_noise_read_initiation (noise, buf, len, s_lookup, self, NULL,
                                           self->error, sizeof self->error);
    if (rc != CRYPTO_NOISE_OK && self->wrong_source) {
        crypto_noise_destroy (&noise);
        snprintf (self->error, sizeof self->error, "routed initiation from another peer than its header's source");
        return s_drop (self, rx, CRYPTO_DROP_ROUTED_SOURCE);
    }
    if (rc != CRYPTO_NOISE_OK) {
        crypto_noise_destroy (&noise);
        return s_drop (self, rx, rc == CRYPTO_NOISE_EUNKNOWN ? CRYPTO_DROP_HS_UNKNOWN_KEY
                               : rc == CRYPTO_NOISE_EREPLAY ? CRYPTO_DROP_HS_REPLAY
                               : rc == CRYPTO_NOISE_EMALFORMED ? CRYPTO_DROP_MALFORMED
                               : CRYPTO_DROP_HS_INVALID);
    }
    int id = self->lookup_peer;
    s_peer_t *peer = self->peers [id];
    rx->peer = id;
    crypto_keys_t keys;
    uint32_t index = s_new_index (self, id);
    rc = crypto_noise_write_response (noise, index, reply, &keys);
    crypto_noise_destroy (&noise);
    if (rc != CRYPTO_NOISE_OK) {
        s_map_remove (self, index);
        snprintf (self->error, sizeof self->error, "handshake response failed (low-order key)");
        return s_drop (self, rx, CRYPTO_DROP_HS_INVALID);
    }
    crypto_session_install (peer->session, &keys, now);
    s_reconcile (self, id);
    self->stats.handshakes_responded++;
    rx->reply_len = WIRE_RESPONSE_SIZE;
    return CRYPTO_NODE_REPLY;
}

static int
s_receive_response (crypto_node_t *self, const uint8_t *buf, size_t len, uint64_t now, crypto_rx_t *rx)
{
    s_slot_t *slot = s_map_find (self, crypto_wire_get32 (buf + WIRE_RESPONSE_RECEIVER_INDEX));
    s_peer_t *peer = slot ? self->peers [slot->peer] : NULL;
    if (!peer || !peer->pending || peer->pending_index != slot->index) {
        snprintf (self->error, sizeof self->error, "handshake response for no initiation of ours");
        return s_drop (self, rx, CRYPTO_DROP_HS_UNEXPECTED);
    }
    if (self->expect_peer >= 0 && slot->peer != self->expect_peer) {
        snprintf (self->error, sizeof self->error, "routed response from another peer than its header's source");
        return s_drop (self, rx, CRYPTO_DROP_ROUTED_SOURCE);
    }
    rx->peer = slot->peer;
    crypto_keys_t keys;
    int rc = crypto_noise_read_response (peer->pending, buf, len, &keys, self->error, sizeof self->error);
    if (rc != CRYPTO_NOISE_OK)
        return s_drop (self, rx, rc == CRYPTO_NOISE_EMALFORMED ? CRYPTO_DROP_MALFORMED : CRYPTO_DROP_HS_INVALID);
    crypto_noise_destroy (&peer->pending);
    if (crypto_session_install (peer->session, &keys, now))
        self->stats.handshakes_crossed++;
    s_reconcile (self, rx->peer);
    self->stats.handshakes_completed++;
    return CRYPTO_NODE_ESTABLISHED;
}

static int
s_receive_data (crypto_node_t *self, uint8_t *buf, size_t len, uint64_t now, crypto_rx_t *rx)
{
    s_slot_t *slot = s_map_find (self, crypto_wire_get32 (buf + WIRE_DATA_RECEIVER_INDEX));
    if (!slot)
        return s_drop (self, rx, CRYPTO_DROP_UNKNOWN_INDEX);
    if (self->expect_peer >= 0 && slot->peer != self->expect_peer)
        return s_drop (self, rx, CRYPTO_DROP_ROUTED_SOURCE);
    int id = slot->peer;
    s_peer_t *peer = self->peers [id];
    rx->peer = id;
    size_t plain = 0;
    int rc = crypto_session_decrypt (peer->session, buf, len, now, &plain);
    s_reconcile (self, id);
    switch (rc) {
        case CRYPTO_SESSION_OK: break;
        case CRYPTO_SESSION_EINDEX: return s_drop (self, rx, CRYPTO_DROP_UNKNOWN_INDEX);
        case CRYPTO_SESSION_EEXPIRED: return s_drop (self, rx, CRYPTO_DROP_EXPIRED);
        case CRYPTO_SESSION_EREPLAY: return s_drop (self, rx, CRYPTO_DROP_REPLAY);
        case CRYPTO_SESSION_EAUTH: return s_drop (self, rx, CRYPTO_DROP_TAMPERED);
        default: return s_drop (self, rx, CRYPTO_DROP_MALFORMED);
    }
    if (buf [0] == WIRE_ANNOUNCE) {
        rx->plain_len = plain;          //  for the router, which checks it (route_msg_decode)
        return CRYPTO_NODE_ANNOUNCE;
    }
    if (buf [0] == WIRE_FLOOD) {
        rx->plain_len = plain;          //  the service checks the packet against its origin's addresses
        return CRYPTO_NODE_FLOOD;
    }
    if (plain == 0) {
        self->stats.keepalives_rx++;
        return CRYPTO_NODE_KEEPALIVE;
    }
    const uint8_t *inner = buf + WIRE_DATA_HEADER;
    if (!s_source_allowed (self, peer, inner, plain))
        return s_drop (self, rx, CRYPTO_DROP_SPOOFED);
    rx->plain_len = plain;
    self->stats.rx_packets++;
    self->stats.rx_bytes += plain;
    return CRYPTO_NODE_DATA;
}

int
crypto_node_receive (crypto_node_t *self, uint8_t *buf, size_t len, uint64_t now,
                     uint8_t *reply, crypto_rx_t *rx)
{
    memset (rx, 0, sizeof *rx);
    rx->peer = -1;
    int type = crypto_wire_type (buf, len, self->error, sizeof self->error);
    if (type == WIRE_DATA || type == WIRE_ANNOUNCE || type == WIRE_FLOOD)
        return s_receive_data (self, buf, len, now, rx);
    if (type == WIRE_INITIATION)
        return s_receive_initiation (self, buf, len, now, reply, rx);
    if (type == WIRE_RESPONSE)
        return s_receive_response (self, buf, len, now, rx);
    return s_drop (self, rx, CRYPTO_DROP_MALFORMED);
}

int
crypto_node_receive_routed (crypto_node_t *self, int source, uint8_t *buf, size_t len, uint64_t now,
                            uint8_t *reply, crypto_rx_t *rx)
{
    self->expect_peer = source >= 0 ? source : INT_MAX;     //  none known: nothing matches
    int rc = crypto_node_receive (self, buf, len, now, reply, rx);
    self->expect_peer = -1;
    return rc;
}

int
crypto_node_encrypt_type (crypto_node_t *self, int id, int type, uint8_t *buf, size_t len, size_t cap,
                          uint64_t now, size_t *wire_len)
{
    s_peer_t *peer = s_peer (self, id);
    if (!peer)
        return CRYPTO_SESSION_EINVAL;
    int rc = crypto_session_encrypt_type (peer->session, type, buf, len, cap, now, wire_len);
    if (rc == CRYPTO_SESSION_NO_KEY)
        self->stats.drops [CRYPTO_DROP_NO_KEY]++;
    return rc;
}

size_t
crypto_node_encrypt_batch (crypto_node_t *self, crypto_packet_t *packets, size_t count, uint64_t now)
{
    size_t ok = 0;
    for (size_t i = 0; i < count; i++) {
        crypto_packet_t *p = &packets [i];
        size_t wire = 0;
        p->result = crypto_node_encrypt (self, p->peer, p->buf, p->len, p->cap, now, &wire);
        if (p->result == CRYPTO_SESSION_OK) {
            p->len = wire;
            ok++;
        }
    }
    return ok;
}

size_t
crypto_node_decrypt_batch (crypto_node_t *self, crypto_packet_t *packets, size_t count, uint64_t now)
{
    size_t ok = 0;
    for (size_t i = 0; i < count; i++) {
        crypto_packet_t *p = &packets [i];
        if (p->len < 1 || p->buf [0] != WIRE_DATA) {
            p->result = CRYPTO_NODE_NOT_DATA;
            continue;
        }
        crypto_rx_t rx;
        p->result = crypto_node_receive (self, p->buf, p->len, now, NULL, &rx);
        p->peer = rx.peer;
        if (p->result == CRYPTO_NODE_DATA) {
            p->len = rx.plain_len;
            ok++;
        }
        else
            p->len = 0;
    }
    return ok;
}

void
crypto_node_stats (const crypto_node_t *self, crypto_node_stats_t *stats)
{
    *stats = self->stats;
}

const char *
crypto_node_last_error (const crypto_node_t *self)
{
    return self->error;
}

const char *
crypto_drop_name (crypto_drop_t drop)
{
    static const char *names [CRYPTO_DROP_COUNT] = {
        "malformed", "unknown_index", "tampered", "replay", "expired", "spoofed",
        "handshake_unknown_key", "handshake_invalid", "handshake_replay", "handshake_unexpected",
        "no_key", "routed_source"
    };
    return drop < CRYPTO_DROP_COUNT ? names [drop] : "?";
}

//  --------------------------------------------------------------------------
//  Self test: two nodes entirely in memory

#define BUFSIZE 1500

typedef struct {
    crypto_identity_t *id;
    crypto_node_t *node;
    int peer;                           //  the other side's peer id
    uint8_t last_octet;                 //  10.100.0.x
} s_side_t;

//  An IPv4 packet from 10.100.0.src carrying seq
static void
s_ip (uint8_t *p, size_t len, uint8_t src, uint32_t seq)
{
    memset (p, 0, len);
    p [0] = 0x45;
    p [2] = (uint8_t) (len >> 8);
    p [3] = (uint8_t) len;
    p [9] = 17;
    p [12] = 10; p [13] = 100; p [14] = 0; p [15] = src;
    p [16] = 10; p [17] = 100; p [18] = 0; p [19] = (uint8_t) (src ^ 3);
    crypto_wire_put32 (p + 20, seq);
    for (size_t i = 24; i < len; i++)
        p [i] = (uint8_t) (seq + i);
}

static void
s_side_new (s_side_t *side, uint8_t octet, const uint8_t *psk, const crypto_session_config_t *config)
{
    side->id = crypto_identity_new ();
    side->node = crypto_node_new (side->id, psk, config);
    side->last_octet = octet;
}

static void
s_side_link (s_side_t *side, s_side_t *other)
{
    char err [128], cidr [32];
    side->peer = crypto_node_peer_add (side->node, crypto_identity_public (other->id), err, sizeof err);
    assert (side->peer >= 0);
    snprintf (cidr, sizeof cidr, "10.100.0.%u/32", other->last_octet);
    assert (crypto_node_peer_allow (side->node, side->peer, cidr, err, sizeof err) == 0);
}

static void
s_side_destroy (s_side_t *side)
{
    crypto_node_destroy (&side->node);
    crypto_identity_destroy (&side->id);
}

//  from initiates to to; returns the result of the initiator's last step
static int
s_handshake (s_side_t *from, s_side_t *to, uint64_t now, uint64_t wall)
{
    uint8_t m1 [WIRE_INITIATION_SIZE], m2 [WIRE_RESPONSE_SIZE];
    crypto_rx_t rx;
    assert (crypto_node_initiation (from->node, from->peer, now, wall, m1) == 0);
    int rc = crypto_node_receive (to->node, m1, sizeof m1, now, m2, &rx);
    if (rc != CRYPTO_NODE_REPLY)
        return rc;
    assert (rx.reply_len == sizeof m2);
    assert (rx.peer == crypto_node_peer_find (to->node, crypto_identity_public (from->id)));
    return crypto_node_receive (from->node, m2, sizeof m2, now, NULL, &rx);
}

//  Sends one packet from -> to, returns to's receive result
static int
s_one (s_side_t *from, s_side_t *to, uint8_t src, uint32_t seq, uint64_t now, uint8_t *buf, size_t *wire)
{
    s_ip (buf + 16, 100, src, seq);
    int rc = crypto_node_encrypt (from->node, from->peer, buf, 100, BUFSIZE, now, wire);
    assert (rc == 0);
    uint8_t copy [BUFSIZE];
    memcpy (copy, buf, *wire);
    crypto_rx_t rx;
    return crypto_node_receive (to->node, copy, *wire, now, NULL, &rx);
}

void
crypto_node_test (bool verbose)
{
    char err [160];
    crypto_session_config_t config;
    crypto_session_config_defaults (&config);
    config.rekey_after_messages = 5000;         //  a rekey in the middle of the run
    uint8_t psk [32];
    randombytes_buf (psk, sizeof psk);
    s_side_t a, b;
    s_side_new (&a, 1, psk, &config);
    s_side_new (&b, 2, psk, &config);
    s_side_link (&a, &b);
    s_side_link (&b, &a);
    //  Configuration errors
    assert (crypto_node_peer_add (a.node, crypto_identity_public (b.id), err, sizeof err) == -1);
    assert (strstr (err, "twice"));
    assert (crypto_node_peer_add (a.node, crypto_identity_public (a.id), err, sizeof err) == -1);
    assert (strstr (err, "own key"));
    assert (crypto_node_peer_allow (a.node, 99, "10.0.0.0/8", err, sizeof err) == -1);
    assert (crypto_node_peer_count (a.node) == 1);

    uint64_t now = 5 * CRYPTO_SEC, wall = 1700000000ULL * CRYPTO_SEC;
    static uint8_t bufs_a [64][BUFSIZE], bufs_b [64][BUFSIZE];
    crypto_packet_t pa [64], pb [64];
    uint8_t one [BUFSIZE];
    size_t wire;

    //  Nothing can be sent before a handshake: counted, and a handshake is due
    assert (crypto_node_encrypt (a.node, a.peer, one, 100, BUFSIZE, now, &wire) == CRYPTO_SESSION_NO_KEY);
    assert (crypto_node_handshake_due (a.node, a.peer, now));
    assert (s_handshake (&a, &b, now, wall) == CRYPTO_NODE_ESTABLISHED);
    assert (crypto_node_keepalive_due (a.node, a.peer));
    assert (crypto_node_encrypt (a.node, a.peer, one, 0, BUFSIZE, now, &wire) == 0);
    crypto_rx_t rx;
    assert (crypto_node_receive (b.node, one, wire, now, NULL, &rx) == CRYPTO_NODE_KEEPALIVE);

    //  10,000 packets each way in batches of 1..64 with random sizes; both
    //  batches stay in flight while any due handshake (the rekey) runs
    uint32_t sent_a = 0, sent_b = 0, got_a = 0, got_b = 0;
    int rekeys = 0;
    while (sent_a < 10000 || sent_b < 10000) {
        now += CRYPTO_SEC / 1000;
        wall += CRYPTO_SEC / 1000;
        size_t na = 1 + randombytes_uniform (64), nb = 1 + randombytes_uniform (64);
        if (na > 10000 - sent_a) na = 10000 - sent_a;
        if (nb > 10000 - sent_b) nb = 10000 - sent_b;
        for (size_t i = 0; i < na; i++) {
            size_t len = 24 + randombytes_uniform (1400 - 24 + 1);
            s_ip (bufs_a [i] + 16, len, 1, sent_a + (uint32_t) i);
            pa [i] = (crypto_packet_t) { bufs_a [i], len, BUFSIZE, a.peer, 0 };
        }
        for (size_t i = 0; i < nb; i++) {
            size_t len = 24 + randombytes_uniform (1400 - 24 + 1);
            s_ip (bufs_b [i] + 16, len, 2, sent_b + (uint32_t) i);
            pb [i] = (crypto_packet_t) { bufs_b [i], len, BUFSIZE, b.peer, 0 };
        }
        assert (crypto_node_encrypt_batch (a.node, pa, na, now) == na);
        assert (crypto_node_encrypt_batch (b.node, pb, nb, now) == nb);
        sent_a += (uint32_t) na;
        sent_b += (uint32_t) nb;
        //  Rekey while both batches are on the wire
        if (crypto_node_handshake_due (a.node, a.peer, now)) {
            assert (s_handshake (&a, &b, now, wall) == CRYPTO_NODE_ESTABLISHED);
            rekeys++;
        }
        if (crypto_node_handshake_due (b.node, b.peer, now)) {
            assert (s_handshake (&b, &a, now, wall) == CRYPTO_NODE_ESTABLISHED);
            rekeys++;
        }
        assert (crypto_node_decrypt_batch (b.node, pa, na, now) == na);
        assert (crypto_node_decrypt_batch (a.node, pb, nb, now) == nb);
        for (size_t i = 0; i < na; i++) {
            assert (pa [i].result == CRYPTO_NODE_DATA && pa [i].peer == b.peer);
            assert (crypto_wire_get32 (pa [i].buf + 16 + 20) == got_b++);
        }
        for (size_t i = 0; i < nb; i++) {
            assert (pb [i].result == CRYPTO_NODE_DATA && pb [i].peer == a.peer);
            assert (crypto_wire_get32 (pb [i].buf + 16 + 20) == got_a++);
        }
    }
    crypto_node_stats_t sa, sb;
    crypto_node_stats (a.node, &sa);
    crypto_node_stats (b.node, &sb);
    assert (got_a == 10000 && got_b == 10000);
    assert (sa.rx_packets == 10000 && sb.rx_packets == 10000);
    assert (rekeys >= 1);
    for (int d = 0; d < CRYPTO_DROP_COUNT; d++)
        assert (sb.drops [d] == 0 && (d == CRYPTO_DROP_NO_KEY || sa.drops [d] == 0));
    if (verbose)
        printf ("  10000 packets each way, %d rekey(s), %llu+%llu handshakes, no loss\n", rekeys,
                (unsigned long long) sa.handshakes_completed, (unsigned long long) sb.handshakes_completed);

    //  Tampered: one bit flipped in the header, the ciphertext, the tag
    size_t flip [] = { 15, 16 + 50, 16 + 100 + 15 };
    for (int f = 0; f < 3; f++) {
        s_ip (one + 16, 100, 1, 1);
        assert (crypto_node_encrypt (a.node, a.peer, one, 100, BUFSIZE, now, &wire) == 0);
        one [flip [f]] ^= 0x01;
        assert (crypto_node_receive (b.node, one, wire, now, NULL, &rx) == CRYPTO_NODE_DROP);
        assert (rx.drop == CRYPTO_DROP_TAMPERED);
    }
    //  Reserved header byte changed: malformed
    s_ip (one + 16, 100, 1, 1);
    assert (crypto_node_encrypt (a.node, a.peer, one, 100, BUFSIZE, now, &wire) == 0);
    one [2] = 0x80;
    assert (crypto_node_receive (b.node, one, wire, now, NULL, &rx) == CRYPTO_NODE_DROP);
    assert (rx.drop == CRYPTO_DROP_MALFORMED);
    //  Replayed
    uint8_t saved [BUFSIZE];
    assert (s_one (&a, &b, 1, 1, now, one, &wire) == CRYPTO_NODE_DATA);
    memcpy (saved, one, wire);
    assert (crypto_node_receive (b.node, saved, wire, now, NULL, &rx) == CRYPTO_NODE_DROP);
    assert (rx.drop == CRYPTO_DROP_REPLAY);
    //  Spoofed inner source (10.100.0.99 is not A's)
    assert (s_one (&a, &b, 99, 1, now, one, &wire) == CRYPTO_NODE_DROP);
    //  Unknown key: a stranger who knows B's public key is refused, no reply
    s_side_t c;
    s_side_new (&c, 3, psk, &config);
    s_side_link (&c, &b);
    wall += CRYPTO_SEC;
    assert (s_handshake (&c, &b, now, wall) == CRYPTO_NODE_DROP);
    if (verbose)
        printf ("  %s\n", crypto_node_last_error (b.node));
    //  Wrong PSK: B knows D, but D has another network key; D refuses the response
    s_side_t d;
    s_side_new (&d, 4, NULL, &config);
    s_side_link (&d, &b);
    int b_to_a = b.peer;
    s_side_link (&b, &d);
    b.peer = b_to_a;
    assert (s_handshake (&d, &b, now, wall) == CRYPTO_NODE_DROP);
    crypto_node_stats_t sd;
    crypto_node_stats (d.node, &sd);
    assert (sd.drops [CRYPTO_DROP_HS_INVALID] == 1);
    //  Replayed initiation, unexpected response, garbage
    uint8_t m1 [WIRE_INITIATION_SIZE], m2 [WIRE_RESPONSE_SIZE];
    wall += CRYPTO_SEC;
    assert (crypto_node_initiation (a.node, a.peer, now, wall, m1) == 0);
    memcpy (saved, m1, sizeof m1);
    assert (crypto_node_receive (b.node, m1, sizeof m1, now, m2, &rx) == CRYPTO_NODE_REPLY);
    assert (crypto_node_receive (b.node, saved, sizeof m1, now, m2, &rx) == CRYPTO_NODE_DROP);
    assert (rx.drop == CRYPTO_DROP_HS_REPLAY);
    memcpy (saved, m2, sizeof m2);
    assert (crypto_node_receive (a.node, m2, sizeof m2, now, NULL, &rx) == CRYPTO_NODE_ESTABLISHED);
    //  The same response again: no initiation outstanding any more
    assert (crypto_node_receive (a.node, saved, sizeof m2, now, NULL, &rx) == CRYPTO_NODE_DROP);
    assert (rx.drop == CRYPTO_DROP_HS_UNEXPECTED);
    uint8_t junk [200];
    randombytes_buf (junk, sizeof junk);
    junk [0] = 7;
    assert (crypto_node_receive (b.node, junk, sizeof junk, now, NULL, &rx) == CRYPTO_NODE_DROP);
    assert (rx.drop == CRYPTO_DROP_MALFORMED);

    crypto_node_stats (b.node, &sb);
    assert (sb.drops [CRYPTO_DROP_TAMPERED] == 3);
    assert (sb.drops [CRYPTO_DROP_REPLAY] == 1);
    assert (sb.drops [CRYPTO_DROP_SPOOFED] == 1);
    assert (sb.drops [CRYPTO_DROP_HS_UNKNOWN_KEY] == 1);
    assert (sb.drops [CRYPTO_DROP_HS_REPLAY] == 1);
    assert (sb.drops [CRYPTO_DROP_MALFORMED] == 2);
    if (verbose)
        for (int dr = 0; dr < CRYPTO_DROP_COUNT; dr++)
            printf ("  B dropped %llu %s\n", (unsigned long long) sb.drops [dr], crypto_drop_name (dr));

    //  The tunnel keeps working both ways, on the keys of that last handshake
    for (uint32_t n = 0; n < 100; n++) {
        assert (s_one (&a, &b, 1, n, now, one, &wire) == CRYPTO_NODE_DATA);
        assert (s_one (&b, &a, 2, n, now, one, &wire) == CRYPTO_NODE_DATA);
    }
    //  A peer whose allowed addresses are replaced (a returning key with a new
    //  virtual IP) is refused its old source address and accepted from the new
    crypto_node_peer_allow_clear (b.node, b.peer);
    assert (crypto_node_peer_allow (b.node, b.peer, "10.100.0.9/32", err, sizeof err) == 0);
    assert (s_one (&a, &b, 1, 100, now, one, &wire) == CRYPTO_NODE_DROP);
    assert (s_one (&a, &b, 9, 101, now, one, &wire) == CRYPTO_NODE_DATA);
    crypto_node_peer_allow_clear (b.node, b.peer);
    assert (crypto_node_peer_allow (b.node, b.peer, "10.100.0.1/32", err, sizeof err) == 0);
    assert (s_one (&a, &b, 1, 102, now, one, &wire) == CRYPTO_NODE_DATA);
    crypto_node_peer_allow_clear (b.node, 99);          //  no such peer: nothing
    //  Expiry: after reject_after_time without a new handshake, old keys are refused
    assert (crypto_node_can_send (a.node, a.peer, now) && crypto_node_can_send (b.node, b.peer, now));
    assert (!crypto_node_expire (a.node, a.peer, now));
    now += config.reject_after_time;
    assert (!crypto_node_can_send (a.node, a.peer, now) && !crypto_node_can_send (b.node, b.peer, now));
    //  ...and wiped: B forgets the indices, so A's old packets are unknown there
    assert (crypto_node_expire (b.node, b.peer, now));
    assert (!crypto_node_expire (b.node, b.peer, now));
    assert (!crypto_node_handshake_wanted (a.node, a.peer));
    crypto_node_want_handshake (a.node, a.peer, now);
    assert (crypto_node_handshake_wanted (a.node, a.peer));
    assert (crypto_node_handshake_due (a.node, a.peer, now));
    assert (crypto_node_encrypt (a.node, a.peer, one, 100, BUFSIZE, now, &wire) == CRYPTO_SESSION_NO_KEY);
    assert (crypto_node_handshake_due (a.node, a.peer, now));
    wall += CRYPTO_SEC;
    assert (s_handshake (&a, &b, now, wall) == CRYPTO_NODE_ESTABLISHED);
    assert (s_one (&a, &b, 1, 1, now, one, &wire) == CRYPTO_NODE_DATA);
    assert (s_one (&b, &a, 2, 1, now, one, &wire) == CRYPTO_NODE_DATA);

    //  Through other peers (a routing header's source): taken only as that
    //  peer's, checked before any state changes
    crypto_rx_t rrx;
    uint8_t copy [BUFSIZE];
    s_ip (one + 16, 100, 1, 500);
    assert (crypto_node_encrypt (a.node, a.peer, one, 100, BUFSIZE, now, &wire) == 0);
    memcpy (copy, one, wire);
    assert (crypto_node_receive_routed (b.node, b.peer + 1, copy, wire, now, NULL, &rrx) == CRYPTO_NODE_DROP);
    assert (rrx.drop == CRYPTO_DROP_ROUTED_SOURCE);
    assert (crypto_node_receive_routed (b.node, -1, copy, wire, now, NULL, &rrx) == CRYPTO_NODE_DROP);
    assert (crypto_node_receive_routed (b.node, b.peer, one, wire, now, NULL, &rrx) == CRYPTO_NODE_DATA);
    assert (rrx.peer == b.peer);
    //  A handshake: the initiator's static key must be the source's
    wall += CRYPTO_SEC;
    assert (crypto_node_initiation (a.node, a.peer, now, wall, m1) == 0);
    memcpy (copy, m1, sizeof m1);
    assert (crypto_node_receive_routed (b.node, b.peer + 1, copy, sizeof m1, now, m2, &rrx) == CRYPTO_NODE_DROP);
    assert (rrx.drop == CRYPTO_DROP_ROUTED_SOURCE);
    assert (crypto_node_receive_routed (b.node, b.peer, m1, sizeof m1, now, m2, &rrx) == CRYPTO_NODE_REPLY);
    memcpy (copy, m2, sizeof m2);
    assert (crypto_node_receive_routed (a.node, a.peer + 1, copy, sizeof m2, now, NULL, &rrx) == CRYPTO_NODE_DROP);
    assert (rrx.drop == CRYPTO_DROP_ROUTED_SOURCE);
    assert (crypto_node_receive_routed (a.node, a.peer, m2, sizeof m2, now, NULL, &rrx) == CRYPTO_NODE_ESTABLISHED);
    //  A route announcement in the session, for the router
    memset (one + 16, 0x30, 50);
    assert (crypto_node_encrypt_type (a.node, a.peer, WIRE_ANNOUNCE, one, 50, BUFSIZE, now, &wire) == 0);
    assert (one [0] == WIRE_ANNOUNCE && wire == 50 + 32);
    memcpy (copy, one, wire);
    assert (crypto_node_receive (b.node, one, wire, now, NULL, &rrx) == CRYPTO_NODE_ANNOUNCE);
    assert (rrx.peer == b.peer && rrx.plain_len == 50 && one [16] == 0x30 && one [16 + 49] == 0x30);
    assert (crypto_node_receive (b.node, copy, wire, now, NULL, &rrx) == CRYPTO_NODE_DROP && rrx.drop == CRYPTO_DROP_REPLAY);
    assert (crypto_node_encrypt_type (a.node, a.peer, WIRE_ANNOUNCE, one, 50, BUFSIZE, now, &wire) == 0);
    one [0] = WIRE_DATA;                        //  never taken for data
    assert (crypto_node_receive (b.node, one, wire, now, NULL, &rrx) == CRYPTO_NODE_DROP && rrx.drop == CRYPTO_DROP_TAMPERED);
    assert (crypto_node_encrypt_type (a.node, a.peer, WIRE_ANNOUNCE, one, 0, BUFSIZE, now, &wire) == CRYPTO_SESSION_EINVAL);
    //  A flood frame in the session: its header authenticated, its packet not
    //  checked against the neighbour's addresses here (it is the origin's)
    memset (one + 16, 0x07, 60);
    assert (crypto_node_encrypt_type (a.node, a.peer, WIRE_FLOOD, one, 60, BUFSIZE, now, &wire) == 0);
    assert (one [0] == WIRE_FLOOD && wire == 60 + 32);
    memcpy (copy, one, wire);
    assert (crypto_node_receive (b.node, one, wire, now, NULL, &rrx) == CRYPTO_NODE_FLOOD);
    assert (rrx.peer == b.peer && rrx.plain_len == 60 && one [16] == 0x07);
    assert (crypto_node_receive (b.node, copy, wire, now, NULL, &rrx) == CRYPTO_NODE_DROP && rrx.drop == CRYPTO_DROP_REPLAY);
    assert (crypto_node_encrypt_type (a.node, a.peer, WIRE_FLOOD, one, 60, BUFSIZE, now, &wire) == 0);
    one [0] = WIRE_DATA;                        //  never taken for data
    assert (crypto_node_receive (b.node, one, wire, now, NULL, &rrx) == CRYPTO_NODE_DROP && rrx.drop == CRYPTO_DROP_TAMPERED);
    assert (crypto_node_encrypt_type (a.node, a.peer, WIRE_FLOOD, one, WIRE_FLOOD_HEADER, BUFSIZE, now, &wire)
            == CRYPTO_SESSION_EINVAL);          //  a header and no packet

    s_side_destroy (&a);
    s_side_destroy (&b);
    s_side_destroy (&c);
    s_side_destroy (&d);
}
