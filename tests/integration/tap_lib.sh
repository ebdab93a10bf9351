# tap_lib.sh: what every integration script needs to speak TAP (sourced, not run).
#   ok STATUS DESCRIPTION     one test point; counts failures in FAILED
#   now_ms                    monotonic enough milliseconds for timing
#   wait_for SECONDS CMD...   polls CMD every WAIT_STEP seconds (0.05) until it
#                             succeeds or the deadline passes: never a fixed sleep
TESTNO=${TESTNO:-0}
FAILED=${FAILED:-0}
WAIT_STEP=${WAIT_STEP:-0.05}

ok () {
    TESTNO=$((TESTNO + 1))
    if [ "$1" -eq 0 ]; then
        echo "ok $TESTNO - $2"
    else
        echo "not ok $TESTNO - $2"
        FAILED=$((FAILED + 1))
    fi
}

now_ms () { echo $(( $(date +%s%N) / 1000000 )); }

wait_for () {
    _deadline=$(( $(now_ms) + $1 * 1000 ))
    shift
    while [ "$(now_ms)" -lt "$_deadline" ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep "$WAIT_STEP"
    done
    return 1
}
