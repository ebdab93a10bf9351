# tap_lib.sh: what every integration script needs to speak TAP (sourced, not run).
#   ok STATUS DESCRIPTION     one test point; counts failures in FAILED
#   now_ms                    monotonic enough milliseconds for timing
#   wait_for SECONDS CMD...   polls CMD every WAIT_STEP seconds (0.05) until it
#                             succeeds or the deadline passes: never a fixed sleep
#   seccomp_check DIR...      (in a test's cleanup) one more, failed, test point
#                             when a log under DIR says a service's seccomp filter
#                             refused a system call; silent when none did
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

# Every refusal of a service's seccomp filter (libbus/bus_seccomp.h) is a system
# call missing from schemas/syscalls.def: the call failed with EPERM and the
# service went on with an error it should never have had. The line is in the
# service's stderr, so in the test's logs; this turns every integration test into
# a detector. After the plan, the extra "not ok" also fails the TAP driver.
seccomp_check () {
    local hits
    hits=$(grep -rh "seccomp refused" "$@" 2>/dev/null | sed 's/^[0-9:.]* error //' | sort | uniq -c | head -20)
    [ -z "$hits" ] && return 0
    ok 1 "no service's seccomp filter refused a system call"
    echo "$hits" | sed 's/^/#   /'
    return 1
}
