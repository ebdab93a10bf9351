/*  nat_tried: the addresses nat tried for a direct path to one peer, for
    nat.status `candidates` and `bifrostctl peers NAME` (issue 15: "the
    candidate pairs tried and why each failed").

    Bounded (NAT_TRIED_MAX a peer, the oldest forgotten first): one entry per
    kind and address, the predicted ports of all rounds as one range entry.
    The result is judged when it is shown, against where the peer's packets go
    then: the address in use `answered`, one tried within the last second
    `trying`, any other `no answer` (a probe is a handshake initiation: nat sees
    no reply of its own, only crypto confirming the address that answered). */
#ifndef NAT_TRIED_H_INCLUDED
#define NAT_TRIED_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "nat_addr.h"

#define NAT_TRIED_MAX 8

typedef enum {
    NAT_TRIED_DIALLED = 1,      //  an endpoint of the peer dialled before it was up
    NAT_TRIED_SEEN,             //  its public mapping as the relay saw it (hole punching)
    NAT_TRIED_REGISTERED,       //  a candidate it registered (its port mapping first, if it has one)
    NAT_TRIED_PREDICTED         //  ports after its seen mapping (port prediction)
} nat_tried_kind_t;

typedef struct {
    nat_addr_t addr;            //  a range: its first port
    uint16_t ports;             //  predicted: how many ports from addr's; else 1
    uint8_t kind;               //  nat_tried_kind_t
    uint32_t rounds;            //  times it was tried
    int64_t last_ms;            //  last tried then
    int64_t first_ms;
} nat_tried_t;

typedef struct {
    nat_tried_t entry [NAT_TRIED_MAX];
    size_t count;
} nat_tried_list_t;

//  One more try of addr (ports > 1: addr's port and the ports - 1 after it);
//  predicted ranges of one peer merge into one entry
void nat_tried_note (nat_tried_list_t *self, nat_tried_kind_t kind, const nat_addr_t *addr,
                     uint16_t ports, int64_t now);
//  Is addr the entry's address (or in its range)?
bool nat_tried_covers (const nat_tried_t *entry, const nat_addr_t *addr);
//  The entries as "KIND ADDR: N rounds, last T s ago, RESULT" joined by "; "
//  (in_use: where the peer's packets go now, NULL or unset when not up or
//  relayed). Returns out.
char *nat_tried_format (const nat_tried_list_t *self, const nat_addr_t *in_use, int64_t now,
                        char *out, size_t size);
//  Appends "; KIND ADDR: not tried: why" to out (kind: a word)
void nat_tried_format_untried (char *out, size_t size, const char *kind, const char *addr, const char *why);
const char *nat_tried_kind_name (nat_tried_kind_t kind);

void nat_tried_test (bool verbose);
#endif
