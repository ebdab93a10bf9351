/*  crypto_anycast: the anycast addresses each peer may answer from.

    An anycast address (docs/groups.md) is a unicast address several nodes
    join; a packet to it goes to the nearest member, and that member answers
    from the anycast address. crypto's source check (crypto_allowed) takes a
    peer's packets only from the peer's own prefixes, so the answer would be
    dropped as spoofed. This table keeps, from the router's `group.members`,
    which peers are members of which anycast address, and writes each peer's
    set into crypto_node (crypto_node_peer_anycast_*): a peer may send from an
    anycast address only while the router says it is a member, never from
    another peer's own address. */
#ifndef CRYPTO_ANYCAST_H_INCLUDED
#define CRYPTO_ANYCAST_H_INCLUDED

#include "crypto_node.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRYPTO_ANYCAST_GROUPS   64      //  anycast addresses kept (group.def: 64 groups)
#define CRYPTO_ANYCAST_MEMBERS  64      //  members per address (group.members' list)

typedef struct _crypto_anycast_t crypto_anycast_t;

crypto_anycast_t *crypto_anycast_new (void);
void crypto_anycast_destroy (crypto_anycast_t **self_p);

//  One group.members event: the address's member peer indexes (anycast false,
//  or no member: the address is forgotten). Returns true when the table changed.
//  An address that is not a unicast IPv4/IPv6 address, or one more address than
//  the table holds, is refused (false) and counted.
bool crypto_anycast_update (crypto_anycast_t *self, const char *group, bool anycast,
                            const uint32_t *members, size_t count);

//  Writes every peer's anycast set (0 .. peer_count-1) into the node
void crypto_anycast_apply (const crypto_anycast_t *self, crypto_node_t *node, size_t peer_count);

//  Forgets everything (the router stopped)
void crypto_anycast_clear (crypto_anycast_t *self);

size_t crypto_anycast_size (const crypto_anycast_t *self);
uint64_t crypto_anycast_refused (const crypto_anycast_t *self);

void crypto_anycast_test (bool verbose);
#endif
