/*  nat_cookie_jar: per peer, the last initiation sent and the cookie held (see the header). */
#include "nat_cookie_jar.h"
#include "nat_cookie_secret.h"
#include "schemas/wire.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    bool sent;                  //  an initiation waits for a possible reply
    uint32_t sender_index;
    uint8_t mac1 [NAT_HS_MAC_SIZE];
    int64_t sent_ms;
    bool has_cookie;
    uint8_t cookie [NAT_HS_MAC_SIZE];
    int64_t cookie_ms;
} s_entry_t;

struct _nat_cookie_jar_t {
    s_entry_t *entries;         //  by peer index
    size_t size;
};

nat_cookie_jar_t *
nat_cookie_jar_new (void)
{
    nat_cookie_jar_t *self = calloc (1, sizeof *self);
    assert (self);
    return self;
}

void
nat_cookie_jar_destroy (nat_cookie_jar_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->entries);
        free (*self_p);
        *self_p = NULL;
    }
}

static s_entry_t *
s_entry (nat_cookie_jar_t *self, uint32_t peer, bool grow)
{
    if (peer >= NAT_COOKIE_JAR_PEERS_MAX)
        return NULL;
    if (peer >= self->size) {
        if (!grow)
            return NULL;
        size_t size = self->size ? self->size : 16;
        while (size <= peer)
            size *= 2;
        s_entry_t *entries = realloc (self->entries, size * sizeof *entries);
        assert (entries);
        memset (entries + self->size, 0, (size - self->size) * sizeof *entries);
        self->entries = entries;
        self->size = size;
    }
    return &self->entries [peer];
}

static bool
s_good (const s_entry_t *entry, int64_t now_ms)
{
    return entry->has_cookie && now_ms >= entry->cookie_ms
        && now_ms - entry->cookie_ms < NAT_COOKIE_ROTATE_MS - NAT_COOKIE_LATENCY_MS;
}

bool
nat_cookie_jar_sent (nat_cookie_jar_t *self, uint32_t peer, uint8_t *msg, size_t size, int64_t now_ms)
{
    s_entry_t *entry = size == WIRE_INITIATION_SIZE ? s_entry (self, peer, true) : NULL;
    if (!entry)
        return false;
    const uint8_t *p = msg + WIRE_INITIATION_SENDER_INDEX;
    entry->sender_index = (uint32_t) p [0] | (uint32_t) p [1] << 8 | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 24;
    memcpy (entry->mac1, msg + WIRE_INITIATION_MAC1, NAT_HS_MAC_SIZE);
    entry->sent = true;
    entry->sent_ms = now_ms;
    if (!s_good (entry, now_ms))
        return false;
    nat_hs_mac2 (entry->cookie, msg, WIRE_INITIATION_MAC2, msg + WIRE_INITIATION_MAC2);
    return true;
}

bool
nat_cookie_jar_match (nat_cookie_jar_t *self, uint32_t sender_index, int64_t now_ms,
                      uint32_t *peer, uint8_t mac1 [NAT_HS_MAC_SIZE])
{
    for (size_t i = 0; i < self->size; i++) {
        s_entry_t *entry = &self->entries [i];
        if (entry->sent && entry->sender_index == sender_index
        &&  now_ms >= entry->sent_ms && now_ms - entry->sent_ms < NAT_COOKIE_JAR_REPLY_MS) {
            *peer = (uint32_t) i;
            memcpy (mac1, entry->mac1, NAT_HS_MAC_SIZE);
            return true;
        }
    }
    return false;
}

void
nat_cookie_jar_store (nat_cookie_jar_t *self, uint32_t peer, const uint8_t cookie [NAT_HS_MAC_SIZE], int64_t now_ms)
{
    s_entry_t *entry = s_entry (self, peer, false);
    if (!entry)
        return;
    entry->sent = false;
    entry->has_cookie = true;
    memcpy (entry->cookie, cookie, NAT_HS_MAC_SIZE);
    entry->cookie_ms = now_ms;
}

bool
nat_cookie_jar_has (nat_cookie_jar_t *self, uint32_t peer, int64_t now_ms)
{
    s_entry_t *entry = s_entry (self, peer, false);
    return entry && s_good (entry, now_ms);
}

void
nat_cookie_jar_forget (nat_cookie_jar_t *self, uint32_t peer)
{
    s_entry_t *entry = s_entry (self, peer, false);
    if (entry)
        memset (entry, 0, sizeof *entry);
}

