/*  reg_turn: SHA-1, HMAC-SHA1 and TURN REST credentials (see reg_turn.h). */
#include "reg_turn.h"
#include "rest_codec.h"
#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  ---------------------------------------------------------------------------
//  SHA-1 (FIPS 180-1). Used only inside HMAC for coturn compatibility.

typedef struct {
    uint32_t h [5];
    uint64_t length;
    uint8_t block [64];
    size_t fill;
} s_sha1_t;

#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

static void
s_sha1_block (s_sha1_t *ctx, const uint8_t *p)
{
    uint32_t w [80];
    for (int i = 0; i < 16; i++)
        w [i] = (uint32_t) p [4 * i] << 24 | (uint32_t) p [4 * i + 1] << 16
              | (uint32_t) p [4 * i + 2] << 8 | p [4 * i + 3];
    for (int i = 16; i < 80; i++)
        w [i] = ROL (w [i - 3] ^ w [i - 8] ^ w [i - 14] ^ w [i - 16], 1);
    uint32_t a = ctx->h [0], b = ctx->h [1], c = ctx->h [2], d = ctx->h [3], e = ctx->h [4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20)      { f = (b & c) | (~b & d);          k = 0x5A827999; }
        else if (i < 40) { f = b ^ c ^ d;                   k = 0x6ED9EBA1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
        else             { f = b ^ c ^ d;                   k = 0xCA62C1D6; }
        uint32_t t = ROL (a, 5) + f + e + k + w [i];
        e = d; d = c; c = ROL (b, 30); b = a; a = t;
    }
    ctx->h [0] += a; ctx->h [1] += b; ctx->h [2] += c; ctx->h [3] += d; ctx->h [4] += e;
}

static void
s_sha1_init (s_sha1_t *ctx)
{
    static const uint32_t init [5] = { 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0 };
    memcpy (ctx->h, init, sizeof init);
    ctx->length = 0;
    ctx->fill = 0;
}

static void
s_sha1_update (s_sha1_t *ctx, const uint8_t *data, size_t size)
{
    ctx->length += size;
    while (size > 0) {
        size_t take = 64 - ctx->fill < size ? 64 - ctx->fill : size;
        memcpy (ctx->block + ctx->fill, data, take);
        ctx->fill += take, data += take, size -= take;
        if (ctx->fill == 64) {
            s_sha1_block (ctx, ctx->block);
            ctx->fill = 0;
        }
    }
}

static void
s_sha1_final (s_sha1_t *ctx, uint8_t digest [REG_SHA1_SIZE])
{
    uint64_t bits = ctx->length * 8;
    uint8_t pad = 0x80;
    s_sha1_update (ctx, &pad, 1);
    pad = 0;
    while (ctx->fill != 56)
        s_sha1_update (ctx, &pad, 1);
    uint8_t len [8];
    for (int i = 0; i < 8; i++)
        len [i] = (uint8_t) (bits >> (56 - 8 * i));
    s_sha1_update (ctx, len, 8);
    for (int i = 0; i < 5; i++) {
        digest [4 * i] = (uint8_t) (ctx->h [i] >> 24);
        digest [4 * i + 1] = (uint8_t) (ctx->h [i] >> 16);
        digest [4 * i + 2] = (uint8_t) (ctx->h [i] >> 8);
        digest [4 * i + 3] = (uint8_t) ctx->h [i];
    }
    sodium_memzero (ctx, sizeof *ctx);
}

void
reg_sha1 (const void *data, size_t size, uint8_t digest [REG_SHA1_SIZE])
{
    s_sha1_t ctx;
    s_sha1_init (&ctx);
    s_sha1_update (&ctx, (const uint8_t *) data, size);
    s_sha1_final (&ctx, digest);
}

void
reg_hmac_sha1 (const void *key, size_t key_size, const void *data, size_t size,
               uint8_t mac [REG_SHA1_SIZE])
{
    uint8_t k [64] = { 0 }, pad [64], inner [REG_SHA1_SIZE];
    if (key_size > 64)
        reg_sha1 (key, key_size, k);
    else
        memcpy (k, key, key_size);
    s_sha1_t ctx;
    for (int i = 0; i < 64; i++)
        pad [i] = k [i] ^ 0x36;
    s_sha1_init (&ctx);
    s_sha1_update (&ctx, pad, 64);
    s_sha1_update (&ctx, (const uint8_t *) data, size);
    s_sha1_final (&ctx, inner);
    for (int i = 0; i < 64; i++)
        pad [i] = k [i] ^ 0x5c;
    s_sha1_init (&ctx);
    s_sha1_update (&ctx, pad, 64);
    s_sha1_update (&ctx, inner, sizeof inner);
    s_sha1_final (&ctx, mac);
    sodium_memzero (k, sizeof k);
    sodium_memzero (pad, sizeof pad);
}

//  ---------------------------------------------------------------------------

