#!/bin/bash
# mesh_broadcast: broadcasts and multicasts along a tree (issue 18, docs/routing.md
# "Broadcast and multicast along a tree"). A registry and five nodes that know
# only it, in network namespaces; nftables drops everything between a and each of
# c, d and e, so a reaches them only through b. One broadcast from a reaches b, c,
# d and e once each, and the link a - b carries ONE copy of it (a flood frame, wire
# type 7, counted by nftables on a's underlay), where one end-to-end copy per
# session put four there (b's own and three routed through it for c, d, e); b
# decrypts it and sends it on to c, d and e in their sessions (the test's
# datagram is a 33-byte packet: 65 bytes as data, 85 in a flood frame or behind a
# routing header; a's counters count those sizes only, not keepalives or pings).
# A multicast to a
# group joined on c and e reaches them once each. g has routing.transit = false:
# it announces nothing, so every neighbour that carries sends it a copy, and it
# takes each broadcast once. Then a fourth path f joins and b is killed: once the
# routes move, broadcasts reach c, d, e and g through f.
# Left out of the sanitizer build's suite (the suite's 20 minutes): the tree's code runs under ASan in crypto_selftest (crypto_flood),
# router_lib_selftest (route_tree) and router_mesh, and the flood frame's
# decoder in fuzz_data.
if [ -n "${ASAN_OPTIONS:-}" ]; then echo "1..0 # SKIP broadcast along a tree: release build only"; exit 0; fi
. "$BIFROST_SRCDIR/tests/integration/node_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"

export BIFROST_ADMIN_TOKEN=admin-$ID-secret
REGPID=
LPIDS=
trap 'disc_cleanup $LPIDS' EXIT

disc_underlay reg a b c d e f g
disc_registry tree
ok $? "registry on 192.0.2.10:7080, network tree and a join token"

# a cannot reach c, d, e on the underlay, nor they a; a counts what it sends to
# b by the tunnel message's type (the first byte of the UDP payload) and size
in_ns a nft -f - <<NFT
table inet bfroute {
    chain in { type filter hook input priority 0; ip saddr { 192.0.2.3, 192.0.2.4, 192.0.2.5, 192.0.2.7 } drop; }
    chain out { type filter hook output priority 0; ip daddr { 192.0.2.3, 192.0.2.4, 192.0.2.5, 192.0.2.7 } drop; }
}
table inet bfcount {
    counter flood { }
    counter routed { }
    counter data { }
    chain out {
        type filter hook output priority 0;
        ip daddr 192.0.2.2 udp length 93 @th,64,8 7 counter name "flood"
        ip daddr 192.0.2.2 udp length 93 @th,64,8 5 counter name "routed"
        ip daddr 192.0.2.2 udp length 73 @th,64,8 4 counter name "data"
    }
}
NFT
rc=$?
for n in c d e g; do
    in_ns "$n" nft -f - <<NFT || rc=1
table inet bfroute {
    chain in { type filter hook input priority 0; ip saddr 192.0.2.1 drop; }
    chain out { type filter hook output priority 0; ip daddr 192.0.2.1 drop; }
}
NFT
done
[ "$rc" -eq 0 ]
ok $? "nftables drops every datagram between a and c, d, e, g; a counts its datagrams to b by type"
count () { in_ns a nft list counter inet bfcount "$1" 2>/dev/null | awk '/packets/ { print $2 }'; }

for n in a b c d e; do disc_node_cfg "$T/$n" "$n" tree "$RURL"; done
DISC_CFG_EXTRA='routing = { transit = false; };' disc_node_cfg "$T/g" g tree "$RURL"
t0=$(now_ms)
for n in a b c d e g; do start_node $n || { ok 1 "node $n: every service READY"; exit 1; }; done
ok 0 "nodes a, b, c, d, e, g (transit off): every service READY"
for n in a b c d e g; do wait_for 15 disc_has_vip $n; done
all_vip () { for n in a b c d e g; do disc_has_vip $n || return 1; done; }
all_vip
ok $? "virtual addresses from the registry: $(for n in a b c d e g; do printf '%s %s ' $n "$(disc_vip $n)"; done)"

pj () { ctl "$1" peers --json 2>/dev/null | jq -r "$2"; }
# num NODE FILTER: a number from NODE's `peers --json` (asked again, up to 10
# times, while crypto or nat does not answer in time: their parts are missing)
num () {
    local v
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        v=$(pj "$1" "$2")
        case $v in ''|*[!0-9]*) sleep 0.3 ;; *) echo "$v"; return 0 ;; esac
    done
    echo "no answer from $1" >&2
    echo 0
}
cnt () { num "$1" ".crypto.$2"; }
# hops NODE PEER: hops of NODE's route to PEER, and its next hop
route_via () { ctl "$1" routes --json "$2" 2>/dev/null | jq -e --arg h "$3" --argjson n "$4" \
                   '.routes[0] | .hops == $n and .next_hop_name == $h' >/dev/null; }
