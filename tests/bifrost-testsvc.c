/*  bifrost-testsvc: a real bus service for integration tests, one program for
    every part a test plays, so the bus setup exists once (testsvc.h). It
    registers under the name in BIFROST_SERVICE (default "testsvc"), answers
    bus.echo, and, as asked:
        --exit-at-start N    exit with code N right away (78 = permanent failure)
        --crash-after MS     abort() after MS milliseconds of running
        --next ..., --announce ...   publishes the router's events by hand
                             (testsvc_inject.c: node_routed.sh)
        --liar FAKES         lies to its neighbours' routers (testsvc_liar.c:
                             mesh_liar.sh)
    A protected name (schemas/senders.def) is granted only to its program's
    uid or file: the tests that play the router run this program under the
    router's uid (node_routed.sh) or install it as a node's bifrost-router
    (mesh_liar.sh); see the parts' files. */
#include "bus_service.h"
#include "bus_log.h"
#include "testsvc.h"

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
    if (testsvc_inject_setup (svc) || testsvc_liar_setup (svc))
        return -1;
    return 0;
}

int
main (int argc, char **argv)
{
    //  Strip our own options before the runtime parses the standard ones
    int out = 1;
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv [i + 1] : NULL;
        int used = 0;
        if (strcmp (argv [i], "--exit-at-start") == 0 && value)
            return atoi (value);
        else
        if (strcmp (argv [i], "--crash-after") == 0 && value) {
            s_crash_after_ms = atoi (value);
            used = 1;
        }
        else
        if (value && ((used = testsvc_inject_option (argv [i], value)) != 0
                  ||  (used = testsvc_liar_option (argv [i], value)) != 0)) {
            if (used < 0) {
                fprintf (stderr, "bifrost-testsvc: bad %s '%s'\n", argv [i], value);
                return 2;
            }
        }
        if (used)
            i += used;
        else
            argv [out++] = argv [i];
    }
    argc = out;
    argv [argc] = NULL;
    const char *name = getenv ("BIFROST_SERVICE");
    bus_service_def_t def = {
        .name = name && bus_name_valid (name) ? name : "testsvc",
        .summary = "a test service that answers bus.echo (and plays the router when asked)",
        .setup = s_setup,
    };
    return bus_service_main (&def, argc, argv);
}
