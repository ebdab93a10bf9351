/*  bus_config: libconfig files with ${VAR} expansion, durations and errors that
    name the file, the line and what was expected.

    Getters never fail: a bad value is recorded and the default is returned, so
    a program reads its whole configuration in one pass and then reports every
    problem at once (bus_config_report) instead of stopping at the first. */
#include "bus_config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_EXPAND_MAX    65536       //  bound on one expanded string
#define S_ERRORS_MAX    200         //  a broken file must not flood the terminal

struct _bus_config_t {
    config_t cfg;
    char *file;                     //  name used in messages
    char **errors;
    size_t error_count;
    size_t error_alloc;
    size_t errors_dropped;
    char **strings;                 //  expanded strings handed out, owned here
    size_t string_count;
    size_t string_alloc;
};

//  Grows a pointer array by one slot; aborts on memory exhaustion (a resource
//  failure: the supervisor restarts us).
static void
s_push (char ***array, size_t *count, size_t *alloc, char *item)
{
    if (*count == *alloc) {
        size_t n = *alloc ? *alloc * 2 : 8;
        char **grown = realloc (*array, n * sizeof (char *));
        assert (grown);
        *array = grown;
        *alloc = n;
    }
    (*array) [(*count)++] = item;
}

static bus_config_t *
s_new (const char *name)
{
    bus_config_t *self = calloc (1, sizeof *self);
    assert (self);
    self->file = strdup (name ? name : "(config)");
    assert (self->file);
    config_init (&self->cfg);
    return self;
}

bus_config_t *
bus_config_load (const char *path, char *err, size_t errsize)
{
    //  Check readability first: libconfig only says "file I/O error"
    FILE *file = fopen (path, "r");
    if (!file) {
        snprintf (err, errsize, "%s: cannot read: %s", path, strerror (errno));
        return NULL;
    }
    fclose (file);
    bus_config_t *self = s_new (path);
    //  @include "x.cfg" is relative to the including file's directory
    char *dir = strdup (path);
    assert (dir);
    char *slash = strrchr (dir, '/');
    if (slash) {
        *slash = 0;
        config_set_include_dir (&self->cfg, *dir ? dir : "/");
    }
    free (dir);
    if (config_read_file (&self->cfg, path) != CONFIG_TRUE) {
        const char *efile = config_error_file (&self->cfg);
        snprintf (err, errsize, "%s:%d: %s", efile ? efile : path,
                  config_error_line (&self->cfg), config_error_text (&self->cfg));
        bus_config_destroy (&self);
        return NULL;
    }
    return self;
}

bus_config_t *
bus_config_load_string (const char *text, const char *name, char *err, size_t errsize)
{
    bus_config_t *self = s_new (name);
    if (config_read_string (&self->cfg, text) != CONFIG_TRUE) {
        snprintf (err, errsize, "%s:%d: %s", self->file,
                  config_error_line (&self->cfg), config_error_text (&self->cfg));
        bus_config_destroy (&self);
        return NULL;
    }
    return self;
}

void
bus_config_destroy (bus_config_t **self_p)
{
    assert (self_p);
    bus_config_t *self = *self_p;
    if (!self)
        return;
    config_destroy (&self->cfg);
    for (size_t i = 0; i < self->error_count; i++)
        free (self->errors [i]);
    free (self->errors);
    for (size_t i = 0; i < self->string_count; i++)
        free (self->strings [i]);
    free (self->strings);
    free (self->file);
    free (self);
    *self_p = NULL;
}

const char *bus_config_file (bus_config_t *self) { return self->file; }
config_t *bus_config_raw (bus_config_t *self) { return &self->cfg; }

//  ---------------------------------------------------------------------------
//  Paths of settings, for messages: "services.[1].restart"

