/*  crypto_noise: the symmetric state (h, ck, k, n) and the two IKpsk2 messages,
    written token by token from the Noise spec so it can be checked against it:
      <- s
      ...
      -> e, es, s, ss          (payload: TAI64N timestamp)
      <- e, ee, se, psk        (payload: empty)                                  */
#include "crypto_noise.h"

#include <assert.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HASHLEN     64
#define BLOCKLEN    128
#define KEYLEN      32

typedef enum {
    S_INITIATOR_START, S_INITIATION_SENT,
    S_RESPONDER_START, S_INITIATION_READ,
    S_DONE, S_FAILED
} s_state_t;

struct _crypto_noise_t {
    s_state_t state;
    bool initiator;
    const crypto_identity_t *identity;
    uint8_t h [HASHLEN];
    uint8_t ck [HASHLEN];
    uint8_t k [KEYLEN];
    bool has_k;
    uint64_t n;
    uint8_t e_secret [32];
    uint8_t e_public [32];
    bool fixed_e;
    uint8_t rs [32];                    //  remote static
    uint8_t re [32];                    //  remote ephemeral
    uint8_t psk [32];
    uint32_t local_index;
    uint32_t remote_index;
    uint8_t send_key [KEYLEN];
    uint8_t recv_key [KEYLEN];
};

static int
s_fail (char *err, size_t errsize, int code, const char *fmt, ...)
{
    if (err && errsize) {
        va_list args;
        va_start (args, fmt);
        vsnprintf (err, errsize, fmt, args);
        va_end (args);
    }
    return code;
}

//  --------------------------------------------------------------------------
//  Primitives: HASH, HMAC, HKDF, AEAD with the Noise nonce

static void
s_hash2 (uint8_t out [HASHLEN], const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    crypto_generichash_state st;
    crypto_generichash_init (&st, NULL, 0, HASHLEN);
    crypto_generichash_update (&st, a, a_len);
    if (b_len)
        crypto_generichash_update (&st, b, b_len);
    crypto_generichash_final (&st, out, HASHLEN);
    sodium_memzero (&st, sizeof st);
}

//  RFC 2104 with B = 128 (BLAKE2b's block), L = 64. Written out rather than using
//  BLAKE2b's own keyed mode because Noise defines HKDF over HMAC-HASH.
void
crypto_noise_hmac (uint8_t out [64], const uint8_t *key, size_t key_len, const uint8_t *data, size_t data_len)
{
    uint8_t k [BLOCKLEN] = { 0 };
    if (key_len > BLOCKLEN)
        s_hash2 (k, key, key_len, NULL, 0);
    else
        memcpy (k, key, key_len);
    uint8_t pad [BLOCKLEN];
    uint8_t inner [HASHLEN];
    for (int i = 0; i < BLOCKLEN; i++)
        pad [i] = k [i] ^ 0x36;
    s_hash2 (inner, pad, BLOCKLEN, data, data_len);
    for (int i = 0; i < BLOCKLEN; i++)
        pad [i] = k [i] ^ 0x5c;
    s_hash2 (out, pad, BLOCKLEN, inner, HASHLEN);
    sodium_memzero (k, sizeof k);
    sodium_memzero (pad, sizeof pad);
    sodium_memzero (inner, sizeof inner);
}

//  Noise HKDF(chaining_key, ikm, n) with n = 2 or 3 outputs of HASHLEN each
static void
s_hkdf (const uint8_t ck [HASHLEN], const uint8_t *ikm, size_t ikm_len,
        uint8_t *out1, uint8_t *out2, uint8_t *out3)
{
    uint8_t temp [HASHLEN];
    uint8_t buf [HASHLEN + 1];
    crypto_noise_hmac (temp, ck, HASHLEN, ikm, ikm_len);
    buf [0] = 1;
    crypto_noise_hmac (out1, temp, HASHLEN, buf, 1);
    memcpy (buf, out1, HASHLEN);
    buf [HASHLEN] = 2;
    crypto_noise_hmac (out2, temp, HASHLEN, buf, HASHLEN + 1);
    if (out3) {
        memcpy (buf, out2, HASHLEN);
        buf [HASHLEN] = 3;
        crypto_noise_hmac (out3, temp, HASHLEN, buf, HASHLEN + 1);
    }
    sodium_memzero (temp, sizeof temp);
    sodium_memzero (buf, sizeof buf);
}

