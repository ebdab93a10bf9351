/*  dev_arp: ARP parse and build (see dev_arp.h). */
#include "dev_arp.h"

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

void
dev_arp_test (bool verbose)
{
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
