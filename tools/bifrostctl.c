/*  bifrostctl: the operator's command line for a running bifrostd. It talks to
    bifrostd's control socket directly (not through the broker, so status works
    while the broker is down) and to the broker's tap socket for `tap`. Every
    failure is one clear line and exit 1; a config error is exit 78. */
#include "config.h"
#include "bus_client.h"
#include "bus_config.h"
#include "bus_endpoint.h"
#include "bus_envelope.h"
#include "bus_rundir.h"
#include "ctl_join.h"

#include <czmq.h>
#include <fnmatch.h>
#include <getopt.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define S_TIMEOUT_MS 3000

static bool s_verbose = false;

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: bifrostctl [-r RUN_DIR | -c FILE] [-v] COMMAND [ARGS]\n"
        "Controls a running bifrostd.\n"
        "\n"
        "commands:\n"
        "  status [--json] [NAME]    every service instance: pid, state, uptime, restarts\n"
        "  tap [PATTERN] [--count N] [--timeout S]\n"
        "                            print bus messages and events, one JSON line each;\n"
        "                            PATTERN is a glob on the type, e.g. 'peer.*', 'sup.*';\n"
        "                            --pipes: also mirror packet headers of the data pipes\n"
        "                            (tap --pipes 'bus.pipe.*' is tcpdump on the bus)\n"
        "  scale NAME N              run N instances of service NAME (0 to 64)\n"
        "  restart NAME              restart every instance of NAME (also a failed one)\n"
        "  stop                      stop every service, then bifrostd\n"
        "  peers [--json] [NAME]     every peer: endpoint, path, state, handshake age, bytes, last\n"
        "                            packet, the path's round trip and loss; with NAME that peer\n"
        "                            in detail: the addresses tried for a direct path, and results\n"
        "  key                       show this node's public key (asked from the crypto service)\n"
        "  bus [--json]              the broker's counters: instances, routed, events, dropped,\n"
        "                            unroutable, bad input, refused by the sender policy (bus.status)\n"
        "  relay [--json]            every relay worker (relay.1..N): peers, forwarded, refused,\n"
        "                            dropped and limited datagrams (relay.status)\n"
        "  routes [--json] [NAME]    the router's table: destination, next hop, path (direct,\n"
        "                            peer, relay, turn), metric, hops, the link's RTT, age\n"
        "  group join ADDR           this node joins a multicast group or answers an anycast\n"
        "                            address (a unicast ADDR); kept across router restarts\n"
        "  group leave ADDR          leave what group join joined\n"
        "  group list [--json]       every group known: this node's (and why), the peers that\n"
        "                            are members by name, nearest first, the nearest for anycast\n"
        "  bridge [--json]           every bridge instance (bridge.1..N): flows open, waiting and\n"
        "                            established, datagrams, drops, refusals, closes (bridge.status)\n"
        "  join URL --token TOKEN --network ID [...]\n"
        "                            join a registry's network: key, config, node started,\n"
        "                            its virtual IP printed (bifrostctl join -h)\n"
        "  leave                     stop the node and delete it from the registry\n"
        "  netcheck [--json]         this node's network: NAT mapping and filtering (RFC 4787), UDP\n"
        "                            or TCP only, hairpinning, IPv6, the relays, their round trips\n"
        "                            and where each sees this node, the port-mapping gateway\n"
        "\n"
        "options:\n"
        "  -r, --run-dir DIR         bifrostd's run directory (default: run_dir from -c,\n"
        "                            else $BIFROST_RUN_DIR, else " BUS_RUN_DIR_DEFAULT ")\n"
        "  -c, --config FILE         read run_dir from bifrostd's configuration file\n"
        "      --check-config        validate FILE (given with -c) and exit (0 ok, 78 errors)\n"
        "  -v, --verbose             print the raw replies too\n"
        "  -h, --help                this text\n"
        "See docs/bifrostctl.md.\n");
}

//  ---------------------------------------------------------------------------
//  Requests to bifrostd

//  Sends one request to bifrostd; on failure prints why and returns NULL.
static bus_envelope_t *
s_request (const char *run_dir, const bus_schema_t *schema, const void *msg)
{
    char endpoint [BUS_PATH_MAX], err [256];
    if (bus_endpoint (endpoint, sizeof endpoint, run_dir, "control")) {
        fprintf (stderr, "bifrostctl: run directory %s is too long for a unix socket path\n", run_dir);
        return NULL;
    }
    struct stat st;
    if (stat (endpoint + 6, &st)) {
        fprintf (stderr, "bifrostctl: bifrostd is not running (no control socket at %s)\n", endpoint + 6);
        return NULL;
    }
    bus_client_t *client = bus_client_new (endpoint, NULL, err, sizeof err);
    if (!client) {
        fprintf (stderr, "bifrostctl: bifrostd is not running (%s)\n", err);
        return NULL;
    }
    bus_envelope_t *reply = bus_client_request (client, "bifrostd", schema, msg, S_TIMEOUT_MS, err, sizeof err);
    bus_client_destroy (&client);
    if (!reply) {
        if (strncmp (err, "no answer", 9) == 0)
            fprintf (stderr, "bifrostctl: no answer from bifrostd within %d s (%s); is it hung or "
                     "was it killed?\n", S_TIMEOUT_MS / 1000, endpoint + 6);
        else
            fprintf (stderr, "bifrostctl: %s\n", err);
        return NULL;
    }
    if (s_verbose) {
        json_t *json = bus_envelope_to_json (reply);
        char *text = json_dumps (json, JSON_COMPACT);
        fprintf (stderr, "%s\n", text);
        free (text);
        json_decref (json);
    }
    return reply;
}

