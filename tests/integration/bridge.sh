#!/bin/bash
# bridge: the WebSocket to UDP bridge end to end (issue 17, docs/bridge.md
# "Testing it"). On the project's NAT grid (natgrid_lib.sh): a server on the
# public segment (bifrostd with bus and bifrost-bridge), a client host running
# a real WebSocket client (tests/bridge_ws_client, libwebsockets), and one
# bifrost-bridge-peer --echo behind a NAT of every kind of the grid, all at
# once, each with a flow key of its own.
#
# For each kind, the client opens /v0/ws/proxy with the peer's predicted public
# address (its router's, port kept: what an EIM NAT that keeps ports gives);
# the peer starts with --target the bridge's `udp` from the client's first
# status message (checked against the server's conntrack), so both ends punch.
# Asserted:
#   - the states come in order CONNECTED, UDP_WAITING, UDP_ESTABLISHED behind
#     every kind but udp-blocked, and 100 messages of 1..1204 bytes come back
#     intact (client side) and arrived intact (the peer's counters: 100
#     messages, every byte, nothing refused). Where the prediction holds (none,
#     full cone, restricted, port-restricted) the bridge's punching meets the
#     peer's; where it cannot (symmetric, symmetric-seq, cgnat, cgnat-sym: the
#     NAT maps the peer to another port) the peer's heartbeats toward `udp`
#     open its NAT and the bridge roams to their source, which the status's
#     `target` then names (the NAT's real mapping);
#   - udp-blocked lets no UDP out of the peer's network: nothing of the peer
#     reaches the bridge, and the flow stays UDP_WAITING;
#   - the port-restricted peer stopped (SIGSTOP): UDP_WAITING within the
#     bridge's heartbeat timeout; SIGCONT: UDP_ESTABLISHED again;
#   - a bad token and a bad parameter are refused before the upgrade (HTTP
#     401, 400); a binary message over bridge.max_message is closed with 4413.
# Without bifrost-bridge (not built in this tree), the grid, the peers and
# their punching still run, and the bridge's points are skipped. (TAP)
. "$BIFROST_SRCDIR/tests/integration/tap_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/natgrid_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/bridge_lib.sh"
set -u
T=$(mktemp -d /tmp/bridge-test-XXXXXX)
chmod 755 "$T"
SRV=203.0.113.10
WS_PORT=8445
PEER_PORT=5000
SLOW=1
[ -n "${ASAN_OPTIONS:-}" ] && SLOW=3        # the sanitizer build is several times slower
# The bridge's heartbeat_timeout (schemas/config/bridge.def's default, set here
# in the config so the budget below follows it)
HB_TIMEOUT_MS=3000
HB_INTERVAL_MS=1000
KINDS=${BRIDGE_KINDS:-$GRID_KINDS}
# Where the client's target (the router's address, the peer's port) is the
# peer's mapping toward the bridge: an EIM NAT that keeps the port
UP_KINDS=" none full-cone restricted port-restricted "
# Where no UDP leaves the peer's network: no flow can come up
BLOCKED_KINDS=" udp-blocked "

finish () {
    bridge_stop_all
    grid_cleanup
    [ -n "${BRIDGE_LOGS:-}" ] && rm -rf "$BRIDGE_LOGS" && cp -r "$T" "$BRIDGE_LOGS"
    seccomp_check "$T"
    rm -rf "$T"
    echo "# $TESTNO tests, $FAILED failed, $(( $(now_ms) - T0 )) ms"
}
trap finish EXIT

# spawn NAME LOG CMD...: CMD in the grid host NAME's namespace (bridge_spawn)
spawn () { local name=$1; shift; bridge_spawn "$(grid_ns "$name")" "$@"; }
skip () { TESTNO=$((TESTNO + 1)); echo "ok $TESTNO # SKIP $1"; }

# ---------------------------------------------------------------------------
# The grid: server and client on the public segment, a peer behind each kind
grid_init
grid_public_host srv $SRV
grid_public_host cli 203.0.113.20
specs=""
for k in $KINDS; do specs="$specs $k:p-$k"; done
grid_nodes $specs
ok $? "grid: server $SRV, client 203.0.113.20, a peer behind each of: $(echo $KINDS)"
# Conntrack in the server's namespace, so the test can see which port the
# bridge sends a flow from (a rule that reads ct makes the namespace track)
grid_exec srv nft -f - <<'NFT'
table ip bridgetest {
    chain out {
        type filter hook output priority 0; policy accept;
        ct state new counter
    }
}
NFT
ok $? "the server's namespace tracks its flows (conntrack)"

# A flow key per peer (0600, as the peer demands), and the token file
for k in $KINDS; do
    head -c 32 /dev/urandom | base64 > "$T/$k.key"
    chmod 600 "$T/$k.key"
