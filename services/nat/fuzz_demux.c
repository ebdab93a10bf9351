/*  fuzz_demux: every datagram from the internet goes through nat_demux first, before
    anything else looks at it; no byte string may crash it or read past its end. The
    endpoint parser rides along: endpoints will also come from the registry. So does
    nat_netwatch's parser of rtnetlink messages (the kernel's bytes, but a walk of
    lengths that must never read past the end). */
#include "nat_demux.h"
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
    };
    if (type != NAT_DEMUX_DROP) {
        assert (type < NAT_DEMUX_TYPES && size >= min_size [type] && data [0] == type);
        assert (data [1] == 0 && data [2] == 0 && data [3] == 0);
    }
    if (type == NAT_DEMUX_DATA) {
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
