/*  nat_bday_path: birthday attempts in the service (see nat_bday_path.h).

    The hard side (this node's mapping endpoint-dependent random): at the
    start of an attempt, K sockets (connection.birthday_sockets, at most
    S_SOCKETS_TOTAL open in all and half of the descriptor limit), each
    sending 4 bytes to the peer's relay-seen address every round, so the NAT
    holds K mappings toward it. Those bytes are harmless at the peer: its NAT
    drops them until the peer sent to that port, and after that nat's demux
    drops them (type 0). The sockets sit in one epoll set, one poller on
    nat's loop. A datagram on one of them from the peer's address is the
    peer's guess: that socket is carried from then on (nat_taken) as
    "bday/<index>", the K-1 others are closed, and crypto answers the
    initiation through it. The carried socket closes when the peer has not
    been on it for S_CARRY_IDLE_MS (it went elsewhere, or down).

    The easy side: each round adds M guessed ports of the peer's relay-seen
    address to a probe (nat_relay_path_birthday_round). */
#include "nat_service_priv.h"
#include "nat_bday.h"
#include "nat_bday_path.h"
#include "nat_mapping.h"
#include "nat_taken.h"
#include "bus_log.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_SOCKETS_TOTAL     1024        //  extra sockets open at once, all attempts
#define S_ATTEMPTS_MAX      4           //  attempts under way at once, both roles
#define S_CARRY_IDLE_MS     10000       //  a carried socket its peer is not on this long closes
#define S_HOLD_SIZE         4           //  the hard side's datagram: type 0, dropped by the peer's demux

//  The hard side's sockets of one attempt
typedef struct {
    int *fds;                   //  -1: closed (or taken)
    size_t count;
    int epfd;
    zmq_pollitem_t item;        //  the epoll set, polled on nat's loop
    nat_addr_t to;              //  the peer's relay-seen address
    struct _nat_bday_path_t *owner;
    uint32_t index;
} s_open_t;

typedef struct {
    s_open_t *open;             //  the hard side's attempt under way, NULL none
    nat_taken_t *taken;         //  the socket a guess reached, carrying the peer
    int64_t on_ms;              //  the peer was last on it then
} s_peer_t;

struct _nat_bday_path_t {
    nat_service_t *owner;
    s_peer_t peers [NODE_PEERS_MAX];
    uint32_t pending [NODE_PEERS_MAX];
    size_t pending_count;
    size_t sockets_open;
    size_t attempts_now;        //  counted again every tick (peers with an attempt under way)
    size_t sockets_max;         //  S_SOCKETS_TOTAL, or half the descriptor limit when lower
    uint64_t attempts, datagrams, hits, strangers, drops;
    nat_udp_stats_t closed;     //  carried sockets' counters, once closed
};

static nat_bday_config_t
s_config (nat_service_t *svc)
{
    const bus_cfg_connection_t *c = &svc->config;
    return (nat_bday_config_t) {
        .enabled = c->birthday && c->direct_connect && c->hole_punch && c->relay_enabled,
        .sockets = (uint32_t) c->birthday_sockets, .probes = (uint32_t) c->birthday_probes,
        .rounds = (uint32_t) c->birthday_rounds, .interval_ms = c->birthday_interval_ms,
        .retry_ms = c->birthday_retry_ms, .after = (uint32_t) c->birthday_after,
    };
}

static const char *
s_name (nat_bday_path_t *self, uint32_t index)
{
    return self->owner->info [index].name;
}

//  ---------------------------------------------------------------------------
//  The hard side's sockets

static void
s_open_close (nat_bday_path_t *self, uint32_t index)
{
    s_open_t *o = self->peers [index].open;
    if (!o)
        return;
    if (o->item.fd >= 0)
        bus_loop_poller_end (self->owner->loop, &o->item);
    for (size_t k = 0; k < o->count; k++)
        if (o->fds [k] >= 0) {
            close (o->fds [k]);
            self->sockets_open--;
        }
    if (o->epfd >= 0)
        close (o->epfd);
    free (o->fds);
    free (o);
    self->peers [index].open = NULL;
}

static void s_take (nat_bday_path_t *self, s_open_t *o, size_t k, const nat_addr_t *from, int64_t now);

