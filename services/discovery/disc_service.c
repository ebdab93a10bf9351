/*  disc_service: registration, events, heartbeats and signalling (see disc_service.h). */
#include "disc_service.h"
#include "disc_backoff.h"
#include "disc_http.h"
#include "disc_json.h"
#include "disc_peers.h"
#include "disc_paths.h"
#include "bus_log.h"
#include "node_peers.h"
#include "rest_codec.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <netdb.h>
#include <sodium.h>
#include <unistd.h>

#define S_TICK_BUSY_MS      5           //  lws is serviced this often while requests run
#define S_TICK_IDLE_MS      50          //  and this often when only the WebSocket is open
#define S_REQUEST_MS        5000        //  one HTTP request, connect included
#define S_ROUTES_MS         300         //  the router's route table, asked before each heartbeat
#define REST_PATHS_MAX      64          //  paths in a heartbeat (schemas/rest.def, rest_heartbeat_req)
#define S_PROOF_MS          5000        //  crypto's answer to crypto.keyproof
#define S_META_RETRY_MS     10000
#define S_META_MIN_MS       10000
#define S_SIGNAL_MAX        32          //  signals waiting for the registry's reply

typedef enum { S_REGISTERING, S_REGISTERED, S_OFFLINE } s_state_t;
static const char *s_state_names [] = { "registering", "registered", "offline" };

typedef struct {
    disc_service_t *self;
    bus_envelope_t *request;            //  a copy, to reply to later
    bool used;
} s_signal_t;

struct _disc_service_t {
    bus_service_t *svc;
    bus_loop_t *loop;
    disc_config_t cfg;
    char device_name [IF_NAMESIZE + 1];
    node_peers_t *static_peers;
    disc_http_t *http;
    disc_backoff_t *backoff;
    disc_peers_t *peers;
    s_state_t state;
    disc_challenge_t challenge;
    char public_key [45];
    uint8_t key [32];
    bool have_key;
    char peer_id [17];
    char peer_token [128];
    char address [50];                  //  "10.100.0.7/16", "" before the first registration
    struct in_addr vip;
    uint32_t prefix;
    int64_t heartbeat_ms;
    disc_meta_t meta;
    bool have_meta;
    disc_relay_t relay;                 //  the last relay grant (relay.given false: none)
    relay_servers_t relay_msg;          //  what was last published as relay.servers
    bool relay_known;                   //  a registration reply said either way
    int tick_timer, tick_ms;
    int retry_timer, heartbeat_timer, meta_timer;
    bool full_warned;
    uint64_t registrations, failures, events;
    uint64_t peers_outside;             //  peers ignored: vip outside our network
    int64_t started_ms, registered_ms;
    s_signal_t signals [S_SIGNAL_MAX];
    nat_mapped_t mapped;                //  nat's port mapping (nat.mapped): registered first
    bool paths_sent, paths_refused;     //  the last heartbeat had paths; the registry refused them once
};

static void s_attempt (disc_service_t *self);

//  Copies a string, cut to the destination (names and keys are checked already)
static void
s_copy (char *dst, size_t size, const char *src)
{
    size_t len = strnlen (src, size - 1);
    memcpy (dst, src, len);
    dst [len] = 0;
}
static void s_signal_done (disc_service_t *self, s_signal_t *slot, int code, const char *why, uint32_t delivered);

//  --------------------------------------------------------------------------
//  Config

void
disc_service_check_config (bus_config_t *config, disc_service_config_t *out)
{
    memset (out, 0, sizeof *out);
    out->given = config != NULL;
    disc_config_check (config, &out->disc);
    //  device's group: only the interface's name, and only a string (device
    //  checks it and reports the rest)
    static const char *const device_keys [] = { "name", NULL };
    config_setting_t *name = config ? config_lookup (bus_config_raw (config), "device.name") : NULL;
    bus_cfg_device_t device;
    bus_cfg_read (name && config_setting_type (name) == CONFIG_TYPE_STRING ? config : NULL,
                  &bus_cfg_device_group, NULL, &device, 0, device_keys, NULL, NULL);
    out->device_name = device.name;
    out->peers = config ? node_peers_load (config, NULL) : NULL;
}

void
disc_service_config_clear (disc_service_config_t *self)
{
    node_peers_destroy (&self->peers);
}

//  --------------------------------------------------------------------------
//  Timers and pacing

static int s_on_tick (bus_loop_t *loop, int timer_id, void *arg);

//  Services lws often while something is in flight, rarely otherwise
static void
s_pace (disc_service_t *self)
{
    int want = disc_http_pending (self->http) ? S_TICK_BUSY_MS : S_TICK_IDLE_MS;
    if (want == self->tick_ms && self->tick_timer >= 0)
        return;
    if (self->tick_timer >= 0)
        bus_loop_timer_end (self->loop, self->tick_timer);
    self->tick_ms = want;
    self->tick_timer = bus_loop_timer (self->loop, (size_t) want, 0, s_on_tick, self);
}

static int
s_on_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    disc_service_t *self = (disc_service_t *) arg;
    disc_http_service (self->http);
    s_pace (self);
    return 0;
}

static void
s_timer_end (disc_service_t *self, int *timer)
{
    if (*timer >= 0)
        bus_loop_timer_end (self->loop, *timer);
    *timer = -1;
}

static int
s_on_retry (bus_loop_t *loop, int timer_id, void *arg)
{
    disc_service_t *self = (disc_service_t *) arg;
    self->retry_timer = -1;
    s_attempt (self);
    return 0;
}

//  --------------------------------------------------------------------------
//  Publishing

static void
s_publish_address (disc_service_t *self)
{
    if (!*self->address)
        return;
    node_address_t msg;
    memset (&msg, 0, sizeof msg);
    s_copy (msg.address, sizeof msg.address, self->address);
    s_copy (msg.network_id, sizeof msg.network_id, self->cfg.network_id);
    s_copy (msg.peer_id, sizeof msg.peer_id, self->peer_id);           //  the router's own id
    bus_service_publish (self->svc, &node_address_schema, &msg);
}

//  relay.servers: the relays and this node's credential, to nat only (a bus
//  event; the credential goes nowhere else and is never logged). An empty
//  servers list when the registry hands out none, so nat drops relays.
static void
s_publish_relay (disc_service_t *self)
{
    if (self->relay_known)
        bus_service_publish (self->svc, &relay_servers_schema, &self->relay_msg);
}

static void
s_publish_up (disc_service_t *self, const disc_peer_t *peer)
{
    peer_up_t msg;
    memset (&msg, 0, sizeof msg);
    msg.index = peer->index;
    s_copy (msg.name, sizeof msg.name, peer->info.name);
    s_copy (msg.public_key, sizeof msg.public_key, peer->info.public_key);
    snprintf (msg.allowed_ips [0], sizeof msg.allowed_ips [0], "%s/32", peer->info.vip);
    msg.allowed_ips_count = 1;
    for (uint32_t e = 0; e < peer->info.endpoints_count && e < 8; e++)
        s_copy (msg.endpoints [msg.endpoints_count++], sizeof msg.endpoints [0], peer->info.endpoints [e]);
    msg.direct = true;
    snprintf (msg.source, sizeof msg.source, "registry");
    //  The peer's id at the relays is its registry id, when there are relays;
    //  the router keys its routes by the registry id, relays or not
    if (self->relay.given)
        s_copy (msg.relay_id, sizeof msg.relay_id, peer->info.id);
    s_copy (msg.peer_id, sizeof msg.peer_id, peer->info.id);
    bus_service_publish (self->svc, &peer_up_schema, &msg);
}

