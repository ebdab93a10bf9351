#!/bin/sh
# The generated protocol reference documents every message type declared in
# schemas/, and nothing else writes it. (TAP)
set -u
build=${BIFROST_BUILDDIR:-.}
src=${BIFROST_SRCDIR:-.}
doc="$build/docs/bus-protocol.md"
types=$(grep -h -o -E 'BUS_SCHEMA \([a-z_]+, "[a-z.]+"' "$src"/schemas/*.def | sed -E 's/.*"([a-z.]+)"/\1/')
n=$(echo "$types" | grep -c .)
echo "1..$((n + 1))"
if [ -s "$doc" ] && head -3 "$doc" | grep -q "Bifrost bus protocol reference"; then
    echo "ok 1 - $doc is generated"
else
    echo "not ok 1 - $doc missing"
fi
i=1
for t in $types; do
    i=$((i + 1))
    if grep -q "Wire type: \`$t\`" "$doc" 2>/dev/null; then echo "ok $i - $t documented"; else echo "not ok $i - $t not documented"; fi
done
