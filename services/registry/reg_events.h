/*  reg_events: fan-out of network events to WebSocket subscribers, apart from
    libwebsockets so it can be tested (and benchmarked) without sockets. A
    subscriber belongs to one network and is either a peer (receives every
    network event and the signals addressed to it) or an admin (network events
    only). Publishing serializes an event once and queues a reference-counted
    copy for each subscriber, then calls the wake function so the transport asks
    for a writable callback. A subscriber whose queue exceeds queue_max is marked
    closing (a slow consumer must not grow the registry's memory). */
#ifndef REG_EVENTS_H_INCLUDED
#define REG_EVENTS_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct _reg_events_t reg_events_t;
typedef struct _reg_sub_t reg_sub_t;

//  Called when a subscriber has something to send (or must be closed).
typedef void (reg_wake_fn) (void *handle, void *arg);

reg_events_t *reg_events_new (size_t queue_max);
void reg_events_destroy (reg_events_t **self_p);
void reg_events_set_wake (reg_events_t *self, reg_wake_fn *fn, void *arg);

//  The network of an admin subscriber to every network (the status page):
//  it receives what is published in any network, never signals.
#define REG_EVENTS_ALL "*"

//  peer NULL = admin subscriber. handle is the transport's connection.
reg_sub_t *reg_events_subscribe (reg_events_t *self, const char *network, const char *peer, void *handle);
void reg_events_unsubscribe (reg_events_t *self, reg_sub_t **sub_p);

//  Queues the event for every subscriber of the network, and of
//  REG_EVENTS_ALL; returns how many.
size_t reg_events_publish (reg_events_t *self, const char *network, json_t *event);
//  Queues the event for the subscribers that are this peer; returns how many.
size_t reg_events_send_to (reg_events_t *self, const char *network, const char *peer, json_t *event);
//  Marks subscribers closing (a removed peer, a deleted network).
void reg_events_close_peer (reg_events_t *self, const char *network, const char *peer);
void reg_events_close_network (reg_events_t *self, const char *network);
size_t reg_events_count (reg_events_t *self, const char *network);

//  Queues an event for one subscriber (a greeting, for instance).
void reg_sub_push (reg_sub_t *sub, json_t *event);
//  The oldest queued message of a subscriber (NULL when none); then pop it.
const char *reg_sub_peek (reg_sub_t *sub, size_t *size);
void reg_sub_pop (reg_sub_t *sub);
bool reg_sub_closing (reg_sub_t *sub);
const char *reg_sub_peer (reg_sub_t *sub);

void reg_events_test (bool verbose);
#endif
