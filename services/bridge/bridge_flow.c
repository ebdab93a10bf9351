/*  bridge_flow: the AEAD of one bridge flow. Two direction keys derived from
    the flow key (so both ends may count from 0 without ever sharing a key and
    nonce), the counter as nonce, the header as associated data, and the
    tunnel's replay window (libnode/node_replay). docs/bridge-wire.md. */
#include "bridge_flow.h"
#include "node_replay.h"
#include "../../schemas/bridge_wire.h"

#include <sodium.h>
#include <assert.h>
#include <stdio.h>
#include <string.h>

#define S_C2P   "bridge c2p"
#define S_P2C   "bridge p2c"

//  In sodium_malloc'ed memory: guard pages, locked, wiped by sodium_free
typedef struct {
    uint8_t tx [BRIDGE_WIRE_KEY_SIZE];
    uint8_t rx [BRIDGE_WIRE_KEY_SIZE];
} s_keys_t;

struct _bridge_flow_t {
    s_keys_t *keys;
    bridge_cipher_t cipher;             //  resolved: never AUTO
    uint64_t send_counter;              //  next counter to seal
    node_replay_t *replay;
    bridge_flow_stats_t stats;
};

_Static_assert (crypto_aead_aes256gcm_NPUBBYTES == BRIDGE_WIRE_NONCE_SIZE
                && crypto_aead_chacha20poly1305_IETF_NPUBBYTES == BRIDGE_WIRE_NONCE_SIZE, "96-bit nonces");
_Static_assert (crypto_aead_aes256gcm_ABYTES == BRIDGE_WIRE_TAG_SIZE
                && crypto_aead_chacha20poly1305_IETF_ABYTES == BRIDGE_WIRE_TAG_SIZE, "16-byte tags");
_Static_assert (-BRIDGE_FLOW_EXHAUSTED == BRIDGE_FLOW_REASON_COUNT, "BRIDGE_FLOW_REASON_COUNT follows the reasons");

const char *
bridge_flow_cipher_error (bridge_cipher_t cipher)
{
    if (sodium_init () < 0)
        return "libsodium could not be initialised";
    if (cipher == BRIDGE_CIPHER_AES256GCM && !crypto_aead_aes256gcm_is_available ())
        return "cipher aes256gcm needs a CPU with AES-NI and PCLMUL, which this one lacks: "
               "use auto or chacha20poly1305 (on both ends)";
    if ((unsigned) cipher >= BRIDGE_CIPHER_COUNT)
        return "unknown cipher";
    return NULL;
}

//  The names are schemas/bridge.def's (bridge_ciphers)
int
bridge_flow_cipher_parse (const char *name)
{
    for (int i = 0; name && i < BRIDGE_CIPHER_COUNT; i++)
        if (strcmp (name, bridge_ciphers [i].name) == 0)
            return i;
    return -1;
}

const char *
bridge_flow_cipher_name (bridge_cipher_t cipher)
{
    return (unsigned) cipher < BRIDGE_CIPHER_COUNT ? bridge_ciphers [cipher].name : "?";
}

//  BLAKE2b-256 keyed with the flow key over the direction's label
static void
s_derive (uint8_t out [BRIDGE_WIRE_KEY_SIZE], const uint8_t key [BRIDGE_WIRE_KEY_SIZE], const char *label)
{
    crypto_generichash (out, BRIDGE_WIRE_KEY_SIZE, (const uint8_t *) label, strlen (label),
                        key, BRIDGE_WIRE_KEY_SIZE);
}

bridge_flow_t *
bridge_flow_new (const uint8_t key [32], bridge_flow_role_t role, bridge_cipher_t cipher)
{
    assert (key);
    if (bridge_flow_cipher_error (cipher))
        return NULL;
    bridge_flow_t *self = calloc (1, sizeof *self);
    assert (self);
    self->keys = sodium_malloc (sizeof *self->keys);
    if (!self->keys) {
        free (self);
        return NULL;
    }
    s_derive (self->keys->tx, key, role == BRIDGE_FLOW_CLIENT ? S_C2P : S_P2C);
    s_derive (self->keys->rx, key, role == BRIDGE_FLOW_CLIENT ? S_P2C : S_C2P);
    if (cipher == BRIDGE_CIPHER_AUTO)
        cipher = crypto_aead_aes256gcm_is_available () ? BRIDGE_CIPHER_AES256GCM : BRIDGE_CIPHER_CHACHA20POLY1305;
    self->cipher = cipher;
    self->replay = node_replay_new ();
    return self;
}

