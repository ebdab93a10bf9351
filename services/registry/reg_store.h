/*  reg_store: everything the registry knows, in one SQLite file (WAL mode, so
    readers never block the writer and a kill -9 loses at most the transaction in
    flight): networks, join tokens (hashes only), peers with their virtual IPs
    and peer-token hashes, the last virtual IP of every key (so a returning key
    gets its old address back when it is still free), and the registry's own
    X25519 key pair. UNIQUE (network, public key) and UNIQUE (network, vip) make
    duplicate keys or addresses impossible whatever the caller does. All
    statements are prepared once. A database of an older registry is migrated
    when it is opened (PRAGMA user_version counts the migrations applied). */
#ifndef REG_STORE_H_INCLUDED
#define REG_STORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "reg_validate.h"

enum {
    REG_STORE_OK = 0,
    REG_STORE_ERROR = -1,       //  SQLite failed (logged)
    REG_STORE_NOTFOUND = -2,
    REG_STORE_EXISTS = -3,      //  a UNIQUE constraint refused the row
    REG_STORE_BUSY = -4,        //  another connection holds the lock: retry later
};

//  How long a query waits for a lock another connection holds (a backup, an
//  operator's sqlite3) while the registry serves: the single service thread
//  waits that long, so it is short (issue 16, finding 7: with 5 s, a locked
//  database stalled every request, /client/meta included, for 4.8 s). At open
//  (migrations, first key) the wait is REG_STORE_OPEN_BUSY_MS.
#define REG_STORE_BUSY_MS 50
#define REG_STORE_OPEN_BUSY_MS 5000

typedef struct {
    char id [REG_ID_MAX + 1];
    char name [REG_NAME_MAX + 1];
    char cidr [20];
    int64_t heartbeat_s, offline_s, expire_s;
    int64_t created_ms;
} reg_network_t;

typedef struct {
    char id [17];
    char network_id [REG_ID_MAX + 1];
    char public_key [REG_KEY_B64_MAX + 1];
    char name [REG_NAME_MAX + 1];
    uint32_t vip;
    bool online;
    int64_t last_seen_ms, created_ms;
    char endpoints [REG_ENDPOINTS_JSON];
    char candidates [REG_CANDIDATES_JSON];
    char reflexive [46];        //  the address its last registration or heartbeat came from; "" unknown
} reg_peer_t;

typedef struct {
    char id [17];
    char network_id [REG_ID_MAX + 1];
    char description [REG_NAME_MAX + 1];
    int64_t expires_ms, created_ms;
    bool reusable, revoked;
    int64_t uses;
} reg_token_t;

//  A path as stored: who reported it, the path, when it was stored
typedef struct {
    char from [17];
    reg_path_t path;
    int64_t updated_ms;
} reg_path_row_t;

typedef struct _reg_store_t reg_store_t;

//  Opens (creates) the database. NULL with a reason in err.
reg_store_t *reg_store_new (const char *path, char *err, size_t errsize);
void reg_store_destroy (reg_store_t **self_p);

//  The lock wait of every query from now on (ms; REG_STORE_BUSY_MS once the
//  registry serves).
void reg_store_set_busy_timeout (reg_store_t *self, int busy_ms);
//  How many queries found the database locked since it was opened: a caller
//  compares it before and after a request to know an answer may be wrong.
uint64_t reg_store_busy (reg_store_t *self);

//  Transactions around a multi-step change (registration).
int reg_store_begin (reg_store_t *self);
int reg_store_commit (reg_store_t *self);
void reg_store_rollback (reg_store_t *self);

//  The registry key pair: loaded, or created and stored on first start.
int reg_store_keypair (reg_store_t *self, uint8_t public_key [32], uint8_t secret_key [32]);

int reg_store_network_insert (reg_store_t *self, const reg_network_t *network);
int reg_store_network_get (reg_store_t *self, const char *id, reg_network_t *network);
int reg_store_network_delete (reg_store_t *self, const char *id);
typedef void (reg_network_fn) (const reg_network_t *network, void *arg);
int reg_store_network_each (reg_store_t *self, reg_network_fn *fn, void *arg);

int reg_store_token_insert (reg_store_t *self, const reg_token_t *token, const char *hash);
int reg_store_token_revoke (reg_store_t *self, const char *network_id, const char *id);
//  Looks a join token up by hash within a network; fills token (NOTFOUND if none).
int reg_store_token_find (reg_store_t *self, const char *network_id, const char *hash, reg_token_t *token);
int reg_store_token_use (reg_store_t *self, const char *id);
typedef void (reg_token_fn) (const reg_token_t *token, void *arg);
int reg_store_token_each (reg_store_t *self, const char *network_id, reg_token_fn *fn, void *arg);

int reg_store_peer_by_id (reg_store_t *self, const char *network_id, const char *id, reg_peer_t *peer);
int reg_store_peer_by_key (reg_store_t *self, const char *network_id, const char *key, reg_peer_t *peer);
//  network_id NULL: in any network.
int reg_store_peer_by_token (reg_store_t *self, const char *network_id, const char *hash, reg_peer_t *peer);
//  Inserts or (same id) replaces a peer; token_hash NULL keeps the stored one.
int reg_store_peer_put (reg_store_t *self, const reg_peer_t *peer, const char *token_hash);
int reg_store_peer_delete (reg_store_t *self, const char *network_id, const char *id);
typedef void (reg_peer_fn) (const reg_peer_t *peer, void *arg);
int reg_store_peer_each (reg_store_t *self, const char *network_id, reg_peer_fn *fn, void *arg);
size_t reg_store_peer_count (reg_store_t *self, const char *network_id);

//  The paths a peer reported (at most max, by peer id): their count, or an
//  error (< 0).
int reg_store_paths_get (reg_store_t *self, const char *network_id, const char *from, reg_path_t *out, size_t max);
//  Replaces the paths a peer reported (call inside begin/commit).
int reg_store_paths_set (reg_store_t *self, const char *network_id, const char *from,
                         const reg_path_t *paths, size_t count, int64_t now_ms);
//  Every path reported in a network, by reporter then peer.
typedef void (reg_path_fn) (const reg_path_row_t *row, void *arg);
int reg_store_path_each (reg_store_t *self, const char *network_id, reg_path_fn *fn, void *arg);

//  The last address a key had in a network (0 if none) / remember it.
uint32_t reg_store_history_get (reg_store_t *self, const char *network_id, const char *key);
int reg_store_history_set (reg_store_t *self, const char *network_id, const char *key, uint32_t vip);

//  Peers whose lease needs action at now_ms: online ones silent for longer than
//  their network's offline_after, and all silent for longer than expire_after.
//  expired is true for the latter. At most limit per call.
typedef void (reg_stale_fn) (const char *network_id, const char *peer_id, bool expired, void *arg);
int reg_store_stale_each (reg_store_t *self, int64_t now_ms, size_t limit, reg_stale_fn *fn, void *arg);

void reg_store_test (bool verbose);
#endif
