/*  reg_relay: the relay grants the registry hands out (docs/relay.md,
    "Credentials from the registry"). With `relay.secret` and `relay.servers`,
    every registration and heartbeat reply carries the relays and a credential
    for the peer, bound to its network tag and peer id, valid for
    `relay.credential_ttl`: librelay's relay_cred, the same code the workers
    verify it with, so issuer and verifier cannot drift. The registry keeps no
    state per grant: a heartbeat issues a fresh one, and a worker checks it
    without asking the registry. The secret is held by relay_cred in locked
    memory; it is never logged and never returned. */
#ifndef REG_RELAY_H_INCLUDED
#define REG_RELAY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "rest_schema.h"

#define REG_RELAY_SERVERS_MAX 8

typedef struct {
    const char *const *servers;     //  "name@host:port", NULL-terminated (NULL: none)
    const uint8_t *secret;          //  32 bytes, or NULL: no relays
    int64_t ttl_s;                  //  credential lifetime
    uint16_t tls_port;              //  the relays' WebSocket over TLS port; 0: none
} reg_relay_config_t;

typedef struct _reg_relay_t reg_relay_t;

//  Copies what it needs from config (the secret into relay_cred's locked memory).
reg_relay_t *reg_relay_new (const reg_relay_config_t *config);
void reg_relay_destroy (reg_relay_t **self_p);

//  True when grants are handed out (a secret and at least one server).
bool reg_relay_enabled (reg_relay_t *self);
//  Why not, for the operator's log at start; NULL when enabled.
const char *reg_relay_off_reason (reg_relay_t *self);

//  The grant for peer (16 hex digits) of network_id, valid until now_s + ttl,
//  into out. 0, or -1 when relays are off or peer_id is not 16 hex digits.
int reg_relay_grant (reg_relay_t *self, const char *network_id, const char *peer_id, int64_t now_s,
                     rest_relay_grant_t *out);
//  The relay list of /client/meta into meta (nothing when relays are off).
void reg_relay_meta (reg_relay_t *self, rest_meta_t *meta);

void reg_relay_test (bool verbose);
#endif
