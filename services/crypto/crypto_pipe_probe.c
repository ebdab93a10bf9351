/*  crypto_pipe_probe: plays device and nat for two real bifrost-crypto processes
    (A and B, each with its own run directory), and the network between them, for
    tests/integration/crypto_service.sh. It binds crypto-dev and crypto-nat of both
    nodes, connects to their dev-crypto and nat-crypto, and carries every datagram
    A's crypto hands to "nat" into B's nat-crypto and back, tagged with the handle
    the other side's nat would give the sender's address.

        crypto_pipe_probe key RUN_DIR [PEER]        public key (crypto.key)
        crypto_pipe_probe status RUN_DIR            crypto.status.reply as JSON
        crypto_pipe_probe counter RUN_DIR NAME      one counter of crypto.status
        crypto_pipe_probe traffic RUN_A RUN_B N     first packet + N each way + flood
        crypto_pipe_probe attack RUN_A RUN_B        tampered, replayed, spoofed, roaming
        crypto_pipe_probe bench RUN_A RUN_B SECONDS packets/s through A (1400 B, x64)
        crypto_pipe_probe wire RUN_A RUN_B          A sends on a lent UDP socket (ROUTE)

    Node A's config lists C (never up) then B, so B is peer 1 at A; B lists A as
    peer 0. Addresses: A 10.100.0.1, B 10.100.0.2. Exit 0 when every check held;
    each check prints one line "check: ok|FAIL what". */
#include "bus_client.h"
#include "bus_endpoint.h"
#include "bus_pipe.h"
#include "schemas/pipes.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#define B_AT_A      1           //  peer index of B in A's config
#define A_AT_B      0           //  peer index of A in B's config
#define HANDLE_A    0x1001      //  B's nat handle for A's address
#define HANDLE_A2   0x1003      //  ... after A "roamed"
#define HANDLE_B    0x2002      //  A's nat handle for B's address
#define HANDLE_A3   0x1004      //  ... and again
#define HANDLE_FORGED 0x3003    //  a stranger's address

typedef struct {
    const char *run_dir;
    bus_pipe_t *dev_in, *nat_in;        //  crypto-dev, crypto-nat: we listen
    bus_pipe_t *dev_out, *nat_out;      //  dev-crypto, nat-crypto: we connect
    bus_batch_t *to_dev, *to_nat;
    uint32_t peer_handle;               //  handle the other node's datagrams get here
    //  Seen on crypto-nat
    uint32_t last_endpoint;             //  payload of the last ENDPOINT record
    uint32_t endpoints;
    bool forged_seen;                   //  an ENDPOINT record for HANDLE_FORGED
    uint64_t datagrams;
    bool response_after_endpoint;       //  every response came right after an ENDPOINT
    uint32_t responses;
    uint32_t initiations;
    uint64_t sent_reported;             //  datagrams in SENT records (crypto sent itself)
} s_node_t;

static int s_failed = 0;
static bool s_shuttle = true;           //  carry datagrams to the other node
static uint8_t s_held [2048];           //  a captured datagram (attack mode)
static size_t s_held_len = 0;
static bool s_capture = false;
//  Delivered plaintext, per receiving node
static uint32_t s_rx_count [2];
static uint32_t s_rx_next [2];          //  next expected sequence number
static uint32_t s_rx_bad [2];
static uint64_t s_bench_out;            //  datagrams out of A (bench)

static void
s_check (bool ok, const char *what)
{
    printf ("check: %s %s\n", ok ? "ok" : "FAIL", what);
    fflush (stdout);
    if (!ok)
        s_failed++;
}

static int64_t
s_ms (void)
{
    return zclock_mono ();
}

//  An IPv4 packet from 10.100.0.src to 10.100.0.dst carrying seq
static void
s_ip (uint8_t *p, size_t len, uint8_t src, uint8_t dst, uint32_t seq)
{
    memset (p, 0, 24);
    p [0] = 0x45;
    p [2] = (uint8_t) (len >> 8);
    p [3] = (uint8_t) len;
    p [8] = 64;
    p [9] = 17;
    p [12] = 10; p [13] = 100; p [14] = 0; p [15] = src;
    p [16] = 10; p [17] = 100; p [18] = 0; p [19] = dst;
    memcpy (p + 20, &seq, 4);
    for (size_t i = 24; i < len; i++)
        p [i] = (uint8_t) (seq * 7 + i);
}

static size_t
s_len_of (uint32_t seq)
{
    return 28 + (seq * 97) % 1373;      //  28 .. 1400
}

