/*  bridge_params: the parameters of one `/v0/ws/proxy` request (the query
    string and the Authorization header), parsed and validated.

    This is the first thing that reads a stranger's bytes, so it accepts
    exactly what schemas/bridge.def declares and nothing else: every failure is
    a close code and a reason fit for a close frame ("target: port 70000 is out
    of range 1..65535"), never a crash and never a guess. The key and the token
    are kept here (wiped on destroy and on every parse) and never appear in a
    reason. No name is resolved: a target is an address literal. */
#ifndef BRIDGE_PARAMS_H_INCLUDED
#define BRIDGE_PARAMS_H_INCLUDED

#include "schemas/bridge.h"
#include "bridge_far.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct _bridge_params_t bridge_params_t;

bridge_params_t *bridge_params_new (void);
void bridge_params_destroy (bridge_params_t **self_p);

//  Lets a target on the loopback (tests in one host); refused by default
void bridge_params_set_allow_loopback (bridge_params_t *self, bool allow);

//  Parses query (size bytes, no NUL needed; NULL or empty: no parameter) and
//  authorization (the Authorization header's value, NULL when absent). 0 when
//  every parameter is valid, else the close code (BRIDGE_CLOSE_BAD_PARAM or
//  BRIDGE_CLOSE_BAD_TOKEN) with bridge_params_reason set.
int bridge_params_parse (bridge_params_t *self, const char *query, size_t size, const char *authorization);

//  After a failed parse: the close reason, at most BRIDGE_REASON_MAX bytes,
//  printable ASCII. "" after a good one.
const char *bridge_params_reason (bridge_params_t *self);

//  After a good parse: the far end is a target (address) or a peer (id)
bool bridge_params_has_target (bridge_params_t *self);
//  The first candidate of target (AF_INET or AF_INET6, port set) and its length
const struct sockaddr *bridge_params_target (bridge_params_t *self, socklen_t *len);
//  Every candidate of target (1..BRIDGE_TARGETS_MAX, in the client's order),
//  their count in *count; NULL (and 0) without a target
const bridge_addr_t *bridge_params_targets (bridge_params_t *self, int *count);
//  The first candidate in canonical form, "192.0.2.1:4000" or "[2001:db8::1]:4000"
const char *bridge_params_target_text (bridge_params_t *self);
//  The peer id, 16 lower-case hex digits, or NULL
const char *bridge_params_peer (bridge_params_t *self);
//  The flow key, BRIDGE_KEY_SIZE bytes
const uint8_t *bridge_params_key (bridge_params_t *self);
bridge_cipher_t bridge_params_cipher (bridge_params_t *self);
//  The bearer token (header or query), never NULL after a good parse
const char *bridge_params_token (bridge_params_t *self);

//  Parses "IPv4:port" or "[IPv6]:port" (an address literal, port 1..65535)
//  into addr. 0, or -1 with a reason in err (which names no parameter).
//  bridge_status checks a status message's target with it too.
int bridge_params_endpoint (const char *text, struct sockaddr_storage *addr, socklen_t *len,
                            char *err, size_t errsize);

//  Addresses no flow may go to, whoever names them (a client's target, a
//  peer's endpoint from the registry): why ("is multicast"), or NULL
const char *bridge_params_forbidden (const struct sockaddr_storage *addr, bool allow_loopback);

void bridge_params_test (bool verbose);
#endif
