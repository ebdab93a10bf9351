#!/bin/bash
# routed_line: mesh routing end to end with the real router (issue 18): a registry
# and three nodes that know only the registry, in network namespaces; nftables
# drops everything between a and c on the underlay. The routers learn each
# other through announcements carried in the crypto sessions, a's router sends
# its data path a route to c through b (route.next), and a's packets to c cross b
# in a routing header, end-to-end encrypted between a and c. (TAP)
. "$BIFROST_SRCDIR/tests/integration/node_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"

REGISTRY=$BIFROST_BUILDDIR/services/registry/bifrost-registry
export BIFROST_ADMIN_TOKEN=admin-$ID-secret
RURL=http://192.0.2.10:7080
API=$RURL/api/v1/mesh/networks
REGPID=
reg_cleanup () {
    [ -n "$REGPID" ] && kill -TERM "$REGPID" 2>/dev/null && wait_for 5 sh -c "! kill -0 $REGPID"
    if [ "$FAILED" -ne 0 ]; then
        echo "# ---- registry log (last 20 lines)"
        tail -20 "$T/reg/registry.log" 2>/dev/null | sed 's/^/#   /'
    fi
    node_cleanup
}
trap reg_cleanup EXIT

underlay reg 192.0.2.10
underlay a 192.0.2.1
underlay b 192.0.2.2
underlay c 192.0.2.3
mkdir -p "$T/reg"
cat > "$T/reg/registry.cfg" <<CFG
registry = { listen = "192.0.2.10:7080"; database = "$T/reg/registry.db";
             admin_token = "\${BIFROST_ADMIN_TOKEN}"; rate_limit = 0; };
CFG
ip netns exec "$(ns_of reg)" "$REGISTRY" -c "$T/reg/registry.cfg" -r "$T/reg/run" >>"$T/reg/registry.log" 2>&1 &
REGPID=$!
wait_for 10 in_ns reg curl -s -o /dev/null "$RURL/client/meta"
ok $? "registry answers on 192.0.2.10:7080"
admin () { in_ns reg curl -s -X "$1" -H "Authorization: Bearer $BIFROST_ADMIN_TOKEN" ${3:+--data-binary "$3"} "$API$2"; }
admin POST "" '{"id":"line","name":"line","cidr":"10.100.0.0/24","settings":{"heartbeat_interval":1,"offline_after":3,"expire_after":120}}' \
    | jq -e '.id == "line"' >/dev/null
ok $? "network line created"
export BIFROST_JOIN_TOKEN
BIFROST_JOIN_TOKEN=$(admin POST /line/tokens '{"ttl":600,"reusable":true}' | jq -r .token)
case "$BIFROST_JOIN_TOKEN" in bjt_*) ok 0 "join token created" ;; *) ok 1 "join token created" ;; esac

# a and c cannot reach each other on the underlay (the registry they both can)
for pair in "a 192.0.2.3" "c 192.0.2.1"; do
    set -- $pair
    in_ns "$1" nft -f - <<NFT
table inet bfroute {
    chain in { type filter hook input priority 0; ip saddr $2 drop; }
    chain out { type filter hook output priority 0; ip daddr $2 drop; }
}
NFT
done
in_ns a nft list table inet bfroute >/dev/null 2>&1 && in_ns c nft list table inet bfroute >/dev/null 2>&1
ok $? "nftables drops every datagram between a and c"

vip () { in_ns "$1" ip -o -4 addr show dev bifrost0 2>/dev/null | awk '{ sub("/.*", "", $4); print $4 }'; }
has_vip () { [ -n "$(vip "$1")" ]; }
for n in a b c; do disc_node_cfg "$T/$n" "$n" line "$RURL"; done
for n in a b c; do start_node $n; ok $? "node $n: every service READY"; done
for n in a b c; do wait_for 15 has_vip $n; done
VA=$(vip a); VB=$(vip b); VC=$(vip c)
[ -n "$VA" ] && [ -n "$VB" ] && [ -n "$VC" ]
ok $? "virtual addresses from the registry: a $VA, b $VB, c $VC"
wait_for 15 ping_ok a "$VB" && wait_for 15 ping_ok c "$VB"
ok $? "a -> b and c -> b direct"
t0=$(now_ms)
wait_for 30 ping_ok a "$VC"
ok $? "ping a -> c through b, $(( $(now_ms) - t0 )) ms after b was reached"
ping_ok c "$VA"
ok $? "ping c -> a"
pj () { ctl "$1" peers --json 2>/dev/null | jq -r "$2"; }
ctl a routes --json 2>/dev/null | jq -e '.routes[] | select(.name == "c") | .next_hop_name == "b" and .hops == 2' >/dev/null
ok $? "a's routes: c through b, 2 hops"
ctl a routes 2>/dev/null | sed 's/^/# /'
[ "$(pj a '.peers[] | select(.name == "c") | .routed_via')" = b ]
ok $? "a's nat sends c's datagrams through b ($(pj a '.nat.routed_sent') sent in a routing header)"
in_ns a ping -c 10 -i 0.05 -W 1 -q "$VC" > "$T/ping" 2>&1
grep -q " 0% packet loss" "$T/ping" && [ "$(pj b '.nat.transit_forwarded')" -ge 20 ]
ok $? "10 pings a -> c, none lost: $(awk -F/ '/^rtt/ { print $5 }' "$T/ping") ms; b forwarded $(pj b '.nat.transit_forwarded')"
[ "$(pj c '.peers[] | select(.name == "a") | .session')" = true ] && [ "$(pj c '.peers[] | select(.name == "a") | .state')" != up ]
ok $? "c: its session peer is a, whom its nat never reached directly"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
