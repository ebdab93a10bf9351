/*  nat_pipe_probe: plays crypto (and the peers on the internet) against a real
    bifrost-nat, for tests/integration/nat_service.sh. crypto is not needed to test
    nat, and a stand-in that does exactly what the contract (docs/packet-path.md)
    says makes a failure point at nat, not at a handshake.

    usage: nat_pipe_probe [-r RUN_DIR] COMMAND ...
      freeport                 print a free UDP port on 127.0.0.1
      reflect                  be crypto until SIGTERM: bind nat-crypto, connect
                               crypto-nat, register as bus service "crypto"; answer
                               every datagram with an ENDPOINT record for peer 0 and
                               the same bytes back to peer 0; answer nat.dial with a
                               148-byte initiation for that peer; print "dial I EP"
      recv PORTFILE SECONDS    bind 127.0.0.1:0, write the port to PORTFILE, wait for
                               a handshake initiation (type 1); exit 0 when it came
      ping PORT                send a data-shaped datagram to nat on PORT from a new
                               socket until the same bytes come back (5 s)
      malformed PORT           send 3 malformed datagrams; nat.status must count them
      status                   print nat.status as key=value lines
      bench PORT SECONDS SIZE  (no reflect running) flood nat with SIZE-byte data
                               datagrams and count what reaches nat-crypto per second
    Exit 0 on success, 1 on failure (with the reason on stderr). */
#include "nat_service.h"
#include "nat_udp.h"
#include "bus_client.h"
#include "bus_endpoint.h"
#include "bus_log.h"
#include "bus_pipe.h"
#include "schemas/pipes.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>

static const char *s_run_dir;

static int
s_fail (const char *what)
{
    fprintf (stderr, "nat_pipe_probe: %s\n", what);
    return 1;
}

static nat_udp_t *
s_udp (bool gso)
{
    char err [200];
    nat_udp_config_t config = { .bind = "127.0.0.1:0", .gso = gso,
                                .sndbuf = 4 << 20, .rcvbuf = 4 << 20 };
    nat_udp_t *udp = nat_udp_new (&config, err, sizeof err);
    if (!udp)
        fprintf (stderr, "nat_pipe_probe: %s\n", err);
    return udp;
}

//  A transport data packet as nat's demux wants it: type 4, three zero bytes,
//  receiver index, counter, and at least 16 more bytes.
static void
s_data_packet (uint8_t *buf, size_t size, uint32_t seq)
{
    memset (buf, 0, size);
    buf [0] = 4;
    memcpy (buf + 4, &seq, 4);
    for (size_t i = 16; i < size; i++)
        buf [i] = (uint8_t) (i * 7 + seq);
}

static size_t
s_udp_wait (nat_udp_t *udp, nat_udp_rx_t **rx, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    do {
        size_t n = nat_udp_recv (udp, rx);
        if (n)
            return n;
        zmq_pollitem_t item = { NULL, nat_udp_fd (udp), ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, 20);
    } while (zclock_mono () < deadline);
    return 0;
}

static nat_status_reply_t *
s_status (void)
{
    char endpoint [BUS_PATH_MAX], err [300];
    if (bus_endpoint (endpoint, sizeof endpoint, bus_run_dir (s_run_dir), "bus"))
        return NULL;
    bus_client_t *client = bus_client_new (endpoint, NULL, err, sizeof err);
    if (!client) {
        fprintf (stderr, "nat_pipe_probe: %s\n", err);
        return NULL;
    }
    nat_status_t request = { .peer = "" };
    bus_envelope_t *reply = bus_client_request (client, "nat", &nat_status_schema, &request, 2000, err, sizeof err);
    bus_client_destroy (&client);
    if (!reply) {
        fprintf (stderr, "nat_pipe_probe: nat.status: %s\n", err);
        return NULL;
    }
    nat_status_reply_t *status = (nat_status_reply_t *) zmalloc (sizeof (nat_status_reply_t));
    if (bus_envelope_get_msg (reply, &nat_status_reply_schema, status, err, sizeof err)) {
        fprintf (stderr, "nat_pipe_probe: nat.status.reply: %s\n", err);
        free (status);
        status = NULL;
    }
    bus_envelope_destroy (&reply);
    return status;
}

//  ---------------------------------------------------------------------------
//  reflect

typedef struct {
    bus_service_t *svc;
    bus_pipe_t *from_nat;
    bus_pipe_t *to_nat;
    bus_batch_t *batch;
} s_reflector_t;

