/*  fuzz_batch: every service on the packet path validates the batches another
    process sends it on a data pipe (bus_pipe_recv -> bus_batch_iter_init); a
    compromised or buggy neighbour must not be able to crash it, make it read
    past the message, or allocate. What validates must iterate, grow and shrink
    in place and rebuild to the same packets.
    Seeds: SELFTEST_SEEDS=fuzz/corpus/fuzz_batch tests/bus_selftest bus_batch */
#include "bus_batch.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  The reader works in place on a writable message: fuzz an exact-size copy
    uint8_t *buf = (uint8_t *) malloc (size ? size : 1);
    if (!buf)
        return 0;
    memcpy (buf, data, size);
    char err [160];
    bus_batch_iter_t iter;
    if (bus_batch_iter_init (&iter, buf, size, err, sizeof err) == 0) {
        assert (iter.count >= 1 && iter.count <= BUS_BATCH_MAX);
        size_t bytes = bus_batch_iter_bytes (&iter);
        bus_batch_t *copy = bus_batch_new (size);     //  same strides: same size
        bus_packet_t pkt;
        size_t seen = 0, total = 0;
        while (bus_batch_iter_next (&iter, &pkt)) {
            assert (pkt.data >= buf && pkt.data + pkt.len <= buf + size);
            total += pkt.len;
            //  Grow then shrink (or the reverse) must keep the bytes in place
            if (pkt.flags & BUS_BATCH_GROWN) {
                assert (bus_packet_shrink (&pkt) == 0);
                assert (bus_packet_grow (&pkt) == 0);
            }
            else {
                assert (bus_packet_grow (&pkt) == 0);
                assert (bus_packet_shrink (&pkt) == 0);
            }
            //  The rebuild holds the plain form of every packet
            bool grown = pkt.flags & BUS_BATCH_GROWN;
            if (grown)
                assert (bus_packet_shrink (&pkt) == 0);
            assert (bus_batch_add (copy, pkt.tag, pkt.data, pkt.len) == 0);
            if (grown)
                assert (bus_packet_grow (&pkt) == 0);
            seen++;
        }
        assert (seen == iter.count && total == bytes);
        //  Still valid after the in-place edits, and the rebuilt batch reads back
        assert (bus_batch_iter_init (&iter, buf, size, err, sizeof err) == 0);
        bus_batch_iter_t again;
        assert (bus_batch_iter_init (&again, (uint8_t *) bus_batch_data (copy),
                                     bus_batch_size (copy), err, sizeof err) == 0);
        bus_packet_t a, b;
        while (bus_batch_iter_next (&iter, &a)) {
            assert (bus_batch_iter_next (&again, &b));
            if (a.flags & BUS_BATCH_GROWN)
                assert (bus_packet_shrink (&a) == 0);
            assert (a.tag == b.tag && a.len == b.len && memcmp (a.data, b.data, a.len) == 0);
        }
        bus_batch_destroy (&copy);
    }
    free (buf);
    return 0;
}
