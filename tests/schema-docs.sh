#!/bin/sh
# The tables of docs/packet-path.md, docs/wire-format.md, docs/bridge-wire.md,
# docs/routing.md, docs/groups.md, docs/bus.md and docs/supervisor.md are the ones
# schemas/schema-doc generates from schemas/pipes.def, schemas/wire.def,
# schemas/bridge_wire.def, schemas/route_wire.def, schemas/senders.def,
# schemas/syscalls.def and schemas/metrics.def (docs/metrics.md), and every
# generated block is in one of them.
# `make schema-docs` fixes a doc. (TAP)
set -u
build=${BIFROST_BUILDDIR:-.}
src=${BIFROST_SRCDIR:-.}
gen="$build/schemas/schema-doc.md"
docs="docs/packet-path.md docs/wire-format.md docs/bridge-wire.md docs/routing.md docs/groups.md docs/bus.md docs/supervisor.md docs/metrics.md"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
n=0
fails=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
blocks=$(sed -n 's/^<!-- BEGIN \([^ ]*\) -->$/\1/p' "$gen" 2>/dev/null)
echo "1..$(($(echo $docs | wc -w) + $(echo "$blocks" | grep -c .) + 1))"
if [ -n "$blocks" ]; then ok "$gen is generated"; else not_ok "$gen missing or empty"; fi
for d in $docs; do
    if awk -f "$src/schemas/schema-docs.awk" "$gen" "$src/$d" >"$tmp" && cmp -s "$tmp" "$src/$d"; then
        ok "$d matches the declarations"
    else
        not_ok "$d differs from the declarations (run make schema-docs):"
        diff -u "$src/$d" "$tmp" | head -40 | sed 's/^/# /'
    fi
done
for b in $blocks; do
    if (cd "$src" && cat $docs) | grep -q "^<!-- BEGIN $b -->\$"; then
        ok "block $b is in the docs"
    else
        not_ok "block $b is in no doc"
    fi
done
[ $fails = 0 ]
