/*  relay_stream: relay messages over a byte stream (why and the format: relay_stream.h). */
#include "relay_stream.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define S_BUF (4 * (RELAY_STREAM_HEADER + RELAY_STREAM_MSG_MAX))

struct _relay_stream_t {
    uint8_t buf [S_BUF];
    size_t start, end;              //  unread bytes are buf [start..end)
};

relay_stream_t *
relay_stream_new (void)
{
    relay_stream_t *self = (relay_stream_t *) calloc (1, sizeof *self);
    assert (self);
    return self;
}

void
relay_stream_destroy (relay_stream_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

//  Moves the unread bytes to the front, so a whole message always fits
static void
s_compact (relay_stream_t *self)
{
    if (self->start == 0)
        return;
    memmove (self->buf, self->buf + self->start, self->end - self->start);
    self->end -= self->start;
    self->start = 0;
}

ssize_t
relay_stream_read (relay_stream_t *self, int fd)
{
    s_compact (self);
    if (self->end == S_BUF) {
        errno = EAGAIN;             //  full: take messages out first
        return -1;
    }
    ssize_t n = recv (fd, self->buf + self->end, S_BUF - self->end, MSG_DONTWAIT);
    if (n > 0)
        self->end += (size_t) n;
    return n;
}

size_t
relay_stream_feed (relay_stream_t *self, const uint8_t *data, size_t size)
{
    s_compact (self);
    size_t room = S_BUF - self->end;
    if (size > room)
        size = room;
    memcpy (self->buf + self->end, data, size);
    self->end += size;
    return size;
}

int
relay_stream_next (relay_stream_t *self, const uint8_t **data, size_t *size)
{
    size_t have = self->end - self->start;
    if (have < RELAY_STREAM_HEADER)
        return 0;
    const uint8_t *p = self->buf + self->start;
    size_t length = (size_t) p [0] << 8 | p [1];
    if (length == 0 || length > RELAY_STREAM_MSG_MAX)
        return -1;
    if (have < RELAY_STREAM_HEADER + length)
        return 0;
    *data = p + RELAY_STREAM_HEADER;
    *size = length;
    self->start += RELAY_STREAM_HEADER + length;
    return 1;
}

int
relay_stream_send (int fd, const uint8_t *msg, size_t size)
{
    if (size == 0 || size > RELAY_STREAM_MSG_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    uint8_t header [RELAY_STREAM_HEADER] = { (uint8_t) (size >> 8), (uint8_t) size };
    struct iovec iov [2] = { { header, sizeof header }, { (void *) msg, size } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
    ssize_t n = sendmsg (fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == (ssize_t) (size + sizeof header))
        return 0;
    if (n < 0)
        return -1;
    errno = EPIPE;                  //  half a message went: the stream is lost
    return -1;
}

//  ---------------------------------------------------------------------------
//  Self test: messages split at every byte, several in one read, bad lengths,
//  and a real socket pair.

void
relay_stream_test (bool verbose)
{
    relay_stream_t *self = relay_stream_new ();
    uint8_t wire [3 * (RELAY_STREAM_HEADER + 100)];
    size_t w = 0;
    for (int m = 0; m < 3; m++) {
        size_t len = 40 + 30 * (size_t) m;
        wire [w++] = 0;
        wire [w++] = (uint8_t) len;
        for (size_t i = 0; i < len; i++)
            wire [w++] = (uint8_t) (m * 50 + (int) i);
    }
    //  Fed one byte at a time: each message appears exactly when complete
    const uint8_t *data;
    size_t size;
    int seen = 0;
    for (size_t i = 0; i < w; i++) {
        assert (relay_stream_feed (self, wire + i, 1) == 1);
        int rc;
        while ((rc = relay_stream_next (self, &data, &size)) == 1) {
            assert (size == 40 + 30 * (size_t) seen && data [0] == (uint8_t) (seen * 50));
            seen++;
        }
        assert (rc == 0);
    }
    assert (seen == 3);
    //  All at once
    relay_stream_feed (self, wire, w);
    for (int m = 0; m < 3; m++)
        assert (relay_stream_next (self, &data, &size) == 1);
    assert (relay_stream_next (self, &data, &size) == 0);
    //  A zero or an oversized length breaks the stream
    uint8_t zero [2] = { 0, 0 }, big [2] = { 0x08, 0x01 };
    relay_stream_feed (self, zero, 2);
    assert (relay_stream_next (self, &data, &size) == -1);
    relay_stream_destroy (&self);
    self = relay_stream_new ();
    relay_stream_feed (self, big, 2);
    assert (relay_stream_next (self, &data, &size) == -1);
    relay_stream_destroy (&self);

    //  Over a socket pair
    int fds [2];
    assert (socketpair (AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    uint8_t msg [RELAY_STREAM_MSG_MAX];
    memset (msg, 0xab, sizeof msg);
    assert (relay_stream_send (fds [0], msg, sizeof msg) == 0);
    assert (relay_stream_send (fds [0], msg, 5) == 0);
    assert (relay_stream_send (fds [0], msg, 0) == -1 && errno == EMSGSIZE);
    assert (relay_stream_send (fds [0], msg, RELAY_STREAM_MSG_MAX + 1) == -1);
    self = relay_stream_new ();
    int got = 0;
    for (int tries = 0; tries < 100 && got < 2; tries++) {
        relay_stream_read (self, fds [1]);
        while (relay_stream_next (self, &data, &size) == 1) {
            assert (size == (got == 0 ? sizeof msg : 5) && data [size - 1] == 0xab);
            got++;
        }
    }
    assert (got == 2);
    close (fds [0]);
    assert (relay_stream_read (self, fds [1]) == 0);       //  end of stream
    close (fds [1]);
    relay_stream_destroy (&self);
    if (verbose)
        printf ("relay_stream: ok\n");
}
