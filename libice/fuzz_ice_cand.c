/*  fuzz_ice_cand: a peer's ICE signalling (candidates, credentials, the relay's
    observed address) arrives from the network through the registry or the
    relay, and ice_cand is the only code that reads it before libnice. No byte
    string may crash it or read past its end; whatever it accepts must format
    and parse back to the same candidate. The input is cut at the first newline
    after the first line into: candidate, ufrag, pwd, address. */
#include "ice_cand.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char text [ICE_CAND_TEXT_MAX + 64];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy (text, data, n);
    text [n] = 0;
    char err [200];

    ice_cand_t cand, again;
    if (ice_cand_parse (text, &cand, err, sizeof err) == 0) {
        char out [ICE_CAND_TEXT_MAX + 1];
        int len = ice_cand_format (&cand, out, sizeof out);
        assert (len > 0);
        assert (ice_cand_parse (out, &again, err, sizeof err) == 0);
        assert (memcmp (&cand, &again, sizeof cand) == 0);
        assert (ice_cand_type_name (cand.type));
    }
    else
        assert (strlen (err) > 0);

    //  The same bytes as credentials and as an address, field by field
    char *fields [4] = { text, NULL, NULL, NULL };
    size_t k = 1;
    for (char *p = text; *p && k < 4; p++)
        if (*p == '\n') {
            *p = 0;
            fields [k++] = p + 1;
        }
    ice_cand_check_credentials (fields [1] ? fields [1] : text, fields [2], err, sizeof err);
    char ip [ICE_CAND_ADDR_MAX];
    uint16_t port;
    int family;
    if (ice_cand_parse_addr (fields [3] ? fields [3] : text, ip, &port, &family, err, sizeof err) == 0)
        assert (port > 0 && strlen (ip) < sizeof ip);
    return 0;
}
