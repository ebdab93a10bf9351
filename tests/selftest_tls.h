/*  selftest_tls: a throwaway CA, an intermediate CA it signed, and a
    certificate the intermediate signed, made with the openssl command in a
    temporary directory, for the self tests of the TLS transports (relay_wss,
    nat_relay_wss). The certificate file holds the leaf then the intermediate,
    as a CA like Let's Encrypt hands them out, so a client that trusts only the
    root verifies only when the server sends the chain. A second CA that signed
    nothing gives the "not trusted" case; bundle.pem holds both roots, the good
    one second. Keys are EC P-256, valid two days, deleted with the directory.

    Why the command and not a fixed certificate in the source: a fixed one
    expires, and a private key committed to the tree is one someone will copy. */
#ifndef SELFTEST_TLS_H_INCLUDED
#define SELFTEST_TLS_H_INCLUDED

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char dir [64];
    char ca_file [96], other_ca_file [96], bundle_file [96], cert_file [96], key_file [96];
    char *cert, *key;
    size_t cert_size, key_size;
} selftest_tls_t;

static inline char *
selftest_tls_slurp (const char *path, size_t *size)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return NULL;
    char *text = (char *) calloc (1, 65536);
    *size = fread (text, 1, 65535, f);
    fclose (f);
    return text;
}

//  san: "127.0.0.1" (an IP SAN) or a name (a DNS SAN)
static inline selftest_tls_t *
selftest_tls_new (const char *san)
{
    selftest_tls_t *self = (selftest_tls_t *) calloc (1, sizeof *self);
    snprintf (self->dir, sizeof self->dir, "/tmp/bifrost-tls-XXXXXX");
    if (!mkdtemp (self->dir)) {
        free (self);
        return NULL;
    }
    snprintf (self->ca_file, sizeof self->ca_file, "%s/ca.pem", self->dir);
    snprintf (self->other_ca_file, sizeof self->other_ca_file, "%s/other.pem", self->dir);
    snprintf (self->bundle_file, sizeof self->bundle_file, "%s/bundle.pem", self->dir);
    snprintf (self->cert_file, sizeof self->cert_file, "%s/relay.pem", self->dir);
    snprintf (self->key_file, sizeof self->key_file, "%s/relay.key", self->dir);
    bool ip = strspn (san, "0123456789.:") == strlen (san);
    char cmd [2048];
    snprintf (cmd, sizeof cmd,
        "cd %s && K='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes' && "
        "openssl req -x509 $K -keyout ca.key -out ca.pem -days 2 -subj /CN=bifrost-test-ca 2>/dev/null && "
        "openssl req -x509 $K -keyout other.key -out other.pem -days 2 -subj /CN=bifrost-other-ca 2>/dev/null && "
        "openssl req $K -keyout inter.key -out inter.csr -subj /CN=bifrost-test-intermediate 2>/dev/null && "
        "printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign,cRLSign\\n' > inter.cnf && "
        "openssl x509 -req -in inter.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile inter.cnf -out inter.pem 2>/dev/null && "
        "openssl req $K -keyout relay.key -out relay.csr -subj /CN=bifrost-test-relay 2>/dev/null && "
        "echo 'subjectAltName=%s:%s' > ext.cnf && "
        "openssl x509 -req -in relay.csr -CA inter.pem -CAkey inter.key -CAcreateserial -days 2 "
        "-extfile ext.cnf -out leaf.pem 2>/dev/null && cat leaf.pem inter.pem > relay.pem && "
        "cat other.pem ca.pem > bundle.pem", self->dir, ip ? "IP" : "DNS", san);
    if (system (cmd) != 0
    ||  !(self->cert = selftest_tls_slurp (self->cert_file, &self->cert_size))
    ||  !(self->key = selftest_tls_slurp (self->key_file, &self->key_size))) {
        printf ("selftest_tls: openssl failed (%s)\n", cmd);
        free (self->cert);
        free (self);
        return NULL;
    }
    return self;
}

static inline void
selftest_tls_destroy (selftest_tls_t **self_p)
{
    selftest_tls_t *self = *self_p;
    if (!self)
        return;
    char cmd [128];
    snprintf (cmd, sizeof cmd, "rm -rf %s", self->dir);
    if (system (cmd) != 0)
        printf ("selftest_tls: cannot remove %s\n", self->dir);
    free (self->cert);
    free (self->key);
    free (self);
    *self_p = NULL;
}

static inline const char *selftest_tls_ca_file (selftest_tls_t *self) { return self->ca_file; }
static inline const char *selftest_tls_other_ca_file (selftest_tls_t *self) { return self->other_ca_file; }
static inline const char *selftest_tls_bundle_file (selftest_tls_t *self) { return self->bundle_file; }
static inline const char *selftest_tls_cert (selftest_tls_t *self, size_t *size) { *size = self->cert_size; return self->cert; }
static inline const char *selftest_tls_key (selftest_tls_t *self, size_t *size) { *size = self->key_size; return self->key; }

#endif
