/*  fuzz_ctl_http: ctl_http_parse on any bytes (what a registry, or whatever
    answers at the URL an operator typed, sends to bifrostctl join). It must
    never read past len, and a body it returns is within the input. */
#include "ctl_http.h"
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *buf = (char *) malloc (size ? size : 1);
    memcpy (buf, data, size);
    int status;
    char *body;
    size_t body_size;
    char err [200];
    if (ctl_http_parse (buf, size, &status, &body, &body_size, err, sizeof err) == 0) {
        assert (body && body_size <= size && body [body_size] == 0 && status >= 100 && status <= 999);
        free (body);
    }
    free (buf);
    return 0;
}
