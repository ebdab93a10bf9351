/*  reg_store: SQLite persistence of the registry (see reg_store.h). Every query
    is prepared once at start; s_query binds, steps and resets, so each public
    function is one call naming its query, its arguments and its row decoder. */
#include "reg_store.h"
#include "bus_log.h"
#include <assert.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

static const char s_schema [] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "PRAGMA temp_store=MEMORY;"           //  no temporary files: the sandbox lets it write only beside the database
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

//  Migrations, in order: migration i brings a database from user_version i to
//  i + 1. The tables above are the first registry's, and every database, new or
//  old, goes through the same steps, so each migration runs in every test that
//  opens a database. Append only: a released migration is never changed.
static const char *const s_migrations [] = {
    //  1: the reflexive address (issue 14: where a registration came from)
    "ALTER TABLE peers ADD COLUMN reflexive TEXT NOT NULL DEFAULT '';",
    //  2: the paths every peer reports in its heartbeats (issue 19), gone with the reporter
    "CREATE TABLE paths (network_id TEXT NOT NULL, from_id TEXT NOT NULL, to_id TEXT NOT NULL,"
    "  path TEXT NOT NULL, via TEXT NOT NULL, rtt_ms INTEGER NOT NULL, updated INTEGER NOT NULL,"
    "  PRIMARY KEY (network_id, from_id, to_id),"
    "  FOREIGN KEY (network_id, from_id) REFERENCES peers (network_id, id) ON DELETE CASCADE);"
    "CREATE INDEX paths_to ON paths (network_id, to_id);",
};
#define S_SCHEMA_VERSION ((int) (sizeof s_migrations / sizeof s_migrations [0]))

#define PEER_COLUMNS "id, network_id, public_key, name, vip, endpoints, candidates, online, last_seen, created, reflexive"

enum {
    Q_BEGIN, Q_COMMIT, Q_ROLLBACK, Q_META_GET, Q_META_PUT,
    Q_NET_INSERT, Q_NET_GET, Q_NET_DELETE, Q_NET_ALL,
    Q_TOK_INSERT, Q_TOK_REVOKE, Q_TOK_FIND, Q_TOK_USE, Q_TOK_ALL,
    Q_PEER_BY_ID, Q_PEER_BY_KEY, Q_PEER_BY_TOKEN, Q_PEER_PUT, Q_PEER_PUT_KEEP, Q_PEER_DELETE,
    Q_PEER_ALL, Q_PEER_COUNT, Q_HIST_GET, Q_HIST_SET, Q_STALE,
    Q_PATH_CLEAR, Q_PATH_INSERT, Q_PATH_FROM, Q_PATH_ALL, Q_PATH_DROP_TO,
    Q_COUNT
};

static const char *s_queries [Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_META_GET] = "SELECT value FROM meta WHERE key = ?1 AND length (value) = 32",
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
    [Q_PEER_PUT] = "INSERT INTO peers (" PEER_COLUMNS ", token_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                   " ON CONFLICT (network_id, id) DO UPDATE SET public_key = ?3, name = ?4, vip = ?5,"
                   " endpoints = ?6, candidates = ?7, online = ?8, last_seen = ?9, reflexive = ?11, token_hash = ?12",
    //  ?10 (created) is bound and not used: both statements take one argument list
    [Q_PEER_PUT_KEEP] = "UPDATE peers SET public_key = ?3, name = ?4, vip = ?5, endpoints = ?6, candidates = ?7,"
                        " online = ?8, last_seen = ?9, reflexive = ?11 WHERE network_id = ?2 AND id = ?1",
    [Q_PEER_DELETE] = "DELETE FROM peers WHERE network_id = ?1 AND id = ?2",
    [Q_PEER_ALL] = "SELECT " PEER_COLUMNS " FROM peers WHERE network_id = ?1 ORDER BY vip",
    [Q_PEER_COUNT] = "SELECT count(*) FROM peers WHERE network_id = ?1",
    [Q_HIST_GET] = "SELECT vip FROM history WHERE network_id = ?1 AND public_key = ?2",
    [Q_HIST_SET] = "INSERT OR REPLACE INTO history (network_id, public_key, vip) VALUES (?1, ?2, ?3)",
    [Q_STALE] = "SELECT p.network_id, p.id, p.last_seen < ?1 - n.expire_s * 1000 FROM peers p"
                " JOIN networks n ON n.id = p.network_id"
                " WHERE (p.online = 1 AND p.last_seen < ?1 - n.offline_s * 1000)"
                "    OR p.last_seen < ?1 - n.expire_s * 1000 LIMIT ?2",
    [Q_PATH_CLEAR] = "DELETE FROM paths WHERE network_id = ?1 AND from_id = ?2",
    [Q_PATH_INSERT] = "INSERT INTO paths (network_id, from_id, to_id, path, via, rtt_ms, updated)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [Q_PATH_FROM] = "SELECT from_id, to_id, path, via, rtt_ms, updated FROM paths"
                    " WHERE network_id = ?1 AND from_id = ?2 ORDER BY to_id",
    [Q_PATH_ALL] = "SELECT from_id, to_id, path, via, rtt_ms, updated FROM paths"
                   " WHERE network_id = ?1 ORDER BY from_id, to_id",
    [Q_PATH_DROP_TO] = "DELETE FROM paths WHERE network_id = ?1 AND to_id = ?2",
};

