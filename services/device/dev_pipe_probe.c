/*  dev_pipe_probe: plays the crypto service against a real bifrost-device in
    the integration test (tests/integration/device_service.sh), so the device
    is tested through its real pipes without any crypto:

      dev_pipe_probe -r RUN serve [--peer-key B64] [--seconds S]
          binds dev-crypto, connects crypto-dev; prints one line per packet
          ("tag=0 len=84 icmp-echo 10.100.0.1>10.100.0.2"), answers ICMP echo
          requests (IPv4, tun or tap) with echo replies and ARP requests (tap)
          with ARP replies from the MAC derived from --peer-key, tagged with
          peer 0 (the flood tag is outbound only).
      dev_pipe_probe -r RUN count [--seconds S]
          counts packets on dev-crypto until S seconds pass or 1 s after the
          last packet; prints "packets N seconds T rate R" (first to last).
      dev_pipe_probe blast DST_IP N [LEN]
          sends N UDP datagrams of LEN bytes to DST_IP:9 with sendmmsg (the
          load for `count`).
      dev_pipe_probe -r RUN status
          asks device.status over the broker; prints field=value lines. */
#include "bus_client.h"
#include "bus_endpoint.h"
#include "bus_pipe.h"
#include "schemas/pipes.h"
#include "dev_arp.h"
#include "dev_csum.h"
#include "dev_mac.h"
#include "dev_service.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <sys/socket.h>

static volatile sig_atomic_t s_stop;
static void s_on_signal (int sig) { s_stop = 1; }

//  Turns an IPv4 ICMP echo request at ip (len bytes) into its reply in place.
//  false if it is not one.
static bool
s_icmp_reply (uint8_t *ip, size_t len)
{
    if (len < 28 || (ip [0] >> 4) != 4 || ip [9] != 1)
        return false;
    size_t ihl = (size_t) (ip [0] & 15) * 4;
    size_t total = ((size_t) ip [2] << 8) | ip [3];
    if (ihl < 20 || total > len || total < ihl + 8 || ip [ihl] != 8)
        return false;
    uint8_t tmp [4];
    memcpy (tmp, ip + 12, 4);
    memcpy (ip + 12, ip + 16, 4);
    memcpy (ip + 16, tmp, 4);
    ip [8] = 64;
    ip [10] = ip [11] = 0;
    dev_csum_store (ip + 10, dev_csum_fold (dev_csum_add (0, ip, ihl)));
    uint8_t *icmp = ip + ihl;
    icmp [0] = 0;
    icmp [2] = icmp [3] = 0;
    dev_csum_store (icmp + 2, dev_csum_fold (dev_csum_add (0, icmp, total - ihl)));
    return true;
}

static const char *
s_ip4 (const uint8_t *a, char *buf)
{
    return inet_ntop (AF_INET, a, buf, INET_ADDRSTRLEN);
}

