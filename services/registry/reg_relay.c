/*  reg_relay: relay grants for registrations and heartbeats (see reg_relay.h). */
#include "reg_relay.h"
#include "relay_cred.h"
#include "rest_codec.h"

#include <assert.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _reg_relay_t {
    relay_cred_t *cred;             //  NULL without a secret
    char servers [REG_RELAY_SERVERS_MAX][121];
    uint32_t servers_count;
    int64_t ttl_s;
    uint16_t tls_port;
};

reg_relay_t *
reg_relay_new (const reg_relay_config_t *config)
{
    reg_relay_t *self = (reg_relay_t *) calloc (1, sizeof *self);
    assert (self);
    for (size_t i = 0; config->servers && config->servers [i] && i < REG_RELAY_SERVERS_MAX; i++)
        if (strlen (config->servers [i]) < sizeof self->servers [0])
            snprintf (self->servers [self->servers_count++], sizeof self->servers [0], "%s", config->servers [i]);
    self->ttl_s = config->ttl_s > 0 ? config->ttl_s : 86400;
    self->tls_port = config->tls_port;
    //  The workers refuse an expiry further ahead than their own credential_ttl
    //  (plus a minute); the registry issues exactly ttl, so no limit here
    if (config->secret)
        self->cred = relay_cred_new (config->secret, 0);
    return self;
}

void
reg_relay_destroy (reg_relay_t **self_p)
{
    reg_relay_t *self = *self_p;
    if (!self)
        return;
    relay_cred_destroy (&self->cred);
    free (self);
    *self_p = NULL;
}

bool
reg_relay_enabled (reg_relay_t *self)
{
    return self->cred && self->servers_count > 0;
}

const char *
reg_relay_off_reason (reg_relay_t *self)
{
    if (!self->cred && !self->servers_count)
        return "no relay group (relay.secret and relay.servers): registrations carry no relay credential";
    if (!self->cred)
        return "relay.servers without relay.secret: registrations carry no relay credential";
    if (!self->servers_count)
        return "relay.secret without relay.servers: registrations carry no relay credential";
    return NULL;
}

int
reg_relay_grant (reg_relay_t *self, const char *network_id, const char *peer_id, int64_t now_s,
                 rest_relay_grant_t *out)
{
    memset (out, 0, sizeof *out);
    uint64_t peer;
    if (!reg_relay_enabled (self) || relay_cred_peer_parse (peer_id, &peer))
        return -1;
    uint64_t network = relay_cred_network_tag (network_id);
    uint64_t expiry = (uint64_t) (now_s + self->ttl_s);
    uint8_t mac [RELAY_CRED_MAC_SIZE];
    relay_cred_issue (self->cred, network, peer, expiry, mac);
    char text [RELAY_CRED_TEXT_MAX];
    relay_cred_format (expiry, mac, text);
    sodium_memzero (mac, sizeof mac);
    snprintf (out->credential, sizeof out->credential, "%s", text);
    sodium_memzero (text, sizeof text);
    //  The tag as the node and the workers parse it back (relay_cred_peer_parse)
    snprintf (out->network, sizeof out->network, "%016" PRIx64, network);
    memcpy (out->servers, self->servers, sizeof out->servers);
    out->servers_count = self->servers_count;
    out->has_servers = out->has_network = out->has_credential = true;
    out->tls_port = self->tls_port;
    out->has_tls_port = self->tls_port != 0;
    return 0;
}

void
reg_relay_meta (reg_relay_t *self, rest_meta_t *meta)
{
    if (!reg_relay_enabled (self))
        return;
    memcpy (meta->relays, self->servers, sizeof meta->relays);
    meta->relays_count = self->servers_count;
    meta->has_relays = true;
}

//  ---------------------------------------------------------------------------
//  Self test: a grant verifies with the workers' code and the same secret, and
//  with nothing else (another secret, network, peer or expiry); the text form
//  passes the REST checks the node reads it with.

