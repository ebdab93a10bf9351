/*  ctl_join: `bifrostctl join URL --token TOKEN` and `bifrostctl leave`
    (issue 19, docs/bifrostctl.md "Joining a network"), what `tailscale up
    --authkey` is to Tailscale. join makes the node key if there is none
    (bifrost-crypto --genkey: crypto_identity's own code), registers once
    itself with that key and the token (so a bad URL, an unreachable
    registry and a refused token are told apart before anything is
    written), writes the join token to a 0600 file and a node config that
    names it (discovery.join_token_file), checks the config as bifrostd
    --check-config does, and only then puts both in place (rename); then it
    starts the node (systemctl when bifrost.service is installed and systemd
    runs, else bifrostd in the background; SIGHUP to one already running)
    and waits for discovery to report the virtual IP. leave stops the node
    and deletes this node from the registry, authenticated by the node's
    key proof (a re-registration without token gives the peer token, which
    may DELETE its own peer). Exit codes: CTL_JOIN_*. */
#ifndef CTL_JOIN_H_INCLUDED
#define CTL_JOIN_H_INCLUDED

#include <stdbool.h>

#define CTL_JOIN_OK           0
#define CTL_JOIN_FAILED       1     //  a local failure: a file, bifrostd would not start
#define CTL_JOIN_USAGE        2     //  bad command line or URL
#define CTL_JOIN_UNREACHABLE  3     //  no answer from the registry (name, connection, TLS, timeout, not a registry)
#define CTL_JOIN_REFUSED      4     //  the registry refused the token (or the network is unknown)
#define CTL_JOIN_REGISTRY     5     //  the registry answered another error (address pool full, rate limit, 5xx)
#define CTL_JOIN_TIMEOUT      6     //  the node did not report its virtual IP in time
#define CTL_JOIN_CONFIG       78    //  the config written would not be valid (nothing was put in place)

//  argv [at] is "join" or "leave"; argv [1..at) are bifrostctl's own options
int ctl_join_main (int argc, char **argv, int at);

void ctl_join_test (bool verbose);
#endif