void
bridge_flow_destroy (bridge_flow_t **self_p)
{
    assert (self_p);
    bridge_flow_t *self = *self_p;
    if (self) {
        sodium_free (self->keys);       //  wipes before it frees
        node_replay_destroy (&self->replay);
        free (self);
        *self_p = NULL;
    }
}

bridge_cipher_t
bridge_flow_cipher (const bridge_flow_t *self)
{
    return self->cipher;
}

const bridge_flow_stats_t *
bridge_flow_stats (const bridge_flow_t *self)
{
    return &self->stats;
}

const char *
bridge_flow_reason_name (int reason)
{
    switch (reason) {
#define S_REASON(id, value, name, doc) case (value): return name;
        BRIDGE_FLOW_REASONS (S_REASON)
#undef S_REASON
    }
    return "?";
}

//  The layout of docs/bridge-wire.md: 4 zero bytes, then the counter (LE)
static void
s_nonce (uint8_t nonce [BRIDGE_WIRE_NONCE_SIZE], uint64_t counter)
{
    memset (nonce, 0, BRIDGE_WIRE_NONCE_SIZE);
    for (int i = 0; i < 8; i++)
        nonce [BRIDGE_WIRE_NONCE_COUNTER + i] = (uint8_t) (counter >> (8 * i));
}

static bool
s_known_type (int type)
{
    return type == BRIDGE_WIRE_DATA || type == BRIDGE_WIRE_HEARTBEAT || type == BRIDGE_WIRE_HEARTBEAT_REPLY;
}

static int
s_refuse (bridge_flow_t *self, int reason)
{
    self->stats.refused [-reason]++;
    return reason;
}

int
bridge_flow_seal (bridge_flow_t *self, int type, const uint8_t *plain, size_t len,
                  uint8_t *out, size_t outsize)
{
    assert (self && out && s_known_type (type));
    if (type != BRIDGE_WIRE_DATA && len)
        return s_refuse (self, BRIDGE_FLOW_SHORT);
    if (len > BRIDGE_WIRE_MAX_PLAIN || outsize < BRIDGE_WIRE_DATA_SIZE + len)
        return s_refuse (self, BRIDGE_FLOW_NO_ROOM);
    //  The last counter is never used: it would wrap to 0, a nonce already spent
    if (self->send_counter == UINT64_MAX)
        return s_refuse (self, BRIDGE_FLOW_EXHAUSTED);
    uint64_t counter = self->send_counter++;
    memset (out, 0, BRIDGE_WIRE_HEADER_SIZE);
    out [BRIDGE_WIRE_DATA_TYPE] = (uint8_t) type;
    for (int i = 0; i < 8; i++)
        out [BRIDGE_WIRE_DATA_COUNTER + i] = (uint8_t) (counter >> (8 * i));
    uint8_t nonce [BRIDGE_WIRE_NONCE_SIZE];
    s_nonce (nonce, counter);
    unsigned long long clen = 0;
    uint8_t *c = out + BRIDGE_WIRE_HEADER_SIZE;
    if (self->cipher == BRIDGE_CIPHER_AES256GCM)
        crypto_aead_aes256gcm_encrypt (c, &clen, plain, len, out, BRIDGE_WIRE_HEADER_SIZE,
                                       NULL, nonce, self->keys->tx);
    else
        crypto_aead_chacha20poly1305_ietf_encrypt (c, &clen, plain, len, out, BRIDGE_WIRE_HEADER_SIZE,
                                                   NULL, nonce, self->keys->tx);
    assert (clen == len + BRIDGE_WIRE_TAG_SIZE);
    self->stats.sealed++;
    return (int) (BRIDGE_WIRE_HEADER_SIZE + clen);
}

