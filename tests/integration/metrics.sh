#!/bin/bash
# metrics: the Prometheus endpoint as an operator scrapes it (issue 19,
# docs/metrics.md). Two nodes in namespaces run bifrost-metrics on
# 127.0.0.1:9475: a scrape names peer b with its bytes, path, RTT and
# handshake age, the services with their states; the byte counters grow
# after a ping; kill -9 of nat shows as a restart; promtool (Debian's
# prometheus package) accepts the text. A server bifrostd (registry, relay
# with two workers, metrics) in a third namespace shows peers per network,
# registrations and relay sessions per worker after a node registered and a
# relay stream ran. A listen address off loopback is refused unless
# allow_remote. (TAP)
. "$BIFROST_SRCDIR/tests/integration/node_lib.sh"

PROMTOOL=$(command -v promtool)
PROBE=$BIFROST_BUILDDIR/tests/relay_probe
CLIENT=$BIFROST_BUILDDIR/services/registry/reg-testclient

NODE_MORE_SERVICES=',
    { name = "metrics"; exec = "bifrost-metrics"; depends = ["bus"]; }'
two_nodes tun 'metrics = { listen = "127.0.0.1:9475"; cache = "0s"; };'
wait_for 15 ping_ok a 10.100.0.2
ok $? "ping a -> b through the tunnel"

# scrape NODE [PATH]: the endpoint's answer into $T/scrape.NODE (status on stdout)
scrape () {
    in_ns "$1" curl -s -o "$T/scrape.$1" -w '%{http_code}' "http://127.0.0.1:9475${2:-/metrics}"
}
# value NODE SERIES: the sample of the series (exact name and labels) in the last scrape
value () { awk -v s="$2" '$1 == s { print $2 }' "$T/scrape.$1"; }

code=$(scrape a)
[ "$code" = 200 ] && head -c 200 "$T/scrape.a" | grep -q '^# HELP bifrost_'
ok $? "GET /metrics on node a: 200 and the text format (got $code)"
RX0=$(value a 'bifrost_peer_rx_bytes_total{peer="b"}')
TX0=$(value a 'bifrost_peer_tx_bytes_total{peer="b"}')
[ -n "$RX0" ] && [ -n "$TX0" ] && [ "$RX0" -gt 0 ]
ok $? "peer b's bytes each way are there (rx $RX0, tx $TX0)"
[ "$(value a 'bifrost_peer_up{peer="b"}')" = 1 ] && [ "$(value a 'bifrost_peer_path{peer="b",path="direct"}')" = 1 ] \
    && [ "$(value a 'bifrost_peer_path{peer="b",path="relay"}')" = 0 ]
ok $? "peer b is up, on the direct path"
grep -q '^bifrost_peer_handshake_age_seconds{peer="b"} ' "$T/scrape.a" \
    && grep -q '^bifrost_peer_rx_packets_total{peer="b"} [1-9]' "$T/scrape.a"
