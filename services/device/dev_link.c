/*  dev_link: device's CAP_NET_ADMIN in a helper process (see dev_link.h).

    The requests and replies are plain structs over a SOCK_SEQPACKET socket
    pair: both ends are this file in one program, forked from one image, so
    there is no wire format to keep stable, only to check. The helper checks
    every request as input from a process it does not trust (a compromised
    packet path): the op, the address family and prefix, a unicast MAC, and
    that it acts on the interface it created and no other. */
#include "dev_link.h"
#include "bus_privs.h"
#include "bus_identity.h"
#include "dev_netlink.h"

#include <assert.h>
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_REPLY_WAIT_MS 5000        //  a netlink ACK takes microseconds

typedef enum { S_OPEN = 1, S_SET_ADDRESS, S_SET_MAC, S_SET_UP, S_DEL_ADDRESS } s_op_t;

typedef struct {
    uint32_t op;
    int32_t flags;              //  S_OPEN: DEV_TUN_OFFLOAD
    dev_config_t config;        //  S_OPEN: type, name, mtu, address
    bool has_old;               //  S_SET_ADDRESS: the address it replaces
    dev_addr_t old, addr;
    uint8_t mac [6];            //  S_SET_MAC
} s_request_t;

typedef struct {
    int32_t rc;                 //  0 or -1
    char name [IFNAMSIZ];       //  S_OPEN: the interface's name
    char error [240];
} s_reply_t;

//  What the side that executes requests knows: one interface, once opened
typedef struct {
    dev_netlink_t *nl;
    int ifindex;                //  0 until S_OPEN
    dev_type_t type;
    int clone_fd;               //  /dev/net/tun, opened before the uid switch; -1: open it then
} s_state_t;

struct _dev_link_t {
    int fd;                     //  the socket to the helper, or -1 when local
    pid_t pid;
    s_state_t local;            //  a local link's own state
};

//  ---------------------------------------------------------------------------
//  The executing side (the helper, or the caller for a local link)

static bool
s_addr_valid (const dev_addr_t *addr)
{
    return (addr->family == AF_INET && addr->prefix >= 0 && addr->prefix <= 32)
        || (addr->family == AF_INET6 && addr->prefix >= 0 && addr->prefix <= 128);
}

//  A tun/tap interface of our name left by a crashed run (persistent, or still
//  held by a process being killed): delete it. Never touches an interface of
//  another kind (an ethernet card with the same name stays; creating ours then
//  says the name is taken).
static void
s_remove_stale (s_state_t *state, const char *name)
{
    char path [64];
    snprintf (path, sizeof path, "/sys/class/net/%s/tun_flags", name);
    struct stat st;
    if (stat (path, &st))
        return;
    int ifindex = (int) if_nametoindex (name);
    if (ifindex > 0)
        dev_netlink_link_del (state->nl, ifindex);
}

