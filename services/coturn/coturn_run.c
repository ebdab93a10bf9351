/*  coturn_run: bifrost-coturn's program (coturn_run.h), moved out of main so
    main is a line and the command line, the checks and the written file have a
    self test. */
#include "coturn_run.h"
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
coturn_run_main (int argc, char **argv)
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
    optind = 0;                 //  from the start, also when a test calls us again
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

//  ---------------------------------------------------------------------------
//  Self test: every way the program refuses, a good --check-config, and a
//  whole run in a child with /bin/true standing in for turnserver.

#include <assert.h>
#include <sys/wait.h>

//  Runs the program with up to four arguments after the program name
static int
s_run (const char *a1, const char *a2, const char *a3, const char *a4)
{
    char *argv [] = { (char *) "bifrost-coturn", (char *) a1, (char *) a2, (char *) a3, (char *) a4, NULL };
    int argc = 1;
    while (argv [argc])
        argc++;
    return coturn_run_main (argc, argv);
}

void
coturn_run_test (bool verbose)
{
    printf (" * coturn_run: ");
    char dir [] = "/tmp/coturn_run_test.XXXXXX";
    assert (mkdtemp (dir));
    char good [300], bad [300], path [400];
    snprintf (good, sizeof good, "%s/good.cfg", dir);
    snprintf (bad, sizeof bad, "%s/bad.cfg", dir);
    FILE *file = fopen (good, "w");
    assert (file);
    fprintf (file, "turn = { realm = \"example.org\"; secret = \"0123456789abcdef-very-secret\";\n"
                   "         listening_ip = \"192.0.2.1\"; };\n");
    fclose (file);
    file = fopen (bad, "w");
    assert (file);
    fprintf (file, "turn = { secret = \"short\"; min_port = 60000; max_port = 50000; };\n");
    fclose (file);
    unsetenv ("BIFROST_CONFIG");
    setenv ("BIFROST_TURNSERVER", "/bin/true", 1);

    assert (s_run ("--nope", NULL, NULL, NULL) == BUS_EXIT_CONFIG);
    assert (s_run ("--check-config", NULL, NULL, NULL) == BUS_EXIT_CONFIG);        //  no file
    assert (s_run ("-c", "/nonexistent/bifrost.cfg", "--check-config", NULL) == BUS_EXIT_CONFIG);
    assert (s_run ("-c", bad, "--check-config", NULL) == BUS_EXIT_CONFIG);
    assert (s_run ("-c", good, "--check-config", NULL) == 0);
    setenv ("BIFROST_CONFIG", good, 1);                     //  the file from the environment
    assert (s_run ("--check-config", NULL, NULL, NULL) == 0);
    setenv ("BIFROST_TURNSERVER", "/nonexistent/turnserver", 1);
    assert (s_run ("--check-config", NULL, NULL, NULL) == BUS_EXIT_CONFIG);
    setenv ("BIFROST_TURNSERVER", "/bin/true", 1);

    //  The whole run: turnserver.conf is written 0600, then "turnserver" runs
    snprintf (path, sizeof path, "%s/run", dir);
    fflush (NULL);
    pid_t pid = fork ();
    assert (pid >= 0);
    if (pid == 0)
        _exit (s_run ("-c", good, "-r", path) == 0 ? 0 : 2);    //  returns only if exec failed
    int status;
    assert (waitpid (pid, &status, 0) == pid);
    assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    snprintf (path, sizeof path, "%s/run/turnserver.conf", dir);
    struct stat st;
    assert (stat (path, &st) == 0 && (st.st_mode & 0777) == 0600);
    //  A run directory that cannot be created is a resource failure (1)
    assert (s_run ("-c", good, "-r", "/proc/nope/run") == 1);

    unsetenv ("BIFROST_CONFIG");
    unsetenv ("BIFROST_TURNSERVER");
    snprintf (path, sizeof path, "rm -rf '%s'", dir);
    if (system (path) != 0)
        fprintf (stderr, "could not remove %s\n", dir);
    printf ("OK\n");
}
