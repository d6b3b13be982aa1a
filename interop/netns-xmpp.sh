#!/usr/bin/env bash
# `natter xmpp` calls across NATs: Prosody and `natter serve` (TURN with the REST secret that
# Prosody's mod_turn_external hands out through XEP-0215) on a "public" bridge, alice and bob
# each behind an iptables NAT router (the topology of natter-netlab / `natter demo`).
#   symmetric x symmetric: only the TURN relay from XEP-0215 can carry the call (ice=relay)
#   cone x cone:           established with the STUN and TURN servers from XEP-0215 (the ICE
#                          agent may settle on a relay pair before the srflx pair is valid)
# Asserted: both sides established with the expected candidate type, audio both ways.
# Usage: interop/netns-xmpp.sh [path/to/natter]
set -uo pipefail
cd "$(dirname "$0")/.."
. interop/lib.sh
NATTER=${1:-${NATTER:-target/debug/natter}}
PY=/usr/bin/python3
TONES="$PY interop/phone/tones.py"
for t in iptables prosody prosodyctl; do command -v "$t" >/dev/null || { echo "missing $t"; exit 1; }; done
P=nx$$
NS=()
lab_down() { for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null; done; }
trap 'cleanup; lab_down' EXIT
x() { ip netns exec "$@"; }
# For background jobs: exec, so that $! is the server itself (prosody, natter serve) and the
# kill at the end of a case reaches it, not just a subshell that leaves it running orphaned.
xb() { exec ip netns exec "$@"; }

# lab NAT_A NAT_B: pub (203.0.113.1 on br0), rtrA/rtrB (203.0.113.11/.12), lanA/lanB.
lab() {
    lab_down
    NS=("$P-pub" "$P-rtrA" "$P-rtrB" "$P-lanA" "$P-lanB")
    for n in "${NS[@]}"; do ip netns add "$n" && x "$n" ip link set lo up || return 1; done
    x "$P-pub" ip link add br0 type bridge && x "$P-pub" ip addr add 203.0.113.1/24 dev br0 \
        && x "$P-pub" ip link set br0 up || return 1
    local s i nat
    for s in A B; do
        i=$([ $s = A ] && echo 1 || echo 2)
        nat=$([ $s = A ] && echo "$1" || echo "$2")
        ip link add "$P-u$s" netns "$P-rtr$s" type veth peer name "$P-p$s" netns "$P-pub" || return 1
        x "$P-pub" ip link set "$P-p$s" master br0 && x "$P-pub" ip link set "$P-p$s" up
        x "$P-rtr$s" ip addr add "203.0.113.1$i/24" dev "$P-u$s" && x "$P-rtr$s" ip link set "$P-u$s" up
        ip link add "$P-d$s" netns "$P-rtr$s" type veth peer name "$P-l$s" netns "$P-lan$s" || return 1
        x "$P-rtr$s" ip addr add "10.10.$i.1/24" dev "$P-d$s" && x "$P-rtr$s" ip link set "$P-d$s" up
        x "$P-lan$s" ip addr add "10.10.$i.2/24" dev "$P-l$s" && x "$P-lan$s" ip link set "$P-l$s" up
        x "$P-lan$s" ip route add default via "10.10.$i.1"
        x "$P-rtr$s" sysctl -qw net.ipv4.ip_forward=1
        local rnd=""
        [ "$nat" = symmetric ] && rnd="--random-fully"
        x "$P-rtr$s" iptables -t nat -A POSTROUTING -o "$P-u$s" -j MASQUERADE $rnd || return 1
        x "$P-rtr$s" iptables -A FORWARD -i "$P-u$s" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
        x "$P-rtr$s" iptables -A FORWARD -i "$P-u$s" -j DROP
    done
}

$TONES gen "$TMP/a.wav" --seconds 6 --freqs 440,1000,700,1300 >/dev/null
$TONES gen "$TMP/b.wav" --seconds 6 --freqs 550,850,1150,400 >/dev/null

