#!/bin/bash
# bridge-bench.sh: the WebSocket bridge's benchmark (`make bench-bridge`, issue
# 17, docs/benchmarks.md "Bridge"), in namespaces it makes and deletes
# (tests/integration/natgrid_lib.sh: the server bifrostd with bus and
# bifrost-bridge on 203.0.113.10, the client on .20, the peers on .30):
#
#  1. flows held at once: for each N of BRIDGE_BENCH_FLOWS (100 1000), N echoing
#     peers in one process (bench/bench_bridge peers) and N WebSocket
#     connections in one client (tests/bridge_ws_client --url-file); once all
#     are UDP_ESTABLISHED (the client's line and bridge.status agree), the
#     RSS of bifrost-bridge: memory per flow = (RSS with N - RSS idle) / N;
#  2. one flow, client -> bridge -> bifrost-bridge-peer --echo, against the
#     direct flow client -> bifrost-bridge-peer --echo (bench/bench_bridge
#     direct: the same encryption, no WebSocket): throughput (MESSAGES messages
#     of 1204 bytes, WINDOW in flight) and latency (RTT_MESSAGES messages, one
#     at a time: median and p99); ROUNDS rounds of each, interleaved, medians.
#
# Prints a summary (also in $BRIDGE_BENCH_OUT/summary.md) with the machine and
# its load average before and after. Root.
set -u
[ "$(id -u)" = 0 ] || { echo "bridge-bench: needs root (network namespaces)"; exit 1; }
. "$BIFROST_SRCDIR/tests/integration/tap_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/natgrid_lib.sh"
T=$(mktemp -d /tmp/bridge-bench-XXXXXX)
chmod 755 "$T"
trap '[ -n "${BRIDGE_BENCH_KEEP:-}" ] && cp -r "$T" "$BRIDGE_BENCH_KEEP"; rm -rf "$T"' EXIT   # grid_init chains its cleanup after this
BIFROSTD=$BIFROST_BUILDDIR/supervisor/bifrostd
CTL=$BIFROST_BUILDDIR/tools/bifrostctl
PEER=$BIFROST_BUILDDIR/services/bridge/bifrost-bridge-peer
CLIENT=$BIFROST_BUILDDIR/tests/bridge_ws_client
BENCH=$BIFROST_BUILDDIR/bench/bench_bridge
OUT=${BRIDGE_BENCH_OUT:-$BIFROST_BUILDDIR/bench-bridge}
FLOWS=${BRIDGE_BENCH_FLOWS:-100 1000}
MESSAGES=${BRIDGE_BENCH_MESSAGES:-50000}
WINDOW=${BRIDGE_BENCH_WINDOW:-32}
RTT_MESSAGES=${BRIDGE_BENCH_RTT_MESSAGES:-5000}
ROUNDS=${BRIDGE_BENCH_ROUNDS:-3}
SRV=203.0.113.10
PEER_IP=203.0.113.30
WS=ws://$SRV:8445/v0/ws/proxy
export BRIDGE_TOKEN
BRIDGE_TOKEN=bench-$$-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$BRIDGE_TOKEN" > "$T/token"
chmod 600 "$T/token"
mkdir -p "$OUT"
die () { echo "bridge-bench: $*" >&2; tail -20 "$T"/*.log "$T"/*.out 2>/dev/null >&2; exit 1; }
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

grid_init
grid_public_host srv $SRV
grid_public_host cli 203.0.113.20
grid_public_host peer $PEER_IP
cat > "$T/bridge.cfg" <<CFG
run_dir = "$T/run";
bridge = { listen = "$SRV:8445"; token = "\${BRIDGE_TOKEN}"; max_flows = 1000; idle_timeout = "600s";
           connects_per_second = 0; bytes_per_second = 0; flows_per_address = 0; address_bytes_per_second = 0; };
services = (
    { name = "bus";    exec = "bifrost-bus"; },
    { name = "bridge"; exec = "bifrost-bridge"; depends = ["bus"]; pass_env = ["BRIDGE_TOKEN"]; }
);
CFG
grid_spawn srv "$T/bifrostd.log" env BIFROST_LIBEXEC_DIR="$BIFROST_LIBEXEC_DIR" "$BIFROSTD" -c "$T/bridge.cfg"
ctl () { "$CTL" -r "$T/run" "$@"; }
bridge_pid () { ctl status 2>/dev/null | awk '$1 == "bridge.1" && $3 == "ready" { print $2 }'; }
bridge_up () { [ -n "$(bridge_pid)" ]; }
wait_for 10 bridge_up || die "bifrost-bridge did not start"
BPID=$(bridge_pid)
rss_kb () { awk '/^VmRSS:/ { print $2 }' "/proc/$BPID/status"; }
flows () { ctl bridge --json 2>/dev/null | jq -r ".instances[0].$1"; }
flows_are () { [ "$(flows "$1")" = "$2" ]; }
has () { grep -q "$2" "$1"; }

# --- 1. flows held at once --------------------------------------------------------
HELD=""
for n in $FLOWS; do
    wait_for 10 flows_are flows_open 0 || die "flows of the last round still open"
    idle=$(rss_kb)
    grid_spawn peer "$T/peers-$n.log" "$BENCH" peers --listen $PEER_IP --port 10000 --count "$n" \
        --url "$WS" --url-file "$T/urls-$n"
    ppid=$GRID_PID
    wait_for 30 has "$T/peers-$n.log" "^READY" || die "$n peers did not start"
    grid_spawn cli "$T/client-$n.out" "$CLIENT" --url-file "$T/urls-$n" --token-file "$T/token" --hold 600 --timeout 600
    cpid=$GRID_PID
    wait_for 120 has "$T/client-$n.out" "^ESTABLISHED $n " || die "$n flows did not all reach UDP_ESTABLISHED"
    wait_for 10 flows_are flows_established "$n" || die "bridge.status does not show $n flows established"
    up_ms=$(awk '/^ESTABLISHED/ { print $3 }' "$T/client-$n.out")
    sleep 2                                     # the heartbeats of every flow have run
    held=$(rss_kb)
    est=$(flows flows_established)
    grid_kill "$cpid"
    grid_kill "$ppid"
    per=$(( (held - idle) * 1024 / n ))
    echo "flows $n: all UDP_ESTABLISHED after $up_ms ms, $est established (bridge.status); RSS idle $idle kB, held $held kB: $per bytes per flow"
    HELD="$HELD| $n | $up_ms | $idle | $held | $per |
"
done

# --- 2. one flow: through the bridge and direct ---------------------------------------------
NEXT=7000
# echo_peer NAME: a bifrost-bridge-peer --echo with key NAME on PEER_IP:NEXT; its port in EPORT
echo_peer () {
    head -c 32 /dev/urandom | base64 > "$T/$1.key"
    chmod 600 "$T/$1.key"
    EPORT=$NEXT; NEXT=$((NEXT + 1))
    grid_spawn peer "$T/peer-$1.log" "$PEER" --listen "$PEER_IP:$EPORT" --key-file "$T/$1.key" --echo
    wait_for 5 has "$T/peer-$1.log" "listening on" || die "$1: the peer did not start"
}
url () { echo "$WS?target=$PEER_IP:$EPORT&key=$(jq -rn --arg v "$(cat "$T/$1.key")" '$v | @uri')"; }
# run_bridge NAME WINDOW COUNT / run_direct NAME WINDOW COUNT: the lines RATE and RTT in $T/NAME.out
# cpu_ticks: bifrost-bridge's CPU time so far (user + system, clock ticks)
cpu_ticks () { awk '{ print $14 + $15 }' "/proc/$BPID/stat"; }
run_bridge () {
    echo_peer "$1"
    local before rc; before=$(cpu_ticks)
    # The client's CPU seconds (bash's time: user + system) in $T/$1.cpu
    { TIMEFORMAT='%U %S'; time grid_exec cli "$CLIENT" --url "$(url "$1")" --token-file "$T/token" --messages "$3" \
        --size 1204 --same-size --window "$2" --timeout 120 > "$T/$1.out" 2>&1; } 2> "$T/$1.cpu"
    grep -q '^END ok' "$T/$1.out" || die "$1: the flow through the bridge failed"
    # The bridge's and the client's shares of one core over the messages' time (100: one core)
    awk -v t=$(( $(cpu_ticks) - before )) -v hz="$(getconf CLK_TCK)" -v c="$(cat "$T/$1.cpu")" \
        '$1 == "RATE" { split (c, u, " "); printf "CPU %.0f %.0f\n", t / hz * 100000 / $2, (u[1] + u[2]) * 100000 / $2 }' \
        "$T/$1.out" >> "$T/$1.out"
}
run_direct () {
    echo_peer "$1"
    grid_exec cli "$BENCH" direct --target "$PEER_IP:$EPORT" --key-file "$T/$1.key" --messages "$3" --size 1204 \
        --window "$2" > "$T/$1.out" 2>&1 || die "$1: the direct flow failed"
}
# field NAME KEY I: the median over the rounds of field I of the line KEY
field () {
    awk -v k="$2" -v i="$3" '$1 == k { print $i }' "$T/$1".*.out | sort -g \
        | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
# Rounds interleaved, so a burst of load elsewhere hits both paths alike
for r in $(seq 1 "$ROUNDS"); do
    run_bridge bridge-tput.$r "$WINDOW" "$MESSAGES"
    run_direct direct-tput.$r "$WINDOW" "$MESSAGES"
    run_bridge bridge-rtt.$r 1 "$RTT_MESSAGES"
    run_direct direct-rtt.$r 1 "$RTT_MESSAGES"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

{
    echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores, $(uname -r);"
    echo "load average before $LOAD_BEFORE, after $LOAD_AFTER"
    echo
    echo "| flows held | all UDP_ESTABLISHED after (ms) | RSS idle (kB) | RSS held (kB) | bytes per flow |"
    echo "|---:|---:|---:|---:|---:|"
    printf '%s' "$HELD"
    echo
    echo "One flow, 1204-byte messages ($MESSAGES, $WINDOW in flight; latency: $RTT_MESSAGES, one at a time); medians of $ROUNDS rounds:"
    echo
    echo "| path | messages/s | Mbit/s | RTT median (ms) | RTT p99 (ms) | lost | CPU % bridge | CPU % client |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    echo "| WebSocket -> bridge -> UDP peer | $(field bridge-tput RATE 3) | $(field bridge-tput RATE 4) | $(field bridge-rtt RTT 2) | $(field bridge-rtt RTT 3) | 0 | $(field bridge-tput CPU 2) | $(field bridge-tput CPU 3) |"
    echo "| direct UDP (same encryption) | $(field direct-tput RATE 3) | $(field direct-tput RATE 4) | $(field direct-rtt RTT 2) | $(field direct-rtt RTT 3) | $(cat "$T"/direct-*.out | awk '$1 == "LOST" { n += $2 } END { print n + 0 }') | - | - |"
} | tee "$OUT/summary.md"
