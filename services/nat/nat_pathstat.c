/*  nat_pathstat: RTT (RFC 6298 smoothing) and loss over a window of one
    peer's path, from nat's probes. The rules and why they are sound are in
    nat_pathstat.h; the probing itself (when, to whom) is nat_path_probe.c. */
#include "nat_pathstat.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

void
nat_pathstat_reset (nat_pathstat_t *self)
{
    memset (self, 0, sizeof *self);
    self->srtt_us = self->last_rtt_us = -1;
}

bool
nat_pathstat_due (const nat_pathstat_t *self, int64_t now_us, int64_t last_rx_us)
{
    if (self->pending_us || now_us < self->next_us)
        return false;
    //  Only while the peer is quiet toward us: then its answer cannot be
    //  suppressed by the 100 ms rule unless it sends after our probe left
    return last_rx_us < 0 || now_us - last_rx_us >= NAT_PATHSTAT_QUIET_US;
}

void
nat_pathstat_sent (nat_pathstat_t *self, int64_t now_us, int64_t jitter_us)
{
    assert (now_us > 0);
    self->pending_us = now_us;
    self->heard = self->left = false;
    self->sent++;
    self->next_us = now_us + NAT_PATHSTAT_INTERVAL_US + jitter_us;
}

void
nat_pathstat_left (nat_pathstat_t *self, int64_t now_us)
{
    if (self->pending_us && !self->left && !self->heard && now_us >= self->pending_us) {
        self->pending_us = now_us;
        self->left = true;
    }
}

//  One outcome into the loss window (bit 0: the newest)
static void
s_count (nat_pathstat_t *self, bool lost)
{
    self->window = (self->window << 1) | (lost ? 1u : 0u);
    self->window &= (1u << NAT_PATHSTAT_WINDOW) - 1;
    if (self->counted < NAT_PATHSTAT_WINDOW)
        self->counted++;
    if (lost)
        self->lost++;
}

void
nat_pathstat_heard (nat_pathstat_t *self, int64_t now_us, bool keepalive)
{
    if (!self->pending_us)
        return;
    if (!keepalive) {
        self->heard = true;             //  delivered, but no sample (Karn-like)
        return;
    }
    //  After a data datagram this keepalive may be one the peer sent later on
    //  its own, that datagram having kept it from answering (its 100 ms
    //  rule): a sample far too long (nat_pathstat.h). Delivered, and no
    //  sample once the path has a sound one; before, a provisional one (else
    //  a busy path would have none), which the first sound one replaces
    bool after_data = self->heard;
    if (after_data && self->samples && !self->provisional) {
        self->pending_us = 0;
        s_count (self, false);
        return;
    }
    if (self->provisional) {
        self->samples = 0;
        memset (self->recent_us, 0, sizeof self->recent_us);
    }
    self->provisional = after_data;
    int64_t sample = now_us - self->pending_us;
    if (sample < 1)
        sample = 1;
    //  A crossing datagram gives a short sample, never a long one: the
    //  largest of the last few is what the path takes (nat_pathstat.h)
    self->recent_us [self->samples % NAT_PATHSTAT_RECENT] = sample;
    uint32_t have = self->samples + 1 < NAT_PATHSTAT_RECENT ? self->samples + 1 : NAT_PATHSTAT_RECENT;
    int64_t r = 0;
    for (uint32_t k = 0; k < have; k++)
        if (self->recent_us [k] > r)
            r = self->recent_us [k];
    if (self->samples < NAT_PATHSTAT_RECENT) {     //  RFC 6298 2.2, with the largest so far
        self->srtt_us = r;
        self->rttvar_us = r / 2;
    }
    else {                              //  2.3: RTTVAR first, with the old SRTT
        int64_t d = self->srtt_us - r;
        self->rttvar_us = (3 * self->rttvar_us + (d < 0 ? -d : d)) / 4;
        self->srtt_us = (7 * self->srtt_us + r) / 8;
    }
    self->last_rtt_us = sample;
    self->samples++;
    self->pending_us = 0;
    s_count (self, false);
}

