/*  reg_alloc: virtual IP pool of one network (see reg_alloc.h). */
#include "reg_alloc.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _reg_alloc_t {
    uint32_t net;               //  network address, host order
    uint32_t size;              //  addresses in the CIDR (incl. network/broadcast)
    uint32_t used;
    uint32_t hint;              //  offset where the next scan starts
    uint64_t *bits;             //  one bit per offset; network/broadcast preset
};

//  Parses one decimal octet of at most 3 digits, no leading zero; advances *p.
static int
s_octet (const char **p)
{
    const char *s = *p;
    if (*s < '0' || *s > '9')
        return -1;
    int value = 0, digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 4) {
        value = value * 10 + (*s - '0');
        s++, digits++;
    }
    if (digits > 3 || value > 255 || (digits > 1 && **p == '0'))
        return -1;
    *p = s;
    return value;
}

static int
s_ip (const char **p, uint32_t *ip)
{
    uint32_t value = 0;
    for (int i = 0; i < 4; i++) {
        if (i > 0) {
            if (**p != '.')
                return -1;
            (*p)++;
        }
        int octet = s_octet (p);
        if (octet < 0)
            return -1;
        value = (value << 8) | (uint32_t) octet;
    }
    *ip = value;
    return 0;
}

int
reg_ip_parse (const char *text, uint32_t *ip)
{
    const char *p = text;
    if (!text || s_ip (&p, ip) || *p)
        return -1;
    return 0;
}

