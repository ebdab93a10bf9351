#!/bin/bash
# package: the Debian packages as an operator gets them. Builds bifrost and
# bifrost-server from the release tarball (dpkg-buildpackage -us -uc -b), or
# takes them from $BIFROST_DEB_DIR; lintian finds no error; dpkg installs them
# on this machine; systemd-analyze verifies the units. The installed server
# (registry, relays, coturn) and node are started as bifrost-server.service
# and bifrost.service would start them (this machine's PID 1 is not systemd:
# the unit's ExecStart, environment, EnvironmentFile, bounding set,
# no_new_privs and read-only file system, with a NOTIFY_SOCKET this test
# listens on), each in a network namespace; the node joins the server's
# network (bifrostctl join, then the unit) and pings a peer built from the
# tree; then both units under a real systemd (PID 1 of a namespace). READY=1 comes only once every
# service is READY, a reload is RELOADING=1 then READY=1, a stop STOPPING=1. Then
# dpkg --purge leaves nothing: no file of the packages, no /etc/bifrost, no
# /var/lib/bifrost, no service user or group, no unit link. (TAP)
#
# Run by scripts/test.sh (its own step, after distcheck), not by make check:
# it installs packages on the machine, and the build takes a minute. It
# refuses to run when a bifrost package is installed already (it would purge
# it). $BIFROST_DEB_DIR: take the .deb files from there instead of building.
. "$BIFROST_SRCDIR/tests/integration/node_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"

RURL=http://192.0.2.10:7080
API=$RURL/api/v1/mesh/networks
INSTALLED=
NODEPID=
UNITS=
LISTENERS=
SD_INIT=
SD_UNSHARE=
SD_UNIT=
NOTIFY_DIR=/run/bifrost-pkgtest-$ID
UNIT=/lib/systemd/system/bifrost.service
SERVER_UNIT=/lib/systemd/system/bifrost-server.service

