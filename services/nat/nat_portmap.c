/*  nat_portmap: libportmap on nat's loop (see nat_portmap.h and docs/portmap.md).

    One poller (libportmap's socketpair: the worker answered) and one one-shot
    timer, re-armed at portmap_next_deadline after every event, so nothing runs
    between renewals; plus a look at the local address facing the gateway (one
    connect of a UDP socket, no packet sent) on every address or route change
    nat_netwatch reports and every 5 s, which redoes the mapping when it moved. */
#include "nat_portmap.h"
#include "portmap.h"
#include "bus_clock.h"
#include "bus_log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_CHECK_MS      5000

struct _nat_portmap_t {
    bus_loop_t *loop;
    portmap_t *pm;
    zmq_pollitem_t item;
    int timer;                  //  at portmap_next_deadline, -1 none
    int check_timer;
    int check_ms;
    nat_portmap_fn *on_change;
    void *arg;
    uint16_t local_port;
    bool fixed_local;           //  bound to a specific address: nothing to follow
    char external [72];         //  what was last announced
    char local_seen [INET_ADDRSTRLEN];  //  our address towards the gateway (the default route's before one is known)
    char probe [INET_ADDRSTRLEN];       //  where the default route goes, for the route lookup
    uint64_t restarts;
    bool recheck;               //  the address moved while a request was out
};

static void s_arm (nat_portmap_t *self);

//  The local address the kernel would use towards addr (no packet sent); "" if none
static void
s_route_source (const char *addr, char *out, size_t size)
{
    *out = 0;
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (9) };
    if (inet_pton (AF_INET, addr, &to.sin_addr) != 1)
        return;
    int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in from;
    socklen_t len = sizeof from;
    if (fd >= 0 && connect (fd, (struct sockaddr *) &to, sizeof to) == 0
    &&  getsockname (fd, (struct sockaddr *) &from, &len) == 0)
        inet_ntop (AF_INET, &from.sin_addr, out, (socklen_t) size);
    if (fd >= 0)
        close (fd);
}

//  The gateway's address (for the route check): NAT-PMP's is an address, UPnP's
//  host:port
static void
s_gateway_host (const portmap_mapping_t *m, char *out, size_t size)
{
    snprintf (out, size, "%s", m->gateway);
    char *colon = strchr (out, ':');
    if (colon)
        *colon = 0;
}

//  Our address now: towards the gateway that granted the mapping, else the
//  default route's source (a new network shows there first)
static void
s_local_now (nat_portmap_t *self, char *out, size_t size)
{
    const portmap_mapping_t *m = portmap_mapping (self->pm);
    char gw [64];
    if (m)
        s_gateway_host (m, gw, sizeof gw);
    else
        snprintf (gw, sizeof gw, "%s", self->probe);
    s_route_source (gw, out, size);
}

//  After every change of libportmap's state: the candidate, if it moved
static void
s_changed (nat_portmap_t *self)
{
    const portmap_mapping_t *m = portmap_mapping (self->pm);
    char external [72] = "";
    if (m)
        snprintf (external, sizeof external, "%s:%u", m->external_addr, m->external_port);
    s_local_now (self, self->local_seen, sizeof self->local_seen);
    if (streq (external, self->external))
        return;
    if (m)
        bus_info ("port mapping: %s %s -> port %u (gateway %s, lease %u s%s, took %lld ms)",
                  portmap_protocol_name (m->protocol), external, self->local_port, m->gateway,
                  m->lifetime_s, m->external_private ? ", behind another NAT" : "", (long long) m->took_ms);
    else
    if (*self->external)
        bus_warn ("port mapping %s lost: %s", self->external,
                  *portmap_error (self->pm) ? portmap_error (self->pm) : "stopped");
    snprintf (self->external, sizeof self->external, "%s", external);
    if (self->on_change)
        self->on_change (self, self->arg);
}

static void s_restart (nat_portmap_t *self, const char *now, const char *why);

static void
s_after (nat_portmap_t *self, bool changed)
{
    //  The address moved while the gateway was being asked: a failure may be
    //  the move's (no route for a moment), so once more, now that it settled
    if (self->recheck && portmap_state (self->pm) != PORTMAP_WORKING) {
        self->recheck = false;
        if (portmap_state (self->pm) == PORTMAP_FAILED) {
            s_restart (self, NULL, "it moved while the gateway was asked");
            return;
        }
    }
    if (portmap_state (self->pm) == PORTMAP_FAILED && changed)
        bus_info ("port mapping: %s: %s (next attempt in %lld ms)",
                  portmap_err_name (portmap_error_code (self->pm)), portmap_error (self->pm),
                  (long long) (portmap_next_deadline (self->pm) - bus_clock_ms ()));
    s_changed (self);
    s_arm (self);
}

