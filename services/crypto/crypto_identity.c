/*  crypto_identity: key file handling and the static DH. */
#include "crypto_identity.h"
#include "bus_log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct _crypto_identity_t {
    uint8_t *secret;                    //  sodium_malloc: locked, guarded
    uint8_t public_key [CRYPTO_KEY_SIZE];
};

crypto_identity_t *
crypto_identity_new_from_secret (const uint8_t secret [CRYPTO_KEY_SIZE])
{
    if (sodium_init () < 0)
        return NULL;
    crypto_identity_t *self = calloc (1, sizeof *self);
    assert (self);
    self->secret = sodium_malloc (CRYPTO_KEY_SIZE);
    assert (self->secret);
    memcpy (self->secret, secret, CRYPTO_KEY_SIZE);
    crypto_scalarmult_base (self->public_key, self->secret);
    return self;
}

crypto_identity_t *
crypto_identity_new (void)
{
    if (sodium_init () < 0)
        return NULL;
    uint8_t secret [CRYPTO_KEY_SIZE];
    randombytes_buf (secret, sizeof secret);
    //  Clamp as X25519 does, so the stored key is canonical (like wg genkey)
    secret [0] &= 248;
    secret [31] = (secret [31] & 127) | 64;
    crypto_identity_t *self = crypto_identity_new_from_secret (secret);
    sodium_memzero (secret, sizeof secret);
    return self;
}

void
crypto_identity_destroy (crypto_identity_t **self_p)
{
    assert (self_p);
    crypto_identity_t *self = *self_p;
    if (self) {
        sodium_free (self->secret);     //  wipes before unmapping
        free (self);
        *self_p = NULL;
    }
}

//  Writes a new key file; O_EXCL so two starting processes cannot both create
//  one and a symlink planted at the path is not followed.
static crypto_identity_t *
s_create (const char *path, char *err, size_t errsize)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        bus_errf (err, errsize, "cannot create key file %s: %s", path, strerror (errno));
        return NULL;
    }
    crypto_identity_t *self = crypto_identity_new ();
    assert (self);
    char text [CRYPTO_KEY_BASE64_SIZE + 1];
    sodium_bin2base64 (text, CRYPTO_KEY_BASE64_SIZE, self->secret, CRYPTO_KEY_SIZE,
                       sodium_base64_VARIANT_ORIGINAL);
    text [44] = '\n';
    bool ok = fchmod (fd, 0600) == 0
           && write (fd, text, 45) == 45
           && fsync (fd) == 0;
    int saved = errno;
    sodium_memzero (text, sizeof text);
    if (close (fd) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (!ok) {
        unlink (path);
        crypto_identity_destroy (&self);
        bus_errf (err, errsize, "cannot write key file %s: %s", path, strerror (saved));
        return NULL;
    }
    return self;
}

crypto_identity_t *
crypto_identity_load (const char *path, bool create, char *err, size_t errsize)
{
    if (sodium_init () < 0) {
        bus_errf (err, errsize, "libsodium failed to initialise");
        return NULL;
    }
    if (!path || !*path) {
        bus_errf (err, errsize, "no key file path given");
        return NULL;
    }
    int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create)
        return s_create (path, err, errsize);
    if (fd < 0) {
        bus_errf (err, errsize, "cannot open key file %s: %s", path, strerror (errno));
        return NULL;
    }
    struct stat st;
    if (fstat (fd, &st) || !S_ISREG (st.st_mode)) {
        close (fd);
        bus_errf (err, errsize, "key file %s is not a regular file", path);
        return NULL;
    }
    if (st.st_mode & 077) {
        close (fd);
        bus_errf (err, errsize, "key file %s has mode %04o: group/others can access it; "
                "refusing to use it (chmod 600 %s, and consider the key compromised)",
                path, (unsigned) (st.st_mode & 07777), path);
        return NULL;
    }
    char text [128];
    ssize_t size = read (fd, text, sizeof text);
    close (fd);
    if (size < 0) {
        bus_errf (err, errsize, "cannot read key file %s: %s", path, strerror (errno));
        return NULL;
    }
    //  Exactly 44 base64 characters, optionally followed by whitespace
    size_t len = (size_t) size;
    while (len && (text [len - 1] == '\n' || text [len - 1] == '\r'
                || text [len - 1] == ' ' || text [len - 1] == '\t'))
        len--;
    uint8_t secret [CRYPTO_KEY_SIZE];
    size_t bin_len = 0;
    const char *end = NULL;
    bool ok = len == 44
           && sodium_base642bin (secret, sizeof secret, text, len, NULL, &bin_len, &end,
                                 sodium_base64_VARIANT_ORIGINAL) == 0
           && bin_len == CRYPTO_KEY_SIZE && end == text + len;
    sodium_memzero (text, sizeof text);
    if (!ok) {
        sodium_memzero (secret, sizeof secret);
        bus_errf (err, errsize, "key file %s is malformed: expected one 44-character base64 "
                "X25519 private key", path);
        return NULL;
    }
    crypto_identity_t *self = crypto_identity_new_from_secret (secret);
    sodium_memzero (secret, sizeof secret);
    return self;
}

