/*  nat_relay: the node's relay client state (why and how: nat_relay.h). */
#include "nat_relay.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    nat_relay_server_t pub;
    int64_t next_register_us;       //  0: at once
    uint64_t nonce;                 //  of the last REGISTER...
    int64_t sent_us;                //  ...and when it left
} s_server_t;

struct _nat_relay_t {
    s_server_t servers [NAT_RELAY_SERVERS_MAX];
    size_t count;
    uint64_t peer, network, expiry;
    uint8_t mac [RELAY_CRED_MAC_SIZE];
    int current;                    //  -1: none
    uint64_t nonce_seq;
};

nat_relay_t *
nat_relay_new (void)
{
    nat_relay_t *self = (nat_relay_t *) calloc (1, sizeof *self);
    assert (self);
    self->current = -1;
    return self;
}

void
nat_relay_destroy (nat_relay_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

//  "name@host:port" or "host:port" (then the name is the host:port text)
static int
s_parse_server (s_server_t *server, const char *text, char *err, size_t err_size)
{
    memset (server, 0, sizeof *server);
    const char *at = strchr (text, '@');
    const char *where = at ? at + 1 : text;
    size_t name_len = at ? (size_t) (at - text) : strlen (text);
    if (name_len == 0 || name_len >= NAT_RELAY_NAME_MAX) {
        snprintf (err, err_size, "relay '%s': name empty or longer than %d", text, NAT_RELAY_NAME_MAX - 1);
        return -1;
    }
    memcpy (server->pub.name, text, name_len);
    char perr [120];
    if (nat_endpoint_parse (&server->pub.endpoint, where, perr, sizeof perr)) {
        snprintf (err, err_size, "relay '%s': %s", text, perr);
        return -1;
    }
    server->pub.resolved = !server->pub.endpoint.is_name;
    server->pub.rtt_us = -1;
    server->pub.last_answer_us = -1;
    return 0;
}

int
nat_relay_configure (nat_relay_t *self, const char *const *servers, size_t count,
                     const char *peer, const char *network, const char *credential,
                     char *err, size_t err_size)
{
    assert (self);
    if (count == 0) {
        memset (self->servers, 0, sizeof self->servers);
        self->count = 0;
        self->current = -1;
        self->peer = self->network = self->expiry = 0;
        return 0;
    }
    if (count > NAT_RELAY_SERVERS_MAX) {
        snprintf (err, err_size, "%zu relays, at most %d", count, NAT_RELAY_SERVERS_MAX);
        return -1;
    }
    uint64_t p, n, expiry;
    uint8_t mac [RELAY_CRED_MAC_SIZE];
    if (relay_cred_peer_parse (peer, &p) || p == 0) {
        snprintf (err, err_size, "peer id '%s' is not 16 hex digits", peer ? peer : "");
        return -1;
    }
    if (relay_cred_peer_parse (network, &n)) {
        snprintf (err, err_size, "network tag '%s' is not 16 hex digits", network ? network : "");
        return -1;
    }
    if (relay_cred_parse (credential, &expiry, mac) != RELAY_CRED_OK) {
        snprintf (err, err_size, "relay credential is not EXPIRY.MACHEX");
        return -1;
    }
    s_server_t fresh [NAT_RELAY_SERVERS_MAX];
    for (size_t i = 0; i < count; i++) {
        if (s_parse_server (&fresh [i], servers [i], err, err_size))
            return -1;
        //  A relay that stays keeps what we know of it
        for (size_t j = 0; j < self->count; j++) {
            char a [NAT_ENDPOINT_TEXT_MAX], b [NAT_ENDPOINT_TEXT_MAX];
            nat_endpoint_format (&self->servers [j].pub.endpoint, a, sizeof a);
            nat_endpoint_format (&fresh [i].pub.endpoint, b, sizeof b);
            if (strcmp (a, b) == 0 && strcmp (self->servers [j].pub.name, fresh [i].pub.name) == 0) {
                fresh [i] = self->servers [j];
                break;
            }
        }
        //  Register at once with the new credential
        fresh [i].next_register_us = 0;
    }
    bool same_identity = p == self->peer && n == self->network;
    int current = -1;
    if (same_identity && self->current >= 0)
        for (size_t i = 0; i < count; i++)
            if (strcmp (fresh [i].pub.name, self->servers [self->current].pub.name) == 0)
                current = (int) i;
    memcpy (self->servers, fresh, count * sizeof fresh [0]);
    self->count = count;
    self->current = current;
    self->peer = p;
    self->network = n;
    self->expiry = expiry;
    memcpy (self->mac, mac, sizeof mac);
    return 0;
}

size_t nat_relay_count (nat_relay_t *self) { return self->count; }
uint64_t nat_relay_self_id (nat_relay_t *self) { return self->peer; }
uint64_t nat_relay_expiry (nat_relay_t *self) { return self->expiry; }

nat_relay_server_t *
nat_relay_server (nat_relay_t *self, size_t i)
{
    return i < self->count ? &self->servers [i].pub : NULL;
}

void
nat_relay_resolved (nat_relay_t *self, size_t i, const nat_addr_t *addrs, size_t count)
{
    if (i >= self->count)
        return;
    nat_relay_server_t *server = &self->servers [i].pub;
    if (count == 0) {
        server->resolved = false;
        return;
    }
    server->endpoint.addr = addrs [0];
    server->resolved = true;
    self->servers [i].next_register_us = 0;
}

//  The nearest relay that is up; the current one keeps its place unless another
//  is clearly nearer
static void
s_choose (nat_relay_t *self)
{
    int best = -1;
    for (size_t i = 0; i < self->count; i++) {
        nat_relay_server_t *s = &self->servers [i].pub;
        if (s->up && (best < 0 || s->rtt_us < self->servers [best].pub.rtt_us))
            best = (int) i;
    }
    int cur = self->current;
    if (cur >= 0 && (size_t) cur < self->count && self->servers [cur].pub.up && best >= 0
    &&  self->servers [best].pub.rtt_us * 100 >= self->servers [cur].pub.rtt_us * NAT_RELAY_SWITCH_PCT)
        return;
    self->current = best;
}

size_t
nat_relay_tick (nat_relay_t *self, int64_t now_us, uint64_t unix_s,
                uint8_t out [][RELAY_PROTO_REGISTER_SIZE], const nat_addr_t **to, size_t max)
{
    size_t n = 0;
    bool changed = false;
    for (size_t i = 0; i < self->count; i++) {
        s_server_t *s = &self->servers [i];
        if (s->pub.up && now_us - s->pub.last_answer_us > NAT_RELAY_DOWN_MS * 1000) {
            s->pub.up = false;
            changed = true;
        }
        if (!s->pub.resolved || now_us < s->next_register_us || n == max)
            continue;
        s->next_register_us = now_us + NAT_RELAY_REFRESH_MS * 1000;
        if (unix_s > self->expiry)
            continue;               //  expired: discovery brings a fresh one with the next heartbeat
        relay_msg_t msg = {
            .type = RELAY_PROTO_REGISTER, .network = self->network, .peer = self->peer,
            .expiry = self->expiry, .nonce = ++self->nonce_seq,
        };
        memcpy (msg.mac, self->mac, sizeof msg.mac);
        size_t size = relay_proto_encode (&msg, out [n], RELAY_PROTO_REGISTER_SIZE);
        assert (size == RELAY_PROTO_REGISTER_SIZE);
        to [n++] = &s->pub.endpoint.addr;
        s->nonce = msg.nonce;
        s->sent_us = now_us;
        s->pub.registers++;
    }
    if (changed)
        s_choose (self);
    return n;
}

void
nat_relay_register_now (nat_relay_t *self, size_t i)
{
    if (i < self->count)
        self->servers [i].next_register_us = 0;
}

int
nat_relay_find (nat_relay_t *self, const nat_addr_t *from)
{
    for (size_t i = 0; i < self->count; i++)
        if (self->servers [i].pub.resolved && nat_addr_eq (&self->servers [i].pub.endpoint.addr, from))
            return (int) i;
    return -1;
}

nat_relay_event_t
nat_relay_receive (nat_relay_t *self, int server, const uint8_t *data, size_t size,
                   int64_t now_us, uint64_t *peer, nat_addr_t *addr)
{
    if (server < 0 || (size_t) server >= self->count)
        return NAT_RELAY_NOTHING;
    s_server_t *s = &self->servers [server];
    relay_msg_t msg;
    if (relay_proto_parse (data, size, &msg) != RELAY_PROTO_OK)
        return NAT_RELAY_NOTHING;
    switch (msg.type) {
        case RELAY_PROTO_REGISTERED:
            //  Only the answer to the last REGISTER measures the round trip
            if (msg.peer != self->peer || msg.nonce != s->nonce)
                return NAT_RELAY_NOTHING;
            {
                int64_t sample = now_us - s->sent_us;
                if (sample < 1)
                    sample = 1;
                s->pub.rtt_us = s->pub.rtt_us < 0 ? sample : (s->pub.rtt_us * 7 + sample) / 8;
            }
            s->pub.last_answer_us = now_us;
            s->pub.answers++;
            nat_addr_set_sockaddr (&s->pub.observed, (const struct sockaddr *) &msg.addr, msg.addr_len);
            if (!s->pub.up) {
                s->pub.up = true;
                s_choose (self);
            }
            else
                s_choose (self);
            return NAT_RELAY_NOTHING;
        case RELAY_PROTO_ESTABLISHED:
            *peer = msg.peer;
            if (nat_addr_set_sockaddr (addr, (const struct sockaddr *) &msg.addr, msg.addr_len))
                nat_addr_clear (addr);
            return NAT_RELAY_ESTABLISHED;
        case RELAY_PROTO_ERROR:
            s->pub.errors++;
            if (msg.code == RELAY_PROTO_CODE_REREGISTER)
                s->next_register_us = 0;
            if (msg.code == RELAY_PROTO_CODE_UNKNOWN_PEER) {
                *peer = msg.peer;
                return NAT_RELAY_UNKNOWN_PEER;
            }
            return NAT_RELAY_NOTHING;
        default:
            return NAT_RELAY_NOTHING;
    }
}

int
nat_relay_current (nat_relay_t *self)
{
    return self->current;
}

void
nat_relay_frame (nat_relay_t *self, uint64_t peer, uint8_t out [RELAY_PROTO_DATA_HEADER])
{
    relay_msg_t msg = { .type = RELAY_PROTO_DATA, .network = self->network & 0xffffffffu, .peer = peer };
    size_t size = relay_proto_encode (&msg, out, RELAY_PROTO_DATA_HEADER);
    assert (size == RELAY_PROTO_DATA_HEADER);
}

//  ---------------------------------------------------------------------------
//  Self test: configuration, the refresh, round trips and the choice of relay,
//  a relay going down and coming back, answers that must not count, framing.

//  A REGISTERED answer to the last REGISTER sent to server i
static size_t
s_test_answer (nat_relay_t *self, size_t i, uint8_t *buf, uint64_t nonce_delta)
{
    relay_msg_t msg = { .type = RELAY_PROTO_REGISTERED, .peer = self->peer,
                        .nonce = self->servers [i].nonce + nonce_delta };
    struct sockaddr_in *in = (struct sockaddr_in *) &msg.addr;
    in->sin_family = AF_INET;
    in->sin_port = htons (40000);
    in->sin_addr.s_addr = htonl (0xcb007101);       //  203.0.113.1
    msg.addr_len = sizeof *in;
    return relay_proto_encode (&msg, buf, 64);
}

void
nat_relay_test (bool verbose)
{
    nat_relay_t *self = nat_relay_new ();
    char err [200];
    const char *cred = "1800000000.00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const char *two [] = { "near@192.0.2.1:3479", "far@192.0.2.2:3479" };
    assert (nat_relay_configure (self, two, 2, "00112233aabbccdd", "0102030405060708", cred, err, sizeof err) == 0);
    assert (nat_relay_count (self) == 2 && nat_relay_current (self) == -1);
    assert (nat_relay_self_id (self) == 0x00112233aabbccddULL);

    //  Refused: the old configuration stays
    const char *bad [] = { "x@nohost" };
    assert (nat_relay_configure (self, bad, 1, "00112233aabbccdd", "0102030405060708", cred, err, sizeof err) == -1);
    assert (nat_relay_configure (self, two, 2, "0011", "0102030405060708", cred, err, sizeof err) == -1);
    assert (nat_relay_configure (self, two, 2, "00112233aabbccdd", "0102030405060708", "123.abc", err, sizeof err) == -1);
    assert (nat_relay_count (self) == 2);

    uint8_t out [4][RELAY_PROTO_REGISTER_SIZE];
    const nat_addr_t *to [4];
    uint64_t unix_s = 1700000000;
    int64_t now = 1000000;        //  microseconds
    //  Both at once, then nothing until the refresh
    assert (nat_relay_tick (self, now, unix_s, out, to, 4) == 2);
    relay_msg_t msg;
    assert (relay_proto_parse (out [0], RELAY_PROTO_REGISTER_SIZE, &msg) == RELAY_PROTO_OK);
    assert (msg.type == RELAY_PROTO_REGISTER && msg.peer == 0x00112233aabbccddULL
         && msg.network == 0x0102030405060708ULL && msg.expiry == 1800000000);
    assert (nat_relay_tick (self, now + 100000, unix_s, out, to, 4) == 0);

    //  Answers: near after 10 ms, far after 40 ms; near is chosen
    uint8_t buf [64];
    uint64_t peer;
    nat_addr_t addr;
    size_t size = s_test_answer (self, 0, buf, 0);
    assert (nat_relay_receive (self, 0, buf, size, now + 10000, &peer, &addr) == NAT_RELAY_NOTHING);
    assert (nat_relay_current (self) == 0);
    size = s_test_answer (self, 1, buf, 0);
    nat_relay_receive (self, 1, buf, size, now + 40000, &peer, &addr);
    assert (nat_relay_current (self) == 0);
    assert (nat_relay_server (self, 0)->rtt_us == 10000 && nat_relay_server (self, 1)->rtt_us == 40000);
    char text [NAT_ADDR_TEXT_MAX];
    assert (strcmp (nat_addr_format (&nat_relay_server (self, 0)->observed, text, sizeof text), "203.0.113.1:40000") == 0);
    //  A stale nonce does not count
    size = s_test_answer (self, 1, buf, 1);
    nat_relay_receive (self, 1, buf, size, now + 41000, &peer, &addr);
    assert (nat_relay_server (self, 1)->answers == 1);

    //  near stops answering: after NAT_RELAY_DOWN_MS it is down and far takes over
    int64_t t = now + 10000;
    while (t < now + 10000 + (NAT_RELAY_DOWN_MS + NAT_RELAY_REFRESH_MS) * 1000) {
        t += NAT_RELAY_REFRESH_MS * 1000;
        size_t n = nat_relay_tick (self, t, unix_s, out, to, 4);
        assert (n == 2);
        size = s_test_answer (self, 1, buf, 0);
        nat_relay_receive (self, 1, buf, size, t + 40000, &peer, &addr);
    }
    assert (!nat_relay_server (self, 0)->up && nat_relay_current (self) == 1);
    //  near answers again: it is nearer by far, it wins
    t += NAT_RELAY_REFRESH_MS * 1000;
    nat_relay_tick (self, t, unix_s, out, to, 4);
    size = s_test_answer (self, 0, buf, 0);
    nat_relay_receive (self, 0, buf, size, t + 10000, &peer, &addr);
    assert (nat_relay_current (self) == 0);

    //  ESTABLISHED and ERROR
    relay_msg_t est = { .type = RELAY_PROTO_ESTABLISHED, .peer = 0x77 };
    struct sockaddr_in *in = (struct sockaddr_in *) &est.addr;
    in->sin_family = AF_INET;
    in->sin_port = htons (5555);
    in->sin_addr.s_addr = htonl (0xc6336402);       //  198.51.100.2
    est.addr_len = sizeof *in;
    size = relay_proto_encode (&est, buf, sizeof buf);
    assert (nat_relay_receive (self, 0, buf, size, t, &peer, &addr) == NAT_RELAY_ESTABLISHED);
    assert (peer == 0x77 && strcmp (nat_addr_format (&addr, text, sizeof text), "198.51.100.2:5555") == 0);
    relay_msg_t error = { .type = RELAY_PROTO_ERROR, .code = RELAY_PROTO_CODE_REREGISTER };
    size = relay_proto_encode (&error, buf, sizeof buf);
    assert (nat_relay_receive (self, 0, buf, size, t + 20000, &peer, &addr) == NAT_RELAY_NOTHING);
    assert (nat_relay_tick (self, t + 21000, unix_s, out, to, 4) == 1);       //  at once
    //  Garbage and an unknown server index: nothing
    assert (nat_relay_receive (self, 0, buf, 3, t, &peer, &addr) == NAT_RELAY_NOTHING);
    assert (nat_relay_receive (self, 9, buf, size, t, &peer, &addr) == NAT_RELAY_NOTHING);

    //  An expired credential is not presented
    assert (nat_relay_tick (self, t + 10000000, 1900000000, out, to, 4) == 0);

    //  Framing
    uint8_t header [RELAY_PROTO_DATA_HEADER];
    nat_relay_frame (self, 0x1122334455667788ULL, header);
    assert (relay_proto_parse (header, sizeof header, &msg) == RELAY_PROTO_OK);
    assert (msg.type == RELAY_PROTO_DATA && msg.peer == 0x1122334455667788ULL && msg.network == 0x05060708);

    //  A new credential keeps the relays' state; an empty list clears
    assert (nat_relay_configure (self, two, 2, "00112233aabbccdd", "0102030405060708", cred, err, sizeof err) == 0);
    //  (both went down meanwhile: ten seconds without an answer)
    assert (nat_relay_server (self, 0)->answers >= 2 && nat_relay_server (self, 0)->rtt_us > 0);
    assert (nat_relay_current (self) == -1);
    assert (nat_relay_configure (self, NULL, 0, NULL, NULL, NULL, err, sizeof err) == 0);
    assert (nat_relay_count (self) == 0 && nat_relay_current (self) == -1);
    nat_relay_destroy (&self);
    if (verbose)
        printf ("nat_relay: ok\n");
}
