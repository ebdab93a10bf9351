/*  sup_config: bifrostd's configuration, read in one pass so that every error is
    reported at once and nothing starts while any remains. */
#include "sup_config.h"
#include "bus_envelope.h"
#include "bus_config_schema.h"
#include "bus_log.h"
#include "bus_rundir.h"

#include <assert.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define streq(a, b) (strcmp ((a), (b)) == 0)

struct _sup_config_t {
    bus_config_t *config;
    const char *run_dir;
    const char *log_level;
    uint32_t user_base;
    sup_limits_t limits;
    sup_service_cfg_t services [SUP_SERVICES_MAX];     //  in start order
    size_t service_count;
};

//  Top-level sections bifrostd accepts that no schema group declares yet (the
//  ones declared in schemas/config/ are accepted through the schema). A
//  service that reads a new top-level section declares it there, so a typo at
//  the top level is still caught. A section named after a configured service
//  is always accepted.
static const char *const s_top_extra [] = {
    "network_cidr", "join_token",
    "stun", "nat", "router",
    "bridge", "bus", "tap", NULL
};
//  Set by bifrostd for every child; a service's env may not override them.
static const char *const s_reserved_env [] = {
    "BIFROST_READY_FD", "BIFROST_RUN_DIR", "BIFROST_SERVICE", "BIFROST_INSTANCE",
    "BIFROST_CONFIG", "BIFROST_LOG_LEVEL", "BIFROST_RUN_AS", NULL
};

#define S_DAY_MS    (24LL * 3600 * 1000)

const char *
sup_restart_name (sup_restart_type_t restart)
{
    return bus_cfg_key (&bus_cfg_service_group, "restart")->choices [restart];
}

//  The restart policy of a checked group (supervisor or a service): the
//  policy keys have the same names in both (BUS_CFG_SUP_POLICY)
#define S_LIMITS(out, in) do { \
    (out)->intensity = (int) (in).intensity; \
    (out)->period_ms = (in).period_ms; \
    (out)->on_give_up = (sup_give_up_t) bus_cfg_choice_index ( \
        bus_cfg_key (&bus_cfg_supervisor_group, "on_give_up"), (in).on_give_up); \
    (out)->backoff_min_ms = (in).backoff_min_ms; \
    (out)->backoff_max_ms = (in).backoff_max_ms; \
    (out)->stable_ms = (in).stable_after_ms; \
    (out)->liveness_timeout_ms = (in).liveness_timeout_ms; \
    (out)->start_timeout_ms = (in).start_timeout_ms; \
    (out)->stop_timeout_ms = (in).stop_timeout_ms; \
} while (0)

//  backoff_min may not exceed backoff_max, in the supervisor group or a service
static void
s_check_limits (bus_config_t *config, config_setting_t *group, const sup_limits_t *limits)
{
    if (limits->backoff_min_ms > limits->backoff_max_ms) {
        config_setting_t *where = group ? config_setting_get_member (group, "backoff_min") : NULL;
        bus_config_error (config, where ? where : group,
                          "backoff_min must not be larger than backoff_max");
    }
}

//  Reads a list or array of strings into a malloc'd NULL-terminated array.
static const char **
s_read_strings (bus_config_t *config, config_setting_t *group, const char *key, size_t max, size_t *count)
{
    *count = 0;
    const char **out = calloc (max + 1, sizeof (char *));
    assert (out);
    config_setting_t *list = config_setting_get_member (group, key);
    if (!list)
        return out;
    int type = config_setting_type (list);
    if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
        bus_config_error (config, list, "expected a list of strings, e.g. [\"a\", \"b\"]");
        return out;
    }
    int length = config_setting_length (list);
    if ((size_t) length > max) {
        bus_config_error (config, list, "expected at most %zu strings, got %d", max, length);
        return out;
    }
    for (int i = 0; i < length; i++) {
        const char *text = bus_config_value_string (config, config_setting_get_elem (list, i), NULL);
        if (text)
            out [(*count)++] = text;
    }
    return out;
}

//  bifrostd's checks of a service's keys, as the schema reads each: names,
//  lists of strings, the environment; a policy key that is absent or refused
//  takes the supervisor group's value.
typedef struct {
    sup_config_t *self;
    sup_service_cfg_t *svc;
    const bus_cfg_supervisor_t *supervisor;
} s_reading_t;

