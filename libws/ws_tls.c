/*  ws_tls: the listen address and the PEM files of a WebSocket server (why: ws_tls.h). */
#include "ws_tls.h"

#include <arpa/inet.h>
#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
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

//  The certificate file while lws makes the vhost (one thread makes vhosts)
static const char *s_chain_pem;
static size_t s_chain_size;
static int s_chain_added;

static void
s_add_chain (SSL_CTX *ctx)
{
    BIO *bio = BIO_new_mem_buf (s_chain_pem, (int) s_chain_size);
    X509 *cert = bio ? PEM_read_bio_X509 (bio, NULL, NULL, NULL) : NULL;
    X509_free (cert);                   //  the leaf: lws's
    while (cert && (cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL)))
        if (SSL_CTX_add_extra_chain_cert (ctx, cert) == 1)
            s_chain_added++;            //  ctx owns it now
        else
            X509_free (cert);
    ERR_clear_error ();                 //  the end of the file reads as an error
    BIO_free (bio);
}

bool
ws_tls_chain_callback (int reason, void *user)
{
    if (reason != LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS)
        return false;
    if (s_chain_pem && user)
        s_add_chain ((SSL_CTX *) user);
    return true;
}

struct lws_vhost *
ws_tls_vhost (struct lws_context *context, struct lws_context_creation_info *info,
              const char *cert_pem, size_t cert_size, const char *key_pem, size_t key_size, int *chain)
{
    info->options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_CREATE_VHOST_SSL_CTX;
    info->server_ssl_cert_mem = cert_pem;
    info->server_ssl_cert_mem_len = (unsigned int) cert_size;
    info->server_ssl_private_key_mem = key_pem;
    info->server_ssl_private_key_mem_len = (unsigned int) key_size;
    s_chain_pem = cert_pem;
    s_chain_size = cert_size;
    s_chain_added = 0;
    struct lws_vhost *vhost = lws_create_vhost (context, info);
    if (chain)
        *chain = s_chain_added;
    s_chain_pem = NULL;
    return vhost;
}