static void
s_nonce (uint8_t nonce [12], uint64_t n)
{
    memset (nonce, 0, 4);
    crypto_wire_put64 (nonce + 4, n);
}

//  --------------------------------------------------------------------------
//  Symmetric state

static void
s_initialize_symmetric (crypto_noise_t *self)
{
    //  The protocol name is shorter than HASHLEN: h = name padded with zeros
    const char *name = CRYPTO_NOISE_PROTOCOL;
    memset (self->h, 0, HASHLEN);
    memcpy (self->h, name, strlen (name));
    memcpy (self->ck, self->h, HASHLEN);
    self->has_k = false;
    self->n = 0;
}

static void
s_mix_hash (crypto_noise_t *self, const uint8_t *data, size_t size)
{
    uint8_t h [HASHLEN];
    s_hash2 (h, self->h, HASHLEN, data, size);
    memcpy (self->h, h, HASHLEN);
}

static void
s_mix_key (crypto_noise_t *self, const uint8_t *ikm, size_t size)
{
    uint8_t ck [HASHLEN], temp_k [HASHLEN];
    s_hkdf (self->ck, ikm, size, ck, temp_k, NULL);
    memcpy (self->ck, ck, HASHLEN);
    memcpy (self->k, temp_k, KEYLEN);       //  truncated to 32 bytes (HASHLEN 64)
    self->has_k = true;
    self->n = 0;
    sodium_memzero (ck, sizeof ck);
    sodium_memzero (temp_k, sizeof temp_k);
}

static void
s_mix_key_and_hash (crypto_noise_t *self, const uint8_t *ikm, size_t size)
{
    uint8_t ck [HASHLEN], temp_h [HASHLEN], temp_k [HASHLEN];
    s_hkdf (self->ck, ikm, size, ck, temp_h, temp_k);
    memcpy (self->ck, ck, HASHLEN);
    s_mix_hash (self, temp_h, HASHLEN);
    memcpy (self->k, temp_k, KEYLEN);
    self->has_k = true;
    self->n = 0;
    sodium_memzero (ck, sizeof ck);
    sodium_memzero (temp_h, sizeof temp_h);
    sodium_memzero (temp_k, sizeof temp_k);
}

//  Every EncryptAndHash in IKpsk2 happens after a MixKey, so k is always set
static void
s_encrypt_and_hash (crypto_noise_t *self, const uint8_t *plain, size_t size, uint8_t *out)
{
    assert (self->has_k);
    uint8_t nonce [12];
    s_nonce (nonce, self->n++);
    crypto_aead_chacha20poly1305_ietf_encrypt (out, NULL, plain, size, self->h, HASHLEN,
                                               NULL, nonce, self->k);
    s_mix_hash (self, out, size + 16);
}

static int
s_decrypt_and_hash (crypto_noise_t *self, const uint8_t *cipher, size_t size, uint8_t *out)
{
    assert (self->has_k && size >= 16);
    uint8_t nonce [12];
    s_nonce (nonce, self->n++);
    if (crypto_aead_chacha20poly1305_ietf_decrypt (out, NULL, NULL, cipher, size, self->h, HASHLEN,
                                                   nonce, self->k) != 0)
        return -1;
    s_mix_hash (self, cipher, size);
    return 0;
}

static void
s_split (crypto_noise_t *self)
{
    uint8_t k1 [HASHLEN], k2 [HASHLEN];
    s_hkdf (self->ck, NULL, 0, k1, k2, NULL);
    memcpy (self->initiator ? self->send_key : self->recv_key, k1, KEYLEN);
    memcpy (self->initiator ? self->recv_key : self->send_key, k2, KEYLEN);
    sodium_memzero (k1, sizeof k1);
    sodium_memzero (k2, sizeof k2);
    sodium_memzero (self->ck, HASHLEN);
    sodium_memzero (self->k, KEYLEN);
    sodium_memzero (self->e_secret, 32);
}

static void
s_keys (crypto_noise_t *self, crypto_keys_t *keys)
{
    memcpy (keys->send_key, self->send_key, KEYLEN);
    memcpy (keys->recv_key, self->recv_key, KEYLEN);
    keys->local_index = self->local_index;
    keys->remote_index = self->remote_index;
    keys->initiator = self->initiator;
}

