/*  portmap: a UDP port mapping on the local gateway through UPnP-IGD
    (miniupnpc) or NAT-PMP (libnatpmp); see portmap.h and docs/portmap.md.

    Two halves:
    - the caller's state machine (portmap_t): state, the mapping, renewal at half
      the lease, retries with backoff, expiry. Pure bookkeeping on the caller's
      clock; it never calls the libraries.
    - the worker (s_worker_t) on its own detached thread: reads one request at a
      time from a SOCK_SEQPACKET socketpair, makes the blocking library calls,
      checks what the gateway said and writes one reply. It owns everything it
      touches, so the caller can leave without waiting for it.

    Why not a zactor: zactor_destroy waits for the actor to end, and an actor in
    the middle of a miniupnpc call (HTTP timeouts of seconds) cannot be ended
    sooner. A detached thread and a socketpair give a shutdown bounded by
    shutdown_ms, need no ZeroMQ context (the worker outlives nothing of the
    caller's), and the fd fits zloop and GLib's loop alike. */
#include "portmap.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define streq_(a, b) (strcmp ((a), (b)) == 0)

#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#include <natpmp.h>

#define s_ERR_SIZE          200
#define s_CONFLICT_TRIES    4

//  --------------------------------------------------------------------------
//  Requests and replies between the caller and the worker (same process: the
//  structs are copied whole through the socketpair)

enum { s_OP_MAP = 1, s_OP_DELETE, s_OP_EXIT };

typedef struct {
    int op;
    uint32_t seq;
    int protocols;              //  MAP: mask of protocols to try; DELETE: the one
    uint16_t ext_port;          //  MAP: preferred; DELETE: the one to delete
    uint32_t lifetime_s;
} s_request_t;

typedef struct {
    int op;
    uint32_t seq;
    portmap_err_t err;
    char error [s_ERR_SIZE];
    portmap_mapping_t mapping;  //  protocol, addresses, port, lifetime, private
} s_reply_t;

//  --------------------------------------------------------------------------
//  Validation of what a gateway says

int
portmap_check_external (const char *addr, bool *is_private, char *err, size_t err_size)
{
    struct in_addr in;
    if (!addr || !*addr || inet_pton (AF_INET, addr, &in) != 1) {
        snprintf (err, err_size, "external address '%.40s' is not an IPv4 address", addr ? addr : "");
        return -1;
    }
    uint32_t a = ntohl (in.s_addr);
    const char *why = NULL;
    if ((a >> 24) == 0)
        why = "unspecified (0.0.0.0/8)";
    else
    if ((a >> 24) == 127)
        why = "loopback";
    else
    if ((a >> 28) == 0xE)
        why = "multicast";
    else
    if ((a >> 28) == 0xF)
        why = "reserved or broadcast (240.0.0.0/4)";
    if (why) {
        snprintf (err, err_size, "external address %s is %s", addr, why);
        return -1;
    }
    if (is_private)
        *is_private = (a >> 24) == 10                      //  RFC 1918
                   || (a >> 20) == (172 << 4 | 1)          //  172.16/12
                   || (a >> 16) == (192 << 8 | 168)        //  192.168/16
                   || (a >> 22) == (100 << 2 | 1)          //  100.64/10, RFC 6598
                   || (a >> 16) == (169 << 8 | 254);       //  link-local
    return 0;
}

//  A granted lifetime: 0 when usable
static int
s_check_lifetime (uint32_t granted, char *err, size_t err_size)
{
    if (granted < PORTMAP_LIFETIME_MIN) {
        snprintf (err, err_size, "lifetime %u s is below the minimum of %d s", granted, PORTMAP_LIFETIME_MIN);
        return -1;
    }
    return 0;
}

static int64_t
s_clock_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  --------------------------------------------------------------------------
//  The worker

typedef struct {
    int fd;
    uint16_t local_port;
    char local_addr [16];
    char natpmp_gateway [16];
    char upnp_root_url [256];
    char description [64];
    int discover_ms;
    int natpmp_timeout_ms;
    //  The UPnP gateway found last (dropped when it stops answering)
    bool have_igd;
    struct UPNPUrls urls;
    struct IGDdatas data;
    char lanaddr [64];
    uint32_t rand_state;
} s_worker_t;

static uint16_t
s_random_port (s_worker_t *w)
{
    //  xorshift32: distinct ports for conflict retries, nothing secret
    uint32_t x = w->rand_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    w->rand_state = x;
    return (uint16_t) (1024 + x % (65536 - 1024));
}

static void
s_igd_drop (s_worker_t *w)
{
    if (w->have_igd)
        FreeUPNPUrls (&w->urls);
    w->have_igd = false;
}

//  Finds the UPnP IGD (once; kept until it stops answering)
static portmap_err_t
s_upnp_find (s_worker_t *w, char *err, size_t err_size)
{
    if (w->have_igd)
        return PORTMAP_ERR_NONE;
    memset (&w->urls, 0, sizeof w->urls);
    memset (&w->data, 0, sizeof w->data);
    w->lanaddr [0] = 0;
    if (w->upnp_root_url [0]) {
        if (UPNP_GetIGDFromUrl (w->upnp_root_url, &w->urls, &w->data, w->lanaddr, sizeof w->lanaddr) != 1) {
            snprintf (err, err_size, "no IGD description at %.100s", w->upnp_root_url);
            return PORTMAP_ERR_NO_GATEWAY;
        }
        if (!w->urls.controlURL || !w->data.first.servicetype [0]) {
            FreeUPNPUrls (&w->urls);
            snprintf (err, err_size, "the description at %.100s names no WAN connection service", w->upnp_root_url);
            return PORTMAP_ERR_BOGUS;
        }
        w->have_igd = true;
        return PORTMAP_ERR_NONE;
    }
    //  upnpDiscover's types, but all searched at once (searchalltypes): one wait
    //  of discover_ms in all, where upnpDiscover waits once per type (4 s
    //  measured with nobody answering)
    static const char *const types [] = {
        "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
        "urn:schemas-upnp-org:service:WANIPConnection:1",
        "urn:schemas-upnp-org:service:WANPPPConnection:1",
        "upnp:rootdevice",
        NULL
    };
    int error = 0;
    struct UPNPDev *devlist = upnpDiscoverDevices (types, w->discover_ms, NULL, NULL, UPNP_LOCAL_PORT_ANY,
                                                   0, 2, &error, 1);
    if (!devlist) {
        snprintf (err, err_size, "no UPnP gateway answered within %d ms", w->discover_ms);
        return PORTMAP_ERR_NO_GATEWAY;
    }
#if MINIUPNPC_API_VERSION >= 18
    //  1 connected, 2 connected with a reserved address, 3 not connected, 4 not an IGD
    int rc = UPNP_GetValidIGD (devlist, &w->urls, &w->data, w->lanaddr, sizeof w->lanaddr, NULL, 0);
    bool usable = rc >= 1 && rc <= 3;
#else
    //  1 connected with a routable address, 2 not connected or a reserved
    //  address (the address is checked below), 3 not an IGD
    int rc = UPNP_GetValidIGD (devlist, &w->urls, &w->data, w->lanaddr, sizeof w->lanaddr);
    bool usable = rc == 1 || rc == 2;
#endif
    freeUPNPDevlist (devlist);
    if (!usable) {
        if (rc > 0)
            FreeUPNPUrls (&w->urls);
        snprintf (err, err_size, "UPnP devices answered, none is an Internet gateway");
        return PORTMAP_ERR_NO_GATEWAY;
    }
    if (!w->urls.controlURL || !w->data.first.servicetype [0]) {
        FreeUPNPUrls (&w->urls);
        snprintf (err, err_size, "the UPnP gateway names no WAN connection service");
        return PORTMAP_ERR_BOGUS;
    }
    w->have_igd = true;
    return PORTMAP_ERR_NONE;
}

static portmap_err_t
s_upnp_error (s_worker_t *w, int rc, const char *what, char *err, size_t err_size)
{
    const char *text = strupnperror (rc);
    snprintf (err, err_size, "%s: %s (%d)", what, text ? text : "unknown error", rc);
    if (rc < 0) {
        //  HTTP error or garbage: find the gateway again next time
        s_igd_drop (w);
        return PORTMAP_ERR_GATEWAY;
    }
    if (rc == 718 || rc == 729)
        return PORTMAP_ERR_CONFLICT;
    return PORTMAP_ERR_REFUSED;
}

//  The host:port of an IGD's control URL ("http://10.1.0.1:5555/ctl/IPConn"),
//  shown as the gateway that granted the mapping
static void
s_url_host (const char *url, char *out, size_t size)
{
    const char *start = strstr (url, "://");
    start = start ? start + 3 : url;
    size_t len = strcspn (start, "/?#");
    snprintf (out, size, "%.*s", (int) (len < size - 1 ? len : size - 1), start);
}

