/*  sup_config: bifrostd's part of the configuration file, validated.

    Reads run_dir, log_level, the `supervisor` group (restart policy defaults) and
    the `services` list, checks every value and every key (a typo is an error,
    with file and line), resolves `depends` into a start order (topological, file
    order among equals), and rejects unknown names and cycles. The parsed service
    descriptions are plain read-only structs: they are data handed to the server,
    not objects with behaviour. */
#ifndef SUP_CONFIG_H_INCLUDED
#define SUP_CONFIG_H_INCLUDED

#include "bus_config.h"

#define SUP_SERVICES_MAX    64
#define SUP_INSTANCES_MAX   64
#define SUP_ARGS_MAX        128
#define SUP_ENV_MAX         64
#define SUP_DEPENDS_MAX     16
#define SUP_NAME_MAX        32      //  sup.def: service names are at most 32 bytes

typedef enum { SUP_RESTART_PERMANENT = 0, SUP_RESTART_TRANSIENT, SUP_RESTART_TEMPORARY } sup_restart_type_t;
typedef enum { SUP_NOTIFY_READY = 0, SUP_NOTIFY_NONE } sup_notify_t;
typedef enum { SUP_GIVE_UP_STOP_SERVICE = 0, SUP_GIVE_UP_STOP_ALL } sup_give_up_t;

//  Restart policy and timeouts; the `supervisor` group sets the defaults and a
//  service may override any of them.
typedef struct {
    int intensity;                  //  restarts allowed within period
    int64_t period_ms;
    sup_give_up_t on_give_up;
    int64_t backoff_min_ms;         //  also the minimum spacing of two starts
    int64_t backoff_max_ms;
    int64_t stable_ms;              //  a child READY longer than this restarts at once
    int64_t liveness_timeout_ms;
    int64_t start_timeout_ms;
    int64_t stop_timeout_ms;
} sup_limits_t;

typedef struct {
    const char *name;
    const char *exec;
    const char **args;              //  arg_count strings (NULL-terminated)
    size_t arg_count;
    const char **env;               //  "KEY=VALUE", env_count (NULL-terminated)
    size_t env_count;
    const char **pass_env;          //  names passed from bifrostd's environment
    size_t pass_env_count;
    const char *depends [SUP_DEPENDS_MAX];
    size_t depend_count;
    int instances;
    sup_restart_type_t restart;
    sup_notify_t notify;
    sup_limits_t limits;
    int line;                       //  where it is declared
} sup_service_cfg_t;

typedef struct _sup_config_t sup_config_t;

//  Parses and validates; takes ownership of *config_p. Problems are recorded in
//  the bus_config (see sup_config_errors); the result is always returned.
sup_config_t *sup_config_new (bus_config_t **config_p);
void sup_config_destroy (sup_config_t **self_p);
//  Loads a file, validates, prints every error to errors; NULL if there was any.
sup_config_t *sup_config_load (const char *path, FILE *errors);

//  The underlying config (errors, file name, raw settings).
bus_config_t *sup_config_bus (sup_config_t *self);
size_t sup_config_errors (sup_config_t *self);
const char *sup_config_file (sup_config_t *self);
const char *sup_config_run_dir (sup_config_t *self);       //  NULL when not set
const char *sup_config_log_level (sup_config_t *self); //  NULL when not set
//  The first of the services' uids (bus_identity.h); 0: services stay uid 0.
uint32_t sup_config_user_base (sup_config_t *self);
const sup_limits_t *sup_config_limits (sup_config_t *self);
//  Services in start order (dependencies first).
size_t sup_config_service_count (sup_config_t *self);
const sup_service_cfg_t *sup_config_service (sup_config_t *self, size_t index);
const sup_service_cfg_t *sup_config_find (sup_config_t *self, const char *name);

//  True when two descriptions run the same command (exec, args, env, pass_env, notify):
//  a reload restarts a service only when this is false.
bool sup_service_cfg_same_command (const sup_service_cfg_t *a, const sup_service_cfg_t *b);
//  True when the top-level section `name` (the one named after a service, which
//  that service reads) holds the same in both files, or is absent from both: a
//  reload restarts the service when this is false.
bool sup_config_same_section (sup_config_t *a, sup_config_t *b, const char *name);
const char *sup_restart_name (sup_restart_type_t restart);

//  The annotated default configuration printed by --print-default-config.
const char *sup_config_default_text (void);

void sup_config_test (bool verbose);
#endif
