/*  reg_challenge: stateless registration nonces, spent once (see reg_challenge.h). */
#include "reg_challenge.h"
#include "reg_ratelimit.h"
#include <assert.h>
#include <czmq.h>
#include <sodium.h>

//  A nonce: issued_ms (8 bytes, big-endian) | random (8) | MAC (16)
#define S_STAMP 16                      //  the part the MAC covers, and the spent key
#define S_MAC 16

//  One lifetime's worth of spent nonces and how many each client spent
typedef struct {
    int64_t index;                      //  now_ms / REG_CHALLENGE_TTL_MS
    zhashx_t *spent;                    //  hex stamp -> (void *) 1
    zhashx_t *clients;                  //  client key -> (uintptr_t) count
} s_generation_t;

struct _reg_challenge_t {
    uint8_t secret [crypto_generichash_KEYBYTES];
    size_t client_max;
    s_generation_t gen [2];             //  [0] current, [1] the one before
};

static void
s_generation_init (s_generation_t *gen, int64_t index)
{
    gen->index = index;
    gen->spent = zhashx_new ();
    gen->clients = zhashx_new ();
}

static void
s_generation_clear (s_generation_t *gen)
{
    zhashx_destroy (&gen->spent);
    zhashx_destroy (&gen->clients);
}

reg_challenge_t *
reg_challenge_new (size_t client_max)
{
    if (sodium_init () < 0)
        return NULL;
    reg_challenge_t *self = (reg_challenge_t *) calloc (1, sizeof *self);
    assert (self);
    randombytes_buf (self->secret, sizeof self->secret);
    self->client_max = client_max ? client_max : 256;
    s_generation_init (&self->gen [0], 0);
    s_generation_init (&self->gen [1], -1);
    return self;
}

void
reg_challenge_destroy (reg_challenge_t **self_p)
{
    reg_challenge_t *self = *self_p;
    if (!self)
        return;
    s_generation_clear (&self->gen [0]);
    s_generation_clear (&self->gen [1]);
    sodium_memzero (self->secret, sizeof self->secret);
    free (self);
    *self_p = NULL;
}

//  The MAC of a stamp for a network: keyed BLAKE2b over a label, the
//  network id (with its NUL, so "ab" + stamp and "a" + "b..." differ) and
//  the stamp
static void
s_mac (reg_challenge_t *self, const char *network_id, const uint8_t stamp [S_STAMP], uint8_t mac [S_MAC])
{
    static const char label [] = "bifrost registry challenge v1";
    crypto_generichash_state state;
    crypto_generichash_init (&state, self->secret, sizeof self->secret, S_MAC);
    crypto_generichash_update (&state, (const uint8_t *) label, sizeof label);
    crypto_generichash_update (&state, (const uint8_t *) network_id, strlen (network_id) + 1);
    crypto_generichash_update (&state, stamp, S_STAMP);
    crypto_generichash_final (&state, mac, S_MAC);
}

void
reg_challenge_issue (reg_challenge_t *self, const char *network_id, int64_t now_ms,
                     char nonce_b64 [REG_CHALLENGE_TEXT])
{
    uint8_t nonce [REG_CHALLENGE_SIZE];
    for (int i = 0; i < 8; i++)
        nonce [i] = (uint8_t) ((uint64_t) now_ms >> (56 - 8 * i));
    randombytes_buf (nonce + 8, 8);
    s_mac (self, network_id, nonce, nonce + S_STAMP);
    sodium_bin2base64 (nonce_b64, REG_CHALLENGE_TEXT, nonce, sizeof nonce, sodium_base64_VARIANT_ORIGINAL);
}

int
reg_challenge_check (reg_challenge_t *self, const char *network_id,
                     const uint8_t nonce [REG_CHALLENGE_SIZE], int64_t now_ms)
{
    uint8_t mac [S_MAC];
    s_mac (self, network_id, nonce, mac);
    if (sodium_memcmp (mac, nonce + S_STAMP, S_MAC) != 0)
        return REG_CHALLENGE_INVALID;
    uint64_t issued = 0;
    for (int i = 0; i < 8; i++)
        issued = issued << 8 | nonce [i];
    //  Issued by us, so never in the future unless the clock stepped back:
    //  a second of that is forgiven, more is expired
    int64_t age = now_ms - (int64_t) issued;
    return age >= -1000 && age < REG_CHALLENGE_TTL_MS ? REG_CHALLENGE_OK : REG_CHALLENGE_INVALID;
}

//  Moves the generations on to now: the current one becomes the one before
//  when the next lifetime begins; both go when more than one has passed
static void
s_rotate (reg_challenge_t *self, int64_t now_ms)
{
    int64_t index = now_ms / REG_CHALLENGE_TTL_MS;
    if (index <= self->gen [0].index)
        return;
    s_generation_clear (&self->gen [1]);
    if (index == self->gen [0].index + 1)
        self->gen [1] = self->gen [0];
    else {
        s_generation_clear (&self->gen [0]);
        s_generation_init (&self->gen [1], index - 1);
    }
    s_generation_init (&self->gen [0], index);
}

