#!/bin/bash
# bridge_page: the example page (examples/bridge/index.html) in Debian's
# headless Chromium, end to end (issue 17, docs/bridge.md "Testing it").
# Three hosts on the grid's public segment (natgrid_lib.sh): the server
# (bifrostd with bus and bifrost-bridge), the browser (chromedriver and the
# Chromium it starts, driven with curl through the WebDriver HTTP API), and the
# far peer (bifrost-bridge-peer --echo). The page is opened as a file, its
# fields in the URL's fragment with autoconnect=1 and send=MESSAGE; the test
# reads what the page shows (its DOM's rendered text) and clicks its buttons.
# Asserted:
#   - the page's log shows CONNECTED, UDP_WAITING, UDP_ESTABLISHED in that
#     order, its state UDP_ESTABLISHED with an rtt and the cipher;
#   - the message sent comes back and is shown as sent; the peer received and
#     echoed exactly it (its counters);
#   - neither the token nor the key is in the page's text (states, log) or
#     its address once the page read them;
#   - Disconnect: CLOSED, close code 1000;
#   - New key: the base64 of 32 random bytes, another at each click;
#   - a wrong token: REFUSED (close 1006, never CONNECTED), and the bridge
#     counted it as a bad token;
#   - a 1205-byte message: ERROR, and the close code 4413 and its reason shown.
# Skipped without chromium and chromedriver (scripts/install-deps.sh installs
# them) or bifrost-bridge. (TAP)
. "$BIFROST_SRCDIR/tests/integration/tap_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/natgrid_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/bridge_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/webdriver_lib.sh"
set -u
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root (network namespaces)"; exit 0; }
wd_skip_without_browser
[ -x "$BIFROST_LIBEXEC_DIR/bifrost-bridge" ] || { echo "1..0 # SKIP bifrost-bridge is not built"; exit 0; }

T=$(mktemp -d /tmp/bridge-page-XXXXXX)
chmod 755 "$T"          # the services run under their own uids
PAGE=file://$BIFROST_SRCDIR/examples/bridge/index.html
SRV=203.0.113.10
FAR=203.0.113.30
WS=ws://$SRV:8445/v0/ws/proxy
WD=http://127.0.0.1:9515       # chromedriver, on the browser host's own loopback
WD_EXEC="grid_exec browser"
SLOW=1
[ -n "${ASAN_OPTIONS:-}" ] && SLOW=3

finish () {
    # Chromium first (chromedriver ends it with the session), then the
    # server (and the logs' tails when a point failed), then the grid:
    # grid_cleanup stops what grid_spawn started and anything left in its namespaces
    wd_end
    bridge_stop_all
    grid_cleanup
    seccomp_check "$T"
    rm -rf "$T"
    echo "# $TESTNO tests, $FAILED failed, $(( $(now_ms) - T0 )) ms"
}
trap finish EXIT

# open FRAGMENT: the page, anew (about:blank between: a new fragment alone
# would not load it again)
open_page () {
    wd_open about:blank
    wd_open "$PAGE#$1"
}
# shown: what the page shows now, as the user sees it (rendered text), one JSON object
SHOWN_JS='const t = (id) => document.getElementById (id).innerText;
const items = (id) => Array.from (document.querySelectorAll ("#" + id + " li"), (li) => li.innerText);
return {state: t ("state"), rtt: t ("rtt"), cipher: t ("cipher-used"), close: t ("close"),
        log: items ("log"), echoes: items ("echoes"), key: document.getElementById ("key").value,
        hint: t ("peer-hint"), text: document.body.innerText, href: location.href};'
shown () { wd_js "$SHOWN_JS"; }
# the states in the page's log, in order (a line: the time, the state, its details)
states () { shown | jq -r '[.log[] | sub("^[0-9:.]+ +"; "") | split(" ")[0] | select(test("^[A-Z_]+$"))] | join(",")'; }
state_is () { [ "$(shown | jq -r .state)" = "$1" ]; }
# fragment TOKEN TARGET KEYFILE [SEND]: the page's fields, percent-encoded
fragment () {
    echo "url=$(urlenc "$WS")&token=$(urlenc "$1")&target=$(urlenc "$2")&key=$(urlenc "$(cat "$3")")&cipher=auto&autoconnect=1${4:+&send=$(urlenc "$4")}"
}
# far_peer NAME PORT: a bifrost-bridge-peer --echo on FAR:PORT with a key of its
# own in $T/NAME.key (one flow per peer); its pid in FAR_PID
far_peer () {
    head -c 32 /dev/urandom | base64 > "$T/$1.key"
    chmod 600 "$T/$1.key"
    grid_spawn far "$T/$1.log" "$PEER" --listen "$FAR:$2" --key-file "$T/$1.key" --echo
    FAR_PID=$GRID_PID
}
refused_token () { bridge_ctl bridge --json | jq '[.instances[].refused_token] | add'; }

# ---------------------------------------------------------------------------
grid_init
grid_public_host srv $SRV
grid_public_host browser 203.0.113.20
grid_public_host far $FAR
# The browser's host has no route but its segment: Chromium's own requests
# (DNS, updates) fail at once instead of timing out (the first page load
# took 20 s with the grid's default route)
grid_exec browser ip route del default
ok $? "grid: server $SRV, browser 203.0.113.20 (no route off the segment), far peer $FAR"

bridge_start "$(grid_ns srv)" "$SRV:8445"
ok $? "server: bifrost-bridge ready, WebSocket on $SRV:8445"

