/*  seqstat: what a receiver of a sequenced stream saw, for the tests that must
    say "0 lost, 0 duplicated" or "the worst pause was 440 ms" about a path
    change (a relay worker killed, a pair moving from the relay to a direct
    path and back). One place for the accounting, so relay_probe (relay
    datagrams) and seqstream (plain UDP through the tunnel) count alike.

    A sequence number is counted once (a bitmap: a second copy is a duplicate),
    one below the highest seen is reordered, and a pause in arrivals of at
    least report_us is kept as a gap: when it began (ms since start), how long
    it lasted and how many sequence numbers it skipped. Times are microseconds
    of one clock (CLOCK_MONOTONIC is shared by every network namespace, so a
    sender's times compare with a receiver's on the same machine). */
#ifndef SEQSTAT_H_INCLUDED
#define SEQSTAT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SEQSTAT_GAPS_MAX    64

typedef struct {
    int64_t at_ms, len_ms;              //  start (since the stream began), length
    uint64_t missing;                   //  sequence numbers skipped over it (lost, or late)
    uint64_t first;                     //  the first of them
} seqstat_gap_t;

typedef struct {
    uint64_t sent;                      //  the sender's count (seqstat_sent, or told at the end)
    uint64_t received, duplicates, reordered, out_of_range, max_seq;
    int64_t start_us, report_us, last_rx_us, last_sent_us;
    int64_t max_gap_us, max_gap_at_us;  //  the longest pause, and when it began (since start)
    seqstat_gap_t gaps [SEQSTAT_GAPS_MAX];
    size_t gaps_count;
    seqstat_gap_t losses [SEQSTAT_GAPS_MAX];    //  every arrival that skipped numbers, short or long
    size_t losses_count;
    uint8_t *seen;                      //  bitmap by sequence number
    size_t seen_bits;
} seqstat_t;

//  For sequence numbers 0 .. expected - 1 (others are counted out_of_range).
seqstat_t *seqstat_new (size_t expected);
void seqstat_destroy (seqstat_t **self_p);

//  The stream began at start_us; pauses of report_us or more are kept as gaps.
//  Clears every count.
void seqstat_start (seqstat_t *self, int64_t start_us, int64_t report_us);
//  The sender sent one more at now (when sender and receiver are one program).
void seqstat_sent (seqstat_t *self, int64_t now_us);
//  Sequence number seq arrived at now.
void seqstat_receive (seqstat_t *self, uint64_t seq, int64_t now_us);
//  The stream is over: a tail that never came is a gap from the last arrival to
//  the last send (nothing at all: the whole stream).
void seqstat_finish (seqstat_t *self);

uint64_t seqstat_lost (const seqstat_t *self);
//  How many of the numbers a gap skipped never arrived
uint64_t seqstat_never (const seqstat_t *self, const seqstat_gap_t *gap);
//  "sent":..,"received":..,"lost":..,"duplicates":..,"reordered":..,
//  "max_gap_ms":..,"max_gap_at_ms":..,"gaps":[[at_ms,len_ms,missing],...],
//  "losses":[[at_ms,len_ms,missing,never],...] (gaps: pauses of report_us or more;
//  losses: every skip of sequence numbers, however short the pause; never: how
//  many of the skipped ones never arrived, so a skip that was only overtaking,
//  the new path being faster than the old at a path change, shows 0)
//  (members only, no braces, so a caller adds its own).
void seqstat_json_members (const seqstat_t *self, FILE *out);

void seqstat_test (bool verbose);
#endif
