#!/bin/bash
# demo.sh: Bifrost across NATs, on this machine. An emulated internet (203.0.113.0/24,
# a documentation range, on a bridge in a network namespace) carries a registry, two
# relays (a node learns its NAT's mapping from what each sees) and coturn (STUN and TURN, with the registry's time-limited credentials);
# three nodes sit behind home routers of different kinds, each router an
# nftables NAT in a namespace of its own (tests/integration/natgrid_lib.sh,
# docs/testing-nat.md):
#
#   alice  behind a full-cone NAT
#   bob    behind a port-restricted NAT (most home routers)
#   carol  behind a symmetric NAT (a new public port for every destination)
#
# Each node knows only the registry's URL and a join token. They register, meet
# through the relay at once, then punch direct paths where their NATs allow it
# (alice-bob, alice-carol). bob-carol, a symmetric NAT against a port-restricted
# one, cannot be punched: bob says why while they are relayed, then birthday
# probing (carol opens 256 ports toward bob, bob guesses 256 of carol's ports a
# round) takes them direct too. `bifrostctl peers` shows each path and, for a
# relayed peer, why in plain words; `bifrostctl netcheck` what a node learnt of
# its NAT. (coturn is the last path: ICE through TURN when no relay
# answers; tests/integration/ice_turn.sh shows it.)
#
#   examples/demo.sh            start, show, then keep running until Ctrl-C
#   examples/demo.sh --once     start, show, check, stop (used by the test suite)
#
# Needs root and a built tree (BIFROST_BUILDDIR, default ./build/release; the
# scripts/demo.sh wrapper builds it). Everything it creates is removed when it ends.
set -u
ONCE=0; [ "${1:-}" = "--once" ] && ONCE=1
here=$(cd "$(dirname "$0")/.." && pwd)
B=${BIFROST_BUILDDIR:-}
if [ -z "$B" ]; then
    for d in "$here/build/release" "$here"; do [ -x "$d/supervisor/bifrostd" ] && B=$d && break; done