size_t
bus_config_setting_path (config_setting_t *setting, char *buf, size_t size)
{
    assert (size > 0);
    //  Collect the chain from the setting up to (not including) the root
    config_setting_t *chain [32];
    int depth = 0;
    for (config_setting_t *s = setting; s && !config_setting_is_root (s) && depth < 32;
         s = config_setting_parent (s))
        chain [depth++] = s;
    size_t len = 0;
    buf [0] = 0;
    for (int i = depth - 1; i >= 0; i--) {
        const char *name = config_setting_name (chain [i]);
        int n;
        if (name)
            n = snprintf (buf + len, size - len, "%s%s", len ? "." : "", name);
        else
            n = snprintf (buf + len, size - len, "%s[%d]", len ? "." : "",
                          config_setting_index (chain [i]));
        if (n < 0 || (size_t) n >= size - len) {
            len = size - 1;
            break;
        }
        len += n;
    }
    return len;
}

static void
s_add_error (bus_config_t *self, char *line)
{
    if (self->error_count >= S_ERRORS_MAX) {
        self->errors_dropped++;
        free (line);
        return;
    }
    s_push (&self->errors, &self->error_count, &self->error_alloc, line);
}

static void
s_verror (bus_config_t *self, config_setting_t *setting, const char *fmt, va_list ap)
{
    char what [512];
    vsnprintf (what, sizeof what, fmt, ap);
    char line [1024];
    if (setting && !config_setting_is_root (setting)) {
        const char *file = config_setting_source_file (setting);
        char path [256];
        bus_config_setting_path (setting, path, sizeof path);
        snprintf (line, sizeof line, "%s:%u: %s: %s", file ? file : self->file,
                  (unsigned) config_setting_source_line (setting), path, what);
    }
    else
        snprintf (line, sizeof line, "%s: %s", self->file, what);
    char *copy = strdup (line);
    assert (copy);
    s_add_error (self, copy);
}

void
bus_config_error (bus_config_t *self, config_setting_t *setting, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    s_verror (self, setting, fmt, ap);
    va_end (ap);
}

size_t
bus_config_error_count (bus_config_t *self)
{
    return self->error_count + self->errors_dropped;
}

size_t
bus_config_report (bus_config_t *self, FILE *out)
{
    for (size_t i = 0; i < self->error_count; i++)
        fprintf (out, "%s\n", self->errors [i]);
    if (self->errors_dropped)
        fprintf (out, "%s: %zu more errors not shown\n", self->file, self->errors_dropped);
    return bus_config_error_count (self);
}

const char *
bus_config_error_text (bus_config_t *self, size_t index)
{
    return index < self->error_count ? self->errors [index] : NULL;
}

//  ---------------------------------------------------------------------------
//  ${VAR} expansion and durations

char *
bus_config_expand (const char *text, char *err, size_t errsize)
{
    size_t alloc = strlen (text) + 1, len = 0;
    if (alloc > S_EXPAND_MAX) {
        snprintf (err, errsize, "string longer than %d bytes", S_EXPAND_MAX);
        return NULL;
    }
    char *out = malloc (alloc);
    assert (out);
    const char *p = text;
    while (*p) {
        const char *piece = p;
        size_t piece_len = 1;
        char name [128];
        if (p [0] == '$' && p [1] == '$') {
            piece_len = 1;          //  "$$" is one literal '$'
            p += 2;
        }
        else
        if (p [0] == '$' && p [1] == '{') {
            const char *start = p + 2;
            const char *end = start;
            while (*end && *end != '}')
                end++;
            size_t n = end - start;
            bool valid = *end == '}' && n > 0 && n < sizeof name
                      && (isalpha ((unsigned char) *start) || *start == '_');
            for (size_t i = 0; valid && i < n; i++)
                valid = isalnum ((unsigned char) start [i]) || start [i] == '_';
            if (!valid) {
                snprintf (err, errsize, "bad variable reference at \"%.*s\" "
                          "(expected ${NAME} with NAME of letters, digits and _, or $$ for $)",
                          (int) (*end == '}' ? end - p + 1 : (int) strnlen (p, 40)), p);
                free (out);
                return NULL;
            }
            memcpy (name, start, n);
            name [n] = 0;
            piece = getenv (name);
            if (!piece) {
                snprintf (err, errsize, "environment variable %s is not set", name);
                free (out);
                return NULL;
            }
            piece_len = strlen (piece);
            p = end + 1;
        }
        else
            p++;
        if (len + piece_len + 1 > S_EXPAND_MAX) {
            snprintf (err, errsize, "string longer than %d bytes after ${VAR} expansion",
                      S_EXPAND_MAX);
            free (out);
            return NULL;
        }
        if (len + piece_len + 1 > alloc) {
            alloc = (len + piece_len + 1) * 2;
            char *grown = realloc (out, alloc);
            assert (grown);
            out = grown;
        }
        memcpy (out + len, piece, piece_len);
        len += piece_len;
    }
    out [len] = 0;
    return out;
}

