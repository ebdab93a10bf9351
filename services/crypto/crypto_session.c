/*  crypto_session: keypair rotation, in-place AEAD and the handshake timer. */
#include "crypto_session.h"
#include "node_replay.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t send_key [32];
    uint8_t recv_key [32];
    uint32_t local_index;
    uint32_t remote_index;
    uint64_t send_counter;              //  next counter to use
    uint64_t created;
    uint64_t bytes;                     //  plaintext sent + received
    bool initiator;
    node_replay_t *replay;
} s_keypair_t;

struct _crypto_session_t {
    crypto_session_config_t config;
    s_keypair_t *current;
    s_keypair_t *previous;
    s_keypair_t *next;
    s_keypair_t *retired;               //  pushed out of current by a crossing handshake
    uint64_t generation;
    bool keepalive_due;
    //  Handshake timer
    bool hs_wanted;
    unsigned hs_attempts;
    uint64_t hs_first_at;
    uint64_t hs_next_at;
};

void
crypto_session_config_defaults (crypto_session_config_t *config)
{
    config->rekey_after_time = 120 * CRYPTO_SEC;
    config->reject_after_time = 180 * CRYPTO_SEC;
    config->rekey_after_messages = 1ULL << 60;
    config->reject_after_messages = UINT64_MAX - (1ULL << 13);
    config->rekey_after_bytes = 0;
    config->retry_initial = 1 * CRYPTO_SEC;
    config->retry_max = 30 * CRYPTO_SEC;
    config->retry_give_up = 90 * CRYPTO_SEC;
}

crypto_session_t *
crypto_session_new (const crypto_session_config_t *config)
{
    if (sodium_init () < 0)
        return NULL;
    crypto_session_t *self = calloc (1, sizeof *self);
    assert (self);
    if (config)
        self->config = *config;
    else
        crypto_session_config_defaults (&self->config);
    return self;
}

static void
s_keypair_free (s_keypair_t **kp_p)
{
    if (*kp_p) {
        node_replay_destroy (&(*kp_p)->replay);
        sodium_free (*kp_p);            //  wipes the keys
        *kp_p = NULL;
    }
}

void
crypto_session_clear (crypto_session_t *self)
{
    s_keypair_free (&self->current);
    s_keypair_free (&self->previous);
    s_keypair_free (&self->next);
    s_keypair_free (&self->retired);
    self->generation++;
    self->keepalive_due = false;
}

void
crypto_session_destroy (crypto_session_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        crypto_session_clear (*self_p);
        free (*self_p);
        *self_p = NULL;
    }
}

static void
s_handshake_done (crypto_session_t *self)
{
    self->hs_wanted = false;
    self->hs_attempts = 0;
}

//  Keys pushed out of `previous` (out of `current` when handshakes cross) are
//  kept one step longer, until the next push or their reject age: when two
//  handshakes complete within the relay's delay (both sides probe a direct
//  path, at once or one after the other), the datagrams still in flight over
//  the slower relay were sealed with them. WireGuard frees them at once.
static void
s_retire (crypto_session_t *self, s_keypair_t **kp_p)
{
    s_keypair_free (&self->retired);
    self->retired = *kp_p;
    *kp_p = NULL;
}

bool
crypto_session_install (crypto_session_t *self, crypto_keys_t *keys, uint64_t now)
{
    bool crossed = false;
    s_keypair_t *kp = sodium_malloc (sizeof *kp);
    assert (kp);
    memset (kp, 0, sizeof *kp);
    memcpy (kp->send_key, keys->send_key, 32);
    memcpy (kp->recv_key, keys->recv_key, 32);
    kp->local_index = keys->local_index;
    kp->remote_index = keys->remote_index;
    kp->initiator = keys->initiator;
    kp->created = now;
    kp->replay = node_replay_new ();
    sodium_memzero (keys, sizeof *keys);
    if (kp->initiator) {
        //  The responder already has these keys: send with them at once. What
        //  we hold as `next` was the peer's own attempt, which it may be using.
        //  The two initiations crossed (both sides probe a direct path at once),
        //  and the peer still sends with `current` until our response reaches it.
        if (self->next) {
            s_keypair_free (&self->previous);
            self->previous = self->next;
            self->next = NULL;
            s_retire (self, &self->current);
            crossed = true;
        }
        else {
            s_retire (self, &self->previous);
            self->previous = self->current;
        }
        self->current = kp;
        self->keepalive_due = true;
        s_handshake_done (self);
    }
    else {
        //  Not confirmed until the initiator uses it. Unlike WireGuard we keep
        //  `previous` until then too: a packet still in flight under it is not lost.
        s_keypair_free (&self->next);
        self->next = kp;
    }
    self->generation++;
    return crossed;
}

