/*  fuzz_route_msg: every route announcement a router receives comes from a
    neighbour that may be hostile, and goes through route_msg_decode first. No
    byte string may crash it or read past its end; what it accepts must
    re-encode to exactly the same bytes (one encoding per announcement), and
    the route table must take it without breaking its own promises: what it
    then announces passes route_msg_check (asserted inside), and no route it
    keeps runs through itself or past max_hops, and losing the announcer
    leaves no route through it. */
#include "route_msg.h"
#include "route_table.h"

#include <assert.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static route_msg_t msg, out;
    static uint8_t wire [ROUTE_WIRE_MAX_SIZE];
    static route_t routes [ROUTE_WIRE_MAX_ROUTES + 2];
    if (route_msg_decode (data, size, &msg) != ROUTE_MSG_OK)
        return 0;
    assert (route_msg_check (&msg) == ROUTE_MSG_OK);
    size_t n = route_msg_encode (&msg, wire, sizeof wire);
    assert (n == size && memcmp (wire, data, size) == 0);

    //  A node whose id may well be in the announcement, next to the announcer
    const uint64_t self = msg.count && msg.routes [0].hops > 1 ? msg.routes [0].path [1] : 0x5e1f5e1f5e1f5e1fULL;
    const uint8_t key [16] = { 0 };
    //  and another neighbour, which the announcer is not
    uint64_t other = 0x0707070707070707ULL;
    while (other == msg.origin || other == self)
        other += 0x0101010101010101ULL;
    route_table_t *table = route_table_new (self, NULL, key);
    route_table_link (table, msg.origin, 20, ROUTE_LINK_DIRECT, 1000);
    route_table_link (table, other, 30, ROUTE_LINK_RELAY, 1000);
    if (route_table_receive (table, msg.origin, &msg, 1000) >= 0) {
        size_t count = route_table_routes (table, routes, ROUTE_WIRE_MAX_ROUTES + 2);
        for (size_t i = 0; i < count; i++) {
            assert (routes [i].hops >= 1 && routes [i].hops <= 8);
            assert (routes [i].path [routes [i].hops - 1] == routes [i].dest);
            for (size_t h = 0; h < routes [i].hops; h++)
                assert (routes [i].path [h] != self);
        }
        size_t cursor = 0;
        while (route_table_announce (table, other, true, &out, &cursor))
            assert (route_msg_encode (&out, wire, sizeof wire) > 0);
        //  Losing the announcer leaves nothing through it: only the other link
        route_table_link_lost (table, msg.origin, 2000);
        assert (route_table_size (table) == 1 && route_table_best (table, other, NULL));
        route_table_expire (table, 1000 + 300000);
        assert (route_table_size (table) == 0);
    }
    route_table_destroy (&table);
    return 0;
}
