/*  ws_tls: the listen address and the PEM files of a WebSocket server (why: ws_tls.h). */
#include "ws_tls.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PEM_MAX   (256 * 1024)        //  certificates may chain
#define S_KEY_MAX   (16 * 1024)         //  a key is a few hundred bytes (RSA 8192: 6 kB)

int
ws_tls_split_listen (const char *text, char *ip, size_t ip_size, uint16_t *port)
{
    const char *colon;
    const char *host = text;
    size_t host_len;
    if (!text)
        return -1;
    if (*text == '[') {
        const char *close = strchr (text, ']');
        if (!close || close [1] != ':')
            return -1;
        host = text + 1;
        host_len = (size_t) (close - host);
        colon = close + 1;
    }
    else {
        colon = strrchr (text, ':');
        if (!colon || strchr (text, ':') != colon)
            return -1;
        host_len = (size_t) (colon - text);
    }
    if (host_len == 0 || host_len >= ip_size)
        return -1;
    memcpy (ip, host, host_len);
    ip [host_len] = 0;
    char *end;
    long value = strtol (colon + 1, &end, 10);
    if (colon [1] == 0 || *end || value < 0 || value > 65535)
        return -1;
    unsigned char probe [16];
    if (inet_pton (AF_INET, ip, probe) != 1 && inet_pton (AF_INET6, ip, probe) != 1)
        return -1;
    *port = (uint16_t) value;
    return 0;
}

char *
ws_tls_read_pem (const char *path, bool secret, size_t *size)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    size_t max = secret ? S_KEY_MAX : S_PEM_MAX;
    if (secret && sodium_init () < 0) {
        fclose (file);
        errno = ENOMEM;
        return NULL;
    }
    char *text = secret ? (char *) sodium_malloc (max) : (char *) malloc (max);
    assert (text);
    *size = fread (text, 1, max - 1, file);
    bool whole = feof (file);
    fclose (file);
    text [*size] = 0;
    if (!whole || *size == 0 || !strstr (text, "-----BEGIN ")) {
        ws_tls_free_pem (&text, *size, secret);
        errno = EINVAL;
        return NULL;
    }
    return text;
}

void
ws_tls_free_pem (char **pem_p, size_t size, bool secret)
{
    assert (pem_p);
    if (!*pem_p)
        return;
    if (secret) {
        sodium_memzero (*pem_p, size);
        sodium_free (*pem_p);
    }
    else
        free (*pem_p);
    *pem_p = NULL;
}