static void
s_nonce (uint8_t nonce [12], uint64_t counter)
{
    memset (nonce, 0, 4);
    crypto_wire_put64 (nonce + 4, counter);
}

static bool
s_expired (const crypto_session_t *self, const s_keypair_t *kp, uint64_t now)
{
    return now - kp->created >= self->config.reject_after_time
        || kp->send_counter >= self->config.reject_after_messages;
}

bool
crypto_session_can_send (const crypto_session_t *self, uint64_t now)
{
    return self->current && !s_expired (self, self->current, now);
}

void
crypto_session_want_handshake (crypto_session_t *self, uint64_t now)
{
    if (!self->hs_wanted) {
        self->hs_wanted = true;
        self->hs_attempts = 0;
        self->hs_next_at = now;
    }
}

bool
crypto_session_handshake_due (crypto_session_t *self, uint64_t now)
{
    if (!self->hs_wanted)
        return false;
    //  The peer has just rekeyed (its keys wait in `next` for their first packet):
    //  starting our own handshake now would push the current keys out while the
    //  peer's packets under them are still in flight. Its keys reset the counters.
    if (self->next && self->hs_attempts == 0)
        return false;
    if (self->hs_attempts > 0 && now - self->hs_first_at >= self->config.retry_give_up) {
        //  Give up until traffic asks again (want_handshake)
        s_handshake_done (self);
        return false;
    }
    return now >= self->hs_next_at;
}

void
crypto_session_handshake_sent (crypto_session_t *self, uint64_t now)
{
    if (self->hs_attempts == 0)
        self->hs_first_at = now;
    self->hs_wanted = true;
    uint64_t delay = self->config.retry_initial;
    for (unsigned i = 0; i < self->hs_attempts && delay < self->config.retry_max; i++)
        delay *= 2;
    if (delay > self->config.retry_max)
        delay = self->config.retry_max;
    //  +-25% jitter so peers that lost each other at once do not retry in step
    uint64_t quarter = delay / 4;
    if (quarter) {
        uint64_t r;
        randombytes_buf (&r, sizeof r);
        delay = delay - quarter + r % (2 * quarter + 1);
    }
    self->hs_next_at = now + delay;
    self->hs_attempts++;
}

bool
crypto_session_keepalive_due (crypto_session_t *self)
{
    bool due = self->keepalive_due;
    self->keepalive_due = false;
    return due;
}

int
crypto_session_encrypt (crypto_session_t *self, uint8_t *buf, size_t len, size_t capacity,
                        uint64_t now, size_t *wire_len)
{
    return crypto_session_encrypt_type (self, WIRE_DATA, buf, len, capacity, now, wire_len);
}

//  The associated data of a message: none for data (WireGuard's), the 16-byte
//  header for an announcement or a flood frame, so none can be taken for another
static size_t
s_ad_len (const uint8_t *buf)
{
    return buf [0] == WIRE_ANNOUNCE || buf [0] == WIRE_FLOOD ? WIRE_DATA_HEADER : 0;
}