static int
s_on_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    nat_portmap_t *self = (nat_portmap_t *) arg;
    s_after (self, portmap_handle (self->pm, bus_clock_ms ()));
    return 0;
}

static int
s_on_timer (bus_loop_t *loop, int timer_id, void *arg)
{
    nat_portmap_t *self = (nat_portmap_t *) arg;
    self->timer = -1;
    s_after (self, portmap_tick (self->pm, bus_clock_ms ()));
    return 0;
}

static void
s_arm (nat_portmap_t *self)
{
    if (self->timer >= 0)
        bus_loop_timer_end (self->loop, self->timer);
    self->timer = -1;
    int64_t deadline = portmap_next_deadline (self->pm);
    if (deadline < 0)
        return;
    int64_t delay = deadline - bus_clock_ms ();
    self->timer = bus_loop_timer (self->loop, (size_t) (delay > 0 ? delay : 0), 1, s_on_timer, self);
}

//  Our address moved. Mapped: the gateway forwards to an address we no longer
//  have (or it is another gateway). Failed: a new network may have a gateway
//  that answers, no need to wait out the retry backoff. Either way: map again
//  from scratch, now. (A request out to the gateway is left to finish.)
static int
s_on_check (bus_loop_t *loop, int timer_id, void *arg)
{
    nat_portmap_t *self = (nat_portmap_t *) arg;
    portmap_state_t state = portmap_state (self->pm);
    if (self->fixed_local || state == PORTMAP_IDLE)
        return 0;
    char now [INET_ADDRSTRLEN];
    s_local_now (self, now, sizeof now);
    //  No route at all (an address going, the next one not there yet): nothing
    //  can be asked now; judged again when a route is back (the next event or
    //  poll), which may well be the same address (a flap: the mapping holds)
    if (!*now || streq (now, self->local_seen))
        return 0;
    if (state == PORTMAP_WORKING) {
        self->recheck = true;           //  judged when the answer is in (s_after)
        return 0;
    }
    s_restart (self, now, state == PORTMAP_MAPPED ? "the gateway forwards to the old one" : "a new network");
    return 0;
}

//  Maps again from scratch, now
static void
s_restart (nat_portmap_t *self, const char *now, const char *why)
{
    char current [INET_ADDRSTRLEN];
    if (!now) {
        s_local_now (self, current, sizeof current);
        now = current;
    }
    if (streq (now, self->local_seen))
        bus_info ("port mapping: at %s, %s: mapping again", now, why);
    else
        bus_info ("port mapping: this node's address moved from %s to %s (%s): mapping again",
                  *self->local_seen ? self->local_seen : "(none)", *now ? now : "(none)", why);
    self->restarts++;
    portmap_stop (self->pm);
    portmap_start (self->pm, bus_clock_ms ());
    s_after (self, true);
}

//  A route or address event of the host (not the periodic check). Besides a
//  move (s_on_check): a change while the gateway is asked may be why it fails
//  (an address came before its default route: "no default gateway"), so that
//  answer is judged again; and a failed mapping is tried again at once, as a
//  route may have brought its gateway back at the same address
void
nat_portmap_netchange (nat_portmap_t *self)
{
    if (!self || self->fixed_local)
        return;
    portmap_state_t state = portmap_state (self->pm);
    if (state == PORTMAP_WORKING)
        self->recheck = true;
    else
    if (state == PORTMAP_FAILED) {
        char now [INET_ADDRSTRLEN];
        s_local_now (self, now, sizeof now);
        if (*now)                       //  no route at all: judged at the next event
            s_restart (self, now, streq (now, self->local_seen) ? "its routes changed" : "a new network");
        return;
    }
    s_on_check (self->loop, -1, self);
}

