/*  fuzz_relay_proto: every datagram that reaches a relay worker goes through
    relay_proto_parse first; no byte string may crash it or read past its end, and
    whatever it accepts must re-encode to exactly the same bytes (the format has one
    encoding per message). The credential text parser rides along: it will read
    what the registry hands out, and so does the TCP stream's reassembly (the
    relay's TCP proxy and nat read it from the network): the input as a stream,
    every message it yields parsed as a datagram. */
#include "relay_proto.h"
#include "relay_cred.h"
#include "relay_stream.h"

#include <assert.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static uint8_t out [RELAY_PROTO_MAX_SIZE];
    relay_msg_t msg;
    if (relay_proto_parse (data, size, &msg) == RELAY_PROTO_OK) {
        assert (msg.type >= RELAY_PROTO_TYPE_MIN && msg.type <= RELAY_PROTO_TYPE_MAX);
        size_t n = relay_proto_encode (&msg, out, sizeof out);
        assert (n == size && memcmp (out, data, size) == 0);
        if (msg.type == RELAY_PROTO_DATA)
            assert (msg.payload_size == size - RELAY_PROTO_DATA_HEADER);
    }
    char text [RELAY_CRED_TEXT_MAX + 8];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy (text, data, n);
    text [n] = 0;
    uint64_t expiry, peer;
    uint8_t mac [RELAY_CRED_MAC_SIZE];
    if (relay_cred_parse (text, &expiry, mac) == RELAY_CRED_OK) {
        char again [RELAY_CRED_TEXT_MAX];
        relay_cred_format (expiry, mac, again);
        uint64_t expiry2;
        uint8_t mac2 [RELAY_CRED_MAC_SIZE];
        assert (relay_cred_parse (again, &expiry2, mac2) == RELAY_CRED_OK);
        assert (expiry2 == expiry && memcmp (mac, mac2, sizeof mac) == 0);
    }
    relay_cred_peer_parse (text, &peer);

    static relay_stream_t *stream;
    if (!stream)
        stream = relay_stream_new ();
    size_t fed = 0;
    int rc = 0;
    while (fed < size && rc >= 0) {
        fed += relay_stream_feed (stream, data + fed, size - fed);
        const uint8_t *m;
        size_t m_size;
        while ((rc = relay_stream_next (stream, &m, &m_size)) == 1) {
            assert (m_size >= 1 && m_size <= RELAY_STREAM_MSG_MAX);
            relay_proto_parse (m, m_size, &msg);
        }
    }
    //  A broken stream is dropped, as the proxy disconnects it
    relay_stream_destroy (&stream);
    return 0;
}
