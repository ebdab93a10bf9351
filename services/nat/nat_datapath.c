/*  nat_datapath: nat's packet path, UDP -> nat-crypto and crypto-nat -> UDP.

    Out of nat_service.c because it is the part measured and tuned on its own
    (docs/packet-path.md, docs/benchmarks.md): batches in, batches out, one
    recvmmsg and one sendmmsg per burst, and the pause while crypto is behind.
    The service around it (config, peers, bus, timers) is nat_service.c. */
#include "nat_service_priv.h"
#include "nat_ice.h"
#include "nat_bday_path.h"
#include "bus_log.h"
#include "nat_routed.h"
#include "schemas/pipes.h"
#include "schemas/wire.h"
#include "schemas/bridge_wire.h"

#include <assert.h>
#include <errno.h>

//  ---------------------------------------------------------------------------
//  UDP -> nat-crypto

//  While crypto cannot keep up, let the kernel drop (its socket buffer absorbs
//  bursts) instead of reading datagrams only to drop them here (bus_pause.h).
static bool
s_crypto_writable (void *arg)
{
    return bus_pipe_writable (((nat_service_t *) arg)->to_crypto);
}

static int
s_resume (void *arg)
{
    nat_service_t *self = (nat_service_t *) arg;
    bus_loop_poller (self->loop, &self->udp_item, nat_datapath_udp_ready, self);
    nat_ice_resume (self->ice);         //  the taken ICE sockets (nat_ice.c)
    nat_bday_path_resume (self->bday);  //  the carried birthday sockets (nat_bday_path.c)
    //  Read what queued up meanwhile without waiting for the next poll
    return nat_datapath_udp_ready (self->loop, &self->udp_item, self);
}

static void
s_pause (nat_service_t *self)
{
    if (bus_pause_active (self->pause))
        return;
    self->counters.pauses++;
    bus_loop_poller_end (self->loop, &self->udp_item);
    bus_pause_start (self->pause);
}

//  Sends the batch; false when it was dropped (nat-crypto full or no crypto).
static bool
s_flush_to_crypto (nat_service_t *self)
{
    size_t count = bus_batch_count (self->batch);
    if (count == 0)
        return true;
    if (bus_pipe_send (self->to_crypto, self->batch) == 0) {
        self->counters.to_crypto += count;
        nat_service_routes_relink (self);
        return true;
    }
    self->counters.drop_pipe += count;
    return false;
}

