/*  ctl_join: bifrostctl join and leave (why and how: ctl_join.h). */
#include "ctl_join.h"
#include "ctl_http.h"
#include "bus_client.h"
#include "bus_config.h"
#include "bus_endpoint.h"
#include "bus_envelope.h"
#include "bus_rundir.h"
#include "node_keyproof.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <signal.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#ifndef BIFROST_LIBEXECDIR
#define BIFROST_LIBEXECDIR "/usr/local/libexec/bifrost"
#endif

#define S_DEFAULT_CONFIG    "/etc/bifrost/bifrost.cfg"
#define S_DEFAULT_KEY       "/var/lib/bifrost/node.key"
#define S_DEFAULT_LOG       "/var/log/bifrost/bifrostd.log"
#define S_UNIT              "bifrost.service"
#define S_HTTP_TIMEOUT_MS   10000

typedef struct {
    const char *run_dir;                //  -r, else the default
    const char *config;                 //  --config
    const char *token;                  //  --token (or $BIFROST_JOIN_TOKEN)
    const char *token_file;             //  --token-file, else <config dir>/join-token
    const char *network;                //  --network
    const char *key_file;               //  --key-file
    const char *name;                   //  --name, else the short host name
    const char *ca_file;                //  --ca-file
    const char *log;                    //  --log: bifrostd's output when started directly
    bool allow_http;                    //  --allow-http
    int wait_s;                         //  --wait
    ctl_url_t url;
    char server [300];                  //  the URL as written in the config
    char host_name [65];
    char token_path [512];
} s_join_t;

//  ---------------------------------------------------------------------------
//  Checks of what the operator typed