//  Waits until one of the probe's receivers has work, up to timeout_ms.
static void
s_wait (bus_pipe_t **pipes, int count, int timeout_ms)
{
    struct pollfd fds [4];
    assert (count <= 4);
    for (int i = 0; i < count; i++)
        fds [i] = (struct pollfd) { bus_pipe_fd (pipes [i]), POLLIN, 0 };
    poll (fds, (nfds_t) count, timeout_ms);
}

static bool
s_wait_writable (bus_pipe_t *pipe, int timeout_ms)
{
    int64_t deadline = s_ms () + timeout_ms;
    while (s_ms () < deadline) {
        if (bus_pipe_writable (pipe))
            return true;
        zclock_sleep (5);
    }
    return false;
}

static void
s_node_open (s_node_t *node, const char *run_dir, uint32_t peer_handle)
{
    memset (node, 0, sizeof *node);
    node->run_dir = run_dir;
    node->peer_handle = peer_handle;
    node->response_after_endpoint = true;
    //  crypto links its senders to these on its first send
    node->dev_in = bus_pipe_new (run_dir, PIPE_CRYPTO_DEV, BUS_PIPE_RECEIVER, 0);
    node->nat_in = bus_pipe_new (run_dir, PIPE_CRYPTO_NAT, BUS_PIPE_RECEIVER, 0);
    node->dev_out = bus_pipe_new (run_dir, PIPE_DEV_CRYPTO, BUS_PIPE_SENDER, 0);
    node->nat_out = bus_pipe_new (run_dir, PIPE_NAT_CRYPTO, BUS_PIPE_SENDER, 0);
    assert (node->dev_in && node->nat_in && node->dev_out && node->nat_out);
    node->to_dev = bus_batch_new (0);
    node->to_nat = bus_batch_new (0);
    if (!s_wait_writable (node->dev_out, 5000) || !s_wait_writable (node->nat_out, 5000)) {
        fprintf (stderr, "bifrost-crypto in %s did not connect to the probe within 5 s\n", run_dir);
        exit (2);
    }
}

static void
s_node_close (s_node_t *node)
{
    bus_pipe_destroy (&node->dev_in);
    bus_pipe_destroy (&node->nat_in);
    bus_pipe_destroy (&node->dev_out);
    bus_pipe_destroy (&node->nat_out);
    bus_batch_destroy (&node->to_dev);
    bus_batch_destroy (&node->to_nat);
}

//  Sends a batch, retrying while the queue is momentarily full (a test must not
//  lose its own packets before they reach crypto)
static void
s_send (bus_pipe_t *pipe, bus_batch_t *batch)
{
    int64_t deadline = s_ms () + 2000;
    while (bus_batch_count (batch)) {
        //  bus_pipe_send empties the batch even on a drop: keep a copy
        size_t size = bus_batch_size (batch);
        uint8_t *copy = malloc (size);
        assert (copy);
        memcpy (copy, bus_batch_data (batch), size);
        if (bus_pipe_send (pipe, batch) == 0) {
            free (copy);
            return;
        }
        if (s_ms () > deadline) {
            fprintf (stderr, "probe: pipe %s stays full\n", bus_pipe_name (pipe));
            free (copy);
            return;
        }
        zclock_sleep (1);
        //  Rebuild from the copy
        bus_batch_iter_t iter;
        assert (bus_batch_iter_init (&iter, copy, size, NULL, 0) == 0);
        bus_packet_t pkt;
        while (bus_batch_iter_next (&iter, &pkt)) {
            assert (bus_batch_add (batch, pkt.tag, pkt.data, pkt.len) == 0);
            if (pkt.flags & 0xFF00)
                bus_batch_set_flags (batch, pkt.flags & 0xFF00);
        }
        free (copy);
    }
}

//  One wire datagram into node's nat-crypto, written over the record's room
//  the way nat does (reserve len - 32, write from 16 bytes before)
static void
s_wire_in (s_node_t *node, uint32_t handle, const uint8_t *data, size_t len)
{
    assert (len >= 32);
    uint8_t *dst = bus_batch_reserve (node->to_nat, handle, len - 32);
    if (!dst) {
        s_send (node->nat_out, node->to_nat);
        dst = bus_batch_reserve (node->to_nat, handle, len - 32);
    }
    assert (dst);
    memcpy (dst - 16, data, len);
}

