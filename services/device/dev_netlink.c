/*  dev_netlink: interface configuration over rtnetlink (see dev_netlink.h). */
#include "dev_netlink.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_BUF 32768             //  a request, or one datagram of a dump (<= 32 KB)
#define S_TIMEOUT_MS 2000       //  the kernel answers in microseconds; bound anyway

struct _dev_netlink_t {
    int fd;
    uint32_t seq;
    uint32_t portid;
    int err;
    char error [256];
    uint8_t buf [S_BUF] __attribute__ ((aligned (NLMSG_ALIGNTO)));
};

typedef struct {
    struct nlmsghdr *nh;
    size_t size;
} s_msg_t;

static void
s_fail (dev_netlink_t *self, int err, const char *fmt, ...)
{
    char what [160];
    va_list args;
    va_start (args, fmt);
    vsnprintf (what, sizeof what, fmt, args);
    va_end (args);
    self->err = err;
    const char *name = strerrorname_np (err);
    snprintf (self->error, sizeof self->error, "%s: %s (%s)", what, strerror (err), name ? name : "?");
}

dev_netlink_t *
dev_netlink_new (char *err, size_t errsize)
{
    dev_netlink_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errsize, "netlink: out of memory");
        return NULL;
    }
    self->fd = socket (AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (self->fd < 0) {
        if (err && errsize)
            snprintf (err, errsize, "netlink: cannot open a NETLINK_ROUTE socket: %s", strerror (errno));
        free (self);
        return NULL;
    }
    struct sockaddr_nl local = { .nl_family = AF_NETLINK };
    socklen_t alen = sizeof local;
    //  Extended ACKs give the kernel's own reason text where it has one
    int one = 1;
    setsockopt (self->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    if (bind (self->fd, (struct sockaddr *) &local, sizeof local)
    ||  getsockname (self->fd, (struct sockaddr *) &local, &alen)) {
        if (err && errsize)
            snprintf (err, errsize, "netlink: cannot bind: %s", strerror (errno));
        close (self->fd);
        free (self);
        return NULL;
    }
    self->portid = local.nl_pid;
    self->seq = (uint32_t) time (NULL);
    return self;
}

void
dev_netlink_destroy (dev_netlink_t **self_p)
{
    if (*self_p) {
        close ((*self_p)->fd);
        free (*self_p);
        *self_p = NULL;
    }
}

const char *dev_netlink_error (dev_netlink_t *self) { return self->error; }
int dev_netlink_errno (dev_netlink_t *self) { return self->err; }

//  NLMSG_OK without its signed/unsigned comparison (clang -Wsign-compare)
static bool
s_nl_ok (const struct nlmsghdr *nh, int len)
{
    return len >= (int) sizeof *nh && nh->nlmsg_len >= sizeof *nh && nh->nlmsg_len <= (unsigned) len;
}

//  Starts a request in self->buf: header plus a fixed family struct
static s_msg_t
s_msg (dev_netlink_t *self, uint16_t type, uint16_t flags, const void *body, size_t body_len)
{
    memset (self->buf, 0, NLMSG_SPACE (body_len));
    struct nlmsghdr *nh = (struct nlmsghdr *) self->buf;
    nh->nlmsg_len = (uint32_t) NLMSG_LENGTH (body_len);
    nh->nlmsg_type = type;
    nh->nlmsg_flags = (uint16_t) (NLM_F_REQUEST | flags);
    nh->nlmsg_seq = ++self->seq;
    memcpy (NLMSG_DATA (nh), body, body_len);
    return (s_msg_t) { nh, sizeof self->buf };
}

static void
s_attr (s_msg_t *m, uint16_t type, const void *data, size_t len)
{
    size_t at = NLMSG_ALIGN (m->nh->nlmsg_len);
    assert (at + RTA_SPACE (len) <= m->size);       //  requests are small and fixed
    struct rtattr *rta = (struct rtattr *) ((uint8_t *) m->nh + at);
    rta->rta_type = type;
    rta->rta_len = (uint16_t) RTA_LENGTH (len);
    memcpy (RTA_DATA (rta), data, len);
    m->nh->nlmsg_len = (uint32_t) (at + RTA_SPACE (len));
}

//  Waits up to the deadline for a datagram; returns its length or -1
static ssize_t
s_recv (dev_netlink_t *self, const char *what)
{
    struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
    int rc = poll (&pfd, 1, S_TIMEOUT_MS);
    if (rc <= 0) {
        s_fail (self, rc == 0 ? ETIMEDOUT : errno, "%s: no answer from the kernel", what);
        return -1;
    }
    ssize_t n = recv (self->fd, self->buf, sizeof self->buf, 0);
    if (n < 0) {
        s_fail (self, errno, "%s: receiving the answer", what);
        return -1;
    }
    return n;
}

//  An NLMSG_ERROR with the extended ACK message (NLMSGERR_ATTR_MSG), if any
static void
s_nlerr (dev_netlink_t *self, struct nlmsghdr *nh, const char *what)
{
    struct nlmsgerr *e = NLMSG_DATA (nh);
    int err = -e->error;
    const char *ext = NULL;
    if (nh->nlmsg_flags & NLM_F_ACK_TLVS) {
        size_t off = sizeof *e;
        if (!(nh->nlmsg_flags & NLM_F_CAPPED))
            off += e->msg.nlmsg_len - sizeof e->msg;
        size_t total = nh->nlmsg_len - NLMSG_HDRLEN;
        struct rtattr *rta = (struct rtattr *) ((uint8_t *) e + NLMSG_ALIGN (off));
        int len = off < total ? (int) (total - NLMSG_ALIGN (off)) : 0;
        for (; RTA_OK (rta, len); rta = RTA_NEXT (rta, len))
            if (rta->rta_type == NLMSGERR_ATTR_MSG && RTA_PAYLOAD (rta) > 0
            &&  ((char *) RTA_DATA (rta)) [RTA_PAYLOAD (rta) - 1] == 0)
                ext = RTA_DATA (rta);
    }
    if (ext)
        s_fail (self, err, "%s (%s)", what, ext);
    else
        s_fail (self, err, "%s", what);
}

//  Sends the request in self->buf and waits for its ACK
static int
s_talk (dev_netlink_t *self, s_msg_t *m, const char *what)
{
    m->nh->nlmsg_flags |= NLM_F_ACK;
    uint32_t seq = m->nh->nlmsg_seq;
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    if (sendto (self->fd, m->nh, m->nh->nlmsg_len, 0, (struct sockaddr *) &kernel, sizeof kernel) < 0) {
        s_fail (self, errno, "%s: sending the request", what);
        return -1;
    }
    for (int tries = 0; tries < 16; tries++) {
        ssize_t n = s_recv (self, what);
        if (n < 0)
            return -1;
        int len = (int) n;
        for (struct nlmsghdr *nh = (struct nlmsghdr *) self->buf; s_nl_ok (nh, len); nh = NLMSG_NEXT (nh, len)) {
            if (nh->nlmsg_seq != seq || nh->nlmsg_type != NLMSG_ERROR)
                continue;       //  a stale answer to an earlier, timed-out request
            if (nh->nlmsg_len < NLMSG_LENGTH (sizeof (struct nlmsgerr))) {
                s_fail (self, EPROTO, "%s: truncated netlink error message", what);
                return -1;
            }
            struct nlmsgerr *e = NLMSG_DATA (nh);
            if (e->error == 0)
                return 0;
            s_nlerr (self, nh, what);
            return -1;
        }
    }
    s_fail (self, EPROTO, "%s: no acknowledgement", what);
    return -1;
}

int
dev_netlink_ifindex (dev_netlink_t *self, const char *name)
{
    unsigned index = if_nametoindex (name);
    if (index == 0) {
        s_fail (self, errno, "interface \"%s\"", name);
        return -1;
    }
    return (int) index;
}

static s_msg_t
s_link_msg (dev_netlink_t *self, int ifindex, unsigned flags, unsigned change)
{
    struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex,
                             .ifi_flags = flags, .ifi_change = change };
    return s_msg (self, RTM_NEWLINK, 0, &ifi, sizeof ifi);
}

