/*  bridge_peers: the network's peers by id, from discovery's events (why:
    bridge_peers.h). A small array searched in order: a flow looks a peer up
    once, when it opens. */
#include "bridge_peers.h"
#include "bridge_params.h"
#include "bus_log.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    uint32_t index;
    char id [17];                       //  lower case
    char endpoints [BRIDGE_PEERS_ENDPOINTS][BRIDGE_PEERS_ENDPOINT_MAX + 1];
    size_t count;
    char current [BRIDGE_PEERS_ENDPOINT_MAX + 1];    //  nat's endpoint now (nat.peer), or ""
} s_peer_t;

struct _bridge_peers_t {
    s_peer_t *peers;
    size_t count, size;
};

bridge_peers_t *
bridge_peers_new (void)
{
    bridge_peers_t *self = (bridge_peers_t *) calloc (1, sizeof *self);
    assert (self);
    return self;
}

void
bridge_peers_destroy (bridge_peers_t **self_p)
{
    assert (self_p);
    bridge_peers_t *self = *self_p;
    if (self) {
        free (self->peers);
        free (self);
        *self_p = NULL;
    }
}

static s_peer_t *
s_at (bridge_peers_t *self, uint32_t index)
{
    for (size_t i = 0; i < self->count; i++)
        if (self->peers [i].index == index)
            return &self->peers [i];
    return NULL;
}

//  A new entry for index (no id yet), or NULL when the table is full
static s_peer_t *
s_add (bridge_peers_t *self, uint32_t index)
{
    if (self->count == BRIDGE_PEERS_MAX)
        return NULL;
    if (self->count == self->size) {
        self->size = self->size ? self->size * 2 : 16;
        self->peers = (s_peer_t *) realloc (self->peers, self->size * sizeof (s_peer_t));
        assert (self->peers);
    }
    s_peer_t *peer = &self->peers [self->count++];
    memset (peer, 0, sizeof *peer);
    peer->index = index;
    return peer;
}

//  The endpoints, best first; empty or over-long ones skipped
static void
s_set_endpoints (s_peer_t *peer, const char *const *endpoints, size_t count)
{
    peer->count = 0;
    for (size_t i = 0; i < count && peer->count < BRIDGE_PEERS_ENDPOINTS; i++)
        if (endpoints [i] && *endpoints [i] && strlen (endpoints [i]) <= BRIDGE_PEERS_ENDPOINT_MAX)
            snprintf (peer->endpoints [peer->count++], sizeof peer->endpoints [0], "%s", endpoints [i]);
}

int
bridge_peers_up (bridge_peers_t *self, uint32_t index, const char *id, const char *const *endpoints,
                 size_t count, char *err, size_t errsize)
{
    if (!id || !*id) {
        bridge_peers_down (self, index);
        return 0;
    }
    bool hex = strlen (id) == 16;
    for (size_t i = 0; hex && i < 16; i++)
        hex = isxdigit ((unsigned char) id [i]) != 0;
    if (!hex)
        return bus_errf (err, errsize, "peer %u: relay_id '%.20s' is not 16 hex digits", index, id);
    s_peer_t *peer = s_at (self, index);
    if (!peer && !(peer = s_add (self, index)))
        return bus_errf (err, errsize, "peer %u: the table holds %d peers already", index, BRIDGE_PEERS_MAX);
    for (size_t i = 0; i < 16; i++)
        peer->id [i] = (char) tolower ((unsigned char) id [i]);
    peer->id [16] = 0;
    s_set_endpoints (peer, endpoints, count);
    return 0;
}

int
bridge_peers_changed (bridge_peers_t *self, uint32_t index, const char *const *endpoints, size_t count)
{
    s_peer_t *peer = s_at (self, index);
    if (!peer)
        return -1;
    s_set_endpoints (peer, endpoints, count);
    return 0;
}

