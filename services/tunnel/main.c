/*  bifrost-tunnel: the device and crypto services in one process, on one loop.

    Both stay what they are: two bus services with their own names, handlers,
    status and self tests (services/device, services/crypto), joined by the same
    dev-crypto and crypto-dev pipes. What changes is the cost of those pipes: a
    packet handed between two processes wakes the other one (bench_hops on
    this class of machine: 30-38 us a hop, 5 us when both share a CPU), a
    batch handed between two services of one loop is copied into the other's
    queue and read in the same turn of the same thread, with no system call
    (bus_pipe_set_loop). A ping crosses that pipe four times, so this is the node's
    default; bifrost-crypto and bifrost-device still run apart (docs/data-plane.md,
    "Two services, one process"). The process holds no capability: device's
    CAP_NET_ADMIN stays with the helper it forks before the drop (dev_link.h).

    nat, the process that parses the internet's bytes, stays apart: it never
    shares a process with the key. */
#include "crypto_service.h"
#include "dev_service.h"

int
main (int argc, char **argv)
{
    //  crypto first: it hosts the loop and listens on dev-crypto before device
    //  opens the interface and starts sending into it
    static const bus_service_def_t *const parts [] = { &crypto_service_def, &dev_service_def };
    return bus_service_main_group ("tunnel", "device and crypto in one process: the TUN/TAP interface and the node key",
                                   parts, 2, argc, argv);
}