int
dev_netlink_set_up (dev_netlink_t *self, int ifindex, bool up)
{
    s_msg_t m = s_link_msg (self, ifindex, up ? IFF_UP : 0, IFF_UP);
    char what [64];
    snprintf (what, sizeof what, "set link %d %s", ifindex, up ? "up" : "down");
    return s_talk (self, &m, what);
}

int
dev_netlink_set_mtu (dev_netlink_t *self, int ifindex, int mtu)
{
    s_msg_t m = s_link_msg (self, ifindex, 0, 0);
    uint32_t v = (uint32_t) mtu;
    s_attr (&m, IFLA_MTU, &v, sizeof v);
    char what [64];
    snprintf (what, sizeof what, "set link %d mtu %d", ifindex, mtu);
    return s_talk (self, &m, what);
}

int
dev_netlink_set_mac (dev_netlink_t *self, int ifindex, const uint8_t mac [6])
{
    s_msg_t m = s_link_msg (self, ifindex, 0, 0);
    s_attr (&m, IFLA_ADDRESS, mac, 6);
    char what [80];
    snprintf (what, sizeof what, "set link %d address %02x:%02x:%02x:%02x:%02x:%02x",
              ifindex, mac [0], mac [1], mac [2], mac [3], mac [4], mac [5]);
    return s_talk (self, &m, what);
}