static void
s_publish_changed (disc_service_t *self, const disc_peer_t *peer)
{
    peer_changed_t msg;
    memset (&msg, 0, sizeof msg);
    msg.index = peer->index;
    s_copy (msg.name, sizeof msg.name, peer->info.name);
    for (uint32_t e = 0; e < peer->info.endpoints_count && e < 8; e++)
        s_copy (msg.endpoints [msg.endpoints_count++], sizeof msg.endpoints [0], peer->info.endpoints [e]);
    bus_service_publish (self->svc, &peer_changed_schema, &msg);
}

static void
s_publish_down (disc_service_t *self, const disc_peer_t *peer, const char *reason)
{
    peer_down_t msg;
    memset (&msg, 0, sizeof msg);
    msg.index = peer->index;
    s_copy (msg.name, sizeof msg.name, peer->info.name);
    s_copy (msg.public_key, sizeof msg.public_key, peer->info.public_key);
    s_copy (msg.reason, sizeof msg.reason, reason);
    bus_service_publish (self->svc, &peer_down_schema, &msg);
}

static void
s_publish_ice (disc_service_t *self)
{
    if (!self->have_meta)
        return;
    discovery_ice_t *msg = calloc (1, sizeof *msg);
    assert (msg);
    s_copy (msg->ice_servers, sizeof msg->ice_servers, self->meta.ice_servers);
    msg->ttl = self->meta.ttl;
    bus_service_publish (self->svc, &discovery_ice_schema, msg);
    free (msg);
}

//  Everything again, in index order, for a service that (re)joined the bus
static void
s_on_bus_connect (bus_service_t *svc, uint64_t epoch, void *arg)
{
    disc_service_t *self = (disc_service_t *) arg;
    s_publish_address (self);
    s_publish_relay (self);             //  before the peers: nat knows the relays first
    for (size_t p = 0; p < disc_peers_size (self->peers); p++) {
        disc_peer_t *peer = disc_peers_at (self->peers, p);
        if (peer->up)
            s_publish_up (self, peer);
        else
            s_publish_down (self, peer, "left");
    }
    s_publish_ice (self);
}

//  A relay grant from a registration or heartbeat reply (given false: the
//  reply had none). Published when it differs from what nat has: a new
//  credential (every heartbeat renews it), other relays, another peer id, or
//  relays gone (an empty list, once). When relays come or go, every peer is
//  announced again, since its relay_id comes or goes with them.
static void
s_relay_update (disc_service_t *self, const disc_relay_t *grant)
{
    relay_servers_t *msg = calloc (1, sizeof *msg);
    assert (msg);
    if (grant->given) {
        for (uint32_t i = 0; i < grant->servers_count && i < DISC_RELAYS_MAX; i++)
            s_copy (msg->servers [msg->servers_count++], sizeof msg->servers [0], grant->servers [i]);
        s_copy (msg->peer, sizeof msg->peer, self->peer_id);
        s_copy (msg->network, sizeof msg->network, grant->network);
        s_copy (msg->credential, sizeof msg->credential, grant->credential);
        msg->tls_port = grant->tls_port;
    }
    bool was_on = self->relay.given, first = !self->relay_known;
    bool same_servers = self->relay_msg.servers_count == msg->servers_count
                     && memcmp (self->relay_msg.servers, msg->servers, sizeof msg->servers) == 0;
    bool changed = first || memcmp (&self->relay_msg, msg, sizeof *msg) != 0;
    self->relay = *grant;
    self->relay_msg = *msg;
    self->relay_known = true;
    sodium_memzero (msg, sizeof *msg);
    free (msg);
    if (!changed)
        return;
    if (grant->given && (first || !same_servers))
        bus_info ("relays from the registry: %u, first %s", grant->servers_count,
                  grant->servers_count ? grant->servers [0] : "-");
    else
    if (!grant->given && (first || was_on))
        bus_info ("the registry hands out no relays%s", was_on ? " any more" : "");
    else
        bus_debug ("relay credential renewed");
    s_publish_relay (self);
    if (grant->given != was_on)
        for (size_t p = 0; p < disc_peers_size (self->peers); p++) {
            disc_peer_t *peer = disc_peers_at (self->peers, p);
            if (peer->up)
                s_publish_up (self, peer);
        }
}

//  --------------------------------------------------------------------------
//  Peers

static bool s_own_network (disc_service_t *self, int family, const void *addr);

static void
s_peer_update (disc_service_t *self, const disc_peer_info_t *info)
{
    if (self->have_key && memcmp (info->key, self->key, 32) == 0)
        return;                         //  ourselves
    if (node_peers_find_key (self->static_peers, info->key))
        return;                         //  configured statically: the config wins
    //  A peer's vip becomes its allowed IP (/32), which crypto then accepts as
    //  inner source and device routes: only an address of our own network may
    //  be one, or a registry could hand a peer any address of the internet
    struct in_addr vip;
    if (!self->prefix || inet_pton (AF_INET, info->vip, &vip) != 1
    ||  !s_own_network (self, AF_INET, &vip)) {
        self->peers_outside++;
        if (self->peers_outside == 1 || self->peers_outside % 100 == 0)
            bus_warn ("peer %s (%s) ignored: its address %s is outside our network %s (%llu so far)",
                      info->name, info->id, info->vip, self->address [0] ? self->address : "(not registered)",
                      (unsigned long long) self->peers_outside);
        return;
    }
    disc_peer_t *peer;
    switch (disc_peers_update (self->peers, info, &peer)) {
        case DISC_PEERS_UP:
            bus_info ("peer %s (%s) at %s: up as index %u, %u endpoint(s)%s%s", info->name, info->id, info->vip,
                      peer->index, info->endpoints_count, info->endpoints_count ? ", first " : "",
                      info->endpoints_count ? info->endpoints [0] : "");
            s_publish_up (self, peer);
            break;
        case DISC_PEERS_ENDPOINTS:
            bus_info ("peer %s: endpoints changed", info->name);
            s_publish_changed (self, peer);
            break;
        case DISC_PEERS_FULL:
            if (!self->full_warned)
                bus_warn ("peer %s ignored: no peer index left (at most %d peers)", info->name, NODE_PEERS_MAX);
            self->full_warned = true;
            break;
        case DISC_PEERS_SAME:
            break;
    }
}

static void
s_peer_down (disc_service_t *self, const uint8_t key [32], const char *reason)
{
    disc_peer_t *peer = disc_peers_down (self->peers, key);
    if (!peer)
        return;
    bus_info ("peer %s (%s): down (%s)", peer->info.name, peer->info.id, reason);
    s_publish_down (self, peer, reason);
}

//  --------------------------------------------------------------------------
//  This node's endpoints: every up, non-loopback, non-link-local address with
//  nat's port, the one that routes to the registry first, never an address of
//  our own tunnel (that would be a tunnel inside the tunnel)

static bool
s_own_network (disc_service_t *self, int family, const void *addr)
{
    if (family != AF_INET || !self->prefix)
        return false;
    uint32_t mask = self->prefix >= 32 ? 0xFFFFFFFFu : ~(0xFFFFFFFFu >> self->prefix);
    uint32_t a = ntohl (((const struct in_addr *) addr)->s_addr);
    return (a & mask) == (ntohl (self->vip.s_addr) & mask);
}