//  Runs one request; *fd_out gets the interface's fd for S_OPEN (the caller
//  owns it). The reply says what failed.
static void
s_execute (s_state_t *state, const s_request_t *req, s_reply_t *reply, int *fd_out)
{
    memset (reply, 0, sizeof *reply);
    reply->rc = -1;
    *fd_out = -1;
    if (!state->nl) {
        state->nl = dev_netlink_new (reply->error, sizeof reply->error);
        if (!state->nl)
            return;
    }
    if (req->op != S_OPEN && state->ifindex == 0) {
        snprintf (reply->error, sizeof reply->error, "link: no interface is open yet");
        return;
    }
    switch (req->op) {
        case S_OPEN: {
            const dev_config_t *cfg = &req->config;
            if (state->ifindex) {
                snprintf (reply->error, sizeof reply->error, "link: the interface is open already");
                return;
            }
            if (memchr (cfg->name, 0, sizeof cfg->name) == NULL
            ||  (cfg->type != DEV_TYPE_TUN && cfg->type != DEV_TYPE_TAP)
            ||  cfg->mtu < DEV_MTU_MIN || cfg->mtu > DEV_MTU_MAX
            ||  (cfg->has_address && !s_addr_valid (&cfg->address))) {
                snprintf (reply->error, sizeof reply->error, "link: invalid interface request");
                return;
            }
            s_remove_stale (state, cfg->name);
            int clone_fd = state->clone_fd >= 0 ? state->clone_fd : dev_tun_open_clone (reply->error, sizeof reply->error);
            state->clone_fd = -1;
            if (clone_fd < 0)
                return;
            dev_tun_t *tun = dev_tun_new_on (clone_fd, cfg->type, cfg->name, req->flags & DEV_TUN_OFFLOAD,
                                             reply->error, sizeof reply->error);
            if (!tun)
                return;
            int ifindex = dev_tun_ifindex (tun);
            if (dev_netlink_set_mtu (state->nl, ifindex, cfg->mtu)
            ||  (cfg->has_address
                 && dev_netlink_addr_has (state->nl, ifindex, &cfg->address) != 1
                 && dev_netlink_addr_add (state->nl, ifindex, &cfg->address))) {
                snprintf (reply->error, sizeof reply->error, "%s", dev_netlink_error (state->nl));
                dev_tun_destroy (&tun);
                return;
            }
            snprintf (reply->name, sizeof reply->name, "%s", dev_tun_name (tun));
            state->ifindex = ifindex;
            state->type = cfg->type;
            *fd_out = dev_tun_release (&tun);
            break;
        }
        case S_SET_ADDRESS:
            if (!s_addr_valid (&req->addr) || (req->has_old && !s_addr_valid (&req->old))) {
                snprintf (reply->error, sizeof reply->error, "link: invalid address");
                return;
            }
            if (req->has_old && dev_netlink_addr_has (state->nl, state->ifindex, &req->old) == 1
            &&  dev_netlink_addr_del (state->nl, state->ifindex, &req->old)) {
                snprintf (reply->error, sizeof reply->error, "%s", dev_netlink_error (state->nl));
                return;
            }
            if (dev_netlink_addr_has (state->nl, state->ifindex, &req->addr) != 1
            &&  dev_netlink_addr_add (state->nl, state->ifindex, &req->addr)) {
                snprintf (reply->error, sizeof reply->error, "%s", dev_netlink_error (state->nl));
                return;
            }
            break;
        case S_DEL_ADDRESS:
            //  An anycast address this node no longer serves (docs/groups.md)
            if (!s_addr_valid (&req->addr)) {
                snprintf (reply->error, sizeof reply->error, "link: invalid address");
                return;
            }
            if (dev_netlink_addr_has (state->nl, state->ifindex, &req->addr) == 1
            &&  dev_netlink_addr_del (state->nl, state->ifindex, &req->addr)) {
                snprintf (reply->error, sizeof reply->error, "%s", dev_netlink_error (state->nl));
                return;
            }
            break;
        case S_SET_MAC: {
            static const uint8_t zero [6] = { 0 };
            if (state->type != DEV_TYPE_TAP || (req->mac [0] & 1) || memcmp (req->mac, zero, 6) == 0) {
                snprintf (reply->error, sizeof reply->error, "link: a MAC needs a tap device and a unicast address");
                return;
            }
            if (dev_netlink_set_mac (state->nl, state->ifindex, req->mac)) {
                snprintf (reply->error, sizeof reply->error, "%s", dev_netlink_error (state->nl));
                return;
            }
            break;
        }
        case S_SET_UP:
            if (dev_netlink_set_up (state->nl, state->ifindex, true)) {
                snprintf (reply->error, sizeof reply->error, "%s", dev_netlink_error (state->nl));
                return;
            }
            break;
        default:
            snprintf (reply->error, sizeof reply->error, "link: unknown request %u", req->op);
            return;
    }
    reply->rc = 0;
}