pkg_cleanup () {
    local pid
    for u in $UNITS; do
        pid=$(cat "$T/$u.pid" 2>/dev/null)
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait_for 10 sh -c "! kill -0 $pid"
        [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    done
    for p in $LISTENERS; do kill "$p" 2>/dev/null; done
    # PID 1 of the namespace: everything in it goes with it
    [ -n "$SD_INIT" ] && kill -KILL "$SD_INIT" 2>/dev/null && wait "$SD_UNSHARE" 2>/dev/null
    if [ "$FAILED" -ne 0 ]; then
        for u in $UNITS; do
            echo "# ---- installed $u's log (last 40 lines)"
            tail -40 "$T/$u.log" 2>/dev/null | sed 's/^/#   /'
            echo "# ---- $u's notifications"
            sed 's/^/#   /' "$T/$u.notify" 2>/dev/null
        done
    fi
    # Whatever happened, the machine is left as it was
    [ -n "$INSTALLED" ] && dpkg --purge bifrost-server bifrost >/dev/null 2>&1
    if [ -n "${PKG_TEST_LOGS:-}" ]; then     # keep the logs for a look after the run
        mkdir -p "$PKG_TEST_LOGS" && cp "$T"/*.log "$PKG_TEST_LOGS"/ 2>/dev/null
        cp "$T"/*.notify "$PKG_TEST_LOGS"/ 2>/dev/null; cp "$T/b/bifrostd.log" "$PKG_TEST_LOGS/b.log" 2>/dev/null
    fi
    rm -rf "$NOTIFY_DIR"
    node_cleanup
}
trap pkg_cleanup EXIT

if [ "$(id -u)" != 0 ]; then echo "1..0 # SKIP needs root"; exit 0; fi
if dpkg-query -W -f='${Status}' bifrost 2>/dev/null | grep -q installed \
|| dpkg-query -W -f='${Status}' bifrost-server 2>/dev/null | grep -q installed; then
    echo "1..1"; ok 1 "a bifrost package is installed already: not touching it (dpkg --purge bifrost-server bifrost first)"
    exit 1
fi

# --- the packages
DEBS=${BIFROST_DEB_DIR:-}
if [ -z "$DEBS" ]; then
    version=$(sed -n 's/^PACKAGE_VERSION = //p' "$BIFROST_BUILDDIR/Makefile")
    tarball=$BIFROST_BUILDDIR/bifrost-$version.tar.gz
    # Always made anew (2 s): a tarball left from an older tree would test old packaging
    make -s -C "$BIFROST_BUILDDIR" dist >/dev/null 2>&1
    DEBS=$T/deb
    mkdir -p "$DEBS"
    t0=$(now_ms)
    ( cd "$DEBS" && tar xzf "$tarball" && cd "bifrost-$version" &&
      DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -us -uc -b > "$DEBS/build.log" 2>&1 )
    ok $? "dpkg-buildpackage -us -uc -b builds the packages from $(basename "$tarball") ($(( ($(now_ms) - t0) / 1000 )) s)"
    [ "$FAILED" = 0 ] || { tail -30 "$DEBS/build.log" | sed 's/^/# /'; }
    # The unpacked tree goes (its docs and tests quote the log lines the
    # cleanup's seccomp_check looks for); the packages stay
    rm -rf "${DEBS:?}/bifrost-$version"
fi
NODE_DEB=$(ls "$DEBS"/bifrost_*.deb 2>/dev/null | head -1)
SERVER_DEB=$(ls "$DEBS"/bifrost-server_*.deb 2>/dev/null | head -1)
[ -f "$NODE_DEB" ] && [ -f "$SERVER_DEB" ]
ok $? "two packages: $(basename "${NODE_DEB:-none}") $(basename "${SERVER_DEB:-none}")"
[ "$FAILED" = 0 ] || exit 1

lintian "$NODE_DEB" "$SERVER_DEB" > "$T/lintian.out" 2>&1
errors=$(grep -c '^E:' "$T/lintian.out")
[ "$errors" = 0 ]
ok $? "lintian: no error ($(grep -c '^W:' "$T/lintian.out") warnings)"
grep -E '^[EW]:' "$T/lintian.out" | sed 's/^/# /'
[ "$(grep -c '^W:' "$T/lintian.out")" = 0 ] || echo "# (lintian warnings are allowed; the ones above are known)"

# --- install
INSTALLED=1
dpkg -i "$NODE_DEB" "$SERVER_DEB" > "$T/dpkg.out" 2>&1
ok $? "dpkg -i installs both (Depends: coturn, present)" || sed 's/^/# /' "$T/dpkg.out"
dpkg -L bifrost bifrost-server 2>/dev/null | sort -u > "$T/files"
for f in /usr/bin/bifrostd /usr/bin/bifrostctl /usr/libexec/bifrost/bifrost-nat \
         /usr/libexec/bifrost/bifrost-registry /usr/libexec/bifrost/bifrost-coturn "$UNIT" "$SERVER_UNIT" \
         /usr/share/man/man8/bifrostd.8.gz /usr/share/man/man8/bifrostctl.8.gz /usr/share/man/man5/bifrost.cfg.5.gz; do
    [ -e "$f" ] || { echo "# missing: $f"; false; } || break
done
ok $? "binaries, services, units and man pages installed ($(wc -l < "$T/files") paths)"
[ "$(getent group bifrost | cut -d: -f3)" = 61100 ] && [ "$(id -u bifrost-nat 2>/dev/null)" = 61105 ] \
    && [ "$(id -u bifrost-bus 2>/dev/null)" = 61101 ] && [ "$(id -gn bifrost-registry 2>/dev/null)" = bifrost ]
ok $? "service users: group bifrost 61100, bifrost-bus 61101, bifrost-nat 61105, ... ($(getent passwd | grep -c '^bifrost-') users)"
env=/etc/bifrost/server.env
[ "$(stat -c '%a %U' "$env" 2>/dev/null)" = "600 root" ] \
    && grep -Eq '^BIFROST_ADMIN_TOKEN=[0-9a-f]{64}$' "$env" && grep -Eq '^TURN_SECRET=[0-9a-f]{64}$' "$env" \
    && grep -Eq '^RELAY_SECRET=[0-9a-f]{64}$' "$env"
ok $? "bifrost-server made /etc/bifrost/server.env: 0600 root, three random 64-hex secrets"

systemd-analyze verify "$UNIT" "$SERVER_UNIT" > "$T/verify.out" 2>&1
[ $? = 0 ] && [ ! -s "$T/verify.out" ]
ok $? "systemd-analyze verify: both units clean (binaries, man pages of Documentation=)" || sed 's/^/# /' "$T/verify.out"
for u in "$UNIT" "$SERVER_UNIT"; do
    echo "# systemd-analyze security: $(systemd-analyze security --offline=true --no-pager "$u" 2>/dev/null | grep -o 'Overall exposure level.*')"
done
grep -q '^Type=notify$' "$UNIT" && grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$UNIT" \
    && grep -q '^RuntimeDirectoryMode=0710$' "$UNIT" && grep -q '^EnvironmentFile=-/etc/bifrost/server.env$' "$SERVER_UNIT"
ok $? "units: Type=notify, ExecReload=SIGHUP, run directory 0710, the server's EnvironmentFile"
# The installed pages, as man finds them
bad=0
for p in bifrostd.8 bifrostctl.8 bifrost-bridge-peer.1 bifrost.cfg.5; do
    MANWIDTH=80 man --warnings "${p##*.}" "${p%.*}" > /dev/null 2> "$T/man.err" && [ ! -s "$T/man.err" ] || bad=1
done
missing=$("$BIFROST_BUILDDIR/libbus/bus-config-doc" | sed -n 's/^| `\([a-z_0-9]*\)` |.*/\1/p' | while read -r k; do
    gzip -dc /usr/share/man/man5/bifrost.cfg.5.gz | grep -qx "\.B $k" || echo "$k"; done)
[ "$bad" = 0 ] && [ -z "$missing" ]
ok $? "man bifrostd, bifrostctl, bifrost-bridge-peer, bifrost.cfg render without a warning; bifrost.cfg(5) lists every key${missing:+ (missing: $missing)}"

# --- systemd's part, as the unit file says: a NOTIFY_SOCKET (a listener that,
# at READY=1, asks bifrostd which instances are ready), the run and state
# directories with their modes, exactly the unit's environment and
# EnvironmentFile, its bounding set and no_new_privs (setpriv), and, in a mount
# namespace of its own, ProtectSystem=strict (every mount read-only but the API
# file systems and ReadWritePaths), ProtectKernelTunables (/proc/sys),
# PrivateTmp and ProtectHome; and its UMask.
unit_value () { sed -n "s/^$2=//p" "$1" | tail -1; }
protect='
set -e
awk "{ print \$2, \$3 }" /proc/self/mounts | sort -u | while read -r m type; do
    case $m in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
    case $type in nsfs|proc|sysfs|cgroup*|devpts|mqueue|autofs|binfmt_misc) continue ;; esac
    mount -o remount,bind,ro "$m" 2>/dev/null || { mount --bind "$m" "$m" && mount -o remount,bind,ro "$m"; }