static void
s_on_dial (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    s_reflector_t *self = (s_reflector_t *) arg;
    nat_dial_t dial;
    char err [160];
    if (bus_envelope_get_msg (env, &nat_dial_schema, &dial, err, sizeof err))
        return;
    printf ("dial %u %s %s %u\n", dial.index, dial.name, dial.endpoint, dial.attempt);
    fflush (stdout);
    //  What crypto does: an initiation for that peer, tagged with its index
    uint8_t init [148] = { 1 };
    bus_batch_add (self->batch, dial.index, init, sizeof init);
    bus_pipe_send (self->to_nat, self->batch);
}

static int
s_reflect_ready (bus_pipe_t *pipe, void *arg)
{
    s_reflector_t *self = (s_reflector_t *) arg;
    for (int round = 0; round < 16; round++) {
        bus_batch_iter_t iter;
        int rc = bus_pipe_recv (self->from_nat, &iter, 0);
        if (rc == 0)
            break;
        if (rc < 0)
            continue;
        bus_packet_t pkt;
        while (bus_batch_iter_next (&iter, &pkt)) {
            //  Two records per packet: a full batch goes out first
            if (bus_batch_count (self->batch) + 2 > BUS_BATCH_MAX)
                bus_pipe_send (self->to_nat, self->batch);
            uint32_t handle = pkt.tag;
            bus_batch_add (self->batch, 0, &handle, sizeof handle);
            bus_batch_set_flags (self->batch, PIPE_FLAG_ENDPOINT);
            bus_batch_add (self->batch, 0, pkt.data, pkt.len);
        }
    }
    bus_pipe_send (self->to_nat, self->batch);
    return 0;
}

static int
s_reflect (void)
{
    zsys_init ();
    s_reflector_t self;
    memset (&self, 0, sizeof self);
    self.svc = bus_service_new ("crypto", NULL, s_run_dir);
    self.from_nat = bus_pipe_new (s_run_dir, PIPE_NAT_CRYPTO, BUS_PIPE_RECEIVER, 0);
    self.to_nat = bus_pipe_new (s_run_dir, PIPE_CRYPTO_NAT, BUS_PIPE_SENDER, 0);
    self.batch = bus_batch_new (0);
    if (!self.svc || !self.from_nat || !self.to_nat)
        return s_fail ("cannot open the bus or the pipes");
    bus_service_set_heartbeat (self.svc, 200);
    bus_service_handle (self.svc, "nat.dial", s_on_dial, &self);
    bus_pipe_attach (self.from_nat, bus_service_loop (self.svc), s_reflect_ready, &self);
    printf ("ready\n");
    fflush (stdout);
    bus_service_run (self.svc);
    bus_pipe_destroy (&self.from_nat);
    bus_pipe_destroy (&self.to_nat);
    bus_batch_destroy (&self.batch);
    bus_service_destroy (&self.svc);
    return 0;
}

//  ---------------------------------------------------------------------------
//  recv, ping, malformed, status

static int
s_recv (const char *port_file, int seconds)
{
    nat_udp_t *udp = s_udp (false);
    if (!udp)
        return 1;
    char tmp [512];
    snprintf (tmp, sizeof tmp, "%s.tmp", port_file);
    FILE *f = fopen (tmp, "w");
    if (!f)
        return s_fail ("cannot write the port file");
    fprintf (f, "%u\n", nat_udp_port (udp));
    fclose (f);
    rename (tmp, port_file);
    int64_t deadline = zclock_mono () + seconds * 1000;
    int rc = 1;
    while (rc && zclock_mono () < deadline) {
        nat_udp_rx_t *rx;
        size_t n = s_udp_wait (udp, &rx, 100);
        for (size_t i = 0; i < n; i++)
            if (rx [i].size == 148 && rx [i].data [0] == 1)
                rc = 0;
    }
    nat_udp_destroy (&udp);
    return rc ? s_fail ("no initiation arrived") : 0;
}

static int
s_ping (uint16_t port)
{
    nat_udp_t *udp = s_udp (false);
    if (!udp)
        return 1;
    nat_addr_t nat;
    nat_addr_set_ip (&nat, "127.0.0.1", port);
    uint8_t packet [200];
    s_data_packet (packet, sizeof packet, (uint32_t) getpid ());
    nat_udp_tx_t tx = { packet, sizeof packet, &nat };
    int64_t t0 = zclock_mono (), deadline = t0 + 5000;
    int rc = 1, sent = 0;
    while (rc && zclock_mono () < deadline) {
        nat_udp_send (udp, &tx, 1);
        sent++;
        nat_udp_rx_t *rx;
        size_t n = s_udp_wait (udp, &rx, 100);
        for (size_t i = 0; i < n; i++)
            if (rx [i].size == sizeof packet && memcmp (rx [i].data, packet, sizeof packet) == 0
            &&  nat_addr_eq (rx [i].from, &nat))
                rc = 0;
    }
    if (rc == 0)
        printf ("echo after %" PRId64 " ms (%d sent)\n", zclock_mono () - t0, sent);
    nat_udp_destroy (&udp);
    return rc ? s_fail ("no echo within 5 s") : 0;
}

