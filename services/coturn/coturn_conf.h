/*  coturn_conf: turns the `turn { ... }` group of a Bifrost server config into a
    turnserver.conf for coturn. The shared secret comes from the environment
    through ${TURN_SECRET} in our config and is written only into a 0600 file in
    the run directory, so it never shows on a command line (ps) or in a file
    someone else can read. The generated file makes coturn a well-behaved
    supervised child: foreground, logs on stdout, no CLI, TURN REST API
    credentials (use-auth-secret), no relaying to multicast or private ranges
    (loopback and private ranges only when a test asks). */
#ifndef COTURN_CONF_H_INCLUDED
#define COTURN_CONF_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "bus_config_schema.h"

//  Validates the turn group, recording errors in config (file:line). Returns the
//  number of errors added.
size_t coturn_conf_check (bus_config_t *config, bus_cfg_turn_t *turn);
//  Writes the coturn config to path (mode 0600). 0, or -1 with err.
//  From the checked turn group; source names the config file in a comment.
int coturn_conf_write (const bus_cfg_turn_t *turn, const char *source, const char *run_dir,
                       const char *path, char *err, size_t errsize);

void coturn_conf_test (bool verbose);
#endif
