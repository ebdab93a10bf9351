/*  rest-schema-doc: prints the reference of the registry's REST bodies generated
    from schemas/rest.def, so docs/rest-bodies.md can never disagree with the code.
    Run by the build. */
#include "rest_schema.h"

int
main (void)
{
    rest_schema_markdown (stdout);
    return 0;
}
