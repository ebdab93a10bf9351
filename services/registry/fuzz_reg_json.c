/*  fuzz_reg_json: every request body the registry accepts goes through the
    reg_validate functions before anything else looks at it. Feed the same bytes
    to all of them: none may crash, read out of bounds, leak or accept something
    that breaks its own invariants (names valid, sizes within the fixed buffers,
    stored JSON re-parsable). Seeds: gen_reg_corpus.sh. */
#include "reg_validate.h"
#include <assert.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char err [200];
    reg_network_req_t net;
    if (reg_validate_network (data, size, &net, err, sizeof err) == 0) {
        assert (reg_valid_name (net.name));
        assert (!net.id [0] || reg_valid_id (net.id));
        assert (strlen (net.cidr) < sizeof net.cidr);
    }
    reg_peer_req_t peer;
    if (reg_validate_peer (data, size, &peer, err, sizeof err) == 0) {
        assert (reg_valid_name (peer.name));
        json_t *list = json_loads (peer.endpoints, 0, NULL);
        assert (json_is_array (list));
        json_decref (list);
        list = json_loads (peer.candidates, 0, NULL);
        assert (json_is_array (list));
        json_decref (list);
    }
    reg_token_req_t token;
    if (reg_validate_token (data, size, &token, err, sizeof err) == 0)
        assert (token.ttl_s >= 1);
    reg_heartbeat_req_t hb;
    if (reg_validate_heartbeat (data, size, &hb, err, sizeof err) == 0) {
        //  Paths: bounded, known kinds, a peer path names its first peer, one per peer
        assert (hb.paths_count <= REG_PATHS_MAX && (hb.has_paths || hb.paths_count == 0));
        for (uint32_t i = 0; i < hb.paths_count; i++) {
            const reg_path_t *path = &hb.paths [i];
            assert (strlen (path->peer) == 16 && hb.paths [i].rtt_ms >= -1);
            assert (!strcmp (path->path, "direct") || !strcmp (path->path, "relay") || !strcmp (path->path, "turn")
                 || (!strcmp (path->path, "peer") && strlen (path->via) == 16));
            for (uint32_t j = 0; j < i; j++)
                assert (strcmp (hb.paths [j].peer, path->peer) != 0);
        }
        assert (!reg_paths_changed (hb.paths, hb.paths_count, hb.paths, hb.paths_count));
    }
    reg_signal_req_t signal;
    if (reg_validate_signal (data, size, &signal, err, sizeof err) == 0) {
        json_t *value = json_loads (signal.data, JSON_DECODE_ANY, NULL);
        assert (value);
        json_decref (value);
    }
    return 0;
}