done
mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys
for p in $RW_PATHS; do mount --bind "$p" "$p" && mount -o remount,bind,rw "$p"; done
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755,ro tmpfs /home
mount -t tmpfs -o mode=0700,ro tmpfs /root
# the emulation holds: /usr, /etc and /var/lib are read-only, the state directory is not
! touch /usr/.pkgtest 2>/dev/null && ! touch /etc/.pkgtest 2>/dev/null && ! touch /var/lib/.pkgtest 2>/dev/null
touch /var/lib/bifrost/.pkgtest && rm /var/lib/bifrost/.pkgtest
umask "$UNIT_UMASK"
unset RW_PATHS UNIT_UMASK
exec "$@"'
mkdir -m 0700 "$NOTIFY_DIR"
# start_as_unit UNIT NODE NAME: the unit's ExecStart in NODE's namespace; its
# notifications in $T/NAME.notify, its output in $T/NAME.log, its pid in $T/NAME.pid
start_as_unit () {
    local unit=$1 node=$2 name=$3 run state envfile caps nnp rw exec_start
    run=/run/$(unit_value "$unit" RuntimeDirectory)
    state=/var/lib/$(unit_value "$unit" StateDirectory)
    python3 - "$NOTIFY_DIR/$name" "$T/$name.notify" "$run" <<'PY' &
import json, socket, subprocess, sys, time
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    log.write("listening\n")
    while True:
        msg = sock.recv(4096).decode().replace("\n", "|")
        log.write("%.3f %s\n" % (time.monotonic(), msg))
        if msg.startswith("READY=1") and "STATUS=reload" not in msg:
            out = subprocess.run(["/usr/bin/bifrostctl", "-r", sys.argv[3], "status", "--json"],
                                 capture_output=True, text=True).stdout
            try:
                states = [i["state"] for i in json.loads(out)["instances"]]
            except Exception:
                states = []
            log.write("at READY: %d instances, %d ready\n" % (len(states), states.count("ready")))
PY
    LISTENERS="$LISTENERS $!"
    wait_for 5 grep -q listening "$T/$name.notify"
    install -d -m "$(unit_value "$unit" RuntimeDirectoryMode)" "$run"
    install -d -m "$(unit_value "$unit" StateDirectoryMode)" "$state"
    envfile=$(unit_value "$unit" EnvironmentFile | sed 's/^-//')
    caps=$(unit_value "$unit" CapabilityBoundingSet | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
    nnp=
    [ "$(unit_value "$unit" NoNewPrivileges)" = yes ] && nnp=--no-new-privs
    rw=$(unit_value "$unit" ReadWritePaths | sed 's/^-//; s/ -/ /g')
    read -r -a exec_start <<< "$(unit_value "$unit" ExecStart)"
    # ip, unshare (no fork), sh, env and setpriv exec: $! is bifrostd
    ip netns exec "$(ns_of "$node")" env RW_PATHS="$rw" UNIT_UMASK="$(unit_value "$unit" UMask)" unshare -m --propagation private sh -c "$protect" protect \
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
            RUNTIME_DIRECTORY="$run" STATE_DIRECTORY="$state" NOTIFY_SOCKET="$NOTIFY_DIR/$name" \
            $(grep -v '^#' "$envfile" 2>/dev/null) \
        setpriv $nnp --bounding-set=-all,"$caps" -- "${exec_start[@]}" > "$T/$name.log" 2>&1 &
    echo $! > "$T/$name.pid"
    UNITS="$UNITS $name"
}
unit_pid () { cat "$T/$1.pid"; }
# ready_checks NAME COUNT: the test points of a start through the unit
ready_checks () {
    local name=$1 count=$2 t0=$3 before
    wait_for 30 grep -q "^at READY" "$T/$name.notify"
    ok $? "$name: READY=1 $(( $(now_ms) - t0 )) ms after ExecStart"
    grep -q "at READY: $count instances, $count ready" "$T/$name.notify"
    ok $? "$name: at READY=1 every instance is ready ($(grep '^at READY' "$T/$name.notify"))"
    before=$(awk '/READY=1/ { exit } / STATUS=/ { n++ } END { print n + 0 }' "$T/$name.notify")
    grep -q " STATUS=[0-$((count - 1))]/$count instances ready" "$T/$name.notify" && [ "$before" -ge 1 ]
    ok $? "$name: before it, STATUS= counted the instances coming up ($before lines, e.g. '$(grep -m1 -o "STATUS=[0-9]/$count[^|]*" "$T/$name.notify")')"
    [ "$(grep -c '^[0-9.]* READY=1' "$T/$name.notify")" = 1 ]
    ok $? "$name: READY=1 is sent once"
}

# --- a network: the installed server (registry, relay, coturn) as
# bifrost-server.service runs it, a peer from the build tree, each in a namespace
underlay reg 192.0.2.10
underlay a 192.0.2.1
underlay b 192.0.2.2
cat > /etc/bifrost/server.cfg <<CFG
run_dir = "/run/bifrost-server";
services = (
    { name = "bus";      exec = "bifrost-bus"; },
    { name = "registry"; exec = "bifrost-registry"; depends = ["bus"];
      pass_env = ["BIFROST_ADMIN_TOKEN", "TURN_SECRET", "RELAY_SECRET"]; },
    { name = "coturn";   exec = "bifrost-coturn"; notify = "none"; pass_env = ["TURN_SECRET"]; },
    { name = "relay";    exec = "bifrost-relay"; depends = ["bus"]; instances = 2; pass_env = ["RELAY_SECRET"]; }
);
registry = { listen = "192.0.2.10:7080"; admin_token = "\${BIFROST_ADMIN_TOKEN}"; rate_limit = 0; };
turn = { host = "192.0.2.10"; realm = "example.org"; secret = "\${TURN_SECRET}"; listen_port = 3478;
         min_port = 49152; max_port = 49200; };
relay = { servers = ["relay-1@192.0.2.10:3479"]; secret = "\${RELAY_SECRET}"; listen = "192.0.2.10:3479"; };
CFG
( set -a; . /etc/bifrost/server.env; set +a; exec /usr/bin/bifrostd --check-config -c /etc/bifrost/server.cfg ) \
    > "$T/check.out" 2>&1
ok $? "the installed bifrostd accepts a server configuration with the generated secrets" || sed 's/^/# /' "$T/check.out"
t0=$(now_ms)
start_as_unit "$SERVER_UNIT" reg server
ready_checks server 5 "$t0"
wait_for 10 in_ns reg curl -s -o /dev/null "$RURL/client/meta"
ok $? "the registry answers on 192.0.2.10:7080"
ADMIN=$(sed -n 's/^BIFROST_ADMIN_TOKEN=//p' /etc/bifrost/server.env)
admin () { in_ns reg curl -s -X "$1" -H "Authorization: Bearer $ADMIN" ${3:+--data-binary "$3"} "$API$2"; }
admin POST "" '{"id":"pkg","name":"pkg","cidr":"10.100.0.0/24","settings":{"heartbeat_interval":1,"offline_after":3,"expire_after":120}}' >/dev/null
TOKEN=$(admin POST /pkg/tokens '{"ttl":600,"reusable":true}' | jq -r .token)
case "$TOKEN" in bjt_*) ok 0 "with the admin token of server.env: network pkg and a join token" ;;
                 *) ok 1 "with the admin token of server.env: network pkg and a join token" ;; esac