void
nat_datapath_ingest (nat_service_t *self, uint8_t *data, size_t size, const nat_addr_t *from,
                     int64_t now, nat_ingest_t *state)
{
    //  The relay's messages, and tunnel datagrams a relay carried (type range:
    //  docs/relay.md); nothing else starts with these bytes
    const nat_addr_t *wire_from = from;
    nat_addr_t via;
    if (size && data [0] >= RELAY_PROTO_TYPE_MIN && data [0] <= RELAY_PROTO_TYPE_MAX) {
        if (!nat_relay_path_rx (self, from, &data, &size, &via, now))
            return;
        from = &via;
    }
    //  A bridge's flow (schemas/bridge_wire.def), straight from a bridge's
    //  socket: to the program that ends it here, unread (nat_bridge_fwd.h)
    if (self->bridge_fwd && from == wire_from && size && data [0] >= BRIDGE_WIRE_DATA
    &&  data [0] <= BRIDGE_WIRE_HEARTBEAT_REPLY && nat_addr_family (from) != AF_UNSPEC && !nat_addr_bday_index (from, NULL)) {
        nat_bridge_fwd_rx (self->bridge_fwd, data, size, from, now);
        return;
    }
    nat_demux_type_t type = nat_demux_classify (self->demux, data, size, NULL);
    if (type == NAT_DEMUX_DROP)
        return;
    //  Mesh routing: for us, for someone else, or dropped (nat_transit.h)
    if (type == NAT_DEMUX_ROUTED) {
        nat_datapath_routed (self, data, size, from, nat_peer_table_by_addr (self->table, from), now, state);
        return;
    }
    //  Cookie replies are nat's own business, never crypto's (nat_cookie_path.c)
    if (type == NAT_DEMUX_COOKIE) {
        nat_cookie_path_reply (self, data, size, now);
        return;
    }
    //  The one message that costs crypto DH work from anyone: mac1 checked,
    //  answered with a cookie under load (before it takes a handle: spoofed
    //  sources churn nothing), and rationed
    nat_cookie_verdict_t verdict = type == NAT_DEMUX_INITIATION
                                 ? nat_cookie_path_initiation (self, data, size, from, now) : NAT_COOKIE_PASS;
    if (verdict == NAT_COOKIE_DROP || verdict == NAT_COOKIE_ANSWERED)
        return;
    uint32_t handle = nat_handles_get (self->handles, from);
    if (type == NAT_DEMUX_INITIATION
    &&  !(verdict == NAT_COOKIE_PROVEN ? nat_hs_budget_allow_proven (self->hs_budget, handle, now)
                                       : nat_hs_budget_allow (self->hs_budget, handle, now)))
        return;
    if (handle != state->last_handle) {
        state->last_handle = handle;
        state->last_peer = nat_peer_table_by_addr (self->table, from);
    }
    if (state->last_peer) {
        nat_peer_received (state->last_peer, size, now);
        //  (an ICE pseudo-address is neither: nat_ice.c; a birthday socket's
        //  is direct: nat_bday_path.c)
        nat_peer_info_t *info = &self->info [nat_peer_index (state->last_peer)];
        if ((from == wire_from && nat_addr_family (from) != AF_UNSPEC) || nat_addr_bday_index (from, NULL))
            info->direct_rx_ms = now;
        else
        if (nat_addr_relay_peer (from))
            info->relay_rx_ms = now;
        //  The answer to an RTT probe: the first empty data message (a
        //  keepalive) after it; anything else only shows the path carries
        if (info->pathstat.pending_us)
            nat_pathstat_heard (&info->pathstat, bus_clock_us (), size == WIRE_DATA_SIZE && data [0] == WIRE_DATA);
    }
    //  In the grown form (docs/packet-path.md): crypto decrypts where the
    //  datagram lies and shrinks it to the plaintext, without a copy
    uint8_t *slot = bus_batch_reserve_grown (self->batch, handle, size);
    if (!slot) {
        state->flowing = s_flush_to_crypto (self) && state->flowing;
        slot = bus_batch_reserve_grown (self->batch, handle, size);
    }
    if (slot)
        memcpy (slot, data, size);
    else
        self->counters.drop_oversize++;
}

void
nat_datapath_ingest_end (nat_service_t *self, nat_ingest_t *state)
{
    state->flowing = s_flush_to_crypto (self) && state->flowing;
    nat_cookie_path_flush (self);
    //  Dropped, and no room now: crypto is behind (or away). Pause reading.
    if (!state->flowing && !bus_pipe_writable (self->to_crypto))
        s_pause (self);
}

size_t
nat_datapath_read (nat_service_t *self, nat_udp_t *udp, const nat_addr_t *only, const nat_addr_t *as,
                   size_t *strangers)
{
    int64_t now = bus_clock_ms ();
    size_t ingested = 0;
    //  Datagrams come in runs from one source: remember the last one's peer
    nat_ingest_t state = { NAT_HANDLE_NONE, NULL, true };
    for (int round = 0; round < NAT_ROUNDS && state.flowing; round++) {
        nat_udp_rx_t *rx;
        size_t count = nat_udp_recv (udp, &rx);
        if (count == 0)
            break;
        for (size_t i = 0; i < count; i++) {
            if (only && !nat_addr_eq (rx [i].from, only)) {
                if (strangers)
                    (*strangers)++;
                continue;
            }
            nat_datapath_ingest (self, rx [i].data, rx [i].size, as ? as : rx [i].from, now, &state);
            ingested++;
        }
        if (nat_udp_drained (udp))
            break;
    }
    //  The read ran dry (or we yield to the other direction): send what we have
    nat_datapath_ingest_end (self, &state);
    return ingested;
}

