/*  sup_proc: one child process of bifrostd and its readiness pipe.

    Everything the child needs (path, argv, envp with BIFROST_READY_FD) is
    prepared before fork; between fork and exec the child makes only
    async-signal-safe calls: its own process group (so a stop reaches its
    helpers too), PR_SET_PDEATHSIG (so nothing outlives a SIGKILLed bifrostd),
    the pipe on a fixed fd, stdin from /dev/null, every other fd closed, the
    signal mask and dispositions reset. */
#ifndef SUP_PROC_H_INCLUDED
#define SUP_PROC_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SUP_PROC_READY_FD   3       //  the pipe's number in the child

//  What sup_proc_read saw.
#define SUP_PROC_READY      1
#define SUP_PROC_HEARTBEAT  2
#define SUP_PROC_EOF        4

typedef struct _sup_proc_t sup_proc_t;

//  Resolves `exec` the way bifrostd does: contains '/' -> as is; else
//  $BIFROST_LIBEXEC_DIR/exec, else BIFROST_LIBEXECDIR/exec, else PATH. Returns 0
//  with the path, or -1 with err when no executable file is found.
int sup_proc_resolve (const char *exec, char *path, size_t size, char *err, size_t errsize);

//  Starts path with argv and envp (NULL-terminated; envp should contain
//  BIFROST_READY_FD=3 when ready_pipe). NULL with err when fork or pipe fails.
sup_proc_t *sup_proc_start (const char *path, char *const argv [], char *const envp [],
                            bool ready_pipe, char *err, size_t errsize);
//  Closes the pipe; does not signal the process (see sup_proc_kill).
void sup_proc_destroy (sup_proc_t **self_p);

pid_t sup_proc_pid (sup_proc_t *self);
//  The read end of the readiness pipe, -1 when there is none (or after EOF).
int sup_proc_fd (sup_proc_t *self);
//  Reads what is available on the pipe; returns SUP_PROC_* bits. Bounded: any
//  other line is ignored, a line longer than 64 bytes is discarded.
int sup_proc_read (sup_proc_t *self);
//  Signals the whole process group (falls back to the pid).
int sup_proc_kill (sup_proc_t *self, int sig);

void sup_proc_test (bool verbose);
#endif
