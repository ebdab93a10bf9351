/*  fuzz_disc_json: every parser of what the registry sends (replies and
    WebSocket events). The first byte picks the parser, the rest is the text. */
#include "disc_json.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *text = (const char *) data + 1;
    size_t len = size - 1;
    char err [200];
    switch (data [0] % 7) {
        case 0: {
            disc_challenge_t out;
            disc_json_challenge (text, len, &out, err, sizeof err);
            break;
        }
        case 1: {
            disc_registration_t out;
            disc_json_registration (text, len, &out, err, sizeof err);
            break;
        }
        case 2: {
            disc_peer_info_t *peers;
            size_t count;
            if (disc_json_peers (text, len, &peers, &count, err, sizeof err) == 0)
                free (peers);
            break;
        }
        case 3: {
            disc_event_t *event = malloc (sizeof *event);
            disc_json_event (text, len, event, err, sizeof err);
            free (event);
            break;
        }
        case 4: {
            disc_meta_t meta;
            disc_json_meta (text, len, &meta, err, sizeof err);
            break;
        }
        case 5: {
            uint32_t delivered;
            disc_json_delivered (text, len, &delivered, err, sizeof err);
            disc_json_heartbeat (text, len);
            disc_heartbeat_t beat;
            disc_json_heartbeat_reply (text, len, &beat, err, sizeof err);
            break;
        }
        default: {
            char msg [100];
            disc_json_error_text (text, len, msg, sizeof msg);
            break;
        }
    }
    return 0;
}
