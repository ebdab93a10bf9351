/*  nat_cookie_secret: cookies for source addresses under a rotating secret (see the header). */
#include "nat_cookie_secret.h"
#include "schemas/wire.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _nat_cookie_secret_t {
    uint8_t current [32];
    uint8_t previous [32];
    bool has_previous;
    int64_t born_ms;            //  of current; -1: none yet
};

nat_cookie_secret_t *
nat_cookie_secret_new (void)
{
    nat_cookie_secret_t *self = calloc (1, sizeof *self);
    assert (self);
    self->born_ms = -1;
    return self;
}

void
nat_cookie_secret_destroy (nat_cookie_secret_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sodium_memzero (*self_p, sizeof **self_p);
        free (*self_p);
        *self_p = NULL;
    }
}

//  A new secret when the current one is 2 minutes old; the one before stays
//  valid for 2 more (a secret skipped over, after a long quiet, is not kept)
static void
s_rotate (nat_cookie_secret_t *self, int64_t now_ms)
{
    if (self->born_ms >= 0 && (now_ms < self->born_ms || now_ms - self->born_ms < NAT_COOKIE_ROTATE_MS))
        return;
    bool keep = self->born_ms >= 0 && now_ms - self->born_ms < 2 * NAT_COOKIE_ROTATE_MS;
    if (keep)
        memcpy (self->previous, self->current, sizeof self->previous);
    self->has_previous = keep;
    randombytes_buf (self->current, sizeof self->current);
    self->born_ms = now_ms;
}

//  The bytes of an address a cookie covers: a kind byte, then the address and
//  port (and an IPv6 scope), or a relayed or ICE peer's id
static size_t
s_addr_bytes (const nat_addr_t *addr, uint8_t out [32])
{
    size_t n = 0;
    uint32_t ice;
    if (nat_addr_family (addr) == AF_INET) {
        out [n++] = 4;
        memcpy (out + n, &addr->in4.sin_addr, 4);
        n += 4;
        memcpy (out + n, &addr->in4.sin_port, 2);
        n += 2;
    }
    else
    if (nat_addr_family (addr) == AF_INET6) {
        out [n++] = 6;
        memcpy (out + n, &addr->in6.sin6_addr, 16);
        n += 16;
        memcpy (out + n, &addr->in6.sin6_port, 2);
        n += 2;
        memcpy (out + n, &addr->in6.sin6_scope_id, 4);
        n += 4;
    }
    else
    if (nat_addr_ice_index (addr, &ice)) {
        out [n++] = 'I';
        memcpy (out + n, &ice, 4);
        n += 4;
    }
    else {
        uint64_t relay = nat_addr_relay_peer (addr);
        out [n++] = 'R';
        memcpy (out + n, &relay, 8);
        n += 8;
    }
    return n;
}

static void
s_cookie (const uint8_t secret [32], const nat_addr_t *from, uint8_t cookie [NAT_HS_MAC_SIZE])
{
    uint8_t bytes [32];
    size_t n = s_addr_bytes (from, bytes);
    crypto_generichash (cookie, NAT_HS_MAC_SIZE, bytes, n, secret, 32);
}

void
nat_cookie_secret_make (nat_cookie_secret_t *self, const nat_addr_t *from, int64_t now_ms,
                        uint8_t cookie [NAT_HS_MAC_SIZE])
{
    s_rotate (self, now_ms);
    s_cookie (self->current, from, cookie);
}

bool
nat_cookie_secret_mac2_ok (nat_cookie_secret_t *self, const nat_addr_t *from,
                           const uint8_t *msg, size_t mac2_at, int64_t now_ms)
{
    s_rotate (self, now_ms);
    uint8_t cookie [NAT_HS_MAC_SIZE];
    s_cookie (self->current, from, cookie);
    if (nat_hs_mac2_ok (cookie, msg, mac2_at))
        return true;
    if (!self->has_previous)
        return false;
    s_cookie (self->previous, from, cookie);
    return nat_hs_mac2_ok (cookie, msg, mac2_at);
}

//  ---------------------------------------------------------------------------
//  Self test: a cookie is the source's and nobody else's (address, port,
//  family, pseudo-addresses), and it is good across one rotation, not two.