int
nat_datapath_udp_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    nat_service_t *self = (nat_service_t *) arg;
    nat_datapath_read (self, self->udp, NULL, NULL, NULL);
    return 0;
}

//  ---------------------------------------------------------------------------
//  Data path: crypto-nat -> UDP

//  Where packets for a peer go: while dialling, the address being dialled;
//  otherwise the endpoint crypto confirmed last. A peer kept on the relay goes
//  there whatever else is known.
static const nat_addr_t *
s_destination (nat_service_t *self, nat_peer_t *peer, nat_addr_t *scratch)
{
    nat_peer_info_t *info = &self->info [nat_peer_index (peer)];
    if (info->force_relay && info->relay_id) {
        nat_addr_set_relay (scratch, info->relay_id);
        return scratch;
    }
    const nat_addr_t *dial = &info->dial;
    const nat_addr_t *current = nat_peer_endpoint (peer);
    if (nat_peer_state (peer) == NAT_PEER_CONNECTING && nat_addr_is_set (dial))
        return dial;
    if (nat_addr_is_set (current))
        return current;
    return nat_addr_is_set (dial) ? dial : NULL;
}

static void
s_confirm (nat_service_t *self, nat_peer_t *peer, const bus_packet_t *pkt, int64_t now)
{
    uint32_t handle;
    const nat_addr_t *addr = NULL;
    if (pkt->len == sizeof handle) {
        memcpy (&handle, pkt->data, sizeof handle);
        addr = nat_handles_addr (self->handles, handle);
    }
    if (!addr) {
        self->counters.drop_stale_handle++;
        return;
    }
    //  Which path a peer takes (nat_relay_path.c): a direct path that spoke in
    //  the last 800 ms is not given up for the relay (packets of the relay path
    //  still in flight after a move to direct); one silent longer is, when the
    //  peer speaks through the relay (its own watch gave the path up:
    //  nat_direct_watch.c). A peer kept on the relay stays there
    nat_peer_info_t *info = &self->info [nat_peer_index (peer)];
    const nat_addr_t *current = nat_peer_endpoint (peer);
    //  ICE (nat_ice.c) is the last path: a peer kept on the relay stays there,
    //  and one up on a direct path or the relay that spoke in the last 800 ms
    //  is not moved to ICE (its packets still in flight when ICE took over)
    if (nat_addr_ice_index (addr, NULL)) {
        if (info->force_relay)
            return;
        if (nat_peer_state (peer) == NAT_PEER_UP && nat_addr_is_set (current) && !nat_addr_ice_index (current, NULL)
        &&  ((info->direct_rx_ms >= 0 && now - info->direct_rx_ms < NAT_DIRECT_HOLD_MS)
        ||   (info->relay_rx_ms > 0 && now - info->relay_rx_ms < NAT_DIRECT_HOLD_MS)))
            return;
    }
    else
    if (nat_addr_relay_peer (addr)) {
        if (nat_peer_state (peer) == NAT_PEER_UP && nat_addr_is_set (current) && !nat_addr_relay_peer (current)
        &&  !info->force_relay && info->direct_rx_ms >= 0 && now - info->direct_rx_ms < NAT_DIRECT_HOLD_MS)
            return;
        //  nor for an ICE pair that is direct and spoke as recently (nat_ice.c)
        uint32_t ice_index;
        if (nat_peer_state (peer) == NAT_PEER_UP && nat_addr_ice_index (current, &ice_index) && !info->force_relay
        &&  nat_ice_holds (self->ice, ice_index, now))
            return;
    }
    else
    if (info->force_relay && info->relay_id)
        return;
    if (!nat_addr_relay_peer (addr) && !nat_addr_ice_index (addr, NULL))
        nat_relay_path_learn_anchor (info, addr);
    nat_peer_confirm_endpoint (peer, addr, now);
}

//  What crypto sent itself on our socket since its last report
static void
s_tunnel_sent (nat_service_t *self, nat_peer_t *peer, const bus_packet_t *pkt, int64_t now)
{
    uint64_t sent [2];
    if (pkt->len != sizeof sent) {
        self->counters.bad_reports++;
        return;
    }
    memcpy (sent, pkt->data, sizeof sent);      //  host order
    nat_peer_sent_many (peer, sent [0], sent [1], now);
    self->counters.tunnel_datagrams += sent [0];
    self->counters.tunnel_bytes += sent [1];
}

