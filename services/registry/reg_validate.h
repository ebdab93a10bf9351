/*  reg_validate: strict validation of every JSON request body the registry
    accepts. These functions are the only code that touches untrusted bytes
    before the database, so they are what fuzz_reg_json feeds. The bodies are
    declared once in schemas/rest.def (the same declarations discovery encodes
    its requests from) and decoded by librest: parsed with jansson (depth-limited,
    duplicate keys refused), every member type-, size- and format-checked, unknown
    members refused (a typo never passes silently). Here the result becomes the
    fixed-size C struct the registry stores. */
#ifndef REG_VALIDATE_H_INCLUDED
#define REG_VALIDATE_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REG_ID_MAX 32           //  network and token ids: [a-z0-9][a-z0-9-]*
#define REG_NAME_MAX 64         //  network and peer names
#define REG_KEY_B64_MAX 44      //  base64 of 32 bytes
#define REG_ENDPOINTS_MAX 16
#define REG_ENDPOINT_LEN 64
#define REG_CANDIDATES_MAX 16
#define REG_CANDIDATE_LEN 200
#define REG_ENDPOINTS_JSON 1536 //  serialized endpoints always fit
#define REG_CANDIDATES_JSON 4096
#define REG_SIGNAL_MAX 8192     //  serialized signal data
#define REG_NONCE_SIZE 32

typedef struct {
    char id [REG_ID_MAX + 1];           //  "" = generate one
    char name [REG_NAME_MAX + 1];
    char cidr [20];                     //  "" = default
    int64_t heartbeat_s, offline_s, expire_s;   //  0 = default
} reg_network_req_t;

typedef struct {
    uint8_t public_key [32];
    char public_key_b64 [REG_KEY_B64_MAX + 1];
    char name [REG_NAME_MAX + 1];
    uint8_t nonce [REG_NONCE_SIZE];
    char nonce_b64 [REG_KEY_B64_MAX + 1];
    uint8_t proof [32];
    bool has_endpoints, has_candidates;
    char endpoints [REG_ENDPOINTS_JSON];        //  compact JSON array, "[]" when absent
    char candidates [REG_CANDIDATES_JSON];
} reg_peer_req_t;

typedef struct {
    int64_t ttl_s;              //  default 24 h
    bool reusable;              //  default false: single use
    char description [REG_NAME_MAX + 1];
} reg_token_req_t;

#define REG_PATHS_MAX 64         //  path entries in one heartbeat (schemas/rest.def, rest_heartbeat_req)

//  How a node reaches another peer (a heartbeat's `paths`, the store's rows)
typedef struct {
    char peer [17];             //  the peer it leads to, 16 hex digits
    char path [9];              //  "direct", "relay", "turn" or "peer"
    char via [49];              //  "peer": the first peer crossed; "relay": its name; else ""
    int64_t rtt_ms;             //  -1 when not measured
} reg_path_t;

typedef struct {
    bool has_endpoints, has_candidates, has_paths;
    char endpoints [REG_ENDPOINTS_JSON];
    char candidates [REG_CANDIDATES_JSON];
    uint32_t paths_count;
    reg_path_t paths [REG_PATHS_MAX];
} reg_heartbeat_req_t;

typedef struct {
    char type [33];
    char data [REG_SIGNAL_MAX + 1];     //  compact JSON of "data"
} reg_signal_req_t;

//  Each returns 0, or -1 with a message for the client in err.
int reg_validate_network (const void *body, size_t size, reg_network_req_t *out, char *err, size_t errsize);
int reg_validate_peer (const void *body, size_t size, reg_peer_req_t *out, char *err, size_t errsize);
int reg_validate_token (const void *body, size_t size, reg_token_req_t *out, char *err, size_t errsize);
int reg_validate_heartbeat (const void *body, size_t size, reg_heartbeat_req_t *out, char *err, size_t errsize);
int reg_validate_signal (const void *body, size_t size, reg_signal_req_t *out, char *err, size_t errsize);

//  True when a path report differs enough from the stored one to store it and
//  publish it: another set of peers, another path or via, or an RTT that moved
//  by more than 20 % and 5 ms (a report every heartbeat must not write the
//  database and wake every page for jitter).
bool reg_paths_changed (const reg_path_t *old, size_t old_count, const reg_path_t *now, size_t now_count);

//  Names: 1..REG_NAME_MAX of letters, digits, '-', '_', '.', starting with a letter or digit.
bool reg_valid_name (const char *text);
//  Ids: 1..REG_ID_MAX of lower-case letters, digits and '-', starting with a letter or digit.
bool reg_valid_id (const char *text);
//  Decodes standard base64 of exactly size bytes. 0 or -1.
int reg_base64_exact (const char *text, uint8_t *out, size_t size);

void reg_validate_test (bool verbose);
#endif