static portmap_err_t
s_upnp_map (s_worker_t *w, const s_request_t *req, portmap_mapping_t *m, char *err, size_t err_size)
{
    portmap_err_t rc = s_upnp_find (w, err, err_size);
    if (rc != PORTMAP_ERR_NONE)
        return rc;
    const char *control = w->urls.controlURL;
    const char *service = w->data.first.servicetype;
    char ext_addr [64] = "";
    int r = UPNP_GetExternalIPAddress (control, service, ext_addr);
    if (r != UPNPCOMMAND_SUCCESS)
        return s_upnp_error (w, r, "GetExternalIPAddress", err, err_size);
    ext_addr [sizeof ext_addr - 1] = 0;
    if (portmap_check_external (ext_addr, &m->external_private, err, err_size))
        return PORTMAP_ERR_BOGUS;
    const char *client = w->local_addr [0] ? w->local_addr : w->lanaddr;
    struct in_addr in;
    if (inet_pton (AF_INET, client, &in) != 1) {
        snprintf (err, err_size, "no IPv4 address of ours towards the gateway ('%.40s')", client);
        return PORTMAP_ERR_BOGUS;
    }
    bool igd2 = strstr (service, ":2") != NULL;
    char in_port [8], ext_port [8], lease [16];
    snprintf (in_port, sizeof in_port, "%u", w->local_port);
    snprintf (lease, sizeof lease, "%u", req->lifetime_s);
    uint16_t port = req->ext_port ? req->ext_port : w->local_port;
    bool permanent = false;
    bool same_port_tried = port == w->local_port;
    for (int attempt = 0; ; attempt++) {
        snprintf (ext_port, sizeof ext_port, "%u", port);
        r = UPNP_AddPortMapping (control, service, ext_port, in_port, client,
                                 w->description, "UDP", NULL, lease);
        if (r == UPNPCOMMAND_SUCCESS)
            break;
        if (r == 725 && !permanent) {
            //  OnlyPermanentLeasesSupported: ask for "0" and renew anyway
            snprintf (lease, sizeof lease, "0");
            permanent = true;
            attempt--;
            continue;
        }
        if (r == 724 && !same_port_tried) {
            //  SamePortValuesRequired
            port = w->local_port;
            same_port_tried = true;
            continue;
        }
        if ((r == 718 || r == 729) && attempt + 1 < s_CONFLICT_TRIES) {
            //  ConflictInMappingEntry, ConflictWithOtherMechanisms (the port is
            //  the gateway's own): IGDv2 picks a free port, v1 gets a random one
            if (igd2) {
                char reserved [8] = "";
                r = UPNP_AddAnyPortMapping (control, service, ext_port, in_port, client,
                                            w->description, "UDP", NULL, lease, reserved);
                if (r == UPNPCOMMAND_SUCCESS) {
                    char *end;
                    unsigned long p = strtoul (reserved, &end, 10);
                    if (end == reserved || *end || p == 0 || p > 65535) {
                        snprintf (err, err_size, "AddAnyPortMapping reserved port '%.8s'", reserved);
                        return PORTMAP_ERR_BOGUS;
                    }
                    port = (uint16_t) p;
                    snprintf (ext_port, sizeof ext_port, "%u", port);
                    break;
                }
                if (r != 718 && r != 729)
                    return s_upnp_error (w, r, "AddAnyPortMapping", err, err_size);
            }
            port = s_random_port (w);
            continue;
        }
        return s_upnp_error (w, r, "AddPortMapping", err, err_size);
    }
    //  Read the entry back: the gateway's table must send this port to us
    char int_client [64] = "", int_port [8] = "", desc [128] = "", enabled [8] = "", granted [32] = "";
    r = UPNP_GetSpecificPortMappingEntry (control, service, ext_port, "UDP", NULL,
                                          int_client, int_port, desc, enabled, granted);
    uint32_t lifetime = permanent ? 0 : req->lifetime_s;
    if (r == UPNPCOMMAND_SUCCESS) {
        int_client [sizeof int_client - 1] = 0;
        char *end;
        unsigned long ip = strtoul (int_port, &end, 10);
        if (strcmp (int_client, client) != 0 || end == int_port || *end || ip != w->local_port) {
            snprintf (err, err_size, "the gateway maps port %u to %.20s:%.8s, not to %s:%u",
                      port, int_client, int_port, client, w->local_port);
            return PORTMAP_ERR_BOGUS;
        }
        unsigned long left = strtoul (granted, &end, 10);
        if (end == granted || *end || left > PORTMAP_LIFETIME_MAX * 10UL) {
            snprintf (err, err_size, "lease duration '%.16s' is not a number of seconds", granted);
            return PORTMAP_ERR_BOGUS;
        }
        if (left > 0)
            lifetime = (uint32_t) left;
    }
    //  else: the IGD cannot list its entries; the AddPortMapping answer stands
    if (lifetime == 0)
        lifetime = req->lifetime_s;    //  "permanent": renewed all the same
    if (s_check_lifetime (lifetime, err, err_size))
        return PORTMAP_ERR_BOGUS;
    m->protocol = PORTMAP_UPNP;
    s_url_host (control, m->gateway, sizeof m->gateway);
    snprintf (m->external_addr, sizeof m->external_addr, "%.15s", ext_addr);
    snprintf (m->internal_addr, sizeof m->internal_addr, "%.15s", client);
    m->external_port = port;
    m->lifetime_s = lifetime;
    return PORTMAP_ERR_NONE;
}

static portmap_err_t
s_upnp_delete (s_worker_t *w, uint16_t port, char *err, size_t err_size)
{
    portmap_err_t rc = s_upnp_find (w, err, err_size);
    if (rc != PORTMAP_ERR_NONE)
        return rc;
    char ext_port [8];
    snprintf (ext_port, sizeof ext_port, "%u", port);
    int r = UPNP_DeletePortMapping (w->urls.controlURL, w->data.first.servicetype, ext_port, "UDP", NULL);
    if (r != UPNPCOMMAND_SUCCESS)
        return s_upnp_error (w, r, "DeletePortMapping", err, err_size);
    return PORTMAP_ERR_NONE;
}

//  One NAT-PMP exchange: the request is pending in np; waits for its answer
//  within timeout_ms (libnatpmp resends at 250, 750 ms ...). A datagram shorter
//  than the answer it should be is dropped here: libnatpmp would read past what
//  arrived.
static portmap_err_t
s_natpmp_wait (s_worker_t *w, natpmp_t *np, int want_type, natpmpresp_t *resp, char *err, size_t err_size)
{
    int64_t deadline = s_clock_ms () + w->natpmp_timeout_ms;
    size_t need = want_type == NATPMP_RESPTYPE_PUBLICADDRESS ? 12 : 16;
    while (true) {
        int64_t left = deadline - s_clock_ms ();
        if (left <= 0) {
            snprintf (err, err_size, "no answer within %d ms", w->natpmp_timeout_ms);
            return PORTMAP_ERR_NO_GATEWAY;
        }
        struct timeval tv;
        int wait = (int) left;
        if (getnatpmprequesttimeout (np, &tv) == 0) {
            int64_t retry = (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
            if (retry < 0)
                retry = 0;
            if (retry < wait)
                wait = (int) retry;
        }
        struct pollfd pfd = { .fd = np->s, .events = POLLIN };
        if (poll (&pfd, 1, wait) > 0) {
            uint8_t peek [32];
            ssize_t n = recv (np->s, peek, sizeof peek, MSG_PEEK | MSG_DONTWAIT);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                //  The error is consumed here (ICMP port unreachable: ECONNREFUSED)
                snprintf (err, err_size, "the gateway does not speak NAT-PMP (%s)", strerror (errno));
                return PORTMAP_ERR_NO_GATEWAY;
            }
            //  An error answer (result code != 0) may be 8 bytes: it carries nothing else
            bool error_answer = n >= 4 && (peek [2] | peek [3]) != 0;
            if (n >= 0 && (size_t) n < need && !error_answer) {
                (void) recv (np->s, peek, sizeof peek, MSG_DONTWAIT);
                snprintf (err, err_size, "answer of %zd bytes, want %zu", n, need);
                return PORTMAP_ERR_BOGUS;
            }
        }
        int r = readnatpmpresponseorretry (np, resp);
        if (r == NATPMP_TRYAGAIN)
            continue;
        if (r == 0) {
            if (resp->type != want_type) {
                snprintf (err, err_size, "answer of type %u to a request of type %d", resp->type, want_type);
                return PORTMAP_ERR_BOGUS;
            }
            return PORTMAP_ERR_NONE;
        }
        switch (r) {
            case NATPMP_ERR_NOGATEWAYSUPPORT:
            case NATPMP_ERR_RECVFROM:
                snprintf (err, err_size, "the gateway does not speak NAT-PMP (%s)", strerror (errno));
                return PORTMAP_ERR_NO_GATEWAY;
            case NATPMP_ERR_NOTAUTHORIZED:
                snprintf (err, err_size, "not authorized (result 2)");
                return PORTMAP_ERR_REFUSED;
            case NATPMP_ERR_NETWORKFAILURE:
                snprintf (err, err_size, "the gateway has no network (result 3)");
                return PORTMAP_ERR_GATEWAY;
            case NATPMP_ERR_OUTOFRESOURCES:
                snprintf (err, err_size, "out of resources (result 4)");
                return PORTMAP_ERR_CONFLICT;
            case NATPMP_ERR_UNSUPPORTEDVERSION:
                snprintf (err, err_size, "the gateway wants another version (PCP only?)");
                return PORTMAP_ERR_REFUSED;
            case NATPMP_ERR_UNSUPPORTEDOPCODE:
                snprintf (err, err_size, "answer with an unknown opcode");
                return PORTMAP_ERR_BOGUS;
            default:
                snprintf (err, err_size, "error %d", r);
                return PORTMAP_ERR_REFUSED;
        }
    }
}

static portmap_err_t
s_natpmp_open (s_worker_t *w, natpmp_t *np, char *err, size_t err_size)
{
    in_addr_t gw = 0;
    int force = 0;
    if (w->natpmp_gateway [0]) {
        struct in_addr in;
        inet_pton (AF_INET, w->natpmp_gateway, &in);     //  checked in portmap_new
        gw = in.s_addr;
        force = 1;
    }
    int r = initnatpmp (np, force, gw);
    if (r == NATPMP_ERR_CANNOTGETGATEWAY) {
        snprintf (err, err_size, "no default gateway");
        return PORTMAP_ERR_NO_GATEWAY;
    }
    if (r < 0) {
        snprintf (err, err_size, "socket: error %d (%s)", r, strerror (errno));
        return PORTMAP_ERR_INTERNAL;
    }
    return PORTMAP_ERR_NONE;
}

