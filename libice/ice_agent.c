/*  ice_agent: libnice's ICE for every peer of a node, on the caller's loop (see
    the header, and docs/ice.md for the design and the measurements). */
#include "ice_agent.h"

#include <nice/agent.h>
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char ip [ICE_CAND_ADDR_MAX];
    uint16_t port;
    char *username, *password;
} s_turn_t;

typedef struct {
    ice_agent_t *owner;
    uint64_t id;
    uint32_t generation;            //  one per session (restart): stale events are dropped
    NiceAgent *agent;
    guint stream;
    bool controlling;
    ice_state_t state;
    bool have_remote_creds;
    char remote_ufrag [ICE_CRED_MAX + 1], remote_pwd [ICE_CRED_MAX + 1];
    GSList *pending;                //  remote NiceCandidate * waiting for the credentials
    size_t pending_count;
    bool pending_eoc;
    bool selected;
    ice_cand_type_t local_type, remote_type;
    NiceAddress selected_remote;
    unsigned mapped;                //  local mapped candidates made (foundations)
    bool taken;                     //  the caller took the selected socket
} s_peer_t;

typedef struct {
    ice_event_t ev;
    uint32_t generation;
    char *text, *local, *remote;
} s_event_t;

struct _ice_agent_t {
    uint64_t own_id;
    ice_agent_event_fn *fn;
    void *arg;
    ice_agent_recv_fn *recv_fn;
    void *recv_arg;
    bool verbose;
    GMainContext *ctx;
    //  Configuration for new sessions
    bool have_stun;
    char stun_ip [ICE_CAND_ADDR_MAX];
    uint16_t stun_port;
    s_turn_t turn [ICE_AGENT_MAX_TURN];
    size_t turn_count;
    char local [ICE_AGENT_MAX_LOCAL][ICE_CAND_ADDR_MAX];
    size_t local_count;
    //  Peers
    s_peer_t **peers;
    size_t peer_count, peer_max;
    //  Events waiting for dispatch
    zlist_t *events;
    //  Agents of removed sessions, releasing their TURN allocations
    zlist_t *closing;
    //  The context's poll set, as of the last prepare
    GPollFD *fds;
    int fd_count, fd_max;
    gint max_priority;
    int timeout;
    bool prepared;
    bool busy;                      //  inside check/dispatch/delivery: no re-prepare
    //  bus_loop integration
    bus_loop_t *loop;
    zmq_pollitem_t *watched;
    size_t watched_count, watched_max;
    int timer_id;
};

static int
s_fail (char *err, size_t errsize, const char *fmt, ...)
{
    if (err && errsize) {
        va_list args;
        va_start (args, fmt);
        vsnprintf (err, errsize, fmt, args);
        va_end (args);
    }
    return -1;
}

static const char *s_state_names [] = {
    "new", "gathering", "connecting", "connected", "ready", "failed", "disconnected"
};

const char *
ice_state_name (ice_state_t state)
{
    return (unsigned) state < sizeof s_state_names / sizeof s_state_names [0] ? s_state_names [state] : "?";
}

static ice_state_t
s_state_from_nice (guint state)
{
    switch (state) {
        case NICE_COMPONENT_STATE_GATHERING:    return ICE_STATE_GATHERING;
        case NICE_COMPONENT_STATE_CONNECTING:   return ICE_STATE_CONNECTING;
        case NICE_COMPONENT_STATE_CONNECTED:    return ICE_STATE_CONNECTED;
        case NICE_COMPONENT_STATE_READY:        return ICE_STATE_READY;
        case NICE_COMPONENT_STATE_FAILED:       return ICE_STATE_FAILED;
        default:                                return ICE_STATE_DISCONNECTED;
    }
}

//  "ip:port" or "[ip6]:port" of a libnice address
static void
s_addr_text (const NiceAddress *addr, char *buf, size_t size)
{
    char ip [NICE_ADDRESS_STRING_LEN];
    nice_address_to_string (addr, ip);
    if (nice_address_ip_version (addr) == 6)
        snprintf (buf, size, "[%s]:%u", ip, nice_address_get_port (addr));
    else
        snprintf (buf, size, "%s:%u", ip, nice_address_get_port (addr));
}

static s_peer_t *
s_peer_find (ice_agent_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->peer_count; i++)
        if (self->peers [i]->id == id)
            return self->peers [i];
    return NULL;
}

static void
s_queue (ice_agent_t *self, s_peer_t *peer, ice_event_t *ev, const char *text, const char *local, const char *remote)
{
    s_event_t *e = (s_event_t *) calloc (1, sizeof *e);
    assert (e);
    e->ev = *ev;
    e->ev.peer = peer->id;
    e->generation = peer->generation;
    e->text = text ? strdup (text) : NULL;
    e->local = local ? strdup (local) : NULL;
    e->remote = remote ? strdup (remote) : NULL;
    zlist_append (self->events, e);
}

static void
s_event_free (s_event_t *e)
{
    free (e->text);
    free (e->local);
    free (e->remote);
    free (e);
}

// ---------------------------------------------------------------------------
//  libnice's signals (emitted from dispatch or from inside a libnice call):
//  they only queue events

//  A libnice candidate in our text form. 0, or -1 (not one we signal).
static int
s_cand_from_nice (const NiceCandidate *nc, ice_cand_t *c)
{
    if (nc->transport != NICE_CANDIDATE_TRANSPORT_UDP || (unsigned) nc->type > 3)
        return -1;
    memset (c, 0, sizeof *c);
    snprintf (c->foundation, sizeof c->foundation, "%s", nc->foundation);
    c->component = nc->component_id;
    c->priority = nc->priority;
    char ip [NICE_ADDRESS_STRING_LEN];
    nice_address_to_string (&nc->addr, ip);
    snprintf (c->addr, sizeof c->addr, "%s", ip);
    c->family = nice_address_ip_version (&nc->addr) == 6 ? AF_INET6 : AF_INET;
    c->port = (uint16_t) nice_address_get_port (&nc->addr);
    c->type = (ice_cand_type_t) nc->type;
    if (nc->type == NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE && nice_address_is_valid (&nc->base_addr)) {
        nice_address_to_string (&nc->base_addr, ip);
        snprintf (c->raddr, sizeof c->raddr, "%s", ip);
        c->rport = (uint16_t) nice_address_get_port (&nc->base_addr);
        c->has_related = true;
    }
    return 0;
}

static void
s_on_candidate (NiceAgent *agent, NiceCandidate *nc, gpointer data)
{
    s_peer_t *peer = (s_peer_t *) data;
    ice_cand_t c;
    char text [ICE_CAND_TEXT_MAX + 1];
    if (s_cand_from_nice (nc, &c) || ice_cand_format (&c, text, sizeof text) < 0)
        return;
    ice_event_t ev = { .type = ICE_EVENT_CANDIDATE, .text = NULL };
    s_queue (peer->owner, peer, &ev, text, NULL, NULL);
}

static void
s_on_gathering_done (NiceAgent *agent, guint stream, gpointer data)
{
    s_peer_t *peer = (s_peer_t *) data;
    ice_event_t ev = { .type = ICE_EVENT_GATHERING_DONE };
    s_queue (peer->owner, peer, &ev, NULL, NULL, NULL);
}

static void
s_on_state (NiceAgent *agent, guint stream, guint component, guint state, gpointer data)
{
    s_peer_t *peer = (s_peer_t *) data;
    peer->state = s_state_from_nice (state);
    ice_event_t ev = { .type = ICE_EVENT_STATE, .state = peer->state };
    s_queue (peer->owner, peer, &ev, NULL, NULL, NULL);
    if (peer->state == ICE_STATE_FAILED) {
        ev.type = ICE_EVENT_FAILED;
        s_queue (peer->owner, peer, &ev, NULL, NULL, NULL);
    }
}

