/*  bus_buffer: a byte buffer that keeps its memory, for a queue slot that holds
    one packet or one batch at a time (crypto's packets waiting for a session,
    bus_pipe's batches handed over in memory). Reused slot after slot, it grows
    once per size class and is never freed per packet: the data path allocates
    nothing in the steady state. */
#ifndef BUS_BUFFER_H_INCLUDED
#define BUS_BUFFER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint8_t *data;
    size_t size;                //  bytes stored
    size_t cap;                 //  bytes allocated
} bus_buffer_t;

//  Replaces the content with len bytes of data, growing the buffer first when
//  it is smaller than len, to at least min_cap (so small packets after small
//  packets never grow it again). Aborts when memory runs out, as the rest of
//  the data path does.
void bus_buffer_store (bus_buffer_t *self, const void *data, size_t len, size_t min_cap);

//  Frees the memory; wipe first overwrites all of it (plaintext waiting for a
//  session). The buffer is empty and usable again.
void bus_buffer_free (bus_buffer_t *self, bool wipe);

void bus_buffer_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
