#!/usr/bin/env bash
# ICE across real Linux NATs: network namespaces and iptables built by this script.
#
#   lanA 10.10.1.2 -- rtrA (10.10.1.1 | 203.0.113.11) --+
#                                                       br0 in pub: 203.0.113.1 (natter serve:
#   lanB 10.10.2.2 -- rtrB (10.10.2.1 | 203.0.113.12) --+            STUN + TURN on 3478)
#
# One NAT router per LAN: Linux NAT does not hairpin. Cone = MASQUERADE (endpoint-independent
# mapping, port kept; with unsolicited inbound dropped it filters by address and port, i.e. a
# port-restricted cone); symmetric = MASQUERADE --random-fully (a new port per destination).
# Every pair runs `natter ice connect` in lanA (controlling) and lanB (controlled) through
# interop/ice/pair.py, and asserts connect/fail and the selected candidate types as RFC 8445 /
# RFC 4787 predict: cone x cone connects srflx<->srflx; port-restricted cone x symmetric and
# symmetric x symmetric fail with STUN only and connect through TURN.
# Skipped with a message (and a summary line) where namespaces cannot be created.
# Usage: interop/netns-ice.sh [path/to/natter]   (default target/debug/natter)
set -uo pipefail
cd "$(dirname "$0")/.."
. interop/lib.sh
# Own temp dir name: logs survive cleaners of mktemp's default tmp.* names.
rmdir "$TMP" && TMP=$(mktemp -d -t natter-ice.XXXXXX)
NATTER=$(realpath "${1:-${NATTER:-target/debug/natter}}")
P=nice$$
. interop/ice/lab.sh

trap teardown EXIT

if ! ip netns add "$P-probe" 2>/dev/null; then
    echo "skipped: cannot create network namespaces here (needs root and iproute2)"
    summary
    exit 0
fi
ip netns del "$P-probe"
if ! command -v iptables >/dev/null; then
    echo "skipped: iptables is missing"
    summary
    exit 0
fi

if ! lab_up >"$TMP/lab.log" 2>&1; then
    echo "skipped: could not build the namespace lab:"
    sed 's/^/     | /' "$TMP/lab.log" | tail -5
    summary
    exit 0
fi

# `ip netns exec` directly (not X): the recorded pid must be the server's own.
ip netns exec "$P-pub" "$NATTER" serve --no-sip --no-tls --turn-listen 203.0.113.1:3478 --user u:p \
    --allow-peer 203.0.113.0/24 --data-dir "$TMP/data" --metrics-listen 203.0.113.1:9641 \
    --threads 1 >"$TMP/serve.out" 2>"$TMP/serve.err" &
PIDS+=($!)
if ! wait_for "$TMP/serve.out" "natter: metrics"; then
    bad "natter serve did not start in the public namespace" "$TMP/serve.err"
    summary
    exit 1
fi

# The mapping each NAT mode gives, seen by the STUN server (RFC 4787 names).
probe() { # A|B
    timeout 10 ip netns exec "$P-lan$1" "$NATTER" stun probe stun:203.0.113.1:3478 --rto-ms 100 \
        2>&1
}

