/*  dev_arp: ARP parse and build, and the answers for anycast addresses (ARP
    reply, IPv6 neighbour advertisement) (see dev_arp.h). */
#include "dev_arp.h"
#include "dev_csum.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <string.h>

int
dev_arp_parse (const uint8_t *frame, size_t len, dev_arp_t *arp, const char **why)
{
    const char *ignored;
    if (!why)
        why = &ignored;
    //  One 802.1Q tag is skipped: a VLAN-aware guest still resolves addresses
    size_t off = len >= 18 && frame [12] == 0x81 && frame [13] == 0x00 ? 4 : 0;
    if (len < DEV_ARP_FRAME_LEN + off) {
        *why = "ARP frame shorter than 42 bytes";
        return -1;
    }
    if (frame [12 + off] != 0x08 || frame [13 + off] != 0x06) {
        *why = "not an ARP frame";
        return -1;
    }
    const uint8_t *a = frame + 14 + off;
    //  htype 1 (Ethernet), ptype 0x0800 (IPv4), hlen 6, plen 4
    if (memcmp (a, "\x00\x01\x08\x00\x06\x04", 6) != 0) {
        *why = "ARP for another hardware or protocol than Ethernet/IPv4";
        return -1;
    }
    uint16_t op = (uint16_t) (a [6] << 8 | a [7]);
    if (op != DEV_ARP_REQUEST && op != DEV_ARP_REPLY) {
        *why = "ARP operation is neither request nor reply";
        return -1;
    }
    arp->op = op;
    memcpy (arp->sha, a + 8, 6);
    memcpy (arp->spa, a + 14, 4);
    memcpy (arp->tha, a + 18, 6);
    memcpy (arp->tpa, a + 24, 4);
    return 0;
}

size_t
dev_arp_build (uint8_t *frame, size_t size, const uint8_t eth_dst [6], const dev_arp_t *arp)
{
    if (size < DEV_ARP_FRAME_LEN)
        return 0;
    memcpy (frame, eth_dst, 6);
    memcpy (frame + 6, arp->sha, 6);
    frame [12] = 0x08;
    frame [13] = 0x06;
    uint8_t *a = frame + 14;
    memcpy (a, "\x00\x01\x08\x00\x06\x04", 6);
    a [6] = (uint8_t) (arp->op >> 8);
    a [7] = (uint8_t) arp->op;
    memcpy (a + 8, arp->sha, 6);
    memcpy (a + 14, arp->spa, 4);
    memcpy (a + 18, arp->tha, 6);
    memcpy (a + 24, arp->tpa, 4);
    return DEV_ARP_FRAME_LEN;
}

//  ---------------------------------------------------------------------------
//  Answers for anycast addresses

//  The neighbour solicitation in an untagged frame: its ICMPv6 part, or NULL
static const uint8_t *
s_ns (const uint8_t *frame, size_t len)
{
    if (len < 14 + 40 + 24 || frame [12] != 0x86 || frame [13] != 0xdd)
        return NULL;
    const uint8_t *ip = frame + 14;
    size_t plen = (size_t) (ip [4] << 8 | ip [5]);
    if (ip [0] >> 4 != 6 || ip [6] != 58 || ip [7] != 255 || plen < 24 || 54 + plen > len)
        return NULL;                    //  RFC 4861 7.1.1: hop limit 255, no extension header here
    const uint8_t *icmp = ip + 40;
    static const uint8_t unspecified [16];
    if (icmp [0] != 135 || icmp [1] != 0 || memcmp (ip + 8, unspecified, 16) == 0)
        return NULL;                    //  not a solicitation, or a duplicate address probe
    if (!dev_csum_ok (dev_csum_add (dev_csum_pseudo (AF_INET6, ip + 8, ip + 24, 58, (uint32_t) plen), icmp, plen)))
        return NULL;
    return icmp;
}

