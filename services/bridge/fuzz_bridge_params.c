/*  fuzz_bridge_params: the request parser reads a stranger's query and header
    before anything else does. Input: the query, then optionally '\n' and the
    Authorization header's value. No input may crash it or read past size; a
    refusal always has a declared close code and a printable reason that fits a
    close frame; an acceptance always has exactly one far end, a target that
    parses again to itself, a token and no reason. Seeds: gen_bridge_corpus.sh. */
#include "bridge_params.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static bridge_params_t *params;
    if (!params)
        params = bridge_params_new ();
    const uint8_t *nl = memchr (data, '\n', size);
    size_t query_size = nl ? (size_t) (nl - data) : size;
    char *header = NULL;
    if (nl) {
        size_t n = size - query_size - 1;
        header = malloc (n + 1);
        assert (header);
        memcpy (header, nl + 1, n);
        header [n] = 0;
    }
    //  The query is copied to its exact size so ASan sees a read past it
    char *query = malloc (query_size ? query_size : 1);
    assert (query);
    memcpy (query, data, query_size);
    bridge_params_set_allow_loopback (params, size % 2 == 1);
    int code = bridge_params_parse (params, query, query_size, header);
    const char *reason = bridge_params_reason (params);
    assert (strlen (reason) <= BRIDGE_REASON_MAX);
    if (code) {
        assert (bridge_close_reason (code) && *reason);
        for (const char *p = reason; *p; p++)
            assert (*p >= 0x20 && *p < 0x7f);
        assert (!bridge_params_token (params));
    }
    else {
        assert (!*reason && bridge_params_token (params));
        assert (bridge_params_has_target (params) != (bridge_params_peer (params) != NULL));
        assert (bridge_params_cipher (params) < BRIDGE_CIPHER_COUNT);
        if (bridge_params_has_target (params)) {
            struct sockaddr_storage addr;
            socklen_t len, len2;
            char err [BRIDGE_REASON_MAX + 1];
            const struct sockaddr *target = bridge_params_target (params, &len2);
            assert (bridge_params_endpoint (bridge_params_target_text (params), &addr, &len, err, sizeof err) == 0);
            assert (len == len2 && memcmp (&addr, target, len) == 0);
        }
    }
    free (query);
    free (header);
    return 0;
}
