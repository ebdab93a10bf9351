#!/bin/bash
# ice_turn: ICE in nat (services/nat/nat_ice.c) through the NAT grid, with the
# Bifrost relay stopped: the registry (listing a relay that is not running) and
# coturn (STUN and TURN, the registry handing out its TURN REST credentials) on
# the public segment, and pairs of nodes that know only the registry:
#   pr: port-restricted x port-restricted. nat's own dials go to the peer's LAN
#       addresses and fail, nothing punches (no relay reports a mapping): ICE
#       starts after connection.ice_after and finds a direct server-reflexive
#       pair; a ping crosses and `bifrostctl peers` shows "ice direct". Both
#       nats take the pair's socket from libnice (the handoff): a burst of
#       pings moves the ice_taken_* counters of nat.status, not libnice's.
#   ss: symmetric x symmetric, and every UDP datagram between the two routers'
#       WAN addresses dropped (nftables on ss-a's router): only coturn's relayed
#       candidates connect them. A ping crosses both ways, the path is "turn",
#       and coturn allocated. The side whose candidate is the relay keeps
#       libnice, the other takes its socket.
#   off: port-restricted x port-restricted with connection.ice = false on both:
#       still not up when the others are (the proof that ICE is what connects
#       the pr pair).
# Then a fake peer (registered with the join token, no nat) posts malformed ICE
# signals to pr-a through the registry: pr-a's nat counts them
# (ice_signals_bad), and its pair still pings. Last, the relay starts: the ss
# pair moves from TURN to the relay (the relay comes before TURN) and its ICE
# session ends after the grace period, while the pr pair stays on its direct
# ICE pair (direct comes before the relay). Before that, pr-b's nat is killed:
# restarted by the supervisor, it meets pr-a through ICE again (pr-a takes the
# new pair's socket). (TAP)
. "$BIFROST_SRCDIR/tests/integration/tap_lib.sh"
set -u
COTURN=$BIFROST_BUILDDIR/services/coturn/bifrost-coturn
TESTCLIENT=$BIFROST_BUILDDIR/services/registry/reg-testclient
if ! command -v turnserver >/dev/null; then
    echo "1..0 # SKIP coturn is not installed (apt-get install coturn)"
    exit 0
fi
. "$BIFROST_SRCDIR/tests/integration/natgrid_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/mesh_lib.sh"
T=$(mktemp -d /tmp/ice-turn-XXXXXX)
chmod 755 "$T"
# Up within this long of registration (ice_after 1 s + gathering and checks);
# tripled with the sanitizers, whose processes run several times slower
UP_S=${ICE_TURN_UP_S:-10}
[ -n "${ASAN_OPTIONS:-}" ] && UP_S=$((UP_S * 3))

finish () { mesh_end 30 "${ICE_TURN_LOGS:-}"; }
trap finish EXIT

IP=203.0.113.10
grid_init
grid_public_host reg $IP
grid_public_host relay 203.0.113.11
grid_nodes port-restricted:pr-a port-restricted:pr-b symmetric:ss-a symmetric:ss-b \
           port-restricted:off-a port-restricted:off-b
ok $? "grid: registry and coturn on $IP, a relay host (relay stopped), three pairs of nodes behind NATs"

# Every UDP datagram between the two symmetric routers' WAN addresses is dropped
# on ss-a's router (both directions, before and after its NAT)
SS_A_WAN=$(grid_wan ss-a); SS_B_WAN=$(grid_wan ss-b)
grid_exec "$(grid_router ss-a)" nft -f - <<NFT
table inet iceturn {
    chain blockfwd { type filter hook forward priority -300; ip saddr $SS_B_WAN meta l4proto udp counter drop; ip daddr $SS_B_WAN meta l4proto udp counter drop; }
    chain blockpre { type filter hook prerouting priority -300; ip saddr $SS_B_WAN meta l4proto udp counter drop; }
    chain blockout { type filter hook output priority -300; ip daddr $SS_B_WAN meta l4proto udp counter drop; }
}
NFT
ok $? "UDP between $SS_A_WAN and $SS_B_WAN blocked (nftables on ss-a's router)"

