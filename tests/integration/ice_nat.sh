#!/bin/bash
# ice_nat: ICE (libice on libnice) through the NAT grid. Pairs of ice_probe behind
# NAT routers of several kinds, coturn on the public segment as STUN and TURN
# server (REST credentials from its static-auth-secret): each pair must select the
# expected kind of pair (direct where a NAT lets it, TURN where none can), hand
# the selected socket over (ice_agent_take_socket) and move data on it, on the
# selected 5-tuple. Without TURN, symmetric x symmetric must fail: the proof that
# the relayed pairs are TURN's doing. Without STUN and TURN, a port mapping
# (ice_agent_add_local_mapped) or the relay's observed address
# (ice_agent_add_remote_observed) is what makes a direct pair, and without them
# there is none. All pairs run at once. ICE_TAKE_AT=ready takes the sockets only
# once both sides are READY (slower: docs/ice.md). (TAP)
set -u
. "$BIFROST_SRCDIR/tests/integration/tap_lib.sh"
PROBE=$BIFROST_BUILDDIR/tests/ice_probe
COTURN=$BIFROST_BUILDDIR/services/coturn/bifrost-coturn
if ! command -v turnserver >/dev/null; then
    echo "1..0 # SKIP coturn is not installed (apt-get install coturn)"
    exit 0
fi
[ -x "$PROBE" ] || { echo "Bail out! $PROBE is not built (make tests/ice_probe)"; exit 1; }
[ -x "$COTURN" ] || { echo "Bail out! $COTURN is not built"; exit 1; }
T=$(mktemp -d /tmp/hi-ice-nat-XXXXXX)
chmod 755 "$T"      # the services pass it under their own uids (docs/supervisor.md)
trap 'seccomp_check "$T"; rm -rf "$T"' EXIT
GRID_TAG=${GRID_TAG:-hi$$x$(printf %02x $((RANDOM % 256)))}
. "$BIFROST_SRCDIR/tests/integration/natgrid_lib.sh"
T0=$(now_ms)

TURN_IP=203.0.113.10
# pair NAME KIND_A KIND_B EXPECT [FLAGS]: EXPECT is direct, relay or fail; FLAGS
# (comma-separated): noturn (STUN only), nostun (neither STUN nor TURN), mapped
# (a announces a port mapping that the script then makes on a's router, as
# miniupnpd would: ice_agent_add_local_mapped), observed
# (each side is given the other's public address as a relay would report it:
# ice_agent_add_remote_observed). The grid's cone kinds keep the port, so
# "router WAN address : host port" is the mapping in both cases.
PAIRS="
fc  full-cone       full-cone       direct
pr  port-restricted port-restricted direct
fs  full-cone       symmetric       direct
ps  port-restricted symmetric       relay
ss  symmetric       symmetric       relay
sx  symmetric       symmetric       fail   noturn
mo  port-restricted port-restricted direct nostun,mapped
ob  port-restricted port-restricted direct nostun,observed
nx  port-restricted port-restricted fail   nostun
"
# ICE_PAIRS="fc ss": only these pairs (for a look with NICE_DEBUG=all G_MESSAGES_DEBUG=all)
if [ -n "${ICE_PAIRS:-}" ]; then
    PAIRS=$(echo "$PAIRS" | while read -r name rest; do
        case " $ICE_PAIRS " in *" $name "*) echo "$name $rest" ;; esac; done)
fi
grid_init
grid_public_host turn $TURN_IP
nodes=""
while read -r name ka kb expect flags; do
    [ -n "$name" ] && nodes="$nodes $ka:${name}a $kb:${name}b"
done <<< "$PAIRS"
grid_nodes $nodes
echo "# grid: $GRID_N routers and a public host in $(( $(now_ms) - T0 )) ms"