static int
s_addr (dev_netlink_t *self, int ifindex, const dev_addr_t *addr, bool add)
{
    struct ifaddrmsg ifa = { .ifa_family = (uint8_t) addr->family, .ifa_prefixlen = (uint8_t) addr->prefix,
                             .ifa_index = (uint32_t) ifindex };
    s_msg_t m = s_msg (self, add ? RTM_NEWADDR : RTM_DELADDR,
                       add ? NLM_F_CREATE | NLM_F_EXCL : 0, &ifa, sizeof ifa);
    size_t alen = addr->family == AF_INET ? 4 : 16;
    s_attr (&m, IFA_LOCAL, addr->addr, alen);
    s_attr (&m, IFA_ADDRESS, addr->addr, alen);
    if (add && addr->family == AF_INET && addr->prefix <= 30) {
        uint32_t ip;
        memcpy (&ip, addr->addr, 4);
        uint32_t bcast = htonl (ntohl (ip) | (addr->prefix ? ~0u >> addr->prefix : ~0u));
        s_attr (&m, IFA_BROADCAST, &bcast, 4);
    }
    if (add && addr->family == AF_INET6) {
        uint32_t flags = IFA_F_NODAD;
        s_attr (&m, IFA_FLAGS, &flags, sizeof flags);
    }
    char text [DEV_ADDR_TEXT], what [120];
    dev_addr_format (addr, text, sizeof text);
    snprintf (what, sizeof what, "%s address %s on link %d", add ? "add" : "delete", text, ifindex);
    return s_talk (self, &m, what);
}

int dev_netlink_addr_add (dev_netlink_t *self, int ifindex, const dev_addr_t *addr) { return s_addr (self, ifindex, addr, true); }
int dev_netlink_addr_del (dev_netlink_t *self, int ifindex, const dev_addr_t *addr) { return s_addr (self, ifindex, addr, false); }

static int
s_route (dev_netlink_t *self, int ifindex, const dev_addr_t *dst, uint32_t metric, bool add)
{
    struct rtmsg rtm = { .rtm_family = (uint8_t) dst->family, .rtm_dst_len = (uint8_t) dst->prefix,
                         .rtm_table = RT_TABLE_MAIN, .rtm_protocol = RTPROT_STATIC,
                         .rtm_scope = RT_SCOPE_LINK, .rtm_type = RTN_UNICAST };
    if (!add)
        rtm.rtm_scope = RT_SCOPE_NOWHERE;
    s_msg_t m = s_msg (self, add ? RTM_NEWROUTE : RTM_DELROUTE,
                       add ? NLM_F_CREATE | NLM_F_EXCL : 0, &rtm, sizeof rtm);
    //  The network address: host bits of dst cleared, as the kernel demands
    uint8_t net [16] = { 0 };
    size_t alen = dst->family == AF_INET ? 4 : 16;
    for (int bit = 0; bit < dst->prefix; bit++)
        net [bit / 8] |= dst->addr [bit / 8] & (0x80 >> (bit % 8));
    s_attr (&m, RTA_DST, net, alen);
    uint32_t oif = (uint32_t) ifindex;
    s_attr (&m, RTA_OIF, &oif, sizeof oif);
    if (metric)
        s_attr (&m, RTA_PRIORITY, &metric, sizeof metric);
    char text [DEV_ADDR_TEXT], what [120];
    dev_addr_format (dst, text, sizeof text);
    snprintf (what, sizeof what, "%s route %s dev %d", add ? "add" : "delete", text, ifindex);
    return s_talk (self, &m, what);
}