int
bridge_peers_current (bridge_peers_t *self, uint32_t index, const char *endpoint)
{
    //  nat may tell of a peer before discovery's peer.up reaches us (two
    //  publishers, no order between them): kept, without an id, until it does
    s_peer_t *peer = s_at (self, index);
    if (!peer && !(peer = s_add (self, index)))
        return -1;
    snprintf (peer->current, sizeof peer->current, "%s",
              endpoint && strlen (endpoint) <= BRIDGE_PEERS_ENDPOINT_MAX ? endpoint : "");
    return 0;
}

void
bridge_peers_down (bridge_peers_t *self, uint32_t index)
{
    s_peer_t *peer = s_at (self, index);
    if (peer)
        *peer = self->peers [--self->count];
}

int
bridge_peers_find (bridge_peers_t *self, const char *id, bool allow_loopback, bridge_addr_t *out, int max)
{
    const s_peer_t *peer = NULL;
    for (size_t i = 0; i < self->count && !peer; i++)
        if (strcasecmp (self->peers [i].id, id) == 0)
            peer = &self->peers [i];
    if (!peer)
        return -1;
    //  nat's endpoint first (the mapping that answers now), then the registry's
    const char *candidates [BRIDGE_PEERS_ENDPOINTS + 1];
    size_t count = 0;
    if (*peer->current)
        candidates [count++] = peer->current;
    for (size_t i = 0; i < peer->count; i++)
        candidates [count++] = peer->endpoints [i];
    int n = 0;
    for (size_t i = 0; i < count && n < max; i++) {
        char why [BRIDGE_REASON_MAX + 1];
        bridge_addr_t *a = &out [n];
        if (bridge_params_endpoint (candidates [i], &a->addr, &a->len, why, sizeof why) != 0
        ||  bridge_params_forbidden (&a->addr, allow_loopback)) {
            bus_debug ("peer %s: endpoint %s is not for the bridge", peer->id, candidates [i]);
            continue;
        }
        bool seen = false;
        for (int j = 0; j < n && !seen; j++)
            seen = bridge_addr_same (&out [j].addr, &a->addr);
        if (!seen)
            n++;
    }
    return n;
}

size_t
bridge_peers_count (bridge_peers_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->count; i++)
        n += self->peers [i].id [0] != 0;
    return n;
}

//  ---------------------------------------------------------------------------
//  Self test: up, changed and down by index, found by id in either case; the
//  endpoints a flow may not take (names, loopback, multicast, a relay's
//  address form) skipped, the best first kept first; bad ids refused.

