/*  fuzz_bridge_status: the status decoder is what the test client and the page
    run on the bridge's text frames. No input may crash it; what it accepts it
    must encode again, and that text must decode to the same message (the rules
    of encode and decode are the same rules). Seeds: gen_bridge_corpus.sh. */
#include "bridge_status.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    bridge_status_msg_t msg, again;
    char err [200];
    if (bridge_status_decode ((const char *) data, size, &msg, err, sizeof err) != 0) {
        assert (*err);
        return 0;
    }
    assert (bridge_status_state (&msg) < BRIDGE_STATE_COUNT);
    char *text = bridge_status_encode (&msg, err, sizeof err);
    assert (text);
    assert (bridge_status_decode (text, strlen (text), &again, err, sizeof err) == 0);
    char *text2 = bridge_status_encode (&again, err, sizeof err);
    assert (text2 && strcmp (text, text2) == 0);
    free (text);
    free (text2);
    return 0;
}
