/*  relay_worker: one worker's batched UDP loop (why and the rules: relay_worker.h). */
#include "relay_worker.h"

#include <czmq.h>

#include <arpa/inet.h>
#include <assert.h>
#include <linux/filter.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_BATCH   NODE_UDP_TX_BATCH
#define S_OUT_MAX (S_BATCH * 3)         //  a DATA can cause a forward and two ESTABLISHED
#define S_REPLY   48                    //  room for the largest reply (REGISTERED, 40)

typedef struct {
    uint8_t buf [S_REPLY];
    struct sockaddr_storage to;
} s_reply_t;

struct _relay_worker_t {
    int fd;
    uint16_t port;
    relay_cred_t *cred;
    relay_table_t *table;
    node_udp_tx_t *tx;
    relay_worker_stats_t stats;
    uint64_t next_expire_ms;
    //  Receive batch (buffers allocated once)
    uint8_t (*rx_buf) [RELAY_WORKER_DGRAM_MAX];
    struct mmsghdr rx_msgs [S_BATCH];
    struct iovec rx_iov [S_BATCH];
    struct sockaddr_storage rx_from [S_BATCH];
    //  Send batch: forwards point into rx_buf, replies into out_reply
    bus_udp_dgram_t out [S_OUT_MAX];
    struct sockaddr_storage out_to [S_OUT_MAX];
    s_reply_t out_reply [S_OUT_MAX];
    size_t out_count;
};