nat_portmap_t *
nat_portmap_new (bus_loop_t *loop, const nat_portmap_config_t *config,
                 nat_portmap_fn *on_change, void *arg, char *err, size_t err_size)
{
    assert (loop && config);
    int protocols = PORTMAP_ANY;
    if (config->protocol && streq (config->protocol, "natpmp"))
        protocols = PORTMAP_NATPMP;
    else
    if (config->protocol && streq (config->protocol, "upnp"))
        protocols = PORTMAP_UPNP;
    else
    if (config->protocol && !streq (config->protocol, "any")) {
        snprintf (err, err_size, "port_mapping_protocol '%s': expected any, natpmp or upnp", config->protocol);
        return NULL;
    }
    portmap_config_t pc = {
        .local_port = config->local_port,
        .local_addr = config->local_addr,
        .protocols = protocols,
        .lifetime_s = (uint32_t) (config->lifetime_ms / 1000),
        .natpmp_gateway = config->natpmp_gateway,
        .retry_ms = config->retry_ms,
        .description = "bifrost",
    };
    nat_portmap_t *self = (nat_portmap_t *) calloc (1, sizeof (nat_portmap_t));
    assert (self);
    self->pm = portmap_new (&pc, err, err_size);
    if (!self->pm) {
        free (self);
        return NULL;
    }
    self->loop = loop;
    self->on_change = on_change;
    self->arg = arg;
    self->local_port = config->local_port;
    self->fixed_local = config->local_addr != NULL;
    self->timer = -1;
    self->check_ms = config->check_ms > 0 ? config->check_ms : S_CHECK_MS;
    //  Any address beyond the LAN finds the default route (a route lookup, no packet)
    snprintf (self->probe, sizeof self->probe, "%s", config->natpmp_gateway ? config->natpmp_gateway : "192.0.2.1");
    self->item = (zmq_pollitem_t) { NULL, portmap_fd (self->pm), ZMQ_POLLIN, 0 };
    self->check_timer = -1;
    if (bus_loop_poller (loop, &self->item, s_on_ready, self)
    ||  (self->check_timer = bus_loop_timer (loop, (size_t) self->check_ms, 0, s_on_check, self)) < 0) {
        snprintf (err, err_size, "cannot add the port mapping to the loop");
        nat_portmap_destroy (&self);
        return NULL;
    }
    portmap_start (self->pm, bus_clock_ms ());
    s_local_now (self, self->local_seen, sizeof self->local_seen);
    s_arm (self);
    return self;
}

void
nat_portmap_destroy (nat_portmap_t **self_p)
{
    assert (self_p);
    nat_portmap_t *self = *self_p;
    if (!self)
        return;
    if (self->item.fd >= 0)
        bus_loop_poller_end (self->loop, &self->item);
    if (self->timer >= 0)
        bus_loop_timer_end (self->loop, self->timer);
    if (self->check_timer >= 0)
        bus_loop_timer_end (self->loop, self->check_timer);
    bool had = portmap_mapping (self->pm) != NULL;
    int64_t t0 = bus_clock_ms ();
    portmap_destroy (&self->pm);        //  deletes on the gateway, at most shutdown_ms (1 s)
    if (had)
        bus_info ("port mapping %s deleted (%lld ms)", self->external, (long long) (bus_clock_ms () - t0));
    free (self);
    *self_p = NULL;
}

const char *
nat_portmap_external (nat_portmap_t *self)
{
    return self->external;
}

void
nat_portmap_event (nat_portmap_t *self, nat_mapped_t *msg)
{
    memset (msg, 0, sizeof *msg);
    const portmap_mapping_t *m = portmap_mapping (self->pm);
    msg->local_port = self->local_port;
    if (!m)
        return;
    snprintf (msg->external, sizeof msg->external, "%s", self->external);
    snprintf (msg->protocol, sizeof msg->protocol, "%s", portmap_protocol_name (m->protocol));
    msg->external_private = m->external_private;
}

void
nat_portmap_status (nat_portmap_t *self, nat_status_reply_t *reply)
{
    reply->port_mapping_lifetime_left = reply->port_mapping_took_ms = -1;
    if (!self) {
        snprintf (reply->port_mapping, sizeof reply->port_mapping, "off");
        return;
    }
    snprintf (reply->port_mapping, sizeof reply->port_mapping, "%s", portmap_state_name (portmap_state (self->pm)));
    if (portmap_error_code (self->pm) != PORTMAP_ERR_NONE)
        snprintf (reply->port_mapping_error, sizeof reply->port_mapping_error, "%s: %s",
                  portmap_err_name (portmap_error_code (self->pm)), portmap_error (self->pm));
    const portmap_mapping_t *m = portmap_mapping (self->pm);
    if (!m)
        return;
    snprintf (reply->port_mapping_protocol, sizeof reply->port_mapping_protocol, "%s", portmap_protocol_name (m->protocol));
    snprintf (reply->port_mapping_gateway, sizeof reply->port_mapping_gateway, "%s", m->gateway);
    snprintf (reply->port_mapping_external, sizeof reply->port_mapping_external, "%s", self->external);
    int64_t left = m->expires_ms - bus_clock_ms ();
    reply->port_mapping_lifetime_left = left > 0 ? left / 1000 : 0;
    reply->port_mapping_took_ms = m->took_ms;
}

