/*  bus_config_schema: the config schema expanded into descriptors, the generic
    reader, the annotated default file and the reference tables (see the header). */
#include "bus_config_schema.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

//  ---------------------------------------------------------------------------
//  Descriptors: the key tables, the name lists and a field accessor per group.
//  The accessor is generated as code (out->name), so the compiler lays out the
//  struct and nobody computes an offset by hand.

#define BUS_CFG_STRING(n, d, f, doc)                 { #n, BUS_CFG_T_STRING, 0, d, 0, 0, NULL, NULL, NULL, f, doc },
#define BUS_CFG_INT(n, d, lo, hi, u, f, doc)         { #n, BUS_CFG_T_INT, d, NULL, lo, hi, NULL, NULL, u, f, doc },
#define BUS_CFG_BOOL(n, d, f, doc)                   { #n, BUS_CFG_T_BOOL, d, NULL, 0, 1, NULL, NULL, NULL, f, doc },
#define BUS_CFG_DURATION(n, d, lo, hi, f, doc)       { #n, BUS_CFG_T_DURATION, d, NULL, lo, hi, NULL, NULL, NULL, f, doc },
#define BUS_CFG_CHOICE(n, d, v, f, doc)              { #n, BUS_CFG_T_CHOICE, 0, d, 0, 0, v, NULL, NULL, f, doc },
#define BUS_CFG_LIST(n, what, f, doc)                { #n, BUS_CFG_T_LIST, 0, NULL, 0, 0, NULL, what, NULL, f, doc },
#define BUS_CFG_GROUP(id, path, title, ng, keys) static const bus_cfg_key_t s_##id##_keys [] = { keys };
#define BUS_CFG_LIST_GROUP BUS_CFG_GROUP
#include "../schemas/config/all.def"
#include "bus_config_schema_undef.inc"

#define BUS_CFG_STRING(n, d, f, doc)                 #n,
#define BUS_CFG_INT(n, d, lo, hi, u, f, doc)         #n,
#define BUS_CFG_BOOL(n, d, f, doc)                   #n,
#define BUS_CFG_DURATION(n, d, lo, hi, f, doc)       #n,
#define BUS_CFG_CHOICE(n, d, v, f, doc)              #n,
#define BUS_CFG_LIST(n, what, f, doc)                #n,
#define BUS_CFG_GROUP(id, path, title, ng, keys) static const char *const s_##id##_names [] = { keys NULL };
#define BUS_CFG_LIST_GROUP BUS_CFG_GROUP
#include "../schemas/config/all.def"
#include "bus_config_schema_undef.inc"

