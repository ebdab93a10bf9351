#!/bin/bash
# mesh_hops.sh: what mesh routing costs a flow (issue 18's benchmark, `make
# bench-hops`, docs/benchmarks.md "Mesh routing: direct, 1 and 2 peer hops").
#
# A line of four Bifrost nodes a - b - c - d and a registry, each in a network
# namespace of its own, all on one segment (a hub namespace with a bridge,
# tests/integration/node_lib.sh's underlay, 192.0.2.0/24); nftables lets each
# node reach only its line neighbours (and the registry). The nodes know only the
# registry (tests/integration/disc_lib.sh: discovery with a join token, so they
# have registry ids and route), device mtu 1400 (docs/routing.md, "MTU": a routed
# datagram is 20 bytes larger). Before measuring, a's routes must be: b direct,
# c through b in 2 hops, d through b in 3 hops; otherwise nothing is reported.
#
# Each round measures, in an order that rotates round by round (so noise hits
# all alike), a -> b (direct), a -> c (1 peer hop: through b) and a -> d (2 peer
# hops: through b and c) as the reference harness ../shared/bench/vpn-throughput.sh
# does: iperf3 TCP 1 stream and 4 streams for SECONDS with -O 1 warm-up (goodput
# at the receiver), ping 50 x 10 ms (average RTT). After each path's tests the
# transit counters of b and c must have grown as the path says, and a's routes
# must still be the same. Median, min and max over the rounds, one RESULT line
# per path and metric (the harness's format) and RATIO lines against direct.
#
#   mesh_hops.sh [-n ROUNDS] [-t SECONDS] [--out DIR] [--default-budget] [--no-offload]
#
# The transit budget per source (routing.transit_*_per_second, default 200 Mbit/s)
# would cap the routed paths far below the data path's speed, so it is raised to
# its maximum unless --default-budget (what a node gets untuned). device.offload =
# true, as bench/vpn-bifrost.sh, unless --no-offload. Root. Everything it creates
# (namespaces, processes, files but --out) is removed on exit; every wait is
# bounded; it kills only processes it started (those in its own namespaces).
set -u
usage () {
    echo "usage: mesh_hops.sh [-n ROUNDS] [-t SECONDS] [--out DIR] [--default-budget] [--no-offload]" >&2
    exit 2
}
ROUNDS=3
SECS=10
OUT=
BUDGET=max
OFFLOAD=true
while [ $# -gt 0 ]; do
    case $1 in
    -n) [ $# -ge 2 ] || usage; ROUNDS=$2; shift 2 ;;
    -t) [ $# -ge 2 ] || usage; SECS=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || usage; OUT=$2; shift 2 ;;
    --default-budget) BUDGET=default; shift ;;
    --no-offload) OFFLOAD=false; shift ;;
    -h|--help) usage ;;
    *) echo "mesh_hops: unknown argument '$1'" >&2; usage ;;
    esac
done
case $ROUNDS in ''|*[!0-9]*) echo "mesh_hops: -n wants a number of rounds (1-100), not '$ROUNDS'" >&2; exit 2 ;; esac
case $SECS in ''|*[!0-9]*) echo "mesh_hops: -t wants seconds (1-600), not '$SECS'" >&2; exit 2 ;; esac
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 100 ] || { echo "mesh_hops: -n $ROUNDS: 1 to 100 rounds" >&2; exit 2; }
[ "$SECS" -ge 1 ] && [ "$SECS" -le 600 ] || { echo "mesh_hops: -t $SECS: 1 to 600 seconds" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "mesh_hops: needs root (network namespaces, nftables)" >&2; exit 1; }
for c in ip nft iperf3 ping jq curl ss timeout awk; do
    command -v "$c" >/dev/null || { echo "mesh_hops: $c is missing (scripts/install-deps.sh --bench)" >&2; exit 1; }
done
: "${BIFROST_SRCDIR:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${BIFROST_BUILDDIR:?mesh_hops: set BIFROST_BUILDDIR to a build tree (make bench-hops does)}"
: "${BIFROST_LIBEXEC_DIR:=$BIFROST_BUILDDIR/libexec}"
REGISTRY=$BIFROST_BUILDDIR/services/registry/bifrost-registry
for f in "$BIFROST_BUILDDIR/supervisor/bifrostd" "$BIFROST_BUILDDIR/tools/bifrostctl" "$REGISTRY" \
         "$BIFROST_LIBEXEC_DIR/bifrost-nat"; do
    [ -x "$f" ] || { echo "mesh_hops: $f not built (make all)" >&2; exit 1; }
