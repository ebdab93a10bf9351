/*  bus_peers: the node's static peer list (`peers = ( ... )` in node.cfg).

    crypto, nat and device each read it with this one parser, so a peer's index
    (its position in the list) means the same peer in every process and can travel
    in the 4-byte tag of a data-pipe record. Each process takes what it needs: crypto
    the public key and allowed addresses, nat the endpoint and the permission to use
    it, device the allowed addresses to route by. */
#ifndef BUS_PEERS_H_INCLUDED
#define BUS_PEERS_H_INCLUDED

#include "bus_config.h"
#include <stdbool.h>
#include <stdint.h>

#define BUS_PEERS_MAX           250     //  indices 0..249; higher tags are reserved
#define BUS_PEER_ALLOWED_MAX    16
#define BUS_PEER_FLOOD          0xFFFFFFFFu     //  tag: every peer (broadcast)

typedef struct {
    uint8_t family;             //  4 or 6
    uint8_t prefix;             //  0..32 or 0..128
    uint8_t addr [16];          //  network byte order, host bits cleared
} bus_prefix_t;

typedef struct {
    uint32_t index;
    char name [49];
    char public_key [45];       //  base64, as written in the config
    uint8_t key [32];
    char endpoint [256];        //  "host:port", "[v6]:port" or ""
    bool direct;                //  may we connect to endpoint on our own?
    int64_t keepalive_ms;       //  0: the node default
    bus_prefix_t allowed [BUS_PEER_ALLOWED_MAX];
    uint32_t allowed_count;
} bus_peer_t;

typedef struct _bus_peers_t bus_peers_t;

//  Reads `peers` from config (a missing list is an empty one). Problems are
//  recorded in config (bus_config_report prints them) and the bad peer skipped.
bus_peers_t *bus_peers_load (bus_config_t *config);
void bus_peers_destroy (bus_peers_t **self_p);
uint32_t bus_peers_count (bus_peers_t *self);
const bus_peer_t *bus_peers_get (bus_peers_t *self, uint32_t index);
const bus_peer_t *bus_peers_find_key (bus_peers_t *self, const uint8_t key [32]);
//  The peer whose allowed prefixes contain addr (longest match), or NULL.
const bus_peer_t *bus_peers_route (bus_peers_t *self, int family, const uint8_t *addr);

//  "10.100.0.2/32", "fd00::2/128", "10.100.0.2" (= /32). 0 or -1 with err.
int bus_prefix_parse (const char *text, bus_prefix_t *prefix, char *err, size_t errsize);
bool bus_prefix_contains (const bus_prefix_t *prefix, int family, const uint8_t *addr);
//  Writes "a.b.c.d/n" or "x::y/n".
void bus_prefix_format (const bus_prefix_t *prefix, char *buf, size_t size);

void bus_peers_test (bool verbose);
#endif