int
bridge_flow_open (bridge_flow_t *self, const uint8_t *datagram, size_t len, int *type,
                  uint8_t *out, size_t outsize)
{
    assert (self && (datagram || len == 0) && type);
    if (len < BRIDGE_WIRE_DATA_SIZE || len > BRIDGE_WIRE_MAX_DATAGRAM)
        return s_refuse (self, len < BRIDGE_WIRE_DATA_SIZE ? BRIDGE_FLOW_SHORT : BRIDGE_FLOW_NO_ROOM);
    int t = datagram [BRIDGE_WIRE_DATA_TYPE];
    if (!s_known_type (t))
        return s_refuse (self, BRIDGE_FLOW_BAD_TYPE);
    for (int i = 0; i < BRIDGE_WIRE_DATA_RESERVED_SIZE; i++)
        if (datagram [BRIDGE_WIRE_DATA_RESERVED + i])
            return s_refuse (self, BRIDGE_FLOW_RESERVED);
    size_t plain = len - BRIDGE_WIRE_DATA_SIZE;
    if (t != BRIDGE_WIRE_DATA && plain)
        return s_refuse (self, BRIDGE_FLOW_SHORT);
    if (plain > outsize || (plain && !out))
        return s_refuse (self, BRIDGE_FLOW_NO_ROOM);
    uint64_t counter = 0;
    for (int i = 0; i < 8; i++)
        counter |= (uint64_t) datagram [BRIDGE_WIRE_DATA_COUNTER + i] << (8 * i);
    //  Cheap checks first; the window moves only after the tag verified
    if (node_replay_too_old (self->replay, counter))
        return s_refuse (self, BRIDGE_FLOW_TOO_OLD);
    if (!node_replay_check (self->replay, counter))
        return s_refuse (self, BRIDGE_FLOW_REPLAYED);
    uint8_t nonce [BRIDGE_WIRE_NONCE_SIZE];
    s_nonce (nonce, counter);
    uint8_t empty [1];
    unsigned long long mlen = 0;
    const uint8_t *c = datagram + BRIDGE_WIRE_HEADER_SIZE;
    size_t clen = len - BRIDGE_WIRE_HEADER_SIZE;
    int rc = self->cipher == BRIDGE_CIPHER_AES256GCM
        ? crypto_aead_aes256gcm_decrypt (plain ? out : empty, &mlen, NULL, c, clen,
                                         datagram, BRIDGE_WIRE_HEADER_SIZE, nonce, self->keys->rx)
        : crypto_aead_chacha20poly1305_ietf_decrypt (plain ? out : empty, &mlen, NULL, c, clen,
                                         datagram, BRIDGE_WIRE_HEADER_SIZE, nonce, self->keys->rx);
    if (rc != 0)
        return s_refuse (self, BRIDGE_FLOW_TAMPERED);
    bool fresh = node_replay_update (self->replay, counter);
    assert (fresh);                     //  checked above, single thread
    assert (mlen == plain);
    self->stats.opened++;
    *type = t;
    return (int) plain;
}

//  --------------------------------------------------------------------------
//  Self test

//  Known answers computed apart from libsodium (Python hashlib and the
//  cryptography package): flow key 00 01 .. 1f; the client's second datagram,
//  data "hello" at counter 1 (its first is a heartbeat at counter 0)
static const uint8_t s_kat_key [32] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31 };
#define S_KAT_C2P "\xec\xd8\x94\x3a\x25\x39\x4e\xe6\x5c\xfa\x3b\xe5\xab\xd9\xc3\x8b" \
                  "\x0d\x7e\x59\x69\x51\x23\x1c\xa0\x6d\xce\x6f\x5a\x9e\x1d\xb0\x58"
#define S_KAT_P2C "\xc7\xce\x43\xda\xb3\x1e\xb6\xfb\xf4\x38\xdf\x23\x12\xcf\xff\x94" \
                  "\xaa\x38\x42\xdf\x65\x44\x7c\x67\x6a\x63\xdb\xb3\x1a\x57\xb5\xed"
#define S_KAT_CHACHA "\x20\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x2f\xd9\x37\xe6\x8e" \
                     "\x31\xa3\xcf\x31\xbf\x61\x97\xc7\x19\xe3\x1b\x36\xd8\xf6\xd0\xcd"
#define S_KAT_AES    "\x20\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x6c\x57\x71\x9e\x53" \
                     "\x65\xd1\x55\xdd\x18\x7d\x11\xbc\x4b\x91\x3a\xe2\x06\x9f\xbc\xee"