static void
s_on_selected (NiceAgent *agent, guint stream, guint component, NiceCandidate *local,
               NiceCandidate *remote, gpointer data)
{
    s_peer_t *peer = (s_peer_t *) data;
    peer->selected = true;
    peer->local_type = (ice_cand_type_t) local->type;
    peer->remote_type = (ice_cand_type_t) remote->type;
    peer->selected_remote = remote->addr;
    char l [80], r [80];
    s_addr_text (&local->addr, l, sizeof l);
    s_addr_text (&remote->addr, r, sizeof r);
    ice_event_t ev = { .type = ICE_EVENT_SELECTED, .local_type = peer->local_type,
                       .remote_type = peer->remote_type };
    s_queue (peer->owner, peer, &ev, NULL, l, r);
}

static void
s_on_recv (NiceAgent *agent, guint stream, guint component, guint len, gchar *buf, gpointer data)
{
    s_peer_t *peer = (s_peer_t *) data;
    ice_agent_t *self = peer->owner;
    if (self->recv_fn)
        self->recv_fn (self, peer->id, (const uint8_t *) buf, len, self->recv_arg);
}

static void
s_on_recv_discard (NiceAgent *agent, guint stream, guint component, guint len, gchar *buf, gpointer data)
{
}

// ---------------------------------------------------------------------------
//  Sessions

static void s_loop_forget (ice_agent_t *self);

//  A closed agent (nice_agent_close_async done: TURN allocations released)
static void
s_on_closed (GObject *source, GAsyncResult *result, gpointer data)
{
    ice_agent_t *self = (ice_agent_t *) data;
    zlist_remove (self->closing, source);
    s_loop_forget (self);
    g_object_unref (source);
}

static void
s_session_stop (s_peer_t *peer)
{
    ice_agent_t *self = peer->owner;
    if (peer->agent) {
        //  Nothing of libnice may call back with peer after this: the peer
        //  struct may be freed while a closing agent still receives
        g_signal_handlers_disconnect_by_data (peer->agent, peer);
        //  Not NULL: that would pause reception, and a closing agent must
        //  still read the TURN server's answers (and nobody else would read
        //  its socket: a descriptor ready for ever)
        nice_agent_attach_recv (peer->agent, peer->stream, 1, self->ctx, s_on_recv_discard, NULL);
        if (peer->taken) {
            //  The caller has the socket: libnice must let go now, and cannot
            //  release a TURN allocation made from it (it expires on the
            //  server). Stop watching before libnice closes its descriptors:
            //  epoll keys a registration by the open file, which the caller's
            //  dup keeps open, so a DEL by number afterwards could not remove it.
            s_loop_forget (self);
            nice_agent_remove_stream (peer->agent, peer->stream);
            g_object_unref (peer->agent);
        }
        else {
            //  Release the TURN allocations first (libnice sends a zero-lifetime
            //  refresh); the agent goes when that is done (s_on_closed)
            zlist_append (self->closing, peer->agent);
            //  Its GTask completes in the thread-default context of this call:
            //  ours, not glib's global one that nobody runs here
            g_main_context_push_thread_default (self->ctx);
            nice_agent_close_async (peer->agent, s_on_closed, self);
            g_main_context_pop_thread_default (self->ctx);
        }
        peer->agent = NULL;
    }
    g_slist_free_full (peer->pending, (GDestroyNotify) nice_candidate_free);
    peer->pending = NULL;
    peer->pending_count = 0;
    peer->pending_eoc = false;
    peer->have_remote_creds = false;
    peer->selected = false;
    peer->taken = false;
    peer->state = ICE_STATE_NEW;
    peer->mapped = 0;
}

static int
s_session_start (ice_agent_t *self, s_peer_t *peer, char *err, size_t errsize)
{
    peer->generation++;
    NiceAgent *agent = nice_agent_new_full (self->ctx, NICE_COMPATIBILITY_RFC5245,
                                            NICE_AGENT_OPTION_ICE_TRICKLE | NICE_AGENT_OPTION_REGULAR_NOMINATION);
    if (!agent)
        return s_fail (err, errsize, "libnice: cannot create an agent");
    g_object_set (agent, "controlling-mode", (gboolean) peer->controlling, "ice-tcp", FALSE, "ice-udp", TRUE, NULL);
    //  Port mapping is ours (miniupnpc, libnatpmp), not libnice's
    if (g_object_class_find_property (G_OBJECT_GET_CLASS (agent), "upnp"))
        g_object_set (agent, "upnp", FALSE, NULL);
    if (self->have_stun)
        g_object_set (agent, "stun-server", self->stun_ip, "stun-server-port", (guint) self->stun_port, NULL);
    for (size_t i = 0; i < self->local_count; i++) {
        NiceAddress addr;
        nice_address_init (&addr);
        if (!nice_address_set_from_string (&addr, self->local [i]) || !nice_agent_add_local_address (agent, &addr)) {
            g_object_unref (agent);
            return s_fail (err, errsize, "libnice: local address %s refused", self->local [i]);
        }
    }
    g_signal_connect (agent, "new-candidate-full", G_CALLBACK (s_on_candidate), peer);
    g_signal_connect (agent, "candidate-gathering-done", G_CALLBACK (s_on_gathering_done), peer);
    g_signal_connect (agent, "component-state-changed", G_CALLBACK (s_on_state), peer);
    g_signal_connect (agent, "new-selected-pair-full", G_CALLBACK (s_on_selected), peer);
    guint stream = nice_agent_add_stream (agent, 1);
    if (stream == 0) {
        g_object_unref (agent);
        return s_fail (err, errsize, "libnice: cannot add a stream");
    }
    for (size_t i = 0; i < self->turn_count; i++)
        nice_agent_set_relay_info (agent, stream, 1, self->turn [i].ip, self->turn [i].port,
                                   self->turn [i].username, self->turn [i].password, NICE_RELAY_TYPE_TURN_UDP);
    nice_agent_attach_recv (agent, stream, 1, self->ctx, s_on_recv, peer);
    peer->agent = agent;
    peer->stream = stream;
    peer->state = ICE_STATE_GATHERING;
    if (!nice_agent_gather_candidates (agent, stream)) {
        s_session_stop (peer);
        return s_fail (err, errsize, "libnice: gathering failed (no usable local address?)");
    }
    return 0;
}

// ---------------------------------------------------------------------------
//  The poll set of the context

static short
s_to_zmq (gushort events)
{
    short out = 0;
    if (events & (G_IO_IN | G_IO_PRI))
        out |= ZMQ_POLLIN;
    if (events & G_IO_OUT)
        out |= ZMQ_POLLOUT;
    if (events & (G_IO_ERR | G_IO_HUP | G_IO_NVAL))
        out |= ZMQ_POLLERR;
    return out;
}

static gushort
s_from_zmq (short revents, gushort wanted)
{
    gushort out = 0;
    if (revents & ZMQ_POLLIN)
        out |= G_IO_IN | G_IO_PRI;
    if (revents & ZMQ_POLLOUT)
        out |= G_IO_OUT;
    if (revents & ZMQ_POLLERR)
        out |= G_IO_ERR | G_IO_HUP;
    return out & (wanted | G_IO_ERR | G_IO_HUP | G_IO_NVAL);
}

