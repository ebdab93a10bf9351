/*  nat_service_priv: the nat service's state, shared by its two files.

    nat_service.c holds the service (config, peers, bus, timers, life cycle) and
    nat_datapath.c the packet path (UDP <-> nat-crypto), which is the part that
    is measured and tuned on its own; both need the same struct, and nothing
    outside services/nat/ sees it (nat_service.h keeps it opaque). */
#ifndef NAT_SERVICE_PRIV_H_INCLUDED
#define NAT_SERVICE_PRIV_H_INCLUDED

#include "nat_service.h"
#include "nat_demux.h"
#include "nat_handles.h"
#include "nat_peer_table.h"
#include "nat_resolver.h"
#include "nat_udp.h"
#include "bus_clock.h"
#include "bus_pause.h"
#include "bus_pipe.h"

#define NAT_ROUNDS 16           //  reads per loop wakeup, so neither direction starves

//  What the service keeps per peer beside nat_peer (which holds no names)
typedef struct {
    char name [49];
    nat_addr_t dial;            //  the address of the last dial attempt
    bool redial;                //  crypto lost its session: dial once nat-crypto is connected
    bool routed;                //  crypto was given a route to the peer (ROUTE record)...
    nat_addr_t route;           //  ...to this address
} nat_peer_info_t;

typedef struct {
    uint64_t to_crypto, from_crypto;
    uint64_t drop_pipe, drop_no_endpoint, drop_bad_peer, drop_stale_handle, drop_oversize;
    uint64_t keepalives, dials;
    uint64_t pauses;            //  UDP reading paused because nat-crypto was full
    uint64_t tunnel_datagrams, tunnel_bytes;    //  sent by crypto on our socket (SENT records)
    uint64_t routes;            //  ROUTE records sent
    uint64_t bad_reports;       //  SENT records of the wrong length
} nat_counters_t;

struct _nat_service_t {
    bus_service_t *svc;
    bus_loop_t *loop;
    bus_cfg_connection_t config;      //  as checked
    node_peers_t *peers;
    nat_peer_info_t *info;        //  by peer index
    size_t info_count;
    nat_peer_table_t *table;
    nat_udp_t *udp;
    nat_resolver_t *resolver;
    nat_demux_t *demux;
    nat_handles_t *handles;
    bus_pipe_t *from_crypto;
    bus_pipe_t *to_crypto;
    bus_batch_t *batch;         //  the batch being filled for nat-crypto
    bus_batch_t *ctl;           //  ROUTE records for nat-crypto
    uint64_t links_seen;        //  nat-crypto's links when the routes were last given
    zmq_pollitem_t udp_item;
    zmq_pollitem_t resolver_item;
    int tick_timer;
    bus_pause_t *pause;         //  UDP reading paused while crypto is behind: 1 ms, doubling to 64 ms
    //  One sendmmsg batch: addresses are copied, since an ENDPOINT record later in
    //  the same crypto batch may move the peer
    nat_udp_tx_t tx [BUS_BATCH_MAX];
    nat_addr_t tx_addr [BUS_BATCH_MAX];
    nat_counters_t counters;
};

//  The service gives crypto its routes again after a new link of nat-crypto
//  (nat_service.c; the data path calls it after every send).
void nat_service_routes_relink (nat_service_t *self);

//  The data path (nat_datapath.c): UDP readable, nat-crypto readable, and the
//  pause of UDP reading while crypto is behind.
int nat_datapath_udp_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg);
int nat_datapath_pipe_ready (bus_pipe_t *pipe, void *arg);
bus_pause_t *nat_datapath_pause_new (nat_service_t *self);

#endif