void
reg_relay_test (bool verbose)
{
    assert (sodium_init () >= 0);
    uint8_t secret [RELAY_CRED_SECRET_SIZE];
    randombytes_buf (secret, sizeof secret);
    const char *servers [] = { "relay-1@192.0.2.10:3479", "relay-2@[2001:db8::2]:3479", NULL };
    reg_relay_config_t config = { .servers = servers, .secret = secret, .ttl_s = 600, .tls_port = 443 };
    reg_relay_t *relay = reg_relay_new (&config);
    assert (reg_relay_enabled (relay) && reg_relay_off_reason (relay) == NULL);

    rest_relay_grant_t grant;
    int64_t now = 1700000000;
    assert (reg_relay_grant (relay, "office", "b4c804b23a21c6aa", now, &grant) == 0);
    assert (grant.servers_count == 2 && strcmp (grant.servers [1], "relay-2@[2001:db8::2]:3479") == 0);
    assert (grant.has_tls_port && grant.tls_port == 443);
    assert (rest_check (REST_HEX16, grant.network) && rest_check (REST_RELAY_CRED, grant.credential));
    for (uint32_t i = 0; i < grant.servers_count; i++)
        assert (rest_check (REST_RELAY, grant.servers [i]));
    if (verbose)
        printf ("  network %s, credential %.16s...\n", grant.network, grant.credential);

    //  What a node hands a worker, parsed back as the worker does
    uint64_t network, peer, expiry;
    uint8_t mac [RELAY_CRED_MAC_SIZE];
    assert (relay_cred_peer_parse (grant.network, &network) == 0);
    assert (network == relay_cred_network_tag ("office"));
    assert (relay_cred_peer_parse ("b4c804b23a21c6aa", &peer) == 0);
    assert (relay_cred_parse (grant.credential, &expiry, mac) == RELAY_CRED_OK);
    assert (expiry == (uint64_t) now + 600);
    relay_cred_t *worker = relay_cred_new (secret, 600 + 60);
    assert (relay_cred_verify (worker, network, peer, expiry, mac, (uint64_t) now) == RELAY_CRED_OK);
    assert (relay_cred_verify (worker, network, peer, expiry, mac, (uint64_t) now + 601) == RELAY_CRED_EXPIRED);
    assert (relay_cred_verify (worker, relay_cred_network_tag ("home"), peer, expiry, mac, (uint64_t) now)
            == RELAY_CRED_BAD_MAC);
    assert (relay_cred_verify (worker, network, peer ^ 1, expiry, mac, (uint64_t) now) == RELAY_CRED_BAD_MAC);
    assert (relay_cred_verify (worker, network, peer, expiry + 1, mac, (uint64_t) now) == RELAY_CRED_BAD_MAC);
    relay_cred_destroy (&worker);
    uint8_t other [RELAY_CRED_SECRET_SIZE];
    memcpy (other, secret, sizeof other);
    other [0] ^= 1;
    worker = relay_cred_new (other, 0);
    assert (relay_cred_verify (worker, network, peer, expiry, mac, (uint64_t) now) == RELAY_CRED_BAD_MAC);
    relay_cred_destroy (&worker);

    //  A heartbeat later: a fresh expiry, so a fresh credential
    rest_relay_grant_t later;
    assert (reg_relay_grant (relay, "office", "b4c804b23a21c6aa", now + 30, &later) == 0);
    assert (strcmp (later.credential, grant.credential) != 0 && strcmp (later.network, grant.network) == 0);
    //  Not a peer id: no grant
    assert (reg_relay_grant (relay, "office", "not-a-peer-id", now, &later) == -1);

    //  The meta lists the relays, without a credential
    rest_meta_t *meta = (rest_meta_t *) calloc (1, sizeof *meta);
    assert (meta);
    reg_relay_meta (relay, meta);
    char *text = rest_encode_text (&rest_meta_schema, meta);
    assert (strcmp (text, "{\"relays\":[\"relay-1@192.0.2.10:3479\",\"relay-2@[2001:db8::2]:3479\"]}") == 0);
    free (text);
    reg_relay_destroy (&relay);
    assert (relay == NULL);

    //  Without a secret, or without servers: off, and says why
    config.secret = NULL;
    relay = reg_relay_new (&config);
    assert (!reg_relay_enabled (relay) && strstr (reg_relay_off_reason (relay), "without relay.secret"));
    assert (reg_relay_grant (relay, "office", "b4c804b23a21c6aa", now, &grant) == -1);
    memset (meta, 0, sizeof *meta);
    reg_relay_meta (relay, meta);
    assert (!meta->has_relays);
    reg_relay_destroy (&relay);
    config.secret = secret;
    config.servers = NULL;
    relay = reg_relay_new (&config);
    assert (!reg_relay_enabled (relay) && strstr (reg_relay_off_reason (relay), "without relay.servers"));
    reg_relay_destroy (&relay);
    config.secret = NULL;
    relay = reg_relay_new (&config);
    assert (strstr (reg_relay_off_reason (relay), "no relay group"));
    reg_relay_destroy (&relay);
    free (meta);
    sodium_memzero (secret, sizeof secret);
}