# coturn and the registry from one config, as a server deployment runs them
# (bifrostd starts both): the registry hands out TURN REST credentials for it
export TURN_SECRET BIFROST_ADMIN_TOKEN
TURN_SECRET=$(openssl rand -hex 24)
RURL=http://$IP:7080
cat > "$T/registry.cfg" <<CFG
registry = { listen = "$IP:7080"; database = "$T/registry.db";
             admin_token = "\${BIFROST_ADMIN_TOKEN}"; rate_limit = 0; };
turn = { realm = "bifrost.test"; host = "$IP"; listening_ip = "$IP"; relay_ip = "$IP";
         listen_port = 3478; min_port = 49152; max_port = 49407;
         secret = "\${TURN_SECRET}"; credential_ttl = "10m"; };
relay = { servers = ["relay-1@203.0.113.11:3479"]; secret = "\${RELAY_SECRET}"; };
CFG
spawn reg "$T/coturn.log" "$COTURN" -c "$T/registry.cfg" -r "$T/coturn-run"
COTURN_PID=$!           # (ip netns exec execs it: bifrost-coturn, then turnserver)
spawn reg "$T/registry.log" "$MESH_REGISTRY" -c "$T/registry.cfg" -r "$T/regrun"
MESH_REG_HOST=reg
wait_for 10 sh -c "ip netns exec $(grid_ns reg) ss -lun | grep -q '$IP:3478 '"
ok $? "coturn listens on $IP:3478 (STUN and TURN)"
# once its ports are bound it runs as turn.user (turnserver), not root
uid=$(awk '$1 == "Uid:" { print $3 }' /proc/$COTURN_PID/status)
[ -n "$uid" ] && [ "$uid" != 0 ] && [ "$uid" = "$(id -u turnserver 2>/dev/null)" ]
ok $? "coturn ($COTURN_PID) runs as turnserver (uid ${uid:-?}), not root"
wait_for 10 grid_exec reg curl -sf -o /dev/null "$RURL/client/meta"
ok $? "registry answers on $RURL"
mesh_admin POST "" '{"id":"grid","name":"grid","cidr":"10.99.0.0/24","settings":{"heartbeat_interval":1,"offline_after":5,"expire_after":120}}' >/dev/null
BIFROST_JOIN_TOKEN=$(mesh_admin POST /grid/tokens '{"ttl":600,"reusable":true}' | jq -r .token)
case "$BIFROST_JOIN_TOKEN" in bjt_*) ok 0 "network and join token created" ;; *) ok 1 "network and join token created" ;; esac

# ---------------------------------------------------------------------------
t0=$(now_ms)
for n in pr-a pr-b ss-a ss-b; do mesh_start_node "$n" 'ice_after = "1s";'; done
for n in off-a off-b; do mesh_start_node "$n" 'ice = false;'; done
wait_for 20 all_have_vip pr-a pr-b ss-a ss-b off-a off-b
ok $? "the six nodes registered and got virtual addresses ($(( $(now_ms) - t0 )) ms)"
for n in pr-a pr-b ss-a ss-b off-a off-b; do VIP[$n]=$(vip "$n"); done