//  The helper: one request at a time until the parent goes
static void
s_serve (int fd, int clone_fd)
{
    s_state_t state = { NULL, 0, DEV_TYPE_TUN, clone_fd };
    while (true) {
        s_request_t req;
        ssize_t n = recv (fd, &req, sizeof req, 0);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            break;                      //  the parent closed its end or died
        s_reply_t reply;
        int tun_fd = -1;
        if (n != (ssize_t) sizeof req) {
            memset (&reply, 0, sizeof reply);
            reply.rc = -1;
            snprintf (reply.error, sizeof reply.error, "link: a request of %zd bytes", n);
        }
        else
            s_execute (&state, &req, &reply, &tun_fd);
        struct iovec iov = { &reply, sizeof reply };
        union { struct cmsghdr align; char buf [CMSG_SPACE (sizeof (int))]; } control;
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
        if (tun_fd >= 0) {
            memset (&control, 0, sizeof control);
            msg.msg_control = control.buf;
            msg.msg_controllen = sizeof control.buf;
            struct cmsghdr *cmsg = CMSG_FIRSTHDR (&msg);
            cmsg->cmsg_level = SOL_SOCKET;
            cmsg->cmsg_type = SCM_RIGHTS;
            cmsg->cmsg_len = CMSG_LEN (sizeof (int));
            memcpy (CMSG_DATA (cmsg), &tun_fd, sizeof (int));
        }
        ssize_t sent = sendmsg (fd, &msg, MSG_NOSIGNAL);
        if (tun_fd >= 0)
            close (tun_fd);             //  the parent's copy keeps the interface
        if (sent != (ssize_t) sizeof reply)
            break;
    }
    dev_netlink_destroy (&state.nl);
    if (state.clone_fd >= 0)
        close (state.clone_fd);
}

//  ---------------------------------------------------------------------------
//  The asking side

dev_link_t *
dev_link_start (char *err, size_t errsize)
{
    int pair [2];
    if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair)) {
        snprintf (err, errsize, "link: socketpair: %s", strerror (errno));
        return NULL;
    }
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid == -1) {
        snprintf (err, errsize, "link: fork: %s", strerror (errno));
        close (pair [0]);
        close (pair [1]);
        return NULL;
    }
    if (pid == 0) {
        //  The helper: dies with its parent, keeps only its socket (not the
        //  supervisor's readiness pipe, not the config file) and the one
        //  capability, and is not dumpable
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (0);
        prctl (PR_SET_NAME, "device-link");
        //  The supervisor signals the whole process group when it stops the
        //  service: the helper goes when its parent does, not before it
        signal (SIGTERM, SIG_IGN);
        signal (SIGINT, SIG_IGN);
        signal (SIGHUP, SIG_IGN);
        if (dup2 (pair [1], 3) != 3)
            _exit (1);
        close_range (4, ~0U, 0);
        //  /dev/net/tun may be root's alone (0600): opened before the switch
        char perr [200];
        int clone_fd = dev_tun_open_clone (perr, sizeof perr);
        //  Its parent's uid too (bus_identity.h), keeping the one capability
        if (bus_identity_switch_keep (BUS_CAP (CAP_NET_ADMIN), perr, sizeof perr)) {
            fprintf (stderr, "device-link: %s\n", perr);
            _exit (1);
        }
        //  No file to open from now on (Landlock: nothing; a kernel without
        //  it leaves the helper as it is)
        bus_sandbox_t *nothing = bus_sandbox_new ();
        int confined = bus_privs_sandbox (nothing, perr, sizeof perr);
        bus_sandbox_destroy (&nothing);
        if (confined == -1) {
            fprintf (stderr, "device-link: %s\n", perr);
            _exit (1);
        }
        s_serve (3, clone_fd);
        _exit (0);
    }
    close (pair [1]);
    dev_link_t *self = calloc (1, sizeof *self);
    assert (self);
    self->fd = pair [0];
    self->pid = pid;
    return self;
}

