/*  node_peers: the node's static peer list (`peers = ( ... )` in node.cfg).

    crypto, nat and device each read it with this one parser, so a peer's index
    (its position in the list) means the same peer in every process and can travel
    in the 4-byte tag of a data-pipe record. Each process takes what it needs: crypto
    the public key and allowed addresses, nat the endpoint and the permission to use
    it, device the allowed addresses to route by. */
#ifndef NODE_PEERS_H_INCLUDED
#define NODE_PEERS_H_INCLUDED

#include "bus_config_schema.h"
#include <stdbool.h>
#include <stdint.h>

#define NODE_PEERS_MAX           250     //  indices 0..249; higher tags are reserved
#define NODE_PEER_ALLOWED_MAX    16

typedef struct {
    uint8_t family;             //  4 or 6
    uint8_t prefix;             //  0..32 or 0..128
    uint8_t addr [16];          //  network byte order, host bits cleared
} node_prefix_t;

typedef struct {
    uint32_t index;
    char name [49];
    char public_key [45];       //  base64, as written in the config
    uint8_t key [32];
    char endpoint [256];        //  "host:port", "[v6]:port" or ""
    bool direct;                //  may we connect to endpoint on our own?
    int64_t keepalive_ms;       //  resolved: the peer's `keepalive`, else connection.keepalive_interval
    node_prefix_t allowed [NODE_PEER_ALLOWED_MAX];
    uint32_t allowed_count;
} node_peer_t;

typedef struct _node_peers_t node_peers_t;

//  Reads `peers` from config (a missing list is an empty one). Problems are
//  recorded in config (bus_config_report prints them) and the bad peer skipped.
//  connection is the node's checked `connection` group, for the per-peer keys
//  that override it (keepalive); NULL: its defaults.
node_peers_t *node_peers_load (bus_config_t *config, const bus_cfg_connection_t *connection);
void node_peers_destroy (node_peers_t **self_p);
uint32_t node_peers_count (node_peers_t *self);
const node_peer_t *node_peers_get (node_peers_t *self, uint32_t index);
const node_peer_t *node_peers_find_key (node_peers_t *self, const uint8_t key [32]);
//  The peer whose allowed prefixes contain addr (longest match), or NULL.
const node_peer_t *node_peers_route (node_peers_t *self, int family, const uint8_t *addr);

//  "10.100.0.2/32", "fd00::2/128", "10.100.0.2" (= /32). 0 or -1 with err.
int node_prefix_parse (const char *text, node_prefix_t *prefix, char *err, size_t errsize);
bool node_prefix_contains (const node_prefix_t *prefix, int family, const uint8_t *addr);
//  Writes "a.b.c.d/n" or "x::y/n".
void node_prefix_format (const node_prefix_t *prefix, char *buf, size_t size);

void node_peers_test (bool verbose);
#endif
