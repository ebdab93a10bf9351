#!/bin/sh
# Every class's self test must be run by some self-test program: a class whose
# test exists but is never registered would silently stop being tested. (TAP)
set -u
src=${BIFROST_SRCDIR:-.}
cd "$src" || exit 1
tests=$(grep -l -E '^[a-z_]+_test \(bool verbose\)' libbus/*.c libnode/*.c librest/*.c librelay/*.c libportmap/*.c libice/*.c librouter/*.c services/*/*.c supervisor/*.c tools/*.c 2>/dev/null \
        | xargs -r grep -h -o -E '^[a-z_]+_test \(bool verbose\)' | sed 's/_test (bool verbose)//' | sort -u)
n=$(echo "$tests" | grep -c . || true)
echo "1..$n"
i=0
for t in $tests; do
    i=$((i + 1))
    if grep -q -E "\{ *\"$t\", *${t}_test *\}" tests/*selftest*.c services/*/*selftest*.c supervisor/*selftest*.c tools/*selftest*.c 2>/dev/null; then
        echo "ok $i - ${t}_test is registered"
    else
        echo "not ok $i - ${t}_test is defined but no selftest program runs it"
    fi
done
