/*  reg_ratelimit: per-address token buckets (see reg_ratelimit.h). */
#include "reg_ratelimit.h"
#include <assert.h>
#include <arpa/inet.h>
#include <czmq.h>

typedef struct {
    double tokens;
    int64_t last_ms;
} s_bucket_t;

struct _reg_ratelimit_t {
    double rate, burst;
    size_t max_clients;
    zhashx_t *buckets;
    s_bucket_t overflow;
    int64_t last_purge_ms;
};

reg_ratelimit_t *
reg_ratelimit_new (double rate, double burst, size_t max_clients)
{
    reg_ratelimit_t *self = (reg_ratelimit_t *) calloc (1, sizeof *self);
    assert (self);
    self->rate = rate;
    self->burst = burst < 1 ? 1 : burst;
    self->max_clients = max_clients ? max_clients : 65536;
    self->buckets = zhashx_new ();
    zhashx_set_destructor (self->buckets, (zhashx_destructor_fn *) zstr_free);
    self->overflow.tokens = self->burst;
    return self;
}

void
reg_ratelimit_destroy (reg_ratelimit_t **self_p)
{
    if (*self_p) {
        zhashx_destroy (&(*self_p)->buckets);
        free (*self_p);
        *self_p = NULL;
    }
}

static void
s_refill (reg_ratelimit_t *self, s_bucket_t *bucket, int64_t now_ms)
{
    if (now_ms > bucket->last_ms) {
        bucket->tokens += (double) (now_ms - bucket->last_ms) * self->rate / 1000.0;
        if (bucket->tokens > self->burst)
            bucket->tokens = self->burst;
    }
    bucket->last_ms = now_ms;
}

//  Forgets buckets that are full again (their clients went quiet).
static void
s_purge (reg_ratelimit_t *self, int64_t now_ms)
{
    zlistx_t *keys = zhashx_keys (self->buckets);
    for (const char *key = (const char *) zlistx_first (keys); key; key = (const char *) zlistx_next (keys)) {
        s_bucket_t *bucket = (s_bucket_t *) zhashx_lookup (self->buckets, key);
        s_refill (self, bucket, now_ms);
        if (bucket->tokens >= self->burst)
            zhashx_delete (self->buckets, key);
    }
    zlistx_destroy (&keys);
    self->last_purge_ms = now_ms;
}

void
reg_ratelimit_key (const char *address, char *key, size_t size)
{
    struct in6_addr a6;
    snprintf (key, size, "%s", address);
    if (!strchr (address, ':') || inet_pton (AF_INET6, address, &a6) != 1)
        return;
    if (IN6_IS_ADDR_V4MAPPED (&a6)) {
        inet_ntop (AF_INET, a6.s6_addr + 12, key, (socklen_t) size);
        return;
    }
    memset (a6.s6_addr + 8, 0, 8);
    char text [INET6_ADDRSTRLEN];
    inet_ntop (AF_INET6, &a6, text, sizeof text);
    snprintf (key, size, "%s/64", text);
}

bool
reg_ratelimit_allow (reg_ratelimit_t *self, const char *address, int64_t now_ms)
{
    if (self->rate <= 0)
        return true;
    char client [REG_RATELIMIT_KEY];
    reg_ratelimit_key (address, client, sizeof client);
    if (now_ms - self->last_purge_ms > 10000)
        s_purge (self, now_ms);
    s_bucket_t *bucket = (s_bucket_t *) zhashx_lookup (self->buckets, client);
    if (!bucket) {
        if (zhashx_size (self->buckets) >= self->max_clients)
            s_purge (self, now_ms);
        if (zhashx_size (self->buckets) >= self->max_clients)
            bucket = &self->overflow;
        else {
            bucket = (s_bucket_t *) calloc (1, sizeof *bucket);
            assert (bucket);
            bucket->tokens = self->burst;
            bucket->last_ms = now_ms;
            zhashx_insert (self->buckets, client, bucket);
        }
    }
    s_refill (self, bucket, now_ms);
    if (bucket->tokens < 1)
        return false;
    bucket->tokens -= 1;
    return true;
}

size_t reg_ratelimit_clients (reg_ratelimit_t *self) { return zhashx_size (self->buckets); }

void
reg_ratelimit_test (bool verbose)
{
    reg_ratelimit_t *limit = reg_ratelimit_new (10, 5, 3);
    int64_t now = 1000000;
    for (int i = 0; i < 5; i++)
        assert (reg_ratelimit_allow (limit, "192.0.2.1", now));
    assert (!reg_ratelimit_allow (limit, "192.0.2.1", now));
    assert (reg_ratelimit_allow (limit, "192.0.2.2", now));     //  another client is not affected
    assert (!reg_ratelimit_allow (limit, "192.0.2.1", now + 50));
    assert (reg_ratelimit_allow (limit, "192.0.2.1", now + 100));   //  10/s: one token per 100 ms
    assert (!reg_ratelimit_allow (limit, "192.0.2.1", now + 100));
    //  Bounded: with 3 busy clients, the 4th and later share the overflow bucket
    for (int i = 0; i < 5; i++) {
        reg_ratelimit_allow (limit, "192.0.2.2", now + 100);
        reg_ratelimit_allow (limit, "192.0.2.3", now + 100);
    }
    for (int i = 0; i < 5; i++)
        assert (reg_ratelimit_allow (limit, "192.0.2.4", now + 100));
    assert (!reg_ratelimit_allow (limit, "192.0.2.5", now + 100));
    assert (reg_ratelimit_clients (limit) == 3);
    //  Quiet clients are forgotten
    assert (reg_ratelimit_allow (limit, "192.0.2.6", now + 60000));
    assert (reg_ratelimit_clients (limit) == 1);
    reg_ratelimit_destroy (&limit);
    assert (limit == NULL);
    //  Issue 16, finding 5: one IPv6 /64 is one client (a host has 2^64 of
    //  them), an IPv4 address is one client
    limit = reg_ratelimit_new (10, 2, 100);
    assert (reg_ratelimit_allow (limit, "2001:db8:1:2::1", now));
    assert (reg_ratelimit_allow (limit, "2001:db8:1:2:ffff::9", now));
    assert (!reg_ratelimit_allow (limit, "2001:db8:1:2:abcd:1:2:3", now));
    assert (reg_ratelimit_allow (limit, "2001:db8:1:3::1", now));       //  the next /64
    assert (reg_ratelimit_allow (limit, "192.0.2.7", now));
    assert (reg_ratelimit_allow (limit, "192.0.2.7", now));
    assert (!reg_ratelimit_allow (limit, "192.0.2.7", now));
    assert (reg_ratelimit_allow (limit, "192.0.2.8", now));
    reg_ratelimit_destroy (&limit);
    limit = reg_ratelimit_new (0, 0, 0);
    for (int i = 0; i < 1000; i++)
        assert (reg_ratelimit_allow (limit, "x", now));
    reg_ratelimit_destroy (&limit);
    char key [REG_RATELIMIT_KEY];
    reg_ratelimit_key ("2001:db8:1:2:3:4:5:6", key, sizeof key);
    assert (streq (key, "2001:db8:1:2::/64"));
    reg_ratelimit_key ("::ffff:192.0.2.9", key, sizeof key);
    assert (streq (key, "192.0.2.9"));
    reg_ratelimit_key ("192.0.2.9", key, sizeof key);
    assert (streq (key, "192.0.2.9"));
    reg_ratelimit_key ("not:an address", key, sizeof key);
    assert (streq (key, "not:an address"));
}