//  ---------------------------------------------------------------------------
//  Self test: in a private network namespace (when allowed), a fake NAT-PMP
//  gateway on 127.0.0.1:5351 served from the same loop: a mapping announced
//  once, the status, a gateway that stops answering (the candidate withdrawn at
//  expiry is libportmap's business: here, "no gateway" with nobody on 5351)

#include <sched.h>
#include <net/if.h>
#include <sys/ioctl.h>

typedef struct {
    int fd;
    bool silent;
    int changes;
    bool done;
} s_test_t;

static void
s_test_on_change (nat_portmap_t *pm, void *arg)
{
    ((s_test_t *) arg)->changes++;
}

//  The fake gateway: public address 203.0.113.7, maps UDP port p to 40000 + p % 1000
static int
s_test_gateway (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_test_t *t = (s_test_t *) arg;
    uint8_t req [16], ans [16] = { 0 };
    struct sockaddr_in from;
    socklen_t len = sizeof from;
    ssize_t n = recvfrom (t->fd, req, sizeof req, 0, (struct sockaddr *) &from, &len);
    if (n < 2 || t->silent)
        return 0;
    ans [1] = (uint8_t) (128 + req [1]);
    size_t size = 12;
    if (req [1] == 0)
        memcpy (ans + 8, (uint8_t [4]) { 203, 0, 113, 7 }, 4);
    else
    if (n >= 12) {
        uint16_t priv = (uint16_t) (req [4] << 8 | req [5]);
        uint16_t pub = (uint16_t) (40000 + priv % 1000);
        memcpy (ans + 8, req + 4, 2);
        ans [10] = (uint8_t) (pub >> 8);
        ans [11] = (uint8_t) pub;
        memcpy (ans + 12, req + 8, 4);      //  the lifetime asked for
        size = 16;
    }
    sendto (t->fd, ans, size, 0, (struct sockaddr *) &from, len);
    return 0;
}

static int
s_test_until (bus_loop_t *loop, int timer_id, void *arg)
{
    return ((s_test_t *) arg)->done ? -1 : 0;
}

//  Runs the loop until *flag (a change counter) reaches want, or timeout_ms
static void
s_test_run (bus_loop_t *loop, s_test_t *t, int want, int timeout_ms)
{
    int64_t deadline = bus_clock_ms () + timeout_ms;
    while (t->changes < want && bus_clock_ms () < deadline) {
        t->done = true;
        int timer = bus_loop_timer (loop, 10, 1, s_test_until, t);
        bus_loop_start (loop);
        bus_loop_timer_end (loop, timer);
    }
}

