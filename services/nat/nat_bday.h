/*  nat_bday: when and where a birthday attempt toward one relayed peer goes
    (issue 15; docs/nat.md, "Birthday probing").

    Why: a NAT that maps every destination to a new random port (symmetric,
    `masquerade fully-random`) gives the peer's probes to us a port nobody
    can predict, and behind a filter that checks ports (port-restricted,
    cgnat) our probes to the relay-seen port never match. A birthday meeting
    makes many mappings meet many guesses: the hard side (its own mapping
    endpoint-dependent random) opens K extra sockets and sends from each to
    the peer's relay-seen address, so its NAT holds K mappings toward it; the
    easy side (endpoint-independent or no NAT: nat_mapping_may_predict) adds
    M ports of the peer's relay-seen IP to its probe each round. A guess that
    lands on one of the K ports passes the hard side's NAT as an answer.

    This file holds only the pure part, per peer and with a clock argument:
    the role, the schedule of an attempt (start after unanswered probe rounds,
    a round every interval, the end, one attempt per retry period), and the
    walk of guessed ports (a random permutation of 1024-65535, so no port is
    guessed twice in an attempt). The sockets and the glue are
    nat_bday_path.c. */
#ifndef NAT_BDAY_H_INCLUDED
#define NAT_BDAY_H_INCLUDED

#include "nat_mapping.h"

#include <stdbool.h>
#include <stdint.h>

#define NAT_BDAY_PORT_MIN   1024        //  the ports a NAT hands out (Linux: 1024-65535 for a source port >= 1024)
#define NAT_BDAY_PORTS      (65536 - NAT_BDAY_PORT_MIN)

typedef enum {
    NAT_BDAY_NONE = 0,                  //  this node takes no part (unknown or sequential mapping)
    NAT_BDAY_HARD,                      //  opens the sockets
    NAT_BDAY_EASY,                      //  guesses the ports
} nat_bday_role_t;

typedef enum {
    NAT_BDAY_WAIT = 0,                  //  nothing now
    NAT_BDAY_START,                     //  an attempt starts (hard: open the sockets; easy: nat_bday_seed)
    NAT_BDAY_ROUND,                     //  a round is due (hard: a datagram per socket; easy: M guesses);
                                        //  nat_bday_round_done when it went
    NAT_BDAY_END,                       //  the attempt is over (hard: close the sockets)
} nat_bday_action_t;

typedef struct {
    bool enabled;                       //  connection.birthday
    uint32_t sockets;                   //  K, connection.birthday_sockets
    uint32_t probes;                    //  M per round, connection.birthday_probes
    uint32_t rounds;                    //  per attempt, connection.birthday_rounds
    int64_t interval_ms;                //  between rounds, connection.birthday_interval
    int64_t retry_ms;                   //  from an attempt's end to the next one, connection.birthday_retry
    uint32_t after;                     //  probe rounds unanswered first, connection.birthday_after
} nat_bday_config_t;

//  One peer's attempts (plain data, kept in the peer's info)
typedef struct {
    uint8_t role;                       //  nat_bday_role_t of the attempt under way; NONE: none
    uint32_t round;                     //  rounds done in it
    int64_t started_ms;
    int64_t next_ms;                    //  the next round is due then
    int64_t ended_ms;                   //  the last attempt ended then; 0: none yet
    uint32_t attempts;
    uint16_t base, stride;              //  the walk of guessed ports (easy side)
} nat_bday_t;

//  This node's role, from its own mapping class
nat_bday_role_t nat_bday_role (nat_mapping_class_t mine);

//  What to do now for a peer. eligible: up through the relay, its relay-seen
//  address known, direct paths allowed; probe_rounds: its plain probe rounds
//  so far (the attempt starts after cfg->after of them went unanswered). An
//  attempt under way ends when the peer is no longer eligible.
nat_bday_action_t nat_bday_step (nat_bday_t *self, const nat_bday_config_t *cfg, nat_bday_role_t role,
                                 bool eligible, uint32_t probe_rounds, int64_t now);
//  The round went; the next is due an interval later
void nat_bday_round_done (nat_bday_t *self, const nat_bday_config_t *cfg, int64_t now);
//  Ends the attempt now (NAT_BDAY_END was acted on, or the caller gave up)
void nat_bday_end (nat_bday_t *self, int64_t now);

//  The walk for an attempt from 64 random bits: a start and a step prime to
//  NAT_BDAY_PORTS, so the first NAT_BDAY_PORTS guesses are all different
void nat_bday_seed (nat_bday_t *self, uint64_t random);
//  The k-th guessed port of the walk (round r, leg j: k = (r - 1) * M + j)
uint16_t nat_bday_port (const nat_bday_t *self, uint32_t k);

//  The chance that `guesses` different ports of `ports` all miss `sockets`
//  mappings (hypergeometric; what docs/nat.md and the test's budget use)
double nat_bday_miss (uint32_t sockets, uint32_t guesses, uint32_t ports);

void nat_bday_test (bool verbose);

#endif
