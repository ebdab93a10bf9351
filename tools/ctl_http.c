/*  ctl_http: one HTTP(S) request for bifrostctl (why: ctl_http.h). */
#include "ctl_http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

//  ---------------------------------------------------------------------------
//  URLs

int
ctl_url_parse (const char *url, ctl_url_t *out, char *err, size_t err_size)
{
    memset (out, 0, sizeof *out);
    const char *rest;
    if (strncmp (url, "https://", 8) == 0) {
        out->tls = true;
        out->port = 443;
        rest = url + 8;
    }
    else
    if (strncmp (url, "http://", 7) == 0) {
        out->port = 80;
        rest = url + 7;
    }
    else {
        snprintf (err, err_size, "'%s' is not a registry URL: expected https://host[:port] (or http://)", url);
        return -1;
    }
    const char *host = rest, *host_end;
    if (*rest == '[') {
        host = rest + 1;
        host_end = strchr (host, ']');
        if (!host_end) {
            snprintf (err, err_size, "'%s': an IPv6 address without its closing ]", url);
            return -1;
        }
        rest = host_end + 1;
    }
    else {
        host_end = host + strcspn (host, ":/?#");
        rest = host_end;
    }
    size_t host_len = (size_t) (host_end - host);
    if (host_len == 0 || host_len >= sizeof out->host) {
        snprintf (err, err_size, "'%s': no host", url);
        return -1;
    }
    memcpy (out->host, host, host_len);
    for (size_t i = 0; i < host_len; i++)
        if (!isalnum ((unsigned char) out->host [i]) && !strchr ("-._:", out->host [i])) {
            snprintf (err, err_size, "'%s': '%s' is not a host name or address", url, out->host);
            return -1;
        }
    if (*rest == ':') {
        char *end;
        errno = 0;
        long port = strtol (rest + 1, &end, 10);
        if (end == rest + 1 || errno || port < 1 || port > 65535 || (*end && *end != '/')) {
            snprintf (err, err_size, "'%s': the port must be 1 to 65535", url);
            return -1;
        }
        out->port = (uint16_t) port;
        rest = end;
    }
    if (*rest && *rest != '/') {
        snprintf (err, err_size, "'%s': unexpected '%s' after the host", url, rest);
        return -1;
    }
    //  The path, without a trailing slash
    size_t path_len = strlen (rest);
    while (path_len && rest [path_len - 1] == '/')
        path_len--;
    if (path_len >= sizeof out->path || strpbrk (rest, " \"\\?#")) {
        snprintf (err, err_size, "'%s': the path must be plain, without query or fragment", url);
        return -1;
    }
    memcpy (out->path, rest, path_len);
    return 0;
}

bool
ctl_url_loopback (const ctl_url_t *url)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp (url->host, "localhost") == 0)
        return true;
    if (inet_pton (AF_INET, url->host, &a4) == 1)
        return (ntohl (a4.s_addr) >> 24) == 127;
    return inet_pton (AF_INET6, url->host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK (&a6);
}

//  ---------------------------------------------------------------------------
//  The answer

//  The value of header name in the head [0..head_len), or NULL (len in *size)
static const char *
s_header (const char *head, size_t head_len, const char *name, size_t *size)
{
    size_t name_len = strlen (name);
    const char *line = memchr (head, '\n', head_len);
    while (line && (size_t) (line - head) < head_len) {
        line++;
        const char *end = memchr (line, '\n', head_len - (size_t) (line - head));
        if (!end)
            break;
        if ((size_t) (end - line) > name_len && strncasecmp (line, name, name_len) == 0 && line [name_len] == ':') {
            const char *value = line + name_len + 1;
            while (value < end && (*value == ' ' || *value == '\t'))
                value++;
            const char *value_end = end;
            while (value_end > value && (value_end [-1] == '\r' || value_end [-1] == ' '))
                value_end--;
            *size = (size_t) (value_end - value);
            return value;
        }
        line = end;
    }
    return NULL;
}

