/*  sup_server: the running supervisor. One zloop drives everything: a signalfd
    (SIGCHLD, SIGTERM, SIGINT, SIGHUP), one reader per child readiness pipe, the
    control socket (<run_dir>/control.ipc, ROUTER, bus envelopes with the
    schemas of schemas/sup.def) and a 50 ms tick that applies timeouts, backoffs
    and dependency starts. See docs/supervisor.md for the behaviour. */
#ifndef SUP_SERVER_H_INCLUDED
#define SUP_SERVER_H_INCLUDED

#include "sup_config.h"

typedef struct _sup_server_t sup_server_t;

//  Takes the config (consumed) and the run directory; locks the run directory
//  (one bifrostd per run dir) and binds the control socket. The calling thread
//  must block SIGCHLD, SIGTERM, SIGINT and SIGHUP before any ZeroMQ thread
//  exists (sup_server_block_signals) so they all reach the signalfd.
//  config_path is re-read on SIGHUP. NULL with err on failure.
sup_server_t *sup_server_new (sup_config_t **config_p, const char *config_path, const char *run_dir,
                              char *err, size_t errsize);
void sup_server_destroy (sup_server_t **self_p);
//  Runs until every child is stopped after SIGTERM/SIGINT, sup.stop, or a
//  give-up with on_give_up = "stop_all". Returns the process exit code: 0 after
//  a requested stop, 1 after a give-up or a resource failure.
int sup_server_run (sup_server_t *self);

//  Blocks the signals the server reads from its signalfd; call first in main.
void sup_server_block_signals (void);

void sup_server_test (bool verbose);
#endif
