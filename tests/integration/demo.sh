#!/bin/bash
# The README's demo must work: examples/demo.sh --once starts a registry, a relay
# and three nodes behind full-cone, port-restricted and symmetric NATs, checks
# every ping and the path of every pair (direct where a hole can be punched, the
# relay where not), and stops, removing everything. (TAP)
echo "1..3"
out=$(BIFROST_BUILDDIR="$BIFROST_BUILDDIR" timeout 120 bash "$BIFROST_SRCDIR/examples/demo.sh" --once 2>&1)
rc=$?
if [ $rc -eq 0 ]; then echo "ok 1 - demo: every node reached every other, on the expected paths"
else echo "not ok 1 - demo (exit $rc)"; echo "$out" | tail -60 | sed 's/^/# /'; fi
left=$(ip netns list | grep -c "^ngdemo" || true)
if [ "$left" -eq 0 ]; then echo "ok 2 - demo left no namespace behind"
else echo "not ok 2 - demo left $left namespaces"; fi
if echo "$out" | grep -q "seccomp refused"; then
    echo "not ok 3 - a service's seccomp filter refused a system call in the demo"
    echo "$out" | grep "seccomp refused" | sed 's/^/# /'
else echo "ok 3 - no service's seccomp filter refused a system call in the demo"; fi