dev_link_t *
dev_link_local (void)
{
    dev_link_t *self = calloc (1, sizeof *self);
    assert (self);
    self->fd = -1;
    self->local.clone_fd = -1;
    return self;
}

void
dev_link_destroy (dev_link_t **self_p)
{
    assert (self_p);
    dev_link_t *self = *self_p;
    if (!self)
        return;
    if (self->fd >= 0) {
        close (self->fd);
        //  It exits at once on EOF; one that does not within 100 ms goes
        //  with us (PR_SET_PDEATHSIG): the service's seccomp list has no kill
        for (int tries = 0; tries < 100; tries++) {
            if (waitpid (self->pid, NULL, WNOHANG) != 0)
                break;
            usleep (1000);
        }
    }
    dev_netlink_destroy (&self->local.nl);
    free (self);
    *self_p = NULL;
}

pid_t
dev_link_pid (dev_link_t *self)
{
    return self->pid;
}

int
dev_link_fd (dev_link_t *self)
{
    return self->fd;
}

bool
dev_link_gone (dev_link_t *self)
{
    if (self->fd < 0)
        return false;
    char byte;
    ssize_t n = recv (self->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

//  Sends one request and waits for its reply (and an fd for S_OPEN)
static int
s_ask (dev_link_t *self, const s_request_t *req, s_reply_t *reply, int *fd_out, char *err, size_t errsize)
{
    *fd_out = -1;
    if (self->fd < 0)
        s_execute (&self->local, req, reply, fd_out);
    else {
        if (send (self->fd, req, sizeof *req, MSG_NOSIGNAL) != (ssize_t) sizeof *req) {
            snprintf (err, errsize, "link: the helper is gone (%s)", strerror (errno));
            return -1;
        }
        struct pollfd pfd = { self->fd, POLLIN, 0 };
        if (poll (&pfd, 1, S_REPLY_WAIT_MS) != 1) {
            snprintf (err, errsize, "link: no answer from the helper within %d ms", S_REPLY_WAIT_MS);
            return -1;
        }
        union { struct cmsghdr align; char buf [CMSG_SPACE (sizeof (int))]; } control;
        struct iovec iov = { reply, sizeof *reply };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                              .msg_control = control.buf, .msg_controllen = sizeof control.buf };
        ssize_t n = recvmsg (self->fd, &msg, MSG_CMSG_CLOEXEC);
        for (struct cmsghdr *cmsg = CMSG_FIRSTHDR (&msg); n > 0 && cmsg; cmsg = CMSG_NXTHDR (&msg, cmsg))
            if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS
            &&  cmsg->cmsg_len == CMSG_LEN (sizeof (int)))
                memcpy (fd_out, CMSG_DATA (cmsg), sizeof (int));
        if (n != (ssize_t) sizeof *reply) {
            if (*fd_out >= 0)
                close (*fd_out);
            *fd_out = -1;
            snprintf (err, errsize, "link: the helper is gone (%s)", n == -1 ? strerror (errno) : "no reply");
            return -1;
        }
        reply->error [sizeof reply->error - 1] = 0;
        reply->name [sizeof reply->name - 1] = 0;
    }
    if (reply->rc) {
        snprintf (err, errsize, "%s", reply->error);
        if (*fd_out >= 0)
            close (*fd_out);
        *fd_out = -1;
        return -1;
    }
    return 0;
}

dev_tun_t *
dev_link_open (dev_link_t *self, const dev_config_t *config, int flags, char *err, size_t errsize)
{
    s_request_t req = { .op = S_OPEN, .flags = flags, .config = *config };
    s_reply_t reply;
    int fd;
    if (s_ask (self, &req, &reply, &fd, err, errsize))
        return NULL;
    if (fd < 0) {
        snprintf (err, errsize, "link: the helper opened %s but sent no descriptor", reply.name);
        return NULL;
    }
    return dev_tun_adopt (fd, config->type, reply.name, flags, err, errsize);
}

