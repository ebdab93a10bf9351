/*  bus_log: stderr logging with a per-process ident and a level. */
#include "bus_log.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char s_ident [64] = "bifrost";
static bus_log_level_t s_level = BUS_LOG_INFO;
static const char *s_names [] = { "error", "warn", "info", "debug" };

int
bus_log_level_parse (const char *text)
{
    for (int i = 0; text && i < 4; i++)
        if (strcmp (text, s_names [i]) == 0)
            return i;
    return -1;
}

void
bus_log_init (const char *ident)
{
    if (ident)
        snprintf (s_ident, sizeof s_ident, "%s", ident);
    int level = bus_log_level_parse (getenv ("BIFROST_LOG_LEVEL"));
    if (level >= 0)
        s_level = (bus_log_level_t) level;
}

void bus_log_set_level (bus_log_level_t level) { s_level = level; }
bus_log_level_t bus_log_level (void) { return s_level; }

void
bus_log (bus_log_level_t level, const char *fmt, ...)
{
    if (level > s_level)
        return;
    int saved_errno = errno;
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);
    char line [1024];
    int n = snprintf (line, sizeof line, "%02d:%02d:%02d.%03ld %-5s %s[%d]: ",
                      tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                      s_names [level], s_ident, (int) getpid ());
    va_list ap;
    va_start (ap, fmt);
    if (n > 0 && (size_t) n < sizeof line)
        n += vsnprintf (line + n, sizeof line - n, fmt, ap);
    va_end (ap);
    if (n < 0)
        n = 0;
    if ((size_t) n >= sizeof line - 1)
        n = sizeof line - 2;
    line [n++] = '\n';
    //  One write per line, so lines from many processes do not interleave
    ssize_t rc = write (STDERR_FILENO, line, n);
    (void) rc;
    errno = saved_errno;
}

void
bus_log_line (bus_log_level_t level, const char *who, const char *line)
{
    int len = (int) strcspn (line, "\r\n");
    bus_log (level, "%s: %.*s", who, len > 300 ? 300 : len, line);
}

int
bus_errf (char *err, size_t errsize, const char *fmt, ...)
{
    if (err && errsize) {
        va_list ap;
        va_start (ap, fmt);
        vsnprintf (err, errsize, fmt, ap);
        va_end (ap);
    }
    return -1;
}

void
bus_log_test (bool verbose)
{
    char err [32];
    assert (bus_errf (err, sizeof err, "bad %d", 7) == -1 && strcmp (err, "bad 7") == 0);
    assert (bus_errf (NULL, 0, "ignored") == -1);
    assert (bus_log_level_parse ("debug") == BUS_LOG_DEBUG);
    assert (bus_log_level_parse ("loud") == -1);
    assert (bus_log_level_parse (NULL) == -1);
    bus_log_init ("selftest");
    bus_log_set_level (BUS_LOG_ERROR);
    bus_info ("not shown");
    assert (bus_log_level () == BUS_LOG_ERROR);
    if (verbose) {
        bus_log_set_level (BUS_LOG_DEBUG);
        bus_debug ("bus_log: %d", 42);
    }
}
