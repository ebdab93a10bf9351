#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root):
#   1. installs what is missing, 2. builds with -Werror and runs `make check`,
#   3. builds with ASan+UBSan and runs `make check` again, 4. runs the unit self
#   tests under valgrind, 5. fuzzes every decoder briefly with libFuzzer,
#   6. `make distcheck` (the release tarball builds and passes on its own),
#   7. the Debian packages: built from that tarball, lintian, installed, the node
#      run as bifrost.service runs it, joined to a network, purged.
# Ends with "N passed, M failed" and exits non-zero when anything failed.
# Environment: FUZZ_SECONDS (default 3 per target; `make fuzz` runs long ones), SKIP_DISTCHECK=1,
# SKIP_ASAN=1, SKIP_PACKAGE=1.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)
passed=0
failed=0
summary=""

note () { summary="$summary$1"$'\n'; echo "== $1"; }

# Adds the counts of an automake test-suite.log (TAP: one per test point).
count_suite () {
    local log=$1 label=$2
    if [ ! -f "$log" ]; then
        failed=$((failed + 1)); note "$label: no test-suite.log (build failed?)"; return
    fi
    local p f e
    p=$(awk '/^# PASS:/ {print $3}' "$log" | head -1)
    f=$(awk '/^# FAIL:/ {print $3}' "$log" | head -1)
    e=$(awk '/^# ERROR:/ {print $3}' "$log" | head -1)
    x=$(awk '/^# XPASS:/ {print $3}' "$log" | head -1)
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${e:-0} + ${x:-0}))
    note "$label: ${p:-0} passed, $(( ${f:-0} + ${e:-0} + ${x:-0} )) failed"
    if [ "$(( ${f:-0} + ${e:-0} + ${x:-0} ))" != 0 ]; then
        grep -E '^(FAIL|ERROR|XPASS):' "$log" | head -40
        # Show the logs of what failed, so CI output says why
        for t in $(grep -E '^(FAIL|ERROR):' "$log" | awk '{print $2}' | sort -u); do
            echo "---- $(dirname "$log")/$t.log"; tail -60 "$(dirname "$log")/$t.log" 2>/dev/null
        done
    fi
}

step () {  # step LABEL COMMAND...: one pass or one failure
    local label=$1; shift
    if "$@"; then passed=$((passed + 1)); note "$label: ok"
    else failed=$((failed + 1)); note "$label: FAILED"; fi
}

./scripts/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
autoreconf -fi >/dev/null 2>&1 || { autoreconf -fi; echo "0 passed, 1 failed"; exit 1; }

build () {  # build DIR CONFIGURE-ARGS...
    local dir=$1; shift
    rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" &&
    "$top/configure" -q "$@" && make -j"$jobs" >make.out 2>&1 || { tail -40 make.out 2>/dev/null; cd "$top"; return 1; }
    cd "$top"
}

# 1. Normal build with -Werror, then the suite
t0=$(date +%s)
step "build (gcc -Werror)" build build/release
(cd build/release && make -j"$jobs" check >check.out 2>&1)
count_suite build/release/test-suite.log "make check"
echo "   ($(( $(date +%s) - t0 )) s)"

# 2. The same suite built with AddressSanitizer + UndefinedBehaviorSanitizer
if [ "${SKIP_ASAN:-0}" != 1 ]; then
    t0=$(date +%s)
    step "build (ASan+UBSan)" build build/asan --enable-sanitizers
    (cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        make -j"$jobs" check >check.out 2>&1)
    count_suite build/asan/test-suite.log "make check (ASan+UBSan)"
    echo "   ($(( $(date +%s) - t0 )) s)"
fi

# 3 and 4 side by side (valgrind runs one self test at a time, a fuzzer is one
# process: together they keep both cores busy):
# 3. Unit self tests under valgrind: no leaks, no invalid access
# 4. libFuzzer on every decoder of untrusted bytes, briefly (long runs: make fuzz)
t0=$(date +%s)
fuzz_seconds=${FUZZ_SECONDS:-3}
(
    if build build/fuzz --enable-fuzzing CC=clang; then
        make -C build/fuzz -s fuzz FUZZ_SECONDS="$fuzz_seconds" && echo "fuzz: ok" || echo "fuzz: FAILED"
    else
        echo "fuzz build: FAILED"
    fi
) > fuzz.out 2>&1 &
fuzz_pid=$!
step "valgrind (unit self tests)" make -C build/release -s memcheck
wait "$fuzz_pid"
cat fuzz.out
if grep -q "^fuzz: ok$" fuzz.out; then passed=$((passed + 1)); note "fuzz ($fuzz_seconds s per target): ok"
elif grep -q "^fuzz build: FAILED$" fuzz.out; then failed=$((failed + 1)); note "fuzz build: FAILED"
else failed=$((failed + 1)); note "fuzz ($fuzz_seconds s per target): FAILED"; fi
rm -f fuzz.out
echo "   ($(( $(date +%s) - t0 )) s, valgrind and fuzz together)"

# 5. The release tarball builds and passes its own checks
if [ "${SKIP_DISTCHECK:-0}" != 1 ]; then
    t0=$(date +%s)
    step "make distcheck" sh -c "BIFROST_DISTCHECK=1 make -j$jobs -C build/release -s distcheck >build/release/distcheck.out 2>&1 || { tail -60 build/release/distcheck.out; exit 1; }"
    echo "   ($(( $(date +%s) - t0 )) s)"
fi

# 6. The Debian packages (tests/integration/package.sh): dpkg-buildpackage from
# the release tarball (distcheck's, else make dist), lintian, dpkg -i, the
# units verified, the installed node started as its unit would be, joined to a
# network, pinging a peer, then dpkg --purge and nothing left. Each test point
# counts. Not in make check: it installs packages on the machine.
if [ "${SKIP_PACKAGE:-0}" != 1 ]; then
    t0=$(date +%s)
    b=$top/build/release
    (cd "$b" && BIFROST_SRCDIR=$top BIFROST_BUILDDIR=$b BIFROST_LIBEXEC_DIR=$b/libexec \
        PATH="$b/supervisor:$b/tools:$b/tests:$PATH" \
        /bin/bash "$top/tests/integration/package.sh") > "$b/package.out" 2>&1
    rc=$?
    p=$(grep -c '^ok ' "$b/package.out"); f=$(grep -c '^not ok ' "$b/package.out")
    [ "$rc" != 0 ] && [ "$f" = 0 ] && f=1
    passed=$((passed + p)); failed=$((failed + f))
    note "Debian packages (build, lintian, install, run, purge): $p passed, $f failed"
    [ "$f" = 0 ] || grep -v '^ok ' "$b/package.out" | tail -60
    echo "   ($(( $(date +%s) - t0 )) s)"
fi

echo
printf '%s' "$summary"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
