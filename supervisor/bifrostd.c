/*  bifrostd: the Bifrost supervisor. Reads the configuration, starts every
    service in dependency order, restarts what crashes or hangs, stops
    everything in reverse order on SIGTERM. The work is in sup_server; this file
    is the command line. */
#include "config.h"
#include "sup_config.h"
#include "sup_server.h"
#include "bus_endpoint.h"
#include "bus_log.h"
#include "bus_rundir.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include "sup_check.h"

#ifndef BIFROST_SYSCONFDIR
#define BIFROST_SYSCONFDIR "/etc"
#endif
//  The node's file, the one bifrost.service runs (dist/systemd/)
#define S_DEFAULT_CONFIG BIFROST_SYSCONFDIR "/bifrost/bifrost.cfg"

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: bifrostd [-c FILE] [-r RUN_DIR] [-v] [--check-config] [--print-default-config]\n"
        "Supervises the Bifrost services: starts them in dependency order, waits for\n"
        "READY, restarts crashed or hung ones, stops them in reverse order on SIGTERM.\n"
        "\n"
        "  -c, --config FILE         configuration file (default " S_DEFAULT_CONFIG ")\n"
        "  -r, --run-dir DIR         run directory for the sockets (overrides run_dir,\n"
        "                            then $BIFROST_RUN_DIR, then " BUS_RUN_DIR_DEFAULT ")\n"
        "  -v, --verbose             log at debug level (children too)\n"
        "      --check-config        validate the configuration and exit (0 ok, 78 errors)\n"
        "      --print-default-config  print an annotated default configuration\n"
        "  -h, --help                this text\n"
        "Signals: SIGTERM/SIGINT stop everything, SIGHUP reloads the configuration.\n"
        "See docs/supervisor.md and docs/configuration.md.\n");
}

int
main (int argc, char **argv)
{
    //  Keep 0, 1, 2 open, so no pipe or socket of ours is ever mistaken for stdio
    int fd;
    while ((fd = open ("/dev/null", O_RDWR)) >= 0 && fd <= 2)
        ;
    if (fd > 2)
        close (fd);

    static const struct option options [] = {
        { "config", required_argument, NULL, 'c' },
        { "run-dir", required_argument, NULL, 'r' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "check-config", no_argument, NULL, 'C' },
        { "print-default-config", no_argument, NULL, 'P' },
        { NULL, 0, NULL, 0 }
    };
    const char *config_path = NULL, *run_dir = NULL;
    bool verbose = false, check = false;
    int opt;
    while ((opt = getopt_long (argc, argv, "c:r:vh", options, NULL)) != -1) {
        switch (opt) {
            case 'c': config_path = optarg; break;
            case 'r': run_dir = optarg; break;
            case 'v': verbose = true; break;
            case 'C': check = true; break;
            case 'h': s_usage (stdout); return 0;
            case 'P': fputs (sup_config_default_text (), stdout); return 0;
            default: s_usage (stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "bifrostd: unexpected argument '%s'\n", argv [optind]);
        s_usage (stderr);
        return 2;
    }
    if (!config_path)
        config_path = S_DEFAULT_CONFIG;

    sup_config_t *config = sup_config_load (config_path, stderr);
    if (!config) {
        fprintf (stderr, "bifrostd: %s has errors; nothing started\n", config_path);
        return BUS_EXIT_CONFIG;
    }
    //  Each Bifrost service checks its own section of the file: nothing starts
    //  unless every one of them accepts it
    if (sup_check_services (config, config_path, stderr)) {
        fprintf (stderr, "bifrostd: %s has errors; nothing started\n", config_path);
        sup_config_destroy (&config);
        return BUS_EXIT_CONFIG;
    }
    if (check) {
        printf ("%s: configuration ok (%zu services)\n", config_path, sup_config_service_count (config));
        sup_config_destroy (&config);
        return 0;
    }
    //  Before any thread exists, so every thread blocks them for the signalfd
    sup_server_block_signals ();
    bus_log_init ("bifrostd");
    const char *level = sup_config_log_level (config);
    if (level && !getenv ("BIFROST_LOG_LEVEL"))
        bus_log_set_level ((bus_log_level_t) bus_log_level_parse (level));
    if (verbose)
        bus_log_set_level (BUS_LOG_DEBUG);
    //  -r > run_dir in the config > $BIFROST_RUN_DIR > default, as bifrostctl
    char run_dir_copy [BUS_PATH_MAX];
    snprintf (run_dir_copy, sizeof run_dir_copy, "%s",
              bus_rundir_choose (run_dir, sup_config_run_dir (config)));

    char err [512];
    sup_server_t *server = sup_server_new (&config, config_path, run_dir_copy, err, sizeof err);
    if (!server) {
        sup_config_destroy (&config);
        bus_error ("%s", err);
        return 1;
    }
    int rc = sup_server_run (server);
    sup_server_destroy (&server);
    return rc;
}