# The trees: a's routes to c, d, e through b, and theirs to a (which makes
# them b's children for a's frames: they retract a to b, poison reverse)
trees () {
    for n in c d e; do route_via a $n b 2 && route_via $n a b 2 || return 1; done
    route_via a g b 2 && route_via g a b 2
}
wait_for 30 trees
ok $? "routes: a reaches c, d, e, g through b and they reach a through b, $(( $(now_ms) - t0 )) ms after the start"
sessions () { [ "$(pj a '[.peers[] | select(.session)] | length')" -ge 5 ]; }
wait_for 15 sessions
# The routers' triggered updates (200 ms) have gone out; the trees follow them
sleep 1

# listen NODE PORT [GROUP]: the datagrams into $T/NODE.got, one line each (a group: joined on bifrost0),
# after a line `ready` once it listens (listening waits for every listener's). It
# stops 1.5 s after the $N-th (a second copy would still be seen) or after 10 s;
# LISTEN_NONE=1: a node that must get nothing listens 3 s (an ASan run once lost
# the last datagram of a fixed 3 s window)
listen () {
    in_ns "$1" python3 - "$2" "${3:-}" "$(disc_vip "$1")" "$([ "${LISTEN_NONE:-0}" = 1 ] && echo 0 || echo "$N")" > "$T/$1.got" 2>&1 <<'PY' &
import socket, sys, time
port, group, ifaddr, want = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", port))
if group:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton(ifaddr))
s.settimeout(0.2)
print("ready", flush=True)
end = time.time() + (10 if want else 3)
got, quiet = 0, None
while time.time() < end and not (quiet and time.time() > quiet):
    try:
        print(s.recv(2048).decode(), flush=True)
        got += 1
        if got >= want:
            quiet = time.time() + 1.5
    except socket.timeout:
        pass
PY
    LPIDS="$LPIDS $!"
}
# send NODE DEST PORT COUNT: COUNT numbered datagrams, 50 ms apart, out of bifrost0
send () {
    in_ns "$1" python3 - "$2" "$3" "$4" <<'PY'
import socket, sys, time
dest, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"bifrost0")
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 4)
for k in range(count):
    s.sendto(("msg-%d" % k).encode(), (dest, port))
    time.sleep(0.05)
PY
}
got () { grep -c '^msg-' "$T/$1.got"; }
uniq_got () { sort -u "$T/$1.got" | grep -c '^msg-'; }
wait_listeners () { for p in $LPIDS; do wait "$p" 2>/dev/null; done; LPIDS=; }
listening () { for n in "$@"; do grep -q '^ready' "$T/$n.got" 2>/dev/null || return 1; done; }
BCAST=$(in_ns a ip -o -4 addr show dev bifrost0 | awk '{ for (i = 1; i < NF; i++) if ($i == "brd") print $(i + 1) }')
N=10

# One broadcast at a time, N of them: every member once, one copy on a - b
for n in b c d e g; do listen $n 7001; done
wait_for 10 listening b c d e g
f0=$(count flood); r0=$(count routed); d0=$(count data)
s0=$(cnt a flood_sent); e0=$(cnt a flood_e2e); w0=$(cnt b flood_forwarded); g0=$(cnt g flood_duplicates)
# a's end-to-end packets to each peer (crypto's tx_packets: data, never flood frames)
txs () { num a '[.peers[] | select(.name == "b" or .name == "c" or .name == "d" or .name == "e" or .name == "g") | .tx_packets] | add'; }
t0x=$(txs)
send a "$BCAST" 7001 $N
wait_listeners
f1=$(count flood); r1=$(count routed); d1=$(count data)
s1=$(cnt a flood_sent); e1=$(cnt a flood_e2e); w1=$(cnt b flood_forwarded); g1=$(cnt g flood_duplicates)
TX=$(( $(txs) - t0x ))
rc=0
for n in b c d e g; do [ "$(got $n)" = $N ] && [ "$(uniq_got $n)" = $N ] || rc=1; done
ok $rc "$N broadcasts from a to $BCAST: b got $(got b), c $(got c), d $(got d), e $(got e), g $(got g), none twice"
GDUP=$(( g1 - g0 ))
[ "$GDUP" -ge $N ]
ok $? "g (transit off, announces nothing) heard each broadcast from several neighbours and took it once: $GDUP copies dropped as duplicates"
FLOOD=$(( f1 - f0 )); SENT=$(( s1 - s0 )); E2E=$(( e1 - e0 )); FWD=$(( w1 - w0 ))
# a's own floods (the kernel may add its own, e.g. an MLD report, which b drops:
# its source is not one of a's addresses): each is one flood frame to b, its
# only child; none is a copy per session
ROUTED=$(( r1 - r0 )); DATA=$(( d1 - d0 ))
[ "$SENT" -ge $N ] && [ "$SENT" -le $(( N + 3 )) ] && [ "$FLOOD" -eq $N ] && [ "$ROUTED" -eq 0 ] && [ "$DATA" -eq 0 ] \
    && [ "$TX" -eq 0 ] && [ "$E2E" -eq 0 ] && [ "$FWD" -ge $(( 4 * N )) ] && [ "$FWD" -le $(( 4 * SENT )) ]
