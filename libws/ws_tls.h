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

//  "0.0.0.0:443" or "[::]:443" into a numeric address and a port; -1 else
int ws_tls_split_listen (const char *text, char *ip, size_t ip_size, uint16_t *port);

//  A whole PEM file into memory (secret: into sodium_malloc); NULL with errno
//  (EINVAL: not a PEM file, or too large)
char *ws_tls_read_pem (const char *path, bool secret, size_t *size);
//  Frees what ws_tls_read_pem returned (a secret wiped first); NULL is fine
void ws_tls_free_pem (char **pem_p, size_t size, bool secret);

#endif
