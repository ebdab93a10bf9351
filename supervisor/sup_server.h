/*  sup_server: the running supervisor. One zloop drives everything: a signalfd
    (SIGCHLD, SIGTERM, SIGINT, SIGHUP), one reader per child readiness pipe, the
    control socket (sup_control: <run_dir>/control.ipc, the schemas of
    schemas/sup.def) and a 50 ms tick that applies timeouts, backoffs and
    dependency starts. See docs/supervisor.md for the behaviour. */
#ifndef SUP_SERVER_H_INCLUDED
#define SUP_SERVER_H_INCLUDED

#include "sup_config.h"
#include "bus_client.h"
#include "bus_schema.h"
#include <sys/types.h>

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

//  What the control protocol (sup_control) asks of the server; the request
//  has been checked already.
//  Whether a service named name exists; with configured, only one in the
//  current config (not one a reload removed that is still stopping).
bool sup_server_has_service (sup_server_t *self, const char *name, bool configured);
//  True once the whole tree is going down (sup.stop, SIGTERM, a give-up).
bool sup_server_stopping (sup_server_t *self);
//  Fills reply with every instance, or those of service when not empty.
void sup_server_status (sup_server_t *self, const char *service, sup_status_reply_t *reply);
//  Scale to instances, restart every instance, stop the tree: ok says what was done.
void sup_server_scale (sup_server_t *self, const char *service, uint32_t instances, sup_ok_t *ok);
void sup_server_restart (sup_server_t *self, const char *service, sup_ok_t *ok);
void sup_server_stop (sup_server_t *self, const char *reason, sup_ok_t *ok);

//  For self tests: makes the directory dir (a mkdtemp template, filled in),
//  writes config_text to <dir>/t.cfg and runs a whole bifrostd on it, with dir
//  as its run directory, in a child process (its pid in *pid_p; it exits with
//  sup_server_run's code). Returns a client connected to its control socket.
bus_client_t *sup_server_fork (char *dir, const char *config_text, bool verbose, pid_t *pid_p);
//  For self tests: asks for the status until count instances, all ready, are
//  listed (asserts that it happens within 5 s).
void sup_server_wait_ready (bus_client_t *client, uint32_t count);
//  For self tests: waits for the bifrostd of sup_server_fork to exit, asserts
//  that it exited 0 and removed its control socket, removes t.cfg and dir.
void sup_server_join (const char *dir, pid_t pid);
//  For self tests: a config with one service, hb, with settings (a string
//  literal, may be empty): a /bin/sh child that runs first (shell code, may be
//  empty), then says READY and a heartbeat every second.
#define SUP_SERVER_TEST_HB(settings, first) \
    "services = ( { name = \"hb\"; exec = \"/bin/sh\"; " settings "\n" \
    "  args = [\"-c\", \"" first "echo READY >&$BIFROST_READY_FD; " \
    "while :; do echo HB >&$BIFROST_READY_FD; sleep 1; done\"]; } );\n"

void sup_server_test (bool verbose);
#endif
