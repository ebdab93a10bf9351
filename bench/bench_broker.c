/*  bench_broker: what the control plane costs. Control messages are small and
    rare next to packets, but every one crosses the broker (service -> broker ->
    service), so its rate and round trip bound how fast the mesh reacts (path
    changes, route updates, rekeys) and how much CPU the bus takes.

        bench_broker [-s SECONDS] [-m]

    Three processes on one run directory in /tmp: the broker (bus_broker_actor
    in a forked child), an `echo` service on the real service runtime
    (bus_service, another child), and this process as a bus_client.
    1. One-way: the client sends bus.echo messages without a correlation id as
       fast as it can for SECONDS; the service counts them. Then one request asks
       the service for its count; it is answered after every earlier message was
       handled (one FIFO path), so rate = count / (reply time - start).
    2. Round trip: bus.echo requests one after the other for SECONDS, each timed;
       prints median and 99th percentile in microseconds.
    -m prints Markdown table rows. Bounded: an alarm ends every process after
    4 x SECONDS + 20 s whatever happens. */
#include "bus_broker.h"
#include "bus_clock.h"
#include "bus_client.h"
#include "bus_endpoint.h"
#include "bus_log.h"
#include "bus_service.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_COUNT_SEQ  UINT64_MAX     //  the request that asks for the count

