/*  disc_json: the registry's replies and WebSocket events, parsed into C structs.
    The bodies are declared once in schemas/rest.def (the declarations the
    registry encodes them from) and decoded by librest; this is what discovery
    keeps of them, the relay grant of registration and heartbeat replies
    included (its credential is for nat only: never logged).

    The registry is another machine: everything it sends is untrusted input. Every
    member is type-checked and size-checked (ids 16 hex, keys 44 base64 characters
    of 32 bytes, virtual IPs real IPv4 addresses, at most 16 host:port endpoints
    of which the first DISC_ENDPOINTS_MAX are kept); anything else is an error with a message, never
    a crash or an unbounded allocation (fuzz_disc_json). Unknown members are
    ignored, so a newer registry can add some. */
#ifndef DISC_JSON_H_INCLUDED
#define DISC_JSON_H_INCLUDED

//  The prefix lengths of a registry's networks (services/registry/reg_alloc.h
//  makes no other; a service includes no other service's header, so the bound
//  is repeated here and checked on every registration reply)
#define DISC_PREFIX_MIN 8
#define DISC_PREFIX_MAX 30

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DISC_ENDPOINTS_MAX  8           //  kept per peer (peer.up carries 8)
#define DISC_ENDPOINT_LEN   71
#define DISC_PEERS_LIST_MAX 10000       //  a bigger list is refused
#define DISC_JSON_MAX       (4 * 1024 * 1024)
#define DISC_SIGNAL_MAX     8192
#define DISC_RELAYS_MAX     8           //  relay.servers carries 8

typedef struct {
    char id [17];                       //  16 hex
    char name [65];
    char public_key [45];
    uint8_t key [32];
    char vip [16];                      //  dotted IPv4
    char endpoints [DISC_ENDPOINTS_MAX][DISC_ENDPOINT_LEN + 1];
    uint32_t endpoints_count;
    bool online;
} disc_peer_info_t;

typedef struct {
    char nonce [64];                    //  base64
    char registry_key [45];
} disc_challenge_t;

//  The relay grant of a registration or heartbeat reply (rest_relay_grant):
//  the relays and this node's credential for them, for nat only (relay.servers)
typedef struct {
    bool given;                         //  the reply had one; false: no relays
    char servers [DISC_RELAYS_MAX][121];    //  "name@host:port"
    uint32_t servers_count;
    char network [17];                  //  the network tag, 16 hex
    char credential [86];               //  "EXPIRY.MACHEX": never logged
    uint16_t tls_port;                  //  the relays' WebSocket over TLS port, 0: none
} disc_relay_t;

typedef struct {
    disc_peer_info_t peer;              //  this node as registered
    char peer_token [128];
    char network_id [65];
    uint32_t prefix;                    //  of the network CIDR, DISC_PREFIX_MIN..MAX
    uint32_t heartbeat_s;               //  0 when absent
    disc_relay_t relay;
} disc_registration_t;

typedef struct {
    uint32_t heartbeat_s;               //  0 when absent
    disc_relay_t relay;                 //  a fresh credential
} disc_heartbeat_t;

typedef enum {
    DISC_EVENT_SUBSCRIBED = 0,
    DISC_EVENT_JOINED,
    DISC_EVENT_CHANGED,
    DISC_EVENT_LEFT,
    DISC_EVENT_SIGNAL,
    DISC_EVENT_NETWORK_DELETED,
    DISC_EVENT_OTHER                    //  an event we do not know: ignored
} disc_event_type_t;

typedef struct {
    disc_event_type_t type;
    disc_peer_info_t peer;              //  joined, changed, left
    char reason [121];
    char from [17];                     //  signal
    char signal_type [33];
    char data [DISC_SIGNAL_MAX + 1];    //  signal: the data member as compact JSON
} disc_event_t;

typedef struct {
    char ice_servers [4097];            //  the iceServers array as compact JSON
    uint32_t ttl;                       //  seconds, 0 = none given
    bool has_turn;                      //  some entry has a credential
} disc_meta_t;

int disc_json_challenge (const char *text, size_t size, disc_challenge_t *out, char *err, size_t errsize);
int disc_json_registration (const char *text, size_t size, disc_registration_t *out, char *err, size_t errsize);
//  {"peers":[...]}: *peers is malloc'd (free it), count entries.
int disc_json_peers (const char *text, size_t size, disc_peer_info_t **peers, size_t *count,
                     char *err, size_t errsize);
int disc_json_event (const char *text, size_t size, disc_event_t *out, char *err, size_t errsize);
int disc_json_meta (const char *text, size_t size, disc_meta_t *out, char *err, size_t errsize);
//  A heartbeat reply. 0 or -1.
int disc_json_heartbeat_reply (const char *text, size_t size, disc_heartbeat_t *out, char *err, size_t errsize);
//  {"heartbeat_interval":N,...} of a heartbeat reply: N, or 0.
uint32_t disc_json_heartbeat (const char *text, size_t size);
//  {"delivered":N} of a signal reply. 0 or -1.
int disc_json_delivered (const char *text, size_t size, uint32_t *delivered, char *err, size_t errsize);
//  The "error" member of an error reply, or a short excerpt of the body.
void disc_json_error_text (const char *text, size_t size, char *out, size_t outsize);

void disc_json_test (bool verbose);
#endif
