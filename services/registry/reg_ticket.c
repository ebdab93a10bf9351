/*  reg_ticket: one-use WebSocket tickets for the status page (see reg_ticket.h). */
#include "reg_ticket.h"
#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char hash [REG_HASH_TEXT];  //  "" = free slot
    int64_t expires_ms;
} s_slot_t;

struct _reg_ticket_t {
    s_slot_t slots [REG_TICKET_MAX];
};

reg_ticket_t *
reg_ticket_new (void)
{
    reg_ticket_t *self = (reg_ticket_t *) calloc (1, sizeof *self);
    assert (self);
    return self;
}

void
reg_ticket_destroy (reg_ticket_t **self_p)
{
    if (*self_p) {
        sodium_memzero (*self_p, sizeof **self_p);
        free (*self_p);
    }
    *self_p = NULL;
}

int
reg_ticket_issue (reg_ticket_t *self, int64_t now_ms, char ticket [REG_TOKEN_TEXT])
{
    for (int i = 0; i < REG_TICKET_MAX; i++) {
        s_slot_t *slot = &self->slots [i];
        if (*slot->hash && slot->expires_ms > now_ms)
            continue;
        reg_auth_token_new ("bwt_", ticket);
        reg_auth_token_hash (ticket, slot->hash);
        slot->expires_ms = now_ms + REG_TICKET_TTL_MS;
        return 0;
    }
    return -1;
}

bool
reg_ticket_redeem (reg_ticket_t *self, const char *ticket, int64_t now_ms)
{
    if (!ticket || strncmp (ticket, "bwt_", 4) != 0 || strlen (ticket) >= REG_TOKEN_TEXT)
        return false;
    char hash [REG_HASH_TEXT];
    reg_auth_token_hash (ticket, hash);
    for (int i = 0; i < REG_TICKET_MAX; i++) {
        s_slot_t *slot = &self->slots [i];
        if (*slot->hash && sodium_memcmp (slot->hash, hash, REG_HASH_TEXT) == 0) {
            bool valid = slot->expires_ms > now_ms;
            memset (slot, 0, sizeof *slot);     //  used, or expired: gone either way
            return valid;
        }
    }
    return false;
}

void
reg_ticket_test (bool verbose)
{
    reg_ticket_t *tickets = reg_ticket_new ();
    char a [REG_TOKEN_TEXT], b [REG_TOKEN_TEXT];
    assert (reg_ticket_issue (tickets, 1000, a) == 0 && strncmp (a, "bwt_", 4) == 0 && strlen (a) == 47);
    assert (reg_ticket_issue (tickets, 1000, b) == 0 && strcmp (a, b) != 0);
    //  One use each
    assert (reg_ticket_redeem (tickets, a, 2000));
    assert (!reg_ticket_redeem (tickets, a, 2000));
    //  Expired, unknown, malformed
    assert (!reg_ticket_redeem (tickets, b, 1000 + REG_TICKET_TTL_MS));
    assert (!reg_ticket_redeem (tickets, "bwt_nothing", 2000));
    assert (!reg_ticket_redeem (tickets, "bpt_x", 2000) && !reg_ticket_redeem (tickets, NULL, 2000));
    assert (!reg_ticket_redeem (tickets, "", 2000));
    //  Bounded: REG_TICKET_MAX outstanding, then no more until one expires or is used
    char last [REG_TOKEN_TEXT];
    for (int i = 0; i < REG_TICKET_MAX; i++)
        assert (reg_ticket_issue (tickets, 5000, last) == 0);
    assert (reg_ticket_issue (tickets, 5000, b) == -1);
    assert (reg_ticket_redeem (tickets, last, 5001));
    assert (reg_ticket_issue (tickets, 5001, b) == 0);
    assert (reg_ticket_issue (tickets, 5001 + REG_TICKET_TTL_MS, b) == 0);   //  the old ones expired
    assert (reg_ticket_redeem (tickets, b, 5002 + REG_TICKET_TTL_MS));
    reg_ticket_destroy (&tickets);
    assert (tickets == NULL);
}
