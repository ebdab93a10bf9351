/*  dev_arp: ARP over Ethernet/IPv4 for the TAP device, parsed defensively and
    built without allocation. Bifrost does not answer ARP itself: requests are
    broadcast frames, the peermap floods them to every peer, the kernel that
    owns the address answers with a unicast reply, and MAC learning on both
    sides routes the reply and everything after it (docs/device.md says why a
    local responder is not worth its failure modes). This class is what the
    classifier uses to validate ARP frames and what tests use to speak ARP.
    The one exception is an anycast address (issue 18, docs/groups.md): its
    members all own it, so the device answers for it with the MAC of the
    nearest one (ARP, and IPv6 neighbour discovery), from what the router
    says; the MAC is the peer's derived one, known for every peer. */
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

//  Answers for an anycast address (docs/groups.md, "The device"): on a tap the
//  kernel resolves an address before it sends to it, and the device answers
//  for an anycast address with the MAC of its nearest member, so the frames
//  that follow go to that peer alone.
//  If frame is an untagged ARP request or IPv6 neighbour solicitation (not a
//  duplicate address probe), sets *family (AF_INET or AF_INET6) and target
//  (the address asked for) and returns 0; -1 otherwise.
int dev_arp_target (const uint8_t *frame, size_t len, int *family, uint8_t target [16]);
//  The answer to that request as if from mac: an ARP reply, or a solicited
//  neighbour advertisement with override. Returns its length, 0 if out is
//  too small (DEV_ARP_ANSWER_MAX is enough).
#define DEV_ARP_ANSWER_MAX  86
size_t dev_arp_answer (const uint8_t *request, size_t len, const uint8_t mac [6], uint8_t *out, size_t size);
//  Tells the host that addr is at mac now (the nearest member changed): an
//  ARP reply to host_mac / host_ip4 (IPv4), or an unsolicited neighbour
//  advertisement with override to ff02::1 (IPv6). Linux updates the entry it
//  has. Returns the length, 0 if out is too small.
size_t dev_arp_announce (int family, const uint8_t *addr, const uint8_t mac [6], const uint8_t host_mac [6],
                         const uint8_t host_ip4 [4], uint8_t *out, size_t size);

void dev_arp_test (bool verbose);
#endif