static void
s_prepare (ice_agent_t *self)
{
    g_main_context_prepare (self->ctx, &self->max_priority);
    gint timeout = -1;
    int n;
    while ((n = g_main_context_query (self->ctx, self->max_priority, &timeout, self->fds, self->fd_max))
           > self->fd_max) {
        self->fd_max = n + 8;
        self->fds = (GPollFD *) realloc (self->fds, (size_t) self->fd_max * sizeof (GPollFD));
        assert (self->fds);
    }
    self->fd_count = n;
    self->timeout = zlist_size (self->events) ? 0 : timeout;
    self->prepared = true;
}

static void
s_deliver (ice_agent_t *self)
{
    s_event_t *e;
    while ((e = (s_event_t *) zlist_pop (self->events))) {
        s_peer_t *peer = s_peer_find (self, e->ev.peer);
        if (peer && peer->generation == e->generation && self->fn) {
            e->ev.text = e->text;
            e->ev.local = e->local;
            e->ev.remote = e->remote;
            self->fn (self, &e->ev, self->arg);
        }
        s_event_free (e);
    }
}

static void
s_check_dispatch (ice_agent_t *self)
{
    if (!self->prepared)
        s_prepare (self);
    self->busy = true;
    if (g_main_context_check (self->ctx, self->max_priority, self->fds, self->fd_count))
        g_main_context_dispatch (self->ctx);
    self->prepared = false;
    s_deliver (self);
    self->busy = false;
}

// ---------------------------------------------------------------------------
//  bus_loop integration: the context's descriptors as pollers, its timeout as
//  a one-shot timer, both redone after every turn

static int s_on_loop_fd (bus_loop_t *loop, zmq_pollitem_t *item, void *arg);
static int s_on_loop_timer (bus_loop_t *loop, int timer_id, void *arg);

//  Ends every poller (a session is about to close its sockets); the next
//  update adds back the ones still in the context
static void
s_loop_forget (ice_agent_t *self)
{
    if (!self->loop)
        return;
    for (size_t w = 0; w < self->watched_count; w++)
        bus_loop_poller_end (self->loop, &self->watched [w]);
    self->watched_count = 0;
}

static void
s_loop_update (ice_agent_t *self)
{
    //  The wanted set, one entry per descriptor
    short want [self->fd_count + 1];
    for (int i = 0; i < self->fd_count; i++) {
        want [i] = s_to_zmq (self->fds [i].events) & (ZMQ_POLLIN | ZMQ_POLLOUT);
        for (int j = 0; j < i; j++)
            if (self->fds [j].fd == self->fds [i].fd) {
                want [j] |= want [i];
                want [i] = -1;
                break;
            }
    }
    //  Drop what is gone or changed
    for (size_t w = 0; w < self->watched_count; ) {
        bool keep = false;
        for (int i = 0; i < self->fd_count; i++)
            if (want [i] >= 0 && self->fds [i].fd == self->watched [w].fd && want [i] == self->watched [w].events)
                keep = true;
        if (keep)
            w++;
        else {
            bus_loop_poller_end (self->loop, &self->watched [w]);
            self->watched [w] = self->watched [--self->watched_count];
        }
    }
    //  Add what is new
    for (int i = 0; i < self->fd_count; i++) {
        if (want [i] <= 0)
            continue;
        bool have = false;
        for (size_t w = 0; w < self->watched_count; w++)
            if (self->watched [w].fd == self->fds [i].fd)
                have = true;
        if (have)
            continue;
        if (self->watched_count == self->watched_max) {
            self->watched_max = self->watched_max ? 2 * self->watched_max : 16;
            self->watched = (zmq_pollitem_t *) realloc (self->watched, self->watched_max * sizeof (zmq_pollitem_t));
            assert (self->watched);
        }
        zmq_pollitem_t item = { NULL, self->fds [i].fd, want [i], 0 };
        if (bus_loop_poller (self->loop, &item, s_on_loop_fd, self) == 0) {
            bus_loop_poller_set_tolerant (self->loop, &item);
            self->watched [self->watched_count++] = item;
        }
    }
    if (self->timer_id > 0)
        bus_loop_timer_end (self->loop, self->timer_id);
    self->timer_id = 0;
    if (self->timeout >= 0)
        self->timer_id = bus_loop_timer (self->loop, (size_t) self->timeout, 1, s_on_loop_timer, self);
}

static int
s_on_loop_fd (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    ice_agent_t *self = (ice_agent_t *) arg;
    if (!self->prepared)
        s_prepare (self);
    for (int i = 0; i < self->fd_count; i++)
        if (self->fds [i].fd == item->fd)
            self->fds [i].revents = s_from_zmq (item->revents, self->fds [i].events);
    s_check_dispatch (self);
    s_prepare (self);
    s_loop_update (self);
    return 0;
}

static int
s_on_loop_timer (bus_loop_t *loop, int timer_id, void *arg)
{
    ice_agent_t *self = (ice_agent_t *) arg;
    if (timer_id == self->timer_id)
        self->timer_id = 0;
    s_check_dispatch (self);
    s_prepare (self);
    s_loop_update (self);
    return 0;
}

//  After a call that may have changed the context's sources or queued events:
//  bring the loop's view up to date (not from inside a dispatch: that turn ends
//  with an update anyway).
static void
s_sync (ice_agent_t *self)
{
    if (self->busy || !self->loop)
        return;
    s_prepare (self);
    s_loop_update (self);
}

int
ice_agent_pollfds (ice_agent_t *self, zmq_pollitem_t *items, size_t max, int *timeout_ms)
{
    assert (self);
    s_prepare (self);
    for (int i = 0; i < self->fd_count && (size_t) i < max; i++) {
        items [i].socket = NULL;
        items [i].fd = self->fds [i].fd;
        items [i].events = s_to_zmq (self->fds [i].events) & (ZMQ_POLLIN | ZMQ_POLLOUT);
        items [i].revents = 0;
    }
    if (timeout_ms)
        *timeout_ms = self->timeout;
    return self->fd_count;
}

void
ice_agent_dispatch (ice_agent_t *self, zmq_pollitem_t *items, size_t count)
{
    assert (self);
    if (!self->prepared)
        s_prepare (self);
    for (size_t k = 0; k < count; k++)
        for (int i = 0; i < self->fd_count; i++)
            if (self->fds [i].fd == items [k].fd)
                self->fds [i].revents |= s_from_zmq (items [k].revents, self->fds [i].events);
    s_check_dispatch (self);
}

int
ice_agent_attach (ice_agent_t *self, bus_loop_t *loop)
{
    assert (self && loop);
    if (self->loop)
        return -1;
    self->loop = loop;
    s_sync (self);
    return 0;
}

// ---------------------------------------------------------------------------
//  The class

ice_agent_t *
ice_agent_new (uint64_t own_id, ice_agent_event_fn *fn, void *arg)
{
    ice_agent_t *self = (ice_agent_t *) calloc (1, sizeof *self);
    assert (self);
    self->own_id = own_id;
    self->fn = fn;
    self->arg = arg;
    self->ctx = g_main_context_new ();
    //  This thread owns the context for good: every prepare/check/dispatch is ours
    assert (g_main_context_acquire (self->ctx));
    self->events = zlist_new ();
    self->closing = zlist_new ();
    self->timeout = -1;
    return self;
}

static gboolean
s_on_close_deadline (gpointer data)
{
    *(bool *) data = true;
    return G_SOURCE_REMOVE;
}