//  One of the sockets is readable: the peer's guess (from its relay-seen
//  address) wins; anything else is read and dropped
static int
s_open_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_open_t *o = (s_open_t *) arg;
    nat_bday_path_t *self = o->owner;
    struct epoll_event events [32];
    int n = epoll_wait (o->epfd, events, 32, 0);
    for (int e = 0; e < n; e++) {
        size_t k = events [e].data.u32;
        if (k >= o->count || o->fds [k] < 0)
            continue;
        for (int tries = 0; tries < 64; tries++) {
            uint8_t buf [64];
            struct sockaddr_storage ss;
            socklen_t len = sizeof ss;
            ssize_t got = recvfrom (o->fds [k], buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT, (struct sockaddr *) &ss, &len);
            if (got < 0)
                break;              //  EAGAIN, or an ICMP error: nothing to read
            nat_addr_t from;
            if (nat_addr_set_sockaddr (&from, (struct sockaddr *) &ss, len) == 0 && nat_addr_eq (&from, &o->to)) {
                s_take (self, o, k, &from, bus_clock_ms ());
                return 0;           //  o is gone
            }
            self->strangers++;
            if (recv (o->fds [k], buf, sizeof buf, MSG_DONTWAIT) < 0)
                break;
        }
    }
    return 0;
}

//  K sockets of the relay-seen address's family on any port, each in the
//  epoll set; fewer when the budget or the descriptors run out
static size_t
s_open (nat_bday_path_t *self, uint32_t index, const nat_addr_t *to, size_t want)
{
    s_open_t *o = (s_open_t *) calloc (1, sizeof *o);
    assert (o);
    o->owner = self;
    o->index = index;
    o->to = *to;
    o->item = (zmq_pollitem_t) { NULL, -1, ZMQ_POLLIN, 0 };
    size_t budget = self->sockets_max > self->sockets_open ? self->sockets_max - self->sockets_open : 0;
    if (want > budget)
        want = budget;
    o->fds = (int *) malloc ((want ? want : 1) * sizeof (int));
    assert (o->fds);
    self->peers [index].open = o;
    o->epfd = epoll_create1 (EPOLL_CLOEXEC);
    if (o->epfd < 0)
        return 0;
    int family = nat_addr_family (to);
    for (size_t k = 0; k < want; k++) {
        int fd = socket (family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            break;
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t) k };
        if (epoll_ctl (o->epfd, EPOLL_CTL_ADD, fd, &ev)) {
            close (fd);
            break;
        }
        o->fds [o->count++] = fd;
        self->sockets_open++;
    }
    o->item.fd = o->epfd;
    if (bus_loop_poller (self->owner->loop, &o->item, s_open_ready, o)) {
        o->item.fd = -1;
        s_open_close (self, index);
        return 0;
    }
    return o->count;
}

//  A round: 4 bytes from each socket to the peer (the first one makes the
//  mapping, the next ones keep it); a socket that cannot send is left alone
static void
s_hold (nat_bday_path_t *self, s_open_t *o)
{
    static const uint8_t hold [S_HOLD_SIZE] = { 0, 'b', 'd', 'y' };
    for (size_t k = 0; k < o->count; k++)
        if (o->fds [k] >= 0 && sendto (o->fds [k], hold, sizeof hold, MSG_DONTWAIT, &o->to.sa, o->to.len) == sizeof hold)
            self->datagrams++;
}

//  Carried sockets: the peer's datagrams keep it in use
static void
s_carried_rx (void *arg, size_t ingested, size_t strangers)
{
    s_peer_t *p = (s_peer_t *) arg;
    if (ingested)
        p->on_ms = bus_clock_ms ();
    (void) strangers;
}

static void
s_carry_close (nat_bday_path_t *self, uint32_t index, const char *why)
{
    s_peer_t *p = &self->peers [index];
    if (!p->taken)
        return;
    bus_info ("peer %s: birthday socket (port %u) closed: %s", s_name (self, index),
              nat_udp_port (nat_taken_udp (p->taken)), why);
    nat_taken_destroy (&p->taken, &self->closed);
}

static void
s_take (nat_bday_path_t *self, s_open_t *o, size_t k, const nat_addr_t *from, int64_t now)
{
    uint32_t index = o->index;
    s_peer_t *p = &self->peers [index];
    nat_peer_info_t *info = &self->owner->info [index];
    int fd = o->fds [k];
    epoll_ctl (o->epfd, EPOLL_CTL_DEL, fd, NULL);
    o->fds [k] = -1;
    self->sockets_open--;
    size_t count = o->count;
    s_carry_close (self, index, "a new hit");
    char err [200];
    nat_udp_t *udp = nat_taken_wrap (self->owner, fd, err, sizeof err);
    nat_addr_t as;
    nat_addr_set_bday (&as, index);
    if (udp)
        p->taken = nat_taken_new (self->owner, &udp, from, &as, s_carried_rx, p);
    else
        snprintf (err, sizeof err, "cannot poll it");
    s_open_close (self, index);
    char text [NAT_ADDR_TEXT_MAX];
    if (!p->taken) {
        bus_warn ("peer %s: birthday hit, but its socket cannot be carried: %s", s_name (self, index), err);
        nat_bday_end (&info->bday, now);
        return;
    }
    self->hits++;
    p->on_ms = now;
    bus_info ("peer %s: birthday hit: a probe from %s reached socket %zu of %zu (local port %u) after %u round%s, "
              "%" PRId64 " ms after the attempt started; the peer goes on it as bday/%u",
              s_name (self, index), nat_addr_format (from, text, sizeof text), k + 1, count,
              nat_udp_port (nat_taken_udp (p->taken)), info->bday.round, info->bday.round == 1 ? "" : "s",
              now - info->bday.started_ms, index);
    nat_bday_end (&info->bday, now);
}

