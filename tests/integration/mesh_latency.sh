#!/bin/bash
# mesh_latency: a ring of five peers with emulated link latencies (issue 18).
# n1 .. n5 on one segment, each reaching only its two ring neighbours (nftables
# drops the rest); every link has a one-way delay per direction (tests/nfq_delay,
# NFQUEUE: this kernel has no tc netem):
#
#        n1 -300 ms-- n2
#       /               \        one way; RTT = twice
#     5 ms              5 ms
#     n5                 n3
#       \               /
#       5 ms -- n4 -- 5 ms
#
# Metric = RTT in ms + 100 per hop. n1 -> n3: through n2 is 2 hops, RTT 610 ->
# 810; through n5 and n4 is 3 hops, RTT 30 -> 330: the longer path in hops wins
# by latency. (nat measures a link's RTT by probes whose answer a crossing
# keepalive can pre-empt, so a sample is sometimes short, never long: the large
# contrast keeps the choice clear of that; nat_pathstat.h.) The chosen paths must be the lowest metric; following next hops
# from any node reaches the destination (no loop). Then n5 dies: every route
# through it moves to the other side of the ring, the time is measured, and no
# route to n5 is left anywhere (no count-to-infinity). (TAP)
. "$BIFROST_SRCDIR/tests/integration/node_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"

NFQ=$BIFROST_BUILDDIR/tests/nfq_delay
export BIFROST_ADMIN_TOKEN=admin-$ID-secret
REGPID=
NODES_ALL="n1 n2 n3 n4 n5"

lat_cleanup () {
    disc_registry_cleanup
    if [ "$FAILED" -ne 0 ]; then
        for n in $NODES_ALL; do echo "# ---- routes on $n"; ctl $n routes 2>&1 | sed 's/^/#   /'; done
    fi
    node_cleanup     # also ends the nfq_delay of each namespace (anything left in them)
}
trap lat_cleanup EXIT

underlay reg 192.0.2.10
for i in 1 2 3 4 5; do underlay n$i 192.0.2.$i; done

# one_way I J MS: packets from nI to nJ wait MS ms (queue J in nI's namespace)
declare -A QUEUES=()
one_way () { in_ns n$1 iptables -A OUTPUT -d 192.0.2.$2 -j NFQUEUE --queue-num "$2" --queue-bypass && QUEUES[n$1]="${QUEUES[n$1]:-} $2:$3"; }
link () { one_way "$1" "$2" "$3" && one_way "$2" "$1" "$3"; }
link 1 2 300 && link 2 3 5 && link 3 4 5 && link 4 5 5 && link 5 1 5
ok $? "ring links with one-way delays (n1-n2 300 ms, the others 5 ms)"
# Everything between peers that are not ring neighbours is dropped
for i in 1 2 3 4 5; do
    for j in 1 2 3 4 5; do
        d=$(( (i - j + 5) % 5 ))
        [ "$d" = 2 ] || [ "$d" = 3 ] || continue
        in_ns "n$i" nft add table inet cut 2>/dev/null
        in_ns "n$i" nft add chain inet cut in '{ type filter hook input priority 0 ; }' 2>/dev/null
        in_ns "n$i" nft add chain inet cut out '{ type filter hook output priority 0 ; }' 2>/dev/null
        in_ns "n$i" nft add rule inet cut in ip saddr "192.0.2.$j" drop
        in_ns "n$i" nft add rule inet cut out ip daddr "192.0.2.$j" drop
    done
done
ok $? "non-neighbours of the ring cannot reach each other"
for n in $NODES_ALL; do
    in_ns $n "$NFQ" ${QUEUES[$n]} > "$T/nfq-$n.log" 2>&1 &
done
wait_for 5 sh -c "[ \$(cat $T/nfq-*.log 2>/dev/null | grep -c 'ready') = 5 ]"
ok $? "a delay program in every namespace"
in_ns n1 ping -c 3 -i 0.2 -q 192.0.2.2 > "$T/p12.out" 2>&1
RTT12=$(awk -F/ '/^rtt/ { printf "%d", $5 }' "$T/p12.out")
[ "${RTT12:-0}" -ge 595 ] && [ "${RTT12:-0}" -le 700 ]
ok $? "underlay RTT n1-n2 is about 600 ms (${RTT12} ms)"

disc_registry ring
ok $? "registry, network and join token"

DISC_CFG_EXTRA='routing = { route_timeout = "10s"; };'
for n in $NODES_ALL; do disc_node_cfg "$T/$n" "$n" ring "$RURL"; done
for n in $NODES_ALL; do start_node $n || ok 1 "node $n: every service READY"; done
vip () { in_ns "$1" ip -o -4 addr show dev bifrost0 2>/dev/null | awk '{ sub("/.*", "", $4); print $4 }'; }
declare -A V=()
for n in $NODES_ALL; do wait_for 15 sh -c "ip netns exec $(ns_of $n) ip -o -4 addr show dev bifrost0 | grep -q inet"; V[$n]=$(vip $n); done
ok 0 "five nodes up (${V[n1]} ${V[n2]} ${V[n3]} ${V[n4]} ${V[n5]})"

