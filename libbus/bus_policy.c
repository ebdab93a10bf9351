/*  bus_policy: the tables of schemas/senders.def as lookups (see the header). */
#include "bus_policy.h"
#include "bus_identity.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *service, *programs;
} s_program_t;

typedef struct {
    const char *type;
    bool event;
    const char *senders;
} s_sender_t;

#define BUS_PROGRAM(service, programs, doc) { service, programs },
#define BUS_SENDER(type, event, senders, doc)
static const s_program_t s_programs [] = {
#include "../schemas/senders.def"
};
#undef BUS_PROGRAM
#undef BUS_SENDER
#define BUS_PROGRAM(service, programs, doc)
#define BUS_SENDER(type, event, senders, doc) { type, event, senders },
static const s_sender_t s_senders [] = {
#include "../schemas/senders.def"
};
#undef BUS_PROGRAM
#undef BUS_SENDER

#define S_COUNT(a) (sizeof (a) / sizeof ((a) [0]))

//  Is word one of the space-separated words of list? With `kept` > 0, a word
//  that the kernel cut to its first `kept` characters matches the longer one
static bool
s_listed (const char *list, const char *word, size_t kept)
{
    size_t len = strlen (word);
    for (const char *p = list; *p; ) {
        while (*p == ' ')
            p++;
        const char *end = strchr (p, ' ');
        size_t n = end ? (size_t) (end - p) : strlen (p);
        if (n && (n == len || (kept && len == kept && n > kept)) && memcmp (p, word, len) == 0)
            return true;
        p += n;
    }
    return false;
}

static const s_program_t *
s_program (const char *service)
{
    for (size_t i = 0; i < S_COUNT (s_programs); i++)
        if (strcmp (s_programs [i].service, service) == 0)
            return &s_programs [i];
    return NULL;
}

bool
bus_policy_protected (const char *service)
{
    return s_program (service) != NULL;
}

bool
bus_policy_may_register (const char *service, const char *exe, const char *const dirs [])
{
    const s_program_t *rule = s_program (service);
    if (!rule)
        return true;
    if (!exe || !*exe)
        return false;
    const char *base = strrchr (exe, '/');
    base = base ? base + 1 : exe;
    if (!s_listed (rule->programs, base, 0))
        return false;
    //  The same file as the program in a trusted directory, resolved (the
    //  build's libexec holds symlinks; /proc/PID/exe names the real file)
    for (size_t i = 0; dirs && dirs [i]; i++) {
        if (!*dirs [i])
            continue;
        char path [PATH_MAX], real [PATH_MAX];
        if (snprintf (path, sizeof path, "%s/%s", dirs [i], base) >= (int) sizeof path)
            continue;
        if (realpath (path, real) && strcmp (real, exe) == 0)
            return true;
    }
    return false;
}

bool
bus_policy_may_register_uid (const char *service, uint32_t uid)
{
    const s_program_t *rule = s_program (service);
    if (!rule)
        return true;
    //  Each program of the rule, word by word
    for (const char *p = rule->programs; *p; ) {
        while (*p == ' ')
            p++;
        size_t n = strcspn (p, " ");
        char program [64];
        if (n && n < sizeof program) {
            memcpy (program, p, n);
            program [n] = 0;
            if (bus_identity_is (uid, program))
                return true;
        }
        p += n;
    }
    return false;
}

bool
bus_policy_may_register_comm (const char *service, const char *comm)
{
    const s_program_t *rule = s_program (service);
    if (!rule)
        return true;
    //  The kernel keeps 15 characters of a command name
    return comm && *comm && s_listed (rule->programs, comm, 15);
}

const char *
bus_policy_senders (const char *type, bool event)
{
    for (size_t i = 0; i < S_COUNT (s_senders); i++)
        if (s_senders [i].event == event && strcmp (s_senders [i].type, type) == 0)
            return s_senders [i].senders;
    return NULL;
}

bool
bus_policy_may_send (const char *type, bool event, const char *sender)
{
    const char *senders = bus_policy_senders (type, event);
    return !senders || (sender && *sender && s_listed (senders, sender, 0));
}

