# natgrid_lib.sh: the project's own NAT grid in network namespaces (sourced, not run).
#
# A "public" segment (a bridge in a namespace of its own, 203.0.113.0/24, documentation
# addresses: nothing leaves the machine) with hosts on it (registry, relay, coturn,
# probe servers), and nodes behind NAT routers made with nftables, one router (or
# two, for cgnat) and one LAN namespace per node. docs/testing-nat.md has the diagram,
# the rules of every kind and what tests/integration/natgrid_kinds.sh proved of them.
#
#   grid_init                       the public segment (203.0.113.1 is its gateway);
#                                   installs the cleanup on EXIT/INT/TERM, chained
#                                   after a cleanup trap the script already has
#   grid_public_host NAME IP        a host namespace on the public segment at IP
#                                   (203.0.113.2 - .99; .100 up are the routers')
#   grid_node KIND NAME [LAN]       a node NAME behind a new router of KIND; LAN is the
#                                   /24 prefix of its LAN ("192.168.1"; default 10.N.0,
#                                   N the router's number): the node is LAN.2, the
#                                   router LAN.1. Sets GRID_NS, GRID_IP, GRID_WAN.
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
# Names of namespaces carry a per-run tag (pid and a random byte: parallel runs never
# clash); interface names are fixed (eth0, wan, lan, br0, r<N>, h<N>) because every
# interface is created inside a namespace of this run. None of these functions may
# run in a subshell ($(...), a pipe): they keep their state in shell variables.

GRID_KINDS="none full-cone restricted port-restricted symmetric symmetric-seq udp-blocked cgnat cgnat-sym"
GRID_TAG=${GRID_TAG:-$$x$(printf %02x $((RANDOM % 256)))}
GRID_PUB=""
GRID_NAMESPACES=""
GRID_PIDS=""
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
declare -gA GRID_NODE_NS=() GRID_NODE_IP=() GRID_NODE_WAN=() GRID_NODE_ROUTER=() GRID_NODE_CARRIER=() GRID_NODE_KIND=() GRID_NODE_CARRIER_IP=()

_grid_die () { echo "Bail out! natgrid: $*"; exit 1; }

# _grid_ns SUFFIX: a new namespace of this run, lo up, IPv6 off (no link-local path
# around the NATs), forwarding as given (0/1)
_grid_netns () {
    local ns=$1 fwd=$2
    ip netns add "$ns" || _grid_die "ip netns add $ns failed"
    GRID_NAMESPACES="$ns $GRID_NAMESPACES"
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sh -c "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
        net.ipv4.ip_forward=$fwd net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0" \
        || _grid_die "sysctl in $ns failed"
}

# _grid_wire NS1 IF1 NS2 IF2: a veth pair between two namespaces, both ends up
_grid_wire () {
    ip -n "$1" link add "$2" type veth peer name "$4" netns "$3" || _grid_die "veth $1/$2 - $3/$4 failed"
    ip -n "$1" link set "$2" up
    ip -n "$3" link set "$4" up
}

# _grid_uplink NS IF IP: IF of NS joins the public bridge at IP/24, default route via .1
_grid_uplink () {
    local ns=$1 dev=$2 ip=$3 port=$4
    _grid_wire "$ns" "$dev" "$GRID_PUB" "$port"
    ip -n "$GRID_PUB" link set "$port" master br0
    ip -n "$ns" addr add "$ip/24" dev "$dev"
    ip -n "$ns" route add default via 203.0.113.1
}

_grid_name_ok () {
    [[ $1 =~ ^[A-Za-z0-9_.-]{1,24}$ ]] || _grid_die "bad name '$1' (letters, digits, _ . -; 24 at most)"
    [ -z "${GRID_NODE_NS[$1]:-}" ] || _grid_die "name '$1' is taken"
}

