/*  route_flow: 5-tuple extraction, keyed flow hash and rendezvous choice. */
#include "route_flow.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

_Static_assert (ROUTE_FLOW_KEY_SIZE == crypto_shorthash_KEYBYTES, "route_flow: SipHash-2-4 key");

static bool
s_has_ports (uint8_t proto)
{
    return proto == 6 || proto == 17 || proto == 136 || proto == 132;     //  TCP, UDP, UDP-Lite, SCTP
}

int
route_flow_parse (const uint8_t *p, size_t size, route_flow_t *flow)
{
    memset (flow, 0, sizeof *flow);
    if (size < 1)
        return -1;
    size_t header;
    bool fragment = false;
    flow->version = p [0] >> 4;
    if (flow->version == 4) {
        header = (size_t) (p [0] & 0x0f) * 4;
        if (header < 20 || size < header)
            return -1;
        flow->proto = p [9];
        memcpy (flow->src, p + 12, 4);
        memcpy (flow->dst, p + 16, 4);
        fragment = (p [6] & 0x20) || ((p [6] & 0x1f) << 8 | p [7]);    //  MF, or an offset
    }
    else
    if (flow->version == 6) {
        header = 40;
        if (size < header)
            return -1;
        flow->proto = p [6];
        memcpy (flow->src, p + 8, 16);
        memcpy (flow->dst, p + 24, 16);
    }
    else
        return -1;
    if (s_has_ports (flow->proto) && !fragment && size >= header + 4) {
        flow->sport = (uint16_t) (p [header] << 8 | p [header + 1]);
        flow->dport = (uint16_t) (p [header + 2] << 8 | p [header + 3]);
    }
    return 0;
}

uint64_t
route_flow_hash (const route_flow_t *flow, const uint8_t key [ROUTE_FLOW_KEY_SIZE])
{
    uint8_t in [38], out [crypto_shorthash_BYTES];
    memcpy (in, flow->src, 16);
    memcpy (in + 16, flow->dst, 16);
    in [32] = (uint8_t) (flow->sport >> 8);
    in [33] = (uint8_t) flow->sport;
    in [34] = (uint8_t) (flow->dport >> 8);
    in [35] = (uint8_t) flow->dport;
    in [36] = flow->proto;
    in [37] = flow->version;
    crypto_shorthash (out, in, sizeof in, key);
    uint64_t h = 0;
    memcpy (&h, out, sizeof h);
    return h;
}

//  The rendezvous score of (flow, member): SipHash under a fixed key, which
//  mixes every bit of both (the flow hash is keyed already, per node)
static uint64_t
s_score (uint64_t flow_hash, uint64_t member)
{
    static const uint8_t key [crypto_shorthash_KEYBYTES] = { 0 };
    uint64_t in [2] = { flow_hash, member }, out;
    crypto_shorthash ((uint8_t *) &out, (const uint8_t *) in, sizeof in, key);
    return out;
}

size_t
route_flow_pick (uint64_t flow_hash, const uint64_t *members, size_t count)
{
    assert (count > 0);
    size_t best = 0;
    uint64_t best_score = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t score = s_score (flow_hash, members [i]);
        if (i == 0 || score > best_score) {
            best = i;
            best_score = score;
        }
    }
    return best;
}

void
route_flow_test (bool verbose)
{
    assert (sodium_init () >= 0);
    uint8_t key [ROUTE_FLOW_KEY_SIZE] = { 1, 2, 3 };
    //  An IPv4 TCP packet 10.100.0.1:40000 -> 10.100.0.2:22
    uint8_t v4 [40] = { 0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 100, 0, 1, 10, 100, 0, 2,
                        0x9c, 0x40, 0, 22 };
    route_flow_t flow, other;
    assert (route_flow_parse (v4, sizeof v4, &flow) == 0);
    assert (flow.version == 4 && flow.proto == 6 && flow.sport == 40000 && flow.dport == 22);
    assert (flow.src [0] == 10 && flow.dst [3] == 2 && flow.src [4] == 0);
    uint64_t h = route_flow_hash (&flow, key);
    assert (h == route_flow_hash (&flow, key));
    //  Another port is another flow; another key another hash
    v4 [21] ^= 1;
    assert (route_flow_parse (v4, sizeof v4, &other) == 0 && route_flow_hash (&other, key) != h);
    v4 [21] ^= 1;
    key [0] ^= 1;
    assert (route_flow_hash (&flow, key) != h);
    key [0] ^= 1;
    //  A fragment hashes without ports, like the datagram's other fragments
    v4 [6] = 0x20;
    assert (route_flow_parse (v4, sizeof v4, &other) == 0 && other.sport == 0 && other.dport == 0);
    v4 [6] = 0x40;
    //  IPv6 UDP
    uint8_t v6 [48] = { 0x60, 0, 0, 0, 0, 8, 17, 64 };
    v6 [8] = 0xfd; v6 [24] = 0xfd; v6 [39] = 2;
    v6 [40] = 0x14; v6 [41] = 0xe9; v6 [42] = 0x14; v6 [43] = 0xe9;
    assert (route_flow_parse (v6, sizeof v6, &flow) == 0);
    assert (flow.version == 6 && flow.proto == 17 && flow.sport == 5353 && flow.dport == 5353);
    //  Not IP, or cut short
    assert (route_flow_parse (v6, 39, &flow) == -1);
    assert (route_flow_parse (v4, 19, &flow) == -1);
    uint8_t arp [28] = { 0x00, 0x01 };
    assert (route_flow_parse (arp, sizeof arp, &flow) == -1);
    assert (route_flow_parse (arp, 0, &flow) == -1);
    v4 [0] = 0x44;                  //  IHL 4: below the minimum header
    assert (route_flow_parse (v4, sizeof v4, &flow) == -1);

    //  Rendezvous: spread over members, and removing one moves only its flows
    uint64_t members [4] = { 0xa1, 0xb2, 0xc3, 0xd4 };
    size_t per [4] = { 0 }, moved = 0, flows = 4000;
    for (uint64_t f = 0; f < flows; f++) {
        uint64_t fh = (f + 1) * 0x9e3779b97f4a7c15ULL;
        size_t i = route_flow_pick (fh, members, 4);
        per [i]++;
        //  Without member 3 (the last): flows of 0..2 stay where they were
        size_t j = route_flow_pick (fh, members, 3);
        if (i != 3)
            assert (j == i);
        else
            moved++;
    }
    for (size_t i = 0; i < 4; i++)
        assert (per [i] > flows / 4 * 8 / 10 && per [i] < flows / 4 * 12 / 10);
    assert (moved == per [3]);
    assert (route_flow_pick (12345, members, 1) == 0);
    if (verbose)
        printf ("  route_flow: 4000 flows over 4 next hops: %zu %zu %zu %zu\n", per [0], per [1], per [2], per [3]);
}