ok $? "the link a - b carried ONE copy per broadcast: $FLOOD flood frames for $N broadcasts, $ROUTED routed and $DATA data copies, $TX end-to-end packets from a's crypto (one per session: $(( 5 * N )), b's and c, d, e, g's routed through b); b forwarded $FWD (4 each, to c, d, e, g; b dropped $(cnt b flood_dropped) of the kernel's own floods)"
echo "# copies of the $N broadcasts on a -> b: $(( FLOOD + ROUTED + DATA )) along the tree; one per session: $(( 5 * N ))"

# A multicast group joined on c and e: they get it once each; d, which did not
# join, drops it in its kernel
listen c 7002 239.1.2.3; listen e 7002 239.1.2.3; LISTEN_NONE=1 listen d 7002
wait_for 10 listening c d e
send a 239.1.2.3 7002 $N
wait_listeners
[ "$(got c)" = $N ] && [ "$(uniq_got c)" = $N ] && [ "$(got e)" = $N ] && [ "$(uniq_got e)" = $N ] && [ "$(got d)" = 0 ]
ok $? "$N datagrams from a to the group 239.1.2.3: c got $(got c), e $(got e) (members), d $(got d)"
dup () { cnt "$1" flood_duplicates; }
echo "# flood counters: a sent $(cnt a flood_sent); b rx $(cnt b flood_rx), forwarded $(cnt b flood_forwarded); c rx $(cnt c flood_rx), duplicates $(dup c); over budget $(cnt b flood_over_budget)"

# The limited broadcast (255.255.255.255, sent on bifrost0: LAN games and DHCP
# use it) takes the same tree
for n in b c d e g; do listen $n 7002; done
wait_for 10 listening b c d e g
send a 255.255.255.255 7002 $N
wait_listeners
rc=0
for n in b c d e g; do [ "$(got $n)" = $N ] && [ "$(uniq_got $n)" = $N ] || rc=1; done
ok $rc "$N limited broadcasts from a to 255.255.255.255: b got $(got b), c $(got c), d $(got d), e $(got e), g $(got g), none twice"

# A fourth path: f reaches a and c, d, e; then b dies (SIGKILL of every process
# of its node): the trees move to f and broadcasts reach c, d, e again
disc_node_cfg "$T/f" f tree "$RURL"
start_node f; ok $? "node f: every service READY"
wait_for 15 disc_has_vip f
f_up () { route_via a f f 1 && route_via f c c 1 && route_via f d d 1 && route_via f e e 1; }
wait_for 20 f_up
ok $? "f reaches a, c, d, e directly"
for p in $(ip netns pids "$(ns_of b)"); do kill -KILL "$p" 2>/dev/null; done
tk=$(now_ms)
moved () { for n in c d e g; do route_via a $n f 2 && route_via $n a f 2 || return 1; done; }
wait_for 30 moved; rc=$?
ok $rc "b killed: a reaches c, d, e, g through f and they reach a through f after $(( $(now_ms) - tk )) ms"
sleep 1
for n in c d e f g; do listen $n 7003; done
wait_for 10 listening c d e f g
send a "$BCAST" 7003 $N
wait_listeners
rc=0
for n in c d e f g; do [ "$(got $n)" = $N ] && [ "$(uniq_got $n)" = $N ] || rc=1; done
ok $rc "$N broadcasts from a after b died: c got $(got c), d $(got d), e $(got e), f $(got f), g $(got g), none twice"
echo "# total $(( $(now_ms) - t0 )) ms from the first node's start"
echo "1..$TESTNO"
