#!/bin/bash
# grid_move: what a user's stream loses when a pair changes path, in several cells
# of the NAT grid at once (issue 15: "Migration: 0 lost and 0 duplicated packets of
# the sequenced stream on relay -> direct, in every direct cell"; "Failover: block
# the direct path with nftables during the stream; the outage is under 1 s; lift
# the block; back to direct within the retry time").
#
# A registry and a relay on the grid's public segment; per cell a pair of nodes
# behind the cell's two NAT kinds (GRID_MOVE_CELLS, "KIND-A:KIND-B ..."; the
# default is four cells of different RFC 4787 classes that can be punched; the
# benchmark runs every direct cell: bench/grid-cells.sh). Direct UDP between the
# pair is blocked with nftables in a's namespace before the nodes start, so they
# meet through the relay. Then, per cell and all cells at the same time:
#   1. during a numbered stream at 1,000 packets/s through the tunnel
#      (tests/seqstream), the block is lifted: nat's direct probe finds the path and
#      the pair moves to it. Asserted: the relay first, direct after; nothing of
#      the stream lost around the move (GRID_MOVE_LOST_MAX, default 0; any loss is
#      also reported with crypto's counters) and nothing duplicated (what
#      crypto's replay window passes twice, which must be 0);
#   2. the block comes back during a second stream: nat's direct watch
#      (services/nat/nat_direct_watch.c) gives the silent path up and the pair is
#      back on the relay, the stream going on, counted in nat.status
#      (direct_lost); the outage is printed (the target, under 1 s, is
#      measured on a quiet machine by `make bench-grid`);
#   3. the block lifted again: direct again within the probe schedule;
#   4. (first cell only) blocked again; after the 16 s probe round the block is
#      lifted and a route added in a's namespace: direct 5 s later (issue 15:
#      "5 s after a local address or route change"), not at the 32 s round;
#   5. (the other cells) blocked while the pair is idle: nothing is sent but
#      nat's RTT probes, which the direct watch leaves alone, so the loss
#      estimate of the path rises (or, were anything sent, the path changes).
# The path's round trip and loss from nat's probes (services/nat/nat_path_probe.c,
# issue 15: "per peer: the path in use, its RTT and loss"): a's direct path to b
# has 0 < RTT < 100 ms and 0 % loss after step 1, and the numbers start over on
# the relay after step 2.
# One line per cell goes to $GRID_MOVE_TABLE when set (the benchmark's table). (TAP)
. "$BIFROST_SRCDIR/tests/integration/tap_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/natgrid_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/mesh_lib.sh"
set -u
T=$(mktemp -d /tmp/grid-move-XXXXXX)
chmod 755 "$T"
SEQ=$BIFROST_BUILDDIR/tests/seqstream
PPS=${GRID_MOVE_PPS:-1000}
CELLS=${GRID_MOVE_CELLS:-"none:none full-cone:symmetric port-restricted:port-restricted cgnat:restricted"}
# Built with the sanitizers (memory errors, not timing): two cells and no
# route-change step, so the suite's second pass stays within its time
if [ -n "${ASAN_OPTIONS:-}" ] && [ -z "${GRID_MOVE_CELLS:-}" ]; then
    CELLS="none:none port-restricted:port-restricted"
    GRID_MOVE_NO_NETCHANGE=1
fi
# The outage: the user's target is under 1 s (issue 15), measured on a quiet
# machine by `make bench-grid` (docs/benchmarks.md). Here the point is the
# outcome (back on the relay, the stream carried on) and the outage is printed;
# the bound is 3 times the target, only to catch an outage of another kind
# (a loaded 2-core machine can stretch 1 s), and 3 times that again under the
# sanitizers (every process several times slower)
OUTAGE_MS=${PATH_MOVE_OUTAGE_MS:-3000}
[ -n "${ASAN_OPTIONS:-}" ] && OUTAGE_MS=$((OUTAGE_MS * 3))
# Seconds to wait for the move to direct: the probe schedule of a relayed peer is
# 0.5 s, then doubling (1, 2, 4, 8 s ...), counted from when it came up
DIRECT_WAIT=${GRID_MOVE_DIRECT_WAIT:-16}
MOVE_LOST_MAX=${GRID_MOVE_LOST_MAX:-0}     # datagrams lost at the relay -> direct move (issue 15: none)

finish () { mesh_end 30 "${GRID_MOVE_LOGS:-}"; }
trap finish EXIT

grid_init
grid_public_host reg 203.0.113.10
grid_public_host relay 203.0.113.11
grid_public_host relay2 203.0.113.12
specs=""
i=0
for c in $CELLS; do
    specs="$specs ${c%%:*}:mv$i-a ${c##*:}:mv$i-b"
    i=$((i + 1))