//  The local address the kernel would use to reach the registry (no packet sent)
static bool
s_route_source (disc_service_t *self, struct sockaddr_storage *out)
{
    struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    char port [8];
    snprintf (port, sizeof port, "%u", self->cfg.port);
    //  Only numeric hosts here: a name is resolved by lws; no DNS wait on the loop
    hints.ai_flags |= AI_NUMERICHOST;
    if (getaddrinfo (self->cfg.host, port, &hints, &res) != 0 || !res)
        return false;
    bool ok = false;
    int fd = socket (res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect (fd, res->ai_addr, res->ai_addrlen) == 0) {
        socklen_t len = sizeof *out;
        ok = getsockname (fd, (struct sockaddr *) out, &len) == 0;
    }
    if (fd >= 0)
        close (fd);
    freeaddrinfo (res);
    return ok;
}

static size_t
s_local_endpoints (disc_service_t *self, char out [][DISC_ENDPOINT_LEN + 1], size_t max)
{
    uint16_t port = self->cfg.listen_port;
    if (!port)
        return 0;
    struct sockaddr_storage first;
    bool have_first = s_route_source (self, &first);
    struct ifaddrs *list = NULL;
    if (getifaddrs (&list) != 0)
        return 0;
    size_t count = 0;
    //  Two passes: the registry's route first, then the rest in interface order
    for (int pass = 0; pass < 2; pass++)
        for (struct ifaddrs *ifa = list; ifa && count < max; ifa = ifa->ifa_next) {
            if (!ifa->ifa_addr || !(ifa->ifa_flags & IFF_UP) || (ifa->ifa_flags & IFF_LOOPBACK))
                continue;
            if (streq (ifa->ifa_name, self->device_name))
                continue;
            int family = ifa->ifa_addr->sa_family;
            char text [INET6_ADDRSTRLEN];
            const void *addr;
            bool is_first = false;
            if (family == AF_INET) {
                addr = &((struct sockaddr_in *) ifa->ifa_addr)->sin_addr;
                uint32_t a = ntohl (((const struct in_addr *) addr)->s_addr);
                if ((a >> 16) == 0xA9FE)        //  169.254/16
                    continue;
                is_first = have_first && first.ss_family == AF_INET
                        && memcmp (addr, &((struct sockaddr_in *) &first)->sin_addr, 4) == 0;
            }
            else
            if (family == AF_INET6 && !self->cfg.listen_ipv4_only) {
                addr = &((struct sockaddr_in6 *) ifa->ifa_addr)->sin6_addr;
                if (IN6_IS_ADDR_LINKLOCAL ((const struct in6_addr *) addr))
                    continue;
                is_first = have_first && first.ss_family == AF_INET6
                        && memcmp (addr, &((struct sockaddr_in6 *) &first)->sin6_addr, 16) == 0;
            }
            else
                continue;
            if (s_own_network (self, family, addr) || (pass == 0) != is_first)
                continue;
            inet_ntop (family, addr, text, sizeof text);
            if (family == AF_INET)
                snprintf (out [count], DISC_ENDPOINT_LEN + 1, "%s:%u", text, port);
            else
                snprintf (out [count], DISC_ENDPOINT_LEN + 1, "[%s]:%u", text, port);
            bool dup = false;
            for (size_t i = 0; i < count; i++)
                dup |= streq (out [i], out [count]);
            if (!dup)
                count++;
        }
    freeifaddrs (list);
    return count;
}

//  The endpoints and candidates members of a register or heartbeat request
//  (schemas/rest.def): this node's endpoints, and the same as ICE host
//  candidates for the nat service's ICE later
//  The mapped address as an endpoint and an ICE server-reflexive candidate
//  (RFC 8445 5.1.2.1 priority: type preference 100, local 65535, component 1),
//  based on the host candidate of nat's port, as libnice files a UPnP mapping
static void
s_mapped_candidate (disc_service_t *self, char list [][65], uint32_t *list_count,
                    char candidates [][201], uint32_t *candidates_count)
{
    s_copy (list [(*list_count)++], 65, self->mapped.external);
    char host [DISC_ENDPOINT_LEN + 1];
    s_copy (host, sizeof host, self->mapped.external);
    char *colon = strrchr (host, ':');
    if (!colon)
        return;
    *colon = 0;
    snprintf (candidates [(*candidates_count)++], 201, "candidate:%u 1 UDP %u %s %s typ srflx raddr 0.0.0.0 rport %u",
              100u, (100u << 24) | (65535u << 8) | 255u, host, colon + 1, self->mapped.local_port);
}

#define S_FILL_ENDPOINTS(self, body) \
    s_fill_endpoints (self, (body)->endpoints, &(body)->endpoints_count, (body)->candidates, \
                      &(body)->candidates_count), \
    (body)->has_endpoints = (body)->has_candidates = true

static void
s_fill_endpoints (disc_service_t *self, char list [][65], uint32_t *list_count,
                  char candidates [][201], uint32_t *candidates_count)
{
    char endpoints [DISC_ENDPOINTS_MAX][DISC_ENDPOINT_LEN + 1];
    //  The gateway's port mapping (nat.mapped) is the one address a peer behind
    //  any NAT can reach unasked: first, so peers try it first (a gateway that
    //  is itself behind another NAT: last, it works only inside that NAT)
    bool mapped = *self->mapped.external && strlen (self->mapped.external) <= 64;
    size_t count = s_local_endpoints (self, endpoints, DISC_ENDPOINTS_MAX - mapped);
    *list_count = *candidates_count = 0;
    if (mapped && !self->mapped.external_private)
        s_mapped_candidate (self, list, list_count, candidates, candidates_count);
    for (size_t i = 0; i < count; i++) {
        if (strlen (endpoints [i]) > 64)
            continue;               //  the registry would refuse it
        s_copy (list [(*list_count)++], 65, endpoints [i]);
        char host [DISC_ENDPOINT_LEN + 1];
        s_copy (host, sizeof host, endpoints [i] [0] == '[' ? endpoints [i] + 1 : endpoints [i]);
        char *colon = strrchr (host, endpoints [i] [0] == '[' ? ']' : ':');
        if (colon)
            *colon = 0;
        snprintf (candidates [(*candidates_count)++], 201, "candidate:%zu 1 UDP %u %s %u typ host",
                  i + 1, 2130706431u - (unsigned) i, host, self->cfg.listen_port);
    }
    if (mapped && self->mapped.external_private)
        s_mapped_candidate (self, list, list_count, candidates, candidates_count);
}

//  --------------------------------------------------------------------------
//  Losing and regaining the registry

static void
s_lost (disc_service_t *self, const char *what, int status, const char *body, size_t size)
{
    char detail [200] = "";
    if (status)
        disc_json_error_text (body, size, detail, sizeof detail);
    else
        snprintf (detail, sizeof detail, "%.*s", (int) (size < 150 ? size : 150), body ? body : "");
    self->failures++;
    if (self->state == S_REGISTERED)
        bus_warn ("registry %s: %s failed (%d %s): keeping %zu peer(s) and their tunnels, reconnecting",
                  self->cfg.server, what, status, detail, disc_peers_up_count (self->peers));
    else
    if (disc_backoff_failures (self->backoff) < 2 || status)
        bus_warn ("registry %s: %s failed (%d %s)", self->cfg.server, what, status, detail);
    else
        bus_debug ("registry %s: %s failed (%d %s)", self->cfg.server, what, status, detail);
    self->state = S_OFFLINE;
    disc_http_cancel_all (self->http);
    disc_http_ws_close (self->http);
    for (int i = 0; i < S_SIGNAL_MAX; i++)
        if (self->signals [i].used)
            s_signal_done (self, &self->signals [i], 503, "registry unreachable", 0);
    s_timer_end (self, &self->heartbeat_timer);
    s_timer_end (self, &self->retry_timer);
    int64_t delay = disc_backoff_next (self->backoff);
    if (delay > 0)
        bus_info ("registry: next attempt in %lld ms", (long long) delay);
    self->retry_timer = bus_loop_timer (self->loop, (size_t) (delay > 0 ? delay : 1), 1, s_on_retry, self);
}