void
nat_portmap_test (bool verbose)
{
    if (!verbose)
        bus_log_set_level (BUS_LOG_WARN);
    char err [200];
    bus_loop_t *loop = bus_loop_new ();
    assert (loop);
    bus_loop_set_nonstop (loop, true);
    //  A bad protocol is refused with its name
    nat_portmap_config_t config = { .local_port = 51820, .protocol = "pcp", .lifetime_ms = 3600000 };
    assert (nat_portmap_new (loop, &config, NULL, NULL, err, sizeof err) == NULL);
    assert (strstr (err, "'pcp'"));
    //  Off: the status says so
    nat_status_reply_t *reply = (nat_status_reply_t *) calloc (1, sizeof *reply);
    assert (reply);
    nat_portmap_status (NULL, reply);
    assert (streq (reply->port_mapping, "off") && reply->port_mapping_lifetime_left == -1);

    //  The rest needs 127.0.0.1:5351 of our own
    bool isolated = unshare (CLONE_NEWNET) == 0;
    if (isolated) {
        int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr = { .ifr_name = "lo" };
        isolated = fd >= 0 && ioctl (fd, SIOCGIFFLAGS, &ifr) == 0;
        ifr.ifr_flags |= IFF_UP;
        isolated = isolated && ioctl (fd, SIOCSIFFLAGS, &ifr) == 0;
        if (fd >= 0)
            close (fd);
    }
    if (!isolated) {
        if (verbose)
            printf ("  no private network namespace: the gateway part is skipped\n");
        free (reply);
        bus_loop_destroy (&loop);
        return;
    }
    s_test_t t = { .fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0) };
    struct sockaddr_in gw = { .sin_family = AF_INET, .sin_port = htons (5351) };
    gw.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (t.fd >= 0 && bind (t.fd, (struct sockaddr *) &gw, sizeof gw) == 0);
    zmq_pollitem_t item = { NULL, t.fd, ZMQ_POLLIN, 0 };
    assert (bus_loop_poller (loop, &item, s_test_gateway, &t) == 0);

    //  A mapping: announced once, in the status, in the event
    config = (nat_portmap_config_t) {
        .local_port = 51820, .protocol = "natpmp", .lifetime_ms = 120000,
        .natpmp_gateway = "127.0.0.1", .retry_ms = 200, .check_ms = 50
    };
    nat_portmap_t *pm = nat_portmap_new (loop, &config, s_test_on_change, &t, err, sizeof err);
    assert (pm);
    s_test_run (loop, &t, 1, 3000);
    assert (t.changes == 1);
    assert (streq (nat_portmap_external (pm), "203.0.113.7:40820"));
    nat_mapped_t event;
    nat_portmap_event (pm, &event);
    assert (streq (event.external, "203.0.113.7:40820") && streq (event.protocol, "natpmp"));
    assert (event.local_port == 51820 && !event.external_private);
    memset (reply, 0, sizeof *reply);
    nat_portmap_status (pm, reply);
    if (verbose)
        printf ("  %s %s %s via %s, %lld s left, took %lld ms\n", reply->port_mapping, reply->port_mapping_protocol,
                reply->port_mapping_external, reply->port_mapping_gateway,
                (long long) reply->port_mapping_lifetime_left, (long long) reply->port_mapping_took_ms);
    assert (streq (reply->port_mapping, "mapped") && streq (reply->port_mapping_protocol, "natpmp"));
    assert (streq (reply->port_mapping_gateway, "127.0.0.1"));
    assert (streq (reply->port_mapping_external, "203.0.113.7:40820"));
    assert (reply->port_mapping_lifetime_left > 110 && reply->port_mapping_lifetime_left <= 120);
    assert (*reply->port_mapping_error == 0 && reply->port_mapping_took_ms >= 0);
    //  The address check runs (every 50 ms here) and finds nothing moved: no news
    s_test_run (loop, &t, 2, 300);
    assert (t.changes == 1 && pm->restarts == 0);
    //  The local address "moves": the candidate is withdrawn (it forwards to
    //  an address we no longer have) and announced again once mapped again
    snprintf (pm->local_seen, sizeof pm->local_seen, "192.0.2.1");
    s_test_run (loop, &t, 3, 3000);
    assert (pm->restarts == 1 && t.changes == 3);
    assert (streq (nat_portmap_external (pm), "203.0.113.7:40820"));
    //  destroy deletes: the gateway sees lifetime 0
    nat_portmap_destroy (&pm);
    assert (pm == NULL);

    //  Nobody on 5351: "no gateway" at once, the status says it, nothing announced
    bus_loop_poller_end (loop, &item);
    close (t.fd);
    t = (s_test_t) { .fd = -1 };
    config.retry_ms = 5000;             //  no retry of its own while we look
    pm = nat_portmap_new (loop, &config, s_test_on_change, &t, err, sizeof err);
    assert (pm);
    s_test_run (loop, &t, 1, 300);
    assert (t.changes == 0);
    memset (reply, 0, sizeof *reply);
    nat_portmap_status (pm, reply);
    if (verbose)
        printf ("  %s: %s\n", reply->port_mapping, reply->port_mapping_error);
    assert (streq (reply->port_mapping, "failed") && strstr (reply->port_mapping_error, "no gateway"));
    assert (*reply->port_mapping_external == 0 && reply->port_mapping_lifetime_left == -1);
    //  Failed, and the address moves (a new network): a new attempt at once,
    //  not after the retry delay
    uint64_t failures_before, failures_after;
    portmap_counters (pm->pm, NULL, NULL, &failures_before);
    snprintf (pm->local_seen, sizeof pm->local_seen, "192.0.2.1");
    s_test_run (loop, &t, 1, 150);
    portmap_counters (pm->pm, NULL, NULL, &failures_after);
    assert (pm->restarts == 1 && failures_after > failures_before);
    //  Failed again, and a route changes at the same address (the default
    //  route of a new address came after it): tried again at once too, while
    //  the periodic check alone leaves a failure to its retry delay
    s_test_run (loop, &t, 1, 200);
    assert (pm->restarts == 1);
    nat_portmap_netchange (pm);
    s_test_run (loop, &t, 1, 150);
    portmap_counters (pm->pm, NULL, NULL, &failures_before);
    assert (pm->restarts == 2 && failures_before > failures_after);
    nat_portmap_event (pm, &event);
    assert (*event.external == 0 && event.local_port == 51820);
    nat_portmap_destroy (&pm);
    free (reply);
    bus_loop_destroy (&loop);
}
