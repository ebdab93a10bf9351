/*  ws_loop: libwebsockets served from a bus_loop (why: ws_loop.h). */
#include "ws_loop.h"
#include "bus_log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct _ws_loop_t {
    bus_loop_t *loop;
    struct lws_context *context;
    int timer;
    bool servicing;
};

static int
s_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    ws_loop_service ((ws_loop_t *) arg);
    return 0;
}

ws_loop_t *
ws_loop_new (bus_loop_t *loop, struct lws_context *context, int tick_ms)
{
    assert (loop && context && tick_ms > 0);
    ws_loop_t *self = (ws_loop_t *) calloc (1, sizeof *self);
    assert (self);
    self->loop = loop;
    self->context = context;
    self->timer = bus_loop_timer (loop, (size_t) tick_ms, 0, s_tick, self);
    if (self->timer < 0) {
        free (self);
        return NULL;
    }
    return self;
}

void
ws_loop_destroy (ws_loop_t **self_p)
{
    assert (self_p);
    ws_loop_t *self = *self_p;
    if (!self)
        return;
    bus_loop_timer_end (self->loop, self->timer);
    free (self);
    *self_p = NULL;
}

void
ws_loop_service (ws_loop_t *self)
{
    if (!self || self->servicing)
        return;
    self->servicing = true;
    for (int round = 0; round < 8; round++) {
        lws_service (self->context, -1);
        //  0: a connection has buffered input (TLS) that needs service now
        if (lws_service_adjust_timeout (self->context, 1, 0) != 0)
            break;
    }
    self->servicing = false;
}

static int
s_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    ws_loop_service (((ws_loop_fd_t *) arg)->owner);
    return 0;
}

void
ws_loop_watch (ws_loop_t *self, ws_loop_fd_t *fd, int sockfd)
{
    fd->owner = self;
    fd->want_out = false;
    fd->item = (zmq_pollitem_t) { NULL, sockfd, ZMQ_POLLIN, 0 };
    bus_loop_poller (self->loop, &fd->item, s_ready, fd);
}

void
ws_loop_want_out (ws_loop_fd_t *fd, bool want)
{
    if (fd->want_out == want || fd->item.fd < 0 || !fd->owner)
        return;
    bus_loop_poller_end (fd->owner->loop, &fd->item);
    fd->item.events = ZMQ_POLLIN | (want ? ZMQ_POLLOUT : 0);
    bus_loop_poller (fd->owner->loop, &fd->item, s_ready, fd);
    fd->want_out = want;
}

void
ws_loop_unwatch (ws_loop_fd_t *fd)
{
    if (fd->item.fd >= 0 && fd->owner)
        bus_loop_poller_end (fd->owner->loop, &fd->item);
    fd->item.fd = -1;
}

struct lws *
ws_loop_adopt (struct lws_vhost *vhost, int sockfd, void *opaque)
{
    lws_adopt_desc_t desc;
    memset (&desc, 0, sizeof desc);
    desc.vh = vhost;
    desc.type = LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP | LWS_ADOPT_ALLOW_SSL;
    desc.fd.sockfd = sockfd;
    desc.opaque = opaque;
    return lws_adopt_descriptor_vhost_via_info (&desc);
}

int
ws_loop_listen (const char *bind_ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset (ss, 0, sizeof *ss);
    struct sockaddr_in *in = (struct sockaddr_in *) ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) ss;
    if (inet_pton (AF_INET, bind_ip, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons (port);
        *len = sizeof *in;
    }
    else
    if (inet_pton (AF_INET6, bind_ip, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons (port);
        *len = sizeof *in6;
    }
    else {
        errno = EINVAL;
        return -1;
    }
    int fd = socket (ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt (fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one)
    ||  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)
    ||  bind (fd, (struct sockaddr *) ss, *len) || listen (fd, 128)) {
        int e = errno;
        if (fd >= 0)
            close (fd);
        errno = e;
        return -1;
    }
    *len = sizeof *ss;
    getsockname (fd, (struct sockaddr *) ss, len);
    return fd;
}

uint16_t
ws_loop_port (const struct sockaddr_storage *ss)
{
    return ntohs (ss->ss_family == AF_INET ? ((const struct sockaddr_in *) ss)->sin_port
                                           : ((const struct sockaddr_in6 *) ss)->sin6_port);
}

static void
s_lws_log (int level, const char *line)
{
    bus_log_line (BUS_LOG_DEBUG, "libwebsockets", line);
}

void
ws_loop_log_to_bus (void)
{
    lws_set_log_level (LLL_ERR | LLL_WARN, s_lws_log);
}