static portmap_err_t
s_natpmp_map (s_worker_t *w, const s_request_t *req, portmap_mapping_t *m, char *err, size_t err_size)
{
    natpmp_t np;
    portmap_err_t rc = s_natpmp_open (w, &np, err, err_size);
    if (rc != PORTMAP_ERR_NONE)
        return rc;
    natpmpresp_t resp;
    memset (&resp, 0, sizeof resp);
    if (sendpublicaddressrequest (&np) < 0) {
        snprintf (err, err_size, "cannot send (%s)", strerror (errno));
        rc = PORTMAP_ERR_NO_GATEWAY;
    }
    else
        rc = s_natpmp_wait (w, &np, NATPMP_RESPTYPE_PUBLICADDRESS, &resp, err, err_size);
    char ext_addr [INET_ADDRSTRLEN] = "";
    if (rc == PORTMAP_ERR_NONE) {
        inet_ntop (AF_INET, &resp.pnu.publicaddress.addr, ext_addr, sizeof ext_addr);
        if (portmap_check_external (ext_addr, &m->external_private, err, err_size))
            rc = PORTMAP_ERR_BOGUS;
    }
    if (rc == PORTMAP_ERR_NONE) {
        uint16_t port = req->ext_port ? req->ext_port : w->local_port;
        if (sendnewportmappingrequest (&np, NATPMP_PROTOCOL_UDP, w->local_port, port, req->lifetime_s) < 0) {
            snprintf (err, err_size, "cannot send (%s)", strerror (errno));
            rc = PORTMAP_ERR_NO_GATEWAY;
        }
        else
            rc = s_natpmp_wait (w, &np, NATPMP_RESPTYPE_UDPPORTMAPPING, &resp, err, err_size);
    }
    if (rc == PORTMAP_ERR_NONE) {
        uint16_t priv = resp.pnu.newportmapping.privateport;
        uint16_t pub = resp.pnu.newportmapping.mappedpublicport;
        uint32_t lifetime = resp.pnu.newportmapping.lifetime;
        if (priv != w->local_port) {
            snprintf (err, err_size, "answer for port %u, we asked for %u", priv, w->local_port);
            rc = PORTMAP_ERR_BOGUS;
        }
        else
        if (pub == 0) {
            snprintf (err, err_size, "answer with external port 0");
            rc = PORTMAP_ERR_BOGUS;
        }
        else
        if (s_check_lifetime (lifetime, err, err_size))
            rc = PORTMAP_ERR_BOGUS;
        else {
            m->protocol = PORTMAP_NATPMP;
            struct in_addr gw = { .s_addr = np.gateway };
            inet_ntop (AF_INET, &gw, m->gateway, sizeof m->gateway);
            snprintf (m->external_addr, sizeof m->external_addr, "%.15s", ext_addr);
            m->internal_addr [0] = 0;
            m->external_port = pub;
            m->lifetime_s = lifetime;
        }
    }
    closenatpmp (&np);
    return rc;
}

static portmap_err_t
s_natpmp_delete (s_worker_t *w, char *err, size_t err_size)
{
    natpmp_t np;
    portmap_err_t rc = s_natpmp_open (w, &np, err, err_size);
    if (rc != PORTMAP_ERR_NONE)
        return rc;
    natpmpresp_t resp;
    //  RFC 6886 3.4: lifetime 0 and suggested port 0 delete the mapping
    if (sendnewportmappingrequest (&np, NATPMP_PROTOCOL_UDP, w->local_port, 0, 0) < 0) {
        snprintf (err, err_size, "cannot send (%s)", strerror (errno));
        rc = PORTMAP_ERR_NO_GATEWAY;
    }
    else
        rc = s_natpmp_wait (w, &np, NATPMP_RESPTYPE_UDPPORTMAPPING, &resp, err, err_size);
    closenatpmp (&np);
    return rc;
}

static void
s_worker_map (s_worker_t *w, const s_request_t *req, s_reply_t *reply)
{
    char pmp_err [s_ERR_SIZE] = "", upnp_err [s_ERR_SIZE] = "";
    portmap_err_t pmp = PORTMAP_ERR_NO_GATEWAY, upnp = PORTMAP_ERR_NO_GATEWAY;
    //  NAT-PMP first: one unicast round trip to the gateway (a "port unreachable"
    //  ends it at once), where UPnP waits out an SSDP search
    if (req->protocols & PORTMAP_NATPMP) {
        pmp = s_natpmp_map (w, req, &reply->mapping, pmp_err, sizeof pmp_err);
        if (pmp == PORTMAP_ERR_NONE) {
            reply->err = PORTMAP_ERR_NONE;
            return;
        }
    }
    if (req->protocols & PORTMAP_UPNP) {
        upnp = s_upnp_map (w, req, &reply->mapping, upnp_err, sizeof upnp_err);
        if (upnp == PORTMAP_ERR_NONE) {
            reply->err = PORTMAP_ERR_NONE;
            return;
        }
    }
    //  The error of the protocol that found a gateway says most
    if (!(req->protocols & PORTMAP_NATPMP))
        reply->err = upnp;
    else
    if (!(req->protocols & PORTMAP_UPNP))
        reply->err = pmp;
    else
        reply->err = upnp != PORTMAP_ERR_NO_GATEWAY ? upnp : pmp;
    if ((req->protocols & PORTMAP_ANY) == PORTMAP_ANY)
        snprintf (reply->error, sizeof reply->error, "NAT-PMP: %.90s; UPnP: %.90s", pmp_err, upnp_err);
    else
        snprintf (reply->error, sizeof reply->error, "%s: %.180s",
                  req->protocols & PORTMAP_NATPMP ? "NAT-PMP" : "UPnP",
                  req->protocols & PORTMAP_NATPMP ? pmp_err : upnp_err);
}

static void *
s_worker_run (void *arg)
{
    s_worker_t *w = (s_worker_t *) arg;
    int fd = w->fd;
    //  miniupnpc writes its HTTP requests with send (..., 0): a gateway (or any
    //  host that answered SSDP) that resets the connection would raise SIGPIPE,
    //  which kills a process that does not ignore it (nat does not). Blocked in
    //  this thread, the signal stays pending here and the write fails with EPIPE;
    //  the pending signal is taken back after each request.
    sigset_t pipe_set;
    sigemptyset (&pipe_set);
    sigaddset (&pipe_set, SIGPIPE);
    pthread_sigmask (SIG_BLOCK, &pipe_set, NULL);
    const struct timespec no_wait = { 0, 0 };
    s_request_t req;
    while (true) {
        ssize_t n = recv (fd, &req, sizeof req, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t) sizeof req)
            break;              //  the caller is gone
        if (req.op == s_OP_EXIT)
            break;
        s_reply_t reply;
        memset (&reply, 0, sizeof reply);
        reply.op = req.op;
        reply.seq = req.seq;
        int64_t start = s_clock_ms ();
        if (req.op == s_OP_MAP)
            s_worker_map (w, &req, &reply);
        else
        if (req.op == s_OP_DELETE) {
            reply.mapping.protocol = req.protocols;
            reply.mapping.external_port = req.ext_port;
            if (req.protocols == PORTMAP_UPNP)
                reply.err = s_upnp_delete (w, req.ext_port, reply.error, sizeof reply.error);
            else
                reply.err = s_natpmp_delete (w, reply.error, sizeof reply.error);
        }
        reply.mapping.took_ms = s_clock_ms () - start;
        while (sigtimedwait (&pipe_set, NULL, &no_wait) == SIGPIPE)
            ;
        if (send (fd, &reply, sizeof reply, MSG_NOSIGNAL) != (ssize_t) sizeof reply)
            break;
    }
    //  Free first, then say so: once the caller has the EXIT answer, nothing of
    //  this thread is left to leak
    s_igd_drop (w);
    free (w);
    s_reply_t bye;
    memset (&bye, 0, sizeof bye);
    bye.op = s_OP_EXIT;
    (void) send (fd, &bye, sizeof bye, MSG_NOSIGNAL | MSG_DONTWAIT);
    close (fd);
    return NULL;
}

//  --------------------------------------------------------------------------
//  The caller's side

struct _portmap_t {
    portmap_config_t config;
    char *local_addr, *natpmp_gateway, *upnp_root_url, *description;
    int fd;
    portmap_state_t state;
    portmap_mapping_t mapping;
    bool have_mapping;          //  a mapping exists at the gateway (MAPPED, or renewing)
    uint32_t seq;
    uint32_t pending_seq;       //  the MAP request we wait for (0: none)
    bool pending_renew;
    int64_t retry_at;           //  FAILED: next attempt
    int retry_delay;
    int renew_delay;            //  after a failed renewal
    portmap_err_t err;
    char error [s_ERR_SIZE];
    uint64_t requests, renewals, failures;
};

static char *
s_strdup (const char *s)
{
    return s ? strdup (s) : NULL;
}