static int
s_cmp (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

//  ---------------------------------------------------------------------------
//  Child 1: the broker, until the parent closes the pipe (or dies)

static int
s_broker (char *dir, int stop_fd, int ready_fd)
{
    zactor_t *broker = zactor_new (bus_broker_actor, dir);
    if (!broker)
        return 1;
    if (write (ready_fd, "b", 1) != 1)
        return 1;
    char c;
    while (read (stop_fd, &c, 1) > 0)
        ;
    zactor_destroy (&broker);
    return 0;
}

//  ---------------------------------------------------------------------------
//  Child 2: the echo service, until SIGTERM

static uint64_t s_one_way;

static void
s_on_echo (bus_service_t *svc, bus_envelope_t *env, void *arg)
{
    bus_echo_t echo;
    char err [160];
    if (bus_envelope_get_msg (env, &bus_echo_schema, &echo, err, sizeof err))
        return;
    if (bus_envelope_corr (env) == 0) {
        s_one_way++;
        return;
    }
    if (echo.seq == S_COUNT_SEQ)
        echo.seq = s_one_way;
    bus_service_reply (svc, env, &bus_echo_schema, &echo);
}

static int
s_service (const char *dir)
{
    bus_service_t *svc = bus_service_new ("echo", NULL, dir);
    if (!svc)
        return 1;
    bus_service_handle (svc, "bus.echo", s_on_echo, NULL);
    int rc = bus_service_run (svc);
    bus_service_destroy (&svc);
    return rc ? 1 : 0;
}

//  ---------------------------------------------------------------------------

static void
s_child_setup (int seconds)
{
    prctl (PR_SET_PDEATHSIG, SIGTERM);
    alarm ((unsigned) (4 * seconds + 20));
}

int
main (int argc, char **argv)
{
    int seconds = 2;
    bool markdown = false;
    int opt;
    while ((opt = getopt (argc, argv, "s:mh")) != -1) {
        switch (opt) {
            case 's': seconds = atoi (optarg); break;
            case 'm': markdown = true; break;
            default:
                fprintf (stderr, "usage: %s [-s SECONDS] [-m]\n", argv [0]);
                return opt == 'h' ? 0 : 2;
        }
    }
    if (seconds < 1 || seconds > 60) {
        fprintf (stderr, "bench_broker: seconds must be in 1..60\n");
        return 2;
    }
    alarm ((unsigned) (4 * seconds + 20));
    bus_log_set_level (BUS_LOG_WARN);
    char dir [] = "/tmp/bench-broker-XXXXXX";
    if (!mkdtemp (dir)) {
        perror ("mkdtemp");
        return 1;
    }
    int stop [2], ready [2];
    if (pipe (stop) || pipe (ready)) {
        perror ("pipe");
        return 1;
    }
    pid_t broker = fork ();
    if (broker == 0) {
        s_child_setup (seconds);
        close (stop [1]);
        close (ready [0]);
        _exit (s_broker (dir, stop [0], ready [1]));
    }
    close (stop [0]);
    close (ready [1]);
    char c;
    if (broker < 0 || read (ready [0], &c, 1) != 1) {
        fprintf (stderr, "bench_broker: the broker did not start\n");
        return 1;
    }
    pid_t service = fork ();
    if (service == 0) {
        s_child_setup (seconds);
        close (stop [1]);
        _exit (s_service (dir));
    }

    int rc = 1;
    char endpoint [BUS_PATH_MAX], err [200];
    bus_endpoint (endpoint, sizeof endpoint, dir, "bus");
    bus_client_t *client = bus_client_new (endpoint, "bench", err, sizeof err);
    double *rtt = NULL;
    if (!client) {
        fprintf (stderr, "bench_broker: %s\n", err);
        goto done;
    }
    //  Wait until the service has registered with the broker
    bus_echo_t echo = { .seq = 1 };
    bus_envelope_t *reply = NULL;
    double deadline = bus_clock_sec () + 10;
    while (!reply && bus_clock_sec () < deadline)
        reply = bus_client_request (client, "echo", &bus_echo_schema, &echo, 200, err, sizeof err);
    if (!reply) {
        fprintf (stderr, "bench_broker: the echo service does not answer: %s\n", err);
        goto done;
    }
    bus_envelope_destroy (&reply);

    //  1. One-way messages through the broker
    uint64_t sent = 0;
    double t0 = bus_clock_sec (), end = t0 + seconds;
    memset (&echo, 0, sizeof echo);
    echo.payload_size = 16;
    while ((sent & 255) || bus_clock_sec () < end) {
        echo.seq = sent;
        if (bus_client_send (client, "echo", &bus_echo_schema, &echo) == 0)
            sent++;
    }
    echo.seq = S_COUNT_SEQ;
    echo.payload_size = 0;
    reply = bus_client_request (client, "echo", &bus_echo_schema, &echo, 30000, err, sizeof err);
    double t1 = bus_clock_sec ();
    bus_echo_t answer;
    if (!reply || bus_envelope_get_msg (reply, &bus_echo_schema, &answer, err, sizeof err)) {
        fprintf (stderr, "bench_broker: no count from the echo service: %s\n", err);
        bus_envelope_destroy (&reply);
        goto done;
    }
    bus_envelope_destroy (&reply);
    double one_way = (double) answer.seq / (t1 - t0);

    //  2. Request/reply round trips, one at a time
    size_t cap = 1000000, n = 0;
    rtt = (double *) malloc (cap * sizeof (double));
    end = bus_clock_sec () + seconds;
    echo.payload_size = 16;
    while (n < cap && bus_clock_sec () < end) {
        echo.seq = n;
        double a = bus_clock_sec ();
        reply = bus_client_request (client, "echo", &bus_echo_schema, &echo, 2000, err, sizeof err);
        if (!reply) {
            fprintf (stderr, "bench_broker: request %zu: %s\n", n, err);
            goto done;
        }
        rtt [n++] = (bus_clock_sec () - a) * 1e6;
        bus_envelope_destroy (&reply);
    }
    qsort (rtt, n, sizeof (double), s_cmp);
    double median = rtt [n / 2], p99 = rtt [(n * 99) / 100];
    if (markdown) {
        printf ("| broker: one-way bus.echo, client -> broker -> service | %.0fk msg/s handled | | %.1f%% dropped |\n",
                one_way / 1000, sent ? 100.0 * (double) (sent - answer.seq) / (double) sent : 0);
        printf ("| broker: bus.echo request/reply round trip | %.0f us median | %.0f us p99 | %.0fk req/s |\n",
                median, p99, (double) n / seconds / 1000);
    }
    else
        printf ("bench_broker: one-way %llu sent, %llu handled: %.0f msg/s; "
                "round trip (%zu requests): median %.1f us, p99 %.1f us, %.0f req/s\n",
                (unsigned long long) sent, (unsigned long long) answer.seq, one_way,
                n, median, p99, (double) n / seconds);
    rc = 0;

done:
    free (rtt);
    bus_client_destroy (&client);
    if (service > 0) {
        kill (service, SIGTERM);
        waitpid (service, NULL, 0);
    }
    close (stop [1]);
    waitpid (broker, NULL, 0);
    char path [BUS_PATH_MAX + 16];
    const char *names [] = { "bus", "events", "tap" };
    for (size_t i = 0; i < 3; i++) {
        snprintf (path, sizeof path, "%s/%s.ipc", dir, names [i]);
        unlink (path);
    }
    rmdir (dir);
    return rc;
}