//  mac1 = BLAKE2b-128 (key = BLAKE2b-256 ("mac1----" || receiver static), msg)
static void
s_mac1 (uint8_t out [16], const uint8_t receiver_static [32], const uint8_t *msg, size_t size)
{
    uint8_t key [32];
    crypto_generichash_state st;
    crypto_generichash_init (&st, NULL, 0, sizeof key);
    crypto_generichash_update (&st, (const uint8_t *) "mac1----", 8);
    crypto_generichash_update (&st, receiver_static, 32);
    crypto_generichash_final (&st, key, sizeof key);
    crypto_generichash (out, 16, msg, size, key, sizeof key);
}

static bool
s_mac1_ok (const uint8_t receiver_static [32], const uint8_t *msg, size_t offset)
{
    uint8_t mac [16];
    s_mac1 (mac, receiver_static, msg, offset);
    return sodium_memcmp (mac, msg + offset, 16) == 0;
}

static void
s_new_ephemeral (crypto_noise_t *self)
{
    if (!self->fixed_e)
        randombytes_buf (self->e_secret, 32);
    crypto_scalarmult_base (self->e_public, self->e_secret);
}

//  --------------------------------------------------------------------------

static crypto_noise_t *
s_new (const crypto_identity_t *identity, const uint8_t *psk, bool initiator)
{
    if (sodium_init () < 0)
        return NULL;
    crypto_noise_t *self = sodium_malloc (sizeof *self);
    assert (self);
    memset (self, 0, sizeof *self);
    self->identity = identity;
    self->initiator = initiator;
    if (psk)
        memcpy (self->psk, psk, 32);
    s_initialize_symmetric (self);
    s_mix_hash (self, (const uint8_t *) CRYPTO_NOISE_PROLOGUE, strlen (CRYPTO_NOISE_PROLOGUE));
    return self;
}

crypto_noise_t *
crypto_noise_new_initiator (const crypto_identity_t *identity, const uint8_t remote_static [32],
                            const uint8_t *psk)
{
    crypto_noise_t *self = s_new (identity, psk, true);
    if (self) {
        memcpy (self->rs, remote_static, 32);
        s_mix_hash (self, self->rs, 32);             //  pre-message: <- s
        self->state = S_INITIATOR_START;
    }
    return self;
}

crypto_noise_t *
crypto_noise_new_responder (const crypto_identity_t *identity, const uint8_t *psk)
{
    crypto_noise_t *self = s_new (identity, psk, false);
    if (self) {
        s_mix_hash (self, crypto_identity_public (identity), 32);
        self->state = S_RESPONDER_START;
    }
    return self;
}

void
crypto_noise_destroy (crypto_noise_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sodium_free (*self_p);          //  wipes the whole state
        *self_p = NULL;
    }
}

void
crypto_noise_set_ephemeral (crypto_noise_t *self, const uint8_t secret [32])
{
    memcpy (self->e_secret, secret, 32);
    self->fixed_e = true;
}

uint32_t
crypto_noise_local_index (const crypto_noise_t *self)
{
    return self->local_index;
}

void
crypto_noise_handshake_hash (const crypto_noise_t *self, uint8_t out [64])
{
    memcpy (out, self->h, HASHLEN);
}

