/*  crypto_service_priv: the crypto service's state, shared by its two files.

    crypto_service.c holds the service (config, sessions, queues, pipes, timer,
    bus handlers) and crypto_send.c how encrypted datagrams leave: the batches
    to nat and the sends on nat's lent socket (connection.tunnel_sends), the
    part tuned on its own (docs/packet-path.md, "Who sends"). Nothing outside
    services/crypto/ sees this struct (crypto_service.h keeps it opaque). */
#ifndef CRYPTO_SERVICE_PRIV_H_INCLUDED
#define CRYPTO_SERVICE_PRIV_H_INCLUDED

#include "crypto_service.h"
#include "crypto_identity.h"
#include "crypto_node.h"
#include "crypto_anycast.h"
#include "crypto_flood.h"
#include "bus_buffer.h"
#include "bus_pipe.h"
#include "node_peers.h"
#include "node_udp_tx.h"
#include <netinet/in.h>
#include <sys/socket.h>

#define MS  1000000ULL                  //  ns per ms
#define DIAL_MIN_GAP    (250 * MS)      //  nat.dial: at most one initiation per peer per 250 ms
#define KEEPALIVE_ANSWER_GAP (100 * MS) //  a keepalive is answered unless we sent to that peer this recently
#define ENDPOINT_REFRESH (1000 * MS)    //  re-confirm an unchanged handle at most once a second

//  Service-level counters, next to crypto_node's own
typedef enum {
    CRYPTO_CNT_QUEUE_FULL = 0,       //  packet for a peer whose queue is full
    CRYPTO_CNT_QUEUE_EXPIRED,        //  queued packets dropped: the handshake gave up or the keys went
    CRYPTO_CNT_BAD_PEER,             //  dev-crypto record for a peer index not configured
    CRYPTO_CNT_TOO_BIG,              //  packet that does not fit a batch
    CRYPTO_CNT_PIPE_FULL,            //  packets dropped by a full or absent next hop
    CRYPTO_CNT_BAD_BATCH,            //  malformed batches received
    CRYPTO_CNT_KEEPALIVES_TX,
    CRYPTO_CNT_ENDPOINTS,            //  ENDPOINT records sent
    CRYPTO_CNT_ROUTES,               //  ROUTE records taken from nat
    CRYPTO_CNT_BAD_ROUTES,           //  ROUTE records refused (peer, length or family)
    CRYPTO_CNT_WIRE_SENT,            //  datagrams we sent ourselves on nat's socket
    CRYPTO_CNT_WIRE_DROPPED,         //  ...that the kernel refused (buffer full, unreachable)
    CRYPTO_CNT_ROUTED_RX,            //  messages that came through other peers (PIPE_FLAG_ROUTED)
    CRYPTO_CNT_ANNOUNCES_TX,         //  route announcements sent in a neighbour's session
    CRYPTO_CNT_ANNOUNCES_RX,         //  ...received, published as route.heard
    CRYPTO_CNT_ANNOUNCES_DROPPED,    //  ...not sent: no session with the neighbour, too large, bad index
    CRYPTO_CNT_FLOOD_SENT,           //  our broadcasts sent along our tree, one flood frame per child
    CRYPTO_CNT_FLOOD_E2E,            //  ...and to a peer with a session the tree does not cover (one each)
    CRYPTO_CNT_FLOOD_RX,             //  flood frames taken (new), delivered to the device
    CRYPTO_CNT_FLOOD_FORWARDED,      //  flood frames sent on to the origin's children here
    CRYPTO_CNT_FLOOD_DUPLICATES,     //  flood frames seen before (another path) or our own back
    CRYPTO_CNT_FLOOD_OVER_BUDGET,    //  frames not forwarded: the origin's budget (routing.flood_packets_per_second)
    CRYPTO_CNT_FLOOD_DROPPED,        //  refused: bad header, packet not from the origin's addresses, table full
    CRYPTO_CNT_COUNTERS
} crypto_service_counter_t;

typedef struct {
    const node_peer_t *conf;
    char public_key [CRYPTO_KEY_BASE64_SIZE];
    bus_buffer_t queue [CRYPTO_QUEUE_MAX];  //  packets waiting for a session
    size_t q_head, q_count;
    bool has_handle;
    uint32_t handle;                    //  nat's handle of the last authenticated source
    uint64_t endpoint_at;               //  last ENDPOINT record sent
    uint64_t last_rx, last_tx, handshake_at, initiated_at;     //  0 = never
    uint64_t rx_packets, tx_packets, rx_bytes, tx_bytes;
    uint64_t keepalive_ns;
    struct sockaddr_in6 route;          //  where nat says the peer is, on its socket
    socklen_t route_len;                //  0: no route, send through nat
    uint64_t wire_packets, wire_bytes;  //  sent on nat's socket, not yet reported (SENT)
    bool up;                            //  as last published
    bool removed;                       //  a registry peer that left (or a reserved index)
    //  Mesh routing: equal-cost next hops through other peers (route.next), by
    //  registry id; 2 or more: each packet's flow picks one (route_flow_pick)
    uint8_t ecmp_count;
    uint64_t ecmp_ids [4];
    bool routed;                        //  route.next: its first next hop is another peer
} crypto_peer_state_t;

struct _crypto_service_t {
    bus_service_t *svc;
    crypto_service_config_t config;
    crypto_identity_t *identity;
    char public_key [CRYPTO_KEY_BASE64_SIZE];
    crypto_node_t *node;
    node_peers_t *peers;
    crypto_peer_state_t *peer;
    size_t peer_count;
    bus_pipe_t *from_dev, *to_nat, *from_nat, *to_dev;
    bus_batch_t *out_nat, *out_dev;
    //  nat's socket, while lent (bus_pipe_passed_fd of from_nat): datagrams for
    //  peers with a route are built in out_wire and sent from here
    bus_batch_t *out_wire;
    node_udp_tx_t *wire;
    int wire_family;
    uint64_t wire_gen;                  //  from_nat's passed_gen we last looked at
    bus_udp_dgram_t wire_dgrams [BUS_BATCH_MAX];
    int timer_id;
    uint64_t counters [CRYPTO_CNT_COUNTERS];
    node_peer_t **dyn;                   //  by index: the registry's peers (NULL = static)
    crypto_anycast_t *anycast;           //  which peers may answer from which anycast address (group.members)
    uint8_t flow_key [16];               //  this node's key of the flow hash (route_flow.h), random
    crypto_flood_t *flood;               //  broadcasts along trees (route.tree)
};

//  How datagrams leave (crypto_send.c)

//  Sends a batch if it holds anything; packets of a dropped batch are counted
void crypto_send_batch (crypto_service_t *self, bus_pipe_t *pipe, bus_batch_t *batch);
//  Reserves len plain bytes for tag in batch, sending the batch first when full
uint8_t *crypto_send_reserve (crypto_service_t *self, bus_pipe_t *pipe, bus_batch_t *batch,
                              uint32_t tag, size_t len);
//  Sends what waits for the wire: on nat's socket, then through nat
void crypto_send_out (crypto_service_t *self);
//  Sends out_wire's datagrams on nat's socket (one sendmmsg or GSO send)
void crypto_send_wire_flush (crypto_service_t *self);
//  After every receive on nat-crypto: takes nat's socket, or lets it go
void crypto_send_wire_check (crypto_service_t *self);
//  A ROUTE record from nat: where a peer's datagrams go on nat's socket
void crypto_send_route (crypto_service_t *self, const bus_packet_t *pkt);
//  Once a tick: SENT records telling nat what we sent on its socket
void crypto_send_wire_report (crypto_service_t *self);

#endif