int
nat_datapath_pipe_ready (bus_pipe_t *pipe, void *arg)
{
    nat_service_t *self = (nat_service_t *) arg;
    int64_t now = bus_clock_ms ();
    size_t slots = nat_peer_table_slots (self->table);
    for (int round = 0; round < NAT_ROUNDS; round++) {
        bus_batch_iter_t iter;
        int rc = bus_pipe_recv (self->from_crypto, &iter, 0);
        if (rc == 0)
            break;
        if (rc < 0) {
            bus_warn ("%s: batch refused: %s", PIPE_CRYPTO_NAT, bus_pipe_error (self->from_crypto));
            continue;
        }
        size_t count = 0;
        bus_packet_t pkt;
        while (bus_batch_iter_next (&iter, &pkt)) {
            self->counters.from_crypto++;
            nat_peer_t *peer = pkt.tag < slots ? nat_peer_table_at (self->table, pkt.tag) : NULL;
            if (!peer) {
                self->counters.drop_bad_peer++;
                continue;
            }
            if (pkt.flags & PIPE_FLAG_ENDPOINT) {
                s_confirm (self, peer, &pkt, now);
                continue;
            }
            if (pkt.flags & PIPE_FLAG_SENT) {
                s_tunnel_sent (self, peer, &pkt, now);
                continue;
            }
            //  Mesh routing: a destination reached through a neighbour (the one
            //  table check a direct peer costs). Its datagram, in a routing
            //  header, goes on as that neighbour's on the neighbour's path
            //  Only while nat has no path of its own up to the peer: a path nat
            //  confirmed (direct, or the relay's, on which hole punching and
            //  birthday probing go on) wins at once, before the router hears
            //  of it, so a handshake answered there is answered there
            //  (docs/routing.md, "Routes and nat's own paths")
            nat_routed_t hdr;
            uint32_t via = NAT_TRANSIT_NONE;
            if (nat_peer_state (peer) != NAT_PEER_UP)
                via = nat_transit_via_hop (self->transit, pkt.tag,
                                           pkt.flags & PIPE_FLAG_FLOW ? PIPE_FLOW_HOP (pkt.flags) : 0, &hdr);
            if (via != NAT_TRANSIT_NONE) {
                nat_peer_t *hop = via < slots ? nat_peer_table_at (self->table, via) : NULL;
                size_t n = hop && self->routed_next < BUS_BATCH_MAX
                         ? nat_routed_encode (&hdr, pkt.data, pkt.len, self->routed [self->routed_next], NAT_RELAY_FRAME_MAX)
                         : 0;
                if (!n) {
                    self->counters.drop_no_endpoint++;
                    continue;
                }
                nat_transit_sent (self->transit);
                nat_addr_t own;
                if ((pkt.data [0] == WIRE_INITIATION || pkt.data [0] == WIRE_RESPONSE)
                    && s_destination (self, peer, &own)) {
                    //  A handshake with a peer nat has no direct path to: the
                    //  routed copy brings the session up through the route now,
                    //  the original goes on to the peer's own paths (its
                    //  address, the relay and its probes, ICE) below, so a
                    //  direct path is still found and answered while the peer
                    //  is routed (the router prefers it then)
                    nat_datapath_send_to (self, hop, self->routed [self->routed_next++], n, now);
                }
                else {
                    nat_peer_sent_routed (peer, pkt.len, now);
                    peer = hop;
                    pkt.data = self->routed [self->routed_next++];
                    pkt.len = n;
                }
            }
            nat_addr_t scratch;
            const nat_addr_t *to = s_destination (self, peer, &scratch);
            if (!to) {
                self->counters.drop_no_endpoint++;
                continue;
            }
            nat_peer_info_t *info = &self->info [nat_peer_index (peer)];
            //  An RTT probe's keepalive leaving: its round trip starts now
            if (info->pathstat.pending_us && !info->pathstat.left && pkt.len == WIRE_DATA_SIZE)
                nat_pathstat_left (&info->pathstat, bus_clock_us ());
            bool initiation = pkt.len && pkt.data [0] == WIRE_INITIATION;
            //  Remembered for a cookie reply; mac2 under the peer's cookie (nat_cookie_path.c)
            if (initiation)
                nat_cookie_path_outgoing (self, pkt.tag, pkt.data, pkt.len, now);
            //  A handshake to a peer not up goes through its ICE pair too (nat_ice.c)
            if (initiation && nat_peer_state (peer) != NAT_PEER_UP)
                nat_ice_copy (self->ice, nat_peer_index (peer), pkt.data, pkt.len);
            //  A probe of a peer up through the relay goes to each of its legs
            //  (its public mapping, a candidate, predicted ports: nat_relay_path.c)
            size_t probes = initiation && info->relay_id ? nat_relay_path_probe (self, peer, now) : 0;
            //  Through the peer's ICE session (nat_ice.c): libnice sends it, or
            //  after the handoff it waits for the batch's end on the taken socket
            uint32_t ice_index;
            if (!probes && nat_addr_ice_index (to, &ice_index)) {
                nat_ice_send (self->ice, ice_index, pkt.data, pkt.len);
                nat_peer_sent (peer, pkt.len, now);
                continue;
            }
            //  Through the socket a birthday guess reached (nat_bday_path.c)
            uint32_t bday_index;
            if (!probes && nat_addr_bday_index (to, &bday_index)) {
                if (!nat_bday_path_send (self->bday, bday_index, pkt.data, pkt.len))
                    self->counters.drop_no_endpoint++;
                nat_peer_sent (peer, pkt.len, now);
                continue;
            }
            //  A handshake to a peer that is not up goes through the relay too:
            //  the first path to answer wins (nat_relay_path.c)
            bool copy = info->relay_id && !nat_addr_relay_peer (to) && initiation && !probes
                      && nat_peer_state (peer) != NAT_PEER_UP;
            size_t legs = probes ? probes : copy ? 2 : 1;
            for (size_t leg = 0; leg < legs; leg++) {
                if (count == BUS_BATCH_MAX) {
                    nat_udp_send (self->udp, self->tx, count);
                    count = 0;
                }
                const nat_addr_t *dest = to;
                if (probes) {
                    nat_relay_path_probe_leg (self, peer, leg, &scratch);
                    dest = &scratch;
                }
                else
                if (leg) {
                    nat_addr_set_relay (&scratch, info->relay_id);
                    dest = &scratch;
                }
                uint64_t relay_peer = nat_addr_relay_peer (dest);
                if (relay_peer) {
                    size_t framed;
                    const nat_addr_t *relay = nat_relay_path_frame (self, count, relay_peer, pkt.data, pkt.len, &framed);
                    if (!relay)
                        continue;
                    self->tx_addr [count] = *relay;
                    self->tx [count] = (nat_udp_tx_t) { self->frames [count], framed, &self->tx_addr [count] };
                }
                else {
                    self->tx_addr [count] = *dest;
                    self->tx [count] = (nat_udp_tx_t) { pkt.data, pkt.len, &self->tx_addr [count] };
                }
                count++;
            }
            nat_peer_sent (peer, pkt.len, now);
        }
        //  One sendmmsg (or GSO send) per crypto batch, per socket
        if (count)
            nat_udp_send (self->udp, self->tx, count);
        nat_ice_flush (self->ice);
        nat_bday_path_flush (self->bday);
        self->routed_next = 0;
    }
    return 0;
}