//  TAI64 label of the Unix epoch is 2^62 + 10. Nanoseconds are rounded down to
//  20 ms, as WireGuard does, so the stamp does not leak a fine clock and at most
//  50 initiations per second per peer can be accepted.
void
crypto_noise_tai64n (uint64_t wall_ns, uint8_t out [12])
{
    uint64_t secs = 0x400000000000000aULL + wall_ns / 1000000000ULL;
    uint32_t nanos = (uint32_t) (wall_ns % 1000000000ULL);
    nanos -= nanos % 20000000U;
    for (int i = 0; i < 8; i++)
        out [i] = (uint8_t) (secs >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        out [8 + i] = (uint8_t) (nanos >> (24 - 8 * i));
}

int
crypto_noise_write_initiation (crypto_noise_t *self, uint32_t local_index, uint64_t wall_ns,
                               uint8_t out [WIRE_INITIATION_SIZE])
{
    if (self->state != S_INITIATOR_START)
        return CRYPTO_NOISE_ESTATE;
    crypto_wire_initiation_t msg;
    memset (&msg, 0, sizeof msg);
    uint8_t dh [32];
    self->local_index = local_index;
    msg.sender_index = local_index;
    //  e
    s_new_ephemeral (self);
    memcpy (msg.ephemeral, self->e_public, 32);
    s_mix_hash (self, self->e_public, 32);
    s_mix_key (self, self->e_public, 32);
    //  es
    if (crypto_scalarmult (dh, self->e_secret, self->rs) != 0) {
        self->state = S_FAILED;
        return CRYPTO_NOISE_EDH;
    }
    s_mix_key (self, dh, 32);
    //  s
    s_encrypt_and_hash (self, crypto_identity_public (self->identity), 32, msg.encrypted_static);
    //  ss
    if (crypto_identity_dh (self->identity, self->rs, dh) != 0) {
        self->state = S_FAILED;
        return CRYPTO_NOISE_EDH;
    }
    s_mix_key (self, dh, 32);
    sodium_memzero (dh, sizeof dh);
    //  payload
    uint8_t stamp [12];
    crypto_noise_tai64n (wall_ns, stamp);
    s_encrypt_and_hash (self, stamp, 12, msg.encrypted_timestamp);
    crypto_wire_initiation_encode (&msg, out);
    s_mac1 (out + WIRE_INITIATION_MAC1, self->rs, out, WIRE_INITIATION_MAC1);
    self->state = S_INITIATION_SENT;
    return CRYPTO_NOISE_OK;
}

int
crypto_noise_read_initiation (crypto_noise_t *self, const uint8_t *buf, size_t size,
                              crypto_noise_lookup_fn *lookup, void *arg,
                              uint8_t *remote_static, char *err, size_t errsize)
{
    if (self->state != S_RESPONDER_START)
        return s_fail (err, errsize, CRYPTO_NOISE_ESTATE, "handshake object already used");
    self->state = S_FAILED;             //  until proven otherwise
    crypto_wire_initiation_t msg;
    if (crypto_wire_initiation_decode (&msg, buf, size, err, errsize))
        return CRYPTO_NOISE_EMALFORMED;
    if (!s_mac1_ok (crypto_identity_public (self->identity), buf, WIRE_INITIATION_MAC1))
        return s_fail (err, errsize, CRYPTO_NOISE_EMAC, "handshake initiation mac1 is wrong "
                       "(not meant for this node's key)");
    uint8_t dh [32];
    //  e
    memcpy (self->re, msg.ephemeral, 32);
    s_mix_hash (self, self->re, 32);
    s_mix_key (self, self->re, 32);
    //  es
    if (crypto_identity_dh (self->identity, self->re, dh) != 0)
        return s_fail (err, errsize, CRYPTO_NOISE_EDH, "initiator ephemeral key is a low-order point");
    s_mix_key (self, dh, 32);
    //  s
    if (s_decrypt_and_hash (self, msg.encrypted_static, 48, self->rs))
        return s_fail (err, errsize, CRYPTO_NOISE_EAUTH, "handshake initiation static key does not decrypt");
    uint8_t *last_stamp = lookup ? lookup (arg, self->rs) : NULL;
    if (!last_stamp) {
        char b64 [CRYPTO_KEY_BASE64_SIZE];
        crypto_key_to_base64 (self->rs, b64);
        return s_fail (err, errsize, CRYPTO_NOISE_EUNKNOWN, "handshake from unknown key %s refused", b64);
    }
    //  ss
    if (crypto_identity_dh (self->identity, self->rs, dh) != 0)
        return s_fail (err, errsize, CRYPTO_NOISE_EDH, "initiator static key is a low-order point");
    s_mix_key (self, dh, 32);
    sodium_memzero (dh, sizeof dh);
    //  payload
    uint8_t stamp [12];
    if (s_decrypt_and_hash (self, msg.encrypted_timestamp, 28, stamp))
        return s_fail (err, errsize, CRYPTO_NOISE_EAUTH, "handshake initiation timestamp does not decrypt");
    if (memcmp (stamp, last_stamp, 12) <= 0)
        return s_fail (err, errsize, CRYPTO_NOISE_EREPLAY,
                       "handshake initiation replayed (timestamp not newer than the last one)");
    memcpy (last_stamp, stamp, 12);
    self->remote_index = msg.sender_index;
    if (remote_static)
        memcpy (remote_static, self->rs, 32);
    self->state = S_INITIATION_READ;
    return CRYPTO_NOISE_OK;
}

int
crypto_noise_write_response (crypto_noise_t *self, uint32_t local_index,
                             uint8_t out [WIRE_RESPONSE_SIZE], crypto_keys_t *keys)
{
    if (self->state != S_INITIATION_READ)
        return CRYPTO_NOISE_ESTATE;
    self->state = S_FAILED;
    crypto_wire_response_t msg;
    memset (&msg, 0, sizeof msg);
    self->local_index = local_index;
    msg.sender_index = local_index;
    msg.receiver_index = self->remote_index;
    uint8_t dh [32];
    //  e
    s_new_ephemeral (self);
    memcpy (msg.ephemeral, self->e_public, 32);
    s_mix_hash (self, self->e_public, 32);
    s_mix_key (self, self->e_public, 32);
    //  ee
    if (crypto_scalarmult (dh, self->e_secret, self->re) != 0)
        return CRYPTO_NOISE_EDH;
    s_mix_key (self, dh, 32);
    //  se
    if (crypto_scalarmult (dh, self->e_secret, self->rs) != 0)
        return CRYPTO_NOISE_EDH;
    s_mix_key (self, dh, 32);
    sodium_memzero (dh, sizeof dh);
    //  psk
    s_mix_key_and_hash (self, self->psk, 32);
    //  payload (empty)
    s_encrypt_and_hash (self, NULL, 0, msg.encrypted_nothing);
    crypto_wire_response_encode (&msg, out);
    s_mac1 (out + WIRE_RESPONSE_MAC1, self->rs, out, WIRE_RESPONSE_MAC1);
    s_split (self);
    s_keys (self, keys);
    self->state = S_DONE;
    return CRYPTO_NOISE_OK;
}

int
crypto_noise_read_response (crypto_noise_t *self, const uint8_t *buf, size_t size,
                            crypto_keys_t *keys, char *err, size_t errsize)
{
    if (self->state != S_INITIATION_SENT)
        return s_fail (err, errsize, CRYPTO_NOISE_ESTATE, "no handshake initiation outstanding");
    crypto_wire_response_t msg;
    //  Bad bytes before the real response must not kill the attempt: the state
    //  only changes once the response authenticated, so work on a copy.
    if (crypto_wire_response_decode (&msg, buf, size, err, errsize))
        return CRYPTO_NOISE_EMALFORMED;
    if (msg.receiver_index != self->local_index)
        return s_fail (err, errsize, CRYPTO_NOISE_EMALFORMED, "handshake response for index %u, expected %u",
                       msg.receiver_index, self->local_index);
    if (!s_mac1_ok (crypto_identity_public (self->identity), buf, WIRE_RESPONSE_MAC1))
        return s_fail (err, errsize, CRYPTO_NOISE_EMAC, "handshake response mac1 is wrong");
    crypto_noise_t *work = sodium_malloc (sizeof *work);
    assert (work);
    memcpy (work, self, sizeof *work);
    uint8_t dh [32];
    int rc = CRYPTO_NOISE_OK;
    //  e
    memcpy (work->re, msg.ephemeral, 32);
    s_mix_hash (work, work->re, 32);
    s_mix_key (work, work->re, 32);
    //  ee
    if (crypto_scalarmult (dh, work->e_secret, work->re) != 0)
        rc = s_fail (err, errsize, CRYPTO_NOISE_EDH, "responder ephemeral key is a low-order point");
    if (rc == CRYPTO_NOISE_OK) {
        s_mix_key (work, dh, 32);
        //  se
        if (crypto_identity_dh (work->identity, work->re, dh) != 0)
            rc = s_fail (err, errsize, CRYPTO_NOISE_EDH, "responder ephemeral key is a low-order point");
    }
    if (rc == CRYPTO_NOISE_OK) {
        s_mix_key (work, dh, 32);
        //  psk
        s_mix_key_and_hash (work, work->psk, 32);
        //  payload (empty)
        uint8_t nothing [1];
        if (s_decrypt_and_hash (work, msg.encrypted_nothing, 16, nothing))
            rc = s_fail (err, errsize, CRYPTO_NOISE_EAUTH,
                         "handshake response does not authenticate (tampered, or a different network key)");
    }
    sodium_memzero (dh, sizeof dh);
    if (rc == CRYPTO_NOISE_OK) {
        work->remote_index = msg.sender_index;
        s_split (work);
        memcpy (self, work, sizeof *self);
        s_keys (self, keys);
        self->state = S_DONE;
    }
    sodium_free (work);
    return rc;
}

//  --------------------------------------------------------------------------
//  Self test

typedef struct {
    uint8_t key [32];
    uint8_t stamp [12];
} s_test_peer_t;

static uint8_t *
s_test_lookup (void *arg, const uint8_t static_key [32])
{
    s_test_peer_t *peer = (s_test_peer_t *) arg;
    return memcmp (peer->key, static_key, 32) == 0 ? peer->stamp : NULL;
}

static void
s_hex (const char *hex, uint8_t *out, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        unsigned v;
        assert (sscanf (hex + 2 * i, "%2x", &v) == 1);
        out [i] = (uint8_t) v;
    }
}

