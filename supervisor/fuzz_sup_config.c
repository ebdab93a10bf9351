/*  fuzz_sup_config: configuration text, as bifrostd and bifrostctl read it, must
    never crash or hang them, whatever the bytes: the libconfig parse, ${VAR}
    expansion, duration parsing, every getter and the dependency sort.
    The corpus (fuzz/corpus/fuzz_sup_config/) holds the default config, the
    example and the bad configs of the tests. */
#include "sup_config.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
const char *__lsan_default_suppressions (void);

//  libconfig 1.5 leaks lexer buffers when a syntax error interrupts a token
//  (fixed upstream in 1.7); that is not ours to fix, and a config error ends the
//  program anyway. Every other leak is still reported.
const char *
__lsan_default_suppressions (void)
{
    return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *text = malloc (size + 1);
    if (!text)
        return 0;
    memcpy (text, data, size);
    text [size] = 0;
    //  @include reads other files (libconfig 1.5 cannot turn it off): a fuzzer
    //  could name /dev/zero. Real configs are files their owner wrote.
    if (strstr (text, "@include")) {
        free (text);
        return 0;
    }
    char err [512];
    char *expanded = bus_config_expand (text, err, sizeof err);
    free (expanded);
    int64_t ms;
    bus_config_parse_duration (text, &ms);
    bus_config_t *config = bus_config_load_string (text, "fuzz.cfg", err, sizeof err);
    if (config) {
        sup_config_t *sup = sup_config_new (&config);
        for (size_t i = 0; i < sup_config_service_count (sup); i++)
            (void) sup_config_service (sup, i);
        bus_config_t *bus = sup_config_bus (sup);
        for (size_t i = 0; bus_config_error_text (bus, i); i++)
            (void) strlen (bus_config_error_text (bus, i));
        sup_config_destroy (&sup);
    }
    free (text);
    return 0;
}
