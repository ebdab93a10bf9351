/*  selftest: a tiny TAP runner for the per-class self tests. Each entry runs one
    class's xxx_test in a forked child, so one failing assert is reported as
    "not ok" and the rest still run. */
#ifndef SELFTEST_H_INCLUDED
#define SELFTEST_H_INCLUDED

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    const char *name;
    void (*fn) (bool verbose);
} selftest_t;

static inline int
selftest_run (const selftest_t *tests, int argc, char **argv)
{
    bool verbose = getenv ("SELFTEST_VERBOSE") != NULL;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "-v") == 0)
            verbose = true;
        else
            only = argv [i];
    }
    int count = 0;
    for (const selftest_t *t = tests; t->name; t++)
        if (!only || strcmp (only, t->name) == 0)
            count++;
    printf ("1..%d\n", count);
    fflush (stdout);
    int n = 0, failed = 0;
    for (const selftest_t *t = tests; t->name; t++) {
        if (only && strcmp (only, t->name) != 0)
            continue;
        n++;
        pid_t pid = fork ();
        if (pid == 0) {
            t->fn (verbose);
            fflush (stdout);
            _exit (0);
        }
        int status = 0;
        waitpid (pid, &status, 0);
        bool ok = WIFEXITED (status) && WEXITSTATUS (status) == 0;
        if (!ok)
            failed++;
        printf ("%s %d - %s%s\n", ok ? "ok" : "not ok", n, t->name,
                ok ? "" : (WIFSIGNALED (status) ? " (killed by a signal)" : " (exit code)"));
        fflush (stdout);
    }
    return failed ? 1 : 0;
}

#endif