static void
s_check_service_key (bus_config_t *config, config_setting_t *group, config_setting_t *setting,
                     const bus_cfg_key_t *key, bool refused, void *out, void *arg)
{
    s_reading_t *reading = (s_reading_t *) arg;
    bus_cfg_service_t *in = (bus_cfg_service_t *) out;
    sup_service_cfg_t *svc = reading->svc;
    if (streq (key->name, "name")) {
        svc->name = in->name;
        if (!svc->name)
            bus_config_error (config, group, "missing name (a service needs name = \"...\")");
        else
        if (!bus_name_valid (svc->name) || strlen (svc->name) > SUP_NAME_MAX || strchr (svc->name, '.')) {
            bus_config_error (config, setting, "expected a name of 1 to %d letters, digits, '_' or '-'", SUP_NAME_MAX);
            svc->name = NULL;
        }
    }
    else
    if (streq (key->name, "exec")) {
        svc->exec = in->exec;
        if (!svc->exec)
            bus_config_error (config, group, "missing exec (the program to run)");
        else
        if (!*svc->exec) {
            bus_config_error (config, setting, "expected a program name or path");
            svc->exec = NULL;
        }
    }
    else
    if (streq (key->name, "args"))
        svc->args = s_read_strings (config, group, "args", SUP_ARGS_MAX, &svc->arg_count);
    else
    if (streq (key->name, "env")) {
        svc->env = s_read_strings (config, group, "env", SUP_ENV_MAX, &svc->env_count);
        for (size_t i = 0; i < svc->env_count; i++) {
            const char *entry = svc->env [i];
            const char *eq = strchr (entry, '=');
            bool valid = eq && eq > entry && (isalpha ((unsigned char) *entry) || *entry == '_');
            for (const char *p = entry; valid && p < eq; p++)
                valid = isalnum ((unsigned char) *p) || *p == '_';
            if (!valid) {
                bus_config_error (config, setting, "expected \"NAME=value\" entries, got \"%s\"", entry);
                continue;
            }
            for (int r = 0; s_reserved_env [r]; r++)
                if (strncmp (entry, s_reserved_env [r], eq - entry) == 0
                &&  strlen (s_reserved_env [r]) == (size_t) (eq - entry))
                    bus_config_error (config, setting, "%s is set by bifrostd and cannot be overridden",
                                      s_reserved_env [r]);
        }
    }
    else
    if (streq (key->name, "pass_env")) {
        svc->pass_env = s_read_strings (config, group, "pass_env", SUP_ENV_MAX, &svc->pass_env_count);
        for (size_t i = 0; i < svc->pass_env_count; i++) {
            const char *name = svc->pass_env [i];
            bool valid = isalpha ((unsigned char) *name) || *name == '_';
            for (const char *p = name; valid && *p; p++)
                valid = isalnum ((unsigned char) *p) || *p == '_';
            if (!valid)
                bus_config_error (config, setting, "expected variable names (letters, digits, _), got \"%s\"", name);
            for (int r = 0; valid && s_reserved_env [r]; r++)
                if (streq (name, s_reserved_env [r]))
                    bus_config_error (config, setting, "%s is set by bifrostd and cannot be passed", name);
        }
    }
    else
    if (streq (key->name, "depends")) {
        size_t depend_count = 0;
        const char **depends = s_read_strings (config, group, "depends", SUP_DEPENDS_MAX, &depend_count);
        for (size_t i = 0; i < depend_count; i++)
            svc->depends [i] = depends [i];
        svc->depend_count = depend_count;
        free (depends);
    }
    else {
        //  A policy key: the supervisor group's value unless set here (and valid)
        const bus_cfg_key_t *policy = bus_cfg_key (&bus_cfg_supervisor_group, key->name);
        if (policy && (!setting || refused)) {
            size_t size = key->type == BUS_CFG_T_CHOICE ? sizeof (const char *) : sizeof (int64_t);
            memcpy (bus_cfg_service_group.field (in, (size_t) (key - bus_cfg_service_group.keys)),
                    bus_cfg_supervisor_group.field ((void *) reading->supervisor,
                                                    (size_t) (policy - bus_cfg_supervisor_group.keys)),
                    size);
        }
    }
}