//  ---------------------------------------------------------------------------
//  Self test: no cookie, no mac2; the reply matched to its initiation once;
//  mac2 written (and good for the responder) until the cookie is too old.

static void
s_initiation (uint8_t msg [WIRE_INITIATION_SIZE], uint32_t sender, uint8_t fill)
{
    memset (msg, fill, WIRE_INITIATION_SIZE);
    msg [0] = WIRE_INITIATION;
    msg [1] = msg [2] = msg [3] = 0;
    for (int i = 0; i < 4; i++)
        msg [WIRE_INITIATION_SENDER_INDEX + i] = (uint8_t) (sender >> (8 * i));
    memset (msg + WIRE_INITIATION_MAC2, 0, WIRE_INITIATION_MAC2_SIZE);
}

void
nat_cookie_jar_test (bool verbose)
{
    nat_cookie_jar_t *self = nat_cookie_jar_new ();
    uint8_t msg [WIRE_INITIATION_SIZE], zero [16] = { 0 }, mac1 [16], cookie [16];
    uint32_t peer = 99;
    //  Nothing sent yet: no reply matches
    assert (!nat_cookie_jar_match (self, 1234, 1000, &peer, mac1));
    //  Sent to peer 3 with no cookie: no mac2
    s_initiation (msg, 1234, 0x11);
    assert (!nat_cookie_jar_sent (self, 3, msg, sizeof msg, 1000));
    assert (memcmp (msg + WIRE_INITIATION_MAC2, zero, 16) == 0);
    assert (!nat_cookie_jar_sent (self, 3, msg, sizeof msg - 1, 1000));     //  not an initiation
    //  The reply to it: matched by sender index, with its mac1
    assert (!nat_cookie_jar_match (self, 1235, 1100, &peer, mac1));
    assert (nat_cookie_jar_match (self, 1234, 1100, &peer, mac1));
    assert (peer == 3 && mac1 [0] == 0x11);
    for (int i = 0; i < 16; i++)
        cookie [i] = (uint8_t) (i + 1);
    nat_cookie_jar_store (self, 3, cookie, 1100);
    assert (nat_cookie_jar_has (self, 3, 1100) && !nat_cookie_jar_has (self, 4, 1100));
    //  Once: a second reply to the same initiation is not taken
    assert (!nat_cookie_jar_match (self, 1234, 1200, &peer, mac1));
    //  The next initiation to peer 3 carries mac2 under the cookie
    s_initiation (msg, 5678, 0x22);
    assert (nat_cookie_jar_sent (self, 3, msg, sizeof msg, 2100));
    assert (nat_hs_mac2_ok (cookie, msg, WIRE_INITIATION_MAC2));
    //  ...and one to another peer does not
    s_initiation (msg, 777, 0x33);
    assert (!nat_cookie_jar_sent (self, 40, msg, sizeof msg, 2100));
    assert (memcmp (msg + WIRE_INITIATION_MAC2, zero, 16) == 0);
    //  A reply too late is not taken
    assert (!nat_cookie_jar_match (self, 777, 2100 + NAT_COOKIE_JAR_REPLY_MS, &peer, mac1));
    assert (nat_cookie_jar_match (self, 777, 2100 + NAT_COOKIE_JAR_REPLY_MS - 1, &peer, mac1) && peer == 40);
    //  The cookie is used until 2 minutes less the margin after it came
    int64_t last = 1100 + NAT_COOKIE_ROTATE_MS - NAT_COOKIE_LATENCY_MS - 1;
    s_initiation (msg, 9, 0x44);
    assert (nat_cookie_jar_sent (self, 3, msg, sizeof msg, last));
    s_initiation (msg, 10, 0x44);
    assert (!nat_cookie_jar_sent (self, 3, msg, sizeof msg, last + 1));
    assert (memcmp (msg + WIRE_INITIATION_MAC2, zero, 16) == 0);
    //  Forgotten with its peer; indices out of range are ignored
    nat_cookie_jar_store (self, 3, cookie, last);
    nat_cookie_jar_forget (self, 3);
    assert (!nat_cookie_jar_has (self, 3, last));
    assert (!nat_cookie_jar_sent (self, NAT_COOKIE_JAR_PEERS_MAX, msg, sizeof msg, last));
    nat_cookie_jar_store (self, NAT_COOKIE_JAR_PEERS_MAX + 5, cookie, last);
    nat_cookie_jar_forget (self, 1000000);
    nat_cookie_jar_destroy (&self);
    assert (self == NULL);
    if (verbose)
        printf ("  reply matched once, mac2 under a cookie for 115 s\n");
}
