/*  dev_igmp: IGMP/MLD reports parsed, general queries built (see dev_igmp.h).
    Record types are those of IGMPv3 (RFC 3376 4.2.12) and MLDv2 (RFC 3810
    5.2.12), read as "any source" membership: a program is a member of a group
    unless it asked for no source at all (INCLUDE with an empty list), which
    is how Linux says "left". */
#include "dev_igmp.h"
#include "dev_bytes.h"
#include "dev_csum.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define S_IGMP_QUERY      0x11
#define S_IGMP_V1_REPORT  0x12
#define S_IGMP_V2_REPORT  0x16
#define S_IGMP_V2_LEAVE   0x17
#define S_IGMP_V3_REPORT  0x22
#define S_MLD_QUERY       130
#define S_MLD_V1_REPORT   131
#define S_MLD_V1_DONE     132
#define S_MLD_V2_REPORT   143

const uint8_t DEV_IGMP_QUERIER_MAC [6] = { 0x02, 0x62, 0x66, 0x72, 0x73, 0x74 };
const uint8_t DEV_IGMP_QUERIER_IP6 [16] = { 0xfe, 0x80, [10] = 0x62, 0x66, 0x72, 0x73, 0x00, 0x74 };

static void
s_add (dev_igmp_msg_t *msg, int family, const uint8_t *group, bool join)
{
    bool multicast = family == AF_INET ? (group [0] & 0xf0) == 0xe0 : group [0] == 0xff;
    if (!multicast || msg->count == DEV_IGMP_MAX_RECORDS) {
        msg->skipped++;
        return;
    }
    dev_igmp_record_t *r = &msg->records [msg->count++];
    memset (r, 0, sizeof *r);
    r->family = family;
    memcpy (r->group, group, family == AF_INET ? 4 : 16);
    r->join = join;
}

//  One IGMPv3/MLDv2 group record: is it a join, a leave, or no change?
//  Returns 1 join, 0 leave, -1 no change (block old sources, unknown type).
static int
s_record_join (uint8_t type, uint16_t sources)
{
    switch (type) {
        case 2: case 4: return 1;                       //  (change to) exclude: any source
        case 1: case 3: return sources ? 1 : 0;         //  (change to) include: none = left
        case 5: return sources ? 1 : -1;                //  allow new sources
        default: return -1;                             //  6 block old sources, unknown
    }
}

//  IGMPv3 and MLDv2 reports share their layout but for the address size:
//  n records from off, each type, aux words, source count, group, sources, aux.
static dev_igmp_kind_t
s_records (const uint8_t *q, size_t n, size_t off, uint16_t count, int family, dev_igmp_msg_t *msg)
{
    size_t alen = family == AF_INET ? 4 : 16;
    for (uint16_t i = 0; i < count; i++) {
        if (n - off < 4 + alen)
            return msg->kind = DEV_IGMP_MALFORMED;
        uint8_t type = q [off];
        size_t aux = q [off + 1];
        uint16_t sources = dev_get16 (q + off + 2);
        size_t rlen = 4 + alen + (size_t) sources * alen + aux * 4;
        if (n - off < rlen)
            return msg->kind = DEV_IGMP_MALFORMED;
        int join = s_record_join (type, sources);
        if (join < 0)
            msg->skipped++;
        else
            s_add (msg, family, q + off + 4, join == 1);
        off += rlen;
    }
    return msg->kind = DEV_IGMP_REPORT;
}

