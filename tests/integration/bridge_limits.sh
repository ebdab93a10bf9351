#!/bin/bash
# bridge_limits: the bridge's limits under load (issue 17, docs/bridge.md
# "Testing it"), with real processes in namespaces of its own: bifrostd with
# bus and bifrost-bridge on 203.0.113.10, WebSocket clients
# (tests/bridge_ws_client) on 203.0.113.20 and .21, and one
# bifrost-bridge-peer --echo per flow on 203.0.113.30 (a flow key serves one
# flow). Asserted:
#   - a slow reader (--no-read: it writes and never reads) fills its queue:
#     the bridge drops what does not fit and counts it (dropped_slow), its
#     RSS grows by less than RSS_BOUND_KB over the run, while what it dropped
#     is more than twice that (so a queue without bound, keeping them, would
#     fail the test), and a flow of another client echoes intact meanwhile;
#   - flows_per_address: one address holds 16 flows, its 17th is refused 429
#     before the upgrade with the reason in the body and counted, while another
#     address is served; once the 16 end, the address is served again;
#   - 1,000 connection attempts in one second from one address: every one
#     answered (101 or 429 before the upgrade), none hangs, the 429s counted
#     by the bridge; another address connects and echoes during the flood and
#     after it, and the flooding address is served again a second later;
#   - `bifrostctl scale bridge 3`: the flows spread over the instances
#     (bifrostctl bridge --json); kill -9 of the one with the most: exactly its
#     flows end (the connection closes), the others stay; the supervisor
#     restarts it, new flows work; `scale bridge 1` and a flow still works;
#   - a flow without data is closed with 4408 after bridge.idle_timeout.
# (TAP)
. "$(dirname "$0")/sup_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/natgrid_lib.sh"

PEER=$BIFROST_BUILDDIR/services/bridge/bifrost-bridge-peer
CLIENT=$BIFROST_BUILDDIR/tests/bridge_ws_client
SLOW=1
[ -n "${ASAN_OPTIONS:-}" ] && SLOW=3        # the sanitizer build is several times slower
if [ ! -x "$BIFROST_LIBEXEC_DIR/bifrost-bridge" ] || [ ! -x "$PEER" ] || [ ! -x "$CLIENT" ]; then
    echo "1..0 # SKIP bifrost-bridge, bifrost-bridge-peer or tests/bridge_ws_client is not built"
    exit 0
fi
export BIFROST_LIBEXEC_DIR
SRV=203.0.113.10
WS_PORT=8445
PEER_IP=203.0.113.30
IDLE_S=$((5 * SLOW))            # bridge.idle_timeout: longer than the scale part holds its flows
SLOW_MESSAGES=50000             # what the slow reader writes: 1..1204 bytes, 30 MB
RSS_BOUND_KB=2048                # about 50 kB seen: a generous bound, and one a kept echo per drop would break
FLOOD=1000
PER_ADDRESS=16                  # bridge.flows_per_address: above the 12 held flows of the scale part
export BRIDGE_TOKEN
BRIDGE_TOKEN=tok-$$-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$BRIDGE_TOKEN" > "$T/token"
chmod 600 "$T/token"
T0=$(now_ms)

# check STATUS DESCRIPTION FILE...: a test point; when it failed, the files' tails
check () {
    local rc=$1 what=$2 f; shift 2
    ok "$rc" "$what"
    [ "$rc" -eq 0 ] && return 0
    for f in "$@"; do echo "# ---- $f"; tail -15 "$f" 2>/dev/null | sed 's/^/#   /'; done
    return 1
}

grid_init
grid_public_host srv $SRV
grid_public_host cli 203.0.113.20
grid_public_host cli2 203.0.113.21
grid_public_host peer $PEER_IP
ok $? "namespaces: server $SRV, clients 203.0.113.20 and .21, peers $PEER_IP"

cat > "$T/bridge.cfg" <<CFG
run_dir = "$RUN";
bridge = { listen = "$SRV:$WS_PORT"; token = "\${BRIDGE_TOKEN}"; idle_timeout = "${IDLE_S}s";
           connects_per_second = 20; bytes_per_second = 0; flows_per_address = $PER_ADDRESS;
           address_bytes_per_second = 0; };
supervisor = { backoff_min = "100ms"; backoff_max = "1s"; stable_after = "2s"; };
services = (
    { name = "bus";    exec = "bifrost-bus"; },
    { name = "bridge"; exec = "bifrost-bridge"; depends = ["bus"]; pass_env = ["BRIDGE_TOKEN"]; }
);
CFG
grid_spawn srv "$LOG" "$BIFROSTD" -c "$T/bridge.cfg"
BPID=$GRID_PID
ready_count () { ctl status 2>/dev/null | awk '$1 ~ /^bridge\./ && $3 == "ready"' | wc -l; }
instances () { [ "$(ready_count)" -eq "$1" ] && [ "$(ctl status 2>/dev/null | awk '$1 ~ /^bridge\./' | wc -l)" -eq "$1" ]; }
wait_for $((10 * SLOW)) instances 1
check $? "bifrost-bridge ready on $SRV:$WS_PORT (idle_timeout ${IDLE_S}s, 20 connections/s per address)" "$LOG"

