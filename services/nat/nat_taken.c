/*  nat_taken: a peer's own UDP socket in nat's batched data path (see
    nat_taken.h). Out of nat_ice.c so that the birthday path (nat_bday_path.c)
    carries its winning socket the same way, with one copy of the code. */
#include "nat_service_priv.h"
#include "nat_taken.h"

#include <assert.h>
#include <unistd.h>

struct _nat_taken_t {
    nat_service_t *owner;
    nat_udp_t *udp;
    zmq_pollitem_t item;                //  fd -1 while not polled
    nat_addr_t to;                      //  the path's remote address
    nat_addr_t as;                      //  what its datagrams are ingested as
    nat_udp_tx_t tx [NAT_UDP_BATCH];    //  queued until nat_taken_flush
    size_t count;
    bool listed;                        //  queued since the last flush
    bool paused;                        //  not polled while crypto is behind
    nat_taken_rx_fn *rx;
    void *arg;
};

nat_udp_t *
nat_taken_wrap (nat_service_t *owner, int fd, char *err, size_t err_size)
{
    nat_udp_t *main_udp = owner ? owner->udp : NULL;
    nat_udp_config_t uc = {
        .rcvbuf = main_udp ? nat_udp_rcvbuf (main_udp) : 0, .sndbuf = main_udp ? nat_udp_sndbuf (main_udp) : 0,
        .gso = true, .gro = true,
    };
    nat_udp_t *udp = nat_udp_new_fd (fd, &uc, err, err_size);
    if (!udp)
        close (fd);
    return udp;
}

//  What came on the socket: from `to`, into crypto's batch as from `as`;
//  anything else is counted and dropped. While crypto is behind (nat's pause,
//  bus_pause.h) the socket is not polled: the kernel queues and drops, not us.
static int
s_ready (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    nat_taken_t *self = (nat_taken_t *) arg;
    size_t strangers = 0;
    size_t ingested = nat_datapath_read (self->owner, self->udp, &self->to, &self->as, &strangers);
    if (self->rx && (ingested || strangers))
        self->rx (self->arg, ingested, strangers);
    if (bus_pause_active (self->owner->pause) && !self->paused) {
        bus_loop_poller_end (loop, &self->item);
        self->paused = true;
    }
    return 0;
}

nat_taken_t *
nat_taken_new (nat_service_t *owner, nat_udp_t **udp_p, const nat_addr_t *to, const nat_addr_t *as,
               nat_taken_rx_fn *rx, void *arg)
{
    assert (udp_p && *udp_p);
    nat_taken_t *self = (nat_taken_t *) calloc (1, sizeof *self);
    assert (self);
    self->owner = owner;
    self->udp = *udp_p;
    *udp_p = NULL;
    self->to = *to;
    self->as = *as;
    self->rx = rx;
    self->arg = arg;
    self->item = (zmq_pollitem_t) { NULL, -1, ZMQ_POLLIN, 0 };
    if (owner && owner->loop) {
        self->item.fd = nat_udp_fd (self->udp);
        if (bus_loop_poller (owner->loop, &self->item, s_ready, self)) {
            self->item.fd = -1;
            nat_taken_destroy (&self, NULL);
        }
    }
    return self;
}

void
nat_taken_stats_add (nat_taken_t *self, nat_udp_stats_t *sum)
{
    const nat_udp_stats_t *st = nat_udp_stats (self->udp);
    sum->dgrams_in += st->dgrams_in;
    sum->bytes_in += st->bytes_in;
    sum->dgrams_out += st->dgrams_out;
    sum->bytes_out += st->bytes_out;
    sum->send_errors += st->send_errors + st->send_dropped;
}

