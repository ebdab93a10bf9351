/*  reg_auth: the registry's credentials. The admin token comes from the config
    and is compared in constant time (both sides hashed first, so neither the
    content nor the length leaks through timing). Join and peer tokens are 32
    random bytes in base64url with a prefix saying what they are ("bjt_", "bpt_");
    the database only ever holds their BLAKE2b hash, so a stolen database file
    holds no usable token. Registration challenges are reg_challenge's. */
#ifndef REG_AUTH_H_INCLUDED
#define REG_AUTH_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REG_TOKEN_TEXT 64       //  buffer for a token: prefix + 43 chars + NUL
#define REG_HASH_TEXT 65        //  hex BLAKE2b-256 + NUL

typedef struct _reg_auth_t reg_auth_t;

//  admin_token NULL or "" disables every admin route (401).
reg_auth_t *reg_auth_new (const char *admin_token);
void reg_auth_destroy (reg_auth_t **self_p);

//  True when bearer is the admin token (constant time).
bool reg_auth_is_admin (reg_auth_t *self, const char *bearer);

//  A fresh random token with the given prefix ("bjt_", "bpt_").
void reg_auth_token_new (const char *prefix, char token [REG_TOKEN_TEXT]);
//  A random id of n hex characters (n < size).
void reg_auth_random_id (char *out, size_t n);
//  The hex hash of a token, the form stored in the database.
void reg_auth_token_hash (const char *token, char hash [REG_HASH_TEXT]);

//  The registry's X25519 key pair, used for key proofs.
void reg_auth_set_keypair (reg_auth_t *self, const uint8_t public_key [32], const uint8_t secret_key [32]);
const uint8_t *reg_auth_public_key (reg_auth_t *self);
//  0 when proof shows the holder of peer_public answered this nonce.
int reg_auth_verify_proof (reg_auth_t *self, const uint8_t peer_public [32], const char *network_id,
                           const uint8_t *nonce, size_t nonce_size, const uint8_t proof [32]);

void reg_auth_test (bool verbose);
#endif
