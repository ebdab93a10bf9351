/*  disc_paths: the router's routes as the heartbeat's paths (see disc_paths.h). */
#include "disc_paths.h"
#include "rest_codec.h"
#include <assert.h>
#include <stdint.h>
#include <string.h>

//  The registry id of the peer with this index: the router's, else discovery's
static const char *
s_id (const router_routes_reply_t *routes, uint32_t index, disc_paths_id_fn *id_of, void *arg)
{
    for (uint32_t i = 0; i < routes->routes_count; i++)
        if (routes->routes [i].index == index && rest_check (REST_HEX16, routes->routes [i].peer_id))
            return routes->routes [i].peer_id;
    const char *id = id_of ? id_of (index, arg) : NULL;
    return id && rest_check (REST_HEX16, id) ? id : NULL;
}

size_t
disc_paths_from_routes (const router_routes_reply_t *routes, const char *self_id,
                        disc_paths_id_fn *id_of, void *arg, rest_path_t *out, size_t max)
{
    size_t count = 0;
    for (uint32_t i = 0; i < routes->routes_count && count < max; i++) {
        const router_routes_route_t *route = &routes->routes [i];
        //  The row's own id first: a destination only announcements named
        //  has no index (4294967295, router.def), so its index finds nothing
        const char *id = rest_check (REST_HEX16, route->peer_id) ? route->peer_id
                       : s_id (routes, route->index, id_of, arg);
        if (!id || (self_id && strcmp (id, self_id) == 0))
            continue;
        const char *tier = route->path;
        if (strcmp (tier, "direct") && strcmp (tier, "relay") && strcmp (tier, "turn") && strcmp (tier, "peer"))
            continue;
        bool dup = false;
        for (size_t j = 0; j < count; j++)
            dup |= strcmp (out [j].peer, id) == 0;
        if (dup)
            continue;
        rest_path_t *path = &out [count];
        memset (path, 0, sizeof *path);
        snprintf (path->peer, sizeof path->peer, "%s", id);
        snprintf (path->path, sizeof path->path, "%s", tier);
        if (strcmp (tier, "peer") == 0) {
            //  The registry wants the first peer crossed by id; a next hop
            //  without one cannot be said, and the entry is left out
            const char *via = s_id (routes, route->next_hop, id_of, arg);
            if (!via)
                continue;
            snprintf (path->via, sizeof path->via, "%s", via);
            path->has_via = true;
        }
        //  0: no sample yet (router.def)
        path->has_rtt_ms = route->rtt_ms > 0;
        path->rtt_ms = route->rtt_ms > 0 ? (route->rtt_ms > 600000 ? 600000 : route->rtt_ms) : 0;
        count++;
    }
    return count;
}

//  The test's discovery: index 9 is "00000000000000ee"
static const char *
s_test_id (uint32_t index, void *arg)
{
    return index == 9 ? (const char *) arg : NULL;
}

void
disc_paths_test (bool verbose)
{
    router_routes_reply_t *routes = (router_routes_reply_t *) calloc (1, sizeof *routes);
    assert (routes);
    const struct { uint32_t index; const char *id; uint32_t next; const char *tier; uint32_t rtt; } rows [] = {
        { 1, "00000000000000bb", 1, "direct", 7 },
        { 2, "00000000000000dd", 1, "peer", 7 },
        { 3, "", 3, "direct", 3 },                      //  a config peer: no id
        { 4, "00000000000000cc", 4, "relay", 0 },       //  no sample yet
        { 5, "00000000000000aa", 5, "direct", 1 },      //  self
        { 6, "00000000000000ff", 3, "peer", 9 },        //  through a peer without an id
        { 7, "00000000000000ef", 7, "carrier", 9 },     //  a tier the registry does not know
        { 9, "", 9, "direct", 2 },                      //  named by discovery only (no relays)
        { 8, "00000000000000bb", 8, "turn", 2 },        //  the same peer again
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows [0]; i++) {
        router_routes_route_t *r = &routes->routes [routes->routes_count++];
        r->index = rows [i].index;
        snprintf (r->peer_id, sizeof r->peer_id, "%s", rows [i].id);
        r->next_hop = rows [i].next;
        snprintf (r->path, sizeof r->path, "%s", rows [i].tier);
        r->rtt_ms = rows [i].rtt;
    }
    rest_path_t paths [8];
    assert (disc_paths_from_routes (routes, "00000000000000aa", NULL, NULL, paths, 8) == 3);
    size_t n = disc_paths_from_routes (routes, "00000000000000aa", s_test_id, "00000000000000ee", paths, 8);
    assert (n == 4 && strcmp (paths [3].peer, "00000000000000ee") == 0 && paths [3].rtt_ms == 2);
    assert (strcmp (paths [0].peer, "00000000000000bb") == 0 && strcmp (paths [0].path, "direct") == 0);
    assert (paths [0].has_rtt_ms && paths [0].rtt_ms == 7 && !paths [0].has_via);
    assert (strcmp (paths [1].path, "peer") == 0 && paths [1].has_via && strcmp (paths [1].via, "00000000000000bb") == 0);
    assert (strcmp (paths [2].path, "relay") == 0 && !paths [2].has_rtt_ms);
    assert (disc_paths_from_routes (routes, NULL, NULL, NULL, paths, 2) == 2);
    //  What the registry will accept: the heartbeat body encodes and its codec reads it back
    rest_heartbeat_req_t body;
    memset (&body, 0, sizeof body);
    body.paths = paths;
    body.paths_count = (uint32_t) n;
    body.has_paths = true;
    char *text = rest_encode_text (&rest_heartbeat_req_schema, &body);
    rest_heartbeat_req_t back;
    char err [200];
    assert (rest_decode (&rest_heartbeat_req_schema, text, strlen (text), &back, err, sizeof err) == 0);
    assert (back.paths_count == 4 && strcmp (back.paths [1].via, "00000000000000bb") == 0);
    if (verbose)
        printf ("  %s\n", text);
    rest_free (&rest_heartbeat_req_schema, &back);
    free (text);
    //  Destinations only announcements named (no index, router.def): each by
    //  its own id, not the first such row's
    routes->routes_count = 0;
    const char *far [] = { "0000000000000f01", "0000000000000f02" };
    for (size_t i = 0; i < 2; i++) {
        router_routes_route_t *r = &routes->routes [routes->routes_count++];
        memset (r, 0, sizeof *r);
        r->index = UINT32_MAX;
        snprintf (r->peer_id, sizeof r->peer_id, "%s", far [i]);
        r->next_hop = 1;
        snprintf (r->path, sizeof r->path, "peer");
    }
    router_routes_route_t *b = &routes->routes [routes->routes_count++];
    memset (b, 0, sizeof *b);
    b->index = 1;
    snprintf (b->peer_id, sizeof b->peer_id, "00000000000000bb");
    b->next_hop = 1;
    snprintf (b->path, sizeof b->path, "direct");
    n = disc_paths_from_routes (routes, NULL, NULL, NULL, paths, 8);
    assert (n == 3 && strcmp (paths [0].peer, far [0]) == 0 && strcmp (paths [1].peer, far [1]) == 0);
    assert (strcmp (paths [1].via, "00000000000000bb") == 0);
    routes->routes_count = 0;
    assert (disc_paths_from_routes (routes, NULL, NULL, NULL, paths, 8) == 0);
    free (routes);
}