static int
s_serve (const char *run_dir, const uint8_t peer_mac [6], double seconds)
{
    bus_pipe_t *in = bus_pipe_new (run_dir, PIPE_DEV_CRYPTO, BUS_PIPE_RECEIVER, 0);
    bus_pipe_t *out = bus_pipe_new (run_dir, PIPE_CRYPTO_DEV, BUS_PIPE_SENDER, 0);
    if (!in || !out)
        return 1;
    bus_batch_t *batch = bus_batch_new (0);
    int64_t deadline = zclock_mono () + (int64_t) (seconds * 1000);
    printf ("ready\n");
    fflush (stdout);
    while (!s_stop && zclock_mono () < deadline) {
        bus_batch_iter_t iter;
        int rc = bus_pipe_recv (in, &iter, 100);
        if (rc <= 0) {
            if (rc < 0)
                printf ("bad-batch %s\n", bus_pipe_error (in));
            continue;
        }
        bus_packet_t pkt;
        while (bus_batch_iter_next (&iter, &pkt)) {
            char a [INET_ADDRSTRLEN], b [INET_ADDRSTRLEN];
            uint8_t *ip = pkt.data;
            size_t len = pkt.len;
            bool eth = false;
            //  tap: an Ethernet frame (tun packets start with version 4 or 6)
            if (len >= 14 && (pkt.data [0] >> 4) != 4 && (pkt.data [0] >> 4) != 6) {
                eth = true;
                dev_arp_t arp;
                const char *why;
                if (dev_arp_parse (pkt.data, len, &arp, &why) == 0) {
                    printf ("tag=%u len=%zu arp-%s %s>%s\n", pkt.tag, len,
                            arp.op == DEV_ARP_REQUEST ? "request" : "reply",
                            s_ip4 (arp.spa, a), s_ip4 (arp.tpa, b));
                    if (arp.op == DEV_ARP_REQUEST) {
                        dev_arp_t answer = { .op = DEV_ARP_REPLY };
                        memcpy (answer.sha, peer_mac, 6);
                        memcpy (answer.spa, arp.tpa, 4);
                        memcpy (answer.tha, arp.sha, 6);
                        memcpy (answer.tpa, arp.spa, 4);
                        uint8_t frame [DEV_ARP_FRAME_LEN];
                        size_t flen = dev_arp_build (frame, sizeof frame, arp.sha, &answer);
                        bus_batch_add (batch, 0, frame, flen);
                    }
                    continue;
                }
                if (pkt.data [12] != 0x08 || pkt.data [13] != 0x00) {
                    printf ("tag=%u len=%zu ethertype=%02x%02x\n", pkt.tag, len, pkt.data [12], pkt.data [13]);
                    continue;
                }
                ip += 14;
                len -= 14;
            }
            if (len >= 20 && (ip [0] >> 4) == 4 && ip [9] == 1 && s_icmp_reply (ip, len)) {
                //  addresses already swapped: print as the request had them
                printf ("tag=%u len=%zu icmp-echo %s>%s\n", pkt.tag, pkt.len,
                        s_ip4 (ip + 16, a), s_ip4 (ip + 12, b));
                if (eth) {
                    uint8_t tmp [6];
                    memcpy (tmp, pkt.data, 6);
                    memcpy (pkt.data, pkt.data + 6, 6);
                    memcpy (pkt.data + 6, tmp, 6);
                }
                bus_batch_add (batch, 0, pkt.data, pkt.len);
            }
            else
            if (len >= 20 && (ip [0] >> 4) == 4)
                printf ("tag=%u len=%zu ipv4 proto=%u %s>%s\n", pkt.tag, pkt.len, ip [9],
                        s_ip4 (ip + 12, a), s_ip4 (ip + 16, b));
            else
                printf ("tag=%u len=%zu other\n", pkt.tag, pkt.len);
        }
        fflush (stdout);
        if (bus_batch_count (batch) && bus_pipe_send (out, batch))
            printf ("reply-dropped\n");
    }
    bus_batch_destroy (&batch);
    bus_pipe_destroy (&in);
    bus_pipe_destroy (&out);
    return 0;
}

static int
s_count (const char *run_dir, double seconds)
{
    bus_pipe_t *in = bus_pipe_new (run_dir, PIPE_DEV_CRYPTO, BUS_PIPE_RECEIVER, 0);
    if (!in)
        return 1;
    printf ("ready\n");
    fflush (stdout);
    int64_t deadline = zclock_mono () + (int64_t) (seconds * 1000);
    int64_t first = 0, last = 0;
    uint64_t packets = 0, batches = 0;
    while (!s_stop && zclock_mono () < deadline) {
        bus_batch_iter_t iter;
        int rc = bus_pipe_recv (in, &iter, 100);
        if (rc == 0 && packets && zclock_usecs () - last > 1000000)
            break;
        if (rc <= 0)
            continue;
        if (!packets)
            first = zclock_usecs ();
        last = zclock_usecs ();
        packets += iter.count;
        batches++;
    }
    double t = (double) (last - first) / 1e6;
    printf ("packets %" PRIu64 " batches %" PRIu64 " seconds %.3f rate %.0f\n",
            packets, batches, t, t > 0 ? (double) packets / t : 0.0);
    bus_pipe_destroy (&in);
    return 0;
}