//  Everything waiting on one node's crypto-nat: ENDPOINT records are checked,
//  datagrams carried to the other node (as its nat would)
static void
s_drain_nat (s_node_t *node, s_node_t *other, int idx)
{
    bus_batch_iter_t iter;
    int rc;
    while ((rc = bus_pipe_recv (node->nat_in, &iter, 0)) != 0) {
        if (rc < 0) {
            s_check (false, "crypto-nat batch is valid");
            fprintf (stderr, "bad batch: %s\n", bus_pipe_error (node->nat_in));
            continue;
        }
        bus_packet_t pkt;
        bool prev_endpoint = false;
        while (bus_batch_iter_next (&iter, &pkt)) {
            if (pkt.flags & PIPE_FLAG_SENT) {
                uint64_t sent [2];
                assert (pkt.len == sizeof sent);
                memcpy (sent, pkt.data, sizeof sent);
                node->sent_reported += sent [0];
                continue;
            }
            if (pkt.flags & PIPE_FLAG_ENDPOINT) {
                assert (pkt.len == 4);
                memcpy (&node->last_endpoint, pkt.data, 4);
                node->endpoints++;
                node->forged_seen |= node->last_endpoint == HANDLE_FORGED;
                prev_endpoint = true;
                continue;
            }
            node->datagrams++;
            if (pkt.len >= 1 && pkt.data [0] == 1)
                node->initiations++;
            if (pkt.len >= 1 && pkt.data [0] == 2) {
                node->responses++;
                if (!prev_endpoint)
                    node->response_after_endpoint = false;
            }
            prev_endpoint = false;
            if (idx == 0)
                s_bench_out++;
            if (s_capture && idx == 0 && pkt.data [0] == 4 && pkt.len > 32 && !s_held_len) {
                memcpy (s_held, pkt.data, pkt.len);
                s_held_len = pkt.len;
                continue;               //  held back: the network "delays" it
            }
            if (s_shuttle && other)
                s_wire_in (other, other->peer_handle, pkt.data, pkt.len);
        }
        if (other)
            s_send (other->nat_out, other->to_nat);
    }
}

//  Plaintext delivered by node idx's crypto: must be intact, in order, from the
//  other node (tag = its peer index here)
static void
s_drain_dev (s_node_t *node, int idx)
{
    bus_batch_iter_t iter;
    int rc;
    while ((rc = bus_pipe_recv (node->dev_in, &iter, 0)) != 0) {
        if (rc == 1) {
            bus_packet_t pkt;
            uint32_t from_tag = idx == 1 ? A_AT_B : B_AT_A;
            uint8_t src = idx == 1 ? 1 : 2, dst = idx == 1 ? 2 : 1;
            while (bus_batch_iter_next (&iter, &pkt)) {
                uint32_t seq = 0;
                if (pkt.len >= 24)
                    memcpy (&seq, pkt.data + 20, 4);
                uint8_t expect [1500];
                bool ok = pkt.tag == from_tag && !(pkt.flags & BUS_BATCH_GROWN)
                       && pkt.len == s_len_of (seq) && seq == s_rx_next [idx];
                if (ok) {
                    s_ip (expect, pkt.len, src, dst, seq);
                    ok = memcmp (expect, pkt.data, pkt.len) == 0;
                }
                if (!ok) {
                    s_rx_bad [idx]++;
                    if (s_rx_bad [idx] < 5)
                        fprintf (stderr, "node %c: unexpected packet tag %u len %zu seq %u (expected %u)\n",
                                 'A' + idx, pkt.tag, pkt.len, seq, s_rx_next [idx]);
                }
                s_rx_next [idx] = seq + 1;
                s_rx_count [idx]++;
            }
        }
    }
}

static s_node_t s_a, s_b;

//  Runs the network until cond holds or timeout_ms passes
static bool
s_pump (bool (*cond) (void), int timeout_ms)
{
    int64_t deadline = s_ms () + timeout_ms;
    bus_pipe_t *pipes [] = { s_a.nat_in, s_b.nat_in, s_a.dev_in, s_b.dev_in };
    bool ok = false;
    while (!(ok = cond ()) && s_ms () < deadline) {
        s_wait (pipes, 4, 10);
        s_drain_nat (&s_a, &s_b, 0);
        s_drain_nat (&s_b, &s_a, 1);
        s_drain_dev (&s_a, 0);
        s_drain_dev (&s_b, 1);
    }
    return ok;
}

//  Injects count packets from node idx (A=0) to the other, seq first..
static void
s_inject (int idx, uint32_t first, uint32_t count, uint32_t tag, uint8_t src)
{
    s_node_t *node = idx == 0 ? &s_a : &s_b;
    uint8_t dst = idx == 0 ? 2 : 1;
    for (uint32_t seq = first; seq < first + count; seq++) {
        size_t len = s_len_of (seq);
        uint8_t *p = bus_batch_reserve (node->to_dev, tag, len);
        if (!p) {
            s_send (node->dev_out, node->to_dev);
            p = bus_batch_reserve (node->to_dev, tag, len);
        }
        assert (p);
        s_ip (p, len, src, dst, seq);
    }
    s_send (node->dev_out, node->to_dev);
}