void
bridge_peers_test (bool verbose)
{
    bridge_peers_t *self = bridge_peers_new ();
    bridge_addr_t out [BRIDGE_TARGETS_MAX];
    char err [200], text [64];
    assert (bridge_peers_find (self, "0123456789abcdef", false, out, BRIDGE_TARGETS_MAX) == -1);
    const char *eps [] = { "[2001:db8::7]:51820", "", "peer.example:51820", "127.0.0.1:51820",
                           "224.0.0.1:1", "192.0.2.7:51820", "[2001:db8::7]:51820", "198.51.100.7:4000" };
    assert (bridge_peers_up (self, 3, "0123456789ABCDEF", eps, 8, err, sizeof err) == 0);
    assert (bridge_peers_count (self) == 1);
    //  The usable ones, best first, each once; the loopback only when allowed
    int n = bridge_peers_find (self, "0123456789abcdef", false, out, BRIDGE_TARGETS_MAX);
    assert (n == 3);
    bridge_addr_text (&out [0].addr, text, sizeof text);
    assert (strcmp (text, "[2001:db8::7]:51820") == 0);
    bridge_addr_text (&out [2].addr, text, sizeof text);
    assert (strcmp (text, "198.51.100.7:4000") == 0);
    assert (bridge_peers_find (self, "0123456789ABCDEF", true, out, BRIDGE_TARGETS_MAX) == 4);
    assert (bridge_peers_find (self, "0123456789abcdef", false, out, 1) == 1);
    //  peer.changed: new endpoints, by index
    const char *moved [] = { "203.0.113.9:7000" };
    assert (bridge_peers_changed (self, 3, moved, 1) == 0 && bridge_peers_changed (self, 4, moved, 1) == -1);
    assert (bridge_peers_find (self, "0123456789abcdef", false, out, BRIDGE_TARGETS_MAX) == 1);
    bridge_addr_text (&out [0].addr, text, sizeof text);
    assert (strcmp (text, "203.0.113.9:7000") == 0);
    //  nat.peer: the endpoint nat uses now goes first, once; a relay path or
    //  nothing adds none
    assert (bridge_peers_current (self, 3, "198.51.100.9:1234") == 0);
    assert (bridge_peers_find (self, "0123456789abcdef", false, out, BRIDGE_TARGETS_MAX) == 2);
    bridge_addr_text (&out [0].addr, text, sizeof text);
    assert (strcmp (text, "198.51.100.9:1234") == 0);
    assert (bridge_peers_current (self, 3, "203.0.113.9:7000") == 0);
    assert (bridge_peers_find (self, "0123456789abcdef", false, out, BRIDGE_TARGETS_MAX) == 1);
    assert (bridge_peers_current (self, 3, "relay/0123456789abcdef") == 0);
    assert (bridge_peers_find (self, "0123456789abcdef", false, out, BRIDGE_TARGETS_MAX) == 1);
    assert (bridge_peers_current (self, 3, "") == 0);
    //  nat's word before discovery's: kept for the index, used once peer.up names it
    assert (bridge_peers_current (self, 9, "198.51.100.77:51820") == 0);
    assert (bridge_peers_count (self) == 1 && bridge_peers_find (self, "9999999999999999", false, out, 4) == -1);
    const char *private_only [] = { "10.2.0.2:51820" };
    assert (bridge_peers_up (self, 9, "9999999999999999", private_only, 1, err, sizeof err) == 0);
    assert (bridge_peers_count (self) == 2 && bridge_peers_find (self, "9999999999999999", false, out, 4) == 2);
    bridge_addr_text (&out [0].addr, text, sizeof text);
    assert (strcmp (text, "198.51.100.77:51820") == 0);
    bridge_peers_down (self, 9);
    //  A peer with nothing usable is known, with no candidate
    const char *none [] = { "relay.example:3479" };
    assert (bridge_peers_up (self, 5, "fedcba9876543210", none, 1, err, sizeof err) == 0);
    assert (bridge_peers_find (self, "fedcba9876543210", false, out, BRIDGE_TARGETS_MAX) == 0);
    //  Bad ids refused; an empty one forgets the index
    assert (bridge_peers_up (self, 6, "0123", eps, 1, err, sizeof err) == -1 && strstr (err, "not 16 hex digits"));
    assert (bridge_peers_up (self, 7, "0123456789abcdeg", eps, 1, err, sizeof err) == -1);
    assert (bridge_peers_up (self, 5, "", NULL, 0, err, sizeof err) == 0 && bridge_peers_count (self) == 1);
    //  peer.down
    bridge_peers_down (self, 3);
    bridge_peers_down (self, 3);
    assert (bridge_peers_count (self) == 0 && bridge_peers_find (self, "0123456789abcdef", false, out, 4) == -1);
    //  Many: the table grows
    for (uint32_t i = 0; i < 100; i++) {
        char id [17];
        snprintf (id, sizeof id, "%016x", i);
        assert (bridge_peers_up (self, i, id, eps + 5, 1, err, sizeof err) == 0);
    }
    assert (bridge_peers_count (self) == 100 && bridge_peers_find (self, "0000000000000063", false, out, 4) == 1);
    bridge_peers_destroy (&self);
    assert (self == NULL);
    if (verbose)
        printf ("bridge_peers: ok\n");
}
