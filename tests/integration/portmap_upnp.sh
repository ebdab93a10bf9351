#!/bin/bash
# libportmap against a real miniupnpd (nftables backend, UPnP-IGD and NAT-PMP) on a
# NAT router in network namespaces (TAP; docs/portmap.md):
#
#   public host 203.0.113.10 ---- wan 203.0.113.101 [router: nft NAT + miniupnpd] lan 10.1.0.1 ---- node 10.1.0.2
#
# A datagram from the public host to 203.0.113.101:PORT must not reach the node's
# socket before the mapping, must once the node's portmap_probe has a mapping (once
# through UPnP, once through NAT-PMP, once through "any" with NAT-PMP switched off),
# and must not after the mapping is destroyed. With miniupnpd stopped, "no gateway"
# comes within the bound.
#
# miniupnpd refuses to map on a "reserved" WAN address (203.0.113.0/24 is one, like
# every documentation range) unless STUN says the address is public and unfiltered:
# the public host runs portmap_probe's STUN responder and miniupnpd asks it
# (ext_perform_stun), which is what makes the documentation range usable here.
set -u
. "$BIFROST_SRCDIR/tests/integration/tap_lib.sh"
PROBE=$BIFROST_BUILDDIR/tests/portmap_probe
MINIUPNPD=${MINIUPNPD:-/usr/sbin/miniupnpd}
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root (network namespaces)"; exit 0; }
[ -x "$MINIUPNPD" ] || { echo "1..0 # SKIP no $MINIUPNPD (apt-get install miniupnpd-nftables)"; exit 0; }
command -v nft >/dev/null || { echo "1..0 # SKIP needs nft"; exit 0; }
[ -x "$PROBE" ] || { echo "Bail out! $PROBE is not built (make tests/portmap_probe)"; exit 1; }

