/*  crypto_allowed: the inner source prefixes one peer may send from.

    After a data packet decrypts, its inner IPv4/IPv6 source address must fall in
    one of the sending peer's prefixes, or the packet is dropped: otherwise any
    peer holding a valid key could impersonate any other peer's virtual address.
    On TAP (layer 2) the same rule applies to the addresses inside the frame:
    crypto_allowed_frame. */
#ifndef CRYPTO_ALLOWED_H_INCLUDED
#define CRYPTO_ALLOWED_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _crypto_allowed_t crypto_allowed_t;

crypto_allowed_t *crypto_allowed_new (void);
void crypto_allowed_destroy (crypto_allowed_t **self_p);
//  Adds "10.100.0.2/32", "fd00::/64" or a bare address (host prefix). Host bits
//  set beyond the prefix are an error (a typo more often than intent).
int crypto_allowed_add (crypto_allowed_t *self, const char *cidr, char *err, size_t errsize);
void crypto_allowed_clear (crypto_allowed_t *self);
size_t crypto_allowed_size (const crypto_allowed_t *self);
//  True if an address (4 or 16 bytes) is inside one of the prefixes
bool crypto_allowed_address (const crypto_allowed_t *self, const uint8_t *addr, int family_bytes);
//  True if the packet is IPv4 or IPv6 with a complete header and its source
//  address is allowed; false for anything else (short, other version)
bool crypto_allowed_packet (const crypto_allowed_t *self, const uint8_t *packet, size_t size);
//  The same for an Ethernet frame (TAP): an IPv4 or IPv6 payload must have an
//  allowed source; an ARP packet an allowed sender address (or 0.0.0.0, an
//  address probe, which nobody learns from); any other frame is refused. What
//  the link itself sends from no peer's address passes too: a DHCP client's
//  0.0.0.0 (UDP 68 to 67) and IPv6 from fe80::/10 or :: (neighbour discovery,
//  duplicate address detection, MLD, mDNS over IPv6): nothing routes either
//  off the link, so they impersonate no peer's address. The
//  source MAC is not checked: the peer may choose its own (device mac_address),
//  and a forged one only misleads the bridge of the receiving kernel, not IP.
bool crypto_allowed_frame (const crypto_allowed_t *self, const uint8_t *frame, size_t size);
//  The source address of an IPv4 or IPv6 frame, or an IPv4 ARP packet's
//  sender address (family_bytes 4 or 16); false for any other frame. For the
//  layer-2 rule of crypto_node: a source no peer owns (a DHCP lease, a host
//  bridged behind the peer) may be used on a TAP network, another peer's never.
bool crypto_allowed_frame_source (const uint8_t *frame, size_t size, uint8_t address [16], int *family_bytes);

void crypto_allowed_test (bool verbose);
#endif
