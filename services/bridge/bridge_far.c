/*  bridge_far: a flow's far end, learned from authenticated datagrams only
    (why: bridge_far.h). */
#include "bridge_far.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _bridge_far_t {
    bridge_addr_t cand [BRIDGE_FAR_MAX];
    int cand_count;
    bridge_addr_t far;                  //  source of the last valid datagram
    int64_t heard_ms;
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

bridge_far_t *
bridge_far_new (const bridge_addr_t *cand, int count)
{
    assert (count >= 0 && count <= BRIDGE_FAR_MAX && (cand || !count));
    bridge_far_t *self = (bridge_far_t *) calloc (1, sizeof *self);
    assert (self);
    for (int i = 0; i < count; i++) {
        assert (cand [i].len > 0 && cand [i].len <= sizeof (struct sockaddr_storage));
        self->cand [i] = cand [i];
    }
    self->cand_count = count;
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
    self->heard_ms = now_ms;
    if (self->far.len && bridge_addr_same (&self->far.addr, addr))
        return false;
    if (self->far.len)
        self->changes++;
    memset (&self->far, 0, sizeof self->far);
    memcpy (&self->far.addr, addr, len);
    self->far.len = len;
    return true;
}

int
bridge_far_heartbeats (bridge_far_t *self, int64_t now_ms, const bridge_addr_t **out, int max)
{
    if (self->far.len) {
        if (max < 1)
            return 0;
        out [0] = &self->far;
        return 1;
    }
    int n = 0;
    for (int i = 0; i < self->cand_count && n < max; i++)
        out [n++] = &self->cand [i];
    return n;
}

const bridge_addr_t *
bridge_far_chosen (bridge_far_t *self, int64_t now_ms)
{
    return self->far.len ? &self->far : NULL;
}

const bridge_addr_t *
bridge_far_shown (bridge_far_t *self, int64_t now_ms)
{
    const bridge_addr_t *far = bridge_far_chosen (self, now_ms);
    return far ? far : self->cand_count ? &self->cand [0] : NULL;
}

bool
bridge_far_known (bridge_far_t *self, const struct sockaddr_storage *addr)
{
    if (self->far.len && bridge_addr_same (&self->far.addr, addr))
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

void
bridge_far_test (bool verbose)
{
    bridge_addr_t cand [2] = { s_addr4 ("192.0.2.1", 4000), s_addr4 ("192.0.2.2", 4000) };
    bridge_far_t *self = bridge_far_new (cand, 2);
    const bridge_addr_t *to [BRIDGE_FAR_MAX];
    //  Nothing heard: every candidate, no far end for data, the first shown
    assert (bridge_far_heartbeats (self, 0, to, BRIDGE_FAR_MAX) == 2);
    assert (bridge_addr_same (&to [0]->addr, &cand [0].addr) && bridge_addr_same (&to [1]->addr, &cand [1].addr));
    assert (bridge_far_chosen (self, 0) == NULL);
    assert (bridge_addr_same (&bridge_far_shown (self, 0)->addr, &cand [0].addr));
    assert (bridge_far_known (self, &cand [1].addr));
    //  A NAT's mapping answers (another port than the candidate's)
    bridge_addr_t mapped = s_addr4 ("192.0.2.1", 39817);
    assert (!bridge_far_known (self, &mapped.addr));
    assert (bridge_far_heard (self, &mapped.addr, mapped.len, 10));
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
    bridge_far_destroy (&self);
    assert (self == NULL);
    //  No candidate: nowhere to send until reached
    self = bridge_far_new (NULL, 0);
    assert (bridge_far_heartbeats (self, 0, to, BRIDGE_FAR_MAX) == 0 && !bridge_far_shown (self, 0));
    bridge_far_destroy (&self);
    if (verbose)
        printf ("bridge_far: ok\n");
}