static char *
s_path (disc_service_t *self, const char *suffix)
{
    char *path = malloc (512);
    assert (path);
    snprintf (path, 512, "/api/v1/mesh/networks/%s%s", self->cfg.network_id, suffix);
    return path;
}

static void
s_request (disc_service_t *self, const char *method, const char *path, const char *bearer,
           const char *body, disc_http_fn *fn)
{
    if (disc_http_request (self->http, method, path, bearer, body, S_REQUEST_MS, fn, self))
        s_lost (self, method, 0, "request too large", 17);
    s_pace (self);
}

//  ---- meta: ICE servers, refreshed before the TURN credentials expire

static void s_fetch_meta (disc_service_t *self);

static int
s_on_meta_timer (bus_loop_t *loop, int timer_id, void *arg)
{
    disc_service_t *self = (disc_service_t *) arg;
    self->meta_timer = -1;
    if (self->state == S_REGISTERED)
        s_fetch_meta (self);
    return 0;
}

static void
s_meta_later (disc_service_t *self, int64_t ms)
{
    s_timer_end (self, &self->meta_timer);
    self->meta_timer = bus_loop_timer (self->loop, (size_t) ms, 1, s_on_meta_timer, self);
}

static void
s_on_meta (disc_http_t *http, int status, const char *body, size_t size, void *arg)
{
    disc_service_t *self = (disc_service_t *) arg;
    char err [200];
    disc_meta_t meta;
    if (status != 200 || disc_json_meta (body, size, &meta, err, sizeof err)) {
        if (status == 200)
            bus_warn ("registry: /client/meta: %s", err);
        else
            bus_debug ("registry: /client/meta failed (%d)", status);
        s_meta_later (self, S_META_RETRY_MS);
        return;
    }
    self->meta = meta;
    self->have_meta = true;
    s_publish_ice (self);
    //  Again at 80% of the credentials' life, so nat never holds expired ones
    if (meta.ttl) {
        int64_t later = (int64_t) meta.ttl * 800;
        s_meta_later (self, later < S_META_MIN_MS ? S_META_MIN_MS : later);
    }
    bus_info ("ICE servers from the registry: %s%s", meta.has_turn ? "STUN and TURN" : "STUN only",
              meta.ttl ? "" : " (no expiry)");
}

static void
s_fetch_meta (disc_service_t *self)
{
    s_request (self, "GET", "/client/meta", self->peer_token, NULL, s_on_meta);
}

//  ---- the peer list, after every (re)subscription

static void
s_on_peers (disc_http_t *http, int status, const char *body, size_t size, void *arg)
{
    disc_service_t *self = (disc_service_t *) arg;
    disc_peer_info_t *list;
    size_t count;
    char err [200];
    if (status != 200) {
        s_lost (self, "listing peers", status, body, size);
        return;
    }
    if (disc_json_peers (body, size, &list, &count, err, sizeof err)) {
        bus_warn ("registry: bad peer list: %s", err);
        s_lost (self, "listing peers", 0, err, strlen (err));
        return;
    }
    disc_peers_begin (self->peers);
    for (size_t i = 0; i < count; i++)
        s_peer_update (self, &list [i]);
    disc_peer_t *gone;
    while ((gone = disc_peers_end_next (self->peers))) {
        bus_info ("peer %s (%s): down (no longer registered)", gone->info.name, gone->info.id);
        s_publish_down (self, gone, "left");
    }
    free (list);
    if (self->registrations == 1 && self->started_ms)
        bus_info ("registered and %zu peer(s) known %lld ms after start", disc_peers_up_count (self->peers),
                  (long long) (zclock_mono () - self->started_ms));
}

//  ---- events

static void
s_on_event (disc_service_t *self, const char *text, size_t size)
{
    disc_event_t *event = malloc (sizeof *event);
    assert (event);
    char err [200];
    self->events++;
    if (disc_json_event (text, size, event, err, sizeof err)) {
        bus_warn ("registry: bad event ignored: %s", err);
        free (event);
        return;
    }
    switch (event->type) {
        case DISC_EVENT_SUBSCRIBED: {
            //  Listed after subscribing, so nothing that happens in between is missed
            char *path = s_path (self, "/peers");
            s_request (self, "GET", path, self->peer_token, NULL, s_on_peers);
            free (path);
            break;
        }
        case DISC_EVENT_JOINED:
            s_peer_update (self, &event->peer);
            break;
        case DISC_EVENT_CHANGED:
            //  An offline peer (registry lost its heartbeats) may still be reachable:
            //  its tunnel stays until it is removed
            s_peer_update (self, &event->peer);
            break;
        case DISC_EVENT_LEFT:
            s_peer_down (self, event->peer.key, *event->reason ? event->reason : "left");
            break;
        case DISC_EVENT_SIGNAL: {
            disc_peer_t *from = disc_peers_by_id (self->peers, event->from);
            if (!from || !from->up) {
                bus_debug ("signal from unknown peer %s dropped", event->from);
                break;
            }
            discovery_signal_t *msg = calloc (1, sizeof *msg);
            assert (msg);
            msg->index = from->index;
            s_copy (msg->type, sizeof msg->type, event->signal_type);
            s_copy (msg->data, sizeof msg->data, event->data);
            bus_service_publish (self->svc, &discovery_signal_schema, msg);
            free (msg);
            break;
        }
        case DISC_EVENT_NETWORK_DELETED:
            bus_error ("registry: network %s was deleted", self->cfg.network_id);
            break;
        case DISC_EVENT_OTHER:
            break;
    }
    free (event);
}

static void
s_on_ws (disc_http_t *http, disc_ws_event_t what, const char *text, size_t size, void *arg)
{
    disc_service_t *self = (disc_service_t *) arg;
    if (what == DISC_WS_MESSAGE)
        s_on_event (self, text, size);
    else
    if (what == DISC_WS_CLOSED)
        s_lost (self, "event stream", 0, text, size);
}

//  ---- heartbeats

static void s_send_heartbeat (disc_service_t *self, const router_routes_reply_t *routes);

static void
s_on_heartbeat_reply (disc_http_t *http, int status, const char *body, size_t size, void *arg)
{
    disc_service_t *self = (disc_service_t *) arg;
    if (status == 400 && self->paths_sent && !self->paths_refused) {
        //  A registry older than the paths (issue 19) refuses the unknown
        //  member: heartbeats without them from now on, the next one at once
        char detail [200] = "";
        disc_json_error_text (body, size, detail, sizeof detail);
        bus_warn ("registry refused the paths in the heartbeat (%s): sending heartbeats without them", detail);
        self->paths_refused = true;
        s_send_heartbeat (self, NULL);
        return;
    }
    if (status != 200) {
        s_lost (self, "heartbeat", status, body, size);
        return;
    }
    //  The lease is renewed whatever the body says; a reply we cannot read
    //  keeps the relay grant we have (it stays valid until it expires)
    disc_heartbeat_t *reply = malloc (sizeof *reply);
    assert (reply);
    char err [200];
    if (disc_json_heartbeat_reply (body, size, reply, err, sizeof err))
        bus_warn ("registry: bad heartbeat reply (relay grant kept): %s", err);
    else
        s_relay_update (self, &reply->relay);
    sodium_memzero (reply, sizeof *reply);
    free (reply);
}