# pr_ok STATUS TEXT: a point about the port-restricted pair's direct ICE path.
# Under ASan libnice's regular nomination sometimes takes the TURN pair, whose
# check succeeds first while the direct pair's checks run slower (docs/ice.md,
# "Left to do"): then the point is reported as skipped, with the path, not
# passed; in the release build it always counts
pr_ok () {
    if [ -n "${ASAN_OPTIONS:-}" ] && [[ "$(peer_path pr-a pr-b)" == turn* ]]; then
        TESTNO=$((TESTNO + 1))
        echo "ok $TESTNO - $2 # SKIP under ASan libnice nominated the TURN pair first ('$(peer_path pr-a pr-b)')"
    else
        ok "$1" "$2"
    fi
}
path_is () { [[ "$(peer_path "$1" "$2")" == $3 ]]; }
# (a) port-restricted x port-restricted: a direct pair through ICE
wait_for $UP_S path_is pr-a pr-b "ice direct*"
pr_ok $? "pr-a -> pr-b: up through ICE, direct (path '$(peer_path pr-a pr-b)')"
wait_for 5 pair_pings pr-a pr-b
ok $? "pr-a <-> pr-b: a ping crosses both ways"
path_is pr-a pr-b "ice direct (srflx/srflx)" || path_is pr-a pr-b "ice direct (*/*)"
pr_ok $? "pr-a's pair has no relayed candidate ('$(peer_path pr-a pr-b)'); pr-b sees '$(peer_path pr-b pr-a)'"
[[ "$(peer_path pr-b pr-a)" == "ice direct"* ]]
pr_ok $? "pr-b -> pr-a: ICE direct too"

# The handoff (docs/ice.md): up on a direct pair, each side's nat takes the
# pair's socket from libnice and carries the data on it itself. A burst of
# pings then moves the taken sockets' counters, not libnice's: the other
# peers' sessions (pr-a and pr-b with ss-a and ss-b, coming up through TURN
# meanwhile) move those by a few, the pings would by 100
taken_log () { grep -q "nat\.1\[[0-9]*\]: peer $2: ICE socket taken from libnice" "$T/$1/bifrostd.log"; }
wait_for 5 taken_log pr-a pr-b && wait_for 5 taken_log pr-b pr-a
pr_ok $? "pr-a and pr-b took their pair's socket from libnice ($(grep -m1 -o 'peer pr-b: ICE socket taken.*' "$T/pr-a/bifrostd.log"))"
nat_field () { peers_json "$1" | jq -r ".nat.$2"; }
FIELDS="ice_tx ice_rx ice_taken_tx ice_taken_rx ice_taken_tx_bytes"
declare -A C0
for n in pr-a pr-b; do
    j=$(peers_json $n)
    for f in $FIELDS; do C0[$n.$f]=$(echo "$j" | jq -r ".nat.$f"); done
done
N=100
got=$(grid_exec pr-a ping -c $N -i 0.01 -W 1 -q -s 1200 "${VIP[pr-b]}" 2>/dev/null | grep -o '[0-9]* received' | grep -o '[0-9]*')
[ "${got:-0}" -eq $N ]
ok $? "pr-a -> pr-b: $N pings of 1200 bytes, ${got:-0} answered"
# The counters' moves since before the pings, on node $1
handoff_ok () {
    local n=$1 f j
    declare -A d
    j=$(peers_json $n)
    for f in $FIELDS; do d[$f]=$(( $(echo "$j" | jq -r ".nat.$f") - ${C0[$n.$f]:-0} )); done
    echo "# $n: on the taken socket +${d[ice_taken_tx]} datagrams (${d[ice_taken_tx_bytes]} bytes) out, +${d[ice_taken_rx]} in; through libnice +${d[ice_tx]} out, +${d[ice_rx]} in; ice_taken $(echo "$j" | jq -r .nat.ice_taken)"
    [ "${d[ice_taken_tx]}" -ge $N ] && [ "${d[ice_taken_rx]}" -ge $N ] && [ "${d[ice_taken_tx_bytes]}" -ge $(( N * 1200 )) ] \
        && [ "${d[ice_tx]}" -lt $(( N / 10 )) ] && [ "${d[ice_rx]}" -lt $(( N / 10 )) ] && [ "$(echo "$j" | jq -r .nat.ice_taken)" -ge 1 ]
}
handoff_ok pr-a
pr_ok $? "pr-a: the pings went out and came back on the taken socket, not through libnice"
handoff_ok pr-b
pr_ok $? "pr-b: the same on its side"