int
ctl_http_parse (const char *buf, size_t len, int *status, char **body, size_t *body_size,
                char *err, size_t err_size)
{
    *body = NULL;
    *body_size = 0;
    //  The status line: HTTP/1.x NNN
    if (len < 12 || memcmp (buf, "HTTP/1.", 7) != 0 || buf [8] != ' '
    ||  !isdigit ((unsigned char) buf [9]) || !isdigit ((unsigned char) buf [10]) || !isdigit ((unsigned char) buf [11])) {
        snprintf (err, err_size, "not an HTTP answer");
        return -1;
    }
    *status = (buf [9] - '0') * 100 + (buf [10] - '0') * 10 + (buf [11] - '0');
    if (*status < 100) {
        snprintf (err, err_size, "HTTP status %d", *status);
        return -1;
    }
    //  The head ends at the first blank line
    size_t head_len = 0;
    for (size_t i = 0; i + 1 < len && !head_len; i++)
        if (buf [i] == '\n' && buf [i + 1] == '\n')
            head_len = i + 2;
        else
        if (buf [i] == '\n' && i + 2 < len && buf [i + 1] == '\r' && buf [i + 2] == '\n')
            head_len = i + 3;
    if (!head_len) {
        snprintf (err, err_size, "the answer's head does not end");
        return -1;
    }
    const char *data = buf + head_len;
    size_t data_len = len - head_len;
    char *out = (char *) malloc (data_len + 1);
    assert (out);
    size_t out_len = 0;
    size_t value_size;
    const char *te = s_header (buf, head_len, "Transfer-Encoding", &value_size);
    if (te && value_size == 7 && strncasecmp (te, "chunked", 7) == 0) {
        //  size in hex, CRLF, data, CRLF ... until a chunk of 0
        size_t at = 0;
        for (;;) {
            size_t chunk = 0, digits = 0;
            while (at < data_len && isxdigit ((unsigned char) data [at]) && digits < 8) {
                int c = tolower ((unsigned char) data [at++]);
                chunk = chunk * 16 + (size_t) (isdigit (c) ? c - '0' : c - 'a' + 10);
                digits++;
            }
            while (at < data_len && data [at] != '\n')        //  chunk extensions, CR
                at++;
            if (!digits || at >= data_len) {
                free (out);
                snprintf (err, err_size, "a bad chunk in the answer");
                return -1;
            }
            at++;
            if (chunk == 0)
                break;
            if (chunk > data_len - at) {
                free (out);
                snprintf (err, err_size, "the answer ends inside a chunk");
                return -1;
            }
            memcpy (out + out_len, data + at, chunk);
            out_len += chunk;
            at += chunk;
            if (at < data_len && data [at] == '\r')
                at++;
            if (at < data_len && data [at] == '\n')
                at++;
        }
    }
    else {
        const char *cl = s_header (buf, head_len, "Content-Length", &value_size);
        size_t want = data_len;
        if (cl) {
            size_t n = 0;
            for (size_t i = 0; i < value_size; i++) {
                if (!isdigit ((unsigned char) cl [i]) || n > CTL_HTTP_ANSWER_MAX) {
                    free (out);
                    snprintf (err, err_size, "a bad Content-Length");
                    return -1;
                }
                n = n * 10 + (size_t) (cl [i] - '0');
            }
            if (n > data_len) {
                free (out);
                snprintf (err, err_size, "the answer is shorter than its Content-Length");
                return -1;
            }
            want = n;
        }
        memcpy (out, data, want);
        out_len = want;
    }
    out [out_len] = 0;
    *body = out;
    *body_size = out_len;
    return 0;
}

