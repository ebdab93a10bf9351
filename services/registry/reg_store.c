/*  reg_store: SQLite persistence of the registry (see reg_store.h). */
#include "reg_store.h"
#include "bus_log.h"
#include <assert.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char s_schema [] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "PRAGMA foreign_keys=ON;"
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS networks (id TEXT PRIMARY KEY, name TEXT NOT NULL, cidr TEXT NOT NULL,"
    "  heartbeat_s INTEGER NOT NULL, offline_s INTEGER NOT NULL, expire_s INTEGER NOT NULL,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY,"
    "  network_id TEXT NOT NULL REFERENCES networks (id) ON DELETE CASCADE,"
    "  hash TEXT NOT NULL UNIQUE, description TEXT NOT NULL, expires INTEGER NOT NULL,"
    "  reusable INTEGER NOT NULL, uses INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS peers (id TEXT NOT NULL,"
    "  network_id TEXT NOT NULL REFERENCES networks (id) ON DELETE CASCADE,"
    "  public_key TEXT NOT NULL, name TEXT NOT NULL, vip INTEGER NOT NULL,"
    "  endpoints TEXT NOT NULL, candidates TEXT NOT NULL, token_hash TEXT NOT NULL,"
    "  online INTEGER NOT NULL, last_seen INTEGER NOT NULL, created INTEGER NOT NULL,"
    "  PRIMARY KEY (network_id, id), UNIQUE (network_id, public_key), UNIQUE (network_id, vip));"
    "CREATE INDEX IF NOT EXISTS peers_last_seen ON peers (last_seen);"
    "CREATE INDEX IF NOT EXISTS peers_token ON peers (token_hash);"
    "CREATE TABLE IF NOT EXISTS history (network_id TEXT NOT NULL REFERENCES networks (id) ON DELETE CASCADE,"
    "  public_key TEXT NOT NULL, vip INTEGER NOT NULL, PRIMARY KEY (network_id, public_key));";

#define PEER_COLUMNS "id, network_id, public_key, name, vip, endpoints, candidates, online, last_seen, created"

enum {
    Q_BEGIN, Q_COMMIT, Q_ROLLBACK, Q_META_GET, Q_META_PUT,
    Q_NET_INSERT, Q_NET_GET, Q_NET_DELETE, Q_NET_ALL,
    Q_TOK_INSERT, Q_TOK_REVOKE, Q_TOK_FIND, Q_TOK_USE, Q_TOK_ALL,
    Q_PEER_BY_ID, Q_PEER_BY_KEY, Q_PEER_BY_TOKEN, Q_PEER_PUT, Q_PEER_PUT_KEEP, Q_PEER_DELETE,
    Q_PEER_ALL, Q_PEER_COUNT, Q_HIST_GET, Q_HIST_SET, Q_STALE,
    Q_COUNT
};

static const char *s_queries [Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [Q_META_PUT] = "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
    [Q_NET_INSERT] = "INSERT INTO networks (id, name, cidr, heartbeat_s, offline_s, expire_s, created)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [Q_NET_GET] = "SELECT id, name, cidr, heartbeat_s, offline_s, expire_s, created FROM networks WHERE id = ?1",
    [Q_NET_DELETE] = "DELETE FROM networks WHERE id = ?1",
    [Q_NET_ALL] = "SELECT id, name, cidr, heartbeat_s, offline_s, expire_s, created FROM networks ORDER BY created, id",
    [Q_TOK_INSERT] = "INSERT INTO tokens (id, network_id, hash, description, expires, reusable, created)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [Q_TOK_REVOKE] = "UPDATE tokens SET revoked = 1 WHERE network_id = ?1 AND id = ?2",
    [Q_TOK_FIND] = "SELECT id, network_id, description, expires, created, reusable, revoked, uses FROM tokens"
                   " WHERE network_id = ?1 AND hash = ?2",
    [Q_TOK_USE] = "UPDATE tokens SET uses = uses + 1 WHERE id = ?1",
    [Q_TOK_ALL] = "SELECT id, network_id, description, expires, created, reusable, revoked, uses FROM tokens"
                  " WHERE network_id = ?1 ORDER BY created, id",
    [Q_PEER_BY_ID] = "SELECT " PEER_COLUMNS " FROM peers WHERE network_id = ?1 AND id = ?2",
    [Q_PEER_BY_KEY] = "SELECT " PEER_COLUMNS " FROM peers WHERE network_id = ?1 AND public_key = ?2",
    [Q_PEER_BY_TOKEN] = "SELECT " PEER_COLUMNS " FROM peers WHERE token_hash = ?2 AND (?1 IS NULL OR network_id = ?1)",
    [Q_PEER_PUT] = "INSERT INTO peers (" PEER_COLUMNS ", token_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                   " ON CONFLICT (network_id, id) DO UPDATE SET public_key = ?3, name = ?4, vip = ?5,"
                   " endpoints = ?6, candidates = ?7, online = ?8, last_seen = ?9, token_hash = ?11",
    [Q_PEER_PUT_KEEP] = "UPDATE peers SET public_key = ?3, name = ?4, vip = ?5, endpoints = ?6, candidates = ?7,"
                        " online = ?8, last_seen = ?9 WHERE network_id = ?2 AND id = ?1",
    [Q_PEER_DELETE] = "DELETE FROM peers WHERE network_id = ?1 AND id = ?2",
    [Q_PEER_ALL] = "SELECT " PEER_COLUMNS " FROM peers WHERE network_id = ?1 ORDER BY vip",
    [Q_PEER_COUNT] = "SELECT count(*) FROM peers WHERE network_id = ?1",
    [Q_HIST_GET] = "SELECT vip FROM history WHERE network_id = ?1 AND public_key = ?2",
    [Q_HIST_SET] = "INSERT OR REPLACE INTO history (network_id, public_key, vip) VALUES (?1, ?2, ?3)",
    [Q_STALE] = "SELECT p.network_id, p.id, p.last_seen < ?1 - n.expire_s * 1000 FROM peers p"
                " JOIN networks n ON n.id = p.network_id"
                " WHERE (p.online = 1 AND p.last_seen < ?1 - n.offline_s * 1000)"
                "    OR p.last_seen < ?1 - n.expire_s * 1000 LIMIT ?2",
};

struct _reg_store_t {
    sqlite3 *db;
    sqlite3_stmt *stmt [Q_COUNT];
};

static void
s_copy (char *out, size_t size, sqlite3_stmt *stmt, int col)
{
    const char *text = (const char *) sqlite3_column_text (stmt, col);
    snprintf (out, size, "%s", text ? text : "");
}

//  Runs a statement that returns no rows (or ignores them). Maps constraint errors.
static int
s_exec (reg_store_t *self, sqlite3_stmt *stmt)
{
    int rc = sqlite3_step (stmt);
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return REG_STORE_OK;
    if (rc == SQLITE_CONSTRAINT)
        return REG_STORE_EXISTS;
    bus_error ("sqlite: %s", sqlite3_errmsg (self->db));
    return REG_STORE_ERROR;
}

static sqlite3_stmt *
s_stmt (reg_store_t *self, int q)
{
    return self->stmt [q];
}

reg_store_t *
reg_store_new (const char *path, char *err, size_t errsize)
{
    reg_store_t *self = (reg_store_t *) calloc (1, sizeof *self);
    assert (self);
    if (sqlite3_open_v2 (path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL)
        != SQLITE_OK) {
        snprintf (err, errsize, "cannot open database %s: %s", path, sqlite3_errmsg (self->db));
        reg_store_destroy (&self);
        return NULL;
    }
    sqlite3_busy_timeout (self->db, 5000);
    char *msg = NULL;
    if (sqlite3_exec (self->db, s_schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf (err, errsize, "cannot initialise database %s: %s", path, msg ? msg : "?");
        sqlite3_free (msg);
        reg_store_destroy (&self);
        return NULL;
    }
    for (int q = 0; q < Q_COUNT; q++)
        if (sqlite3_prepare_v2 (self->db, s_queries [q], -1, &self->stmt [q], NULL) != SQLITE_OK) {
            snprintf (err, errsize, "cannot prepare query %d: %s", q, sqlite3_errmsg (self->db));
            reg_store_destroy (&self);
            return NULL;
        }
    return self;
}

void
reg_store_destroy (reg_store_t **self_p)
{
    reg_store_t *self = *self_p;
    if (!self)
        return;
    for (int q = 0; q < Q_COUNT; q++)
        sqlite3_finalize (self->stmt [q]);
    sqlite3_close (self->db);
    free (self);
    *self_p = NULL;
}

int reg_store_begin (reg_store_t *self) { return s_exec (self, s_stmt (self, Q_BEGIN)); }
int reg_store_commit (reg_store_t *self) { return s_exec (self, s_stmt (self, Q_COMMIT)); }
void reg_store_rollback (reg_store_t *self) { s_exec (self, s_stmt (self, Q_ROLLBACK)); }

int
reg_store_keypair (reg_store_t *self, uint8_t public_key [32], uint8_t secret_key [32])
{
    sqlite3_stmt *get = s_stmt (self, Q_META_GET);
    sqlite3_bind_text (get, 1, "x25519_secret", -1, SQLITE_STATIC);
    int rc = REG_STORE_NOTFOUND;
    if (sqlite3_step (get) == SQLITE_ROW && sqlite3_column_bytes (get, 0) == 32) {
        memcpy (secret_key, sqlite3_column_blob (get, 0), 32);
        rc = REG_STORE_OK;
    }
    sqlite3_reset (get);
    sqlite3_clear_bindings (get);
    if (rc == REG_STORE_OK)
        return crypto_scalarmult_base (public_key, secret_key) == 0 ? REG_STORE_OK : REG_STORE_ERROR;
    crypto_box_keypair (public_key, secret_key);
    sqlite3_stmt *put = s_stmt (self, Q_META_PUT);
    sqlite3_bind_text (put, 1, "x25519_secret", -1, SQLITE_STATIC);
    sqlite3_bind_blob (put, 2, secret_key, 32, SQLITE_TRANSIENT);
    return s_exec (self, put);
}

//  --- networks

static void
s_network_row (sqlite3_stmt *stmt, reg_network_t *network)
{
    memset (network, 0, sizeof *network);
    s_copy (network->id, sizeof network->id, stmt, 0);
    s_copy (network->name, sizeof network->name, stmt, 1);
    s_copy (network->cidr, sizeof network->cidr, stmt, 2);
    network->heartbeat_s = sqlite3_column_int64 (stmt, 3);
    network->offline_s = sqlite3_column_int64 (stmt, 4);
    network->expire_s = sqlite3_column_int64 (stmt, 5);
    network->created_ms = sqlite3_column_int64 (stmt, 6);
}

int
reg_store_network_insert (reg_store_t *self, const reg_network_t *network)
{
    sqlite3_stmt *stmt = s_stmt (self, Q_NET_INSERT);
    sqlite3_bind_text (stmt, 1, network->id, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, network->name, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 3, network->cidr, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 4, network->heartbeat_s);
    sqlite3_bind_int64 (stmt, 5, network->offline_s);
    sqlite3_bind_int64 (stmt, 6, network->expire_s);
    sqlite3_bind_int64 (stmt, 7, network->created_ms);
    return s_exec (self, stmt);
}

int
reg_store_network_get (reg_store_t *self, const char *id, reg_network_t *network)
{
    sqlite3_stmt *stmt = s_stmt (self, Q_NET_GET);
    sqlite3_bind_text (stmt, 1, id, -1, SQLITE_STATIC);
    int rc = REG_STORE_NOTFOUND;
    if (sqlite3_step (stmt) == SQLITE_ROW) {
        s_network_row (stmt, network);
        rc = REG_STORE_OK;
    }
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return rc;
}

int
reg_store_network_delete (reg_store_t *self, const char *id)
{
    sqlite3_stmt *stmt = s_stmt (self, Q_NET_DELETE);
    sqlite3_bind_text (stmt, 1, id, -1, SQLITE_STATIC);
    int rc = s_exec (self, stmt);
    if (rc == REG_STORE_OK && sqlite3_changes (self->db) == 0)
        rc = REG_STORE_NOTFOUND;
    return rc;
}

int
reg_store_network_each (reg_store_t *self, reg_network_fn *fn, void *arg)
{
    sqlite3_stmt *stmt = s_stmt (self, Q_NET_ALL);
    reg_network_t network;
    while (sqlite3_step (stmt) == SQLITE_ROW) {
        s_network_row (stmt, &network);
        fn (&network, arg);
    }
    sqlite3_reset (stmt);
    return REG_STORE_OK;
}

//  --- tokens

static void
s_token_row (sqlite3_stmt *stmt, reg_token_t *token)
{
    memset (token, 0, sizeof *token);
    s_copy (token->id, sizeof token->id, stmt, 0);
    s_copy (token->network_id, sizeof token->network_id, stmt, 1);
    s_copy (token->description, sizeof token->description, stmt, 2);
    token->expires_ms = sqlite3_column_int64 (stmt, 3);
    token->created_ms = sqlite3_column_int64 (stmt, 4);
    token->reusable = sqlite3_column_int (stmt, 5) != 0;
    token->revoked = sqlite3_column_int (stmt, 6) != 0;
    token->uses = sqlite3_column_int64 (stmt, 7);
}

int
reg_store_token_insert (reg_store_t *self, const reg_token_t *token, const char *hash)
{
    sqlite3_stmt *stmt = s_stmt (self, Q_TOK_INSERT);
    sqlite3_bind_text (stmt, 1, token->id, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, token->network_id, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 3, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 4, token->description, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 5, token->expires_ms);
    sqlite3_bind_int (stmt, 6, token->reusable);
    sqlite3_bind_int64 (stmt, 7, token->created_ms);
    return s_exec (self, stmt);
}

int
reg_store_token_revoke (reg_store_t *self, const char *network_id, const char *id)
{
    sqlite3_stmt *stmt = s_stmt (self, Q_TOK_REVOKE);
    sqlite3_bind_text (stmt, 1, network_id, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, id, -1, SQLITE_STATIC);
    int rc = s_exec (self, stmt);
    if (rc == REG_STORE_OK && sqlite3_changes (self->db) == 0)
        rc = REG_STORE_NOTFOUND;
    return rc;
}

int
reg_store_token_find (reg_store_t *self, const char *network_id, const char *hash, reg_token_t *token)
{
    sqlite3_stmt *stmt = s_stmt (self, Q_TOK_FIND);
    sqlite3_bind_text (stmt, 1, network_id, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, hash, -1, SQLITE_STATIC);
    int rc = REG_STORE_NOTFOUND;
    if (sqlite3_step (stmt) == SQLITE_ROW) {
        s_token_row (stmt, token);
        rc = REG_STORE_OK;
    }
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return rc;
}

int
reg_store_token_use (reg_store_t *self, const char *id)
{
    sqlite3_stmt *stmt = s_stmt (self, Q_TOK_USE);
    sqlite3_bind_text (stmt, 1, id, -1, SQLITE_STATIC);
    return s_exec (self, stmt);
}

int
reg_store_token_each (reg_store_t *self, const char *network_id, reg_token_fn *fn, void *arg)
{
    sqlite3_stmt *stmt = s_stmt (self, Q_TOK_ALL);
    sqlite3_bind_text (stmt, 1, network_id, -1, SQLITE_STATIC);
    reg_token_t token;
    while (sqlite3_step (stmt) == SQLITE_ROW) {
        s_token_row (stmt, &token);
        fn (&token, arg);
    }
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return REG_STORE_OK;
}

//  --- peers

static void
s_peer_row (sqlite3_stmt *stmt, reg_peer_t *peer)
{
    s_copy (peer->id, sizeof peer->id, stmt, 0);
    s_copy (peer->network_id, sizeof peer->network_id, stmt, 1);
    s_copy (peer->public_key, sizeof peer->public_key, stmt, 2);
    s_copy (peer->name, sizeof peer->name, stmt, 3);
    peer->vip = (uint32_t) sqlite3_column_int64 (stmt, 4);
    s_copy (peer->endpoints, sizeof peer->endpoints, stmt, 5);
    s_copy (peer->candidates, sizeof peer->candidates, stmt, 6);
    peer->online = sqlite3_column_int (stmt, 7) != 0;
    peer->last_seen_ms = sqlite3_column_int64 (stmt, 8);
    peer->created_ms = sqlite3_column_int64 (stmt, 9);
}

static int
s_peer_one (reg_store_t *self, int q, const char *network_id, const char *value, reg_peer_t *peer)
{
    sqlite3_stmt *stmt = s_stmt (self, q);
    sqlite3_bind_text (stmt, 1, network_id, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, value, -1, SQLITE_STATIC);
    int rc = REG_STORE_NOTFOUND;
    if (sqlite3_step (stmt) == SQLITE_ROW) {
        s_peer_row (stmt, peer);
        rc = REG_STORE_OK;
    }
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return rc;
}

int reg_store_peer_by_id (reg_store_t *self, const char *network_id, const char *id, reg_peer_t *peer)
{ return s_peer_one (self, Q_PEER_BY_ID, network_id, id, peer); }
int reg_store_peer_by_key (reg_store_t *self, const char *network_id, const char *key, reg_peer_t *peer)
{ return s_peer_one (self, Q_PEER_BY_KEY, network_id, key, peer); }
int reg_store_peer_by_token (reg_store_t *self, const char *network_id, const char *hash, reg_peer_t *peer)
{ return s_peer_one (self, Q_PEER_BY_TOKEN, network_id, hash, peer); }

int
reg_store_peer_put (reg_store_t *self, const reg_peer_t *peer, const char *token_hash)
{
    sqlite3_stmt *stmt = s_stmt (self, token_hash ? Q_PEER_PUT : Q_PEER_PUT_KEEP);
    sqlite3_bind_text (stmt, 1, peer->id, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, peer->network_id, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 3, peer->public_key, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 4, peer->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 5, peer->vip);
    sqlite3_bind_text (stmt, 6, peer->endpoints, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 7, peer->candidates, -1, SQLITE_STATIC);
    sqlite3_bind_int (stmt, 8, peer->online);
    sqlite3_bind_int64 (stmt, 9, peer->last_seen_ms);
    if (token_hash) {
        sqlite3_bind_int64 (stmt, 10, peer->created_ms);
        sqlite3_bind_text (stmt, 11, token_hash, -1, SQLITE_STATIC);
    }
    return s_exec (self, stmt);
}

int
reg_store_peer_delete (reg_store_t *self, const char *network_id, const char *id)
{
    sqlite3_stmt *stmt = s_stmt (self, Q_PEER_DELETE);
    sqlite3_bind_text (stmt, 1, network_id, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, id, -1, SQLITE_STATIC);
    int rc = s_exec (self, stmt);
    if (rc == REG_STORE_OK && sqlite3_changes (self->db) == 0)
        rc = REG_STORE_NOTFOUND;
    return rc;
}

int
reg_store_peer_each (reg_store_t *self, const char *network_id, reg_peer_fn *fn, void *arg)
{
    sqlite3_stmt *stmt = s_stmt (self, Q_PEER_ALL);
    sqlite3_bind_text (stmt, 1, network_id, -1, SQLITE_STATIC);
    reg_peer_t *peer = (reg_peer_t *) malloc (sizeof *peer);
    assert (peer);
    while (sqlite3_step (stmt) == SQLITE_ROW) {
        s_peer_row (stmt, peer);
        fn (peer, arg);
    }
    free (peer);
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return REG_STORE_OK;
}

size_t
reg_store_peer_count (reg_store_t *self, const char *network_id)
{
    sqlite3_stmt *stmt = s_stmt (self, Q_PEER_COUNT);
    sqlite3_bind_text (stmt, 1, network_id, -1, SQLITE_STATIC);
    size_t count = 0;
    if (sqlite3_step (stmt) == SQLITE_ROW)
        count = (size_t) sqlite3_column_int64 (stmt, 0);
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return count;
}

uint32_t
reg_store_history_get (reg_store_t *self, const char *network_id, const char *key)
{
    sqlite3_stmt *stmt = s_stmt (self, Q_HIST_GET);
    sqlite3_bind_text (stmt, 1, network_id, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, key, -1, SQLITE_STATIC);
    uint32_t vip = 0;
    if (sqlite3_step (stmt) == SQLITE_ROW)
        vip = (uint32_t) sqlite3_column_int64 (stmt, 0);
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return vip;
}

int
reg_store_history_set (reg_store_t *self, const char *network_id, const char *key, uint32_t vip)
{
    sqlite3_stmt *stmt = s_stmt (self, Q_HIST_SET);
    sqlite3_bind_text (stmt, 1, network_id, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 3, vip);
    return s_exec (self, stmt);
}

int
reg_store_stale_each (reg_store_t *self, int64_t now_ms, size_t limit, reg_stale_fn *fn, void *arg)
{
    //  Collect first, call after: fn may change the table we are reading
    sqlite3_stmt *stmt = s_stmt (self, Q_STALE);
    sqlite3_bind_int64 (stmt, 1, now_ms);
    sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) limit);
    typedef struct { char network [REG_ID_MAX + 1]; char id [17]; bool expired; } stale_t;
    stale_t *list = (stale_t *) calloc (limit ? limit : 1, sizeof *list);
    assert (list);
    size_t count = 0;
    while (count < limit && sqlite3_step (stmt) == SQLITE_ROW) {
        s_copy (list [count].network, sizeof list [count].network, stmt, 0);
        s_copy (list [count].id, sizeof list [count].id, stmt, 1);
        list [count].expired = sqlite3_column_int (stmt, 2) != 0;
        count++;
    }
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    for (size_t i = 0; i < count; i++)
        fn (list [i].network, list [i].id, list [i].expired, arg);
    free (list);
    return (int) count;
}

