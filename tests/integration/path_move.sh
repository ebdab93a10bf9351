#!/bin/bash
# path_move: what a user's stream loses when a pair changes path (issue 15's
# "relay -> direct loses no packet", measured on today's mechanism). Two public
# nodes on the grid's public segment, a registry and a relay. Direct UDP between
# the two nodes is blocked with nftables in mv-a's namespace before they start,
# so they meet through the relay. Then, during a numbered stream at 1,000
# packets/s through the tunnel (tests/seqstream), the block is lifted: nat's
# direct probe finds the path and the pair moves to it. Asserted: the path is the
# relay first and direct after; the stream lost nothing and doubled nothing
# (duplicates are what crypto's replay window passes twice, which must be 0).
# Then the block comes back during a second stream: nat's direct watch
# (services/nat/nat_direct_watch.c) gives the silent path up and the pair is back
# on the relay with an outage under 1 s, counted in nat.status (direct_lost); the
# block lifted again, the pair is direct again within the probe schedule. (TAP)
. "$BIFROST_SRCDIR/tests/integration/tap_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/natgrid_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/mesh_lib.sh"
set -u
T=$(mktemp -d /tmp/path-move-XXXXXX)
chmod 755 "$T"
SEQ=$BIFROST_BUILDDIR/tests/seqstream
PPS=1000
# The outage budget is the user's (issue 15: under 1 s); built with the
# sanitizers every process runs several times slower, so it is tripled there
OUTAGE_MS=${PATH_MOVE_OUTAGE_MS:-1000}
[ -n "${ASAN_OPTIONS:-}" ] && OUTAGE_MS=$((OUTAGE_MS * 3))

