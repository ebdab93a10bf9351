#!/bin/sh
# Every annotated example config is valid: bifrostd --check-config (which runs each
# service's own check) accepts it, given the environment variables it names. (TAP)
# The bridge's page (examples/bridge/index.html) is run in a browser by
# tests/integration/bridge_page.sh.
echo "1..5"
export BIFROST_JOIN_TOKEN=bjt_example TURN_SECRET=example-secret BIFROST_ADMIN_TOKEN=example-admin
export BRIDGE_TOKEN=example-bridge-token
export RELAY_SECRET=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
i=0
for f in bifrostd.cfg node.cfg node-registry.cfg server.cfg bridge.cfg; do
    i=$((i + 1))
    if out=$("$BIFROST_BUILDDIR/supervisor/bifrostd" --check-config -c "$BIFROST_SRCDIR/examples/$f" 2>&1); then
        echo "ok $i - examples/$f passes bifrostd --check-config"
    else
        echo "not ok $i - examples/$f"; echo "$out" | sed 's/^/# /'
    fi
done