const uint8_t *
crypto_identity_public (const crypto_identity_t *self)
{
    return self->public_key;
}

void
crypto_identity_public_base64 (const crypto_identity_t *self, char out [CRYPTO_KEY_BASE64_SIZE])
{
    crypto_key_to_base64 (self->public_key, out);
}

int
crypto_identity_dh (const crypto_identity_t *self, const uint8_t peer_public [CRYPTO_KEY_SIZE],
                    uint8_t shared [CRYPTO_KEY_SIZE])
{
    //  libsodium returns -1 when the result is all zero (a low-order point)
    return crypto_scalarmult (shared, self->secret, peer_public) == 0 ? 0 : -1;
}

void
crypto_key_to_base64 (const uint8_t key [CRYPTO_KEY_SIZE], char out [CRYPTO_KEY_BASE64_SIZE])
{
    sodium_bin2base64 (out, CRYPTO_KEY_BASE64_SIZE, key, CRYPTO_KEY_SIZE, sodium_base64_VARIANT_ORIGINAL);
}

int
crypto_key_from_base64 (const char *text, uint8_t key [CRYPTO_KEY_SIZE], char *err, size_t errsize)
{
    if (sodium_init () < 0)
        return bus_errf (err, errsize, "libsodium failed to initialise");
    if (!text || !*text)
        return bus_errf (err, errsize, "empty public key");
    size_t len = strlen (text);
    if (len != 44)
        return bus_errf (err, errsize, "public key '%.60s' is %zu characters, expected 44 (base64 of 32 bytes)",
                       text, len);
    size_t bin_len = 0;
    const char *end = NULL;
    if (sodium_base642bin (key, CRYPTO_KEY_SIZE, text, len, NULL, &bin_len, &end,
                           sodium_base64_VARIANT_ORIGINAL) != 0
    ||  bin_len != CRYPTO_KEY_SIZE || end != text + len)
        return bus_errf (err, errsize, "public key '%s' is not valid base64", text);
    return 0;
}