//  ---------------------------------------------------------------------------
//  The attempts

static void
s_start (nat_bday_path_t *self, uint32_t index, nat_peer_info_t *info, const nat_bday_config_t *cfg, int64_t now)
{
    char text [NAT_ADDR_TEXT_MAX];
    self->attempts_now++;
    self->attempts++;
    nat_addr_format (&info->relay_seen, text, sizeof text);
    s_open_close (self, index);         //  none should be left; never two sets for one peer
    if (info->bday.role == NAT_BDAY_HARD) {
        size_t opened = s_open (self, index, &info->relay_seen, cfg->sockets);
        if (!opened) {
            bus_warn ("peer %s: birthday attempt: no socket could be opened (%zu open in all)", s_name (self, index),
                      self->sockets_open);
            s_open_close (self, index);
            nat_bday_end (&info->bday, now);
            return;
        }
        bus_info ("peer %s: birthday attempt %u: %zu sockets toward %s, %u rounds %" PRId64 " ms apart "
                  "(this node's NAT maps with random ports)", s_name (self, index), info->bday.attempts, opened, text,
                  cfg->rounds + 1, cfg->interval_ms);
    }
    else {
        uint64_t seed = 0;
        if (getrandom (&seed, sizeof seed, 0) != (ssize_t) sizeof seed)
            seed = (uint64_t) now * 0x9e3779b97f4a7c15ULL;
        nat_bday_seed (&info->bday, seed);
        bus_info ("peer %s: birthday attempt %u: %u guessed ports of %s a round, %u rounds %" PRId64 " ms apart "
                  "(in case its NAT maps with random ports)", s_name (self, index), info->bday.attempts, cfg->probes,
                  text, cfg->rounds, cfg->interval_ms);
    }
}

static void
s_end (nat_bday_path_t *self, uint32_t index, nat_peer_t *peer, nat_peer_info_t *info, int64_t now)
{
    const nat_addr_t *endpoint = peer ? nat_peer_endpoint (peer) : NULL;
    const char *how = !peer ? "the peer is gone"
                    : nat_peer_state (peer) != NAT_PEER_UP ? "the peer is down"
                    : endpoint && !nat_addr_relay_peer (endpoint) ? "the peer is off the relay"
                    : "no hit";
    bus_info ("peer %s: birthday attempt %u over after %u round%s, %" PRId64 " ms: %s", info->name,
              info->bday.attempts, info->bday.round, info->bday.round == 1 ? "" : "s", now - info->bday.started_ms, how);
    s_open_close (self, index);
    nat_bday_end (&info->bday, now);
}