static dev_igmp_kind_t
s_parse4 (const uint8_t *p, size_t len, dev_igmp_msg_t *msg)
{
    if (len < 20 || p [9] != 2)
        return DEV_IGMP_NONE;
    size_t ihl = (size_t) (p [0] & 15) * 4;
    size_t total = dev_get16 (p + 2);
    if (ihl < 20 || total < ihl || total > len)
        return msg->kind = DEV_IGMP_MALFORMED;
    if (dev_get16 (p + 6) & 0x3fff)
        return msg->kind = DEV_IGMP_OTHER;              //  a fragment: not ours to reassemble
    const uint8_t *q = p + ihl;
    size_t n = total - ihl;
    if (n < 8 || !dev_csum_ok (dev_csum_add (0, q, n)))
        return msg->kind = DEV_IGMP_MALFORMED;
    switch (q [0]) {
        case S_IGMP_QUERY:
            return msg->kind = DEV_IGMP_QUERY;
        case S_IGMP_V1_REPORT:
        case S_IGMP_V2_REPORT:
        case S_IGMP_V2_LEAVE:
            s_add (msg, AF_INET, q + 4, q [0] != S_IGMP_V2_LEAVE);
            return msg->kind = DEV_IGMP_REPORT;
        case S_IGMP_V3_REPORT:
            return s_records (q, n, 8, dev_get16 (q + 6), AF_INET, msg);
        default:
            return msg->kind = DEV_IGMP_OTHER;
    }
}

static dev_igmp_kind_t
s_parse6 (const uint8_t *p, size_t len, dev_igmp_msg_t *msg)
{
    if (len < 40)
        return DEV_IGMP_NONE;
    size_t end = 40 + (size_t) dev_get16 (p + 4);
    if (end > len)
        return DEV_IGMP_NONE;                           //  the peer map calls it malformed
    uint8_t nh = p [6];
    size_t off = 40;
    //  Hop-by-hop (0), destination options (60), routing (43); at most 8
    for (int hops = 0; hops < 8 && (nh == 0 || nh == 60 || nh == 43); hops++) {
        if (end - off < 8)
            return DEV_IGMP_NONE;
        size_t hlen = ((size_t) p [off + 1] + 1) * 8;
        if (end - off < hlen)
            return DEV_IGMP_NONE;
        nh = p [off];
        off += hlen;
    }
    if (nh != 58 || end - off < 1)
        return DEV_IGMP_NONE;                           //  not ICMPv6, or a fragment
    const uint8_t *q = p + off;
    size_t n = end - off;
    uint8_t type = q [0];
    if (type != S_MLD_QUERY && type != S_MLD_V1_REPORT && type != S_MLD_V1_DONE && type != S_MLD_V2_REPORT)
        return DEV_IGMP_NONE;                           //  echo, ND, ...: ordinary ICMPv6
    if (n < 8 || (type != S_MLD_V2_REPORT && n < 24)
    ||  !dev_csum_ok (dev_csum_add (dev_csum_pseudo (AF_INET6, p + 8, p + 24, 58, (uint32_t) n), q, n)))
        return msg->kind = DEV_IGMP_MALFORMED;
    switch (type) {
        case S_MLD_QUERY:
            return msg->kind = DEV_IGMP_QUERY;
        case S_MLD_V1_REPORT:
        case S_MLD_V1_DONE:
            s_add (msg, AF_INET6, q + 8, type == S_MLD_V1_REPORT);
            return msg->kind = DEV_IGMP_REPORT;
        default:
            return s_records (q, n, 8, dev_get16 (q + 6), AF_INET6, msg);
    }
}

dev_igmp_kind_t
dev_igmp_parse (const uint8_t *pkt, size_t len, dev_igmp_msg_t *msg)
{
    msg->kind = DEV_IGMP_NONE;
    msg->count = 0;
    msg->skipped = 0;
    if (len < 1)
        return DEV_IGMP_NONE;
    dev_igmp_kind_t kind = pkt [0] >> 4 == 4 ? s_parse4 (pkt, len, msg)
                         : pkt [0] >> 4 == 6 ? s_parse6 (pkt, len, msg) : DEV_IGMP_NONE;
    if (kind != DEV_IGMP_REPORT) {
        msg->count = 0;                                 //  a malformed report yields nothing
        msg->skipped = 0;
    }
    return msg->kind = kind;
}

