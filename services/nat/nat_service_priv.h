/*  nat_service_priv: the nat service's state, shared by its two files.

    nat_service.c holds the service (config, peers, bus, timers, life cycle) and
    nat_datapath.c the packet path (UDP <-> nat-crypto), which is the part that
    is measured and tuned on its own; both need the same struct, and nothing
    outside services/nat/ sees it (nat_service.h keeps it opaque). */
#ifndef NAT_SERVICE_PRIV_H_INCLUDED
#define NAT_SERVICE_PRIV_H_INCLUDED

#include "nat_service.h"
#include "nat_demux.h"
#include "nat_transit.h"
#include "nat_bridge_fwd.h"
#include "nat_handles.h"
#include "nat_hs_budget.h"
#include "nat_hs_load.h"
#include "nat_cookie_secret.h"
#include "nat_cookie_jar.h"
#include "nat_peer_table.h"
#include "nat_relay.h"
#include "nat_resolver.h"
#include "nat_udp.h"
#include "nat_netwatch.h"
#include "nat_pathstat.h"
#include "nat_tried.h"
#include "nat_bday.h"
#include "bus_clock.h"
#include "bus_pause.h"
#include "bus_pipe.h"

#define NAT_ROUNDS 16
#define NAT_SEEN_EARLY_MAX 32   //  ESTABLISHED kept for peers not known yet
#define NAT_SEEN_EARLY_MS 60000
#define NAT_NETCHANGE_DELAY_MS 5000   //  direct paths tried again this long after an address/route change
#define NAT_DIRECT_HOLD_MS 800  //  a direct path heard this recently keeps its peer off the relay           //  reads per loop wakeup, so neither direction starves

//  Where one probe (a handshake initiation of a peer up through the relay)
//  goes: a few addresses (the peer's mapping as the relay saw it, a registered
//  candidate), then, with port prediction, the mapping's address at the ports
//  after the seen one (nat_relay_path.c, s_probe). Bounded: at most
//  NAT_PROBE_LEGS_MAX + connection.port_prediction_window datagrams per probe
#define NAT_PROBE_LEGS_MAX 2
typedef struct {
    nat_addr_t legs [NAT_PROBE_LEGS_MAX];
    uint8_t legs_count;
    uint16_t predict;           //  then legs [0]'s address at `predict` ports (0: no prediction)...
    uint16_t predict_from;      //  ...from its port + this
    uint16_t random;            //  then legs [0]'s address at `random` guessed ports (birthday, nat_bday.h)...
    uint32_t random_from;       //  ...from this step of the peer's walk (nat_bday_port)
    uint64_t predicted;         //  datagrams to predicted ports of this peer, in all
} nat_probe_plan_t;

//  What the service keeps per peer beside nat_peer (which holds no names)
typedef struct {
    char name [49];
    nat_addr_t dial;            //  the address of the last dial attempt
    bool redial;                //  crypto lost its session: dial once nat-crypto is connected
    bool routed;                //  crypto was given a route to the peer (ROUTE record)...
    nat_addr_t route;           //  ...to this address
    //  The relayed path (nat_relay_path.c)
    uint64_t relay_id;          //  the peer's id at the relays; 0: none
    bool force_relay;           //  connection.force_relay(_peers): never leave the relay
    int64_t direct_rx_ms;       //  last datagram from its direct endpoint, -1 never
    int64_t relay_dial_ms;      //  last dial through the relay of a peer nat does not dial itself
    uint32_t relay_dials;
    int64_t relay_retry_ms;     //  dial again then: the relay did not know it yet (0: none)
    uint32_t relay_unknown;     //  ERROR unknown peer for it since it was last up
    nat_addr_t relay_seen;      //  its address as the relay saw it (ESTABLISHED)
    uint32_t predict_anchor;    //  the predicted port's distance from relay_seen that went direct (0: none)
    //  Up through the relay, with direct candidates: try them now and then
    int64_t probe_next_ms;      //  0: not planned
    int64_t probe_until_ms;     //  initiations go to the probe's legs until then
    nat_probe_plan_t plan;      //  the legs of the current probe (nat_relay_path.c)
    uint32_t probes;
    int64_t last_dial_ms;       //  last nat.dial (crypto takes one per 250 ms)
    //  Up on a direct path that went quiet (nat_direct_watch.c)
    int64_t watch_first_ms;     //  first nat.probe since it last spoke, 0: none
    int64_t watch_probe_ms;     //  last nat.probe
    //  ICE (nat_ice.c) is the last path: it does not take a peer off the relay that spoke this recently
    int64_t relay_rx_ms;        //  last datagram from it through a relay, 0 never
    //  The RTT and loss of the path in use (nat_path_probe.c)
    nat_pathstat_t pathstat;
    nat_addr_t path_on;         //  the endpoint they are of; unset: not up
    int64_t path_since_ms;      //  taken then
    uint64_t path_tx_mark;      //  tx_packets with the last RTT probe (nat_direct_watch ignores it)
    nat_tried_list_t tried;     //  addresses tried for a direct path (dials, probe legs)
    nat_bday_t bday;            //  birthday attempts toward it (nat_bday_path.c)
} nat_peer_info_t;