portmap_t *
portmap_new (const portmap_config_t *config, char *err, size_t err_size)
{
    portmap_config_t c = *config;
    struct in_addr in;
    if (c.local_port == 0) {
        snprintf (err, err_size, "local_port: 0 is not a port (1-65535)");
        return NULL;
    }
    if (c.local_addr && inet_pton (AF_INET, c.local_addr, &in) != 1) {
        snprintf (err, err_size, "local_addr: '%.40s' is not an IPv4 address", c.local_addr);
        return NULL;
    }
    if (c.natpmp_gateway && inet_pton (AF_INET, c.natpmp_gateway, &in) != 1) {
        snprintf (err, err_size, "natpmp_gateway: '%.40s' is not an IPv4 address", c.natpmp_gateway);
        return NULL;
    }
    if (c.upnp_root_url && (strncmp (c.upnp_root_url, "http://", 7) != 0 || strlen (c.upnp_root_url) >= 256)) {
        snprintf (err, err_size, "upnp_root_url: '%.60s' is not an http:// URL (under 256 characters)", c.upnp_root_url);
        return NULL;
    }
    if (c.protocols & ~PORTMAP_ANY) {
        snprintf (err, err_size, "protocols: unknown bits 0x%x", c.protocols & ~PORTMAP_ANY);
        return NULL;
    }
    if (c.protocols == 0)
        c.protocols = PORTMAP_ANY;
    if (c.lifetime_s == 0)
        c.lifetime_s = 3600;
    if (c.lifetime_s < 2 * PORTMAP_LIFETIME_MIN || c.lifetime_s > PORTMAP_LIFETIME_MAX) {
        snprintf (err, err_size, "lifetime: %u s is out of range %d-%d s", c.lifetime_s,
                  2 * PORTMAP_LIFETIME_MIN, PORTMAP_LIFETIME_MAX);
        return NULL;
    }
    if (c.discover_ms == 0)
        c.discover_ms = 1000;
    if (c.natpmp_timeout_ms == 0)
        c.natpmp_timeout_ms = 750;
    if (c.shutdown_ms == 0)
        c.shutdown_ms = 1000;
    if (c.retry_ms == 0)
        c.retry_ms = 30000;
    if (c.retry_max_ms == 0)
        c.retry_max_ms = 1800000;
    if (c.discover_ms < 10 || c.discover_ms > 10000 || c.natpmp_timeout_ms < 10 || c.natpmp_timeout_ms > 10000
    ||  c.shutdown_ms < 0 || c.shutdown_ms > 60000 || c.retry_ms < 10 || c.retry_max_ms < c.retry_ms) {
        snprintf (err, err_size, "timeouts: discover_ms and natpmp_timeout_ms 10-10000, shutdown_ms 0-60000, "
                  "retry_ms >= 10, retry_max_ms >= retry_ms");
        return NULL;
    }
    if (c.description && strlen (c.description) >= 64) {
        snprintf (err, err_size, "description: longer than 63 characters");
        return NULL;
    }
    int sv [2];
    if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
        snprintf (err, err_size, "socketpair: %s", strerror (errno));
        return NULL;
    }
    s_worker_t *w = (s_worker_t *) calloc (1, sizeof *w);
    portmap_t *self = (portmap_t *) calloc (1, sizeof *self);
    assert (w && self);
    w->fd = sv [1];
    w->local_port = c.local_port;
    snprintf (w->local_addr, sizeof w->local_addr, "%s", c.local_addr ? c.local_addr : "");
    snprintf (w->natpmp_gateway, sizeof w->natpmp_gateway, "%s", c.natpmp_gateway ? c.natpmp_gateway : "");
    snprintf (w->upnp_root_url, sizeof w->upnp_root_url, "%s", c.upnp_root_url ? c.upnp_root_url : "");
    snprintf (w->description, sizeof w->description, "%s", c.description ? c.description : "bifrost");
    w->discover_ms = c.discover_ms;
    w->natpmp_timeout_ms = c.natpmp_timeout_ms;
    w->rand_state = (uint32_t) s_clock_ms () ^ ((uint32_t) getpid () << 16) ^ c.local_port;
    if (w->rand_state == 0)
        w->rand_state = 1;

    self->local_addr = s_strdup (c.local_addr);
    self->natpmp_gateway = s_strdup (c.natpmp_gateway);
    self->upnp_root_url = s_strdup (c.upnp_root_url);
    self->description = s_strdup (c.description);
    c.local_addr = self->local_addr;
    c.natpmp_gateway = self->natpmp_gateway;
    c.upnp_root_url = self->upnp_root_url;
    c.description = self->description;
    self->config = c;
    self->fd = sv [0];
    fcntl (self->fd, F_SETFL, fcntl (self->fd, F_GETFL) | O_NONBLOCK);
    self->state = PORTMAP_IDLE;
    self->retry_delay = c.retry_ms;
    self->renew_delay = c.retry_ms;
    self->retry_at = -1;

    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init (&attr);
    pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create (&thread, &attr, s_worker_run, w);
    pthread_attr_destroy (&attr);
    if (rc) {
        snprintf (err, err_size, "worker thread: %s", strerror (rc));
        close (sv [1]);
        free (w);
        self->fd = sv [0];
        portmap_destroy (&self);
        return NULL;
    }
    return self;
}

static void
s_send (portmap_t *self, int op, int protocols, uint16_t ext_port, uint32_t *seq_out)
{
    s_request_t req;
    memset (&req, 0, sizeof req);
    req.op = op;
    req.seq = ++self->seq;
    if (req.seq == 0)
        req.seq = ++self->seq;
    req.protocols = protocols;
    req.ext_port = ext_port;
    req.lifetime_s = self->config.lifetime_s;
    //  Requests are a few and small; a full socket buffer means the worker is
    //  stuck, and the request is dropped like any other failure
    if (send (self->fd, &req, sizeof req, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t) sizeof req) {
        self->requests++;
        if (seq_out)
            *seq_out = req.seq;
    }
    else
    if (seq_out)
        *seq_out = 0;
}

static void
s_set_error (portmap_t *self, portmap_err_t err, const char *text)
{
    self->err = err;
    snprintf (self->error, sizeof self->error, "%s", text);
}

static void
s_send_map (portmap_t *self, int protocols, uint16_t ext_port, bool renew)
{
    s_send (self, s_OP_MAP, protocols, ext_port, &self->pending_seq);
    self->pending_renew = renew;
    if (self->pending_seq == 0)
        s_set_error (self, PORTMAP_ERR_INTERNAL, "the worker does not take requests");
}

void
portmap_destroy (portmap_t **self_p)
{
    assert (self_p);
    portmap_t *self = *self_p;
    if (!self)
        return;
    if (self->fd >= 0) {
        if (self->have_mapping)
            s_send (self, s_OP_DELETE, self->mapping.protocol, self->mapping.external_port, NULL);
        s_request_t req;
        memset (&req, 0, sizeof req);
        req.op = s_OP_EXIT;
        (void) send (self->fd, &req, sizeof req, MSG_NOSIGNAL | MSG_DONTWAIT);
        //  Wait for the worker's goodbye, at most shutdown_ms
        int64_t deadline = s_clock_ms () + self->config.shutdown_ms;
        while (true) {
            int64_t left = deadline - s_clock_ms ();
            if (left <= 0)
                break;
            struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
            if (poll (&pfd, 1, (int) left) <= 0)
                break;
            s_reply_t reply;
            ssize_t n = recv (self->fd, &reply, sizeof reply, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                break;
            if (n == (ssize_t) sizeof reply && reply.op == s_OP_EXIT)
                break;
        }
        close (self->fd);
    }
    free (self->local_addr);
    free (self->natpmp_gateway);
    free (self->upnp_root_url);
    free (self->description);
    free (self);
    *self_p = NULL;
}

int
portmap_fd (portmap_t *self)
{
    return self->fd;
}

void
portmap_start (portmap_t *self, int64_t now_ms)
{
    if (self->state == PORTMAP_WORKING || self->state == PORTMAP_MAPPED)
        return;
    self->state = PORTMAP_WORKING;
    self->retry_at = -1;
    s_send_map (self, self->config.protocols,
                self->have_mapping ? self->mapping.external_port : self->config.external_port, false);
    if (self->pending_seq == 0) {
        self->state = PORTMAP_FAILED;
        self->retry_at = now_ms + self->retry_delay;
    }
}

void
portmap_renew (portmap_t *self, int64_t now_ms)
{
    if (self->state == PORTMAP_MAPPED && !self->pending_seq && now_ms < self->mapping.renew_ms)
        self->mapping.renew_ms = now_ms;
}

void
portmap_stop (portmap_t *self)
{
    if (self->have_mapping)
        s_send (self, s_OP_DELETE, self->mapping.protocol, self->mapping.external_port, NULL);
    self->have_mapping = false;
    self->pending_seq = 0;
    self->state = PORTMAP_IDLE;
    self->retry_at = -1;
    self->retry_delay = self->config.retry_ms;
    memset (&self->mapping, 0, sizeof self->mapping);
}

//  Schedules the renewal of a mapping taken at now_ms: at half the lifetime
static void
s_schedule (portmap_t *self, int64_t now_ms)
{
    uint32_t lifetime = self->mapping.lifetime_s;
    if (lifetime > self->config.lifetime_s)
        lifetime = self->config.lifetime_s;       //  renew as often as we asked, at least
    self->mapping.mapped_ms = now_ms;
    self->mapping.expires_ms = now_ms + (int64_t) self->mapping.lifetime_s * 1000;
    self->mapping.renew_ms = now_ms + (int64_t) lifetime * 500;
}

static bool
s_on_map_reply (portmap_t *self, const s_reply_t *reply, int64_t now_ms)
{
    bool renew = self->pending_renew;
    self->pending_seq = 0;
    self->pending_renew = false;
    if (reply->err == PORTMAP_ERR_NONE) {
        bool moved = !self->have_mapping
                  || self->mapping.protocol != reply->mapping.protocol
                  || self->mapping.external_port != reply->mapping.external_port
                  || strcmp (self->mapping.external_addr, reply->mapping.external_addr) != 0;
        if (self->have_mapping && moved)
            //  The gateway moved us: the old entry goes
            s_send (self, s_OP_DELETE, self->mapping.protocol, self->mapping.external_port, NULL);
        bool was_mapped = self->state == PORTMAP_MAPPED;
        self->mapping = reply->mapping;
        self->have_mapping = true;
        s_schedule (self, now_ms);
        self->state = PORTMAP_MAPPED;
        self->retry_delay = self->config.retry_ms;
        self->renew_delay = self->config.retry_ms;
        s_set_error (self, PORTMAP_ERR_NONE, "");
        if (renew)
            self->renewals++;
        return moved || !was_mapped;
    }
    self->failures++;
    s_set_error (self, reply->err, reply->error);
    if (renew && self->have_mapping && now_ms < self->mapping.expires_ms) {
        //  The mapping still holds: try again well before it ends
        int64_t left = self->mapping.expires_ms - now_ms;
        int64_t delay = self->renew_delay;
        if (delay > left / 2)
            delay = left / 2;
        if (delay < 1000)
            delay = 1000;
        self->mapping.renew_ms = now_ms + delay;
        self->renew_delay = self->renew_delay * 2 > self->config.retry_max_ms ? self->config.retry_max_ms : self->renew_delay * 2;
        return false;
    }
    bool changed = self->state != PORTMAP_FAILED;
    self->have_mapping = false;
    memset (&self->mapping, 0, sizeof self->mapping);
    self->state = PORTMAP_FAILED;
    self->retry_at = now_ms + self->retry_delay;
    self->retry_delay = self->retry_delay * 2 > self->config.retry_max_ms ? self->config.retry_max_ms : self->retry_delay * 2;
    return changed;
}

bool
portmap_handle (portmap_t *self, int64_t now_ms)
{
    bool changed = false;
    while (true) {
        s_reply_t reply;
        ssize_t n = recv (self->fd, &reply, sizeof reply, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t) sizeof reply)
            break;
        if (reply.op == s_OP_MAP && reply.seq == self->pending_seq && self->state != PORTMAP_IDLE)
            changed |= s_on_map_reply (self, &reply, now_ms);
        else
        if (reply.op == s_OP_MAP && reply.err == PORTMAP_ERR_NONE && self->pending_seq == 0
        && !(self->have_mapping && self->mapping.protocol == reply.mapping.protocol
             && self->mapping.external_port == reply.mapping.external_port))
            //  An answer we no longer wait for (stopped meanwhile): undo it.
            //  Not while another request is out: it asks for the same local
            //  port, most likely gets the same entry, and a delete queued
            //  behind it would remove what it just made
            s_send (self, s_OP_DELETE, reply.mapping.protocol, reply.mapping.external_port, NULL);
    }
    return changed;
}

