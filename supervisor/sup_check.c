/*  sup_check: the services' own configuration checks, run as child processes
    whose stderr is collected, so a reload can log what they said. */
#include "sup_check.h"
#include "sup_env.h"
#include "sup_proc.h"
#include "bus_clock.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_CHECK_TIMEOUT_MS  5000

//  Runs one check; its stderr is copied to errors. Returns the wait status, or
//  -1 after a timeout (the check is killed) or when it could not run.
static int
s_run (const char *path, const char *config_path, char **envp, FILE *errors, bool *timed_out)
{
    *timed_out = false;
    int fds [2];
    if (pipe2 (fds, O_CLOEXEC))
        return -1;
    char *const argv [] = { (char *) path, "--check-config", "-c", (char *) config_path, NULL };
    pid_t pid = fork ();
    if (pid == 0) {
        //  Only async-signal-safe calls until exec
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        int devnull = open ("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2 (devnull, STDIN_FILENO);
            dup2 (devnull, STDOUT_FILENO);
        }
        dup2 (fds [1], STDERR_FILENO);
        execve (path, argv, envp);
        _exit (127);
    }
    close (fds [1]);
    if (pid < 0) {
        close (fds [0]);
        return -1;
    }
    //  Until it has exited and its stderr is drained, or the deadline
    int64_t deadline = bus_clock_ms () + S_CHECK_TIMEOUT_MS;
    bool reading = true;
    int status = 0;
    pid_t done = 0;
    while (done == 0 || reading) {
        int64_t left = deadline - bus_clock_ms ();
        if (left <= 0)
            break;
        struct pollfd item = { fds [0], POLLIN, 0 };
        if (!reading)
            usleep (10000);
        else
        if (poll (&item, 1, left < 10 ? (int) left : 10) > 0) {
            char buf [1024];
            ssize_t n = read (fds [0], buf, sizeof buf);
            if (n > 0)
                fwrite (buf, 1, (size_t) n, errors);
            else
            if (n == 0 || errno != EINTR)
                reading = false;
        }
        if (done == 0)
            done = waitpid (pid, &status, WNOHANG);
        if (done < 0)
            break;
    }
    if (done == 0) {
        kill (pid, SIGKILL);
        waitpid (pid, &status, 0);
        *timed_out = true;
    }
    close (fds [0]);
    return *timed_out || done < 0 ? -1 : status;
}

int
sup_check_services (sup_config_t *config, const char *config_path, FILE *errors)
{
    int failed = 0;
    for (size_t i = 0; i < sup_config_service_count (config); i++) {
        const sup_service_cfg_t *svc = sup_config_service (config, i);
        if (svc->notify == SUP_NOTIFY_NONE)
            continue;
        char path [1024], err [256];
        if (sup_proc_resolve (svc->exec, path, sizeof path, err, sizeof err)) {
            fprintf (errors, "%s: service %s: %s\n", config_path, svc->name, err);
            failed++;
            continue;
        }
        const char *base = strrchr (path, '/');
        if (strncmp (base ? base + 1 : path, "bifrost-", 8) != 0)
            continue;
        //  The check sees what the service will see: a variable it does not
        //  get is an error now, not at its first start
        sup_env_t *env = sup_env_new ();
        sup_env_set (env, "BIFROST_SERVICE", svc->name);
        sup_env_add_service (env, svc);
        bool timed_out;
        int status = s_run (path, config_path, sup_env_envp (env), errors, &timed_out);
        sup_env_destroy (&env);
        if (timed_out) {
            fprintf (errors, "%s: service %s: %s --check-config did not finish in %d s\n",
                     config_path, svc->name, path, S_CHECK_TIMEOUT_MS / 1000);
            failed++;
        }
        else
        if (status == -1) {
            fprintf (errors, "%s: service %s: cannot run %s --check-config\n", config_path, svc->name, path);
            failed++;
        }
        else
        if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
            fprintf (errors, "%s: service %s (%s) refused the configuration\n", config_path, svc->name, path);
            failed++;
        }
    }
    return failed;
}

//  ---------------------------------------------------------------------------
//  Self test: a stand-in Bifrost service (a shell script named bifrost-*)

void
sup_check_test (bool verbose)
{
    char dir [] = "/tmp/sup-check-test-XXXXXX";
    assert (mkdtemp (dir));
    char script [256], cfg_path [256];
    snprintf (script, sizeof script, "%s/bifrost-t", dir);
    snprintf (cfg_path, sizeof cfg_path, "%s/t.cfg", dir);
    FILE *file = fopen (script, "w");
    assert (file);
    //  Refuses a file with "bogus"; says whether it got a secret it was not given
    fputs ("#!/bin/sh\n"
           "[ -n \"${SUP_CHECK_SECRET:-}\" ] && echo \"leaked\" >&2 && exit 1\n"
           "[ \"$SUP_CHECK_PASSED\" = yes ] || { echo \"$3:1: not passed\" >&2; exit 78; }\n"
           "grep -q bogus \"$3\" && { echo \"$3:1: t.bogus: unknown setting\" >&2; exit 78; }\n"
           "exit 0\n", file);
    fclose (file);
    assert (chmod (script, 0755) == 0);
    setenv ("SUP_CHECK_SECRET", "s3cret", 1);
    setenv ("SUP_CHECK_PASSED", "yes", 1);
    char text [1024];
    snprintf (text, sizeof text,
              "services = ( { name = \"t\"; exec = \"%s\"; pass_env = [\"SUP_CHECK_PASSED\"]; },\n"
              "             { name = \"ext\"; exec = \"/bin/false\"; notify = \"none\"; } );\n", script);
    file = fopen (cfg_path, "w");
    fputs (text, file);
    fclose (file);
    FILE *devnull = fopen ("/dev/null", "w");
    sup_config_t *config = sup_config_load (cfg_path, devnull);
    assert (config);
    char *out = NULL;
    size_t size = 0;
    FILE *errors = open_memstream (&out, &size);
    assert (sup_check_services (config, cfg_path, errors) == 0);
    fclose (errors);
    assert (size == 0);
    free (out);
    sup_config_destroy (&config);

    //  A key the service refuses: its message, with file and line, and ours
    file = fopen (cfg_path, "a");
    fputs ("t = { bogus = 1; };\n", file);
    fclose (file);
    config = sup_config_load (cfg_path, devnull);
    assert (config);
    errors = open_memstream (&out, &size);
    assert (sup_check_services (config, cfg_path, errors) == 1);
    fclose (errors);
    if (verbose)
        printf ("%s", out);
    assert (strstr (out, "t.cfg:1: t.bogus: unknown setting"));
    assert (strstr (out, "service t (") && strstr (out, "refused the configuration"));
    free (out);
    sup_config_destroy (&config);

    //  A variable it needs but is not given is found by the check
    unsetenv ("SUP_CHECK_PASSED");
    file = fopen (cfg_path, "w");
    fputs (text, file);
    fclose (file);
    config = sup_config_load (cfg_path, devnull);
    errors = open_memstream (&out, &size);
    assert (sup_check_services (config, cfg_path, errors) == 1);
    fclose (errors);
    assert (strstr (out, "not passed"));
    free (out);
    sup_config_destroy (&config);
    fclose (devnull);
    unsetenv ("SUP_CHECK_SECRET");
    unlink (script);
    unlink (cfg_path);
    rmdir (dir);
    if (verbose)
        printf ("sup_check: ok\n");
}
