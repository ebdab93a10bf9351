/*  nat_cookie_jar: the initiator's side of cookie replies, per peer.

    nat sees every handshake initiation crypto sends to a peer (crypto-nat). It
    remembers the last one's sender index and mac1 per peer: a cookie reply
    names that index and is sealed with that mac1 as associated data. The
    cookie it holds is good for 2 minutes less a margin (the responder's secret
    rotates every 2 minutes); while it is, nat writes mac2 into every initiation
    to that peer before sending it, so the peer's nat lets it through under
    load. crypto never sees a cookie reply and needs no change but to accept a
    non-zero mac2. Pure: the clock is an argument. */
#ifndef NAT_COOKIE_JAR_H_INCLUDED
#define NAT_COOKIE_JAR_H_INCLUDED

#include "nat_hs_mac.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAT_COOKIE_JAR_PEERS_MAX  65536         //  peer indices remembered
#define NAT_COOKIE_JAR_REPLY_MS   30000         //  a reply this late is not taken

typedef struct _nat_cookie_jar_t nat_cookie_jar_t;

nat_cookie_jar_t *nat_cookie_jar_new (void);
void nat_cookie_jar_destroy (nat_cookie_jar_t **self_p);

//  An initiation (WIRE_INITIATION_SIZE bytes, mac1 set) leaves for peer: its
//  sender index and mac1 are remembered, and mac2 is written when a cookie for
//  the peer is still good. True when mac2 was written.
bool nat_cookie_jar_sent (nat_cookie_jar_t *self, uint32_t peer, uint8_t *msg, size_t size, int64_t now_ms);

//  Which peer's last initiation had this sender index (sent in the last
//  NAT_COOKIE_JAR_REPLY_MS, not answered yet)? True, *peer and its mac1
bool nat_cookie_jar_match (nat_cookie_jar_t *self, uint32_t sender_index, int64_t now_ms,
                           uint32_t *peer, uint8_t mac1 [NAT_HS_MAC_SIZE]);

//  The cookie from the reply to that initiation (one reply per initiation)
void nat_cookie_jar_store (nat_cookie_jar_t *self, uint32_t peer, const uint8_t cookie [NAT_HS_MAC_SIZE],
                           int64_t now_ms);

//  Does the jar hold a good cookie for peer?
bool nat_cookie_jar_has (nat_cookie_jar_t *self, uint32_t peer, int64_t now_ms);

//  A peer removed: its index forgets everything
void nat_cookie_jar_forget (nat_cookie_jar_t *self, uint32_t peer);

void nat_cookie_jar_test (bool verbose);
#endif