void
crypto_identity_test (bool verbose)
{
    char err [256];
    char path [64];
    snprintf (path, sizeof path, "/tmp/crypto-identity-%d.key", (int) getpid ());
    unlink (path);

    //  Missing file without create: clear error
    assert (crypto_identity_load (path, false, err, sizeof err) == NULL);
    assert (strstr (err, "cannot open key file"));

    //  First start creates the key with mode 0600
    crypto_identity_t *id = crypto_identity_load (path, true, err, sizeof err);
    assert (id);
    struct stat st;
    assert (stat (path, &st) == 0);
    assert ((st.st_mode & 0777) == 0600);
    assert (st.st_size == 45);
    char pub [CRYPTO_KEY_BASE64_SIZE];
    crypto_identity_public_base64 (id, pub);
    assert (strlen (pub) == 44);
    if (verbose)
        printf ("  created %s, public key %s\n", path, pub);

    //  Second start loads the same key
    crypto_identity_t *again = crypto_identity_load (path, true, err, sizeof err);
    assert (again);
    assert (memcmp (crypto_identity_public (id), crypto_identity_public (again), 32) == 0);
    crypto_identity_destroy (&again);

    //  The file holds the private key, never the public one
    char text [64] = { 0 };
    FILE *f = fopen (path, "r");
    assert (f && fgets (text, sizeof text, f));
    fclose (f);
    assert (strncmp (text, pub, 44) != 0);

    //  Group/world readable: refused
    assert (chmod (path, 0644) == 0);
    assert (crypto_identity_load (path, true, err, sizeof err) == NULL);
    assert (strstr (err, "group/others"));
    if (verbose)
        printf ("  %s\n", err);
    assert (chmod (path, 0640) == 0);
    assert (crypto_identity_load (path, true, err, sizeof err) == NULL);
    assert (chmod (path, 0600) == 0);

    //  Malformed: truncated, garbage, too long
    f = fopen (path, "w");
    fputs ("AAAA\n", f);
    fclose (f);
    assert (crypto_identity_load (path, true, err, sizeof err) == NULL);
    assert (strstr (err, "malformed"));
    f = fopen (path, "w");
    fputs ("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!=\n", f);
    fclose (f);
    assert (crypto_identity_load (path, true, err, sizeof err) == NULL);
    f = fopen (path, "w");
    fprintf (f, "%s%s\n", text, text);
    fclose (f);
    assert (crypto_identity_load (path, true, err, sizeof err) == NULL);
    //  An empty existing file is malformed, not silently replaced
    f = fopen (path, "w");
    fclose (f);
    assert (chmod (path, 0600) == 0);
    assert (crypto_identity_load (path, true, err, sizeof err) == NULL);
    assert (strstr (err, "malformed"));
    unlink (path);

    //  A directory where the key should be: clear error
    assert (crypto_identity_load ("/tmp", false, err, sizeof err) == NULL);
    assert (strstr (err, "not a regular file"));
    assert (crypto_identity_load ("/nonexistent-dir/x.key", true, err, sizeof err) == NULL);
    assert (strstr (err, "cannot create"));

    //  Public key parsing from config
    uint8_t key [32];
    assert (crypto_key_from_base64 (pub, key, err, sizeof err) == 0);
    assert (memcmp (key, crypto_identity_public (id), 32) == 0);
    assert (crypto_key_from_base64 ("abc", key, err, sizeof err) == -1);
    assert (strstr (err, "expected 44"));
    assert (crypto_key_from_base64 ("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!=", key, err, sizeof err) == -1);
    assert (strstr (err, "not valid base64"));
    assert (crypto_key_from_base64 ("", key, err, sizeof err) == -1);
    assert (crypto_key_from_base64 (NULL, key, err, sizeof err) == -1);

    //  DH agrees both ways; a low-order point (all zero) is refused
    crypto_identity_t *other = crypto_identity_new ();
    uint8_t s1 [32], s2 [32], zero [32] = { 0 };
    assert (crypto_identity_dh (id, crypto_identity_public (other), s1) == 0);
    assert (crypto_identity_dh (other, crypto_identity_public (id), s2) == 0);
    assert (memcmp (s1, s2, 32) == 0);
    assert (crypto_identity_dh (id, zero, s1) == -1);

    //  Known answer (RFC 7748 section 6.1, Alice's key pair)
    static const uint8_t alice_sk [32] = {
        0x77,0x07,0x6d,0x0a,0x73,0x18,0xa5,0x7d,0x3c,0x16,0xc1,0x72,0x51,0xb2,0x66,0x45,
        0xdf,0x4c,0x2f,0x87,0xeb,0xc0,0x99,0x2a,0xb1,0x77,0xfb,0xa5,0x1d,0xb9,0x2c,0x2a };
    static const uint8_t alice_pk [32] = {
        0x85,0x20,0xf0,0x09,0x89,0x30,0xa7,0x54,0x74,0x8b,0x7d,0xdc,0xb4,0x3e,0xf7,0x5a,
        0x0d,0xbf,0x3a,0x0d,0x26,0x38,0x1a,0xf4,0xeb,0xa4,0xa9,0x8e,0xaa,0x9b,0x4e,0x6a };
    crypto_identity_t *alice = crypto_identity_new_from_secret (alice_sk);
    assert (memcmp (crypto_identity_public (alice), alice_pk, 32) == 0);
    crypto_identity_destroy (&alice);
    crypto_identity_destroy (&other);
    crypto_identity_destroy (&id);
    assert (id == NULL);
}
