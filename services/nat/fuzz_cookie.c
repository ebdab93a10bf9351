/*  fuzz_cookie: cookie replies come from anyone on the internet and nat opens
    them (nat_cookie_reply.c, nat_cookie_path.c): no byte string may crash the
    reader or read past its end, and only a reply sealed under the key and mac1
    it was made for opens. The jar's matching rides along. Seeds:
    fuzz/corpus/fuzz_cookie/ (services/nat/gen_cookie_corpus.py). */
#include "nat_cookie_reply.h"
#include "nat_cookie_jar.h"

#include <assert.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  The key and mac1 the seeds were sealed for: key ("cookie--", 32 x 0x42), mac1 a0 .. af
    static uint8_t key [NAT_HS_KEY_SIZE], mac1 [NAT_HS_MAC_SIZE];
    static nat_cookie_jar_t *jar;
    if (!jar) {
        uint8_t pub [NAT_HS_KEY_SIZE];
        memset (pub, 0x42, sizeof pub);
        nat_hs_mac_key ("cookie--", pub, key);
        for (int i = 0; i < NAT_HS_MAC_SIZE; i++)
            mac1 [i] = (uint8_t) (0xA0 + i);
        jar = nat_cookie_jar_new ();
    }
    uint32_t index;
    uint8_t cookie [NAT_HS_MAC_SIZE];
    int shaped = nat_cookie_reply_receiver (data, size, &index);
    int opened = nat_cookie_reply_read (data, size, key, mac1, cookie);
    assert (opened == -1 || shaped == 0);           //  what opens has the shape
    if (shaped == 0) {
        assert (size == WIRE_COOKIE_SIZE && data [0] == WIRE_COOKIE);
        uint32_t peer;
        uint8_t got [NAT_HS_MAC_SIZE];
        if (nat_cookie_jar_match (jar, index, 1000, &peer, got))
            nat_cookie_jar_store (jar, peer, cookie, 1000);
    }
    //  The same bytes as an initiation crypto sends to peer (index % 64)
    if (size >= WIRE_INITIATION_SIZE && size >= 1) {
        uint8_t msg [WIRE_INITIATION_SIZE];
        memcpy (msg, data, sizeof msg);
        nat_cookie_jar_sent (jar, data [0] % 64, msg, sizeof msg, 1000);
    }
    return 0;
}
