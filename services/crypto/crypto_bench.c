/*  crypto_bench: what the key-holding process costs per handshake and per packet
    on one core: handshake time (both sides, 4 messages) and crypto_session
    encrypt/decrypt rates at 1400 B and 64 B, in place, as the data path uses it.
    Usage: crypto_bench [SECONDS per measurement, default 1] */
#include "crypto_node.h"
#include "bus_clock.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 4096

static uint8_t *
s_any (void *arg, const uint8_t key [32])
{
    return (uint8_t *) arg;
}

static void
s_handshakes (double seconds)
{
    crypto_identity_t *a = crypto_identity_new (), *b = crypto_identity_new ();
    uint8_t m1 [WIRE_INITIATION_SIZE], m2 [WIRE_RESPONSE_SIZE], stamp [12];
    crypto_keys_t ki, kr;
    char err [128];
    uint64_t wall = 1700000000ULL * CRYPTO_SEC;
    long n = 0;
    double start = bus_clock_sec (), end;
    do {
        memset (stamp, 0, sizeof stamp);
        crypto_noise_t *i = crypto_noise_new_initiator (a, crypto_identity_public (b), NULL);
        crypto_noise_t *r = crypto_noise_new_responder (b, NULL);
        if (crypto_noise_write_initiation (i, 1, wall, m1)
        ||  crypto_noise_read_initiation (r, m1, sizeof m1, s_any, stamp, NULL, err, sizeof err)
        ||  crypto_noise_write_response (r, 2, m2, &kr)
        ||  crypto_noise_read_response (i, m2, sizeof m2, &ki, err, sizeof err)) {
            fprintf (stderr, "handshake failed\n");
            exit (1);
        }
        crypto_noise_destroy (&i);
        crypto_noise_destroy (&r);
        n++;
        end = bus_clock_sec ();
    } while (end - start < seconds);
    printf ("handshake (initiator + responder, 4 steps): %.1f us, %.0f handshakes/s\n",
            (end - start) / (double) n * 1e6, (double) n / (end - start));
    crypto_identity_destroy (&a);
    crypto_identity_destroy (&b);
}

static void
s_throughput (size_t size, double seconds)
{
    crypto_keys_t ka, kb;
    memset (&ka, 0, sizeof ka);
    memset (ka.send_key, 1, 32);
    memset (ka.recv_key, 2, 32);
    ka.local_index = 1;
    ka.remote_index = 2;
    ka.initiator = true;
    kb = ka;
    memcpy (kb.send_key, ka.recv_key, 32);
    memcpy (kb.recv_key, ka.send_key, 32);
    kb.local_index = 2;
    kb.remote_index = 1;
    kb.initiator = false;
    crypto_session_t *tx = crypto_session_new (NULL), *rx = crypto_session_new (NULL);
    crypto_session_install (tx, &ka, 0);
    crypto_session_install (rx, &kb, 0);
    size_t stride = size + WIRE_DATA_OVERHEAD;
    uint8_t *bufs = calloc (BATCH, stride);
    size_t *lens = calloc (BATCH, sizeof *lens);
    double t_enc = 0, t_dec = 0;
    long packets = 0;
    //  Confirm rx's keys with one packet first
    size_t wire, plain;
    crypto_session_encrypt (tx, bufs, 0, stride, 0, &wire);
    crypto_session_decrypt (rx, bufs, wire, 0, &plain);
    while (t_enc + t_dec < 2 * seconds) {
        double t0 = bus_clock_sec ();
        for (int i = 0; i < BATCH; i++)
            if (crypto_session_encrypt (tx, bufs + (size_t) i * stride, size, stride, 0, &lens [i])) {
                fprintf (stderr, "encrypt failed\n");
                exit (1);
            }
        double t1 = bus_clock_sec ();
        for (int i = 0; i < BATCH; i++)
            if (crypto_session_decrypt (rx, bufs + (size_t) i * stride, lens [i], 0, &plain)) {
                fprintf (stderr, "decrypt failed\n");
                exit (1);
            }
        double t2 = bus_clock_sec ();
        t_enc += t1 - t0;
        t_dec += t2 - t1;
        packets += BATCH;
    }
    printf ("%5zu B: encrypt %7.0fk pkt/s %5.2f Gbit/s | decrypt %7.0fk pkt/s %5.2f Gbit/s\n", size,
            (double) packets / t_enc / 1e3, (double) packets * (double) size * 8 / t_enc / 1e9,
            (double) packets / t_dec / 1e3, (double) packets * (double) size * 8 / t_dec / 1e9);
    free (bufs);
    free (lens);
    crypto_session_destroy (&tx);
    crypto_session_destroy (&rx);
}

int
main (int argc, char **argv)
{
    double seconds = argc > 1 ? atof (argv [1]) : 1.0;
    if (seconds <= 0 || seconds > 60) {
        fprintf (stderr, "usage: crypto_bench [SECONDS 0..60]\n");
        return 2;
    }
    s_handshakes (seconds);
    s_throughput (1400, seconds);
    s_throughput (64, seconds);
    return 0;
}