//  ---------------------------------------------------------------------------
//  Mesh routing (docs/routing.md, "Transit")

bool
nat_datapath_send_to (nat_service_t *self, nat_peer_t *peer, const uint8_t *data, size_t size, int64_t now)
{
    nat_addr_t scratch;
    const nat_addr_t *to = s_destination (self, peer, &scratch);
    if (!to) {
        self->counters.drop_no_endpoint++;
        return false;
    }
    uint32_t k;
    if (nat_addr_ice_index (to, &k)) {
        nat_ice_send (self->ice, k, data, size);
        nat_ice_flush (self->ice);
    }
    else
    if (nat_addr_bday_index (to, &k)) {
        if (!nat_bday_path_send (self->bday, k, data, size))
            self->counters.drop_no_endpoint++;
        nat_bday_path_flush (self->bday);
    }
    else {
        nat_addr_t addr;
        nat_udp_tx_t tx = { data, size, &addr };
        uint64_t relay_peer = nat_addr_relay_peer (to);
        if (relay_peer) {
            //  Frame 0 of the send batch: free outside nat_datapath_pipe_ready
            size_t framed;
            const nat_addr_t *relay = nat_relay_path_frame (self, 0, relay_peer, data, size, &framed);
            if (!relay)
                return true;            //  over TCP, or dropped and counted
            addr = *relay;
            tx = (nat_udp_tx_t) { self->frames [0], framed, &addr };
        }
        else
            addr = *to;
        nat_udp_send (self->udp, &tx, 1);
    }
    nat_peer_sent (peer, size, now);
    return true;
}

