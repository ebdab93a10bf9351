#!/bin/bash
# ipv6_direct: a pair that IPv4 cannot punch goes direct over IPv6 (issue 15:
# "IPv4 and IPv6"). The usual dual-stack home: IPv4 behind a NAT, a global IPv6
# address (2001:db8::/32, documentation) behind the router's stateful firewall,
# which lets in only what answers a flow from inside (address-and-port-dependent
# filtering, RFC 6092) and translates nothing. On the NAT grid (natgrid_lib.sh)
# two nodes behind symmetric NATs (random ports: relay_grid.sh shows that pair
# stays on the relay over IPv4) get IPv6 on their LANs and routers; registry and
# relay speak IPv4 only. Asserted: each node registers its IPv6 address, the pair
# is up through the relay, and then goes direct on the peer's IPv6 address (both
# sides probe the registered candidates, so the two firewalls open for each other:
# a simultaneous open, as over IPv4 NATs); pings cross both ways; netcheck says
# IPv6 yes. A third node whose nat listens on 0.0.0.0 (IPv4 only) registers no
# IPv6 address. Then IPv6 between the routers is cut (nftables): the pair is back on
# the relay and pings still cross. (TAP)
. "$BIFROST_SRCDIR/tests/integration/tap_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/natgrid_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/mesh_lib.sh"
set -u
WAIT_STEP=0.2           # every poll is a bifrostctl
T=$(mktemp -d /tmp/ipv6-direct-XXXXXX)
chmod 755 "$T"

finish () { mesh_end 20 "${IPV6_KEEP:-}"; }
trap finish EXIT

grid_init
grid_public_host reg 203.0.113.10
grid_public_host relay 203.0.113.11
grid_nodes symmetric:a symmetric:b symmetric:c
ok $? "grid: registry, relay, three nodes behind symmetric NATs"

# v6_on NS IFACE...: IPv6 on in a namespace the grid made with it off
v6_on () {
    local ns=$1; shift
    ip netns exec "$ns" sh -c 'for i in all default "$@"; do echo 0 > /proc/sys/net/ipv6/conf/$i/disable_ipv6 || exit 1; done' v6 "$@"
}
# v6_site NAME N: NAME's LAN 2001:db8:N::/64 (node ::2, router ::1), the router's
# WAN 2001:db8::N on the public segment, its firewall stateful (nothing new comes in)
v6_site () {
    local name=$1 n=$2 node router port
    node=$(grid_ns "$name"); router=$(grid_router "$name"); port=r${GRID_NODE_NUM[$name]}
    v6_on "$GRID_PUB" br0 "$port" && v6_on "$router" lan wan && v6_on "$node" eth0 &&
    ip netns exec "$router" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/forwarding' &&
    ip -n "$router" -b - <<IP &&
addr add 2001:db8:$n::1/64 dev lan nodad
addr add 2001:db8::$n/64 dev wan nodad
IP
    ip -n "$node" -b - <<IP &&
addr add 2001:db8:$n::2/64 dev eth0 nodad
route add default via 2001:db8:$n::1
IP
    ip netns exec "$router" nft -f - <<NFT
table ip6 fw6 {
    chain forward6 {
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        iifname "lan" oifname "wan" accept
        icmpv6 type packet-too-big accept
        counter drop
    }
}
NFT
}
v6_site a 1 && v6_site b 2 && v6_site c 3 &&
    ip -n "$(grid_router a)" -6 route add 2001:db8:2::/64 via 2001:db8::2 &&
    ip -n "$(grid_router b)" -6 route add 2001:db8:1::/64 via 2001:db8::1
ok $? "IPv6 on three sites: 2001:db8:1::2, 2001:db8:2::2 and 2001:db8:3::2 behind stateful firewalls"
grid_exec a ping -6 -c 1 -W 2 -q 2001:db8:2::2 >/dev/null 2>&1
[ $? != 0 ]
ok $? "the firewall holds: a cannot ping b's IPv6 address unasked"

mesh_relay relay 203.0.113.11 relay-1 1
mesh_registry reg 203.0.113.10 relay-1@203.0.113.11:3479
# nat dual-stack (the default "*:51820"; the grid's nodes listen on IPv4 only)
for n in a b; do DISC_LISTEN="*:51820" mesh_start_node "$n"; done
# c's nat listens on 0.0.0.0 (IPv4 only): its IPv6 address must not be offered
mesh_start_node c
wait_for 30 all_have_vip a b c
ok $? "the three nodes registered and got a virtual address"
VIP[a]=$(vip a); VIP[b]=$(vip b)

# The candidates the registry hands the peer (bifrostctl peers NAME)
registered_v6 () { "$CTL" -r "$T/$1/run" peers "$2" 2>/dev/null | grep -q "\[2001:db8:$3::2\]"; }
wait_for 10 registered_v6 a b 2 && wait_for 10 registered_v6 b a 1
ok $? "each node has the other's IPv6 address among its candidates"
"$CTL" -r "$T/a/run" peers b 2>&1 | sed 's/^/# a: /' | head -20
knows_c () { "$CTL" -r "$T/a/run" peers c 2>/dev/null | grep -q "10\.3\.0\.2:51820"; }
wait_for 10 knows_c && ! "$CTL" -r "$T/a/run" peers c 2>/dev/null | grep -q "2001:db8:3::"
ok $? "c, whose nat listens on IPv4 only, registered no IPv6 address"

endpoint () { peers_json "$1" | jq -r --arg b "$2" '.peers[] | select(.name == $b) | .endpoint'; }
direct_v6 () { [ "$(peer_path "$1" "$2")" = direct ] && [[ "$(endpoint "$1" "$2")" == "[2001:db8:$3::2]:"* ]]; }
t0=$(now_ms)
wait_for 20 direct_v6 a b 2 && wait_for 5 direct_v6 b a 1
rc=$?
ok $rc "the pair is direct over IPv6 (a -> $(endpoint a b), b -> $(endpoint b a)) after $(( $(now_ms) - t0 )) ms"
wait_for 10 pair_pings a b
ok $? "pings cross both ways"
[ "$("$CTL" -r "$T/a/run" netcheck --json 2>/dev/null | jq -r .ipv6.global_address)" = true ]
ok $? "netcheck: a global IPv6 address ($("$CTL" -r "$T/a/run" netcheck --json 2>/dev/null | jq -c .ipv6 2>/dev/null))"

# IPv6 dies between the sites: back on the relay, over IPv4
ip netns exec "$(grid_router a)" nft insert rule ip6 fw6 forward6 counter drop
via_relay () { [ "$(peer_path a b)" = "relay relay-1" ]; }
t1=$(now_ms)
wait_for 10 via_relay
ok $? "IPv6 cut: a is back on the relay after $(( $(now_ms) - t1 )) ms (path '$(peer_path a b)')"
wait_for 10 pair_pings a b
ok $? "pings cross both ways through the relay"
echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
