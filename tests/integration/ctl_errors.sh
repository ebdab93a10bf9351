#!/bin/sh
# ctl_errors: bifrostctl says clearly what is wrong (bifrostd not running,
# unknown service, bad arguments, no broker for tap) and exits 1; restart
# gives a failed service a fresh start; stop stops bifrostd.
. "$(dirname "$0")/sup_lib.sh"
echo "1..21"

# expect_fail NAME TEXT COMMAND...: exit 1 and TEXT on stderr
expect_fail () {
    _name=$1; _text=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"
    _rc=$?
    [ "$_rc" -eq 1 ] && grep -qF -- "$_text" "$T/err"
    ok $? "$_name: exit 1 and \"$_text\" (exit $_rc: $(head -1 "$T/err"))"
}

expect_fail "status without bifrostd" "bifrostd is not running (no control socket at $RUN/control.ipc)" ctl status
expect_fail "stop without bifrostd" "bifrostd is not running" ctl stop
expect_fail "tap without a broker" "the broker is not running (no tap socket at $RUN/tap.ipc)" ctl tap 'peer.*' --count 1 --timeout 1

# A socket file nobody answers on (a bifrostd that hangs): no answer within 3 s
mkdir -p "$RUN"
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)" "$RUN/control.ipc" 2>/dev/null
if [ -S "$RUN/control.ipc" ]; then
    T0=$(now_ms)
    expect_fail "status when nobody answers" "no answer from bifrostd within 3 s" ctl status
    echo "# gave up after $(( $(now_ms) - T0 )) ms"
    rm -f "$RUN/control.ipc"
else
    ok 0 "# SKIP cannot create a dead unix socket here"
fi

cat > "$T/ctl.cfg" <<EOF
run_dir = "$RUN";
supervisor: { backoff_min = "100ms"; backoff_max = "100ms"; };
services = (
  { name = "hb"; exec = "$T/hb.sh"; },
  { name = "flaky"; exec = "$T/flaky.sh"; intensity = 1; period = "30s"; }
);
EOF
# flaky exits 1 while the file "broken" exists, else runs fine
cat > "$T/flaky.sh" <<EOF
#!/bin/sh
[ -e "$T/broken" ] && exit 1
exec "$T/hb.sh"
EOF
chmod +x "$T/flaky.sh"
touch "$T/broken"
start_bifrostd "$T/ctl.cfg"
wait_for 5 is_state hb.1 ready
ok $? "bifrostd runs hb"
remember "$(field hb.1 2)"

expect_fail "scale of an unknown service" "no service named 'ghost'" ctl scale ghost 2
expect_fail "restart of an unknown service" "no service named 'ghost'" ctl restart ghost
expect_fail "status of an unknown service" "no service named 'ghost'" ctl status ghost
expect_fail "scale to too many instances" "instance count must be 0 to 64" ctl scale hb 65
# -c FILE reads run_dir from the config
"$BIFROSTCTL" -c "$T/ctl.cfg" status | grep -q "^hb.1 .* ready"
ok $? "bifrostctl -c FILE finds bifrostd through run_dir"
ctl status --json > "$T/json"
[ "$(wc -l < "$T/json")" -eq 1 ] && grep -q '^{"pid":[0-9]*,.*"instances":\[{"service":"hb","instance":"hb.1","pid":[1-9]' "$T/json"
ok $? "status --json is one JSON object with every instance"

wait_for 5 is_state flaky.1 failed
ok $? "flaky is given up while broken"
rm -f "$T/broken"
ctl restart flaky | grep -q "flaky: restarting"
ok $? "bifrostctl restart flaky answers"
wait_for 5 is_state flaky.1 ready
ok $? "restart gives a failed service a fresh start: READY"
remember "$(field flaky.1 2)"

# The node commands with no bus: one clear line, exit 1
NOBUS="$T/no-bus-here"
for cmd in peers key; do
    out=$("$BIFROSTCTL" -r "$NOBUS" $cmd 2>&1); rc=$?
    [ "$rc" -eq 1 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] && echo "$out" | grep -q "the bus is not running (no socket at $NOBUS/bus.ipc)"
    ok $? "bifrostctl $cmd without a bus: one clear error, exit 1 ($out)"
done
out=$("${BIFROST_LIBEXEC_DIR}/bifrost-crypto" --genkey "$T/no/such/dir/node.key" 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -q "cannot create key file $T/no/such/dir/node.key: No such file or directory"
ok $? "bifrost-crypto --genkey into a missing directory: clear error, exit 1"

# Only root with root's powers asks bifrostd (issue 16): a process of uid 0 that
# dropped its capabilities, as every service did, is refused
out=$(setpriv --bounding-set=-all --inh-caps=-all "$BIFROSTCTL" -r "$RUN" status 2>&1); rc=$?
[ "$rc" -ne 0 ] && echo "$out" | grep -q "only root's bifrostctl may ask bifrostd"
ok $? "bifrostctl without capabilities is refused by bifrostd (exit $rc: $(echo "$out" | head -1))"
ctl status >/dev/null 2>&1
ok $? "root's bifrostctl still is answered"

ctl stop | grep -q "stopping every service"
ok $? "bifrostctl stop answers"
wait_for 5 sh -c "! kill -0 $BPID"
ok $? "bifrostd is gone after bifrostctl stop"
wait "$BPID"
BPID=
finish
