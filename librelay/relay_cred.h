/*  relay_cred: the relay credential. The registry issues one with each registration;
    any relay worker verifies it alone, with no call to the registry and no shared
    table, because both hold the same secret (as coturn's TURN REST credentials):

        mac = HMAC-SHA-256 (secret, "bifrost relay v1" || network || peer || expiry)

    network, peer and expiry are 8-byte little-endian integers, exactly as they sit
    in REGISTER (relay_proto.h); network is the network tag (first 8 bytes of
    BLAKE2b-256 of the network id text), peer the registry's 16-hex-digit peer id
    as a number. A credential is bound to its network and peer: changing either,
    or the expiry, changes the mac. The comparison is constant-time (libsodium).

    The credential travels from the registry to the node as text
    "EXPIRY.MACHEX" (decimal seconds, 64 hex digits) next to the peer id; the
    relay parses nothing textual. */
#ifndef RELAY_CRED_H_INCLUDED
#define RELAY_CRED_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RELAY_CRED_SECRET_SIZE  32
#define RELAY_CRED_MAC_SIZE     32
#define RELAY_CRED_TEXT_MAX     (20 + 1 + 64 + 1)

typedef enum {
    RELAY_CRED_OK = 0,
    RELAY_CRED_EXPIRED,         //  now > expiry
    RELAY_CRED_TOO_LONG,        //  expiry further ahead than the relay accepts
    RELAY_CRED_BAD_MAC,         //  forged, or for another network, peer or expiry
    RELAY_CRED_MALFORMED,       //  text form not EXPIRY.MACHEX
    RELAY_CRED_RESULTS
} relay_cred_result_t;

typedef struct _relay_cred_t relay_cred_t;

//  A verifier/issuer keyed with secret (RELAY_CRED_SECRET_SIZE bytes, copied into
//  locked memory). max_lifetime: the relay refuses an expiry more than this many
//  seconds ahead (0: no limit), so a leaked secret-holder cannot mint eternal ones.
relay_cred_t *relay_cred_new (const uint8_t *secret, uint64_t max_lifetime);
void relay_cred_destroy (relay_cred_t **self_p);

//  The registry side: the mac for (network, peer, expiry).
void relay_cred_issue (relay_cred_t *self, uint64_t network, uint64_t peer, uint64_t expiry,
                       uint8_t mac [RELAY_CRED_MAC_SIZE]);

//  The worker side: checks expiry against now (Unix seconds), then the mac in
//  constant time. mac is exactly RELAY_CRED_MAC_SIZE bytes (the parser saw to it).
relay_cred_result_t relay_cred_verify (relay_cred_t *self, uint64_t network, uint64_t peer,
                                       uint64_t expiry, const uint8_t *mac, uint64_t now);

//  The network tag of a network id text, and a registry peer id (16 hex digits)
//  as a number; -1 when the text is not 16 hex digits.
uint64_t relay_cred_network_tag (const char *network_id);
int relay_cred_peer_parse (const char *text, uint64_t *peer);

//  The shared secret as the config writes it (`relay.secret`): exactly 64 hex
//  digits. 0, or -1 for anything else.
int relay_cred_secret_parse (const char *text, uint8_t secret [RELAY_CRED_SECRET_SIZE]);

//  Text form "EXPIRY.MACHEX" and back (RELAY_CRED_MALFORMED on anything else,
//  including a truncated mac).
void relay_cred_format (uint64_t expiry, const uint8_t mac [RELAY_CRED_MAC_SIZE],
                        char text [RELAY_CRED_TEXT_MAX]);
relay_cred_result_t relay_cred_parse (const char *text, uint64_t *expiry,
                                      uint8_t mac [RELAY_CRED_MAC_SIZE]);

const char *relay_cred_result_name (relay_cred_result_t result);

void relay_cred_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
