/*  crypto_anycast: the anycast addresses each peer may answer from (see the
    header). The table is small (64 addresses x 64 members) and changes only
    when the router says so, so it is kept as plain arrays and every peer's set
    is written again on each change; the per-packet check stays crypto_node's. */
#include "crypto_anycast.h"
#include "crypto_identity.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char address [48];          //  as the router wrote it (inet_pton checked)
    uint32_t members [CRYPTO_ANYCAST_MEMBERS];
    size_t count;
} s_group_t;

struct _crypto_anycast_t {
    s_group_t groups [CRYPTO_ANYCAST_GROUPS];
    size_t count;
    uint64_t refused;
};

crypto_anycast_t *
crypto_anycast_new (void)
{
    crypto_anycast_t *self = (crypto_anycast_t *) calloc (1, sizeof (crypto_anycast_t));
    assert (self);
    return self;
}

void
crypto_anycast_destroy (crypto_anycast_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

//  A unicast address a peer may answer from: not multicast, not unspecified
static bool
s_unicast (const char *text)
{
    uint8_t addr [16];
    if (inet_pton (AF_INET, text, addr) == 1)
        return addr [0] < 224 && memcmp (addr, "\0\0\0\0", 4) != 0;
    if (inet_pton (AF_INET6, text, addr) == 1) {
        static const uint8_t zero [16] = { 0 };
        return addr [0] != 0xFF && memcmp (addr, zero, 16) != 0;
    }
    return false;
}

static s_group_t *
s_find (crypto_anycast_t *self, const char *group)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->groups [i].address, group) == 0)
            return &self->groups [i];
    return NULL;
}

bool
crypto_anycast_update (crypto_anycast_t *self, const char *group, bool anycast,
                       const uint32_t *members, size_t count)
{
    assert (self && group);
    s_group_t *known = s_find (self, group);
    if (!anycast || count == 0) {
        if (!known)
            return false;
        *known = self->groups [--self->count];      //  order does not matter
        return true;
    }
    if (!s_unicast (group) || strlen (group) >= sizeof known->address) {
        self->refused++;
        return false;
    }
    if (count > CRYPTO_ANYCAST_MEMBERS)
        count = CRYPTO_ANYCAST_MEMBERS;
    if (!known) {
        if (self->count == CRYPTO_ANYCAST_GROUPS) {
            self->refused++;
            return false;
        }
        known = &self->groups [self->count++];
        snprintf (known->address, sizeof known->address, "%s", group);
        known->count = 0;
    }
    else
    if (known->count == count && memcmp (known->members, members, count * sizeof *members) == 0)
        return false;
    memcpy (known->members, members, count * sizeof *members);
    known->count = count;
    return true;
}

void
crypto_anycast_apply (const crypto_anycast_t *self, crypto_node_t *node, size_t peer_count)
{
    for (size_t p = 0; p < peer_count; p++)
        crypto_node_peer_anycast_clear (node, (int) p);
    for (size_t g = 0; g < self->count; g++)
        for (size_t m = 0; m < self->groups [g].count; m++)
            if (self->groups [g].members [m] < peer_count)
                crypto_node_peer_anycast_add (node, (int) self->groups [g].members [m],
                                              self->groups [g].address, NULL, 0);
}

void
crypto_anycast_clear (crypto_anycast_t *self)
{
    self->count = 0;
}

size_t
crypto_anycast_size (const crypto_anycast_t *self)
{
    return self->count;
}

uint64_t
crypto_anycast_refused (const crypto_anycast_t *self)
{
    return self->refused;
}

