/*  seqstat: the accounting of a sequenced stream (why: seqstat.h). */
#include "seqstat.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

seqstat_t *
seqstat_new (size_t expected)
{
    seqstat_t *self = (seqstat_t *) calloc (1, sizeof *self);
    assert (self);
    self->seen_bits = expected;
    self->seen = (uint8_t *) calloc ((expected + 7) / 8 + 1, 1);
    assert (self->seen);
    return self;
}

void
seqstat_destroy (seqstat_t **self_p)
{
    if (*self_p) {
        free ((*self_p)->seen);
        free (*self_p);
        *self_p = NULL;
    }
}

void
seqstat_start (seqstat_t *self, int64_t start_us, int64_t report_us)
{
    uint8_t *seen = self->seen;
    size_t bits = self->seen_bits;
    memset (seen, 0, (bits + 7) / 8 + 1);
    memset (self, 0, sizeof *self);
    self->seen = seen;
    self->seen_bits = bits;
    self->start_us = start_us;
    self->report_us = report_us;
}

void
seqstat_sent (seqstat_t *self, int64_t now_us)
{
    self->sent++;
    self->last_sent_us = now_us;
}

static void
s_gap (seqstat_t *self, int64_t from_us, int64_t to_us, uint64_t missing, uint64_t first)
{
    int64_t gap = to_us - from_us;
    if (gap > self->max_gap_us) {
        self->max_gap_us = gap;
        self->max_gap_at_us = from_us - self->start_us;
    }
    seqstat_gap_t g = { (from_us - self->start_us) / 1000, gap / 1000, missing, first };
    if (gap >= self->report_us && self->gaps_count < SEQSTAT_GAPS_MAX)
        self->gaps [self->gaps_count++] = g;
    if (missing && self->losses_count < SEQSTAT_GAPS_MAX)
        self->losses [self->losses_count++] = g;
}

void
seqstat_receive (seqstat_t *self, uint64_t seq, int64_t now_us)
{
    if (seq >= self->seen_bits) {
        self->out_of_range++;
        return;
    }
    if (self->seen [seq / 8] & (1u << (seq % 8))) {
        self->duplicates++;
        return;
    }
    self->seen [seq / 8] |= (uint8_t) (1u << (seq % 8));
    uint64_t missing = 0, first = 0;
    if (self->received && seq > self->max_seq) {
        missing = seq - self->max_seq - 1;
        first = self->max_seq + 1;
    }
    else
    if (!self->received)
        missing = seq;
    if (self->received && seq < self->max_seq)
        self->reordered++;
    else
        self->max_seq = seq;
    self->received++;
    s_gap (self, self->last_rx_us ? self->last_rx_us : self->start_us, now_us, missing, first);
    self->last_rx_us = now_us;
}

uint64_t
seqstat_never (const seqstat_t *self, const seqstat_gap_t *gap)
{
    uint64_t never = 0;
    for (uint64_t q = gap->first; q < gap->first + gap->missing; q++)
        if (q >= self->seen_bits || !(self->seen [q / 8] & (1u << (q % 8))))
            never++;
    return never;
}

void
seqstat_finish (seqstat_t *self)
{
    uint64_t next = self->received ? self->max_seq + 1 : 0;
    if (self->sent > next && self->last_sent_us)
        s_gap (self, self->last_rx_us ? self->last_rx_us : self->start_us, self->last_sent_us,
               self->sent - next, next);
}

uint64_t
seqstat_lost (const seqstat_t *self)
{
    return self->sent > self->received ? self->sent - self->received : 0;
}

void
seqstat_json_members (const seqstat_t *self, FILE *out)
{
    fprintf (out, "\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64
             ",\"duplicates\":%" PRIu64 ",\"reordered\":%" PRIu64 ",\"max_gap_ms\":%.1f"
             ",\"max_gap_at_ms\":%" PRId64 ",\"gaps\":[",
             self->sent, self->received, seqstat_lost (self), self->duplicates, self->reordered,
             self->max_gap_us / 1000.0, self->max_gap_at_us / 1000);
    for (size_t g = 0; g < self->gaps_count; g++)
        fprintf (out, "%s[%" PRId64 ",%" PRId64 ",%" PRIu64 "]", g ? "," : "", self->gaps [g].at_ms,
                 self->gaps [g].len_ms, self->gaps [g].missing);
    fprintf (out, "],\"losses\":[");
    for (size_t g = 0; g < self->losses_count; g++)
        fprintf (out, "%s[%" PRId64 ",%" PRId64 ",%" PRIu64 ",%" PRIu64 "]", g ? "," : "",
                 self->losses [g].at_ms, self->losses [g].len_ms, self->losses [g].missing,
                 seqstat_never (self, &self->losses [g]));
    fprintf (out, "]");
}

void
seqstat_test (bool verbose)
{
    if (verbose)
        printf (" * seqstat: ");
    seqstat_t *s = seqstat_new (100);
    seqstat_start (s, 1000000, 100000);
    //  0..9 every 10 ms, 10..14 lost, 15..19 after a 300 ms pause, 16 twice, 21 before 20
    int64_t t = 1000000;
    for (uint64_t q = 0; q < 22; q++) {
        seqstat_sent (s, t);
        t += 10000;
    }
    t = 1000000;
    for (uint64_t q = 0; q < 10; q++, t += 10000)
        seqstat_receive (s, q, t);
    t += 300000;
    for (uint64_t q = 15; q < 20; q++, t += 10000)
        seqstat_receive (s, q, t);
    seqstat_receive (s, 16, t);
    seqstat_receive (s, 21, t);
    seqstat_receive (s, 20, t);
    seqstat_receive (s, 1000, t);
    seqstat_finish (s);
    assert (s->sent == 22);
    assert (s->received == 17);
    assert (seqstat_lost (s) == 5);
    assert (s->duplicates == 1);
    assert (s->reordered == 1);
    assert (s->out_of_range == 1);
    assert (s->gaps_count == 1);
    assert (s->gaps [0].at_ms == 90 && s->gaps [0].len_ms == 310 && s->gaps [0].missing == 5);
    //  Losses: the long pause, and 21 arriving before 20 (10 ms after 19) skipped one
    assert (s->losses_count == 2);
    assert (s->losses [0].missing == 5 && s->losses [1].missing == 1 && s->losses [1].len_ms == 10);
    //  10..14 never came; 20, skipped by 21, came after it
    assert (s->losses [0].first == 10 && seqstat_never (s, &s->losses [0]) == 5);
    assert (s->losses [1].first == 20 && seqstat_never (s, &s->losses [1]) == 0);
    assert (s->max_gap_us == 310000);
    //  Nothing arrives: one gap as long as the stream
    seqstat_start (s, 0, 100000);
    seqstat_sent (s, 0);
    seqstat_sent (s, 500000);
    seqstat_finish (s);
    assert (s->received == 0 && seqstat_lost (s) == 2);
    assert (s->gaps_count == 1 && s->gaps [0].len_ms == 500 && s->gaps [0].missing == 2);
    seqstat_destroy (&s);
    assert (s == NULL);
    if (verbose)
        printf ("OK\n");
}