//  The registry id of the peer discovery gave this index (disc_paths_id_fn)
static const char *
s_registry_id (uint32_t index, void *arg)
{
    disc_peer_t *peer = disc_peers_by_index (((disc_service_t *) arg)->peers, index);
    return peer ? peer->info.id : NULL;
}

//  Sends the heartbeat; with this node's paths when the router answered
//  (disc_paths.h), without (the registry keeps the last report) when not
static void
s_send_heartbeat (disc_service_t *self, const router_routes_reply_t *routes)
{
    if (self->state != S_REGISTERED)
        return;
    rest_heartbeat_req_t *request = calloc (1, sizeof *request);
    rest_path_t *paths = calloc (REST_PATHS_MAX, sizeof *paths);
    assert (request && paths);
    S_FILL_ENDPOINTS (self, request);
    self->paths_sent = routes && !self->paths_refused;
    if (self->paths_sent) {
        request->paths = paths;
        request->paths_count = (uint32_t) disc_paths_from_routes (routes, self->peer_id, s_registry_id, self,
                                                                  paths, REST_PATHS_MAX);
        request->has_paths = true;
    }
    char *body = rest_encode_text (&rest_heartbeat_req_schema, request);
    free (request);
    free (paths);
    char suffix [64];
    snprintf (suffix, sizeof suffix, "/peers/%s/heartbeat", self->peer_id);
    char *path = s_path (self, suffix);
    s_request (self, "PUT", path, self->peer_token, body, s_on_heartbeat_reply);
    free (path);
    free (body);
}

static void
s_on_routes (bus_service_t *svc, bus_envelope_t *reply, void *arg)
{
    disc_service_t *self = (disc_service_t *) arg;
    router_routes_reply_t *routes = NULL;
    if (reply) {
        char err [200];
        routes = (router_routes_reply_t *) calloc (1, sizeof *routes);
        assert (routes);
        if (bus_envelope_get_msg (reply, &router_routes_reply_schema, routes, err, sizeof err)) {
            bus_debug ("router.routes: %s (heartbeat without paths)", err);
            free (routes);
            routes = NULL;
        }
    }
    s_send_heartbeat (self, routes);
    free (routes);
}

static int
s_on_heartbeat (bus_loop_t *loop, int timer_id, void *arg)
{
    disc_service_t *self = (disc_service_t *) arg;
    if (self->state != S_REGISTERED)
        return 0;
    //  The paths first (the router answers within a loop turn; a node without
    //  a router gets its heartbeat S_ROUTES_MS late, without paths)
    router_routes_t request = { .peer = "" };
    if (bus_service_request (self->svc, "router", &router_routes_schema, &request, S_ROUTES_MS, s_on_routes, self))
        s_send_heartbeat (self, NULL);
    return 0;
}

//  ---- registration: challenge, proof from crypto, POST

static void
s_on_register (disc_http_t *http, int status, const char *body, size_t size, void *arg)
{
    disc_service_t *self = (disc_service_t *) arg;
    if (status != 200 && status != 201) {
        s_lost (self, "registration", status, body, size);
        return;
    }
    disc_registration_t reg;
    char err [200];
    if (disc_json_registration (body, size, &reg, err, sizeof err)) {
        bus_warn ("registry: bad registration reply: %s", err);
        s_lost (self, "registration", 0, err, strlen (err));
        return;
    }
    char address [50];
    snprintf (address, sizeof address, "%s/%u", reg.peer.vip, reg.prefix);
    if (!streq (address, self->address))
        bus_info ("registered in %s as %s (%s), address %s", self->cfg.network_id, reg.peer.name, reg.peer.id, address);
    else
        bus_info ("registered again as %s, address %s", reg.peer.id, address);
    s_copy (self->address, sizeof self->address, address);
    inet_pton (AF_INET, reg.peer.vip, &self->vip);
    self->prefix = reg.prefix;
    s_copy (self->peer_id, sizeof self->peer_id, reg.peer.id);
    s_copy (self->peer_token, sizeof self->peer_token, reg.peer_token);
    self->state = S_REGISTERED;
    self->registrations++;
    self->registered_ms = zclock_mono ();
    disc_backoff_reset (self->backoff);
    s_publish_address (self);
    s_relay_update (self, &reg.relay);

    //  Heartbeats at our interval, or the registry's if it wants them sooner
    self->heartbeat_ms = self->cfg.heartbeat_ms;
    if (reg.heartbeat_s && (int64_t) reg.heartbeat_s * 1000 < self->heartbeat_ms)
        self->heartbeat_ms = (int64_t) reg.heartbeat_s * 1000;
    s_timer_end (self, &self->heartbeat_timer);
    self->heartbeat_timer = bus_loop_timer (self->loop, (size_t) self->heartbeat_ms, 0, s_on_heartbeat, self);
    s_fetch_meta (self);
    char suffix [200];
    snprintf (suffix, sizeof suffix, "/events?token=%s", self->peer_token);
    char *path = s_path (self, suffix);
    if (disc_http_ws_open (self->http, path, S_REQUEST_MS, s_on_ws, self))
        s_lost (self, "event stream", 0, "cannot open", 11);
    free (path);
    s_pace (self);
    sodium_memzero (&reg, sizeof reg);      //  the peer token and the relay credential
}

static void
s_on_proof (bus_service_t *svc, bus_envelope_t *reply, void *arg)
{
    disc_service_t *self = (disc_service_t *) arg;
    if (self->state != S_REGISTERING)
        return;
    crypto_keyproof_reply_t proof;
    char err [200];
    if (!reply) {
        s_lost (self, "key proof", 0, "crypto did not answer", 21);
        return;
    }
    if (bus_envelope_get_msg (reply, &crypto_keyproof_reply_schema, &proof, err, sizeof err)) {
        bus_error_t error;
        if (bus_envelope_get_msg (reply, &bus_error_schema, &error, err, sizeof err) == 0)
            snprintf (err, sizeof err, "crypto: %.150s", error.message);
        s_lost (self, "key proof", 0, err, strlen (err));
        return;
    }
    s_copy (self->public_key, sizeof self->public_key, proof.public_key);
    size_t bin_len = 0;
    self->have_key = sodium_base642bin (self->key, 32, proof.public_key, strlen (proof.public_key), NULL,
                                        &bin_len, NULL, sodium_base64_VARIANT_ORIGINAL) == 0 && bin_len == 32;
    rest_register_req_t *request = calloc (1, sizeof *request);
    assert (request);
    s_copy (request->public_key, sizeof request->public_key, proof.public_key);
    s_copy (request->name, sizeof request->name, self->cfg.name);
    s_copy (request->nonce, sizeof request->nonce, self->challenge.nonce);
    s_copy (request->proof, sizeof request->proof, proof.proof);
    S_FILL_ENDPOINTS (self, request);
    char *body = rest_encode_text (&rest_register_req_schema, request);
    free (request);
    char *path = s_path (self, "/peers");
    s_request (self, "POST", path, *self->cfg.join_token ? self->cfg.join_token : NULL, body, s_on_register);
    free (path);
    free (body);
}