# From a peer's arrival in nat to the peer up (release budget: ice_after 1 s + 4 s)
up_ms () {
    local added up
    added=$(log_ms "$T/$1/bifrostd.log" "nat\.1\[[0-9]+\]: peer $2: added")
    up=$(log_ms "$T/$1/bifrostd.log" "nat\.1\[[0-9]+\]: peer $2: .* -> up")
    [ -n "$added" ] && [ -n "$up" ] && echo $(( up - added ))
}
budget=5000; [ -n "${ASAN_OPTIONS:-}" ] && budget=15000
ms=$(up_ms pr-a pr-b)
[ -n "$ms" ] && [ "$ms" -lt "$budget" ]
ok $? "pr-a: pr-b up ${ms:-?} ms after nat learnt of it (budget $budget ms; $(grep -o 'peer pr-b: ICE pair selected after [0-9]* ms' "$T/pr-a/bifrostd.log" | grep -o '[0-9]* ms'))"

# (b) symmetric x symmetric with UDP between the NATs blocked: TURN
wait_for $UP_S path_is ss-a ss-b "turn*"
ok $? "ss-a -> ss-b: up through TURN (path '$(peer_path ss-a ss-b)')"
wait_for 5 pair_pings ss-a ss-b
ok $? "ss-a <-> ss-b: a ping crosses both ways (through coturn)"
[[ "$(peer_path ss-b ss-a)" == turn* ]]
ok $? "ss-b -> ss-a: turn too ('$(peer_path ss-b ss-a)')"
# On the TURN pair, the side whose own candidate is the relay keeps the
# session in libnice (its data is wrapped in TURN); the other side (its remote
# candidate is the relay) takes its socket and sends to the relayed address
turn_side_ok () {
    local path; path=$(peer_path "$1" "$2")
    if [[ "$path" == "turn (relay/"* ]]; then ! grep -q "peer $2: ICE socket taken" "$T/$1/bifrostd.log"
    else grep -q "peer $2: ICE socket taken" "$T/$1/bifrostd.log"; fi
}
turn_side_ok ss-a ss-b && turn_side_ok ss-b ss-a
ok $? "TURN pair: a relayed local end stays in libnice, the other side takes its socket (ss-a '$(peer_path ss-a ss-b)' $(grep -c 'peer ss-b: ICE socket taken' "$T/ss-a/bifrostd.log") taken, ss-b '$(peer_path ss-b ss-a)' $(grep -c 'peer ss-a: ICE socket taken' "$T/ss-b/bifrostd.log") taken)"
drops=$(grid_exec "$(grid_router ss-a)" nft list table inet iceturn | grep -o 'packets [0-9]*' | awk '{ s += $2 } END { print s + 0 }')
[ "${drops:-0}" -gt 0 ]
ok $? "the block dropped $drops datagram(s) between the routers: the direct attempts were made and failed"
# coturn's relayed addresses are UDP sockets on its relay ports (49152-49407)
relays=$(grid_exec reg ss -uan | awk '$4 ~ /^203\.0\.113\.10:(49[1-3][0-9][0-9]|494[0-9][0-9])$/' | wc -l)
sel=$(grep -ho "ICE pair selected .* (TURN)" "$T/ss-a/bifrostd.log" "$T/ss-b/bifrostd.log" | grep -c "relay $IP:49[0-9]*")
[ "$relays" -gt 0 ] && [ "$sel" -ge 2 ]
ok $? "coturn holds $relays relay allocation(s), and both sides' selected pair has a coturn relay address ($sel log lines)"
rx=$(peers_json ss-a | jq -r '.nat.ice_rx'); tx=$(peers_json ss-a | jq -r '.nat.ice_tx')
[ "${rx:-0}" -gt 0 ] && [ "${tx:-0}" -gt 0 ]
ok $? "ss-a's nat moved the pair's datagrams through libnice (ice_rx $rx, ice_tx $tx)"

