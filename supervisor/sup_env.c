/*  sup_env: a child's environment built from an allow list, never by copying
    bifrostd's (see sup_env.h for why). */
#include "sup_env.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

#define S_ENV_MAX   (SUP_ENV_MAX * 2 + 64)

struct _sup_env_t {
    char *entries [S_ENV_MAX + 1];      //  malloc'd "NAME=value", NULL-terminated
    size_t count;
};

//  What every child gets from bifrostd's environment: nothing here is a
//  secret. The locale and TZ for messages and times; the sanitizers' options
//  so an ASan build's children behave like bifrostd; the BIFROST_* knobs the
//  services read that are not secrets (docs/supervisor.md lists them).
static const char *const s_base [] = {
    "PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR", "LD_LIBRARY_PATH",
    "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
    "BIFROST_LIBEXEC_DIR", "BIFROST_STATE_DIR", "BIFROST_HEARTBEAT_MS",
    "BIFROST_TURNSERVER", "BIFROST_WSS_TIMER_MS", "BIFROST_SECCOMP", NULL
};

bool
sup_env_is_base (const char *name)
{
    if (strncmp (name, "LC_", 3) == 0)
        return true;
    for (int i = 0; s_base [i]; i++)
        if (strcmp (name, s_base [i]) == 0)
            return true;
    return false;
}

sup_env_t *
sup_env_new (void)
{
    sup_env_t *self = (sup_env_t *) calloc (1, sizeof (sup_env_t));
    assert (self);
    return self;
}

void
sup_env_destroy (sup_env_t **self_p)
{
    assert (self_p);
    sup_env_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        free (self->entries [i]);
    free (self);
    *self_p = NULL;
}

static bool
s_has (sup_env_t *self, const char *name, size_t len)
{
    for (size_t i = 0; i < self->count; i++)
        if (strncmp (self->entries [i], name, len) == 0 && self->entries [i][len] == '=')
            return true;
    return false;
}

void
sup_env_put (sup_env_t *self, const char *entry)
{
    const char *eq = strchr (entry, '=');
    if (!eq || eq == entry || s_has (self, entry, (size_t) (eq - entry)) || self->count >= S_ENV_MAX)
        return;
    self->entries [self->count] = strdup (entry);
    assert (self->entries [self->count]);
    self->count++;
}

void
sup_env_set (sup_env_t *self, const char *name, const char *value)
{
    char *entry = NULL;
    if (asprintf (&entry, "%s=%s", name, value) < 0)
        entry = NULL;
    assert (entry);
    sup_env_put (self, entry);
    free (entry);
}

void
sup_env_pass (sup_env_t *self, const char *name)
{
    const char *value = getenv (name);
    if (value)
        sup_env_set (self, name, value);
}

void
sup_env_add_service (sup_env_t *self, const sup_service_cfg_t *cfg)
{
    for (size_t i = 0; i < cfg->env_count; i++)
        sup_env_put (self, cfg->env [i]);
    for (size_t i = 0; i < cfg->pass_env_count; i++)
        sup_env_pass (self, cfg->pass_env [i]);
    for (size_t i = 0; environ [i]; i++) {
        const char *eq = strchr (environ [i], '=');
        if (!eq)
            continue;
        char name [128];
        snprintf (name, sizeof name, "%.*s", (int) (eq - environ [i]), environ [i]);
        if (sup_env_is_base (name))
            sup_env_put (self, environ [i]);
    }
}

char **
sup_env_envp (sup_env_t *self)
{
    self->entries [self->count] = NULL;
    return self->entries;
}

//  ---------------------------------------------------------------------------
//  Self test

static bool
s_envp_has (char **envp, const char *entry)
{
    for (size_t i = 0; envp [i]; i++)
        if (strcmp (envp [i], entry) == 0)
            return true;
    return false;
}

static bool
s_envp_names (char **envp, const char *name)
{
    size_t len = strlen (name);
    for (size_t i = 0; envp [i]; i++)
        if (strncmp (envp [i], name, len) == 0 && envp [i][len] == '=')
            return true;
    return false;
}

void
sup_env_test (bool verbose)
{
    setenv ("SUP_ENV_TEST_SECRET", "s3cret", 1);
    setenv ("SUP_ENV_TEST_PASSED", "given", 1);
    setenv ("LC_TIME", "C", 1);
    unsetenv ("SUP_ENV_TEST_UNSET");
    const char *env [] = { "A=1", "PATH=/mine", "BIFROST_SERVICE=no", NULL };
    const char *pass [] = { "SUP_ENV_TEST_PASSED", "SUP_ENV_TEST_UNSET", NULL };
    sup_service_cfg_t cfg = {
        .name = "t", .exec = "x", .env = env, .env_count = 3,
        .pass_env = pass, .pass_env_count = 2
    };
    sup_env_t *self = sup_env_new ();
    sup_env_set (self, "BIFROST_SERVICE", "t");
    sup_env_add_service (self, &cfg);
    char **envp = sup_env_envp (self);
    //  bifrostd's first, then env (which may set PATH), then pass_env, then the base
    assert (s_envp_has (envp, "BIFROST_SERVICE=t") && !s_envp_has (envp, "BIFROST_SERVICE=no"));
    assert (s_envp_has (envp, "A=1") && s_envp_has (envp, "PATH=/mine"));
    assert (s_envp_has (envp, "SUP_ENV_TEST_PASSED=given"));
    assert (!s_envp_names (envp, "SUP_ENV_TEST_UNSET"));
    assert (s_envp_has (envp, "LC_TIME=C"));
    //  and nothing else of bifrostd's environment
    assert (!s_envp_names (envp, "SUP_ENV_TEST_SECRET"));
    for (size_t i = 0; envp [i]; i++) {
        char name [128];
        snprintf (name, sizeof name, "%.*s", (int) strcspn (envp [i], "="), envp [i]);
        assert (sup_env_is_base (name) || strcmp (name, "A") == 0 || strcmp (name, "BIFROST_SERVICE") == 0
                || strcmp (name, "SUP_ENV_TEST_PASSED") == 0);
    }
    sup_env_destroy (&self);
    assert (!self);
    assert (sup_env_is_base ("PATH") && sup_env_is_base ("LC_ALL"));
    assert (!sup_env_is_base ("BIFROST_ADMIN_TOKEN") && !sup_env_is_base ("TURN_SECRET")
         && !sup_env_is_base ("BIFROST_JOIN_TOKEN") && !sup_env_is_base ("BIFROST_PSK"));
    unsetenv ("SUP_ENV_TEST_SECRET");
    unsetenv ("SUP_ENV_TEST_PASSED");
    if (verbose)
        printf ("sup_env: ok\n");
}
