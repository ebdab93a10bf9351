/*  nat_cookie_secret: the responder's cookies, one per source address.

    Under load (nat_hs_load) nat answers an initiation without a valid mac2 with
    a cookie instead of passing it to crypto (WireGuard's cookie reply, docs/
    nat.md "Cookie replies"). The cookie is a MAC of the source address (with
    its port; a relayed or ICE peer's pseudo-address too) under a random secret
    that changes every 2 minutes, so only who receives at that address learns
    it, and it expires by itself. nat keeps no state per source: the next
    initiation's mac2 is checked against the cookie made again from its source,
    under the current secret or the one before. Pure: the clock is an argument. */
#ifndef NAT_COOKIE_SECRET_H_INCLUDED
#define NAT_COOKIE_SECRET_H_INCLUDED

#include "nat_addr.h"
#include "nat_hs_mac.h"

#define NAT_COOKIE_ROTATE_MS    120000      //  a new secret this often
#define NAT_COOKIE_LATENCY_MS   5000        //  an initiator stops using a cookie this long before

typedef struct _nat_cookie_secret_t nat_cookie_secret_t;

nat_cookie_secret_t *nat_cookie_secret_new (void);
void nat_cookie_secret_destroy (nat_cookie_secret_t **self_p);

//  The cookie of a source address now (the secret is made or rotated first when due)
void nat_cookie_secret_make (nat_cookie_secret_t *self, const nat_addr_t *from, int64_t now_ms,
                             uint8_t cookie [NAT_HS_MAC_SIZE]);

//  Is the mac2 at msg + mac2_at the one of from's cookie under the current or
//  the previous secret?
bool nat_cookie_secret_mac2_ok (nat_cookie_secret_t *self, const nat_addr_t *from,
                                const uint8_t *msg, size_t mac2_at, int64_t now_ms);

void nat_cookie_secret_test (bool verbose);
#endif
