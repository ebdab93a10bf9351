/*  disc_peers: the peers discovery has learned from the registry, and their indices.

    The index is the tag of the data pipes in every process of the node
    (docs/packet-path.md): static config peers keep 0..first-1, discovered keys get
    first, first+1, ... in the order they are first seen, and a key that leaves and
    returns gets its old index back (never another key's). Each update says what
    changed, so the service publishes exactly peer.up, peer.changed or nothing. A
    full list from the registry is reconciled with begin/end: peers that are no
    longer listed go down. */
#ifndef DISC_PEERS_H_INCLUDED
#define DISC_PEERS_H_INCLUDED

#include "disc_json.h"

typedef struct {
    uint32_t index;
    disc_peer_info_t info;              //  as last seen
    bool up;
    bool seen;                          //  listed in the reconciliation under way
} disc_peer_t;

typedef enum {
    DISC_PEERS_FULL = -1,               //  no index left (NODE_PEERS_MAX)
    DISC_PEERS_SAME = 0,                //  nothing to tell
    DISC_PEERS_UP,                      //  new, back, or name/address/registry id changed: peer.up
    DISC_PEERS_ENDPOINTS                //  only the endpoints changed: peer.changed
} disc_peers_change_t;

typedef struct _disc_peers_t disc_peers_t;

//  first: the first index to hand out (the number of static peers); max: one
//  past the last index allowed.
disc_peers_t *disc_peers_new (uint32_t first, uint32_t max);
void disc_peers_destroy (disc_peers_t **self_p);

disc_peers_change_t disc_peers_update (disc_peers_t *self, const disc_peer_info_t *info, disc_peer_t **peer_p);
//  Marks the peer with that key down; returns it if it was up, else NULL.
disc_peer_t *disc_peers_down (disc_peers_t *self, const uint8_t key [32]);

disc_peer_t *disc_peers_by_id (disc_peers_t *self, const char *id);
disc_peer_t *disc_peers_by_index (disc_peers_t *self, uint32_t index);
//  Every peer ever seen, in index order: 0 .. size-1.
size_t disc_peers_size (disc_peers_t *self);
disc_peer_t *disc_peers_at (disc_peers_t *self, size_t position);
size_t disc_peers_up_count (disc_peers_t *self);

//  Reconciliation with a full list: begin, update every listed peer, then
//  end returns, one by one, the peers that were up and not listed (now down).
void disc_peers_begin (disc_peers_t *self);
disc_peer_t *disc_peers_end_next (disc_peers_t *self);

void disc_peers_test (bool verbose);
#endif
