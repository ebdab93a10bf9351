/*  nat_relay: the node's side of the relay protocol (librelay/relay_proto.h), as
    nat speaks it on its one UDP socket. It holds the deployment's relays (from
    discovery's `relay.servers`), registers at every one of them every 500 ms,
    measures each round trip from REGISTER to REGISTERED, and names the nearest
    live relay as the one to send through. No socket and no clock of its own: the
    service passes now and sends what nat_relay_tick writes, so a test drives it
    through hours of timers in microseconds. Times are microseconds (a round
    trip on a LAN is well below one millisecond).

    Why register at every relay and not only the nearest: a relay forwards only
    to a peer registered at it, and two peers may each find another relay
    nearest. Registered at all, each can send through its own choice and still
    be reached. The refresh interval is below the relay's 1 s resume budget (a
    worker that lost its state, or a flow the kernel moved to another worker,
    has the registration back within 500 ms), keeps NAT mappings to the relay
    open, and costs 68 bytes per relay every 500 ms.

    A relay that has not answered for NAT_RELAY_DOWN_MS is down; the nearest
    live one takes over (a new relay only wins when its round trip is clearly
    shorter, so two relays of equal distance do not flap). */
#ifndef NAT_RELAY_H_INCLUDED
#define NAT_RELAY_H_INCLUDED

#include "nat_endpoint.h"
#include "relay_proto.h"
#include "relay_cred.h"

#define NAT_RELAY_SERVERS_MAX   8
#define NAT_RELAY_NAME_MAX      48
#define NAT_RELAY_REFRESH_MS    500
#define NAT_RELAY_DOWN_MS       1600        //  three refreshes unanswered, and a little
#define NAT_RELAY_SWITCH_PCT    70          //  a relay wins when its RTT is below 70 % of the current's

typedef struct {
    char name [NAT_RELAY_NAME_MAX];
    nat_endpoint_t endpoint;                //  as listed; named ones are resolved by the service
    bool resolved;                          //  endpoint.addr holds an address
    bool up;                                //  REGISTERED within NAT_RELAY_DOWN_MS
    int64_t rtt_us;                         //  smoothed; -1 before the first answer
    int64_t last_answer_us;                 //  -1 never
    nat_addr_t observed;                    //  our address as this relay saw it (unset before)
    uint64_t registers, answers, errors;
} nat_relay_server_t;

//  What a relay said (nat_relay_receive)
typedef enum {
    NAT_RELAY_NOTHING = 0,                  //  handled inside (REGISTERED, PONG) or dropped
    NAT_RELAY_ESTABLISHED,                  //  *peer is in session with us, *addr its observed address
    NAT_RELAY_UNKNOWN_PEER,                 //  *peer is not registered at that relay
} nat_relay_event_t;

typedef struct _nat_relay_t nat_relay_t;

nat_relay_t *nat_relay_new (void);
void nat_relay_destroy (nat_relay_t **self_p);

//  Replaces the relays and the credential (discovery's relay.servers): servers
//  are "name@host:port" (or "host:port"), peer and network 16 hex digits, the
//  credential "EXPIRY.MACHEX". Servers that stay keep their state. 0, or -1 with
//  err (and the old configuration kept). count 0 clears: no relay.
int nat_relay_configure (nat_relay_t *self, const char *const *servers, size_t count,
                         const char *peer, const char *network, const char *credential,
                         char *err, size_t err_size);

size_t nat_relay_count (nat_relay_t *self);
nat_relay_server_t *nat_relay_server (nat_relay_t *self, size_t i);
//  This node's peer id at the relays (0: not configured).
uint64_t nat_relay_self_id (nat_relay_t *self);
//  Seconds of the credential's expiry (0: none).
uint64_t nat_relay_expiry (nat_relay_t *self);

//  A named relay's addresses (the service resolves endpoint.host); count 0: failed.
void nat_relay_resolved (nat_relay_t *self, size_t i, const nat_addr_t *addrs, size_t count);

//  Writes the REGISTERs due at now (microseconds) into out (each RELAY_PROTO_REGISTER_SIZE bytes,
//  out [k] goes to *to [k]); returns how many. unix_s is the wall clock, to skip
//  an expired credential. Also marks relays down that stopped answering.
size_t nat_relay_tick (nat_relay_t *self, int64_t now_us, uint64_t unix_s,
                       uint8_t out [][RELAY_PROTO_REGISTER_SIZE], const nat_addr_t **to, size_t max);

//  Sends the next REGISTER to relay i at the next tick (a new transport to it).
void nat_relay_register_now (nat_relay_t *self, size_t i);

//  The index of the relay at from, or -1.
int nat_relay_find (nat_relay_t *self, const nat_addr_t *from);

//  A relay's message that is not DATA (the service unwraps DATA itself).
nat_relay_event_t nat_relay_receive (nat_relay_t *self, int server, const uint8_t *data, size_t size,
                                     int64_t now_us, uint64_t *peer, nat_addr_t *addr);

//  The relay to send through now (nearest up), or -1.
int nat_relay_current (nat_relay_t *self);

//  Writes the DATA header for peer into out (RELAY_PROTO_DATA_HEADER bytes).
void nat_relay_frame (nat_relay_t *self, uint64_t peer, uint8_t out [RELAY_PROTO_DATA_HEADER]);

void nat_relay_test (bool verbose);

#endif
