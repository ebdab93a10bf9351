/*  bus_buffer: a byte buffer that keeps its memory (why: bus_buffer.h). */
#include "bus_buffer.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

void
bus_buffer_store (bus_buffer_t *self, const void *data, size_t len, size_t min_cap)
{
    assert (self);
    if (self->cap < len) {
        size_t cap = len < min_cap ? min_cap : len;
        uint8_t *grown = (uint8_t *) realloc (self->data, cap);
        assert (grown);
        self->data = grown;
        self->cap = cap;
    }
    if (len)
        memcpy (self->data, data, len);
    self->size = len;
}

void
bus_buffer_free (bus_buffer_t *self, bool wipe)
{
    assert (self);
    if (self->data && wipe)
        sodium_memzero (self->data, self->cap);
    free (self->data);
    self->data = NULL;
    self->size = self->cap = 0;
}

void
bus_buffer_test (bool verbose)
{
    printf (" * bus_buffer: ");
    bus_buffer_t buffer = { NULL, 0, 0 };
    //  The first store allocates min_cap, smaller ones after it reuse it
    bus_buffer_store (&buffer, "hello", 5, 2048);
    assert (buffer.size == 5 && buffer.cap == 2048 && memcmp (buffer.data, "hello", 5) == 0);
    uint8_t *first = buffer.data;
    bus_buffer_store (&buffer, "hi", 2, 2048);
    assert (buffer.data == first && buffer.size == 2 && memcmp (buffer.data, "hi", 2) == 0);
    //  A larger one grows it to exactly its size, every byte kept
    uint8_t big [5000];
    for (size_t i = 0; i < sizeof big; i++)
        big [i] = (uint8_t) (i * 7);
    bus_buffer_store (&buffer, big, sizeof big, 2048);
    assert (buffer.cap == sizeof big && buffer.size == sizeof big);
    assert (memcmp (buffer.data, big, sizeof big) == 0);
    //  Empty content, then freed (wiped) and usable again
    bus_buffer_store (&buffer, NULL, 0, 2048);
    assert (buffer.size == 0 && buffer.cap == sizeof big);
    bus_buffer_free (&buffer, true);
    assert (!buffer.data && buffer.cap == 0 && buffer.size == 0);
    bus_buffer_free (&buffer, false);       //  twice: no-op
    bus_buffer_store (&buffer, "x", 1, 1);
    assert (buffer.cap == 1 && buffer.data [0] == 'x');
    bus_buffer_free (&buffer, false);
    printf ("OK\n");
}