# chromedriver, and the headless Chromium of its session, in the browser's namespace
grid_spawn browser "$T/chromedriver.log" "$CHROMEDRIVER" --port=9515
wd_session $((10 * SLOW)) "$T/chromium"
ok $? "headless Chromium $("$CHROMIUM" --version 2>/dev/null | awk '{print $2}') in the browser's namespace, driven by chromedriver"

# ---------------------------------------------------------------------------
# The page connects, the states come, the message comes back
far_peer peer1 5000
MSG="hello from the page $$ $(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
open_page "$(fragment "$BRIDGE_TOKEN" "$FAR:5000" "$T/peer1.key" "$MSG")"
echoed () { [ "$(shown | jq -r '.echoes | length')" -ge 1 ]; }
wait_for $((10 * SLOW)) echoed
s=$(shown)
got=$(states)
[[ "$got" == CONNECTED,UDP_WAITING,UDP_ESTABLISHED* ]]
ok $? "the page's log shows the states in order: $got"
[ "$(jq -r .state <<< "$s")" = UDP_ESTABLISHED ] && [[ "$(jq -r .rtt <<< "$s")" =~ ^[0-9]+$ ]] \
    && [[ "$(jq -r .cipher <<< "$s")" =~ ^(aes256gcm|chacha20poly1305)$ ]]
ok $? "the page shows state $(jq -r .state <<< "$s"), rtt $(jq -r .rtt <<< "$s") ms, cipher $(jq -r .cipher <<< "$s")"
[ "$(jq -r '.echoes | length' <<< "$s")" = 1 ] && [ "$(jq -r '.echoes[0]' <<< "$s")" = "$MSG" ]
ok $? "the page shows the echo, equal to what it sent: '$(jq -r '.echoes[0] // "nothing"' <<< "$s")'"
jq -e --arg t "$BRIDGE_TOKEN" --arg k "$(cat "$T/peer1.key")" \
    '(.text + .href) as $all | ($all | contains($t) | not) and ($all | contains($k) | not) and (.href | contains("#") | not)' \
    <<< "$s" >/dev/null
ok $? "neither the token nor the key is in the page's text (states, log) or its address once read ($(jq -r .href <<< "$s"))"

# Disconnect
wd_click "#disconnect"
wait_for $((3 * SLOW)) state_is CLOSED
s=$(shown)
[ "$(jq -r .state <<< "$s")" = CLOSED ] && [[ "$(jq -r .close <<< "$s")" == 1000* ]]
ok $? "Disconnect: the page shows $(jq -r .state <<< "$s"), close $(jq -r .close <<< "$s")"
# The peer's side (its counters, printed on SIGTERM): exactly the message, echoed
grid_kill "$FAR_PID"
c=$(grep '^{' "$T/peer1.log" | tail -1)
[ "$(jq -r '"\(.data_in) \(.bytes_in) \(.echoed) \(.invalid)"' <<< "$c")" = "1 ${#MSG} 1 0" ]
ok $? "the peer received the one message (${#MSG} bytes) and echoed it: $(jq -c '{data_in, bytes_in, echoed, invalid}' <<< "$c")"

# New key: 32 random bytes in base64, and the command that gives them to the peer
wd_click "#newkey"; k1=$(shown | jq -r .key)
wd_click "#newkey"; s=$(shown); k2=$(jq -r .key <<< "$s")
[ "$(printf %s "$k1" | base64 -d 2>/dev/null | wc -c)" = 32 ] && [ "$(printf %s "$k2" | base64 -d 2>/dev/null | wc -c)" = 32 ] \
    && [ "$k1" != "$k2" ] && jq -e --arg k "$k2" '.hint | contains($k)' <<< "$s" >/dev/null
ok $? "New key: the base64 of 32 bytes, another each click, shown with the peer's command"

# ---------------------------------------------------------------------------
# A wrong token: refused before the upgrade; the browser sees only 1006
before=$(refused_token)
open_page "$(fragment "not-$BRIDGE_TOKEN" "$FAR:5000" "$T/peer1.key")"
wait_for $((5 * SLOW)) state_is REFUSED
s=$(shown)
[ "$(jq -r .state <<< "$s")" = REFUSED ] && [[ "$(jq -r .close <<< "$s")" == "1006 refused before the upgrade"* ]] \
    && ! jq -r '.log[]' <<< "$s" | grep -q CONNECTED
ok $? "a wrong token: the page shows $(jq -r .state <<< "$s"), close $(jq -r .close <<< "$s" | cut -c1-40)..., never CONNECTED"
[ "$(refused_token)" = $((before + 1)) ]
ok $? "the bridge counted it as a bad token (refused_token $before -> $(refused_token))"

# A message over bridge.max_message (1204 bytes): ERROR, then the close, shown
far_peer peer2 5001
big=$(printf '%*s' 1205 '' | tr ' ' x)
open_page "$(fragment "$BRIDGE_TOKEN" "$FAR:5001" "$T/peer2.key" "$big")"
wait_for $((10 * SLOW)) state_is ERROR
wait_for $((2 * SLOW)) eval '[[ "$(shown | jq -r .close)" != - ]]'
s=$(shown)
[ "$(states)" = CONNECTED,UDP_WAITING,UDP_ESTABLISHED,ERROR ] \
    && [[ "$(jq -r .close <<< "$s")" == "4413 message too large"* ]]
ok $? "a 1205-byte message: the page shows $(states), close $(jq -r .close <<< "$s")"

! grep -qF "$BRIDGE_TOKEN" "$T/srv.log"
ok $? "the token is in none of the server's logs"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