//  One service; false when the list element is not a group
static bool
s_read_service (sup_config_t *self, const bus_cfg_supervisor_t *supervisor, config_setting_t *group,
                sup_service_cfg_t *svc)
{
    bus_config_t *config = self->config;
    svc->line = config_setting_source_line (group);
    s_reading_t reading = { self, svc, supervisor };
    bus_cfg_service_t in;
    if (bus_cfg_read (config, &bus_cfg_service_group, group, &in, BUS_CFG_CHECK_KEYS, NULL,
                      s_check_service_key, &reading) < 0)
        return false;
    svc->instances = (int) in.instances;
    svc->restart = (sup_restart_type_t) bus_cfg_choice_index (bus_cfg_key (&bus_cfg_service_group, "restart"), in.restart);
    svc->notify = (sup_notify_t) bus_cfg_choice_index (bus_cfg_key (&bus_cfg_service_group, "notify"), in.notify);
    S_LIMITS (&svc->limits, in);
    s_check_limits (config, group, &svc->limits);
    return true;
}

static void
s_free_service (sup_service_cfg_t *svc)
{
    free (svc->args);
    free (svc->env);
    free (svc->pass_env);
    svc->args = svc->env = svc->pass_env = NULL;
}

//  Orders services so that every one comes after its dependencies (Kahn's
//  algorithm, file order among services that are ready at the same time).
//  Reports unknown names and cycles; on error keeps file order.
static void
s_sort (sup_config_t *self, config_setting_t *list, config_setting_t **groups)
{
    size_t n = self->service_count;
    int index_of [SUP_SERVICES_MAX][SUP_DEPENDS_MAX];
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        sup_service_cfg_t *svc = &self->services [i];
        for (size_t d = 0; d < svc->depend_count; d++) {
            index_of [i][d] = -1;
            for (size_t j = 0; j < n; j++)
                if (self->services [j].name && strcmp (self->services [j].name, svc->depends [d]) == 0)
                    index_of [i][d] = (int) j;
            if (index_of [i][d] < 0) {
                bus_config_error (self->config, config_setting_get_member (groups [i], "depends"),
                                  "unknown service \"%s\" (expected the name of a service in this file)",
                                  svc->depends [d]);
                ok = false;
            }
        }
    }
    if (!ok)
        return;
    bool placed [SUP_SERVICES_MAX] = { false };
    size_t order [SUP_SERVICES_MAX];
    size_t count = 0;
    while (count < n) {
        bool progress = false;
        for (size_t i = 0; i < n; i++) {
            if (placed [i])
                continue;
            bool ready = true;
            for (size_t d = 0; d < self->services [i].depend_count && ready; d++)
                ready = placed [index_of [i][d]];
            if (ready) {
                placed [i] = true;
                order [count++] = i;
                progress = true;
                break;              //  restart from the top: keeps file order
            }
        }
        if (!progress)
            break;
    }
    if (count < n) {
        char names [400] = "";
        size_t len = 0;
        size_t first = 0;
        bool have_first = false;
        for (size_t i = 0; i < n && len < sizeof names; i++)
            if (!placed [i]) {
                len += snprintf (names + len, sizeof names - len, "%s%s", len ? ", " : "",
                                 self->services [i].name);
                if (!have_first) {
                    first = i;
                    have_first = true;
                }
            }
        bus_config_error (self->config, config_setting_get_member (groups [first], "depends"),
                          "dependency cycle among %s", names);
        return;
    }
    sup_service_cfg_t sorted [SUP_SERVICES_MAX];
    for (size_t i = 0; i < n; i++)
        sorted [i] = self->services [order [i]];
    memcpy (self->services, sorted, n * sizeof (sup_service_cfg_t));
    (void) list;
}

