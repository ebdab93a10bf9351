/*  gen_route_corpus: writes the seed corpus of fuzz_route_msg
    (fuzz/corpus/fuzz_route_msg/): valid announcements of several shapes, each
    one byte short and one long, and the largest one with each field's last
    byte flipped (the fields come from schemas/route_wire.def, so a new field
    gets its seed). `make fuzz-corpus-router` runs it. */
#include "route_msg.h"

#include <stdio.h>
#include <string.h>

#include "gen_corpus.h"

static const char *s_prog = "gen_route_corpus";
static const char *s_dir;

//  name, name-short, name-long
static void
s_seed (const char *name, const route_msg_t *msg)
{
    static uint8_t wire [ROUTE_WIRE_MAX_SIZE + 1];
    gen_corpus_seed (s_prog, s_dir, name, wire, route_msg_encode (msg, wire, sizeof wire));
}

int
main (int argc, char **argv)
{
    if (argc != 2) {
        fprintf (stderr, "usage: gen_route_corpus DIR (the fuzz/corpus folder)\n");
        return 2;
    }
    static char dir [1024];
    snprintf (dir, sizeof dir, "%s/fuzz_route_msg", argv [1]);
    s_dir = dir;
    const uint64_t me = 0xb4c804b23a21c6aaULL, node = 0x5e1f5e1f5e1f5e1fULL;
    static route_msg_t msg;
    msg = (route_msg_t) { .origin = me, .seqno = 1765000000000000ULL };
    s_seed ("empty", &msg);

    //  One route of each kind: one hop, through the fuzz target's node (so the
    //  table's "through us" path runs), relayed, retracted, the longest path
    msg.count = 5;
    msg.routes [0] = (route_entry_t) { .dest = 0x1111111111111111ULL, .metric = 130, .hops = 1, .path = { me } };
    msg.routes [1] = (route_entry_t) { .dest = 0x2222222222222222ULL, .metric = 260, .hops = 2, .path = { me, node } };
    msg.routes [2] = (route_entry_t) { .dest = 0x3333333333333333ULL, .metric = 400, .hops = 3,
                                       .flags = ROUTE_WIRE_FLAG_RELAY, .path = { me, 0x44, 0x55 } };
    msg.routes [3] = (route_entry_t) { .dest = 0x6666666666666666ULL, .metric = ROUTE_WIRE_METRIC_RETRACTED,
                                       .hops = 1, .path = { me } };
    msg.routes [4] = (route_entry_t) { .dest = 0x7777777777777777ULL, .metric = ROUTE_WIRE_MAX_METRIC,
                                       .hops = ROUTE_WIRE_MAX_PATH, .flags = ROUTE_WIRE_FLAG_TURN, .path = { me } };
    for (size_t h = 1; h < ROUTE_WIRE_MAX_PATH; h++)
        msg.routes [4].path [h] = 0x100 + h;
    s_seed ("mixed", &msg);
    msg.count = 1;
    msg.routes [0] = msg.routes [1];
    s_seed ("through-node", &msg);

    //  As many one-hop routes as fit
    msg.count = ROUTE_WIRE_MAX_ROUTES;
    for (size_t i = 0; i < msg.count; i++)
        msg.routes [i] = (route_entry_t) { .dest = 0x9000 + i, .metric = 101 + (uint32_t) i, .hops = 1, .path = { me } };
    s_seed ("full", &msg);

    //  The mixed one with each field's last byte flipped
    msg.count = 5;
    msg.routes [0] = (route_entry_t) { .dest = 0x1111111111111111ULL, .metric = 130, .hops = 1, .path = { me } };
    msg.routes [1] = (route_entry_t) { .dest = 0x2222222222222222ULL, .metric = 260, .hops = 2, .path = { me, node } };
    static uint8_t wire [ROUTE_WIRE_MAX_SIZE];
    size_t size = route_msg_encode (&msg, wire, sizeof wire);
    for (size_t f = 0; f < WIRE_COUNT (route_wire_fields); f++) {
        const wire_decl_t *field = &route_wire_fields [f];
        if (strcmp (field->message, "ANNOUNCE") && strcmp (field->message, "ROUTE"))
            continue;           //  the group report's fields: gen_group_corpus
        size_t base = strcmp (field->message, "ROUTE") == 0 ? ROUTE_WIRE_ANNOUNCE_ROUTES : 0;
        gen_corpus_flip (s_prog, s_dir, wire, size, base, field);
    }
    return 0;
}