int
crypto_session_encrypt_type (crypto_session_t *self, int type, uint8_t *buf, size_t len, size_t capacity,
                             uint64_t now, size_t *wire_len)
{
    if (type != WIRE_DATA && (type != WIRE_ANNOUNCE || len == 0 || len > WIRE_ANNOUNCE_MAX)
                          && (type != WIRE_FLOOD || len <= WIRE_FLOOD_HEADER))
        return CRYPTO_SESSION_EINVAL;
    s_keypair_t *kp = self->current;
    if (!kp || s_expired (self, kp, now)) {
        crypto_session_want_handshake (self, now);
        return CRYPTO_SESSION_NO_KEY;
    }
    if (len > WIRE_MAX_PLAIN || capacity < len + WIRE_DATA_OVERHEAD)
        return CRYPTO_SESSION_EINVAL;
    uint64_t counter = kp->send_counter++;
    uint8_t nonce [12];
    s_nonce (nonce, counter);
    crypto_wire_data_header_encode (buf, kp->remote_index, counter);
    buf [WIRE_DATA_TYPE] = (uint8_t) type;
    uint8_t *plain = buf + WIRE_DATA_HEADER;
    size_t ad = s_ad_len (buf);
    crypto_aead_chacha20poly1305_ietf_encrypt_detached (plain, plain + len, NULL, plain, len,
                                                        ad ? buf : NULL, ad, NULL, nonce, kp->send_key);
    kp->bytes += len;
    *wire_len = len + WIRE_DATA_OVERHEAD;
    self->keepalive_due = false;
    if (kp->send_counter >= self->config.rekey_after_messages
    || (self->config.rekey_after_bytes && kp->bytes >= self->config.rekey_after_bytes)
    || (kp->initiator && now - kp->created >= self->config.rekey_after_time))
        crypto_session_want_handshake (self, now);
    return CRYPTO_SESSION_OK;
}

static s_keypair_t *
s_find (crypto_session_t *self, uint32_t index)
{
    if (self->current && self->current->local_index == index)
        return self->current;
    if (self->next && self->next->local_index == index)
        return self->next;
    if (self->previous && self->previous->local_index == index)
        return self->previous;
    if (self->retired && self->retired->local_index == index)
        return self->retired;
    return NULL;
}

int
crypto_session_decrypt (crypto_session_t *self, uint8_t *buf, size_t wire_len, uint64_t now,
                        size_t *plain_len)
{
    crypto_wire_data_t msg;
    if (crypto_wire_data_decode (&msg, buf, wire_len, NULL, 0))
        return CRYPTO_SESSION_EMALFORMED;
    s_keypair_t *kp = s_find (self, msg.receiver_index);
    if (!kp)
        return CRYPTO_SESSION_EINDEX;
    if (now - kp->created >= self->config.reject_after_time
    ||  msg.counter >= self->config.reject_after_messages)
        return CRYPTO_SESSION_EEXPIRED;
    //  Cheap check first, window update only after the tag verified
    if (!node_replay_check (kp->replay, msg.counter))
        return CRYPTO_SESSION_EREPLAY;
    uint8_t nonce [12];
    s_nonce (nonce, msg.counter);
    size_t len = msg.ciphertext_size - WIRE_TAG_SIZE;
    uint8_t *plain = buf + WIRE_DATA_HEADER;
    size_t ad = s_ad_len (buf);
    if (crypto_aead_chacha20poly1305_ietf_decrypt_detached (plain, NULL, plain, len, plain + len,
                                                            ad ? buf : NULL, ad, nonce, kp->recv_key) != 0)
        return CRYPTO_SESSION_EAUTH;
    if (!node_replay_update (kp->replay, msg.counter))
        return CRYPTO_SESSION_EREPLAY;
    kp->bytes += len;
    *plain_len = len;
    if (kp == self->next) {
        //  The initiator uses the new keys: they become ours to send with
        s_retire (self, &self->previous);
        self->previous = self->current;
        self->current = self->next;
        self->next = NULL;
        self->generation++;
        s_handshake_done (self);
    }
    if (self->config.rekey_after_bytes && kp->bytes >= self->config.rekey_after_bytes)
        crypto_session_want_handshake (self, now);
    //  An initiator whose keys near the reject age while it only receives
    //  rekeys before they expire (WireGuard: REJECT - KEEPALIVE - REKEY_TIMEOUT)
    uint64_t late = self->config.rekey_after_time
                  + (self->config.reject_after_time - self->config.rekey_after_time) * 3 / 4;
    if (kp == self->current && kp->initiator && now - kp->created >= late)
        crypto_session_want_handshake (self, now);
    return CRYPTO_SESSION_OK;
}