#define BUS_CFG_STRING(n, d, f, doc)                 if (index == i++) return &out->n;
#define BUS_CFG_INT(n, d, lo, hi, u, f, doc)         if (index == i++) return &out->n;
#define BUS_CFG_BOOL(n, d, f, doc)                   if (index == i++) return &out->n;
#define BUS_CFG_DURATION(n, d, lo, hi, f, doc)       if (index == i++) return &out->n##_ms;
#define BUS_CFG_CHOICE(n, d, v, f, doc)              if (index == i++) return &out->n;
#define BUS_CFG_LIST(n, what, f, doc)                if (index == i++) return &out->n;
#define BUS_CFG_GROUP(id, path, title, ng, keys) \
    static void *s_##id##_field (void *base, size_t index) \
    { bus_cfg_##id##_t *out = (bus_cfg_##id##_t *) base; size_t i = 0; keys return NULL; }
#define BUS_CFG_LIST_GROUP BUS_CFG_GROUP
#include "../schemas/config/all.def"
#include "bus_config_schema_undef.inc"

#define BUS_CFG_STRING(n, d, f, doc)                 .n = d,
#define BUS_CFG_INT(n, d, lo, hi, u, f, doc)         .n = d,
#define BUS_CFG_BOOL(n, d, f, doc)                   .n = d,
#define BUS_CFG_DURATION(n, d, lo, hi, f, doc)       .n##_ms = d,
#define BUS_CFG_CHOICE(n, d, v, f, doc)              .n = d,
#define BUS_CFG_LIST(n, what, f, doc)                .n = NULL,
#define BUS_CFG_GROUP(id, path, title, ng, keys) const bus_cfg_##id##_t bus_cfg_##id##_defaults = { keys };
#define BUS_CFG_LIST_GROUP BUS_CFG_GROUP
#include "../schemas/config/all.def"
#include "bus_config_schema_undef.inc"

#define S_KEYS(id) s_##id##_keys, sizeof s_##id##_keys / sizeof s_##id##_keys [0], s_##id##_names, \
                   sizeof (bus_cfg_##id##_t), s_##id##_field
#define BUS_CFG_GROUP(id, path, title, ng, keys) \
    const bus_cfg_group_t bus_cfg_##id##_group = { #id, path, false, title, ng, S_KEYS (id) };
#define BUS_CFG_LIST_GROUP(id, path, title, ng, keys) \
    const bus_cfg_group_t bus_cfg_##id##_group = { #id, path, true, title, ng, S_KEYS (id) };
#include "../schemas/config/all.def"
#include "bus_config_schema_undef.inc"

#define BUS_CFG_GROUP(id, path, title, ng, keys) &bus_cfg_##id##_group,
#define BUS_CFG_LIST_GROUP BUS_CFG_GROUP
const bus_cfg_group_t *const bus_cfg_groups [] = {
#include "../schemas/config/all.def"
};
#include "bus_config_schema_undef.inc"
const size_t bus_cfg_group_count = sizeof bus_cfg_groups / sizeof bus_cfg_groups [0];

//  ---------------------------------------------------------------------------
//  Reading

int
bus_cfg_choice_index (const bus_cfg_key_t *key, const char *text)
{
    for (int i = 0; text && key->choices && key->choices [i]; i++)
        if (strcmp (key->choices [i], text) == 0)
            return i;
    return -1;
}

const bus_cfg_key_t *
bus_cfg_key (const bus_cfg_group_t *group, const char *name)
{
    for (size_t i = 0; i < group->key_count; i++)
        if (strcmp (group->keys [i].name, name) == 0)
            return &group->keys [i];
    return NULL;
}

static void
s_default (const bus_cfg_key_t *key, void *field)
{
    switch (key->type) {
        case BUS_CFG_T_STRING:
        case BUS_CFG_T_CHOICE:   *(const char **) field = key->def_str; break;
        case BUS_CFG_T_INT:
        case BUS_CFG_T_DURATION: *(int64_t *) field = key->def; break;
        case BUS_CFG_T_BOOL:     *(bool *) field = key->def != 0; break;
        case BUS_CFG_T_LIST:     *(config_setting_t **) field = NULL; break;
    }
}

void
bus_cfg_defaults (const bus_cfg_group_t *group, void *out)
{
    memset (out, 0, group->size);
    for (size_t i = 0; i < group->key_count; i++)
        s_default (&group->keys [i], group->field (out, i));
}

static bool
s_wanted (const char *name, const char *const *only)
{
    if (!only)
        return true;
    for (; *only; only++)
        if (strcmp (*only, name) == 0)
            return true;
    return false;
}

//  One key, through bus_config's getters (their messages, file and line)
static void
s_read_key (bus_config_t *config, config_setting_t *group, const bus_cfg_key_t *key, void *field)
{
    bool owner = (key->flags & BUS_CFG_OWNER_CHECKS) != 0;
    switch (key->type) {
        case BUS_CFG_T_STRING:
            *(const char **) field = bus_config_setting_string (config, group, key->name, key->def_str);
            break;
        case BUS_CFG_T_CHOICE:
            //  Checked by its owner (read as a string), or here: then the
            //  field points to the declared value
            if (owner)
                *(const char **) field = bus_config_setting_string (config, group, key->name, key->def_str);
            else {
                int index = bus_config_setting_choice (config, group, key->name, key->choices,
                                                       bus_cfg_choice_index (key, key->def_str));
                *(const char **) field = index >= 0 ? key->choices [index] : NULL;
            }
            break;
        case BUS_CFG_T_INT:
            *(int64_t *) field = bus_config_setting_int (config, group, key->name, key->def,
                                                         owner ? INT32_MIN : key->min,
                                                         owner ? INT32_MAX : key->max);
            break;
        case BUS_CFG_T_DURATION:
            *(int64_t *) field = bus_config_setting_duration_ms (config, group, key->name, key->def,
                                                                 key->min, key->max);
            break;
        case BUS_CFG_T_BOOL:
            *(bool *) field = bus_config_setting_bool (config, group, key->name, key->def != 0);
            break;
        case BUS_CFG_T_LIST:
            *(config_setting_t **) field = config_setting_get_member (group, key->name);
            break;
    }
}

int
bus_cfg_read (bus_config_t *config, const bus_cfg_group_t *group, config_setting_t *setting,
              void *out, unsigned flags, const char *const *only,
              bus_cfg_check_fn *check, void *arg)
{
    assert (group && out);
    bus_cfg_defaults (group, out);
    if (!config)
        return 0;
    if (!setting) {
        config_t *raw = bus_config_raw (config);
        setting = *group->path ? config_lookup (raw, group->path) : config_root_setting (raw);
    }
    if (!setting)
        return 0;
    if (!config_setting_is_group (setting)) {
        if (flags & BUS_CFG_CHECK_KEYS)
            bus_config_error (config, setting, "%s", group->not_group);
        return -1;
    }
    if ((flags & BUS_CFG_CHECK_KEYS) && *group->path)
        bus_config_check_keys (config, setting, group->names);
    for (size_t i = 0; i < group->key_count; i++) {
        const bus_cfg_key_t *key = &group->keys [i];
        if (!s_wanted (key->name, only))
            continue;
        size_t errors = bus_config_error_count (config);
        s_read_key (config, setting, key, group->field (out, i));
        if (check)
            check (config, setting, config_setting_get_member (setting, key->name), key,
                   bus_config_error_count (config) > errors, out, arg);
    }
    return 1;
}

//  ---------------------------------------------------------------------------
//  Rendering: the annotated default file and the reference

void
bus_cfg_default_text (const bus_cfg_key_t *key, char *buf, size_t size)
{
    switch (key->type) {
        case BUS_CFG_T_STRING:
        case BUS_CFG_T_CHOICE:
            if (key->def_str)
                snprintf (buf, size, "\"%s\"", key->def_str);
            else
                snprintf (buf, size, "%s", "");
            break;
        case BUS_CFG_T_INT:      //  libconfig reads a 64-bit integer with an L
            snprintf (buf, size, "%" PRId64 "%s", key->def, key->def > INT32_MAX || key->def < INT32_MIN ? "L" : "");
            break;
        case BUS_CFG_T_BOOL:     snprintf (buf, size, "%s", key->def ? "true" : "false"); break;
        case BUS_CFG_T_DURATION: {
            char text [32];
            bus_config_format_duration (key->def, text, sizeof text);
            snprintf (buf, size, "\"%s\"", text);
            break;
        }
        case BUS_CFG_T_LIST:     snprintf (buf, size, "%s", ""); break;
    }
}

static const char *
s_type_name (const bus_cfg_key_t *key)
{
    switch (key->type) {
        case BUS_CFG_T_STRING:   return "string";
        case BUS_CFG_T_INT:      return "integer";
        case BUS_CFG_T_BOOL:     return "bool";
        case BUS_CFG_T_DURATION: return "duration";
        case BUS_CFG_T_CHOICE:   return "choice";
        case BUS_CFG_T_LIST:     return "list";
    }
    return "?";
}

//  "576..65535 bytes", "1s..1h", "tun, tap" or ""
static void
s_range_text (const bus_cfg_key_t *key, char *buf, size_t size)
{
    *buf = 0;
    if (key->type == BUS_CFG_T_INT) {
        char hi [32];
        if (key->max == INT64_MAX)
            snprintf (hi, sizeof hi, "%s", "");
        else
            snprintf (hi, sizeof hi, "%" PRId64, key->max);
        snprintf (buf, size, "%" PRId64 "..%s%s%s", key->min, hi, key->unit ? " " : "", key->unit ? key->unit : "");
    }
    else
    if (key->type == BUS_CFG_T_DURATION) {
        char lo [32], hi [32];
        bus_config_format_duration (key->min, lo, sizeof lo);
        bus_config_format_duration (key->max, hi, sizeof hi);
        snprintf (buf, size, "%s..%s", lo, hi);
    }
    else
    if (key->type == BUS_CFG_T_CHOICE) {
        size_t len = 0;
        for (int i = 0; key->choices [i] && len < size; i++)
            len += snprintf (buf + len, size - len, "%s`%s`", i ? ", " : "", key->choices [i]);
    }
    else
    if (key->type == BUS_CFG_T_LIST && key->values)
        snprintf (buf, size, "of %s", key->values);
}

//  Doc text without Markdown backquotes, folded at about 76 columns, each line
//  starting with prefix.
static void
s_comment (FILE *out, const char *prefix, const char *doc)
{
    size_t col = 0;
    const char *p = doc;
    fputs (prefix, out);
    col = strlen (prefix);
    while (*p) {
        while (*p == ' ')
            p++;
        size_t word = strcspn (p, " ");
        if (!word)
            break;
        if (col > strlen (prefix)) {
            if (col + 1 + word > 80) {
                fprintf (out, "\n%s", prefix);
                col = strlen (prefix);
            }
            else {
                fputc (' ', out);
                col++;
            }
        }
        for (size_t i = 0; i < word; i++)
            if (p [i] != '`')
                fputc (p [i], out);
        col += word;
        p += word;
    }
    fputc ('\n', out);
}

void
bus_cfg_print_default (FILE *out, const char *const *ids)
{
    for (size_t g = 0; g < bus_cfg_group_count; g++) {
        const bus_cfg_group_t *group = bus_cfg_groups [g];
        if (!s_wanted (group->id, ids))
            continue;
        bool top = !*group->path;
        //  A list's element, or a group with a required key, has no complete
        //  default (and a group's presence may mean something, like turn for
        //  the registry): shown commented out
        bool required = false;
        for (size_t i = 0; i < group->key_count; i++)
            required = required || (group->keys [i].flags & BUS_CFG_REQUIRED);
        bool commented = !top && (group->list || required);
        const char *indent = top ? "" : commented ? "#     " : "    ";
        char prefix [16];
        snprintf (prefix, sizeof prefix, "%s# ", indent);
        fprintf (out, "\n# %s\n", group->title);
        if (group->list)
            fprintf (out, "# %s = (\n#   {\n", group->path);
        else
        if (commented)
            fprintf (out, "# %s: {\n", group->path);
        else
        if (!top)
            fprintf (out, "%s: {\n", group->path);
        for (size_t i = 0; i < group->key_count; i++) {
            const bus_cfg_key_t *key = &group->keys [i];
            char def [128], range [128];
            bus_cfg_default_text (key, def, sizeof def);
            s_range_text (key, range, sizeof range);
            s_comment (out, prefix, key->doc);
            if (*range) {
                char line [160];
                snprintf (line, sizeof line, "%s %s", s_type_name (key), range);
                s_comment (out, prefix, line);
            }
            if (key->flags & BUS_CFG_SECRET)
                fprintf (out, "%s# %s = \"${VARIABLE}\";\n", indent, key->name);
            else
            if (*def)
                fprintf (out, "%s%s = %s;\n", indent, key->name, def);
            else
                fprintf (out, "%s# %s = ...;%s\n", indent, key->name,
                         (key->flags & BUS_CFG_REQUIRED) ? "    # required" : "");
        }
        if (group->list)
            fprintf (out, "#   }\n# );\n");
        else
        if (commented)
            fprintf (out, "# };\n");
        else
        if (!top)
            fprintf (out, "};\n");
    }
}

void
bus_cfg_print_reference (FILE *out)
{
    fprintf (out, "# Configuration reference\n\n"
             "Generated by the build from `schemas/config/` (`libbus/bus-config-doc`);\n"
             "do not edit. [configuration.md](configuration.md) explains how the keys work\n"
             "together. Durations are written `\"250ms\"`, `\"30s\"`, `\"5m\"`, `\"1h\"`, `\"1d\"`\n"
             "or as a bare integer of seconds; `${VAR}` in a string is taken from the environment.\n");
    for (size_t g = 0; g < bus_cfg_group_count; g++) {
        const bus_cfg_group_t *group = bus_cfg_groups [g];
        if (group->list)
            fprintf (out, "\n## `%s = ( { ... }, ... )`: %s\n\n", group->path, group->title);
        else
        if (*group->path)
            fprintf (out, "\n## `%s = { ... }`: %s\n\n", group->path, group->title);
        else
            fprintf (out, "\n## Top level: %s\n\n", group->title);
        fprintf (out, "| key | type | default | range | per peer | meaning |\n|---|---|---|---|---|---|\n");
        for (size_t i = 0; i < group->key_count; i++) {
            const bus_cfg_key_t *key = &group->keys [i];
            char def [128], range [128];
            bus_cfg_default_text (key, def, sizeof def);
            s_range_text (key, range, sizeof range);
            const char *peer = (key->flags & BUS_CFG_PER_PEER) ? "yes" : (key->flags & BUS_CFG_OVERRIDE) ? "override" : "";
            fprintf (out, "| `%s` | %s | %s%s%s | %s | %s | %s%s |\n", key->name, s_type_name (key),
                     *def ? "`" : "", *def ? def : (key->flags & BUS_CFG_REQUIRED) ? "required" : "none",
                     *def ? "`" : "", range, peer,
                     (key->flags & BUS_CFG_SECRET) ? "(secret: write `\"${VAR}\"`) " : "", key->doc);
        }
    }
}

//  ---------------------------------------------------------------------------
//  The man page bifrost.cfg(5), from the same declarations

//  Writes text as roff: `code` bold, [text](link) as its text, backslashes
//  escaped, and nothing a line could start a request with.
static void
s_man_text (FILE *out, const char *text)
{
    bool code = false;
    fputs ("\\&", out);
    for (const char *p = text; *p; p++) {
        if (*p == '`') {
            fputs (code ? "\\fR" : "\\fB", out);
            code = !code;
        }
        else
        if (*p == '\\')
            fputs ("\\e", out);
        else
        if (*p == '[' && !code) {
            //  A Markdown link: its text only (the target is a docs/ file)
            const char *close = strstr (p, "](");
            const char *end = close ? strchr (close, ')') : NULL;
            if (close && end && !memchr (p, '\n', (size_t) (end - p))) {
                for (const char *q = p + 1; q < close; q++)
                    fputc (*q, out);
                p = end;
            }
            else
                fputc (*p, out);
        }
        else
        if (*p == '\n')
            fputs ("\n\\&", out);
        else
            fputc (*p, out);
    }
    if (code)
        fputs ("\\fR", out);
}

void
bus_cfg_print_man (FILE *out, const char *version)
{
    fprintf (out,
        ".\\\" bifrost.cfg(5): generated by the build from schemas/config/*.def\n"
        ".\\\" (libbus/bus-config-doc --man); do not edit.\n"
        ".TH BIFROST.CFG 5 \"\" \"bifrost %s\" \"Bifrost\"\n"
        ".SH NAME\n"
        "bifrost.cfg \\- configuration of bifrostd and the Bifrost services\n"
        ".SH SYNOPSIS\n"
        ".B /etc/bifrost/bifrost.cfg\n"
        "(a node)\n"
        ".br\n"
        ".B /etc/bifrost/server.cfg\n"
        "(a registry, relay and TURN server)\n"
        ".SH DESCRIPTION\n"
        "One file configures a whole node or server: the top-level settings of\n"
        ".BR bifrostd (8),\n"
        "the list of processes it runs (\\fBservices\\fR), and one group per service.\n"
        "The syntax is libconfig's: \\fIkey\\fR \\fB=\\fR \\fIvalue\\fR\\fB;\\fR,\n"
        "groups in \\fB{ }\\fR, lists in \\fB( )\\fR or \\fB[ ]\\fR, comments after \\fB#\\fR.\n"
        "Durations are written \\fB\"250ms\"\\fR, \\fB\"30s\"\\fR, \\fB\"5m\"\\fR,\n"
        "\\fB\"1h\"\\fR, \\fB\"1d\"\\fR or as a bare integer of seconds.\n"
        "\\fB${VAR}\\fR in a string is replaced by the environment variable \\fIVAR\\fR\n"
        "when the file is read (an unset variable is an error): secrets are written\n"
        "that way and given to the one service that reads them with its \\fBpass_env\\fR.\n"
        "An unknown key, a wrong type or a value out of range is an error with the\n"
        "file and line, and nothing starts;\n"
        ".B bifrostd \\-\\-check\\-config \\-c\n"
        ".I FILE\n"
        "reports every error at once.\n"
        ".B bifrostd \\-\\-print\\-default\\-config\n"
        "prints an annotated file with every default.\n"
        ".PP\n"
        "Every key is listed below with its type, its default and its range;\n"
        "\\(lqper peer\\(rq keys may also be set in a peer's group of \\fBpeers\\fR.\n",
        version);
    for (size_t g = 0; g < bus_cfg_group_count; g++) {
        const bus_cfg_group_t *group = bus_cfg_groups [g];
        fprintf (out, ".SH ");
        if (group->list)
            fprintf (out, "\"%s = ( { ... }, ... )\"\n", group->path);
        else
        if (*group->path)
            fprintf (out, "\"%s = { ... }\"\n", group->path);
        else
            fprintf (out, "\"TOP LEVEL\"\n");
        s_man_text (out, group->title);
        fputs (".\n", out);
        for (size_t i = 0; i < group->key_count; i++) {
            const bus_cfg_key_t *key = &group->keys [i];
            char def [128], range [128];
            bus_cfg_default_text (key, def, sizeof def);
            s_range_text (key, range, sizeof range);
            fprintf (out, ".TP\n.B %s\n\\fI%s\\fR", key->name, s_type_name (key));
            if (*def) {
                fputs (", default ", out);
                s_man_text (out, def);
            }
            else
                fputs ((key->flags & BUS_CFG_REQUIRED) ? ", required" : ", no default", out);
            if (*range) {
                fputs (key->type == BUS_CFG_T_CHOICE ? ", one of " : ", ", out);
                s_man_text (out, range);
            }
            if (key->flags & BUS_CFG_PER_PEER)
                fputs (", per peer", out);
            if (key->flags & BUS_CFG_OVERRIDE)
                fputs (", overrides the node-wide key", out);
            if (key->flags & BUS_CFG_SECRET)
                fputs (", secret: write \\fB\"${VAR}\"\\fR", out);
            fputs (".\n.br\n", out);
            s_man_text (out, key->doc);
            size_t len = strlen (key->doc);
            fputs (len && key->doc [len - 1] == '.' ? "\n" : ".\n", out);
        }
    }
    fprintf (out,
        ".SH FILES\n"
        ".TP\n.B /etc/bifrost/bifrost.cfg\nthe node's configuration (\\fBbifrost.service\\fR)\n"
        ".TP\n.B /etc/bifrost/join-token\nthe node's join token, mode 0600 (\\fBdiscovery.join_token_file\\fR, written by \\fBbifrostctl join\\fR)\n"
        ".TP\n.B /etc/bifrost/server.cfg\nthe server's configuration (\\fBbifrost-server.service\\fR)\n"
        ".TP\n.B /etc/bifrost/server.env\nthe server's secrets, mode 0600, read by systemd (\\fBEnvironmentFile=\\fR)\n"
        ".TP\n.B /var/lib/bifrost\nthe node key and the registry's database\n"
        ".TP\n.B /run/bifrost\nthe run directory: the bus and the control socket\n"
        ".SH SEE ALSO\n"
        ".BR bifrostd (8),\n"
        ".BR bifrostctl (8);\n"
        "docs/configuration.md and docs/config-reference.md in the documentation\n"
        "(/usr/share/doc/bifrost).\n");
}

//  ---------------------------------------------------------------------------
//  Self test

typedef struct { int calls; } s_probe_t;

static void
s_probe (bus_config_t *config, config_setting_t *group, config_setting_t *setting,
         const bus_cfg_key_t *key, bool refused, void *out, void *arg)
{
    ((s_probe_t *) arg)->calls++;
}

static size_t
s_errors (const char *text, const bus_cfg_group_t *group, void *out, unsigned flags,
          const char *needle, bool verbose)
{
    char err [256];
    bus_config_t *config = bus_config_load_string (text, "t.cfg", err, sizeof err);
    assert (config);
    bus_cfg_read (config, group, NULL, out, flags, NULL, NULL, NULL);
    size_t count = bus_config_error_count (config);
    if (verbose)
        for (size_t i = 0; i < count; i++)
            printf ("  %s\n", bus_config_error_text (config, i));
    if (needle) {
        bool found = false;
        for (size_t i = 0; i < count; i++)
            found = found || strstr (bus_config_error_text (config, i), needle);
        assert (found);
    }
    bus_config_destroy (&config);
    return count;
}

void
bus_config_schema_test (bool verbose)
{
    printf (" * bus_config_schema: ");
    //  Defaults come from the declaration
    bus_cfg_connection_t c;
    bus_cfg_defaults (&bus_cfg_connection_group, &c);
    assert (c.keepalive_interval_ms == 25000 && c.direct_connect && c.relay_via_peers);
    assert (strcmp (c.listen, "*:51820") == 0);
    bus_cfg_device_t d;
    bus_cfg_defaults (&bus_cfg_device_group, &d);
    assert (d.mtu == 1420 && strcmp (d.type, "tun") == 0 && !d.offload);
    assert (bus_cfg_connection_defaults.keepalive_interval_ms == 25000);
    assert (c.listen == bus_cfg_connection_defaults.listen);
    //  Every group's accessor reaches every key, and no two keys share a field
    for (size_t g = 0; g < bus_cfg_group_count; g++) {
        const bus_cfg_group_t *group = bus_cfg_groups [g];
        char *buf = calloc (1, group->size);
        assert (buf);
        for (size_t i = 0; i < group->key_count; i++) {
            char *field = group->field (buf, i);
            assert (field && field >= buf && field < buf + group->size);
            for (size_t j = 0; j < i; j++)
                assert (group->field (buf, j) != field);
        }
        assert (group->field (buf, group->key_count) == NULL);
        assert (group->names [group->key_count] == NULL);
        free (buf);
    }
    //  Reading: values, types, ranges, unknown keys, all errors at once
    assert (s_errors ("connection = { keepalive_interval = \"10s\"; tunnel_sends = false; };",
                      &bus_cfg_connection_group, &c, BUS_CFG_CHECK_KEYS, NULL, verbose) == 0);
    assert (c.keepalive_interval_ms == 10000 && !c.tunnel_sends && c.direct_connect);
    assert (s_errors ("connection = {\n keepalive_intervall = \"10s\";\n direct_connect = 3;\n"
                      " connect_timeout = \"0s\"; };", &bus_cfg_connection_group, &c,
                      BUS_CFG_CHECK_KEYS, "t.cfg:2: connection.keepalive_intervall: unknown setting", verbose) == 3);
    assert (c.connect_timeout_ms == 30000 && c.direct_connect);
    assert (s_errors ("connection = 5;", &bus_cfg_connection_group, &c, BUS_CFG_CHECK_KEYS,
                      "expected a group", verbose) == 1);
    //  A reader of one key of someone else's group says nothing about the rest
    char err [256];
    bus_config_t *config = bus_config_load_string ("connection = { keepalive_interval = 7; typo = 1; };\n",
                                                   "t.cfg", err, sizeof err);
    assert (config);
    static const char *const only [] = { "keepalive_interval", NULL };
    s_probe_t probe = { 0 };
    assert (bus_cfg_read (config, &bus_cfg_connection_group, NULL, &c, 0, only, s_probe, &probe) == 1);
    assert (c.keepalive_interval_ms == 7000 && probe.calls == 1);
    assert (bus_config_error_count (config) == 0);
    bus_config_destroy (&config);
    //  A choice that is not the owner's to check is checked here
    assert (bus_cfg_key (&bus_cfg_device_group, "type")->flags & BUS_CFG_OWNER_CHECKS);
    assert (bus_cfg_key (&bus_cfg_device_group, "nonsense") == NULL);
    //  Defaults render as a user writes them
    char text [64];
    bus_cfg_default_text (bus_cfg_key (&bus_cfg_connection_group, "keepalive_interval"), text, sizeof text);
    assert (strcmp (text, "\"25s\"") == 0);
    //  The default file parses and passes its own checks
    char *dump = NULL;
    size_t dump_size = 0;
    FILE *mem = open_memstream (&dump, &dump_size);
    assert (mem);
    bus_cfg_print_default (mem, NULL);
    fclose (mem);
    config = bus_config_load_string (dump, "default.cfg", err, sizeof err);
    if (!config)
        printf ("%s\n%s\n", err, dump);
    assert (config);
    for (size_t g = 0; g < bus_cfg_group_count; g++) {
        bool required = false;
        for (size_t i = 0; i < bus_cfg_groups [g]->key_count; i++)
            required = required || (bus_cfg_groups [g]->keys [i].flags & BUS_CFG_REQUIRED);
        if (bus_cfg_groups [g]->list || (required && *bus_cfg_groups [g]->path))
            continue;
        char *buf = calloc (1, bus_cfg_groups [g]->size);
        assert (buf);
        bus_cfg_read (config, bus_cfg_groups [g], NULL, buf, BUS_CFG_CHECK_KEYS, NULL, NULL, NULL);
        free (buf);
    }
    assert (bus_config_error_count (config) == 0);
    bus_config_destroy (&config);
    free (dump);
    printf ("OK\n");
}
