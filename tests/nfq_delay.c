/*  nfq_delay: delays the packets of NFQUEUE queues by a fixed time, so namespace
    tests can give links a latency (this kernel has no `tc netem`). Each queue
    has its own delay; a rule `iptables -A OUTPUT -d ADDR -j NFQUEUE --queue-num N
    --queue-bypass` sends a link's packets to queue N (bypass: if this program is
    gone, packets pass undelayed rather than being dropped). iptables' xt target
    rather than nft's `queue` statement: this kernel has NFT_QUEUE off but the
    NFQUEUE target on (through nft_compat). Measured: 25 ms asked, ping 25.2 ms. The delay is constant per queue, so the order of a queue's
    packets is kept. Only the verdict travels back: the packet itself stays in
    the kernel (copy mode META), so the program costs no copy.

    usage: nfq_delay QUEUE:MS [QUEUE:MS ...]     runs until SIGTERM/SIGINT
    A queue that fills (more than 65,536 packets held) lets the newest pass at
    once and counts it; the counts are printed at the end. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_QUEUES 32
#define HELD_MAX 65536

typedef struct {
    uint32_t id;
    int64_t due_us;
} held_t;

typedef struct {
    struct nfq_q_handle *qh;
    unsigned num;
    int64_t delay_us;
    held_t *held;               //  ring of packets waiting for their verdict
    size_t head, count;
    uint64_t delayed, overflow;
} queue_t;

static volatile sig_atomic_t s_stop;
static void s_on_signal (int sig) { (void) sig; s_stop = 1; }

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

//  A packet arrived: hold it until now + the queue's delay.
static int
s_on_packet (struct nfq_q_handle *qh, struct nfgenmsg *nfmsg, struct nfq_data *nfa, void *arg)
{
    (void) nfmsg;
    queue_t *q = arg;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr (nfa);
    if (!ph)
        return 0;
    uint32_t id = ntohl (ph->packet_id);
    if (q->count == HELD_MAX) {
        q->overflow++;
        return nfq_set_verdict (qh, id, NF_ACCEPT, 0, NULL);
    }
    held_t *slot = &q->held [(q->head + q->count) % HELD_MAX];
    slot->id = id;
    slot->due_us = s_now_us () + q->delay_us;
    q->count++;
    q->delayed++;
    return 0;
}

//  Releases every packet whose time has come; returns microseconds until the next one (-1: none).
static int64_t
s_release (queue_t *queues, size_t n)
{
    int64_t now = s_now_us (), next = -1;
    for (size_t i = 0; i < n; i++) {
        queue_t *q = &queues [i];
        while (q->count && q->held [q->head].due_us <= now) {
            nfq_set_verdict (q->qh, q->held [q->head].id, NF_ACCEPT, 0, NULL);
            q->head = (q->head + 1) % HELD_MAX;
            q->count--;
        }
        if (q->count) {
            int64_t wait = q->held [q->head].due_us - now;
            if (next < 0 || wait < next)
                next = wait;
        }
    }
    return next;
}

int
main (int argc, char **argv)
{
    if (argc < 2 || argc - 1 > MAX_QUEUES) {
        fprintf (stderr, "usage: nfq_delay QUEUE:MS [QUEUE:MS ...] (at most %d)\n", MAX_QUEUES);
        return 2;
    }
    struct nfq_handle *h = nfq_open ();
    if (!h) {
        fprintf (stderr, "nfq_delay: nfq_open: %s\n", strerror (errno));
        return 1;
    }
    queue_t queues [MAX_QUEUES];
    memset (queues, 0, sizeof queues);
    size_t n = 0;
    for (int i = 1; i < argc; i++) {
        unsigned num, ms;
        char extra;
        if (sscanf (argv [i], "%u:%u%c", &num, &ms, &extra) != 2 || num > 65535 || ms > 10000) {
            fprintf (stderr, "nfq_delay: bad argument '%s' (QUEUE:MS, queue 0..65535, 0..10000 ms)\n", argv [i]);
            return 2;
        }
        queue_t *q = &queues [n++];
        q->num = num;
        q->delay_us = (int64_t) ms * 1000;
        q->held = calloc (HELD_MAX, sizeof (held_t));
        q->qh = q->held ? nfq_create_queue (h, (uint16_t) num, s_on_packet, q) : NULL;
        if (!q->qh || nfq_set_mode (q->qh, NFQNL_COPY_META, 0) < 0) {
            fprintf (stderr, "nfq_delay: queue %u: %s\n", num, strerror (errno));
            return 1;
        }
        nfq_set_queue_maxlen (q->qh, HELD_MAX);
    }
    signal (SIGTERM, s_on_signal);
    signal (SIGINT, s_on_signal);
    int fd = nfq_fd (h);
    char buf [65536] __attribute__ ((aligned));
    printf ("nfq_delay: %zu queue(s) ready\n", n);
    fflush (stdout);
    while (!s_stop) {
        int64_t next = s_release (queues, n);
        int timeout = next < 0 ? 200 : (int) ((next + 999) / 1000);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int rc = poll (&p, 1, timeout > 200 ? 200 : timeout);
        if (rc > 0) {
            //  Drain what is there without blocking
            for (int burst = 0; burst < 256; burst++) {
                ssize_t got = recv (fd, buf, sizeof buf, MSG_DONTWAIT);
                if (got <= 0)
                    break;
                nfq_handle_packet (h, buf, (int) got);
            }
        }
    }
    //  Let what is still held pass, then say what was done
    for (size_t i = 0; i < n; i++) {
        queue_t *q = &queues [i];
        while (q->count) {
            nfq_set_verdict (q->qh, q->held [q->head].id, NF_ACCEPT, 0, NULL);
            q->head = (q->head + 1) % HELD_MAX;
            q->count--;
        }
        printf ("nfq_delay: queue %u: %llu delayed by %lld ms, %llu passed at once (full)\n", q->num,
                (unsigned long long) q->delayed, (long long) (q->delay_us / 1000),
                (unsigned long long) q->overflow);
        nfq_destroy_queue (q->qh);
        free (q->held);
    }
    nfq_close (h);
    return 0;
}
