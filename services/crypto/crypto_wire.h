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

#define CRYPTO_WIRE_INITIATION      1
#define CRYPTO_WIRE_RESPONSE        2
#define CRYPTO_WIRE_COOKIE          3       //  reserved, not implemented
#define CRYPTO_WIRE_DATA            4

#define CRYPTO_WIRE_KEY_SIZE        32
#define CRYPTO_WIRE_TAG_SIZE        16
#define CRYPTO_WIRE_MAC_SIZE        16
#define CRYPTO_WIRE_TIMESTAMP_SIZE  12      //  TAI64N
#define CRYPTO_WIRE_INITIATION_SIZE 148
#define CRYPTO_WIRE_RESPONSE_SIZE   92
#define CRYPTO_WIRE_DATA_HEADER     16
#define CRYPTO_WIRE_DATA_OVERHEAD   (CRYPTO_WIRE_DATA_HEADER + CRYPTO_WIRE_TAG_SIZE)
#define CRYPTO_WIRE_DATA_MIN        CRYPTO_WIRE_DATA_OVERHEAD   //  keepalive
#define CRYPTO_WIRE_MAX_PLAIN       65535   //  largest inner packet
//  Offsets of mac1 (the bytes before it are what mac1 covers)
#define CRYPTO_WIRE_INITIATION_MAC1 116
#define CRYPTO_WIRE_RESPONSE_MAC1   60
//  Inner MTU for a 1500-byte underlay: 1500 - 40 (IPv6) - 8 (UDP) - 32
#define CRYPTO_WIRE_INNER_MTU       1420

typedef struct {
    uint32_t sender_index;
    uint8_t ephemeral [32];
    uint8_t encrypted_static [32 + 16];
    uint8_t encrypted_timestamp [12 + 16];
    uint8_t mac1 [16];
    uint8_t mac2 [16];
} crypto_wire_initiation_t;

typedef struct {
    uint32_t sender_index;
    uint32_t receiver_index;
    uint8_t ephemeral [32];
    uint8_t encrypted_nothing [16];
    uint8_t mac1 [16];
    uint8_t mac2 [16];
} crypto_wire_response_t;

typedef struct {
    uint32_t receiver_index;
    uint64_t counter;
    size_t ciphertext_size;         //  plaintext size + 16-byte tag
} crypto_wire_data_t;

//  Message type of a buffer (1, 2 or 4) after checking the size for that type
//  and the reserved bytes; -1 with a reason in err if the buffer is not valid.
int crypto_wire_type (const uint8_t *buf, size_t size, char *err, size_t errsize);

void crypto_wire_initiation_encode (const crypto_wire_initiation_t *msg,
                                    uint8_t out [CRYPTO_WIRE_INITIATION_SIZE]);
int crypto_wire_initiation_decode (crypto_wire_initiation_t *msg, const uint8_t *buf, size_t size,
                                   char *err, size_t errsize);
void crypto_wire_response_encode (const crypto_wire_response_t *msg,
                                  uint8_t out [CRYPTO_WIRE_RESPONSE_SIZE]);
int crypto_wire_response_decode (crypto_wire_response_t *msg, const uint8_t *buf, size_t size,
                                 char *err, size_t errsize);
//  Data: the header is written in front of the ciphertext, in place
void crypto_wire_data_header_encode (uint8_t out [CRYPTO_WIRE_DATA_HEADER],
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