bool
crypto_session_expire (crypto_session_t *self, uint64_t now)
{
    bool dropped = false;
    s_keypair_t **slots [CRYPTO_SESSION_SLOTS] = {
        &self->current, &self->previous, &self->next, &self->retired
    };
    for (int i = 0; i < CRYPTO_SESSION_SLOTS; i++)
        if (*slots [i] && now - (*slots [i])->created >= self->config.reject_after_time) {
            s_keypair_free (slots [i]);
            dropped = true;
        }
    if (dropped)
        self->generation++;
    return dropped;
}

bool
crypto_session_handshake_wanted (const crypto_session_t *self)
{
    return self->hs_wanted;
}

bool
crypto_session_has_index (const crypto_session_t *self, uint32_t index)
{
    return s_find ((crypto_session_t *) self, index) != NULL;
}

void
crypto_session_indices (const crypto_session_t *self, uint32_t out [CRYPTO_SESSION_SLOTS])
{
    out [0] = self->current ? self->current->local_index : 0;
    out [1] = self->previous ? self->previous->local_index : 0;
    out [2] = self->next ? self->next->local_index : 0;
    out [3] = self->retired ? self->retired->local_index : 0;
}

uint64_t
crypto_session_generation (const crypto_session_t *self)
{
    return self->generation;
}

//  --------------------------------------------------------------------------
//  Self test: two sessions wired back to back with keys from real handshakes

static uint8_t *
s_any_peer (void *arg, const uint8_t static_key [32])
{
    return (uint8_t *) arg;
}

static void
s_test_keys (crypto_identity_t *a, crypto_identity_t *b, uint32_t ia, uint32_t ib,
             crypto_keys_t *ka, crypto_keys_t *kb, uint64_t wall)
{
    uint8_t stamp [12] = { 0 };
    uint8_t m1 [148], m2 [92];
    char err [128];
    crypto_noise_t *i = crypto_noise_new_initiator (a, crypto_identity_public (b), NULL);
    crypto_noise_t *r = crypto_noise_new_responder (b, NULL);
    assert (crypto_noise_write_initiation (i, ia, wall, m1) == 0);
    assert (crypto_noise_read_initiation (r, m1, 148, s_any_peer, stamp, NULL, err, sizeof err) == 0);
    assert (crypto_noise_write_response (r, ib, m2, kb) == 0);
    assert (crypto_noise_read_response (i, m2, 92, ka, err, sizeof err) == 0);
    crypto_noise_destroy (&i);
    crypto_noise_destroy (&r);
}

#define BUF 1600

static bool
s_index_is (const uint8_t *buf, uint32_t index)
{
    return crypto_wire_get32 (buf + 4) == index;
}

//  Encrypts packet number seq (its bytes derive from seq) into buf
static size_t
s_send (crypto_session_t *s, uint8_t *buf, uint32_t seq, size_t len, uint64_t now)
{
    memset (buf + WIRE_DATA_HEADER, (int) (seq & 0xFF), len);
    if (len >= 4)
        crypto_wire_put32 (buf + WIRE_DATA_HEADER, seq);
    size_t wire = 0;
    assert (crypto_session_encrypt (s, buf, len, BUF, now, &wire) == CRYPTO_SESSION_OK);
    assert (wire == len + 32);
    return wire;
}

static void
s_recv_ok (crypto_session_t *s, uint8_t *buf, size_t wire, uint32_t seq, uint64_t now)
{
    size_t plain = 0;
    int rc = crypto_session_decrypt (s, buf, wire, now, &plain);
    assert (rc == CRYPTO_SESSION_OK);
    assert (plain == wire - 32);
    if (plain >= 4)
        assert (crypto_wire_get32 (buf + WIRE_DATA_HEADER) == seq);
}

