/*  crypto_identity: this node's static X25519 key pair.

    Created on first start in a file only the service user can read (O_EXCL, mode
    0600), loaded on every later start; a key file that group or others can read,
    or that is malformed, is refused with a clear error rather than used. The
    private key lives in sodium_malloc memory (locked, guarded, wiped on free) and
    never leaves this object: the handshake asks for a DH result instead. Only the
    public key is ever printed (base64, 44 characters, as WireGuard shows keys). */
#ifndef CRYPTO_IDENTITY_H_INCLUDED
#define CRYPTO_IDENTITY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRYPTO_KEY_SIZE         32
#define CRYPTO_KEY_BASE64_SIZE  45      //  44 characters + NUL

typedef struct _crypto_identity_t crypto_identity_t;

//  Loads the key from path; if the file does not exist and create is true,
//  makes a new key and writes it there (mode 0600). NULL + reason on error.
crypto_identity_t *crypto_identity_load (const char *path, bool create, char *err, size_t errsize);
//  A fresh key that is never stored (tests, benchmarks)
crypto_identity_t *crypto_identity_new (void);
//  From a known private key (known-answer tests); the key is copied
crypto_identity_t *crypto_identity_new_from_secret (const uint8_t secret [CRYPTO_KEY_SIZE]);
void crypto_identity_destroy (crypto_identity_t **self_p);

const uint8_t *crypto_identity_public (const crypto_identity_t *self);
void crypto_identity_public_base64 (const crypto_identity_t *self, char out [CRYPTO_KEY_BASE64_SIZE]);
//  X25519 (our private key, their public key); -1 for a low-order public key
int crypto_identity_dh (const crypto_identity_t *self, const uint8_t peer_public [CRYPTO_KEY_SIZE],
                        uint8_t shared [CRYPTO_KEY_SIZE]);

//  Parses a base64 public key from config ("peer key = ...")
int crypto_key_from_base64 (const char *text, uint8_t key [CRYPTO_KEY_SIZE], char *err, size_t errsize);
void crypto_key_to_base64 (const uint8_t key [CRYPTO_KEY_SIZE], char out [CRYPTO_KEY_BASE64_SIZE]);

void crypto_identity_test (bool verbose);
#endif