int
reg_challenge_spend (reg_challenge_t *self, const uint8_t nonce [REG_CHALLENGE_SIZE],
                     const char *client, int64_t now_ms)
{
    s_rotate (self, now_ms);
    char key [S_STAMP * 2 + 1], who [REG_RATELIMIT_KEY];
    sodium_bin2hex (key, sizeof key, nonce, S_STAMP);
    reg_ratelimit_key (client ? client : "", who, sizeof who);
    if (zhashx_lookup (self->gen [0].spent, key) || zhashx_lookup (self->gen [1].spent, key))
        return REG_CHALLENGE_SPENT;
    uintptr_t count = (uintptr_t) zhashx_lookup (self->gen [0].clients, who);
    uintptr_t before = (uintptr_t) zhashx_lookup (self->gen [1].clients, who);
    if (count + before >= self->client_max || reg_challenge_spent (self) >= REG_CHALLENGE_SPENT_MAX)
        return REG_CHALLENGE_FULL;
    zhashx_insert (self->gen [0].spent, key, (void *) 1);
    zhashx_update (self->gen [0].clients, who, (void *) (count + 1));
    return REG_CHALLENGE_OK;
}

size_t
reg_challenge_spent (reg_challenge_t *self)
{
    return zhashx_size (self->gen [0].spent) + zhashx_size (self->gen [1].spent);
}

//  ---------------------------------------------------------------------------
static void
s_decode (const char *b64, uint8_t nonce [REG_CHALLENGE_SIZE])
{
    size_t len = 0;
    assert (sodium_base642bin (nonce, REG_CHALLENGE_SIZE, b64, strlen (b64), NULL, &len, NULL,
                               sodium_base64_VARIANT_ORIGINAL) == 0 && len == REG_CHALLENGE_SIZE);
}

#define CLIENT_MAX 100

void
reg_challenge_test (bool verbose)
{
    reg_challenge_t *challenge = reg_challenge_new (CLIENT_MAX);
    assert (challenge);
    int64_t now = 1700000000000;
    char b64 [REG_CHALLENGE_TEXT], other [REG_CHALLENGE_TEXT];
    uint8_t nonce [REG_CHALLENGE_SIZE], forged [REG_CHALLENGE_SIZE];

    //  Bound to the network and the lifetime; a change to any byte is refused
    reg_challenge_issue (challenge, "net1", now, b64);
    s_decode (b64, nonce);
    assert (reg_challenge_check (challenge, "net1", nonce, now) == REG_CHALLENGE_OK);
    assert (reg_challenge_check (challenge, "net1", nonce, now + REG_CHALLENGE_TTL_MS - 1) == REG_CHALLENGE_OK);
    assert (reg_challenge_check (challenge, "net1", nonce, now + REG_CHALLENGE_TTL_MS) == REG_CHALLENGE_INVALID);
    assert (reg_challenge_check (challenge, "net1", nonce, now - 5000) == REG_CHALLENGE_INVALID);
    assert (reg_challenge_check (challenge, "net2", nonce, now) == REG_CHALLENGE_INVALID);
    assert (reg_challenge_check (challenge, "net", nonce, now) == REG_CHALLENGE_INVALID);
    for (int i = 0; i < REG_CHALLENGE_SIZE; i++) {
        memcpy (forged, nonce, sizeof forged);
        forged [i] ^= 0x20;
        assert (reg_challenge_check (challenge, "net1", forged, now) == REG_CHALLENGE_INVALID);
    }
    reg_challenge_issue (challenge, "net1", now, other);
    assert (strcmp (b64, other) != 0);
    //  Another process (another secret) did not issue it
    reg_challenge_t *stranger = reg_challenge_new (CLIENT_MAX);
    assert (reg_challenge_check (stranger, "net1", nonce, now) == REG_CHALLENGE_INVALID);
    reg_challenge_destroy (&stranger);

    //  Asking costs nothing kept (finding 5: 84 clients used to fill a table)
    for (int i = 0; i < 101000; i++)
        reg_challenge_issue (challenge, "net1", now, other);
    assert (reg_challenge_spent (challenge) == 0);

    //  Single use
    assert (reg_challenge_spend (challenge, nonce, "192.0.2.1", now) == REG_CHALLENGE_OK);
    assert (reg_challenge_spend (challenge, nonce, "192.0.2.1", now + 1) == REG_CHALLENGE_SPENT);
    assert (reg_challenge_spend (challenge, nonce, "198.51.100.1", now + 2)
            == REG_CHALLENGE_SPENT);
    //  A client's cap (an IPv6 /64 is one client); others are not affected
    for (int i = 0; i < CLIENT_MAX; i++) {
        reg_challenge_issue (challenge, "net1", now, other);
        s_decode (other, forged);
        char address [64];
        snprintf (address, sizeof address, "2001:db8:0:1::%x", i);
        assert (reg_challenge_spend (challenge, forged, address, now) == REG_CHALLENGE_OK);
    }
    reg_challenge_issue (challenge, "net1", now, other);
    s_decode (other, forged);
    assert (reg_challenge_spend (challenge, forged, "2001:db8:0:1:ffff::1", now) == REG_CHALLENGE_FULL);
    assert (reg_challenge_spend (challenge, forged, "2001:db8:0:2::1", now) == REG_CHALLENGE_OK);
    //  Forgotten whole once they have expired anyway: two lifetimes on
    assert (reg_challenge_spent (challenge) == CLIENT_MAX + 2);
    int64_t later = (now / REG_CHALLENGE_TTL_MS + 2) * REG_CHALLENGE_TTL_MS;
    reg_challenge_issue (challenge, "net1", later, other);
    s_decode (other, forged);
    assert (reg_challenge_spend (challenge, forged, "2001:db8:0:1::1", later) == REG_CHALLENGE_OK);
    assert (reg_challenge_spent (challenge) == 1);
    //  One lifetime on, the one before is still remembered
    int64_t next = later + REG_CHALLENGE_TTL_MS;
    assert (reg_challenge_spend (challenge, forged, "2001:db8:0:1::1", next) == REG_CHALLENGE_SPENT);
    reg_challenge_destroy (&challenge);
    assert (challenge == NULL);
}
