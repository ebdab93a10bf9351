/*  disc_peers: discovered peers and their stable indices (see disc_peers.h). */
#include "disc_peers.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _disc_peers_t {
    uint32_t first, max;
    disc_peer_t *peers;                 //  position p has index first + p
    size_t size, cap;
};

disc_peers_t *
disc_peers_new (uint32_t first, uint32_t max)
{
    disc_peers_t *self = calloc (1, sizeof *self);
    assert (self);
    self->first = first;
    self->max = max;
    return self;
}

void
disc_peers_destroy (disc_peers_t **self_p)
{
    assert (self_p);
    disc_peers_t *self = *self_p;
    if (!self)
        return;
    free (self->peers);
    free (self);
    *self_p = NULL;
}

static disc_peer_t *
s_by_key (disc_peers_t *self, const uint8_t key [32])
{
    for (size_t p = 0; p < self->size; p++)
        if (memcmp (self->peers [p].info.key, key, 32) == 0)
            return &self->peers [p];
    return NULL;
}

static bool
s_same_endpoints (const disc_peer_info_t *a, const disc_peer_info_t *b)
{
    if (a->endpoints_count != b->endpoints_count)
        return false;
    for (uint32_t e = 0; e < a->endpoints_count; e++)
        if (strcmp (a->endpoints [e], b->endpoints [e]) != 0)
            return false;
    return true;
}

disc_peers_change_t
disc_peers_update (disc_peers_t *self, const disc_peer_info_t *info, disc_peer_t **peer_p)
{
    disc_peer_t *peer = s_by_key (self, info->key);
    if (peer_p)
        *peer_p = NULL;
    if (!peer) {
        if (self->first + self->size >= self->max)
            return DISC_PEERS_FULL;
        if (self->size == self->cap) {
            self->cap = self->cap ? self->cap * 2 : 16;
            self->peers = realloc (self->peers, self->cap * sizeof (disc_peer_t));
            assert (self->peers);
        }
        peer = &self->peers [self->size];
        memset (peer, 0, sizeof *peer);
        peer->index = self->first + (uint32_t) self->size++;
    }
    if (peer_p)
        *peer_p = peer;
    peer->seen = true;
    disc_peers_change_t change = DISC_PEERS_SAME;
    //  A new registry id (the key was removed and registered again) is a new
    //  relay_id in peer.up
    if (!peer->up || strcmp (peer->info.name, info->name) != 0 || strcmp (peer->info.vip, info->vip) != 0
    ||  strcmp (peer->info.id, info->id) != 0)
        change = DISC_PEERS_UP;
    else
    if (!s_same_endpoints (&peer->info, info))
        change = DISC_PEERS_ENDPOINTS;
    peer->info = *info;
    peer->up = true;
    return change;
}

disc_peer_t *
disc_peers_down (disc_peers_t *self, const uint8_t key [32])
{
    disc_peer_t *peer = s_by_key (self, key);
    if (!peer || !peer->up)
        return NULL;
    peer->up = false;
    return peer;
}

disc_peer_t *
disc_peers_by_id (disc_peers_t *self, const char *id)
{
    for (size_t p = 0; p < self->size; p++)
        if (strcmp (self->peers [p].info.id, id) == 0)
            return &self->peers [p];
    return NULL;
}

disc_peer_t *
disc_peers_by_index (disc_peers_t *self, uint32_t index)
{
    if (index < self->first || index - self->first >= self->size)
        return NULL;
    return &self->peers [index - self->first];
}

size_t disc_peers_size (disc_peers_t *self) { return self->size; }

disc_peer_t *
disc_peers_at (disc_peers_t *self, size_t position)
{
    return position < self->size ? &self->peers [position] : NULL;
}

size_t
disc_peers_up_count (disc_peers_t *self)
{
    size_t count = 0;
    for (size_t p = 0; p < self->size; p++)
        count += self->peers [p].up;
    return count;
}

