/*  dev_arp: ARP over Ethernet/IPv4 for the TAP device, parsed defensively and
    built without allocation. Bifrost does not answer ARP itself: requests are
    broadcast frames, the peermap floods them to every peer, the kernel that
    owns the address answers with a unicast reply, and MAC learning on both
    sides routes the reply and everything after it (docs/device.md says why a
    local responder is not worth its failure modes). This class is what the
    classifier uses to validate ARP frames and what tests use to speak ARP. */
#ifndef DEV_ARP_H_INCLUDED
#define DEV_ARP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEV_ARP_FRAME_LEN  42       //  14 Ethernet + 28 ARP
#define DEV_ARP_REQUEST    1
#define DEV_ARP_REPLY      2

typedef struct {
    uint16_t op;
    uint8_t sha [6];            //  sender hardware (MAC) and protocol (IPv4) address
    uint8_t spa [4];
    uint8_t tha [6];            //  target
    uint8_t tpa [4];
} dev_arp_t;

//  Parses an Ethernet frame carrying ARP for IPv4 over Ethernet. Returns 0, or -1
//  with a static reason: too short, not ARP, other hardware/protocol, bad op.
int dev_arp_parse (const uint8_t *frame, size_t len, dev_arp_t *arp, const char **why);
//  Writes a 42-byte frame (Ethernet to eth_dst from arp->sha) into frame; returns
//  its length, or 0 if size is too small.
size_t dev_arp_build (uint8_t *frame, size_t size, const uint8_t eth_dst [6], const dev_arp_t *arp);

void dev_arp_test (bool verbose);
#endif
