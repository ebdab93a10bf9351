/*  nat_peer: the connection state of one static peer, as nat sees it. nat holds no
    keys, so it never decides on its own that a peer is genuine: crypto tells it
    (nat_peer_confirm_endpoint) when an authenticated packet came from an address,
    and that is also how a roaming peer's new address is learned.

    Permission: a configured endpoint (IP:port or name:port) is dialled only when the
    config allows it for that peer (`direct = true`). Without it the peer waits for the
    other side to reach us (or, later, for the registry or a relay).

    Timers, all driven by the now_ms the caller passes, so a test simulates hours
    in microseconds:
      keepalive   when UP and nothing was sent for keepalive_ms (default: the schema's
                  keepalive_interval), the keepalive callback fires (crypto
                  makes the actual packet)
      silence     when UP and nothing was received for silence_ms (default
                  3 x keepalive + 5 s), the peer is down
      unanswered  when UP and something other than a keepalive was sent
                  since the peer was last heard (data, transit, a handshake),
                  unanswered for settle_ms (max (200 ms, 2 x SRTT)) while the
                  peer has been silent for suspect_ms (max (1 s, 4 x SRTT),
                  at most 4 s),
                  the probe callback asks for a keepalive (the peer's crypto
                  answers it) every probe_ms (SRTT, 100 .. 250 ms); when the
                  first probe is answer_ms old (max (1 s, SRTT + 4 RTTVAR +
                  100 ms), at most 3 s) and nothing came, the peer is down as on
                  silence. At round trips below 250 ms: down 2 s after the
                  peer's last datagram, or 1.2 s after our first datagram
                  when that was later (docs/nat.md, "Peer timers"). An idle
                  peer (keepalives only) is never probed
      reconnect   a down peer with permission is tried at once, then after 1 s, 2 s,
                  4 s ... capped at 60 s (with several endpoints, one per attempt
                  in turn, and the delay doubles once per round), each delay shortened by a random jitter of
                  up to 20% so peers that went down together do not retry in step; a
                  named endpoint is resolved again for every attempt (DDNS), and
                  confirmation resets the sequence. */
#ifndef NAT_PEER_H_INCLUDED
#define NAT_PEER_H_INCLUDED

#include "nat_endpoint.h"

#define NAT_KEY_SIZE 32
#define NAT_KEY_BASE64_SIZE 45          //  44 characters and the NUL
#define NAT_PEER_BACKOFF_MIN_MS 1000
#define NAT_PEER_BACKOFF_MAX_MS 60000
#define NAT_PEER_JITTER_PCT 20
#define NAT_PEER_NEVER INT64_MAX
#define NAT_PEER_ENDPOINTS_MAX 8        //  as many as peer.up carries

typedef enum {
    NAT_PEER_WAITING,           //  not dialling: no permission or no endpoint
    NAT_PEER_CONNECTING,        //  dialling the configured endpoint with backoff
    NAT_PEER_UP                 //  an authenticated packet came recently
} nat_peer_state_t;

typedef struct {
    const uint8_t *public_key;  //  NAT_KEY_SIZE bytes
    const char *endpoint;       //  "192.0.2.1:51820", "[2001:db8::1]:51820",
                                //  "peer.example:51820", or NULL
    bool direct;                //  permission to dial endpoint
    uint32_t keepalive_ms;      //  0 = connection.keepalive_interval's default (schema)
    uint32_t silence_ms;        //  0 = 3 x keepalive + 5 s
    uint32_t backoff_min_ms;    //  0 = NAT_PEER_BACKOFF_MIN_MS
    uint32_t backoff_max_ms;    //  0 = NAT_PEER_BACKOFF_MAX_MS
    uint32_t jitter_pct;        //  0 = NAT_PEER_JITTER_PCT
    bool no_jitter;             //  exact delays (tests)
    uint64_t seed;              //  jitter randomness, mixed with the key
    bool no_fast_down;          //  only the silence timer declares the peer down
    const char *const *endpoints;   //  more endpoints (the registry's candidates,
    size_t endpoint_count;          //  best first), tried in turn after endpoint
} nat_peer_config_t;

typedef struct _nat_peer_t nat_peer_t;

//  What the peer asks of the service. Any may be NULL.
typedef struct {
    //  Nothing sent for keepalive_ms: have crypto send a keepalive
    void (*keepalive) (nat_peer_t *peer, void *arg);
    //  Dial addr: have crypto send a handshake initiation there
    void (*connect) (nat_peer_t *peer, const nat_addr_t *addr, void *arg);
    //  Resolve host:port, then call nat_peer_resolved
    void (*resolve) (nat_peer_t *peer, const char *host, uint16_t port, void *arg);
    //  The state changed (peer.up / peer.down events)
    void (*state) (nat_peer_t *peer, nat_peer_state_t old_state, void *arg);
    //  The current endpoint changed; old may be unset
    void (*endpoint) (nat_peer_t *peer, const nat_addr_t *old_addr, void *arg);
    //  Traffic sent is unanswered: have crypto send a keepalive now (nat.probe),
    //  whatever it sent last
    void (*probe) (nat_peer_t *peer, void *arg);
} nat_peer_handler_t;

#define NAT_PEER_KEEPALIVE_SIZE 32      //  an empty data message: sent, it expects nothing
#define NAT_PEER_SETTLE_MIN_MS  200     //  a send unanswered this long (or 2 x SRTT),
#define NAT_PEER_SUSPECT_MIN_MS 1000    //  and the peer silent this long (or 4 x SRTT): probe
#define NAT_PEER_SUSPECT_MAX_MS 4000    //  (a path measured slower gets no more)
#define NAT_PEER_ANSWER_MIN_MS  1000    //  the first probe unanswered this long
#define NAT_PEER_ANSWER_MAX_MS  3000    //  (or SRTT + 4 RTTVAR + 100 ms, at most this): down
#define NAT_PEER_PROBE_MIN_MS   100     //  probe again every SRTT, within these bounds
#define NAT_PEER_PROBE_MAX_MS   250
#define NAT_PEER_REPORT_LAG_MS  250     //  crypto's SENT reports: a tick (100 ms) late, and a margin