sup_config_t *
sup_config_new (bus_config_t **config_p)
{
    assert (config_p && *config_p);
    sup_config_t *self = calloc (1, sizeof *self);
    assert (self);
    self->config = *config_p;
    *config_p = NULL;
    bus_config_t *config = self->config;
    config_setting_t *root = config_root_setting (bus_config_raw (config));

    //  Top-level keys: those of the schema (its top-level keys and groups), the
    //  sections not in it yet, and sections named after services
    config_setting_t *list = config_setting_get_member (root, "services");
    int top = config_setting_length (root);
    for (int i = 0; i < top; i++) {
        config_setting_t *member = config_setting_get_elem (root, i);
        const char *name = config_setting_name (member);
        bool known = false;
        for (size_t g = 0; g < bus_cfg_group_count && !known; g++) {
            const bus_cfg_group_t *group = bus_cfg_groups [g];
            known = *group->path ? streq (name, group->path) : bus_cfg_key (group, name) != NULL;
        }
        for (int k = 0; s_top_extra [k] && !known; k++)
            known = strcmp (name, s_top_extra [k]) == 0;
        for (int k = 0; list && !known && k < config_setting_length (list); k++) {
            config_setting_t *svc = config_setting_get_elem (list, k);
            const char *svc_name = NULL;
            if (config_setting_is_group (svc)
            &&  config_setting_lookup_string (svc, "name", &svc_name) == CONFIG_TRUE)
                known = strcmp (name, svc_name) == 0;
        }
        if (!known)
            bus_config_error (config, member, "unknown setting (expected run_dir, log_level, supervisor, "
                              "services, a section of a service, or a node setting; see docs/configuration.md)");
    }
    bus_cfg_bifrostd_t own;
    bus_cfg_read (config, &bus_cfg_bifrostd_group, root, &own, 0, NULL, NULL, NULL);
    //  Unset stays NULL: the environment and the command line come first
    //  (sup_config.h), the schema's defaults last. The rule (an absolute path)
    //  is bus_rundir's, shared with bifrostctl.
    config_setting_t *run_dir = config_setting_get_member (root, "run_dir");
    self->run_dir = bus_rundir_check (config, run_dir && config_setting_type (run_dir) == CONFIG_TYPE_STRING
                                              ? own.run_dir : NULL);
    config_setting_t *log_level = config_setting_get_member (root, "log_level");
    self->log_level = log_level && config_setting_type (log_level) == CONFIG_TYPE_STRING
                   && streq (config_setting_get_string (log_level), own.log_level) ? own.log_level : NULL;
    self->user_base = (uint32_t) own.user_base;
    if (own.user_base > 0 && own.user_base < 1000)
        bus_config_error (config, config_setting_get_member (root, "user_base"),
                          "expected 0 (services stay uid 0) or 1000 and more: below are the system's users");

    bus_cfg_supervisor_t supervisor;
    bus_cfg_read (config, &bus_cfg_supervisor_group, NULL, &supervisor, BUS_CFG_CHECK_KEYS, NULL, NULL, NULL);
    S_LIMITS (&self->limits, supervisor);
    config_setting_t *supervisor_group = config_setting_get_member (root, "supervisor");
    s_check_limits (config, supervisor_group && config_setting_is_group (supervisor_group) ? supervisor_group : NULL,
                    &self->limits);

    config_setting_t *groups [SUP_SERVICES_MAX];
    if (!list)
        bus_config_error (config, NULL, "missing services (a list of services to run)");
    else
    if (config_setting_type (list) != CONFIG_TYPE_LIST) {
        bus_config_error (config, list, "expected a list of groups: ( { name = \"bus\"; exec = \"bifrost-bus\"; } )");
        list = NULL;
    }
    int length = list ? config_setting_length (list) : 0;
    if (length > SUP_SERVICES_MAX) {
        bus_config_error (config, list, "expected at most %d services, got %d", SUP_SERVICES_MAX, length);
        length = 0;
    }
    for (int i = 0; i < length; i++) {
        config_setting_t *group = config_setting_get_elem (list, i);
        sup_service_cfg_t *svc = &self->services [self->service_count];
        if (!s_read_service (self, &supervisor, group, svc))
            continue;
        for (size_t j = 0; svc->name && j < self->service_count; j++)
            if (self->services [j].name && strcmp (self->services [j].name, svc->name) == 0)
                bus_config_error (config, config_setting_get_member (group, "name"),
                                  "duplicate service name \"%s\" (first at line %d)",
                                  svc->name, self->services [j].line);
        groups [self->service_count++] = group;
    }
    if (bus_config_error_count (config) == 0)
        s_sort (self, list, groups);
    return self;
}

void
sup_config_destroy (sup_config_t **self_p)
{
    assert (self_p);
    sup_config_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->service_count; i++)
        s_free_service (&self->services [i]);
    bus_config_destroy (&self->config);
    free (self);
    *self_p = NULL;
}

sup_config_t *
sup_config_load (const char *path, FILE *errors)
{
    char err [512];
    bus_config_t *config = bus_config_load (path, err, sizeof err);
    if (!config) {
        fprintf (errors, "%s\n", err);
        return NULL;
    }
    sup_config_t *self = sup_config_new (&config);
    if (bus_config_report (self->config, errors)) {
        sup_config_destroy (&self);
        return NULL;
    }
    return self;
}

