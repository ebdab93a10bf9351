/*  nat_addr: canonical UDP peer address (see nat_addr.h for why). */
#include "nat_addr.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <string.h>

void
nat_addr_clear (nat_addr_t *self)
{
    memset (self, 0, sizeof *self);
}

bool
nat_addr_is_set (const nat_addr_t *self)
{
    return self->len != 0;
}

int
nat_addr_set_sockaddr (nat_addr_t *self, const struct sockaddr *sa, socklen_t len)
{
    nat_addr_clear (self);
    if (sa->sa_family == AF_INET && len >= (socklen_t) sizeof (struct sockaddr_in)) {
        memcpy (&self->in4, sa, sizeof self->in4);
        self->len = sizeof self->in4;
        return 0;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t) sizeof (struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
        if (IN6_IS_ADDR_V4MAPPED (&in6->sin6_addr)) {
            self->in4.sin_family = AF_INET;
            self->in4.sin_port = in6->sin6_port;
            memcpy (&self->in4.sin_addr, &in6->sin6_addr.s6_addr [12], 4);
            self->len = sizeof self->in4;
        }
        else {
            memcpy (&self->in6, in6, sizeof self->in6);
            self->in6.sin6_flowinfo = 0;    //  not part of the peer's identity
            self->len = sizeof self->in6;
        }
        return 0;
    }
    return -1;
}

int
nat_addr_set_ip (nat_addr_t *self, const char *ip, uint16_t port)
{
    nat_addr_clear (self);
    struct in6_addr a6;
    if (inet_pton (AF_INET, ip, &self->in4.sin_addr) == 1) {
        self->in4.sin_family = AF_INET;
        self->in4.sin_port = htons (port);
        self->len = sizeof self->in4;
        return 0;
    }
    if (inet_pton (AF_INET6, ip, &a6) == 1) {
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons (port),
                                    .sin6_addr = a6 };
        return nat_addr_set_sockaddr (self, (struct sockaddr *) &in6, sizeof in6);
    }
    nat_addr_clear (self);
    return -1;
}

void
nat_addr_set_relay (nat_addr_t *self, uint64_t relay_peer)
{
    nat_addr_clear (self);
    if (!relay_peer)
        return;
    self->sa.sa_family = AF_UNSPEC;
    self->len = sizeof self->relay_peer;
    self->relay_peer = relay_peer;
}

void
nat_addr_set_ice (nat_addr_t *self, uint32_t index)
{
    nat_addr_clear (self);
    self->sa.sa_family = AF_UNSPEC;
    self->len = NAT_ADDR_ICE_LEN;
    self->relay_peer = index;
}

void
nat_addr_set_bday (nat_addr_t *self, uint32_t index)
{
    nat_addr_clear (self);
    self->sa.sa_family = AF_UNSPEC;
    self->len = NAT_ADDR_BDAY_LEN;
    self->relay_peer = index;
}

int
nat_addr_family (const nat_addr_t *self)
{
    return self->len ? self->sa.sa_family : 0;
}

uint16_t
nat_addr_port (const nat_addr_t *self)
{
    if (!self->len || self->sa.sa_family == AF_UNSPEC)
        return 0;
    return ntohs (self->sa.sa_family == AF_INET ? self->in4.sin_port : self->in6.sin6_port);
}

void
nat_addr_to_v6 (const nat_addr_t *self, struct sockaddr_in6 *out)
{
    if (self->len && self->sa.sa_family == AF_INET6) {
        *out = self->in6;
        return;
    }
    memset (out, 0, sizeof *out);
    out->sin6_family = AF_INET6;
    out->sin6_port = self->in4.sin_port;
    out->sin6_addr.s6_addr [10] = 0xff;
    out->sin6_addr.s6_addr [11] = 0xff;
    memcpy (&out->sin6_addr.s6_addr [12], &self->in4.sin_addr, 4);
}