void
nat_bday_path_tick (nat_bday_path_t *self, int64_t now)
{
    if (!self)
        return;
    nat_service_t *svc = self->owner;
    nat_bday_config_t cfg = s_config (svc);
    nat_bday_role_t role = nat_bday_role (svc->mapping ? nat_mapping_class (svc->mapping) : NAT_MAPPING_UNKNOWN);
    self->attempts_now = 0;
    for (uint32_t i = 0; i < NODE_PEERS_MAX && i < svc->info_count; i++) {
        //  Sockets without a hard attempt (its state was reset): closed
        if (self->peers [i].open && svc->info [i].bday.role != NAT_BDAY_HARD)
            s_open_close (self, i);
        self->attempts_now += svc->info [i].bday.role != NAT_BDAY_NONE;
    }
    for (uint32_t i = 0; i < NODE_PEERS_MAX && i < svc->info_count; i++) {
        nat_peer_t *peer = i < nat_peer_table_slots (svc->table) ? nat_peer_table_at (svc->table, i) : NULL;
        nat_peer_info_t *info = &svc->info [i];
        s_peer_t *p = &self->peers [i];
        //  A carried socket closes when its peer has not been on it for a while
        if (p->taken) {
            uint32_t on;
            if (peer && nat_peer_state (peer) == NAT_PEER_UP && nat_addr_bday_index (nat_peer_endpoint (peer), &on) && on == i)
                p->on_ms = now;
            else
            if (!peer || now - p->on_ms >= S_CARRY_IDLE_MS)
                s_carry_close (self, i, peer ? "the peer is not on it" : "the peer is gone");
        }
        if (!peer) {
            if (info->bday.role != NAT_BDAY_NONE)
                s_end (self, i, NULL, info, now);
            info->bday = (nat_bday_t) { 0 };
            continue;
        }
        const nat_addr_t *endpoint = nat_peer_endpoint (peer);
        bool eligible = info->relay_id && nat_peer_state (peer) == NAT_PEER_UP && nat_addr_relay_peer (endpoint)
                     && nat_addr_is_set (&info->relay_seen) && !info->force_relay;
        //  No new attempt beyond S_ATTEMPTS_MAX, nor a hard one without its
        //  sockets free: it starts when one ends (a start refused for want of
        //  sockets would count as an attempt and wait out birthday_retry)
        size_t want = cfg.sockets < self->sockets_max ? cfg.sockets : self->sockets_max;
        if (info->bday.role == NAT_BDAY_NONE
        &&  (self->attempts_now >= S_ATTEMPTS_MAX || (role == NAT_BDAY_HARD && self->sockets_open + want > self->sockets_max)))
            continue;
        switch (nat_bday_step (&info->bday, &cfg, role, eligible, info->probes, now)) {
            case NAT_BDAY_START:
                s_start (self, i, info, &cfg, now);
                break;
            case NAT_BDAY_ROUND:
                if (info->bday.role == NAT_BDAY_HARD) {
                    if (!p->open) {             //  closed under it: nothing left to hold
                        s_end (self, i, peer, info, now);
                        break;
                    }
                    s_hold (self, p->open);
                    nat_bday_round_done (&info->bday, &cfg, now);
                }
                else
                if (nat_relay_path_birthday_round (svc, peer, cfg.probes, info->bday.round * cfg.probes, now))
                    nat_bday_round_done (&info->bday, &cfg, now);
                break;
            case NAT_BDAY_END:
                s_end (self, i, peer, info, now);
                break;
            case NAT_BDAY_WAIT:
                break;
        }
    }
}

//  ---------------------------------------------------------------------------
//  The carried sockets in the data path

bool
nat_bday_path_send (nat_bday_path_t *self, uint32_t index, const uint8_t *data, size_t size)
{
    nat_taken_t *t = self && index < NODE_PEERS_MAX ? self->peers [index].taken : NULL;
    if (!t) {
        if (self)
            self->drops++;
        return false;
    }
    if (nat_taken_queue (t, data, size))
        self->pending [self->pending_count++] = index;
    return true;
}

void
nat_bday_path_flush (nat_bday_path_t *self)
{
    if (!self)
        return;
    for (size_t i = 0; i < self->pending_count; i++)
        if (self->peers [self->pending [i]].taken)
            nat_taken_flush (self->peers [self->pending [i]].taken);
    self->pending_count = 0;
}

void
nat_bday_path_resume (nat_bday_path_t *self)
{
    for (size_t i = 0; self && i < NODE_PEERS_MAX; i++)
        if (self->peers [i].taken)
            nat_taken_resume (self->peers [i].taken);
}

void
nat_bday_path_status (nat_bday_path_t *self, nat_status_reply_t *reply)
{
    if (!self)
        return;
    reply->birthday_attempts = self->attempts;
    reply->birthday_sockets = (uint32_t) self->sockets_open;
    reply->birthday_datagrams = self->datagrams;
    reply->birthday_probes = self->owner->counters.birthday_probes;
    reply->birthday_hits = self->hits;
    reply->birthday_strangers = self->strangers;
    for (size_t i = 0; i < NODE_PEERS_MAX; i++)
        reply->birthday_carried += self->peers [i].taken != NULL;
}

nat_bday_path_t *
nat_bday_path_new (nat_service_t *owner)
{
    nat_bday_path_t *self = (nat_bday_path_t *) calloc (1, sizeof *self);
    assert (self);
    self->owner = owner;
    self->sockets_max = S_SOCKETS_TOTAL;
    struct rlimit rl;
    if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 2 < self->sockets_max)
        self->sockets_max = (size_t) rl.rlim_cur / 2;
    return self;
}

void
nat_bday_path_destroy (nat_bday_path_t **self_p)
{
    assert (self_p);
    nat_bday_path_t *self = *self_p;
    if (!self)
        return;
    for (uint32_t i = 0; i < NODE_PEERS_MAX; i++) {
        s_open_close (self, i);
        nat_taken_destroy (&self->peers [i].taken, NULL);
    }
    free (self);
    *self_p = NULL;
}
