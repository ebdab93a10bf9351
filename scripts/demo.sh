#!/usr/bin/env bash
# The demo, from a fresh Debian 12 machine (as root): installs what is missing,
# builds, and starts a three-node mesh on this machine (examples/demo.sh).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
./scripts/install-deps.sh
# Configure once; `make` again every time, so a changed tree is never run stale
if [ ! -f build/release/Makefile ]; then
    autoreconf -fi >/dev/null
    mkdir -p build/release
    (cd build/release && ../../configure -q)
fi
make -C build/release -j"$(nproc)" >/dev/null
BIFROST_BUILDDIR="$top/build/release" exec ./examples/demo.sh "$@"