//  ---------------------------------------------------------------------------
static void
s_count_network (const reg_network_t *network, void *arg)
{
    (*(int *) arg)++;
}

static void
s_count_peer (const reg_peer_t *peer, void *arg)
{
    (*(int *) arg)++;
}

static void
s_collect_stale (const char *network_id, const char *peer_id, bool expired, void *arg)
{
    int *counts = (int *) arg;
    counts [expired ? 1 : 0]++;
}

void
reg_store_test (bool verbose)
{
    char path [] = "/tmp/reg_store_test.XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    close (fd);
    char err [200];
    reg_store_t *store = reg_store_new (path, err, sizeof err);
    assert (store);
    uint8_t pk [32], sk [32], pk2 [32], sk2 [32];
    assert (reg_store_keypair (store, pk, sk) == 0);

    reg_network_t net = { .id = "n1", .name = "office", .cidr = "10.100.0.0/16",
                          .heartbeat_s = 30, .offline_s = 90, .expire_s = 300, .created_ms = 1 };
    assert (reg_store_network_insert (store, &net) == REG_STORE_OK);
    assert (reg_store_network_insert (store, &net) == REG_STORE_EXISTS);
    reg_network_t got;
    assert (reg_store_network_get (store, "n1", &got) == 0 && strcmp (got.cidr, "10.100.0.0/16") == 0);
    assert (reg_store_network_get (store, "nx", &got) == REG_STORE_NOTFOUND);

    reg_token_t token = { .id = "t1", .network_id = "n1", .expires_ms = 5000, .created_ms = 1 };
    assert (reg_store_token_insert (store, &token, "hash1") == 0);
    reg_token_t found;
    assert (reg_store_token_find (store, "n1", "hash1", &found) == 0 && strcmp (found.id, "t1") == 0);
    assert (reg_store_token_find (store, "n2", "hash1", &found) == REG_STORE_NOTFOUND);
    assert (reg_store_token_use (store, "t1") == 0);
    assert (reg_store_token_revoke (store, "n1", "t1") == 0);
    assert (reg_store_token_revoke (store, "n1", "nope") == REG_STORE_NOTFOUND);
    assert (reg_store_token_find (store, "n1", "hash1", &found) == 0 && found.revoked && found.uses == 1);

    reg_peer_t *peer = (reg_peer_t *) calloc (1, sizeof *peer);
    snprintf (peer->id, sizeof peer->id, "p1");
    snprintf (peer->network_id, sizeof peer->network_id, "n1");
    snprintf (peer->public_key, sizeof peer->public_key, "KEY1");
    snprintf (peer->name, sizeof peer->name, "a");
    snprintf (peer->endpoints, sizeof peer->endpoints, "[]");
    snprintf (peer->candidates, sizeof peer->candidates, "[]");
    peer->vip = 0x0A640001;
    peer->online = true;
    peer->last_seen_ms = 1000;
    assert (reg_store_peer_put (store, peer, "ph1") == 0);
    //  Same vip, other key: refused by UNIQUE
    snprintf (peer->id, sizeof peer->id, "p2");
    snprintf (peer->public_key, sizeof peer->public_key, "KEY2");
    assert (reg_store_peer_put (store, peer, "ph2") == REG_STORE_EXISTS);
    peer->vip = 0x0A640002;
    assert (reg_store_peer_put (store, peer, "ph2") == 0);
    reg_peer_t *other = (reg_peer_t *) calloc (1, sizeof *other);
    assert (reg_store_peer_by_token (store, "n1", "ph2", other) == 0 && strcmp (other->id, "p2") == 0);
    assert (reg_store_peer_by_key (store, "n1", "KEY1", other) == 0 && other->vip == 0x0A640001);
    //  Update keeping the token hash
    peer->last_seen_ms = 100000;
    assert (reg_store_peer_put (store, peer, NULL) == 0);
    assert (reg_store_peer_by_token (store, "n1", "ph2", other) == 0 && other->last_seen_ms == 100000);
    int count = 0;
    reg_store_peer_each (store, "n1", s_count_peer, &count);
    assert (count == 2 && reg_store_peer_count (store, "n1") == 2);

    //  Stale: p1 last seen at 1000; offline after 90 s, expire after 300 s
    int stale [2] = { 0, 0 };
    assert (reg_store_stale_each (store, 50000, 100, s_collect_stale, stale) == 0);
    assert (reg_store_stale_each (store, 100000, 100, s_collect_stale, stale) == 1 && stale [0] == 1);
    assert (reg_store_stale_each (store, 400000, 100, s_collect_stale, stale) == 2 && stale [1] == 1);

    assert (reg_store_history_get (store, "n1", "KEY1") == 0);
    assert (reg_store_history_set (store, "n1", "KEY1", 0x0A640001) == 0);
    assert (reg_store_history_get (store, "n1", "KEY1") == 0x0A640001);

    //  Transactions roll back
    assert (reg_store_begin (store) == 0);
    assert (reg_store_peer_delete (store, "n1", "p1") == 0);
    reg_store_rollback (store);
    assert (reg_store_peer_count (store, "n1") == 2);
    reg_store_destroy (&store);
    assert (store == NULL);

    //  Reopen: everything is there, same key pair; deleting a network cascades
    store = reg_store_new (path, err, sizeof err);
    assert (store);
    assert (reg_store_keypair (store, pk2, sk2) == 0);
    assert (memcmp (pk, pk2, 32) == 0 && memcmp (sk, sk2, 32) == 0);
    count = 0;
    reg_store_network_each (store, s_count_network, &count);
    assert (count == 1);
    assert (reg_store_network_delete (store, "n1") == 0);
    assert (reg_store_network_delete (store, "n1") == REG_STORE_NOTFOUND);
    assert (reg_store_peer_count (store, "n1") == 0);
    assert (reg_store_token_find (store, "n1", "hash1", &found) == REG_STORE_NOTFOUND);
    reg_store_destroy (&store);
    free (peer);
    free (other);
    unlink (path);
    char side [300];
    snprintf (side, sizeof side, "%s-wal", path);
    unlink (side);
    snprintf (side, sizeof side, "%s-shm", path);
    unlink (side);

    //  An unusable path is a clear error
    assert (reg_store_new ("/nonexistent-dir/x.db", err, sizeof err) == NULL);
    assert (strstr (err, "/nonexistent-dir/x.db"));
}
