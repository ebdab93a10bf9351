/*  coturn_run: the program bifrost-coturn, as a class so its main is a line
    and its paths are tested. It reads the server config's turn group
    (coturn_conf), writes <run_dir>/turnserver.conf (0600; the secret from
    ${TURN_SECRET} never appears on a command line), then execs turnserver in
    the foreground, so the supervisor supervises turnserver itself under this
    pid (notify = "none": coturn has no readiness protocol). bifrost-coturn is
    not a bus service: it never connects to the broker. */
#ifndef COTURN_RUN_H_INCLUDED
#define COTURN_RUN_H_INCLUDED

#include <stdbool.h>

//  The whole program: -c FILE, -r RUN_DIR, -v, --check-config, -h. Returns
//  0 (help, or a good config with --check-config), 78 (BUS_EXIT_CONFIG) for a
//  bad command line, config or missing turnserver, 1 for a resource failure;
//  otherwise it does not return (turnserver replaced the process).
int coturn_run_main (int argc, char **argv);

void coturn_run_test (bool verbose);
#endif
