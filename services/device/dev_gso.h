/*  dev_gso: the TSO split a TUN user must do. With IFF_VNET_HDR and TSO enabled,
    one read() from the TUN returns a virtio_net_hdr plus a TCP "super-packet" of
    up to 64 KB; the kernel skips its own segmentation, and we cut it into MTU
    sized packets here, so a bulk TCP flow costs one read syscall per ~45 packets
    instead of one per packet. Non-GSO packets with NEEDS_CSUM get their checksum
    completed in place (the kernel left the pseudo-header sum in the field). */
#ifndef DEV_GSO_H_INCLUDED
#define DEV_GSO_H_INCLUDED

#include "dev_pkt.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEV_VNET_HDR_LEN 10         //  sizeof (struct virtio_net_hdr)
#define DEV_GSO_MAX_FRAME (DEV_VNET_HDR_LEN + 40 + 65535)    //  largest IPv6 packet
//  Enough for any split of a 64 KB frame into at most DEV_GSO_MAX_SEGS segments
//  (each repeats at most 60 + 60 bytes of IP and TCP header)
#define DEV_GSO_MAX_SEGS  128
#define DEV_GSO_OUT_SIZE  (65535 + DEV_GSO_MAX_SEGS * 120)

//  Turns one frame read from a VNET_HDR TUN (header + IP packet) into plain IP
//  packets, each with valid IPv4 header and TCP/UDP checksums.
//  - No GSO: pkts[0] points into frame (checksum completed in place), returns 1.
//  - TCPv4/TCPv6 GSO: segments are written back to back into out (out_size
//    bytes) and described in pkts; returns their count.
//  Returns -1 with a static reason in *why for anything malformed, unsupported
//  (UDP GSO, IPv6 extension headers), or too big for out / max_pkts: the caller
//  counts it as a dropped packet.
int dev_gso_split (uint8_t *frame, size_t len, uint8_t *out, size_t out_size,
                   dev_pkt_t *pkts, int max_pkts, const char **why);

void dev_gso_test (bool verbose);
#endif