static uint32_t s_want [2];
static bool s_got_wanted (void) { return s_rx_count [0] >= s_want [0] && s_rx_count [1] >= s_want [1]; }

//  --------------------------------------------------------------------------
//  Bus client

static bus_envelope_t *
s_request (const char *run_dir, const bus_schema_t *schema, const void *msg)
{
    char endpoint [BUS_PATH_MAX + 16], err [300];
    bus_endpoint (endpoint, sizeof endpoint, run_dir, "bus");
    bus_client_t *client = bus_client_new (endpoint, NULL, err, sizeof err);
    if (!client) {
        fprintf (stderr, "%s\n", err);
        exit (2);
    }
    bus_envelope_t *reply = NULL;
    //  The service may be (re)registering with the broker: retry for a while
    for (int attempt = 0; attempt < 20 && !reply; attempt++) {
        reply = bus_client_request (client, "crypto", schema, msg, 500, err, sizeof err);
        if (!reply && attempt < 19)
            zclock_sleep (100);
    }
    bus_client_destroy (&client);
    if (!reply) {
        fprintf (stderr, "crypto in %s: %s\n", run_dir, err);
        exit (2);
    }
    return reply;
}

static int
s_cmd_key (const char *run_dir, const char *peer)
{
    crypto_key_t req;
    memset (&req, 0, sizeof req);
    snprintf (req.peer, sizeof req.peer, "%s", peer ? peer : "");
    bus_envelope_t *reply = s_request (run_dir, &crypto_key_schema, &req);
    crypto_key_reply_t key;
    char err [200];
    int rc = bus_envelope_get_msg (reply, &crypto_key_reply_schema, &key, err, sizeof err);
    if (rc == 0)
        printf ("%s\n", key.public_key);
    else
        fprintf (stderr, "%s: %s\n", bus_envelope_type (reply), err);
    bus_envelope_destroy (&reply);
    return rc ? 1 : 0;
}

static crypto_status_reply_t *
s_status (const char *run_dir)
{
    crypto_status_t req;
    memset (&req, 0, sizeof req);
    bus_envelope_t *reply = s_request (run_dir, &crypto_status_schema, &req);
    crypto_status_reply_t *status = calloc (1, sizeof *status);
    assert (status);
    char err [200];
    if (bus_envelope_get_msg (reply, &crypto_status_reply_schema, status, err, sizeof err)) {
        fprintf (stderr, "%s: %s\n", bus_envelope_type (reply), err);
        exit (2);
    }
    bus_envelope_destroy (&reply);
    return status;
}

static uint64_t
s_counter (crypto_status_reply_t *status, const char *name)
{
    for (uint32_t i = 0; i < status->counters_count; i++)
        if (streq (status->counters [i].name, name))
            return status->counters [i].value;
    fprintf (stderr, "no counter %s\n", name);
    exit (2);
}

static int
s_cmd_status (const char *run_dir)
{
    crypto_status_t req;
    memset (&req, 0, sizeof req);
    bus_envelope_t *reply = s_request (run_dir, &crypto_status_schema, &req);
    json_t *json = bus_envelope_to_json (reply);
    char *text = json_dumps (json_object_get (json, "body"), JSON_COMPACT | JSON_SORT_KEYS);
    printf ("%s\n", text);
    free (text);
    json_decref (json);
    bus_envelope_destroy (&reply);
    return 0;
}

//  --------------------------------------------------------------------------

static int
s_cmd_traffic (uint32_t count)
{
    //  The first packet, before any session: queued while the handshake runs
    int64_t t0 = s_ms ();
    s_inject (0, 0, 1, B_AT_A, 1);
    s_want [0] = 0; s_want [1] = 1;
    s_check (s_pump (s_got_wanted, 5000) && s_rx_bad [1] == 0,
             "the first packet A -> B arrives intact at B after the handshake (queued, not lost)");
    printf ("first packet A -> B after %" PRId64 " ms (handshake included)\n", s_ms () - t0);
    s_check (s_b.responses >= 1 && s_b.response_after_endpoint,
             "B's handshake response is preceded by an ENDPOINT record");
    s_check (s_b.endpoints >= 1 && s_b.last_endpoint == HANDLE_A && s_a.endpoints >= 1
             && s_a.last_endpoint == HANDLE_B,
             "both nodes tell nat the authenticated handle of the other (ENDPOINT)");

    //  count packets each way in batches of 64, the network shuttling meanwhile
    t0 = s_ms ();
    uint32_t sent = 0;
    while (sent < count) {
        uint32_t n = count - sent < 64 ? count - sent : 64;
        s_inject (0, 1 + sent, n, B_AT_A, 1);
        s_inject (1, sent, n, A_AT_B, 2);
        sent += n;
        s_want [0] = sent; s_want [1] = 1 + sent;
        s_pump (s_got_wanted, 50);
    }
    s_want [0] = count; s_want [1] = 1 + count;
    bool ok = s_pump (s_got_wanted, 5000);
    printf ("%u packets each way in %" PRId64 " ms; A got %u (%u bad), B got %u (%u bad)\n", count,
            s_ms () - t0, s_rx_count [0], s_rx_bad [0], s_rx_count [1], s_rx_bad [1]);
    s_check (ok && s_rx_count [1] == 1 + count && s_rx_bad [1] == 0,
             "every packet A -> B arrives intact and in order at B's crypto-dev");
    s_check (ok && s_rx_count [0] == count && s_rx_bad [0] == 0,
             "every packet B -> A arrives intact and in order at A's crypto-dev");

    //  A flood record: one copy per peer with a session (B), none for C
    uint64_t before = s_a.datagrams;
    s_inject (0, 1 + count, 1, 0xFFFFFFFFu, 1);
    s_want [1] = 2 + count;
    ok = s_pump (s_got_wanted, 3000) && s_rx_bad [1] == 0;
    s_check (ok && s_a.datagrams - before == 1, "a flood record goes out once, to the one peer with a session");
    return 0;
}

