/*  wire_bytes: the little-endian field helpers shared by librouter's codecs
    (route_msg, group_msg). Both read and write the layouts of
    schemas/route_wire.h the same way, so the byte access lives here once;
    static inline so each codec stays one self-contained object file. */
#ifndef WIRE_BYTES_H_INCLUDED
#define WIRE_BYTES_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Reads a little-endian unsigned field of size bytes (at most 8)
static inline uint64_t
wire_get (const uint8_t *p, size_t size)
{
    uint64_t v = 0;
    for (size_t i = 0; i < size; i++)
        v |= (uint64_t) p [i] << (8 * i);
    return v;
}

//  Writes v as a little-endian field of size bytes (at most 8)
static inline void
wire_put (uint8_t *p, size_t size, uint64_t v)
{
    for (size_t i = 0; i < size; i++)
        p [i] = (uint8_t) (v >> (8 * i));
}

//  True when all size bytes are zero (reserved fields must be)
static inline bool
wire_zero (const uint8_t *p, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (p [i])
            return false;
    return true;
}

#endif
