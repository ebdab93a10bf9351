# natgrid_lib.sh: the project's own NAT grid in network namespaces (sourced, not run).
#
# A "public" segment (a bridge in a namespace of its own, 203.0.113.0/24, documentation
# addresses: nothing leaves the machine) with hosts on it (registry, relay, coturn,
# probe servers), and nodes behind NAT routers made with nftables, one router (or
# two, for cgnat) and one LAN namespace per node. docs/testing-nat.md has the diagram,
# the rules of every kind and what tests/integration/natgrid_kinds.sh proved of them.
#
#   grid_init                       the public segment (203.0.113.1 is its gateway);
#                                   installs the cleanup on EXIT/INT/TERM, run after
#                                   the EXIT trap the script already has (source
#                                   node_lib.sh before this file)
#   grid_public_host NAME IP        a host namespace on the public segment at IP
#                                   (203.0.113.2 - .99; .100 up are the routers')
#   grid_node KIND NAME [LAN]       a node NAME behind a new router of KIND; LAN is the
#                                   /24 prefix of its LAN ("192.168.1"; default 10.N.0,
#                                   N the router's number): the node is LAN.2, the
#                                   router LAN.1. Sets GRID_NS, GRID_IP, GRID_WAN.
#   grid_nodes KIND:NAME[:LAN]...   several nodes, built in parallel (16: ~1-10 s)
#   grid_kinds                      the KINDs, one a line
#   grid_ns NAME / grid_ip NAME     namespace and address of a node (its LAN address)
#                                   or of a public host
#   grid_wan NAME                   the public address the node's traffic leaves with
#                                   (its router's, the carrier's for cgnat, its own for none)
#   grid_router NAME                the namespace of the node's (home) router; "" for none
#   grid_carrier NAME               the carrier NAT's namespace of a cgnat node
#   grid_carrier_ip NAME            the carrier's inner address (100.64.N.1); the
#                                   home router's upstream address is 100.64.N.2
#   grid_kind NAME                  the node's KIND
#   grid_exec NAME CMD...           runs CMD in NAME's namespace (a node, a public host,
#                                   or a namespace of the grid such as $(grid_router x))
#   grid_spawn NAME LOG CMD...      starts CMD in NAME's namespace in the background,
#                                   output to LOG; its pid in GRID_PID (killed by
#                                   grid_cleanup). Not inside $( ): state would be lost.
#   grid_kill PID                   SIGTERM, then SIGKILL after 2 s, of a spawned PID
#   grid_show                       the topology as TAP comments
#   grid_cleanup                    kills what grid_spawn started and anything left in
#                                   the grid's namespaces, deletes the namespaces; safe
#                                   to call twice
#
# Knobs, read when a router is made: GRID_UDP_TIMEOUT (conntrack's UDP mapping
# lifetime, s), GRID_CONE_TIMEOUT, GRID_CARRIER_PORTS, GRID_SEQ_BASE, GRID_SEQ_COUNT.
#
# Names of namespaces carry a per-run tag (pid and a random byte: parallel runs never
# clash); interface names are fixed (eth0, wan, lan, br0, r<N>, h<N>) because every
# interface is created inside a namespace of this run. grid_init, grid_public_host,
# grid_node(s), grid_spawn and grid_cleanup keep their state in shell variables: never
# call them in a subshell ($(...), a pipe, &); the getters and grid_exec may be.

