/*  dev_csum: Internet checksum helpers (see dev_csum.h). */
#include "dev_csum.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

uint64_t
dev_csum_add (uint64_t sum, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len >= 8) {
        uint64_t w;
        memcpy (&w, p, 8);
        sum += w;
        sum += sum < w;         //  end-around carry
        p += 8;
        len -= 8;
    }
    uint64_t tail = 0;
    //  Zero padded; the bytes keep their 16-bit lanes in either byte order
    memcpy (&tail, p, len);
    sum += tail;
    sum += sum < tail;
    return sum;
}

uint16_t
dev_csum_fold (uint64_t sum)
{
    sum = (sum & 0xffffffff) + (sum >> 32);
    sum = (sum & 0xffffffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t) ~sum;
}

void
dev_csum_store (uint8_t *p, uint16_t csum)
{
    memcpy (p, &csum, 2);
}

uint64_t
dev_csum_pseudo (int family, const uint8_t *src, const uint8_t *dst, uint8_t proto, uint32_t l4_len)
{
    uint8_t buf [40];
    size_t alen = family == AF_INET ? 4 : 16;
    memcpy (buf, src, alen);
    memcpy (buf + alen, dst, alen);
    size_t n = 2 * alen;
    if (family == AF_INET) {
        buf [n++] = 0;
        buf [n++] = proto;
        buf [n++] = (uint8_t) (l4_len >> 8);
        buf [n++] = (uint8_t) l4_len;
    }
    else {
        uint32_t be = htonl (l4_len);
        memcpy (buf + n, &be, 4);
        n += 4;
        buf [n++] = 0;
        buf [n++] = 0;
        buf [n++] = 0;
        buf [n++] = proto;
    }
    return dev_csum_add (0, buf, n);
}

bool
dev_csum_ok (uint64_t sum)
{
    return dev_csum_fold (sum) == 0;
}

void
dev_csum_test (bool verbose)
{
    //  RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2
    const uint8_t rfc [] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
    uint16_t c = dev_csum_fold (dev_csum_add (0, rfc, sizeof rfc));
    uint8_t field [2];
    dev_csum_store (field, c);
    assert (field [0] == (uint8_t) ~0xdd && field [1] == (uint8_t) ~0xf2);

    //  A known IPv4 header (checksum b861)
    uint8_t ip [20] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                        0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 };
    dev_csum_store (ip + 10, dev_csum_fold (dev_csum_add (0, ip, sizeof ip)));
    assert (ip [10] == 0xb8 && ip [11] == 0x61);
    assert (dev_csum_ok (dev_csum_add (0, ip, sizeof ip)));
    ip [15] ^= 1;
    assert (!dev_csum_ok (dev_csum_add (0, ip, sizeof ip)));

    //  Every length and alignment agrees with a byte-by-byte reference, and
    //  chunked sums (even chunks) agree with one pass
    uint8_t buf [301];
    for (size_t i = 0; i < sizeof buf; i++)
        buf [i] = (uint8_t) (i * 37 + 11);
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len + off <= sizeof buf; len++) {
            uint32_t ref = 0;
            for (size_t i = 0; i < len; i++)
                ref += (i & 1) ? buf [off + i] : (uint32_t) buf [off + i] << 8;
            while (ref >> 16)
                ref = (ref & 0xffff) + (ref >> 16);
            uint16_t got = dev_csum_fold (dev_csum_add (0, buf + off, len));
            uint8_t b [2];
            dev_csum_store (b, got);
            assert (((b [0] << 8) | b [1]) == (uint16_t) ~ref);
            size_t half = (len / 2) & ~(size_t) 1;
            uint64_t s = dev_csum_add (0, buf + off, half);
            s = dev_csum_add (s, buf + off + half, len - half);
            assert (dev_csum_fold (s) == got);
        }
    //  Pseudo-headers: IPv4 and IPv6 sums match the byte layouts of RFC 793/8200
    uint8_t src4 [4] = { 10, 0, 0, 1 }, dst4 [4] = { 10, 0, 0, 2 };
    uint8_t ph4 [12] = { 10, 0, 0, 1, 10, 0, 0, 2, 0, 6, 0x05, 0xdc };
    assert (dev_csum_fold (dev_csum_pseudo (AF_INET, src4, dst4, 6, 1500))
            == dev_csum_fold (dev_csum_add (0, ph4, sizeof ph4)));
    uint8_t src6 [16] = { 0xfd }, dst6 [16] = { 0xfd, [15] = 2 };
    uint8_t ph6 [40] = { 0xfd, [16] = 0xfd, [31] = 2, [34] = 0x01, [35] = 0x02, [39] = 17 };
    assert (dev_csum_fold (dev_csum_pseudo (AF_INET6, src6, dst6, 17, 0x0102))
            == dev_csum_fold (dev_csum_add (0, ph6, sizeof ph6)));
}
