/*  bus_log: one line per event on stderr, "<time> <level> <instance>: <text>",
    so the supervisor's log interleaves every child readably. Secrets never go
    through here: log names and sizes, not key material or tokens. */
#ifndef BUS_LOG_H_INCLUDED
#define BUS_LOG_H_INCLUDED

#include <stdbool.h>

typedef enum { BUS_LOG_ERROR = 0, BUS_LOG_WARN, BUS_LOG_INFO, BUS_LOG_DEBUG } bus_log_level_t;

//  Sets the name printed on every line (default: program name) and the level
//  (default INFO, or BIFROST_LOG_LEVEL=error|warn|info|debug from the environment).
void bus_log_init (const char *ident);
void bus_log_set_level (bus_log_level_t level);
bus_log_level_t bus_log_level (void);
//  Parses "error", "warn", "info", "debug"; -1 if unknown.
int bus_log_level_parse (const char *text);

void bus_log (bus_log_level_t level, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
#define bus_error(...)  bus_log (BUS_LOG_ERROR, __VA_ARGS__)
#define bus_warn(...)   bus_log (BUS_LOG_WARN, __VA_ARGS__)
#define bus_info(...)   bus_log (BUS_LOG_INFO, __VA_ARGS__)
#define bus_debug(...)  bus_log (BUS_LOG_DEBUG, __VA_ARGS__)

//  Logs one line a library wrote through its own log hook ("who: line"), its
//  trailing newlines cut: the libwebsockets hooks of discovery, nat and relay
void bus_log_line (bus_log_level_t level, const char *who, const char *line);

//  Formats an error message into err (when err is not NULL) and returns -1, so a
//  validator can `return bus_errf (err, errsize, "field '%s': ...", name);`.
#include <stddef.h>
int bus_errf (char *err, size_t errsize, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

void bus_log_test (bool verbose);
#endif
