#!/bin/bash
# birthday: a relayed pair whose one side maps with random ports (symmetric,
# `masquerade fully-random`) and whose other side filters by port (port-
# restricted; cgnat) goes direct by birthday probing (issue 15, docs/nat.md
# "Birthday probing"). On the project's NAT grid (natgrid_lib.sh, mesh_lib.sh):
# a registry and two relays (so every node learns its mapping class), a node
# behind a symmetric router (sym), one behind a port-restricted router (pr),
# one behind carrier-grade NAT (cg), and two controls: symoff (symmetric,
# connection.birthday = false) and ctl (port-restricted, birthday = false and
# port_prediction = false).
#
# Asserted: the classes the nodes learn (sym endpoint-dependent-random, the
# others endpoint-independent); pr <-> sym and cg <-> sym meet through the
# relay, then go direct (path "direct" on both sides, sym on its birthday
# socket "bday/<n>", the other side on an address of sym's router), pings
# cross, and sym logged the hit; the counters (sym: attempts, datagrams, hits,
# carried sockets; pr: probes to guessed ports); sym closed the K-1 other
# sockets; 200 pings on the birthday path, none lost; ctl <-> symoff stays on
# the relay for as long as an attempt takes, pings cross, and neither side
# attempted anything. Time to direct and datagrams per attempt are printed as
# TAP comments.
#
# Chance: K = 256 sockets, M = 256 guessed ports a round out of 64,512, 10
# rounds 500 ms apart (the test's schedule: birthday_interval, birthday_after).
# A round's 256 guesses miss 256 mappings with 0.361 (nat_bday_miss); if the
# first round is lost (its guesses left before sym opened its sockets), the 9
# others, all different ports, miss with nat_bday_miss (256, 2304, 64512) =
# 1.0e-4; two pairs: 2.1e-4 per run (less: the port prediction of pr and cg,
# 256 ports after sym's seen one, can hit a mapping too). The control fails
# only if symoff's one mapping toward ctl took the port the relay saw it at:
# 1 in 64,512. Below 1 in 1,000 per run.
. "$BIFROST_SRCDIR/tests/integration/tap_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/natgrid_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/mesh_lib.sh"
set -u
T=$(mktemp -d /tmp/birthday-XXXXXX)
chmod 755 "$T"
DIRECT_S=${BIRTHDAY_DIRECT_S:-20}
[ -n "${ASAN_OPTIONS:-}" ] && DIRECT_S=$((DIRECT_S * 2))
finish () { mesh_end 40 "${BIRTHDAY_LOGS:-}"; }
trap finish EXIT

grid_init
grid_public_host reg 203.0.113.10
grid_public_host relay 203.0.113.11
grid_public_host relay2 203.0.113.12
grid_nodes symmetric:sym port-restricted:pr cgnat:cg port-restricted:ctl symmetric:symoff
ok $? "grid: a registry, two relays, nodes behind symmetric, port-restricted, cgnat, port-restricted and symmetric routers"
mesh_relay relay 203.0.113.11 relay-1 1
mesh_relay relay2 203.0.113.12 relay-2 1
mesh_registry reg 203.0.113.10 relay-1@203.0.113.11:3479 relay-2@203.0.113.12:3479

# The test's schedule: 10 rounds 500 ms apart, after 2 unanswered probe rounds
# (BIRTHDAY_CFG="" runs the defaults: 8 rounds 2 s apart after 3 probe rounds;
# give it BIRTHDAY_DIRECT_S=30 and BIRTHDAY_ATTEMPT_S=30)
BDAY=${BIRTHDAY_CFG-'birthday_sockets = 256; birthday_probes = 256; birthday_rounds = 10; birthday_interval = "500ms"; birthday_after = 2;'}
status_of () { peers_json "$1" | jq -r ".nat.$2"; }
t0=$(now_ms)
for n in sym pr cg; do mesh_start_node "$n" "$BDAY"; done
wait_for 30 all_have_vip sym pr cg
ok $? "sym, pr and cg registered and got virtual addresses ($(( $(now_ms) - t0 )) ms)"
for n in sym pr cg; do VIP[$n]=$(vip "$n"); done

classes () { [ "$(status_of sym mapping)" = endpoint-dependent-random ] && [ "$(status_of pr mapping)" = endpoint-independent ] \
             && [ "$(status_of cg mapping)" = endpoint-independent ]; }
wait_for 10 classes
ok $? "mapping classes from two relays: sym $(status_of sym mapping), pr $(status_of pr mapping), cg $(status_of cg mapping)"