int
dev_arp_target (const uint8_t *frame, size_t len, int *family, uint8_t target [16])
{
    dev_arp_t arp;
    if (len >= 14 && frame [12] == 0x08 && frame [13] == 0x06) {
        if (dev_arp_parse (frame, len, &arp, NULL) || arp.op != DEV_ARP_REQUEST)
            return -1;
        *family = AF_INET;
        memset (target, 0, 16);
        memcpy (target, arp.tpa, 4);
        return 0;
    }
    const uint8_t *icmp = s_ns (frame, len);
    if (!icmp)
        return -1;
    *family = AF_INET6;
    memcpy (target, icmp + 8, 16);
    return 0;
}

//  An IPv6 neighbour advertisement from target (at mac) to dst / eth_dst
static size_t
s_na (const uint8_t *target, const uint8_t *dst, const uint8_t eth_dst [6], const uint8_t mac [6],
      uint8_t flags, uint8_t *out, size_t size)
{
    if (size < DEV_ARP_ANSWER_MAX)
        return 0;
    memset (out, 0, DEV_ARP_ANSWER_MAX);
    memcpy (out, eth_dst, 6);
    memcpy (out + 6, mac, 6);
    out [12] = 0x86;
    out [13] = 0xdd;
    uint8_t *ip = out + 14;
    ip [0] = 0x60;
    ip [5] = 32;
    ip [6] = 58;
    ip [7] = 255;
    memcpy (ip + 8, target, 16);
    memcpy (ip + 24, dst, 16);
    uint8_t *icmp = ip + 40;
    icmp [0] = 136;
    icmp [4] = flags;
    memcpy (icmp + 8, target, 16);
    icmp [24] = 2;                      //  target link-layer address option, 8 bytes
    icmp [25] = 1;
    memcpy (icmp + 26, mac, 6);
    dev_csum_store (icmp + 2, dev_csum_fold (dev_csum_add (dev_csum_pseudo (AF_INET6, ip + 8, ip + 24, 58, 32),
                                                           icmp, 32)));
    return DEV_ARP_ANSWER_MAX;
}

size_t
dev_arp_answer (const uint8_t *request, size_t len, const uint8_t mac [6], uint8_t *out, size_t size)
{
    int family;
    uint8_t target [16];
    if (dev_arp_target (request, len, &family, target))
        return 0;
    if (family == AF_INET) {
        dev_arp_t req, reply = { .op = DEV_ARP_REPLY };
        dev_arp_parse (request, len, &req, NULL);
        memcpy (reply.sha, mac, 6);
        memcpy (reply.spa, req.tpa, 4);
        memcpy (reply.tha, req.sha, 6);
        memcpy (reply.tpa, req.spa, 4);
        return dev_arp_build (out, size, req.sha, &reply);
    }
    //  Solicited (0x40) and override (0x20): the host takes our answer
    return s_na (target, request + 14 + 8, request + 6, mac, 0x60, out, size);
}

size_t
dev_arp_announce (int family, const uint8_t *addr, const uint8_t mac [6], const uint8_t host_mac [6],
                  const uint8_t host_ip4 [4], uint8_t *out, size_t size)
{
    if (family == AF_INET) {
        dev_arp_t reply = { .op = DEV_ARP_REPLY };
        memcpy (reply.sha, mac, 6);
        memcpy (reply.spa, addr, 4);
        memcpy (reply.tha, host_mac, 6);
        memcpy (reply.tpa, host_ip4, 4);
        return dev_arp_build (out, size, host_mac, &reply);
    }
    static const uint8_t all_nodes [16] = { 0xff, 0x02, [15] = 1 };
    static const uint8_t all_nodes_mac [6] = { 0x33, 0x33, 0, 0, 0, 1 };
    return s_na (addr, all_nodes, all_nodes_mac, mac, 0x20, out, size);
}