void
nat_datapath_routed (nat_service_t *self, uint8_t *data, size_t size, const nat_addr_t *from,
                     nat_peer_t *neighbour, int64_t now, nat_ingest_t *state)
{
    nat_routed_t hdr;
    if (nat_routed_decode (data, size, &hdr) != NAT_ROUTED_OK)
        return;                         //  the demux refused it already
    //  Only from the confirmed endpoint of a neighbour that is up: nobody off
    //  the mesh injects transit traffic
    uint32_t from_index = NAT_TRANSIT_NONE;
    if (neighbour && nat_peer_state (neighbour) == NAT_PEER_UP && nat_addr_eq (nat_peer_endpoint (neighbour), from)) {
        from_index = nat_peer_index (neighbour);
        nat_peer_received (neighbour, size, now);
    }
    uint32_t index;
    nat_transit_verdict_t verdict = nat_transit_judge (self->transit, &hdr, from_index, size, now, &index);
    if (verdict == NAT_TRANSIT_DELIVER) {
        //  The source is alive (for its unanswered timer, nat_peer.h): a
        //  forged header only delays that verdict to the silence timer
        nat_peer_t *source = nat_peer_table_at (self->table, index);
        if (source)
            nat_peer_heard_routed (source, now);
        //  An initiation costs crypto DH work: its mac1 checked, and rationed
        //  by the budget of the neighbour that brought it (nat_hs_budget.h)
        if (hdr.message [0] == WIRE_INITIATION
        &&  (!nat_cookie_path_mac1 (self, hdr.message, hdr.message_size, now)
        ||   !nat_hs_budget_allow (self->hs_budget, nat_handles_get (self->handles, from), now)))
            return;
        //  To crypto as the source's (PIPE_FLAG_ROUTED): it drops the message
        //  unless it authenticates as that peer's, and learns no endpoint from it
        uint8_t *slot = bus_batch_reserve_grown (self->batch, index, hdr.message_size);
        if (!slot) {
            state->flowing = s_flush_to_crypto (self) && state->flowing;
            slot = bus_batch_reserve_grown (self->batch, index, hdr.message_size);
        }
        if (!slot) {
            self->counters.drop_oversize++;
            return;
        }
        memmove (slot, hdr.message, hdr.message_size);
        bus_batch_set_flags (self->batch, PIPE_FLAG_ROUTED);
        self->routed_received++;
    }
    else
    if (verdict == NAT_TRANSIT_FORWARD) {
        nat_peer_t *hop = nat_peer_table_at (self->table, index);
        data [WIRE_ROUTED_TTL]--;
        if (hop)
            nat_datapath_send_to (self, hop, data, size, now);
        else
            self->counters.drop_no_endpoint++;
    }
}

//  The pause of UDP reading while nat-crypto is full (bus_pause.h)
bus_pause_t *
nat_datapath_pause_new (nat_service_t *self)
{
    return bus_pause_new (self->loop, 64, s_crypto_writable, s_resume, self);
}