//  ---------------------------------------------------------------------------
//  Self test

void
bus_policy_test (bool verbose)
{
    //  Registering: protected names need their program from a trusted directory
    assert (bus_policy_protected ("nat") && bus_policy_protected ("discovery"));
    assert (!bus_policy_protected ("echo") && !bus_policy_protected (""));
    const char *none [] = { NULL };
    assert (bus_policy_may_register ("echo", "/anything/at/all", none));
    assert (!bus_policy_may_register ("nat", "/usr/bin/python3", none));
    assert (!bus_policy_may_register ("nat", "", none));
    //  A directory of our own with a "program" in it, and a symlink to it
    char dir [] = "/tmp/bus-policy-XXXXXX";
    assert (mkdtemp (dir));
    char real [128], link [128], other [128], target [160];
    snprintf (real, sizeof real, "%s/real-nat", dir);
    snprintf (link, sizeof link, "%s/lib", dir);
    FILE *f = fopen (real, "w");
    assert (f);
    fclose (f);
    assert (mkdir (link, 0700) == 0);
    snprintf (target, sizeof target, "%s/bifrost-nat", link);
    assert (symlink (real, target) == 0);
    char resolved [PATH_MAX];
    assert (realpath (target, resolved));
    const char *dirs [] = { "", link, NULL };
    //  The exe is what the symlink resolves to, but its name is not the program's
    assert (!bus_policy_may_register ("nat", resolved, dirs));
    //  A real file named like the program, in the trusted directory
    unlink (target);
    f = fopen (target, "w");
    assert (f);
    fclose (f);
    assert (realpath (target, resolved));
    assert (bus_policy_may_register ("nat", resolved, dirs));
    //  ... but not a copy of it elsewhere, nor as another service
    snprintf (other, sizeof other, "%s/bifrost-nat", dir);
    f = fopen (other, "w");
    assert (f);
    fclose (f);
    assert (!bus_policy_may_register ("nat", other, dirs));
    assert (!bus_policy_may_register ("discovery", resolved, dirs));
    unlink (other);
    unlink (target);
    unlink (real);
    rmdir (link);
    rmdir (dir);
    //  By command name, for a process that hides its executable
    assert (bus_policy_may_register_comm ("crypto", "bifrost-tunnel"));
    assert (bus_policy_may_register_comm ("discovery", "bifrost-discove"));    //  15 of 17
    assert (!bus_policy_may_register_comm ("discovery", "bifrost-discov"));
    assert (!bus_policy_may_register_comm ("crypto", "bifrost-nat"));
    assert (!bus_policy_may_register_comm ("crypto", "bifrost-tun"));
    assert (!bus_policy_may_register_comm ("crypto", ""));
    assert (bus_policy_may_register_comm ("echo", "anything"));
    //  Sending: the rules, both kinds, and what is open to all
    assert (bus_policy_may_send ("peer.up", true, "discovery"));
    assert (!bus_policy_may_send ("peer.up", true, "nat"));
    assert (!bus_policy_may_send ("peer.up", true, ""));
    assert (!bus_policy_may_send ("peer.up", true, NULL));
    assert (bus_policy_may_send ("peer.up", false, "nat"));        //  no rule for a request
    assert (bus_policy_may_send ("discovery.signal", false, "nat"));
    assert (!bus_policy_may_send ("discovery.signal", false, "discovery"));
    assert (bus_policy_may_send ("discovery.signal", true, "discovery"));
    assert (bus_policy_may_send ("crypto.key", false, "ctl") && bus_policy_may_send ("crypto.key", false, "device"));
    assert (!bus_policy_may_send ("crypto.key", false, "dev"));
    assert (!bus_policy_may_send ("bus.pipe.mirror", false, "nat"));
    assert (bus_policy_may_send ("nat.status", false, ""));
    assert (strcmp (bus_policy_senders ("crypto.keyproof", false), "discovery") == 0);
    assert (bus_policy_senders ("crypto.keyproof", true) == NULL);
    if (verbose)
        printf ("  %zu protected names, %zu sender rules\n", S_COUNT (s_programs), S_COUNT (s_senders));
}
