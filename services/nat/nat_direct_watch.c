/*  nat_direct_watch: a direct path that stopped carrying, given up for the relay
    within a second (issue 15: "when the direct path dies, traffic is back on the
    relay within 1 s, with the loss counted").

    Without it, a peer whose direct path died (a firewall rule, a NAT that forgot
    the mapping) stays "up" on that path until the silence timer: 3 x keepalive
    + 5 s, 80 s with the default keepalive, and every packet meanwhile is lost
    (measured by tests/integration/path_move.sh, now grid_move.sh, before this file: 10.1 s at a 2 s
    keepalive).

    The rule, per peer that is up on a direct path and has a relay to fall back
    to: when nat sent to it and heard nothing from that path for 200 ms, it asks
    crypto for a keepalive there (`nat.probe`; the peer's crypto answers a
    keepalive unless it sent to us in the last 100 ms), again every 100 ms.
    When the first probe is 350 ms old and nothing came, the peer moves to the
    relay (its endpoint becomes relay/<id>),
    and nat_relay_path's direct probes (1 s, 2 s, 4 s ... 60 s) bring it back
    when the path works again. A pair that only receives (the far side of a
    one-way stream) is never probed: it sends nothing, so it loses nothing.
    Worst outage: 200 + 350 ms, plus a tick (100 ms) and the relay's hop.

    The answer window is 350 ms, or SRTT + 4 RTTVAR + 100 ms of the path when
    that is longer (nat_path_probe.c measures it), so a direct path with a long
    round trip that carries a one-way stream is not given up and won back again
    and again. Before the first sample on a path, 350 ms.

    Silence is judged on datagrams from the direct endpoint as nat reads them,
    before crypto authenticates them: an on-path attacker who knows the
    receiver index could keep a dead path looking alive (delaying the move, not
    reading anything); an off-path one cannot. */
#include "nat_service_priv.h"
#include "nat_relay.h"
#include "bus_log.h"

#define S_SUSPECT_MS    200         //  sent, and nothing heard for this long: probe
#define S_REPROBE_MS    100         //  then again this often (one lost probe is no verdict)
#define S_ANSWER_MS     350         //  the first probe unanswered this long: the path is dead

static void
s_probe (nat_service_t *self, size_t index)
{
    nat_probe_t probe = { .index = (uint32_t) index };
    self->counters.direct_probes++;
    bus_service_send (self->svc, "crypto", &nat_probe_schema, &probe);
}

void
nat_direct_watch_tick (nat_service_t *self, int64_t now)
{
    if (!self->relay || nat_relay_current (self->relay) < 0)
        return;                         //  nowhere to fall back to: the silence timer decides
    for (size_t i = 0; i < nat_peer_table_slots (self->table) && i < self->info_count; i++) {
        nat_peer_t *peer = nat_peer_table_at (self->table, i);
        nat_peer_info_t *info = &self->info [i];
        if (!peer || !info->relay_id || info->force_relay)
            continue;
        const nat_addr_t *endpoint = nat_peer_endpoint (peer);
        if (nat_peer_state (peer) != NAT_PEER_UP || !nat_addr_is_set (endpoint)
        ||  (nat_addr_family (endpoint) == AF_UNSPEC       //  relayed, or ICE (nat_ice.c); a birthday
        &&   !nat_addr_bday_index (endpoint, NULL))) {      //  socket is direct (nat_bday_path.c)
            info->watch_first_ms = info->watch_probe_ms = 0;
            continue;
        }
        nat_peer_status_t st;
        nat_peer_status (peer, &st);
        int64_t heard = info->direct_rx_ms > 0 ? info->direct_rx_ms : 0;
        if (info->watch_first_ms <= heard)
            info->watch_first_ms = info->watch_probe_ms = 0;     //  answered (or never asked)
        if (st.last_tx_ms <= heard || now - heard < S_SUSPECT_MS)
            continue;
        if (st.tx_packets <= info->path_tx_mark)
            continue;                   //  only an RTT probe went out (nat_path_probe.c): it has its own timeout                   //  nothing sent since we last heard, or not quiet for long
        //  The answer window: 350 ms, longer on a path whose measured round
        //  trip needs it (nat_path_probe.c), so a slow path is not given up
        //  for its slowness
        int64_t answer_ms = nat_addr_eq (endpoint, &info->path_on)
                          ? nat_pathstat_answer_ms (&info->pathstat, S_ANSWER_MS) : S_ANSWER_MS;
        if (info->watch_first_ms && now - info->watch_first_ms >= answer_ms) {
            char text [NAT_ADDR_TEXT_MAX];
            bus_info ("peer %s: nothing from %s for %lld ms, probed: back to the relay",
                      info->name, nat_addr_format (endpoint, text, sizeof text), (long long) (now - heard));
            self->counters.direct_lost++;
            info->direct_rx_ms = -1;    //  s_confirm may take the relay now
            info->watch_first_ms = info->watch_probe_ms = 0;
            info->probe_next_ms = 0;    //  direct probes start over: 1 s, 2 s ...
            info->probes = 0;
            nat_addr_t relay;
            nat_addr_set_relay (&relay, info->relay_id);
            nat_peer_confirm_endpoint (peer, &relay, now);
            continue;
        }
        if (!info->watch_probe_ms || now - info->watch_probe_ms >= S_REPROBE_MS) {
            if (!info->watch_first_ms)
                info->watch_first_ms = now;
            info->watch_probe_ms = now;
            s_probe (self, i);
        }
    }
}
