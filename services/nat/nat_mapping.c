/*  nat_mapping: this node's NAT mapping class (why and how: nat_mapping.h). */
#include "nat_mapping.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    nat_addr_t relay;
    nat_addr_t observed;
} s_obs_t;

struct _nat_mapping_t {
    s_obs_t obs [NAT_MAPPING_OBS_MAX];
    size_t count;
    nat_addr_t local [NAT_MAPPING_LOCAL_MAX];
    size_t local_count;
    uint16_t local_port;
};

nat_mapping_t *
nat_mapping_new (void)
{
    nat_mapping_t *self = (nat_mapping_t *) calloc (1, sizeof *self);
    assert (self);
    return self;
}

void
nat_mapping_destroy (nat_mapping_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

void
nat_mapping_clear (nat_mapping_t *self)
{
    self->count = 0;
}

bool
nat_mapping_observe (nat_mapping_t *self, const nat_addr_t *relay, const nat_addr_t *observed)
{
    if (!nat_addr_is_set (relay) || !nat_addr_is_set (observed))
        return false;
    for (size_t i = 0; i < self->count; i++)
        if (nat_addr_eq (&self->obs [i].relay, relay)) {
            if (nat_addr_eq (&self->obs [i].observed, observed))
                return false;
            self->obs [i].observed = *observed;
            return true;
        }
    if (self->count == NAT_MAPPING_OBS_MAX)
        return false;
    self->obs [self->count++] = (s_obs_t) { *relay, *observed };
    return true;
}

bool
nat_mapping_forget (nat_mapping_t *self, const nat_addr_t *relay)
{
    for (size_t i = 0; i < self->count; i++)
        if (nat_addr_eq (&self->obs [i].relay, relay)) {
            self->obs [i] = self->obs [--self->count];
            return true;
        }
    return false;
}

void
nat_mapping_set_local (nat_mapping_t *self, const nat_addr_t *addrs, size_t count, uint16_t port)
{
    self->local_count = count < NAT_MAPPING_LOCAL_MAX ? count : NAT_MAPPING_LOCAL_MAX;
    memcpy (self->local, addrs, self->local_count * sizeof addrs [0]);
    self->local_port = port;
}

size_t
nat_mapping_count (nat_mapping_t *self)
{
    return self->count;
}

//  Same IP (ports ignored)
static bool
s_same_ip (const nat_addr_t *a, const nat_addr_t *b)
{
    if (nat_addr_family (a) != nat_addr_family (b))
        return false;
    if (nat_addr_family (a) == AF_INET)
        return a->in4.sin_addr.s_addr == b->in4.sin_addr.s_addr;
    return memcmp (&a->in6.sin6_addr, &b->in6.sin6_addr, 16) == 0;
}

static bool
s_is_local (nat_mapping_t *self, const nat_addr_t *observed)
{
    if (nat_addr_port (observed) != self->local_port)
        return false;
    for (size_t i = 0; i < self->local_count; i++)
        if (s_same_ip (&self->local [i], observed))
            return true;
    return false;
}

static int
s_cmp_port (const void *a, const void *b)
{
    return (int) *(const uint16_t *) a - (int) *(const uint16_t *) b;
}

//  The class, with the step and highest port of a sequential mapping
static nat_mapping_class_t
s_classify (nat_mapping_t *self, uint16_t *step, uint16_t *highest)
{
    *step = *highest = 0;
    if (self->count == 0)
        return NAT_MAPPING_UNKNOWN;
    for (size_t i = 0; i < self->count; i++)
        if (s_is_local (self, &self->obs [i].observed))
            return NAT_MAPPING_NONE;
    if (self->count < 2)
        return NAT_MAPPING_UNKNOWN;
    bool same = true, same_ip = true;
    for (size_t i = 1; i < self->count; i++) {
        same = same && nat_addr_eq (&self->obs [i].observed, &self->obs [0].observed);
        same_ip = same_ip && s_same_ip (&self->obs [i].observed, &self->obs [0].observed);
    }
    if (same)
        return NAT_MAPPING_EIM;
    if (!same_ip)
        return NAT_MAPPING_EDM_RANDOM;
    uint16_t ports [NAT_MAPPING_OBS_MAX];
    for (size_t i = 0; i < self->count; i++)
        ports [i] = nat_addr_port (&self->obs [i].observed);
    qsort (ports, self->count, sizeof ports [0], s_cmp_port);
    uint16_t min_gap = UINT16_MAX;
    for (size_t i = 1; i < self->count; i++) {
        uint16_t gap = (uint16_t) (ports [i] - ports [i - 1]);
        //  Two relays, one port and another: the same ip:port toward two
        //  destinations and a third elsewhere is not a cone either
        if (gap > NAT_MAPPING_SEQ_GAP_MAX)
            return NAT_MAPPING_EDM_RANDOM;
        if (gap && gap < min_gap)
            min_gap = gap;
    }
    *step = min_gap;
    *highest = ports [self->count - 1];
    return NAT_MAPPING_EDM_SEQ;
}

nat_mapping_class_t
nat_mapping_class (nat_mapping_t *self)
{
    uint16_t step, highest;
    return s_classify (self, &step, &highest);
}

uint16_t
nat_mapping_step (nat_mapping_t *self)
{
    uint16_t step, highest;
    s_classify (self, &step, &highest);
    return step;
}

uint16_t
nat_mapping_highest (nat_mapping_t *self)
{
    uint16_t step, highest;
    s_classify (self, &step, &highest);
    return highest;
}

const char *
nat_mapping_class_name (nat_mapping_class_t kind)
{
    switch (kind) {
        case NAT_MAPPING_NONE:       return "none";
        case NAT_MAPPING_EIM:        return "endpoint-independent";
        case NAT_MAPPING_EDM_SEQ:    return "endpoint-dependent-sequential";
        case NAT_MAPPING_EDM_RANDOM: return "endpoint-dependent-random";
        default:                     return "unknown";
    }
}

const char *
nat_mapping_class_words (nat_mapping_class_t kind)
{
    switch (kind) {
        case NAT_MAPPING_NONE:
            return "we are behind no NAT (a relay sees our own address and port)";
        case NAT_MAPPING_EIM:
            return "our NAT maps every destination to one public port (endpoint-independent mapping)";
        case NAT_MAPPING_EDM_SEQ:
            return "our NAT maps each destination to a new public port, in sequence (endpoint-dependent mapping)";
        case NAT_MAPPING_EDM_RANDOM:
            return "our NAT maps each destination to a new random public port (endpoint-dependent mapping)";
        default:
            return "our NAT's mapping is unknown (fewer than two relays answered over UDP)";
    }
}

bool
nat_mapping_may_predict (nat_mapping_class_t kind)
{
    return kind == NAT_MAPPING_NONE || kind == NAT_MAPPING_EIM;
}

uint16_t
nat_mapping_predict (uint16_t seen, uint32_t round, uint32_t window, uint32_t span, uint32_t anchor,
                     uint16_t *from)
{
    *from = 0;
    if (round < 1 || window < 1)
        return 0;
    if (anchor < 1 || anchor > span)
        anchor = 1;
    uint32_t windows = span / window;
    uint32_t offset = anchor;
    //  Odd rounds: the anchor's window (the peer's mapping toward us stays while
    //  it keeps probing, so where it was is where it likely is); even rounds:
    //  the next window of the sweep after it
    if (round % 2 == 0 && windows >= 2)
        offset = anchor + (1 + (round / 2 - 1) % (windows - 1)) * window;
    if ((uint32_t) seen + offset > 65535)
        offset = anchor;                //  the windows past the top: the anchor's instead
    if ((uint32_t) seen + offset > 65535)
        offset = 1;
    if ((uint32_t) seen + offset > 65535)
        return 0;                       //  seen is 65535: nothing above it
    uint32_t room = 65535u - seen - offset + 1;
    *from = (uint16_t) offset;
    return (uint16_t) (window < room ? window : room);
}

//  ---------------------------------------------------------------------------
//  Self test: each class from the observations that make it, the step and the
//  highest port, a relay forgotten, and what may predict.

static nat_addr_t
s_addr (const char *ip, uint16_t port)
{
    nat_addr_t addr;
    int rc = nat_addr_set_ip (&addr, ip, port);
    assert (rc == 0);
    return addr;
}

void
nat_mapping_test (bool verbose)
{
    nat_mapping_t *self = nat_mapping_new ();
    nat_addr_t r1 = s_addr ("203.0.113.11", 3479), r2 = s_addr ("203.0.113.12", 3479);
    nat_addr_t r3 = s_addr ("203.0.113.13", 3479);
    nat_addr_t local = s_addr ("10.1.0.2", 0);
    nat_mapping_set_local (self, &local, 1, 51820);
    assert (nat_mapping_class (self) == NAT_MAPPING_UNKNOWN);

    //  One relay: unknown, unless it saw our own address and port
    nat_addr_t seen = s_addr ("203.0.113.101", 51820);
    assert (nat_mapping_observe (self, &r1, &seen));
    assert (!nat_mapping_observe (self, &r1, &seen));       //  the same again: no change
    assert (nat_mapping_class (self) == NAT_MAPPING_UNKNOWN && nat_mapping_count (self) == 1);
    //  Two relays, one ip:port: endpoint-independent
    assert (nat_mapping_observe (self, &r2, &seen));
    assert (nat_mapping_class (self) == NAT_MAPPING_EIM && nat_mapping_may_predict (NAT_MAPPING_EIM));
    assert (nat_mapping_step (self) == 0 && nat_mapping_highest (self) == 0);

    //  Ports in sequence: 30001, 30002, then a third relay at 30005
    nat_mapping_clear (self);
    nat_addr_t s1 = s_addr ("203.0.113.105", 30001), s2 = s_addr ("203.0.113.105", 30002);
    nat_addr_t s3 = s_addr ("203.0.113.105", 30005);
    nat_mapping_observe (self, &r1, &s2);
    nat_mapping_observe (self, &r2, &s1);
    assert (nat_mapping_class (self) == NAT_MAPPING_EDM_SEQ && !nat_mapping_may_predict (NAT_MAPPING_EDM_SEQ));
    assert (nat_mapping_step (self) == 1 && nat_mapping_highest (self) == 30002);
    nat_mapping_observe (self, &r3, &s3);
    assert (nat_mapping_step (self) == 1 && nat_mapping_highest (self) == 30005);
    //  A mapping that moved far off: random
    nat_addr_t far = s_addr ("203.0.113.105", 41234);
    assert (nat_mapping_observe (self, &r3, &far));
    assert (nat_mapping_class (self) == NAT_MAPPING_EDM_RANDOM);
    //  Forgotten (reached over TCP now): sequential again; twice: nothing
    assert (nat_mapping_forget (self, &r3) && !nat_mapping_forget (self, &r3));
    assert (nat_mapping_class (self) == NAT_MAPPING_EDM_SEQ);

    //  Random ports, and two public addresses (a pool): random
    nat_mapping_clear (self);
    nat_addr_t x1 = s_addr ("203.0.113.105", 1100), x2 = s_addr ("203.0.113.105", 50000);
    nat_mapping_observe (self, &r1, &x1);
    nat_mapping_observe (self, &r2, &x2);
    assert (nat_mapping_class (self) == NAT_MAPPING_EDM_RANDOM && nat_mapping_step (self) == 0);
    nat_mapping_clear (self);
    nat_addr_t y1 = s_addr ("203.0.113.105", 1100), y2 = s_addr ("203.0.113.106", 1100);
    nat_mapping_observe (self, &r1, &y1);
    nat_mapping_observe (self, &r2, &y2);
    assert (nat_mapping_class (self) == NAT_MAPPING_EDM_RANDOM);

    //  No NAT: a relay saw our own address and listen port (one relay is enough);
    //  our address with another port is a NAT that keeps the address (not none)
    nat_mapping_clear (self);
    nat_addr_t own = s_addr ("10.1.0.2", 51820), own_other = s_addr ("10.1.0.2", 40000);
    nat_mapping_observe (self, &r1, &own);
    assert (nat_mapping_class (self) == NAT_MAPPING_NONE && nat_mapping_may_predict (NAT_MAPPING_NONE));
    nat_mapping_observe (self, &r1, &own_other);
    assert (nat_mapping_class (self) == NAT_MAPPING_UNKNOWN);

    //  Unset addresses are not observations; the table is bounded
    nat_addr_t unset;
    nat_addr_clear (&unset);
    assert (!nat_mapping_observe (self, &unset, &seen) && !nat_mapping_observe (self, &r2, &unset));
    nat_mapping_clear (self);
    for (int i = 0; i < NAT_MAPPING_OBS_MAX + 2; i++) {
        nat_addr_t r = s_addr ("198.51.100.1", (uint16_t) (1000 + i));
        nat_mapping_observe (self, &r, &seen);
    }
    assert (nat_mapping_count (self) == NAT_MAPPING_OBS_MAX && nat_mapping_class (self) == NAT_MAPPING_EIM);

    //  Prediction windows: +1..+16, +17..+32, ... up to the span, then again
    uint16_t from;
    assert (nat_mapping_predict (30002, 0, 16, 256, 1, &from) == 0 && from == 0);
    assert (nat_mapping_predict (30002, 1, 16, 256, 1, &from) == 16 && from == 1);
    //  Even rounds sweep on, odd ones come back to the anchor's window
    assert (nat_mapping_predict (30002, 2, 16, 256, 1, &from) == 16 && from == 17);
    assert (nat_mapping_predict (30002, 3, 16, 256, 1, &from) == 16 && from == 1);
    assert (nat_mapping_predict (30002, 4, 16, 256, 1, &from) == 16 && from == 33);
    assert (nat_mapping_predict (30002, 30, 16, 256, 1, &from) == 16 && from == 241);
    assert (nat_mapping_predict (30002, 32, 16, 256, 1, &from) == 16 && from == 17);
    assert (nat_mapping_predict (30002, 4, 64, 256, 1, &from) == 64 && from == 129);
    assert (nat_mapping_predict (30002, 2, 100, 50, 1, &from) == 100 && from == 1);     //  span below two windows
    //  The offset that worked last time is the anchor
    assert (nat_mapping_predict (30002, 1, 16, 256, 30, &from) == 16 && from == 30);
    assert (nat_mapping_predict (30002, 2, 16, 256, 30, &from) == 16 && from == 46);
    assert (nat_mapping_predict (30002, 3, 16, 256, 0, &from) == 16 && from == 1);
    assert (nat_mapping_predict (30002, 3, 16, 256, 300, &from) == 16 && from == 1);
    //  Near the top: cut at 65535, the anchor's window for a sweep past it; nothing above 65535
    assert (nat_mapping_predict (65530, 1, 16, 256, 1, &from) == 5 && from == 1);
    assert (nat_mapping_predict (65500, 4, 16, 256, 1, &from) == 3 && from == 33);
    assert (nat_mapping_predict (65500, 6, 16, 256, 1, &from) == 16 && from == 1);
    assert (nat_mapping_predict (65500, 1, 16, 256, 40, &from) == 16 && from == 1);
    assert (nat_mapping_predict (65535, 1, 16, 256, 1, &from) == 0);
    assert (nat_mapping_predict (100, 1, 0, 256, 1, &from) == 0);

    //  Names
    assert (strcmp (nat_mapping_class_name (NAT_MAPPING_EDM_SEQ), "endpoint-dependent-sequential") == 0);
    assert (strstr (nat_mapping_class_words (NAT_MAPPING_EDM_RANDOM), "random"));
    assert (strcmp (nat_mapping_class_name ((nat_mapping_class_t) 99), "unknown") == 0);
    nat_mapping_destroy (&self);
    assert (self == NULL);
    if (verbose)
        printf ("nat_mapping: ok\n");
}
