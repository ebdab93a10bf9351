/*  crypto_send: how encrypted datagrams leave crypto (see crypto_service_priv.h):
    batches to nat on crypto-nat, and, while nat lends its UDP socket
    (connection.tunnel_sends), straight onto the wire, one process hop less per
    packet; crypto never reads that socket. */
#include "crypto_service_priv.h"
#include "bus_log.h"
#include "schemas/pipes.h"

#include <assert.h>

//  Sends a batch if it holds anything; packets of a dropped batch are counted
void
crypto_send_batch (crypto_service_t *self, bus_pipe_t *pipe, bus_batch_t *batch)
{
    size_t count = bus_batch_count (batch);
    if (count && bus_pipe_send (pipe, batch) != 0)
        self->counters [CRYPTO_CNT_PIPE_FULL] += count;
}

//  Reserves len plain bytes for tag in batch, sending the batch first when full
uint8_t *
crypto_send_reserve (crypto_service_t *self, bus_pipe_t *pipe, bus_batch_t *batch, uint32_t tag, size_t len)
{
    uint8_t *dst = bus_batch_reserve (batch, tag, len);
    if (!dst && bus_batch_count (batch)) {
        if (batch == self->out_wire)
            crypto_send_wire_flush (self);
        else
            crypto_send_batch (self, pipe, batch);
        dst = bus_batch_reserve (batch, tag, len);
    }
    if (!dst)
        self->counters [CRYPTO_CNT_TOO_BIG]++;
    return dst;
}

//  Sends what waits for the wire: on nat's socket, then through nat.
void
crypto_send_out (crypto_service_t *self)
{
    crypto_send_wire_flush (self);
    crypto_send_batch (self, self->to_nat, self->out_nat);
}

//  --------------------------------------------------------------------------
//  Sending on nat's socket (connection.tunnel_sends, see the header)

//  Sends out_wire's datagrams on nat's socket, one sendmmsg (or GSO send) for
//  all. A peer whose route went since its packet was built goes through nat.
void
crypto_send_wire_flush (crypto_service_t *self)
{
    if (bus_batch_count (self->out_wire) == 0)
        return;
    bus_batch_iter_t iter;
    int rc = bus_batch_iter_init (&iter, (uint8_t *) bus_batch_data (self->out_wire),
                                  bus_batch_size (self->out_wire), NULL, 0);
    assert (rc == 0);
    size_t count = 0;
    bus_packet_t pkt;
    while (bus_batch_iter_next (&iter, &pkt)) {
        crypto_peer_state_t *peer = &self->peer [pkt.tag];
        if (self->wire && peer->route_len) {
            self->wire_dgrams [count++] = (bus_udp_dgram_t) {
                pkt.data, pkt.len, (const struct sockaddr *) &peer->route, peer->route_len
            };
            peer->wire_packets++;
            peer->wire_bytes += pkt.len;
        }
        else {
            uint8_t *dst = crypto_send_reserve (self, self->to_nat, self->out_nat, pkt.tag, pkt.len);
            if (dst)
                memcpy (dst, pkt.data, pkt.len);
        }
    }
    if (count) {
        size_t sent = node_udp_tx_send (self->wire, self->wire_dgrams, count);
        self->counters [CRYPTO_CNT_WIRE_SENT] += sent;
        self->counters [CRYPTO_CNT_WIRE_DROPPED] += count - sent;
    }
    bus_batch_reset (self->out_wire);
}

//  After every receive on nat-crypto: nat's socket came with this batch (a new
//  link, whose routes follow) or left with nat's link (nat stopped). Either way
//  the routes we had belonged to the link before.
void
crypto_send_wire_check (crypto_service_t *self)
{
    uint64_t gen = bus_pipe_passed_gen (self->from_nat);
    if (gen == self->wire_gen)
        return;
    self->wire_gen = gen;
    //  The descriptor may be closed already: nothing more goes to it
    node_udp_tx_destroy (&self->wire);
    for (size_t i = 0; i < self->peer_count; i++)
        self->peer [i].route_len = 0;
    crypto_send_wire_flush (self);                //  leftovers, if any, through nat
    int fd = bus_pipe_passed_fd (self->from_nat);
    if (fd < 0) {
        bus_info ("nat's socket went with nat: sending through nat");
        return;
    }
    int type = 0, domain = 0;
    socklen_t len = sizeof type;
    if (getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &len) || type != SOCK_DGRAM
    ||  (len = sizeof domain, getsockopt (fd, SOL_SOCKET, SO_DOMAIN, &domain, &len))
    ||  (domain != AF_INET && domain != AF_INET6)) {
        bus_warn ("%s: the descriptor passed is not a UDP socket; sending through nat",
                  PIPE_NAT_CRYPTO);
        return;
    }
    self->wire = node_udp_tx_new (fd, true);
    self->wire_family = domain;
    bus_info ("sending on nat's UDP socket (%s%s)", domain == AF_INET6 ? "dual stack" : "IPv4",
              node_udp_tx_gso (self->wire) ? ", GSO" : "");
}

//  A ROUTE record: peer tag is reachable at the sockaddr it carries, in the
//  family of nat's socket; empty: send through nat again.
void
crypto_send_route (crypto_service_t *self, const bus_packet_t *pkt)
{
    bool valid = pkt->tag < self->peer_count && self->wire;
    if (valid && pkt->len) {
        sa_family_t family;
        memcpy (&family, pkt->data, sizeof family);
        valid = family == self->wire_family
             && pkt->len == (family == AF_INET6 ? sizeof (struct sockaddr_in6)
                                                : sizeof (struct sockaddr_in));
    }
    if (!valid) {
        self->counters [CRYPTO_CNT_BAD_ROUTES]++;
        if (pkt->tag < self->peer_count)
            self->peer [pkt->tag].route_len = 0;
        return;
    }
    crypto_peer_state_t *peer = &self->peer [pkt->tag];
    memcpy (&peer->route, pkt->data, pkt->len);
    peer->route_len = (socklen_t) pkt->len;
    self->counters [CRYPTO_CNT_ROUTES]++;
}

//  Tells nat what we sent on its socket since the last report (its per-peer
//  counters and last_tx), once a tick.
void
crypto_send_wire_report (crypto_service_t *self)
{
    for (size_t i = 0; i < self->peer_count; i++) {
        crypto_peer_state_t *peer = &self->peer [i];
        if (!peer->wire_packets)
            continue;
        uint64_t sent [2] = { peer->wire_packets, peer->wire_bytes };
        uint8_t *dst = crypto_send_reserve (self, self->to_nat, self->out_nat, (uint32_t) i, sizeof sent);
        if (!dst)
            return;
        memcpy (dst, sent, sizeof sent);        //  host order
        bus_batch_set_flags (self->out_nat, PIPE_FLAG_SENT);
        peer->wire_packets = peer->wire_bytes = 0;
    }
}

