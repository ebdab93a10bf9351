/*  nat_bday: the schedule and the port walk of birthday attempts (see
    nat_bday.h). Pure, with a clock argument, so the self test runs an
    attempt from start to end in microseconds. */
#include "nat_bday.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

nat_bday_role_t
nat_bday_role (nat_mapping_class_t mine)
{
    if (mine == NAT_MAPPING_EDM_RANDOM)
        return NAT_BDAY_HARD;
    return nat_mapping_may_predict (mine) ? NAT_BDAY_EASY : NAT_BDAY_NONE;
}

nat_bday_action_t
nat_bday_step (nat_bday_t *self, const nat_bday_config_t *cfg, nat_bday_role_t role,
               bool eligible, uint32_t probe_rounds, int64_t now)
{
    if (self->role != NAT_BDAY_NONE) {
        //  Over when the peer left the relay (or went), when this node's role
        //  changed, or after its rounds: the hard side holds its mappings one
        //  interval longer than the easy side guesses, for guesses in flight
        uint32_t last = self->role == NAT_BDAY_HARD ? cfg->rounds + 1 : cfg->rounds;
        if (!eligible || !cfg->enabled || role != (nat_bday_role_t) self->role)
            return NAT_BDAY_END;
        if (now < self->next_ms)
            return NAT_BDAY_WAIT;
        return self->round >= last ? NAT_BDAY_END : NAT_BDAY_ROUND;
    }
    if (!cfg->enabled || role == NAT_BDAY_NONE || !eligible || probe_rounds < cfg->after
    ||  (self->ended_ms && now - self->ended_ms < cfg->retry_ms))
        return NAT_BDAY_WAIT;
    self->role = (uint8_t) role;
    self->round = 0;
    self->started_ms = now;
    self->attempts++;
    //  The hard side opens its mappings at once; the easy side's first guesses
    //  wait half an interval, so that the other side (which counts its own
    //  probe rounds, started within a tick of ours) has opened them
    self->next_ms = role == NAT_BDAY_HARD ? now : now + cfg->interval_ms / 2;
    return NAT_BDAY_START;
}

void
nat_bday_round_done (nat_bday_t *self, const nat_bday_config_t *cfg, int64_t now)
{
    self->round++;
    self->next_ms = now + cfg->interval_ms;
}

void
nat_bday_end (nat_bday_t *self, int64_t now)
{
    if (self->role == NAT_BDAY_NONE)
        return;
    self->role = NAT_BDAY_NONE;
    self->ended_ms = now ? now : 1;
}

