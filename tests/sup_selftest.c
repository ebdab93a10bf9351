/*  sup_selftest: the self tests of every supervisor class. */
#include "selftest.h"
#include "sup_config.h"
#include "sup_env.h"
#include "sup_check.h"
#include "sup_policy.h"
#include "sup_proc.h"
#include "sup_server.h"
#include "sup_control.h"
#include "sup_sdnotify.h"

static const selftest_t s_tests [] = {
    { "sup_config", sup_config_test },
    { "sup_env", sup_env_test },
    { "sup_check", sup_check_test },
    { "sup_policy", sup_policy_test },
    { "sup_proc", sup_proc_test },
    { "sup_server", sup_server_test },
    { "sup_control", sup_control_test },
    { "sup_sdnotify", sup_sdnotify_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
