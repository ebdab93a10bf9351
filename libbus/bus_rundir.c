/*  bus_rundir: the run directory of a node, from -r, the configuration file or
    the environment (see bus_rundir.h for why it lives in libbus). */
#include "bus_rundir.h"
#include "bus_endpoint.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *
bus_rundir_check (bus_config_t *config, const char *run_dir)
{
    if (run_dir && *run_dir != '/') {
        bus_config_error (config, config_lookup (bus_config_raw (config), "run_dir"),
                          "expected an absolute path");
        run_dir = NULL;
    }
    return run_dir;
}

const char *
bus_rundir_setting (bus_config_t *config)
{
    return bus_rundir_check (config, bus_config_string (config, "run_dir", NULL));
}

int
bus_rundir_read (const char *path, char *buf, size_t size, FILE *errors)
{
    char err [512];
    bus_config_t *config = bus_config_load (path, err, sizeof err);
    if (!config) {
        if (errors)
            fprintf (errors, "%s\n", err);
        return -1;
    }
    const char *run_dir = bus_rundir_setting (config);
    int rc = run_dir ? 1 : 0;
    if (bus_config_error_count (config)) {
        if (errors)
            bus_config_report (config, errors);
        rc = -1;
    }
    else
    if (run_dir && (size_t) snprintf (buf, size, "%s", run_dir) >= size) {
        if (errors)
            fprintf (errors, "%s: run_dir: longer than %zu bytes\n", path, size - 1);
        rc = -1;
    }
    bus_config_destroy (&config);
    return rc;
}

const char *
bus_rundir_choose (const char *option, const char *configured)
{
    return bus_run_dir (option ? option : configured);
}

void
bus_rundir_test (bool verbose)
{
    char dir [] = "/tmp/bus-rundir-test-XXXXXX";
    assert (mkdtemp (dir));
    char path [128], buf [BUS_PATH_MAX];
    snprintf (path, sizeof path, "%s/t.cfg", dir);
    FILE *devnull = fopen ("/dev/null", "w");
    assert (devnull);

    //  Set, with ${VAR}, and ignoring the rest of the file
    setenv ("BUS_RUNDIR_TEST_DIR", "/x/y", 1);
    FILE *file = fopen (path, "w");
    assert (file);
    fprintf (file, "run_dir = \"${BUS_RUNDIR_TEST_DIR}/z\";\nservices = ( { name = \"a\"; } );\n");
    fclose (file);
    assert (bus_rundir_read (path, buf, sizeof buf, devnull) == 1);
    assert (strcmp (buf, "/x/y/z") == 0);
    //  Not set
    file = fopen (path, "w");
    assert (file);
    fprintf (file, "log_level = \"info\";\n");
    fclose (file);
    assert (bus_rundir_read (path, buf, sizeof buf, devnull) == 0);
    //  Relative, a syntax error, a missing file: errors
    file = fopen (path, "w");
    assert (file);
    fprintf (file, "run_dir = \"relative\";\n");
    fclose (file);
    assert (bus_rundir_read (path, buf, sizeof buf, devnull) == -1);
    char err [256];
    bus_config_t *config = bus_config_load (path, err, sizeof err);
    assert (config);
    assert (bus_rundir_setting (config) == NULL);
    assert (bus_config_error_count (config) == 1);
    assert (strstr (bus_config_error_text (config, 0), "t.cfg:1: run_dir: expected an absolute path"));
    bus_config_destroy (&config);
    file = fopen (path, "w");
    assert (file);
    fprintf (file, "run_dir = ;\n");
    fclose (file);
    assert (bus_rundir_read (path, buf, sizeof buf, devnull) == -1);
    unlink (path);
    assert (bus_rundir_read (path, buf, sizeof buf, devnull) == -1);
    //  Too long for buf
    file = fopen (path, "w");
    assert (file);
    fprintf (file, "run_dir = \"/a/much/longer/path\";\n");
    fclose (file);
    assert (bus_rundir_read (path, buf, 8, devnull) == -1);

    //  Precedence: -r > config > environment > default
    const char *saved = getenv ("BIFROST_RUN_DIR");
    char *saved_copy = saved ? strdup (saved) : NULL;
    setenv ("BIFROST_RUN_DIR", "/from/env", 1);
    assert (strcmp (bus_rundir_choose ("/opt", "/cfg"), "/opt") == 0);
    assert (strcmp (bus_rundir_choose (NULL, "/cfg"), "/cfg") == 0);
    assert (strcmp (bus_rundir_choose (NULL, NULL), "/from/env") == 0);
    unsetenv ("BIFROST_RUN_DIR");
    assert (strcmp (bus_rundir_choose (NULL, NULL), BUS_RUN_DIR_DEFAULT) == 0);

    if (saved_copy)
        setenv ("BIFROST_RUN_DIR", saved_copy, 1);
    free (saved_copy);
    unsetenv ("BUS_RUNDIR_TEST_DIR");
    fclose (devnull);
    unlink (path);
    rmdir (dir);
    if (verbose)
        printf ("bus_rundir: ok\n");
}
