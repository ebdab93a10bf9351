/*  nat_cookie_path: WireGuard's cookie replies, in nat (docs/nat.md, "Cookie replies").

    Why here and not in crypto: the cookie is a MAC of the source address, and
    nat is the process that knows addresses (crypto sees handles); mac1 is
    checked with this node's PUBLIC key, the reply is sealed with a key derived
    from a PUBLIC key, and mac2 is covered by neither mac1 nor the handshake's
    AEAD. So nat does all of it holding no private key, and a flood of
    initiations from spoofed sources is answered here, in the process that
    reads the internet, without costing crypto any Diffie-Hellman work.

    Responder: an initiation with a wrong mac1 is dropped; under load
    (nat_hs_load), one without a valid mac2 for its source (nat_cookie_secret)
    is answered with a cookie reply instead of reaching crypto. Initiator:
    crypto's initiations are remembered per peer and carry mac2 while nat holds
    a cookie from that peer (nat_cookie_jar); cookie replies never reach crypto.
    The classes are pure; this file is the service's glue around them. */
#include "nat_service_priv.h"
#include "nat_cookie_reply.h"
#include "nat_ice.h"
#include "bus_log.h"

#include <assert.h>
#include <inttypes.h>
#include <sodium.h>

#define S_KEY_ASK_MS    1000        //  ask crypto for this node's key this often until it answers

struct _nat_cookie_path_t {
    bool key_known;
    uint8_t key [NAT_HS_KEY_SIZE];              //  this node's public key
    uint8_t mac1_key [NAT_HS_KEY_SIZE];         //  key ("mac1----", ours)
    uint8_t reply_key [NAT_HS_KEY_SIZE];        //  key ("cookie--", ours)
    int64_t asked_ms;                           //  last crypto.key, -1 never
    bool under;                                 //  under load at the last initiation (logged when it changes)
    nat_cookie_secret_t *secret;
    nat_hs_load_t *load;
    nat_cookie_jar_t *jar;
    //  Replies to direct sources, sent at the end of the read (one sendmmsg)
    uint8_t out [BUS_BATCH_MAX][WIRE_COOKIE_SIZE];
    nat_addr_t to [BUS_BATCH_MAX];
    nat_udp_tx_t tx [BUS_BATCH_MAX];
    size_t count;
    //  Replies to ICE pseudo-addresses wait for nat_ice_flush: their bytes stay here
    uint8_t ice_out [BUS_BATCH_MAX][WIRE_COOKIE_SIZE];
    size_t ice_count;
};

void
nat_cookie_path_open (nat_service_t *self)
{
    nat_cookie_path_t *path = calloc (1, sizeof *path);
    assert (path);
    path->asked_ms = -1;
    path->secret = nat_cookie_secret_new ();
    path->load = nat_hs_load_new (NAT_HS_LOAD_MAX);
    path->jar = nat_cookie_jar_new ();
    self->cookie = path;
}

void
nat_cookie_path_close (nat_service_t *self)
{
    nat_cookie_path_t *path = self->cookie;
    if (!path)
        return;
    nat_cookie_secret_destroy (&path->secret);
    nat_hs_load_destroy (&path->load);
    nat_cookie_jar_destroy (&path->jar);
    sodium_memzero (path, sizeof *path);
    free (path);
    self->cookie = NULL;
}

//  crypto's answer to crypto.key: this node's public key
static void
s_on_key (bus_service_t *svc, bus_envelope_t *reply, void *arg)
{
    nat_service_t *self = (nat_service_t *) arg;
    nat_cookie_path_t *path = self->cookie;
    crypto_key_reply_t msg;
    char err [200];
    if (!path || !reply || bus_envelope_get_msg (reply, &crypto_key_reply_schema, &msg, err, sizeof err))
        return;                         //  asked again at the next tick
    uint8_t key [NAT_HS_KEY_SIZE];
    if (msg.name [0] || nat_key_from_base64 (msg.public_key, key, err, sizeof err)) {
        bus_warn ("crypto.key.reply: not this node's key");
        return;
    }
    if (path->key_known && memcmp (key, path->key, sizeof key) == 0)
        return;
    memcpy (path->key, key, sizeof key);
    nat_hs_mac_key ("mac1----", key, path->mac1_key);
    nat_hs_mac_key ("cookie--", key, path->reply_key);
    path->key_known = true;
    bus_info ("this node's public key known: initiations' mac1 checked, cookie replies under load");
}