route_json () { ctl "$1" routes --json "$2" 2>/dev/null; }
next_of () { route_json "$1" "$2" | jq -r '.routes[0].next_hop_name // empty'; }
# walk SRC DST: follows next hops node by node; prints the path, fails on a loop or a dead end
walk () {
    local at=$1 dst=$2 path=$1 seen=" $1 " hop
    for _ in 1 2 3 4 5 6; do
        hop=$(next_of "$at" "$dst")
        [ -n "$hop" ] || { echo "$path (dead end)"; return 1; }
        path="$path>$hop"
        [ "$hop" = "$dst" ] && { echo "$path"; return 0; }
        case "$seen" in *" $hop "*) echo "$path (loop)"; return 1 ;; esac
        seen="$seen$hop "; at=$hop
    done
    echo "$path (too long)"; return 1
}
# The expected next hop from n1 to n3 is n5 (3 hops, metric ~330 < ~810 through n2)
n1_to_n3_via_n5 () { [ "$(next_of n1 n3)" = n5 ] && route_json n1 n3 | jq -e '.routes[0].hops == 3' >/dev/null; }
t0=$(now_ms)
wait_for 40 n1_to_n3_via_n5
ok $? "n1 -> n3 through n5 and n4 (3 hops, lower metric than 2 hops through n2) after $(( $(now_ms) - t0 )) ms: $(route_json n1 n3 | jq -c '.routes[0] | {metric, hops, via}' 2>&1)"
M13=$(route_json n1 n3 | jq -r '.routes[0].metric')
[ "${M13:-0}" -ge 300 ] && [ "${M13:-0}" -lt 810 ]
ok $? "its metric is RTT ~30 ms + 300, below the 810 at least of the way through n2 ($M13)"
# every chain, once the announcements have spread (n1 -> n3 above can be first:
# on a loaded machine a walk right after it once met a route not there yet);
# the wait is only a bound, a loop or a dead end that stays fails it
chains_ok () {
    local s d w
    bad=""
    for s in $NODES_ALL; do for d in $NODES_ALL; do
        [ "$s" = "$d" ] && continue
        w=$(walk "$s" "$d") || bad="$bad [$w]"
    done; done
    [ -z "$bad" ]
}
t1=$(now_ms)
wait_for 20 chains_ok
chains_ok
ok $? "every next-hop chain of the 20 pairs reaches its destination, no loop${bad:+:$bad} ($(( $(now_ms) - t1 )) ms after n1 -> n3)"
# The answers take the short way too: n3 -> n1 through n4 (n2's RTT sample of
# its 600 ms link to n1 can read short at first, from a keepalive that crossed
# nat's probe, until the next samples correct it: the ping waits for that)
n3_to_n1_via_n4 () { [ "$(next_of n3 n1)" = n4 ]; }
t2=$(now_ms)
wait_for 30 n3_to_n1_via_n4
ok $? "n3 -> n1 through n4, the short way back ($(( $(now_ms) - t2 )) ms after the chains; $(route_json n3 n1 | jq -c '.routes[0] | {metric, via}'))"
wait_for 15 ping_ok n1 "${V[n3]}"
ok $? "ping n1 -> n3 along the ring"
in_ns n1 ping -c 5 -i 0.2 -q "${V[n3]}" > "$T/p13.out" 2>&1
R13=$(awk -F/ '/^rtt/ { sub(/.*= /, "", $4); printf "%d", $4 }' "$T/p13.out")     # the least of 5: the path, not a queue
echo "# ping n1 -> n3: $(tail -1 "$T/p13.out")"
[ "${R13:-0}" -ge 25 ] && [ "${R13:-0}" -lt 300 ]
ok $? "its RTT is the short way's (~30 ms), not the 610 ms through n2 (${R13} ms)"

# n5 dies: routes through it move to n2's side; nobody keeps a route to n5
for p in $(ip netns pids "$(ns_of n5)"); do
    [ "$(cat /proc/$p/comm 2>/dev/null)" = nfq_delay ] || kill -KILL "$p" 2>/dev/null
done
tk=$(now_ms)
n1_to_n3_via_n2 () { [ "$(next_of n1 n3)" = n2 ]; }
wait_for 40 n1_to_n3_via_n2
ok $? "n5 killed: n1 -> n3 moves to n2 after $(( $(now_ms) - tk )) ms"
no_route_to_n5 () { local n; for n in n1 n2 n3 n4; do [ -z "$(next_of $n n5)" ] || return 1; done; }
wait_for 40 no_route_to_n5
ok $? "no route to n5 left on any node after $(( $(now_ms) - tk )) ms (no count-to-infinity)"
n4_to_n1_via_n3 () { [ "$(next_of n4 n1)" = n3 ]; }
wait_for 20 n4_to_n1_via_n3
ok $? "n4 -> n1 goes the long way (n3, n2) now: $(walk n4 n1)"
wait_for 15 ping_ok n1 "${V[n4]}"
ok $? "ping n1 -> n4 without n5"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
