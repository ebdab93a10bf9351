/*  dev_tun: TUN/TAP interface with batched I/O (see dev_tun.h). */
#include "dev_tun.h"
#include "bus_clock.h"
#include "dev_gso.h"
#include "dev_csum.h"
#include "dev_bytes.h"

#include <assert.h>
#include <errno.h>
#include <endian.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

struct _dev_tun_t {
    int fd;
    dev_type_t type;
    char name [IFNAMSIZ];
    int ifindex;
    size_t hdr_len;
    bool gro_off;               //  the kernel refused a GSO write (EINVAL)
    dev_tun_stats_t stats;
};

//  The object around an open interface fd (closed when there is no memory)
static dev_tun_t *
s_wrap (int fd, dev_type_t type, const char *name, char *err, size_t errsize)
{
    dev_tun_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errsize, "tun: out of memory");
        close (fd);
        return NULL;
    }
    self->fd = fd;
    self->type = type;
    snprintf (self->name, sizeof self->name, "%s", name);
    return self;
}

dev_tun_t *
dev_tun_new (dev_type_t type, const char *name, int flags, char *err, size_t errsize)
{
    int fd = dev_tun_open_clone (err, errsize);
    if (fd < 0)
        return NULL;
    return dev_tun_new_on (fd, type, name, flags, err, errsize);
}

int
dev_tun_open_clone (char *err, size_t errsize)
{
    int fd = open ("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        snprintf (err, errsize, "tun: cannot open /dev/net/tun: %s%s", strerror (errno),
                  errno == ENOENT ? " (load the tun module: modprobe tun)" : "");
    return fd;
}