static bool s_have_held (void) { return s_held_len > 0; }
static uint32_t s_dial_before, s_resp_before;
static bool s_never (void) { return false; }
static bool s_dialled (void) { return s_a.initiations > s_dial_before && s_b.responses > s_resp_before; }
static uint32_t s_endpoint_wanted;
static bool s_got_endpoint (void) { return s_got_wanted () && s_b.last_endpoint == s_endpoint_wanted; }

static int
s_cmd_attack (void)
{
    //  Sessions are up (traffic ran): hold back one datagram A -> B, unseen by B
    s_capture = true;
    s_inject (0, 0, 1, B_AT_A, 1);
    s_check (s_pump (s_have_held, 3000), "the probe holds back one datagram A -> B");
    s_capture = false;
    crypto_status_reply_t *st = s_status (s_b.run_dir);
    uint64_t tampered = s_counter (st, "tampered"), replay = s_counter (st, "replay");
    uint64_t spoofed = s_counter (st, "spoofed");
    free (st);

    //  Tampered: one bit of the ciphertext flipped, and one of the tag (a new
    //  counter, so it gets past the replay window to the AEAD check)
    uint8_t bad [2048];
    memcpy (bad, s_held, s_held_len);
    bad [40] ^= 0x04;
    s_wire_in (&s_b, HANDLE_A, bad, s_held_len);
    memcpy (bad, s_held, s_held_len);
    bad [s_held_len - 1] ^= 0x80;
    s_wire_in (&s_b, HANDLE_A, bad, s_held_len);
    //  The genuine one is still accepted after them; then replayed
    s_wire_in (&s_b, HANDLE_A, s_held, s_held_len);
    s_wire_in (&s_b, HANDLE_A, s_held, s_held_len);
    s_send (s_b.nat_out, s_b.to_nat);
    //  Spoofed: A's crypto encrypts a packet whose inner source is not A's
    s_inject (0, 1000, 1, B_AT_A, 77);
    //  Then a good one, to know everything before it was processed
    s_inject (0, 1, 1, B_AT_A, 1);
    s_want [0] = 0; s_want [1] = 2;
    bool ok = s_pump (s_got_wanted, 3000);
    s_check (ok && s_rx_count [1] == 2 && s_rx_bad [1] == 0,
             "B delivers the genuine datagram once and nothing tampered, replayed or spoofed");
    st = s_status (s_b.run_dir);
    uint64_t d_tampered = s_counter (st, "tampered") - tampered;
    uint64_t d_replay = s_counter (st, "replay") - replay;
    uint64_t d_spoofed = s_counter (st, "spoofed") - spoofed;
    free (st);
    printf ("B counted: tampered +%" PRIu64 ", replay +%" PRIu64 ", spoofed +%" PRIu64 "\n",
            d_tampered, d_replay, d_spoofed);
    s_check (d_tampered == 2, "B counts the 2 tampered datagrams as tampered in crypto.status");
    s_check (d_replay == 1, "B counts the replayed datagram as replay in crypto.status");
    s_check (d_spoofed == 1, "B counts the spoofed inner source as spoofed in crypto.status");

    //  Roaming: A's datagrams now come from another address (handle)
    s_b.peer_handle = HANDLE_A2;
    s_b.last_endpoint = 0;
    s_inject (0, 2, 1, B_AT_A, 1);
    s_want [1] = 3;
    s_endpoint_wanted = HANDLE_A2;
    ok = s_pump (s_got_endpoint, 3000);
    s_check (ok, "A roams to a new handle: B sends an ENDPOINT record for it");
    //  ...but a forged datagram from a stranger's handle moves nothing: B's
    //  records keep their order, so once the next roam (HANDLE_A3) is seen, a
    //  record for the stranger would have been seen before it
    s_wire_in (&s_b, HANDLE_FORGED, bad, s_held_len);
    s_send (s_b.nat_out, s_b.to_nat);
    s_b.peer_handle = HANDLE_A3;
    s_inject (0, 3, 1, B_AT_A, 1);
    s_want [1] = 4;
    s_endpoint_wanted = HANDLE_A3;
    ok = s_pump (s_got_endpoint, 3000);
    s_check (ok && !s_b.forged_seen, "an unauthenticated datagram from a new handle moves nothing");

    //  nat asks for a handshake (nat.dial): A initiates at once, B answers, and
    //  the new keys carry traffic. Let whatever is in flight settle first, so an
    //  initiation of A's own (a retry on a loaded machine) is not mistaken for
    //  the answer, nor makes crypto skip the dial as "one is on its way"
    s_pump (s_never, 300);
    s_dial_before = s_a.initiations;
    s_resp_before = s_b.responses;
    nat_dial_t dial;
    memset (&dial, 0, sizeof dial);
    dial.index = B_AT_A;
    dial.attempt = 1;
    snprintf (dial.name, sizeof dial.name, "b");
    snprintf (dial.endpoint, sizeof dial.endpoint, "192.0.2.2:51820");
    char endpoint [BUS_PATH_MAX + 16], err [300];
    bus_endpoint (endpoint, sizeof endpoint, s_a.run_dir, "bus");
    bus_client_t *client = bus_client_new (endpoint, NULL, err, sizeof err);
    assert (client);
    bus_client_send (client, "crypto", &nat_dial_schema, &dial);
    bool dialled = s_pump (s_dialled, 3000);
    bus_client_destroy (&client);
    s_inject (0, 4, 1, B_AT_A, 1);
    s_want [1] = 5;
    bool got = s_pump (s_got_wanted, 3000);
    if (!dialled || !got || s_rx_bad [1])
        printf ("# nat.dial: dialled %d, delivered %d, bad at B %d\n", dialled, got, (int) s_rx_bad [1]);
    ok = dialled && got && s_rx_bad [1] == 0;
    s_check (ok, "nat.dial: A sends an initiation at once, B answers, traffic flows on the new keys");
    return 0;
}