struct _reg_store_t {
    sqlite3 *db;
    sqlite3_stmt *stmt [Q_COUNT];
    uint64_t busy;              //  queries that found the database locked
    bool locked;                //  the last query did (logged once per episode)
};

static void
s_copy (char *out, size_t size, sqlite3_stmt *stmt, int col)
{
    const char *text = (const char *) sqlite3_column_text (stmt, col);
    snprintf (out, size, "%s", text ? text : "");
}

//  How a row becomes a struct: one entry per column, in the order the query
//  selects them ('t' text of size bytes, 'i' int64_t, 'u' uint32_t, 'b' bool)
typedef struct {
    char kind;
    size_t offset, size;
} s_column_t;

#define S_TEXT(type, m)  { 't', offsetof (type, m), sizeof ((type *) 0)->m }
#define S_I64(type, m)   { 'i', offsetof (type, m), 0 }
#define S_U32(type, m)   { 'u', offsetof (type, m), 0 }
#define S_BOOL(type, m)  { 'b', offsetof (type, m), 0 }

//  Decodes the current row into record; false, so a one-row query stops here
static bool
s_row (sqlite3_stmt *stmt, const s_column_t *columns, void *record)
{
    for (int col = 0; columns [col].kind; col++) {
        uint8_t *at = (uint8_t *) record + columns [col].offset;
        switch (columns [col].kind) {
            case 't': s_copy ((char *) at, columns [col].size, stmt, col); break;
            case 'i': *(int64_t *) at = sqlite3_column_int64 (stmt, col); break;
            case 'u': *(uint32_t *) at = (uint32_t) sqlite3_column_int64 (stmt, col); break;
            default:  *(bool *) at = sqlite3_column_int (stmt, col) != 0; break;
        }
    }
    return false;
}

//  The rows of the three tables, as the queries select them
static const s_column_t s_network_columns [] = {
    S_TEXT (reg_network_t, id), S_TEXT (reg_network_t, name), S_TEXT (reg_network_t, cidr),
    S_I64 (reg_network_t, heartbeat_s), S_I64 (reg_network_t, offline_s), S_I64 (reg_network_t, expire_s),
    S_I64 (reg_network_t, created_ms), { 0, 0, 0 }
};

static const s_column_t s_token_columns [] = {
    S_TEXT (reg_token_t, id), S_TEXT (reg_token_t, network_id), S_TEXT (reg_token_t, description),
    S_I64 (reg_token_t, expires_ms), S_I64 (reg_token_t, created_ms), S_BOOL (reg_token_t, reusable),
    S_BOOL (reg_token_t, revoked), S_I64 (reg_token_t, uses), { 0, 0, 0 }
};

static const s_column_t s_peer_columns [] = {
    S_TEXT (reg_peer_t, id), S_TEXT (reg_peer_t, network_id), S_TEXT (reg_peer_t, public_key),
    S_TEXT (reg_peer_t, name), S_U32 (reg_peer_t, vip), S_TEXT (reg_peer_t, endpoints),
    S_TEXT (reg_peer_t, candidates), S_BOOL (reg_peer_t, online), S_I64 (reg_peer_t, last_seen_ms),
    S_I64 (reg_peer_t, created_ms), S_TEXT (reg_peer_t, reflexive), { 0, 0, 0 }
};