int
dev_link_set_address (dev_link_t *self, const dev_addr_t *old, const dev_addr_t *addr, char *err, size_t errsize)
{
    s_request_t req = { .op = S_SET_ADDRESS, .has_old = old != NULL, .addr = *addr };
    if (old)
        req.old = *old;
    s_reply_t reply;
    int fd;
    return s_ask (self, &req, &reply, &fd, err, errsize);
}

int
dev_link_del_address (dev_link_t *self, const dev_addr_t *addr, char *err, size_t errsize)
{
    s_request_t req = { .op = S_DEL_ADDRESS, .addr = *addr };
    s_reply_t reply;
    int fd;
    return s_ask (self, &req, &reply, &fd, err, errsize);
}

int
dev_link_set_mac (dev_link_t *self, const uint8_t mac [6], char *err, size_t errsize)
{
    s_request_t req = { .op = S_SET_MAC };
    memcpy (req.mac, mac, 6);
    s_reply_t reply;
    int fd;
    return s_ask (self, &req, &reply, &fd, err, errsize);
}

int
dev_link_set_up (dev_link_t *self, char *err, size_t errsize)
{
    s_request_t req = { .op = S_SET_UP };
    s_reply_t reply;
    int fd;
    return s_ask (self, &req, &reply, &fd, err, errsize);
}

//  ---------------------------------------------------------------------------
//  Self test: a real helper in a private network namespace

#include <sched.h>

//  The effective capabilities of pid, from /proc
static uint64_t
s_test_caps_of (pid_t pid)
{
    char path [64], line [256];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *file = fopen (path, "r");
    uint64_t caps = UINT64_MAX;
    while (file && fgets (line, sizeof line, file))
        if (strncmp (line, "CapEff:", 7) == 0)
            caps = strtoull (line + 7, NULL, 16);
    if (file)
        fclose (file);
    return caps;
}