int
bus_config_parse_duration (const char *text, int64_t *ms)
{
    if (!text)
        return -1;
    while (isspace ((unsigned char) *text))
        text++;
    if (!isdigit ((unsigned char) *text))
        return -1;
    errno = 0;
    char *end;
    unsigned long long value = strtoull (text, &end, 10);
    if (errno)
        return -1;
    while (isspace ((unsigned char) *end))
        end++;
    int64_t unit;
    if (*end == 0 || strcmp (end, "s") == 0)
        unit = 1000;
    else if (strcmp (end, "ms") == 0)
        unit = 1;
    else if (strcmp (end, "m") == 0)
        unit = 60 * 1000;
    else if (strcmp (end, "h") == 0)
        unit = 3600 * 1000;
    else if (strcmp (end, "d") == 0)
        unit = 24 * 3600 * 1000;
    else
        return -1;
    if (value > (unsigned long long) (INT64_MAX / unit))
        return -1;
    *ms = (int64_t) value * unit;
    return 0;
}

//  ---------------------------------------------------------------------------
//  Getters on settings

static const char *
s_keep (bus_config_t *self, char *text)
{
    s_push (&self->strings, &self->string_count, &self->string_alloc, text);
    return text;
}

const char *
bus_config_value_string (bus_config_t *self, config_setting_t *setting, const char *def)
{
    if (!setting)
        return def;
    if (config_setting_type (setting) != CONFIG_TYPE_STRING) {
        bus_config_error (self, setting, "expected a string");
        return def;
    }
    char err [256];
    char *text = bus_config_expand (config_setting_get_string (setting), err, sizeof err);
    if (!text) {
        bus_config_error (self, setting, "%s", err);
        return def;
    }
    return s_keep (self, text);
}

static bool
s_is_int (config_setting_t *setting)
{
    int type = config_setting_type (setting);
    return type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64;
}

static int64_t
s_value_int (bus_config_t *self, config_setting_t *setting, int64_t def, int64_t min, int64_t max)
{
    if (!setting)
        return def;
    if (!s_is_int (setting)) {
        bus_config_error (self, setting, "expected an integer from %" PRId64 " to %" PRId64, min, max);
        return def;
    }
    int64_t value = config_setting_get_int64 (setting);
    if (value < min || value > max) {
        bus_config_error (self, setting, "expected an integer from %" PRId64 " to %" PRId64
                          ", got %" PRId64, min, max, value);
        return def;
    }
    return value;
}

static bool
s_value_bool (bus_config_t *self, config_setting_t *setting, bool def)
{
    if (!setting)
        return def;
    if (config_setting_type (setting) != CONFIG_TYPE_BOOL) {
        bus_config_error (self, setting, "expected true or false");
        return def;
    }
    return config_setting_get_bool (setting) != 0;
}

//  Renders a duration the way a user writes it, for messages and defaults.
void
bus_config_format_duration (int64_t ms, char *buf, size_t size)
{
    if (ms % (3600 * 1000) == 0 && ms)
        snprintf (buf, size, "%" PRId64 "h", ms / (3600 * 1000));
    else if (ms % (60 * 1000) == 0 && ms)
        snprintf (buf, size, "%" PRId64 "m", ms / (60 * 1000));
    else if (ms % 1000 == 0)
        snprintf (buf, size, "%" PRId64 "s", ms / 1000);
    else
        snprintf (buf, size, "%" PRId64 "ms", ms);
}