grid_init () {
    [ -n "$GRID_PUB" ] && return 0
    [ "$(id -u)" = 0 ] || _grid_die "needs root (network namespaces)"
    command -v nft >/dev/null || _grid_die "needs nft (nftables)"
    GRID_PUB="ng$GRID_TAG-pub"
    _grid_netns "$GRID_PUB" 0
    ip -n "$GRID_PUB" link add br0 type bridge
    ip -n "$GRID_PUB" addr add 203.0.113.1/24 dev br0
    ip -n "$GRID_PUB" link set br0 up
    # Cleanup on exit, chained before whatever EXIT trap the script already set
    local prev="" prevcmd
    prevcmd=$(trap -p EXIT)
    if [ -n "$prevcmd" ]; then
        eval "set -- $prevcmd"
        prev=$3
    fi
    case "$prev" in *grid_cleanup*) ;; *) trap "grid_cleanup; $prev" EXIT ;; esac
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
    _grid_netns "$ns" 0
    _grid_uplink "$ns" eth0 "$ip" "h$GRID_HOSTS"
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
        port-restricted|udp-blocked|home)
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

# _grid_router NS KIND WANIP: loads the ruleset into router NS
_grid_router () {
    _grid_nft_rules "$2" "$3" | ip netns exec "$1" nft -f - || _grid_die "nft rules of $2 router $1 failed"
}

# grid_node KIND NAME [LAN-PREFIX]
grid_node () {
    local kind=$1 name=$2 lan=${3:-}
    [ -n "$GRID_PUB" ] || grid_init
    _grid_name_ok "$name"
    case " $GRID_KINDS " in *" $kind "*) ;; *) _grid_die "unknown NAT kind '$kind' (grid_kinds lists them)" ;; esac
    GRID_N=$((GRID_N + 1))
    [ "$GRID_N" -le 150 ] || _grid_die "more than 150 routers"
    local n=$GRID_N wan="203.0.113.$((100 + GRID_N))"
    [ -n "$lan" ] || lan="10.$n.0"
    [[ $lan =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || _grid_die "LAN prefix '$lan' is not a.b.c"
    local node="ng$GRID_TAG-n-$name" router="" carrier=""
    GRID_NODE_KIND[$name]=$kind; GRID_NODE_NS[$name]=$node; GRID_NODE_WAN[$name]=$wan

    if [ "$kind" = none ]; then
        _grid_netns "$node" 0
        _grid_uplink "$node" eth0 "$wan" "r$n"
        GRID_NODE_IP[$name]=$wan
    else
        router="ng$GRID_TAG-r-$name"
        _grid_netns "$router" 1
        _grid_netns "$node" 0
        _grid_wire "$router" lan "$node" eth0
        ip -n "$router" addr add "$lan.1/24" dev lan
        ip -n "$node" addr add "$lan.2/24" dev eth0
        ip -n "$node" route add default via "$lan.1"
        GRID_NODE_IP[$name]=$lan.2
        case "$kind" in
            cgnat|cgnat-sym)
                # home router (port-restricted) -> 100.64.N.0/24 -> carrier NAT -> public
                carrier="ng$GRID_TAG-c-$name"
                _grid_netns "$carrier" 1
                _grid_uplink "$carrier" wan "$wan" "r$n"
                _grid_wire "$carrier" lan "$router" wan
                ip -n "$carrier" addr add "100.64.$n.1/24" dev lan
                GRID_NODE_CARRIER_IP[$name]=100.64.$n.1
                ip -n "$router" addr add "100.64.$n.2/24" dev wan
                ip -n "$router" route add default via "100.64.$n.1"
                _grid_router "$router" home "100.64.$n.2"
                if [ "$kind" = cgnat ]; then _grid_router "$carrier" carrier "$wan"
                else _grid_router "$carrier" carrier-sym "$wan"; fi ;;
            *)
                _grid_uplink "$router" wan "$wan" "r$n"
                _grid_router "$router" "$kind" "$wan" ;;
        esac
    fi
    GRID_NODE_ROUTER[$name]=$router; GRID_NODE_CARRIER[$name]=$carrier
    GRID_NS=$node; GRID_IP=${GRID_NODE_IP[$name]}; GRID_WAN=$wan
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
    for p in $GRID_PIDS; do kill -TERM "$p" 2>/dev/null; done
    for p in $GRID_PIDS; do
        for i in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$p" 2>/dev/null
    done
    GRID_PIDS=""
    for ns in $GRID_NAMESPACES; do
        # Whatever still runs in a namespace of this run was started by this run
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    GRID_NAMESPACES=""
    GRID_PUB=""
    GRID_NODE_NS=(); GRID_NODE_IP=(); GRID_NODE_WAN=(); GRID_NODE_ROUTER=(); GRID_NODE_CARRIER=(); GRID_NODE_KIND=()
    return 0
}
