/*  sup_env: the environment a child of bifrostd gets, and nothing more.

    bifrostd's own environment holds every secret of the machine it runs on
    (BIFROST_ADMIN_TOKEN, TURN_SECRET, the join token, ...), and a process's
    environment is readable in /proc/PID/environ by its uid. So a child does not
    inherit it: it gets bifrostd's variables (BIFROST_SERVICE, ...), its own
    `env` entries, the variables its own `pass_env` names (taken from bifrostd's
    environment) and a small base that carries no secret (PATH, the locale, TZ,
    the sanitizers' options and the BIFROST_* knobs that are not secrets). The
    first of these to set a name wins, in that order. Issue 16: before, the
    broker's environ showed the registry's admin token and the TURN secret. */
#ifndef SUP_ENV_H_INCLUDED
#define SUP_ENV_H_INCLUDED

#include "sup_config.h"

typedef struct _sup_env_t sup_env_t;

sup_env_t *sup_env_new (void);
void sup_env_destroy (sup_env_t **self_p);
//  NAME=value, unless NAME is set already.
void sup_env_set (sup_env_t *self, const char *name, const char *value);
//  A "NAME=value" entry, unless NAME is set already.
void sup_env_put (sup_env_t *self, const char *entry);
//  NAME from bifrostd's environment, when set there (and not set here yet).
void sup_env_pass (sup_env_t *self, const char *name);
//  The service's env, then its pass_env, then the safe base; call after the
//  sup_env_set of bifrostd's own variables.
void sup_env_add_service (sup_env_t *self, const sup_service_cfg_t *cfg);
//  The NULL-terminated array for execve; owned by self.
char **sup_env_envp (sup_env_t *self);
//  Whether a variable of bifrostd's environment reaches every child.
bool sup_env_is_base (const char *name);

void sup_env_test (bool verbose);
#endif