static int64_t
s_value_duration (bus_config_t *self, config_setting_t *setting, int64_t def, int64_t min, int64_t max)
{
    if (!setting)
        return def;
    int64_t ms = 0;
    if (s_is_int (setting)) {
        int64_t seconds = config_setting_get_int64 (setting);
        if (seconds < 0 || seconds > INT64_MAX / 1000) {
            bus_config_error (self, setting, "expected a duration such as \"250ms\", \"30s\", \"5m\" or \"1h\"");
            return def;
        }
        ms = seconds * 1000;
    }
    else
    if (config_setting_type (setting) == CONFIG_TYPE_STRING) {
        char err [256];
        char *text = bus_config_expand (config_setting_get_string (setting), err, sizeof err);
        if (!text) {
            bus_config_error (self, setting, "%s", err);
            return def;
        }
        int rc = bus_config_parse_duration (text, &ms);
        if (rc) {
            bus_config_error (self, setting, "expected a duration such as \"250ms\", \"30s\", "
                              "\"5m\" or \"1h\", got \"%s\"", text);
            free (text);
            return def;
        }
        free (text);
    }
    else {
        bus_config_error (self, setting, "expected a duration such as \"250ms\", \"30s\", \"5m\" or \"1h\"");
        return def;
    }
    if (ms < min || ms > max) {
        char a [32], b [32], c [32];
        bus_config_format_duration (min, a, sizeof a);
        bus_config_format_duration (max, b, sizeof b);
        bus_config_format_duration (ms, c, sizeof c);
        bus_config_error (self, setting, "expected a duration from %s to %s, got %s", a, b, c);
        return def;
    }
    return ms;
}

static int
s_value_choice (bus_config_t *self, config_setting_t *setting, const char *const *choices, int def_index)
{
    if (!setting)
        return def_index;
    const char *text = config_setting_type (setting) == CONFIG_TYPE_STRING
                     ? config_setting_get_string (setting) : NULL;
    for (int i = 0; text && choices [i]; i++)
        if (strcmp (text, choices [i]) == 0)
            return i;
    char list [400] = "";
    size_t len = 0;
    for (int i = 0; choices [i] && len < sizeof list; i++)
        len += snprintf (list + len, sizeof list - len, "%s%s", i ? ", " : "", choices [i]);
    bus_config_error (self, setting, "expected one of %s", list);
    return def_index;
}

//  Member of a group, or NULL (also when group is NULL or not a group).
static config_setting_t *
s_member (config_setting_t *group, const char *name)
{
    if (!group || config_setting_type (group) != CONFIG_TYPE_GROUP)
        return NULL;
    return config_setting_get_member (group, name);
}

const char *
bus_config_string (bus_config_t *self, const char *path, const char *def)
{
    return bus_config_value_string (self, config_lookup (&self->cfg, path), def);
}

int64_t
bus_config_int (bus_config_t *self, const char *path, int64_t def, int64_t min, int64_t max)
{
    return s_value_int (self, config_lookup (&self->cfg, path), def, min, max);
}

bool
bus_config_bool (bus_config_t *self, const char *path, bool def)
{
    return s_value_bool (self, config_lookup (&self->cfg, path), def);
}

int64_t
bus_config_duration_ms (bus_config_t *self, const char *path, int64_t def_ms, int64_t min_ms, int64_t max_ms)
{
    return s_value_duration (self, config_lookup (&self->cfg, path), def_ms, min_ms, max_ms);
}

int
bus_config_choice (bus_config_t *self, const char *path, const char *const *choices, int def_index)
{
    return s_value_choice (self, config_lookup (&self->cfg, path), choices, def_index);
}

const char *
bus_config_setting_string (bus_config_t *self, config_setting_t *group, const char *name, const char *def)
{
    return bus_config_value_string (self, s_member (group, name), def);
}

int64_t
bus_config_setting_int (bus_config_t *self, config_setting_t *group, const char *name,
                        int64_t def, int64_t min, int64_t max)
{
    return s_value_int (self, s_member (group, name), def, min, max);
}

bool
bus_config_setting_bool (bus_config_t *self, config_setting_t *group, const char *name, bool def)
{
    return s_value_bool (self, s_member (group, name), def);
}

int64_t
bus_config_setting_duration_ms (bus_config_t *self, config_setting_t *group, const char *name,
                                int64_t def_ms, int64_t min_ms, int64_t max_ms)
{
    return s_value_duration (self, s_member (group, name), def_ms, min_ms, max_ms);
}