dev_igmp_kind_t
dev_igmp_parse_eth (const uint8_t *frame, size_t len, dev_igmp_msg_t *msg)
{
    msg->kind = DEV_IGMP_NONE;
    msg->count = 0;
    msg->skipped = 0;
    if (len < 14)
        return DEV_IGMP_NONE;
    size_t off = 12;
    if (dev_get16 (frame + off) == 0x8100) {
        if (len < 18)
            return DEV_IGMP_NONE;
        off += 4;
    }
    uint16_t type = dev_get16 (frame + off);
    if (type != 0x0800 && type != 0x86dd)
        return DEV_IGMP_NONE;
    const uint8_t *ip = frame + off + 2;
    size_t n = len - off - 2;
    if (n < 1 || ip [0] >> 4 != (type == 0x0800 ? 4 : 6))
        return DEV_IGMP_NONE;
    return dev_igmp_parse (ip, n, msg);
}

bool
dev_igmp_maybe (const uint8_t *pkt, size_t len)
{
    if (len >= 20 && pkt [0] >> 4 == 4)
        return pkt [9] == 2;
    return len >= 40 && pkt [0] >> 4 == 6 && (pkt [6] == 0 || pkt [6] == 58 || pkt [6] == 60 || pkt [6] == 43);
}

//  ---------------------------------------------------------------------------
//  Queries

static size_t
s_eth_header (uint8_t *buf, const uint8_t *dst, uint16_t type)
{
    memcpy (buf, dst, 6);
    memcpy (buf + 6, DEV_IGMP_QUERIER_MAC, 6);
    dev_put16 (buf + 12, type);
    return 14;
}

size_t
dev_igmp_query4 (uint8_t *buf, size_t size, bool tap, uint32_t max_resp_ms, uint32_t query_interval_s)
{
    size_t off = tap ? 14 : 0;
    if (size < off + 36)
        return 0;
    if (tap)
        s_eth_header (buf, (const uint8_t *) "\x01\x00\x5e\x00\x00\x01", 0x0800);
    uint8_t *ip = buf + off;
    memset (ip, 0, 36);
    ip [0] = 0x46;                                      //  24 bytes: the Router Alert option
    ip [1] = 0xc0;                                      //  internetwork control, as Linux sends
    dev_put16 (ip + 2, 36);
    ip [8] = 1;                                         //  TTL 1: never routed
    ip [9] = 2;
    memcpy (ip + 16, "\xe0\x00\x00\x01", 4);            //  224.0.0.1 from 0.0.0.0 (RFC 3376 4.1.x)
    memcpy (ip + 20, "\x94\x04\x00\x00", 4);
    dev_csum_store (ip + 10, dev_csum_fold (dev_csum_add (0, ip, 24)));
    uint8_t *q = ip + 24;
    uint32_t mrc = max_resp_ms / 100;
    q [0] = S_IGMP_QUERY;
    q [1] = (uint8_t) (mrc < 1 ? 1 : mrc > 127 ? 127 : mrc);
    q [8] = 2;                                          //  QRV: robustness 2
    q [9] = (uint8_t) (query_interval_s > 127 ? 127 : query_interval_s);
    dev_csum_store (q + 2, dev_csum_fold (dev_csum_add (0, q, 12)));
    return off + 36;
}

size_t
dev_igmp_query6 (uint8_t *buf, size_t size, bool tap, uint32_t max_resp_ms, uint32_t query_interval_s)
{
    size_t off = tap ? 14 : 0;
    if (size < off + 76)
        return 0;
    if (tap)
        s_eth_header (buf, (const uint8_t *) "\x33\x33\x00\x00\x00\x01", 0x86dd);
    uint8_t *ip = buf + off;
    memset (ip, 0, 76);
    ip [0] = 0x60;
    dev_put16 (ip + 4, 36);                             //  hop-by-hop 8 + query 28
    ip [6] = 0;
    ip [7] = 1;                                         //  hop limit 1 (RFC 3810 6.2 checks it)
    memcpy (ip + 8, DEV_IGMP_QUERIER_IP6, 16);          //  link-local, as 6.2 requires
    ip [24] = 0xff;
    ip [25] = 0x02;
    ip [39] = 1;                                        //  ff02::1
    memcpy (ip + 40, "\x3a\x00\x05\x02\x00\x00\x01\x00", 8);       //  Router Alert (MLD), PadN
    uint8_t *q = ip + 48;
    q [0] = S_MLD_QUERY;
    dev_put16 (q + 4, (uint16_t) (max_resp_ms < 1 ? 1 : max_resp_ms > 32767 ? 32767 : max_resp_ms));
    q [24] = 2;                                         //  QRV
    q [25] = (uint8_t) (query_interval_s > 127 ? 127 : query_interval_s);
    dev_csum_store (q + 2, dev_csum_fold (dev_csum_add (dev_csum_pseudo (AF_INET6, ip + 8, ip + 24, 58, 28), q, 28)));
    return off + 76;
}