int dev_netlink_route_add (dev_netlink_t *self, int ifindex, const dev_addr_t *dst, uint32_t metric) { return s_route (self, ifindex, dst, metric, true); }
int dev_netlink_route_del (dev_netlink_t *self, int ifindex, const dev_addr_t *dst) { return s_route (self, ifindex, dst, 0, false); }

int
dev_netlink_link_del (dev_netlink_t *self, int ifindex)
{
    struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex };
    s_msg_t m = s_msg (self, RTM_DELLINK, 0, &ifi, sizeof ifi);
    char what [64];
    snprintf (what, sizeof what, "delete link %d", ifindex);
    return s_talk (self, &m, what);
}

//  Sends a GET request and calls fn on every answer message until DONE (a dump)
//  or the single answer; fn returns nonzero to note a match.
typedef int (s_each_fn) (struct nlmsghdr *nh, void *arg);

static int
s_get (dev_netlink_t *self, s_msg_t *m, const char *what, s_each_fn *fn, void *arg)
{
    bool dump = m->nh->nlmsg_flags & NLM_F_DUMP;
    uint32_t seq = m->nh->nlmsg_seq;
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    if (sendto (self->fd, m->nh, m->nh->nlmsg_len, 0, (struct sockaddr *) &kernel, sizeof kernel) < 0) {
        s_fail (self, errno, "%s: sending the request", what);
        return -1;
    }
    int found = 0;
    //  Bounded: a dump of addresses on a busy host is a few datagrams
    for (int rounds = 0; rounds < 4096; rounds++) {
        ssize_t n = s_recv (self, what);
        if (n < 0)
            return -1;
        int len = (int) n;
        for (struct nlmsghdr *nh = (struct nlmsghdr *) self->buf; s_nl_ok (nh, len); nh = NLMSG_NEXT (nh, len)) {
            if (nh->nlmsg_seq != seq)
                continue;
            if (nh->nlmsg_type == NLMSG_DONE)
                return found;
            if (nh->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = NLMSG_DATA (nh);
                if (nh->nlmsg_len < NLMSG_LENGTH (sizeof *e)) {
                    s_fail (self, EPROTO, "%s: truncated netlink error message", what);
                    return -1;
                }
                if (e->error == 0)
                    return found;
                s_nlerr (self, nh, what);
                return -1;
            }
            if (fn (nh, arg))
                found = 1;
            if (!dump)
                return found;
        }
    }
    s_fail (self, EPROTO, "%s: the dump did not end", what);
    return -1;
}

static int
s_link_parse (struct nlmsghdr *nh, void *arg)
{
    dev_link_info_t *info = arg;
    if (nh->nlmsg_type != RTM_NEWLINK || nh->nlmsg_len < NLMSG_LENGTH (sizeof (struct ifinfomsg)))
        return 0;
    struct ifinfomsg *ifi = NLMSG_DATA (nh);
    info->flags = ifi->ifi_flags;
    int len = (int) IFLA_PAYLOAD (nh);
    for (struct rtattr *rta = IFLA_RTA (ifi); RTA_OK (rta, len); rta = RTA_NEXT (rta, len)) {
        if (rta->rta_type == IFLA_MTU && RTA_PAYLOAD (rta) >= 4)
            memcpy (&info->mtu, RTA_DATA (rta), 4);
        else
        if (rta->rta_type == IFLA_ADDRESS && RTA_PAYLOAD (rta) == 6) {
            memcpy (info->mac, RTA_DATA (rta), 6);
            info->has_mac = true;
        }
        else
        if (rta->rta_type == IFLA_IFNAME && RTA_PAYLOAD (rta) > 0)
            snprintf (info->name, sizeof info->name, "%.*s", (int) RTA_PAYLOAD (rta), (char *) RTA_DATA (rta));
    }
    return 1;
}

int
dev_netlink_link_get (dev_netlink_t *self, int ifindex, dev_link_info_t *info)
{
    memset (info, 0, sizeof *info);
    struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex };
    s_msg_t m = s_msg (self, RTM_GETLINK, 0, &ifi, sizeof ifi);
    char what [64];
    snprintf (what, sizeof what, "get link %d", ifindex);
    int rc = s_get (self, &m, what, s_link_parse, info);
    if (rc == 0)
        s_fail (self, ENODEV, "%s: no answer", what);
    return rc == 1 ? 0 : -1;
}

typedef struct {
    int ifindex;
    const dev_addr_t *addr;
} s_addr_query_t;