struct _reg_turn_t {
    char *name, *version, *host, *secret;
    int port, tls_port;
    int64_t ttl_s;
    json_t *extra_stun;
};

reg_turn_t *
reg_turn_new (const reg_turn_config_t *config)
{
    reg_turn_t *self = (reg_turn_t *) calloc (1, sizeof *self);
    assert (self);
    self->name = strdup (config->name ? config->name : "bifrost-registry");
    self->version = strdup (config->version ? config->version : "0");
    self->host = config->host && *config->host ? strdup (config->host) : NULL;
    self->secret = config->secret && *config->secret ? strdup (config->secret) : NULL;
    self->port = config->port > 0 ? config->port : 3478;
    self->tls_port = config->tls_port;
    self->ttl_s = config->ttl_s > 0 ? config->ttl_s : 86400;
    self->extra_stun = json_array ();
    for (size_t i = 0; config->extra_stun && config->extra_stun [i]; i++)
        json_array_append_new (self->extra_stun, json_string (config->extra_stun [i]));
    return self;
}

void
reg_turn_destroy (reg_turn_t **self_p)
{
    reg_turn_t *self = *self_p;
    if (!self)
        return;
    free (self->name);
    free (self->version);
    free (self->host);
    if (self->secret) {
        sodium_memzero (self->secret, strlen (self->secret));
        free (self->secret);
    }
    json_decref (self->extra_stun);
    free (self);
    *self_p = NULL;
}

bool reg_turn_has_secret (reg_turn_t *self) { return self->secret != NULL; }