static uint32_t
s_gcd (uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

void
nat_bday_seed (nat_bday_t *self, uint64_t random)
{
    self->base = (uint16_t) (random % NAT_BDAY_PORTS);
    //  A step prime to 64512 (2^10 * 3^2 * 7) walks every port once
    uint32_t stride = (uint32_t) ((random >> 16) % NAT_BDAY_PORTS) | 1;
    while (s_gcd (stride, NAT_BDAY_PORTS) != 1)
        stride = (stride + 2) % NAT_BDAY_PORTS;
    self->stride = (uint16_t) stride;
}

uint16_t
nat_bday_port (const nat_bday_t *self, uint32_t k)
{
    uint64_t at = ((uint64_t) self->base + (uint64_t) k * self->stride) % NAT_BDAY_PORTS;
    return (uint16_t) (NAT_BDAY_PORT_MIN + at);
}

double
nat_bday_miss (uint32_t sockets, uint32_t guesses, uint32_t ports)
{
    if (guesses + sockets > ports)
        return 0;
    //  P(none of the `guesses` ports is one of the `sockets`) =
    //  prod over i < sockets of (ports - guesses - i) / (ports - i)
    double p = 1;
    for (uint32_t i = 0; i < sockets; i++)
        p *= (double) (ports - guesses - i) / (double) (ports - i);
    return p;
}

//  ---------------------------------------------------------------------------
//  Self test

void
nat_bday_test (bool verbose)
{
    printf (" * nat_bday: ");
    assert (nat_bday_role (NAT_MAPPING_EDM_RANDOM) == NAT_BDAY_HARD);
    assert (nat_bday_role (NAT_MAPPING_EIM) == NAT_BDAY_EASY && nat_bday_role (NAT_MAPPING_NONE) == NAT_BDAY_EASY);
    assert (nat_bday_role (NAT_MAPPING_EDM_SEQ) == NAT_BDAY_NONE && nat_bday_role (NAT_MAPPING_UNKNOWN) == NAT_BDAY_NONE);

    nat_bday_config_t cfg = { true, 256, 256, 4, 1000, 60000, 3 };
    nat_bday_t b = { 0 };
    //  Not before `after` probe rounds, nor when off, not eligible, or no role
    assert (nat_bday_step (&b, &cfg, NAT_BDAY_EASY, true, 2, 1000) == NAT_BDAY_WAIT);
    assert (nat_bday_step (&b, &cfg, NAT_BDAY_EASY, false, 3, 1000) == NAT_BDAY_WAIT);
    assert (nat_bday_step (&b, &cfg, NAT_BDAY_NONE, true, 3, 1000) == NAT_BDAY_WAIT);
    cfg.enabled = false;
    assert (nat_bday_step (&b, &cfg, NAT_BDAY_EASY, true, 3, 1000) == NAT_BDAY_WAIT);
    cfg.enabled = true;
    //  Easy: starts, first round half an interval later, one per interval, 4 rounds, then the end
    assert (nat_bday_step (&b, &cfg, NAT_BDAY_EASY, true, 3, 1000) == NAT_BDAY_START);
    assert (b.attempts == 1 && b.role == NAT_BDAY_EASY);
    assert (nat_bday_step (&b, &cfg, NAT_BDAY_EASY, true, 3, 1499) == NAT_BDAY_WAIT);
    int64_t now = 1500;
    for (int r = 0; r < 4; r++, now += 1000) {
        assert (nat_bday_step (&b, &cfg, NAT_BDAY_EASY, true, 3, now) == NAT_BDAY_ROUND);
        //  Not acted on (crypto's dial gap): due again at the next call
        assert (nat_bday_step (&b, &cfg, NAT_BDAY_EASY, true, 3, now + 100) == NAT_BDAY_ROUND);
        nat_bday_round_done (&b, &cfg, now + 100);
        assert (nat_bday_step (&b, &cfg, NAT_BDAY_EASY, true, 3, now + 200) == NAT_BDAY_WAIT);
        now += 100;
    }
    assert (nat_bday_step (&b, &cfg, NAT_BDAY_EASY, true, 3, now) == NAT_BDAY_END);
    nat_bday_end (&b, now);
    //  One attempt per retry period
    assert (nat_bday_step (&b, &cfg, NAT_BDAY_EASY, true, 9, now + 59999) == NAT_BDAY_WAIT);
    assert (nat_bday_step (&b, &cfg, NAT_BDAY_EASY, true, 9, now + 60000) == NAT_BDAY_START && b.attempts == 2);
    //  The peer went direct (or down): the end at once
    assert (nat_bday_step (&b, &cfg, NAT_BDAY_EASY, false, 9, now + 60001) == NAT_BDAY_END);
    nat_bday_end (&b, now + 60001);
    //  Hard: the first round at once, one more round than the easy side
    nat_bday_t h = { 0 };
    assert (nat_bday_step (&h, &cfg, NAT_BDAY_HARD, true, 3, 5000) == NAT_BDAY_START);
    now = 5000;
    int rounds = 0;
    nat_bday_action_t a;
    while ((a = nat_bday_step (&h, &cfg, NAT_BDAY_HARD, true, 3, now)) != NAT_BDAY_END) {
        if (a == NAT_BDAY_ROUND) {
            nat_bday_round_done (&h, &cfg, now);
            rounds++;
        }
        now += 100;
        assert (now < 20000);
    }
    assert (rounds == 5);
    //  The role changed under way (this node's NAT rebound): the end
    nat_bday_end (&h, now);
    h.ended_ms = 0;
    assert (nat_bday_step (&h, &cfg, NAT_BDAY_HARD, true, 3, now) == NAT_BDAY_START);
    assert (nat_bday_step (&h, &cfg, NAT_BDAY_EASY, true, 3, now) == NAT_BDAY_END);

    //  The walk: every port once in the first 64,512 guesses, all in range,
    //  for several seeds (the step is prime to 64512)
    static uint8_t seen [65536];
    uint64_t seeds [] = { 0, 1, 0xffffffffffffffffULL, 0x123456789abcdefULL, 64512ULL * 3 };
    for (size_t s = 0; s < sizeof seeds / sizeof seeds [0]; s++) {
        nat_bday_t w = { 0 };
        nat_bday_seed (&w, seeds [s]);
        memset (seen, 0, sizeof seen);
        for (uint32_t k = 0; k < NAT_BDAY_PORTS; k++) {
            uint16_t port = nat_bday_port (&w, k);
            assert (port >= NAT_BDAY_PORT_MIN && !seen [port]);
            seen [port] = 1;
        }
    }
    //  The numbers docs/nat.md uses: one round of 256 guesses against 256
    //  mappings hits with ~63 %; 7 rounds miss with < 1e-3
    double one = 1 - nat_bday_miss (256, 256, NAT_BDAY_PORTS);
    assert (one > 0.63 && one < 0.64);
    assert (nat_bday_miss (256, 7 * 256, NAT_BDAY_PORTS) < 1e-3);
    assert (nat_bday_miss (256, NAT_BDAY_PORTS, NAT_BDAY_PORTS) == 0);
    if (verbose)
        printf ("(one round %.3f, 8 rounds miss %.2g) ", one, nat_bday_miss (256, 8 * 256, NAT_BDAY_PORTS));
    printf ("OK\n");
}