done
NCELLS=$i
grid_nodes $specs
ok $? "grid: a registry, a relay and $NCELLS pairs ($CELLS)"

# block / unblock CELL: direct UDP between the cell's a and b (a's namespace, both
# directions; b's public address: its router's, its carrier's, or its own)
block () {
    local b_wan
    b_wan=$(grid_wan "mv$1-b")
    grid_exec "mv$1-a" nft -f - <<NFT
table inet gridmove {
    chain out { type filter hook output priority 0; ip daddr $b_wan meta l4proto udp drop; }
    chain in  { type filter hook input priority 0;  ip saddr $b_wan meta l4proto udp drop; }
}
NFT
}
unblock () { grid_exec "mv$1-a" nft delete table inet gridmove; }
rc=0
for ((i = 0; i < NCELLS; i++)); do block $i || rc=1; done
ok $rc "direct UDP blocked inside every pair (nftables in each a)"

# Two relays: a node learns its NAT's mapping class from what each sees, and only
# a node that knows its mapping is endpoint-independent predicts the ports of a
# peer behind a sequential NAT (docs/nat.md), as in a deployment with two relays
mesh_relay relay 203.0.113.11 relay-1 1
mesh_relay relay2 203.0.113.12 relay-2 1
mesh_registry reg 203.0.113.10 relay-1@203.0.113.11:3479 relay-2@203.0.113.12:3479
NODES=""
for ((i = 0; i < NCELLS; i++)); do NODES="$NODES mv$i-a mv$i-b"; done
for n in $NODES; do mesh_start_node "$n"; done
wait_for 30 all_have_vip $NODES
ok $? "every node registered and got a virtual address"
for n in $NODES; do VIP[$n]=$(vip "$n"); done

