#!/bin/sh
# Replays every stored fuzz corpus through its target (TAP: one line per target).
# In a normal build the targets carry a replay driver; in a --enable-fuzzing build
# they are libFuzzer binaries and get -runs=0 (replay only).
set -u
build=${BIFROST_BUILDDIR:-.}
src=${BIFROST_SRCDIR:-.}
targets=$(cd "$build" && ls fuzz/fuzz_* lib*/fuzz_* services/*/fuzz_* tools/fuzz_* 2>/dev/null | grep -v '\.[co]$' | grep -v '\.o$')
n=0
for t in $targets; do [ -x "$build/$t" ] && n=$((n + 1)); done
echo "1..$n"
i=0
for t in $targets; do
    [ -x "$build/$t" ] || continue
    i=$((i + 1))
    name=$(basename "$t")
    corpus="$src/fuzz/corpus/$name"
    if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus" 2>/dev/null)" ]; then
        echo "not ok $i - $name: no corpus in fuzz/corpus/$name"
        continue
    fi
    if "$build/$t" -runs=0 "$corpus" >/dev/null 2>"/tmp/fuzz-replay-$$.err"; then
        echo "ok $i - $name replays $(ls "$corpus" | wc -l) inputs"
    else
        echo "not ok $i - $name"
        sed 's/^/# /' "/tmp/fuzz-replay-$$.err" | tail -20
    fi
    rm -f "/tmp/fuzz-replay-$$.err"
done
