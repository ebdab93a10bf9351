/*  crypto_wire: the fixed binary wire messages of the encrypted tunnel.

    Handshake initiation, handshake response and data packets, laid out like
    WireGuard's (1-byte type, 3 reserved zero bytes, little-endian indices and
    counter), documented byte by byte in docs/wire-format.md. Decoders validate
    sizes, types and reserved bytes strictly: these bytes arrive from the internet
    through `nat` and are the first thing the key-holding process touches.
    The messages are plain value structs, not classes: they own nothing. */
#ifndef CRYPTO_WIRE_H_INCLUDED
#define CRYPTO_WIRE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  The message types, sizes, offsets and the format's other numbers (WIRE_*)
//  are declared once in schemas/wire.def, which nat reads too.
#include "schemas/wire.h"

typedef struct {
    uint32_t sender_index;
    uint8_t ephemeral [WIRE_INITIATION_EPHEMERAL_SIZE];
    uint8_t encrypted_static [WIRE_INITIATION_ENCRYPTED_STATIC_SIZE];
    uint8_t encrypted_timestamp [WIRE_INITIATION_ENCRYPTED_TIMESTAMP_SIZE];
    uint8_t mac1 [WIRE_INITIATION_MAC1_SIZE];
    uint8_t mac2 [WIRE_INITIATION_MAC2_SIZE];
} crypto_wire_initiation_t;

typedef struct {
    uint32_t sender_index;
    uint32_t receiver_index;
    uint8_t ephemeral [WIRE_RESPONSE_EPHEMERAL_SIZE];
    uint8_t encrypted_nothing [WIRE_RESPONSE_ENCRYPTED_NOTHING_SIZE];
    uint8_t mac1 [WIRE_RESPONSE_MAC1_SIZE];
    uint8_t mac2 [WIRE_RESPONSE_MAC2_SIZE];
} crypto_wire_response_t;

typedef struct {
    uint32_t receiver_index;
    uint64_t counter;
    size_t ciphertext_size;         //  plaintext size + 16-byte tag
} crypto_wire_data_t;

//  Message type of a buffer (WIRE_INITIATION, WIRE_RESPONSE or WIRE_DATA) after checking the size for that type
//  and the reserved bytes; -1 with a reason in err if the buffer is not valid.
int crypto_wire_type (const uint8_t *buf, size_t size, char *err, size_t errsize);

void crypto_wire_initiation_encode (const crypto_wire_initiation_t *msg,
                                    uint8_t out [WIRE_INITIATION_SIZE]);
int crypto_wire_initiation_decode (crypto_wire_initiation_t *msg, const uint8_t *buf, size_t size,
                                   char *err, size_t errsize);
void crypto_wire_response_encode (const crypto_wire_response_t *msg,
                                  uint8_t out [WIRE_RESPONSE_SIZE]);
int crypto_wire_response_decode (crypto_wire_response_t *msg, const uint8_t *buf, size_t size,
                                 char *err, size_t errsize);
//  Data: the header is written in front of the ciphertext, in place
void crypto_wire_data_header_encode (uint8_t out [WIRE_DATA_HEADER],
                                     uint32_t receiver_index, uint64_t counter);
int crypto_wire_data_decode (crypto_wire_data_t *msg, const uint8_t *buf, size_t size,
                             char *err, size_t errsize);

//  Little-endian helpers, shared by the crypto classes
void crypto_wire_put32 (uint8_t *p, uint32_t v);
uint32_t crypto_wire_get32 (const uint8_t *p);
void crypto_wire_put64 (uint8_t *p, uint64_t v);
uint64_t crypto_wire_get64 (const uint8_t *p);

void crypto_wire_test (bool verbose);
#endif
