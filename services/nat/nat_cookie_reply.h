/*  nat_cookie_reply: the cookie reply message (type 3, schemas/wire.def COOKIE).

    64 bytes: type, 3 zero bytes, the receiver index (the sender index of the
    initiation it answers), a random 24-byte nonce, and the 16-byte cookie
    sealed with XChaCha20-Poly1305 under key("cookie--", the responder's PUBLIC
    key) (nat_hs_mac.h) with the initiation's mac1 as associated data: only who
    sent that initiation (and knows the responder's key) can open it, and a
    reply to another initiation does not open. Both ends are in nat, which
    holds no private key (docs/nat.md, "Cookie replies"). The reader takes
    bytes from the internet: it checks everything and never reads past size. */
#ifndef NAT_COOKIE_REPLY_H_INCLUDED
#define NAT_COOKIE_REPLY_H_INCLUDED

#include "nat_hs_mac.h"
#include "schemas/wire.h"

//  Writes the reply to an initiation with sender index receiver_index and that mac1
void nat_cookie_reply_write (uint8_t out [WIRE_COOKIE_SIZE], uint32_t receiver_index,
                             const uint8_t key [NAT_HS_KEY_SIZE], const uint8_t mac1 [NAT_HS_MAC_SIZE],
                             const uint8_t cookie [NAT_HS_MAC_SIZE]);

//  The receiver index of what looks like a cookie reply (type 3, reserved bytes
//  zero, exactly WIRE_COOKIE_SIZE bytes): 0 and *index set, else -1
int nat_cookie_reply_receiver (const uint8_t *in, size_t size, uint32_t *index);

//  Opens a reply: 0 and the cookie, or -1 (wrong shape, key or mac1)
int nat_cookie_reply_read (const uint8_t *in, size_t size, const uint8_t key [NAT_HS_KEY_SIZE],
                           const uint8_t mac1 [NAT_HS_MAC_SIZE], uint8_t cookie [NAT_HS_MAC_SIZE]);

void nat_cookie_reply_test (bool verbose);
#endif
