/*  nat_path_probe: the RTT and loss of the path each peer uses now (issue 15:
    "per peer: the path in use, its RTT and loss"), shown by nat.status and
    `bifrostctl peers`.

    One keepalive per peer that is up, every 5 s (+- 1 s so two peers' probes do
    not meet), asked of crypto with `nat.probe` like nat_direct_watch does, and
    only while the peer has been quiet toward us for 120 ms, so its crypto's
    100 ms rule cannot swallow the answer unnoticed (nat_pathstat.h says why that
    makes the loss count sound). The same probe works on a direct path and
    through a relay: crypto's keepalive goes where the peer's packets go. Cost:
    a 32-byte datagram and its 32-byte answer per peer per 5 s (a relayed one
    also carries the relay header), against 25 s keepalives.

    The numbers belong to the path: when the endpoint changes (direct <-> relay,
    another address) the estimator starts over. The RTT includes both nodes'
    nat -> crypto -> nat hops (tens of microseconds each), which is what a
    packet of the tunnel pays too. */
#include "nat_service_priv.h"
#include "bus_log.h"
#include "schemas/wire.h"

#include <sys/random.h>

#define S_RTT_SAMPLES_MIN   3       //  before this many, the unanswered timer's floors

static int64_t
s_jitter_us (void)
{
    uint32_t r = 0;
    if (getrandom (&r, sizeof r, GRND_NONBLOCK) != sizeof r)
        r = (uint32_t) bus_clock_ns ();
    return (int64_t) (r % 2000001) - 1000000;
}

void
nat_path_probe_tick (nat_service_t *self, int64_t now_ms)
{
    int64_t now = bus_clock_us ();
    for (size_t i = 0; i < nat_peer_table_slots (self->table) && i < self->info_count; i++) {
        nat_peer_t *peer = nat_peer_table_at (self->table, i);
        nat_peer_info_t *info = &self->info [i];
        const nat_addr_t *endpoint = peer ? nat_peer_endpoint (peer) : NULL;
        if (!peer || nat_peer_state (peer) != NAT_PEER_UP || !nat_addr_is_set (endpoint)) {
            if (nat_addr_is_set (&info->path_on)) {
                nat_pathstat_reset (&info->pathstat);
                memset (&info->path_on, 0, sizeof info->path_on);
            }
            continue;
        }
        //  A switch to another relay keeps them (relay/<id> stays): nat moves
        //  to a nearer relay on its own, often, when round trips are a
        //  fraction of a millisecond apart (relay_grid.sh: a pair's numbers
        //  were 0.2 s old after 19 s up); a relay that died shows as loss
        if (!nat_addr_eq (endpoint, &info->path_on)) {
            nat_pathstat_reset (&info->pathstat);       //  a new path: its own numbers
            info->path_on = *endpoint;
            info->path_since_ms = now_ms;
        }
        if (nat_pathstat_tick (&info->pathstat, now))
            bus_debug ("peer %s: RTT probe unanswered (%u of the last %u)", info->name,
                       (unsigned) __builtin_popcount (info->pathstat.window), info->pathstat.counted);
        //  The unanswered timer's windows follow the path's round trip
        //  (nat_peer.h), from the third sample on: the first sets RTTVAR to
        //  half of itself, and one slow sample on a loaded machine (a 500 ms
        //  wait for the CPU) made a dead peer's verdict take 4 s, not 2
        bool known = info->pathstat.samples >= S_RTT_SAMPLES_MIN;
        nat_peer_set_rtt (peer, known ? info->pathstat.srtt_us : -1, known ? info->pathstat.rttvar_us : -1);
        if (info->watch_first_ms)
            continue;                   //  nat_direct_watch is probing it: its answers are no sample
        nat_peer_status_t st;
        nat_peer_status (peer, &st);
        if (st.probing)
            continue;                   //  so is the unanswered timer (nat_peer.h)
        if (!nat_pathstat_due (&info->pathstat, now, st.last_rx_ms < 0 ? -1 : st.last_rx_ms * 1000))
            continue;
        nat_pathstat_sent (&info->pathstat, now, s_jitter_us ());
        info->path_tx_mark = st.tx_packets + 1;         //  the probe itself (nat_direct_watch)
        nat_probe_t probe = { .index = (uint32_t) i };
        self->counters.rtt_probes++;
        bus_service_send (self->svc, "crypto", &nat_probe_schema, &probe);
    }
}

void
nat_path_probe_peer_status (nat_service_t *self, size_t index, nat_status_peer_t *out)
{
    const nat_pathstat_t *ps = &self->info [index].pathstat;
    bool on = nat_addr_is_set (&self->info [index].path_on);
    out->rtt_us = on && ps->samples ? ps->srtt_us : -1;
    out->rtt_var_us = on && ps->samples ? ps->rttvar_us : -1;
    out->rtt_last_us = on && ps->samples ? ps->last_rtt_us : -1;
    out->rtt_samples = on ? ps->samples : 0;
    out->loss_probes = on ? ps->counted : 0;
    out->loss_lost = on ? (uint32_t) __builtin_popcount (ps->window) : 0;
    out->path_for_ms = on ? bus_clock_ms () - self->info [index].path_since_ms : -1;
}

//  Tried, with results (nat_tried.h), then what was not and why: registered
//  candidates whose turn has not come, names (the dialler resolves those), and
//  the relay-seen mapping when hole punching is off
void
nat_path_probe_candidates (nat_service_t *self, size_t index, char *out, size_t size)
{
    *out = 0;
    nat_peer_t *peer = nat_peer_table_at (self->table, index);
    if (!peer)
        return;
    nat_peer_info_t *info = &self->info [index];
    const nat_addr_t *endpoint = nat_peer_endpoint (peer);
    bool up = nat_peer_state (peer) == NAT_PEER_UP;
    nat_tried_format (&info->tried, up ? endpoint : NULL, bus_clock_ms (), out, size);
    bool relayed = up && nat_addr_relay_peer (endpoint);
    if (!relayed)
        return;                         //  direct (or not up): what was tried says it all
    char text [NAT_ENDPOINT_TEXT_MAX > NAT_ADDR_TEXT_MAX ? NAT_ENDPOINT_TEXT_MAX : NAT_ADDR_TEXT_MAX];
    if (!self->config.hole_punch && nat_addr_is_set (&info->relay_seen))
        nat_tried_format_untried (out, size, "relay-seen", nat_addr_format (&info->relay_seen, text, sizeof text),
                                  "connection.hole_punch = false");
    for (size_t k = 0; k < NAT_PEER_ENDPOINTS_MAX + 1; k++) {
        const nat_endpoint_t *c = nat_peer_configured_at (peer, k);
        if (!c)
            break;
        if (c->is_name) {
            nat_tried_format_untried (out, size, "registered", nat_endpoint_format (c, text, sizeof text),
                                      "a name: dialled only before the peer is up");
            continue;
        }
        bool seen = false;
        for (size_t t = 0; t < info->tried.count && !seen; t++)
            seen = nat_tried_covers (&info->tried.entry [t], &c->addr);
        if (seen || !nat_addr_is_set (&c->addr))
            continue;
        const char *why = info->force_relay ? "the peer is kept on the relay (force_relay)"
                        : !self->config.direct_connect ? "connection.direct_connect = false"
                        : "its turn among the candidates has not come";
        nat_tried_format_untried (out, size, "registered", nat_addr_format (&c->addr, text, sizeof text), why);
    }
}
