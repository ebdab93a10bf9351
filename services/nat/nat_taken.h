/*  nat_taken: a UDP socket of one peer's path, carried by nat's batched data
    path beside the main socket.

    Why a class: two paths hand nat a socket that is not its main one and
    whose 5-tuple is what makes the path work (the NAT mapping lives on that
    socket): an ICE pair's socket taken from libnice (nat_ice.c) and the one
    birthday socket a peer's probe reached (nat_bday_path.c). Both need the
    same thing: the fd wrapped in a nat_udp (recvmmsg/sendmmsg of 64,
    GSO/GRO), polled on nat's loop, what it reads ingested as from a
    pseudo-address ("ice/<n>", "bday/<n>") so crypto confirms that as the
    endpoint, datagrams from any other address dropped and counted, what
    crypto sends queued until the end of its batch, and reading paused while
    crypto is behind (bus_pause.h), like the main socket. */
#ifndef NAT_TAKEN_H_INCLUDED
#define NAT_TAKEN_H_INCLUDED

#include "nat_udp.h"

typedef struct _nat_taken_t nat_taken_t;
struct _nat_service_t;

//  Called after a read that ingested datagrams (or met strangers)
typedef void (nat_taken_rx_fn) (void *arg, size_t ingested, size_t strangers);

//  The fd as a nat_udp with the main socket's buffer sizes, GSO and GRO
//  asked for; the fd is consumed (closed on failure). NULL with err.
nat_udp_t *nat_taken_wrap (struct _nat_service_t *owner, int fd, char *err, size_t err_size);

//  Takes *udp_p (consumed); polls it on owner's loop when owner has one (a
//  self test passes a service without a loop). Datagrams from `to` are
//  ingested as from `as`. NULL (udp destroyed) when it cannot be polled.
nat_taken_t *nat_taken_new (struct _nat_service_t *owner, nat_udp_t **udp_p, const nat_addr_t *to,
                            const nat_addr_t *as, nat_taken_rx_fn *rx, void *arg);
//  Adds the socket's counters to *closed (when not NULL), closes it
void nat_taken_destroy (nat_taken_t **self_p, nat_udp_stats_t *closed);

//  Queues a datagram to `to` (data must live until nat_taken_flush); a full
//  queue is sent first. True when the queue was empty since the last flush:
//  the caller lists the socket for its flush.
bool nat_taken_queue (nat_taken_t *self, const uint8_t *data, size_t size);
//  Sends what is queued (one sendmmsg or GSO send)
void nat_taken_flush (nat_taken_t *self);
//  Polled again after crypto caught up; reads what queued meanwhile
void nat_taken_resume (nat_taken_t *self);

nat_udp_t *nat_taken_udp (nat_taken_t *self);
const nat_addr_t *nat_taken_to (nat_taken_t *self);
size_t nat_taken_queued (nat_taken_t *self);
//  Adds the socket's counters to *sum (send errors include dropped sends)
void nat_taken_stats_add (nat_taken_t *self, nat_udp_stats_t *sum);

void nat_taken_test (bool verbose);

#endif
