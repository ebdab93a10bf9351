/*  bus-schema-doc: prints the bus protocol reference generated from schemas/,
    so docs/bus-protocol.md can never disagree with the code. Run by the build. */
#include "bus_schema.h"

int
main (void)
{
    bus_schema_markdown (stdout);
    return 0;
}