int64_t
nat_pathstat_rto (const nat_pathstat_t *self)
{
    int64_t rto = !self->samples ? NAT_PATHSTAT_RTO_MIN_US : self->srtt_us + 4 * self->rttvar_us;
    if (rto < NAT_PATHSTAT_RTO_MIN_US)
        rto = NAT_PATHSTAT_RTO_MIN_US;
    return rto > NAT_PATHSTAT_RTO_MAX_US ? NAT_PATHSTAT_RTO_MAX_US : rto;
}

bool
nat_pathstat_tick (nat_pathstat_t *self, int64_t now_us)
{
    if (!self->pending_us || now_us - self->pending_us < nat_pathstat_rto (self))
        return false;
    bool lost = !self->heard;
    s_count (self, lost);
    self->pending_us = 0;
    return lost;
}

int64_t
nat_pathstat_answer_ms (const nat_pathstat_t *self, int64_t floor_ms)
{
    if (!self->samples)
        return floor_ms;
    int64_t need = (self->srtt_us + 4 * self->rttvar_us) / 1000 + 100;
    return need > floor_ms ? need : floor_ms;
}

int
nat_pathstat_loss_permille (const nat_pathstat_t *self)
{
    if (!self->counted)
        return -1;
    return (int) (1000 * (uint32_t) __builtin_popcount (self->window) / self->counted);
}

