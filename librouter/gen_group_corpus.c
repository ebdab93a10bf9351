/*  gen_group_corpus: writes the seed corpus of fuzz_group_msg
    (fuzz/corpus/fuzz_group_msg/): valid reports of several shapes, each one
    byte short and one long, and a mixed one with each field's last byte
    flipped (the fields come from schemas/route_wire.def, so a new field gets
    its seed). `make fuzz-corpus-group` runs it. */
#include "group_msg.h"

#include <stdio.h>
#include <string.h>

#include "gen_corpus.h"

static const char *s_prog = "gen_group_corpus";
static const char *s_dir;

static void
s_seed (const char *name, const group_msg_t *msg)
{
    static uint8_t wire [ROUTE_WIRE_MAX_SIZE + 1];
    gen_corpus_seed (s_prog, s_dir, name, wire, group_msg_encode (msg, wire, sizeof wire));
}

static void
s_add (group_msg_t *msg, const char *text)
{
    char err [200];
    group_entry_t *g = &msg->groups [msg->count];
    if (group_addr_parse (text, g->addr, &g->kind, err, sizeof err) == GROUP_ADDR_OK)
        msg->count++;
    else
        fprintf (stderr, "gen_group_corpus: %s\n", err);
}

int
main (int argc, char **argv)
{
    if (argc != 2) {
        fprintf (stderr, "usage: gen_group_corpus DIR (the fuzz/corpus folder)\n");
        return 2;
    }
    static char dir [1024];
    snprintf (dir, sizeof dir, "%s/fuzz_group_msg", argv [1]);
    s_dir = dir;
    static group_msg_t msg;
    msg = (group_msg_t) { .origin = 0xb4c804b23a21c6aaULL, .seqno = 1765000000000000ULL };
    s_seed ("empty", &msg);
    msg.flags = ROUTE_WIRE_GROUPS_REQUEST;
    s_seed ("empty-request", &msg);
    msg.flags = 0;
    //  Both families and kinds, and the fuzz target's own group (239.1.2.3)
    s_add (&msg, "239.1.2.3");
    s_add (&msg, "10.99.0.1");
    s_add (&msg, "ff3e::42");
    s_add (&msg, "fd00::53");
    s_add (&msg, "224.0.0.251");
    s_seed ("mixed", &msg);
    static group_msg_t full;
    full = (group_msg_t) { .origin = 0x1111111111111111ULL, .seqno = 1 };
    for (int i = 0; i < ROUTE_WIRE_MAX_GROUPS; i++) {
        char text [32];
        snprintf (text, sizeof text, "239.0.%d.%d", i / 8, i % 8 + 1);
        s_add (&full, text);
    }
    s_seed ("full", &full);

    //  The mixed one with each field's last byte flipped
    static uint8_t wire [ROUTE_WIRE_MAX_SIZE];
    size_t size = group_msg_encode (&msg, wire, sizeof wire);
    for (size_t f = 0; f < WIRE_COUNT (route_wire_fields); f++) {
        const wire_decl_t *field = &route_wire_fields [f];
        bool entry = strcmp (field->message, "GROUP") == 0;
        if (!entry && strcmp (field->message, "GROUPS"))
            continue;
        size_t base = entry ? ROUTE_WIRE_GROUPS_ENTRIES : 0;
        gen_corpus_flip (s_prog, s_dir, wire, size, base, field);
    }
    return 0;
}