GRID_KINDS="none full-cone restricted port-restricted symmetric symmetric-seq udp-blocked cgnat cgnat-sym"
# Kinds a test asks for by name, outside the grid of every pair (grid_kinds):
# https-only lets out nothing but TCP to port 443 (and ICMP), as hotel and
# corporate networks do (tests/integration/relay_wss.sh)
GRID_EXTRA_KINDS="https-only"
GRID_TAG=${GRID_TAG:-$$x$(printf %02x $((RANDOM % 256)))}
GRID_PUB=""
GRID_NAMESPACES=""
GRID_PIDS=""
GRID_BUILDING=""
GRID_N=0
GRID_HOSTS=0
GRID_NS=""; GRID_IP=""; GRID_WAN=""; GRID_PID=""
# Ports a carrier NAT maps to (never the node's own: proves the second layer)
GRID_CARRIER_PORTS=${GRID_CARRIER_PORTS:-20000-29999}
# First external port of symmetric-seq; each new mapping takes the next one
GRID_SEQ_BASE=${GRID_SEQ_BASE:-30000}
GRID_SEQ_COUNT=${GRID_SEQ_COUNT:-1024}
# Lifetime of a cone NAT's filter entry after the inside host last sent (seconds)
GRID_CONE_TIMEOUT=${GRID_CONE_TIMEOUT:-120}
# UDP mapping lifetime of the routers (conntrack's udp_timeout and udp_timeout_stream,
# seconds) for routers made from now on; unset: the kernel's 30 s / 120 s
GRID_UDP_TIMEOUT=${GRID_UDP_TIMEOUT:-}
declare -gA GRID_NODE_NS=() GRID_NODE_IP=() GRID_NODE_WAN=() GRID_NODE_ROUTER=() GRID_NODE_CARRIER=() GRID_NODE_KIND=() GRID_NODE_CARRIER_IP=() GRID_NODE_NUM=()

_grid_die () { echo "Bail out! natgrid: $*"; exit 1; }

# Every "ip" or "ip netns exec" costs a process start (10-25 ms on the 2-core
# machine): a namespace is set up with one "ip -b" batch and one exec that writes
# its sysctls with shell builtins and loads its nftables rules.

# _grid_prep NS FWD [RULES]: sysctls of a new namespace (IPv6 off: no link-local
# path around the NATs; forwarding FWD; no rp_filter), then RULES (stdin) into nft
_grid_prep () {
    local ns=$1 fwd=$2 nft=${3:-}
    ip netns exec "$ns" sh -c '
        for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/default/disable_ipv6; do
            [ -w $f ] && echo 1 > $f
        done
        echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter && echo 0 > /proc/sys/net/ipv4/conf/default/rp_filter &&
        echo '"$fwd"' > /proc/sys/net/ipv4/ip_forward || exit 1
        [ -z "$1" ] || nft -f - || exit 1
        # conntrack exists in the namespace once the NAT rules are loaded
        if [ -n "$1" ] && [ -n "$2" ]; then
            echo $2 > /proc/sys/net/netfilter/nf_conntrack_udp_timeout &&
            echo $2 > /proc/sys/net/netfilter/nf_conntrack_udp_timeout_stream || exit 1
        fi' natgrid-prep "$nft" "${GRID_UDP_TIMEOUT:-}" || _grid_die "setting up namespace $ns failed"
}

# _grid_ip NS: runs the "ip" commands of stdin in NS as one batch
_grid_ip () { ip -n "$1" -b - || _grid_die "ip commands in $1 failed"; }

# _grid_attach PORT: PORT (a veth end already in the public namespace) joins br0
_grid_attach () { printf 'link set %s master br0\nlink set %s up\n' "$1" "$1" | _grid_ip "$GRID_PUB"; }

_grid_name_ok () {
    [[ $1 =~ ^[A-Za-z0-9_.-]{1,24}$ ]] || _grid_die "bad name '$1' (letters, digits, _ . -; 24 at most)"
    [ -z "${GRID_NODE_NS[$1]:-}" ] || _grid_die "name '$1' is taken"
}

grid_init () {
    [ -n "$GRID_PUB" ] && return 0
    [ "$(id -u)" = 0 ] || _grid_die "needs root (network namespaces)"
    command -v nft >/dev/null || _grid_die "needs nft (nftables)"
    GRID_PUB="ng$GRID_TAG-pub"
    ip netns add "$GRID_PUB" || _grid_die "ip netns add $GRID_PUB failed"
    GRID_NAMESPACES="$GRID_PUB"
    _grid_prep "$GRID_PUB" 0
    _grid_ip "$GRID_PUB" <<IP
link set lo up
link add br0 type bridge
addr add 203.0.113.1/24 dev br0
link set br0 up
IP
    # Cleanup on exit, chained after the EXIT trap the script already set (node_lib's
    # node_cleanup stops bifrostd gracefully and prints its logs first)
    local prev="" prevcmd
    prevcmd=$(trap -p EXIT)
    if [ -n "$prevcmd" ]; then
        eval "set -- $prevcmd"
        prev=$3
    fi
    case "$prev" in *grid_cleanup*) ;; *) trap "${prev:+$prev; }grid_cleanup" EXIT ;; esac
    [ -n "$(trap -p INT)" ] || trap 'exit 130' INT
    [ -n "$(trap -p TERM)" ] || trap 'exit 143' TERM
}

