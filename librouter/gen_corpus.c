/*  gen_corpus: the seed files of the route and group corpora (see the header). */
#include "gen_corpus.h"

#include <stdio.h>
#include <string.h>

#include "schemas/route_wire.h"

void
gen_corpus_write (const char *prog, const char *dir, const char *name,
                  const uint8_t *data, size_t size)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen (path, "wb");
    if (!f || fwrite (data, 1, size, f) != size) {
        fprintf (stderr, "%s: cannot write %s\n", prog, path);
        if (f)
            fclose (f);
        return;
    }
    fclose (f);
}

void
gen_corpus_seed (const char *prog, const char *dir, const char *name,
                 uint8_t *wire, size_t size)
{
    if (!size) {
        fprintf (stderr, "%s: %s does not encode\n", prog, name);
        return;
    }
    char seed [128];
    gen_corpus_write (prog, dir, name, wire, size);
    snprintf (seed, sizeof seed, "%s-short", name);
    gen_corpus_write (prog, dir, seed, wire, size - 1);
    wire [size] = 0;
    snprintf (seed, sizeof seed, "%s-long", name);
    gen_corpus_write (prog, dir, seed, wire, size + 1);
}

void
gen_corpus_flip (const char *prog, const char *dir, const uint8_t *wire,
                 size_t size, size_t base, const wire_decl_t *field)
{
    size_t last = base + (size_t) field->value + (field->size ? (size_t) field->size - 1 : 0);
    uint8_t copy [ROUTE_WIRE_MAX_SIZE];
    memcpy (copy, wire, size);
    copy [last] ^= 0x80;
    char name [128];
    snprintf (name, sizeof name, "flip-%s-%s", field->message, field->id);
    gen_corpus_write (prog, dir, name, copy, size);
}