static int
s_malformed (uint16_t port)
{
    nat_status_reply_t *before = s_status ();
    if (!before)
        return 1;
    nat_udp_t *udp = s_udp (false);
    if (!udp)
        return 1;
    nat_addr_t nat;
    nat_addr_set_ip (&nat, "127.0.0.1", port);
    uint8_t junk [64];
    s_data_packet (junk, sizeof junk, 1);
    uint8_t bad_type [64];
    s_data_packet (bad_type, sizeof bad_type, 1);
    bad_type [0] = 9;
    uint8_t bad_reserved [64];
    s_data_packet (bad_reserved, sizeof bad_reserved, 1);
    bad_reserved [2] = 1;
    nat_udp_tx_t tx [3] = {
        { junk, 31, &nat },                     //  one byte short of an empty data packet
        { bad_type, sizeof bad_type, &nat },
        { bad_reserved, sizeof bad_reserved, &nat },
    };
    nat_udp_send (udp, tx, 3);
    nat_udp_destroy (&udp);
    int rc = 1;
    for (int attempt = 0; rc && attempt < 100; attempt++) {
        nat_status_reply_t *after = s_status ();
        if (!after)
            break;
        if (after->drop_too_short == before->drop_too_short + 1
        &&  after->drop_bad_type == before->drop_bad_type + 1
        &&  after->drop_bad_reserved == before->drop_bad_reserved + 1
        &&  after->to_crypto == before->to_crypto)
            rc = 0;
        free (after);
        if (rc)
            zclock_sleep (20);
    }
    free (before);
    return rc ? s_fail ("the malformed datagrams were not counted as drops") : 0;
}

static int
s_print_status (void)
{
    nat_status_reply_t *s = s_status ();
    if (!s)
        return 1;
    printf ("listen_port=%u\nrx_datagrams=%" PRIu64 "\ntx_datagrams=%" PRIu64 "\nto_crypto=%" PRIu64
            "\nfrom_crypto=%" PRIu64 "\ndrop_too_short=%" PRIu64 "\ndrop_bad_type=%" PRIu64
            "\ndrop_bad_reserved=%" PRIu64 "\ndrop_pipe=%" PRIu64 "\ndrop_no_endpoint=%" PRIu64
            "\ndrop_bad_peer=%" PRIu64 "\ndrop_stale_handle=%" PRIu64 "\ndrop_send=%" PRIu64
            "\nhandles_in_use=%u\npauses=%" PRIu64 "\n",
            s->listen_port, s->rx_datagrams, s->tx_datagrams, s->to_crypto, s->from_crypto,
            s->drop_too_short, s->drop_bad_type, s->drop_bad_reserved, s->drop_pipe,
            s->drop_no_endpoint, s->drop_bad_peer, s->drop_stale_handle, s->drop_send,
            s->handles_in_use, s->pauses);
    for (uint32_t i = 0; i < s->peers_count; i++) {
        nat_status_peer_t *p = &s->peers [i];
        printf ("peer.%u=%s state=%s endpoint=%s direct=%d rx_packets=%" PRIu64 " tx_packets=%" PRIu64
                " last_rx_ms_ago=%" PRId64 " attempts=%u\n",
                p->index, p->name, p->state, *p->endpoint ? p->endpoint : "-", p->direct,
                p->rx_packets, p->tx_packets, p->last_rx_ms_ago, p->attempts);
    }
    free (s);
    return 0;
}

//  ---------------------------------------------------------------------------
//  bench

typedef struct {
    uint16_t port;
    size_t size;
    atomic_bool stop;
    uint64_t sent;
} s_flood_t;