# ---------------------------------------------------------------------------
# One cell, in a subshell of its own: results as "STATUS|TEXT" lines in
# $T/cellN.results (the main shell prints them as test points), its numbers in
# $T/cellN.row
cell () {
    local i=$1 a=mv$1-a b=mv$1-b kinds=$2 out=$T/cell$1.results
    result () { echo "$1|$kinds: $2" >> "$out"; }
    via_relay () { [[ "$(peer_path $a $b)" == "relay relay-"[12] ]]; }
    direct () { [ "$(peer_path $a $b)" = direct ]; }
    # stream NAME SECONDS: a numbered stream a -> b's virtual address in the
    # background (receiver in b, JSON in $T/cellN.NAME.json); wait with stream_wait
    local recv_pid send_pid
    stream () {
        rm -f "$T/cell$i.$1.ready"
        grid_exec $b "$SEQ" recv --bind "${VIP[$b]}:47000" --seconds $(( $2 + 10 )) --json \
            --ready "$T/cell$i.$1.ready" > "$T/cell$i.$1.json" 2>"$T/cell$i.$1.err" &
        recv_pid=$!
        wait_for 5 test -e "$T/cell$i.$1.ready"
        grid_exec $a "$SEQ" send --to "${VIP[$b]}:47000" --pps $PPS --seconds "$2" 2>"$T/cell$i.$1.send" &
        send_pid=$!
    }
    stream_wait () {
        wait "$send_pid"; wait "$recv_pid"
        jq -c '{sent, received, lost, duplicates, reordered, max_gap_ms, gaps, losses}' "$T/cell$i.$1.json" 2>/dev/null \
            | sed "s/^/# $kinds $1: /" >> "$T/cell$i.comments"
    }
    field () { jq -r ".$2" "$T/cell$i.$1.json" 2>/dev/null; }
    # moved_at NAME PATTERN N: when (ms since the start of stream NAME) a's nat
    # logged its Nth line matching PATTERN (logs are UTC, the stream's start is on
    # the wall clock)
    moved_at () {
        local t start
        t=$(grep -E "nat\.1\[[0-9]+\]: $2" "$T/$a/bifrostd.log" | sed -n "$3p" | awk '{ split ($1, t, "[:.]"); printf "%d\n", ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000 + t[4] }')
        start=$(field "$1" start_wall_ms)
        [ -n "$t" ] && [ -n "$start" ] && echo $(( t - start % 86400000 ))
    }
    # lost_near NAME AT: packets skipped at arrivals (seqstat's "losses", however
    # short the pause) from 300 ms before AT to 700 ms after it that never
    # arrived (a skip the new, faster path made by overtaking the old one is
    # filled later: reordered, not lost)
    lost_near () { jq -r --argjson at "$2" '[.losses[] | select(.[0] >= $at - 300 and .[0] <= $at + 700) | .[3]] | add // 0' "$T/cell$i.$1.json"; }
    # pathstat FIELD: a's nat.status number of its path to b (nat_path_probe.c)
    pathstat () { peers_json $a | jq -r --arg b $b ".peers[] | select(.name == \$b) | .$1"; }
    sampled () { [ "$(pathstat rtt_samples)" -ge "${1:-1}" ] 2>/dev/null; }

    wait_for 15 pair_pings $a $b
    result $? "a ping crosses (through the relay)"
    wait_for 5 via_relay
    result $? "on the relay while direct UDP is blocked (path '$(peer_path $a $b)')"

    # 1. Relay -> direct during the stream
    local t0 moved rc at near
    stream up $((DIRECT_WAIT + 3))
    sleep 1
    unblock $i
    t0=$(now_ms)
    wait_for $DIRECT_WAIT direct
    rc=$?
    moved=$(( $(now_ms) - t0 ))
    result $rc "block lifted: the pair moves to the direct path (after $moved ms)"
    stream_wait up
    [ "$(field up received)" -gt 0 ]
    result $? "stream relay -> direct: $(field up sent) sent at $PPS/s, $(field up received) received"
    # The move: issue 15 wants 0 lost. Some moves lost a few datagrams right at
    # the move (3-18, in about 1 of 20 cell runs) until crypto kept the keys a
    # second handshake pushes out (docs/wire-format.md, the retired keypair):
    # both sides' probes are handshakes, and they complete within the relay's
    # delay. 0 in every cell run since (74). Elsewhere in the stream a loaded
    # machine may drop a datagram now and then (a busy CPU, not the path):
    # counted, bounded at 1 %
    at=$(moved_at up "peer $b: endpoint [0-9]" 1)
    near=$( [ -n "$at" ] && lost_near up "$at" )
    [ -n "$near" ] && [ "$near" != 0 ] && echo "# lost at the move: $kinds: $near datagram(s)" >> "$T/cell$i.comments"
    # What crypto saw (a receiver's unknown_index counts datagrams under keys it no longer holds)
    local hs='.crypto | {initiated: .handshakes_initiated, completed: .handshakes_completed, crossed: .handshakes_crossed, unknown_index, replay, no_key}'
    echo "# $kinds after the move: a's crypto $(peers_json $a | jq -c "$hs"), b's $(peers_json $b | jq -c "$hs")" >> "$T/cell$i.comments"
    [ -n "$at" ] && [ "$near" -le "$MOVE_LOST_MAX" ] && [ "$(field up lost)" -le $(( $(field up sent) / 100 )) ]
    result $? "relay -> direct: $MOVE_LOST_MAX lost around the move at ${at:-?} ms (lost there: ${near:-?}; in the whole stream $(field up lost), worst gap $(field up max_gap_ms) ms)"
    [ "$(field up duplicates)" = 0 ]
    result $? "relay -> direct: 0 duplicated (duplicates $(field up duplicates), reordered $(field up reordered))"
    # The direct path's round trip and loss: a probe every 5 s (+- 1 s) while b
    # is quiet toward a (the stream is one-way), the first at once on a new path
    local rtt lossp
    wait_for 8 sampled
    rtt=$(pathstat rtt_us); lossp=$(pathstat loss_probes)
    direct && [ "${rtt:-0}" -gt 0 ] && [ "$rtt" -lt 100000 ] && [ "$(pathstat loss_lost)" = 0 ] && [ "${lossp:-0}" -ge 1 ]
    result $? "the direct path's RTT is $rtt us (0 < RTT < 100 ms, $(pathstat rtt_samples) samples), loss $(pathstat loss_lost) of $lossp probes"

    # 2. Direct -> relay: the direct path dies during the stream
    local t1 back gap lost
    stream down 12
    sleep 1
    block $i
    t1=$(now_ms)
    wait_for 10 via_relay
    rc=$?
    back=$(( $(now_ms) - t1 ))
    result $rc "direct path blocked: the pair is back on the relay (after $back ms)"
    stream_wait down
    gap=$(field down max_gap_ms); gap=${gap%.*}
    [ "$(field down received)" -gt $(( $(field down sent) / 2 )) ] && [ "${gap:-99999}" -lt "$OUTAGE_MS" ]
    result $? "direct -> relay: the stream went on over the relay, outage $(field down max_gap_ms) ms (target 1 s, bound $OUTAGE_MS ms; lost $(field down lost) of $(field down sent))"
    lost=$(peers_json $a | jq -r '.nat.direct_lost')
    [ "${lost:-0}" -ge 1 ]
    result $? "the move is counted: a's nat gave up $lost direct path(s) (nat.direct_lost)"
    # The numbers are the relay path's now: they started over with it, and its
    # round trip is measured too
    local since
    since=$(pathstat path_for_ms)
    wait_for 8 sampled
    [ "${since:-999999}" -lt $(( $(now_ms) - t1 )) ] && via_relay && [ "$(pathstat rtt_us)" -gt 0 ] 2>/dev/null
    result $? "on the relay, the path's numbers start over ($since ms on it) and its RTT is $(pathstat rtt_us) us"

    # 3. The block lifted again: back to direct within the probe schedule
    local t2 again
    unblock $i
    t2=$(now_ms)
    wait_for $DIRECT_WAIT direct
    rc=$?
    again=$(( $(now_ms) - t2 ))
    result $rc "block lifted again: direct after $again ms"
    # 4. (first cell) The retry after a local change: back on the relay, the
    # probe rounds come at 0.5, 1, 2, 4, 8, 16, then 32 s; past the 16 s one the
    # block is lifted and a route is added in a's namespace: nat_netwatch has
    # the direct path tried again 5 s later, not at 32 s. (A route, not an
    # address: a new address is also a new endpoint that discovery registers,
    # and the peer's probes start over on it at once, which would hide the retry)
    if [ "$i" = 0 ] && [ -z "${GRID_MOVE_NO_NETCHANGE:-}" ]; then
        local t3 t4 after
        block $i
        wait_for 10 via_relay
        result $? "blocked again: on the relay"
        t3=$(now_ms)
        sleep 17.5
        unblock $i
        grid_exec $a ip route add unreachable 198.51.100.0/24
        result $? "block lifted $(( $(now_ms) - t3 )) ms after the failover, and a route added in a's namespace"
        t4=$(now_ms)
        # the order is the point: not before the change's retry (5 s), and
        # before the 32 s probe round (about 14.5 s from here: the wait's bound)
        wait_for 14 direct
        rc=$?
        after=$(( $(now_ms) - t4 ))
        [ $rc = 0 ] && [ $after -ge 4000 ]
        result $? "direct again $after ms after the route change (the change's retry at 5 s, not the probe round at 32 s)"
        [ "$(peers_json $a | jq -r '.nat.net_changes')" -ge 1 ] 2>/dev/null
        result $? "the change is counted (nat.net_changes $(peers_json $a | jq -r '.nat.net_changes'))"
        grep -q "local addresses or routes changed" "$T/$a/bifrostd.log"
        result $? "nat logged the change"
    elif [ -z "${GRID_MOVE_NO_IDLE_BLOCK:-}" ]; then
        # 5. Blocked while idle: the RTT probes go unanswered; a probe is lost
        # after its timeout (1 s at least), the next comes 4..6 s later
        local lost0 what rc5
        wait_for 8 sampled
        lost0=$(pathstat loss_lost)
        block $i
        lost_rose () { [ "$(pathstat loss_lost)" -gt "${lost0:-0}" ] 2>/dev/null || via_relay; }
        wait_for 9 lost_rose
        rc5=$?
        if via_relay; then what="the path changed: back on the relay (crypto's keepalives went unanswered)"
        else what="the path's loss rose to $(pathstat loss_lost) of the last $(pathstat loss_probes) probes"; fi
        result $rc5 "blocked while idle: $what"
        unblock $i
    fi
    echo "| ${kinds%%:*} | ${kinds##*:} | $moved | ${near:-?} | $(field up lost) | $(field up duplicates) | $(field down max_gap_ms) | $(field down lost) | $again |" > "$T/cell$i.row"
}

jobs=""
i=0
for c in $CELLS; do cell $i "$c" & jobs="$jobs $!"; i=$((i + 1)); done
for j in $jobs; do wait "$j"; done
for ((i = 0; i < NCELLS; i++)); do
    cat "$T/cell$i.comments" 2>/dev/null
    [ -s "$T/cell$i.results" ] || ok 1 "cell $i: no results"
    while IFS='|' read -r st text; do ok "$st" "$text"; done < "$T/cell$i.results"
done
HEAD="| a | b | relay -> direct after (ms) | lost at the move | lost in the stream | duplicated | failover: worst gap (ms) | lost | back to direct after (ms) |"$'\n'"|---|---|---:|---:|---:|---:|---:|---:|---:|"
echo "# $HEAD" | sed '2,$s/^/# /'
cat "$T"/cell*.row 2>/dev/null | sed 's/^/# /'
[ -n "${GRID_MOVE_TABLE:-}" ] && { echo "$HEAD"; cat "$T"/cell*.row; } > "$GRID_MOVE_TABLE"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
