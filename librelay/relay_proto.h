/*  relay_proto: the relay's wire messages, a fixed binary format (WireGuard style).
    The relay parses bytes from anyone on the internet, so every message has one
    exact size (or a minimum for DATA and PING), and the parser checks every byte it
    relies on before reading it and says why it refused.

    All integers are little-endian, like the tunnel's wire format (docs/wire-format.md).
    Every message starts with the same 4-byte header:

        offset size field
        0      1    type        8..14, see below
        1      1    version     1
        2      2    reserved    zero (checked)

    Type numbers 8..14 sit in the range RFC 7983/9443 leave unassigned (4..15): the
    tunnel uses 1..4 (with three zero bytes after it), STUN 0..3, DTLS 20..63, TURN
    ChannelData 64..79, QUIC 80..127 and 192..255, RTP 128..191. nat can therefore
    tell relay traffic from direct tunnel traffic and STUN on one socket by the first
    byte alone.

    Every message a client sends to the relay (REGISTER, DATA, PING) carries its
    network at offset 4: the 32-bit word there is the low half of the network tag
    (REGISTER has the whole 8-byte tag, DATA and PING its low 4 bytes). A reuseport
    steering program (classic BPF: load the word at offset 4, modulo the worker
    count; relay_worker_steer) thereby sends all traffic of one network to one
    worker, the one that holds that network's registrations (docs/relay.md,
    "Workers").

    REGISTER (8), client -> relay, 68 bytes
        0   4   header
        4   8   network     network tag: first 8 bytes of BLAKE2b-256 (network id text)
        12  8   peer        the registry's peer id (16 hex digits = 8 bytes)
        20  8   expiry      Unix seconds; the credential is refused after it
        28  8   nonce       chosen by the client, echoed in REGISTERED
        36  32  mac         HMAC-SHA-256 credential (relay_cred.h)

    REGISTERED (9), relay -> client, 40 bytes (smaller than the REGISTER causing it)
        0   4   header
        4   8   peer        echoed
        12  8   nonce       echoed
        20  20  observed    address, see "address" below

    ESTABLISHED (10), relay -> client, 32 bytes: the other peer of a session
        0   4   header
        4   8   peer        the other peer's id
        12  20  observed    the other peer's observed address

    DATA (11), both ways, 16 + n bytes (n >= 0, opaque: the tunnel's ciphertext)
        0   4   header
        4   4   net32       low 4 bytes of the network tag (the relay checks it)
        8   8   peer        to the relay: destination; from the relay: the source
        16  n   payload

    PING (12), client -> relay, 24 + p bytes (p bytes of padding, ignored: PMTU probes)
        0   4   header
        4   4   net32       low 4 bytes of the network tag
        8   8   peer        the sender's id (must be registered from this address)
        16  8   nonce       echoed in PONG

    PONG (13), relay -> client, 20 bytes (never larger than the PING)
        0   4   header
        4   8   peer        echoed
        12  8   nonce       echoed

    ERROR (14), relay -> client, 16 bytes; sent only to a registered address and only
    in answer to a datagram at least as large
        0   4   header
        4   2   code        relay_proto_code_t
        6   2   reserved    zero
        8   8   peer        the peer id the error is about

    address (20 bytes)
        0   1   family      4 or 6
        1   1   reserved    zero
        2   2   port        little-endian, like every integer here
        4   16  address     IPv6: 16 bytes; IPv4: 4 bytes then 12 zero bytes
*/
#ifndef RELAY_PROTO_H_INCLUDED
#define RELAY_PROTO_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RELAY_PROTO_VERSION         1
#define RELAY_PROTO_REGISTER        8
#define RELAY_PROTO_REGISTERED      9
#define RELAY_PROTO_ESTABLISHED     10
#define RELAY_PROTO_DATA            11
#define RELAY_PROTO_PING            12
#define RELAY_PROTO_PONG            13
#define RELAY_PROTO_ERROR           14
#define RELAY_PROTO_TYPE_MIN        RELAY_PROTO_REGISTER
#define RELAY_PROTO_TYPE_MAX        RELAY_PROTO_ERROR