//  ---------------------------------------------------------------------------
//  Self test

//  IPv4 packet with Router Alert carrying an IGMP message (checksum filled)
static size_t
s_test_ip4 (uint8_t *p, const char *dst, const uint8_t *igmp, size_t n)
{
    memset (p, 0, 24);
    p [0] = 0x46;
    dev_put16 (p + 2, (uint16_t) (24 + n));
    p [8] = 1;
    p [9] = 2;
    inet_pton (AF_INET, "10.100.0.1", p + 12);
    inet_pton (AF_INET, dst, p + 16);
    memcpy (p + 20, "\x94\x04\x00\x00", 4);
    memcpy (p + 24, igmp, n);
    p [26] = p [27] = 0;
    dev_csum_store (p + 26, dev_csum_fold (dev_csum_add (0, p + 24, n)));
    return 24 + n;
}

//  IPv6 packet with a hop-by-hop header carrying an MLD message
static size_t
s_test_ip6 (uint8_t *p, const char *dst, const uint8_t *mld, size_t n)
{
    memset (p, 0, 48);
    p [0] = 0x60;
    dev_put16 (p + 4, (uint16_t) (8 + n));
    p [7] = 1;
    inet_pton (AF_INET6, "fe80::1", p + 8);
    inet_pton (AF_INET6, dst, p + 24);
    memcpy (p + 40, "\x3a\x00\x05\x02\x00\x00\x01\x00", 8);
    memcpy (p + 48, mld, n);
    p [50] = p [51] = 0;
    dev_csum_store (p + 50, dev_csum_fold (dev_csum_add (dev_csum_pseudo (AF_INET6, p + 8, p + 24, 58, (uint32_t) n),
                                                          p + 48, n)));
    return 48 + n;
}

static bool
s_test_has (const dev_igmp_msg_t *msg, const char *group, bool join)
{
    uint8_t g [16] = { 0 };
    int family = strchr (group, ':') ? AF_INET6 : AF_INET;
    assert (inet_pton (family, group, g) == 1);
    for (size_t i = 0; i < msg->count; i++)
        if (msg->records [i].family == family && memcmp (msg->records [i].group, g, 16) == 0
        &&  msg->records [i].join == join)
            return true;
    return false;
}