char *
nat_addr_format (const nat_addr_t *self, char *buf, size_t size)
{
    char ip [INET6_ADDRSTRLEN];
    if (!self->len)
        snprintf (buf, size, "(none)");
    else
    if (self->sa.sa_family == AF_UNSPEC && self->len == NAT_ADDR_ICE_LEN)
        snprintf (buf, size, "ice/%u", (unsigned) self->relay_peer);
    else
    if (self->sa.sa_family == AF_UNSPEC && self->len == NAT_ADDR_BDAY_LEN)
        snprintf (buf, size, "bday/%u", (unsigned) self->relay_peer);
    else
    if (self->sa.sa_family == AF_UNSPEC)
        snprintf (buf, size, "relay/%016llx", (unsigned long long) self->relay_peer);
    else
    if (self->sa.sa_family == AF_INET) {
        inet_ntop (AF_INET, &self->in4.sin_addr, ip, sizeof ip);
        snprintf (buf, size, "%s:%u", ip, nat_addr_port (self));
    }
    else {
        inet_ntop (AF_INET6, &self->in6.sin6_addr, ip, sizeof ip);
        if (self->in6.sin6_scope_id)
            snprintf (buf, size, "[%s%%%u]:%u", ip, (unsigned) self->in6.sin6_scope_id,
                      nat_addr_port (self));
        else
            snprintf (buf, size, "[%s]:%u", ip, nat_addr_port (self));
    }
    return buf;
}

bool
nat_addr_eq (const nat_addr_t *a, const nat_addr_t *b)
{
    if (a->len != b->len)
        return false;
    if (!a->len)
        return true;
    if (a->sa.sa_family != b->sa.sa_family)
        return false;
    if (a->sa.sa_family == AF_UNSPEC)
        return a->relay_peer == b->relay_peer;
    if (a->sa.sa_family == AF_INET)
        return a->in4.sin_port == b->in4.sin_port
            && a->in4.sin_addr.s_addr == b->in4.sin_addr.s_addr;
    return a->in6.sin6_port == b->in6.sin6_port
        && a->in6.sin6_scope_id == b->in6.sin6_scope_id
        && memcmp (&a->in6.sin6_addr, &b->in6.sin6_addr, 16) == 0;
}

