/*  ctl_http: the HTTP(S) client of `bifrostctl join` and `leave`: one request,
    one answer, blocking, bounded in time, on a plain socket or OpenSSL.
    Why not discovery's disc_http: it lives in a service (tools link libraries
    only: tests/boundaries.sh) and runs on a service's loop; a command that
    asks three questions and exits needs neither. TLS: the certificate chain
    and the host name are verified, against ca_file when given, else the
    system's CAs. The answer is read whole (Connection: close) and parsed by
    ctl_http_parse (a pure function, fuzzed by fuzz_ctl_http). */
#ifndef CTL_HTTP_H_INCLUDED
#define CTL_HTTP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_HTTP_ANSWER_MAX (1024 * 1024)   //  a bigger answer is an error

//  A registry's address, from a URL: http[s]://host[:port][/path]
typedef struct {
    bool tls;
    char host [256];                    //  a name, an IPv4 or an IPv6 literal (no brackets)
    uint16_t port;
    char path [256];                    //  "" or "/..." as given
} ctl_url_t;

//  Parses url: 0, or -1 with why in err
int ctl_url_parse (const char *url, ctl_url_t *out, char *err, size_t err_size);
//  Whether the host is a loopback address or "localhost"
bool ctl_url_loopback (const ctl_url_t *url);

//  Parses a whole answer (status line, headers, body; chunked or not) in
//  buf [0..len): 0 with *status, and the body copied to a malloc'd,
//  zero-terminated *body (*body_size bytes), or -1 with why in err.
int ctl_http_parse (const char *buf, size_t len, int *status, char **body, size_t *body_size,
                    char *err, size_t err_size);

//  One request: method and path to url's host; bearer and body (JSON) may be
//  NULL. Returns the HTTP status with the body in *body (malloc'd, the
//  caller frees), or 0 when no answer came (err says why: the name did not
//  resolve, the connection was refused, TLS failed, timeout).
int ctl_http_request (const ctl_url_t *url, const char *ca_file, const char *method, const char *path,
                      const char *bearer, const char *body, int timeout_ms, char **answer,
                      char *err, size_t err_size);

void ctl_http_test (bool verbose);
#endif
