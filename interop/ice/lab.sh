# The NAT lab shared by interop/netns-ice.sh and bench/ice. Sourced after interop/lib.sh,
# with P set to a unique namespace prefix; `trap teardown EXIT` removes everything.
#
#   lanA 10.10.1.2 -- rtrA (10.10.1.1 | 203.0.113.11) --+
#                                                       br0 in pub: 203.0.113.1
#   lanB 10.10.2.2 -- rtrB (10.10.2.1 | 203.0.113.12) --+
#
# Only addresses inside these namespaces are used.
NS=(pub rtrA rtrB lanA lanB)

teardown() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for ns in "${NS[@]}"; do ip netns del "$P-$ns" 2>/dev/null || true; done
    if [ -n "${KEEP_LOGS:-}" ]; then echo "logs kept in $TMP"; else rm -rf "$TMP"; fi
}
X() { ip netns exec "$P-$1" "${@:2}"; }

lab_up() {
    local ns s n i=11
    for ns in pub rtrA rtrB lanA lanB; do
        ip netns add "$P-$ns" || return 1
        X "$ns" ip link set lo up
        X "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    done
    X pub ip link add br0 type bridge
    X pub ip link set br0 up
    X pub ip addr add 203.0.113.1/24 dev br0
    for s in A B; do
        n=$([ $s = A ] && echo 1 || echo 2)
        ip link add wan0 netns "$P-rtr$s" type veth peer name "v$s" netns "$P-pub" || return 1
        X pub ip link set "v$s" master br0
        X pub ip link set "v$s" up
        X "rtr$s" ip addr add "203.0.113.$i/24" dev wan0
        X "rtr$s" ip link set wan0 up
        ip link add lan0 netns "$P-rtr$s" type veth peer name eth0 netns "$P-lan$s" || return 1
        X "rtr$s" ip addr add "10.10.$n.1/24" dev lan0
        X "rtr$s" ip link set lan0 up
        X "lan$s" ip addr add "10.10.$n.2/24" dev eth0
        X "lan$s" ip link set eth0 up
        X "lan$s" ip route add default via "10.10.$n.1"
        X "rtr$s" sysctl -qw net.ipv4.ip_forward=1
        i=$((i + 1))
    done
    # Packets to addresses nobody has (a peer's private host candidate) vanish silently, as on
    # the Internet: a default route to a permanent neighbour with a MAC nobody owns.
    X pub ip neigh add 203.0.113.254 lladdr 02:00:00:00:00:fe dev br0 nud permanent
    X pub ip route add default via 203.0.113.254
    for s in A B; do
        X "rtr$s" ip neigh add 203.0.113.254 lladdr 02:00:00:00:00:fe dev wan0 nud permanent
        X "rtr$s" ip route add default via 203.0.113.254
    done
}

# set_nat A|B cone|symmetric: fresh NAT state on the router.
set_nat() {
    local s=$1 mode=$2 n
    n=$([ "$s" = A ] && echo 1 || echo 2)
    X "rtr$s" iptables -t nat -F
    X "rtr$s" iptables -F
    X "rtr$s" conntrack -F >/dev/null 2>&1 || true
    # Unsolicited inbound dies in INPUT before conntrack confirms it; otherwise an early check
    # from the peer takes the tuple and the router's own SNAT must pick another port.
    X "rtr$s" iptables -A INPUT -i wan0 -m conntrack --ctstate NEW,INVALID -j DROP
    case $mode in
    cone) X "rtr$s" iptables -t nat -A POSTROUTING -o wan0 -s "10.10.$n.0/24" -j MASQUERADE ;;
    symmetric)
        X "rtr$s" iptables -t nat -A POSTROUTING -o wan0 -s "10.10.$n.0/24" -j MASQUERADE \
            --random-fully
        ;;
    esac
}

# lab_delay MS: every packet forwarded by either router waits MS (user-space NFQUEUE daemon,
# no netem on this kernel), so lanA <-> lanB gets 4*MS of extra round-trip time and a LAN host
# <-> pub 2*MS. Call after set_nat (which flushes the filter table).
lab_delay() {
    local s
    for s in A B; do
        X "rtr$s" iptables -A FORWARD -j NFQUEUE --queue-num 11 --queue-bypass
        # `ip netns exec` directly (not X): the recorded pid must be the daemon's own.
        ip netns exec "$P-rtr$s" /usr/bin/python3 interop/ice/delay.py --queue 11 \
            --delay-ms "$1" >"$TMP/delay-$s.out" 2>&1 &
        PIDS+=($!)
        wait_for "$TMP/delay-$s.out" ready 10 || return 1
    done
}
