#!/bin/bash
# mesh_groups: multicast groups and anycast across the mesh with the real
# routers (issue 18, docs/groups.md). A registry and four nodes in network
# namespaces; nftables drops everything between a and c on the underlay, so a
# reaches c only through b or d. c joins a multicast group with `bifrostctl
# group join`: a's `group list` shows c by name (c's report crossed b inside
# the a-c session, end to end); a program on c joins another (setsockopt: the
# device's IGMP snooping tells c's router): a sees it too, and loses it when
# the program exits. b and c join one anycast address: a's nearest is b (one
# hop), c (two hops) after it, and a datagram from a to the address is
# answered by b; b killed: c is the nearest, through d, and answers. c's
# router killed: the supervisor restarts it and it joins its groups again
# from its file. An address that cannot be a group is refused. (TAP)
. "$BIFROST_SRCDIR/tests/integration/node_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"

export BIFROST_ADMIN_TOKEN=admin-$ID-secret
ANY=10.100.0.250                # the anycast address: in the network's prefix, so a's kernel routes it to bifrost0
REGPID=
PIDS=
trap 'disc_cleanup $PIDS' EXIT

disc_underlay reg a b c d
disc_registry groups
ok $? "registry on 192.0.2.10:7080, network groups and a join token"
disc_block bfgroups a c
ok $? "nftables drops every datagram between a and c"

# d also joins a group from its config (routing.groups)
for n in a b c; do disc_node_cfg "$T/$n" "$n" groups "$RURL"; done
DISC_CFG_EXTRA='routing = { groups = [ "ff3e::4242" ]; };' disc_node_cfg "$T/d" d groups "$RURL"
for n in a b c d; do start_node $n; ok $? "node $n: every service READY"; done
for n in a b c d; do wait_for 15 disc_has_vip $n; done
VB=$(disc_vip b); VC=$(disc_vip c)
routed () { ctl a routes --json 2>/dev/null | jq -e '.routes[] | select(.name == "c") | .hops == 2' >/dev/null; }
wait_for 30 routed
ok $? "a reaches c in two hops ($(ctl a routes --json 2>/dev/null | jq -r '.routes[] | select(.name == "c") | .next_hop_name'))"

# glist NODE: `group list --json`; row NODE GROUP: that group's row
glist () { ctl "$1" group list --json 2>/dev/null; }
row () { glist "$1" | jq -c --arg g "$2" '.groups[] | select(.group == $g)'; }
# row_is NODE GROUP FILTER: the row is there and FILTER holds (jq -e alone is
# true of no input)
row_is () { local r; r=$(row "$1" "$2"); [ -n "$r" ] && echo "$r" | jq -e "$3" >/dev/null; }
members () { row "$1" "$2" | jq -r '[.members[]] | join(",")'; }
nearest () { row "$1" "$2" | jq -r '.nearest'; }

# A multicast group joined with bifrostctl on c, seen on a by name
out=$(ctl c group join 239.7.7.7); rc=$?
[ $rc -eq 0 ] && [ "$out" = "joined 239.7.7.7" ]
ok $? "c: bifrostctl group join 239.7.7.7 -> '$out'"
t0=$(now_ms)
c_member () { [ "$(members a 239.7.7.7)" = c ]; }
wait_for 15 c_member
ok $? "a's group list: 239.7.7.7 with member c, $(( $(now_ms) - t0 )) ms after the join (c's report through b)"
row_is c 239.7.7.7 '.local == "ctl" and .anycast == false and (.members | length) == 0'
ok $? "c's group list: 239.7.7.7 is its own (local ctl): $(row c 239.7.7.7)"
d_member () { [ "$(members a ff3e::4242)" = d ] && row_is d ff3e::4242 '.local == "config"'; }
wait_for 15 d_member
ok $? "d's routing.groups: ff3e::4242 on d (local config) and on a with member d"

# A program on c joins a multicast group: the device reads the kernel's IGMP
# report (device.groups), c's router tells a
ip netns exec "$(ns_of c)" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton("239.8.8.8") + socket.inet_aton(sys.argv[1]))
time.sleep(120)' "$VC" >/dev/null 2>&1 &
JOINPID=$!; PIDS="$PIDS $JOINPID"
t0=$(now_ms)
prog_member () { [ "$(members a 239.8.8.8)" = c ] && row_is c 239.8.8.8 '.local == "device"'; }
wait_for 15 prog_member
ok $? "a program on c joined 239.8.8.8 (setsockopt): a's group list has member c after $(( $(now_ms) - t0 )) ms, c's says local device"
kill -TERM "$JOINPID" 2>/dev/null; wait "$JOINPID" 2>/dev/null
t0=$(now_ms)
prog_gone () { ! row_is a 239.8.8.8 '(.members | index("c")) != null'; }
wait_for 15 prog_gone
ok $? "the program exits (its leave): c is gone from a's 239.8.8.8 after $(( $(now_ms) - t0 )) ms"

# Anycast: b (one hop from a) and c (two hops) join $ANY; each answers a
# datagram to it with its name (from its own address), and a ping to it (from
# the anycast address: a's crypto takes it from the members the router names)
for n in b c; do
    ip netns exec "$(ns_of $n)" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 7100))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(sys.argv[1].encode(), peer)' "$n" >/dev/null 2>&1 &
    PIDS="$PIDS $!"
