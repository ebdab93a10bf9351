/*  dev_pkt: one packet in a batch, a slice of a caller-owned buffer. The device
    never allocates per packet: the caller owns the buffers (pooled, with the
    headroom crypto needs) and the dev_ functions fill or read these slices. */
#ifndef DEV_PKT_H_INCLUDED
#define DEV_PKT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data;
    size_t len;                 //  bytes of packet in data
    size_t size;                //  capacity of data (used by reads)
} dev_pkt_t;

#endif