done
printf '%s\n' "$BRIDGE_TOKEN" > "$T/token"
chmod 600 "$T/token"

# The peer refuses a key file others can read, and says so without the key
cp "$T/none.key" "$T/loose.key" 2>/dev/null || { head -c 32 /dev/urandom | base64 > "$T/loose.key"; }
chmod 644 "$T/loose.key"
"$PEER" --listen 127.0.0.1:$PEER_PORT --key-file "$T/loose.key" --echo > "$T/loose.out" 2>&1
rc=$?
[ $rc = 78 ] && grep -q "has mode 0644" "$T/loose.out" && ! grep -qF "$(cat "$T/loose.key")" "$T/loose.out"
ok $? "bifrost-bridge-peer refuses a key file of mode 0644 (exit $rc) and never prints the key"

# ---------------------------------------------------------------------------
# The server
HAVE_BRIDGE=1
[ -x "$BIFROST_LIBEXEC_DIR/bifrost-bridge" ] || HAVE_BRIDGE=0
if [ $HAVE_BRIDGE = 1 ]; then
    bridge_start "$(grid_ns srv)" "$SRV:$WS_PORT"
    ok $? "server: bifrost-bridge ready, WebSocket on $SRV:$WS_PORT"
    ! grep -qF "$BRIDGE_TOKEN" "$T/srv.log"
    ok $? "server: the token is in no log"
else
    skip "bifrost-bridge is not built in this tree: the bridge's points below are skipped"
fi

# ---------------------------------------------------------------------------
# A flow per kind, all at once
url () { echo "ws://$SRV:$WS_PORT/v0/ws/proxy?target=$1&key=$(urlenc "$(cat "$T/$2.key")")&cipher=auto"; }
# flow_port WAN:PORT: the port the bridge sends the flow toward WAN:PORT from
flow_port () {
    grid_exec srv cat /proc/net/nf_conntrack 2>/dev/null | awk -v s="$SRV" -v d="${1%:*}" -v p="${1#*:}" '$3 == "udp" {
        n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^(src|dst|sport|dport)=/) { split ($i, kv, "="); v[n++] = kv[2] }
        if (v[0] == s && v[1] == d && v[3] == p) { print v[2]; exit } }'
}
has_flow_port () { [ -n "$(flow_port "$1")" ]; }
# mapping NAME: where the peer's datagrams toward the bridge leave its NAT(s)
# (the reply direction's destination in the outermost NAT's conntrack)
mapping () {
    local ns=$(grid_carrier "$1"); [ -n "$ns" ] || ns=$(grid_router "$1"); [ -n "$ns" ] || ns=$(grid_ns "$1")
    ip netns exec "$ns" cat /proc/net/nf_conntrack 2>/dev/null | awk -v s="$SRV" '$3 == "udp" {
        n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^(src|dst|sport|dport)=/) { split ($i, kv, "="); v[n++] = kv[2] }
        # original src dst sport dport, then reply src dst sport dport
        if (v[1] == s && v[4] == s) { print v[5] ":" v[7]; exit } }'
}

# counters KIND: the peer's counters, one JSON line (SIGUSR1, on its stderr)
lines_of () { grep -c '^{' "$T/peer-$1.log"; }
more_lines () { [ "$(lines_of "$1")" -gt "$2" ]; }
counters () {
    local before; before=$(lines_of "$1")
    kill -USR1 "${PPID_OF[$1]}"
    wait_for 2 more_lines "$1" "$before"
    grep '^{' "$T/peer-$1.log" | tail -1
}
sent_heartbeats () { [ "$(counters "$1" | jq -r .heartbeats_out)" -ge "$2" ] 2>/dev/null; }

declare -A CPID=() PPID_OF=() TARGET=() MAPPED=()
for k in $KINDS; do
    TARGET[$k]=$(grid_wan "p-$k"):$PEER_PORT
    if [ $HAVE_BRIDGE = 1 ]; then
        if [[ "$BLOCKED_KINDS" != *" $k "* ]]; then
            args="--expect-states CONNECTED,UDP_WAITING,UDP_ESTABLISHED --messages 100 --size 1204 --timeout $((15 * SLOW))"
            # held for the SIGSTOP points, ended by the test
            [ "$k" = port-restricted ] && args="${args% --timeout *} --hold 60 --timeout 60"
        else
            args="--expect-states CONNECTED,UDP_WAITING --timeout $((4 * SLOW))"
        fi
        spawn cli "$T/client-$k.out" "$CLIENT" --url "$(url "${TARGET[$k]}" "$k")" --token-file "$T/token" $args
        CPID[$k]=$SPAWNED
    fi