int
reg_turn_credential (reg_turn_t *self, const char *peer, int64_t now_s,
                     char *username, size_t username_size, char *password, size_t password_size)
{
    if (!self->secret || password_size < sodium_base64_ENCODED_LEN (REG_SHA1_SIZE, sodium_base64_VARIANT_ORIGINAL))
        return -1;
    int n = snprintf (username, username_size, "%lld:%s", (long long) (now_s + self->ttl_s), peer);
    if (n < 0 || (size_t) n >= username_size)
        return -1;
    uint8_t mac [REG_SHA1_SIZE];
    reg_hmac_sha1 (self->secret, strlen (self->secret), username, strlen (username), mac);
    sodium_bin2base64 (password, password_size, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

//  Appends a URL to an ICE server's list (schemas/rest.def, rest_ice_server)
static void
s_url (rest_ice_server_t *server, const char *url)
{
    const size_t max = sizeof server->urls / sizeof server->urls [0];
    if (server->urls_count < max && strlen (url) < sizeof server->urls [0])
        memcpy (server->urls [server->urls_count++], url, strlen (url) + 1);
}

json_t *
reg_turn_meta (reg_turn_t *self, const char *peer, int64_t now_s)
{
    rest_meta_t meta = { .has_name = true, .has_version = true, .has_iceServers = true,
                         .ttl = self->ttl_s, .has_ttl = true };
    snprintf (meta.name, sizeof meta.name, "%s", self->name);
    snprintf (meta.version, sizeof meta.version, "%s", self->version);
    meta.iceServers = (rest_ice_server_t *) calloc (2, sizeof *meta.iceServers);
    assert (meta.iceServers);
    rest_ice_server_t *stun = &meta.iceServers [0], *turn = &meta.iceServers [1];
    stun->has_urls = turn->has_urls = true;
    size_t index;
    json_t *extra;
    char url [300];
    if (self->host) {
        //  An IPv6 literal needs brackets inside a URL
        bool v6 = strchr (self->host, ':') != NULL;
        const char *l = v6 ? "[" : "", *r = v6 ? "]" : "";
        snprintf (url, sizeof url, "stun:%s%s%s:%d", l, self->host, r, self->port);
        s_url (stun, url);
        json_array_foreach (self->extra_stun, index, extra)
            s_url (stun, json_string_value (extra));
        meta.iceServers_count = 1;
        if (peer && reg_turn_credential (self, peer, now_s, turn->username, sizeof turn->username,
                                         turn->credential, sizeof turn->credential) == 0) {
            snprintf (url, sizeof url, "turn:%s%s%s:%d?transport=udp", l, self->host, r, self->port);
            s_url (turn, url);
            snprintf (url, sizeof url, "turn:%s%s%s:%d?transport=tcp", l, self->host, r, self->port);
            s_url (turn, url);
            if (self->tls_port > 0) {
                snprintf (url, sizeof url, "turns:%s%s%s:%d?transport=tcp", l, self->host, r, self->tls_port);
                s_url (turn, url);
            }
            turn->has_username = turn->has_credential = true;
            meta.iceServers_count = 2;
        }
    }
    else
    if (json_array_size (self->extra_stun)) {
        json_array_foreach (self->extra_stun, index, extra)
            s_url (stun, json_string_value (extra));
        meta.iceServers_count = 1;
    }
    json_t *json = rest_encode (&rest_meta_schema, &meta);
    sodium_memzero (turn->credential, sizeof turn->credential);
    rest_free (&rest_meta_schema, &meta);
    return json;
}

//  ---------------------------------------------------------------------------
static void
s_hex (const uint8_t *bin, size_t size, char *out)
{
    for (size_t i = 0; i < size; i++)
        sprintf (out + 2 * i, "%02x", bin [i]);
}

void
reg_turn_test (bool verbose)
{
    uint8_t mac [REG_SHA1_SIZE];
    char hex [41];
    //  FIPS 180-1 vectors
    reg_sha1 ("abc", 3, mac);
    s_hex (mac, 20, hex);
    assert (strcmp (hex, "a9993e364706816aba3e25717850c26c9cd0d89d") == 0);
    reg_sha1 ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, mac);
    s_hex (mac, 20, hex);
    assert (strcmp (hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1") == 0);
    reg_sha1 ("", 0, mac);
    s_hex (mac, 20, hex);
    assert (strcmp (hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709") == 0);

    //  RFC 2202 HMAC-SHA1 test cases 1, 2, 3, 6, 7
    uint8_t key [80];
    memset (key, 0x0b, 20);
    reg_hmac_sha1 (key, 20, "Hi There", 8, mac);
    s_hex (mac, 20, hex);
    assert (strcmp (hex, "b617318655057264e28bc0b6fb378c8ef146be00") == 0);
    reg_hmac_sha1 ("Jefe", 4, "what do ya want for nothing?", 28, mac);
    s_hex (mac, 20, hex);
    assert (strcmp (hex, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79") == 0);
    uint8_t data [80];
    memset (key, 0xaa, 80);
    memset (data, 0xdd, 50);
    reg_hmac_sha1 (key, 20, data, 50, mac);
    s_hex (mac, 20, hex);
    assert (strcmp (hex, "125d7342b9ac11cd91a39af48aa17b4f63f175d3") == 0);
    reg_hmac_sha1 (key, 80, "Test Using Larger Than Block-Size Key - Hash Key First", 54, mac);
    s_hex (mac, 20, hex);
    assert (strcmp (hex, "aa4ae5e15272d00e95705637ce8a3b55ed402112") == 0);
    reg_hmac_sha1 (key, 80, "Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data", 73, mac);
    s_hex (mac, 20, hex);
    assert (strcmp (hex, "e8e99d0f45237d786d6bbaa7965c7808bbff1a91") == 0);

    //  Without a secret: STUN only, no credential
    reg_turn_t *turn = reg_turn_new (&(reg_turn_config_t) { .host = "198.51.100.7", .port = 3478 });
    char user [100], pass [64];
    assert (!reg_turn_has_secret (turn));
    assert (reg_turn_credential (turn, "p1", 1000, user, sizeof user, pass, sizeof pass) == -1);
    json_t *meta = reg_turn_meta (turn, "p1", 1000);
    json_t *servers = json_object_get (meta, "iceServers");
    assert (json_array_size (servers) == 1);
    assert (strcmp (json_string_value (json_array_get (json_object_get (json_array_get (servers, 0), "urls"), 0)),
                    "stun:198.51.100.7:3478") == 0);
    json_decref (meta);
    reg_turn_destroy (&turn);
    assert (turn == NULL);

    //  With a secret: coturn's form, known answer computed with
    //  printf %s '86400:alice' | openssl dgst -sha1 -hmac secret -binary | base64
    turn = reg_turn_new (&(reg_turn_config_t) { .host = "2001:db8::1", .port = 3478, .tls_port = 5349,
                                                .secret = "secret", .ttl_s = 86400 });
    assert (reg_turn_credential (turn, "alice", 0, user, sizeof user, pass, sizeof pass) == 0);
    assert (strcmp (user, "86400:alice") == 0);
    assert (strcmp (pass, "dvSdV1YGXw0TI92UauKfluPnRsc=") == 0);
    if (verbose)
        printf ("  %s / %s\n", user, pass);
    meta = reg_turn_meta (turn, "alice", 0);
    servers = json_object_get (meta, "iceServers");
    assert (json_array_size (servers) == 2);
    json_t *entry = json_array_get (servers, 1);
    assert (json_array_size (json_object_get (entry, "urls")) == 3);
    assert (strcmp (json_string_value (json_array_get (json_object_get (entry, "urls"), 2)),
                    "turns:[2001:db8::1]:5349?transport=tcp") == 0);
    assert (strcmp (json_string_value (json_object_get (entry, "username")), "86400:alice") == 0);
    assert (json_integer_value (json_object_get (meta, "ttl")) == 86400);
    json_decref (meta);
    //  Anonymous: STUN only even with a secret
    meta = reg_turn_meta (turn, NULL, 0);
    assert (json_array_size (json_object_get (meta, "iceServers")) == 1);
    json_decref (meta);
    reg_turn_destroy (&turn);
}
