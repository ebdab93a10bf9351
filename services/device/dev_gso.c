/*  dev_gso: TSO split of TUN super-packets (see dev_gso.h). */
#include "dev_gso.h"
#include "dev_csum.h"
#include "dev_bytes.h"

#include <arpa/inet.h>
#include <assert.h>
#include <endian.h>
#include <linux/virtio_net.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5     //  older headers lack USO
#endif
#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

//  The kernel left the pseudo-header sum in the checksum field and wants the
//  one's complement sum of everything from csum_start to the end stored there.
static int
s_complete_csum (uint8_t *ip, size_t iplen, size_t start, size_t offset, const char **why)
{
    if (start >= iplen || offset > iplen - start || iplen - start - offset < 2) {
        *why = "checksum start or offset outside the packet";
        return -1;
    }
    uint16_t c = dev_csum_fold (dev_csum_add (0, ip + start, iplen - start));
    dev_csum_store (ip + start + offset, c ? c : 0xffff);   //  UDP: 0 means none
    return 0;
}

int
dev_gso_split (uint8_t *frame, size_t len, uint8_t *out, size_t out_size,
               dev_pkt_t *pkts, int max_pkts, const char **why)
{
    const char *ignored;
    if (!why)
        why = &ignored;
    if (max_pkts < 1) {
        *why = "no room for packets";
        return -1;
    }
    if (len < DEV_VNET_HDR_LEN + 20) {
        *why = "shorter than a vnet header and an IP header";
        return -1;
    }
    struct virtio_net_hdr h;
    memcpy (&h, frame, sizeof h);
    size_t gso_size = le16toh (h.gso_size);
    size_t csum_start = le16toh (h.csum_start), csum_offset = le16toh (h.csum_offset);
    uint8_t *ip = frame + DEV_VNET_HDR_LEN;
    size_t iplen = len - DEV_VNET_HDR_LEN;
    int gso = h.gso_type & ~VIRTIO_NET_HDR_GSO_ECN;

    if (gso == VIRTIO_NET_HDR_GSO_NONE) {
        if ((h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
        &&  s_complete_csum (ip, iplen, csum_start, csum_offset, why))
            return -1;
        pkts [0].data = ip;
        pkts [0].len = pkts [0].size = iplen;
        return 1;
    }
    if (gso != VIRTIO_NET_HDR_GSO_TCPV4 && gso != VIRTIO_NET_HDR_GSO_TCPV6) {
        *why = "unsupported GSO type (only TCPv4 and TCPv6 are enabled)";
        return -1;
    }
    if (gso_size == 0) {
        *why = "GSO packet with a segment size of 0";
        return -1;
    }
    size_t l3;
    uint8_t proto;
    if (gso == VIRTIO_NET_HDR_GSO_TCPV4) {
        if (ip [0] >> 4 != 4) {
            *why = "TCPv4 GSO on a packet that is not IPv4";
            return -1;
        }
        l3 = (size_t) (ip [0] & 15) * 4;
        size_t total = dev_get16 (ip + 2);
        if (l3 < 20 || total > iplen || (total && total < l3)) {
            *why = "IPv4 header or total length does not fit the packet";
            return -1;
        }
        if (total)
            iplen = total;
        if (dev_get16 (ip + 6) & 0x3fff) {
            *why = "GSO on an IPv4 fragment";
            return -1;
        }
        proto = ip [9];
    }
    else {
        if (ip [0] >> 4 != 6 || iplen < 40) {
            *why = "TCPv6 GSO on a packet that is not IPv6";
            return -1;
        }
        l3 = 40;
        size_t plen = dev_get16 (ip + 4);
        if (40 + plen > iplen) {
            *why = "IPv6 payload length does not fit the packet";
            return -1;
        }
        if (plen)
            iplen = 40 + plen;
        proto = ip [6];
    }
    if (proto != IPPROTO_TCP) {
        *why = "TCP GSO packet whose next header is not TCP (IPv6 extension headers are not supported)";
        return -1;
    }
    if (iplen < l3 + 20) {
        *why = "TCP header truncated";
        return -1;
    }
    size_t l4 = (size_t) (ip [l3 + 12] >> 4) * 4;
    if (l4 < 20 || l3 + l4 > iplen) {
        *why = "TCP data offset does not fit the packet";
        return -1;
    }
    size_t hlen = l3 + l4, payload = iplen - hlen;
    if (payload == 0) {
        *why = "GSO packet without payload";
        return -1;
    }
    size_t nseg = (payload + gso_size - 1) / gso_size;
    if (nseg > (size_t) max_pkts) {
        *why = "GSO packet has more segments than the batch holds";
        return -1;
    }
    if (nseg * hlen + payload > out_size) {
        *why = "output buffer too small for the segments";
        return -1;
    }
    uint32_t seq0 = dev_get32 (ip + l3 + 4);
    uint16_t id0 = gso == VIRTIO_NET_HDR_GSO_TCPV4 ? dev_get16 (ip + 4) : 0;
    uint8_t flags0 = ip [l3 + 13];
    uint8_t *o = out;
    size_t off = 0;
    for (size_t i = 0; i < nseg; i++) {
        size_t chunk = payload - off < gso_size ? payload - off : gso_size;
        size_t seglen = hlen + chunk;
        memcpy (o, ip, hlen);
        memcpy (o + hlen, ip + hlen + off, chunk);
        uint8_t *tcp = o + l3;
        dev_put32 (tcp + 4, seq0 + (uint32_t) off);
        uint8_t flags = flags0;
        if (i > 0)
            flags &= (uint8_t) ~TCP_CWR;
        if (i + 1 < nseg)
            flags &= (uint8_t) ~(TCP_FIN | TCP_PSH);
        tcp [13] = flags;
        tcp [16] = tcp [17] = 0;
        uint64_t sum;
        if (gso == VIRTIO_NET_HDR_GSO_TCPV4) {
            dev_put16 (o + 2, (uint16_t) seglen);
            dev_put16 (o + 4, (uint16_t) (id0 + i));
            o [10] = o [11] = 0;
            dev_csum_store (o + 10, dev_csum_fold (dev_csum_add (0, o, l3)));
            sum = dev_csum_pseudo (AF_INET, o + 12, o + 16, IPPROTO_TCP, (uint32_t) (l4 + chunk));
        }
        else {
            dev_put16 (o + 4, (uint16_t) (l4 + chunk));
            sum = dev_csum_pseudo (AF_INET6, o + 8, o + 24, IPPROTO_TCP, (uint32_t) (l4 + chunk));
        }
        dev_csum_store (tcp + 16, dev_csum_fold (dev_csum_add (sum, tcp, l4 + chunk)));
        pkts [i].data = o;
        pkts [i].len = pkts [i].size = seglen;
        o += seglen;
        off += chunk;
    }
    return (int) nseg;
}

//  --------------------------------------------------------------------------
//  Self test

//  Builds a vnet frame holding a TCP super-packet the way the kernel hands it
//  over: checksum field seeded with the pseudo-header sum (CHECKSUM_PARTIAL).
static size_t
s_build_super (uint8_t *frame, int family, size_t payload, size_t mss, uint8_t flags, bool ip_options)
{
    memset (frame, 0, DEV_VNET_HDR_LEN);
    uint8_t *ip = frame + DEV_VNET_HDR_LEN;
    size_t l3 = family == AF_INET ? (ip_options ? 24 : 20) : 40, l4 = 32;   //  TCP timestamps
    size_t total = l3 + l4 + payload;
    memset (ip, 0, l3 + l4);
    if (family == AF_INET) {
        ip [0] = (uint8_t) (0x40 | l3 / 4);
        dev_put16 (ip + 2, (uint16_t) total);
        dev_put16 (ip + 4, 0xfff0);           //  wraps during the split
        dev_put16 (ip + 6, 0x4000);           //  DF
        ip [8] = 64;
        ip [9] = IPPROTO_TCP;
        memcpy (ip + 12, "\x0a\x64\x00\x01\x0a\x64\x00\x02", 8);
        if (ip_options)
            memcpy (ip + 20, "\x01\x01\x01\x00", 4);     //  NOPs, EOL
    }
    else {
        ip [0] = 0x60;
        dev_put16 (ip + 4, (uint16_t) (l4 + payload));
        ip [6] = IPPROTO_TCP;
        ip [7] = 64;
        memcpy (ip + 8, "\xfd\x00\x00\xbf\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
        memcpy (ip + 24, "\xfd\x00\x00\xbf\0\0\0\0\0\0\0\0\0\0\0\x02", 16);
    }
    uint8_t *tcp = ip + l3;
    dev_put16 (tcp, 40000);
    dev_put16 (tcp + 2, 5201);
    dev_put32 (tcp + 4, 0xfffff000);          //  wraps during the split
    dev_put32 (tcp + 8, 12345);
    tcp [12] = (uint8_t) (l4 / 4) << 4;
    tcp [13] = flags;
    dev_put16 (tcp + 14, 502);
    memcpy (tcp + 20, "\x01\x01\x08\x0a\x00\x00\x00\x01\x00\x00\x00\x02", 12);
    for (size_t i = 0; i < payload; i++)
        tcp [l4 + i] = (uint8_t) (i * 7 + i / 251);
    //  Seed: folded pseudo-header sum, not complemented
    uint64_t ps = family == AF_INET ? dev_csum_pseudo (AF_INET, ip + 12, ip + 16, IPPROTO_TCP, (uint32_t) (l4 + payload))
                                    : dev_csum_pseudo (AF_INET6, ip + 8, ip + 24, IPPROTO_TCP, (uint32_t) (l4 + payload));
    dev_csum_store (tcp + 16, (uint16_t) ~dev_csum_fold (ps));
    struct virtio_net_hdr h = {
        .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
        .gso_type = family == AF_INET ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6,
        .hdr_len = htole16 ((uint16_t) (l3 + l4)),
        .gso_size = htole16 ((uint16_t) mss),
        .csum_start = htole16 ((uint16_t) l3),
        .csum_offset = htole16 (16)
    };
    memcpy (frame, &h, sizeof h);
    return DEV_VNET_HDR_LEN + total;
}

//  Checks every segment against the super-packet it came from
static void
s_check_split (uint8_t *frame, size_t flen, int family, size_t mss, bool verbose)
{
    static uint8_t out [DEV_GSO_OUT_SIZE];
    dev_pkt_t pkts [DEV_GSO_MAX_SEGS];
    uint8_t *ip = frame + DEV_VNET_HDR_LEN;
    size_t l3 = family == AF_INET ? (size_t) (ip [0] & 15) * 4 : 40;
    size_t l4 = (size_t) (ip [l3 + 12] >> 4) * 4, hlen = l3 + l4;
    size_t payload = flen - DEV_VNET_HDR_LEN - hlen;
    uint8_t *orig = malloc (flen);
    assert (orig);
    memcpy (orig, frame, flen);
    const char *why = NULL;
    int n = dev_gso_split (frame, flen, out, sizeof out, pkts, DEV_GSO_MAX_SEGS, &why);
    if (verbose)
        printf ("  split %s payload %zu mss %zu -> %d segments%s%s\n", family == AF_INET ? "IPv4" : "IPv6",
                payload, mss, n, why ? ": " : "", why ? why : "");
    assert (n == (int) ((payload + mss - 1) / mss));
    size_t off = 0;
    uint8_t *otcp = orig + DEV_VNET_HDR_LEN + l3;
    for (int i = 0; i < n; i++) {
        uint8_t *s = pkts [i].data, *tcp = s + l3;
        size_t chunk = pkts [i].len - hlen;
        assert (chunk == (i + 1 < n ? mss : payload - off));
        assert (memcmp (s + hlen, orig + DEV_VNET_HDR_LEN + hlen + off, chunk) == 0);
        assert (dev_get32 (tcp + 4) == (uint32_t) (dev_get32 (otcp + 4) + off));              //  sequence
        assert (memcmp (tcp + 8, otcp + 8, 5) == 0);                            //  ack, offset
        assert (memcmp (tcp + 20, otcp + 20, l4 - 20) == 0);                    //  options
        uint8_t want = otcp [13];
        if (i > 0) want &= (uint8_t) ~TCP_CWR;
        if (i + 1 < n) want &= (uint8_t) ~(TCP_FIN | TCP_PSH);
        assert (tcp [13] == want);
        uint64_t sum;
        if (family == AF_INET) {
            assert (dev_get16 (s + 2) == pkts [i].len);
            assert (dev_get16 (s + 4) == (uint16_t) (0xfff0 + i));
            assert (dev_csum_ok (dev_csum_add (0, s, l3)));
            sum = dev_csum_pseudo (AF_INET, s + 12, s + 16, IPPROTO_TCP, (uint32_t) (pkts [i].len - l3));
        }
        else {
            assert (dev_get16 (s + 4) == pkts [i].len - 40);
            sum = dev_csum_pseudo (AF_INET6, s + 8, s + 24, IPPROTO_TCP, (uint32_t) (pkts [i].len - l3));
        }
        assert (dev_csum_ok (dev_csum_add (sum, tcp, pkts [i].len - l3)));
        off += chunk;
    }
    assert (off == payload);
    free (orig);
}

void
dev_gso_test (bool verbose)
{
    static uint8_t frame [DEV_GSO_MAX_FRAME], out [DEV_GSO_OUT_SIZE];
    dev_pkt_t pkts [DEV_GSO_MAX_SEGS];
    const char *why;

    //  64 KB super-packets, IPv4 (with and without options) and IPv6, and a
    //  last segment shorter than the MSS; FIN|PSH|CWR to check flag placement
    size_t flen = s_build_super (frame, AF_INET, 65535 - 52, 1368, 0x18 | TCP_FIN | TCP_CWR, false);
    assert (flen == DEV_VNET_HDR_LEN + 65535);
    s_check_split (frame, flen, AF_INET, 1368, verbose);
    flen = s_build_super (frame, AF_INET, 30000, 1000, 0x18, true);
    s_check_split (frame, flen, AF_INET, 1000, verbose);
    flen = s_build_super (frame, AF_INET6, 65535 - 32, 1348, 0x18 | TCP_FIN, false);
    s_check_split (frame, flen, AF_INET6, 1348, verbose);
    flen = s_build_super (frame, AF_INET6, 500, 1348, 0x18, false);            //  one segment
    s_check_split (frame, flen, AF_INET6, 1348, verbose);

    //  NEEDS_CSUM without GSO: completed in place, no copy
    flen = s_build_super (frame, AF_INET, 999, 1368, 0x18, false);
    frame [1] = VIRTIO_NET_HDR_GSO_NONE;
    assert (dev_gso_split (frame, flen, out, sizeof out, pkts, 1, &why) == 1);
    assert (pkts [0].data == frame + DEV_VNET_HDR_LEN && pkts [0].len == flen - DEV_VNET_HDR_LEN);
    uint8_t *ip = pkts [0].data;
    assert (dev_csum_ok (dev_csum_add (dev_csum_pseudo (AF_INET, ip + 12, ip + 16, IPPROTO_TCP,
                                                        (uint32_t) (pkts [0].len - 20)),
                                       ip + 20, pkts [0].len - 20)));
    //  Plain packet: passed through untouched
    frame [0] = 0;
    uint8_t before [64];
    memcpy (before, frame, sizeof before);
    assert (dev_gso_split (frame, flen, out, sizeof out, pkts, 1, &why) == 1);
    assert (memcmp (before, frame, sizeof before) == 0);

    //  Malformed or unsupported: refused with a reason, never read past len
    struct { size_t len; int field; uint8_t value; const char *what; } bad [] = {
        { 20, -1, 0, "shorter" },
        { 0, 1, VIRTIO_NET_HDR_GSO_UDP, "unsupported GSO type" },
        { 0, 1, VIRTIO_NET_HDR_GSO_UDP_L4, "unsupported GSO type" },
        { 0, 4, 0, "segment size of 0" },
        { 0, DEV_VNET_HDR_LEN, 0x65, "not IPv4" },
        { 0, DEV_VNET_HDR_LEN, 0x44, "IPv4 header" },
        { 0, DEV_VNET_HDR_LEN + 2, 0xff, "total length" },
        { 0, DEV_VNET_HDR_LEN + 7, 0x01, "fragment" },
        { 0, DEV_VNET_HDR_LEN + 9, IPPROTO_UDP, "not TCP" },
        { 0, DEV_VNET_HDR_LEN + 32, 0x40, "data offset" },
        { 0, DEV_VNET_HDR_LEN + 32, 0x10, "data offset" },
        { 0, -2, 0, "without payload" },
        { 0, 0, 0, NULL }
    };
    for (int i = 0; bad [i].what; i++) {
        flen = s_build_super (frame, AF_INET, bad [i].field == -2 ? 0 : 5000, 1000, 0x18, false);
        if (bad [i].len)
            flen = bad [i].len;
        if (bad [i].field == 4)
            frame [4] = frame [5] = 0;
        else
        if (bad [i].field >= 0)
            frame [bad [i].field] = bad [i].value;
        why = NULL;
        assert (dev_gso_split (frame, flen, out, sizeof out, pkts, DEV_GSO_MAX_SEGS, &why) == -1);
        if (verbose)
            printf ("  refused: %s\n", why);
        assert (why && strstr (why, bad [i].what));
    }
    flen = s_build_super (frame, AF_INET6, 5000, 1000, 0x18, false);
    frame [DEV_VNET_HDR_LEN + 6] = 0;       //  hop-by-hop extension header
    assert (dev_gso_split (frame, flen, out, sizeof out, pkts, DEV_GSO_MAX_SEGS, &why) == -1);
    assert (strstr (why, "extension headers"));
    flen = s_build_super (frame, AF_INET6, 5000, 1000, 0x18, false);
    assert (dev_gso_split (frame, flen, out, sizeof out, pkts, 4, &why) == -1);
    assert (strstr (why, "more segments"));
    assert (dev_gso_split (frame, flen, out, 5000, pkts, DEV_GSO_MAX_SEGS, &why) == -1);
    assert (strstr (why, "too small"));
    flen = s_build_super (frame, AF_INET, 500, 1000, 0x18, false);
    frame [1] = 0;
    frame [6] = frame [7] = 0xff;           //  csum_start far beyond the packet
    assert (dev_gso_split (frame, flen, out, sizeof out, pkts, 1, &why) == -1);
    assert (strstr (why, "outside the packet"));
}
