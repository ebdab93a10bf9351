#!/bin/sh
# sup_stop: SIGTERM stops every service in reverse dependency order and leaves
# no process behind (helpers in a child's process group included); a SIGKILLed
# bifrostd leaves no orphan either; on_give_up = "stop_all" stops the whole tree.
. "$(dirname "$0")/sup_lib.sh"
echo "1..11"

# A service whose helper (the sleep) is a grandchild of bifrostd
cat > "$T/stop.cfg" <<EOF
supervisor: { backoff_min = "200ms"; stop_timeout = "1s"; };
services = (
  { name = "web"; exec = "$T/hb.sh"; depends = ["base"]; instances = 2; },
  { name = "base"; exec = "$T/hb.sh"; },
  { name = "stubborn"; exec = "/bin/sh"; depends = ["base"];
    args = ["-c", "trap '' TERM; echo READY >&\$BIFROST_READY_FD; while :; do echo HB >&\$BIFROST_READY_FD; sleep 0.2; done"]; }
);
EOF

# pids_of_groups PID...: every process in the process groups of PIDs
pids_of_groups () {
    for g in "$@"; do pgrep -g "$g"; done | sort -u | tr '\n' ' '
}
all_ready () {
    for i in base.1 web.1 web.2 stubborn.1; do is_state $i ready || return 1; done
}

start_bifrostd "$T/stop.cfg"
wait_for 5 all_ready
ok $? "every service is READY"
# base starts first (web and stubborn depend on it)
BASE_LINE=$(grep -n "base.1: ready" "$LOG" | head -1 | cut -d: -f1)
WEB_LINE=$(grep -n "web.1: started" "$LOG" | head -1 | cut -d: -f1)
[ -n "$BASE_LINE" ] && [ -n "$WEB_LINE" ] && [ "$BASE_LINE" -lt "$WEB_LINE" ]
ok $? "web is started only after base is READY"
CHILDREN="$(field base.1 2) $(field web.1 2) $(field web.2 2) $(field stubborn.1 2)"
remember $CHILDREN
EVERY=$(pids_of_groups $CHILDREN)
remember $EVERY
echo "# children: $CHILDREN; with their helpers: $EVERY"

T0=$(now_ms)
kill -TERM "$BPID"
wait_for 5 sh -c "! kill -0 $BPID"
ok $? "SIGTERM: bifrostd exits"
wait "$BPID"
RC=$?
BPID=
T1=$(now_ms)
echo "# SIGTERM -> bifrostd gone: $((T1 - T0)) ms (stubborn ignores SIGTERM: stop_timeout 1 s, then SIGKILL)"
[ "$RC" -eq 0 ]
ok $? "bifrostd exit code is 0 after SIGTERM (got $RC)"
LEFT=
for p in $EVERY; do alive "$p" && LEFT="$LEFT $p"; done
[ -z "$LEFT" ]
ok $? "no process left of $(echo $EVERY | wc -w) (children and their helpers)${LEFT:+: left$LEFT}"
grep -q "stubborn.1: still running .* after SIGTERM, sending SIGKILL" "$LOG"
ok $? "a child that ignores SIGTERM is SIGKILLed after stop_timeout"
WEB_STOP=$(grep -n "web.1: stopping" "$LOG" | cut -d: -f1)
BASE_STOP=$(grep -n "base.1: stopping" "$LOG" | cut -d: -f1)
WEB_END=$(grep -n "web.1: pid .* ended" "$LOG" | tail -1 | cut -d: -f1)
[ -n "$BASE_STOP" ] && [ -n "$WEB_END" ] && [ "$WEB_STOP" -lt "$BASE_STOP" ] && [ "$WEB_END" -lt "$BASE_STOP" ]
ok $? "reverse order: base is asked to stop only after web has exited"
[ ! -e "$RUN/control.ipc" ]
ok $? "the control socket is removed"

# bifrostd killed with SIGKILL: PR_SET_PDEATHSIG takes the children down too
start_bifrostd "$T/stop.cfg"
wait_for 5 all_ready
CHILDREN="$(field base.1 2) $(field web.1 2) $(field web.2 2) $(field stubborn.1 2)"
remember $CHILDREN
kill -KILL "$BPID"
wait "$BPID" 2>/dev/null
BPID=
none_alive () { for p in "$@"; do alive "$p" && return 1; done; return 0; }
wait_for 3 none_alive $CHILDREN
ok $? "SIGKILL of bifrostd: every child dies with it (no orphan)"

# on_give_up = "stop_all": the whole tree stops, bifrostd exits non-zero
cat > "$T/stopall.cfg" <<EOF
supervisor: { backoff_min = "100ms"; backoff_max = "200ms"; };
services = (
  { name = "good"; exec = "$T/hb.sh"; },
  { name = "bad"; exec = "$T/exit.sh"; args = ["3"]; intensity = 2; period = "10s"; on_give_up = "stop_all"; }
);
EOF
start_bifrostd "$T/stopall.cfg"
wait_for 5 is_state good.1 ready
GOOD=$(field good.1 2)
remember "$GOOD"
wait_for 8 sh -c "! kill -0 $BPID"
wait "$BPID"
RC=$?
BPID=
[ "$RC" -eq 1 ]
ok $? "stop_all: bifrostd stops everything and exits 1 (got $RC)"
! alive "$GOOD" && grep -q "bad: gave up: .*stopping everything" "$LOG"
ok $? "stop_all: the healthy service is stopped too and the log says why"
finish
