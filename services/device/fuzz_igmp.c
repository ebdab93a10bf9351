/*  fuzz_igmp: the IGMP/MLD parser reads what any program on the host sends out
    of the interface. No input may crash it or read out of bounds, and the
    joined-group set it feeds must stay within its capacity. Byte 0: bit 0
    chooses an IP packet (TUN) or an Ethernet frame (TAP); bits 4-7 advance the
    clock by 100 ms each, so groups expire across inputs. Frames also go to
    the anycast answerer (an ARP request or neighbour solicitation for an
    address, answered with a peer's MAC), which reads the same input. */
#include "dev_arp.h"
#include "dev_igmp.h"
#include "dev_groups.h"
#include "dev_gtable.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static dev_groups_t *set;
    static dev_gtable_t *table;
    static uint64_t now;
    if (!set) {
        set = dev_groups_new (8, 1000);
        table = dev_gtable_new (8);
        dev_gentry_t e, old;
        dev_gtable_parse ("239.1.2.3", false, &e);
        dev_gtable_set (table, &e, &old);
        dev_gtable_parse ("10.100.0.200", true, &e);
        e.nearest = 3;
        e.members = 1;
        dev_gtable_set (table, &e, &old);
    }
    uint8_t mode = data [0];
    const uint8_t *pkt = data + 1;
    size_t len = size - 1;
    now += (mode >> 4) * 100u;
    dev_igmp_msg_t msg;
    dev_igmp_kind_t kind = mode & 1 ? dev_igmp_parse_eth (pkt, len, &msg) : dev_igmp_parse (pkt, len, &msg);
    assert (kind == msg.kind && msg.count <= DEV_IGMP_MAX_RECORDS);
    assert (kind == DEV_IGMP_REPORT || msg.count == 0);
    dev_igmp_maybe (pkt, len);
    dev_groups_apply (set, &msg, now);
    dev_groups_expire (set, now);
    assert (dev_groups_count (set) <= 8);
    if (mode & 1) {
        int family;
        uint8_t target [16], out [DEV_ARP_ANSWER_MAX];
        const uint8_t mac [6] = { 2, 0, 0, 0, 0, 7 };
        if (dev_arp_target (pkt, len, &family, target) == 0)
            assert (dev_arp_answer (pkt, len, mac, out, sizeof out) > 0);
        else
            assert (dev_arp_answer (pkt, len, mac, out, sizeof out) == 0);
    }
    for (size_t i = 0; i < msg.count; i++) {
        uint32_t peer;
        dev_gtable_route (table, msg.records [i].family, msg.records [i].group, &peer);
    }
    return 0;
}