void
nat_taken_destroy (nat_taken_t **self_p, nat_udp_stats_t *closed)
{
    assert (self_p);
    nat_taken_t *self = *self_p;
    if (!self)
        return;
    if (self->item.fd >= 0 && !self->paused)
        bus_loop_poller_end (self->owner->loop, &self->item);
    if (closed)
        nat_taken_stats_add (self, closed);
    nat_udp_destroy (&self->udp);
    free (self);
    *self_p = NULL;
}

bool
nat_taken_queue (nat_taken_t *self, const uint8_t *data, size_t size)
{
    if (self->count == NAT_UDP_BATCH) {
        nat_udp_send (self->udp, self->tx, self->count);
        self->count = 0;
    }
    self->tx [self->count++] = (nat_udp_tx_t) { data, size, &self->to };
    bool first = !self->listed;
    self->listed = true;
    return first;
}

void
nat_taken_flush (nat_taken_t *self)
{
    if (self->count)
        nat_udp_send (self->udp, self->tx, self->count);
    self->count = 0;
    self->listed = false;
}

void
nat_taken_resume (nat_taken_t *self)
{
    if (!self->paused || self->item.fd < 0)
        return;
    self->paused = false;
    if (bus_loop_poller (self->owner->loop, &self->item, s_ready, self) == 0)
        bus_loop_poller_kick (self->owner->loop, &self->item);      //  what queued meanwhile
}

nat_udp_t *
nat_taken_udp (nat_taken_t *self)
{
    return self->udp;
}

const nat_addr_t *
nat_taken_to (nat_taken_t *self)
{
    return &self->to;
}

size_t
nat_taken_queued (nat_taken_t *self)
{
    return self->count;
}

//  ---------------------------------------------------------------------------
//  Self test: a burst of 100 queued leaves only at the flush (64 when the
//  queue filled, 36 then), all to `to`, in order

void
nat_taken_test (bool verbose)
{
    printf (" * nat_taken: ");
    nat_udp_test_netns ();
    char err [200];
    nat_udp_t *remote = nat_udp_new (&(nat_udp_config_t) { .bind = "127.0.0.1:0" }, err, sizeof err);
    nat_udp_t *local = nat_udp_new (&(nat_udp_config_t) { .bind = "127.0.0.1:0" }, err, sizeof err);
    assert (remote && local);
    nat_addr_t to, as;
    nat_addr_set_ip (&to, "127.0.0.1", nat_udp_port (remote));
    nat_addr_set_ice (&as, 7);
    nat_taken_t *self = nat_taken_new (NULL, &local, &to, &as, NULL, NULL);
    assert (self && !local);
    nat_udp_t *udp = nat_taken_udp (self);
    static uint8_t data [100][200];
    for (int i = 0; i < 100; i++) {
        memset (data [i], i, sizeof data [i]);
        assert (nat_taken_queue (self, data [i], sizeof data [i]) == (i == 0));
    }
    assert (nat_udp_stats (udp)->dgrams_out == 64 && nat_taken_queued (self) == 36);
    nat_taken_flush (self);
    assert (nat_udp_stats (udp)->dgrams_out == 100 && nat_taken_queued (self) == 0);
    if (!nat_udp_gso (udp))
        assert (nat_udp_stats (udp)->send_calls <= 4);
    size_t got = 0;
    for (int tries = 0; got < 100 && tries < 100; tries++) {
        nat_udp_rx_t *rx;
        size_t n = nat_udp_recv (remote, &rx);
        for (size_t i = 0; i < n; i++, got++)
            assert (rx [i].size == 200 && rx [i].data [0] == (uint8_t) got);
        if (!n)
            zclock_sleep (1);
    }
    assert (got == 100);
    //  Queued, then closed before the flush: the queue goes with the socket
    assert (nat_taken_queue (self, data [0], 10));
    nat_udp_stats_t closed = { 0 };
    nat_taken_destroy (&self, &closed);
    assert (!self && closed.dgrams_out == 100);
    nat_udp_destroy (&remote);
    if (verbose)
        printf ("(100 datagrams in one burst) ");
    printf ("OK\n");
}