# coturn the way the project runs it (services/coturn): static-auth-secret, REST
# credentials "<expiry>:<id>" / base64(HMAC-SHA1(secret, username))
TURN_SECRET=$(openssl rand -hex 24)
export TURN_SECRET
cat > "$T/server.cfg" <<CFG
turn = {
    realm = "bifrost.test";
    listening_ip = "$TURN_IP";
    relay_ip = "$TURN_IP";
    listen_port = 3478;
    min_port = 49152;
    max_port = 49407;
    secret = "\${TURN_SECRET}";
};
CFG
grid_spawn turn "$T/coturn.log" "$COTURN" -c "$T/server.cfg" -r "$T/run"
wait_for 10 sh -c "ip netns exec $(grid_ns turn) ss -lun | grep -q '$TURN_IP:3478 '"
ok $? "coturn listens on $TURN_IP:3478 (STUN and TURN)"
turn_user () { echo "$(( $(date +%s) + 600 )):$1"; }
turn_pass () { printf %s "$1" | openssl dgst -sha1 -hmac "$TURN_SECRET" -binary | base64; }

# Both probes of every pair at once
declare -A PID RC
T1=$(now_ms)
while read -r name ka kb expect flags; do
    [ -n "$name" ] || continue
    for side in a b; do
        if [ $side = a ]; then id=1; peer=2; else id=2; peer=1; fi
        other=$([ $side = a ] && echo b || echo a)
        args=(--id $id --peer $peer --out "$T/$name.sig.$side" --in "$T/$name.sig.$other"
              --timeout 25 --take-at "${ICE_TAKE_AT:-selected}")
        case ",$flags," in *,nostun,*) ;; *) args+=(--stun $TURN_IP:3478) ;; esac
        case ",$flags," in *,noturn,*|*,nostun,*) ;; *)
            u=$(turn_user "$name$side")
            args+=(--turn $TURN_IP:3478 --turn-user "$u" --turn-pass "$(turn_pass "$u")") ;;
        esac
        case ",$flags,$side" in *,mapped,*a) args+=(--mapped-wan "$(grid_wan "$name$side")") ;; esac
        case ",$flags," in *,observed,*) args+=(--peer-wan "$(grid_wan "$name$other")") ;; esac
        grid_spawn "$name$side" "$T/$name.$side" "$PROBE" "${args[@]}"
        PID[$name$side]=$GRID_PID
    done
done <<< "$PAIRS"

# The port mapping of the "mapped" pairs, made on the router once the probe has
# announced it (what a UPnP-IGD gateway does on AddPortMapping): a dnat of the
# WAN port to the node's host port, and the forward rule that lets it in
while read -r name ka kb expect flags; do
    case ",$flags," in *,mapped,*) ;; *) continue ;; esac
    mapped () { grep -q "^cand candidate:map" "$1"; }
    wait_for 10 mapped "$T/$name.sig.a"
    port=$(awk '$1 == "cand" && $2 ~ /^candidate:map/ { print $7 }' "$T/$name.sig.a")
    r=$(grid_router "${name}a")
    [ -n "$port" ] && grid_exec "$r" nft add rule ip natgrid nat_pre iifname wan udp dport "$port" \
            dnat to "$(grid_ip "${name}a"):$port" \
        && grid_exec "$r" nft insert rule ip natgrid filter_fwd iifname wan oifname lan ct status dnat accept
    ok $? "$name: port mapping $(grid_wan "${name}a"):$port -> $(grid_ip "${name}a"):$port made on a's router"
done <<< "$PAIRS"

finished () { grep -qE '^(DONE|FAIL)' "$1"; }
while read -r name ka kb expect flags; do
    [ -n "$name" ] || continue
    wait_for 30 finished "$T/$name.a"
    wait_for 30 finished "$T/$name.b"
done <<< "$PAIRS"
echo "# all probes ended $(( $(now_ms) - T1 )) ms after they started"
# A probe that printed its verdict must exit by itself (ice_agent_destroy is bounded)
gone () { [ ! -e /proc/$1/stat ] || [ "$(awk '{ print $3 }' /proc/$1/stat 2>/dev/null)" = Z ]; }
for p in "${!PID[@]}"; do
    wait_for 5 gone "${PID[$p]}" || { echo "# $p did not exit: killed"; grid_kill "${PID[$p]}"; }
    wait "${PID[$p]}"; RC[$p]=$?