typedef struct {
    nat_peer_state_t state;
    nat_addr_t endpoint;                //  current (unset until one is confirmed)
    uint64_t rx_bytes, rx_packets;
    uint64_t tx_bytes, tx_packets;
    int64_t last_rx_ms, last_tx_ms;     //  -1: never
    uint32_t attempts;                  //  dial attempts since the last success
    int64_t next_attempt_ms;            //  NAT_PEER_NEVER when none is planned
    uint64_t keepalives;
    uint64_t resolve_failures;
    const char *last_error;             //  "" when none
    int64_t unanswered_ms;              //  the first send not answered yet, -1: none
    bool probing;                       //  probes for it are out, unanswered
    uint64_t fast_probes;               //  probes for unanswered traffic
    uint64_t fast_downs;                //  downs for unanswered traffic (not silence)
    const char *down_reason;            //  why it went down last: "silence",
                                        //  "unanswered", "" when it never did
} nat_peer_status_t;

//  NULL with a message in err for a bad endpoint, or direct without endpoint.
nat_peer_t *nat_peer_new (const nat_peer_config_t *config, char *err, size_t err_size);
void nat_peer_destroy (nat_peer_t **self_p);

void nat_peer_set_handler (nat_peer_t *self, const nat_peer_handler_t *handler, void *arg);

//  Runs the timers that are due at now_ms (call at nat_peer_next_deadline or later).
void nat_peer_tick (nat_peer_t *self, int64_t now_ms);

//  When the next timer is due (absolute ms), NAT_PEER_NEVER when none.
int64_t nat_peer_next_deadline (nat_peer_t *self);

//  crypto authenticated a packet from addr: this is the peer's endpoint now, and it
//  is up. Resets the reconnection backoff.
void nat_peer_confirm_endpoint (nat_peer_t *self, const nat_addr_t *addr, int64_t now_ms);

//  The current endpoint belongs to someone else now (the table says so).
void nat_peer_clear_endpoint (nat_peer_t *self);

//  A datagram came from the peer's current endpoint / was sent to it. A sent
//  datagram larger than a keepalive starts the unanswered timer when it is the
//  first since the peer was last heard (a compare, rarely a store).
void nat_peer_received (nat_peer_t *self, size_t bytes, int64_t now_ms);
void nat_peer_sent (nat_peer_t *self, size_t bytes, int64_t now_ms);
//  Sent to the peer through other peers (mesh routing): counted, and no
//  unanswered timer (the hops have theirs); heard from it that way: answers
//  traffic sent on its own path too
void nat_peer_sent_routed (nat_peer_t *self, size_t bytes, int64_t now_ms);
void nat_peer_heard_routed (nat_peer_t *self, int64_t now_ms);
//  packets datagrams of bytes in all, sent by the tunnel on our socket (as
//  crypto reports them, a tick late)
void nat_peer_sent_many (nat_peer_t *self, uint64_t packets, uint64_t bytes, int64_t now_ms);

//  The smoothed round trip of the peer's path and its variation (nat_pathstat),
//  microseconds, -1 when not measured: the unanswered timer's windows follow it.
void nat_peer_set_rtt (nat_peer_t *self, int64_t srtt_us, int64_t rttvar_us);

//  The answer to a resolve request: addresses, or error text when count is 0.
void nat_peer_resolved (nat_peer_t *self, const nat_addr_t *addrs, size_t count,
                        const char *error, int64_t now_ms);

//  New candidate endpoints (the registry's, best first) for a peer that keeps
//  its state: an up peer (on the relay) gets them to probe, a dialling one
//  dials them from the next attempt. The single configured endpoint is
//  replaced too. -1 with a message, and nothing changed, when one does not
//  parse, there are too many, or none are left for a peer with permission to dial.
int nat_peer_set_endpoints (nat_peer_t *self, const char *const *endpoints, size_t count,
                            char *err, size_t err_size);

nat_peer_state_t nat_peer_state (nat_peer_t *self);
const uint8_t *nat_peer_key (nat_peer_t *self);
const nat_addr_t *nat_peer_endpoint (nat_peer_t *self);
//  The configured endpoint of the last dial attempt (the first before any);
//  NULL when none. _at: the i-th of all of them, NULL past the last.
const nat_endpoint_t *nat_peer_configured (nat_peer_t *self);
const nat_endpoint_t *nat_peer_configured_at (nat_peer_t *self, size_t i);
bool nat_peer_direct (nat_peer_t *self);
void nat_peer_status (nat_peer_t *self, nat_peer_status_t *status);
const char *nat_peer_state_name (nat_peer_state_t state);

//  Slot in a nat_peer_table (set by the table), for the service's bookkeeping.
uint32_t nat_peer_index (nat_peer_t *self);
void nat_peer_set_index (nat_peer_t *self, uint32_t index);

//  Keys as WireGuard writes them: 44 characters of standard base64.
void nat_key_to_base64 (const uint8_t key [NAT_KEY_SIZE], char out [NAT_KEY_BASE64_SIZE]);
int nat_key_from_base64 (const char *text, uint8_t key [NAT_KEY_SIZE], char *err, size_t err_size);

void nat_peer_test (bool verbose);
#endif
