/*  gen_corpus: the file writing that gen_route_corpus and gen_group_corpus
    share (a seed, its one-byte-short and one-byte-long forms, a field's last
    byte flipped), so both corpora are written by the same rules. Not part of
    librouter.a: only the two generators link it. */
#ifndef GEN_CORPUS_H_INCLUDED
#define GEN_CORPUS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "schemas/wire_decl.h"

//  Writes data to dir/name; on failure says so on stderr, as prog
void
    gen_corpus_write (const char *prog, const char *dir, const char *name,
                      const uint8_t *data, size_t size);

//  Writes name, name-short (one byte less) and name-long (a zero byte more);
//  wire must have room for size + 1 bytes. size 0 (the encoder refused):
//  says so on stderr and writes nothing
void
    gen_corpus_seed (const char *prog, const char *dir, const char *name,
                     uint8_t *wire, size_t size);

//  Writes flip-MESSAGE-FIELD: wire with the last byte of field (at base +
//  its offset) flipped; size is at most ROUTE_WIRE_MAX_SIZE
void
    gen_corpus_flip (const char *prog, const char *dir, const uint8_t *wire,
                     size_t size, size_t base, const wire_decl_t *field);

#endif
