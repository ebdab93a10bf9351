/*  ws_tls: what a WebSocket server reads of its TLS setup before it drops
    privileges: the listen address and the PEM files (certificate and key).
    Read by the config check, as root, so a key readable only by root stays
    that way and the sandbox needs no path to it; the key is kept in
    sodium_malloc memory (no swap, guard pages) and wiped when freed. */
#ifndef WS_TLS_H_INCLUDED
#define WS_TLS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lws_context;
struct lws_vhost;
struct lws_context_creation_info;

//  "0.0.0.0:443" or "[::]:443" into a numeric address and a port; -1 else
int ws_tls_split_listen (const char *text, char *ip, size_t ip_size, uint16_t *port);

//  A whole PEM file into memory (secret: into sodium_malloc); NULL with errno
//  (EINVAL: not a PEM file, or too large)
char *ws_tls_read_pem (const char *path, bool secret, size_t *size);
//  Frees what ws_tls_read_pem returned (a secret wiped first); NULL is fine
void ws_tls_free_pem (char **pem_p, size_t size, bool secret);

//  A TLS vhost of context from a certificate and key in memory (info names
//  it and its protocols; the TLS members are set here). lws 4.1 loads only
//  the first certificate of a PEM in memory: the intermediates that follow
//  the leaf in the file are added to OpenSSL's context while lws makes it,
//  so clients that trust only the root (the system's store) verify the
//  chain. *chain: how many were added. NULL when TLS cannot use them.
struct lws_vhost *ws_tls_vhost (struct lws_context *context, struct lws_context_creation_info *info,
                                const char *cert_pem, size_t cert_size, const char *key_pem, size_t key_size,
                                int *chain);
//  In the vhost's protocol callback, first: handles the reason of lws that
//  asks for the chain (true: handled, return 0)
bool ws_tls_chain_callback (int reason, void *user);

#endif
