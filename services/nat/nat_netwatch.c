/*  nat_netwatch: rtnetlink address and route events (see the header). */
#include "nat_netwatch.h"

#include <assert.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

struct _nat_netwatch_t {
    int fd;
    char ignore [IF_NAMESIZE];
    int ignore_index;           //  the tunnel's interface index when last seen, 0: none
    uint64_t changes, malformed;
};

nat_netwatch_t *
nat_netwatch_new (const char *ignore_ifname, char *err, size_t err_size)
{
    nat_netwatch_t *self = (nat_netwatch_t *) calloc (1, sizeof *self);
    assert (self);
    if (ignore_ifname) {
        snprintf (self->ignore, sizeof self->ignore, "%s", ignore_ifname);
        self->ignore_index = (int) if_nametoindex (ignore_ifname);
    }
    self->fd = socket (AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    struct sockaddr_nl local = {
        .nl_family = AF_NETLINK,
        .nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE,
    };
    if (self->fd < 0 || bind (self->fd, (struct sockaddr *) &local, sizeof local)) {
        snprintf (err, err_size, "rtnetlink: %s", strerror (errno));
        nat_netwatch_destroy (&self);
    }
    return self;
}

void
nat_netwatch_destroy (nat_netwatch_t **self_p)
{
    assert (self_p);
    nat_netwatch_t *self = *self_p;
    if (!self)
        return;
    if (self->fd >= 0)
        close (self->fd);
    free (self);
    *self_p = NULL;
}

int
nat_netwatch_fd (nat_netwatch_t *self)
{
    return self->fd;
}

uint64_t
nat_netwatch_changes (nat_netwatch_t *self)
{
    return self->changes;
}

uint64_t
nat_netwatch_malformed (nat_netwatch_t *self)
{
    return self->malformed;
}

//  Is ifindex the tunnel's interface? An interface that is gone already has no
//  name: it was the tunnel's if that was its index when last seen (the device
//  service replaces its interface when it restarts, and the old one's routes and
//  addresses go with it)
static bool
s_ignored (nat_netwatch_t *self, int ifindex)
{
    char name [IF_NAMESIZE];
    if (!*self->ignore || ifindex <= 0)
        return false;
    if (!if_indextoname ((unsigned) ifindex, name))
        return ifindex == self->ignore_index;
    if (strcmp (name, self->ignore))
        return false;
    self->ignore_index = ifindex;
    return true;
}

//  The outgoing interface of a route message (RTA_OIF), 0 when it has none
static int
s_route_oif (const struct nlmsghdr *h, const struct rtmsg *rt)
{
    //  Walked by hand with unsigned sizes, every step checked against what is
    //  left: RTA_NEXT subtracts the aligned attribute length, which may be more
    //  than what is left, and the macros' mix of int and unsigned lengths let a
    //  walk run past the end (found by fuzz_demux: corpus netwatch-rta-overrun)
    const uint8_t *attrs = (const uint8_t *) RTM_RTA (rt);
    size_t len = h->nlmsg_len - NLMSG_LENGTH (sizeof *rt), off = 0;
    while (len - off >= sizeof (struct rtattr)) {
        const struct rtattr *a = (const struct rtattr *) (attrs + off);
        if (a->rta_len < sizeof (struct rtattr) || a->rta_len > len - off)
            break;
        if (a->rta_type == RTA_OIF && a->rta_len - sizeof (struct rtattr) >= sizeof (int)) {
            int oif;
            memcpy (&oif, attrs + off + RTA_LENGTH (0), sizeof oif);
            return oif;
        }
        size_t step = RTA_ALIGN (a->rta_len);
        if (step >= len - off)
            break;
        off += step;
    }
    return 0;
}

int
nat_netwatch_parse (nat_netwatch_t *self, const uint8_t *data, size_t size)
{
    int count = 0;
    //  The buffer may be unaligned for a fuzzer, so messages are walked on an
    //  aligned copy
    static _Thread_local uint32_t buf [8192 / 4];
    if (size > sizeof buf) {
        self->malformed++;
        size = sizeof buf;
    }
    memcpy (buf, data, size);
    //  By hand, as the attribute walk (s_route_oif): each message's length is
    //  checked against what is left, and the walk ends when the next aligned
    //  start would be at or past the end
    size_t off = 0;
    if (size && size < sizeof (struct nlmsghdr))
        self->malformed++;          //  not even a header
    while (size - off >= sizeof (struct nlmsghdr)) {
        const struct nlmsghdr *h = (const struct nlmsghdr *) ((const uint8_t *) buf + off);
        if (h->nlmsg_len < sizeof (struct nlmsghdr) || h->nlmsg_len > size - off) {
            self->malformed++;
            break;
        }
        switch (h->nlmsg_type) {
            case RTM_NEWADDR:
            case RTM_DELADDR: {
                if (h->nlmsg_len < NLMSG_LENGTH (sizeof (struct ifaddrmsg))) {
                    self->malformed++;
                    off = size;         //  the walk ends; what was counted stays counted
                    continue;
                }
                const struct ifaddrmsg *ifa = (const struct ifaddrmsg *) NLMSG_DATA (h);
                if (!s_ignored (self, (int) ifa->ifa_index))
                    count++;
                break;
            }
            case RTM_NEWROUTE:
            case RTM_DELROUTE: {
                if (h->nlmsg_len < NLMSG_LENGTH (sizeof (struct rtmsg))) {
                    self->malformed++;
                    off = size;         //  the walk ends; what was counted stays counted
                    continue;
                }
                const struct rtmsg *rt = (const struct rtmsg *) NLMSG_DATA (h);
                if (rt->rtm_table == RT_TABLE_MAIN && rt->rtm_protocol != RTPROT_KERNEL
                &&  !s_ignored (self, s_route_oif (h, rt)))
                    count++;
                break;
            }
            default:
                break;
        }
        size_t step = NLMSG_ALIGN (h->nlmsg_len);
        if (step >= size - off)
            break;
        off += step;
    }
    self->changes += (uint64_t) count;
    return count;
}

int
nat_netwatch_read (nat_netwatch_t *self)
{
    int count = 0;
    for (int round = 0; round < 64; round++) {
        uint8_t buf [8192];
        struct sockaddr_nl from;
        socklen_t from_len = sizeof from;
        ssize_t n = recvfrom (self->fd, buf, sizeof buf, 0, (struct sockaddr *) &from, &from_len);
        if (n < 0) {
            //  ENOBUFS: the kernel dropped events; something changed for sure
            if (errno == ENOBUFS) {
                self->changes++;
                count++;
                continue;
            }
            break;
        }
        if (from_len != sizeof from || from.nl_pid != 0)
            continue;                   //  only the kernel speaks here
        count += nat_netwatch_parse (self, buf, (size_t) n);
    }
    return count;
}

//  ---------------------------------------------------------------------------
//  Self test

static size_t
s_msg (uint8_t *out, uint16_t type, const void *body, size_t body_size, const struct rtattr *attr, const void *attr_data)
{
    struct nlmsghdr h = { .nlmsg_type = type };
    size_t len = NLMSG_LENGTH (body_size) + (attr ? RTA_SPACE (attr->rta_len - RTA_LENGTH (0)) : 0);
    h.nlmsg_len = (uint32_t) len;
    memset (out, 0, NLMSG_ALIGN (len));
    memcpy (out, &h, sizeof h);
    memcpy (out + NLMSG_HDRLEN, body, body_size);
    if (attr) {
        uint8_t *a = out + NLMSG_LENGTH (body_size);
        memcpy (a, attr, sizeof *attr);
        memcpy (a + RTA_LENGTH (0), attr_data, attr->rta_len - RTA_LENGTH (0));
    }
    return NLMSG_ALIGN (len);
}

void
nat_netwatch_test (bool verbose)
{
    if (verbose)
        printf (" * nat_netwatch: ");
    char err [200];
    //  "lo" stands for the tunnel: its index is 1 in every namespace
    nat_netwatch_t *self = nat_netwatch_new ("lo", err, sizeof err);
    assert (self);
    assert (nat_netwatch_fd (self) >= 0);
    uint8_t buf [1024];
    size_t n = 0;
    struct ifaddrmsg ifa = { .ifa_family = 2, .ifa_index = 999 };    //  no such interface: counts
    n += s_msg (buf + n, RTM_NEWADDR, &ifa, sizeof ifa, NULL, NULL);
    ifa.ifa_index = 1;                                               //  the tunnel's: ignored
    n += s_msg (buf + n, RTM_DELADDR, &ifa, sizeof ifa, NULL, NULL);
    struct rtmsg rt = { .rtm_family = 2, .rtm_table = RT_TABLE_MAIN, .rtm_protocol = RTPROT_BOOT };
    int oif = 999;
    struct rtattr a = { .rta_len = RTA_LENGTH (sizeof oif), .rta_type = RTA_OIF };
    n += s_msg (buf + n, RTM_NEWROUTE, &rt, sizeof rt, &a, &oif);    //  counts
    oif = 1;
    n += s_msg (buf + n, RTM_NEWROUTE, &rt, sizeof rt, &a, &oif);    //  tunnel's route: ignored
    rt.rtm_protocol = RTPROT_KERNEL;
    oif = 999;
    n += s_msg (buf + n, RTM_DELROUTE, &rt, sizeof rt, &a, &oif);    //  follows an address: ignored
    rt.rtm_protocol = RTPROT_BOOT;
    rt.rtm_table = RT_TABLE_LOCAL;
    n += s_msg (buf + n, RTM_NEWROUTE, &rt, sizeof rt, &a, &oif);    //  local table: ignored
    struct ifinfomsg ifi = { .ifi_index = 999 };
    n += s_msg (buf + n, RTM_NEWLINK, &ifi, sizeof ifi, NULL, NULL); //  not listened for
    assert (nat_netwatch_parse (self, buf, n) == 2);
    assert (nat_netwatch_changes (self) == 2 && nat_netwatch_malformed (self) == 0);
    //  Truncated: a header claiming more than there is, a body too short
    assert (nat_netwatch_parse (self, buf, 10) == 0);
    assert (nat_netwatch_malformed (self) == 1);
    struct nlmsghdr shorty = { .nlmsg_len = NLMSG_LENGTH (2), .nlmsg_type = RTM_NEWADDR };
    assert (nat_netwatch_parse (self, (uint8_t *) &shorty, sizeof shorty) == 0);
    assert (nat_netwatch_malformed (self) == 2);
    struct nlmsghdr zero = { .nlmsg_len = 0 };
    assert (nat_netwatch_parse (self, (uint8_t *) &zero, sizeof zero) == 0);
    //  A good event, then a body too short: the good one still counts as a change
    uint64_t before = nat_netwatch_changes (self), bad = nat_netwatch_malformed (self);
    ifa.ifa_index = 999;
    uint8_t mixed [128] = { 0 };
    size_t m = s_msg (mixed, RTM_NEWADDR, &ifa, sizeof ifa, NULL, NULL);
    memcpy (mixed + m, &shorty, sizeof shorty);
    assert (nat_netwatch_parse (self, mixed, m + sizeof shorty) == 1);
    assert (nat_netwatch_changes (self) == before + 1 && nat_netwatch_malformed (self) == bad + 1);
    //  A last message whose aligned length runs past the end (97 bytes of 98,
    //  100 aligned) ends the walk: nothing behind the input is read, not even
    //  what an earlier input left in the copy (here an address event at 100)
    uint8_t two [200] = { 0 };
    struct nlmsghdr pad = { .nlmsg_len = 100, .nlmsg_type = NLMSG_NOOP };
    memcpy (two, &pad, sizeof pad);
    ifa.ifa_index = 999;
    s_msg (two + 100, RTM_NEWADDR, &ifa, sizeof ifa, NULL, NULL);
    assert (nat_netwatch_parse (self, two, 100 + NLMSG_LENGTH (sizeof ifa)) == 1);
    uint8_t shorter [98] = { 0 };
    pad.nlmsg_len = 97;
    memcpy (shorter, &pad, sizeof pad);
    assert (nat_netwatch_parse (self, shorter, sizeof shorter) == 0);
    //  A real event: nothing queued yet (the test does not change the host)
    assert (nat_netwatch_read (self) == 0);
    nat_netwatch_destroy (&self);
    assert (self == NULL);
    if (verbose)
        printf ("OK\n");
}
