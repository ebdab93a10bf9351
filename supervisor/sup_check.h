/*  sup_check: every Bifrost service checks its own part of the configuration
    (`<service> --check-config -c FILE`), at start and on every reload alike.

    bifrostd's reader knows only its own keys; a typo in `discovery { ... }` is
    found by bifrost-discovery. Running the same checks before a reload applies
    is what keeps a SIGHUP from accepting a file the service will then refuse at
    every restart (issue 16). */
#ifndef SUP_CHECK_H_INCLUDED
#define SUP_CHECK_H_INCLUDED

#include "sup_config.h"
#include <stdio.h>

//  Runs the check of every service that is a Bifrost service (a program named
//  bifrost-* with notify = "ready": anything else may not know the option and
//  must not be started by a check), in the environment the service would get
//  (sup_env), 5 s each. Their messages (file and line) and ours go to errors.
//  Returns the number of services that refused.
int sup_check_services (sup_config_t *config, const char *config_path, FILE *errors);

void sup_check_test (bool verbose);
#endif