grid_kinds () { printf '%s\n' $GRID_KINDS; }

# grid_public_host NAME IP
grid_public_host () {
    local name=$1 ip=$2
    [ -n "$GRID_PUB" ] || grid_init
    _grid_name_ok "$name"
    [[ $ip =~ ^203\.0\.113\.([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge 2 ] && [ "${BASH_REMATCH[1]}" -le 99 ] \
        || _grid_die "public host $name: $ip is not in 203.0.113.2 - 203.0.113.99"
    GRID_HOSTS=$((GRID_HOSTS + 1))
    local ns="ng$GRID_TAG-h-$name"
    ip netns add "$ns" || _grid_die "ip netns add $ns failed"
    GRID_NAMESPACES="$ns $GRID_NAMESPACES"
    _grid_prep "$ns" 0
    _grid_ip "$ns" <<IP
link set lo up
link add eth0 type veth peer name h$GRID_HOSTS netns $GRID_PUB
addr add $ip/24 dev eth0
link set eth0 up
route add default via 203.0.113.1
IP
    _grid_attach "h$GRID_HOSTS"
    GRID_NODE_NS[$name]=$ns; GRID_NODE_IP[$name]=$ip; GRID_NODE_WAN[$name]=$ip
    GRID_NODE_KIND[$name]=public; GRID_NODE_ROUTER[$name]=""; GRID_NODE_CARRIER[$name]=""
    GRID_NS=$ns; GRID_IP=$ip; GRID_WAN=$ip
}

# _grid_nft_rules KIND LANNET: the nftables ruleset of a router of KIND, LAN on "lan",
# public side on "wan" (LANNET: the LAN's network, for the cone NATs' dnat)
_grid_nft_rules () {
    local kind=$1 wanip=$2
    local snat pre="" track="" fwd_kind="" sets=""
    case "$kind" in
        full-cone)
            # EIM (masquerade keeps a source's mapping) + EIF: every mapped port the
            # inside host sent from is open to anyone, dnat'ed back to its owner
            snat='masquerade'
            sets="map cone { type inet_service : ipv4_addr . inet_service; flags timeout; timeout ${GRID_CONE_TIMEOUT}s; }"
            track='oifname "wan" meta l4proto udp update @cone { udp sport : ct original ip saddr . ct original proto-src }'
            pre='iifname "wan" meta l4proto udp dnat ip to udp dport map @cone'
            fwd_kind='iifname "wan" oifname "lan" ct status dnat accept' ;;
        restricted)
            # EIM + address-dependent filtering: the mapped port is open to the
            # addresses the inside host sent to, from any of their ports
            snat='masquerade'
            sets="map cone { type ipv4_addr . inet_service : ipv4_addr . inet_service; flags timeout; timeout ${GRID_CONE_TIMEOUT}s; }"
            track='oifname "wan" meta l4proto udp update @cone { ip daddr . udp sport : ct original ip saddr . ct original proto-src }'
            pre='iifname "wan" meta l4proto udp dnat ip to ip saddr . udp dport map @cone'
            fwd_kind='iifname "wan" oifname "lan" ct status dnat accept' ;;
        port-restricted|udp-blocked|https-only|home)
            # EIM (conntrack keeps the source port when free, reuses a source's
            # mapping) + address-and-port-dependent filtering (conntrack only)
            snat='masquerade' ;;
        symmetric)
            # EDM: every new flow (a new destination address or port) gets a random port
            snat='masquerade fully-random' ;;
        symmetric-seq)
            # EDM with predictable ports: every new UDP/TCP flow takes the next port.
            # Through a map: nft hands a plain "numgen inc offset B" to snat in host
            # byte order (this kernel counted 30000, 30256, 30512: steps of 256)
            local i seq=""
            for ((i = 0; i < GRID_SEQ_COUNT; i++)); do seq="$seq$i : $((GRID_SEQ_BASE + i)), "; done
            snat="meta l4proto { tcp, udp } snat ip to $wanip : numgen inc mod $GRID_SEQ_COUNT map { ${seq%, } }
        oifname \"wan\" masquerade" ;;
        carrier)
            # CGN (RFC 6888 REQ-1): EIM into a port range the home router never uses,
            # so the second translation shows; filtering by conntrack (APDF)
            snat="meta l4proto { tcp, udp } snat ip to $wanip:$GRID_CARRIER_PORTS
        oifname \"wan\" masquerade" ;;
        carrier-sym)
            snat="meta l4proto { tcp, udp } snat ip to $wanip:$GRID_CARRIER_PORTS fully-random
        oifname \"wan\" masquerade" ;;
        *) _grid_die "unknown router kind $kind" ;;
    esac
    [ "$kind" = udp-blocked ] && fwd_kind='meta l4proto udp counter drop'
    local https_only=""
    [ "$kind" = https-only ] && https_only='iifname "lan" oifname "wan" tcp dport 443 accept
        iifname "lan" oifname "wan" meta l4proto icmp accept
        iifname "lan" oifname "wan" counter drop'
    # No LAN reaches a private address through the public side (another LAN); a home
    # router behind a carrier may reach the carrier's inner segment, its upstream
    local private="10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10"
    [ "$kind" = home ] && private="10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16"
    cat <<NFT
