/*  bridge_far: a flow's far end, learned from authenticated datagrams only
    (why: bridge_far.h). */
#include "bridge_far.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A family's slot: IPv6 first, the preferred one
enum { S_V6, S_V4, S_SLOTS };

typedef struct {
    bridge_addr_t addr;                 //  source of the family's last valid datagram; len 0: none
    int64_t heard_ms;                   //  when it came
    int64_t first_ms;                   //  when the family first answered
} s_learned_t;

struct _bridge_far_t {
    bridge_addr_t cand [BRIDGE_FAR_MAX];
    int cand_count;
    int timeout_ms, grace_ms;
    bool v6_candidate;                  //  IPv4 waits grace_ms for it
    s_learned_t learned [S_SLOTS];
    uint64_t changes;
};

bool
bridge_addr_same (const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *) a, *y = (const struct sockaddr_in6 *) b;
        return x->sin6_port == y->sin6_port && memcmp (&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *) a, *y = (const struct sockaddr_in *) b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    return false;
}

void
bridge_addr_text (const struct sockaddr_storage *addr, char *out, size_t size)
{
    char host [INET6_ADDRSTRLEN] = "?";
    if (addr->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) addr;
        inet_ntop (AF_INET6, &sin6->sin6_addr, host, sizeof host);
        snprintf (out, size, "[%s]:%u", host, ntohs (sin6->sin6_port));
    }
    else {
        const struct sockaddr_in *sin = (const struct sockaddr_in *) addr;
        inet_ntop (AF_INET, &sin->sin_addr, host, sizeof host);
        snprintf (out, size, "%s:%u", host, ntohs (sin->sin_port));
    }
}

//  The slot of addr's family (an IPv4-mapped IPv6 address is IPv4)
static int
s_slot (const struct sockaddr_storage *addr)
{
    if (addr->ss_family != AF_INET6)
        return S_V4;
    return IN6_IS_ADDR_V4MAPPED (&((const struct sockaddr_in6 *) addr)->sin6_addr) ? S_V4 : S_V6;
}

bridge_far_t *
bridge_far_new (const bridge_addr_t *cand, int count, int timeout_ms, int grace_ms)
{
    assert (count >= 0 && count <= BRIDGE_FAR_MAX && (cand || !count) && timeout_ms > 0 && grace_ms >= 0);
    bridge_far_t *self = (bridge_far_t *) calloc (1, sizeof *self);
    assert (self);
    for (int i = 0; i < count; i++) {
        assert (cand [i].len > 0 && cand [i].len <= sizeof (struct sockaddr_storage));
        self->cand [i] = cand [i];
        self->v6_candidate |= s_slot (&cand [i].addr) == S_V6;
    }
    self->cand_count = count;
    self->timeout_ms = timeout_ms;
    self->grace_ms = grace_ms;
    return self;
}