//  Prints the message of a sup.ok reply; returns the exit code.
static int
s_expect_ok (bus_envelope_t *reply)
{
    if (!reply)
        return 1;
    sup_ok_t ok;
    char err [200];
    int rc = 0;
    if (bus_envelope_get_msg (reply, &sup_ok_schema, &ok, err, sizeof err)) {
        fprintf (stderr, "bifrostctl: unexpected reply %s: %s\n", bus_envelope_type (reply), err);
        rc = 1;
    }
    else
        printf ("%s\n", ok.message);
    bus_envelope_destroy (&reply);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Requests to the node's services, through the broker

//  Asks service `to` on the node's bus within timeout_ms; unless quiet,
//  prints why on failure. NULL on failure.
static bus_envelope_t *
s_ask_within (const char *run_dir, const char *to, const bus_schema_t *schema, const void *msg,
              int timeout_ms, bool quiet)
{
    char endpoint [BUS_PATH_MAX], err [256], identity [32];
    if (bus_endpoint (endpoint, sizeof endpoint, run_dir, "bus")) {
        fprintf (stderr, "bifrostctl: run directory %s is too long for a unix socket path\n", run_dir);
        return NULL;
    }
    snprintf (identity, sizeof identity, "bifrostctl-%d", (int) getpid ());
    bus_client_t *client = bus_client_new (endpoint, identity, err, sizeof err);
    if (!client) {
        if (!quiet)
            fprintf (stderr, "bifrostctl: the bus is not running (%s)\n", err);
        return NULL;
    }
    bus_envelope_t *reply = bus_client_request (client, to, schema, msg, timeout_ms, err, sizeof err);
    bus_client_destroy (&client);
    if (!reply && !quiet)
        fprintf (stderr, "bifrostctl: %s: %s\n", to, err);
    return reply;
}

//  Asks service `to` on the node's bus; prints why on failure and returns NULL.
static bus_envelope_t *
s_ask (const char *run_dir, const char *to, const bus_schema_t *schema, const void *msg)
{
    return s_ask_within (run_dir, to, schema, msg, S_TIMEOUT_MS, false);
}

static int
s_key (const char *run_dir)
{
    crypto_key_t request = { .peer = "" };
    bus_envelope_t *reply = s_ask (run_dir, "crypto", &crypto_key_schema, &request);
    if (!reply)
        return 1;
    crypto_key_reply_t key;
    char err [200];
    int rc = bus_envelope_get_msg (reply, &crypto_key_reply_schema, &key, err, sizeof err);
    if (rc)
        fprintf (stderr, "bifrostctl: unexpected reply from crypto: %s\n", err);
    else
        printf ("%s\n", key.public_key);
    bus_envelope_destroy (&reply);
    return rc ? 1 : 0;
}

static void s_format_ms (uint64_t ms, char *buf, size_t size);
static int s_peers (const char *run_dir, bool json, const char *only);
static void s_path_json (json_t *p, const nat_status_peer_t *np);
static void s_path_text (const nat_status_peer_t *np, char *rtt, size_t rtt_size, char *loss, size_t loss_size);

//  One line per peer from crypto's view (keys, sessions, plaintext counters) and
//  nat's (endpoint, state, wire counters), joined by peer index. Either may be
//  missing (a service restarting): what the other knows is still shown.
static int
s_peers (const char *run_dir, bool json, const char *only)
{
    static crypto_status_reply_t crypto;
    static nat_status_reply_t nat;
    char err [200];
    //  Say once that the bus is not there, not once per service asked
    char endpoint [BUS_PATH_MAX];
    struct stat st;
    if (bus_endpoint (endpoint, sizeof endpoint, run_dir, "bus") == 0 && stat (endpoint + 6, &st)) {
        fprintf (stderr, "bifrostctl: the bus is not running (no socket at %s)\n", endpoint + 6);
        return 1;
    }
    crypto_status_t crypto_request = { .peer = "" };
    nat_status_t nat_request = { .peer = "" };
    bus_envelope_t *reply = s_ask (run_dir, "crypto", &crypto_status_schema, &crypto_request);
    bool have_crypto = reply && bus_envelope_get_msg (reply, &crypto_status_reply_schema, &crypto, err, sizeof err) == 0;
    bus_envelope_destroy (&reply);
    reply = s_ask (run_dir, "nat", &nat_status_schema, &nat_request);
    bool have_nat = reply && bus_envelope_get_msg (reply, &nat_status_reply_schema, &nat, err, sizeof err) == 0;
    bus_envelope_destroy (&reply);
    if (!have_crypto && !have_nat)
        return 1;
    uint32_t count = have_crypto ? crypto.peers_count : nat.peers_count;
    if (json) {
        json_t *root = json_object ();
        if (have_crypto) {
            json_object_set_new (root, "public_key", json_string (crypto.public_key));
            json_t *counters = json_object ();
            for (uint32_t i = 0; i < crypto.counters_count; i++)
                json_object_set_new (counters, crypto.counters [i].name, json_integer ((json_int_t) crypto.counters [i].value));
            json_object_set_new (root, "crypto", counters);
        }
        if (have_nat) {
            json_t *n = bus_codec_to_json (&nat_status_reply_schema, &nat);
            json_object_del (n, "peers");
            json_object_set_new (root, "nat", n);
        }
        json_t *peers = json_array ();
        for (uint32_t i = 0; i < count; i++) {
            json_t *p = have_crypto ? bus_codec_to_json (&crypto_status_peer_schema, &crypto.peers [i]) : json_object ();
            if (have_nat && i < nat.peers_count) {
                const nat_status_peer_t *np = &nat.peers [i];
                json_object_set_new (p, "index", json_integer (np->index));
                json_object_set_new (p, "name", json_string (np->name));
                json_object_set_new (p, "endpoint", json_string (np->endpoint));
                json_object_set_new (p, "state", json_string (np->state));
                json_object_set_new (p, "direct", json_boolean (np->direct));
                json_object_set_new (p, "path", json_string (np->path));
                json_object_set_new (p, "relay_id", json_string (np->relay_id));
                json_object_set_new (p, "relay_seen", json_string (np->relay_seen));
                json_object_set_new (p, "probe_rounds", json_integer (np->probe_rounds));
                json_object_set_new (p, "predicted_probes", json_integer ((json_int_t) np->predicted_probes));
                json_object_set_new (p, "reason", json_string (np->reason));
                json_object_set_new (p, "wire_rx_bytes", json_integer ((json_int_t) np->rx_bytes));
                json_object_set_new (p, "wire_tx_bytes", json_integer ((json_int_t) np->tx_bytes));
                json_object_set_new (p, "last_wire_rx_ms_ago", json_integer (np->last_rx_ms_ago));
                //  Mesh routing (docs/routing.md): through whom, and transit for it
                json_object_set_new (p, "routed_via", json_string (np->routed_via));
                json_object_set_new (p, "transit_forwarded", json_integer ((json_int_t) np->transit_forwarded));
                json_object_set_new (p, "transit_over_budget", json_integer ((json_int_t) np->transit_over_budget));
                s_path_json (p, np);
            }
            const char *pname = have_crypto ? crypto.peers [i].name : nat.peers [i].name;
            if (only && !streq (pname, only)) {
                json_decref (p);
                continue;
            }
            json_array_append_new (peers, p);
        }
        json_object_set_new (root, "peers", peers);
        char *text = json_dumps (root, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
        printf ("%s\n", text);
        free (text);
        json_decref (root);
        return 0;
    }
    if (have_nat && nat.relays) {
        if (*nat.relay)
            printf ("relay %s, round trip %.1f ms, sees this node at %s (%u of %u relays answer)%s\n",
                    nat.relay, nat.relay_rtt_us / 1000.0, *nat.relay_observed ? nat.relay_observed : "?",
                    nat.relays_up, nat.relays, streq (nat.relay_transport, "wss") ? ", over WebSocket over TLS"
                                             : streq (nat.relay_transport, "tcp") ? ", over TCP" : "");
        else
            printf ("relay: none of %u answers\n", nat.relays);
        //  This node's NAT mapping as the relays see it (RFC 4787 terms)
        if (streq (nat.mapping, "endpoint-dependent-sequential"))
            printf ("NAT mapping: %s (step %u, highest port %u; from %u relays)\n", nat.mapping,
                    nat.mapping_step, nat.mapping_highest_port, nat.mapping_relays);
        else
            printf ("NAT mapping: %s (from %u relay%s)\n", nat.mapping, nat.mapping_relays,
                    nat.mapping_relays == 1 ? "" : "s");
    }
    if (have_nat && *nat.port_mapping && !streq (nat.port_mapping, "off")) {
        if (streq (nat.port_mapping, "mapped"))
            printf ("port mapping %s %s via %s, %" PRId64 " s left\n", nat.port_mapping_protocol,
                    nat.port_mapping_external, nat.port_mapping_gateway, nat.port_mapping_lifetime_left);
        else
            printf ("port mapping %s%s%s\n", nat.port_mapping, *nat.port_mapping_error ? ": " : "",
                    nat.port_mapping_error);
    }
    printf ("%-16s %-24s %-16s %-10s %-10s %12s %12s %10s %9s %9s\n",
            "PEER", "ENDPOINT", "PATH", "STATE", "HANDSHAKE", "RX", "TX", "LAST-RX", "RTT", "LOSS");
    bool found = false;
    for (uint32_t i = 0; i < count; i++) {
        const crypto_status_peer_t *cp = have_crypto ? &crypto.peers [i] : NULL;
        const nat_status_peer_t *np = have_nat && i < nat.peers_count ? &nat.peers [i] : NULL;
        if (only && !streq (cp ? cp->name : np->name, only))
            continue;
        found = true;
        char rtt [24] = "-", loss [24] = "-";
        if (np)
            s_path_text (np, rtt, sizeof rtt, loss, sizeof loss);
        char handshake [32] = "-", last [32] = "-";
        if (cp && cp->handshake_age_ms >= 0)
            s_format_ms ((uint64_t) cp->handshake_age_ms, handshake, sizeof handshake);
        int64_t last_rx = cp ? cp->last_rx_ms_ago : np ? np->last_rx_ms_ago : -1;
        if (last_rx >= 0)
            s_format_ms ((uint64_t) last_rx, last, sizeof last);
        const char *state = cp && cp->session ? "up" : np ? np->state : "down";
        printf ("%-16s %-24s %-16s %-10s %-10s %12" PRIu64 " %12" PRIu64 " %10s %9s %9s\n",
                cp ? cp->name : np->name, np && *np->endpoint ? np->endpoint : "-",
                np && *np->path ? np->path : "-", state, handshake,
                cp ? cp->rx_bytes : np->rx_bytes, cp ? cp->tx_bytes : np->tx_bytes, last, rtt, loss);
        //  Why a relayed peer is not direct, in plain words (nat's reason)
        if (np && *np->reason)
            printf ("    %s\n", np->reason);
        //  The detail view: the path's numbers, and every address tried, one a line
        if (only && np) {
            if (np->rtt_samples)
                printf ("    round trip %.2f ms (smoothed; variation %.2f ms, last %.2f ms, %u samples)\n",
                        np->rtt_us / 1000.0, np->rtt_var_us / 1000.0, np->rtt_last_us / 1000.0, np->rtt_samples);
            else
                printf ("    round trip: no sample yet\n");
            printf ("    loss %u of the last %u probes, on this path for %s\n", np->loss_lost, np->loss_probes,
                    np->path_for_ms >= 0 ? (s_format_ms ((uint64_t) np->path_for_ms, last, sizeof last), last) : "-");
            printf ("    candidates tried for a direct path:%s\n", *np->candidates ? "" : " none");
            for (const char *c = np->candidates; *c; ) {
                const char *end = strstr (c, "; ");
                int len = end ? (int) (end - c) : (int) strlen (c);
                printf ("      %.*s\n", len, c);
                c += len + (end ? 2 : 0);
            }
        }
    }
    if (only && !found) {
        fprintf (stderr, "bifrostctl: no peer named '%s'\n", only);
        return 1;
    }
    return 0;
}

//  The path's RTT and loss (nat.status), as --json adds them: loss as a
//  fraction only when a probe was counted, null before
static void
s_path_json (json_t *p, const nat_status_peer_t *np)
{
    json_object_set_new (p, "rtt_us", json_integer (np->rtt_us));
    json_object_set_new (p, "rtt_var_us", json_integer (np->rtt_var_us));
    json_object_set_new (p, "rtt_last_us", json_integer (np->rtt_last_us));
    json_object_set_new (p, "rtt_samples", json_integer (np->rtt_samples));
    json_object_set_new (p, "loss_probes", json_integer (np->loss_probes));
    json_object_set_new (p, "loss_lost", json_integer (np->loss_lost));
    json_object_set_new (p, "loss", np->loss_probes ? json_real ((double) np->loss_lost / np->loss_probes) : json_null ());
    json_object_set_new (p, "path_for_ms", json_integer (np->path_for_ms));
    json_object_set_new (p, "candidates", json_string (np->candidates));
}

//  "1.23ms" and "5%", or "-" before the first sample / probe
static void
s_path_text (const nat_status_peer_t *np, char *rtt, size_t rtt_size, char *loss, size_t loss_size)
{
    if (np->rtt_samples && np->rtt_us >= 0)
        snprintf (rtt, rtt_size, "%.2fms", np->rtt_us / 1000.0);
    if (np->loss_probes)
        snprintf (loss, loss_size, "%u%%", 100 * np->loss_lost / np->loss_probes);
}

static void
s_format_ms (uint64_t ms, char *buf, size_t size)
{
    uint64_t s = ms / 1000;
    if (s < 60)
        snprintf (buf, size, "%" PRIu64 ".%" PRIu64 "s", s, (ms % 1000) / 100);
    else if (s < 3600)
        snprintf (buf, size, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf (buf, size, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, (s / 60) % 60);
    else
        snprintf (buf, size, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, (s / 3600) % 24);
}

//  ---------------------------------------------------------------------------
//  netcheck: what nat learnt of this node's network (nat.status), as one
//  report: the mapping class from the relays' answers, whether UDP gets out,
//  hairpinning, IPv6, and every relay with its round trip and what it sees

static int
s_netcheck (const char *run_dir, bool json)
{
    static nat_status_reply_t nat;
    nat_status_t request = { .peer = "" };
    char err [200];
    bus_envelope_t *reply = s_ask (run_dir, "nat", &nat_status_schema, &request);
    if (!reply)
        return 1;
    if (bus_envelope_get_msg (reply, &nat_status_reply_schema, &nat, err, sizeof err)) {
        fprintf (stderr, "bifrostctl: unexpected reply from nat: %s\n", err);
        bus_envelope_destroy (&reply);
        return 1;
    }
    bus_envelope_destroy (&reply);
    uint32_t udp = 0, up = 0;
    for (uint32_t i = 0; i < nat.relay_list_count; i++) {
        up += nat.relay_list [i].up;
        udp += nat.relay_list [i].up && streq (nat.relay_list [i].transport, "udp");
    }
    if (json) {
        json_t *root = json_object ();
        json_object_set_new (root, "mapping", json_string (nat.mapping));
        json_object_set_new (root, "mapping_relays", json_integer (nat.mapping_relays));
        json_object_set_new (root, "mapping_step", json_integer (nat.mapping_step));
        json_object_set_new (root, "mapping_highest_port", json_integer (nat.mapping_highest_port));
        json_object_set_new (root, "filtering", json_string (nat.filtering));
        json_object_set_new (root, "udp", json_boolean (udp > 0));
        json_object_set_new (root, "hairpin", json_string (nat.hairpin));
        json_t *v6 = json_object ();
        json_object_set_new (v6, "global_address", json_boolean (nat.ipv6_global));
        json_object_set_new (v6, "relay", json_boolean (nat.ipv6_relay));
        json_object_set_new (root, "ipv6", v6);
        json_t *pm = json_object ();
        json_object_set_new (pm, "state", json_string (nat.port_mapping));
        json_object_set_new (pm, "protocol", json_string (nat.port_mapping_protocol));
        json_object_set_new (pm, "gateway", json_string (nat.port_mapping_gateway));
        json_object_set_new (pm, "external", json_string (nat.port_mapping_external));
        json_object_set_new (pm, "error", json_string (nat.port_mapping_error));
        json_object_set_new (root, "port_mapping", pm);
        json_t *relays = json_array ();
        for (uint32_t i = 0; i < nat.relay_list_count; i++)
            json_array_append_new (relays, bus_codec_to_json (&nat_status_relay_schema, &nat.relay_list [i]));
        json_object_set_new (root, "relays", relays);
        char *text = json_dumps (root, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
        printf ("%s\n", text);
        free (text);
        json_decref (root);
        return 0;
    }
    if (streq (nat.mapping, "endpoint-dependent-sequential"))
        printf ("%-14s %s (step %u, highest port %u; from %u relays)\n", "NAT mapping", nat.mapping,
                nat.mapping_step, nat.mapping_highest_port, nat.mapping_relays);
    else
        printf ("%-14s %s (from %u relay%s)\n", "NAT mapping", nat.mapping, nat.mapping_relays,
                nat.mapping_relays == 1 ? "" : "s");
    printf ("%-14s %s\n", "NAT filtering", streq (nat.filtering, "unknown")
            ? "unknown (the relays cannot test it)" : nat.filtering);
    if (udp)
        printf ("%-14s yes (%u of %u relays answer over UDP)\n", "UDP", udp, nat.relay_list_count);
    else
        printf ("%-14s %s\n", "UDP", up ? "no: the relays answer over TCP or WebSocket only" : "unknown: no relay answers");
    printf ("%-14s %s\n", "hairpinning", nat.hairpin);
    printf ("%-14s %s; %s\n", "IPv6", nat.ipv6_global ? "a global address" : "no global address",
            nat.ipv6_relay ? "a relay answers over IPv6" : "no relay answers over IPv6");
    //  The UPnP-IGD / NAT-PMP gateway, as nat_portmap found it (connection.port_mapping)
    if (streq (nat.port_mapping, "mapped"))
        printf ("%-14s %s %s via gateway %s\n", "port mapping", nat.port_mapping_protocol,
                nat.port_mapping_external, nat.port_mapping_gateway);
    else
    if (streq (nat.port_mapping, "off") || !*nat.port_mapping)
        printf ("%-14s off (connection.port_mapping)\n", "port mapping");
    else
        printf ("%-14s %s%s%s\n", "port mapping", nat.port_mapping, *nat.port_mapping_error ? ": " : "",
                nat.port_mapping_error);
    printf ("%-16s %-24s %-9s %-4s %10s  %s\n", "RELAY", "ADDRESS", "TRANSPORT", "UP", "RTT", "SEES THIS NODE AT");
    for (uint32_t i = 0; i < nat.relay_list_count; i++) {
        const nat_status_relay_t *r = &nat.relay_list [i];
        char rtt [32] = "-";
        if (r->rtt_us >= 0)
            snprintf (rtt, sizeof rtt, "%.1f ms", r->rtt_us / 1000.0);
        printf ("%-16s %-24s %-9s %-4s %10s  %s\n", r->name, *r->address ? r->address : "-", r->transport,
                r->up ? "yes" : "no", rtt, *r->observed ? r->observed : "-");
    }
    return 0;
}

//  ---------------------------------------------------------------------------
//  group: join, leave, list (router.group; docs/groups.md)

static int
s_group (const char *run_dir, const char *action, const char *group, bool json)
{
    router_group_t request;
    memset (&request, 0, sizeof request);
    snprintf (request.action, sizeof request.action, "%s", action);
    if (group && strlen (group) >= sizeof request.group) {
        fprintf (stderr, "bifrostctl: '%.60s...' is not an IPv4 or IPv6 address\n", group);
        return 1;
    }
    snprintf (request.group, sizeof request.group, "%s", group ? group : "");
    bus_envelope_t *reply = s_ask (run_dir, "router", &router_group_schema, &request);
    if (!reply)
        return 1;
    router_group_reply_t *list = (router_group_reply_t *) zmalloc (sizeof *list);
    char err [200];
    if (bus_envelope_get_msg (reply, &router_group_reply_schema, list, err, sizeof err)) {
        fprintf (stderr, "bifrostctl: unexpected reply from the router %s: %s\n", bus_envelope_type (reply), err);
        bus_envelope_destroy (&reply);
        free (list);
        return 1;
    }
    bus_envelope_destroy (&reply);
    if (json) {
        json_t *object = bus_codec_to_json (&router_group_reply_schema, list);
        char *text = json_dumps (object, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf ("%s\n", text);
        free (text);
        json_decref (object);
    }
    else
    if (group) {
        //  join, leave: one line (the router refused a bad address with its reason)
        printf ("%s %s\n", streq (action, "join") ? "joined" : "left", group);
    }
    else {
        printf ("%-40s %-9s %-17s %-20s %s\n", "GROUP", "KIND", "LOCAL", "NEAREST", "MEMBERS");
        for (uint32_t i = 0; i < list->groups_count; i++) {
            const router_group_info_t *g = &list->groups [i];
            char members [800] = "";
            size_t len = 0;
            for (uint32_t k = 0; k < g->members_count && len < sizeof members; k++)
                len += (size_t) snprintf (members + len, sizeof members - len, "%s%s", k ? ", " : "", g->members [k]);
            printf ("%-40s %-9s %-17s %-20s %s\n", g->group, g->anycast ? "anycast" : "multicast",
                    *g->local ? g->local : "-", *g->nearest ? g->nearest : "-", *members ? members : "-");
        }
        if (list->total > list->groups_count)
            printf ("(%u more)\n", list->total - list->groups_count);
    }
    free (list);
    return 0;
}

//  ---------------------------------------------------------------------------
//  routes: the router's table (router.routes), the best route to each
//  destination: next hop, tier, metric, hops, the link's RTT, age and path

static int
s_routes (const char *run_dir, bool json, const char *only)
{
    router_routes_t request = { .peer = "" };
    if (only)
        snprintf (request.peer, sizeof request.peer, "%s", only);
    bus_envelope_t *reply = s_ask (run_dir, "router", &router_routes_schema, &request);
    if (!reply)
        return 1;
    router_routes_reply_t *table = (router_routes_reply_t *) zmalloc (sizeof *table);
    char err [200];
    if (bus_envelope_get_msg (reply, &router_routes_reply_schema, table, err, sizeof err)) {
        fprintf (stderr, "bifrostctl: unexpected reply from the router %s: %s\n", bus_envelope_type (reply), err);
        bus_envelope_destroy (&reply);
        free (table);
        return 1;
    }
    bus_envelope_destroy (&reply);
    if (json) {
        json_t *object = bus_codec_to_json (&router_routes_reply_schema, table);
        char *text = json_dumps (object, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf ("%s\n", text);
        free (text);
        json_decref (object);
    }
    else {
        printf ("%-20s %-20s %-7s %7s %4s %9s %7s  %s\n", "DESTINATION", "NEXT HOP", "PATH", "METRIC", "HOPS",
                "RTT", "AGE", "VIA");
        for (uint32_t i = 0; i < table->routes_count; i++) {
            const router_routes_route_t *r = &table->routes [i];
            char rtt [16] = "-", age [32], via [400] = "";
            if (r->rtt_ms)
                snprintf (rtt, sizeof rtt, "%u ms", r->rtt_ms);
            s_format_ms (r->age_ms > 0 ? (uint64_t) r->age_ms : 0, age, sizeof age);
            size_t len = 0;
            for (uint32_t h = 0; h < r->via_count && len < sizeof via; h++)
                len += (size_t) snprintf (via + len, sizeof via - len, "%s%s", h ? " > " : "", r->via [h]);
            printf ("%-20s %-20s %-7s %7u %4u %9s %7s  %s\n", r->name, r->next_hop_name, r->path, r->metric, r->hops,
                    rtt, age, via);
        }
        if (table->total > table->routes_count)
            printf ("(%u more)\n", table->total - table->routes_count);
        //  The announcements (none without a registry id of our own)
        if (!only && *table->self_id) {
            printf ("announcements as %s: %" PRIu64 " sent, %" PRIu64 " taken", table->self_id, table->announced,
                    table->heard);
            for (uint32_t i = 0; i < table->refused_count; i++)
                printf ("%s %s %" PRIu64, i ? "," : "; refused:", table->refused [i].name, table->refused [i].value);
            if (table->unindexed)
                printf ("; %u destination(s) no peer index names", table->unindexed);
            printf ("\n");
        }
    }
    int rc = only && table->total == 0 ? 1 : 0;
    if (rc)
        fprintf (stderr, "bifrostctl: no route to %s\n", only);
    free (table);
    return rc;
}

//  ---------------------------------------------------------------------------
//  bus: the broker's counters (bus.status)

static int
s_bus (const char *run_dir, bool json)
{
    bus_status_t request = { .detail = "" };
    bus_envelope_t *reply = s_ask (run_dir, "bus", &bus_status_schema, &request);
    if (!reply)
        return 1;
    bus_status_reply_t bus;
    char err [200];
    if (bus_envelope_get_msg (reply, &bus_status_reply_schema, &bus, err, sizeof err)) {
        fprintf (stderr, "bifrostctl: unexpected reply from the broker %s: %s\n", bus_envelope_type (reply), err);
        bus_envelope_destroy (&reply);
        return 1;
    }
    bus_envelope_destroy (&reply);
    if (json) {
        json_t *object = bus_codec_to_json (&bus_status_reply_schema, &bus);
        char *text = json_dumps (object, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf ("%s\n", text);
        free (text);
        json_decref (object);
        return 0;
    }
    char up [32];
    s_format_ms (bus.uptime_ms, up, sizeof up);
    printf ("broker epoch %016" PRIx64 ", up %s\n", bus.epoch, up);
    printf ("%9s %10s %10s %10s %9s %10s %9s %8s %6s %4s\n", "INSTANCES", "ROUTED", "EVENTS", "TAPPED", "DROPPED",
            "UNROUTABLE", "BAD-INPUT", "REFUSED", "HELD", "TAP");
    printf ("%9u %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %9" PRIu64 " %10" PRIu64 " %9" PRIu64 " %8" PRIu64 " %6" PRIu64
            " %4u\n", bus.instances, bus.routed, bus.events, bus.tapped, bus.dropped, bus.unroutable, bus.bad_input,
            bus.refused, bus.held, bus.tap_subscribers);
    return 0;
}

//  Is an instance of service `name` ready, as bifrostd sees it?
static bool
s_service_ready (const sup_status_reply_t *msg, const char *name)
{
    for (uint32_t i = 0; i < msg->instances_count; i++)
        if (!strcmp (msg->instances [i].service, name) && !strcmp (msg->instances [i].state, "ready"))
            return true;
    return false;
}

//  Under status's table, a line for each thing an operator should look at that
//  is not a service's state: messages the broker's sender policy refused (some
//  process tried to speak for a service), peers discovery ignored (the registry
//  gave them an address outside the network). Both mean someone misbehaves.
//  Asked only of services that are ready, briefly and quietly: status must
//  work while the bus does not.
static void
s_status_notes (const char *run_dir, const sup_status_reply_t *msg)
{
    char notes [2][200];
    int count = 0;
    char err [200];
    if (s_service_ready (msg, "bus")) {
        bus_status_t request = { .detail = "" };
        bus_envelope_t *reply = s_ask_within (run_dir, "bus", &bus_status_schema, &request, 1000, true);
        bus_status_reply_t bus;
        if (reply && bus_envelope_get_msg (reply, &bus_status_reply_schema, &bus, err, sizeof err) == 0
        &&  bus.refused)
            snprintf (notes [count++], sizeof notes [0],
                      "bus: %" PRIu64 " messages refused by the sender policy (bifrostctl bus)", bus.refused);
        bus_envelope_destroy (&reply);
    }
    if (s_service_ready (msg, "discovery")) {
        discovery_status_t request = { .detail = "" };
        bus_envelope_t *reply = s_ask_within (run_dir, "discovery", &discovery_status_schema, &request, 1000, true);
        discovery_status_reply_t *disc = (discovery_status_reply_t *) zmalloc (sizeof (discovery_status_reply_t));
        if (reply && bus_envelope_get_msg (reply, &discovery_status_reply_schema, disc, err, sizeof err) == 0
        &&  disc->peers_outside)
            snprintf (notes [count++], sizeof notes [0],
                      "discovery: %" PRIu64 " peers ignored: the registry gave them an address outside the network",
                      disc->peers_outside);
        free (disc);
        bus_envelope_destroy (&reply);
    }
    //  A blank line first: scripts read the table up to one
    if (count)
        printf ("\n");
    for (int i = 0; i < count; i++)
        printf ("%s\n", notes [i]);
}

static int
s_status (const char *run_dir, const char *service, bool json)
{
    sup_status_t status;
    memset (&status, 0, sizeof status);
    if (service)
        snprintf (status.service, sizeof status.service, "%s", service);
    bus_envelope_t *reply = s_request (run_dir, &sup_status_schema, &status);
    if (!reply)
        return 1;
    sup_status_reply_t *msg = (sup_status_reply_t *) zmalloc (sizeof (sup_status_reply_t));
    char err [200];
    if (bus_envelope_get_msg (reply, &sup_status_reply_schema, msg, err, sizeof err)) {
        fprintf (stderr, "bifrostctl: unexpected reply %s: %s\n", bus_envelope_type (reply), err);
        free (msg);
        bus_envelope_destroy (&reply);
        return 1;
    }
    if (json) {
        json_t *object = bus_codec_to_json (&sup_status_reply_schema, msg);
        char *text = json_dumps (object, JSON_COMPACT);
        printf ("%s\n", text);
        free (text);
        json_decref (object);
    }
    else {
        char up [32];
        s_format_ms (msg->uptime_ms, up, sizeof up);
        printf ("bifrostd pid %u, up %s, config %s\n", msg->pid, up, msg->config);
        printf ("%-16s %-8s %-9s %-8s %-8s %s\n", "INSTANCE", "PID", "STATE", "UPTIME", "RESTARTS", "REASON");
        for (uint32_t i = 0; i < msg->instances_count; i++) {
            sup_instance_t *inst = &msg->instances [i];
            char pid [16] = "-";
            if (inst->pid)
                snprintf (pid, sizeof pid, "%u", inst->pid);
            if (inst->uptime_ms || !strcmp (inst->state, "ready"))
                s_format_ms (inst->uptime_ms, up, sizeof up);
            else
                snprintf (up, sizeof up, "-");
            printf ("%-16s %-8s %-9s %-8s %-8u %s\n", inst->instance, pid, inst->state, up,
                    inst->restarts, inst->reason);
        }
        if (!service)
            s_status_notes (run_dir, msg);
        //  On a node, the peers too (the same table as `bifrostctl peers`): a node
        //  runs crypto alone or inside bifrost-tunnel
        bool node = false;
        for (uint32_t i = 0; i < msg->instances_count; i++)
            node |= (!strcmp (msg->instances [i].service, "crypto") || !strcmp (msg->instances [i].service, "tunnel"))
                 && !strcmp (msg->instances [i].state, "ready");
        if (node && !service) {
            printf ("\n");
            fflush (stdout);
            s_peers (run_dir, false, NULL);
        }
    }
    free (msg);
    bus_envelope_destroy (&reply);
    return 0;
}

//  ---------------------------------------------------------------------------
//  relay

//  The WSS column: connections open now, "-" when the worker serves no TLS
static const char *
s_wss_column (const relay_status_reply_t *worker)
{
    static char text [16];
    if (!worker->tls_port)
        return "-";
    snprintf (text, sizeof text, "%u", worker->wss_active);
    return text;
}

//  Prints one instance's row (reply NULL: it did not answer)
typedef void (s_row_fn) (const sup_instance_t *inst, const void *reply);

//  Every instance of a scaled service (relay.1..N, bridge.1..N) asked one
//  request over the bus. The instances are separate processes with state of
//  their own, so bifrostd names them (whatever `scale` made of them) and each
//  is asked; one that does not answer (restarting) is shown as such and the
//  others still are. --json: {"<list_key>": [ reply + name, pid, state,
//  answered ]}, without the member drop (a long list). 1 when none answered.
static int
s_each_instance (const char *run_dir, const char *service, const bus_schema_t *ask, const void *request,
                 const bus_schema_t *answer, size_t answer_size, bool json, const char *list_key,
                 const char *drop, const char *header, s_row_fn *row)
{
    sup_status_t status;
    memset (&status, 0, sizeof status);
    snprintf (status.service, sizeof status.service, "%s", service);
    bus_envelope_t *reply = s_request (run_dir, &sup_status_schema, &status);
    if (!reply)
        return 1;
    sup_status_reply_t *sup = (sup_status_reply_t *) zmalloc (sizeof (sup_status_reply_t));
    void *msg = zmalloc (answer_size);
    char err [200];
    if (bus_envelope_get_msg (reply, &sup_status_reply_schema, sup, err, sizeof err)) {
        fprintf (stderr, "bifrostctl: unexpected reply %s: %s\n", bus_envelope_type (reply), err);
        bus_envelope_destroy (&reply);
        free (sup);
        free (msg);
        return 1;
    }
    bus_envelope_destroy (&reply);
    json_t *list = json_array ();
    if (!json)
        printf ("%s\n", header);
    uint32_t answered = 0;
    for (uint32_t i = 0; i < sup->instances_count; i++) {
        const sup_instance_t *inst = &sup->instances [i];
        bool have = false;
        if (!strcmp (inst->state, "ready")) {
            reply = s_ask (run_dir, inst->instance, ask, request);
            have = reply && bus_envelope_get_msg (reply, answer, msg, err, sizeof err) == 0;
            if (reply && !have)
                fprintf (stderr, "bifrostctl: %s: unexpected reply %s: %s\n", inst->instance,
                         bus_envelope_type (reply), err);
            bus_envelope_destroy (&reply);
        }
        answered += have;
        if (json) {
            json_t *item = have ? bus_codec_to_json (answer, msg) : json_object ();
            if (drop)
                json_object_del (item, drop);
            json_object_set_new (item, "name", json_string (inst->instance));
            json_object_set_new (item, "pid", json_integer (inst->pid));
            json_object_set_new (item, "state", json_string (inst->state));
            json_object_set_new (item, "answered", json_boolean (have));
            json_array_append_new (list, item);
        }
        else
            row (inst, have ? msg : NULL);
    }
    if (json) {
        json_t *root = json_object ();
        json_object_set_new (root, list_key, list);
        char *text = json_dumps (root, JSON_COMPACT);
        printf ("%s\n", text);
        free (text);
        json_decref (root);
    }
    else
        json_decref (list);
    int rc = answered ? 0 : 1;
    if (sup->instances_count == 0)
        fprintf (stderr, "bifrostctl: no %s instances (is a service named %s configured?)\n", service, service);
    free (sup);
    free (msg);
    return rc;
}

static void
s_relay_row (const sup_instance_t *inst, const void *reply)
{
    const relay_status_reply_t *worker = (const relay_status_reply_t *) reply;
    if (worker)
        printf ("%-10s %-8u %-7u %6u %10" PRIu64 " %8" PRIu64 " %12" PRIu64 " %9" PRIu64 " %9" PRIu64
                " %5u %5s\n", inst->instance, inst->pid, worker->workers, worker->peers_registered,
                worker->registered, worker->refused, worker->forwarded, worker->dropped,
                worker->limited, worker->tcp_active, s_wss_column (worker));
    else
        printf ("%-10s %-8s %s\n", inst->instance, inst->pid ? "" : "-", inst->state);
}

//  Every relay worker's counters (relay.status)
static int
s_relay (const char *run_dir, bool json)
{
    char header [160];
    snprintf (header, sizeof header, "%-10s %-8s %-7s %6s %10s %8s %12s %9s %9s %5s %5s", "INSTANCE", "PID",
              "WORKERS", "PEERS", "REGISTERED", "REFUSED", "FORWARDED", "DROPPED", "LIMITED", "TCP", "WSS");
    relay_status_t request = { .peers = false };
    return s_each_instance (run_dir, "relay", &relay_status_schema, &request, &relay_status_reply_schema,
                            sizeof (relay_status_reply_t), json, "workers", "nodes", header, s_relay_row);
}

//  ---------------------------------------------------------------------------
//  bridge

static void
s_bridge_row (const sup_instance_t *inst, const void *reply)
{
    const bridge_bus_status_reply_t *b = (const bridge_bus_status_reply_t *) reply;
    if (!b) {
        printf ("%-10s %-8s %s\n", inst->instance, inst->pid ? "" : "-", inst->state);
        return;
    }
    uint64_t dropped = b->dropped_source + b->dropped_invalid + b->dropped_slow + b->dropped_send;
    uint64_t refused = b->refused_param + b->refused_token + b->refused_peer + b->refused_rate
                     + b->refused_full + b->refused_other + b->refused_address_flows + b->refused_token_flows;
    uint64_t closed = b->closed_idle + b->closed_too_large + b->closed_text + b->closed_rate + b->closed_internal;
    printf ("%-10s %-8u %5u %5u %5u %8" PRIu64 " %10" PRIu64 " %10" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 "\n",
            inst->instance, inst->pid, b->flows_open, b->flows_waiting, b->flows_established, b->flows_opened,
            b->datagrams_in, b->datagrams_out, dropped, refused, closed);
}

//  Every bridge instance's flows and counters (bridge.status)
static int
s_bridge (const char *run_dir, bool json)
{
    char header [160];
    snprintf (header, sizeof header, "%-10s %-8s %5s %5s %5s %8s %10s %10s %8s %8s %8s", "INSTANCE", "PID",
              "OPEN", "WAIT", "ESTAB", "OPENED", "DGRAMS_IN", "DGRAMS_OUT", "DROPPED", "REFUSED", "CLOSED");
    bridge_bus_status_t request = { .flows = false };
    return s_each_instance (run_dir, "bridge", &bridge_bus_status_schema, &request, &bridge_bus_status_reply_schema,
                            sizeof (bridge_bus_status_reply_t), json, "instances", NULL, header, s_bridge_row);
}

//  ---------------------------------------------------------------------------
//  tap

//  The literal prefix of a glob: what can be subscribed to on the XPUB.
static void
s_glob_prefix (const char *pattern, char *prefix, size_t size)
{
    size_t n = strcspn (pattern, "*?[\\");
    if (n >= size)
        n = size - 1;
    memcpy (prefix, pattern, n);
    prefix [n] = 0;
}

static int
s_tap (const char *run_dir, const char *pattern, long count, double timeout_s)
{
    char endpoint [BUS_PATH_MAX];
    if (bus_endpoint (endpoint, sizeof endpoint, run_dir, "tap")) {
        fprintf (stderr, "bifrostctl: run directory %s is too long for a unix socket path\n", run_dir);
        return 1;
    }
    struct stat st;
    if (stat (endpoint + 6, &st)) {
        fprintf (stderr, "bifrostctl: the broker is not running (no tap socket at %s)\n", endpoint + 6);
        return 1;
    }
    zsock_t *sub = zsock_new (ZMQ_SUB);
    assert (sub);
    zsock_set_linger (sub, 0);
    zsock_set_maxmsgsize (sub, BUS_ENVELOPE_MAX + 256);
    char prefix [BUS_TYPE_MAX + 1];
    s_glob_prefix (pattern ? pattern : "", prefix, sizeof prefix);
    char topic [BUS_TYPE_MAX + 8];
    snprintf (topic, sizeof topic, "ctl.%s", prefix);
    zsock_set_subscribe (sub, topic);
    snprintf (topic, sizeof topic, "evt.%s", prefix);
    zsock_set_subscribe (sub, topic);
    if (zsock_connect (sub, "%s", endpoint)) {
        fprintf (stderr, "bifrostctl: cannot connect to %s\n", endpoint);
        zsock_destroy (&sub);
        return 1;
    }
    int64_t deadline = timeout_s > 0 ? zclock_mono () + (int64_t) (timeout_s * 1000) : 0;
    long printed = 0;
    while (!zsys_interrupted && (count <= 0 || printed < count)) {
        int wait = 1000;
        if (deadline) {
            int64_t left = deadline - zclock_mono ();
            if (left <= 0)
                break;
            wait = left < wait ? (int) left : wait;
        }
        zmq_pollitem_t item = { zsock_resolve (sub), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, wait) <= 0)
            continue;
        zmsg_t *msg = zmsg_recv (sub);
        if (!msg)
            break;
        zframe_t *topic_frame = zmsg_first (msg);
        zframe_t *body = zmsg_next (msg);
        if (!topic_frame || !body) {
            zmsg_destroy (&msg);
            continue;
        }
        char err [200];
        bus_envelope_t *env = bus_envelope_decode (zframe_data (body), zframe_size (body), err, sizeof err);
        json_t *json = NULL;
        if (env) {
            if (!pattern || fnmatch (pattern, bus_envelope_type (env), 0) == 0) {
                json = bus_envelope_to_json (env);
                const char *kind = zframe_size (topic_frame) >= 4
                                && memcmp (zframe_data (topic_frame), "evt.", 4) == 0 ? "event" : "message";
                json_object_set_new (json, "kind", json_string (kind));
            }
        }
        else {
            json = json_object ();
            json_object_set_new (json, "error", json_string (err));
        }
        if (json) {
            char *text = json_dumps (json, JSON_COMPACT | JSON_SORT_KEYS);
            printf ("%s\n", text);
            fflush (stdout);
            free (text);
            json_decref (json);
            printed++;
        }
        bus_envelope_destroy (&env);
        zmsg_destroy (&msg);
    }
    zsock_destroy (&sub);
    return 0;
}

//  Asks the data-path services to mirror (or stop mirroring) the headers of
//  their pipes as bus.pipe.sample events, which the tap then shows.
static void
s_mirror (const char *run_dir, bool enable)
{
    const char *services [] = { "device", "crypto", "nat" };
    bus_pipe_mirror_t request = { .enable = enable, .sample = 1, .snaplen = 64 };
    for (size_t i = 0; i < 3; i++) {
        bus_envelope_t *reply = s_ask (run_dir, services [i], &bus_pipe_mirror_schema, &request);
        bus_envelope_destroy (&reply);
    }
}

//  ---------------------------------------------------------------------------

static bool
s_parse_count (const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long value = strtol (text, &end, 10);
    if (errno || end == text || *end || value < min || value > max)
        return false;
    *out = value;
    return true;
}

//  --check-config: bifrostd's own validation of FILE, by running
//  `bifrostd --check-config -c FILE`, so the check means the same in both and
//  the rules of bifrostd's configuration live in bifrostd alone. bifrostd is
//  looked for next to bifrostctl (both are installed in bindir), then in the
//  build tree's supervisor/ folder, then on PATH. Its exit code is ours (0, or
//  78 with every error on stderr).
static int
s_check_config (const char *config_path)
{
    char self [1024], path [1100];
    ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
    const char *found = "bifrostd";
    if (n > 0) {
        self [n] = 0;
        char *slash = strrchr (self, '/');
        if (slash)
            *slash = 0;
        snprintf (path, sizeof path, "%s/bifrostd", self);
        if (access (path, X_OK) == 0)
            found = path;
        else {
            snprintf (path, sizeof path, "%s/../supervisor/bifrostd", self);
            if (access (path, X_OK) == 0)
                found = path;
        }
    }
    fflush (stdout);
    pid_t pid = fork ();
    if (pid == 0) {
        execlp (found, "bifrostd", "--check-config", "-c", config_path, (char *) NULL);
        fprintf (stderr, "bifrostctl: cannot run %s: %s\n", found, strerror (errno));
        _exit (127);
    }
    int status;
    if (pid < 0 || waitpid (pid, &status, 0) != pid) {
        fprintf (stderr, "bifrostctl: cannot run %s: %s\n", found, strerror (errno));
        return 1;
    }
    if (WIFEXITED (status) && WEXITSTATUS (status) == 127)
        return 1;
    return WIFEXITED (status) ? WEXITSTATUS (status) : 1;
}

int
main (int argc, char **argv)
{
    static const struct option options [] = {
        { "run-dir", required_argument, NULL, 'r' },
        { "config", required_argument, NULL, 'c' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "check-config", no_argument, NULL, 'C' },
        { "json", no_argument, NULL, 'j' },
        { "count", required_argument, NULL, 'n' },
        { "timeout", required_argument, NULL, 't' },
        { "pipes", no_argument, NULL, 'p' },
        { NULL, 0, NULL, 0 }
    };
    //  join and leave take options of their own (tools/ctl_join.c): the
    //  command word is the first argument that is neither an option nor the
    //  value of -r / -c
    for (int i = 1; i < argc; i++) {
        if (streq (argv [i], "-r") || streq (argv [i], "--run-dir") || streq (argv [i], "-c")
        ||  streq (argv [i], "--config")) {
            i++;
            continue;
        }
        if (argv [i][0] == '-')
            continue;
        if (streq (argv [i], "join") || streq (argv [i], "leave"))
            return ctl_join_main (argc, argv, i);
        break;
    }
    const char *run_dir = NULL, *config_path = NULL;
    bool check = false, json = false, pipes = false;
    long count = 0;
    double timeout_s = 0;
    int opt;
    //  Options may come before or after the command ("status --json")
    while ((opt = getopt_long (argc, argv, "r:c:vh", options, NULL)) != -1) {
        switch (opt) {
            case 'r': run_dir = optarg; break;
            case 'c': config_path = optarg; break;
            case 'v': s_verbose = true; break;
            case 'C': check = true; break;
            case 'j': json = true; break;
            case 'p': pipes = true; break;
            case 'n':
                if (!s_parse_count (optarg, 1, 1000000000, &count)) {
                    fprintf (stderr, "bifrostctl: --count expects a positive number, not '%s'\n", optarg);
                    return 2;
                }
                break;
            case 't': {
                char *end;
                timeout_s = strtod (optarg, &end);
                if (end == optarg || *end || timeout_s <= 0 || timeout_s > 1e6) {
                    fprintf (stderr, "bifrostctl: --timeout expects seconds > 0, not '%s'\n", optarg);
                    return 2;
                }
                break;
            }
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
    }
    if (check) {
        if (!config_path) {
            fprintf (stderr, "bifrostctl: --check-config needs -c FILE\n");
            return 2;
        }
        return s_check_config (config_path);
    }
    static char config_run_dir [BUS_PATH_MAX];
    if (config_path) {
        if (bus_rundir_read (config_path, config_run_dir, sizeof config_run_dir, stderr) < 0) {
            fprintf (stderr, "bifrostctl: %s has errors\n", config_path);
            return BUS_EXIT_CONFIG;
        }
    }
    run_dir = bus_rundir_choose (run_dir, *config_run_dir ? config_run_dir : NULL);
    if (optind >= argc) {
        s_usage (stderr);
        return 2;
    }
    zsys_init ();
    zsys_set_logstream (NULL);
    const char *command = argv [optind];
    int nargs = argc - optind - 1;
    char **args = argv + optind + 1;
    if (strcmp (command, "status") == 0 && nargs <= 1)
        return s_status (run_dir, nargs ? args [0] : NULL, json);
    if (strcmp (command, "tap") == 0 && nargs <= 1) {
        if (pipes)
            s_mirror (run_dir, true);
        int rc = s_tap (run_dir, nargs ? args [0] : NULL, count, timeout_s);
        if (pipes)
            s_mirror (run_dir, false);
        return rc;
    }
    if (strcmp (command, "scale") == 0 && nargs == 2) {
        long n;
        //  The range is bifrostd's to check: it owns the limit
        if (!s_parse_count (args [1], 0, UINT32_MAX, &n)) {
            fprintf (stderr, "bifrostctl: scale: instance count must be a number, not '%s'\n", args [1]);
            return 1;
        }
        if (!bus_name_valid (args [0])) {
            fprintf (stderr, "bifrostctl: '%s' is not a valid service name\n", args [0]);
            return 1;
        }
        sup_scale_t scale = { .instances = (uint32_t) n };
        snprintf (scale.service, sizeof scale.service, "%s", args [0]);
        return s_expect_ok (s_request (run_dir, &sup_scale_schema, &scale));
    }
    if (strcmp (command, "restart") == 0 && nargs == 1) {
        if (!bus_name_valid (args [0])) {
            fprintf (stderr, "bifrostctl: '%s' is not a valid service name\n", args [0]);
            return 1;
        }
        sup_restart_t restart;
        snprintf (restart.service, sizeof restart.service, "%s", args [0]);
        return s_expect_ok (s_request (run_dir, &sup_restart_schema, &restart));
    }
    if (strcmp (command, "stop") == 0 && nargs == 0) {
        sup_stop_t stop = { .reason = "bifrostctl stop" };
        return s_expect_ok (s_request (run_dir, &sup_stop_schema, &stop));
    }
    if (strcmp (command, "key") == 0 && nargs == 0)
        return s_key (run_dir);
    if (strcmp (command, "peers") == 0 && nargs <= 1)
        return s_peers (run_dir, json, nargs ? args [0] : NULL);
    if (strcmp (command, "bus") == 0 && nargs == 0)
        return s_bus (run_dir, json);
    if (strcmp (command, "relay") == 0 && nargs == 0)
        return s_relay (run_dir, json);
    if (strcmp (command, "bridge") == 0 && nargs == 0)
        return s_bridge (run_dir, json);
    if (strcmp (command, "routes") == 0 && nargs <= 1)
        return s_routes (run_dir, json, nargs ? args [0] : NULL);
    if (strcmp (command, "group") == 0 && nargs == 2 && (streq (args [0], "join") || streq (args [0], "leave")))
        return s_group (run_dir, args [0], args [1], json);
    if (strcmp (command, "group") == 0 && nargs == 1 && streq (args [0], "list"))
        return s_group (run_dir, "list", NULL, json);
    if (strcmp (command, "netcheck") == 0 && nargs == 0)
        return s_netcheck (run_dir, json);
    fprintf (stderr, "bifrostctl: unknown command or wrong arguments: %s (see bifrostctl -h)\n", command);
    return 2;
}
