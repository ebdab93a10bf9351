/*  fuzz_classify: the device classifies every packet the TUN/TAP hands it and
    every frame a peer sends (after decryption, but a peer may be hostile). No
    input may crash it, read out of bounds or grow its tables without bound.
    Byte 0 chooses the path (TUN route, TAP route, TAP learn from a peer) and
    a clock step, so one corpus exercises learning, aging and lookups. */
#include "dev_arp.h"
#include "dev_gso.h"
#include "dev_peermap.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static dev_peermap_t *map;
    static uint64_t now;
    if (!map) {
        //  Small table so inputs reach "full" and aging; kept across inputs
        map = dev_peermap_new (8, 1000);
        char err [100];
        dev_addr_t a;
        dev_addr_parse ("10.100.0.1/16", &a, err, sizeof err);
        const uint8_t me [6] = { 2, 0, 0, 0, 0, 1 };
        dev_peermap_set_local (map, &a, me);
        const char *prefixes [] = { "10.100.0.2/32", "10.100.7.0/24", "fd00::2/128", "0.0.0.0/0", NULL };
        for (int i = 0; prefixes [i]; i++) {
            dev_addr_parse (prefixes [i], &a, err, sizeof err);
            dev_peermap_add_prefix (map, &a, (uint32_t) i + 2);
        }
        dev_peermap_add_mac (map, (const uint8_t *) "\x02\x00\x00\x00\x00\x02", 2);
    }
    uint8_t mode = data [0];
    const uint8_t *pkt = data + 1;
    size_t len = size - 1;
    now += (mode >> 4) * 100u;
    uint32_t peer;
    switch (mode & 3) {
        case 0: dev_peermap_route_ip (map, pkt, len, &peer); break;
        case 1: dev_peermap_route_eth (map, pkt, len, now, &peer); break;
        case 2: dev_peermap_learn (map, pkt, len, (mode >> 2) & 3, now); break;
        default: {
            //  The TSO split sees what the kernel wrote into the TUN; checked
            //  here too, on a private copy (it completes checksums in place)
            static uint8_t frame [DEV_GSO_MAX_FRAME], out [DEV_GSO_OUT_SIZE];
            static dev_pkt_t pkts [DEV_GSO_MAX_SEGS];
            if (len > sizeof frame)
                len = sizeof frame;
            memcpy (frame, pkt, len);
            const char *why;
            dev_gso_split (frame, len, out, sizeof out, pkts, DEV_GSO_MAX_SEGS, &why);
            dev_arp_t arp;
            dev_arp_parse (pkt, len, &arp, &why);
        }
    }
    return 0;
}