//  A neighbour solicitation for target from src (MAC smac), as Linux sends it
static size_t
s_test_ns (uint8_t *f, const uint8_t smac [6], const char *src, const char *target)
{
    memset (f, 0, 86);
    uint8_t t [16];
    inet_pton (AF_INET6, target, t);
    const uint8_t dmac [6] = { 0x33, 0x33, 0xff, t [13], t [14], t [15] };
    memcpy (f, dmac, 6);
    memcpy (f + 6, smac, 6);
    f [12] = 0x86;
    f [13] = 0xdd;
    uint8_t *ip = f + 14;
    ip [0] = 0x60;
    ip [5] = 32;
    ip [6] = 58;
    ip [7] = 255;
    inet_pton (AF_INET6, src, ip + 8);
    const uint8_t sn [16] = { 0xff, 0x02, [11] = 1, 0xff, t [13], t [14], t [15] };
    memcpy (ip + 24, sn, 16);
    uint8_t *icmp = ip + 40;
    icmp [0] = 135;
    memcpy (icmp + 8, t, 16);
    icmp [24] = 1;
    icmp [25] = 1;
    memcpy (icmp + 26, smac, 6);
    dev_csum_store (icmp + 2, dev_csum_fold (dev_csum_add (dev_csum_pseudo (AF_INET6, ip + 8, ip + 24, 58, 32), icmp, 32)));
    return 86;
}