static bool
s_valid_network (const char *id)
{
    size_t len = strlen (id);
    if (len < 1 || len > 32 || id [0] == '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(islower ((unsigned char) id [i]) || isdigit ((unsigned char) id [i]) || id [i] == '-'))
            return false;
    return true;
}

static bool
s_valid_name (const char *name)
{
    size_t len = strlen (name);
    if (len < 1 || len > 64 || !isalnum ((unsigned char) name [0]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum ((unsigned char) name [i]) && !strchr ("-_.", name [i]))
            return false;
    return true;
}

static bool
s_valid_token (const char *token)
{
    size_t len = strlen (token);
    if (len < 1 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++)
        if (token [i] <= ' ' || token [i] >= 127)
            return false;
    return true;
}

//  A path as a config string may hold it (absolute, no quote or backslash)
static bool
s_valid_path (const char *path)
{
    return path && path [0] == '/' && strlen (path) < 400 && !strpbrk (path, "\"\\\n");
}

//  ---------------------------------------------------------------------------
//  Processes

//  Runs argv and waits; its exit code, or -1 when it could not run. out:
//  where its stdout goes (NULL: ours)
static int
s_run (char *const argv [], const char *out)
{
    fflush (stdout);
    fflush (stderr);
    pid_t pid = fork ();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (out) {
            int fd = open (out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (fd >= 0)
                dup2 (fd, 1);
        }
        execvp (argv [0], argv);
        fprintf (stderr, "bifrostctl: cannot run %s: %s\n", argv [0], strerror (errno));
        _exit (127);
    }
    int status;
    while (waitpid (pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

//  A program beside bifrostctl, in the build tree's folder for it, or on $PATH
static void
s_find_bin (const char *name, const char *build_dir, char *out, size_t size)
{
    char self [512];
    ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self [n] = 0;
        char *dir = dirname (self);
        snprintf (out, size, "%s/%s", dir, name);
        if (access (out, X_OK) == 0)
            return;
        snprintf (out, size, "%s/../%s/%s", dir, build_dir, name);
        if (access (out, X_OK) == 0)
            return;
    }
    snprintf (out, size, "%s", name);   //  execvp searches $PATH
}

//  A service program, where bifrostd finds them ($BIFROST_LIBEXEC_DIR, then
//  the installed libexec folder)
static void
s_find_libexec (const char *name, char *out, size_t size)
{
    const char *env = getenv ("BIFROST_LIBEXEC_DIR");
    snprintf (out, size, "%s/%s", env && *env ? env : BIFROST_LIBEXECDIR, name);
    if (access (out, X_OK) != 0 && env && *env)
        snprintf (out, size, "%s/%s", BIFROST_LIBEXECDIR, name);
}

//  mkdir -p of path's parent, new folders with mode
static int
s_mkdir_parent (const char *path, mode_t mode)
{
    char dir [512];
    snprintf (dir, sizeof dir, "%s", path);
    char *slash = strrchr (dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = 0;
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir (dir, 0755) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir (dir, mode) && errno != EEXIST ? -1 : 0;
}

//  ---------------------------------------------------------------------------
//  The key

//  The node's key pair from its file (as crypto_identity reads it: 44 base64
//  characters, mode 0600). 0, or -1 with err
static int
s_read_key (const char *path, uint8_t sk [32], uint8_t pk [32], char *err, size_t err_size)
{
    int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf (err, err_size, "cannot open the key file %s: %s", path, strerror (errno));
        return -1;
    }
    struct stat st;
    if (fstat (fd, &st) || !S_ISREG (st.st_mode) || (st.st_mode & 077)) {
        close (fd);
        snprintf (err, err_size, "the key file %s must be a regular file of mode 0600", path);
        return -1;
    }
    char text [128];
    ssize_t n = read (fd, text, sizeof text);
    close (fd);
    size_t len = n > 0 ? (size_t) n : 0;
    while (len && isspace ((unsigned char) text [len - 1]))
        len--;
    size_t bin = 0;
    const char *end = NULL;
    int rc = len == 44 && sodium_base642bin (sk, 32, text, len, NULL, &bin, &end, sodium_base64_VARIANT_ORIGINAL) == 0
          && bin == 32 && end == text + len ? 0 : -1;
    sodium_memzero (text, sizeof text);
    if (rc)
        snprintf (err, err_size, "the key file %s is malformed (expected one base64 X25519 private key)", path);
    else
        crypto_scalarmult_base (pk, sk);
    return rc;
}

//  The key file, made by bifrost-crypto --genkey (crypto_identity's code)
//  when missing; *created says so (a failed join removes it again)
static int
s_ensure_key (const char *path, bool *created)
{
    *created = false;
    if (access (path, F_OK) == 0)
        return 0;
    if (s_mkdir_parent (path, 0700)) {
        fprintf (stderr, "bifrostctl: cannot create the folder of %s: %s\n", path, strerror (errno));
        return -1;
    }
    char crypto [512];
    s_find_libexec ("bifrost-crypto", crypto, sizeof crypto);
    char *argv [] = { crypto, (char *) "--genkey", (char *) path, NULL };
    if (s_run (argv, "/dev/null") != 0) {
        fprintf (stderr, "bifrostctl: %s --genkey %s failed\n", crypto, path);
        return -1;
    }
    *created = true;
    fprintf (stderr, "bifrostctl: created the node key %s (mode 0600)\n", path);
    return 0;
}

//  ---------------------------------------------------------------------------
//  The registry

//  A string member of a JSON answer, or ""
static const char *
s_jstr (json_t *root, const char *object, const char *member)
{
    json_t *o = object ? json_object_get (root, object) : root;
    const char *v = json_string_value (json_object_get (o, member));
    return v ? v : "";
}

//  The registry's error text of an answer ("error"), or the body
static void
s_why (const char *answer, char *out, size_t size)
{
    json_t *json = answer ? json_loads (answer, 0, NULL) : NULL;
    const char *text = json ? s_jstr (json, NULL, "error") : "";
    snprintf (out, size, "%s", *text ? text : answer && *answer ? answer : "no reason given");
    for (char *c = out; *c; c++)
        if (*c < ' ')
            *c = ' ';
    json_decref (json);
}

//  Registers the key (challenge, proof, POST .../peers with token when not
//  NULL): the HTTP status (0: no answer, err says why) and the answer's JSON
//  in *reply
static int
s_register (const ctl_url_t *url, const char *ca_file, const char *network, const char *token,
            const uint8_t sk [32], const uint8_t pk [32], const char *name, json_t **reply,
            char *err, size_t err_size)
{
    *reply = NULL;
    char path [256], *answer = NULL;
    snprintf (path, sizeof path, "/api/v1/mesh/networks/%s/challenge", network);
    int status = ctl_http_request (url, ca_file, "POST", path, NULL, "{}", S_HTTP_TIMEOUT_MS, &answer, err, err_size);
    if (!status)
        return 0;
    json_t *challenge = json_loads (answer, 0, NULL);
    free (answer);
    uint8_t nonce [64], reg_key [32], proof [32];
    size_t nonce_len = 0, key_len = 0;
    const char *nonce_b64 = challenge ? s_jstr (challenge, NULL, "nonce") : "";
    const char *key_b64 = challenge ? s_jstr (challenge, NULL, "registry_key") : "";
    if (status != 200 || !*nonce_b64
    ||  sodium_base642bin (nonce, sizeof nonce, nonce_b64, strlen (nonce_b64), NULL, &nonce_len, NULL,
                           sodium_base64_VARIANT_ORIGINAL)
    ||  sodium_base642bin (reg_key, sizeof reg_key, key_b64, strlen (key_b64), NULL, &key_len, NULL,
                           sodium_base64_VARIANT_ORIGINAL) || key_len != 32) {
        snprintf (err, err_size, "%s:%u does not answer as a Bifrost registry (its challenge: HTTP %d)",
                  url->host, url->port, status);
        json_decref (challenge);
        return 0;
    }
    if (node_keyproof_compute (sk, pk, reg_key, network, nonce, nonce_len, proof)) {
        snprintf (err, err_size, "the registry's key is not usable");
        json_decref (challenge);
        return 0;
    }
    char pk_b64 [64], proof_b64 [64];
    sodium_bin2base64 (pk_b64, sizeof pk_b64, pk, 32, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64 (proof_b64, sizeof proof_b64, proof, 32, sodium_base64_VARIANT_ORIGINAL);
    json_t *body = json_pack ("{s:s, s:s, s:s, s:s}", "public_key", pk_b64, "name", name,
                              "nonce", nonce_b64, "proof", proof_b64);
    json_decref (challenge);
    char *body_text = json_dumps (body, JSON_COMPACT);
    json_decref (body);
    snprintf (path, sizeof path, "/api/v1/mesh/networks/%s/peers", network);
    status = ctl_http_request (url, ca_file, "POST", path, token, body_text, S_HTTP_TIMEOUT_MS, &answer, err, err_size);
    free (body_text);
    if (status) {
        *reply = json_loads (answer, 0, NULL);
        if (status != 200 && status != 201)
            s_why (answer, err, err_size);
        else
        if (!*reply || !*s_jstr (*reply, "peer", "vip")) {
            snprintf (err, err_size, "the registry's answer names no virtual IP");
            status = 502;
        }
    }
    free (answer);
    return status;
}

//  An HTTP status as the exit code join and leave give for it
static int
s_status_code (int status)
{
    if (status == 0)
        return CTL_JOIN_UNREACHABLE;
    if (status == 401 || status == 403 || status == 404)
        return CTL_JOIN_REFUSED;
    return CTL_JOIN_REGISTRY;
}

//  ---------------------------------------------------------------------------
//  The node's config

static char *
s_config_text (const s_join_t *j, const char *token_path)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&text, &size);
    assert (f);
    time_t now = time (NULL);
    char when [64];
    strftime (when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime (&now));
    fprintf (f,
        "# Written by `bifrostctl join` on %s: this node (%s) in network %s of the\n"
        "# registry %s. The join token is in %s (mode 0600), never here.\n"
        "# Keys: docs/configuration.md; `bifrostctl leave` leaves the network.\n\n"
        "run_dir = \"%s\";\n"
        "key_file = \"%s\";\n"
        "network_id = \"%s\";\n\n"
        "discovery = {\n"
        "    server = \"%s\";\n"
        "    join_token_file = \"%s\";\n"
        "    name = \"%s\";\n",
        when, j->name, j->network, j->server, token_path, j->run_dir, j->key_file, j->network,
        j->server, token_path, j->name);
    if (j->ca_file)
        fprintf (f, "    ca_file = \"%s\";\n", j->ca_file);
    if (!j->url.tls && !ctl_url_loopback (&j->url))
        fprintf (f, "    allow_http = true;      # bifrostctl join --allow-http: the registry is plain http\n");
    fprintf (f,
        "};\n\n"
        "# The interface: its address comes from the registry\n"
        "device = { type = \"tun\"; name = \"bifrost0\"; mtu = 1420; };\n"
        "connection = { listen = \"0.0.0.0:51820\"; };\n\n"
        "services = (\n"
        "    { name = \"bus\";       exec = \"bifrost-bus\"; },\n"
        "    { name = \"tunnel\";    exec = \"bifrost-tunnel\";    depends = [\"bus\"]; },\n"
        "    { name = \"nat\";       exec = \"bifrost-nat\";       depends = [\"bus\", \"tunnel\"]; },\n"
        "    { name = \"router\";    exec = \"bifrost-router\";    depends = [\"bus\"]; },\n"
        "    { name = \"discovery\"; exec = \"bifrost-discovery\"; depends = [\"bus\", \"tunnel\"]; }\n"
        ");\n");
    fclose (f);
    return text;
}

//  Writes text to a new file path of mode mode (it must not exist). 0 or -1
static int
s_write_new (const char *path, const char *text, mode_t mode)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return -1;
    size_t len = strlen (text);
    bool ok = write (fd, text, len) == (ssize_t) len && fsync (fd) == 0 && fchmod (fd, mode) == 0;
    close (fd);
    if (!ok)
        unlink (path);
    return ok ? 0 : -1;
}

//  bifrostd --check-config: 0, 78 (errors, printed), or another failure
static int
s_check_config (const char *path)
{
    char bifrostd [512];
    s_find_bin ("bifrostd", "supervisor", bifrostd, sizeof bifrostd);
    char *argv [] = { bifrostd, (char *) "--check-config", (char *) "-c", (char *) path, NULL };
    return s_run (argv, "/dev/null");
}

//  ---------------------------------------------------------------------------
//  The node

//  systemd runs and bifrost.service is installed
static bool
s_systemd (void)
{
    struct stat st;
    if (getenv ("BIFROST_NO_SYSTEMD") || stat ("/run/systemd/system", &st) || !S_ISDIR (st.st_mode))
        return false;
    return access ("/etc/systemd/system/" S_UNIT, F_OK) == 0 || access ("/lib/systemd/system/" S_UNIT, F_OK) == 0
        || access ("/usr/lib/systemd/system/" S_UNIT, F_OK) == 0;
}

//  The pid of the bifrostd that holds run_dir's lock, or 0
static pid_t
s_bifrostd_pid (const char *run_dir)
{
    char path [BUS_PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/bifrostd.pid", run_dir);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    pid_t pid = 0;
    if (flock (fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
        char text [32] = "";
        if (read (fd, text, sizeof text - 1) > 0)
            pid = (pid_t) atoi (text);
    }
    close (fd);
    return pid > 0 ? pid : 0;
}

//  The config file the bifrostd of run_dir runs with (sup.status, as root's
//  bifrostctl asks it). 0, or -1 when it does not answer
static int
s_running_config (const char *run_dir, char *out, size_t size)
{
    char endpoint [BUS_PATH_MAX], err [200];
    if (bus_endpoint (endpoint, sizeof endpoint, run_dir, "control"))
        return -1;
    bus_client_t *client = bus_client_new (endpoint, NULL, err, sizeof err);
    if (!client)
        return -1;
    sup_status_t request = { .service = "" };
    bus_envelope_t *reply = bus_client_request (client, "bifrostd", &sup_status_schema, &request, 3000, err, sizeof err);
    bus_client_destroy (&client);
    sup_status_reply_t *status = (sup_status_reply_t *) calloc (1, sizeof *status);
    assert (status);
    int rc = reply && bus_envelope_get_msg (reply, &sup_status_reply_schema, status, err, sizeof err) == 0 ? 0 : -1;
    if (rc == 0)
        snprintf (out, size, "%s", status->config);
    free (status);
    bus_envelope_destroy (&reply);
    return rc;
}

//  A bifrostd already running on the run directory must run with the config
//  join writes (SIGHUP makes it read its own file again): checked before
//  anything is done. 0, or CTL_JOIN_FAILED
static int
s_check_running (const s_join_t *j)
{
    if (s_systemd () && strcmp (j->config, S_DEFAULT_CONFIG) == 0)
        return 0;
    char other [256] = "";
    if (!s_bifrostd_pid (j->run_dir) || s_running_config (j->run_dir, other, sizeof other))
        return 0;
    char *mine = realpath (j->config, NULL);
    bool same = mine && strcmp (mine, other) == 0;
    free (mine);
    if (same)
        return 0;
    fprintf (stderr, "bifrostctl: the bifrostd on %s runs with %s, not %s: stop it (bifrostctl -r %s stop), "
             "or join with --config %s\n", j->run_dir, other, j->config, j->run_dir, other);
    return CTL_JOIN_FAILED;
}

//  Starts the node, or has a running one read its new config
static int
s_start (const s_join_t *j)
{
    if (s_systemd () && strcmp (j->config, S_DEFAULT_CONFIG) == 0) {
        char *enable [] = { (char *) "systemctl", (char *) "enable", (char *) "--quiet", (char *) S_UNIT, NULL };
        char *restart [] = { (char *) "systemctl", (char *) "restart", (char *) S_UNIT, NULL };
        if (s_run (enable, NULL) != 0 || s_run (restart, NULL) != 0) {
            fprintf (stderr, "bifrostctl: systemctl could not start %s (journalctl -u %s)\n", S_UNIT, S_UNIT);
            return CTL_JOIN_FAILED;
        }
        fprintf (stderr, "bifrostctl: %s (re)started\n", S_UNIT);
        return 0;
    }
    pid_t running = s_bifrostd_pid (j->run_dir);
    if (running) {
        if (kill (running, SIGHUP)) {
            fprintf (stderr, "bifrostctl: cannot signal bifrostd (pid %d): %s\n", (int) running, strerror (errno));
            return CTL_JOIN_FAILED;
        }
        fprintf (stderr, "bifrostctl: bifrostd (pid %d) reloads its config\n", (int) running);
        return 0;
    }
    if (s_mkdir_parent (j->log, 0755)) {
        fprintf (stderr, "bifrostctl: cannot create the folder of %s: %s\n", j->log, strerror (errno));
        return CTL_JOIN_FAILED;
    }
    int log = open (j->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (log < 0) {
        fprintf (stderr, "bifrostctl: cannot open %s: %s\n", j->log, strerror (errno));
        return CTL_JOIN_FAILED;
    }
    char bifrostd [512];
    s_find_bin ("bifrostd", "supervisor", bifrostd, sizeof bifrostd);
    fflush (stdout);
    fflush (stderr);
    pid_t pid = fork ();
    if (pid == 0) {
        //  Its own session, detached from our terminal; the token is in no
        //  environment (it was only ever in our argv or environment)
        setsid ();
        unsetenv ("BIFROST_JOIN_TOKEN");
        int null = open ("/dev/null", O_RDONLY);
        dup2 (null, 0);
        dup2 (log, 1);
        dup2 (log, 2);
        execlp (bifrostd, bifrostd, "-c", j->config, (char *) NULL);
        _exit (127);
    }
    close (log);
    if (pid < 0) {
        fprintf (stderr, "bifrostctl: cannot start bifrostd: %s\n", strerror (errno));
        return CTL_JOIN_FAILED;
    }
    fprintf (stderr, "bifrostctl: bifrostd started (pid %d, log %s)\n", (int) pid, j->log);
    return 0;
}

//  discovery.status, or false when the bus or discovery does not answer
static bool
s_discovery (const char *run_dir, discovery_status_reply_t *out)
{
    char endpoint [BUS_PATH_MAX], err [200], identity [40];
    if (bus_endpoint (endpoint, sizeof endpoint, run_dir, "bus"))
        return false;
    struct stat st;
    if (stat (endpoint + 6, &st))
        return false;
    snprintf (identity, sizeof identity, "bifrostctl-%d", (int) getpid ());
    bus_client_t *client = bus_client_new (endpoint, identity, err, sizeof err);
    if (!client)
        return false;
    discovery_status_t request = { .detail = "" };
    bus_envelope_t *reply = bus_client_request (client, "discovery", &discovery_status_schema, &request, 1000, err, sizeof err);
    bus_client_destroy (&client);
    bool ok = reply && bus_envelope_get_msg (reply, &discovery_status_reply_schema, out, err, sizeof err) == 0;
    bus_envelope_destroy (&reply);
    return ok;
}

//  ---------------------------------------------------------------------------
//  join

static void
s_join_usage (FILE *out)
{
    fprintf (out,
        "usage: bifrostctl join URL --token TOKEN --network ID [options]\n"
        "Joins this machine to a network of the registry at URL: makes the node key if\n"
        "missing, registers, writes the node config, starts the node, prints its virtual IP.\n"
        "  --token TOKEN        the join token (bjt_...; else $BIFROST_JOIN_TOKEN)\n"
        "  --network ID         the network (or URL .../api/v1/mesh/networks/ID)\n"
        "  -c, --config PATH    the node config to write (default " S_DEFAULT_CONFIG ")\n"
        "  --key-file PATH      the node key (default " S_DEFAULT_KEY ")\n"
        "  --token-file PATH    where the token is kept, mode 0600 (default: join-token beside the config)\n"
        "  --name NAME          this node's name (default: the short host name)\n"
        "  --ca-file PATH       the CA the registry's certificate chains to (https)\n"
        "  --allow-http         a plain http:// registry that is not on this machine\n"
        "  -r, --run-dir DIR    the node's run directory (default " BUS_RUN_DIR_DEFAULT ")\n"
        "  --log PATH           bifrostd's log when started without systemd (default " S_DEFAULT_LOG ")\n"
        "  --wait SECONDS       how long to wait for the virtual IP (default 30)\n"
        "exit: 0 joined, 2 bad command line or URL, 3 registry unreachable, 4 token refused,\n"
        "5 other registry error, 6 no virtual IP in time, 78 config invalid, 1 other failure.\n"
        "See docs/bifrostctl.md.\n");
}

//  Puts the token and the config in place: checked, then renamed. 0, or an exit code
static int
s_install (s_join_t *j)
{
    char token_tmp [560], config_tmp [560], check_tmp [560];
    snprintf (token_tmp, sizeof token_tmp, "%s.tmp.%d", j->token_path, (int) getpid ());
    snprintf (config_tmp, sizeof config_tmp, "%s.tmp.%d", j->config, (int) getpid ());
    snprintf (check_tmp, sizeof check_tmp, "%s.check.%d", j->config, (int) getpid ());
    if (s_mkdir_parent (j->config, 0755) || s_mkdir_parent (j->token_path, 0700)) {
        fprintf (stderr, "bifrostctl: cannot create the folder of %s: %s\n", j->config, strerror (errno));
        return CTL_JOIN_FAILED;
    }
    char token_line [300];
    snprintf (token_line, sizeof token_line, "%s\n", j->token);
    int rc = 0;
    //  The check reads the token where the temporary file is; the config put
    //  in place names the final path (the one line that differs)
    char *check_text = s_config_text (j, token_tmp);
    char *final_text = s_config_text (j, j->token_path);
    if (s_write_new (token_tmp, token_line, 0600) || s_write_new (check_tmp, check_text, 0644)
    ||  s_write_new (config_tmp, final_text, 0644)) {
        fprintf (stderr, "bifrostctl: cannot write beside %s: %s\n", j->config, strerror (errno));
        rc = CTL_JOIN_FAILED;
    }
    sodium_memzero (token_line, sizeof token_line);
    if (!rc) {
        int check = s_check_config (check_tmp);
        if (check != 0) {
            fprintf (stderr, "bifrostctl: the config would not be valid (bifrostd --check-config said %d):\n", check);
            char bifrostd [512];
            s_find_bin ("bifrostd", "supervisor", bifrostd, sizeof bifrostd);
            char *argv [] = { bifrostd, (char *) "--check-config", (char *) "-c", check_tmp, NULL };
            s_run (argv, NULL);        //  again, its errors to the operator
            rc = CTL_JOIN_CONFIG;
        }
    }
    if (!rc && (rename (token_tmp, j->token_path) || rename (config_tmp, j->config))) {
        fprintf (stderr, "bifrostctl: cannot put %s in place: %s\n", j->config, strerror (errno));
        rc = CTL_JOIN_FAILED;
    }
    unlink (check_tmp);
    if (rc) {
        unlink (token_tmp);
        unlink (config_tmp);
    }
    free (check_text);
    free (final_text);
    return rc;
}

static int
s_join (s_join_t *j)
{
    uint8_t sk [32], pk [32];
    char err [400];
    bool created = false;
    if (s_check_running (j))
        return CTL_JOIN_FAILED;
    if (s_ensure_key (j->key_file, &created))
        return CTL_JOIN_FAILED;
    if (s_read_key (j->key_file, sk, pk, err, sizeof err)) {
        fprintf (stderr, "bifrostctl: %s\n", err);
        return CTL_JOIN_FAILED;
    }
    json_t *reply = NULL;
    int status = s_register (&j->url, j->ca_file, j->network, j->token, sk, pk, j->name, &reply, err, sizeof err);
    sodium_memzero (sk, sizeof sk);
    int rc = 0;
    if (status != 200 && status != 201) {
        rc = s_status_code (status);
        if (rc == CTL_JOIN_UNREACHABLE)
            fprintf (stderr, "bifrostctl: the registry %s is unreachable: %s\n", j->server, err);
        else
        if (rc == CTL_JOIN_REFUSED)
            fprintf (stderr, "bifrostctl: the registry refused to let this node into network %s (HTTP %d): %s\n",
                     j->network, status, err);
        else
            fprintf (stderr, "bifrostctl: the registry could not register this node (HTTP %d): %s\n", status, err);
    }
    char vip [32] = "";
    if (!rc) {
        snprintf (vip, sizeof vip, "%s", s_jstr (reply, "peer", "vip"));
        fprintf (stderr, "bifrostctl: registered in %s as %s (peer %s, virtual IP %s)\n", j->network, j->name,
                 s_jstr (reply, "peer", "id"), vip);
        rc = s_install (j);
    }
    json_decref (reply);
    if (rc) {
        if (created)
            unlink (j->key_file);       //  nothing of a failed join stays
        return rc;
    }
    rc = s_start (j);
    if (rc)
        return rc;
    //  The node's own registration: discovery reports the address it got
    int64_t deadline = zclock_mono () + j->wait_s * 1000;
    discovery_status_reply_t status_reply;
    bool up = false;
    char state [32] = "not answering";
    while (zclock_mono () < deadline) {
        if (s_discovery (j->run_dir, &status_reply)) {
            snprintf (state, sizeof state, "%s", status_reply.state);
            if (streq (status_reply.state, "registered") && *status_reply.address) {
                up = true;
                break;
            }
        }
        zclock_sleep (200);
    }
    if (!up) {
        fprintf (stderr, "bifrostctl: the node did not report its virtual IP within %d s (discovery: %s); "
                 "the config is in place: see bifrostctl -r %s status\n", j->wait_s, state, j->run_dir);
        return CTL_JOIN_TIMEOUT;
    }
    printf ("joined network %s as %s: virtual IP %s\n", j->network, j->name, status_reply.address);
    return CTL_JOIN_OK;
}

//  ---------------------------------------------------------------------------
//  leave

//  Stops the node: the unit, or bifrostd through its control socket
static void
s_stop (const char *run_dir, const char *config, int wait_s)
{
    if (s_systemd () && strcmp (config, S_DEFAULT_CONFIG) == 0) {
        char *argv [] = { (char *) "systemctl", (char *) "disable", (char *) "--now", (char *) "--quiet", (char *) S_UNIT, NULL };
        if (s_run (argv, NULL) == 0)
            fprintf (stderr, "bifrostctl: %s stopped and disabled\n", S_UNIT);
        return;
    }
    pid_t pid = s_bifrostd_pid (run_dir);
    if (!pid)
        return;
    //  SIGTERM: the orderly stop (discovery deregisters on its way out)
    kill (pid, SIGTERM);
    int64_t deadline = zclock_mono () + wait_s * 1000;
    while (zclock_mono () < deadline && s_bifrostd_pid (run_dir))
        zclock_sleep (100);
    fprintf (stderr, "bifrostctl: bifrostd (pid %d) %s\n", (int) pid,
             s_bifrostd_pid (run_dir) ? "is still stopping" : "stopped");
}

static int
s_leave (const char *config_path, const char *run_dir_opt, int wait_s)
{
    char err [400];
    bus_config_t *config = bus_config_load (config_path, err, sizeof err);
    if (!config) {
        fprintf (stderr, "bifrostctl: %s\n", err);
        return CTL_JOIN_USAGE;
    }
    config_t *raw = bus_config_raw (config);
    const char *network = NULL, *server = NULL, *key_file = NULL, *ca_file = NULL, *token_file = NULL, *run_dir = NULL;
    config_lookup_string (raw, "network_id", &network);
    config_lookup_string (raw, "discovery.server", &server);
    config_lookup_string (raw, "key_file", &key_file);
    config_lookup_string (raw, "discovery.ca_file", &ca_file);
    config_lookup_string (raw, "discovery.join_token_file", &token_file);
    config_lookup_string (raw, "run_dir", &run_dir);
    int rc = 0;
    ctl_url_t url;
    if (!network || !server || !key_file) {
        fprintf (stderr, "bifrostctl: %s is not a node config of a registry network (network_id, "
                 "discovery.server and key_file are needed)\n", config_path);
        rc = CTL_JOIN_USAGE;
    }
    else
    if (ctl_url_parse (server, &url, err, sizeof err)) {
        fprintf (stderr, "bifrostctl: %s: discovery.server: %s\n", config_path, err);
        rc = CTL_JOIN_USAGE;
    }
    if (rc) {
        bus_config_destroy (&config);
        return rc;
    }
    run_dir = bus_rundir_choose (run_dir_opt, run_dir);
    s_stop (run_dir, config_path, wait_s);
    //  The node's key proves who asks: a re-registration without token (the
    //  registry knows this key) gives the peer token, which may delete its
    //  own peer. A 401 there: the registry does not know this key (anymore)
    uint8_t sk [32], pk [32];
    json_t *reply = NULL;
    if (s_read_key (key_file, sk, pk, err, sizeof err)) {
        fprintf (stderr, "bifrostctl: %s\n", err);
        rc = CTL_JOIN_FAILED;
    }
    else {
        char host [64] = "node";
        gethostname (host, sizeof host - 1);
        int status = s_register (&url, ca_file, network, NULL, sk, pk, host, &reply, err, sizeof err);
        sodium_memzero (sk, sizeof sk);
        if (status == 401)
            fprintf (stderr, "bifrostctl: the registry does not know this node (anymore) in %s\n", network);
        else
        if (status != 200 && status != 201) {
            rc = s_status_code (status);
            if (status)
                fprintf (stderr, "bifrostctl: could not deregister from %s (HTTP %d): %s\n", server, status, err);
            else
                fprintf (stderr, "bifrostctl: could not deregister from %s (unreachable: %s); the registry "
                         "removes the node after its expire_after\n", server, err);
        }
        else {
            char path [256], *answer = NULL;
            snprintf (path, sizeof path, "/api/v1/mesh/networks/%s/peers/%s", network, s_jstr (reply, "peer", "id"));
            status = ctl_http_request (&url, ca_file, "DELETE", path, s_jstr (reply, NULL, "peer_token"), NULL,
                                       S_HTTP_TIMEOUT_MS, &answer, err, sizeof err);
            if (status != 204 && status != 200 && status != 404) {
                if (status)
                    s_why (answer, err, sizeof err);
                rc = s_status_code (status);
                fprintf (stderr, "bifrostctl: could not deregister from %s: %s\n", server, err);
            }
            free (answer);
        }
    }
    json_decref (reply);
    if (!rc && token_file && unlink (token_file) == 0)
        fprintf (stderr, "bifrostctl: removed the join token %s\n", token_file);
    if (!rc)
        printf ("left network %s\n", network);
    bus_config_destroy (&config);
    return rc;
}

//  ---------------------------------------------------------------------------
//  The command line

int
ctl_join_main (int argc, char **argv, int at)
{
    static const struct option options [] = {
        { "run-dir", required_argument, NULL, 'r' },
        { "config", required_argument, NULL, 'c' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "token", required_argument, NULL, 'T' },
        { "token-file", required_argument, NULL, 'F' },
        { "network", required_argument, NULL, 'N' },
        { "key-file", required_argument, NULL, 'K' },
        { "name", required_argument, NULL, 'n' },
        { "ca-file", required_argument, NULL, 'A' },
        { "allow-http", no_argument, NULL, 'H' },
        { "log", required_argument, NULL, 'L' },
        { "wait", required_argument, NULL, 'W' },
        { NULL, 0, NULL, 0 }
    };
    bool join = streq (argv [at], "join");
    //  argv without the command word: bifrostctl's options, then the command's
    char **args = (char **) calloc ((size_t) argc + 1, sizeof (char *));
    assert (args);
    int n = 0;
    for (int i = 0; i < argc; i++)
        if (i != at)
            args [n++] = argv [i];
    s_join_t j = { .config = S_DEFAULT_CONFIG, .key_file = S_DEFAULT_KEY, .log = S_DEFAULT_LOG, .wait_s = 30 };
    int opt, rc = -1;
    optind = 1;
    opterr = 1;
    while (rc < 0 && (opt = getopt_long (n, args, "r:c:vh", options, NULL)) != -1) {
        switch (opt) {
            case 'r': j.run_dir = optarg; break;
            case 'c': j.config = optarg; break;
            case 'v': break;
            case 'T': j.token = optarg; break;
            case 'F': j.token_file = optarg; break;
            case 'N': j.network = optarg; break;
            case 'K': j.key_file = optarg; break;
            case 'n': j.name = optarg; break;
            case 'A': j.ca_file = optarg; break;
            case 'H': j.allow_http = true; break;
            case 'L': j.log = optarg; break;
            case 'W': {
                char *end;
                long w = strtol (optarg, &end, 10);
                if (end == optarg || *end || w < 1 || w > 3600) {
                    fprintf (stderr, "bifrostctl: --wait expects 1 to 3600 seconds, not '%s'\n", optarg);
                    rc = CTL_JOIN_USAGE;
                }
                j.wait_s = (int) w;
                break;
            }
            case 'h': s_join_usage (stdout); rc = 0; break;
            default: s_join_usage (stderr); rc = CTL_JOIN_USAGE; break;
        }
    }
    const char *url_text = optind < n ? args [optind] : NULL;
    int extra = n - optind - (url_text ? 1 : 0);
    free (args);
    if (rc >= 0)
        return rc;
    if (sodium_init () < 0) {
        fprintf (stderr, "bifrostctl: libsodium failed to initialise\n");
        return CTL_JOIN_FAILED;
    }
    zsys_init ();
    zsys_set_logstream (NULL);
    if (!join) {
        if (url_text) {
            fprintf (stderr, "bifrostctl: leave takes no argument (it reads the network from %s)\n", j.config);
            return CTL_JOIN_USAGE;
        }
        return s_leave (j.config, j.run_dir, j.wait_s);
    }
    //  join: what the operator typed, checked before anything is done
    char err [400];
    if (!url_text || extra > 0) {
        fprintf (stderr, "bifrostctl: join needs one registry URL (bifrostctl join -h)\n");
        return CTL_JOIN_USAGE;
    }
    if (ctl_url_parse (url_text, &j.url, err, sizeof err)) {
        fprintf (stderr, "bifrostctl: %s\n", err);
        return CTL_JOIN_USAGE;
    }
    //  A URL that names the network: .../api/v1/mesh/networks/ID
    const char *marker = "/api/v1/mesh/networks/";
    if (*j.url.path) {
        static char network [64];
        const char *found = strstr (j.url.path, marker);
        if (!found || found != j.url.path || strchr (found + strlen (marker), '/')
        ||  strlen (found + strlen (marker)) >= sizeof network) {
            fprintf (stderr, "bifrostctl: '%s': the registry URL has no path (or names the network: "
                     "https://host:port%sID)\n", url_text, marker);
            return CTL_JOIN_USAGE;
        }
        snprintf (network, sizeof network, "%s", found + strlen (marker));
        if (j.network && !streq (j.network, network)) {
            fprintf (stderr, "bifrostctl: the URL names network %s, --network %s\n", network, j.network);
            return CTL_JOIN_USAGE;
        }
        j.network = network;
        j.url.path [0] = 0;
    }
    snprintf (j.server, sizeof j.server, "%s://%s%s%s:%u", j.url.tls ? "https" : "http",
              strchr (j.url.host, ':') ? "[" : "", j.url.host, strchr (j.url.host, ':') ? "]" : "", j.url.port);
    if (!j.network || !s_valid_network (j.network)) {
        fprintf (stderr, "bifrostctl: %s: --network ID is needed: 1..32 of a-z, 0-9 and '-', as the registry's "
                 "admin named the network\n", j.network ? j.network : "no network");
        return CTL_JOIN_USAGE;
    }
    if (!j.token)
        j.token = getenv ("BIFROST_JOIN_TOKEN");
    if (!j.token || !s_valid_token (j.token)) {
        fprintf (stderr, "bifrostctl: --token TOKEN is needed: the join token (bjt_...) the registry's admin made, "
                 "printable, without spaces\n");
        return CTL_JOIN_USAGE;
    }
    if (!j.url.tls && !ctl_url_loopback (&j.url) && !j.allow_http) {
        fprintf (stderr, "bifrostctl: %s is plain http to another machine: the token would travel in clear "
                 "(use https://, or --allow-http on a trusted network)\n", url_text);
        return CTL_JOIN_USAGE;
    }
    if (j.ca_file && (!j.url.tls || access (j.ca_file, R_OK) != 0)) {
        fprintf (stderr, "bifrostctl: --ca-file %s: %s\n", j.ca_file, j.url.tls ? strerror (errno)
                 : "a CA file needs an https:// registry");
        return CTL_JOIN_USAGE;
    }
    if (!j.name) {
        if (gethostname (j.host_name, sizeof j.host_name - 1))
            snprintf (j.host_name, sizeof j.host_name, "node");
        j.host_name [strcspn (j.host_name, ".")] = 0;
        j.name = j.host_name;
    }
    if (!s_valid_name (j.name)) {
        fprintf (stderr, "bifrostctl: --name '%s': 1..64 of letters, digits, '-', '_', '.', the first a letter "
                 "or digit\n", j.name);
        return CTL_JOIN_USAGE;
    }
    j.run_dir = bus_rundir_choose (j.run_dir, NULL);
    if (!j.token_file) {
        char dir [400];
        snprintf (dir, sizeof dir, "%s", j.config);
        snprintf (j.token_path, sizeof j.token_path, "%s/join-token", dirname (dir));
    }
    else
        snprintf (j.token_path, sizeof j.token_path, "%s", j.token_file);
    const char *paths [] = { j.config, j.key_file, j.token_path, j.run_dir, j.log, j.ca_file };
    for (size_t i = 0; i < sizeof paths / sizeof paths [0]; i++)
        if (paths [i] && !s_valid_path (paths [i])) {
            fprintf (stderr, "bifrostctl: '%s': an absolute path without quotes is needed\n", paths [i]);
            return CTL_JOIN_USAGE;
        }
    return s_join (&j);
}

//  ---------------------------------------------------------------------------
//  Self test: the checks of what the operator types; the config text

void
ctl_join_test (bool verbose)
{
    assert (s_valid_network ("office") && s_valid_network ("e2e-1") && !s_valid_network ("-x"));
    assert (!s_valid_network ("Office") && !s_valid_network (""));
    assert (s_valid_name ("laptop-1.home") && !s_valid_name ("-a") && !s_valid_name ("a b"));
    assert (s_valid_token ("bjt_abc") && !s_valid_token ("a b") && !s_valid_token (""));
    assert (s_valid_path ("/etc/bifrost/bifrost.cfg") && !s_valid_path ("etc/x") && !s_valid_path ("/a\"b"));
    s_join_t j = { .config = "/etc/bifrost/bifrost.cfg", .key_file = "/var/lib/bifrost/node.key",
                   .network = "office", .name = "laptop", .run_dir = "/run/bifrost" };
    assert (ctl_url_parse ("http://192.0.2.10:7080", &j.url, j.server, sizeof j.server) == 0);
    snprintf (j.server, sizeof j.server, "http://192.0.2.10:7080");
    char *text = s_config_text (&j, "/etc/bifrost/join-token");
    if (verbose)
        printf ("%s", text);
    assert (strstr (text, "join_token_file = \"/etc/bifrost/join-token\";"));
    assert (strstr (text, "allow_http = true;") && strstr (text, "network_id = \"office\";"));
    assert (!strstr (text, "bjt_"));
    free (text);
}