[ "$(stat -c '%a %U %g' /run/bifrost-server)" = "710 root 61100" ] && [ -s /var/lib/bifrost/registry.db ]
ok $? "server: run directory 0710 root:61100, the database in the state directory ($(stat -c '%n %a %U' /var/lib/bifrost/registry.db 2>&1))"
turn=$(/usr/bin/bifrostctl -r /run/bifrost-server status --json 2>/dev/null | jq -r '.instances[] | select(.service == "coturn") | .pid')
wait_for 5 sh -c "[ \"\$(ps -o user= -p $turn)\" = turnserver ]"
ok $? "server: coturn runs (pid $turn) and has become the user turnserver ($(ps -o user=,comm= -p "$turn"))"
export BIFROST_JOIN_TOKEN=$TOKEN
disc_node_cfg "$T/b" b pkg "$RURL"
start_node b
ok $? "peer b (build tree) is up"

# --- the installed node joins with one command: bifrostctl join makes the key,
# registers, writes /etc/bifrost/bifrost.cfg and /etc/bifrost/join-token, and
# (no systemd here) starts bifrostd itself; then that bifrostd is stopped and
# the node started again as the unit starts it
t0=$(now_ms)
in_ns a /usr/bin/bifrostctl join "$RURL" --allow-http --network pkg --token "$TOKEN" --name a > "$T/join.out" 2>&1
rc=$?
grep -q "^joined network pkg as a: virtual IP 10.100.0" "$T/join.out"
ok $((rc + $?)) "bifrostctl join (installed): exit $rc in $(( $(now_ms) - t0 )) ms, '$(tail -1 "$T/join.out")'" \
    || sed 's/^/# /' "$T/join.out"
