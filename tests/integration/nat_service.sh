#!/bin/sh
# nat_service.sh: the real bifrost-nat process against a real broker, with
# services/nat/nat_pipe_probe playing crypto (pipes + bus service "crypto") and the
# peers (UDP sockets on 127.0.0.1). Checks config errors, the datagram path both
# ways with endpoint learning, drops, dialling, kill -9 and restart, SIGTERM; and
# measures datagrams/s from UDP to the nat-crypto pipe.
set -u
B=${BIFROST_BUILDDIR:-$(pwd)}
LIBEXEC=${BIFROST_LIBEXEC_DIR:-$B/libexec}
NAT="$LIBEXEC/bifrost-nat"
BUS="$LIBEXEC/bifrost-bus"
PROBE="$B/services/nat/nat_pipe_probe"
T=$(mktemp -d /tmp/nat-service-test-XXXXXX)
chmod 755 "$T"      # the services pass it under their own uids (docs/supervisor.md)
RUN="$T/run"
mkdir -m 0700 "$RUN"
TESTNO=0
FAILED=0
BUSPID= NATPID= REFPID= RECVPID=

cleanup () {
    for p in $NATPID $REFPID $RECVPID $BUSPID; do
        kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    if [ "$FAILED" -ne 0 ]; then
        for f in "$T"/*.log; do
            [ -f "$f" ] || continue
            echo "# $f:"
            sed 's/^/#   /' "$f" | tail -40
        done
    fi
    seccomp_check "$T"
    rm -rf "$T"
}
trap cleanup EXIT

. "${BIFROST_SRCDIR:-.}/tests/integration/tap_lib.sh"


# wait_exit SECONDS PID: waits until PID has exited; its status in $EXIT
wait_exit () {
    _deadline=$(( $(now_ms) + $1 * 1000 ))
    while kill -0 "$2" 2>/dev/null && [ "$(now_ms)" -lt "$_deadline" ]; do
        sleep 0.05
    done
    if kill -0 "$2" 2>/dev/null; then
        EXIT=999
        return 1
    fi
    wait "$2"
    EXIT=$?
    return 0
}

# (foreground only: for a background job $! would be the subshell, not the probe)
probe () { "$PROBE" -r "$RUN" "$@"; }

echo "1..19"

KEY0="AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
KEY1="HxAREhMUFRYXGBkaGxwdHh8AAQIDBAUGBwgJCgsMDQ4="

# --- check-config: every problem with file:line, exit 78 ---------------------
cat > "$T/bad.cfg" <<EOF
connection = {
    listen = "0.0.0.0:70000";
    keepalive_intervall = "25s";
    connect_timeout = "soon";
};
peers = (
    { name = "alice"; public_key = "$KEY0";
      endpoint = "[2001:db8::1:51820"; }
);
EOF
"$NAT" --check-config -c "$T/bad.cfg" >"$T/check.out" 2>&1
RC=$?
grep -q "bad.cfg:2: connection.listen: port 70000 out of range" "$T/check.out" \
 && grep -q "bad.cfg:3: connection.keepalive_intervall: unknown setting" "$T/check.out" \
 && grep -q "bad.cfg:4: connection.connect_timeout" "$T/check.out" \
 && grep -q "bad.cfg:8: peers.\[0\].endpoint: missing ']'" "$T/check.out"
ok $(( $? == 0 && RC == 78 ? 0 : 1 )) "--check-config reports every error with file:line and exits 78 (got $RC)"
[ $RC -eq 78 ] || sed 's/^/#   /' "$T/check.out"

printf 'connection = { listen = "127.0.0.1:1"; };\npeers = ( { name = "x"; public_key = "%s"; direct = true; } );\n' \
    "$KEY0" > "$T/bad2.cfg"
"$NAT" --check-config -c "$T/bad2.cfg" >"$T/check2.out" 2>&1
RC=$?
grep -q "bad2.cfg:2: peers.\[0\].direct: direct = true needs an endpoint" "$T/check2.out"
ok $(( $? == 0 && RC == 78 ? 0 : 1 )) "direct = true without an endpoint is a config error (exit $RC)"

# --- a broker, bob's socket, the stand-in crypto, and nat ---------------------
# The probe plays services of the node, which the broker's sender policy
# (schemas/senders.def) rightly refuses: the broker runs without it here
BIFROST_BUS_UNCHECKED=1 "$BUS" -r "$RUN" >"$T/bus.log" 2>&1 &
BUSPID=$!
wait_for 5 test -S "$RUN/bus.ipc"

"$PROBE" -r "$RUN" recv "$T/bobport" 30 >"$T/recv.log" 2>&1 &
RECVPID=$!
wait_for 5 test -s "$T/bobport"
BOBPORT=$(cat "$T/bobport")
NATPORT=$(probe freeport)

cat > "$T/node.cfg" <<EOF
connection = {
    listen = "127.0.0.1:$NATPORT";
    keepalive_interval = "25s";
    direct_connect = true;
    connect_timeout = "30s";
};
device = { name = "ignored-by-nat"; };
peers = (
    { name = "alice"; public_key = "$KEY0"; allowed_ips = [ "10.100.0.2/32" ]; },
    { name = "bob"; public_key = "$KEY1"; endpoint = "127.0.0.1:$BOBPORT"; direct = true; }
);
EOF
"$NAT" --check-config -c "$T/node.cfg" >"$T/check3.out" 2>&1
ok $? "a good config passes --check-config"

"$PROBE" -r "$RUN" reflect >"$T/reflect.log" 2>&1 &
REFPID=$!
wait_for 5 grep -q ready "$T/reflect.log"

start_nat () {
    "$NAT" -c "$T/node.cfg" -r "$RUN" >>"$T/nat.log" 2>&1 &
    NATPID=$!
}
start_nat
wait_for 5 probe status
ok $? "bifrost-nat answers nat.status"
probe status >"$T/status.out" 2>&1
grep -q "^listen_port=$NATPORT$" "$T/status.out"
ok $? "it listens on the configured port $NATPORT"

# --- the datagram path -------------------------------------------------------
probe ping "$NATPORT" >"$T/ping.log" 2>&1
ok $? "UDP -> nat-crypto (handle) -> ENDPOINT + packet on crypto-nat -> back to the sender's address ($(cat "$T/ping.log"))"

probe status >"$T/status.out" 2>&1
grep -q "^peer.0=alice state=up endpoint=127.0.0.1:" "$T/status.out"
ok $? "the ENDPOINT record made alice up at the sender's address"

probe malformed "$NATPORT" >"$T/malformed.log" 2>&1
ok $? "malformed datagrams (short, bad type, bad reserved bytes) are dropped and counted, never sent to crypto"

# --- dialling a direct peer --------------------------------------------------
wait_for 10 grep -q "^dial 1 bob 127.0.0.1:$BOBPORT " "$T/reflect.log"
ok $? "bob (direct = true) is dialled: crypto gets nat.dial {1, bob, 127.0.0.1:$BOBPORT}"
wait_exit 10 "$RECVPID"
ok $EXIT "the initiation crypto sends for bob reaches bob's endpoint"
RECVPID=
grep -q "^dial 0 " "$T/reflect.log"
ok $(( $? == 0 ? 1 : 0 )) "alice (no permission) is never dialled"

# --- kill -9 and restart: the pipes reconnect, traffic flows again ------------
kill -KILL "$NATPID"
wait "$NATPID" 2>/dev/null
T0=$(now_ms)
start_nat
probe ping "$NATPORT" >"$T/ping2.log" 2>&1
RC=$?
ok $RC "after kill -9 and restart, traffic flows again through the same stand-in crypto ($(( $(now_ms) - T0 )) ms from restart to echo)"
probe status >"$T/status.out" 2>&1
grep -q "^peer.0=alice state=up" "$T/status.out"
ok $? "the restarted nat learned alice's endpoint again from crypto"

# --- SIGTERM: clean stop -----------------------------------------------------
# (its pipe's socket lives in nat's own directory, the one place its sandbox
# lets it create files: docs/data-plane.md)
test -S "$RUN/nat/pipe-crypto-nat.ipc" && [ "$(stat -c %a "$RUN/nat")" = 700 ] && test ! -e "$RUN/pipe-crypto-nat.ipc"
ok $? "nat listens on crypto-nat at \$RUN/nat/pipe-crypto-nat.ipc, in a 0700 directory of its own"
kill -TERM "$NATPID"
wait_exit 5 "$NATPID"
ok $EXIT "SIGTERM stops bifrost-nat cleanly (exit $EXIT)"
NATPID=
test ! -e "$RUN/nat/pipe-crypto-nat.ipc"
ok $? "its pipe socket file is gone"

# --- port in use: a clear error, not a crash ---------------------------------
"$NAT" -c "$T/node.cfg" -r "$RUN" >"$T/nat.log" 2>&1 &
NATPID=$!
wait_for 5 probe status
"$NAT" -c "$T/node.cfg" -r "$RUN" >"$T/nat2.log" 2>&1
RC=$?
grep -q "$NATPORT" "$T/nat2.log"
ok $(( $? == 0 && RC == 78 ? 0 : 1 )) "a second nat on the same port says why and exits 78 (got $RC)"

# --- measurement: datagrams/s from UDP to nat-crypto -------------------------
kill -TERM "$REFPID"
wait_exit 5 "$REFPID"
ok $EXIT "the stand-in crypto stops on SIGTERM"
REFPID=
probe bench "$NATPORT" 1 1400 >"$T/bench.log" 2>&1
ok $? "nat moves 1400-byte datagrams from UDP to nat-crypto: $(cat "$T/bench.log")"

exit 0