void
reg_ip_format (uint32_t ip, char *buf, size_t size)
{
    snprintf (buf, size, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

int
reg_cidr_parse (const char *text, uint32_t *net, int *prefix, char *err, size_t errsize)
{
    const char *p = text;
    uint32_t ip;
    if (!text || s_ip (&p, &ip) || *p != '/') {
        snprintf (err, errsize, "cidr must look like 10.100.0.0/16");
        return -1;
    }
    p++;
    int len = 0, digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 3)
        len = len * 10 + (*p++ - '0'), digits++;
    if (digits == 0 || *p || (digits > 1 && p [-digits] == '0')) {
        snprintf (err, errsize, "cidr must look like 10.100.0.0/16");
        return -1;
    }
    if (len < REG_PREFIX_MIN || len > REG_PREFIX_MAX) {
        snprintf (err, errsize, "cidr prefix length must be %d..%d", REG_PREFIX_MIN, REG_PREFIX_MAX);
        return -1;
    }
    uint32_t mask = 0xFFFFFFFFu << (32 - len);
    if (ip & ~mask) {
        snprintf (err, errsize, "cidr has host bits set (did you mean %u.%u.%u.%u/%d?)",
                  (ip & mask) >> 24, ((ip & mask) >> 16) & 255, ((ip & mask) >> 8) & 255,
                  ip & mask & 255, len);
        return -1;
    }
    *net = ip;
    *prefix = len;
    return 0;
}

reg_alloc_t *
reg_alloc_new (uint32_t net, int prefix)
{
    assert (prefix >= REG_PREFIX_MIN && prefix <= REG_PREFIX_MAX);
    reg_alloc_t *self = (reg_alloc_t *) calloc (1, sizeof *self);
    assert (self);
    self->net = net;
    self->size = 1u << (32 - prefix);
    self->bits = (uint64_t *) calloc ((self->size + 63) / 64, sizeof (uint64_t));
    assert (self->bits);
    self->bits [0] |= 1;                                        //  network
    self->bits [(self->size - 1) / 64] |= 1ull << ((self->size - 1) % 64);     //  broadcast
    self->hint = 1;
    return self;
}

void
reg_alloc_destroy (reg_alloc_t **self_p)
{
    if (*self_p) {
        free ((*self_p)->bits);
        free (*self_p);
        *self_p = NULL;
    }
}

uint32_t reg_alloc_capacity (reg_alloc_t *self) { return self->size - 2; }
uint32_t reg_alloc_used (reg_alloc_t *self) { return self->used; }

bool
reg_alloc_contains (reg_alloc_t *self, uint32_t ip)
{
    uint32_t off = ip - self->net;
    return ip >= self->net && off > 0 && off < self->size - 1;
}

static bool
s_is_set (reg_alloc_t *self, uint32_t off)
{
    return (self->bits [off / 64] >> (off % 64)) & 1;
}

int
reg_alloc_mark (reg_alloc_t *self, uint32_t ip)
{
    if (!reg_alloc_contains (self, ip))
        return -1;
    uint32_t off = ip - self->net;
    if (s_is_set (self, off))
        return -1;
    self->bits [off / 64] |= 1ull << (off % 64);
    self->used++;
    return 0;
}

uint32_t
reg_alloc_take (reg_alloc_t *self, uint32_t preferred)
{
    if (preferred && reg_alloc_mark (self, preferred) == 0)
        return preferred;
    if (self->used >= self->size - 2)
        return 0;
    size_t words = (self->size + 63) / 64;
    //  Two passes: from the hint to the end, then from the start
    for (int pass = 0; pass < 2; pass++) {
        size_t first = pass == 0 ? self->hint / 64 : 0;
        size_t last = pass == 0 ? words : self->hint / 64 + 1;
        for (size_t w = first; w < last && w < words; w++) {
            if (self->bits [w] == ~0ull)
                continue;
            uint32_t off = (uint32_t) (w * 64 + (size_t) __builtin_ctzll (~self->bits [w]));
            if (off >= self->size)
                break;
            self->bits [w] |= 1ull << (off % 64);
            self->used++;
            self->hint = off + 1 < self->size ? off + 1 : 1;
            return self->net + off;
        }
    }
    return 0;
}

void
reg_alloc_release (reg_alloc_t *self, uint32_t ip)
{
    if (!reg_alloc_contains (self, ip))
        return;
    uint32_t off = ip - self->net;
    if (!s_is_set (self, off))
        return;
    self->bits [off / 64] &= ~(1ull << (off % 64));
    self->used--;
    if (off < self->hint)
        self->hint = off;       //  keep handing out the lowest free address
}

//  ---------------------------------------------------------------------------
void
reg_alloc_test (bool verbose)
{
    char err [120];
    uint32_t net;
    int prefix;
    assert (reg_cidr_parse ("10.100.0.0/16", &net, &prefix, err, sizeof err) == 0);
    assert (net == 0x0A640000 && prefix == 16);
    static const char *bad [] = {
        "", "10.100.0.0", "10.100.0.0/", "10.100.0.0/33", "10.100.0.0/31", "10.0.0.0/7",
        "10.100.0.1/16", "256.1.1.1/24", "10.1.1/24", "10.01.0.0/16", "10.1.0.0/016",
        "10.1.0.0/16x", " 10.1.0.0/16", "10.1.0.0./16", "a.b.c.d/8", "1111.0.0.0/8", NULL
    };
    for (int i = 0; bad [i]; i++) {
        err [0] = 0;
        assert (reg_cidr_parse (bad [i], &net, &prefix, err, sizeof err) == -1);
        assert (*err);
        if (verbose)
            printf ("  '%s': %s\n", bad [i], err);
    }
    assert (reg_cidr_parse ("10.100.0.1/16", &net, &prefix, err, sizeof err) == -1);
    assert (strstr (err, "10.100.0.0/16"));
    uint32_t ip;
    assert (reg_ip_parse ("192.0.2.7", &ip) == 0 && ip == 0xC0000207);
    assert (reg_ip_parse ("192.0.2.7 ", &ip) == -1);
    char text [16];
    reg_ip_format (ip, text, sizeof text);
    assert (strcmp (text, "192.0.2.7") == 0);

    //  A /30 has two usable addresses, then the pool is full
    reg_cidr_parse ("192.0.2.0/30", &net, &prefix, err, sizeof err);
    reg_alloc_t *pool = reg_alloc_new (net, prefix);
    assert (reg_alloc_capacity (pool) == 2);
    assert (reg_alloc_take (pool, 0) == net + 1);
    assert (reg_alloc_take (pool, 0) == net + 2);
    assert (reg_alloc_take (pool, 0) == 0);
    reg_alloc_release (pool, net + 1);
    assert (reg_alloc_take (pool, net + 3) == net + 1);     //  broadcast never given
    reg_alloc_destroy (&pool);
    assert (pool == NULL);

    //  A /16: all distinct, lowest first, preferred honoured, released reused
    reg_cidr_parse ("10.100.0.0/16", &net, &prefix, err, sizeof err);
    pool = reg_alloc_new (net, prefix);
    assert (reg_alloc_capacity (pool) == 65534);
    for (uint32_t i = 1; i <= 65534; i++)
        assert (reg_alloc_take (pool, 0) == net + i);
    assert (reg_alloc_take (pool, 0) == 0);
    assert (reg_alloc_used (pool) == 65534);
    reg_alloc_release (pool, net + 300);
    reg_alloc_release (pool, net + 200);
    assert (reg_alloc_take (pool, 0) == net + 200);
    assert (reg_alloc_take (pool, net + 300) == net + 300);
    assert (reg_alloc_mark (pool, net + 300) == -1);
    assert (reg_alloc_mark (pool, net) == -1);
    assert (reg_alloc_mark (pool, net + 65535) == -1);
    assert (!reg_alloc_contains (pool, 0x0A650001));
    reg_alloc_destroy (&pool);
}
