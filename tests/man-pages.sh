#!/bin/sh
# The man pages: bifrostd(8), bifrostctl(8), bifrost-bridge-peer(1) and
# bifrost.cfg(5) render without a warning (man --warnings), and bifrost.cfg(5),
# generated from schemas/config/,
# has an entry for every key of the config reference (the same declarations),
# under its group. With MAN_DIR set (an installed tree), the pages there are
# checked instead. (TAP)
set -u
build=${BIFROST_BUILDDIR:-.}
src=${BIFROST_SRCDIR:-.}
n=0
fails=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "${MAN_DIR:-}" ]; then
    pages="$MAN_DIR/man8/bifrostd.8.gz $MAN_DIR/man8/bifrostctl.8.gz $MAN_DIR/man1/bifrost-bridge-peer.1.gz $MAN_DIR/man5/bifrost.cfg.5.gz"
    cfg="$tmp/bifrost.cfg.5"
    gzip -dc "$MAN_DIR/man5/bifrost.cfg.5.gz" > "$cfg" 2>/dev/null
else
    pages="$src/man/bifrostd.8 $src/man/bifrostctl.8 $src/man/bifrost-bridge-peer.1 $build/man/bifrost.cfg.5"
    cfg="$build/man/bifrost.cfg.5"
fi
"$build/libbus/bus-config-doc" > "$tmp/reference.md"
keys=$(sed -n 's/^| `\([a-z_0-9]*\)` |.*/\1/p' "$tmp/reference.md")
echo "1..$(( $(echo $pages | wc -w) + 2 ))"
for p in $pages; do
    if [ -s "$p" ] && MANWIDTH=80 man --warnings -l "$p" > "$tmp/out" 2> "$tmp/err" && [ ! -s "$tmp/err" ] \
       && [ "$(wc -l < "$tmp/out")" -gt 20 ]; then
        ok "$(basename "$p") renders without a warning ($(wc -l < "$tmp/out") lines)"
    else
        not_ok "$(basename "$p") does not render cleanly"
        sed 's/^/# /' "$tmp/err" | head -20
    fi
done
# Every key of the reference is an entry (.TP / .B key) of bifrost.cfg(5)
missing=""
count=0
for k in $keys; do
    count=$((count + 1))
    grep -qx "\.B $k" "$cfg" 2>/dev/null || missing="$missing $k"
done
if [ "$count" -gt 50 ] && [ -z "$missing" ]; then
    ok "bifrost.cfg(5) has all $count keys of schemas/config/"
else
    not_ok "bifrost.cfg(5) misses:$missing (of $count keys)"
fi
# Every group is a section, in the order of the reference
sections=$(grep -c '^\.SH "' "$cfg" 2>/dev/null)
groups=$(grep -c '^## ' "$tmp/reference.md")
if [ "$sections" = "$groups" ]; then
    ok "bifrost.cfg(5) has a section for each of the $groups groups"
else
    not_ok "bifrost.cfg(5) has $sections group sections, the reference $groups groups"
fi
[ $fails = 0 ]
