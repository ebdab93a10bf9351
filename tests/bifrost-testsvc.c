/*  bifrost-testsvc: a real bus service for integration tests of the supervisor and
    the broker. It registers under the name in BIFROST_SERVICE (default "testsvc"),
    answers bus.echo, and misbehaves on demand:
        --exit-at-start N    exit with code N right away (78 = permanent failure)
        --crash-after MS     abort() after MS milliseconds of running */
#include "bus_service.h"
#include "bus_log.h"

static int s_crash_after_ms = 0;

static int
s_crash (bus_loop_t *loop, int timer_id, void *arg)
{
    bus_error ("crashing on purpose (--crash-after)");
    abort ();
}

static int
s_setup (bus_service_t *svc, void *arg)
{
    if (s_crash_after_ms > 0)
        bus_loop_timer (bus_service_loop (svc), (size_t) s_crash_after_ms, 1, s_crash, NULL);
    return 0;
}

int
main (int argc, char **argv)
{
    //  Strip our own options before the runtime parses the standard ones
    int out = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "--exit-at-start") == 0 && i + 1 < argc)
            return atoi (argv [++i]);
        else
        if (strcmp (argv [i], "--crash-after") == 0 && i + 1 < argc)
            s_crash_after_ms = atoi (argv [++i]);
        else
            argv [out++] = argv [i];
    }
    argc = out;
    argv [argc] = NULL;
    const char *name = getenv ("BIFROST_SERVICE");
    bus_service_def_t def = {
        .name = name && bus_name_valid (name) ? name : "testsvc",
        .summary = "a test service that answers bus.echo",
        .setup = s_setup,
    };
    return bus_service_main (&def, argc, argv);
}
