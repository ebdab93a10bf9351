#!/bin/sh
# Installs what Bifrost needs to build and to run its test suite on Debian 12, and
# nothing when it is all there already. Needs root (apt-get).
#   install-deps.sh           build + tests
#   install-deps.sh --bench   also the VPNs `make bench-vpn` compares with
# miniupnpd-nftables is only the daemon binary and its nft scripts (no maintainer
# script, no debconf question, no service): tests/integration/portmap_upnp.sh starts
# it by hand in a namespace. Its companion package `miniupnpd` (init script, systemd
# unit, debconf) is deliberately not installed.
# dpkg-dev, debhelper, fakeroot, lintian: the Debian packages are built (dpkg-buildpackage)
# and checked (lintian) by scripts/test.sh; man-db renders the man pages (man --warnings);
# systemd (not in a minimal container image) verifies the units and runs them
# as PID 1 of a namespace (tests/integration/package.sh).
# chromium and chromium-driver: tests/integration/bridge_page.sh drives the bridge's
# example page (examples/bridge/) in headless Chromium through chromedriver.
# prometheus: its promtool checks the metrics endpoint's text (tests/integration/metrics.sh).
# dnsmasq-base (dnsmasq without its service), isc-dhcp-client, avahi-daemon and
# avahi-utils: tests/integration/tap_routed.sh runs a DHCP server, a DHCP client
# and mDNS (each avahi-daemon with a private D-Bus bus) by hand in namespaces.
# avahi-daemon brings the dbus package; the policy-rc.d below keeps both from
# starting while apt runs.
set -eu
BUILD="build-essential autoconf automake pkg-config
       libzmq3-dev libczmq-dev libsodium-dev libnice-dev libmsgpack-dev libconfig-dev
       libwebsockets-dev libjansson-dev libsqlite3-dev libminiupnpc-dev libnatpmp-dev libseccomp-dev
       libsystemd-dev libnetfilter-queue-dev"
TEST="clang libclang-rt-14-dev valgrind iproute2 iputils-ping nftables iptables iperf3 coturn
      jq procps psmisc curl python3 socat openssl strace miniupnpd-nftables chromium chromium-driver prometheus
      dpkg-dev debhelper fakeroot lintian man-db systemd
      dnsmasq-base isc-dhcp-client avahi-daemon avahi-utils"
BENCH=""
[ "${1:-}" = "--bench" ] && BENCH="wireguard-go wireguard-tools tinc fastd n2n sysstat linux-perf"
missing=""
for p in $BUILD $TEST $BENCH; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "install-deps: everything is installed"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing:$missing" >&2
    echo "install-deps: run as root (or: sudo apt-get install$missing)" >&2
    exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Packages installed for the tests must not start daemons on this machine (the
# prometheus package would start a server on :9090 where systemd runs): a
# policy-rc.d that denies every start, only while apt runs and only if the
# machine has none of its own.
policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-deps: done"