int
bus_config_setting_choice (bus_config_t *self, config_setting_t *group, const char *name,
                           const char *const *choices, int def_index)
{
    return s_value_choice (self, s_member (group, name), choices, def_index);
}

size_t
bus_config_check_keys (bus_config_t *self, config_setting_t *group, const char *const *allowed)
{
    if (!group || config_setting_type (group) != CONFIG_TYPE_GROUP)
        return 0;
    size_t unknown = 0;
    int count = config_setting_length (group);
    for (int i = 0; i < count; i++) {
        config_setting_t *member = config_setting_get_elem (group, i);
        const char *name = config_setting_name (member);
        bool known = false;
        for (int k = 0; name && allowed [k] && !known; k++)
            known = strcmp (name, allowed [k]) == 0;
        if (!known) {
            char list [400] = "";
            size_t len = 0;
            for (int k = 0; allowed [k] && len < sizeof list; k++)
                len += snprintf (list + len, sizeof list - len, "%s%s", k ? ", " : "", allowed [k]);
            bus_config_error (self, member, "unknown setting (expected one of %s)", list);
            unknown++;
        }
    }
    return unknown;
}

//  ---------------------------------------------------------------------------
//  Self test

static bool
s_has_error (bus_config_t *self, const char *needle)
{
    for (size_t i = 0; i < self->error_count; i++)
        if (strstr (self->errors [i], needle))
            return true;
    return false;
}