static void
s_on_challenge (disc_http_t *http, int status, const char *body, size_t size, void *arg)
{
    disc_service_t *self = (disc_service_t *) arg;
    char err [200];
    if (status != 200) {
        s_lost (self, "challenge", status, body, size);
        return;
    }
    if (disc_json_challenge (body, size, &self->challenge, err, sizeof err)) {
        s_lost (self, "challenge", 0, err, strlen (err));
        return;
    }
    crypto_keyproof_t req;
    memset (&req, 0, sizeof req);
    s_copy (req.network_id, sizeof req.network_id, self->cfg.network_id);
    s_copy (req.nonce, sizeof req.nonce, self->challenge.nonce);
    s_copy (req.registry_key, sizeof req.registry_key, self->challenge.registry_key);
    if (strlen (self->challenge.nonce) >= sizeof req.nonce) {
        s_lost (self, "challenge", 0, "nonce too long", 14);
        return;
    }
    if (bus_service_request (self->svc, "crypto", &crypto_keyproof_schema, &req, S_PROOF_MS, s_on_proof, self))
        s_lost (self, "key proof", 0, "bus unavailable", 15);
}

static void
s_attempt (disc_service_t *self)
{
    s_timer_end (self, &self->retry_timer);
    self->state = S_REGISTERING;
    char *path = s_path (self, "/challenge");
    s_request (self, "POST", path, NULL, NULL, s_on_challenge);
    free (path);
}

//  --------------------------------------------------------------------------
//  Bus requests

//  A signal's slot: the request to reply to once the registry answered
static void
s_signal_done (disc_service_t *self, s_signal_t *slot, int code, const char *why, uint32_t delivered)
{
    if (code)
        bus_service_reply_error (self->svc, slot->request, (uint32_t) code, "%s", why);
    else {
        discovery_signal_reply_t reply = { .delivered = delivered };
        bus_service_reply (self->svc, slot->request, &discovery_signal_reply_schema, &reply);
    }
    bus_envelope_destroy (&slot->request);
    slot->used = false;
}

static void
s_on_signal_reply (disc_http_t *http, int status, const char *body, size_t size, void *arg)
{
    s_signal_t *slot = (s_signal_t *) arg;
    disc_service_t *self = slot->self;
    uint32_t delivered = 0;
    char err [200];
    if (status == 202 && disc_json_delivered (body, size, &delivered, err, sizeof err) == 0)
        s_signal_done (self, slot, 0, NULL, delivered);
    else {
        if (status)
            disc_json_error_text (body, size, err, sizeof err);
        else
            snprintf (err, sizeof err, "registry unreachable: %.*s", (int) (size < 100 ? size : 100), body);
        s_signal_done (self, slot, status >= 400 && status < 500 ? status : 503, err, 0);
    }
}

static void
s_on_signal (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    disc_service_t *self = (disc_service_t *) arg;
    discovery_signal_t *msg = calloc (1, sizeof *msg);
    assert (msg);
    char err [200];
    s_signal_t *slot = NULL;
    for (int i = 0; i < S_SIGNAL_MAX && !slot; i++)
        if (!self->signals [i].used)
            slot = &self->signals [i];
    disc_peer_t *peer = NULL;
    json_t *data = NULL;
    json_error_t jerr;
    if (bus_envelope_get_msg (env, &discovery_signal_schema, msg, err, sizeof err))
        bus_service_reply_error (svc, env, 400, "%s", err);
    else
    if (!(peer = disc_peers_by_index (self->peers, msg->index)) || !peer->up)
        bus_service_reply_error (svc, env, 404, "no registry peer with index %u", msg->index);
    else
    if (!(data = json_loads (msg->data, JSON_DECODE_ANY, &jerr)))
        bus_service_reply_error (svc, env, 400, "data is not JSON: %s", jerr.text);
    else
    if (self->state != S_REGISTERED)
        bus_service_reply_error (svc, env, 503, "not registered with the registry now");
    else
    if (!slot)
        bus_service_reply_error (svc, env, 503, "too many signals in flight");
    else {
        rest_signal_req_t *request = calloc (1, sizeof *request);
        char *compact = json_dumps (data, JSON_COMPACT | JSON_ENCODE_ANY);
        assert (request && compact);
        s_copy (request->type, sizeof request->type, msg->type);
        s_copy (request->data, sizeof request->data, compact);
        //  Compact JSON is rarely longer than its source (1e2 is 100.0): the
        //  registry would refuse what does not fit, so say it here
        bool fits = strlen (compact) < sizeof request->data;
        char *body = fits ? rest_encode_text (&rest_signal_req_schema, request) : NULL;
        free (compact);
        free (request);
        if (!body) {
            bus_service_reply_error (svc, env, 400, "data is more than %zu bytes of compact JSON",
                                     sizeof ((rest_signal_req_t *) 0)->data - 1);
            json_decref (data);
            free (msg);
            return;
        }
        char suffix [64];
        snprintf (suffix, sizeof suffix, "/peers/%s/signal", peer->info.id);
        char *path = s_path (self, suffix);
        slot->used = true;
        slot->self = self;
        slot->request = bus_envelope_new (bus_envelope_to (env), bus_envelope_from (env),
                                          bus_envelope_type (env), bus_envelope_corr (env));
        if (disc_http_request (self->http, "POST", path, self->peer_token, body, S_REQUEST_MS, s_on_signal_reply, slot))
            s_signal_done (self, slot, 400, "signal too large", 0);
        s_pace (self);
        free (path);
        free (body);
    }
    json_decref (data);
    free (msg);
}

static void
s_on_status (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    disc_service_t *self = (disc_service_t *) arg;
    discovery_status_reply_t reply;
    memset (&reply, 0, sizeof reply);
    s_copy (reply.server, sizeof reply.server, self->cfg.server);
    s_copy (reply.network_id, sizeof reply.network_id, self->cfg.network_id);
    s_copy (reply.state, sizeof reply.state, s_state_names [self->state]);
    s_copy (reply.peer_id, sizeof reply.peer_id, self->peer_id);
    s_copy (reply.address, sizeof reply.address, self->address);
    reply.peers = (uint32_t) disc_peers_up_count (self->peers);
    reply.registrations = self->registrations;
    reply.failures = self->failures;
    reply.events = self->events;
    reply.peers_outside = self->peers_outside;
    bus_service_reply (svc, env, &discovery_status_reply_schema, &reply);
}
//  nat's port mapping moved (made, moved, lost): registered at once with a
//  heartbeat (which carries the endpoints), not at the next period, so a peer
//  that could not reach us learns the new candidate within a round trip
static void
s_on_mapped (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    disc_service_t *self = (disc_service_t *) arg;
    nat_mapped_t msg;
    char err [200];
    if (bus_envelope_get_msg (env, &nat_mapped_schema, &msg, err, sizeof err)) {
        bus_warn ("nat.mapped: %s", err);
        return;
    }
    if (streq (msg.external, self->mapped.external) && msg.external_private == self->mapped.external_private)
        return;
    bus_info ("port mapping %s%s%s: registered %s", *msg.external ? msg.external : "withdrawn",
              *msg.external ? " " : "", *msg.external ? (msg.external_private ? "(behind another NAT)" : "(public)") : "",
              self->state == S_REGISTERED ? "now" : "with the registration");
    self->mapped = msg;
    if (self->state == S_REGISTERED)
        s_on_heartbeat (self->loop, -1, self);
}

