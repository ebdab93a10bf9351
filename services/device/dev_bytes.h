/*  dev_bytes: 16- and 32-bit header fields in network byte order, read and
    written byte by byte (a header in a batch need not be aligned). Written once
    for every class that parses headers (TSO split, GRO, peer map). */
#ifndef DEV_BYTES_H_INCLUDED
#define DEV_BYTES_H_INCLUDED

#include <stdint.h>

static inline uint16_t
dev_get16 (const uint8_t *p)
{
    return (uint16_t) (p [0] << 8 | p [1]);
}

static inline void
dev_put16 (uint8_t *p, uint16_t v)
{
    p [0] = (uint8_t) (v >> 8);
    p [1] = (uint8_t) v;
}

static inline uint32_t
dev_get32 (const uint8_t *p)
{
    return (uint32_t) p [0] << 24 | (uint32_t) p [1] << 16 | (uint32_t) p [2] << 8 | p [3];
}

static inline void
dev_put32 (uint8_t *p, uint32_t v)
{
    p [0] = (uint8_t) (v >> 24); p [1] = (uint8_t) (v >> 16); p [2] = (uint8_t) (v >> 8); p [3] = (uint8_t) v;
}

#endif