bool
portmap_tick (portmap_t *self, int64_t now_ms)
{
    if (self->state == PORTMAP_MAPPED && now_ms >= self->mapping.expires_ms) {
        //  Renewals failed until the lease ended
        self->have_mapping = false;
        memset (&self->mapping, 0, sizeof self->mapping);
        self->state = PORTMAP_FAILED;
        self->failures++;
        if (self->err == PORTMAP_ERR_NONE || self->pending_seq == 0)
            s_set_error (self, PORTMAP_ERR_EXPIRED, "the mapping expired: renewals failed until its end");
        else {
            char text [s_ERR_SIZE];
            snprintf (text, sizeof text, "the mapping expired (last renewal: %.150s)", self->error);
            s_set_error (self, PORTMAP_ERR_EXPIRED, text);
        }
        self->pending_seq = 0;
        self->retry_at = now_ms;
        return true;
    }
    if (self->pending_seq)
        return false;
    if (self->state == PORTMAP_MAPPED && now_ms >= self->mapping.renew_ms) {
        s_send_map (self, self->mapping.protocol, self->mapping.external_port, true);
        if (self->pending_seq == 0)
            self->mapping.renew_ms = now_ms + 1000;
        return false;
    }
    if (self->state == PORTMAP_FAILED && self->retry_at >= 0 && now_ms >= self->retry_at) {
        self->state = PORTMAP_WORKING;
        self->retry_at = -1;
        s_send_map (self, self->config.protocols, self->config.external_port, false);
        if (self->pending_seq == 0) {
            self->state = PORTMAP_FAILED;
            self->retry_at = now_ms + self->retry_delay;
            return false;
        }
        return true;
    }
    return false;
}

int64_t
portmap_next_deadline (portmap_t *self)
{
    if (self->state == PORTMAP_MAPPED) {
        if (self->pending_seq)
            return self->mapping.expires_ms;
        return self->mapping.renew_ms < self->mapping.expires_ms ? self->mapping.renew_ms : self->mapping.expires_ms;
    }
    if (self->state == PORTMAP_FAILED && !self->pending_seq)
        return self->retry_at;
    return -1;
}

portmap_state_t
portmap_state (portmap_t *self)
{
    return self->state;
}

const portmap_mapping_t *
portmap_mapping (portmap_t *self)
{
    return self->state == PORTMAP_MAPPED ? &self->mapping : NULL;
}

const char *
portmap_error (portmap_t *self)
{
    return self->error;
}

portmap_err_t
portmap_error_code (portmap_t *self)
{
    return self->err;
}

void
portmap_counters (portmap_t *self, uint64_t *requests, uint64_t *renewals, uint64_t *failures)
{
    if (requests)
        *requests = self->requests;
    if (renewals)
        *renewals = self->renewals;
    if (failures)
        *failures = self->failures;
}

const char *
portmap_state_name (portmap_state_t state)
{
    switch (state) {
        case PORTMAP_IDLE: return "idle";
        case PORTMAP_WORKING: return "working";
        case PORTMAP_MAPPED: return "mapped";
        case PORTMAP_FAILED: return "failed";
    }
    return "?";
}

const char *
portmap_err_name (portmap_err_t err)
{
    switch (err) {
        case PORTMAP_ERR_NONE: return "none";
        case PORTMAP_ERR_NO_GATEWAY: return "no gateway";
        case PORTMAP_ERR_REFUSED: return "refused";
        case PORTMAP_ERR_CONFLICT: return "conflict";
        case PORTMAP_ERR_BOGUS: return "bogus reply";
        case PORTMAP_ERR_GATEWAY: return "gateway error";
        case PORTMAP_ERR_EXPIRED: return "expired";
        case PORTMAP_ERR_INTERNAL: return "internal";
    }
    return "?";
}

const char *
portmap_protocol_name (int protocol)
{
    return protocol == PORTMAP_UPNP ? "upnp" : protocol == PORTMAP_NATPMP ? "natpmp" : "none";
}

//  --------------------------------------------------------------------------
//  Self test: the state machine against a fake NAT-PMP gateway on 127.0.0.1
//  (in a private network namespace when allowed), and the bounds when there is
//  no gateway at all

#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>

//  A private network namespace with lo up: 0, or -1 (not allowed: skip)
static int
s_test_netns (void)
{
    if (unshare (CLONE_NEWNET))
        return -1;
    int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct ifreq ifr;
    memset (&ifr, 0, sizeof ifr);
    strcpy (ifr.ifr_name, "lo");
    int rc = ioctl (fd, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP;
        rc = ioctl (fd, SIOCSIFFLAGS, &ifr);
    }
    close (fd);
    return rc;
}

static bool
s_test_readable (int fd, int ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    return poll (&pfd, 1, ms) == 1;
}

//  The fake gateway: next request (n bytes, 0 on timeout) and who sent it
static ssize_t
s_gw_recv (int gw, uint8_t *buf, struct sockaddr_in *from, int ms)
{
    if (!s_test_readable (gw, ms))
        return 0;
    socklen_t len = sizeof *from;
    return recvfrom (gw, buf, 64, 0, (struct sockaddr *) from, &len);
}

static void
s_put16 (uint8_t *p, uint16_t v) { p [0] = (uint8_t) (v >> 8); p [1] = (uint8_t) v; }
static void
s_put32 (uint8_t *p, uint32_t v) { s_put16 (p, (uint16_t) (v >> 16)); s_put16 (p + 2, (uint16_t) v); }

//  Answers the public address request with addr (result code rc, size bytes)
static void
s_gw_public (int gw, const char *addr, uint16_t rc, size_t size, uint8_t opcode)
{
    uint8_t req [64], rep [12] = { 0, opcode };
    struct sockaddr_in from;
    ssize_t n = s_gw_recv (gw, req, &from, 3000);
    assert (n == 2 && req [0] == 0 && req [1] == 0);
    s_put16 (rep + 2, rc);
    s_put32 (rep + 4, 1234);
    struct in_addr in;
    assert (inet_pton (AF_INET, addr, &in) == 1);
    memcpy (rep + 8, &in, 4);
    sendto (gw, rep, size, 0, (struct sockaddr *) &from, sizeof from);
}

//  Reads a mapping request (checks it) and answers it
static void
s_gw_map (int gw, uint16_t want_priv, uint16_t want_pub, uint32_t want_life,
          uint16_t priv, uint16_t pub, uint32_t life, uint16_t rc)
{
    uint8_t req [64], rep [16] = { 0, 129 };
    struct sockaddr_in from;
    ssize_t n = s_gw_recv (gw, req, &from, 3000);
    assert (n == 12 && req [0] == 0 && req [1] == 1);
    assert ((req [4] << 8 | req [5]) == want_priv);
    assert ((req [6] << 8 | req [7]) == want_pub);
    assert ((uint32_t) (req [8] << 24 | req [9] << 16 | req [10] << 8 | req [11]) == want_life);
    s_put16 (rep + 2, rc);
    s_put32 (rep + 4, 1234);
    s_put16 (rep + 8, priv);
    s_put16 (rep + 10, pub);
    s_put32 (rep + 12, life);
    sendto (gw, rep, sizeof rep, 0, (struct sockaddr *) &from, sizeof from);
}