PAIR="/usr/bin/python3 interop/ice/pair.py --data"
# lab_case NAME NAT_A NAT_B TURN(0|1) EXPECT [DELAY_MS]: EXPECT is "fail" or "LA RA / LB RB" types
# (alternatives separated by "|" where RFC 8445 allows either pair to win).
lab_case() {
    local name=$1 na=$2 nb=$3 turn=$4 want=$5 delay=${6:-}
    set_nat A "$na"
    set_nat B "$nb"
    if [ -n "$delay" ] && ! lab_delay "$delay"; then
        bad "$name: delay daemon did not start" "$TMP/delay-A.out"
        return
    fi
    local extra=(--stun stun:203.0.113.1:3478)
    [ "$turn" = 1 ] && extra+=(--turn turn:203.0.113.1:3478 --user u:p)
    local log
    log="$TMP/case-$(echo "$name" | tr -c 'a-zA-Z0-9' _).log"
    mkdir -p "$log.d"
    local to=15
    [ "$want" = fail ] && to=25
    local peer_b=("$NATTER" ice connect --role controlled "${extra[@]}" --timeout 20)
    if [ "${B_IMPL:-natter}" = nice ]; then
        # libnice's STUN discovery uses classic RFC 3489 requests, which coturn answers.
        peer_b=(/usr/bin/python3 interop/ice/nice_peer.py --role controlled --bind 10.10.2.2
            --stun 203.0.113.1:3479 --timeout 20)
        [ "$turn" = 1 ] && peer_b+=(--turn 203.0.113.1:3478 --user u:p)
    fi
    # relayed pairs are nominated after natter's relay_nomination_delay (2 s): hold on
    local hold=0
    [ "$turn" = 1 ] && hold=3
    $PAIR --timeout "$to" --hold "$hold" --log "$log.d" \
        -- ip netns exec "$P-lanA" "$NATTER" ice connect --role controlling "${extra[@]}" \
        --timeout 20 \
        -- ip netns exec "$P-lanB" "${peer_b[@]}" >"$log" 2>&1
    local ta tb
    ta=$(awk '$1=="A" && $2=="connected" {print $3, $5}' "$log")
    tb=$(awk '$1=="B" && $2=="connected" {print $3, $5}' "$log")
    if [ "$want" = fail ]; then
        if grep -q "^A failed" "$log" && grep -q "^B failed" "$log"; then
            ok "$name: both agents report failed (no path without a relay)"
        else
            cat "$log.d"/* >>"$log" 2>/dev/null
            bad "$name: expected failure" "$log"
        fi
        return
    fi
    if [ -n "$ta" ]; then
        # natter prints `connected` on its first valid pair and nominates (regular
        # nomination) afterwards; libnice, controlled, prints once the pair is nominated.
        # The types asserted are those of the final selected pairs (natter logs each change
        # on stderr), and both sides must have selected the same pair.
        local fa fb
        fa=$(grep -a "^natter: selected component 1 " "$log.d/peer-A.err" | tail -1 |
            cut -d' ' -f5-8)
        if [ "${B_IMPL:-natter}" = nice ]; then
            fb=$(awk '$2=="connected" {print $3, $4, $5, $6}' "$log.d/peer-B.out" | tail -1)
        else
            fb=$(grep -a "^natter: selected component 1 " "$log.d/peer-B.err" | tail -1 |
                cut -d' ' -f5-8)
        fi
        read -r a_lt a_la a_rt a_ra <<<"$fa"
        read -r b_lt b_la b_rt b_ra <<<"$fb"
        ta="$a_lt $a_rt"
        tb="$b_lt $b_rt"
        if [ "$a_la" != "$b_ra" ] || [ "$a_ra" != "$b_la" ]; then
            cat "$log.d"/* >>"$log" 2>/dev/null
            bad "$name: A selected '$fa', B '$fb' (not the same pair)" "$log"
            return
        fi
    fi
    local alt matched=0
    IFS='|' read -ra alts <<<"$want"
    for alt in "${alts[@]}"; do [ "$ta / $tb" = "$alt" ] && matched=1; done
    if grep -q "^result ok$" "$log" && [ $matched = 1 ]; then
        ok "$name: $ta / $tb, lines crossed both ways"
    else
        cat "$log.d"/* >>"$log" 2>/dev/null
        bad "$name (want '$want', got '$ta / $tb')" "$log"
    fi
}

set_nat A cone
set_nat B symmetric
pa=$(probe A)
pb=$(probe B)
if echo "$pa" | grep -q "^mapped 203.0.113.11:" && echo "$pb" | grep -q "^mapped 203.0.113.12:"; then
    ok "STUN through the NATs: A mapped to 203.0.113.11, B to 203.0.113.12"
else
    bad "STUN through the NATs" <(echo "$pa"; echo "$pb")
fi

lab_case "cone x cone, STUN" cone cone 0 "srflx srflx / srflx srflx"
lab_case "cone x cone, STUN+TURN (direct still preferred)" cone cone 1 "srflx srflx / srflx srflx"
lab_case "cone x symmetric, STUN (port-restricted x symmetric)" cone symmetric 0 fail
lab_case "cone x symmetric, STUN+TURN" cone symmetric 1 \
    "relay prflx / prflx relay|srflx relay / relay srflx"
lab_case "symmetric x symmetric, STUN" symmetric symmetric 0 fail
lab_case "symmetric x symmetric, STUN+TURN" symmetric symmetric 1 \
    "relay prflx / prflx relay|prflx relay / relay prflx|relay relay / relay relay"
# natter (lanA, controlling) against libnice (lanB, controlled) across the NATs.
if command -v turnserver >/dev/null &&
    /usr/bin/python3 -c 'import gi; gi.require_version("Nice", "0.1")' 2>/dev/null; then
    ip netns exec "$P-pub" turnserver -n --no-cli --stun-only --listening-ip 203.0.113.1 \
        --listening-port 3479 --no-tls --no-dtls --log-file stdout --simple-log \
        >"$TMP/coturn.log" 2>&1 &
    PIDS+=($!)
    if timeout 10 bash -c "until ip netns exec $P-pub ss -Hunl | grep -q ':3479 '; do sleep 0.05; done"; then
        B_IMPL=nice lab_case "natter x libnice, cone x cone, STUN" cone cone 0 \
            "srflx srflx / srflx srflx"
        B_IMPL=nice lab_case "natter x libnice, symmetric x symmetric, STUN+TURN" symmetric \
            symmetric 1 "relay prflx / prflx relay|prflx relay / relay prflx|relay relay / relay relay"
    else
        bad "coturn (STUN for libnice) did not start" "$TMP/coturn.log"
    fi
else
    echo "note: natter x libnice lab cases skipped (needs coturn, gir1.2-nice-0.1, python3-gi)"
fi
# Last (the delay daemons stay bound to their queue): 12.5 ms per router and direction gives
# lanA <-> lanB 50 ms of round-trip time.
lab_case "cone x cone, STUN, 50 ms RTT" cone cone 0 "srflx srflx / srflx srflx" 12.5

summary