[ "$(stat -c '%a' /etc/bifrost/join-token 2>/dev/null)" = 600 ] && [ "$(stat -c '%a' /var/lib/bifrost/node.key 2>/dev/null)" = 600 ] \
    && grep -q 'join_token_file = "/etc/bifrost/join-token"' /etc/bifrost/bifrost.cfg
ok $? "it wrote /etc/bifrost/bifrost.cfg, the token file and the key (0600), the token not in the config"
joined=$(cat /run/bifrost/bifrostd.pid 2>/dev/null)
[ -n "$joined" ] && kill -TERM "$joined" && wait_for 15 sh -c "! kill -0 $joined"
ok $? "the bifrostd join started stops (SIGTERM)"
# The operator turns the metrics endpoint on (docs/metrics.md), so it runs
# under the unit's hardening too
sed -i 's|^    { name = "discovery"; exec = "bifrost-discovery"; depends = \["bus", "tunnel"\]; }$|&,\n    { name = "metrics";   exec = "bifrost-metrics";   depends = ["bus"]; }|' \
    /etc/bifrost/bifrost.cfg
/usr/bin/bifrostd --check-config -c /etc/bifrost/bifrost.cfg > "$T/check.out" 2>&1 && grep -q 'exec = "bifrost-metrics"' /etc/bifrost/bifrost.cfg
ok $? "the installed bifrostd (its own libexec) accepts the node's configuration, metrics added" || sed 's/^/# /' "$T/check.out"
NODE_SERVICES=$(grep -c 'exec = "bifrost-' /etc/bifrost/bifrost.cfg)
t0=$(now_ms)
start_as_unit "$UNIT" a node
NODEPID=$(unit_pid node)
ready_checks node "$NODE_SERVICES" "$t0"
grep -q "seccomp refused\|Permission denied\|Read-only file system" "$T/node.log" "$T/server.log"
ok $((! $?)) "no service of the node or the server hit the unit's hardening (bounding set, no_new_privs, read-only /usr /etc /var, private /tmp)"