//  ---------------------------------------------------------------------------
void
nat_pathstat_test (bool verbose)
{
    if (verbose)
        printf (" * nat_pathstat: ");
    const int64_t S = 1000000, MS = 1000;
    nat_pathstat_t ps;
    nat_pathstat_reset (&ps);
    assert (ps.srtt_us == -1 && nat_pathstat_loss_permille (&ps) == -1);
    assert (nat_pathstat_rto (&ps) == NAT_PATHSTAT_RTO_MIN_US);

    //  Due only while the peer is quiet toward us (the 100 ms answer gap)
    int64_t t = 10 * S;
    assert (nat_pathstat_due (&ps, t, -1));
    assert (!nat_pathstat_due (&ps, t, t - 50 * MS));
    assert (!nat_pathstat_due (&ps, t, t - NAT_PATHSTAT_QUIET_US + 1));
    assert (nat_pathstat_due (&ps, t, t - NAT_PATHSTAT_QUIET_US));

    //  First sample: SRTT = R, RTTVAR = R / 2 (RFC 6298 2.2)
    nat_pathstat_sent (&ps, t, 0);
    assert (!nat_pathstat_due (&ps, t + 1, -1));          //  one out at a time
    nat_pathstat_heard (&ps, t + 20 * MS, true);
    assert (ps.srtt_us == 20 * MS && ps.rttvar_us == 10 * MS && ps.samples == 1);
    assert (nat_pathstat_loss_permille (&ps) == 0 && ps.pending_us == 0);
    //  An answer that comes twice is one sample
    nat_pathstat_heard (&ps, t + 21 * MS, true);
    assert (ps.samples == 1);
    assert (!nat_pathstat_due (&ps, t + 4 * S, -1));       //  not before the interval
    //  Second sample, before RECENT of them: SRTT is the largest so far
    t += NAT_PATHSTAT_INTERVAL_US;
    assert (nat_pathstat_due (&ps, t, t - S));
    nat_pathstat_sent (&ps, t, 0);
    nat_pathstat_heard (&ps, t + 40 * MS, true);
    assert (ps.rttvar_us == 20 * MS && ps.srtt_us == 40 * MS && ps.last_rtt_us == 40 * MS);
    assert (nat_pathstat_rto (&ps) == NAT_PATHSTAT_RTO_MIN_US);    //  120 ms, raised to 1 s

    //  The keepalive's departure from nat is a closer start than the request
    t += NAT_PATHSTAT_INTERVAL_US;
    nat_pathstat_sent (&ps, t, 0);
    nat_pathstat_left (&ps, t + 300);
    nat_pathstat_left (&ps, t + 900);                     //  only the first counts
    nat_pathstat_heard (&ps, t + 300 + 22500, true);
    assert (ps.last_rtt_us == 22500 && ps.srtt_us == 40 * MS);   //  the 40 ms is still among the last 3

    //  A data datagram first: delivered, no sample; nor is the later
    //  keepalive (the data may have suppressed the answer: this one came
    //  0.8 s later on the peer's own, and would have been a sample of 800 ms)
    t += NAT_PATHSTAT_INTERVAL_US;
    nat_pathstat_sent (&ps, t, 0);
    nat_pathstat_heard (&ps, t + 5 * MS, false);
    assert (ps.samples == 3 && ps.pending_us);
    nat_pathstat_heard (&ps, t + 800 * MS, true);
    assert (ps.samples == 3 && ps.pending_us == 0 && ps.counted == 4 && ps.lost == 0);
    assert (ps.srtt_us == 40 * MS && !ps.provisional);
    //  ... unless the path has no sample yet: then it is a provisional one
    //  (a busy path would have none), replaced by another such, then by the
    //  first sound one, whole
    nat_pathstat_t busy;
    nat_pathstat_reset (&busy);
    nat_pathstat_sent (&busy, t, 0);
    nat_pathstat_heard (&busy, t + 5 * MS, false);
    nat_pathstat_heard (&busy, t + 800 * MS, true);
    assert (busy.samples == 1 && busy.provisional && busy.srtt_us == 800 * MS);
    nat_pathstat_sent (&busy, t + 6 * S, 0);
    nat_pathstat_heard (&busy, t + 6 * S + 5 * MS, false);
    nat_pathstat_heard (&busy, t + 6 * S + 300 * MS, true);
    assert (busy.samples == 1 && busy.provisional && busy.srtt_us == 300 * MS);
    nat_pathstat_sent (&busy, t + 12 * S, 0);
    nat_pathstat_heard (&busy, t + 12 * S + 70 * MS, true);
    assert (busy.samples == 1 && !busy.provisional && busy.srtt_us == 70 * MS && busy.rttvar_us == 35 * MS);
    nat_pathstat_sent (&busy, t + 18 * S, 0);
    nat_pathstat_heard (&busy, t + 18 * S + 5 * MS, false);
    nat_pathstat_heard (&busy, t + 18 * S + 900 * MS, true);
    assert (busy.samples == 1 && busy.srtt_us == 70 * MS && busy.counted == 4);
    //  Data only, the answer suppressed: not lost, no sample, at the timeout
    t += NAT_PATHSTAT_INTERVAL_US;
    nat_pathstat_sent (&ps, t, 0);
    nat_pathstat_heard (&ps, t + 5 * MS, false);
    assert (!nat_pathstat_tick (&ps, t + 999 * MS) && ps.pending_us);
    assert (!nat_pathstat_tick (&ps, t + S));
    assert (ps.pending_us == 0 && ps.samples == 3 && nat_pathstat_loss_permille (&ps) == 0);
    assert (ps.counted == 5 && ps.lost == 0);

    //  Nothing at all: lost at the timeout (1 of 6 = 166 per mille)
    t += NAT_PATHSTAT_INTERVAL_US;
    nat_pathstat_sent (&ps, t, 0);
    nat_pathstat_left (&ps, t + 100);
    assert (nat_pathstat_tick (&ps, t + 100 + S));
    assert (ps.lost == 1 && nat_pathstat_loss_permille (&ps) == 166);
    //  The answer after the timeout is no sample
    nat_pathstat_heard (&ps, t + 2 * S, true);
    assert (ps.samples == 3);

    //  The window forgets: NAT_PATHSTAT_WINDOW answered probes later, 0 again
    for (int k = 0; k < NAT_PATHSTAT_WINDOW; k++) {
        t += NAT_PATHSTAT_INTERVAL_US;
        nat_pathstat_sent (&ps, t, 0);
        nat_pathstat_heard (&ps, t + 20 * MS, true);
    }
    assert (ps.counted == NAT_PATHSTAT_WINDOW && nat_pathstat_loss_permille (&ps) == 0 && ps.lost == 1);
    //  All lost: 1000 per mille
    for (int k = 0; k < NAT_PATHSTAT_WINDOW; k++) {
        t += NAT_PATHSTAT_INTERVAL_US;
        nat_pathstat_sent (&ps, t, k % 3 ? 1000 * MS : -1000 * MS);
        assert (nat_pathstat_tick (&ps, t + nat_pathstat_rto (&ps)));
    }
    assert (nat_pathstat_loss_permille (&ps) == 1000);

    //  A crossing datagram (the peer's own probe, 30 ms after ours on a
    //  200 ms path) does not pull SRTT down; a path that really got faster
    //  does, once its short samples are all the last RECENT
    nat_pathstat_reset (&ps);
    for (int k = 0; k < 3; k++) {
        nat_pathstat_sent (&ps, t + k * 6 * S, 0);
        nat_pathstat_heard (&ps, t + k * 6 * S + 200 * MS, true);
    }
    assert (ps.srtt_us == 200 * MS);
    nat_pathstat_sent (&ps, t + 18 * S, 0);
    nat_pathstat_heard (&ps, t + 18 * S + 30 * MS, true);
    assert (ps.srtt_us == 200 * MS && ps.last_rtt_us == 30 * MS);
    nat_pathstat_t first_short;                 //  a short first sample: the next long one wins at once
    nat_pathstat_reset (&first_short);
    nat_pathstat_sent (&first_short, t, 0);
    nat_pathstat_heard (&first_short, t + 30 * MS, true);
    nat_pathstat_sent (&first_short, t + 6 * S, 0);
    nat_pathstat_heard (&first_short, t + 6 * S + 200 * MS, true);
    assert (first_short.srtt_us == 200 * MS);
    for (int k = 0; k < 40; k++) {              //  a real drop to 30 ms is taken
        nat_pathstat_sent (&ps, t + (20 + 6 * k) * S, 0);
        nat_pathstat_heard (&ps, t + (20 + 6 * k) * S + 30 * MS, true);
    }
    assert (ps.srtt_us < 32 * MS);

    //  A slow path: the timeout follows SRTT + 4 RTTVAR, capped at 3 s
    nat_pathstat_reset (&ps);
    nat_pathstat_sent (&ps, t, 0);
    nat_pathstat_heard (&ps, t + 500 * MS, true);
    assert (nat_pathstat_rto (&ps) == 1500 * MS);      //  500 + 4 x 250
    nat_pathstat_sent (&ps, t + 6 * S, 0);
    nat_pathstat_heard (&ps, t + 6 * S + 3 * S, true);
    assert (nat_pathstat_rto (&ps) == NAT_PATHSTAT_RTO_MAX_US);
    //  Jitter moves the next probe within +- 1 s of the interval
    nat_pathstat_sent (&ps, t + 20 * S, -700 * MS);
    assert (ps.next_us == t + 20 * S + NAT_PATHSTAT_INTERVAL_US - 700 * MS);
    //  The direct watch's answer window: its floor on a fast path, longer on
    //  a slow one (SRTT 3 s, the largest sample, RTTVAR 1.5 s here: 9100 ms)
    assert (nat_pathstat_answer_ms (&ps, 350) == 9100);
    nat_pathstat_t fast;
    nat_pathstat_reset (&fast);
    assert (nat_pathstat_answer_ms (&fast, 350) == 350);
    nat_pathstat_sent (&fast, t, 0);
    nat_pathstat_heard (&fast, t + 2 * MS, true);
    assert (nat_pathstat_answer_ms (&fast, 350) == 350);
    //  Reset forgets the probe out too
    nat_pathstat_reset (&ps);
    assert (!ps.pending_us && !nat_pathstat_tick (&ps, t + 30 * S));
    if (verbose)
        printf ("OK\n");
}
