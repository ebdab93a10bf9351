/*  bifrost-coturn: runs coturn under bifrostd. Everything it does lives in
    coturn_run (config check, turnserver.conf, exec of turnserver); this main
    only hands it the command line. */
#include "coturn_run.h"

int
main (int argc, char **argv)
{
    return coturn_run_main (argc, argv);
}
