/*  bus_privs: what a service may still do once it is set up.

    bifrostd starts every service as root (it must: device opens a TUN, nat may
    bind a low port). Each service needs that only for its setup; afterwards it
    keeps the capabilities of its row in DESIGN.md and nothing else: device
    CAP_NET_ADMIN (addresses and routes change at run time), nat, crypto,
    router, discovery, registry and the broker none. Everything else goes from
    the effective, permitted, inheritable, ambient and bounding sets, and
    no_new_privs is set, so neither the service nor a program it executes can
    get it back. A compromised nat is then root without power: it cannot
    configure interfaces, open raw sockets, load modules, or trace other
    processes.

    A process that holds a key (crypto, bifrost-tunnel) is also made
    non-dumpable: no core file carries the key, and a process of the same user
    without CAP_SYS_PTRACE (that compromised nat) cannot read its memory by
    ptrace or /proc/PID/mem. Not under AddressSanitizer, whose leak check
    traces the process at exit.

    Linux capability system calls directly; no libcap. */
#ifndef BUS_PRIVS_H_INCLUDED
#define BUS_PRIVS_H_INCLUDED

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

//  The process's effective capabilities, as a mask of BUS_CAP bits.
uint64_t bus_privs_effective (void);

void bus_privs_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
