/*  reg_ticket: one-use tickets that open an admin WebSocket. A browser cannot
    set an Authorization header on a WebSocket, and the admin token must not
    travel in a URL (URLs land in logs and history). So the status page asks
    for a ticket with its token in the header (POST /api/v1/mesh/tickets) and
    opens the WebSocket with ?ticket=: the ticket is worth one connection
    within 30 s, and the registry keeps only its hash. At most REG_TICKET_MAX
    are outstanding (an admin can only fill its own table). */
#ifndef REG_TICKET_H_INCLUDED
#define REG_TICKET_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "reg_auth.h"

#define REG_TICKET_TTL_MS 30000
#define REG_TICKET_MAX 64

typedef struct _reg_ticket_t reg_ticket_t;

reg_ticket_t *reg_ticket_new (void);
void reg_ticket_destroy (reg_ticket_t **self_p);

//  A fresh ticket ("bwt_..."), valid until now_ms + REG_TICKET_TTL_MS. 0, or
//  -1 when REG_TICKET_MAX unexpired tickets are outstanding.
int reg_ticket_issue (reg_ticket_t *self, int64_t now_ms, char ticket [REG_TOKEN_TEXT]);
//  True when ticket was issued, is unexpired and unused; it is used up then.
bool reg_ticket_redeem (reg_ticket_t *self, const char *ticket, int64_t now_ms);

void reg_ticket_test (bool verbose);
#endif