done
# ask: a sends one datagram to $ANY:7100; prints the name that answered
ask () {
    in_ns a python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.sendto(b"who", (sys.argv[1], 7100))
try:
    print(s.recvfrom(2048)[0].decode())
except socket.timeout:
    print("-")' "$ANY" 2>/dev/null
}
answers () { [ "$(ask)" = "$1" ]; }
# Anycast: b (one hop from a) and c (two hops) join $ANY
ctl b group join $ANY >/dev/null && ctl c group join $ANY >/dev/null
ok $? "b and c: bifrostctl group join $ANY (anycast)"
both () { [ "$(members a $ANY)" = "b,c" ] && [ "$(nearest a $ANY)" = b ]; }
wait_for 15 both
ok $? "a's group list: $ANY anycast, nearest b, members b then c ($(row a $ANY))"
ctl a group list 2>/dev/null | sed 's/^/# /'
row_is a $ANY '.anycast == true and .local == ""'
ok $? "$ANY is anycast on a, which is no member"
wait_for 10 answers b
ok $? "a datagram from a to $ANY is answered by b, the nearest ($(ask))"
pings () { in_ns a ping -c 1 -W 1 "$ANY" >/dev/null 2>&1; }
wait_for 10 pings
ok $? "a pings $ANY: the answer comes from the anycast address (b's), through a's source check"

# b killed: c is the nearest (through d); c leaves: no member is reachable
for p in $(ip netns pids "$(ns_of b)"); do kill -KILL "$p" 2>/dev/null; done
tk=$(now_ms)
c_nearest () { [ "$(nearest a $ANY)" = c ]; }
wait_for 30 c_nearest; rc=$?; tmove=$(( $(now_ms) - tk ))
ok $rc "b killed: a's nearest for $ANY is c after $tmove ms ($(row a $ANY))"
ctl a routes --json 2>/dev/null | jq -e '.routes[] | select(.name == "c") | .next_hop_name == "d"' >/dev/null
ok $? "a reaches c through d"
wait_for 10 answers c
ok $? "a datagram from a to $ANY is now answered by c ($(ask)), $(( $(now_ms) - tk )) ms after b was killed"
wait_for 10 pings
ok $? "a pings $ANY again: c answers from it"

# c's router killed: restarted by the supervisor, it joins its groups again
# from <run_dir>/router/groups; a still sees c in both
kept () { grep -v '^$' "$T/c/run/router/groups" 2>/dev/null | tr '\n' ' '; }
[ "$(kept)" = "$ANY 239.7.7.7 " ]
ok $? "c keeps its bifrostctl joins in run/router/groups: $(kept)"
old=$(service_pid c router)
kill -KILL "$old" 2>/dev/null
tk=$(now_ms)
wait_restarted c router "$old"
ok $? "c's router killed (pid $old): restarted ($(service_pid c router))"
again () { row_is c 239.7.7.7 '.local == "ctl"' && row_is c $ANY '.local == "ctl"'; }
wait_for 10 again
ok $? "c's restarted router joined 239.7.7.7 and $ANY again"
# Its first reports ask for the peers' (request flag); d, a neighbour, also
# sends it its whole route table at once, so it reaches a again in about a
# second rather than at d's next dump (route_timeout / 4: 75 s)
c_routes_a () { ctl c routes --json 2>/dev/null | jq -e '.routes[] | select(.name == "a") | .next_hop_name == "d"' >/dev/null; }
wait_for 10 c_routes_a
ok $? "c's restarted router has its route to a through d again, $(( $(now_ms) - tk )) ms after the kill"
# Killed again at once: its request reaches d within 5 s of the dump d sent
# the first one; d sends the next when the 5 s are over instead of dropping it
old=$(service_pid c router)
kill -KILL "$old" 2>/dev/null
tk=$(now_ms)
wait_restarted c router "$old"
wait_for 12 c_routes_a
ok $? "c's router killed again right away: its route to a through d is back $(( $(now_ms) - tk )) ms after the kill (d's dump waits out its 5 s, not dropped)"
wait_for 15 c_member && wait_for 15 c_nearest
ok $? "a still has c in 239.7.7.7 and as nearest for $ANY"

# Leaving: c leaves the anycast address (a has no reachable member left: b is dead)
out=$(ctl c group leave $ANY); rc=$?
[ $rc -eq 0 ] && [ "$out" = "left $ANY" ]
ok $? "c: bifrostctl group leave $ANY -> '$out'"
c_gone () { [ "$(members a $ANY)" != "b,c" ] && ! members a $ANY | grep -q c && [ "$(nearest a $ANY)" != c ]; }
wait_for 10 c_gone
ok $? "a: c is no member of $ANY any more ($(row a $ANY))"

# Refusals, each with its reason, exit 1; unknown arguments exit 2
for bad in 127.0.0.1 0.0.0.0 :: fe80::1 169.254.1.1 255.255.255.255 not-an-address; do
    out=$(ctl a group join "$bad" 2>&1); rc=$?
    [ $rc -eq 1 ] && echo "$out" | grep -q "cannot be a group\|is not an IPv4 or IPv6 address" || break
done
[ $rc -eq 1 ]
ok $? "group join refuses loopback, unspecified, link-local, broadcast and junk (exit 1): $out"
out=$(ctl d group leave ff3e::4242 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "routing.groups of the config joins it"
ok $? "d: group leave of a group of its config is refused: $out"
ctl a group frobnicate >/dev/null 2>&1; [ $? -eq 2 ]
ok $? "group with an unknown action: exit 2"
for n in a c d; do
    if grep -q "seccomp refused" "$T/$n/bifrostd.log" "$T/$n"/run/*.log 2>/dev/null; then
        grep -h "seccomp refused" "$T/$n/bifrostd.log" | head -3 | sed 's/^/# /'; false; break
    fi
done
ok $? "no seccomp refusal in the nodes' logs"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
