/*  relay_table: what one relay worker knows: registered peers (id -> observed
    address, network, credential expiry, counters), the reverse index (address ->
    peer) that authorizes DATA by its source, sessions (pairs of peers of one
    network that exchanged DATA), token buckets per peer and per network, and idle
    expiry.

    Design decision: the table is soft state that the worker rebuilds from the next
    authenticated REGISTER, not state shared between workers. Every REGISTER proves
    itself (HMAC, relay_cred.h), and clients re-send REGISTER periodically (under the
    1 s budget for resuming after a worker dies) and at once when the relay answers
    ERROR. So a kill -9 loses nothing that the next REGISTER does not bring back;
    there is no lock, no shared memory and no message between workers on the data
    path, and a crashed worker cannot corrupt another's state. Shared state would
    put a lock or a hop on every packet and let one worker's bug reach all. What
    makes per-worker tables enough is steering: every client message carries its
    network at offset 4 and a reuseport BPF program (relay_worker_steer) sends a
    whole network to one worker, so both peers of a session meet where their
    registrations are. docs/relay.md ("Workers") has the alternatives and costs.

    Times are passed in (now_ms: monotonic milliseconds; now_s: Unix seconds for
    credential expiry) so tests control the clock. */
#ifndef RELAY_TABLE_H_INCLUDED
#define RELAY_TABLE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RELAY_TABLE_SESSIONS_MAX 64     //  sessions per peer, at most

//  Limits; 0 = no limit. Rates are per second with one second of burst.
typedef struct {
    uint32_t peer_pps, peer_bps;        //  packets/s and bytes/s a peer may send
    uint32_t peer_sessions;             //  peers one peer may talk to (<= RELAY_TABLE_SESSIONS_MAX)
    uint32_t net_pps, net_bps;          //  the same for a whole network
    uint32_t net_sessions;              //  sessions in one network
    uint32_t net_peers;                 //  peers registered in one network
    uint32_t max_peers;                 //  peers in the table
    uint32_t idle_ms;                   //  a peer silent this long is forgotten (0: never)
} relay_limits_t;

//  Why the table refused something
typedef enum {
    RELAY_TABLE_OK = 0,
    RELAY_TABLE_FULL,                   //  max_peers
    RELAY_TABLE_NET_FULL,               //  net_peers
    RELAY_TABLE_OTHER_NETWORK,          //  DATA to a peer of another network
    RELAY_TABLE_PEER_RATE,              //  peer_pps or peer_bps
    RELAY_TABLE_NET_RATE,               //  net_pps or net_bps
    RELAY_TABLE_SESSIONS,               //  peer_sessions or net_sessions
    RELAY_TABLE_BAD_ADDRESS,            //  not AF_INET or AF_INET6
    RELAY_TABLE_RESULTS
} relay_table_result_t;

typedef struct {
    double tokens;
    uint64_t last_ms;
} relay_bucket_t;

//  One registered peer (owned by the table; valid until the next register,
//  expire or destroy)
typedef struct {
    uint64_t peer, network;
    struct sockaddr_storage addr;       //  observed at the last authenticated REGISTER
    socklen_t addr_len;
    uint64_t expiry;                    //  the credential's, Unix seconds
    uint64_t last_ms;                   //  last packet from it
    uint64_t pkts_in, bytes_in;         //  sent by it and forwarded
    uint64_t pkts_out, bytes_out;       //  forwarded to it
    uint64_t drops;                     //  its packets dropped by a limit or network check
    uint32_t sessions;
    uint64_t partners [RELAY_TABLE_SESSIONS_MAX];
    relay_bucket_t pps, bps;
    uint8_t addr_key [20];              //  the reverse index's key (family, port, address)
} relay_peer_t;

typedef struct {
    uint64_t peers, networks, sessions;             //  now
    uint64_t registered, moved;                     //  REGISTERs accepted, of which address changes
    uint64_t expired_idle, expired_cred;            //  peers forgotten
    uint64_t refused [RELAY_TABLE_RESULTS];         //  by reason (0 unused)
} relay_table_stats_t;

typedef struct _relay_table_t relay_table_t;

relay_table_t *relay_table_new (const relay_limits_t *limits);
void relay_table_destroy (relay_table_t **self_p);

//  An authenticated REGISTER (the caller verified the credential). Adds or updates
//  the peer; *moved is set when a known peer's address changed (its sessions'
//  partners should hear ESTABLISHED again). Another peer registered from the same
//  address loses that address (the newest registration owns it).
relay_table_result_t relay_table_register (relay_table_t *self, uint64_t peer, uint64_t network,
                                           const struct sockaddr *addr, socklen_t addr_len,
                                           uint64_t expiry, uint64_t now_ms,
                                           relay_peer_t **peer_p, bool *moved);

//  The peer registered from this exact address (family, address, port), or NULL.
relay_peer_t *relay_table_by_addr (relay_table_t *self, const struct sockaddr *addr, socklen_t addr_len);
relay_peer_t *relay_table_by_id (relay_table_t *self, uint64_t peer);

//  Accounts one DATA of size bytes from src to dst: the same network, the rate
//  limits of src and its network, and a session slot (*new_session when the pair
//  is new: both should hear ESTABLISHED). On refusal src->drops and the table's
//  refused [reason] count it.
relay_table_result_t relay_table_forward (relay_table_t *self, relay_peer_t *src, relay_peer_t *dst,
                                          size_t size, uint64_t now_ms, bool *new_session);

//  Marks a packet from peer (a PING) as life; no accounting.
void relay_table_touch (relay_table_t *self, relay_peer_t *peer, uint64_t now_ms);

//  Forgets peers idle for limits.idle_ms, or whose credential expired before now_s.
//  Returns how many.
size_t relay_table_expire (relay_table_t *self, uint64_t now_ms, uint64_t now_s);

const relay_table_stats_t *relay_table_stats (relay_table_t *self);

//  Every peer in turn (for status): NULL after the last. Nothing may be added or
//  removed between first and the last next.
relay_peer_t *relay_table_first (relay_table_t *self);
relay_peer_t *relay_table_next (relay_table_t *self);
const char *relay_table_result_name (relay_table_result_t result);

void relay_table_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
