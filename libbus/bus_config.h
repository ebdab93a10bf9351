/*  bus_config: configuration files for bifrostd and every service.

    libconfig syntax, plus two things users of tinc and coturn expect:
    - `${VAR}` inside any string is replaced by the environment variable VAR, so
      secrets stay out of files (`$$` is a literal `$`); an unset VAR is an error.
    - durations are written "250ms", "30s", "5m", "1h" (a bare integer is seconds).
    Every getter validates; a bad value is recorded as "<file>:<line>: <path>: <what
    was expected>" and the getter returns the default, so a caller reads everything,
    then reports all errors at once and starts nothing (exit 78). */
#ifndef BUS_CONFIG_H_INCLUDED
#define BUS_CONFIG_H_INCLUDED

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BUS_EXIT_CONFIG 78      //  EX_CONFIG: permanent failure, do not restart

typedef struct _bus_config_t bus_config_t;

//  Parses a file. On a syntax error returns NULL and "<file>:<line>: <error>" in err.
bus_config_t *bus_config_load (const char *path, char *err, size_t errsize);
//  Same from text (name is used in messages).
bus_config_t *bus_config_load_string (const char *text, const char *name, char *err, size_t errsize);
void bus_config_destroy (bus_config_t **self_p);

//  The file name given at load.
const char *bus_config_file (bus_config_t *self);
//  The libconfig tree, for lists and groups.
config_t *bus_config_raw (bus_config_t *self);

//  Typed getters; `path` is a libconfig path ("device.mtu", "services.[0].name").
//  A missing setting gives the default without an error; a setting of the wrong
//  type or out of range records an error and gives the default.
//  Strings are returned with ${VAR} expanded; the memory belongs to self.
const char *bus_config_string (bus_config_t *self, const char *path, const char *def);
int64_t bus_config_int (bus_config_t *self, const char *path, int64_t def, int64_t min, int64_t max);
bool bus_config_bool (bus_config_t *self, const char *path, bool def);
int64_t bus_config_duration_ms (bus_config_t *self, const char *path, int64_t def_ms,
                                int64_t min_ms, int64_t max_ms);
//  One of `choices` (NULL-terminated); returns its index, or def_index on error/missing.
int bus_config_choice (bus_config_t *self, const char *path, const char *const *choices, int def_index);

//  Same getters relative to a setting (a group inside a list, for instance).
const char *bus_config_setting_string (bus_config_t *self, config_setting_t *group, const char *name, const char *def);
int64_t bus_config_setting_int (bus_config_t *self, config_setting_t *group, const char *name,
                                int64_t def, int64_t min, int64_t max);
bool bus_config_setting_bool (bus_config_t *self, config_setting_t *group, const char *name, bool def);
int64_t bus_config_setting_duration_ms (bus_config_t *self, config_setting_t *group, const char *name,
                                        int64_t def_ms, int64_t min_ms, int64_t max_ms);
int bus_config_setting_choice (bus_config_t *self, config_setting_t *group, const char *name,
                               const char *const *choices, int def_index);

//  The value of a setting itself (a list element, for instance), expanded; NULL
//  setting gives def without an error.
const char *bus_config_value_string (bus_config_t *self, config_setting_t *setting, const char *def);
//  Records "unknown setting (expected one of ...)" for every member of group whose
//  name is not in allowed (NULL-terminated), so typos never pass silently. Returns
//  the number of unknown members.
size_t bus_config_check_keys (bus_config_t *self, config_setting_t *group, const char *const *allowed);
//  Writes the path of a setting as used in messages ("services.[1].restart").
size_t bus_config_setting_path (config_setting_t *setting, char *buf, size_t size);

//  Expands ${VAR} in text into a malloc'd string; NULL with err when a variable is unset
//  or the syntax is broken.
char *bus_config_expand (const char *text, char *err, size_t errsize);
//  Writes ms the way a user writes a duration ("250ms", "30s", "5m", "1h").
void bus_config_format_duration (int64_t ms, char *buf, size_t size);
//  Parses a duration; 0 or -1.
int bus_config_parse_duration (const char *text, int64_t *ms);

//  Records an error against a setting (its file and line are added) or, with NULL, the file.
void bus_config_error (bus_config_t *self, config_setting_t *setting, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
size_t bus_config_error_count (bus_config_t *self);
//  Prints every error, one per line, to out; returns the count.
size_t bus_config_report (bus_config_t *self, FILE *out);
//  The index-th recorded error line, or NULL.
const char *bus_config_error_text (bus_config_t *self, size_t index);

void bus_config_test (bool verbose);
#endif
