/*  nat_bday_path: birthday attempts in the nat service (docs/nat.md,
    "Birthday probing"; the schedule and the port walk are nat_bday.h).

    Why a class of its own: the hard side's part needs sockets besides nat's
    one (K per attempt, bounded in all), a poll on them, and, when a guess
    of the peer's reached one, that socket carried in nat's batched data path
    (nat_taken.h) as the pseudo-endpoint "bday/<index>": crypto answers the
    peer's initiation through it, so the answer leaves from the one mapping
    the peer can reach. The easy side's part is a probe round of the relayed
    path with guessed ports as legs (nat_relay_path_birthday_round). */
#ifndef NAT_BDAY_PATH_H_INCLUDED
#define NAT_BDAY_PATH_H_INCLUDED

#include "bus_schema.h"         //  nat_status_reply_t
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _nat_bday_path_t nat_bday_path_t;
struct _nat_service_t;

nat_bday_path_t *nat_bday_path_new (struct _nat_service_t *owner);
void nat_bday_path_destroy (nat_bday_path_t **self_p);

//  Starts, runs and ends the attempts of every relayed peer; closes a
//  carried socket its peer no longer uses
void nat_bday_path_tick (nat_bday_path_t *self, int64_t now);

//  A datagram crypto sent to "bday/<index>": queued on the carried socket
//  (false and counted when there is none)
bool nat_bday_path_send (nat_bday_path_t *self, uint32_t index, const uint8_t *data, size_t size);
//  Sends what was queued (at the end of a crypto batch)
void nat_bday_path_flush (nat_bday_path_t *self);
//  Crypto caught up: the carried sockets are polled again
void nat_bday_path_resume (nat_bday_path_t *self);

void nat_bday_path_status (nat_bday_path_t *self, nat_status_reply_t *reply);

#endif
