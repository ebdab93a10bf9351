/*  bus_config_schema: every config key declared once (schemas/config/ (one .def per group)) and
    expanded here, the way bus_schema.h expands the bus messages.

    A group declaration yields:
    - a typed struct, bus_cfg_<group>_t, with one field per key (a string is a
      `const char *` owned by the bus_config it was read from, ${VAR} expanded;
      an integer an int64_t; a duration an int64_t `<key>_ms`; a bool a bool; a
      choice its text, one of the declared values; a list its raw libconfig setting). Removing a key from a
      .def removes the field, so every reader of it stops compiling;
    - a descriptor, bus_cfg_<group>_group, with the keys, their type, default,
      range, unit, flags and one line of doc, from which the generic reader
      (bus_cfg_read), `bifrostd --print-default-config` and the generated
      docs/config-reference.md are made.

    The generic reader checks what the schema knows (unknown keys, types,
    ranges), with the messages and the file:line of bus_config. What only a
    service knows (an endpoint parses, a key is base64) it checks in a
    callback run right after each key is read, so errors keep their order. */
#ifndef BUS_CONFIG_SCHEMA_H_INCLUDED
#define BUS_CONFIG_SCHEMA_H_INCLUDED

#include "bus_config.h"

typedef enum {
    BUS_CFG_T_STRING, BUS_CFG_T_INT, BUS_CFG_T_BOOL, BUS_CFG_T_DURATION,
    BUS_CFG_T_CHOICE, BUS_CFG_T_LIST
} bus_cfg_type_t;

//  Key flags
#define BUS_CFG_PER_PEER      0x01u     //  a peer may override it (resolved by node_peers)
#define BUS_CFG_OVERRIDE      0x02u     //  a per-peer override of a node-wide key
#define BUS_CFG_SECRET        0x04u     //  usually "${VAR}", so it stays out of files
#define BUS_CFG_REQUIRED      0x08u     //  no default; the owner says when it is missing
#define BUS_CFG_OWNER_CHECKS  0x10u     //  the reader checks the type only; the owner
                                        //  checks the value (range, choices) with its own message

typedef struct {
    const char *name;
    bus_cfg_type_t type;
    int64_t def;                //  int, bool, duration (ms)
    const char *def_str;        //  string, choice; NULL: none
    int64_t min, max;           //  int, duration (ms)
    const char *const *choices; //  choice: the values, NULL-terminated
    const char *values;         //  list: what an element is
    const char *unit;           //  int: what it counts
    unsigned flags;
    const char *doc;
} bus_cfg_key_t;

typedef struct {
    const char *id;             //  "connection"
    const char *path;           //  "connection"; "" for the top level; the list for a list group
    bool list;                  //  a group per element of the list `path`
    const char *title;          //  heading in the reference
    const char *not_group;      //  message when the setting is not a group
    const bus_cfg_key_t *keys;
    size_t key_count;
    const char *const *names;   //  the key names, NULL-terminated (bus_config_check_keys)
    size_t size;                //  of the typed struct
    void *(*field) (void *out, size_t index);   //  the field of key index in out
} bus_cfg_group_t;

//  A choice's values in a .def: BUS_CFG_VALUES ("tun", "tap")
#define BUS_CFG_VALUES(...) ((const char *const []) { __VA_ARGS__, NULL })

//  The typed structs
#define BUS_CFG_GROUP(id, path, title, not_group, keys) typedef struct { keys } bus_cfg_##id##_t;
#define BUS_CFG_LIST_GROUP BUS_CFG_GROUP
#define BUS_CFG_STRING(name, def, flags, doc)                   const char *name;
#define BUS_CFG_INT(name, def, min, max, unit, flags, doc)      int64_t name;
#define BUS_CFG_BOOL(name, def, flags, doc)                     bool name;
#define BUS_CFG_DURATION(name, def, min, max, flags, doc)       int64_t name##_ms;
#define BUS_CFG_CHOICE(name, def, values, flags, doc)           const char *name;
#define BUS_CFG_LIST(name, what, flags, doc)                    config_setting_t *name;
#include "../schemas/config/all.def"
#include "bus_config_schema_undef.inc"

//  The descriptors, and each group's defaults as a typed value
//  (bus_cfg_connection_defaults.keepalive_interval_ms), for code that needs a
//  default without a file
#define BUS_CFG_GROUP(id, path, title, not_group, keys) extern const bus_cfg_group_t bus_cfg_##id##_group; \
                                                        extern const bus_cfg_##id##_t bus_cfg_##id##_defaults;
#define BUS_CFG_LIST_GROUP BUS_CFG_GROUP
#include "../schemas/config/all.def"
#include "bus_config_schema_undef.inc"

//  Every group, in declaration order, and their count.
extern const bus_cfg_group_t *const bus_cfg_groups [];
extern const size_t bus_cfg_group_count;

//  Called right after a key was read into out: setting is the key's setting
//  (NULL when absent and out holds the default); refused says the schema
//  refused its value (an error was recorded, out holds the default). The
//  owner's own checks go here.
typedef void (bus_cfg_check_fn) (bus_config_t *config, config_setting_t *group,
                                 config_setting_t *setting, const bus_cfg_key_t *key,
                                 bool refused, void *out, void *arg);

//  Read flags
#define BUS_CFG_CHECK_KEYS  0x01u       //  the caller owns the group: unknown keys and a
                                        //  setting that is not a group are errors

//  Fills out (group->size bytes) with the defaults.
void bus_cfg_defaults (const bus_cfg_group_t *group, void *out);
//  Reads group's keys into out (defaults first) from setting, or, when setting
//  is NULL, from group->path in config (config NULL: defaults only). With only
//  (NULL-terminated names) the other keys are neither read nor checked: a
//  service reading a key of a group another service owns. check (may be NULL)
//  runs after each key. Returns 1 when the group is there, 0 when absent, -1
//  when it is not a group (recorded as an error only with BUS_CFG_CHECK_KEYS).
int bus_cfg_read (bus_config_t *config, const bus_cfg_group_t *group, config_setting_t *setting,
                  void *out, unsigned flags, const char *const *only,
                  bus_cfg_check_fn *check, void *arg);
//  The index of text among a choice key's values, or -1.
int bus_cfg_choice_index (const bus_cfg_key_t *key, const char *text);
//  The key called name of group, or NULL.
const bus_cfg_key_t *bus_cfg_key (const bus_cfg_group_t *group, const char *name);
//  Writes a key's default as it would be written in a file ("25s", "\"tun\"",
//  "true"); "" when it has none.
void bus_cfg_default_text (const bus_cfg_key_t *key, char *buf, size_t size);
//  Writes the groups (NULL-terminated ids, or NULL for all) as an annotated
//  libconfig file with every default set (a list's element, whose required
//  keys have none, commented out): `bifrostd --print-default-config`.
void bus_cfg_print_default (FILE *out, const char *const *ids);
//  Writes the reference tables (Markdown) of every group.
void bus_cfg_print_reference (FILE *out);
//  Writes the man page bifrost.cfg(5) (roff): every group and key, with the
//  package version in its title line.
void bus_cfg_print_man (FILE *out, const char *version);

void bus_config_schema_test (bool verbose);
#endif