void
dev_igmp_test (bool verbose)
{
    uint8_t p [1600], m [1500];
    dev_igmp_msg_t msg;

    //  IGMPv2 report and leave, IGMPv1 report
    uint8_t v2 [8] = { S_IGMP_V2_REPORT, 0, 0, 0, 239, 1, 2, 3 };
    size_t len = s_test_ip4 (p, "239.1.2.3", v2, 8);
    assert (dev_igmp_maybe (p, len));
    assert (dev_igmp_parse (p, len, &msg) == DEV_IGMP_REPORT && msg.count == 1);
    assert (s_test_has (&msg, "239.1.2.3", true));
    v2 [0] = S_IGMP_V2_LEAVE;
    len = s_test_ip4 (p, "224.0.0.2", v2, 8);
    assert (dev_igmp_parse (p, len, &msg) == DEV_IGMP_REPORT && s_test_has (&msg, "239.1.2.3", false));
    v2 [0] = S_IGMP_V1_REPORT;
    len = s_test_ip4 (p, "239.1.2.3", v2, 8);
    assert (dev_igmp_parse (p, len, &msg) == DEV_IGMP_REPORT && s_test_has (&msg, "239.1.2.3", true));
    //  A bad checksum, every truncation
    p [27] ^= 1;
    assert (dev_igmp_parse (p, len, &msg) == DEV_IGMP_MALFORMED && msg.count == 0);
    p [27] ^= 1;
    for (size_t cut = 0; cut < len; cut++) {
        dev_igmp_kind_t kind = dev_igmp_parse (p, cut, &msg);
        assert (kind != DEV_IGMP_REPORT);
    }
    //  A report of a unicast "group" yields nothing
    uint8_t bad [8] = { S_IGMP_V2_REPORT, 0, 0, 0, 10, 1, 2, 3 };
    len = s_test_ip4 (p, "239.1.2.3", bad, 8);
    assert (dev_igmp_parse (p, len, &msg) == DEV_IGMP_REPORT && msg.count == 0 && msg.skipped == 1);

    //  IGMPv3: exclude {} = join, include {} = leave, include {S} = join,
    //  block = no change, allow {} = no change
    size_t n = 8;
    memset (m, 0, sizeof m);
    m [0] = S_IGMP_V3_REPORT;
    struct { uint8_t type; const char *group; uint16_t sources; uint8_t aux; } recs [] = {
        { 2, "239.0.0.1", 0, 0 }, { 4, "239.0.0.2", 0, 0 }, { 3, "239.0.0.3", 0, 0 },
        { 1, "239.0.0.4", 2, 0 }, { 6, "239.0.0.5", 1, 0 }, { 5, "239.0.0.6", 0, 1 },
        { 1, "224.0.0.251", 0, 0 }
    };
    for (size_t i = 0; i < sizeof recs / sizeof recs [0]; i++) {
        m [n] = recs [i].type;
        m [n + 1] = recs [i].aux;
        dev_put16 (m + n + 2, recs [i].sources);
        inet_pton (AF_INET, recs [i].group, m + n + 4);
        n += 8 + 4u * recs [i].sources + 4u * recs [i].aux;
    }
    dev_put16 (m + 6, 7);
    len = s_test_ip4 (p, "224.0.0.22", m, n);
    assert (dev_igmp_parse (p, len, &msg) == DEV_IGMP_REPORT);
    assert (msg.count == 5 && msg.skipped == 2);
    assert (s_test_has (&msg, "239.0.0.1", true) && s_test_has (&msg, "239.0.0.2", true));
    assert (s_test_has (&msg, "239.0.0.3", false) && s_test_has (&msg, "239.0.0.4", true));
    assert (s_test_has (&msg, "224.0.0.251", false));
    //  A record count that claims more than the bytes hold
    dev_put16 (m + 6, 8);
    len = s_test_ip4 (p, "224.0.0.22", m, n);
    assert (dev_igmp_parse (p, len, &msg) == DEV_IGMP_MALFORMED && msg.count == 0);
    //  A source count that runs past the end
    dev_put16 (m + 6, 1);
    dev_put16 (m + 10, 400);
    len = s_test_ip4 (p, "224.0.0.22", m, n);
    assert (dev_igmp_parse (p, len, &msg) == DEV_IGMP_MALFORMED);
    //  More records than DEV_IGMP_MAX_RECORDS: the rest are counted, not kept
    memset (m, 0, sizeof m);
    m [0] = S_IGMP_V3_REPORT;
    dev_put16 (m + 6, 100);
    for (int i = 0; i < 100; i++) {
        m [8 + 8 * i] = 2;
        m [12 + 8 * i] = 239;
        m [15 + 8 * i] = (uint8_t) i;
    }
    len = s_test_ip4 (p, "224.0.0.22", m, 8 + 800);
    assert (dev_igmp_parse (p, len, &msg) == DEV_IGMP_REPORT);
    assert (msg.count == DEV_IGMP_MAX_RECORDS && msg.skipped == 100 - DEV_IGMP_MAX_RECORDS);
    //  A fragment is IGMP but not parsed
    len = s_test_ip4 (p, "224.0.0.22", m, 16);
    p [6] = 0x20;
    assert (dev_igmp_parse (p, len, &msg) == DEV_IGMP_OTHER);
    //  Ordinary packets are not IGMP
    p [6] = 0;
    p [9] = 17;
    assert (!dev_igmp_maybe (p, len) && dev_igmp_parse (p, len, &msg) == DEV_IGMP_NONE);

    //  MLDv1 report and done, MLDv2 records
    uint8_t v1 [24] = { S_MLD_V1_REPORT };
    inet_pton (AF_INET6, "ff15::1234", v1 + 8);
    len = s_test_ip6 (p, "ff15::1234", v1, 24);
    assert (dev_igmp_maybe (p, len));
    assert (dev_igmp_parse (p, len, &msg) == DEV_IGMP_REPORT && s_test_has (&msg, "ff15::1234", true));
    v1 [0] = S_MLD_V1_DONE;
    len = s_test_ip6 (p, "ff02::2", v1, 24);
    assert (dev_igmp_parse (p, len, &msg) == DEV_IGMP_REPORT && s_test_has (&msg, "ff15::1234", false));
    p [60] ^= 0x10;                                     //  the checksum no longer verifies
    assert (dev_igmp_parse (p, len, &msg) == DEV_IGMP_MALFORMED);
    for (size_t cut = 0; cut < len; cut++)
        assert (dev_igmp_parse (p, cut, &msg) != DEV_IGMP_REPORT);
    memset (m, 0, sizeof m);
    m [0] = S_MLD_V2_REPORT;
    dev_put16 (m + 6, 2);
    m [8] = 4;                                          //  to exclude {}: join
    inet_pton (AF_INET6, "ff05::1", m + 12);
    m [28] = 3;                                         //  to include {}: leave
    inet_pton (AF_INET6, "ff05::2", m + 32);
    len = s_test_ip6 (p, "ff02::16", m, 48);
    assert (dev_igmp_parse (p, len, &msg) == DEV_IGMP_REPORT && msg.count == 2);
    assert (s_test_has (&msg, "ff05::1", true) && s_test_has (&msg, "ff05::2", false));
    dev_put16 (m + 10, 1);                              //  one source that is not there
    len = s_test_ip6 (p, "ff02::16", m, 48);
    assert (dev_igmp_parse (p, len, &msg) == DEV_IGMP_MALFORMED);
    //  A hop-by-hop header that claims more than the packet holds
    dev_put16 (m + 10, 0);
    len = s_test_ip6 (p, "ff02::16", m, 48);
    p [41] = 9;
    assert (dev_igmp_parse (p, len, &msg) == DEV_IGMP_NONE);
    //  Echo and neighbour discovery are ordinary ICMPv6
    uint8_t echo [8] = { 128 };
    len = s_test_ip6 (p, "ff02::1", echo, 8);
    assert (dev_igmp_parse (p, len, &msg) == DEV_IGMP_NONE);

    //  Our queries parse as queries, on TUN and TAP
    len = dev_igmp_query4 (p, sizeof p, false, 10000, 125);
    assert (len == 36 && dev_igmp_parse (p, len, &msg) == DEV_IGMP_QUERY);
    assert (p [25] == 100 && p [33] == 125);
    len = dev_igmp_query4 (p, sizeof p, true, 500, 1);
    assert (len == 50 && dev_igmp_parse_eth (p, len, &msg) == DEV_IGMP_QUERY && p [39] == 5);
    len = dev_igmp_query6 (p, sizeof p, false, 10000, 125);
    assert (len == 76 && dev_igmp_parse (p, len, &msg) == DEV_IGMP_QUERY);
    len = dev_igmp_query6 (p, sizeof p, true, 10000, 125);
    assert (len == 90 && dev_igmp_parse_eth (p, len, &msg) == DEV_IGMP_QUERY);
    assert (dev_igmp_query6 (p, 89, true, 1, 1) == 0 && dev_igmp_query4 (p, 35, false, 1, 1) == 0);
    //  An Ethernet frame with a VLAN tag, and one that is not IP
    memmove (p + 16, p + 12, len - 12);
    memcpy (p + 12, "\x81\x00\x00\x07", 4);
    assert (dev_igmp_parse_eth (p, len + 4, &msg) == DEV_IGMP_QUERY);
    p [16] = 0x08;
    p [17] = 0x06;
    assert (dev_igmp_parse_eth (p, len + 4, &msg) == DEV_IGMP_NONE);
    if (verbose)
        printf ("  IGMP/MLD reports, leaves, records and queries parsed\n");
}
