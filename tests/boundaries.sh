#!/bin/sh
# The boundaries of DESIGN.md, as a test (TAP): services share code only through
# libraries, libbus knows no node or service, librouter is logic alone, and
# the internet-facing process links no key code. A service that includes another service's header, or a nat
# binary that pulls in crypto's objects, fails here instead of in a review.
set -u
src=${BIFROST_SRCDIR:-.}
build=${BIFROST_BUILDDIR:-.}
n=0
fails=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }

# Where a header may come from, seen from one folder: the folder itself, the
# libraries (lib*/), the declarations (schemas/) and the test helpers.
shared_headers=$(cd "$src" && ls lib*/*.h schemas/*.h schemas/*.inc tests/*.h 2>/dev/null | xargs -n1 basename 2>/dev/null)

# s_includes FOLDER: every quoted include of the folder's sources, one per line
s_includes () {
    grep -h -o -E '^#include "[^"]+"' "$src/$1"/*.c "$src/$1"/*.h 2>/dev/null | sed 's/#include "//; s/"$//' | sort -u
}

# s_foreign FOLDER [ALLOWED_FOLDER...]: the includes that are neither its own
# nor a library's nor from the allowed folders
s_foreign () {
    folder=$1; shift
    for inc in $(s_includes "$folder"); do
        base=$(basename "$inc")
        case "$inc" in ../schemas/*|../../schemas/*|../../tests/*|config.h) continue ;; esac
        [ -f "$src/$folder/$base" ] && continue
        echo "$shared_headers" | grep -qx "$base" && continue
        allowed=0
        for other in "$@"; do [ -f "$src/$other/$base" ] && allowed=1; done
        [ $allowed = 1 ] && continue
        echo "$inc"
    done
}

echo "1..6"

# 1. No service includes another service's header. services/tunnel is the one
#    program made of two services (device and crypto in one process).
bad=""
for dir in "$src"/services/*/; do
    name=$(basename "$dir")
    case $name in
        tunnel) extra="services/device services/crypto" ;;
        *) extra="" ;;
    esac
    f=$(s_foreign "services/$name" $extra)
    [ -n "$f" ] && bad="$bad services/$name: $(echo $f)"
done
if [ -z "$bad" ]; then ok "no service includes another service's header"
else not_ok "a service includes another service's header:$bad"; fi

# 2. The supervisor and the tools use only libraries and schemas.
bad=""
for folder in supervisor tools; do
    f=$(s_foreign "$folder")
    [ -n "$f" ] && bad="$bad $folder: $(echo $f)"
done
if [ -z "$bad" ]; then ok "supervisor and tools include only library and schema headers"
else not_ok "supervisor or tools include a header of another folder:$bad"; fi

# 3. libbus is the bus only: it includes no service, supervisor or libnode header.
f=$(s_foreign libbus)
for inc in $(s_includes libbus); do
    [ -f "$src/libnode/$(basename "$inc")" ] && f="$f $inc"
done
if [ -z "$(echo $f)" ]; then ok "libbus includes no node, service or supervisor header"
else not_ok "libbus includes:$(echo " "$f)"; fi

# 4. libnode includes no service header.
f=$(s_foreign libnode)
if [ -z "$f" ]; then ok "libnode includes no service header"
else not_ok "libnode includes: $(echo $f)"; fi

# 5. bifrost-nat (internet-facing) contains none of crypto's symbols nor the
#    key proof: a parser bug in nat cannot reach key code that is not there.
nat="$build/services/nat/bifrost-nat"
core="$build/services/crypto/libcrypto_core.a"
if [ ! -x "$nat" ] || [ ! -f "$core" ]; then
    not_ok "bifrost-nat and crypto's library are built ($nat, $core)"
else
    key_syms=$( (nm -g --defined-only "$core" 2>/dev/null; nm -g --defined-only "$build/libnode/libnode.a" 2>/dev/null | grep ' node_keyproof') \
        | awk 'NF == 3 && $2 ~ /[TDBR]/ {print $3}' | sort -u)
    tmp=$(mktemp)
    nm --defined-only "$nat" | awk 'NF == 3 {print $3}' | sort -u >"$tmp"
    common=$(printf '%s\n' "$key_syms" | grep -Fx -f "$tmp" | head -5)
    rm -f "$tmp"
    if [ -n "$key_syms" ] && [ -z "$common" ]; then
        ok "bifrost-nat links no key code ($(echo "$key_syms" | wc -l) crypto symbols checked)"
    else
        not_ok "bifrost-nat contains key code: $(echo $common)"
    fi
fi
# 6. librouter is the routing logic alone (docs/routing.md): it includes only
#    its own headers and the declarations, never the bus, a node library or a
#    service, so the whole mesh can be simulated in one test process.
f=""
for inc in $(s_includes librouter); do
    case "$inc" in schemas/*|../schemas/*) continue ;; esac
    [ -f "$src/librouter/$(basename "$inc")" ] || f="$f $inc"
done
if [ -z "$(echo $f)" ]; then ok "librouter includes only its own and schema headers"
else not_ok "librouter includes:$f"; fi

[ $fails = 0 ]