static int
s_cmd_bench (int seconds)
{
    //  One bifrost-crypto (A): dev-crypto -> encrypt -> crypto-nat, 1400 B x 64
    s_shuttle = false;
    uint8_t packet [1400];
    s_ip (packet, sizeof packet, 1, 2, 1);
    int64_t t0 = s_ms (), end = t0 + seconds * 1000;
    uint64_t sent = 0, dropped = 0;
    s_bench_out = 0;
    bus_pipe_t *pipes [] = { s_a.nat_in };
    while (s_ms () < end) {
        if (bus_pipe_writable (s_a.dev_out)) {
            for (int i = 0; i < 64; i++)
                bus_batch_add (s_a.to_dev, B_AT_A, packet, sizeof packet);
            if (bus_pipe_send (s_a.dev_out, s_a.to_dev) == 0)
                sent += 64;
            else
                dropped += 64;
        }
        else
            s_wait (pipes, 1, 1);
        s_drain_nat (&s_a, NULL, 0);
        bus_batch_iter_t iter;
        while (bus_pipe_recv (s_a.dev_in, &iter, 0) != 0)
            ;
    }
    //  What is still in flight: until nothing more comes for 200 ms
    int64_t t_last = s_ms ();
    uint64_t seen = s_bench_out;
    while (s_bench_out < sent && s_ms () - t_last < 200) {
        s_wait (pipes, 1, 10);
        s_drain_nat (&s_a, NULL, 0);
        if (s_bench_out != seen) {
            seen = s_bench_out;
            t_last = s_ms ();
        }
    }
    double secs = (double) (t_last - t0) / 1000.0;
    crypto_status_reply_t *st = s_status (s_a.run_dir);
    printf ("bench: crypto counted pipe_full %" PRIu64 " (crypto-nat full: the probe reads slower than crypto "
            "encrypts), probe-side drops on dev-crypto %" PRIu64 "\n", s_counter (st, "pipe_full"), dropped);
    free (st);
    printf ("bench: %" PRIu64 " packets of 1400 B sent in batches of 64, %" PRIu64 " out of crypto in %.2f s: "
            "%.0f packets/s, %.2f Gbit/s plaintext\n", sent, s_bench_out, secs,
            (double) s_bench_out / secs, (double) s_bench_out * 1400 * 8 / secs / 1e9);
    s_check (s_bench_out > 0 && s_bench_out <= sent, "bench: encrypted packets came out of crypto-nat");
    return 0;
}