bus_config_t *sup_config_bus (sup_config_t *self) { return self->config; }
size_t sup_config_errors (sup_config_t *self) { return bus_config_error_count (self->config); }
const char *sup_config_file (sup_config_t *self) { return bus_config_file (self->config); }
const char *sup_config_run_dir (sup_config_t *self) { return self->run_dir; }
const char *sup_config_log_level (sup_config_t *self) { return self->log_level; }
uint32_t sup_config_user_base (sup_config_t *self) { return self->user_base; }
const sup_limits_t *sup_config_limits (sup_config_t *self) { return &self->limits; }
size_t sup_config_service_count (sup_config_t *self) { return self->service_count; }

const sup_service_cfg_t *
sup_config_service (sup_config_t *self, size_t index)
{
    return index < self->service_count ? &self->services [index] : NULL;
}

const sup_service_cfg_t *
sup_config_find (sup_config_t *self, const char *name)
{
    for (size_t i = 0; i < self->service_count; i++)
        if (self->services [i].name && strcmp (self->services [i].name, name) == 0)
            return &self->services [i];
    return NULL;
}

static bool
s_same_strings (const char **a, size_t na, const char **b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp (a [i], b [i]) != 0)
            return false;
    return true;
}

bool
sup_service_cfg_same_command (const sup_service_cfg_t *a, const sup_service_cfg_t *b)
{
    return strcmp (a->exec, b->exec) == 0
        && a->notify == b->notify
        && s_same_strings (a->args, a->arg_count, b->args, b->arg_count)
        && s_same_strings (a->env, a->env_count, b->env, b->env_count)
        && s_same_strings (a->pass_env, a->pass_env_count, b->pass_env, b->pass_env_count);
}

//  Two settings hold the same value: same type, same members in the same order
//  (names too), same scalars. Strings are compared as written (before ${VAR}).
static bool
s_same_setting (config_setting_t *a, config_setting_t *b)
{
    if (!a || !b)
        return a == b;
    int type = config_setting_type (a);
    if (type != config_setting_type (b))
        return false;
    const char *na = config_setting_name (a), *nb = config_setting_name (b);
    if ((na || nb) && (!na || !nb || strcmp (na, nb) != 0))
        return false;
    switch (type) {
        case CONFIG_TYPE_INT: return config_setting_get_int (a) == config_setting_get_int (b);
        case CONFIG_TYPE_INT64: return config_setting_get_int64 (a) == config_setting_get_int64 (b);
        case CONFIG_TYPE_FLOAT: return config_setting_get_float (a) == config_setting_get_float (b);
        case CONFIG_TYPE_BOOL: return config_setting_get_bool (a) == config_setting_get_bool (b);
        case CONFIG_TYPE_STRING: return strcmp (config_setting_get_string (a), config_setting_get_string (b)) == 0;
        default: break;
    }
    int length = config_setting_length (a);
    if (length != config_setting_length (b))
        return false;
    for (int i = 0; i < length; i++)
        if (!s_same_setting (config_setting_get_elem (a, (unsigned) i), config_setting_get_elem (b, (unsigned) i)))
            return false;
    return true;
}

bool
sup_config_same_section (sup_config_t *a, sup_config_t *b, const char *name)
{
    return s_same_setting (config_lookup (bus_config_raw (a->config), name),
                           config_lookup (bus_config_raw (b->config), name));
}

const char *
sup_config_default_text (void)
{
    //  Generated once from the schema (schemas/config/), so every key with its
    //  default and doc is there, and no default is written twice
    static char *text = NULL;
    if (text)
        return text;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    assert (out);
    fputs ("# bifrostd configuration (libconfig syntax), generated from schemas/config/.\n"
           "# Every key is described in docs/config-reference.md. Strings may use ${VAR}\n"
           "# (taken from the environment, an unset variable is an error; write $$ for a\n"
           "# literal $). Durations are written \"250ms\", \"30s\", \"5m\", \"1h\"; a bare\n"
           "# integer is seconds. A node's sections are read by the services that run.\n", out);
    bus_cfg_print_default (out, NULL);
    fputs ("services = (\n"
           "    {\n"
           "        name = \"bus\";                # the broker every service talks through\n"
           "        exec = \"bifrost-bus\";        # found in the libexec directory\n"
           "        restart = \"permanent\";       # permanent, transient or temporary\n"
           "        instances = 1;\n"
           "    }\n"
           "    # An external program, ready when started, restarted when it dies:\n"
           "    # , { name = \"coturn\"; exec = \"/usr/bin/turnserver\"; notify = \"none\";\n"
           "    #     args = [\"-c\", \"/etc/turnserver.conf\"]; env = [\"SECRET=${TURN_SECRET}\"]; }\n"
           ");\n", out);
    fclose (out);
    return text;
}

