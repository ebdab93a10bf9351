/*  nat_endpoint: a configured peer endpoint as the user writes it: "192.0.2.1:51820",
    "[2001:db8::1]:51820" or "host.example:51820". A numeric endpoint is ready to
    use; a named one is resolved by nat_resolver (off the event loop) and resolved
    again whenever the peer cannot be reached, so a peer with a dynamic IP and DDNS
    is found again. Parsing gives one clear error message per mistake because these
    strings come from a hand-written config file. */
#ifndef NAT_ENDPOINT_H_INCLUDED
#define NAT_ENDPOINT_H_INCLUDED

#include "nat_addr.h"

#define NAT_HOST_MAX 254        //  253 characters of DNS name and the NUL
#define NAT_ENDPOINT_TEXT_MAX (NAT_HOST_MAX + 8)

typedef struct {
    char host [NAT_HOST_MAX];   //  the name, or the numeric address without brackets
    uint16_t port;
    bool is_name;               //  true: host must be resolved; false: addr is set
    nat_addr_t addr;
} nat_endpoint_t;

//  Parses text into self. 0, or -1 with a message in err ("port 70000 out of range
//  1-65535", "missing ']' after IPv6 address", "empty host", ...).
int nat_endpoint_parse (nat_endpoint_t *self, const char *text, char *err, size_t err_size);

//  Same rules for a local bind address, where the port may be 0 (ephemeral) and the
//  host may be "*" or empty-bracket-free "0.0.0.0" / "::" (any). Names are refused:
//  a bind address must not depend on DNS.
int nat_endpoint_parse_bind (nat_addr_t *addr, const char *text, char *err, size_t err_size);

//  Writes the endpoint back as text (brackets for IPv6). Returns buf.
char *nat_endpoint_format (const nat_endpoint_t *self, char *buf, size_t size);

//  True when both name the same thing: same name (case-insensitive, a trailing dot
//  ignored) and port, or the same address.
bool nat_endpoint_eq (const nat_endpoint_t *a, const nat_endpoint_t *b);

void nat_endpoint_test (bool verbose);
#endif
