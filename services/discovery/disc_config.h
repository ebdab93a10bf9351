/*  disc_config: what the discovery service reads from node.cfg.

        network_id = "office";
        discovery = { server = "https://registry.example.org:7080";   (http:// only to
                      loopback, or with allow_http = true: the token travels in clear)
                      join_token = "${BIFROST_JOIN_TOKEN}"; heartbeat_interval = "30s";
                      ca_file = "/etc/bifrost/registry-ca.pem"; name = "laptop"; };
        connection = { listen = "0.0.0.0:51820"; };     (nat's; only the port is read)

    Every value is checked here, once, for --check-config and for the service, with
    file:line errors through bus_config; unknown keys in the group are errors. */
#ifndef DISC_CONFIG_H_INCLUDED
#define DISC_CONFIG_H_INCLUDED

#include "bus_config.h"
#include <stdbool.h>
#include <stdint.h>


typedef struct {
    char network_id [65];
    char server [256];          //  the URL as written, for messages and status
    bool tls;                   //  https://
    bool allow_http;            //  plain http:// to a registry not on loopback
    char host [256];            //  name or address, without brackets
    uint16_t port;
    char join_token [256];      //  "" = none (a returning key needs none)
    int64_t heartbeat_ms;
    char ca_file [256];         //  "" = the system's CA store
    char name [65];             //  this node's name at the registry
    uint16_t listen_port;       //  nat's UDP port (0 = any: asked from nat)
    bool listen_ipv4_only;      //  nat listens on an IPv4 address: no IPv6 endpoints
} disc_config_t;

//  Reads and validates; records every problem in config. config NULL = defaults.
void disc_config_check (bus_config_t *config, disc_config_t *out);

//  "http://host:port", "https://[v6]:port", "https://name" (port 443/80). 0 or -1 + err.
int disc_config_parse_url (const char *url, bool *tls, char *host, size_t host_size,
                           uint16_t *port, char *err, size_t errsize);
//  True for a host that is this machine: 127.0.0.0/8, ::1, "localhost".
bool disc_config_loopback (const char *host);
//  A name the registry accepts: 1..64 of letters, digits, '-', '_', '.', first alnum.
bool disc_config_valid_name (const char *name);
//  A network id: [a-z0-9][a-z0-9-]{0,31}.
bool disc_config_valid_network (const char *id);

void disc_config_test (bool verbose);
#endif