static int
s_addr_match (struct nlmsghdr *nh, void *arg)
{
    s_addr_query_t *q = arg;
    if (nh->nlmsg_type != RTM_NEWADDR || nh->nlmsg_len < NLMSG_LENGTH (sizeof (struct ifaddrmsg)))
        return 0;
    struct ifaddrmsg *ifa = NLMSG_DATA (nh);
    if ((int) ifa->ifa_index != q->ifindex || ifa->ifa_family != q->addr->family
    ||  ifa->ifa_prefixlen != q->addr->prefix)
        return 0;
    size_t alen = q->addr->family == AF_INET ? 4 : 16;
    int len = (int) IFA_PAYLOAD (nh);
    for (struct rtattr *rta = IFA_RTA (ifa); RTA_OK (rta, len); rta = RTA_NEXT (rta, len))
        if ((rta->rta_type == IFA_LOCAL || rta->rta_type == IFA_ADDRESS)
        &&  RTA_PAYLOAD (rta) == alen && memcmp (RTA_DATA (rta), q->addr->addr, alen) == 0)
            return 1;
    return 0;
}

int
dev_netlink_addr_has (dev_netlink_t *self, int ifindex, const dev_addr_t *addr)
{
    struct ifaddrmsg ifa = { .ifa_family = (uint8_t) addr->family };
    s_msg_t m = s_msg (self, RTM_GETADDR, NLM_F_DUMP, &ifa, sizeof ifa);
    s_addr_query_t q = { ifindex, addr };
    return s_get (self, &m, "list addresses", s_addr_match, &q);
}

//  --------------------------------------------------------------------------
//  Self test: in a private network namespace, on real TUN/TAP devices

#include "dev_tun.h"
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>

static void
s_expect_fail (dev_netlink_t *self, int rc, int err, const char *text, bool verbose)
{
    if (verbose)
        printf ("  refused: %s\n", dev_netlink_error (self));
    assert (rc == -1);
    assert (dev_netlink_errno (self) == err);
    assert (strstr (dev_netlink_error (self), text));
}

