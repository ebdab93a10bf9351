#!/bin/bash
# tunnel_config: bifrost-tunnel (device and crypto in one process) handles bad input
# as each service does alone: -h names it, --check-config reports the errors of both
# services' sections with file:line and exits 78, a good config passes, and when the
# second service cannot start (device: a non-TUN interface of the configured name)
# the first is torn down again: exit 78, a clear message, no pipe socket left. A
# process that holds the key (bifrost-crypto) is not dumpable, even when not run as
# root; one that does not (bifrost-router) is (bifrost-tunnel as root:
# node_privileges.sh). (TAP)
set -u
echo "1..7"
T=$(mktemp -d /tmp/tunnel-config-XXXXXX)
chmod 755 "$T"      # the services pass it under their own uids (docs/supervisor.md)
PIDS=""
trap 'for p in $PIDS; do kill -KILL "$p" 2>/dev/null; done
      grep -rh "seccomp refused" "$T" 2>/dev/null | sed "s/^/# /" | grep . && echo "not ok - seccomp refused a system call"
      rm -rf "$T"' EXIT
TUNNEL="$BIFROST_LIBEXEC_DIR/bifrost-tunnel"
n=0
ok () { n=$((n + 1)); if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }

"$TUNNEL" -h > "$T/help" 2>&1
grep -q "device and crypto in one process" "$T/help"
ok $? "bifrost-tunnel -h says what it runs"

cat > "$T/bad.cfg" <<CFG
key_file = "$T/node.key";
psk = "not-a-key";
device = { type = "tub"; name = "bifrost0"; mtu = 70000; };
CFG
"$TUNNEL" --check-config -c "$T/bad.cfg" > "$T/check.out" 2>&1
rc=$?
sed 's/^/#   /' "$T/check.out"
[ "$rc" -eq 78 ] && grep -q "bad.cfg:2: psk:" "$T/check.out" \
    && grep -q 'bad.cfg:3: device.type: expected "tun" or "tap"' "$T/check.out" \
    && grep -q "bad.cfg:3: device.mtu:" "$T/check.out"
ok $? "--check-config: crypto's and device's errors, each with file:line, exit 78"

cat > "$T/good.cfg" <<CFG
key_file = "$T/node.key";
device = { type = "tun"; name = "bifrost0"; mtu = 1420; address = "10.100.0.1/24"; };
CFG
"$TUNNEL" --check-config -c "$T/good.cfg" > "$T/check.out" 2>&1
ok $? "--check-config accepts a good config"

# device's setup fails after crypto's succeeded: in a namespace of its own, "lo"
# exists and is not a TUN device
sed 's/name = "bifrost0"/name = "lo"/' "$T/good.cfg" > "$T/lo.cfg"
mkdir -m 700 "$T/run"
timeout 10 unshare -n "$TUNNEL" -r "$T/run" -c "$T/lo.cfg" > "$T/run.out" 2>&1
rc=$?
sed 's/^/#   /' "$T/run.out"
[ "$rc" -eq 78 ] && grep -q 'cannot create tun "lo"' "$T/run.out" && grep -q "device: setup failed" "$T/run.out"
ok $? "device cannot start: exit 78 (not a hang, not a crash) with the reason"
# (the services' own directories stay: <run_dir>/crypto, <run_dir>/device)
[ -z "$(find "$T/run" -type s)" ]
ok $? "crypto was torn down again: no pipe socket left in the run directory ($(find "$T/run" -type s | tr '\n' ' '))"

# Not dumpable: no core file carries the key, and a process of the same user without
# CAP_SYS_PTRACE cannot read its memory. Seen from outside as the owner of its /proc
# files, which the kernel makes root for a process that is not dumpable: each program
# runs as nobody (65534) until it logs "running in", then its /proc/PID/environ is
chmod 755 "$T"
mkdir -m 755 "$T/nobody" "$T/nobody/run"
chown 65534:65534 "$T/nobody" "$T/nobody/run"
sed "s|$T/node.key|$T/nobody/node.key|" "$T/good.cfg" > "$T/nobody/node.cfg"
# proc_owner NAME CMD...: starts CMD as nobody, prints the owner of its /proc files
proc_owner () {
    local name=$1 log="$T/nobody/$1.out" pid owner="" i
    shift
    "$@" -r "$T/nobody/run" -c "$T/nobody/node.cfg" > "$log" 2>&1 &
    pid=$!
    PIDS="$PIDS $pid"
    for i in $(seq 1 100); do
        grep -q "running in" "$log" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    grep -q "running in" "$log" && owner=$(stat -c %u "/proc/$pid/environ" 2>/dev/null)
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    [ -n "$owner" ] || sed 's/^/#   /' "$log" >&2
    echo "${owner:-none}"
}
AS_NOBODY="setpriv --reuid 65534 --regid 65534 --clear-groups"
owner=$(proc_owner crypto $AS_NOBODY "$BIFROST_LIBEXEC_DIR/bifrost-crypto")
[ "$owner" = 0 ]
ok $? "bifrost-crypto is not dumpable (owner of its /proc files: $owner; root = not dumpable)"
owner=$(proc_owner router $AS_NOBODY "$BIFROST_LIBEXEC_DIR/bifrost-router")
[ "$owner" = 65534 ]
ok $? "bifrost-router, which holds no key, is dumpable (owner of its /proc files: $owner)"