dev_tun_t *
dev_tun_new_on (int fd, dev_type_t type, const char *name, int flags, char *err, size_t errsize)
{
    if (name && strlen (name) >= IFNAMSIZ) {
        snprintf (err, errsize, "tun: interface name \"%s\" is longer than %d characters", name, IFNAMSIZ - 1);
        close (fd);
        return NULL;
    }
    if ((flags & DEV_TUN_OFFLOAD) && type != DEV_TYPE_TUN) {
        snprintf (err, errsize, "tun: offloads (vnet header, TSO) are only supported on a tun device");
        close (fd);
        return NULL;
    }
    struct ifreq ifr;
    memset (&ifr, 0, sizeof ifr);
    ifr.ifr_flags = (short) ((type == DEV_TYPE_TUN ? IFF_TUN : IFF_TAP) | IFF_NO_PI
                             | ((flags & DEV_TUN_OFFLOAD) ? IFF_VNET_HDR : 0));
    if (name)
        snprintf (ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    if (ioctl (fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        snprintf (err, errsize, "tun: cannot create %s \"%s\": %s%s", type == DEV_TYPE_TUN ? "tun" : "tap",
                  name ? name : "", strerror (e),
                  e == EPERM ? " (needs CAP_NET_ADMIN)" :
                  e == EBUSY ? " (an interface of that name exists and is in use)" :
                  e == EINVAL ? " (an interface of that name exists with another type)" : "");
        close (fd);
        return NULL;
    }
    dev_tun_t *self = s_wrap (fd, type, ifr.ifr_name, err, errsize);
    if (!self)
        return NULL;
    if (flags & DEV_TUN_OFFLOAD) {
        int hdr = (int) sizeof (struct virtio_net_hdr);
        unsigned offload = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
        if (ioctl (fd, TUNSETVNETHDRSZ, &hdr) < 0 || ioctl (fd, TUNSETOFFLOAD, offload) < 0) {
            snprintf (err, errsize, "tun: cannot enable offloads on %s: %s", self->name, strerror (errno));
            dev_tun_destroy (&self);
            return NULL;
        }
        self->hdr_len = DEV_VNET_HDR_LEN;
    }
    self->ifindex = (int) if_nametoindex (self->name);
    if (self->ifindex == 0) {
        snprintf (err, errsize, "tun: %s was created but has no index: %s", self->name, strerror (errno));
        dev_tun_destroy (&self);
        return NULL;
    }
    return self;
}

//  An interface another process created (dev_link's helper): the fd came over
//  a socket with its offloads set; only the bookkeeping is made here.
dev_tun_t *
dev_tun_adopt (int fd, dev_type_t type, const char *name, int flags, char *err, size_t errsize)
{
    int ifindex = (int) if_nametoindex (name);
    if (fd < 0 || ifindex == 0) {
        snprintf (err, errsize, "tun: %s was handed over but has no index: %s", name, strerror (errno));
        if (fd >= 0)
            close (fd);
        return NULL;
    }
    dev_tun_t *self = s_wrap (fd, type, name, err, errsize);
    if (!self)
        return NULL;
    self->ifindex = ifindex;
    self->hdr_len = (flags & DEV_TUN_OFFLOAD) ? DEV_VNET_HDR_LEN : 0;
    return self;
}

int
dev_tun_release (dev_tun_t **self_p)
{
    int fd = -1;
    if (*self_p) {
        fd = (*self_p)->fd;
        free (*self_p);
        *self_p = NULL;
    }
    return fd;
}

void
dev_tun_destroy (dev_tun_t **self_p)
{
    if (*self_p) {
        close ((*self_p)->fd);
        free (*self_p);
        *self_p = NULL;
    }
}

int dev_tun_fd (dev_tun_t *self) { return self->fd; }
const char *dev_tun_name (dev_tun_t *self) { return self->name; }
int dev_tun_ifindex (dev_tun_t *self) { return self->ifindex; }
dev_type_t dev_tun_type (dev_tun_t *self) { return self->type; }
size_t dev_tun_hdr_len (dev_tun_t *self) { return self->hdr_len; }
const dev_tun_stats_t *dev_tun_stats (dev_tun_t *self) { return &self->stats; }

int
dev_tun_read_batch (dev_tun_t *self, dev_pkt_t *pkts, int max)
{
    int n = 0;
    while (n < max) {
        ssize_t rc = read (self->fd, pkts [n].data, pkts [n].size);
        self->stats.read_calls++;
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return n ? n : -1;  //  report what we have; the error repeats next call
        }
        pkts [n].len = (size_t) rc;
        self->stats.read_pkts++;
        self->stats.read_bytes += (uint64_t) rc;
        n++;
    }
    return n;
}

//  ---------------------------------------------------------------------------
//  GRO on write. Without it every segment of a bulk TCP flow is one write()
//  and one pass through the receiving TCP stack, run in the device's own
//  syscall: that was the largest single cost of the receiving node in the
//  benchmark (docs/benchmarks.md). With a vnet header, a run of in-order
//  TCPv4 segments of one flow, as a batch from crypto carries them, goes to
//  the kernel as ONE GSO super-packet (one writev, one trip up the stack),
//  under the rules of the kernel's own tcp_gro_receive: same addresses,
//  ports, TOS, TTL, ACK, window and options, contiguous sequence numbers,
//  equal segment sizes (the last may be shorter), only ACK (+PSH to end a
//  run) set, DF set, no IP options. The payloads are not copied: writev
//  gathers them where they lie. The TCP checksum is left to the kernel as
//  CHECKSUM_PARTIAL; the segments were authenticated end to end by crypto.

#define S_GRO_MAX_SEGS  64
#define S_TCP_PSH       0x08
#define S_TCP_ACK       0x10

//  IP + TCP header length if the packet can be part of a run, else 0
static size_t
s_gro_hlen (const uint8_t *ip, size_t len)
{
    if (len < 41 || ip [0] != 0x45 || ip [9] != 6 || dev_get16 (ip + 2) != len)
        return 0;
    if ((dev_get16 (ip + 6) & 0xbfff) != 0 || !(ip [6] & 0x40))
        return 0;                                   //  a fragment, or DF clear
    size_t hlen = 20 + (size_t) (ip [32] >> 4) * 4;
    uint8_t flags = ip [33];
    if (hlen < 40 || hlen >= len || (flags & ~(S_TCP_PSH | S_TCP_ACK)) || !(flags & S_TCP_ACK))
        return 0;
    return hlen;
}

typedef struct {
    struct virtio_net_hdr vnet;
    uint8_t head [80];                  //  IPv4 (20) + TCP with options (60)
    struct iovec iov [2 + S_GRO_MAX_SEGS];
    int iovcnt;
    size_t bytes;                       //  of the super-packet's IP packet
} s_gro_t;

//  How many of pkts[0..count) form one run (at least 1). For a run of 2 or
//  more, g holds the vnet header, the rewritten headers and the iovec of the
//  super-packet.
static int
s_gro_run (const dev_pkt_t *pkts, int count, s_gro_t *g)
{
    const uint8_t *first = pkts [0].data;
    size_t hlen = s_gro_hlen (first, pkts [0].len);
    if (!hlen || count < 2)
        return 1;
    size_t mss = pkts [0].len - hlen;
    size_t total = pkts [0].len;
    uint32_t next_seq = dev_get32 (first + 24) + (uint32_t) mss;
    bool ended = (first [33] & S_TCP_PSH) != 0;
    uint8_t psh = 0;
    int n = 1;
    while (!ended && n < count && n < S_GRO_MAX_SEGS) {
        const uint8_t *p = pkts [n].data;
        size_t len = pkts [n].len;
        if (s_gro_hlen (p, len) != hlen)
            break;
        size_t payload = len - hlen;
        if (payload > mss || total + payload > 65535
        ||  p [1] != first [1] || p [8] != first [8]                //  TOS, TTL
        ||  memcmp (p + 12, first + 12, 12) != 0                    //  addresses, ports
        ||  dev_get32 (p + 24) != next_seq
        ||  memcmp (p + 28, first + 28, 4) != 0                     //  ACK
        ||  memcmp (p + 34, first + 34, 2) != 0                     //  window
        ||  memcmp (p + 40, first + 40, hlen - 40) != 0)            //  options
            break;
        next_seq += (uint32_t) payload;
        total += payload;
        n++;
        if (payload < mss || (p [33] & S_TCP_PSH)) {
            psh = p [33] & S_TCP_PSH;
            ended = true;
        }
    }
    if (n < 2)
        return 1;
    memcpy (g->head, first, hlen);
    g->head [2] = (uint8_t) (total >> 8);
    g->head [3] = (uint8_t) total;
    g->head [10] = g->head [11] = 0;
    dev_csum_store (g->head + 10, dev_csum_fold (dev_csum_add (0, g->head, 20)));
    g->head [33] |= psh;
    //  CHECKSUM_PARTIAL: the pseudo-header sum, not complemented
    uint16_t partial = (uint16_t) ~dev_csum_fold (dev_csum_pseudo (AF_INET, first + 12, first + 16,
                                                                   6, (uint32_t) (total - 20)));
    dev_csum_store (g->head + 36, partial);
    memset (&g->vnet, 0, sizeof g->vnet);
    g->vnet.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    g->vnet.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
    g->vnet.hdr_len = htole16 ((uint16_t) hlen);
    g->vnet.gso_size = htole16 ((uint16_t) mss);
    g->vnet.csum_start = htole16 (20);
    g->vnet.csum_offset = htole16 (16);
    g->iov [0] = (struct iovec) { &g->vnet, sizeof g->vnet };
    g->iov [1] = (struct iovec) { g->head, hlen };
    for (int i = 0; i < n; i++)
        g->iov [2 + i] = (struct iovec) { pkts [i].data + hlen, pkts [i].len - hlen };
    g->iovcnt = 2 + n;
    g->bytes = total;
    return n;
}

int
dev_tun_write_batch (dev_tun_t *self, const dev_pkt_t *pkts, int count)
{
    static const uint8_t zero_hdr [DEV_VNET_HDR_LEN];
    int written = 0;
    s_gro_t gro;
    for (int i = 0; i < count; i++) {
        //  A run of TCP segments as one super-packet (vnet header only)
        int run = self->hdr_len && !self->gro_off ? s_gro_run (pkts + i, count - i, &gro) : 1;
        if (run > 1) {
            ssize_t rc;
            do {
                rc = writev (self->fd, gro.iov, gro.iovcnt);
                self->stats.write_calls++;
            } while (rc < 0 && errno == EINTR);
            if (rc >= 0) {
                written += run;
                self->stats.write_pkts += (uint64_t) run;
                self->stats.write_bytes += gro.bytes;
                i += run - 1;
                continue;
            }
            if (errno == EINVAL)
                self->gro_off = true;   //  this kernel refuses GSO writes: one by one from now on
        }
        struct iovec iov [2] = {
            { (void *) zero_hdr, self->hdr_len },
            { pkts [i].data, pkts [i].len }
        };
        ssize_t rc;
        do {
            rc = self->hdr_len ? writev (self->fd, iov, 2) : write (self->fd, pkts [i].data, pkts [i].len);
            self->stats.write_calls++;
        } while (rc < 0 && errno == EINTR);
        if (rc < 0) {
            self->stats.write_drops++;
            continue;
        }
        written++;
        self->stats.write_pkts++;
        self->stats.write_bytes += pkts [i].len;
    }
    return written;
}

//  --------------------------------------------------------------------------
//  Self test: real interfaces in a private network namespace; the kernel is the
//  peer (it answers pings and ARP, and runs a real TCP sender for the TSO test).

#include "dev_arp.h"
#include "dev_csum.h"
#include "dev_mac.h"
#include "dev_netlink.h"
#include <arpa/inet.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>

static void
s_private_netns (void)
{
    if (unshare (CLONE_NEWNET)) {
        fprintf (stderr, "dev_tun_test: unshare (CLONE_NEWNET): %s (run as root)\n", strerror (errno));
        assert (false);
    }
}

//  Creates, configures (MTU, address, up) and returns a device
static dev_tun_t *
s_device (dev_netlink_t *nl, dev_type_t type, const char *name, int flags, const char *address,
          const char *address6)
{
    char err [200];
    dev_tun_t *tun = dev_tun_new (type, name, flags, err, sizeof err);
    if (!tun)
        fprintf (stderr, "%s\n", err);
    assert (tun);
    dev_addr_t a;
    assert (dev_addr_parse (address, &a, err, sizeof err) == 0);
    dev_addr_t a6;
    if (address6)
        assert (dev_addr_parse (address6, &a6, err, sizeof err) == 0);
    int rc = dev_netlink_set_mtu (nl, dev_tun_ifindex (tun), 1420)
          || dev_netlink_addr_add (nl, dev_tun_ifindex (tun), &a)
          || (address6 && dev_netlink_addr_add (nl, dev_tun_ifindex (tun), &a6))
          || dev_netlink_set_up (nl, dev_tun_ifindex (tun), true);
    if (rc)
        fprintf (stderr, "%s\n", dev_netlink_error (nl));
    assert (rc == 0);
    return tun;
}

static void
s_ip4_header (uint8_t *p, size_t total, uint8_t proto, const char *src, const char *dst)
{
    memset (p, 0, 20);
    p [0] = 0x45;
    dev_put16 (p + 2, (uint16_t) total);
    dev_put16 (p + 6, 0x4000);
    p [8] = 64;
    p [9] = proto;
    assert (inet_pton (AF_INET, src, p + 12) == 1 && inet_pton (AF_INET, dst, p + 16) == 1);
    dev_csum_store (p + 10, dev_csum_fold (dev_csum_add (0, p, 20)));
}

//  ICMP (v4) or ICMPv6 echo request with `payload` bytes
static size_t
s_echo (uint8_t *p, int family, const char *src, const char *dst, uint16_t seq, size_t payload)
{
    size_t l3 = family == AF_INET ? 20 : 40, l4 = 8 + payload;
    uint8_t *icmp = p + l3;
    memset (icmp, 0, 8);
    icmp [0] = family == AF_INET ? 8 : 128;
    dev_put16 (icmp + 4, 0xbf01);
    dev_put16 (icmp + 6, seq);
    for (size_t i = 0; i < payload; i++)
        icmp [8 + i] = (uint8_t) (i + seq);
    if (family == AF_INET) {
        s_ip4_header (p, l3 + l4, IPPROTO_ICMP, src, dst);
        dev_csum_store (icmp + 2, dev_csum_fold (dev_csum_add (0, icmp, l4)));
    }
    else {
        memset (p, 0, 40);
        p [0] = 0x60;
        dev_put16 (p + 4, (uint16_t) l4);
        p [6] = IPPROTO_ICMPV6;
        p [7] = 64;
        assert (inet_pton (AF_INET6, src, p + 8) == 1 && inet_pton (AF_INET6, dst, p + 24) == 1);
        uint64_t sum = dev_csum_pseudo (AF_INET6, p + 8, p + 24, IPPROTO_ICMPV6, (uint32_t) l4);
        dev_csum_store (icmp + 2, dev_csum_fold (dev_csum_add (sum, icmp, l4)));
    }
    return l3 + l4;
}

//  Is p an echo reply to s_echo (family, src, dst, seq, payload)? Checks
//  addresses, type, checksums and payload.
static bool
s_is_reply (const uint8_t *p, size_t len, int family, const char *src, const char *dst, uint16_t *seq,
            size_t payload)
{
    uint8_t a [16], b [16];
    size_t l3 = family == AF_INET ? 20 : 40;
    if (len != l3 + 8 + payload || p [0] >> 4 != (family == AF_INET ? 4 : 6))
        return false;
    inet_pton (family, src, a);
    inet_pton (family, dst, b);
    const uint8_t *icmp = p + l3;
    if (family == AF_INET) {
        if (p [9] != IPPROTO_ICMP || memcmp (p + 12, b, 4) || memcmp (p + 16, a, 4) || icmp [0] != 0)
            return false;
        assert (dev_csum_ok (dev_csum_add (0, p, 20)));
        assert (dev_csum_ok (dev_csum_add (0, icmp, len - 20)));
    }
    else {
        if (p [6] != IPPROTO_ICMPV6 || memcmp (p + 8, b, 16) || memcmp (p + 24, a, 16) || icmp [0] != 129)
            return false;
        uint64_t sum = dev_csum_pseudo (AF_INET6, p + 8, p + 24, IPPROTO_ICMPV6, (uint32_t) (len - 40));
        assert (dev_csum_ok (dev_csum_add (sum, icmp, len - 40)));
    }
    if (dev_get16 (icmp + 4) != 0xbf01)
        return false;
    *seq = dev_get16 (icmp + 6);
    for (size_t i = 0; i < payload; i++)
        assert (icmp [8 + i] == (uint8_t) (i + *seq));
    return true;
}

//  Buffers for batches: one arena, no allocation per packet
#define S_BATCH 64
static uint8_t s_arena [S_BATCH][DEV_GSO_MAX_FRAME];
static uint8_t s_split [DEV_GSO_OUT_SIZE];

static void
s_batch (dev_pkt_t *pkts)
{
    for (int i = 0; i < S_BATCH; i++)
        pkts [i] = (dev_pkt_t) { s_arena [i], 0, sizeof s_arena [i] };
}

//  Writes `count` echo requests in one batch, and reads until every reply came
//  back (or 3 s passed). Like ping, unanswered requests are sent again every
//  250 ms: right after an interface comes up the kernel's IPv6 setup can drop
//  the first ones. Returns the number of replies.
static int
s_ping (dev_tun_t *tun, int family, const char *src, const char *dst, int count, size_t payload, bool verbose)
{
    static uint8_t out [S_BATCH][1500];
    dev_pkt_t pkts [S_BATCH];
    assert (count <= S_BATCH);
    for (int i = 0; i < count; i++) {
        pkts [i].data = out [i];
        pkts [i].len = s_echo (out [i], family, src, dst, (uint16_t) i, payload);
    }
    int written = dev_tun_write_batch (tun, pkts, count);
    if (written < count)
        return 0;
    bool seen [S_BATCH] = { false };
    int replies = 0, others = 0, rounds = 1;
    int64_t now = bus_clock_ms (), deadline = now + 3000, resend = now + 250;
    while (replies < count && now < deadline) {
        if (now >= resend) {
            int missing = 0;
            for (int i = 0; i < count; i++)
                if (!seen [i])
                    pkts [missing++] = (dev_pkt_t) { out [i], s_echo (out [i], family, src, dst, (uint16_t) i, payload), 0 };
            dev_tun_write_batch (tun, pkts, missing);
            resend = now + 250;
            rounds++;
        }
        struct pollfd pfd = { dev_tun_fd (tun), POLLIN, 0 };
        if (poll (&pfd, 1, 50) > 0) {
            s_batch (pkts);
            int n = dev_tun_read_batch (tun, pkts, S_BATCH);
            assert (n >= 0);
            for (int i = 0; i < n; i++) {
                uint8_t *p = pkts [i].data;
                size_t len = pkts [i].len;
                if (dev_tun_hdr_len (tun)) {
                    dev_pkt_t plain [DEV_GSO_MAX_SEGS];
                    const char *why = NULL;
                    int segs = dev_gso_split (p, len, s_split, sizeof s_split, plain, DEV_GSO_MAX_SEGS, &why);
                    assert (segs == 1);
                    p = plain [0].data;
                    len = plain [0].len;
                }
                uint16_t seq;
                if (s_is_reply (p, len, family, src, dst, &seq, payload) && seq < count && !seen [seq]) {
                    seen [seq] = true;
                    replies++;
                }
                else
                    others++;
            }
        }
        now = bus_clock_ms ();
    }
    if (verbose || replies < count)
        fprintf (verbose ? stdout : stderr, "  %s ping %s -> %s: %d/%d replies, %d send rounds (%d other packets)\n",
                 dev_tun_name (tun), src, dst, replies, count, rounds, others);
    return replies;
}

//  TAP: ARP for the device's address from a made-up neighbour, expect the
//  kernel's reply; then ping it over Ethernet. Returns true if both worked.
static bool
s_tap_arp_ping (dev_tun_t *tap, const uint8_t tap_mac [6], bool verbose)
{
    const uint8_t me [6] = { 0x02, 0xbf, 0, 0, 0, 2 };
    const uint8_t bcast [6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    dev_arp_t req = { .op = DEV_ARP_REQUEST, .spa = { 10, 100, 1, 2 }, .tpa = { 10, 100, 1, 1 } };
    memcpy (req.sha, me, 6);
    uint8_t frame [1514];
    dev_pkt_t pkt = { frame, dev_arp_build (frame, sizeof frame, bcast, &req), sizeof frame };
    assert (dev_tun_write_batch (tap, &pkt, 1) == 1);
    bool arp_ok = false, ping_ok = false, ping_sent = false;
    int64_t deadline = bus_clock_ms () + 3000;
    dev_pkt_t pkts [S_BATCH];
    while (!(arp_ok && ping_ok) && bus_clock_ms () < deadline) {
        struct pollfd pfd = { dev_tun_fd (tap), POLLIN, 0 };
        if (poll (&pfd, 1, 100) <= 0)
            continue;
        s_batch (pkts);
        int n = dev_tun_read_batch (tap, pkts, S_BATCH);
        for (int i = 0; i < n; i++) {
            uint8_t *f = pkts [i].data;
            dev_arp_t arp;
            if (dev_arp_parse (f, pkts [i].len, &arp, NULL) == 0 && arp.op == DEV_ARP_REPLY
            &&  memcmp (f, me, 6) == 0 && memcmp (arp.sha, tap_mac, 6) == 0
            &&  memcmp (arp.spa, req.tpa, 4) == 0 && memcmp (arp.tha, me, 6) == 0
            &&  memcmp (arp.tpa, req.spa, 4) == 0) {
                arp_ok = true;
                if (verbose) {
                    char text [DEV_MAC_TEXT];
                    dev_mac_format (arp.sha, text);
                    printf ("  ARP: 10.100.1.1 is-at %s\n", text);
                }
            }
            uint16_t seq;
            if (pkts [i].len > 14 && f [12] == 0x08 && f [13] == 0x00 && memcmp (f, me, 6) == 0
            &&  memcmp (f + 6, tap_mac, 6) == 0
            &&  s_is_reply (f + 14, pkts [i].len - 14, AF_INET, "10.100.1.2", "10.100.1.1", &seq, 56))
                ping_ok = true;
        }
        if (arp_ok && !ping_sent) {
            //  The kernel learned our MAC from the request: ping over Ethernet
            memcpy (frame, tap_mac, 6);
            memcpy (frame + 6, me, 6);
            frame [12] = 0x08;
            frame [13] = 0x00;
            pkt.len = 14 + s_echo (frame + 14, AF_INET, "10.100.1.2", "10.100.1.1", 7, 56);
            assert (dev_tun_write_batch (tap, &pkt, 1) == 1);
            ping_sent = true;
        }
    }
    if (verbose)
        printf ("  %s: ARP %s, ping %s\n", dev_tun_name (tap), arp_ok ? "ok" : "FAILED", ping_ok ? "ok" : "FAILED");
    return arp_ok && ping_ok;
}

//  TSO, for real: the kernel's TCP connects to a fake peer behind the TUN; we
//  answer the SYN, the kernel sends a burst, and that burst must arrive as GSO
//  super-packets that split into valid segments carrying exactly what was sent.
static void
s_tso (dev_tun_t *tun, bool verbose)
{
    int sock = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert (sock >= 0);
    struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons (5201) };
    inet_pton (AF_INET, "10.100.2.2", &peer.sin_addr);
    assert (connect (sock, (struct sockaddr *) &peer, sizeof peer) == -1 && errno == EINPROGRESS);

    dev_pkt_t pkts [S_BATCH], plain [DEV_GSO_MAX_SEGS];
    const char *why = NULL;
    uint32_t isn = 0;
    uint16_t sport = 0;
    int64_t deadline = bus_clock_ms () + 3000;
    while (!sport && bus_clock_ms () < deadline) {
        struct pollfd pfd = { dev_tun_fd (tun), POLLIN, 0 };
        if (poll (&pfd, 1, 100) <= 0)
            continue;
        s_batch (pkts);
        int n = dev_tun_read_batch (tun, pkts, S_BATCH);
        for (int i = 0; i < n; i++) {
            int segs = dev_gso_split (pkts [i].data, pkts [i].len, s_split, sizeof s_split, plain, 1, &why);
            assert (segs == 1);
            uint8_t *ip = plain [0].data, *tcp = ip + 20;
            if (ip [0] == 0x45 && ip [9] == IPPROTO_TCP && dev_get16 (tcp + 2) == 5201 && tcp [13] == 0x02) {
                //  The checksum the kernel left partial is now complete
                uint64_t sum = dev_csum_pseudo (AF_INET, ip + 12, ip + 16, IPPROTO_TCP, (uint32_t) (plain [0].len - 20));
                assert (dev_csum_ok (dev_csum_add (sum, tcp, plain [0].len - 20)));
                sport = dev_get16 (tcp);
                isn = dev_get32 (tcp + 4);
            }
        }
    }
    assert (sport);
    //  SYN-ACK with MSS 1380, window 65535, no window scaling
    uint8_t syn_ack [44];
    s_ip4_header (syn_ack, 44, IPPROTO_TCP, "10.100.2.2", "10.100.2.1");
    uint8_t *tcp = syn_ack + 20;
    memset (tcp, 0, 24);
    dev_put16 (tcp, 5201);
    dev_put16 (tcp + 2, sport);
    dev_put32 (tcp + 4, 777000);
    dev_put32 (tcp + 8, isn + 1);
    tcp [12] = 6 << 4;
    tcp [13] = 0x12;
    dev_put16 (tcp + 14, 65535);
    memcpy (tcp + 20, "\x02\x04\x05\x64", 4);
    uint64_t sum = dev_csum_pseudo (AF_INET, syn_ack + 12, syn_ack + 16, IPPROTO_TCP, 24);
    dev_csum_store (tcp + 16, dev_csum_fold (dev_csum_add (sum, tcp, 24)));
    dev_pkt_t out = { syn_ack, sizeof syn_ack, sizeof syn_ack };
    assert (dev_tun_write_batch (tun, &out, 1) == 1);
    struct pollfd spfd = { sock, POLLOUT, 0 };
    assert (poll (&spfd, 1, 3000) == 1);
    int soerr = -1;
    socklen_t slen = sizeof soerr;
    assert (getsockopt (sock, SOL_SOCKET, SO_ERROR, &soerr, &slen) == 0 && soerr == 0);

    //  Send 60000 bytes; the initial window (10 segments) arrives as GSO
    static uint8_t data [60000];
    for (size_t i = 0; i < sizeof data; i++)
        data [i] = (uint8_t) (i * 13 + i / 1000);
    assert (send (sock, data, sizeof data, 0) > 0);
    size_t received = 0;
    int gso_frames = 0, max_segs = 0, frames = 0;
    deadline = bus_clock_ms () + 3000;
    while (received < 10 * 1380 && bus_clock_ms () < deadline) {
        struct pollfd pfd = { dev_tun_fd (tun), POLLIN, 0 };
        if (poll (&pfd, 1, 100) <= 0)
            continue;
        s_batch (pkts);
        int n = dev_tun_read_batch (tun, pkts, S_BATCH);
        for (int i = 0; i < n; i++) {
            uint8_t gso_type = pkts [i].data [1];
            int segs = dev_gso_split (pkts [i].data, pkts [i].len, s_split, sizeof s_split,
                                      plain, DEV_GSO_MAX_SEGS, &why);
            assert (segs >= 1);
            frames++;
            if (gso_type != VIRTIO_NET_HDR_GSO_NONE) {
                gso_frames++;
                if (verbose)
                    printf ("  read %zu bytes: GSO type %d -> %d segments\n", pkts [i].len, gso_type, segs);
            }
            if (segs > max_segs)
                max_segs = segs;
            for (int s = 0; s < segs; s++) {
                uint8_t *ip = plain [s].data, *t = ip + 20;
                size_t len = plain [s].len;
                if (ip [9] != IPPROTO_TCP || dev_get16 (t + 2) != 5201)
                    continue;
                assert (len <= 1420);
                assert (dev_get16 (ip + 2) == len && dev_csum_ok (dev_csum_add (0, ip, 20)));
                uint64_t ps = dev_csum_pseudo (AF_INET, ip + 12, ip + 16, IPPROTO_TCP, (uint32_t) (len - 20));
                assert (dev_csum_ok (dev_csum_add (ps, t, len - 20)));
                size_t hl = (size_t) (t [12] >> 4) * 4, payload = len - 20 - hl;
                size_t off = dev_get32 (t + 4) - (isn + 1);
                if (payload == 0)
                    continue;
                assert (off + payload <= sizeof data);
                assert (memcmp (t + hl, data + off, payload) == 0);
                if (off == received)
                    received += payload;
            }
        }
    }
    if (verbose)
        printf ("  TSO: %zu bytes in order from %d reads, %d of them GSO, up to %d segments per read\n",
                received, frames, gso_frames, max_segs);
    assert (received >= 10 * 1380);
    assert (gso_frames >= 1 && max_segs >= 2);
    close (sock);
}

//  One TCPv4 segment 10.100.2.3:4000 -> 10.100.2.1:port, ACK (+ extra flags),
//  12 bytes of timestamp option, payload bytes of (seq + i), valid checksums.
static size_t
s_gro_segment (uint8_t *pkt, uint16_t port, uint32_t seq, size_t payload, uint8_t flags, uint16_t id)
{
    size_t hlen = 20 + 32, len = hlen + payload;
    memset (pkt, 0, hlen);
    pkt [0] = 0x45;
    pkt [2] = (uint8_t) (len >> 8); pkt [3] = (uint8_t) len;
    pkt [4] = (uint8_t) (id >> 8); pkt [5] = (uint8_t) id;
    pkt [6] = 0x40;                             //  DF
    pkt [8] = 64; pkt [9] = 6;
    inet_pton (AF_INET, "10.100.2.3", pkt + 12);
    inet_pton (AF_INET, "10.100.2.1", pkt + 16);
    dev_csum_store (pkt + 10, dev_csum_fold (dev_csum_add (0, pkt, 20)));
    uint8_t *tcp = pkt + 20;
    tcp [0] = 4000 >> 8; tcp [1] = 4000 & 255;
    tcp [2] = (uint8_t) (port >> 8); tcp [3] = (uint8_t) port;
    tcp [4] = (uint8_t) (seq >> 24); tcp [5] = (uint8_t) (seq >> 16); tcp [6] = (uint8_t) (seq >> 8); tcp [7] = (uint8_t) seq;
    tcp [11] = 77;                              //  ACK 77
    tcp [12] = 8 << 4;
    tcp [13] = S_TCP_ACK | flags;
    tcp [14] = 0x10;                            //  window
    tcp [20] = 1; tcp [21] = 1; tcp [22] = 8; tcp [23] = 10; tcp [27] = 9;   //  NOP NOP TS 9
    for (size_t i = 0; i < payload; i++)
        pkt [hlen + i] = (uint8_t) (seq + i);
    uint64_t sum = dev_csum_pseudo (AF_INET, pkt + 12, pkt + 16, 6, (uint32_t) (len - 20));
    dev_csum_store (tcp + 16, dev_csum_fold (dev_csum_add (sum, tcp, len - 20)));
    return len;
}

//  GRO on write: runs form under the kernel's rules, a super-packet split
//  again (as the kernel would) gives back the very segments, and the kernel
//  takes one as ONE packet (one RST for three segments to a closed port).
static void
s_gro (dev_tun_t *tso, bool verbose)
{
    static uint8_t seg [8][1500];
    dev_pkt_t pkts [8];
    uint32_t seq = 1000;
    for (int i = 0; i < 8; i++) {
        size_t payload = i == 2 ? 700 : 1000;   //  a short third segment ends the first run
        uint8_t flags = i == 5 ? S_TCP_PSH : 0; //  so does a PSH (the sixth)
        pkts [i] = (dev_pkt_t) { seg [i], s_gro_segment (seg [i], 9, seq, payload, flags, (uint16_t) (50 + i)), 1500 };
        seq += (uint32_t) payload;
    }
    seg [7][8] = 63;                            //  another TTL: not in the run of the seventh
    dev_csum_store (seg [7] + 10, 0);
    dev_csum_store (seg [7] + 10, dev_csum_fold (dev_csum_add (0, seg [7], 20)));
    s_gro_t g;
    assert (s_gro_run (pkts, 8, &g) == 3);
    assert (g.bytes == 52 + 2700 && g.iovcnt == 5 && le16toh (g.vnet.gso_size) == 1000);
    assert (s_gro_run (pkts + 3, 5, &g) == 3);  //  the PSH segment is the last of its run
    assert (g.head [33] & S_TCP_PSH);
    assert (s_gro_run (pkts + 6, 2, &g) == 1);  //  TTL differs
    assert (s_gro_run (pkts, 1, &g) == 1);
    uint8_t gap [1500];
    memcpy (gap, seg [1], pkts [1].len);
    gap [27] ^= 1;                              //  sequence gap (checksum does not matter here)
    dev_pkt_t gapped [2] = { pkts [0], { gap, pkts [1].len, 1500 } };
    assert (s_gro_run (gapped, 2, &g) == 1);

    //  Round trip: the super-packet of the first run, split as the kernel
    //  segments it, is the three segments byte for byte (checksums included)
    assert (s_gro_run (pkts, 8, &g) == 3);
    size_t flen = 0;
    for (int i = 0; i < g.iovcnt; i++) {
        memcpy (s_arena [0] + flen, g.iov [i].iov_base, g.iov [i].iov_len);
        flen += g.iov [i].iov_len;
    }
    dev_pkt_t split [DEV_GSO_MAX_SEGS];
    const char *why = NULL;
    assert (dev_gso_split (s_arena [0], flen, s_split, sizeof s_split, split, DEV_GSO_MAX_SEGS, &why) == 3);
    for (int i = 0; i < 3; i++) {
        assert (split [i].len == pkts [i].len);
        assert (memcmp (split [i].data + 12, pkts [i].data + 12, pkts [i].len - 12) == 0);
    }

    //  The kernel: three segments to a closed port, one writev, one RST back
    dev_pkt_t rd [S_BATCH];
    s_batch (rd);
    while (dev_tun_read_batch (tso, rd, S_BATCH) > 0)
        ;
    uint64_t calls = dev_tun_stats (tso)->write_calls;
    assert (dev_tun_write_batch (tso, pkts, 3) == 3);
    assert (dev_tun_stats (tso)->write_calls == calls + 1 && !tso->gro_off);
    int rsts = 0;
    int64_t deadline = bus_clock_ms () + 1000;
    while (bus_clock_ms () < deadline) {
        struct pollfd pfd = { dev_tun_fd (tso), POLLIN, 0 };
        if (poll (&pfd, 1, rsts ? 50 : 500) <= 0)
            break;                              //  the first came; no more within 50 ms
        s_batch (rd);
        int n = dev_tun_read_batch (tso, rd, S_BATCH);
        for (int i = 0; i < n; i++) {
            const uint8_t *ip = rd [i].data + DEV_VNET_HDR_LEN;
            if (rd [i].len >= DEV_VNET_HDR_LEN + 40 && ip [9] == 6 && (ip [20 + 13] & 0x04))
                rsts++;
        }
    }
    if (verbose)
        printf ("  gro: 3 segments in %d write, %d RST back\n",
                (int) (dev_tun_stats (tso)->write_calls - calls), rsts);
    assert (rsts == 1);
}

void
dev_tun_test (bool verbose)
{
    char err [200];
    //  Refusals with clear messages
    assert (dev_tun_new (DEV_TYPE_TUN, "0123456789abcdefg", 0, err, sizeof err) == NULL);
    assert (strstr (err, "longer than 15"));
    assert (dev_tun_new (DEV_TYPE_TAP, "bftap9", DEV_TUN_OFFLOAD, err, sizeof err) == NULL);
    assert (strstr (err, "only supported on a tun"));

    s_private_netns ();
    dev_netlink_t *nl = dev_netlink_new (err, sizeof err);
    assert (nl);

    //  TUN: the ping fails while the link is down, works once it is up
    dev_tun_t *tun = dev_tun_new (DEV_TYPE_TUN, "bftun0", 0, err, sizeof err);
    assert (tun && strcmp (dev_tun_name (tun), "bftun0") == 0 && dev_tun_hdr_len (tun) == 0);
    assert (dev_tun_type (tun) == DEV_TYPE_TUN);
    assert (s_ping (tun, AF_INET, "10.100.0.2", "10.100.0.1", 1, 56, verbose) == 0);
    assert (dev_tun_stats (tun)->write_drops == 1);
    dev_tun_destroy (&tun);
    assert (tun == NULL);
    tun = s_device (nl, DEV_TYPE_TUN, "bftun0", 0, "10.100.0.1/24", "fd00:bf::1/64");
    //  Nothing queued: a read returns 0 packets after one syscall
    dev_pkt_t pkts [S_BATCH];
    s_batch (pkts);
    uint64_t calls = dev_tun_stats (tun)->read_calls;
    //  (drain what the kernel may have sent on link up, e.g. IPv6 router solicitations)
    while (dev_tun_read_batch (tun, pkts, S_BATCH) > 0)
        ;
    calls = dev_tun_stats (tun)->read_calls;
    assert (dev_tun_read_batch (tun, pkts, S_BATCH) == 0);
    assert (dev_tun_stats (tun)->read_calls == calls + 1);
    //  A batch of 64 pings of 1400 bytes, IPv4 and IPv6
    assert (s_ping (tun, AF_INET, "10.100.0.2", "10.100.0.1", S_BATCH, 1372, verbose) == S_BATCH);
    assert (s_ping (tun, AF_INET6, "fd00:bf::2", "fd00:bf::1", 16, 1352, verbose) == 16);
    const dev_tun_stats_t *st = dev_tun_stats (tun);
    if (verbose)
        printf ("  stats: %lu packets read in %lu read calls, %lu written in %lu write calls\n",
                (unsigned long) st->read_pkts, (unsigned long) st->read_calls,
                (unsigned long) st->write_pkts, (unsigned long) st->write_calls);
    assert (st->write_pkts >= S_BATCH + 16 && st->read_pkts >= S_BATCH + 16);    //  + resends

    //  A second device of the same name cannot be created while this one lives
    assert (dev_tun_new (DEV_TYPE_TUN, "bftun0", 0, err, sizeof err) == NULL);
    if (verbose)
        printf ("  %s\n", err);
    assert (strstr (err, "bftun0"));

    //  Offloads: pings with vnet headers, then a real TCP burst arrives as GSO
    dev_tun_t *tso = s_device (nl, DEV_TYPE_TUN, "bftso0", DEV_TUN_OFFLOAD, "10.100.2.1/24", NULL);
    assert (dev_tun_hdr_len (tso) == DEV_VNET_HDR_LEN);
    assert (s_ping (tso, AF_INET, "10.100.2.3", "10.100.2.1", 8, 1000, verbose) == 8);
    s_tso (tso, verbose);
    s_gro (tso, verbose);

    //  TAP: MAC from a node key, ARP resolves, ping works
    dev_tun_t *tap = dev_tun_new (DEV_TYPE_TAP, "bftap0", 0, err, sizeof err);
    assert (tap && dev_tun_type (tap) == DEV_TYPE_TAP);
    uint8_t key [32] = { 7 }, mac [6];
    dev_mac_from_key (key, mac);
    assert (dev_netlink_set_mac (nl, dev_tun_ifindex (tap), mac) == 0);
    dev_tun_destroy (&tap);
    tap = s_device (nl, DEV_TYPE_TAP, "bftap0", 0, "10.100.1.1/24", NULL);
    assert (dev_netlink_set_mac (nl, dev_tun_ifindex (tap), mac) == 0);
    assert (s_tap_arp_ping (tap, mac, verbose));

    //  Destroy removes the interfaces
    assert (if_nametoindex ("bftun0") && if_nametoindex ("bftap0") && if_nametoindex ("bftso0"));
    dev_tun_destroy (&tun);
    dev_tun_destroy (&tap);
    dev_tun_destroy (&tso);
    assert (if_nametoindex ("bftun0") == 0 && if_nametoindex ("bftap0") == 0 && if_nametoindex ("bftso0") == 0);
    //  ... and the name is free again
    tun = dev_tun_new (DEV_TYPE_TUN, "bftun0", 0, err, sizeof err);
    assert (tun);
    dev_tun_destroy (&tun);
    dev_netlink_destroy (&nl);
}