ok $? "peer b's handshake age and packets are there"
# RTT and loss come with nat's probes (a sample within a few keepalives)
rtt_seen () { scrape a >/dev/null && grep -q '^bifrost_peer_rtt_seconds{peer="b"} ' "$T/scrape.a"; }
wait_for 15 rtt_seen
ok $? "peer b's round trip: $(value a 'bifrost_peer_rtt_seconds{peer="b"}') s, loss $(value a 'bifrost_peer_loss_ratio{peer="b"}')"
for svc in bifrostd crypto nat device bus; do
    [ "$(value a "bifrost_scrape_service_up{service=\"$svc\"}")" = 1 ] || { echo "# $svc did not answer"; false; } || break
done
ok $? "bifrostd (sup.status), crypto, nat, device and the broker all answered the scrape"
[ "$(value a 'bifrost_service_state{service="nat",instance="nat.1",state="ready"}')" = 1 ] \
    && [ "$(value a 'bifrost_service_restarts_total{service="nat",instance="nat.1"}')" = 0 ]
ok $? "nat.1 is ready, 0 restarts"
grep -q '^bifrost_drops_total{service="crypto",reason="tampered"} 0$' "$T/scrape.a" \
    && grep -q '^bifrost_drops_total{service="nat",reason="rate_limited"} ' "$T/scrape.a"
ok $? "drops by reason: crypto's tampered, nat's rate_limited"
"$PROMTOOL" check metrics < "$T/scrape.a" > "$T/promtool.out" 2>&1
ok $? "promtool check metrics accepts node a's text ($(wc -l < "$T/scrape.a") lines)"
echo "# node a: $(wc -c < "$T/scrape.a") bytes, a round took $(value a bifrost_scrape_duration_seconds) s"
sed 's/^/#   /' "$T/promtool.out"

# Traffic moves the counters: 5 pings of 1000 bytes
in_ns a ping -c 5 -i 0.2 -s 1000 -W 1 -q 10.100.0.2 >/dev/null 2>&1
scrape a >/dev/null
RX1=$(value a 'bifrost_peer_rx_bytes_total{peer="b"}')
TX1=$(value a 'bifrost_peer_tx_bytes_total{peer="b"}')
[ "${RX1:-0}" -ge $((RX0 + 5000)) ] && [ "${TX1:-0}" -ge $((TX0 + 5000)) ]
ok $? "after 5 pings of 1000 bytes: rx $RX0 -> $RX1, tx $TX0 -> $TX1"

# A killed service: its restart counted
old=$(service_pid a nat)
kill -KILL "$old"
wait_restarted a nat "$old"
ok $? "nat on a killed (-9) and restarted"
restarted () { scrape a >/dev/null && [ "$(value a 'bifrost_service_restarts_total{service="nat",instance="nat.1"}')" = 1 ]; }
wait_for 10 restarted
ok $? "the scrape shows nat.1's restart (restarts_total 1)"
"$PROMTOOL" check metrics < "$T/scrape.a" > "$T/promtool.out" 2>&1
ok $? "promtool still accepts the text"

# What is not a scrape
[ "$(scrape a /)" = 404 ] && [ "$(in_ns a curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:9475/metrics)" = 405 ]
ok $? "GET / is 404, POST /metrics 405"
# The endpoint is loopback: nothing on the underlay address
! in_ns b curl -s -m 2 -o /dev/null http://192.0.2.1:9475/metrics
ok $? "the endpoint is not reachable from node b on the underlay"
# The metrics service runs under its own uid (schemas/users.def: slot 11)
mpid=$(service_pid a metrics)
muid=$(awk '/^Uid:/ { print $2 }' /proc/"$mpid"/status 2>/dev/null)
[ -n "$muid" ] && [ "$muid" -ne 0 ]
ok $? "bifrost-metrics runs as uid $muid, not root"

# The control socket's exception is bifrost-metrics' alone: another service's
# uid (router's, 61106), in the services' group, is still refused sup.status
setpriv --reuid=61106 --regid=61100 --clear-groups "$CTL" -r "$T/a/run" status > "$T/other.out" 2>&1
rc=$?
[ "$rc" -ne 0 ] && grep -q "only root's bifrostctl" "$T/other.out"
ok $? "sup.status from router's uid: refused ($(head -1 "$T/other.out"))"

# A listen address off loopback: refused at --check-config, unless allow_remote
sed 's/^metrics = .*/metrics = { listen = "0.0.0.0:9475"; };/' "$T/a/node.cfg" > "$T/remote.cfg"
env BIFROST_LIBEXEC_DIR="$LIBEXEC" "$BIFROSTD" --check-config -c "$T/remote.cfg" > "$T/remote.out" 2>&1
rc=$?
[ "$rc" = 78 ] && grep -q 'metrics.listen: 0.0.0.0 is not a loopback address' "$T/remote.out"
ok $? "metrics.listen 0.0.0.0 without allow_remote: exit 78 and why (got $rc)"
sed 's/^metrics = .*/metrics = { listen = "0.0.0.0:9475"; allow_remote = true; };/' "$T/a/node.cfg" > "$T/remote.cfg"
env BIFROST_LIBEXEC_DIR="$LIBEXEC" "$BIFROSTD" --check-config -c "$T/remote.cfg" > "$T/remote.out" 2>&1
ok $? "with allow_remote = true it is valid"

# ---- a server: registry, two relay workers, metrics
underlay srv 192.0.2.10
mkdir -p "$T/srv"
NODES="$NODES srv"
RELAY_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
BIFROST_ADMIN_TOKEN=admin-$ID-secret
export RELAY_SECRET BIFROST_ADMIN_TOKEN
cat > "$T/srv/node.cfg" <<CFG
run_dir = "$T/srv/run";
supervisor = { stop_timeout = "2s"; };
services = (
    { name = "bus";      exec = "bifrost-bus"; },
    { name = "registry"; exec = "bifrost-registry"; depends = ["bus"]; pass_env = ["BIFROST_ADMIN_TOKEN", "RELAY_SECRET"]; },
    { name = "relay";    exec = "bifrost-relay"; depends = ["bus"]; instances = 2; pass_env = ["RELAY_SECRET"]; },
    { name = "metrics";  exec = "bifrost-metrics"; depends = ["bus"]; }
);
registry = { listen = "192.0.2.10:7080"; database = "$T/srv/registry.db"; admin_token = "\${BIFROST_ADMIN_TOKEN}"; rate_limit = 0; };
relay = { servers = ["r1@192.0.2.10:3479"]; secret = "\${RELAY_SECRET}"; listen = "192.0.2.10:3479"; };
metrics = { listen = "127.0.0.1:9475"; cache = "0s"; };
CFG
ip netns exec "$(ns_of srv)" env BIFROST_LIBEXEC_DIR="$LIBEXEC" "$BIFROSTD" -c "$T/srv/node.cfg" \
    >>"$T/srv/bifrostd.log" 2>&1 &
echo $! > "$T/srv/bifrostd.pid"
srv_ready () { [ "$(ctl srv status 2>/dev/null | awk '$3 == "ready"' | wc -l)" -ge 5 ]; }
wait_for 15 srv_ready
ok $? "server: bus, registry, relay.1, relay.2 and metrics READY"
API=http://192.0.2.10:7080/api/v1/mesh
in_ns srv curl -s -H "Authorization: Bearer $BIFROST_ADMIN_TOKEN" -d '{"id":"m","name":"m","cidr":"10.77.0.0/24"}' \
    "$API/networks" | jq -e '.id == "m"' >/dev/null
TOKEN=$(in_ns srv curl -s -H "Authorization: Bearer $BIFROST_ADMIN_TOKEN" -d '{"ttl":600,"reusable":true}' \
    "$API/networks/m/tokens" | jq -r .token)
# One node registers (challenge, key proof, POST), as discovery does
"$CLIENT" keygen > "$T/srv/peer.key"
SK=$(cut -d' ' -f2 "$T/srv/peer.key")
in_ns srv curl -s -X POST -o "$T/srv/ch.json" "$API/networks/m/challenge"
BODY=$("$CLIENT" body "$SK" "$(jq -r .registry_key "$T/srv/ch.json")" m "$(jq -r .nonce "$T/srv/ch.json")" p1 192.0.2.1:51820)
code=$(in_ns srv curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" --data-binary "$BODY" "$API/networks/m/peers")
[ "$code" = 201 ]
ok $? "network m created, a peer registered (got $code)"
# Relay traffic: 2 pairs, 50 packets/s for 1 s
in_ns srv "$PROBE" stream --relay 192.0.2.10:3479 --pairs 2 --pps 50 --seconds 1 --json > "$T/srv/stream.json" 2>"$T/srv/stream.err"
ok $? "relay_probe streamed through the relay workers"
# The registry takes its numbers once a second (reg_status.h)
srv_counted () {
    scrape srv >/dev/null && [ "$(value srv 'bifrost_registry_peers{network="m"}')" = 1 ] \
        && [ "$(value srv 'bifrost_registry_registrations_total')" = 1 ]
}
wait_for 5 srv_counted
ok $? "the server's scrape: network m has 1 peer, 1 registration"
grep -q '^bifrost_registry_websocket_clients 0$' "$T/scrape.srv"
ok $? "the registry's WebSocket clients: 0"
w1=$(value srv 'bifrost_relay_forwarded_packets_total{worker="1"}')
w2=$(value srv 'bifrost_relay_forwarded_packets_total{worker="2"}')
[ -n "$w1" ] && [ -n "$w2" ] && [ $((w1 + w2)) -gt 0 ] \
    && grep -q '^bifrost_relay_sessions{worker="1"} ' "$T/scrape.srv" \
    && grep -q '^bifrost_relay_drops_total{worker="2",reason="rate_limited"} ' "$T/scrape.srv"
ok $? "relay workers 1 and 2 each have their series (forwarded $w1 + $w2)"
echo "# server: $(wc -l < "$T/scrape.srv") lines, a round took $(value srv bifrost_scrape_duration_seconds) s"
"$PROMTOOL" check metrics < "$T/scrape.srv" > "$T/promtool.out" 2>&1
ok $? "promtool check metrics accepts the server's text"
sed 's/^/#   /' "$T/promtool.out"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