finish () {
    [ -n "${RECV_PID:-}" ] && kill "$RECV_PID" 2>/dev/null
    mesh_finish
    if [ "$FAILED" -ne 0 ]; then
        for f in "$T"/*/bifrostd.log; do
            echo "# ---- $f (last 30 lines)"
            tail -30 "$f" 2>/dev/null | sed 's/^/#   /'
        done
    fi
    grid_cleanup
    rm -rf "$T"
}
trap finish EXIT

grid_init
grid_public_host reg 203.0.113.10
grid_public_host relay 203.0.113.11
grid_nodes none:mv-a none:mv-b
ok $? "grid: a registry, a relay and two public nodes"
B_IP=$(grid_ip mv-b)
# block / unblock: direct UDP between mv-a and mv-b (mv-a's side, both directions)
block () {
    grid_exec mv-a nft -f - <<NFT
table inet pathmove {
    chain out { type filter hook output priority 0; ip daddr $B_IP meta l4proto udp drop; }
    chain in  { type filter hook input priority 0;  ip saddr $B_IP meta l4proto udp drop; }
}
NFT
}
unblock () { grid_exec mv-a nft delete table inet pathmove; }
block
ok $? "direct UDP between mv-a and mv-b blocked (nftables in mv-a)"

mesh_relay relay 203.0.113.11 relay-1 1
mesh_registry reg 203.0.113.10 relay-1@203.0.113.11:3479
mesh_start_node mv-a
mesh_start_node mv-b
wait_for 20 all_have_vip mv-a mv-b
ok $? "both nodes registered and got virtual addresses"
VIP[mv-a]=$(vip mv-a); VIP[mv-b]=$(vip mv-b)
wait_for 10 pair_pings mv-a mv-b
ok $? "mv-a <-> mv-b: a ping crosses (through the relay)"
via_relay () { [[ "$(peer_path mv-a mv-b)" == "relay relay-1" ]]; }
wait_for 5 via_relay
ok $? "the pair is on the relay while direct UDP is blocked (path '$(peer_path mv-a mv-b)')"

# stream NAME SECONDS: a numbered stream mv-a -> mv-b's virtual address in the
# background (receiver in mv-b, JSON in $T/NAME.json); wait with stream_wait
stream () {
    rm -f "$T/$1.ready"
    grid_exec mv-b "$SEQ" recv --bind "${VIP[mv-b]}:47000" --seconds $(( $2 + 10 )) --json \
        --ready "$T/$1.ready" > "$T/$1.json" 2>"$T/$1.err" &
    RECV_PID=$!
    wait_for 5 test -e "$T/$1.ready"
    grid_exec mv-a "$SEQ" send --to "${VIP[mv-b]}:47000" --pps $PPS --seconds "$2" 2>"$T/$1.send" &
    SEND_PID=$!
}
stream_wait () {
    wait "$SEND_PID"
    wait "$RECV_PID"
    RECV_PID=""
    jq -c '{sent, received, lost, duplicates, reordered, max_gap_ms, gaps, losses}' "$T/$1.json" 2>/dev/null | sed 's/^/# /'
}
field () { jq -r ".$2" "$T/$1.json" 2>/dev/null; }
# moved_at NAME PATTERN N: when (ms since the start of stream NAME) mv-a's nat logged
# its Nth line matching PATTERN (logs are UTC, the stream's start is on the wall clock)
moved_at () {
    local t start
    t=$(grep -E "nat\.1\[[0-9]+\]: $2" "$T/mv-a/bifrostd.log" | sed -n "$3p" | awk '{ split ($1, t, "[:.]"); printf "%d\n", ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000 + t[4] }')
    start=$(field "$1" start_wall_ms)
    [ -n "$t" ] && [ -n "$start" ] && echo $(( t - start % 86400000 ))
}
# lost_near NAME AT: packets skipped at arrivals (seqstat's "losses", however short
# the pause) from 300 ms before AT to 700 ms after it
lost_near () { jq -r --argjson at "$2" '[.losses[] | select(.[0] >= $at - 300 and .[0] <= $at + 700) | .[2]] | add // 0' "$T/$1.json"; }

# 1. Relay -> direct during the stream
stream up 12
sleep 1
unblock
t0=$(now_ms)
direct () { [ "$(peer_path mv-a mv-b)" = direct ]; }
wait_for 10 direct
rc=$?
moved=$(( $(now_ms) - t0 ))
ok $rc "block lifted: the pair moves to the direct path (after $moved ms)"
stream_wait up
[ "$(field up sent)" -ge $((PPS * 11)) ] && [ "$(field up received)" -gt 0 ]
ok $? "stream relay -> direct: $(field up sent) sent at $PPS/s, $(field up received) received"
# The move itself loses nothing. Elsewhere in the stream a loaded machine may drop
# a datagram now and then (a busy CPU, not the path): counted, bounded at 1 %
at=$(moved_at up "peer mv-b: endpoint [0-9]" 1)
near=$( [ -n "$at" ] && lost_near up "$at" )
[ -n "$at" ] && [ "$near" = 0 ] && [ "$(field up lost)" -le $((PPS * 12 / 100)) ]
ok $? "relay -> direct: 0 lost around the move at ${at:-?} ms (lost there: ${near:-?}; in the whole stream $(field up lost), worst gap $(field up max_gap_ms) ms)"
[ "$(field up duplicates)" = 0 ]
ok $? "relay -> direct: 0 duplicated (duplicates $(field up duplicates), reordered $(field up reordered))"

# 2. Direct -> relay: the direct path dies during the stream
stream down 12
sleep 1
block
t1=$(now_ms)
wait_for 10 via_relay
rc=$?
back=$(( $(now_ms) - t1 ))
ok $rc "direct path blocked: the pair is back on the relay (after $back ms)"
stream_wait down
gap=$(field down max_gap_ms); gap=${gap%.*}
[ "$(field down received)" -gt $(( $(field down sent) / 2 )) ] && [ "${gap:-99999}" -lt "$OUTAGE_MS" ]
ok $? "direct -> relay: the outage is under $OUTAGE_MS ms (worst gap $(field down max_gap_ms) ms, lost $(field down lost) of $(field down sent))"
lost=$(peers_json mv-a | jq -r '.nat.direct_lost')
[ "${lost:-0}" -ge 1 ]
ok $? "the move is counted: mv-a's nat gave up $lost direct path(s) (bifrostctl peers --json: nat.direct_lost)"

# 3. The block lifted again: back to direct within the probe schedule (1 s, 2 s, 4 s ...)
unblock
t2=$(now_ms)
wait_for 15 direct
ok $? "block lifted again: direct after $(( $(now_ms) - t2 )) ms"
echo "# relay -> direct after ${moved} ms, lost $(field up lost), duplicated $(field up duplicates); direct -> relay after ${back} ms, lost $(field down lost), worst gap $(field down max_gap_ms) ms"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
