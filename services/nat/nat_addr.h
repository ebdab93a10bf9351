/*  nat_addr: one UDP peer address (IPv4 or IPv6 + port) as a small value type.
    Why a class of its own: the fast path looks peers up by the source address of
    every incoming datagram, so equality and hashing must be cheap and must agree on
    one canonical form. IPv4 peers reach a dual-stack socket as ::ffff:a.b.c.d;
    nat_addr stores them as plain AF_INET, so a peer configured as "192.0.2.1:51820"
    and a datagram from ::ffff:192.0.2.1 port 51820 compare equal.

    A third kind is no socket address: "through the relay to peer X"
    (nat_addr_set_relay). A relayed peer's endpoint is one of these, so the peer
    table, the handles crypto confirms and the endpoint logic treat a relayed path
    like any other; only the data path looks inside and frames the datagram for
    the relay in use at the moment of sending (nat_relay.h). A fourth kind,
    "through the ICE session of peer index N" (nat_addr_set_ice, shown as
    "ice/N"), works the same way for libnice's path (nat_ice.h). */
#ifndef NAT_ADDR_H_INCLUDED
#define NAT_ADDR_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

//  Longest text nat_addr_format writes: "[v6%scope]:65535" and the NUL
#define NAT_ADDR_TEXT_MAX 72

typedef struct {
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    };
    socklen_t len;              //  0 when unset
    uint64_t relay_peer;        //  set (and family AF_UNSPEC): through the relay to this peer id
} nat_addr_t;

//  Clears the address (unset).
void nat_addr_clear (nat_addr_t *self);

//  True when the address holds an IPv4 or IPv6 address.
bool nat_addr_is_set (const nat_addr_t *self);

//  Copies a kernel sockaddr, turning IPv4-mapped IPv6 into plain IPv4.
//  0, or -1 when the family is neither AF_INET nor AF_INET6 (or len is short).
int nat_addr_set_sockaddr (nat_addr_t *self, const struct sockaddr *sa, socklen_t len);

//  Sets from a numeric IP text (no brackets, no port) and a port. 0 or -1.
int nat_addr_set_ip (nat_addr_t *self, const char *ip, uint16_t port);

//  "Through the relay to peer id" (relay_peer not 0).
void nat_addr_set_relay (nat_addr_t *self, uint64_t relay_peer);

//  The peer id of a relayed address, 0 for any other.
static inline uint64_t
nat_addr_relay_peer (const nat_addr_t *self)
{
    return self->len == sizeof self->relay_peer && self->sa.sa_family == AF_UNSPEC ? self->relay_peer : 0;
}

//  "Through the ICE session of peer index" (nat_ice.c): also AF_UNSPEC, told
//  from a relayed address by its length
#define NAT_ADDR_ICE_LEN (sizeof (uint64_t) + 1)
void nat_addr_set_ice (nat_addr_t *self, uint32_t index);

//  True (and *index set, when index is not NULL) for an ICE pseudo-address.
static inline bool
nat_addr_ice_index (const nat_addr_t *self, uint32_t *index)
{
    if (self->len != NAT_ADDR_ICE_LEN || self->sa.sa_family != AF_UNSPEC)
        return false;
    if (index)
        *index = (uint32_t) self->relay_peer;
    return true;
}

//  "Through the birthday socket of peer index" (nat_bday_path.c: the one of
//  a peer's extra sockets its probe reached), shown as "bday/<index>"; also
//  AF_UNSPEC, told apart by its length
#define NAT_ADDR_BDAY_LEN (sizeof (uint64_t) + 2)
void nat_addr_set_bday (nat_addr_t *self, uint32_t index);

static inline bool
nat_addr_bday_index (const nat_addr_t *self, uint32_t *index)
{
    if (self->len != NAT_ADDR_BDAY_LEN || self->sa.sa_family != AF_UNSPEC)
        return false;
    if (index)
        *index = (uint32_t) self->relay_peer;
    return true;
}

//  AF_INET or AF_INET6 (0 when unset or relayed).
int nat_addr_family (const nat_addr_t *self);

//  Port in host order.
uint16_t nat_addr_port (const nat_addr_t *self);

//  For sendmsg on an AF_INET6 dual-stack socket: IPv4 becomes ::ffff:a.b.c.d.
//  IPv6 is copied unchanged.
void nat_addr_to_v6 (const nat_addr_t *self, struct sockaddr_in6 *out);

//  "192.0.2.1:51820", "[2001:db8::1]:51820", "[fe80::1%2]:51820", "relay/<16 hex>", "ice/<index>";
//  "(none)" if unset.
//  Returns buf.
char *nat_addr_format (const nat_addr_t *self, char *buf, size_t size);

//  Same family, address, port (and IPv6 scope).
bool nat_addr_eq (const nat_addr_t *a, const nat_addr_t *b);

//  Seeded hash of what nat_addr_eq compares (the seed defeats precomputed
//  collisions from addresses an attacker chooses).
uint64_t nat_addr_hash (const nat_addr_t *self, uint64_t seed);

void nat_addr_test (bool verbose);
#endif
