/*  nat_peer_table: all static peers of the node, found three ways: by slot index
    (stable while the peer exists; what the data path and bifrostctl name), by
    public key (control plane: config, registry, crypto), and by current endpoint
    address (the fast path: every incoming datagram's source is looked up here, so it
    is an open-addressing hash of the canonical sockaddr with a per-table seed, no
    allocation per lookup). The table owns its peers and sits between each peer and
    the service's handler, so the address index follows every roam without the caller
    doing anything. When one address is confirmed for a second peer, the first peer
    loses it (crypto authenticated the second one there more recently). */
#ifndef NAT_PEER_TABLE_H_INCLUDED
#define NAT_PEER_TABLE_H_INCLUDED

#include "nat_peer.h"

typedef struct _nat_peer_table_t nat_peer_table_t;

nat_peer_table_t *nat_peer_table_new (uint64_t seed);
void nat_peer_table_destroy (nat_peer_table_t **self_p);

//  The service's handler, for every peer (forwarded by the table).
void nat_peer_table_set_handler (nat_peer_table_t *self, const nat_peer_handler_t *handler,
                                 void *arg);

//  Takes the peer (sets *peer_p to NULL). Returns its index, or -1 with a message
//  when a peer with that key is already there (the peer is destroyed then).
int nat_peer_table_add (nat_peer_table_t *self, nat_peer_t **peer_p, char *err, size_t err_size);

//  Removes and destroys the peer with that key. 0, or -1 when there is none.
int nat_peer_table_remove (nat_peer_table_t *self, const uint8_t *key);

size_t nat_peer_table_count (nat_peer_table_t *self);

//  Slots 0 .. nat_peer_table_slots () - 1; nat_peer_table_at gives NULL for an
//  empty slot (a removed peer).
size_t nat_peer_table_slots (nat_peer_table_t *self);
nat_peer_t *nat_peer_table_at (nat_peer_table_t *self, size_t index);

nat_peer_t *nat_peer_table_by_key (nat_peer_table_t *self, const uint8_t *key);
nat_peer_t *nat_peer_table_by_key_base64 (nat_peer_table_t *self, const char *text);
nat_peer_t *nat_peer_table_by_addr (nat_peer_table_t *self, const nat_addr_t *addr);

//  Ticks every peer; the earliest deadline of all peers.
void nat_peer_table_tick (nat_peer_table_t *self, int64_t now_ms);
int64_t nat_peer_table_next_deadline (nat_peer_table_t *self);

void nat_peer_table_test (bool verbose);
#endif