TAG=hp$$x$(printf %02x $((RANDOM % 256)))
PUB=$TAG-pub; RT=$TAG-rt; NODE=$TAG-node
PUB_IP=203.0.113.10; WAN_IP=203.0.113.101; LAN_GW=10.1.0.1; NODE_IP=10.1.0.2
PORT=40000
T=$(mktemp -d /tmp/portmap-test-XXXXXX)
chmod 755 "$T"      # the services pass it under their own uids (docs/supervisor.md)
PIDS=""
cleanup () {
    local p i
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    for p in $PIDS; do
        for i in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$p" 2>/dev/null
    done
    for ns in $PUB $RT $NODE; do
        # whatever still runs in a namespace of this run was started by this run
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    seccomp_check "$T"
    [ -n "${KEEP_T:-}" ] && cp -r "$T" /tmp/hp-keep; rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# spawn NS LOG CMD...: in the background, pid in SPAWNED (killed by cleanup)
spawn () {
    local ns=$1 log=$2; shift 2
    ip netns exec "$ns" "$@" >"$log" 2>&1 &
    SPAWNED=$!
    PIDS="$PIDS $SPAWNED"
}
# stop PID: SIGTERM, SIGKILL after 2 s
stop () {
    kill -TERM "$1" 2>/dev/null || return 0
    local i
    for i in $(seq 1 40); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
    kill -KILL "$1" 2>/dev/null
}
# send TEXT: one datagram from the public host to the router's WAN address:PORT
send () { ip netns exec "$PUB" bash -c "echo $1 >/dev/udp/$WAN_IP/$PORT" 2>/dev/null; }
has () { grep -q -- "$2" "$1"; }
# absent MS FILE PATTERN: PATTERN does not show up in FILE for MS milliseconds (a
# datagram that would arrive arrives within a few ms on these veths)
absent () {
    local end=$(( $(now_ms) + $1 ))
    while [ "$(now_ms)" -lt "$end" ]; do has "$2" "$3" && return 1; sleep 0.05; done
    ! has "$2" "$3"
}
T0=$(now_ms)

# --- the three namespaces
for ns in $PUB $RT $NODE; do ip netns add "$ns" || { echo "Bail out! ip netns add $ns"; exit 1; }; done
ip -b - <<IP || { echo "Bail out! topology"; exit 1; }
link add wan netns $RT type veth peer name eth0 netns $PUB
link add lan netns $RT type veth peer name eth0 netns $NODE
IP
ip -n "$PUB" -b - <<IP
link set lo up
addr add $PUB_IP/24 dev eth0
link set eth0 up
IP
ip -n "$RT" -b - <<IP
link set lo up
addr add $WAN_IP/24 dev wan
addr add $LAN_GW/24 dev lan
link set wan up
link set lan up
IP
ip -n "$NODE" -b - <<IP
link set lo up
addr add $NODE_IP/24 dev eth0
link set eth0 up
route add default via $LAN_GW
IP
for ns in $PUB $RT $NODE; do
    ip netns exec "$ns" sh -c 'for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/default/disable_ipv6; do
        [ -w $f ] && echo 1 > $f; done; true'
done
ip netns exec "$RT" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'

# The router: a port-restricted NAT (masquerade; from the WAN only established flows)
# whose forward and nat chains jump to the chains miniupnpd fills. miniupnpd's
# nftables backend uses table "inet filter" for all of them by default
# (upnp_table_name, upnp_nat_table_name) and the chains miniupnpd,
# prerouting_miniupnpd and postrouting_miniupnpd; it creates none of them.
ip netns exec "$RT" nft -f - <<'NFT' || { echo "Bail out! router rules"; exit 1; }
table inet filter {
    chain forward {
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        iifname "lan" oifname "wan" accept
        jump miniupnpd
        counter drop
    }
    chain miniupnpd {
    }
    chain input {
        type filter hook input priority 0; policy drop;
        iifname { "lo", "lan" } accept
        ct state established,related accept
        icmp type echo-request accept
        iifname "wan" udp dport 40000 accept    # the router's own service (conflict test)
        counter drop
    }
    chain prerouting {
        type nat hook prerouting priority -100; policy accept;
        jump prerouting_miniupnpd
    }
    chain postrouting {
        type nat hook postrouting priority 100; policy accept;
        jump postrouting_miniupnpd
        oifname "wan" masquerade
    }
    chain prerouting_miniupnpd {
    }
    chain postrouting_miniupnpd {
    }
}
NFT
echo "# namespaces $PUB $RT $NODE up in $(( $(now_ms) - T0 )) ms"

# miniupnpd's config, in the test's temp dir
miniupnpd_conf () {   # miniupnpd_conf NATPMP(yes|no) > file
    cat <<CONF
ext_ifname=wan
listening_ip=lan
http_port=5555
enable_upnp=yes
enable_natpmp=$1
secure_mode=yes
system_uptime=no
ext_perform_stun=yes
ext_stun_host=$PUB_IP
ext_stun_port=3478
min_lifetime=120
max_lifetime=86400
uuid=fc4ec57e-b051-11db-88f8-0060085db3f6
allow 1024-65535 10.1.0.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
CONF
}
start_miniupnpd () {   # start_miniupnpd NATPMP: MINIUPNPD_PID, waits until it listens
    miniupnpd_conf "$1" >"$T/miniupnpd.conf"
    spawn "$RT" "$T/miniupnpd.$1.log" "$MINIUPNPD" -d -f "$T/miniupnpd.conf" -P "$T/miniupnpd.pid"
    MINIUPNPD_PID=$SPAWNED
    listening () { ip netns exec "$RT" ss -ltn | grep -q ":5555 "; }
    wait_for 10 listening
}

spawn "$PUB" "$T/stun.log" "$PROBE" stun --lifetime 60 3478
wait_for 5 has "$T/stun.log" '^READY'
ok $? "STUN responder on the public host"

start_miniupnpd yes
ok $? "miniupnpd listens on the router's LAN (UPnP :5555, NAT-PMP :5351)"
wait_for 5 has "$T/miniupnpd.yes.log" "STUN: ext interface wan .* is now behind unrestricted full-cone NAT 1:1"
ok $? "miniupnpd took $WAN_IP as public after STUN (it refuses a documentation range otherwise)"

# map_once PROTO: a probe on the node; datagram before, mapping, datagram after,
# destroy, datagram after the delete
map_once () {   # map_once PROTO [EXPECTED_PROTO]
    local proto=$1 want=${2:-$1} log=$T/probe.$1.log pid
    spawn "$NODE" "$log" "$PROBE" map --proto "$proto" --lifetime 600 $PORT
    pid=$SPAWNED
    wait_for 5 has "$log" "^BOUND $PORT"
    send "before-$proto"
    absent 500 "$log" "RECV .* before-$proto"
    ok $? "$proto: no datagram reaches the node before the mapping"
    kill -USR1 "$pid"
    wait_for 10 has "$log" '^\(MAPPED\|FAILED\)'
    local line
    line=$(grep -m1 '^\(MAPPED\|FAILED\)' "$log")
    echo "# $proto: $line"
    echo "$line" | grep -q "^MAPPED $want $WAN_IP:[0-9]* lifetime"
    ok $? "$proto: mapped on $WAN_IP ($line)"
    MAP_MS=$(echo "$line" | sed -n 's/.* took \([0-9]*\).*/\1/p')
    local ext
    ext=$(echo "$line" | sed -n 's/^MAPPED [a-z]* [0-9.]*:\([0-9]*\) .*/\1/p')
    [ -n "$ext" ] || ext=0
    local chain
    chain=$(ip netns exec "$RT" nft list chain inet filter prerouting_miniupnpd)
    echo "$chain" | grep -q "dport $ext dnat ip to $NODE_IP:$PORT"
    local rc=$?
    ok $rc "$proto: the router's prerouting_miniupnpd has the dnat $ext -> $NODE_IP:$PORT"
    [ $rc = 0 ] || echo "$chain" | sed 's/^/# /'

    PORT_SAVE=$PORT; PORT=$ext
    send "after-$proto"
    wait_for 3 has "$log" "RECV $PUB_IP:[0-9]* after-$proto"
    ok $? "$proto: a datagram from the public host to $WAN_IP:$ext reaches the node's socket"
    # A renewal (what happens at half the lease) keeps the same entry
    kill -HUP "$pid"
    wait_for 5 has "$log" "^RENEWED $want $WAN_IP:$ext "
    ok $? "$proto: renewed on the same port ($(grep -m1 '^RENEWED' "$log"))"
    RENEW_MS=$(grep -m1 '^RENEWED' "$log" | sed -n 's/.* took \([0-9]*\).*/\1/p')
    send "renewed-$proto"
    wait_for 3 has "$log" "RECV $PUB_IP:[0-9]* renewed-$proto"
    ok $? "$proto: a datagram still reaches the node after the renewal"
    kill -USR2 "$pid"
    wait_for 5 has "$log" '^DELETED'
    ok $? "$proto: destroyed ($(grep -m1 '^DELETED' "$log"))"
    ! ip netns exec "$RT" nft list chain inet filter prerouting_miniupnpd | grep -q "dport $ext "
    ok $? "$proto: the router's dnat rule is gone"
    send "deleted-$proto"
    absent 500 "$log" "RECV .* deleted-$proto"
    ok $? "$proto: no datagram reaches the node after the delete"
    PORT=$PORT_SAVE
    stop "$pid"
}

map_once upnp;   UPNP_MS=$MAP_MS;   UPNP_RENEW_MS=$RENEW_MS
map_once natpmp; NATPMP_MS=$MAP_MS; NATPMP_RENEW_MS=$RENEW_MS

# conflict_once PROTO: the router itself uses UDP 40000 (a socket on its WAN side);
# the node asks for external 40000 and must get another port that reaches it,
# while 40000 still reaches the router's socket
conflict_once () {
    local proto=$1 r=$T/conflict.$1.router n=$T/conflict.$1.node pr pn line ext
    spawn "$RT" "$r" "$PROBE" map 40000; pr=$SPAWNED
    wait_for 5 has "$r" "^BOUND 40000"
    spawn "$NODE" "$n" "$PROBE" map --proto "$proto" --lifetime 600 --now 40000; pn=$SPAWNED
    wait_for 10 has "$n" '^\(MAPPED\|FAILED\)'
    line=$(grep -m1 '^\(MAPPED\|FAILED\)' "$n")
    ext=$(echo "$line" | sed -n "s/^MAPPED $proto $WAN_IP:\([0-9]*\) .*/\1/p")
    [ -n "$ext" ] && [ "$ext" != 40000 ]
    ok $? "$proto conflict: 40000 is the router's own, the node got another port ($line)"
    [ -n "$ext" ] || ext=1
    ip netns exec "$PUB" bash -c "echo to-node-$proto >/dev/udp/$WAN_IP/$ext; echo to-router-$proto >/dev/udp/$WAN_IP/40000" 2>/dev/null
    wait_for 3 has "$n" "RECV .* to-node-$proto" && wait_for 3 has "$r" "RECV .* to-router-$proto" \
        && ! has "$n" "to-router-$proto"
    ok $? "$proto conflict: $WAN_IP:$ext reaches the node, $WAN_IP:40000 still the router"
    stop "$pn"; stop "$pr"
    ! ip netns exec "$RT" nft list chain inet filter prerouting_miniupnpd | grep -q "dnat"
    ok $? "$proto conflict: SIGTERM deleted the mapping"
}
conflict_once upnp
conflict_once natpmp
echo "# time to a mapping: UPnP $UPNP_MS ms (SSDP discovery + description + 3 SOAP calls), NAT-PMP $NATPMP_MS ms (2 round trips)"
echo "# time to a renewal: UPnP $UPNP_RENEW_MS ms (3 SOAP calls, the gateway known), NAT-PMP $NATPMP_RENEW_MS ms"

# NAT-PMP off at the gateway: "any" tries NAT-PMP (port unreachable), then UPnP
stop "$MINIUPNPD_PID"
start_miniupnpd no
ok $? "miniupnpd again, NAT-PMP off"
wait_for 5 has "$T/miniupnpd.no.log" "STUN: ext interface wan .* is now behind unrestricted"
map_once any upnp
echo "# any (NAT-PMP refused, then UPnP): $MAP_MS ms"

# No gateway: miniupnpd stopped; NAT-PMP gets "port unreachable" at once, UPnP's
# SSDP search waits 1 s (miniupnpc's minimum)
stop "$MINIUPNPD_PID"
for proto in natpmp upnp any; do
    log=$T/none.$proto.log
    spawn "$NODE" "$log" "$PROBE" map --proto $proto --now --exit $PORT
    wait_for 5 has "$log" '^\(MAPPED\|FAILED\)'
    line=$(grep -m1 '^\(MAPPED\|FAILED\)' "$log")
    ms=$(echo "$line" | sed -n 's/.* took \([0-9]*\)$/\1/p')
    # the point is the answer ('no gateway' from the port unreachable, not at
    # the end of a retry schedule); the bounds are 3 times the 500 ms and 1.5 s
    # once asserted, which a loaded machine could exceed
    case $proto in natpmp) bound=1500 ;; *) bound=4500 ;; esac
    echo "$line" | grep -q '^FAILED no gateway: ' && [ -n "$ms" ] && [ "$ms" -lt $bound ]
    ok $? "no miniupnpd, $proto: 'no gateway' in $ms ms (bound $bound ms; $line)"
done

echo "# total $(( $(now_ms) - T0 )) ms"
echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
