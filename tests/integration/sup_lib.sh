# sup_lib.sh: shared helpers of the supervisor and bifrostctl integration tests
# (sourced, not run). Real bifrostd, real children, real signals; everything
# lives in a temp directory and every process started is killed on exit.

set -u
T=$(mktemp -d /tmp/sup-test-XXXXXX)
chmod 755 "$T"      # the services pass it under their own uids (docs/supervisor.md)
RUN="$T/run"
LOG="$T/bifrostd.log"
BPID=
TESTNO=0
FAILED=0
PIDS_SEEN=

BIFROSTD=${BIFROST_BUILDDIR:+$BIFROST_BUILDDIR/supervisor/}bifrostd
BIFROSTCTL=${BIFROST_BUILDDIR:+$BIFROST_BUILDDIR/tools/}bifrostctl

cleanup () {
    if [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; then
        kill -KILL "$BPID" 2>/dev/null
        wait "$BPID" 2>/dev/null
    fi
    for p in $PIDS_SEEN; do
        kill -KILL "$p" 2>/dev/null
    done
    if [ "$FAILED" -ne 0 ] && [ -f "$LOG" ]; then
        echo "# bifrostd log:"
        sed 's/^/#   /' "$LOG"
    fi
    # What a helper program said on stderr (a probe that aborted, for one)
    if [ "$FAILED" -ne 0 ]; then
        for f in "$T"/*.err; do
            [ -s "$f" ] && { echo "# $f:"; tail -40 "$f" | sed 's/^/#   /'; }
        done
    fi
    seccomp_check "$T"
    # KEEP_T=/some/dir keeps a copy of the test's folder (logs, configs) for a look
    [ -n "${KEEP_T:-}" ] && cp -r "$T" "$KEEP_T"; rm -rf "$T"
}
trap cleanup EXIT

. "${BIFROST_SRCDIR:-.}/tests/integration/tap_lib.sh"

# A service that becomes READY at once and heartbeats every 200 ms
cat > "$T/hb.sh" <<'EOF'
#!/bin/sh
echo READY >&"$BIFROST_READY_FD"
while :; do echo HB >&"$BIFROST_READY_FD"; sleep 0.2; done
EOF
# Exits with the code given as argument, without ever becoming READY
cat > "$T/exit.sh" <<'EOF'
#!/bin/sh
exit "$1"
EOF
chmod +x "$T/hb.sh" "$T/exit.sh"

ctl () { "$BIFROSTCTL" -r "$RUN" "$@"; }

# start_bifrostd CONFIG: runs bifrostd in the background, waits for its socket
start_bifrostd () {
    "$BIFROSTD" -c "$1" -r "$RUN" >>"$LOG" 2>&1 &
    BPID=$!
    wait_for 5 test -S "$RUN/control.ipc"
}


# field INSTANCE COLUMN: a column of `bifrostctl status` (2 pid, 3 state, 5 restarts)
field () { ctl status 2>/dev/null | awk -v i="$1" -v c="$2" '$1 == i { print $c }'; }
reason () { ctl status 2>/dev/null | awk -v i="$1" '$1 == i { $1=$2=$3=$4=$5=""; sub(/^ +/, ""); print }'; }
is_state () { [ "$(field "$1" 3)" = "$2" ]; }
remember () { PIDS_SEEN="$PIDS_SEEN $*"; }
# ready_pid INSTANCE: pid when READY, else nothing
ready_pid () { ctl status 2>/dev/null | awk -v i="$1" '$1 == i && $3 == "ready" { print $2 }'; }
# new_ready INSTANCE OLDPID: READY with a pid other than OLDPID
new_ready () { _p=$(ready_pid "$1"); [ -n "$_p" ] && [ "$_p" != "$2" ]; }
alive () { kill -0 "$1" 2>/dev/null && [ "$(cut -d' ' -f3 /proc/"$1"/stat 2>/dev/null)" != Z ]; }

finish () {
    [ "$FAILED" -eq 0 ]
}
