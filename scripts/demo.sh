#!/usr/bin/env bash
# The demo, from a fresh Debian 12 machine (as root): installs what is missing,
# builds, and starts a three-node mesh on this machine (examples/demo.sh).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
./scripts/install-deps.sh
if [ ! -x build/release/supervisor/bifrostd ]; then
    autoreconf -fi >/dev/null
    mkdir -p build/release
    (cd build/release && ../../configure -q && make -j"$(nproc)" >/dev/null)
fi
BIFROST_BUILDDIR="$top/build/release" exec ./examples/demo.sh "$@"