#define NAT_RELAY_FRAME_MAX     2048        //  a relayed datagram, header included

//  A TCP connection to a relay, for networks that block UDP (nat_relay_path.c)
typedef struct {
    struct _nat_service_t *owner;
    size_t server;              //  index in nat_relay
    zmq_pollitem_t item;        //  fd -1 when closed
    bool connected;
    struct _relay_stream_t *in;
    int64_t attempt_ms;         //  last connect, -1 never
    uint32_t attempts;
    int64_t udp_probe_ms;       //  connected: when a REGISTER goes over UDP instead, to leave TCP
    uint32_t udp_probes;
    bool reading;               //  its messages are being ingested (not UDP's)
} nat_relay_tcp_t;
//  WebSocket over TLS to a relay, when neither UDP nor TCP reaches it (nat_relay_path.c)
typedef struct {
    int64_t attempt_ms;         //  last attempt, -1 never
    uint32_t attempts;          //  since it was last open
    bool retry;                 //  it was open and closed: try again at once
} nat_relay_wss_state_t;
#define NAT_RELAY_COOKIE        (1ULL << 40)    //  resolver cookies of relays: this + index

typedef struct {
    uint64_t to_crypto, from_crypto;
    uint64_t drop_pipe, drop_no_endpoint, drop_bad_peer, drop_stale_handle, drop_oversize;
    uint64_t keepalives, dials;
    uint64_t pauses;            //  UDP reading paused because nat-crypto was full
    uint64_t tunnel_datagrams, tunnel_bytes;    //  sent by crypto on our socket (SENT records)
    uint64_t routes;            //  ROUTE records sent
    uint64_t bad_reports;       //  SENT records of the wrong length
    uint64_t relay_rx, relay_tx, relay_registers, drop_no_relay;
    uint64_t relay_tcp_connects, relay_tcp_rx, relay_tcp_tx, relay_tcp_left;
    uint64_t direct_probes, direct_lost;        //  nat_direct_watch.c
    uint64_t relay_wss_rx, relay_wss_tx;
    uint64_t predicted;         //  probe datagrams to predicted ports (connection.port_prediction)
    uint64_t net_changes;                       //  address/route changes acted on (nat_netwatch)
    uint64_t rtt_probes;                        //  nat_path_probe.c
    uint64_t fast_probes, fast_downs;           //  unanswered traffic (nat_peer.h)
    uint64_t birthday_probes;                   //  probe datagrams to guessed ports (nat_bday_path.c)
    //  Cookie replies (nat_cookie_path.c)
    uint64_t cookies_sent, cookies_received, cookies_refused;
    uint64_t initiations_bad_mac1, initiations_cookie, initiations_mac2;
} nat_counters_t;

//  The state of one batch of datagrams on their way to crypto
//  (nat_datapath_ingest): the previous one's source, cached
typedef struct {
    uint32_t last_handle;
    nat_peer_t *last_peer;
    bool flowing;
} nat_ingest_t;

