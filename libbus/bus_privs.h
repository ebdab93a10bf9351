/*  bus_privs: what a service may still do once it runs.

    bifrostd starts every service as root: device must create a TUN, nat may
    bind a low port. A service keeps the capabilities of its row in DESIGN.md
    and nothing else: nat and the registry CAP_NET_BIND_SERVICE only when
    their port is below 1024, every other service none (device's
    CAP_NET_ADMIN is kept by a helper it forks before the drop:
    services/device/dev_link.h). Everything else
    goes from the effective, permitted, inheritable, ambient and bounding sets,
    and no_new_privs is set, so neither the service nor a program it executes
    gets it back. A compromised nat cannot configure interfaces or firewalls,
    open raw sockets, load modules, trace or signal-inject other processes,
    read files it does not own, or mount anything.

    Capabilities belong to each thread, and ZeroMQ starts its I/O threads with
    the first socket, so bus_service_main drops before it creates one: the
    service's setup runs with what the service keeps. That is enough: the
    processes stay uid 0 and own their files, run directory and sockets.

    A process that holds a key (crypto, bifrost-tunnel) is also made
    non-dumpable: no core file carries the key, and a process without
    CAP_SYS_PTRACE (that compromised nat) cannot read its memory by ptrace or
    /proc/PID/mem. (LeakSanitizer still works: it makes the process dumpable
    for its own check at exit.)

    Every service is also confined by Landlock (bus_privs_sandbox): staying
    uid 0, it would otherwise still read and write every root-owned file, the
    node key among them. Each declares what it needs (bus_sandbox_t, filled
    from its checked config by its def, bus_service.h): the directories it may
    write beneath and the files it may read; what every process reads
    (libraries, /etc, its own /proc) is added here.

    Linux capability and Landlock system calls directly; no libcap. */
#ifndef BUS_PRIVS_H_INCLUDED
#define BUS_PRIVS_H_INCLUDED

#include <linux/capability.h>     //  CAP_NET_ADMIN and the others
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  A capability's bit in a keep mask: BUS_CAP (CAP_NET_ADMIN)
#define BUS_CAP(cap) (UINT64_C (1) << (cap))

//  Keeps only the capabilities in keep (those the process has), drops the
//  rest from every set, sets no_new_privs, and when hide makes the process
//  non-dumpable. Works the same without root (it only lowers). 0, or -1 with
//  the reason in err.
int bus_privs_drop (uint64_t keep, bool hide, char *err, size_t errsize);

//  What one process may reach of the file system once confined: a list of
//  paths, each to read or to write beneath. Owns copies of its paths.
typedef struct _bus_sandbox_t bus_sandbox_t;
#define BUS_SANDBOX_PATHS_MAX 32

bus_sandbox_t *bus_sandbox_new (void);
void bus_sandbox_destroy (bus_sandbox_t **self_p);
//  May create, change and remove anything beneath path (a directory, created
//  0700 with its parents by bus_privs_sandbox when missing), or read and write
//  path when it is a file (a device: /dev/net/tun). printf-like.
void bus_sandbox_write (bus_sandbox_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
//  May read path: a file, or anything beneath a directory. A path that does
//  not exist when the sandbox is applied is left out. printf-like.
void bus_sandbox_read (bus_sandbox_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
//  The number of paths (more than BUS_SANDBOX_PATHS_MAX: bus_privs_sandbox refuses).
size_t bus_sandbox_size (bus_sandbox_t *self);
//  Path i and whether it is to write; NULL past the end.
const char *bus_sandbox_path (bus_sandbox_t *self, size_t i, bool *write);

//  Confines the process's file system (Landlock) to paths, plus what every
//  process reads: /usr, /lib (libraries loaded late), the files of /etc that
//  the C library, name resolution and the TLS stacks read (hosts,
//  resolv.conf, nsswitch.conf, passwd, group, ld.so.cache, localtime,
//  ssl/certs, ssl/openssl.cnf, ...: bus_privs.c), its own /proc/PID, the
//  number of CPUs and /dev/urandom; nothing else. On kernel ABI 6 and later it can also signal
//  no process and reach no abstract socket outside the sandbox. Threads made
//  later inherit it; call it before any other thread exists. 0; 1 when the
//  kernel has no Landlock (err says so; not an error); -1 with the reason in err.
int bus_privs_sandbox (bus_sandbox_t *paths, char *err, size_t errsize);

//  Raises the effective set to the permitted one (after a uid switch with
//  KEEPCAPS, which clears it: bus_identity_switch_keep). 0, or -1 with err.
int bus_privs_raise (char *err, size_t errsize);

//  The process's effective capabilities, as a mask of BUS_CAP bits.
uint64_t bus_privs_effective (void);

//  What a service that listens on port must keep: CAP_NET_BIND_SERVICE for a
//  port below 1024 (nat on "*:443", the registry on "0.0.0.0:443"), else none.
uint64_t bus_privs_listen_caps (int port);

void bus_privs_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
