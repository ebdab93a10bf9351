/*  nat_relay_wss: the node's WebSocket over TLS connections to relays, the
    last way to a relay when the network lets out nothing but HTTPS: UDP
    REGISTERs go unanswered and TCP to the relay's port does not connect
    (nat_relay_path.c decides when; docs/relay.md, "WebSocket over TLS").
    One connection per relay, wss://host:tls_port/v0/relay, each binary
    message one relay datagram (relay_wss on the server side).

    The relay's certificate is verified: chain against the CA (connection.
    relay_ca_file, else the system's store) and the host name, or the IP
    address when the relay is listed by address (an IP SAN). A failure is
    logged with lws's reason and counted, and the connection is not used. nat
    holds no key for this: the node presents no certificate (the relay
    authenticates nodes by their REGISTER's credential, as on UDP). The CA
    file is read into memory by the config check, before nat is sandboxed;
    every certificate in it is trusted (lws 4.1 itself takes only the first).

    libwebsockets as disc_http uses it (Debian's 4.1.6 has no external poll),
    on nat's loop: a 10 ms timer services lws while a connection is being
    made (TCP, TLS, upgrade), and once it is open its socket is polled on the
    loop and lws is serviced when it is readable, or writable while messages
    wait, so a relayed datagram waits for no timer (the same scheme as the
    server's relay_wss.h, and why). Everything lws reports is queued inside
    its callbacks and handed to the caller after lws_service returns, so the
    caller may send or close from its handler. */
#ifndef NAT_RELAY_WSS_H_INCLUDED
#define NAT_RELAY_WSS_H_INCLUDED

#include "bus_loop.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAT_RELAY_WSS_MAX       8               //  connections (one per relay)
#define NAT_RELAY_WSS_QUEUE     256             //  messages waiting to be written, per connection
#define NAT_RELAY_WSS_PATH      "/v0/relay"
#define NAT_RELAY_WSS_PROTOCOL  "bifrost-relay"

typedef enum {
    NAT_RELAY_WSS_OPEN,                         //  the WebSocket is up
    NAT_RELAY_WSS_MESSAGE,                      //  a message from the relay (msg, size)
    NAT_RELAY_WSS_CLOSED,                       //  it failed or closed (msg: the reason, text)
    NAT_RELAY_WSS_DONE,                         //  no more events this time (end an ingest batch)
} nat_relay_wss_event_t;

typedef void (nat_relay_wss_fn) (void *arg, size_t slot, nat_relay_wss_event_t event,
                                 const uint8_t *msg, size_t size);

typedef struct {
    uint64_t opens, opened, failed;             //  attempts, WebSockets up, failures before up
    uint64_t rx, tx, dropped;                   //  messages; dropped: the queue was full
} nat_relay_wss_stats_t;

typedef struct _nat_relay_wss_t nat_relay_wss_t;

//  ca_pem: the CA certificates to trust (PEM, ca_size bytes), or NULL for the
//  system's store. NULL with err when lws cannot start.
nat_relay_wss_t *nat_relay_wss_new (bus_loop_t *loop, const char *ca_pem, size_t ca_size,
                                    nat_relay_wss_fn *fn, void *arg, char *err, size_t err_size);
void nat_relay_wss_destroy (nat_relay_wss_t **self_p);

//  Connects slot to wss://host:port/v0/relay at address (numeric, the resolved
//  host); host is what the certificate must name. Closes the slot's old
//  connection first (without its CLOSED). -1 when it cannot even start (the
//  CLOSED event follows anyway).
int nat_relay_wss_open (nat_relay_wss_t *self, size_t slot, const char *address, const char *host, uint16_t port);
//  Ends it (no CLOSED event).
void nat_relay_wss_close (nat_relay_wss_t *self, size_t slot);
//  Opening or open
bool nat_relay_wss_active (nat_relay_wss_t *self, size_t slot);
bool nat_relay_wss_open_now (nat_relay_wss_t *self, size_t slot);
//  One message to the relay: 0 queued, -1 not open or the queue is full (dropped, counted)
int nat_relay_wss_send (nat_relay_wss_t *self, size_t slot, const uint8_t *msg, size_t size);

const nat_relay_wss_stats_t *nat_relay_wss_stats (nat_relay_wss_t *self);
//  CA certificates of ca_pem beyond the first (lws loads that one itself).
int nat_relay_wss_cas (nat_relay_wss_t *self);

void nat_relay_wss_test (bool verbose);

#endif