struct _nat_service_t {
    bus_service_t *svc;
    bus_loop_t *loop;
    bus_cfg_connection_t config;      //  as checked
    bus_cfg_routing_t routing;        //  transit and its budget (docs/routing.md)
    node_peers_t *peers;
    nat_peer_info_t *info;        //  by peer index
    size_t info_count;
    nat_peer_table_t *table;
    nat_udp_t *udp;
    nat_resolver_t *resolver;
    nat_demux_t *demux;
    nat_handles_t *handles;
    nat_hs_budget_t *hs_budget;     //  handshake initiations passed to crypto
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
    //  The relays (nat_relay_path.c)
    nat_relay_t *relay;
    uint8_t (*frames) [NAT_RELAY_FRAME_MAX];    //  relayed datagrams of one send batch
    char forced [NAT_FORCED_MAX][49];           //  connection.force_relay_peers
    nat_relay_tcp_t tcp [NAT_RELAY_SERVERS_MAX];
    //  ESTABLISHED about peers not known yet (the relay tells both ends of a
    //  session at once, often before discovery's peer.up reaches us): kept for
    //  when they are added (nat_relay_path_seen)
    struct {
        uint64_t relay_id;
        nat_addr_t seen;
        int64_t at_ms;
    } seen_early [NAT_SEEN_EARLY_MAX];
    size_t seen_early_next;
    struct _nat_relay_wss_t *wss;               //  made at the first need (NULL before)
    nat_relay_wss_state_t wss_state [NAT_RELAY_SERVERS_MAX];
    uint16_t relay_tls_port;                    //  the relays' WSS port (relay.servers), 0: none
    char *relay_ca;                             //  connection.relay_ca_file's text, or NULL
    size_t relay_ca_size;
    nat_ingest_t wss_ingest;                    //  messages of one wss service round
    size_t forced_count;
    //  This node's NAT mapping, from the relays' REGISTERED (nat_relay_path.c)
    struct _nat_mapping_t *mapping;
    int mapping_class;                          //  nat_mapping_class_t last logged
    //  Hairpinning: a datagram to our own observed address comes back (nat_relay_path.c)
    struct {
        uint8_t probe [20];                     //  what was sent (random after the first 4 bytes)
        int64_t sent_ms;                        //  0: never sent
        bool back;                              //  it came back
    } hairpin;
    //  The host's address and route changes (nat_netwatch)
    nat_netwatch_t *netwatch;                   //  NULL when rtnetlink was refused
    zmq_pollitem_t netwatch_item;
    int64_t netchange_due_ms;                   //  direct paths tried again then, 0: not planned
    struct _nat_portmap_t *portmap;             //  connection.port_mapping (nat_portmap.c), else NULL
    struct _nat_ice_t *ice;                     //  ICE sessions (nat_ice.c); NULL: none
    struct _nat_bday_path_t *bday;              //  birthday attempts (nat_bday_path.c)
    struct _nat_cookie_path_t *cookie;          //  cookie replies (nat_cookie_path.c)
    struct _nat_bridge_fwd_t *bridge_fwd;       //  bridge flows to the local program (nat_bridge_fwd.c), or NULL
    //  Mesh routing (nat_transit.h, docs/routing.md "Transit"): route.next's
    //  table, and our own datagrams of one send batch in their routing header
    nat_transit_t *transit;
    uint8_t (*routed) [NAT_RELAY_FRAME_MAX];
    size_t routed_next;                         //  routed [] slots used in this batch
    uint64_t routed_received;                   //  routed datagrams for us passed to crypto
};

//  Asks crypto to send a handshake initiation to the peer (nat.dial); the
//  initiation goes to info [index].dial
void nat_service_send_dial (nat_service_t *self, nat_peer_t *peer);

//  The service gives crypto its routes again after a new link of nat-crypto
//  (nat_service.c; the data path calls it after every send).
void nat_service_routes_relink (nat_service_t *self);

//  The data path (nat_datapath.c): UDP readable, nat-crypto readable, and the
//  pause of UDP reading while crypto is behind.
int nat_datapath_udp_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg);
int nat_datapath_pipe_ready (bus_pipe_t *pipe, void *arg);
//  One datagram from the internet (from UDP, or a relay's TCP stream) on its way
//  to crypto; *last_handle / *last_peer cache the previous one's source. false
//  when nat-crypto was full (the datagram may have been dropped).
void nat_datapath_ingest (nat_service_t *self, uint8_t *data, size_t size, const nat_addr_t *from,
                          int64_t now, nat_ingest_t *state);