void
dev_netlink_test (bool verbose)
{
    char err [200];
    if (unshare (CLONE_NEWNET)) {
        fprintf (stderr, "dev_netlink_test: unshare (CLONE_NEWNET): %s (run as root)\n", strerror (errno));
        assert (false);
    }
    dev_netlink_t *nl = dev_netlink_new (err, sizeof err);
    assert (nl);
    dev_tun_t *tun = dev_tun_new (DEV_TYPE_TUN, "bfnl0", 0, err, sizeof err);
    dev_tun_t *tap = dev_tun_new (DEV_TYPE_TAP, "bfnl1", 0, err, sizeof err);
    assert (tun && tap);
    int tun_ix = dev_netlink_ifindex (nl, "bfnl0"), tap_ix = dev_netlink_ifindex (nl, "bfnl1");
    assert (tun_ix == dev_tun_ifindex (tun) && tap_ix == dev_tun_ifindex (tap));
    s_expect_fail (nl, dev_netlink_ifindex (nl, "bfnope"), ENODEV, "interface \"bfnope\": No such device (ENODEV)", verbose);

    //  Link: down at first; MTU, up, down, read back each time
    dev_link_info_t info;
    assert (dev_netlink_link_get (nl, tun_ix, &info) == 0);
    assert (strcmp (info.name, "bfnl0") == 0 && !(info.flags & IFF_UP) && info.mtu == 1500 && !info.has_mac);
    assert (dev_netlink_set_mtu (nl, tun_ix, 1420) == 0);
    assert (dev_netlink_set_up (nl, tun_ix, true) == 0);
    assert (dev_netlink_link_get (nl, tun_ix, &info) == 0 && info.mtu == 1420 && (info.flags & IFF_UP));
    assert (dev_netlink_set_up (nl, tun_ix, false) == 0);
    assert (dev_netlink_link_get (nl, tun_ix, &info) == 0 && !(info.flags & IFF_UP));
    s_expect_fail (nl, dev_netlink_set_mtu (nl, tun_ix, 50), EINVAL, "set link", verbose);
    s_expect_fail (nl, dev_netlink_set_up (nl, 999999, true), ENODEV, "set link 999999 up", verbose);
    s_expect_fail (nl, dev_netlink_link_get (nl, 999999, &info), ENODEV, "get link 999999", verbose);

    //  MAC on the TAP, refused on the TUN (no link-layer address)
    const uint8_t mac [6] = { 0x02, 0xbf, 0x01, 0x02, 0x03, 0x04 };
    assert (dev_netlink_set_mac (nl, tap_ix, mac) == 0);
    assert (dev_netlink_link_get (nl, tap_ix, &info) == 0 && info.has_mac && memcmp (info.mac, mac, 6) == 0);
    assert (dev_netlink_set_mac (nl, tun_ix, mac) == -1);
    if (verbose)
        printf ("  refused: %s\n", dev_netlink_error (nl));
    assert (strstr (dev_netlink_error (nl), "set link"));

    //  Addresses: add, read back, duplicate refused, delete
    dev_addr_t a4, a6, other;
    assert (dev_addr_parse ("10.100.0.1/16", &a4, err, sizeof err) == 0);
    assert (dev_addr_parse ("fd00:bf::1/64", &a6, err, sizeof err) == 0);
    assert (dev_addr_parse ("10.100.0.1/24", &other, err, sizeof err) == 0);
    assert (dev_netlink_addr_has (nl, tun_ix, &a4) == 0);
    assert (dev_netlink_addr_add (nl, tun_ix, &a4) == 0);
    assert (dev_netlink_addr_add (nl, tun_ix, &a6) == 0);
    assert (dev_netlink_addr_has (nl, tun_ix, &a4) == 1);
    assert (dev_netlink_addr_has (nl, tun_ix, &a6) == 1);
    assert (dev_netlink_addr_has (nl, tun_ix, &other) == 0);     //  prefix matters
    assert (dev_netlink_addr_has (nl, tap_ix, &a4) == 0);        //  interface matters
    s_expect_fail (nl, dev_netlink_addr_add (nl, tun_ix, &a4), EEXIST,
                   "add address 10.100.0.1/16 on link", verbose);
    assert (dev_netlink_addr_del (nl, tun_ix, &a4) == 0);
    assert (dev_netlink_addr_has (nl, tun_ix, &a4) == 0);
    assert (dev_netlink_addr_has (nl, tun_ix, &a6) == 1);
    s_expect_fail (nl, dev_netlink_addr_del (nl, tun_ix, &a4), EADDRNOTAVAIL, "delete address", verbose);

    //  Routes: a subnet behind the device (the link must be up)
    assert (dev_netlink_set_up (nl, tun_ix, true) == 0);
    dev_addr_t net;
    assert (dev_addr_parse ("10.200.3.4/16", &net, err, sizeof err) == 0);     //  host bits cleared
    assert (dev_netlink_route_add (nl, tun_ix, &net, 10) == 0);
    s_expect_fail (nl, dev_netlink_route_add (nl, tun_ix, &net, 10), EEXIST, "add route 10.200.3.4/16", verbose);
    //  The kernel now routes 10.200.x.x out of the TUN
    int sock = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons (9) };
    inet_pton (AF_INET, "10.200.9.9", &dst.sin_addr);
    assert (sock >= 0 && sendto (sock, "x", 1, 0, (struct sockaddr *) &dst, sizeof dst) == 1);
    assert (dev_netlink_route_del (nl, tun_ix, &net) == 0);
    assert (sendto (sock, "x", 1, 0, (struct sockaddr *) &dst, sizeof dst) == -1 && errno == ENETUNREACH);
    close (sock);
    s_expect_fail (nl, dev_netlink_route_del (nl, tun_ix, &net), ESRCH, "delete route", verbose);
    dev_addr_t net6;
    assert (dev_addr_parse ("fd00:1::/48", &net6, err, sizeof err) == 0);
    assert (dev_netlink_route_add (nl, tun_ix, &net6, 0) == 0);
    assert (dev_netlink_route_del (nl, tun_ix, &net6) == 0);

    //  A persistent interface left behind (a crashed older version) is deleted
    assert (ioctl (dev_tun_fd (tap), TUNSETPERSIST, 1) == 0);
    dev_tun_destroy (&tap);
    assert (if_nametoindex ("bfnl1") == (unsigned) tap_ix);
    assert (dev_netlink_link_del (nl, tap_ix) == 0);
    assert (if_nametoindex ("bfnl1") == 0);
    s_expect_fail (nl, dev_netlink_link_del (nl, tap_ix), ENODEV, "delete link", verbose);

    dev_tun_destroy (&tun);
    assert (if_nametoindex ("bfnl0") == 0);
    dev_netlink_destroy (&nl);
    assert (nl == NULL);
}
