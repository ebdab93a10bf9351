/*  device_bench: packets/s through a real TUN in one process, syscalls per
    packet, and the TSO split's throughput. The kernel is the far end: we write
    batches of ICMP echo requests for the TUN's own address and read the echo
    replies, so every packet crosses the TUN twice (write + read). Runs in a
    private network namespace (root). Usage: device_bench [seconds] */
#include "dev_csum.h"
#include "bus_clock.h"
#include "dev_gso.h"
#include "dev_netlink.h"
#include "dev_tun.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <linux/virtio_net.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64

static size_t
s_echo (uint8_t *p, size_t total, uint16_t seq)
{
    memset (p, 0, total);
    p [0] = 0x45;
    p [2] = (uint8_t) (total >> 8);
    p [3] = (uint8_t) total;
    p [8] = 64;
    p [9] = IPPROTO_ICMP;
    inet_pton (AF_INET, "10.100.0.2", p + 12);
    inet_pton (AF_INET, "10.100.0.1", p + 16);
    dev_csum_store (p + 10, dev_csum_fold (dev_csum_add (0, p, 20)));
    uint8_t *icmp = p + 20;
    icmp [0] = 8;
    icmp [6] = (uint8_t) (seq >> 8);
    icmp [7] = (uint8_t) seq;
    dev_csum_store (icmp + 2, dev_csum_fold (dev_csum_add (0, icmp, total - 20)));
    return total;
}

static void
s_tun_round_trip (dev_tun_t *tun, size_t size, double seconds)
{
    static uint8_t out [BATCH][1500], in [BATCH][1600];
    dev_pkt_t wp [BATCH], rp [BATCH];
    for (int i = 0; i < BATCH; i++) {
        wp [i] = (dev_pkt_t) { out [i], s_echo (out [i], size, (uint16_t) i), sizeof out [i] };
        rp [i] = (dev_pkt_t) { in [i], 0, sizeof in [i] };
    }
    dev_tun_stats_t before = *dev_tun_stats (tun);
    uint64_t sent = 0, got = 0, lost = 0;
    double start = bus_clock_sec (), end = start + seconds;
    while (bus_clock_sec () < end) {
        sent += (uint64_t) dev_tun_write_batch (tun, wp, BATCH);
        int want = BATCH, tries = 0;
        while (want > 0 && tries < 1000) {
            int n = dev_tun_read_batch (tun, rp, want);
            if (n <= 0) {
                struct pollfd pfd = { dev_tun_fd (tun), POLLIN, 0 };
                if (poll (&pfd, 1, 100) <= 0)
                    break;
                tries++;
                continue;
            }
            want -= n;
            got += (uint64_t) n;
        }
        lost += (uint64_t) want;
    }
    double elapsed = bus_clock_sec () - start;
    const dev_tun_stats_t *st = dev_tun_stats (tun);
    uint64_t calls = (st->read_calls - before.read_calls) + (st->write_calls - before.write_calls);
    printf ("tun round trip, %4zu B packets: %8.0f pkts/s written + %8.0f pkts/s read (%.0f Mbit/s each way), "
            "%.2f syscalls per packet, %lu lost\n",
            size, (double) sent / elapsed, (double) got / elapsed, (double) got * (double) size * 8 / elapsed / 1e6,
            (double) calls / (double) (sent + got), (unsigned long) lost);
}

static void
s_split_speed (double seconds)
{
    static uint8_t frame [DEV_GSO_MAX_FRAME], work [DEV_GSO_MAX_FRAME], out [DEV_GSO_OUT_SIZE];
    dev_pkt_t pkts [DEV_GSO_MAX_SEGS];
    size_t payload = 65535 - 40, mss = 1380;
    uint8_t *ip = frame + DEV_VNET_HDR_LEN;
    ip [0] = 0x45;
    ip [2] = 0xff;
    ip [3] = 0xff;
    ip [9] = IPPROTO_TCP;
    ip [12] = 10;
    ip [16] = 10;
    ip [32] = 5 << 4;
    for (size_t i = 0; i < payload; i++)
        ip [40 + i] = (uint8_t) i;
    struct virtio_net_hdr h = { VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 40, (uint16_t) mss, 20, 16 };
    memcpy (frame, &h, sizeof h);
    size_t flen = DEV_VNET_HDR_LEN + 65535;
    uint64_t splits = 0, segs = 0;
    double start = bus_clock_sec (), end = start + seconds;
    while (bus_clock_sec () < end) {
        for (int i = 0; i < 100; i++) {
            memcpy (work, frame, flen);     //  as a fresh read would leave it
            int n = dev_gso_split (work, flen, out, sizeof out, pkts, DEV_GSO_MAX_SEGS, NULL);
            assert (n > 0);
            segs += (uint64_t) n;
            splits++;
        }
    }
    double elapsed = bus_clock_sec () - start;
    printf ("gso split, 64 KB TCPv4 into %zu-byte segments: %.0f super-packets/s, %.0f segments/s, %.2f GB/s "
            "(including a 64 KB copy per split as a read would do)\n",
            mss, (double) splits / elapsed, (double) segs / elapsed, (double) splits * 65535 / elapsed / 1e9);
}

int
main (int argc, char **argv)
{
    double seconds = argc > 1 ? atof (argv [1]) : 1.0;
    if (seconds <= 0 || seconds > 60)
        seconds = 1.0;
    if (unshare (CLONE_NEWNET)) {
        fprintf (stderr, "device_bench: unshare (CLONE_NEWNET): %s (run as root)\n", strerror (errno));
        return 1;
    }
    char err [200];
    dev_netlink_t *nl = dev_netlink_new (err, sizeof err);
    dev_tun_t *tun = nl ? dev_tun_new (DEV_TYPE_TUN, "bfbench0", 0, err, sizeof err) : NULL;
    dev_addr_t a;
    if (!tun || dev_addr_parse ("10.100.0.1/24", &a, err, sizeof err)
    ||  dev_netlink_set_mtu (nl, dev_tun_ifindex (tun), 1500)
    ||  dev_netlink_addr_add (nl, dev_tun_ifindex (tun), &a)
    ||  dev_netlink_set_up (nl, dev_tun_ifindex (tun), true)) {
        fprintf (stderr, "device_bench: %s\n", tun ? dev_netlink_error (nl) : err);
        return 1;
    }
    s_tun_round_trip (tun, 1400, seconds);
    s_tun_round_trip (tun, 64, seconds);
    s_split_speed (seconds);
    dev_tun_destroy (&tun);
    dev_netlink_destroy (&nl);
    return 0;
}