//  Sends what ingest batched to crypto, and pauses UDP reading when crypto is behind
void nat_datapath_ingest_end (nat_service_t *self, nat_ingest_t *state);
//  Reads a socket until it is dry (NAT_ROUNDS batches at most) into crypto's
//  batch, and sends it: nat's socket, or an ICE pair's taken one (nat_ice.c),
//  whose datagrams are taken only from its remote address (only; the others
//  counted in *strangers) and given the pseudo-address as (NULL: each its own
//  source). Returns how many were ingested.
size_t nat_datapath_read (nat_service_t *self, nat_udp_t *udp, const nat_addr_t *only, const nat_addr_t *as,
                          size_t *strangers);
bus_pause_t *nat_datapath_pause_new (nat_service_t *self);

//  Mesh routing (nat_datapath.c): a routed datagram from the internet (the
//  demux checked it), delivered to crypto, forwarded, or dropped and counted
void nat_datapath_routed (nat_service_t *self, uint8_t *data, size_t size, const nat_addr_t *from,
                          nat_peer_t *neighbour, int64_t now, nat_ingest_t *state);
//  Sends one datagram to a peer on whatever path nat uses for it (UDP, a
//  relay, ICE, a birthday socket); false when it has none
bool nat_datapath_send_to (nat_service_t *self, nat_peer_t *peer, const uint8_t *data, size_t size, int64_t now);

//  The relayed path (nat_relay_path.c): relay.servers from discovery, the
//  REGISTER refresh and the dial through the relay (every tick), relay messages
//  in, and relayed datagrams out.
void nat_relay_path_open (nat_service_t *self);
void nat_relay_path_close (nat_service_t *self);
void nat_relay_path_tick (nat_service_t *self, int64_t now);
//  A direct path that went quiet: probe it, and give it up for the relay when it
//  stays silent (nat_direct_watch.c); every tick
void nat_direct_watch_tick (nat_service_t *self, int64_t now);
//  The RTT and loss of every up peer's path: a probe now and then (nat_path_probe.c),
//  every tick; and a peer's numbers for nat.status
void nat_path_probe_tick (nat_service_t *self, int64_t now);
void nat_path_probe_peer_status (nat_service_t *self, size_t index, nat_status_peer_t *out);
//  The addresses tried for a direct path to a peer, and those not tried and
//  why, for nat.status `candidates` (nat_path_probe.c)
void nat_path_probe_candidates (nat_service_t *self, size_t index, char *out, size_t size);
//  A datagram whose first byte is in the relay's type range: false when it was
//  a relay's own message (handled) or is to be dropped; true for relayed DATA,
//  with *data and *size moved to the tunnel datagram inside and *via set to the
//  sender's relayed address, and for anything not from a relay (*via = *from:
//  the demux drops and counts it).
bool nat_relay_path_rx (nat_service_t *self, const nat_addr_t *from, uint8_t **data, size_t *size,
                        nat_addr_t *via, int64_t now);
//  Frames a tunnel datagram for peer_id into frame k of the send batch and
//  returns the relay's address to send it to; NULL when it needs no UDP send:
//  it went over TCP (a relay reached over TCP), or was dropped (counted: no
//  relay answers, or too large).
const nat_addr_t *nat_relay_path_frame (nat_service_t *self, size_t k, uint64_t peer_id,
                                        const uint8_t *data, size_t size, size_t *framed);