void
crypto_anycast_test (bool verbose)
{
    (void) verbose;
    crypto_anycast_t *self = crypto_anycast_new ();
    uint32_t both [] = { 0, 1 }, second [] = { 1 };
    assert (crypto_anycast_update (self, "10.99.0.53", true, both, 2));
    assert (!crypto_anycast_update (self, "10.99.0.53", true, both, 2));        //  no change
    assert (crypto_anycast_update (self, "10.99.0.53", true, second, 1));       //  0 left
    assert (crypto_anycast_update (self, "fd00:99::53", true, both, 2));
    assert (crypto_anycast_size (self) == 2);
    //  Multicast groups and bad text are not anycast addresses
    assert (!crypto_anycast_update (self, "239.1.2.3", true, both, 2));
    assert (!crypto_anycast_update (self, "ff02::fb", true, both, 2));
    assert (!crypto_anycast_update (self, "0.0.0.0", true, both, 2));
    assert (!crypto_anycast_update (self, "10.99.0", true, both, 2));
    assert (crypto_anycast_refused (self) == 4);
    //  A multicast event for an address never known changes nothing
    assert (!crypto_anycast_update (self, "239.1.2.3", false, both, 2));

    //  Written into a node: peer 1 may answer from both addresses, peer 0 from the v6 one
    crypto_identity_t *identity = crypto_identity_new ();
    crypto_node_t *node = crypto_node_new (identity, NULL, NULL);
    assert (node);
    uint8_t key [32];
    for (int p = 0; p < 2; p++) {
        memset (key, 0x40 + p, sizeof key);
        assert (crypto_node_peer_add (node, key, NULL, 0) == p);
    }
    crypto_anycast_apply (self, node, 2);
    uint8_t v4 [4], v6 [16];
    inet_pton (AF_INET, "10.99.0.53", v4);
    inet_pton (AF_INET6, "fd00:99::53", v6);
    assert (crypto_node_peer_anycast_has (node, 1, v4, 4) && crypto_node_peer_anycast_has (node, 1, v6, 16));
    assert (!crypto_node_peer_anycast_has (node, 0, v4, 4) && crypto_node_peer_anycast_has (node, 0, v6, 16));
    //  The address forgotten (no member left): nobody may answer from it
    assert (crypto_anycast_update (self, "10.99.0.53", true, NULL, 0));
    crypto_anycast_apply (self, node, 2);
    assert (!crypto_node_peer_anycast_has (node, 1, v4, 4));
    //  The node's whole source rule (crypto_node_peer_allows), on an IPv4 packet
    //  and on a TAP frame: peer 0 owns 10.100.0.2, peer 1 10.100.0.3
    assert (crypto_node_peer_allow (node, 0, "10.100.0.2/32", NULL, 0) == 0);
    assert (crypto_node_peer_allow (node, 1, "10.100.0.3/32", NULL, 0) == 0);
    uint8_t frame [14 + 20] = { 0 };
    uint8_t *ip = frame + 14;
    frame [12] = 0x08;
    ip [0] = 0x45;
    const char *sources [] = { "10.100.0.2", "10.100.0.3", "10.100.0.207", "10.99.0.53" };
    //  On TUN: own prefix and anycast membership only (peer 0 is no member of 10.99.0.53 now)
    bool tun [] = { true, false, false, false };
    //  On TAP: also an address nobody owns (a DHCP lease), never one of peer
    //  1's (its own, or the anycast address it is the member of)
    bool tap [] = { true, false, true, false };
    assert (crypto_anycast_update (self, "10.99.0.53", true, second, 1));
    crypto_anycast_apply (self, node, 2);
    for (int layer2 = 0; layer2 < 2; layer2++) {
        crypto_node_set_layer2 (node, layer2);
        for (size_t s = 0; s < sizeof sources / sizeof sources [0]; s++) {
            assert (inet_pton (AF_INET, sources [s], ip + 12) == 1);
            bool allowed = layer2 ? crypto_node_peer_allows (node, 0, frame, sizeof frame)
                                  : crypto_node_peer_allows (node, 0, ip, 20);
            assert (allowed == (layer2 ? tap [s] : tun [s]));
        }
    }
    //  On TAP, an ARP sender that is peer 1's address is refused; a leased one taken
    uint8_t arp [14 + 28] = { 0 };
    arp [12] = 0x08; arp [13] = 0x06;
    memcpy (arp + 14, "\x00\x01\x08\x00\x06\x04", 6);
    assert (inet_pton (AF_INET, "10.100.0.3", arp + 14 + 14) == 1);
    assert (!crypto_node_peer_allows (node, 0, arp, sizeof arp));
    assert (inet_pton (AF_INET, "10.100.0.207", arp + 14 + 14) == 1);
    assert (crypto_node_peer_allows (node, 0, arp, sizeof arp));
    crypto_node_set_layer2 (node, false);
    //  A member index beyond the peers is ignored
    uint32_t far [] = { 7 };
    assert (crypto_anycast_update (self, "10.99.0.54", true, far, 1));
    crypto_anycast_apply (self, node, 2);
    crypto_anycast_clear (self);
    assert (crypto_anycast_size (self) == 0);
    crypto_node_destroy (&node);
    crypto_identity_destroy (&identity);
    crypto_anycast_destroy (&self);
}