//  One complete handshake; returns 0 or the first failing result
static int
s_handshake (crypto_identity_t *ini, crypto_identity_t *res, const uint8_t *psk_i, const uint8_t *psk_r,
             s_test_peer_t *peer, uint64_t wall, crypto_keys_t *ki, crypto_keys_t *kr,
             uint8_t m1 [148], uint8_t m2 [92])
{
    char err [160];
    crypto_noise_t *i = crypto_noise_new_initiator (ini, crypto_identity_public (res), psk_i);
    crypto_noise_t *r = crypto_noise_new_responder (res, psk_r);
    int rc = crypto_noise_write_initiation (i, 0x11111111, wall, m1);
    if (rc == 0)
        rc = crypto_noise_read_initiation (r, m1, 148, s_test_lookup, peer, NULL, err, sizeof err);
    if (rc == 0)
        rc = crypto_noise_write_response (r, 0x22222222, m2, kr);
    if (rc == 0)
        rc = crypto_noise_read_response (i, m2, 92, ki, err, sizeof err);
    crypto_noise_destroy (&i);
    crypto_noise_destroy (&r);
    return rc;
}

void
crypto_noise_test (bool verbose)
{
    char err [160];
    //  HMAC-BLAKE2b-512 known answer, computed independently with Python's
    //  hmac.new (b"key", b"The quick brown fox...", hashlib.blake2b)
    uint8_t mac [64], expect [64];
    const char *text = "The quick brown fox jumps over the lazy dog";
    crypto_noise_hmac (mac, (const uint8_t *) "key", 3, (const uint8_t *) text, strlen (text));
    s_hex ("92294f92c0dfb9b00ec9ae8bd94d7e7d8a036b885a499f149dfe2fd2199394aa"
           "af6b8894a1730cccb2cd050f9bcf5062a38b51b0dab33207f8ef35ae2c9df51b", expect, 64);
    assert (memcmp (mac, expect, 64) == 0);

    //  Known answer for the whole handshake: fixed static and ephemeral keys, PSK
    //  and time; expected bytes from an independent Python implementation of the
    //  Noise spec (services/crypto/noise_kat.py, pyca/cryptography + hashlib).
    uint8_t sk_i [32], sk_r [32], ek_i [32], ek_r [32], psk [32];
    for (int b = 0; b < 32; b++) {
        sk_i [b] = (uint8_t) (b + 1);
        sk_r [b] = (uint8_t) (b + 0x41);
        ek_i [b] = (uint8_t) (b + 0x81);
        ek_r [b] = (uint8_t) (b + 0xC1);
        psk [b] = (uint8_t) (0xF0 ^ b);
    }
    crypto_identity_t *ini = crypto_identity_new_from_secret (sk_i);
    crypto_identity_t *res = crypto_identity_new_from_secret (sk_r);
    s_test_peer_t peer;
    memcpy (peer.key, crypto_identity_public (ini), 32);
    memset (peer.stamp, 0, 12);
    uint64_t wall = 1700000000ULL * 1000000000ULL + 123456789ULL;
    crypto_noise_t *i = crypto_noise_new_initiator (ini, crypto_identity_public (res), psk);
    crypto_noise_t *r = crypto_noise_new_responder (res, psk);
    crypto_noise_set_ephemeral (i, ek_i);
    crypto_noise_set_ephemeral (r, ek_r);
    uint8_t m1 [148], m2 [92];
    crypto_keys_t ki, kr;
    assert (crypto_noise_write_initiation (i, 0x01020304, wall, m1) == 0);
    uint8_t rs [32];
    assert (crypto_noise_read_initiation (r, m1, sizeof m1, s_test_lookup, &peer, rs, err, sizeof err) == 0);
    assert (memcmp (rs, crypto_identity_public (ini), 32) == 0);
    assert (crypto_noise_write_response (r, 0x05060708, m2, &kr) == 0);
    assert (crypto_noise_read_response (i, m2, sizeof m2, &ki, err, sizeof err) == 0);
    uint8_t hi [64], hr [64];
    crypto_noise_handshake_hash (i, hi);
    crypto_noise_handshake_hash (r, hr);
    assert (memcmp (hi, hr, 64) == 0);
    if (verbose) {
        printf ("  m1 ");
        for (int b = 0; b < 148; b++) printf ("%02x", m1 [b]);
        printf ("\n  m2 ");
        for (int b = 0; b < 92; b++) printf ("%02x", m2 [b]);
        printf ("\n  send ");
        for (int b = 0; b < 32; b++) printf ("%02x", ki.send_key [b]);
        printf ("\n  recv ");
        for (int b = 0; b < 32; b++) printf ("%02x", ki.recv_key [b]);
        printf ("\n");
    }
#include "crypto_noise_kat.inc"
    uint8_t kat [148];
    s_hex (KAT_M1, kat, 148);
    assert (memcmp (m1, kat, 148) == 0);
    s_hex (KAT_M2, kat, 92);
    assert (memcmp (m2, kat, 92) == 0);
    s_hex (KAT_SEND, kat, 32);
    assert (memcmp (ki.send_key, kat, 32) == 0);
    s_hex (KAT_RECV, kat, 32);
    assert (memcmp (ki.recv_key, kat, 32) == 0);
    s_hex (KAT_HASH, kat, 64);
    assert (memcmp (hi, kat, 64) == 0);
    //  Both sides agree, mirrored
    assert (memcmp (ki.send_key, kr.recv_key, 32) == 0);
    assert (memcmp (ki.recv_key, kr.send_key, 32) == 0);
    assert (ki.local_index == 0x01020304 && ki.remote_index == 0x05060708);
    assert (kr.local_index == 0x05060708 && kr.remote_index == 0x01020304);
    assert (ki.initiator && !kr.initiator);
    //  A finished object refuses to be used again
    assert (crypto_noise_write_initiation (i, 1, wall, m1) == CRYPTO_NOISE_ESTATE);
    assert (crypto_noise_read_response (i, m2, sizeof m2, &ki, err, sizeof err) == CRYPTO_NOISE_ESTATE);
    crypto_noise_destroy (&i);
    crypto_noise_destroy (&r);
    assert (i == NULL);

    //  Random keys, no PSK on either side: both derive the same keys
    crypto_identity_destroy (&ini);
    crypto_identity_destroy (&res);
    ini = crypto_identity_new ();
    res = crypto_identity_new ();
    memcpy (peer.key, crypto_identity_public (ini), 32);
    memset (peer.stamp, 0, 12);
    wall += 1000000000ULL;
    assert (s_handshake (ini, res, NULL, NULL, &peer, wall, &ki, &kr, m1, m2) == 0);
    assert (memcmp (ki.send_key, kr.recv_key, 32) == 0 && memcmp (ki.recv_key, kr.send_key, 32) == 0);
    assert (memcmp (ki.send_key, ki.recv_key, 32) != 0);

    //  The same initiation again: replayed timestamp refused
    crypto_noise_t *r2 = crypto_noise_new_responder (res, NULL);
    assert (crypto_noise_read_initiation (r2, m1, 148, s_test_lookup, &peer, NULL, err, sizeof err)
            == CRYPTO_NOISE_EREPLAY);
    if (verbose)
        printf ("  %s\n", err);
    crypto_noise_destroy (&r2);
    //  Within the same 20 ms the stamp is equal: refused as well
    assert (s_handshake (ini, res, NULL, NULL, &peer, wall + 1000, &ki, &kr, m1, m2) == CRYPTO_NOISE_EREPLAY);
    wall += 20000000ULL;
    assert (s_handshake (ini, res, NULL, NULL, &peer, wall, &ki, &kr, m1, m2) == 0);

    //  Wrong PSK (one side has one, or they differ): the response fails to
    //  authenticate at the initiator
    wall += 1000000000ULL;
    assert (s_handshake (ini, res, psk, NULL, &peer, wall, &ki, &kr, m1, m2) == CRYPTO_NOISE_EAUTH);
    wall += 1000000000ULL;
    uint8_t psk2 [32];
    memcpy (psk2, psk, 32);
    psk2 [31] ^= 1;
    assert (s_handshake (ini, res, psk, psk2, &peer, wall, &ki, &kr, m1, m2) == CRYPTO_NOISE_EAUTH);
    wall += 1000000000ULL;
    assert (s_handshake (ini, res, psk, psk, &peer, wall, &ki, &kr, m1, m2) == 0);

    //  Unknown initiator key: refused by the responder
    crypto_identity_t *stranger = crypto_identity_new ();
    wall += 1000000000ULL;
    assert (s_handshake (stranger, res, NULL, NULL, &peer, wall, &ki, &kr, m1, m2) == CRYPTO_NOISE_EUNKNOWN);
    //  Initiation meant for another node: mac1 refuses it before any DH
    crypto_noise_t *other = crypto_noise_new_responder (stranger, NULL);
    wall += 1000000000ULL;
    i = crypto_noise_new_initiator (ini, crypto_identity_public (res), NULL);
    assert (crypto_noise_write_initiation (i, 9, wall, m1) == 0);
    assert (crypto_noise_read_initiation (other, m1, 148, s_test_lookup, &peer, NULL, err, sizeof err)
            == CRYPTO_NOISE_EMAC);
    crypto_noise_destroy (&other);
    crypto_noise_destroy (&i);
    crypto_identity_destroy (&stranger);

    //  Flip every bit of every byte of message 1, then of message 2: each fails,
    //  but for the initiation's mac2, which is nat's (the MAC under a cookie:
    //  services/nat/nat_cookie_path.c): the handshake does not cover it
    int tampered = 0;
    for (size_t pos = 0; pos < 148 + 92; pos++) {
        for (int bit = 0; bit < 8; bit += 7) {
            wall += 1000000000ULL;
            i = crypto_noise_new_initiator (ini, crypto_identity_public (res), psk);
            r = crypto_noise_new_responder (res, psk);
            assert (crypto_noise_write_initiation (i, 1, wall, m1) == 0);
            if (pos < 148)
                m1 [pos] ^= (uint8_t) (1 << bit);
            int rc = crypto_noise_read_initiation (r, m1, 148, s_test_lookup, &peer, NULL, err, sizeof err);
            bool mac2 = pos >= WIRE_INITIATION_MAC2 && pos < 148;
            if (mac2)
                assert (rc == 0);
            else
            if (pos < 148)
                assert (rc < 0);
            else {
                assert (rc == 0);
                assert (crypto_noise_write_response (r, 2, m2, &kr) == 0);
                m2 [pos - 148] ^= (uint8_t) (1 << bit);
                assert (crypto_noise_read_response (i, m2, 92, &ki, err, sizeof err) < 0);
                //  The untampered response still completes the handshake
                m2 [pos - 148] ^= (uint8_t) (1 << bit);
                assert (crypto_noise_read_response (i, m2, 92, &ki, err, sizeof err) == 0);
                assert (memcmp (ki.send_key, kr.recv_key, 32) == 0);
            }
            tampered += !mac2;
            crypto_noise_destroy (&i);
            crypto_noise_destroy (&r);
        }
    }
    if (verbose)
        printf ("  %d tampered handshake messages refused\n", tampered);
    sodium_memzero (&ki, sizeof ki);
    sodium_memzero (&kr, sizeof kr);
    crypto_identity_destroy (&ini);
    crypto_identity_destroy (&res);
}
