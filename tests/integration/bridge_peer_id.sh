#!/bin/bash
# bridge_peer_id: a bridge flow to a peer of the network named by its id
# (issue 17: "or a peer of the network by id"; docs/bridge.md, "Peers by id"),
# end to end on the NAT grid. A registry with a relay, node a (no NAT) running
# the bridge beside its node services, node b behind a full-cone NAT with
# `connection.bridge_endpoint` and a `bifrost-bridge-peer --echo` on its
# loopback, and a WebSocket client on a public host. Asserted:
#   - a's bridge learns b from discovery's peer.up (bridge.status peers_known);
#   - `peer=<b's registry id>`: the states in order and 50 messages of
#     1..1204 bytes intact both ways, through b's NAT to nat's port, which hands
#     them unread to the program on its loopback (nat.status bridge_in/out);
#     the status names the peer and, as target, b's public mapping;
#   - an id nobody announced is closed with 4404. (TAP)
. "$BIFROST_SRCDIR/tests/integration/tap_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/natgrid_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/mesh_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/bridge_lib.sh"
set -u
T=$(mktemp -d /tmp/bridge-peer-id-XXXXXX)
chmod 755 "$T"          # the services run under their own uids
SLOW=1
[ -n "${ASAN_OPTIONS:-}" ] && SLOW=3
WS_PORT=8445

finish () { mesh_end 25 "${BRIDGE_PEER_ID_KEEP:-}"; }
trap finish EXIT

[ -x "$BIFROST_LIBEXEC_DIR/bifrost-bridge" ] || { echo "1..0 # SKIP bifrost-bridge is not built"; exit 0; }

grid_init
grid_public_host reg 203.0.113.10
grid_public_host relay 203.0.113.11
grid_public_host cli 203.0.113.20
grid_nodes none:a full-cone:b
ok $? "grid: registry, relay, client; node a (no NAT) with the bridge, node b behind a full-cone NAT"

mesh_relay relay 203.0.113.11 relay-1 1
mesh_registry reg 203.0.113.10 relay-1@203.0.113.11:3479
A_IP=$(grid_ip a)
DISC_SERVICES_EXTRA='{ name = "bridge"; exec = "bifrost-bridge"; depends = ["bus", "discovery"]; pass_env = ["BRIDGE_TOKEN"]; }' \
DISC_CFG_EXTRA="bridge = { listen = \"$A_IP:$WS_PORT\"; token = \"\${BRIDGE_TOKEN}\"; };" \
    mesh_start_node a
mesh_start_node b 'bridge_endpoint = "127.0.0.1:5000";'
head -c 32 /dev/urandom | base64 > "$T/flow.key"
chmod 600 "$T/flow.key"
printf '%s' "$BRIDGE_TOKEN" > "$T/token"
spawn b "$T/peer.log" "$PEER" --listen 127.0.0.1:5000 --key-file "$T/flow.key" --echo
PEER_PID=${PIDS##* }
wait_for $((30 * SLOW)) all_have_vip a b
ok $? "a and b registered: ${VIP[a]:=$(vip a)} and ${VIP[b]:=$(vip b)}"

B_ID=$(mesh_admin GET /grid/peers | jq -r '.peers[] | select(.name == "b") | .id')
[[ $B_ID =~ ^[0-9a-f]{16}$ ]]
ok $? "b's registry id: $B_ID"
bridge_knows_b () { "$CTL" -r "$T/a/run" bridge --json 2>/dev/null | jq -e '[.instances[].peers_known] | add >= 1' >/dev/null; }
wait_for $((15 * SLOW)) bridge_knows_b
ok $? "a's bridge knows b from discovery's peer.up"

# The flow takes the peer's endpoints when it opens: nat's current one first,
# which a's nat knows once b's hole punching reached it (direct)
b_direct () { [ "$(peer_path a b)" = direct ]; }
wait_for $((15 * SLOW)) b_direct
ok $? "a's nat reaches b directly, at its NAT's mapping (path $(peer_path a b))"

url () { echo "ws://$A_IP:$WS_PORT/v0/ws/proxy?peer=$1&key=$(urlenc "$(cat "$T/flow.key")")"; }
grid_exec cli "$CLIENT" --url "$(url "$B_ID")" --token-file "$T/token" --timeout $((20 * SLOW)) \
    --expect-states CONNECTED,UDP_WAITING,UDP_ESTABLISHED --messages 50 --size 1204 > "$T/client.out" 2>&1
rc=$?
grep -q "^STATES OK" "$T/client.out" && grep -q "^ECHO OK 50 " "$T/client.out"
ok $? "peer=$B_ID: states in order and 50 messages of 1..1204 bytes came back intact ($(grep -m1 '^ECHO' "$T/client.out" || echo "client exit $rc"))"
[ "$rc" = 0 ] || sed 's/^/#   client: /' "$T/client.out" | tail -15
est=$(sed -n 's/^STATUS UDP_ESTABLISHED //p' "$T/client.out" | head -1)
b_wan=$(grid_wan b)
[ "$(jq -r .peer <<< "$est" 2>/dev/null)" = "$B_ID" ] && [ "$(jq -r .target <<< "$est" 2>/dev/null | cut -d: -f1)" = "$b_wan" ]
ok $? "the status names the peer and, as target, b's public mapping ($(jq -c '{peer, target}' <<< "$est" 2>/dev/null))"
natj=$("$CTL" -r "$T/b/run" peers --json 2>/dev/null | jq -c '.nat')
bin=$(jq -r '.bridge_in // 0' <<< "$natj" 2>/dev/null)
bout=$(jq -r '.bridge_out // 0' <<< "$natj" 2>/dev/null)
[ "${bin:-0}" -ge 50 ] && [ "${bout:-0}" -ge 50 ]
ok $? "b's nat handed the flow to the program and its answers out, unread (bridge_in $bin, bridge_out $bout)"
kill -USR1 "$PEER_PID" 2>/dev/null
sleep 0.3
counters=$(grep '^{' "$T/peer.log" | tail -1)
[ "$(jq -r '.data_in == 50 and .echoed == 50 and .invalid == 0' <<< "$counters" 2>/dev/null)" = true ]
ok $? "the program on b's loopback received the 50 messages and echoed them ($(jq -c '{data_in, echoed, invalid, far_end}' <<< "$counters" 2>/dev/null))"

grid_exec cli "$CLIENT" --url "$(url 00000000deadbeef)" --token-file "$T/token" --timeout $((10 * SLOW)) \
    --expect-close 4404 > "$T/client-unknown.out" 2>&1
grep -q "^CLOSE 4404 " "$T/client-unknown.out"
ok $? "an id nobody announced: $(grep -m1 '^CLOSE' "$T/client-unknown.out" || echo 'no close')"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
