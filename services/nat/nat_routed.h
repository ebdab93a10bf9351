/*  nat_routed: the routing header (schemas/wire.def, ROUTED; docs/routing.md,
    "Transit"). A tunnel message carried through other peers travels behind 20
    bytes that say who sent it, to whom, and how many hops it may still take;
    the transit peers read only that, never the message (it is end-to-end
    encrypted between source and destination). nat writes the header at the
    source, checks and rewrites the TTL at each transit peer and removes it at
    the destination; crypto never sees one. A strict codec: the demux refuses
    with its reason everything nat_routed_decode refuses. */
#ifndef NAT_ROUTED_H_INCLUDED
#define NAT_ROUTED_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "schemas/wire.h"

typedef struct {
    uint8_t ttl;                //  1 .. WIRE_ROUTED_TTL_MAX
    uint64_t source;            //  registry peer ids, not zero, not equal
    uint64_t dest;
    const uint8_t *message;     //  the tunnel message (decode: points into the datagram)
    size_t message_size;
} nat_routed_t;

typedef enum {
    NAT_ROUTED_OK = 0,
    NAT_ROUTED_TOO_SHORT,       //  shorter than the header + a message's 4-byte header
    NAT_ROUTED_BAD_TYPE,        //  not a routing header
    NAT_ROUTED_BAD_TTL,         //  0 or above WIRE_ROUTED_TTL_MAX
    NAT_ROUTED_BAD_RESERVED,    //  bytes 2-3 not zero
    NAT_ROUTED_BAD_ID,          //  a zero id, or source = destination
    NAT_ROUTED_BAD_MESSAGE,     //  what it carries is not an initiation, response, data, announcement or flood frame
                                //  of at least its size (never a cookie reply or another routing header)
    NAT_ROUTED_REASONS
} nat_routed_reason_t;

//  Checks a datagram that starts with the ROUTED type byte; fills *out (the
//  message points into data). NAT_ROUTED_OK or why not.
nat_routed_reason_t nat_routed_decode (const uint8_t *data, size_t size, nat_routed_t *out);

//  Writes the 20-byte header for hdr (message fields ignored) at out.
void nat_routed_encode_header (const nat_routed_t *hdr, uint8_t out [WIRE_ROUTED_MESSAGE]);

//  Header + message into out (capacity bytes); the bytes written, 0 when it
//  does not fit or the header would be refused.
size_t nat_routed_encode (const nat_routed_t *hdr, const uint8_t *message, size_t size,
                          uint8_t *out, size_t capacity);

//  "ok", "too short", ...
const char *nat_routed_reason_name (nat_routed_reason_t reason);

void nat_routed_test (bool verbose);
#endif