void
nat_cookie_path_tick (nat_service_t *self, int64_t now)
{
    nat_cookie_path_t *path = self->cookie;
    if (!path || path->key_known || (path->asked_ms >= 0 && now - path->asked_ms < S_KEY_ASK_MS))
        return;
    path->asked_ms = now;
    crypto_key_t request = { .peer = "" };      //  this node's own key
    bus_service_request (self->svc, "crypto", &crypto_key_schema, &request, S_KEY_ASK_MS, s_on_key, self);
}

//  A reply to a relayed source goes through the relay now; one to an ICE
//  pseudo-address through its pair at the next flush; the others at the end
//  of the read, in one sendmmsg
static void
s_send (nat_service_t *self, nat_cookie_path_t *path, const uint8_t *reply, const nat_addr_t *to)
{
    uint64_t relay_peer = nat_addr_relay_peer (to);
    uint32_t ice;
    if (relay_peer) {
        size_t framed;
        const nat_addr_t *relay = self->frames
                                ? nat_relay_path_frame (self, 0, relay_peer, reply, WIRE_COOKIE_SIZE, &framed) : NULL;
        if (relay) {
            nat_udp_tx_t tx = { self->frames [0], framed, relay };
            nat_udp_send (self->udp, &tx, 1);
        }
    }
    else
    if (nat_addr_ice_index (to, &ice)) {
        if (path->ice_count == BUS_BATCH_MAX)
            nat_cookie_path_flush (self);
        memcpy (path->ice_out [path->ice_count], reply, WIRE_COOKIE_SIZE);
        nat_ice_send (self->ice, ice, path->ice_out [path->ice_count++], WIRE_COOKIE_SIZE);
    }
    else {
        if (path->count == BUS_BATCH_MAX)
            nat_cookie_path_flush (self);
        size_t k = path->count++;
        memcpy (path->out [k], reply, WIRE_COOKIE_SIZE);
        path->to [k] = *to;
        path->tx [k] = (nat_udp_tx_t) { path->out [k], WIRE_COOKIE_SIZE, &path->to [k] };
    }
    self->counters.cookies_sent++;
}

void
nat_cookie_path_flush (nat_service_t *self)
{
    nat_cookie_path_t *path = self->cookie;
    if (!path)
        return;
    if (path->count)
        nat_udp_send (self->udp, path->tx, path->count);
    path->count = 0;
    if (path->ice_count)
        nat_ice_flush (self->ice);
    path->ice_count = 0;
}

nat_cookie_verdict_t
nat_cookie_path_initiation (nat_service_t *self, const uint8_t *data, size_t size, const nat_addr_t *from,
                            int64_t now)
{
    nat_cookie_path_t *path = self->cookie;
    if (!path || !path->key_known || size != WIRE_INITIATION_SIZE)
        return NAT_COOKIE_PASS;         //  crypto checks (and refuses) it as before
    if (!nat_hs_mac1_ok (path->mac1_key, data, WIRE_INITIATION_MAC1)) {
        if (self->counters.initiations_bad_mac1++ == 0)
            bus_info ("an initiation's mac1 is not for this node's key: dropped (counted in initiations_bad_mac1)");
        return NAT_COOKIE_DROP;
    }
    nat_hs_load_note (path->load, now);
    //  A mac2 of zeros is no cookie: spare the hashes
    static const uint8_t zero [WIRE_INITIATION_MAC2_SIZE];
    bool proven = memcmp (data + WIRE_INITIATION_MAC2, zero, sizeof zero) != 0
               && nat_cookie_secret_mac2_ok (path->secret, from, data, WIRE_INITIATION_MAC2, now);
    if (proven) {
        self->counters.initiations_cookie++;
        return NAT_COOKIE_PROVEN;
    }
    bool under = nat_hs_load_under (path->load, now);
    if (under != path->under) {
        path->under = under;
        if (under)
            bus_info ("under load (more than %d initiations in the last second): cookie replies", NAT_HS_LOAD_MAX);
        else
            bus_info ("no longer under load (%" PRIu64 " cookie replies sent in all)", self->counters.cookies_sent);
    }
    if (!under)
        return NAT_COOKIE_PASS;
    //  Under load: prove you receive at that address first
    uint8_t cookie [NAT_HS_MAC_SIZE], reply [WIRE_COOKIE_SIZE];
    nat_cookie_secret_make (path->secret, from, now, cookie);
    const uint8_t *p = data + WIRE_INITIATION_SENDER_INDEX;
    uint32_t sender = (uint32_t) p [0] | (uint32_t) p [1] << 8 | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 24;
    nat_cookie_reply_write (reply, sender, path->reply_key, data + WIRE_INITIATION_MAC1, cookie);
    s_send (self, path, reply, from);
    return NAT_COOKIE_ANSWERED;
}