void
bus_config_test (bool verbose)
{
    char err [512];
    //  Durations
    int64_t ms = 0;
    assert (bus_config_parse_duration ("250ms", &ms) == 0 && ms == 250);
    assert (bus_config_parse_duration ("30s", &ms) == 0 && ms == 30000);
    assert (bus_config_parse_duration ("5m", &ms) == 0 && ms == 300000);
    assert (bus_config_parse_duration ("1h", &ms) == 0 && ms == 3600000);
    assert (bus_config_parse_duration ("2d", &ms) == 0 && ms == 172800000);
    assert (bus_config_parse_duration ("7", &ms) == 0 && ms == 7000);
    assert (bus_config_parse_duration ("0", &ms) == 0 && ms == 0);
    assert (bus_config_parse_duration ("", &ms) == -1);
    assert (bus_config_parse_duration ("s", &ms) == -1);
    assert (bus_config_parse_duration ("-1s", &ms) == -1);
    assert (bus_config_parse_duration ("5 parsecs", &ms) == -1);
    assert (bus_config_parse_duration ("1.5s", &ms) == -1);
    assert (bus_config_parse_duration ("99999999999999999999s", &ms) == -1);
    assert (bus_config_parse_duration ("9999999999999999h", &ms) == -1);
    assert (bus_config_parse_duration (NULL, &ms) == -1);

    //  Expansion
    setenv ("BUS_CONFIG_TEST_A", "alpha", 1);
    unsetenv ("BUS_CONFIG_TEST_UNSET");
    char *text = bus_config_expand ("x${BUS_CONFIG_TEST_A}y$$z$", err, sizeof err);
    assert (text && strcmp (text, "xalphay$z$") == 0);
    free (text);
    text = bus_config_expand ("", err, sizeof err);
    assert (text && *text == 0);
    free (text);
    assert (!bus_config_expand ("${BUS_CONFIG_TEST_UNSET}", err, sizeof err));
    assert (strstr (err, "BUS_CONFIG_TEST_UNSET is not set"));
    assert (!bus_config_expand ("${BUS_CONFIG_TEST_A", err, sizeof err));
    assert (strstr (err, "bad variable reference"));
    assert (!bus_config_expand ("${}", err, sizeof err));
    assert (!bus_config_expand ("${1X}", err, sizeof err));
    assert (!bus_config_expand ("${A-B}", err, sizeof err));
    //  Expansion is bounded
    char *big = malloc (S_EXPAND_MAX / 2 + 1);
    assert (big);
    memset (big, 'b', S_EXPAND_MAX / 2);
    big [S_EXPAND_MAX / 2] = 0;
    setenv ("BUS_CONFIG_TEST_BIG", big, 1);
    free (big);
    assert (!bus_config_expand ("${BUS_CONFIG_TEST_BIG}${BUS_CONFIG_TEST_BIG}x", err, sizeof err));
    assert (strstr (err, "longer than"));
    unsetenv ("BUS_CONFIG_TEST_BIG");

    //  Syntax errors carry the line
    bus_config_t *config = bus_config_load_string ("a = 1;\nb = ;\n", "t.cfg", err, sizeof err);
    assert (!config);
    assert (strncmp (err, "t.cfg:2: ", 9) == 0);
    config = bus_config_load ("/nonexistent/bus-config-test.cfg", err, sizeof err);
    assert (!config);
    assert (strstr (err, "cannot read"));

    //  Getters and their errors
    const char *text_cfg =
        "name = \"n-${BUS_CONFIG_TEST_A}\";\n"          //  1
        "count = 7;\n"                                  //  2
        "big = 70000000000L;\n"                         //  3
        "flag = true;\n"                                //  4
        "wait = \"250ms\";\n"                           //  5
        "wait2 = 3;\n"                                  //  6
        "mode = \"fast\";\n"                            //  7
        "bad_int = \"seven\";\n"                        //  8
        "bad_bool = 1;\n"                               //  9
        "bad_wait = \"5 fortnights\";\n"                //  10
        "bad_mode = \"warp\";\n"                        //  11
        "unset = \"${BUS_CONFIG_TEST_UNSET}\";\n"       //  12
        "grp: { inner = 5; list = ( { k = \"v\"; }, { k = 3; } ); };\n"   //  13
        "strs = [\"a\", \"b\"];\n";                     //  14
    config = bus_config_load_string (text_cfg, "t.cfg", err, sizeof err);
    assert (config);
    assert (strcmp (bus_config_file (config), "t.cfg") == 0);
    assert (bus_config_raw (config));
    assert (strcmp (bus_config_string (config, "name", "d"), "n-alpha") == 0);
    assert (strcmp (bus_config_string (config, "missing", "d"), "d") == 0);
    assert (bus_config_int (config, "count", 1, 0, 10) == 7);
    assert (bus_config_int (config, "big", 1, 0, INT64_MAX) == 70000000000LL);
    assert (bus_config_int (config, "missing", 42, 0, 100) == 42);
    assert (bus_config_bool (config, "flag", false) == true);
    assert (bus_config_duration_ms (config, "wait", 1, 0, 10000) == 250);
    assert (bus_config_duration_ms (config, "wait2", 1, 0, 10000) == 3000);
    static const char *const modes [] = { "slow", "fast", NULL };
    assert (bus_config_choice (config, "mode", modes, 0) == 1);
    assert (bus_config_choice (config, "missing", modes, 0) == 0);
    assert (bus_config_error_count (config) == 0);

    assert (bus_config_int (config, "bad_int", 9, 0, 10) == 9);
    assert (s_has_error (config, "t.cfg:8: bad_int: expected an integer from 0 to 10"));
    assert (bus_config_int (config, "count", 9, 0, 5) == 9);
    assert (s_has_error (config, "t.cfg:2: count: expected an integer from 0 to 5, got 7"));
    assert (bus_config_bool (config, "bad_bool", false) == false);
    assert (s_has_error (config, "t.cfg:9: bad_bool: expected true or false"));
    assert (bus_config_duration_ms (config, "bad_wait", 5, 0, 10000) == 5);
    assert (s_has_error (config, "t.cfg:10: bad_wait: expected a duration"));
    assert (bus_config_duration_ms (config, "wait", 5, 1000, 10000) == 5);
    assert (s_has_error (config, "t.cfg:5: wait: expected a duration from 1s to 10s, got 250ms"));
    assert (bus_config_duration_ms (config, "flag", 5, 0, 10000) == 5);
    assert (bus_config_choice (config, "bad_mode", modes, 0) == 0);
    assert (s_has_error (config, "t.cfg:11: bad_mode: expected one of slow, fast"));
    assert (bus_config_choice (config, "count", modes, 1) == 1);
    assert (strcmp (bus_config_string (config, "unset", "d"), "d") == 0);
    assert (s_has_error (config, "t.cfg:12: unset: environment variable BUS_CONFIG_TEST_UNSET is not set"));
    assert (strcmp (bus_config_string (config, "count", "d"), "d") == 0);
    assert (s_has_error (config, "t.cfg:2: count: expected a string"));

    //  Relative getters and paths inside lists
    config_setting_t *grp = config_lookup (bus_config_raw (config), "grp");
    assert (bus_config_setting_int (config, grp, "inner", 0, 0, 10) == 5);
    assert (bus_config_setting_int (config, grp, "missing", 4, 0, 10) == 4);
    assert (bus_config_setting_int (config, NULL, "inner", 4, 0, 10) == 4);
    config_setting_t *list = config_setting_get_member (grp, "list");
    config_setting_t *second = config_setting_get_elem (list, 1);
    assert (strcmp (bus_config_setting_string (config, config_setting_get_elem (list, 0), "k", "d"), "v") == 0);
    assert (strcmp (bus_config_setting_string (config, second, "k", "d"), "d") == 0);
    assert (s_has_error (config, "t.cfg:13: grp.list.[1].k: expected a string"));
    assert (bus_config_setting_bool (config, grp, "inner", true) == true);
    assert (bus_config_setting_duration_ms (config, grp, "inner", 0, 0, 100000) == 5000);
    assert (bus_config_setting_choice (config, second, "k", modes, 1) == 1);
    char path [64];
    bus_config_setting_path (config_setting_get_member (second, "k"), path, sizeof path);
    assert (strcmp (path, "grp.list.[1].k") == 0);
    config_setting_t *strs = config_lookup (bus_config_raw (config), "strs");
    assert (strcmp (bus_config_value_string (config, config_setting_get_elem (strs, 1), "d"), "b") == 0);

    //  Unknown keys
    static const char *const known [] = { "inner", NULL };
    size_t before = bus_config_error_count (config);
    assert (bus_config_check_keys (config, grp, known) == 1);
    assert (s_has_error (config, "t.cfg:13: grp.list: unknown setting (expected one of inner)"));
    assert (bus_config_error_count (config) == before + 1);
    bus_config_error (config, NULL, "whole file %d", 1);
    assert (s_has_error (config, "t.cfg: whole file 1"));
    assert (bus_config_error_text (config, 0));
    assert (!bus_config_error_text (config, 1000));

    FILE *devnull = fopen ("/dev/null", "w");
    assert (devnull);
    assert (bus_config_report (config, devnull) == bus_config_error_count (config));
    fclose (devnull);
    if (verbose)
        bus_config_report (config, stdout);
    bus_config_destroy (&config);
    assert (config == NULL);
    bus_config_destroy (&config);

    //  Errors are bounded
    config = bus_config_load_string ("x = 1;", "t.cfg", err, sizeof err);
    assert (config);
    for (int i = 0; i < S_ERRORS_MAX + 10; i++)
        bus_config_error (config, NULL, "e%d", i);
    assert (bus_config_error_count (config) == S_ERRORS_MAX + 10);
    bus_config_destroy (&config);

    //  A real file with @include relative to it
    char dir [] = "/tmp/bus-config-test-XXXXXX";
    assert (mkdtemp (dir));
    char main_path [128], inc_path [128];
    snprintf (main_path, sizeof main_path, "%s/main.cfg", dir);
    snprintf (inc_path, sizeof inc_path, "%s/inc.cfg", dir);
    FILE *file = fopen (inc_path, "w");
    assert (file);
    fprintf (file, "\nincluded = \"yes\";\nbad = \"x\";\n");
    fclose (file);
    file = fopen (main_path, "w");
    assert (file);
    fprintf (file, "top = 1;\n@include \"inc.cfg\"\n");
    fclose (file);
    config = bus_config_load (main_path, err, sizeof err);
    assert (config);
    assert (strcmp (bus_config_string (config, "included", "no"), "yes") == 0);
    assert (bus_config_int (config, "bad", 0, 0, 1) == 0);
    //  libconfig names an included file as the @include directive wrote it
    assert (s_has_error (config, "inc.cfg:3: bad: expected an integer"));
    bus_config_destroy (&config);
    unlink (main_path);
    unlink (inc_path);
    rmdir (dir);
    if (verbose)
        printf ("bus_config: ok\n");
}
