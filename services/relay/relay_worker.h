/*  relay_worker: one relay worker's UDP loop. Every worker binds the same UDP port
    with SO_REUSEPORT (the kernel spreads flows between them), reads batches with
    recvmmsg, parses (relay_proto), authorizes (relay_cred for REGISTER, the
    address -> peer index of relay_table for everything else), and forwards in place
    with node_udp_tx (sendmmsg, UDP GSO for runs to one peer): the same batching as
    nat, and no second sender.

    Rules it keeps, whatever arrives:
    - An address is learned only from a REGISTER with a valid credential; DATA and
      PING count only from an address registered for the peer (so a spoofed source
      gets nothing sent to it, and nothing is forwarded for it).
    - A reply to the sender (REGISTERED, PONG, ERROR) is never larger than the
      datagram that caused it, and nothing at all is sent to an unregistered address
      (no reflection, no amplification).
    - Limits and bad input drop and count; they never stop the loop.

    The loop is a plain function (relay_worker_run_once) so a test drives it from
    its own thread, deterministically; the service wiring (bifrostd, config, the
    libbus runtime) comes with the relay service. */
#ifndef RELAY_WORKER_H_INCLUDED
#define RELAY_WORKER_H_INCLUDED

#include "relay_cred.h"
#include "relay_proto.h"
#include "relay_table.h"
#include "node_udp_tx.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RELAY_WORKER_DGRAM_MAX  2048    //  larger datagrams are counted as truncated
#define RELAY_WORKER_BATCHES    16      //  recvmmsg batches per run_once, at most

typedef struct {
    const char *bind_ip;                //  IPv4 or IPv6 literal; NULL: 0.0.0.0
    uint16_t port;                      //  0: any (then relay_worker_port says which)
    const uint8_t *secret;              //  RELAY_CRED_SECRET_SIZE bytes, copied
    uint64_t max_lifetime;              //  credential lifetime accepted, s (0: any)
    relay_limits_t limits;
    bool gso;                           //  UDP GSO where the kernel has it
} relay_worker_config_t;

typedef struct {
    uint64_t rx_dgrams, rx_bytes, rx_calls;
    uint64_t truncated;                         //  larger than RELAY_WORKER_DGRAM_MAX
    uint64_t malformed [RELAY_PROTO_ERRORS];    //  by parser reason (0 unused)
    uint64_t cred_refused [RELAY_CRED_RESULTS]; //  REGISTER refused, by reason (0 unused)
    uint64_t table_refused;                     //  REGISTER refused by a table limit
    uint64_t registered;                        //  REGISTER accepted
    uint64_t unknown_source;                    //  DATA/PING from an unregistered address
    uint64_t unknown_dest;                      //  DATA to a peer not registered here
    uint64_t bad_network_word;                  //  DATA/PING whose network word is not the sender's
    uint64_t expired_source;                    //  DATA from a peer whose credential expired
    uint64_t limited;                           //  DATA refused by a rate or session limit
    uint64_t other_network;                     //  DATA to a peer of another network
    uint64_t wrong_direction;                   //  relay -> client types sent to the relay
    uint64_t forwarded, forwarded_bytes;        //  DATA sent on (payload + header)
    uint64_t replies;                           //  REGISTERED, PONG, ERROR
    uint64_t established;                       //  ESTABLISHED sent
    uint64_t reply_too_large;                   //  replies withheld by the size rule (must stay 0)
} relay_worker_stats_t;

typedef struct _relay_worker_t relay_worker_t;

//  Binds the socket; NULL (errno set) when it cannot.
relay_worker_t *relay_worker_new (const relay_worker_config_t *config);
void relay_worker_destroy (relay_worker_t **self_p);

uint16_t relay_worker_port (relay_worker_t *self);
int relay_worker_fd (relay_worker_t *self);

//  Steers the port's traffic by network: attaches to the SO_REUSEPORT group (every
//  worker on the port, whichever calls it) a classic BPF program that picks the
//  socket at index (the word at offset 4 of the datagram) modulo workers; sockets
//  are indexed in the order they joined the group. All traffic of one network
//  then meets at one worker, which holds all its registrations. An index with no
//  socket (a worker died) falls back to the kernel's 4-tuple hash until the
//  program is attached again with the new count. Returns 0, or -1 (errno) when the
//  kernel lacks SO_ATTACH_REUSEPORT_CBPF (Linux < 4.5).
int relay_worker_steer (relay_worker_t *self, unsigned workers);

//  Waits up to timeout_ms for datagrams, then handles what is waiting (at most
//  RELAY_WORKER_BATCHES batches) and expires idle peers once a second. Returns the
//  number of datagrams handled.
size_t relay_worker_run_once (relay_worker_t *self, int timeout_ms);

const relay_worker_stats_t *relay_worker_stats (relay_worker_t *self);
relay_table_t *relay_worker_table (relay_worker_t *self);
const node_udp_tx_stats_t *relay_worker_tx_stats (relay_worker_t *self);

void relay_worker_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
