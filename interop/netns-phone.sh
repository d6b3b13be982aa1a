#!/usr/bin/env bash
# Phones across NATs, in the NAT lab that `natter demo` builds (natter-netlab: two LANs behind
# iptables NAT routers, natter serve on the "public" bridge): natter serve is registrar, proxy
# (it reaches the phones through the flows they registered from) and STUN/TURN server; the
# phones use ICE with its STUN and TURN. Asserted per case: the call is established, the ICE
# candidate types of the selected pair, and audio both ways (speech A->B by cross-correlation,
# a tone B->A by its share of the received frames).
#   symmetric x symmetric: only the TURN relay works (ice=relay on at least one side)
#   cone x cone:           direct, server-reflexive on both sides
#   cone x symmetric:      the cone side's srflx against the symmetric side's relay
# Usage: interop/netns-phone.sh [path/to/natter]
set -uo pipefail
cd "$(dirname "$0")/.."
. interop/lib.sh
NATTER=${1:-${NATTER:-target/debug/natter}}
command -v iptables >/dev/null || { echo "missing iptables"; exit 1; }

# run_case NAME NAT_A NAT_B REGEX_A REGEX_B: REGEX_* match "LOCAL -> REMOTE" of each side.
run_case() {
    local name=$1 out=$TMP/$1.out
    if timeout 120 "$NATTER" demo --nat-a "$2" --nat-b "$3" --codec PCMU --srtp sdes --duration 4 \
        >"$out" 2>"$TMP/$1.err"; then
        ok "$name: demo call established and audio matched both ways"
    else
        bad "$name: demo failed" "$TMP/$1.err"
        cat "$out"
    fi
    local pa pb
    pa=$(sed -n 's/^A (caller): ice pair \([a-z]* -> [a-z]*\) .*/\1/p' "$out")
    pb=$(sed -n 's/^B (callee): ice pair \([a-z]* -> [a-z]*\) .*/\1/p' "$out")
    if [[ $pa =~ $4 ]] && [[ $pb =~ $5 ]]; then
        ok "$name: selected pairs A '$pa', B '$pb'"
    else
        bad "$name: pairs A '$pa' (want $4), B '$pb' (want $5)" "$out"
    fi
    grep -E "match" "$out" | sed 's/^/     /'
    local left
    left=$(ip netns list | grep -c natter-demo || true)
    [ "$left" = 0 ] && ok "$name: no namespace left behind" || bad "$name: $left namespaces left"
}
run_case symmetric-x-symmetric symmetric symmetric 'relay' 'relay'
run_case cone-x-cone cone cone '^srflx -> (srflx|prflx)$' '^(srflx|prflx) -> srflx$|^srflx -> (srflx|prflx)$'
run_case cone-x-symmetric cone symmetric '-> relay$|^relay' 'relay'
summary
