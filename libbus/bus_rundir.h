/*  bus_rundir: which run directory a program uses, decided in one place for
    bifrostd and bifrostctl, so that `bifrostctl -c FILE` finds the bifrostd
    started with the same file: -r DIR, else run_dir in the configuration file,
    else $BIFROST_RUN_DIR, else BUS_RUN_DIR_DEFAULT. The run_dir setting itself
    (an absolute path, ${VAR} expanded) is read and checked here too, so the
    rule is written once. */
#ifndef BUS_RUNDIR_H_INCLUDED
#define BUS_RUNDIR_H_INCLUDED

#include "bus_config.h"
#include <stddef.h>
#include <stdio.h>

//  The run_dir setting of config: NULL when not set, or when it is not an
//  absolute path (an error is then recorded on config with its file and line).
//  The string belongs to config.
const char *bus_rundir_setting (bus_config_t *config);
//  The rule alone, for a reader that read run_dir itself (bifrostd reads it with
//  the rest of its top level through the config schema): run_dir when NULL or
//  absolute, else NULL with the error recorded against the setting.
const char *bus_rundir_check (bus_config_t *config, const char *run_dir);

//  Reads the run_dir setting of the configuration file at path into buf (size
//  bytes). 1 when set, 0 when not set, -1 when the file cannot be parsed or the
//  value is bad: the errors go to errors (if not NULL), with file and line.
int bus_rundir_read (const char *path, char *buf, size_t size, FILE *errors);

//  The run directory: option (-r) when not NULL, else configured (run_dir of
//  the configuration, may be NULL), else $BIFROST_RUN_DIR, else the default.
const char *bus_rundir_choose (const char *option, const char *configured);

void bus_rundir_test (bool verbose);
#endif