void
dev_link_test (bool verbose)
{
    printf (" * dev_link: ");
    pid_t child = fork ();
    assert (child >= 0);
    if (child == 0) {
        //  In a child of our own: the namespace, and a process that drops
        if (unshare (CLONE_NEWNET)) {
            fprintf (stderr, "dev_link_test: unshare (CLONE_NEWNET): %s (run as root)\n", strerror (errno));
            _exit (1);
        }
        char err [300];
        dev_link_t *link = dev_link_start (err, sizeof err);
        assert (link);
        assert (s_test_caps_of (dev_link_pid (link)) != UINT64_MAX);
        //  The parent keeps nothing; the helper keeps CAP_NET_ADMIN only
        int rc = bus_privs_drop (0, false, err, sizeof err);
        assert (rc == 0);
        usleep (20000);
        assert (s_test_caps_of (dev_link_pid (link)) == BUS_CAP (CAP_NET_ADMIN));
        assert (s_test_caps_of (getpid ()) == 0);

        //  Requests before the interface exists are refused
        dev_addr_t addr;
        assert (dev_addr_parse ("10.77.0.1/24", &addr, err, sizeof err) == 0);
        assert (dev_link_set_address (link, NULL, &addr, err, sizeof err) == -1);
        assert (strstr (err, "no interface is open"));

        //  A tap with an address; this process, without capabilities, owns it
        dev_config_t config;
        dev_config_init (&config);
        dev_config_set_type (&config, "tap", err, sizeof err);
        dev_config_set_name (&config, "bflink0", err, sizeof err);
        config.has_address = true;
        config.address = addr;
        dev_tun_t *tun = dev_link_open (link, &config, 0, err, sizeof err);
        if (!tun)
            fprintf (stderr, "dev_link_open: %s\n", err);
        assert (tun);
        assert (strcmp (dev_tun_name (tun), "bflink0") == 0);
        assert (dev_link_open (link, &config, 0, err, sizeof err) == NULL);
        assert (strstr (err, "open already"));
        const uint8_t mac [6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };
        const uint8_t multicast [6] = { 0x03, 0x11, 0x22, 0x33, 0x44, 0x55 };
        assert (dev_link_set_mac (link, mac, err, sizeof err) == 0);
        assert (dev_link_set_mac (link, multicast, err, sizeof err) == -1);
        assert (dev_link_set_up (link, err, sizeof err) == 0);
        dev_addr_t other;
        assert (dev_addr_parse ("10.78.0.1/24", &other, err, sizeof err) == 0);
        assert (dev_link_set_address (link, &addr, &other, err, sizeof err) == 0);
        dev_addr_t bad = other;
        bad.prefix = 33;
        assert (dev_link_set_address (link, NULL, &bad, err, sizeof err) == -1);

        //  What the kernel says: up, that MAC, the new address and not the old
        dev_netlink_t *nl = dev_netlink_new (err, sizeof err);
        assert (nl);
        dev_link_info_t info;
        assert (dev_netlink_link_get (nl, dev_tun_ifindex (tun), &info) == 0);
        assert (info.flags & IFF_UP);
        assert (info.has_mac && memcmp (info.mac, mac, 6) == 0);
        assert (dev_netlink_addr_has (nl, dev_tun_ifindex (tun), &other) == 1);
        assert (dev_netlink_addr_has (nl, dev_tun_ifindex (tun), &addr) == 0);
        //  An anycast address comes and goes beside it (twice: no error)
        dev_addr_t anycast;
        assert (dev_addr_parse ("10.78.0.200/32", &anycast, err, sizeof err) == 0);
        assert (dev_link_set_address (link, NULL, &anycast, err, sizeof err) == 0);
        assert (dev_netlink_addr_has (nl, dev_tun_ifindex (tun), &anycast) == 1);
        assert (dev_link_del_address (link, &anycast, err, sizeof err) == 0);
        assert (dev_link_del_address (link, &anycast, err, sizeof err) == 0);
        assert (dev_netlink_addr_has (nl, dev_tun_ifindex (tun), &anycast) == 0);
        assert (dev_netlink_addr_has (nl, dev_tun_ifindex (tun), &other) == 1);

        //  The interface lives with this process's fd, not the helper's
        pid_t helper = dev_link_pid (link);
        dev_link_destroy (&link);
        assert (kill (helper, 0) == -1);
        assert (if_nametoindex ("bflink0") != 0);
        dev_tun_destroy (&tun);
        assert (if_nametoindex ("bflink0") == 0);

        dev_netlink_destroy (&nl);

        //  The helper dies with its parent (a process killed without a
        //  chance to close the socket): we are the subreaper of its orphan
        prctl (PR_SET_CHILD_SUBREAPER, 1);
        int report [2];
        assert (pipe (report) == 0);
        pid_t parent = fork ();
        assert (parent >= 0);
        if (parent == 0) {
            //  (kept where valgrind sees it: this process dies with it)
            static dev_link_t *s_orphaned;
            s_orphaned = dev_link_start (err, sizeof err);
            pid_t pid = s_orphaned ? dev_link_pid (s_orphaned) : 0;
            assert (write (report [1], &pid, sizeof pid) == sizeof pid);
            raise (SIGKILL);
        }
        pid_t orphan = 0;
        assert (read (report [0], &orphan, sizeof orphan) == sizeof orphan && orphan > 0);
        assert (waitpid (parent, NULL, 0) == parent);
        int orphan_status = 0;
        assert (waitpid (orphan, &orphan_status, 0) == orphan);
        //  SIGKILL, or exit 0 when the parent died before it armed the signal
        assert ((WIFSIGNALED (orphan_status) && WTERMSIG (orphan_status) == SIGKILL)
                || (WIFEXITED (orphan_status) && WEXITSTATUS (orphan_status) == 0));
        if (verbose)
            printf ("(helper %d went with its parent) ", (int) orphan);
        _exit (0);
    }
    int status = 0;
    assert (waitpid (child, &status, 0) == child);
    assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    printf ("OK\n");
}