//  --------------------------------------------------------------------------
//  wire: the probe lends A's crypto a UDP socket the way nat does and routes B
//  to a socket of its own; A's data must then leave on the lent socket, valid
//  for B, and be reported in SENT records. Bad ROUTEs and a descriptor that is
//  not a UDP socket are refused; when the lending link ends, crypto lets go.

static int
s_udp_socket (uint16_t port)
{
    int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons (port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    if (fd < 0 || bind (fd, (struct sockaddr *) &sin, sizeof sin)) {
        if (fd >= 0)
            close (fd);
        return -1;
    }
    return fd;
}

static uint16_t
s_port (int fd)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    getsockname (fd, (struct sockaddr *) &sin, &len);
    return ntohs (sin.sin_port);
}

//  Receives the datagrams A's crypto sent on the lent socket to the "peer"
//  socket (from the lent socket's port) and hands them to B as B's nat would
static uint32_t
s_peer_collect (int peer, uint16_t from_port, uint32_t want, int timeout_ms)
{
    uint32_t got = 0;
    int64_t deadline = s_ms () + timeout_ms;
    uint8_t buf [2048];
    while (got < want && s_ms () < deadline) {
        struct pollfd pfd = { peer, POLLIN, 0 };
        if (poll (&pfd, 1, 20) != 1)
            continue;
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        ssize_t n = recvfrom (peer, buf, sizeof buf, 0, (struct sockaddr *) &from, &len);
        if (n < 32 || ntohs (from.sin_port) != from_port || buf [0] != 4)
            continue;
        s_wire_in (&s_b, s_b.peer_handle, buf, (size_t) n);
        got++;
    }
    s_send (s_b.nat_out, s_b.to_nat);
    return got;
}

static bool s_sent_reported_100 (void) { return s_a.sent_reported >= 100; }