//  ---------------------------------------------------------------------------
//  Self test

static sup_config_t *
s_parse (const char *text)
{
    char err [512];
    bus_config_t *config = bus_config_load_string (text, "t.cfg", err, sizeof err);
    if (!config) {
        fprintf (stderr, "%s\n", err);
        return NULL;
    }
    return sup_config_new (&config);
}

//  True when the config has an error containing needle.
static bool
s_error (sup_config_t *self, const char *needle)
{
    bus_config_t *config = sup_config_bus (self);
    for (size_t i = 0; bus_config_error_text (config, i); i++)
        if (strstr (bus_config_error_text (config, i), needle))
            return true;
    return false;
}

//  Parses text and checks that it has exactly one error, containing needle.
static void
s_expect_error (const char *text, const char *needle, bool verbose)
{
    sup_config_t *self = s_parse (text);
    assert (self);
    if (verbose || !s_error (self, needle) || sup_config_errors (self) != 1)
        bus_config_report (sup_config_bus (self), stderr);
    assert (sup_config_errors (self) == 1);
    assert (s_error (self, needle));
    sup_config_destroy (&self);
}

void
sup_config_test (bool verbose)
{
    //  The default config is valid
    sup_config_t *self = s_parse (sup_config_default_text ());
    assert (self);
    if (sup_config_errors (self))
        bus_config_report (sup_config_bus (self), stderr);
    assert (sup_config_errors (self) == 0);
    assert (sup_config_service_count (self) == 1);
    assert (strcmp (sup_config_service (self, 0)->name, "bus") == 0);
    assert (strcmp (sup_config_run_dir (self), "/run/bifrost") == 0);
    assert (sup_config_limits (self)->intensity == 10);
    assert (sup_config_limits (self)->period_ms == 60000);
    sup_config_destroy (&self);
    assert (!self);

    //  A full config: order, overrides, ${VAR}
    setenv ("SUP_CONFIG_TEST_SECRET", "s3cret", 1);
    self = s_parse (
        "log_level = \"debug\";\n"
        "supervisor: { intensity = 3; period = \"2s\"; backoff_min = \"200ms\"; backoff_max = \"1s\"; };\n"
        "device: { mtu = 1400; };\n"
        "services = (\n"
        "  { name = \"web\"; exec = \"w\"; depends = [\"echo\", \"bus\"]; },\n"
        "  { name = \"echo\"; exec = \"bifrost-testsvc\"; depends = [\"bus\"]; instances = 2;\n"
        "    restart = \"transient\"; args = [\"--x\", \"${SUP_CONFIG_TEST_SECRET}\"]; intensity = 5; },\n"
        "  { name = \"bus\"; exec = \"bifrost-bus\"; },\n"
        "  { name = \"coturn\"; exec = \"/usr/bin/turnserver\"; notify = \"none\"; env = [\"A=B\"];\n"
        "    pass_env = [\"TURN_SECRET\", \"_X1\"];\n"
        "    restart = \"temporary\"; on_give_up = \"stop_all\"; }\n"
        ");\n"
        "web: { port = 1; };\n");
    assert (self);
    if (sup_config_errors (self))
        bus_config_report (sup_config_bus (self), stderr);
    assert (sup_config_errors (self) == 0);
    assert (sup_config_run_dir (self) == NULL);
    assert (strcmp (sup_config_log_level (self), "debug") == 0);
    assert (sup_config_service_count (self) == 4);
    assert (strcmp (sup_config_service (self, 0)->name, "bus") == 0);
    assert (strcmp (sup_config_service (self, 1)->name, "echo") == 0);
    assert (strcmp (sup_config_service (self, 2)->name, "web") == 0);
    assert (strcmp (sup_config_service (self, 3)->name, "coturn") == 0);
    assert (sup_config_service (self, 4) == NULL);
    const sup_service_cfg_t *echo = sup_config_find (self, "echo");
    assert (echo && echo->instances == 2 && echo->restart == SUP_RESTART_TRANSIENT);
    assert (echo->arg_count == 2 && strcmp (echo->args [1], "s3cret") == 0 && echo->args [2] == NULL);
    assert (echo->limits.intensity == 5);
    assert (echo->limits.period_ms == 2000);
    assert (echo->limits.backoff_min_ms == 200);
    assert (echo->limits.liveness_timeout_ms == 5000);
    assert (echo->line == 6);
    const sup_service_cfg_t *coturn = sup_config_find (self, "coturn");
    assert (coturn->notify == SUP_NOTIFY_NONE && coturn->env_count == 1);
    assert (coturn->pass_env_count == 2 && strcmp (coturn->pass_env [0], "TURN_SECRET") == 0);
    assert (echo->pass_env_count == 0 && echo->pass_env [0] == NULL);
    assert (coturn->limits.on_give_up == SUP_GIVE_UP_STOP_ALL);
    assert (coturn->restart == SUP_RESTART_TEMPORARY);
    assert (strcmp (sup_restart_name (coturn->restart), "temporary") == 0);
    assert (sup_config_find (self, "nope") == NULL);
    assert (sup_service_cfg_same_command (echo, echo));
    assert (!sup_service_cfg_same_command (echo, coturn));
    sup_config_destroy (&self);

    //  Sections compared by value, not by layout
    {
        sup_config_t *a = s_parse ("services = ( );\nweb: { port = 1; hosts = [\"a\", \"b\"]; t = { x = 1.5; }; };\n");
        sup_config_t *b = s_parse ("services = ( );   web = { port = 1;\n hosts = [\"a\", \"b\"]; t: { x = 1.5; }; };");
        sup_config_t *c = s_parse ("services = ( );\nweb: { port = 2; hosts = [\"a\", \"b\"]; t = { x = 1.5; }; };\n");
        sup_config_t *d = s_parse ("services = ( );\nweb: { port = 1; hosts = [\"a\"]; t = { x = 1.5; }; };\n");
        sup_config_t *e = s_parse ("services = ( );\n");
        assert (a && b && c && d && e);
        assert (sup_config_same_section (a, b, "web"));
        assert (!sup_config_same_section (a, c, "web"));
        assert (!sup_config_same_section (a, d, "web"));
        assert (!sup_config_same_section (a, e, "web"));
        assert (sup_config_same_section (e, e, "web"));
        sup_config_destroy (&a);
        sup_config_destroy (&b);
        sup_config_destroy (&c);
        sup_config_destroy (&d);
        sup_config_destroy (&e);
    }

    //  Every error path, each with its line
    s_expect_error ("services = ( { name = \"a\"; exec = \"x\"; restart = \"sometimes\"; } );",
                    "t.cfg:1: services.[0].restart: expected one of permanent, transient, temporary", verbose);
    s_expect_error ("services = (\n { name = \"a\"; exec = \"x\"; },\n { name = \"b\"; exec = \"y\"; instances = 65; }\n);",
                    "t.cfg:3: services.[1].instances: expected an integer from 0 to 64, got 65", verbose);
    s_expect_error ("services = ( { name = \"a\"; exec = \"x\"; restrat = \"permanent\"; } );",
                    "services.[0].restrat: unknown setting", verbose);
    s_expect_error ("servces = ( );\nservices = ( );", "t.cfg:1: servces: unknown setting", verbose);
    s_expect_error ("services = ( );\nsupervisor: { intensty = 1; };",
                    "t.cfg:2: supervisor.intensty: unknown setting", verbose);
    s_expect_error ("services = ( );\nsupervisor: { period = \"soon\"; };",
                    "supervisor.period: expected a duration", verbose);
    s_expect_error ("services = ( );\nsupervisor: { on_give_up = \"panic\"; };",
                    "supervisor.on_give_up: expected one of stop_service, stop_all", verbose);
    s_expect_error ("services = ( );\nsupervisor: { backoff_min = \"2s\"; backoff_max = \"1s\"; };",
                    "backoff_min must not be larger than backoff_max", verbose);
    s_expect_error ("services = ( );\nsupervisor = 3;", "supervisor: expected a group", verbose);
    s_expect_error ("log_level = \"loud\";\nservices = ( );", "t.cfg:1: log_level: expected one of error", verbose);
    s_expect_error ("run_dir = \"relative\";\nservices = ( );", "run_dir: expected an absolute path", verbose);
    s_expect_error ("run_dir = \"${SUP_CONFIG_TEST_UNSET}\";\nservices = ( );",
                    "t.cfg:1: run_dir: environment variable SUP_CONFIG_TEST_UNSET is not set", verbose);
    s_expect_error ("run_dir = \"/x\";", "missing services", verbose);
    s_expect_error ("services = [ 1, 2 ];", "services: expected a list of groups", verbose);
    s_expect_error ("services = ( 1 );", "services.[0]: expected a group", verbose);
    s_expect_error ("services = ( { exec = \"x\"; } );", "services.[0]: missing name", verbose);
    s_expect_error ("services = ( { name = \"a\"; } );", "services.[0]: missing exec", verbose);
    s_expect_error ("services = ( { name = \"a\"; exec = \"\"; } );", "services.[0].exec: expected a program", verbose);
    s_expect_error ("services = ( { name = \"a b\"; exec = \"x\"; } );", "services.[0].name: expected a name", verbose);
    s_expect_error ("services = ( { name = \"a.1\"; exec = \"x\"; } );", "services.[0].name: expected a name", verbose);
    s_expect_error ("services = ( { name = \"a\"; exec = \"x\"; },\n { name = \"a\"; exec = \"y\"; } );",
                    "t.cfg:2: services.[1].name: duplicate service name \"a\" (first at line 1)", verbose);
    s_expect_error ("services = ( { name = \"a\"; exec = \"x\"; args = \"--v\"; } );",
                    "services.[0].args: expected a list of strings", verbose);
    s_expect_error ("services = ( { name = \"a\"; exec = \"x\"; args = [1]; } );",
                    "services.[0].args.[0]: expected a string", verbose);
    s_expect_error ("services = ( { name = \"a\"; exec = \"x\"; env = [\"NOEQUALS\"]; } );",
                    "services.[0].env: expected \"NAME=value\"", verbose);
    s_expect_error ("services = ( { name = \"a\"; exec = \"x\"; pass_env = [\"A-B\"]; } );",
                    "services.[0].pass_env: expected variable names", verbose);
    s_expect_error ("services = ( { name = \"a\"; exec = \"x\"; pass_env = [\"BIFROST_CONFIG\"]; } );",
                    "BIFROST_CONFIG is set by bifrostd and cannot be passed", verbose);
    s_expect_error ("services = ( { name = \"a\"; exec = \"x\"; pass_env = \"TOKEN\"; } );",
                    "services.[0].pass_env: expected a list of strings", verbose);
    s_expect_error ("services = ( { name = \"a\"; exec = \"x\"; env = [\"BIFROST_READY_FD=9\"]; } );",
                    "BIFROST_READY_FD is set by bifrostd", verbose);
    s_expect_error ("services = ( { name = \"a\"; exec = \"x\"; depends = [\"ghost\"]; } );",
                    "services.[0].depends: unknown service \"ghost\"", verbose);
    s_expect_error ("services = ( { name = \"a\"; exec = \"x\"; depends = [\"b\"]; },\n"
                    " { name = \"b\"; exec = \"x\"; depends = [\"a\"]; },\n { name = \"c\"; exec = \"x\"; } );",
                    "t.cfg:1: services.[0].depends: dependency cycle among a, b", verbose);
    s_expect_error ("services = ( { name = \"a\"; exec = \"x\"; depends = [\"a\"]; } );",
                    "dependency cycle among a", verbose);
    s_expect_error ("services = ( { name = \"a\"; exec = \"x\"; notify = \"sd\"; } );",
                    "services.[0].notify: expected one of ready, none", verbose);
    s_expect_error ("services = ( { name = \"a\"; exec = \"x\"; liveness_timeout = \"10ms\"; } );",
                    "services.[0].liveness_timeout: expected a duration from 100ms to 1h, got 10ms", verbose);

    //  Several errors are all reported
    self = s_parse ("services = ( { name = \"a\"; exec = \"x\"; instances = -1; restart = 1; bogus = 2; } );");
    assert (self && sup_config_errors (self) == 3);
    sup_config_destroy (&self);

    //  Load from a file, with errors printed
    char path [] = "/tmp/sup-config-test-XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    FILE *file = fdopen (fd, "w");
    fprintf (file, "services = (\n  { name = \"a\"; exec = \"x\"; instances = \"two\"; }\n);\n");
    fclose (file);
    FILE *devnull = fopen ("/dev/null", "w");
    assert (sup_config_load (path, devnull) == NULL);
    assert (sup_config_load ("/nonexistent/x.cfg", devnull) == NULL);
    file = fopen (path, "w");
    fprintf (file, "services = ( { name = \"a\"; exec = \"x\"; } );\n");
    fclose (file);
    self = sup_config_load (path, devnull);
    assert (self);
    assert (strcmp (sup_config_file (self), path) == 0);
    sup_config_destroy (&self);
    fclose (devnull);
    unlink (path);
    if (verbose)
        printf ("sup_config: ok\n");
}
