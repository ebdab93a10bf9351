/*  bus_seccomp: the system calls a service may make once it runs.

    bus_privs takes what a service may do with the calls it makes (its
    capabilities, its file system); this class takes the calls themselves. A
    service that parses what the network sends (nat, the relay, the registry)
    never needs execve, ptrace, mount, bpf or a module load, so a flaw in its
    parser that gives an attacker code execution should not give them those
    either. The lists are declared once, in schemas/syscalls.def: BASE for every
    service, plus the sets a service names in its def (`.seccomp =
    BUS_SECCOMP_TUN | BUS_SECCOMP_NETLINK`).

    bus_service_main loads the filter after every setup ran and before the loop
    runs: setup may open its files and devices with whatever it needs, the
    runtime (what faces input) is what gets confined. It is loaded with TSYNC,
    so ZeroMQ's I/O threads, which exist by then, get it too; no_new_privs is
    set already (bus_privs_drop).

    A call not on the list is refused with SIGSYS (SCMP_ACT_TRAP) and not the
    process killed (SCMP_ACT_KILL_PROCESS): the kernel never runs the call
    either way, but a trap lets this class write one line to stderr, "nat[812]:
    seccomp refused system call 59 (execve)", count it, and make the call
    return EPERM, so a list that missed a call a library makes on a rare path
    shows in the log as a named call and as an error the service handles,
    instead of a process that died of SIGSYS under the supervisor, restarted
    and died again with nothing in its log. Every integration test fails when
    any log says "seccomp refused" (tests/integration/tap_lib.sh).

    BIFROST_SECCOMP=0 in bifrostd's environment (passed to the services by
    supervisor/sup_env.c) loads no filter, for an operator who debugs a
    service with tools that need more (strace works with the filter: it traces
    from outside). BIFROST_SECCOMP=log lets every call run and has the kernel
    log the ones not on the list (dmesg, audit type 1326): to find all of a
    run's missing calls at once. Under valgrind no filter is loaded (valgrind
    makes calls of its own on the service's behalf). */
#ifndef BUS_SECCOMP_H_INCLUDED
#define BUS_SECCOMP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  The sets of schemas/syscalls.def: BUS_SECCOMP_BASE, BUS_SECCOMP_TUN, ...
enum {
#define BUS_SYSCALL_SET(set, doc) BUS_SECCOMP_BIT_##set,
#define BUS_SYSCALL(set, name, why)
#define BUS_SYSCALL_ARG(set, name, arg, mask, value, why)
#define BUS_SYSCALL_ERRNO(set, name, error, why)
#include "../schemas/syscalls.def"
#undef BUS_SYSCALL_SET
    BUS_SECCOMP_SETS
};
enum {
#define BUS_SYSCALL_SET(set, doc) BUS_SECCOMP_##set = 1u << BUS_SECCOMP_BIT_##set,
#include "../schemas/syscalls.def"
#undef BUS_SYSCALL_SET
#undef BUS_SYSCALL
#undef BUS_SYSCALL_ARG
#undef BUS_SYSCALL_ERRNO
};

//  Loads the filter that allows BASE, the sets in sets (BUS_SECCOMP_* bits),
//  and SANITIZER in a sanitizer build, for every thread of the process. Refusal
//  messages start with ident. 0 when loaded; 1 when not loaded on purpose
//  (BIFROST_SECCOMP=0, valgrind, a kernel without seccomp: err says why); -1
//  with the reason in err.
int bus_seccomp_apply (uint32_t sets, const char *ident, char *err, size_t errsize);

//  How many calls the filter refused in this process so far.
uint64_t bus_seccomp_refused (void);

//  The name of system call nr in schemas/syscalls.def, or NULL.
const char *bus_seccomp_name (int nr);

void bus_seccomp_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