//  Waits for the worker's answer and hands it to the state machine
static bool
s_test_handle (portmap_t *pm, int64_t now)
{
    assert (s_test_readable (portmap_fd (pm), 5000));
    return portmap_handle (pm, now);
}

//  A first mapping attempt answered by the fake in some bogus way: the
//  attempt must fail with want, after which the state is FAILED
static void
s_test_bogus (portmap_t *pm, int gw, int64_t now, int how, portmap_err_t want, bool verbose)
{
    assert (portmap_state (pm) == PORTMAP_FAILED);
    assert (portmap_tick (pm, now));
    assert (portmap_state (pm) == PORTMAP_WORKING);
    switch (how) {
        case 0: s_gw_public (gw, "0.0.0.0", 0, 12, 128); break;
        case 1: s_gw_public (gw, "224.1.2.3", 0, 12, 128); break;
        case 2: s_gw_public (gw, "203.0.113.5", 0, 6, 128); break;          //  short
        case 3: s_gw_public (gw, "203.0.113.5", 0, 12, 129); break;         //  wrong type
        case 4: s_gw_public (gw, "203.0.113.5", 2, 12, 128); break;         //  not authorized
        case 5: s_gw_public (gw, "203.0.113.5", 0, 12, 128);                //  other port
                s_gw_map (gw, 40000, 40000, 120, 40002, 40000, 120, 0); break;
        case 6: s_gw_public (gw, "203.0.113.5", 0, 12, 128);                //  port 0
                s_gw_map (gw, 40000, 40000, 120, 40000, 0, 120, 0); break;
        case 7: s_gw_public (gw, "203.0.113.5", 0, 12, 128);                //  5 s
                s_gw_map (gw, 40000, 40000, 120, 40000, 40000, 5, 0); break;
        case 8: s_gw_public (gw, "203.0.113.5", 0, 12, 128);                //  no resources
                s_gw_map (gw, 40000, 40000, 120, 40000, 40000, 120, 4); break;
    }
    assert (s_test_handle (pm, now));
    if (verbose)
        printf ("    bogus %d: %s: %s\n", how, portmap_err_name (portmap_error_code (pm)), portmap_error (pm));
    assert (portmap_state (pm) == PORTMAP_FAILED);
    assert (portmap_error_code (pm) == want);
    assert (portmap_mapping (pm) == NULL);
}


