/*  bus-config-doc: writes docs/config-reference.md (every config key, from
    schemas/config/), with --default the annotated default file, with --man the
    man page bifrost.cfg(5). Run by the build, so neither can drift from the code. */
#include "config.h"
#include "bus_config_schema.h"
#include <string.h>

int
main (int argc, char **argv)
{
    if (argc > 1 && strcmp (argv [1], "--default") == 0)
        bus_cfg_print_default (stdout, NULL);
    else
    if (argc > 1 && strcmp (argv [1], "--man") == 0)
        bus_cfg_print_man (stdout, PACKAGE_VERSION);
    else
        bus_cfg_print_reference (stdout);
    return 0;
}