done
# The bridge's own end of each flow, as its first status message says (`udp`;
# a fixed port when the server had none), checked against the port the server
# sends the flow from (its conntrack); then the peers, punching toward it
udp_of () { sed -n 's/^STATUS CONNECTED //p' "$T/client-$1.out" | head -1 | jq -r '.udp // empty' 2>/dev/null; }
has_udp () { [ -n "$(udp_of "$1")" ]; }
for k in $KINDS; do
    budp=$SRV:$PEER_PORT
    if [ $HAVE_BRIDGE = 1 ]; then
        wait_for $((5 * SLOW)) has_udp "$k"
        budp=$(udp_of "$k")
        wait_for $((5 * SLOW)) has_flow_port "${TARGET[$k]}"
        bport=$(flow_port "${TARGET[$k]}")
        [ -n "$bport" ] && [ "$budp" = "$SRV:$bport" ]
        ok $? "$k: the status message's udp ${budp:-(none)} is where the bridge sends the flow toward ${TARGET[$k]} from (port ${bport:-?})"
    fi
    spawn "p-$k" "$T/peer-$k.log" "$PEER" --listen "$(grid_ip "p-$k"):$PEER_PORT" --key-file "$T/$k.key" \
        --target "${budp:-$SRV:$PEER_PORT}" --echo
    PPID_OF[$k]=$SPAWNED
done

# The peers punch: each NAT (but udp-blocked's) maps the peer toward the
# server; the kinds of UP_KINDS to the client's target, the others elsewhere
has_mapping () { [ -n "$(mapping "$1")" ]; }
for k in $KINDS; do
    [ "$k" = none ] && continue             # no NAT: the target is its own address
    if [ "$k" = udp-blocked ]; then
        wait_for $((3 * SLOW)) sent_heartbeats "$k" 2
        [ $? = 0 ] && [ -z "$(mapping "p-$k")" ]
        ok $? "$k: the peer's heartbeats never leave its network (no mapping after 2 sent)"
        continue
    fi
    wait_for $((3 * SLOW)) has_mapping "p-$k"
    m=$(mapping "p-$k")
    MAPPED[$k]=$m
    if [[ "$UP_KINDS" == *" $k "* ]]; then
        [ "$m" = "${TARGET[$k]}" ]
        ok $? "$k: the peer's heartbeats leave its NAT as ${m:-nothing}: the client's target"
    else
        [ -n "$m" ] && [ "$m" != "${TARGET[$k]}" ]
        ok $? "$k: the peer's heartbeats leave its NAT as ${m:-nothing}, not the client's target ${TARGET[$k]}"
    fi
done