ms=$(up_ms ss-a ss-b)
[ -n "$ms" ] && [ "$ms" -lt "$budget" ]
ok $? "ss-a: ss-b up ${ms:-?} ms after nat learnt of it (budget $budget ms; $(grep -o 'peer ss-b: ICE pair selected after [0-9]* ms' "$T/ss-a/bifrostd.log" | grep -o '[0-9]* ms'))"
rtt () { grid_exec "$1" ping -c 5 -i 0.1 -W 1 -q "$2" 2>/dev/null | awk -F/ '/^rtt/ { print $5 }'; }
echo "# ping RTT through ICE direct (pr-a -> pr-b): $(rtt pr-a "${VIP[pr-b]}") ms, through TURN (ss-a -> ss-b): $(rtt ss-a "${VIP[ss-b]}") ms"

# The pair with ICE off is not up: ICE is what connects the others
st=$(peers_json off-a | jq -r '.peers[] | select(.name == "off-b") | .state')
[ "$st" != up ] && ! grid_exec off-a ping -c 1 -W 1 -q "${VIP[off-b]}" >/dev/null 2>&1
ok $? "off-a -> off-b (connection.ice = false): not up ('$st'), no ping"

# ---------------------------------------------------------------------------
# Malformed signals from a peer of the network: counted, nothing breaks
PRA_ID=$(mesh_admin GET /grid/peers | jq -r '(.peers // .)[] | select(.name == "pr-a") | .id')
"$TESTCLIENT" keygen > "$T/fake.key"
ch=$(grid_exec reg curl -s -X POST "$RURL/api/v1/mesh/networks/grid/challenge")
body=$("$TESTCLIENT" body "$(cut -d' ' -f2 "$T/fake.key")" "$(echo "$ch" | jq -r .registry_key)" grid \
       "$(echo "$ch" | jq -r .nonce)" fake 192.0.2.1:51820)
FAKE_TOKEN=$(grid_exec reg curl -s -X POST -H "Authorization: Bearer $BIFROST_JOIN_TOKEN" -H 'Expect:' \
             --data-binary "$body" "$RURL/api/v1/mesh/networks/grid/peers" | jq -r .peer_token)
[ -n "$PRA_ID" ] && [ -n "$FAKE_TOKEN" ] && [ "$FAKE_TOKEN" != null ]
ok $? "a fake peer registered (pr-a is $PRA_ID)"
fake_known () { peers_json pr-a | jq -e '.peers[] | select(.name == "fake")' >/dev/null; }
wait_for 5 fake_known
bad0=$(peers_json pr-a | jq -r '.nat.ice_signals_bad')
signal () {
    grid_exec reg curl -s -o /dev/null -w '%{http_code}\n' -X POST -H "Authorization: Bearer $FAKE_TOKEN" \
        --data-binary "{\"type\":\"$1\",\"data\":$2}" "$RURL/api/v1/mesh/networks/grid/peers/$PRA_ID/signal"
}
codes=""
codes="$codes $(signal ice-cand '{"id":"00000000000000a1","to":"00000000000000a2","cand":"candidate:1 1 TCP 1 10.0.0.1 9 typ host"}')"
codes="$codes $(signal ice-cand '{"id":"00000000000000a1","to":"00000000000000a2","cand":"candidate:1 1 UDP 1 peer.local 9 typ host"}')"
codes="$codes $(signal ice-creds '{"id":"00000000000000a1","to":"00000000000000a2","ufrag":"a b","pwd":"x"}')"
codes="$codes $(signal ice-start '{"id":"NOT-HEX","extra":[1,2,3]}')"
codes="$codes $(signal ice-start '[{"id":{}}]')"
codes="$codes $(signal ice-end '"ice-end"')"
echo "# registry answers:$codes"
bad_moved () { [ "$(peers_json pr-a | jq -r '.nat.ice_signals_bad')" -ge $(( ${bad0:-0} + 6 )) ]; }
wait_for 5 bad_moved
ok $? "pr-a's nat dropped and counted the 6 malformed signals (ice_signals_bad $bad0 -> $(peers_json pr-a | jq -r '.nat.ice_signals_bad'))"
grep -q "bad ICE signal dropped" "$T/pr-a/bifrostd.log"
ok $? "... with a log line each ($(grep -m1 -o 'bad ICE signal dropped.*' "$T/pr-a/bifrostd.log" | cut -c1-110))"
pair_pings pr-a pr-b && [ "$(grep -c 'nat\.1\[[0-9]*\]: listening on' "$T/pr-a/bifrostd.log")" = 1 ]
ok $? "pr-a's nat never restarted and its pair still pings"
echo "# nat.status of ss-a: $(peers_json ss-a | jq -c '.nat | with_entries(select(.key | startswith("ice_")))')"
# pr-b's nat dies (SIGKILL) and the supervisor restarts it: the new nat has
# another ICE id, pr-a drops the old session for the new one, the pair is up
# through ICE again
nat_pid () { grep -o "nat\.1: started .*, pid [0-9]*" "$T/$1/bifrostd.log" | tail -1 | grep -o "[0-9]*$"; }
old_pid=$(nat_pid pr-b)
t3=$(now_ms)
kill -KILL "$old_pid"
restarted () { [ -n "$(nat_pid pr-b)" ] && [ "$(nat_pid pr-b)" != "$old_pid" ]; }
back () { restarted && path_is pr-b pr-a "ice direct*" && pair_pings pr-a pr-b; }
# the outcome is the point (restarted, ICE direct again, pings), the time is
# printed: 45 s only keeps a broken restart from hanging the test (15 s, the
# bound before, ran out on a loaded 2-core machine)
wait_for 45 back
ok $? "pr-b's nat killed (pid $old_pid) and restarted: pr-b -> pr-a up through ICE again $(( $(now_ms) - t3 )) ms later ('$(peer_path pr-b pr-a)'), pings"
grep -Eq "nat\.1\[[0-9]+\]: peer pr-b: ICE session closed \(the peer (started a new session|starts again)\)" "$T/pr-a/bifrostd.log"
ok $? "pr-a dropped its session of pr-b's old nat for the new one"
retaken () { [ "$(grep -c "nat\.1\[[0-9]*\]: peer pr-b: ICE socket taken from libnice" "$T/pr-a/bifrostd.log")" -ge 2 ]; }
wait_for 5 retaken && taken_log pr-b pr-a
pr_ok $? "... closed the old taken socket and took the new pair's (ice_taken $(nat_field pr-a ice_taken), ice_taken_total $(nat_field pr-a ice_taken_total))"

