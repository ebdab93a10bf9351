/*  dev_igmp: IGMP (v1, v2, v3) and MLD (v1, v2) as the device sees them, for
    the group snooping of issue 18 (docs/groups.md, "The device"). The kernel
    tells the interface which multicast groups its programs joined by sending
    reports out of it (and leaves, or "done", when they go); the device reads
    them like any packet, so this parser learns the node's groups without any
    privilege and without asking the kernel. It also builds the general
    queries the device injects into the interface, so the kernel reports every
    membership again (Linux only reports on join and leave unless a querier
    asks).

    Everything is input from the interface (a buggy or hostile program on the
    host can send any packet out of it): each length is checked before it is
    read, the IGMP and ICMPv6 checksums are verified, a record that does not
    fit is refused with the whole message. Nothing is allocated. */
#ifndef DEV_IGMP_H_INCLUDED
#define DEV_IGMP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  The most group records one message yields; further records are counted in
//  `skipped` (a 1500-byte IGMPv3 report holds 183 records without sources).
#define DEV_IGMP_MAX_RECORDS  64
//  Room for a query: Ethernet 14 + IPv6 40 + hop-by-hop 8 + MLDv2 query 28
#define DEV_IGMP_QUERY_MAX    96

typedef enum {
    DEV_IGMP_NONE = 0,          //  not IGMP nor MLD: an ordinary packet
    DEV_IGMP_REPORT,            //  reports, leaves or done: records filled
    DEV_IGMP_QUERY,             //  a query (another querier, or our own echoed)
    DEV_IGMP_OTHER,             //  IGMP/MLD of another type (DVMRP, PIM v1, ...)
    DEV_IGMP_MALFORMED          //  IGMP/MLD that lies about its lengths or checksum
} dev_igmp_kind_t;

typedef struct {
    int family;                 //  AF_INET or AF_INET6
    uint8_t group [16];         //  IPv4 in the first 4 bytes
    bool join;                  //  true: a member now; false: left
} dev_igmp_record_t;

typedef struct {
    dev_igmp_kind_t kind;
    size_t count;               //  records [0 .. count)
    size_t skipped;             //  records beyond DEV_IGMP_MAX_RECORDS, or not a
                                //  multicast group, or a "block old sources" (no change)
    dev_igmp_record_t records [DEV_IGMP_MAX_RECORDS];
} dev_igmp_msg_t;

//  Parses an IP packet (TUN). Returns msg->kind. IPv4: protocol 2, not a
//  fragment. IPv6: ICMPv6 types 130, 131, 132, 143, after the hop-by-hop
//  header (and any destination options or routing header, not a fragment).
dev_igmp_kind_t dev_igmp_parse (const uint8_t *pkt, size_t len, dev_igmp_msg_t *msg);
//  The same for an Ethernet frame (TAP), with or without one 802.1Q tag.
dev_igmp_kind_t dev_igmp_parse_eth (const uint8_t *frame, size_t len, dev_igmp_msg_t *msg);
//  Cheap pre-check for the hot path: true if the IP packet may be IGMP or MLD
//  (IPv4 protocol 2; IPv6 with a hop-by-hop header or ICMPv6).
bool dev_igmp_maybe (const uint8_t *pkt, size_t len);

//  An IGMPv3 general query (from 0.0.0.0 to 224.0.0.1, TTL 1, Router Alert) or
//  an MLDv2 general query (from a fixed link-local address to ff02::1, hop
//  limit 1, Router Alert in a hop-by-hop header), asking for answers within
//  max_resp_ms (IGMP: rounded to 0.1 s, at most 12.7 s; MLD: at most 32.7 s)
//  and announcing query_interval_s. With mac (TAP) the packet is wrapped in
//  an Ethernet frame from DEV_IGMP_QUERIER_MAC. Returns the length written,
//  0 if size is too small.
size_t dev_igmp_query4 (uint8_t *buf, size_t size, bool tap, uint32_t max_resp_ms, uint32_t query_interval_s);
size_t dev_igmp_query6 (uint8_t *buf, size_t size, bool tap, uint32_t max_resp_ms, uint32_t query_interval_s);
//  The source MAC of the queries on a TAP (locally administered, unicast)
extern const uint8_t DEV_IGMP_QUERIER_MAC [6];
//  The link-local source of the MLD queries (fe80::6266:7273:74, "bfrst")
extern const uint8_t DEV_IGMP_QUERIER_IP6 [16];

void dev_igmp_test (bool verbose);
#endif
