/*  bus_peer: who is at the other end of a bus connection, as the kernel says.

    A routing id is a name the client chooses; the kernel's SO_PEERCRED is not.
    libzmq reads SO_PEERCRED when it accepts an IPC connection and hands it on as
    the "Peer-Address" metadata of every message: ":UID:GID:PID" after the
    (empty) address of a unix socket. The broker uses it to bind a registered
    service name to the process that registered it (libbus/bus_broker.c), and the
    process's executable to the programs that may register that name
    (schemas/senders.def). */
#ifndef BUS_PEER_H_INCLUDED
#define BUS_PEER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t uid, gid, pid;
} bus_peer_t;

//  The credentials at the end of a Peer-Address (":UID:GID:PID"); false when
//  there are none (not a unix socket, or libzmq without SO_PEERCRED)
bool bus_peer_parse (const char *peer_address, bus_peer_t *out);

//  The executable of process pid (/proc/PID/exe, resolved; a deleted file's
//  " (deleted)" kept, so it never matches a program); false when unreadable
bool bus_peer_exe (uint32_t pid, char *out, size_t size);

//  Landlock lets a confined process read /proc/PID/exe only of the processes
//  confined beneath it (it counts as ptrace), so a sandboxed broker could no
//  longer tell a service's program, nor a rogue's. This forks, before the
//  caller confines itself, a reader that stays outside: it holds what the
//  caller holds at that moment (drop capabilities first), reads one
//  /proc/PID/exe per request from bus_peer_exe and nothing else, and ends
//  with the caller (its socket closes; PR_SET_PDEATHSIG). Call it while the
//  process has one thread. 0, or -1 with errno; bus_peer_exe then reads itself.
int bus_peer_exe_reader (void);

//  From /proc/PID/stat, which a process that hides itself (not dumpable, as
//  the key's process is) still shows: its parent's pid and its command name
//  (at most 15 characters, as the kernel keeps it). false when unreadable.
bool bus_peer_stat (uint32_t pid, uint32_t *ppid, char *comm, size_t size);
//  The same parse, of a stat line's text
bool bus_peer_stat_parse (const char *text, uint32_t *ppid, char *comm, size_t size);

//  The effective capabilities of process pid (/proc/PID/status, CapEff), which
//  a process that dropped them can never raise again; false when unreadable
bool bus_peer_caps (uint32_t pid, uint64_t *caps);

void bus_peer_test (bool verbose);
#endif