relays=$(peers_json ss-a | jq -r '.nat.relays_up')
[ "$relays" = 0 ] && [[ "$(peer_path ss-a ss-b)" == turn* ]]
ok $? "so far no relay answered ss-a (relays_up $relays) and ss-b is on TURN"

# ---------------------------------------------------------------------------
# The relay starts: TURN gives way to it, a direct ICE pair does not
t2=$(now_ms)
mesh_relay relay 203.0.113.11 relay-1 1
wait_for 45 path_is ss-a ss-b "relay relay-1"     # outer bound (15 s before); the time is printed
ok $? "ss-a -> ss-b: moved from TURN to the relay $(( $(now_ms) - t2 )) ms after the relay started (path '$(peer_path ss-a ss-b)', ss-b sees '$(peer_path ss-b ss-a)')"
wait_for 5 pair_pings ss-a ss-b
ok $? "ss-a <-> ss-b: a ping crosses through the relay"
closed () { grep -Eq "nat\.1\[[0-9]+\]: peer $2: ICE session closed \((relay|closed by the peer)" "$T/$1/bifrostd.log"; }
wait_for 15 closed ss-a ss-b
ok $? "ss-a's ICE session with ss-b closed after the grace period ($(grep -Eo "peer ss-b: ICE session closed \(.*\)" "$T/ss-a/bifrostd.log" | head -1))"
wait_for 5 closed ss-b ss-a
ok $? "... and ss-b's with ss-a ($(grep -Eo "peer ss-a: ICE session closed \(.*\)" "$T/ss-b/bifrostd.log" | head -1))"
[[ "$(peer_path pr-a pr-b)" == "ice direct"* ]] && pair_pings pr-a pr-b
pr_ok $? "pr-a -> pr-b: still on its direct ICE pair with the relay up ('$(peer_path pr-a pr-b)')"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