void
bridge_far_destroy (bridge_far_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

bool
bridge_far_heard (bridge_far_t *self, const struct sockaddr_storage *addr, socklen_t len, int64_t now_ms)
{
    assert (len > 0 && len <= sizeof (struct sockaddr_storage));
    s_learned_t *l = &self->learned [s_slot (addr)];
    l->heard_ms = now_ms;
    if (l->addr.len && bridge_addr_same (&l->addr.addr, addr))
        return false;
    if (l->addr.len)
        self->changes++;
    else
        l->first_ms = now_ms;
    memset (&l->addr, 0, sizeof l->addr);
    memcpy (&l->addr.addr, addr, len);
    l->addr.len = len;
    return true;
}

static bool
s_alive (bridge_far_t *self, int slot, int64_t now_ms)
{
    const s_learned_t *l = &self->learned [slot];
    return l->addr.len && now_ms - l->heard_ms < self->timeout_ms;
}

//  IPv4's head start for IPv6 still runs
static bool
s_in_grace (bridge_far_t *self, int64_t now_ms)
{
    return self->v6_candidate && now_ms - self->learned [S_V4].first_ms < self->grace_ms;
}

int
bridge_far_heartbeats (bridge_far_t *self, int64_t now_ms, const bridge_addr_t **out, int max)
{
    int n = 0;
    for (int slot = 0; slot < S_SLOTS; slot++) {
        if (self->learned [slot].addr.len) {
            if (n < max)
                out [n++] = &self->learned [slot].addr;
            continue;
        }
        for (int i = 0; i < self->cand_count && n < max; i++)
            if (s_slot (&self->cand [i].addr) == slot)
                out [n++] = &self->cand [i];
    }
    return n;
}

const bridge_addr_t *
bridge_far_chosen (bridge_far_t *self, int64_t now_ms)
{
    if (s_alive (self, S_V6, now_ms))
        return &self->learned [S_V6].addr;
    if (s_alive (self, S_V4, now_ms) && !s_in_grace (self, now_ms))
        return &self->learned [S_V4].addr;
    return NULL;
}

const bridge_addr_t *
bridge_far_best (bridge_far_t *self, int64_t now_ms)
{
    const bridge_addr_t *far = bridge_far_chosen (self, now_ms);
    if (far)
        return far;
    const s_learned_t *v6 = &self->learned [S_V6], *v4 = &self->learned [S_V4];
    if (v6->addr.len && (!v4->addr.len || v6->heard_ms >= v4->heard_ms))
        return &v6->addr;
    return v4->addr.len ? &v4->addr : NULL;
}

int
bridge_far_pending_ms (bridge_far_t *self, int64_t now_ms)
{
    if (s_alive (self, S_V6, now_ms) || !s_alive (self, S_V4, now_ms) || !s_in_grace (self, now_ms))
        return -1;
    return (int) (self->learned [S_V4].first_ms + self->grace_ms - now_ms);
}

const bridge_addr_t *
bridge_far_shown (bridge_far_t *self, int64_t now_ms)
{
    const bridge_addr_t *far = bridge_far_best (self, now_ms);
    return far ? far : self->cand_count ? &self->cand [0] : NULL;
}

bool
bridge_far_known (bridge_far_t *self, const struct sockaddr_storage *addr)
{
    for (int slot = 0; slot < S_SLOTS; slot++)
        if (self->learned [slot].addr.len && bridge_addr_same (&self->learned [slot].addr.addr, addr))
            return true;
    for (int i = 0; i < self->cand_count; i++)
        if (bridge_addr_same (&self->cand [i].addr, addr))
            return true;
    return false;
}

uint64_t bridge_far_changes (bridge_far_t *self) { return self->changes; }

//  ---------------------------------------------------------------------------
//  Self test: heartbeats to the candidates until something valid is heard,
//  then to its source only; a new source moves the far end and is counted;
//  the text forms of both families.

static bridge_addr_t
s_addr4 (const char *ip, uint16_t port)
{
    bridge_addr_t a;
    memset (&a, 0, sizeof a);
    struct sockaddr_in *sin = (struct sockaddr_in *) &a.addr;
    sin->sin_family = AF_INET;
    sin->sin_port = htons (port);
    assert (inet_pton (AF_INET, ip, &sin->sin_addr) == 1);
    a.len = sizeof *sin;
    return a;
}

static bridge_addr_t
s_addr6 (const char *ip, uint16_t port)
{
    bridge_addr_t a;
    memset (&a, 0, sizeof a);
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &a.addr;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons (port);
    assert (inet_pton (AF_INET6, ip, &sin6->sin6_addr) == 1);
    a.len = sizeof *sin6;
    return a;
}

static bool
s_is (const bridge_addr_t *got, const bridge_addr_t *want)
{
    return got && bridge_addr_same (&got->addr, &want->addr);
}

//  Dual stack: heartbeats to both families; IPv6 preferred, IPv4 taken after
//  its grace, at once when IPv6 goes quiet, and left when IPv6 comes back
static void
s_test_dual (bool verbose)
{
    const int T = 1000, G = BRIDGE_FAMILY_GRACE_MS;
    bridge_addr_t cand [2] = { s_addr4 ("192.0.2.1", 4000), s_addr6 ("2001:db8::1", 4000) };
    bridge_addr_t v4 = s_addr4 ("192.0.2.1", 4000), v6 = s_addr6 ("2001:db8::1", 4000);
    const bridge_addr_t *to [BRIDGE_FAR_MAX];
    bridge_far_t *self = bridge_far_new (cand, 2, T, G);
    //  Both punched, IPv6 first whatever the client's order
    assert (bridge_far_heartbeats (self, 0, to, BRIDGE_FAR_MAX) == 2 && s_is (to [0], &v6) && s_is (to [1], &v4));
    //  IPv4 answers first: not taken before its grace, unless IPv6 answers
    assert (bridge_far_heard (self, &v4.addr, v4.len, 100));
    assert (!bridge_far_chosen (self, 100) && bridge_far_pending_ms (self, 100) == G);
    assert (s_is (bridge_far_best (self, 100), &v4));
    assert (bridge_far_heard (self, &v6.addr, v6.len, 100 + G / 2));
    assert (s_is (bridge_far_chosen (self, 100 + G / 2), &v6) && bridge_far_pending_ms (self, 100 + G / 2) == -1);
    //  Heartbeats keep going to both (each family's far end)
    assert (bridge_far_heartbeats (self, 200, to, BRIDGE_FAR_MAX) == 2);
    //  IPv6 goes quiet, IPv4 still answers: IPv4 at once after the timeout
    int64_t v6_last = 100 + G / 2;
    bridge_far_heard (self, &v4.addr, v4.len, v6_last + T - 10);
    assert (s_is (bridge_far_chosen (self, v6_last + T - 1), &v6));
    assert (s_is (bridge_far_chosen (self, v6_last + T), &v4));
    //  IPv6 back: preferred again
    bridge_far_heard (self, &v6.addr, v6.len, v6_last + T + 100);
    assert (s_is (bridge_far_chosen (self, v6_last + T + 100), &v6) && bridge_far_changes (self) == 0);
    bridge_far_destroy (&self);

    //  Only IPv4 answers: taken when its grace is over
    self = bridge_far_new (cand, 2, T, G);
    bridge_far_heard (self, &v4.addr, v4.len, 50);
    assert (!bridge_far_chosen (self, 50 + G - 1) && s_is (bridge_far_chosen (self, 50 + G), &v4));
    //  A dual-stack socket's IPv4-mapped source is IPv4 (no second IPv6 far end)
    bridge_addr_t mapped = s_addr6 ("::ffff:192.0.2.9", 4000);
    assert (bridge_far_heard (self, &mapped.addr, mapped.len, 60) && bridge_far_changes (self) == 1);
    assert (s_is (bridge_far_chosen (self, 60 + G), &mapped));
    assert (bridge_far_heartbeats (self, 60, to, BRIDGE_FAR_MAX) == 2 && s_is (to [0], &v6) && s_is (to [1], &mapped));
    bridge_far_destroy (&self);
    if (verbose)
        printf ("bridge_far: dual stack ok\n");
}

void
bridge_far_test (bool verbose)
{
    bridge_addr_t cand [2] = { s_addr4 ("192.0.2.1", 4000), s_addr4 ("192.0.2.2", 4000) };
    bridge_far_t *self = bridge_far_new (cand, 2, 1000, BRIDGE_FAMILY_GRACE_MS);
    const bridge_addr_t *to [BRIDGE_FAR_MAX];
    //  Nothing heard: every candidate, no far end for data, the first shown
    assert (bridge_far_heartbeats (self, 0, to, BRIDGE_FAR_MAX) == 2);
    assert (bridge_addr_same (&to [0]->addr, &cand [0].addr) && bridge_addr_same (&to [1]->addr, &cand [1].addr));
    assert (bridge_far_chosen (self, 0) == NULL);
    assert (bridge_addr_same (&bridge_far_shown (self, 0)->addr, &cand [0].addr));
    assert (bridge_far_known (self, &cand [1].addr));
    //  A NAT's mapping answers (another port than the candidate's): taken at
    //  once (no IPv6 candidate to wait for)
    bridge_addr_t mapped = s_addr4 ("192.0.2.1", 39817);
    assert (!bridge_far_known (self, &mapped.addr));
    assert (bridge_far_heard (self, &mapped.addr, mapped.len, 10));
    assert (bridge_far_pending_ms (self, 10) == -1 && bridge_far_chosen (self, 10));
    assert (bridge_far_heartbeats (self, 20, to, BRIDGE_FAR_MAX) == 1 && bridge_addr_same (&to [0]->addr, &mapped.addr));
    assert (bridge_addr_same (&bridge_far_chosen (self, 20)->addr, &mapped.addr));
    assert (bridge_far_known (self, &mapped.addr) && bridge_far_changes (self) == 0);
    //  The same again moves nothing; a rebinding does, counted
    assert (!bridge_far_heard (self, &mapped.addr, mapped.len, 30));
    bridge_addr_t rebound = s_addr4 ("198.51.100.7", 1024);
    assert (bridge_far_heard (self, &rebound.addr, rebound.len, 40) && bridge_far_changes (self) == 1);
    assert (bridge_addr_same (&bridge_far_chosen (self, 40)->addr, &rebound.addr));
    char text [64];
    bridge_addr_text (&rebound.addr, text, sizeof text);
    assert (strcmp (text, "198.51.100.7:1024") == 0);
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons (65535) };
    assert (inet_pton (AF_INET6, "2001:db8::1", &sin6.sin6_addr) == 1);
    struct sockaddr_storage ss;
    memset (&ss, 0, sizeof ss);
    memcpy (&ss, &sin6, sizeof sin6);
    bridge_addr_text (&ss, text, sizeof text);
    assert (strcmp (text, "[2001:db8::1]:65535") == 0 && !bridge_addr_same (&ss, &rebound.addr));
    //  Nothing heard for the timeout: none chosen, but data still has a place
    assert (!bridge_far_chosen (self, 1040) && bridge_addr_same (&bridge_far_best (self, 1040)->addr, &rebound.addr));
    bridge_far_destroy (&self);
    assert (self == NULL);
    s_test_dual (verbose);
    //  No candidate: nowhere to send until reached
    self = bridge_far_new (NULL, 0, 1000, 0);
    assert (bridge_far_heartbeats (self, 0, to, BRIDGE_FAR_MAX) == 0 && !bridge_far_shown (self, 0));
    bridge_far_destroy (&self);
    if (verbose)
        printf ("bridge_far: ok\n");
}
