#!/bin/bash
# grid-cells: issue 15's per-cell table of the NAT grid, in one run: for every pair
# of NAT kinds, the path it ends on, the time from the second node's registration
# to its tunnel being up (first packet) and to the direct path, and, for every
# direct cell, what the relay -> direct move and a failover cost a numbered stream
# of 1,000 packets/s. The first columns come from tests/integration/relay_grid.sh
# (every pair at once), the others from tests/integration/grid_move.sh, run on the
# direct cells CELLS_AT_ONCE at a time (without its first cell's retry-after-a-route-
# change step: a test, not a measure). `make bench-grid` (root; about 10 minutes).
# Environment as for `make check` (BIFROST_SRCDIR, BIFROST_BUILDDIR,
# BIFROST_LIBEXEC_DIR); OUT: directory for the tables (default: a temporary one).
set -u
OUT=${OUT:-$(mktemp -d /tmp/grid-cells-XXXXXX)}
mkdir -p "$OUT"
AT_ONCE=${CELLS_AT_ONCE:-4}
run () { bash "$BIFROST_SRCDIR/tests/integration/$1" > "$OUT/$2.tap" 2>&1; }

echo "# relay_grid: every pair (log: $OUT/relay_grid.tap)" >&2
RELAY_GRID_TABLE=$OUT/grid.md run relay_grid.sh relay_grid
grep -E "^not ok" "$OUT/relay_grid.tap" >&2
# The direct cells, as "kind-a:kind-b"
cells=$(awk -F'|' 'NR > 2 && $4 ~ /direct/ { gsub (/ /, "", $2); gsub (/ /, "", $3); print $2 ":" $3 }' "$OUT/grid.md")
set -- $cells
echo "# grid_move: $# direct cells, $AT_ONCE at a time" >&2
n=0
: > "$OUT/move.rows"
while [ $# -gt 0 ]; do
    batch=""
    for ((k = 0; k < AT_ONCE && $# > 0; k++)); do batch="$batch $1"; shift; done
    GRID_MOVE_NO_NETCHANGE=1 GRID_MOVE_CELLS="$batch" GRID_MOVE_TABLE=$OUT/move$n.md run grid_move.sh move$n
    grep -E "^not ok" "$OUT/move$n.tap" >&2
    tail -n +3 "$OUT/move$n.md" >> "$OUT/move.rows" 2>/dev/null
    n=$((n + 1))
done

# One table: the grid's row of every cell, with the move's columns where it has them
echo "| a | b | path | registration -> up (ms) | -> direct (ms) | RTT (ms) | relay -> direct after unblock (ms) | lost at the move | duplicated | failover: worst gap (ms) | back to direct (ms) |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'|' '
    function trim (s) { gsub (/^ +| +$/, "", s); return s }
    FILENAME ~ /move.rows$/ { key = trim($2) ":" trim($3); move [key] = trim($4) " | " trim($5) " | " trim($7) " | " trim($8) " | " trim($10); next }
    FNR > 2 { key = trim($2) ":" trim($3)
              m = (key in move) ? move [key] : "- | - | - | - | -"
              printf "| %s | %s | %s | %s | %s | %s | %s |\n", trim($2), trim($3), trim($4), trim($5), trim($6), trim($7), m }
' "$OUT/move.rows" "$OUT/grid.md"