static const s_column_t s_path_columns [] = {
    S_TEXT (reg_path_row_t, from), S_TEXT (reg_path_row_t, path.peer), S_TEXT (reg_path_row_t, path.path),
    S_TEXT (reg_path_row_t, path.via), S_I64 (reg_path_row_t, path.rtt_ms), S_I64 (reg_path_row_t, updated_ms),
    { 0, 0, 0 }
};

//  Called for each row of a query; false stops reading rows.
typedef bool (s_row_fn) (sqlite3_stmt *stmt, void *arg);

//  The bind, step, reset sequence of every query, written once. fmt says what the
//  arguments are, one letter each, bound to ?1, ?2, ...: 't' a string (NULL binds
//  NULL), 'i' an int64_t, 'b' a blob (pointer, then int size). Each row goes to
//  row (may be NULL: the statement returns no rows or they are ignored) until it
//  returns false. *rows (may be NULL) counts the rows read. Returns REG_STORE_OK,
//  REG_STORE_EXISTS on a constraint, or REG_STORE_ERROR (logged). s_query and
//  s_one are its variadic faces.
static int
s_vquery (reg_store_t *self, int q, s_row_fn *row, void *arg, size_t *rows, const char *fmt, va_list args)
{
    sqlite3_stmt *stmt = self->stmt [q];
    for (int i = 1; *fmt; fmt++, i++) {
        if (*fmt == 't')
            sqlite3_bind_text (stmt, i, va_arg (args, const char *), -1, SQLITE_STATIC);
        else
        if (*fmt == 'i')
            sqlite3_bind_int64 (stmt, i, va_arg (args, int64_t));
        else {
            assert (*fmt == 'b');
            const void *blob = va_arg (args, const void *);
            sqlite3_bind_blob (stmt, i, blob, va_arg (args, int), SQLITE_TRANSIENT);
        }
    }
    size_t count = 0;
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        count++;
        if (!row || !row (stmt, arg))
            break;
    }
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    if (rows)
        *rows = count;
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
        self->busy++;
        if (!self->locked)
            bus_warn ("database locked by another connection: answering 503 until it is free");
        self->locked = true;
        return REG_STORE_BUSY;
    }
    if (self->locked && rc == SQLITE_DONE && !sqlite3_stmt_readonly (stmt)) {
        bus_info ("database free again");
        self->locked = false;
    }
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return REG_STORE_OK;
    if (rc == SQLITE_CONSTRAINT)
        return REG_STORE_EXISTS;
    bus_error ("sqlite: %s", sqlite3_errmsg (self->db));
    return REG_STORE_ERROR;
}

static int
s_query (reg_store_t *self, int q, s_row_fn *row, void *arg, size_t *rows, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    int rc = s_vquery (self, q, row, arg, rows, fmt, args);
    va_end (args);
    return rc;
}

//  A query that reads at most one row into record, decoded by columns:
//  REG_STORE_NOTFOUND when there is none
typedef struct {
    const s_column_t *columns;
    void *record;
} s_record_t;

static bool
s_record_row (sqlite3_stmt *stmt, void *arg)
{
    s_record_t *record = (s_record_t *) arg;
    return s_row (stmt, record->columns, record->record);
}

static int
s_one (reg_store_t *self, int q, const s_column_t *columns, void *record, const char *fmt, ...)
{
    size_t rows = 0;
    s_record_t target = { columns, record };
    va_list args;
    va_start (args, fmt);
    int rc = s_vquery (self, q, s_record_row, &target, &rows, fmt, args);
    va_end (args);
    return rc == REG_STORE_OK && rows == 0 ? REG_STORE_NOTFOUND : rc;
}

//  A statement that changes rows: REG_STORE_NOTFOUND when it changed none
static int
s_changed (reg_store_t *self, int rc)
{
    return rc == REG_STORE_OK && sqlite3_changes (self->db) == 0 ? REG_STORE_NOTFOUND : rc;
}

//  The first column of the first row, as an int (PRAGMA user_version)
static int
s_exec_int_row (void *arg, int columns, char **values, char **names)
{
    *(int *) arg = columns > 0 && values [0] ? atoi (values [0]) : 0;
    return 0;
}

