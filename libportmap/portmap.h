/*  portmap: asks the local gateway to forward a public UDP port to this node's
    socket, through UPnP-IGD (miniupnpc) or NAT-PMP (libnatpmp), keeps the mapping
    alive and removes it at the end (docs/portmap.md).

    The caller drives time: no timer of its own. It calls portmap_start once,
    then portmap_tick at portmap_next_deadline and portmap_handle whenever
    portmap_fd is readable; both take the caller's clock (now_ms, monotonic).

    The gateway libraries block (an SSDP wait, HTTP/SOAP with timeouts of
    seconds, NAT-PMP retries): every call into them runs on one worker thread
    that the class starts, and results come back over a socketpair, so the
    caller's loop never waits on the gateway. portmap_destroy asks the worker to
    delete the mapping and waits for it at most config.shutdown_ms; a gateway
    that takes longer keeps the worker thread (detached) until its own timeout,
    and the mapping ends with its lease.

    What the gateway says is checked before it is used: an external address
    that is not a usable unicast IPv4 address, a port of 0, a lifetime below
    PORTMAP_LIFETIME_MIN, a mapping for another host or port: each is an error
    (PORTMAP_ERR_BOGUS), never a candidate. IPv4 only (both protocols are). */
#ifndef PORTMAP_H_INCLUDED
#define PORTMAP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Protocols, also a mask in portmap_config_t.protocols
#define PORTMAP_UPNP            1
#define PORTMAP_NATPMP          2
#define PORTMAP_ANY             (PORTMAP_UPNP | PORTMAP_NATPMP)

//  A granted lifetime below this is refused (renewing at half of it would
//  flood the gateway); requested lifetimes are within [MIN, MAX]
#define PORTMAP_LIFETIME_MIN    20
#define PORTMAP_LIFETIME_MAX    86400

typedef enum {
    PORTMAP_IDLE,           //  not started, or stopped
    PORTMAP_WORKING,        //  a request is with the gateway (first mapping)
    PORTMAP_MAPPED,         //  a mapping is valid (renewals happen in this state)
    PORTMAP_FAILED          //  no mapping; portmap_error says why, retried later
} portmap_state_t;

typedef enum {
    PORTMAP_ERR_NONE,
    PORTMAP_ERR_NO_GATEWAY,     //  nobody answered UPnP or NAT-PMP within the bound
    PORTMAP_ERR_REFUSED,        //  the gateway answered no (not authorized, disabled)
    PORTMAP_ERR_CONFLICT,       //  every external port we tried is taken
    PORTMAP_ERR_BOGUS,          //  the gateway's answer failed validation
    PORTMAP_ERR_GATEWAY,        //  the gateway broke off (HTTP error, network failure)
    PORTMAP_ERR_EXPIRED,        //  the mapping ran out: renewals failed until its end
    PORTMAP_ERR_INTERNAL        //  a local resource failed (socket, memory)
} portmap_err_t;

typedef struct {
    uint16_t local_port;        //  the UDP port to map (1-65535), required
    uint16_t external_port;     //  the external port to ask for first (0: local_port)
    const char *local_addr;     //  IPv4 of the socket; NULL: the address facing the gateway
    int protocols;              //  PORTMAP_UPNP | PORTMAP_NATPMP (0: both), tried NAT-PMP first
    uint32_t lifetime_s;        //  lease to ask for (0: 3600), PORTMAP_LIFETIME_MIN..MAX
    int discover_ms;            //  UPnP SSDP wait (0: 1000; miniupnpc waits at least 1 s)
    int natpmp_timeout_ms;      //  NAT-PMP wait per request, retries inside (0: 750)
    int shutdown_ms;            //  portmap_destroy waits at most this for the delete (0: 1000)
    int retry_ms;               //  first retry after a failure, doubling (0: 30000)
    int retry_max_ms;           //  longest retry delay (0: 1800000)
    const char *natpmp_gateway; //  IPv4 of the NAT-PMP gateway; NULL: the default route's
    const char *upnp_root_url;  //  IGD root description URL; NULL: SSDP discovery
    const char *description;    //  shown in the gateway's table (NULL: "bifrost")
} portmap_config_t;

typedef struct {
    int protocol;               //  PORTMAP_UPNP or PORTMAP_NATPMP
    char external_addr [16];    //  dotted IPv4, checked
    uint16_t external_port;
    char internal_addr [16];    //  the address the gateway forwards to (UPnP; NAT-PMP: "")
    char gateway [64];          //  who granted it: NAT-PMP the gateway's IPv4, UPnP the IGD's host:port
    uint32_t lifetime_s;        //  granted (UPnP 0 = "permanent" is kept as the asked lifetime)
    bool external_private;      //  the gateway's address is private/shared: another NAT above
    int64_t mapped_ms;          //  caller time of the last (re)mapping
    int64_t expires_ms;         //  caller time the lease ends
    int64_t renew_ms;           //  caller time of the next renewal
    int64_t took_ms;            //  how long the worker took for the last (re)mapping
} portmap_mapping_t;

typedef struct _portmap_t portmap_t;

//  Checks the config (message in err) and starts the worker thread. NULL on a
//  bad config (err says which field) or when the worker cannot start.
portmap_t *portmap_new (const portmap_config_t *config, char *err, size_t err_size);

//  Deletes the mapping (bounded by shutdown_ms), stops the worker, nulls *self_p.
void portmap_destroy (portmap_t **self_p);

//  Readable when the worker answered: call portmap_handle.
int portmap_fd (portmap_t *self);

//  Asks for the first mapping.
void portmap_start (portmap_t *self, int64_t now_ms);

//  Reads the worker's answers. Returns true when the state or the mapping changed
//  (a new external address:port is a new candidate; see docs/portmap.md).
bool portmap_handle (portmap_t *self, int64_t now_ms);

//  Renewals, retries, expiry. Returns true when the state changed.
bool portmap_tick (portmap_t *self, int64_t now_ms);

//  When portmap_tick next has work; -1: nothing scheduled (idle, or waiting for
//  the worker).
int64_t portmap_next_deadline (portmap_t *self);

//  Renews the mapping at the next portmap_tick instead of at half the lease
//  (e.g. when a peer reports the candidate unreachable). Nothing when not MAPPED
//  or while a request is out.
void portmap_renew (portmap_t *self, int64_t now_ms);

//  Deletes the mapping now (asynchronously) and goes idle; portmap_start again
//  restarts (e.g. after a network change).
void portmap_stop (portmap_t *self);

portmap_state_t portmap_state (portmap_t *self);

//  The mapping, or NULL when there is none (state not MAPPED).
const portmap_mapping_t *portmap_mapping (portmap_t *self);

//  The last error and its code ("" / PORTMAP_ERR_NONE after a success).
const char *portmap_error (portmap_t *self);
portmap_err_t portmap_error_code (portmap_t *self);

//  Counters: requests sent to the worker, renewals that succeeded, failures
void portmap_counters (portmap_t *self, uint64_t *requests, uint64_t *renewals, uint64_t *failures);

const char *portmap_state_name (portmap_state_t state);
const char *portmap_err_name (portmap_err_t err);
const char *portmap_protocol_name (int protocol);

//  Validation of what a gateway says (exported for the self test and the probe).
//  An external address: 0 when usable (*is_private set for RFC 1918 / 6598 /
//  link-local), -1 with a message otherwise.
int portmap_check_external (const char *addr, bool *is_private, char *err, size_t err_size);

void portmap_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
