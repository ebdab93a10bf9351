#!/bin/bash
# mesh_liar: a malicious peer announcing bogus routes (issue 18, docs/routing.md
# "Bogus routes from a peer"). A registry, five honest nodes and a liar m, each
# a real bifrostd in its own namespace; nftables leaves only these links:
#
#           f                    f joins during the attack
#           |
#     a --- b --- c --- d
#      \    |    /
#       \   e   /                m - a, m - c, m - e: 60 ms one way out of m
#        \  |  /                 (tests/nfq_delay); the others about 0.1 ms
#           m
#
# m is a node of the network like the others (registered, real crypto sessions),
# whose bifrost-router is bifrost-testsvc --liar (its operator installed their
# own program under that name, as the operator of any node can: m's broker lets
# it register as `router`, and crypto carries what it publishes).
# Every second it tells its neighbours, inside their sessions, that it is one hop
# from everyone at the least metric, sends metrics and hop counts the codec
# refuses, forged paths (through the receiver, naming other peers, too long),
# another peer's origin, old sequence numbers, 3,000 made-up destinations for
# each neighbour and a burst above the rate limit (tests/testsvc_liar.c). Asserted: the direct links and
# the honest two-hop routes stay (none through m), each refusal is counted by its
# reason in `bifrostctl routes`, the route counts stay capped and the made-up
# destinations stop at m's neighbours, pings between honest nodes (direct and
# routed) keep working (a <-> d, whose honest path costs more than m's claim, is
# attracted to m and cut: measured, not asserted), f, joining during the attack,
# gets its routes both ways, no honest process restarts, and once m is killed no
# route through it is left. (TAP)
. "$BIFROST_SRCDIR/tests/integration/node_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"

NFQ=$BIFROST_BUILDDIR/tests/nfq_delay
export BIFROST_ADMIN_TOKEN=admin-$ID-secret
REGPID=
PINGS=""
HONEST="a b c d e"
FAKES=3000
declare -A IP=([a]=192.0.2.1 [b]=192.0.2.2 [c]=192.0.2.3 [d]=192.0.2.4 [e]=192.0.2.5 [m]=192.0.2.6 [f]=192.0.2.7)
LINKS=" a-b b-c c-d b-e b-f m-a m-c m-e "

liar_cleanup () {
    local p
    for p in $PINGS; do kill -INT "$p" 2>/dev/null; done
    [ -n "$REGPID" ] && kill -TERM "$REGPID" 2>/dev/null
    if [ "$FAILED" -ne 0 ]; then
        for n in $HONEST f; do echo "# ---- routes on $n"; ctl $n routes 2>&1 | grep -v '^0000000000' | sed 's/^/#   /'; done
    fi
    node_cleanup     # also ends nfq_delay (anything left in the namespaces)
}
trap liar_cleanup EXIT

underlay reg 192.0.2.10
for n in a b c d e m f; do underlay $n "${IP[$n]}"; done
linked () { case "$LINKS" in *" $1-$2 "*|*" $2-$1 "*) return 0 ;; esac; return 1; }
for n in a b c d e m f; do
    in_ns $n nft add table inet cut && in_ns $n nft add chain inet cut in '{ type filter hook input priority 0 ; }' \
        && in_ns $n nft add chain inet cut out '{ type filter hook output priority 0 ; }'
    for o in a b c d e m f; do
        [ "$o" = "$n" ] || linked "$n" "$o" && continue
        in_ns $n nft add rule inet cut in ip saddr "${IP[$o]}" drop
        in_ns $n nft add rule inet cut out ip daddr "${IP[$o]}" drop
    done
done
ok $? "underlay: only the links a-b b-c c-d b-e b-f m-a m-c m-e (and the registry)"
for o in a c e; do in_ns m iptables -A OUTPUT -d "${IP[$o]}" -j NFQUEUE --queue-num 1 --queue-bypass; done
in_ns m "$NFQ" 1:60 > "$T/nfq-m.log" 2>&1 &
wait_for 5 grep -q ready "$T/nfq-m.log"
ok $? "m's packets to a, c and e wait 60 ms"

disc_registry liars
ok $? "registry, network and join token"
for n in $HONEST; do disc_node_cfg "$T/$n" "$n" liars "$RURL"; done
for n in $HONEST; do start_node $n || ok 1 "node $n: every service READY"; done
vip () { in_ns "$1" ip -o -4 addr show dev bifrost0 2>/dev/null | awk '{ sub("/.*", "", $4); print $4 }'; }
declare -A V=()
for n in $HONEST; do wait_for 15 sh -c "ip netns exec $(ns_of $n) ip -o -4 addr show dev bifrost0 | grep -q inet"; V[$n]=$(vip $n); done
ok 0 "five honest nodes up (${V[a]} ${V[b]} ${V[c]} ${V[d]} ${V[e]})"