# Each pair: direct on both sides, pings cross
for e in pr cg; do
    both_direct () { [ "$(peer_path sym $e)" = direct ] && [ "$(peer_path $e sym)" = direct ]; }
    t1=$(now_ms)
    wait_for "$DIRECT_S" both_direct
    ok $? "$e <-> sym: direct on both sides ($(( $(now_ms) - t1 )) ms of waiting; sym: '$(peer_path sym $e)', $e: '$(peer_path $e sym)')"
    wait_for 5 pair_pings $e sym
    ok $? "$e <-> sym: a ping crosses both ways"
    # sym is on its birthday socket, the other side on an address of sym's router
    ep_sym=$(grep -oE "nat\.1\[[0-9]+\]: peer $e: endpoint [^ ]+" "$T/sym/bifrostd.log" | tail -1 | awk '{ print $5 }')
    ep_e=$(grep -oE "nat\.1\[[0-9]+\]: peer sym: endpoint [^ ]+" "$T/$e/bifrostd.log" | tail -1 | awk '{ print $5 }')
    first=$(grep -m1 -oE "nat\.1\[[0-9]+\]: peer $e: endpoint [^ ]+" "$T/sym/bifrostd.log" | awk '{ print $5 }')
    [[ "$ep_sym" == bday/* ]] && [[ "$ep_e" == "$(grid_wan sym):"* ]] && [[ "$first" == relay/* ]]
    ok $? "$e <-> sym met through the relay ($first), then sym went on $ep_sym and $e on $ep_e"
    grep -qE "peer $e: birthday hit: a probe from [0-9.:]+ reached socket [0-9]+ of 256" "$T/sym/bifrostd.log"
    ok $? "sym logged the hit: '$(grep -m1 -oE "peer $e: birthday hit: .*" "$T/sym/bifrostd.log")'"
    up=$(log_ms "$T/sym/bifrostd.log" "peer $e: [a-z]+ -> up")
    d=$(log_ms "$T/sym/bifrostd.log" "peer $e: endpoint bday/")
    s=$(log_ms "$T/sym/bifrostd.log" "peer $e: birthday attempt 1:")
    echo "# $e <-> sym: up through the relay -> direct $((d - up)) ms (attempt started $((s - up)) ms after up, hit $((d - s)) ms later)"
done

# The counters: sym opened 2 x 256 sockets, kept one each, closed the others
hits () { [ "$(status_of sym birthday_hits)" -ge 2 ] 2>/dev/null; }
wait_for 3 hits
[ "$(status_of sym birthday_attempts)" -ge 2 ] && [ "$(status_of sym birthday_carried)" = 2 ] \
    && [ "$(status_of sym birthday_sockets)" = 0 ] && [ "$(status_of sym birthday_datagrams)" -ge 512 ] \
    && [ "$(status_of pr birthday_probes)" -ge 256 ] && [ "$(status_of pr birthday_hits)" = 0 ]
ok $? "counters: sym $(status_of sym birthday_attempts) attempts, $(status_of sym birthday_hits) hits, $(status_of sym birthday_carried) sockets carried, $(status_of sym birthday_sockets) others open, $(status_of sym birthday_datagrams) datagrams; pr $(status_of pr birthday_probes) guesses, cg $(status_of cg birthday_probes)"

# A data stream stays on the birthday socket: 200 pings, none lost
loss=$(grid_exec pr ping -c 200 -i 0.01 -W 1 -q "${VIP[sym]}" 2>/dev/null | grep -oE "[0-9.]+% packet loss")
[ "$loss" = "0% packet loss" ] && [ "$(peer_path sym pr)" = direct ]
ok $? "pr -> sym: 200 pings at 100/s on the birthday path: $loss, still '$(peer_path sym pr)'"

# Built with the sanitizers (memory errors, not NAT behaviour) the controls are
# left to the release build: they add an attempt's length of waiting
if [ -z "${ASAN_OPTIONS:-}" ]; then
# The controls: symoff (symmetric, birthday = false: no extra sockets) and ctl
# (port-restricted, birthday = false and port_prediction = false: no guessed
# nor predicted ports) stay relayed with each other. (Not asserted: ctl with
# sym, whose sockets toward ctl are on: ctl's probes to sym's relay-seen port
# go direct when one of the 256 mappings took that same port, 256 in 64,512)
mesh_start_node symoff "$BDAY birthday = false;"
mesh_start_node ctl "$BDAY birthday = false; port_prediction = false;"
wait_for 20 all_have_vip ctl symoff
VIP[ctl]=$(vip ctl); VIP[symoff]=$(vip symoff)
wait_for 10 pair_pings ctl symoff
ok $? "ctl <-> symoff (birthday off on both): a ping crosses both ways"
# As long as an attempt of the test's schedule would take: sym's toward ctl
attempt_over () { grep -qE "peer ctl: birthday (attempt 1 over after|hit)" "$T/sym/bifrostd.log"; }
wait_for "${BIRTHDAY_ATTEMPT_S:-15}" attempt_over
ok $? "sym's attempt toward ctl ran its course: '$(grep -m1 -oE "peer ctl: birthday (attempt 1 over after|hit).*" "$T/sym/bifrostd.log")'"
rounds () { peers_json ctl | jq -r '.peers[] | select(.name == "symoff") | .probe_rounds'; }
[[ "$(peer_path ctl symoff)" == relay\ relay-[12] ]] && [[ "$(peer_path symoff ctl)" == relay\ relay-[12] ]] \
    && [ "$(status_of ctl birthday_probes)" = 0 ] && [ "$(status_of ctl birthday_attempts)" = 0 ] \
    && [ "$(status_of ctl predicted_probes)" = 0 ] && [ "$(status_of symoff birthday_attempts)" = 0 ] \
    && [ "$(status_of symoff birthday_sockets)" = 0 ]
ok $? "ctl <-> symoff stays relayed after $(rounds) probe rounds ('$(peer_path ctl symoff)', '$(peer_path symoff ctl)'): no attempt, no guess, no socket on either side"
wait_for 5 pair_pings ctl symoff
ok $? "ctl <-> symoff: a ping still crosses"
echo "# not asserted: ctl <-> sym '$(peer_path ctl sym)' (sym's sockets on, ctl guesses nothing)"
else
    echo "# the controls run in the release build only"
fi
echo "# per attempt: sym sent $(status_of sym birthday_datagrams) datagrams of 4 bytes in $(status_of sym birthday_attempts) attempts; pr $(status_of pr birthday_probes) and cg $(status_of cg birthday_probes) guesses of 148 bytes (in $(status_of pr birthday_attempts) and $(status_of cg birthday_attempts) attempts)"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
