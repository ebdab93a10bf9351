/*  bifrost-coturn: runs coturn under bifrostd. It reads the server config's
    turn group, writes <run_dir>/turnserver.conf (0600; the secret from
    ${TURN_SECRET} never appears on a command line), then execs turnserver in
    the foreground, so the supervisor supervises turnserver itself under this
    pid (notify = "none": coturn has no readiness protocol). */
#include "coturn_conf.h"
#include "bus_endpoint.h"
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
s_usage (const char *prog)
{
    printf ("%s - run coturn with a config generated from Bifrost's turn { } group\n\n"
            "usage: %s [-c FILE] [-r RUN_DIR] [-v] [--check-config]\n\n"
            "  -c, --config FILE     server configuration (default: $BIFROST_CONFIG)\n"
            "  -r, --run-dir DIR     where turnserver.conf is written (default: $BIFROST_RUN_DIR)\n"
            "  -v, --verbose         verbose coturn logging\n"
            "      --check-config    validate the turn group, print errors, exit 0 or 78\n"
            "  -h, --help            this text\n\n"
            "turnserver is $BIFROST_TURNSERVER or /usr/bin/turnserver (Debian: apt-get install coturn).\n",
            prog, prog);
}

int
main (int argc, char **argv)
{
    static const struct option options [] = {
        { "config", required_argument, NULL, 'c' }, { "run-dir", required_argument, NULL, 'r' },
        { "instance", required_argument, NULL, 'i' }, { "verbose", no_argument, NULL, 'v' },
        { "check-config", no_argument, NULL, 'C' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *file = getenv ("BIFROST_CONFIG");
    const char *run_dir = NULL;
    bool check_only = false, verbose = false;
    int opt;
    while ((opt = getopt_long (argc, argv, "c:r:i:vh", options, NULL)) != -1) {
        switch (opt) {
            case 'c': file = optarg; break;
            case 'r': run_dir = optarg; break;
            case 'i': break;
            case 'v': verbose = true; break;
            case 'C': check_only = true; break;
            case 'h': s_usage (argv [0]); return 0;
            default: fprintf (stderr, "try '%s --help'\n", argv [0]); return BUS_EXIT_CONFIG;
        }
    }
    if (!file || !*file) {
        fprintf (stderr, "bifrost-coturn: no config file (-c FILE)\n");
        return BUS_EXIT_CONFIG;
    }
    char err [400];
    bus_config_t *config = bus_config_load (file, err, sizeof err);
    if (!config) {
        fprintf (stderr, "%s\n", err);
        return BUS_EXIT_CONFIG;
    }
    bus_cfg_turn_t turn;
    if (coturn_conf_check (config, &turn) > 0 || bus_config_report (config, stderr) > 0) {
        bus_config_report (config, stderr);
        bus_config_destroy (&config);
        return BUS_EXIT_CONFIG;
    }
    const char *turnserver = getenv ("BIFROST_TURNSERVER");
    if (!turnserver || !*turnserver)
        turnserver = "/usr/bin/turnserver";
    if (access (turnserver, X_OK) != 0) {
        fprintf (stderr, "bifrost-coturn: %s not found or not executable (Debian: apt-get install coturn)\n", turnserver);
        bus_config_destroy (&config);
        return BUS_EXIT_CONFIG;
    }
    if (check_only) {
        printf ("%s: configuration ok\n", file);
        bus_config_destroy (&config);
        return 0;
    }
    const char *dir = bus_run_dir (run_dir);
    if (mkdir (dir, 0700) != 0 && errno != EEXIST) {
        fprintf (stderr, "bifrost-coturn: cannot create %s: %s\n", dir, strerror (errno));
        bus_config_destroy (&config);
        return 1;
    }
    char path [600];
    snprintf (path, sizeof path, "%s/turnserver.conf", dir);
    if (verbose)
        turn.verbose = true;
    if (coturn_conf_write (&turn, bus_config_file (config), dir, path, err, sizeof err)) {
        fprintf (stderr, "bifrost-coturn: %s\n", err);
        bus_config_destroy (&config);
        return 1;
    }
    bus_config_destroy (&config);
    fflush (NULL);
    execl (turnserver, "turnserver", "-c", path, (char *) NULL);
    fprintf (stderr, "bifrost-coturn: cannot run %s: %s\n", turnserver, strerror (errno));
    return 1;
}
