/*  registry_selftest: the self tests of every registry class. */
#include "tests/selftest.h"
#include "reg_alloc.h"
#include "reg_turn.h"
#include "reg_relay.h"
#include "reg_validate.h"
#include "reg_auth.h"
#include "reg_challenge.h"
#include "reg_ticket.h"
#include "reg_page.h"
#include "reg_events.h"
#include "reg_ratelimit.h"
#include "reg_store.h"
#include "reg_api.h"
#include "reg_http.h"
#include "reg_config.h"
#include "reg_service.h"
#include "reg_status.h"

static const selftest_t s_tests [] = {
    { "reg_alloc", reg_alloc_test },
    { "reg_turn", reg_turn_test },
    { "reg_relay", reg_relay_test },
    { "reg_validate", reg_validate_test },
    { "reg_auth", reg_auth_test },
    { "reg_challenge", reg_challenge_test },
    { "reg_ticket", reg_ticket_test },
    { "reg_page", reg_page_test },
    { "reg_events", reg_events_test },
    { "reg_ratelimit", reg_ratelimit_test },
    { "reg_store", reg_store_test },
    { "reg_api", reg_api_test },
    { "reg_http", reg_http_test },
    { "reg_config", reg_config_test },
    { "reg_service", reg_service_test },
    { "reg_status", reg_status_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