static bool
s_good (nat_cookie_secret_t *self, const nat_addr_t *from, const uint8_t cookie [16], int64_t now)
{
    uint8_t msg [WIRE_INITIATION_SIZE];
    memset (msg, 0x5A, sizeof msg);
    nat_hs_mac2 (cookie, msg, WIRE_INITIATION_MAC2, msg + WIRE_INITIATION_MAC2);
    return nat_cookie_secret_mac2_ok (self, from, msg, WIRE_INITIATION_MAC2, now);
}

void
nat_cookie_secret_test (bool verbose)
{
    nat_cookie_secret_t *self = nat_cookie_secret_new ();
    nat_addr_t a, a_port, b, v6, relay, relay2, ice;
    assert (nat_addr_set_ip (&a, "192.0.2.1", 51820) == 0);
    assert (nat_addr_set_ip (&a_port, "192.0.2.1", 51821) == 0);
    assert (nat_addr_set_ip (&b, "192.0.2.2", 51820) == 0);
    assert (nat_addr_set_ip (&v6, "2001:db8::1", 51820) == 0);
    nat_addr_set_relay (&relay, 7);
    nat_addr_set_relay (&relay2, 8);
    nat_addr_set_ice (&ice, 7);
    int64_t t0 = 1000;
    uint8_t ca [16], cv6 [16], crelay [16], cice [16], again [16];
    nat_cookie_secret_make (self, &a, t0, ca);
    nat_cookie_secret_make (self, &a, t0 + 10, again);
    assert (memcmp (ca, again, 16) == 0);               //  the same while the secret lasts
    assert (s_good (self, &a, ca, t0));
    assert (!s_good (self, &a_port, ca, t0));           //  the port counts
    assert (!s_good (self, &b, ca, t0));
    nat_cookie_secret_make (self, &v6, t0, cv6);
    assert (s_good (self, &v6, cv6, t0) && !s_good (self, &a, cv6, t0));
    nat_cookie_secret_make (self, &relay, t0, crelay);
    nat_cookie_secret_make (self, &ice, t0, cice);
    assert (memcmp (crelay, cice, 16) != 0);            //  same id, another kind
    assert (s_good (self, &relay, crelay, t0) && !s_good (self, &relay2, crelay, t0));
    assert (s_good (self, &ice, cice, t0) && !s_good (self, &relay, cice, t0));
    //  Rotation: still good under the previous secret, not after a second one
    assert (s_good (self, &a, ca, t0 + NAT_COOKIE_ROTATE_MS - 1));
    assert (s_good (self, &a, ca, t0 + NAT_COOKIE_ROTATE_MS + 1));
    uint8_t ca2 [16];
    nat_cookie_secret_make (self, &a, t0 + NAT_COOKIE_ROTATE_MS + 1, ca2);
    assert (memcmp (ca, ca2, 16) != 0);                 //  a new secret, a new cookie
    assert (s_good (self, &a, ca2, t0 + NAT_COOKIE_ROTATE_MS + 2));
    assert (!s_good (self, &a, ca, t0 + 2 * NAT_COOKIE_ROTATE_MS + 2));
    assert (s_good (self, &a, ca2, t0 + 2 * NAT_COOKIE_ROTATE_MS + 2));
    //  A long quiet: both secrets are new, no old cookie is good
    nat_cookie_secret_make (self, &a, t0 + 10 * NAT_COOKIE_ROTATE_MS, again);
    assert (!s_good (self, &a, ca2, t0 + 10 * NAT_COOKIE_ROTATE_MS));
    //  A clock that goes back rotates nothing
    assert (s_good (self, &a, again, t0));
    //  A mac2 of zeros (no cookie) is never good
    uint8_t msg [WIRE_INITIATION_SIZE] = { 0 };
    assert (!nat_cookie_secret_mac2_ok (self, &a, msg, WIRE_INITIATION_MAC2, t0 + 10 * NAT_COOKIE_ROTATE_MS));
    nat_cookie_secret_destroy (&self);
    assert (self == NULL);
    if (verbose)
        printf ("  cookies per address and port, good across one rotation\n");
}
