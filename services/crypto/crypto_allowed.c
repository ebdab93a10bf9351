/*  crypto_allowed: a short list of prefixes per peer, scanned linearly; a peer
    has a handful of prefixes, so a trie would cost more than it saves. */
#include "crypto_allowed.h"
#include "bus_log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PREFIXES 1024

typedef struct {
    uint8_t addr [16];
    int bytes;                  //  4 or 16
    int bits;                   //  prefix length
} s_prefix_t;

struct _crypto_allowed_t {
    s_prefix_t *prefixes;
    size_t size;
    size_t cap;
};

crypto_allowed_t *
crypto_allowed_new (void)
{
    crypto_allowed_t *self = calloc (1, sizeof *self);
    assert (self);
    return self;
}

void
crypto_allowed_destroy (crypto_allowed_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->prefixes);
        free (*self_p);
        *self_p = NULL;
    }
}

static bool
s_match (const s_prefix_t *p, const uint8_t *addr)
{
    int full = p->bits / 8, rest = p->bits % 8;
    if (memcmp (p->addr, addr, (size_t) full))
        return false;
    if (rest) {
        uint8_t mask = (uint8_t) (0xFF << (8 - rest));
        if ((p->addr [full] & mask) != (addr [full] & mask))
            return false;
    }
    return true;
}

int
crypto_allowed_add (crypto_allowed_t *self, const char *cidr, char *err, size_t errsize)
{
    if (!cidr || !*cidr)
        return bus_errf (err, errsize, "empty address prefix");
    char text [64];
    if (strlen (cidr) >= sizeof text)
        return bus_errf (err, errsize, "address prefix '%.40s...' is too long", cidr);
    strcpy (text, cidr);
    s_prefix_t p;
    memset (&p, 0, sizeof p);
    char *slash = strchr (text, '/');
    if (slash)
        *slash = 0;
    if (inet_pton (AF_INET, text, p.addr) == 1)
        p.bytes = 4;
    else
    if (inet_pton (AF_INET6, text, p.addr) == 1)
        p.bytes = 16;
    else
        return bus_errf (err, errsize, "'%s' is not an IPv4 or IPv6 address", text);
    p.bits = p.bytes * 8;
    if (slash) {
        char *end;
        long bits = strtol (slash + 1, &end, 10);
        if (!slash [1] || *end || bits < 0 || bits > p.bytes * 8)
            return bus_errf (err, errsize, "'%s': prefix length must be 0..%d", cidr, p.bytes * 8);
        p.bits = (int) bits;
    }
    //  Host bits beyond the prefix must be zero
    uint8_t masked [16];
    memcpy (masked, p.addr, 16);
    for (int i = 0; i < 16; i++) {
        int keep = p.bits - 8 * i;
        if (keep <= 0)
            masked [i] = 0;
        else
        if (keep < 8)
            masked [i] &= (uint8_t) (0xFF << (8 - keep));
    }
    if (memcmp (masked, p.addr, 16))
        return bus_errf (err, errsize, "'%s' has host bits set beyond /%d", cidr, p.bits);
    if (self->size == MAX_PREFIXES)
        return bus_errf (err, errsize, "more than %d prefixes for one peer", MAX_PREFIXES);
    if (self->size == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 4;
        s_prefix_t *grown = realloc (self->prefixes, cap * sizeof *grown);
        assert (grown);
        self->prefixes = grown;
        self->cap = cap;
    }
    self->prefixes [self->size++] = p;
    return 0;
}

void
crypto_allowed_clear (crypto_allowed_t *self)
{
    self->size = 0;
}

size_t
crypto_allowed_size (const crypto_allowed_t *self)
{
    return self->size;
}

bool
crypto_allowed_address (const crypto_allowed_t *self, const uint8_t *addr, int family_bytes)
{
    for (size_t i = 0; i < self->size; i++)
        if (self->prefixes [i].bytes == family_bytes && s_match (&self->prefixes [i], addr))
            return true;
    return false;
}