static int
s_blast (const char *dst, long count, size_t len)
{
    int fd = socket (AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (9) };
    if (fd < 0 || inet_pton (AF_INET, dst, &to.sin_addr) != 1 || len > 1400) {
        fprintf (stderr, "blast: bad destination or length\n");
        return 1;
    }
    static uint8_t payload [1400];
    struct iovec iov = { payload, len };
    struct mmsghdr msgs [64];
    for (int i = 0; i < 64; i++)
        msgs [i] = (struct mmsghdr) { .msg_hdr = { .msg_name = &to, .msg_namelen = sizeof to,
                                                   .msg_iov = &iov, .msg_iovlen = 1 } };
    long sent = 0, failed = 0;
    int64_t start = zclock_usecs ();
    while (sent + failed < count) {
        int n = (int) (count - sent - failed < 64 ? count - sent - failed : 64);
        int rc = sendmmsg (fd, msgs, (unsigned) n, 0);
        if (rc > 0)
            sent += rc;
        else
            failed++;           //  ENOBUFS when the tun queue is full: keep going
    }
    double t = (double) (zclock_usecs () - start) / 1e6;
    printf ("sent %ld failed %ld seconds %.3f rate %.0f\n", sent, failed, t, t > 0 ? sent / t : 0.0);
    close (fd);
    return 0;
}

static int
s_status (const char *run_dir)
{
    char endpoint [BUS_PATH_MAX], err [256];
    if (bus_endpoint (endpoint, sizeof endpoint, run_dir, "bus"))
        return 1;
    bus_client_t *client = bus_client_new (endpoint, NULL, err, sizeof err);
    if (!client) {
        fprintf (stderr, "status: %s\n", err);
        return 1;
    }
    device_status_t request = { .detail = "" };
    bus_envelope_t *reply = bus_client_request (client, "device", &device_status_schema, &request,
                                                2000, err, sizeof err);
    bus_client_destroy (&client);
    if (!reply) {
        fprintf (stderr, "status: %s\n", err);
        return 1;
    }
    json_t *json = bus_envelope_to_json (reply);
    json_t *body = json_object_get (json, "body");
    const char *key;
    json_t *value;
    json_object_foreach (body, key, value) {
        if (json_is_string (value))
            printf ("%s=%s\n", key, json_string_value (value));
        else
        if (json_is_integer (value))
            printf ("%s=%" JSON_INTEGER_FORMAT "\n", key, json_integer_value (value));
        else
        if (json_is_boolean (value))
            printf ("%s=%s\n", key, json_is_true (value) ? "true" : "false");
    }
    json_decref (json);
    bus_envelope_destroy (&reply);
    return 0;
}

int
main (int argc, char **argv)
{
    const char *run_dir = NULL, *peer_key = NULL;
    double seconds = 30;
    int argi = 1;
    const char *args [4] = { NULL, NULL, NULL, NULL };
    int nargs = 0;
    for (; argi < argc; argi++) {
        if (strcmp (argv [argi], "-r") == 0 && argi + 1 < argc)
            run_dir = argv [++argi];
        else
        if (strcmp (argv [argi], "--peer-key") == 0 && argi + 1 < argc)
            peer_key = argv [++argi];
        else
        if (strcmp (argv [argi], "--seconds") == 0 && argi + 1 < argc)
            seconds = atof (argv [++argi]);
        else
        if (nargs < 4)
            args [nargs++] = argv [argi];
    }
    if (nargs == 0) {
        fprintf (stderr, "usage: dev_pipe_probe [-r RUN] serve|count|status [--peer-key B64] [--seconds S]\n"
                         "       dev_pipe_probe blast DST_IP N [LEN]\n");
        return 2;
    }
    zsys_init ();
    zsys_set_logstream (NULL);
    zsys_handler_set (NULL);
    signal (SIGTERM, s_on_signal);
    signal (SIGINT, s_on_signal);
    run_dir = bus_run_dir (run_dir);
    if (strcmp (args [0], "serve") == 0) {
        uint8_t key [32] = { 0 }, mac [6];
        size_t len = 0;
        if (peer_key && (sodium_base642bin (key, sizeof key, peer_key, strlen (peer_key), NULL, &len,
                                            NULL, sodium_base64_VARIANT_ORIGINAL) || len != 32)) {
            fprintf (stderr, "--peer-key: not a base64 32-byte key\n");
            return 2;
        }
        dev_mac_from_key (key, mac);
        return s_serve (run_dir, mac, seconds);
    }
    if (strcmp (args [0], "count") == 0)
        return s_count (run_dir, seconds);
    if (strcmp (args [0], "status") == 0)
        return s_status (run_dir);
    if (strcmp (args [0], "blast") == 0 && nargs >= 3)
        return s_blast (args [1], atol (args [2]), nargs > 3 ? (size_t) atol (args [3]) : 64);
    fprintf (stderr, "dev_pipe_probe: unknown command %s\n", args [0]);
    return 2;
}