static void *
s_flood (void *arg)
{
    s_flood_t *flood = (s_flood_t *) arg;
    nat_udp_t *udp = s_udp (true);
    if (!udp)
        return NULL;
    nat_addr_t nat;
    nat_addr_set_ip (&nat, "127.0.0.1", flood->port);
    uint8_t *buf = (uint8_t *) malloc (NAT_UDP_BATCH * flood->size);
    nat_udp_tx_t tx [NAT_UDP_BATCH];
    for (size_t i = 0; i < NAT_UDP_BATCH; i++) {
        s_data_packet (buf + i * flood->size, flood->size, (uint32_t) i);
        tx [i] = (nat_udp_tx_t) { buf + i * flood->size, flood->size, &nat };
    }
    while (!atomic_load (&flood->stop))
        flood->sent += nat_udp_send (udp, tx, NAT_UDP_BATCH);
    free (buf);
    nat_udp_destroy (&udp);
    return NULL;
}

static int
s_bench (uint16_t port, int seconds, size_t size)
{
    bus_pipe_t *pipe = bus_pipe_new (s_run_dir, PIPE_NAT_CRYPTO, BUS_PIPE_RECEIVER, 0);
    if (!pipe)
        return s_fail ("cannot bind the pipe");
    //  Wait until nat's sender has linked to us again: ping-shaped datagrams until one arrives
    nat_udp_t *udp = s_udp (false);
    nat_addr_t nat;
    nat_addr_set_ip (&nat, "127.0.0.1", port);
    uint8_t probe [64];
    s_data_packet (probe, sizeof probe, 0);
    nat_udp_tx_t tx = { probe, sizeof probe, &nat };
    bus_batch_iter_t iter;
    int rc = 0;
    for (int attempt = 0; attempt < 50 && rc != 1; attempt++) {
        nat_udp_send (udp, &tx, 1);
        rc = bus_pipe_recv (pipe, &iter, 100);
    }
    nat_udp_destroy (&udp);
    if (rc != 1) {
        bus_pipe_destroy (&pipe);
        return s_fail ("nat-crypto did not connect");
    }
    s_flood_t flood = { .port = port, .size = size };
    pthread_t thread;
    pthread_create (&thread, NULL, s_flood, &flood);
    //  Half a second of warm-up, then count
    int64_t start = zclock_mono () + 500, end = start + seconds * 1000;
    uint64_t packets = 0, batches = 0, bytes = 0;
    while (zclock_mono () < end) {
        if (bus_pipe_recv (pipe, &iter, 100) == 1 && zclock_mono () >= start) {
            packets += iter.count;
            bytes += bus_batch_iter_bytes (&iter);
            batches++;
        }
    }
    atomic_store (&flood.stop, true);
    pthread_join (thread, NULL);
    double secs = (double) (zclock_mono () - start) / 1000.0;
    printf ("size=%zu offered=%.0f dgram/s received=%.0f dgram/s (%.2f Gbit/s) %.1f per batch\n",
            size, (double) flood.sent / (secs + 0.5), (double) packets / secs,
            (double) bytes * 8 / secs / 1e9, batches ? (double) packets / (double) batches : 0);
    bus_pipe_destroy (&pipe);
    return packets ? 0 : s_fail ("nothing received");
}

int
main (int argc, char **argv)
{
    int arg = 1;
    if (arg + 1 < argc && streq (argv [arg], "-r")) {
        s_run_dir = argv [arg + 1];
        arg += 2;
    }
    if (arg >= argc)
        return s_fail ("usage: nat_pipe_probe [-r RUN_DIR] freeport|reflect|recv|ping|malformed|status|bench ...");
    bus_log_init ("nat_pipe_probe");
    bus_log_set_level (BUS_LOG_WARN);
    const char *command = argv [arg++];
    int rest = argc - arg;
    if (streq (command, "freeport")) {
        nat_udp_t *udp = s_udp (false);
        if (!udp)
            return 1;
        printf ("%u\n", nat_udp_port (udp));
        nat_udp_destroy (&udp);
        return 0;
    }
    if (streq (command, "reflect"))
        return s_reflect ();
    if (streq (command, "recv") && rest == 2)
        return s_recv (argv [arg], atoi (argv [arg + 1]));
    if (streq (command, "ping") && rest == 1)
        return s_ping ((uint16_t) atoi (argv [arg]));
    if (streq (command, "malformed") && rest == 1)
        return s_malformed ((uint16_t) atoi (argv [arg]));
    if (streq (command, "status"))
        return s_print_status ();
    if (streq (command, "bench") && rest == 3 && atoi (argv [arg + 2]) >= 32 && atoi (argv [arg + 2]) <= 2000)
        return s_bench ((uint16_t) atoi (argv [arg]), atoi (argv [arg + 1]), (size_t) atoi (argv [arg + 2]));
    return s_fail ("unknown command or wrong arguments");
}