# run_case NAME NAT_A NAT_B ICE_REGEX
run_case() {
    local name=$1 pd=$TMP/$1/prosody secret=nx-$1-$$
    mkdir -p "$pd/data"
    lab "$2" "$3" || { bad "$name: NAT lab (needs root, iptables)"; return; }
    cat >"$pd/prosody.cfg.lua" <<CFG
run_as_root = true
pidfile = "$pd/prosody.pid"
data_path = "$pd/data"
certificates = "$pd"
log = { { levels = { min = "info" }, to = "file", filename = "$pd/prosody.log" } }
interfaces = { "203.0.113.1" }
local_interfaces = { "203.0.113.1" }
c2s_ports = { 5222 }
c2s_direct_tls_ports = { }
s2s_ports = { }
component_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = { "roster"; "saslauth"; "disco"; "ping"; "presence"; "smacks"; "turn_external"; }
modules_disabled = { "s2s"; "dialback"; "offline"; "tls"; }
c2s_require_encryption = false
authentication = "internal_hashed"
storage = "internal"
turn_external_host = "203.0.113.1"
turn_external_port = 3478
turn_external_secret = "$secret"
VirtualHost "localhost"
CFG
    for u in alice bob; do
        prosodyctl --config "$pd/prosody.cfg.lua" register "$u" localhost "${u}pw" >/dev/null 2>&1
    done
    xb "$P-pub" prosody -F --config "$pd/prosody.cfg.lua" >"$pd/stdout" 2>&1 &
    local pp=$!
    PIDS+=($pp)
    xb "$P-pub" "$NATTER" serve --data-dir "$TMP/$name/data" --auth-secret "$secret" --realm natter.test \
        --turn-listen 203.0.113.1:3478 --relay-ip 203.0.113.1 --no-sip --no-tls >"$TMP/$name/serve.log" 2>&1 &
    local sp=$!
    PIDS+=($sp)
    timeout 10 bash -c "until ip netns exec $P-pub ss -Hltn | grep -q ':5222 '; do sleep 0.05; done"
    timeout 10 bash -c "until ip netns exec $P-pub ss -Hunl | grep -q ':3478 '; do sleep 0.05; done"
    local S="--server 203.0.113.1:5222 --no-tls" o=$TMP/$name
    xb "$P-lanB" timeout 60 "$NATTER" xmpp answer --jid bob@localhost --password bobpw $S --once \
        --play "$TMP/b.wav" --record "$o/b.wav" >"$o/b.out" 2>"$o/b.err" &
    local bp=$!
    PIDS+=($bp)
    wait_for "$o/b.err" "online as" 15
    x "$P-lanA" timeout 60 "$NATTER" xmpp call bob@localhost --jid alice@localhost --password alicepw $S \
        --play "$TMP/a.wav" --record "$o/a.wav" --duration 5 >"$o/a.out" 2>"$o/a.err"
    local arc=$?
    timeout 20 bash -c "while kill -0 $bp 2>/dev/null; do sleep 0.05; done"
    wait $bp
    local brc=$?
    local ea eb
    ea=$(grep -m1 '^established' "$o/a.out")
    eb=$(grep -m1 '^established' "$o/b.out")
    if [ $arc = 0 ] && [ $brc = 0 ] && [[ "$ea $eb" =~ $4 ]]; then
        ok "$name: established (alice: $ea | bob: $eb)"
    else
        bad "$name: caller $arc, callee $brc (alice: $ea | bob: $eb; want $4)" "$o/a.err"
    fi
    local r
    r=$($TONES check "$TMP/a.wav" "$o/b.wav" 2>&1) && ok "$name: audio alice->bob ($r)" || bad "$name: audio alice->bob ($r)"
    r=$($TONES check "$TMP/b.wav" "$o/a.wav" 2>&1) && ok "$name: audio bob->alice ($r)" || bad "$name: audio bob->alice ($r)"
    kill $pp $sp 2>/dev/null
    wait $pp $sp 2>/dev/null
    local stray
    stray=$(ip netns pids "$P-pub" 2>/dev/null | wc -l)
    [ "$stray" = 0 ] && ok "$name: servers stopped, no process left in the namespace" ||
        bad "$name: $stray processes left running in $P-pub"
    lab_down
}
run_case symmetric-x-symmetric symmetric symmetric 'ice=relay|ice_remote=relay'
run_case cone-x-cone cone cone 'ice=(srflx|prflx|relay)'
left=$(ip netns list | grep -c "^$P-" || true)
[ "$left" = 0 ] && ok "no namespace left behind" || bad "$left namespaces left"
summary
