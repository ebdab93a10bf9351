/*  reg_turn: ICE server configuration for /client/meta, with time-limited TURN
    credentials in the "TURN REST API" form coturn checks with use-auth-secret:
    username "<expiry unix time>:<peer id>", password
    base64 (HMAC-SHA1 (secret, username)). HMAC-SHA1 is not in libsodium, and
    linking OpenSSL's libcrypto only for this would be a new direct dependency, so
    SHA-1 and HMAC (RFC 3174, RFC 2104) are here, checked against RFC 2202. The
    secret is only ever read from the config (${TURN_SECRET}); it is never logged
    and never returned. Without a secret, the meta has STUN URLs only. */
#ifndef REG_TURN_H_INCLUDED
#define REG_TURN_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REG_SHA1_SIZE 20

void reg_sha1 (const void *data, size_t size, uint8_t digest [REG_SHA1_SIZE]);
void reg_hmac_sha1 (const void *key, size_t key_size, const void *data, size_t size,
                    uint8_t mac [REG_SHA1_SIZE]);

typedef struct {
    const char *name;           //  registry name reported in /client/meta
    const char *version;
    const char *host;           //  host name or address in the STUN/TURN URLs (NULL: no ICE servers)
    int port;                   //  STUN/TURN port (3478)
    int tls_port;               //  TURNS port (5349); 0 = no turns: URL
    const char *secret;         //  shared secret (NULL/"" = STUN only)
    const char *previous_secret;//  unused by the registry; kept so rotation is documented in one place
    int64_t ttl_s;              //  credential lifetime
    const char *const *extra_stun; //  more STUN URLs (NULL-terminated) or NULL
} reg_turn_config_t;

typedef struct _reg_turn_t reg_turn_t;

reg_turn_t *reg_turn_new (const reg_turn_config_t *config);
void reg_turn_destroy (reg_turn_t **self_p);
bool reg_turn_has_secret (reg_turn_t *self);

//  The credential for a peer valid until now_s + ttl: username and password
//  written into the buffers. 0, or -1 without a secret.
int reg_turn_credential (reg_turn_t *self, const char *peer, int64_t now_s,
                         char *username, size_t username_size, char *password, size_t password_size);
//  The /client/meta document; TURN entries only when peer is not NULL and a
//  secret is configured. Caller owns the result.
json_t *reg_turn_meta (reg_turn_t *self, const char *peer, int64_t now_s);

void reg_turn_test (bool verbose);
#endif
