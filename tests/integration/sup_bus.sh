#!/bin/sh
# sup_bus: bifrostd with the real broker (bifrost-bus) and real bus services
# (bifrost-testsvc): READY over the inherited fd, restart after kill -9, the
# services survive a broker restart, bifrostctl tap prints the bus as JSON, and
# a child's environment holds only what its own group names (pass_env): the
# secrets in bifrostd's environment reach no other child.
. "$(dirname "$0")/sup_lib.sh"
echo "1..11"

LIBEXEC=${BIFROST_LIBEXEC_DIR:-${BIFROST_BUILDDIR:-.}/libexec}
if [ ! -x "$LIBEXEC/bifrost-bus" ] || [ ! -x "$LIBEXEC/bifrost-testsvc" ]; then
    for i in 1 2 3 4 5 6 7 8 9 10 11; do echo "ok $i # SKIP bifrost-bus or bifrost-testsvc not built in $LIBEXEC"; done
    exit 0
fi
export BIFROST_LIBEXEC_DIR="$LIBEXEC"

cat > "$T/bus.cfg" <<EOF
supervisor: { backoff_min = "200ms"; stop_timeout = "2s"; };
services = (
  { name = "bus"; exec = "bifrost-bus"; },
  { name = "echo"; exec = "bifrost-testsvc"; depends = ["bus"]; instances = 2;
    pass_env = ["SUP_TEST_PASSED"]; }
);
EOF
# Secrets in bifrostd's environment, as on a server (examples/server.cfg)
export BIFROST_ADMIN_TOKEN=admin-$$-secret TURN_SECRET=turn-$$-secret SUP_TEST_PASSED=passed-$$
all_ready () { for i in bus.1 echo.1 echo.2; do is_state $i ready || return 1; done; }
start_bifrostd "$T/bus.cfg"
T0=$(now_ms)
wait_for 10 all_ready
ok $? "bus.1, echo.1 and echo.2 are READY (exec found through BIFROST_LIBEXEC_DIR)"
echo "# bifrostd start -> every service READY: $(( $(now_ms) - T0 )) ms"
BUS=$(field bus.1 2); E1=$(field echo.1 2); E2=$(field echo.2 2)
remember "$BUS" "$E1" "$E2"
# /proc/PID/environ of every child: no secret it was not given
environ () { tr '\0' '\n' < /proc/"$1"/environ; }
LEAKS=
for p in "$BUS" "$E1" "$E2"; do
    environ "$p" | grep -q "secret" && LEAKS="$LEAKS $p"
done
[ -z "$LEAKS" ] && environ "$BUS" | grep -q '^PATH=' && environ "$BUS" | grep -q '^BIFROST_SERVICE=bus$'
ok $? "no child's environment holds BIFROST_ADMIN_TOKEN or TURN_SECRET${LEAKS:+ (leaked to$LEAKS)}"
environ "$E1" | grep -q "^SUP_TEST_PASSED=passed-$$\$" && environ "$E2" | grep -q "^SUP_TEST_PASSED=" \
    && ! environ "$BUS" | grep -q "^SUP_TEST_PASSED="
ok $? "pass_env: echo gets SUP_TEST_PASSED, bus (which does not name it) does not"
BUS_READY=$(grep -n "bus.1: ready" "$LOG" | head -1 | cut -d: -f1)
ECHO_START=$(grep -n "echo.1: started" "$LOG" | head -1 | cut -d: -f1)
[ -n "$BUS_READY" ] && [ -n "$ECHO_START" ] && [ "$BUS_READY" -lt "$ECHO_START" ]
ok $? "echo starts only after bus is READY"

# tap: one decoded JSON line per bus message (services say bus.hello every heartbeat)
ctl tap 'bus.*' --count 2 --timeout 5 > "$T/tap" 2>"$T/tap.err"
[ "$(grep -c '^{.*"type":"bus\.' "$T/tap")" -eq 2 ]
ok $? "bifrostctl tap 'bus.*' prints decoded JSON lines ($(head -c 120 "$T/tap"))"
ctl tap 'nothing.*' --timeout 1 > "$T/tap2" 2>&1
[ $? -eq 0 ] && [ ! -s "$T/tap2" ]
ok $? "tap with a pattern nothing matches prints nothing and ends at --timeout"

T0=$(now_ms)
kill -KILL "$E1"
wait_for 5 new_ready echo.1 "$E1"
ok $? "kill -9 of echo.1 (a real bus service): a new pid is READY"
echo "# kill -9 -> echo.1 READY again: $(( $(now_ms) - T0 )) ms (backoff_min 200 ms)"
E1=$(field echo.1 2)
remember "$E1"

kill -KILL "$BUS"
wait_for 5 new_ready bus.1 "$BUS"
ok $? "kill -9 of the broker: bus.1 is back and READY"
remember "$(field bus.1 2)"
[ "$(field echo.1 2)" = "$E1" ] && [ "$(field echo.2 2)" = "$E2" ] && is_state echo.1 ready && is_state echo.2 ready
ok $? "the echo instances survive the broker restart (same pids, still READY)"

EVERY="$(field bus.1 2) $E1 $E2"
kill -TERM "$BPID"
wait "$BPID"
RC=$?
BPID=
[ "$RC" -eq 0 ]
ok $? "SIGTERM: bifrostd exits 0"
LEFT=
for p in $EVERY; do alive "$p" && LEFT="$LEFT $p"; done
[ -z "$LEFT" ]
ok $? "no service process left${LEFT:+: left$LEFT}"
finish