bool
nat_cookie_path_mac1 (nat_service_t *self, const uint8_t *data, size_t size, int64_t now)
{
    nat_cookie_path_t *path = self->cookie;
    if (!path || !path->key_known || size != WIRE_INITIATION_SIZE)
        return true;                    //  crypto checks (and refuses) it as before
    if (!nat_hs_mac1_ok (path->mac1_key, data, WIRE_INITIATION_MAC1)) {
        self->counters.initiations_bad_mac1++;
        return false;
    }
    nat_hs_load_note (path->load, now);
    return true;
}

void
nat_cookie_path_reply (nat_service_t *self, const uint8_t *data, size_t size, int64_t now)
{
    nat_cookie_path_t *path = self->cookie;
    uint32_t index, peer_index;
    uint8_t mac1 [NAT_HS_MAC_SIZE], key [NAT_HS_KEY_SIZE], cookie [NAT_HS_MAC_SIZE];
    if (!path || nat_cookie_reply_receiver (data, size, &index)
    ||  !nat_cookie_jar_match (path->jar, index, now, &peer_index, mac1)) {
        self->counters.cookies_refused++;
        return;
    }
    nat_peer_t *peer = peer_index < nat_peer_table_slots (self->table) ? nat_peer_table_at (self->table, peer_index) : NULL;
    if (!peer) {
        self->counters.cookies_refused++;
        return;
    }
    nat_hs_mac_key ("cookie--", nat_peer_key (peer), key);
    if (nat_cookie_reply_read (data, size, key, mac1, cookie)) {
        self->counters.cookies_refused++;
        return;
    }
    nat_cookie_jar_store (path->jar, peer_index, cookie, now);
    self->counters.cookies_received++;
    bus_info ("peer %s is under load: cookie received, its next initiation carries mac2",
               peer_index < self->info_count ? self->info [peer_index].name : "?");
}

void
nat_cookie_path_outgoing (nat_service_t *self, uint32_t peer, uint8_t *data, size_t size, int64_t now)
{
    nat_cookie_path_t *path = self->cookie;
    if (path && nat_cookie_jar_sent (path->jar, peer, data, size, now))
        self->counters.initiations_mac2++;
}

void
nat_cookie_path_status (nat_service_t *self, nat_status_reply_t *reply)
{
    nat_cookie_path_t *path = self->cookie;
    int64_t now = bus_clock_ms ();
    reply->cookies_sent = self->counters.cookies_sent;
    reply->cookies_received = self->counters.cookies_received;
    reply->cookies_refused = self->counters.cookies_refused;
    reply->initiations_bad_mac1 = self->counters.initiations_bad_mac1;
    reply->initiations_cookie = self->counters.initiations_cookie;
    reply->initiations_mac2 = self->counters.initiations_mac2;
    reply->under_load = path && nat_hs_load_under (path->load, now);
    reply->under_load_ms = path ? nat_hs_load_total_ms (path->load) : 0;
    reply->mac1_checked = path && path->key_known;
}
