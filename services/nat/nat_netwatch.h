/*  nat_netwatch: this host's addresses and routes changing, told by the kernel
    (rtnetlink), so nat tries direct paths again soon after a move (a laptop on a
    new Wi-Fi, a DHCP renewal, a VPN of someone else's coming up): issue 15's
    "direct is retried ... 5 s after a local address or route change". Without
    it a relayed peer waits for its next probe round, up to 60 s away.

    Only what can change a path counts: addresses added or removed, and routes of
    the main table, on any interface but the tunnel's own (whose addresses and
    routes Bifrost itself sets while peers come and go). The kernel's own routes
    that follow an address (proto kernel) and the local table are left out: the
    address event already said it. */
#ifndef NAT_NETWATCH_H_INCLUDED
#define NAT_NETWATCH_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _nat_netwatch_t nat_netwatch_t;

//  Listens for changes of every interface but ignore_ifname (NULL: none ignored).
//  NULL with a message in err when the socket cannot be made.
nat_netwatch_t *nat_netwatch_new (const char *ignore_ifname, char *err, size_t err_size);
void nat_netwatch_destroy (nat_netwatch_t **self_p);
int nat_netwatch_fd (nat_netwatch_t *self);

//  Reads what is queued (non-blocking): how many changes counted, 0 when none
//  did; messages not from the kernel are dropped.
int nat_netwatch_read (nat_netwatch_t *self);

//  The changes that count in one buffer of rtnetlink messages (the read above
//  calls it; the self test and the fuzz target feed it bytes). Malformed
//  messages end the walk; never reads past size.
int nat_netwatch_parse (nat_netwatch_t *self, const uint8_t *data, size_t size);

//  Changes counted since new, and messages refused as malformed
uint64_t nat_netwatch_changes (nat_netwatch_t *self);
uint64_t nat_netwatch_malformed (nat_netwatch_t *self);

void nat_netwatch_test (bool verbose);
#endif