void
crypto_session_test (bool verbose)
{
    crypto_identity_t *ida = crypto_identity_new ();
    crypto_identity_t *idb = crypto_identity_new ();
    crypto_session_config_t config;
    crypto_session_config_defaults (&config);
    config.rekey_after_messages = 1000;
    crypto_session_t *a = crypto_session_new (&config);
    crypto_session_t *b = crypto_session_new (&config);
    uint64_t now = 1000 * CRYPTO_SEC, wall = 1700000000ULL * CRYPTO_SEC;
    uint8_t buf [BUF], copy [BUF];
    size_t wire, plain;

    //  No keys: nothing to send with, and a handshake is due
    assert (!crypto_session_handshake_due (a, now));
    assert (crypto_session_encrypt (a, buf, 100, BUF, now, &wire) == CRYPTO_SESSION_NO_KEY);
    assert (crypto_session_handshake_due (a, now));

    crypto_keys_t ka, kb;
    s_test_keys (ida, idb, 101, 201, &ka, &kb, wall);
    crypto_session_install (a, &ka, now);
    crypto_session_install (b, &kb, now);
    assert (ka.local_index == 0);                   //  wiped by install
    assert (!crypto_session_handshake_due (a, now));
    assert (crypto_session_keepalive_due (a));
    assert (!crypto_session_keepalive_due (a));
    //  The responder may not send before the initiator used the keys
    assert (!crypto_session_can_send (b, now));
    assert (crypto_session_encrypt (b, buf, 10, BUF, now, &wire) == CRYPTO_SESSION_NO_KEY);
    //  A keepalive (empty) confirms them
    wire = s_send (a, buf, 0, 0, now);
    assert (wire == 32);
    assert (crypto_session_decrypt (b, buf, wire, now, &plain) == CRYPTO_SESSION_OK && plain == 0);
    assert (crypto_session_can_send (b, now));
    uint32_t idx [CRYPTO_SESSION_SLOTS];
    crypto_session_indices (b, idx);
    assert (idx [0] == 201 && idx [1] == 0 && idx [2] == 0);

    //  Data both ways
    for (uint32_t n = 1; n < 200; n++) {
        wire = s_send (a, buf, n, n % 1400 + 4, now);
        s_recv_ok (b, buf, wire, n, now);
        wire = s_send (b, buf, n, 64, now);
        s_recv_ok (a, buf, wire, n, now);
    }
    //  Replayed: refused
    wire = s_send (a, buf, 7, 100, now);
    memcpy (copy, buf, wire);
    s_recv_ok (b, buf, wire, 7, now);
    assert (crypto_session_decrypt (b, copy, wire, now, &plain) == CRYPTO_SESSION_EREPLAY);
    //  Tampered: every bit position class (header counter, ciphertext, tag)
    size_t spots [] = { 8, 14, 16, 60, 115, 116, 131 };
    for (size_t s = 0; s < sizeof spots / sizeof spots [0]; s++) {
        wire = s_send (a, buf, 8, 100, now);
        memcpy (copy, buf, wire);
        copy [spots [s]] ^= 0x01;
        int rc = crypto_session_decrypt (b, copy, wire, now, &plain);
        assert (rc == CRYPTO_SESSION_EAUTH || rc == CRYPTO_SESSION_EREPLAY);
        //  The genuine packet still passes: a forgery never moves the window
        s_recv_ok (b, buf, wire, 8, now);
    }
    //  A forged far-future counter does not move the window either
    wire = s_send (a, buf, 9, 100, now);
    memcpy (copy, buf, wire);
    copy [13] ^= 0x80;                          //  counter += 2^47
    assert (crypto_session_decrypt (b, copy, wire, now, &plain) == CRYPTO_SESSION_EAUTH);
    s_recv_ok (b, buf, wire, 9, now);
    //  Header damage: type, reserved, unknown index
    wire = s_send (a, buf, 10, 100, now);
    buf [1] = 1;
    assert (crypto_session_decrypt (b, buf, wire, now, &plain) == CRYPTO_SESSION_EMALFORMED);
    buf [1] = 0;
    buf [4] ^= 0xFF;
    assert (crypto_session_decrypt (b, buf, wire, now, &plain) == CRYPTO_SESSION_EINDEX);
    assert (crypto_session_decrypt (b, buf, 31, now, &plain) == CRYPTO_SESSION_EMALFORMED);
    //  A route announcement in the session: its own type, its header as
    //  associated data; taken for data (or data for it) it does not open
    memset (buf + WIRE_DATA_HEADER, 0x31, 300);
    assert (crypto_session_encrypt_type (a, WIRE_ANNOUNCE, buf, 300, BUF, now, &wire) == CRYPTO_SESSION_OK);
    assert (wire == 332 && buf [0] == WIRE_ANNOUNCE);
    memcpy (copy, buf, wire);
    assert (crypto_session_decrypt (b, buf, wire, now, &plain) == CRYPTO_SESSION_OK && plain == 300);
    assert (buf [0] == WIRE_ANNOUNCE && buf [WIRE_DATA_HEADER] == 0x31 && buf [WIRE_DATA_HEADER + 299] == 0x31);
    assert (crypto_session_encrypt_type (a, WIRE_ANNOUNCE, copy, 300, BUF, now, &wire) == CRYPTO_SESSION_OK);
    copy [0] = WIRE_DATA;                       //  an announcement relabelled data
    assert (crypto_session_decrypt (b, copy, wire, now, &plain) == CRYPTO_SESSION_EAUTH);
    wire = s_send (a, buf, 11, 100, now);
    buf [0] = WIRE_ANNOUNCE;                    //  data relabelled an announcement
    assert (crypto_session_decrypt (b, buf, wire, now, &plain) == CRYPTO_SESSION_EAUTH);
    //  Empty, too large, or of another type: not encrypted
    assert (crypto_session_encrypt_type (a, WIRE_ANNOUNCE, buf, 0, BUF, now, &wire) == CRYPTO_SESSION_EINVAL);
    assert (crypto_session_encrypt_type (a, WIRE_ANNOUNCE, buf, WIRE_ANNOUNCE_MAX + 1, BUF, now, &wire) == CRYPTO_SESSION_EINVAL);
    assert (crypto_session_encrypt_type (a, WIRE_INITIATION, buf, 10, BUF, now, &wire) == CRYPTO_SESSION_EINVAL);
    //  Too small a buffer, too large a packet
    assert (crypto_session_encrypt (a, buf, 100, 131, now, &wire) == CRYPTO_SESSION_EINVAL);
    assert (crypto_session_encrypt (a, buf, 70000, 80000, now, &wire) == CRYPTO_SESSION_EINVAL);

    //  Reordered inside the window: sent 0..99, delivered backwards
    static uint8_t held [100][BUF];
    size_t held_len [100];
    for (uint32_t n = 0; n < 100; n++)
        held_len [n] = s_send (a, held [n], n, 200, now);
    for (int n = 99; n >= 0; n--)
        s_recv_ok (b, held [n], held_len [n], (uint32_t) n, now);

    //  Rekey by message count, under load: 100 packets each way in flight
    //  under the old keys while the handshake runs, none lost
    uint32_t sent = 0;
    while (!crypto_session_handshake_due (a, now)) {
        wire = s_send (a, buf, sent, 100, now);
        s_recv_ok (b, buf, wire, sent++, now);
        assert (sent < 2000);
    }
    static uint8_t held_b [100][BUF];
    size_t held_b_len [100];
    for (uint32_t n = 0; n < 100; n++) {
        held_len [n] = s_send (a, held [n], n, 300, now);
        held_b_len [n] = s_send (b, held_b [n], n, 300, now);
    }
    crypto_session_handshake_sent (a, now);
    uint64_t gen_a = crypto_session_generation (a);
    s_test_keys (ida, idb, 102, 202, &ka, &kb, wall + CRYPTO_SEC);
    crypto_session_install (b, &kb, now);       //  responder: next
    //  B still sends with the old keys until A uses the new ones
    wire = s_send (b, buf, 1000, 64, now);
    assert (s_index_is (buf, 101));
    s_recv_ok (a, buf, wire, 1000, now);
    crypto_session_install (a, &ka, now);       //  initiator: current
    assert (crypto_session_generation (a) != gen_a);
    assert (!crypto_session_handshake_due (a, now));
    //  A sends with the new keys at once
    wire = s_send (a, buf, 1001, 64, now);
    assert (s_index_is (buf, 202));
    s_recv_ok (b, buf, wire, 1001, now);        //  promotes next
    crypto_session_indices (b, idx);
    assert (idx [0] == 202 && idx [1] == 201 && idx [2] == 0 && idx [3] == 0);
    //  Everything that was in flight under the old keys still arrives
    for (uint32_t n = 0; n < 100; n++) {
        s_recv_ok (b, held [n], held_len [n], n, now);
        s_recv_ok (a, held_b [n], held_b_len [n], n, now);
    }
    wire = s_send (b, buf, 1002, 64, now);
    assert (s_index_is (buf, 102));
    s_recv_ok (a, buf, wire, 1002, now);

    //  Time: the initiator asks to rekey after rekey_after_time; keys are
    //  refused after reject_after_time in both directions
    now += config.rekey_after_time;
    wire = s_send (a, buf, 1, 64, now);
    assert (crypto_session_handshake_due (a, now));
    memcpy (copy, buf, wire);
    now += config.reject_after_time - config.rekey_after_time;
    assert (crypto_session_encrypt (a, buf, 64, BUF, now, &wire) == CRYPTO_SESSION_NO_KEY);
    assert (crypto_session_decrypt (b, copy, wire, now, &plain) == CRYPTO_SESSION_EEXPIRED);

    //  Retry with backoff: 1 s, 2 s, 4 s ... 30 s, +-25%, give up after 90 s
    crypto_session_t *c = crypto_session_new (NULL);
    uint64_t t0 = now;
    crypto_session_want_handshake (c, now);
    int attempts = 0;
    uint64_t last = now, expect = CRYPTO_SEC;
    for (uint64_t t = now; t < now + 200 * CRYPTO_SEC; t += CRYPTO_SEC / 100) {
        if (crypto_session_handshake_due (c, t)) {
            if (attempts > 0) {
                uint64_t gap = t - last;
                assert (gap >= expect * 3 / 4 && gap <= expect * 5 / 4 + CRYPTO_SEC / 100);
                expect = expect * 2 > 30 * CRYPTO_SEC ? 30 * CRYPTO_SEC : expect * 2;
            }
            crypto_session_handshake_sent (c, t);
            attempts++;
            last = t;
        }
    }
    assert (last - t0 < 90 * CRYPTO_SEC);
    assert (attempts >= 6 && attempts <= 9);
    if (verbose)
        printf ("  %d handshake attempts before giving up\n", attempts);
    //  Traffic asks again: due at once
    assert (crypto_session_encrypt (c, buf, 64, BUF, now + 300 * CRYPTO_SEC, &wire) == CRYPTO_SESSION_NO_KEY);
    assert (crypto_session_handshake_due (c, now + 300 * CRYPTO_SEC));
    crypto_session_destroy (&c);

    //  Byte threshold
    config.rekey_after_bytes = 10000;
    config.rekey_after_messages = 1ULL << 60;
    c = crypto_session_new (&config);
    crypto_session_t *d = crypto_session_new (&config);
    s_test_keys (ida, idb, 103, 203, &ka, &kb, wall + 2 * CRYPTO_SEC);
    crypto_session_install (c, &ka, now);
    crypto_session_install (d, &kb, now);
    int packets = 0;
    while (!crypto_session_handshake_due (c, now)) {
        wire = s_send (c, buf, 1, 1000, now);
        s_recv_ok (d, buf, wire, 1, now);
        packets++;
        assert (packets < 100);
    }
    assert (packets == 10);
    //  Expiry wipes the keypairs past the reject age, and only those
    assert (!crypto_session_expire (c, now + config.reject_after_time - 1));
    assert (crypto_session_can_send (c, now));
    uint64_t gen = crypto_session_generation (c);
    assert (crypto_session_expire (c, now + config.reject_after_time));
    assert (crypto_session_generation (c) > gen);
    assert (!crypto_session_can_send (c, now));
    crypto_session_indices (c, idx);
    assert (idx [0] == 0 && idx [1] == 0 && idx [2] == 0 && idx [3] == 0);
    assert (!crypto_session_expire (c, now + config.reject_after_time));
    crypto_session_destroy (&c);
    crypto_session_destroy (&d);

    //  Crossing initiations (both sides probe a direct path at once) while
    //  data flows over the relay: nothing in flight under the old keys is lost
    c = crypto_session_new (NULL);
    d = crypto_session_new (NULL);
    s_test_keys (ida, idb, 110, 210, &ka, &kb, wall + 3 * CRYPTO_SEC);
    crypto_session_install (c, &ka, now);
    crypto_session_install (d, &kb, now);
    wire = s_send (c, buf, 0, 0, now);
    s_recv_ok (d, buf, wire, 0, now);           //  both send with 110/210
    for (uint32_t n = 0; n < 100; n++) {
        held_len [n] = s_send (c, held [n], n, 300, now);
        held_b_len [n] = s_send (d, held_b [n], n, 300, now);
    }
    crypto_keys_t kc1, kd1, kc2, kd2;
    s_test_keys (ida, idb, 111, 211, &kc1, &kd1, wall + 4 * CRYPTO_SEC);    //  C's initiation
    s_test_keys (idb, ida, 212, 112, &kd2, &kc2, wall + 4 * CRYPTO_SEC);    //  D's initiation
    crypto_session_install (d, &kd1, now);      //  D answers C: next
    crypto_session_install (c, &kc2, now);      //  C answers D: next
    assert (crypto_session_install (c, &kc1, now));     //  C's response arrives: current, crossed
    //  D has not had its response yet: it still sends with the old keys
    wire = s_send (d, buf, 500, 64, now);
    assert (s_index_is (buf, 110));
    s_recv_ok (c, buf, wire, 500, now);
    assert (crypto_session_install (d, &kd2, now));     //  D's response arrives: crossed too
    crypto_session_indices (c, idx);
    assert (idx [0] == 111 && idx [1] == 112 && idx [3] == 110);
    //  The old keys' datagrams come late (the relay is slower): all open
    for (uint32_t n = 0; n < 100; n++) {
        s_recv_ok (d, held [n], held_len [n], n, now);
        s_recv_ok (c, held_b [n], held_b_len [n], n, now);
    }
    //  And the new keys work both ways
    wire = s_send (c, buf, 501, 64, now);
    assert (s_index_is (buf, 211));
    s_recv_ok (d, buf, wire, 501, now);
    wire = s_send (d, buf, 502, 64, now);
    assert (s_index_is (buf, 112));
    s_recv_ok (c, buf, wire, 502, now);
    //  Then one more handshake right after (the other side's next probe),
    //  while C's datagrams under the first keys are still on the relay
    for (uint32_t n = 0; n < 100; n++)
        held_len [n] = s_send (c, held [n], n, 300, now);
    crypto_keys_t kc3, kd3;
    s_test_keys (idb, ida, 213, 113, &kd3, &kc3, wall + 5 * CRYPTO_SEC);    //  D initiates
    crypto_session_install (c, &kc3, now);      //  C answers: next
    assert (!crypto_session_install (d, &kd3, now));    //  D: current, not crossed
    wire = s_send (d, buf, 503, 64, now);
    assert (s_index_is (buf, 113));
    s_recv_ok (c, buf, wire, 503, now);         //  C promotes
    crypto_session_indices (d, idx);
    assert (idx [0] == 213 && idx [1] == 212 && idx [3] == 211);
    for (uint32_t n = 0; n < 100; n++)
        s_recv_ok (d, held [n], held_len [n], n, now);
    //  The retired keys go with their age like the others
    assert (crypto_session_expire (c, now + config.reject_after_time));
    crypto_session_indices (c, idx);
    assert (idx [3] == 0);
    crypto_session_destroy (&c);
    crypto_session_destroy (&d);

    crypto_session_destroy (&a);
    crypto_session_destroy (&b);
    assert (a == NULL);
    crypto_identity_destroy (&ida);
    crypto_identity_destroy (&idb);
}