table ip natgrid {
    $sets
    chain nat_pre {
        type nat hook prerouting priority dstnat; policy accept;
        $pre
    }
    chain nat_post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wan" $snat
    }
    chain cone_track {
        type filter hook postrouting priority srcnat + 10; policy accept;
        $track
    }
    chain filter_fwd {
        type filter hook forward priority filter; policy drop;
        $( [ "$kind" = udp-blocked ] && echo "$fwd_kind" )
        oifname "wan" ip daddr { $private } counter drop
        $https_only
        ct state established,related accept
        iifname "lan" oifname "wan" accept
        $( [ "$kind" != udp-blocked ] && echo "$fwd_kind" )
        counter drop
    }
    chain filter_in {
        type filter hook input priority filter; policy drop;
        iifname { "lo", "lan" } accept
        ct state established,related accept
        icmp type echo-request accept
        counter drop
    }
}
NFT
}

# _grid_plan KIND NAME [LAN-PREFIX]: names and addresses of a node, in this shell
_grid_plan () {
    local kind=$1 name=$2 lan=${3:-}
    [ -n "$GRID_PUB" ] || grid_init
    _grid_name_ok "$name"
    case " $GRID_KINDS $GRID_EXTRA_KINDS " in *" $kind "*) ;; *) _grid_die "unknown NAT kind '$kind' (grid_kinds lists them)" ;; esac
    GRID_N=$((GRID_N + 1))
    [ "$GRID_N" -le 150 ] || _grid_die "more than 150 routers"
    local n=$GRID_N wan="203.0.113.$((100 + GRID_N))"
    [ -n "$lan" ] || lan="10.$n.0"
    [[ $lan =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || _grid_die "LAN prefix '$lan' is not a.b.c"
    local node="ng$GRID_TAG-n-$name" router="" carrier=""
    [ "$kind" = none ] || router="ng$GRID_TAG-r-$name"
    case "$kind" in cgnat|cgnat-sym) carrier="ng$GRID_TAG-c-$name"; GRID_NODE_CARRIER_IP[$name]=100.64.$n.1 ;; esac
    GRID_NODE_KIND[$name]=$kind; GRID_NODE_NS[$name]=$node; GRID_NODE_WAN[$name]=$wan
    GRID_NODE_ROUTER[$name]=$router; GRID_NODE_CARRIER[$name]=$carrier
    GRID_NODE_NUM[$name]=$n
    if [ "$kind" = none ]; then GRID_NODE_IP[$name]=$wan; else GRID_NODE_IP[$name]=$lan.2; fi
    # Listed before they exist: a build that fails half way is still cleaned up
    GRID_NAMESPACES="$node $router $carrier $GRID_NAMESPACES"
    GRID_NS=$node; GRID_IP=${GRID_NODE_IP[$name]}; GRID_WAN=$wan
}

