#!/bin/bash
# relay_wss: a node whose network lets out nothing but HTTPS reaches its peers
# through the relay's WebSocket over TLS port (issue 14, "Transports").
#
# The project's NAT grid (natgrid_lib.sh): on the public segment a registry
# (plain HTTP on port 443, so the https-only node can register) and a relay
# (bifrostd, two bifrost-relay workers, UDP 3479 and WSS on 443 with a
# certificate for its address, IP SAN 203.0.113.11, signed by a CA made for the
# run). Node a sits behind an "https-only" router (out: TCP to port 443 only),
# node b behind an ordinary port-restricted NAT, node c behind another
# https-only router but trusting another CA.
#
# Asserted: before b registers, a has no path to it; a reaches the relay over
# WSS (its status says so, its log too, UDP and TCP having failed); after b
# registers a ping crosses both ways, a's `bifrostctl peers` shows
# "relay relay-1 wss"; the relay counts the WebSocket; c's connections are
# refused (certificate not trusted), counted on both ends, and c never reaches
# b; kill -9 of the worker serving a's WebSocket: a reconnects (to the other
# worker) and the ping resumes within 10 s. (TAP)
. "$BIFROST_SRCDIR/tests/integration/tap_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/natgrid_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"
set -u
T=$(mktemp -d /tmp/relay-wss-XXXXXX)
chmod 755 "$T"
BIFROSTD=$BIFROST_BUILDDIR/supervisor/bifrostd
CTL=$BIFROST_BUILDDIR/tools/bifrostctl
LIBEXEC=$BIFROST_LIBEXEC_DIR
REGISTRY=$BIFROST_BUILDDIR/services/registry/bifrost-registry
SLOW=1
[ -n "${ASAN_OPTIONS:-}" ] && SLOW=3        # the sanitizer build is several times slower
export RELAY_SECRET BIFROST_ADMIN_TOKEN=admin-$$-wss BIFROST_JOIN_TOKEN=
RELAY_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
RURL=http://203.0.113.10:443
PIDS=""

