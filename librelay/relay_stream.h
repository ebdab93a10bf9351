/*  relay_stream: the relay's messages over TCP, for nodes on networks that block
    UDP. A stream carries the same messages as the datagrams (relay_proto.h),
    each after a 2-byte big-endian length:

        length (2, big-endian) | one relay message (length bytes, 1..2048)

    Both ends use this class: the relay's TCP proxy (services/relay/relay_tcp)
    and the node's nat. It reassembles messages from whatever read () returns
    and refuses a stream whose length word is 0 or larger than
    RELAY_STREAM_MSG_MAX (the peer is then disconnected: a stream cannot
    resynchronise). No socket of its own: the caller reads into it. */
#ifndef RELAY_STREAM_H_INCLUDED
#define RELAY_STREAM_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RELAY_STREAM_MSG_MAX    2048
#define RELAY_STREAM_HEADER     2

typedef struct _relay_stream_t relay_stream_t;

relay_stream_t *relay_stream_new (void);
void relay_stream_destroy (relay_stream_t **self_p);

//  Reads what fd has (non-blocking) into the buffer. Returns bytes read, 0 at
//  end of stream, -1 on error (errno; EAGAIN: nothing now).
ssize_t relay_stream_read (relay_stream_t *self, int fd);

//  Appends bytes as if read (tests, fuzzing). Returns how many fit.
size_t relay_stream_feed (relay_stream_t *self, const uint8_t *data, size_t size);

//  The next whole message: 1 with *data/*size (valid until the next call), 0
//  when none is complete yet, -1 when the stream is broken (bad length).
int relay_stream_next (relay_stream_t *self, const uint8_t **data, size_t *size);

//  Writes one framed message to fd in one send (MSG_DONTWAIT | MSG_NOSIGNAL).
//  0 when it went whole; -1 when it could not (errno; EAGAIN: the socket is
//  full and nothing was written, the message is dropped like a datagram). A
//  partial write breaks the stream: -1 with errno EPIPE, the caller disconnects.
int relay_stream_send (int fd, const uint8_t *msg, size_t size);

void relay_stream_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