fi
[ -n "$B" ] && [ -x "$B/supervisor/bifrostd" ] || { echo "demo: build Bifrost first (scripts/demo.sh does it)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces, TUN devices)"; exit 1; }
export BIFROST_BUILDDIR=$B BIFROST_LIBEXEC_DIR=${BIFROST_LIBEXEC_DIR:-$B/libexec}
GRID_TAG=demo$$
. "$here/tests/integration/tap_lib.sh"
. "$here/tests/integration/natgrid_lib.sh"
. "$here/tests/integration/disc_lib.sh"
. "$here/tests/integration/mesh_lib.sh"
# The libraries speak TAP; the demo speaks to a person
ok () { if [ "$1" -eq 0 ]; then echo "   ok: $2"; else echo "   FAILED: $2"; FAILED=$((FAILED + 1)); fi; }
T=$(mktemp -d /tmp/bifrost-demo-XXXXXX)
chmod 755 "$T"
NODES="alice bob carol"
cleanup () {
    echo; echo "demo: stopping"
    [ -n "${SLEEPER:-}" ] && kill "$SLEEPER" 2>/dev/null
    mesh_finish
    grid_cleanup
    # (a service's seccomp filter refused a call: tests/integration/demo.sh fails)
    grep -rh "seccomp refused" "$T" 2>/dev/null | sed 's/^/   /'
    [ -n "${DEMO_KEEP:-}" ] && rm -rf "$DEMO_KEEP" && cp -r "$T" "$DEMO_KEEP"
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 0' INT TERM
say () { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "the internet: 203.0.113.0/24 with a registry and coturn (.10) and two relays (.11, .12); three home routers"
grid_init
grid_public_host reg 203.0.113.10
grid_public_host relay 203.0.113.11
grid_public_host relay2 203.0.113.12
grid_nodes full-cone:alice port-restricted:bob symmetric:carol
for n in $NODES; do
    echo "   $n: $(grid_ip "$n") behind a $(grid_kind "$n") NAT, public address $(grid_wan "$n")"
done

say "two relays (bifrost-relay: 2 workers, 1 worker), coturn, and the registry (network \"grid\", a join token)"
mesh_relay relay 203.0.113.11 relay-1 2
mesh_relay relay2 203.0.113.12 relay-2 1
MESH_TURN=1 mesh_registry reg 203.0.113.10 relay-1@203.0.113.11:3479 relay-2@203.0.113.12:3479

say "the nodes: each knows only $RURL and the token (see $T/alice/node.cfg)"
for n in $NODES; do mesh_start_node "$n"; done
wait_for 20 all_have_vip $NODES
ok $? "every node registered and got a virtual address"
for n in $NODES; do VIP[$n]=$(vip "$n"); echo "   $n: ${VIP[$n]}"; done

say "bifrostctl peers on alice, right after joining: everyone through the relay"
wait_for 10 pair_pings alice bob
"$CTL" -r "$T/alice/run" peers

say "a few seconds later: direct where the NATs allow a hole to be punched"
direct () { [ "$(peer_path "$1" "$2")" = direct ]; }
wait_for 10 direct alice bob
wait_for 10 direct alice carol
direct alice bob; ok $? "alice <-> bob: direct (full cone and port-restricted: punched)"
direct alice carol; ok $? "alice <-> carol: direct (a full cone takes the symmetric NAT's new port)"

say "bob and carol cannot punch a hole (port-restricted against symmetric); bob says why, while relayed"
reason () { peers_json "$1" | jq -r --arg b "$2" '.peers[] | select(.name == $b) | .reason // empty'; }
has_reason () { [ -n "$(reason bob carol)" ] || direct bob carol; }
wait_for 10 has_reason
echo "   bob about carol: $(reason bob carol)"

say "then birthday probing: carol opens 256 ports toward bob, bob guesses 256 of carol's ports a round"
wait_for 40 direct bob carol
ok $? "bob <-> carol: direct by birthday probing (connection.birthday)"
for n in $NODES; do echo "-- $n"; "$CTL" -r "$T/$n/run" peers; done

say "ping across the mesh (virtual addresses)"
for a in $NODES; do
    for b in $NODES; do
        [ "$a" = "$b" ] && continue
        out=$(grid_exec "$a" ping -c 3 -i 0.2 -W 2 "${VIP[$b]}" 2>&1 | tail -2 | head -1)
        echo "   $a -> $b (${VIP[$b]}): $out"
        echo "$out" | grep -q " 0% packet loss"
        ok $? "$a reaches $b"
    done
done

say "what carol learnt of its NAT (bifrostctl netcheck)"
"$CTL" -r "$T/carol/run" netcheck

say "the bus of alice, live (bifrostctl tap, 2 s)"
"$CTL" -r "$T/alice/run" tap --timeout 2 --count 6 2>/dev/null | cut -c1-160

if [ "$ONCE" = 1 ]; then
    [ "$FAILED" = 0 ] && echo "demo: every node reached every other, on the paths expected"
    exit "$FAILED"
fi
say "running; try:"
echo "   ip netns exec $(grid_ns alice) ping ${VIP[carol]}"
echo "   $CTL -r $T/bob/run peers carol        # the path, its RTT, what was tried and why"
echo "   $CTL -r $T/alice/run netcheck"
echo "   $CTL -r $T/carol/run tap"
echo "   kill -9 \$($CTL -r $T/alice/run status | awk '/^tunnel/ {print \$2}')   # and watch it come back"
echo "Ctrl-C stops the demo and removes everything."
#  sleep in the background and wait for it: bash runs a trap only between
#  commands, so a TERM or INT sent to this script alone (not to the terminal's
#  whole process group, as Ctrl-C does) would otherwise wait for the sleep
while :; do sleep 3600 & SLEEPER=$!; wait $SLEEPER; done