//  ---------------------------------------------------------------------------
//  The request

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  A connected TCP socket to host:port within the deadline, or -1 with err
static int
s_connect (const ctl_url_t *url, int64_t deadline, char *err, size_t err_size)
{
    char port [8];
    snprintf (port, sizeof port, "%u", url->port);
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC }, *list = NULL;
    int rc = getaddrinfo (url->host, port, &hints, &list);
    if (rc) {
        snprintf (err, err_size, "cannot resolve %s: %s", url->host, gai_strerror (rc));
        return -1;
    }
    int fd = -1;
    snprintf (err, err_size, "no address for %s", url->host);
    for (struct addrinfo *ai = list; ai && fd < 0; ai = ai->ai_next) {
        fd = socket (ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (connect (fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
            snprintf (err, err_size, "cannot connect to %s port %u: %s", url->host, url->port, strerror (errno));
            close (fd);
            fd = -1;
            continue;
        }
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int left = (int) (deadline - s_now_ms ());
        int soerr = 0;
        socklen_t soerr_len = sizeof soerr;
        if (left <= 0 || poll (&p, 1, left) != 1) {
            snprintf (err, err_size, "no connection to %s port %u within the timeout", url->host, url->port);
            close (fd);
            fd = -1;
        }
        else
        if (getsockopt (fd, SOL_SOCKET, SO_ERROR, &soerr, &soerr_len) || soerr) {
            snprintf (err, err_size, "cannot connect to %s port %u: %s", url->host, url->port, strerror (soerr));
            close (fd);
            fd = -1;
        }
    }
    freeaddrinfo (list);
    if (fd >= 0) {
        //  Blocking from here, each read and write bounded by what is left
        fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK);
        int64_t left = deadline - s_now_ms ();
        struct timeval tv = { .tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000 };
        setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    return fd;
}

//  The last OpenSSL error as text
static void
s_ssl_error (const char *what, char *err, size_t err_size)
{
    unsigned long e = ERR_get_error ();
    char text [200] = "";
    if (e)
        ERR_error_string_n (e, text, sizeof text);
    snprintf (err, err_size, "%s%s%s", what, *text ? ": " : "", text);
}

int
ctl_http_request (const ctl_url_t *url, const char *ca_file, const char *method, const char *path,
                  const char *bearer, const char *body, int timeout_ms, char **answer,
                  char *err, size_t err_size)
{
    *answer = NULL;
    int64_t deadline = s_now_ms () + timeout_ms;
    int fd = s_connect (url, deadline, err, err_size);
    if (fd < 0)
        return 0;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    int status = 0;
    char *request = NULL, *buf = NULL;
    if (url->tls) {
        ctx = SSL_CTX_new (TLS_client_method ());
        if (!ctx) {
            s_ssl_error ("TLS", err, err_size);
            goto done;
        }
        SSL_CTX_set_min_proto_version (ctx, TLS1_2_VERSION);
        SSL_CTX_set_verify (ctx, SSL_VERIFY_PEER, NULL);
        if (ca_file && *ca_file ? SSL_CTX_load_verify_locations (ctx, ca_file, NULL) != 1
                                : SSL_CTX_set_default_verify_paths (ctx) != 1) {
            s_ssl_error (ca_file && *ca_file ? "cannot read the CA file" : "cannot load the system's CAs", err, err_size);
            goto done;
        }
        ssl = SSL_new (ctx);
        SSL_set_fd (ssl, fd);
        SSL_set1_host (ssl, url->host);
        struct in6_addr a6;
        struct in_addr a4;
        if (inet_pton (AF_INET, url->host, &a4) != 1 && inet_pton (AF_INET6, url->host, &a6) != 1)
            SSL_set_tlsext_host_name (ssl, url->host);
        if (SSL_connect (ssl) != 1) {
            long verify = SSL_get_verify_result (ssl);
            if (verify != X509_V_OK)
                snprintf (err, err_size, "TLS with %s: the certificate is not trusted (%s)", url->host,
                          X509_verify_cert_error_string (verify));
            else
                s_ssl_error ("TLS handshake failed", err, err_size);
            goto done;
        }
    }
    size_t body_len = body ? strlen (body) : 0;
    size_t request_size = 1024 + strlen (path) + (bearer ? strlen (bearer) : 0) + body_len;
    request = (char *) malloc (request_size);
    assert (request);
    bool v6 = strchr (url->host, ':') != NULL;
    int head = snprintf (request, request_size,
                         "%s %s%s HTTP/1.1\r\nHost: %s%s%s:%u\r\nUser-Agent: bifrostctl\r\nAccept: application/json\r\n"
                         "%s%s%sContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                         method, url->path, path, v6 ? "[" : "", url->host, v6 ? "]" : "", url->port,
                         bearer ? "Authorization: Bearer " : "", bearer ? bearer : "", bearer ? "\r\n" : "", body_len);
    memcpy (request + head, body ? body : "", body_len);
    size_t total = (size_t) head + body_len, sent = 0;
    while (sent < total) {
        int n = ssl ? SSL_write (ssl, request + sent, (int) (total - sent))
                    : (int) send (fd, request + sent, total - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            snprintf (err, err_size, "the connection to %s broke while sending", url->host);
            goto done;
        }
        sent += (size_t) n;
    }
    //  The whole answer, until the server closes
    buf = (char *) malloc (CTL_HTTP_ANSWER_MAX + 1);
    assert (buf);
    size_t got = 0;
    for (;;) {
        if (s_now_ms () > deadline) {
            snprintf (err, err_size, "no complete answer from %s within the timeout", url->host);
            goto done;
        }
        int n = ssl ? SSL_read (ssl, buf + got, (int) (CTL_HTTP_ANSWER_MAX - got))
                    : (int) recv (fd, buf + got, CTL_HTTP_ANSWER_MAX - got, 0);
        if (n <= 0) {
            if (!ssl && n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                snprintf (err, err_size, "no complete answer from %s within the timeout", url->host);
                goto done;
            }
            break;
        }
        got += (size_t) n;
        if (got == CTL_HTTP_ANSWER_MAX) {
            snprintf (err, err_size, "the answer from %s is larger than %d bytes", url->host, CTL_HTTP_ANSWER_MAX);
            goto done;
        }
    }
    size_t body_size;
    int parsed;
    if (ctl_http_parse (buf, got, &parsed, answer, &body_size, err, err_size) == 0)
        status = parsed;
done:
    free (buf);
    free (request);
    if (ssl) {
        SSL_shutdown (ssl);
        SSL_free (ssl);
    }
    SSL_CTX_free (ctx);
    close (fd);
    return status;
}

//  ---------------------------------------------------------------------------
//  Self test: URLs, answers (plain, chunked, short), a request to a server
//  that is not there

static int
s_test_parse (const char *text, int *status, char **body)
{
    size_t size;
    char err [200];
    return ctl_http_parse (text, strlen (text), status, body, &size, err, sizeof err);
}

void
ctl_http_test (bool verbose)
{
    ctl_url_t url;
    char err [300];
    assert (ctl_url_parse ("https://reg.example.org", &url, err, sizeof err) == 0);
    assert (url.tls && url.port == 443 && !strcmp (url.host, "reg.example.org") && !*url.path);
    assert (ctl_url_parse ("http://192.0.2.10:7080/", &url, err, sizeof err) == 0);
    assert (!url.tls && url.port == 7080 && !strcmp (url.host, "192.0.2.10") && !*url.path);
    assert (ctl_url_parse ("https://[2001:db8::1]:7443/bifrost", &url, err, sizeof err) == 0);
    assert (!strcmp (url.host, "2001:db8::1") && url.port == 7443 && !strcmp (url.path, "/bifrost"));
    assert (ctl_url_parse ("ftp://x", &url, err, sizeof err) == -1 && strstr (err, "not a registry URL"));
    assert (ctl_url_parse ("https://", &url, err, sizeof err) == -1 && strstr (err, "no host"));
    assert (ctl_url_parse ("https://a:0", &url, err, sizeof err) == -1 && strstr (err, "port"));
    assert (ctl_url_parse ("https://a:99999", &url, err, sizeof err) == -1);
    assert (ctl_url_parse ("https://a b", &url, err, sizeof err) == -1);
    assert (ctl_url_parse ("https://a/x?y", &url, err, sizeof err) == -1);
    assert (ctl_url_parse ("http://127.0.0.1:1", &url, err, sizeof err) == 0 && ctl_url_loopback (&url));
    assert (ctl_url_parse ("http://192.0.2.1:1", &url, err, sizeof err) == 0 && !ctl_url_loopback (&url));

    int status;
    char *body;
    assert (s_test_parse ("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}xx", &status, &body) == 0);
    assert (status == 201 && !strcmp (body, "{}"));
    free (body);
    assert (s_test_parse ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n",
                          &status, &body) == 0);
    assert (status == 200 && !strcmp (body, "abcde"));
    free (body);
    assert (s_test_parse ("HTTP/1.0 204 No Content\n\n", &status, &body) == 0 && status == 204 && !*body);
    free (body);
    assert (s_test_parse ("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", &status, &body) == -1);
    assert (s_test_parse ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nabc", &status, &body) == -1);
    assert (s_test_parse ("SSH-2.0-OpenSSH\r\n", &status, &body) == -1);
    assert (s_test_parse ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", &status, &body) == -1);

    //  Nobody on the port: no status, a reason
    assert (ctl_url_parse ("http://127.0.0.1:1", &url, err, sizeof err) == 0);
    char *answer;
    assert (ctl_http_request (&url, NULL, "GET", "/client/meta", NULL, NULL, 1000, &answer, err, sizeof err) == 0);
    assert (!answer && strstr (err, "cannot connect"));
    if (verbose)
        printf ("ctl_http: %s\n", err);
}