static void
s_test_kat (bridge_cipher_t cipher, const char *expected)
{
    bridge_flow_t *client = bridge_flow_new (s_kat_key, BRIDGE_FLOW_CLIENT, cipher);
    bridge_flow_t *peer = bridge_flow_new (s_kat_key, BRIDGE_FLOW_PEER, cipher);
    assert (client && peer);
    assert (memcmp (client->keys->tx, S_KAT_C2P, 32) == 0 && memcmp (client->keys->rx, S_KAT_P2C, 32) == 0);
    assert (memcmp (peer->keys->tx, S_KAT_P2C, 32) == 0 && memcmp (peer->keys->rx, S_KAT_C2P, 32) == 0);
    uint8_t dgram [64], plain [64];
    int type = 0;
    assert (bridge_flow_seal (client, BRIDGE_WIRE_HEARTBEAT, NULL, 0, dgram, sizeof dgram) == 28);
    assert (bridge_flow_seal (client, BRIDGE_WIRE_DATA, (const uint8_t *) "hello", 5, dgram, sizeof dgram) == 33);
    assert (memcmp (dgram, expected, 33) == 0);
    assert (bridge_flow_open (peer, dgram, 33, &type, plain, sizeof plain) == 5);
    assert (type == BRIDGE_WIRE_DATA && memcmp (plain, "hello", 5) == 0);
    bridge_flow_destroy (&client);
    bridge_flow_destroy (&peer);
}

