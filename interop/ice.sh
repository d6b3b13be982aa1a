#!/usr/bin/env bash
# ICE interop over loopback: `natter ice connect` against libnice (interop/ice/nice_peer.py, GI +
# ctypes on libnice.so.10), natter controlling and natter controlled, lines crossing both ways;
# and natter <-> natter through `natter serve` as TURN relay, asserting the selected candidate
# types. interop/ice/pair.py cross-wires the two peers' descriptions and checks the data lines.
# Usage: interop/ice.sh [path/to/natter]   (default target/debug/natter)
set -uo pipefail
cd "$(dirname "$0")/.."
. interop/lib.sh
in_private_netns "$@"
# Own temp dir name: logs survive cleaners of mktemp's default tmp.* names.
rmdir "$TMP" && TMP=$(mktemp -d -t natter-ice.XXXXXX)
NATTER=${1:-${NATTER:-target/debug/natter}}
PY=/usr/bin/python3
NICE="$PY interop/ice/nice_peer.py"
PAIR="$PY interop/ice/pair.py --timeout 20 --data"

if ! $PY -c 'import gi; gi.require_version("Nice", "0.1")' 2>/dev/null; then
    echo "missing libnice GI bindings (apt-get install gir1.2-nice-0.1 python3-gi)"
    exit 1
fi

# pair_case NAME EXPECT_A EXPECT_B -- CMD_A -- CMD_B: passes when both connect with the
# expected "LTYPE RTYPE" and each prints the exact line the other was given.
pair_case() {
    local name=$1 ea=$2 eb=$3
    shift 4
    local log="$TMP/pair-$(echo "$name" | tr -c 'a-zA-Z0-9' _).log"
    mkdir -p "$log.d"
    $PAIR --log "$log.d" -- "$@" >"$log" 2>&1
    local ta tb
    ta=$(awk '$1=="A" && $2=="connected" {print $3, $5}' "$log")
    tb=$(awk '$1=="B" && $2=="connected" {print $3, $5}' "$log")
    if grep -q "^result ok$" "$log" && [ "$ta" = "$ea" ] && [ "$tb" = "$eb" ] &&
        grep -Eq "^A got hello from B #[0-9]+$" "$log" &&
        grep -Eq "^B got hello from A #[0-9]+$" "$log"; then
        ok "$name: A $ta, B $tb; lines crossed both ways"
    else
        cat "$log.d"/* >>"$log" 2>/dev/null
        bad "$name (want A '$ea', B '$eb'; got A '$ta', B '$tb')" "$log"
    fi
}

L="--bind 127.0.0.1"
pair_case "natter controlling <-> libnice controlled" "host host" "host host" \
    -- "$NATTER" ice connect --role controlling $L -- $NICE --role controlled
pair_case "natter controlled <-> libnice controlling" "host host" "host host" \
    -- "$NATTER" ice connect --role controlled $L -- $NICE --role controlling
pair_case "natter controlled <-> libnice controlling, regular nomination" "host host" "host host" \
    -- "$NATTER" ice connect --role controlled $L -- $NICE --role controlling --regular
pair_case "natter controlling <-> libnice controlled, regular nomination" "host host" "host host" \
    -- "$NATTER" ice connect --role controlling $L -- $NICE --role controlled --regular
pair_case "natter <-> natter, host only" "host host" "host host" \
    -- "$NATTER" ice connect --role controlling $L -- "$NATTER" ice connect --role controlled $L

# TURN: natter serve relays between loopback peers.
"$NATTER" serve --no-sip --no-tls --turn-listen 127.0.0.1:3478 --user u:p \
    --allow-loopback-peers --data-dir "$TMP/data" --metrics-listen 127.0.0.1:9641 \
    >"$TMP/serve.out" 2>"$TMP/serve.err" &
PIDS+=($!)
if ! wait_for "$TMP/serve.out" "natter: metrics" || ! wait_udp 3478; then
    bad "natter serve did not start" "$TMP/serve.err"
    summary
    exit 1
fi
T="--turn turn:127.0.0.1:3478 --user u:p"
pair_case "natter <-> natter through natter serve, both relay-only" "relay relay" "relay relay" \
    -- "$NATTER" ice connect --role controlling $L $T --relay-only \
    -- "$NATTER" ice connect --role controlled $L $T --relay-only
pair_case "natter relay-only <-> natter host (peer's relayed data path)" "relay host" "host relay" \
    -- "$NATTER" ice connect --role controlling $L $T --relay-only \
    -- "$NATTER" ice connect --role controlled $L
pair_case "natter relay-only <-> libnice host" "relay host" "host relay" \
    -- "$NATTER" ice connect --role controlled $L $T --relay-only -- $NICE --role controlling
pair_case "libnice relay-only (its TURN client, natter serve) <-> natter host" "host relay" \
    "relay host" -- "$NATTER" ice connect --role controlling $L \
    -- $NICE --role controlled --turn 127.0.0.1:3478 --user u:p --relay-only

# With host and relay candidates offered, the host pair wins (RFC 8445 priorities), and the
# relayed candidate was still signalled.
log="$TMP/pair-both.log"
mkdir -p "$log.d"
$PAIR --log "$log.d" -- "$NATTER" ice connect --role controlling $L $T \
    -- "$NATTER" ice connect --role controlled $L $T >"$log" 2>&1
if grep -q "^result ok$" "$log" && grep -q "^A connected host .* host " "$log" &&
    grep -q "typ relay raddr 127.0.0.1" "$log.d/peer-A.out" &&
    grep -q "typ relay raddr 127.0.0.1" "$log.d/peer-B.out"; then
    ok "natter <-> natter with --turn: relay candidates offered, host pair selected"
else
    cat "$log.d"/* >>"$log" 2>/dev/null
    bad "natter <-> natter with --turn" "$log"
fi

# A wrong TURN password must not stall gathering: the description still ends, host works.
log="$TMP/pair-badturn.log"
mkdir -p "$log.d"
$PAIR --log "$log.d" -- "$NATTER" ice connect --role controlling $L --turn turn:127.0.0.1:3478 \
    --user u:wrong -- "$NATTER" ice connect --role controlled $L >"$log" 2>&1
if grep -q "^result ok$" "$log" && grep -q "^A connected host" "$log" &&
    grep -q "TURN Allocate failed: 401" "$log.d/peer-A.err"; then
    ok "wrong TURN password: Allocate 401 reported, gathering ends, host pair connects"
else
    cat "$log.d"/* >>"$log" 2>/dev/null
    bad "wrong TURN password" "$log"
fi

summary
