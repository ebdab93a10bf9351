#!/bin/bash
# node_privileges: bifrostd starts every service as root; each keeps only the
# capabilities of its row in DESIGN.md (libbus/bus_privs.h) for its setup, then
# runs under a uid of its own (libbus/bus_identity.h), in every one of its
# threads, with no_new_privs, at first start and after a restart; device's
# CAP_NET_ADMIN is kept only by its helper process (device-link). Every service
# is not dumpable once it switched: a process without CAP_SYS_PTRACE cannot read
# it. A process of another uid cannot reach the bus. And the tunnel works like
# that: ping both ways, and again after kill -9 of nat, of the tunnel and of its
# helper. Node a runs the default layout (bifrost-tunnel), node b two processes
# and nat on port 443. Every service is also confined by Landlock
# (bus_privs_sandbox, tested in the bus_privs self test, and below with
# --sandbox-check): node a names b's endpoint by a host name, so a's nat must
# still resolve it (from /etc/hosts, which `ip netns exec` takes from
# /etc/netns/NAMESPACE/hosts). A process that is not discovery's program is
# refused as service discovery by the bus. Every thread of every service runs
# under its seccomp filter (Seccomp: 2, libbus/bus_seccomp.h), and no service's
# filter refused a call during the whole test. (TAP)
. "$BIFROST_SRCDIR/tests/integration/node_lib.sh"

NODE_SPLIT="b"
underlay a 192.0.2.1
underlay b 192.0.2.2
HOSTS_DIR="/etc/netns/$(ns_of a)"
trap 'rm -rf "$HOSTS_DIR"; rmdir /etc/netns 2>/dev/null; node_cleanup' EXIT
mkdir -p "$HOSTS_DIR"
printf '127.0.0.1 localhost\n192.0.2.2 peer-b.test\n' > "$HOSTS_DIR/hosts"
KA=$(genkey a); KB=$(genkey b)
node_config a tun 10.100.0.1/24 "$(peer b "$KB" 10.100.0.2/32 peer-b.test:443)"
node_config b tun 10.100.0.2/24 "$(peer a "$KA" 10.100.0.1/32)"
sed -i 's/listen = "0.0.0.0:51820"/listen = "0.0.0.0:443"/' "$T/b/node.cfg"
start_node a; ok $? "node a: every service READY"
start_node b; ok $? "node b: every service READY"
wait_for 15 ping_ok a 10.100.0.2
ok $? "ping a -> b through the tunnel (a's sandboxed nat resolved peer-b.test; b's listens on 443)"
wait_for 5 ping_ok b 10.100.0.1
ok $? "ping b -> a"