//  The socket every worker binds: same port, SO_REUSEPORT, non-blocking
static int
s_bind (const relay_worker_config_t *config, uint16_t *port)
{
    struct sockaddr_storage ss;
    memset (&ss, 0, sizeof ss);
    socklen_t len;
    const char *ip = config->bind_ip ? config->bind_ip : "0.0.0.0";
    struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
    if (inet_pton (AF_INET, ip, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons (config->port);
        len = sizeof *sin;
    }
    else
    if (inet_pton (AF_INET6, ip, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons (config->port);
        len = sizeof *sin6;
    }
    else {
        errno = EINVAL;
        return -1;
    }
    int fd = socket (ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1, rcvbuf = 4 << 20;
    if (setsockopt (fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one)
    ||  bind (fd, (struct sockaddr *) &ss, len)) {
        int e = errno;
        close (fd);
        errno = e;
        return -1;
    }
    //  Best effort: a bigger queue absorbs bursts (capped by net.core.rmem_max)
    setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    len = sizeof ss;
    getsockname (fd, (struct sockaddr *) &ss, &len);
    *port = ntohs (ss.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port);
    return fd;
}

relay_worker_t *
relay_worker_new (const relay_worker_config_t *config)
{
    assert (config && config->secret);
    uint16_t port = 0;
    int fd = s_bind (config, &port);
    if (fd < 0)
        return NULL;
    relay_worker_t *self = (relay_worker_t *) calloc (1, sizeof *self);
    assert (self);
    self->fd = fd;
    self->port = port;
    self->cred = relay_cred_new (config->secret, config->max_lifetime);
    assert (self->cred);
    self->table = relay_table_new (&config->limits);
    self->tx = node_udp_tx_new (fd, config->gso);
    self->rx_buf = calloc (S_BATCH, RELAY_WORKER_DGRAM_MAX);
    assert (self->rx_buf);
    for (int i = 0; i < S_BATCH; i++) {
        self->rx_iov [i] = (struct iovec) { self->rx_buf [i], RELAY_WORKER_DGRAM_MAX };
        self->rx_msgs [i].msg_hdr.msg_iov = &self->rx_iov [i];
        self->rx_msgs [i].msg_hdr.msg_iovlen = 1;
    }
    return self;
}

void
relay_worker_destroy (relay_worker_t **self_p)
{
    if (self_p && *self_p) {
        relay_worker_t *self = *self_p;
        node_udp_tx_destroy (&self->tx);
        relay_table_destroy (&self->table);
        relay_cred_destroy (&self->cred);
        close (self->fd);
        free (self->rx_buf);
        free (self);
        *self_p = NULL;
    }
}

uint16_t relay_worker_port (relay_worker_t *self) { return self->port; }
int relay_worker_fd (relay_worker_t *self) { return self->fd; }
const relay_worker_stats_t *relay_worker_stats (relay_worker_t *self) { return &self->stats; }
relay_table_t *relay_worker_table (relay_worker_t *self) { return self->table; }
const node_udp_tx_stats_t *relay_worker_tx_stats (relay_worker_t *self) { return node_udp_tx_stats (self->tx); }

//  Sends what is queued when the send batch is full: forwards point into the
//  receive buffers, which stay valid until the whole batch is handled
static void
s_make_room (relay_worker_t *self)
{
    if (self->out_count == S_OUT_MAX) {
        node_udp_tx_send (self->tx, self->out, self->out_count);
        self->out_count = 0;
    }
}

int
relay_worker_steer (relay_worker_t *self, unsigned workers)
{
    assert (self);
    if (workers == 0) {
        errno = EINVAL;
        return -1;
    }
    //  A = the 32-bit word at offset 4 (a datagram shorter than 8 bytes ends the
    //  program with 0: socket 0); return A % workers
    struct sock_filter code [] = {
        BPF_STMT (BPF_LD | BPF_W | BPF_ABS, RELAY_PROTO_STEER_OFFSET),
        BPF_STMT (BPF_ALU | BPF_MOD | BPF_K, workers),
        BPF_STMT (BPF_RET | BPF_A, 0),
    };
    struct sock_fprog prog;
    memset (&prog, 0, sizeof prog);     //  the padding after len reaches the kernel too
    prog.len = (unsigned short) (sizeof code / sizeof code [0]);
    prog.filter = code;
    return setsockopt (self->fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog);
}

//  Queues a datagram; the destination is copied, because a later REGISTER in the
//  same batch may move or free the peer the address came from. Replies are
//  encoded into out_reply [out_count] after s_make_room, so they share the index.
static void
s_queue (relay_worker_t *self, const uint8_t *data, size_t size,
         const struct sockaddr_storage *to, socklen_t to_len)
{
    s_make_room (self);
    assert (self->out_count < S_OUT_MAX);
    size_t i = self->out_count++;
    memcpy (&self->out_to [i], to, to_len);
    self->out [i] = (bus_udp_dgram_t) { data, size, (const struct sockaddr *) &self->out_to [i], to_len };
}

//  A reply to the sender of a datagram of rx_size bytes: never larger than it
static void
s_reply (relay_worker_t *self, const relay_msg_t *msg, const struct sockaddr_storage *to,
         socklen_t to_len, size_t rx_size)
{
    s_make_room (self);
    s_reply_t *slot = &self->out_reply [self->out_count];
    size_t size = relay_proto_encode (msg, slot->buf, sizeof slot->buf);
    assert (size);
    if (size > rx_size) {
        self->stats.reply_too_large++;
        return;
    }
    self->stats.replies++;
    s_queue (self, slot->buf, size, to, to_len);
}

//  ESTABLISHED to `to` (a registered peer) about `about`
static void
s_established (relay_worker_t *self, const relay_peer_t *to, const relay_peer_t *about)
{
    relay_msg_t msg = { .type = RELAY_PROTO_ESTABLISHED, .peer = about->peer,
                        .addr_len = about->addr_len };
    memcpy (&msg.addr, &about->addr, sizeof msg.addr);
    s_make_room (self);
    s_reply_t *slot = &self->out_reply [self->out_count];
    size_t size = relay_proto_encode (&msg, slot->buf, sizeof slot->buf);
    assert (size);
    self->stats.established++;
    s_queue (self, slot->buf, size, &to->addr, to->addr_len);
}

static void
s_error (relay_worker_t *self, relay_peer_t *to, uint16_t code, uint64_t about, size_t rx_size)
{
    relay_msg_t msg = { .type = RELAY_PROTO_ERROR, .code = code, .peer = about };
    s_reply (self, &msg, &to->addr, to->addr_len, rx_size);
}

static void
s_on_register (relay_worker_t *self, const relay_msg_t *msg, const struct sockaddr_storage *from,
               socklen_t from_len, size_t size, uint64_t now_ms, uint64_t now_s)
{
    relay_cred_result_t r = relay_cred_verify (self->cred, msg->network, msg->peer, msg->expiry,
                                               msg->mac, now_s);
    if (r != RELAY_CRED_OK) {
        self->stats.cred_refused [r]++;
        return;
    }
    relay_peer_t *peer;
    bool moved;
    if (relay_table_register (self->table, msg->peer, msg->network, (const struct sockaddr *) from,
                              from_len, msg->expiry, now_ms, &peer, &moved) != RELAY_TABLE_OK) {
        self->stats.table_refused++;
        return;
    }
    self->stats.registered++;
    relay_msg_t reply = { .type = RELAY_PROTO_REGISTERED, .peer = msg->peer, .nonce = msg->nonce,
                          .addr_len = from_len };
    memcpy (&reply.addr, from, from_len);
    s_reply (self, &reply, from, from_len, size);
    //  A peer that moved: its partners learn the new address, and it theirs
    if (moved) {
        for (uint32_t i = 0; i < peer->sessions; i++) {
            relay_peer_t *other = relay_table_by_id (self->table, peer->partners [i]);
            if (other) {
                s_established (self, other, peer);
                s_established (self, peer, other);
            }
        }
    }
}

static void
s_on_data (relay_worker_t *self, uint8_t *data, const relay_msg_t *msg,
           const struct sockaddr_storage *from, socklen_t from_len, size_t size,
           uint64_t now_ms, uint64_t now_s)
{
    relay_peer_t *src = relay_table_by_addr (self->table, (const struct sockaddr *) from, from_len);
    if (!src) {
        self->stats.unknown_source++;       //  no reply: the address may be spoofed
        return;
    }
    if (msg->network != (uint32_t) src->network) {
        self->stats.bad_network_word++;     //  a confused client; steering relies on the word
        return;
    }
    if (now_s > src->expiry) {
        self->stats.expired_source++;
        s_error (self, src, RELAY_PROTO_CODE_REREGISTER, src->peer, size);
        return;
    }
    relay_peer_t *dst = relay_table_by_id (self->table, msg->peer);
    if (!dst) {
        self->stats.unknown_dest++;
        s_error (self, src, RELAY_PROTO_CODE_UNKNOWN_PEER, msg->peer, size);
        return;
    }
    bool fresh;
    relay_table_result_t r = relay_table_forward (self->table, src, dst, size, now_ms, &fresh);
    if (r == RELAY_TABLE_OTHER_NETWORK) {
        self->stats.other_network++;
        s_error (self, src, RELAY_PROTO_CODE_OTHER_NETWORK, msg->peer, size);
        return;
    }
    if (r != RELAY_TABLE_OK) {
        self->stats.limited++;              //  no reply: answering load adds load
        return;
    }
    //  Forward in place: the destination id becomes the source id
    relay_proto_data_set_peer (data, src->peer);
    s_queue (self, data, size, &dst->addr, dst->addr_len);
    self->stats.forwarded++;
    self->stats.forwarded_bytes += size;
    if (fresh) {
        s_established (self, src, dst);
        s_established (self, dst, src);
    }
}

static void
s_on_ping (relay_worker_t *self, const relay_msg_t *msg, const struct sockaddr_storage *from,
           socklen_t from_len, size_t size, uint64_t now_ms)
{
    relay_peer_t *src = relay_table_by_addr (self->table, (const struct sockaddr *) from, from_len);
    if (!src || src->peer != msg->peer) {
        self->stats.unknown_source++;
        return;
    }
    if (msg->network != (uint32_t) src->network) {
        self->stats.bad_network_word++;
        return;
    }
    relay_table_touch (self->table, src, now_ms);
    relay_msg_t pong = { .type = RELAY_PROTO_PONG, .peer = msg->peer, .nonce = msg->nonce };
    s_reply (self, &pong, from, from_len, size);
}

//  One datagram: parse, authorize, queue what it causes
static void
s_handle (relay_worker_t *self, size_t i, size_t size, uint64_t now_ms, uint64_t now_s)
{
    const struct sockaddr_storage *from = &self->rx_from [i];
    socklen_t from_len = self->rx_msgs [i].msg_hdr.msg_namelen;
    uint8_t *data = self->rx_buf [i];
    relay_msg_t msg;
    relay_proto_err_t err = relay_proto_parse (data, size, &msg);
    if (err != RELAY_PROTO_OK) {
        self->stats.malformed [err]++;
        return;
    }
    switch (msg.type) {
        case RELAY_PROTO_REGISTER:
            s_on_register (self, &msg, from, from_len, size, now_ms, now_s);
            break;
        case RELAY_PROTO_DATA:
            s_on_data (self, data, &msg, from, from_len, size, now_ms, now_s);
            break;
        case RELAY_PROTO_PING:
            s_on_ping (self, &msg, from, from_len, size, now_ms);
            break;
        default:
            self->stats.wrong_direction++;
            break;
    }
}

size_t
relay_worker_run_once (relay_worker_t *self, int timeout_ms)
{
    assert (self);
    struct pollfd pfd = { self->fd, POLLIN, 0 };
    if (poll (&pfd, 1, timeout_ms) < 0 && errno != EINTR)
        return 0;
    size_t handled = 0;
    uint64_t now_ms = (uint64_t) zclock_mono ();
    uint64_t now_s = (uint64_t) time (NULL);
    for (int batch = 0; batch < RELAY_WORKER_BATCHES; batch++) {
        for (int i = 0; i < S_BATCH; i++) {
            struct msghdr *hdr = &self->rx_msgs [i].msg_hdr;
            hdr->msg_name = &self->rx_from [i];
            hdr->msg_namelen = sizeof self->rx_from [i];
            hdr->msg_control = NULL;
            hdr->msg_controllen = 0;
            hdr->msg_flags = 0;
        }
        int r = recvmmsg (self->fd, self->rx_msgs, S_BATCH, 0, NULL);
        self->stats.rx_calls++;
        if (r <= 0)
            break;
        self->out_count = 0;
        for (int i = 0; i < r; i++) {
            size_t size = self->rx_msgs [i].msg_len;
            self->stats.rx_dgrams++;
            self->stats.rx_bytes += size;
            if (self->rx_msgs [i].msg_hdr.msg_flags & MSG_TRUNC) {
                self->stats.truncated++;
                continue;
            }
            s_handle (self, (size_t) i, size, now_ms, now_s);
        }
        if (self->out_count)
            node_udp_tx_send (self->tx, self->out, self->out_count);
        handled += (size_t) r;
        if (r < S_BATCH)
            break;                      //  drained
    }
    if (now_ms >= self->next_expire_ms) {
        relay_table_expire (self->table, now_ms, now_s);
        self->next_expire_ms = now_ms + 1000;
    }
    return handled;
}

//  --------------------------------------------------------------------------
//  Self test: clients on loopback, the worker driven from this thread

#define S_NET   0x1111111111111111ULL
#define S_NET2  0x2222222222222222ULL

static int
s_client (uint16_t *port)
{
    int fd = socket (AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert (fd >= 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    inet_pton (AF_INET, "127.0.0.1", &sin.sin_addr);
    int rc = bind (fd, (struct sockaddr *) &sin, sizeof sin);
    assert (rc == 0);
    socklen_t len = sizeof sin;
    getsockname (fd, (struct sockaddr *) &sin, &len);
    if (port)
        *port = ntohs (sin.sin_port);
    return fd;
}

static void
s_send (int fd, uint16_t relay_port, const uint8_t *data, size_t size)
{
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (relay_port) };
    inet_pton (AF_INET, "127.0.0.1", &to.sin_addr);
    ssize_t n = sendto (fd, data, size, 0, (struct sockaddr *) &to, sizeof to);
    assert (n == (ssize_t) size);
}

//  Runs the workers until fd receives a message of the wanted type (0: any) or
//  the deadline (2 s) passes; returns its size, or -1.
static ssize_t
s_await (relay_worker_t **workers, int nworkers, int fd, uint8_t type, uint8_t *buf, size_t cap)
{
    int64_t deadline = zclock_mono () + 2000;
    while (zclock_mono () < deadline) {
        ssize_t n;
        while ((n = recv (fd, buf, cap, 0)) >= 0)
            if (type == 0 || (n > 0 && buf [0] == type))
                return n;
        for (int w = 0; w < nworkers; w++)
            relay_worker_run_once (workers [w], nworkers > 1 ? 1 : 5);
    }
    return -1;
}

//  Runs the worker until a counter moves past its old value (deadline 2 s)
static bool
s_await_count (relay_worker_t *worker, const uint64_t *counter, uint64_t old)
{
    int64_t deadline = zclock_mono () + 2000;
    while (*counter == old && zclock_mono () < deadline)
        relay_worker_run_once (worker, 5);
    return *counter != old;
}

static bool
s_nothing_waiting (int fd)
{
    uint8_t buf [64];
    return recv (fd, buf, sizeof buf, 0) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static size_t
s_register (relay_cred_t *cred, uint8_t *buf, uint64_t peer, uint64_t cred_net,
            uint64_t claim_net, uint64_t expiry, uint64_t nonce)
{
    relay_msg_t msg = { .type = RELAY_PROTO_REGISTER, .peer = peer, .network = claim_net,
                        .expiry = expiry, .nonce = nonce };
    relay_cred_issue (cred, cred_net, peer, expiry, msg.mac);
    return relay_proto_encode (&msg, buf, 128);
}

void
relay_worker_test (bool verbose)
{
    if (verbose)
        printf (" * relay_worker: ");
    uint8_t secret [RELAY_CRED_SECRET_SIZE];
    memset (secret, 0x42, sizeof secret);
    relay_cred_t *cred = relay_cred_new (secret, 0);
    relay_worker_config_t config = { .bind_ip = "127.0.0.1", .secret = secret,
                                     .max_lifetime = 86400, .gso = true,
                                     .limits = { .peer_pps = 200, .idle_ms = 60000 } };
    relay_worker_t *worker = relay_worker_new (&config);
    assert (worker);
    uint16_t port = relay_worker_port (worker);
    assert (port);
    relay_worker_t *one [] = { worker };
    const relay_worker_stats_t *st = relay_worker_stats (worker);
    const node_udp_tx_stats_t *tx = relay_worker_tx_stats (worker);
    uint64_t now_s = (uint64_t) time (NULL), expiry = now_s + 3600;
    uint8_t buf [RELAY_WORKER_DGRAM_MAX], msgbuf [256];
    relay_msg_t msg;
    const uint64_t A = 0xa0a0a0a0a0a0a0a0ULL, B = 0xb0b0b0b0b0b0b0b0ULL;

    //  1. Two clients register and hear their observed address
    uint16_t port_a, port_b;
    int fd_a = s_client (&port_a), fd_b = s_client (&port_b);
    size_t size = s_register (cred, msgbuf, A, S_NET, S_NET, expiry, 7);
    s_send (fd_a, port, msgbuf, size);
    ssize_t n = s_await (one, 1, fd_a, RELAY_PROTO_REGISTERED, buf, sizeof buf);
    assert (n == RELAY_PROTO_REGISTERED_SIZE && (size_t) n < size);
    assert (relay_proto_parse (buf, (size_t) n, &msg) == RELAY_PROTO_OK);
    assert (msg.peer == A && msg.nonce == 7 && msg.addr.ss_family == AF_INET);
    assert (ntohs (((struct sockaddr_in *) &msg.addr)->sin_port) == port_a);
    size = s_register (cred, msgbuf, B, S_NET, S_NET, expiry, 8);
    s_send (fd_b, port, msgbuf, size);
    n = s_await (one, 1, fd_b, RELAY_PROTO_REGISTERED, buf, sizeof buf);
    assert (n == RELAY_PROTO_REGISTERED_SIZE);
    assert (st->registered == 2);

    //  2. DATA A -> B arrives with A's id; both hear ESTABLISHED with the other's address
    const char *hello = "opaque ciphertext";
    relay_msg_t data = { .type = RELAY_PROTO_DATA, .peer = B, .network = S_NET, .payload = (const uint8_t *) hello,
                         .payload_size = strlen (hello) };
    size = relay_proto_encode (&data, msgbuf, sizeof msgbuf);
    s_send (fd_a, port, msgbuf, size);
    n = s_await (one, 1, fd_b, RELAY_PROTO_DATA, buf, sizeof buf);
    assert (n == (ssize_t) size);
    assert (relay_proto_parse (buf, (size_t) n, &msg) == RELAY_PROTO_OK);
    assert (msg.peer == A && msg.payload_size == strlen (hello));
    assert (memcmp (msg.payload, hello, msg.payload_size) == 0);
    n = s_await (one, 1, fd_b, RELAY_PROTO_ESTABLISHED, buf, sizeof buf);
    assert (n == RELAY_PROTO_ESTABLISHED_SIZE);
    assert (relay_proto_parse (buf, (size_t) n, &msg) == RELAY_PROTO_OK);
    assert (msg.peer == A && ntohs (((struct sockaddr_in *) &msg.addr)->sin_port) == port_a);
    n = s_await (one, 1, fd_a, RELAY_PROTO_ESTABLISHED, buf, sizeof buf);
    assert (n == RELAY_PROTO_ESTABLISHED_SIZE);
    assert (relay_proto_parse (buf, (size_t) n, &msg) == RELAY_PROTO_OK);
    assert (msg.peer == B && ntohs (((struct sockaddr_in *) &msg.addr)->sin_port) == port_b);
    assert (st->established == 2 && st->forwarded == 1);

    //  B -> A, a batch of 32 (one recvmmsg, one sendmmsg or one GSO message)
    data.peer = A;
    size = relay_proto_encode (&data, msgbuf, sizeof msgbuf);
    for (int i = 0; i < 32; i++)
        s_send (fd_b, port, msgbuf, size);
    for (int i = 0; i < 32; i++) {
        n = s_await (one, 1, fd_a, RELAY_PROTO_DATA, buf, sizeof buf);
        assert (n == (ssize_t) size);
        assert (relay_proto_data_peer (buf) == B);
    }
    assert (st->forwarded == 33 && st->established == 2);
    relay_peer_t *peer_a = relay_table_by_id (relay_worker_table (worker), A);
    assert (peer_a && peer_a->pkts_out == 32 && peer_a->pkts_in == 1);

    //  3. PING -> PONG, no larger than the PING
    relay_msg_t ping = { .type = RELAY_PROTO_PING, .peer = A, .network = S_NET, .nonce = 99 };
    size = relay_proto_encode (&ping, msgbuf, sizeof msgbuf);
    s_send (fd_a, port, msgbuf, size);
    n = s_await (one, 1, fd_a, RELAY_PROTO_PONG, buf, sizeof buf);
    assert (n == RELAY_PROTO_PONG_SIZE && (size_t) n <= size);
    assert (relay_proto_parse (buf, (size_t) n, &msg) == RELAY_PROTO_OK && msg.nonce == 99);

    //  4. Forged, expired, other-network and over-long credentials: dropped, counted, nothing sent
    uint16_t port_m;
    int fd_m = s_client (&port_m);
    const uint64_t M = 0x0d0d0d0d0d0d0d0dULL;
    uint64_t sent = tx->dgrams_out;
    size = s_register (cred, msgbuf, M, S_NET, S_NET, expiry, 1);
    msgbuf [40] ^= 1;                                   //  forged mac
    s_send (fd_m, port, msgbuf, size);
    assert (s_await_count (worker, &st->cred_refused [RELAY_CRED_BAD_MAC], 0));
    size = s_register (cred, msgbuf, M, S_NET, S_NET, now_s - 10, 1);     //  expired
    s_send (fd_m, port, msgbuf, size);
    assert (s_await_count (worker, &st->cred_refused [RELAY_CRED_EXPIRED], 0));
    size = s_register (cred, msgbuf, M, S_NET, S_NET2, expiry, 1);         //  other network
    s_send (fd_m, port, msgbuf, size);
    assert (s_await_count (worker, &st->cred_refused [RELAY_CRED_BAD_MAC], 1));
    size = s_register (cred, msgbuf, M, S_NET, S_NET, now_s + 2 * 86400, 1);
    s_send (fd_m, port, msgbuf, size);
    assert (s_await_count (worker, &st->cred_refused [RELAY_CRED_TOO_LONG], 0));
    size = s_register (cred, msgbuf, M, S_NET, S_NET, expiry, 1);
    s_send (fd_m, port, msgbuf, size - 1);              //  truncated REGISTER
    assert (s_await_count (worker, &st->malformed [RELAY_PROTO_TOO_SHORT], 0));
    assert (tx->dgrams_out == sent && s_nothing_waiting (fd_m));
    assert (relay_table_by_id (relay_worker_table (worker), M) == NULL);

    //  5. Spoofed source: DATA to B from an address nobody registered; PING claiming A
    data.peer = B;
    size = relay_proto_encode (&data, msgbuf, sizeof msgbuf);
    s_send (fd_m, port, msgbuf, size);
    assert (s_await_count (worker, &st->unknown_source, 0));
    size = relay_proto_encode (&ping, msgbuf, sizeof msgbuf);
    s_send (fd_m, port, msgbuf, size);
    assert (s_await_count (worker, &st->unknown_source, 1));
    assert (tx->dgrams_out == sent);
    assert (s_nothing_waiting (fd_m) && s_nothing_waiting (fd_b));

    //  6. Malformed and wrong-direction messages
    uint8_t junk [] = { 4, 0, 0, 0, 1, 2, 3, 4 };                 //  a tunnel type
    s_send (fd_a, port, junk, sizeof junk);
    assert (s_await_count (worker, &st->malformed [RELAY_PROTO_BAD_TYPE], 0));
    relay_msg_t pong = { .type = RELAY_PROTO_PONG, .peer = A };
    size = relay_proto_encode (&pong, msgbuf, sizeof msgbuf);
    s_send (fd_a, port, msgbuf, size);
    assert (s_await_count (worker, &st->wrong_direction, 0));
    uint8_t big [RELAY_WORKER_DGRAM_MAX + 100] = { RELAY_PROTO_DATA, 1 };
    s_send (fd_a, port, big, sizeof big);
    assert (s_await_count (worker, &st->truncated, 0));
    assert (tx->dgrams_out == sent);

    //  7. Unknown destination and another network: ERROR to the (registered) sender
    data.peer = 0x1234;
    size = relay_proto_encode (&data, msgbuf, sizeof msgbuf);
    s_send (fd_a, port, msgbuf, size);
    n = s_await (one, 1, fd_a, RELAY_PROTO_ERROR, buf, sizeof buf);
    assert (n == RELAY_PROTO_ERROR_SIZE);
    assert (relay_proto_parse (buf, (size_t) n, &msg) == RELAY_PROTO_OK);
    assert (msg.code == RELAY_PROTO_CODE_UNKNOWN_PEER && msg.peer == 0x1234);
    //  An empty DATA is as large as the ERROR it causes: the size rule holds by format
    relay_msg_t empty = { .type = RELAY_PROTO_DATA, .peer = 0x1234, .network = S_NET };
    size = relay_proto_encode (&empty, msgbuf, sizeof msgbuf);
    s_send (fd_a, port, msgbuf, size);
    n = s_await (one, 1, fd_a, RELAY_PROTO_ERROR, buf, sizeof buf);
    assert (n == RELAY_PROTO_ERROR_SIZE && (size_t) n <= size);
    assert (st->unknown_dest == 2 && st->reply_too_large == 0);
    //  DATA whose network word is not the sender's: dropped, counted, nothing sent
    uint64_t sent_before = tx->dgrams_out;
    empty.network = S_NET2;
    size = relay_proto_encode (&empty, msgbuf, sizeof msgbuf);
    s_send (fd_a, port, msgbuf, size);
    assert (s_await_count (worker, &st->bad_network_word, 0));
    assert (tx->dgrams_out == sent_before);
    uint16_t port_o;
    int fd_o = s_client (&port_o);
    const uint64_t O = 0x0e0e0e0e0e0e0e0eULL;
    size = s_register (cred, msgbuf, O, S_NET2, S_NET2, expiry, 3);
    s_send (fd_o, port, msgbuf, size);
    assert (s_await (one, 1, fd_o, RELAY_PROTO_REGISTERED, buf, sizeof buf) == RELAY_PROTO_REGISTERED_SIZE);
    data.peer = O;
    size = relay_proto_encode (&data, msgbuf, sizeof msgbuf);
    s_send (fd_a, port, msgbuf, size);
    n = s_await (one, 1, fd_a, RELAY_PROTO_ERROR, buf, sizeof buf);
    assert (relay_proto_parse (buf, (size_t) n, &msg) == RELAY_PROTO_OK);
    assert (msg.code == RELAY_PROTO_CODE_OTHER_NETWORK && st->other_network == 1);
    assert (s_nothing_waiting (fd_o));

    //  8. Rate limit: A may send 200 packets/s; a burst of 400 is cut, counted, survived
    data.peer = B;
    size = relay_proto_encode (&data, msgbuf, sizeof msgbuf);
    uint64_t fwd_before = st->forwarded;
    for (int i = 0; i < 400; i++) {
        s_send (fd_a, port, msgbuf, size);
        if (i % 64 == 63)
            relay_worker_run_once (worker, 0);
    }
    int64_t deadline = zclock_mono () + 2000;
    while (st->forwarded + st->limited < fwd_before + 400 && zclock_mono () < deadline)
        relay_worker_run_once (worker, 5);
    assert (st->limited > 0);
    assert (st->forwarded - fwd_before <= 250);
    assert (st->forwarded + st->limited == fwd_before + 400);
    assert (st->reply_too_large == 0);

    //  8b. A moves (new address, same credential): REGISTERED tells it the new
    //  address, and both ends of its session hear ESTABLISHED again
    uint16_t port_a2;
    int fd_a2 = s_client (&port_a2);
    size = s_register (cred, msgbuf, A, S_NET, S_NET, expiry, 11);
    s_send (fd_a2, port, msgbuf, size);
    n = s_await (one, 1, fd_a2, RELAY_PROTO_REGISTERED, buf, sizeof buf);
    assert (relay_proto_parse (buf, (size_t) n, &msg) == RELAY_PROTO_OK);
    assert (ntohs (((struct sockaddr_in *) &msg.addr)->sin_port) == port_a2);
    n = s_await (one, 1, fd_b, RELAY_PROTO_ESTABLISHED, buf, sizeof buf);
    assert (relay_proto_parse (buf, (size_t) n, &msg) == RELAY_PROTO_OK);
    assert (msg.peer == A && ntohs (((struct sockaddr_in *) &msg.addr)->sin_port) == port_a2);
    n = s_await (one, 1, fd_a2, RELAY_PROTO_ESTABLISHED, buf, sizeof buf);
    assert (relay_proto_parse (buf, (size_t) n, &msg) == RELAY_PROTO_OK && msg.peer == B);
    //  The old address is no longer A's: its DATA is an unknown source now
    uint64_t unknown = st->unknown_source;
    s_send (fd_a, port, msgbuf, relay_proto_encode (&data, msgbuf, sizeof msgbuf));
    assert (s_await_count (worker, &st->unknown_source, unknown));

    //  8c. A credential that expires while registered: DATA gets ERROR re-register
    //  until the once-a-second sweep forgets the peer. Waits for the clock to pass
    //  the expiry second (poll on a socket with no traffic, bounded).
    uint16_t port_e;
    int fd_e = s_client (&port_e);
    const uint64_t E = 0x0f0f0f0f0f0f0f0fULL;
    uint64_t e_expiry = (uint64_t) time (NULL) + 1;
    size = s_register (cred, msgbuf, E, S_NET, S_NET, e_expiry, 4);
    s_send (fd_e, port, msgbuf, size);
    assert (s_await (one, 1, fd_e, RELAY_PROTO_REGISTERED, buf, sizeof buf) == RELAY_PROTO_REGISTERED_SIZE);
    int64_t until = zclock_mono () + 3000;
    while ((uint64_t) time (NULL) <= e_expiry && zclock_mono () < until) {
        struct pollfd idle = { fd_e, POLLIN, 0 };
        poll (&idle, 1, 50);
    }
    data.peer = B;
    s_send (fd_e, port, msgbuf, relay_proto_encode (&data, msgbuf, sizeof msgbuf));
    n = s_await (one, 1, fd_e, RELAY_PROTO_ERROR, buf, sizeof buf);
    assert (relay_proto_parse (buf, (size_t) n, &msg) == RELAY_PROTO_OK);
    assert (msg.code == RELAY_PROTO_CODE_REREGISTER && st->expired_source == 1);
    //  The once-a-second sweep forgets E
    until = zclock_mono () + 2000;
    while (relay_table_by_id (relay_worker_table (worker), E) && zclock_mono () < until)
        relay_worker_run_once (worker, 50);
    assert (relay_table_by_id (relay_worker_table (worker), E) == NULL);
    assert (relay_table_stats (relay_worker_table (worker))->expired_cred == 1);
    close (fd_e);
    close (fd_a2);

    //  9. Two workers on one SO_REUSEPORT port both serve
    relay_worker_t *second = relay_worker_new (&(relay_worker_config_t) {
        .bind_ip = "127.0.0.1", .port = port, .secret = secret, .gso = true });
    assert (second);
    assert (relay_worker_port (second) == port);
    relay_worker_t *both [] = { worker, second };
    uint64_t reg_first = st->registered;
    #define S_CLIENTS 32
    int fds [S_CLIENTS];
    for (int i = 0; i < S_CLIENTS; i++) {
        fds [i] = s_client (NULL);
        size = s_register (cred, msgbuf, 0x100 + (uint64_t) i, S_NET, S_NET, expiry, (uint64_t) i);
        s_send (fds [i], port, msgbuf, size);
    }
    for (int i = 0; i < S_CLIENTS; i++) {
        n = s_await (both, 2, fds [i], RELAY_PROTO_REGISTERED, buf, sizeof buf);
        assert (n == RELAY_PROTO_REGISTERED_SIZE);
        assert (relay_proto_parse (buf, (size_t) n, &msg) == RELAY_PROTO_OK && msg.nonce == (uint64_t) i);
    }
    uint64_t reg_second = relay_worker_stats (second)->registered;
    assert (st->registered > reg_first && reg_second > 0);
    assert (st->registered - reg_first + reg_second == S_CLIENTS);
    for (int i = 0; i < S_CLIENTS; i++)
        close (fds [i]);
    if (verbose)
        printf ("(workers served %llu and %llu) ", (unsigned long long) (st->registered - reg_first),
                (unsigned long long) reg_second);

    //  10. Steering by network: two fresh workers, eight networks of two peers each.
    //  The network tags are chosen so the steering word (big-endian load of bytes
    //  4..7 = the tag's low 4 bytes little-endian) is k: network k belongs to worker
    //  k % 2. Every pair exchanges DATA both ways, which needs both peers at one
    //  worker; without steering the 4-tuple hash splits some pairs (checked by
    //  hand: with the steer call removed this test fails).
    relay_worker_t *w0 = relay_worker_new (&(relay_worker_config_t) {
        .bind_ip = "127.0.0.1", .secret = secret, .gso = true });
    assert (w0);
    uint16_t sport = relay_worker_port (w0);
    relay_worker_t *w1 = relay_worker_new (&(relay_worker_config_t) {
        .bind_ip = "127.0.0.1", .port = sport, .secret = secret, .gso = true });
    assert (w1);
    relay_worker_t *pair [] = { w0, w1 };
    assert (relay_worker_steer (w1, 0) == -1);
    if (relay_worker_steer (w1, 2) == 0) {
        for (uint64_t k = 1; k <= 8; k++) {
            uint64_t net = 0x5151515100000000ULL | (k << 24);
            uint64_t pa = 0x7000 + 2 * k, pb = pa + 1;
            int fa = s_client (NULL), fb = s_client (NULL);
            uint64_t reg0 = relay_worker_stats (pair [k % 2])->registered;
            size = s_register (cred, msgbuf, pa, net, net, expiry, 1);
            s_send (fa, sport, msgbuf, size);
            size = s_register (cred, msgbuf, pb, net, net, expiry, 2);
            s_send (fb, sport, msgbuf, size);
            assert (s_await (pair, 2, fa, RELAY_PROTO_REGISTERED, buf, sizeof buf) > 0);
            assert (s_await (pair, 2, fb, RELAY_PROTO_REGISTERED, buf, sizeof buf) > 0);
            assert (relay_worker_stats (pair [k % 2])->registered == reg0 + 2);
            relay_msg_t d = { .type = RELAY_PROTO_DATA, .network = net, .peer = pb,
                              .payload = (const uint8_t *) hello, .payload_size = 5 };
            size = relay_proto_encode (&d, msgbuf, sizeof msgbuf);
            s_send (fa, sport, msgbuf, size);
            n = s_await (pair, 2, fb, RELAY_PROTO_DATA, buf, sizeof buf);
            assert (n == (ssize_t) size && relay_proto_data_peer (buf) == pa);
            d.peer = pa;
            size = relay_proto_encode (&d, msgbuf, sizeof msgbuf);
            s_send (fb, sport, msgbuf, size);
            n = s_await (pair, 2, fa, RELAY_PROTO_DATA, buf, sizeof buf);
            assert (n == (ssize_t) size && relay_proto_data_peer (buf) == pb);
            close (fa);
            close (fb);
        }
        assert (relay_worker_stats (w0)->registered == 8 && relay_worker_stats (w1)->registered == 8);
        assert (relay_worker_stats (w0)->unknown_source == 0 && relay_worker_stats (w1)->unknown_dest == 0);
    }
    else
    if (verbose)
        printf ("(no SO_ATTACH_REUSEPORT_CBPF: steering not tested) ");
    relay_worker_destroy (&w1);
    relay_worker_destroy (&w0);

    //  A port in use without SO_REUSEPORT on the other side: bind fails cleanly
    int plain = socket (AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    inet_pton (AF_INET, "127.0.0.1", &sin.sin_addr);
    bind (plain, (struct sockaddr *) &sin, sizeof sin);
    socklen_t len = sizeof sin;
    getsockname (plain, (struct sockaddr *) &sin, &len);
    relay_worker_t *clash = relay_worker_new (&(relay_worker_config_t) {
        .bind_ip = "127.0.0.1", .port = ntohs (sin.sin_port), .secret = secret });
    assert (clash == NULL);
    close (plain);
    assert (relay_worker_new (&(relay_worker_config_t) { .bind_ip = "not an ip", .secret = secret }) == NULL);

    close (fd_a);
    close (fd_b);
    close (fd_m);
    close (fd_o);
    relay_worker_destroy (&second);
    relay_worker_destroy (&worker);
    assert (worker == NULL);
    relay_cred_destroy (&cred);
    if (verbose)
        printf ("OK\n");
}