bool
crypto_allowed_packet (const crypto_allowed_t *self, const uint8_t *packet, size_t size)
{
    if (!packet || size < 1)
        return false;
    int version = packet [0] >> 4;
    if (version == 4 && size >= 20)
        return crypto_allowed_address (self, packet + 12, 4);
    if (version == 6 && size >= 40)
        return crypto_allowed_address (self, packet + 8, 16);
    return false;
}

//  A DHCP client before it has an address (layer 2 only): IPv4 from 0.0.0.0,
//  UDP port 68 to 67. Nothing can answer 0.0.0.0 at the IP layer, so the
//  source impersonates nobody.
static bool
s_dhcp_client (const uint8_t *ip, size_t len)
{
    static const uint8_t unspecified [4] = { 0 };
    size_t ihl = (size_t) (ip [0] & 0x0F) * 4;
    return ihl >= 20 && len >= ihl + 8 && ip [9] == 17 && memcmp (ip + 12, unspecified, 4) == 0
        && ip [ihl] == 0 && ip [ihl + 1] == 68 && ip [ihl + 2] == 0 && ip [ihl + 3] == 67;
}

//  An IPv6 source that belongs to the link, not to a peer's prefix (layer 2
//  only): :: (duplicate address detection, MLD before an address) or fe80::/10
//  (neighbour discovery, MLD, mDNS). The kernel never routes either off the link.
static bool
s_link_local6 (const uint8_t *src)
{
    static const uint8_t unspecified [16] = { 0 };
    return (src [0] == 0xFE && (src [1] & 0xC0) == 0x80) || memcmp (src, unspecified, 16) == 0;
}

bool
crypto_allowed_frame (const crypto_allowed_t *self, const uint8_t *frame, size_t size)
{
    if (!frame || size < 14)
        return false;
    unsigned type = (unsigned) frame [12] << 8 | frame [13];
    const uint8_t *payload = frame + 14;
    size_t len = size - 14;
    if (type == 0x0800)
        return len >= 20 && payload [0] >> 4 == 4
            && (crypto_allowed_packet (self, payload, len) || s_dhcp_client (payload, len));
    if (type == 0x86DD)
        return len >= 40 && payload [0] >> 4 == 6
            && (crypto_allowed_packet (self, payload, len) || s_link_local6 (payload + 8));
    if (type == 0x0806) {
        //  Ethernet/IPv4 ARP: htype 1, ptype 0x0800, hlen 6, plen 4; sender IP at 14
        static const uint8_t arp_ipv4 [6] = { 0, 1, 0x08, 0x00, 6, 4 };
        static const uint8_t unspecified [4] = { 0 };
        if (len < 28 || memcmp (payload, arp_ipv4, sizeof arp_ipv4) != 0)
            return false;
        return memcmp (payload + 14, unspecified, 4) == 0
            || crypto_allowed_address (self, payload + 14, 4);
    }
    return false;
}

bool
crypto_allowed_frame_source (const uint8_t *frame, size_t size, uint8_t address [16], int *family_bytes)
{
    if (!frame || size < 14)
        return false;
    unsigned type = (unsigned) frame [12] << 8 | frame [13];
    const uint8_t *payload = frame + 14;
    size_t len = size - 14;
    static const uint8_t arp_ipv4 [6] = { 0, 1, 0x08, 0x00, 6, 4 };
    if (type == 0x0800 && len >= 20 && payload [0] >> 4 == 4)
        memcpy (address, payload + 12, *family_bytes = 4);
    else
    if (type == 0x86DD && len >= 40 && payload [0] >> 4 == 6)
        memcpy (address, payload + 8, *family_bytes = 16);
    else
    if (type == 0x0806 && len >= 28 && memcmp (payload, arp_ipv4, sizeof arp_ipv4) == 0)
        memcpy (address, payload + 14, *family_bytes = 4);
    else
        return false;
    return true;
}

