/*  bus-config-doc: writes docs/config-reference.md (every config key, from
    schemas/config/) or, with --default, the annotated default file. Run by the
    build, so the reference cannot drift from the code. */
#include "bus_config_schema.h"
#include <string.h>

int
main (int argc, char **argv)
{
    if (argc > 1 && strcmp (argv [1], "--default") == 0)
        bus_cfg_print_default (stdout, NULL);
    else
        bus_cfg_print_reference (stdout);
    return 0;
}