done
OUT=${OUT:-$BIFROST_BUILDDIR/bench-hops}
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
mkdir -p "$OUT/logs"
rm -f "$OUT/results.tsv" "$OUT/summary.txt" "$OUT/routes.txt" "$OUT"/logs/{a,b,c,d}-bifrostd.log \
    "$OUT/logs/reg-registry.log" "$OUT"/logs/{direct,hop1,hop2}-tcp[14]-r*.json

# node_lib: T, the namespaces (underlay, ns_of, in_ns), start_node, ctl, wait_for,
# and node_cleanup (every process in our namespaces, the namespaces, T) on exit
. "$BIFROST_SRCDIR/tests/integration/node_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"

log () { echo "[$(date -u +%H:%M:%S)] $*"; }
die () { echo "mesh_hops: $*" >&2; FAILED=1; exit 1; }
export BIFROST_ADMIN_TOKEN
BIFROST_ADMIN_TOKEN=admin-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
RURL=http://192.0.2.10:7080
API=$RURL/api/v1/mesh/networks
REGPID=
SRVPID=
bench_cleanup () {
    [ -n "$SRVPID" ] && kill -TERM "$SRVPID" 2>/dev/null
    [ -n "$REGPID" ] && kill -TERM "$REGPID" 2>/dev/null && wait_for 5 sh -c "! kill -0 $REGPID"
    for n in reg a b c d; do
        for f in "$T/$n"/*.log; do [ -f "$f" ] && cp "$f" "$OUT/logs/$n-$(basename "$f")"; done
    done
    node_cleanup
}
trap bench_cleanup EXIT
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "work dir $T, results in $OUT; $ROUNDS round(s) of $SECS s tests; transit budget $BUDGET; offload $OFFLOAD"

# --- The line ---------------------------------------------------------------
underlay reg 192.0.2.10
underlay a 192.0.2.1
underlay b 192.0.2.2
underlay c 192.0.2.3
underlay d 192.0.2.4
mkdir -p "$T/reg"
cat > "$T/reg/registry.cfg" <<CFG
registry = { listen = "192.0.2.10:7080"; database = "$T/reg/registry.db";
             admin_token = "\${BIFROST_ADMIN_TOKEN}"; rate_limit = 0; };
CFG
ip netns exec "$(ns_of reg)" "$REGISTRY" -c "$T/reg/registry.cfg" -r "$T/reg/run" >>"$T/reg/registry.log" 2>&1 &
REGPID=$!
wait_for 10 in_ns reg curl -s -o /dev/null "$RURL/client/meta" || die "the registry does not answer on $RURL"
admin () { in_ns reg curl -s -m 5 -X "$1" -H "Authorization: Bearer $BIFROST_ADMIN_TOKEN" ${3:+--data-binary "$3"} "$API$2"; }
admin POST "" '{"id":"hops","name":"hops","cidr":"10.100.0.0/24","settings":{"heartbeat_interval":1,"offline_after":3,"expire_after":120}}' \
    | jq -e '.id == "hops"' >/dev/null || die "could not create the network"
export BIFROST_JOIN_TOKEN
BIFROST_JOIN_TOKEN=$(admin POST /hops/tokens '{"ttl":3600,"reusable":true}' | jq -r .token)
case "$BIFROST_JOIN_TOKEN" in bjt_*) ;; *) die "no join token" ;; esac

# Each node reaches its line neighbours and the registry only
declare -A FAR=([a]="192.0.2.3, 192.0.2.4" [b]="192.0.2.4" [c]="192.0.2.1" [d]="192.0.2.1, 192.0.2.2")
for n in a b c d; do
    in_ns "$n" nft -f - <<NFT || die "nftables on $n"
table inet bfhops {
    chain in { type filter hook input priority 0; ip saddr { ${FAR[$n]} } drop; }
    chain out { type filter hook output priority 0; ip daddr { ${FAR[$n]} } drop; }
}
NFT
done
in_ns a ping -c 1 -W 1 -q 192.0.2.3 >/dev/null 2>&1 && die "a reaches c on the underlay: the line is not a line"

budget=""
[ "$BUDGET" = max ] && budget="transit_packets_per_second = 10000000; transit_bytes_per_second = 1250000000;"
for n in a b c d; do
    DISC_CFG_EXTRA="routing = { $budget };" disc_node_cfg "$T/$n" "$n" hops "$RURL"
    sed -i "s/mtu = 1400;/mtu = 1400; offload = $OFFLOAD;/" "$T/$n/node.cfg"
    grep -q "offload = $OFFLOAD" "$T/$n/node.cfg" || die "could not set device.offload in $n's config"
done
for n in a b c d; do start_node "$n" || die "node $n: not every service READY within 15 s"; done
vip () { in_ns "$1" ip -o -4 addr show dev bifrost0 2>/dev/null | awk '{ sub("/.*", "", $4); print $4 }'; }
has_vip () { [ -n "$(vip "$1")" ]; }
declare -A VIP
for n in a b c d; do
    wait_for 20 has_vip "$n" || die "node $n has no virtual address from the registry"
    VIP[$n]=$(vip "$n")
done
log "virtual addresses: a ${VIP[a]}, b ${VIP[b]}, c ${VIP[c]}, d ${VIP[d]}"
t0=$(now_ms)
for n in b c d; do wait_for 60 ping_ok a "${VIP[$n]}" || die "a does not reach $n (${VIP[$n]}) within 60 s"; done
log "a reaches b, c and d after $(( $(now_ms) - t0 )) ms"

# --- The routes must be the line's --------------------------------------------
# routes_ok: a's router sends b direct, c through b in 2 hops, d through b in 3,
# and a's nat sends c's and d's datagrams through b, b's directly
routes_ok () {
    local r p
    r=$(ctl a routes --json 2>/dev/null) && p=$(ctl a peers --json 2>/dev/null) || return 1
    jq -e '[.routes[] | {key: .name, value: [.next_hop_name, .hops]}] | from_entries
           | .b == ["b", 1] and .c == ["b", 2] and .d == ["b", 3]' <<<"$r" >/dev/null &&
    jq -e '[.peers[] | {key: .name, value: .routed_via}] | from_entries
           | (.b // "") == "" and .c == "b" and .d == "b"' <<<"$p" >/dev/null
}
if ! wait_for 30 routes_ok; then
    ctl a routes 2>&1 | sed 's/^/  /' >&2
    ctl a peers --json 2>/dev/null | jq -c '[.peers[] | {name, routed_via}]' >&2
    die "a's routes are not b direct, c via b (2 hops), d via b (3 hops): nothing measured"
fi
ctl a routes | tee "$OUT/routes.txt" | sed 's/^/  /'
# A full-size packet crosses both hops without fragments (1400 + 32 + 20 + 28 = 1480)
in_ns a ping -c 3 -i 0.2 -W 1 -q -M "do" -s 1372 "${VIP[d]}" >/dev/null 2>&1 \
    || die "a DF ping of the full inner MTU (1400) does not reach d"

# --- Measuring ---------------------------------------------------------------
# transit NODE FWD DROP: FWD = the packets NODE's nat forwarded for others so far,
# DROP = those it dropped over their source's transit budget
transit () {
    local v; v=$(ctl "$1" peers --json 2>/dev/null | jq -r '"\(.nat.transit_forwarded) \(.nat.transit_drop_budget)"')
    case $v in *[!0-9\ ]*|' '*|*' ') die "no transit counters from $1's nat (bifrostctl peers --json): '$v'" ;; esac
    printf -v "$2" '%s' "${v% *}"
    printf -v "$3" '%s' "${v#* }"
}
# record PATH METRIC VALUE
record () { printf '%s\t%s\t%s\t%s\n' "$ROUND" "$1" "$2" "$3" >> "$OUT/results.tsv"; }
busy_ticks () { awk '/^cpu /{ b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat; }
# iperf PATH DST METRIC [-P 4]: one iperf3 test, goodput at the receiver (and
# the sender's retransmits, and how busy the machine was)
iperf () {
    local path=$1 dst=$2 metric=$3 j mbps s0 s1; shift 3
    s0=$(busy_ticks)
    j=$(timeout $((SECS + 30)) ip netns exec "$(ns_of a)" iperf3 -c "$dst" -t "$SECS" -O 1 -J "$@" 2>>"$T/iperf3-client.log")
    s1=$(busy_ticks)
    printf '%s\n' "$j" > "$OUT/logs/$path-$metric-r$ROUND.json"
    mbps=$(jq -r '.end.sum_received.bits_per_second // empty | . / 1e6' <<<"$j" 2>/dev/null)
    [ -n "$mbps" ] || { log "  $metric failed: $(jq -r '.error // empty' <<<"$j" 2>/dev/null)"; mbps=NA; }
    record "$path" "${metric}_mbps" "$mbps"
    record "$path" "${metric}_retr" "$(jq -r '.end.sum_sent.retransmits // "NA"' <<<"$j" 2>/dev/null)"
    [ "$metric" = tcp1 ] && record "$path" tcp1_sys_busy_pct \
        "$(awk -v a="$s0" -v b="$s1" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.1f", (y[1] - x[1]) / (y[2] - x[2]) * 100 }')"
    log "  $metric $([ "$mbps" = NA ] && echo NA || printf '%.0f' "$mbps") Mbit/s, $(jq -r '.end.sum_sent.retransmits // "?"' <<<"$j" 2>/dev/null) retransmits"
}
# measure PATH TARGET: the three tests a -> TARGET, a fresh iperf3 server in it
measure () {
    local path=$1 n=$2 dst=${VIP[$2]} out avg loss tb0 tc0 tb1 tc1 db0 dc0 db1 dc1
    log "round $ROUND/$ROUNDS: $path (a -> $n, $dst)"
    ip netns exec "$(ns_of "$n")" iperf3 -s >>"$T/iperf3-server.log" 2>&1 &
    SRVPID=$!
    wait_for 5 sh -c "ip netns exec $(ns_of "$n") ss -ltn | grep -q ':5201 '" || die "iperf3 -s in $n does not listen"
    timeout 10 ip netns exec "$(ns_of a)" ping -q -c 5 -i 0.2 -W 1 "$dst" >/dev/null 2>&1   # warm-up
    transit b tb0 db0; transit c tc0 dc0
    iperf "$path" "$dst" tcp1; sleep 1
    iperf "$path" "$dst" tcp4 -P 4; sleep 1
    out=$(timeout 20 ip netns exec "$(ns_of a)" ping -q -c 50 -i 0.01 -W 1 "$dst" 2>&1)
    avg=$(awk -F/ '/^rtt/ { print $5 }' <<<"$out")
    loss=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' <<<"$out")
    record "$path" ping_avg_ms "${avg:-NA}"; record "$path" ping_loss_pct "${loss:-NA}"
    log "  ping avg ${avg:-NA} ms, loss ${loss:-NA} %"
    kill -TERM "$SRVPID" 2>/dev/null; wait_for 5 sh -c "! kill -0 $SRVPID"; SRVPID=
    # What crossed b and c must be what the path says: the flows' packets where the
    # path goes, elsewhere only the routed keepalives and handshakes of the other
    # destinations (a few per second: at most 20 per second of the path's tests)
    transit b tb1 db1; transit c tc1 dc1
    local fb=$((tb1 - tb0)) fc=$((tc1 - tc0)) noise=$((20 * (2 * SECS + 15)))
    record "$path" transit_b_pkts "$fb"; record "$path" transit_c_pkts "$fc"
    record "$path" budget_drops $((db1 - db0 + dc1 - dc0))
    case $n in
    b) [ "$fb" -lt "$noise" ] && [ "$fc" -lt "$noise" ] ;;
    c) [ "$fb" -ge 1000 ] && [ "$fb" -gt "$noise" ] && [ "$fc" -lt "$noise" ] ;;
    d) [ "$fb" -ge 1000 ] && [ "$fb" -gt "$noise" ] && [ "$fc" -ge 1000 ] && [ "$fc" -gt "$noise" ] ;;
    esac || die "$path: b forwarded $fb and c $fc packets meanwhile: not the path a -> $n should take"
    log "  forwarded meanwhile: b $fb, c $fc packets; $((db1 - db0 + dc1 - dc0)) dropped over the transit budget"
    routes_ok || die "a's routes changed during $path: nothing reported"
    sleep 1
}
PATHS=(direct hop1 hop2)
declare -A TARGET=([direct]=b [hop1]=c [hop2]=d)
for ROUND in $(seq 1 "$ROUNDS"); do
    for k in 0 1 2; do
        p=${PATHS[$(( (k + ROUND - 1) % 3 ))]}
        measure "$p" "${TARGET[$p]}"
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- Summary: median, min, max per path and metric ---------------------------------
{
    echo "mesh_hops: a -> b direct, a -> c through b (1 peer hop), a -> d through b and c (2 peer hops)"
    echo "$ROUNDS round(s), TCP tests of $SECS s (+1 s warm-up), ping 50 x 10 ms; device mtu 1400, offload $OFFLOAD,"
    echo "transit budget $BUDGET; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores,"
    echo "kernel $(uname -r), iperf3 $(iperf3 --version | head -1 | awk '{ print $2 }'), commit $(git -C "$BIFROST_SRCDIR" rev-parse --short HEAD 2>/dev/null || echo '?');"
    echo "load average before $LOAD_BEFORE, after $LOAD_AFTER"
    awk -F'\t' '
    function fmt(x) { return (x == int(x) && x < 1e15) ? sprintf("%d", x) : (x >= 100 ? sprintf("%.0f", x) : (x >= 1 ? sprintf("%.2f", x) : sprintf("%.3f", x))) }
    { key = $2 SUBSEP $3; if ($4 != "NA" && $4 != "") { n[key]++; v[key, n[key]] = $4 + 0 } else na[key]++; seen[key] = 1 }
    END {
        np = split("direct hop1 hop2", P, " ")
        nm = split("tcp1_mbps tcp4_mbps ping_avg_ms ping_loss_pct tcp1_retr tcp4_retr tcp1_sys_busy_pct transit_b_pkts transit_c_pkts budget_drops", M, " ")
        for (pi = 1; pi <= np; pi++) for (mi = 1; mi <= nm; mi++) {
            key = P[pi] SUBSEP M[mi]; c = n[key] + 0
            if (c == 0) { med[key] = "NA"; continue }
            for (i = 1; i <= c; i++) s[i] = v[key, i]
            for (i = 2; i <= c; i++) { x = s[i]; j = i - 1; while (j >= 1 && s[j] > x) { s[j + 1] = s[j]; j-- } s[j + 1] = x }
            med[key] = (c % 2) ? s[(c + 1) / 2] : (s[c / 2] + s[c / 2 + 1]) / 2
            mn[key] = s[1]; mx[key] = s[c]
            smp[key] = ""; for (i = 1; i <= c; i++) smp[key] = smp[key] (i > 1 ? "," : "") fmt(v[key, i])
        }
        printf "\n%-8s %-22s %14s %14s %10s %8s %10s\n", "path", "route", "TCP 1 Mbit/s", "TCP 4 Mbit/s", "ping ms", "loss %", "busy %"
        split("a-b direct|a-b-c (1 peer hop)|a-b-c-d (2 peer hops)", R, "|")
        for (pi = 1; pi <= np; pi++) {
            printf "%-8s %-22s", P[pi], R[pi]
            split("tcp1_mbps tcp4_mbps ping_avg_ms ping_loss_pct tcp1_sys_busy_pct", C, " ")
            w[1] = 14; w[2] = 14; w[3] = 10; w[4] = 8; w[5] = 10
            for (ci = 1; ci <= 5; ci++) { key = P[pi] SUBSEP C[ci]; printf " %" w[ci] "s", (med[key] == "NA" || med[key] == "") ? "NA" : fmt(med[key]) }
            printf "\n"
        }
        printf "(medians; min-max and samples in the RESULT lines; busy %% = the whole machine during TCP 1)\n\n"
        for (pi = 1; pi <= np; pi++) for (mi = 1; mi <= nm; mi++) {
            key = P[pi] SUBSEP M[mi]; if (!(key in seen)) continue
            u = M[mi]; unit = (u ~ /_mbps$/) ? "Mbit/s" : (u ~ /_pct$/) ? "%" : (u ~ /_ms$/) ? "ms" : (u ~ /_retr$/) ? "segments" : (u ~ /_pkts$|_drops$/) ? "packets" : "-"
            if (med[key] == "NA") printf "RESULT anchor=%s metric=%s median=NA min=NA max=NA n=0 failed=%d unit=%s samples=NA\n", P[pi], M[mi], na[key] + 0, unit
            else printf "RESULT anchor=%s metric=%s median=%s min=%s max=%s n=%d failed=%d unit=%s samples=%s\n", P[pi], M[mi], \
                fmt(med[key]), fmt(mn[key]), fmt(mx[key]), n[key], na[key] + 0, unit, smp[key]
        }
        for (pi = 2; pi <= np; pi++) for (ri = 1; ri <= 3; ri++) {
            split("tcp1_mbps tcp4_mbps ping_avg_ms", RM, " ")
            k1 = P[pi] SUBSEP RM[ri]; k0 = "direct" SUBSEP RM[ri]
            if (med[k1] != "NA" && med[k0] != "NA" && med[k0] > 0)
                printf "RATIO anchor=%s metric=%s baseline=direct ratio=%.3f\n", P[pi], RM[ri], med[k1] / med[k0]
        }
    }' "$OUT/results.tsv"
} | tee "$OUT/summary.txt"
