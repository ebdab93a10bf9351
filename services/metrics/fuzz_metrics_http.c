/*  fuzz_metrics_http: metrics_http_parse on any bytes (a scrape's request
    head comes from whoever reaches metrics.listen). It must never read past
    len, and what it returns must be within it. */
#include "metrics_http.h"
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  A copy of exactly size bytes, so ASan sees a read past the end
    char *buf = (char *) malloc (size ? size : 1);
    memcpy (buf, data, size);
    metrics_request_t request;
    size_t used = metrics_http_parse (buf, size, &request);
    assert (used <= size);
    if (used)
        assert (request.status >= 200 && request.status < 600 && strlen (request.path) < METRICS_HTTP_PATH_MAX);
    free (buf);
    return 0;
}