void
ice_agent_destroy (ice_agent_t **self_p)
{
    assert (self_p);
    ice_agent_t *self = *self_p;
    if (!self)
        return;
    s_loop_forget (self);
    for (size_t i = 0; i < self->peer_count; i++) {
        s_session_stop (self->peers [i]);
        free (self->peers [i]);
    }
    free (self->peers);
    //  Give the closing agents up to ICE_AGENT_CLOSE_MS to release their TURN
    //  allocations, then drop them anyway
    bool expired = false;
    GSource *deadline = g_timeout_source_new (ICE_AGENT_CLOSE_MS);
    g_source_set_callback (deadline, s_on_close_deadline, &expired, NULL);
    g_source_attach (deadline, self->ctx);
    while (zlist_size (self->closing) && !expired)
        g_main_context_iteration (self->ctx, TRUE);
    g_source_destroy (deadline);
    g_source_unref (deadline);
    NiceAgent *agent;
    while ((agent = (NiceAgent *) zlist_pop (self->closing)))
        g_object_unref (agent);
    //  What the agents left (a bounded number of turns: a source whose
    //  descriptor nobody reads any more would stay ready for ever)
    for (int turn = 0; turn < 16 && g_main_context_pending (self->ctx); turn++)
        g_main_context_iteration (self->ctx, FALSE);
    zlist_destroy (&self->closing);
    if (self->loop) {
        if (self->timer_id > 0)
            bus_loop_timer_end (self->loop, self->timer_id);
    }
    free (self->watched);
    s_event_t *e;
    while ((e = (s_event_t *) zlist_pop (self->events)))
        s_event_free (e);
    zlist_destroy (&self->events);
    ice_agent_clear_turn (self);
    g_main_context_release (self->ctx);
    g_main_context_unref (self->ctx);
    free (self->fds);
    free (self);
    *self_p = NULL;
}

void
ice_agent_set_recv (ice_agent_t *self, ice_agent_recv_fn *fn, void *arg)
{
    self->recv_fn = fn;
    self->recv_arg = arg;
}

void
ice_agent_set_verbose (ice_agent_t *self, bool verbose)
{
    self->verbose = verbose;
}

int
ice_agent_set_stun (ice_agent_t *self, const char *server, char *err, size_t errsize)
{
    if (!server) {
        self->have_stun = false;
        return 0;
    }
    if (ice_cand_parse_addr (server, self->stun_ip, &self->stun_port, NULL, err, errsize)) {
        self->have_stun = false;
        return -1;
    }
    self->have_stun = true;
    return 0;
}

int
ice_agent_add_turn (ice_agent_t *self, const char *server, const char *username,
                    const char *password, char *err, size_t errsize)
{
    if (self->turn_count == ICE_AGENT_MAX_TURN)
        return s_fail (err, errsize, "turn: at most %d servers", ICE_AGENT_MAX_TURN);
    if (!username || !*username || !password || !*password)
        return s_fail (err, errsize, "turn: username and password are required");
    if (strlen (username) > 512 || strlen (password) > 512)
        return s_fail (err, errsize, "turn: username or password longer than 512 bytes");
    s_turn_t *t = &self->turn [self->turn_count];
    if (ice_cand_parse_addr (server, t->ip, &t->port, NULL, err, errsize))
        return -1;
    t->username = strdup (username);
    t->password = strdup (password);
    self->turn_count++;
    return 0;
}

void
ice_agent_clear_turn (ice_agent_t *self)
{
    for (size_t i = 0; i < self->turn_count; i++) {
        free (self->turn [i].username);
        free (self->turn [i].password);
    }
    self->turn_count = 0;
}

int
ice_agent_add_local_address (ice_agent_t *self, const char *ip, char *err, size_t errsize)
{
    if (self->local_count == ICE_AGENT_MAX_LOCAL)
        return s_fail (err, errsize, "local address: at most %d", ICE_AGENT_MAX_LOCAL);
    char text [ICE_CAND_ADDR_MAX + 8];
    snprintf (text, sizeof text, strchr (ip, ':') ? "[%s]:1" : "%s:1", ip);
    uint16_t port;
    if (strlen (ip) >= ICE_CAND_ADDR_MAX
        || ice_cand_parse_addr (text, self->local [self->local_count], &port, NULL, err, errsize))
        return s_fail (err, errsize, "local address: '%.64s' is not an IP literal", ip);
    self->local_count++;
    return 0;
}

void
ice_agent_clear_local_addresses (ice_agent_t *self)
{
    self->local_count = 0;
}

int
ice_agent_add_peer (ice_agent_t *self, uint64_t id, char *err, size_t errsize)
{
    if (id == self->own_id)
        return s_fail (err, errsize, "peer %llu is this node", (unsigned long long) id);
    if (s_peer_find (self, id))
        return s_fail (err, errsize, "peer %llu: ICE already running", (unsigned long long) id);
    if (self->peer_count == ICE_AGENT_MAX_PEERS)
        return s_fail (err, errsize, "at most %d peers", ICE_AGENT_MAX_PEERS);
    s_peer_t *peer = (s_peer_t *) calloc (1, sizeof *peer);
    assert (peer);
    peer->owner = self;
    peer->id = id;
    //  The rule: the lower peer id controls
    peer->controlling = self->own_id < id;
    if (s_session_start (self, peer, err, errsize)) {
        free (peer);
        s_sync (self);
        return -1;
    }
    if (self->peer_count == self->peer_max) {
        self->peer_max = self->peer_max ? 2 * self->peer_max : 8;
        self->peers = (s_peer_t **) realloc (self->peers, self->peer_max * sizeof (s_peer_t *));
        assert (self->peers);
    }
    self->peers [self->peer_count++] = peer;
    s_sync (self);
    return 0;
}

void
ice_agent_remove_peer (ice_agent_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->peer_count; i++)
        if (self->peers [i]->id == id) {
            s_peer_t *peer = self->peers [i];
            s_session_stop (peer);
            free (peer);
            self->peers [i] = self->peers [--self->peer_count];
            break;
        }
    s_sync (self);
}

int
ice_agent_restart (ice_agent_t *self, uint64_t id, char *err, size_t errsize)
{
    s_peer_t *peer = s_peer_find (self, id);
    if (!peer)
        return s_fail (err, errsize, "peer %llu: no ICE session", (unsigned long long) id);
    s_session_stop (peer);
    int rc = s_session_start (self, peer, err, errsize);
    s_sync (self);
    return rc;
}

bool
ice_agent_has_peer (ice_agent_t *self, uint64_t id)
{
    return s_peer_find (self, id) != NULL;
}

bool
ice_agent_controlling (ice_agent_t *self, uint64_t id)
{
    s_peer_t *peer = s_peer_find (self, id);
    return peer && peer->controlling;
}

ice_state_t
ice_agent_state (ice_agent_t *self, uint64_t id)
{
    s_peer_t *peer = s_peer_find (self, id);
    return peer ? peer->state : ICE_STATE_NEW;
}

int
ice_agent_local_credentials (ice_agent_t *self, uint64_t id, char *ufrag, char *pwd)
{
    s_peer_t *peer = s_peer_find (self, id);
    gchar *u = NULL, *p = NULL;
    if (!peer || !peer->agent || !nice_agent_get_local_credentials (peer->agent, peer->stream, &u, &p))
        return -1;
    snprintf (ufrag, ICE_CRED_MAX + 1, "%s", u);
    snprintf (pwd, ICE_CRED_MAX + 1, "%s", p);
    g_free (u);
    g_free (p);
    return 0;
}