vip () { in_ns "$1" ip -o -4 addr show dev bifrost0 2>/dev/null | awk '{ sub("/.*", "", $4); print $4 }'; }
has_vip () { [ -n "$(vip "$1")" ]; }
wait_for 15 has_vip a
ok $? "the installed node joined: bifrost0 has $(vip a) from the registry"
wait_for 15 has_vip b
VB=$(vip b)
wait_for 20 ping_ok a "$VB"
ok $? "it pings peer b at $VB through the tunnel"
wait_for 10 ping_ok b "$(vip a)"
ok $? "and b pings it back"
in_ns a curl -s -m 5 http://127.0.0.1:9475/metrics > "$T/metrics.txt"
grep -q '^bifrost_peer_up{.*} 1$' "$T/metrics.txt" && grep -q '^bifrost_service_state{' "$T/metrics.txt"
ok $? "the metrics endpoint answers on 127.0.0.1:9475 under the unit ($(grep -c '^bifrost_' "$T/metrics.txt") samples, b's peer up)"
nat=$(/usr/bin/bifrostctl -r /run/bifrost status 2>/dev/null | awk '$1 == "nat.1" { print $2 }')
[ -n "$nat" ] && [ "$(ps -o user= -p "$nat")" = bifrost-nat ]
ok $? "ps shows the nat service as bifrost-nat (pid ${nat:-none})"
[ "$(stat -c '%a %U %g' /run/bifrost)" = "710 root 61100" ] && [ "$(stat -c '%a' /var/lib/bifrost/node.key)" = 600 ]
ok $? "run directory 0710 root:61100 ($(stat -c '%a %U %g' /run/bifrost)), node key 0600"

# systemctl reload: ExecReload sends SIGHUP
kill -HUP "$NODEPID"
wait_for 10 grep -q "READY=1|STATUS=reloaded" "$T/node.notify"
grep -q "RELOADING=1|MONOTONIC_USEC=" "$T/node.notify"
ok $? "reload (SIGHUP): RELOADING=1, then READY=1 ($(grep -o 'STATUS=reloaded[^|]*' "$T/node.notify" | tail -1))"

