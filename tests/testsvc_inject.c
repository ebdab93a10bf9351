/*  testsvc_inject: bifrost-testsvc plays the router's part on the bus for the
    data-path tests of mesh routing (tests/integration/node_routed.sh), where
    the real router is not running: publishes the `route.next` and
    `route.announce` events given on the command line once connected and
    every 500 ms after. The broker lets only the router's program register as
    `router` (schemas/senders.def): under service uids that is the router's
    uid, so the test runs it as that uid, outside the supervisor:

        BIFROST_SERVICE=router bifrost-testsvc -r RUN_DIR -i router.9 \
            --next "INDEX SELF_ID DEST_ID TTL [HOP_INDEX:HOP_ID ...]" ... \
            --announce "INDEX BYTES" ...

    Ids are 16 hex digits; no next hop = unreachable. An announcement is BYTES
    bytes of filler (crypto carries it, the router is not there to read it). */
#include "bus_service.h"
#include "bus_log.h"
#include "testsvc.h"

#include <inttypes.h>

#define S_MAX 16

static route_next_t s_next [S_MAX];
static size_t s_next_count;
static route_announce_t s_announce [S_MAX];
static size_t s_announce_count;

static int
s_parse_next (const char *text, route_next_t *out)
{
    memset (out, 0, sizeof *out);
    char copy [512];
    snprintf (copy, sizeof copy, "%s", text);
    char *save = NULL;
    char *tok [4 + 4];
    size_t n = 0;
    for (char *t = strtok_r (copy, " ", &save); t && n < 8; t = strtok_r (NULL, " ", &save))
        tok [n++] = t;
    if (n < 4)
        return -1;
    out->index = (uint32_t) strtoul (tok [0], NULL, 10);
    out->self_id = strtoull (tok [1], NULL, 16);
    out->dest_id = strtoull (tok [2], NULL, 16);
    out->ttl = (uint32_t) strtoul (tok [3], NULL, 10);
    for (size_t i = 4; i < n; i++) {
        char *colon = strchr (tok [i], ':');
        if (!colon)
            return -1;
        *colon = 0;
        route_hop_t *hop = &out->next_hops [out->next_hops_count++];
        hop->index = (uint32_t) strtoul (tok [i], NULL, 10);
        hop->id = strtoull (colon + 1, NULL, 16);
    }
    out->hops = out->next_hops_count ? 1 : 0;
    snprintf (out->path, sizeof out->path, "%s",
              !out->next_hops_count ? "" : out->next_hops [0].index == out->index ? "direct" : "peer");
    return 0;
}

static int
s_publish (bus_loop_t *loop, int timer_id, void *arg)
{
    bus_service_t *svc = (bus_service_t *) arg;
    for (size_t i = 0; i < s_next_count; i++)
        bus_service_publish (svc, &route_next_schema, &s_next [i]);
    for (size_t i = 0; i < s_announce_count; i++)
        bus_service_publish (svc, &route_announce_schema, &s_announce [i]);
    return 0;
}

static void
s_on_connect (bus_service_t *svc, uint64_t epoch, void *arg)
{
    s_publish (NULL, 0, svc);
}

int
testsvc_inject_setup (bus_service_t *svc)
{
    if (!s_next_count && !s_announce_count)
        return 0;
    bus_service_on_connect (svc, s_on_connect, NULL);
    bus_loop_timer (bus_service_loop (svc), 500, 0, s_publish, svc);
    bus_info ("%zu route.next, %zu route.announce every 500 ms", s_next_count, s_announce_count);
    return 0;
}

int
testsvc_inject_option (const char *option, const char *value)
{
    if (strcmp (option, "--next") == 0)
        return s_next_count < S_MAX && s_parse_next (value, &s_next [s_next_count++]) == 0 ? 1 : -1;
    if (strcmp (option, "--announce") == 0) {
        if (s_announce_count == S_MAX)
            return -1;
        route_announce_t *a = &s_announce [s_announce_count++];
        unsigned index = 0, bytes = 0;
        if (sscanf (value, "%u %u", &index, &bytes) != 2 || bytes > sizeof a->announcement)
            return -1;
        a->index = index;
        a->announcement_size = bytes;
        memset (a->announcement, 0x30, bytes);
        return 1;
    }
    return 0;
}
