/*  reg_alloc: virtual IPv4 addresses of one network, as a bitmap over the
    network's CIDR. The registry keeps one pool per network in memory (loaded
    from SQLite on first use) so an allocation is a word scan from a hint, not a
    table scan: at 10,000 peers a SQL "first gap" query costs a millisecond per
    registration. SQLite's UNIQUE (network, vip) stays the final guard. The
    network and broadcast addresses are never handed out. */
#ifndef REG_ALLOC_H_INCLUDED
#define REG_ALLOC_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Smallest and largest pools we accept: /8 (16M addresses, a 2 MiB bitmap)
//  down to /30 (two usable addresses).
#define REG_PREFIX_MIN 8
#define REG_PREFIX_MAX 30

//  Parses "a.b.c.d/len" strictly: four decimal octets without leading zeros,
//  len in REG_PREFIX_MIN..REG_PREFIX_MAX, no host bits set. 0, or -1 with a
//  reason in err. net is in host byte order.
int reg_cidr_parse (const char *text, uint32_t *net, int *prefix, char *err, size_t errsize);
//  Parses a dotted IPv4 address (host order). 0 or -1.
int reg_ip_parse (const char *text, uint32_t *ip);
//  Writes "a.b.c.d" into buf (at least 16 bytes).
void reg_ip_format (uint32_t ip, char *buf, size_t size);

typedef struct _reg_alloc_t reg_alloc_t;

reg_alloc_t *reg_alloc_new (uint32_t net, int prefix);
void reg_alloc_destroy (reg_alloc_t **self_p);

//  Number of usable addresses and of addresses in use.
uint32_t reg_alloc_capacity (reg_alloc_t *self);
uint32_t reg_alloc_used (reg_alloc_t *self);
//  True when ip is a usable host address of the pool.
bool reg_alloc_contains (reg_alloc_t *self, uint32_t ip);
//  Marks ip as used (loading from the database). -1 if outside or already used.
int reg_alloc_mark (reg_alloc_t *self, uint32_t ip);
//  Takes `preferred` when it is free (a returning key), else the lowest free
//  address at or after the hint. Returns the address, or 0 when the pool is full.
uint32_t reg_alloc_take (reg_alloc_t *self, uint32_t preferred);
//  Gives an address back.
void reg_alloc_release (reg_alloc_t *self, uint32_t ip);

void reg_alloc_test (bool verbose);
#endif
