/*  disc_config: the discovery service's settings (see disc_config.h). */
#include "disc_config.h"
#include "bus_config_schema.h"
#include <czmq.h>

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <arpa/inet.h>

bool
disc_config_valid_name (const char *name)
{
    size_t len = strlen (name);
    if (len < 1 || len > 64 || !isalnum ((unsigned char) name [0]))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) name [i];
        if (!(isalnum (c) || c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

bool
disc_config_valid_network (const char *id)
{
    size_t len = strlen (id);
    if (len < 1 || len > 32)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id [i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
        if (!ok)
            return false;
    }
    return true;
}

bool
disc_config_loopback (const char *host)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton (AF_INET, host, &v4) == 1)
        return (ntohl (v4.s_addr) >> 24) == 127;
    if (inet_pton (AF_INET6, host, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK (&v6);
    return strcmp (host, "localhost") == 0;
}

static int
s_fail (char *err, size_t errsize, const char *what)
{
    snprintf (err, errsize, "%s", what);
    return -1;
}

int
disc_config_parse_url (const char *url, bool *tls, char *host, size_t host_size,
                       uint16_t *port, char *err, size_t errsize)
{
    const char *rest;
    if (strncmp (url, "https://", 8) == 0) {
        *tls = true;
        rest = url + 8;
    }
    else
    if (strncmp (url, "http://", 7) == 0) {
        *tls = false;
        rest = url + 7;
    }
    else
        return s_fail (err, errsize, "expected an http:// or https:// URL, e.g. \"https://registry.example.org:7080\"");
    //  host[:port] up to an optional trailing '/': a path is not supported
    size_t len = strcspn (rest, "/");
    if (rest [len] == '/' && rest [len + 1] != 0)
        return s_fail (err, errsize, "a path after host:port is not supported");
    const char *host_start = rest, *host_end, *port_text = NULL;
    if (*rest == '[') {
        host_start = rest + 1;
        host_end = memchr (rest, ']', len);
        if (!host_end)
            return s_fail (err, errsize, "missing ']' after an IPv6 address");
        if (host_end + 1 < rest + len) {
            if (host_end [1] != ':')
                return s_fail (err, errsize, "expected ':' and a port after ']'");
            port_text = host_end + 2;
        }
    }
    else {
        const char *colon = memchr (rest, ':', len);
        host_end = colon ? colon : rest + len;
        if (colon)
            port_text = colon + 1;
    }
    size_t host_len = (size_t) (host_end - host_start);
    if (host_len == 0)
        return s_fail (err, errsize, "missing host name");
    if (host_len >= host_size)
        return s_fail (err, errsize, "host name too long");
    for (size_t i = 0; i < host_len; i++) {
        unsigned char c = (unsigned char) host_start [i];
        if (!(isalnum (c) || c == '-' || c == '.' || c == ':' || c == '_'))
            return s_fail (err, errsize, "bad character in the host name");
    }
    memcpy (host, host_start, host_len);
    host [host_len] = 0;
    *port = *tls ? 443 : 80;
    if (port_text) {
        size_t port_len = (size_t) (rest + len - port_text);
        char digits [8];
        if (port_len == 0 || port_len > 5)
            return s_fail (err, errsize, "expected a port 1..65535");
        memcpy (digits, port_text, port_len);
        digits [port_len] = 0;
        char *end;
        long value = strtol (digits, &end, 10);
        if (*end || value < 1 || value > 65535 || !isdigit ((unsigned char) digits [0]))
            return s_fail (err, errsize, "expected a port 1..65535");
        *port = (uint16_t) value;
    }
    return 0;
}

//  The port of connection.listen ("0.0.0.0:51820", "[::]:51820", "*:51820");
//  The port of a "host:port" listen address; nat validates the whole value,
//  we only need the number (the schema's default port when it has none)
static uint16_t
s_listen_port (const char *listen)
{
    const char *colon = listen ? strrchr (listen, ':') : NULL;
    char *end;
    long value = colon ? strtol (colon + 1, &end, 10) : -1;
    if (!colon || *end || value < 0 || value > 65535)
        return listen == bus_cfg_connection_defaults.listen ? 0 : s_listen_port (bus_cfg_connection_defaults.listen);
    return (uint16_t) value;
}

//  True when the listen address is an IPv4 literal ("0.0.0.0:51820"): nat's
//  socket is then IPv4 only, and an IPv6 endpoint would send peers nowhere
static bool
s_listen_ipv4_only (const char *listen)
{
    const char *colon = listen ? strrchr (listen, ':') : NULL;
    char host [INET_ADDRSTRLEN];
    struct in_addr addr;
    if (!colon || (size_t) (colon - listen) >= sizeof host)
        return false;
    memcpy (host, listen, (size_t) (colon - listen));
    host [colon - listen] = 0;
    return inet_pton (AF_INET, host, &addr) == 1;
}

static void
s_default_name (char *name, size_t size)
{
    char host [256] = "";
    if (gethostname (host, sizeof host - 1) != 0)
        host [0] = 0;
    host [strcspn (host, ".")] = 0;     //  the short name
    host [64] = 0;
    snprintf (name, size, "%s", disc_config_valid_name (host) ? host : "node");
}

//  The join token from discovery.join_token_file: one line of printable
//  ASCII, the file regular and private to its owner (as the key file:
//  crypto_identity), read now, as root, before the service drops privileges.
//  0, or -1 with err
static int
s_read_token_file (const char *path, char *out, size_t out_size, char *err, size_t err_size)
{
    int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf (err, err_size, "cannot open %s: %s", path, strerror (errno));
        return -1;
    }
    struct stat st;
    if (fstat (fd, &st) || !S_ISREG (st.st_mode) || (st.st_mode & 077)) {
        snprintf (err, err_size, "%s must be a regular file of mode 0600 (chmod 600 %s; it holds a secret)",
                  path, path);
        close (fd);
        return -1;
    }
    char text [300];
    ssize_t size = read (fd, text, sizeof text);
    close (fd);
    size_t len = size > 0 ? (size_t) size : 0;
    while (len && (text [len - 1] == '\n' || text [len - 1] == '\r' || text [len - 1] == ' '))
        len--;
    bool printable = len > 0;
    for (size_t i = 0; i < len; i++)
        printable &= text [i] > ' ' && text [i] < 127;
    int rc = 0;
    if (size < 0 || (size_t) size == sizeof text || len >= out_size || !printable) {
        snprintf (err, err_size, "%s: expected one token (bjt_...) of printable ASCII on one line", path);
        rc = -1;
    }
    else {
        memcpy (out, text, len);
        out [len] = 0;
    }
    memset (text, 0, sizeof text);
    return rc;
}

//  discovery's checks as the schema reads each key: the registry's URL, a
//  token's characters, a readable CA file, names the registry accepts
static void
s_check_key (bus_config_t *config, config_setting_t *group, config_setting_t *setting,
             const bus_cfg_key_t *key, bool refused, void *out, void *arg)
{
    disc_config_t *cfg = (disc_config_t *) arg;
    const bus_cfg_discovery_t *in = (const bus_cfg_discovery_t *) out;
    char err [160];
    if (streq (key->name, "network_id")) {
        const char *network = ((const bus_cfg_network_t *) out)->network_id;
        if (!network)
            bus_config_error (config, NULL, "network_id: missing: the id of the network to join, e.g. network_id = \"office\";");
        else
        if (!disc_config_valid_network (network))
            bus_config_error (config, setting, "expected 1..32 of a-z, 0-9 and '-' (not first), as the registry names networks");
        else
            snprintf (cfg->network_id, sizeof cfg->network_id, "%s", network);
    }
    else
    if (streq (key->name, "server")) {
        if (!in->server)
            bus_config_error (config, group, "missing server: the registry's URL, e.g. \"https://registry.example.org:7080\"");
        else
        if (strlen (in->server) >= sizeof cfg->server)
            bus_config_error (config, setting, "too long");
        else
        if (disc_config_parse_url (in->server, &cfg->tls, cfg->host, sizeof cfg->host, &cfg->port, err, sizeof err))
            bus_config_error (config, setting, "%s", err);
        else
            snprintf (cfg->server, sizeof cfg->server, "%s", in->server);
    }
    else
    if (streq (key->name, "join_token")) {
        const char *token = in->join_token;
        if (strlen (token) >= sizeof cfg->join_token)
            bus_config_error (config, setting, "too long");
        else {
            for (const char *c = token; *c; c++)
                if (*c <= ' ' || *c >= 127) {
                    bus_config_error (config, setting, "a token is printable ASCII without spaces (bjt_...)");
                    token = "";
                    break;
                }
            snprintf (cfg->join_token, sizeof cfg->join_token, "%s", token);
        }
    }
    else
    if (streq (key->name, "join_token_file") && in->join_token_file) {
        if (cfg->join_token [0])
            bus_config_error (config, setting, "set join_token or join_token_file, not both");
        else
        if (s_read_token_file (in->join_token_file, cfg->join_token, sizeof cfg->join_token, err, sizeof err))
            bus_config_error (config, setting, "%s", err);
    }
    else
    if (streq (key->name, "heartbeat_interval"))
        cfg->heartbeat_ms = in->heartbeat_interval_ms;
    else
    if (streq (key->name, "allow_http"))
        cfg->allow_http = in->allow_http;
    else
    if (streq (key->name, "ca_file") && in->ca_file) {
        if (!*in->ca_file || strlen (in->ca_file) >= sizeof cfg->ca_file)
            bus_config_error (config, setting, "expected a path of 1..%zu characters", sizeof cfg->ca_file - 1);
        else
        if (access (in->ca_file, R_OK) != 0)
            bus_config_error (config, setting, "cannot read %s", in->ca_file);
        else
        if (in->server && !cfg->tls && cfg->host [0])
            bus_config_error (config, setting, "a CA file needs an https:// server");
        else
            snprintf (cfg->ca_file, sizeof cfg->ca_file, "%s", in->ca_file);
    }
    else
    if (streq (key->name, "name") && in->name) {
        if (!disc_config_valid_name (in->name))
            bus_config_error (config, setting,
                              "expected 1..64 of letters, digits, '-', '_', '.', the first a letter or digit");
        else
            snprintf (cfg->name, sizeof cfg->name, "%s", in->name);
    }
}

void
disc_config_check (bus_config_t *config, disc_config_t *out)
{
    disc_config_t local;
    disc_config_t *cfg = out ? out : &local;
    memset (cfg, 0, sizeof *cfg);
    cfg->heartbeat_ms = bus_cfg_discovery_defaults.heartbeat_interval_ms;
    cfg->listen_port = s_listen_port (bus_cfg_connection_defaults.listen);
    s_default_name (cfg->name, sizeof cfg->name);
    if (!config)
        return;
    config_setting_t *group = config_lookup (bus_config_raw (config), "discovery");
    if (!group) {
        bus_config_error (config, NULL, "discovery: missing group: discovery = { server = \"https://host:7080\"; "
                          "join_token = \"${BIFROST_JOIN_TOKEN}\"; };");
        return;
    }
    if (!config_setting_is_group (group)) {
        bus_config_error (config, group, "expected a group: discovery = { server = \"https://host:7080\"; ... };");
        return;
    }
    bus_cfg_network_t network;
    bus_cfg_read (config, &bus_cfg_network_group, NULL, &network, 0, NULL, s_check_key, cfg);
    bus_cfg_discovery_t discovery;
    bus_cfg_read (config, &bus_cfg_discovery_group, group, &discovery, BUS_CFG_CHECK_KEYS, NULL, s_check_key, cfg);
    //  Plain http carries the join token, the peer token and every peer's key
    //  in clear: only to this machine, or when the file says so (issue 16)
    if (cfg->server [0] && !cfg->tls && !cfg->allow_http && !disc_config_loopback (cfg->host))
        bus_config_error (config, config_setting_get_member (group, "server"),
                          "plain http:// to a registry that is not on this machine sends the join token in "
                          "clear: use https://, or set allow_http = true (tests, a trusted LAN)");
    //  nat's, only the port
    static const char *const listen [] = { "listen", NULL };
    bus_cfg_connection_t connection;
    bus_cfg_read (config, &bus_cfg_connection_group, NULL, &connection, 0, listen, NULL, NULL);
    cfg->listen_port = s_listen_port (connection.listen);
    cfg->listen_ipv4_only = s_listen_ipv4_only (connection.listen);
}

//  --------------------------------------------------------------------------
//  Self test

static size_t
s_check (const char *text, const char *expect, bool verbose, disc_config_t *cfg)
{
    char err [300];
    bus_config_t *config = bus_config_load_string (text, "node.cfg", err, sizeof err);
    assert (config);
    disc_config_check (config, cfg);
    size_t errors = bus_config_error_count (config);
    bool found = !expect;
    for (size_t e = 0; e < errors; e++) {
        if (verbose)
            printf ("  %s\n", bus_config_error_text (config, e));
        if (expect && strstr (bus_config_error_text (config, e), expect))
            found = true;
    }
    if (!found)
        printf ("  expected '%s' in the errors of: %s\n", expect, text);
    assert (found);
    bus_config_destroy (&config);
    return errors;
}

void
disc_config_test (bool verbose)
{
    disc_config_t cfg;
    disc_config_check (NULL, &cfg);
    assert (cfg.heartbeat_ms == 30000 && cfg.listen_port == 51820 && *cfg.name);
    //  Which families nat listens on decides which endpoints are registered
    assert (s_listen_ipv4_only ("0.0.0.0:51820") && s_listen_ipv4_only ("192.0.2.7:1"));
    assert (!s_listen_ipv4_only ("*:51820") && !s_listen_ipv4_only ("[::]:51820")
         && !s_listen_ipv4_only ("[2001:db8::1]:51820") && !s_listen_ipv4_only (NULL)
         && !s_listen_ipv4_only ("51820"));

    //  The token from a file of mode 0600 (bifrostctl join writes it); group-
    //  readable, missing, empty or beside join_token: refused at its line
    char token_path [] = "/tmp/disc-token-XXXXXX";
    int token_fd = mkstemp (token_path);
    assert (token_fd >= 0 && write (token_fd, "bjt_fromfile\n", 13) == 13);
    close (token_fd);
    char text [400];
    snprintf (text, sizeof text, "network_id = \"n\";\ndiscovery = { server = \"http://127.0.0.1\";\n"
              "  join_token_file = \"%s\"; };\n", token_path);
    assert (s_check (text, NULL, verbose, &cfg) == 0 && streq (cfg.join_token, "bjt_fromfile"));
    assert (chmod (token_path, 0640) == 0);
    assert (s_check (text, "node.cfg:3: discovery.join_token_file", verbose, NULL) == 1);
    assert (chmod (token_path, 0600) == 0);
    snprintf (text, sizeof text, "network_id = \"n\";\ndiscovery = { server = \"http://127.0.0.1\"; join_token = \"bjt_x\";\n"
              "  join_token_file = \"%s\"; };\n", token_path);
    assert (s_check (text, "not both", verbose, NULL) == 1);
    assert (truncate (token_path, 0) == 0);
    snprintf (text, sizeof text, "network_id = \"n\";\ndiscovery = { server = \"http://127.0.0.1\"; join_token_file = \"%s\"; };\n",
              token_path);
    assert (s_check (text, "expected one token", verbose, NULL) == 1);
    unlink (token_path);
    assert (s_check (text, "cannot open", verbose, NULL) == 1);

    //  A full good config
    setenv ("DISC_TEST_TOKEN", "bjt_abcdef", 1);
    assert (s_check ("network_id = \"office\";\n"
                     "discovery = { server = \"https://reg.example.org:7443\"; join_token = \"${DISC_TEST_TOKEN}\";\n"
                     "  heartbeat_interval = \"5s\"; ca_file = \"/dev/null\"; name = \"laptop-1\"; };\n"
                     "connection = { listen = \"0.0.0.0:4000\"; };\n", NULL, verbose, &cfg) == 0);
    assert (streq (cfg.network_id, "office") && cfg.tls && streq (cfg.host, "reg.example.org"));
    assert (cfg.port == 7443 && streq (cfg.join_token, "bjt_abcdef") && cfg.heartbeat_ms == 5000);
    assert (streq (cfg.ca_file, "/dev/null") && streq (cfg.name, "laptop-1") && cfg.listen_port == 4000);
    assert (s_check ("network_id = \"n1\"; discovery = { server = \"http://[2001:db8::1]:7080/\"; allow_http = true; };\n"
                     "connection = { listen = \"[::]:0\"; };", NULL, verbose, &cfg) == 0);
    assert (!cfg.tls && streq (cfg.host, "2001:db8::1") && cfg.port == 7080 && cfg.listen_port == 0);
    assert (!*cfg.join_token && !*cfg.ca_file);
    assert (s_check ("network_id = \"n1\"; discovery = { server = \"https://reg\"; };", NULL, verbose, &cfg) == 0);
    assert (cfg.port == 443);

    //  Every mistake: file and line
    assert (s_check ("network_id = \"n1\";\n", "discovery: missing group", verbose, NULL) == 1);
    assert (s_check ("network_id = \"n1\";\ndiscovery = 5;\n", "node.cfg:2: discovery: expected a group", verbose, NULL) == 1);
    assert (s_check ("network_id = \"n1\";\ndiscovery = { server = \"http://127.0.0.1:1\"; sever = 1; };\n",
                     "node.cfg:2: discovery.sever: unknown setting", verbose, NULL) == 1);
    assert (s_check ("discovery = { server = \"http://127.0.0.1:1\"; };\n", "network_id: missing", verbose, NULL) == 1);
    assert (s_check ("network_id = \"Office net\";\ndiscovery = { server = \"http://127.0.0.1:1\"; };\n",
                     "node.cfg:1: network_id", verbose, NULL) == 1);
    assert (s_check ("network_id = \"n\";\ndiscovery = { };\n", "missing server", verbose, NULL) == 1);
    assert (s_check ("network_id = \"n\";\ndiscovery = {\n server = \"ftp://r\"; };\n",
                     "node.cfg:3: discovery.server: expected an http", verbose, NULL) == 1);
    assert (s_check ("network_id = \"n\";\ndiscovery = { server = \"http://127.0.0.1:99999\"; };\n", "port", verbose, NULL) == 1);
    assert (s_check ("network_id = \"n\";\ndiscovery = { server = \"http://127.0.0.1:7080/api\"; };\n", "path", verbose, NULL) == 1);
    assert (s_check ("network_id = \"n\";\ndiscovery = { server = \"http://[::1:7080\"; };\n", "]", verbose, NULL) == 1);
    assert (s_check ("network_id = \"n\";\ndiscovery = { server = \"http://\"; };\n", "host", verbose, NULL) == 1);
    assert (s_check ("network_id = \"n\";\ndiscovery = { server = \"http://127.0.0.1\"; heartbeat_interval = \"soon\"; };\n",
                     "discovery.heartbeat_interval", verbose, NULL) == 1);
    assert (s_check ("network_id = \"n\";\ndiscovery = { server = \"http://127.0.0.1\"; heartbeat_interval = \"10ms\"; };\n",
                     "discovery.heartbeat_interval", verbose, NULL) == 1);
    assert (s_check ("network_id = \"n\";\ndiscovery = { server = \"https://r\"; ca_file = \"/nonexistent/ca.pem\"; };\n",
                     "cannot read", verbose, NULL) == 1);
    assert (s_check ("network_id = \"n\";\ndiscovery = { server = \"http://127.0.0.1\"; ca_file = \"/dev/null\"; };\n",
                     "needs an https", verbose, NULL) == 1);
    assert (s_check ("network_id = \"n\";\ndiscovery = { server = \"http://127.0.0.1\"; name = \"-bad name\"; };\n",
                     "discovery.name", verbose, NULL) == 1);
    assert (s_check ("network_id = \"n\";\ndiscovery = { server = \"http://127.0.0.1\"; join_token = \"a b\"; };\n",
                     "discovery.join_token", verbose, NULL) == 1);
    assert (s_check ("network_id = \"n\";\ndiscovery = { server = \"http://127.0.0.1\"; join_token = \"${DISC_TEST_UNSET}\"; };\n",
                     "DISC_TEST_UNSET", verbose, NULL) >= 1);

    //  Plain http only to loopback, unless allow_http says so (issue 16): the
    //  join token, the peer token and every peer's key would travel in clear
    assert (s_check ("network_id = \"n\";\ndiscovery = {\n server = \"http://192.0.2.1:7080\"; };\n",
                     "node.cfg:3: discovery.server: plain http:// to a registry that is not on this machine", verbose, NULL) == 1);
    assert (s_check ("network_id = \"n\";\ndiscovery = { server = \"http://reg.example.org\"; allow_http = false; };\n",
                     "allow_http = true", verbose, NULL) == 1);
    assert (s_check ("network_id = \"n\";\ndiscovery = { server = \"http://192.0.2.1:7080\"; allow_http = true; };\n",
                     NULL, verbose, &cfg) == 0);
    assert (!cfg.tls && streq (cfg.host, "192.0.2.1"));
    assert (s_check ("network_id = \"n\";\ndiscovery = { server = \"http://127.0.0.9:7080\"; };\n", NULL, verbose, NULL) == 0);
    assert (s_check ("network_id = \"n\";\ndiscovery = { server = \"http://localhost:7080\"; };\n", NULL, verbose, NULL) == 0);
    assert (s_check ("network_id = \"n\";\ndiscovery = { server = \"http://[::1]:7080\"; };\n", NULL, verbose, NULL) == 0);
    assert (s_check ("network_id = \"n\";\ndiscovery = { server = \"http://127.0.0.1.evil.org\"; };\n",
                     "plain http", verbose, NULL) == 1);
    assert (s_check ("network_id = \"n\";\ndiscovery = { server = \"https://reg\"; allow_http = 1; };\n",
                     "discovery.allow_http", verbose, NULL) == 1);
    assert (disc_config_loopback ("127.0.0.1") && disc_config_loopback ("::1") && disc_config_loopback ("localhost"));
    assert (!disc_config_loopback ("128.0.0.1") && !disc_config_loopback ("localhost.evil") && !disc_config_loopback (""));

    assert (disc_config_valid_name ("a") && disc_config_valid_name ("node_1.lan") && !disc_config_valid_name (""));
    assert (!disc_config_valid_name (".x") && !disc_config_valid_name ("a/b"));
    assert (disc_config_valid_network ("a-1") && !disc_config_valid_network ("-a") && !disc_config_valid_network ("A"));
}
