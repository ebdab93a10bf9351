#!/bin/sh
# discovery_relay: what a node's services learn about the relays, watched on the
# node's own bus with `bifrostctl tap`. A real registry with a relay group and a
# real node (bifrostd: bus, crypto, discovery) on 127.0.0.1. discovery
# publishes relay.servers with the registry's grant (the credential verifies
# with the relay secret for this node's peer id), again with a fresh credential
# after heartbeats, and again on bus.sync (a service rejoining); a peer that
# registers arrives as peer.up with relay_id = its registry id. When the
# registry comes back without relays, relay.servers is published once with an
# empty list and the peers again without relay_id. (TAP)
. "${BIFROST_SRCDIR:-.}/tests/integration/registry_lib.sh"
BIFROSTD=$B/supervisor/bifrostd
CTL=$B/tools/bifrostctl
LIBEXEC=${BIFROST_LIBEXEC_DIR:-$B/libexec}
N=$T/node
mkdir -p "$N"
NPID=
node_cleanup () {
    if [ -n "$NPID" ]; then
        kill -TERM "$NPID" 2>/dev/null
        wait_for 5 sh -c "! kill -0 $NPID" || kill -KILL "$NPID" 2>/dev/null
        [ "$FAILED" -ne 0 ] && tail -40 "$N/bifrostd.log" | sed 's/^/# node: /'
    fi
    reg_cleanup
}
trap node_cleanup EXIT

RELAY_SECRET=$(openssl rand -hex 32)
export RELAY_SECRET
cat > "$T/server.cfg" <<CFG
registry = {
    listen = "127.0.0.1:$PORT";
    database = "$T/registry.db";
    admin_token = "\${BIFROST_ADMIN_TOKEN}";
    rate_limit = 0;
};
relay = {
    servers = [ "relay-1@192.0.2.10:3479", "relay-2@192.0.2.11:3479" ];
    secret = "\${RELAY_SECRET}";
    credential_ttl = "10m";
};
CFG
start_registry "$T/server.cfg"
ok $? "registry with a relay group"
http POST /api/v1/mesh/networks "$ADMIN" \
    '{"id":"dr","name":"dr","settings":{"heartbeat_interval":1,"offline_after":5,"expire_after":60}}' >/dev/null
http POST /api/v1/mesh/networks/dr/tokens "$ADMIN" '{"reusable":true}' >/dev/null
BIFROST_JOIN_TOKEN=$(out 'd["token"]')
export BIFROST_JOIN_TOKEN
TAG=$(relay_tag dr)

"$LIBEXEC/bifrost-crypto" --genkey "$N/node.key" >/dev/null
cat > "$N/node.cfg" <<CFG
run_dir = "$N/run";
key_file = "$N/node.key";
network_id = "dr";
discovery = { server = "$URL"; allow_http = true; join_token = "\${BIFROST_JOIN_TOKEN}"; heartbeat_interval = "1s"; name = "n1"; };
connection = { listen = "0.0.0.0:51820"; };
supervisor = { backoff_min = "100ms"; backoff_max = "1s"; stable_after = "2s";
               liveness_timeout = "3s"; stop_timeout = "2s"; intensity = 30; };