//  Brings the database to S_SCHEMA_VERSION, one migration per transaction
//  (IMMEDIATE: a second registry opening the same file waits, then sees the
//  version the first one wrote). A database from a newer registry is left as
//  it is: its extra columns are not ours to read. 0, or -1 with err.
static int
s_migrate (reg_store_t *self, const char *path, char *err, size_t errsize)
{
    for (;;) {
        char *msg = NULL, bump [64];
        int version = 0;
        int rc = sqlite3_exec (self->db, "BEGIN IMMEDIATE", NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec (self->db, "PRAGMA user_version", s_exec_int_row, &version, &msg);
        bool done = rc == SQLITE_OK && version >= S_SCHEMA_VERSION;
        snprintf (bump, sizeof bump, "PRAGMA user_version = %d", version + 1);
        if (rc == SQLITE_OK && !done)
            rc = sqlite3_exec (self->db, s_migrations [version], NULL, NULL, &msg);
        if (rc == SQLITE_OK && !done)
            rc = sqlite3_exec (self->db, bump, NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec (self->db, "COMMIT", NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            snprintf (err, errsize, "cannot migrate database %s to schema version %d: %s", path, version + 1,
                      msg ? msg : sqlite3_errmsg (self->db));
            sqlite3_free (msg);
            sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
        if (done)
            return 0;
        bus_info ("database %s: now at schema version %d", path, version + 1);
    }
}

//  The database holds the registry's X25519 secret (table meta): whoever reads
//  it can forge key proofs for any peer (issue 16, finding 4). So the file is
//  created 0600 before SQLite opens it (SQLite gives -wal and -shm the mode of
//  the database), and a database, -wal or -shm file that group or others can
//  access is refused, as crypto refuses its key file. 0, or -1 with err.
static int
s_private (const char *path, char *err, size_t errsize)
{
    int fd = open (path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0)
        close (fd);
    else
    if (errno != EEXIST) {
        snprintf (err, errsize, "cannot create database %s: %s", path, strerror (errno));
        return -1;
    }
    const char *suffixes [] = { "", "-wal", "-shm" };
    for (int i = 0; i < 3; i++) {
        char name [600];
        struct stat st;
        snprintf (name, sizeof name, "%s%s", path, suffixes [i]);
        if (lstat (name, &st) != 0)
            continue;           //  -wal and -shm exist only while it is open
        if (!S_ISREG (st.st_mode)) {
            snprintf (err, errsize, "database file %s is not a regular file", name);
            return -1;
        }
        if (st.st_mode & 077) {
            snprintf (err, errsize, "database file %s has mode %04o: group/others can access it and it holds "
                      "the registry's private key; refusing to use it (chmod 600 %s, and consider the "
                      "registry key compromised: docs/registry-api.md, \"Files\")",
                      name, (unsigned) (st.st_mode & 07777), name);
            return -1;
        }
    }
    return 0;
}

reg_store_t *
reg_store_new (const char *path, char *err, size_t errsize)
{
    if (s_private (path, err, errsize))
        return NULL;
    reg_store_t *self = (reg_store_t *) calloc (1, sizeof *self);
    assert (self);
    if (sqlite3_open_v2 (path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL)
        != SQLITE_OK) {
        snprintf (err, errsize, "cannot open database %s: %s", path, sqlite3_errmsg (self->db));
        reg_store_destroy (&self);
        return NULL;
    }
    sqlite3_busy_timeout (self->db, REG_STORE_OPEN_BUSY_MS);
    char *msg = NULL;
    if (sqlite3_exec (self->db, s_schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf (err, errsize, "cannot initialise database %s: %s", path, msg ? msg : "?");
        sqlite3_free (msg);
        reg_store_destroy (&self);
        return NULL;
    }
    if (s_migrate (self, path, err, errsize)) {
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

void reg_store_set_busy_timeout (reg_store_t *self, int busy_ms) { sqlite3_busy_timeout (self->db, busy_ms); }
uint64_t reg_store_busy (reg_store_t *self) { return self->busy; }

int reg_store_begin (reg_store_t *self) { return s_query (self, Q_BEGIN, NULL, NULL, NULL, ""); }
int reg_store_commit (reg_store_t *self) { return s_query (self, Q_COMMIT, NULL, NULL, NULL, ""); }
void reg_store_rollback (reg_store_t *self) { s_query (self, Q_ROLLBACK, NULL, NULL, NULL, ""); }

//  A 32-byte blob in the first column (the query selects only those)
static bool
s_key_row (sqlite3_stmt *stmt, void *arg)
{
    memcpy (arg, sqlite3_column_blob (stmt, 0), 32);
    return false;
}

int
reg_store_keypair (reg_store_t *self, uint8_t public_key [32], uint8_t secret_key [32])
{
    //  A missing (or damaged) key is made anew
    size_t rows = 0;
    s_query (self, Q_META_GET, s_key_row, secret_key, &rows, "t", "x25519_secret");
    if (rows == 1)
        return crypto_scalarmult_base (public_key, secret_key) == 0 ? REG_STORE_OK : REG_STORE_ERROR;
    crypto_box_keypair (public_key, secret_key);
    return s_query (self, Q_META_PUT, NULL, NULL, NULL, "tb", "x25519_secret", secret_key, 32);
}

//  --- networks

int
reg_store_network_insert (reg_store_t *self, const reg_network_t *network)
{
    return s_query (self, Q_NET_INSERT, NULL, NULL, NULL, "tttiiii", network->id, network->name, network->cidr,
                    (int64_t) network->heartbeat_s, (int64_t) network->offline_s, (int64_t) network->expire_s,
                    (int64_t) network->created_ms);
}

int
reg_store_network_get (reg_store_t *self, const char *id, reg_network_t *network)
{
    return s_one (self, Q_NET_GET, s_network_columns, network, "t", id);
}

int
reg_store_network_delete (reg_store_t *self, const char *id)
{
    return s_changed (self, s_query (self, Q_NET_DELETE, NULL, NULL, NULL, "t", id));
}


//  A listing: every row decoded, then handed to the caller's function
typedef struct {
    reg_network_fn *network_fn;
    reg_token_fn *token_fn;
    reg_peer_fn *peer_fn;
    reg_path_fn *path_fn;
    void *arg;
    reg_peer_t *peer;           //  peer rows are big: one buffer for all
} s_each_t;

static bool
s_each_row (sqlite3_stmt *stmt, void *arg)
{
    s_each_t *each = (s_each_t *) arg;
    if (each->network_fn) {
        reg_network_t network;
        s_row (stmt, s_network_columns, &network);
        each->network_fn (&network, each->arg);
    }
    else
    if (each->token_fn) {
        reg_token_t token;
        s_row (stmt, s_token_columns, &token);
        each->token_fn (&token, each->arg);
    }
    else
    if (each->path_fn) {
        reg_path_row_t row;
        s_row (stmt, s_path_columns, &row);
        each->path_fn (&row, each->arg);
    }
    else {
        s_row (stmt, s_peer_columns, each->peer);
        each->peer_fn (each->peer, each->arg);
    }
    return true;
}

int
reg_store_network_each (reg_store_t *self, reg_network_fn *fn, void *arg)
{
    s_each_t each = { .network_fn = fn, .arg = arg };
    s_query (self, Q_NET_ALL, s_each_row, &each, NULL, "");
    return REG_STORE_OK;
}

//  --- tokens

int
reg_store_token_insert (reg_store_t *self, const reg_token_t *token, const char *hash)
{
    return s_query (self, Q_TOK_INSERT, NULL, NULL, NULL, "ttttiii", token->id, token->network_id, hash,
                    token->description, (int64_t) token->expires_ms, (int64_t) token->reusable,
                    (int64_t) token->created_ms);
}

int
reg_store_token_revoke (reg_store_t *self, const char *network_id, const char *id)
{
    return s_changed (self, s_query (self, Q_TOK_REVOKE, NULL, NULL, NULL, "tt", network_id, id));
}

int
reg_store_token_find (reg_store_t *self, const char *network_id, const char *hash, reg_token_t *token)
{
    return s_one (self, Q_TOK_FIND, s_token_columns, token, "tt", network_id, hash);
}

int
reg_store_token_use (reg_store_t *self, const char *id)
{
    return s_query (self, Q_TOK_USE, NULL, NULL, NULL, "t", id);
}

int
reg_store_token_each (reg_store_t *self, const char *network_id, reg_token_fn *fn, void *arg)
{
    s_each_t each = { .token_fn = fn, .arg = arg };
    s_query (self, Q_TOK_ALL, s_each_row, &each, NULL, "t", network_id);
    return REG_STORE_OK;
}

//  --- peers

int reg_store_peer_by_id (reg_store_t *self, const char *network_id, const char *id, reg_peer_t *peer)
{ return s_one (self, Q_PEER_BY_ID, s_peer_columns, peer, "tt", network_id, id); }
int reg_store_peer_by_key (reg_store_t *self, const char *network_id, const char *key, reg_peer_t *peer)
{ return s_one (self, Q_PEER_BY_KEY, s_peer_columns, peer, "tt", network_id, key); }
int reg_store_peer_by_token (reg_store_t *self, const char *network_id, const char *hash, reg_peer_t *peer)
{ return s_one (self, Q_PEER_BY_TOKEN, s_peer_columns, peer, "tt", network_id, hash); }

int
reg_store_peer_put (reg_store_t *self, const reg_peer_t *peer, const char *token_hash)
{
    //  Without a token hash, the last one is not bound (Q_PEER_PUT_KEEP has 11)
    return s_query (self, token_hash ? Q_PEER_PUT : Q_PEER_PUT_KEEP, NULL, NULL, NULL,
                    token_hash ? "ttttittiiitt" : "ttttittiiit",
                    peer->id, peer->network_id, peer->public_key, peer->name, (int64_t) peer->vip,
                    peer->endpoints, peer->candidates, (int64_t) peer->online, (int64_t) peer->last_seen_ms,
                    (int64_t) peer->created_ms, peer->reflexive, token_hash);
}

int
reg_store_peer_delete (reg_store_t *self, const char *network_id, const char *id)
{
    //  Its own reports go with it (ON DELETE CASCADE); the others' paths to it too
    int rc = s_changed (self, s_query (self, Q_PEER_DELETE, NULL, NULL, NULL, "tt", network_id, id));
    if (rc == REG_STORE_OK)
        rc = s_query (self, Q_PATH_DROP_TO, NULL, NULL, NULL, "tt", network_id, id);
    return rc;
}

//  --- paths

typedef struct {
    reg_path_t *out;
    size_t count, max;
} s_paths_t;

static bool
s_path_row (sqlite3_stmt *stmt, void *arg)
{
    s_paths_t *paths = (s_paths_t *) arg;
    if (paths->count >= paths->max)
        return false;
    reg_path_row_t row;
    s_row (stmt, s_path_columns, &row);
    paths->out [paths->count++] = row.path;
    return true;
}

int
reg_store_paths_get (reg_store_t *self, const char *network_id, const char *from, reg_path_t *out, size_t max)
{
    s_paths_t paths = { out, 0, max };
    int rc = s_query (self, Q_PATH_FROM, s_path_row, &paths, NULL, "tt", network_id, from);
    return rc == REG_STORE_OK ? (int) paths.count : rc;
}

int
reg_store_paths_set (reg_store_t *self, const char *network_id, const char *from,
                     const reg_path_t *paths, size_t count, int64_t now_ms)
{
    int rc = s_query (self, Q_PATH_CLEAR, NULL, NULL, NULL, "tt", network_id, from);
    for (size_t i = 0; i < count && rc == REG_STORE_OK; i++)
        rc = s_query (self, Q_PATH_INSERT, NULL, NULL, NULL, "tttttii", network_id, from, paths [i].peer,
                      paths [i].path, paths [i].via, paths [i].rtt_ms, now_ms);
    return rc;
}

int
reg_store_path_each (reg_store_t *self, const char *network_id, reg_path_fn *fn, void *arg)
{
    s_each_t each = { .path_fn = fn, .arg = arg };
    return s_query (self, Q_PATH_ALL, s_each_row, &each, NULL, "t", network_id);
}

int
reg_store_peer_each (reg_store_t *self, const char *network_id, reg_peer_fn *fn, void *arg)
{
    reg_peer_t *peer = (reg_peer_t *) malloc (sizeof *peer);
    assert (peer);
    s_each_t each = { .peer_fn = fn, .arg = arg, .peer = peer };
    s_query (self, Q_PEER_ALL, s_each_row, &each, NULL, "t", network_id);
    free (peer);
    return REG_STORE_OK;
}

//  The first column of a row as an int64_t
static bool
s_int_row (sqlite3_stmt *stmt, void *arg)
{
    *(int64_t *) arg = sqlite3_column_int64 (stmt, 0);
    return false;
}

size_t
reg_store_peer_count (reg_store_t *self, const char *network_id)
{
    int64_t count = 0;
    s_query (self, Q_PEER_COUNT, s_int_row, &count, NULL, "t", network_id);
    return (size_t) count;
}

uint32_t
reg_store_history_get (reg_store_t *self, const char *network_id, const char *key)
{
    int64_t vip = 0;
    s_query (self, Q_HIST_GET, s_int_row, &vip, NULL, "tt", network_id, key);
    return (uint32_t) vip;
}

int
reg_store_history_set (reg_store_t *self, const char *network_id, const char *key, uint32_t vip)
{
    return s_query (self, Q_HIST_SET, NULL, NULL, NULL, "tti", network_id, key, (int64_t) vip);
}

typedef struct {
    struct { char network [REG_ID_MAX + 1]; char id [17]; bool expired; } *list;
    size_t count, limit;
} s_stale_t;

static bool
s_stale_row (sqlite3_stmt *stmt, void *arg)
{
    s_stale_t *stale = (s_stale_t *) arg;
    if (stale->count >= stale->limit)
        return false;
    s_copy (stale->list [stale->count].network, sizeof stale->list [0].network, stmt, 0);
    s_copy (stale->list [stale->count].id, sizeof stale->list [0].id, stmt, 1);
    stale->list [stale->count].expired = sqlite3_column_int (stmt, 2) != 0;
    stale->count++;
    return stale->count < stale->limit;
}

int
reg_store_stale_each (reg_store_t *self, int64_t now_ms, size_t limit, reg_stale_fn *fn, void *arg)
{
    //  Collect first, call after: fn may change the table we are reading
    s_stale_t stale = { NULL, 0, limit };
    stale.list = calloc (limit ? limit : 1, sizeof *stale.list);
    assert (stale.list);
    s_query (self, Q_STALE, s_stale_row, &stale, NULL, "ii", now_ms, (int64_t) limit);
    for (size_t i = 0; i < stale.count; i++)
        fn (stale.list [i].network, stale.list [i].id, stale.list [i].expired, arg);
    free (stale.list);
    return (int) stale.count;
}

//  ---------------------------------------------------------------------------
static void
s_count_path (const reg_path_row_t *row, void *arg)
{
    assert (*row->from && *row->path.peer && row->updated_ms >= 5000);
    (*(int *) arg)++;
}

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
    //  Update keeping the token hash; the reflexive address is stored either way
    peer->last_seen_ms = 100000;
    snprintf (peer->reflexive, sizeof peer->reflexive, "2001:db8::7");
    assert (reg_store_peer_put (store, peer, NULL) == 0);
    assert (reg_store_peer_by_token (store, "n1", "ph2", other) == 0 && other->last_seen_ms == 100000);
    assert (strcmp (other->reflexive, "2001:db8::7") == 0);
    snprintf (peer->reflexive, sizeof peer->reflexive, "203.0.113.9");
    assert (reg_store_peer_put (store, peer, "ph2") == 0);
    assert (reg_store_peer_by_id (store, "n1", "p2", other) == 0 && strcmp (other->reflexive, "203.0.113.9") == 0);
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

    //  Paths: a report replaces the last one; the reporter's go with it, and
    //  so do the others' paths to a peer that is removed
    reg_path_t paths [3] = { { "p2", "direct", "", 12 }, { "p9", "peer", "p2", -1 } }, back [4];
    assert (reg_store_paths_set (store, "n1", "p1", paths, 2, 5000) == 0);
    assert (reg_store_paths_get (store, "n1", "p1", back, 4) == 2);
    assert (strcmp (back [0].peer, "p2") == 0 && back [0].rtt_ms == 12 && strcmp (back [1].via, "p2") == 0);
    assert (reg_store_paths_get (store, "n1", "p1", back, 1) == 1);
    paths [0].rtt_ms = 40;
    assert (reg_store_paths_set (store, "n1", "p1", paths, 1, 6000) == 0);
    assert (reg_store_paths_get (store, "n1", "p1", back, 4) == 1 && back [0].rtt_ms == 40);
    paths [2] = (reg_path_t) { "p1", "relay", "r1", 80 };
    assert (reg_store_paths_set (store, "n1", "p2", &paths [2], 1, 7000) == 0);
    assert (reg_store_paths_set (store, "n1", "nobody", paths, 1, 7000) == REG_STORE_EXISTS);    //  no such reporter
    int rows = 0;
    assert (reg_store_path_each (store, "n1", s_count_path, &rows) == 0 && rows == 2);
    assert (reg_store_begin (store) == 0);
    assert (reg_store_peer_delete (store, "n1", "p1") == 0);
    rows = 0;
    reg_store_path_each (store, "n1", s_count_path, &rows);
    assert (rows == 0);                 //  p1's report, and p2's path to p1
    reg_store_rollback (store);
    assert (reg_store_paths_get (store, "n1", "p2", back, 4) == 1 && back [0].rtt_ms == 80);

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
    unlink (path);
    char side [300];
    snprintf (side, sizeof side, "%s-wal", path);
    unlink (side);
    snprintf (side, sizeof side, "%s-shm", path);
    unlink (side);

    //  Private (issue 16, finding 4: the registry's X25519 secret is in table
    //  meta): a new database and its -wal and -shm files are 0600 whatever the
    //  umask, and one that group or others can read is refused with a clear error
    mode_t umask_was = umask (022);
    store = reg_store_new (path, err, sizeof err);
    umask (umask_was);
    assert (store);
    assert (reg_store_keypair (store, pk, sk) == 0);
    const char *suffixes [] = { "", "-wal", "-shm" };
    for (int i = 0; i < 3; i++) {
        struct stat st;
        snprintf (side, sizeof side, "%s%s", path, suffixes [i]);
        assert (stat (side, &st) == 0 && (st.st_mode & 0777) == 0600);
    }
    reg_store_destroy (&store);
    for (int i = 0; i < 3; i++) {
        snprintf (side, sizeof side, "%s%s", path, suffixes [i]);
        //  (the last close removes -wal and -shm: an empty one stands in)
        int side_fd = open (side, O_WRONLY | O_CREAT, 0600);
        assert (side_fd >= 0);
        close (side_fd);
        assert (chmod (side, 0640) == 0);
        assert (reg_store_new (path, err, sizeof err) == NULL);
        assert (strstr (err, side) && strstr (err, "0640") && strstr (err, "chmod 600"));
        assert (chmod (side, 0600) == 0);
    }
    store = reg_store_new (path, err, sizeof err);
    assert (store);
    reg_store_destroy (&store);
    for (int i = 0; i < 3; i++) {
        snprintf (side, sizeof side, "%s%s", path, suffixes [i]);
        unlink (side);
    }

    //  An unusable path is a clear error
    assert (reg_store_new ("/nonexistent-dir/x.db", err, sizeof err) == NULL);
    assert (strstr (err, "/nonexistent-dir/x.db"));

    //  A database of the first registry (its tables, user_version 0, a peer
    //  without a reflexive address) opens, is migrated once, and keeps its rows
    snprintf (path, sizeof path, "/tmp/reg_store_test.XXXXXX");
    fd = mkstemp (path);
    assert (fd >= 0);
    close (fd);
    sqlite3 *old = NULL;
    assert (sqlite3_open (path, &old) == SQLITE_OK);
    assert (sqlite3_exec (old, s_schema, NULL, NULL, NULL) == SQLITE_OK);
    assert (sqlite3_exec (old, "INSERT INTO networks VALUES ('n1', 'office', '10.100.0.0/16', 30, 90, 300, 1);"
                          "INSERT INTO peers (id, network_id, public_key, name, vip, endpoints, candidates,"
                          " token_hash, online, last_seen, created) VALUES ('p1', 'n1', 'KEY1', 'a', 167772161,"
                          " '[]', '[]', 'ph1', 1, 1000, 1);", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close (old);
    for (int pass = 0; pass < 2; pass++) {
        store = reg_store_new (path, err, sizeof err);
        assert (store);
        memset (other, 0, sizeof *other);
        assert (reg_store_peer_by_token (store, "n1", "ph1", other) == 0);
        assert (strcmp (other->id, "p1") == 0 && strcmp (other->reflexive, pass ? "192.0.2.44" : "") == 0);
        snprintf (other->reflexive, sizeof other->reflexive, "192.0.2.44");
        assert (reg_store_peer_put (store, other, NULL) == 0);
        int version = -1;
        assert (sqlite3_exec (store->db, "PRAGMA user_version", s_exec_int_row, &version, NULL) == SQLITE_OK);
        assert (version == S_SCHEMA_VERSION);
        reg_store_destroy (&store);
    }
    free (other);
    unlink (path);
    snprintf (side, sizeof side, "%s-wal", path);
    unlink (side);
    snprintf (side, sizeof side, "%s-shm", path);
    unlink (side);
}