done

# field FILE WORD N: field N of the last line starting with WORD
field () { awk -v w="$2" -v n="$3" '$1 == w { v = $n } END { print v }' "$1"; }
while read -r name ka kb expect flags; do
    [ -n "$name" ] || continue
    A="$T/$name.a"; B="$T/$name.b"
    what="$name: $ka x $kb${flags:+ ($flags)}"
    if [ "$expect" = fail ]; then
        grep -q '^FAIL' "$A" && grep -q '^FAIL' "$B" && ! grep -q '^SELECTED' "$A" && ! grep -q '^SELECTED' "$B"
        ok $? "$what: no pair ($(grep -h '^FAIL' "$A" | head -1))"
        continue
    fi
    grep -q '^DONE' "$A" && grep -q '^DONE' "$B" && [ "${RC[${name}a]}" = 0 ] && [ "${RC[${name}b]}" = 0 ]
    ok $? "$what: both sides selected a pair, took the socket (or kept TURN in libnice), data crossed both ways (exit ${RC[${name}a]} ${RC[${name}b]})"
    types="$(field "$A" SELECTED 3)/$(field "$A" SELECTED 4) $(field "$B" SELECTED 3)/$(field "$B" SELECTED 4)"
    case "$expect" in
        direct)
            ! echo "$types" | grep -q relay && grep -q '^TAKEN' "$A" && grep -q '^TAKEN' "$B"
            ok $? "$what: direct pair, no TURN (a local/remote b local/remote: $types); both sockets taken" ;;
        relay)
            echo "$types" | grep -q relay
            ok $? "$what: through TURN ($types; $(grep -hoE '^(TAKEN|RELAYED)' "$A" "$B" | tr '\n' ' '))" ;;
    esac
    # The data came in on the taken socket from the address ICE selected: the same 5-tuple
    for s in a b; do
        f="$T/$name.$s"
        if grep -q '^TAKEN' "$f"; then
            want=$(field "$f" TAKEN 5); got=$(field "$f" DATA 5)
            [ -n "$want" ] && [ "$want" = "$got" ]
            ok $? "$what: side $s received on its taken socket from the selected remote $want (from $got)"
            [ "$(field "$f" SHARED 2)" = 1 ]
            ok $? "$what: side $s: after the peer's removal only the taken descriptor is left on its socket ($(field "$f" SHARED 2))"
        fi
    done
    sa=$(field "$A" SELECTED 2); sb=$(field "$B" SELECTED 2)
    echo "# $what: selected pair at ${sa:-?} / ${sb:-?} ms, data on it at $(field "$A" DATA 2) / $(field "$B" DATA 2) ms${ICE_TAKE_AT:+, READY at $(field "$A" READY 2) / $(field "$B" READY 2) ms}"
    echo "#   a: $(grep -h '^SELECTED' "$A" | tail -1) $(grep -h '^DONE' "$A"); $(grep -h '^DESTROYED' "$A")"
    echo "#   b: $(grep -h '^SELECTED' "$B" | tail -1) $(grep -h '^DONE' "$B"); $(grep -h '^DESTROYED' "$B")"
    limit=2000; [ "$expect" = relay ] || [ -n "$flags" ] && limit=5000
    [ -n "$sa" ] && [ -n "$sb" ] && [ "$sa" -lt $limit ] && [ "$sb" -lt $limit ]
    ok $? "$what: pair selected within $limit ms on both sides"
done <<< "$PAIRS"

if [ "$FAILED" -ne 0 ]; then
    for f in "$T"/*.a "$T"/*.b "$T/coturn.log"; do echo "# --- $f"; tail -15 "$f" | sed 's/^/#   /'; done
fi
echo "# total $(( $(now_ms) - T0 )) ms"
echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