# --- helpers -----------------------------------------------------------------
# peer NAME: a flow key NAME and an echoing peer for it on PEER_IP, the next port
declare -A PORT_OF=()
NEXT_PORT=5000
peer () {
    head -c 32 /dev/urandom | base64 > "$T/$1.key"
    chmod 600 "$T/$1.key"
    PORT_OF[$1]=$NEXT_PORT
    grid_spawn peer "$T/peer-$1.log" "$PEER" --listen "$PEER_IP:$NEXT_PORT" --key-file "$T/$1.key" --echo
    NEXT_PORT=$((NEXT_PORT + 1))
}
url () {
    echo "ws://$SRV:$WS_PORT/v0/ws/proxy?target=$PEER_IP:${PORT_OF[$1]}&key=$(jq -rn --arg v "$(cat "$T/$1.key")" '$v | @uri')"
}
# client HOST NAME ARGS...: a client of flow NAME from HOST, output in $T/NAME.out; pid in CPID
client () {
    local host=$1 name=$2; shift 2
    grid_spawn "$host" "$T/$name.out" "$CLIENT" --url "$(url "$name")" --token-file "$T/token" "$@"
    CPID=$GRID_PID
}
has () { grep -q "$2" "$T/$1.out"; }
gone () { ! alive "$1"; }
# echo_client HOST NAME: flow NAME (its peer started) echoes 20 messages; 0 when it did
echo_client () {
    grid_exec "$1" "$CLIENT" --url "$(url "$2")" --token-file "$T/token" --messages 20 --timeout $((8 * SLOW)) \
        > "$T/$2.out" 2>&1
}
# echo_flow HOST NAME: the same with a new peer
echo_flow () { peer "$2"; echo_client "$@"; }
bridge_json () { ctl bridge --json 2>/dev/null; }
total () { bridge_json | jq "[.instances[].$1 // 0] | add"; }
rss_kb () { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# --- idle: a flow without data, running beside the rest --------------------------
peer idle
client cli2 idle --hold 60 --timeout $((IDLE_S + 10)) --expect-close 4408
IDLE_PID=$CPID
wait_for 5 has idle "^OPEN"
IDLE_OPEN=$(now_ms)

# --- a slow reader ----------------------------------------------------------------
BRIDGE_PID=$(ready_pid bridge.1)
RSS0=$(rss_kb "$BRIDGE_PID")
peer slow
client cli slow --no-read --messages $SLOW_MESSAGES --hold $((6 * SLOW)) --timeout $((30 * SLOW))
SLOW_PID=$CPID
dropping () { [ "$(total dropped_slow)" -gt 0 ]; }
wait_for $((15 * SLOW)) dropping
check $? "a client that never reads: the bridge drops what its queue cannot hold ($(total dropped_slow) dropped so far)" \
    "$T/slow.out" "$T/peer-slow.log"
# Another client's flow, while the slow one's queue is full
echo_flow cli2 fast
rc=$?
alive "$SLOW_PID" && has fast "^ECHO OK 20 " && [ $rc = 0 ]
check $? "meanwhile a flow of another client echoes 20 messages intact ($(grep '^RTT' "$T/fast.out"))" "$T/fast.out"
wait_for $((30 * SLOW)) has slow "^SENT $SLOW_MESSAGES"
check $? "the slow reader wrote its $SLOW_MESSAGES messages of 1..1204 bytes ($((SLOW_MESSAGES * 602 / 1000000)) MB)" "$T/slow.out"
# Echoes keep coming back a while after the last message went: until the
# bridge's counts of them stop moving
data_seen () { echo $(( $(total messages_out) + $(total dropped_slow) )); }
settled () { local a; a=$(data_seen); sleep 0.2; [ "$a" = "$(data_seen)" ]; }
wait_for $((5 * SLOW)) settled
RSS1=$(rss_kb "$BRIDGE_PID")
d=$(total dropped_slow); out=$(total messages_out)
dropped_kb=$((d * 602 / 1024))                  # 602 bytes: the messages' mean size
# (Under ASan the RSS says little: its allocator keeps freed memory in
# quarantine, so every message delivered grows it; the bound holds in the
# plain build, and the drops are asserted in both)
if [ -n "${ASAN_OPTIONS:-}" ]; then
    [ "$dropped_kb" -gt $((2 * RSS_BOUND_KB)) ]
    check $? "bifrost-bridge dropped $d messages (~$dropped_kb kB), delivered $out (RSS $RSS0 -> $RSS1 kB, not bounded under ASan)" "$LOG"
else
    [ -n "$RSS0" ] && [ -n "$RSS1" ] && [ $((RSS1 - RSS0)) -lt $RSS_BOUND_KB ] && [ "$dropped_kb" -gt $((2 * RSS_BOUND_KB)) ]
    check $? "bifrost-bridge's RSS $RSS0 kB before, $RSS1 kB after (bound +$RSS_BOUND_KB kB): $d messages (~$dropped_kb kB) dropped, $out delivered" "$LOG"
fi
wait_for $((10 * SLOW)) gone "$SLOW_PID"
grep -qx "END ok" "$T/slow.out"
check $? "the slow reader ends when its hold is over" "$T/slow.out"

# --- flows_per_address: the 17th flow of one address -----------------------------------
# (before the flood: 16 + 1 connections fit the address's burst of 20)
head -c 32 /dev/urandom | base64 > "$T/many.key"; PORT_OF[many]=9     # no peer: they stay UDP_WAITING
for i in $(seq 1 $PER_ADDRESS); do url many; done > "$T/many.urls"
open0=$(total flows_open); rf0=$(total refused_address_flows)
grid_spawn cli "$T/many.out" "$CLIENT" --url-file "$T/many.urls" --token-file "$T/token" --hold 60 --timeout 60
MANY_PID=$GRID_PID
held () { [ "$(total flows_open)" -eq $((open0 + PER_ADDRESS)) ]; }
wait_for $((5 * SLOW)) held
check $? "$PER_ADDRESS flows held open from 203.0.113.20 (flows_per_address = $PER_ADDRESS; $open0 of others)" "$T/many.out"
printf 'Authorization: Bearer %s\n' "$BRIDGE_TOKEN" > "$T/auth.hdr"; chmod 600 "$T/auth.hdr"
u=$(url many)
code=$(grid_exec cli curl -s -o "$T/over.body" -w '%{http_code}' --max-time 3 --http1.1 \
    -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
    -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' -H "@$T/auth.hdr" "http:${u#ws:}")
[ "$code" = 429 ] && grep -q "rate limited: this address holds its $PER_ADDRESS flows" "$T/over.body" \
    && [ $(( $(total refused_address_flows) - rf0 )) = 1 ]
check $? "the $((PER_ADDRESS + 1))th is refused before the upgrade: HTTP $code, '$(grep -o 'rate limited[^<]*' "$T/over.body")', counted (refused_address_flows)" "$T/over.body"
echo_flow cli2 other
check $? "meanwhile another address (203.0.113.21) is served: its flow echoes" "$T/other.out"
grid_kill "$MANY_PID"
released () { [ "$(total flows_open)" -eq "$open0" ]; }
wait_for $((3 * SLOW)) released && echo_flow cli freed
check $? "the $PER_ADDRESS flows end: their count goes with them, 203.0.113.20 is served again" "$T/freed.out"

# --- 1,000 connection attempts in one second from one address ------------------------
head -c 32 /dev/urandom | base64 > "$T/flood.key"; PORT_OF[flood]=9
r429=$(total refused_rate)
peer during                                     # ready before the flood starts
client cli flood --flood $FLOOD --timeout $((8 * SLOW))
FLOOD_PID=$CPID
t=$(now_ms)
echo_client cli2 during
rc=$?
alive "$FLOOD_PID"; during_flood=$?
[ $rc = 0 ] && [ $during_flood = 0 ]
check $? "during the flood, another address's flow echoes 20 messages ($(( $(now_ms) - t )) ms from the flood's start, flood still running)" "$T/during.out"
wait_for $((12 * SLOW)) gone "$FLOOD_PID"
line=$(grep '^FLOOD' "$T/flood.out")
read -r _ n _ open _ refused _ h429 _ unanswered _ slowest <<< "${line:-FLOOD 0 open 0 refused 0 http429 0 unanswered -1 slowest_ms 0}"
[ "$n" = $FLOOD ] && [ "$unanswered" = 0 ] && [ $((open + refused)) = $FLOOD ] && [ "$h429" = "$refused" ] \
    && [ "$open" -ge 1 ] && [ "$open" -le 60 ] && grep -qx "END ok" "$T/flood.out"
# (all answered within the client's timeout is the point; the slowest answer is
# printed: 3 s was asserted, which a loaded machine can exceed)
check $? "$FLOOD attempts in one second from one address: all answered, $open upgraded, $h429 refused 429 before the upgrade, none unanswered (slowest $slowest ms)" "$T/flood.out"
[ $(( $(total refused_rate) - r429 )) = "$h429" ]
check $? "the bridge counted the $h429 refusals (refused_rate)" "$LOG"
echo_flow cli2 after
check $? "after the flood, the other address's flow echoes" "$T/after.out"
sleep 1                                         # the flooding address's bucket refills
echo_flow cli again
check $? "a second later the flooding address is served again" "$T/again.out"

# --- the idle flow ---------------------------------------------------------------------
# It closed when its output was last written (CLOSE, then END)
wait_for $((IDLE_S + 5)) gone "$IDLE_PID"
took=$(( $(stat -c %.3Y "$T/idle.out" | tr -d .) - IDLE_OPEN ))
grep -q "^CLOSE 4408 idle: no data for $IDLE_S s" "$T/idle.out" && grep -qx "END ok" "$T/idle.out" \
    && [ "$took" -ge $((IDLE_S * 1000 - 200)) ] && [ "$took" -le $((IDLE_S * 1000 + 2000 * SLOW)) ]
check $? "a flow without data is closed after $took ms: $(grep '^CLOSE' "$T/idle.out") (idle_timeout ${IDLE_S}s)" "$T/idle.out"

# --- scale 3, kill -9 of one instance ----------------------------------------------------
ctl scale bridge 3 > /dev/null && wait_for $((10 * SLOW)) instances 3
check $? "bifrostctl scale bridge 3: three instances ready on the one port" "$LOG"
HELD=12
head -c 32 /dev/urandom | base64 > "$T/held.key"
declare -A HELD_PID=()
for i in $(seq 1 $HELD); do
    cp "$T/held.key" "$T/held$i.key"; PORT_OF[held$i]=9
    client cli2 "held$i" --hold 60 --timeout 60
    HELD_PID[$i]=$CPID
done
all_open () { local i; for i in $(seq 1 $HELD); do has "held$i" "^STATUS UDP_WAITING" || return 1; done; }
open_sum () { [ "$(total flows_open)" -eq "$1" ]; }
wait_for $((5 * SLOW)) all_open && wait_for 3 open_sum $HELD
rc=$?
bridge_json > "$T/scale.json"
spread=$(jq -r '[.instances[] | "\(.name)=\(.flows_open)"] | join(" ")' "$T/scale.json")
[ $rc = 0 ] && [ "$(jq '[.instances[] | select(.flows_open > 0)] | length' "$T/scale.json")" -ge 2 ]
check $? "$HELD flows spread over the instances: $spread" "$T/scale.json"
victim=$(jq -r '.instances | max_by(.flows_open) | .name' "$T/scale.json")
vpid=$(jq -r '.instances | max_by(.flows_open) | .pid' "$T/scale.json")
vflows=$(jq -r '.instances | max_by(.flows_open) | .flows_open' "$T/scale.json")
kill -KILL "$vpid"
lost () { [ "$(grep -l "^CLOSE 1006" "$T"/held*.out 2>/dev/null | wc -l)" -ge "$1" ]; }
wait_for $((3 * SLOW)) lost "$vflows"
sleep 0.3                                       # any extra close would show now
closed=$(grep -l "^CLOSE" "$T"/held*.out 2>/dev/null | wc -l)
alive_n=0; for i in $(seq 1 $HELD); do alive "${HELD_PID[$i]}" && alive_n=$((alive_n + 1)); done
[ "$closed" = "$vflows" ] && [ "$alive_n" = $((HELD - vflows)) ]
check $? "kill -9 of $victim: its $vflows flows end (the connection closes), $alive_n others go on" "$T/held1.out"
wait_for $((5 * SLOW)) new_ready "$victim" "$vpid" && wait_for 3 instances 3
check $? "the supervisor restarts $victim (pid $vpid -> $(ready_pid "$victim"))" "$LOG"
for i in $(seq 1 $HELD); do grid_kill "${HELD_PID[$i]}"; done
rc=0
for i in 1 2 3; do echo_flow cli2 "new$i" || rc=1; done
[ $rc = 0 ] && [ "$(bridge_json | jq '[.instances[] | select(.answered)] | length')" = 3 ]
check $? "new flows echo, all three instances answer bridge.status" "$T/new1.out" "$T/new2.out" "$T/new3.out"
ctl scale bridge 1 > /dev/null && wait_for $((10 * SLOW)) instances 1
check $? "bifrostctl scale bridge 1: one instance left" "$LOG"
echo_flow cli2 last
check $? "a new flow echoes on the one instance" "$T/last.out"

echo "# $TESTNO tests, $FAILED failed, $(( $(now_ms) - T0 )) ms"
echo "1..$TESTNO"
finish
