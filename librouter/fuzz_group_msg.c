/*  fuzz_group_msg: every group report a router receives comes from a peer
    that may be hostile, and goes through group_msg_decode first. No byte
    string may crash it or read past its end; what it accepts must re-encode
    to exactly the same bytes, and the group table must take it without
    breaking its promises: the peer is a member of exactly the groups it
    reported, each group listed once, the same report again is stale, one
    under another origin an impostor, and forgetting the peer leaves only
    our own groups. */
#include "group_msg.h"
#include "group_table.h"

#include <assert.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static group_msg_t msg;
    static uint8_t wire [ROUTE_WIRE_MAX_SIZE];
    static group_entry_t all [2 * ROUTE_WIRE_MAX_GROUPS];
    if (group_msg_decode (data, size, &msg) != GROUP_MSG_OK)
        return 0;
    assert (group_msg_check (&msg) == GROUP_MSG_OK);
    size_t n = group_msg_encode (&msg, wire, sizeof wire);
    assert (n == size && memcmp (wire, data, size) == 0);

    group_table_t *table = group_table_new (0);
    //  One group of our own, which the report may name too
    uint8_t ours [GROUP_ADDR_SIZE] = { [10] = 0xff, [11] = 0xff, [12] = 239, [13] = 1, [14] = 2, [15] = 3 };
    group_table_join (table, ours, GROUP_SOURCE_CTL);
    assert (group_table_receive (table, msg.origin ^ 1, &msg, 1000) == -1);       //  impostor
    assert (group_table_receive (table, msg.origin, &msg, 1000) == (msg.count ? 1 : 0));
    assert (group_table_receive (table, msg.origin, &msg, 1001) == -1);           //  stale
    size_t total = group_table_groups (table, all, sizeof all / sizeof all [0]);
    assert (total >= msg.count && total <= (size_t) msg.count + 1);
    for (size_t i = 0; i < total; i++) {
        assert (i == 0 || memcmp (all [i - 1].addr, all [i].addr, GROUP_ADDR_SIZE) < 0);
        uint64_t ids [2];
        size_t members = group_table_members (table, all [i].addr, ids, 2);
        bool reported = false;
        for (size_t k = 0; k < msg.count; k++)
            reported |= memcmp (msg.groups [k].addr, all [i].addr, GROUP_ADDR_SIZE) == 0;
        assert (members == (reported ? 1u : 0u) && (!members || ids [0] == msg.origin));
    }
    assert (group_table_forget (table, msg.origin) == (msg.count > 0));
    assert (group_table_groups (table, all, 2) == 1);
    group_table_destroy (&table);
    return 0;
}