services = (
    { name = "bus";       exec = "bifrost-bus"; },
    { name = "crypto";    exec = "bifrost-crypto";    depends = ["bus"]; },
    { name = "discovery"; exec = "bifrost-discovery"; depends = ["bus", "crypto"]; pass_env = ["BIFROST_JOIN_TOKEN"]; }
);
CFG
ctl () { "$CTL" -r "$N/run" "$@"; }
ready () { ctl status 2>/dev/null | awk '$1 == "INSTANCE" { on = 1; next } on && NF == 0 { on = 0 }
                                          on && $3 != "ready" { bad = 1 } on { n++ } END { exit (bad || n < 3) }'; }
env BIFROST_LIBEXEC_DIR="$LIBEXEC" "$BIFROSTD" -c "$N/node.cfg" >> "$N/bifrostd.log" 2>&1 &
NPID=$!
wait_for 15 ready
ok $? "node n1: bus, crypto and discovery READY"
wait_for 10 grep -q "relays from the registry: 2, first relay-1@192.0.2.10:3479" "$N/bifrostd.log"
ok $? "discovery logs the relays of its registration"
http GET /api/v1/mesh/networks/dr/peers "$ADMIN" >/dev/null
N1_ID=$(out '[p["id"] for p in d["peers"] if p["name"] == "n1"][0]')

# tap_json FILE EXPR: EXPR (python, on the list L of the tapped messages' JSON
# objects, each with "type" and "body") evaluated
tap_json () {
    $PY -c 'import json, sys
L = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
try:
    v = eval(sys.argv[2])
    print(v if not isinstance(v, (dict, list)) else json.dumps(v, separators=(",", ":")))
except Exception as e:
    print("<%s>" % e)' "$1" "$2"
}

# tap_start FILE: taps everything into FILE in the background (TAPPID) and
# returns once the tap has seen its first message (heartbeats publish one every
# second), so it is known to be subscribed before the test acts
tap_start () {
    ctl tap --count 1000 --timeout 30 > "$1" 2>&1 &
    TAPPID=$!
    BGPIDS="$BGPIDS $TAPPID"
    wait_for 5 test -s "$1"
}

# --- relay.servers: the grant, renewed with every heartbeat (1 s)
ctl tap 'relay.servers' --count 2 --timeout 10 > "$T/tap1" 2>"$T/tap1.err"
is "$(tap_json "$T/tap1" 'len(L)')" 2 "two relay.servers events within 10 s (heartbeats every second)"
is "$(tap_json "$T/tap1" 'L[0]["body"]["servers"]')" '["relay-1@192.0.2.10:3479","relay-2@192.0.2.11:3479"]' \
    "... with the registry's relays"
is "$(tap_json "$T/tap1" 'L[0]["body"]["peer"]')" "$N1_ID" "... this node's peer id ($N1_ID)"
is "$(tap_json "$T/tap1" 'L[0]["body"]["network"]')" "$TAG" "... the network tag of dr"
C1=$(tap_json "$T/tap1" 'L[0]["body"]["credential"]')
C2=$(tap_json "$T/tap1" 'L[1]["body"]["credential"]')
relay_verify "$RELAY_SECRET" "$TAG" "$N1_ID" "$C1" "$(date +%s)"
ok $? "... and a credential that verifies with the relay secret for this node"
[ "${C2%%.*}" -gt "${C1%%.*}" ] 2>/dev/null && relay_verify "$RELAY_SECRET" "$TAG" "$N1_ID" "$C2" "$(date +%s)"
ok $? "the next one carries a fresh credential (expiry ${C1%%.*} -> ${C2%%.*})"
grep -q "${C1#*.}" "$N/bifrostd.log" "$T/registry.log"
is $? 1 "no credential in the node's or the registry's log"

# --- a peer registers: peer.up with its registry id as relay_id
tap_start "$T/tap2"
is "$(register dr "$BIFROST_JOIN_TOKEN" p2 "$T/p2.key" "$T/p2.json")" 201 "peer p2 registers"
P2_ID=$(jget "$T/p2.json" 'd["peer"]["id"]')
wait_for 10 grep -q '"peer.up"' "$T/tap2"
kill "$TAPPID" 2>/dev/null
is "$(tap_json "$T/tap2" '[m["body"]["name"] for m in L if m["type"] == "peer.up"]')" '["p2"]' "peer.up for p2"
is "$(tap_json "$T/tap2" '[m["body"]["relay_id"] for m in L if m["type"] == "peer.up"][0]')" "$P2_ID" \
    "... with relay_id = its registry id ($P2_ID)"

# --- bus.sync: a service rejoins (crypto killed, restarted by bifrostd), and
# discovery announces its state again: node.address, relay.servers, the peers
tap_start "$T/tap3"
CPID=$(ctl status 2>/dev/null | awk '$1 == "crypto.1" { print $2 }')
kill -KILL "$CPID"
wait_for 10 grep -q '"relay_id":"'"$P2_ID"'"' "$T/tap3"
ok $? "after crypto restarts, peer.up for p2 is published again with its relay_id"
kill "$TAPPID" 2>/dev/null
# The events discovery published from its node.address of the sync onwards
seq=$(tap_json "$T/tap3" '[m["type"] for m in L if m.get("from", "").startswith("discovery")]')
$PY -c 'import json, sys
t = json.loads(sys.argv[1]); i = t.index("node.address")
sys.exit(0 if t[i + 1] == "relay.servers" and "peer.up" in t[i + 2:] else 1)' "$seq"
ok $? "... after node.address and relay.servers, as on every bus.sync ($(echo "$seq" | cut -c1-120))"

# --- the registry comes back without relays: one empty relay.servers, peers without relay_id
grep -v 'secret = ' "$T/server.cfg" > "$T/nosecret.cfg"
tap_start "$T/tap4"
stop_registry TERM
start_registry "$T/nosecret.cfg"
ok $? "registry back without relay.secret"
wait_for 10 grep -q '"servers":\[\]' "$T/tap4"
ok $? "discovery publishes relay.servers with an empty list"
wait_for 5 grep -q "the registry hands out no relays any more" "$N/bifrostd.log"
ok $? "... and says so in its log"
sleep 3     # three more heartbeats: what is published in them is what is tested
kill "$TAPPID" 2>/dev/null
is "$(tap_json "$T/tap4" '(lambda n: n[n.index(0):])([len(m["body"]["servers"]) for m in L if m["type"] == "relay.servers"])')" "[0]" \
    "relay.servers with an empty list is published once, not with every heartbeat"
is "$(tap_json "$T/tap4" '[m["body"]["relay_id"] for m in L if m["type"] == "peer.up" and m["body"]["name"] == "p2"][-1]')" \
    "" "peer.up for p2 again, without relay_id"

kill -TERM "$NPID" 2>/dev/null
wait_for 10 sh -c "! kill -0 $NPID"
ok $? "node stops"
NPID=
stop_registry TERM
echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
