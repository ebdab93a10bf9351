/*  reg_auth: admin token, join/peer tokens, the registry key (see reg_auth.h). */
#include "reg_auth.h"
#include "node_keyproof.h"
#include <assert.h>
#include <czmq.h>
#include <sodium.h>

struct _reg_auth_t {
    bool has_admin;
    uint8_t admin_hash [32];
    uint8_t public_key [32], secret_key [32];
};

static void
s_hash (const char *text, uint8_t out [32])
{
    crypto_generichash (out, 32, (const uint8_t *) text, strlen (text), NULL, 0);
}

reg_auth_t *
reg_auth_new (const char *admin_token)
{
    if (sodium_init () < 0)
        return NULL;
    reg_auth_t *self = (reg_auth_t *) calloc (1, sizeof *self);
    assert (self);
    if (admin_token && *admin_token) {
        self->has_admin = true;
        s_hash (admin_token, self->admin_hash);
    }
    return self;
}

void
reg_auth_destroy (reg_auth_t **self_p)
{
    reg_auth_t *self = *self_p;
    if (!self)
        return;
    sodium_memzero (self, sizeof *self);
    free (self);
    *self_p = NULL;
}

bool
reg_auth_is_admin (reg_auth_t *self, const char *bearer)
{
    if (!self->has_admin || !bearer)
        return false;
    uint8_t hash [32];
    s_hash (bearer, hash);
    return sodium_memcmp (hash, self->admin_hash, 32) == 0;
}

void
reg_auth_token_new (const char *prefix, char token [REG_TOKEN_TEXT])
{
    uint8_t bytes [32];
    randombytes_buf (bytes, sizeof bytes);
    size_t plen = strlen (prefix);
    assert (plen < 8);
    memcpy (token, prefix, plen);
    sodium_bin2base64 (token + plen, REG_TOKEN_TEXT - plen, bytes, sizeof bytes,
                       sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero (bytes, sizeof bytes);
}

void
reg_auth_random_id (char *out, size_t n)
{
    static const char hex [] = "0123456789abcdef";
    uint8_t bytes [64];
    assert (n <= sizeof bytes);
    randombytes_buf (bytes, n);
    for (size_t i = 0; i < n; i++)
        out [i] = hex [bytes [i] & 15];
    out [n] = 0;
}

void
reg_auth_token_hash (const char *token, char hash [REG_HASH_TEXT])
{
    uint8_t bin [32];
    s_hash (token, bin);
    sodium_bin2hex (hash, REG_HASH_TEXT, bin, sizeof bin);
}

void
reg_auth_set_keypair (reg_auth_t *self, const uint8_t public_key [32], const uint8_t secret_key [32])
{
    memcpy (self->public_key, public_key, 32);
    memcpy (self->secret_key, secret_key, 32);
}

const uint8_t *reg_auth_public_key (reg_auth_t *self) { return self->public_key; }

int
reg_auth_verify_proof (reg_auth_t *self, const uint8_t peer_public [32], const char *network_id,
                       const uint8_t *nonce, size_t nonce_size, const uint8_t proof [32])
{
    return node_keyproof_verify (self->secret_key, self->public_key, peer_public, network_id,
                                nonce, nonce_size, proof);
}


//  ---------------------------------------------------------------------------
void
reg_auth_test (bool verbose)
{
    reg_auth_t *auth = reg_auth_new ("s3cret-admin");
    assert (auth);
    assert (reg_auth_is_admin (auth, "s3cret-admin"));
    assert (!reg_auth_is_admin (auth, "s3cret-admiN"));
    assert (!reg_auth_is_admin (auth, ""));
    assert (!reg_auth_is_admin (auth, NULL));

    char t1 [REG_TOKEN_TEXT], t2 [REG_TOKEN_TEXT], h1 [REG_HASH_TEXT], h2 [REG_HASH_TEXT];
    reg_auth_token_new ("bjt_", t1);
    reg_auth_token_new ("bjt_", t2);
    assert (strncmp (t1, "bjt_", 4) == 0 && strlen (t1) == 47 && strcmp (t1, t2) != 0);
    reg_auth_token_hash (t1, h1);
    reg_auth_token_hash (t1, h2);
    assert (strlen (h1) == 64 && strcmp (h1, h2) == 0 && strstr (h1, t1 + 4) == NULL);
    char id [17];
    reg_auth_random_id (id, 16);
    assert (strlen (id) == 16);

    //  Proof through node_keyproof with the registry key pair
    uint8_t rpk [32], rsk [32], ppk [32], psk [32], proof [32], n [32];
    crypto_box_keypair (rpk, rsk);
    crypto_box_keypair (ppk, psk);
    reg_auth_set_keypair (auth, rpk, rsk);
    randombytes_buf (n, sizeof n);
    assert (node_keyproof_compute (psk, ppk, reg_auth_public_key (auth), "net1", n, 32, proof) == 0);
    assert (reg_auth_verify_proof (auth, ppk, "net1", n, 32, proof) == 0);
    proof [0] ^= 1;
    assert (reg_auth_verify_proof (auth, ppk, "net1", n, 32, proof) == -1);
    reg_auth_destroy (&auth);
    assert (auth == NULL);

    //  No admin token configured: nothing is admin
    auth = reg_auth_new (NULL);
    assert (!reg_auth_is_admin (auth, ""));
    reg_auth_destroy (&auth);
}