# caps NODE SERVICE: "effective permitted bounding inheritable ambient no_new_privs"
# of every thread of the service's process, one line per distinct value
caps () {
    local pid t
    pid=$(service_pid "$1" "$2")
    [ -n "$pid" ] || { echo "no pid"; return; }
    for t in /proc/"$pid"/task/*; do
        awk '$1 ~ /^(CapEff|CapPrm|CapBnd|CapInh|CapAmb|NoNewPrivs):$/ { v [$1] = $2 }
             END { printf "%s %s %s %s %s %s\n", v ["CapEff:"], v ["CapPrm:"], v ["CapBnd:"],
                   v ["CapInh:"], v ["CapAmb:"], v ["NoNewPrivs:"] }' "$t/status"
    done | sort -u
}
NONE="0000000000000000 0000000000000000 0000000000000000 0000000000000000 0000000000000000 1"
# A service under its own uid (bus_identity.h) switched after its setup: the
# kernel cleared every capability; the bounding set keeps CAP_SETUID and
# CAP_SETGID, which it needed for the switch and which nothing can grant again
# (no_new_privs, a uid that is not 0)
SWITCHED="0000000000000000 0000000000000000 00000000000000c0 0000000000000000 0000000000000000 1"
# (and CAP_NET_BIND_SERVICE, for a port below 1024, that its setup used)
SWITCHED_BIND="0000000000000000 0000000000000000 00000000000004c0 0000000000000000 0000000000000000 1"
NET_ADMIN="0000000000001000 0000000000001000 0000000000001000 0000000000000000 0000000000000000 1"
BIND="0000000000000400 0000000000000400 0000000000000400 0000000000000000 0000000000000000 1"
expect_caps () {
    local node=$1 svc=$2 want=$3 what=$4 got
    got=$(caps "$node" "$svc")
    [ "$got" = "$want" ]
    ok $? "$node: $svc keeps $what in all its threads, no_new_privs (got: $(echo "$got" | tr '\n' '/'))"
}
expect_caps a bus "$SWITCHED" "nothing"
expect_caps a tunnel "$SWITCHED" "nothing (the key's process)"
expect_caps a nat "$SWITCHED" "nothing"
expect_caps a router "$SWITCHED" "nothing"
expect_caps b crypto "$SWITCHED" "nothing"
expect_caps b device "$SWITCHED" "nothing"
expect_caps b nat "$SWITCHED_BIND" "nothing once port 443 is bound"

# Each service under its own uid (schemas/users.def: user_base 61100 + slot),
# in every thread, with the node's group as its only one
expect_user () {
    local node=$1 svc=$2 uid=$3 pid got
    pid=$(service_pid "$node" "$svc")
    got=$(for t in /proc/"$pid"/task/*; do
              awk '$1 ~ /^(Uid|Gid|Groups):$/ { $1 = $1; printf "%s ", $0 } END { print "" }' "$t/status"
          done | sort -u)
    [ "$got" = "Uid: $uid $uid $uid $uid Gid: 61100 61100 61100 61100 Groups: 61100 " ]
    ok $? "$node: $svc runs as uid $uid, group 61100, in all its threads (got: $got)"
}
expect_user a bus 61101
expect_user a tunnel 61102
expect_user a nat 61105
expect_user a router 61106
expect_user b crypto 61103
expect_user b device 61104
expect_user b nat 61105

# The run directory lets the group pass and nobody else: a process of another
# uid cannot reach the bus; one of the group can (and then meets the broker's
# sender policy, below)
reach_bus () {
    local groups=--clear-groups
    [ -n "$3" ] && groups="--groups=$3"
    setpriv --reuid "$1" --regid "$2" "$groups" socat -u OPEN:/dev/null "UNIX-CONNECT:$T/a/run/bus.ipc" 2>&1
}
out=$(reach_bus 65534 65534 "")
[ $? -ne 0 ] && echo "$out" | grep -q "Permission denied"
ok $? "a: a process of uid 65534 cannot connect to bus.ipc: $(echo "$out" | grep -o 'Permission denied' | head -1)"
reach_bus 65534 65534 61100 >/dev/null
ok $? "a: a process in the node's group (61100) can"
[ "$(stat -c %a "$T/a/run")" = 710 ] && [ "$(stat -c %a "$T/a/run/bus.ipc")" = 660 ]
ok $? "a: run directory 0710 and bus.ipc 0660, group 61100 ($(stat -c '%a %G' "$T/a/run") / $(stat -c '%a %G' "$T/a/run/bus.ipc"))"

# reads_memory CAPS PID: can a root process with only CAPS (setpriv syntax, e.g.
# "+net_admin"; "" for none) read /proc/PID/environ? The kernel allows it for a
# dumpable process whose capabilities are a subset of the reader's, and only with
# CAP_SYS_PTRACE for one that is not dumpable.
reads_memory () {
    setpriv --bounding-set "-all${1:+,$1}" --inh-caps -all cat "/proc/$2/environ" >/dev/null 2>&1
}
# expect_read NODE SERVICE CAPS yes|no WHY
expect_read () {
    local pid rc
    pid=$(service_pid "$1" "$2")
    [ -n "$pid" ] || { ok 1 "$1: $2 has no pid"; return; }
    reads_memory "$3" "$pid"
    rc=$(( $? != 0 ))
    [ "$4" = yes ]
    ok $(( rc != $? )) "$1: a process with ${3:-no capabilities} $( [ "$4" = yes ] && echo reads || echo "cannot read") $2's memory ($pid): $5"
}
expect_read a router "" no "another uid, and not dumpable since it switched"
expect_read b crypto "" no "another uid, not dumpable"
expect_read b device "" no "another uid, not dumpable"
expect_read a tunnel "" no "another uid, not dumpable, it holds the key"

# device's CAP_NET_ADMIN lives in a helper process of its own (device-link,
# services/device/dev_link.h), forked before the drop: it keeps that one
# capability, is not dumpable, and has no socket but the one to its parent and
# rtnetlink
link_pid () { pgrep -P "$(service_pid "$1" "$2")" -x device-link | head -1; }
expect_link () {
    local node=$1 svc=$2 pid got socks
    pid=$(link_pid "$node" "$svc")
    [ -n "$pid" ] || { ok 1 "$node: $svc has no device-link helper"; return; }
    got=$(awk '$1 ~ /^(CapEff|CapPrm|CapBnd|CapInh|CapAmb|NoNewPrivs):$/ { v [$1] = $2 }
               END { printf "%s %s %s %s %s %s\n", v ["CapEff:"], v ["CapPrm:"], v ["CapBnd:"],
                     v ["CapInh:"], v ["CapAmb:"], v ["NoNewPrivs:"] }' "/proc/$pid/status")
    [ "$got" = "$NET_ADMIN" ]
    ok $? "$node: $svc's device-link helper ($pid) keeps CAP_NET_ADMIN only, no_new_privs (got: $got)"
    [ "$(awk '$1 == "Uid:" { print $2 }' "/proc/$pid/status")" = "$(awk '$1 == "Uid:" { print $2 }' "/proc/$(service_pid "$node" "$svc")/status")" ]
    ok $? "$node: the device-link helper runs under its parent's uid ($(awk '$1 == "Uid:" { print $2 }' "/proc/$pid/status"))"
    reads_memory "+net_admin" "$pid"
    ok $(( $? == 0 )) "$node: a process with +net_admin cannot read the device-link helper's memory (not dumpable)"
    # its sockets: the pair to its parent (unix) and rtnetlink, nothing else
    local inode kinds=""
    for inode in $(ls -l "/proc/$pid/fd" 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\]/\1/p'); do
        if awk -v i="$inode" '$10 == i { f = 1 } END { exit !f }' "/proc/$pid/net/netlink"; then kinds="$kinds netlink"
        elif awk -v i="$inode" '$7 == i { f = 1 } END { exit !f }' "/proc/$pid/net/unix"; then kinds="$kinds unix"
        else kinds="$kinds other"; fi
    done
    case "$kinds" in *other*|"") false ;; esac
    ok $? "$node: the device-link helper holds only unix and netlink sockets:$kinds"
}
expect_link a tunnel
expect_link b device
# It goes with its parent, and a restarted tunnel has a new one that works
old=$(service_pid a tunnel); old_link=$(link_pid a tunnel)
kill -KILL "$old"
wait_restarted a tunnel "$old"
ok $? "a: kill -9 of the tunnel ($old): restarted as $(service_pid a tunnel)"
gone () { ! kill -0 "$old_link" 2>/dev/null || grep -q '^State:.*Z' "/proc/$old_link/status" 2>/dev/null; }
wait_for 5 gone
ok $? "a: the old tunnel's device-link helper ($old_link) went with it"
expect_caps a tunnel "$SWITCHED" "nothing after the restart"
expect_link a tunnel
wait_for 15 ping_ok a 10.100.0.2
ok $? "ping a -> b after the tunnel's restart (the new helper made the interface)"
# The helper killed alone: the tunnel could no longer follow an address
# change, so it ends with an error and is restarted, with a new helper
old=$(service_pid a tunnel); old_link=$(link_pid a tunnel)
kill -KILL "$old_link"
wait_restarted a tunnel "$old"
ok $? "a: kill -9 of the device-link helper ($old_link): the tunnel ($old) ended and was restarted as $(service_pid a tunnel)"
grep -q "device-link helper (pid $old_link) is gone" "$T/a/bifrostd.log"
ok $? "a: the tunnel said why: $(grep -o "the device-link helper (pid $old_link) is gone[^;]*" "$T/a/bifrostd.log" | head -1)"
wait_for 15 ping_ok a 10.100.0.2
ok $? "ping a -> b with the new helper"

# A restarted service drops the same way, and the tunnel comes back
old=$(service_pid a nat)
kill -KILL "$old"
wait_restarted a nat "$old"
ok $? "a: kill -9 of nat ($old): restarted as $(service_pid a nat)"
expect_caps a nat "$SWITCHED" "nothing after the restart"
wait_for 15 ping_ok a 10.100.0.2
ok $? "ping a -> b after the restart"

# The bus authorizes senders (schemas/senders.def, docs/bus.md): a process that
# is not discovery's program cannot register as discovery, so it can never
# publish peer.up and install a key in crypto; the node goes on working
ROGUE_LOG="$T/rogue.log"
# (ip netns exec and env exec it: $! is its pid)
ip netns exec "$(ns_of a)" env BIFROST_SERVICE=discovery "$BIFROST_BUILDDIR/tests/bifrost-testsvc" \
    -r "$T/a/run" -i discovery.9 > "$ROGUE_LOG" 2>&1 &
ROGUE=$!
refused () { grep -q "refused discovery.9 as service discovery: pid $ROGUE .*bifrost-testsvc" "$T/a/bifrostd.log"; }
wait_for 5 refused
ok $? "a's bus refuses a process running bifrost-testsvc as service discovery: $(grep -o 'refused discovery.9[^(]*' "$T/a/bifrostd.log" | head -1)"
kill "$ROGUE" 2>/dev/null; wait "$ROGUE" 2>/dev/null
wait_for 15 ping_ok a 10.100.0.2
ok $? "ping a -> b with the rogue gone"

# --- Landlock: what each service's sandbox lets it reach ----------------------
# Landlock is not visible in /proc, so ask each program, confined as it runs
# with its node's config and run directory (--sandbox-check, libbus/
# bus_service.c), and look at what the running services made: only crypto (or
# the tunnel) reads the node key; only the broker creates files in the run
# directory itself; each service creates them in <run_dir>/<its name>, where
# the pipes it receives have their sockets (docs/supervisor.md, data-plane.md)
sandbox_check () {  # NODE PROGRAM PATH: the program's one-line answer
    "$LIBEXEC/bifrost-$2" -c "$T/$1/node.cfg" -r "$T/$1/run" --sandbox-check "$3" 2>/dev/null
}
expect_sandbox () {  # NODE PROGRAM PATH ANSWER
    local got; got=$(sandbox_check "$1" "$2" "$3")
    case "$got" in *": $4"*) ok 0 "$1: bifrost-$2 confined: $got";; *) ok 1 "$1: bifrost-$2 confined: $3: $4 expected, got '$got'";; esac
}
for n in a b; do
    for prog in $(grep -o 'exec = "bifrost-[a-z]*"' "$T/$n/node.cfg" | sed 's/.*bifrost-//; s/"$//'); do
        case $prog in tunnel|crypto) expect_sandbox $n $prog "$T/$n/node.key" "read allowed";;
                      *) expect_sandbox $n $prog "$T/$n/node.key" "read denied";; esac
        case $prog in bus) expect_sandbox $n $prog "$T/$n/run" "create allowed";;
                      *) expect_sandbox $n $prog "$T/$n/run" "create denied";; esac
        case $prog in tunnel) dirs="crypto device";; *) dirs=$prog;; esac
        for d in $dirs; do
            expect_sandbox $n $prog "$T/$n/run/$d" "create allowed"
        done
    done
done
# nat may not even write where crypto listens
expect_sandbox b nat "$T/b/run/crypto" "create denied"
# The pipes' sockets, each in its receiver's directory (0710, the node's group
# may pass: bus_identity.h), none in the run directory
layout_ok () {
    test -S "$T/a/run/nat/pipe-crypto-nat.ipc" && test -S "$T/a/run/crypto/pipe-nat-crypto.ipc" \
    && test -S "$T/b/run/crypto/pipe-dev-crypto.ipc" && test -S "$T/b/run/device/pipe-crypto-dev.ipc" \
    && [ "$(stat -c '%a %g' "$T/b/run/nat" "$T/b/run/crypto" "$T/b/run/device" | sort -u)" = "710 61100" ] \
    && ! ls "$T"/a/run/pipe-* "$T"/b/run/pipe-* >/dev/null 2>&1
}
layout_ok
ok $? "the pipes' sockets are in <run_dir>/<receiver>/ (0710, group 61100), none in the run directory"
# The broker's exe reader (outside its sandbox: Landlock hides /proc/PID/exe
# from the broker) is its child and keeps nothing either
bus_pid=$(service_pid a bus)
reader=$(ps -o pid=,comm= --ppid "$bus_pid" 2>/dev/null | awk '$2 == "bifrost-exe-rd" { print $1 }')
[ -n "$reader" ] && [ "$(awk '$1 ~ /^(CapEff|CapPrm|CapBnd|NoNewPrivs):$/ { printf "%s ", $2 }' /proc/$reader/status)" \
                     = "0000000000080000 0000000000080000 0000000000080000 1 " ]
ok $? "a: the bus's exe reader ($reader) is its child, with CAP_SYS_PTRACE only (to read a program's link) and no_new_privs"

# The operator sees the refusals: bus.status counts the rogue discovery's
# refused registration (bifrostctl bus), and status says so under its table
out=$(ctl a bus --json)
refused=$(echo "$out" | sed -n 's/.*"refused": *\([0-9]*\).*/\1/p')
[ -n "$refused" ] && [ "$refused" -ge 1 ]
ok $? "a: bifrostctl bus --json counts the refusal (refused $refused: $out)"
ctl a bus | grep -q "^ *INSTANCES .* REFUSED "
ok $? "a: bifrostctl bus prints the counters as a table"
ctl a status | grep -qE "^bus: [0-9]+ messages refused by the sender policy \(bifrostctl bus\)$"
ok $? "a: bifrostctl status says so: $(ctl a status | grep '^bus: ')"

# Every thread of every service of both nodes runs under its seccomp filter
# (libbus/bus_seccomp.h): "Seccomp: 2" in /proc; loaded with TSYNC after setup,
# so ZeroMQ's I/O threads have it too, and so has the nat restarted above
# seccomp_modes NODE: "INSTANCE MODE" per ready instance, one line per distinct
# Seccomp value among its threads
seccomp_modes () {
    local inst pid t
    ctl "$1" status 2>/dev/null | awk '$3 == "ready" { print $1, $2 }' | while read -r inst pid; do
        for t in /proc/"$pid"/task/*; do
            awk -v i="$inst" '$1 == "Seccomp:" { print i, $2 }' "$t/status"
        done | sort -u
    done
}
for n in a b; do
    modes=$(seccomp_modes "$n")
    services=$(echo "$modes" | awk '{ print $1 }' | sort -u | wc -l)
    [ "$services" -ge 4 ] && ! echo "$modes" | grep -qv ' 2$'
    ok $? "$n: every thread of its $services services runs under a seccomp filter (Seccomp: 2): $(echo "$modes" | tr '\n' ' ')"
done
# and no filter refused a call the services made (each refusal is a call missing
# from schemas/syscalls.def; seccomp_check says it again at exit for the stop)
! grep -h "seccomp refused" "$T"/*/bifrostd.log
ok $? "no service's seccomp filter refused a system call while the nodes ran"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
