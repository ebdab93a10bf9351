/*  fuzz_demux: every datagram from the internet goes through nat_demux first, before
    anything else looks at it; no byte string may crash it or read past its end. The
    routing header's codec and nat's transit decision ride along (nat_routed.h,
    nat_transit.h), and so does the endpoint parser: endpoints will also come
    from the registry. So does
    nat_netwatch's parser of rtnetlink messages (the kernel's bytes, but a walk of
    lengths that must never read past the end). */
#include "nat_demux.h"
#include "nat_routed.h"
#include "nat_transit.h"
#include "nat_endpoint.h"
#include "nat_netwatch.h"

#include <assert.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static nat_demux_t *demux;
    if (!demux)
        demux = nat_demux_new ();
    uint32_t receiver = 0;
    nat_demux_type_t type = nat_demux_classify (demux, data, size, &receiver);
    //  What passes must have the shape crypto relies on: at least the size
    //  schemas/wire.def declares for its type, and a data message's receiver
    //  index read from the declared offset
    static const size_t min_size [NAT_DEMUX_TYPES] = {
        [NAT_DEMUX_INITIATION] = WIRE_INITIATION_SIZE, [NAT_DEMUX_RESPONSE] = WIRE_RESPONSE_SIZE,
        [NAT_DEMUX_COOKIE] = WIRE_COOKIE_SIZE, [NAT_DEMUX_DATA] = WIRE_DATA_SIZE,
        [NAT_DEMUX_ROUTED] = WIRE_ROUTED_SIZE + WIRE_HEADER_SIZE, [NAT_DEMUX_ANNOUNCE] = WIRE_ANNOUNCE_SIZE,
        [NAT_DEMUX_FLOOD] = WIRE_FLOOD_SIZE,
    };
    if (type != NAT_DEMUX_DROP) {
        assert (type < NAT_DEMUX_TYPES && size >= min_size [type] && data [0] == type);
        //  (a routing header's byte 1 is its TTL)
        assert ((type == NAT_DEMUX_ROUTED || data [1] == 0) && data [2] == 0 && data [3] == 0);
    }
    //  A routing header: what the codec takes re-encodes to the same bytes, and
    //  carries a message the demux takes itself; the transit decision on it
    //  never crashes, whatever the ids say
    nat_routed_t hdr;
    nat_routed_reason_t why = nat_routed_decode (data, size, &hdr);
    assert ((why == NAT_ROUTED_OK) == (type == NAT_DEMUX_ROUTED));
    if (why == NAT_ROUTED_OK && size <= 70000) {
        static uint8_t again [70000];
        size_t n = nat_routed_encode (&hdr, hdr.message, hdr.message_size, again, sizeof again);
        assert (n == size && memcmp (again, data, size) == 0);
        nat_demux_type_t inner = nat_demux_check (hdr.message, hdr.message_size, NULL, NULL);
        assert (inner == NAT_DEMUX_INITIATION || inner == NAT_DEMUX_RESPONSE || inner == NAT_DEMUX_DATA
                || inner == NAT_DEMUX_ANNOUNCE || inner == NAT_DEMUX_FLOOD);
        static nat_transit_t *transit;
        if (!transit) {
            transit = nat_transit_new (true, 1000, 1000000);
            uint32_t hop = 1;
            nat_transit_set_route (transit, 0, 0x0101010101010101ULL, data [4] | 0x1ULL, 8, &hop, 1);
        }
        nat_transit_set_id (transit, data [12] % 4, hdr.source);
        uint32_t index;
        nat_transit_verdict_t v = nat_transit_judge (transit, &hdr, data [13] % 3, size, data [14], &index);
        assert (v < NAT_TRANSIT_VERDICTS);
        assert ((v != NAT_TRANSIT_FORWARD && v != NAT_TRANSIT_DELIVER) || index < NAT_TRANSIT_PEERS);
    }
    if (type == NAT_DEMUX_DATA || type == NAT_DEMUX_ANNOUNCE || type == NAT_DEMUX_FLOOD) {
        const uint8_t *p = data + WIRE_DATA_RECEIVER_INDEX;
        assert (receiver == ((uint32_t) p [0] | (uint32_t) p [1] << 8 | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 24));
    }
    static nat_netwatch_t *netwatch;
    char werr [200];
    if (!netwatch)
        netwatch = nat_netwatch_new (NULL, werr, sizeof werr);
    if (netwatch)
        assert (nat_netwatch_parse (netwatch, data, size) >= 0);
    //  The same bytes as endpoint text (NUL-terminated copy)
    char text [300];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy (text, data, n);
    text [n] = 0;
    nat_endpoint_t ep;
    char err [160], out [NAT_ENDPOINT_TEXT_MAX];
    if (nat_endpoint_parse (&ep, text, err, sizeof err) == 0) {
        nat_endpoint_format (&ep, out, sizeof out);
        nat_endpoint_t again;
        assert (nat_endpoint_parse (&again, out, err, sizeof err) == 0);
        assert (nat_endpoint_eq (&ep, &again));
    }
    return 0;
}
