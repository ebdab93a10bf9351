/*  dev_tun: a TUN (layer 3) or TAP (layer 2) interface opened on /dev/net/tun,
    non-blocking, without the 4-byte packet-info header. Packets move in
    batches into and out of caller buffers. A tun fd takes one packet per
    read()/write() (there is no recvmmsg for it), so the batch functions loop
    until the queue runs dry or the batch is full, and count their syscalls so
    the cost per packet is visible. The real cut in syscalls is DEV_TUN_OFFLOAD:
    with IFF_VNET_HDR and TSO enabled, one read returns a 64 KB TCP
    super-packet that dev_gso_split turns into ~45 packets.

    The interface is not persistent: it disappears when the fd is closed, so a
    crashed device service never leaves it behind. */
#ifndef DEV_TUN_H_INCLUDED
#define DEV_TUN_H_INCLUDED

#include "dev_config.h"
#include "dev_pkt.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _dev_tun_t dev_tun_t;

//  Flags for dev_tun_new
#define DEV_TUN_OFFLOAD  1      //  tun only: IFF_VNET_HDR + TSO4/TSO6/ECN/CSUM

typedef struct {
    uint64_t read_calls;        //  read() syscalls, including the one that hit EAGAIN
    uint64_t read_pkts;
    uint64_t read_bytes;
    uint64_t write_calls;
    uint64_t write_pkts;
    uint64_t write_bytes;
    uint64_t write_drops;       //  packets the kernel refused (queue full, bad packet)
} dev_tun_stats_t;

//  Creates the interface `name` ("" lets the kernel choose). Returns NULL with
//  a clear message in err (no /dev/net/tun, no CAP_NET_ADMIN, name in use).
dev_tun_t *dev_tun_new (dev_type_t type, const char *name, int flags, char *err, size_t errsize);
//  The same on /dev/net/tun opened before (dev_tun_open_clone): a process
//  that may no longer open the device file once it switched its uid (the
//  device-link helper) opens it first. Takes fd (closed on failure).
dev_tun_t *dev_tun_new_on (int fd, dev_type_t type, const char *name, int flags, char *err, size_t errsize);
//  /dev/net/tun, opened non-blocking; -1 with the reason in err.
int dev_tun_open_clone (char *err, size_t errsize);
//  Closes the fd: the kernel removes the interface.
void dev_tun_destroy (dev_tun_t **self_p);
//  Takes an open interface fd that another process created with these flags
//  (dev_link: the helper that holds CAP_NET_ADMIN). Closes fd on failure.
dev_tun_t *dev_tun_adopt (int fd, dev_type_t type, const char *name, int flags, char *err, size_t errsize);
//  Frees the object and returns its fd, still open (to hand it over).
int dev_tun_release (dev_tun_t **self_p);

int dev_tun_fd (dev_tun_t *self);                   //  for poll
const char *dev_tun_name (dev_tun_t *self);         //  the name the kernel gave
int dev_tun_ifindex (dev_tun_t *self);
dev_type_t dev_tun_type (dev_tun_t *self);
//  DEV_VNET_HDR_LEN if every read packet starts with a virtio_net_hdr, else 0.
size_t dev_tun_hdr_len (dev_tun_t *self);

//  Reads up to max packets, each into pkts[i].data (capacity pkts[i].size,
//  at least MTU + header; DEV_GSO_MAX_FRAME with DEV_TUN_OFFLOAD), setting
//  pkts[i].len. Returns how many (0 when nothing is queued), or -1 on a real
//  error (errno set). With DEV_TUN_OFFLOAD each packet keeps its vnet header:
//  pass it to dev_gso_split.
int dev_tun_read_batch (dev_tun_t *self, dev_pkt_t *pkts, int max);
//  Writes count plain packets (IP for tun, Ethernet for tap; with
//  DEV_TUN_OFFLOAD a zeroed vnet header is prepended by writev). Returns how
//  many the kernel took; the rest are counted in write_drops.
int dev_tun_write_batch (dev_tun_t *self, const dev_pkt_t *pkts, int count);

const dev_tun_stats_t *dev_tun_stats (dev_tun_t *self);

void dev_tun_test (bool verbose);
#endif