#define RELAY_PROTO_HEADER_SIZE     4
#define RELAY_PROTO_MAC_SIZE        32
#define RELAY_PROTO_ADDR_SIZE       20
#define RELAY_PROTO_REGISTER_SIZE   68
#define RELAY_PROTO_REGISTERED_SIZE 40
#define RELAY_PROTO_ESTABLISHED_SIZE 32
#define RELAY_PROTO_DATA_HEADER     16
#define RELAY_PROTO_PING_MIN        24
#define RELAY_PROTO_PONG_SIZE       20
#define RELAY_PROTO_ERROR_SIZE      16
#define RELAY_PROTO_STEER_OFFSET    4       //  the network word, in every client message
#define RELAY_PROTO_DATA_PEER       8       //  DATA: the peer id
#define RELAY_PROTO_MAX_SIZE        65507   //  largest UDP payload over IPv4

//  Why a datagram was refused by the parser
typedef enum {
    RELAY_PROTO_OK = 0,
    RELAY_PROTO_TOO_SHORT,          //  shorter than the header or its type's size
    RELAY_PROTO_BAD_TYPE,           //  first byte not 8..14
    RELAY_PROTO_BAD_VERSION,        //  second byte not 1
    RELAY_PROTO_BAD_RESERVED,       //  a reserved field not zero
    RELAY_PROTO_BAD_SIZE,           //  not the exact size of its fixed-size type
    RELAY_PROTO_BAD_ADDRESS,        //  family not 4 or 6, or IPv4 with bytes after the 4th
    RELAY_PROTO_TOO_LONG,           //  larger than RELAY_PROTO_MAX_SIZE
    RELAY_PROTO_ERRORS
} relay_proto_err_t;

//  ERROR codes
typedef enum {
    RELAY_PROTO_CODE_NONE = 0,
    RELAY_PROTO_CODE_UNKNOWN_PEER = 1,  //  the destination is not registered (at this worker)
    RELAY_PROTO_CODE_OTHER_NETWORK = 2, //  the destination is in another network
    RELAY_PROTO_CODE_LIMIT = 3,         //  a rate or session limit dropped the packet
    RELAY_PROTO_CODE_REREGISTER = 4     //  the registration expired: send REGISTER again
} relay_proto_code_t;

//  One parsed message. Only the fields of its type are set; payload points into
//  the parsed buffer (DATA: the payload; PING: the padding).
typedef struct {
    uint8_t type;
    uint64_t peer;
    uint64_t network;               //  REGISTER: the tag; DATA, PING: its low 32 bits
    uint64_t expiry;
    uint64_t nonce;
    uint16_t code;
    uint8_t mac [RELAY_PROTO_MAC_SIZE];
    struct sockaddr_storage addr;   //  REGISTERED, ESTABLISHED: AF_INET or AF_INET6
    socklen_t addr_len;
    const uint8_t *payload;
    size_t payload_size;
} relay_msg_t;

//  Parses one datagram into msg (zeroed first). Never reads past data + size.
relay_proto_err_t relay_proto_parse (const uint8_t *data, size_t size, relay_msg_t *msg);

//  Encodes msg (of msg->type) into buf. DATA: the header, then payload_size bytes
//  of payload; PING: payload_size bytes of padding (zeros when payload is NULL).
//  Returns the size written, or 0 when it does not fit, the type is unknown or the
//  address is not AF_INET/AF_INET6.
size_t relay_proto_encode (const relay_msg_t *msg, uint8_t *buf, size_t cap);

//  DATA's peer id (the caller checked size >= RELAY_PROTO_DATA_HEADER), and its
//  rewrite: the relay forwards DATA in place, replacing the destination by the source.
uint64_t relay_proto_data_peer (const uint8_t *data);
void relay_proto_data_set_peer (uint8_t *data, uint64_t peer);

//  "register", "registered", ..., "unknown"; and the parser's reasons
const char *relay_proto_type_name (uint8_t type);
const char *relay_proto_err_name (relay_proto_err_t err);

void relay_proto_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