rj () { ctl "$1" routes --json "${2:-}" 2>/dev/null; }
# route NODE DEST: "next-hop hops tier" of the best route
route () { rj "$1" "$2" | jq -r '.routes[0] // empty | "\(.next_hop_name) \(.hops) \(.path)"'; }
# The honest routes: direct links, two hops through the honest node between, d's three
EXPECT="a>b:b_1_direct b>a:a_1_direct b>c:c_1_direct c>b:b_1_direct c>d:d_1_direct d>c:c_1_direct
        b>e:e_1_direct e>b:b_1_direct a>c:b_2_peer c>a:b_2_peer a>e:b_2_peer e>a:b_2_peer
        c>e:b_2_peer e>c:b_2_peer b>d:c_2_peer d>b:c_2_peer d>a:c_3_peer d>e:c_3_peer"
# honest_routes: every route of EXPECT as expected; prints the ones that are not
honest_routes () {
    local x s t want got bad=""
    for x in $EXPECT; do
        s=${x%%>*}; t=${x#*>}; t=${t%%:*}; want=${x#*:}
        got=$(route "$s" "$t" | tr ' ' _)
        [ "$got" = "$want" ] || bad="$bad $s>$t=${got:-none}"
    done
    echo "$bad"
    [ -z "$bad" ]
}
wait_for 40 honest_routes >/dev/null
bad=$(honest_routes)
ok $? "before m: the honest routes (8 direct links, 8 routes of 2 hops, d's 2 of 3)${bad:+, not:$bad}"
wait_for 15 ping_ok a "${V[d]}"
ok $? "ping a -> d (3 hops)"
# pids NODE: every instance and its pid, one line
pids () { ctl "$1" status 2>/dev/null | awk '$1 ~ /^[a-z]+\.[0-9]+$/ { printf "%s=%s ", $1, $2 }'; }
declare -A PIDS0=()
for n in $HONEST; do PIDS0[$n]=$(pids $n); done

# --- The liar ---------------------------------------------------------------------
# m's operator installs a router of their own: m's programs are the build's,
# but bifrost-router is bifrost-testsvc (a copy under that name, so m's broker
# lets it register as `router`: the program of that name in its libexec)
mkdir -p "$T/m/libexec"
for f in "$LIBEXEC"/*; do ln -s "$(readlink -f "$f")" "$T/m/libexec/${f##*/}"; done
rm -f "$T/m/libexec/bifrost-router" && cp "$BIFROST_BUILDDIR/tests/bifrost-testsvc" "$T/m/libexec/bifrost-router"
disc_node_cfg "$T/m" m liars "$RURL"
sed -i "s|exec = \"bifrost-router\"; *depends|exec = \"bifrost-router\"; args = [\"--liar\", \"$FAKES\"]; depends|" "$T/m/node.cfg"
grep -q -- '"--liar"' "$T/m/node.cfg"
ok $? "m's router is bifrost-testsvc --liar $FAKES, installed as m's bifrost-router"
# Pings during the attack, 5 a second for 60 s: direct, two hops, and a -> d,
# whose 3 honest hops (303) cost more than m's claim (60 + 100 + 101 = 261)
ping_bg () { ip netns exec "$(ns_of "$1")" ping -i 0.2 -w 60 -W 1 -q "${V[$2]}" > "$T/ping-$1-$2" 2>&1 & PINGS="$PINGS $!"; }
PAIRS="a-b c-d e-b a-c e-c b-d d-b d-a a-d"
for p in $PAIRS; do ping_bg "${p%-*}" "${p#*-}"; done
t0=$(now_ms)
LIBEXEC=$T/m/libexec start_node m
ok $? "node m: every service READY (its router is the liar)"
! grep -q "refused router\|only router may" "$T/m/bifrostd.log"
ok $? "the broker of m lets the liar register as router and publish route.announce"
wait_for 30 grep -q "liar: round 5:" "$T/m/bifrostd.log"
ok $? "the liar lies: $(grep -o 'liar: round 5: .*' "$T/m/bifrostd.log" | head -1)"
sleep 3

# counter NODE NAME: a refusal counter of `bifrostctl routes`
counter () { rj "$1" | jq -r --arg n "$2" '[.refused[] | select(.name == $n) | .value] | add // 0'; }
REASONS="bad metric|bad hop count|through us|too long|capped|rate limited|stale|impostor"
for n in a c e; do
    bad=""
    IFS='|'; for r in $REASONS; do [ "$(counter $n "$r")" -gt 0 ] || bad="$bad [$r]"; done; unset IFS
    ok $([ -z "$bad" ]; echo $?) "$n refuses and counts: $(rj $n | jq -r '[.refused[] | "\(.name) \(.value)"] | join(", ")')${bad:+; missing:$bad}"