//  --------------------------------------------------------------------------
//  Life cycle

disc_service_t *
disc_service_new (bus_service_t *svc, disc_service_config_t *config, char *err, size_t errsize)
{
    assert (svc && config);
    if (!config->given) {
        snprintf (err, errsize, "discovery needs a config file (-c) with network_id and a discovery group");
        return NULL;
    }
    disc_service_t *self = calloc (1, sizeof *self);
    assert (self);
    self->svc = svc;
    self->loop = bus_service_loop (svc);
    self->tick_timer = self->retry_timer = self->heartbeat_timer = self->meta_timer = -1;
    self->cfg = config->disc;
    snprintf (self->device_name, sizeof self->device_name, "%s", config->device_name);
    self->static_peers = config->peers;
    config->peers = NULL;
    self->http = disc_http_new (self->cfg.host, self->cfg.port, self->cfg.tls, self->cfg.ca_file, err, errsize);
    if (!self->http) {
        disc_service_destroy (&self);
        return NULL;
    }
    uint64_t seed = 0;
    if (getrandom (&seed, sizeof seed, 0) != sizeof seed || !seed)
        seed = (uint64_t) zclock_time () | 1;
    self->backoff = disc_backoff_new (DISC_BACKOFF_MIN_MS, DISC_BACKOFF_MAX_MS, seed);
    self->peers = disc_peers_new (node_peers_count (self->static_peers), NODE_PEERS_MAX);
    if (!self->cfg.join_token [0])
        bus_warn ("discovery.join_token is empty: only a key the registry already knows can register");
    if (!self->cfg.listen_port)
        bus_warn ("connection.listen has port 0: no endpoints are registered, peers cannot dial this node");
    bus_service_handle (svc, "discovery.signal", s_on_signal, self);
    bus_service_handle (svc, "discovery.status", s_on_status, self);
    bus_service_subscribe (svc, "nat.mapped", s_on_mapped, self);
    bus_service_on_connect (svc, s_on_bus_connect, self);
    self->started_ms = zclock_mono ();
    bus_info ("registry %s, network %s, name %s, heartbeat %lld ms%s", self->cfg.server, self->cfg.network_id,
              self->cfg.name, (long long) self->cfg.heartbeat_ms, self->cfg.tls ? ", TLS verified" : "");
    s_attempt (self);
    return self;
}

//  The reply to the DELETE of disc_service_leave: its status, -1 for none
static void
s_leave_reply (disc_http_t *http, int status, const char *body, size_t size, void *arg)
{
    *(int *) arg = status ? status : -1;
}

void
disc_service_leave (disc_service_t *self, int timeout_ms)
{
    if (self->state != S_REGISTERED || !*self->peer_id)
        return;
    disc_http_cancel_all (self->http);
    disc_http_ws_close (self->http);
    char suffix [64];
    snprintf (suffix, sizeof suffix, "/peers/%s", self->peer_id);
    char *path = s_path (self, suffix);
    //  Serviced here: the loop has stopped when the service is going away
    int status = 0;
    if (disc_http_request (self->http, "DELETE", path, self->peer_token, NULL, timeout_ms,
                           s_leave_reply, &status) == 0) {
        int64_t deadline = zclock_mono () + timeout_ms + 100;
        while (!status && zclock_mono () < deadline) {
            disc_http_service (self->http);
            if (!status)
                zclock_sleep (2);
        }
    }
    free (path);
    if (status == 204)
        bus_info ("left network %s", self->cfg.network_id);
    else
        bus_warn ("could not deregister (%d): peers see this node leave when its lease expires", status);
    self->state = S_OFFLINE;
}

void
disc_service_destroy (disc_service_t **self_p)
{
    assert (self_p);
    disc_service_t *self = *self_p;
    if (!self)
        return;
    s_timer_end (self, &self->tick_timer);
    s_timer_end (self, &self->retry_timer);
    s_timer_end (self, &self->heartbeat_timer);
    s_timer_end (self, &self->meta_timer);
    for (int i = 0; i < S_SIGNAL_MAX; i++)
        bus_envelope_destroy (&self->signals [i].request);
    disc_http_destroy (&self->http);
    disc_backoff_destroy (&self->backoff);
    disc_peers_destroy (&self->peers);
    node_peers_destroy (&self->static_peers);
    sodium_memzero (self->peer_token, sizeof self->peer_token);
    sodium_memzero (&self->relay, sizeof self->relay);
    sodium_memzero (&self->relay_msg, sizeof self->relay_msg);
    free (self);
    *self_p = NULL;
}

const char *
disc_service_state (disc_service_t *self)
{
    return s_state_names [self->state];
}

//  ---------------------------------------------------------------------------
//  The program (bifrost-discovery): the runtime checks the config once, setup
//  gets what was checked; a clean stop deregisters first.

static void
s_leave_and_destroy (disc_service_t **self_p)
{
    if (*self_p)
        disc_service_leave (*self_p, 1000);
    disc_service_destroy (self_p);
}

BUS_SERVICE_PART (disc_service_t, disc_service_config_t, disc_service_check_config,
                  disc_service_new, s_leave_and_destroy, disc_service_config_clear)

//  It reads the registry's answers: sandboxed to reading its CA file (the
//  system's CA store is in /etc and /usr, which every process reads)
static void
s_def_sandbox (bus_config_t *config, void *arg, const char *run_dir, bus_sandbox_t *paths)
{
    if (s_part_checked.disc.ca_file [0])
        bus_sandbox_read (paths, "%s", s_part_checked.disc.ca_file);
}

const bus_service_def_t disc_service_def = {
    .name = "discovery",
    .summary = "registers the node with the registry and tells the node's services about every peer",
    BUS_SERVICE_PART_HOOKS,
    .sandbox = s_def_sandbox,
    .seccomp = BUS_SECCOMP_NETLINK,           //  getaddrinfo asks the host's addresses over rtnetlink
};

//  --------------------------------------------------------------------------
//  Self test: the config check, this node's endpoints (in a private network
//  namespace with known addresses), and the service against a registry that is
//  not there: it keeps trying, with backoff, and says so in its status.

#include <sched.h>

static int
s_test_stop (bus_loop_t *loop, int timer_id, void *arg)
{
    return -1;
}

//  Messages svc handed to the bus since the last call (sent, or dropped
//  without a broker)
static uint64_t
s_test_published (bus_service_t *svc)
{
    static uint64_t last;
    bus_service_stats_t stats;
    bus_service_stats (svc, &stats);
    uint64_t delta = stats.sent + stats.dropped - last;
    last = stats.sent + stats.dropped;
    return delta;
}