# _grid_build NAME: creates the namespaces, links, addresses and rules of a planned
# node; reads the state only, so several may run at once in the background
_grid_build () {
    local name=$1
    local kind=${GRID_NODE_KIND[$name]} n=${GRID_NODE_NUM[$name]} wan=${GRID_NODE_WAN[$name]}
    local node=${GRID_NODE_NS[$name]} router=${GRID_NODE_ROUTER[$name]} carrier=${GRID_NODE_CARRIER[$name]}
    local lan=${GRID_NODE_IP[$name]%.2}
    printf 'netns add %s\n' $node $router $carrier | ip -b - || _grid_die "ip netns add for $name failed"
    _grid_prep "$node" 0
    if [ "$kind" = none ]; then
        _grid_ip "$node" <<IP
link set lo up
link add eth0 type veth peer name r$n netns $GRID_PUB
addr add $wan/24 dev eth0
link set eth0 up
route add default via 203.0.113.1
IP
        _grid_attach "r$n"
        return 0
    fi
    # The LAN: node (.2) - router (.1)
    local upstream=$wan gateway=203.0.113.1 uplink="link add wan type veth peer name r$n netns $GRID_PUB"
    case "$kind" in cgnat|cgnat-sym) upstream=100.64.$n.2; gateway=100.64.$n.1; uplink="" ;; esac
    local rules=$kind
    [ -z "$carrier" ] || rules=home
    _grid_nft_rules "$rules" "$upstream" | _grid_prep "$router" 1 rules
    if [ -n "$carrier" ]; then
        # Carrier NAT: 100.64.N.1 inside (the home router's upstream), WAN public
        if [ "$kind" = cgnat ]; then _grid_nft_rules carrier "$wan"; else _grid_nft_rules carrier-sym "$wan"; fi \
            | _grid_prep "$carrier" 1 rules
        _grid_ip "$carrier" <<IP
link set lo up
link add wan type veth peer name r$n netns $GRID_PUB
link add lan type veth peer name wan netns $router
addr add $wan/24 dev wan
addr add 100.64.$n.1/24 dev lan
link set wan up
link set lan up
route add default via 203.0.113.1
IP
    fi
    _grid_ip "$router" <<IP
link set lo up
$uplink
link add lan type veth peer name eth0 netns $node
addr add $upstream/24 dev wan
addr add $lan.1/24 dev lan
link set wan up
link set lan up
route add default via $gateway
IP
    _grid_ip "$node" <<IP
link set lo up
addr add $lan.2/24 dev eth0
link set eth0 up
route add default via $lan.1
IP
    _grid_attach "r$n"
}

# grid_node KIND NAME [LAN-PREFIX]
grid_node () {
    _grid_plan "$@"
    _grid_build "$2"
}

# grid_nodes KIND:NAME[:LAN-PREFIX]...: several nodes, built in parallel
grid_nodes () {
    local spec kind name lan names="" pids="" p failed=0
    for spec in "$@"; do
        IFS=: read -r kind name lan <<< "$spec"
        _grid_plan "$kind" "$name" "$lan"
        names="$names $name"
    done
    for name in $names; do _grid_build "$name" & pids="$pids $!"; done
    GRID_BUILDING=$pids
    for p in $pids; do wait "$p" || failed=1; done
    GRID_BUILDING=""
    [ "$failed" = 0 ] || _grid_die "building nodes$names failed"
}

