/*  nat_mapping: this node's NAT mapping behaviour (RFC 4787), classified from
    what the relays saw.

    nat registers at every relay of relay.servers from its one UDP socket, and
    each REGISTERED carries the address:port that relay saw the REGISTER come
    from. Two relays at different addresses are two destinations, so their
    answers tell how our NAT maps one source toward several destinations:
    the same ip:port toward every one is an endpoint-independent mapping (a
    cone NAT, or none); ports that differ by a small step are an endpoint-
    dependent mapping that hands out ports in sequence (a peer can predict
    the port of our next flow from them); anything else is endpoint-dependent
    with random ports. What it decides: a node whose own mapping is endpoint-
    independent sends port prediction legs to a peer behind a sequential NAT;
    one whose mapping is endpoint-dependent does not (each leg would burn one
    of its own ports and reach nothing). And the plain-words reason shown for
    a peer that stays relayed.

    A value class with no clock and no socket: the service feeds it the
    observations of the relays that answer over UDP (a TCP or WebSocket
    connection shows another flow's mapping) and the local addresses. */
#ifndef NAT_MAPPING_H_INCLUDED
#define NAT_MAPPING_H_INCLUDED

#include "nat_addr.h"

#define NAT_MAPPING_OBS_MAX     8       //  as many as relays (NAT_RELAY_SERVERS_MAX)
#define NAT_MAPPING_LOCAL_MAX   16
//  Ports that differ by at most this much between two destinations count as
//  sequential: other flows of the same host (or of other hosts behind the same
//  NAT) may take ports between our REGISTERs. Two ports drawn at random from
//  1024-65535 land this close about once in a thousand.
#define NAT_MAPPING_SEQ_GAP_MAX 32

typedef enum {
    NAT_MAPPING_UNKNOWN = 0,            //  fewer than two relay addresses answered
    NAT_MAPPING_NONE,                   //  no NAT: a relay saw one of our own addresses and our port
    NAT_MAPPING_EIM,                    //  endpoint-independent: one ip:port toward every relay
    NAT_MAPPING_EDM_SEQ,                //  endpoint-dependent, ports in sequence
    NAT_MAPPING_EDM_RANDOM,             //  endpoint-dependent, ports (or addresses) not predictable
} nat_mapping_class_t;

typedef struct _nat_mapping_t nat_mapping_t;

nat_mapping_t *nat_mapping_new (void);
void nat_mapping_destroy (nat_mapping_t **self_p);

//  Forgets every observation (the relays are replaced, or re-observed).
void nat_mapping_clear (nat_mapping_t *self);

//  The relay at `relay` saw us at `observed`. Returns true when this changed
//  what is known (a new relay, or another address than before).
bool nat_mapping_observe (nat_mapping_t *self, const nat_addr_t *relay, const nat_addr_t *observed);

//  The relay at `relay` no longer counts (down, or reached over TCP / WSS).
//  True when it counted before.
bool nat_mapping_forget (nat_mapping_t *self, const nat_addr_t *relay);

//  This node's own addresses (ports ignored) and the port nat listens on: a
//  relay that sees one of them with that port sees a node behind no NAT.
void nat_mapping_set_local (nat_mapping_t *self, const nat_addr_t *addrs, size_t count, uint16_t port);

//  The class from what is known now.
nat_mapping_class_t nat_mapping_class (nat_mapping_t *self);
//  Distinct relay addresses that answered (observations).
size_t nat_mapping_count (nat_mapping_t *self);
//  For NAT_MAPPING_EDM_SEQ: the smallest step between the ports seen, and the
//  highest port seen; 0 otherwise.
uint16_t nat_mapping_step (nat_mapping_t *self);
uint16_t nat_mapping_highest (nat_mapping_t *self);

//  "unknown", "none", "endpoint-independent", "endpoint-dependent-sequential",
//  "endpoint-dependent-random" (nat.status `mapping`).
const char *nat_mapping_class_name (nat_mapping_class_t kind);
//  The same in plain words, for a sentence: "maps every destination to one
//  port (endpoint-independent)", ...
const char *nat_mapping_class_words (nat_mapping_class_t kind);
//  May a node of this class send port prediction legs? Only when its own
//  mapping is endpoint-independent (or there is no NAT).
bool nat_mapping_may_predict (nat_mapping_class_t kind);

//  Port prediction toward a peer whose NAT maps in sequence and was seen at
//  port `seen`: the ports probe round `round` covers (1 = the first after a
//  round went unanswered), `window` of them. Odd rounds cover the window from
//  `anchor` (1, or the distance from `seen` that worked last time: the peer's
//  NAT keeps its mapping toward us while it probes); even rounds sweep the
//  windows after it, up to `span` ports, then from the first again; never past
//  65535. Returns how many (0: none) and *from, the first one's distance from
//  `seen` (nat_relay_path.c, docs/nat.md "Port prediction").
uint16_t nat_mapping_predict (uint16_t seen, uint32_t round, uint32_t window, uint32_t span, uint32_t anchor,
                              uint16_t *from);

void nat_mapping_test (bool verbose);

#endif