void
disc_service_test (bool verbose)
{
    char err [300];
    bus_config_t *config = bus_config_load_string (
        "network_id = \"n1\";\ndiscovery = { server = \"http://127.0.0.1:1\"; heartbeat_interval = \"1s\"; };\n"
        "connection = { listen = \"0.0.0.0:4242\"; };\ndevice = { name = \"bftest0\"; };\n"
        "peers = ( { name = \"s\"; public_key = \"q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=\"; } );\n",
        "node.cfg", err, sizeof err);
    assert (config);
    disc_service_config_t checked;
    disc_service_check_config (config, &checked);
    assert (bus_config_error_count (config) == 0);

    char dir [] = "/tmp/disc-service-test-XXXXXX";
    assert (mkdtemp (dir));
    bus_service_t *svc = bus_service_new ("discovery", NULL, dir);
    assert (svc);
    bus_service_set_config (svc, config);
    disc_service_t *self = disc_service_new (svc, &checked, err, sizeof err);
    assert (self);
    assert (streq (disc_service_state (self), "registering"));
    assert (disc_peers_size (self->peers) == 0);
    //  Registered in 10.1.0.0/16: a peer whose vip lies outside the network
    //  is ignored, counted and logged, never given a /32 outside it (issue 16)
    inet_pton (AF_INET, "10.1.0.5", &self->vip);
    self->prefix = 16;
    disc_peer_info_t info;
    memset (&info, 0, sizeof info);
    memset (info.key, 9, 32);
    snprintf (info.name, sizeof info.name, "outsider");
    snprintf (info.vip, sizeof info.vip, "10.2.0.2");
    s_peer_update (self, &info);
    snprintf (info.vip, sizeof info.vip, "192.168.1.1");
    s_peer_update (self, &info);
    assert (disc_peers_size (self->peers) == 0 && self->peers_outside == 2);
    //  Index of the first discovered peer: after the one static peer
    memset (&info, 0, sizeof info);
    memset (info.key, 7, 32);
    snprintf (info.name, sizeof info.name, "x");
    snprintf (info.vip, sizeof info.vip, "10.1.0.2");
    s_peer_update (self, &info);
    assert (disc_peers_by_index (self->peers, 1) && disc_peers_by_index (self->peers, 1)->up);
    assert (self->peers_outside == 2);
    //  The static peer's key is never taken over by the registry
    uint8_t static_key [32];
    memcpy (static_key, node_peers_get (self->static_peers, 0)->key, 32);
    memcpy (info.key, static_key, 32);
    s_peer_update (self, &info);
    assert (disc_peers_size (self->peers) == 1);

    //  Relay grants: relay.servers when the grant changes (every renewed
    //  credential), nothing when the same comes again; no grant: one empty
    //  list; relays coming or going announce the peers again (their relay_id).
    //  Counted as messages handed to the bus (no broker here: sent or dropped).
    snprintf (self->peer_id, sizeof self->peer_id, "00112233aabbccdd");
    disc_relay_t grant;
    memset (&grant, 0, sizeof grant);
    grant.given = true;
    snprintf (grant.servers [grant.servers_count++], sizeof grant.servers [0], "relay-1@192.0.2.10:3479");
    snprintf (grant.network, sizeof grant.network, "8d3f0c2b9a716e54");
    snprintf (grant.credential, sizeof grant.credential, "1700000600.%064d", 0);
    grant.tls_port = 443;
    s_test_published (svc);                             //  from here on
    s_relay_update (self, &grant);
    assert (s_test_published (svc) == 2);              //  relay.servers, peer.up of x
    assert (self->relay_msg.servers_count == 1 && streq (self->relay_msg.peer, "00112233aabbccdd"));
    assert (self->relay_msg.tls_port == 443);
    assert (streq (self->relay_msg.network, grant.network) && streq (self->relay_msg.credential, grant.credential));
    s_relay_update (self, &grant);
    assert (s_test_published (svc) == 0);
    grant.credential [9] = '1';                         //  a heartbeat later
    s_relay_update (self, &grant);
    assert (s_test_published (svc) == 1 && streq (self->relay_msg.credential, grant.credential));
    disc_relay_t none;
    memset (&none, 0, sizeof none);
    s_relay_update (self, &none);
    assert (s_test_published (svc) == 2);              //  an empty relay.servers, peer.up of x
    assert (self->relay_msg.servers_count == 0 && !*self->relay_msg.credential && !self->relay.given);
    s_relay_update (self, &none);
    assert (s_test_published (svc) == 0);              //  once
    s_on_bus_connect (svc, 1, self);                    //  bus.sync: relay.servers, peer.up of x
    assert (s_test_published (svc) == 2);

    //  Endpoints, in a network namespace of our own: loopback is never advertised;
    //  the address that routes to the registry comes first
    if (unshare (CLONE_NEWNET) == 0) {
        char endpoints [DISC_ENDPOINTS_MAX][DISC_ENDPOINT_LEN + 1];
        assert (s_local_endpoints (self, endpoints, DISC_ENDPOINTS_MAX) == 0);     //  lo only
        int rc = system ("ip link set lo up && ip link add d0 type veth peer name d1"
                         " && ip addr add 198.51.100.2/24 dev d0 && ip addr add 192.0.2.7/24 dev d1"
                         " && ip addr add 10.1.0.5/16 dev d1 && ip link set d0 up && ip link set d1 up");
        assert (rc == 0);
        {
            inet_pton (AF_INET, "10.1.0.5", &self->vip);
            self->prefix = 16;
            snprintf (self->cfg.host, sizeof self->cfg.host, "192.0.2.9");
            size_t count = s_local_endpoints (self, endpoints, DISC_ENDPOINTS_MAX);
            if (verbose)
                for (size_t i = 0; i < count; i++)
                    printf ("  endpoint %s\n", endpoints [i]);
            //  192.0.2.7 routes to the registry (192.0.2.9): first; our own 10.1/16 never
            assert (count == 2);
            assert (streq (endpoints [0], "192.0.2.7:4242") && streq (endpoints [1], "198.51.100.2:4242"));
            //  nat's port mapping goes first, as an endpoint and an srflx
            //  candidate; behind another NAT, last; withdrawn, gone
            rest_heartbeat_req_t *hb = calloc (1, sizeof *hb);
            assert (hb);
            snprintf (self->mapped.external, sizeof self->mapped.external, "203.0.113.7:40000");
            self->mapped.local_port = 4242;
            S_FILL_ENDPOINTS (self, hb);
            assert (hb->endpoints_count == 3 && streq (hb->endpoints [0], "203.0.113.7:40000"));
            assert (streq (hb->endpoints [1], "192.0.2.7:4242") && hb->candidates_count == 3);
            assert (streq (hb->candidates [0], "candidate:100 1 UDP 1694498815 203.0.113.7 40000 typ srflx raddr 0.0.0.0 rport 4242"));
            self->mapped.external_private = true;
            S_FILL_ENDPOINTS (self, hb);
            assert (hb->endpoints_count == 3 && streq (hb->endpoints [2], "203.0.113.7:40000"));
            assert (strstr (hb->candidates [2], "typ srflx"));
            memset (&self->mapped, 0, sizeof self->mapped);
            S_FILL_ENDPOINTS (self, hb);
            assert (hb->endpoints_count == 2 && hb->candidates_count == 2);
            free (hb);
            snprintf (self->cfg.host, sizeof self->cfg.host, "127.0.0.1");
        }
    }

    //  Nobody at 127.0.0.1:1: the attempts fail and are retried at once, then
    //  after 1 s (backoff), and the state says offline
    bus_loop_t *loop = bus_service_loop (svc);
    bus_loop_timer (loop, 1600, 1, s_test_stop, NULL);
    int64_t start = zclock_mono ();
    bus_loop_start (loop);
    if (verbose)
        printf ("  %llu failed attempts in %lld ms, state %s\n", (unsigned long long) self->failures,
                (long long) (zclock_mono () - start), disc_service_state (self));
    assert (self->failures == 3 && streq (disc_service_state (self), "offline"));
    disc_service_destroy (&self);
    assert (self == NULL);
    bus_service_destroy (&svc);
    bus_config_destroy (&config);
    char cmd [200];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert (system (cmd) == 0);
}