//  Is this peer info's name in connection.force_relay_peers (or force_relay)?
bool nat_relay_path_forced (nat_service_t *self, const char *name);
//  The resolver answered for a relay (cookie >= NAT_RELAY_COOKIE)
void nat_relay_path_resolved (nat_service_t *self, uint64_t cookie, const nat_addr_t *addrs, size_t count);
//  A handshake initiation for this peer is a probe now (of a peer that is up
//  through the relay): the number of addresses it goes to (its legs), else 0
size_t nat_relay_path_probe (nat_service_t *self, nat_peer_t *peer, int64_t now);
//  Leg k (< that number) of the peer's probe, into *out; counts a predicted one
void nat_relay_path_probe_leg (nat_service_t *self, nat_peer_t *peer, size_t k, nat_addr_t *out);
//  A birthday round toward a relayed peer (the easy side, nat_bday_path.c):
//  a probe to its relay-seen address and `count` guessed ports of it, steps
//  from..from+count-1 of its walk. False when crypto's dial gap says later
bool nat_relay_path_birthday_round (nat_service_t *self, nat_peer_t *peer, uint32_t count, uint32_t from, int64_t now);
//  The peer's address as a relay saw it, from an ESTABLISHED that came before
//  the peer was known (within NAT_SEEN_EARLY_MS): true and *seen set, else false
bool nat_relay_path_seen (nat_service_t *self, uint64_t relay_id, nat_addr_t *seen);
//  A relayed peer went direct at addr: a predicted port there anchors the next rounds
void nat_relay_path_learn_anchor (nat_peer_info_t *info, const nat_addr_t *addr);
//  Every peer up through the relay is probed on its direct candidates at once,
//  its probe schedule started over (after an address or route change); how many
size_t nat_relay_path_reprobe (nat_service_t *self, int64_t now);
//  Where a peer's packets go now, as bifrostctl shows it: "direct", "relay NAME" or ""
void nat_relay_path_describe (nat_service_t *self, nat_peer_t *peer, char *out, size_t size);
//  How relay i is reached now: "udp", "tcp" or "wss"
const char *nat_relay_path_transport (nat_service_t *self, size_t i);
//  This node's mapping class and every relay, for nat.status; and a peer's
//  probes (rounds, predicted ports, why it is still relayed)
void nat_relay_path_status (nat_service_t *self, nat_status_reply_t *reply);
void nat_relay_path_peer_status (nat_service_t *self, size_t index, nat_status_peer_t *out);
//  The WebSocket over TLS counters (zero before the first attempt)
void nat_relay_path_wss_stats (nat_service_t *self, uint64_t *opens, uint64_t *opened, uint64_t *failed);


//  Cookie replies (nat_cookie_path.c): WireGuard's answer to a load of
//  initiations, done in nat with public keys only.
typedef struct _nat_cookie_path_t nat_cookie_path_t;
typedef enum {
    NAT_COOKIE_PASS,            //  on to crypto, within every budget
    NAT_COOKIE_PROVEN,          //  a valid mac2: its source receives at its address; the budget of all sources does not apply
    NAT_COOKIE_ANSWERED,        //  under load without a valid mac2: a cookie reply went back instead
    NAT_COOKIE_DROP             //  mac1 is not for this node
} nat_cookie_verdict_t;
void nat_cookie_path_open (nat_service_t *self);
void nat_cookie_path_close (nat_service_t *self);
//  Asks crypto for this node's public key until it answers (every tick)
void nat_cookie_path_tick (nat_service_t *self, int64_t now);
//  An initiation from the internet (demux checked its shape)
nat_cookie_verdict_t nat_cookie_path_initiation (nat_service_t *self, const uint8_t *data, size_t size,
                                                 const nat_addr_t *from, int64_t now);
//  An initiation that came through other peers (a routing header's message):
//  false when its mac1 is not for this node (counted). No cookie reply: the
//  address it came from is the last transit peer's, not the initiator's
bool nat_cookie_path_mac1 (nat_service_t *self, const uint8_t *data, size_t size, int64_t now);
//  A cookie reply from the internet: kept for its peer, or refused (counted)
void nat_cookie_path_reply (nat_service_t *self, const uint8_t *data, size_t size, int64_t now);
//  An initiation crypto sends to peer: remembered; mac2 written under the peer's cookie
void nat_cookie_path_outgoing (nat_service_t *self, uint32_t peer, uint8_t *data, size_t size, int64_t now);
//  Sends the cookie replies of this read
void nat_cookie_path_flush (nat_service_t *self);
void nat_cookie_path_status (nat_service_t *self, nat_status_reply_t *reply);

#endif
