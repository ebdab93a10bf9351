/*  nat_tried: the addresses tried for a direct path to a peer, bounded, and
    their results in words (nat_tried.h). Pure: the caller gives the times. */
#include "nat_tried.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <string.h>

const char *
nat_tried_kind_name (nat_tried_kind_t kind)
{
    switch (kind) {
        case NAT_TRIED_DIALLED:     return "dialled";
        case NAT_TRIED_SEEN:        return "relay-seen";
        case NAT_TRIED_REGISTERED:  return "registered";
        case NAT_TRIED_PREDICTED:   return "predicted";
        default:                    return "?";
    }
}

static void
s_set_port (nat_addr_t *addr, uint16_t port)
{
    if (nat_addr_family (addr) == AF_INET)
        addr->in4.sin_port = htons (port);
    else
    if (nat_addr_family (addr) == AF_INET6)
        addr->in6.sin6_port = htons (port);
}

bool
nat_tried_covers (const nat_tried_t *entry, const nat_addr_t *addr)
{
    if (!nat_addr_is_set (addr))
        return false;
    if (entry->ports <= 1)
        return nat_addr_eq (&entry->addr, addr);
    uint32_t first = nat_addr_port (&entry->addr), port = nat_addr_port (addr);
    if (port < first || port >= first + entry->ports)
        return false;
    nat_addr_t same = *addr;
    s_set_port (&same, (uint16_t) first);
    return nat_addr_eq (&entry->addr, &same);
}

void
nat_tried_note (nat_tried_list_t *self, nat_tried_kind_t kind, const nat_addr_t *addr,
                uint16_t ports, int64_t now)
{
    if (!nat_addr_family (addr) || ports == 0)
        return;                         //  unset, or a relay's or ICE's pseudo-address
    nat_tried_t *found = NULL;
    for (size_t k = 0; k < self->count && !found; k++) {
        nat_tried_t *e = &self->entry [k];
        if (e->kind != kind)
            continue;
        if (kind == NAT_TRIED_PREDICTED) {
            //  One range per host: grown to cover this window too
            nat_addr_t host = *addr;
            s_set_port (&host, nat_addr_port (&e->addr));
            if (!nat_addr_eq (&host, &e->addr))
                continue;
            uint32_t lo = nat_addr_port (&e->addr), hi = lo + e->ports;
            uint32_t a = nat_addr_port (addr), b = a + ports;
            lo = a < lo ? a : lo;
            hi = b > hi ? b : hi;
            s_set_port (&e->addr, (uint16_t) lo);
            e->ports = (uint16_t) (hi - lo > 65535 ? 65535 : hi - lo);
            found = e;
        }
        else
        if (nat_addr_eq (&e->addr, addr))
            found = e;
    }
    if (!found) {
        if (self->count == NAT_TRIED_MAX) {
            //  Full: the entry tried least recently goes
            size_t oldest = 0;
            for (size_t k = 1; k < self->count; k++)
                if (self->entry [k].last_ms < self->entry [oldest].last_ms)
                    oldest = k;
            memmove (&self->entry [oldest], &self->entry [oldest + 1],
                     (self->count - oldest - 1) * sizeof self->entry [0]);
            self->count--;
        }
        found = &self->entry [self->count++];
        memset (found, 0, sizeof *found);
        found->addr = *addr;
        found->ports = kind == NAT_TRIED_PREDICTED ? ports : 1;
        found->kind = (uint8_t) kind;
        found->first_ms = now;
    }
    found->rounds++;
    found->last_ms = now;
}

//  Appends to out what fits (snprintf's truncation, never past size)
static void
s_append (char *out, size_t size, const char *text)
{
    size_t used = strlen (out);
    if (used + 1 < size)
        snprintf (out + used, size - used, "%s", text);
}

char *
nat_tried_format (const nat_tried_list_t *self, const nat_addr_t *in_use, int64_t now,
                  char *out, size_t size)
{
    assert (size);
    *out = 0;
    for (size_t k = 0; k < self->count; k++) {
        const nat_tried_t *e = &self->entry [k];
        char addr [NAT_ADDR_TEXT_MAX], item [200];
        nat_addr_format (&e->addr, addr, sizeof addr);
        if (e->ports > 1) {
            char last [16];
            snprintf (last, sizeof last, "-%u", (unsigned) (nat_addr_port (&e->addr) + e->ports - 1));
            s_append (addr, sizeof addr, last);
        }
        const char *result = in_use && nat_tried_covers (e, in_use) ? "answered (in use)"
                           : now - e->last_ms < 1000 ? "trying" : "no answer";
        int64_t ago = now - e->last_ms;
        snprintf (item, sizeof item, "%s%s %s: %u round%s, last %lld.%lld s ago, %s", *out ? "; " : "",
                  nat_tried_kind_name ((nat_tried_kind_t) e->kind), addr, e->rounds, e->rounds == 1 ? "" : "s",
                  (long long) (ago / 1000), (long long) (ago % 1000 / 100), result);
        s_append (out, size, item);
    }
    return out;
}

