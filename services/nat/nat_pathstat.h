/*  nat_pathstat: the round trip and loss of the path a peer uses now, from
    nat's own probes (docs/nat.md, "Path RTT and loss").

    nat holds no keys, so it cannot send anything a peer answers; crypto can:
    a keepalive (`nat.probe`) is answered with a keepalive unless the peer sent
    us something in the last 100 ms (KEEPALIVE_ANSWER_GAP). This class is the
    bookkeeping only, pure and clocked by its caller (microseconds), so its self
    test runs without sockets:

    - a probe is sent only when the peer has been quiet toward us for
      NAT_PATHSTAT_QUIET_US (>= the 100 ms answer gap). Then the answer cannot
      be suppressed without the peer having sent us something after the probe
      left, so "nothing at all heard from the peer before the timeout" is a
      sound loss, and anything heard makes the probe count as delivered;
    - the RTT sample is the first keepalive-sized datagram (32 bytes: an empty
      data message) heard after the probe; a data datagram is not a sample (it
      may have left the peer before the probe arrived), and once one was heard
      no later keepalive is either: the data may have been what kept the peer
      from answering, and then the keepalive is one it sent later on its own,
      a sample too long by up to the timeout (tests/integration/mesh_eight.sh:
      a 70 ms link measured 264 ms while announcements flowed). Only while the
      path has no sound sample is such a one taken, as provisional (a path
      busy with data would have none: mesh_latency.sh's 600 ms link counted
      100 ms in the router), and the first sound sample replaces it whole;
    - that datagram may also be one the peer sent on its own (its probe or
      keepalive crossing ours, or its answer suppressed because its own probe
      just left): such a sample is always too short, never too long. So what
      feeds the smoothing is the largest of the last NAT_PATHSTAT_RECENT samples
      (and, before that many, SRTT is that largest one): found by
      tests/integration/mesh_latency.sh, where a 200 ms link measured 122 ms
      and the router preferred it. On a path of 100 ms RTT or more the two
      crypto services keep answering each other's answers (each comes more
      than 100 ms after the answerer last sent), one keepalive per RTT each
      way while the path is up, and every probe's sample is the next of
      those: short (measured: 120 ms RTT, 6.6 keepalives a second each way,
      a sample of 0.3 ms). That is crypto's answer rule, not fixed here;
    - SRTT and RTTVAR as RFC 6298 (alpha 1/8, beta 1/4), the timeout as its RTO
      (SRTT + 4 RTTVAR, at least 1 s), at most 3 s;
    - loss = lost / counted over the last NAT_PATHSTAT_WINDOW probes. */
#ifndef NAT_PATHSTAT_H_INCLUDED
#define NAT_PATHSTAT_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#define NAT_PATHSTAT_QUIET_US    120000      //  the peer's answer gap (100 ms) and a margin
#define NAT_PATHSTAT_INTERVAL_US 5000000     //  one probe per peer this often (+- 1 s jitter)
#define NAT_PATHSTAT_RTO_MIN_US  1000000     //  RFC 6298's lower bound
#define NAT_PATHSTAT_RTO_MAX_US  3000000     //  below the interval: one probe out at a time
#define NAT_PATHSTAT_WINDOW      20          //  loss over the last this many probes
#define NAT_PATHSTAT_RECENT      3           //  samples whose largest feeds SRTT

typedef struct {
    int64_t srtt_us;            //  -1 before the first sample
    int64_t rttvar_us;
    int64_t last_rtt_us;        //  -1 before the first sample
    int64_t recent_us [NAT_PATHSTAT_RECENT];  //  the last samples, by samples % RECENT
    uint32_t samples;           //  RTT samples taken
    uint32_t window;            //  bit k: probe k ago was lost
    uint32_t counted;           //  probes in the window (<= NAT_PATHSTAT_WINDOW)
    uint64_t sent, lost;        //  since the path was taken
    int64_t pending_us;         //  the probe out, 0: none
    bool heard;                 //  something came from the peer since it left
    bool left;                  //  pending_us is when its keepalive left nat
    bool provisional;           //  the samples are one taken after data (see heard)
    int64_t next_us;            //  the next probe is due then, 0: at the first chance
} nat_pathstat_t;

//  Forgets everything: a new path (or the peer went down)
void nat_pathstat_reset (nat_pathstat_t *self);
//  Should a probe go now? last_rx_us: the last datagram from the peer, -1 never
bool nat_pathstat_due (const nat_pathstat_t *self, int64_t now_us, int64_t last_rx_us);
//  A probe left now; jitter_us (within +-1 s) spreads the peers' probes apart
void nat_pathstat_sent (nat_pathstat_t *self, int64_t now_us, int64_t jitter_us);
//  The probe's keepalive left nat now (a closer start than the request to crypto)
void nat_pathstat_left (nat_pathstat_t *self, int64_t now_us);
//  A datagram from the peer; keepalive: it was an empty data message
void nat_pathstat_heard (nat_pathstat_t *self, int64_t now_us, bool keepalive);
//  Times out the probe out; true when it was just counted lost
bool nat_pathstat_tick (nat_pathstat_t *self, int64_t now_us);
//  The current timeout of a probe, microseconds
int64_t nat_pathstat_rto (const nat_pathstat_t *self);
//  How long to wait for an answer on this path, ms: floor_ms, or longer on a
//  path whose round trip needs it (SRTT + 4 RTTVAR + 100 ms; nat_direct_watch)
int64_t nat_pathstat_answer_ms (const nat_pathstat_t *self, int64_t floor_ms);
//  Lost probes of the window in per mille, -1 when none was counted yet
int nat_pathstat_loss_permille (const nat_pathstat_t *self);

void nat_pathstat_test (bool verbose);
#endif