//  Hands the pending candidates (and end-of-candidates) to libnice
static int
s_flush_pending (s_peer_t *peer, char *err, size_t errsize)
{
    int rc = 0;
    if (peer->pending) {
        GSList *list = g_slist_reverse (peer->pending);
        int added = nice_agent_set_remote_candidates (peer->agent, peer->stream, 1, list);
        if (added < (int) peer->pending_count)
            rc = s_fail (err, errsize, "libnice accepted %d of %zu remote candidates", added < 0 ? 0 : added,
                         peer->pending_count);
        g_slist_free_full (list, (GDestroyNotify) nice_candidate_free);
        peer->pending = NULL;
        peer->pending_count = 0;
    }
    if (peer->pending_eoc) {
        nice_agent_peer_candidate_gathering_done (peer->agent, peer->stream);
        peer->pending_eoc = false;
    }
    return rc;
}

int
ice_agent_set_remote_credentials (ice_agent_t *self, uint64_t id, const char *ufrag,
                                  const char *pwd, char *err, size_t errsize)
{
    s_peer_t *peer = s_peer_find (self, id);
    if (!peer)
        return s_fail (err, errsize, "peer %llu: no ICE session", (unsigned long long) id);
    if (ice_cand_check_credentials (ufrag, pwd, err, errsize))
        return -1;
    int restarted = 0;
    if (peer->have_remote_creds) {
        if (strcmp (ufrag, peer->remote_ufrag) == 0 && strcmp (pwd, peer->remote_pwd) == 0)
            return 0;
        //  The peer restarted: so do we (RFC 8445 section 9)
        s_session_stop (peer);
        if (s_session_start (self, peer, err, errsize)) {
            s_sync (self);
            return -1;
        }
        restarted = 1;
    }
    if (!nice_agent_set_remote_credentials (peer->agent, peer->stream, ufrag, pwd)) {
        s_sync (self);
        return s_fail (err, errsize, "libnice refused the remote credentials");
    }
    snprintf (peer->remote_ufrag, sizeof peer->remote_ufrag, "%s", ufrag);
    snprintf (peer->remote_pwd, sizeof peer->remote_pwd, "%s", pwd);
    peer->have_remote_creds = true;
    int rc = s_flush_pending (peer, err, errsize);
    s_sync (self);
    return rc ? rc : restarted;
}

static int
s_add_remote (ice_agent_t *self, s_peer_t *peer, const ice_cand_t *c, char *err, size_t errsize)
{
    if (c->component != 1)
        return s_fail (err, errsize, "candidate: component %u, only 1 is used", c->component);
    if (peer->pending_count == ICE_AGENT_PENDING_MAX)
        return s_fail (err, errsize, "candidate: more than %d waiting for the peer's credentials",
                       ICE_AGENT_PENDING_MAX);
    NiceCandidate *nc = nice_candidate_new ((NiceCandidateType) c->type);
    nc->transport = NICE_CANDIDATE_TRANSPORT_UDP;
    nc->stream_id = peer->stream;
    nc->component_id = 1;
    nc->priority = c->priority;
    g_strlcpy (nc->foundation, c->foundation, NICE_CANDIDATE_MAX_FOUNDATION);
    if (!nice_address_set_from_string (&nc->addr, c->addr)) {
        nice_candidate_free (nc);
        return s_fail (err, errsize, "candidate: libnice cannot read the address %s", c->addr);
    }
    nice_address_set_port (&nc->addr, c->port);
    if (c->has_related && nice_address_set_from_string (&nc->base_addr, c->raddr))
        nice_address_set_port (&nc->base_addr, c->rport);
    peer->pending = g_slist_prepend (peer->pending, nc);
    peer->pending_count++;
    int rc = 0;
    if (peer->have_remote_creds)
        rc = s_flush_pending (peer, err, errsize);
    s_sync (self);
    return rc;
}

int
ice_agent_add_remote_candidate (ice_agent_t *self, uint64_t id, const char *text, char *err, size_t errsize)
{
    s_peer_t *peer = s_peer_find (self, id);
    if (!peer)
        return s_fail (err, errsize, "peer %llu: no ICE session", (unsigned long long) id);
    ice_cand_t c;
    if (ice_cand_parse (text, &c, err, errsize))
        return -1;
    return s_add_remote (self, peer, &c, err, errsize);
}

int
ice_agent_end_of_candidates (ice_agent_t *self, uint64_t id)
{
    s_peer_t *peer = s_peer_find (self, id);
    if (!peer)
        return -1;
    peer->pending_eoc = true;
    if (peer->have_remote_creds)
        s_flush_pending (peer, NULL, 0);
    s_sync (self);
    return 0;
}

//  RFC 8445 section 5.1.2.1 with local preference 65535 (observed) / 65534 (mapped)
#define S_SRFLX_PRIORITY(localpref) ((100u << 24) | ((uint32_t) (localpref) << 8) | 255u)

int
ice_agent_add_remote_observed (ice_agent_t *self, uint64_t id, const char *addr, char *err, size_t errsize)
{
    s_peer_t *peer = s_peer_find (self, id);
    if (!peer)
        return s_fail (err, errsize, "peer %llu: no ICE session", (unsigned long long) id);
    ice_cand_t c = { .foundation = "obs", .component = 1, .priority = S_SRFLX_PRIORITY (65535),
                     .type = ICE_CAND_SRFLX };
    if (ice_cand_parse_addr (addr, c.addr, &c.port, &c.family, err, errsize))
        return -1;
    return s_add_remote (self, peer, &c, err, errsize);
}

uint16_t
ice_agent_host_port (ice_agent_t *self, uint64_t id, int family)
{
    s_peer_t *peer = s_peer_find (self, id);
    if (!peer || !peer->agent)
        return 0;
    GSList *list = nice_agent_get_local_candidates (peer->agent, peer->stream, 1);
    uint16_t port = 0;
    for (GSList *i = list; i && !port; i = i->next) {
        NiceCandidate *nc = (NiceCandidate *) i->data;
        if (nc->type == NICE_CANDIDATE_TYPE_HOST && nc->transport == NICE_CANDIDATE_TRANSPORT_UDP
            && nice_address_ip_version (&nc->addr) == (family == AF_INET6 ? 6 : 4))
            port = (uint16_t) nice_address_get_port (&nc->addr);
    }
    g_slist_free_full (list, (GDestroyNotify) nice_candidate_free);
    return port;
}

int
ice_agent_add_local_mapped (ice_agent_t *self, uint64_t id, const char *external, char *err, size_t errsize)
{
    s_peer_t *peer = s_peer_find (self, id);
    if (!peer)
        return s_fail (err, errsize, "peer %llu: no ICE session", (unsigned long long) id);
    ice_cand_t c = { .component = 1, .priority = S_SRFLX_PRIORITY (65534), .type = ICE_CAND_SRFLX };
    if (ice_cand_parse_addr (external, c.addr, &c.port, &c.family, err, errsize))
        return -1;
    //  Its base: our host candidate of that family
    GSList *list = nice_agent_get_local_candidates (peer->agent, peer->stream, 1);
    for (GSList *i = list; i && !c.has_related; i = i->next) {
        NiceCandidate *nc = (NiceCandidate *) i->data;
        if (nc->type == NICE_CANDIDATE_TYPE_HOST && nc->transport == NICE_CANDIDATE_TRANSPORT_UDP
            && nice_address_ip_version (&nc->addr) == (c.family == AF_INET6 ? 6 : 4)) {
            char ip [NICE_ADDRESS_STRING_LEN];
            nice_address_to_string (&nc->addr, ip);
            snprintf (c.raddr, sizeof c.raddr, "%s", ip);
            c.rport = (uint16_t) nice_address_get_port (&nc->addr);
            c.has_related = true;
        }
    }
    g_slist_free_full (list, (GDestroyNotify) nice_candidate_free);
    if (!c.has_related)
        return s_fail (err, errsize, "mapped: no host candidate of that family yet");
    snprintf (c.foundation, sizeof c.foundation, "map%u", ++peer->mapped);
    char text [ICE_CAND_TEXT_MAX + 1];
    assert (ice_cand_format (&c, text, sizeof text) > 0);
    ice_event_t ev = { .type = ICE_EVENT_CANDIDATE };
    s_queue (self, peer, &ev, text, NULL, NULL);
    s_sync (self);
    return 0;
}