//  A 64-bit multiply-xorshift mixer (from splitmix64): cheap, and every input bit
//  reaches every output bit.
static uint64_t
s_mix (uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t
nat_addr_hash (const nat_addr_t *self, uint64_t seed)
{
    uint64_t h = seed ^ 0x9e3779b97f4a7c15ULL;
    if (!self->len)
        return s_mix (h);
    if (self->sa.sa_family == AF_UNSPEC)
        return s_mix (s_mix (h ^ 0x72656c6179ULL ^ self->len) ^ self->relay_peer);
    if (self->sa.sa_family == AF_INET) {
        uint32_t ip;
        memcpy (&ip, &self->in4.sin_addr, 4);
        return s_mix (h ^ ((uint64_t) ip << 16 | self->in4.sin_port));
    }
    uint64_t w0, w1;
    memcpy (&w0, &self->in6.sin6_addr.s6_addr [0], 8);
    memcpy (&w1, &self->in6.sin6_addr.s6_addr [8], 8);
    h = s_mix (h ^ w0);
    h = s_mix (h ^ w1);
    return s_mix (h ^ ((uint64_t) self->in6.sin6_scope_id << 16 | self->in6.sin6_port));
}

void
nat_addr_test (bool verbose)
{
    char buf [NAT_ADDR_TEXT_MAX];
    nat_addr_t a, b;
    nat_addr_clear (&a);
    assert (!nat_addr_is_set (&a));
    assert (strcmp (nat_addr_format (&a, buf, sizeof buf), "(none)") == 0);

    //  Relayed: equal by peer id only, never equal to a socket address
    nat_addr_t r1, r2;
    nat_addr_set_relay (&r1, 0x00112233aabbccddULL);
    nat_addr_set_relay (&r2, 0x00112233aabbccddULL);
    assert (nat_addr_is_set (&r1) && nat_addr_relay_peer (&r1) == 0x00112233aabbccddULL);
    assert (nat_addr_eq (&r1, &r2) && nat_addr_hash (&r1, 7) == nat_addr_hash (&r2, 7));
    assert (strcmp (nat_addr_format (&r1, buf, sizeof buf), "relay/00112233aabbccdd") == 0);
    assert (nat_addr_port (&r1) == 0 && nat_addr_family (&r1) == AF_UNSPEC);
    nat_addr_set_relay (&r2, 0x00112233aabbccdeULL);
    assert (!nat_addr_eq (&r1, &r2));
    nat_addr_set_ip (&r2, "0.0.0.0", 0);
    assert (!nat_addr_eq (&r1, &r2) && nat_addr_relay_peer (&r2) == 0);
    nat_addr_set_relay (&r2, 0);
    assert (!nat_addr_is_set (&r2));
    //  ICE pseudo-addresses: never equal to a relayed one with the same number
    nat_addr_t i1, i2;
    uint32_t index = 0;
    nat_addr_set_ice (&i1, 7);
    nat_addr_set_relay (&r2, 7);
    assert (nat_addr_is_set (&i1) && nat_addr_ice_index (&i1, &index) && index == 7);
    assert (nat_addr_relay_peer (&i1) == 0 && !nat_addr_ice_index (&r2, NULL));
    assert (!nat_addr_eq (&i1, &r2) && nat_addr_hash (&i1, 1) != nat_addr_hash (&r2, 1));
    assert (strcmp (nat_addr_format (&i1, buf, sizeof buf), "ice/7") == 0);
    nat_addr_set_ice (&i2, 7);
    assert (nat_addr_eq (&i1, &i2) && nat_addr_port (&i1) == 0);
    //  Birthday pseudo-addresses: neither ICE nor relayed
    nat_addr_set_bday (&i2, 7);
    assert (nat_addr_bday_index (&i2, &index) && index == 7 && !nat_addr_ice_index (&i2, NULL));
    assert (!nat_addr_relay_peer (&i2) && !nat_addr_bday_index (&i1, NULL) && !nat_addr_eq (&i1, &i2));
    assert (strcmp (nat_addr_format (&i2, buf, sizeof buf), "bday/7") == 0);

    assert (nat_addr_set_ip (&a, "192.0.2.1", 51820) == 0);
    assert (nat_addr_family (&a) == AF_INET && nat_addr_port (&a) == 51820);
    assert (strcmp (nat_addr_format (&a, buf, sizeof buf), "192.0.2.1:51820") == 0);

    //  A mapped address from a dual-stack socket is the same peer as plain IPv4
    assert (nat_addr_set_ip (&b, "::ffff:192.0.2.1", 51820) == 0);
    assert (nat_addr_family (&b) == AF_INET);
    assert (nat_addr_eq (&a, &b));
    assert (nat_addr_hash (&a, 7) == nat_addr_hash (&b, 7));
    struct sockaddr_in6 v6;
    nat_addr_to_v6 (&a, &v6);
    assert (IN6_IS_ADDR_V4MAPPED (&v6.sin6_addr) && ntohs (v6.sin6_port) == 51820);
    nat_addr_set_sockaddr (&b, (struct sockaddr *) &v6, sizeof v6);
    assert (nat_addr_eq (&a, &b));

    //  Port and address both matter
    assert (nat_addr_set_ip (&b, "192.0.2.1", 51821) == 0);
    assert (!nat_addr_eq (&a, &b));
    assert (nat_addr_hash (&a, 7) != nat_addr_hash (&b, 7));
    assert (nat_addr_set_ip (&b, "192.0.2.2", 51820) == 0);
    assert (!nat_addr_eq (&a, &b));

    assert (nat_addr_set_ip (&a, "2001:db8::1", 443) == 0);
    assert (nat_addr_family (&a) == AF_INET6 && nat_addr_port (&a) == 443);
    assert (strcmp (nat_addr_format (&a, buf, sizeof buf), "[2001:db8::1]:443") == 0);
    nat_addr_to_v6 (&a, &v6);
    nat_addr_set_sockaddr (&b, (struct sockaddr *) &v6, sizeof v6);
    assert (nat_addr_eq (&a, &b));
    assert (!nat_addr_eq (&a, &(nat_addr_t) { .len = 0 }));
    a.in6.sin6_scope_id = 2;
    assert (!nat_addr_eq (&a, &b));
    assert (strcmp (nat_addr_format (&a, buf, sizeof buf), "[2001:db8::1%2]:443") == 0);

    assert (nat_addr_set_ip (&a, "not-an-ip", 1) == -1 && !nat_addr_is_set (&a));
    assert (nat_addr_set_ip (&a, "1.2.3", 1) == -1);
    struct sockaddr unknown = { .sa_family = AF_UNIX };
    assert (nat_addr_set_sockaddr (&a, &unknown, sizeof unknown) == -1);
    if (verbose)
        printf ("nat_addr: ok\n");
}
