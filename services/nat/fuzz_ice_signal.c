/*  fuzz_ice_signal: the ICE signals another node sends through the registry
    (discovery.signal's type and JSON data) are read by nat_ice_signal before
    anything else. No input may crash it; whatever it accepts must format and
    parse back to the same signal. The first line of the input is the type,
    the rest the data. */
#include "nat_ice_signal.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char text [NAT_ICE_SIGNAL_DATA_MAX + 64];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy (text, data, n);
    text [n] = 0;
    char *body = strchr (text, '\n');
    if (body)
        *body++ = 0;
    else
        body = text + n;
    nat_ice_sig_t sig, again;
    char err [300], type [NAT_ICE_SIGNAL_TYPE_MAX], out [NAT_ICE_SIGNAL_DATA_MAX + 1];
    if (nat_ice_signal_parse (text, body, &sig, err, sizeof err) == 0) {
        assert (sig.id);
        assert (nat_ice_signal_format (&sig, type, sizeof type, out, sizeof out) == 0);
        assert (nat_ice_signal_parse (type, out, &again, err, sizeof err) == 0);
        assert (memcmp (&sig, &again, sizeof sig) == 0);
    }
    else
        assert (strlen (err) > 0);
    return 0;
}