static int
s_cmd_wire (void)
{
    //  A session first (through "nat", as before)
    s_inject (0, 0, 1, B_AT_A, 1);
    s_want [0] = 0; s_want [1] = 1;
    s_check (s_pump (s_got_wanted, 5000), "a session A <-> B, through nat");
    int lent = s_udp_socket (0);
    int peer = s_udp_socket (0);
    assert (lent >= 0 && peer >= 0);
    uint16_t lent_port = s_port (lent);
    //  The socket, a ROUTE to the peer socket, and three bad ROUTEs
    bus_pipe_share_fd (s_a.nat_out, lent);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (s_port (peer)),
                              .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    struct sockaddr_in6 v6 = { .sin6_family = AF_INET6, .sin6_port = htons (1) };
    assert (bus_batch_add (s_a.to_nat, B_AT_A, &to, sizeof to) == 0);
    bus_batch_set_flags (s_a.to_nat, PIPE_FLAG_ROUTE);
    assert (bus_batch_add (s_a.to_nat, 99, &to, sizeof to) == 0);         //  no such peer
    bus_batch_set_flags (s_a.to_nat, PIPE_FLAG_ROUTE);
    assert (bus_batch_add (s_a.to_nat, 0, &v6, sizeof v6) == 0);          //  not the socket's family
    bus_batch_set_flags (s_a.to_nat, PIPE_FLAG_ROUTE);
    assert (bus_batch_add (s_a.to_nat, 0, &to, 5) == 0);                  //  no sockaddr
    bus_batch_set_flags (s_a.to_nat, PIPE_FLAG_ROUTE);
    s_send (s_a.nat_out, s_a.to_nat);
    zclock_sleep (100);

    //  100 packets A -> B: on the lent socket, none through nat, valid for B
    uint64_t via_nat = s_a.datagrams;
    s_inject (0, 1, 100, B_AT_A, 1);
    uint32_t got = s_peer_collect (peer, lent_port, 100, 3000);
    s_want [1] = 101;
    bool ok = s_pump (s_got_wanted, 3000);
    printf ("wire: %u of 100 datagrams on the lent socket, %" PRIu64 " through nat\n",
            got, s_a.datagrams - via_nat);
    s_check (got == 100 && s_a.datagrams == via_nat,
             "A's data leaves on the lent socket, from its port, to the routed address");
    s_check (ok && s_rx_count [1] == 101 && s_rx_bad [1] == 0,
             "B decrypts all of them, intact and in order");
    //  SENT records: what crypto sent itself, within a tick or two
    s_pump (s_sent_reported_100, 2000);
    crypto_status_reply_t *st = s_status (s_a.run_dir);
    printf ("wire: sent_reported %" PRIu64 ", wire_sent %" PRIu64 ", routes %" PRIu64 ", bad_routes %" PRIu64 "\n",
            s_a.sent_reported, s_counter (st, "wire_sent"), s_counter (st, "routes"), s_counter (st, "bad_routes"));
    s_check (s_a.sent_reported == 100 && s_counter (st, "wire_sent") == 100,
             "crypto reports the 100 datagrams to nat (SENT) and counts them (wire_sent)");
    s_check (s_counter (st, "routes") == 1 && s_counter (st, "bad_routes") == 3
             && st->peers [B_AT_A].sends_direct && !st->peers [0].sends_direct,
             "one ROUTE taken; unknown peer, wrong family and short ROUTEs refused and counted");
    free (st);

    //  A descriptor that is not a UDP socket: refused, data goes through nat again
    int pipe_fds [2];
    assert (pipe2 (pipe_fds, O_CLOEXEC) == 0);
    bus_pipe_share_fd (s_a.nat_out, pipe_fds [0]);
    assert (bus_batch_add (s_a.to_nat, B_AT_A, &to, sizeof to) == 0);
    bus_batch_set_flags (s_a.to_nat, PIPE_FLAG_ROUTE);
    s_send (s_a.nat_out, s_a.to_nat);
    zclock_sleep (100);
    via_nat = s_a.datagrams;
    s_inject (0, 101, 10, B_AT_A, 1);
    s_want [1] = 111;
    ok = s_pump (s_got_wanted, 3000);
    got = s_peer_collect (peer, lent_port, 1, 200);
    s_check (ok && s_a.datagrams - via_nat == 10 && got == 0,
             "a descriptor that is not a UDP socket is refused: data through nat");

    //  Lend the socket again, then end the link: crypto closes its copy, so the
    //  port can be bound again once we closed ours
    bus_pipe_share_fd (s_a.nat_out, lent);
    assert (bus_batch_add (s_a.to_nat, B_AT_A, &to, sizeof to) == 0);
    bus_batch_set_flags (s_a.to_nat, PIPE_FLAG_ROUTE);
    s_send (s_a.nat_out, s_a.to_nat);
    zclock_sleep (100);
    s_inject (0, 111, 1, B_AT_A, 1);
    s_check (s_peer_collect (peer, lent_port, 1, 2000) == 1, "lent again: A sends on it again");
    bus_pipe_destroy (&s_a.nat_out);
    close (lent);
    int again = -1;
    for (int attempt = 0; attempt < 100 && again < 0; attempt++) {
        zclock_sleep (20);
        again = s_udp_socket (lent_port);
    }
    s_check (again >= 0, "nat's link ended: crypto let go of the socket, its port binds again");
    if (again >= 0)
        close (again);
    close (peer);
    close (pipe_fds [0]);
    close (pipe_fds [1]);
    s_a.nat_out = bus_pipe_new (s_a.run_dir, PIPE_NAT_CRYPTO, BUS_PIPE_SENDER, 0);
    return 0;
}

int
main (int argc, char **argv)
{
    zsys_init ();
    zsys_set_linger (0);
    if (argc >= 3 && streq (argv [1], "key"))
        return s_cmd_key (argv [2], argc > 3 ? argv [3] : NULL);
    if (argc == 3 && streq (argv [1], "status"))
        return s_cmd_status (argv [2]);
    if (argc == 4 && streq (argv [1], "counter")) {
        crypto_status_reply_t *st = s_status (argv [2]);
        printf ("%" PRIu64 "\n", s_counter (st, argv [3]));
        free (st);
        return 0;
    }
    if (argc >= 4 && (streq (argv [1], "traffic") || streq (argv [1], "attack") || streq (argv [1], "bench")
                  ||  streq (argv [1], "wire"))) {
        //  A's nat would call B's address HANDLE_B, B's nat A's HANDLE_A
        s_node_open (&s_a, argv [2], HANDLE_B);
        s_node_open (&s_b, argv [3], HANDLE_A);
        if (streq (argv [1], "traffic"))
            s_cmd_traffic (argc > 4 ? (uint32_t) atoi (argv [4]) : 1000);
        else
        if (streq (argv [1], "attack"))
            s_cmd_attack ();
        else
        if (streq (argv [1], "wire"))
            s_cmd_wire ();
        else
            s_cmd_bench (argc > 4 ? atoi (argv [4]) : 3);
        s_node_close (&s_a);
        s_node_close (&s_b);
        return s_failed ? 1 : 0;
    }
    fprintf (stderr, "usage: %s key|status|counter|traffic|attack|bench|wire ... (see the source)\n", argv [0]);
    return 2;
}