//  The fake UPnP IGD: serves one HTTP exchange on listener lfd. The request
//  must contain want (the path or the SOAP action); the answer is status and
//  body (a SOAP envelope around body when soap is true)
static void
s_igd_serve (int lfd, const char *want, int status, const char *body, bool soap)
{
    assert (s_test_readable (lfd, 5000));
    int fd = accept (lfd, NULL, NULL);
    assert (fd >= 0);
    char req [4096];
    size_t have = 0;
    while (have < sizeof req - 1) {
        assert (s_test_readable (fd, 3000));
        ssize_t n = recv (fd, req + have, sizeof req - 1 - have, 0);
        assert (n > 0);
        have += (size_t) n;
        req [have] = 0;
        char *end = strstr (req, "\r\n\r\n");
        if (!end)
            continue;
        char *cl = strcasestr (req, "Content-Length:");
        size_t body_len = cl && cl < end ? (size_t) atoi (cl + 15) : 0;
        if (have >= (size_t) (end + 4 - req) + body_len)
            break;
    }
    if (!strstr (req, want))
        fprintf (stderr, "fake IGD: want '%s' in:\n%s\n", want, req);
    assert (strstr (req, want));
    char content [2048];
    if (soap)
        snprintf (content, sizeof content,
                  "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
                  "s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>%s</s:Body></s:Envelope>\r\n", body);
    else
        snprintf (content, sizeof content, "%s", body);
    char rep [4096];
    int n = snprintf (rep, sizeof rep, "HTTP/1.1 %d %s\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                      status, status == 200 ? "OK" : "Error", strlen (content), content);
    assert (send (fd, rep, (size_t) n, MSG_NOSIGNAL) == n);
    close (fd);
}

#define s_IGD_SERVICE "urn:schemas-upnp-org:service:WANIPConnection:1"
static const char *s_igd_desc =
    "<?xml version=\"1.0\"?>\r\n<root xmlns=\"urn:schemas-upnp-org:device-1-0\"><device>"
    "<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><deviceList><device>"
    "<deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><serviceList><service>"
    "<serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>"
    "<controlURL>/cif</controlURL><eventSubURL>/evt</eventSubURL><SCPDURL>/cif.xml</SCPDURL>"
    "</service></serviceList><deviceList><device>"
    "<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType><serviceList><service>"
    "<serviceType>" s_IGD_SERVICE "</serviceType>"
    "<controlURL>/ctl</controlURL><eventSubURL>/evt</eventSubURL><SCPDURL>/ip.xml</SCPDURL>"
    "</service></serviceList></device></deviceList></device></deviceList></device></root>\r\n";

static void
s_igd_external (int lfd, const char *addr)
{
    char body [256];
    snprintf (body, sizeof body, "<u:GetExternalIPAddressResponse xmlns:u=\"" s_IGD_SERVICE "\">"
              "<NewExternalIPAddress>%s</NewExternalIPAddress></u:GetExternalIPAddressResponse>", addr);
    s_igd_serve (lfd, "#GetExternalIPAddress", 200, body, true);
}

static void
s_igd_fault (int lfd, const char *action, int code)
{
    char body [512];
    snprintf (body, sizeof body, "<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>"
              "<detail><UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\"><errorCode>%d</errorCode>"
              "<errorDescription>test</errorDescription></UPnPError></detail></s:Fault>", code);
    s_igd_serve (lfd, action, 500, body, true);
}

static void
s_igd_add (int lfd, const char *want_port)
{
    char want [64];
    snprintf (want, sizeof want, "<NewExternalPort>%s</NewExternalPort>", want_port);
    s_igd_serve (lfd, want, 200, "<u:AddPortMappingResponse xmlns:u=\"" s_IGD_SERVICE "\"/>", true);
}

static void
s_igd_entry (int lfd, const char *client, const char *port, const char *lease)
{
    char body [512];
    snprintf (body, sizeof body, "<u:GetSpecificPortMappingEntryResponse xmlns:u=\"" s_IGD_SERVICE "\">"
              "<NewInternalPort>%s</NewInternalPort><NewInternalClient>%s</NewInternalClient>"
              "<NewEnabled>1</NewEnabled><NewPortMappingDescription>bifrost</NewPortMappingDescription>"
              "<NewLeaseDuration>%s</NewLeaseDuration></u:GetSpecificPortMappingEntryResponse>", port, client, lease);
    s_igd_serve (lfd, "#GetSpecificPortMappingEntry", 200, body, true);
}

//  An attempt against the fake IGD that must fail with want
static void
s_test_igd_fails (portmap_t *pm, int64_t now, portmap_err_t want, bool verbose)
{
    assert (s_test_handle (pm, now));
    if (verbose)
        printf ("    UPnP: %s: %s\n", portmap_err_name (portmap_error_code (pm)), portmap_error (pm));
    assert (portmap_state (pm) == PORTMAP_FAILED);
    assert (portmap_error_code (pm) == want);
}

void
portmap_test (bool verbose)
{
    if (verbose)
        printf (" * portmap: ");
    //  What a gateway may call its external address
    static const struct { const char *addr; int ok; bool priv; } addrs [] = {
        { "203.0.113.7", 0, false }, { "198.51.100.1", 0, false }, { "8.8.8.8", 0, false },
        { "10.1.2.3", 0, true }, { "172.16.0.1", 0, true }, { "172.31.255.1", 0, true },
        { "172.32.0.1", 0, false }, { "192.168.1.1", 0, true }, { "100.64.0.1", 0, true },
        { "100.128.0.1", 0, false }, { "169.254.1.1", 0, true },
        { "0.0.0.0", -1, false }, { "0.1.2.3", -1, false }, { "127.0.0.1", -1, false },
        { "224.0.0.1", -1, false }, { "239.255.255.250", -1, false }, { "240.0.0.1", -1, false },
        { "255.255.255.255", -1, false }, { "1.2.3", -1, false }, { "", -1, false },
        { "::1", -1, false }, { "203.0.113.7 ", -1, false }, { "a.b.c.d", -1, false },
    };
    char err [256];
    for (size_t i = 0; i < sizeof addrs / sizeof addrs [0]; i++) {
        bool priv = !addrs [i].priv;
        int rc = portmap_check_external (addrs [i].addr, &priv, err, sizeof err);
        assert (rc == addrs [i].ok);
        if (rc == 0)
            assert (priv == addrs [i].priv);
        else
            assert (strstr (err, "external address"));
    }
    assert (portmap_check_external (NULL, NULL, err, sizeof err) == -1);

    //  Config mistakes, each with its field named
    static const struct { portmap_config_t c; const char *want; } bad [] = {
        { { .local_port = 0 }, "local_port" },
        { { .local_port = 1, .local_addr = "10.0.0" }, "local_addr" },
        { { .local_port = 1, .natpmp_gateway = "gw" }, "natpmp_gateway" },
        { { .local_port = 1, .upnp_root_url = "ftp://x/" }, "upnp_root_url" },
        { { .local_port = 1, .protocols = 4 }, "protocols" },
        { { .local_port = 1, .lifetime_s = 39 }, "lifetime" },
        { { .local_port = 1, .lifetime_s = 86401 }, "lifetime" },
        { { .local_port = 1, .discover_ms = 5 }, "timeouts" },
        { { .local_port = 1, .retry_ms = 5000, .retry_max_ms = 1000 }, "timeouts" },
        { { .local_port = 1, .description = "0123456789012345678901234567890123456789012345678901234567890123" }, "description" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        err [0] = 0;
        assert (portmap_new (&bad [i].c, err, sizeof err) == NULL);
        assert (strstr (err, bad [i].want) == err);
    }
    //  Names
    assert (streq_ (portmap_state_name (PORTMAP_MAPPED), "mapped"));
    assert (streq_ (portmap_err_name (PORTMAP_ERR_NO_GATEWAY), "no gateway"));
    assert (streq_ (portmap_protocol_name (PORTMAP_NATPMP), "natpmp"));

    //  A good config starts and ends a worker with nothing asked
    portmap_config_t config = { .local_port = 40000 };
    portmap_t *pm = portmap_new (&config, err, sizeof err);
    assert (pm);
    assert (portmap_state (pm) == PORTMAP_IDLE);
    assert (portmap_next_deadline (pm) == -1);
    assert (portmap_mapping (pm) == NULL);
    portmap_destroy (&pm);
    assert (pm == NULL);
    portmap_destroy (&pm);

    if (s_test_netns ()) {
        printf ("# portmap: no private network namespace (not root?): gateway tests skipped\n");
        return;
    }
    //  The fake NAT-PMP gateway
    int gw = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in gw_addr = { .sin_family = AF_INET, .sin_port = htons (NATPMP_PORT) };
    gw_addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (gw >= 0 && bind (gw, (struct sockaddr *) &gw_addr, sizeof gw_addr) == 0);

    config = (portmap_config_t) {
        .local_port = 40000, .protocols = PORTMAP_NATPMP, .lifetime_s = 120,
        .natpmp_gateway = "127.0.0.1", .natpmp_timeout_ms = 200,
        .retry_ms = 1000, .retry_max_ms = 4000, .shutdown_ms = 2000
    };
    pm = portmap_new (&config, err, sizeof err);
    assert (pm);

    //  1. A mapping: the public address, then the port; renewal at half the lease
    portmap_start (pm, 0);
    assert (portmap_state (pm) == PORTMAP_WORKING);
    assert (portmap_next_deadline (pm) == -1);
    s_gw_public (gw, "203.0.113.5", 0, 12, 128);
    s_gw_map (gw, 40000, 40000, 120, 40000, 40001, 120, 0);
    assert (s_test_handle (pm, 0));
    assert (portmap_state (pm) == PORTMAP_MAPPED);
    const portmap_mapping_t *m = portmap_mapping (pm);
    assert (m && m->protocol == PORTMAP_NATPMP);
    assert (streq_ (m->gateway, "127.0.0.1"));          //  who granted it
    assert (streq_ (m->external_addr, "203.0.113.5") && m->external_port == 40001);
    assert (m->lifetime_s == 120 && !m->external_private);
    assert (m->renew_ms == 60000 && m->expires_ms == 120000);
    assert (portmap_next_deadline (pm) == 60000);
    assert (portmap_error_code (pm) == PORTMAP_ERR_NONE && streq_ (portmap_error (pm), ""));
    //  Nothing before the renewal time
    assert (!portmap_tick (pm, 59999));
    uint8_t buf [64];
    struct sockaddr_in from;
    assert (s_gw_recv (gw, buf, &from, 50) == 0);

    //  2. Renewal: the same external port is asked for; a shorter lease moves the next renewal
    assert (!portmap_tick (pm, 60000));
    assert (portmap_next_deadline (pm) == 120000);     //  waiting for the worker: only the expiry
    s_gw_public (gw, "203.0.113.5", 0, 12, 128);
    s_gw_map (gw, 40000, 40001, 120, 40000, 40001, 100, 0);
    assert (!s_test_handle (pm, 60000));               //  same address and port: no news
    m = portmap_mapping (pm);
    assert (m->lifetime_s == 100 && m->renew_ms == 110000 && m->expires_ms == 160000);
    uint64_t requests, renewals, failures;
    portmap_counters (pm, &requests, &renewals, &failures);
    assert (requests == 2 && renewals == 1 && failures == 0);

    //  3. A failed renewal keeps the mapping and tries again soon (retry_ms), then
    //  a renewal that moves the port is news (a new candidate)
    assert (!portmap_tick (pm, 110000));
    s_gw_public (gw, "203.0.113.5", 3, 12, 128);       //  network failure
    assert (!s_test_handle (pm, 110000));
    assert (portmap_state (pm) == PORTMAP_MAPPED);
    assert (portmap_error_code (pm) == PORTMAP_ERR_GATEWAY);
    assert (portmap_mapping (pm)->renew_ms == 111000);
    assert (!portmap_tick (pm, 111000));
    s_gw_public (gw, "203.0.113.5", 0, 12, 128);
    s_gw_map (gw, 40000, 40001, 120, 40000, 40005, 120, 0);
    assert (s_test_handle (pm, 111000));
    assert (portmap_mapping (pm)->external_port == 40005);
    //  The old entry is deleted
    s_gw_map (gw, 40000, 0, 0, 40000, 0, 0, 0);
    assert (!s_test_handle (pm, 111000));             //  the delete's answer: no news
    assert (portmap_error_code (pm) == PORTMAP_ERR_NONE);

    //  4. Renewals unanswered until the lease ends: EXPIRED, then a new attempt at once
    int64_t now = 111000 + 60000;
    assert (!portmap_tick (pm, now));
    assert (s_gw_recv (gw, buf, &from, 3000) == 2);    //  the request, never answered
    assert (!s_test_handle (pm, now));                 //  the worker gave up after 200 ms
    assert (portmap_error_code (pm) == PORTMAP_ERR_NO_GATEWAY);
    assert (strstr (portmap_error (pm), "200 ms"));
    int64_t renew = portmap_mapping (pm)->renew_ms;
    assert (renew == now + 1000);                      //  reset by the last success
    now = portmap_mapping (pm)->expires_ms;
    assert (portmap_tick (pm, now));
    assert (portmap_state (pm) == PORTMAP_FAILED);
    assert (portmap_error_code (pm) == PORTMAP_ERR_EXPIRED);
    assert (portmap_next_deadline (pm) == now);
    assert (portmap_tick (pm, now));
    assert (portmap_state (pm) == PORTMAP_WORKING);
    //  (this attempt is the first bogus one below)

    //  5. Bogus and refusing gateways: each attempt fails, the retry delay doubles to its cap
    s_gw_public (gw, "203.0.113.5", 0, 12, 128);
    s_gw_map (gw, 40000, 40000, 120, 40000, 40000, 2, 0);
    assert (s_test_handle (pm, now));
    assert (portmap_error_code (pm) == PORTMAP_ERR_BOGUS);
    assert (portmap_next_deadline (pm) == now + 1000);
    static const portmap_err_t want [] = {
        PORTMAP_ERR_BOGUS, PORTMAP_ERR_BOGUS, PORTMAP_ERR_BOGUS, PORTMAP_ERR_BOGUS,
        PORTMAP_ERR_REFUSED, PORTMAP_ERR_BOGUS, PORTMAP_ERR_BOGUS, PORTMAP_ERR_BOGUS,
        PORTMAP_ERR_CONFLICT
    };
    int64_t delay = 2000;
    for (int how = 0; how < 9; how++) {
        now = portmap_next_deadline (pm);
        assert (!portmap_tick (pm, now - 1));
        s_test_bogus (pm, gw, now, how, want [how], verbose);
        assert (portmap_next_deadline (pm) == now + delay);
        delay = delay * 2 > 4000 ? 4000 : delay * 2;
    }
    portmap_counters (pm, &requests, &renewals, &failures);
    assert (failures == 2 + 1 + 1 + 9);                //  renewals, expiry, attempts

    //  6. A success resets the delay; stop deletes at once; start again maps again
    now = portmap_next_deadline (pm);
    assert (portmap_tick (pm, now));
    s_gw_public (gw, "10.9.8.7", 0, 12, 128);          //  a NAT above the gateway
    s_gw_map (gw, 40000, 40000, 120, 40000, 40000, 7200, 0);
    assert (s_test_handle (pm, now));
    m = portmap_mapping (pm);
    assert (m->external_private && m->lifetime_s == 7200);
    assert (m->renew_ms == now + 60000);               //  half of what we asked, not of 7200
    //  A renewal on demand
    portmap_renew (pm, now + 10);
    assert (portmap_next_deadline (pm) == now + 10);
    assert (!portmap_tick (pm, now + 10));
    portmap_renew (pm, now + 20);                      //  a request is out: nothing
    s_gw_public (gw, "10.9.8.7", 0, 12, 128);
    s_gw_map (gw, 40000, 40000, 120, 40000, 40000, 120, 0);
    assert (!s_test_handle (pm, now + 20));
    portmap_counters (pm, NULL, &renewals, NULL);
    assert (renewals == 3 && portmap_mapping (pm)->renew_ms == now + 20 + 60000);
    portmap_stop (pm);
    assert (portmap_state (pm) == PORTMAP_IDLE && portmap_mapping (pm) == NULL);
    assert (portmap_next_deadline (pm) == -1);
    s_gw_map (gw, 40000, 0, 0, 40000, 0, 0, 0);
    assert (!s_test_handle (pm, now));                 //  the delete's answer: nothing changes
    portmap_start (pm, now);
    s_gw_public (gw, "203.0.113.5", 0, 12, 128);
    s_gw_map (gw, 40000, 40000, 120, 40000, 40000, 120, 0);
    assert (s_test_handle (pm, now));
    assert (portmap_state (pm) == PORTMAP_MAPPED);

    //  7. Stopped while a request is out: its late success is undone
    portmap_stop (pm);
    s_gw_map (gw, 40000, 0, 0, 40000, 0, 0, 0);
    assert (!s_test_handle (pm, now));
    portmap_start (pm, now);
    portmap_stop (pm);
    s_gw_public (gw, "203.0.113.5", 0, 12, 128);
    s_gw_map (gw, 40000, 40000, 120, 40000, 40000, 120, 0);
    assert (!s_test_handle (pm, now));
    assert (portmap_state (pm) == PORTMAP_IDLE);
    s_gw_map (gw, 40000, 0, 0, 40000, 0, 0, 0);        //  the undo
    assert (!s_test_handle (pm, now));
    //  ... but not when started again meanwhile: the new request owns the entry
    portmap_start (pm, now);
    portmap_stop (pm);
    portmap_start (pm, now);
    s_gw_public (gw, "203.0.113.5", 0, 12, 128);       //  the first request
    s_gw_map (gw, 40000, 40000, 120, 40000, 40000, 120, 0);
    s_gw_public (gw, "203.0.113.5", 0, 12, 128);       //  the second
    s_gw_map (gw, 40000, 40000, 120, 40000, 40000, 120, 0);
    assert (s_test_readable (portmap_fd (pm), 3000));
    while (portmap_state (pm) != PORTMAP_MAPPED)
        s_test_handle (pm, now);
    assert (portmap_mapping (pm)->external_port == 40000);
    assert (s_gw_recv (gw, buf, &from, 100) == 0);     //  no delete
    portmap_stop (pm);
    s_gw_map (gw, 40000, 0, 0, 40000, 0, 0, 0);
    assert (!s_test_handle (pm, now));

    //  8. destroy deletes the mapping (the fake does not answer: bounded by the worker's 200 ms)
    portmap_start (pm, now);
    s_gw_public (gw, "203.0.113.5", 0, 12, 128);
    s_gw_map (gw, 40000, 40000, 120, 40000, 40000, 120, 0);
    assert (s_test_handle (pm, now));
    int64_t t0 = s_clock_ms ();
    portmap_destroy (&pm);
    int64_t took = s_clock_ms () - t0;
    assert (took < 1000);
    ssize_t n = s_gw_recv (gw, buf, &from, 100);
    assert (n == 12 && buf [1] == 1 && (buf [6] | buf [7] | buf [8] | buf [9] | buf [10] | buf [11]) == 0);
    if (verbose)
        printf ("    destroy with an unanswered delete: %lld ms\n", (long long) took);
    close (gw);

    //  9. UPnP against a fake IGD on 127.0.0.1 (its description URL given: no
    //  SSDP): a mapping, and the answers that must not become a candidate
    int igd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in igd_addr = { .sin_family = AF_INET };
    igd_addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t igd_len = sizeof igd_addr;
    assert (igd >= 0 && bind (igd, (struct sockaddr *) &igd_addr, sizeof igd_addr) == 0);
    assert (listen (igd, 8) == 0 && getsockname (igd, (struct sockaddr *) &igd_addr, &igd_len) == 0);
    char url [64];
    snprintf (url, sizeof url, "http://127.0.0.1:%u/rootDesc.xml", ntohs (igd_addr.sin_port));
    config = (portmap_config_t) {
        .local_port = 40000, .protocols = PORTMAP_UPNP, .lifetime_s = 120, .upnp_root_url = url,
        .retry_ms = 1000, .retry_max_ms = 1000, .shutdown_ms = 300
    };
    pm = portmap_new (&config, err, sizeof err);
    assert (pm);
    now = 0;
    //  The external address is refused
    portmap_start (pm, now);
    s_igd_serve (igd, "GET /rootDesc.xml", 200, s_igd_desc, false);
    s_igd_external (igd, "0.0.0.0");
    s_test_igd_fails (pm, now, PORTMAP_ERR_BOGUS, verbose);
    assert (strstr (portmap_error (pm), "UPnP: external address 0.0.0.0 is unspecified"));
    //  The gateway's table sends the port elsewhere (the IGD is kept: no new GET)
    now += 1000;
    assert (portmap_tick (pm, now));
    s_igd_external (igd, "203.0.113.9");
    s_igd_add (igd, "40000");
    s_igd_entry (igd, "127.0.0.2", "40000", "120");
    s_test_igd_fails (pm, now, PORTMAP_ERR_BOGUS, verbose);
    assert (strstr (portmap_error (pm), "not to 127.0.0.1:40000"));
    //  A lease that is not a number
    now += 1000;
    assert (portmap_tick (pm, now));
    s_igd_external (igd, "203.0.113.9");
    s_igd_add (igd, "40000");
    s_igd_entry (igd, "127.0.0.1", "40000", "12O");
    s_test_igd_fails (pm, now, PORTMAP_ERR_BOGUS, verbose);
    //  Not authorized
    now += 1000;
    assert (portmap_tick (pm, now));
    s_igd_external (igd, "203.0.113.9");
    s_igd_fault (igd, "#AddPortMapping", 606);
    s_test_igd_fails (pm, now, PORTMAP_ERR_REFUSED, verbose);
    assert (strstr (portmap_error (pm), "(606)"));
    //  HTTP garbage: a gateway error, and the IGD is looked up again next time
    now += 1000;
    assert (portmap_tick (pm, now));
    s_igd_serve (igd, "#GetExternalIPAddress", 200, "<html>no</html>", false);
    s_test_igd_fails (pm, now, PORTMAP_ERR_GATEWAY, verbose);
    //  Conflict on an IGDv1: another port, then a mapping (permanent lease:
    //  renewed at half the asked one)
    now += 1000;
    assert (portmap_tick (pm, now));
    s_igd_serve (igd, "GET /rootDesc.xml", 200, s_igd_desc, false);
    s_igd_external (igd, "203.0.113.9");
    s_igd_fault (igd, "<NewExternalPort>40000</NewExternalPort>", 718);
    s_igd_serve (igd, "#AddPortMapping", 200, "<u:AddPortMappingResponse xmlns:u=\"" s_IGD_SERVICE "\"/>", true);
    s_igd_entry (igd, "127.0.0.1", "40000", "0");
    assert (s_test_handle (pm, now));
    m = portmap_mapping (pm);
    assert (m && m->protocol == PORTMAP_UPNP && streq_ (m->external_addr, "203.0.113.9"));
    assert (strncmp (m->gateway, "127.0.0.1:", 10) == 0);  //  the IGD's host:port
    assert (m->external_port != 40000 && m->external_port >= 1024);
    assert (streq_ (m->internal_addr, "127.0.0.1"));
    assert (m->lifetime_s == 120 && m->renew_ms == now + 60000);
    if (verbose)
        printf ("    UPnP: mapped 203.0.113.9:%u after a conflict on 40000\n", m->external_port);
    //  destroy with an IGD that does not answer yet: back after shutdown_ms
    //  (300), and the worker, left behind, still deletes that port once the
    //  IGD answers
    char del [64];
    snprintf (del, sizeof del, "<NewExternalPort>%u</NewExternalPort>", m->external_port);
    t0 = s_clock_ms ();
    portmap_destroy (&pm);
    took = s_clock_ms () - t0;
    if (verbose)
        printf ("    UPnP: destroy with the IGD silent: %lld ms\n", (long long) took);
    assert (took >= 290 && took < 800);
    s_igd_serve (igd, del, 200, "<u:DeletePortMappingResponse xmlns:u=\"" s_IGD_SERVICE "\"/>", true);
    close (igd);

    //  10. No gateway, each within its bound: nothing on 127.0.0.1:5351 (port
    //  unreachable), no default route (NAT-PMP), no UPnP answer within the
    //  default 1000 ms (miniupnpc's shortest SSDP wait: it rounds up to 1 s), both
    static const struct { int protocols; const char *gateway; int bound; const char *text; } none [] = {
        { PORTMAP_NATPMP, "127.0.0.1", 100, "NAT-PMP: the gateway does not speak NAT-PMP (Connection refused)" },
        { PORTMAP_NATPMP, NULL, 100, "NAT-PMP: no default gateway" },
        { PORTMAP_UPNP, NULL, 1500, "UPnP: no UPnP gateway answered within 1000 ms" },
        { PORTMAP_ANY, NULL, 1500, "NAT-PMP: no default gateway; UPnP: no UPnP gateway" },
    };
    //  (miniupnpc reports "sendto: Network is unreachable" on stderr: not here)
    fflush (stderr);
    int saved_stderr = dup (2);
    int devnull = open ("/dev/null", O_WRONLY | O_CLOEXEC);
    assert (saved_stderr >= 0 && devnull >= 0);
    dup2 (devnull, 2);
    close (devnull);
    for (size_t i = 0; i < sizeof none / sizeof none [0]; i++) {
        config = (portmap_config_t) {
            .local_port = 40000, .protocols = none [i].protocols, .natpmp_gateway = none [i].gateway,
            .natpmp_timeout_ms = 200
        };
        pm = portmap_new (&config, err, sizeof err);
        assert (pm);
        t0 = s_clock_ms ();
        portmap_start (pm, 0);
        assert (s_test_handle (pm, 0));
        took = s_clock_ms () - t0;
        if (verbose)
            printf ("    no gateway (%s): %lld ms: %s\n", portmap_protocol_name (none [i].protocols),
                    (long long) took, portmap_error (pm));
        assert (portmap_state (pm) == PORTMAP_FAILED);
        assert (portmap_error_code (pm) == PORTMAP_ERR_NO_GATEWAY);
        assert (strstr (portmap_error (pm), none [i].text));
        assert (took < none [i].bound);
        assert (portmap_next_deadline (pm) == 30000);      //  the default first retry
        portmap_destroy (&pm);
    }
    dup2 (saved_stderr, 2);
    close (saved_stderr);
    if (verbose)
        printf ("OK\n");
}
