/*  bus_identity: the uid a Bifrost service runs under, and whose uid is whose.

    Capabilities dropped, a service that stayed uid 0 still owned every file
    root owns: code run in the registry (libwebsockets, jansson, the internet
    behind them) could write /etc. So each service program runs under a uid
    of its own (schemas/users.def): `supervisor.user_base` + its slot, like
    systemd's DynamicUser, with no entry needed in /etc/passwd (an operator
    may add one, named bifrost-*, for `ps`). Every service has one
    supplementary group, `user_base` itself ("bifrost"): the group that may
    reach the run directory's sockets (bus.ipc, the data pipes); nothing
    else of the machine is theirs.

    bifrostd hands each child its identity in BIFROST_RUN_AS ("uid:gid:base").
    The service starts as root, as today, drops its capabilities except
    CAP_SETUID and CAP_SETGID, runs its setup (reads its key, opens its
    database, binds its ports, makes its sockets and shares them with the
    group: bus_identity_share), and then switches every thread to its uid
    (bus_identity_switch): the kernel clears what capabilities remain. This
    is OpenSSH's order (acquire what needs root, then drop for good) rather
    than systemd's (switch before exec), because the setup is where root is
    needed and nothing in it reads the network.

    The broker, itself switched, cannot read /proc/PID/exe of another uid;
    the uid the kernel reports for a connection (SO_PEERCRED) is the better
    word anyway: bus_identity_is says whether a uid is a program's. */
#ifndef BUS_IDENTITY_H_INCLUDED
#define BUS_IDENTITY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUS_IDENTITY_ENV "BIFROST_RUN_AS"
#define BUS_IDENTITY_BASE_DEFAULT 61100   //  below systemd's dynamic range (61184-65519)
#define BUS_IDENTITY_SLOTS 16             //  uids base+1 .. base+15 (base: the group)

//  The uid of program (a path or a basename, "bifrost-nat") under base, or -1
//  when program is not a Bifrost service that gets one.
int64_t bus_identity_uid_of (uint32_t base, const char *program);

//  Reads BIFROST_RUN_AS: 1 when this process is to switch (its identity is
//  set), 0 when it is unset (the process stays as it started), -1 when it is
//  malformed (err says why).
int bus_identity_load (char *err, size_t errsize);
//  Sets the identity directly: bifrostd (uid 0: it never switches, but shares
//  its run directory with the group) and self tests.
void bus_identity_set (uint32_t uid, uint32_t gid, uint32_t base);
//  Whether an identity is set, and its parts.
bool bus_identity_active (void);
uint32_t bus_identity_uid (void);
uint32_t bus_identity_gid (void);
uint32_t bus_identity_base (void);

//  Gives a socket file (0660) or directory (0710: the group may pass, not
//  list or write) that this process made to the group, so the node's other
//  services reach it after they switched. No-op without an identity. 0, or
//  -1 with errno.
int bus_identity_share (const char *path, bool directory);

//  Makes the group the process's only supplementary group, still as root:
//  the owner of a file may then give it to the group without CAP_CHOWN. Needs
//  CAP_SETGID. 0, or -1 with the reason in err.
int bus_identity_join (char *err, size_t errsize);
//  Switches every thread of the process to its uid, with the group as its
//  only group; the kernel then clears every capability the threads had. Needs
//  CAP_SETUID and CAP_SETGID. No-op (0) without an identity or when the uid is
//  0. 0, or -1 with the reason in err.
int bus_identity_switch (char *err, size_t errsize);
//  The same for a single-threaded process that must keep some capabilities
//  (device's helper keeps CAP_NET_ADMIN): KEEPCAPS across the switch, then
//  bus_privs_drop (keep). 0, or -1 with the reason in err.
int bus_identity_switch_keep (uint64_t keep, char *err, size_t errsize);

//  Is uid the uid of program under the active identity's base?
bool bus_identity_is (uint32_t uid, const char *program);

void bus_identity_test (bool verbose);
#endif
