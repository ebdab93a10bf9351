#!/bin/bash
# The README's demo must work: examples/demo.sh --once starts three nodes, pings
# every pair and stops, removing everything. (TAP)
echo "1..2"
out=$(BIFROST_BUILDDIR="$BIFROST_BUILDDIR" timeout 90 bash "$BIFROST_SRCDIR/examples/demo.sh" --once 2>&1)
rc=$?
if [ $rc -eq 0 ]; then echo "ok 1 - demo: every node reached every other"
else echo "not ok 1 - demo (exit $rc)"; echo "$out" | tail -40 | sed 's/^/# /'; fi
left=$(ip netns list | grep -c "^demo-.*-" || true)
if [ "$left" -eq 0 ]; then echo "ok 2 - demo left no namespace behind"
else echo "not ok 2 - demo left $left namespaces"; fi