finish () {
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    for p in $PIDS; do
        for _ in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$p" 2>/dev/null
    done
    if [ "$FAILED" -ne 0 ]; then
        for f in "$T"/*/bifrostd.log "$T"/registry.log; do
            echo "# ---- $f (last 30 lines)"
            tail -30 "$f" 2>/dev/null | sed 's/^/#   /'
        done
    fi
    grid_cleanup
    [ -n "${RELAY_WSS_LOGS:-}" ] && rm -rf "$RELAY_WSS_LOGS" && cp -r "$T" "$RELAY_WSS_LOGS"
    seccomp_check "$T"
    rm -rf "$T"
    echo "# $TESTNO tests, $FAILED failed, $(( $(now_ms) - T0 )) ms"
}
T0=$(now_ms)
trap finish EXIT

spawn () {
    local name=$1 log=$2; shift 2
    ip netns exec "$(grid_ns "$name")" "$@" >>"$log" 2>&1 &
    PIDS="$PIDS $!"
}

# ---------------------------------------------------------------------------
# A CA for the run, an intermediate it signed, the relay's certificate signed by
# the intermediate (IP SAN; the file holds leaf then intermediate, as public CAs
# hand them out: the nodes trust only the root), and a CA that signed nothing
(
    cd "$T" && K='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes' &&
    openssl req -x509 $K -keyout ca.key -out ca.pem -days 1 -subj /CN=relay-wss-test-ca &&
    openssl req -x509 $K -keyout other.key -out other.pem -days 1 -subj /CN=relay-wss-other-ca &&
    openssl req $K -keyout inter.key -out inter.csr -subj /CN=relay-wss-intermediate &&
    printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' > inter.cnf &&
    openssl x509 -req -in inter.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile inter.cnf -out inter.pem &&
    openssl req $K -keyout relay.key -out relay.csr -subj /CN=relay-1 &&
    echo 'subjectAltName=IP:203.0.113.11' > ext.cnf &&
    openssl x509 -req -in relay.csr -CA inter.pem -CAkey inter.key -CAcreateserial -days 1 -extfile ext.cnf -out leaf.pem &&
    cat leaf.pem inter.pem > relay.pem &&
    chmod 600 relay.key ca.key other.key inter.key
) >"$T/openssl.log" 2>&1
ok $? "a test CA, an intermediate, the relay's certificate (IP SAN 203.0.113.11), and another CA"

grid_init
grid_public_host reg 203.0.113.10
grid_public_host relay 203.0.113.11
grid_nodes https-only:a port-restricted:b https-only:c
ok $? "grid: registry, relay, a and c behind https-only routers, b behind a port-restricted NAT"

# The relay: two workers, UDP 3479, WSS on 443
mkdir -p "$T/relay"
cat > "$T/relay/relay.cfg" <<CFG
run_dir = "$T/relay/run";
relay = { listen = "203.0.113.11:3479"; secret = "\${RELAY_SECRET}";
          tls_listen = "0.0.0.0:443"; tls_cert = "$T/relay.pem"; tls_key = "$T/relay.key"; };
supervisor = { backoff_min = "100ms"; backoff_max = "1s"; stable_after = "2s"; };
services = (
    { name = "bus";   exec = "bifrost-bus"; },
    { name = "relay"; exec = "bifrost-relay"; depends = ["bus"]; instances = 2; pass_env = ["RELAY_SECRET"]; }
);
CFG
spawn relay "$T/relay/bifrostd.log" env BIFROST_LIBEXEC_DIR="$LIBEXEC" "$BIFROSTD" -c "$T/relay/relay.cfg"
relay_ready () { "$CTL" -r "$T/relay/run" status 2>/dev/null | grep -c "^relay\.[12] .* ready" | grep -qx 2; }
wait_for $((15 * SLOW)) relay_ready
ok $? "relay: two workers ready (UDP 203.0.113.11:3479, WSS 0.0.0.0:443)"
grep -q "WebSocket over TLS on port 443 (1 intermediate certificate)" "$T/relay/bifrostd.log" && ! grep -q "BEGIN.*PRIVATE" "$T/relay/bifrostd.log"
ok $? "relay: the workers say they serve WSS on 443 with the intermediate, and log no key"
# Port 443 needs CAP_NET_BIND_SERVICE (bit 10) for the worker's setup; then it
# runs under the relay's own uid (user_base 61100 + 9: docs/supervisor.md) and
# keeps nothing
wpid=$("$CTL" -r "$T/relay/run" relay --json 2>/dev/null | jq -r '.workers[0].pid')
caps=$(awk '/^CapEff/ { print $2 }' "/proc/$wpid/status" 2>/dev/null)
uid=$(awk '/^Uid/ { print $2 }' "/proc/$wpid/status" 2>/dev/null)
[ "$caps" = 0000000000000000 ] && [ "$uid" = 61109 ]
ok $? "relay worker $wpid bound 443, then keeps nothing as uid 61109 (CapEff $caps, uid $uid)"

# Only TCP to 443 leaves a's network: TCP to the relay's port 3479 (relay_tcp
# listens there) and to a listener on 8443 do not pass, TCP to 443 does
grid_exec a timeout 2 bash -c 'exec 3<>/dev/tcp/203.0.113.11/3479' 2>/dev/null
tcp_3479=$?
grid_exec reg timeout 3 python3 -c 'import socket; s=socket.socket(); s.bind(("203.0.113.10",8443)); s.listen(); s.accept()' &
probe=$!
sleep 0.2
grid_exec a timeout 2 bash -c 'exec 3<>/dev/tcp/203.0.113.10/8443' 2>/dev/null
tcp_8443=$?
kill $probe 2>/dev/null; wait $probe 2>/dev/null
grid_exec a timeout 2 bash -c 'exec 3<>/dev/tcp/203.0.113.11/443' 2>/dev/null
tcp_443=$?
[ $tcp_3479 -ne 0 ] && [ $tcp_8443 -ne 0 ] && [ $tcp_443 -eq 0 ]
ok $? "https-only: from a, TCP to 203.0.113.11:3479 and 203.0.113.10:8443 does not pass, TCP to :443 does"

# The registry (plain HTTP on 443: the only port a's network lets out)
cat > "$T/registry.cfg" <<CFG
registry = { listen = "203.0.113.10:443"; database = "$T/registry.db";
             admin_token = "\${BIFROST_ADMIN_TOKEN}"; rate_limit = 0; };
relay = { servers = ["relay-1@203.0.113.11:3479"]; secret = "\${RELAY_SECRET}";
          tls_listen = "0.0.0.0:443"; tls_cert = "$T/relay.pem"; };
CFG
spawn reg "$T/registry.log" "$REGISTRY" -c "$T/registry.cfg" -r "$T/regrun"
wait_for 10 grid_exec reg curl -sf -o /dev/null "$RURL/client/meta"
ok $? "registry answers on $RURL"
admin () { grid_exec reg curl -s -X "$1" -H "Authorization: Bearer $BIFROST_ADMIN_TOKEN" ${3:+--data-binary "$3"} "$RURL/api/v1/mesh/networks$2"; }
admin POST "" '{"id":"wss","name":"wss","cidr":"10.98.0.0/24","settings":{"heartbeat_interval":1,"offline_after":5,"expire_after":120}}' >/dev/null
BIFROST_JOIN_TOKEN=$(admin POST /wss/tokens '{"ttl":600,"reusable":true}' | jq -r .token)
case "$BIFROST_JOIN_TOKEN" in bjt_*) ok 0 "network and join token created" ;; *) ok 1 "network and join token created" ;; esac

# ---------------------------------------------------------------------------
# Nodes
start_node () {
    disc_node_cfg "$T/$1" "$1" wss "$RURL" "" "${2:-}"
    spawn "$1" "$T/$1/bifrostd.log" env BIFROST_LIBEXEC_DIR="$LIBEXEC" "$BIFROSTD" -c "$T/$1/node.cfg"
}
vip () { grid_exec "$1" ip -o -4 addr show dev bifrost0 2>/dev/null | awk '{ sub("/.*", "", $4); print $4 }'; }
has_vip () { [ -n "$(vip "$1")" ]; }
# jqe FILTER: jq -e on stdin, false on empty input (a service that did not answer)
jqe () { local in; in=$(cat); [ -n "$in" ] && printf '%s' "$in" | jq -e "$@" >/dev/null 2>&1; }
peers_json () { "$CTL" -r "$T/$1/run" peers --json 2>/dev/null; }

start_node a "relay_ca_file = \"$T/ca.pem\";"
start_node c "relay_ca_file = \"$T/other.pem\";"
wait_for $((20 * SLOW)) has_vip a && wait_for $((10 * SLOW)) has_vip c
ok $? "a and c registered through port 443 (a: $(vip a), c: $(vip c))"

a_on_wss () { peers_json a | jqe '.nat.relay_transport == "wss"'; }
t=$(now_ms)
wait_for $((15 * SLOW)) a_on_wss
ok $? "a reaches relay-1 over WebSocket over TLS ($(( $(now_ms) - t )) ms after its address)"
"$CTL" -r "$T/a/run" status 2>/dev/null | grep -qE "^relay relay-1, round trip [0-9.]+ ms, .*, over WebSocket over TLS$"
ok $? "bifrostctl status of a: 'relay relay-1, round trip ... ms, ..., over WebSocket over TLS'"
grep -q "relay relay-1: no answer over UDP, trying TCP" "$T/a/bifrostd.log" &&
grep -q "relay relay-1: connected over WebSocket over TLS (port 443)" "$T/a/bifrostd.log"
ok $? "a's log: UDP unanswered, TCP tried, then WSS connected"

# Before b registers, a has no path to it: the registry hands out the lowest
# free address, so b will be 10.98.0.3 (checked below), and a ping there fails
peers_json a | jqe '[.peers[].name] | index("b") == null' &&
    ! grid_exec a ping -c 2 -i 0.2 -W 1 -q 10.98.0.3 >/dev/null 2>&1
ok $? "before b registers, a has no path to b and a ping to 10.98.0.3 fails"

start_node b
wait_for $((20 * SLOW)) has_vip b
[ "$(vip b)" = 10.98.0.3 ]
ok $? "b registered ($(vip b), the address pinged in vain before)"
VA=$(vip a); VB=$(vip b); VC=$(vip c)
pair_pings () { grid_exec a ping -c 1 -W 1 -q "$VB" >/dev/null 2>&1 && grid_exec b ping -c 1 -W 1 -q "$VA" >/dev/null 2>&1; }
t=$(now_ms)
wait_for $((10 * SLOW)) pair_pings
ok $? "a <-> b: a ping crosses both ways ($(( $(now_ms) - t )) ms after b's address)"
path_of () { peers_json "$1" | jq -r --arg p "$2" '.peers[] | select(.name == $p) | .path'; }
a_path () { [ "$(path_of a b)" = "relay relay-1 wss" ]; }
wait_for 5 a_path
ok $? "a sees b via 'relay relay-1 wss' (got '$(path_of a b)'); b sees a via '$(path_of b a)'"
rtt=$(grid_exec a ping -c 10 -i 0.1 -W 1 -q "$VB" 2>/dev/null | awk -F/ '/^rtt/ { print $5 }')
echo "# a -> b through the relay over WSS: RTT $rtt ms (10 pings)"

relay_json () { "$CTL" -r "$T/relay/run" relay --json 2>/dev/null; }
relay_json | jqe '([.workers[].wss_opened] | add) >= 1 and ([.workers[].wss_to_relay] | add) > 0
                    and ([.workers[].wss_from_relay] | add) > 0'
ok $? "bifrostctl relay: WebSockets opened, messages both ways ($(relay_json | jq -c '[.workers[] | {name, wss_active, wss_opened, wss_rejected, wss_to_relay}]'))"

# c trusts another CA: refused, counted, never connected
c_refused () { peers_json c | jqe '.nat.relay_wss_failed >= 1 and .nat.relay_wss_opened == 0'; }
wait_for $((10 * SLOW)) c_refused
ok $? "c (another CA): WSS refused and counted, none opened ($(peers_json c | jq -c '.nat | {relay_wss_opens, relay_wss_opened, relay_wss_failed, relay_transport}'))"
grep -q "relay relay-1: WebSocket over TLS failed: the relay's certificate is refused: unable to get local issuer certificate" "$T/c/bifrostd.log"
ok $? "c's log names the failure: $(grep -m1 -o "WebSocket over TLS failed: .*" "$T/c/bifrostd.log")"
relay_json | jqe '([.workers[].wss_rejected] | add) >= 1'
ok $? "the relay counts c's failed TLS handshakes as rejected"
[ -n "$VB" ] && ! grid_exec c ping -c 2 -i 0.2 -W 1 -q "$VB" >/dev/null 2>&1
ok $? "c cannot reach b"

# kill -9 of the worker serving a's WebSocket: a reconnects, the ping resumes
victim=$(relay_json | jq -r '[.workers[] | select(.wss_active > 0 and .wss_opened > 0)] | .[0].pid // empty')
# c's refused attempts do not stay open: the worker with a's connection is the one with an active one
if [ -n "$victim" ]; then
    opened_before=$(grep -c "connected over WebSocket over TLS" "$T/a/bifrostd.log")
    kill -9 "$victim"
    t=$(now_ms)
    reconnected () { [ "$(grep -c "connected over WebSocket over TLS" "$T/a/bifrostd.log")" -gt "$opened_before" ]; }
    wait_for $((10 * SLOW)) reconnected && wait_for $((10 * SLOW)) pair_pings
    ok $? "kill -9 of the worker serving a's WebSocket (pid $victim): a reconnected and pings b again ($(( $(now_ms) - t )) ms)"
else
    ok 1 "kill -9 of the worker serving a's WebSocket: no worker shows it ($(relay_json | jq -c .))"
fi
# RELAY_WSS_MEASURE=N: N pings from a node to b through the relay over each
# transport (a: WSS, t behind udp-blocked: TCP, u behind port-restricted: UDP),
# for docs/relay.md; not part of make check
if [ -n "${RELAY_WSS_MEASURE:-}" ]; then
    grid_nodes udp-blocked:t port-restricted:u
    start_node t
    start_node u
    wait_for 20 has_vip t && wait_for 20 has_vip u
    VT=$(vip t); VU=$(vip u)
    wait_for 15 grid_exec t ping -c 1 -W 1 -q "$VB"
    wait_for 15 grid_exec u ping -c 1 -W 1 -q "$VB"
    for n in a t u; do
        grid_exec "$n" ping -c "$RELAY_WSS_MEASURE" -i 0.02 -W 1 "$VB" | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -n |
            awk -v who="$n -> b ($(path_of "$n" b))" '{ v[NR] = $1; s += $1 }
                END { printf "# %s: %d replies, RTT ms min %.3f median %.3f p90 %.3f mean %.3f\n", who, NR, v[1], v[int((NR + 1) / 2)], v[int(NR * 0.9)], s / NR }'
    done
fi
echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