//  Everything but the known answers, for one cipher
static void
s_test_cipher (bridge_cipher_t cipher, bool verbose)
{
    uint8_t key [32];
    randombytes_buf (key, sizeof key);
    bridge_flow_t *client = bridge_flow_new (key, BRIDGE_FLOW_CLIENT, cipher);
    bridge_flow_t *peer = bridge_flow_new (key, BRIDGE_FLOW_PEER, cipher);
    assert (client && peer && bridge_flow_cipher (client) == cipher);
    static uint8_t msg [BRIDGE_WIRE_MAX_PLAIN], dgram [BRIDGE_WIRE_MAX_DATAGRAM + 1], plain [BRIDGE_WIRE_MAX_PLAIN];
    randombytes_buf (msg, sizeof msg);
    int type = 0;

    //  Round trips both ways, every size class, up to the largest message
    size_t sizes [] = { 0, 1, 15, 16, 17, 1400, 65000, BRIDGE_WIRE_MAX_PLAIN };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes [0]; i++) {
        int n = bridge_flow_seal (client, BRIDGE_WIRE_DATA, msg, sizes [i], dgram, sizeof dgram);
        assert (n == (int) (sizes [i] + 28));
        assert (bridge_flow_open (peer, dgram, (size_t) n, &type, plain, sizeof plain) == (int) sizes [i]);
        assert (type == BRIDGE_WIRE_DATA && memcmp (plain, msg, sizes [i]) == 0);
        n = bridge_flow_seal (peer, BRIDGE_WIRE_DATA, msg, sizes [i], dgram, sizeof dgram);
        assert (bridge_flow_open (client, dgram, (size_t) n, &type, plain, sizeof plain) == (int) sizes [i]);
        //  The wrong direction: a flow cannot open what it sealed itself
        n = bridge_flow_seal (client, BRIDGE_WIRE_DATA, msg, sizes [i], dgram, sizeof dgram);
        assert (bridge_flow_open (client, dgram, (size_t) n, &type, plain, sizeof plain) == BRIDGE_FLOW_TAMPERED);
        assert (bridge_flow_open (peer, dgram, (size_t) n, &type, plain, sizeof plain) == (int) sizes [i]);
    }
    assert (bridge_flow_seal (client, BRIDGE_WIRE_DATA, msg, BRIDGE_WIRE_MAX_PLAIN + 1, dgram, sizeof dgram) == BRIDGE_FLOW_NO_ROOM);
    assert (bridge_flow_seal (client, BRIDGE_WIRE_DATA, msg, 100, dgram, 127) == BRIDGE_FLOW_NO_ROOM);

    //  Heartbeats: empty, authenticated, answered by a reply
    int n = bridge_flow_seal (client, BRIDGE_WIRE_HEARTBEAT, NULL, 0, dgram, sizeof dgram);
    assert (n == BRIDGE_WIRE_HEARTBEAT_SIZE);
    assert (bridge_flow_open (peer, dgram, (size_t) n, &type, NULL, 0) == 0 && type == BRIDGE_WIRE_HEARTBEAT);
    n = bridge_flow_seal (peer, BRIDGE_WIRE_HEARTBEAT_REPLY, NULL, 0, dgram, sizeof dgram);
    assert (bridge_flow_open (client, dgram, (size_t) n, &type, NULL, 0) == 0 && type == BRIDGE_WIRE_HEARTBEAT_REPLY);
    assert (bridge_flow_seal (client, BRIDGE_WIRE_HEARTBEAT, msg, 1, dgram, sizeof dgram) == BRIDGE_FLOW_SHORT);

    //  Tampering with any byte of a datagram (header included: it is the
    //  associated data) is refused, and moves nothing
    n = bridge_flow_seal (client, BRIDGE_WIRE_DATA, msg, 40, dgram, sizeof dgram);
    uint64_t tampered = peer->stats.refused [-BRIDGE_FLOW_TAMPERED];
    for (int i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit++) {
            dgram [i] ^= (uint8_t) (1 << bit);
            int rc = bridge_flow_open (peer, dgram, (size_t) n, &type, plain, sizeof plain);
            assert (rc < 0);
            if (i >= BRIDGE_WIRE_HEADER_SIZE)
                assert (rc == BRIDGE_FLOW_TAMPERED);
            else
            if (i >= BRIDGE_WIRE_DATA_COUNTER)      //  a counter already seen is refused before the tag
                assert (rc == BRIDGE_FLOW_TAMPERED || rc == BRIDGE_FLOW_REPLAYED);
            else
            if (i >= BRIDGE_WIRE_DATA_RESERVED)
                assert (rc == BRIDGE_FLOW_RESERVED);
            else
                assert (rc == BRIDGE_FLOW_BAD_TYPE || rc == BRIDGE_FLOW_SHORT || rc == BRIDGE_FLOW_TAMPERED);
            dgram [i] ^= (uint8_t) (1 << bit);
        }
    assert (peer->stats.refused [-BRIDGE_FLOW_TAMPERED] >= tampered + (uint64_t) (n - BRIDGE_WIRE_HEADER_SIZE) * 8);
    assert (bridge_flow_open (peer, dgram, (size_t) n, &type, plain, sizeof plain) == 40);
    //  Truncated, and too small a buffer
    assert (bridge_flow_open (peer, dgram, 27, &type, plain, sizeof plain) == BRIDGE_FLOW_SHORT);
    assert (bridge_flow_open (peer, dgram, (size_t) n - 1, &type, plain, sizeof plain) < 0);

    //  Replays and reordering: a burst opened backwards is accepted once each
    bridge_flow_t *c2 = bridge_flow_new (key, BRIDGE_FLOW_CLIENT, cipher);
    bridge_flow_t *p2 = bridge_flow_new (key, BRIDGE_FLOW_PEER, cipher);
    enum { BURST = 100 };
    static uint8_t burst [BURST][64];
    for (int i = 0; i < BURST; i++)
        assert (bridge_flow_seal (c2, BRIDGE_WIRE_DATA, msg, 8, burst [i], 64) == 36);
    for (int i = BURST - 1; i >= 0; i--)
        assert (bridge_flow_open (p2, burst [i], 36, &type, plain, sizeof plain) == 8);
    for (int i = 0; i < BURST; i++)
        assert (bridge_flow_open (p2, burst [i], 36, &type, plain, sizeof plain) == BRIDGE_FLOW_REPLAYED);
    //  Too old: once the window moved past it (counter 99 stays inside, 0 not)
    c2->send_counter = NODE_REPLAY_WINDOW + BURST - 2;
    n = bridge_flow_seal (c2, BRIDGE_WIRE_DATA, msg, 8, dgram, sizeof dgram);
    assert (bridge_flow_open (p2, dgram, (size_t) n, &type, plain, sizeof plain) == 8);
    assert (bridge_flow_open (p2, burst [BURST - 1], 36, &type, plain, sizeof plain) == BRIDGE_FLOW_REPLAYED);
    assert (bridge_flow_open (p2, burst [0], 36, &type, plain, sizeof plain) == BRIDGE_FLOW_TOO_OLD);
    assert (p2->stats.refused [-BRIDGE_FLOW_TOO_OLD] == 1 && p2->stats.refused [-BRIDGE_FLOW_REPLAYED] == BURST + 1);
    assert (p2->stats.opened == BURST + 1 && c2->stats.sealed == BURST + 1);

    //  The counter never wraps: the last one is refused, a new key is needed
    c2->send_counter = UINT64_MAX - 1;
    assert (bridge_flow_seal (c2, BRIDGE_WIRE_HEARTBEAT, NULL, 0, dgram, sizeof dgram) == 28);
    assert (bridge_flow_open (p2, dgram, 28, &type, NULL, 0) == 0);
    assert (bridge_flow_seal (c2, BRIDGE_WIRE_HEARTBEAT, NULL, 0, dgram, sizeof dgram) == BRIDGE_FLOW_EXHAUSTED);
    assert (c2->stats.refused [-BRIDGE_FLOW_EXHAUSTED] == 1);

    //  A flow of another key, or of the other cipher, opens nothing
    bridge_flow_t *other = bridge_flow_new (s_kat_key, BRIDGE_FLOW_PEER, cipher);
    n = bridge_flow_seal (client, BRIDGE_WIRE_DATA, msg, 10, dgram, sizeof dgram);
    assert (bridge_flow_open (other, dgram, (size_t) n, &type, plain, sizeof plain) == BRIDGE_FLOW_TAMPERED);
    bridge_flow_destroy (&other);

    if (verbose)
        printf ("  %s: %llu sealed, %llu opened by the peer\n", bridge_flow_cipher_name (cipher),
                (unsigned long long) client->stats.sealed, (unsigned long long) peer->stats.opened);
    bridge_flow_destroy (&c2);
    bridge_flow_destroy (&p2);
    bridge_flow_destroy (&client);
    bridge_flow_destroy (&peer);
    assert (client == NULL);
}