if [ $HAVE_BRIDGE = 1 ]; then
    # Every client ends (in parallel: the slowest bounds the time)
    sum=0
    for ((i = 0; i < 100; i++)); do sum=$((sum + 1 + i * 1203 / 99)); done
    for k in $KINDS; do
        [ "$k" = port-restricted ] && continue      # held for the SIGSTOP points
        wait "${CPID[$k]}" 2>/dev/null
        out=$T/client-$k.out
        if [[ "$BLOCKED_KINDS" != *" $k "* ]]; then
            grep -q "^STATES OK" "$out"
            ok $? "$k: states in order CONNECTED, UDP_WAITING, UDP_ESTABLISHED ($(grep -c '^STATUS' "$out") status messages)"
            grep -qx "ECHO OK 100 $sum" "$out" && grep -qx "END ok" "$out"
            ok $? "$k: 100 messages of 1..1204 bytes ($sum in all) came back intact"
            if [[ "$UP_KINDS" != *" $k "* ]]; then
                # The bridge roamed to the NAT's real mapping, and said so
                got=$(sed -n 's/^STATUS UDP_ESTABLISHED //p' "$out" | tail -1 | jq -r .target)
                [ -n "${MAPPED[$k]:-}" ] && [ "$got" = "${MAPPED[$k]}" ]
                ok $? "$k: the flow's far end is the NAT's mapping ${MAPPED[$k]:-?}, not the client's target ${TARGET[$k]}: the status says $got"
            fi
        else
            grep -q "^STATES OK" "$out" && ! grep -q "^STATUS UDP_ESTABLISHED" "$out"
            ok $? "$k: no UDP leaves the peer's network, so nothing of it reaches the bridge: the flow stays UDP_WAITING"
        fi
    done

    # The held one (port-restricted) has sent its 100 too
    out=$T/client-port-restricted.out
    echoed () { grep -q "^ECHO OK" "$out"; }
    wait_for $((15 * SLOW)) echoed && grep -q "^STATES OK" "$out"
    ok $? "port-restricted: states in order and 100 messages intact: $(grep -E '^(STATES|ECHO)' "$out" | tr '\n' ' ')"

    # The peers' side: what arrived, by their counters (SIGUSR1: one JSON line)
    for k in $KINDS; do
        [[ "$BLOCKED_KINDS" == *" $k "* ]] && continue
        c=$(counters "$k")
        # Its heartbeats were answered; the held flow (port-restricted) is up
        # and the bridge's heartbeats reached it (a short flow may end before
        # the bridge's next one)
        held=false; [ "$k" = port-restricted ] && held=true
        [ "$(jq -r '"\(.data_in) \(.bytes_in) \(.echoed) \(.invalid)"' <<< "$c")" = "100 $sum 100 0" ] \
            && [ "$(jq -r --argjson held $held '.replies_in > 0 and (($held | not) or (.heartbeats_in > 0 and .established))' <<< "$c")" = true ]
        ok $? "$k: the peer received the 100 messages intact, echoed them, refused nothing, its heartbeats answered$($held && echo ', the bridge'"'"'s answered')"
    done

    # The port-restricted peer stops, then comes back
    k=port-restricted; out=$T/client-$k.out
    count_of () { grep -c "^STATUS $1" "$out"; }
    kill -STOP "${PPID_OF[$k]}"
    t1=$(now_ms)
    waiting_again () { [ "$(count_of UDP_WAITING)" -ge 2 ]; }
    # The point is the state, not a time: UDP_WAITING comes (the time printed,
    # expected about the heartbeat timeout); the wait is an outer bound, 3 times
    # the old bound, so a loaded machine does not fail it
    wait_for $(( 3 * ((HB_TIMEOUT_MS + 2 * HB_INTERVAL_MS) / 1000 + 1) * SLOW )) waiting_again
    ok $? "$k: peer stopped (SIGSTOP): UDP_WAITING after $(( $(now_ms) - t1 )) ms (heartbeat timeout $HB_TIMEOUT_MS ms, interval $HB_INTERVAL_MS ms)"
    kill -CONT "${PPID_OF[$k]}"
    t2=$(now_ms)
    up_again () { [ "$(count_of UDP_ESTABLISHED)" -ge 2 ]; }
    wait_for $((9 * SLOW)) up_again         # outer bound (3 s before; the time is printed)
    ok $? "$k: peer continued (SIGCONT): UDP_ESTABLISHED again after $(( $(now_ms) - t2 )) ms"
    kill -TERM "${CPID[$k]}" 2>/dev/null

    # Refused before the upgrade: a bad token (401), a bad parameter (400)
    upgrade () {
        grid_exec cli curl -s -o /dev/null -w '%{http_code}' --max-time 3 --http1.1 \
            -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
            -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' -H "Authorization: Bearer $1" "$2"
    }
    u=$(url 203.0.113.99:5000 none)
    code=$(upgrade "not-$BRIDGE_TOKEN" "http:${u#ws:}")
    [ "$code" = 401 ]
    ok $? "a bad token is refused before the upgrade: HTTP $code"
    code=$(upgrade "$BRIDGE_TOKEN" "http://$SRV:$WS_PORT/v0/ws/proxy?target=example.com:80&key=$(urlenc "$(cat "$T/none.key")")")
    [ "$code" = 400 ]
    ok $? "a bad parameter (target=example.com:80) is refused before the upgrade: HTTP $code"
    printf 'not-%s\n' "$BRIDGE_TOKEN" > "$T/badtoken"
    grid_exec cli "$CLIENT" --url "$(url 203.0.113.99:5000 none)" --token-file "$T/badtoken" --timeout 5 > "$T/client-badtoken.out" 2>&1
    grep -q "^REFUSED" "$T/client-badtoken.out" && ! grep -q "^OPEN" "$T/client-badtoken.out"
    ok $? "the WebSocket client sees the refusal: $(grep '^REFUSED' "$T/client-badtoken.out")"

    # A message over bridge.max_message (1204): closed with 4413
    grid_exec cli "$CLIENT" --url "$(url 203.0.113.99:5000 none)" --token-file "$T/token" --send-now \
        --messages 1 --size 1205 --expect-close 4413 --timeout $((5 * SLOW)) > "$T/client-large.out" 2>&1
    ok $? "a 1205-byte message is closed with 4413: $(grep '^CLOSE' "$T/client-large.out")"
fi

# Every peer ends on SIGTERM with its counters as one JSON line
k=none
kill -TERM "${PPID_OF[$k]}"
gone () { ! kill -0 "${PPID_OF[$k]}" 2>/dev/null; }
wait_for 3 gone && tail -1 "$T/peer-$k.log" | jq -e '.far_end and (.refused | has("tampered"))' >/dev/null
ok $? "$k: the peer exits on SIGTERM and prints its counters ($(tail -1 "$T/peer-$k.log" | cut -c1-80)...)"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