int
ice_agent_selected (ice_agent_t *self, uint64_t id, ice_cand_type_t *local_type,
                    ice_cand_type_t *remote_type, struct sockaddr_storage *remote, socklen_t *remote_len)
{
    s_peer_t *peer = s_peer_find (self, id);
    if (!peer || !peer->selected)
        return -1;
    if (local_type)
        *local_type = peer->local_type;
    if (remote_type)
        *remote_type = peer->remote_type;
    if (remote) {
        memset (remote, 0, sizeof *remote);
        nice_address_copy_to_sockaddr (&peer->selected_remote, (struct sockaddr *) remote);
        if (remote_len)
            *remote_len = remote->ss_family == AF_INET6 ? sizeof (struct sockaddr_in6) : sizeof (struct sockaddr_in);
    }
    return 0;
}

int
ice_agent_take_socket (ice_agent_t *self, uint64_t id, int *fd, struct sockaddr_storage *remote,
                       socklen_t *remote_len, char *err, size_t errsize)
{
    s_peer_t *peer = s_peer_find (self, id);
    if (!peer || !peer->agent)
        return s_fail (err, errsize, "peer %llu: no ICE session", (unsigned long long) id);
    if (!peer->selected || (peer->state != ICE_STATE_READY && peer->state != ICE_STATE_CONNECTED))
        return s_fail (err, errsize, "peer %llu: no pair selected (state %s)", (unsigned long long) id,
                       ice_state_name (peer->state));
    if (peer->local_type == ICE_CAND_RELAY)
        return ICE_AGENT_RELAYED;
    GSocket *socket = nice_agent_get_selected_socket (peer->agent, peer->stream, 1);
    if (!socket)
        return s_fail (err, errsize, "peer %llu: libnice has no plain socket for the selected pair",
                       (unsigned long long) id);
    int dup_fd = fcntl (g_socket_get_fd (socket), F_DUPFD_CLOEXEC, 3);
    g_object_unref (socket);
    if (dup_fd < 0)
        return s_fail (err, errsize, "dup: %s", strerror (errno));
    int flags = fcntl (dup_fd, F_GETFL);
    fcntl (dup_fd, F_SETFL, flags | O_NONBLOCK);
    *fd = dup_fd;
    peer->taken = true;
    ice_agent_selected (self, id, NULL, NULL, remote, remote_len);
    return 0;
}

int
ice_agent_send (ice_agent_t *self, uint64_t id, const void *data, size_t size)
{
    s_peer_t *peer = s_peer_find (self, id);
    if (!peer || !peer->agent || size > 65535)
        return -1;
    int rc = nice_agent_send (peer->agent, peer->stream, 1, (guint) size, (const gchar *) data);
    s_sync (self);
    return rc;
}

// ---------------------------------------------------------------------------
//  Self test: two agents in this process on loopback, driven by one bus_loop

typedef struct {
    ice_agent_t *agent [2];
    uint64_t id [2];
    int ready [2];
    int selected [2];
    int candidates [2];
    bool creds_given [2];
    bool bad_sent;
    char ufrag [2][ICE_CRED_MAX + 1], pwd [2][ICE_CRED_MAX + 1];
    char local [2][80], remote [2][80];
    bool timed_out;
    bool verbose;
    int64_t started;
    int64_t ready_ms;
    int received [2];
} s_pair_t;

static int
s_side (s_pair_t *t, ice_agent_t *agent)
{
    return agent == t->agent [0] ? 0 : 1;
}

static void
s_test_event (ice_agent_t *agent, const ice_event_t *ev, void *arg)
{
    s_pair_t *t = (s_pair_t *) arg;
    int me = s_side (t, agent), other = 1 - me;
    char err [160];
    if (t->verbose)
        printf ("  [%d] %s %s %s %s\n", me,
                ev->type == ICE_EVENT_CANDIDATE ? "candidate" : ev->type == ICE_EVENT_GATHERING_DONE ? "gathered"
                : ev->type == ICE_EVENT_STATE ? "state" : ev->type == ICE_EVENT_SELECTED ? "selected" : "failed",
                ev->text ? ev->text : ice_state_name (ev->state), ev->local ? ev->local : "",
                ev->remote ? ev->remote : "");
    assert (ev->peer == t->id [other]);
    switch (ev->type) {
        case ICE_EVENT_CANDIDATE:
            t->candidates [me]++;
            assert (ice_agent_add_remote_candidate (t->agent [other], t->id [me], ev->text, err, sizeof err) == 0);
            break;
        case ICE_EVENT_GATHERING_DONE:
            //  Side 1 learns side 0's credentials only now: its candidates waited
            if (me == 0 && !t->creds_given [1]) {
                assert (ice_agent_set_remote_credentials (t->agent [1], t->id [0], t->ufrag [0], t->pwd [0],
                                                          err, sizeof err) == 0);
                t->creds_given [1] = true;
            }
            assert (ice_agent_end_of_candidates (t->agent [other], t->id [me]) == 0);
            break;
        case ICE_EVENT_SELECTED:
            t->selected [me]++;
            snprintf (t->local [me], sizeof t->local [me], "%s", ev->local);
            snprintf (t->remote [me], sizeof t->remote [me], "%s", ev->remote);
            assert (ev->local_type == ICE_CAND_HOST && ev->remote_type == ICE_CAND_HOST);
            break;
        case ICE_EVENT_STATE:
            if (ev->state == ICE_STATE_READY)
                t->ready [me] = 1;
            break;
        case ICE_EVENT_FAILED:
            assert (!"ICE failed on loopback");
    }
}

static void
s_test_recv_cb (ice_agent_t *agent, uint64_t peer, const uint8_t *data, size_t size, void *arg)
{
    s_pair_t *t = (s_pair_t *) arg;
    int me = s_side (t, agent);
    assert (peer == t->id [1 - me] && size == 5 && memcmp (data, "hello", 5) == 0);
    t->received [me]++;
}

static int
s_test_until_received (bus_loop_t *loop, int timer_id, void *arg)
{
    s_pair_t *t = (s_pair_t *) arg;
    return t->received [0] == 3 && t->received [1] == 3 ? -1 : 0;
}

static int
s_test_check (bus_loop_t *loop, int timer_id, void *arg)
{
    s_pair_t *t = (s_pair_t *) arg;
    if (t->ready [0] && t->ready [1]) {
        t->ready_ms = zclock_mono () - t->started;
        return -1;
    }
    return 0;
}

static int
s_test_deadline (bus_loop_t *loop, int timer_id, void *arg)
{
    ((s_pair_t *) arg)->timed_out = true;
    return -1;
}