void
disc_peers_begin (disc_peers_t *self)
{
    for (size_t p = 0; p < self->size; p++)
        self->peers [p].seen = false;
}

disc_peer_t *
disc_peers_end_next (disc_peers_t *self)
{
    for (size_t p = 0; p < self->size; p++) {
        disc_peer_t *peer = &self->peers [p];
        if (peer->up && !peer->seen) {
            peer->up = false;
            return peer;
        }
    }
    return NULL;
}

//  --------------------------------------------------------------------------

static disc_peer_info_t
s_info (uint8_t key_byte, const char *name, const char *vip, const char *endpoint)
{
    disc_peer_info_t info;
    memset (&info, 0, sizeof info);
    snprintf (info.id, sizeof info.id, "%016x", key_byte);
    snprintf (info.name, sizeof info.name, "%s", name);
    snprintf (info.vip, sizeof info.vip, "%s", vip);
    memset (info.key, key_byte, 32);
    if (endpoint) {
        snprintf (info.endpoints [0], sizeof info.endpoints [0], "%s", endpoint);
        info.endpoints_count = 1;
    }
    info.online = true;
    return info;
}

void
disc_peers_test (bool verbose)
{
    disc_peers_t *self = disc_peers_new (2, 5);     //  2 static peers, room for 3
    disc_peer_t *peer;
    disc_peer_info_t a = s_info (1, "a", "10.0.0.1", "192.0.2.1:1");
    disc_peer_info_t b = s_info (2, "b", "10.0.0.2", NULL);
    assert (disc_peers_update (self, &a, &peer) == DISC_PEERS_UP && peer->index == 2);
    assert (disc_peers_update (self, &a, &peer) == DISC_PEERS_SAME && peer->index == 2);
    assert (disc_peers_update (self, &b, &peer) == DISC_PEERS_UP && peer->index == 3);
    //  Endpoints only: changed; name or address: up again
    snprintf (a.endpoints [0], sizeof a.endpoints [0], "192.0.2.9:1");
    assert (disc_peers_update (self, &a, &peer) == DISC_PEERS_ENDPOINTS && peer->index == 2);
    snprintf (a.vip, sizeof a.vip, "10.0.0.7");
    assert (disc_peers_update (self, &a, &peer) == DISC_PEERS_UP);
    assert (disc_peers_up_count (self) == 2);
    //  Down, and back with the same index
    assert (disc_peers_down (self, a.key) == disc_peers_by_index (self, 2));
    assert (disc_peers_down (self, a.key) == NULL);
    assert (disc_peers_up_count (self) == 1);
    disc_peer_info_t c = s_info (3, "c", "10.0.0.3", NULL);
    assert (disc_peers_update (self, &c, &peer) == DISC_PEERS_UP && peer->index == 4);
    assert (disc_peers_update (self, &a, &peer) == DISC_PEERS_UP && peer->index == 2);
    //  Full
    disc_peer_info_t d = s_info (4, "d", "10.0.0.4", NULL);
    assert (disc_peers_update (self, &d, &peer) == DISC_PEERS_FULL && peer == NULL);
    assert (disc_peers_by_id (self, c.id)->index == 4 && disc_peers_by_id (self, "nope") == NULL);
    assert (disc_peers_by_index (self, 1) == NULL && disc_peers_by_index (self, 5) == NULL);
    //  Reconciliation: b is no longer listed
    disc_peers_begin (self);
    disc_peers_update (self, &a, NULL);
    disc_peers_update (self, &c, NULL);
    peer = disc_peers_end_next (self);
    assert (peer && peer->index == 3 && !peer->up);
    assert (disc_peers_end_next (self) == NULL);
    assert (disc_peers_size (self) == 3 && disc_peers_at (self, 0)->index == 2 && disc_peers_at (self, 3) == NULL);
    if (verbose)
        printf ("  %zu peers, %zu up\n", disc_peers_size (self), disc_peers_up_count (self));
    disc_peers_destroy (&self);
    assert (self == NULL);
}