done
bad=$(honest_routes)
ok $? "during the attack: every direct link and honest route of 2 hops stays, none through m${bad:+, not:$bad}"
echo "# a -> d during the attack: $(route a d) (m claims one hop; the honest way is 3)"
# forged NODE NEIGHBOUR...: no route of NODE names m then one of its neighbours
# (m's paths to made-up destinations naming them: they never offered those)
forged () { local n=$1; shift; rj "$n" | jq -e --args '[.routes[] | select(.via[0] == "m" and (.via[1] as $x | $ARGS.positional | index($x)))] | length == 0' "$@" >/dev/null; }
forged a b && forged c b d && forged e b
ok $? "a, c, e: no route whose path names m and then one of their honest neighbours"
# Memory and route counts: capped (1,024 per neighbour); the made-up
# destinations stop at m's neighbours (they carry only for peers discovery names)
rss () { local p; p=$(ctl "$1" status 2>/dev/null | awk '$1 == "router.1" { print $2 }'); awk '/VmRSS/ { print $2 }' "/proc/$p/status" 2>/dev/null; }
total () { rj "$1" | jq -r .total; }
echo "# routes and router memory (VmRSS, kB) during the attack: $(for n in $HONEST; do printf '%s %s routes %s unindexed %s kB; ' $n "$(total $n)" "$(rj $n | jq .unindexed)" "$(rss $n)"; done)"
ok $([ "$(total a)" -le 1040 ] && [ "$(total c)" -le 1040 ] && [ "$(total e)" -le 1040 ] && [ "$(total a)" -gt 1000 ]; echo $?) \
    "m's neighbours hold at most 1,024 of its $FAKES made-up destinations: a $(total a), c $(total c), e $(total e) routes; capped a $(counter a capped)"
ok $([ "$(total b)" -le 6 ] && [ "$(total d)" -le 6 ]; echo $?) "b and d learn none of them: b $(total b), d $(total d) routes"
ok $([ "$(rss a)" -lt 32768 ] && [ "$(rss c)" -lt 32768 ] && [ "$(rss e)" -lt 32768 ]; echo $?) \
    "the routers of m's neighbours stay small: a $(rss a) kB, c $(rss c) kB, e $(rss e) kB (b $(rss b) kB)"

# --- f joins during the attack: a neighbour of b only ------------------------------
# b hears a different set of made-up destinations from each of a, c and e: were
# they passed on, b's list would fill a's, c's and e's caps before f
disc_node_cfg "$T/f" f liars "$RURL"
start_node f
ok $? "node f (b's neighbour only) joins during the attack"
wait_for 15 sh -c "ip netns exec $(ns_of f) ip -o -4 addr show dev bifrost0 | grep -q inet"; V[f]=$(vip f)
f_routes () { [ "$(route a f)" = "b 2 peer" ] && [ "$(route c f)" = "b 2 peer" ] && [ "$(route e f)" = "b 2 peer" ] \
                && [ "$(route d f)" = "c 3 peer" ] && [ "$(route f d)" = "b 3 peer" ]; }
t1=$(now_ms)
wait_for 30 f_routes
ok $? "a, c, e reach f through b, d through c and b, and f d, $(( $(now_ms) - t1 )) ms after f was up (a: $(route a f); f $(total f) routes)"
wait_for 15 ping_ok f "${V[a]}" && ping_ok c "${V[f]}" && ping_ok f "${V[d]}" && ping_ok e "${V[f]}"
ok $? "ping f -> a, c -> f, f -> d, e -> f"

# --- Honest processes: none restarted -----------------------------------------------
for p in $PINGS; do wait "$p"; done; PINGS=""
loss () { awk '/transmitted/ { printf "%d/%d", $1 - $4, $1 }' "$T/ping-$1"; }
lost () { awk '/transmitted/ { print $1 - $4 }' "$T/ping-$1"; }
SUMMARY=""; bad=""
for p in $PAIRS; do
    SUMMARY="$SUMMARY $p $(loss $p);"
    case $p in a-d|d-a) ;; *) [ "$(lost $p)" -le 3 ] || bad="$bad $p" ;; esac
done
echo "# pings lost during the attack (60 s, 5 a second):$SUMMARY"
ok $([ -z "$bad" ]; echo $?) "pings between honest nodes (direct and through b or c) keep working: at most 3 of 300 lost${bad:+; not:$bad}"
bad=""
for n in $HONEST; do [ "$(pids $n)" = "${PIDS0[$n]}" ] || bad="$bad $n"; done
ok $([ -z "$bad" ]; echo $?) "no honest service restarted (every pid unchanged)${bad:+; changed:$bad}"

# --- The liar killed ----------------------------------------------------------------
for p in $(ip netns pids "$(ns_of m)"); do kill -KILL "$p" 2>/dev/null; done
tk=$(now_ms)
no_m () { local n; for n in $HONEST f; do rj $n | jq -e '[.routes[] | select(.via | index("m"))] | length == 0' >/dev/null || return 1; done; }
wait_for 30 no_m
ok $? "m killed: no route through or to m on any honest node after $(( $(now_ms) - tk )) ms"
ok $([ "$(total a)" -le 5 ] && [ "$(total c)" -le 5 ] && [ "$(total e)" -le 5 ]; echo $?) \
    "its made-up destinations are gone: a $(total a), c $(total c), e $(total e) routes"
wait_for 20 honest_routes >/dev/null
bad=$(honest_routes)
ok $? "the honest routes as before${bad:+, not:$bad}"
wait_for 15 ping_ok a "${V[d]}"
ok $? "ping a -> d again (through b and c: $(route a d))"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