//  Runs the loop until both sides are READY (or 10 s)
static void
s_test_run (bus_loop_t *loop, s_pair_t *t)
{
    t->ready [0] = t->ready [1] = 0;
    t->timed_out = false;
    t->started = zclock_mono ();
    int check = bus_loop_timer (loop, 5, 0, s_test_check, t);
    int deadline = bus_loop_timer (loop, 10000, 1, s_test_deadline, t);
    bus_loop_start (loop);
    bus_loop_timer_end (loop, check);
    bus_loop_timer_end (loop, deadline);
    assert (!t->timed_out);
}

static void
s_test_exchange_creds (s_pair_t *t, bool delay_side1)
{
    char err [160];
    for (int i = 0; i < 2; i++)
        assert (ice_agent_local_credentials (t->agent [i], t->id [1 - i], t->ufrag [i], t->pwd [i]) == 0);
    assert (ice_agent_set_remote_credentials (t->agent [0], t->id [1], t->ufrag [1], t->pwd [1], err, sizeof err) >= 0);
    t->creds_given [0] = true;
    t->creds_given [1] = false;
    if (!delay_side1) {
        assert (ice_agent_set_remote_credentials (t->agent [1], t->id [0], t->ufrag [0], t->pwd [0], err, sizeof err) >= 0);
        t->creds_given [1] = true;
    }
}

//  Waits up to ms for a datagram on fd that is not STUN; its size, or -1.
//  STUN packets that were queued on the socket before libnice let go of it
//  (a check's retransmission, the first keepalive) are counted and skipped, as
//  nat's demux drops them.
static ssize_t
s_test_recv (int fd, char *buf, size_t size, struct sockaddr_storage *from, int ms, int *stun)
{
    int64_t deadline = zclock_mono () + ms;
    while (true) {
        int left = (int) (deadline - zclock_mono ());
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (left <= 0 || poll (&p, 1, left) != 1)
            return -1;
        socklen_t len = sizeof *from;
        ssize_t n = recvfrom (fd, buf, size, 0, (struct sockaddr *) from, &len);
        if (n >= 20 && (buf [0] & 0xc0) == 0 && memcmp (buf + 4, "\x21\x12\xa4\x42", 4) == 0) {
            (*stun)++;
            continue;
        }
        return n;
    }
}

//  How many descriptors of this process are the socket behind fd
static int
s_test_sharing (int fd)
{
    struct stat mine, other;
    assert (fstat (fd, &mine) == 0);
    int count = 0;
    for (int i = 0; i < 1024; i++)
        if (fstat (i, &other) == 0 && other.st_dev == mine.st_dev && other.st_ino == mine.st_ino)
            count++;
    return count;
}

static bool
s_test_same_addr (const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return memcmp (&((struct sockaddr_in *) a)->sin_addr, &((struct sockaddr_in *) b)->sin_addr, 4) == 0
            && ((struct sockaddr_in *) a)->sin_port == ((struct sockaddr_in *) b)->sin_port;
    return memcmp (&((struct sockaddr_in6 *) a)->sin6_addr, &((struct sockaddr_in6 *) b)->sin6_addr, 16) == 0
        && ((struct sockaddr_in6 *) a)->sin6_port == ((struct sockaddr_in6 *) b)->sin6_port;
}

static void
s_test_loopback (bool verbose, const char *ip)
{
    char err [160];
    bus_loop_t *loop = bus_loop_new ();
    bus_loop_set_nonstop (loop, true);
    s_pair_t t;
    memset (&t, 0, sizeof t);
    t.verbose = verbose;
    t.id [0] = 7;
    t.id [1] = 42;
    for (int i = 0; i < 2; i++) {
        t.agent [i] = ice_agent_new (t.id [i], s_test_event, &t);
        assert (ice_agent_add_local_address (t.agent [i], ip, err, sizeof err) == 0);
        assert (ice_agent_attach (t.agent [i], loop) == 0);
        assert (ice_agent_attach (t.agent [i], loop) == -1);
    }
    for (int i = 0; i < 2; i++)
        assert (ice_agent_add_peer (t.agent [i], t.id [1 - i], err, sizeof err) == 0);
    //  The role rule: the lower id controls
    assert (ice_agent_controlling (t.agent [0], 42) && !ice_agent_controlling (t.agent [1], 7));
    s_test_exchange_creds (&t, true);
    s_test_run (loop, &t);
    if (verbose)
        printf ("  %s: both READY after %lld ms, %d + %d candidates\n", ip, (long long) t.ready_ms,
                t.candidates [0], t.candidates [1]);
    assert (t.candidates [0] >= 1 && t.candidates [1] >= 1);
    assert (strcmp (t.local [0], t.remote [1]) == 0 && strcmp (t.local [1], t.remote [0]) == 0);
    ice_cand_type_t lt, rt;
    assert (ice_agent_selected (t.agent [0], 42, &lt, &rt, NULL, NULL) == 0 && lt == ICE_CAND_HOST && rt == ICE_CAND_HOST);
    assert (ice_agent_state (t.agent [0], 42) == ICE_STATE_READY);
    assert (ice_agent_host_port (t.agent [0], 42, strchr (ip, ':') ? AF_INET6 : AF_INET) > 0);

    //  Data through libnice (what a TURN-relayed pair keeps): 3 datagrams each way
    for (int i = 0; i < 2; i++) {
        ice_agent_set_recv (t.agent [i], s_test_recv_cb, &t);
        for (int k = 0; k < 3; k++)
            assert (ice_agent_send (t.agent [i], t.id [1 - i], "hello", 5) == 5);
    }
    int until = bus_loop_timer (loop, 5, 0, s_test_until_received, &t);
    int deadline = bus_loop_timer (loop, 5000, 1, s_test_deadline, &t);
    bus_loop_start (loop);
    bus_loop_timer_end (loop, until);
    bus_loop_timer_end (loop, deadline);
    assert (!t.timed_out && t.received [0] == 3 && t.received [1] == 3);

    //  ICE restart from side 1: new credentials; side 0 sees them change and restarts
    assert (ice_agent_restart (t.agent [1], 7, err, sizeof err) == 0);
    assert (ice_agent_state (t.agent [1], 7) == ICE_STATE_GATHERING);
    char u [ICE_CRED_MAX + 1], p [ICE_CRED_MAX + 1];
    assert (ice_agent_local_credentials (t.agent [1], 7, u, p) == 0);
    assert (strcmp (u, t.ufrag [1]) != 0);
    assert (ice_agent_set_remote_credentials (t.agent [0], 42, u, p, err, sizeof err) == 1);
    assert (ice_agent_set_remote_credentials (t.agent [0], 42, u, p, err, sizeof err) == 0);
    assert (ice_agent_local_credentials (t.agent [0], 42, t.ufrag [0], t.pwd [0]) == 0);
    assert (ice_agent_set_remote_credentials (t.agent [1], 7, t.ufrag [0], t.pwd [0], err, sizeof err) == 0);
    snprintf (t.ufrag [1], sizeof t.ufrag [1], "%s", u);
    snprintf (t.pwd [1], sizeof t.pwd [1], "%s", p);
    t.creds_given [1] = true;
    s_test_run (loop, &t);
    if (verbose)
        printf ("  %s: READY again %lld ms after the restart\n", ip, (long long) t.ready_ms);

    //  The handoff: each side takes its socket
    int fd [2];
    struct sockaddr_storage remote [2], local [2];
    socklen_t rlen [2];
    for (int i = 0; i < 2; i++) {
        assert (ice_agent_take_socket (t.agent [i], t.id [1 - i], &fd [i], &remote [i], &rlen [i], err, sizeof err) == 0);
        assert (s_test_sharing (fd [i]) == 2);      //  libnice's and ours
        socklen_t len = sizeof local [i];
        assert (getsockname (fd [i], (struct sockaddr *) &local [i], &len) == 0);
    }
    //  The 5-tuple: what one side sends to is the other's socket
    assert (s_test_same_addr (&remote [0], &local [1]) && s_test_same_addr (&remote [1], &local [0]));
    //  Side 0 removes the peer, side 1 destroys its whole agent: libnice
    //  lets go of both sockets, the dups stay
    ice_agent_remove_peer (t.agent [0], 42);
    assert (!ice_agent_has_peer (t.agent [0], 42));
    assert (s_test_sharing (fd [0]) == 1);          //  libnice closed its own
    ice_agent_destroy (&t.agent [1]);
    assert (s_test_sharing (fd [1]) == 1);
    ice_agent_destroy (&t.agent [0]);
    assert (t.agent [0] == NULL);
    bus_loop_destroy (&loop);
    //  Every datagram arrives on the taken sockets, from the expected source:
    //  libnice no longer reads them
    char buf [1500];
    int stun = 0;
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < 2; i++) {
            char msg [32];
            snprintf (msg, sizeof msg, "from %d round %d", i, round);
            assert (sendto (fd [i], msg, strlen (msg), 0, (struct sockaddr *) &remote [i], rlen [i]) == (ssize_t) strlen (msg));
            struct sockaddr_storage from;
            ssize_t n = s_test_recv (fd [1 - i], buf, sizeof buf, &from, 2000, &stun);
            assert (n == (ssize_t) strlen (msg) && memcmp (buf, msg, (size_t) n) == 0);
            assert (s_test_same_addr (&from, &remote [1 - i]));
        }
    if (verbose)
        printf ("  %s: 10 datagrams on the taken sockets, %d STUN packets left over from libnice skipped\n", ip, stun);
    close (fd [0]);
    close (fd [1]);
}

