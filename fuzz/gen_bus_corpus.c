/*  gen_bus_corpus: writes the seed corpora of fuzz_envelope and fuzz_schema: one
    valid envelope and one valid body per schema, plus a few classic traps
    (truncations, lying counts). Run once; the files are committed.
    Usage: gen_bus_corpus DIR   (writes DIR/fuzz_envelope/ and DIR/fuzz_schema/) */
#include "bus_envelope.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void
s_write (const char *dir, const char *name, const uint8_t *data, size_t size)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen (path, "wb");
    if (!f) {
        perror (path);
        exit (1);
    }
    fwrite (data, 1, size, f);
    fclose (f);
}

int
main (int argc, char **argv)
{
    if (argc != 2) {
        fprintf (stderr, "usage: %s DIR\n", argv [0]);
        return 1;
    }
    char env_dir [400], schema_dir [400];
    snprintf (env_dir, sizeof env_dir, "%s/fuzz_envelope", argv [1]);
    snprintf (schema_dir, sizeof schema_dir, "%s/fuzz_schema", argv [1]);
    mkdir (env_dir, 0755);
    mkdir (schema_dir, 0755);
    size_t count;
    const bus_schema_t *const *all = bus_schema_all (&count);
    for (size_t i = 0; i < count; i++) {
        const bus_schema_t *s = all [i];
        uint8_t *msg = calloc (1, s->size);
        //  A minimal but valid message: every string "x", counts 1 where lists exist
        for (const bus_field_t *f = s->fields (); f->name; f++) {
            uint8_t *p = msg + f->offset;
            if (f->type == BUS_FT_STR)
                p [0] = 'x';
            else
            if (f->type == BUS_FT_BIN) {
                uint32_t n = f->max < 8 ? f->max : 8;
                memset (p, 0xab, n);
                memcpy (msg + f->aux_offset, &n, sizeof n);
            }
        }
        uint8_t *body;
        size_t body_size;
        char err [200];
        if (bus_codec_encode (s, msg, &body, &body_size, err, sizeof err)) {
            fprintf (stderr, "%s: %s\n", s->id, err);
            return 1;
        }
        uint8_t *with_selector = malloc (body_size + 1);
        with_selector [0] = (uint8_t) i;
        memcpy (with_selector + 1, body, body_size);
        char name [80];
        snprintf (name, sizeof name, "%s.bin", s->id);
        s_write (schema_dir, name, with_selector, body_size + 1);
        free (with_selector);
        if (s->type) {
            bus_envelope_t *env = bus_envelope_new ("relay.3", "nat.1", s->type, i + 1);
            bus_envelope_set_body (env, body, body_size);
            uint8_t *data;
            size_t size;
            bus_envelope_encode (env, &data, &size);
            s_write (env_dir, name, data, size);
            //  and a truncated one
            snprintf (name, sizeof name, "%s.cut", s->id);
            s_write (env_dir, name, data, size / 2);
            free (data);
            bus_envelope_destroy (&env);
        }
        free (body);
        free (msg);
    }
    const uint8_t liar [] = { 0x96, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff };
    s_write (env_dir, "liar-array.bin", liar, sizeof liar);
    const uint8_t deep [] = { 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x01 };
    s_write (env_dir, "deep.bin", deep, sizeof deep);
    printf ("corpus written to %s and %s\n", env_dir, schema_dir);
    return 0;
}
