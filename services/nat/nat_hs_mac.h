/*  nat_hs_mac: the keyed hashes of handshake messages that need no private key.

    Why nat computes them (docs/nat.md, "Cookie replies"): mac1 is keyed with a
    hash of the receiver's PUBLIC key and mac2 with a cookie, and the cookie
    reply is sealed with a key derived from a public key too. So nat, which
    reads the internet and holds no key, can refuse an initiation that is not
    meant for this node, and write and check mac2, before crypto spends any
    Diffie-Hellman work. Same hashes as crypto_noise.c (docs/wire-format.md):

        key(label, pub) = BLAKE2b-256 (label || pub)   label "mac1----" or "cookie--"
        mac1 = BLAKE2b-128 (key = key("mac1----", receiver), message before mac1)
        mac2 = BLAKE2b-128 (key = cookie, message before mac2)                    */
#ifndef NAT_HS_MAC_H_INCLUDED
#define NAT_HS_MAC_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAT_HS_KEY_SIZE     32
#define NAT_HS_MAC_SIZE     16

//  BLAKE2b-256 (label || pub): label is 8 characters ("mac1----", "cookie--")
void nat_hs_mac_key (const char *label, const uint8_t pub [NAT_HS_KEY_SIZE], uint8_t out [NAT_HS_KEY_SIZE]);

//  Is the mac1 at msg + mac1_at right for the bytes before it? (constant time)
bool nat_hs_mac1_ok (const uint8_t mac1_key [NAT_HS_KEY_SIZE], const uint8_t *msg, size_t mac1_at);

//  mac2 of the bytes before msg + mac2_at under a cookie; _ok compares it with
//  the mac2 there (constant time)
void nat_hs_mac2 (const uint8_t cookie [NAT_HS_MAC_SIZE], const uint8_t *msg, size_t mac2_at,
                  uint8_t out [NAT_HS_MAC_SIZE]);
bool nat_hs_mac2_ok (const uint8_t cookie [NAT_HS_MAC_SIZE], const uint8_t *msg, size_t mac2_at);

void nat_hs_mac_test (bool verbose);
#endif