void
bridge_flow_test (bool verbose)
{
    assert (sodium_init () >= 0);
    assert (bridge_flow_cipher_parse ("aes256gcm") == BRIDGE_CIPHER_AES256GCM);
    assert (bridge_flow_cipher_parse ("chacha20poly1305") == BRIDGE_CIPHER_CHACHA20POLY1305);
    assert (bridge_flow_cipher_parse ("auto") == BRIDGE_CIPHER_AUTO);
    assert (bridge_flow_cipher_parse ("aes") == -1 && bridge_flow_cipher_parse (NULL) == -1);
    assert (strcmp (bridge_flow_reason_name (BRIDGE_FLOW_TAMPERED), "tampered") == 0);
    assert (strcmp (bridge_flow_reason_name (0), "?") == 0);

    //  The nonce layout on its own: counter 0x0807060504030201
    uint8_t nonce [BRIDGE_WIRE_NONCE_SIZE];
    s_nonce (nonce, 0x0807060504030201ULL);
    assert (memcmp (nonce, "\0\0\0\0\x01\x02\x03\x04\x05\x06\x07\x08", 12) == 0);

    s_test_kat (BRIDGE_CIPHER_CHACHA20POLY1305, S_KAT_CHACHA);
    s_test_cipher (BRIDGE_CIPHER_CHACHA20POLY1305, verbose);
    bridge_flow_t *flow = bridge_flow_new (s_kat_key, BRIDGE_FLOW_CLIENT, BRIDGE_CIPHER_AUTO);
    assert (flow);
    if (crypto_aead_aes256gcm_is_available ()) {
        assert (bridge_flow_cipher (flow) == BRIDGE_CIPHER_AES256GCM);
        assert (bridge_flow_cipher_error (BRIDGE_CIPHER_AES256GCM) == NULL);
        s_test_kat (BRIDGE_CIPHER_AES256GCM, S_KAT_AES);
        s_test_cipher (BRIDGE_CIPHER_AES256GCM, verbose);
    }
    else {
        assert (bridge_flow_cipher (flow) == BRIDGE_CIPHER_CHACHA20POLY1305);
        assert (bridge_flow_cipher_error (BRIDGE_CIPHER_AES256GCM));
        assert (bridge_flow_new (s_kat_key, BRIDGE_FLOW_CLIENT, BRIDGE_CIPHER_AES256GCM) == NULL);
        printf ("  bridge_flow: no AES-NI on this CPU: AES-256-GCM skipped (refused with a message)\n");
    }
    bridge_flow_destroy (&flow);
}
