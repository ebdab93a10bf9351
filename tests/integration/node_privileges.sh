#!/bin/bash
# node_privileges: bifrostd starts every service as root, and each keeps only the
# capabilities of its row in DESIGN.md (libbus/bus_privs.h), in every one of its
# threads, with no_new_privs, at first start and after a restart: device (in
# bifrost-tunnel or bifrost-device) CAP_NET_ADMIN, nat CAP_NET_BIND_SERVICE only
# when it listens below 1024, everything else nothing. The processes that hold the
# key are not dumpable: a process without CAP_SYS_PTRACE cannot read them, while it
# can read a service that holds no key and no capability it lacks. And the tunnel
# works like that: ping both ways, and again after kill -9 of nat. Node a runs the
# default layout (bifrost-tunnel), node b two processes and nat on port 443. nat is
# also confined to its run directory (Landlock, bus_privs_sandbox, tested in the
# bus_privs self test): node a names b's endpoint by a host name, so a's nat must
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
NET_ADMIN="0000000000001000 0000000000001000 0000000000001000 0000000000000000 0000000000000000 1"
BIND="0000000000000400 0000000000000400 0000000000000400 0000000000000000 0000000000000000 1"
expect_caps () {
    local node=$1 svc=$2 want=$3 what=$4 got
    got=$(caps "$node" "$svc")
    [ "$got" = "$want" ]
    ok $? "$node: $svc keeps $what in all its threads, no_new_privs (got: $(echo "$got" | tr '\n' '/'))"
}
expect_caps a bus "$NONE" "nothing"
expect_caps a tunnel "$NET_ADMIN" "CAP_NET_ADMIN"
expect_caps a nat "$NONE" "nothing"
expect_caps a router "$NONE" "nothing"
expect_caps b crypto "$NONE" "nothing"
expect_caps b device "$NET_ADMIN" "CAP_NET_ADMIN"
expect_caps b nat "$BIND" "CAP_NET_BIND_SERVICE (port 443)"

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
expect_read a router "" yes "no key, dumpable"
expect_read b crypto "" no "not dumpable"
expect_read b device "+net_admin" yes "no key, dumpable"
expect_read a tunnel "+net_admin" no "not dumpable, it holds the key"

# A restarted service drops the same way, and the tunnel comes back
old=$(service_pid a nat)
kill -KILL "$old"
wait_restarted a nat "$old"
ok $? "a: kill -9 of nat ($old): restarted as $(service_pid a nat)"
expect_caps a nat "$NONE" "nothing after the restart"
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
refused () { grep -q "refused discovery.9 as service discovery: pid $ROGUE runs .*bifrost-testsvc" "$T/a/bifrostd.log"; }
wait_for 5 refused
ok $? "a's bus refuses a process running bifrost-testsvc as service discovery: $(grep -o 'refused discovery.9[^(]*' "$T/a/bifrostd.log" | head -1)"
kill "$ROGUE" 2>/dev/null; wait "$ROGUE" 2>/dev/null
wait_for 15 ping_ok a 10.100.0.2
ok $? "ping a -> b with the rogue gone"

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
