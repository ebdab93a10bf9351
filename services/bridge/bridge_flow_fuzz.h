/*  bridge_flow_fuzz: what fuzz_bridge_flow and its corpus generator
    (bridge_flow_corpus) share, so stored seeds are datagrams the target
    accepts and coverage starts past the tag. Header-only test scaffolding.

    An input: one flags byte (bit 0: AES-256-GCM, when the CPU has it), then
    datagrams, each as a 2-byte LE length and its bytes; what is left after the
    last whole one is one more datagram. All go to one flow of the peer role,
    in order, so replays and reordering are reached. */
#ifndef BRIDGE_FLOW_FUZZ_H_INCLUDED
#define BRIDGE_FLOW_FUZZ_H_INCLUDED

#include "bridge_flow.h"
#include <sodium.h>

#define BRIDGE_FUZZ_AES     0x01

static inline void
bridge_fuzz_key (uint8_t key [32])
{
    for (int i = 0; i < 32; i++)
        key [i] = (uint8_t) (0xB0 + 3 * i);
}

static inline bridge_cipher_t
bridge_fuzz_cipher (uint8_t flags)
{
    return (flags & BRIDGE_FUZZ_AES) && crypto_aead_aes256gcm_is_available ()
        ? BRIDGE_CIPHER_AES256GCM : BRIDGE_CIPHER_CHACHA20POLY1305;
}
#endif