_grid_known () { [ -n "${GRID_NODE_NS[$1]:-}" ] || { echo "natgrid: no node or host '$1'" >&2; return 1; }; }
# _grid_target NAME-OR-NAMESPACE: the namespace (a node's, a host's, or any of this grid)
_grid_target () {
    if [ -n "${GRID_NODE_NS[$1]:-}" ]; then echo "${GRID_NODE_NS[$1]}"; return 0; fi
    case " $GRID_NAMESPACES " in *" $1 "*) echo "$1"; return 0 ;; esac
    echo "natgrid: no node, host or namespace '$1' in this grid" >&2
    return 1
}
grid_ns ()      { _grid_known "$1" && echo "${GRID_NODE_NS[$1]}"; }
grid_ip ()      { _grid_known "$1" && echo "${GRID_NODE_IP[$1]}"; }
grid_wan ()     { _grid_known "$1" && echo "${GRID_NODE_WAN[$1]}"; }
grid_router ()  { _grid_known "$1" && echo "${GRID_NODE_ROUTER[$1]}"; }
grid_carrier () { _grid_known "$1" && echo "${GRID_NODE_CARRIER[$1]}"; }
grid_kind ()    { _grid_known "$1" && echo "${GRID_NODE_KIND[$1]}"; }
grid_carrier_ip () { _grid_known "$1" && echo "${GRID_NODE_CARRIER_IP[$1]:-}"; }
grid_exec ()    { local ns; ns=$(_grid_target "$1") || return 1; shift; ip netns exec "$ns" "$@"; }

# grid_spawn NAME LOG CMD...: ip and netns exec exec, so $! is CMD's own pid
grid_spawn () {
    local ns log=$2
    ns=$(_grid_target "$1") || return 1
    shift 2
    ip netns exec "$ns" "$@" >"$log" 2>&1 &
    GRID_PID=$!
    GRID_PIDS="$GRID_PIDS $GRID_PID"
}

# grid_kill PID: only a pid grid_spawn started
grid_kill () {
    case " $GRID_PIDS " in *" $1 "*) ;; *) echo "natgrid: $1 was not spawned by the grid" >&2; return 1 ;; esac
    kill -TERM "$1" 2>/dev/null || return 0
    local i
    for i in $(seq 1 40); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
    kill -KILL "$1" 2>/dev/null
    return 0
}

grid_show () {
    local name
    echo "# natgrid $GRID_TAG: public segment 203.0.113.0/24 in $GRID_PUB"
    for name in "${!GRID_NODE_NS[@]}"; do
        echo "# $name (${GRID_NODE_KIND[$name]}): ns ${GRID_NODE_NS[$name]} ip ${GRID_NODE_IP[$name]} public ${GRID_NODE_WAN[$name]}${GRID_NODE_ROUTER[$name]:+ router ${GRID_NODE_ROUTER[$name]}}${GRID_NODE_CARRIER[$name]:+ carrier ${GRID_NODE_CARRIER[$name]}}"
    done
}

grid_cleanup () {
    local p ns i
    # Builders still running would make namespaces after the sweep: let them end
    # (a build is a few bounded ip commands)
    for p in $GRID_BUILDING; do wait "$p" 2>/dev/null; done
    GRID_BUILDING=""
    for p in $GRID_PIDS; do kill -TERM "$p" 2>/dev/null; done
    for p in $GRID_PIDS; do
        for i in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$p" 2>/dev/null
    done
    GRID_PIDS=""
    if [ -n "${GRID_NAMESPACES// /}" ]; then
        # Whatever still runs in a namespace of this run was started by this run
        for p in $(printf 'netns pids %s\n' $GRID_NAMESPACES | ip -force -b - 2>/dev/null); do
            kill -KILL "$p" 2>/dev/null
        done
        printf 'netns del %s\n' $GRID_NAMESPACES | ip -force -b - >/dev/null 2>&1
    fi
    GRID_NAMESPACES=""
    GRID_PUB=""
    GRID_NODE_NS=(); GRID_NODE_IP=(); GRID_NODE_WAN=(); GRID_NODE_ROUTER=(); GRID_NODE_CARRIER=()
    GRID_NODE_KIND=(); GRID_NODE_CARRIER_IP=(); GRID_NODE_NUM=()
    return 0
}