static void
s_test_refusals (bool verbose)
{
    char err [160];
    ice_agent_t *agent = ice_agent_new (5, NULL, NULL);
    assert (ice_agent_add_local_address (agent, "127.0.0.1", err, sizeof err) == 0);
    assert (ice_agent_add_local_address (agent, "localhost", err, sizeof err) == -1 && strstr (err, "not an IP literal"));
    //  At most ICE_AGENT_MAX_LOCAL, and a new list after a clear (an address change)
    for (int i = 1; i < ICE_AGENT_MAX_LOCAL; i++)
        assert (ice_agent_add_local_address (agent, "127.0.0.1", err, sizeof err) == 0);
    assert (ice_agent_add_local_address (agent, "127.0.0.1", err, sizeof err) == -1 && strstr (err, "at most"));
    ice_agent_clear_local_addresses (agent);
    assert (ice_agent_add_local_address (agent, "127.0.0.1", err, sizeof err) == 0);
    assert (ice_agent_set_stun (agent, "stun.example:3478", err, sizeof err) == -1 && strstr (err, "IP"));
    assert (ice_agent_set_stun (agent, "192.0.2.1:3478", err, sizeof err) == 0);
    assert (ice_agent_set_stun (agent, NULL, err, sizeof err) == 0);
    assert (ice_agent_add_turn (agent, "192.0.2.1:3478", "", "x", err, sizeof err) == -1 && strstr (err, "required"));
    assert (ice_agent_add_turn (agent, "192.0.2.1", "u", "p", err, sizeof err) == -1 && strstr (err, "':port'"));
    assert (ice_agent_add_turn (agent, "192.0.2.1:3478", "1700000000:5", "c2VjcmV0", err, sizeof err) == 0);
    ice_agent_clear_turn (agent);
    assert (ice_agent_add_peer (agent, 5, err, sizeof err) == -1 && strstr (err, "this node"));
    assert (ice_agent_add_peer (agent, 9, err, sizeof err) == 0);
    assert (ice_agent_add_peer (agent, 9, err, sizeof err) == -1 && strstr (err, "already"));
    assert (!ice_agent_controlling (agent, 9) == false);
    assert (ice_agent_add_peer (agent, 3, err, sizeof err) == 0 && !ice_agent_controlling (agent, 3));
    //  Malformed remote input: refused with a message, nothing reaches libnice
    assert (ice_agent_add_remote_candidate (agent, 9, "candidate:1 1 UDP 1 host.example 1 typ host", err, sizeof err) == -1);
    assert (strstr (err, "not an IPv4 or IPv6 literal"));
    assert (ice_agent_add_remote_candidate (agent, 9, "candidate:1 2 UDP 1 192.0.2.1 1 typ host", err, sizeof err) == -1);
    assert (strstr (err, "component 2"));
    assert (ice_agent_add_remote_candidate (agent, 9, "\x01\x02", err, sizeof err) == -1 && strstr (err, "byte 0x01"));
    assert (ice_agent_add_remote_candidate (agent, 10, "candidate:1 1 UDP 1 192.0.2.1 1 typ host", err, sizeof err) == -1);
    assert (strstr (err, "no ICE session"));
    assert (ice_agent_set_remote_credentials (agent, 9, "a b", "0123456789012345678901", err, sizeof err) == -1);
    assert (strstr (err, "ufrag: 3 characters"));
    assert (ice_agent_add_remote_observed (agent, 9, "203.0.113.9", err, sizeof err) == -1);
    assert (ice_agent_add_remote_observed (agent, 9, "203.0.113.9:4000", err, sizeof err) == 0);
    //  Until the credentials come, at most ICE_AGENT_PENDING_MAX wait
    int i;
    for (i = 0; i < 100; i++)
        if (ice_agent_add_remote_candidate (agent, 9, "candidate:1 1 UDP 1 192.0.2.1 1 typ host", err, sizeof err))
            break;
    assert (i == ICE_AGENT_PENDING_MAX - 1 && strstr (err, "waiting for the peer's credentials"));
    char ufrag [ICE_CRED_MAX + 1], pwd [ICE_CRED_MAX + 1];
    assert (ice_agent_local_credentials (agent, 9, ufrag, pwd) == 0);
    assert (ice_cand_check_credentials (ufrag, pwd, err, sizeof err) == 0);
    assert (ice_agent_set_remote_credentials (agent, 9, ufrag, pwd, err, sizeof err) == 0);
    int fd;
    assert (ice_agent_take_socket (agent, 9, &fd, NULL, NULL, err, sizeof err) == -1 && strstr (err, "no pair selected"));
    assert (ice_agent_send (agent, 77, "x", 1) == -1);
    ice_agent_remove_peer (agent, 9);
    ice_agent_remove_peer (agent, 9);
    //  Without a loop: the low-level poll interface
    zmq_pollitem_t items [16];
    int timeout = -2;
    int n = ice_agent_pollfds (agent, items, 16, &timeout);
    assert (n >= 1 && n <= 16 && timeout >= -1);
    ice_agent_dispatch (agent, items, 0);
    ice_agent_destroy (&agent);
    ice_agent_destroy (&agent);
}

void
ice_agent_test (bool verbose)
{
    s_test_refusals (verbose);
    s_test_loopback (verbose, "127.0.0.1");
    //  IPv6 when the host has it
    int s6 = socket (AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    bool have6 = s6 >= 0 && bind (s6, (struct sockaddr *) &a6, sizeof a6) == 0;
    if (s6 >= 0)
        close (s6);
    if (have6)
        s_test_loopback (verbose, "::1");
    else if (verbose)
        printf ("  no ::1 here: IPv6 round skipped\n");
}
