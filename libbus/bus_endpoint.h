/*  bus_endpoint: where the sockets of one Bifrost node live. Everything is under
    one run directory (mode 0700, so only the node's user can talk to the bus):

        <run_dir>/bus.ipc       broker ROUTER, control messages (services connect DEALER)
        <run_dir>/events.ipc    broker XPUB, events (services connect SUB)
        <run_dir>/tap.ipc       broker XPUB, mirror of every message and event
        <run_dir>/control.ipc   bifrostd ROUTER, supervisor control (bifrostctl)
        <run_dir>/<service>/    one per service, 0700, the only place its sandbox may
                                create files (bus_privs.h)
        <run_dir>/<service>/pipe-<name>.ipc   data pipes (SOCK_SEQPACKET, not ZeroMQ),
                                the receiving service listens (bus_pipe.h)

    The run directory comes from -r, else BIFROST_RUN_DIR, else /run/bifrost. */
#ifndef BUS_ENDPOINT_H_INCLUDED
#define BUS_ENDPOINT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#define BUS_RUN_DIR_DEFAULT "/run/bifrost"
#define BUS_PATH_MAX 200        //  ipc paths must fit sockaddr_un (108) in practice

//  The run directory to use: explicit if not NULL, else the environment, else default.
const char *bus_run_dir (const char *explicit_dir);

//  Writes "ipc://<run_dir>/<name>.ipc" into buf. -1 when it does not fit a unix
//  socket path.
int bus_endpoint (char *buf, size_t size, const char *run_dir, const char *name);

//  Creates run_dir (and parents) with mode 0700, or tightens an existing folder
//  of ours; refuses (and leaves as it is) a symlink, a non-folder, a folder of
//  another user and a shared one (sticky or world-writable, as /tmp).
//  0, or -1 with errno and a message in err.
int bus_run_dir_secure (const char *run_dir, char *err, size_t errsize);
//  The same without the message: 0 or -1 with errno.
int bus_run_dir_prepare (const char *run_dir);

//  Removes the broker's socket files, the services' empty directories and the
//  (then empty) run directory; for tests that made a temporary one.
void bus_run_dir_remove (const char *run_dir);

void bus_endpoint_test (bool verbose);
#endif