void
nat_tried_format_untried (char *out, size_t size, const char *kind, const char *addr, const char *why)
{
    char item [300];
    snprintf (item, sizeof item, "%s%s %s: not tried: %s", *out ? "; " : "", kind, addr, why);
    s_append (out, size, item);
}

//  ---------------------------------------------------------------------------
void
nat_tried_test (bool verbose)
{
    if (verbose)
        printf (" * nat_tried: ");
    nat_tried_list_t list = { .count = 0 };
    nat_addr_t seen, reg, pred, other;
    assert (nat_addr_set_ip (&seen, "203.0.113.7", 40001) == 0);
    assert (nat_addr_set_ip (&reg, "10.0.0.2", 51820) == 0);
    assert (nat_addr_set_ip (&pred, "203.0.113.7", 40002) == 0);
    char out [600];
    assert (*nat_tried_format (&list, NULL, 0, out, sizeof out) == 0);

    //  Rounds of one address are one entry
    nat_tried_note (&list, NAT_TRIED_SEEN, &seen, 1, 1000);
    nat_tried_note (&list, NAT_TRIED_REGISTERED, &reg, 1, 1000);
    nat_tried_note (&list, NAT_TRIED_SEEN, &seen, 1, 3000);
    assert (list.count == 2 && list.entry [0].rounds == 2 && list.entry [0].last_ms == 3000);
    nat_tried_format (&list, NULL, 3500, out, sizeof out);
    assert (strcmp (out, "relay-seen 203.0.113.7:40001: 2 rounds, last 0.5 s ago, trying; "
                         "registered 10.0.0.2:51820: 1 round, last 2.5 s ago, no answer") == 0);
    //  Predicted windows of one host merge into one range
    nat_tried_note (&list, NAT_TRIED_PREDICTED, &pred, 16, 4000);
    nat_addr_t pred2 = pred;
    pred2.in4.sin_port = htons (40018);
    nat_tried_note (&list, NAT_TRIED_PREDICTED, &pred2, 16, 6000);
    assert (list.count == 3 && list.entry [2].ports == 32 && list.entry [2].rounds == 2);
    assert (nat_addr_port (&list.entry [2].addr) == 40002);
    //  The address in use answered; in a range too
    nat_addr_t hit = pred;
    hit.in4.sin_port = htons (40020);
    assert (nat_tried_covers (&list.entry [2], &hit));
    hit.in4.sin_port = htons (40034);
    assert (!nat_tried_covers (&list.entry [2], &hit));
    hit.in4.sin_port = htons (40020);
    nat_tried_format (&list, &hit, 9000, out, sizeof out);
    assert (strstr (out, "predicted 203.0.113.7:40002-40033: 2 rounds, last 3.0 s ago, answered (in use)"));
    assert (strstr (out, "relay-seen 203.0.113.7:40001: 2 rounds, last 6.0 s ago, no answer"));
    nat_tried_format (&list, &reg, 9000, out, sizeof out);
    assert (strstr (out, "10.0.0.2:51820: 1 round, last 8.0 s ago, answered (in use)"));
    //  Not tried, with why
    nat_tried_format_untried (out, sizeof out, "registered", "[2001:db8::2]:51820", "its turn has not come");
    assert (strstr (out, "; registered [2001:db8::2]:51820: not tried: its turn has not come"));
    //  Bounded: the least recently tried goes
    for (int k = 0; k < 10; k++) {
        assert (nat_addr_set_ip (&other, "198.51.100.1", (uint16_t) (1000 + k)) == 0);
        nat_tried_note (&list, NAT_TRIED_REGISTERED, &other, 1, 10000 + k);
    }
    assert (list.count == NAT_TRIED_MAX);
    assert (nat_addr_port (&list.entry [0].addr) == 1002 && nat_addr_port (&list.entry [7].addr) == 1009);
    //  A short buffer truncates, never overflows
    char tiny [24];
    nat_tried_format (&list, NULL, 20000, tiny, sizeof tiny);
    assert (strlen (tiny) == sizeof tiny - 1);
    //  Unset and pseudo-addresses and empty ranges are not noted
    nat_addr_clear (&other);
    nat_tried_note (&list, NAT_TRIED_SEEN, &other, 1, 1);
    nat_addr_set_relay (&other, 0x1234);
    nat_tried_note (&list, NAT_TRIED_DIALLED, &other, 1, 1);
    nat_tried_note (&list, NAT_TRIED_PREDICTED, &pred, 0, 1);
    assert (list.count == NAT_TRIED_MAX);
    if (verbose)
        printf ("OK\n");
}