void
crypto_allowed_test (bool verbose)
{
    char err [128];
    crypto_allowed_t *a = crypto_allowed_new ();
    assert (crypto_allowed_add (a, "10.100.0.2/32", err, sizeof err) == 0);
    assert (crypto_allowed_add (a, "192.168.64.0/18", err, sizeof err) == 0);
    assert (crypto_allowed_add (a, "fd00:1::/64", err, sizeof err) == 0);
    assert (crypto_allowed_add (a, "fd00:2::7", err, sizeof err) == 0);
    assert (crypto_allowed_size (a) == 4);
    //  Bad input: clear errors
    assert (crypto_allowed_add (a, "10.0.0.1/33", err, sizeof err) == -1);
    assert (strstr (err, "0..32"));
    assert (crypto_allowed_add (a, "10.0.0.1/24", err, sizeof err) == -1);
    assert (strstr (err, "host bits"));
    assert (crypto_allowed_add (a, "10.0.0.0/", err, sizeof err) == -1);
    assert (crypto_allowed_add (a, "banana/8", err, sizeof err) == -1);
    assert (strstr (err, "not an IPv4 or IPv6"));
    assert (crypto_allowed_add (a, "", err, sizeof err) == -1);
    assert (crypto_allowed_add (a, "fd00::/129", err, sizeof err) == -1);
    if (verbose)
        printf ("  last error: %s\n", err);
    assert (crypto_allowed_size (a) == 4);

    uint8_t v4 [20] = { 0x45 };
    uint8_t src [4] = { 10, 100, 0, 2 };
    memcpy (v4 + 12, src, 4);
    assert (crypto_allowed_packet (a, v4, sizeof v4));
    v4 [15] = 3;
    assert (!crypto_allowed_packet (a, v4, sizeof v4));
    uint8_t in18 [4] = { 192, 168, 127, 255 }, out18 [4] = { 192, 168, 128, 0 };
    memcpy (v4 + 12, in18, 4);
    assert (crypto_allowed_packet (a, v4, sizeof v4));
    memcpy (v4 + 12, out18, 4);
    assert (!crypto_allowed_packet (a, v4, sizeof v4));
    memcpy (v4 + 12, in18, 4);
    assert (!crypto_allowed_packet (a, v4, 19));           //  truncated header

    uint8_t v6 [40] = { 0x60 };
    assert (inet_pton (AF_INET6, "fd00:1::abcd", v6 + 8) == 1);
    assert (crypto_allowed_packet (a, v6, sizeof v6));
    assert (inet_pton (AF_INET6, "fd00:1:0:1::abcd", v6 + 8) == 1);
    assert (!crypto_allowed_packet (a, v6, sizeof v6));
    assert (inet_pton (AF_INET6, "fd00:2::7", v6 + 8) == 1);
    assert (crypto_allowed_packet (a, v6, sizeof v6));
    assert (!crypto_allowed_packet (a, v6, 39));
    //  An IPv4 prefix never matches an IPv6 packet and other versions never pass
    v6 [0] = 0x50;
    assert (!crypto_allowed_packet (a, v6, sizeof v6));
    assert (!crypto_allowed_packet (a, NULL, 0));

    //  Frames (TAP): the same addresses inside Ethernet, and ARP's sender
    uint8_t frame [14 + 40] = { 0 };
    frame [12] = 0x08; frame [13] = 0x00;
    memset (v4, 0, sizeof v4);
    v4 [0] = 0x45;
    memcpy (v4 + 12, src, 4);
    memcpy (frame + 14, v4, 20);
    assert (crypto_allowed_frame (a, frame, 14 + 20));
    assert (!crypto_allowed_frame (a, frame, 14 + 19));     //  truncated
    frame [14 + 15] = 3;
    assert (!crypto_allowed_frame (a, frame, 14 + 20));
    frame [12] = 0x86; frame [13] = 0xDD;                   //  says IPv6, holds IPv4
    assert (!crypto_allowed_frame (a, frame, 14 + 20));
    v6 [0] = 0x60;
    memcpy (frame + 14, v6, 40);                            //  fd00:2::7, allowed
    assert (crypto_allowed_frame (a, frame, sizeof frame));
    uint8_t arp [14 + 28] = { 0 };
    static const uint8_t arp_head [8] = { 0, 1, 0x08, 0x00, 6, 4, 0, 1 };
    arp [12] = 0x08; arp [13] = 0x06;
    memcpy (arp + 14, arp_head, sizeof arp_head);
    memcpy (arp + 14 + 14, src, 4);                         //  sender 10.100.0.2
    assert (crypto_allowed_frame (a, arp, sizeof arp));
    arp [14 + 17] = 9;                                      //  sender 10.100.0.9
    assert (!crypto_allowed_frame (a, arp, sizeof arp));
    memset (arp + 14 + 14, 0, 4);                           //  probe: 0.0.0.0
    assert (crypto_allowed_frame (a, arp, sizeof arp));
    assert (!crypto_allowed_frame (a, arp, sizeof arp - 1));
    arp [12] = 0x88; arp [13] = 0xB5;                       //  another ethertype
    assert (!crypto_allowed_frame (a, arp, sizeof arp));
    assert (!crypto_allowed_frame (a, NULL, 0));

    //  Frames from the link's own sources (TAP only): a DHCP client's 0.0.0.0,
    //  UDP 68 -> 67, and IPv6 link-local or :: (neighbour discovery, DAD, MLD)
    uint8_t dhcp [14 + 28] = { 0 };
    dhcp [12] = 0x08; dhcp [13] = 0x00;
    dhcp [14] = 0x45; dhcp [14 + 9] = 17;                   //  UDP from 0.0.0.0
    dhcp [14 + 21] = 68; dhcp [14 + 23] = 67;
    assert (crypto_allowed_frame (a, dhcp, sizeof dhcp));
    assert (!crypto_allowed_packet (a, dhcp + 14, 28));     //  never on TUN
    assert (!crypto_allowed_frame (a, dhcp, sizeof dhcp - 1));  //  UDP header cut
    dhcp [14 + 23] = 68;                                    //  to port 68
    assert (!crypto_allowed_frame (a, dhcp, sizeof dhcp));
    dhcp [14 + 23] = 67; dhcp [14 + 9] = 6;                 //  TCP
    assert (!crypto_allowed_frame (a, dhcp, sizeof dhcp));
    dhcp [14 + 9] = 17; dhcp [14 + 15] = 9;                 //  from 0.0.0.9
    assert (!crypto_allowed_frame (a, dhcp, sizeof dhcp));
    frame [12] = 0x86; frame [13] = 0xDD;
    const char *link [] = { "fe80::1", "febf:ffff::1", "::" };
    for (size_t i = 0; i < sizeof link / sizeof link [0]; i++) {
        assert (inet_pton (AF_INET6, link [i], frame + 14 + 8) == 1);
        assert (crypto_allowed_frame (a, frame, sizeof frame));
        assert (!crypto_allowed_packet (a, frame + 14, 40));
        assert (!crypto_allowed_frame (a, frame, sizeof frame - 1));
    }
    const char *not_link [] = { "fec0::1", "ff02::1", "::1", "fd00:3::1" };
    for (size_t i = 0; i < sizeof not_link / sizeof not_link [0]; i++) {
        assert (inet_pton (AF_INET6, not_link [i], frame + 14 + 8) == 1);
        assert (!crypto_allowed_frame (a, frame, sizeof frame));
    }

    //  0.0.0.0/0 allows every IPv4 source
    crypto_allowed_clear (a);
    assert (!crypto_allowed_packet (a, v4, sizeof v4));
    assert (crypto_allowed_add (a, "0.0.0.0/0", err, sizeof err) == 0);
    assert (crypto_allowed_packet (a, v4, sizeof v4));
    crypto_allowed_destroy (&a);
    assert (a == NULL);
}