# systemctl stop: SIGTERM to bifrostd alone (KillMode=mixed)
kill -TERM "$NODEPID"
wait_for 15 sh -c "! kill -0 $NODEPID"
stopped=$?
wait "$NODEPID"; rc=$?
[ "$stopped" = 0 ] && [ "$rc" = 0 ] && grep -q "STOPPING=1" "$T/node.notify"
ok $? "stop (SIGTERM): STOPPING=1, bifrostd exits 0 (got $rc)"
NODEPID=
rm -f "$T/node.pid"
left=$(ip netns pids "$(ns_of a)" 2>/dev/null | wc -l)
[ "$left" = 0 ]
ok $? "no process of the node is left in its namespace ($left)"

# --- the installed bifrost.service itself, under a real systemd: PID 1 of a
# PID and mount namespace of its own (with its own /run), in a's network
# namespace. A drop-in only keeps it from pulling in the machine's boot
# (DefaultDependencies=no, network-online.target masked) and sends its output
# to a file: every [Service] line is the installed unit's, applied by systemd.
# On a machine whose PID 1 is systemd a second one would fight it over the
# cgroups: skipped there (the emulation above still runs).
# sd_boot UNIT NODE: a systemd whose one job is UNIT, in NODE's network
# namespace; SD_INIT is its pid
sd_boot () {
    local unit=$1 node=$2 sd=$T/sd-$1
    mkdir -p "$sd/$unit.d"
    printf '[Unit]\nDefaultDependencies=no\n[Service]\nStandardOutput=file:/run/bifrost-test.log\nStandardError=inherit\n' \
        > "$sd/$unit.d/test.conf"
    printf '[Unit]\nDescription=the package test\nDefaultDependencies=no\nWants=%s\n' "$unit" > "$sd/bifrost-test.target"
    ip netns exec "$(ns_of "$node")" unshare --pid --fork --mount --propagation private --mount-proc sh -c '
        mount -t tmpfs -o mode=755 tmpfs /run
        mkdir -p /run/systemd/system
        cp -r "$0"/* /run/systemd/system/
        ln -s /dev/null /run/systemd/system/network-online.target
        exec env container=bifrost-test /lib/systemd/systemd --system --unit=bifrost-test.target' "$sd" \
        > "$T/systemd-$unit.log" 2>&1 &
    SD_UNSHARE=$!
    wait_for 5 pgrep -P "$SD_UNSHARE"
    SD_INIT=$(pgrep -P "$SD_UNSHARE")
    SD_UNIT=$unit
    wait_for 30 sh -c "[ \"\$(nsenter -t $SD_INIT -m -p systemctl show $unit -p ActiveState --value)\" = active ]"
}
sd_halt () {     # keeps the unit's output, then PID 1 of the namespace goes, and all in it
    nsenter -t "$SD_INIT" -m cat /run/bifrost-test.log > "$T/$SD_UNIT.systemd.log" 2>/dev/null
    kill -KILL "$SD_INIT" 2>/dev/null; wait "$SD_UNSHARE" 2>/dev/null
    SD_INIT=
}
sdctl () { nsenter -t "$SD_INIT" -m -p systemctl "$@"; }
sdprop () { sdctl show "$SD_UNIT" -p "$1" --value 2>/dev/null; }
# only_systemd NODE: no process in NODE's namespace but systemd (and unshare)
only_systemd () { [ -z "$(ip netns pids "$(ns_of "$1")" | xargs -r ps -o comm= -p | grep -v -x -e systemd -e unshare)" ]; }
stop_emulated_server () {
    local pid rc stopped
    pid=$(unit_pid server)
    kill -TERM "$pid"
    wait_for 15 sh -c "! kill -0 $pid"
    stopped=$?
    wait "$pid"; rc=$?
    [ "$stopped" = 0 ] && [ "$rc" = 0 ] && grep -q "STOPPING=1" "$T/server.notify"
    ok $? "server stop (SIGTERM): STOPPING=1, bifrostd exits 0 (got $rc)"
    rm -f "$T/server.pid"
}
if [ "$(ps -p 1 -o comm=)" = systemd ]; then
    for i in 1 2 3 4 5 6; do ok 0 "# SKIP PID 1 is systemd: no second systemd for the units"; done
else
    sd_boot bifrost.service a
    ok $? "systemd starts bifrost.service: $(sdprop ActiveState) ($(sdprop SubState)), status '$(sdprop StatusText)'"
    wait_for 20 ping_ok a "$VB"
    ok $? "under systemd the node pings b again"
    sdctl stop bifrost.service
    t0=$(now_ms)
    sdctl start bifrost.service
    rc=$?
    took=$(( $(now_ms) - t0 ))
    status=$(sdprop StatusText)
    [ "$rc" = 0 ] && [ "$status" = "$NODE_SERVICES/$NODE_SERVICES instances ready" ]
    ok $? "systemctl start returns once every service is READY ($took ms; then: '$status')"
    sdctl reload bifrost.service; rr=$?
    [ "$rr" = 0 ] && [ "$(sdprop ActiveState)" = active ] && [ "$(sdprop NRestarts)" = 0 ]
    r1=$?
    sdctl stop bifrost.service
    [ "$r1" = 0 ] && [ "$(sdprop ActiveState)" = inactive ] && [ "$(sdprop Result)" = success ] \
        && [ "$(sdprop ExecMainStatus)" = 0 ] && only_systemd a
    ok $? "systemctl reload (active, no restart), then stop: Result=$(sdprop Result), exit $(sdprop ExecMainStatus), only systemd left"
    sd_halt

    # The server's unit the same way, in place of its emulated run
    stop_emulated_server
    sd_boot bifrost-server.service reg
    ok $? "systemd starts bifrost-server.service: $(sdprop ActiveState) ($(sdprop SubState)), status '$(sdprop StatusText)'"
    wait_for 10 in_ns reg curl -s -o /dev/null "$RURL/client/meta" && [ "$(admin GET /pkg | jq -r .id)" = pkg ]
    r1=$?
    sdctl stop bifrost-server.service
    [ "$r1" = 0 ] && [ "$(sdprop Result)" = success ] && only_systemd reg
    ok $? "its registry has the network from before (the same database), stop: Result=$(sdprop Result), only systemd left"
    sd_halt
fi
[ -f "$T/server.pid" ] && stop_emulated_server

# --- purge: nothing left
dpkg --purge bifrost-server bifrost > "$T/purge.out" 2>&1
ok $? "dpkg --purge bifrost-server bifrost" || sed 's/^/# /' "$T/purge.out"
INSTALLED=
left=""
while read -r f; do
    [ -e "$f" ] && [ ! -d "$f" ] && left="$left $f"
done < "$T/files"
for f in /etc/bifrost /var/lib/bifrost /run/bifrost /usr/libexec/bifrost /usr/share/bifrost /usr/share/doc/bifrost \
         /etc/systemd/system/multi-user.target.wants/bifrost.service \
         /etc/systemd/system/multi-user.target.wants/bifrost-server.service; do
    [ -e "$f" ] && left="$left $f"
done
ls /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked 2>/dev/null \
    | grep -q bifrost && left="$left deb-systemd-helper-state"
# and nothing named bifrost anywhere a package or its scripts write (but this test's own socket directory)
left="$left $(find /etc /var/lib /var/log /usr /lib /run -name '*bifrost*' -not -path "$NOTIFY_DIR" -not -path '/run/netns/*' 2>/dev/null | tr '\n' ' ')"
left=$(echo $left)
[ -z "$left" ]
ok $? "no file of the packages, /etc/bifrost, /var/lib/bifrost, unit link or state is left${left:+:$left}"
users=$(getent passwd | grep -c '^bifrost'); groups=$(getent group | grep -c '^bifrost')
[ "$users" = 0 ] && [ "$groups" = 0 ]
ok $? "no bifrost user or group is left ($users users, $groups groups)"
dpkg-query -W -f='${Status}\n' bifrost bifrost-server 2>/dev/null | grep -q installed
ok $((! $?)) "dpkg knows neither package any more"
echo "1..$TESTNO"
[ "$FAILED" = 0 ]