static void
s_test_answers (bool verbose)
{
    const uint8_t host [6] = { 2, 0, 0, 0, 0, 1 }, nearest [6] = { 2, 0, 0, 0, 0, 7 };
    uint8_t frame [100], out [100], target [16];
    int family = 0;
    const uint8_t bcast [6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    //  ARP: who has 10.100.0.200? It is at nearest's MAC
    dev_arp_t req = { .op = DEV_ARP_REQUEST, .spa = { 10, 100, 0, 1 }, .tpa = { 10, 100, 0, 200 } };
    memcpy (req.sha, host, 6);
    size_t len = dev_arp_build (frame, sizeof frame, bcast, &req);
    assert (dev_arp_target (frame, len, &family, target) == 0 && family == AF_INET && target [3] == 200);
    size_t n = dev_arp_answer (frame, len, nearest, out, sizeof out);
    dev_arp_t reply;
    assert (n == DEV_ARP_FRAME_LEN && dev_arp_parse (out, n, &reply, NULL) == 0);
    assert (reply.op == DEV_ARP_REPLY && memcmp (reply.sha, nearest, 6) == 0 && reply.spa [3] == 200);
    assert (memcmp (out, host, 6) == 0 && memcmp (reply.tha, host, 6) == 0 && reply.tpa [3] == 1);
    //  A reply is no question
    assert (dev_arp_target (out, n, &family, target) == -1 && dev_arp_answer (out, n, nearest, out, sizeof out) == 0);
    //  IPv6: a solicitation, answered by an advertisement that verifies
    len = s_test_ns (frame, host, "fd00::1", "fd00::99");
    assert (dev_arp_target (frame, len, &family, target) == 0 && family == AF_INET6 && target [15] == 0x99);
    n = dev_arp_answer (frame, len, nearest, out, sizeof out);
    assert (n == DEV_ARP_ANSWER_MAX && memcmp (out, host, 6) == 0 && memcmp (out + 6, nearest, 6) == 0);
    assert (out [54] == 136 && out [58] == 0x60 && memcmp (out + 54 + 26, nearest, 6) == 0);
    assert (memcmp (out + 22, target, 16) == 0 && out [14 + 24 + 15] == 1);     //  from fd00::99 to fd00::1
    assert (dev_csum_ok (dev_csum_add (dev_csum_pseudo (AF_INET6, out + 22, out + 38, 58, 32), out + 54, 32)));
    assert (dev_arp_answer (frame, len, nearest, out, DEV_ARP_ANSWER_MAX - 1) == 0);
    //  Refused: a duplicate address probe (from ::), a hop limit other than
    //  255, a bad checksum, every truncation
    len = s_test_ns (frame, host, "::", "fd00::99");
    assert (dev_arp_target (frame, len, &family, target) == -1);
    len = s_test_ns (frame, host, "fd00::1", "fd00::99");
    frame [21] = 64;
    assert (dev_arp_target (frame, len, &family, target) == -1);
    frame [21] = 255;
    frame [60] ^= 1;
    assert (dev_arp_target (frame, len, &family, target) == -1);
    frame [60] ^= 1;
    for (size_t cut = 0; cut < len; cut++)
        assert (dev_arp_target (frame, cut, &family, target) == -1);
    //  Announcements: ARP to the host, NA to all nodes with override only
    const uint8_t any4 [4] = { 10, 100, 0, 200 }, me4 [4] = { 10, 100, 0, 1 };
    n = dev_arp_announce (AF_INET, any4, nearest, host, me4, out, sizeof out);
    assert (n == DEV_ARP_FRAME_LEN && dev_arp_parse (out, n, &reply, NULL) == 0 && reply.op == DEV_ARP_REPLY);
    assert (memcmp (reply.spa, any4, 4) == 0 && memcmp (reply.tpa, me4, 4) == 0 && memcmp (out, host, 6) == 0);
    n = dev_arp_announce (AF_INET6, target, nearest, host, me4, out, sizeof out);
    assert (n == DEV_ARP_ANSWER_MAX && out [0] == 0x33 && out [58] == 0x20 && out [38] == 0xff);
    if (verbose)
        printf ("  anycast answers: ARP reply, neighbour advertisement, announcements\n");
}

void
dev_arp_test (bool verbose)
{
    s_test_answers (verbose);
    dev_arp_t req = { .op = DEV_ARP_REQUEST, .sha = { 2, 0, 0, 0, 0, 1 }, .spa = { 10, 100, 0, 1 },
                      .tha = { 0 }, .tpa = { 10, 100, 0, 2 } };
    uint8_t frame [64];
    const uint8_t bcast [6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    assert (dev_arp_build (frame, 41, bcast, &req) == 0);
    assert (dev_arp_build (frame, sizeof frame, bcast, &req) == DEV_ARP_FRAME_LEN);
    //  Byte layout from RFC 826
    const uint8_t wire [42] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06,
        0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, 2, 0, 0, 0, 0, 1, 10, 100, 0, 1,
        0, 0, 0, 0, 0, 0, 10, 100, 0, 2 };
    assert (memcmp (frame, wire, sizeof wire) == 0);
    dev_arp_t got;
    const char *why = NULL;
    assert (dev_arp_parse (frame, DEV_ARP_FRAME_LEN, &got, &why) == 0);
    assert (memcmp (&got, &req, sizeof got) == 0);
    //  Ethernet padding to 60 bytes is accepted
    assert (dev_arp_parse (frame, 60, &got, &why) == 0);

    assert (dev_arp_parse (frame, 41, &got, &why) == -1 && strstr (why, "shorter"));
    frame [13] = 0x00;
    assert (dev_arp_parse (frame, 42, &got, &why) == -1 && strstr (why, "not an ARP"));
    frame [13] = 0x06;
    frame [19] = 16;                        //  plen 16
    assert (dev_arp_parse (frame, 42, &got, &why) == -1 && strstr (why, "another hardware"));
    frame [19] = 4;
    frame [21] = 3;                         //  RARP request
    assert (dev_arp_parse (frame, 42, &got, &why) == -1 && strstr (why, "neither"));
    if (verbose)
        printf ("  last refusal: %s\n", why);
    //  With an 802.1Q tag
    uint8_t tagged [64];
    dev_arp_build (frame, sizeof frame, bcast, &req);
    memcpy (tagged, frame, 12);
    memcpy (tagged + 12, "\x81\x00\x00\x07", 4);
    memcpy (tagged + 16, frame + 12, 30);
    assert (dev_arp_parse (tagged, 46, &got, &why) == 0 && got.tpa [3] == 2);
    assert (dev_arp_parse (tagged, 45, &got, &why) == -1);
}
